//! What the control requests read: status, counters, MAC tables (and
//! flushing them), VLAN membership, PMDs, and the teams' `show` and
//! `explain`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::PoisonError;

use dataplane::vhost::VhostUserPort;
use dataplane::{DropReason, PortId};

use super::startup::idle_name;
use super::{Daemon, DaemonError, chain};
use crate::backends;
use crate::protocol;

impl Daemon {
    /// `team show`: every team (or `only`), with its member choice per
    /// guest MAC from the switch's MAC table.
    pub fn team_show(&self, only: Option<&str>) -> Result<protocol::TeamShowReply, String> {
        let mut teams = Vec::new();
        for sw in &self.config.switches {
            let Some(r) = self.switches.get(&sw.name) else {
                continue;
            };
            let Some(sup) = &r.netdevs.supervisor else {
                continue;
            };
            let rows = r.switch.mac_table().map_err(|e| e.to_string())?;
            let names: BTreeMap<u16, String> = sw
                .ports
                .iter()
                .map(|p| p.name.as_str())
                .filter_map(|n| self.ids.get(n).map(|id| (id.0, n.to_string())))
                .collect();
            let port_name = |id: PortId| names.get(&id.0).cloned();
            for t in sup.teams() {
                let rt = t.lock().unwrap_or_else(PoisonError::into_inner);
                if only.is_some_and(|o| o != rt.name()) {
                    continue;
                }
                teams.push(rt.show(&rows, &r.netdevs.uplink_ids, &port_name, backends::now()));
            }
        }
        if let Some(o) = only
            && teams.is_empty()
        {
            return Err(format!("no running team named {o}"));
        }
        Ok(protocol::TeamShowReply { teams })
    }

    /// `team explain`: which member a described frame leaves on, and why.
    pub fn team_explain(
        &self,
        team: &str,
        flow: &protocol::TeamFlow,
    ) -> Result<protocol::TeamExplainReply, String> {
        for sw in &self.config.switches {
            let Some(sup) = self
                .switches
                .get(&sw.name)
                .and_then(|r| r.netdevs.supervisor.as_ref())
            else {
                continue;
            };
            for t in sup.teams() {
                let rt = t.lock().unwrap_or_else(PoisonError::into_inner);
                if rt.name() != team {
                    continue;
                }
                let port = sw.port(&flow.port).ok_or_else(|| {
                    format!(
                        "switch {} has no port {} (a guest or internal port)",
                        sw.name, flow.port
                    )
                })?;
                let id = self
                    .ids
                    .get(&port.name)
                    .ok_or_else(|| format!("port {} has no ID", port.name))?;
                let frame = crate::team_supervisor::flow_frame(flow, port.mac)?;
                let e = rt.team().explain_frame(teaming::GuestPort(id.0), &frame);
                return Ok(protocol::TeamExplainReply {
                    member: e.member.as_ref().map(|(_, n)| n.clone()),
                    why: e.to_string(),
                });
            }
        }
        Err(format!("no running team named {team}"))
    }

    fn port_id(&self, name: &str) -> u16 {
        // Every configured port got an ID when its spec was built.
        self.ids.get(name).map_or(u16::MAX, |id| id.0)
    }

