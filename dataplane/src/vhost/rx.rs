//! Receive: a PMD takes frames from the guest's TX ring (vring `2q + 1`
//! of pair `q`) into packets.
//!
//! Exactly one PMD polls each pair's ring, PMD `(rx_pmd + q) % pmds`; a PMD
//! with several takes them in turn, one pair per burst. It takes the ring's
//! mutex with `try_lock` once per burst, so it never waits: if the control
//! thread holds it (a hand-over in progress, see [`super::handover`]) the
//! burst is simply empty.
//!
//! A burst runs in two passes: first every chain is popped and walked and
//! its frame prefetched, then the frames are copied out and the heads
//! returned in the order they were popped. With lending
//! ([`Port::rx_burst_lending`]) a large frame keeps its end in the guest's
//! memory ([`Lent`]) and its chain is returned only in
//! [`Port::rx_complete`].

use std::sync::Arc;
use std::sync::TryLockError;
use std::sync::atomic::Ordering;

use vm_memory::GuestAddress;

use super::counters::inc;
use super::guest_mem::{GuestMem, MemError};
use super::handover::lock;
use super::port::{VhostQueue, publish};
use super::split_ring::Seg;
#[cfg(doc)]
use super::split_ring::SplitRing;
use crate::packet::{Packet, PacketPool, TAIL_MIN_HEAD};
#[cfg(doc)]
use crate::port::Port;

/// Smallest frame accepted from a guest (an Ethernet header).
const MIN_FRAME: usize = 14;

/// A receive burst that left frame tails in the guest's memory: the
/// memory stays mapped (this `Arc`) and the chains (`rx_chains`) stay
/// unreturned until [`Port::rx_complete`].
#[derive(Debug)]
pub(super) struct Lent {
    /// Held, never read: keeps the tails' memory mapped.
    #[allow(dead_code)]
    mem: Arc<GuestMem>,
    /// The pair whose receive ring the chains came from.
    pair: usize,
    /// [`SplitRing::serial`] of that ring.
    ring: u64,
}

/// Frames of at least this many bytes are received zero-copy when the
/// caller allows it (`rx_burst_lending`) and their end lies in one
/// mapped buffer: only their first [`TAIL_MIN_HEAD`] bytes are copied out,
/// the rest is copied once, straight into the receiving guest. Below it a
/// copy costs less than the bookkeeping.
pub const LEND_MIN_FRAME: usize = 256;

/// A chain popped from the guest's TX ring in the first pass.
#[derive(Clone, Copy, Debug)]
pub(super) struct RxChain {
    head: u16,
    /// Its buffers: `segs[start..end]`.
    start: usize,
    end: usize,
    /// Total length, or `None` for a malformed chain.
    len: Option<u32>,
}

/// Prefetches the first two lines of a received frame: the chain's bytes
/// from `skip` on (past the virtio-net header, which the receive path never
/// reads: the line holding it is the one the guest's CPU last wrote, and
/// fetching it would cost a transfer between cores for nothing).
fn prefetch_frame(mem: &GuestMem, segs: &[Seg], mut skip: usize) {
    for s in segs {
        let len = s.len as usize;
        if skip < len {
            mem.prefetch(GuestAddress(s.addr.0 + skip as u64), len - skip);
            return;
        }
        skip -= len;
    }
}

/// Copies the chain's bytes after the first `skip` into `dst`.
fn copy_out(mem: &GuestMem, segs: &[Seg], mut skip: usize, dst: &mut [u8]) -> Result<(), MemError> {
    let mut off = 0;
    for s in segs {
        let len = s.len as usize;
        if skip >= len {
            skip -= len;
            continue;
        }
        let take = (len - skip).min(dst.len() - off);
        mem.read(
            GuestAddress(s.addr.0 + skip as u64),
            &mut dst[off..off + take],
        )?;
        off += take;
        skip = 0;
        if off == dst.len() {
            break;
        }
    }
    Ok(())
}

impl VhostQueue {
    /// Whether this PMD polls any of the port's receive rings.
    pub(crate) fn polls_rx(&self) -> bool {
        !self.polls.is_empty()
    }

    /// Receives a burst from one of the pairs this PMD polls: the first,
    /// from a rotating start, that has frames. One pair per burst keeps
    /// [`Lent`] to one ring; the rotation keeps busy pairs from starving
    /// each other.
    pub(super) fn receive(
        &mut self,
        pool: &mut PacketPool,
        out: &mut Vec<Packet>,
        max: usize,
        lend: bool,
    ) -> usize {
        let n = self.polls.len();
        for i in 0..n {
            let at = (self.next_poll + i) % n;
            let got = self.receive_from(self.polls[at], pool, out, max, lend);
            if got > 0 {
                self.next_poll = (at + 1) % n;
                return got;
            }
        }
        0
    }

