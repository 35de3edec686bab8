//! AF_PACKET port tests: each runs in its own network namespace on a veth
//! pair (see `testnet`), for both receive modes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::testnet::{
    RawSock, assert_frames, collect, frame, in_netns, ip, packets, tagged, veth, wait_peer_to_port,
};
use super::*;
use crate::packet::HEADROOM;
use crate::port::netdev::{NetdevCountersSnapshot, NetdevError};

const WAIT: Duration = Duration::from_secs(3);
const LINGER: Duration = Duration::from_millis(150);

fn cfg(mode: AfPacketRxMode) -> AfPacketConfig {
    AfPacketConfig {
        rx_mode: mode,
        ..AfPacketConfig::default()
    }
}

fn bytes(frames: &[Vec<u8>]) -> usize {
    frames.iter().map(Vec::len).sum()
}

fn both_directions(mode: AfPacketRxMode) {
    in_netns(move || {
        veth("va", "vb");
        let mut port = AfPacketPort::open_with("va", &cfg(mode)).unwrap();
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(512, HEADROOM + 2048);
        let frames: Vec<Vec<u8>> = (0..300u32)
            .map(|i| frame(i, 60 + (i as usize * 37) % 1455))
            .collect();

        peer.send_all(&frames);
        let got = collect(&mut port, &mut pool, frames.len(), WAIT, LINGER);
        assert_eq!(got.len(), frames.len());
        assert_frames(&got, &frames);

        let mut pkts = packets(&mut pool, &frames);
        let out = port.tx_burst(&mut pkts, &mut pool);
        assert!(pkts.is_empty());
        assert_eq!(
            out,
            TxOutcome {
                sent: frames.len(),
                bytes: bytes(&frames),
                dropped: 0
            }
        );
        let seen = peer.collect(frames.len(), WAIT, LINGER);
        assert_eq!(seen.len(), frames.len());
        assert_frames(&seen, &frames);
        // Our own transmissions do not come back.
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());
        assert_eq!(
            port.counters().snapshot(),
            NetdevCountersSnapshot::default()
        );
    });
}

#[test]
fn ring_both_directions_exact() {
    both_directions(AfPacketRxMode::Ring);
}

#[test]
fn mmsg_both_directions_exact() {
    both_directions(AfPacketRxMode::Mmsg);
}

fn vlan_tags_survive(mode: AfPacketRxMode) {
    in_netns(move || {
        veth("va", "vb");
        let mut port = AfPacketPort::open_with("va", &cfg(mode)).unwrap();
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        let frames = vec![
            tagged(&frame(1, 100), 0x8100, 0x2064), // PCP 1, VLAN 100
            frame(2, 100),
            tagged(&frame(3, 1514), 0x8100, 0x0fff), // VLAN 4095, full size
            tagged(&frame(4, 64), 0x8100, 0x6000),   // priority tag, VLAN 0
            tagged(&frame(5, 64), 0x88a8, 0x0005),   // 802.1ad S-tag
        ];
        peer.send_all(&frames);
        let got = collect(&mut port, &mut pool, frames.len(), WAIT, LINGER);
        assert_frames(&got, &frames);

        // And out: a second port on the peer end sees the tags too.
        let mut back = AfPacketPort::open_with("vb", &cfg(mode)).unwrap();
        let mut pkts = packets(&mut pool, &frames);
        let out = port.tx_burst(&mut pkts, &mut pool);
        assert_eq!(out.sent, frames.len());
        let seen = collect(&mut back, &mut pool, frames.len(), WAIT, LINGER);
        assert_frames(&seen, &frames);
    });
}

#[test]
fn ring_vlan_tags_survive() {
    vlan_tags_survive(AfPacketRxMode::Ring);
}

#[test]
fn mmsg_vlan_tags_survive() {
    vlan_tags_survive(AfPacketRxMode::Mmsg);
}

#[test]
fn tx_only_handle_receives_nothing() {
    in_netns(|| {
        veth("va", "vb");
        let mut main = AfPacketPort::open("va").unwrap();
        let mut txq = AfPacketPort::open_tx_only("va").unwrap();
        assert!(main.receives());
        assert!(!txq.receives());
        assert_eq!(txq.wake_fd(), None);
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(256, HEADROOM + 2048);

        let frames: Vec<Vec<u8>> = (0..50u32).map(|i| frame(i, 200)).collect();
        peer.send_all(&frames);
        let got = collect(&mut main, &mut pool, frames.len(), WAIT, LINGER);
        assert_frames(&got, &frames);
        // The kernel queued nothing on the tx-only socket.
        assert!(!crate::sys::poll_readable(&[txq.fd.as_raw_fd()], 0).unwrap());
        assert!(collect(&mut txq, &mut pool, 0, LINGER, LINGER).is_empty());

        // The tx-only handle sends; the peer gets each frame once and the
        // receiving handle does not see our own frames.
        let out_frames: Vec<Vec<u8>> = (100..120u32).map(|i| frame(i, 300)).collect();
        let mut pkts = packets(&mut pool, &out_frames);
        let out = txq.tx_burst(&mut pkts, &mut pool);
        assert_eq!(out.sent, 20);
        assert_eq!(out.dropped, 0);
        assert_frames(&peer.collect(20, WAIT, LINGER), &out_frames);
        assert!(collect(&mut main, &mut pool, 0, LINGER, LINGER).is_empty());
    });
}

