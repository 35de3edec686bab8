//! `team show`: one team's settings, members, guests and events.

use std::collections::BTreeSet;

use dataplane::PortId;
use dataplane::mac_table::MacTableRow;
use teaming::{Timestamp, Vlan};

use super::TeamRuntime;
use crate::protocol;

impl TeamRuntime {
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
