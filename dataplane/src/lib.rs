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
//! Unsafe code lives only in `spsc` (the lock-free ring) and `sys`
//! (`prctl`, `poll`), each with the invariants it relies on written down.
#![warn(missing_docs)]

mod checksum;
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
pub mod wire;

pub use mac_table::MacTableSpec;
pub use packet::{Packet, PacketPool};
pub use pmd::{IdlePolicy, Pmd, PmdConfig};
pub use port::{Port, PortId, PortRole};
pub use snapshot::{PortSpec, SecurityPolicy, StaticMac, SwitchSpec};
pub use stats::DropReason;
pub use switch::{MacReader, PortQueue, Switch, SwitchError};
pub use vlan::{VlanMode, VlanSet};
pub use wire::MacAddr;
