//! The wire vocabulary every crate of the switch speaks: one [`MacAddr`],
//! and checked views of the headers the switch reads.
//!
//! The views follow smoltcp's style: a constructor checks the length (and
//! the version or layout fields it depends on) once, then the accessors read
//! fixed offsets of a checked buffer and cannot panic.
//!
//! - [`ethernet`]: the Ethernet header and its VLAN tag
//!   ([`EthernetHeader`], the TPIDs and [`is_vlan_tpid`], TCI helpers). The
//!   switch's fast path reads only this view.
//! - [`ip`]: IPv4 and IPv6 headers and the TCP/UDP ports.
//! - [`arp`]: the Ethernet/IPv4 ARP (and RARP) body, read and written.
//! - [`flow`]: the flow key the team hash policies read, built from the
//!   views above.
//! - [`checksum`]: completing the TCP/UDP checksum of a frame the kernel
//!   left for the NIC (`CHECKSUM_PARTIAL`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod flow;
pub mod ip;
mod mac;

pub use arp::{ARP_LEN, ArpOp, ArpPacket, ArpRepr};
pub use checksum::complete_l4_checksum;
pub use ethernet::{
    ETH_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_RARP, EthernetHeader,
    TPID_8021AD, TPID_8021Q, TPID_QINQ_OLD, VLAN_TAG_LEN, is_vlan_tpid, tci_priority_bits, tci_vid,
};
pub use flow::{FlowKey, IpPair, parse_flow_key};
pub use ip::{
    IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HEADER_LEN, IPV6_HEADER_LEN, Ipv4Header, Ipv6Header,
    l4_ports,
};
pub use mac::{MacAddr, MacParseError};
