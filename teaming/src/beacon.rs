//! Beacon probing: failure detection beyond the first physical hop. The
//! rules are on [`BeaconMonitor`].

use std::fmt;
use std::time::Duration;

use wire::is_vlan_tpid;

use crate::notify::{BufferTooSmall, Vlan, frame_len, write_eth_header};
use crate::{MacAddr, MemberIndex, Timestamp};

/// Ethertype of beacons: IEEE 802 Local Experimental Ethertype 1.
pub const BEACON_ETHERTYPE: u16 = 0x88b5;
/// First 4 payload bytes of a beacon (tells ours from other experiments).
pub const BEACON_MAGIC: [u8; 4] = *b"vsBP";
/// Layout version in the payload.
pub const BEACON_VERSION: u8 = 1;
const BEACON_BODY_LEN: usize = 20;

/// Beacon probing settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BeaconConfig {
    /// Identifies the team in its beacons. Beacons are broadcast, so the
    /// daemon must make it unique on the layer-2 domain (for example a hash
    /// of the host's machine-id and the team name): a beacon from another
    /// host's team is ignored only if the ID differs.
    pub team_id: u64,
    /// Time between beacons (VMware: 1 s).
    pub interval: Duration,
    /// Intervals without a beacon before a member is judged (VMware: 3).
    pub miss_limit: u32,
}

impl BeaconConfig {
    /// Default interval: 1 s.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
    /// Default miss limit: 3 intervals.
    pub const DEFAULT_MISS_LIMIT: u32 = 3;

    /// The defaults (1 s, 3 intervals) for team `team_id`.
    pub const fn new(team_id: u64) -> BeaconConfig {
        BeaconConfig {
            team_id,
            interval: BeaconConfig::DEFAULT_INTERVAL,
            miss_limit: BeaconConfig::DEFAULT_MISS_LIMIT,
        }
    }

    /// How long a pair may go unheard: `interval * miss_limit`.
    pub fn window(&self) -> Duration {
        self.interval.saturating_mul(self.miss_limit)
    }

    pub(crate) fn is_valid(&self) -> bool {
        self.interval >= Duration::from_millis(1) && self.miss_limit >= 1
    }
}

/// One beacon: which team, which member sent it, its sequence number.
///
/// Frame layout (big-endian), after a broadcast destination, the sending
/// member's MAC as source, an optional 802.1Q tag and ethertype 0x88b5:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `"vsBP"` |
/// | 4 | 1 | version (1) |
/// | 5 | 1 | sending member index |
/// | 6 | 2 | reserved, zero |
/// | 8 | 8 | team ID |
/// | 16 | 4 | sequence number (per member, wraps) |
/// | 20 | .. | zero padding to a 60-byte frame (64 tagged) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Beacon {
    /// Team ID ([`BeaconConfig::team_id`]).
    pub team_id: u64,
    /// Sending member.
    pub member: MemberIndex,
    /// Per-member sequence number.
    pub sequence: u32,
}

/// Why a frame is not a beacon this crate can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BeaconError {
    /// Not ethertype 0x88b5, or another user's 0x88b5 (no magic): forward
    /// it like any frame.
    #[error("Not a beacon")]
    NotBeacon,
    /// Our magic, but too short to hold a beacon.
    #[error("Beacon truncated")]
    Truncated,
    /// Our magic, unknown layout version.
    #[error("Beacon version {0} unknown")]
    Version(u8),
}

impl Beacon {
    /// Writes the beacon frame sent by a member whose MAC is `src_mac` into
    /// `buf`; returns its length (60, or 64 with a tag).
    pub fn write_frame(
        &self,
        buf: &mut [u8],
        src_mac: &MacAddr,
        vlan: Option<Vlan>,
    ) -> Result<usize, BufferTooSmall> {
        let len = frame_len(vlan);
        let at = write_eth_header(
            buf,
            len,
            &MacAddr::BROADCAST,
            src_mac,
            vlan,
            BEACON_ETHERTYPE,
        )?;
        let b = &mut buf[at..at + BEACON_BODY_LEN];
        b[0..4].copy_from_slice(&BEACON_MAGIC);
        b[4] = BEACON_VERSION;
        b[5] = self.member.0;
        b[8..16].copy_from_slice(&self.team_id.to_be_bytes());
        b[16..20].copy_from_slice(&self.sequence.to_be_bytes());
        Ok(len)
    }

