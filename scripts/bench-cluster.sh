#!/usr/bin/env bash
# The cluster figures of BENCHMARKS.md in one run (issue #16): a fresh 3-node devnet (t=1) on this
# machine, one wallet, then `mpcium-cli benchmark` for each operation, one table at the end.
#
#   scripts/bench-cluster.sh [OUT_DIR]          (default: target/bench-cluster)
#
# Environment:
#   MPCIUM_BIN_DIR     take `mpcium` and `mpcium-cli` from here (e.g. an older build, for a
#                      before/after comparison) instead of building this checkout (release)
#   BENCH_ECDSA_SUSTAINED  ECDSA requests of the sustained row (default 5000, as issue #16 asks)
#   PRESIGN_POOL_SIZE  the nodes' presignature pool per wallet (default here 48)
#   BENCH_KEY_POOL     keys each node makes ahead for the last row (default 10; 0 skips it)
#
# Rows: keygen one at a time; EdDSA and Taproot one at a time and 20 in flight; ECDSA one at a
# time once every node's pool is full, then sustained at 20 in flight (the pool drains and
# refills under load); last, on a second fresh devnet whose nodes keep BENCH_KEY_POOL keys made
# ahead (`key_pool.size`), keygen one at a time once every node's pool is full.
# Load average is printed before and after: figures from a busy machine are not comparable.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/bench-cluster}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
source scripts/bench-bins.sh
cli="$bindir/mpcium-cli"
export PRESIGN_POOL_SIZE="${PRESIGN_POOL_SIZE:-48}"
sustained="${BENCH_ECDSA_SUSTAINED:-5000}"
key_pool="${BENCH_KEY_POOL:-10}"

start_devnet "$out/devnet.log"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

bench() { # name, then the benchmark arguments
  local name="$1"
  shift
  "$cli" benchmark --key-path "$key" --nats-url "$url" --client-id bench -o "$out/$name.txt" \
    --json "$out/$name.json" "$@" >/dev/null
}
# --compare (the crypto-only limit of the same operation, measured first) where the CLI has it.
compare=()
if "$cli" benchmark --help 2>/dev/null | grep -q -- --compare; then compare=(--compare); fi
bench keygen "${compare[@]}" keygen 3 -b 1
wallet="$(first_wallet "$out/keygen.json")"
bench sign-eddsa-1 sign-eddsa 200 "$wallet" -b 1
bench sign-eddsa-20 "${compare[@]}" sign-eddsa 2000 "$wallet" -b 20
if "$cli" benchmark sign-taproot --help >/dev/null 2>&1; then
  bench sign-taproot-1 sign-taproot 200 "$wallet" -b 1
  bench sign-taproot-20 "${compare[@]}" sign-taproot 2000 "$wallet" -b 20
fi
# Warm the pools, then measure. A node keeps a pool for a wallet once it coordinated an ECDSA
# signature with it, and which node coordinates a request is up to JetStream: sign one at a time
# until every node owns a full pool (a node's `mpcium_presign_pool_size` on /metrics).
pools_full() {
  python3 - "$ready" "$PRESIGN_POOL_SIZE" <<'PY'
import json, sys, urllib.request
want = int(sys.argv[2])
for node in json.load(open(sys.argv[1]))["nodes"]:
    text = urllib.request.urlopen(f"http://{node['healthcheck_address']}/metrics", timeout=5).read().decode()
    owned = [int(float(l.split()[1])) for l in text.splitlines() if l.startswith("mpcium_presign_pool_size ")]
    if not owned or owned[0] < want:
        sys.exit(1)
PY
}
warm=""
for _ in $(seq 1 30); do
  bench ecdsa-warmup sign-ecdsa 3 "$wallet" -b 1
  sleep 2
  if pools_full; then warm=1; break; fi
done
[ -n "$warm" ] || { echo "the presignature pools did not fill on every node" >&2; exit 1; }
bench sign-ecdsa-1 sign-ecdsa 100 "$wallet" -b 1
bench sign-ecdsa-20-sustained "${compare[@]}" sign-ecdsa "$sustained" "$wallet" -b 20
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Keys made ahead: a second devnet (the first one's nodes keep no pool, so the rows above run
# without pool keygens in the background), keygens once every node owns a full pool.
metric() { # NAME: the sum of a /metrics value over the nodes
  python3 - "$ready" "$1" <<'PY'
import json, sys, urllib.request
total = 0
for node in json.load(open(sys.argv[1]))["nodes"]:
    text = urllib.request.urlopen(f"http://{node['healthcheck_address']}/metrics", timeout=5).read().decode()
    total += sum(int(float(l.split()[1])) for l in text.splitlines() if l.startswith(sys.argv[2] + " "))
print(total)
PY
}
if [ "$key_pool" -gt 0 ] && grep -q key_pool "$bindir/mpcium"; then
  kill -INT "$devnet" 2>/dev/null; wait "$devnet" 2>/dev/null || true; rm -rf "$dir"
  KEY_POOL_SIZE="$key_pool" start_devnet "$out/devnet-key-pool.log"
  full=""
  for _ in $(seq 1 180); do
    if [ "$(metric mpcium_key_pool_size)" -ge $((3 * key_pool)) ]; then full=1; break; fi
    sleep 1
  done
  [ -n "$full" ] || { echo "the key pools did not fill on every node" >&2; exit 1; }
  bench keygen-pooled keygen "$key_pool" -b 1
  echo "== keygens with a pooled key: $(metric mpcium_key_pool_used_total), with their DKGs: $(metric mpcium_key_pool_missed_total)"
fi

python3 - "$out" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = ["keygen", "keygen-pooled", "sign-eddsa-1", "sign-eddsa-20", "sign-taproot-1", "sign-taproot-20",
        "sign-ecdsa-1", "sign-ecdsa-20-sustained"]
print("| row | ok / sent | in flight | throughput | p50 | p90 | p99 | crypto-only limit | ratio |")
print("|---|---|---|---|---|---|---|---|---|")
for name in rows:
    p = out / f"{name}.json"
    if not p.exists():
        continue
    r = json.loads(p.read_text())
    lat = r.get("latency_ms") or {}
    ms = lambda k: f"{lat[k]:.1f} ms" if k in lat else "-"
    c = r.get("crypto_limit")
    digits = 2 if c and c['limit_ops_per_sec'] < 10 else 0
    limit = f"{c['limit_ops_per_sec']:.{digits}f} /s ({c['cpu_ms_per_op']:.2f} ms CPU)" if c else "-"
    ratio = f"{c['ratio']:.2f}" if c else "-"
    print(f"| {name} | {r['successes']} / {r['count']} | {r['batch_size']} | "
          f"{r['throughput_ops_per_sec']:.1f} /s | {ms('p50')} | {ms('p90')} | {ms('p99')} | {limit} | {ratio} |")
EOF
