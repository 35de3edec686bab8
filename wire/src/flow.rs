//! The flow key: the header fields the team hash policies read, as far as
//! a frame has them.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::MacAddr;
use crate::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, is_vlan_tpid, tci_vid};
use crate::ip::{IPPROTO_TCP, IPPROTO_UDP, Ipv4Header, Ipv6Header, l4_ports};

/// Source and destination address of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpPair {
    /// IPv4.
    V4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
    },
    /// IPv6.
    V6 {
        /// Source address.
        src: Ipv6Addr,
        /// Destination address.
        dst: Ipv6Addr,
    },
}

impl fmt::Display for IpPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpPair::V4 { src, dst } => write!(f, "{src} <-> {dst}"),
            IpPair::V6 { src, dst } => write!(f, "{src} <-> {dst}"),
        }
    }
}

/// The header fields the hash policies read, as far as the frame had them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Destination MAC (zero if the frame is shorter than 6 bytes).
    pub dst_mac: MacAddr,
    /// Source MAC (zero if the frame is shorter than 12 bytes).
    pub src_mac: MacAddr,
    /// VLAN ID of the outermost tag, if tagged.
    pub vlan: Option<u16>,
    /// Ethertype after the tags, if the frame reached it.
    pub ethertype: Option<u16>,
    /// IP addresses, if the frame carries a complete IPv4 or IPv6 header.
    pub ip: Option<IpPair>,
    /// IPv4 protocol or IPv6 (first) next-header, with `ip`.
    pub protocol: Option<u8>,
    /// IPv4 fragment (MF set or offset non-zero): ports are not read.
    pub fragment: bool,
    /// TCP/UDP source and destination port, if present and readable.
    pub ports: Option<(u16, u16)>,
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Reads the flow key of an Ethernet frame. Never panics; missing or
/// malformed layers are simply absent from the key.
///
/// It reads Ethernet, up to two VLAN tags (any TPID for which
/// [`is_vlan_tpid`] holds: 802.1Q `0x8100`, 802.1ad `0x88a8`, the
/// pre-standard `0x9100`), then IPv4 (honouring IHL) or IPv6, then TCP/UDP
/// ports: at most the first 86 bytes (two tags, a 60-byte IPv4 header, 4
/// bytes of ports), with no allocation, whatever the input. What it does
/// *not* do, on purpose:
///
/// - IPv6 extension headers are not walked: the ports are read only when
///   the fixed header's next-header is TCP or UDP. A TCP segment behind a
///   hop-by-hop, routing or fragment header hashes on its addresses alone
///   (still consistently: every packet of such a flow carries the same
///   chain, except fragments, see next point).
/// - IPv4 fragments (MF set or offset non-zero) hash on their addresses
///   alone, since only the first fragment carries ports. All fragments of
///   a datagram thus leave on one member, but possibly not the member the
///   flow's unfragmented packets use (the Linux `layer3+4` caveat).
/// - Checksums and IPv4 total length are not checked: a hash needs none.
#[inline]
pub fn parse_flow_key(frame: &[u8]) -> FlowKey {
    let mut key = FlowKey::default();
    parse_into(frame, &mut key);
    key
}

