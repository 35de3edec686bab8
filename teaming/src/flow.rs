//! The hashes of the policies, over the flow key [`wire::parse_flow_key`]
//! reads from a frame.

use std::fmt;
use std::net::Ipv6Addr;

use wire::{FlowKey, IPPROTO_TCP, IPPROTO_UDP, IpPair, parse_flow_key};

use crate::{Bucket, GuestPort, MacAddr, TeamPolicy};

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
fn v6_u64(a: &Ipv6Addr) -> u64 {
    let x = a.to_bits();
    mix((x >> 64) as u64 ^ SEED) ^ x as u64
}

/// Each address of `ip` as 64 bits: IPv4 as is (in the high 32 bits,
/// leaving room for a port below), IPv6 folded.
#[inline]
fn endpoints(ip: &IpPair) -> (u64, u64) {
    match ip {
        IpPair::V4 { src, dst } => (
            u64::from(src.to_bits()) << 16,
            u64::from(dst.to_bits()) << 16,
        ),
        IpPair::V6 { src, dst } => (v6_u64(src), v6_u64(dst)),
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
            HashBasis::SrcMac(m) => mix(m.to_u64() ^ SEED),
            HashBasis::MacPair { src, dst } => pair(src.to_u64(), dst.to_u64(), SEED),
            HashBasis::Ip(ip) => {
                let (a, b) = endpoints(ip);
                pair(a, b, SEED)
            }
            HashBasis::L4 {
                protocol,
                ip,
                src_port,
                dst_port,
            } => {
                // Endpoint = address with its port; the protocol seeds.
                let (a, b) = endpoints(ip);
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
            HashBasis::SrcMac(m) => write!(f, "src MAC {m}"),
            HashBasis::MacPair { src, dst } => {
                write!(f, "MACs {src} <-> {dst}")
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
/// path's first step (the flow key is [`wire::parse_flow_key`]'s). Parses only what the policy needs; O(1), no
/// allocation, never panics.
#[inline]
pub fn bucket_for(policy: TeamPolicy, port: GuestPort, frame: &[u8]) -> Bucket {
    match policy {
        TeamPolicy::PortId => Bucket(port.0 as u8),
        TeamPolicy::ExplicitFailover => Bucket(0),
        TeamPolicy::SrcMac => {
            let src = frame
                .get(6..)
                .and_then(MacAddr::from_bytes)
                .unwrap_or_default();
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
    use std::net::Ipv4Addr;

    use wire::{ETHERTYPE_IPV4, TPID_8021Q};

    use super::*;

    pub const A: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
    pub const B: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 2]);

    /// An Ethernet header (optionally tagged) in front of `payload`.
    pub fn eth(dst: MacAddr, src: MacAddr, vlan: Option<u16>, ty: u16, payload: &[u8]) -> Vec<u8> {
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

    /// The first 8 bytes of a TCP/UDP header: ports, then zeros.
    pub fn ports(sp: u16, dp: u16) -> Vec<u8> {
        let mut l4 = vec![0u8; 8];
        l4[0..2].copy_from_slice(&sp.to_be_bytes());
        l4[2..4].copy_from_slice(&dp.to_be_bytes());
        l4
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
            bucket_for(TeamPolicy::SrcMac, p, &A.0),
            src_mac_bucket(&MacAddr::ZERO)
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
