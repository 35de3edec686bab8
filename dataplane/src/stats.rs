//! Counters: the fast path's error channel.
//!
//! Each PMD thread owns one [`PmdStats`]; only that thread writes it, so a
//! counter update is a relaxed load and store (no locked instruction).
//! Readers on other threads sum the PMDs' values ([`PortCounters::snapshot`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter written by one thread and read by any.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning thread may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Replaces the value (for gauges such as CPU time). Owning thread only.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal : $doc:literal,)*) => {
        /// Why a frame was dropped. Every drop on the forwarding path has one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $(#[doc = $doc] $variant,)* }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();
            /// The counter's name as shown to users.
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }
        }
    };
}

drop_reasons! {
    Runt => "runt": "Shorter than an Ethernet header (or a tagged frame without its tag).",
    Oversize => "oversize": "Longer than the switch MTU allows.",
    InvalidSrcMac => "invalid_src_mac": "Source MAC is multicast or all zeros.",
    ReservedMulticast => "reserved_multicast": "Sent to an L2 control address no bridge forwards (802.1D: STP, LACP, LLDP...; Cisco: CDP, VTP, PVST+...; Extreme: EDP, EAPS).",
    VlanTaggedOnAccess => "vlan_tagged_on_access": "A tagged frame on an access port.",
    VlanDoubleTagged => "vlan_double_tagged": "A second tag behind a priority or native-VLAN tag.",
    VlanNotAllowed => "vlan_not_allowed": "Tagged with a VLAN the port is not a member of.",
    VlanUntaggedNoNative => "vlan_untagged_no_native": "Untagged on a trunk without a native VLAN.",
    VlanBadTpid => "vlan_bad_tpid": "Outer tag is 802.1ad or 0x9100 on a customer trunk.",
    ForgedTransmit => "forged_transmit": "Source MAC is not the port's assigned MAC.",
    SamePort => "same_port": "Destination was learned on the ingress port.",
    UplinkToUplink => "uplink_to_uplink": "Would go from one uplink to another.",
    NoDestination => "no_destination": "No other port is in the frame's VLAN.",
    NoBuffer => "no_buffer": "No free buffer to copy a flooded frame into.",
    PortUnknown => "port_unknown": "Arrived on a port the configuration does not know.",
    EgressNotMember => "egress_not_member": "Output port is not in the frame's VLAN.",
    EgressTagFailed => "egress_tag_failed": "The egress tag could not be pushed or popped.",
    Reflection => "reflection": "Came in on an uplink with the source MAC of a local guest (our own frame, reflected).",
}

/// Per-port counters of one PMD.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Frames received from the port.
    pub rx_packets: Counter,
    /// Bytes received from the port.
    pub rx_bytes: Counter,
    /// Frames handed to the port for transmission.
    pub tx_packets: Counter,
    /// Bytes handed to the port.
    pub tx_bytes: Counter,
    /// Frames the port could not take (ring full, port gone).
    pub tx_dropped: Counter,
    /// Frames received from this port and dropped, by reason.
    pub drops: [Counter; DropReason::COUNT],
    /// Source MACs not learned because the port reached its limit.
    pub mac_learn_limit: Counter,
    /// Source MACs not learned because the table was full.
    pub mac_table_full: Counter,
    /// MACs that moved to this port from another.
    pub mac_moves: Counter,
}

/// A plain copy of port counters, summed over PMDs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PortCountersSnapshot {
    /// See [`PortCounters::rx_packets`].
    pub rx_packets: u64,
    /// See [`PortCounters::rx_bytes`].
    pub rx_bytes: u64,
    /// See [`PortCounters::tx_packets`].
    pub tx_packets: u64,
    /// See [`PortCounters::tx_bytes`].
    pub tx_bytes: u64,
    /// See [`PortCounters::tx_dropped`].
    pub tx_dropped: u64,
    /// See [`PortCounters::drops`].
    pub drops: [u64; DropReason::COUNT],
    /// See [`PortCounters::mac_learn_limit`].
    pub mac_learn_limit: u64,
    /// See [`PortCounters::mac_table_full`].
    pub mac_table_full: u64,
    /// See [`PortCounters::mac_moves`].
    pub mac_moves: u64,
}

impl PortCountersSnapshot {
    /// Count of drops for one reason.
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// All drops together.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

impl PortCounters {
    /// Counts a drop.
    #[inline]
    pub fn drop(&self, r: DropReason) {
        self.drops[r as usize].inc();
    }

    /// Adds this PMD's values into `acc`.
    pub fn accumulate(&self, acc: &mut PortCountersSnapshot) {
        acc.rx_packets += self.rx_packets.get();
        acc.rx_bytes += self.rx_bytes.get();
        acc.tx_packets += self.tx_packets.get();
        acc.tx_bytes += self.tx_bytes.get();
        acc.tx_dropped += self.tx_dropped.get();
        for (a, c) in acc.drops.iter_mut().zip(self.drops.iter()) {
            *a += c.get();
        }
        acc.mac_learn_limit += self.mac_learn_limit.get();
        acc.mac_table_full += self.mac_table_full.get();
        acc.mac_moves += self.mac_moves.get();
    }
}

/// Counters of one PMD thread.
#[derive(Debug)]
pub struct PmdStats {
    /// Indexed by port ID.
    pub ports: Box<[PortCounters]>,
    /// Loop iterations.
    pub iterations: Counter,
    /// Iterations that received at least one frame.
    pub busy_iterations: Counter,
    /// Times the adaptive idle policy slept.
    pub idle_sleeps: Counter,
    /// MAC learning updates sent to other PMDs.
    pub mac_sync_sent: Counter,
    /// MAC learning updates lost because a peer's inbox was full.
    pub mac_sync_dropped: Counter,
    /// CPU time this thread has used, in nanoseconds (updated about once a second).
    pub cpu_time_ns: Counter,
    /// Entries in this PMD's MAC table replica (a gauge, sampled with
    /// `cpu_time_ns`): the metrics endpoint reads it without asking the
    /// PMD for its table.
    pub mac_entries: Counter,
}

impl PmdStats {
    /// Counters for `max_ports` ports.
    pub fn new(max_ports: usize) -> Self {
        PmdStats {
            ports: (0..max_ports).map(|_| PortCounters::default()).collect(),
            iterations: Counter::default(),
            busy_iterations: Counter::default(),
            idle_sleeps: Counter::default(),
            mac_sync_sent: Counter::default(),
            mac_sync_dropped: Counter::default(),
            cpu_time_ns: Counter::default(),
            mac_entries: Counter::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case() {
        let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn accumulate_sums() {
        let a = PortCounters::default();
        let b = PortCounters::default();
        a.rx_packets.add(3);
        b.rx_packets.add(4);
        a.drop(DropReason::Runt);
        b.drop(DropReason::Runt);
        b.drop(DropReason::SamePort);
        let mut s = PortCountersSnapshot::default();
        a.accumulate(&mut s);
        b.accumulate(&mut s);
        assert_eq!(s.rx_packets, 7);
        assert_eq!(s.drop_count(DropReason::Runt), 2);
        assert_eq!(s.total_drops(), 3);
    }
}