#[inline]
fn parse_into(frame: &[u8], key: &mut FlowKey) -> Option<()> {
    key.dst_mac = MacAddr::from_bytes(frame)?;
    key.src_mac = MacAddr::from_bytes(frame.get(6..)?)?;
    let mut at = 12;
    let mut ethertype = be16(frame, at)?;
    for _ in 0..2 {
        if !is_vlan_tpid(ethertype) {
            break;
        }
        let tci = be16(frame, at + 2)?;
        key.vlan.get_or_insert(tci_vid(tci));
        at += 4;
        ethertype = be16(frame, at)?;
    }
    key.ethertype = Some(ethertype);
    let l3 = frame.get(at + 2..)?;
    match ethertype {
        ETHERTYPE_IPV4 => {
            let ip = Ipv4Header::new_checked(l3)?;
            let protocol = ip.protocol();
            key.ip = Some(IpPair::V4 {
                src: ip.src(),
                dst: ip.dst(),
            });
            key.protocol = Some(protocol);
            key.fragment = ip.is_fragment();
            if !key.fragment && (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) {
                key.ports = Some(l4_ports(ip.payload())?);
            }
        }
        ETHERTYPE_IPV6 => {
            let ip = Ipv6Header::new_checked(l3)?;
            let next = ip.next_header();
            key.ip = Some(IpPair::V6 {
                src: ip.src(),
                dst: ip.dst(),
            });
            key.protocol = Some(next);
            if next == IPPROTO_TCP || next == IPPROTO_UDP {
                key.ports = Some(l4_ports(ip.payload())?);
            }
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ethernet::{TPID_8021AD, TPID_8021Q, TPID_QINQ_OLD};

    const A: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 2]);

    /// An Ethernet header (optionally tagged) in front of `payload`.
    fn eth(dst: MacAddr, src: MacAddr, vlan: Option<u16>, ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst.0);
        f.extend_from_slice(&src.0);
        if let Some(v) = vlan {
            f.extend_from_slice(&TPID_8021Q.to_be_bytes());
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// An IPv4 header with `options` 32-bit words of options, then `l4`.
    fn ipv4(
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        frag: u16,
        options: usize,
        l4: &[u8],
    ) -> Vec<u8> {
        let ihl = 5 + options;
        let mut h = vec![0u8; ihl * 4];
        h[0] = 0x40 | ihl as u8;
        let total = (ihl * 4 + l4.len()) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[8] = 64;
        h[9] = proto;
        h[12..16].copy_from_slice(&src);
        h[16..20].copy_from_slice(&dst);
        h.extend_from_slice(l4);
        h
    }

    /// An IPv6 header with next-header `next`, then `l4`.
    fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, l4: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 40];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
        h[6] = next;
        h[7] = 64;
        h[8..24].copy_from_slice(&src);
        h[24..40].copy_from_slice(&dst);
        h.extend_from_slice(l4);
        h
    }

    /// The first 8 bytes of a TCP/UDP header: ports, then zeros.
    fn ports(sp: u16, dp: u16) -> Vec<u8> {
        let mut l4 = vec![0u8; 8];
        l4[0..2].copy_from_slice(&sp.to_be_bytes());
        l4[2..4].copy_from_slice(&dp.to_be_bytes());
        l4
    }

    fn v6(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[2] = 0x0d;
        a[3] = 0xb8;
        a[15] = last;
        a
    }

    #[test]
    fn parses_tagged_tcp_over_ipv4_with_options() {
        let ip = ipv4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            IPPROTO_TCP,
            0x4000,
            2,
            &ports(1234, 80),
        );
        let f = eth(B, A, Some(0x2064), ETHERTYPE_IPV4, &ip);
        let k = parse_flow_key(&f);
        assert_eq!(k.dst_mac, B);
        assert_eq!(k.src_mac, A);
        assert_eq!(k.vlan, Some(100), "PCP bits masked off");
        assert_eq!(k.ethertype, Some(ETHERTYPE_IPV4));
        assert_eq!(
            k.ip,
            Some(IpPair::V4 {
                src: Ipv4Addr::new(10, 0, 0, 1),
                dst: Ipv4Addr::new(10, 0, 0, 2)
            })
        );
        assert_eq!(k.protocol, Some(IPPROTO_TCP));
        assert!(!k.fragment, "DF alone is not a fragment");
        assert_eq!(
            k.ports,
            Some((1234, 80)),
            "ports read after the IHL, not at 20"
        );
    }

    #[test]
    fn ipv4_fragments_have_no_ports() {
        for frag in [0x2000u16, 0x0001, 0x20ff] {
            let ip = ipv4(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                IPPROTO_UDP,
                frag,
                0,
                &ports(1, 2),
            );
            let k = parse_flow_key(&eth(B, A, None, ETHERTYPE_IPV4, &ip));
            assert!(k.fragment, "{frag:#x}");
            assert_eq!(k.ports, None);
            assert!(k.ip.is_some());
        }
    }

    #[test]
    fn parses_qinq_keeping_the_outer_vlan() {
        let ip = ipv4(
            [1, 1, 1, 1],
            [2, 2, 2, 2],
            IPPROTO_UDP,
            0,
            0,
            &ports(53, 5353),
        );
        let mut inner = Vec::new();
        inner.extend_from_slice(&200u16.to_be_bytes());
        inner.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        inner.extend_from_slice(&ip);
        let mut f = eth(B, A, None, TPID_8021AD, &10u16.to_be_bytes());
        f.extend_from_slice(&TPID_8021Q.to_be_bytes());
        f.extend_from_slice(&inner);
        let k = parse_flow_key(&f);
        assert_eq!(k.vlan, Some(10));
        assert_eq!(k.ports, Some((53, 5353)));
    }

    #[test]
    fn parses_ipv6_udp_but_not_behind_extension_headers() {
        let k = parse_flow_key(&eth(
            B,
            A,
            None,
            ETHERTYPE_IPV6,
            &ipv6(v6(1), v6(2), IPPROTO_UDP, &ports(9, 10)),
        ));
        assert_eq!(k.ports, Some((9, 10)));
        assert!(matches!(k.ip, Some(IpPair::V6 { .. })));
        // Hop-by-hop (0) in front of TCP: addresses only.
        let mut hbh = vec![IPPROTO_TCP, 0, 0, 0, 0, 0, 0, 0];
        hbh.extend_from_slice(&ports(9, 10));
        let k = parse_flow_key(&eth(
            B,
            A,
            None,
            ETHERTYPE_IPV6,
            &ipv6(v6(1), v6(2), 0, &hbh),
        ));
        assert_eq!(k.protocol, Some(0));
        assert_eq!(k.ports, None);
        assert!(k.ip.is_some());
    }

    #[test]
    fn short_and_bad_headers_degrade_to_fewer_fields() {
        assert_eq!(parse_flow_key(&[]), FlowKey::default());
        assert_eq!(parse_flow_key(&A.0).dst_mac, A);
        assert_eq!(parse_flow_key(&[0xff; 13]).ethertype, None);
        // IHL 4 (too small), wrong version, header longer than the frame.
        let mut ip = ipv4([1, 2, 3, 4], [5, 6, 7, 8], IPPROTO_TCP, 0, 0, &ports(1, 2));
        ip[0] = 0x44;
        assert_eq!(
            parse_flow_key(&eth(B, A, None, ETHERTYPE_IPV4, &ip)).ip,
            None
        );
        ip[0] = 0x65;
        assert_eq!(
            parse_flow_key(&eth(B, A, None, ETHERTYPE_IPV4, &ip)).ip,
            None
        );
        ip[0] = 0x4f;
        assert_eq!(
            parse_flow_key(&eth(B, A, None, ETHERTYPE_IPV4, &ip)).ip,
            None
        );
        // Ports cut off: addresses stay.
        let ip = ipv4([1, 2, 3, 4], [5, 6, 7, 8], IPPROTO_TCP, 0, 0, &[0, 1, 0]);
        let k = parse_flow_key(&eth(B, A, None, ETHERTYPE_IPV4, &ip));
        assert!(k.ip.is_some());
        assert_eq!(k.ports, None);
        // A tag with nothing after it.
        let k = parse_flow_key(&eth(B, A, None, TPID_8021Q, &[0, 5]));
        assert_eq!((k.vlan, k.ethertype), (Some(5), None));
    }

    #[test]
    fn reads_past_every_vlan_tpid() {
        let mut f = vec![0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1];
        f.extend_from_slice(&TPID_QINQ_OLD.to_be_bytes());
        f.extend_from_slice(&0x200au16.to_be_bytes());
        f.extend_from_slice(&TPID_8021Q.to_be_bytes());
        f.extend_from_slice(&20u16.to_be_bytes());
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[9] = IPPROTO_UDP;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0, 53, 0, 54]);
        let k = parse_flow_key(&f);
        assert_eq!(k.vlan, Some(10));
        assert_eq!(k.ethertype, Some(ETHERTYPE_IPV4));
        assert_eq!(k.ports, Some((53, 54)));
        assert_eq!(
            k.ip.map(|ip| ip.to_string()).as_deref(),
            Some("10.0.0.1 <-> 10.0.0.2")
        );
        assert_eq!(parse_flow_key(&f[..5]), FlowKey::default());
        assert_eq!(parse_flow_key(&f[..11]).src_mac, MacAddr::ZERO);
    }
}
