#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian bookworm machine.
# Today that is only the Rust toolchain (cargo, rustc, rustfmt, clippy) and a
# C compiler for criterion's build script; later issues add QEMU from
# bookworm-backports, netperf from non-free, DPDK and Open vSwitch here.
set -euo pipefail

need=()
command -v cc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing ${need[*]}; run as root or install them" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "install-deps: cargo not found; install Rust (rustup) first" >&2
    exit 1
fi
for comp in rustfmt clippy; do
    if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$comp"
    fi
done
