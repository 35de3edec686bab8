//! Flow keys: just enough header parsing to hash a frame, and the hashes.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{Bucket, GuestPort, MacAddr, TeamPolicy, fmt_mac};

/// IPv4 ethertype.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// IPv6 ethertype.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q VLAN tag ethertype.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service tag ethertype (QinQ outer tag).
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

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

#[inline]
fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Reads the flow key of an Ethernet frame. Never panics; missing or
/// malformed layers are simply absent from the key.
///
/// It reads Ethernet, up to two VLAN tags (802.1Q `0x8100` or 802.1ad
/// `0x88a8`), then IPv4 (honouring IHL) or IPv6, then TCP/UDP ports: at
/// most the first 86 bytes (two tags, a 60-byte IPv4 header, 4 bytes of
/// ports), with no allocation, whatever the input. What it does *not* do,
/// on purpose:
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
    key.dst_mac = array(frame, 0)?;
    key.src_mac = array(frame, 6)?;
    let mut at = 12;
    let mut ethertype = be16(frame, at)?;
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        let tci = be16(frame, at + 2)?;
        key.vlan.get_or_insert(tci & 0x0fff);
        at += 4;
        ethertype = be16(frame, at)?;
    }
    key.ethertype = Some(ethertype);
    let l3 = frame.get(at + 2..)?;
    match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(l3, key),
        ETHERTYPE_IPV6 => parse_ipv6(l3, key),
        _ => None,
    }
}

#[inline]
fn parse_ipv4(l3: &[u8], key: &mut FlowKey) -> Option<()> {
    let b0 = *l3.first()?;
    let ihl = usize::from(b0 & 0x0f) * 4;
    if b0 >> 4 != 4 || ihl < 20 || l3.len() < ihl {
        return None;
    }
    let src: [u8; 4] = array(l3, 12)?;
    let dst: [u8; 4] = array(l3, 16)?;
    let protocol = l3[9];
    key.ip = Some(IpPair::V4 {
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
    });
    key.protocol = Some(protocol);
    key.fragment = be16(l3, 6)? & 0x3fff != 0;
    if !key.fragment && (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) {
        key.ports = Some((be16(l3, ihl)?, be16(l3, ihl + 2)?));
    }
    Some(())
}

#[inline]
fn parse_ipv6(l3: &[u8], key: &mut FlowKey) -> Option<()> {
    if l3.len() < 40 || l3[0] >> 4 != 6 {
        return None;
    }
    let src: [u8; 16] = array(l3, 8)?;
    let dst: [u8; 16] = array(l3, 24)?;
    let next = l3[6];
    key.ip = Some(IpPair::V6 {
        src: Ipv6Addr::from(src),
        dst: Ipv6Addr::from(dst),
    });
    key.protocol = Some(next);
    if next == IPPROTO_TCP || next == IPPROTO_UDP {
        key.ports = Some((be16(l3, 40)?, be16(l3, 42)?));
    }
    Some(())
}

// ---- hashing -------------------------------------------------------------

/// Fixed seed: the same frame lands in the same bucket after a restart, so
/// `explain` answers are reproducible. (A fixed seed lets a guest choose
/// flows that share a bucket; it can only crowd its own traffic.)
const SEED: u64 = 0x243f_6a88_85a3_08d3;

/// The splitmix64 finaliser: cheap and well mixed in the top bits.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Order-independent hash of two values: both directions of a pair agree.
#[inline]
fn pair(a: u64, b: u64, seed: u64) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    mix(mix(lo ^ seed).wrapping_add(hi))
}

#[inline]
fn mac_u64(m: &MacAddr) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

#[inline]
fn v6_u64(a: &Ipv6Addr) -> u64 {
    let x = a.to_bits();
    mix((x >> 64) as u64 ^ SEED) ^ x as u64
}

impl IpPair {
    /// Each address as 64 bits: IPv4 as is (in the high 32 bits, leaving
    /// room for a port below), IPv6 folded.
    #[inline]
    fn endpoints(&self) -> (u64, u64) {
        match self {
            IpPair::V4 { src, dst } => (
                u64::from(src.to_bits()) << 16,
                u64::from(dst.to_bits()) << 16,
            ),
            IpPair::V6 { src, dst } => (v6_u64(src), v6_u64(dst)),
        }
    }
}

impl fmt::Display for IpPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpPair::V4 { src, dst } => write!(f, "{src} <-> {dst}"),
            IpPair::V6 { src, dst } => write!(f, "{src} <-> {dst}"),
        }
    }
}

