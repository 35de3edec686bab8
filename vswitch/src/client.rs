//! The client side of the control protocol, and the human-readable tables
//! `vswitchctl` prints (SR-IOV's too).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::{
    FdbFlushReply, MacTableReply, PmdShowReply, ReloadReply, Request, Response, StatsReply,
    StatusReply, TeamExplainReply, TeamShowReply, VersionReply, VlanShowReply,
};
use crate::sriov_service::SriovShow;
use sriov::{AttachInfo, VlanProto};

/// How long to wait for the daemon's answer (a reload that creates many
/// ports takes a moment).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon answers on the socket.
    #[error("cannot connect to vswitchd at {}: {source} (is it running? use --socket or --runtime-dir)", path.display())]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The connection failed mid-request.
    #[error("talking to vswitchd: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon's answer is not what the protocol says.
    #[error("unexpected answer from vswitchd: {0}")]
    Protocol(String),
    /// The daemon answered with an error.
    #[error("{0}")]
    Daemon(String),
}

/// The control socket under `runtime_dir` (default `/run/vswitch`), with
/// the default file name. A file may name another: then use `--socket`.
pub fn default_socket(runtime_dir: Option<&Path>) -> PathBuf {
    runtime_dir
        .unwrap_or_else(|| Path::new(config::DEFAULT_RUNTIME_DIR))
        .join(config::DEFAULT_CONTROL_SOCKET)
}

/// Sends one request and returns the `result` of a successful answer.
pub fn request(socket: &Path, req: &Request) -> Result<serde_json::Value, ClientError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
    let mut line = serde_json::to_vec(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    // A daemon that refuses the peer answers and closes without reading:
    // the write may fail, and the answer is still there to read.
    let written = stream.write_all(&line);
    let mut answer = String::new();
    let read = BufReader::new(stream).read_line(&mut answer);
    if answer.is_empty() {
        written?;
        read?;
        return Err(ClientError::Protocol(
            "the daemon closed the connection".into(),
        ));
    }
    let resp: Response =
        serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))?;
    match (resp.ok, resp.result, resp.error) {
        (true, Some(v), _) => Ok(v),
        (true, None, _) => Ok(serde_json::Value::Null),
        (false, _, Some(e)) => Err(ClientError::Daemon(e)),
        (false, _, None) => Err(ClientError::Daemon("failed (no reason given)".into())),
    }
}

