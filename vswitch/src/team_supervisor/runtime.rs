//! [`TeamRuntime`]: the control-plane state of one team, its links,
//! beacons and the member choice it publishes to the PMDs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use dataplane::PortId;
use dataplane::port::team::{ReceivedBeacon, TeamShared};
use teaming::{Beacon, MemberIndex, Move, Selector, Team, Timestamp, Vlan};

use super::{EVENTS_KEPT, Outgoing};

/// The control-plane state of one team.
#[derive(Debug)]
pub struct TeamRuntime {
    pub(super) switch: String,
    pub(super) name: String,
    pub(super) port: PortId,
    pub(super) team: Team,
    pub(super) shared: Arc<TeamShared>,
    pub(super) beacons: Receiver<ReceivedBeacon>,
    pub(super) published: Selector,
    pub(super) members: Vec<String>,
    pub(super) present: Vec<bool>,
    pub(super) member_macs: Vec<dataplane::MacAddr>,
    pub(super) vlan: dataplane::VlanMode,
    pub(super) notify: bool,
    pub(super) failure_detection: config::FailureDetection,
    pub(super) announcements_sent: u64,
    pub(super) events: VecDeque<(Timestamp, String)>,
    /// Team member index -> the member's index in `shared`, the order the
    /// PMDs' team ports were built with. The identity until a reload
    /// reorders the members ([`TeamRuntime::reconfigure`]); beacons carry
    /// the `shared` index on the wire, so it never changes under them.
    pub(super) to_shared: Vec<MemberIndex>,
    /// Frames for the supervisor's next turn (a reload's announcements).
    pub(super) pending: Vec<Outgoing>,
}

impl TeamRuntime {
    /// The runtime of team `cfg` of switch `switch`, which the dataplane
    /// knows as port `port`. `team` is already built from
    /// [`team_spec`](super::team_spec); `present[i]` says whether member `i`'s device could
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
        member_macs: Vec<dataplane::MacAddr>,
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

    pub(super) fn event(&mut self, now: Timestamp, what: String) {
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
                    frame: wire.to_frame(mac, vlan),
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
}
