//! Table-driven scenarios for every policy and failure case, through the
//! public API only.

mod common;

use std::net::Ipv4Addr;

use common::*;
use teaming::{
    BUCKETS, Beacon, BeaconConfig, BeaconIgnored, BeaconRx, BeaconVerdict, GuestAddr, GuestPort,
    MacAddr, Move, Team, TeamError, TeamPolicy, TeamSpec, Vlan, rarp_frame,
};

/// One step: an optional link event, then the member each of guest ports
/// 0..4 must use ("-": none).
type Step = (Option<(&'static str, bool)>, [&'static str; 4]);

fn run(spec: TeamSpec, steps: &[Step]) {
    let label = format!("{} failback {}", spec.policy, spec.failback);
    let mut team = up_team(spec);
    for (at, (event, want)) in steps.iter().enumerate() {
        if let Some((name, up)) = event {
            set(&mut team, name, *up, at as u64 + 1);
        }
        let got: Vec<&str> = (0..4)
            .map(|p| port_member(&team, p).unwrap_or("-"))
            .collect();
        assert_eq!(got, want, "{label}, step {at} {event:?}");
    }
}

#[test]
fn port_id_active_down_goes_to_standby_and_fails_back() {
    let spec = TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_standby(["s0"]);
    run(
        spec,
        &[
            (None, ["a0", "a1", "a0", "a1"]),
            (Some(("a0", false)), ["s0", "a1", "s0", "a1"]),
            (Some(("a0", true)), ["a0", "a1", "a0", "a1"]),
            (Some(("s0", false)), ["a0", "a1", "a0", "a1"]),
        ],
    );
}

#[test]
fn port_id_without_failback_stays_until_the_stand_in_fails() {
    let spec = TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"])
        .with_standby(["s0"])
        .with_failback(false);
    run(
        spec,
        &[
            (None, ["a0", "a1", "a0", "a1"]),
            (Some(("a0", false)), ["s0", "a1", "s0", "a1"]),
            (Some(("a0", true)), ["s0", "a1", "s0", "a1"]),
            // The stand-in fails: the recovered active takes the slot.
            (Some(("s0", false)), ["a0", "a1", "a0", "a1"]),
            (Some(("s0", true)), ["a0", "a1", "a0", "a1"]),
        ],
    );
}

#[test]
fn standbys_stand_in_in_order_then_spread_then_nothing() {
    let spec = TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_standby(["s0", "s1"]);
    run(
        spec,
        &[
            (Some(("a0", false)), ["s0", "a1", "s0", "a1"]),
            (Some(("a1", false)), ["s0", "s1", "s0", "s1"]),
            // No standby left for slot 0: its guests go to the other slot.
            (Some(("s0", false)), ["s1", "s1", "s1", "s1"]),
            (Some(("s1", false)), ["-", "-", "-", "-"]),
            // Failback on: each active comes back to its own slot.
            (Some(("a1", true)), ["a1", "a1", "a1", "a1"]),
            (Some(("a0", true)), ["a0", "a1", "a0", "a1"]),
        ],
    );
}

#[test]
fn two_actives_no_standby_share_and_return() {
    for failback in [true, false] {
        let spec = TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_failback(failback);
        let back = if failback {
            ["a0", "a1", "a0", "a1"]
        } else {
            ["a1", "a1", "a1", "a1"]
        };
        run(
            spec,
            &[
                (Some(("a0", false)), ["a1", "a1", "a1", "a1"]),
                (Some(("a0", true)), back),
            ],
        );
    }
}

