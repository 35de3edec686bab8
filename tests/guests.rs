//! Real QEMU guests (software emulation, Debian kernel + busybox + netperf,
//! see scripts/build-guest.sh) attached to a real `vswitchd` by vhost-user:
//! traffic on an access VLAN, a trunk with an 802.1Q sub-interface in the
//! guest, guest tagging with untagged and tagged interfaces in one guest,
//! isolation between VLANs, and recovery from guest reboot, QEMU
//! SIGKILL, switch crash and restart in both socket roles.
//!
//! The guests print "VSG ..." markers on their serial console (guest/init);
//! the tests wait for them. Timeouts are generous: on 2 cores two TCG
//! guests and the switch share the CPU.

mod support;

use std::path::Path;
use std::time::Duration;

use support::guest::{Attach, Daemon, Guest, GuestArgs, result};
use support::{Netns, run, serial};

const BOOT: Duration = Duration::from_secs(120);

fn args(mac: &str, ip: &str, peer: Option<&str>) -> GuestArgs {
    GuestArgs {
        mac: mac.into(),
        ip: ip.into(),
        peer: peer.map(Into::into),
        len_s: 3,
        ..GuestArgs::default()
    }
}

fn to_server(dir: &Path, port: &str) -> Attach {
    Attach::ToServer(dir.join(format!("{port}.sock")))
}

/// Per-port counters the daemon prints when it stops:
/// "port NAME: rx R frames, tx T frames, ...".
fn port_counters(log: &str, port: &str) -> Option<(u64, u64)> {
    let prefix = format!("port {port}: rx ");
    log.lines().rev().find_map(|l| {
        let rest = l.strip_prefix(&prefix)?;
        let mut words = rest.split_whitespace();
        let rx = words.next()?.parse().ok()?;
        let tx = words.nth(2)?.parse().ok()?;
        Some((rx, tx))
    })
}

#[test]
fn access_vlan_ping_and_netperf_between_two_guests() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut daemon = Daemon::start(
        d,
        r#"
switches:
  - name: sw0
    port-groups:
      - name: vlan10
        vlan: 10
    ports:
      - name: vm0
        port-group: vlan10
        mac: 52:54:00:00:10:01
      - name: vm1
        port-group: vlan10
        mac: 52:54:00:00:10:02
"#,
    );
    let _server = Guest::boot(
        d,
        "server",
        &to_server(d, "vm0"),
        args("52:54:00:00:10:01", "10.0.10.1/24", None),
    );
    let client = Guest::boot(
        d,
        "client",
        &to_server(d, "vm1"),
        GuestArgs {
            tests: Some("ping,TCP_STREAM,TCP_RR,UDP_STREAM".into()),
            ..args("52:54:00:00:10:02", "10.0.10.2/24", Some("10.0.10.1"))
        },
    );
    let (_, done) = client.expect_marker("tests-done", 0, BOOT * 3);
    let m = client.markers();
    eprintln!("client markers: {m:#?}");
    assert_eq!(done, "tests-done rc=0", "{m:#?}\n{}", daemon.log_tail());
    assert_eq!(result(&m, "ping"), Some(vec![5.0]), "5 of 5 pings answered");
    let stream = result(&m, "TCP_STREAM").expect("TCP_STREAM result")[0];
    let rr = result(&m, "TCP_RR").expect("TCP_RR result");
    let udp = result(&m, "UDP_STREAM").expect("UDP_STREAM result")[0];
    // The guests' emulation is the bottleneck (TCG): these bounds prove
    // traffic flows in volume, not speed.
    assert!(stream > 10.0, "TCP_STREAM {stream} Mbit/s");
    assert!(rr[0] > 50.0, "TCP_RR {} transactions/s", rr[0]);
    assert!(udp > 10.0, "UDP_STREAM {udp} Mbit/s");
    // A Linux guest's full-size TCP segments are received zero-copy
    // (headers copied out, the rest copied once into the other guest).
    let stats = std::process::Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .arg("--runtime-dir")
        .arg(d)
        .args(["stats", "--json"])
        .output()
        .expect("vswitchctl runs");
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("stats JSON");
    let zero_copy: u64 = stats["switches"][0]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["vhost"]["rx_zero_copy"].as_u64())
        .sum();
    assert!(
        zero_copy > 1000,
        "frames received zero-copy: {zero_copy}\n{stats:#}"
    );
    daemon.stop();
    let log = daemon.log();
    let (rx0, tx0) = port_counters(&log, "vm0").expect("vm0 counters");
    let (rx1, tx1) = port_counters(&log, "vm1").expect("vm1 counters");
    // A TCP_STREAM of >10 Mbit/s for 3 s is thousands of frames each way.
    assert!(rx1 > 1000 && tx0 > 1000, "vm1 -> vm0: rx {rx1}, tx {tx0}");
    assert!(rx0 > 1000 && tx1 > 1000, "vm0 -> vm1: rx {rx0}, tx {tx1}");
}

