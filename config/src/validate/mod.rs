//! From [`RawConfig`] to [`Config`]: defaults, references, ranges, with a
//! diagnostic (file:line:column, path, message) for every problem found.
//!
//! This module holds the entry point ([`validate`]), the context that
//! collects diagnostics and the checks every section shares (names,
//! namespaces, integer ranges). One file per section:
//!
//! - `runtime.rs`: the `runtime:` section (PMD cores, idle policy,
//!   runtime directory, control socket) and the `metrics:` section;
//! - `switch.rs`: one switch (MTU, MAC table, port groups) and the order
//!   of its parts;
//! - `team.rs`: a switch's uplinks and teams;
//! - `port.rs`: one port (backend, port group, VLAN, security, MAC);
//! - `sriov.rs`: one SR-IOV PF and its VFs;
//! - `values.rs`: values several sections take (VLAN settings, security
//!   policy, MAC addresses);
//! - `socket.rs`: socket paths (length, uniqueness) and socket access
//!   (owner, group, mode).

mod port;
mod runtime;
mod socket;
mod sriov;
mod switch;
mod team;
mod values;

use std::collections::HashMap;
use std::path::Path;

use serde_saphyr::Location;

use crate::error::{Diagnostic, suggestion};
use crate::locate::join;
use crate::model::*;
use crate::raw::*;

use runtime::runtime_section;
use socket::Sockets;
use sriov::sriov_pf;
use switch::switch;

/// `IFNAMSIZ` minus the terminating NUL.
const MAX_IFNAME: usize = 15;
/// Longest port, switch, team or port group name.
const MAX_NAME: usize = 64;

struct Ctx<'a> {
    file: String,
    diags: Vec<Diagnostic>,
    /// Resolves `socket-owner` / `socket-group` names.
    host: &'a dyn Host,
}

impl Ctx<'_> {
    fn err(&mut self, at: Location, path: &str, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.clone(),
            line: at.line(),
            column: at.column(),
            path: path.to_string(),
            message: message.into(),
        });
    }
}

fn at<T>(s: &S<T>) -> Location {
    s.referenced
}

fn line<T>(s: &S<T>) -> u64 {
    s.referenced.line()
}

/// Checks a user-chosen name; `ifname` adds the kernel's interface name rules.
fn check_name(ctx: &mut Ctx, name: &S<String>, path: &str, what: &str, ifname: bool) -> bool {
    let n = name.value.as_str();
    let problem = if n.is_empty() {
        Some(format!("{what} name is empty"))
    } else if n.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(format!("{what} name `{n}` contains whitespace"))
    } else if ifname && n.len() > MAX_IFNAME {
        Some(format!(
            "{what} name `{n}` is {} bytes; interface names are at most {MAX_IFNAME}",
            n.len()
        ))
    } else if ifname && (n.contains('/') || n.contains(':') || n == "." || n == "..") {
        Some(format!(
            "{what} name `{n}` is not a valid interface name (no `/`, `:`, `.` or `..`)"
        ))
    } else if n.len() > MAX_NAME {
        Some(format!(
            "{what} name is {} bytes; names are at most {MAX_NAME}",
            n.len()
        ))
    } else {
        None
    };
    match problem {
        Some(m) => {
            ctx.err(at(name), path, m);
            false
        }
        None => true,
    }
}

/// Records `name` in a namespace; reports a duplicate at the second one.
fn unique(
    ctx: &mut Ctx,
    seen: &mut HashMap<String, (String, u64)>,
    name: &S<String>,
    path: &str,
    what: &str,
) {
    if let Some((first_what, first_line)) = seen.get(&name.value) {
        let msg = if first_what == what {
            format!(
                "duplicate {what} name `{}` (first defined at line {first_line})",
                name.value
            )
        } else {
            format!(
                "{what} name `{}` is already used by {first_what} at line {first_line}",
                name.value
            )
        };
        ctx.err(at(name), path, msg);
    } else {
        seen.insert(name.value.clone(), (what.to_string(), line(name)));
    }
}