#[test]
fn unused_members_are_never_chosen() {
    let spec = TeamSpec::new(TeamPolicy::PortId, ["a0"]).with_unused(["u0"]);
    run(
        spec,
        &[
            (None, ["a0", "a0", "a0", "a0"]),
            (Some(("a0", false)), ["-", "-", "-", "-"]),
        ],
    );
    for policy in TeamPolicy::ALL {
        let mut team = up_team(
            TeamSpec::new(policy, ["a0"])
                .with_standby(["s0"])
                .with_unused(["u0"]),
        );
        assert_eq!(load(&team, "u0"), 0, "{policy}");
        set(&mut team, "a0", false, 1);
        set(&mut team, "s0", false, 2);
        assert_eq!(
            table(&team),
            vec![None; BUCKETS],
            "{policy}: u0 is up but unused"
        );
        let u0 = team.member_index("u0").expect("member");
        assert!(
            !team.selector().accept(u0, &[0u8; 60]),
            "{policy}: unused receives nothing"
        );
    }
}

#[test]
fn explicit_failover_order() {
    let spec = || TeamSpec::new(TeamPolicy::ExplicitFailover, ["a0", "a1"]).with_standby(["s0"]);
    run(
        spec(),
        &[
            (None, ["a0", "a0", "a0", "a0"]),
            (Some(("a0", false)), ["a1", "a1", "a1", "a1"]),
            (Some(("a1", false)), ["s0", "s0", "s0", "s0"]),
            (Some(("a1", true)), ["a1", "a1", "a1", "a1"]),
            (Some(("a0", true)), ["a0", "a0", "a0", "a0"]),
            (Some(("s0", false)), ["a0", "a0", "a0", "a0"]),
        ],
    );
    run(
        spec().with_failback(false),
        &[
            (Some(("a0", false)), ["a1", "a1", "a1", "a1"]),
            (Some(("a0", true)), ["a1", "a1", "a1", "a1"]),
            (Some(("a1", false)), ["a0", "a0", "a0", "a0"]),
            (Some(("a0", false)), ["s0", "s0", "s0", "s0"]),
            (Some(("a1", true)), ["s0", "s0", "s0", "s0"]),
            (Some(("s0", false)), ["a1", "a1", "a1", "a1"]),
            (Some(("a1", false)), ["-", "-", "-", "-"]),
        ],
    );
}

#[test]
fn port_id_spreads_guests_round_robin() {
    let names = ["eth0", "eth1", "eth2", "eth3"];
    let team = up_team(TeamSpec::new(TeamPolicy::PortId, names));
    for p in 0..16u16 {
        assert_eq!(port_member(&team, p), Some(names[usize::from(p) % 4]));
        // The frame does not matter, only the port.
        let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], p, 80);
        assert_eq!(
            team.select(GuestPort(p), &f),
            team.select(GuestPort(p), &[])
        );
    }
    for n in names {
        assert_eq!(load(&team, n), 64);
    }
}

#[test]
fn src_mac_pins_each_mac() {
    let team = up_team(TeamSpec::new(TeamPolicy::SrcMac, ["eth0", "eth1"]));
    let from = |src: u8, dst: [u8; 4]| {
        eth(
            mac(200),
            mac(src),
            None,
            0x0800,
            &ipv4([10, 0, 0, 1], dst, 17, 0, &ports(1, 2)),
        )
    };
    let mut used = [0usize; 2];
    for src in 0..64u8 {
        let first = team.select(GuestPort(0), &from(src, [1, 1, 1, 1]));
        for dst in 0..8u8 {
            assert_eq!(team.select(GuestPort(9), &from(src, [2, 2, 2, dst])), first);
        }
        used[first.expect("up").get()] += 1;
    }
    assert!(
        used.iter().all(|&n| n > 16),
        "64 MACs over 2 members: {used:?}"
    );
}

