//! Packet buffers, their per-thread pool, and bursts.
//!
//! A [`Packet`] owns one fixed-size buffer with [`HEADROOM`] bytes in front
//! of the frame, so pushing an 802.1Q tag moves 12 bytes of MAC addresses
//! instead of the whole frame. Buffers come from a [`PacketPool`] that is
//! filled once at start-up: on the fast path a packet is recycled, never
//! allocated (the pool counts the rare case where it must allocate or
//! give a buffer back to the allocator).
//!
//! A packet received from a vhost-user guest may leave the end of its
//! frame where it is, in the sending guest's memory: a [`Tail`]. The
//! switch then reads only the headers out of the guest, and the frame's
//! bulk is copied once, straight into the receiving guest's buffer. See
//! [`Packet::data`] and [`Packet::materialize`] for what that means to the
//! code that handles packets.

/// Bytes kept free in front of every frame for tag pushes.
pub const HEADROOM: usize = 64;

/// Frame bytes a packet with a [`Tail`] holds in its buffer at least:
/// every header the switch parses (Ethernet, two VLAN tags, IPv6, TCP)
/// is in the buffer, never in the tail.
pub const TAIL_MIN_HEAD: usize = 128;

/// Default number of packets in a burst: the unit of work everywhere.
pub const DEFAULT_BURST: usize = 32;

/// The end of a frame that still lies in the memory of the guest that
/// sent it (a zero-copy receive): `len` bytes at host address `ptr`.
///
/// Only a vhost-user port lends these, and only to its own PMD for the
/// time of one receive burst: the port keeps the guest's memory mapped
/// and the chains unreturned until the PMD has sent or dropped every
/// packet of the burst and calls [`crate::port::Port::rx_complete`].
/// Ports that cannot take a tail get the packet after
/// [`Packet::materialize`] (the PMD does it before their `tx_burst`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    ptr: *const u8,
    len: usize,
}

// A `Tail` is an address and a length, dereferenced only through
// `Packet::tail_slice` and `Packet::materialize` while the lending port
// keeps the memory mapped (see `Packet::set_tail`).
// SAFETY: only the PMD thread that received the packet dereferences it;
// packets that leave that PMD (memory ports) are materialized first.
unsafe impl Send for Tail {}

impl Tail {
    /// Bytes left in the guest.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no byte is left in the guest (never the case in practice).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A frame in a buffer with headroom, and possibly a [`Tail`].
///
/// Invariant: `head + len <= buf.len()` and `head <= HEADROOM + 4` after a
/// tag pop; every method keeps it. With a tail, `head + len + tail.len <=
/// buf.len()` too, so the frame can always be materialized.
#[derive(Debug)]
pub struct Packet {
    m: Box<PacketBuf>,
}

/// What a [`Packet`] owns, behind one pointer: the packet itself moves
/// as 8 bytes between the pool, the bursts and the output queues. At 64
/// bytes, the PMD's stores into guest memory wait for their lines, the
/// stores behind them wait in order, and every byte a packet move
/// stores queues up there too.
#[derive(Debug)]
struct PacketBuf {
    head: usize,
    len: usize,
    tail: Option<Tail>,
    origin: u16,
    buf: Box<[u8]>,
}

impl Packet {
    /// A packet with an empty frame in a new buffer of `buf_size` bytes
    /// (headroom included). Allocates: use [`PacketPool::alloc`] on the fast path.
    pub fn with_buffer_size(buf_size: usize) -> Self {
        let buf_size = buf_size.max(HEADROOM + 64);
        Packet {
            m: Box::new(PacketBuf {
                head: HEADROOM,
                len: 0,
                tail: None,
                origin: 0,
                buf: vec![0u8; buf_size].into_boxed_slice(),
            }),
        }
    }

    /// A packet holding a copy of `frame` (tests, generators). Allocates.
    pub fn from_frame(frame: &[u8]) -> Self {
        let mut p = Packet::with_buffer_size(HEADROOM + frame.len().max(2048));
        // Sized above to fit, so this cannot fail.
        let copied = p.set_frame(frame);
        debug_assert!(copied);
        p
    }

    /// The frame bytes in the buffer: the whole frame, or with a
    /// [`Tail`] its first bytes ([`TAIL_MIN_HEAD`] at least: every header
    /// the switch reads). [`Packet::len`] is the whole frame's length.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.m.buf[self.m.head..self.m.head + self.m.len]
    }