    /// [`write_frame`](Beacon::write_frame) into a new buffer.
    pub fn to_frame(&self, src_mac: &MacAddr, vlan: Option<Vlan>) -> Vec<u8> {
        let mut f = vec![0; frame_len(vlan)];
        // Cannot fail: the buffer has exactly frame_len(vlan) bytes.
        let _ = self.write_frame(&mut f, src_mac, vlan);
        f
    }

    /// Reads a beacon from a frame (untagged, or behind up to two VLAN
    /// tags, any TPID [`wire::is_vlan_tpid`] accepts). Never panics.
    pub fn parse(frame: &[u8]) -> Result<Beacon, BeaconError> {
        let be16 = |at: usize| -> Option<u16> {
            let s = frame.get(at..at + 2)?;
            Some(u16::from_be_bytes([s[0], s[1]]))
        };
        let mut at = 12;
        let mut ty = be16(at).ok_or(BeaconError::NotBeacon)?;
        for _ in 0..2 {
            if is_vlan_tpid(ty) {
                at += 4;
                ty = be16(at).ok_or(BeaconError::NotBeacon)?;
            }
        }
        if ty != BEACON_ETHERTYPE {
            return Err(BeaconError::NotBeacon);
        }
        let body = &frame[at + 2..];
        if body.get(0..4) != Some(&BEACON_MAGIC[..]) {
            return Err(BeaconError::NotBeacon);
        }
        let body = body.get(..BEACON_BODY_LEN).ok_or(BeaconError::Truncated)?;
        if body[4] != BEACON_VERSION {
            return Err(BeaconError::Version(body[4]));
        }
        let mut team = [0u8; 8];
        team.copy_from_slice(&body[8..16]);
        let mut seq = [0u8; 4];
        seq.copy_from_slice(&body[16..20]);
        Ok(Beacon {
            team_id: u64::from_be_bytes(team),
            member: MemberIndex(body[5]),
            sequence: u32::from_be_bytes(seq),
        })
    }
}

/// A probed member's beacon judgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BeaconVerdict {
    /// It hears others and is heard (or is still in its first window).
    Healthy,
    /// It is deaf or mute, but so is everyone else it could be compared
    /// with: it keeps carrying traffic on link state.
    Suspect,
    /// It is deaf or mute while others hear each other: it carries no
    /// traffic until its beacons flow again.
    Failed,
}

impl fmt::Display for BeaconVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BeaconVerdict::Healthy => "healthy",
            BeaconVerdict::Suspect => "suspect",
            BeaconVerdict::Failed => "failed",
        })
    }
}

/// What became of a received beacon-like frame. Anything but `NotBeacon`
/// is consumed: never forward it to guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeaconRx {
    /// Not a beacon: forward as usual.
    NotBeacon,
    /// Counted as heard.
    Accepted,
    /// A beacon, dropped without effect.
    Ignored(BeaconIgnored),
}

/// Why a beacon had no effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeaconIgnored {
    /// Another team's beacon (another host, or another team here).
    OtherTeam(u64),
    /// It came back in on the member that sent it (a loop in the physical
    /// network, or a hairpinning switch port).
    OwnBeacon,
    /// The sender index is not one of ours.
    UnknownSender,
    /// Sender or receiver is not probed (link down, unused member, or the
    /// team does no beacon probing).
    NotProbed,
    /// Our magic, but truncated or of an unknown version.
    Malformed,
}

/// The outcome of a [`BeaconMonitor::tick`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BeaconTick {
    /// Beacons to send now, each out of its `member`.
    pub send: Vec<Beacon>,
    /// Members whose verdict changed, with the new verdict.
    pub changed: Vec<(MemberIndex, BeaconVerdict)>,
}

