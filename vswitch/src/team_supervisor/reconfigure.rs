//! A reload's new settings for a running team, applied in place.

use std::collections::{BTreeMap, BTreeSet};

use dataplane::PortId;
use dataplane::mac_table::MacTableRow;
use teaming::{GuestAddr, Team, Timestamp};

use super::{Outgoing, TeamRuntime};

impl TeamRuntime {
    /// Applies a reload's settings for this team: `cfg` (policy, member
    /// order and roles, failback, failure detection, notify-switches),
    /// `fresh` the team the reload's check built from its teaming spec
    /// ([`team_spec`](super::team_spec) of `cfg`), and the members' VLAN
    /// mode `vlan`. The member set must be the one the team started with
    /// (its members' queues are opened at start). The running team's state
    /// is carried over into `fresh` now, with [`Team::carrying_state_of`]
    /// (link states, beacon verdicts and what still holds are kept, as in
    /// [`Team::reconfigured`]), the new member
    /// choice is published to the PMDs (translated to the order their team
    /// ports were built with), `what` (the changes, in words) is recorded
    /// as events, and with notify-switches the guests whose member changed
    /// are announced on the supervisor's next turn. `rows` is the switch's
    /// MAC table. Returns the number of guests that moved; on error
    /// nothing changed.
    #[allow(clippy::too_many_arguments)]
    pub fn reconfigure(
        &mut self,
        cfg: &config::Team,
        fresh: Team,
        vlan: dataplane::VlanMode,
        rows: &[MacTableRow],
        uplinks: &BTreeSet<PortId>,
        what: &[String],
        now: Timestamp,
    ) -> Result<usize, String> {
        let names: Vec<&str> = cfg.members().collect();
        let old_of: Vec<usize> = names
            .iter()
            .map(|n| self.members.iter().position(|m| m == n))
            .collect::<Option<_>>()
            .filter(|v: &Vec<usize>| v.len() == self.members.len())
            .ok_or_else(|| {
                format!(
                    "team {}: members {} -> {}: members are opened at start (restart vswitchd)",
                    self.name,
                    self.members.join(", "),
                    names.join(", ")
                )
            })?;
        let team = fresh.carrying_state_of(&self.team, now);
        self.vlan = vlan;
        let guests = self.guests(rows, uplinks);
        let plan = team.announcements_since(&self.team, &guests);
        // Which guests moved, from which member to which, by name.
        let member = |t: &Team, g: &GuestAddr| {
            t.member_for_guest(g.port, &g.mac)
                .and_then(|m| t.member_name(m))
                .unwrap_or("nothing")
                .to_string()
        };
        let mut moved: BTreeMap<(String, String), usize> = BTreeMap::new();
        for g in &guests {
            let (from, to) = (member(&self.team, g), member(&team, g));
            if from != to && !team.policy().is_aggregated() {
                *moved.entry((from, to)).or_default() += 1;
            }
        }
        self.team = team;
        self.members = old_of.iter().map(|&j| self.members[j].clone()).collect();
        self.present = old_of
            .iter()
            .map(|&j| self.present.get(j).copied().unwrap_or(false))
            .collect();
        self.member_macs = old_of
            .iter()
            .map(|&j| {
                self.member_macs
                    .get(j)
                    .copied()
                    .unwrap_or(dataplane::MacAddr([2, 0, 0, 0, 0, 0]))
            })
            .collect();
        self.to_shared = old_of.iter().map(|&j| self.to_shared[j]).collect();
        self.notify = cfg.notify_switches;
        self.failure_detection = cfg.failure_detection;
        for w in what {
            self.event(now, format!("reload: {w}"));
        }
        self.publish(&[], now);
        let count = moved.values().sum();
        if count > 0 {
            let parts: Vec<String> = moved
                .iter()
                .map(|((f, t), n)| format!("{n} {f} -> {t}"))
                .collect();
            self.event(now, format!("reload moved guests: {}", parts.join(", ")));
        }
        if self.notify {
            let before = self.pending.len();
            for a in plan {
                let Some(member) = self.members.get(a.member.get()) else {
                    continue;
                };
                for frame in a.frames() {
                    self.pending.push(Outgoing {
                        member: member.clone(),
                        frame,
                    });
                }
            }
            self.announcements_sent += (self.pending.len() - before) as u64;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dataplane::PortId;
    use dataplane::port::team::ReceivedBeacon;
    use teaming::{Beacon, GuestPort, MemberIndex, Team, Timestamp};

    use super::super::testing::{FakeIo, cfg, row, runtime};
    use super::super::{TeamRuntime, supervise, team_spec};

    /// The team a reload's check builds for `c`.
    fn checked(c: &config::Team, now: Timestamp) -> Team {
        Team::new(team_spec("sw0", c), now).expect("valid team")
    }

    /// The member name the PMDs use for guest port `p` under `port-id` or
    /// `explicit-failover` (what they were published, in their order).
    fn pmd_member(rt: &TeamRuntime, p: u16) -> Option<String> {
        let sel = rt.shared.selector();
        let m = sel.select(GuestPort(p), &[])?;
        rt.shared.members().get(m.get()).cloned()
    }

    #[test]
    fn a_reload_changes_policy_and_order_live_keeps_links_and_announces_the_moved_guests() {
        let mut c = cfg(config::TeamPolicy::ExplicitFailover, true, true);
        let mut rt = runtime(&c);
        let mut io = FakeIo::default();
        io.links.insert("eth0".into(), true);
        io.links.insert("eth1".into(), true);
        let uplinks = BTreeSet::from([PortId(9)]);
        let table = vec![row(1, 1, 1), row(1, 2, 2), row(1, 3, 3), row(1, 4, 4)];
        let mut rows = || table.clone();
        let t = Timestamp::from_millis;
        supervise(&mut rt, &mut io, &mut rows, &uplinks, t(0));
        assert!((1..=4).all(|p| pmd_member(&rt, p).as_deref() == Some("eth0")));
        let vlan = rt.vlan.clone();

        // explicit-failover -> port-id: guests on odd ports go to eth1.
        c.policy = config::TeamPolicy::PortId;
        let what = vec!["bond0: policy explicit-failover -> port-id".to_string()];
        let moved = rt
            .reconfigure(
                &c,
                checked(&c, t(90)),
                vlan.clone(),
                &table,
                &uplinks,
                &what,
                t(100),
            )
            .expect("same members");
        assert_eq!(moved, 2);
        let on: Vec<Option<String>> = (1..=4).map(|p| pmd_member(&rt, p)).collect();
        let want: Vec<Option<String>> = ["eth1", "eth0", "eth1", "eth0"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        assert_eq!(on, want, "published to the PMDs at once");
        assert!(
            rt.team()
                .members()
                .all(|m| m.link_up && m.link_since == t(0))
        );
        let ev: Vec<String> = rt.events.iter().map(|(_, w)| w.clone()).collect();
        assert!(ev.contains(&format!("reload: {}", what[0])), "{ev:?}");
        assert!(
            ev.contains(&"reload moved guests: 2 eth0 -> eth1".to_string()),
            "{ev:?}"
        );
        assert_eq!(
            rt.show(&table, &uplinks, &|_| None, t(100)).policy,
            "port-id"
        );
        // The announcements leave on the supervisor's next turn, out of eth1.
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(105));
        let macs: BTreeSet<u8> = out.iter().map(|o| o.frame[11]).collect();
        assert_eq!(macs, BTreeSet::from([1, 3]), "{out:?}");
        assert!(out.iter().all(|o| o.member == "eth1"));
        assert!(supervise(&mut rt, &mut io, &mut rows, &uplinks, t(110)).is_empty());

        // Reversed order: the PMDs keep eth0, eth1 in their order, the
        // team numbers eth1 first; every guest swaps member.
        c.active = vec!["eth1".into(), "eth0".into()];
        rt.reconfigure(
            &c,
            checked(&c, t(190)),
            vlan.clone(),
            &table,
            &uplinks,
            &[],
            t(200),
        )
        .expect("same members");
        assert_eq!(rt.members(), ["eth1", "eth0"]);
        assert_eq!(rt.shared.members(), ["eth0", "eth1"]);
        let on: Vec<Option<String>> = (1..=4).map(|p| pmd_member(&rt, p)).collect();
        let want: Vec<Option<String>> = ["eth0", "eth1", "eth0", "eth1"]
            .iter()
            .map(|s| Some(s.to_string()))
            .collect();
        assert_eq!(on, want);
        let show = rt.show(&table, &uplinks, &|_| None, t(200));
        let g1 = show.guests.iter().find(|g| g.port == "1").expect("guest 1");
        assert_eq!(g1.member.as_deref(), Some("eth0"), "team show agrees");
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(205));
        let sent: BTreeSet<(u8, String)> = out
            .iter()
            .map(|o| (o.frame[11], o.member.clone()))
            .collect();
        let want: BTreeSet<(u8, String)> = [(1, "eth0"), (2, "eth1"), (3, "eth0"), (4, "eth1")]
            .iter()
            .map(|&(g, m)| (g, m.to_string()))
            .collect();
        assert_eq!(sent, want, "every guest moved: announced on its new member");
        // Links are read in the new order and a link change still works.
        io.links.insert("eth0".into(), false);
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(300));
        assert!((1..=4).all(|p| pmd_member(&rt, p).as_deref() == Some("eth1")));
        assert_eq!(out.len(), 2, "the guests of eth0 (RARPs) announced on eth1");

        // Another member set is refused and changes nothing.
        let before = rt.shared.selector();
        c.active = vec!["eth0".into(), "eth2".into()];
        let e = rt
            .reconfigure(&c, checked(&c, t(390)), vlan, &table, &uplinks, &[], t(400))
            .expect_err("members differ");
        assert!(e.contains("restart"), "{e}");
        assert_eq!(rt.shared.selector(), before);
        assert_eq!(rt.members(), ["eth1", "eth0"]);
    }

