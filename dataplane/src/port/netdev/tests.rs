//! Tests of the host-interface helpers: names, loopback, and the
//! link-state rule on a veth pair in a network namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::fd::AsRawFd;

use super::ifreq::{c_ifname, ifindex, ioctl_socket};
use super::*;
use crate::port::af_packet::testnet::{in_netns, ip, veth};

#[test]
fn loopback_is_up_and_unknown_names_are_none() {
    let p = LinkProbe::new().expect("socket");
    assert_eq!(p.link_up("lo"), Some(true));
    assert_eq!(p.link_up("no-such-if0"), None);
    assert_eq!(p.link_up(""), None);
    assert_eq!(p.link_up("a-name-that-is-far-too-long"), None);
    assert_eq!(p.hw_addr("lo"), Some(wire::MacAddr::ZERO));
    assert!(p.index("lo").is_some());
    assert!(FrameSender::open("no-such-if0").is_err());
    assert!(p.disable_receive_offloads("no-such-if0").is_err());
}

#[test]
fn bad_names_are_refused_everywhere() {
    for bad in ["", "sixteen-bytes-xx", "nul\0x"] {
        assert!(matches!(c_ifname(bad), Err(NetdevError::BadName { .. })));
        assert!(matches!(ifindex(bad), Err(NetdevError::BadName { .. })));
        assert!(matches!(
            ifreq::Ifreq::new(bad),
            Err(NetdevError::BadName { .. })
        ));
    }
    assert!(c_ifname("fifteen-bytes-x").is_ok());
}

/// The rule: administratively up and carrier; a veth loses carrier when
/// its peer goes down, and is down when it is set down itself.
#[test]
fn link_state_rule_on_a_veth_pair() {
    in_netns(|| {
        veth("va", "vb");
        let p = LinkProbe::new().unwrap();
        let s = ioctl_socket().unwrap();
        let fd = s.as_raw_fd();
        assert_eq!(p.link_up("va"), Some(true));
        assert_eq!(link_up(fd, "va"), Some(true));
        ip(&["link", "set", "vb", "down"]);
        assert_eq!(p.link_up("va"), Some(false), "peer down: no carrier");
        assert_eq!(p.link_up("vb"), Some(false), "set down itself");
        ip(&["link", "set", "vb", "up"]);
        assert_eq!(p.link_up("va"), Some(true));
        ip(&["link", "set", "va", "down"]);
        assert_eq!(link_up(fd, "va"), Some(false));
        assert_eq!(link_up(fd, "vb"), Some(false), "peer down: no carrier");
        ip(&["link", "del", "va"]);
        assert_eq!(p.link_up("va"), None);
        assert_eq!(p.link_up("vb"), None);
    });
}
