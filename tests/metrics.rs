//! The Prometheus endpoint, scraped by a real Prometheus server.
//!
//! ```text
//!  netns A: tap mA 10.77.0.1 ─┐                    ┌─ Prometheus (127.0.0.1:P, 1 s scrapes)
//!                             ├─ vswitchd sw0 ─────┤   GET /metrics on 127.0.0.1:M
//!  netns B: tap mB 10.77.0.2 ─┘  (internal ports)  └─ the test asks /api/v1/query
//! ```
//!
//! vswitchd runs in the test's own network namespace with two internal
//! (TAP) ports, each moved into a namespace of its own; the namespaces
//! ping each other through the switch. Prometheus (Debian's `prometheus`,
//! `/usr/bin/prometheus`) runs with its own configuration and storage in
//! a temporary directory; the test asks its HTTP API until the pinging
//! port's counter has grown by at least the pings sent. Then a reload
//! moves the endpoint to another port: the new one answers, the old one
//! refuses connections.
//!
//! Needs root, iproute2, ping; skipped (with a message) without
//! `/usr/bin/prometheus`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Netns, Vswitchd, wait_until};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PINGS: u64 = 20;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One HTTP/1.1 GET to `addr`: status code and body.
fn http_get(addr: SocketAddr, target: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP head in {text:?}")))?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    // Prometheus may answer chunked; its API replies are small and one
    // chunk, but take the JSON object out either way.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if head.to_ascii_lowercase().contains("chunked") => {
            body[a..=b].to_string()
        }
        _ => body.to_string(),
    };
    Ok((code, body))
}

