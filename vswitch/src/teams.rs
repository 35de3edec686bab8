//! Team supervision in the daemon: the control-plane half of a team.
//!
//! Each configured team is one port of its switch (a
//! [`dataplane::port::team::TeamPort`] per PMD). Its [`TeamRuntime`] owns
//! the [`teaming::Team`] state machine and, every [`POLL_INTERVAL`] on the
//! switch's supervisor thread ([`TeamSupervisor`]):
//!
//! 1. reads each member's link state (`IFF_UP` and `IFF_RUNNING`; a missing
//!    interface counts as down) and feeds changes to the team;
//! 2. hands the beacons the PMDs took off the wire to the beacon monitor,
//!    and on its clock sends each member's beacon;
//! 3. when the member choice changed, publishes the new selector to the
//!    PMDs (they switch between bursts) and, with `notify-switches`, sends
//!    a RARP (and a GARP when the IPv4 address is known) for every guest
//!    MAC whose traffic moved, out of its new member, so the physical
//!    switches relearn at once instead of when the guest next talks.
//!
//! Time is a parameter ([`teaming::Timestamp`] since the daemon started),
//! the kernel sits behind [`TeamIo`], so the logic is tested without root.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use dataplane::mac_table::MacTableRow;
use dataplane::port::team::{ReceivedBeacon, TeamShared};
use dataplane::vlan::Egress;
use dataplane::{MacReader, PortId};
use teaming::{
    Beacon, BeaconConfig, GuestAddr, GuestPort, MemberIndex, Move, Selector, Team, TeamSpec,
    Timestamp, Vlan,
};

use crate::protocol;

/// How often link state is read and beacons are handled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Events kept per team for `team show`.
pub const EVENTS_KEPT: usize = 32;

/// What a team supervisor needs from the kernel.
pub trait TeamIo: Send {
    /// Carrier of interface `name`: `None` if it does not exist.
    fn link_up(&mut self, name: &str) -> Option<bool>;
    /// Sends one frame out of interface `name`.
    fn send(&mut self, name: &str, frame: &[u8]) -> std::io::Result<()>;
}

/// The kernel: `SIOCGIFFLAGS` for link state, an AF_PACKET socket per
/// interface (opened on first use) for sending.
#[derive(Debug)]
pub struct KernelIo {
    probe: crate::netdev::LinkProbe,
    senders: BTreeMap<String, crate::netdev::FrameSender>,
}

impl KernelIo {
    /// Opens the probe socket.
    pub fn new() -> std::io::Result<KernelIo> {
        Ok(KernelIo {
            probe: crate::netdev::LinkProbe::new()?,
            senders: BTreeMap::new(),
        })
    }
}

impl TeamIo for KernelIo {
    fn link_up(&mut self, name: &str) -> Option<bool> {
        self.probe.link_up(name)
    }

    fn send(&mut self, name: &str, frame: &[u8]) -> std::io::Result<()> {
        if !self.senders.contains_key(name) {
            let s = crate::netdev::FrameSender::open(name)?;
            self.senders.insert(name.to_string(), s);
        }
        let res = match self.senders.get(name) {
            Some(s) => s.send(frame),
            None => Ok(()),
        };
        if res.is_err() {
            // The interface may have been re-created: reopen next time.
            self.senders.remove(name);
        }
        res
    }
}

/// A frame for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Member interface.
    pub member: String,
    /// The frame.
    pub frame: Vec<u8>,
}

/// The translation of a configured policy.
pub fn policy(p: config::TeamPolicy) -> teaming::TeamPolicy {
    match p {
        config::TeamPolicy::PortId => teaming::TeamPolicy::PortId,
        config::TeamPolicy::IpHash => teaming::TeamPolicy::IpHash,
        config::TeamPolicy::SrcMac => teaming::TeamPolicy::SrcMac,
        config::TeamPolicy::ExplicitFailover => teaming::TeamPolicy::ExplicitFailover,
        config::TeamPolicy::L4Hash => teaming::TeamPolicy::L4Hash,
    }
}