#[test]
fn trunk_subinterface_reaches_access_port_and_vlans_are_isolated() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut daemon = Daemon::start(
        d,
        r#"
switches:
  - name: sw0
    port-groups:
      - name: v20
        vlan: 20
      - name: v30
        vlan: 30
      - name: trunk
        vlan: { trunk: [20, 30] }
    ports:
      - name: access20
        port-group: v20
      - name: trunk
        port-group: trunk
      - name: access30
        port-group: v30
"#,
    );
    let server = Guest::boot(
        d,
        "access20",
        &to_server(d, "access20"),
        args("52:54:00:00:20:01", "10.0.20.1/24", None),
    );
    // The trunk guest talks on eth0.20: the trunk has no native VLAN, so
    // only tagged frames get through.
    let trunk = Guest::boot(
        d,
        "trunk",
        &to_server(d, "trunk"),
        GuestArgs {
            vlan: Some(20),
            tests: Some("ping,TCP_RR".into()),
            ..args("52:54:00:00:20:02", "10.0.20.2/24", Some("10.0.20.1"))
        },
    );
    let (_, done) = trunk.expect_marker("tests-done", 0, BOOT * 2);
    let m = trunk.markers();
    assert_eq!(done, "tests-done rc=0", "{m:#?}\n{}", daemon.log_tail());
    assert_eq!(result(&m, "ping"), Some(vec![5.0]));
    assert!(result(&m, "TCP_RR").expect("TCP_RR")[0] > 50.0, "{m:#?}");
    assert!(server.markers().iter().any(|l| l.starts_with("net-up")));

    // Same subnet, other VLAN: the access-30 guest must not reach the
    // access-20 guest, while the trunk guest keeps reaching it.
    let other = Guest::boot(
        d,
        "access30",
        &to_server(d, "access30"),
        GuestArgs {
            tests: Some("ping".into()),
            wait_s: 15,
            ..args("52:54:00:00:30:01", "10.0.20.3/24", Some("10.0.20.1"))
        },
    );
    let from = trunk.markers().len();
    let (_, verdict) = other.expect_marker("peer-", 0, BOOT);
    assert_eq!(verdict, "peer-unreachable", "{:#?}", other.markers());
    trunk.expect_marker("ping ok", from, Duration::from_secs(30));
    daemon.stop();
    let log = daemon.log();
    let (rx30, _) = port_counters(&log, "access30").expect("access30 counters");
    let (_, tx20) = port_counters(&log, "access20").expect("access20 counters");
    assert!(rx30 > 0, "the VLAN 30 guest did send (ARP)");
    assert!(tx20 > 0);
}

#[test]
fn traffic_recovers_after_guest_reboot_qemu_kill_and_switch_crash() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut daemon = Daemon::start(
        d,
        "switches:\n  - name: sw0\n    ports:\n      - name: vm0\n      - name: vm1\n",
    );
    let a0 = to_server(d, "vm0");
    let a1 = to_server(d, "vm1");
    let g0 = Guest::boot(
        d,
        "g0",
        &a0,
        args("52:54:00:00:00:01", "10.0.0.1/24", Some("10.0.0.2")),
    );
    let mut g1 = Guest::boot(
        d,
        "g1",
        &a1,
        args("52:54:00:00:00:02", "10.0.0.2/24", Some("10.0.0.1")),
    );
    g0.expect_marker("ping ok", 0, BOOT);
    g1.expect_marker("ping ok", 0, BOOT);

    // 1. Guest reboot: the device is reset and the rings set up again.
    let from = g1.markers().len();
    g1.monitor("system_reset");
    let (booted, _) = g1.expect_marker("booted", from, BOOT);
    g1.expect_marker("ping ok", booted, BOOT);
    let from0 = g0.markers().len();
    g0.expect_marker("ping ok", from0, Duration::from_secs(30));

    // 2. QEMU killed with SIGKILL and started again on the same socket.
    g1.kill();
    g1.restart(d, &a1, 1);
    g1.expect_marker("ping ok", 0, BOOT);
    let from0 = g0.markers().len();
    g0.expect_marker("ping ok", from0, Duration::from_secs(30));

    // 3. The switch crashes (SIGKILL: sockets left behind): pings fail,
    //    then a new switch comes up, QEMU reconnects (reconnect-ms) and
    //    replays its rings with non-zero bases; pings work again.
    daemon.kill();
    let from0 = g0.markers().len();
    g0.expect_marker("ping fail", from0, Duration::from_secs(30));
    daemon.restart();
    let from0 = g0.markers().len();
    let from1 = g1.markers().len();
    g0.expect_marker("ping ok", from0, BOOT);
    g1.expect_marker("ping ok", from1, BOOT);
    assert!(g1.running(), "QEMU survived the switch restart");
    daemon.stop();
    let (rx, tx) = port_counters(&daemon.log(), "vm0").expect("vm0 counters");
    assert!(
        rx > 0 && tx > 0,
        "the restarted switch forwarded: rx {rx} tx {tx}"
    );
}

