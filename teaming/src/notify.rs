//! Notify switches: RARP and gratuitous ARP frames that make the physical
//! network relearn a guest MAC on its new member at once.
//!
//! After a failover, failback or port move the physical switch still sends a
//! guest's traffic to the old member until it sees a frame from the guest
//! on the new one. VMware ("notify switches") and QEMU (after live
//! migration) send a RARP from the guest MAC; we build the same frame, and
//! a gratuitous ARP when the guest's IPv4 address is known (it also
//! refreshes ARP caches of routers that ignore RARP). The team decides
//! *which* guests to announce on *which* member
//! ([`Team::announcements`](crate::Team::announcements)); the dataplane
//! sends the frames.

use std::net::Ipv4Addr;

use wire::{ARP_LEN, ArpOp, ArpRepr, ETHERTYPE_ARP, ETHERTYPE_RARP, TPID_8021Q, VLAN_TAG_LEN};

use crate::{GuestPort, MacAddr, MemberIndex};

/// Length of an untagged minimum-size frame without FCS; a tagged one is 4
/// bytes longer. Every frame this crate builds is padded to it.
pub const MIN_FRAME_LEN: usize = 60;

/// A VLAN ID that can go in an 802.1Q tag: 1 to 4094.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vlan(u16);

impl Vlan {
    /// `vid` if it is 1..=4094 (0 means "priority tag only" and 4095 is
    /// reserved).
    pub const fn new(vid: u16) -> Option<Vlan> {
        if vid >= 1 && vid <= 4094 {
            Some(Vlan(vid))
        } else {
            None
        }
    }

    /// The VLAN ID.
    pub const fn id(self) -> u16 {
        self.0
    }
}

/// The caller's buffer cannot hold the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Frame needs {needed} bytes, buffer has {got}")]
pub struct BufferTooSmall {
    /// Bytes the frame needs.
    pub needed: usize,
    /// Bytes the buffer has.
    pub got: usize,
}

/// Length of a minimum-size frame with or without a tag.
pub const fn frame_len(vlan: Option<Vlan>) -> usize {
    match vlan {
        Some(_) => MIN_FRAME_LEN + VLAN_TAG_LEN,
        None => MIN_FRAME_LEN,
    }
}

/// Zeroes `buf[..len]` and writes the Ethernet header (with a tag when
/// `vlan` is given); returns the payload offset.
pub(crate) fn write_eth_header(
    buf: &mut [u8],
    len: usize,
    dst: &MacAddr,
    src: &MacAddr,
    vlan: Option<Vlan>,
    ethertype: u16,
) -> Result<usize, BufferTooSmall> {
    let got = buf.len();
    let frame = buf
        .get_mut(..len)
        .ok_or(BufferTooSmall { needed: len, got })?;
    frame.fill(0);
    frame[0..6].copy_from_slice(&dst.0);
    frame[6..12].copy_from_slice(&src.0);
    let mut at = 12;
    if let Some(v) = vlan {
        frame[12..14].copy_from_slice(&TPID_8021Q.to_be_bytes());
        frame[14..16].copy_from_slice(&v.id().to_be_bytes());
        at = 16;
    }
    frame[at..at + 2].copy_from_slice(&ethertype.to_be_bytes());
    Ok(at + 2)
}

/// Writes the ARP-format body `arp` (Ethernet/IPv4, 28 bytes) at
/// `buf[at..]`, which the caller sized for it.
fn write_arp_body(buf: &mut [u8], at: usize, arp: ArpRepr) {
    // Every frame here is at least 60 bytes and the body ends at byte 46:
    // it always fits.
    if let Some(b) = buf
        .get_mut(at..)
        .and_then(|b| b.first_chunk_mut::<ARP_LEN>())
    {
        arp.write(b);
    }
}

/// Writes the RARP announcement QEMU and VMware send for `mac` into `buf`
/// and returns its length (60, or 64 with a tag): broadcast from `mac`,
/// ethertype 0x8035, opcode 3 (reverse request), sender and target
/// hardware address `mac`, both protocol addresses 0.0.0.0, zero padding.
pub fn write_rarp(
    buf: &mut [u8],
    mac: &MacAddr,
    vlan: Option<Vlan>,
) -> Result<usize, BufferTooSmall> {
    let len = frame_len(vlan);
    let at = write_eth_header(buf, len, &MacAddr::BROADCAST, mac, vlan, ETHERTYPE_RARP)?;
    let arp = ArpRepr {
        op: ArpOp::ReverseRequest,
        sender_mac: *mac,
        sender_ip: Ipv4Addr::UNSPECIFIED,
        target_mac: *mac,
        target_ip: Ipv4Addr::UNSPECIFIED,
    };
    write_arp_body(buf, at, arp);
    Ok(len)
}

/// [`write_rarp`] into a new buffer.
pub fn rarp_frame(mac: &MacAddr, vlan: Option<Vlan>) -> Vec<u8> {
    let mut f = vec![0; frame_len(vlan)];
    // Cannot fail: the buffer has exactly frame_len(vlan) bytes.
    let _ = write_rarp(&mut f, mac, vlan);
    f
}

