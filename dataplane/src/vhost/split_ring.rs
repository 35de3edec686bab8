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
//! No `unsafe` here: all guest-memory access goes through [`GuestMem`].

use std::num::Wrapping;
use std::sync::atomic::{Ordering, fence};

use vm_memory::GuestAddress;

use super::guest_mem::{GuestMem, MemError};

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
    event_idx: bool,
    next_avail: Wrapping<u16>,
    next_used: Wrapping<u16>,
    /// `avail.idx` as loaded at the start of the burst.
    avail_idx: Wrapping<u16>,
    shadow: Vec<u8>,
    staged: u16,
}

fn area(start: GuestAddress, len: u64, mem: &GuestMem) -> Result<(), RingError> {
    let len_usize = usize::try_from(len).map_err(|_| RingError::Align(start.0))?;
    if mem.check_range(start, len_usize) {
        Ok(())
    } else {
        Err(RingError::Area(MemError::OutOfBounds {
            addr: start.0,
            len: len_usize,
        }))
    }
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
        area(addrs.desc, DESC_SIZE * n, mem)?;
        area(addrs.avail, 6 + 2 * n, mem)?;
        area(addrs.used, 6 + USED_ELEM_SIZE * n, mem)?;
        Ok(SplitRing {
            addrs,
            event_idx,
            next_avail: Wrapping(base),
            next_used: Wrapping(base),
            avail_idx: Wrapping(base),
            shadow: Vec::with_capacity(usize::from(size.min(256)) * 8),
            staged: 0,
        })
    }

    /// Ring geometry.
    pub fn addrs(&self) -> RingAddrs {
        self.addrs
    }

    /// Index of the next avail entry to consume (GET_VRING_BASE answer).
    pub fn next_avail(&self) -> u16 {
        self.next_avail.0
    }

    /// Index of the next used entry to fill.
    pub fn next_used(&self) -> u16 {
        self.next_used.0
    }

    /// Whether EVENT_IDX was negotiated.
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    // All ring offsets below are < 6 + 8 * 32768 and the areas were
    // checked at construction, so the additions cannot overflow.
    fn avail_idx_addr(&self) -> GuestAddress {
        GuestAddress(self.addrs.avail.0 + 2)
    }

    fn avail_ring_addr(&self, slot: u16) -> GuestAddress {
        GuestAddress(self.addrs.avail.0 + 4 + 2 * u64::from(slot))
    }

    fn used_event_addr(&self) -> GuestAddress {
        self.avail_ring_addr(self.addrs.size)
    }

    fn avail_event_addr(&self) -> GuestAddress {
        GuestAddress(self.addrs.used.0 + 4 + USED_ELEM_SIZE * u64::from(self.addrs.size))
    }

    fn mask(&self) -> u16 {
        self.addrs.size - 1
    }

    /// Loads `avail.idx` once (acquire) and returns how many chains wait.
    pub fn begin_burst(&mut self, mem: &GuestMem) -> Result<u16, RingError> {
        let idx = mem
            .load_u16(self.avail_idx_addr(), Ordering::Acquire)
            .map_err(RingError::Area)?;
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
        let head = mem
            .load_u16(self.avail_ring_addr(slot), Ordering::Relaxed)
            .map_err(RingError::Area)?;
        if head >= self.addrs.size {
            return Err(RingError::BadHead(head));
        }
        self.next_avail += Wrapping(1);
        Ok(Some(head))
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
        let mut table = self.addrs.desc;
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
            let (addr, len, flags, next) = read_desc(mem, table, idx)?;
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
                table = GuestAddress(addr);
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
        let ring = self.addrs.used.0 + 4;
        let res = mem
            .write(GuestAddress(ring + 8 * start as u64), &self.shadow[..first])
            .and_then(|()| {
                if first < self.shadow.len() {
                    mem.write(GuestAddress(ring), &self.shadow[first..])
                } else {
                    Ok(())
                }
            });
        let old = self.next_used;
        self.next_used += Wrapping(self.staged);
        self.staged = 0;
        self.shadow.clear();
        res.map_err(RingError::Area)?;
        mem.store_u16(
            GuestAddress(self.addrs.used.0 + 2),
            self.next_used.0,
            Ordering::Release,
        )
        .map_err(RingError::Area)?;
        self.needs_notification(mem, old)
    }

    fn needs_notification(&self, mem: &GuestMem, old: Wrapping<u16>) -> Result<bool, RingError> {
        // Order the used.idx store before reading the driver's wishes.
        fence(Ordering::SeqCst);
        let new = self.next_used;
        if self.event_idx {
            let used_event = mem
                .load_u16(self.used_event_addr(), Ordering::Relaxed)
                .map_err(RingError::Area)?;
            Ok(new - Wrapping(used_event) - Wrapping(1) < new - old)
        } else {
            let flags = mem
                .load_u16(self.addrs.avail, Ordering::Relaxed)
                .map_err(RingError::Area)?;
            Ok(flags & VRING_AVAIL_F_NO_INTERRUPT == 0)
        }
    }

    /// Asks the guest to kick (`on`) or not. When turning kicks on,
    /// returns true if chains are already waiting: the caller must not
    /// sleep then (the re-check closes the lost-wake-up race).
    pub fn set_kick_notify(&mut self, mem: &GuestMem, on: bool) -> Result<bool, RingError> {
        if self.event_idx {
            // With EVENT_IDX the guest ignores used.flags; leaving
            // avail_event behind is what suppresses kicks.
            if on {
                mem.store_u16(
                    self.avail_event_addr(),
                    self.next_avail.0,
                    Ordering::Relaxed,
                )
                .map_err(RingError::Area)?;
            }
        } else {
            let flags = if on { 0 } else { VRING_USED_F_NO_NOTIFY };
            mem.store_u16(self.addrs.used, flags, Ordering::Relaxed)
                .map_err(RingError::Area)?;
        }
        if !on {
            return Ok(false);
        }
        fence(Ordering::SeqCst);
        let idx = mem
            .load_u16(self.avail_idx_addr(), Ordering::Acquire)
            .map_err(RingError::Area)?;
        Ok(Wrapping(idx) != self.next_avail)
    }
}

fn read_desc(
    mem: &GuestMem,
    table: GuestAddress,
    idx: u16,
) -> Result<(u64, u32, u16, u16), ChainError> {
    let at = table
        .0
        .checked_add(DESC_SIZE * u64::from(idx))
        .ok_or(ChainError::OutOfRange)?;
    let mut d = [0u8; 16];
    mem.read(GuestAddress(at), &mut d)
        .map_err(|_| ChainError::OutOfRange)?;
    let addr = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    let len = u32::from_le_bytes([d[8], d[9], d[10], d[11]]);
    let flags = u16::from_le_bytes([d[12], d[13]]);
    let next = u16::from_le_bytes([d[14], d[15]]);
    Ok((addr, len, flags, next))
}

#[cfg(test)]
#[path = "split_ring_tests.rs"]
mod tests;
