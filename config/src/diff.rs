//! What changed between two configurations, for `vswitchctl reload
//! --dry-run` and for the daemon to apply port by port.
//!
//! Ports are compared by their *effective* settings (VLAN mode and security
//! after port-group resolution), so changing a port group's VLAN yields one
//! [`Change::PortVlanChanged`] per port in it, and an untouched port yields
//! nothing.

use std::fmt;
use std::path::PathBuf;

use crate::model::*;

/// One difference between two configurations.
///
/// `Display` gives the words a network engineer reads, like
/// `port vm7: VLAN 10 -> 20` or `team0: policy port-id -> ip-hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The PMD CPU list changed (needs a restart).
    PmdCoresChanged {
        /// Before.
        old: Vec<u32>,
        /// After.
        new: Vec<u32>,
    },
    /// The idle policy of PMD threads changed (needs a restart: a PMD
    /// thread takes its policy when it starts).
    IdleChanged {
        /// Before.
        old: IdlePolicy,
        /// After.
        new: IdlePolicy,
    },
    /// The runtime directory changed (needs a restart).
    RuntimeDirChanged {
        /// Before.
        old: PathBuf,
        /// After.
        new: PathBuf,
    },
    /// The control socket path changed (needs a restart).
    ControlSocketChanged {
        /// Before.
        old: PathBuf,
        /// After.
        new: PathBuf,
    },
    /// A whole switch appeared (with all its ports, uplinks and teams).
    SwitchAdded {
        /// The new switch.
        switch: Switch,
    },
    /// A whole switch disappeared.
    SwitchRemoved {
        /// Its name.
        switch: String,
    },
    /// A switch's MTU changed.
    MtuChanged {
        /// Switch name.
        switch: String,
        /// Before.
        old: u16,
        /// After.
        new: u16,
    },
    /// A switch's MAC table limits changed.
    MacTableChanged {
        /// Switch name.
        switch: String,
        /// Before.
        old: MacTable,
        /// After.
        new: MacTable,
    },
    /// A port appeared on an existing switch.
    PortAdded {
        /// Switch name.
        switch: String,
        /// The new port.
        port: Port,
    },
    /// A port disappeared from an existing switch.
    PortRemoved {
        /// Switch name.
        switch: String,
        /// Port name.
        port: String,
    },
    /// What backs a port changed (type, socket, mode, queues): the port is
    /// re-created.
    PortBackendChanged {
        /// Switch name.
        switch: String,
        /// Port name.
        port: String,
        /// Before.
        old: PortKind,
        /// After.
        new: PortKind,
    },
    /// A port moved to another port group.
    PortGroupChanged {
        /// Switch name.
        switch: String,
        /// Port name.
        port: String,
        /// Before.
        old: String,
        /// After.
        new: String,
    },
    /// A port's effective VLAN mode changed.
    PortVlanChanged {
        /// Switch name.
        switch: String,
        /// Port name.
        port: String,
        /// Before.
        old: VlanMode,
        /// After.
        new: VlanMode,
    },
    /// A port's effective security policy changed.
    PortSecurityChanged {
        /// Switch name.
        switch: String,
        /// Port name.
        port: String,
        /// Before.
        old: SecurityPolicy,
        /// After.
        new: SecurityPolicy,
    },
    /// A port's configured MAC changed.
    PortMacChanged {
        /// Switch name.
        switch: String,
        /// Port name.
        port: String,
        /// Before.
        old: Option<MacAddr>,
        /// After.
        new: Option<MacAddr>,
    },
    /// The owner, group or mode of a server port's socket changed (same
    /// socket, same backend): applied to the existing socket file.
    PortSocketAccessChanged {
        /// Switch name.
        switch: String,
        /// Port name.
        port: String,
        /// Before.
        old: SocketAccess,
        /// After.
        new: SocketAccess,
    },
    /// An uplink appeared on an existing switch.
    UplinkAdded {
        /// Switch name.
        switch: String,
        /// The new uplink.
        uplink: Uplink,
    },
    /// An uplink disappeared from an existing switch.
    UplinkRemoved {
        /// Switch name.
        switch: String,
        /// Uplink name.
        uplink: String,
    },
    /// An uplink's driver changed: the uplink is re-opened.
    UplinkDriverChanged {
        /// Switch name.
        switch: String,
        /// Uplink name.
        uplink: String,
        /// Before.
        old: UplinkDriver,
        /// After.
        new: UplinkDriver,
    },
    /// An uplink's effective VLAN mode changed.
    UplinkVlanChanged {
        /// Switch name.
        switch: String,
        /// Uplink name.
        uplink: String,
        /// Before.
        old: VlanMode,
        /// After.
        new: VlanMode,
    },
    /// A team appeared on an existing switch.
    TeamAdded {
        /// Switch name.
        switch: String,
        /// The new team.
        team: Team,
    },
    /// A team disappeared from an existing switch.
    TeamRemoved {
        /// Switch name.
        switch: String,
        /// Team name.
        team: String,
    },
    /// A team's load-balancing policy changed.
    TeamPolicyChanged {
        /// Switch name.
        switch: String,
        /// Team name.
        team: String,
        /// Before.
        old: TeamPolicy,
        /// After.
        new: TeamPolicy,
    },
    /// A team's active / standby / unused lists changed.
    TeamMembersChanged {
        /// Switch name.
        switch: String,
        /// Team name.
        team: String,
        /// Before: active, standby, unused.
        old: [Vec<String>; 3],
        /// After: active, standby, unused.
        new: [Vec<String>; 3],
    },
    /// A team's failback, failure detection or notify-switches changed.
    TeamFailoverChanged {
        /// Switch name.
        switch: String,
        /// Team name.
        team: String,
        /// Before: failback, failure detection, notify switches.
        old: (bool, FailureDetection, bool),
        /// After.
        new: (bool, FailureDetection, bool),
    },
    /// An SR-IOV PF appeared.
    SriovPfAdded {
        /// The new PF.
        pf: SriovPf,
    },
    /// An SR-IOV PF is no longer managed: its configured VFs are released
    /// (clean settings, host driver); the VF count is left as it is.
    SriovPfRemoved {
        /// PF name.
        pf: String,
    },
    /// The number of VFs of a PF changed (VFs are destroyed and re-created).
    SriovNumVfsChanged {
        /// PF name.
        pf: String,
        /// Before.
        old: u16,
        /// After.
        new: u16,
    },
    /// The settings of one VF changed (`None`: VF not configured).
    SriovVfChanged {
        /// PF name.
        pf: String,
        /// VF index.
        index: u16,
        /// Before.
        old: Option<SriovVf>,
        /// After.
        new: Option<SriovVf>,
    },
}