/// Decodes a `result` into its reply type.
pub fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, ClientError> {
    serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Left-aligned columns, two spaces apart, each line prefixed by `indent`.
fn table(indent: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = indent.to_string();
        for (i, (c, w)) in cells.zip(&width).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(&format!("{c:<w$}"));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

fn dash(s: Option<String>) -> String {
    s.unwrap_or_else(|| "-".into())
}

/// `vswitchctl status`.
pub fn format_status(s: &StatusReply) -> String {
    let mut out = format!(
        "vswitchd {}, config {}, {} PMD thread(s) per switch ({}), {} reload(s)\n",
        s.version,
        s.config_file.as_ref().map_or_else(
            || "<built-in default>".to_string(),
            |p| p.display().to_string()
        ),
        s.pmd_threads.len(),
        s.pmd_threads
            .iter()
            .map(|p| format!(
                "{} {}",
                p.core.map_or("any CPU".to_string(), |c| format!("CPU {c}")),
                p.idle
            ))
            .collect::<Vec<_>>()
            .join(", "),
        s.reloads
    );
    for sw in &s.switches {
        out.push_str(&format!(
            "switch {} (MTU {}, MAC table max {} entries, aging {} s, {} per port)\n",
            sw.name,
            sw.mtu,
            sw.mac_table.max_entries,
            sw.mac_table.aging_seconds,
            sw.mac_table.per_port_limit
        ));
        let rows: Vec<Vec<String>> = sw
            .ports
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.kind.clone(),
                    dash(p.role.clone()),
                    dash(p.socket.as_ref().map(|s| s.display().to_string())),
                    yes_no(p.connected).to_string(),
                    match (p.queues_running, p.queues) {
                        (Some(r), Some(q)) => format!("{r}/{q}"),
                        (None, Some(q)) => format!("-/{q}"),
                        _ => "-".to_string(),
                    },
                    p.port_group.clone(),
                    p.vlan.text.clone(),
                    dash(p.mac.clone()),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&table(
                "  ",
                &[
                    "PORT",
                    "TYPE",
                    "ROLE",
                    "SOCKET",
                    "CONNECTED",
                    "QUEUES",
                    "PORT GROUP",
                    "VLAN",
                    "MAC",
                ],
                &rows,
            ));
        }
        let rows: Vec<Vec<String>> = sw
            .uplinks
            .iter()
            .map(|u| {
                vec![
                    u.name.clone(),
                    u.driver.clone(),
                    dash(u.team.clone()),
                    u.vlan.text.clone(),
                    if u.running { "yes".into() } else { "no".into() },
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&table(
                "  ",
                &["UPLINK", "DRIVER", "TEAM", "VLAN", "RUNNING"],
                &rows,
            ));
        }
    }
    out
}

fn named_counts(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `vswitchctl stats`.
pub fn format_stats(s: &StatsReply) -> String {
    let mut out = String::new();
    for sw in &s.switches {
        out.push_str(&format!("switch {}\n", sw.name));
        let rows: Vec<Vec<String>> = sw
            .ports
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.rx_packets.to_string(),
                    p.rx_bytes.to_string(),
                    p.tx_packets.to_string(),
                    p.tx_bytes.to_string(),
                    p.tx_dropped.to_string(),
                    named_counts(&p.drops),
                ]
            })
            .collect();
        out.push_str(&table(
            "  ",
            &[
                "PORT",
                "RX PACKETS",
                "RX BYTES",
                "TX PACKETS",
                "TX BYTES",
                "TX DROPPED",
                "DROPPED ON INGRESS (BY REASON)",
            ],
            &rows,
        ));
        for p in &sw.ports {
            let mut extra = Vec::new();
            if let Some(v) = &p.vhost
                && !v.is_empty()
            {
                extra.push(format!("vhost-user: {}", named_counts(v)));
            }
            let nonzero = |m: &std::collections::BTreeMap<String, u64>| {
                m.iter()
                    .filter(|&(_, &v)| v > 0)
                    .map(|(k, &v)| (k.clone(), v))
                    .collect::<std::collections::BTreeMap<_, _>>()
            };
            if let Some(n) = &p.netdev {
                let n = nonzero(n);
                if !n.is_empty() {
                    extra.push(format!("socket: {}", named_counts(&n)));
                }
            }
            for m in &p.members {
                let n = nonzero(&m.netdev);
                if !n.is_empty() {
                    extra.push(format!("member {}: {}", m.name, named_counts(&n)));
                }
            }
            for (k, v) in [
                ("not learned (port limit)", p.mac_learn_limit),
                ("not learned (table full)", p.mac_table_full),
                ("MAC moves", p.mac_moves),
            ] {
                if v > 0 {
                    extra.push(format!("{k} {v}"));
                }
            }
            if !extra.is_empty() {
                out.push_str(&format!("  {}: {}\n", p.name, extra.join("; ")));
            }
        }
        for p in &sw.pmds {
            let busy = if p.iterations == 0 {
                0.0
            } else {
                100.0 * p.busy_iterations as f64 / p.iterations as f64
            };
            out.push_str(&format!(
                "  pmd {}: {} polls, {busy:.1}% busy, {} idle sleeps, {:.2} s CPU\n",
                p.index,
                p.iterations,
                p.idle_sleeps,
                p.cpu_time_ns as f64 / 1e9
            ));
        }
    }
    out
}

