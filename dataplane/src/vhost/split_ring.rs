//! The device side of a split virtqueue, written for bursts.
//!
//! It reads and writes the same memory layout as `virtio-queue`'s `Queue`
//! (which the property tests use as the oracle) but pays per burst what
//! `Queue` pays per chain:
//!
//! - one acquire load of `avail.idx` per burst ([`SplitRing::begin_burst`]);
//! - used elements collected in a shadow array and written at most in two
//!   copies, then **one** release store of `used.idx` per burst
//!   ([`SplitRing::publish`]);
//! - the guest is notified at most once per burst, and only if it asked
//!   (`VRING_AVAIL_F_NO_INTERRUPT`, or the `used_event` of EVENT_IDX).
//!
//! Everything the guest writes is untrusted. The funnel is here: a head
//! index must be `< size` (else the ring is broken), `avail.idx` may run at
//! most `size` ahead of us, a chain is walked with a TTL (the table size)
//! so a loop ends, an indirect table is bounded ([`MAX_INDIRECT`]) and may
//! not nest, every buffer `addr..addr+len` must be mapped, and a chain
//! carries at most [`MAX_CHAIN_BYTES`]. A malformed chain is an error for
//! *that chain*: the caller returns its head with length 0 and counts it.
//!
//! The three ring areas are resolved to [`HostRange`]s once, when the ring
//! starts (a new memory table builds a new ring: see [`super::backend`]), so
//! a descriptor read or an index load is one bounds check in a slice
//! instead of a region search.
//!
//! No `unsafe` here: all guest-memory access goes through [`GuestMem`] and
//! the bounded `VolatileSlice`s it hands out.

use std::num::Wrapping;
use std::sync::atomic::{Ordering, fence};

use vm_memory::{Bytes, GuestAddress, VolatileMemory, VolatileSlice};

use super::guest_mem::{GuestMem, HostRange, MemError, load_u16, prefetch, store_u16};

/// Descriptor continues via the `next` field.
pub const VRING_DESC_F_NEXT: u16 = 1;
/// Buffer is device write-only (otherwise device read-only).
pub const VRING_DESC_F_WRITE: u16 = 2;
/// Buffer contains a table of descriptors.
pub const VRING_DESC_F_INDIRECT: u16 = 4;
/// `used.flags`: the device does not want kicks.
pub const VRING_USED_F_NO_NOTIFY: u16 = 1;
/// `avail.flags`: the driver does not want interrupts.
pub const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Largest ring size the spec allows.
pub const MAX_RING_SIZE: u16 = 32768;
/// Most descriptors in one indirect table (QEMU's own bound is 1024).
pub const MAX_INDIRECT: u32 = 1024;
/// Most bytes one chain may describe (a 64 KiB GSO frame plus headers
/// fits with room to spare).
pub const MAX_CHAIN_BYTES: u64 = 256 * 1024;

const DESC_SIZE: u64 = 16;
const USED_ELEM_SIZE: u64 = 8;

/// One buffer of a chain, bounds-checked against guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seg {
    /// Guest physical address.
    pub addr: GuestAddress,
    /// Length in bytes (never 0).
    pub len: u32,
    /// Device-writable.
    pub write: bool,
}

/// Why one chain is unusable. The chain's head is still returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A `next` index is outside the (direct or indirect) table.
    #[error("descriptor index out of range")]
    BadIndex,
    /// More descriptors than the table holds: the chain loops.
    #[error("descriptor chain loops")]
    Loop,
    /// A buffer is not inside guest memory.
    #[error("buffer outside guest memory")]
    OutOfRange,
    /// A zero-length buffer.
    #[error("zero-length buffer")]
    ZeroLen,
    /// The chain describes more than [`MAX_CHAIN_BYTES`].
    #[error("descriptor chain too long")]
    TooLong,
    /// An indirect descriptor inside an indirect table.
    #[error("nested indirect table")]
    NestedIndirect,
    /// An indirect table with a bad size or flags.
    #[error("bad indirect table")]
    BadIndirect,
    /// Readable and writable buffers in the wrong order or direction.
    #[error("buffer of the wrong direction")]
    Direction,
}

/// Why the whole ring is unusable until the frontend sets it up again.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// Size not a power of two in 1..=32768.
    #[error("bad ring size {0}")]
    Size(u16),
    /// A ring area is misaligned.
    #[error("misaligned ring address {0:#x}")]
    Align(u64),
    /// A ring area is outside guest memory.
    #[error("ring area outside guest memory")]
    Area(#[source] MemError),
    /// `avail.idx` ran more than `size` entries ahead.
    #[error("avail index {avail} is {ahead} entries ahead (ring size {size})")]
    AvailIdx {
        /// What the guest wrote.
        avail: u16,
        /// How far ahead of `next_avail`.
        ahead: u16,
        /// Ring size.
        size: u16,
    },
    /// An avail ring entry names a head outside the table.
    #[error("avail ring names head {0}")]
    BadHead(u16),
}