impl Change {
    /// Whether the daemon must restart to apply this change (it cannot be
    /// applied to a running switch).
    pub fn needs_restart(&self) -> bool {
        matches!(
            self,
            Change::PmdCoresChanged { .. }
                | Change::IdleChanged { .. }
                | Change::RuntimeDirChanged { .. }
                | Change::ControlSocketChanged { .. }
        )
    }
}

/// Everything that differs from `old` to `new`, runtime first, then switch
/// by switch (ports, uplinks, teams), then SR-IOV. Identical configurations
/// give an empty list.
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let mut out = Vec::new();
    let (o, n) = (&old.runtime, &new.runtime);
    if o.pmd_cores != n.pmd_cores {
        out.push(Change::PmdCoresChanged {
            old: o.pmd_cores.clone(),
            new: n.pmd_cores.clone(),
        });
    }
    if o.idle != n.idle {
        out.push(Change::IdleChanged {
            old: o.idle,
            new: n.idle,
        });
    }
    if o.runtime_dir != n.runtime_dir {
        out.push(Change::RuntimeDirChanged {
            old: o.runtime_dir.clone(),
            new: n.runtime_dir.clone(),
        });
    }
    if o.control_socket != n.control_socket {
        out.push(Change::ControlSocketChanged {
            old: o.control_socket.clone(),
            new: n.control_socket.clone(),
        });
    }
    for os in &old.switches {
        match new.switch(&os.name) {
            None => out.push(Change::SwitchRemoved {
                switch: os.name.clone(),
            }),
            Some(ns) => diff_switch(os, ns, &mut out),
        }
    }
    for ns in &new.switches {
        if old.switch(&ns.name).is_none() {
            out.push(Change::SwitchAdded { switch: ns.clone() });
        }
    }
    diff_sriov(&old.sriov, &new.sriov, &mut out);
    out
}

