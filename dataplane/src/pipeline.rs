//! The forwarding pipeline of one PMD: ingress checks, VLAN
//! classification, port security, learning, lookup, flooding and the
//! egress tag, for a burst of frames from one port.
//!
//! Semantics follow Open vSwitch's NORMAL action where VMware's standard
//! switch is silent: known unicast goes to one port; unknown unicast,
//! broadcast and multicast flood the VLAN; never back out of the ingress
//! port, never from an uplink to another uplink; L2 control groups
//! and vendor control addresses (802.1D's STP, LACP, LLDP; Cisco's CDP,
//! VTP, PVST+; Extreme's EDP: see `wire::MacAddr::is_l2_control`) are not
//! forwarded. Every frame that is not delivered
//! is counted under a [`DropReason`] on its ingress port.

use std::net::Ipv4Addr;
use std::sync::Arc;

use wire::{
    ArpPacket, ETH_HEADER_LEN, ETHERTYPE_ARP, EthernetHeader, TPID_8021Q, VLAN_TAG_LEN,
    is_vlan_tpid,
};

use crate::mac_table::{Learned, MacTable, mac_key};
use crate::packet::{Packet, PacketPool};
use crate::port::PortId;
use crate::snapshot::{MAX_PORTS, PortState, Snapshot};
use crate::stats::{DropReason, PmdStats, PortCounters};
use crate::vlan::{Classified, Egress};

/// A learning event for the other PMDs' MAC tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEvent {
    /// (VLAN, MAC) key.
    pub key: u64,
    /// Port it was seen on.
    pub port: PortId,
    /// When, in switch seconds.
    pub seen: u32,
    /// The IPv4 address the host announced in an ARP frame, if this event
    /// is about that ([`MacTable::set_ipv4`]).
    pub ipv4: Option<Ipv4Addr>,
}

/// Per-PMD forwarding state: the MAC table replica and output queues.
#[derive(Debug)]
pub struct Pipeline {
    snap: Arc<Snapshot>,
    pub(crate) mac: MacTable,
    /// Frames waiting for each output port, indexed by port ID.
    pub(crate) out: Vec<Vec<Packet>>,
    /// Ports with frames in `out`, in first-use order.
    pub(crate) dirty: Vec<PortId>,
    /// Learning events to announce to the peers.
    pub(crate) sync_out: Vec<MacEvent>,
    targets: Vec<PortId>,
    stats: Arc<PmdStats>,
}

impl Pipeline {
    /// A pipeline on `snap`, counting into `stats`.
    pub fn new(snap: Arc<Snapshot>, stats: Arc<PmdStats>, burst: usize) -> Self {
        let mut mac = MacTable::new(snap.mac_table, MAX_PORTS);
        for &(key, port) in &snap.statics {
            mac.insert_static(key, port);
        }
        Pipeline {
            snap,
            mac,
            out: (0..MAX_PORTS).map(|_| Vec::with_capacity(burst)).collect(),
            dirty: Vec::with_capacity(MAX_PORTS),
            sync_out: Vec::with_capacity(burst * 2),
            targets: Vec::with_capacity(MAX_PORTS),
            stats,
        }
    }

    /// The snapshot in use.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    /// The MAC table replica.
    pub fn mac_table(&self) -> &MacTable {
        &self.mac
    }

    /// Switches to a new snapshot between bursts: ports that changed or
    /// disappeared lose their learned MACs, statics are reinstalled.
    pub fn set_snapshot(&mut self, snap: Arc<Snapshot>) {
        for (i, (old, new)) in self.snap.ports.iter().zip(snap.ports.iter()).enumerate() {
            let changed = match (old, new) {
                (Some(o), Some(n)) => o.spec != n.spec,
                (None, None) => false,
                _ => true,
            };
            if changed && let Ok(id) = u16::try_from(i) {
                self.mac.flush_port(PortId(id));
            }
        }
        self.mac.set_spec(snap.mac_table);
        self.mac.clear_static();
        for &(key, port) in &snap.statics {
            self.mac.insert_static(key, port);
        }
        self.snap = snap;
    }