/// Guest physical addresses and size of a split ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingAddrs {
    /// Number of entries (power of two).
    pub size: u16,
    /// Descriptor table.
    pub desc: GuestAddress,
    /// Available (driver) ring.
    pub avail: GuestAddress,
    /// Used (device) ring.
    pub used: GuestAddress,
}

/// Device-side state of one split virtqueue.
#[derive(Debug)]
pub struct SplitRing {
    addrs: RingAddrs,
    /// The descriptor table, avail ring and used ring, resolved once.
    desc: HostRange,
    avail: HostRange,
    used: HostRange,
    event_idx: bool,
    next_avail: Wrapping<u16>,
    next_used: Wrapping<u16>,
    /// `avail.idx` as loaded at the start of the burst.
    avail_idx: Wrapping<u16>,
    shadow: Vec<u8>,
    staged: u16,
    /// Heads popped last whose buffers a receive burst still reads (see
    /// [`SplitRing::set_lent`]).
    lent: u16,
    /// Tells this ring from any other, also one started again on the same
    /// memory at the same addresses.
    serial: u64,
}

/// Source of [`SplitRing::serial`].
static RING_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A ring area must lie in one mapped region (the frontend's addresses
/// are translated per region anyway: [`GuestMem::va_to_gpa`]).
fn area(start: GuestAddress, len: u64, mem: &GuestMem) -> Result<HostRange, RingError> {
    let len_usize = usize::try_from(len).map_err(|_| RingError::Align(start.0))?;
    mem.resolve(start, len_usize)
        .ok_or(RingError::Area(MemError::OutOfBounds {
            addr: start.0,
            len: len_usize,
        }))
}

/// A resolved ring area went missing: only possible if the ring is used
/// with memory other than the one it was built on.
fn lost(range: HostRange) -> RingError {
    RingError::Area(MemError::OutOfBounds {
        addr: 0,
        len: range.len(),
    })
}

/// The table a chain is walked in: the ring's own, an indirect table in
/// one region (both as slices), or an indirect table that crosses two
/// adjacent regions (read through the slow path).
enum Table<'a> {
    Fast(VolatileSlice<'a>),
    Slow(GuestAddress),
}

impl SplitRing {
    /// Validates the ring (size, alignment, every area mapped) and starts
    /// it at `base` (SET_VRING_BASE; non-zero after a reconnect).
    pub fn new(
        mem: &GuestMem,
        addrs: RingAddrs,
        base: u16,
        event_idx: bool,
    ) -> Result<Self, RingError> {
        let size = addrs.size;
        if size == 0 || size > MAX_RING_SIZE || !size.is_power_of_two() {
            return Err(RingError::Size(size));
        }
        if !addrs.desc.0.is_multiple_of(16) {
            return Err(RingError::Align(addrs.desc.0));
        }
        if !addrs.avail.0.is_multiple_of(2) {
            return Err(RingError::Align(addrs.avail.0));
        }
        if !addrs.used.0.is_multiple_of(4) {
            return Err(RingError::Align(addrs.used.0));
        }
        let n = u64::from(size);
        let desc = area(addrs.desc, DESC_SIZE * n, mem)?;
        let avail = area(addrs.avail, 6 + 2 * n, mem)?;
        let used = area(addrs.used, 6 + USED_ELEM_SIZE * n, mem)?;
        Ok(SplitRing {
            addrs,
            desc,
            avail,
            used,
            event_idx,
            next_avail: Wrapping(base),
            next_used: Wrapping(base),
            avail_idx: Wrapping(base),
            shadow: Vec::with_capacity(usize::from(size.min(256)) * 8),
            staged: 0,
            lent: 0,
            serial: RING_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Ring geometry.
    pub fn addrs(&self) -> RingAddrs {
        self.addrs
    }

    /// Index of the next avail entry to consume (GET_VRING_BASE answer).
    /// Heads that are lent ([`SplitRing::set_lent`]) count as not
    /// consumed: their used entries were never written, so a ring stopped
    /// meanwhile starts again at them and the guest loses no buffer.
    pub fn next_avail(&self) -> u16 {
        (self.next_avail - Wrapping(self.lent)).0
    }

    /// Records that the last `n` heads popped are still being read (a
    /// zero-copy receive) and have no used entry yet; 0 once they are
    /// staged. Only [`SplitRing::next_avail`] looks at it.
    pub fn set_lent(&mut self, n: u16) {
        self.lent = n;
    }

    /// A number no other ring of this process has.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Index of the next used entry to fill.
    pub fn next_used(&self) -> u16 {
        self.next_used.0
    }

    /// Whether EVENT_IDX was negotiated.
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    // Offsets in the ring areas: all < 6 + 8 * 32768, inside the areas
    // resolved at construction (the slices bound-check them again).
    const AVAIL_IDX: usize = 2;

    fn avail_slot(slot: u16) -> usize {
        4 + 2 * usize::from(slot)
    }

    fn used_event_off(&self) -> usize {
        Self::avail_slot(self.addrs.size)
    }

    fn avail_event_off(&self) -> usize {
        4 + 8 * usize::from(self.addrs.size)
    }

    fn mask(&self) -> u16 {
        self.addrs.size - 1
    }

    fn avail_area<'m>(&self, mem: &'m GuestMem) -> Result<VolatileSlice<'m>, RingError> {
        mem.whole(self.avail).ok_or(lost(self.avail))
    }

    fn used_area<'m>(&self, mem: &'m GuestMem) -> Result<VolatileSlice<'m>, RingError> {
        mem.whole(self.used).ok_or(lost(self.used))
    }

    /// Loads `avail.idx` once (acquire) and returns how many chains wait.
    pub fn begin_burst(&mut self, mem: &GuestMem) -> Result<u16, RingError> {
        let avail = self.avail_area(mem)?;
        let idx = load_u16(&avail, Self::AVAIL_IDX, Ordering::Acquire).ok_or(lost(self.avail))?;
        let ahead = (Wrapping(idx) - self.next_avail).0;
        if ahead > self.addrs.size {
            return Err(RingError::AvailIdx {
                avail: idx,
                ahead,
                size: self.addrs.size,
            });
        }
        self.avail_idx = Wrapping(idx);
        Ok(ahead)
    }

    /// Chains left in this burst.
    pub fn pending(&self) -> u16 {
        (self.avail_idx - self.next_avail).0
    }

    /// Takes the next head of this burst, or `None` when the burst is
    /// exhausted.
    pub fn pop_head(&mut self, mem: &GuestMem) -> Result<Option<u16>, RingError> {
        if self.next_avail == self.avail_idx {
            return Ok(None);
        }
        let slot = self.next_avail.0 & self.mask();
        let avail = self.avail_area(mem)?;
        let head =
            load_u16(&avail, Self::avail_slot(slot), Ordering::Relaxed).ok_or(lost(self.avail))?;
        if head >= self.addrs.size {
            return Err(RingError::BadHead(head));
        }
        self.next_avail += Wrapping(1);
        Ok(Some(head))
    }

    /// Prefetches the descriptors of the next `n` chains of this burst
    /// (read from the avail ring without popping them, and without any
    /// check beyond the bounds of the ring areas: [`SplitRing::pop_head`]
    /// and [`SplitRing::walk`] validate when they really take them).
    pub fn prefetch(&self, mem: &GuestMem, n: u16) {
        let (Some(avail), Some(desc)) = (mem.whole(self.avail), mem.whole(self.desc)) else {
            return;
        };
        let n = n.min(self.pending());
        for i in 0..n {
            let slot = (self.next_avail + Wrapping(i)).0 & self.mask();
            if let Some(head) = load_u16(&avail, Self::avail_slot(slot), Ordering::Relaxed) {
                prefetch(&desc, DESC_SIZE as usize * usize::from(head));
            }
        }
    }

    /// Gives back the last `n` popped heads that were not staged (a frame
    /// that did not fit): they are popped again by the next burst.
    pub fn unpop(&mut self, n: u16) {
        self.next_avail -= Wrapping(n);
    }

    /// Walks the chain starting at `head`, appending its buffers to `segs`
    /// (cleared first). Returns the total length.
    pub fn walk(&self, mem: &GuestMem, head: u16, segs: &mut Vec<Seg>) -> Result<u32, ChainError> {
        segs.clear();
        self.walk_into(mem, head, segs)
    }

    /// Like [`SplitRing::walk`], but appends to `segs` (the buffers of a
    /// whole burst in one vector); on an error `segs` is left as it was.
    #[inline]
    pub fn walk_into(
        &self,
        mem: &GuestMem,
        head: u16,
        segs: &mut Vec<Seg>,
    ) -> Result<u32, ChainError> {
        if let Some(len) = self.walk_single(mem, head, segs) {
            return Ok(len);
        }
        self.walk_general(mem, head, segs)
    }

    /// The common chain, inline: one direct descriptor (no `NEXT`, no
    /// `INDIRECT`) whose buffer lies in one region. `None` for anything
    /// else, including every malformed chain: [`SplitRing::walk_general`]
    /// then walks it from the start and gives the same answer it would
    /// have given this one.
    #[inline(always)]
    fn walk_single(&self, mem: &GuestMem, head: u16, segs: &mut Vec<Seg>) -> Option<u32> {
        if head >= self.addrs.size {
            return None;
        }
        let table = mem.whole(self.desc)?;
        let at = DESC_SIZE as usize * usize::from(head);
        let lo = u64::from_le(table.load::<u64>(at, Ordering::Relaxed).ok()?);
        let hi = u64::from_le(table.load::<u64>(at + 8, Ordering::Relaxed).ok()?);
        let (len, flags) = (hi as u32, (hi >> 32) as u16);
        if flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT) != 0
            || len == 0
            || u64::from(len) > MAX_CHAIN_BYTES
        {
            return None;
        }
        mem.resolve(GuestAddress(lo), len as usize)?;
        segs.push(Seg {
            addr: GuestAddress(lo),
            len,
            write: flags & VRING_DESC_F_WRITE != 0,
        });
        Some(len)
    }

    /// Any chain, with every check (see the module's funnel).
    #[inline(never)]
    fn walk_general(
        &self,
        mem: &GuestMem,
        head: u16,
        segs: &mut Vec<Seg>,
    ) -> Result<u32, ChainError> {
        let start = segs.len();
        let res = self.walk_chain(mem, head, segs);
        if res.is_err() {
            segs.truncate(start);
        }
        res
    }

    fn walk_chain(
        &self,
        mem: &GuestMem,
        head: u16,
        segs: &mut Vec<Seg>,
    ) -> Result<u32, ChainError> {
        let mut table = Table::Fast(mem.whole(self.desc).ok_or(ChainError::OutOfRange)?);
        let mut table_len = u32::from(self.addrs.size);
        let mut ttl = table_len;
        let mut idx = head;
        let mut indirect = false;
        let mut total: u64 = 0;
        loop {
            if u32::from(idx) >= table_len {
                return Err(ChainError::BadIndex);
            }
            if ttl == 0 {
                return Err(ChainError::Loop);
            }
            ttl -= 1;
            let (addr, len, flags, next) = read_desc(mem, &table, idx)?;
            if flags & VRING_DESC_F_INDIRECT != 0 {
                if indirect {
                    return Err(ChainError::NestedIndirect);
                }
                let count = len / 16;
                if len == 0
                    || len % 16 != 0
                    || count > MAX_INDIRECT
                    || flags & VRING_DESC_F_NEXT != 0
                {
                    return Err(ChainError::BadIndirect);
                }
                if addr % 16 != 0 || !mem.check_range(GuestAddress(addr), len as usize) {
                    return Err(ChainError::BadIndirect);
                }
                table = match mem.slice(GuestAddress(addr), len as usize) {
                    Some(s) => Table::Fast(s),
                    None => Table::Slow(GuestAddress(addr)),
                };
                table_len = count;
                ttl = count;
                idx = 0;
                indirect = true;
                continue;
            }
            if len == 0 {
                return Err(ChainError::ZeroLen);
            }
            total += u64::from(len);
            if total > MAX_CHAIN_BYTES {
                return Err(ChainError::TooLong);
            }
            if !mem.check_range(GuestAddress(addr), len as usize) {
                return Err(ChainError::OutOfRange);
            }
            segs.push(Seg {
                addr: GuestAddress(addr),
                len,
                write: flags & VRING_DESC_F_WRITE != 0,
            });
            if flags & VRING_DESC_F_NEXT == 0 {
                // Bounded by MAX_CHAIN_BYTES above.
                return Ok(total as u32);
            }
            idx = next;
        }
    }

    /// Queues a used element; nothing is visible to the guest until
    /// [`SplitRing::publish`].
    #[inline]
    pub fn stage_used(&mut self, head: u16, len: u32) {
        self.shadow
            .extend_from_slice(&u32::from(head).to_le_bytes());
        self.shadow.extend_from_slice(&len.to_le_bytes());
        self.staged += 1;
    }

    /// Used elements staged and not yet published.
    pub fn staged(&self) -> u16 {
        self.staged
    }

    /// Writes the staged used elements (at most two copies: the ring may
    /// wrap once), then stores `used.idx` once with release ordering.
    /// Returns whether the guest asked to be notified of them.
    pub fn publish(&mut self, mem: &GuestMem) -> Result<bool, RingError> {
        if self.staged == 0 {
            return Ok(false);
        }
        let size = usize::from(self.addrs.size);
        let start = usize::from(self.next_used.0 & self.mask());
        let first = (size - start).min(usize::from(self.staged)) * 8;
        let used = self.used_area(mem);
        let res = used.as_ref().ok().and_then(|u| {
            u.write_slice(&self.shadow[..first], 4 + 8 * start).ok()?;
            if first < self.shadow.len() {
                u.write_slice(&self.shadow[first..], 4).ok()?;
            }
            Some(())
        });
        let old = self.next_used;
        self.next_used += Wrapping(self.staged);
        self.staged = 0;
        self.shadow.clear();
        let used = used?;
        res.ok_or(lost(self.used))?;
        store_u16(&used, 2, self.next_used.0, Ordering::Release).ok_or(lost(self.used))?;
        self.needs_notification(mem, old)
    }

    fn needs_notification(&self, mem: &GuestMem, old: Wrapping<u16>) -> Result<bool, RingError> {
        // Order the used.idx store before reading the driver's wishes.
        fence(Ordering::SeqCst);
        let new = self.next_used;
        let avail = self.avail_area(mem)?;
        if self.event_idx {
            let used_event = load_u16(&avail, self.used_event_off(), Ordering::Relaxed)
                .ok_or(lost(self.avail))?;
            Ok(new - Wrapping(used_event) - Wrapping(1) < new - old)
        } else {
            let flags = load_u16(&avail, 0, Ordering::Relaxed).ok_or(lost(self.avail))?;
            Ok(flags & VRING_AVAIL_F_NO_INTERRUPT == 0)
        }
    }

    /// Asks the guest to kick (`on`) or not. When turning kicks on,
    /// returns true if chains are already waiting: the caller must not
    /// sleep then (the re-check closes the lost-wake-up race).
    pub fn set_kick_notify(&mut self, mem: &GuestMem, on: bool) -> Result<bool, RingError> {
        let used = self.used_area(mem)?;
        if self.event_idx {
            // With EVENT_IDX the guest ignores used.flags; leaving
            // avail_event behind is what suppresses kicks.
            if on {
                store_u16(
                    &used,
                    self.avail_event_off(),
                    self.next_avail.0,
                    Ordering::Relaxed,
                )
                .ok_or(lost(self.used))?;
            }
        } else {
            let flags = if on { 0 } else { VRING_USED_F_NO_NOTIFY };
            store_u16(&used, 0, flags, Ordering::Relaxed).ok_or(lost(self.used))?;
        }
        if !on {
            return Ok(false);
        }
        fence(Ordering::SeqCst);
        let avail = self.avail_area(mem)?;
        let idx = load_u16(&avail, Self::AVAIL_IDX, Ordering::Acquire).ok_or(lost(self.avail))?;
        Ok(Wrapping(idx) != self.next_avail)
    }
}