/// Percent-encodes a PromQL query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server on a temporary directory; killed on drop.
struct Prometheus {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: vswitch\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("prometheus config");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Prometheus {
            child: Some(child),
            dir,
            addr,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The value of the single series `query` returns now, if any.
    fn value(&self, query: &str) -> Option<f64> {
        let (code, body) =
            http_get(self.addr, &format!("/api/v1/query?query={}", encode(query))).ok()?;
        if code != 200 {
            return None;
        }
        let v: Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits up to `timeout` for `query` to have a value satisfying `ok`;
    /// returns the last value seen.
    fn wait_for(&self, query: &str, timeout: Duration, ok: impl Fn(f64) -> bool) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            last = self.value(query).or(last);
            if last.is_some_and(&ok) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        last
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::SIGTERM,
            );
            let stopped = wait_until(Duration::from_secs(10), || {
                c.try_wait().ok().flatten().is_some()
            });
            if !stopped {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

fn config(switch_ports: &[(&str, &str)], listen: u16) -> String {
    let mut y =
        format!("metrics:\n  listen: 127.0.0.1:{listen}\nswitches:\n  - name: sw0\n    ports:\n");
    for (name, mac) in switch_ports {
        y.push_str(&format!(
            "      - name: {name}\n        type: internal\n        mac: {mac}\n"
        ));
    }
    y
}

#[test]
fn prometheus_scrapes_counters_that_move_with_traffic_and_reload_moves_the_endpoint() {
    if !Path::new(PROMETHEUS).exists() {
        eprintln!("skipped: {PROMETHEUS} is not installed (Debian package `prometheus`)");
        return;
    }
    let _serial = support::serial();
    // TAP names are host-wide while the daemon holds them: unique per run.
    let id = std::process::id() % 100_000;
    let (a, b) = (format!("mA{id}"), format!("mB{id}"));
    let ports = [
        (a.as_str(), "52:54:00:77:00:01"),
        (b.as_str(), "52:54:00:77:00:02"),
    ];
    let (m1, m2) = (free_port(), free_port());
    let mut d = Vswitchd::start(&config(&ports, m1));
    let endpoint: SocketAddr = format!("127.0.0.1:{m1}").parse().expect("addr");

    // Each TAP into its own namespace, addressed and up.
    let nsa = Netns::new("ma");
    let nsb = Netns::new("mb");
    // Its MAC is the port's configured one (forged transmits are refused).
    for ((tap, mac), (ns, ip)) in ports
        .iter()
        .zip([(&nsa.name, "10.77.0.1/24"), (&nsb.name, "10.77.0.2/24")])
    {
        run(&["ip", "link", "set", tap, "netns", ns]);
        run(&["ip", "-n", ns, "link", "set", tap, "address", mac]);
        run(&["ip", "-n", ns, "addr", "add", ip, "dev", tap]);
        run(&["ip", "-n", ns, "link", "set", tap, "up"]);
        run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }

    // The endpoint itself, as Prometheus will read it.
    let (code, body) = http_get(endpoint, "/metrics").expect("the endpoint answers");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("# TYPE vswitch_port_rx_packets_total counter\n"),
        "{body}"
    );
    let (code, _) = http_get(endpoint, "/").expect("answers");
    assert_eq!(code, 404);

    let prom = Prometheus::start(endpoint);
    let rx =
        format!("vswitch_port_rx_packets_total{{job=\"vswitch\",switch=\"sw0\",port=\"{a}\"}}");
    let tx =
        format!("vswitch_port_tx_packets_total{{job=\"vswitch\",switch=\"sw0\",port=\"{b}\"}}");
    let up = prom.wait_for("up{job=\"vswitch\"}", Duration::from_secs(60), |v| v == 1.0);
    assert_eq!(
        up,
        Some(1.0),
        "Prometheus never scraped the switch:\n{}\n--- vswitchd ---\n{}",
        prom.log(),
        d.log()
    );
    let rx0 = prom
        .wait_for(&rx, Duration::from_secs(30), |_| true)
        .expect("a first sample of the rx counter");
    let tx0 = prom
        .wait_for(&tx, Duration::from_secs(30), |_| true)
        .expect("a first sample of the tx counter");

    let out = Command::new("ip")
        .args(["netns", "exec", &nsa.name, "ping", "-n", "-q", "-c"])
        .arg(PINGS.to_string())
        .args(["-i", "0.05", "-W", "2", "10.77.0.2"])
        .output()
        .expect("ping runs");
    assert!(
        out.status.success(),
        "ping through the switch failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        d.log()
    );

    let want = |base: f64| move |v: f64| v >= base + PINGS as f64;
    let rx1 = prom.wait_for(&rx, Duration::from_secs(30), want(rx0));
    assert!(
        rx1.is_some_and(want(rx0)),
        "rx of {a} in Prometheus went {rx0} -> {rx1:?} after {PINGS} pings:\n{}",
        d.ctl_ok(&["stats"])
    );
    let tx1 = prom.wait_for(&tx, Duration::from_secs(30), want(tx0));
    assert!(
        tx1.is_some_and(want(tx0)),
        "tx of {b} in Prometheus went {tx0} -> {tx1:?} after {PINGS} pings"
    );
    // A rate over the scrapes is what dashboards plot: it saw the pings.
    let rate = prom.wait_for(
        &format!("increase({rx}[1m])"),
        Duration::from_secs(15),
        |v| v >= PINGS as f64,
    );
    assert!(
        rate.is_some_and(|v| v >= PINGS as f64),
        "increase(): {rate:?}"
    );
    // Other families made it too.
    for q in [
        "vswitch_build_info{job=\"vswitch\"}",
        "count(vswitch_pmd_polls_total{job=\"vswitch\",switch=\"sw0\"})",
        "vswitch_config_last_reload_successful{job=\"vswitch\"}",
    ] {
        assert_eq!(
            prom.wait_for(q, Duration::from_secs(10), |v| v == 1.0),
            Some(1.0),
            "{q}"
        );
    }
    let macs = prom.wait_for(
        "vswitch_mac_table_entries{job=\"vswitch\",switch=\"sw0\"}",
        Duration::from_secs(10),
        |v| v >= 2.0,
    );
    assert!(
        macs.is_some_and(|v| v >= 2.0),
        "MAC table entries: {macs:?}"
    );

    // Reload moves the endpoint: the dry run says so, the reload does it.
    d.write_config(&config(&ports, m2));
    let dry = d.ctl_ok(&["reload", "--dry-run"]);
    let words = format!("metrics: listen 127.0.0.1:{m1} -> 127.0.0.1:{m2}");
    assert!(dry.contains(&words), "{dry}");
    assert!(http_get(endpoint, "/metrics").is_ok(), "a dry run moved it");
    let applied = d.ctl_ok(&["reload"]);
    assert!(applied.contains(&words), "{applied}");
    let moved: SocketAddr = format!("127.0.0.1:{m2}").parse().expect("addr");
    let (code, body) = http_get(moved, "/metrics").expect("the new port answers");
    assert_eq!(code, 200);
    assert!(
        body.contains("vswitch_reloads_total{result=\"success\"} 1\n"),
        "{body}"
    );
    let old = TcpStream::connect_timeout(&endpoint, Duration::from_secs(2));
    assert!(
        old.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
        "the old port: {old:?}"
    );
    // Prometheus, still pointed at the old port, sees the target down.
    assert_eq!(
        prom.wait_for("up{job=\"vswitch\"}", Duration::from_secs(15), |v| v == 0.0),
        Some(0.0)
    );
    d.stop();
    drop(prom);
    drop((nsa, nsb));
}
