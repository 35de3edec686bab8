//! The PMD side of a vhost-user port: queue objects implementing [`Port`].
//!
//! A port has 1 to 16 queue pairs (pair q: vring 2q, the guest's RX ring,
//! which the switch fills; vring 2q+1, the guest's TX ring, which the
//! switch drains), served by every PMD of the switch, each through its own
//! [`VhostQueue`]:
//!
//! - **Receive** (guest TX ring): exactly one PMD polls each pair's ring,
//!   PMD `(rx_pmd + q) % pmds`; a PMD with several takes them in turn. It
//!   takes the ring's mutex with `try_lock` once per burst, so it never
//!   waits: if the control thread holds it (a hand-over in progress) the
//!   burst is simply empty.
//! - **Transmit** (guest RX ring): every PMD may send to the port, on
//!   pair `pmd % pairs` (or the first pair the guest runs, if it did not
//!   enable that one), so the ring sits behind a short mutex taken once
//!   per burst, as Open vSwitch does with its per-txq spinlock when a port
//!   has fewer tx queues than PMDs. With as many pairs as PMDs it is never
//!   contended.
//! - **Hand-over**: the control thread installs, replaces and removes a
//!   ring (and its `Arc` memory snapshot) under the same mutex, for O(1)
//!   work. Taking the mutex therefore waits for the PMD's current burst to
//!   end: that is the "stop after the current burst" round trip that
//!   GET_VRING_BASE needs, and the old memory map is unmapped only after
//!   the PMD let go of it.
//!
//! Receive notifications: each PMD's wake fd for the port is an epoll set
//! holding the kick eventfds of the rings it polls (while they run) and a
//! control eventfd rung when one of them changes, so an adaptive PMD
//! sleeps until the guest kicks or a ring is (re)started. Kicks are suppressed (`used.flags` NO_NOTIFY,
//! or a stale `avail_event` with EVENT_IDX) except while the PMD sleeps.
//!
//! Per-packet failures are counters ([`VhostCounters`]), never logs.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use vm_memory::{GuestAddress, VolatileSlice};

use super::guest_mem::{GuestMem, MemError, copy_forward, prefetch, write_at};
use super::split_ring::{Seg, SplitRing};
use crate::packet::{Packet, PacketPool, TAIL_MIN_HEAD};
use crate::port::{Port, TxOutcome};

/// Smallest frame accepted from a guest (an Ethernet header).
const MIN_FRAME: usize = 14;

/// virtio-net header layout negotiated for a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetHdr {
    /// Header length: 12 with VERSION_1 or MRG_RXBUF, else 10.
    pub len: usize,
    /// Mergeable receive buffers (a frame may span several chains).
    pub mrg_rxbuf: bool,
}

/// A running ring with what the PMD needs to serve it.
#[derive(Debug)]
pub(crate) struct ActiveRing {
    pub(crate) ring: SplitRing,
    pub(crate) mem: Arc<GuestMem>,
    pub(crate) call: Option<File>,
    pub(crate) kick: Option<File>,
    pub(crate) hdr: NetHdr,
    /// The guest corrupted the ring itself; it stays stopped until the
    /// control thread resets the port.
    pub(crate) broken: bool,
}

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
fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One queue pair's rings.
#[derive(Debug, Default)]
pub(crate) struct Pair {
    /// The guest's TX ring (vring `2q + 1`): the switch receives from it.
    pub(crate) rx: Mutex<Option<ActiveRing>>,
    /// The guest's RX ring (vring `2q`): the switch transmits into it.
    pub(crate) tx: Mutex<Option<ActiveRing>>,
    /// Frames received from the guest on this pair (added once per burst).
    pub(crate) rx_frames: AtomicU64,
    /// Frames sent to the guest on this pair (added once per burst).
    pub(crate) tx_frames: AtomicU64,
}

/// What wakes one sleeping PMD for this port: an epoll set of the kick
/// eventfds of the receive rings it polls, plus a bell rung when one of
/// those rings changes.
#[derive(Debug)]
struct Wake {
    epoll: Epoll,
    bell: EventFd,
}

/// State shared by the control thread and the PMDs' queue objects.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The queue pairs, `queues` of the port's config.
    pub(crate) pairs: Box<[Pair]>,
    /// The PMD that polls each pair's receive ring.
    poller: Box<[usize]>,
    /// One per PMD of the switch.
    wakes: Box<[Wake]>,
    pub(crate) counters: VhostCounters,
    pub(crate) connected: AtomicBool,
}

