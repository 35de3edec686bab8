//! TAP port tests, each in its own network namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;
use crate::packet::HEADROOM;
use crate::port::af_packet::testnet::{
    RawSock, assert_frames, collect, frame, in_netns, ip, packets, tagged,
};
use crate::port::netdev::NetdevCountersSnapshot;

const WAIT: Duration = Duration::from_secs(3);
const LINGER: Duration = Duration::from_millis(150);

fn link_exists(name: &str) -> bool {
    std::process::Command::new("ip")
        .args(["link", "show", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn host_and_switch_exchange_frames_exactly() {
    in_netns(|| {
        let mut port = TapPort::create("vstap0", 1500).unwrap();
        assert_eq!(port.ifname(), "vstap0");
        let host = RawSock::open("vstap0");
        let mut pool = PacketPool::new(512, HEADROOM + 2048);
        let mut frames: Vec<Vec<u8>> = (0..200u32)
            .map(|i| frame(i, 60 + (i as usize * 37) % 1455))
            .collect();
        frames.push(tagged(&frame(999, 100), 0x8100, 0x0064));

        // Host -> switch.
        host.send_all(&frames);
        let got = collect(&mut port, &mut pool, frames.len(), WAIT, LINGER);
        assert_eq!(got.len(), frames.len());
        assert_frames(&got, &frames);

        // Switch -> host.
        let mut pkts = packets(&mut pool, &frames);
        let out = port.tx_burst(&mut pkts, &mut pool);
        assert_eq!(out.sent, frames.len());
        assert_eq!(out.dropped, 0);
        assert_eq!(out.bytes, frames.iter().map(Vec::len).sum::<usize>());
        let seen = host.collect(frames.len(), WAIT, LINGER);
        assert_eq!(seen.len(), frames.len());
        assert_frames(&seen, &frames);
        assert_eq!(
            port.counters().snapshot(),
            NetdevCountersSnapshot::default()
        );
    });
}

#[test]
fn tx_handle_shares_the_device_and_never_reads() {
    in_netns(|| {
        let mut port = TapPort::create("vstap0", 1500).unwrap();
        let mut txh = port.tx_handle().unwrap();
        assert!(!txh.receives());
        assert_eq!(txh.wake_fd(), None);
        let host = RawSock::open("vstap0");
        let mut pool = PacketPool::new(256, HEADROOM + 2048);

        let frames: Vec<Vec<u8>> = (0..50u32).map(|i| frame(i, 300)).collect();
        host.send_all(&frames);
        assert!(collect(&mut txh, &mut pool, 0, LINGER, LINGER).is_empty());
        assert_frames(&collect(&mut port, &mut pool, 50, WAIT, LINGER), &frames);

        let out_frames: Vec<Vec<u8>> = (100..120u32).map(|i| frame(i, 200)).collect();
        let mut pkts = packets(&mut pool, &out_frames);
        assert_eq!(txh.tx_burst(&mut pkts, &mut pool).sent, 20);
        assert_frames(&host.collect(20, WAIT, LINGER), &out_frames);

        // The device lives while any handle does, and goes with the last.
        drop(port);
        assert!(link_exists("vstap0"));
        drop(txh);
        assert!(!link_exists("vstap0"));
    });
}

#[test]
fn link_down_counts_drops_and_receives_nothing() {
    in_netns(|| {
        let mut port = TapPort::create("vstap0", 1500).unwrap();
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        ip(&["link", "set", "vstap0", "down"]);
        let frames: Vec<Vec<u8>> = (0..10u32).map(|i| frame(i, 100)).collect();
        let mut pkts = packets(&mut pool, &frames);
        let out = port.tx_burst(&mut pkts, &mut pool);
        // The kernel refuses writes to a TAP that is down (EIO).
        assert_eq!((out.sent, out.dropped, out.bytes), (0, 10, 0));
        assert_eq!(port.counters().snapshot().tx_link_down, 10);
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());

        // Up again: frames flow.
        ip(&["link", "set", "vstap0", "up"]);
        let host = RawSock::open("vstap0");
        let mut pkts = packets(&mut pool, &frames);
        assert_eq!(port.tx_burst(&mut pkts, &mut pool).sent, 10);
        assert_frames(&host.collect(10, WAIT, LINGER), &frames);
    });
}

#[test]
fn oversize_frame_dropped_and_counted() {
    in_netns(|| {
        let mut port = TapPort::create("vstap0", 1500).unwrap();
        let host = RawSock::open("vstap0");
        let mut pool = PacketPool::new(64, HEADROOM + 256);
        let frames = vec![frame(1, 200), frame(2, 1000), frame(3, 257), frame(4, 256)];
        host.send_all(&frames);
        let got = collect(&mut port, &mut pool, 2, WAIT, LINGER);
        assert_frames(&got, &[frames[0].clone(), frames[3].clone()]);
        assert_eq!(port.counters().snapshot().rx_oversize, 2);
    });
}

/// The TAP device gets the MTU it is created with (an internal port
/// follows its switch's `mtu:`), and `set_mtu` changes it later.
#[test]
fn created_with_the_mtu_given() {
    in_netns(|| {
        // `ip` runs in this thread's namespace (sysfs shows the host's).
        let mtu = || {
            let out = std::process::Command::new("ip")
                .args(["-o", "link", "show", "vsmtu0"])
                .output()
                .expect("ip runs");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.split_whitespace()
                .skip_while(|w| *w != "mtu")
                .nth(1)
                .unwrap_or_default()
                .to_string()
        };
        let _port = TapPort::create("vsmtu0", 9000).unwrap();
        assert_eq!(mtu(), "9000");
        crate::port::netdev::set_mtu("vsmtu0", 4000).unwrap();
        assert_eq!(mtu(), "4000");
    });
}

#[test]
fn kernel_numbered_name() {
    in_netns(|| {
        let port = TapPort::create("vsint%d", 1500).unwrap();
        assert_eq!(port.ifname(), "vsint0");
        assert!(link_exists("vsint0"));
    });
}

#[test]
fn deleted_device_counts_drops_and_offers_no_wake_fd() {
    in_netns(|| {
        let mut port = TapPort::create("vstap0", 1500).unwrap();
        let mut txh = port.tx_handle().unwrap();
        let mut pool = PacketPool::new(64, HEADROOM + 2048);
        ip(&["link", "del", "vstap0"]);
        let frames: Vec<Vec<u8>> = (0..10u32).map(|i| frame(i, 100)).collect();
        for q in [&mut port, &mut txh] {
            let mut pkts = packets(&mut pool, &frames);
            let out = q.tx_burst(&mut pkts, &mut pool);
            assert_eq!((out.sent, out.dropped), (0, 10));
            assert_eq!(q.counters().snapshot().tx_link_down, 10);
        }
        assert!(collect(&mut port, &mut pool, 0, LINGER, LINGER).is_empty());
        assert_eq!(port.wake_fd(), None);
    });
}
