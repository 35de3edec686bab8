//! Values several sections take: VLAN settings (ports, port groups),
//! security policies (ports, port groups) and MAC addresses (ports, VFs).

use std::collections::HashMap;

use serde_saphyr::Location;

use super::{Ctx, at, join, line};
use crate::error::suggestion;
use crate::model::*;
use crate::raw::*;

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
pub(super) fn vlan_mode(ctx: &mut Ctx, v: &S<RawVlan>, path: &str) -> Option<VlanMode> {
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
pub(super) fn security(
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
pub(super) fn mac(
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
