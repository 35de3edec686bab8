#!/usr/bin/env bash
# Packet-rate harness (issues 3 and 7): frames circulate between a
# dpdk-testpmd generator and the switch under test at 64, 512 and
# 1518-byte frames; prints a table (Mpps, Gbit/s, ratio to testpmd and
# "vs OVS", CPU placement) and writes it with JSON, and chart.svg (median
# Mpps per switch, grouped by frame size), to target/packet-rate/ (or
# --out DIR). Switches (--switches, default all):
#   vswitch       vswitchd, built-in default (learning, VLAN 1)
#   vswitch-vlan  vswitchd, both ports in access VLAN 100
#   vswitch-team  one vswitchd, two switches joined by a 2-member team on
#                 each side over two veth pairs (port-id, AF_XDP by
#                 default; --team-policy, --team-driver): the kernel veth
#                 path, far slower by design
#   ovs           Open vSwitch with DPDK (ovs-vswitchd-dpdk, private
#                 ovsdb, netdev bridge, dpdkvhostuser ports, NORMAL);
#                 reserves --ovs-hugepages 2 MiB pages (default 512) and
#                 gives them back
#   testpmd       dpdk-testpmd io forwarding: the ceiling
#
#   benches/packet-rate.sh                 # 3 runs of everything, ~10 min on a quiet machine
#   benches/packet-rate.sh --runs 5 --sizes 64 --switches vswitch,ovs,testpmd
#   benches/packet-rate.sh --help
#
# Needs root, a 2-core-or-more machine, dpdk-testpmd, openvswitch-switch-dpdk,
# ip and ethtool (scripts/install-deps.sh). Placement: switch (all its
# threads) on CPU 1, generator on CPU 0 (--switch-cpu/--gen-cpu). Run it
# on a quiet machine: it waits up to 120 s for quiet CPUs before each run
# (--wait-quiet) and flags runs where a side did not get its CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
echo "== building vswitchd (release) into $target" >&2
cargo build --release --locked -p vswitch --bin vswitchd --bin vswitchctl >&2
exec python3 benches/packet_rate.py --vswitchd "$target/release/vswitchd" --out "$target/packet-rate" "$@"