    /// Switches and ports as configured, with connection state.
    pub fn status(&self) -> protocol::StatusReply {
        let switches = self
            .config
            .switches
            .iter()
            .map(|sw| {
                let running = self.switches.get(&sw.name);
                protocol::SwitchStatus {
                    name: sw.name.clone(),
                    mtu: sw.mtu,
                    mac_table: protocol::MacTableLimits {
                        max_entries: sw.mac_table.max_entries,
                        aging_seconds: sw.mac_table.aging_seconds,
                        per_port_limit: sw.mac_table.per_port_limit,
                    },
                    port_groups: sw
                        .port_groups
                        .iter()
                        .map(|g| protocol::PortGroupStatus {
                            name: g.name.clone(),
                            vlan: (&g.vlan).into(),
                            security: (&g.security).into(),
                        })
                        .collect(),
                    ports: sw
                        .ports
                        .iter()
                        .map(|p| {
                            let vhost = running.and_then(|r| r.vhost.get(&p.name));
                            let (kind, role, socket, queues) = match &p.kind {
                                config::PortKind::VhostUser {
                                    socket,
                                    mode,
                                    queues,
                                } => (
                                    "vhost-user",
                                    Some(mode.to_string()),
                                    Some(socket.clone()),
                                    Some(*queues),
                                ),
                                config::PortKind::Internal => ("internal", None, None, None),
                            };
                            protocol::PortStatus {
                                name: p.name.clone(),
                                id: self.port_id(&p.name),
                                kind: kind.to_string(),
                                role,
                                socket,
                                queues,
                                queues_running: vhost.map(|v| {
                                    let running = v.handle.running_pairs();
                                    let n = running.iter().filter(|&&r| r).count();
                                    u16::try_from(n).unwrap_or(u16::MAX)
                                }),
                                connected: vhost.map(|v| v.handle.connected()).or_else(|| {
                                    running
                                        .and_then(|r| r.netdevs.ports.get(&p.name))
                                        .map(|n| n.running)
                                }),
                                port_group: p.port_group.clone(),
                                vlan: (&p.vlan).into(),
                                security: (&p.security).into(),
                                mac: p.mac.map(|m| m.to_string()),
                            }
                        })
                        .collect(),
                    uplinks: sw
                        .uplinks
                        .iter()
                        .map(|u| protocol::UplinkStatus {
                            name: u.name.clone(),
                            id: self.port_id(&u.name),
                            driver: u.driver.to_string(),
                            team: sw.team_of(&u.name).map(|t| t.name.clone()),
                            vlan: (&u.vlan).into(),
                            running: running
                                .and_then(|r| r.netdevs.ports.get(&u.name))
                                .is_some_and(|n| n.running),
                        })
                        .collect(),
                }
            })
            .collect();
        protocol::StatusReply {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_file: self.config_file.clone(),
            runtime_dir: self.config.runtime.runtime_dir.clone(),
            control_socket: self.config.runtime.control_socket.clone(),
            pmd_threads: self
                .pmds
                .iter()
                .map(|p| protocol::PmdStatus {
                    core: p.core,
                    idle: idle_name(p.idle).to_string(),
                })
                .collect(),
            reloads: self.reloads,
            switches,
        }
    }

