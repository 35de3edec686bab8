//! The in-memory ring port: for unit tests, property tests and benches.
//!
//! Each queue pair is two SPSC rings. The switch side ([`MemPortQueue`])
//! receives from the "to switch" ring and transmits into the "from switch"
//! ring; the peer side ([`MemPortPeer`]) — a test or a generator — does the
//! opposite. Frames move as buffers, without copies.

use std::os::fd::RawFd;
use std::sync::Arc;

use super::{Port, TxOutcome};
use crate::doorbell::Doorbell;
use crate::packet::{Packet, PacketPool};
use crate::spsc::{Consumer, Producer, spsc_ring};

/// The switch's side of one queue pair of a memory port.
#[derive(Debug)]
pub struct MemPortQueue {
    rx: Consumer<Packet>,
    tx: Producer<Packet>,
    doorbell: Option<Arc<Doorbell>>,
}

/// The peer's side of every queue pair of a memory port.
#[derive(Debug)]
pub struct MemPortPeer {
    to_switch: Vec<Producer<Packet>>,
    from_switch: Vec<Consumer<Packet>>,
    doorbells: Vec<Option<Arc<Doorbell>>>,
}

/// A memory port with `queues` queue pairs whose rings hold `depth` frames.
/// Each queue has a doorbell (an eventfd) so a sleeping PMD wakes when the
/// peer sends; if the eventfd cannot be created the queue works without.
pub fn mem_port(queues: usize, depth: usize) -> (MemPortPeer, Vec<MemPortQueue>) {
    let mut peer = MemPortPeer {
        to_switch: Vec::new(),
        from_switch: Vec::new(),
        doorbells: Vec::new(),
    };
    let mut qs = Vec::new();
    for _ in 0..queues.max(1) {
        let (in_p, in_c) = spsc_ring(depth);
        let (out_p, out_c) = spsc_ring(depth);
        let doorbell = Doorbell::new().ok().map(Arc::new);
        peer.to_switch.push(in_p);
        peer.from_switch.push(out_c);
        peer.doorbells.push(doorbell.clone());
        qs.push(MemPortQueue {
            rx: in_c,
            tx: out_p,
            doorbell,
        });
    }
    (peer, qs)
}

impl MemPortPeer {
    /// Number of queue pairs.
    pub fn queues(&self) -> usize {
        self.to_switch.len()
    }

    /// Offers one frame to the switch on queue `q`; gives it back if full.
    pub fn send(&mut self, q: usize, p: Packet) -> Result<(), Packet> {
        let res = match self.to_switch.get_mut(q) {
            Some(r) => r.push(p),
            None => Err(p),
        };
        self.wake(q);
        res
    }

    fn wake(&self, q: usize) {
        if let Some(Some(d)) = self.doorbells.get(q) {
            d.ring_if_armed();
        }
    }

    /// Offers frames from the front of `pkts` on queue `q`; returns how many
    /// were taken.
    pub fn send_burst(&mut self, q: usize, pkts: &mut Vec<Packet>) -> usize {
        let n = self.to_switch.get_mut(q).map_or(0, |r| r.push_burst(pkts));
        if n > 0 {
            self.wake(q);
        }
        n
    }

    /// Takes up to `max` frames the switch sent on queue `q`.
    pub fn recv_burst(&mut self, q: usize, out: &mut Vec<Packet>, max: usize) -> usize {
        self.from_switch
            .get_mut(q)
            .map_or(0, |r| r.pop_burst(out, max))
    }

    /// Takes every frame the switch sent, on every queue.
    pub fn recv_all(&mut self, out: &mut Vec<Packet>) -> usize {
        let mut n = 0;
        for r in &mut self.from_switch {
            n += r.pop_burst(out, usize::MAX);
        }
        n
    }

    /// Frames waiting for the switch on every queue.
    pub fn pending_to_switch(&self) -> usize {
        self.to_switch.iter().map(|r| r.len()).sum()
    }
}

impl Port for MemPortQueue {
    #[inline]
    fn rx_burst(&mut self, _pool: &mut PacketPool, out: &mut Vec<Packet>, max: usize) -> usize {
        self.rx.pop_burst(out, max)
    }

    #[inline]
    fn tx_burst(&mut self, pkts: &mut Vec<Packet>, pool: &mut PacketPool) -> TxOutcome {
        let bytes_before: usize = pkts.iter().map(Packet::len).sum();
        let sent = self.tx.push_burst(pkts);
        let left: usize = pkts.iter().map(Packet::len).sum();
        let dropped = pkts.len();
        pool.free_all(pkts);
        TxOutcome {
            sent,
            bytes: bytes_before - left,
            dropped,
        }
    }

    fn wake_fd(&self) -> Option<RawFd> {
        self.doorbell.as_ref().map(|d| d.fd())
    }

    fn set_rx_notify(&mut self, on: bool) -> bool {
        let Some(d) = &self.doorbell else {
            return !self.rx.is_empty();
        };
        if on {
            d.arm();
            !self.rx.is_empty()
        } else {
            d.disarm();
            false
        }
    }
}