/// The beacon probing state machine of one team. Pure: frames in as parsed
/// [`Beacon`]s, time in as [`Timestamp`]s, beacons to send out as values.
///
/// Link state only says the cable to the first switch is alive. With beacon
/// probing (VMware's "beacon probing", a cousin of the Linux bonding ARP
/// monitor that needs no IP target) every probed member broadcasts a small
/// beacon every interval (default 1 s) and listens for the other members'
/// beacons, which the physical network floods back in. A monitor keeps, for
/// every ordered pair (sender, receiver), when the receiver last heard the
/// sender, and judges each probed member every [`tick`](BeaconMonitor::tick):
///
/// - **healthy**: it heard some other member, and some other member heard it,
///   within the last `miss_limit` intervals (default 3);
/// - **failed**: it did not (deaf or mute), *and* two other members still
///   hear each other, so the network works and the fault is on this
///   member's path;
/// - **suspect**: it did not, but no two other members hear each other
///   either, so the evidence cannot say which side failed.
///
/// A failed member stops carrying traffic; a suspect one keeps carrying it on
/// the strength of its link state. With **only two probed members** a broken
/// path always leaves both suspect: beacon probing cannot tell which side
/// failed, which is why VMware asks for three or more NICs. With four
/// members split two and two (each pair still hearing each other) nothing is
/// detected at all.
///
/// A member is probed while its link is up and it is active or standby.
/// For `miss_limit` intervals after it starts (and after the monitor starts)
/// it is not judged. Detection takes between `miss_limit` and
/// `miss_limit + 1` intervals after the last beacon heard (with the
/// defaults, 3 to 4 s), when `tick` is called at least once per interval.
///
/// Beacon probing does not work through an EtherChannel (the switch never
/// floods a frame back into the channel it came from), so
/// [`Team`](crate::Team) refuses it with the aggregated policies.
///
/// Beacons are broadcast Ethernet frames with the IEEE "local experimental"
/// ethertype 0x88b5; see [`Beacon`] for the layout.
#[derive(Clone, Debug)]
pub struct BeaconMonitor {
    config: BeaconConfig,
    members: usize,
    /// Since when each member is probed; `None` when it is not.
    probed_since: Vec<Option<Timestamp>>,
    /// `heard[sender * members + receiver]`: last time receiver heard sender.
    heard: Vec<Option<Timestamp>>,
    sequence: Vec<u32>,
    verdict: Vec<(BeaconVerdict, Timestamp)>,
    next_send: Timestamp,
}

impl BeaconMonitor {
    /// A monitor for `members` members, none probed yet.
    pub fn new(config: BeaconConfig, members: usize, now: Timestamp) -> BeaconMonitor {
        BeaconMonitor {
            config,
            members,
            probed_since: vec![None; members],
            heard: vec![None; members * members],
            sequence: vec![0; members],
            verdict: vec![(BeaconVerdict::Healthy, now); members],
            next_send: now,
        }
    }

    /// The settings.
    pub fn config(&self) -> &BeaconConfig {
        &self.config
    }

    /// This monitor for a team whose member `i` is this monitor's member
    /// `old_of[i]` (`None`: new to the team, not probed yet): what was
    /// heard, judged and numbered follows each member.
    pub(crate) fn remapped(&self, old_of: &[Option<usize>], now: Timestamp) -> BeaconMonitor {
        let n = old_of.len();
        let mut m = BeaconMonitor::new(self.config, n, now);
        m.next_send = self.next_send;
        let old = |o: &Option<usize>| o.filter(|&o| o < self.members);
        for (i, o) in old_of.iter().enumerate() {
            let Some(o) = old(o) else { continue };
            m.probed_since[i] = self.probed_since[o];
            m.sequence[i] = self.sequence[o];
            m.verdict[i] = self.verdict[o];
            for (j, p) in old_of.iter().enumerate() {
                if let Some(p) = old(p) {
                    m.heard[i * n + j] = self.heard[o * self.members + p];
                }
            }
        }
        m
    }

    fn idx(&self, m: MemberIndex) -> Option<usize> {
        let i = m.get();
        (i < self.members).then_some(i)
    }

    /// Starts or stops probing `member` (link up or down). Starting gives it
    /// a fresh first window and a healthy verdict.
    pub fn set_probed(&mut self, member: MemberIndex, probed: bool, now: Timestamp) {
        let Some(i) = self.idx(member) else { return };
        match (self.probed_since[i], probed) {
            (None, true) => {
                self.probed_since[i] = Some(now);
                for j in 0..self.members {
                    self.heard[i * self.members + j] = None;
                    self.heard[j * self.members + i] = None;
                }
                if self.verdict[i].0 != BeaconVerdict::Healthy {
                    self.verdict[i] = (BeaconVerdict::Healthy, now);
                }
            }
            (Some(_), false) => self.probed_since[i] = None,
            _ => {}
        }
    }

    /// Whether `member` is probed.
    pub fn is_probed(&self, member: MemberIndex) -> bool {
        self.idx(member)
            .is_some_and(|i| self.probed_since[i].is_some())
    }