/// A beacon team ID unique on the layer-2 domain: FNV-1a of this host's
/// machine ID (or host name) and the team's switch and name.
pub fn beacon_team_id(switch: &str, team: &str) -> u64 {
    let host = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/proc/sys/kernel/hostname"))
        .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in host
        .trim()
        .bytes()
        .chain([0])
        .chain(switch.bytes())
        .chain([0])
        .chain(team.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The teaming spec of a configured team.
pub fn team_spec(switch: &str, t: &config::Team) -> TeamSpec {
    let mut spec = TeamSpec::new(policy(t.policy), t.active.iter().cloned())
        .with_standby(t.standby.iter().cloned())
        .with_unused(t.unused.iter().cloned())
        .with_failback(t.failback);
    if t.failure_detection == config::FailureDetection::Beacon {
        spec = spec.with_beacon(BeaconConfig::new(beacon_team_id(switch, &t.name)));
    }
    spec
}

/// The control-plane state of one team.
#[derive(Debug)]
pub struct TeamRuntime {
    switch: String,
    name: String,
    port: PortId,
    team: Team,
    shared: Arc<TeamShared>,
    beacons: Receiver<ReceivedBeacon>,
    published: Selector,
    members: Vec<String>,
    present: Vec<bool>,
    member_macs: Vec<[u8; 6]>,
    vlan: dataplane::VlanMode,
    notify: bool,
    failure_detection: config::FailureDetection,
    announcements_sent: u64,
    events: VecDeque<(Timestamp, String)>,
    /// Team member index -> the member's index in `shared`, the order the
    /// PMDs' team ports were built with. The identity until a reload
    /// reorders the members ([`TeamRuntime::reconfigure`]); beacons carry
    /// the `shared` index on the wire, so it never changes under them.
    to_shared: Vec<MemberIndex>,
    /// Frames for the supervisor's next turn (a reload's announcements).
    pending: Vec<Outgoing>,
}

impl TeamRuntime {
    /// The runtime of team `cfg` of switch `switch`, which the dataplane
    /// knows as port `port`. `team` is already built from
    /// [`team_spec`]; `present[i]` says whether member `i`'s device could
    /// be opened, `member_macs[i]` is its hardware address (beacon source).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        switch: &str,
        cfg: &config::Team,
        port: PortId,
        team: Team,
        shared: Arc<TeamShared>,
        beacons: Receiver<ReceivedBeacon>,
        present: Vec<bool>,
        member_macs: Vec<[u8; 6]>,
        vlan: dataplane::VlanMode,
    ) -> TeamRuntime {
        let members = shared.members().to_vec();
        let published = shared.selector();
        let to_shared = (0..members.len()).map(|i| MemberIndex(i as u8)).collect();
        TeamRuntime {
            switch: switch.to_string(),
            name: cfg.name.clone(),
            port,
            team,
            shared,
            beacons,
            published,
            members,
            present,
            member_macs,
            vlan,
            notify: cfg.notify_switches,
            failure_detection: cfg.failure_detection,
            announcements_sent: 0,
            events: VecDeque::new(),
            to_shared,
            pending: Vec::new(),
        }
    }

    /// The team member index of the PMDs' member `shared`.
    fn team_index(&self, shared: MemberIndex) -> Option<MemberIndex> {
        self.to_shared
            .iter()
            .position(|&s| s == shared)
            .map(|i| MemberIndex(i as u8))
    }

    /// Team name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The team's port in its switch.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// The state machine.
    pub fn team(&self) -> &Team {
        &self.team
    }

    /// Member interface names in member order.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The members' VLAN mode.
    pub fn vlan(&self) -> &dataplane::VlanMode {
        &self.vlan
    }

    fn event(&mut self, now: Timestamp, what: String) {
        tracing::info!(team = %self.name, "{what}");
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back((now, what));
    }

    /// Feeds the members' link states (`None`: interface missing, taken
    /// as down). Returns the moves.
    pub fn set_links(&mut self, links: &[Option<bool>], now: Timestamp) -> Vec<Move> {
        let mut moves = Vec::new();
        for (i, up) in links.iter().enumerate() {
            let m = MemberIndex(i as u8);
            let up = up.unwrap_or(false) && self.present.get(i).copied().unwrap_or(false);
            let was = self.team.status(m).map(|s| s.link_up);
            if was == Some(up) {
                continue;
            }
            if let Ok(mv) = self.team.set_link(m, up, now) {
                let name = self.members.get(i).cloned().unwrap_or_default();
                let what = format!("{name} link {}", if up { "up" } else { "down" });
                self.event(now, what);
                moves.extend(mv);
            }
        }
        moves
    }

    /// Hands received beacons to the monitor.
    pub fn take_beacons(&mut self, now: Timestamp) {
        while let Ok(b) = self.beacons.try_recv() {
            // Both the receiving member and the sender named in the beacon
            // are in the PMDs' order.
            let (Some(rx), Ok(mut beacon)) = (self.team_index(b.member), Beacon::parse(&b.frame))
            else {
                continue;
            };
            if let Some(sender) = self.team_index(beacon.member) {
                beacon.member = sender;
            }
            let _ = self.team.on_parsed_beacon(rx, &beacon, now);
        }
    }

    /// Beacon probing's clock: the beacons due now and the moves caused
    /// by verdict changes.
    pub fn tick(&mut self, now: Timestamp) -> (Vec<Outgoing>, Vec<Move>) {
        if self.team.next_tick().is_none_or(|t| t > now) {
            return (Vec::new(), Vec::new());
        }
        let before: Vec<Option<String>> = self.beacon_verdicts();
        let t = self.team.tick(now);
        let after = self.beacon_verdicts();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            if b != a
                && let Some(v) = a
            {
                let what = format!("{} beacon {v}", self.members[i]);
                self.event(now, what);
            }
        }
        let vlan = self.beacon_vlan();
        let out = t
            .beacons
            .iter()
            .filter_map(|b| {
                let i = b.member.get();
                let mac = self.member_macs.get(i)?;
                let wire = Beacon {
                    member: *self.to_shared.get(i)?,
                    ..*b
                };
                Some(Outgoing {
                    member: self.members.get(i)?.clone(),
                    frame: wire.to_frame(&dataplane::MacAddr(*mac), vlan),
                })
            })
            .collect();
        (out, t.moves)
    }

    fn beacon_verdicts(&self) -> Vec<Option<String>> {
        self.team
            .members()
            .map(|m| m.beacon.map(|(v, _)| v.to_string()))
            .collect()
    }

    /// Beacons travel on the native VLAN, else tagged with the lowest
    /// VLAN the team carries.
    fn beacon_vlan(&self) -> Option<Vlan> {
        match &self.vlan {
            dataplane::VlanMode::Trunk {
                native: Some(_), ..
            } => None,
            dataplane::VlanMode::Trunk { allowed, .. } => (1..=4094)
                .find(|&v| allowed.contains(v))
                .and_then(Vlan::new),
            dataplane::VlanMode::Access(_) | dataplane::VlanMode::GuestTagging { .. } => None,
        }
    }

    /// Whether the member choice changed since it was last published.
    pub fn selector_changed(&self) -> bool {
        *self.team.selector() != self.published
    }

    /// Publishes the member choice to the PMDs and records the moves.
    pub fn publish(&mut self, moves: &[Move], now: Timestamp) {
        let sel = *self.team.selector();
        self.shared.publish(sel.remapped(&self.to_shared));
        self.published = sel;
        if moves.is_empty() {
            return;
        }
        let mut by_pair: BTreeMap<(Option<usize>, Option<usize>), usize> = BTreeMap::new();
        for mv in moves {
            *by_pair
                .entry((mv.from.map(MemberIndex::get), mv.to.map(MemberIndex::get)))
                .or_default() += 1;
        }
        let name = |m: Option<usize>| {
            m.and_then(|i| self.members.get(i).cloned())
                .unwrap_or_else(|| "nothing".to_string())
        };
        let parts: Vec<String> = by_pair
            .iter()
            .map(|(&(f, t), n)| format!("{n} buckets {} -> {}", name(f), name(t)))
            .collect();
        self.event(now, format!("moved: {}", parts.join(", ")));
    }

    /// The guests on this switch that `rows` (the MAC table) shows, as the
    /// notify plan needs them: every MAC on a port that is not an uplink or
    /// team, in a VLAN the team carries, tagged as the team sends it.
    pub fn guests(&self, rows: &[MacTableRow], uplinks: &BTreeSet<PortId>) -> Vec<GuestAddr> {
        rows.iter()
            .filter(|r| !uplinks.contains(&r.port) && r.port != self.port)
            .filter_map(|r| {
                let vlan = match self.vlan.egress(r.vid)? {
                    Egress::Untagged => None,
                    Egress::Tagged => Some(Vlan::new(r.vid)?),
                };
                Some(GuestAddr {
                    port: GuestPort(r.port.0),
                    mac: r.mac,
                    vlan,
                    ipv4: r.ipv4,
                })
            })
            .collect()
    }

    /// The RARP/GARP frames that announce the guests whose traffic `moves`
    /// moved, each out of its new member (none with notify-switches off).
    pub fn announcements(&mut self, moves: &[Move], guests: &[GuestAddr]) -> Vec<Outgoing> {
        if !self.notify || moves.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for a in self.team.announcements(moves, guests) {
            let Some(member) = self.members.get(a.member.get()) else {
                continue;
            };
            for frame in a.frames() {
                out.push(Outgoing {
                    member: member.clone(),
                    frame,
                });
            }
        }
        self.announcements_sent += out.len() as u64;
        out
    }

    /// Applies a reload's settings for this team: `cfg` (policy, member
    /// order and roles, failback, failure detection, notify-switches) and
    /// the members' VLAN mode `vlan`. The member set must be the one the
    /// team started with (its members' queues are opened at start). The
    /// state machine is rebuilt with [`Team::reconfigured`] (link states,
    /// beacon verdicts and what still holds are kept), the new member
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
        let team = self
            .team
            .reconfigured(team_spec(&self.switch, cfg), now)
            .map_err(|e| format!("team {}: {e}", self.name))?;
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
                    .unwrap_or([2, 0, 0, 0, 0, 0])
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

    /// `team show` for this team. `rows` is the switch's MAC table and
    /// `port_name` names its ports.
    pub fn show(
        &self,
        rows: &[MacTableRow],
        uplinks: &BTreeSet<PortId>,
        port_name: &dyn Fn(PortId) -> Option<String>,
        now: Timestamp,
    ) -> protocol::TeamStatus {
        let sel = self.shared.selector();
        let members = self
            .team
            .members()
            .map(|m| {
                let c = self
                    .to_shared
                    .get(m.index.get())
                    .and_then(|&s| self.shared.member_counters(s))
                    .unwrap_or_default();
                protocol::TeamMemberStatus {
                    name: m.name.clone(),
                    role: m.role.to_string(),
                    present: self.present.get(m.index.get()).copied().unwrap_or(false),
                    link_up: m.link_up,
                    link_since: m.link_since.to_string(),
                    beacon: m.beacon.map(|(v, t)| format!("{v} since {t}")),
                    usable: m.usable,
                    buckets: m.buckets,
                    rx_packets: c.rx_packets,
                    rx_bytes: c.rx_bytes,
                    rx_filtered: c.rx_filtered,
                    rx_beacons: c.rx_beacons,
                    tx_packets: c.tx_packets,
                    tx_bytes: c.tx_bytes,
                    tx_dropped: c.tx_dropped,
                }
            })
            .collect();
        let guests = self
            .guests(rows, uplinks)
            .iter()
            .map(|g| {
                let e = self.team.explain_guest(g.port, &g.mac);
                protocol::TeamGuestStatus {
                    port: port_name(PortId(g.port.0)).unwrap_or_else(|| g.port.0.to_string()),
                    mac: g.mac.to_string(),
                    vlan: g.vlan.map_or_else(|| native_of(&self.vlan), Vlan::id),
                    member: e.member.as_ref().map(|(_, n)| n.clone()),
                    why: e.to_string(),
                    ipv4: g.ipv4.map(|ip| ip.to_string()),
                }
            })
            .collect();
        protocol::TeamStatus {
            switch: self.switch.clone(),
            name: self.name.clone(),
            id: self.port.0,
            policy: self.team.policy().to_string(),
            switch_requirement: self.team.policy().switch_requirement().to_string(),
            failback: self.team.failback(),
            failure_detection: self.failure_detection.to_string(),
            notify_switches: self.notify,
            designated_receiver: sel
                .designated_receiver()
                .and_then(|m| self.shared.members().get(m.get()).cloned()),
            now_secs: now.as_millis() as f64 / 1000.0,
            members,
            no_member_drops: self.shared.no_member_drops(),
            announcements_sent: self.announcements_sent,
            guests,
            events: self
                .events
                .iter()
                .map(|(t, w)| protocol::TeamEventStatus {
                    at: t.to_string(),
                    what: w.clone(),
                })
                .collect(),
        }
    }
}

