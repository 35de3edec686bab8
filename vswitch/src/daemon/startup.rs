//! Start-up: the command line's options, reading the configuration, the
//! runtime directory, the PMD threads of each switch, the banner, and
//! starting one switch with its vhost-user ports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use config::{Config, ConfigError};
use dataplane::snapshot::Snapshot;
use dataplane::{IdlePolicy, PmdConfig, Switch};
use teaming::Team;

use super::ports::{create_vhost, server_socket, socket_identity};
use super::reload::Prepared;
use super::{DaemonError, Running};
use crate::backends::{self, Netdevs};
use crate::translate::PortIds;

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
    /// Where the daemon keeps what must outlive it (the SR-IOV settings
    /// it applied): `--state-dir`, default [`DEFAULT_STATE_DIR`].
    pub state_dir: PathBuf,
}

/// The default `--state-dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vswitch";

/// This host as the daemon sees it: the user and group database (NSS:
/// `/etc/passwd`, `/etc/group`, LDAP...) for the names in `socket-owner`
/// and `socket-group`, the network interfaces of the daemon's network
/// namespace for uplinks, and sysfs (`sriov_totalvfs`) for SR-IOV PFs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemHost;

impl config::Host for SystemHost {
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

    fn interface_exists(&self, name: &str) -> Result<Option<bool>, String> {
        let probe = dataplane::port::netdev::LinkProbe::new()
            .map_err(|e| format!("looking up interface `{name}`: {e}"))?;
        Ok(Some(probe.index(name).is_some()))
    }

    fn sriov_pf(&self, name: &str) -> Result<config::PfLookup, String> {
        if self.interface_exists(name)? == Some(false) {
            return Ok(config::PfLookup::Missing);
        }
        let path = std::path::Path::new("/sys/class/net")
            .join(name)
            .join("device/sriov_totalvfs");
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse()
                .map(config::PfLookup::TotalVfs)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(config::PfLookup::NotSriov),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

/// Reads the configuration: `file`, or the built-in default when `None`,
/// with the command line's runtime directory; user and group names
/// resolve on this host.
pub fn load_config(opts: &Options, file: Option<&Path>) -> Result<Config, ConfigError> {
    match file {
        Some(f) => config::load_file_with(f, opts.runtime_dir.as_deref(), &SystemHost),
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

pub(super) fn idle_name(p: IdlePolicy) -> &'static str {
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
    out.push_str(&crate::client::format_sriov_summary("", cfg));
    out
}

/// Starts one switch with its validated `snapshot`, creates its vhost-user
/// ports and opens its kernel-backed ports and `teams` (built from
/// `sw.teams`, one each, in order; see [`backends::start`]).
/// Server ports whose socket is in `defer` are not created but returned
/// with their receive PMD, for the caller to create later.
pub(super) fn start_switch(
    sw: &config::Switch,
    snapshot: Snapshot,
    teams: Vec<Result<Team, String>>,
    pmds: &[PmdConfig],
    ids: &PortIds,
    defer: &BTreeSet<PathBuf>,
) -> Result<(Running, Vec<(config::Port, usize)>), DaemonError> {
    let switch = Switch::start_from(snapshot, pmds).map_err(|source| DaemonError::Start {
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
    running.netdevs = backends::start(sw, ids, &running.switch, sw.ports.len(), teams);
    Ok((running, deferred))
}
