#!/usr/bin/env bash
# Builds the small test guest from Debian packages (no network inside the
# guest build, no root needed once the packages are downloadable):
#   DIR/vmlinux            the Debian kernel as an ELF (booted through PVH,
#                          which skips decompressing a bzImage under TCG)
#   DIR/initramfs.cpio.gz  busybox, bash, ip, ethtool, netperf, iperf3, the
#                          virtio-net and 802.1Q modules, the SR-IOV ones
#                          (igb, igbvf, vfio, vfio_iommu_type1, vfio-pci),
#                          and guest/init
# DIR is $VSWITCH_GUEST_DIR or target/guest. Rebuilds only when this script
# or guest/init changed (a stamp holds their hash).
#
# The guest's behaviour (address, VLAN, peer, netperf tests) comes from the
# kernel command line; see guest/init.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${VSWITCH_GUEST_DIR:-$repo/target/guest}
stamp_want=$(cat "$0" "$repo/guest/init" | sha256sum | cut -c1-16)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp_want" ] &&
    [ -f "$out/vmlinux" ] && [ -f "$out/initramfs.cpio.gz" ]; then
    echo "build-guest: $out is up to date"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/debs" "$work/x" "$work/root"
chmod 755 "$work" "$work/debs" # apt-get download runs as _apt

kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "build-guest: cannot resolve linux-image-amd64" >&2; exit 1; }
kver=${kpkg#linux-image-}
echo "build-guest: kernel $kver"
(cd "$work/debs" && apt-get download -qq "$kpkg" 2>&1 | grep -v "unsandboxed as root" || true)
dpkg -x "$work"/debs/linux-image-*.deb "$work/x"

# vmlinux: the bzImage payload is xz; find its magic and decompress it.
bz="$work/x/boot/vmlinuz-$kver"
off=$(LC_ALL=C grep -aboP '\xfd7zXZ\x00' "$bz" | head -1 | cut -d: -f1)
[ -n "$off" ] || { echo "build-guest: no xz payload in $bz" >&2; exit 1; }
tail -c +$((off + 1)) "$bz" | xz -dc 2>/dev/null >"$work/vmlinux" || true
head -c 4 "$work/vmlinux" | grep -q 'ELF' || { echo "build-guest: vmlinux extraction failed" >&2; exit 1; }

root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,lib/modules,usr/bin,usr/sbin,usr/lib,lib64}
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
# Real tools (with their libraries) where busybox's applets fall short.
copy_bin() {
    local src=$1 dst=$2
    rm -f "$root$dst"
    cp "$src" "$root$dst"
    for lib in $(ldd "$src" | grep -oE '/[^ ]+\.so[^ ]*'); do
        [ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
    done
}
copy_bin /bin/bash /bin/bash
ln -sf bash "$root/bin/sh"
copy_bin /sbin/ip /sbin/ip
copy_bin /usr/sbin/ethtool /sbin/ethtool
copy_bin /usr/bin/netperf /bin/netperf
copy_bin /usr/bin/netserver /bin/netserver
copy_bin /usr/bin/iperf3 /bin/iperf3
copy_bin /sbin/modprobe /sbin/modprobe

# Modules with their dependencies, resolved against the guest kernel.
mods=$work/x/lib/modules/$kver
depmod -b "$work/x" "$kver"
for m in virtio_pci virtio_net 8021q igb igbvf vfio vfio_iommu_type1 vfio-pci; do
    modprobe -d "$work/x" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | sort -u | while read -r ko; do
    rel=${ko#"$work/x"}
    mkdir -p "$root$(dirname "$rel")"
    cp "$ko" "$root$rel"
done
cp "$mods"/modules.order "$mods"/modules.builtin* "$root/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$root" "$kver"

cp "$repo/guest/init" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -6 >"$work/initramfs.cpio.gz")

mv "$work/vmlinux" "$out/vmlinux"
mv "$work/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
echo "$kver" >"$out/kernel-version"
echo "$stamp_want" >"$out/stamp"
echo "build-guest: $out ($(du -h "$out/initramfs.cpio.gz" | cut -f1) initramfs)"
