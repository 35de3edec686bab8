//! The PMD side of a vhost-user port: queue objects implementing [`Port`].
//!
//! A port has 1 to 16 queue pairs (pair q: vring 2q, the guest's RX ring,
//! which the switch fills; vring 2q+1, the guest's TX ring, which the
//! switch drains), served by every PMD of the switch, each through its own
//! [`VhostQueue`]. This file holds the queue object and its [`Port`] glue;
//! each job has its own file:
//!
//! - **Receive** (guest TX ring, `rx.rs`): exactly one PMD polls each
//!   pair's ring, PMD `(rx_pmd + q) % pmds`; a PMD with several takes them
//!   in turn. It takes the ring's mutex with `try_lock` once per burst, so
//!   it never waits: if the control thread holds it (a hand-over in
//!   progress) the burst is simply empty.
//! - **Transmit** (guest RX ring, `tx.rs`): every PMD may send to the port,
//!   on pair `pmd % pairs` (or the first pair the guest runs, if it did not
//!   enable that one), so the ring sits behind a short mutex taken once
//!   per burst, as Open vSwitch does with its per-txq spinlock when a port
//!   has fewer tx queues than PMDs. With as many pairs as PMDs it is never
//!   contended.
//! - **Hand-over** (`handover.rs`, the state the control thread shares with
//!   the PMDs): the control thread installs, replaces and removes a ring
//!   (and its `Arc` memory snapshot) under the same mutex, for O(1) work.
//!   Taking the mutex therefore waits for the PMD's current burst to end:
//!   that is the "stop after the current burst" round trip that
//!   GET_VRING_BASE needs, and the old memory map is unmapped only after
//!   the PMD let go of it.
//! - **Counters** (`counters.rs`): per-packet failures are counters
//!   ([`VhostCounters`]), never logs.
//! - **virtio-net header** ([`super::net_hdr`]): its fields and lengths.
//!
//! Receive notifications (here: [`Port::wake_fd`], [`Port::set_rx_notify`]):
//! each PMD's wake fd for the port is an epoll set holding the kick
//! eventfds of the rings it polls (while they run) and a control eventfd
//! rung when one of them changes, so an adaptive PMD sleeps until the
//! guest kicks or a ring is (re)started. Kicks are suppressed
//! (`used.flags` NO_NOTIFY, or a stale `avail_event` with EVENT_IDX) except
//! while the PMD sleeps.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use super::counters::{VhostCounters, inc};
use super::handover::{ActiveRing, Shared, lock};
use super::rx::{Lent, RxChain};
use super::split_ring::Seg;
use super::tx::TxPlan;
use crate::packet::{Packet, PacketPool};
use crate::port::{Port, TxOutcome};

/// One PMD's queue object for a vhost-user port.
///
/// A burst runs in two passes: first every chain is popped and walked
/// (descriptors prefetched a burst ahead) and the guest buffers are
/// prefetched, then the frames are copied and the heads staged, in the
/// order they were popped. The cache misses on what the guest's CPU just
/// wrote (avail slots, descriptors, frame data) then overlap instead of
/// stalling the PMD once per frame.
#[derive(Debug)]
pub struct VhostQueue {
    pub(super) shared: Arc<Shared>,
    /// The PMD this queue object belongs to.
    pub(super) pmd: usize,
    /// Pairs whose receive ring this PMD polls (see [`Shared::new`]).
    pub(super) polls: Vec<usize>,
    /// Index into `polls` of the pair tried first in the next burst.
    pub(super) next_poll: usize,
    /// The pair this PMD transmits on while the guest runs its RX ring:
    /// `pmd % pairs`, so with as many pairs as PMDs no two PMDs share a
    /// ring. Otherwise the first pair whose RX ring runs.
    pub(super) home: usize,
    /// Buffers of every chain of the current burst.
    pub(super) segs: Vec<Seg>,
    /// Receive: the chains of the burst.
    pub(super) rx_chains: Vec<RxChain>,
    /// Transmit: heads reserved in this burst, with the end index of
    /// their buffers in `segs`.
    pub(super) tx_heads: Vec<(u16, usize)>,
    /// Transmit: what happens to each frame of the burst.
    pub(super) tx_plan: Vec<TxPlan>,
    /// Receive: what the last burst lent, until `rx_complete`.
    pub(super) lent: Option<Lent>,
}