    /// Forwards a burst received on `in_port`, leaving `pkts` empty. Output
    /// frames wait in the per-port queues until the PMD flushes them.
    pub fn process(
        &mut self,
        in_port: PortId,
        pkts: &mut Vec<Packet>,
        pool: &mut PacketPool,
        now: u32,
    ) {
        let snap = self.snap.clone();
        let stats = self.stats.clone();
        let ctr = &stats.ports[usize::from(in_port.0) % MAX_PORTS];
        let Some(inp) = snap.port(in_port) else {
            for p in pkts.drain(..) {
                ctr.drop(DropReason::PortUnknown);
                pool.free(p);
            }
            return;
        };
        // Frames of one flow come in runs (a TCP window, a generator's
        // burst): a frame whose headers equal the previous frame's takes
        // the same known-unicast decision without parsing, classifying,
        // learning or looking up again. Within a burst nothing else can
        // change that decision: the snapshot and `now` are fixed, peers'
        // learning is applied between bursts, and learning this frame's
        // source again changes nothing.
        let mut recent: Option<Recent> = None;
        for mut pkt in pkts.drain(..) {
            let key = burst_key(pkt.data());
            if let (Some(k), Some(r)) = (key, recent)
                && k == r.key
                && pkt.len() - r.hdr_len <= snap.mtu
            {
                pkt.set_origin(inp.spec.id.0);
                if let Err(reason) = self.emit(&snap, r.out, pkt, r.c, pool) {
                    ctr.drop(reason);
                    recent = None;
                }
                continue;
            }
            recent = None;
            match self.forward_one(&snap, inp, pkt, pool, now, ctr) {
                Ok(Some((out, c, hdr_len))) => {
                    recent = key.map(|key| Recent {
                        key,
                        out,
                        c,
                        hdr_len,
                    });
                }
                Ok(None) => {}
                Err(reason) => ctr.drop(reason),
            }
        }
    }

