//! Resource bounds of a running `vswitchd`: file descriptors and memory
//! across 1,000 frontend connect/disconnect cycles; a MAC flood from one
//! guest held at its port's learning limit while two other ports forward
//! every frame; a guest that never refills its RX ring costs drops on its
//! own port only (no head-of-line blocking of the others).
//!
//! Needs root and `dpdk-testpmd` (scripts/install-deps.sh) for the last two.

mod support;

use std::time::{Duration, Instant};

use support::frontend::*;
use support::{serial, wait_until};
use vswitch::protocol::{MacTableReply, Request};

const MAC_A: &str = "02:00:00:00:0a:01";
const MAC_B: &str = "02:00:00:00:0b:01";

/// One connect/disconnect: SET_OWNER, GET_FEATURES (answered), hang up.
fn short_session(d: &Daemon) {
    let r = Raw::connect(&d.socket("c"));
    r.send(&msg(req::SET_OWNER, &[])).expect("SET_OWNER");
    r.send(&msg(req::GET_FEATURES, &[])).expect("GET_FEATURES");
    let (code, body) = r.reply(Duration::from_secs(5)).expect("GET_FEATURES reply");
    assert_eq!((code, body.len()), (req::GET_FEATURES, 8));
}

/// A full session: memory table (memfd), both rings running, one frame.
/// A connect that attaches 4 memfds to a message that takes none
/// (SET_OWNER), then hangs up: the switch must close them.
fn stray_fds_session(d: &Daemon) {
    let r = Raw::connect(&d.socket("c"));
    let files: Vec<_> = (0..4).map(|_| memfd(4096)).collect();
    let fds: Vec<_> = files.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let _ = r.send_with(&msg(req::SET_OWNER, &[]), &fds);
    let _ = r.send(&msg(req::GET_FEATURES, &[]));
    let _ = r.reply(Duration::from_secs(5));
}

fn full_session(d: &Daemon, src: [u8; 6]) {
    let mut g = GoodFrontend::connect(&d.socket("c")).expect("good frontend");
    g.send_frames(&[eth_frame([0xff; 6], src)])
        .unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail()));
}

fn connects(d: &Daemon) -> u64 {
    let p = d.port("c");
    p.vhost
        .as_ref()
        .and_then(|v| v.get("connects").copied())
        .unwrap_or(0)
}

#[test]
fn a_thousand_connect_cycles_leak_no_fds_or_memory() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(
        dir.path(),
        "switches:\n  - name: sw0\n    ports:\n      - name: c\n      - name: d\n",
    );
    // Warm up: first-use allocations (thread stacks touched, logging,
    // allocator arenas) are not leaks.
    for i in 0..50u32 {
        if i % 10 == 0 {
            full_session(&d, [2, 0, 0, 0, 0, 1]);
        } else {
            short_session(&d);
        }
    }
    let settle = |n: u64| {
        let ok = wait_until(Duration::from_secs(20), || {
            connects(&d) == n && d.port("c").vhost.is_some()
        });
        assert!(ok, "connects {} != {n}\n{}", connects(&d), d.log_tail());
        // The last reset runs after the connect is counted.
        std::thread::sleep(Duration::from_millis(300));
    };
    settle(50);
    let (fds0, rss0) = (d.fds(), d.rss_kib());
    let t = Instant::now();
    let cycles = 1000u32;
    let mut full = 0u32;
    for i in 0..cycles {
        if i % 10 == 0 {
            full_session(&d, [2, 0, 0, 0, 0, 1]);
            full += 1;
        } else if i % 10 == 5 {
            stray_fds_session(&d);
        } else {
            short_session(&d);
        }
    }
    settle(50 + u64::from(cycles));
    let (fds1, rss1) = (d.fds(), d.rss_kib());
    let c = d.port("c");
    println!(
        "{cycles} cycles ({full} with a memory table and running rings, {full} with 4 stray \
         fds on SET_OWNER) in {:.1?}: \
         open fds {fds0} -> {fds1}, VmRSS {rss0} KiB -> {rss1} KiB; port c: {:?}",
        t.elapsed(),
        c.vhost
    );
    assert!(fds1 <= fds0 + 2, "fds grew: {fds0} -> {fds1}");
    assert!(
        rss1 <= rss0 + 2048,
        "VmRSS grew by more than 2 MiB: {rss0} -> {rss1} KiB"
    );
    assert_eq!(c.rx_packets, 5 + u64::from(full), "{c:?}");
}

/// testpmd on `a` and `b` (rxonly), `start tx_first 4` from both: every
/// frame must arrive. Returns (frames each way so far, round time).
fn round(pmd: &mut Testpmd, sent: &mut u64, extra_rx: &[u64; 2], what: &str) -> Duration {
    let t = Instant::now();
    pmd.run("stop", Some("Done."));
    pmd.run("start tx_first 4", None);
    *sent += 128;
    let s = pmd.wait_stats(
        what,
        &[*sent + extra_rx[0], *sent + extra_rx[1]],
        &[*sent, *sent],
    );
    for p in &s {
        assert_eq!((p.rx_missed, p.rx_errors, p.tx_errors), (0, 0, 0), "{s:?}");
    }
    t.elapsed()
}

