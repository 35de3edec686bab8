//! A configuration reload for a running team: the new settings, with the
//! running team's state (links, beacons, slot holders, bucket table)
//! carried over.

use crate::selector::NO_MEMBER;
use crate::{BUCKETS, MemberIndex, TeamPolicy, Timestamp};

use super::assign::fill;
use super::{Role, Team, TeamError, TeamSpec, idx};

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
    pub fn reconfigured(&self, spec: TeamSpec, now: Timestamp) -> Result<Team, TeamError> {
        let mut t = Team::new(spec, now)?;
        let n = t.members.len();
        let old_of: Vec<Option<usize>> = t
            .members
            .iter()
            .map(|m| self.members.iter().position(|o| o.name == m.name))
            .collect();
        let new_of: Vec<Option<MemberIndex>> = self
            .members
            .iter()
            .map(|o| t.members.iter().position(|m| m.name == o.name).map(idx))
            .collect();
        let map = |m: Option<MemberIndex>| m.and_then(|m| new_of.get(m.get()).copied().flatten());
        for (m, o) in t.members.iter_mut().zip(&old_of) {
            if let Some(o) = o.map(|o| &self.members[o]) {
                m.link_up = o.link_up;
                m.link_since = o.link_since;
                m.ever_usable = o.ever_usable;
            }
        }
        if let (Some(nb), Some(ob)) = (&mut t.beacons, &self.beacons)
            && nb.config() == ob.config()
        {
            *nb = ob.remapped(&old_of, now);
        }
        if let Some(b) = &mut t.beacons {
            for (i, m) in t.members.iter().enumerate() {
                b.set_probed(idx(i), m.link_up && m.role != Role::Unused, now);
            }
        }
        if t.policy == self.policy {
            let mut table = [NO_MEMBER; BUCKETS];
            for (new, old) in table.iter_mut().zip(self.selector.table()) {
                *new = map((*old != NO_MEMBER).then_some(MemberIndex(*old)))
                    .map_or(NO_MEMBER, |m| m.0);
            }
            t.selector
                .set(table, map(self.selector.designated_receiver()));
            t.last_move.clone_from(&self.last_move);
        }
        let slots = |p: TeamPolicy| p != TeamPolicy::ExplicitFailover;
        let order = |team: &Team| -> Vec<String> {
            team.members
                .iter()
                .filter(|m| m.role != Role::Unused)
                .map(|m| m.name.clone())
                .collect()
        };
        if !slots(t.policy) && !slots(self.policy) && order(&t) == order(self) {
            t.current = map(self.current);
        }
        // Slots whose home was active before keep their holder (or stay
        // empty, as failback off leaves them); the others are new and are
        // filled as at start. A holder no longer usable (made unused, say)
        // is replaced by the usual rules in `reassign`.
        let mut new_slot = vec![true; t.holders.len()];
        if slots(t.policy) && slots(self.policy) {
            for s in 0..t.holders.len() {
                if let Some(o) = old_of[s].filter(|&o| o < self.holders.len()) {
                    t.holders[s] = map(self.holders[o]);
                    new_slot[s] = false;
                }
            }
        }
        let usable: Vec<bool> = (0..n).map(|i| t.usable(i)).collect();
        fill(&mut t.holders, |s| new_slot[s], &usable);
        t.reassign(now);
        Ok(t)
    }
}
