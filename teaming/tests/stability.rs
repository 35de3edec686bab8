//! Property tests: stable assignment, failback and the selection invariants
//! hold for random teams under random link-event sequences.
//!
//! What they prove, for every policy, 1-5 active, 0-3 standby and 0-2
//! unused members, failback on and off:
//!
//! - only usable, never unused, members are selected, and every bucket has
//!   a member whenever any member is usable;
//! - a member going down moves only the buckets it carried;
//! - without failback, a member coming back moves nothing (unless nothing
//!   was carried at all, or it comes up for the first time);
//! - with failback, down then up of an active member restores every bucket
//!   (the moved ones return, nothing else changed), and while every active
//!   member is up each bucket is on its home slot's own member and no
//!   standby carries anything;
//! - the returned moves are exactly the difference of the tables;
//! - a reload ([`Team::reconfigured`]) with the same settings moves
//!   nothing, and one with the active order reversed keeps the state
//!   invariants, and its selector remapped to the old member order
//!   routes every bucket to the same member, by name.

mod common;

use common::*;
use proptest::prelude::*;
use teaming::{BUCKETS, MemberIndex, Move, Role, Team, TeamPolicy, TeamSpec};

#[derive(Clone, Debug)]
struct Case {
    policy: TeamPolicy,
    active: usize,
    standby: usize,
    unused: usize,
    failback: bool,
    initial: Vec<bool>,
    events: Vec<(usize, bool)>,
}

impl Case {
    fn members(&self) -> usize {
        self.active + self.standby + self.unused
    }

    fn role(&self, i: usize) -> Role {
        if i < self.active {
            Role::Active
        } else if i < self.active + self.standby {
            Role::Standby
        } else {
            Role::Unused
        }
    }

    fn spec(&self, reverse_active: bool) -> TeamSpec {
        let names = |prefix: &'static str, n: usize| (0..n).map(move |i| format!("{prefix}{i}"));
        let mut active: Vec<String> = names("a", self.active).collect();
        if reverse_active {
            active.reverse();
        }
        TeamSpec::new(self.policy, active)
            .with_standby(names("s", self.standby))
            .with_unused(names("u", self.unused))
            .with_failback(self.failback)
    }

    fn team(&self) -> Team {
        Team::new(self.spec(false), t(0)).expect("valid spec")
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(TeamPolicy::ALL.to_vec()),
        1usize..=5,
        0usize..=3,
        0usize..=2,
        any::<bool>(),
    )
        .prop_flat_map(|(policy, active, standby, unused, failback)| {
            let n = active + standby + unused;
            (
                prop::collection::vec(any::<bool>(), n),
                prop::collection::vec((0..n, any::<bool>()), 0..40),
            )
                .prop_map(move |(initial, events)| Case {
                    policy,
                    active,
                    standby,
                    unused,
                    failback,
                    initial,
                    events,
                })
        })
}

fn diff(before: &[Option<MemberIndex>], after: &[Option<MemberIndex>]) -> Vec<Move> {
    (0..BUCKETS)
        .filter(|&b| before[b] != after[b])
        .map(|b| Move {
            bucket: teaming::Bucket(b as u8),
            from: before[b],
            to: after[b],
        })
        .collect()
}

/// Invariants of any state.
fn check_state(c: &Case, team: &Team) -> Result<(), TestCaseError> {
    let tab = table(team);
    let any_usable = (0..c.members()).any(|i| team.is_usable(m(i as u8)));
    for (b, x) in tab.iter().enumerate() {
        match x {
            Some(x) => {
                prop_assert!(team.is_usable(*x), "bucket {b} on unusable {x}");
                prop_assert_ne!(c.role(x.get()), Role::Unused);
            }
            None => prop_assert!(!any_usable, "bucket {b} dropped while a member is usable"),
        }
    }
    let all_active_up = (0..c.active).all(|i| team.is_usable(m(i as u8)));
    if c.failback && all_active_up {
        for (b, x) in tab.iter().enumerate() {
            let home = match c.policy {
                TeamPolicy::ExplicitFailover => 0,
                _ => b % c.active,
            };
            prop_assert_eq!(*x, Some(m(home as u8)), "bucket {} not at home", b);
        }
    }
    Ok(())
}

