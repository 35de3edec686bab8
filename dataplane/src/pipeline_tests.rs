//! Table-driven tests of the forwarding pipeline through a hand-driven
//! PMD and memory ports.

use wire::{MacAddr, TPID_8021AD, TPID_8021Q};

use crate::mac_table::MacTableSpec;
use crate::snapshot::{SecurityPolicy, StaticMac, SwitchSpec};
use crate::stats::DropReason;
use crate::testing::{Harness, frame, guest, mac, uplink};
use crate::vlan::{VlanMode, VlanSet};

const Q: u16 = TPID_8021Q;
const BCAST: MacAddr = MacAddr::BROADCAST;

/// (ingress port, destination, tags, ports expected to receive)
type FloodCase = (u16, MacAddr, Vec<(u16, u16)>, Vec<u16>);
/// (ingress port, tags in, egress port, tags expected out)
type TagCase = (u16, Vec<(u16, u16)>, u16, Vec<(u16, u16)>);

fn trunk(ranges: &[(u16, u16)], native: Option<u16>) -> VlanMode {
    VlanMode::Trunk {
        allowed: VlanSet::from_ranges(ranges),
        native,
    }
}

fn spec(ports: Vec<crate::snapshot::PortSpec>) -> SwitchSpec {
    SwitchSpec {
        ports,
        ..Default::default()
    }
}

