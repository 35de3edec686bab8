//! From [`RawConfig`] to [`Config`]: defaults, references, ranges, with a
//! diagnostic (file:line:column, path, message) for every problem found.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

use crate::error::{Diagnostic, suggestion};
use crate::model::*;
use crate::raw::*;

/// Highest CPU id accepted in `pmd-cores` (CPU_SETSIZE - 1).
const MAX_CPU: i64 = 1023;
/// `sizeof(sockaddr_un.sun_path)` minus the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// `IFNAMSIZ` minus the terminating NUL.
const MAX_IFNAME: usize = 15;
/// Longest port, switch, team or port group name.
const MAX_NAME: usize = 64;
const MAX_VFS: i64 = 256;

struct Ctx<'a> {
    file: String,
    diags: Vec<Diagnostic>,
    /// Resolves `socket-owner` / `socket-group` names.
    accounts: &'a dyn Accounts,
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

/// `a.b`, or `b` at the root.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
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

fn vlan_id(ctx: &mut Ctx, v: i64, loc: Location, path: &str, what: &str) -> Option<VlanId> {
    let id = u16::try_from(v).ok().and_then(VlanId::new);
    if id.is_none() {
        let hint = match v {
            4095 => "; use `vlan: all` for guest tagging",
            0 => "; leave `vlan` out for untagged (VLAN 1)",
            _ => "",
        };
        ctx.err(
            loc,
            path,
            format!("{what}{v} is not a VLAN ID (1-4094){hint}"),
        );
    }
    id
}

/// The `vlan:` value of a port group or port.
fn vlan_mode(ctx: &mut Ctx, v: &S<RawVlan>, path: &str) -> Option<VlanMode> {
    match &v.value {
        RawVlan::Access(n) => vlan_id(ctx, *n, at(v), path, "").map(VlanMode::Access),
        RawVlan::All => Some(VlanMode::GuestTagging),
        RawVlan::Invalid(text) => {
            ctx.err(
                at(v),
                path,
                format!(
                    "`{text}` is not a VLAN setting: expected a VLAN ID (1-4094), `all` for \
                     guest tagging, or a trunk `{{ trunk: [10, 20-29], native: 1 }}`"
                ),
            );
            None
        }
        RawVlan::List => {
            ctx.err(
                at(v),
                path,
                "a bare list is ambiguous: write a trunk as `vlan: { trunk: [10, 20-29] }`",
            );
            None
        }
        RawVlan::Trunk { trunk, native } => {
            let mut ok = true;
            let mut allowed = VlanSet::new();
            match trunk {
                None => {
                    ctx.err(
                        at(v),
                        path,
                        "a trunk needs a `trunk:` list of VLANs, like `{ trunk: [10, 20-29], native: 1 }`",
                    );
                    ok = false;
                }
                Some(list) if list.value.is_empty() => {
                    ctx.err(
                        at(list),
                        &join(path, "trunk"),
                        "the trunk list is empty; list the VLANs it carries, like `[10, 20-29]`",
                    );
                    ok = false;
                }
                Some(list) => {
                    for (i, r) in list.value.iter().enumerate() {
                        let p = format!("{path}.trunk[{i}]");
                        let RawRange { lo, hi } = r.value;
                        let l = vlan_id(ctx, lo, at(r), &p, "");
                        let h = if hi == lo {
                            l
                        } else {
                            vlan_id(ctx, hi, at(r), &p, "")
                        };
                        match (l, h) {
                            (Some(l), Some(h)) if l <= h => allowed.insert_range(l, h),
                            (Some(_), Some(_)) => {
                                ctx.err(
                                    at(r),
                                    &p,
                                    format!("range {lo}-{hi} is reversed; write {hi}-{lo}"),
                                );
                                ok = false;
                            }
                            _ => ok = false,
                        }
                    }
                }
            }
            let native = match native {
                Some(n) => {
                    let id = vlan_id(ctx, n.value, at(n), &join(path, "native"), "native VLAN ");
                    if let Some(id) = id {
                        allowed.insert(id);
                    } else {
                        ok = false;
                    }
                    id
                }
                None => None,
            };
            ok.then_some(VlanMode::Trunk { allowed, native })
        }
    }
}

