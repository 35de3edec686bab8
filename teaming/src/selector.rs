//! The fast path: a small `Copy` value a PMD thread holds and asks.

use crate::flow::bucket_for;
use crate::rx::{FrameKind, accept_on_member};
use crate::{BUCKETS, Bucket, GuestPort, MemberIndex, Role, TeamPolicy};

pub(crate) const NO_MEMBER: u8 = u8::MAX;

/// The member choice of a team, frozen: a 256-entry bucket table plus the
/// designated broadcast receiver. [`Team`](crate::Team) rebuilds it on every
/// state change; the dataplane copies it into its snapshot (it is `Copy`,
/// under 300 bytes, with no pointers), so the per-packet path takes no lock and
/// allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selector {
    policy: TeamPolicy,
    table: [u8; BUCKETS],
    designated: u8,
    /// Bit `i` set: member `i` is unused.
    unused: u32,
    members: u8,
}

impl Selector {
    /// `roles` in member order; at most [`MAX_MEMBERS`](crate::MAX_MEMBERS).
    pub(crate) fn new(policy: TeamPolicy, roles: &[Role]) -> Selector {
        let unused = roles
            .iter()
            .enumerate()
            .filter(|(_, r)| **r == Role::Unused)
            .fold(0u32, |acc, (i, _)| acc | 1 << i);
        Selector {
            policy,
            table: [NO_MEMBER; BUCKETS],
            designated: NO_MEMBER,
            unused,
            members: roles.len() as u8,
        }
    }

    pub(crate) fn table(&self) -> &[u8; BUCKETS] {
        &self.table
    }

    pub(crate) fn set(&mut self, table: [u8; BUCKETS], designated: Option<MemberIndex>) {
        self.table = table;
        self.designated = designated.map_or(NO_MEMBER, |m| m.0);
    }

    /// The same choice with member `i` renamed `to[i]`: for a dataplane
    /// whose members are in another order than the team's (a team
    /// reconfigured with [`Team::reconfigured`](crate::Team::reconfigured)
    /// while the dataplane keeps the order it started with). A member
    /// without a new index carries nothing and counts as unused.
    pub fn remapped(&self, to: &[MemberIndex]) -> Selector {
        let map = |m: u8| to.get(usize::from(m)).map_or(NO_MEMBER, |n| n.0);
        let mut table = self.table;
        for t in &mut table {
            *t = map(*t);
        }
        // Every index that is not a renamed used member: unused.
        let mut unused = !0u32;
        for (i, n) in to.iter().enumerate().take(usize::from(self.members)) {
            if self.unused & (1 << i) == 0 && n.0 < 32 {
                unused &= !(1 << n.0);
            }
        }
        Selector {
            policy: self.policy,
            table,
            designated: map(self.designated),
            unused,
            members: self.members,
        }
    }

    /// The team's policy.
    pub fn policy(&self) -> TeamPolicy {
        self.policy
    }

    /// The member a frame sent by guest `port` leaves on, or `None` when no
    /// member is usable (drop and count). O(1): at most one header parse and
    /// one table load; no allocation; never panics.
    #[inline]
    pub fn select(&self, port: GuestPort, frame: &[u8]) -> Option<MemberIndex> {
        self.member_for_bucket(bucket_for(self.policy, port, frame))
    }

    /// [`select`](Selector::select) over a burst: writes one answer per
    /// input into `out` and returns how many it wrote (the shorter of the
    /// two).
    pub fn select_burst<'a>(
        &self,
        inputs: impl IntoIterator<Item = (GuestPort, &'a [u8])>,
        out: &mut [Option<MemberIndex>],
    ) -> usize {
        let mut n = 0;
        for (slot, (port, frame)) in out.iter_mut().zip(inputs) {
            *slot = self.select(port, frame);
            n += 1;
        }
        n
    }

    /// The member carrying `bucket`.
    #[inline]
    pub fn member_for_bucket(&self, bucket: Bucket) -> Option<MemberIndex> {
        match self.table[usize::from(bucket.0)] {
            NO_MEMBER => None,
            m => Some(MemberIndex(m)),
        }
    }

    /// The one member that accepts broadcast and multicast under the
    /// non-aggregated policies (see [`accept_on_member`]).
    pub fn designated_receiver(&self) -> Option<MemberIndex> {
        (self.designated != NO_MEMBER).then_some(MemberIndex(self.designated))
    }

    /// Whether a frame received on `member` goes on to the guests
    /// ([`accept_on_member`] with this team's policy, roles and designated
    /// receiver). Check [`is_reflection`](crate::is_reflection) too.
    #[inline]
    pub fn accept(&self, member: MemberIndex, frame: &[u8]) -> bool {
        // An index that is not a member counts as unused: not ours.
        let i = member.get();
        let unused = i >= usize::from(self.members) || self.unused & (1 << i) != 0;
        let role = if unused { Role::Unused } else { Role::Active };
        accept_on_member(
            self.policy,
            role,
            member,
            FrameKind::of_frame(frame),
            self.designated_receiver(),
        )
    }
}
