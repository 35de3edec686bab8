//! Two PMD threads forwarding concurrently between memory ports: no frame
//! lost, none duplicated, each at the right port; and MAC learning done on
//! one PMD reaches the other.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dataplane::testing::{frame, guest, mac};
use dataplane::{IdlePolicy, Packet, PmdConfig, PortId, Switch, SwitchSpec, VlanMode};

const PORTS: u16 = 4;
const WINDOW: u64 = 400;

fn pmds() -> Vec<PmdConfig> {
    (0..2)
        .map(|_| PmdConfig {
            idle: IdlePolicy::adaptive(),
            ..PmdConfig::default()
        })
        .collect()
}

fn seq_of(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[14..22]);
    u64::from_be_bytes(b)
}

#[test]
fn two_pmds_lose_and_duplicate_nothing() {
    let ports = (1..=PORTS)
        .map(|i| {
            let mut p = guest(i, VlanMode::Access(1));
            p.mac = Some(mac(u64::from(i)));
            p
        })
        .collect();
    let spec = SwitchSpec {
        ports,
        ..Default::default()
    };
    let mut sw = Switch::start(spec, &pmds()).expect("switch starts");
    let mut peers: Vec<_> = (1..=PORTS)
        .map(|i| sw.attach_mem_port(PortId(i), 512).expect("attach"))
        .collect();

    const N: u64 = 200_000;
    let mut expect_port: HashMap<u64, usize> = HashMap::with_capacity(N as usize);
    let mut seen: Vec<u8> = vec![0; N as usize];
    let mut received = 0u64;
    let mut next = 0u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while received < N {
        if Instant::now() >= deadline {
            let stats: Vec<_> = (1..=PORTS)
                .map(|i| {
                    let s = sw.port_stats(PortId(i));
                    (s.rx_packets, s.tx_packets, s.tx_dropped, s.total_drops())
                })
                .collect();
            let pending: Vec<usize> = peers.iter().map(|p| p.pending_to_switch()).collect();
            let sleeps: Vec<u64> = sw.pmd_stats().iter().map(|s| s.idle_sleeps.get()).collect();
            panic!(
                "timed out: {received}/{N} received, {next} offered; (rx, tx, tx_dropped, drops) {stats:?}; waiting in rx rings {pending:?}; PMD sleeps {sleeps:?}"
            );
        }
        // Offer a burst on every port, alternating queues (and so PMDs).
        for (src, peer) in peers.iter_mut().enumerate() {
            for _ in 0..32 {
                // A window of outstanding frames smaller than any ring: the
                // switch drops (and counts) frames when an output ring is
                // full, and this test is about loss inside the switch.
                if next >= N || next - received >= WINDOW {
                    break;
                }
                let dst = (src + 1 + (next as usize % (PORTS as usize - 1))) % PORTS as usize;
                let f = frame(
                    mac(dst as u64 + 1),
                    mac(src as u64 + 1),
                    &[],
                    &next.to_be_bytes(),
                );
                let q = (next as usize / 7) % 2;
                if peer.send(q, Packet::from_frame(&f)).is_err() {
                    break;
                }
                expect_port.insert(next, dst);
                next += 1;
            }
        }
        for (port, peer) in peers.iter_mut().enumerate() {
            out.clear();
            peer.recv_all(&mut out);
            for p in &out {
                let s = seq_of(p.data());
                assert!(s < N, "garbage sequence {s}");
                assert_eq!(
                    expect_port.get(&s),
                    Some(&port),
                    "frame {s} at the wrong port"
                );
                seen[s as usize] += 1;
                assert_eq!(seen[s as usize], 1, "frame {s} duplicated");
                received += 1;
            }
        }
    }
    // Both PMDs did work.
    let stats = sw.pmd_stats();
    assert!(stats.iter().all(|s| s.busy_iterations.get() > 0));
    let total_rx: u64 = (1..=PORTS)
        .map(|i| sw.port_stats(PortId(i)).rx_packets)
        .sum();
    let total_tx: u64 = (1..=PORTS)
        .map(|i| sw.port_stats(PortId(i)).tx_packets)
        .sum();
    assert_eq!((total_rx, total_tx), (N, N));
    sw.shutdown();
}

#[test]
fn learning_on_one_pmd_reaches_the_other() {
    let ports = (1..=3).map(|i| guest(i, VlanMode::Access(1))).collect();
    let spec = SwitchSpec {
        ports,
        ..Default::default()
    };
    let mut sw = Switch::start(spec, &pmds()).expect("switch starts");
    let mut peers: Vec<_> = (1..=3)
        .map(|i| sw.attach_mem_port(PortId(i), 64).expect("attach"))
        .collect();
    // Port 2's MAC is learned by PMD 0 (queue 0) only.
    let hello = frame(mac(0xffff_ffff), mac(2), &[], b"hello");
    assert!(peers[1].send(0, Packet::from_frame(&hello)).is_ok());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    loop {
        out.clear();
        if peers[0].recv_all(&mut out) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "flood never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    peers[2].recv_all(&mut out);
    // Give the sync event a moment, then send to mac(2) through PMD 1 (queue 1).
    std::thread::sleep(Duration::from_millis(50));
    let f = frame(mac(2), mac(1), &[], b"to two");
    assert!(peers[0].send(1, Packet::from_frame(&f)).is_ok());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        out.clear();
        if peers[1].recv_all(&mut out) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "unicast never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    out.clear();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        peers[2].recv_all(&mut out),
        0,
        "PMD 1 flooded: it did not learn from PMD 0"
    );
    assert!(sw.pmd_stats()[0].mac_sync_sent.get() >= 1);
    let rows = sw.mac_table().expect("mac table");
    assert!(rows.iter().any(|r| r.mac == mac(2) && r.port == PortId(2)));
    sw.shutdown();
}
