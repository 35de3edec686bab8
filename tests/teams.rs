//! Teams of uplinks, end to end, on network namespaces the test builds:
//!
//! ```text
//!  ns g1..g4 (guests)         ns sw (vswitchd)                 ns ph ("physical switch")
//!  tap g1 10.9.0.1 ─┐                                   ┌ p0 ─┐
//!  tap g2 10.9.0.2 ─┤ internal ports ── team bond0 ─ u0 ┘     ├─ br0 (Linux bridge; for
//!  tap g3 10.9.0.3 ─┤                              └ u1 ─ p1 ─┤   ip-hash a static bond
//!  tap g4 10.9.0.4 ─┘                                         │   of p0+p1 under it)
//!                                         ns r1 10.9.0.101 ───┤
//!                                         ns r2 10.9.0.102 ───┘
//! ```
//!
//! The guests are the switch's internal (TAP) ports, each moved into its
//! own namespace; the uplinks are AF_PACKET sockets on veths whose peers
//! sit in a Linux bridge. What the tests show, from the daemon's own
//! per-member counters and `team show`, from the bridge's FDB and from
//! captures: port-id spreads guests and pins each to one member; failover
//! under traffic (loss window measured), RARPs out of the new member,
//! failback on and off; ip-hash keeps each IP pair on one member and
//! spreads pairs; a broadcast from the network reaches each guest once and
//! a guest's broadcast does not loop back; a reload switches a team's
//! policy and member order live under traffic.
//!
//! Needs root, iproute2, the bridge and bonding modules, ping and tcpdump
//! (`scripts/install-deps.sh`).

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{serial, wait_until};
use vswitch::client;
use vswitch::protocol::{Request, StatsReply, TeamShowReply, TeamStatus};

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// How the physical switch joins the two members.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Physical {
    /// Two independent bridge ports (port-id, src-mac, explicit-failover).
    Bridge,
    /// A static bond (balance-xor, the Linux "EtherChannel mode on")
    /// under the bridge (ip-hash, l4-hash).
    StaticBond,
}

/// The namespaces, links and daemon of one test. Everything is removed on
/// drop.
struct Lab {
    tag: String,
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
}

const GUESTS: usize = 4;

impl Lab {
    fn ns(&self, what: &str) -> String {
        format!("{}{what}", self.tag)
    }

    fn new(policy: &str, failback: bool, physical: Physical) -> Lab {
        Lab::with(policy, failback, physical, 2, "link")
    }

    fn with(
        policy: &str,
        failback: bool,
        physical: Physical,
        members: usize,
        detection: &str,
    ) -> Lab {
        Lab::with_driver(policy, failback, physical, members, detection, "af-packet")
    }

