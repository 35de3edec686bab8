//! Checked views of the Ethernet and 802.1Q headers, in smoltcp's style.
//!
//! Contract: [`EthernetHeader::parse`] checks lengths once; after it
//! succeeds no accessor can panic. The fast path reads only the L2 view
//! (destination, source, TPID/TCI, inner ethertype); the IP headers are
//! read only where a team policy needs them.

use std::fmt;
use std::str::FromStr;

/// EtherType of an 802.1Q customer tag.
pub const TPID_8021Q: u16 = 0x8100;
/// EtherType of an 802.1ad service tag.
pub const TPID_8021AD: u16 = 0x88a8;
/// The pre-standard QinQ tag some switches still emit.
pub const TPID_QINQ_OLD: u16 = 0x9100;
/// Length of the untagged Ethernet header.
pub const ETH_HEADER_LEN: usize = 14;
/// Length of one VLAN tag.
pub const VLAN_TAG_LEN: usize = 4;

/// True for every EtherType that announces a VLAN tag.
#[inline]
pub fn is_vlan_tpid(ethertype: u16) -> bool {
    matches!(ethertype, TPID_8021Q | TPID_8021AD | TPID_QINQ_OLD)
}

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address from the first six bytes of `b` (caller checked length).
    #[inline]
    fn from_slice(b: &[u8]) -> MacAddr {
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Group (multicast or broadcast) address: I/G bit set.
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// All ones.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// All zeros.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// 01:80:c2:00:00:00 to 01:80:c2:00:00:0f: the IEEE 802.1D link-local
    /// group (STP, pause, LACP, LLDP, 802.1X) that a bridge never forwards.
    #[inline]
    pub fn is_link_local_reserved(&self) -> bool {
        self.0[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && self.0[5] & 0xf0 == 0
    }

    /// The address as the low 48 bits of an integer.
    #[inline]
    pub fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The address from the low 48 bits of an integer.
    #[inline]
    pub fn from_u64(v: u64) -> MacAddr {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a MAC address (expected six hex bytes like 52:54:00:12:34:56)")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in out.iter_mut() {
            let part = parts.next().ok_or_else(|| MacParseError(s.to_string()))?;
            if part.len() != 2 {
                return Err(MacParseError(s.to_string()));
            }
            *b = u8::from_str_radix(part, 16).map_err(|_| MacParseError(s.to_string()))?;
        }
        if parts.next().is_some() {
            return Err(MacParseError(s.to_string()));
        }
        Ok(MacAddr(out))
    }
}

/// The L2 header of a frame as the switch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// The EtherType at offset 12 (a TPID if the frame is tagged).
    pub ethertype: u16,
    /// Outer tag: TCI, present when `ethertype` is a VLAN TPID and the frame
    /// is long enough to hold it.
    pub tci: Option<u16>,
    /// EtherType after the outer tag (a TPID again for double-tagged frames).
    pub inner_ethertype: Option<u16>,
}

impl EthernetHeader {
    /// Parses the header; `None` for a runt (shorter than 14 bytes, or a
    /// tagged frame shorter than 18).
    #[inline]
    pub fn parse(frame: &[u8]) -> Option<EthernetHeader> {
        if frame.len() < ETH_HEADER_LEN {
            return None;
        }
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let (tci, inner) = if is_vlan_tpid(ethertype) {
            if frame.len() < ETH_HEADER_LEN + VLAN_TAG_LEN {
                return None;
            }
            (
                Some(u16::from_be_bytes([frame[14], frame[15]])),
                Some(u16::from_be_bytes([frame[16], frame[17]])),
            )
        } else {
            (None, None)
        };
        Some(EthernetHeader {
            dst: MacAddr::from_slice(&frame[0..6]),
            src: MacAddr::from_slice(&frame[6..12]),
            ethertype,
            tci,
            inner_ethertype: inner,
        })
    }
}

/// VLAN ID of a TCI (low 12 bits).
#[inline]
pub fn tci_vid(tci: u16) -> u16 {
    tci & 0x0fff
}

/// Priority code point and drop-eligible bit of a TCI (high 4 bits, in place).
#[inline]
pub fn tci_priority_bits(tci: u16) -> u16 {
    tci & 0xf000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips() {
        let m: MacAddr = "52:54:00:ab:cd:ef".parse().expect("valid");
        assert_eq!(m.to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert!("52:54:00:ab:cd".parse::<MacAddr>().is_err());
        assert!("52:54:00:ab:cd:ef:01".parse::<MacAddr>().is_err());
        assert!("52:54:00:ab:cd:eg".parse::<MacAddr>().is_err());
        assert!("5:54:00:ab:cd:ef".parse::<MacAddr>().is_err());
    }

    #[test]
    fn reserved_group() {
        let stp: MacAddr = "01:80:c2:00:00:00".parse().expect("valid");
        let lldp: MacAddr = "01:80:c2:00:00:0e".parse().expect("valid");
        let not: MacAddr = "01:80:c2:00:00:10".parse().expect("valid");
        assert!(stp.is_link_local_reserved() && lldp.is_link_local_reserved());
        assert!(!not.is_link_local_reserved());
    }

    #[test]
    fn parse_agrees_with_etherparse() {
        use etherparse::{EtherType, Ethernet2Header, SingleVlanHeader, VlanId, VlanPcp};
        let eth = Ethernet2Header {
            source: [2, 0, 0, 0, 0, 1],
            destination: [2, 0, 0, 0, 0, 2],
            ether_type: EtherType::VLAN_TAGGED_FRAME,
        };
        let vlan = SingleVlanHeader {
            pcp: VlanPcp::try_new(5).expect("pcp"),
            drop_eligible_indicator: true,
            vlan_id: VlanId::try_new(100).expect("vid"),
            ether_type: EtherType::IPV4,
        };
        let mut frame = Vec::new();
        eth.write(&mut frame).expect("write");
        vlan.write(&mut frame).expect("write");
        frame.extend_from_slice(&[0u8; 46]);
        let h = EthernetHeader::parse(&frame).expect("parses");
        assert_eq!(h.src.0, eth.source);
        assert_eq!(h.dst.0, eth.destination);
        let tci = h.tci.expect("tagged");
        assert_eq!(tci_vid(tci), 100);
        assert_eq!(tci_priority_bits(tci), (5 << 13) | (1 << 12));
        assert_eq!(h.inner_ethertype, Some(0x0800));
        assert!(EthernetHeader::parse(&frame[..17]).is_none());
        assert!(EthernetHeader::parse(&frame[..13]).is_none());
    }
}
