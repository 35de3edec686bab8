//! Team state: members and their roles, link and beacon state, slots,
//! failover and failback, and the moves they cause. The rules are on [`Team`].

use std::collections::HashSet;
use std::fmt;

use crate::beacon::{
    Beacon, BeaconConfig, BeaconError, BeaconIgnored, BeaconMonitor, BeaconRx, BeaconVerdict,
};
use crate::explain::{Condition, Explanation, MemberNote, Reason, Subject};
use crate::flow::{HashBasis, mix, port_bucket, src_mac_bucket};
use crate::notify::{Announcement, GuestAddr};
use crate::selector::{NO_MEMBER, Selector};
use crate::{
    BUCKETS, Bucket, GuestPort, MAX_MEMBERS, MacAddr, MemberIndex, TeamPolicy, Timestamp,
    parse_flow_key,
};

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

/// A member as `vswitchctl team show` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// Index.
    pub index: MemberIndex,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Link (carrier) state.
    pub link_up: bool,
    /// Time of the last link change (or of team creation).
    pub link_since: Timestamp,
    /// Beacon verdict and since when, if the member is probed.
    pub beacon: Option<(BeaconVerdict, Timestamp)>,
    /// Whether it may carry traffic.
    pub usable: bool,
    /// The slot it holds (balancing policies).
    pub slot: Option<usize>,
    /// How many of the 256 buckets it carries.
    pub buckets: usize,
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = if self.link_up { "up" } else { "down" };
        write!(
            f,
            "{} ({}): link {link} since {}",
            self.name, self.role, self.link_since
        )?;
        if let Some((v, since)) = self.beacon {
            write!(f, ", beacon {v} since {since}")?;
        }
        write!(f, ", carries {}/{BUCKETS} buckets", self.buckets)?;
        match self.slot {
            Some(s) => write!(f, " (slot {s})"),
            None => Ok(()),
        }
    }
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

