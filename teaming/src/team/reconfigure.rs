//! A configuration reload for a running team: the new settings, with the
//! running team's state (links, beacons, slot holders, bucket table)
//! carried over.

use crate::selector::NO_MEMBER;
use crate::{BUCKETS, MemberIndex, TeamPolicy, Timestamp};

use super::assign::fill;
use super::{Member, Role, Team, TeamError, TeamSpec, idx};

impl Team {
    /// This team with the settings of `spec` (policy, member order and
    /// roles, failback, beacon probing), for a configuration reload.
    /// Members are matched by name; each keeps its link state and since
    /// when, whether it was ever usable, and, if the beacon settings are
    /// the same, what beacon probing heard and judged of it. Who holds
    /// what is kept where it still holds (a slot stays with its holder
    /// while its home member is active in both and the policy keeps
    /// slots; explicit failover stays on its member unless the failover
    /// order changed: then the first usable member takes over), then the
    /// usual rules apply: with failback on homes take their slots back; a
    /// new slot (its home was not active) goes to its home if usable, else
    /// to the first free usable member. So a reload that changes nothing
    /// the team sees moves nothing.
    /// Under the same policy buckets keep their last move times.
    ///
    /// Member indices follow `spec`'s order, so they change when the order
    /// does: a dataplane that keeps its own order translates with
    /// [`Selector::remapped`]. [`Team::announcements_since`] says which guests moved.
    ///
    /// Building and carrying over are two steps, for a caller that
    /// validates the new settings before it commits them: this is
    /// `Team::new(spec, now)?.carrying_state_of(self, now)`.
    pub fn reconfigured(&self, spec: TeamSpec, now: Timestamp) -> Result<Team, TeamError> {
        Ok(Team::new(spec, now)?.carrying_state_of(self, now))
    }

    /// The settings of this team (built with [`Team::new`] from a
    /// reload's spec) with the state of the running team `old` carried
    /// over at `now`: what [`reconfigured`](Team::reconfigured) returns
    /// for that spec. A reload builds (and so validates) the new team once,
    /// in its check, and carries the running team's state over at its
    /// commit, so nothing that happened in between is lost. Only this
    /// team's settings count: its own state is set back to a new team's
    /// at `now` first, so when it was built does not matter.
    pub fn carrying_state_of(self, old: &Team, now: Timestamp) -> Team {
        let mut t = self.rebuilt_at(now);
        let n = t.members.len();
        let old_of: Vec<Option<usize>> = t
            .members
            .iter()
            .map(|m| old.members.iter().position(|o| o.name == m.name))
            .collect();
        let new_of: Vec<Option<MemberIndex>> = old
            .members
            .iter()
            .map(|o| t.members.iter().position(|m| m.name == o.name).map(idx))
            .collect();
        let map = |m: Option<MemberIndex>| m.and_then(|m| new_of.get(m.get()).copied().flatten());
        for (m, o) in t.members.iter_mut().zip(&old_of) {
            if let Some(o) = o.map(|o| &old.members[o]) {
                m.link_up = o.link_up;
                m.link_since = o.link_since;
                m.ever_usable = o.ever_usable;
            }
        }
        if let (Some(nb), Some(ob)) = (&mut t.beacons, &old.beacons)
            && nb.config() == ob.config()
        {
            *nb = ob.remapped(&old_of, now);
        }
        if let Some(b) = &mut t.beacons {
            for (i, m) in t.members.iter().enumerate() {
                b.set_probed(idx(i), m.link_up && m.role != Role::Unused, now);
            }
        }
        if t.policy == old.policy {
            let mut table = [NO_MEMBER; BUCKETS];
            for (new, was) in table.iter_mut().zip(old.selector.table()) {
                *new = map((*was != NO_MEMBER).then_some(MemberIndex(*was)))
                    .map_or(NO_MEMBER, |m| m.0);
            }
            t.selector
                .set(table, map(old.selector.designated_receiver()));
            t.last_move.clone_from(&old.last_move);
        }
        let slots = |p: TeamPolicy| p != TeamPolicy::ExplicitFailover;
        let order = |team: &Team| -> Vec<String> {
            team.members
                .iter()
                .filter(|m| m.role != Role::Unused)
                .map(|m| m.name.clone())
                .collect()
        };
        if !slots(t.policy) && !slots(old.policy) && order(&t) == order(old) {
            t.current = map(old.current);
        }
        // Slots whose home was active before keep their holder (or stay
        // empty, as failback off leaves them); the others are new and are
        // filled as at start. A holder no longer usable (made unused, say)
        // is replaced by the usual rules in `reassign`.
        let mut new_slot = vec![true; t.holders.len()];
        if slots(t.policy) && slots(old.policy) {
            for s in 0..t.holders.len() {
                if let Some(o) = old_of[s].filter(|&o| o < old.holders.len()) {
                    t.holders[s] = map(old.holders[o]);
                    new_slot[s] = false;
                }
            }
        }
        let usable: Vec<bool> = (0..n).map(|i| t.usable(i)).collect();
        fill(&mut t.holders, |s| new_slot[s], &usable);
        t.reassign(now);
        t
    }

