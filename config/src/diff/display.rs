//! The words of a [`Change`]: what `vswitchctl reload --dry-run` prints
//! and the daemon logs.

use std::fmt;

use super::Change;
use crate::model::*;

/// `1,2,5` or `none (one unpinned thread)`.
struct Cores<'a>(&'a [u32]);

impl fmt::Display for Cores<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none (one unpinned thread)");
        }
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// `VLAN 10 -> 20`, or `VLAN 10 -> trunk 10,20-29 native 1`.
struct VlanChange<'a>(&'a VlanMode, &'a VlanMode);

impl fmt::Display for VlanChange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (VlanMode::Access(a), VlanMode::Access(b)) => write!(f, "VLAN {a} -> {b}"),
            (a, b) => write!(f, "{a} -> {b}"),
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn opt_mac(m: Option<MacAddr>) -> String {
    m.map_or_else(|| "none".to_string(), |m| m.to_string())
}

/// `active eth0, eth1; standby eth2` (empty lists left out).
fn members(m: &[Vec<String>; 3]) -> String {
    let parts: Vec<String> = ["active", "standby", "unused"]
        .iter()
        .zip(m)
        .filter(|(_, l)| !l.is_empty())
        .map(|(k, l)| format!("{k} {}", l.join(", ")))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join("; ")
    }
}