impl VhostQueue {
    /// PMD `pmd`'s queue object for the port of `shared`.
    pub(crate) fn new(shared: Arc<Shared>, pmd: usize) -> Self {
        let pairs = shared.pairs.len();
        VhostQueue {
            polls: (0..pairs).filter(|&q| shared.poller(q) == pmd).collect(),
            next_poll: 0,
            home: pmd % pairs.max(1),
            pmd,
            shared,
            segs: Vec::with_capacity(128),
            rx_chains: Vec::with_capacity(64),
            tx_heads: Vec::with_capacity(64),
            tx_plan: Vec::with_capacity(64),
            lent: None,
        }
    }
}

/// Interrupts the guest (writes the ring's call eventfd), if it gave one.
fn notify(r: &ActiveRing, c: &VhostCounters) {
    if let Some(call) = &r.call {
        match (&*call).write_all(&1u64.to_ne_bytes()) {
            Ok(_) => inc(&c.guest_notifies),
            Err(_) => inc(&c.notify_errors),
        }
    }
}

/// Publishes the used entries staged in this burst and interrupts the
/// guest if it asked for it; a ring whose indexes broke is stopped.
pub(super) fn publish(r: &mut ActiveRing, c: &VhostCounters) {
    match r.ring.publish(&r.mem) {
        Ok(true) => notify(r, c),
        Ok(false) => {}
        Err(_) => {
            r.broken = true;
            inc(&c.ring_broken);
        }
    }
}

impl Port for VhostQueue {
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<Packet>, max: usize) -> usize {
        self.receive(pool, out, max, false)
    }

    fn rx_burst_lending(
        &mut self,
        pool: &mut PacketPool,
        out: &mut Vec<Packet>,
        max: usize,
    ) -> usize {
        self.receive(pool, out, max, true)
    }

    fn rx_complete(&mut self) {
        self.return_lent();
    }

    fn takes_tails(&self) -> bool {
        true
    }

    fn tx_burst(&mut self, pkts: &mut Vec<Packet>, pool: &mut PacketPool) -> TxOutcome {
        self.transmit(pkts, pool)
    }

    fn wake_fd(&self) -> Option<RawFd> {
        let w = self.shared.wakes.get(self.pmd)?;
        Some(w.epoll.0.as_raw_fd())
    }

    fn set_rx_notify(&mut self, on: bool) -> bool {
        let shared = &*self.shared;
        let mut pending = false;
        for &q in &self.polls {
            let Some(pair) = shared.pairs.get(q) else {
                continue;
            };
            let mut guard = lock(&pair.rx);
            pending |= match guard.as_mut().filter(|r| !r.broken) {
                Some(r) => match r.ring.set_kick_notify(&r.mem, on) {
                    Ok(p) => p,
                    Err(_) => {
                        r.broken = true;
                        inc(&shared.counters.ring_broken);
                        false
                    }
                },
                None => false,
            };
            if !on && let Some(kick) = guard.as_ref().and_then(|r| r.kick.as_ref()) {
                // The frontend's eventfd may be blocking: read only if ready.
                if crate::sys::poll_readable(&[kick.as_raw_fd()], 0).unwrap_or(false) {
                    let mut b = [0u8; 8];
                    let _ = (&*kick).read(&mut b);
                }
            }
        }
        if !on {
            shared.drain_bell(self.pmd);
        }
        pending
    }
}

#[cfg(test)]
mod tests {
    use vm_memory::{Bytes, GuestAddress};

    use std::sync::atomic::Ordering;

