//! `Team::reconfigured` (a configuration reload): state kept by member
//! name, only what the new settings move moves, and a dataplane that keeps
//! its member order translates with `Selector::remapped`.

mod common;

use common::*;
use teaming::{
    BUCKETS, BeaconConfig, BeaconVerdict, Bucket, GuestAddr, GuestPort, MemberIndex, Team,
    TeamPolicy, TeamSpec,
};

/// Guests on ports 0..4, MACs 1..5, untagged, no IPv4.
fn guests() -> Vec<GuestAddr> {
    (0..4u16)
        .map(|p| GuestAddr {
            port: GuestPort(p),
            mac: mac(p as u8 + 1),
            vlan: None,
            ipv4: None,
        })
        .collect()
}

/// The member each guest port 0..4 uses, by name.
fn placement(team: &Team) -> Vec<&str> {
    (0..4)
        .map(|p| port_member(team, p).unwrap_or("-"))
        .collect()
}

/// Ports of the guests `announcements_since` announces, with the member.
fn announced(new: &Team, old: &Team) -> Vec<(u16, String)> {
    new.announcements_since(old, &guests())
        .iter()
        .map(|a| {
            (
                a.guest.port.0,
                new.member_name(a.member).expect("member").to_string(),
            )
        })
        .collect()
}

#[test]
fn same_settings_keep_everything() {
    let spec = TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_standby(["s0"]);
    let mut team = up_team(spec.clone());
    set(&mut team, "a0", false, 5);
    let again = team.reconfigured(spec, t(9)).expect("valid");
    assert_eq!(placement(&again), ["s0", "a1", "s0", "a1"]);
    assert_eq!(table(&again), table(&team));
    let a0 = again.status(m(0)).expect("a0");
    assert!(!a0.link_up && a0.link_since == t(5), "{a0:?}");
    assert_eq!(again.last_move(Bucket(0)), Some(t(5)), "move times kept");
    assert!(announced(&again, &team).is_empty());
}

#[test]
fn explicit_failover_to_port_id_spreads_and_announces_exactly_the_moved_guests() {
    let ex = up_team(TeamSpec::new(TeamPolicy::ExplicitFailover, ["a0", "a1"]));
    assert_eq!(placement(&ex), ["a0"; 4]);
    let pid = ex
        .reconfigured(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]), t(3))
        .expect("valid");
    assert_eq!(placement(&pid), ["a0", "a1", "a0", "a1"]);
    assert_eq!(announced(&pid, &ex), [(1, "a1".into()), (3, "a1".into())]);
    // A policy change is a rehash: every bucket's move time is the reload.
    assert_eq!(pid.last_move(Bucket(0)), Some(t(3)));
    // And back: everyone on a0 again; the guests that were on a1 move.
    let back = pid
        .reconfigured(
            TeamSpec::new(TeamPolicy::ExplicitFailover, ["a0", "a1"]),
            t(4),
        )
        .expect("valid");
    assert_eq!(placement(&back), ["a0"; 4]);
    assert_eq!(announced(&back, &pid), [(1, "a0".into()), (3, "a0".into())]);
}

#[test]
fn reordering_actives_moves_the_slots_and_remapped_keeps_the_dataplanes_order() {
    let old = up_team(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_unused(["u0"]));
    let new = old
        .reconfigured(
            TeamSpec::new(TeamPolicy::PortId, ["a1", "a0"]).with_unused(["u0"]),
            t(2),
        )
        .expect("valid");
    assert_eq!(placement(&new), ["a1", "a0", "a1", "a0"]);
    assert_eq!(
        new.member_index("a1"),
        Some(m(0)),
        "indices follow the spec"
    );
    assert_eq!(announced(&new, &old).len(), 4);
    // The dataplane still has a0, a1, u0: new index i is its to[i].
    let to: Vec<MemberIndex> = (0..3)
        .map(|i| {
            old.member_index(new.member_name(m(i)).expect("member"))
                .expect("same set")
        })
        .collect();
    let sel = new.selector().remapped(&to);
    for p in 0..4u16 {
        let want = port_member(&new, p).expect("a member");
        let got = sel.select(GuestPort(p), &[]).expect("a member");
        assert_eq!(old.member_name(got), Some(want), "port {p}");
    }
    let bcast = [0xffu8; 60];
    let designated = new.selector().designated_receiver().expect("one");
    assert_eq!(
        sel.designated_receiver(),
        Some(to[designated.get()]),
        "same member"
    );
    assert!(sel.accept(to[designated.get()], &bcast));
    // u0 (dataplane index 2) stays unused: even unicast is not its to take.
    let unicast = {
        let mut f = [0u8; 60];
        f[..6].copy_from_slice(&mac(1).0);
        f
    };
    assert!(!sel.accept(m(2), &unicast));
    assert!(sel.accept(m(0), &unicast) && sel.accept(m(1), &unicast));
    assert_eq!(
        (0..BUCKETS)
            .filter(|&b| sel.member_for_bucket(Bucket(b as u8)).is_none())
            .count(),
        0
    );
}