    /// Decides one frame. On `Err` the frame was freed and the caller
    /// counts the reason. A frame sent to exactly one port as known
    /// unicast returns that decision (port, classification, header
    /// length) for the next frames with the same headers.
    // 128 lines: one frame's decision in the order the semantics read
    // (ingress, reflection, learning, lookup, flood); kept whole on the hot path.
    #[inline]
    fn forward_one(
        &mut self,
        snap: &Snapshot,
        inp: &PortState,
        mut pkt: Packet,
        pool: &mut PacketPool,
        now: u32,
        ctr: &PortCounters,
    ) -> Result<Option<(PortId, Classified, usize)>, DropReason> {
        let in_id = inp.spec.id;
        pkt.set_origin(in_id.0);
        let verdict = Self::ingress(snap, inp, &pkt);
        let (h, c) = match verdict {
            Ok(v) => v,
            Err(r) => {
                pool.free(pkt);
                return Err(r);
            }
        };

        // A frame from the physical network with the source MAC of one of
        // our own guests is that guest's frame coming back (a loop, or the
        // other member of a team flooding it back): learning it would
        // steal the guest's MAC. One lookup, on uplink ingress only.
        if inp.is_uplink
            && let Some(owner) = self.mac.lookup(mac_key(c.vid, h.src), now)
            && owner != in_id
            && snap.port(owner).is_some_and(|p| !p.is_uplink)
        {
            pool.free(pkt);
            return Err(DropReason::Reflection);
        }

        // Learning: with MAC changes rejected only the assigned MAC is learned.
        let sec = inp.spec.security;
        if sec.mac_changes || inp.spec.mac.is_none_or(|m| m == h.src) {
            let key = mac_key(c.vid, h.src);
            let learned = self.mac.learn(key, in_id, now);
            match learned {
                Learned::PortLimit => ctr.mac_learn_limit.inc(),
                Learned::TableFull => ctr.mac_table_full.inc(),
                Learned::Moved { .. } => ctr.mac_moves.inc(),
                _ => {}
            }
            if learned.needs_sync() {
                self.sync_out.push(MacEvent {
                    key,
                    port: in_id,
                    seen: now,
                    ipv4: None,
                });
            }
            // ARP snooping: a guest's own address, for the gratuitous ARPs
            // its team sends when the guest's traffic moves to another
            // member. Never from the network side.
            if !inp.is_uplink
                && let Some(ip) = arp_sender(pkt.data(), &h)
                && self.mac.set_ipv4(key, in_id, ip)
            {
                self.sync_out.push(MacEvent {
                    key,
                    port: in_id,
                    seen: now,
                    ipv4: Some(ip),
                });
            }
        }

        let members = &snap.vlans[usize::from(c.vid)];
        if !h.dst.is_multicast()
            && let Some(out) = self.mac.lookup(mac_key(c.vid, h.dst), now)
        {
            if out == in_id {
                pool.free(pkt);
                return Err(DropReason::SamePort);
            }
            let out_is_uplink = snap.port(out).is_some_and(|p| p.is_uplink);
            if inp.is_uplink && out_is_uplink {
                pool.free(pkt);
                return Err(DropReason::UplinkToUplink);
            }
            let mut copies = false;
            for &(p, up) in &members.promiscuous {
                if p != in_id && p != out && !(inp.is_uplink && up) {
                    self.emit_copy(snap, p, &pkt, c, pool, ctr);
                    copies = true;
                }
            }
            self.emit(snap, out, pkt, c, pool)?;
            let hdr_len = ETH_HEADER_LEN + if c.tagged { VLAN_TAG_LEN } else { 0 };
            return Ok((!copies).then_some((out, c, hdr_len)));
        }

        // Flood within the VLAN.
        self.targets.clear();
        let unicast = !h.dst.is_multicast();
        for &(p, up) in &members.ports {
            if p == in_id || (inp.is_uplink && up) {
                continue;
            }
            if unicast
                && let Some(st) = snap.port(p)
                && !st.spec.security.mac_changes
                && !st.spec.security.promiscuous
                && st.spec.mac.is_some_and(|m| m != h.dst)
            {
                // This port only receives its assigned MAC.
                continue;
            }
            self.targets.push(p);
        }
        // Borrow the scratch list out of `self` so emitting can take `&mut self`.
        let targets = std::mem::take(&mut self.targets);
        let result = match targets.split_last() {
            None => {
                pool.free(pkt);
                Err(DropReason::NoDestination)
            }
            Some((&last, rest)) => {
                for &p in rest {
                    self.emit_copy(snap, p, &pkt, c, pool, ctr);
                }
                self.emit(snap, last, pkt, c, pool).map(|()| None)
            }
        };
        self.targets = targets;
        result
    }

    /// Ingress checks and VLAN classification.
    #[inline]
    fn ingress(
        snap: &Snapshot,
        inp: &PortState,
        pkt: &Packet,
    ) -> Result<(EthernetHeader, Classified), DropReason> {
        let h = EthernetHeader::parse(pkt.data()).ok_or(DropReason::Runt)?;
        if h.src.is_multicast() || h.src.is_zero() {
            return Err(DropReason::InvalidSrcMac);
        }
        if h.dst.is_l2_control() {
            return Err(DropReason::ReservedMulticast);
        }
        let c = inp.spec.vlan.classify(&h)?;
        if c.inner_tagged && snap.vlans[usize::from(c.vid)].untagged_egress {
            return Err(DropReason::VlanDoubleTagged);
        }
        let hdr = ETH_HEADER_LEN + if c.tagged { VLAN_TAG_LEN } else { 0 };
        if pkt.len() - hdr > snap.mtu {
            return Err(DropReason::Oversize);
        }
        if let Some(m) = inp.spec.mac
            && !inp.spec.security.forged_transmits
            && h.src != m
        {
            return Err(DropReason::ForgedTransmit);
        }
        Ok((h, c))
    }

    /// Sends a copy of `pkt` to `out`; a failed copy is counted as a drop.
    #[inline]
    fn emit_copy(
        &mut self,
        snap: &Snapshot,
        out: PortId,
        pkt: &Packet,
        c: Classified,
        pool: &mut PacketPool,
        ctr: &PortCounters,
    ) {
        let Some(mut copy) = pool.alloc() else {
            ctr.drop(DropReason::NoBuffer);
            return;
        };
        if !pkt.copy_into(&mut copy) {
            pool.free(copy);
            ctr.drop(DropReason::NoBuffer);
            return;
        }
        if let Err(r) = self.emit(snap, out, copy, c, pool) {
            ctr.drop(r);
        }
    }