fn native_of(m: &dataplane::VlanMode) -> u16 {
    match m {
        dataplane::VlanMode::Access(v) => *v,
        dataplane::VlanMode::Trunk { native, .. } => native.unwrap_or(0),
        dataplane::VlanMode::GuestTagging { native } => native.unwrap_or(0),
    }
}

/// One turn of supervision for one team: links, beacons, publish, notify.
/// Returns the frames to send. `rows` is called only when guests must be
/// announced.
pub fn supervise(
    rt: &mut TeamRuntime,
    io: &mut dyn TeamIo,
    rows: &mut dyn FnMut() -> Vec<MacTableRow>,
    uplinks: &BTreeSet<PortId>,
    now: Timestamp,
) -> Vec<Outgoing> {
    let mut out = std::mem::take(&mut rt.pending);
    let links: Vec<Option<bool>> = rt.members.iter().map(|n| io.link_up(n)).collect();
    let mut moves = rt.set_links(&links, now);
    rt.take_beacons(now);
    let (beacons, more) = rt.tick(now);
    out.extend(beacons);
    moves.extend(more);
    if rt.selector_changed() || !moves.is_empty() {
        rt.publish(&moves, now);
        if rt.notify && !moves.is_empty() {
            let guests = rt.guests(&rows(), uplinks);
            out.extend(rt.announcements(&moves, &guests));
        }
    }
    out
}

