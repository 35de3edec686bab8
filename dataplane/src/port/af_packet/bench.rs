//! Packet rates of the netdev ports on a veth pair (TAP: on the host side
//! of the TAP device). An ignored test; run it in release:
//!
//! ```text
//! cargo test -p dataplane --release --lib uplink_port_rates -- --ignored --nocapture
//! ```
//!
//! Receive: a generator thread pinned to CPU 0 sends bursts of 32 frames
//! with `sendmmsg` (an AF_PACKET tx-only port, qdisc bypass) into the
//! peer end; the port under test, polled by a thread pinned to CPU 1,
//! receives for [`SECS`] seconds. With veth the sender's CPU also runs the
//! kernel's receive path (netif_rx, packet taps or generic XDP), so the
//! offered rate bounds the received rate.
//!
//! Transmit: one thread pinned to CPU 1 sends bursts of 32 through the port
//! for [`SECS`] seconds; the peer's kernel stack drops the frames (unknown
//! Ethernet type), on the same CPU.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::testnet::{frame, in_netns, veth};
use super::{AfPacketConfig, AfPacketPort, AfPacketRxMode};
use crate::packet::{HEADROOM, Packet, PacketPool};
use crate::port::Port;
use crate::port::af_xdp::AfXdpPort;
use crate::port::tap::TapPort;

const SECS: f64 = 2.0;
const BURST: usize = 32;

fn fill(pool: &mut PacketPool, batch: &mut Vec<Packet>, f: &[u8]) {
    while batch.len() < BURST {
        let mut p = pool.alloc_or_new();
        p.set_frame(f);
        batch.push(p);
    }
}

/// (offered Mpps, received Mpps)
fn rx_rate(port: &mut dyn Port, mut generator: AfPacketPort, len: usize) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_g = Arc::clone(&stop);
    let f = frame(1, len);
    let g = std::thread::spawn(move || {
        crate::sys::pin_current_thread(0);
        let mut pool = PacketPool::new(256, HEADROOM + 2048);
        let mut batch = Vec::with_capacity(BURST);
        let mut sent = 0u64;
        let t0 = Instant::now();
        while !stop_g.load(Ordering::Relaxed) {
            fill(&mut pool, &mut batch, &f);
            sent += generator.tx_burst(&mut batch, &mut pool).sent as u64;
        }
        sent as f64 / t0.elapsed().as_secs_f64() / 1e6
    });
    crate::sys::pin_current_thread(1);
    let mut pool = PacketPool::new(1024, HEADROOM + 2048);
    let mut out = Vec::with_capacity(BURST);
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        port.rx_burst(&mut pool, &mut out, BURST);
        pool.free_all(&mut out);
    }
    let mut got = 0u64;
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < SECS {
        got += port.rx_burst(&mut pool, &mut out, BURST) as u64;
        pool.free_all(&mut out);
    }
    let rx = got as f64 / t0.elapsed().as_secs_f64() / 1e6;
    stop.store(true, Ordering::Relaxed);
    let offered = g.join().unwrap();
    (offered, rx)
}

/// Receive cost without the generator: `K` frames are queued in the
/// kernel first (ring, socket queue, XDP ring or TAP queue), then the port
/// drains them while the clock runs. Mpps of the draining alone.
fn drain_rate(port: &mut dyn Port, generator: &mut AfPacketPort, len: usize) -> f64 {
    const K: usize = 900;
    crate::sys::pin_current_thread(1);
    let f = frame(3, len);
    let mut gpool = PacketPool::new(256, HEADROOM + 2048);
    let mut pool = PacketPool::new(1024, HEADROOM + 2048);
    let mut out = Vec::with_capacity(BURST);
    let mut batch = Vec::with_capacity(BURST);
    let (mut frames, mut secs) = (0u64, 0f64);
    for _ in 0..100 {
        // Empty the queue first (the streaming run may have left frames).
        let quiet = Instant::now();
        while quiet.elapsed() < Duration::from_millis(20) {
            port.rx_burst(&mut pool, &mut out, BURST);
            pool.free_all(&mut out);
        }
        let mut queued = 0;
        let deadline = Instant::now() + Duration::from_millis(200);
        while queued < K && Instant::now() < deadline {
            fill(&mut gpool, &mut batch, &f);
            batch.truncate(BURST.min(K - queued));
            queued += generator.tx_burst(&mut batch, &mut gpool).sent;
        }
        std::thread::sleep(Duration::from_millis(2));
        let t0 = Instant::now();
        let mut got = 0;
        while got < queued && t0.elapsed() < Duration::from_millis(500) {
            got += port.rx_burst(&mut pool, &mut out, BURST);
            pool.free_all(&mut out);
        }
        secs += t0.elapsed().as_secs_f64();
        frames += got as u64;
    }
    frames as f64 / secs / 1e6
}

