#!/usr/bin/env bash
# The Go interop test: a Go client (interop/go, Go's NATS client and standard crypto, written from
# docs/wire.md) drives real mpcium-rs clusters started by `mpcium-cli devnet`, and verifies every
# signature in Go. Two clusters, one after the other:
#   1. the devnet's own Ed25519 initiator (plain key file), no authorization;
#   2. a P-256 initiator with an age-encrypted key file, and authorization on with two required
#      authorizers: `risk` (Ed25519, age-encrypted key) and `ops` (P-256, plain key);
#   3. with MPCIUM_WITH_KMS=1 (scripts/test.sh sets it): a P-256 initiator whose key is in AWS KMS,
#      played by the moto emulator (installed by scripts/install-tools.sh);
#   4. a migration from the original: an original cluster's data made by its own tss-lib and Badger
#      (scripts/legacy-fixture.sh), refused when wrong (password, tampered backup, a share under
#      the wrong wallet, a threshold that does not match: nothing is written), imported into each
#      node with `mpcium-cli migrate import`, converted by reshare requests, and signing in Go
#      under the original's public keys (interop/go/legacy_test.go).
# Locally a missing `go` is a skip; with CI=true it is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null; then
  if [ "${CI:-}" = true ]; then
    echo "interop-go: \`go\` is not installed; CI needs it for the Go interop test" >&2
    exit 1
  fi
  echo "interop-go: SKIPPED: no \`go\` on PATH (install Go 1.26 to run the Go interop test)"
  exit 0
fi
bin="$(bash scripts/install-tools.sh)"
export MPCIUM_NATS_SERVER="$bin/nats-server"
# MPCIUM_BIN_DIR: take `mpcium` and `mpcium-cli` from here. scripts/test.sh passes the ones its
# test build made (a build with other features would recompile most of the dependency graph: 2 min
# in CI). Otherwise build them, in the dev profile (optimised in this workspace).
if [ -n "${MPCIUM_BIN_DIR:-}" ]; then
  bindir="$(cd "$MPCIUM_BIN_DIR" && pwd)"
  for binary in mpcium mpcium-cli; do
    [ -x "$bindir/$binary" ] || { echo "interop-go: no \`$binary\` in $bindir" >&2; exit 1; }
  done
else
  cargo build --locked -p mpcium-node -p mpcium-cli
  bindir="$PWD/target/debug"
fi
# devnet starts the `mpcium` beside it.
cli="$bindir/mpcium-cli"

work="$(mktemp -d)"
devnet=""
moto=""
stop_devnet() {
  if [ -n "$devnet" ]; then
    kill -INT "$devnet" 2>/dev/null || true
    wait "$devnet" 2>/dev/null || true
    devnet=""
  fi
}
stop_moto() {
  if [ -n "$moto" ]; then
    kill "$moto" 2>/dev/null || true
    wait "$moto" 2>/dev/null || true
    moto=""
  fi
}
trap 'stop_devnet; stop_moto; rm -rf "$work"' EXIT

# start_devnet NAME [devnet flags…]: starts a 3-node devnet (t=1) and waits for its ready file.
start_devnet() {
  local name="$1"
  shift
  ready="$work/$name.ready.json"
  "$cli" devnet --dir "$work/$name" --nodes 3 --threshold 1 --ready-file "$ready" "$@" \
    >"$work/$name.out" 2>&1 &
  devnet=$!
  for _ in $(seq 1 240); do
    [ -s "$ready" ] && return 0
    if ! kill -0 "$devnet" 2>/dev/null; then
      echo "interop-go: devnet $name failed to start:" >&2
      cat "$work/$name.out" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "interop-go: devnet $name not ready after 120 s:" >&2
  cat "$work/$name.out" >&2
  exit 1
}

