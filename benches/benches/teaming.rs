//! Cost of teaming on the packet path:
//!
//! - `team_select/<policy>`: one member choice ([`teaming::Selector::select`])
//!   per 64-byte IPv4/UDP frame, over a burst of 32 frames from 32 flows
//!   (header parse + hash + table load, whatever the policy reads);
//! - `team_tx_burst/<policy>` vs `single_port_tx_burst`: a whole transmit
//!   burst of 32 frames through a 2-member [`TeamPort`] (selection, per-member
//!   queues, per-member counters) against the same burst handed straight to
//!   one memory port. The difference is what a team adds per frame.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataplane::port::team::{TeamPort, TeamShared};
use dataplane::port::{MemPortPeer, Port, mem_port};
use dataplane::{Packet, PacketPool};
use teaming::{GuestPort, MemberIndex, Team, TeamPolicy, TeamSpec, Timestamp};

const BURST: usize = 32;

/// A 64-byte IPv4/UDP frame of flow `i`.
fn frame(i: u8) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x52, 0x54, 0, 0, 0, i]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&50u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, i]);
    f[30..34].copy_from_slice(&[10, 0, 1, 1]);
    f[34..36].copy_from_slice(&(10_000 + u16::from(i)).to_be_bytes());
    f[36..38].copy_from_slice(&5201u16.to_be_bytes());
    f
}

fn team(policy: TeamPolicy) -> Team {
    let mut t =
        Team::new(TeamSpec::new(policy, ["eth0", "eth1"]), Timestamp::ZERO).expect("valid team");
    for i in 0..2 {
        t.set_link(MemberIndex(i), true, Timestamp::ZERO)
            .expect("member");
    }
    t
}

fn select(c: &mut Criterion) {
    let frames: Vec<Vec<u8>> = (0..BURST as u8).map(frame).collect();
    let mut g = c.benchmark_group("team_select");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(BURST as u64));
    for policy in TeamPolicy::ALL {
        let sel = *team(policy).selector();
        g.bench_function(policy.to_string(), |b| {
            b.iter(|| {
                let mut acc = 0usize;
                for (i, f) in frames.iter().enumerate() {
                    let m = sel.select(GuestPort(i as u16), std::hint::black_box(f));
                    acc += m.map_or(0, MemberIndex::get);
                }
                acc
            })
        });
    }
    g.finish();
}

struct TxRig {
    port: Box<dyn Port>,
    peers: Vec<MemPortPeer>,
    pool: PacketPool,
    burst: Vec<Packet>,
    back: Vec<Packet>,
}

impl TxRig {
    fn new(policy: Option<TeamPolicy>) -> TxRig {
        let mut peers = Vec::new();
        let port: Box<dyn Port> = match policy {
            None => {
                let (peer, mut q) = mem_port(1, 1024);
                peers.push(peer);
                Box::new(q.remove(0))
            }
            Some(policy) => {
                let t = team(policy);
                let (shared, _beacons) =
                    TeamShared::new("bond0", vec!["eth0".into(), "eth1".into()], *t.selector());
                let mut members: Vec<Option<Box<dyn Port>>> = Vec::new();
                for _ in 0..2 {
                    let (peer, mut q) = mem_port(1, 1024);
                    peers.push(peer);
                    members.push(Some(Box::new(q.remove(0))));
                }
                Box::new(TeamPort::new(shared, members))
            }
        };
        let mut pool = PacketPool::new(256, 2048);
        let burst = (0..BURST as u8)
            .map(|i| {
                let mut p = pool.alloc_or_new();
                let f = frame(i);
                if let Some(buf) = p.prepare(f.len()) {
                    buf.copy_from_slice(&f);
                }
                p.set_origin(u16::from(i));
                p
            })
            .collect();
        TxRig {
            port,
            peers,
            pool,
            burst,
            back: Vec::with_capacity(BURST),
        }
    }

    /// One transmit burst, then the frames are taken back from the peers
    /// (so the buffers circulate without allocation).
    fn round(&mut self) -> usize {
        let r = self.port.tx_burst(&mut self.burst, &mut self.pool);
        for p in &mut self.peers {
            p.recv_all(&mut self.back);
        }
        self.burst.append(&mut self.back);
        r.sent
    }
}

fn tx_burst(c: &mut Criterion) {
    let mut g = c.benchmark_group("team_tx_burst");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(BURST as u64));
    let cases: Vec<(String, Option<TeamPolicy>)> =
        std::iter::once(("single_port".to_string(), None))
            .chain(
                TeamPolicy::ALL
                    .into_iter()
                    .map(|p| (p.to_string(), Some(p))),
            )
            .collect();
    for (name, policy) in cases {
        let mut rig = TxRig::new(policy);
        for _ in 0..4 {
            assert_eq!(rig.round(), BURST, "frames lost in the rig");
        }
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(rig.round());
                }
                t.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, select, tx_burst);
criterion_main!(benches);