#[test]
fn ip_hash_never_splits_a_pair_and_spreads_pairs() {
    let team = up_team(TeamSpec::new(TeamPolicy::IpHash, ["eth0", "eth1"]));
    let mut used = [0usize; 2];
    for host in 1..=64u8 {
        let (a, b) = ([10, 0, 0, host], [10, 0, 1, 1]);
        let one = team.select(GuestPort(1), &tcp4(a, b, 1000, 80));
        for sp in 0..16 {
            assert_eq!(
                team.select(GuestPort(2), &tcp4(a, b, sp, 443)),
                one,
                "ports ignored"
            );
            assert_eq!(
                team.select(GuestPort(3), &tcp4(b, a, 80, sp)),
                one,
                "both directions"
            );
        }
        used[one.expect("up").get()] += 1;
    }
    assert!(
        used.iter().all(|&n| n > 16),
        "64 pairs over 2 members: {used:?}"
    );
    // IPv6 pairs too; non-IP falls back to the MAC pair.
    let v6 = |last: u8| {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[15] = last;
        a
    };
    let f6 = |s, d| {
        eth(
            mac(2),
            mac(1),
            None,
            0x86dd,
            &ipv6(v6(s), v6(d), 17, &ports(5, 6)),
        )
    };
    let mut v6_used = [false; 2];
    for s in 0..32 {
        let x = team.select(GuestPort(0), &f6(s, 100)).expect("up");
        assert_eq!(team.select(GuestPort(0), &f6(100, s)), Some(x));
        v6_used[x.get()] = true;
    }
    assert_eq!(v6_used, [true, true]);
    let arp = |a: u8, b: u8| eth(mac(b), mac(a), None, 0x0806, &[0; 28]);
    assert_eq!(
        team.select(GuestPort(0), &arp(1, 2)),
        team.select(GuestPort(5), &arp(2, 1))
    );
}

#[test]
fn l4_hash_spreads_connections_of_one_pair() {
    let team = up_team(TeamSpec::new(TeamPolicy::L4Hash, ["eth0", "eth1", "eth2"]));
    let mut used = [0usize; 3];
    for sp in 0..300u16 {
        let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 20000 + sp, 80);
        let x = team.select(GuestPort(0), &f).expect("up");
        let back = tcp4([10, 0, 0, 2], [10, 0, 0, 1], 80, 20000 + sp);
        assert_eq!(team.select(GuestPort(0), &back), Some(x), "symmetric");
        used[x.get()] += 1;
    }
    assert!(used.iter().all(|&n| n > 60), "{used:?}");
    // Fragments of any UDP datagram between the pair share the IP hash.
    let frag = |off: u16| {
        eth(
            mac(2),
            mac(1),
            None,
            0x0800,
            &ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, off, &ports(7, 9)),
        )
    };
    let ip_only = up_team(TeamSpec::new(TeamPolicy::IpHash, ["eth0", "eth1", "eth2"]));
    for off in [0x2000, 0x00b9, 0x20b9] {
        assert_eq!(
            team.select(GuestPort(0), &frag(off)),
            ip_only.select(GuestPort(0), &frag(off))
        );
    }
}

