#!/usr/bin/env bash
# One flamegraph per cluster operation (issue #16): a fresh 3-node devnet (t=1) on this machine,
# one wallet, then each operation under load while `perf` samples the three nodes and nats-server.
#
#   scripts/flamegraphs.sh [OUT_DIR]          (default: docs/flamegraphs)
#
# Writes OUT_DIR/<operation>.svg (open it in a browser: frames are clickable and searchable) and
# OUT_DIR/<operation>.folded (the collapsed stacks the SVG is drawn from, one line per stack; a few
# MB each, not kept in git; nor is OUT_DIR/devnet.log, the devnet's output), and prints each operation's CPU by process and by part
# (scripts/flame-shares.py). The load of an operation is stopped after its samples, so the next
# one starts with up to 20 of its requests still being answered.
#
# Needs `perf` (Debian: apt-get install linux-perf; run as root or with
# kernel.perf_event_paranoid <= 1) and inferno (cargo install inferno --locked), which this
# script installs into ./.tools/inferno when it is missing.
#
# Environment:
#   MPCIUM_BIN_DIR   take `mpcium` and `mpcium-cli` from here instead of building this checkout
#   FLAME_SECONDS    seconds sampled per operation (default 4)
#   FLAME_HZ         samples per second and CPU (default 499)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/flamegraphs}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
seconds="${FLAME_SECONDS:-4}"
hz="${FLAME_HZ:-499}"

command -v perf >/dev/null 2>&1 || {
  echo "flamegraphs: perf is required (Debian: apt-get install linux-perf)" >&2
  exit 1
}
if ! perf record -q -o /dev/null -- true 2>/dev/null; then
  echo "flamegraphs: perf may not sample here (run as root or lower kernel.perf_event_paranoid)" >&2
  exit 1
fi
inferno="$(pwd)/.tools/inferno/bin"
if [ ! -x "$inferno/inferno-flamegraph" ]; then
  cargo install inferno --locked --version 0.12.8 --root "$(pwd)/.tools/inferno" >&2
fi
source scripts/bench-bins.sh
cli="$bindir/mpcium-cli"
export PRESIGN_POOL_SIZE="${PRESIGN_POOL_SIZE:-48}"

start_devnet "$out/devnet.log"
# Which process is which: perf names processes by their threads' names, which the three nodes
# share; the folded stacks get the node's name instead (see `rename` below).
names="$(python3 - "$ready" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['nats_pid']}=nats-server")
for n in r["nodes"]:
    print(f"{n['pid']}={n['name']}")
PY
)"
pids="$(echo "$names" | cut -d= -f1 | paste -sd, -)"

bench() { # the benchmark arguments
  "$cli" benchmark --key-path "$key" --nats-url "$url" --client-id bench -o /dev/null "$@" >/dev/null 2>&1
}
bench --json "$dir/kg.json" keygen 1 -b 1
wallet="$(first_wallet "$dir/kg.json")"

# profile NAME -- benchmark arguments: run the operation, sample `seconds` of it after a second
# of warm-up, then stop the load.
profile() {
  local name="$1"
  shift 2
  "$cli" benchmark --key-path "$key" --nats-url "$url" --client-id bench -o /dev/null "$@" >/dev/null 2>&1 &
  local load=$!
  sleep 1
  perf record -q -F "$hz" --call-graph dwarf,16384 -p "$pids" -o "$dir/$name.data" -- sleep "$seconds" \
    2>/dev/null
  kill $load 2>/dev/null || true
  wait $load 2>/dev/null || true
  perf script -F comm,pid,tid,time,event,ip,sym,dso -i "$dir/$name.data" 2>/dev/null |
    "$inferno/inferno-collapse-perf" --pid --kernel |
    python3 scripts/flame-shares.py --rename "$names" >"$out/$name.folded"
  "$inferno/inferno-flamegraph" --title "$name: 3 nodes t=1 and nats-server, ${seconds} s at ${hz} Hz" \
    --minwidth 0.5 <"$out/$name.folded" >"$out/$name.svg"
  echo "== $name"
  python3 scripts/flame-shares.py --summary <"$out/$name.folded"
}

# Keygens one after the other (three DKGs each: ECDSA, EdDSA, Taproot).
profile keygen -- keygen 100 -b 1
profile sign-eddsa -- sign-eddsa 100000 "$wallet" -b 20
profile sign-taproot -- sign-taproot 100000 "$wallet" -b 20
# ECDSA under sustained load: the pools are empty (refills wait while client work is in flight),
# so each signature runs DKLs23's presign and online phases in one session.
bench sign-ecdsa 300 "$wallet" -b 20
profile sign-ecdsa-sustained -- sign-ecdsa 100000 "$wallet" -b 20
