//! What changed between two configurations, for `vswitchctl reload
//! --dry-run` and for the daemon to apply port by port.
//!
//! Ports are compared by their *effective* settings (VLAN mode and security
//! after port-group resolution), so changing a port group's VLAN yields one
//! [`Change::PortVlanChanged`] per port in it, and an untouched port yields
//! nothing.
//!
//! This module computes the list; `display.rs` holds the words of each
//! [`Change`].

mod display;

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
    /// The Prometheus endpoint's address changed, or it was turned on or
    /// off (`None`: no listener). Applied live.
    MetricsChanged {
        /// Before.
        old: Option<std::net::SocketAddr>,
        /// After.
        new: Option<std::net::SocketAddr>,
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
    let listen = |c: &Config| c.metrics.map(|m| m.listen);
    if listen(old) != listen(new) {
        out.push(Change::MetricsChanged {
            old: listen(old),
            new: listen(new),
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

/// A switch in both configurations: MTU, MAC table, then its ports,
/// uplinks and teams.
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
    diff_ports(o, n, out);
    diff_uplinks(o, n, out);
    diff_teams(o, n, out);
}

/// Ports removed, changed (backend, port group, VLAN, security, MAC,
/// socket access) and added.
fn diff_ports(o: &Switch, n: &Switch, out: &mut Vec<Change>) {
    let sw = || n.name.clone();
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
}

/// Uplinks removed, changed (driver, VLAN) and added.
fn diff_uplinks(o: &Switch, n: &Switch, out: &mut Vec<Change>) {
    let sw = || n.name.clone();
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
}

/// Teams removed, changed (policy, members, failover) and added.
fn diff_teams(o: &Switch, n: &Switch, out: &mut Vec<Change>) {
    let sw = || n.name.clone();
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

/// PFs removed, changed (VF count, each VF) and added.
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