/// (sent Mpps, dropped share)
fn tx_rate(port: &mut dyn Port, len: usize) -> (f64, f64) {
    crate::sys::pin_current_thread(1);
    let f = frame(2, len);
    let mut pool = PacketPool::new(256, HEADROOM + 2048);
    let mut batch = Vec::with_capacity(BURST);
    let (mut sent, mut dropped) = (0u64, 0u64);
    let t0 = Instant::now();
    while t0.elapsed().as_secs_f64() < SECS {
        fill(&mut pool, &mut batch, &f);
        let o = port.tx_burst(&mut batch, &mut pool);
        sent += o.sent as u64;
        dropped += o.dropped as u64;
    }
    let secs = t0.elapsed().as_secs_f64();
    (
        sent as f64 / secs / 1e6,
        dropped as f64 / (sent + dropped).max(1) as f64,
    )
}

fn row(name: &str, len: usize, rx: (f64, f64), drops: Option<u64>, drain: f64, tx: (f64, f64)) {
    let drops = drops.map_or("n/a".to_owned(), |d| d.to_string());
    println!(
        "| {name} | {len} | {:.3} | {:.3} | {drops} | {:.2} | {:.3} | {:.1}% |",
        rx.1,
        rx.0,
        drain,
        tx.0,
        tx.1 * 100.0
    );
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn uplink_port_rates() {
    println!(
        "| port | frame bytes | rx Mpps (streaming) | offered Mpps | kernel rx drops | rx drain Mpps | tx Mpps | tx dropped |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for len in [60usize, 1514] {
        for mode in [AfPacketRxMode::Ring, AfPacketRxMode::Mmsg] {
            in_netns(move || {
                veth("va", "vb");
                let cfg = AfPacketConfig {
                    rx_mode: mode,
                    ..AfPacketConfig::default()
                };
                let mut port = AfPacketPort::open_with("va", &cfg).unwrap();
                let rx = rx_rate(&mut port, AfPacketPort::open_tx_only("vb").unwrap(), len);
                let drops = port.kernel_rx_dropped();
                let mut g = AfPacketPort::open_tx_only("vb").unwrap();
                let drain = drain_rate(&mut port, &mut g, len);
                let tx = tx_rate(&mut port, len);
                row(
                    &format!("AF_PACKET {mode:?}"),
                    len,
                    rx,
                    Some(drops),
                    drain,
                    tx,
                );
            });
        }
        in_netns(move || {
            veth("va", "vb");
            let mut port = AfXdpPort::open("va").unwrap();
            let rx = rx_rate(&mut port, AfPacketPort::open_tx_only("vb").unwrap(), len);
            let drops = port.kernel_rx_dropped();
            let mut g = AfPacketPort::open_tx_only("vb").unwrap();
            let drain = drain_rate(&mut port, &mut g, len);
            let tx = tx_rate(&mut port, len);
            row("AF_XDP skb/copy", len, rx, Some(drops), drain, tx);
            println!(
                "<!-- AF_XDP (rx_dropped, rx_ring_full, fill_empty): {:?} -->",
                port.xdp_statistics()
            );
        });
        in_netns(move || {
            let mut port = TapPort::create("vstap0", 1500).unwrap();
            let rx = rx_rate(
                &mut port,
                AfPacketPort::open_tx_only("vstap0").unwrap(),
                len,
            );
            let mut g = AfPacketPort::open_tx_only("vstap0").unwrap();
            let drain = drain_rate(&mut port, &mut g, len);
            let tx = tx_rate(&mut port, len);
            row("TAP", len, rx, None, drain, tx);
        });
    }
}