/// Failing one member of `n` moves exactly its flows, spread over the
/// others; bringing it back restores every flow.
#[test]
fn stable_assignment_when_one_of_three_or_four_fails() {
    let flows: Vec<(u16, Vec<u8>)> = (0..2000u32)
        .map(|i| {
            let b = i.to_be_bytes();
            let f = eth(
                mac(2),
                MacAddr([0x52, 0x54, 1, b[1], b[2], b[3]]),
                None,
                0x0800,
                &ipv4(
                    [10, b[1], b[2], b[3]],
                    [192, 168, 0, 1],
                    6,
                    0,
                    &ports(i as u16, 443),
                ),
            );
            (i as u16, f)
        })
        .collect();
    for policy in [
        TeamPolicy::PortId,
        TeamPolicy::SrcMac,
        TeamPolicy::IpHash,
        TeamPolicy::L4Hash,
    ] {
        for n in [3usize, 4] {
            let names: Vec<String> = (0..n).map(|i| format!("eth{i}")).collect();
            let mut team = up_team(TeamSpec::new(policy, names.clone()));
            let pick = |team: &Team| -> Vec<Option<usize>> {
                flows
                    .iter()
                    .map(|(p, f)| team.select(GuestPort(*p), f).map(|x| x.get()))
                    .collect()
            };
            let before = pick(&team);
            for (failed, name) in names.iter().enumerate() {
                let moves = set(&mut team, name, false, 10);
                assert!(
                    moves
                        .iter()
                        .all(|mv| mv.from.map(|x| x.get()) == Some(failed))
                );
                let during = pick(&team);
                let mut gained = vec![0usize; n];
                for (b, d) in before.iter().zip(&during) {
                    if *b == Some(failed) {
                        gained[d.expect("survivors exist")] += 1;
                    } else {
                        assert_eq!(b, d, "{policy} n={n}: a flow not on eth{failed} moved");
                    }
                }
                let moved: usize = gained.iter().sum();
                for (i, g) in gained.iter().enumerate() {
                    if i != failed {
                        assert!(
                            *g * (n - 1) * 2 >= moved,
                            "{policy} n={n}: eth{i} took {g} of {moved} moved flows"
                        );
                    }
                }
                set(&mut team, name, true, 20);
                assert_eq!(pick(&team), before, "{policy} n={n}: failback restores all");
            }
        }
    }
}

#[test]
fn all_down_selects_nothing() {
    for policy in TeamPolicy::ALL {
        let mut team = up_team(TeamSpec::new(policy, ["a0", "a1"]).with_standby(["s0"]));
        set(&mut team, "a0", false, 1);
        set(&mut team, "s0", false, 2);
        let moves = set(&mut team, "a1", false, 3);
        assert_eq!(moves.len(), BUCKETS, "{policy}");
        assert!(moves.iter().all(|mv| mv.to.is_none()));
        assert_eq!(
            team.select(GuestPort(1), &tcp4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)),
            None
        );
        assert_eq!(team.selector().designated_receiver(), None);
    }
}

#[test]
fn start_up_order_does_not_matter_even_without_failback() {
    let spec = TeamSpec::new(TeamPolicy::PortId, ["a0", "a1", "a2"])
        .with_standby(["s0"])
        .with_failback(false);
    let forward = up_team(spec.clone());
    let mut backward = Team::new(spec, t(0)).expect("valid");
    for name in ["s0", "a2", "a1", "a0"] {
        set(&mut backward, name, true, 1);
    }
    assert_eq!(table(&forward), table(&backward));
    assert_eq!(
        [
            load(&forward, "a0"),
            load(&forward, "a1"),
            load(&forward, "a2")
        ],
        [86, 85, 85]
    );
    assert_eq!(load(&forward, "s0"), 0);
}

#[test]
fn repeated_link_state_moves_nothing() {
    let mut team = up_team(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]));
    assert!(set(&mut team, "a0", true, 5).is_empty());
    assert_eq!(set(&mut team, "a0", false, 6).len(), 128);
    assert!(set(&mut team, "a0", false, 7).is_empty());
    assert_eq!(team.status(m(0)).expect("member").link_since, t(6));
    assert_eq!(
        team.set_link(m(9), true, t(8)),
        Err(TeamError::NoSuchMember(m(9)))
    );
}

