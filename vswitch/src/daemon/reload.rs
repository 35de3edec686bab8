//! Live reload.
//!
//! [`Daemon::reload`] reads and validates the file, computes
//! [`config::diff`], and applies it all or nothing:
//!
//! 1. *Check.* Every change is classified: applicable to the running
//!    switches, ignored (a file setting the command line overrides),
//!    needing a restart (PMD cores, idle policy, paths, an MTU larger than
//!    the PMDs' packet buffers; internal ports, uplinks and teams added or
//!    removed, an uplink's driver, a team's member set: they are opened at
//!    start). Every switch's new dataplane snapshot is built (which
//!    validates its spec), and every team from its new teaming spec. Any
//!    refusal, or an invalid file, returns an error and changes nothing.
//!    The diff, the snapshots and the teams are computed here once and
//!    handed on ([`Checked`]): steps 2 and 3 use them as they are.
//! 2. *Prepare.* New switches are started (with their snapshot and teams)
//!    and new or re-created vhost-user ports are created (their sockets
//!    appear), without touching anything running. A failure here undoes
//!    what was prepared. Exception: a server port whose socket path a
//!    retiring port still listens on (a port re-created on the same path,
//!    or a path handed from a removed port to a new one) is created at the
//!    end of step 3, because a listener deletes its socket file when it
//!    closes; a failure there is reported as a partial reload.
//! 3. *Commit.* Per switch: the queues of re-created ports are taken back,
//!    new queues attached, the new snapshot published with
//!    [`dataplane::Switch::publish`] if its spec changed (PMDs switch
//!    between bursts; only ports whose spec changed lose their learned
//!    MACs, so the others keep forwarding), then running teams whose policy, member order or roles,
//!    failback, failure detection, notify-switches or VLAN changed are
//!    reconfigured in place: the team the check built takes over the
//!    running team's state at this point
//!    ([`crate::team_supervisor::TeamRuntime::reconfigure`]:
//!    link states kept, new member choice published, moved guests
//!    announced), then removed ports are detached, their control threads
//!    stopped and their server sockets deleted. Removed switches stop last.
//!
//! A change of only the owner, group or mode of a server port's socket
//! is applied to the socket file in place, between steps 2 and 3 (the port
//! keeps its connection); if it fails, what was changed is set back and
//! the reload is refused. User and group names are resolved, and uplink
//! interfaces looked up, when the file is read ([`super::SystemHost`]): an
//! unknown name or a missing interface is a positioned error, so such a
//! reload changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use config::{Change, Config};
use dataplane::snapshot::Snapshot;
use dataplane::vhost::SocketPerms;
use dataplane::{PortId, PortQueue, SwitchError};
use teaming::Team;

use super::ports::{
    VhostPort, attach_hint, create_vhost, port_queue_pairs, retire, server_socket, server_sockets,
    socket_identity, socket_perms,
};
use super::startup::{buf_size_for, load_config, start_switch};
use super::{Daemon, DaemonError, Running, chain, sriov_lines};
use crate::backends;
use crate::protocol;
use crate::team_supervisor::team_spec;
use crate::translate::{PortIds, switch_spec};

/// What the check of a reload built, for the commit to use as it is: the
/// diff is computed, each switch's snapshot and each team built, once.
#[derive(Debug)]
struct Checked {
    /// The new configuration.
    config: Config,
    /// Its changes against the running one.
    changes: Vec<Change>,
    /// Port IDs, with those of new ports.
    ids: PortIds,
    /// One per switch of `config`, in its order.
    switches: Vec<CheckedSwitch>,
}

/// A switch of the new configuration as the check built it.
#[derive(Debug)]
struct CheckedSwitch {
    /// Its validated snapshot: a new switch starts with it, a running one
    /// gets it published.
    snapshot: Snapshot,
    /// Its teams, in its order.
    teams: Vec<CheckedTeam>,
}

/// A team of the new configuration as the check built it.
#[derive(Debug)]
struct CheckedTeam {
    /// Team name.
    name: String,
    /// The team, built from its teaming spec: a new switch's team starts
    /// with it; a running team's state is carried over into it at the
    /// commit.
    team: Team,
}

/// A port created by a reload, not yet attached.
#[derive(Debug)]
pub(super) struct NewPort {
    switch: String,
    name: String,
    id: PortId,
    port: VhostPort,
    queues: Vec<PortQueue>,
}

