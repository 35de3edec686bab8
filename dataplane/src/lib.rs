//! The per-packet world of the switch: packet buffers, ports, PMD threads
//! and L2 forwarding with VLANs, MAC learning and port security.
//!
//! Data flow: a [`pmd::Pmd`] receives a burst from a [`port::Port`], the
//! [`pipeline::Pipeline`] classifies and forwards it using an immutable
//! [`snapshot::Snapshot`] of the configuration and a per-PMD replica of the
//! [`mac_table::MacTable`], and the PMD flushes the output queues to the
//! destination ports. The control plane drives it all through
//! [`switch::Switch`].
//!
//! Unsafe code lives in `spsc` (the lock-free ring), `sys` (`prctl`,
//! `poll`, `recv`, `FIONREAD`), `packet` (frame tails lent from guest memory or a
//! UMEM), `vhost::{guest_mem, sigbus}` and `vhost::rx` (one tail
//! hand-over), and the host-interface ports: `port::netdev` (the `ifreq`
//! ioctls, packet sockets), `port::af_packet` and its `ring` and `mmsg`,
//! `port::af_xdp` and its `bpf`, `port::tap` and `port::team` (borrowing
//! member descriptors to poll). Each states the invariants it relies on.
#![warn(missing_docs)]

pub mod doorbell;
pub mod mac_table;
pub mod packet;
pub mod pipeline;
pub mod pmd;
pub mod port;
pub mod snapshot;
pub mod spsc;
pub mod stats;
pub mod switch;
pub mod sys;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
pub mod vhost;
pub mod vlan;

pub use mac_table::MacTableSpec;
pub use packet::{Packet, PacketPool};
pub use pmd::{IdlePolicy, Pmd, PmdConfig};
pub use port::{Port, PortId, PortRole};
pub use snapshot::{PortSpec, SecurityPolicy, StaticMac, SwitchSpec};
pub use stats::DropReason;
pub use switch::{MacReader, PortQueue, Switch, SwitchError};
pub use vlan::{VlanMode, VlanSet};
pub use wire::MacAddr;