#[test]
fn broadcasts_are_accepted_once() {
    let bcast = eth(MacAddr::BROADCAST, mac(9), None, 0x0806, &[0; 28]);
    let mcast = eth(
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
        mac(9),
        None,
        0x0800,
        &[0; 28],
    );
    let ucast = eth(mac(1), mac(9), None, 0x0800, &[0; 28]);
    let mut team = up_team(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_standby(["s0"]));
    let accepted = |team: &Team, f: &[u8]| -> Vec<bool> {
        (0..3).map(|i| team.selector().accept(m(i), f)).collect()
    };
    assert_eq!(team.selector().designated_receiver(), Some(m(0)));
    assert_eq!(accepted(&team, &bcast), [true, false, false]);
    assert_eq!(accepted(&team, &mcast), [true, false, false]);
    assert_eq!(accepted(&team, &ucast), [true, true, true]);
    set(&mut team, "a0", false, 1);
    assert_eq!(
        team.selector().designated_receiver(),
        Some(m(1)),
        "first member carrying traffic"
    );
    assert_eq!(accepted(&team, &bcast), [false, true, false]);
    // Aggregated: the EtherChannel delivers each broadcast once already.
    let agg = up_team(TeamSpec::new(TeamPolicy::IpHash, ["a0", "a1"]).with_unused(["u0"]));
    assert_eq!(accepted(&agg, &bcast), [true, true, false]);
    // Explicit failover without failback: the member in use receives.
    let mut ex =
        up_team(TeamSpec::new(TeamPolicy::ExplicitFailover, ["a0", "a1"]).with_failback(false));
    set(&mut ex, "a0", false, 1);
    set(&mut ex, "a0", true, 2);
    assert_eq!(accepted(&ex, &bcast)[..2], [false, true]);
}

fn guests() -> Vec<GuestAddr> {
    (0..4u16)
        .map(|p| GuestAddr {
            port: GuestPort(p),
            mac: mac(p as u8 + 1),
            vlan: Vlan::new(100),
            ipv4: (p == 2).then_some(Ipv4Addr::new(192, 0, 2, 2)),
        })
        .collect()
}

#[test]
fn notify_switches_plan() {
    let mut team = up_team(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_standby(["s0"]));
    let moves = set(&mut team, "a0", false, 1);
    let plan = team.announcements(&moves, &guests());
    let who: Vec<(u16, &str)> = plan
        .iter()
        .map(|a| (a.guest.port.0, team.member_name(a.member).expect("member")))
        .collect();
    assert_eq!(who, [(0, "s0"), (2, "s0")]);
    assert_eq!(plan[0].frames(), vec![rarp_frame(&mac(1), Vlan::new(100))]);
    assert_eq!(
        plan[1].frames().len(),
        2,
        "RARP and GARP for the guest with a known IP"
    );
    let back = set(&mut team, "a0", true, 2);
    let plan = team.announcements(&back, &guests());
    assert!(plan.iter().all(|a| a.member == m(0)) && plan.len() == 2);
    // Moves to no member announce nothing.
    let gone: Vec<Move> = back.iter().map(|mv| Move { to: None, ..*mv }).collect();
    assert!(team.announcements(&gone, &guests()).is_empty());

    // Explicit failover: everyone moves.
    let mut ex = up_team(TeamSpec::new(TeamPolicy::ExplicitFailover, ["a0", "a1"]));
    let moves = set(&mut ex, "a0", false, 1);
    assert_eq!(ex.announcements(&moves, &guests()).len(), 4);

    // src-mac: by MAC, and member_for_guest agrees.
    let mut sm = up_team(TeamSpec::new(TeamPolicy::SrcMac, ["a0", "a1"]));
    let on_a0: Vec<u16> = guests()
        .iter()
        .filter(|g| sm.member_for_guest(g.port, &g.mac) == Some(m(0)))
        .map(|g| g.port.0)
        .collect();
    let moves = set(&mut sm, "a0", false, 1);
    let plan: Vec<u16> = sm
        .announcements(&moves, &guests())
        .iter()
        .map(|a| a.guest.port.0)
        .collect();
    assert_eq!(plan, on_a0);

    // Aggregated: the switch sees one port-channel; nothing to relearn.
    let mut agg = up_team(TeamSpec::new(TeamPolicy::IpHash, ["a0", "a1"]));
    let moves = set(&mut agg, "a0", false, 1);
    assert!(!moves.is_empty());
    assert!(agg.announcements(&moves, &guests()).is_empty());
    assert_eq!(agg.member_for_guest(GuestPort(0), &mac(1)), Some(m(1)));
}

