//! Completing TCP/UDP checksums that the kernel left for the NIC to fill
//! in (`CHECKSUM_PARTIAL` frames from local senders and veth peers, which
//! the netdev ports receive). Plain byte slices in and out.

use crate::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_TCP, IPPROTO_UDP, is_vlan_tpid};

/// Fills in the TCP or UDP checksum of an Ethernet frame (untagged, or
/// with VLAN tags, [`is_vlan_tpid`]) carrying unfragmented IPv4, or IPv6 without
/// extension headers. The kernel hands over frames from local senders and
/// veth peers with the checksum left for the NIC (`CHECKSUM_PARTIAL`);
/// on the switch they would reach guests and the wire with a wrong one.
/// Returns false, leaving the frame as it is, for anything else.
pub fn complete_l4_checksum(f: &mut [u8]) -> bool {
    let be16 = |f: &[u8], o: usize| f.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut off = 12;
    let mut ethertype = be16(f, off);
    while ethertype.is_some_and(is_vlan_tpid) {
        off += 4;
        ethertype = be16(f, off);
    }
    let l3 = off + 2;
    let (proto, l4, l4_len, mut sum) = match ethertype {
        Some(ETHERTYPE_IPV4) => {
            let Some(&vihl) = f.get(l3) else {
                return false;
            };
            let ihl = usize::from(vihl & 0x0f) * 4;
            let (Some(total), Some(frag)) = (be16(f, l3 + 2), be16(f, l3 + 6)) else {
                return false;
            };
            // A fragment (offset or more-fragments set) has no L4 checksum
            // of its own to complete.
            if vihl >> 4 != 4 || ihl < 20 || frag & 0x3fff != 0 {
                return false;
            }
            let total = usize::from(total);
            let Some(l4_len) = total.checked_sub(ihl) else {
                return false;
            };
            let Some(addrs) = f.get(l3 + 12..l3 + 20) else {
                return false;
            };
            (f[l3 + 9], l3 + ihl, l4_len, ones_sum(addrs, 0))
        }
        Some(ETHERTYPE_IPV6) => {
            let (Some(payload), Some(addrs)) = (be16(f, l3 + 4), f.get(l3 + 8..l3 + 40)) else {
                return false;
            };
            (f[l3 + 6], l3 + 40, usize::from(payload), ones_sum(addrs, 0))
        }
        _ => return false,
    };
    let csum_at = match proto {
        IPPROTO_TCP => 16,
        IPPROTO_UDP => 6,
        _ => return false,
    };
    if l4 + l4_len > f.len() || l4_len < csum_at + 2 || l4_len > 0xffff {
        return false;
    }
    sum += u32::from(proto) + l4_len as u32;
    f[l4 + csum_at] = 0;
    f[l4 + csum_at + 1] = 0;
    sum = ones_sum(&f[l4..l4 + l4_len], sum);
    let mut c = !fold(sum);
    if proto == IPPROTO_UDP && c == 0 {
        c = 0xffff;
    }
    f[l4 + csum_at..l4 + csum_at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Adds `data` as big-endian 16-bit words to `sum` (odd tail padded).
fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
        if sum >= 0x8000_0000 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [last] = words.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds a 32-bit one's-complement sum to 16 bits.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A non-IP frame of `len` bytes (an IEEE local experimental
    /// ethertype) numbered `seq`.
    fn frame(seq: u32, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len.max(18)];
        f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
        f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        f[14..18].copy_from_slice(&seq.to_be_bytes());
        f
    }

    /// `f` with an outer tag (`tpid`, `tci`) after the MAC addresses.
    fn tagged(f: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
        let mut t = Vec::with_capacity(f.len() + 4);
        t.extend_from_slice(&f[..12]);
        t.extend_from_slice(&tpid.to_be_bytes());
        t.extend_from_slice(&tci.to_be_bytes());
        t.extend_from_slice(&f[12..]);
        t
    }

    /// Frames built by etherparse (correct checksums): with the checksum
    /// field spoiled, `complete_l4_checksum` restores exactly those bytes.
    #[test]
    fn checksum_completion_matches_etherparse() {
        use etherparse::PacketBuilder;
        let payload: Vec<u8> = (0..301u32).map(|i| (i * 7) as u8).collect();
        let mac_a = [2, 0, 0, 0, 0, 1];
        let mac_b = [2, 0, 0, 0, 0, 2];
        let mut frames = Vec::new();
        let mut f = Vec::new();
        PacketBuilder::ethernet2(mac_a, mac_b)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(4000, 53)
            .write(&mut f, &payload)
            .unwrap();
        frames.push((f, 14 + 20 + 6));
        let mut f = Vec::new();
        PacketBuilder::ethernet2(mac_a, mac_b)
            .ipv4([192, 168, 1, 1], [172, 16, 0, 9], 64)
            .tcp(443, 51000, 123_456, 64_000)
            .write(&mut f, &payload[..200])
            .unwrap();
        frames.push((f, 14 + 20 + 16));
        let mut f = Vec::new();
        PacketBuilder::ethernet2(mac_a, mac_b)
            .ipv6([0xfd; 16], [0xfe; 16], 64)
            .tcp(80, 40000, 1, 1000)
            .write(&mut f, &payload)
            .unwrap();
        frames.push((f, 14 + 40 + 16));
        let mut f = Vec::new();
        PacketBuilder::ethernet2(mac_a, mac_b)
            .ipv6([0x20; 16], [0x30; 16], 64)
            .udp(1, 2)
            .write(&mut f, &payload[..17])
            .unwrap();
        frames.push((f, 14 + 40 + 6));
        for (good, at) in frames {
            for spoil in [[0, 0], [0x12, 0x34]] {
                let mut f = good.clone();
                f[at..at + 2].copy_from_slice(&spoil);
                assert!(complete_l4_checksum(&mut f));
                assert_eq!(f, good);
                // The same behind an 802.1Q tag.
                let mut t = tagged(&f, 0x8100, 100);
                t[at + 4..at + 6].copy_from_slice(&spoil);
                assert!(complete_l4_checksum(&mut t));
                assert_eq!(t, tagged(&good, 0x8100, 100));
            }
        }
        // Not TCP/UDP over IP, or a fragment: left alone.
        let mut f = frame(1, 100);
        assert!(!complete_l4_checksum(&mut f));
        assert_eq!(f, frame(1, 100));
        let mut f = Vec::new();
        PacketBuilder::ethernet2(mac_a, mac_b)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(4000, 53)
            .write(&mut f, &payload)
            .unwrap();
        f[14 + 6] = 0x20; // more fragments
        let before = f.clone();
        assert!(!complete_l4_checksum(&mut f));
        assert_eq!(f, before);
        // Truncated: refused, no panic.
        let mut short = f[..30].to_vec();
        short[14 + 6] = 0;
        assert!(!complete_l4_checksum(&mut short));
    }
}