/// Ports that got at least one frame.
fn receivers(h: &mut Harness) -> Vec<u16> {
    h.recv_everywhere()
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn learning_turns_flood_into_unicast() {
    let a = VlanMode::Access(10);
    let mut h = Harness::new(spec(vec![
        guest(1, a.clone()),
        guest(2, a.clone()),
        guest(3, a),
    ]));
    h.send(1, &frame(mac(2), mac(1), &[], b"x"));
    assert_eq!(receivers(&mut h), vec![2, 3], "unknown unicast floods");
    h.send(2, &frame(mac(1), mac(2), &[], b"y"));
    assert_eq!(receivers(&mut h), vec![1], "learned MAC is unicast");
    h.send(1, &frame(mac(2), mac(1), &[], b"z"));
    assert_eq!(receivers(&mut h), vec![2]);
    assert_eq!(h.stats(1).rx_packets, 2);
    assert_eq!(h.stats(2).tx_packets, 2);
    assert_eq!(h.stats(3).tx_packets, 1);
}

#[test]
fn flooding_stays_in_vlan_and_off_ingress() {
    let mut h = Harness::new(spec(vec![
        guest(1, VlanMode::Access(10)),
        guest(2, VlanMode::Access(10)),
        guest(3, VlanMode::Access(20)),
        guest(4, trunk(&[(20, 30)], None)),
        guest(5, trunk(&[(10, 10)], None)),
    ]));
    let cases: &[FloodCase] = &[
        (1, BCAST, vec![], vec![2, 5]),
        (3, BCAST, vec![], vec![4]),
        (4, BCAST, vec![(Q, 20)], vec![3]),
        (4, BCAST, vec![(Q, 25)], vec![]),
        (5, mac(99), vec![(Q, 10)], vec![1, 2]),
        (
            2,
            "01:00:5e:00:00:01".parse().expect("mac"),
            vec![],
            vec![1, 5],
        ),
    ];
    for (i, (from, dst, tags, want)) in cases.iter().enumerate() {
        h.send(*from, &frame(*dst, mac(100 + i as u64), tags, b"f"));
        assert_eq!(&receivers(&mut h), want, "case {i}");
    }
    assert_eq!(h.stats(4).drop_count(DropReason::NoDestination), 1);
}

#[test]
fn never_uplink_to_uplink() {
    let t = trunk(&[(10, 10)], None);
    let mut h = Harness::new(spec(vec![
        guest(1, VlanMode::Access(10)),
        uplink(8, t.clone()),
        uplink(9, t),
    ]));
    h.send(8, &frame(BCAST, mac(80), &[(Q, 10)], b""));
    assert_eq!(
        receivers(&mut h),
        vec![1],
        "uplink flood reaches guests only"
    );
    // mac(90) lives behind uplink 9; a frame for it arriving on uplink 8 dies.
    h.send(9, &frame(BCAST, mac(90), &[(Q, 10)], b""));
    receivers(&mut h);
    h.send(8, &frame(mac(90), mac(81), &[(Q, 10)], b""));
    assert!(receivers(&mut h).is_empty());
    assert_eq!(h.stats(8).drop_count(DropReason::UplinkToUplink), 1);
    // A guest's flood goes to both uplinks (teams come later).
    h.send(1, &frame(BCAST, mac(1), &[], b""));
    assert_eq!(receivers(&mut h), vec![8, 9]);
}

#[test]
fn known_unicast_to_ingress_is_dropped() {
    let a = VlanMode::Access(1);
    let mut h = Harness::new(spec(vec![guest(1, a.clone()), guest(2, a)]));
    h.send(1, &frame(BCAST, mac(1), &[], b""));
    h.send(1, &frame(BCAST, mac(5), &[], b""));
    receivers(&mut h);
    h.send(1, &frame(mac(5), mac(1), &[], b""));
    assert!(receivers(&mut h).is_empty());
    assert_eq!(h.stats(1).drop_count(DropReason::SamePort), 1);
}

#[test]
fn vlan_tags_on_egress() {
    let mut h = Harness::new(spec(vec![
        guest(1, VlanMode::Access(10)),
        guest(2, trunk(&[(10, 20)], Some(5))),
        guest(3, VlanMode::Access(5)),
        guest(4, VlanMode::GuestTagging { native: None }),
    ]));
    let cases: &[TagCase] = &[
        // Access -> trunk: pushed, PCP 0.
        (1, vec![], 2, vec![(Q, 10)]),
        // Access priority tag -> trunk: VID filled in, PCP kept.
        (1, vec![(Q, 0xa000)], 2, vec![(Q, 0xa00a)]),
        // Trunk tagged with PCP -> access: popped.
        (2, vec![(Q, 0xe00a)], 1, vec![]),
        // Trunk tagged with PCP -> guest tagging: kept, PCP kept.
        (2, vec![(Q, 0xe00a)], 4, vec![(Q, 0xe00a)]),
        // Access on the native VLAN -> trunk: untagged.
        (3, vec![], 2, vec![]),
        // Trunk untagged (native) -> access 5.
        (2, vec![], 3, vec![]),
        // Trunk priority-tagged (native) -> access 5: tag removed.
        (2, vec![(Q, 0x6000)], 3, vec![]),
        // Guest tagging -> trunk keeps tag and PCP (DEI too).
        (4, vec![(Q, 0x3014)], 2, vec![(Q, 0x3014)]),
        // Guest tagging on the trunk's native VLAN 5 -> leaves untagged.
        (4, vec![(Q, 0x2005)], 2, vec![]),
    ];
    for (i, (from, tin, to, tout)) in cases.iter().enumerate() {
        // Make the destination known so only `to` receives.
        let dst = mac(1000 + i as u64);
        let src = mac(2000 + i as u64);
        let vid = tin.first().map(|t| t.1 & 0xfff).filter(|v| *v != 0);
        let learn_vid = match (from, vid) {
            (1, _) => 10,
            (3, _) => 5,
            (2, None) => 5,
            (_, Some(v)) => v,
            (_, None) => 5,
        };
        h.switch
            .update(spec_with_static(&h, dst, learn_vid, *to))
            .expect("valid");
        h.advance(0);
        let payload = [0xabu8; 50];
        h.send(*from, &frame(dst, src, tin, &payload));
        let got = h.recv(*to);
        assert_eq!(got, vec![frame(dst, src, tout, &payload)], "case {i}");
        assert!(receivers(&mut h).is_empty(), "case {i}: only {to} receives");
    }
}

fn spec_with_static(h: &Harness, mac: MacAddr, vid: u16, port: u16) -> SwitchSpec {
    let mut s = h.switch.snapshot().spec().clone();
    s.static_macs = vec![StaticMac {
        vid,
        mac,
        port: crate::port::PortId(port),
    }];
    s
}

#[test]
fn ingress_drops_have_reasons() {
    let mut h = Harness::new(SwitchSpec {
        mtu: 1500,
        ..spec(vec![
            guest(1, VlanMode::Access(10)),
            guest(2, VlanMode::Access(10)),
            guest(3, trunk(&[(10, 10)], Some(1))),
        ])
    });
    let cases: Vec<(u16, Vec<u8>, DropReason)> = vec![
        (
            1,
            frame(BCAST, mac(1), &[(Q, 20)], b""),
            DropReason::VlanTaggedOnAccess,
        ),
        (
            1,
            frame(BCAST, mac(1), &[(Q, 10)], b""),
            DropReason::VlanTaggedOnAccess,
        ),
        (
            1,
            frame(BCAST, mac(1), &[(Q, 0), (Q, 20)], b""),
            DropReason::VlanDoubleTagged,
        ),
        (
            1,
            frame(BCAST, mac(1), &[(TPID_8021AD, 20)], b""),
            DropReason::VlanTaggedOnAccess,
        ),
        (
            3,
            frame(BCAST, mac(3), &[(Q, 1), (Q, 10)], b""),
            DropReason::VlanDoubleTagged,
        ),
        (
            3,
            frame(BCAST, mac(3), &[(Q, 11)], b""),
            DropReason::VlanNotAllowed,
        ),
        (
            3,
            frame(BCAST, mac(3), &[(TPID_8021AD, 10)], b""),
            DropReason::VlanBadTpid,
        ),
        (1, vec![0u8; 13], DropReason::Runt),
        (1, frame(BCAST, BCAST, &[], b""), DropReason::InvalidSrcMac),
        (
            1,
            frame(BCAST, MacAddr::ZERO, &[], b""),
            DropReason::InvalidSrcMac,
        ),
        (
            1,
            frame("01:80:c2:00:00:00".parse().expect("mac"), mac(1), &[], b""),
            DropReason::ReservedMulticast,
        ),
        // Vendor L2 control addresses, the list Open vSwitch drops
        // (issue 26 item 8): Cisco's CDP/VTP/DTP/PAgP/UDLD, PVST+ and STP
        // UplinkFast groups, and Extreme's EDP (a unicast address).
        (
            1,
            frame("01:00:0c:cc:cc:cc".parse().expect("mac"), mac(1), &[], b""),
            DropReason::ReservedMulticast,
        ),
        (
            1,
            frame("01:00:0c:cc:cc:cd".parse().expect("mac"), mac(1), &[], b""),
            DropReason::ReservedMulticast,
        ),
        (
            1,
            frame("01:00:0c:cd:cd:cd".parse().expect("mac"), mac(1), &[], b""),
            DropReason::ReservedMulticast,
        ),
        (
            1,
            frame("00:e0:2b:00:00:00".parse().expect("mac"), mac(1), &[], b""),
            DropReason::ReservedMulticast,
        ),
        (
            1,
            frame(BCAST, mac(1), &[], &[0u8; 1501]),
            DropReason::Oversize,
        ),
    ];
    for (i, (port, f, reason)) in cases.into_iter().enumerate() {
        let before = h.stats(port).drop_count(reason);
        h.send(port, &f);
        assert!(receivers(&mut h).is_empty(), "case {i}: nothing delivered");
        assert_eq!(
            h.stats(port).drop_count(reason),
            before + 1,
            "case {i}: {reason:?}"
        );
    }
    // 1500 bytes of payload fit, tagged or not.
    h.send(1, &frame(BCAST, mac(1), &[], &[0u8; 1500]));
    h.send(3, &frame(BCAST, mac(3), &[(Q, 10)], &[0u8; 1500]));
    assert_eq!(receivers(&mut h), vec![1, 2, 3]);
}

fn secured(id: u16, m: MacAddr, sec: SecurityPolicy) -> crate::snapshot::PortSpec {
    let mut p = guest(id, VlanMode::Access(10));
    p.mac = Some(m);
    p.security = sec;
    p
}

#[test]
fn forged_transmits() {
    let reject = SecurityPolicy::default();
    let accept = SecurityPolicy {
        forged_transmits: true,
        ..reject
    };
    let mut h = Harness::new(spec(vec![
        secured(1, mac(1), reject),
        secured(2, mac(2), accept),
        guest(3, VlanMode::Access(10)),
    ]));
    h.send(1, &frame(BCAST, mac(66), &[], b""));
    assert!(receivers(&mut h).is_empty());
    assert_eq!(h.stats(1).drop_count(DropReason::ForgedTransmit), 1);
    h.send(1, &frame(BCAST, mac(1), &[], b""));
    assert_eq!(receivers(&mut h), vec![2, 3]);
    h.send(2, &frame(BCAST, mac(67), &[], b""));
    assert_eq!(
        receivers(&mut h),
        vec![1, 3],
        "accept lets a forged source through"
    );
}

#[test]
fn mac_changes() {
    let open = SecurityPolicy {
        forged_transmits: true,
        ..SecurityPolicy::default()
    };
    let changes_ok = SecurityPolicy {
        mac_changes: true,
        ..open
    };
    let mut h = Harness::new(spec(vec![
        secured(1, mac(1), open),
        secured(2, mac(2), changes_ok),
        guest(3, VlanMode::Access(10)),
    ]));
    // Port 1 (MAC changes rejected) sends as mac(11): forwarded, not learned.
    h.send(1, &frame(BCAST, mac(11), &[], b""));
    assert_eq!(receivers(&mut h), vec![2, 3]);
    h.send(3, &frame(mac(11), mac(3), &[], b""));
    assert_eq!(
        receivers(&mut h),
        vec![2],
        "port 1 does not receive for a changed MAC"
    );
    // Port 2 (MAC changes accepted) sends as mac(22): learned, reachable.
    h.send(2, &frame(BCAST, mac(22), &[], b""));
    receivers(&mut h);
    h.send(3, &frame(mac(22), mac(3), &[], b""));
    assert_eq!(receivers(&mut h), vec![2]);
    // The assigned MAC is reachable without learning (static).
    h.send(3, &frame(mac(1), mac(3), &[], b""));
    assert_eq!(receivers(&mut h), vec![1]);
}

#[test]
fn promiscuous_port_sees_unicast_of_its_vlan() {
    let promisc = SecurityPolicy {
        promiscuous: true,
        ..SecurityPolicy::default()
    };
    let mut p4 = guest(4, VlanMode::Access(10));
    p4.security = promisc;
    let mut p5 = guest(5, VlanMode::Access(20));
    p5.security = promisc;
    let a = VlanMode::Access(10);
    let mut h = Harness::new(spec(vec![guest(1, a.clone()), guest(2, a), p4, p5]));
    h.send(2, &frame(BCAST, mac(2), &[], b""));
    receivers(&mut h);
    h.send(1, &frame(mac(2), mac(1), &[], b""));
    assert_eq!(
        receivers(&mut h),
        vec![2, 4],
        "copy to the promiscuous port, same VLAN only"
    );
}

#[test]
fn aging_and_moves() {
    let a = VlanMode::Access(1);
    let mut h = Harness::new(spec(vec![
        guest(1, a.clone()),
        guest(2, a.clone()),
        guest(3, a),
    ]));
    h.send(1, &frame(BCAST, mac(1), &[], b""));
    receivers(&mut h);
    h.advance(300);
    h.send(2, &frame(mac(1), mac(2), &[], b""));
    assert_eq!(receivers(&mut h), vec![1], "300 s: still known");
    h.advance(1);
    h.send(2, &frame(mac(1), mac(2), &[], b""));
    assert_eq!(receivers(&mut h), vec![1, 3], "301 s: aged out, floods");
    // mac(2) moves from port 2 to port 3.
    h.send(3, &frame(BCAST, mac(2), &[], b""));
    receivers(&mut h);
    assert_eq!(h.stats(3).mac_moves, 1);
    h.send(1, &frame(mac(2), mac(1), &[], b""));
    assert_eq!(receivers(&mut h), vec![3]);
}

#[test]
fn per_port_limit_keeps_other_ports_entries() {
    let a = VlanMode::Access(1);
    let mut h = Harness::new(SwitchSpec {
        mac_table: MacTableSpec {
            max_entries: 1000,
            per_port_limit: 10,
            aging_secs: 300,
        },
        ..spec(vec![guest(1, a.clone()), guest(2, a.clone()), guest(3, a)])
    });
    h.send(2, &frame(BCAST, mac(2), &[], b""));
    for i in 0..100 {
        h.send(1, &frame(BCAST, mac(10_000 + i), &[], b""));
    }
    receivers(&mut h);
    assert_eq!(h.stats(1).mac_learn_limit, 90);
    assert_eq!(h.pmd.mac_table().port_count(crate::port::PortId(1)), 10);
    h.send(3, &frame(mac(2), mac(3), &[], b""));
    assert_eq!(
        receivers(&mut h),
        vec![2],
        "the victim's MAC is still known"
    );
}

#[test]
fn config_change_flushes_that_ports_macs() {
    let a = VlanMode::Access(1);
    let mut h = Harness::new(spec(vec![
        guest(1, a.clone()),
        guest(2, a.clone()),
        guest(3, a.clone()),
    ]));
    h.send(1, &frame(BCAST, mac(1), &[], b""));
    h.send(2, &frame(BCAST, mac(2), &[], b""));
    receivers(&mut h);
    assert_eq!(h.pmd.mac_table().len(), 2);
    h.update(spec(vec![
        guest(1, a.clone()),
        guest(2, VlanMode::Access(7)),
        guest(3, a),
    ]));
    assert_eq!(
        h.pmd.mac_table().len(),
        1,
        "port 2's MAC is gone, port 1's stays"
    );
    h.send(3, &frame(mac(1), mac(3), &[], b""));
    assert_eq!(receivers(&mut h), vec![1]);
}

#[test]
fn unknown_port_frames_are_counted() {
    let mut h = Harness::new(spec(vec![
        guest(1, VlanMode::Access(1)),
        guest(2, VlanMode::Access(1)),
    ]));
    h.update(spec(vec![guest(1, VlanMode::Access(1))]));
    h.send(2, &frame(BCAST, mac(2), &[], b""));
    assert!(receivers(&mut h).is_empty());
    assert_eq!(h.stats(2).drop_count(DropReason::PortUnknown), 1);
    // Output to a configured port with no attached queue is a tx drop.
    h.update(spec(vec![
        guest(1, VlanMode::Access(1)),
        guest(5, VlanMode::Access(1)),
    ]));
    h.send(1, &frame(BCAST, mac(1), &[], b""));
    assert_eq!(h.stats(5).tx_dropped, 1);
}

#[test]
fn a_guests_own_frame_coming_back_on_an_uplink_is_dropped_and_does_not_steal_its_mac() {
    let t = trunk(&[(10, 10)], None);
    let mut h = Harness::new(spec(vec![
        guest(1, VlanMode::Access(10)),
        guest(2, VlanMode::Access(10)),
        uplink(8, t),
    ]));
    // Guest 1 broadcasts: the uplink gets it, and the physical network
    // (a loop, a team's other member) sends it back.
    h.send(1, &frame(BCAST, mac(1), &[], b""));
    assert_eq!(receivers(&mut h), vec![2, 8]);
    h.send(8, &frame(BCAST, mac(1), &[(Q, 10)], b""));
    assert!(
        receivers(&mut h).is_empty(),
        "the reflection reaches nobody"
    );
    assert_eq!(h.stats(8).drop_count(DropReason::Reflection), 1);
    // mac(1) still lives on port 1.
    h.send(2, &frame(mac(1), mac(2), &[], b""));
    assert_eq!(receivers(&mut h), vec![1]);
    // A remote host's frame from the uplink is learned and forwarded.
    h.send(8, &frame(mac(2), mac(80), &[(Q, 10)], b""));
    assert_eq!(receivers(&mut h), vec![2]);
    h.send(2, &frame(mac(80), mac(2), &[], b""));
    assert_eq!(receivers(&mut h), vec![8]);
    assert_eq!(h.stats(8).drop_count(DropReason::Reflection), 1);
}

#[test]
fn frames_carry_their_originating_port_to_the_output() {
    let mut h = Harness::new(spec(vec![
        guest(1, VlanMode::Access(10)),
        guest(2, VlanMode::Access(10)),
        guest(3, VlanMode::Access(10)),
    ]));
    h.send(3, &frame(BCAST, mac(3), &[], b""));
    let origins: Vec<u16> = [1, 2, 3]
        .into_iter()
        .flat_map(|p| h.recv_packets(p))
        .map(|p| p.origin())
        .collect();
    assert_eq!(origins, vec![3, 3]);
}

/// An Ethernet/IPv4 ARP frame from `src` (opcode `op`), sender `sha`/`spa`,
/// after the given tags.
fn arp(src: MacAddr, tags: &[(u16, u16)], op: u16, sha: MacAddr, spa: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&BCAST.0);
    f.extend_from_slice(&src.0);
    for &(tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha.0);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 254]);
    f.resize(f.len().max(60), 0);
    f
}

