//! One port: its name, backend (internal TAP or vhost-user socket, mode,
//! queues, socket access), port group, VLAN, security and MAC.

use std::path::{Path, PathBuf};

use super::socket::{SOCKET_KEYS, socket_access};
use super::switch::Groups;
use super::values::{mac, security, vlan_mode};
use super::{Ctx, Global, Sockets, at, check_name, int_in, join, to_u16};
use crate::model::*;
use crate::raw::*;

/// What a port takes from its switch.
pub(super) struct PortScope<'a> {
    /// Runtime directory (relative socket paths).
    pub(super) dir: &'a Path,
    pub(super) groups: &'a Groups,
    /// The switch's `socket-*` keys over the defaults.
    pub(super) socket_defaults: &'a SocketAccess,
}

/// The `socket-owner`, `socket-group` and `socket-mode` values of a port.
type SocketKeys<'a> = [&'a Option<S<String>>; 3];

/// One port; `None` if it had a problem (reported in `ctx`).
pub(super) fn port(
    ctx: &mut Ctx,
    g: &mut Global,
    sockets: &mut Sockets,
    scope: &PortScope<'_>,
    raw: &S<RawPort>,
    path: &str,
) -> Option<Port> {
    let PortScope {
        dir,
        groups,
        socket_defaults,
    } = *scope;
    let r = &raw.value;
    let socket_keys = [&r.socket_owner, &r.socket_group, &r.socket_mode];
    let before = ctx.diags.len();
    let name = r.name.value.clone();
    let internal = matches!(
        r.kind.as_ref().map(|k| k.value),
        Some(RawPortType::Internal)
    );
    let name_ok = check_name(ctx, &r.name, &join(path, "name"), "port", internal)
        && !g.duplicate_names.contains(&at(&r.name));
    let (kind, socket_access) = if internal {
        reject_vhost_keys(ctx, r, socket_keys, path);
        (PortKind::Internal, None)
    } else {
        vhost_user(ctx, sockets, dir, socket_defaults, r, name_ok, path)
    };
    let group = match &r.port_group {
        Some(pg) => groups.find(ctx, pg, &join(path, "port-group")),
        None => groups.default_group(),
    }
    .unwrap_or_else(PortGroup::implicit_default);
    let vlan = match &r.vlan {
        Some(v) => vlan_mode(ctx, v, &join(path, "vlan")).unwrap_or(VlanMode::UNTAGGED),
        None => group.vlan.clone(),
    };
    let security = security(
        ctx,
        r.security.as_ref(),
        group.security,
        &join(path, "security"),
    );
    let mac = r.mac.as_ref().and_then(|m| {
        mac(
            ctx,
            m,
            &join(path, "mac"),
            "port",
            &format!("port {name}"),
            &mut g.macs,
        )
    });
    (ctx.diags.len() == before).then_some(Port {
        name,
        kind,
        port_group: group.name,
        vlan,
        security,
        mac,
        socket_access,
    })
}

/// Reports every vhost-user key on an internal (TAP) port.
fn reject_vhost_keys(ctx: &mut Ctx, r: &RawPort, socket_keys: SocketKeys<'_>, path: &str) {
    let extra = [
        ("socket", r.socket.as_ref().map(at)),
        ("mode", r.mode.as_ref().map(at)),
        ("queues", r.queues.as_ref().map(at)),
    ]
    .into_iter()
    .chain(
        SOCKET_KEYS
            .into_iter()
            .zip(socket_keys.map(|v| v.as_ref().map(at))),
    );
    for (key, loc) in extra {
        if let Some(loc) = loc {
            ctx.err(
                loc,
                &join(path, key),
                format!(
                    "internal (TAP) ports have no `{key}`; remove it or use `type: vhost-user`"
                ),
            );
        }
    }
}

/// A vhost-user port's backend (socket, mode, queues) and, in server
/// mode, its socket access. `name_ok`: the name passed its checks, so a
/// socket path can be derived from it.
fn vhost_user(
    ctx: &mut Ctx,
    sockets: &mut Sockets,
    dir: &Path,
    socket_defaults: &SocketAccess,
    r: &RawPort,
    name_ok: bool,
    path: &str,
) -> (PortKind, Option<SocketAccess>) {
    let name = &r.name.value;
    let socket_keys = [&r.socket_owner, &r.socket_group, &r.socket_mode];
    let (sock, loc) = match &r.socket {
        Some(s) => (s.value.clone(), at(s)),
        None => (format!("{name}.sock"), at(&r.name)),
    };
    // A socket derived from a bad or duplicate name would only repeat
    // the name's error.
    let socket = if r.socket.is_some() || name_ok {
        sockets
            .add(
                ctx,
                dir,
                &sock,
                loc,
                &join(path, "socket"),
                &format!("port {name}"),
            )
            .unwrap_or_default()
    } else {
        PathBuf::new()
    };
    let mode = match r.mode.as_ref().map(|m| m.value) {
        Some(RawVhostMode::Client) => VhostMode::Client,
        Some(RawVhostMode::Server) | None => VhostMode::Server,
    };
    let queues = r
        .queues
        .as_ref()
        .and_then(|q| int_in(ctx, q, &join(path, "queues"), 1, MAX_QUEUES.into()))
        .map_or(1, to_u16);
    let access = match mode {
        VhostMode::Server => Some(socket_access(ctx, socket_keys, socket_defaults, path)),
        VhostMode::Client => {
            for (key, v) in SOCKET_KEYS.into_iter().zip(socket_keys) {
                if let Some(v) = v {
                    ctx.err(
                        at(v),
                        &join(path, key),
                        format!(
                            "`{key}` applies to server-mode ports only: in client mode \
                         the VMM creates the socket and sets its permissions"
                        ),
                    );
                }
            }
            None
        }
    };
    (
        PortKind::VhostUser {
            socket,
            mode,
            queues,
        },
        access,
    )
}
