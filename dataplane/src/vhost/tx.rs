//! Transmit: a PMD copies packets into the guest's RX ring (vring `2q` of
//! pair `q`), a frame spanning several chains with mergeable receive
//! buffers.
//!
//! Every PMD may send to the port, on pair `pmd % pairs` (or the first pair
//! the guest runs, if it did not enable that one), so the ring sits behind
//! a short mutex taken once per burst, as Open vSwitch does with its
//! per-txq spinlock when a port has fewer tx queues than PMDs. With as many
//! pairs as PMDs it is never contended.
//!
//! A burst runs in two passes: first a chain (or, with MRG_RXBUF, enough
//! chains) is reserved and walked for every frame and its buffers
//! prefetched for writing, then the frames are copied in (a lent tail
//! straight from the sending guest's memory) and the heads staged, in
//! frame order.

use std::sync::atomic::Ordering;

use vm_memory::{GuestAddress, VolatileSlice};

use super::counters::inc;
use super::guest_mem::{GuestMem, MemError, copy_forward, prefetch, write_at};
use super::handover::{ActiveRing, lock};
use super::net_hdr;
use super::port::{VhostQueue, publish};
use super::split_ring::Seg;
use crate::packet::{Packet, PacketPool};
#[cfg(doc)]
use crate::port::Port;
use crate::port::TxOutcome;

/// The virtio-net header of a frame in one buffer (no offloads,
/// `num_buffers` 1; a [`net_hdr::LEN_LEGACY`]-byte header is its first
/// [`net_hdr::LEN_LEGACY`] bytes). A `static`, not built on the stack per
/// frame: the copy into the guest then loads bytes no store is pending on.
/// Built on the stack, the header's 8-byte loads straddled the stores that
/// had just written it, store forwarding failed, and each load waited for
/// the store buffer to drain, including the previous frame's stores into
/// the guest, which miss the cache (perf at 64 bytes: 82% of the copy's
/// samples on that load; the copy fell from 22% to 7% of the PMD's time).
static NET_HDR_ONE_BUFFER: [u8; net_hdr::LEN] = {
    let mut h = [0u8; net_hdr::LEN];
    let one = 1u16.to_le_bytes();
    h[net_hdr::NUM_BUFFERS.start] = one[0];
    h[net_hdr::NUM_BUFFERS.start + 1] = one[1];
    h
};

/// The first pass's decision for one frame to send.
#[derive(Clone, Copy, Debug)]
pub(super) enum TxPlan {
    /// Copy into the chains `tx_heads[from..to]` (buffers from `seg`).
    Send { from: usize, to: usize, seg: usize },
    /// A chain was malformed: `tx_heads[from..to]` go back empty.
    Bad { from: usize, to: usize },
    /// No room in the guest's RX ring.
    Full,
    /// The ring broke during this burst.
    NoRing,
}

/// How many frames ahead of its copy `tx_burst` prefetches a lent tail.
/// Paired 100 ms slices, with against without: two ahead +1.5%, +4.1%
/// and -0.5% at 1518 bytes in three runs, +5.5% at 512 (won 180 of 197);
/// one ahead +4%, four ahead +3.5%.
const TAIL_PREFETCH_AHEAD: usize = 2;

/// Prefetches every line of a packet's lent tail (if it has one), the
/// bytes the next-but-one copy will read from the sending guest's memory.
fn prefetch_tail(p: &Packet) {
    if let Some(t) = p.tail_slice() {
        let mut at = 0;
        while at < t.len() {
            prefetch(&t, at);
            at += 64;
        }
    }
}

/// Prefetches, owned, the first buffers of a chain about to be written
/// (the header and the frame's first bytes).
fn prefetch_for_write(mem: &GuestMem, segs: &[Seg]) {
    for s in segs.iter().take(2) {
        mem.prefetch_write(s.addr, s.len as usize);
    }
}