/// The thread that supervises the teams of one switch. Stops when dropped.
#[derive(Debug)]
pub struct TeamSupervisor {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    teams: Vec<Arc<Mutex<TeamRuntime>>>,
}

impl TeamSupervisor {
    /// Starts supervising `teams` of a switch whose MAC table `mac` reads;
    /// `uplinks` are the switch's uplink and team port IDs; `epoch` is the
    /// daemon's clock origin.
    pub fn start(
        switch: &str,
        teams: Vec<TeamRuntime>,
        mut io: Box<dyn TeamIo>,
        mac: MacReader,
        uplinks: BTreeSet<PortId>,
        epoch: Instant,
    ) -> std::io::Result<TeamSupervisor> {
        let teams: Vec<Arc<Mutex<TeamRuntime>>> =
            teams.into_iter().map(|t| Arc::new(Mutex::new(t))).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (t2, s2) = (teams.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("teams-{switch}"))
            .spawn(move || {
                let mut failed_sends = 0u64;
                while !s2.load(Ordering::Relaxed) {
                    let now = Timestamp::from_duration(epoch.elapsed());
                    for t in &t2 {
                        let mut rows = || {
                            mac.rows().unwrap_or_else(|e| {
                                tracing::warn!("teams: cannot read the MAC table: {e}");
                                Vec::new()
                            })
                        };
                        let out = {
                            let mut rt = t.lock().unwrap_or_else(PoisonError::into_inner);
                            supervise(&mut rt, io.as_mut(), &mut rows, &uplinks, now)
                        };
                        for o in out {
                            if let Err(e) = io.send(&o.member, &o.frame) {
                                failed_sends += 1;
                                if failed_sends.is_power_of_two() {
                                    tracing::warn!(member = %o.member, "teams: cannot send a control frame ({failed_sends} failures so far): {e}");
                                }
                            }
                        }
                    }
                    std::thread::sleep(POLL_INTERVAL);
                }
            })?;
        Ok(TeamSupervisor {
            stop,
            thread: Some(thread),
            teams,
        })
    }