#[test]
fn a_mac_flood_stays_inside_its_ports_limit_and_others_keep_forwarding() {
    require_testpmd();
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let limit = 1000u64;
    let d = Daemon::start(
        dir.path(),
        &format!(
            "switches:
  - name: sw0
    mac-table:
      per-port-limit: {limit}
    port-groups:
      - name: v10
        vlan: 10
      - name: v20
        vlan: 20
    ports:
      - name: a
        port-group: v10
      - name: b
        port-group: v10
      - name: f
        port-group: v20
"
        ),
    );
    let mut pmd = Testpmd::start(
        &[(d.socket("a"), MAC_A, MAC_B), (d.socket("b"), MAC_B, MAC_A)],
        &[],
        "paired",
        "flood",
    );
    pmd.run("set fwd rxonly", None);
    pmd.run("start", None);
    let mut sent = 0;
    let quiet = round(&mut pmd, &mut sent, &[0, 0], "a<->b before the flood");

    // The flood: 100,000 frames from `f`, each from a different source MAC,
    // sent by a thread while a and b run rounds.
    let macs: u32 = 100_000;
    let sock = d.socket("f");
    let flood = std::thread::spawn(move || {
        let mut g = GoodFrontend::connect(&sock).expect("flooding frontend");
        let t = Instant::now();
        let mut n = 0u32;
        while n < macs {
            let batch: Vec<Vec<u8>> = (n..(n + 256).min(macs))
                .map(|i| {
                    let b = i.to_be_bytes();
                    eth_frame([0xff; 6], [0x02, 0xf1, b[0], b[1], b[2], b[3]])
                })
                .collect();
            g.send_frames(&batch).expect("flood batch");
            n += batch.len() as u32;
        }
        (t.elapsed(), g)
    });
    let mut during = Vec::new();
    while !flood.is_finished() {
        during.push(round(
            &mut pmd,
            &mut sent,
            &[0, 0],
            "a<->b during the flood",
        ));
    }
    let (took, _g) = flood.join().expect("flood thread");
    let after = round(&mut pmd, &mut sent, &[0, 0], "a<->b after the flood");
    pmd.run("stop", Some("Done."));
    pmd.quit();

    let f = d.port("f");
    let v = vswitch::client::request(&d.dir.join("vswitchd.sock"), &Request::MacTable)
        .expect("mac table");
    let table: MacTableReply = serde_json::from_value(v).expect("mac table reply");
    let on_f = table
        .switches
        .iter()
        .flat_map(|s| &s.entries)
        .filter(|e| e.port == "f")
        .count() as u64;
    println!(
        "flood: {macs} source MACs in {took:.1?} ({:.0} frames/s into the switch); \
         learned on f: {on_f} (limit {limit}); f: mac_learn_limit {}, rx {}, drops {:?}; \
         a<->b round of 2x128 frames: {quiet:.0?} before, {:?} during ({} rounds), {after:.0?} after",
        f64::from(macs) / took.as_secs_f64(),
        f.mac_learn_limit,
        f.rx_packets,
        f.drops,
        during,
        during.len(),
    );
    assert_eq!(f.rx_packets, u64::from(macs), "{f:?}");
    assert_eq!(on_f, limit, "entries learned on f");
    assert_eq!(f.mac_learn_limit, u64::from(macs) - limit, "{f:?}");
    for p in ["a", "b"] {
        let s = d.port(p);
        assert_eq!((s.rx_packets, s.tx_packets), (sent, sent), "{s:?}");
        assert_eq!(
            (s.tx_dropped, s.drops_total, s.mac_learn_limit),
            (0, 0, 0),
            "{s:?}"
        );
    }
    assert!(!during.is_empty(), "no a<->b round ran during the flood");
}

#[test]
fn a_guest_that_stops_reading_its_rx_ring_costs_drops_on_its_port_only() {
    require_testpmd();
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(
        dir.path(),
        "switches:\n  - name: sw0\n    ports:\n      - name: a\n      - name: b\n      - name: s\n",
    );
    // `s`: rings running, but its RX ring never gets a buffer.
    let stalled = GoodFrontend::connect(&d.socket("s")).expect("stalled guest");
    // a and b send to the broadcast address: every frame is flooded to the
    // other testpmd port and to `s`.
    let bcast = "ff:ff:ff:ff:ff:ff";
    let mut pmd = Testpmd::start(
        &[(d.socket("a"), MAC_A, bcast), (d.socket("b"), MAC_B, bcast)],
        &[],
        "paired",
        "stall",
    );
    pmd.run("set fwd rxonly", None);
    pmd.run("start", None);
    let rounds = 10;
    let mut sent = 0;
    let t = Instant::now();
    for i in 0..rounds {
        round(
            &mut pmd,
            &mut sent,
            &[0, 0],
            &format!("round {i} with s stalled"),
        );
    }
    let took = t.elapsed();
    pmd.run("stop", Some("Done."));
    pmd.quit();
    let s = d.port("s");
    println!(
        "{rounds} rounds of 2x128 broadcasts in {took:.1?} with s never reading: \
         s tx {} tx_dropped {} vhost {:?}",
        s.tx_packets, s.tx_dropped, s.vhost
    );
    // Every flooded copy for s was dropped and counted on s.
    assert_eq!(s.tx_dropped, 2 * sent, "{s:?}");
    assert_eq!(s.tx_packets, 0, "{s:?}");
    for p in ["a", "b"] {
        let c = d.port(p);
        assert_eq!((c.rx_packets, c.tx_packets), (sent, sent), "{c:?}");
        assert_eq!((c.tx_dropped, c.drops_total), (0, 0), "{c:?}");
    }
    drop(stalled);
}