    use super::*;
    use crate::packet::TAIL_MIN_HEAD;
    use crate::vhost::guest_mem::{GuestMem, Mem};
    use crate::vhost::net_hdr::{self, NetHdr};
    use crate::vhost::split_ring::{RingAddrs, SplitRing, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};

    const SIZE: u16 = 8;
    const A: RingAddrs = RingAddrs {
        size: SIZE,
        desc: GuestAddress(0),
        avail: GuestAddress(0x1000),
        used: GuestAddress(0x2000),
    };

    fn put_desc(m: &GuestMem, idx: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        m.write(GuestAddress(16 * u64::from(idx)), &d)
            .expect("desc");
    }

    fn offer(m: &GuestMem, heads: &[u16]) {
        for (i, &h) in heads.iter().enumerate() {
            m.write(GuestAddress(0x1004 + 2 * i as u64), &h.to_le_bytes())
                .expect("avail");
        }
        m.write(GuestAddress(0x1002), &(heads.len() as u16).to_le_bytes())
            .expect("avail idx");
    }

    /// The `num_buffers` field of the virtio-net header at the start of `hdr`.
    fn num_buffers(hdr: &[u8]) -> u16 {
        let at = net_hdr::NUM_BUFFERS.start;
        u16::from_le_bytes([hdr[at], hdr[at + 1]])
    }

    fn used(m: &GuestMem, i: u64) -> (u32, u32) {
        let id: u32 = m.mem().read_obj(GuestAddress(0x2004 + 8 * i)).expect("id");
        let len: u32 = m.mem().read_obj(GuestAddress(0x2008 + 8 * i)).expect("len");
        (id, len)
    }

    /// A queue whose ring `which` (rx or tx side) runs on fresh memory.
    fn queue(tx_side: bool, mrg: bool) -> (VhostQueue, Arc<GuestMem>) {
        let m = Mem::from_ranges(&[(GuestAddress(0), 0x10_0000)]).expect("memory");
        let mem = Arc::new(GuestMem::from_mmap(m, Vec::new()));
        let shared = Arc::new(Shared::single().expect("shared"));
        let ring = SplitRing::new(&mem, A, 0, false).expect("ring");
        let active = ActiveRing {
            ring,
            mem: mem.clone(),
            call: None,
            kick: None,
            hdr: NetHdr {
                len: net_hdr::LEN,
                mrg_rxbuf: mrg,
            },
            broken: false,
        };
        let slot = if tx_side {
            &shared.pairs[0].tx
        } else {
            &shared.pairs[0].rx
        };
        *lock(slot) = Some(active);
        (VhostQueue::new(shared, 0), mem)
    }

    #[test]
    fn mergeable_rx_spans_chains_and_sets_num_buffers() {
        let (mut q, mem) = queue(true, true);
        for i in 0..4u16 {
            put_desc(
                &mem,
                i,
                0x8000 + 0x100 * u64::from(i),
                64,
                VRING_DESC_F_WRITE,
                0,
            );
        }
        offer(&mem, &[0, 1, 2, 3]);
        let frame: Vec<u8> = (0..150u8).collect();
        let mut pool = PacketPool::new(4, 2048);
        let mut pkts = vec![Packet::from_frame(&frame)];
        let out = q.tx_burst(&mut pkts, &mut pool);
        assert_eq!((out.sent, out.dropped), (1, 0));
        // 12 + 150 = 162 bytes: 64 + 64 + 34 in three buffers.
        assert_eq!(used(&mem, 0), (0, 64));
        assert_eq!(used(&mem, 1), (1, 64));
        assert_eq!(used(&mem, 2), (2, 34));
        let idx: u16 = mem.mem().read_obj(GuestAddress(0x2002)).expect("used idx");
        assert_eq!(idx, 3);
        let mut got = vec![0u8; 64];
        mem.read(GuestAddress(0x8000), &mut got).expect("read");
        assert_eq!(num_buffers(&got), 3, "num_buffers");
        assert_eq!(&got[net_hdr::LEN..], &frame[..52]);
        // A frame that needs more than the one buffer left is dropped and
        // the buffer stays available.
        let mut pkts = vec![Packet::from_frame(&frame)];
        let out = q.tx_burst(&mut pkts, &mut pool);
        assert_eq!((out.sent, out.dropped), (0, 1));
        assert_eq!(q.shared.counters.snapshot().tx_ring_full, 1);
        let idx: u16 = mem.mem().read_obj(GuestAddress(0x2002)).expect("used idx");
        assert_eq!(idx, 3);
    }