/// Writes a gratuitous ARP for `mac` owning `ip` into `buf` and returns its
/// length: broadcast from `mac`, an ARP request (opcode 1) with sender and
/// target protocol address `ip`, sender hardware address `mac`, target
/// hardware address zero (RFC 5227's ARP announcement), zero padding.
pub fn write_garp(
    buf: &mut [u8],
    mac: &MacAddr,
    ip: Ipv4Addr,
    vlan: Option<Vlan>,
) -> Result<usize, BufferTooSmall> {
    let len = frame_len(vlan);
    let at = write_eth_header(buf, len, &MacAddr::BROADCAST, mac, vlan, ETHERTYPE_ARP)?;
    let arp = ArpRepr {
        op: ArpOp::Request,
        sender_mac: *mac,
        sender_ip: ip,
        target_mac: MacAddr::ZERO,
        target_ip: ip,
    };
    write_arp_body(buf, at, arp);
    Ok(len)
}

/// [`write_garp`] into a new buffer.
pub fn garp_frame(mac: &MacAddr, ip: Ipv4Addr, vlan: Option<Vlan>) -> Vec<u8> {
    let mut f = vec![0; frame_len(vlan)];
    // Cannot fail: the buffer has exactly frame_len(vlan) bytes.
    let _ = write_garp(&mut f, mac, ip, vlan);
    f
}

/// A guest as the notify plan needs it: its port, MAC, VLAN on the uplink
/// (`None` when its frames leave untagged) and IPv4 address if known.
/// A guest on several VLANs (a trunk) is listed once per VLAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GuestAddr {
    /// Guest port (the `port-id` policy's input).
    pub port: GuestPort,
    /// Guest MAC (the `src-mac` policy's input; the RARP's source).
    pub mac: MacAddr,
    /// VLAN the announcement is tagged with.
    pub vlan: Option<Vlan>,
    /// IPv4 address, if known: a GARP is sent too.
    pub ipv4: Option<Ipv4Addr>,
}

/// "Send this guest's announcement out of this member."
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Announcement {
    /// Member to send on (the guest's new member).
    pub member: MemberIndex,
    /// The guest.
    pub guest: GuestAddr,
}

impl Announcement {
    /// The RARP, then the GARP if the guest's IPv4 address is known.
    pub fn frames(&self) -> Vec<Vec<u8>> {
        let g = &self.guest;
        let mut frames = vec![rarp_frame(&g.mac, g.vlan)];
        if let Some(ip) = g.ipv4 {
            frames.push(garp_frame(&g.mac, ip, g.vlan));
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    #[rustfmt::skip]
    const RARP: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst: broadcast
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // src: guest
        0x80, 0x35,                         // RARP
        0x00, 0x01, 0x08, 0x00, 6, 4,       // Ethernet, IPv4, hlen, plen
        0x00, 0x03,                         // reverse request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // sha
        0, 0, 0, 0,                         // spa
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // tha
        0, 0, 0, 0,                         // tpa
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // pad to 60
    ];

    #[rustfmt::skip]
    const GARP_TAGGED: [u8; 64] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
        0x81, 0x00, 0x00, 0x64,             // 802.1Q, VLAN 100
        0x08, 0x06,                         // ARP
        0x00, 0x01, 0x08, 0x00, 6, 4,
        0x00, 0x01,                         // request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // sha
        192, 0, 2, 7,                       // spa
        0, 0, 0, 0, 0, 0,                   // tha: zero
        192, 0, 2, 7,                       // tpa = spa
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn rarp_matches_qemus_layout() {
        assert_eq!(rarp_frame(&MAC, None), RARP);
        let tagged = rarp_frame(&MAC, Vlan::new(100));
        assert_eq!(tagged.len(), 64);
        assert_eq!(&tagged[..12], &RARP[..12]);
        assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x00, 0x64]);
        assert_eq!(
            &tagged[16..],
            &RARP[12..],
            "untagging gives the untagged frame"
        );
    }

    #[test]
    fn garp_layout() {
        let ip = Ipv4Addr::new(192, 0, 2, 7);
        assert_eq!(garp_frame(&MAC, ip, Vlan::new(100)), GARP_TAGGED);
        let untagged = garp_frame(&MAC, ip, None);
        assert_eq!(untagged.len(), 60);
        assert_eq!(&untagged[12..], &GARP_TAGGED[16..]);
    }

    #[test]
    fn caller_buffers() {
        let mut small = [0xaa; 59];
        assert_eq!(
            write_rarp(&mut small, &MAC, None),
            Err(BufferTooSmall {
                needed: 60,
                got: 59
            })
        );
        // A dirty, larger buffer: stale bytes inside the frame are cleared,
        // bytes beyond it untouched.
        let mut buf = [0xaa; 100];
        assert_eq!(write_rarp(&mut buf, &MAC, None), Ok(60));
        assert_eq!(buf[..60], RARP);
        assert!(buf[60..].iter().all(|b| *b == 0xaa));
        assert_eq!(
            write_garp(&mut buf, &MAC, Ipv4Addr::new(192, 0, 2, 7), Vlan::new(100)),
            Ok(64)
        );
        assert_eq!(buf[..64], GARP_TAGGED);
    }

    #[test]
    fn vlan_range() {
        assert_eq!(Vlan::new(0), None);
        assert_eq!(Vlan::new(4095), None);
        assert_eq!(Vlan::new(1).map(Vlan::id), Some(1));
        assert_eq!(Vlan::new(4094).map(Vlan::id), Some(4094));
    }

    #[test]
    fn announcement_frames() {
        let mut a = Announcement {
            member: MemberIndex(1),
            guest: GuestAddr {
                port: GuestPort(3),
                mac: MAC,
                vlan: None,
                ipv4: None,
            },
        };
        assert_eq!(a.frames(), vec![RARP.to_vec()]);
        a.guest.ipv4 = Some(Ipv4Addr::new(192, 0, 2, 7));
        a.guest.vlan = Vlan::new(100);
        let frames = a.frames();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1], GARP_TAGGED);
    }
}