fn ipv4_of(h: &Harness, vid: u16, m: MacAddr) -> Option<std::net::Ipv4Addr> {
    h.pmd
        .mac_table()
        .rows(h.now)
        .into_iter()
        .find(|r| r.vid == vid && r.mac == m)
        .and_then(|r| r.ipv4)
}

#[test]
fn arp_snooping_learns_a_guests_own_address_only() {
    let mut h = Harness::new(spec(vec![
        guest(1, VlanMode::Access(1)),
        guest(2, trunk(&[(10, 10)], None)),
        uplink(3, VlanMode::Access(1)),
        guest(4, VlanMode::Access(1)),
    ]));
    // A request and a reply each teach the sender's address.
    h.send(1, &arp(mac(1), &[], 1, mac(1), [10, 0, 0, 1]));
    assert_eq!(ipv4_of(&h, 1, mac(1)), Some([10, 0, 0, 1].into()));
    h.send(1, &arp(mac(1), &[], 2, mac(1), [10, 0, 0, 9]));
    assert_eq!(ipv4_of(&h, 1, mac(1)), Some([10, 0, 0, 9].into()));
    // A probe (0.0.0.0) and an ARP about another MAC teach nothing.
    h.send(1, &arp(mac(4), &[], 1, mac(4), [0, 0, 0, 0]));
    assert_eq!(ipv4_of(&h, 1, mac(4)), None);
    h.send(1, &arp(mac(5), &[], 2, mac(6), [10, 0, 0, 5]));
    assert_eq!(ipv4_of(&h, 1, mac(5)), None);
    // Tagged ARP on a trunk, in its VLAN.
    h.send(2, &arp(mac(2), &[(Q, 10)], 1, mac(2), [10, 0, 10, 2]));
    assert_eq!(ipv4_of(&h, 10, mac(2)), Some([10, 0, 10, 2].into()));
    // Never from the network side.
    h.send(3, &arp(mac(3), &[], 1, mac(3), [10, 0, 0, 3]));
    assert!(
        h.pmd
            .mac_table()
            .rows(h.now)
            .iter()
            .any(|r| r.mac == mac(3))
    );
    assert_eq!(ipv4_of(&h, 1, mac(3)), None);
    // A guest that moves to another port loses the address it had.
    h.send(4, &frame(BCAST, mac(1), &[], &[]));
    assert_eq!(ipv4_of(&h, 1, mac(1)), None);
}