/// What a reload created before committing.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    pub(super) switches: Vec<(String, Running)>,
    pub(super) ports: Vec<NewPort>,
    /// Ports (switch, port, receive PMD) whose server socket path a
    /// retiring port still holds: created only after it is gone, because
    /// a listener deletes its socket file when it closes.
    pub(super) deferred: Vec<(String, config::Port, usize)>,
}

/// Why uplink, team and internal-port changes wait for a restart.
const NETDEV_AT_START: &str =
    " (uplinks, teams and internal ports are opened at start; restart vswitchd to change them)";

/// How a reload treats a change of uplinks or teams: uplinks and teams
/// are opened at start, so adding or removing one, or changing an
/// uplink's driver, needs a restart; a running team's policy, failover
/// settings and member order are changed live.
fn team_verdict(c: &Change) -> Verdict {
    match c {
        Change::TeamPolicyChanged { .. } | Change::TeamFailoverChanged { .. } => Verdict::Apply,
        Change::TeamMembersChanged { old, new, .. } => team_members_verdict(old, new),
        _ => Verdict::Restart(NETDEV_AT_START.to_string()),
    }
}

/// A team's members may be reordered and moved between the active,
/// standby and unused lists live (the team is reconfigured); adding or
/// removing one needs a restart, because members are opened at start.
fn team_members_verdict(old: &[Vec<String>; 3], new: &[Vec<String>; 3]) -> Verdict {
    let set = |l: &[Vec<String>; 3]| l.iter().flatten().cloned().collect::<BTreeSet<String>>();
    let (o, n) = (set(old), set(new));
    if o == n {
        return Verdict::Apply;
    }
    let list = |s: BTreeSet<&String>| s.into_iter().cloned().collect::<Vec<_>>().join(", ");
    let mut what = Vec::new();
    let added = list(n.difference(&o).collect());
    if !added.is_empty() {
        what.push(format!("adds {added}"));
    }
    let removed = list(o.difference(&n).collect());
    if !removed.is_empty() {
        what.push(format!("removes {removed}"));
    }
    Verdict::Restart(format!(
        " ({}: team members are opened at start; restart vswitchd to add or remove one)",
        what.join(", ")
    ))
}

/// How a reload treats one change.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Apply,
    Ignore(&'static str),
    Restart(String),
    /// A kind of change this daemon does not know (see `classify`).
    Unknown,
}

impl Prepared {
    /// Undoes a failed reload's preparations.
    pub(super) fn discard(self, keep: &BTreeSet<PathBuf>) {
        for p in self.ports {
            drop(p.queues);
            retire(&p.name, p.port, keep);
        }
        for (_, mut r) in self.switches {
            for (name, p) in std::mem::take(&mut r.vhost) {
                retire(&name, p, keep);
            }
            r.stop();
        }
    }
}

