# Sourced by the cluster benchmarks (bench-cluster.sh, bench-latency.sh, flamegraphs.sh) from the
# repository root: installs nats-server (MPCIUM_NATS_SERVER) and sets `bindir` to the directory of
# `mpcium` and `mpcium-cli`: MPCIUM_BIN_DIR when set (e.g. an older build, for a before/after
# comparison), else this checkout built in release. Defines `start_devnet` (not for
# bench-latency.sh, whose nodes start apart, behind a delaying proxy) and `first_wallet`.
bin="$(bash scripts/install-tools.sh)"
export MPCIUM_NATS_SERVER="$bin/nats-server"
if [ -n "${MPCIUM_BIN_DIR:-}" ]; then
  bindir="$(cd "$MPCIUM_BIN_DIR" && pwd)"
else
  cargo build --release --locked -p mpcium-node -p mpcium-cli --bins
  bindir="$(pwd)/target/release"
fi

# start_devnet LOG: a fresh 3-node devnet (t=1) of these binaries in a temporary directory, its
# output in LOG; returns once it is ready, with `dir`, `ready` (its ready file), `devnet` (its
# pid), `url` and `key` (the initiator key) set, and an exit trap that stops it and removes
# `dir`. `field NAME` reads the ready file.
start_devnet() {
  local log="$1"
  dir="$(mktemp -d)"
  ready="$dir/ready.json"
  "$bindir/mpcium-cli" devnet --dir "$dir/devnet" --nodes 3 --threshold 1 --mpcium "$bindir/mpcium" \
    --ready-file "$ready" >"$log" 2>&1 &
  devnet=$!
  trap 'kill -INT $devnet 2>/dev/null; wait $devnet 2>/dev/null || true; rm -rf "$dir"' EXIT
  for _ in $(seq 1 120); do
    [ -s "$ready" ] && break
    kill -0 $devnet 2>/dev/null || { echo "devnet failed to start (see $log)" >&2; exit 1; }
    sleep 0.5
  done
  [ -s "$ready" ] || { echo "devnet not ready after 60 s" >&2; exit 1; }
  url="$(field nats_url)"
  key="$(field initiator_key)"
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$ready" "$1"; }

# first_wallet JSON: the first wallet a `mpcium-cli benchmark --json` keygen created.
first_wallet() {
  python3 -c 'import json,sys; print([w for w in json.load(open(sys.argv[1]))["wallet_ids"] if w][0])' "$1"
}
