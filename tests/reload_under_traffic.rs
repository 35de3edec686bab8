//! Live reconfiguration under traffic: while two PMD threads forward a
//! steady stream between two ports, the control plane keeps publishing new
//! specs that change *another* port (its VLAN, its security policy) and add
//! and remove a fourth. The two untouched ports lose nothing, see nothing
//! twice, count no drop, and keep their learned MACs (a flushed entry would
//! turn their unicast into floods that reach the other ports).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dataplane::testing::{frame, guest, mac};
use dataplane::{
    IdlePolicy, MacAddr, Packet, PmdConfig, PortId, SecurityPolicy, Switch, SwitchSpec, VlanMode,
};

/// Frames in flight at most: well below any ring, so a full output ring
/// (a legitimate, counted drop) cannot happen.
const WINDOW: u64 = 256;
const N: u64 = 100_000;
/// Marks frames sent by the churned port 3.
const FROM_THREE: u64 = 1 << 62;

/// Every this many pair frames is a broadcast.
const BROADCAST_EVERY: u64 = 32;
/// Port 3 sends a broadcast every this many pair frames.
const THREE_EVERY: u64 = 256;

fn pmds() -> Vec<PmdConfig> {
    (0..2)
        .map(|_| PmdConfig {
            idle: IdlePolicy::adaptive(),
            // Flooded copies come from the PMD's pool and leave with the
            // memory port's peer, which does not give them back: room for
            // every copy this test makes.
            pool_size: 16384,
            ..PmdConfig::default()
        })
        .collect()
}

/// Spec number `i`: ports 1 and 2 never change; port 3 alternates VLAN 1
/// and 20 and its promiscuous setting; port 4 comes and goes.
fn spec(i: u64) -> SwitchSpec {
    let mut ports = vec![guest(1, VlanMode::Access(1)), guest(2, VlanMode::Access(1))];
    let mut three = guest(
        3,
        VlanMode::Access(if i.is_multiple_of(2) { 1 } else { 20 }),
    );
    three.security = SecurityPolicy {
        promiscuous: i % 3 == 1,
        ..SecurityPolicy::default()
    };
    ports.push(three);
    if i % 4 < 2 {
        ports.push(guest(4, VlanMode::Access(1)));
    }
    SwitchSpec {
        ports,
        ..Default::default()
    }
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn seq_of(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[14..22]);
    u64::from_be_bytes(b)
}