    #[test]
    fn without_mrg_rxbuf_a_small_buffer_drops_the_frame() {
        let (mut q, mem) = queue(true, false);
        put_desc(&mem, 0, 0x8000, 64, VRING_DESC_F_WRITE, 0);
        offer(&mem, &[0]);
        let mut pool = PacketPool::new(4, 2048);
        let mut pkts = vec![Packet::from_frame(&[0u8; 100])];
        assert_eq!(q.tx_burst(&mut pkts, &mut pool).dropped, 1);
        let mut pkts = vec![Packet::from_frame(&[0u8; 40])];
        assert_eq!(q.tx_burst(&mut pkts, &mut pool).sent, 1);
        assert_eq!(used(&mem, 0), (0, 52));
    }

    #[test]
    fn malformed_tx_chains_come_back_empty_and_counted() {
        let (mut q, mem) = queue(false, true);
        // 0: good two-part chain (header, then frame).
        let frame = [0xabu8; 60];
        mem.write(GuestAddress(0x8000), &[0u8; net_hdr::LEN])
            .expect("hdr");
        mem.write(GuestAddress(0x9000), &frame).expect("frame");
        put_desc(&mem, 0, 0x8000, 12, VRING_DESC_F_NEXT, 1);
        put_desc(&mem, 1, 0x9000, 60, 0, 0);
        // 2: loops on itself. 3: outside memory. 4: device-writable.
        put_desc(&mem, 2, 0x8000, 12, VRING_DESC_F_NEXT, 2);
        put_desc(&mem, 3, 0xff_ffff_0000, 100, 0, 0);
        put_desc(&mem, 4, 0x9000, 72, VRING_DESC_F_WRITE, 0);
        // 5: too short to hold an Ethernet header.
        put_desc(&mem, 5, 0x9000, 20, 0, 0);
        offer(&mem, &[2, 0, 3, 4, 5]);
        let mut pool = PacketPool::new(8, 2048);
        let mut out = Vec::new();
        assert_eq!(q.rx_burst(&mut pool, &mut out, 32), 1);
        assert_eq!(out[0].data(), &frame[..]);
        let c = q.shared.counters.snapshot();
        assert_eq!((c.rx_bad_chain, c.rx_bad_frame), (3, 1));
        // Every head is back, in order, with length 0.
        let heads: Vec<(u32, u32)> = (0..5).map(|i| used(&mem, i)).collect();
        assert_eq!(heads, [(2, 0), (0, 0), (3, 0), (4, 0), (5, 0)]);
    }

    fn used_idx(m: &GuestMem) -> u16 {
        m.mem().read_obj(GuestAddress(0x2002)).expect("used idx")
    }