/// Only the fields that differ: `a x -> y, b u -> v`.
fn changed_fields(fields: &[(&str, String, String)]) -> String {
    fields
        .iter()
        .filter(|(_, a, b)| a != b)
        .map(|(k, a, b)| format!("{k} {a} -> {b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn vf_summary(v: &SriovVf) -> String {
    let mut s = format!(
        "mac {}, vlan {}, trust {}, spoof-check {}",
        opt_mac(v.mac),
        v.vlan.map_or_else(|| "none".to_string(), |v| v.to_string()),
        on_off(v.trust),
        on_off(v.spoof_check)
    );
    if v.qos != 0 {
        s.push_str(&format!(", qos {}", v.qos));
    }
    if v.vlan_protocol != VfVlanProtocol::Dot1Q {
        s.push_str(&format!(", {}", v.vlan_protocol));
    }
    if let Some(l) = v.link_state {
        s.push_str(&format!(", link-state {l}"));
    }
    if v.min_tx_rate_mbps != 0 || v.max_tx_rate_mbps != 0 {
        s.push_str(&format!(
            ", rate {}-{} Mbit/s",
            v.min_tx_rate_mbps, v.max_tx_rate_mbps
        ));
    }
    if v.vfio {
        s.push_str(", vfio-pci");
    }
    if let Some(m) = v.release_mac {
        s.push_str(&format!(", release-mac {m}"));
    }
    s
}

fn opt_link_state(l: Option<VfLinkState>) -> String {
    l.map_or_else(|| "unset".to_string(), |l| l.to_string())
}

impl fmt::Display for Change {
    // One short arm per variant; the long field lists are in the helpers below.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::PmdCoresChanged { old, new } => write!(
                f,
                "runtime: PMD cores {} -> {} (needs restart)",
                Cores(old),
                Cores(new)
            ),
            Change::IdleChanged { old, new } => {
                write!(f, "runtime: idle policy {old} -> {new} (needs restart)")
            }
            Change::RuntimeDirChanged { old, new } => write!(
                f,
                "runtime: runtime-dir {} -> {} (needs restart)",
                old.display(),
                new.display()
            ),
            Change::ControlSocketChanged { old, new } => write!(
                f,
                "runtime: control socket {} -> {} (needs restart)",
                old.display(),
                new.display()
            ),
            Change::MetricsChanged { old, new } => {
                let addr = |a: &Option<std::net::SocketAddr>| {
                    a.map_or_else(|| "off".to_string(), |a| a.to_string())
                };
                write!(f, "metrics: listen {} -> {}", addr(old), addr(new))
            }
            Change::SwitchAdded { switch } => write!(
                f,
                "switch {}: added ({} port{}, {} uplink{}, {} team{})",
                switch.name,
                switch.ports.len(),
                plural(switch.ports.len()),
                switch.uplinks.len(),
                plural(switch.uplinks.len()),
                switch.teams.len(),
                plural(switch.teams.len())
            ),
            Change::SwitchRemoved { switch } => {
                write!(f, "switch {switch}: removed, with all its ports")
            }
            Change::MtuChanged { switch, old, new } => {
                write!(f, "switch {switch}: MTU {old} -> {new}")
            }
            Change::MacTableChanged { switch, old, new } => write!(
                f,
                "switch {switch}: MAC table {}",
                mac_table_change(old, new)
            ),
            Change::PortAdded { switch, port } => write!(
                f,
                "port {}: added to switch {switch} ({}, {}, port group {})",
                port.name, port.kind, port.vlan, port.port_group
            ),
            Change::PortRemoved { switch, port } => {
                write!(f, "port {port}: removed from switch {switch}")
            }
            Change::PortBackendChanged { port, old, new, .. } => {
                write!(f, "port {port}: {old} -> {new} (port is re-created)")
            }
            Change::PortGroupChanged { port, old, new, .. } => {
                write!(f, "port {port}: port group {old} -> {new}")
            }
            Change::PortVlanChanged { port, old, new, .. } => {
                write!(f, "port {port}: {}", VlanChange(old, new))
            }
            Change::PortSecurityChanged { port, old, new, .. } => {
                write!(f, "port {port}: {}", security_change(old, new))
            }
            Change::PortMacChanged { port, old, new, .. } => {
                write!(f, "port {port}: MAC {} -> {}", opt_mac(*old), opt_mac(*new))
            }
            Change::PortSocketAccessChanged { port, old, new, .. } => {
                write!(f, "port {port}: socket {}", socket_access_change(old, new))
            }
            Change::UplinkAdded { switch, uplink } => write!(
                f,
                "uplink {}: added to switch {switch} ({}, {})",
                uplink.name, uplink.driver, uplink.vlan
            ),
            Change::UplinkRemoved { switch, uplink } => {
                write!(f, "uplink {uplink}: removed from switch {switch}")
            }
            Change::UplinkDriverChanged {
                uplink, old, new, ..
            } => write!(f, "uplink {uplink}: driver {old} -> {new}"),
            Change::UplinkVlanChanged {
                uplink, old, new, ..
            } => write!(f, "uplink {uplink}: {}", VlanChange(old, new)),
            Change::TeamAdded { switch, team } => write!(
                f,
                "{}: team added to switch {switch} (policy {}, {})",
                team.name,
                team.policy,
                members(&[
                    team.active.clone(),
                    team.standby.clone(),
                    team.unused.clone()
                ])
            ),
            Change::TeamRemoved { switch, team } => {
                write!(f, "{team}: team removed from switch {switch}")
            }
            Change::TeamPolicyChanged { team, old, new, .. } => {
                write!(f, "{team}: policy {old} -> {new}")
            }
            Change::TeamMembersChanged { team, old, new, .. } => {
                write!(f, "{team}: members {} -> {}", members(old), members(new))
            }
            Change::TeamFailoverChanged { team, old, new, .. } => {
                write!(f, "{team}: {}", failover_change(old, new))
            }
            Change::SriovPfAdded { pf } => write!(
                f,
                "sriov {}: added ({} VF{}, {} configured)",
                pf.pf,
                pf.num_vfs,
                plural(usize::from(pf.num_vfs)),
                pf.vfs.len()
            ),
            Change::SriovPfRemoved { pf } => {
                write!(
                    f,
                    "sriov {pf}: no longer managed (configured VFs released, VF count left)"
                )
            }
            Change::SriovNumVfsChanged { pf, old, new } => {
                write!(f, "sriov {pf}: VFs {old} -> {new} (all VFs are re-created)")
            }
            Change::SriovVfChanged {
                pf,
                index,
                old,
                new,
            } => vf_change(f, pf, *index, old.as_ref(), new.as_ref()),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `max entries 8192 -> 4096, aging 300 s -> 60 s` (changed fields only).
fn mac_table_change(old: &MacTable, new: &MacTable) -> String {
    changed_fields(&[
        (
            "max entries",
            old.max_entries.to_string(),
            new.max_entries.to_string(),
        ),
        (
            "aging",
            format!("{} s", old.aging_seconds),
            format!("{} s", new.aging_seconds),
        ),
        (
            "per-port limit",
            old.per_port_limit.to_string(),
            new.per_port_limit.to_string(),
        ),
    ])
}

/// `promiscuous reject -> accept` (changed fields only).
fn security_change(old: &SecurityPolicy, new: &SecurityPolicy) -> String {
    changed_fields(&[
        (
            "promiscuous",
            old.promiscuous.to_string(),
            new.promiscuous.to_string(),
        ),
        (
            "mac-changes",
            old.mac_changes.to_string(),
            new.mac_changes.to_string(),
        ),
        (
            "forged-transmits",
            old.forged_transmits.to_string(),
            new.forged_transmits.to_string(),
        ),
    ])
}

/// `mode 0660 -> 0600, group kvm -> qemu` (changed fields only).
fn socket_access_change(old: &SocketAccess, new: &SocketAccess) -> String {
    changed_fields(&[
        (
            "mode",
            format!("{:04o}", old.mode),
            format!("{:04o}", new.mode),
        ),
        (
            "owner",
            Account::or_default(old.owner.as_ref()),
            Account::or_default(new.owner.as_ref()),
        ),
        (
            "group",
            Account::or_default(old.group.as_ref()),
            Account::or_default(new.group.as_ref()),
        ),
    ])
}

/// `failback on -> off` (changed fields only) from (failback, failure
/// detection, notify switches).
fn failover_change(
    old: &(bool, FailureDetection, bool),
    new: &(bool, FailureDetection, bool),
) -> String {
    changed_fields(&[
        ("failback", on_off(old.0).into(), on_off(new.0).into()),
        ("failure detection", old.1.to_string(), new.1.to_string()),
        (
            "notify switches",
            on_off(old.2).into(),
            on_off(new.2).into(),
        ),
    ])
}

/// One VF's settings: configured, no longer configured, or the fields
/// that changed.
fn vf_change(
    f: &mut fmt::Formatter<'_>,
    pf: &str,
    index: u16,
    old: Option<&SriovVf>,
    new: Option<&SriovVf>,
) -> fmt::Result {
    match (old, new) {
        (None, Some(n)) => {
            write!(f, "sriov {pf} VF {index}: configured ({})", vf_summary(n))
        }
        (Some(_), None) => write!(f, "sriov {pf} VF {index}: no longer configured"),
        (Some(o), Some(n)) => write!(
            f,
            "sriov {pf} VF {index}: {}",
            changed_fields(&[
                ("MAC", opt_mac(o.mac), opt_mac(n.mac)),
                (
                    "VLAN",
                    o.vlan.map_or_else(|| "none".into(), |v| v.to_string()),
                    n.vlan.map_or_else(|| "none".into(), |v| v.to_string())
                ),
                ("trust", on_off(o.trust).into(), on_off(n.trust).into()),
                (
                    "spoof-check",
                    on_off(o.spoof_check).into(),
                    on_off(n.spoof_check).into()
                ),
                (
                    "min rate",
                    format!("{} Mbit/s", o.min_tx_rate_mbps),
                    format!("{} Mbit/s", n.min_tx_rate_mbps)
                ),
                (
                    "max rate",
                    format!("{} Mbit/s", o.max_tx_rate_mbps),
                    format!("{} Mbit/s", n.max_tx_rate_mbps)
                ),
                (
                    "port group",
                    o.port_group.clone().unwrap_or_else(|| "none".into()),
                    n.port_group.clone().unwrap_or_else(|| "none".into())
                ),
                ("qos", o.qos.to_string(), n.qos.to_string()),
                (
                    "VLAN protocol",
                    o.vlan_protocol.to_string(),
                    n.vlan_protocol.to_string()
                ),
                (
                    "link state",
                    opt_link_state(o.link_state),
                    opt_link_state(n.link_state)
                ),
                ("vfio", on_off(o.vfio).into(), on_off(n.vfio).into()),
                (
                    "release MAC",
                    opt_mac(o.release_mac),
                    opt_mac(n.release_mac)
                ),
            ])
        ),
        (None, None) => write!(f, "sriov {pf} VF {index}: unchanged"),
    }
}
