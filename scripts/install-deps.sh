#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian bookworm machine:
# - the Rust toolchain's rustfmt and clippy, a C compiler;
# - real peers for the end-to-end tests: QEMU 10 from bookworm-backports,
#   netperf from non-free, busybox, DPDK's dpdk-testpmd, iproute2;
# - hugepages are not needed (QEMU uses memfd, testpmd runs with --no-huge).
# Idempotent: re-running installs nothing that is already there.
# VSWITCH_SKIP_APT=1 skips the apt part (for machines without root).
set -euo pipefail

as_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: $* needs root; run as root or install it yourself" >&2
        exit 1
    fi
}

# Debian components: netperf lives in non-free, QEMU 10 (igb, reconnect-ms)
# in bookworm-backports. One .sources file of our own, so nothing of the
# machine's own lists is edited.
enable_components() {
    local f=/etc/apt/sources.list.d/vswitch-extra.sources
    [ -f "$f" ] && return 1
    as_root "enabling non-free and bookworm-backports"
    cat >"$f" <<'EOF'
# Written by vswitch scripts/install-deps.sh: netperf (non-free), QEMU 10 (backports).
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    return 0
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ "${VSWITCH_SKIP_APT:-0}" != 1 ]; then
    updated=0
    if enable_components; then
        apt-get update -qq
        updated=1
    fi
    need=()
    command -v cc >/dev/null || need+=(gcc)
    command -v busybox >/dev/null || need+=(busybox-static)
    command -v netperf >/dev/null || need+=(netperf)
    command -v iperf3 >/dev/null || need+=(iperf3)
    command -v ip >/dev/null || need+=(iproute2)
    command -v cpio >/dev/null || need+=(cpio)
    command -v depmod >/dev/null || need+=(kmod)
    command -v xz >/dev/null || need+=(xz-utils)
    command -v ethtool >/dev/null || need+=(ethtool)
    command -v tcpdump >/dev/null || need+=(tcpdump)
    command -v ping >/dev/null || need+=(iputils-ping)
    command -v dpdk-testpmd >/dev/null || need+=(dpdk-dev)
    [ -f /usr/share/seabios/bios.bin ] || need+=(seabios)
    qemu_ok=0
    if command -v qemu-system-x86_64 >/dev/null &&
        qemu-system-x86_64 --version | grep -qE 'version (9|1[0-9])\.'; then
        qemu_ok=1
    fi
    if [ ${#need[@]} -gt 0 ] || [ $qemu_ok = 0 ]; then
        as_root "installing ${need[*]} qemu"
        [ $updated = 1 ] || apt-get update -qq
        [ ${#need[@]} -gt 0 ] && apt_install "${need[@]}"
        if [ $qemu_ok = 0 ]; then
            apt_install -t bookworm-backports qemu-system-x86 qemu-system-data
        fi
    fi
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
