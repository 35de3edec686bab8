//! vswitchd with DPDK's `dpdk-testpmd` as the frontend: virtio-user ports
//! on the switch's vhost-user sockets (a second vhost-user implementation,
//! not ours: no EVENT_IDX, SET_MEM_TABLE re-sent on a live device).
//! testpmd sends exact numbers of frames (`start tx_first N` in `rxonly`
//! mode) and the tests check, on both testpmd's and the switch's counters,
//! that every frame arrives where it must, once: across the default switch
//! at three frame sizes, oversize frames dropped and counted, unknown
//! unicast flooded but learned unicast not, broadcast kept inside its VLAN.
//!
//! Needs `dpdk-testpmd` (Debian `dpdk-dev`; `scripts/install-deps.sh`) and
//! root (testpmd's EAL); runs without hugepages (`--no-huge`).

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use support::frontend::{PmdPortStats, Testpmd, TestpmdOptions, field, pump, require_testpmd};
use support::{Deadline, serial};

/// Whole-test budget: every wait below is bounded by it.
const TEST_BUDGET: Duration = Duration::from_secs(120);

const MAC0: &str = "02:00:00:00:00:01";
const MAC1: &str = "02:00:00:00:00:02";
const MAC2: &str = "02:00:00:00:00:03";
const BROADCAST: &str = "ff:ff:ff:ff:ff:ff";

/// A child process killed (by its PID) and reaped when dropped.
struct Guarded {
    child: Child,
    name: &'static str,
}

