//! The slot rules (see [`Team`]): who holds which slot, failover and
//! failback, and the bucket table they publish with the [`Move`]s it
//! caused.

use crate::flow::mix;
use crate::selector::NO_MEMBER;
use crate::{BUCKETS, Bucket, MemberIndex, TeamPolicy, Timestamp};

use super::{Move, Team, idx};

/// Where a balancing policy sends a bucket, and why.
pub(super) struct Route {
    pub(super) home: usize,
    pub(super) via: Option<usize>,
    pub(super) member: Option<MemberIndex>,
}

const SPREAD_SEED: u64 = 0x1319_8a2e_0370_7344;

/// Rank of slot `slot` for bucket `bucket` when its home slot is empty.
fn spread_weight(bucket: usize, slot: usize) -> u64 {
    mix(((bucket as u64) << 8 | slot as u64) ^ SPREAD_SEED)
}

/// Gives each empty `eligible` slot a holder among the free `candidate`
/// members: its home if possible, else the first in member order.
pub(super) fn fill(
    holders: &mut [Option<MemberIndex>],
    eligible: impl Fn(usize) -> bool,
    candidate: &[bool],
) {
    for s in 0..holders.len() {
        if holders[s].is_some() || !eligible(s) {
            continue;
        }
        let free = |m: usize, h: &[Option<MemberIndex>]| candidate[m] && !h.contains(&Some(idx(m)));
        let pick = if s < candidate.len() && free(s, holders) {
            Some(s)
        } else {
            (0..candidate.len()).find(|&m| free(m, holders))
        };
        holders[s] = pick.map(idx);
    }
}

impl Team {
    pub(super) fn reassign(&mut self, now: Timestamp) -> Vec<Move> {
        let n = self.members.len();
        let usable: Vec<bool> = (0..n).map(|i| self.usable(i)).collect();
        let newcomer: Vec<bool> = (0..n)
            .map(|i| usable[i] && !self.members[i].ever_usable)
            .collect();
        if self.policy == TeamPolicy::ExplicitFailover {
            self.reassign_explicit(&usable, &newcomer);
        } else {
            self.reassign_slots(&usable, &newcomer);
        }
        for (m, u) in self.members.iter_mut().zip(&usable) {
            m.ever_usable |= *u;
        }
        self.rebuild(now)
    }

    fn reassign_explicit(&mut self, usable: &[bool], newcomer: &[bool]) {
        let first = (0..usable.len()).find(|&i| usable[i]);
        self.current = match self.current {
            Some(c) if usable[c.get()] => {
                if self.failback {
                    first
                } else {
                    // A member up for the first time ahead of the current
                    // one is not a failback: it takes over.
                    (0..c.get()).find(|&i| newcomer[i]).or(Some(c.get()))
                }
            }
            _ => first,
        }
        .map(idx);
    }

    fn reassign_slots(&mut self, usable: &[bool], newcomer: &[bool]) {
        let slots = self.holders.len();
        let mut lost = vec![false; slots];
        for (s, h) in self.holders.iter_mut().enumerate() {
            if h.is_some_and(|m| !usable[m.get()]) {
                *h = None;
                lost[s] = true;
            }
        }
        for s in 0..slots {
            let home = Some(idx(s));
            if usable[s] && self.holders[s] != home && (self.failback || newcomer[s]) {
                // Only after failback was turned on: the home stands in
                // elsewhere. That slot is left to the fill below.
                if let Some(t) = self.holders.iter().position(|h| *h == home) {
                    self.holders[t] = None;
                    lost[t] = true;
                }
                self.holders[s] = home;
            }
        }
        let any_held = self.holders.iter().any(Option::is_some);
        if self.failback || !any_held {
            fill(&mut self.holders, |_| true, usable);
        } else {
            fill(&mut self.holders, |s| lost[s], usable);
            fill(&mut self.holders, |_| true, newcomer);
        }
    }

    pub(super) fn route(&self, bucket: usize) -> Route {
        let slots = self.holders.len();
        let home = bucket % slots;
        if let Some(m) = self.holders[home] {
            return Route {
                home,
                via: Some(home),
                member: Some(m),
            };
        }
        let via = (0..slots)
            .filter(|&s| s != home && self.holders[s].is_some())
            .max_by_key(|&s| spread_weight(bucket, s));
        Route {
            home,
            via,
            member: via.and_then(|s| self.holders[s]),
        }
    }

    pub(super) fn rebuild(&mut self, now: Timestamp) -> Vec<Move> {
        let mut table = [NO_MEMBER; BUCKETS];
        if self.policy == TeamPolicy::ExplicitFailover {
            table = [self.current.map_or(NO_MEMBER, |m| m.0); BUCKETS];
        } else {
            for (b, t) in table.iter_mut().enumerate() {
                *t = self.route(b).member.map_or(NO_MEMBER, |m| m.0);
            }
        }
        let mut carrying = 0u64;
        for &t in &table {
            if t != NO_MEMBER {
                carrying |= 1 << t;
            }
        }
        let designated = (carrying != 0).then(|| MemberIndex(carrying.trailing_zeros() as u8));
        let old = *self.selector.table();
        let opt = |t: u8| (t != NO_MEMBER).then_some(MemberIndex(t));
        let mut moves = Vec::new();
        for b in 0..BUCKETS {
            if old[b] != table[b] {
                moves.push(Move {
                    bucket: Bucket(b as u8),
                    from: opt(old[b]),
                    to: opt(table[b]),
                });
                self.last_move[b] = Some(now);
            }
        }
        self.selector.set(table, designated);
        moves
    }
}
