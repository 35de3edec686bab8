//! Checked views of the IPv4 and IPv6 headers, and the TCP/UDP ports.
//!
//! Each `new_checked` reads the version and the header length once and
//! keeps the fixed header as an array reference: the accessors index
//! constant offsets of that array and cannot panic. Checksums and the
//! total/payload length fields are not checked (the switch never needs them).

use std::net::{Ipv4Addr, Ipv6Addr};

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Length of an IPv4 header without options.
pub const IPV4_MIN_HEADER_LEN: usize = 20;
/// Length of the IPv6 fixed header.
pub const IPV6_HEADER_LEN: usize = 40;

/// An IPv4 header: version 4, IHL at least 5 and the whole header (with
/// its options) present.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Header<'a> {
    fixed: &'a [u8; IPV4_MIN_HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> Ipv4Header<'a> {
    /// The header at the start of `packet`, or `None` if the version is not
    /// 4, the IHL is below 5 or `packet` is shorter than the IHL says.
    #[inline]
    pub fn new_checked(packet: &'a [u8]) -> Option<Ipv4Header<'a>> {
        let b0 = *packet.first()?;
        let ihl = usize::from(b0 & 0x0f) * 4;
        if b0 >> 4 != 4 || ihl < IPV4_MIN_HEADER_LEN {
            return None;
        }
        let (header, payload) = packet.split_at_checked(ihl)?;
        let fixed = header.first_chunk::<IPV4_MIN_HEADER_LEN>()?;
        Some(Ipv4Header { fixed, payload })
    }

    /// Header length in bytes (IHL * 4, options included).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.fixed[0] & 0x0f) * 4
    }

    /// The protocol field.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.fixed[9]
    }

    /// A fragment: more-fragments set or fragment offset non-zero (only the
    /// first fragment carries the L4 header).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        u16::from_be_bytes([self.fixed[6], self.fixed[7]]) & 0x3fff != 0
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.fixed[12],
            self.fixed[13],
            self.fixed[14],
            self.fixed[15],
        )
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::new(
            self.fixed[16],
            self.fixed[17],
            self.fixed[18],
            self.fixed[19],
        )
    }

    /// The bytes after the header (options skipped).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// An IPv6 fixed header: version 6 and all 40 bytes present. Extension
/// headers are not walked.
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Header<'a> {
    fixed: &'a [u8; IPV6_HEADER_LEN],
    payload: &'a [u8],
}

impl<'a> Ipv6Header<'a> {
    /// The header at the start of `packet`, or `None` if it is shorter than
    /// 40 bytes or the version is not 6.
    #[inline]
    pub fn new_checked(packet: &'a [u8]) -> Option<Ipv6Header<'a>> {
        let (fixed, payload) = packet.split_first_chunk::<IPV6_HEADER_LEN>()?;
        if fixed[0] >> 4 != 6 {
            return None;
        }
        Some(Ipv6Header { fixed, payload })
    }

    /// The (first) next-header field.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.fixed[6]
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.fixed[8..24]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.fixed[24..40]);
        Ipv6Addr::from(a)
    }

    /// The bytes after the fixed header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// Source and destination port at the start of a TCP or UDP header, `None`
/// if fewer than 4 bytes are there.
#[inline]
pub fn l4_ports(l4: &[u8]) -> Option<(u16, u16)> {
    let p = l4.first_chunk::<4>()?;
    Some((
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv4Header as EpV4, Ipv4Options, Ipv6Header as EpV6, UdpHeader};

    #[test]
    fn ipv4_agrees_with_etherparse() {
        let mut h = EpV4::new(8, 64, IpNumber::UDP, [10, 0, 0, 1], [10, 0, 0, 2]).expect("hdr");
        h.options = Ipv4Options::try_from(&[1u8, 1, 1, 1, 1, 1, 1, 0][..]).expect("options");
        h.more_fragments = false;
        h.dont_fragment = true;
        let mut pkt = Vec::new();
        h.write(&mut pkt).expect("write");
        UdpHeader {
            source_port: 1234,
            destination_port: 53,
            length: 8,
            checksum: 0,
        }
        .write(&mut pkt)
        .expect("write");
        let v = Ipv4Header::new_checked(&pkt).expect("valid");
        assert_eq!(v.header_len(), 28);
        assert_eq!(v.protocol(), IPPROTO_UDP);
        assert!(!v.is_fragment(), "DF alone is not a fragment");
        assert_eq!(v.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(v.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(l4_ports(v.payload()), Some((1234, 53)));
        // Cut inside the options; version 6; IHL 4.
        assert!(Ipv4Header::new_checked(&pkt[..27]).is_none());
        let mut bad = pkt.clone();
        bad[0] = 0x67;
        assert!(Ipv4Header::new_checked(&bad).is_none());
        bad[0] = 0x44;
        assert!(Ipv4Header::new_checked(&bad).is_none());
        assert!(Ipv4Header::new_checked(&[]).is_none());
        // More fragments, or an offset.
        for frag in [[0x20, 0], [0, 1]] {
            let mut f = pkt.clone();
            f[6..8].copy_from_slice(&frag);
            assert!(Ipv4Header::new_checked(&f).expect("valid").is_fragment());
        }
    }

    #[test]
    fn ipv6_agrees_with_etherparse() {
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut dst = src;
        dst[15] = 2;
        let h = EpV6 {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: 8,
            next_header: IpNumber::TCP,
            hop_limit: 64,
            source: src,
            destination: dst,
        };
        let mut pkt = Vec::new();
        h.write(&mut pkt).expect("write");
        pkt.extend_from_slice(&[0, 9, 0, 10, 0, 0, 0, 0]);
        let v = Ipv6Header::new_checked(&pkt).expect("valid");
        assert_eq!(v.next_header(), IPPROTO_TCP);
        assert_eq!(v.src(), Ipv6Addr::from(src));
        assert_eq!(v.dst(), Ipv6Addr::from(dst));
        assert_eq!(l4_ports(v.payload()), Some((9, 10)));
        assert!(Ipv6Header::new_checked(&pkt[..39]).is_none());
        let mut bad = pkt.clone();
        bad[0] = 0x45;
        assert!(Ipv6Header::new_checked(&bad).is_none());
        assert_eq!(l4_ports(&[0, 1, 0]), None);
    }
}