    /// A lab with `members` uplinks u0.. in the team and the given failure
    /// detection (`link` or `beacon`).
    fn with_driver(
        policy: &str,
        failback: bool,
        physical: Physical,
        members: usize,
        detection: &str,
        driver: &str,
    ) -> Lab {
        let tag = format!("vt{}", std::process::id() % 100_000);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lab = Lab {
            socket: dir.path().join("vswitchd.sock"),
            log: dir.path().join("vswitchd.log"),
            tag,
            dir,
            daemon: None,
        };
        lab.cleanup();
        let (sw, ph) = (lab.ns("sw"), lab.ns("ph"));
        for n in [&sw, &ph] {
            run(&["ip", "netns", "add", n]);
            quiet_ipv6(n);
            run(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        run(&["ip", "-n", &ph, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &ph, "link", "set", "br0", "up"]);
        // A static bond needs the bonding module, which some kernels (this
        // machine's) lack: then the members stay two bridge ports and the
        // bridge sees guest MACs move between them, as a physical switch
        // without an EtherChannel would. Transmit distribution, which is
        // what the tests measure, is the same.
        let bond = [
            "-n",
            &ph,
            "link",
            "add",
            "bond0",
            "type",
            "bond",
            "mode",
            "balance-xor",
            "xmit_hash_policy",
            "layer3+4",
            "miimon",
            "10",
        ];
        let physical = if physical == Physical::StaticBond
            && Command::new("ip")
                .args(bond)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            run(&["ip", "-n", &ph, "link", "set", "bond0", "master", "br0"]);
            run(&["ip", "-n", &ph, "link", "set", "bond0", "up"]);
            Physical::StaticBond
        } else {
            if physical == Physical::StaticBond {
                eprintln!("no bonding in this kernel: the members are plain bridge ports");
            }
            Physical::Bridge
        };
        for i in 0..members {
            let (u, p) = (format!("u{i}"), format!("p{i}"));
            run(&[
                "ip", "link", "add", &u, "netns", &sw, "type", "veth", "peer", "name", &p, "netns",
                &ph,
            ]);
            let master = if physical == Physical::StaticBond {
                "bond0"
            } else {
                "br0"
            };
            if physical == Physical::StaticBond {
                run(&["ip", "-n", &ph, "link", "set", &p, "down"]);
            }
            run(&["ip", "-n", &ph, "link", "set", &p, "master", master]);
            run(&["ip", "-n", &ph, "link", "set", &p, "up"]);
            run(&["ip", "-n", &sw, "link", "set", &u, "up"]);
            wire_sized(&ph, &p);
        }
        for r in 1..=2 {
            let ns = lab.ns(&format!("r{r}"));
            run(&["ip", "netns", "add", &ns]);
            quiet_ipv6(&ns);
            let (e, p) = ("eth0".to_string(), format!("r{r}p"));
            run(&[
                "ip", "link", "add", &e, "netns", &ns, "type", "veth", "peer", "name", &p, "netns",
                &ph,
            ]);
            run(&["ip", "-n", &ph, "link", "set", &p, "master", "br0"]);
            run(&["ip", "-n", &ph, "link", "set", &p, "up"]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.9.0.10{r}/24"),
                "dev",
                "eth0",
            ]);
            run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            // A remote host is behind a wire: its frames are MTU-sized.
            wire_sized(&ns, "eth0");
            wire_sized(&ph, &p);
        }
        // The daemon, with one internal port per guest.
        let mut yaml = String::from("switches:\n  - name: sw0\n    ports:\n");
        for g in 1..=GUESTS {
            yaml.push_str(&format!(
                "      - name: g{g}\n        type: internal\n        mac: 52:54:00:00:00:0{g}\n"
            ));
        }
        yaml.push_str("    uplinks:\n");
        let names: Vec<String> = (0..members).map(|i| format!("u{i}")).collect();
        for u in &names {
            yaml.push_str(&format!("      - name: {u}\n        driver: {driver}\n"));
        }
        yaml.push_str(&format!(
            "    teams:\n      - name: bond0\n        policy: {policy}\n        active: [{}]\n        failback: {failback}\n        failure-detection: {detection}\n        notify-switches: true\n",
            names.join(", ")
        ));
        // GRO on an uplink would merge frames into 64 KiB super-frames the
        // switch cannot forward: the daemon must turn it off.
        run(&[
            "ip", "netns", "exec", &sw, "ethtool", "-K", "u0", "gro", "on",
        ]);
        let cfg = lab.dir.path().join("vswitch.yaml");
        std::fs::write(&cfg, yaml).expect("config");
        let log = File::create(&lab.log).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &sw])
            .arg(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--config")
            .arg(&cfg)
            .arg("--runtime-dir")
            .arg(lab.dir.path())
            .args(["--idle", "adaptive"])
            .env("VSWITCH_LOG", "info")
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("vswitchd starts");
        lab.daemon = Some(child);
        let up = wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&lab.log).is_ok_and(|s| s.contains("vswitchd: running"))
        });
        assert!(up, "vswitchd did not start:\n{}", lab.log());
        let k = run(&["ip", "netns", "exec", &sw, "ethtool", "-k", "u0"]);
        let k = String::from_utf8_lossy(&k.stdout).to_string();
        assert!(
            k.lines()
                .any(|l| l.trim() == "generic-receive-offload: off"),
            "GRO still on for u0:\n{k}"
        );
        // Each guest: its TAP moved into its own namespace.
        for g in 1..=GUESTS {
            let ns = lab.ns(&format!("g{g}"));
            run(&["ip", "netns", "add", &ns]);
            quiet_ipv6(&ns);
            let tap = format!("g{g}");
            run(&["ip", "-n", &sw, "link", "set", &tap, "netns", &ns]);
            run(&[
                "ip",
                "-n",
                &ns,
                "link",
                "set",
                &tap,
                "address",
                &format!("52:54:00:00:00:0{g}"),
            ]);
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.9.0.{g}/24"),
                "dev",
                &tap,
            ]);
            run(&["ip", "-n", &ns, "link", "set", &tap, "up"]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        // Both members up in the team before the tests start.
        let ready = wait_until(Duration::from_secs(5), || {
            lab.team().members.iter().all(|m| m.link_up && m.present)
        });
        assert!(
            ready,
            "members not up: {:?}\n{}",
            lab.team().members,
            lab.log()
        );
        lab
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn team(&self) -> TeamStatus {
        let v = client::request(&self.socket, &Request::TeamShow { team: None })
            .unwrap_or_else(|e| panic!("team show: {e}\n{}", self.log()));
        let mut r: TeamShowReply = client::decode(v).expect("team show reply");
        assert_eq!(r.teams.len(), 1);
        r.teams.remove(0)
    }

    /// tx packets per member.
    fn member_tx(&self) -> Vec<u64> {
        self.team().members.iter().map(|m| m.tx_packets).collect()
    }

    /// Port counters by name.
    fn port_stats(&self) -> BTreeMap<String, (u64, u64)> {
        let v = client::request(&self.socket, &Request::Stats).expect("stats");
        let r: StatsReply = client::decode(v).expect("stats reply");
        r.switches[0]
            .ports
            .iter()
            .map(|p| (p.name.clone(), (p.rx_packets, p.tx_packets)))
            .collect()
    }

    /// The member guest `g`'s traffic uses, by `team show`.
    fn member_of(&self, g: usize) -> Option<String> {
        let mac = format!("52:54:00:00:00:0{g}");
        self.team()
            .guests
            .iter()
            .find(|x| x.mac == mac)
            .and_then(|x| x.member.clone())
    }

    fn ping(&self, from: &str, to: &str, count: u32, interval: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(from), "ping", "-n", "-q", "-c"])
            .arg(count.to_string())
            .args(["-i", interval, "-W", "1", to])
            .output()
            .expect("ping runs")
    }

    /// `n` broadcast pings (10.9.0.255) from the namespace `from`; nobody
    /// answers (broadcast echo is ignored), so they are `n` frames.
    fn broadcast_pings(&self, from: &str, n: u32) {
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(from),
                "ping",
                "-b",
                "-n",
                "-q",
                "-c",
            ])
            .arg(n.to_string())
            .args(["-i", "0.02", "-W", "1", "10.9.0.255"])
            .output()
            .expect("ping -b");
    }

    fn cleanup(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for what in ["sw", "ph", "r1", "r2", "g1", "g2", "g3", "g4"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(what)])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A veth behaves like a wire: complete checksums and no TSO/GSO
/// super-frames from its kernel side (a real NIC never puts a partial
/// checksum or a 64 KiB frame on the wire).
fn wire_sized(ns: &str, dev: &str) {
    run(&[
        "ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off",
        "gro", "off",
    ]);
}

/// No IPv6 chatter (router solicitations, MLD) to blur exact counts.
fn quiet_ipv6(ns: &str) {
    run(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-q",
        "-w",
        "net.ipv6.conf.all.disable_ipv6=1",
    ]);
    run(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-q",
        "-w",
        "net.ipv6.conf.default.disable_ipv6=1",
    ]);
}

fn ping_ok(out: &Output) -> bool {
    out.status.success()
}

/// Received ICMP sequence numbers from `ping` without -q.
fn replies(out: &Output) -> Vec<u32> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let s = l.split("icmp_seq=").nth(1)?;
            s.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// A capture on `dev` in namespace `ns` of frames matching `filter`,
