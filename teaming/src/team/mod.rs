//! Team state: members and their roles, link and beacon state, slots,
//! failover and failback, and the moves they cause. The rules are on [`Team`].
//!
//! One job per file: this file holds the types, the construction, the
//! accessors and the events (links, beacons, failback); `assign.rs` the
//! slot rules (who holds what, failover and failback, the bucket table);
//! `reconfigure.rs` a reload's new settings with the running team's state
//! carried over; `announce.rs` the notify-switches plans; `views.rs`
//! `explain` and `team show`.

use std::collections::HashSet;
use std::fmt;

use crate::beacon::{
    Beacon, BeaconConfig, BeaconError, BeaconIgnored, BeaconMonitor, BeaconRx, BeaconVerdict,
};
use crate::selector::Selector;
use crate::{BUCKETS, Bucket, GuestPort, MAX_MEMBERS, MemberIndex, TeamPolicy, Timestamp};

mod announce;
mod assign;
mod reconfigure;
mod views;

pub use views::MemberStatus;

/// A member's place in the failover order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Carries traffic (holds a slot) while usable.
    Active,
    /// Stands in for failed active members, in order.
    Standby,
    /// Never carries traffic, never receives for the team.
    Unused,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Unused => "unused",
        })
    }
}

/// What a team is made of. Members are named (netdev names, for `explain`)
/// and indexed in the order active, standby, unused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamSpec {
    /// Load-balancing policy.
    pub policy: TeamPolicy,
    /// Active members, in failover order. At least one.
    pub active: Vec<String>,
    /// Standby members, in the order they stand in.
    pub standby: Vec<String>,
    /// Unused members.
    pub unused: Vec<String>,
    /// Whether traffic returns to a recovered active member.
    pub failback: bool,
    /// Beacon probing, or `None` for link state only.
    pub beacon: Option<BeaconConfig>,
}

impl TeamSpec {
    /// A team of `active` members with `policy`, failback on, link state
    /// only.
    pub fn new<S: Into<String>>(
        policy: TeamPolicy,
        active: impl IntoIterator<Item = S>,
    ) -> TeamSpec {
        TeamSpec {
            policy,
            active: active.into_iter().map(Into::into).collect(),
            standby: Vec::new(),
            unused: Vec::new(),
            failback: true,
            beacon: None,
        }
    }

    /// With these standby members.
    pub fn with_standby<S: Into<String>>(
        mut self,
        standby: impl IntoIterator<Item = S>,
    ) -> TeamSpec {
        self.standby = standby.into_iter().map(Into::into).collect();
        self
    }

    /// With these unused members.
    pub fn with_unused<S: Into<String>>(mut self, unused: impl IntoIterator<Item = S>) -> TeamSpec {
        self.unused = unused.into_iter().map(Into::into).collect();
        self
    }

    /// With failback on or off.
    pub fn with_failback(mut self, failback: bool) -> TeamSpec {
        self.failback = failback;
        self
    }

    /// With beacon probing.
    pub fn with_beacon(mut self, beacon: BeaconConfig) -> TeamSpec {
        self.beacon = Some(beacon);
        self
    }
}

/// Why a [`TeamSpec`] or a request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TeamError {
    /// The active list is empty.
    #[error("A team needs at least one active member")]
    NoActiveMember,
    /// More than [`MAX_MEMBERS`] members.
    #[error("Team has {0} members, at most {MAX_MEMBERS} are supported")]
    TooManyMembers(usize),
    /// A name appears twice (in one list or across lists).
    #[error("Member {0:?} is listed twice")]
    DuplicateMember(String),
    /// An empty member name.
    #[error("Member name is empty")]
    EmptyMemberName,
    /// Beacon probing with `ip-hash`/`l4-hash`.
    #[error(
        "Beacon probing does not work with {0}: the EtherChannel never floods a beacon back to the other members"
    )]
    BeaconWithAggregation(TeamPolicy),
    /// Beacon interval under 1 ms or miss limit 0.
    #[error("Beacon interval must be at least 1 ms and the miss limit at least 1")]
    BadBeaconTiming,
    /// A member index the team does not have.
    #[error("Team has no member {0}")]
    NoSuchMember(MemberIndex),
}

/// One bucket changed member. `from`/`to` are `None` when no member was or
/// is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Move {
    /// The bucket (under `port-id`, the guest ports with these low 8 bits;
    /// under `explicit-failover`, every bucket moves together).
    pub bucket: Bucket,
    /// Member before.
    pub from: Option<MemberIndex>,
    /// Member after.
    pub to: Option<MemberIndex>,
}

/// The outcome of [`Team::tick`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Beacons to send, each out of its member, from the member's own MAC
    /// ([`Beacon::to_frame`]).
    pub beacons: Vec<Beacon>,
    /// Buckets that moved because a beacon verdict changed.
    pub moves: Vec<Move>,
}

#[derive(Clone, Debug)]
struct Member {
    name: String,
    role: Role,
    link_up: bool,
    link_since: Timestamp,
    /// Has been usable at least once (so coming up again is a recovery).
    ever_usable: bool,
}