#[test]
fn updates_to_other_ports_drop_nothing_on_an_unchanged_pair() {
    let mut sw = Switch::start(spec(0), &pmds()).expect("switch starts");
    let mut peers: Vec<_> = (1..=4)
        .map(|i| sw.attach_mem_port(PortId(i), 1024).expect("attach"))
        .collect();
    let mut out = Vec::new();

    // Warm up: ports 1 and 2 announce their MACs through both queues, so
    // both PMDs learn them (locally and by sync) before the churn starts.
    // `attach_mem_port` does not wait for the PMDs to take the port: a
    // PMD that polls port 1 before it has taken port 2 floods port 1's
    // broadcast to nobody (CI saw that once). So the announcements go out
    // in rounds, each marked in its payload, until one round reaches each
    // port on both queues.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut round = 0u8;
    'warm: loop {
        round += 1;
        for (i, peer) in peers.iter_mut().take(2).enumerate() {
            for q in 0..2 {
                let f = frame(MacAddr::BROADCAST, mac(i as u64 + 1), &[], &[round; 8]);
                assert!(peer.send(q, Packet::from_frame(&f)).is_ok());
            }
        }
        let mut got = [0usize; 2];
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until {
            assert!(Instant::now() < deadline, "warm-up floods never arrived");
            for (i, peer) in peers.iter_mut().take(2).enumerate() {
                out.clear();
                peer.recv_all(&mut out);
                got[i] += out.iter().filter(|p| p.data()[14] == round).count();
            }
            if got == [2, 2] {
                break 'warm;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    for p in peers.iter_mut().skip(2) {
        out.clear();
        p.recv_all(&mut out);
    }
    let base: Vec<_> = (1..=2).map(|i| sw.port_stats(PortId(i))).collect();

    let done = AtomicBool::new(false);
    let updates = AtomicU64::new(0);
    let sw_ref = &sw;
    let (sent, delivered) = std::thread::scope(|s| {
        // The control plane: a new spec every millisecond.
        s.spawn(|| {
            let mut i = 1;
            while !done.load(Ordering::Relaxed) {
                sw_ref.update(spec(i)).expect("valid spec");
                updates.fetch_add(1, Ordering::Relaxed);
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        });

        // Stops the updater even when an assertion below fails (the scope
        // would otherwise wait for it forever).
        let _stop = StopOnDrop(&done);
        let mut expect_port: HashMap<u64, usize> = HashMap::with_capacity(N as usize);
        let mut seen = vec![0u8; N as usize];
        let (mut next, mut received) = (0u64, 0u64);
        let mut leaked_unicast = 0u64;
        let mut three_sent = 0u64;
        // Frames sent by ports 1 and 2, and frames delivered to them (the
        // pair's and port 3's), to check the counters against.
        let mut sent = [0u64; 2];
        let mut delivered = [0u64; 2];
        let deadline = Instant::now() + Duration::from_secs(60);
        while received < N {
            assert!(
                Instant::now() < deadline,
                "timed out: {received}/{N} received, {next} offered, {} updates; stats {:?}",
                updates.load(Ordering::Relaxed),
                (1..=2)
                    .map(|i| sw_ref.port_stats(PortId(i)))
                    .collect::<Vec<_>>()
            );
            // Ports 1 and 2 talk to each other: mostly known unicast,
            // some broadcasts.
            for src in 0..2usize {
                for _ in 0..32 {
                    if next >= N || next - received >= WINDOW {
                        break;
                    }
                    let dst = 1 - src;
                    let to = if next.is_multiple_of(BROADCAST_EVERY) {
                        MacAddr::BROADCAST
                    } else {
                        mac(dst as u64 + 1)
                    };
                    let f = frame(to, mac(src as u64 + 1), &[], &next.to_be_bytes());
                    let q = (next as usize / 5) % 2;
                    if peers[src].send(q, Packet::from_frame(&f)).is_err() {
                        break;
                    }
                    expect_port.insert(next, dst);
                    sent[src] += 1;
                    next += 1;
                }
            }
            // Port 3 chatters a little (broadcasts from its own MAC).
            if next / THREE_EVERY > three_sent {
                three_sent += 1;
                let f = frame(
                    MacAddr::BROADCAST,
                    mac(3),
                    &[],
                    &(FROM_THREE | next).to_be_bytes(),
                );
                let _ = peers[2].send(three_sent as usize % 2, Packet::from_frame(&f));
            }
            for (port, peer) in peers.iter_mut().enumerate() {
                out.clear();
                peer.recv_all(&mut out);
                if port < 2 {
                    delivered[port] += out.len() as u64;
                }
                for p in &out {
                    let s = seq_of(p.data());
                    if s & FROM_THREE != 0 {
                        continue;
                    }
                    assert!(s < N, "garbage sequence {s}");
                    let unicast = p.data()[0] & 1 == 0;
                    if port >= 2 {
                        // Ports 3 and 4 may see the pair's broadcasts. Port 4
                        // (never promiscuous) never sees its unicast: that
                        // would mean a MAC was forgotten and the frame
                        // flooded. (Port 3 does when it is promiscuous.)
                        if unicast && port == 3 {
                            leaked_unicast += 1;
                        }
                        continue;
                    }
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
        done.store(true, Ordering::Relaxed);
        assert_eq!(
            leaked_unicast, 0,
            "unicast between the unchanged ports was flooded: their MACs were flushed"
        );
        (sent, delivered)
    });

    let n = updates.load(Ordering::Relaxed);
    assert!(n >= 20, "only {n} updates happened during the traffic");
    for (k, b) in base.iter().enumerate() {
        let i = k as u16 + 1;
        let s = sw.port_stats(PortId(i));
        assert_eq!(s.total_drops(), 0, "port {i} dropped on ingress: {s:?}");
        assert_eq!(s.tx_dropped, 0, "port {i} dropped on egress: {s:?}");
        assert_eq!(s.rx_packets - b.rx_packets, sent[k], "port {i} rx");
        assert_eq!(s.tx_packets - b.tx_packets, delivered[k], "port {i} tx");
    }
    assert_eq!(sent[0] + sent[1], N);
    let rows = sw.mac_table().expect("mac table");
    for i in 1..=2 {
        assert!(
            rows.iter()
                .any(|r| r.mac == mac(i) && r.port == PortId(i as u16)),
            "port {i}'s MAC is still learned: {rows:?}"
        );
    }
    sw.shutdown();
}
