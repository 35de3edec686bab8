//! The running daemon: the configuration in force, the switches built from
//! it, their vhost-user ports, and live reload.
//!
//! # Reload
//!
//! [`Daemon::reload`] reads and validates the file, computes
//! [`config::diff`], and applies it all or nothing:
//!
//! 1. *Check.* Every change is classified: applicable to the running
//!    switches, ignored (a file setting the command line overrides),
//!    needing a restart (PMD cores, idle policy, paths, an MTU larger than
//!    the PMDs' packet buffers; internal ports, uplinks and teams added or
//!    removed, an uplink's driver, a team's member set: they are opened at
//!    start). The new dataplane specs are built and validated, and so is
//!    every team's new teaming spec. Any refusal, or an invalid file,
//!    returns an error and changes nothing.
//! 2. *Prepare.* New switches are started and new or re-created vhost-user
//!    ports are created (their sockets appear), without touching anything
//!    running. A failure here undoes what was prepared. Exception: a
//!    server port whose socket path a retiring port still listens on (a
//!    port re-created on the same path, or a path handed from a removed
//!    port to a new one) is created at the end of step 3, because a
//!    listener deletes its socket file when it closes; a failure there is
//!    reported as a partial reload.
//! 3. *Commit.* Per switch: the queues of re-created ports are taken back,
//!    new queues attached, the new spec published with
//!    [`dataplane::Switch::update`] (PMDs switch between bursts; only ports
//!    whose spec changed lose their learned MACs, so the others keep
//!    forwarding), then running teams whose policy, member order or roles,
//!    failback, failure detection, notify-switches or VLAN changed are
//!    reconfigured in place ([`crate::teams::TeamRuntime::reconfigure`]:
//!    link states kept, new member choice published, moved guests
//!    announced), then removed ports are detached, their control threads
//!    stopped and their server sockets deleted. Removed switches stop last.
//!
//! A change of only the owner, group or mode of a server port's socket
//! is applied to the socket file in place, between steps 2 and 3 (the port
//! keeps its connection); if it fails, what was changed is set back and
//! the reload is refused. User and group names are resolved when the file
//! is read ([`SystemAccounts`]): an unknown one is a positioned error, so
//! such a reload changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use config::{Change, Config, ConfigError};
use dataplane::vhost::{SocketPerms, SocketRole, VhostError, VhostUserPort, VhostUserSpec};
use dataplane::{DropReason, IdlePolicy, PmdConfig, PortId, PortQueue, Switch, SwitchError};

use crate::backends::{self, Netdevs};
use crate::protocol::{self, Request, Response};
use crate::translate::{PortIds, TranslateError, switch_spec};

/// How often [`Daemon::housekeeping`] runs.
pub const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Runtime directory when neither the command line nor the file gives one.
pub const DEFAULT_RUNTIME_DIR: &str = config::DEFAULT_RUNTIME_DIR;

/// What the command line says, kept for reloads.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The YAML file (`None`: the built-in default).
    pub config_file: Option<PathBuf>,
    /// Overrides the file's runtime directory.
    pub runtime_dir: Option<PathBuf>,
    /// Overrides the file's PMD cores.
    pub pmd_cores: Option<Vec<usize>>,
    /// Overrides the file's idle policy.
    pub idle: Option<config::IdlePolicy>,
}

