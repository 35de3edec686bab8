//! The Prometheus endpoint's side of the daemon: the exposition text,
//! read from the same per-PMD counters as `stats`, `pmd show` and
//! `team show` (atomics the PMDs write; no PMD is asked anything or
//! waited for), and starting, moving or stopping the listener.

use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use dataplane::DropReason;

use super::Daemon;
use crate::metrics::{Exposition, MetricsServer, Scrape};

/// The daemon as the endpoint sees it: weakly, so the listener thread
/// does not keep a stopped daemon alive.
struct DaemonScrape(Weak<Mutex<Daemon>>);

impl Scrape for DaemonScrape {
    fn scrape(&self) -> Option<String> {
        let d = self.0.upgrade()?;
        let text = d
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .metrics_text();
        Some(text)
    }
}

impl Daemon {
    /// Starts serving the endpoint on `listener` (replacing a running
    /// one).
    pub fn serve_metrics(&mut self, listener: TcpListener) -> std::io::Result<()> {
        self.metrics = None;
        let source: Arc<dyn Scrape> = Arc::new(DaemonScrape(self.this.clone()));
        self.metrics = Some(MetricsServer::serve(listener, source)?);
        Ok(())
    }

    /// The address the endpoint listens on, if it runs.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::addr)
    }

    /// Every metric, in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut e = Exposition::default();
        e.gauge(
            "vswitch_build_info",
            "vswitchd's version, as a label; always 1.",
        )
        .add(&[("version", env!("CARGO_PKG_VERSION"))], 1u64);
        e.counter(
            "vswitch_reloads_total",
            "Configuration reloads (SIGHUP or vswitchctl reload; dry runs not counted), by result.",
        )
        .add(&[("result", "success")], self.reloads)
        .add(&[("result", "failure")], self.reload_failures);
        e.gauge(
            "vswitch_config_last_reload_successful",
            "Whether the last reload applied (1 also before any reload).",
        )
        .add(&[], self.last_reload_ok);
        e.gauge(
            "vswitch_config_last_reload_timestamp_seconds",
            "Unix time of the last reload attempt (of the start before any).",
        )
        .add(&[], self.last_reload_at);
        self.port_metrics(&mut e);
        self.pmd_metrics(&mut e);
        self.team_metrics(&mut e);
        e.render()
    }

    fn port_metrics(&self, e: &mut Exposition) {
        for sw in self.stats().switches {
            let Some(r) = self.switches.get(&sw.name) else {
                continue;
            };
            let s = sw.name.as_str();
            if let Some(cfg) = self.config.switch(s) {
                let entries = r
                    .switch
                    .pmd_stats()
                    .first()
                    .map_or(0, |p| p.mac_entries.get());
                e.gauge(
                    "vswitch_mac_table_entries",
                    "MAC table entries (static and learned), as PMD 0's replica holds them (sampled twice a second).",
                )
                .add(&[("switch", s)], entries);
                e.gauge(
                    "vswitch_mac_table_max_entries",
                    "The MAC table's configured size.",
                )
                .add(&[("switch", s)], u64::from(cfg.mac_table.max_entries));
            }
            for p in &sw.ports {
                let l = [("switch", s), ("port", p.name.as_str())];
                let up = r
                    .vhost
                    .get(&p.name)
                    .map(|v| v.handle.connected())
                    .or_else(|| r.netdevs.ports.get(&p.name).map(|n| n.running));
                if let Some(up) = up {
                    e.gauge(
                        "vswitch_port_up",
                        "vhost-user: a frontend is connected; internal port, uplink, team: its device is open.",
                    )
                    .add(&l, up);
                }
                e.counter(
                    "vswitch_port_rx_packets_total",
                    "Frames received from the port.",
                )
                .add(&l, p.rx_packets);
                e.counter(
                    "vswitch_port_rx_bytes_total",
                    "Bytes received from the port.",
                )
                .add(&l, p.rx_bytes);
                e.counter("vswitch_port_tx_packets_total", "Frames sent to the port.")
                    .add(&l, p.tx_packets);
                e.counter("vswitch_port_tx_bytes_total", "Bytes sent to the port.")
                    .add(&l, p.tx_bytes);
                e.counter(
                    "vswitch_port_tx_dropped_total",
                    "Frames the port could not take (ring full, not connected).",
                )
                .add(&l, p.tx_dropped);
                let drops = e.counter(
                    "vswitch_port_drops_total",
                    "Frames received from the port and dropped by the switch, by reason.",
                );
                for d in DropReason::ALL {
                    let n = p.drops.get(d.name()).copied().unwrap_or(0);
                    drops.add(&[l[0], l[1], ("reason", d.name())], n);
                }
                e.counter(
                    "vswitch_port_mac_not_learned_total",
                    "Source MACs not learned, by reason (port_limit: the port's limit; table_full).",
                )
                .add(&[l[0], l[1], ("reason", "port_limit")], p.mac_learn_limit)
                .add(&[l[0], l[1], ("reason", "table_full")], p.mac_table_full);
                e.counter(
                    "vswitch_port_mac_moves_total",
                    "MACs that moved to this port.",
                )
                .add(&l, p.mac_moves);
                if let Some(netdev) = &p.netdev {
                    let f = e.counter(
                        "vswitch_port_socket_drops_total",
                        "Frames the kernel socket side of an uplink, internal port or team (its members summed) dropped, by reason.",
                    );
                    for (reason, n) in netdev {
                        f.add(&[l[0], l[1], ("reason", reason.as_str())], *n);
                    }
                }
                for m in &p.members {
                    let f = e.counter(
                        "vswitch_team_member_socket_drops_total",
                        "Frames a team member's socket dropped, by reason.",
                    );
                    for (reason, n) in &m.netdev {
                        f.add(
                            &[
                                ("switch", s),
                                ("team", p.name.as_str()),
                                ("member", m.name.as_str()),
                                ("reason", reason.as_str()),
                            ],
                            *n,
                        );
                    }
                }
                if let Some(v) = r.vhost.get(&p.name) {
                    vhost_metrics(e, s, &p.name, &v.handle);
                }
            }
        }
    }

    fn pmd_metrics(&self, e: &mut Exposition) {
        for sw in self.pmd_show().switches {
            let s = sw.name.as_str();
            for p in &sw.pmds {
                let pmd = p.index.to_string();
                let l = [("switch", s), ("pmd", pmd.as_str())];
                e.counter("vswitch_pmd_polls_total", "PMD loop iterations.")
                    .add(&l, p.iterations);
                e.counter(
                    "vswitch_pmd_busy_polls_total",
                    "PMD loop iterations that received at least one frame.",
                )
                .add(&l, p.busy_iterations);
                e.counter(
                    "vswitch_pmd_idle_sleeps_total",
                    "Sleeps of the adaptive idle policy.",
                )
                .add(&l, p.idle_sleeps);
                e.counter(
                    "vswitch_pmd_cpu_seconds_total",
                    "CPU time the PMD thread used (sampled twice a second).",
                )
                .add(&l, p.cpu_time_ns as f64 / 1e9);
                e.gauge(
                    "vswitch_pmd_rx_queues",
                    "Receive queues (vhost-user queue pairs) this PMD polls.",
                )
                .add(&l, p.rx_ports.len() as u64);
            }
        }
    }

    fn team_metrics(&self, e: &mut Exposition) {
        for sw in &self.config.switches {
            let Some(r) = self.switches.get(&sw.name) else {
                continue;
            };
            let Some(sup) = &r.netdevs.supervisor else {
                continue;
            };
            for t in sup.teams() {
                // No MAC table rows: the guests part of `team show` is
                // not needed, and reading the table would ask PMD 0.
                let st = t.lock().unwrap_or_else(PoisonError::into_inner).show(
                    &[],
                    &r.netdevs.uplink_ids,
                    &|_| None,
                    crate::backends::now(),
                );
                let tl = [("switch", sw.name.as_str()), ("team", st.name.as_str())];
                e.counter(
                    "vswitch_team_no_member_drops_total",
                    "Frames dropped because no member of the team was usable.",
                )
                .add(&tl, st.no_member_drops);
                e.counter(
                    "vswitch_team_announcements_total",
                    "RARP/GARP announcements sent after guests moved between members.",
                )
                .add(&tl, st.announcements_sent);
                for m in &st.members {
                    let l = [tl[0], tl[1], ("member", m.name.as_str())];
                    e.gauge(
                        "vswitch_team_member_up",
                        "The member's interface is present and has carrier.",
                    )
                    .add(&l, m.present && m.link_up);
                    e.gauge(
                        "vswitch_team_member_usable",
                        "The member may carry traffic now (link, beacons, role).",
                    )
                    .add(&l, m.usable);
                    e.gauge(
                        "vswitch_team_member_active",
                        "The member's role is active (1) rather than standby or unused (0).",
                    )
                    .add(&l, m.role == "active");
                    e.gauge(
                        "vswitch_team_member_buckets",
                        "Load-balancing buckets (of 256) the member carries.",
                    )
                    .add(&l, m.buckets as u64);
                    e.counter(
                        "vswitch_team_member_rx_packets_total",
                        "Frames received on the member.",
                    )
                    .add(&l, m.rx_packets);
                    e.counter(
                        "vswitch_team_member_rx_bytes_total",
                        "Bytes received on the member.",
                    )
                    .add(&l, m.rx_bytes);
                    e.counter(
                        "vswitch_team_member_tx_packets_total",
                        "Frames sent on the member.",
                    )
                    .add(&l, m.tx_packets);
                    e.counter(
                        "vswitch_team_member_tx_bytes_total",
                        "Bytes sent on the member.",
                    )
                    .add(&l, m.tx_bytes);
                    e.counter(
                        "vswitch_team_member_tx_dropped_total",
                        "Frames the member could not take.",
                    )
                    .add(&l, m.tx_dropped);
                    e.counter(
                        "vswitch_team_member_rx_filtered_total",
                        "Broadcast/multicast dropped: another member is the designated receiver.",
                    )
                    .add(&l, m.rx_filtered);
                }
            }
        }
    }
}