impl Guarded {
    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for the process to exit by itself until `until`.
    fn wait_until(&mut self, until: Instant) -> Result<std::process::ExitStatus, String> {
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return Ok(st),
                Ok(None) if Instant::now() >= until => {
                    return Err(format!("{} (pid {}) did not exit", self.name, self.pid()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("{}: wait: {e}", self.name)),
            }
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(self.pid(), nix::sys::signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Counters of one port, per vswitchd's SIGTERM report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct SwitchPort {
    rx: u64,
    tx: u64,
    tx_dropped: u64,
    ingress_drops: u64,
}

struct Vswitchd {
    proc: Guarded,
    lines: Receiver<String>,
    log: PathBuf,
    deadline: Deadline,
}

impl Vswitchd {
    fn start(dir: &Path, config: Option<&Path>, deadline: Deadline) -> Self {
        let log = dir.join("vswitchd.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vswitchd"));
        cmd.arg("--runtime-dir")
            .arg(dir)
            .args(["--idle", "adaptive"]);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .env("VSWITCH_LOG", "info,dataplane::vhost=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("vswitchd log file"))
            .spawn()
            .expect("vswitchd starts");
        let (tx, lines) = channel();
        pump(child.stdout.take().expect("stdout"), tx, "");
        let vs = Vswitchd {
            proc: Guarded {
                child,
                name: "vswitchd",
            },
            lines,
            log,
            deadline,
        };
        let until = deadline.within(Duration::from_secs(20));
        loop {
            match vs.next_line(until) {
                Some(l) if l.contains("vswitchd: running") => break,
                Some(_) => {}
                None => panic!("vswitchd did not start: {}", vs.log_tail()),
            }
        }
        vs
    }

    fn next_line(&self, until: Instant) -> Option<String> {
        let left = until.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(left).ok()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "\n--- vswitchd log (last 40 lines) ---\n{}",
            lines[from..].join("\n")
        )
    }

    /// SIGTERM, then the per-port counters it prints on the way out.
    fn stop(mut self) -> HashMap<String, SwitchPort> {
        nix::sys::signal::kill(self.proc.pid(), nix::sys::signal::SIGTERM).expect("SIGTERM");
        let until = self.deadline.within(Duration::from_secs(20));
        let mut ports = HashMap::new();
        while let Some(l) = self.next_line(until) {
            if let Some((name, c)) = parse_switch_port(&l) {
                ports.insert(name, c);
            }
        }
        let st = self.proc.wait_until(until);
        assert!(
            matches!(st, Ok(s) if s.success()),
            "vswitchd did not stop cleanly on SIGTERM: {st:?}{}",
            self.log_tail()
        );
        ports
    }
}

/// `port NAME: rx N frames, tx N frames, tx dropped N, dropped on ingress N`
fn parse_switch_port(line: &str) -> Option<(String, SwitchPort)> {
    let rest = line.strip_prefix("port ")?;
    let (name, rest) = rest.split_once(": rx ")?;
    let nums: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    match nums[..] {
        [rx, tx, tx_dropped, ingress_drops] => Some((
            name.to_string(),
            SwitchPort {
                rx,
                tx,
                tx_dropped,
                ingress_drops,
            },
        )),
        _ => None,
    }
}

fn assert_clean(s: &[PmdPortStats]) {
    for (i, p) in s.iter().enumerate() {
        assert_eq!(
            (p.rx_missed, p.rx_errors, p.tx_errors),
            (0, 0, 0),
            "testpmd port {i}: missed/errors: {p:?}"
        );
    }
}

fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let f = dir.join("vswitch.yaml");
    std::fs::write(&f, yaml).expect("write config");
    f
}

/// Frames per port per round: `tx_first 4` sends 4 bursts of 32 from every
/// forwarding port, fewer than a virtio ring holds (256), so the sender
/// never finds its ring full.
const BURSTS: u64 = 4;
const PER_ROUND: u64 = BURSTS * 32;

/// testpmd on `ports` (socket, own MAC, peer MAC) with `queues` queue
/// pairs each, every wait bounded by `deadline`, in `rxonly` mode: it
/// sends only what `start tx_first` sends and receives what the switch
/// delivers.
fn rxonly_testpmd(
    ports: &[(PathBuf, &str, &str)],
    topology: &str,
    tag: &str,
    deadline: Deadline,
    queues: usize,
) -> Testpmd {
    let options = TestpmdOptions { queues, deadline };
    let mut pmd = Testpmd::start_with(ports, &[], topology, tag, options);
    pmd.run("set fwd rxonly", None);
    pmd
}

/// One round: every forwarding port sends [`BURSTS`] bursts; waits for
/// exactly `rx` frames received and `tx` sent per port, stops, and checks
/// that testpmd counted no miss or error.
fn round(pmd: &mut Testpmd, what: &str, rx: &[u64], tx: &[u64]) -> Vec<PmdPortStats> {
    pmd.run(&format!("start tx_first {BURSTS}"), None);
    let s = pmd.wait_stats(what, rx, tx);
    pmd.run("stop", Some("Done."));
    assert_clean(&s);
    s
}

/// Frames one port sends in a step of [`run_steps`]: `tx_first 2`, 2
/// bursts of 32.
const PER_STEP: u64 = 2 * 32;

/// Three ports in `loop` topology, one step at a time: the step's sender
/// alone sends [`PER_STEP`] frames, then every port receives, and each
/// port's received count must be the step's expectation (sent counts add
/// up per sender).
fn run_steps(pmd: &mut Testpmd, steps: &[(usize, &str, [u64; 3])]) {
    let mut sent = [0u64; 3];
    for &(from, what, expect) in steps {
        pmd.run(&format!("set portlist {from}"), None);
        pmd.run("start tx_first 2", None);
        pmd.run("stop", Some("Done."));
        sent[from] += PER_STEP;
        // Now receive on every port.
        pmd.run("set portlist 0,1,2", None);
        pmd.run("start", None);
        let s = pmd.wait_stats(what, &expect, &sent);
        pmd.run("stop", Some("Done."));
        assert_clean(&s);
    }
}

/// rxonly testpmd on the switch's ports p0, p1, p2 (MAC0, MAC1, MAC2 in
/// DIR) sending to `peers`, each port sending and receiving on itself
/// (`loop`): `set portlist` picks the sender.
fn three_port_testpmd(dir: &Path, peers: [&str; 3], tag: &str, deadline: Deadline) -> Testpmd {
    let [peer0, peer1, peer2] = peers;
    rxonly_testpmd(
        &[
            (dir.join("p0.sock"), MAC0, peer0),
            (dir.join("p1.sock"), MAC1, peer1),
            (dir.join("p2.sock"), MAC2, peer2),
        ],
        "loop",
        tag,
        deadline,
        1,
    )
}

/// The switch's counters of p0, p1, p2 (zero for a port it did not report).
fn three_port_counters(ports: &HashMap<String, SwitchPort>) -> [SwitchPort; 3] {
    ["p0", "p1", "p2"].map(|p| ports.get(p).copied().unwrap_or_default())
}

/// `vswitchctl --runtime-dir RUNTIME`, to add arguments to.
fn vswitchctl(runtime: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vswitchctl"));
    cmd.arg("--runtime-dir").arg(runtime);
    cmd
}

#[test]
fn default_switch_forwards_every_frame_once_both_ways() {
    require_testpmd();
    let _serial = serial();
    let deadline = Deadline::after(TEST_BUDGET);
    let dir = tempfile::tempdir().expect("tempdir");
    let vs = Vswitchd::start(dir.path(), None, deadline);
    let mut pmd = rxonly_testpmd(
        &[
            (dir.path().join("vhost0.sock"), MAC0, MAC1),
            (dir.path().join("vhost1.sock"), MAC1, MAC0),
        ],
        "paired",
        "fwd",
        deadline,
        1,
    );

    // Three frame lengths (without FCS): minimum, middle, the largest an
    // MTU of 1500 allows untagged.
    let sizes = [64u64, 512, 1514];
    let mut frames = 0;
    let mut bytes = 0;
    for size in sizes {
        pmd.run(&format!("set txpkts {size}"), None);
        // Both ports send PER_ROUND frames (port 0 to MAC1, port 1 to MAC0);
        // rxonly then receives what the switch delivers.
        frames += PER_ROUND;
        bytes += PER_ROUND * size;
        let s = round(
            &mut pmd,
            &format!("{size}-byte frames"),
            &[frames, frames],
            &[frames, frames],
        );
        assert_eq!(s[0].tx_bytes, bytes, "{s:?}");
        assert_eq!(s[1].rx_bytes, s[0].tx_bytes, "frames arrive whole");
        assert_eq!(s[0].rx_bytes, s[1].tx_bytes, "frames arrive whole");
    }

    // One byte over the MTU: the switch drops these on ingress, counted.
    pmd.run("set txpkts 1515", None);
    pmd.run(&format!("start tx_first {BURSTS}"), None);
    std::thread::sleep(Duration::from_millis(500));
    // Oversize frames are sent but not delivered.
    let s = pmd.wait_stats(
        "oversize frames",
        &[frames, frames],
        &[frames + PER_ROUND, frames + PER_ROUND],
    );
    pmd.run("stop", Some("Done."));
    assert_clean(&s);
    pmd.quit_and_expect_exit();

    let ports = vs.stop();
    let expect_rx = frames + PER_ROUND;
    for (name, p) in [("vhost0", 0usize), ("vhost1", 1)] {
        let c = ports
            .get(name)
            .unwrap_or_else(|| panic!("vswitchd reported no counters for {name}: {ports:?}"));
        assert_eq!(
            *c,
            SwitchPort {
                rx: expect_rx,
                tx: frames,
                tx_dropped: 0,
                ingress_drops: PER_ROUND,
            },
            "switch counters of {name} (testpmd port {p}: {:?})",
            s[p]
        );
    }
}

/// Three ports in one VLAN: a frame to a MAC the switch has not seen is
/// flooded to both other ports; once the MAC is learned, only its port gets
/// it; broadcast reaches everyone but the sender.
#[test]
fn unknown_unicast_floods_learned_unicast_does_not() {
    require_testpmd();
    let _serial = serial();
    let deadline = Deadline::after(TEST_BUDGET);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(
        dir.path(),
        "switches:\n  - name: sw0\n    ports:\n      - name: p0\n      - name: p1\n      - name: p2\n",
    );
    let vs = Vswitchd::start(dir.path(), Some(&cfg), deadline);
    let mut pmd = three_port_testpmd(dir.path(), [MAC1, MAC0, BROADCAST], "learn", deadline);
    let n = PER_STEP;
    let steps: [(usize, &str, [u64; 3]); 4] = [
        (0, "p0 -> MAC1, not yet learned: flooded", [0, n, n]),
        (1, "p1 -> MAC0, learned from p0's frames", [n, n, n]),
        (0, "p0 -> MAC1, now learned", [n, 2 * n, n]),
        (2, "p2 -> broadcast", [2 * n, 3 * n, n]),
    ];
    run_steps(&mut pmd, &steps);
    pmd.quit_and_expect_exit();

    let ports = vs.stop();
    let got = three_port_counters(&ports).map(|c| (c.rx, c.tx, c.tx_dropped, c.ingress_drops));
    assert_eq!(
        got,
        [(2 * n, 2 * n, 0, 0), (n, 3 * n, 0, 0), (n, n, 0, 0)],
        "switch counters (rx, tx, tx dropped, ingress drops) of p0, p1, p2: {ports:?}"
    );
}

/// p0 and p1 in access VLAN 100, p2 in VLAN 200: broadcast and unicast stay
/// inside their VLAN.
#[test]
fn access_vlans_keep_traffic_apart() {
    require_testpmd();
    let _serial = serial();
    let deadline = Deadline::after(TEST_BUDGET);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(
        dir.path(),
        "switches:\n  - name: sw0\n    port-groups:\n      - name: blue\n        vlan: 100\n      - name: red\n        vlan: 200\n    ports:\n      - name: p0\n        port-group: blue\n      - name: p1\n        port-group: blue\n      - name: p2\n        port-group: red\n",
    );
    let vs = Vswitchd::start(dir.path(), Some(&cfg), deadline);
    let mut pmd = three_port_testpmd(dir.path(), [BROADCAST, MAC0, BROADCAST], "vlan", deadline);
    let n = PER_STEP;
    let steps: [(usize, &str, [u64; 3]); 3] = [
        (0, "p0 (VLAN 100) -> broadcast", [0, n, 0]),
        (
            2,
            "p2 (VLAN 200) -> broadcast: nobody else in VLAN 200",
            [0, n, 0],
        ),
        (1, "p1 -> MAC0 (learned in VLAN 100)", [n, n, 0]),
    ];
    run_steps(&mut pmd, &steps);
    pmd.quit_and_expect_exit();

    let ports = vs.stop();
    let got = three_port_counters(&ports).map(|c| (c.rx, c.tx));
    assert_eq!(
        got,
        [(n, n), (n, n), (n, 0)],
        "switch counters (rx, tx) of p0, p1, p2: {ports:?}"
    );
}

/// Live reconfiguration under traffic (issue 4): while testpmd sends
/// rounds of frames between two ports, another thread reloads the daemon
/// back and forth between a file with a third port and one without it
/// (the socket appears and disappears, the switch spec is republished).
/// Every round must arrive exactly, and the switch must count no drop on
/// the two untouched ports.
#[test]
fn reloads_that_add_and_remove_a_port_drop_nothing_on_the_others() {
    require_testpmd();
    let _serial = serial();
    let deadline = Deadline::after(TEST_BUDGET);
    let dir = tempfile::tempdir().expect("tempdir");
    let two = "switches:\n  - name: sw0\n    ports:\n      - name: vhost0\n      - name: vhost1\n";
    let three = format!("{two}      - name: extra\n        vlan: 20\n");
    let cfg = write_config(dir.path(), two);
    let cfg3 = dir.path().join("three.yaml");
    std::fs::write(&cfg3, &three).expect("write config");
    let vs = Vswitchd::start(dir.path(), Some(&cfg), deadline);
    let mut pmd = rxonly_testpmd(
        &[
            (dir.path().join("vhost0.sock"), MAC0, MAC1),
            (dir.path().join("vhost1.sock"), MAC1, MAC0),
        ],
        "paired",
        "reload",
        deadline,
        1,
    );

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reloader = {
        let stop = stop.clone();
        let runtime = dir.path().to_path_buf();
        let files = [cfg3.clone(), cfg.clone()];
        std::thread::spawn(move || {
            let mut done = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let file = &files[done as usize % 2];
                let out = vswitchctl(&runtime)
                    .args(["reload", "--config"])
                    .arg(file)
                    .output()
                    .expect("vswitchctl runs");
                assert!(
                    out.status.success(),
                    "reload {}: {}",
                    file.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                done += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            done
        })
    };

    let rounds = 30u64;
    for r in 1..=rounds {
        round(
            &mut pmd,
            &format!("round {r} with reloads running"),
            &[r * PER_ROUND, r * PER_ROUND],
            &[r * PER_ROUND, r * PER_ROUND],
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reloads = reloader.join().expect("reloader thread");
    assert!(
        reloads >= 4,
        "only {reloads} reloads overlapped the traffic"
    );
    pmd.quit_and_expect_exit();

    let ports = vs.stop();
    for name in ["vhost0", "vhost1"] {
        let c = ports
            .get(name)
            .unwrap_or_else(|| panic!("no counters for {name}: {ports:?}"));
        assert_eq!(
            *c,
            SwitchPort {
                rx: rounds * PER_ROUND,
                tx: rounds * PER_ROUND,
                tx_dropped: 0,
                ingress_drops: 0,
            },
            "{name} after {reloads} reloads"
        );
    }
}

/// Reads `vswitchctl stats --json` and returns, per port, its vhost-user
/// counters (`rx_q0`, `tx_q1`, ...).
fn vhost_counters(runtime: &Path) -> HashMap<String, HashMap<String, u64>> {
    let out = vswitchctl(runtime)
        .args(["--json", "stats"])
        .output()
        .expect("vswitchctl runs");
    assert!(
        out.status.success(),
        "vswitchctl stats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    let mut ports = HashMap::new();
    for sw in v["switches"].as_array().expect("switches") {
        for p in sw["ports"].as_array().expect("ports") {
            let counters = p["vhost"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                        .collect()
                })
                .unwrap_or_default();
            ports.insert(p["name"].as_str().expect("name").to_string(), counters);
        }
    }
    ports
}

/// Multiqueue: two ports of two queue pairs each on a switch of two PMDs.
/// testpmd sends from both queues of each port; every frame must arrive
/// exactly once, both queue pairs of both ports must carry frames in each
/// direction, and each PMD polls one pair of each port.
#[test]
fn two_queue_pairs_per_port_carry_every_frame_exactly_once() {
    require_testpmd();
    let _serial = serial();
    let deadline = Deadline::after(TEST_BUDGET);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(
        dir.path(),
        "runtime:\n  pmd-cores: [0, 1]\nswitches:\n  - name: sw0\n    ports:\n      - name: vhost0\n        queues: 2\n      - name: vhost1\n        queues: 2\n",
    );
    let vs = Vswitchd::start(dir.path(), Some(&cfg), deadline);
    let mut pmd = rxonly_testpmd(
        &[
            (dir.path().join("vhost0.sock"), MAC0, MAC1),
            (dir.path().join("vhost1.sock"), MAC1, MAC0),
        ],
        "paired",
        "mq",
        deadline,
        2,
    );
    // Two streams per port (one per queue): each sends BURSTS x 32.
    let per_round = 2 * PER_ROUND;
    let mut frames = 0;
    for size in [64u64, 1514] {
        pmd.run(&format!("set txpkts {size}"), None);
        frames += per_round;
        round(
            &mut pmd,
            &format!("{size}-byte frames over two queue pairs"),
            &[frames, frames],
            &[frames, frames],
        );
    }
    let counters = vhost_counters(dir.path());
    for port in ["vhost0", "vhost1"] {
        let c = &counters[port];
        let get = |k: &str| c.get(k).copied().unwrap_or(0);
        // Frames from testpmd arrive on both pairs (its two tx queues)...
        assert_eq!(get("rx_q0") + get("rx_q1"), frames, "{port}: {c:?}");
        assert!(get("rx_q0") > 0 && get("rx_q1") > 0, "{port}: {c:?}");
        // ...and the switch delivers on both (one per PMD).
        assert_eq!(get("tx_q0") + get("tx_q1"), frames, "{port}: {c:?}");
        assert!(get("tx_q0") > 0 && get("tx_q1") > 0, "{port}: {c:?}");
    }
    let status = vswitchctl(dir.path())
        .arg("status")
        .output()
        .expect("vswitchctl runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.lines()
            .filter(|l| l.contains("vhost0") || l.contains("vhost1"))
            .all(|l| l.contains(" 2/2 ")),
        "both pairs of both ports run:\n{text}"
    );
    pmd.quit_and_expect_exit();
    let ports = vs.stop();
    for name in ["vhost0", "vhost1"] {
        assert_eq!(
            ports.get(name).copied(),
            Some(SwitchPort {
                rx: frames,
                tx: frames,
                tx_dropped: 0,
                ingress_drops: 0,
            }),
            "{name}"
        );
    }
}

#[test]
fn parses_switch_counter_lines() {
    assert_eq!(
        parse_switch_port(
            "port vhost0: rx 12 frames, tx 34 frames, tx dropped 5, dropped on ingress 6"
        ),
        Some((
            "vhost0".to_string(),
            SwitchPort {
                rx: 12,
                tx: 34,
                tx_dropped: 5,
                ingress_drops: 6
            }
        ))
    );
    assert_eq!(parse_switch_port("port vhost0: attach a QEMU guest"), None);
    assert_eq!(
        field("  RX-packets: 128        RX-missed: 0", "RX-missed:"),
        Some(0)
    );
}
