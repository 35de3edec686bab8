//! The running daemon: the configuration in force, the switches built from
//! it, their vhost-user ports, and live reload.
//!
//! - `startup.rs`: the command line's [`Options`], reading the
//!   configuration, the runtime directory, the PMD threads, starting a
//!   switch.
//! - `ports.rs`: the vhost-user ports' lifecycle: creating, retiring, their
//!   sockets, attach hints, forgetting the MACs of a gone frontend.
//! - `reload.rs`: live reload (check, prepare, commit; see there).
//! - `views.rs`: what the control requests read: status, counters, MAC
//!   tables, VLANs, PMDs, teams.
//! - `metrics.rs`: the Prometheus endpoint's text, from the same
//!   counters, and its listener.
//!
//! This file holds the [`Daemon`] itself, its start, request dispatch and
//! shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use config::{Config, ConfigError};
use dataplane::snapshot::Snapshot;
use dataplane::vhost::VhostError;
use dataplane::{PmdConfig, Switch, SwitchError};

use crate::backends::{self, Netdevs};
use crate::protocol::{self, Request, Response};
use crate::translate::{PortIds, TranslateError, switch_spec};

mod metrics;
mod ports;
mod reload;
mod startup;
mod views;

pub use ports::HOUSEKEEPING_INTERVAL;
pub use startup::{
    DEFAULT_RUNTIME_DIR, DEFAULT_STATE_DIR, Options, SystemHost, buf_size_for, create_runtime_dir,
    describe, load_config, pmd_configs,
};

use ports::{VhostPort, retire};
use startup::start_switch;

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

/// The SR-IOV state file's name under `--state-dir`.
const SRIOV_STATE_FILE: &str = "sriov.json";

/// A report's lines for a reply: changes, then warnings and errors.
fn sriov_lines(r: &crate::sriov_service::SriovReport) -> Vec<String> {
    r.changes()
        .into_iter()
        .chain(r.warnings().into_iter().map(|w| format!("warning: {w}")))
        .chain(r.errors().into_iter().map(|e| format!("error: {e}")))
        .collect()
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
    /// Reloads refused or partially applied (dry runs not counted).
    reload_failures: u64,
    /// Whether the last reload applied (true before any).
    last_reload_ok: bool,
    /// Unix time of the last reload attempt, or of the start.
    last_reload_at: f64,
    /// SR-IOV: creates, configures and releases the configured VFs.
    sriov: crate::sriov_service::SriovService,
    /// The Prometheus endpoint, when `metrics:` is configured and it was
    /// started ([`Daemon::serve_metrics`]).
    metrics: Option<crate::metrics::MetricsServer>,
    /// The lock this daemon lives in ([`SharedDaemon::new`]): what the
    /// metrics endpoint reads through.
    this: Weak<Mutex<Daemon>>,
}

/// Seconds since the Unix epoch, now.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
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
        let sriov = crate::sriov_service::SriovService::system()
            .with_state_file(opts.state_dir.join(SRIOV_STATE_FILE));
        let mut daemon = Daemon {
            config_file: opts.config_file.clone(),
            opts,
            config: cfg.clone(),
            pmds,
            ids,
            switches: BTreeMap::new(),
            reloads: 0,
            reload_failures: 0,
            last_reload_ok: true,
            last_reload_at: unix_now(),
            sriov,
            metrics: None,
            this: Weak::new(),
        };
        for (sw, spec) in cfg.switches.iter().zip(specs) {
            let started = Snapshot::build(spec, 1)
                .map_err(|e| DaemonError::Start {
                    switch: sw.name.clone(),
                    source: SwitchError::Spec(e),
                })
                .and_then(|snapshot| {
                    let teams = backends::build_teams(sw);
                    start_switch(
                        sw,
                        snapshot,
                        teams,
                        &daemon.pmds,
                        &daemon.ids,
                        &BTreeSet::new(),
                    )
                });
            match started {
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

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The PMD threads each switch runs.
    pub fn pmds(&self) -> &[PmdConfig] {
        &self.pmds
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

    /// Stops everything: vhost-user control threads first (their server
    /// sockets are removed), then the PMDs. Returns one line of counters
    /// per port, for the log.
    pub fn shutdown(&mut self) -> Vec<String> {
        self.metrics = None;
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

/// The daemon behind the lock the control socket and the signal loop share.
#[derive(Debug, Clone)]
pub struct SharedDaemon(Arc<Mutex<Daemon>>);

impl SharedDaemon {
    /// Shares `daemon`.
    pub fn new(mut daemon: Daemon) -> SharedDaemon {
        SharedDaemon(Arc::new_cyclic(|this| {
            daemon.this = this.clone();
            Mutex::new(daemon)
        }))
    }

    /// Locks the daemon. A panic under the lock does not stop the daemon
    /// from answering afterwards.
    pub fn lock(&self) -> MutexGuard<'_, Daemon> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl crate::control::Handler for SharedDaemon {
    fn handle(&self, req: Request) -> Response {
        self.lock().handle(req)
    }
}