/// Errors of starting, reloading or controlling the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration could not be read or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration does not fit the dataplane.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// The dataplane refused a switch's spec.
    #[error("switch {switch}: {}", chain(.source))]
    Spec {
        /// Switch name.
        switch: String,
        /// Cause.
        source: SwitchError,
    },
    /// A switch could not be started.
    #[error("starting switch {switch}: {}", chain(.source))]
    Start {
        /// Switch name.
        switch: String,
        /// Cause.
        source: SwitchError,
    },
    /// A vhost-user port could not be created.
    #[error("port {port}: vhost-user socket {}: {}", socket.display(), chain(.source))]
    Vhost {
        /// Port name.
        port: String,
        /// Socket path.
        socket: PathBuf,
        /// Cause.
        source: VhostError,
    },
    /// A port could not be handed to the PMDs.
    #[error("attaching port {port}: {}", chain(.source))]
    Attach {
        /// Port name.
        port: String,
        /// Cause.
        source: SwitchError,
    },
    /// The runtime directory could not be created.
    #[error("creating runtime dir {}: {source}", dir.display())]
    RuntimeDir {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The reload holds changes that cannot be applied to the running
    /// daemon; nothing was changed.
    #[error("reload refused, nothing changed:\n{}", .0.join("\n"))]
    Refused(Vec<String>),
    /// Applying a reload failed half-way (a PMD did not answer).
    #[error("reload partially applied:\n{}", .0.join("\n"))]
    Partial(Vec<String>),
}

/// `error: cause: cause`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The host's user and group database (NSS: `/etc/passwd`, `/etc/group`,
/// LDAP...), for the names in `socket-owner` and `socket-group`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemAccounts;

impl config::Accounts for SystemAccounts {
    fn uid(&self, name: &str) -> Result<Option<u32>, String> {
        nix::unistd::User::from_name(name)
            .map(|u| u.map(|u| u.uid.as_raw()))
            .map_err(|e| format!("looking up user `{name}`: {e}"))
    }

    fn gid(&self, name: &str) -> Result<Option<u32>, String> {
        nix::unistd::Group::from_name(name)
            .map(|g| g.map(|g| g.gid.as_raw()))
            .map_err(|e| format!("looking up group `{name}`: {e}"))
    }
}

/// Reads the configuration: `file`, or the built-in default when `None`,
/// with the command line's runtime directory; user and group names
/// resolve on this host.
pub fn load_config(opts: &Options, file: Option<&Path>) -> Result<Config, ConfigError> {
    match file {
        Some(f) => config::load_file_with(f, opts.runtime_dir.as_deref(), &SystemAccounts),
        None => config::default_config(
            opts.runtime_dir
                .as_deref()
                .unwrap_or_else(|| Path::new(DEFAULT_RUNTIME_DIR)),
        ),
    }
}

/// Creates the runtime directory, and any missing parent, mode 0755 (only
/// its owner may add, remove or rename sockets in it). An existing one is
/// left as it is, with a warning if others may write to it: they could
/// swap the sockets in it for their own.
pub fn create_runtime_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o022 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:04o}", mode & 0o7777),
            "the runtime directory is writable by group or others: they could replace its \
             sockets with their own; use a directory only its owner can write to"
        );
    }
    Ok(())
}

/// The dataplane's view of a socket's owner, group and mode.
fn socket_perms(a: &config::SocketAccess) -> SocketPerms {
    SocketPerms {
        mode: a.mode,
        uid: a.owner.as_ref().map(|o| o.id),
        gid: a.group.as_ref().map(|g| g.id),
    }
}

/// Packet buffer size that holds a frame of `mtu`: MTU + Ethernet header
/// + two tags, after the headroom (never below the default).
pub fn buf_size_for(mtu: u16) -> usize {
    (dataplane::packet::HEADROOM + usize::from(mtu) + 22).max(PmdConfig::default().buf_size)
}

/// The PMD threads of each switch: cores and idle policy from the command
/// line or the file, buffers for the largest MTU of any switch.
pub fn pmd_configs(opts: &Options, cfg: &Config) -> Vec<PmdConfig> {
    let idle = match opts.idle.unwrap_or(cfg.runtime.idle) {
        config::IdlePolicy::Busy => IdlePolicy::Busy,
        config::IdlePolicy::Adaptive => IdlePolicy::adaptive(),
    };
    let cores: Vec<Option<usize>> = match &opts.pmd_cores {
        Some(list) => list.iter().map(|&c| Some(c)).collect(),
        None if cfg.runtime.pmd_cores.is_empty() => vec![None],
        None => cfg
            .runtime
            .pmd_cores
            .iter()
            .map(|&c| Some(c as usize))
            .collect(),
    };
    let max_mtu = cfg
        .switches
        .iter()
        .map(|s| s.mtu)
        .max()
        .unwrap_or(config::DEFAULT_MTU);
    let buf_size = buf_size_for(max_mtu);
    cores
        .into_iter()
        .map(|core| PmdConfig {
            core,
            idle,
            buf_size,
            ..PmdConfig::default()
        })
        .collect()
}