#[test]
fn switch_as_client_connects_to_qemu_and_reconnects_after_restart() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let s0 = d.join("qemu0.sock");
    let s1 = d.join("qemu1.sock");
    // QEMU owns the sockets (server=on,wait=off); the switch connects.
    let g0 = Guest::boot(
        d,
        "g0",
        &Attach::AsServer(s0.clone()),
        args("52:54:00:00:00:11", "10.0.1.1/24", Some("10.0.1.2")),
    );
    let g1 = Guest::boot(
        d,
        "g1",
        &Attach::AsServer(s1.clone()),
        args("52:54:00:00:00:12", "10.0.1.2/24", Some("10.0.1.1")),
    );
    assert!(
        support::wait_until(Duration::from_secs(10), || s0.exists() && s1.exists()),
        "QEMU created its sockets"
    );
    let mut daemon = Daemon::start(
        d,
        &format!(
            "switches:\n  - name: sw0\n    ports:\n      - name: vm0\n        mode: client\n        socket: {}\n      - name: vm1\n        mode: client\n        socket: {}\n",
            s0.display(),
            s1.display()
        ),
    );
    g0.expect_marker("ping ok", 0, BOOT);
    g1.expect_marker("ping ok", 0, BOOT);

    // A planned switch restart (upgrade): QEMU keeps running, the switch
    // reconnects, traffic resumes; the VMs were never restarted.
    daemon.stop();
    let from0 = g0.markers().len();
    g0.expect_marker("ping fail", from0, Duration::from_secs(30));
    assert!(
        s0.exists(),
        "the switch must not remove a client-role socket"
    );
    daemon.restart();
    let from0 = g0.markers().len();
    let from1 = g1.markers().len();
    g0.expect_marker("ping ok", from0, BOOT);
    g1.expect_marker("ping ok", from1, BOOT);
}

/// The `vhost` counters `vswitchctl stats --json` shows for `port`.
fn vhost_stats(dir: &Path, port: &str) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .arg("--runtime-dir")
        .arg(dir)
        .args(["stats", "--json"])
        .output()
        .expect("vswitchctl runs");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    stats["switches"][0]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == port)
        .map(|p| p["vhost"].clone())
        .unwrap_or_default()
}

/// Multiqueue with real guests: two 2-vCPU guests whose virtio-net NICs
/// have two queue pairs, on a switch of two PMDs. Linux enables both pairs
/// (one per vCPU); pings from each vCPU in turn go out on each TX queue,
/// so every pair of both ports carries frames both ways, and netperf runs.
#[test]
fn two_vcpu_guests_use_both_queue_pairs_of_their_ports() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut daemon = Daemon::start(
        d,
        r#"
runtime:
  pmd-cores: [0, 1]
switches:
  - name: sw0
    ports:
      - name: vm0
        queues: 2
      - name: vm1
        queues: 2
"#,
    );
    let mq = |a: GuestArgs| GuestArgs { queues: 2, ..a };
    let server = Guest::boot(
        d,
        "server",
        &to_server(d, "vm0"),
        mq(args("52:54:00:00:20:01", "10.0.20.1/24", None)),
    );
    let client = Guest::boot(
        d,
        "client",
        &to_server(d, "vm1"),
        mq(GuestArgs {
            tests: Some("ping-cpus,TCP_STREAM".into()),
            ..args("52:54:00:00:20:02", "10.0.20.2/24", Some("10.0.20.1"))
        }),
    );
    let (_, done) = client.expect_marker("tests-done", 0, BOOT * 3);
    let m = client.markers();
    eprintln!("client markers: {m:#?}");
    for g in [&server, &client] {
        let (_, q) = g.expect_marker("queues", 0, BOOT);
        assert_eq!(q, "queues rx=2 tx=2 cpus=2", "{}", g.name);
    }
    assert_eq!(done, "tests-done rc=0", "{m:#?}\n{}", daemon.log_tail());
    assert_eq!(result(&m, "ping-cpus"), Some(vec![10.0]), "10 of 10 pings");
    let stream = result(&m, "TCP_STREAM").expect("TCP_STREAM result")[0];
    assert!(stream > 10.0, "TCP_STREAM {stream} Mbit/s");
    for port in ["vm0", "vm1"] {
        let v = vhost_stats(d, port);
        eprintln!("{port}: {v}");
        for k in ["rx_q0", "rx_q1", "tx_q0", "tx_q1"] {
            assert!(
                v[k].as_u64().unwrap_or(0) > 0,
                "{port}: no frames on {k}: {v}"
            );
        }
    }
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .arg("--runtime-dir")
        .arg(d)
        .arg("status")
        .output()
        .expect("vswitchctl runs");
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains(" 2/2 ")).count(),
        2,
        "both pairs of both ports run:\n{text}"
    );
    daemon.stop();
}