#[test]
fn explain_in_words() {
    let spec = TeamSpec::new(TeamPolicy::PortId, ["eth0", "eth1"]).with_standby(["eth2"]);
    let mut team = up_team(spec.clone());
    let g7 = |team: &Team| team.explain_guest(GuestPort(7), &mac(7)).to_string();
    assert_eq!(
        g7(&team),
        "guest port 7 (52:54:00:00:00:07) -> eth1 (port-id: bucket 7 -> slot 1 of 2, home member); last moved t=0s"
    );
    set(&mut team, "eth1", false, 12);
    assert_eq!(
        g7(&team),
        "guest port 7 (52:54:00:00:00:07) -> eth2 (port-id: bucket 7 -> slot 1 of 2, home eth1 link down \
         since t=12s, standby eth2 stands in); last moved t=12s"
    );
    set(&mut team, "eth2", false, 15);
    assert_eq!(
        g7(&team),
        "guest port 7 (52:54:00:00:00:07) -> eth0 (port-id: bucket 7 -> slot 1 of 2, home eth1 link down \
         since t=12s and no member free to stand in; next choice slot 0); last moved t=15s"
    );
    set(&mut team, "eth0", false, 20);
    assert_eq!(
        g7(&team),
        "guest port 7 (52:54:00:00:00:07) -> no member (port-id: bucket 7; no usable member: eth0 link down \
         since t=20s, eth1 link down since t=12s, eth2 link down since t=15s); last moved t=20s"
    );

    let mut team = up_team(spec.with_failback(false));
    set(&mut team, "eth1", false, 12);
    set(&mut team, "eth1", true, 20);
    assert_eq!(
        g7(&team),
        "guest port 7 (52:54:00:00:00:07) -> eth2 (port-id: bucket 7 -> slot 1 of 2, home eth1 up since \
         t=20s but failback is off, standby eth2 stands in); last moved t=12s"
    );

    let mut ex =
        up_team(TeamSpec::new(TeamPolicy::ExplicitFailover, ["eth0", "eth1"]).with_failback(false));
    let g3 = |team: &Team| team.explain_guest(GuestPort(3), &mac(3)).to_string();
    assert_eq!(
        g3(&ex),
        "guest port 3 (52:54:00:00:00:03) -> eth0 (explicit-failover: first in failover order); last moved t=0s"
    );
    set(&mut ex, "eth0", false, 5);
    assert_eq!(
        g3(&ex),
        "guest port 3 (52:54:00:00:00:03) -> eth1 (explicit-failover: eth0 link down since t=5s; next in \
         failover order); last moved t=5s"
    );
    set(&mut ex, "eth0", true, 9);
    assert_eq!(
        g3(&ex),
        "guest port 3 (52:54:00:00:00:03) -> eth1 (explicit-failover: eth0 up since t=9s; failback is off, \
         so it stays); last moved t=5s"
    );

    let agg = up_team(TeamSpec::new(TeamPolicy::L4Hash, ["eth0", "eth1"]));
    assert_eq!(
        agg.explain_guest(GuestPort(3), &mac(3)).to_string(),
        "guest port 3 (52:54:00:00:00:03) -> several members (l4-hash: per flow, each 5-tuple hashes to one \
         of 256 buckets; explain a frame)"
    );
    let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80);
    let e = agg.explain_frame(GuestPort(3), &f);
    let b = e.bucket.expect("bucket").0;
    let (member, _) = e.member.clone().expect("up");
    assert_eq!(
        agg.select(GuestPort(3), &f),
        Some(member),
        "explain agrees with select"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "guest port 3, tcp 10.0.0.1:1234 <-> 10.0.0.2:80 -> eth{} (l4-hash: bucket {b} -> slot {} of 2, \
             home member); last moved t=0s",
            b % 2,
            b % 2
        )
    );
    let arp = eth(MacAddr::BROADCAST, mac(3), None, 0x0806, &[0; 28]);
    assert!(
        agg.explain_frame(GuestPort(3), &arp)
            .to_string()
            .contains("(l4-hash: non-IP, MAC hash; bucket ")
    );
    let icmp = eth(
        mac(2),
        mac(3),
        None,
        0x0800,
        &ipv4([1, 1, 1, 1], [2, 2, 2, 2], 1, 0, &[8, 0]),
    );
    assert!(
        agg.explain_frame(GuestPort(3), &icmp)
            .to_string()
            .starts_with("guest port 3, 1.1.1.1 <-> 2.2.2.2 -> ")
    );
}