/// What a policy hashed for one frame: the input of the bucket choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashBasis {
    /// `port-id`: the originating guest port (bucket = its low 8 bits).
    GuestPort(GuestPort),
    /// `src-mac`: the source MAC.
    SrcMac(MacAddr),
    /// `ip-hash`/`l4-hash` on a non-IP frame: source + destination MAC.
    MacPair {
        /// Source MAC.
        src: MacAddr,
        /// Destination MAC.
        dst: MacAddr,
    },
    /// `ip-hash` (or `l4-hash` without ports): the address pair.
    Ip(IpPair),
    /// `l4-hash` on TCP/UDP: the 5-tuple.
    L4 {
        /// IP protocol (6 or 17).
        protocol: u8,
        /// Addresses.
        ip: IpPair,
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// `explicit-failover`: nothing is hashed.
    FailoverOrder,
}

impl HashBasis {
    /// What `policy` hashes for a frame with flow key `key` sent by `port`.
    #[inline]
    pub fn of(policy: TeamPolicy, port: GuestPort, key: &FlowKey) -> HashBasis {
        let mac_pair = HashBasis::MacPair {
            src: key.src_mac,
            dst: key.dst_mac,
        };
        match policy {
            TeamPolicy::PortId => HashBasis::GuestPort(port),
            TeamPolicy::SrcMac => HashBasis::SrcMac(key.src_mac),
            TeamPolicy::ExplicitFailover => HashBasis::FailoverOrder,
            TeamPolicy::IpHash => key.ip.map_or(mac_pair, HashBasis::Ip),
            TeamPolicy::L4Hash => match (key.ip, key.protocol, key.ports) {
                (Some(ip), Some(protocol), Some((src_port, dst_port))) => HashBasis::L4 {
                    protocol,
                    ip,
                    src_port,
                    dst_port,
                },
                (Some(ip), _, _) => HashBasis::Ip(ip),
                (None, _, _) => mac_pair,
            },
        }
    }

    /// The bucket this basis selects.
    #[inline]
    pub fn bucket(&self) -> Bucket {
        let h = match self {
            HashBasis::GuestPort(p) => return Bucket(p.0 as u8),
            HashBasis::FailoverOrder => return Bucket(0),
            HashBasis::SrcMac(m) => mix(mac_u64(m) ^ SEED),
            HashBasis::MacPair { src, dst } => pair(mac_u64(src), mac_u64(dst), SEED),
            HashBasis::Ip(ip) => {
                let (a, b) = ip.endpoints();
                pair(a, b, SEED)
            }
            HashBasis::L4 {
                protocol,
                ip,
                src_port,
                dst_port,
            } => {
                // Endpoint = address with its port; the protocol seeds.
                let (a, b) = ip.endpoints();
                let a = a ^ u64::from(*src_port);
                let b = b ^ u64::from(*dst_port);
                pair(a, b, SEED ^ u64::from(*protocol) << 56)
            }
        };
        Bucket((h >> 56) as u8)
    }
}

impl fmt::Display for HashBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashBasis::GuestPort(p) => write!(f, "guest port {}", p.0),
            HashBasis::SrcMac(m) => write!(f, "src MAC {}", fmt_mac(m)),
            HashBasis::MacPair { src, dst } => {
                write!(f, "MACs {} <-> {}", fmt_mac(src), fmt_mac(dst))
            }
            HashBasis::Ip(ip) => write!(f, "{ip}"),
            HashBasis::L4 {
                protocol,
                ip,
                src_port,
                dst_port,
            } => {
                let proto = match *protocol {
                    IPPROTO_TCP => "tcp",
                    IPPROTO_UDP => "udp",
                    _ => "ip",
                };
                match ip {
                    IpPair::V4 { src, dst } => {
                        write!(f, "{proto} {src}:{src_port} <-> {dst}:{dst_port}")
                    }
                    IpPair::V6 { src, dst } => {
                        write!(f, "{proto} [{src}]:{src_port} <-> [{dst}]:{dst_port}")
                    }
                }
            }
            HashBasis::FailoverOrder => f.write_str("failover order"),
        }
    }
}

/// The bucket of a frame sent by guest `port` under `policy`: the fast
/// path's first step. Parses only what the policy needs; O(1), no
/// allocation, never panics.
#[inline]
pub fn bucket_for(policy: TeamPolicy, port: GuestPort, frame: &[u8]) -> Bucket {
    match policy {
        TeamPolicy::PortId => Bucket(port.0 as u8),
        TeamPolicy::ExplicitFailover => Bucket(0),
        TeamPolicy::SrcMac => {
            let src: MacAddr = array(frame, 6).unwrap_or_default();
            HashBasis::SrcMac(src).bucket()
        }
        TeamPolicy::IpHash | TeamPolicy::L4Hash => {
            HashBasis::of(policy, port, &parse_flow_key(frame)).bucket()
        }
    }
}

/// The bucket the `src-mac` policy gives frames from `mac`.
pub fn src_mac_bucket(mac: &MacAddr) -> Bucket {
    HashBasis::SrcMac(*mac).bucket()
}