/// Writes `pieces` (the virtio-net header, the frame bytes in the packet
/// buffer) then `tail` (the frame's end still in the sending guest's
/// memory, if any) across the chains of `heads` (whose buffers are
/// `segs[start..]`, each head with the end index of its own), staging each
/// head with the bytes it received. Whether every byte landed.
///
/// A `bool`, not a `Result`: the `Result` went through the stack in
/// 8-byte stores and came back in one 16-byte load, which cannot be
/// forwarded from the store buffer and so waited for every store of the
/// copy (misses into the receiving guest's buffers) to drain first. perf
/// put 62% of a 1518-byte run's samples on that load; paired slices of
/// one run gave +3.1% at 1518 bytes and +17% at 512.
fn copy_in(
    r: &mut ActiveRing,
    heads: &[(u16, usize)],
    segs: &[Seg],
    mut start: usize,
    pieces: [&[u8]; 2],
    tail: Option<VolatileSlice<'_>>,
) -> bool {
    let [hdr, frame] = pieces;
    let in_buf = hdr.len() + frame.len();
    let total = in_buf + tail.as_ref().map_or(0, |t| t.len());
    let mut done = 0usize;
    let mut ok = true;
    for &(head, end) in heads {
        let mut written = 0u32;
        for s in &segs[start..end] {
            let mut room = s.len as usize;
            // One region lookup per buffer (the header and the frame's
            // first bytes usually share one); a buffer that crosses two
            // adjacent regions takes the slow path per piece.
            let fast = r.mem.slice(s.addr, room);
            let mut at = 0usize;
            while room > 0 && done < total && ok {
                let n;
                if done < in_buf {
                    let (src, off) = if done < hdr.len() {
                        (hdr, done)
                    } else {
                        (frame, done - hdr.len())
                    };
                    n = room.min(src.len() - off);
                    let piece = &src[off..off + n];
                    ok = match &fast {
                        Some(buf) => write_at(buf, at, piece).is_some(),
                        None => r
                            .mem
                            .write(GuestAddress(s.addr.0 + at as u64), piece)
                            .is_ok(),
                    };
                } else {
                    // `done < total` here, so there is a tail.
                    let Some(t) = &tail else { break };
                    let off = done - in_buf;
                    n = room.min(t.len() - off);
                    ok = match &fast {
                        Some(buf) => match (t.subslice(off, n), buf.subslice(at, n)) {
                            (Ok(src), Ok(dst)) => copy_forward(&dst, &src).is_some(),
                            _ => false,
                        },
                        None => {
                            copy_tail_slow(&r.mem, t, off, n, GuestAddress(s.addr.0 + at as u64))
                                .is_ok()
                        }
                    };
                }
                at += n;
                room -= n;
                done += n;
                written += n as u32;
            }
        }
        r.ring.stage_used(head, written);
        start = end;
    }
    ok
}

/// Copies `n` bytes of `tail` from `off` to guest address `to` through a
/// bounce buffer: a destination buffer that crosses two adjacent regions.
fn copy_tail_slow(
    mem: &GuestMem,
    tail: &VolatileSlice<'_>,
    off: usize,
    n: usize,
    to: GuestAddress,
) -> Result<(), MemError> {
    let mut bounce = [0u8; 256];
    let mut done = 0;
    while done < n {
        let k = (n - done).min(bounce.len());
        let src = tail
            .subslice(off + done, k)
            .map_err(|_| MemError::OutOfBounds { addr: to.0, len: n })?;
        src.copy_to(&mut bounce[..k]);
        mem.write(GuestAddress(to.0 + done as u64), &bounce[..k])?;
        done += k;
    }
    Ok(())
}