    /// The verdict on `member` and since when it holds; `None` when the
    /// member is not probed.
    pub fn verdict(&self, member: MemberIndex) -> Option<(BeaconVerdict, Timestamp)> {
        let i = self.idx(member)?;
        self.probed_since[i].map(|_| self.verdict[i])
    }

    /// Last time `receiver` heard `sender`.
    pub fn last_heard(&self, sender: MemberIndex, receiver: MemberIndex) -> Option<Timestamp> {
        let (s, r) = (self.idx(sender)?, self.idx(receiver)?);
        self.heard[s * self.members + r]
    }

    /// A beacon `beacon` arrived on member `receiver`.
    pub fn on_beacon(
        &mut self,
        receiver: MemberIndex,
        beacon: &Beacon,
        now: Timestamp,
    ) -> BeaconRx {
        if beacon.team_id != self.config.team_id {
            return BeaconRx::Ignored(BeaconIgnored::OtherTeam(beacon.team_id));
        }
        let (Some(s), Some(r)) = (self.idx(beacon.member), self.idx(receiver)) else {
            return BeaconRx::Ignored(BeaconIgnored::UnknownSender);
        };
        if s == r {
            return BeaconRx::Ignored(BeaconIgnored::OwnBeacon);
        }
        if self.probed_since[s].is_none() || self.probed_since[r].is_none() {
            return BeaconRx::Ignored(BeaconIgnored::NotProbed);
        }
        self.heard[s * self.members + r] = Some(now);
        BeaconRx::Accepted
    }

    /// When [`tick`](BeaconMonitor::tick) should next be called (the next
    /// beacon round).
    pub fn next_deadline(&self) -> Timestamp {
        self.next_send
    }

    /// Sends a beacon round if one is due and judges every probed member.
    pub fn tick(&mut self, now: Timestamp) -> BeaconTick {
        let mut out = BeaconTick::default();
        if now >= self.next_send {
            self.next_send = now + self.config.interval;
            for i in 0..self.members {
                if self.probed_since[i].is_some() {
                    self.sequence[i] = self.sequence[i].wrapping_add(1);
                    out.send.push(Beacon {
                        team_id: self.config.team_id,
                        member: MemberIndex(i as u8),
                        sequence: self.sequence[i],
                    });
                }
            }
        }
        for i in 0..self.members {
            let Some(since) = self.probed_since[i] else {
                continue;
            };
            let v = self.judge(i, since, now);
            if v != self.verdict[i].0 {
                self.verdict[i] = (v, now);
                out.changed.push((MemberIndex(i as u8), v));
            }
        }
        out
    }

    fn recent(&self, s: usize, r: usize, now: Timestamp) -> bool {
        self.heard[s * self.members + r]
            .is_some_and(|t| now.saturating_since(t) <= self.config.window())
    }

    fn judge(&self, x: usize, since: Timestamp, now: Timestamp) -> BeaconVerdict {
        let window = self.config.window();
        if now.saturating_since(since) <= window {
            return BeaconVerdict::Healthy;
        }
        let probed: Vec<usize> = (0..self.members)
            .filter(|&i| self.probed_since[i].is_some())
            .collect();
        let others = || probed.iter().copied().filter(move |&o| o != x);
        let hears = others().any(|s| self.recent(s, x, now));
        let heard = others().any(|r| self.recent(x, r, now));
        if hears && heard {
            return BeaconVerdict::Healthy;
        }
        let others_fine = others().any(|y| others().any(|z| y != z && self.recent(y, z, now)));
        if others_fine {
            BeaconVerdict::Failed
        } else {
            BeaconVerdict::Suspect
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEAM: u64 = 0x0123_4567_89ab_cdef;
    const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 9]);

    fn m(i: u8) -> MemberIndex {
        MemberIndex(i)
    }

    #[rustfmt::skip]
    const FRAME: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x02, 0, 0, 0, 0, 9,
        0x88, 0xb5,
        b'v', b's', b'B', b'P', 1, 2, 0, 0,
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        0, 0, 0, 42,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn frame_layout_and_round_trip() {
        let b = Beacon {
            team_id: TEAM,
            member: m(2),
            sequence: 42,
        };
        assert_eq!(b.to_frame(&MAC, None), FRAME);
        assert_eq!(Beacon::parse(&FRAME), Ok(b));
        let tagged = b.to_frame(&MAC, Vlan::new(7));
        assert_eq!(tagged.len(), 64);
        assert_eq!(&tagged[12..16], &[0x81, 0, 0, 7]);
        assert_eq!(Beacon::parse(&tagged), Ok(b));
    }

