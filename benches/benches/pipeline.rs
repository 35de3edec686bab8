//! Pipeline cost per 64-byte frame through memory ports on one core:
//! 2, 8 and 64 ports; 1k and 1M learned MACs; untagged vs VLAN push/pop.
//! Frames circulate between port pairs (each round: inject, one PMD poll,
//! collect, macswap), so the ring hand-off and the macswap are included.

use std::time::{Duration, Instant};

use benches::{Rig, Tagging};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline_64B");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(20);
    for &macs in &[1_000u64, 1_000_000] {
        for &ports in &[2u16, 8, 64] {
            for tagging in [Tagging::Untagged, Tagging::PushPop] {
                let mut rig = Rig::new(ports, macs, tagging, 32);
                // Sanity: every in-flight frame comes back each round.
                for _ in 0..4 {
                    assert_eq!(rig.round(), rig.frames_per_round, "frames lost in rig");
                }
                let name = format!(
                    "{}ports/{}macs/{}",
                    ports,
                    if macs >= 1_000_000 {
                        "1M".to_string()
                    } else {
                        "1k".to_string()
                    },
                    match tagging {
                        Tagging::Untagged => "untagged",
                        Tagging::PushPop => "vlan_push_pop",
                    }
                );
                g.throughput(Throughput::Elements(rig.frames_per_round as u64));
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
        }
    }
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