    #[test]
    fn beacons_carry_the_pmds_member_order_on_the_wire_across_a_reorder() {
        let mut c = cfg(config::TeamPolicy::PortId, true, true);
        c.active = vec!["eth0".into(), "eth1".into(), "eth2".into()];
        c.failure_detection = config::FailureDetection::Beacon;
        let mut rt = runtime(&c);
        let (tx, rx) = crossbeam_channel::bounded(64);
        rt.beacons = rx;
        let mut io = FakeIo::default();
        for m in ["eth0", "eth1", "eth2"] {
            io.links.insert(m.into(), true);
        }
        let uplinks = BTreeSet::from([PortId(9)]);
        let mut rows = Vec::new;
        let t = Timestamp::from_millis;
        supervise(&mut rt, &mut io, &mut rows, &uplinks, t(0));
        c.active = vec!["eth2".into(), "eth0".into(), "eth1".into()];
        let vlan = rt.vlan.clone();
        rt.reconfigure(&c, checked(&c, t(5)), vlan, &[], &uplinks, &[], t(10))
            .expect("same members");
        // Every member's beacon names its PMD index (eth<i> is PMD member
        // i); each is looped back to the two other members, as a physical
        // switch floods it.
        for sec in 1..=6u64 {
            let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(sec * 1000));
            for o in out.iter().filter(|o| o.frame[12..14] == [0x88, 0xb5]) {
                let sender = Beacon::parse(&o.frame).expect("a beacon").member;
                assert_eq!(format!("eth{}", sender.0), o.member, "wire index");
                for r in 0..3u8 {
                    if r != sender.0 {
                        tx.send(ReceivedBeacon {
                            member: MemberIndex(r),
                            frame: o.frame.clone(),
                        })
                        .expect("room");
                    }
                }
            }
        }
        // Heard both ways: nobody failed, nobody suspect.
        for m in rt.team().members() {
            assert!(
                m.beacon
                    .is_some_and(|(v, _)| v == teaming::BeaconVerdict::Healthy),
                "{m}"
            );
            assert!(m.usable, "{m}");
        }
    }
}
