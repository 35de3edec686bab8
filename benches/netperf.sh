#!/usr/bin/env bash
# netperf harness (issue 7): real QEMU guests (Debian kernel + busybox +
# netperf, built by scripts/build-guest.sh if missing) through the switch,
# TCP_STREAM, TCP_RR and UDP_STREAM, all pairs at once:
#   one-host  G guest pairs on one switch
#   two-host  two vswitchd "servers" A and B in network namespaces, joined
#             by a team of two veth uplinks through a bridge, G guests on
#             each, A->B and B->A at once, per teaming policy, with the
#             bytes on each uplink
# Prints a table; writes results.json, results.txt and chart.svg to
# target/netperf/ (or --out DIR).
#
#   benches/netperf.sh                                  # vswitch, both topologies, ~6 min
#   benches/netperf.sh --switches vswitch,ovs --topologies one-host   # side by side with OVS-DPDK
#   benches/netperf.sh --len 30 --confidence 99,5 --iterations 10,3
#   benches/netperf.sh --help
#
# Needs root, QEMU, netperf (scripts/install-deps.sh); ovs needs
# openvswitch-switch-dpdk (same script) and reserves hugepages itself.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
echo "== building vswitchd (release) into $target" >&2
cargo build --release --locked -p vswitch --bin vswitchd --bin vswitchctl >&2
exec python3 benches/netperf.py --vswitchd "$target/release/vswitchd" --out "$target/netperf" "$@"
