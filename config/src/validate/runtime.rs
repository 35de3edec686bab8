//! The `runtime:` section: PMD cores, idle policy, runtime directory and
//! control socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

use super::{Ctx, Sockets, at, line, to_u32};
use crate::model::*;
use crate::raw::*;

/// Highest CPU id accepted in `pmd-cores` (CPU_SETSIZE - 1).
const MAX_CPU: i64 = 1023;

/// The runtime settings; `runtime_dir` (the command line's) overrides the
/// file's. Registers the control socket in `sockets`.
pub(super) fn runtime_section(
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
    let cores = pmd_cores(ctx, rt);
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

/// `pmd-cores`, sorted: CPU ids and ranges, each CPU listed once.
fn pmd_cores(ctx: &mut Ctx, rt: &RawRuntime) -> Vec<u32> {
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
    cores
}

/// The `metrics:` section: `listen` is an IP address and a port (host
/// names are not resolved: the daemon binds exactly what the file says).
pub(super) fn metrics_section(ctx: &mut Ctx, raw: &S<RawMetrics>) -> Option<Metrics> {
    let Some(l) = &raw.value.listen else {
        let listen = DEFAULT_METRICS_LISTEN.parse().ok()?;
        return Some(Metrics { listen });
    };
    let path = "metrics.listen";
    let text = l.value.trim();
    match text.parse::<std::net::SocketAddr>() {
        Ok(a) if a.port() == 0 => {
            ctx.err(
                at(l),
                path,
                format!("`{text}`: port 0 is not a port to listen on; pick one, like 9477"),
            );
            None
        }
        Ok(listen) => Some(Metrics { listen }),
        Err(_) => {
            let hint = if text.parse::<std::net::Ipv4Addr>().is_ok() {
                " (the port is missing)"
            } else if text.matches(':').count() > 1 && !text.starts_with('[') {
                " (an IPv6 address goes in brackets, the port after them: [::1]:9477)"
            } else if text.starts_with(|c: char| c.is_ascii_alphabetic()) {
                " (host names are not resolved; write an IP address)"
            } else {
                ""
            };
            ctx.err(
                at(l),
                path,
                format!(
                    "`{text}` is not an IP address and port like 127.0.0.1:9477 or [::1]:9477{hint}"
                ),
            );
            None
        }
    }
}
