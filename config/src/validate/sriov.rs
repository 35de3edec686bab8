//! The `sriov:` section: one PF (name, VF count) and its VFs (index, MAC,
//! port group and VLAN, QoS, VLAN protocol, trust, spoof check, link
//! state, rates, vfio-pci, release MAC).

use std::collections::HashMap;

use super::values::mac;
use super::{Ctx, Global, at, check_name, int_in, join, line, to_u16, to_u32, unique, unknown_ref};
use crate::model::*;
use crate::raw::*;

/// Most VFs a PF may be given.
const MAX_VFS: i64 = 256;

/// One PF and its VFs; `None` if any of them had a problem (reported in
/// `ctx`). VF port groups are looked up in the validated `switches`.
pub(super) fn sriov_pf(
    ctx: &mut Ctx,
    g: &mut Global,
    switches: &[Switch],
    raw: &S<RawPf>,
    path: &str,
) -> Option<SriovPf> {
    let r = &raw.value;
    let before = ctx.diags.len();
    let pf_path = join(path, "pf");
    let named = check_name(ctx, &r.pf, &pf_path, "PF", true);
    if named {
        unique(ctx, &mut g.pf_names, &r.pf, &pf_path, "PF");
    }
    let num_vfs_path = join(path, "num-vfs");
    let checked_num_vfs = int_in(ctx, &r.num_vfs, &num_vfs_path, 0, MAX_VFS).map(to_u16);
    if named && let Some(n) = checked_num_vfs {
        on_the_host(ctx, &r.pf, &pf_path, &r.num_vfs, &num_vfs_path, n);
    }
    // With a wrong count the VFs' other settings are still checked, their
    // indexes are not (each would be one more error about the count).
    let num_vfs = checked_num_vfs.unwrap_or(u16::MAX);
    let mut vfs: Vec<SriovVf> = Vec::new();
    let mut seen: HashMap<i64, u64> = HashMap::new();
    for (i, raw_vf) in r.vfs.iter().enumerate() {
        let p = format!("{path}.vfs[{i}]");
        let v = &raw_vf.value;
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
        if checked_num_vfs.is_some() && (idx.value < 0 || idx.value >= i64::from(num_vfs)) {
            let range = match num_vfs {
                0 => "no VFs".to_string(),
                1 => "index 0".to_string(),
                n => format!("indexes 0-{}", n - 1),
            };
            ctx.err(
                at(idx),
                &join(&p, "index"),
                format!(
                    "VF index {} is out of range: {} has num-vfs {num_vfs} ({range})",
                    idx.value, r.pf.value,
                ),
            );
            continue;
        }
        vfs.push(vf(ctx, g, switches, v, &p, &r.pf.value));
    }
    vfs.sort_by_key(|v| v.index);
    (ctx.diags.len() == before).then(|| SriovPf {
        pf: r.pf.value.clone(),
        num_vfs,
        vfs,
    })
}

/// The PF as the host has it: it exists, it has SR-IOV, and it supports
/// `num_vfs` VFs. Checked here, with positions, so a reload with a
/// mistyped PF or too many VFs is refused before anything changes (a PF
/// that leaves the file is released).
fn on_the_host(
    ctx: &mut Ctx,
    pf: &S<String>,
    pf_path: &str,
    raw_num_vfs: &S<i64>,
    num_vfs_path: &str,
    num_vfs: u16,
) {
    let name = &pf.value;
    match ctx.host.sriov_pf(name) {
        Ok(PfLookup::NotChecked) => {}
        Ok(PfLookup::Missing) => ctx.err(
            at(pf),
            pf_path,
            format!("no network interface `{name}` on this host (`ip link` lists them)"),
        ),
        Ok(PfLookup::NotSriov) => ctx.err(
            at(pf),
            pf_path,
            format!("`{name}` is not an SR-IOV PF (its device has no sriov_totalvfs)"),
        ),
        Ok(PfLookup::TotalVfs(total)) if num_vfs > total => ctx.err(
            at(raw_num_vfs),
            num_vfs_path,
            format!("{num_vfs} VFs asked, `{name}` supports at most {total}"),
        ),
        Ok(PfLookup::TotalVfs(_)) => {}
        Err(e) => ctx.err(at(pf), pf_path, e),
    }
}

/// One VF of PF `pf`, its index already checked.
fn vf(ctx: &mut Ctx, g: &mut Global, switches: &[Switch], v: &RawVf, p: &str, pf: &str) -> SriovVf {
    let idx = &v.index;
    let owner = format!("VF {} of {}", idx.value, pf);
    let mac = v
        .mac
        .as_ref()
        .and_then(|m| mac(ctx, m, &join(p, "mac"), "VF", &owner, &mut g.macs));
    let vlan = match &v.port_group {
        None => None,
        Some(pg) => vf_vlan(ctx, switches, pg, &join(p, "port-group")),
    };
    let (min, max) = vf_rate(ctx, v, p);
    let qos = vf_qos(ctx, v, vlan, p);
    let vlan_protocol = vf_vlan_protocol(ctx, v, p);
    let release_mac = v.release_mac.as_ref().and_then(|m| {
        // A default for release, not an address in use: no uniqueness.
        self::mac(
            ctx,
            m,
            &join(p, "release-mac"),
            "VF",
            &owner,
            &mut HashMap::new(),
        )
    });
    SriovVf {
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
    }
}

/// `rate:` as (min, max) Mbit/s; 0 is no limit.
fn vf_rate(ctx: &mut Ctx, v: &RawVf, p: &str) -> (u32, u32) {
    let (mut min, mut max) = (0, 0);
    if let Some(rate) = &v.rate {
        let rp = join(p, "rate");
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
    (min, max)
}

/// `qos:` (0-7), which needs the VLAN the VF's port group gives.
fn vf_qos(ctx: &mut Ctx, v: &RawVf, vlan: Option<VlanId>, p: &str) -> u8 {
    match &v.qos {
        None => 0,
        Some(q) => {
            let qos = int_in(ctx, q, &join(p, "qos"), 0, 7).map_or(0, to_u16);
            if qos != 0 && vlan.is_none() && v.port_group.is_some() {
                ctx.err(
                    at(q),
                    &join(p, "qos"),
                    "qos needs a VF VLAN: the VF's port group has none".to_string(),
                );
            } else if qos != 0 && v.port_group.is_none() {
                ctx.err(
                    at(q),
                    &join(p, "qos"),
                    "qos needs a VF VLAN: give the VF a port group with an access VLAN".to_string(),
                );
            }
            u8::try_from(qos).unwrap_or(0)
        }
    }
}

/// `vlan-protocol:` (802.1Q or 802.1ad).
fn vf_vlan_protocol(ctx: &mut Ctx, v: &RawVf, p: &str) -> VfVlanProtocol {
    match &v.vlan_protocol {
        None => VfVlanProtocol::Dot1Q,
        Some(vp) => match vp.value.trim().to_ascii_lowercase().as_str() {
            "802.1q" => VfVlanProtocol::Dot1Q,
            "802.1ad" => {
                if v.port_group.is_none() {
                    ctx.err(
                        at(vp),
                        &join(p, "vlan-protocol"),
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
                    &join(p, "vlan-protocol"),
                    format!(
                        "unknown VLAN protocol `{}` (expected 802.1Q or 802.1ad)",
                        vp.value
                    ),
                );
                VfVlanProtocol::Dot1Q
            }
        },
    }
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