fn link_down_counts_drops(mode: AfPacketRxMode) {
    in_netns(move || {
        veth("va", "vb");
        let mut port = AfPacketPort::open_with("va", &cfg(mode)).unwrap();
        let mut txq = AfPacketPort::open_tx_only("va").unwrap();
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        let frames: Vec<Vec<u8>> = (0..10u32).map(|i| frame(i, 100)).collect();

        ip(&["link", "set", "vb", "down"]);
        for q in [&mut port, &mut txq] {
            let mut pkts = packets(&mut pool, &frames);
            let out = q.tx_burst(&mut pkts, &mut pool);
            assert_eq!((out.sent, out.dropped, out.bytes), (0, 10, 0));
            assert_eq!(q.counters().snapshot().tx_link_down, 10);
            assert_eq!(q.counters().snapshot().tx_dropped(), 10);
        }
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());

        // Back up: frames flow again.
        ip(&["link", "set", "vb", "up"]);
        let peer = RawSock::open("vb");
        let deadline = std::time::Instant::now() + WAIT;
        let mut sent = 0;
        while sent == 0 && std::time::Instant::now() < deadline {
            let mut pkts = packets(&mut pool, &frames[..1]);
            sent = port.tx_burst(&mut pkts, &mut pool).sent;
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sent, 1, "link did not come back");
        assert_eq!(peer.collect(1, WAIT, LINGER).len(), 1);

        // The interface disappears: still no panic, everything dropped.
        ip(&["link", "del", "va"]);
        for q in [&mut port, &mut txq] {
            let before = q.counters().snapshot().tx_dropped();
            let mut pkts = packets(&mut pool, &frames);
            let out = q.tx_burst(&mut pkts, &mut pool);
            assert_eq!((out.sent, out.dropped), (0, 10));
            assert_eq!(q.counters().snapshot().tx_dropped() - before, 10);
        }
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());
        // The socket's error is cleared before sleeping: poll() does not
        // return at once forever (a PMD in adaptive idle would spin).
        assert!(!port.set_rx_notify(true));
        let fd = port.wake_fd().unwrap();
        assert!(!crate::sys::poll_readable(&[fd], 50).unwrap());
    });
}

#[test]
fn ring_link_down_counts_drops() {
    link_down_counts_drops(AfPacketRxMode::Ring);
}

#[test]
fn mmsg_link_down_counts_drops() {
    link_down_counts_drops(AfPacketRxMode::Mmsg);
}

fn oversize_dropped(mode: AfPacketRxMode) {
    in_netns(move || {
        veth("va", "vb");
        let mut port = AfPacketPort::open_with("va", &cfg(mode)).unwrap();
        let peer = RawSock::open("vb");
        // Buffers for 256-byte frames.
        let mut pool = PacketPool::new(64, HEADROOM + 256);
        let frames = vec![frame(1, 200), frame(2, 1000), frame(3, 257), frame(4, 256)];
        peer.send_all(&frames);
        let got = collect(&mut port, &mut pool, 2, WAIT, LINGER);
        assert_frames(&got, &[frames[0].clone(), frames[3].clone()]);
        assert_eq!(port.counters().snapshot().rx_oversize, 2);

        // Larger than the MTU on transmit: refused by the kernel, counted.
        let mut big = PacketPool::new(8, HEADROOM + 4096);
        let mut pkts = packets(&mut big, &[frame(5, 1600), frame(6, 100)]);
        let out = port.tx_burst(&mut pkts, &mut big);
        assert_eq!((out.sent, out.dropped), (1, 1));
        assert_eq!(port.counters().snapshot().tx_oversize, 1);
        assert_frames(&peer.collect(1, WAIT, LINGER), &[frame(6, 100)]);
    });
}

#[test]
fn ring_oversize_dropped() {
    oversize_dropped(AfPacketRxMode::Ring);
}

#[test]
fn mmsg_oversize_dropped() {
    oversize_dropped(AfPacketRxMode::Mmsg);
}

/// A jumbo frame longer than a ring slot is truncated by the kernel: the
/// port drops and counts it instead of passing on a cut frame.
#[test]
fn ring_slot_truncation_dropped() {
    in_netns(|| {
        veth("va", "vb");
        ip(&["link", "set", "va", "mtu", "9000"]);
        ip(&["link", "set", "vb", "mtu", "9000"]);
        let mut port = AfPacketPort::open("va").unwrap();
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(64, HEADROOM + 9100);
        let frames = vec![frame(1, 4000), frame(2, 1500)];
        peer.send_all(&frames);
        let got = collect(&mut port, &mut pool, 1, WAIT, LINGER);
        assert_frames(&got, &[frames[1].clone()]);
        assert_eq!(port.counters().snapshot().rx_oversize, 1);
        assert_eq!(port.kernel_rx_dropped(), 0);
    });
}