    /// A guest TX ring offering `frames` (header and frame in one buffer
    /// each, at 0x8000 + 0x1000 * i).
    fn tx_ring_with(frames: &[Vec<u8>]) -> (VhostQueue, Arc<GuestMem>) {
        let (q, mem) = queue(false, true);
        for (i, f) in frames.iter().enumerate() {
            let addr = 0x8000 + 0x1000 * i as u64;
            mem.write(GuestAddress(addr), &[0u8; net_hdr::LEN])
                .expect("hdr");
            mem.write(GuestAddress(addr + net_hdr::LEN as u64), f)
                .expect("frame");
            put_desc(&mem, i as u16, addr, (net_hdr::LEN + f.len()) as u32, 0, 0);
        }
        let heads: Vec<u16> = (0..frames.len() as u16).collect();
        offer(&mem, &heads);
        (q, mem)
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn lending_receive_keeps_large_frames_in_guest_memory_until_complete() {
        let big = pattern(1514, 1);
        let small = pattern(100, 2);
        let (mut q, mem) = tx_ring_with(&[big.clone(), small.clone()]);
        let mut pool = PacketPool::new(8, 2048);
        let mut out = Vec::new();
        assert_eq!(q.rx_burst_lending(&mut pool, &mut out, 32), 2);
        // The big frame: its headers in the buffer, the rest lent.
        assert_eq!(out[0].len(), 1514);
        assert_eq!(out[0].data(), &big[..TAIL_MIN_HEAD]);
        assert_eq!(out[0].tail().map(|t| t.len()), Some(1514 - TAIL_MIN_HEAD));
        // The small one is copied whole.
        assert!(out[1].tail().is_none());
        assert_eq!(out[1].data(), &small[..]);
        assert_eq!(q.shared.counters.snapshot().rx_zero_copy, 1);
        // Nothing is returned to the guest while the tails are read, and a
        // ring stopped now would restart at the lent heads.
        assert_eq!(used_idx(&mem), 0);
        assert_eq!(
            lock(&q.shared.pairs[0].rx)
                .as_ref()
                .map(|r| r.ring.next_avail()),
            Some(0)
        );
        // Materialized, the frame is whole.
        let mut copy = pool.alloc().expect("packet");
        assert!(out[0].copy_into(&mut copy));
        copy.materialize();
        assert_eq!(copy.data(), &big[..]);
        pool.free(copy);
        pool.free_all(&mut out);
        q.rx_complete();
        assert_eq!(used_idx(&mem), 2);
        assert_eq!((used(&mem, 0), used(&mem, 1)), ((0, 0), (1, 0)));
        assert_eq!(
            lock(&q.shared.pairs[0].rx)
                .as_ref()
                .map(|r| r.ring.next_avail()),
            Some(2)
        );
        // Plain `rx_burst` never lends.
        let (mut q, _mem) = tx_ring_with(std::slice::from_ref(&big));
        assert_eq!(q.rx_burst(&mut pool, &mut out, 32), 1);
        assert!(out[0].tail().is_none());
        assert_eq!(out[0].data(), &big[..]);
    }

    #[test]
    fn a_lent_frame_is_copied_once_into_the_receiving_guest() {
        let big = pattern(1514, 3);
        let (mut rxq, _src) = tx_ring_with(std::slice::from_ref(&big));
        let (mut txq, dst) = queue(true, true);
        // Receive buffers of 1024 bytes: the frame spans two of them.
        for i in 0..2u16 {
            put_desc(
                &dst,
                i,
                0x8000 + 0x1000 * u64::from(i),
                1024,
                VRING_DESC_F_WRITE,
                0,
            );
        }
        offer(&dst, &[0, 1]);
        let mut pool = PacketPool::new(8, 2048);
        let mut pkts = Vec::new();
        assert_eq!(rxq.rx_burst_lending(&mut pool, &mut pkts, 32), 1);
        // An 802.1Q tag pushed on the way does not disturb the tail.
        assert!(pkts[0].push_vlan(0x8100, 100));
        assert!(txq.takes_tails());
        let out = txq.tx_burst(&mut pkts, &mut pool);
        assert_eq!((out.sent, out.bytes), (1, 1518));
        rxq.rx_complete();
        let mut want = big[..12].to_vec();
        want.extend_from_slice(&[0x81, 0x00, 0x00, 100]);
        want.extend_from_slice(&big[12..]);
        let mut got = vec![0u8; net_hdr::LEN + 1518];
        dst.read(GuestAddress(0x8000), &mut got[..1024])
            .expect("first");
        dst.read(GuestAddress(0x9000), &mut got[1024..])
            .expect("second");
        assert_eq!(num_buffers(&got), 2, "num_buffers");
        assert_eq!(&got[net_hdr::LEN..], &want[..]);
        assert_eq!(
            (used(&dst, 0), used(&dst, 1)),
            ((0, 1024), (1, (net_hdr::LEN + 1518 - 1024) as u32))
        );
    }

    #[test]
    fn a_ring_stopped_while_frames_are_lent_gets_none_of_their_heads() {
        let big = pattern(600, 4);
        let (mut q, mem) = tx_ring_with(&[big.clone(), big.clone()]);
        let mut pool = PacketPool::new(8, 2048);
        let mut out = Vec::new();
        assert_eq!(q.rx_burst_lending(&mut pool, &mut out, 32), 2);
        // The control thread stops the ring (GET_VRING_BASE) and starts a
        // new one at the base it got.
        let old = lock(&q.shared.pairs[0].rx).take().expect("ring");
        let base = old.ring.next_avail();
        assert_eq!(base, 0, "lent heads count as not consumed");
        let ring = SplitRing::new(&mem, A, base, false).expect("ring");
        *lock(&q.shared.pairs[0].rx) = Some(ActiveRing { ring, ..old });
        // The tails can still be read: the burst holds the old mapping.
        out[1].materialize();
        assert_eq!(out[1].data(), &big[..]);
        pool.free_all(&mut out);
        q.rx_complete();
        assert_eq!(used_idx(&mem), 0, "nothing staged into the new ring");
        // The new ring hands the same frames out again.
        assert_eq!(q.rx_burst(&mut pool, &mut out, 32), 2);
        assert_eq!(out[0].data(), &big[..]);
        assert_eq!(used_idx(&mem), 2);
    }

    #[test]
    fn a_frame_whose_end_spans_buffers_is_copied_whole() {
        let (mut q, mem) = queue(false, true);
        let big = pattern(1000, 5);
        mem.write(GuestAddress(0x8000), &[0u8; net_hdr::LEN])
            .expect("hdr");
        mem.write(GuestAddress(0x8000 + net_hdr::LEN as u64), &big[..500])
            .expect("a");
        mem.write(GuestAddress(0x9000), &big[500..]).expect("b");
        put_desc(&mem, 0, 0x8000, 512, VRING_DESC_F_NEXT, 1);
        put_desc(&mem, 1, 0x9000, 500, 0, 0);
        offer(&mem, &[0]);
        let mut pool = PacketPool::new(8, 2048);
        let mut out = Vec::new();
        assert_eq!(q.rx_burst_lending(&mut pool, &mut out, 32), 1);
        assert!(out[0].tail().is_none());
        assert_eq!(out[0].data(), &big[..]);
        assert_eq!(used_idx(&mem), 1);
        pool.free_all(&mut out);
        q.rx_complete();
        assert_eq!(used_idx(&mem), 1);
    }

    /// Rings of several queue pairs in one guest memory: vring `v` has
    /// its descriptor table at `0x10000 * (v + 1)`, avail and used rings
    /// 0x1000 and 0x2000 above, buffers 0x8000 above.
    mod multiqueue {
        use super::*;

        fn base(vring: usize) -> u64 {
            0x1_0000 * (vring as u64 + 1)
        }

        fn install(shared: &Shared, mem: &Arc<GuestMem>, vring: usize) {
            let b = base(vring);
            let addrs = RingAddrs {
                size: SIZE,
                desc: GuestAddress(b),
                avail: GuestAddress(b + 0x1000),
                used: GuestAddress(b + 0x2000),
            };
            let ring = SplitRing::new(mem, addrs, 0, false).expect("ring");
            let active = ActiveRing {
                ring,
                mem: mem.clone(),
                call: None,
                kick: None,
                hdr: NetHdr {
                    len: net_hdr::LEN,
                    mrg_rxbuf: true,
                },
                broken: false,
            };
            let pair = &shared.pairs[vring / 2];
            *lock(if vring.is_multiple_of(2) {
                &pair.tx
            } else {
                &pair.rx
            }) = Some(active);
        }

        /// A port of `pairs` pairs over `pmds` PMDs with every ring running.
        fn port(pairs: usize, pmds: usize) -> (Arc<Shared>, Arc<GuestMem>) {
            let m = Mem::from_ranges(&[(GuestAddress(0), 0x20_0000)]).expect("memory");
            let mem = Arc::new(GuestMem::from_mmap(m, Vec::new()));
            let shared = Arc::new(Shared::new(pairs, pmds, 0).expect("shared"));
            for v in 0..2 * pairs {
                install(&shared, &mem, v);
            }
            (shared, mem)
        }

        /// Puts `frames` (60 bytes each, first byte `tag + i`) into the
        /// guest TX ring `vring`, after the `done` ones offered before.
        fn guest_sends(mem: &GuestMem, vring: usize, done: u16, tags: &[u8]) {
            let b = base(vring);
            for (i, &t) in tags.iter().enumerate() {
                let slot = done + i as u16;
                let buf = b + 0x8000 + 0x100 * u64::from(slot);
                let mut bytes = vec![0u8; 72];
                bytes[net_hdr::LEN] = t;
                mem.write(GuestAddress(buf), &bytes).expect("frame");
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&buf.to_le_bytes());
                d[8..12].copy_from_slice(&72u32.to_le_bytes());
                mem.write(GuestAddress(b + 16 * u64::from(slot)), &d)
                    .expect("desc");
                mem.write(
                    GuestAddress(b + 0x1004 + 2 * u64::from(slot)),
                    &slot.to_le_bytes(),
                )
                .expect("avail");
            }
            let idx = done + tags.len() as u16;
            mem.write(GuestAddress(b + 0x1002), &idx.to_le_bytes())
                .expect("avail idx");
        }

        /// Offers `n` writable 256-byte buffers on the guest RX ring `vring`.
        fn guest_offers(mem: &GuestMem, vring: usize, n: u16) {
            let b = base(vring);
            for slot in 0..n {
                let buf = b + 0x8000 + 0x100 * u64::from(slot);
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&buf.to_le_bytes());
                d[8..12].copy_from_slice(&256u32.to_le_bytes());
                d[12..14].copy_from_slice(&VRING_DESC_F_WRITE.to_le_bytes());
                mem.write(GuestAddress(b + 16 * u64::from(slot)), &d)
                    .expect("desc");
                mem.write(
                    GuestAddress(b + 0x1004 + 2 * u64::from(slot)),
                    &slot.to_le_bytes(),
                )
                .expect("avail");
            }
            mem.write(GuestAddress(b + 0x1002), &n.to_le_bytes())
                .expect("avail idx");
        }