    /// Per-port and per-PMD counters.
    pub fn stats(&self) -> protocol::StatsReply {
        let switches = self
            .config
            .switches
            .iter()
            .filter_map(|sw| {
                let r = self.switches.get(&sw.name)?;
                let names = sw
                    .ports
                    .iter()
                    .map(|p| &p.name)
                    .chain(
                        sw.uplinks
                            .iter()
                            .filter(|u| sw.team_of(&u.name).is_none())
                            .map(|u| &u.name),
                    )
                    .chain(sw.teams.iter().map(|t| &t.name));
                let ports = names
                    .filter_map(|name| {
                        let id = self.ids.get(name)?;
                        let c = r.switch.port_stats(id);
                        let drops = DropReason::ALL
                            .iter()
                            .filter(|&&d| c.drop_count(d) > 0)
                            .map(|&d| (d.name().to_string(), c.drop_count(d)))
                            .collect();
                        Some(protocol::PortStats {
                            name: name.clone(),
                            rx_packets: c.rx_packets,
                            rx_bytes: c.rx_bytes,
                            tx_packets: c.tx_packets,
                            tx_bytes: c.tx_bytes,
                            tx_dropped: c.tx_dropped,
                            drops,
                            drops_total: c.total_drops(),
                            mac_learn_limit: c.mac_learn_limit,
                            mac_table_full: c.mac_table_full,
                            mac_moves: c.mac_moves,
                            vhost: r.vhost.get(name).map(|v| vhost_counters(&v.handle)),
                            netdev: netdev_drops(&r.netdevs, name, sw.team(name)),
                            members: sw
                                .team(name)
                                .map(|t| {
                                    t.members()
                                        .filter_map(|m| {
                                            Some(protocol::MemberStats {
                                                name: m.to_string(),
                                                netdev: netdev_drops(&r.netdevs, m, None)?,
                                            })
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                        })
                    })
                    .collect();
                let pmds = r
                    .switch
                    .pmd_stats()
                    .iter()
                    .enumerate()
                    .map(|(index, s)| protocol::PmdStats {
                        index,
                        iterations: s.iterations.get(),
                        busy_iterations: s.busy_iterations.get(),
                        idle_sleeps: s.idle_sleeps.get(),
                        cpu_time_ns: s.cpu_time_ns.get(),
                    })
                    .collect();
                Some(protocol::SwitchStats {
                    name: sw.name.clone(),
                    ports,
                    pmds,
                })
            })
            .collect();
        protocol::StatsReply { switches }
    }

    /// Every switch's MAC table.
    pub fn mac_tables(&self) -> Result<protocol::MacTableReply, DaemonError> {
        let mut switches = Vec::new();
        for sw in &self.config.switches {
            let Some(r) = self.switches.get(&sw.name) else {
                continue;
            };
            let rows = r.switch.mac_table().map_err(|source| DaemonError::Spec {
                switch: sw.name.clone(),
                source,
            })?;
            let snap = r.switch.snapshot();
            let entries = rows
                .into_iter()
                .map(|row| protocol::MacEntry {
                    vlan: row.vid,
                    mac: row.mac.to_string(),
                    port: snap
                        .port_spec(row.port)
                        .map_or_else(|| format!("#{}", row.port), |p| p.name.clone()),
                    is_static: row.is_static,
                    age: row.age_secs,
                    ipv4: row.ipv4.map(|ip| ip.to_string()),
                })
                .collect();
            switches.push(protocol::SwitchMacTable {
                name: sw.name.clone(),
                entries,
            });
        }
        Ok(protocol::MacTableReply { switches })
    }

    /// Forgets learned MAC entries of `switch` (all switches when `None`)
    /// in `vlan` on `port`; static entries stay. Errors are in words.
    pub fn fdb_flush(
        &self,
        switch: Option<&str>,
        vlan: Option<u16>,
        port: Option<&str>,
    ) -> Result<protocol::FdbFlushReply, String> {
        if let Some(v) = vlan
            && config::VlanId::new(v).is_none()
        {
            return Err(format!("{v} is not a VLAN ID (1-4094)"));
        }
        if let Some(name) = switch
            && self.config.switch(name).is_none()
        {
            let known: Vec<&str> = self
                .config
                .switches
                .iter()
                .map(|s| s.name.as_str())
                .collect();
            return Err(format!("no switch {name} (switches: {})", known.join(", ")));
        }
        let has_port =
            |sw: &config::Switch, p: &str| sw.port(p).is_some() || sw.uplink(p).is_some();
        let targets: Vec<&config::Switch> = self
            .config
            .switches
            .iter()
            .filter(|sw| switch.is_none_or(|n| sw.name == n))
            .filter(|sw| port.is_none_or(|p| has_port(sw, p)))
            .collect();
        if let Some(p) = port
            && targets.is_empty()
        {
            return Err(match switch {
                Some(sw) => format!("switch {sw} has no port {p}"),
                None => format!("no port {p}"),
            });
        }
        let port_id = port.and_then(|p| self.ids.get(p));
        let mut switches = Vec::new();
        for sw in targets {
            let Some(r) = self.switches.get(&sw.name) else {
                continue;
            };
            let n = r
                .switch
                .flush_macs(vlan, port_id)
                .map_err(|e| format!("switch {}: {}", sw.name, chain(&e)))?;
            tracing::info!(switch = %sw.name, ?vlan, ?port, flushed = n, "MAC table flushed");
            switches.push(protocol::SwitchFlush {
                name: sw.name.clone(),
                flushed: n as u64,
            });
        }
        Ok(protocol::FdbFlushReply { switches })
    }

    /// VLAN membership of every switch, from the configuration in force.
    pub fn vlans(&self) -> protocol::VlanShowReply {
        let switches = self
            .config
            .switches
            .iter()
            .map(|sw| {
                let members: Vec<(&str, &config::VlanMode)> = sw
                    .ports
                    .iter()
                    .map(|p| (p.name.as_str(), &p.vlan))
                    .chain(sw.uplinks.iter().map(|u| (u.name.as_str(), &u.vlan)))
                    .collect();
                let carries_all = |m: &config::VlanMode| match m {
                    config::VlanMode::GuestTagging => true,
                    config::VlanMode::Trunk { allowed, .. } => allowed.len() >= 4094,
                    config::VlanMode::Access(_) => false,
                };
                let mut ids = BTreeSet::new();
                for (_, m) in &members {
                    ids.extend(m.native().map(config::VlanId::get));
                    if let config::VlanMode::Trunk { allowed, .. } = m
                        && !carries_all(m)
                    {
                        ids.extend(allowed.iter().map(config::VlanId::get));
                    }
                }
                let member =
                    |name: &str, m: &config::VlanMode, tagged: bool| protocol::VlanMember {
                        port: name.to_string(),
                        tagged,
                        mode: m.to_string(),
                    };
                let vlans = ids
                    .into_iter()
                    .map(|vid| protocol::VlanMembers {
                        vlan: vid,
                        members: members
                            .iter()
                            .filter(|(_, m)| m.carries(vid))
                            .map(|&(name, m)| {
                                let untagged = m.native().is_some_and(|n| n.get() == vid);
                                member(name, m, !untagged)
                            })
                            .collect(),
                    })
                    .collect();
                let all_vlans = members
                    .iter()
                    .filter(|(_, m)| carries_all(m))
                    .map(|&(name, m)| member(name, m, true))
                    .collect();
                protocol::SwitchVlans {
                    name: sw.name.clone(),
                    vlans,
                    all_vlans,
                }
            })
            .collect();
        protocol::VlanShowReply { switches }
    }

    /// Every switch's PMD threads: configuration, the ports they poll,
    /// their counters.
    pub fn pmd_show(&self) -> protocol::PmdShowReply {
        let switches = self
            .config
            .switches
            .iter()
            .filter_map(|sw| {
                let r = self.switches.get(&sw.name)?;
                let stats = r.switch.pmd_stats();
                let pmds = stats
                    .iter()
                    .enumerate()
                    .map(|(index, st)| {
                        let cfg = self.pmds.get(index);
                        protocol::PmdInfo {
                            index,
                            core: cfg.and_then(|c| c.core),
                            idle: cfg.map_or("adaptive", |c| idle_name(c.idle)).to_string(),
                            rx_ports: sw
                                .ports
                                .iter()
                                .filter_map(|p| Some((p, r.vhost.get(&p.name)?)))
                                .flat_map(|(p, v)| {
                                    let multi = v.rx_pmds.len() > 1;
                                    v.rx_pmds
                                        .iter()
                                        .enumerate()
                                        .filter(|&(_, &m)| m == index)
                                        .map(move |(q, _)| {
                                            if multi {
                                                format!("{} q{q}", p.name)
                                            } else {
                                                p.name.clone()
                                            }
                                        })
                                })
                                .collect(),
                            tx_ports: r.vhost.len(),
                            iterations: st.iterations.get(),
                            busy_iterations: st.busy_iterations.get(),
                            idle_sleeps: st.idle_sleeps.get(),
                            cpu_time_ns: st.cpu_time_ns.get(),
                        }
                    })
                    .collect();
                Some(protocol::SwitchPmds {
                    name: sw.name.clone(),
                    pmds,
                })
            })
            .collect();
        protocol::PmdShowReply { switches }
    }
}

/// A vhost-user port's own counters by name, zero counts left out.
fn vhost_counters(port: &VhostUserPort) -> BTreeMap<String, u64> {
    let c = port.counters();
    [
        ("rx_bad_chain", c.rx_bad_chain),
        ("rx_bad_frame", c.rx_bad_frame),
        ("rx_zero_copy", c.rx_zero_copy),
        ("tx_bad_chain", c.tx_bad_chain),
        ("tx_ring_full", c.tx_ring_full),
        ("tx_no_ring", c.tx_no_ring),
        ("ring_broken", c.ring_broken),
        ("guest_notifies", c.guest_notifies),
        ("notify_errors", c.notify_errors),
        ("connects", c.connects),
        ("resets", c.resets),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(per_pair_frames(port))
    .filter(|&(_, v)| v > 0)
    .collect()
}

/// A multiqueue port's frames per queue pair (`rx_q1`: received from
/// the guest on pair 1, `tx_q1`: sent to it); nothing for one pair.
fn per_pair_frames(port: &VhostUserPort) -> Vec<(String, u64)> {
    let frames = port.pair_frames();
    if frames.len() < 2 {
        return Vec::new();
    }
    frames
        .iter()
        .enumerate()
        .flat_map(|(q, &(rx, tx))| [(format!("rx_q{q}"), rx), (format!("tx_q{q}"), tx)])
        .collect()
}

/// The socket drop reasons of kernel-backed port `name` (every reason,
/// summed over its queue pairs), or of team `team`'s members together;
/// `None` for a port that has no socket counters (vhost-user, or not
/// opened).
fn netdev_drops(
    netdevs: &crate::backends::Netdevs,
    name: &str,
    team: Option<&config::Team>,
) -> Option<BTreeMap<String, u64>> {
    let sum = |names: &mut dyn Iterator<Item = &str>| {
        let mut total = dataplane::port::NetdevCountersSnapshot::default();
        let mut any = false;
        for n in names {
            for c in netdevs.counters.get(n).into_iter().flatten() {
                total.add(&c.snapshot());
                any = true;
            }
        }
        any.then(|| {
            total
                .by_name()
                .iter()
                .map(|&(k, v)| (k.to_string(), v))
                .collect()
        })
    };
    match team {
        Some(t) => sum(&mut t.members()),
        None => sum(&mut std::iter::once(name)),
    }
}
