//! The kernel-backed ports of a switch: uplinks (AF_XDP or AF_PACKET),
//! teams of uplinks, and internal (TAP) ports; and the team supervisor.
//!
//! Each such port gets one queue pair per PMD: the receiving one on the
//! PMD that polls it, a transmit-only one on every other PMD (so each
//! frame from the kernel is received exactly once). A device that cannot
//! be opened (no such interface, no permission) does not stop the switch:
//! the port is logged and shown as not running, and a team member that
//! cannot be opened counts as link down.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use dataplane::port::NetdevCounters;
use dataplane::port::team::{TeamPort, TeamShared};
use dataplane::{Port, PortId, PortQueue, Switch};
use teaming::{Team, Timestamp};

use crate::team_supervisor::{KernelIo, TeamRuntime, TeamSupervisor, team_spec};
use crate::translate::{PortIds, vlan_mode};

/// What backs a kernel-backed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetdevKind {
    /// An uplink on a host interface.
    Uplink(config::UplinkDriver),
    /// An internal port: a TAP interface the switch creates, with its
    /// switch's MTU.
    Internal {
        /// The switch's `mtu:`.
        mtu: u16,
    },
}

/// A kernel-backed port or team the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetdevState {
    /// `uplink`, `team` or `internal`.
    pub kind: &'static str,
    /// Whether its queues are attached (for a team: at least one member
    /// opened).
    pub running: bool,
    /// Why it is not running, or what it fell back to.
    pub note: Option<String>,
    /// PMD that polls it.
    pub rx_pmd: usize,
}

/// The daemon's clock: time since the first call (at start-up).
pub fn daemon_epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now on the daemon's clock.
pub fn now() -> Timestamp {
    Timestamp::from_duration(daemon_epoch().elapsed())
}

/// One queue pair per PMD, and a note (what the port fell back to).
pub type OpenedQueues = (Vec<Box<dyn Port>>, Option<String>);