    /// Receives a burst from pair `q`; with `lend`, frames of
    /// [`LEND_MIN_FRAME`] bytes or more may keep their ends in guest
    /// memory (see [`Lent`]).
    // 142 lines: the hot path's two passes share one ring guard; split, it is a rewrite.
    fn receive_from(
        &mut self,
        q: usize,
        pool: &mut PacketPool,
        out: &mut Vec<Packet>,
        max: usize,
        lend: bool,
    ) -> usize {
        debug_assert!(self.lent.is_none(), "rx_complete was not called");
        let shared = &*self.shared;
        let Some(pair) = shared.pairs.get(q) else {
            return 0;
        };
        let mut guard = match pair.rx.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            // The control thread is swapping the ring: nothing this turn.
            Err(TryLockError::WouldBlock) => return 0,
        };
        let Some(r) = guard.as_mut().filter(|r| !r.broken) else {
            return 0;
        };
        let c = &shared.counters;
        let waiting = match r.ring.begin_burst(&r.mem) {
            Ok(n) => usize::from(n),
            Err(_) => {
                r.broken = true;
                inc(&c.ring_broken);
                return 0;
            }
        };
        let hdr_len = r.hdr.len;
        let n = waiting.min(max);
        r.ring
            .prefetch(&r.mem, u16::try_from(n).unwrap_or(u16::MAX));
        // First pass: pop and walk every chain, prefetch its data.
        self.segs.clear();
        self.rx_chains.clear();
        for _ in 0..n {
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
            let len = match r.ring.walk_into(&r.mem, head, &mut self.segs) {
                Ok(len) if !self.segs[start..].iter().any(|s| s.write) => Some(len),
                _ => None,
            };
            let end = self.segs.len();
            if len.is_some() {
                prefetch_frame(&r.mem, &self.segs[start..end], hdr_len);
            }
            self.rx_chains.push(RxChain {
                head,
                start,
                end,
                len,
            });
        }
        // Second pass: copy the frames out (or their headers, lending the
        // rest), then return the heads in order.
        let mut got = 0;
        let popped = self.rx_chains.len();
        let mut kept = popped;
        let mut lent_frames = 0u64;
        for (k, ch) in self.rx_chains.iter().enumerate() {
            let Some(len) = ch.len else {
                inc(&c.rx_bad_chain);
                continue;
            };
            let Some(frame_len) = (len as usize)
                .checked_sub(hdr_len)
                .filter(|&l| l >= MIN_FRAME)
            else {
                inc(&c.rx_bad_frame);
                continue;
            };
            let Some(mut p) = pool.alloc() else {
                // Out of buffers: leave this chain and the rest (the last
                // ones popped) for the next burst.
                r.ring.unpop((popped - k) as u16);
                kept = k;
                break;
            };
            let segs = &self.segs[ch.start..ch.end];
            let tail = if lend && frame_len >= LEND_MIN_FRAME {
                lendable_tail(&r.mem, segs, hdr_len + TAIL_MIN_HEAD)
            } else {
                None
            };
            let ok = match tail {
                Some((ptr, tail_len)) => match p.prepare(TAIL_MIN_HEAD) {
                    Some(buf) => {
                        let copied = copy_out(&r.mem, segs, hdr_len, buf).is_ok();
                        // `lendable_tail` found `ptr`: `tail_len` bytes
                        // inside one mapped region of `r.mem`.
                        // SAFETY: this queue keeps that memory mapped
                        // (`Lent::mem`) until `rx_complete`, which the PMD
                        // calls on this thread after every packet of the
                        // burst is sent, freed or materialized.
                        copied && unsafe { p.set_tail(ptr, tail_len) }
                    }
                    None => false,
                },
                None => match p.prepare(frame_len) {
                    Some(buf) => copy_out(&r.mem, segs, hdr_len, buf).is_ok(),
                    None => false,
                },
            };
            if ok {
                lent_frames += u64::from(p.tail().is_some());
                out.push(p);
                got += 1;
            } else {
                inc(&c.rx_bad_frame);
                pool.free(p);
            }
        }
        self.rx_chains.truncate(kept);
        pair.rx_frames.fetch_add(got as u64, Ordering::Relaxed);
        if lent_frames > 0 {
            c.rx_zero_copy.fetch_add(lent_frames, Ordering::Relaxed);
            // The heads go back in `rx_complete`, once nothing reads them.
            r.ring.set_lent(kept as u16);
            self.lent = Some(Lent {
                mem: Arc::clone(&r.mem),
                pair: q,
                ring: r.ring.serial(),
            });
        } else {
            for ch in &self.rx_chains {
                r.ring.stage_used(ch.head, 0);
            }
            publish(r, c);
        }
        got
    }

    /// Returns the chains of the last lending burst to their ring, once
    /// nothing reads their tails ([`Port::rx_complete`]).
    // `#[inline(always)]`: this was the body of `Port::rx_complete`.
    #[inline(always)]
    pub(super) fn return_lent(&mut self) {
        let Some(lent) = self.lent.take() else {
            return;
        };
        let shared = &*self.shared;
        let Some(pair) = shared.pairs.get(lent.pair) else {
            return;
        };
        let mut guard = lock(&pair.rx);
        // A ring the control thread stopped or replaced meanwhile answered
        // GET_VRING_BASE without the lent heads: they are not ours to return.
        if let Some(r) = guard.as_mut().filter(|r| r.ring.serial() == lent.ring) {
            r.ring.set_lent(0);
            for ch in &self.rx_chains {
                r.ring.stage_used(ch.head, 0);
            }
            publish(r, &shared.counters);
        }
        drop(guard);
        // The guest memory may be unmapped here, outside the lock.
        drop(lent);
    }
}

/// Where the frame's bytes from chain offset `at` on lie, if they lie in
/// one buffer (the chain's last) that is inside one mapped region: its
/// host address and length.
fn lendable_tail(mem: &GuestMem, segs: &[Seg], at: usize) -> Option<(*const u8, usize)> {
    let mut start = 0usize;
    for (i, s) in segs.iter().enumerate() {
        let len = s.len as usize;
        if at < start + len {
            if i + 1 != segs.len() {
                return None;
            }
            let skip = at - start;
            let slice = mem.slice(GuestAddress(s.addr.0 + skip as u64), len - skip)?;
            return Some((slice.ptr_guard().as_ptr(), len - skip));
        }
        start += len;
    }
    None
}