    /// The supervised teams.
    pub fn teams(&self) -> &[Arc<Mutex<TeamRuntime>>] {
        &self.teams
    }
}

impl Drop for TeamSupervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A frame with the fields of `flow`, for `team explain`: Ethernet,
/// then IPv4 or IPv6 when addresses are given, then the TCP/UDP ports.
/// `port_mac` is the sending port's configured MAC (the default source).
pub fn flow_frame(flow: &protocol::TeamFlow, port_mac: Option<[u8; 6]>) -> Result<Vec<u8>, String> {
    let mac = |s: &Option<String>, default: [u8; 6], what: &str| -> Result<[u8; 6], String> {
        match s {
            None => Ok(default),
            Some(t) => t
                .parse::<config::MacAddr>()
                .map(|m| m.0)
                .map_err(|_| format!("{what} {t:?} is not a MAC address")),
        }
    };
    let src = mac(
        &flow.src_mac,
        port_mac.unwrap_or([2, 0, 0, 0, 0, 1]),
        "source MAC",
    )?;
    let dst = mac(&flow.dst_mac, [2, 0, 0, 0, 0, 2], "destination MAC")?;
    let ip = |s: &Option<String>, what: &str| -> Result<Option<std::net::IpAddr>, String> {
        s.as_deref()
            .map(|t| {
                t.parse()
                    .map_err(|_| format!("{what} {t:?} is not an IP address"))
            })
            .transpose()
    };
    let (sip, dip) = (
        ip(&flow.src_ip, "source IP")?,
        ip(&flow.dst_ip, "destination IP")?,
    );
    let proto = match flow.proto.as_deref() {
        None => None,
        Some("tcp") => Some(6u8),
        Some("udp") => Some(17u8),
        Some(other) => return Err(format!("protocol {other:?}: use tcp or udp")),
    };
    let mut l4 = vec![0u8; 8];
    l4[0..2].copy_from_slice(&flow.src_port.unwrap_or(0).to_be_bytes());
    l4[2..4].copy_from_slice(&flow.dst_port.unwrap_or(0).to_be_bytes());
    let mut f = Vec::with_capacity(96);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    match (sip, dip) {
        (None, None) => {
            // A non-IP frame (IEEE local experimental ethertype 2).
            f.extend_from_slice(&[0x88, 0xb6]);
            f.resize(60, 0);
        }
        (Some(std::net::IpAddr::V4(a)), Some(std::net::IpAddr::V4(b))) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&(20u16 + 8).to_be_bytes());
            h[8] = 64;
            h[9] = proto.unwrap_or(253);
            h[12..16].copy_from_slice(&a.octets());
            h[16..20].copy_from_slice(&b.octets());
            f.extend_from_slice(&h);
            f.extend_from_slice(&l4);
        }
        (Some(std::net::IpAddr::V6(a)), Some(std::net::IpAddr::V6(b))) => {
            f.extend_from_slice(&[0x86, 0xdd]);
            let mut h = [0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&8u16.to_be_bytes());
            h[6] = proto.unwrap_or(253);
            h[7] = 64;
            h[8..24].copy_from_slice(&a.octets());
            h[24..40].copy_from_slice(&b.octets());
            f.extend_from_slice(&h);
            f.extend_from_slice(&l4);
        }
        _ => return Err("give both source and destination IP, of one family".to_string()),
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::port::team::{ReceivedBeacon, TeamShared};

    #[derive(Default)]
    struct FakeIo {
        links: BTreeMap<String, bool>,
        sent: Vec<(String, Vec<u8>)>,
    }

    impl TeamIo for FakeIo {
        fn link_up(&mut self, name: &str) -> Option<bool> {
            self.links.get(name).copied()
        }
        fn send(&mut self, name: &str, frame: &[u8]) -> std::io::Result<()> {
            self.sent.push((name.to_string(), frame.to_vec()));
            Ok(())
        }
    }

    fn cfg(policy: config::TeamPolicy, notify: bool, failback: bool) -> config::Team {
        config::Team {
            name: "bond0".into(),
            policy,
            active: vec!["eth0".into(), "eth1".into()],
            standby: vec![],
            unused: vec![],
            failback,
            failure_detection: config::FailureDetection::Link,
            notify_switches: notify,
            port_group: None,
            vlan: config::VlanMode::uplink_default(),
        }
    }

    fn runtime(c: &config::Team) -> TeamRuntime {
        let team = Team::new(team_spec("sw0", c), Timestamp::ZERO).expect("valid");
        let members: Vec<String> = c.members().map(str::to_string).collect();
        let (shared, beacons) = TeamShared::new(&c.name, members.clone(), *team.selector());
        TeamRuntime::new(
            "sw0",
            c,
            PortId(9),
            team,
            shared,
            beacons,
            vec![true; members.len()],
            vec![[2, 0, 0, 0, 0, 1]; members.len()],
            dataplane::VlanMode::Trunk {
                allowed: dataplane::VlanSet::from_ranges(&[(1, 4094)]),
                native: Some(1),
            },
        )
    }

    fn row(vid: u16, last: u8, port: u16) -> MacTableRow {
        MacTableRow {
            vid,
            mac: dataplane::MacAddr([0x52, 0x54, 0, 0, 0, last]),
            port: PortId(port),
            is_static: false,
            age_secs: 0,
            ipv4: None,
        }
    }

    #[test]
    fn a_guest_whose_address_is_known_is_announced_by_rarp_and_gratuitous_arp() {
        let c = cfg(config::TeamPolicy::PortId, true, true);
        let mut rt = runtime(&c);
        let mut io = FakeIo::default();
        io.links.insert("eth0".into(), true);
        io.links.insert("eth1".into(), true);
        let uplinks = BTreeSet::from([PortId(9)]);
        let table = vec![
            MacTableRow {
                ipv4: Some(std::net::Ipv4Addr::new(10, 0, 0, 7)),
                ..row(1, 1, 1)
            },
            row(1, 2, 2),
        ];
        let mut rows = || table.clone();
        let out = supervise(
            &mut rt,
            &mut io,
            &mut rows,
            &uplinks,
            Timestamp::from_millis(0),
        );
        let of =
            |last: u8| -> Vec<&Outgoing> { out.iter().filter(|o| o.frame[11] == last).collect() };
        let one = of(1);
        assert_eq!(
            one.len(),
            2,
            "RARP and GARP for the guest with an address: {out:?}"
        );
        assert_eq!(&one[0].frame[12..14], &[0x80, 0x35], "RARP first");
        let garp = &one[1].frame;
        assert_eq!(&garp[12..14], &[0x08, 0x06], "then ARP");
        assert_eq!(&garp[..6], &[0xff; 6], "broadcast");
        assert_eq!(&garp[28..32], &[10, 0, 0, 7], "sender address");
        assert_eq!(&garp[38..42], &[10, 0, 0, 7], "target address = sender");
        assert_eq!(one[0].member, one[1].member, "out of the same member");
        assert_eq!(of(2).len(), 1, "RARP only without an address");
        // team show's guest lines carry the address.
        let st = rt.show(&table, &uplinks, &|_| None, Timestamp::from_millis(0));
        let ip = |last: u8| {
            st.guests
                .iter()
                .find(|g| g.mac == format!("52:54:00:00:00:0{last}"))
                .map(|g| g.ipv4.clone())
        };
        assert_eq!(ip(1), Some(Some("10.0.0.7".to_string())));
        assert_eq!(ip(2), Some(None));
    }

    #[test]
    fn failover_publishes_and_announces_only_the_moved_guests_out_of_the_new_member() {
        let c = cfg(config::TeamPolicy::PortId, true, true);
        let mut rt = runtime(&c);
        let mut io = FakeIo::default();
        io.links.insert("eth0".into(), true);
        io.links.insert("eth1".into(), true);
        let uplinks = BTreeSet::from([PortId(9)]);
        // Guests on ports 1..=4, VLAN 1 (native, untagged) and 20 (tagged).
        let table = vec![
            row(1, 1, 1),
            row(1, 2, 2),
            row(20, 3, 3),
            row(1, 4, 4),
            row(1, 5, 9),
        ];
        let mut rows = || table.clone();
        let t = Timestamp::from_millis;
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(0));
        let sel = rt.shared.selector();
        let on = |p: u16| sel.member_for_bucket(teaming::port_bucket(GuestPort(p)));
        // Links coming up give every guest a member: each is announced
        // once, out of it (a restarted switch re-teaches the network); the
        // team's own port (9) is no guest.
        assert_eq!(out.len(), 4, "{out:?}");
        for o in &out {
            let port = u16::from(o.frame[11]);
            let want = on(port).map(|m| format!("eth{}", m.0));
            assert_eq!(Some(o.member.clone()), want, "guest {port}");
        }
        let on_eth0: Vec<u16> = (1..=4).filter(|&p| on(p) == Some(MemberIndex(0))).collect();
        assert!(
            !on_eth0.is_empty() && on_eth0.len() < 4,
            "guests spread: {on_eth0:?}"
        );

        io.links.insert("eth0".into(), false);
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(1500));
        // Exactly the eth0 guests are announced, each once, out of eth1.
        assert_eq!(out.len(), on_eth0.len(), "{out:?}");
        assert!(out.iter().all(|o| o.member == "eth1"), "{out:?}");
        let macs: BTreeSet<u8> = out.iter().map(|o| o.frame[11]).collect();
        let want: BTreeSet<u8> = on_eth0.iter().map(|&p| p as u8).collect();
        assert_eq!(macs, want);
        for o in &out {
            let tagged = o.frame[12..14] == [0x81, 0x00];
            assert_eq!(tagged, o.frame[11] == 3, "only the VLAN 20 guest is tagged");
            let ty = if tagged {
                &o.frame[16..18]
            } else {
                &o.frame[12..14]
            };
            assert_eq!(ty, &[0x80, 0x35], "RARP");
        }
        assert!(rt.shared.selector().designated_receiver() == Some(MemberIndex(1)));
        let ev: Vec<String> = rt.events.iter().map(|(_, w)| w.clone()).collect();
        assert!(ev.iter().any(|e| e == "eth0 link down"), "{ev:?}");
        assert!(
            ev.iter()
                .any(|e| e.starts_with("moved: ") && e.contains("eth0 -> eth1")),
            "{ev:?}"
        );

        // Failback: they come home, announced out of eth0.
        io.links.insert("eth0".into(), true);
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(3000));
        assert_eq!(out.len(), on_eth0.len());
        assert!(out.iter().all(|o| o.member == "eth0"));
    }

    #[test]
    fn without_failback_recovery_moves_nothing_and_without_notify_nothing_is_sent() {
        let c = cfg(config::TeamPolicy::PortId, false, false);
        let mut rt = runtime(&c);
        let mut io = FakeIo::default();
        io.links.insert("eth0".into(), true);
        io.links.insert("eth1".into(), true);
        let uplinks = BTreeSet::from([PortId(9)]);
        let table = vec![row(1, 1, 1), row(1, 2, 2)];
        let mut rows = || table.clone();
        let t = Timestamp::from_millis;
        supervise(&mut rt, &mut io, &mut rows, &uplinks, t(0));
        io.links.insert("eth0".into(), false);
        let out = supervise(&mut rt, &mut io, &mut rows, &uplinks, t(10));
        assert!(out.is_empty(), "notify off");
        let during = rt.shared.selector();
        io.links.insert("eth0".into(), true);
        supervise(&mut rt, &mut io, &mut rows, &uplinks, t(20));
        assert_eq!(
            rt.shared.selector(),
            during,
            "failback off: nothing moves back"
        );
    }

    #[test]
    fn a_missing_interface_is_down_and_all_members_down_means_no_member() {
        let c = cfg(config::TeamPolicy::SrcMac, true, true);
        let mut rt = runtime(&c);
        let mut io = FakeIo::default();
        io.links.insert("eth1".into(), true);
        let uplinks = BTreeSet::new();
        let mut rows = Vec::new;
        supervise(&mut rt, &mut io, &mut rows, &uplinks, Timestamp::ZERO);
        let sel = rt.shared.selector();
        for b in 0..=255u8 {
            assert_eq!(
                sel.member_for_bucket(teaming::Bucket(b)),
                Some(MemberIndex(1))
            );
        }
        io.links.insert("eth1".into(), false);
        supervise(
            &mut rt,
            &mut io,
            &mut rows,
            &uplinks,
            Timestamp::from_secs(1),
        );
        assert_eq!(
            rt.shared.selector().member_for_bucket(teaming::Bucket(0)),
            None
        );
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
            .reconfigure(&c, vlan.clone(), &table, &uplinks, &what, t(100))
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
        rt.reconfigure(&c, vlan.clone(), &table, &uplinks, &[], t(200))
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
            .reconfigure(&c, vlan, &table, &uplinks, &[], t(400))
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
        rt.reconfigure(&c, vlan, &[], &uplinks, &[], t(10))
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

    #[test]
    fn beacon_team_ids_differ_per_team() {
        assert_ne!(beacon_team_id("sw0", "a"), beacon_team_id("sw0", "b"));
        assert_ne!(beacon_team_id("sw0", "ab"), beacon_team_id("sw0a", "b"));
    }

    #[test]
    fn explain_frames_parse_back_to_the_fields_given() {
        let flow = protocol::TeamFlow {
            port: "vm0".into(),
            src_ip: Some("10.0.0.1".into()),
            dst_ip: Some("10.0.1.2".into()),
            proto: Some("tcp".into()),
            src_port: Some(40000),
            dst_port: Some(5201),
            ..Default::default()
        };
        let f = flow_frame(&flow, Some([0x52, 0x54, 0, 0, 0, 7])).expect("valid");
        let key = teaming::parse_flow_key(&f);
        assert_eq!(key.src_mac, dataplane::MacAddr([0x52, 0x54, 0, 0, 0, 7]));
        assert_eq!(key.ports, Some((40000, 5201)));
        assert_eq!(key.protocol, Some(6));
        let v6 = protocol::TeamFlow {
            port: "vm0".into(),
            src_ip: Some("2001:db8::1".into()),
            dst_ip: Some("2001:db8::2".into()),
            ..Default::default()
        };
        assert_eq!(flow_frame(&v6, None).expect("valid").len(), 14 + 40 + 8);
        for (bad, want) in [
            (
                protocol::TeamFlow {
                    src_ip: Some("10.0.0.1".into()),
                    ..Default::default()
                },
                "both",
            ),
            (
                protocol::TeamFlow {
                    src_ip: Some("x".into()),
                    dst_ip: Some("10.0.0.1".into()),
                    ..Default::default()
                },
                "not an IP",
            ),
            (
                protocol::TeamFlow {
                    src_mac: Some("zz".into()),
                    ..Default::default()
                },
                "not a MAC",
            ),
            (
                protocol::TeamFlow {
                    src_ip: Some("10.0.0.1".into()),
                    dst_ip: Some("10.0.0.2".into()),
                    proto: Some("sctp".into()),
                    ..Default::default()
                },
                "tcp or udp",
            ),
        ] {
            let e = flow_frame(&bad, None).expect_err("invalid");
            assert!(e.contains(want), "{e}");
        }
    }
}