    /// The frame bytes in the buffer, writable (see [`Packet::data`]).
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.m.buf[self.m.head..self.m.head + self.m.len]
    }

    /// Frame length in bytes, tail included.
    #[inline]
    pub fn len(&self) -> usize {
        self.m.len + self.m.tail.map_or(0, |t| t.len)
    }

    /// True when the frame is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tail still in the sending guest's memory, if any.
    #[inline]
    pub fn tail(&self) -> Option<Tail> {
        self.m.tail
    }

    /// Leaves the last `len` bytes of the frame at `ptr` (after the
    /// [`Packet::data`] bytes already in the buffer). Returns false, and
    /// sets nothing, if the whole frame would not fit the buffer (then it
    /// could not be materialized) or the buffer holds fewer than
    /// [`TAIL_MIN_HEAD`] bytes.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads of `len` bytes until the packet is
    /// freed, materialized, or given another frame, and read only on this
    /// thread. Others may write those bytes meanwhile (guest memory): the
    /// packet only ever copies them, never makes a reference to them.
    #[inline]
    pub unsafe fn set_tail(&mut self, ptr: *const u8, len: usize) -> bool {
        if self.m.len < TAIL_MIN_HEAD || self.m.head + self.m.len + len > self.m.buf.len() {
            return false;
        }
        self.m.tail = Some(Tail { ptr, len });
        true
    }

    /// The tail as a volatile slice (for copies into guest memory).
    #[inline]
    pub fn tail_slice(&self) -> Option<vm_memory::VolatileSlice<'_>> {
        self.m.tail.map(|t| {
            // SAFETY: `set_tail`'s contract: `ptr` is valid for `len`
            // bytes while the packet holds the tail, and the slice borrows
            // the packet. A `VolatileSlice` only ever copies.
            unsafe { vm_memory::VolatileSlice::new(t.ptr.cast_mut(), t.len) }
        })
    }

    /// Copies the tail (if any) into the buffer, so [`Packet::data`] is
    /// the whole frame. Ports that are not vhost-user get their packets
    /// materialized by the PMD before `tx_burst`.
    #[inline]
    pub fn materialize(&mut self) {
        if let Some(t) = self.m.tail.take() {
            let at = self.m.head + self.m.len;
            // `set_tail` made sure the whole frame fits after any tag
            // push or pop (those move `head` by 4 and `len` by 4, within
            // the headroom, keeping `head + len` or reducing it).
            let end = (at + t.len).min(self.m.buf.len());
            let dst = &mut self.m.buf[at..end];
            // SAFETY: `set_tail`'s contract: `ptr` is valid for `t.len`
            // bytes; `dst` is our own buffer, so they do not overlap.
            let src = unsafe { vm_memory::VolatileSlice::new(t.ptr.cast_mut(), t.len) };
            src.copy_to(dst);
            self.m.len += dst.len();
        }
    }

    /// Largest frame this buffer can hold at the default headroom.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.m.buf.len() - HEADROOM
    }

    /// The port the frame entered the switch on (its "originating virtual
    /// port", the input of port-ID teaming). Set by the pipeline; 0 before.
    #[inline]
    pub fn origin(&self) -> u16 {
        self.m.origin
    }

    /// Records the port the frame entered the switch on.
    #[inline]
    pub fn set_origin(&mut self, port: u16) {
        self.m.origin = port;
    }

    /// Size of the whole buffer, headroom included.
    #[inline]
    pub fn buffer_size(&self) -> usize {
        self.m.buf.len()
    }

    /// Replaces the frame with a copy of `frame`. Returns false (and
    /// leaves the packet empty) if it does not fit.
    #[inline]
    pub fn set_frame(&mut self, frame: &[u8]) -> bool {
        self.m.head = HEADROOM;
        self.m.tail = None;
        if frame.len() > self.capacity() {
            self.m.len = 0;
            return false;
        }
        self.m.buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        self.m.len = frame.len();
        true
    }

    /// Makes the frame `len` bytes long at the default headroom and returns
    /// it for the caller to fill (a port's receive path writes into it
    /// directly). Returns `None` if `len` exceeds the capacity.
    #[inline]
    pub fn prepare(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > self.capacity() {
            return None;
        }
        self.m.tail = None;
        self.m.head = HEADROOM;
        self.m.len = len;
        Some(&mut self.m.buf[HEADROOM..HEADROOM + len])
    }

    /// Inserts a 4-byte 802.1Q tag (`tpid`, `tci`) after the MAC addresses.
    /// Returns false if the frame is shorter than 12 bytes or there is no
    /// headroom left (never the case for a frame that entered through a pool
    /// buffer and had at most one tag pushed).
    #[inline]
    pub fn push_vlan(&mut self, tpid: u16, tci: u16) -> bool {
        if self.m.len < 12 || self.m.head < 4 {
            return false;
        }
        let old = self.m.head;
        self.m.head -= 4;
        self.m.buf.copy_within(old..old + 12, self.m.head);
        let t = self.m.head + 12;
        self.m.buf[t..t + 2].copy_from_slice(&tpid.to_be_bytes());
        self.m.buf[t + 2..t + 4].copy_from_slice(&tci.to_be_bytes());
        self.m.len += 4;
        true
    }

    /// Removes the 4 bytes after the MAC addresses (an 802.1Q tag).
    /// Returns false if the frame is too short to hold one.
    #[inline]
    pub fn pop_vlan(&mut self) -> bool {
        if self.m.len < 16 {
            return false;
        }
        let old = self.m.head;
        self.m.buf.copy_within(old..old + 12, old + 4);
        self.m.head += 4;
        self.m.len -= 4;
        true
    }

    /// Rewrites the TCI of the outer tag in place (frame must be tagged).
    #[inline]
    pub fn set_vlan_tci(&mut self, tci: u16) {
        if self.m.len >= 16 {
            let t = self.m.head + 14;
            self.m.buf[t..t + 2].copy_from_slice(&tci.to_be_bytes());
        }
    }

    /// Copies this packet's frame into `other` (used when flooding).
    #[inline]
    pub fn copy_into(&self, other: &mut Packet) -> bool {
        other.m.origin = self.m.origin;
        if !other.set_frame(self.data()) {
            return false;
        }
        match self.m.tail {
            // SAFETY: the same tail, under the same contract, on the same
            // thread; `set_tail` checks that it fits the other buffer.
            Some(t) => unsafe { other.set_tail(t.ptr, t.len) },
            None => true,
        }
    }
}