# run_go_test NAME: the Go test against the running devnet (environment set by the caller).
run_go_test() {
  echo "== Go interop test against cluster $1"
  if ! (cd interop/go && MPCIUM_INTEROP_READY="$ready" go test -count=1 -v ${GO_TEST_RUN:+-run "$GO_TEST_RUN"} ./... 2>&1 | tee "$work/$1.go-test.log"); then
    echo "interop-go: the Go test failed against cluster $1; node logs:" >&2
    tail -n 30 "$work/$1"/node*/node.log >&2 || true
    exit 1
  fi
}

start=$(date +%s)
start_devnet ed25519
MPCIUM_INTEROP_INITIATOR_KEY="$work/ed25519/event_initiator.key" MPCIUM_INTEROP_INITIATOR_ALG=ed25519 \
  run_go_test ed25519
stop_devnet

keys="$work/keys"
mkdir -m 700 "$keys"
pass="$work/passphrase"
(umask 077 && printf 'interop-go passphrase!\n' >"$pass")
"$cli" generate-initiator -n go_initiator -a p256 -o "$keys" --encrypt --passphrase-file "$pass" >/dev/null
"$cli" generate-authorizer -n risk -a ed25519 -o "$keys" --encrypt --passphrase-file "$pass" >/dev/null
"$cli" generate-authorizer -n ops -a p256 -o "$keys" >/dev/null
start_devnet p256-authorized --initiator-identity "$keys/go_initiator.identity.json" \
  --authorizer "$keys/risk.authorizer.identity.json" --authorizer "$keys/ops.authorizer.identity.json"
MPCIUM_INTEROP_INITIATOR_KEY="$keys/go_initiator.key.age" MPCIUM_INTEROP_INITIATOR_ALG=p256 \
  MPCIUM_INTEROP_PASSPHRASE_FILE="$pass" \
  MPCIUM_INTEROP_AUTHORIZERS="risk:ed25519:$keys/risk.authorizer.key.age,ops:p256:$keys/ops.authorizer.key" \
  run_go_test p256-authorized
stop_devnet

if [ "${MPCIUM_WITH_KMS:-0}" != 1 ]; then
  echo "interop-go: KMS initiator SKIPPED (set MPCIUM_WITH_KMS=1 to run it against the moto emulator)"
else
  [ -x "$bin/moto_server" ] || { echo "interop-go: $bin/moto_server is missing" >&2; exit 1; }
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
  moto=$!
  for _ in $(seq 1 60); do
    python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" \
      2>/dev/null && break
    sleep 0.5
  done
  endpoint="http://127.0.0.1:$port"
  key_id=$(cd interop/go && go run ./cmd/kms-initiator -endpoint "$endpoint" -identity "$work/kms.identity.json")
  start_devnet p256-kms --initiator-identity "$work/kms.identity.json"
  MPCIUM_INTEROP_KMS_KEY_ID="$key_id" MPCIUM_INTEROP_KMS_ENDPOINT="$endpoint" run_go_test p256-kms
  stop_devnet
  stop_moto
fi
echo "== Migration from the original (interop/legacy fixture)"
legacy_start=$(date +%s)
fixture="${MPCIUM_LEGACY_FIXTURE:-$work/legacy}"
bash scripts/legacy-fixture.sh "$fixture"
net="$work/migrated"
chain="$work/chain-code"
(umask 077 && python3 -c 'import os; print(os.urandom(32).hex())' >"$chain")
# The devnet's files for the original's node ids and chain code (nats-server only, briefly).
"$cli" devnet --dir "$net" --nodes 3 --threshold 1 --peers "$fixture/peers.json" \
  --chain-code-file "$chain" --no-nodes --run-for 1 >"$work/migrated-files.out" 2>&1 \
  || { cat "$work/migrated-files.out" >&2; exit 1; }