    #[test]
    fn parse_rejects() {
        assert_eq!(Beacon::parse(&[]), Err(BeaconError::NotBeacon));
        let mut other = FRAME;
        other[14] = b'x';
        assert_eq!(
            Beacon::parse(&other),
            Err(BeaconError::NotBeacon),
            "someone else's 0x88b5"
        );
        let mut arp = FRAME;
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(Beacon::parse(&arp), Err(BeaconError::NotBeacon));
        assert_eq!(Beacon::parse(&FRAME[..30]), Err(BeaconError::Truncated));
        let mut v2 = FRAME;
        v2[18] = 2;
        assert_eq!(Beacon::parse(&v2), Err(BeaconError::Version(2)));
    }

    /// Runs a monitor from `from` to `to` (whole seconds), delivering each
    /// round's beacons to every probed member for which `link(s, r, t)`;
    /// returns the verdict changes with their times.
    fn run(
        mon: &mut BeaconMonitor,
        from: u64,
        to: u64,
        link: impl Fn(usize, usize, u64) -> bool,
    ) -> Vec<(u64, MemberIndex, BeaconVerdict)> {
        let mut changes = Vec::new();
        for t in from..=to {
            let now = Timestamp::from_secs(t);
            let tick = mon.tick(now);
            for (member, v) in tick.changed {
                changes.push((t, member, v));
            }
            for b in tick.send {
                for r in 0..mon.members {
                    if r != b.member.get() && link(b.member.get(), r, t) {
                        let rx = mon.on_beacon(m(r as u8), &b, now + Duration::from_millis(1));
                        assert_ne!(rx, BeaconRx::Ignored(BeaconIgnored::UnknownSender));
                    }
                }
            }
        }
        changes
    }

    fn monitor(members: usize) -> BeaconMonitor {
        let mut mon = BeaconMonitor::new(BeaconConfig::new(TEAM), members, Timestamp::ZERO);
        for i in 0..members {
            mon.set_probed(m(i as u8), true, Timestamp::ZERO);
        }
        mon
    }

    #[test]
    fn sends_one_beacon_per_probed_member_per_interval() {
        let mut mon = monitor(3);
        mon.set_probed(m(1), false, Timestamp::ZERO);
        let t = mon.tick(Timestamp::ZERO);
        assert_eq!(
            t.send,
            [
                Beacon {
                    team_id: TEAM,
                    member: m(0),
                    sequence: 1
                },
                Beacon {
                    team_id: TEAM,
                    member: m(2),
                    sequence: 1
                },
            ]
        );
        assert!(
            mon.tick(Timestamp::from_millis(999)).send.is_empty(),
            "not due yet"
        );
        assert_eq!(mon.next_deadline(), Timestamp::from_secs(1));
        let t = mon.tick(Timestamp::from_secs(1));
        assert_eq!(
            t.send.iter().map(|b| b.sequence).collect::<Vec<_>>(),
            [2, 2]
        );
    }

    #[test]
    fn all_hearing_stays_healthy() {
        let mut mon = monitor(3);
        assert!(run(&mut mon, 0, 30, |_, _, _| true).is_empty());
        for i in 0..3 {
            assert_eq!(mon.verdict(m(i)).map(|v| v.0), Some(BeaconVerdict::Healthy));
        }
    }

    #[test]
    fn isolated_member_of_three_fails_after_the_window_and_recovers() {
        let mut mon = monitor(3);
        // Member 0's path breaks after the beacons of t=10 (last heard 10.001).
        let cut = |s: usize, r: usize, t: u64| !((s == 0 || r == 0) && (11..=20).contains(&t));
        let changes = run(&mut mon, 0, 25, cut);
        // 13.001 is still within 3 s; at t=14 it is 3.999 s old. The tick
        // at t=21 judges before that round's beacons arrive.
        assert_eq!(
            changes,
            [
                (14, m(0), BeaconVerdict::Failed),
                (22, m(0), BeaconVerdict::Healthy)
            ]
        );
    }

    #[test]
    fn deaf_member_fails() {
        let mut mon = monitor(3);
        let changes = run(&mut mon, 0, 10, |_, r, t| !(r == 2 && t >= 5));
        assert_eq!(changes, [(8, m(2), BeaconVerdict::Failed)]);
    }