/// The bucket the `port-id` policy gives guest `port`.
pub const fn port_bucket(port: GuestPort) -> Bucket {
    Bucket(port.0 as u8)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const A: MacAddr = [0x52, 0x54, 0, 0, 0, 1];
    pub const B: MacAddr = [0x52, 0x54, 0, 0, 0, 2];

    /// An Ethernet header (optionally tagged) in front of `payload`.
    pub fn eth(dst: MacAddr, src: MacAddr, vlan: Option<u16>, ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        if let Some(v) = vlan {
            f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&ty.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// An IPv4 header with `options` 32-bit words of options, then `l4`.
    pub fn ipv4(
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
    pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, l4: &[u8]) -> Vec<u8> {
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
    pub fn ports(sp: u16, dp: u16) -> Vec<u8> {
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
        let mut f = eth(B, A, None, ETHERTYPE_QINQ, &10u16.to_be_bytes());
        f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
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
        assert_eq!(parse_flow_key(&A).dst_mac, A);
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
        let k = parse_flow_key(&eth(B, A, None, ETHERTYPE_VLAN, &[0, 5]));
        assert_eq!((k.vlan, k.ethertype), (Some(5), None));
    }

    #[test]
    fn each_policy_hashes_what_it_says() {
        let tcp = |sp: u16| {
            eth(
                B,
                A,
                None,
                ETHERTYPE_IPV4,
                &ipv4(
                    [10, 0, 0, 1],
                    [10, 0, 0, 2],
                    IPPROTO_TCP,
                    0,
                    0,
                    &ports(sp, 80),
                ),
            )
        };
        let p = GuestPort(7);
        // port-id ignores the frame; explicit failover ignores everything.
        assert_eq!(bucket_for(TeamPolicy::PortId, p, &tcp(1)), Bucket(7));
        assert_eq!(
            bucket_for(TeamPolicy::PortId, GuestPort(256 + 7), &[]),
            Bucket(7)
        );
        assert_eq!(
            bucket_for(TeamPolicy::ExplicitFailover, p, &tcp(1)),
            Bucket(0)
        );
        // ip-hash ignores ports and the sending port; l4-hash does not.
        assert_eq!(
            bucket_for(TeamPolicy::IpHash, p, &tcp(1)),
            bucket_for(TeamPolicy::IpHash, GuestPort(9), &tcp(2))
        );
        let l4: std::collections::HashSet<_> = (0..64)
            .map(|sp| bucket_for(TeamPolicy::L4Hash, p, &tcp(sp)))
            .collect();
        assert!(
            l4.len() > 32,
            "64 source ports spread over {} buckets",
            l4.len()
        );
        // src-mac reads only the source MAC.
        assert_eq!(
            bucket_for(TeamPolicy::SrcMac, p, &tcp(1)),
            src_mac_bucket(&A)
        );
        assert_eq!(
            bucket_for(TeamPolicy::SrcMac, p, &A),
            src_mac_bucket(&[0; 6])
        );
        // Fast path and explain agree.
        for policy in TeamPolicy::ALL {
            let f = tcp(3);
            assert_eq!(
                bucket_for(policy, p, &f),
                HashBasis::of(policy, p, &parse_flow_key(&f)).bucket(),
                "{policy}"
            );
        }
    }

    #[test]
    fn fallbacks_follow_the_documented_order() {
        let arp = eth(B, A, None, 0x0806, &[0; 28]);
        let k = parse_flow_key(&arp);
        let mac = HashBasis::MacPair { src: A, dst: B };
        assert_eq!(HashBasis::of(TeamPolicy::IpHash, GuestPort(0), &k), mac);
        assert_eq!(HashBasis::of(TeamPolicy::L4Hash, GuestPort(0), &k), mac);
        let icmp = eth(
            B,
            A,
            None,
            ETHERTYPE_IPV4,
            &ipv4([1, 1, 1, 1], [2, 2, 2, 2], 1, 0, 0, &[8, 0, 0, 0]),
        );
        let k = parse_flow_key(&icmp);
        assert!(matches!(
            HashBasis::of(TeamPolicy::L4Hash, GuestPort(0), &k),
            HashBasis::Ip(_)
        ));
    }

    #[test]
    fn hashes_spread_evenly() {
        // 16384 IPv4 pairs from a fixed LCG over 4 slots (bucket % 4):
        // each slot within 5% of a quarter.
        let mut x: u64 = 1;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 32) as u32
        };
        let mut per_slot = [0usize; 4];
        for _ in 0..16384 {
            let k = FlowKey {
                ip: Some(IpPair::V4 {
                    src: Ipv4Addr::from(next()),
                    dst: Ipv4Addr::from(next()),
                }),
                ..FlowKey::default()
            };
            let b = HashBasis::of(TeamPolicy::IpHash, GuestPort(0), &k).bucket();
            per_slot[usize::from(b.0) % 4] += 1;
        }
        for n in per_slot {
            assert!((3891..=4301).contains(&n), "{per_slot:?}");
        }
    }
}