impl Daemon {
    fn classify(&self, c: &Change) -> Verdict {
        match c {
            Change::PmdCoresChanged { .. } if self.opts.pmd_cores.is_some() => {
                Verdict::Ignore("--pmd-cores overrides it")
            }
            Change::IdleChanged { .. } if self.opts.idle.is_some() => {
                Verdict::Ignore("--idle overrides it")
            }
            Change::PmdCoresChanged { .. }
            | Change::IdleChanged { .. }
            | Change::RuntimeDirChanged { .. }
            | Change::ControlSocketChanged { .. } => Verdict::Restart(String::new()),
            Change::MtuChanged { switch, new, .. } => match self.switches.get(switch) {
                Some(r) if buf_size_for(*new) > r.buf_size => Verdict::Restart(format!(
                    " (the PMDs' packet buffers hold at most MTU {}; they are sized at start)",
                    r.buf_size
                        .saturating_sub(dataplane::packet::HEADROOM + 22)
                        .min(usize::from(config::MAX_MTU))
                )),
                _ => Verdict::Apply,
            },
            Change::PortAdded { port, .. } if port.kind == config::PortKind::Internal => {
                Verdict::Restart(NETDEV_AT_START.to_string())
            }
            Change::PortRemoved { switch, port } if self.is_internal(switch, port) => {
                Verdict::Restart(NETDEV_AT_START.to_string())
            }
            Change::PortBackendChanged { old, new, .. }
                if *old == config::PortKind::Internal || *new == config::PortKind::Internal =>
            {
                Verdict::Restart(NETDEV_AT_START.to_string())
            }
            Change::UplinkAdded { .. }
            | Change::UplinkRemoved { .. }
            | Change::UplinkDriverChanged { .. }
            | Change::TeamAdded { .. }
            | Change::TeamRemoved { .. }
            | Change::TeamPolicyChanged { .. }
            | Change::TeamFailoverChanged { .. }
            | Change::TeamMembersChanged { .. } => team_verdict(c),
            Change::SwitchAdded { .. }
            | Change::SwitchRemoved { .. }
            | Change::MacTableChanged { .. }
            | Change::PortAdded { .. }
            | Change::PortRemoved { .. }
            | Change::PortBackendChanged { .. }
            | Change::PortGroupChanged { .. }
            | Change::PortVlanChanged { .. }
            | Change::PortSecurityChanged { .. }
            | Change::PortMacChanged { .. }
            | Change::PortSocketAccessChanged { .. }
            | Change::UplinkVlanChanged { .. }
            | Change::MetricsChanged { .. } => Verdict::Apply,
            Change::SriovPfAdded { .. }
            | Change::SriovPfRemoved { .. }
            | Change::SriovNumVfsChanged { .. }
            | Change::SriovVfChanged { .. } => Verdict::Apply,
            // `Change` is non-exhaustive: a kind of change `config` learns
            // later is refused until the daemon knows how to apply it.
            _ => Verdict::Unknown,
        }
    }

    fn is_internal(&self, switch: &str, port: &str) -> bool {
        self.config
            .switch(switch)
            .and_then(|s| s.port(port))
            .is_some_and(|p| p.kind == config::PortKind::Internal)
    }

    /// Re-reads the configuration (`file`, else the daemon's own file, else
    /// the built-in default), and applies what changed unless `dry_run`.
    /// On any error nothing changes (and the error is logged too).
    pub fn reload(
        &mut self,
        file: Option<&Path>,
        dry_run: bool,
    ) -> Result<protocol::ReloadReply, DaemonError> {
        let res = self.try_reload(file, dry_run);
        if let Err(e) = &res {
            tracing::error!("reload{}: {e}", if dry_run { " (dry run)" } else { "" });
        }
        if !dry_run {
            self.last_reload_ok = res.is_ok();
            self.last_reload_at = super::unix_now();
            if res.is_err() {
                self.reload_failures += 1;
            }
        }
        res
    }