import_node() { # import_node NODE SOURCE-FLAG SOURCE [STORE]: stage NODE's original shares
  local node="$1" flag="$2" source="$3" store="${4:-$net/$1/db/$1.db}"
  "$cli" --config "$net/$node/config.yaml" migrate import "$flag" "$source" \
    --legacy-password-file "$fixture/badger-password" --keyinfo "$fixture/consul-keyinfo.json" \
    --exporter "$fixture/bin/mpcium-legacy-export" --db-path "$store"
}
# refused NAME NEEDLE COMMAND…: the import fails, says NEEDLE, and writes no store.
scratch="$work/scratch.db"
refused() {
  local name="$1" needle="$2"
  shift 2
  if "$@" >"$work/refused.out" 2>&1; then
    echo "interop-go: migrate import accepted $name:" >&2; cat "$work/refused.out" >&2; exit 1
  fi
  if ! grep -q "$needle" "$work/refused.out"; then
    echo "interop-go: migrate import refused $name without saying \"$needle\":" >&2
    cat "$work/refused.out" >&2; exit 1
  fi
  if [ -e "$scratch" ]; then
    echo "interop-go: migrate import refused $name but wrote $scratch" >&2; exit 1
  fi
  echo "refused as expected: $name: $(grep -m1 -i 'error' "$work/refused.out")"
}
wrong_pw="$work/wrong-password"
(umask 077 && printf 'not-the-original-password-000000\n' >"$wrong_pw")
refused "a wrong password" "wrong password" "$cli" --config "$net/node0/config.yaml" migrate import \
  --from-db "$fixture/db/node0" --legacy-password-file "$wrong_pw" --keyinfo "$fixture/consul-keyinfo.json" \
  --exporter "$fixture/bin/mpcium-legacy-export" --db-path "$scratch"
refused "a tampered backup" "tampered" import_node node0 --from-backups "$fixture/bad/tampered-backup/node0" "$scratch"
refused "a share under the wrong wallet" "wrong wallet" \
  import_node node0 --from-db "$fixture/bad/swapped-share-db/node0" "$scratch"
python3 - "$fixture/consul-keyinfo.json" "$work/keyinfo-t2.json" <<'PY'
import base64, json, sys
entries = json.load(open(sys.argv[1]))
for e in entries:
    info = json.loads(base64.b64decode(e["value"]))
    info["threshold"] = 2
    e["value"] = base64.b64encode(json.dumps(info).encode()).decode()
json.dump(entries, open(sys.argv[2], "w"))
PY
refused "a threshold that does not match the shares" "threshold does not match" \
  "$cli" --config "$net/node0/config.yaml" migrate import --from-db "$fixture/db/node0" \
  --legacy-password-file "$fixture/badger-password" --keyinfo "$work/keyinfo-t2.json" \
  --exporter "$fixture/bin/mpcium-legacy-export" --db-path "$scratch"
import_node node0 --from-db "$fixture/db/node0"
import_node node1 --from-db "$fixture/db/node1"
import_node node2 --from-backups "$fixture/backups/node2"
start_devnet migrated --peers "$fixture/peers.json" --chain-code-file "$chain"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["nodes"]))' "$ready")" = 3 ]
MPCIUM_INTEROP_INITIATOR_KEY="$work/migrated/event_initiator.key" MPCIUM_INTEROP_INITIATOR_ALG=ed25519 \
  MPCIUM_INTEROP_LEGACY_EXPECTED="$fixture/expected.json" GO_TEST_RUN=TestImportedWallets \
  run_go_test migrated
stop_devnet
# Each node deleted its staged shares once the conversions' key info was written: importing
# node0 again is refused by its converted share (ecdsa:w0_v1), not by a staged one.
if import_node node0 --from-db "$fixture/db/node0" >"$work/reimport.out" 2>&1; then
  echo "interop-go: a second import over converted wallets was accepted" >&2; exit 1
fi
grep -q 'record "ecdsa:w0_v1" already exists' "$work/reimport.out" || {
  echo "interop-go: the staged shares were not retired after the conversion:" >&2
  cat "$work/reimport.out" >&2; exit 1
}
echo "staged shares retired after the conversion (a second import names the converted share)"
echo "== Migration test passed in $(($(date +%s) - legacy_start)) s"
echo "== Go interop test passed against every cluster in $(($(date +%s) - start)) s"