fn diff_switch(o: &Switch, n: &Switch, out: &mut Vec<Change>) {
    let sw = || n.name.clone();
    if o.mtu != n.mtu {
        out.push(Change::MtuChanged {
            switch: sw(),
            old: o.mtu,
            new: n.mtu,
        });
    }
    if o.mac_table != n.mac_table {
        out.push(Change::MacTableChanged {
            switch: sw(),
            old: o.mac_table,
            new: n.mac_table,
        });
    }
    for op in &o.ports {
        let Some(np) = n.port(&op.name) else {
            out.push(Change::PortRemoved {
                switch: sw(),
                port: op.name.clone(),
            });
            continue;
        };
        let port = || np.name.clone();
        if op.kind != np.kind {
            out.push(Change::PortBackendChanged {
                switch: sw(),
                port: port(),
                old: op.kind.clone(),
                new: np.kind.clone(),
            });
        }
        if op.port_group != np.port_group {
            out.push(Change::PortGroupChanged {
                switch: sw(),
                port: port(),
                old: op.port_group.clone(),
                new: np.port_group.clone(),
            });
        }
        if op.vlan != np.vlan {
            out.push(Change::PortVlanChanged {
                switch: sw(),
                port: port(),
                old: op.vlan.clone(),
                new: np.vlan.clone(),
            });
        }
        if op.security != np.security {
            out.push(Change::PortSecurityChanged {
                switch: sw(),
                port: port(),
                old: op.security,
                new: np.security,
            });
        }
        if op.mac != np.mac {
            out.push(Change::PortMacChanged {
                switch: sw(),
                port: port(),
                old: op.mac,
                new: np.mac,
            });
        }
        // A re-created port gets its new access with its new socket.
        if op.kind == np.kind
            && let (Some(o), Some(n)) = (&op.socket_access, &np.socket_access)
            && o != n
        {
            out.push(Change::PortSocketAccessChanged {
                switch: sw(),
                port: port(),
                old: o.clone(),
                new: n.clone(),
            });
        }
    }
    for np in &n.ports {
        if o.port(&np.name).is_none() {
            out.push(Change::PortAdded {
                switch: sw(),
                port: np.clone(),
            });
        }
    }
    for ou in &o.uplinks {
        let Some(nu) = n.uplink(&ou.name) else {
            out.push(Change::UplinkRemoved {
                switch: sw(),
                uplink: ou.name.clone(),
            });
            continue;
        };
        if ou.driver != nu.driver {
            out.push(Change::UplinkDriverChanged {
                switch: sw(),
                uplink: nu.name.clone(),
                old: ou.driver,
                new: nu.driver,
            });
        }
        if ou.vlan != nu.vlan {
            out.push(Change::UplinkVlanChanged {
                switch: sw(),
                uplink: nu.name.clone(),
                old: ou.vlan.clone(),
                new: nu.vlan.clone(),
            });
        }
    }
    for nu in &n.uplinks {
        if o.uplink(&nu.name).is_none() {
            out.push(Change::UplinkAdded {
                switch: sw(),
                uplink: nu.clone(),
            });
        }
    }
    for ot in &o.teams {
        let Some(nt) = n.team(&ot.name) else {
            out.push(Change::TeamRemoved {
                switch: sw(),
                team: ot.name.clone(),
            });
            continue;
        };
        let team = || nt.name.clone();
        if ot.policy != nt.policy {
            out.push(Change::TeamPolicyChanged {
                switch: sw(),
                team: team(),
                old: ot.policy,
                new: nt.policy,
            });
        }
        let members = |t: &Team| [t.active.clone(), t.standby.clone(), t.unused.clone()];
        if members(ot) != members(nt) {
            out.push(Change::TeamMembersChanged {
                switch: sw(),
                team: team(),
                old: members(ot),
                new: members(nt),
            });
        }
        let failover = |t: &Team| (t.failback, t.failure_detection, t.notify_switches);
        if failover(ot) != failover(nt) {
            out.push(Change::TeamFailoverChanged {
                switch: sw(),
                team: team(),
                old: failover(ot),
                new: failover(nt),
            });
        }
    }
    for nt in &n.teams {
        if o.team(&nt.name).is_none() {
            out.push(Change::TeamAdded {
                switch: sw(),
                team: nt.clone(),
            });
        }
    }
}

