//! Property tests on untrusted bytes: nothing panics, hashes are consistent
//! and symmetric, and the frame builders round-trip.

mod common;

use common::*;
use proptest::prelude::*;
use teaming::{
    Beacon, FlowKey, GuestPort, HashBasis, IpPair, MacAddr, MemberIndex, TeamPolicy, Vlan,
    bucket_for, garp_frame, parse_flow_key, rarp_frame,
};

/// Frames that get past the Ethernet layer: up to two tags, an interesting
/// ethertype, an IP-looking first byte, random rest, cut anywhere.
fn framish() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(prop::sample::select(vec![0x8100u16, 0x88a8]), 0..=2),
        prop::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x88b5, 0x1234]),
        prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x44, 0x60, 0x00, 0xff]),
        prop::collection::vec(any::<u8>(), 0..90),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(tags, ty, first, rest, cut)| {
            let mut f = vec![0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1];
            for tag in tags {
                f.extend_from_slice(&tag.to_be_bytes());
                f.extend_from_slice(&[0x00, 0x0a]);
            }
            f.extend_from_slice(&ty.to_be_bytes());
            f.push(first);
            f.extend_from_slice(&rest);
            let len = cut.index(f.len() + 1);
            f.truncate(len);
            f
        })
}

fn swap(frame: &[u8]) -> Option<Vec<u8>> {
    // Swap addresses and ports of an untagged IPv4/IPv6 TCP/UDP frame.
    let mut f = frame.to_vec();
    let (src, dst, l4) = match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => (26..30, 30..34, 34),
        _ => (22..38, 38..54, 54),
    };
    let s = f[src.clone()].to_vec();
    let d = f[dst.clone()].to_vec();
    f[src.start..src.start + d.len()].copy_from_slice(&d);
    f[dst.start..dst.start + s.len()].copy_from_slice(&s);
    let (sp, dp) = (f.get(l4..l4 + 2)?.to_vec(), f.get(l4 + 2..l4 + 4)?.to_vec());
    f[l4..l4 + 2].copy_from_slice(&dp);
    f[l4 + 2..l4 + 4].copy_from_slice(&sp);
    Some(f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
        teaming::fuzz_frame(&data);
    }

    #[test]
    fn header_shaped_bytes_never_panic(f in framish()) {
        teaming::fuzz_frame(&f);
        let k = parse_flow_key(&f);
        if k.ports.is_some() {
            prop_assert!(k.ip.is_some() && !k.fragment);
        }
    }

    #[test]
    fn ip_and_l4_hashes_are_symmetric(
        v6 in any::<bool>(),
        a in any::<[u8; 16]>(),
        b in any::<[u8; 16]>(),
        sp in any::<u16>(),
        dp in any::<u16>(),
        udp in any::<bool>(),
    ) {
        let proto = if udp { 17 } else { 6 };
        let f = if v6 {
            eth(mac(2), mac(1), None, 0x86dd, &ipv6(a, b, proto, &ports(sp, dp)))
        } else {
            let (a4, b4) = ([a[0], a[1], a[2], a[3]], [b[0], b[1], b[2], b[3]]);
            eth(mac(2), mac(1), None, 0x0800, &ipv4(a4, b4, proto, 0, &ports(sp, dp)))
        };
        let back = swap(&f).expect("ports present");
        for policy in [TeamPolicy::IpHash, TeamPolicy::L4Hash] {
            prop_assert_eq!(bucket_for(policy, GuestPort(0), &f), bucket_for(policy, GuestPort(1), &back));
        }
        // The payload after the headers never matters.
        let mut longer = f.clone();
        longer.extend_from_slice(&a);
        for policy in TeamPolicy::ALL {
            prop_assert_eq!(bucket_for(policy, GuestPort(3), &f), bucket_for(policy, GuestPort(3), &longer));
        }
    }

    #[test]
    fn flow_keys_of_built_frames(
        a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), sp in any::<u16>(), dp in any::<u16>(),
        vlan in proptest::option::of(1u16..4095),
    ) {
        let f = eth(mac(2), mac(1), vlan, 0x0800, &ipv4(a, b, 17, 0, &ports(sp, dp)));
        let k = parse_flow_key(&f);
        prop_assert_eq!(k, FlowKey {
            dst_mac: mac(2),
            src_mac: mac(1),
            vlan,
            ethertype: Some(0x0800),
            ip: Some(IpPair::V4 { src: a.into(), dst: b.into() }),
            protocol: Some(17),
            fragment: false,
            ports: Some((sp, dp)),
        });
        let is_l4 = matches!(HashBasis::of(TeamPolicy::L4Hash, GuestPort(0), &k), HashBasis::L4 { .. });
        prop_assert!(is_l4);
    }

    #[test]
    fn beacons_round_trip(team_id in any::<u64>(), member in any::<u8>(), sequence in any::<u32>(),
                          src in any::<[u8; 6]>(), vlan in proptest::option::of(1u16..=4094)) {
        let b = Beacon { team_id, member: MemberIndex(member), sequence };
        let f = b.to_frame(&MacAddr(src), vlan.and_then(Vlan::new));
        prop_assert_eq!(f.len(), if vlan.is_some() { 64 } else { 60 });
        prop_assert_eq!(Beacon::parse(&f), Ok(b));
        prop_assert_eq!(&f[6..12], &src);
    }

    #[test]
    fn announcements_parse_back(src in any::<[u8; 6]>(), ip in any::<[u8; 4]>(), vlan in proptest::option::of(1u16..=4094)) {
        let v = vlan.and_then(Vlan::new);
        let src = MacAddr(src);
        for (f, ty) in [(rarp_frame(&src, v), 0x8035u16), (garp_frame(&src, ip.into(), v), 0x0806)] {
            let k = parse_flow_key(&f);
            prop_assert_eq!(k.dst_mac, MacAddr::BROADCAST);
            prop_assert_eq!(k.src_mac, src);
            prop_assert_eq!(k.vlan, vlan);
            prop_assert_eq!(k.ethertype, Some(ty));
            prop_assert_eq!(f.len(), 60 + if vlan.is_some() { 4 } else { 0 });
        }
    }
}
