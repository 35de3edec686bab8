#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian bookworm machine:
# - the Rust toolchain's rustfmt and clippy, a C compiler, cargo-deny
#   (built from crates.io once: the licence check in scripts/test.sh);
# - real peers for the end-to-end tests: QEMU 10 from bookworm-backports,
#   netperf from non-free, busybox, DPDK's dpdk-testpmd, iproute2;
# - Open vSwitch with DPDK (openvswitch-switch-dpdk), the packet-rate
#   harness's reference switch: it runs a private ovsdb-server and
#   ovs-vswitchd-dpdk of its own, so the system Open vSwitch service is
#   stopped and disabled here (it would otherwise sit on a CPU);
# - Prometheus (Debian's prometheus, without its recommended node
#   exporter), which tests/metrics.rs starts on its own port and storage:
#   its system service is stopped and disabled here (it would hold port
#   9090 and scrape nothing useful);
# - libvirt 11 from bookworm-backports (libvirtd, virtlogd, virsh; the QEMU
#   driver only, no network driver, dnsmasq or firewall pieces) for
#   tests/libvirt.rs, which starts its own libvirtd and virtlogd: the
#   system libvirt services are stopped and disabled here like Open
#   vSwitch's (the test's daemons use the same /run/libvirt);
# - hugepages are not set up here (QEMU uses memfd, testpmd runs with
#   --no-huge; benches/packet_rate.py reserves and releases its own for OVS).
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
# and libvirt 11 in bookworm-backports. One .sources file of our own, so nothing of the
# machine's own lists is edited.
enable_components() {
    local f=/etc/apt/sources.list.d/vswitch-extra.sources
    [ -f "$f" ] && return 1
    as_root "enabling non-free and bookworm-backports"
    cat >"$f" <<'EOF'
# Written by vswitch scripts/install-deps.sh: netperf (non-free), QEMU 10 and libvirt 11 (backports).
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

# openvswitch-switch's postinst starts the system ovsdb-server and
# ovs-vswitchd where services may start (no policy-rc.d forbidding it).
# Nothing here uses them: stop them (by the pids in their own pidfiles),
# keep them from starting at boot, and check that none is left.
quiet_system_ovs() {
    local rundir=/run/openvswitch pid d
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl disable --now openvswitch-switch.service ovs-vswitchd.service \
            ovsdb-server.service >/dev/null 2>&1 || true
    elif command -v update-rc.d >/dev/null && [ -f /etc/init.d/openvswitch-switch ]; then
        update-rc.d openvswitch-switch disable >/dev/null 2>&1 || true
    fi
    local running=0
    for d in ovs-vswitchd ovsdb-server; do
        pid=$(cat "$rundir/$d.pid" 2>/dev/null || true)
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && running=1
    done
    if [ $running = 1 ] && [ -x /usr/share/openvswitch/scripts/ovs-ctl ]; then
        as_root "stopping the system Open vSwitch"
        /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1 || true
        echo "install-deps: stopped the system Open vSwitch (the benches run their own)" >&2
    fi
    # Whatever ovs-ctl left (or where it is missing): SIGTERM by pidfile;
    # their --monitor parents exit with them.
    for d in ovs-vswitchd ovsdb-server; do
        pid=$(cat "$rundir/$d.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            as_root "stopping the system $d"
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            echo "install-deps: stopped the system $d (pid $pid); the benches run their own" >&2
        fi
    done
    for d in ovs-vswitchd ovsdb-server; do
        pid=$(cat "$rundir/$d.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            echo "install-deps: the system $d (pid $pid) is still running" >&2
            exit 1
        fi
    done
}

# prometheus's postinst starts its service where services may start (and
# prometheus-node-exporter's, if something pulled it in). The test runs
# its own server: stop and disable these, and check none is left.
quiet_system_prometheus() {
    local svc pid
    for svc in prometheus prometheus-node-exporter; do
        [ -f "/lib/systemd/system/$svc.service" ] || [ -f "/etc/init.d/$svc" ] || continue
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
            systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
        elif [ -x "/etc/init.d/$svc" ]; then
            "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
            command -v update-rc.d >/dev/null && update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
    # Whatever is left of the service (by its pidfile, or the daemon user's
    # processes): SIGTERM, then SIGKILL.
    for pid in $(cat /run/prometheus/prometheus.pid 2>/dev/null) \
        $(pgrep -u prometheus -x prometheus 2>/dev/null) \
        $(pgrep -u prometheus -x prometheus-node-exporter 2>/dev/null); do
        kill -0 "$pid" 2>/dev/null || continue
        as_root "stopping the system prometheus (pid $pid)"
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        echo "install-deps: stopped the system prometheus service (pid $pid); tests/metrics.rs runs its own" >&2
    done
    if pgrep -u prometheus >/dev/null 2>&1; then
        echo "install-deps: a process of the prometheus user is still running" >&2
        exit 1
    fi
}

# libvirt's postinsts start libvirtd and virtlogd where services may
# start (sysvinit scripts without systemd, socket units with it).
# tests/libvirt.rs runs its own on the same /run/libvirt: stop the system
# ones (by their pidfiles), keep them from starting at boot, and check
# that none is left.
quiet_system_libvirt() {
    local pid d
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl disable --now libvirtd.service libvirtd.socket libvirtd-ro.socket \
            libvirtd-admin.socket virtlogd.service virtlogd.socket \
            virtlogd-admin.socket libvirt-guests.service >/dev/null 2>&1 || true
    elif command -v update-rc.d >/dev/null; then
        for d in libvirtd virtlogd libvirt-guests; do
            [ -f "/etc/init.d/$d" ] && { update-rc.d "$d" disable >/dev/null 2>&1 || true; }
        done
    fi
    for d in libvirtd virtlogd; do
        pid=$(cat "/run/$d.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            as_root "stopping the system $d"
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
            echo "install-deps: stopped the system $d (pid $pid); tests/libvirt.rs runs its own" >&2
        fi
    done
    for d in libvirtd virtlogd; do
        pid=$(cat "/run/$d.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            echo "install-deps: the system $d (pid $pid) is still running" >&2
            exit 1
        fi
    done
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
    [ -x /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk ] || need+=(openvswitch-switch-dpdk)
    [ -f /usr/share/seabios/bios.bin ] || need+=(seabios)
    [ -x /usr/bin/prometheus ] || need+=(prometheus)
    qemu_ok=0
    if command -v qemu-system-x86_64 >/dev/null &&
        qemu-system-x86_64 --version | grep -qE 'version (9|1[0-9])\.'; then
        qemu_ok=1
    fi
    # libvirt 11 (the test runs it with QEMU 10; bookworm's 9.0 passes
    # QEMU -no-acpi, which QEMU 9.0 removed, and no domain starts). Each package named with
    # its release: `-t bookworm-backports` would also take systemd and
    # udev from backports.
    libvirt_ok=0
    if [ -x /usr/sbin/libvirtd ] && [ -x /usr/sbin/virtlogd ] &&
        command -v virsh >/dev/null && virsh --version | grep -qE '^1[1-9]\.'; then
        libvirt_ok=1
    fi
    if [ ${#need[@]} -gt 0 ] || [ $qemu_ok = 0 ] || [ $libvirt_ok = 0 ]; then
        as_root "installing ${need[*]} qemu libvirt"
        [ $updated = 1 ] || apt-get update -qq
        [ ${#need[@]} -gt 0 ] && apt_install "${need[@]}"
        if [ $qemu_ok = 0 ]; then
            apt_install -t bookworm-backports qemu-system-x86 qemu-system-data
        fi
        if [ $libvirt_ok = 0 ]; then
            apt_install libvirt-daemon-driver-qemu/bookworm-backports \
                libvirt-daemon/bookworm-backports libvirt-clients/bookworm-backports \
                libvirt-daemon-log/bookworm-backports libvirt-daemon-common/bookworm-backports \
                libvirt-common/bookworm-backports libvirt0/bookworm-backports
        fi
    fi
    if [ -x /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk ]; then
        quiet_system_ovs
    fi
    if [ -x /usr/bin/prometheus ]; then
        quiet_system_prometheus
    fi
    if [ -x /usr/sbin/libvirtd ]; then
        quiet_system_libvirt
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
# cargo-deny checks dependency licences (deny.toml); built from crates.io
# once (a few minutes on 2 cores), then found in ~/.cargo/bin.
if ! cargo deny --version >/dev/null 2>&1; then
    echo "install-deps: building cargo-deny (once)"
    cargo install --locked cargo-deny --version 0.20.2
fi
