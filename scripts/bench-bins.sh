# Sourced by the cluster benchmarks (bench-cluster.sh, bench-latency.sh) from the repository root:
# installs nats-server (MPCIUM_NATS_SERVER) and sets `bindir` to the directory of `mpcium` and
# `mpcium-cli`: MPCIUM_BIN_DIR when set (e.g. an older build, for a before/after comparison),
# else this checkout built in release.
bin="$(bash scripts/install-tools.sh)"
export MPCIUM_NATS_SERVER="$bin/nats-server"
if [ -n "${MPCIUM_BIN_DIR:-}" ]; then
  bindir="$(cd "$MPCIUM_BIN_DIR" && pwd)"
else
  cargo build --release --locked -p mpcium-node -p mpcium-cli --bins
  bindir="$(pwd)/target/release"
fi