/// Locks a ring slot; a poisoned lock (a panic elsewhere) still holds
/// consistent state, since every update under it is a single assignment.
pub(crate) fn lock(m: &Mutex<Option<ActiveRing>>) -> MutexGuard<'_, Option<ActiveRing>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// `pairs` queue pairs served by `pmds` PMDs: pair `q`'s receive ring
    /// is polled by PMD `(first_pmd + q) % pmds`.
    pub(crate) fn new(pairs: usize, pmds: usize, first_pmd: usize) -> std::io::Result<Shared> {
        let pairs = pairs.max(1);
        let pmds = pmds.max(1);
        let wakes = (0..pmds)
            .map(|_| {
                let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
                let bell = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
                epoll.add(bell.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 0))?;
                Ok(Wake { epoll, bell })
            })
            .collect::<std::io::Result<Box<[Wake]>>>()?;
        Ok(Shared {
            pairs: (0..pairs).map(|_| Pair::default()).collect(),
            poller: (0..pairs).map(|q| (first_pmd + q) % pmds).collect(),
            wakes,
            counters: VhostCounters::default(),
            connected: AtomicBool::new(false),
        })
    }

    /// A port with one queue pair and one PMD (tests and fuzzing).
    #[cfg(any(test, feature = "test-utils"))]
    pub(crate) fn single() -> std::io::Result<Shared> {
        Shared::new(1, 1, 0)
    }

    /// The PMD that polls pair `q`'s receive ring.
    pub(crate) fn poller(&self, q: usize) -> usize {
        self.poller.get(q).copied().unwrap_or(0)
    }

    fn wake_of(&self, q: usize) -> Option<&Wake> {
        self.wakes.get(self.poller(q))
    }

    /// Wakes the PMD sleeping on pair `q`'s receive ring (a ring changed).
    pub(crate) fn ring_bell(&self, q: usize) {
        if let Some(w) = self.wake_of(q) {
            // EAGAIN: a wake-up is already pending.
            let _ = w.bell.write(1);
        }
    }

    /// Watches the guest's kick eventfd while pair `q`'s receive ring runs.
    pub(crate) fn watch_kick(&self, q: usize, kick: &File) {
        let Some(w) = self.wake_of(q) else { return };
        if let Err(e) = w
            .epoll
            .add(kick.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 1))
        {
            tracing::warn!(error = %e, "cannot watch the kick eventfd; an idle PMD wakes late");
        }
    }

    /// Stops watching a kick eventfd (before it is closed: the frontend
    /// keeps its own copy, so closing ours would not remove it).
    pub(crate) fn unwatch_kick(&self, q: usize, kick: &File) {
        if let Some(w) = self.wake_of(q) {
            let _ = w.epoll.delete(kick.as_fd());
        }
    }

    fn drain_bell(&self, pmd: usize) {
        if let Some(w) = self.wakes.get(pmd) {
            // EAGAIN when nothing was written: nothing to clear.
            let _ = w.bell.read();
        }
    }
}

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
    shared: Arc<Shared>,
    /// The PMD this queue object belongs to.
    pmd: usize,
    /// Pairs whose receive ring this PMD polls (see [`Shared::new`]).
    polls: Vec<usize>,
    /// Index into `polls` of the pair tried first in the next burst.
    next_poll: usize,
    /// The pair this PMD transmits on while the guest runs its RX ring:
    /// `pmd % pairs`, so with as many pairs as PMDs no two PMDs share a
    /// ring. Otherwise the first pair whose RX ring runs.
    home: usize,
    /// Buffers of every chain of the current burst.
    segs: Vec<Seg>,
    /// Receive: the chains of the burst.
    rx_chains: Vec<RxChain>,
    /// Transmit: heads reserved in this burst, with the end index of
    /// their buffers in `segs`.
    tx_heads: Vec<(u16, usize)>,
    /// Transmit: what happens to each frame of the burst.
    tx_plan: Vec<TxPlan>,
    /// Receive: what the last burst lent, until `rx_complete`.
    lent: Option<Lent>,
}

