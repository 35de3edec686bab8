//! One switch: its name, MTU, MAC table, socket defaults and port groups,
//! then its uplinks and teams (`team.rs`) and its ports (`port.rs`).

use std::collections::HashMap;
use std::path::Path;

use super::port::{PortScope, port};
use super::socket::socket_access;
use super::team::{adopt_team_settings, teams, uplinks};
use super::values::{security, vlan_mode};
use super::{
    Ctx, Global, Sockets, at, check_name, int_in, join, to_u16, to_u32, unique, unknown_ref,
};
use crate::model::*;
use crate::raw::*;

/// One switch with its port groups, uplinks, teams and ports; `None` if
/// any of them had a problem (reported in `ctx`).
pub(super) fn switch(
    ctx: &mut Ctx,
    g: &mut Global,
    sockets: &mut Sockets,
    dir: &Path,
    raw: &S<RawSwitch>,
    path: &str,
) -> Option<Switch> {
    let s = &raw.value;
    let before = ctx.diags.len();
    if check_name(ctx, &s.name, &join(path, "name"), "switch", false) {
        unique(
            ctx,
            &mut g.switch_names,
            &s.name,
            &join(path, "name"),
            "switch",
        );
    }
    let mtu = s
        .mtu
        .as_ref()
        .and_then(|m| int_in(ctx, m, &join(path, "mtu"), MIN_MTU.into(), MAX_MTU.into()))
        .map_or(DEFAULT_MTU, to_u16);
    let mac_table = mac_table(ctx, s.mac_table.as_ref(), &join(path, "mac-table"));
    // The switch's socket-* keys: defaults for its server ports.
    let socket_defaults = socket_access(
        ctx,
        [&s.socket_owner, &s.socket_group, &s.socket_mode],
        &SocketAccess::default(),
        path,
    );
    let groups = port_groups(ctx, s, path);
    let uplinks = uplinks(ctx, g, s, &groups, path);
    let teams = teams(ctx, g, s, &groups, &uplinks, path);
    let uplinks = adopt_team_settings(uplinks, &teams);

    // Ports.
    let mut ports = Vec::new();
    for (i, pt) in s.ports.iter().enumerate() {
        let p = format!("{path}.ports[{i}]");
        let scope = PortScope {
            dir,
            groups: &groups,
            socket_defaults: &socket_defaults,
        };
        if let Some(port) = port(ctx, g, sockets, &scope, pt, &p) {
            ports.push(port);
        }
    }

    (ctx.diags.len() == before).then(|| Switch {
        name: s.name.value.clone(),
        mtu,
        mac_table,
        port_groups: groups.groups,
        ports,
        uplinks,
        teams,
    })
}

/// A switch's port groups (the implicit `default` one included), with
/// their names for "known: ..." lists.
pub(super) struct Groups {
    groups: Vec<PortGroup>,
    names: Vec<String>,
}

impl Groups {
    /// The group named by `r`; an unknown name is reported at `r`.
    pub(super) fn find(&self, ctx: &mut Ctx, r: &S<String>, p: &str) -> Option<PortGroup> {
        let found = self.groups.iter().find(|g| g.name == r.value).cloned();
        if found.is_none() {
            ctx.err(
                at(r),
                p,
                unknown_ref(
                    "port group",
                    &r.value,
                    self.names.iter().map(String::as_str),
                ),
            );
        }
        found
    }

    /// The group a port without `port-group` is in.
    pub(super) fn default_group(&self) -> Option<PortGroup> {
        self.groups
            .iter()
            .find(|g| g.name == DEFAULT_PORT_GROUP)
            .cloned()
    }
}

/// The `port-groups:` list; adds the implicit `default` group unless the
/// file defines one.
fn port_groups(ctx: &mut Ctx, s: &RawSwitch, path: &str) -> Groups {
    let mut groups: Vec<PortGroup> = Vec::new();
    let mut group_names = HashMap::new();
    for (i, pg) in s.port_groups.iter().enumerate() {
        let p = format!("{path}.port-groups[{i}]");
        if !check_name(ctx, &pg.value.name, &join(&p, "name"), "port group", false) {
            continue;
        }
        let duplicate = group_names.contains_key(&pg.value.name.value);
        unique(
            ctx,
            &mut group_names,
            &pg.value.name,
            &join(&p, "name"),
            "port group",
        );
        if duplicate {
            continue;
        }
        let vlan = match &pg.value.vlan {
            Some(v) => vlan_mode(ctx, v, &join(&p, "vlan")).unwrap_or(VlanMode::UNTAGGED),
            None => VlanMode::UNTAGGED,
        };
        groups.push(PortGroup {
            name: pg.value.name.value.clone(),
            vlan,
            security: security(
                ctx,
                pg.value.security.as_ref(),
                SecurityPolicy::default(),
                &join(&p, "security"),
            ),
        });
    }
    if !groups.iter().any(|g| g.name == DEFAULT_PORT_GROUP) {
        groups.push(PortGroup::implicit_default());
    }
    let names = groups.iter().map(|g| g.name.clone()).collect();
    Groups { groups, names }
}

fn mac_table(ctx: &mut Ctx, raw: Option<&S<RawMacTable>>, path: &str) -> MacTable {
    let mut t = MacTable::default();
    let Some(raw) = raw else { return t };
    let r = &raw.value;
    if let Some(v) = &r.max_entries
        && let Some(v) = int_in(ctx, v, &join(path, "max-entries"), 1, 1 << 24)
    {
        t.max_entries = to_u32(v);
    }
    if let Some(v) = &r.aging_seconds
        && let Some(v) = int_in(ctx, v, &join(path, "aging-seconds"), 1, 86_400)
    {
        t.aging_seconds = to_u32(v);
    }
    match &r.per_port_limit {
        Some(v) => {
            if let Some(n) = int_in(ctx, v, &join(path, "per-port-limit"), 1, 1 << 24) {
                t.per_port_limit = to_u32(n);
                if t.per_port_limit > t.max_entries {
                    ctx.err(
                        at(v),
                        &join(path, "per-port-limit"),
                        format!(
                            "per-port-limit {n} is larger than max-entries {}",
                            t.max_entries
                        ),
                    );
                }
            }
        }
        None => t.per_port_limit = t.per_port_limit.min(t.max_entries),
    }
    t
}