#[test]
fn missing_interface_is_a_named_error() {
    in_netns(|| {
        let e = AfPacketPort::open("nosuch0").unwrap_err();
        assert_eq!(e.to_string(), "nosuch0: no such interface");
        let e = AfPacketPort::open_tx_only("").unwrap_err();
        assert!(matches!(e, NetdevError::BadName { .. }));
    });
}

#[test]
fn wake_fd_becomes_readable() {
    in_netns(|| {
        veth("va", "vb");
        let mut port = AfPacketPort::open("va").unwrap();
        let fd = port.wake_fd().unwrap();
        assert!(!port.set_rx_notify(true));
        assert!(!crate::sys::poll_readable(&[fd], 0).unwrap());
        RawSock::open("vb").send_all(&[frame(1, 64)]);
        assert!(crate::sys::poll_readable(&[fd], 2000).unwrap());
        assert!(port.set_rx_notify(true));
        port.set_rx_notify(false);
    });
}

/// The one's-complement sum over pseudo-header and segment, checksum
/// included, is 0xffff when the checksum is right (IPv4 UDP/TCP).
fn ipv4_l4_checksum_ok(f: &[u8]) -> bool {
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let l4 = &f[14 + ihl..14 + total];
    let mut sum: u64 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let hi = u64::from(c[0]) << 8;
            sum += hi | c.get(1).map_or(0, |&l| u64::from(l));
        }
    };
    add(&f[26..34]);
    add(&[0, f[23]]);
    add(&((total - ihl) as u16).to_be_bytes());
    add(l4);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

fn checksums_completed(mode: AfPacketRxMode) {
    in_netns(move || {
        veth("va", "vb");
        ip(&["addr", "add", "10.9.0.2/24", "dev", "vb"]);
        ip(&[
            "neigh",
            "add",
            "10.9.0.1",
            "lladdr",
            "02:00:00:00:00:aa",
            "dev",
            "vb",
        ]);
        let mut port = AfPacketPort::open_with("va", &cfg(mode)).unwrap();
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        // The peer's own stack sends: veth leaves the checksum to
        // "hardware" (CHECKSUM_PARTIAL).
        let sock = std::net::UdpSocket::bind("10.9.0.2:0").unwrap();
        for n in [1usize, 100, 1000] {
            sock.send_to(&vec![0xa5u8; n], "10.9.0.1:9").unwrap();
        }
        let deadline = std::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        let mut burst = Vec::new();
        while seen.len() < 3 && std::time::Instant::now() < deadline {
            port.rx_burst(&mut pool, &mut burst, 32);
            for p in burst.drain(..) {
                // IPv4 UDP only (ignore anything else on the link).
                if p.data().len() > 34 && p.data()[12..14] == [8, 0] && p.data()[23] == 17 {
                    seen.push(p.data().to_vec());
                }
                pool.free(p);
            }
        }
        assert_eq!(seen.len(), 3);
        for f in &seen {
            assert!(ipv4_l4_checksum_ok(f), "bad UDP checksum in {f:02x?}");
        }
    });
}

#[test]
fn ring_completes_partial_checksums() {
    checksums_completed(AfPacketRxMode::Ring);
}

#[test]
fn mmsg_completes_partial_checksums() {
    checksums_completed(AfPacketRxMode::Mmsg);
}

/// Our own interface set down and up again (an administrator, or a
/// driver reset): drops while down, then both directions work again.
#[test]
fn own_link_down_and_up_recovers() {
    in_netns(|| {
        veth("va", "vb");
        let mut port = AfPacketPort::open("va").unwrap();
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        let frames: Vec<Vec<u8>> = (0..10u32).map(|i| frame(i, 100)).collect();
        ip(&["link", "set", "va", "down"]);
        let mut pkts = packets(&mut pool, &frames);
        let out = port.tx_burst(&mut pkts, &mut pool);
        assert_eq!((out.sent, out.dropped), (0, 10));
        assert_eq!(port.counters().snapshot().tx_link_down, 10);
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());

        ip(&["link", "set", "va", "up"]);
        let deadline = std::time::Instant::now() + WAIT;
        let mut sent = 0;
        while sent == 0 && std::time::Instant::now() < deadline {
            let mut pkts = packets(&mut pool, &frames[..1]);
            sent = port.tx_burst(&mut pkts, &mut pool).sent;
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sent, 1, "link did not come back");
        assert_frames(&peer.collect(1, WAIT, LINGER), &frames[..1]);
        assert!(wait_peer_to_port(&peer, &mut port, &mut pool));
        peer.send_all(&frames);
        assert_frames(&collect(&mut port, &mut pool, 10, WAIT, LINGER), &frames);
    });
}