/// Opens one queue pair per PMD of a kernel-backed port named `name`;
/// only queue `rx_pmd` receives.
pub fn open_queues(
    kind: NetdevKind,
    name: &str,
    pmds: usize,
    rx_pmd: usize,
) -> Result<OpenedQueues, String> {
    use dataplane::port::af_packet::AfPacketPort;
    use dataplane::port::tap::TapPort;
    let mut out: Vec<Box<dyn Port>> = Vec::with_capacity(pmds);
    let mut note = None;
    match kind {
        NetdevKind::Internal { mtu } => {
            let main = TapPort::create(name, mtu).map_err(|e| e.to_string())?;
            let mut txs = (1..pmds)
                .map(|_| main.tx_handle().map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter();
            let mut main = Some(main);
            for i in 0..pmds {
                let q = if i == rx_pmd { main.take() } else { txs.next() };
                out.extend(q.map(|q| Box::new(q) as Box<dyn Port>));
            }
        }
        NetdevKind::Uplink(driver) => {
            match dataplane::port::netdev::LinkProbe::new()
                .and_then(|p| p.disable_receive_offloads(name))
            {
                Ok(off) if !off.is_empty() => {
                    tracing::info!(
                        uplink = name,
                        "turned off {} (frames must stay wire-sized)",
                        off.join(", ")
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(uplink = name, "cannot turn off GRO/LRO: {e}"),
            }
            // AF_XDP receives on the PMD that polls the uplink (one socket
            // per interface); the other PMDs send through AF_PACKET. If
            // the interface refuses XDP, the whole uplink uses AF_PACKET.
            let xdp = if driver == config::UplinkDriver::AfXdp {
                match dataplane::port::AfXdpPort::open(name) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::warn!(uplink = name, "af-xdp refused, using af-packet: {e}");
                        note = Some(format!("af-xdp refused ({e}): using af-packet"));
                        None
                    }
                }
            } else {
                None
            };
            let mut xdp = xdp;
            for i in 0..pmds {
                let q: Box<dyn Port> = if i == rx_pmd {
                    match xdp.take() {
                        Some(p) => Box::new(p),
                        None => Box::new(AfPacketPort::open(name).map_err(|e| e.to_string())?),
                    }
                } else {
                    Box::new(AfPacketPort::open_tx_only(name).map_err(|e| e.to_string())?)
                };
                out.push(q);
            }
        }
    }
    Ok((out, note))
}

/// The kernel-backed ports and teams of a running switch.
#[derive(Debug, Default)]
pub struct Netdevs {
    /// By port, uplink or team name.
    pub ports: BTreeMap<String, NetdevState>,
    /// The team supervisor, if the switch has teams.
    pub supervisor: Option<TeamSupervisor>,
    /// Port IDs of uplinks and teams (never announced as guests).
    pub uplink_ids: BTreeSet<PortId>,
    /// The socket error counters of each opened port, uplink and team
    /// member, one per queue pair (why the kernel side dropped frames).
    pub counters: BTreeMap<String, Vec<Arc<NetdevCounters>>>,
}

/// The socket error counters of `ports` (the queue pairs of one port).
fn counters_of(ports: &[Box<dyn Port>]) -> Vec<Arc<NetdevCounters>> {
    ports.iter().filter_map(|p| p.netdev_counters()).collect()
}

fn queues(ports: Vec<Box<dyn Port>>, rx_pmd: usize) -> Vec<PortQueue> {
    ports
        .into_iter()
        .enumerate()
        .map(|(i, port)| PortQueue {
            port,
            poll_rx: i == rx_pmd,
        })
        .collect()
}

/// Opens and attaches the internal ports, stand-alone uplinks and teams of
/// `sw`, and starts its team supervisor. `rx_start` spreads receive
/// polling over the PMDs after the ports already placed. `teams` holds one
/// entry per `sw.teams`, in order ([`build_teams`]): a team that could not
/// be built is logged and shown as not running.
pub fn start(
    sw: &config::Switch,
    ids: &PortIds,
    switch: &Switch,
    rx_start: usize,
    teams: Vec<Result<Team, String>>,
) -> Netdevs {
    let n = switch.pmd_count().max(1);
    let mut out = Netdevs::default();
    let mut next = rx_start;
    let mut place = || {
        let p = next % n;
        next += 1;
        p
    };
    let attach = |name: &str, kind: NetdevKind, what: &'static str, rx_pmd: usize| {
        let id = ids.get(name)?;
        let mut counters = Vec::new();
        let state = match open_queues(kind, name, n, rx_pmd) {
            Ok((ports, note)) => {
                counters = counters_of(&ports);
                match switch.attach_port(id, queues(ports, rx_pmd)) {
                    Ok(()) => NetdevState {
                        kind: what,
                        running: true,
                        note,
                        rx_pmd,
                    },
                    Err(e) => NetdevState {
                        kind: what,
                        running: false,
                        note: Some(format!("cannot attach: {e}")),
                        rx_pmd,
                    },
                }
            }
            Err(e) => {
                tracing::error!(port = name, "{what} {name} not running: {e}");
                NetdevState {
                    kind: what,
                    running: false,
                    note: Some(e),
                    rx_pmd,
                }
            }
        };
        Some((state, counters))
    };
    for p in &sw.ports {
        if p.kind == config::PortKind::Internal
            && let Some((st, c)) = attach(
                &p.name,
                NetdevKind::Internal { mtu: sw.mtu },
                "internal",
                place(),
            )
        {
            out.ports.insert(p.name.clone(), st);
            out.counters.insert(p.name.clone(), c);
        }
    }
    for u in &sw.uplinks {
        if sw.team_of(&u.name).is_none() {
            if let Some(id) = ids.get(&u.name) {
                out.uplink_ids.insert(id);
            }
            if let Some((st, c)) = attach(&u.name, NetdevKind::Uplink(u.driver), "uplink", place())
            {
                out.ports.insert(u.name.clone(), st);
                out.counters.insert(u.name.clone(), c);
            }
        }
    }
    let mut runtimes = Vec::new();
    for (t, team) in sw.teams.iter().zip(teams) {
        let Some(id) = ids.get(&t.name) else { continue };
        out.uplink_ids.insert(id);
        let rx_pmd = place();
        match team.and_then(|team| start_team(sw, t, team, id, switch, rx_pmd)) {
            Ok((rt, states, counters)) => {
                let opened = states.iter().filter(|(_, s)| s.running).count();
                out.counters.extend(counters);
                out.ports.insert(
                    t.name.clone(),
                    NetdevState {
                        kind: "team",
                        running: opened > 0,
                        note: (opened == 0).then(|| "no member could be opened".to_string()),
                        rx_pmd,
                    },
                );
                out.ports.extend(states);
                runtimes.push(rt);
            }
            Err(e) => {
                tracing::error!(team = %t.name, "team {} not running: {e}", t.name);
                out.ports.insert(
                    t.name.clone(),
                    NetdevState {
                        kind: "team",
                        running: false,
                        note: Some(e),
                        rx_pmd,
                    },
                );
            }
        }
    }
    if !runtimes.is_empty() {
        let started = KernelIo::new().and_then(|io| {
            let mac = switch.mac_reader().map_err(std::io::Error::other)?;
            TeamSupervisor::start(
                &sw.name,
                runtimes,
                Box::new(io),
                mac,
                out.uplink_ids.clone(),
                daemon_epoch(),
            )
        });
        match started {
            Ok(s) => out.supervisor = Some(s),
            Err(e) => tracing::error!(switch = %sw.name, "cannot start team supervision: {e}"),
        }
    }
    out
}