fn diff_sriov(old: &[SriovPf], new: &[SriovPf], out: &mut Vec<Change>) {
    for o in old {
        let Some(n) = new.iter().find(|n| n.pf == o.pf) else {
            out.push(Change::SriovPfRemoved { pf: o.pf.clone() });
            continue;
        };
        if o.num_vfs != n.num_vfs {
            out.push(Change::SriovNumVfsChanged {
                pf: n.pf.clone(),
                old: o.num_vfs,
                new: n.num_vfs,
            });
        }
        let mut indexes: Vec<u16> = o.vfs.iter().chain(&n.vfs).map(|v| v.index).collect();
        indexes.sort_unstable();
        indexes.dedup();
        for index in indexes {
            let ov = o.vfs.iter().find(|v| v.index == index);
            let nv = n.vfs.iter().find(|v| v.index == index);
            if ov != nv {
                out.push(Change::SriovVfChanged {
                    pf: n.pf.clone(),
                    index,
                    old: ov.cloned(),
                    new: nv.cloned(),
                });
            }
        }
    }
    for n in new {
        if !old.iter().any(|o| o.pf == n.pf) {
            out.push(Change::SriovPfAdded { pf: n.clone() });
        }
    }
}

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
                changed_fields(&[
                    (
                        "max entries",
                        old.max_entries.to_string(),
                        new.max_entries.to_string()
                    ),
                    (
                        "aging",
                        format!("{} s", old.aging_seconds),
                        format!("{} s", new.aging_seconds)
                    ),
                    (
                        "per-port limit",
                        old.per_port_limit.to_string(),
                        new.per_port_limit.to_string()
                    ),
                ])
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
            Change::PortSecurityChanged { port, old, new, .. } => write!(
                f,
                "port {port}: {}",
                changed_fields(&[
                    (
                        "promiscuous",
                        old.promiscuous.to_string(),
                        new.promiscuous.to_string()
                    ),
                    (
                        "mac-changes",
                        old.mac_changes.to_string(),
                        new.mac_changes.to_string()
                    ),
                    (
                        "forged-transmits",
                        old.forged_transmits.to_string(),
                        new.forged_transmits.to_string()
                    ),
                ])
            ),
            Change::PortMacChanged { port, old, new, .. } => {
                write!(f, "port {port}: MAC {} -> {}", opt_mac(*old), opt_mac(*new))
            }
            Change::PortSocketAccessChanged { port, old, new, .. } => write!(
                f,
                "port {port}: socket {}",
                changed_fields(&[
                    (
                        "mode",
                        format!("{:04o}", old.mode),
                        format!("{:04o}", new.mode)
                    ),
                    (
                        "owner",
                        Account::or_default(old.owner.as_ref()),
                        Account::or_default(new.owner.as_ref())
                    ),
                    (
                        "group",
                        Account::or_default(old.group.as_ref()),
                        Account::or_default(new.group.as_ref())
                    ),
                ])
            ),
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
            Change::TeamFailoverChanged { team, old, new, .. } => write!(
                f,
                "{team}: {}",
                changed_fields(&[
                    ("failback", on_off(old.0).into(), on_off(new.0).into()),
                    ("failure detection", old.1.to_string(), new.1.to_string()),
                    (
                        "notify switches",
                        on_off(old.2).into(),
                        on_off(new.2).into()
                    ),
                ])
            ),
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
            } => match (old, new) {
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
            },
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
