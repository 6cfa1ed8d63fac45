#!/usr/bin/env bash
# Signing latency one request at a time when NATS is a network hop away from the nodes (issue #16):
# a 3-node devnet (t=1) whose nodes reach nats-server through scripts/delay-proxy.py, then
# `mpcium-cli benchmark` of 100 EdDSA and 100 Taproot signatures after 20 of each to warm up, and
# 100 ECDSA signatures with presignatures after 30 (each node that coordinates one keeps a pool of
# PRESIGN_POOL_SIZE, default here 48) and a pause for the pools to fill. The client talks to
# nats-server directly.
#
#   scripts/bench-latency.sh [ONE_WAY_DELAY_MS] [OUT_DIR]     (default: 1, target/bench-latency)
#
# MPCIUM_BIN_DIR: take `mpcium` and `mpcium-cli` from here instead of building this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
delay="${1:-1}"
out="${2:-target/bench-latency}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
source scripts/bench-bins.sh
export PRESIGN_POOL_SIZE="${PRESIGN_POOL_SIZE:-48}"
proxy_script="$(pwd)/scripts/delay-proxy.py"
dir="$(mktemp -d)"
nodes=()
proxy=""
"$bindir/mpcium-cli" devnet --dir "$dir/devnet" --nodes 3 --threshold 1 --mpcium "$bindir/mpcium" --no-nodes \
  >"$out/devnet.log" 2>&1 &
devnet=$!
cleanup() {
  for p in "${nodes[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${nodes[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$proxy" ] && kill "$proxy" 2>/dev/null
  kill -INT $devnet 2>/dev/null
  wait $devnet 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 120); do grep -q "NATS URL" "$out/devnet.log" && break; sleep 0.5; done
url="$(grep -m1 "NATS URL" "$out/devnet.log" | awk '{print $3}')"
[ -n "$url" ] || { echo "devnet did not start (see $out/devnet.log)" >&2; exit 1; }
port="${url##*:}"
proxy_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
python3 "$proxy_script" "$proxy_port" "$port" "$delay" &
proxy=$!
for i in 0 1 2; do
  sed -i "s#nats://127.0.0.1:$port#nats://127.0.0.1:$proxy_port#" "$dir/devnet/node$i/config.yaml"
  (cd "$dir/devnet/node$i" && exec "$bindir/mpcium" start -n "node$i" -c config.yaml >"$out/node$i.log" 2>&1) &
  nodes+=($!)
done
for _ in $(seq 1 120); do
  [ "$(grep -l "Node is ready" "$out"/node?.log 2>/dev/null | wc -l)" = 3 ] && break
  sleep 0.5
done
[ "$(grep -l "Node is ready" "$out"/node?.log 2>/dev/null | wc -l)" = 3 ] || { echo "nodes not ready" >&2; exit 1; }
key="$dir/devnet/event_initiator.key"
bench() { "$bindir/mpcium-cli" benchmark --key-path "$key" --nats-url "$url" --client-id latency "$@" >/dev/null; }
bench -o "$out/keygen.txt" --json "$out/keygen.json" keygen 1 -b 1
wallet="$(first_wallet "$out/keygen.json")"
for op in sign-eddsa sign-taproot; do
  bench -o "$out/$op-warmup.txt" "$op" 20 "$wallet" -b 1
  bench -o "$out/$op.txt" "$op" 100 "$wallet" -b 1
  echo "$op, ${delay} ms each way to NATS: $(grep -h "Latency" "$out/$op.txt")"
done
bench -o "$out/sign-ecdsa-warmup.txt" sign-ecdsa 30 "$wallet" -b 1
sleep 15
bench -o "$out/sign-ecdsa.txt" sign-ecdsa 100 "$wallet" -b 1
echo "sign-ecdsa (presignatures), ${delay} ms each way to NATS: $(grep -h "Latency" "$out/sign-ecdsa.txt")"