/// A started team: its runtime, its members' states and their socket
/// error counters.
type StartedTeam = (
    TeamRuntime,
    Vec<(String, NetdevState)>,
    Vec<(String, Vec<Arc<NetdevCounters>>)>,
);

/// Builds each team of `sw` for [`start`], in order: the team, or why
/// its settings make none.
pub fn build_teams(sw: &config::Switch) -> Vec<Result<Team, String>> {
    sw.teams
        .iter()
        .map(|t| Team::new(team_spec(&sw.name, t), now()).map_err(|e| e.to_string()))
        .collect()
}

/// Opens every member of team `t` on every PMD, attaches the team's
/// queues as port `id` and builds its runtime around `team` (built from
/// `t`). Returns the member states and the opened members' counters.
fn start_team(
    sw: &config::Switch,
    t: &config::Team,
    team: Team,
    id: PortId,
    switch: &Switch,
    rx_pmd: usize,
) -> Result<StartedTeam, String> {
    let n = switch.pmd_count().max(1);
    let names: Vec<String> = t.members().map(str::to_string).collect();
    let (shared, beacons) = TeamShared::new(&t.name, names.clone(), *team.selector());
    // Per PMD, the member queue pairs in member order.
    let mut per_pmd: Vec<Vec<Option<Box<dyn Port>>>> = (0..n).map(|_| Vec::new()).collect();
    let mut states = Vec::new();
    let mut counters = Vec::new();
    let mut present = Vec::new();
    let mut macs = Vec::new();
    let probe = dataplane::port::netdev::LinkProbe::new().ok();
    for name in &names {
        let driver = sw
            .uplink(name)
            .map_or(config::UplinkDriver::AfPacket, |u| u.driver);
        match open_queues(NetdevKind::Uplink(driver), name, n, rx_pmd) {
            Ok((ports, note)) => {
                counters.push((name.clone(), counters_of(&ports)));
                for (q, p) in per_pmd.iter_mut().zip(ports) {
                    q.push(Some(p));
                }
                present.push(true);
                states.push((
                    name.clone(),
                    NetdevState {
                        kind: "team member",
                        running: true,
                        note,
                        rx_pmd,
                    },
                ));
            }
            Err(e) => {
                tracing::error!(team = %t.name, member = %name, "member cannot be opened, it counts as down: {e}");
                for q in per_pmd.iter_mut() {
                    q.push(None);
                }
                present.push(false);
                states.push((
                    name.clone(),
                    NetdevState {
                        kind: "team member",
                        running: false,
                        note: Some(e),
                        rx_pmd,
                    },
                ));
            }
        }
        macs.push(
            probe
                .as_ref()
                .and_then(|p| p.hw_addr(name))
                .unwrap_or(dataplane::MacAddr([0x02, 0, 0, 0, 0, 0])),
        );
    }
    let team_queues = per_pmd
        .into_iter()
        .enumerate()
        .map(|(i, members)| PortQueue {
            port: Box::new(TeamPort::new(shared.clone(), members)),
            poll_rx: i == rx_pmd,
        })
        .collect();
    switch
        .attach_port(id, team_queues)
        .map_err(|e| format!("cannot attach: {e}"))?;
    let rt = TeamRuntime::new(
        &sw.name,
        t,
        id,
        team,
        shared,
        beacons,
        present,
        macs,
        vlan_mode(&t.vlan),
    );
    Ok((rt, states, counters))
}