/// A receive burst that left frame tails in the guest's memory: the
/// memory stays mapped (this `Arc`) and the chains (`rx_chains`) stay
/// unreturned until [`Port::rx_complete`].
#[derive(Debug)]
struct Lent {
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

/// The virtio-net header of a frame in one buffer (no offloads,
/// `num_buffers` 1; a 10-byte header is its first 10 bytes). A `static`,
/// not built on the stack per frame: the copy into the guest then loads
/// bytes no store is pending on. Built on the stack, the header's 8-byte
/// loads straddled the stores that had just written it, store forwarding
/// failed, and each load waited for the store buffer to drain, including
/// the previous frame's stores into the guest, which miss the cache (perf
/// at 64 bytes: 82% of the copy's samples on that load; the copy fell
/// from 22% to 7% of the PMD's time).
static NET_HDR_ONE_BUFFER: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];

/// A chain popped from the guest's TX ring in the first pass.
#[derive(Clone, Copy, Debug)]
struct RxChain {
    head: u16,
    /// Its buffers: `segs[start..end]`.
    start: usize,
    end: usize,
    /// Total length, or `None` for a malformed chain.
    len: Option<u32>,
}

/// The first pass's decision for one frame to send.
#[derive(Clone, Copy, Debug)]
enum TxPlan {
    /// Copy into the chains `tx_heads[from..to]` (buffers from `seg`).
    Send { from: usize, to: usize, seg: usize },
    /// A chain was malformed: `tx_heads[from..to]` go back empty.
    Bad { from: usize, to: usize },
    /// No room in the guest's RX ring.
    Full,
    /// The ring broke during this burst.
    NoRing,
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

fn notify(r: &ActiveRing, c: &VhostCounters) {
    if let Some(call) = &r.call {
        match (&*call).write_all(&1u64.to_ne_bytes()) {
            Ok(_) => inc(&c.guest_notifies),
            Err(_) => inc(&c.notify_errors),
        }
    }
}

fn publish(r: &mut ActiveRing, c: &VhostCounters) {
    match r.ring.publish(&r.mem) {
        Ok(true) => notify(r, c),
        Ok(false) => {}
        Err(_) => {
            r.broken = true;
            inc(&c.ring_broken);
        }
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
    /// Whether this PMD polls any of the port's receive rings.
    pub(crate) fn polls_rx(&self) -> bool {
        !self.polls.is_empty()
    }

    /// Receives a burst from one of the pairs this PMD polls: the first,
    /// from a rotating start, that has frames. One pair per burst keeps
    /// [`Lent`] to one ring; the rotation keeps busy pairs from starving
    /// each other.
    fn receive(
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

    fn takes_tails(&self) -> bool {
        true
    }

    fn tx_burst(&mut self, pkts: &mut Vec<Packet>, pool: &mut PacketPool) -> TxOutcome {
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
                    let mut many = [0u8; 12];
                    let hdr: &[u8] = if hdr_len == 12 && heads.len() > 1 {
                        let n = heads.len() as u16;
                        many[10..12].copy_from_slice(&n.to_le_bytes());
                        &many
                    } else {
                        &NET_HDR_ONE_BUFFER[..hdr_len.min(12)]
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

    use super::*;
    use crate::vhost::guest_mem::Mem;
    use crate::vhost::split_ring::{RingAddrs, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};

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
                len: 12,
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
        assert_eq!(u16::from_le_bytes([got[10], got[11]]), 3, "num_buffers");
        assert_eq!(&got[12..], &frame[..52]);
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
        mem.write(GuestAddress(0x8000), &[0u8; 12]).expect("hdr");
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
            mem.write(GuestAddress(addr), &[0u8; 12]).expect("hdr");
            mem.write(GuestAddress(addr + 12), f).expect("frame");
            put_desc(&mem, i as u16, addr, 12 + f.len() as u32, 0, 0);
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
        let mut got = vec![0u8; 12 + 1518];
        dst.read(GuestAddress(0x8000), &mut got[..1024])
            .expect("first");
        dst.read(GuestAddress(0x9000), &mut got[1024..])
            .expect("second");
        assert_eq!(u16::from_le_bytes([got[10], got[11]]), 2, "num_buffers");
        assert_eq!(&got[12..], &want[..]);
        assert_eq!(
            (used(&dst, 0), used(&dst, 1)),
            ((0, 1024), (1, 12 + 1518 - 1024))
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
        mem.write(GuestAddress(0x8000), &[0u8; 12]).expect("hdr");
        mem.write(GuestAddress(0x8000 + 12), &big[..500])
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
                    len: 12,
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
                bytes[12] = t;
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