/// `vswitchctl mac-table`.
pub fn format_mac_table(t: &MacTableReply) -> String {
    let mut out = String::new();
    for sw in &t.switches {
        out.push_str(&format!(
            "switch {} ({} entr{})\n",
            sw.name,
            sw.entries.len(),
            if sw.entries.len() == 1 { "y" } else { "ies" }
        ));
        if sw.entries.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = sw
            .entries
            .iter()
            .map(|e| {
                vec![
                    e.vlan.to_string(),
                    e.mac.clone(),
                    e.port.clone(),
                    if e.is_static { "static" } else { "dynamic" }.into(),
                    if e.is_static {
                        "-".into()
                    } else {
                        format!("{} s", e.age)
                    },
                    e.ipv4.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&table(
            "  ",
            &["VLAN", "MAC", "PORT", "TYPE", "AGE", "IPV4"],
            &rows,
        ));
    }
    out
}

/// `vswitchctl fdb flush`.
pub fn format_fdb_flush(r: &FdbFlushReply) -> String {
    let mut out = String::new();
    for sw in &r.switches {
        out.push_str(&format!(
            "switch {}: {} learned entr{} flushed\n",
            sw.name,
            sw.flushed,
            if sw.flushed == 1 { "y" } else { "ies" }
        ));
    }
    out
}

fn member_list(members: &[crate::protocol::VlanMember], tagged: bool) -> String {
    let names: Vec<&str> = members
        .iter()
        .filter(|m| m.tagged == tagged)
        .map(|m| m.port.as_str())
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(", ")
    }
}

/// `vswitchctl vlan show`.
pub fn format_vlans(r: &VlanShowReply) -> String {
    let mut out = String::new();
    for sw in &r.switches {
        out.push_str(&format!("switch {}\n", sw.name));
        let rows: Vec<Vec<String>> = sw
            .vlans
            .iter()
            .map(|v| {
                vec![
                    v.vlan.to_string(),
                    member_list(&v.members, false),
                    member_list(&v.members, true),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&table("  ", &["VLAN", "UNTAGGED", "TAGGED"], &rows));
        }
        if !sw.all_vlans.is_empty() {
            out.push_str(&format!(
                "  every VLAN (tagged): {}\n",
                sw.all_vlans
                    .iter()
                    .map(|m| format!("{} ({})", m.port, m.mode))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out
}

/// `vswitchctl pmd show`.
pub fn format_pmds(r: &PmdShowReply) -> String {
    let mut out = String::new();
    for sw in &r.switches {
        out.push_str(&format!("switch {}\n", sw.name));
        let rows: Vec<Vec<String>> = sw
            .pmds
            .iter()
            .map(|p| {
                let busy = if p.iterations == 0 {
                    "-".to_string()
                } else {
                    format!(
                        "{:.1}%",
                        100.0 * p.busy_iterations as f64 / p.iterations as f64
                    )
                };
                vec![
                    p.index.to_string(),
                    p.core.map_or_else(|| "any".to_string(), |c| c.to_string()),
                    p.idle.clone(),
                    if p.rx_ports.is_empty() {
                        "-".into()
                    } else {
                        p.rx_ports.join(", ")
                    },
                    p.tx_ports.to_string(),
                    p.iterations.to_string(),
                    busy,
                    p.idle_sleeps.to_string(),
                    format!("{:.2} s", p.cpu_time_ns as f64 / 1e9),
                ]
            })
            .collect();
        out.push_str(&table(
            "  ",
            &[
                "PMD",
                "CORE",
                "IDLE",
                "RX QUEUES",
                "TX PORTS",
                "POLLS",
                "BUSY",
                "SLEEPS",
                "CPU",
            ],
            &rows,
        ));
    }
    out.push_str("BUSY: share of polls that received frames; CPU: thread CPU time, sampled.\n");
    out
}

/// `vswitchctl team show`: per team, its settings, members with state and
/// counters, each guest MAC's member and why, and recent events.
pub fn format_teams(r: &TeamShowReply) -> String {
    let mut out = String::new();
    if r.teams.is_empty() {
        out.push_str("no teams\n");
    }
    for t in &r.teams {
        out.push_str(&format!(
            "team {} (switch {}, port {}): {}, failback {}, failure detection {}, notify switches {}\n",
            t.name,
            t.switch,
            t.id,
            t.policy,
            if t.failback { "on" } else { "off" },
            t.failure_detection,
            if t.notify_switches { "on" } else { "off" },
        ));
        out.push_str(&format!(
            "  physical switch needs: {}; broadcast received on: {}; now t={:.3}s\n",
            t.switch_requirement,
            t.designated_receiver.as_deref().unwrap_or("-"),
            t.now_secs
        ));
        let rows: Vec<Vec<String>> = t
            .members
            .iter()
            .map(|m| {
                vec![
                    m.name.clone(),
                    m.role.clone(),
                    if !m.present {
                        "absent".into()
                    } else if m.link_up {
                        "up".into()
                    } else {
                        "down".into()
                    },
                    m.link_since.clone(),
                    m.beacon.clone().unwrap_or_else(|| "-".into()),
                    if m.usable { "yes" } else { "no" }.into(),
                    m.buckets.to_string(),
                    m.rx_packets.to_string(),
                    m.tx_packets.to_string(),
                    m.tx_dropped.to_string(),
                    m.rx_filtered.to_string(),
                    m.rx_beacons.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            "  ",
            &[
                "MEMBER",
                "ROLE",
                "LINK",
                "SINCE",
                "BEACON",
                "USABLE",
                "BUCKETS",
                "RX",
                "TX",
                "TX DROP",
                "RX FILTERED",
                "BEACONS",
            ],
            &rows,
        ));
        out.push_str(&format!(
            "  dropped for lack of a usable member: {}; announcements sent: {}\n",
            t.no_member_drops, t.announcements_sent
        ));
        if !t.guests.is_empty() {
            out.push_str("  guests:\n");
            for g in &t.guests {
                let ip = g.ipv4.as_ref().map_or(String::new(), |ip| format!(" {ip}"));
                out.push_str(&format!(
                    "    {} {}{ip} VLAN {}: {}\n",
                    g.port, g.mac, g.vlan, g.why
                ));
            }
        }
        if !t.events.is_empty() {
            out.push_str("  events:\n");
            for e in &t.events {
                out.push_str(&format!("    {} {}\n", e.at, e.what));
            }
        }
    }
    out
}

/// `vswitchctl team explain`.
pub fn format_team_explain(r: &TeamExplainReply) -> String {
    format!("{}\n", r.why)
}

/// `vswitchctl config check FILE`: a short summary of a valid file.
pub fn format_config_summary(file: &Path, cfg: &config::Config) -> String {
    let mut out = format!("{}: valid\n", file.display());
    for sw in &cfg.switches {
        out.push_str(&format!(
            "  switch {}: MTU {}, {} port group(s), {} port(s), {} uplink(s), {} team(s)\n",
            sw.name,
            sw.mtu,
            sw.port_groups.len(),
            sw.ports.len(),
            sw.uplinks.len(),
            sw.teams.len()
        ));
    }
    out.push_str(&format_sriov_summary("  ", cfg));
    out
}

/// The `sriov:` section in short, one line per PF, each starting with
/// `indent`: its VF count, the VFs with settings (the daemon configures
/// and releases those; other VFs are left alone) and those handed to
/// vfio-pci. Empty without SR-IOV. (`config check` and vswitchd's
/// start-up banner.)
pub fn format_sriov_summary(indent: &str, cfg: &config::Config) -> String {
    let list = |v: Vec<u16>| v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    for pf in &cfg.sriov {
        let _ = write!(out, "{indent}sriov {}: {} VF(s)", pf.pf, pf.num_vfs);
        let set: Vec<u16> = pf.vfs.iter().map(|v| v.index).collect();
        if set.is_empty() {
            out.push_str(", none with settings");
        } else {
            let _ = write!(out, ", {} with settings (VF {})", set.len(), list(set));
        }
        let vfio: Vec<u16> = pf.vfs.iter().filter(|v| v.vfio).map(|v| v.index).collect();
        if !vfio.is_empty() {
            let _ = write!(out, ", {} for vfio-pci (VF {})", vfio.len(), list(vfio));
        }
        out.push('\n');
    }
    out
}

/// `vswitchctl reload`: the changes, then one line saying what happened.
pub fn format_reload(r: &ReloadReply) -> String {
    let mut out = String::new();
    for c in &r.changes {
        out.push_str(c);
        out.push('\n');
    }
    for c in &r.ignored {
        out.push_str(c);
        out.push('\n');
    }
    for c in &r.sriov {
        out.push_str("sriov: ");
        out.push_str(c);
        out.push('\n');
    }
    out.push_str(&r.summary());
    out.push('\n');
    out
}

/// `vswitchctl version`.
pub fn format_version(client: &str, v: &VersionReply) -> String {
    format!(
        "vswitchctl {client}, vswitchd {} (control protocol {})\n",
        v.version, v.protocol
    )
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// `vswitchctl sriov show` as text.
pub fn format_sriov_show(show: &SriovShow) -> String {
    let mut s = String::new();
    if show.pfs.is_empty() {
        s.push_str("no SR-IOV PFs\n");
        return s;
    }
    for pf in &show.pfs {
        let v = &pf.view;
        let _ = write!(s, "PF {}", v.name);
        if let Some(pci) = v.pci {
            let _ = write!(
                s,
                " ({pci}, {}): {} of {} VFs",
                v.driver.as_deref().unwrap_or("no driver"),
                v.num_vfs,
                v.total_vfs
            );
        }
        s.push_str(if pf.managed {
            ", managed\n"
        } else {
            ", not in the config\n"
        });
        if let Some(e) = &v.error {
            let _ = writeln!(s, "  error: {e}");
        }
        if v.vfs.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<3} {:<13} {:<6} {:<17} {:<10} {:<5} {:<5} {:<7} {:<9} {:<9} OWNER",
            "VF", "PCI", "GROUP", "MAC", "VLAN", "SPOOF", "TRUST", "LINK", "RATE", "VSWITCHD"
        );
        for vf in &v.vfs {
            let (mac, vlan, spoof, trust, link, rate) = match &vf.settings {
                Some(st) => (
                    st.mac.to_string(),
                    match (st.vlan, st.qos, st.vlan_proto) {
                        (0, _, _) => "-".to_string(),
                        (id, q, Some(VlanProto::Dot1Ad)) => format!("{id}/{q} ad"),
                        (id, 0, _) => id.to_string(),
                        (id, q, _) => format!("{id}/{q}"),
                    },
                    on_off(st.spoof_check),
                    on_off(st.trust),
                    st.link_state.map_or("-".to_string(), |l| l.to_string()),
                    if st.min_tx_rate_mbps == 0 && st.max_tx_rate_mbps == 0 {
                        "-".to_string()
                    } else {
                        format!("{}-{}", st.min_tx_rate_mbps, st.max_tx_rate_mbps)
                    },
                ),
                None => (
                    "?".to_string(),
                    "?".to_string(),
                    "?",
                    "?",
                    "?".to_string(),
                    "?".to_string(),
                ),
            };
            let _ = writeln!(
                s,
                "  {:<3} {:<13} {:<6} {:<17} {:<10} {:<5} {:<5} {:<7} {:<9} {:<9} {}",
                vf.index,
                vf.pci.to_string(),
                vf.iommu_group.map_or("-".to_string(), |g| g.to_string()),
                mac,
                vlan,
                spoof,
                trust,
                link,
                rate,
                if vf.managed { "managed" } else { "unmanaged" },
                vf.owner
            );
        }
    }
    s.push_str(
        "(VSWITCHD: managed = configured by vswitchd, released by it; unmanaged = left alone; \
         RATE min-max Mbit/s; VLAN id/qos)\n",
    );
    s
}

/// `vswitchctl sriov attach-info VF` as text.
pub fn format_sriov_attach_info(a: &AttachInfo) -> String {
    let mut s = format!("VF {} ({})", a.vf, a.pci);
    match (a.iommu_group, &a.vfio_group) {
        (Some(n), Some(dev)) => {
            let _ = write!(s, ", IOMMU group {n} ({dev})");
        }
        (Some(n), None) => {
            let _ = write!(s, ", IOMMU group {n}");
        }
        (None, _) => s.push_str(", no IOMMU group"),
    }
    let _ = writeln!(s, ", driver {}", a.driver.as_deref().unwrap_or("none"));
    match &a.problem {
        None => s.push_str("ready for a VM\n"),
        Some(p) => {
            let _ = writeln!(s, "NOT ready: {p}");
        }
    }
    let _ = writeln!(s, "\nQEMU:\n  {}", a.qemu);
    let _ = writeln!(s, "\nlibvirt (domain <devices>):");
    for l in a.libvirt.lines() {
        let _ = writeln!(s, "  {l}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            "  ",
            &["A", "LONG HEADER"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
        );
        assert_eq!(t, "  A    LONG HEADER\n  xyz  1\n  q    22\n");
    }

    #[test]
    fn config_check_and_the_banner_summarize_sriov() {
        let cfg = config::parse_str(
            "
switches:
  - name: sw0
    port-groups: [{ name: v10, vlan: 10 }]
sriov:
  - pf: enp1s0
    num-vfs: 4
    vfs:
      - { index: 0, port-group: v10 }
      - { index: 2, vfio: true }
      - { index: 3, vfio: true, mac: 02:00:00:00:00:03 }
  - pf: enp2s0
    num-vfs: 2
",
            "t.yaml",
        )
        .expect("valid");
        let want = "  sriov enp1s0: 4 VF(s), 3 with settings (VF 0, 2, 3), 2 for vfio-pci (VF 2, 3)\n  \
                    sriov enp2s0: 2 VF(s), none with settings\n";
        assert_eq!(format_sriov_summary("  ", &cfg), want);
        let check = format_config_summary(Path::new("t.yaml"), &cfg);
        assert!(check.ends_with(want), "{check}");
        let banner = crate::daemon::describe(&cfg, &[]);
        assert!(
            banner.contains("sriov enp1s0: 4 VF(s), 3 with settings (VF 0, 2, 3)"),
            "{banner}"
        );
        let none = config::parse_str("switches: [{ name: sw0 }]", "t.yaml").expect("valid");
        assert_eq!(format_sriov_summary("  ", &none), "");
    }

    #[test]
    fn a_dry_run_says_sriov_changes_would_be_made() {
        let r = ReloadReply {
            dry_run: true,
            config_file: Some("/etc/v.yaml".into()),
            changes: vec![],
            ignored: vec![],
            applied: false,
            sriov: vec![
                "eth0 VF 0: vlan 20 (was vlan 5)".into(),
                "error: unknown PF".into(),
            ],
        };
        assert_eq!(
            format_reload(&r),
            "sriov: eth0 VF 0: vlan 20 (was vlan 5)\nsriov: error: unknown PF\n\
             dry run: /etc/v.yaml: no changes; SR-IOV: 1 change, 1 error (would be made)\n"
        );
    }

    #[test]
    fn reload_summary() {
        let r = ReloadReply {
            dry_run: true,
            config_file: Some("/etc/v.yaml".into()),
            changes: vec!["port vm7: VLAN 10 -> 20".into()],
            ignored: vec![],
            applied: false,
            sriov: vec![],
        };
        assert_eq!(
            format_reload(&r),
            "port vm7: VLAN 10 -> 20\ndry run: /etc/v.yaml: 1 change would be applied; nothing changed\n"
        );
    }
}