/// Security settings of `raw` over `base`.
fn security(
    ctx: &mut Ctx,
    raw: Option<&S<RawSecurity>>,
    base: SecurityPolicy,
    path: &str,
) -> SecurityPolicy {
    let Some(raw) = raw else { return base };
    let mut pick = |key: &str, v: &Option<S<RawVerdict>>, b: Verdict| match v {
        None => b,
        Some(v) => match &v.value.0 {
            Ok(accept) => Verdict::from_bool(*accept),
            Err(text) => {
                let choices = ["accept", "reject"];
                let hint = suggestion(text, choices);
                ctx.err(
                    at(v),
                    &join(path, key),
                    format!(
                        "unknown value `{text}`{hint} (expected one of: accept, reject, true, false)"
                    ),
                );
                b
            }
        },
    };
    SecurityPolicy {
        promiscuous: pick("promiscuous", &raw.value.promiscuous, base.promiscuous),
        mac_changes: pick("mac-changes", &raw.value.mac_changes, base.mac_changes),
        forged_transmits: pick(
            "forged-transmits",
            &raw.value.forged_transmits,
            base.forged_transmits,
        ),
    }
}

/// Parses a MAC; with `owner`, records it and rejects reuse.
fn mac(
    ctx: &mut Ctx,
    raw: &S<String>,
    path: &str,
    kind: &str,
    owner: &str,
    macs: &mut HashMap<MacAddr, (String, u64)>,
) -> Option<MacAddr> {
    let m = match raw.value.trim().parse::<MacAddr>() {
        Ok(m) => m,
        Err(e) => {
            ctx.err(at(raw), path, e.to_string());
            return None;
        }
    };
    if m.is_multicast() {
        ctx.err(
            at(raw),
            path,
            format!("{m} is a multicast address; a {kind} MAC must be unicast (even first byte)"),
        );
        return None;
    }
    if m.is_zero() {
        ctx.err(at(raw), path, format!("{m} is not a usable MAC address"));
        return None;
    }
    if let Some((other, l)) = macs.get(&m) {
        ctx.err(
            at(raw),
            path,
            format!("MAC {m} is already used by {other} (line {l})"),
        );
        return None;
    }
    macs.insert(m, (owner.to_string(), line(raw)));
    Some(m)
}

struct Sockets {
    seen: HashMap<PathBuf, (String, u64)>,
}

impl Sockets {
    /// Resolves `raw` under `dir`, checks length and uniqueness.
    fn add(
        &mut self,
        ctx: &mut Ctx,
        dir: &Path,
        raw: &str,
        loc: Location,
        path: &str,
        owner: &str,
    ) -> Option<PathBuf> {
        if raw.is_empty() {
            ctx.err(loc, path, "socket path is empty");
            return None;
        }
        let full = dir.join(raw);
        let len = full.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            ctx.err(
                loc,
                path,
                format!(
                    "socket path {} is {len} bytes; a Unix socket path is at most \
                     {MAX_SOCKET_PATH}: use a shorter name or runtime-dir",
                    full.display()
                ),
            );
            return None;
        }
        if let Some((other, l)) = self.seen.get(&full) {
            ctx.err(
                loc,
                path,
                format!(
                    "socket {} is already used by {other} (line {l})",
                    full.display()
                ),
            );
            return None;
        }
        self.seen
            .insert(full.clone(), (owner.to_string(), loc.line()));
        Some(full)
    }
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
/// user and group names resolve through `accounts`.
pub(crate) fn validate(
    raw: &RawConfig,
    file: &str,
    runtime_dir: Option<&Path>,
    accounts: &dyn Accounts,
) -> Result<Config, Vec<Diagnostic>> {
    let mut ctx = Ctx {
        file: file.to_string(),
        diags: Vec::new(),
        accounts,
    };
    let mut g = Global::default();
    let mut sockets = Sockets {
        seen: HashMap::new(),
    };
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
    if ctx.diags.is_empty() {
        Ok(Config {
            runtime,
            switches,
            sriov,
        })
    } else {
        let mut d = ctx.diags;
        d.sort_by_key(|d| (d.line, d.column));
        Err(d)
    }
}