/// stopped after `secs` seconds; returns tcpdump's `-e` lines.
fn capture(ns: &str, dev: &str, filter: &str, secs: u32) -> Child {
    Command::new("timeout")
        .arg(secs.to_string())
        .args([
            "ip", "netns", "exec", ns, "tcpdump", "-l", "-n", "-e", "-i", dev, filter,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump runs")
}

fn captured(c: Child) -> Vec<String> {
    let out = c.wait_with_output().expect("tcpdump ends");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn port_id_spreads_and_pins_guests_fails_over_under_traffic_announces_and_fails_back() {
    let _s = serial();
    let lab = Lab::new("port-id", true, Physical::Bridge);
    for g in 1..=GUESTS {
        let out = lab.ping(&format!("g{g}"), "10.9.0.101", 3, "0.2");
        assert!(ping_ok(&out), "g{g} cannot reach r1:\n{}", lab.log());
    }
    // Each guest on exactly one member, guests spread over both.
    let members: Vec<String> = (1..=GUESTS)
        .map(|g| {
            lab.member_of(g)
                .unwrap_or_else(|| panic!("g{g} has a member: {:?}", lab.team()))
        })
        .collect();
    assert!(
        members.contains(&"u0".to_string()) && members.contains(&"u1".to_string()),
        "{members:?}"
    );
    let tx = lab.member_tx();
    assert!(
        tx.iter().all(|&n| n > 0),
        "both members carry traffic: {tx:?}"
    );
    // The physical switch learned each guest on its member's peer port.
    let fdb = String::from_utf8_lossy(
        &run(&["bridge", "-n", &lab.ns("ph"), "fdb", "show", "br", "br0"]).stdout,
    )
    .to_string();
    for (g, m) in members.iter().enumerate() {
        let mac = format!("52:54:00:00:00:0{}", g + 1);
        let want = format!("dev p{}", &m[1..]);
        let line = fdb
            .lines()
            .find(|l| l.starts_with(&mac))
            .unwrap_or_else(|| panic!("{mac} not learned:\n{fdb}"));
        assert!(
            line.contains(&want),
            "{mac} on the wrong port: {line} (member {m})"
        );
    }

    // Failover under traffic: a guest on u0 pings every 5 ms while p0 (u0's
    // peer) goes down.
    let g = members
        .iter()
        .position(|m| m == "u0")
        .expect("a guest on u0")
        + 1;
    let mac = format!("52:54:00:00:00:0{g}");
    let rarps = capture(&lab.ns("ph"), "p1", "ether proto 0x8035 or arp", 4);
    std::thread::sleep(Duration::from_millis(500));
    let pinger = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns(&format!("g{g}")),
            "ping",
            "-n",
            "-i",
            "0.005",
            "-c",
            "500",
            "-W",
            "1",
            "10.9.0.101",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_millis(1000));
    run(&["ip", "-n", &lab.ns("ph"), "link", "set", "p0", "down"]);
    let out = pinger.wait_with_output().expect("ping ends");
    let seqs = replies(&out);
    let mut worst = 0;
    for w in seqs.windows(2) {
        worst = worst.max(w[1] - w[0] - 1);
    }
    let lost = 500 - seqs.len() as u32;
    eprintln!(
        "failover: {lost} of 500 pings lost, longest gap {worst} pings = {} ms at a 5 ms interval",
        worst * 5
    );
    assert!(
        seqs.len() > 400,
        "traffic did not survive the failover: {} replies\n{}",
        seqs.len(),
        lab.log()
    );
    assert!(worst * 5 < 1000, "loss window {} ms", worst * 5);
    assert_eq!(lab.member_of(g).as_deref(), Some("u1"), "{:?}", lab.team());
    let lines = captured(rarps);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&mac) && l.contains("Reverse Request")),
        "no RARP for {mac} on p1: {lines:?}"
    );
    // The guest ARPed for 10.9.0.101 before the failover, so the switch
    // knows its address and announces it too (RFC 5227 announcement:
    // sender = target = the guest's address).
    let ip = format!("10.9.0.{g}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("{mac} > ff:ff:ff:ff:ff:ff"))
                && (l.contains(&format!("who-has {ip} tell {ip},"))
                    || l.contains(&format!("Announcement, {ip},")))),
        "no gratuitous ARP for {mac} ({ip}) on p1: {lines:?}"
    );
    let v = client::request(&lab.socket, &Request::MacTable).expect("mac-table");
    let fdb: vswitch::protocol::MacTableReply = client::decode(v).expect("mac-table reply");
    assert!(
        fdb.switches[0]
            .entries
            .iter()
            .any(|e| e.mac == mac && e.ipv4.as_deref() == Some(ip.as_str())),
        "mac-table does not show {ip} for {mac}: {fdb:?}"
    );
    let t = lab.team();
    assert!(
        t.guests
            .iter()
            .any(|x| x.mac == mac && x.ipv4.as_deref() == Some(ip.as_str())),
        "team show does not show {ip} for {mac}: {:?}",
        t.guests
    );
    assert!(
        t.events.iter().any(|e| e.what == "u0 link down"),
        "{:?}",
        t.events
    );
    assert!(t.announcements_sent > 0);

    // Failback: u0 comes back and takes its guests back.
    run(&["ip", "-n", &lab.ns("ph"), "link", "set", "p0", "up"]);
    assert!(
        wait_until(Duration::from_secs(5), || lab.member_of(g).as_deref()
            == Some("u0")),
        "no failback: {:?}",
        lab.team()
    );
    assert!(ping_ok(&lab.ping(&format!("g{g}"), "10.9.0.101", 3, "0.2")));
}

