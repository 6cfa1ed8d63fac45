#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a fixed time; exits non-zero if any
# target finds a crash (a panic, a failed assertion, a sanitizer report, a timeout or an OOM).
#
#   scripts/fuzz.sh [seconds-per-target]        (default 20)
#
# Environment:
#   FUZZ_SANITIZER  address | none   (default none: the CI smoke run; use address for long runs)
#   FUZZ_TARGETS    space-separated subset of targets (default: all, from `cargo fuzz list`)
#   FUZZ_LOG_DIR    where each target's libFuzzer log goes (default fuzz/logs)
#
# cargo-fuzz needs nightly-only compiler flags (-Zsanitizer, -Cpasses=sancov-module); on a stable
# toolchain RUSTC_BOOTSTRAP=1 unlocks them for this build only. Builds go to fuzz/target, so the
# main target/ directory is untouched (fuzz/target/none, fuzz/target/address). Seeds (committed) are in fuzz/seeds/<target>; what the
# fuzzer finds grows fuzz/corpus/<target> and crashes land in fuzz/artifacts/<target> (both
# ignored by git). Details and recorded runs: FUZZING.md.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-20}"
sanitizer="${FUZZ_SANITIZER:-none}"
log_dir="${FUZZ_LOG_DIR:-$root/fuzz/logs}"
cargo_fuzz_version="0.13.2"

case "$seconds" in
    '' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;;
esac
case "$sanitizer" in
    address | none) ;;
    *) echo "FUZZ_SANITIZER must be address or none, not $sanitizer" >&2; exit 2 ;;
esac

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

cd "$root/fuzz"
# --debug-assertions: integer overflow and debug_assert! failures count as findings too.
# One target directory per sanitizer, so switching between CI and long runs rebuilds nothing.
build_flags=(--sanitizer "$sanitizer" --debug-assertions --target-dir "target/$sanitizer")
echo "== building fuzz targets (sanitizer: $sanitizer)"
start=$(date +%s)
cargo fuzz build "${build_flags[@]}"
echo "== build took $(($(date +%s) - start)) s"

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
mkdir -p "$log_dir"
failed=()
for target in $targets; do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds} s"
    # The grown corpus comes first (new inputs are written there); the seeds are only read.
    # -timeout: one input taking over 30 s is a finding (generous for a loaded 2-core machine).
    if cargo fuzz run "${build_flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
        >"$log_dir/$target.log" 2>&1; then
        grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' \
            "$log_dir/$target.log" | tr '\n' ' ' || true
        echo "corpus: $(find "corpus/$target" -type f | wc -l) files"
    else
        echo "!! $target FAILED; last lines of $log_dir/$target.log:"
        tail -n 40 "$log_dir/$target.log"
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "== fuzzing found problems in: ${failed[*]} (inputs in fuzz/artifacts/<target>/)"
    exit 1
fi
echo "== all fuzz targets ran ${seconds} s without a crash"