    fn try_reload(
        &mut self,
        file: Option<&Path>,
        dry_run: bool,
    ) -> Result<protocol::ReloadReply, DaemonError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| self.config_file.clone());
        let new = load_config(&self.opts, file.as_deref())?;
        // A dry run also reads the VFs back: the drift a reload would
        // correct (nothing is written).
        let plan = dry_run.then(|| sriov_lines(&self.sriov.plan(&new)));
        let (checked, words, ignored) = self.check(new)?;
        // The endpoint's new address is bound now (also on a dry run, to
        // tell whether it can be): a taken one refuses the reload.
        let want = checked.config.metrics.map(|m| m.listen);
        let have = self.config.metrics.map(|m| m.listen);
        let listener = match want {
            Some(addr) if want != have => Some(self.bind_metrics(addr, have)?),
            _ => None,
        };
        let reply = protocol::ReloadReply {
            dry_run,
            config_file: file.clone(),
            changes: words,
            ignored,
            applied: !dry_run,
            sriov: plan.unwrap_or_default(),
        };
        if dry_run {
            return Ok(reply);
        }
        let mut reply = reply;
        let applied = self.apply(checked);
        // `apply` switched to the new configuration (fully or partially):
        // the endpoint follows it.
        if want != have && self.config.metrics.map(|m| m.listen) == want {
            self.metrics = None;
            if let Some(l) = listener {
                let addr = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
                self.serve_metrics(l).map_err(|e| {
                    DaemonError::Partial(vec![format!("metrics: cannot serve on {addr}: {e}")])
                })?;
            }
        }
        applied?;
        self.config_file = file;
        self.reloads += 1;
        // Every reload reconciles SR-IOV (drift is corrected too); its
        // failures are per VF and reported, never a refused reload.
        let r = self.sriov.apply(&self.config);
        r.log();
        reply.sriov = sriov_lines(&r);
        for c in &reply.changes {
            tracing::info!("reload: {c}");
        }
        Ok(reply)
    }

    /// Binds the endpoint's new address `addr` (the running one is on
    /// `have`); a failure refuses the reload.
    fn bind_metrics(
        &self,
        addr: std::net::SocketAddr,
        have: Option<std::net::SocketAddr>,
    ) -> Result<std::net::TcpListener, DaemonError> {
        crate::metrics::bind(addr).map_err(|e| {
            let hint = match have {
                Some(h) if h.port() == addr.port() && e.kind() == std::io::ErrorKind::AddrInUse => {
                    format!(
                        " (the running endpoint on {h} holds the port: reload with another port, or without `metrics:` first)"
                    )
                }
                _ => String::new(),
            };
            DaemonError::Refused(vec![format!("  metrics: cannot listen on {addr}: {e}{hint}")])
        })
    }

    /// Step 1 of a reload (see the module docs): classifies every change
    /// of `new`, builds every team and every switch's snapshot. Returns
    /// what it built, the applicable changes and the ignored ones in
    /// words; any refusal is an error.
    fn check(&self, new: Config) -> Result<(Checked, Vec<String>, Vec<String>), DaemonError> {
        let changes = config::diff(&self.config, &new);
        let mut words = Vec::new();
        let mut ignored = Vec::new();
        let mut blocked = Vec::new();
        for c in &changes {
            match self.classify(c) {
                Verdict::Apply => words.push(c.to_string()),
                Verdict::Ignore(why) => ignored.push(format!("{c} (ignored: {why})")),
                Verdict::Restart(why) => blocked.push(format!("  needs a restart: {c}{why}")),
                Verdict::Unknown => blocked.push(format!("  not supported by this daemon: {c}")),
            }
        }
        if !blocked.is_empty() {
            return Err(DaemonError::Refused(blocked));
        }
        // Every team's new settings must make a team, so applying them to
        // a running one cannot fail half-way.
        let mut teams = Vec::new();
        for sw in &new.switches {
            let mut built = Vec::new();
            for t in &sw.teams {
                let spec = team_spec(&sw.name, t);
                match Team::new(spec, backends::now()) {
                    Ok(team) => built.push(CheckedTeam {
                        name: t.name.clone(),
                        team,
                    }),
                    Err(e) => {
                        return Err(DaemonError::Refused(vec![format!(
                            "  team {}: {e}",
                            t.name
                        )]));
                    }
                }
            }
            teams.push(built);
        }
        let mut ids = self.ids.clone();
        let mut switches = Vec::new();
        for (sw, teams) in new.switches.iter().zip(teams) {
            let spec = switch_spec(sw, &mut ids)?;
            let snapshot = Snapshot::build(spec, 0).map_err(|e| DaemonError::Spec {
                switch: sw.name.clone(),
                source: SwitchError::Spec(e),
            })?;
            switches.push(CheckedSwitch { snapshot, teams });
        }
        let checked = Checked {
            config: new,
            changes,
            ids,
            switches,
        };
        Ok((checked, words, ignored))
    }

    /// Steps 2 and 3 of a reload (see the module docs).
    fn apply(&mut self, checked: Checked) -> Result<(), DaemonError> {
        let Checked {
            config: new,
            changes,
            ids,
            switches,
        } = checked;
        let old_sockets = server_sockets(&self.config);
        let mut prepared = Prepared::default();
        let mut running = match self.prepare(&new, switches, &ids, &mut prepared) {
            Ok(running) => running,
            Err(e) => {
                prepared.discard(&old_sockets);
                return Err(e);
            }
        };
        if let Err(e) = self.apply_socket_access(&new) {
            prepared.discard(&old_sockets);
            return Err(e);
        }
        let keep = server_sockets(&new);
        let mut errors = Vec::new();
        let mut retired: Vec<(String, VhostPort)> = Vec::new();
        let mut new_ports: BTreeMap<String, Vec<NewPort>> = BTreeMap::new();
        for p in prepared.ports {
            new_ports.entry(p.switch.clone()).or_default().push(p);
        }
        let mut teams = BTreeMap::new();
        for sw in &new.switches {
            let Some(checked) = running.remove(&sw.name) else {
                continue;
            };
            let ports = new_ports.remove(&sw.name).unwrap_or_default();
            self.commit_switch(sw, checked.snapshot, ports, &ids, &mut retired, &mut errors);
            teams.insert(sw.name.clone(), checked.teams);
        }
        errors.extend(self.apply_teams(&new, &changes, teams));
        for (name, port) in retired {
            retire(&name, port, &keep);
        }
        let removed: Vec<String> = self
            .switches
            .keys()
            .filter(|n| new.switch(n).is_none())
            .cloned()
            .collect();
        for name in removed {
            if let Some(mut r) = self.switches.remove(&name) {
                for (pname, p) in std::mem::take(&mut r.vhost) {
                    retire(&pname, p, &keep);
                }
                r.stop();
            }
        }
        for (name, r) in prepared.switches {
            self.switches.insert(name, r);
        }
        // Sockets handed over by retired ports: their files are gone now.
        for (sw, p, rx_pmd) in prepared.deferred {
            let (Some(r), Some(id)) = (self.switches.get_mut(&sw), ids.get(&p.name)) else {
                continue;
            };
            match create_vhost(&p, r.switch.pmd_count().max(1), rx_pmd) {
                Ok(Some((port, queues))) => {
                    if let Err(e) = r.switch.attach_port(id, queues) {
                        errors.push(format!("port {}: {}", p.name, chain(&e)));
                    }
                    tracing::info!("{}", attach_hint(&p.name, &port));
                    r.vhost.insert(p.name.clone(), port);
                }
                Ok(None) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        self.config = new;
        self.ids = ids;
        if errors.is_empty() {
            Ok(())
        } else {
            for e in &errors {
                tracing::error!("reload: {e}");
            }
            Err(DaemonError::Partial(errors))
        }
    }

    /// Step 3 for one running switch `sw` (as the new configuration has
    /// it): re-created ports give their queues back, `ports` (prepared for
    /// it) are attached, `snapshot` is published if its spec changed, and
    /// ports that left are detached. Ports to retire go to `retired`,
    /// failures to `errors`.
    fn commit_switch(
        &mut self,
        sw: &config::Switch,
        snapshot: Snapshot,
        ports: Vec<NewPort>,
        ids: &PortIds,
        retired: &mut Vec<(String, VhostPort)>,
        errors: &mut Vec<String>,
    ) {
        let Some(r) = self.switches.get_mut(&sw.name) else {
            return;
        };
        let old_sw = self.config.switch(&sw.name);
        let old_port = |name: &str| old_sw.and_then(|s| s.port(name));
        // Re-created ports: take the old queues back first.
        for p in &sw.ports {
            let recreated = old_port(&p.name).is_some_and(|o| o.kind != p.kind);
            if recreated && let Some(old) = r.vhost.remove(&p.name) {
                if let Some(id) = ids.get(&p.name)
                    && let Err(e) = r.switch.detach_port(id)
                {
                    errors.push(format!("port {}: {}", p.name, chain(&e)));
                }
                retired.push((p.name.clone(), old));
            }
        }
        for np in ports {
            if let Err(e) = r.switch.attach_port(np.id, np.queues) {
                errors.push(format!("port {}: {}", np.name, chain(&e)));
            }
            tracing::info!("{}", attach_hint(&np.name, &np.port));
            r.vhost.insert(np.name, np.port);
        }
        if r.switch.snapshot().spec() != snapshot.spec() {
            r.switch.publish(snapshot);
        }
        // Internal ports carry the switch's MTU on their TAP interface.
        if old_sw.is_some_and(|o| o.mtu != sw.mtu) {
            for p in sw
                .ports
                .iter()
                .filter(|p| p.kind == config::PortKind::Internal)
                .filter(|p| r.netdevs.ports.get(&p.name).is_some_and(|s| s.running))
            {
                if let Err(e) = dataplane::port::netdev::set_mtu(&p.name, sw.mtu) {
                    errors.push(format!("port {}: {}", p.name, chain(&e)));
                }
            }
        }
        // Ports that left this switch: detach after the update, so no
        // frame is steered to them any more.
        if let Some(old_sw) = old_sw {
            for op in &old_sw.ports {
                if sw.port(&op.name).is_some() {
                    continue;
                }
                if let Some(id) = self.ids.get(&op.name)
                    && let Err(e) = r.switch.detach_port(id)
                {
                    errors.push(format!("port {}: {}", op.name, chain(&e)));
                }
                if let Some(old) = r.vhost.remove(&op.name) {
                    retired.push((op.name.clone(), old));
                }
            }
        }
    }

    /// Reconfigures the running teams whose settings `new` changes (policy,
    /// member order and roles, failback, failure detection, notify
    /// switches, the members' VLAN mode): see
    /// [`crate::team_supervisor::TeamRuntime::reconfigure`]. The member sets are the
    /// running ones (a reload that changes one is refused) and every new
    /// team was built once in the check (`checked`, by switch: each
    /// running team's state is carried over into its new team here, so
    /// events since the check are kept), so this does not fail short of a
    /// bug; what does is returned. `changes` is the reload's diff.
    fn apply_teams(
        &self,
        new: &Config,
        changes: &[Change],
        mut checked: BTreeMap<String, Vec<CheckedTeam>>,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        for sw in &new.switches {
            let (Some(r), Some(old_sw)) =
                (self.switches.get(&sw.name), self.config.switch(&sw.name))
            else {
                continue;
            };
            let Some(sup) = &r.netdevs.supervisor else {
                continue;
            };
            let mut rows = None;
            for t in sup.teams() {
                let mut rt = t.lock().unwrap_or_else(PoisonError::into_inner);
                let (Some(nt), Some(ot)) = (sw.team(rt.name()), old_sw.team(rt.name())) else {
                    continue;
                };
                let what: Vec<String> = changes
                    .iter()
                    .filter(|c| match c {
                        Change::TeamPolicyChanged { switch, team, .. }
                        | Change::TeamMembersChanged { switch, team, .. }
                        | Change::TeamFailoverChanged { switch, team, .. } => {
                            *switch == sw.name && *team == nt.name
                        }
                        Change::UplinkVlanChanged { switch, uplink, .. } => {
                            *switch == sw.name && nt.members().any(|m| m == uplink)
                        }
                        _ => false,
                    })
                    .map(ToString::to_string)
                    .collect();
                let vlan = crate::translate::vlan_mode(&nt.vlan);
                if what.is_empty() && ot.vlan == nt.vlan && *rt.vlan() == vlan {
                    continue;
                }
                let rows = rows.get_or_insert_with(|| {
                    r.switch.mac_table().unwrap_or_else(|e| {
                        tracing::warn!(switch = %sw.name, "reload: cannot read the MAC table, no guest is announced: {e}");
                        Vec::new()
                    })
                });
                let Some(fresh) = checked
                    .get_mut(&sw.name)
                    .and_then(|ts| {
                        ts.iter()
                            .position(|c| c.name == nt.name)
                            .map(|i| ts.remove(i))
                    })
                    .map(|c| c.team)
                else {
                    // Every team of `new` was built by the check.
                    errors.push(format!("team {}: not built by the check", nt.name));
                    continue;
                };
                match rt.reconfigure(
                    nt,
                    fresh,
                    vlan,
                    rows,
                    &r.netdevs.uplink_ids,
                    &what,
                    backends::now(),
                ) {
                    Ok(moved) => {
                        tracing::info!(team = %nt.name, "reconfigured live; {moved} guest MAC(s) moved")
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        errors
    }

    /// Gives the sockets of running server ports whose owner, group or
    /// mode changed (same socket, same backend) their new settings, in
    /// place. If one fails, those already changed are set back and the
    /// reload is refused.
    fn apply_socket_access(&self, new: &Config) -> Result<(), DaemonError> {
        let mut done: Vec<(&str, &VhostPort, SocketPerms)> = Vec::new();
        for sw in &new.switches {
            let (Some(r), Some(old_sw)) =
                (self.switches.get(&sw.name), self.config.switch(&sw.name))
            else {
                continue;
            };
            for p in &sw.ports {
                let Some(op) = old_sw.port(&p.name) else {
                    continue;
                };
                let (Some(old), Some(now)) = (&op.socket_access, &p.socket_access) else {
                    continue;
                };
                if op.kind != p.kind || old == now {
                    continue;
                }
                let Some(v) = r.vhost.get(&p.name) else {
                    continue;
                };
                if let Err(e) = v.handle.set_socket_perms(socket_perms(now)) {
                    for (name, v, perms) in done.into_iter().rev() {
                        if let Err(e) = v.handle.set_socket_perms(perms) {
                            tracing::error!(port = name, error = %e, "cannot set the socket's old owner, group and mode back");
                        }
                    }
                    return Err(DaemonError::Refused(vec![format!(
                        "  port {}: socket {}: {now}: {e}",
                        p.name,
                        v.socket.display()
                    )]));
                }
                done.push((&p.name, v, socket_perms(old)));
            }
        }
        Ok(())
    }

    /// Server sockets of running ports that `new` removes or re-creates
    /// (with their switch, if it goes).
    fn retiring_sockets(&self, new: &Config) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        for old_sw in &self.config.switches {
            let new_sw = new.switch(&old_sw.name);
            for op in &old_sw.ports {
                let stays = new_sw
                    .and_then(|s| s.port(&op.name))
                    .is_some_and(|np| np.kind == op.kind);
                if !stays && let Some(sock) = server_socket(op) {
                    out.insert(socket_identity(sock));
                }
            }
        }
        out
    }

    /// Starts new switches and creates new or re-created vhost-user ports;
    /// touches nothing that runs. On error, `out` holds what it made so far.
    /// `switches` is what the check built, one per switch of `new`: a new
    /// switch starts with its snapshot and teams; those of running switches
    /// are returned by name, for the commit.
    fn prepare(
        &self,
        new: &Config,
        switches: Vec<CheckedSwitch>,
        ids: &PortIds,
        out: &mut Prepared,
    ) -> Result<BTreeMap<String, CheckedSwitch>, DaemonError> {
        let retiring = self.retiring_sockets(new);
        let mut running = BTreeMap::new();
        for (sw, checked) in new.switches.iter().zip(switches) {
            if let Some(r) = self.switches.get(&sw.name) {
                self.prepare_ports(sw, r, ids, &retiring, out)?;
                running.insert(sw.name.clone(), checked);
                continue;
            }
            let mut pmds = self.pmds.clone();
            let size = buf_size_for(sw.mtu).max(pmds.first().map_or(0, |p| p.buf_size));
            for p in &mut pmds {
                p.buf_size = size;
            }
            let teams = checked.teams.into_iter().map(|t| Ok(t.team)).collect();
            let (r, deferred) = start_switch(sw, checked.snapshot, teams, &pmds, ids, &retiring)?;
            out.switches.push((sw.name.clone(), r));
            out.deferred
                .extend(deferred.into_iter().map(|(p, rx)| (sw.name.clone(), p, rx)));
        }
        Ok(running)
    }

    /// Creates the new or re-created vhost-user ports of running switch
    /// `r` (`sw` as the new configuration has it) into `out`; a server port
    /// whose socket is `retiring` is deferred.
    fn prepare_ports(
        &self,
        sw: &config::Switch,
        r: &Running,
        ids: &PortIds,
        retiring: &BTreeSet<PathBuf>,
        out: &mut Prepared,
    ) -> Result<(), DaemonError> {
        let old_sw = self.config.switch(&sw.name);
        let n = r.switch.pmd_count().max(1);
        // Receive polling goes to the PMD with the fewest receive
        // rings (a port's queue pairs go round-robin from there).
        let mut load = vec![0usize; n];
        for v in r.vhost.values() {
            for &m in &v.rx_pmds {
                if let Some(l) = load.get_mut(m) {
                    *l += 1;
                }
            }
        }
        let add_load = |load: &mut Vec<usize>, p: &config::Port, first: usize| {
            for q in 0..port_queue_pairs(p) {
                if let Some(l) = load.get_mut((first + q) % n) {
                    *l += 1;
                }
            }
        };
        for p in &sw.ports {
            let fresh = match old_sw.and_then(|s| s.port(&p.name)) {
                None => true,
                Some(o) => o.kind != p.kind,
            };
            if !fresh {
                continue;
            }
            let rx_pmd = (0..n).min_by_key(|&i| load[i]).unwrap_or(0);
            if server_socket(p).is_some_and(|s| retiring.contains(&socket_identity(s))) {
                add_load(&mut load, p, rx_pmd);
                out.deferred.push((sw.name.clone(), p.clone(), rx_pmd));
                continue;
            }
            match create_vhost(p, n, rx_pmd) {
                Ok(Some((port, queues))) => {
                    add_load(&mut load, p, rx_pmd);
                    let Some(id) = ids.get(&p.name) else {
                        continue;
                    };
                    out.ports.push(NewPort {
                        switch: sw.name.clone(),
                        name: p.name.clone(),
                        id,
                        port,
                        queues,
                    });
                }
                // Internal ports: a reload that adds one is refused (they
                // are opened at start), so none is new here.
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A switch with uplinks u0..u3 and team bond0 as `team` (YAML flow
    /// mapping fields after the name).
    fn with_team(team: &str) -> Config {
        let yaml = format!(
            "switches:\n  - name: sw0\n    uplinks:\n      - {{ name: u0 }}\n      - {{ name: u1 }}\n      - {{ name: u2 }}\n      - {{ name: u3, driver: af-xdp }}\n    teams:\n      - {{ name: bond0, {team} }}\n"
        );
        config::parse_str(&yaml, "t.yaml").unwrap_or_else(|e| panic!("{yaml}\n{e}"))
    }

    /// Each change of `old -> new` with its verdict, in words.
    fn verdicts(old: &str, new: &str) -> Vec<(String, Verdict)> {
        config::diff(&with_team(old), &with_team(new))
            .iter()
            .map(|c| (c.to_string(), team_verdict(c)))
            .collect()
    }

    #[test]
    fn team_settings_and_order_apply_live_member_sets_need_a_restart() {
        let base = "policy: explicit-failover, active: [u0, u1], standby: [u2]";
        for (new, what) in [
            (
                "policy: port-id, active: [u0, u1], standby: [u2]",
                "bond0: policy explicit-failover -> port-id",
            ),
            (
                "policy: explicit-failover, active: [u1, u0], standby: [u2]",
                "bond0: members active u0, u1; standby u2 -> active u1, u0; standby u2",
            ),
            (
                "policy: explicit-failover, active: [u2], standby: [u0], unused: [u1]",
                "bond0: members active u0, u1; standby u2 -> active u2; standby u0; unused u1",
            ),
            (
                "policy: explicit-failover, active: [u0, u1], standby: [u2], failback: false, notify-switches: false",
                "bond0: failback on -> off, notify switches on -> off",
            ),
            (
                "policy: explicit-failover, active: [u0, u1], standby: [u2], failure-detection: beacon",
                "bond0: failure detection link -> beacon",
            ),
        ] {
            assert_eq!(verdicts(base, new), [(what.to_string(), Verdict::Apply)]);
        }
        let restart = |v: &[(String, Verdict)], want: &str| {
            assert!(
                v.iter()
                    .any(|(_, v)| matches!(v, Verdict::Restart(why) if why.contains(want))),
                "{want}: {v:?}"
            );
        };
        let v = verdicts(base, "policy: explicit-failover, active: [u0, u1, u3]");
        restart(&v, "adds u3, removes u2: team members are opened at start");
        let v = verdicts(
            base,
            "policy: explicit-failover, active: [u0], standby: [u2]",
        );
        restart(&v, "(removes u1:");
        // A policy change with a member added: the whole reload is
        // refused (the policy change alone would apply).
        let v = verdicts(base, "policy: port-id, active: [u0, u1, u2, u3]");
        assert!(v.iter().any(|(_, v)| *v == Verdict::Apply), "{v:?}");
        restart(&v, "adds u3");
    }

    #[test]
    fn uplinks_and_whole_teams_still_need_a_restart() {
        for c in [
            Change::UplinkDriverChanged {
                switch: "sw0".into(),
                uplink: "u0".into(),
                old: config::UplinkDriver::AfXdp,
                new: config::UplinkDriver::AfPacket,
            },
            Change::TeamRemoved {
                switch: "sw0".into(),
                team: "bond0".into(),
            },
            Change::UplinkRemoved {
                switch: "sw0".into(),
                uplink: "u0".into(),
            },
        ] {
            assert_eq!(
                team_verdict(&c),
                Verdict::Restart(NETDEV_AT_START.to_string()),
                "{c}"
            );
        }
    }
}
