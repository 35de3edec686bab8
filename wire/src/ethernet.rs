//! Checked view of the Ethernet header and its 802.1Q tag.
//!
//! Contract: [`EthernetHeader::parse`] checks lengths once; after it
//! succeeds no accessor can panic. The switch's fast path reads only this
//! view (destination, source, TPID/TCI, inner ethertype).

use crate::MacAddr;

/// EtherType of an 802.1Q customer tag.
pub const TPID_8021Q: u16 = 0x8100;
/// EtherType of an 802.1ad service tag.
pub const TPID_8021AD: u16 = 0x88a8;
/// The pre-standard QinQ tag some switches still emit.
pub const TPID_QINQ_OLD: u16 = 0x9100;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of RARP.
pub const ETHERTYPE_RARP: u16 = 0x8035;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Length of the untagged Ethernet header.
pub const ETH_HEADER_LEN: usize = 14;
/// Length of one VLAN tag.
pub const VLAN_TAG_LEN: usize = 4;

/// True for every EtherType that announces a VLAN tag: 802.1Q, 802.1ad and
/// the pre-standard 0x9100. The one rule of the workspace: the switch
/// classifies by it and the team hash policies read past such tags.
#[inline]
pub fn is_vlan_tpid(ethertype: u16) -> bool {
    matches!(ethertype, TPID_8021Q | TPID_8021AD | TPID_QINQ_OLD)
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
            dst: MacAddr([frame[0], frame[1], frame[2], frame[3], frame[4], frame[5]]),
            src: MacAddr([frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]]),
            ethertype,
            tci,
            inner_ethertype: inner,
        })
    }

    /// Length of this header: 14, or 18 with the outer tag.
    #[inline]
    pub fn len(&self) -> usize {
        match self.tci {
            Some(_) => ETH_HEADER_LEN + VLAN_TAG_LEN,
            None => ETH_HEADER_LEN,
        }
    }

    /// Never true: a header has at least 14 bytes (for clippy's `len` rule).
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The EtherType of what follows this header: the inner EtherType of a
    /// tagged frame (a TPID again when double-tagged), else the EtherType.
    #[inline]
    pub fn payload_ethertype(&self) -> u16 {
        self.inner_ethertype.unwrap_or(self.ethertype)
    }

    /// The bytes after this header in `frame` (the frame it was parsed
    /// from), `None` if `frame` is shorter than the header.
    #[inline]
    pub fn payload<'a>(&self, frame: &'a [u8]) -> Option<&'a [u8]> {
        frame.get(self.len()..)
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
        assert_eq!(h.inner_ethertype, Some(ETHERTYPE_IPV4));
        assert_eq!(h.payload_ethertype(), ETHERTYPE_IPV4);
        assert_eq!(h.len(), 18);
        assert_eq!(h.payload(&frame).map(<[u8]>::len), Some(46));
        assert!(EthernetHeader::parse(&frame[..17]).is_none());
        assert!(EthernetHeader::parse(&frame[..13]).is_none());
        let untagged = EthernetHeader::parse(&frame[4..]).expect("parses");
        assert_eq!((untagged.tci, untagged.len()), (None, 14));
    }

    #[test]
    fn vlan_tpids() {
        for t in [TPID_8021Q, TPID_8021AD, TPID_QINQ_OLD] {
            assert!(is_vlan_tpid(t), "{t:#x}");
        }
        for t in [ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ARP, 0x88b5] {
            assert!(!is_vlan_tpid(t), "{t:#x}");
        }
    }
}