/// Where a balancing policy sends a bucket, and why.
struct Route {
    home: usize,
    via: Option<usize>,
    member: Option<MemberIndex>,
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

const SPREAD_SEED: u64 = 0x1319_8a2e_0370_7344;

/// Rank of slot `slot` for bucket `bucket` when its home slot is empty.
fn spread_weight(bucket: usize, slot: usize) -> u64 {
    mix(((bucket as u64) << 8 | slot as u64) ^ SPREAD_SEED)
}

fn idx(i: usize) -> MemberIndex {
    // Team::new caps members at MAX_MEMBERS (32), so every index fits.
    MemberIndex(i as u8)
}

/// Gives each empty `eligible` slot a holder among the free `candidate`
/// members: its home if possible, else the first in member order.
fn fill(holders: &mut [Option<MemberIndex>], eligible: impl Fn(usize) -> bool, candidate: &[bool]) {
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
        let roles: Vec<Role> = members.iter().map(|m| m.role).collect();
        Ok(Team {
            policy: spec.policy,
            failback: spec.failback,
            holders: vec![None; spec.active.len()],
            current: None,
            selector: Selector::new(spec.policy, &roles),
            last_move: vec![None; BUCKETS],
            beacons: spec.beacon.map(|c| BeaconMonitor::new(c, count, now)),
            members,
        })
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

    /// The state of `member`.
    pub fn status(&self, member: MemberIndex) -> Option<MemberStatus> {
        let i = member.get();
        let m = self.members.get(i)?;
        let table = self.selector.table();
        Some(MemberStatus {
            index: member,
            name: m.name.clone(),
            role: m.role,
            link_up: m.link_up,
            link_since: m.link_since,
            beacon: self.beacons.as_ref().and_then(|b| b.verdict(member)),
            usable: self.usable(i),
            slot: self.holders.iter().position(|h| *h == Some(member)),
            buckets: table.iter().filter(|&&t| usize::from(t) == i).count(),
        })
    }

    /// Every member's state, in member order.
    pub fn members(&self) -> impl Iterator<Item = MemberStatus> + '_ {
        (0..self.members.len()).filter_map(|i| self.status(idx(i)))
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

    fn reassign(&mut self, now: Timestamp) -> Vec<Move> {
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

    fn route(&self, bucket: usize) -> Route {
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

    fn rebuild(&mut self, now: Timestamp) -> Vec<Move> {
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

    // ---- notify switches -----------------------------------------------

    fn guest_bucket(&self, port: GuestPort, mac: &MacAddr) -> Bucket {
        match self.policy {
            TeamPolicy::PortId => port_bucket(port),
            TeamPolicy::SrcMac => src_mac_bucket(mac),
            _ => Bucket(0),
        }
    }

    /// The member a guest's MAC is seen on by the physical switch: its
    /// member under `port-id`, `src-mac` and `explicit-failover`. Under the
    /// aggregated policies the guest uses every member and the switch sees
    /// one port-channel, so any member will do: the designated receiver.
    /// For announcing a guest that just (re)connected (migration assist).
    pub fn member_for_guest(&self, port: GuestPort, mac: &MacAddr) -> Option<MemberIndex> {
        if self.policy.is_aggregated() {
            self.selector.designated_receiver()
        } else {
            self.selector
                .member_for_bucket(self.guest_bucket(port, mac))
        }
    }

    /// The notify-switches plan for `moves`: each guest in `guests` whose
    /// bucket moved to a member, with that member. Empty under the
    /// aggregated policies: moves inside an EtherChannel need no
    /// relearning, the switch sees one port. Guests whose bucket lost every
    /// member are not announced (there is nowhere to send from).
    pub fn announcements(&self, moves: &[Move], guests: &[GuestAddr]) -> Vec<Announcement> {
        if self.policy.is_aggregated() {
            return Vec::new();
        }
        let mut moved_to = [None; BUCKETS];
        for mv in moves {
            moved_to[usize::from(mv.bucket.0)] = mv.to;
        }
        guests
            .iter()
            .filter_map(|g| {
                let b = self.guest_bucket(g.port, &g.mac);
                moved_to[usize::from(b.0)].map(|member| Announcement { member, guest: *g })
            })
            .collect()
    }

    /// The notify-switches plan after a reconfiguration from `old` to
    /// this team ([`reconfigured`](Team::reconfigured)): each guest in
    /// `guests` whose member, by name, is not the one it had, with its new
    /// member; every guest with a member if `old` used an aggregated
    /// policy (the physical switch saw one port-channel). Empty under the
    /// aggregated policies, as [`announcements`](Team::announcements).
    pub fn announcements_since(&self, old: &Team, guests: &[GuestAddr]) -> Vec<Announcement> {
        if self.policy.is_aggregated() {
            return Vec::new();
        }
        guests
            .iter()
            .filter_map(|g| {
                let member = self.member_for_guest(g.port, &g.mac)?;
                let was = old
                    .member_for_guest(g.port, &g.mac)
                    .and_then(|m| old.member_name(m));
                let moved = old.policy.is_aggregated() || was != self.member_name(member);
                moved.then_some(Announcement { member, guest: *g })
            })
            .collect()
    }

    // ---- explain -------------------------------------------------------

    /// Which member a guest's traffic uses and why. Under `port-id`,
    /// `src-mac` and `explicit-failover` that is one member; under the
    /// aggregated policies it depends on the flow (use
    /// [`explain_frame`](Team::explain_frame)).
    pub fn explain_guest(&self, port: GuestPort, mac: &MacAddr) -> Explanation {
        let subject = Subject::Guest { port, mac: *mac };
        if self.policy.is_aggregated() {
            return Explanation {
                subject,
                policy: self.policy,
                bucket: None,
                member: None,
                reason: Reason::PerFlow,
                last_move: None,
            };
        }
        self.explain_bucket(subject, self.guest_bucket(port, mac))
    }

    /// Which member a frame sent by guest `port` leaves on, and why.
    pub fn explain_frame(&self, port: GuestPort, frame: &[u8]) -> Explanation {
        let basis = HashBasis::of(self.policy, port, &parse_flow_key(frame));
        self.explain_bucket(Subject::Frame { port, basis }, basis.bucket())
    }

    fn note(&self, i: usize) -> MemberNote {
        let m = &self.members[i];
        let beacon = self.beacons.as_ref().and_then(|b| b.verdict(idx(i)));
        let (condition, since) = if !m.link_up {
            (Condition::LinkDown, m.link_since)
        } else if let Some((BeaconVerdict::Failed, t)) = beacon {
            (Condition::BeaconFailed, t)
        } else {
            let since = beacon.map_or(m.link_since, |(_, t)| t.max(m.link_since));
            (Condition::Up, since)
        };
        MemberNote {
            name: m.name.clone(),
            condition,
            since,
        }
    }

    fn explain_bucket(&self, subject: Subject, bucket: Bucket) -> Explanation {
        let b = usize::from(bucket.0);
        let member = self
            .selector
            .member_for_bucket(bucket)
            .map(|m| (m, self.members[m.get()].name.clone()));
        let reason = match member {
            None => Reason::NoUsableMember {
                members: (0..self.members.len())
                    .filter(|&i| self.members[i].role != Role::Unused)
                    .map(|i| self.note(i))
                    .collect(),
            },
            Some((m, _)) if self.policy == TeamPolicy::ExplicitFailover => Reason::FailoverOrder {
                ahead: (0..m.get()).map(|i| self.note(i)).collect(),
            },
            Some((m, _)) => {
                let route = self.route(b);
                let slots = self.holders.len();
                if route.via == Some(route.home) && m.get() == route.home {
                    Reason::Home {
                        slot: route.home,
                        slots,
                    }
                } else if route.via == Some(route.home) {
                    Reason::StandIn {
                        slot: route.home,
                        slots,
                        home: self.note(route.home),
                        holder_role: self.members[m.get()].role,
                    }
                } else {
                    Reason::Spread {
                        slot: route.home,
                        slots,
                        home: self.note(route.home),
                        via_slot: route.via.unwrap_or(route.home),
                    }
                }
            }
        };
        Explanation {
            subject,
            policy: self.policy,
            bucket: Some(bucket),
            member,
            reason,
            last_move: self.last_move[b],
        }
    }
}

impl fmt::Display for Team {
    /// `vswitchctl team show`: the policy and settings, then one line per
    /// member.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {} (physical switch: {}), failback {}",
            self.policy,
            self.policy.switch_requirement(),
            if self.failback { "on" } else { "off" }
        )?;
        match &self.beacons {
            Some(b) => {
                let c = b.config();
                writeln!(
                    f,
                    ", beacon probing every {:?}, failed after {} missed",
                    c.interval, c.miss_limit
                )?;
            }
            None => writeln!(f, ", link state only")?,
        }
        for m in self.members() {
            writeln!(f, "  {m}")?;
        }
        Ok(())
    }
}