        fn used_count(mem: &GuestMem, vring: usize) -> u16 {
            mem.mem()
                .read_obj(GuestAddress(base(vring) + 0x2002))
                .expect("used idx")
        }

        fn tags(out: &[Packet]) -> Vec<u8> {
            out.iter().map(|p| p.data()[0]).collect()
        }

        #[test]
        fn each_pmd_receives_its_own_pair_and_sends_on_it() {
            let (shared, mem) = port(2, 2);
            let mut q0 = VhostQueue::new(shared.clone(), 0);
            let mut q1 = VhostQueue::new(shared.clone(), 1);
            assert!(q0.polls_rx() && q1.polls_rx());
            assert_ne!(q0.wake_fd(), q1.wake_fd(), "one wake set per PMD");
            guest_sends(&mem, 1, 0, &[0xa0, 0xa1]);
            guest_sends(&mem, 3, 0, &[0xb0]);
            let mut pool = PacketPool::new(16, 2048);
            let mut out = Vec::new();
            assert_eq!(q1.rx_burst(&mut pool, &mut out, 32), 1);
            assert_eq!(tags(&out), [0xb0]);
            pool.free_all(&mut out);
            assert_eq!(q0.rx_burst(&mut pool, &mut out, 32), 2);
            assert_eq!(tags(&out), [0xa0, 0xa1]);
            pool.free_all(&mut out);
            assert_eq!(q0.rx_burst(&mut pool, &mut out, 32), 0);
            assert_eq!((used_count(&mem, 1), used_count(&mem, 3)), (2, 1));
            // Each PMD transmits on its own pair.
            guest_offers(&mem, 0, 4);
            guest_offers(&mem, 2, 4);
            let mut pkts = vec![Packet::from_frame(&[7u8; 60])];
            assert_eq!(q1.tx_burst(&mut pkts, &mut pool).sent, 1);
            assert_eq!((used_count(&mem, 0), used_count(&mem, 2)), (0, 1));
            let mut pkts = vec![
                Packet::from_frame(&[7u8; 60]),
                Packet::from_frame(&[8u8; 60]),
            ];
            assert_eq!(q0.tx_burst(&mut pkts, &mut pool).sent, 2);
            assert_eq!((used_count(&mem, 0), used_count(&mem, 2)), (2, 1));
            let frames: Vec<(u64, u64)> = shared
                .pairs
                .iter()
                .map(|p| {
                    (
                        p.rx_frames.load(Ordering::Relaxed),
                        p.tx_frames.load(Ordering::Relaxed),
                    )
                })
                .collect();
            assert_eq!(frames, [(2, 2), (1, 1)]);
        }

