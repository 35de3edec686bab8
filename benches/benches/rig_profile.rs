//! Runs one rig configuration for a fixed number of rounds and prints
//! ns/frame: a target for `perf record` and quick A/B checks.
//! `cargo bench -p benches --bench rig_profile -- PORTS MACS untagged|vlan ROUNDS`

use std::time::Instant;

use benches::{Rig, Tagging};

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let ports: u16 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let macs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let tagging = match args.get(3).map(String::as_str) {
        Some("vlan") => Tagging::PushPop,
        _ => Tagging::Untagged,
    };
    let rounds: u64 = args
        .get(4)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let mut rig = Rig::new(ports, macs, tagging, 32);
    let t = Instant::now();
    let mut frames = 0u64;
    for _ in 0..rounds {
        frames += rig.round() as u64;
    }
    let el = t.elapsed();
    println!(
        "{ports} ports, {macs} MACs, {tagging:?}: {frames} frames in {el:?}: {:.1} ns/frame, {:.2} Mpps",
        el.as_nanos() as f64 / frames as f64,
        frames as f64 / el.as_secs_f64() / 1e6
    );
}