/// Guest tagging (`vlan: all`, VMware's VLAN 4095) with a real guest that
/// uses its untagged interface and two 802.1Q sub-interfaces at once:
/// each reaches a host (an internal port in its own namespace) on the
/// access VLAN of the same number, the untagged one on VLAN 1. The
/// untagged ping proves both directions of the rule: the guest's untagged
/// frames join VLAN 1, and VLAN 1 reaches the guest untagged (a frame
/// tagged with VID 1 would go to an `eth0.1` the guest does not have).
/// `vswitchctl vlan show` says the same.
#[test]
fn guest_tagging_port_carries_untagged_and_tagged_interfaces_of_one_guest() {
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut daemon = Daemon::start(
        d,
        r#"
switches:
  - name: sw0
    port-groups:
      - name: vgt
        vlan: all
      - name: v10
        vlan: 10
      - name: v20
        vlan: 20
    ports:
      - name: vgt
        port-group: vgt
      - name: vgth1
        type: internal
      - name: vgth10
        type: internal
        port-group: v10
      - name: vgth20
        type: internal
        port-group: v20
"#,
    );
    let hosts = [(1u16, "vgth1"), (10, "vgth10"), (20, "vgth20")];
    let namespaces: Vec<Netns> = hosts
        .iter()
        .map(|(vid, tap)| {
            let ns = Netns::new(&format!("vgt{vid}"));
            let n = ns.name.as_str();
            run("ip", &["link", "set", tap, "netns", n]);
            let addr = format!("10.0.{vid}.1/24");
            run("ip", &["-n", n, "addr", "add", &addr, "dev", tap]);
            ns.link_up(tap);
            ns
        })
        .collect();
    let guest = Guest::boot(
        d,
        "vgt",
        &to_server(d, "vgt"),
        GuestArgs {
            vlans: vec![(10, "10.0.10.5/24".into()), (20, "10.0.20.5/24".into())],
            ..args("52:54:00:00:40:01", "10.0.1.5/24", None)
        },
    );
    guest.expect_marker("net-up", 0, BOOT);
    for ((vid, _), ns) in hosts.iter().zip(&namespaces) {
        let ns = ns.name.as_str();
        let target = format!("10.0.{vid}.5");
        // The guest's interfaces come up a moment after the marker; the
        // first ping also waits for ARP.
        let reached = support::wait_until(Duration::from_secs(60), || {
            std::process::Command::new("ip")
                .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "2", &target])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        assert!(
            reached,
            "VLAN {vid}: {target} not reached from {ns}\n{}",
            daemon.log_tail()
        );
        let out = run(
            "ip",
            &[
                "netns", "exec", ns, "ping", "-c", "5", "-i", "0.2", "-W", "2", &target,
            ],
        );
        assert!(out.contains("5 received"), "VLAN {vid}: {out}");
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vswitchctl"))
        .arg("--runtime-dir")
        .arg(d)
        .args(["vlan", "show", "--json"])
        .output()
        .expect("vswitchctl runs");
    let show: serde_json::Value = serde_json::from_slice(&out.stdout).expect("vlan show JSON");
    let vgt_in = |vid: u64| {
        show["switches"][0]["vlans"]
            .as_array()
            .expect("vlans")
            .iter()
            .find(|v| v["vlan"] == vid)
            .and_then(|v| v["members"].as_array())
            .and_then(|m| m.iter().find(|m| m["port"] == "vgt"))
            .map(|m| m["tagged"].as_bool().expect("tagged"))
    };
    assert_eq!(vgt_in(1), Some(false), "VLAN 1 untagged on vgt: {show:#}");
    assert_eq!(vgt_in(10), Some(true), "VLAN 10 tagged on vgt: {show:#}");
    assert_eq!(vgt_in(20), Some(true), "VLAN 20 tagged on vgt: {show:#}");
    daemon.stop();
    let (rx, tx) = port_counters(&daemon.log(), "vgt").expect("vgt counters");
    assert!(rx >= 15 && tx >= 15, "vgt: rx {rx} tx {tx}");
}