        #[test]
        fn a_pmd_whose_pair_the_guest_did_not_enable_sends_on_a_running_one() {
            let (shared, mem) = port(2, 2);
            // The guest runs one queue pair: pair 1's rings never start.
            drop(lock(&shared.pairs[1].tx).take());
            drop(lock(&shared.pairs[1].rx).take());
            let mut q1 = VhostQueue::new(shared.clone(), 1);
            guest_offers(&mem, 0, 4);
            let mut pool = PacketPool::new(16, 2048);
            let mut pkts = vec![Packet::from_frame(&[7u8; 60])];
            assert_eq!(q1.tx_burst(&mut pkts, &mut pool).sent, 1);
            assert_eq!(used_count(&mem, 0), 1);
            assert_eq!(shared.counters.snapshot().tx_no_ring, 0);
            let mut out = Vec::new();
            assert_eq!(q1.rx_burst(&mut pool, &mut out, 32), 0);
        }

        #[test]
        fn one_pmd_polling_two_pairs_takes_turns_and_skips_an_empty_one() {
            let (shared, mem) = port(2, 1);
            let mut q = VhostQueue::new(shared, 0);
            guest_sends(&mem, 1, 0, &[0xa0, 0xa1, 0xa2]);
            guest_sends(&mem, 3, 0, &[0xb0, 0xb1, 0xb2]);
            let mut pool = PacketPool::new(16, 2048);
            let mut out = Vec::new();
            let mut bursts = Vec::new();
            while q.rx_burst(&mut pool, &mut out, 2) > 0 {
                bursts.push(tags(&out));
                pool.free_all(&mut out);
            }
            assert_eq!(
                bursts,
                [vec![0xa0, 0xa1], vec![0xb0, 0xb1], vec![0xa2], vec![0xb2]]
            );
            // Pair 0 empty: pair 1's frames come on the first try.
            guest_sends(&mem, 3, 3, &[0xb3]);
            assert_eq!(q.rx_burst(&mut pool, &mut out, 2), 1);
            assert_eq!(tags(&out), [0xb3]);
        }

        #[test]
        fn more_pmds_than_pairs_leave_some_pmds_transmit_only() {
            let (shared, _mem) = port(2, 3);
            let polls: Vec<bool> = (0..3)
                .map(|i| VhostQueue::new(shared.clone(), i).polls_rx())
                .collect();
            assert_eq!(polls, [true, true, false]);
            let shared = Arc::new(Shared::new(3, 2, 1).expect("shared"));
            assert_eq!(
                (0..3).map(|q| shared.poller(q)).collect::<Vec<_>>(),
                [1, 0, 1]
            );
        }
    }
}