    /// Applies the egress tag rule of `out` and queues the frame.
    #[inline]
    fn emit(
        &mut self,
        snap: &Snapshot,
        out: PortId,
        mut pkt: Packet,
        c: Classified,
        pool: &mut PacketPool,
    ) -> Result<(), DropReason> {
        let egress = snap.port(out).and_then(|p| p.spec.vlan.egress(c.vid));
        let ok = match egress {
            None => {
                pool.free(pkt);
                return Err(DropReason::EgressNotMember);
            }
            Some(Egress::Untagged) => !c.tagged || pkt.pop_vlan(),
            Some(Egress::Tagged) => {
                let tci = c.priority | c.vid;
                if c.tagged {
                    pkt.set_vlan_tci(tci);
                    true
                } else {
                    pkt.push_vlan(TPID_8021Q, tci)
                }
            }
        };
        if !ok {
            pool.free(pkt);
            return Err(DropReason::EgressTagFailed);
        }
        let q = &mut self.out[usize::from(out.0)];
        if q.is_empty() {
            self.dirty.push(out);
        }
        q.push(pkt);
        Ok(())
    }
}

/// The sender protocol address of an Ethernet/IPv4 ARP request or reply
/// that the frame's source sent about itself (sender hardware address =
/// source MAC), unless it is 0.0.0.0 (an RFC 5227 probe).
#[inline]
fn arp_sender(data: &[u8], h: &EthernetHeader) -> Option<Ipv4Addr> {
    if h.payload_ethertype() != ETHERTYPE_ARP {
        return None;
    }
    let arp = ArpPacket::new_checked(h.payload(data)?)?;
    if arp.sender_mac() != h.src {
        return None;
    }
    let ip = arp.sender_ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// A known-unicast decision of this burst (see [`Pipeline::process`]).
#[derive(Clone, Copy, Debug)]
struct Recent {
    key: BurstKey,
    out: PortId,
    c: Classified,
    hdr_len: usize,
}

/// The header bytes a decision depends on: the MAC addresses, the
/// ethertype or outer tag, and the inner TPID or ethertype after a tag
/// (bytes 0..18; 14..18 are zero for an untagged frame, where they are
/// payload). Held as integers, not as a byte array: an array assembled on
/// the stack in pieces and then compared with wide loads made each load
/// wait for its pieces' stores to drain from the store buffer, behind the
/// stores into guest memory that miss the cache (a third of the PMD
/// loop's own time at 64 bytes under perf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BurstKey {
    /// Bytes 0..8, little-endian.
    lo: u64,
    /// Bytes 8..16, little-endian.
    hi: u64,
    /// Bytes 16..18, little-endian.
    inner: u16,
}

/// The header bytes a forwarding decision depends on, or `None` for a
/// frame that always goes the full way: shorter than 18 bytes, or ARP
/// (whose body the switch may read).
#[inline]
fn burst_key(data: &[u8]) -> Option<BurstKey> {
    let h: &[u8; 18] = data.get(..18)?.try_into().ok()?;
    let word = |b: &[u8]| -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let (lo, hi) = (word(&h[..8]), word(&h[8..16]));
    let outer = u16::from_be_bytes([h[12], h[13]]);
    // The ethertype that says ARP or not, and the key's last part.
    let (ethertype, hi, inner) = if is_vlan_tpid(outer) {
        let inner = [h[16], h[17]];
        (u16::from_be_bytes(inner), hi, u16::from_le_bytes(inner))
    } else {
        // Untagged: bytes 14.. are payload, not part of the decision.
        (outer, hi & 0x0000_ffff_ffff_ffff, 0)
    };
    (ethertype != ETHERTYPE_ARP).then_some(BurstKey { lo, hi, inner })
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "pipeline_props.rs"]
mod props;