fn idle_name(p: IdlePolicy) -> &'static str {
    match p {
        IdlePolicy::Busy => "busy",
        IdlePolicy::Adaptive { .. } => "adaptive",
    }
}

/// What `vswitchd --check` and the start-up banner print.
pub fn describe(cfg: &Config, pmds: &[PmdConfig]) -> String {
    let cores: Vec<String> = pmds
        .iter()
        .map(|p| p.core.map_or("any CPU".to_string(), |c| format!("CPU {c}")))
        .collect();
    let mut out = format!(
        "vswitchd: {} PMD thread(s) on {}, idle policy {}, runtime dir {}, control socket {}\n",
        pmds.len(),
        cores.join(", "),
        pmds.first().map_or("adaptive", |p| idle_name(p.idle)),
        cfg.runtime.runtime_dir.display(),
        cfg.runtime.control_socket.display()
    );
    if cfg.switches.len() > 1 && pmds.first().is_some_and(|p| p.idle == IdlePolicy::Busy) {
        // Each switch has its own PMD threads on the same cores: busy
        // pollers hand a core to each other only at scheduler ticks
        // (benches/packet_rate.py measured 3.6x less with two switches).
        out.push_str(&format!(
            "note: each of the {} switches busy-polls with its own PMD thread(s) on these \
             cores, and they take turns only at scheduler ticks: `--idle adaptive` lets them share\n",
            cfg.switches.len()
        ));
    }
    for sw in &cfg.switches {
        out.push_str(&format!("switch {} (MTU {}):\n", sw.name, sw.mtu));
        for p in &sw.ports {
            out.push_str(&format!(
                "  port {}: {}; port group {}; {}; {}\n",
                p.name, p.kind, p.port_group, p.vlan, p.security
            ));
        }
        for u in &sw.uplinks {
            out.push_str(&format!("  uplink {}: {}\n", u.name, u.vlan));
        }
    }
    out
}

/// A vhost-user port the daemon runs.
#[derive(Debug)]
struct VhostPort {
    handle: VhostUserPort,
    socket: PathBuf,
    role: SocketRole,
    /// The PMD polling each queue pair's receive ring.
    rx_pmds: Vec<usize>,
    /// Connected at the last housekeeping pass.
    was_connected: bool,
}

/// A running switch and the backends of its ports.
#[derive(Debug)]
struct Running {
    switch: Switch,
    /// Packet buffer size of its PMDs: bounds the MTU a reload may set.
    buf_size: usize,
    /// vhost-user ports by name.
    vhost: BTreeMap<String, VhostPort>,
    /// Uplinks, teams and internal ports, and the team supervisor.
    netdevs: Netdevs,
}

impl Running {
    /// Stops the team supervisor, then the PMDs.
    fn stop(&mut self) {
        self.netdevs.supervisor = None;
        self.switch.shutdown();
    }
}

/// A port created by a reload, not yet attached.
#[derive(Debug)]
struct NewPort {
    switch: String,
    name: String,
    id: PortId,
    port: VhostPort,
    queues: Vec<PortQueue>,
}

