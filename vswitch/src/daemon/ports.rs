//! The vhost-user ports' lifecycle: creating one from its configuration,
//! retiring it (its server socket goes), socket paths as files, the hints
//! that say how to attach a guest, and the housekeeping that forgets the
//! MACs of a frontend that went away.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use config::Config;
use dataplane::PortQueue;
use dataplane::vhost::{SocketPerms, SocketRole, VhostUserPort, VhostUserSpec};

use super::{Daemon, DaemonError};

/// How often [`Daemon::housekeeping`] runs.
pub const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// The dataplane's view of a socket's owner, group and mode.
pub(super) fn socket_perms(a: &config::SocketAccess) -> SocketPerms {
    SocketPerms {
        mode: a.mode,
        uid: a.owner.as_ref().map(|o| o.id),
        gid: a.group.as_ref().map(|g| g.id),
    }
}

/// A vhost-user port the daemon runs.
#[derive(Debug)]
pub(super) struct VhostPort {
    pub(super) handle: VhostUserPort,
    pub(super) socket: PathBuf,
    pub(super) role: SocketRole,
    /// The PMD polling each queue pair's receive ring.
    pub(super) rx_pmds: Vec<usize>,
    /// Connected at the last housekeeping pass.
    pub(super) was_connected: bool,
}

pub(super) fn vhost_role(mode: config::VhostMode) -> SocketRole {
    match mode {
        config::VhostMode::Server => SocketRole::Server,
        config::VhostMode::Client => SocketRole::Client,
    }
}

/// Queue pairs of a vhost-user port (1 for anything else).
pub(super) fn port_queue_pairs(p: &config::Port) -> usize {
    match &p.kind {
        config::PortKind::VhostUser { queues, .. } => usize::from(*queues).max(1),
        config::PortKind::Internal => 1,
    }
}

pub(super) fn create_vhost(
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
pub(super) fn retire(name: &str, port: VhostPort, keep: &BTreeSet<PathBuf>) {
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
pub(super) fn server_socket(p: &config::Port) -> Option<&PathBuf> {
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
pub(super) fn server_sockets(cfg: &Config) -> BTreeSet<PathBuf> {
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
pub(super) fn socket_identity(path: &Path) -> PathBuf {
    match (path.parent().map(Path::canonicalize), path.file_name()) {
        (Some(Ok(dir)), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// The QEMU arguments that attach a guest to a server port, or what a
/// client port does.
pub(super) fn attach_hint(name: &str, port: &VhostPort) -> String {
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
}