fn runtime_section(
    ctx: &mut Ctx,
    raw: &RawConfig,
    runtime_dir: Option<&Path>,
    sockets: &mut Sockets,
) -> Runtime {
    let default = RawRuntime::default();
    let (rt, rt_loc) = match &raw.runtime {
        Some(r) => (&r.value, at(r)),
        None => (&default, Location::UNKNOWN),
    };
    let mut cores: Vec<u32> = Vec::new();
    let mut first_line: HashMap<i64, u64> = HashMap::new();
    for (i, r) in rt.pmd_cores.iter().enumerate() {
        let p = format!("runtime.pmd-cores[{i}]");
        let RawRange { lo, hi } = r.value;
        if let Some(bad) = [lo, hi].into_iter().find(|c| !(0..=MAX_CPU).contains(c)) {
            ctx.err(at(r), &p, format!("{bad} is not a CPU id (0-{MAX_CPU})"));
            continue;
        }
        if lo > hi {
            ctx.err(
                at(r),
                &p,
                format!("range {lo}-{hi} is reversed; write {hi}-{lo}"),
            );
            continue;
        }
        for c in lo..=hi {
            if let Some(l) = first_line.get(&c) {
                ctx.err(
                    at(r),
                    &p,
                    format!("CPU {c} is listed twice (first at line {l}); each PMD thread needs its own CPU"),
                );
                break;
            }
            first_line.insert(c, line(r));
            cores.push(to_u32(c));
        }
    }
    cores.sort_unstable();
    let idle = match rt.idle.as_ref().map(|s| s.value) {
        Some(RawIdle::Busy) => IdlePolicy::Busy,
        Some(RawIdle::Adaptive) | None => IdlePolicy::Adaptive,
    };
    let dir = match (runtime_dir, &rt.runtime_dir) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(d)) if d.value.is_empty() => {
            ctx.err(at(d), "runtime.runtime-dir", "runtime-dir is empty");
            PathBuf::from(DEFAULT_RUNTIME_DIR)
        }
        (None, Some(d)) => PathBuf::from(&d.value),
        (None, None) => PathBuf::from(DEFAULT_RUNTIME_DIR),
    };
    let (cs, cs_loc) = match &rt.control_socket {
        Some(c) => (c.value.as_str(), at(c)),
        None => (DEFAULT_CONTROL_SOCKET, rt_loc),
    };
    let control_socket = sockets
        .add(
            ctx,
            &dir,
            cs,
            cs_loc,
            "runtime.control-socket",
            "the control socket",
        )
        .unwrap_or_else(|| dir.join(cs));
    Runtime {
        pmd_cores: cores,
        idle,
        runtime_dir: dir,
        control_socket,
    }
}