#[test]
fn without_failback_a_recovered_member_stays_idle() {
    let _s = serial();
    let lab = Lab::new("port-id", false, Physical::Bridge);
    let g = (1..=GUESTS)
        .find(|&g| lab.member_of(g).as_deref() == Some("u0"))
        .expect("a guest on u0");
    run(&["ip", "-n", &lab.ns("ph"), "link", "set", "p0", "down"]);
    assert!(wait_until(Duration::from_secs(5), || lab
        .member_of(g)
        .as_deref()
        == Some("u1")));
    run(&["ip", "-n", &lab.ns("ph"), "link", "set", "p0", "up"]);
    assert!(wait_until(Duration::from_secs(5), || lab.team().members[0].link_up));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.member_of(g).as_deref(), Some("u1"), "{:?}", lab.team());
    assert!(
        ping_ok(&lab.ping(&format!("g{g}"), "10.9.0.101", 3, "0.2")),
        "{}",
        lab.log()
    );
    let before = lab.member_tx();
    assert!(ping_ok(&lab.ping(&format!("g{g}"), "10.9.0.101", 5, "0.1")));
    let after = lab.member_tx();
    assert!(
        after[1] >= before[1] + 5 && after[0] == before[0],
        "{before:?} -> {after:?}"
    );
}

#[test]
fn ip_hash_keeps_each_ip_pair_on_one_member_and_spreads_pairs() {
    let _s = serial();
    let lab = Lab::new("ip-hash", true, Physical::StaticBond);
    // Warm ARP (non-IP frames take the MAC hash) before counting.
    for g in 1..=GUESTS {
        for r in ["10.9.0.101", "10.9.0.102"] {
            assert!(
                ping_ok(&lab.ping(&format!("g{g}"), r, 1, "0.2")),
                "g{g} -> {r}:\n{}",
                lab.log()
            );
        }
    }
    let mut used = [0usize; 2];
    for g in 1..=GUESTS {
        for r in ["10.9.0.101", "10.9.0.102"] {
            let before = lab.member_tx();
            assert!(ping_ok(&lab.ping(&format!("g{g}"), r, 10, "0.02")));
            let after = lab.member_tx();
            let d: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
            // All 10 requests on one member, none on the other.
            let one = d.iter().filter(|&&x| x == 0).count() == 1 && d.iter().any(|&x| x >= 10);
            assert!(one, "pair g{g} -> {r} split over members: {d:?}");
            used[usize::from(d[1] > 0)] += 1;
            // team explain agrees.
            let v = client::request(
                &lab.socket,
                &Request::TeamExplain {
                    team: "bond0".into(),
                    flow: vswitch::protocol::TeamFlow {
                        port: format!("g{g}"),
                        src_ip: Some(format!("10.9.0.{g}")),
                        dst_ip: Some(r.to_string()),
                        ..Default::default()
                    },
                },
            )
            .expect("explain");
            let e: vswitch::protocol::TeamExplainReply = client::decode(v).expect("reply");
            let want = if d[0] > 0 { "u0" } else { "u1" };
            assert_eq!(e.member.as_deref(), Some(want), "{}", e.why);
        }
    }
    eprintln!(
        "ip-hash: 8 IP pairs, {} on u0 and {} on u1",
        used[0], used[1]
    );
    assert!(
        used[0] > 0 && used[1] > 0,
        "all pairs on one member: {used:?}"
    );
}

#[test]
fn a_broadcast_from_the_network_reaches_each_guest_once_and_a_guests_broadcast_does_not_loop() {
    let _s = serial();
    let lab = Lab::new("port-id", true, Physical::Bridge);
    // Let start-up chatter settle: announcements, ARP, and the IGMP
    // reports interfaces send for a second or so after they come up (one
    // arriving during the pings was counted as a 21st broadcast). Settled
    // = no port counter moved for 1.5 s.
    let mut before = lab.port_stats();
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(1500));
        let now = lab.port_stats();
        if now == before {
            break;
        }
        before = now;
    }
    let filtered_before: u64 = lab.team().members.iter().map(|m| m.rx_filtered).sum();
    // 20 broadcast pings from r1: the bridge floods each to p0 and p1.
    lab.broadcast_pings("r1", 20);
    std::thread::sleep(Duration::from_millis(300));
    let after = lab.port_stats();
    for g in 1..=GUESTS {
        let name = format!("g{g}");
        let d = after[&name].1 - before[&name].1;
        assert_eq!(
            d,
            20,
            "guest {name} got {d} copies of 20 broadcasts\nbefore {before:?}\nafter {after:?}\n{:#?}",
            lab.team().members
        );
    }
    let filtered: u64 = lab
        .team()
        .members
        .iter()
        .map(|m| m.rx_filtered)
        .sum::<u64>()
        - filtered_before;
    assert!(
        filtered >= 20,
        "the non-designated member dropped {filtered} of the 20 duplicates"
    );

    // g1 broadcasts 20 times: the other guests get each once, the copy the
    // bridge floods back in on the other member goes nowhere, and nothing
    // keeps circulating.
    let before = lab.port_stats();
    lab.broadcast_pings("g1", 20);
    std::thread::sleep(Duration::from_millis(500));
    let mid = lab.port_stats();
    for g in 2..=GUESTS {
        let name = format!("g{g}");
        let d = mid[&name].1 - before[&name].1;
        assert_eq!(d, 20, "guest {name} got {d} copies of g1's 20 broadcasts");
    }
    std::thread::sleep(Duration::from_millis(500));
    let later = lab.port_stats();
    assert_eq!(
        later["bond0"].0, mid["bond0"].0,
        "frames still arriving: a loop"
    );
}

