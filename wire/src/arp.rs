//! The Ethernet/IPv4 ARP body (RFC 826), also used by RARP (RFC 903):
//! a checked view to read it and a representation to write it.

use std::net::Ipv4Addr;

use crate::MacAddr;

/// Length of an Ethernet/IPv4 ARP body.
pub const ARP_LEN: usize = 28;

/// Hardware type Ethernet, protocol type IPv4, address lengths 6 and 4:
/// the first six bytes of every body this module reads or writes.
const ETHERNET_IPV4: [u8; 6] = [0x00, 0x01, 0x08, 0x00, 6, 4];

/// ARP and RARP operation codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOp {
    /// 1: ARP request (also a gratuitous ARP announcement).
    Request,
    /// 2: ARP reply.
    Reply,
    /// 3: RARP reverse request.
    ReverseRequest,
    /// 4: RARP reverse reply.
    ReverseReply,
    /// Any other code.
    Other(u16),
}

impl ArpOp {
    /// The operation code on the wire.
    #[inline]
    pub fn code(self) -> u16 {
        match self {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
            ArpOp::ReverseRequest => 3,
            ArpOp::ReverseReply => 4,
            ArpOp::Other(c) => c,
        }
    }

    /// The operation of a wire code.
    #[inline]
    pub fn from_code(code: u16) -> ArpOp {
        match code {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            3 => ArpOp::ReverseRequest,
            4 => ArpOp::ReverseReply,
            c => ArpOp::Other(c),
        }
    }
}

/// A checked view of an Ethernet/IPv4 ARP body: 28 bytes whose hardware
/// and protocol fields say Ethernet and IPv4.
#[derive(Clone, Copy, Debug)]
pub struct ArpPacket<'a> {
    b: &'a [u8; ARP_LEN],
}

impl<'a> ArpPacket<'a> {
    /// The body at the start of `body`, `None` if shorter than 28 bytes or
    /// not Ethernet/IPv4 (hardware type 1, protocol 0x0800, lengths 6 and 4).
    #[inline]
    pub fn new_checked(body: &'a [u8]) -> Option<ArpPacket<'a>> {
        let b = body.first_chunk::<ARP_LEN>()?;
        (b[..6] == ETHERNET_IPV4).then_some(ArpPacket { b })
    }

    /// The operation.
    #[inline]
    pub fn op(&self) -> ArpOp {
        ArpOp::from_code(u16::from_be_bytes([self.b[6], self.b[7]]))
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        let b = self.b;
        MacAddr([b[8], b[9], b[10], b[11], b[12], b[13]])
    }

    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.b[14], self.b[15], self.b[16], self.b[17])
    }

    /// Target hardware address.
    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        let b = self.b;
        MacAddr([b[18], b[19], b[20], b[21], b[22], b[23]])
    }

    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.b[24], self.b[25], self.b[26], self.b[27])
    }

    /// The fields, as a representation.
    #[inline]
    pub fn repr(&self) -> ArpRepr {
        ArpRepr {
            op: self.op(),
            sender_mac: self.sender_mac(),
            sender_ip: self.sender_ip(),
            target_mac: self.target_mac(),
            target_ip: self.target_ip(),
        }
    }
}

/// The fields of an Ethernet/IPv4 ARP body, to write one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Operation.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Writes the 28-byte body.
    #[inline]
    pub fn write(&self, b: &mut [u8; ARP_LEN]) {
        b[0..6].copy_from_slice(&ETHERNET_IPV4);
        b[6..8].copy_from_slice(&self.op.code().to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac.0);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac.0);
        b[24..28].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{ArpHardwareId, ArpOperation, ArpPacket as EpArp, EtherType};

    #[test]
    fn agrees_with_etherparse() {
        let repr = ArpRepr {
            op: ArpOp::Reply,
            sender_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            target_ip: Ipv4Addr::new(192, 0, 2, 2),
        };
        let mut b = [0u8; ARP_LEN];
        repr.write(&mut b);
        let ep = EpArp::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            ArpOperation::REPLY,
            &[2, 0, 0, 0, 0, 1],
            &[192, 0, 2, 1],
            &[2, 0, 0, 0, 0, 2],
            &[192, 0, 2, 2],
        )
        .expect("valid");
        assert_eq!(&b[..], &ep.to_bytes()[..]);
        let v = ArpPacket::new_checked(&b).expect("valid");
        assert_eq!(v.repr(), repr);
        assert!(ArpPacket::new_checked(&b[..27]).is_none());
        let mut ipv6 = b;
        ipv6[2..4].copy_from_slice(&[0x86, 0xdd]);
        assert!(ArpPacket::new_checked(&ipv6).is_none());
        for c in 0..6 {
            assert_eq!(ArpOp::from_code(c).code(), c);
        }
    }
}
