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
# The Go interop test runs the `mpcium` and `mpcium-cli` this test build made (a package's
# integration tests build its binaries, into target/debug; mpcium-node's `test-malice` in them is
# inert unless a test turns it on). Arguments that narrowed the build leave them out or stale:
# finish the build first (nothing to do after a whole run).
cargo test --workspace --all-features --locked --no-run
MPCIUM_BIN_DIR=target/debug bash scripts/interop-go.sh