fn int_in(ctx: &mut Ctx, v: &S<i64>, path: &str, lo: i64, hi: i64) -> Option<i64> {
    if (lo..=hi).contains(&v.value) {
        Some(v.value)
    } else {
        ctx.err(
            at(v),
            path,
            format!("{} is out of range ({lo}-{hi})", v.value),
        );
        None
    }
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn to_u16(v: i64) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// Names for "did you mean" and "known: ..." lists.
fn unknown_ref<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a str> + Clone) -> String {
    let hint = suggestion(name, known.clone());
    if !hint.is_empty() {
        return format!("unknown {what} `{name}`{hint}");
    }
    let list: Vec<&str> = known.collect();
    if list.is_empty() {
        format!("unknown {what} `{name}` (there are none)")
    } else {
        format!("unknown {what} `{name}` (known: {})", list.join(", "))
    }
}

/// Ports and uplinks share one namespace across all switches: checked in
/// file order, so the second of two equal names is the one reported.
fn port_namespace(ctx: &mut Ctx, g: &mut Global, raw: &RawConfig) {
    let mut names: Vec<(Location, String, &S<String>, &str)> = Vec::new();
    for (i, s) in raw.switches.iter().enumerate() {
        for (j, p) in s.value.ports.iter().enumerate() {
            let path = format!("switches[{i}].ports[{j}].name");
            names.push((at(&p.value.name), path, &p.value.name, "port"));
        }
        for (j, u) in s.value.uplinks.iter().enumerate() {
            let path = format!("switches[{i}].uplinks[{j}].name");
            names.push((at(&u.value.name), path, &u.value.name, "uplink"));
        }
    }
    names.sort_by_key(|(l, ..)| (l.line(), l.column()));
    for (loc, path, name, what) in names {
        if name.value.is_empty() {
            continue;
        }
        if g.port_names.contains_key(&name.value) {
            g.duplicate_names.push(loc);
        }
        unique(ctx, &mut g.port_names, name, &path, what);
    }
}

#[derive(Default)]
struct Global {
    /// Positions of port and uplink names already reported as duplicates.
    duplicate_names: Vec<Location>,
    switch_names: HashMap<String, (String, u64)>,
    /// Ports, uplinks and teams share one namespace across switches.
    port_names: HashMap<String, (String, u64)>,
    pf_names: HashMap<String, (String, u64)>,
    macs: HashMap<MacAddr, (String, u64)>,
}

/// Validates `raw`; `runtime_dir` (the command line's) overrides the file's;
/// user and group names resolve, and uplink interfaces are looked up,
/// through `host`.
pub(crate) fn validate(
    raw: &RawConfig,
    file: &str,
    runtime_dir: Option<&Path>,
    host: &dyn Host,
) -> Result<Config, Vec<Diagnostic>> {
    let mut ctx = Ctx {
        file: file.to_string(),
        diags: Vec::new(),
        host,
    };
    let mut g = Global::default();
    let mut sockets = Sockets::default();
    let runtime = runtime_section(&mut ctx, raw, runtime_dir, &mut sockets);
    port_namespace(&mut ctx, &mut g, raw);
    let mut switches = Vec::new();
    for (i, s) in raw.switches.iter().enumerate() {
        let path = format!("switches[{i}]");
        if let Some(sw) = switch(
            &mut ctx,
            &mut g,
            &mut sockets,
            &runtime.runtime_dir,
            s,
            &path,
        ) {
            switches.push(sw);
        }
    }
    let mut sriov = Vec::new();
    for (i, pf) in raw.sriov.iter().enumerate() {
        let path = format!("sriov[{i}]");
        if let Some(pf) = sriov_pf(&mut ctx, &mut g, &switches, pf, &path) {
            sriov.push(pf);
        }
    }
    let metrics = raw
        .metrics
        .as_ref()
        .map(|m| runtime::metrics_section(&mut ctx, m));
    if ctx.diags.is_empty() {
        Ok(Config {
            runtime,
            switches,
            sriov,
            metrics: metrics.flatten(),
        })
    } else {
        let mut d = ctx.diags;
        d.sort_by_key(|d| (d.line, d.column));
        Err(d)
    }
}
