//! Ports: the one trait every kind of port implements for burst I/O.
//!
//! A port is split into queue pairs; a PMD thread owns one queue pair of
//! every port it sends to, and polls the receive side only of the queue
//! pairs assigned to it. So a [`Port`] is used by one thread at a time and
//! takes `&mut self`: no lock on the per-packet path. vhost-user, AF_XDP,
//! AF_PACKET/TAP and the in-memory ring port all implement it.
//!
//! - [`af_packet`], [`af_xdp`], [`tap`]: the host-interface (netdev)
//!   ports: uplinks on any Linux interface, and the host's own TAP port.
//! - [`netdev`]: what those ports and the control plane share: interface
//!   names and the `ifreq` ioctls, the link-state rule, the packet-socket
//!   opener, [`NetdevError`] and [`NetdevCounters`].
//! - [`team`]: a team of uplinks as one port.
//! - `mem`: the in-memory ring port (tests and benchmarks).

pub mod af_packet;
pub mod af_xdp;
mod mem;
pub mod netdev;
pub mod tap;
pub mod team;

pub use af_packet::{AfPacketConfig, AfPacketPort, AfPacketRxMode};
pub use af_xdp::{AfXdpConfig, AfXdpPort};
pub use mem::{MemPortPeer, MemPortQueue, mem_port};
pub use netdev::{NetdevCounters, NetdevCountersSnapshot, NetdevError};
pub use tap::TapPort;

use crate::packet::{Packet, PacketPool};

/// Stable numeric ID of a port within a switch. It is also the
/// "originating virtual port ID" that port-ID teaming hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PortId(pub u16);

impl std::fmt::Display for PortId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a port connects to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortRole {
    /// A VM's virtual NIC (vhost-user) or a test endpoint.
    Guest,
    /// A link to the physical network. Frames never go uplink to uplink.
    Uplink,
    /// The host's own interface on the switch (TAP).
    Internal,
}

/// Result of a transmit burst.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOutcome {
    /// Frames the port accepted.
    pub sent: usize,
    /// Bytes of those frames.
    pub bytes: usize,
    /// Frames it could not take (they are returned to the pool).
    pub dropped: usize,
}

/// One queue pair of a port.
pub trait Port: Send + std::fmt::Debug {
    /// Receives up to `max` frames, appending them to `out`; returns how
    /// many. Buffers come from `pool` (ports that copy frames in) or from
    /// the port itself (memory rings).
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<Packet>, max: usize) -> usize;

    /// Transmits the frames in `pkts`, leaving it empty. Frames the port
    /// cannot take are freed to `pool` and counted in the outcome.
    fn tx_burst(&mut self, pkts: &mut Vec<Packet>, pool: &mut PacketPool) -> TxOutcome;

    /// The error counters of a port backed by a kernel socket (AF_PACKET,
    /// AF_XDP, TAP): why it dropped frames. `None` for other ports.
    fn netdev_counters(&self) -> Option<std::sync::Arc<NetdevCounters>> {
        None
    }

    /// A file descriptor that becomes readable when frames arrive while
    /// receive notifications are on; `None` if the port cannot wake a
    /// sleeping PMD (the PMD then sleeps in short timed steps).
    fn wake_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// Turns receive notifications on (before the PMD sleeps) or off
    /// (after it wakes). When turning them on, returns true if frames are
    /// already waiting, so the PMD must not sleep.
    fn set_rx_notify(&mut self, _on: bool) -> bool {
        false
    }

    /// [`Port::rx_burst`], but the port may lend frames: leave their
    /// ends in its own memory as [`crate::packet::Tail`]s (zero-copy
    /// receive). The caller must then send or free every packet of the
    /// burst and call [`Port::rx_complete`] before the next receive and
    /// before giving any packet of it to a port whose
    /// [`Port::takes_tails`] is false without
    /// [`Packet::materialize`]. The PMD does all of this; other callers
    /// use `rx_burst`.
    fn rx_burst_lending(
        &mut self,
        pool: &mut PacketPool,
        out: &mut Vec<Packet>,
        max: usize,
    ) -> usize {
        self.rx_burst(pool, out, max)
    }

    /// Ends a burst received with [`Port::rx_burst_lending`]: the lent
    /// frames are no longer read, so the port may give their buffers back.
    fn rx_complete(&mut self) {}

    /// True if `tx_burst` copies [`crate::packet::Tail`]s itself (it
    /// reads the frame through `Packet::data` and `Packet::tail_slice`);
    /// otherwise packets reach it materialized.
    fn takes_tails(&self) -> bool {
        false
    }
}
