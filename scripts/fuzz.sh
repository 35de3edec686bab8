#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 15),
# starting from the committed corpus (fuzz/corpus). Fails on the first
# crash, leaving the input in fuzz/artifacts/TARGET/. Installs cargo-fuzz
# if missing. The machine's toolchain is stable: RUSTC_BOOTSTRAP lets
# cargo-fuzz pass its coverage flags; no sanitizer (-s none), since the
# code under test has no unsafe of its own and vm-memory bounds every
# guest access (panics and invariant assertions are what we catch).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(vhost_rings vhost_messages frames config_yaml team_flow)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
# Keep the fuzz build (its own flags) apart from the main target dir.
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}
cargo fuzz build -s none -O
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${secs}s"
    # A scratch corpus dir takes the new inputs, so a CI run does not
    # grow the committed corpus; the committed one is read-only input.
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    out=$scratch.log
    set +e
    cargo fuzz run -s none -O "$t" "$scratch" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1 >"$out" 2>&1
    rc=$?
    set -e
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|==[0-9]+==|.*panicked|SUMMARY|Test unit written)' "$out" || true
    if [ $rc -ne 0 ]; then
        tail -30 "$out" >&2
        echo "fuzz: $t failed (exit $rc); a crashing input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    rm -rf "$scratch" "$out"
done
