//! AF_XDP port tests on veth pairs, each in its own network namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;
use crate::packet::HEADROOM;
use crate::port::af_packet::testnet::{
    RawSock, assert_frames, collect, frame, in_netns, ip, packets, tagged, veth, wait_peer_to_port,
};
use crate::port::netdev::NetdevCountersSnapshot;

const WAIT: Duration = Duration::from_secs(3);
const LINGER: Duration = Duration::from_millis(150);

fn xdp_attached(ifname: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-d", "link", "show", ifname])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("xdpgeneric")
}

#[test]
fn both_directions_exact_and_detached_on_drop() {
    in_netns(|| {
        veth("va", "vb");
        let mut port = AfXdpPort::open("va").unwrap();
        assert!(xdp_attached("va"));
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(512, HEADROOM + 2048);
        let frames: Vec<Vec<u8>> = (0..300u32)
            .map(|i| frame(i, 60 + (i as usize * 37) % 1455))
            .collect();

        peer.send_all(&frames);
        let got = collect(&mut port, &mut pool, frames.len(), WAIT, LINGER);
        assert_frames(&got, &frames);

        let mut pkts = packets(&mut pool, &frames);
        let out = port.tx_burst(&mut pkts, &mut pool);
        assert_eq!(
            out,
            TxOutcome {
                sent: frames.len(),
                bytes: frames.iter().map(Vec::len).sum(),
                dropped: 0
            }
        );
        assert_frames(&peer.collect(frames.len(), WAIT, LINGER), &frames);
        // Our own transmissions do not come back.
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());
        assert_eq!(
            port.counters().snapshot(),
            NetdevCountersSnapshot::default()
        );
        assert_eq!(port.kernel_rx_dropped(), 0);

        drop(port);
        assert!(!xdp_attached("va"), "XDP program left attached");
        // With the program gone, frames reach the kernel stack again, and
        // the interface can be opened anew.
        let mut again = AfXdpPort::open("va").unwrap();
        peer.send_all(&frames[..10]);
        assert_frames(
            &collect(&mut again, &mut pool, 10, WAIT, LINGER),
            &frames[..10],
        );
    });
}

#[test]
fn vlan_tag_arrives_intact() {
    in_netns(|| {
        veth("va", "vb");
        let mut port = AfXdpPort::open("va").unwrap();
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        let frames = vec![
            tagged(&frame(1, 100), 0x8100, 0x2064),
            frame(2, 100),
            tagged(&frame(3, 1514), 0x8100, 0x0fff),
            tagged(&frame(4, 64), 0x88a8, 0x0005),
        ];
        peer.send_all(&frames);
        assert_frames(
            &collect(&mut port, &mut pool, frames.len(), WAIT, LINGER),
            &frames,
        );
        // And out: tags leave as they are.
        let mut pkts = packets(&mut pool, &frames);
        assert_eq!(port.tx_burst(&mut pkts, &mut pool).sent, frames.len());
        assert_frames(&peer.collect(frames.len(), WAIT, LINGER), &frames);
    });
}

#[test]
fn tx_only_handle_receives_nothing() {
    in_netns(|| {
        veth("va", "vb");
        let mut port = AfXdpPort::open("va").unwrap();
        let mut txq = AfXdpPort::open_tx_only("va").unwrap();
        assert!(!txq.receives());
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(256, HEADROOM + 2048);
        let frames: Vec<Vec<u8>> = (0..50u32).map(|i| frame(i, 200)).collect();
        peer.send_all(&frames);
        assert_frames(&collect(&mut port, &mut pool, 50, WAIT, LINGER), &frames);
        assert!(collect(&mut txq, &mut pool, 0, LINGER, LINGER).is_empty());

        let out_frames: Vec<Vec<u8>> = (100..120u32).map(|i| frame(i, 300)).collect();
        let mut pkts = packets(&mut pool, &out_frames);
        assert_eq!(txq.tx_burst(&mut pkts, &mut pool).sent, 20);
        assert_frames(&peer.collect(20, WAIT, LINGER), &out_frames);
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());
    });
}