/// A per-thread stack of free packet buffers, all of one size.
///
/// Not shared between threads: each PMD owns one. Packets that arrive from
/// elsewhere (a memory port fed by another thread) are adopted on free if
/// they have the pool's buffer size and the pool has room.
#[derive(Debug)]
pub struct PacketPool {
    free: Vec<Packet>,
    capacity: usize,
    buf_size: usize,
    /// Allocations that happened because the pool ran dry.
    pub allocations: u64,
    /// Buffers released to the allocator because the pool was full or the
    /// buffer had another size.
    pub releases: u64,
}

impl PacketPool {
    /// A pool holding `count` buffers of `buf_size` bytes (headroom included).
    pub fn new(count: usize, buf_size: usize) -> Self {
        let buf_size = buf_size.max(HEADROOM + 64);
        let free = (0..count)
            .map(|_| Packet::with_buffer_size(buf_size))
            .collect();
        PacketPool {
            free,
            capacity: count,
            buf_size,
            allocations: 0,
            releases: 0,
        }
    }

    /// Buffer size, headroom included.
    pub fn buffer_size(&self) -> usize {
        self.buf_size
    }

    /// Free buffers right now.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// A recycled empty packet, or `None` when the pool is empty.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        let mut p = self.free.pop()?;
        p.m.head = HEADROOM;
        p.m.len = 0;
        p.m.origin = 0;
        p.m.tail = None;
        Some(p)
    }

    /// A packet even when the pool is dry (allocates then, and counts it).
    /// For generators and tests, not for the forwarding path.
    pub fn alloc_or_new(&mut self) -> Packet {
        match self.alloc() {
            Some(p) => p,
            None => {
                self.allocations += 1;
                Packet::with_buffer_size(self.buf_size)
            }
        }
    }

    /// Gives a packet back.
    #[inline]
    pub fn free(&mut self, mut p: Packet) {
        p.m.tail = None;
        if self.free.len() < self.capacity && p.buffer_size() == self.buf_size {
            self.free.push(p);
        } else {
            self.releases += 1;
        }
    }

    /// Gives back every packet of a burst, leaving it empty.
    #[inline]
    pub fn free_all(&mut self, pkts: &mut Vec<Packet>) {
        for p in pkts.drain(..) {
            self.free(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_moves_as_one_pointer() {
        assert_eq!(std::mem::size_of::<Packet>(), 8);
        assert_eq!(std::mem::size_of::<Option<Packet>>(), 8);
    }

    #[test]
    fn push_then_pop_restores_frame() {
        let frame: Vec<u8> = (0u8..64).collect();
        let mut p = Packet::from_frame(&frame);
        assert!(p.push_vlan(0x8100, 0x200a));
        assert_eq!(p.len(), 68);
        assert_eq!(&p.data()[..12], &frame[..12]);
        assert_eq!(&p.data()[12..16], &[0x81, 0x00, 0x20, 0x0a]);
        assert_eq!(&p.data()[16..], &frame[12..]);
        assert!(p.pop_vlan());
        assert_eq!(p.data(), &frame[..]);
    }

    #[test]
    fn short_frames_refuse_tag_ops() {
        let mut p = Packet::from_frame(&[1, 2, 3]);
        assert!(!p.push_vlan(0x8100, 1));
        assert!(!p.pop_vlan());
        assert_eq!(p.data(), &[1, 2, 3]);
    }

    #[test]
    fn pool_recycles_without_allocating() {
        let mut pool = PacketPool::new(4, 2048);
        let a: Vec<Packet> = (0..4).filter_map(|_| pool.alloc()).collect();
        assert_eq!(a.len(), 4);
        assert!(pool.alloc().is_none());
        for p in a {
            pool.free(p);
        }
        assert_eq!(pool.available(), 4);
        assert_eq!(pool.allocations, 0);
        // A buffer of a foreign size is released, not adopted.
        pool.free(Packet::with_buffer_size(4096));
        assert_eq!(pool.releases, 1);
    }

    #[test]
    fn a_tail_counts_in_the_length_and_materializes_after_tag_changes() {
        let frame: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut p = Packet::with_buffer_size(HEADROOM + 2048);
        p.set_frame(&frame[..TAIL_MIN_HEAD]);
        let rest = &frame[TAIL_MIN_HEAD..];
        // SAFETY: `rest` outlives the packet's use of it in this test.
        assert!(unsafe { p.set_tail(rest.as_ptr(), rest.len()) });
        assert_eq!(p.len(), 1000);
        assert_eq!(p.data().len(), TAIL_MIN_HEAD);
        assert!(p.push_vlan(0x8100, 7));
        assert!(p.pop_vlan());
        assert!(p.push_vlan(0x8100, 9));
        assert_eq!(p.len(), 1004);
        let mut copy = Packet::with_buffer_size(HEADROOM + 2048);
        assert!(p.copy_into(&mut copy));
        p.materialize();
        assert!(p.tail().is_none());
        assert_eq!(p.len(), 1004);
        assert_eq!(&p.data()[..12], &frame[..12]);
        assert_eq!(&p.data()[16..], &frame[12..]);
        copy.materialize();
        assert_eq!(copy.data(), p.data());
        // A new frame drops the tail; a tail that could not be
        // materialized into the buffer is refused.
        p.set_frame(&frame[..200]);
        assert_eq!(p.len(), 200);
        let mut small = Packet::with_buffer_size(HEADROOM + 512);
        small.set_frame(&frame[..TAIL_MIN_HEAD]);
        // SAFETY: as above.
        assert!(!unsafe { small.set_tail(rest.as_ptr(), rest.len()) });
        let mut short = Packet::from_frame(&frame[..64]);
        // SAFETY: as above.
        let refused = !unsafe { short.set_tail(rest.as_ptr(), 10) };
        assert!(refused, "headers must be in the buffer");
    }

    #[test]
    fn oversized_frame_is_refused() {
        let mut p = Packet::with_buffer_size(HEADROOM + 100);
        assert!(!p.set_frame(&[0u8; 200]));
        assert!(p.is_empty());
        assert!(p.prepare(101).is_none());
        assert_eq!(p.prepare(100).map(|b| b.len()), Some(100));
    }
}
