//! Per-queue-pair error counters of the netdev ports.

use crate::stats::Counter;

/// Per-queue-pair error counters of a netdev port (AF_PACKET, AF_XDP,
/// TAP). Written by the owning PMD, readable from any thread through the
/// `Arc` the port hands out.
#[derive(Debug, Default)]
pub struct NetdevCounters {
    /// Received frames dropped because they did not fit the packet buffer
    /// (or were truncated by the kernel to the ring's frame size).
    pub rx_oversize: Counter,
    /// Received frames left in (or dropped from) the kernel queue because
    /// the packet pool was empty.
    pub rx_no_buffer: Counter,
    /// Receive system calls that failed for another reason than "nothing
    /// waiting" (a link gone down or an interface gone away among them).
    pub rx_errors: Counter,
    /// Frames dropped on transmit because the link is down or the
    /// interface is gone (ENETDOWN, ENXIO, ENODEV, EIO, EBADFD).
    pub tx_link_down: Counter,
    /// Frames dropped on transmit because the kernel queue was full or the
    /// driver refused them (ENOBUFS, EAGAIN, EBUSY, or a full AF_XDP ring).
    pub tx_queue_full: Counter,
    /// Frames dropped on transmit because they exceed the interface MTU
    /// (EMSGSIZE).
    pub tx_oversize: Counter,
    /// Frames dropped on transmit for any other kernel error.
    pub tx_errors: Counter,
}

/// Values of [`NetdevCounters`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct NetdevCountersSnapshot {
    pub rx_oversize: u64,
    pub rx_no_buffer: u64,
    pub rx_errors: u64,
    pub tx_link_down: u64,
    pub tx_queue_full: u64,
    pub tx_oversize: u64,
    pub tx_errors: u64,
}

impl NetdevCounters {
    /// Current values.
    pub fn snapshot(&self) -> NetdevCountersSnapshot {
        NetdevCountersSnapshot {
            rx_oversize: self.rx_oversize.get(),
            rx_no_buffer: self.rx_no_buffer.get(),
            rx_errors: self.rx_errors.get(),
            tx_link_down: self.tx_link_down.get(),
            tx_queue_full: self.tx_queue_full.get(),
            tx_oversize: self.tx_oversize.get(),
            tx_errors: self.tx_errors.get(),
        }
    }
}

impl NetdevCountersSnapshot {
    /// Adds `other`'s counts (another queue pair of the same port).
    pub fn add(&mut self, other: &NetdevCountersSnapshot) {
        self.rx_oversize += other.rx_oversize;
        self.rx_no_buffer += other.rx_no_buffer;
        self.rx_errors += other.rx_errors;
        self.tx_link_down += other.tx_link_down;
        self.tx_queue_full += other.tx_queue_full;
        self.tx_oversize += other.tx_oversize;
        self.tx_errors += other.tx_errors;
    }

    /// Every counter with its name, as `vswitchctl stats` shows them.
    pub fn by_name(&self) -> [(&'static str, u64); 7] {
        [
            ("rx_oversize", self.rx_oversize),
            ("rx_no_buffer", self.rx_no_buffer),
            ("rx_errors", self.rx_errors),
            ("tx_link_down", self.tx_link_down),
            ("tx_queue_full", self.tx_queue_full),
            ("tx_oversize", self.tx_oversize),
            ("tx_errors", self.tx_errors),
        ]
    }

    /// All transmit drops.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_link_down + self.tx_queue_full + self.tx_oversize + self.tx_errors
    }
}