/// Reads descriptor `idx` of `table` (bounded by the table's slice, or
/// by guest memory on the slow path).
#[inline]
fn read_desc(
    mem: &GuestMem,
    table: &Table<'_>,
    idx: u16,
) -> Result<(u64, u32, u16, u16), ChainError> {
    let at = DESC_SIZE as usize * usize::from(idx);
    let (lo, hi) = match table {
        // Two aligned 8-byte loads (the table is 16-byte aligned in guest
        // memory, and so in the host mapping); a copy if it is not.
        Table::Fast(s) => match (
            s.load::<u64>(at, Ordering::Relaxed),
            s.load::<u64>(at + 8, Ordering::Relaxed),
        ) {
            (Ok(lo), Ok(hi)) => (u64::from_le(lo), u64::from_le(hi)),
            _ => {
                let mut d = [0u8; 16];
                let sub = s.get_slice(at, 16).map_err(|_| ChainError::OutOfRange)?;
                sub.copy_to(&mut d);
                split_desc(&d)
            }
        },
        Table::Slow(base) => {
            let addr = base
                .0
                .checked_add(at as u64)
                .ok_or(ChainError::OutOfRange)?;
            let mut d = [0u8; 16];
            mem.read(GuestAddress(addr), &mut d)
                .map_err(|_| ChainError::OutOfRange)?;
            split_desc(&d)
        }
    };
    // Little-endian layout: addr, then len, flags, next.
    Ok((lo, hi as u32, (hi >> 32) as u16, (hi >> 48) as u16))
}

fn split_desc(d: &[u8; 16]) -> (u64, u64) {
    let (lo, hi) = d.split_at(8);
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    (word(lo), word(hi))
}

#[cfg(test)]
#[path = "split_ring_tests.rs"]
mod tests;