/// The burst key holds exactly the bytes a decision depends on: the MACs
/// and ethertype of an untagged frame (not the payload after them), the
/// tag and inner ethertype of a tagged one; ARP and runts have none.
#[test]
fn burst_key_covers_the_deciding_header_bytes() {
    use super::burst_key;
    let untagged = |ethertype: [u8; 2], payload: u8| {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&ethertype);
        f[14..].fill(payload);
        f
    };
    let ipv4 = untagged([0x08, 0x00], 0x11);
    let key = burst_key(&ipv4).expect("an IPv4 frame has a key");
    // Payload bytes 14..18 are not part of the decision.
    assert_eq!(burst_key(&untagged([0x08, 0x00], 0x22)), Some(key));
    // Every byte of 0..14 is.
    for i in 0..14 {
        let mut f = ipv4.clone();
        f[i] ^= 0x40;
        assert_ne!(burst_key(&f), Some(key), "byte {i}");
    }
    assert_eq!(burst_key(&untagged([0x08, 0x06], 0)), None, "ARP");
    assert_eq!(burst_key(&ipv4[..17]), None, "shorter than 18 bytes");

    let mut tagged = ipv4.clone();
    tagged[12..18].copy_from_slice(&[0x81, 0x00, 0x00, 0x0a, 0x08, 0x00]);
    let tkey = burst_key(&tagged).expect("a tagged IPv4 frame has a key");
    assert_ne!(tkey, key);
    for i in 0..18 {
        let mut f = tagged.clone();
        f[i] ^= 0x01;
        assert_ne!(burst_key(&f), Some(tkey), "byte {i}");
    }
    let mut f = tagged.clone();
    f[18] ^= 0xff;
    assert_eq!(burst_key(&f), Some(tkey), "byte 18 is payload");
    let mut arp = tagged.clone();
    arp[16..18].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(burst_key(&arp), None, "ARP behind a tag");
}