    #[test]
    fn mute_member_fails() {
        let mut mon = monitor(4);
        let changes = run(&mut mon, 0, 10, |s, _, t| !(s == 1 && t >= 5));
        assert_eq!(changes, [(8, m(1), BeaconVerdict::Failed)]);
    }

    #[test]
    fn two_members_cannot_tell_which_side_failed() {
        let mut mon = monitor(2);
        let changes = run(&mut mon, 0, 10, |_, _, t| t < 5);
        assert_eq!(
            changes,
            [
                (8, m(0), BeaconVerdict::Suspect),
                (8, m(1), BeaconVerdict::Suspect)
            ]
        );
        // Even a one-way fault: member 1 hears 0, but nobody hears 1.
        let mut mon = monitor(2);
        let changes = run(&mut mon, 0, 10, |s, _, t| s == 0 || t < 5);
        assert_eq!(
            changes,
            [
                (8, m(0), BeaconVerdict::Suspect),
                (8, m(1), BeaconVerdict::Suspect)
            ]
        );
    }

    #[test]
    fn three_members_with_one_link_down_behave_like_two() {
        let mut mon = monitor(3);
        mon.set_probed(m(2), false, Timestamp::ZERO);
        let changes = run(&mut mon, 0, 10, |s, r, t| t < 5 || s == 2 || r == 2);
        assert_eq!(
            changes,
            [
                (8, m(0), BeaconVerdict::Suspect),
                (8, m(1), BeaconVerdict::Suspect)
            ]
        );
        assert_eq!(mon.verdict(m(2)), None, "not probed");
    }

    #[test]
    fn no_beacons_at_all_is_suspect_not_failed() {
        // E.g. the physical switch filters 0x88b5: nobody hears anybody.
        let mut mon = monitor(3);
        let changes = run(&mut mon, 0, 10, |_, _, _| false);
        assert_eq!(changes.len(), 3);
        assert!(
            changes
                .iter()
                .all(|(t, _, v)| *t == 4 && *v == BeaconVerdict::Suspect)
        );
    }

    #[test]
    fn a_member_coming_up_gets_a_first_window() {
        let mut mon = monitor(3);
        mon.set_probed(m(2), false, Timestamp::ZERO);
        run(&mut mon, 0, 9, |_, _, _| true);
        mon.set_probed(m(2), true, Timestamp::from_secs(10));
        // Member 2 is deaf from the start: judged only after 3 s.
        let changes = run(&mut mon, 10, 20, |_, r, _| r != 2);
        assert_eq!(changes, [(14, m(2), BeaconVerdict::Failed)]);
        // Link flap: fresh window, healthy again.
        mon.set_probed(m(2), false, Timestamp::from_secs(21));
        mon.set_probed(m(2), true, Timestamp::from_secs(22));
        assert_eq!(
            mon.verdict(m(2)),
            Some((BeaconVerdict::Healthy, Timestamp::from_secs(22)))
        );
    }

    #[test]
    fn ignored_beacons() {
        let mut mon = monitor(3);
        mon.set_probed(m(2), false, Timestamp::ZERO);
        let now = Timestamp::ZERO;
        let b = |team_id, member| Beacon {
            team_id,
            member: m(member),
            sequence: 1,
        };
        assert_eq!(
            mon.on_beacon(m(1), &b(7, 0), now),
            BeaconRx::Ignored(BeaconIgnored::OtherTeam(7))
        );
        assert_eq!(
            mon.on_beacon(m(0), &b(TEAM, 0), now),
            BeaconRx::Ignored(BeaconIgnored::OwnBeacon)
        );
        assert_eq!(
            mon.on_beacon(m(0), &b(TEAM, 9), now),
            BeaconRx::Ignored(BeaconIgnored::UnknownSender)
        );
        assert_eq!(
            mon.on_beacon(m(0), &b(TEAM, 2), now),
            BeaconRx::Ignored(BeaconIgnored::NotProbed)
        );
        assert_eq!(
            mon.on_beacon(m(2), &b(TEAM, 0), now),
            BeaconRx::Ignored(BeaconIgnored::NotProbed)
        );
        assert_eq!(mon.on_beacon(m(1), &b(TEAM, 0), now), BeaconRx::Accepted);
        assert_eq!(mon.last_heard(m(0), m(1)), Some(now));
        assert_eq!(mon.last_heard(m(1), m(0)), None);
    }
}