#[test]
fn link_down_and_interface_gone_count_drops() {
    in_netns(|| {
        veth("va", "vb");
        let mut port = AfXdpPort::open("va").unwrap();
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        let frames: Vec<Vec<u8>> = (0..10u32).map(|i| frame(i, 100)).collect();

        ip(&["link", "set", "vb", "down"]);
        let mut pkts = packets(&mut pool, &frames);
        let out = port.tx_burst(&mut pkts, &mut pool);
        assert_eq!((out.sent, out.dropped, out.bytes), (0, 10, 0));
        assert_eq!(port.counters().snapshot().tx_dropped(), 10);
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());

        // Back up: frames flow again, none of the old ones linger.
        ip(&["link", "set", "vb", "up"]);
        let peer = RawSock::open("vb");
        let deadline = std::time::Instant::now() + WAIT;
        let mut sent = 0;
        while sent == 0 && std::time::Instant::now() < deadline {
            let mut pkts = packets(&mut pool, &[frame(77, 100)]);
            sent = port.tx_burst(&mut pkts, &mut pool).sent;
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sent, 1, "link did not come back");
        assert_frames(&peer.collect(1, WAIT, LINGER), &[frame(77, 100)]);

        // The interface disappears: no panic, everything dropped.
        ip(&["link", "del", "va"]);
        for _ in 0..2 {
            let before = port.counters().snapshot().tx_dropped();
            let mut pkts = packets(&mut pool, &frames);
            let out = port.tx_burst(&mut pkts, &mut pool);
            assert_eq!((out.sent, out.dropped), (0, 10));
            assert_eq!(port.counters().snapshot().tx_dropped() - before, 10);
        }
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());
        // The socket's ENETDOWN is read before sleeping and the port stops
        // offering its fd, so an idle PMD does not spin on POLLERR.
        assert!(!port.set_rx_notify(true));
        assert_eq!(port.wake_fd(), None);
        drop(port);
    });
}

/// A frame the driver drops with the carrier up (here: larger than the
/// veth peer's MTU, as a full peer backlog would) is one frame lost and
/// counted as `tx_queue_full`, not `tx_link_down`; the frames behind it
/// wait on the ring (the port does not let its PMD sleep on them) and go
/// with the next poll, in order.
#[test]
fn a_frame_the_driver_refuses_with_carrier_up_loses_only_itself() {
    in_netns(|| {
        veth("va", "vb");
        ip(&["link", "set", "vb", "mtu", "1000"]);
        let mut port = AfXdpPort::open("va").unwrap();
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        let frames = vec![frame(1, 100), frame(2, 1400), frame(3, 100), frame(4, 100)];
        let mut pkts = packets(&mut pool, &frames);
        let out = port.tx_burst(&mut pkts, &mut pool);
        assert_eq!((out.sent, out.dropped), (3, 1));
        let c = port.counters().snapshot();
        assert_eq!((c.tx_queue_full, c.tx_link_down), (1, 0), "{c:?}");
        if port.tx.pending() > 0 {
            assert!(port.set_rx_notify(true), "frames wait: the PMD must poll");
        }
        collect(&mut port, &mut pool, 0, LINGER, LINGER);
        let want = [frames[0].clone(), frames[2].clone(), frames[3].clone()];
        assert_frames(&peer.collect(3, WAIT, LINGER), &want);
        assert_eq!(port.counters().snapshot().tx_dropped(), 1);
    });
}

#[test]
fn oversize_frame_dropped_and_counted() {
    in_netns(|| {
        veth("va", "vb");
        let mut port = AfXdpPort::open("va").unwrap();
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(64, HEADROOM + 256);
        let frames = vec![frame(1, 200), frame(2, 1000), frame(3, 257), frame(4, 256)];
        peer.send_all(&frames);
        let got = collect(&mut port, &mut pool, 2, WAIT, LINGER);
        assert_frames(&got, &[frames[0].clone(), frames[3].clone()]);
        assert_eq!(port.counters().snapshot().rx_oversize, 2);
        assert_eq!(port.kernel_rx_dropped(), 0);

        // Larger than a UMEM frame: the kernel drops it and says so.
        ip(&["link", "set", "va", "mtu", "9000"]);
        ip(&["link", "set", "vb", "mtu", "9000"]);
        assert_eq!(port.max_frame(), 1792);
        let mut big = PacketPool::new(64, HEADROOM + 4096);
        peer.send_all(&[frame(5, 1793), frame(6, 1792)]);
        let got = collect(&mut port, &mut big, 1, WAIT, LINGER);
        assert_frames(&got, &[frame(6, 1792)]);
        assert_eq!(port.kernel_rx_dropped(), 1);
    });
}

#[test]
fn errors_name_the_interface_and_step() {
    in_netns(|| {
        let e = AfXdpPort::open("nosuch0").unwrap_err();
        assert_eq!(e.to_string(), "nosuch0: no such interface");

        veth("va", "vb");
        let _first = AfXdpPort::open("va").unwrap();
        // A second program on the same interface is refused, not replaced.
        let e = AfXdpPort::open("va").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("va: "),
            "error does not name the interface: {text}"
        );
        assert!(xdp_attached("va"), "first port's program was removed");
    });
}