/// Invariants of one link event.
fn check_event(
    c: &Case,
    before: &[Option<MemberIndex>],
    team: &Team,
    member: usize,
    up: bool,
    first_time: bool,
    moves: &[Move],
) -> Result<(), TestCaseError> {
    let after = table(team);
    let want = diff(before, &after);
    prop_assert_eq!(moves, want.as_slice());
    let me = Some(m(member as u8));
    for mv in moves {
        if !up {
            prop_assert_eq!(mv.from, me, "down moved a bucket it did not carry");
        } else if !c.failback {
            if first_time {
                prop_assert!(mv.to == me || mv.from.is_none(), "{:?}", mv);
            } else {
                prop_assert!(
                    mv.from.is_none(),
                    "recovery without failback moved {:?}",
                    mv
                );
            }
        }
    }
    Ok(())
}

/// Down then up of every usable active member: with failback the table is
/// restored; without it, the down table stays.
fn check_round_trip(c: &Case, team: &Team) -> Result<(), TestCaseError> {
    for a in 0..c.active {
        let a = m(a as u8);
        if !team.is_usable(a) {
            continue;
        }
        let start = table(team);
        let mut probe = team.clone();
        probe.set_link(a, false, t(1000)).expect("member");
        let down = table(&probe);
        probe.set_link(a, true, t(1001)).expect("member");
        let up = table(&probe);
        if c.failback {
            prop_assert_eq!(&up, &start, "failback did not restore after {} flapped", a);
        } else if down.iter().any(Option::is_some) {
            prop_assert_eq!(&up, &down, "no failback, yet {} took traffic back", a);
        }
    }
    Ok(())
}

/// A reload with the same settings moves nothing; one with the active
/// order reversed keeps the invariants and, remapped to the old order,
/// routes each bucket to the member of the same name.
fn check_reload(c: &Case, team: &Team, at: u64) -> Result<(), TestCaseError> {
    let same = team
        .reconfigured(c.spec(false), t(at + 500))
        .expect("valid");
    prop_assert_eq!(table(&same), table(team), "same settings moved buckets");
    let rev = team.reconfigured(c.spec(true), t(at + 500)).expect("valid");
    check_state(c, &rev)?;
    let to: Vec<MemberIndex> = (0..c.members())
        .map(|i| {
            let name = rev.member_name(m(i as u8)).expect("member");
            team.member_index(name).expect("same set")
        })
        .collect();
    let sel = rev.selector().remapped(&to);
    for b in 0..BUCKETS {
        let bucket = teaming::Bucket(b as u8);
        let want = rev
            .selector()
            .member_for_bucket(bucket)
            .and_then(|x| rev.member_name(x));
        let got = sel
            .member_for_bucket(bucket)
            .and_then(|x| team.member_name(x));
        prop_assert_eq!(got, want, "bucket {}", b);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn assignment_is_stable(c in case()) {
        let mut team = c.team();
        let mut ever = vec![false; c.members()];
        let mut apply = |team: &mut Team, i: usize, up: bool, at: u64| -> Result<(), TestCaseError> {
            let before = table(team);
            let was_up = team.status(m(i as u8)).expect("member").link_up;
            let first_time = !ever[i];
            let moves = team.set_link(m(i as u8), up, t(at)).expect("member");
            if was_up == up {
                prop_assert!(moves.is_empty());
            } else {
                check_event(&c, &before, team, i, up, first_time, &moves)?;
            }
            for (j, e) in ever.iter_mut().enumerate() {
                *e |= team.is_usable(m(j as u8));
            }
            check_state(&c, team)?;
            check_round_trip(&c, team)?;
            check_reload(&c, team, at)
        };
        for (i, up) in c.initial.iter().enumerate() {
            apply(&mut team, i, *up, 0)?;
        }
        for (k, (i, up)) in c.events.iter().enumerate() {
            apply(&mut team, *i, *up, k as u64 + 1)?;
        }
    }
}