#[test]
fn beacon_probing_fails_a_member_whose_path_breaks_beyond_the_first_hop() {
    let _s = serial();
    let lab = Lab::with("port-id", true, Physical::Bridge, 3, "beacon");
    // Beacons flow: every member hears the others within a few intervals.
    let heard = wait_until(Duration::from_secs(5), || {
        lab.team().members.iter().all(|m| m.rx_beacons >= 2)
    });
    assert!(heard, "beacons not heard: {:?}", lab.team().members);
    let g = (1..=GUESTS)
        .find(|&g| lab.member_of(g).as_deref() == Some("u2"))
        .unwrap_or_else(|| panic!("a guest on u2: {:?}", lab.team()));
    // u2 keeps its carrier, but its peer leaves the bridge: the break is one
    // hop away, invisible to link state.
    let t0 = Instant::now();
    run(&["ip", "-n", &lab.ns("ph"), "link", "set", "p2", "nomaster"]);
    let failed = wait_until(Duration::from_secs(10), || {
        let t = lab.team();
        let u2 = &t.members[2];
        u2.link_up && !u2.usable
    });
    let took = t0.elapsed();
    let t = lab.team();
    assert!(
        failed,
        "beacon probing did not fail u2: {t:?}\n{}",
        lab.log()
    );
    eprintln!(
        "beacon probing: u2 failed {} ms after its path broke (1 s beacons, 3 misses)",
        took.as_millis()
    );
    assert!(
        t.members[2]
            .beacon
            .as_deref()
            .is_some_and(|b| b.starts_with("failed")),
        "{:?}",
        t.members[2]
    );
    assert!(t.members[..2].iter().all(|m| m.usable), "{:?}", t.members);
    assert_ne!(lab.member_of(g).as_deref(), Some("u2"));
    assert!(
        ping_ok(&lab.ping(&format!("g{g}"), "10.9.0.101", 3, "0.2")),
        "{}",
        lab.log()
    );
    // The path heals: u2 recovers and, with failback, takes its guests back.
    run(&[
        "ip",
        "-n",
        &lab.ns("ph"),
        "link",
        "set",
        "p2",
        "master",
        "br0",
    ]);
    assert!(
        wait_until(Duration::from_secs(10), || lab.member_of(g).as_deref()
            == Some("u2")),
        "u2 did not recover: {:?}",
        lab.team()
    );
}

