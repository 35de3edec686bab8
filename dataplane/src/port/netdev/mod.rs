//! Host network interfaces: the one home of the code that asks the kernel
//! about them or opens sockets on them, shared by the netdev ports
//! (`af_packet`, `af_xdp`, `tap`) and the control plane (team supervision,
//! uplink set-up in `vswitch`).
//!
//! - `ifreq`: interface-name validation, the one `struct ifreq` helper and
//!   the interface ioctls (flags, hardware address, `TUNSETIFF`, ethtool).
//! - `link`: the link-state rule below, setting a link up, and
//!   [`LinkProbe`] for the control plane.
//! - `packet_socket`: the one `AF_PACKET` socket opener, binding, socket
//!   options, and [`FrameSender`] for control frames.
//! - `error`: [`NetdevError`] (opening errors, naming the interface and
//!   the step) and the fast path's handling of kernel errors.
//! - `counters`: [`NetdevCounters`], the per-queue-pair error counters.
//!
//! **Link state.** An interface is up when it is administratively up
//! (`IFF_UP`) and has carrier. Carrier is `ETHTOOL_GLINK` when the driver
//! answers it (the driver's own view, updated at once), else `IFF_RUNNING`
//! (the operational state, which the kernel's link watch may update up to a
//! second later). Setting either end of a veth pair down takes carrier
//! from both ends. The rule is asked by team supervision
//! ([`LinkProbe::link_up`]) and by AF_PACKET transmit, which uses it to
//! tell a link without carrier from a full queue when the kernel says
//! `ENOBUFS`.
//!
//! Unsafe code here: `socket`, `bind`, `sendto`, `getsockopt` and
//! `setsockopt` on our own descriptors and locals, and the `ifreq`
//! ioctls, which only [`ifreq`]'s two wrappers make (each request's
//! argument is a local the kernel only reads and writes during the call).

mod counters;
mod error;
pub(crate) mod ifreq;
mod link;
pub(crate) mod packet_socket;

pub use counters::{NetdevCounters, NetdevCountersSnapshot};
pub(crate) use error::{ErrorLog, TxFailure, classify_tx_errno, errno};
pub use error::{LOG_INTERVAL, NetdevError};
pub use link::{LinkProbe, set_mtu, set_tx_queue_len};
pub(crate) use link::{link_up, set_link_up};
pub use packet_socket::FrameSender;

#[cfg(test)]
mod tests;
