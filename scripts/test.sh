#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, dependency
# licences, unit, property and end-to-end tests (real QEMU guests and DPDK testpmd among them), then a
# bounded fuzz run (VSWITCH_FUZZ_SECONDS per target, default 15).
# Installs what it needs first (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== licences (deny.toml) and the third-party notice (THIRD-PARTY.md)"
cargo deny --locked check licenses bans sources
scripts/third-party.py --check
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
echo "== fuzz (a bounded run of every target from the committed corpus)"
scripts/fuzz.sh "${VSWITCH_FUZZ_SECONDS:-15}" 2>&1 | tee -a "$log"
# One closing line for CI readers: totals over every test binary.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
