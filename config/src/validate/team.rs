//! A switch's uplinks and its teams of uplinks: names, drivers, port
//! groups, team members (each uplink in one team at most) and policies.

use std::collections::HashMap;

use super::switch::Groups;
use super::{Ctx, Global, at, check_name, join, line, unique, unknown_ref};
use crate::model::*;
use crate::raw::*;

/// The switch's uplinks, each with its index in the file; a bad or
/// duplicate name drops the uplink (already reported).
pub(super) fn uplinks(
    ctx: &mut Ctx,
    g: &Global,
    s: &RawSwitch,
    groups: &Groups,
    path: &str,
) -> Vec<(Uplink, usize)> {
    let mut uplinks: Vec<(Uplink, usize)> = Vec::new();
    for (i, u) in s.uplinks.iter().enumerate() {
        let p = format!("{path}.uplinks[{i}]");
        if !check_name(ctx, &u.value.name, &join(&p, "name"), "uplink", true)
            || g.duplicate_names.contains(&at(&u.value.name))
        {
            continue;
        }
        let ifname = &u.value.name.value;
        match ctx.host.interface_exists(ifname) {
            Ok(Some(true) | None) => {}
            Ok(Some(false)) => ctx.err(
                at(&u.value.name),
                &join(&p, "name"),
                format!(
                    "no network interface `{ifname}` on this host (uplinks are opened \
                     when the switch starts: create the interface first; `ip link` lists them)"
                ),
            ),
            Err(e) => ctx.err(at(&u.value.name), &join(&p, "name"), e),
        }
        let driver = match u.value.driver.as_ref().map(|d| d.value) {
            Some(RawDriver::AfPacket) => UplinkDriver::AfPacket,
            Some(RawDriver::AfXdp) | None => UplinkDriver::AfXdp,
        };
        let vlan = match &u.value.port_group {
            Some(r) => groups
                .find(ctx, r, &join(&p, "port-group"))
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
    uplinks
}

/// What a team's checks take from its switch.
struct TeamScope<'a> {
    s: &'a RawSwitch,
    groups: &'a Groups,
    uplinks: &'a [(Uplink, usize)],
    /// The switch's path, like `switches[0]`.
    path: &'a str,
}

/// Team members: uplink name -> (team, line).
type MemberOf = HashMap<String, (String, u64)>;

/// The switch's teams; a team is one port of its switch and shares the
/// port namespace.
pub(super) fn teams(
    ctx: &mut Ctx,
    g: &mut Global,
    s: &RawSwitch,
    groups: &Groups,
    uplinks: &[(Uplink, usize)],
    path: &str,
) -> Vec<Team> {
    let scope = TeamScope {
        s,
        groups,
        uplinks,
        path,
    };
    let mut teams = Vec::new();
    let mut member_of: MemberOf = HashMap::new();
    for (i, t) in s.teams.iter().enumerate() {
        let p = format!("{path}.teams[{i}]");
        teams.push(team(ctx, g, &scope, &mut member_of, &t.value, &p));
    }
    teams
}

fn team(
    ctx: &mut Ctx,
    g: &mut Global,
    scope: &TeamScope<'_>,
    member_of: &mut MemberOf,
    tv: &RawTeam,
    p: &str,
) -> Team {
    let groups = scope.groups;
    if check_name(ctx, &tv.name, &join(p, "name"), "team", false) {
        // A team is one port of its switch: it shares the port namespace.
        unique(ctx, &mut g.port_names, &tv.name, &join(p, "name"), "team");
    }
    let team_name = tv.name.value.clone();
    let [active, standby, unused] = team_members(ctx, scope, member_of, tv, p);
    if tv.active.is_empty() {
        ctx.err(
            at(&tv.name),
            &join(p, "active"),
            format!(
                "team `{team_name}` has no active member; list at least one uplink under `active:`"
            ),
        );
    }
    let group = tv
        .port_group
        .as_ref()
        .and_then(|r| groups.find(ctx, r, &join(p, "port-group")));
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
            &join(p, "failure-detection"),
            format!(
                "team `{team_name}`: beacon probing does not work with a hash policy (the physical switch bundles the members into one EtherChannel and never returns a beacon); use `failure-detection: link`"
            ),
        );
    } else if let Some(fd) = tv.failure_detection.as_ref()
        && matches!(fd.value, RawDetection::Beacon)
        && !tv.active.is_empty()
        && tv.active.len() + tv.standby.len() < 3
    {
        // With two members a broken path leaves both suspect and the
        // team cannot tell which side failed (VMware asks for three).
        let probed = tv.active.len() + tv.standby.len();
        ctx.err(
            at(fd),
            &join(p, "failure-detection"),
            format!(
                "team `{team_name}`: beacon probing needs three members or more in `active` and `standby` (it has {probed}): with two, a broken path leaves both suspect and the team cannot tell which one failed; add a member or use `failure-detection: link`"
            ),
        );
    }
    Team {
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
    }
}

/// The `active`, `standby` and `unused` lists of a team: uplinks of this
/// switch, each listed once and in no other team.
fn team_members(
    ctx: &mut Ctx,
    scope: &TeamScope<'_>,
    member_of: &mut MemberOf,
    tv: &RawTeam,
    p: &str,
) -> [Vec<String>; 3] {
    let TeamScope {
        s, uplinks, path, ..
    } = *scope;
    let team_name = &tv.name.value;
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
    lists
}

/// Members take their team's VLAN mode and port group.
pub(super) fn adopt_team_settings(uplinks: Vec<(Uplink, usize)>, teams: &[Team]) -> Vec<Uplink> {
    uplinks
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
        .collect()
}