/// A team of uplinks: configuration, state, and the frozen fast-path
/// [`Selector`]. Control-plane owned (`&mut self` for every change); the
/// dataplane reads copies of [`Team::selector`].
///
/// # Slots: how assignment stays stable
///
/// The balancing policies (`port-id`, `src-mac`, `ip-hash`, `l4-hash`) map
/// each frame to one of 256 **buckets** ([`crate::bucket_for`]). A team has
/// one **slot** per active member (VMware's word: a standby "takes over the
/// slot" of a failed active). Bucket `b`'s home slot is `b % slots`, fixed by
/// the configuration, and each slot has a **holder**: normally its own
/// active member. So:
///
/// - an active member fails: its slot goes to the first free standby (in
///   standby order), and only that slot's buckets move. With no free
///   standby the slot is empty and its buckets spread over the other
///   held slots by rendezvous hashing (each bucket ranks the slots by a
///   fixed hash and takes the first held one), so again only the failed
///   member's buckets move, and they spread evenly;
/// - it comes back with `failback: true`: it takes its slot back (the
///   standby is freed), and exactly the buckets that left come back;
/// - with `failback: false` it stays idle, nothing moves, until some
///   holder fails and it is picked to stand in (recovered actives before
///   standbys, each list in order) — VMware's "left inactive until another
///   currently active adapter fails".
///
/// Members that come up for the **first time** are not "recovering": they
/// take their slot (actives) or fill an empty slot (standbys) even with
/// failback off, so the order in which links come up at start-up does not
/// matter. Unused members never hold a slot.
///
/// `explicit-failover` has no slots: all buckets go to one member, the
/// first usable in order (active list, then standby list). With failback
/// off it stays on its member while that one is usable.
///
/// A member is **usable** when it is active or standby, its link is up, and
/// beacon probing (if on) has not judged it failed. Every state change goes
/// through a `&mut self` method that takes the time and returns the
/// [`Move`]s it caused, so the daemon can announce the moved guests
/// ([`Team::announcements`]).
#[derive(Clone, Debug)]
pub struct Team {
    policy: TeamPolicy,
    failback: bool,
    members: Vec<Member>,
    /// Holder of each slot; slot `s`'s home is member `s` (actives first).
    holders: Vec<Option<MemberIndex>>,
    /// The member in use under `explicit-failover`.
    current: Option<MemberIndex>,
    selector: Selector,
    last_move: Vec<Option<Timestamp>>,
    beacons: Option<BeaconMonitor>,
}

fn idx(i: usize) -> MemberIndex {
    // Team::new caps members at MAX_MEMBERS (32), so every index fits.
    MemberIndex(i as u8)
}

impl Team {
    /// A team with every link down (report the real state with
    /// [`set_link`](Team::set_link)): nothing is selected yet.
    pub fn new(spec: TeamSpec, now: Timestamp) -> Result<Team, TeamError> {
        if spec.active.is_empty() {
            return Err(TeamError::NoActiveMember);
        }
        let lists = [
            (Role::Active, &spec.active),
            (Role::Standby, &spec.standby),
            (Role::Unused, &spec.unused),
        ];
        let count: usize = lists.iter().map(|(_, l)| l.len()).sum();
        if count > MAX_MEMBERS {
            return Err(TeamError::TooManyMembers(count));
        }
        let mut seen = HashSet::new();
        let mut members = Vec::with_capacity(count);
        for (role, list) in lists {
            for name in list {
                if name.is_empty() {
                    return Err(TeamError::EmptyMemberName);
                }
                if !seen.insert(name.as_str()) {
                    return Err(TeamError::DuplicateMember(name.clone()));
                }
                members.push(Member {
                    name: name.clone(),
                    role,
                    link_up: false,
                    link_since: now,
                    ever_usable: false,
                });
            }
        }
        if let Some(b) = &spec.beacon {
            if spec.policy.is_aggregated() {
                return Err(TeamError::BeaconWithAggregation(spec.policy));
            }
            if !b.is_valid() {
                return Err(TeamError::BadBeaconTiming);
            }
        }
        Ok(Team::with_members(
            spec.policy,
            spec.failback,
            members,
            spec.active.len(),
            spec.beacon,
            now,
        ))
    }

    /// A team of validated `members` (all with links down since `now`, as
    /// [`Team::new`] makes them), `slots` of them active: nothing is
    /// held or selected, beacon probing (if on) has heard nothing.
    fn with_members(
        policy: TeamPolicy,
        failback: bool,
        members: Vec<Member>,
        slots: usize,
        beacon: Option<BeaconConfig>,
        now: Timestamp,
    ) -> Team {
        let roles: Vec<Role> = members.iter().map(|m| m.role).collect();
        Team {
            policy,
            failback,
            holders: vec![None; slots],
            current: None,
            selector: Selector::new(policy, &roles),
            last_move: vec![None; BUCKETS],
            beacons: beacon.map(|c| BeaconMonitor::new(c, members.len(), now)),
            members,
        }
    }

