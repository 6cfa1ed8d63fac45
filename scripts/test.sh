#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the tools the tests need (./.tools), then runs
# every test of the workspace against real components (nats-server processes on loopback), then
# the Go interop test (scripts/interop-go.sh: a Go client drives real clusters).
set -euo pipefail
cd "$(dirname "$0")/.."
# The KMS signer is tested against a local AWS KMS emulator (moto, from PyPI).
export MPCIUM_WITH_KMS=1
bin="$(bash scripts/install-tools.sh)"
export PATH="$bin:$PATH"
export MPCIUM_NATS_SERVER="$bin/nats-server"
nats-server --version
cargo test --workspace --all-features --locked "$@"
bash scripts/interop-go.sh