/// What a reload created before committing.
#[derive(Debug, Default)]
struct Prepared {
    switches: Vec<(String, Running)>,
    ports: Vec<NewPort>,
    /// Ports (switch, port, receive PMD) whose server socket path a
    /// retiring port still holds: created only after it is gone, because
    /// a listener deletes its socket file when it closes.
    deferred: Vec<(String, config::Port, usize)>,
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

/// A report's lines for a reply: changes, then warnings and errors.
fn sriov_lines(r: &crate::sriov::SriovReport) -> Vec<String> {
    r.changes()
        .into_iter()
        .chain(r.warnings().into_iter().map(|w| format!("warning: {w}")))
        .chain(r.errors().into_iter().map(|e| format!("error: {e}")))
        .collect()
}

/// How a reload treats one change.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Apply,
    Ignore(&'static str),
    Restart(String),
    NotImplemented,
}

/// The daemon's state. Every method runs on the control plane, under the
/// caller's lock.
#[derive(Debug)]
pub struct Daemon {
    opts: Options,
    config: Config,
    config_file: Option<PathBuf>,
    pmds: Vec<PmdConfig>,
    ids: PortIds,
    switches: BTreeMap<String, Running>,
    reloads: u64,
    /// SR-IOV: creates, configures and releases the configured VFs.
    sriov: crate::sriov::SriovService,
}

fn vhost_role(mode: config::VhostMode) -> SocketRole {
    match mode {
        config::VhostMode::Server => SocketRole::Server,
        config::VhostMode::Client => SocketRole::Client,
    }
}

/// Queue pairs of a vhost-user port (1 for anything else).
fn port_queue_pairs(p: &config::Port) -> usize {
    match &p.kind {
        config::PortKind::VhostUser { queues, .. } => usize::from(*queues).max(1),
        config::PortKind::Internal => 1,
    }
}

fn create_vhost(
    p: &config::Port,
    pmd_count: usize,
    rx_pmd: usize,
) -> Result<Option<(VhostPort, Vec<PortQueue>)>, DaemonError> {
    let config::PortKind::VhostUser {
        socket,
        mode,
        queues,
    } = &p.kind
    else {
        return Ok(None);
    };
    let role = vhost_role(*mode);
    let mut spec = VhostUserSpec::new(&p.name, socket, role, pmd_count);
    spec.rx_pmd = rx_pmd;
    spec.queue_pairs = usize::from(*queues);
    if let Some(a) = &p.socket_access {
        spec.perms = socket_perms(a);
    }
    let (handle, queues) = VhostUserPort::new(spec).map_err(|source| DaemonError::Vhost {
        port: p.name.clone(),
        socket: socket.clone(),
        source,
    })?;
    Ok(Some((
        VhostPort {
            rx_pmds: handle.rx_pmds(),
            handle,
            socket: socket.clone(),
            role,
            was_connected: false,
        },
        queues,
    )))
}

/// Stops a vhost-user port and makes sure its server socket is gone
/// (the listener deletes it when it closes) unless `keep` holds the path.
fn retire(name: &str, port: VhostPort, keep: &BTreeSet<PathBuf>) {
    let VhostPort {
        handle,
        socket,
        role,
        ..
    } = port;
    drop(handle);
    if role == SocketRole::Server
        && !keep.contains(&socket_identity(&socket))
        && let Err(e) = std::fs::remove_file(&socket)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(port = name, socket = %socket.display(), error = %e, "cannot remove socket");
    }
}

/// The socket a port listens on, if it is a vhost-user server.
fn server_socket(p: &config::Port) -> Option<&PathBuf> {
    match &p.kind {
        config::PortKind::VhostUser {
            socket,
            mode: config::VhostMode::Server,
            ..
        } => Some(socket),
        _ => None,
    }
}

/// Server sockets of a configuration, as [`socket_identity`]s.
fn server_sockets(cfg: &Config) -> BTreeSet<PathBuf> {
    cfg.switches
        .iter()
        .flat_map(|s| &s.ports)
        .filter_map(server_socket)
        .map(|p| socket_identity(p))
        .collect()
}

