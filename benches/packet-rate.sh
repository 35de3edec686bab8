#!/usr/bin/env bash
# Packet-rate harness (issues 3 and 7): frames circulate between a
# dpdk-testpmd generator and the switch under test (vswitchd default,
# vswitchd with both ports in access VLAN 100, dpdk-testpmd io forwarding
# as the ceiling) at 64, 512 and 1518-byte frames; prints a table and
# writes it with JSON to target/packet-rate/ (or --out DIR).
#
#   benches/packet-rate.sh                 # 3 runs of everything, ~6 min
#   benches/packet-rate.sh --runs 5 --sizes 64 --switches vswitch-vlan,testpmd
#   benches/packet-rate.sh --help
#
# Needs root, a 2-core-or-more machine, dpdk-testpmd (scripts/install-deps.sh).
# Placement: switch on CPU 1, generator on CPU 0 (--switch-cpu/--gen-cpu).
# Run it on a quiet machine: it flags runs where a side did not get its CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
echo "== building vswitchd (release) into $target" >&2
cargo build --release --locked -p vswitch --bin vswitchd --bin vswitchctl >&2
exec python3 benches/packet_rate.py --vswitchd "$target/release/vswitchd" --out "$target/packet-rate" "$@"