fn switch(
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

    // Port groups.
    let mut groups: Vec<PortGroup> = Vec::new();
    let mut group_names = HashMap::new();
    for (i, pg) in s.port_groups.iter().enumerate() {
        let p = format!("{path}.port-groups[{i}]");
        if !check_name(ctx, &pg.value.name, &join(&p, "name"), "port group", false) {
            continue;
        }
        if group_names.contains_key(&pg.value.name.value) {
            unique(
                ctx,
                &mut group_names,
                &pg.value.name,
                &join(&p, "name"),
                "port group",
            );
            continue;
        }
        unique(
            ctx,
            &mut group_names,
            &pg.value.name,
            &join(&p, "name"),
            "port group",
        );
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
    let group_list: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let find_group = |ctx: &mut Ctx, r: &S<String>, p: &str| -> Option<PortGroup> {
        let found = groups.iter().find(|g| g.name == r.value).cloned();
        if found.is_none() {
            ctx.err(
                at(r),
                p,
                unknown_ref(
                    "port group",
                    &r.value,
                    group_list.iter().map(String::as_str),
                ),
            );
        }
        found
    };

    // Uplinks.
    let mut uplinks: Vec<(Uplink, usize)> = Vec::new();
    for (i, u) in s.uplinks.iter().enumerate() {
        let p = format!("{path}.uplinks[{i}]");
        if !check_name(ctx, &u.value.name, &join(&p, "name"), "uplink", true)
            || g.duplicate_names.contains(&at(&u.value.name))
        {
            continue;
        }
        let driver = match u.value.driver.as_ref().map(|d| d.value) {
            Some(RawDriver::AfPacket) => UplinkDriver::AfPacket,
            Some(RawDriver::AfXdp) | None => UplinkDriver::AfXdp,
        };
        let vlan = match &u.value.port_group {
            Some(r) => find_group(ctx, r, &join(&p, "port-group"))
                .map_or_else(VlanMode::uplink_default, |g| g.vlan),
            None => VlanMode::uplink_default(),
        };
        uplinks.push((
            Uplink {
                name: u.value.name.value.clone(),
                driver,
                port_group: u.value.port_group.as_ref().map(|r| r.value.clone()),
                vlan,
            },
            i,
        ));
    }

    // Teams.
    let mut teams = Vec::new();
    let mut member_of: HashMap<String, (String, u64)> = HashMap::new();
    for (i, t) in s.teams.iter().enumerate() {
        let p = format!("{path}.teams[{i}]");
        let tv = &t.value;
        if check_name(ctx, &tv.name, &join(&p, "name"), "team", false) {
            // A team is one port of its switch: it shares the port namespace.
            unique(ctx, &mut g.port_names, &tv.name, &join(&p, "name"), "team");
        }
        let team_name = tv.name.value.clone();
        let mut lists: [Vec<String>; 3] = Default::default();
        let mut in_team: HashMap<String, (&str, u64)> = HashMap::new();
        for (k, (key, members)) in [
            ("active", &tv.active),
            ("standby", &tv.standby),
            ("unused", &tv.unused),
        ]
        .into_iter()
        .enumerate()
        {
            for (j, m) in members.iter().enumerate() {
                let mp = format!("{p}.{key}[{j}]");
                let name = &m.value;
                if let Some((list, l)) = in_team.get(name) {
                    ctx.err(
                        at(m),
                        &mp,
                        format!(
                            "uplink `{name}` is listed twice in team `{team_name}` (first in {list} at line {l})"
                        ),
                    );
                    continue;
                }
                in_team.insert(name.clone(), (key, line(m)));
                let Some((uplink, ui)) = uplinks.iter().find(|(u, _)| &u.name == name) else {
                    let msg = if s.ports.iter().any(|pt| &pt.value.name.value == name) {
                        format!("`{name}` is a port, not an uplink; teams group uplinks")
                    } else {
                        unknown_ref("uplink", name, uplinks.iter().map(|(u, _)| u.name.as_str()))
                    };
                    ctx.err(at(m), &mp, msg);
                    continue;
                };
                if let Some((other, l)) = member_of.get(name) {
                    ctx.err(
                        at(m),
                        &mp,
                        format!(
                            "uplink `{name}` is already a member of team `{other}` (line {l}); an uplink can be in one team only"
                        ),
                    );
                    continue;
                }
                if let Some(pg) = s.uplinks.get(*ui).and_then(|u| u.value.port_group.as_ref()) {
                    ctx.err(
                        at(pg),
                        &format!("{path}.uplinks[{ui}].port-group"),
                        format!(
                            "uplink `{}` is in team `{team_name}`: set `port-group` on the team, not on its members",
                            uplink.name
                        ),
                    );
                }
                member_of.insert(name.clone(), (team_name.clone(), line(m)));
                lists[k].push(name.clone());
            }
        }
        if tv.active.is_empty() {
            ctx.err(
                at(&tv.name),
                &join(&p, "active"),
                format!(
                    "team `{team_name}` has no active member; list at least one uplink under `active:`"
                ),
            );
        }
        let group = tv
            .port_group
            .as_ref()
            .and_then(|r| find_group(ctx, r, &join(&p, "port-group")));
        let aggregated = matches!(
            tv.policy.as_ref().map(|v| v.value),
            Some(RawPolicy::IpHash | RawPolicy::L4Hash)
        );
        if aggregated
            && let Some(fd) = tv.failure_detection.as_ref()
            && matches!(fd.value, RawDetection::Beacon)
        {
            // VMware's rule too: an EtherChannel never floods a beacon
            // back to the other members, so every member would look dead.
            ctx.err(
                at(fd),
                &join(&p, "failure-detection"),
                format!(
                    "team `{team_name}`: beacon probing does not work with a hash policy (the physical switch bundles the members into one EtherChannel and never returns a beacon); use `failure-detection: link`"
                ),
            );
        }
        let [active, standby, unused] = lists;
        teams.push(Team {
            name: team_name,
            policy: match tv.policy.as_ref().map(|v| v.value) {
                Some(RawPolicy::PortId) | None => TeamPolicy::PortId,
                Some(RawPolicy::IpHash) => TeamPolicy::IpHash,
                Some(RawPolicy::SrcMac) => TeamPolicy::SrcMac,
                Some(RawPolicy::ExplicitFailover) => TeamPolicy::ExplicitFailover,
                Some(RawPolicy::L4Hash) => TeamPolicy::L4Hash,
            },
            active,
            standby,
            unused,
            failback: tv.failback.as_ref().is_none_or(|v| v.value),
            failure_detection: match tv.failure_detection.as_ref().map(|v| v.value) {
                Some(RawDetection::Beacon) => FailureDetection::Beacon,
                Some(RawDetection::Link) | None => FailureDetection::Link,
            },
            notify_switches: tv.notify_switches.as_ref().is_none_or(|v| v.value),
            port_group: tv.port_group.as_ref().map(|r| r.value.clone()),
            vlan: group.map_or_else(VlanMode::uplink_default, |g| g.vlan),
        });
    }
    // Members take their team's VLAN mode and port group.
    let uplinks: Vec<Uplink> = uplinks
        .into_iter()
        .map(|(mut u, _)| {
            if let Some(t) = teams.iter().find(|t| t.members().any(|m| m == u.name)) {
                u.vlan = t.vlan.clone();
                if t.port_group.is_some() {
                    u.port_group = t.port_group.clone();
                }
            }
            u
        })
        .collect();

    // Ports.
    let mut ports = Vec::new();
    for (i, pt) in s.ports.iter().enumerate() {
        let p = format!("{path}.ports[{i}]");
        let scope = PortScope {
            dir,
            groups: &groups,
            group_list: &group_list,
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
        port_groups: groups,
        ports,
        uplinks,
        teams,
    })
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

/// What a port takes from its switch.
struct PortScope<'a> {
    /// Runtime directory (relative socket paths).
    dir: &'a Path,
    groups: &'a [PortGroup],
    group_list: &'a [String],
    /// The switch's `socket-*` keys over the defaults.
    socket_defaults: &'a SocketAccess,
}

const SOCKET_KEYS: [&str; 3] = ["socket-owner", "socket-group", "socket-mode"];

/// `socket-owner`, `socket-group`, `socket-mode` (each optional) over
/// `base`, key by key; a bad value is reported and `base`'s kept.
fn socket_access(
    ctx: &mut Ctx,
    [owner, group, mode]: [&Option<S<String>>; 3],
    base: &SocketAccess,
    path: &str,
) -> SocketAccess {
    let [owner_key, group_key, mode_key] = SOCKET_KEYS;
    SocketAccess {
        owner: match owner {
            Some(v) => account(ctx, v, &join(path, owner_key), "user"),
            None => base.owner.clone(),
        },
        group: match group {
            Some(v) => account(ctx, v, &join(path, group_key), "group"),
            None => base.group.clone(),
        },
        mode: mode
            .as_ref()
            .and_then(|v| socket_mode(ctx, v, &join(path, mode_key)))
            .unwrap_or(base.mode),
    }
}

/// A numeric id, or a `what` (`user` or `group`) name resolved through
/// the context's account database.
fn account(ctx: &mut Ctx, raw: &S<String>, path: &str, what: &str) -> Option<Account> {
    let text = raw.value.trim();
    let id_kind = if what == "user" { "uid" } else { "gid" };
    if text.is_empty() {
        ctx.err(
            at(raw),
            path,
            format!("expected a {what} name or a numeric {id_kind}, found an empty value"),
        );
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // u32::MAX is chown's "leave unchanged", not an id.
        return match text.parse::<u32>() {
            Ok(id) if id != u32::MAX => Some(Account { id, name: None }),
            _ => {
                ctx.err(
                    at(raw),
                    path,
                    format!(
                        "{text} is out of range for a {id_kind} (0-{})",
                        u32::MAX - 1
                    ),
                );
                None
            }
        };
    }
    let found = if what == "user" {
        ctx.accounts.uid(text)
    } else {
        ctx.accounts.gid(text)
    };
    match found {
        Ok(Some(id)) => Some(Account {
            id,
            name: Some(text.to_string()),
        }),
        Ok(None) => {
            ctx.err(
                at(raw),
                path,
                format!(
                    "unknown {what} `{text}`: no such {what} on this host (use an existing \
                     {what} name or a numeric {id_kind})"
                ),
            );
            None
        }
        Err(why) => {
            ctx.err(at(raw), path, why);
            None
        }
    }
}

/// An octal mode: `0660`, `660` or `0o660`, at most 0777 and never
/// writable by others.
fn socket_mode(ctx: &mut Ctx, raw: &S<String>, path: &str) -> Option<u32> {
    let text = raw.value.trim();
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = (!digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten();
    let problem = match mode {
        None => format!("`{text}` is not a mode: expected octal permission bits like \"0660\""),
        Some(m) if m > 0o777 => format!(
            "mode {text} has bits outside 0777 (setuid, setgid and sticky mean nothing on a \
             socket)"
        ),
        Some(m) if m & 0o002 != 0 => format!(
            "mode {m:04o} lets every local user connect (write permission for others); \
             give the VMM's group access instead: socket-group with a mode like \"0660\""
        ),
        Some(m) => return Some(m),
    };
    ctx.err(at(raw), path, problem);
    None
}

fn port(
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
        group_list,
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
        (PortKind::Internal, None)
    } else {
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
    };
    let group = match &r.port_group {
        Some(pg) => {
            let found = groups.iter().find(|g| g.name == pg.value);
            if found.is_none() {
                ctx.err(
                    at(pg),
                    &join(path, "port-group"),
                    unknown_ref(
                        "port group",
                        &pg.value,
                        group_list.iter().map(String::as_str),
                    ),
                );
            }
            found.cloned()
        }
        None => groups
            .iter()
            .find(|g| g.name == DEFAULT_PORT_GROUP)
            .cloned(),
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

fn sriov_pf(
    ctx: &mut Ctx,
    g: &mut Global,
    switches: &[Switch],
    raw: &S<RawPf>,
    path: &str,
) -> Option<SriovPf> {
    let r = &raw.value;
    let before = ctx.diags.len();
    let pf_path = join(path, "pf");
    if check_name(ctx, &r.pf, &pf_path, "PF", true) {
        unique(ctx, &mut g.pf_names, &r.pf, &pf_path, "PF");
    }
    let num_vfs = int_in(ctx, &r.num_vfs, &join(path, "num-vfs"), 0, MAX_VFS).map_or(0, to_u16);
    let mut vfs: Vec<SriovVf> = Vec::new();
    let mut seen: HashMap<i64, u64> = HashMap::new();
    for (i, vf) in r.vfs.iter().enumerate() {
        let p = format!("{path}.vfs[{i}]");
        let v = &vf.value;
        let idx = &v.index;
        if let Some(l) = seen.get(&idx.value) {
            ctx.err(
                at(idx),
                &join(&p, "index"),
                format!("VF {} is configured twice (first at line {l})", idx.value),
            );
            continue;
        }
        seen.insert(idx.value, line(idx));
        if idx.value < 0 || idx.value >= i64::from(num_vfs) {
            ctx.err(
                at(idx),
                &join(&p, "index"),
                format!(
                    "VF index {} is out of range: {} has num-vfs {num_vfs} (indexes 0-{})",
                    idx.value,
                    r.pf.value,
                    i64::from(num_vfs) - 1
                ),
            );
            continue;
        }
        let owner = format!("VF {} of {}", idx.value, r.pf.value);
        let mac = v
            .mac
            .as_ref()
            .and_then(|m| mac(ctx, m, &join(&p, "mac"), "VF", &owner, &mut g.macs));
        let vlan = match &v.port_group {
            None => None,
            Some(pg) => vf_vlan(ctx, switches, pg, &join(&p, "port-group")),
        };
        let (mut min, mut max) = (0, 0);
        if let Some(rate) = &v.rate {
            let rp = join(&p, "rate");
            if let Some(m) = &rate.value.min_mbps {
                min = int_in(ctx, m, &join(&rp, "min-mbps"), 0, u32::MAX.into()).map_or(0, to_u32);
            }
            if let Some(m) = &rate.value.max_mbps {
                max = int_in(ctx, m, &join(&rp, "max-mbps"), 0, u32::MAX.into()).map_or(0, to_u32);
            }
            if max != 0 && min > max {
                ctx.err(
                    at(rate),
                    &rp,
                    format!("min-mbps {min} is above max-mbps {max}"),
                );
            }
        }
        let qos = match &v.qos {
            None => 0,
            Some(q) => {
                let qos = int_in(ctx, q, &join(&p, "qos"), 0, 7).map_or(0, to_u16);
                if qos != 0 && vlan.is_none() && v.port_group.is_some() {
                    ctx.err(
                        at(q),
                        &join(&p, "qos"),
                        "qos needs a VF VLAN: the VF's port group has none".to_string(),
                    );
                } else if qos != 0 && v.port_group.is_none() {
                    ctx.err(
                        at(q),
                        &join(&p, "qos"),
                        "qos needs a VF VLAN: give the VF a port group with an access VLAN"
                            .to_string(),
                    );
                }
                u8::try_from(qos).unwrap_or(0)
            }
        };
        let vlan_protocol = match &v.vlan_protocol {
            None => VfVlanProtocol::Dot1Q,
            Some(vp) => match vp.value.trim().to_ascii_lowercase().as_str() {
                "802.1q" => VfVlanProtocol::Dot1Q,
                "802.1ad" => {
                    if v.port_group.is_none() {
                        ctx.err(
                            at(vp),
                            &join(&p, "vlan-protocol"),
                            "vlan-protocol 802.1ad needs a VF VLAN: give the VF a port group \
                             with an access VLAN"
                                .to_string(),
                        );
                    }
                    VfVlanProtocol::Dot1Ad
                }
                _ => {
                    ctx.err(
                        at(vp),
                        &join(&p, "vlan-protocol"),
                        format!(
                            "unknown VLAN protocol `{}` (expected 802.1Q or 802.1ad)",
                            vp.value
                        ),
                    );
                    VfVlanProtocol::Dot1Q
                }
            },
        };
        let release_mac = v.release_mac.as_ref().and_then(|m| {
            // A default for release, not an address in use: no uniqueness.
            self::mac(
                ctx,
                m,
                &join(&p, "release-mac"),
                "VF",
                &owner,
                &mut HashMap::new(),
            )
        });
        vfs.push(SriovVf {
            index: to_u16(idx.value),
            mac,
            port_group: v.port_group.as_ref().map(|r| r.value.clone()),
            vlan,
            qos,
            vlan_protocol,
            trust: v.trust.as_ref().is_some_and(|t| t.value),
            spoof_check: v.spoof_check.as_ref().is_none_or(|t| t.value),
            link_state: v.link_state.as_ref().map(|l| match l.value {
                RawLinkState::Auto => VfLinkState::Auto,
                RawLinkState::Enable => VfLinkState::Enable,
                RawLinkState::Disable => VfLinkState::Disable,
            }),
            min_tx_rate_mbps: min,
            max_tx_rate_mbps: max,
            vfio: v.vfio.as_ref().is_some_and(|t| t.value),
            release_mac,
        });
    }
    vfs.sort_by_key(|v| v.index);
    (ctx.diags.len() == before).then(|| SriovPf {
        pf: r.pf.value.clone(),
        num_vfs,
        vfs,
    })
}

/// The access VLAN a VF takes from a port group (looked up in every switch).
fn vf_vlan(ctx: &mut Ctx, switches: &[Switch], pg: &S<String>, path: &str) -> Option<VlanId> {
    let found: Vec<&PortGroup> = switches
        .iter()
        .filter_map(|s| s.port_group(&pg.value))
        .collect();
    let Some(first) = found.first() else {
        let mut all: Vec<&str> = switches
            .iter()
            .flat_map(|s| s.port_groups.iter().map(|g| g.name.as_str()))
            .collect();
        all.sort_unstable();
        all.dedup();
        ctx.err(
            at(pg),
            path,
            unknown_ref("port group", &pg.value, all.into_iter()),
        );
        return None;
    };
    if found.iter().any(|g| g.vlan != first.vlan) {
        ctx.err(
            at(pg),
            path,
            format!(
                "port group `{}` has different VLANs on different switches; a VF cannot tell which",
                pg.value
            ),
        );
        return None;
    }
    match &first.vlan {
        VlanMode::Access(v) => Some(*v),
        VlanMode::GuestTagging => None,
        VlanMode::Trunk { .. } => {
            ctx.err(
                at(pg),
                path,
                format!(
                    "port group `{}` is a trunk; a VF takes an access VLAN or `vlan: all`",
                    pg.value
                ),
            );
            None
        }
    }
}