/// The file a socket path names: its directory resolved (symlinks,
/// `..`), so two spellings of one socket compare equal. Falls back to
/// the path itself when the directory does not exist.
fn socket_identity(path: &Path) -> PathBuf {
    match (path.parent().map(Path::canonicalize), path.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

impl Prepared {
    /// Undoes a failed reload's preparations.
    fn discard(self, keep: &BTreeSet<PathBuf>) {
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

/// Starts one switch with its spec and creates its vhost-user ports.
/// Server ports whose socket is in `defer` are not created but returned
/// with their receive PMD, for the caller to create later.
fn start_switch(
    sw: &config::Switch,
    spec: dataplane::SwitchSpec,
    pmds: &[PmdConfig],
    ids: &PortIds,
    defer: &BTreeSet<PathBuf>,
) -> Result<(Running, Vec<(config::Port, usize)>), DaemonError> {
    let switch = Switch::start(spec, pmds).map_err(|source| DaemonError::Start {
        switch: sw.name.clone(),
        source,
    })?;
    let mut running = Running {
        switch,
        buf_size: pmds
            .first()
            .map_or_else(|| buf_size_for(sw.mtu), |p| p.buf_size),
        vhost: BTreeMap::new(),
        netdevs: Netdevs::default(),
    };
    let n = running.switch.pmd_count().max(1);
    let mut deferred = Vec::new();
    for (i, p) in sw.ports.iter().enumerate() {
        let Some(id) = ids.get(&p.name) else { continue };
        if server_socket(p).is_some_and(|s| defer.contains(&socket_identity(s))) {
            deferred.push((p.clone(), i % n));
            continue;
        }
        // Spread the ports' receive polling over the PMDs.
        match create_vhost(p, n, i % n) {
            Ok(Some((port, queues))) => {
                let attached = running.switch.attach_port(id, queues);
                running.vhost.insert(p.name.clone(), port);
                if let Err(source) = attached {
                    Prepared {
                        switches: vec![(sw.name.clone(), running)],
                        ..Prepared::default()
                    }
                    .discard(&BTreeSet::new());
                    return Err(DaemonError::Attach {
                        port: p.name.clone(),
                        source,
                    });
                }
            }
            // Internal ports: below, with the uplinks.
            Ok(None) => {}
            Err(e) => {
                Prepared {
                    switches: vec![(sw.name.clone(), running)],
                    ..Prepared::default()
                }
                .discard(&BTreeSet::new());
                return Err(e);
            }
        }
    }
    running.netdevs = backends::start(sw, ids, &running.switch, sw.ports.len());
    Ok((running, deferred))
}

/// The QEMU arguments that attach a guest to a server port, or what a
/// client port does.
fn attach_hint(name: &str, port: &VhostPort) -> String {
    let pairs = port.rx_pmds.len();
    let (queues, mq) = if pairs > 1 {
        (
            format!(",queues={pairs}"),
            format!(
                ",mq=on,vectors={} (and -smp {pairs} or more)",
                2 * pairs + 2
            ),
        )
    } else {
        (String::new(), String::new())
    };
    match port.role {
        SocketRole::Server => format!(
            "port {name}: attach a QEMU guest with -chardev socket,id={name},path={},reconnect-ms=1000 -netdev vhost-user,id=n-{name},chardev={name}{queues} -device virtio-net-pci,netdev=n-{name}{mq} (guest memory must be shared: -object memory-backend-memfd,id=mem,size=512M,share=on -machine memory-backend=mem)",
            port.socket.display()
        ),
        SocketRole::Client => format!(
            "port {name}: connecting to {} (client role, reconnects)",
            port.socket.display()
        ),
    }
}

impl Daemon {
    /// Builds and starts every switch of `cfg` and its vhost-user ports.
    pub fn start(opts: Options, cfg: Config) -> Result<Daemon, DaemonError> {
        let pmds = pmd_configs(&opts, &cfg);
        let mut ids = PortIds::default();
        let specs = cfg
            .switches
            .iter()
            .map(|sw| switch_spec(sw, &mut ids))
            .collect::<Result<Vec<_>, _>>()?;
        create_runtime_dir(&cfg.runtime.runtime_dir).map_err(|source| DaemonError::RuntimeDir {
            dir: cfg.runtime.runtime_dir.clone(),
            source,
        })?;
        let mut daemon = Daemon {
            config_file: opts.config_file.clone(),
            opts,
            config: cfg.clone(),
            pmds,
            ids,
            switches: BTreeMap::new(),
            reloads: 0,
            sriov: crate::sriov::SriovService::system(),
        };
        for (sw, spec) in cfg.switches.iter().zip(specs) {
            match start_switch(sw, spec, &daemon.pmds, &daemon.ids, &BTreeSet::new()) {
                Ok((r, _)) => {
                    daemon.switches.insert(sw.name.clone(), r);
                }
                Err(e) => {
                    daemon.shutdown();
                    return Err(e);
                }
            }
        }
        // SR-IOV never fails start-up: its problems are per VF, logged.
        let r = daemon.sriov.apply(&daemon.config);
        r.log();
        Ok(daemon)
    }

    /// Periodic upkeep, every [`HOUSEKEEPING_INTERVAL`]: a vhost-user port
    /// whose frontend went away forgets the MACs learned on it. Its guest
    /// may be running elsewhere now (live migration): its frames then come
    /// in from an uplink, and while the MAC still pointed at the local port
    /// they would be dropped as reflections and local guests would keep
    /// sending to the empty port until ageing (300 s). Configured MACs are
    /// static and stay.
    pub fn housekeeping(&mut self) {
        let Daemon { switches, ids, .. } = self;
        for r in switches.values_mut() {
            for (name, v) in r.vhost.iter_mut() {
                let now = v.handle.connected();
                if v.was_connected
                    && !now
                    && let Some(id) = ids.get(name)
                {
                    match r.switch.flush_macs(None, Some(id)) {
                        Ok(n) => tracing::info!(
                            port = %name,
                            "frontend disconnected: {n} learned MAC(s) forgotten"
                        ),
                        Err(e) => tracing::warn!(port = %name, "cannot flush MACs: {e}"),
                    }
                }
                v.was_connected = now;
            }
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The PMD threads each switch runs.
    pub fn pmds(&self) -> &[PmdConfig] {
        &self.pmds
    }

    /// For each vhost-user port, how to attach a guest (server) or where
    /// it connects (client), in file order.
    pub fn attach_hints(&self) -> Vec<String> {
        self.config
            .switches
            .iter()
            .flat_map(|sw| {
                sw.ports.iter().filter_map(|p| {
                    self.switches
                        .get(&sw.name)
                        .and_then(|r| r.vhost.get(&p.name))
                        .map(|v| attach_hint(&p.name, v))
                })
            })
            .collect()
    }

    /// Answers one control request.
    pub fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::SriovShow => Response::success(&self.sriov.show()),
            Request::SriovAttachInfo { vf } => match self.sriov.attach_info(&vf) {
                Ok(a) => Response::success(&a),
                Err(e) => Response::failure(e.to_string()),
            },
            Request::SriovRelease { vf } => match self.sriov.release(&vf) {
                Ok(o) => Response::success(&o),
                Err(e) => Response::failure(e.to_string()),
            },
            Request::Version => Response::success(&protocol::VersionReply {
                version: env!("CARGO_PKG_VERSION").to_string(),
                protocol: protocol::PROTOCOL_VERSION,
            }),
            Request::Status => Response::success(&self.status()),
            Request::Stats => Response::success(&self.stats()),
            Request::MacTable => match self.mac_tables() {
                Ok(t) => Response::success(&t),
                Err(e) => Response::failure(e.to_string()),
            },
            Request::FdbFlush { switch, vlan, port } => {
                match self.fdb_flush(switch.as_deref(), vlan, port.as_deref()) {
                    Ok(r) => Response::success(&r),
                    Err(e) => Response::failure(e),
                }
            }
            Request::VlanShow => Response::success(&self.vlans()),
            Request::PmdShow => Response::success(&self.pmd_show()),
            Request::Reload {
                config: Some(path), ..
            } if !path.is_absolute() => Response::failure(format!(
                "{}: the config path must be absolute (the daemon does not share the client's working directory)",
                path.display()
            )),
            Request::Reload { dry_run, config } => match self.reload(config.as_deref(), dry_run) {
                Ok(r) => Response::success(&r),
                Err(e) => Response::failure(e.to_string()),
            },
            Request::TeamShow { team } => match self.team_show(team.as_deref()) {
                Ok(r) => Response::success(&r),
                Err(e) => Response::failure(e),
            },
            Request::TeamExplain { team, flow } => match self.team_explain(&team, &flow) {
                Ok(r) => Response::success(&r),
                Err(e) => Response::failure(e),
            },
        }
    }

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
                let frame = crate::teams::flow_frame(flow, port.mac.map(|m| m.0))?;
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
                    match m {
                        config::VlanMode::Access(v) => {
                            ids.insert(v.get());
                        }
                        config::VlanMode::Trunk { allowed, native } => {
                            ids.extend(native.map(config::VlanId::get));
                            if !carries_all(m) {
                                ids.extend(allowed.iter().map(config::VlanId::get));
                            }
                        }
                        config::VlanMode::GuestTagging => {}
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
                                let untagged = match m {
                                    config::VlanMode::Access(_) => true,
                                    config::VlanMode::Trunk { native, .. } => {
                                        native.is_some_and(|n| n.get() == vid)
                                    }
                                    // The dataplane runs guest tagging with
                                    // no native VLAN: everything tagged.
                                    config::VlanMode::GuestTagging => false,
                                };
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
            | Change::UplinkVlanChanged { .. } => Verdict::Apply,
            Change::SriovPfAdded { .. }
            | Change::SriovPfRemoved { .. }
            | Change::SriovNumVfsChanged { .. }
            | Change::SriovVfChanged { .. } => Verdict::Apply,
            _ => Verdict::NotImplemented,
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
        let changes = config::diff(&self.config, &new);
        let mut words = Vec::new();
        let mut ignored = Vec::new();
        let mut blocked = Vec::new();
        for c in &changes {
            match self.classify(c) {
                Verdict::Apply => words.push(c.to_string()),
                Verdict::Ignore(why) => ignored.push(format!("{c} (ignored: {why})")),
                Verdict::Restart(why) => blocked.push(format!("  needs a restart: {c}{why}")),
                Verdict::NotImplemented => blocked.push(format!("  not implemented yet: {c}")),
            }
        }
        if !blocked.is_empty() {
            return Err(DaemonError::Refused(blocked));
        }
        // Every team's new settings must make a team, so applying them to
        // a running one cannot fail half-way.
        for sw in &new.switches {
            for t in &sw.teams {
                if let Err(e) = teaming::Team::new(
                    crate::teams::team_spec(&sw.name, t),
                    teaming::Timestamp::ZERO,
                ) {
                    return Err(DaemonError::Refused(vec![format!(
                        "  team {}: {e}",
                        t.name
                    )]));
                }
            }
        }
        let mut ids = self.ids.clone();
        let mut specs = Vec::new();
        for sw in &new.switches {
            let spec = switch_spec(sw, &mut ids)?;
            dataplane::snapshot::Snapshot::build(spec.clone(), 0).map_err(|e| {
                DaemonError::Spec {
                    switch: sw.name.clone(),
                    source: SwitchError::Spec(e),
                }
            })?;
            specs.push(spec);
        }
        let reply = protocol::ReloadReply {
            dry_run,
            config_file: file.clone(),
            changes: words,
            ignored,
            applied: !dry_run,
            sriov: Vec::new(),
        };
        if dry_run {
            return Ok(reply);
        }
        let mut reply = reply;
        self.apply(new, specs, ids)?;
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

    /// Steps 2 and 3 of a reload (see the module docs).
    fn apply(
        &mut self,
        new: Config,
        specs: Vec<dataplane::SwitchSpec>,
        ids: PortIds,
    ) -> Result<(), DaemonError> {
        let old_sockets = server_sockets(&self.config);
        let mut prepared = Prepared::default();
        if let Err(e) = self.prepare(&new, &specs, &ids, &mut prepared) {
            prepared.discard(&old_sockets);
            return Err(e);
        }
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
        for (sw, spec) in new.switches.iter().zip(specs) {
            let Some(r) = self.switches.get_mut(&sw.name) else {
                continue;
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
            for np in new_ports.remove(&sw.name).unwrap_or_default() {
                if let Err(e) = r.switch.attach_port(np.id, np.queues) {
                    errors.push(format!("port {}: {}", np.name, chain(&e)));
                }
                tracing::info!("{}", attach_hint(&np.name, &np.port));
                r.vhost.insert(np.name, np.port);
            }
            if r.switch.snapshot().spec() != &spec
                && let Err(e) = r.switch.update(spec)
            {
                errors.push(format!("switch {}: {}", sw.name, chain(&e)));
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
        errors.extend(self.apply_teams(&new));
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

    /// Reconfigures the running teams whose settings `new` changes (policy,
    /// member order and roles, failback, failure detection, notify
    /// switches, the members' VLAN mode): see
    /// [`crate::teams::TeamRuntime::reconfigure`]. The member sets are the
    /// running ones (a reload that changes one is refused) and every new
    /// team was built once in the check, so this does not fail short of a
    /// bug; what does is returned.
    fn apply_teams(&self, new: &Config) -> Vec<String> {
        let mut errors = Vec::new();
        let changes = config::diff(&self.config, new);
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
                match rt.reconfigure(
                    nt,
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
    fn prepare(
        &self,
        new: &Config,
        specs: &[dataplane::SwitchSpec],
        ids: &PortIds,
        out: &mut Prepared,
    ) -> Result<(), DaemonError> {
        let retiring = self.retiring_sockets(new);
        for (sw, spec) in new.switches.iter().zip(specs) {
            let Some(r) = self.switches.get(&sw.name) else {
                let mut pmds = self.pmds.clone();
                let size = buf_size_for(sw.mtu).max(pmds.first().map_or(0, |p| p.buf_size));
                for p in &mut pmds {
                    p.buf_size = size;
                }
                match start_switch(sw, spec.clone(), &pmds, ids, &retiring) {
                    Ok((r, deferred)) => {
                        out.switches.push((sw.name.clone(), r));
                        out.deferred
                            .extend(deferred.into_iter().map(|(p, rx)| (sw.name.clone(), p, rx)));
                    }
                    Err(e) => return Err(e),
                }
                continue;
            };
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
                    Ok(None) => {
                        tracing::warn!(port = %p.name, "internal (TAP) ports are not implemented yet: no device is created");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Stops everything: vhost-user control threads first (their server
    /// sockets are removed), then the PMDs. Returns one line of counters
    /// per port, for the log.
    pub fn shutdown(&mut self) -> Vec<String> {
        let sriov = self.sriov.shutdown();
        sriov.log();
        let none = BTreeSet::new();
        for r in self.switches.values_mut() {
            for (name, p) in std::mem::take(&mut r.vhost) {
                retire(&name, p, &none);
            }
        }
        let mut lines = Vec::new();
        for sw in &self.config.switches {
            let Some(r) = self.switches.get_mut(&sw.name) else {
                continue;
            };
            r.stop();
            for p in &sw.ports {
                if let Some(id) = self.ids.get(&p.name) {
                    let st = r.switch.port_stats(id);
                    lines.push(format!(
                        "port {}: rx {} frames, tx {} frames, tx dropped {}, dropped on ingress {}",
                        p.name,
                        st.rx_packets,
                        st.tx_packets,
                        st.tx_dropped,
                        st.total_drops()
                    ));
                }
            }
        }
        self.switches.clear();
        lines.extend(
            sriov_lines(&sriov)
                .into_iter()
                .map(|l| format!("sriov: {l}")),
        );
        lines
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.switches.is_empty() {
            self.shutdown();
        }
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

/// The daemon behind the lock the control socket and the signal loop share.
#[derive(Debug, Clone)]
pub struct Shared(Arc<Mutex<Daemon>>);

impl Shared {
    /// Shares `daemon`.
    pub fn new(daemon: Daemon) -> Shared {
        Shared(Arc::new(Mutex::new(daemon)))
    }

    /// Locks the daemon. A panic under the lock does not stop the daemon
    /// from answering afterwards.
    pub fn lock(&self) -> MutexGuard<'_, Daemon> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl crate::control::Handler for Shared {
    fn handle(&self, req: Request) -> Response {
        self.lock().handle(req)
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