#[test]
fn show_lists_members() {
    let mut team =
        up_team(TeamSpec::new(TeamPolicy::PortId, ["eth0", "eth1"]).with_standby(["eth2"]));
    set(&mut team, "eth0", false, 3);
    assert_eq!(
        team.to_string(),
        "policy port-id (physical switch: none (independent access or trunk ports)), failback on, link state only\n\
         \x20 eth0 (active): link down since t=3s, carries 0/256 buckets\n\
         \x20 eth1 (active): link up since t=0s, carries 128/256 buckets (slot 1)\n\
         \x20 eth2 (standby): link up since t=0s, carries 128/256 buckets (slot 0)\n"
    );
}

#[test]
fn spec_errors() {
    let cases = [
        (
            TeamSpec::new(TeamPolicy::PortId, Vec::<String>::new()),
            TeamError::NoActiveMember,
        ),
        (
            TeamSpec::new(TeamPolicy::PortId, ["a", "b"]).with_standby(["a"]),
            TeamError::DuplicateMember("a".into()),
        ),
        (
            TeamSpec::new(TeamPolicy::PortId, [""]),
            TeamError::EmptyMemberName,
        ),
        (
            TeamSpec::new(TeamPolicy::PortId, (0..33).map(|i| format!("e{i}"))),
            TeamError::TooManyMembers(33),
        ),
        (
            TeamSpec::new(TeamPolicy::IpHash, ["a", "b", "c"]).with_beacon(BeaconConfig::new(1)),
            TeamError::BeaconWithAggregation(TeamPolicy::IpHash),
        ),
        (
            TeamSpec::new(TeamPolicy::PortId, ["a", "b", "c"]).with_beacon(BeaconConfig {
                miss_limit: 0,
                ..BeaconConfig::new(1)
            }),
            TeamError::BadBeaconTiming,
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(Team::new(spec, t(0)).err(), Some(want));
    }
    assert!(
        Team::new(
            TeamSpec::new(TeamPolicy::PortId, (0..32).map(|i| format!("e{i}"))),
            t(0)
        )
        .is_ok()
    );
}

#[test]
fn select_burst_matches_select() {
    let team = up_team(TeamSpec::new(TeamPolicy::L4Hash, ["a0", "a1", "a2"]));
    let frames: Vec<Vec<u8>> = (0..40)
        .map(|i| tcp4([10, 0, 0, 1], [10, 0, 0, 2], i, 80))
        .collect();
    let mut out = [None; 32];
    let n = team.selector().select_burst(
        frames.iter().map(|f| (GuestPort(1), f.as_slice())),
        &mut out,
    );
    assert_eq!(n, 32);
    for (f, o) in frames.iter().zip(out) {
        assert_eq!(team.select(GuestPort(1), f), o);
    }
}

/// Sends every due beacon and delivers each to the members for which
/// `path(sender, receiver)` holds, a millisecond later.
fn beacon_round(team: &mut Team, now: u64, path: impl Fn(usize, usize) -> bool) -> Vec<Move> {
    let tick = team.tick(t(now));
    for b in &tick.beacons {
        let frame = b.to_frame(&mac(100 + b.member.0), None);
        for r in 0..team.member_count() {
            if r != b.member.get() && path(b.member.get(), r) {
                let at = teaming::Timestamp::from_millis(now * 1000 + 1);
                assert_eq!(team.on_beacon(m(r as u8), &frame, at), BeaconRx::Accepted);
            }
        }
    }
    tick.moves
}

#[test]
fn beacon_probing_fails_an_isolated_member_and_brings_it_back() {
    let spec =
        TeamSpec::new(TeamPolicy::PortId, ["a0", "a1", "a2"]).with_beacon(BeaconConfig::new(42));
    let mut team = up_team(spec);
    let before = table(&team);
    let isolated =
        |now: u64| move |s: usize, r: usize| !((5..12).contains(&now) && (s == 0 || r == 0));
    for now in 0..=7 {
        assert!(
            beacon_round(&mut team, now, isolated(now)).is_empty(),
            "t={now}"
        );
    }
    // Last heard 4.001 s; at t=8 that is more than 3 intervals old.
    let moves = beacon_round(&mut team, 8, isolated(8));
    assert_eq!(moves.len(), 86);
    assert!(
        moves
            .iter()
            .all(|mv| mv.from == Some(m(0)) && mv.to.is_some())
    );
    assert!(matches!(
        team.status(m(0)).and_then(|s| s.beacon),
        Some((BeaconVerdict::Failed, _))
    ));
    assert!(!team.is_usable(m(0)));
    assert!(
        team.explain_guest(GuestPort(0), &mac(0))
            .to_string()
            .contains("home a0 beacon failed since t=8s")
    );
    for now in 9..=12 {
        assert!(
            beacon_round(&mut team, now, isolated(now)).is_empty(),
            "t={now}"
        );
    }
    // Heard again at 12.001: healthy at the next tick, buckets return.
    assert_eq!(beacon_round(&mut team, 13, isolated(13)).len(), 86);
    assert_eq!(table(&team), before);
}

#[test]
fn beacon_probing_with_two_members_only_suspects() {
    let spec = TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_beacon(BeaconConfig::new(42));
    let mut team = up_team(spec);
    let before = table(&team);
    for now in 0..=12 {
        assert!(beacon_round(&mut team, now, |_, _| now < 5).is_empty());
    }
    for i in 0..2 {
        let s = team.status(m(i)).expect("member");
        assert_eq!(s.beacon, Some((BeaconVerdict::Suspect, t(8))));
        assert!(s.usable, "suspect members keep forwarding on link state");
    }
    assert_eq!(table(&team), before);
}

#[test]
fn beacon_frames_are_consumed() {
    let mut probing = up_team(
        TeamSpec::new(TeamPolicy::PortId, ["a0", "a1", "a2"]).with_beacon(BeaconConfig::new(42)),
    );
    let mut plain = up_team(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]));
    let ours = Beacon {
        team_id: 42,
        member: m(1),
        sequence: 1,
    }
    .to_frame(&mac(1), None);
    let theirs = Beacon {
        team_id: 7,
        member: m(1),
        sequence: 1,
    }
    .to_frame(&mac(1), None);
    assert_eq!(
        probing.on_beacon(m(0), &tcp4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2), t(0)),
        BeaconRx::NotBeacon
    );
    assert_eq!(probing.on_beacon(m(0), &ours, t(0)), BeaconRx::Accepted);
    assert_eq!(
        probing.on_beacon(m(0), &theirs, t(0)),
        BeaconRx::Ignored(BeaconIgnored::OtherTeam(7))
    );
    assert_eq!(
        probing.on_beacon(m(0), &ours[..25], t(0)),
        BeaconRx::Ignored(BeaconIgnored::Malformed)
    );
    assert_eq!(
        plain.on_beacon(m(0), &ours, t(0)),
        BeaconRx::Ignored(BeaconIgnored::NotProbed)
    );
    assert_eq!(plain.next_tick(), None);
    assert_eq!(probing.next_tick(), Some(t(0)));
    assert_eq!(plain.tick(t(5)), teaming::Tick::default());
}