#[test]
fn wake_fd_becomes_readable() {
    in_netns(|| {
        veth("va", "vb");
        let mut port = AfXdpPort::open("va").unwrap();
        let fd = port.wake_fd().unwrap();
        assert!(!port.set_rx_notify(true));
        assert!(!crate::sys::poll_readable(&[fd], 0).unwrap());
        RawSock::open("vb").send_all(&[frame(1, 64)]);
        assert!(crate::sys::poll_readable(&[fd], 2000).unwrap());
        assert!(port.set_rx_notify(true));
    });
}

#[test]
fn attach_failure_names_interface_and_step() {
    in_netns(|| {
        ip(&[
            "link",
            "add",
            "va",
            "numrxqueues",
            "2",
            "numtxqueues",
            "2",
            "type",
            "veth",
            "peer",
            "name",
            "vb",
            "numrxqueues",
            "2",
            "numtxqueues",
            "2",
        ]);
        ip(&["link", "set", "va", "up"]);
        ip(&["link", "set", "vb", "up"]);
        let _first = AfXdpPort::open("va").unwrap();
        // Queue 1 needs a program of its own, but one is attached already:
        // ours is refused (never replaces it) and the error says where,
        // which step and why.
        let e = AfXdpPort::open_with(
            "va",
            &AfXdpConfig {
                queue: 1,
                ..AfXdpConfig::default()
            },
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("va: XDP attach in skb mode failed"),
            "{text}"
        );
        assert!(matches!(
            e,
            NetdevError::Refused { .. } | NetdevError::Os { .. }
        ));
        assert!(xdp_attached("va"), "first port's program was removed");
    });
}

/// In skb mode XDP sees a veth peer's frames with the checksum left for
/// the NIC (the port cannot tell): a peer must send finished frames
/// (`tx off`, which also turns TSO off). This is the documented setup.
#[test]
fn veth_peer_udp_checksums_arrive_complete_with_tx_offload_off() {
    in_netns(|| {
        veth("va", "vb");
        let out = std::process::Command::new("ethtool")
            .args(["-K", "vb", "tx", "off"])
            .output()
            .expect("run ethtool (scripts/install-deps.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        let mut port = AfXdpPort::open("va").unwrap();
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
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
                if p.data().len() > 34 && p.data()[12..14] == [8, 0] && p.data()[23] == 17 {
                    seen.push(p.data().to_vec());
                }
                pool.free(p);
            }
        }
        assert_eq!(seen.len(), 3);
        for f in &seen {
            let mut fixed = f.clone();
            assert!(wire::complete_l4_checksum(&mut fixed));
            assert!(fixed == *f, "partial UDP checksum reached the port");
        }
    });
}

/// Our own interface set down and up again: drops while down, then both
/// directions work again (the socket stays bound, the program attached).
#[test]
fn own_link_down_and_up_recovers() {
    in_netns(|| {
        veth("va", "vb");
        let mut port = AfXdpPort::open("va").unwrap();
        let peer = RawSock::open("vb");
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        let frames: Vec<Vec<u8>> = (0..10u32).map(|i| frame(i, 100)).collect();
        ip(&["link", "set", "va", "down"]);
        // Many bursts while down: all dropped as "link down", and the
        // transmit ring does not fill with stale frames.
        for _ in 0..500 {
            let mut pkts = packets(&mut pool, &frames);
            let out = port.tx_burst(&mut pkts, &mut pool);
            assert_eq!((out.sent, out.dropped), (0, 10));
        }
        let c = port.counters().snapshot();
        assert_eq!((c.tx_link_down, c.tx_queue_full), (5000, 0));
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());

        ip(&["link", "set", "va", "up"]);
        let deadline = std::time::Instant::now() + WAIT;
        let mut got = Vec::new();
        while got.is_empty() && std::time::Instant::now() < deadline {
            let mut pkts = packets(&mut pool, &[frame(50, 100)]);
            port.tx_burst(&mut pkts, &mut pool);
            got = peer.collect(1, Duration::from_millis(20), Duration::ZERO);
        }
        assert!(!got.is_empty(), "link did not come back");
        assert!(wait_peer_to_port(&peer, &mut port, &mut pool));
        peer.send_all(&frames);
        assert_frames(&collect(&mut port, &mut pool, 10, WAIT, LINGER), &frames);
    });
}
