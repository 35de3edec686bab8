//! Per-port counters of a vhost-user port: guest-caused and capacity drops,
//! notifications and resets, one shared set per port (summed over PMDs by
//! construction). Per-packet failures are counters, never logs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Per-port counters of guest-caused and capacity drops. Summed over PMDs
/// by construction (one shared set, relaxed atomics, touched only on
/// errors and once per burst).
#[derive(Debug, Default)]
pub struct VhostCounters {
    /// Guest TX chains that were malformed (returned with length 0).
    pub rx_bad_chain: AtomicU64,
    /// Guest TX frames too short or too long.
    pub rx_bad_frame: AtomicU64,
    /// Guest TX frames received zero-copy: only their headers copied out,
    /// the rest copied once, straight to where they went.
    pub rx_zero_copy: AtomicU64,
    /// Guest RX chains that were malformed (returned with length 0).
    pub tx_bad_chain: AtomicU64,
    /// Frames dropped because the guest RX ring had no room.
    pub tx_ring_full: AtomicU64,
    /// Frames dropped because the port had no running RX ring.
    pub tx_no_ring: AtomicU64,
    /// Rings stopped because the guest corrupted them (indexes, heads).
    pub ring_broken: AtomicU64,
    /// Interrupts sent to the guest (call eventfd writes).
    pub guest_notifies: AtomicU64,
    /// Failed call eventfd writes.
    pub notify_errors: AtomicU64,
    /// Frontend connections accepted or established.
    pub connects: AtomicU64,
    /// Port resets (disconnect, device reset, malformed message, broken ring).
    pub resets: AtomicU64,
}

/// A plain copy of [`VhostCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct VhostCountersSnapshot {
    pub rx_bad_chain: u64,
    pub rx_bad_frame: u64,
    pub rx_zero_copy: u64,
    pub tx_bad_chain: u64,
    pub tx_ring_full: u64,
    pub tx_no_ring: u64,
    pub ring_broken: u64,
    pub guest_notifies: u64,
    pub notify_errors: u64,
    pub connects: u64,
    pub resets: u64,
}

impl VhostCounters {
    /// Reads every counter.
    pub fn snapshot(&self) -> VhostCountersSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        VhostCountersSnapshot {
            rx_bad_chain: g(&self.rx_bad_chain),
            rx_bad_frame: g(&self.rx_bad_frame),
            rx_zero_copy: g(&self.rx_zero_copy),
            tx_bad_chain: g(&self.tx_bad_chain),
            tx_ring_full: g(&self.tx_ring_full),
            tx_no_ring: g(&self.tx_no_ring),
            ring_broken: g(&self.ring_broken),
            guest_notifies: g(&self.guest_notifies),
            notify_errors: g(&self.notify_errors),
            connects: g(&self.connects),
            resets: g(&self.resets),
        }
    }
}

#[inline]
pub(super) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