#[test]
fn without_failback_an_idle_recovered_member_stays_idle_until_failback_is_turned_on() {
    let spec = TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"])
        .with_standby(["s0"])
        .with_failback(false);
    let mut team = up_team(spec.clone());
    set(&mut team, "a0", false, 1);
    set(&mut team, "a0", true, 2);
    assert_eq!(placement(&team), ["s0", "a1", "s0", "a1"]);
    // A reload that changes nothing the team sees: nothing moves.
    let same = team.reconfigured(spec.clone(), t(3)).expect("valid");
    assert_eq!(placement(&same), ["s0", "a1", "s0", "a1"]);
    // Failback on: a0 takes its slot back at once.
    let fb = same
        .reconfigured(spec.clone().with_failback(true), t(4))
        .expect("valid");
    assert_eq!(placement(&fb), ["a0", "a1", "a0", "a1"]);
    assert_eq!(announced(&fb, &same), [(0, "a0".into()), (2, "a0".into())]);
    // A standby made active gets a slot of its own even without failback.
    let three = same
        .reconfigured(
            TeamSpec::new(TeamPolicy::PortId, ["a0", "a1", "s0"]).with_failback(false),
            t(5),
        )
        .expect("valid");
    for name in ["a0", "a1", "s0"] {
        assert!(load(&three, name) > 0, "{name}: {:?}", table(&three));
    }
}

#[test]
fn explicit_failover_keeps_its_member_unless_the_order_changes() {
    let spec = TeamSpec::new(TeamPolicy::ExplicitFailover, ["a0", "a1"]).with_failback(false);
    let mut team = up_team(spec.clone());
    set(&mut team, "a0", false, 1);
    set(&mut team, "a0", true, 2);
    assert_eq!(placement(&team), ["a1"; 4]);
    let same = team.reconfigured(spec, t(3)).expect("valid");
    assert_eq!(placement(&same), ["a1"; 4]);
    let swapped = same
        .reconfigured(
            TeamSpec::new(TeamPolicy::ExplicitFailover, ["a1", "a0"]).with_failback(false),
            t(4),
        )
        .expect("valid");
    assert_eq!(placement(&swapped), ["a1"; 4]);
    let a0_first = swapped
        .reconfigured(
            TeamSpec::new(TeamPolicy::ExplicitFailover, ["a0"]).with_standby(["a1"]),
            t(5),
        )
        .expect("valid");
    assert_eq!(placement(&a0_first), ["a0"; 4], "new order: a0 first");
}

#[test]
fn beacon_verdicts_follow_their_members_through_a_reorder() {
    let spec = |active: [&str; 3]| {
        TeamSpec::new(TeamPolicy::PortId, active).with_beacon(BeaconConfig::new(42))
    };
    let mut team = up_team(spec(["a0", "a1", "a2"]));
    // a0 hears nobody and nobody hears it; a1 and a2 hear each other.
    for now in 0..=8u64 {
        let tick = team.tick(t(now));
        for b in &tick.beacons {
            let frame = b.to_frame(&mac(100 + b.member.0), None);
            for r in 0..3u8 {
                if r != b.member.0 && b.member.0 != 0 && r != 0 {
                    let _ = team.on_beacon(m(r), &frame, t(now));
                }
            }
        }
    }
    let failed = |team: &Team| {
        let i = team.member_index("a0").expect("a0");
        matches!(
            team.status(i).and_then(|s| s.beacon),
            Some((BeaconVerdict::Failed, _))
        )
    };
    assert!(failed(&team), "{team}");
    let re = team
        .reconfigured(spec(["a2", "a0", "a1"]), t(9))
        .expect("valid");
    assert!(failed(&re), "the verdict follows a0: {re}");
    assert!(!re.is_usable(re.member_index("a0").expect("a0")));
    assert_eq!(load(&re, "a0"), 0);
    // Without beacon probing any more, a0 is usable again.
    let link_only = re
        .reconfigured(TeamSpec::new(TeamPolicy::PortId, ["a2", "a0", "a1"]), t(10))
        .expect("valid");
    assert!(load(&link_only, "a0") > 0);
}

#[test]
fn aggregated_policies_announce_nothing_and_leaving_one_announces_everyone() {
    let pid = up_team(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]));
    let ip = pid
        .reconfigured(TeamSpec::new(TeamPolicy::IpHash, ["a0", "a1"]), t(1))
        .expect("valid");
    assert!(ip.announcements_since(&pid, &guests()).is_empty());
    let back = ip
        .reconfigured(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]), t(2))
        .expect("valid");
    assert_eq!(back.announcements_since(&ip, &guests()).len(), 4);
    // An invalid new spec is refused and the old team is untouched.
    assert!(
        back.reconfigured(
            TeamSpec::new(TeamPolicy::IpHash, ["a0", "a1"]).with_beacon(BeaconConfig::new(1)),
            t(3)
        )
        .is_err()
    );
}

#[test]
fn a_member_new_to_the_team_starts_down() {
    let old = up_team(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]));
    let new = old
        .reconfigured(TeamSpec::new(TeamPolicy::PortId, ["a0", "a1", "a2"]), t(1))
        .expect("valid");
    let a2 = new.status(m(2)).expect("a2");
    assert!(!a2.link_up && a2.buckets == 0);
    assert!(load(&new, "a0") > 0 && load(&new, "a1") > 0);
}
