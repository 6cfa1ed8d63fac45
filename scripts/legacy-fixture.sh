#!/usr/bin/env bash
# Makes the original mpcium's data for the migration tests, with the original's own tss-lib and
# Badger (interop/legacy): builds `legacy-fixture` and `mpcium-legacy-export` into OUT_DIR/bin/,
# then (unless OUT_DIR already holds a whole fixture) runs the generator: 3 nodes, threshold 1,
# wallets w1 and w2 (key version 1) and w0 (legacy version 0). The badger password is in
# OUT_DIR/badger-password (0600). The slow ECDSA pre-parameters (test-only) come from
# interop/legacy/testdata/preparams, or from $MPCIUM_LEGACY_PREPARAMS (made there when missing).
# interop/legacy/README.md describes the files.
#   usage: scripts/legacy-fixture.sh OUT_DIR
set -euo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
out="$1"
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null; then
  echo "legacy-fixture: \`go\` is not installed (Go 1.26 builds interop/legacy)" >&2
  exit 1
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
umask 077

start=$(date +%s%N)
(cd interop/legacy && go build -o "$out/bin/" ./cmd/legacy-fixture ./cmd/mpcium-legacy-export)
built=$(date +%s%N)
echo "legacy-fixture: built $out/bin/{legacy-fixture,mpcium-legacy-export} in $(( (built - start) / 1000000 )) ms" >&2

# expected.json and bad/bad.json are written last: with them the fixture is whole.
if [ -f "$out/expected.json" ] && [ -f "$out/bad/bad.json" ]; then
  echo "legacy-fixture: $out already holds a fixture; nothing to do" >&2
  exit 0
fi
password="$out/badger-password"
if [ ! -s "$password" ]; then
  # 24 random bytes as 32 base64 characters: the original uses the password raw as an AES-256 key.
  head -c 24 /dev/urandom | base64 >"$password"
fi
chmod 600 "$password"
# Test-only pre-parameters (Paillier keys and safe primes of the fixture's three made-up nodes) are
# kept in the repository: making them takes 1.5-3 min of CPU on 2 cores, and the keygen that uses
# them still runs for real each time. MPCIUM_LEGACY_PREPARAMS=DIR makes (and caches) fresh ones.
preparams="${MPCIUM_LEGACY_PREPARAMS:-$PWD/interop/legacy/testdata/preparams}"
"$out/bin/legacy-fixture" --out "$out" --password-file "$password" \
  --nodes 3 --threshold 1 --wallets w1,w2 --legacy-wallet w0 --preparams-dir "$preparams"
done_at=$(date +%s%N)
echo "legacy-fixture: fixture made in $(( (done_at - built) / 1000000 )) ms" >&2