    /// This team's settings as [`Team::new`] builds them at `now`: every
    /// link down since `now`, nothing held or selected, nothing heard.
    fn rebuilt_at(self, now: Timestamp) -> Team {
        let slots = self.holders.len();
        let members = self
            .members
            .into_iter()
            .map(|m| Member {
                link_up: false,
                link_since: now,
                ever_usable: false,
                ..m
            })
            .collect();
        let beacon = self.beacons.as_ref().map(|b| *b.config());
        Team::with_members(self.policy, self.failback, members, slots, beacon, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Team, TeamSpec, idx};
    use crate::{BeaconConfig, MacAddr, TeamPolicy, Timestamp};

    fn t(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    /// A team of `spec` that ran a while: links up at 1 s, beacons (if
    /// probed) heard by every other member for a few rounds, member 0's
    /// link down at 5 s.
    fn running(spec: TeamSpec) -> Team {
        let mut team = Team::new(spec, t(0)).expect("valid");
        let n = team.member_count();
        for i in 0..n {
            team.set_link(idx(i), true, t(1)).expect("member");
        }
        for now in 1..=4 {
            for b in &team.tick(t(now)).beacons {
                let frame = b.to_frame(&MacAddr([2, 0, 0, 0, 0, b.member.0]), None);
                for r in (0..n).filter(|&r| r != b.member.get()) {
                    let _ = team.on_beacon(idx(r), &frame, t(now));
                }
            }
        }
        team.set_link(idx(0), false, t(5)).expect("member");
        team
    }

    #[test]
    fn a_team_built_earlier_carrying_the_running_state_is_the_reconfigured_team() {
        let beacon = BeaconConfig::new(7);
        let slower = BeaconConfig {
            interval: Duration::from_secs(2),
            ..beacon
        };
        let olds = [
            TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_standby(["s0"]),
            TeamSpec::new(TeamPolicy::ExplicitFailover, ["a0", "a1", "s0"]).with_beacon(beacon),
        ];
        let news = [
            TeamSpec::new(TeamPolicy::PortId, ["a0", "a1"]).with_standby(["s0"]),
            TeamSpec::new(TeamPolicy::PortId, ["a1", "a0"])
                .with_standby(["s0"])
                .with_failback(false),
            TeamSpec::new(TeamPolicy::ExplicitFailover, ["a0", "a1", "s0"]).with_beacon(beacon),
            TeamSpec::new(TeamPolicy::SrcMac, ["s0", "a0", "a1"]).with_beacon(slower),
            TeamSpec::new(TeamPolicy::L4Hash, ["a0", "a1"]).with_unused(["s0"]),
            TeamSpec::new(TeamPolicy::PortId, ["a0", "n0"]).with_standby(["a1"]),
        ];
        for old_spec in &olds {
            let old = running(old_spec.clone());
            for new_spec in &news {
                let want = old.reconfigured(new_spec.clone(), t(9)).expect("valid");
                // Built (checked) earlier; even an event on it does not
                // count: only its settings are taken.
                let mut fresh = Team::new(new_spec.clone(), t(6)).expect("valid");
                fresh.set_link(idx(0), true, t(7)).expect("member");
                let got = fresh.carrying_state_of(&old, t(9));
                assert_eq!(
                    format!("{got:?}"),
                    format!("{want:?}"),
                    "{old_spec:?} -> {new_spec:?}"
                );
            }
        }
    }
}