/// A vhost-user port's own counters, and its frames per queue pair.
fn vhost_metrics(
    e: &mut Exposition,
    switch: &str,
    port: &str,
    h: &dataplane::vhost::VhostUserPort,
) {
    let c = h.counters();
    let l = [("switch", switch), ("port", port)];
    let f = e.counter(
        "vswitch_vhost_drops_total",
        "Frames a vhost-user port dropped, by reason (rx_bad_chain, rx_bad_frame: from the guest; tx_bad_chain, tx_ring_full, tx_no_ring: to it).",
    );
    for (reason, n) in [
        ("rx_bad_chain", c.rx_bad_chain),
        ("rx_bad_frame", c.rx_bad_frame),
        ("tx_bad_chain", c.tx_bad_chain),
        ("tx_ring_full", c.tx_ring_full),
        ("tx_no_ring", c.tx_no_ring),
    ] {
        f.add(&[l[0], l[1], ("reason", reason)], n);
    }
    for (name, help, n) in [
        (
            "vswitch_vhost_rx_zero_copy_total",
            "Guest frames received zero-copy.",
            c.rx_zero_copy,
        ),
        (
            "vswitch_vhost_rings_broken_total",
            "Rings stopped because the guest corrupted them.",
            c.ring_broken,
        ),
        (
            "vswitch_vhost_guest_notifies_total",
            "Interrupts sent to the guest.",
            c.guest_notifies,
        ),
        (
            "vswitch_vhost_notify_errors_total",
            "Failed interrupt (call eventfd) writes.",
            c.notify_errors,
        ),
        (
            "vswitch_vhost_connects_total",
            "Frontend connections accepted or established.",
            c.connects,
        ),
        (
            "vswitch_vhost_resets_total",
            "Port resets (disconnect, device reset, malformed message, broken ring).",
            c.resets,
        ),
    ] {
        e.counter(name, help).add(&l, n);
    }
    for (q, (rx, tx)) in h.pair_frames().into_iter().enumerate() {
        let q = q.to_string();
        let ql = [l[0], l[1], ("queue", q.as_str())];
        e.counter(
            "vswitch_vhost_queue_rx_packets_total",
            "Frames received from the guest on a queue pair.",
        )
        .add(&ql, rx);
        e.counter(
            "vswitch_vhost_queue_tx_packets_total",
            "Frames sent to the guest on a queue pair.",
        )
        .add(&ql, tx);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};

    use super::super::{Options, SharedDaemon};
    use super::*;
    use crate::metrics::tests::check_exposition;

    fn get(addr: SocketAddr) -> std::io::Result<String> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    #[test]
    fn daemon_serves_every_family_once_and_reload_moves_the_listener() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (p1, p2) = (free_port(), free_port());
        let yaml = |metrics: &str| {
            format!(
                "runtime: {{ runtime-dir: {} }}\n{metrics}switches:\n  - name: \"sw\\\"0\"\n    ports:\n      - name: vm0\n      - name: vm1\n        queues: 2\n",
                dir.path().display()
            )
        };
        let file = dir.path().join("v.yaml");
        std::fs::write(
            &file,
            yaml(&format!("metrics: {{ listen: 127.0.0.1:{p1} }}\n")),
        )
        .expect("writes");
        let opts = Options {
            config_file: Some(file.clone()),
            runtime_dir: None,
            pmd_cores: None,
            idle: None,
            state_dir: dir.path().join("state"),
        };
        let cfg = super::super::load_config(&opts, Some(&file)).expect("valid");
        let addr = cfg.metrics.expect("metrics on").listen;
        let listener = crate::metrics::bind(addr).expect("binds");
        let shared = SharedDaemon::new(Daemon::start(opts, cfg).expect("starts"));
        shared.lock().serve_metrics(listener).expect("serves");

        let reply = get(addr).expect("scrape");
        let (head, body) = reply.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        let families = check_exposition(body);
        for f in [
            "vswitch_build_info",
            "vswitch_reloads_total",
            "vswitch_port_rx_packets_total",
            "vswitch_port_drops_total",
            "vswitch_vhost_drops_total",
            "vswitch_vhost_queue_rx_packets_total",
            "vswitch_pmd_polls_total",
            "vswitch_pmd_cpu_seconds_total",
            "vswitch_mac_table_entries",
        ] {
            assert!(families.contains_key(f), "{f} missing in:\n{body}");
        }
        // The switch name's quote is escaped; every drop reason is there.
        assert!(
            body.contains("vswitch_port_rx_packets_total{switch=\"sw\\\"0\",port=\"vm0\"} 0\n"),
            "{body}"
        );
        assert_eq!(
            families["vswitch_port_drops_total"],
            2 * DropReason::ALL.len()
        );
        // vm1 has two queue pairs, vm0 one.
        assert_eq!(families["vswitch_vhost_queue_rx_packets_total"], 3);
        assert!(body.contains(&format!(
            "vswitch_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));

        // Moved: the new port answers, the old one refuses.
        std::fs::write(
            &file,
            yaml(&format!("metrics:\n  listen: 127.0.0.1:{p2}\n")),
        )
        .expect("writes");
        let r = shared.lock().reload(None, false).expect("reloads");
        assert_eq!(
            r.changes,
            [format!("metrics: listen 127.0.0.1:{p1} -> 127.0.0.1:{p2}")]
        );
        let new: SocketAddr = format!("127.0.0.1:{p2}").parse().expect("addr");
        let body = get(new).expect("scrape on the new port");
        assert!(
            body.contains("vswitch_reloads_total{result=\"success\"} 1\n"),
            "{body}"
        );
        assert!(get(addr).is_err(), "the old port still answers");
        // A refused reload counts as a failure and keeps the listener.
        std::fs::write(&file, "switches: [").expect("writes");
        assert!(shared.lock().reload(None, false).is_err());
        let body = get(new).expect("scrape");
        assert!(
            body.contains("vswitch_reloads_total{result=\"failure\"} 1\n"),
            "{body}"
        );
        assert!(
            body.contains("vswitch_config_last_reload_successful 0\n"),
            "{body}"
        );
        // Off: nothing listens.
        std::fs::write(&file, yaml("")).expect("writes");
        shared.lock().reload(None, false).expect("reloads");
        assert!(
            get(new).is_err(),
            "still listening after metrics was removed"
        );
        assert_eq!(shared.lock().metrics_addr(), None);
        shared.lock().shutdown();
    }
}