    // ---- reading -------------------------------------------------------

    /// The policy.
    pub fn policy(&self) -> TeamPolicy {
        self.policy
    }

    /// Whether failback is on.
    pub fn failback(&self) -> bool {
        self.failback
    }

    /// The fast-path view; copy it into the dataplane after every change.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// [`Selector::select`] on the current state.
    #[inline]
    pub fn select(&self, port: GuestPort, frame: &[u8]) -> Option<MemberIndex> {
        self.selector.select(port, frame)
    }

    /// Number of members.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The index of the member called `name`.
    pub fn member_index(&self, name: &str) -> Option<MemberIndex> {
        self.members.iter().position(|m| m.name == name).map(idx)
    }

    /// The name of `member`.
    pub fn member_name(&self, member: MemberIndex) -> Option<&str> {
        self.members.get(member.get()).map(|m| m.name.as_str())
    }

    /// Whether `member` may carry traffic now.
    pub fn is_usable(&self, member: MemberIndex) -> bool {
        member.get() < self.members.len() && self.usable(member.get())
    }

    /// The beacon monitor, if the team probes.
    pub fn beacon_monitor(&self) -> Option<&BeaconMonitor> {
        self.beacons.as_ref()
    }

    /// When `bucket` last changed member.
    pub fn last_move(&self, bucket: Bucket) -> Option<Timestamp> {
        self.last_move[usize::from(bucket.0)]
    }

    fn usable(&self, i: usize) -> bool {
        let m = &self.members[i];
        m.role != Role::Unused
            && m.link_up
            && !matches!(
                self.beacons.as_ref().and_then(|b| b.verdict(idx(i))),
                Some((BeaconVerdict::Failed, _))
            )
    }

    fn check(&self, member: MemberIndex) -> Result<usize, TeamError> {
        let i = member.get();
        if i < self.members.len() {
            Ok(i)
        } else {
            Err(TeamError::NoSuchMember(member))
        }
    }

    // ---- changing ------------------------------------------------------

    /// The link (carrier) of `member` went up or down. Returns the buckets
    /// that moved; repeating the current state moves nothing.
    pub fn set_link(
        &mut self,
        member: MemberIndex,
        up: bool,
        now: Timestamp,
    ) -> Result<Vec<Move>, TeamError> {
        let i = self.check(member)?;
        let m = &mut self.members[i];
        if m.link_up == up {
            return Ok(Vec::new());
        }
        m.link_up = up;
        m.link_since = now;
        let probed = up && m.role != Role::Unused;
        if let Some(b) = &mut self.beacons {
            b.set_probed(member, probed, now);
        }
        Ok(self.reassign(now))
    }

    /// Turns failback on or off. Turning it on returns recovered members to
    /// their slots at once.
    pub fn set_failback(&mut self, failback: bool, now: Timestamp) -> Vec<Move> {
        self.failback = failback;
        self.reassign(now)
    }

    /// A frame arrived on `member`: if it is a beacon, the monitor counts
    /// it. Anything but [`BeaconRx::NotBeacon`] must be dropped, not
    /// forwarded. Verdicts change only in [`tick`](Team::tick).
    pub fn on_beacon(&mut self, member: MemberIndex, frame: &[u8], now: Timestamp) -> BeaconRx {
        match Beacon::parse(frame) {
            Err(BeaconError::NotBeacon) => BeaconRx::NotBeacon,
            Err(_) => BeaconRx::Ignored(BeaconIgnored::Malformed),
            Ok(beacon) => self.on_parsed_beacon(member, &beacon, now),
        }
    }

    /// [`on_beacon`](Team::on_beacon) for a beacon already parsed (for a
    /// caller that numbers members on the wire its own way and translates
    /// [`Beacon::member`] first).
    pub fn on_parsed_beacon(
        &mut self,
        member: MemberIndex,
        beacon: &Beacon,
        now: Timestamp,
    ) -> BeaconRx {
        match &mut self.beacons {
            Some(mon) => mon.on_beacon(member, beacon, now),
            None => BeaconRx::Ignored(BeaconIgnored::NotProbed),
        }
    }

    /// Beacon probing's clock: call at [`next_tick`](Team::next_tick) (at
    /// least once per interval). Returns the beacons to send and the moves
    /// caused by members failing or recovering.
    pub fn tick(&mut self, now: Timestamp) -> Tick {
        let Some(mon) = &mut self.beacons else {
            return Tick::default();
        };
        let bt = mon.tick(now);
        let moves = if bt.changed.is_empty() {
            Vec::new()
        } else {
            self.reassign(now)
        };
        Tick {
            beacons: bt.send,
            moves,
        }
    }

    /// When [`tick`](Team::tick) is next due; `None` without beacon
    /// probing.
    pub fn next_tick(&self) -> Option<Timestamp> {
        self.beacons.as_ref().map(BeaconMonitor::next_deadline)
    }
}