impl VhostQueue {
    /// Sends `pkts` into the guest's RX ring of this PMD's pair (or the
    /// first running one) and frees them ([`Port::tx_burst`]).
    // `#[inline(always)]`: this was the body of `Port::tx_burst`.
    // 148 lines: the hot path's two passes share one ring guard; split, it is a rewrite.
    #[inline(always)]
    pub(super) fn transmit(&mut self, pkts: &mut Vec<Packet>, pool: &mut PacketPool) -> TxOutcome {
        let shared = &*self.shared;
        let c = &shared.counters;
        let mut out = TxOutcome::default();
        let mut pair = &shared.pairs[self.home];
        let mut guard = lock(&pair.tx);
        if shared.pairs.len() > 1 && guard.as_ref().is_none_or(|r| r.broken) {
            // The guest did not enable this PMD's pair (it runs fewer
            // queues than it may): the first pair it runs takes the burst.
            drop(guard);
            pair = &shared.pairs[0];
            guard = lock(&pair.tx);
            for p in shared.pairs.iter().skip(1) {
                if guard.as_ref().is_some_and(|r| !r.broken) {
                    break;
                }
                drop(guard);
                pair = p;
                guard = lock(&pair.tx);
            }
        }
        let ready = match guard.as_mut().filter(|r| !r.broken) {
            Some(r) => match r.ring.begin_burst(&r.mem) {
                Ok(_) => Some(r),
                Err(_) => {
                    r.broken = true;
                    inc(&c.ring_broken);
                    None
                }
            },
            None => None,
        };
        let Some(r) = ready else {
            out.dropped = pkts.len();
            c.tx_no_ring.fetch_add(pkts.len() as u64, Ordering::Relaxed);
            pool.free_all(pkts);
            return out;
        };
        let hdr_len = r.hdr.len;
        let mrg = r.hdr.mrg_rxbuf;
        r.ring
            .prefetch(&r.mem, u16::try_from(pkts.len()).unwrap_or(u16::MAX));
        // First pass: reserve chains for every frame (popped and walked in
        // frame order, exactly as one frame at a time would), prefetch the
        // buffers they will be copied into.
        self.segs.clear();
        self.tx_heads.clear();
        self.tx_plan.clear();
        for p in pkts.iter() {
            if r.broken {
                self.tx_plan.push(TxPlan::NoRing);
                continue;
            }
            let need = hdr_len + p.len();
            let from = self.tx_heads.len();
            let seg = self.segs.len();
            let mut room = 0usize;
            let mut bad = false;
            while room < need && (mrg || self.tx_heads.len() == from) {
                let head = match r.ring.pop_head(&r.mem) {
                    Ok(Some(h)) => h,
                    Ok(None) => break,
                    Err(_) => {
                        r.broken = true;
                        inc(&c.ring_broken);
                        break;
                    }
                };
                let start = self.segs.len();
                match r.ring.walk_into(&r.mem, head, &mut self.segs) {
                    Ok(len) if self.segs[start..].iter().all(|s| s.write) => {
                        room += len as usize;
                        self.tx_heads.push((head, self.segs.len()));
                    }
                    _ => {
                        self.segs.truncate(start);
                        inc(&c.tx_bad_chain);
                        self.tx_heads.push((head, start));
                        bad = true;
                        break;
                    }
                }
            }
            let to = self.tx_heads.len();
            if bad || r.broken {
                // Heads already reserved go back empty: never leak one.
                self.tx_plan.push(TxPlan::Bad { from, to });
            } else if room < need {
                // No room (or, without MRG_RXBUF, a buffer too small):
                // give the reserved heads back untouched and drop.
                r.ring.unpop((to - from) as u16);
                self.tx_heads.truncate(from);
                self.segs.truncate(seg);
                self.tx_plan.push(TxPlan::Full);
            } else {
                prefetch_for_write(&r.mem, &self.segs[seg..]);
                self.tx_plan.push(TxPlan::Send { from, to, seg });
            }
        }
        // Second pass: copy and stage, frame by frame, prefetching the
        // lent tails a few frames ahead of the copy.
        pkts.iter()
            .take(TAIL_PREFETCH_AHEAD)
            .for_each(prefetch_tail);
        for (k, (p, plan)) in pkts.iter().zip(&self.tx_plan).enumerate() {
            if let Some(ahead) = pkts.get(k + TAIL_PREFETCH_AHEAD) {
                prefetch_tail(ahead);
            }
            match *plan {
                TxPlan::Send { from, to, seg } => {
                    let heads = &self.tx_heads[from..to];
                    let mut many = [0u8; net_hdr::LEN];
                    let hdr: &[u8] = if hdr_len == net_hdr::LEN && heads.len() > 1 {
                        let n = heads.len() as u16;
                        many[net_hdr::NUM_BUFFERS].copy_from_slice(&n.to_le_bytes());
                        &many
                    } else {
                        &NET_HDR_ONE_BUFFER[..hdr_len.min(net_hdr::LEN)]
                    };
                    if copy_in(r, heads, &self.segs, seg, [hdr, p.data()], p.tail_slice()) {
                        out.sent += 1;
                        out.bytes += p.len();
                    } else {
                        inc(&c.tx_bad_chain);
                        out.dropped += 1;
                    }
                }
                TxPlan::Bad { from, to } => {
                    for &(h, _) in &self.tx_heads[from..to] {
                        r.ring.stage_used(h, 0);
                    }
                    out.dropped += 1;
                }
                TxPlan::Full => {
                    inc(&c.tx_ring_full);
                    out.dropped += 1;
                }
                TxPlan::NoRing => {
                    inc(&c.tx_no_ring);
                    out.dropped += 1;
                }
            }
        }
        pool.free_all(pkts);
        publish(r, c);
        pair.tx_frames.fetch_add(out.sent as u64, Ordering::Relaxed);
        out
    }
}