/// Forwarding rate through the team: 4 guests each send one iperf3 TCP
/// stream (5 s) to a remote host at once, through a 1-member and a
/// 2-member port-id team on AF_PACKET veths; prints Mbit/s per run and the
/// per-member frame counts, with AF_PACKET and with AF_XDP members.
/// A benchmark, not a check:
/// `cargo test -p vswitch --test teams -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: run by hand, numbers go to BENCHMARKS.md"]
fn bench_team_forwarding_rate() {
    let _s = serial();
    for (driver, members) in [
        ("af-packet", 1),
        ("af-packet", 2),
        ("af-xdp", 1),
        ("af-xdp", 2),
    ] {
        let lab = Lab::with_driver("port-id", true, Physical::Bridge, members, "link", driver);
        let mut servers = Vec::new();
        for (r, ip) in [("r1", "10.9.0.101"), ("r2", "10.9.0.102")] {
            for port in [5201, 5202] {
                servers.push(
                    Command::new("ip")
                        .args(["netns", "exec", &lab.ns(r), "iperf3", "-s", "-1", "-p"])
                        .arg(port.to_string())
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("iperf3 server"),
                );
                let _ = ip;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let targets = [
            ("10.9.0.101", 5201),
            ("10.9.0.101", 5202),
            ("10.9.0.102", 5201),
            ("10.9.0.102", 5202),
        ];
        let clients: Vec<Child> = (1..=GUESTS)
            .map(|g| {
                let (ip, port) = targets[g - 1];
                Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &lab.ns(&format!("g{g}")),
                        "iperf3",
                        "-c",
                        ip,
                        "-t",
                        "5",
                        "-J",
                        "-p",
                    ])
                    .arg(port.to_string())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("iperf3 client")
            })
            .collect();
        let mut total = 0.0;
        for c in clients {
            let out = c.wait_with_output().expect("iperf3 ends");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let bps = v["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or(0.0);
            total += bps;
        }
        for mut s in servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let per: Vec<String> = lab
            .team()
            .members
            .iter()
            .map(|m| format!("{} tx {} frames", m.name, m.tx_packets))
            .collect();
        eprintln!(
            "{driver} team of {members}: 4 TCP streams, aggregate {:.0} Mbit/s ({})",
            total / 1e6,
            per.join(", ")
        );
    }
}

#[test]
fn af_xdp_members_carry_a_team_and_fail_over() {
    let _s = serial();
    let lab = Lab::with_driver("port-id", true, Physical::Bridge, 2, "link", "af-xdp");
    assert!(!lab.log().contains("af-xdp refused"), "{}", lab.log());
    for g in 1..=GUESTS {
        let out = lab.ping(&format!("g{g}"), "10.9.0.101", 3, "0.2");
        assert!(ping_ok(&out), "g{g} cannot reach r1:\n{}", lab.log());
    }
    let rx: Vec<u64> = lab.team().members.iter().map(|m| m.rx_packets).collect();
    assert!(
        rx.iter().all(|&n| n > 0),
        "both AF_XDP members receive: {rx:?}"
    );
    let g = (1..=GUESTS)
        .find(|&g| lab.member_of(g).as_deref() == Some("u0"))
        .expect("a guest on u0");
    run(&["ip", "-n", &lab.ns("ph"), "link", "set", "p0", "down"]);
    assert!(wait_until(Duration::from_secs(5), || lab
        .member_of(g)
        .as_deref()
        == Some("u1")));
    assert!(
        ping_ok(&lab.ping(&format!("g{g}"), "10.9.0.101", 3, "0.2")),
        "{}",
        lab.log()
    );
}

/// src-mac, explicit-failover and l4-hash do what they promise, read from
/// the per-member transmit counters: src-mac pins each guest MAC to one
/// member and spreads them; explicit-failover uses the first member only;
/// l4-hash keeps each TCP/UDP 5-tuple on one member and spreads flows of
/// one IP pair.
#[test]
fn src_mac_explicit_failover_and_l4_hash_distribute_as_promised() {
    let _s = serial();
    // Per guest (or flow), the members whose tx counter moved.
    fn deltas(lab: &Lab, act: impl FnOnce()) -> Vec<u64> {
        let before = lab.member_tx();
        act();
        let after = lab.member_tx();
        after.iter().zip(&before).map(|(a, b)| a - b).collect()
    }
    for policy in ["src-mac", "explicit-failover"] {
        let lab = Lab::new(policy, true, Physical::Bridge);
        for g in 1..=GUESTS {
            assert!(ping_ok(&lab.ping(&format!("g{g}"), "10.9.0.101", 1, "0.2")));
        }
        let mut on = Vec::new();
        for g in 1..=GUESTS {
            let d = deltas(&lab, || {
                assert!(ping_ok(&lab.ping(
                    &format!("g{g}"),
                    "10.9.0.101",
                    10,
                    "0.02"
                )));
            });
            assert!(
                d.iter().filter(|&&x| x == 0).count() == 1 && d.iter().any(|&x| x >= 10),
                "{policy}: guest g{g} split over members: {d:?}"
            );
            let m = usize::from(d[1] > 0);
            assert_eq!(
                lab.member_of(g),
                Some(format!("u{m}")),
                "{policy}: team show agrees"
            );
            on.push(m);
        }
        eprintln!("{policy}: guests on members {on:?}");
        match policy {
            "explicit-failover" => assert!(on.iter().all(|&m| m == 0), "{on:?}"),
            _ => assert!(
                on.contains(&0) && on.contains(&1),
                "{policy}: not spread: {on:?}"
            ),
        }
    }
    // l4-hash: UDP flows of one IP pair, different source ports.
    let lab = Lab::new("l4-hash", true, Physical::Bridge);
    assert!(ping_ok(&lab.ping("g1", "10.9.0.101", 1, "0.2")));
    let mut used = [0usize; 2];
    for sport in 40000..40008u16 {
        let d = deltas(&lab, || {
            udp_from(&lab.ns("g1"), ("10.9.0.1", sport), ("10.9.0.101", 9), 10)
        });
        let v = client::request(
            &lab.socket,
            &Request::TeamExplain {
                team: "bond0".into(),
                flow: vswitch::protocol::TeamFlow {
                    port: "g1".into(),
                    src_ip: Some("10.9.0.1".into()),
                    dst_ip: Some("10.9.0.101".into()),
                    proto: Some("udp".into()),
                    src_port: Some(sport),
                    dst_port: Some(9),
                    ..Default::default()
                },
            },
        )
        .expect("explain");
        let e: vswitch::protocol::TeamExplainReply = client::decode(v).expect("reply");
        let m = e
            .member
            .as_deref()
            .and_then(|m| m[1..].parse::<usize>().ok())
            .expect("a member");
        used[m] += 1;
        assert!(
            d[m] >= 1 && d[1 - m] == 0,
            "flow {sport}: {d:?}, explain says u{m}: {}",
            e.why
        );
    }
    eprintln!(
        "l4-hash: 8 UDP flows of one IP pair, {} on u0 and {} on u1",
        used[0], used[1]
    );
    assert!(
        used[0] > 0 && used[1] > 0,
        "flows of one pair not spread: {used:?}"
    );
}

/// Sends `n` UDP datagrams from `src` to `dst` inside namespace `ns` (a
/// thread that enters it), so the 5-tuple is exactly what the test says.
fn udp_from(ns: &str, src: (&str, u16), dst: (&str, u16), n: usize) {
    let path = format!("/var/run/netns/{ns}");
    let (src, dst) = (
        format!("{}:{}", src.0, src.1),
        format!("{}:{}", dst.0, dst.1),
    );
    std::thread::spawn(move || {
        let f = File::open(&path).expect("netns file");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let sock = std::net::UdpSocket::bind(&src).expect("bind");
        for _ in 0..n {
            sock.send_to(b"x", &dst).expect("send");
            std::thread::sleep(Duration::from_millis(2));
        }
    })
    .join()
    .expect("sender thread");
}

/// The daemon's PID and its start time (clock ticks since boot): equal
/// before and after means the same process, never restarted.
fn daemon_identity(lab: &Lab) -> (u32, String, u64) {
    let pid = lab.daemon.as_ref().expect("daemon runs").id();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Field 22 (starttime), counted after the ")" that ends the name.
    let start = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (pid, comm.trim().to_string(), start)
}

/// Rewrites the lab's configuration file (`edit` on its text) and asks the
/// daemon to reload it.
fn reload(lab: &Lab, edit: impl FnOnce(String) -> String) -> Result<Vec<String>, String> {
    let cfg = lab.dir.path().join("vswitch.yaml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, edit(text)).expect("config");
    let v = client::request(
        &lab.socket,
        &Request::Reload {
            dry_run: false,
            config: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let r: vswitch::protocol::ReloadReply = client::decode(v).map_err(|e| e.to_string())?;
    Ok(r.changes)
}

/// Pings r1 from every guest every 5 ms for `count` pings; returns per
/// guest (lost, longest gap in pings).
fn ping_all_guests(lab: &Lab, count: u32) -> Vec<Child> {
    (1..=GUESTS)
        .map(|g| {
            Command::new("ip")
                .args(["netns", "exec", &lab.ns(&format!("g{g}")), "ping", "-n"])
                .args(["-i", "0.005", "-c", &count.to_string(), "-W", "1"])
                .arg("10.9.0.101")
                .stdout(Stdio::piped())
                .spawn()
                .expect("ping")
        })
        .collect()
}

fn losses(pingers: Vec<Child>, count: u32) -> Vec<(u32, u32)> {
    pingers
        .into_iter()
        .map(|p| {
            let seqs = replies(&p.wait_with_output().expect("ping ends"));
            let worst = seqs
                .windows(2)
                .map(|w| w[1] - w[0] - 1)
                .max()
                .unwrap_or(count);
            (count - seqs.len() as u32, worst)
        })
        .collect()
}

#[test]
fn a_reload_changes_the_policy_and_member_order_live_under_traffic() {
    let _s = serial();
    let lab = Lab::new("explicit-failover", true, Physical::Bridge);
    for g in 1..=GUESTS {
        let out = lab.ping(&format!("g{g}"), "10.9.0.101", 2, "0.2");
        assert!(ping_ok(&out), "g{g} cannot reach r1:\n{}", lab.log());
    }
    let members = |lab: &Lab| -> Vec<String> {
        (1..=GUESTS)
            .map(|g| lab.member_of(g).unwrap_or_else(|| "-".into()))
            .collect()
    };
    assert_eq!(
        members(&lab),
        ["u0"; GUESTS],
        "explicit failover: all on u0"
    );
    let before = daemon_identity(&lab);
    assert_eq!(before.1, "vswitchd");

    // explicit-failover -> port-id while every guest pings r1 every 5 ms.
    const COUNT: u32 = 400;
    let caps = capture(&lab.ns("ph"), "p1", "ether proto 0x8035 or arp", 4);
    std::thread::sleep(Duration::from_millis(500));
    let pingers = ping_all_guests(&lab, COUNT);
    std::thread::sleep(Duration::from_millis(1000));
    let t0 = Instant::now();
    let changes = reload(&lab, |c| {
        c.replace("policy: explicit-failover", "policy: port-id")
    })
    .unwrap_or_else(|e| panic!("reload refused: {e}\n{}", lab.log()));
    let took = t0.elapsed();
    assert_eq!(
        changes,
        ["bond0: policy explicit-failover -> port-id"],
        "{changes:?}"
    );
    let lost = losses(pingers, COUNT);
    eprintln!(
        "reload explicit-failover -> port-id took {} ms; per guest (lost of {COUNT}, longest gap in 5 ms pings): {lost:?}",
        took.as_millis()
    );
    let after = members(&lab);
    let moved: Vec<usize> = (1..=GUESTS).filter(|&g| after[g - 1] == "u1").collect();
    assert!(
        !moved.is_empty() && moved.len() < GUESTS,
        "port-id spreads the guests: {after:?}"
    );
    for &(l, gap) in &lost {
        assert!(l <= 10 && gap <= 10, "pings lost over the reload: {lost:?}");
    }
    let t = lab.team();
    assert_eq!(t.policy, "port-id");
    let events: Vec<&str> = t.events.iter().map(|e| e.what.as_str()).collect();
    assert!(
        events.contains(&"reload: bond0: policy explicit-failover -> port-id"),
        "{events:?}"
    );
    let summary = format!("reload moved guests: {} u0 -> u1", moved.len());
    assert!(events.contains(&summary.as_str()), "{events:?}");
    // The moved guests were announced out of u1, with their addresses.
    let lines = captured(caps);
    for &g in &moved {
        let mac = format!("52:54:00:00:00:0{g}");
        let ip = format!("10.9.0.{g}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&mac) && l.contains("Reverse Request")),
            "no RARP for {mac} on p1: {lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("{mac} > ff:ff:ff:ff:ff:ff"))
                    && (l.contains(&format!("who-has {ip} tell {ip},"))
                        || l.contains(&format!("Announcement, {ip},")))),
            "no gratuitous ARP for {mac} ({ip}) on p1: {lines:?}"
        );
    }
    // The traffic moved: a moved guest's pings leave on u1 (u0 may carry
    // a stray frame of another guest meanwhile, not 10 pings).
    let g = moved[0];
    let tx = |lab: &Lab| -> BTreeMap<String, u64> {
        lab.team()
            .members
            .iter()
            .map(|m| (m.name.clone(), m.tx_packets))
            .collect()
    };
    let a = tx(&lab);
    assert!(ping_ok(&lab.ping(
        &format!("g{g}"),
        "10.9.0.101",
        10,
        "0.02"
    )));
    let b = tx(&lab);
    assert!(
        b["u1"] >= a["u1"] + 10 && b["u0"] < a["u0"] + 10,
        "g{g}'s pings: {a:?} -> {b:?}"
    );

    // The active order reversed: every guest swaps member.
    let changes = reload(&lab, |c| c.replace("active: [u0, u1]", "active: [u1, u0]"))
        .unwrap_or_else(|e| panic!("reload refused: {e}\n{}", lab.log()));
    assert_eq!(
        changes,
        ["bond0: members active u0, u1 -> active u1, u0"],
        "{changes:?}"
    );
    let swapped = members(&lab);
    for g in 1..=GUESTS {
        assert_ne!(
            swapped[g - 1],
            after[g - 1],
            "g{g}: {after:?} -> {swapped:?}"
        );
        assert!(ping_ok(&lab.ping(
            &format!("g{g}"),
            "10.9.0.101",
            3,
            "0.05"
        )));
    }
    // The PMDs follow: g's pings now leave on u0.
    let a = tx(&lab);
    assert!(ping_ok(&lab.ping(
        &format!("g{g}"),
        "10.9.0.101",
        10,
        "0.02"
    )));
    let b = tx(&lab);
    assert!(
        b["u0"] >= a["u0"] + 10 && b["u1"] < a["u1"] + 10,
        "g{g}'s pings after the swap: {a:?} -> {b:?}"
    );
    let t = lab.team();
    let names: Vec<&str> = t.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["u1", "u0"], "team show lists the new order");
    assert!(t.members.iter().all(|m| m.link_up && m.usable), "{t:?}");

    // A member added (with a policy change): refused as a whole, naming
    // what needs the restart; nothing changes. Its interface exists (a
    // missing one is refused earlier, at its position).
    run(&[
        "ip",
        "-n",
        &lab.ns("sw"),
        "link",
        "add",
        "u2",
        "type",
        "veth",
        "peer",
        "name",
        "u2p",
    ]);
    let e = reload(&lab, |c| {
        c.replace("policy: port-id", "policy: src-mac")
            .replace("active: [u1, u0]", "active: [u1, u0, u2]")
            .replace(
                "    teams:\n",
                "      - name: u2\n        driver: af-packet\n    teams:\n",
            )
    })
    .expect_err("a new member needs a restart");
    assert!(
        e.contains("needs a restart: uplink u2: added")
            && e.contains(
                "needs a restart: bond0: members active u1, u0 -> active u1, u0, u2 (adds u2:"
            ),
        "{e}"
    );
    let t = lab.team();
    assert_eq!(t.policy, "port-id", "refused reload changed nothing");
    assert_eq!(members(&lab), swapped);
    assert_eq!(daemon_identity(&lab), before, "same daemon process");
}

/// The kernel's counters of `dev` in namespace `ns` (`ip -s -j`'s
/// `stats64`).
fn link_stats(ns: &str, dev: &str) -> serde_json::Value {
    let out = run(&["ip", "-n", ns, "-s", "-j", "link", "show", dev]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j JSON");
    v[0]["stats64"].clone()
}

/// Received frames of `dev` in namespace `ns`, from the kernel's counters.
fn rx_frames(ns: &str, dev: &str) -> u64 {
    link_stats(ns, dev)["rx"]["packets"]
        .as_u64()
        .expect("rx packets")
}

/// Sends `n` UDP datagrams back to back (no pause) from namespace `ns`.
fn udp_burst(ns: &str, dst: &str, n: usize) -> std::thread::JoinHandle<()> {
    let path = format!("/var/run/netns/{ns}");
    let dst = dst.to_string();
    std::thread::spawn(move || {
        let f = File::open(&path).expect("netns file");
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
        for _ in 0..n {
            sock.send_to(&[0u8; 1400], &dst).expect("send");
        }
    })
}

/// Four guests sending 1,000 datagrams each, back to back and all at once,
/// through a team of two members: every frame reaches the network and no
/// member counts a transmit drop, with AF_XDP members as with AF_PACKET
/// ones. `vswitchctl stats` shows each member's drop reasons.
fn bursts_through_a_team_lose_nothing(driver: &str) {
    const N: usize = 1000;
    let lab = Lab::with_driver("port-id", true, Physical::Bridge, 2, "link", driver);
    // ARP resolved first, so the bursts are all data.
    for g in 1..=GUESTS {
        let to = if g % 2 == 0 {
            "10.9.0.102"
        } else {
            "10.9.0.101"
        };
        assert!(
            ping_ok(&lab.ping(&format!("g{g}"), to, 1, "0.2")),
            "{}",
            lab.log()
        );
    }
    let before: u64 = ["r1", "r2"]
        .iter()
        .map(|r| rx_frames(&lab.ns(r), "eth0"))
        .sum();
    let senders: Vec<_> = (1..=GUESTS)
        .map(|g| {
            let to = if g % 2 == 0 {
                "10.9.0.102:9"
            } else {
                "10.9.0.101:9"
            };
            udp_burst(&lab.ns(&format!("g{g}")), to, N)
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    let want = before + (GUESTS * N) as u64;
    let arrived = wait_until(Duration::from_secs(5), || {
        ["r1", "r2"]
            .iter()
            .map(|r| rx_frames(&lab.ns(r), "eth0"))
            .sum::<u64>()
            >= want
    });
    let got: u64 = ["r1", "r2"]
        .iter()
        .map(|r| rx_frames(&lab.ns(r), "eth0"))
        .sum::<u64>()
        - before;
    let members = lab.team().members;
    let dropped: Vec<(String, u64)> = members
        .iter()
        .map(|m| (m.name.clone(), m.tx_dropped))
        .collect();
    let v = client::request(&lab.socket, &Request::Stats).expect("stats");
    let stats: StatsReply = client::decode(v).expect("stats reply");
    let team = stats.switches[0]
        .ports
        .iter()
        .find(|p| p.name == "bond0")
        .expect("bond0 in stats");
    eprintln!(
        "{driver}: {got} of {} datagrams arrived; member drops {dropped:?}; {:?}",
        GUESTS * N,
        team.members
    );
    // Where a frame could be lost, hop by hop: the guests' TAPs, the
    // switch's ports, the members' veths, the bridge side.
    let mut hops = String::new();
    for g in 1..=GUESTS {
        let s = link_stats(&lab.ns(&format!("g{g}")), &format!("g{g}"));
        hops.push_str(&format!(
            "g{g} tap: tx {} dropped {}\n",
            s["tx"]["packets"], s["tx"]["dropped"]
        ));
    }
    for p in &stats.switches[0].ports {
        hops.push_str(&format!(
            "port {}: rx {} tx {} tx_dropped {} drops {:?}\n",
            p.name, p.rx_packets, p.tx_packets, p.tx_dropped, p.drops
        ));
    }
    for (u, ph) in [("u0", "p0"), ("u1", "p1")] {
        let s = link_stats(&lab.ns("sw"), u);
        let p = link_stats(&lab.ns("ph"), ph);
        hops.push_str(&format!(
            "{u}: tx {} dropped {}; {ph}: rx {} dropped {}\n",
            s["tx"]["packets"], s["tx"]["dropped"], p["rx"]["packets"], p["rx"]["dropped"]
        ));
    }
    for r in ["r1", "r2"] {
        let s = link_stats(&lab.ns(r), "eth0");
        hops.push_str(&format!(
            "{r} eth0: rx {} dropped {}\n",
            s["rx"]["packets"], s["rx"]["dropped"]
        ));
    }
    assert!(
        arrived && dropped.iter().all(|(_, d)| *d == 0),
        "{driver}: {got} of {} arrived, member drops {dropped:?}, reasons {:?}\n{hops}{}",
        GUESTS * N,
        team.members,
        lab.log()
    );
    assert_eq!(team.members.len(), 2, "{:?}", team.members);
    for m in &team.members {
        for reason in ["tx_queue_full", "tx_link_down", "tx_oversize", "tx_errors"] {
            assert_eq!(m.netdev.get(reason), Some(&0), "{m:?}");
        }
    }
}

#[test]
fn af_xdp_members_lose_no_frame_of_back_to_back_bursts() {
    let _s = serial();
    bursts_through_a_team_lose_nothing("af-xdp");
}

#[test]
fn af_packet_members_lose_no_frame_of_back_to_back_bursts() {
    let _s = serial();
    bursts_through_a_team_lose_nothing("af-packet");
}
