//! The `TPACKET_V2` receive ring of the receiving queue pair
//! ([`AfPacketRxMode::Ring`](super::AfPacketRxMode::Ring)) and the receive
//! burst that copies frames out of it.
//!
//! Unsafe code here: the ring is a region shared with the kernel; it is
//! only accessed through raw pointers (the status word atomically), and a
//! frame's bytes are read only while its status says the kernel handed it
//! to us.

use std::mem::size_of;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{AfPacketConfig, AfPacketPort, Rx, RxMeta, vlan_of};
use crate::packet::{Packet, PacketPool};
use crate::port::netdev::NetdevError;
use crate::port::netdev::packet_socket::setsockopt;
use wire::complete_l4_checksum;

/// `TPACKET_V2` from `enum tpacket_versions`.
pub(super) const TPACKET_V2: libc::c_int = 1;

/// A `TPACKET_V2` receive ring.
///
/// Invariants: `base` maps `frame_nr * frame_size` bytes shared with the
/// kernel for the lifetime of this value; frame `i` starts at
/// `base + i * frame_size` (frames never straddle a block because the block
/// size is a multiple of the frame size); `head < frame_nr`.
#[derive(Debug)]
pub(super) struct RxRing {
    base: NonNull<u8>,
    map_len: usize,
    frame_size: usize,
    frame_nr: usize,
    head: usize,
}

// SAFETY: the ring is a memory mapping owned by this value alone; moving
// it to another thread moves the only user-space accessor with it.
unsafe impl Send for RxRing {}

/// Offset of the `sockaddr_ll` after the `tpacket2_hdr` in a ring frame.
const SLL_OFFSET: usize = (size_of::<libc::tpacket2_hdr>() + libc::TPACKET_ALIGNMENT - 1)
    & !(libc::TPACKET_ALIGNMENT - 1);

impl RxRing {
    pub(super) fn new(
        ifname: &str,
        fd: RawFd,
        cfg: &AfPacketConfig,
    ) -> Result<RxRing, NetdevError> {
        let frame_size = cfg.ring_frame_size.max(2048).next_power_of_two();
        let block_size = frame_size.max(1 << 16);
        let per_block = block_size / frame_size;
        let block_nr = cfg.ring_frames.max(per_block).div_ceil(per_block);
        let req = libc::tpacket_req {
            tp_block_size: block_size,
            tp_block_nr: block_nr,
            tp_frame_size: frame_size,
            tp_frame_nr: block_nr * per_block,
        };
        setsockopt(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| NetdevError::os(ifname, "PACKET_RX_RING", e))?;
        let map_len = block_size as usize * block_nr as usize;
        // SAFETY: a fresh shared mapping of the socket's ring (the kernel
        // checks the length against the ring it just set up); no existing
        // memory is touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(NetdevError::last_os(ifname, "mmap of the receive ring"));
        }
        let Some(base) = NonNull::new(ptr.cast::<u8>()) else {
            return Err(NetdevError::last_os(ifname, "mmap of the receive ring"));
        };
        Ok(RxRing {
            base,
            map_len,
            frame_size: frame_size as usize,
            frame_nr: req.tp_frame_nr as usize,
            head: 0,
        })
    }

    fn slot(&self, i: usize) -> *mut u8 {
        // SAFETY: `i < frame_nr` (callers pass `head`), so the offset stays
        // inside the mapping (struct invariant).
        unsafe { self.base.as_ptr().add(i * self.frame_size) }
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: every slot begins with the u32 `tp_status`, 4-aligned
        // (the mapping is page-aligned and frame_size a multiple of 16),
        // valid for the mapping's lifetime, which outlives `&self`; the
        // kernel also accesses it only atomically (smp_wmb/READ_ONCE).
        unsafe { AtomicU32::from_ptr(self.slot(i).cast::<u32>()) }
    }

    /// The head slot if the kernel has handed it to us.
    pub(super) fn user_frame(&mut self) -> Option<usize> {
        let st = self.status(self.head).load(Ordering::Acquire);
        (st & libc::TP_STATUS_USER != 0).then_some(self.head)
    }

    fn meta(&self, i: usize) -> RxMeta {
        let slot = self.slot(i);
        // SAFETY: the slot is ours (status USER, read with Acquire by
        // `user_frame`), so the kernel does not write its header now; the
        // header lies at the start of the slot, inside the mapping.
        let hdr = unsafe { std::ptr::read_volatile(slot.cast::<libc::tpacket2_hdr>()) };
        // SAFETY: as above; the sockaddr_ll follows the aligned header and
        // ends well inside a slot of at least 2048 bytes. It may be
        // unaligned for sockaddr_ll, hence read_unaligned.
        let sll = unsafe {
            std::ptr::read_unaligned(slot.wrapping_add(SLL_OFFSET).cast::<libc::sockaddr_ll>())
        };
        let mac = usize::from(hdr.tp_mac);
        let snap = hdr.tp_snaplen as usize;
        RxMeta {
            len: hdr.tp_len as usize,
            mac,
            truncated: snap < hdr.tp_len as usize
                || hdr.tp_status & libc::TP_STATUS_COPY != 0
                || mac + snap > self.frame_size,
            outgoing: sll.sll_pkttype == libc::PACKET_OUTGOING,
            csum_partial: hdr.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0,
            vlan: vlan_of(hdr.tp_status, hdr.tp_vlan_tci, hdr.tp_vlan_tpid),
        }
    }

    /// Copies the frame of slot `i` into `buf` (`buf.len() == meta.len`,
    /// and `meta` said it is not truncated).
    fn copy_frame(&self, i: usize, meta: &RxMeta, buf: &mut [u8]) {
        debug_assert!(meta.mac + buf.len() <= self.frame_size);
        if meta.mac + buf.len() > self.frame_size {
            return;
        }
        // SAFETY: the slot is ours (status USER), so the kernel does not
        // write it; `mac + len <= frame_size` was checked above, so the
        // source lies inside the slot; `buf` is a distinct, exclusively
        // borrowed buffer of exactly `len` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.slot(i).wrapping_add(meta.mac),
                buf.as_mut_ptr(),
                buf.len(),
            );
        }
    }

    /// Hands slot `i` (the head) back to the kernel and moves on.
    fn release(&mut self, i: usize) {
        self.status(i)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.head = (i + 1) % self.frame_nr;
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` are exactly the mapping made in `new`,
        // unmapped once here; no reference into it outlives `self`.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.map_len);
        }
    }
}

impl AfPacketPort {
    /// Receives a burst from the ring (ring mode).
    pub(super) fn rx_ring(
        &mut self,
        pool: &mut PacketPool,
        out: &mut Vec<Packet>,
        max: usize,
    ) -> usize {
        let Rx::Ring(ring) = &mut self.rx else {
            return 0;
        };
        let mut n = 0;
        while n < max {
            let Some(frame) = ring.user_frame() else {
                break;
            };
            let meta = ring.meta(frame);
            if meta.outgoing {
                ring.release(frame);
                continue;
            }
            if meta.truncated {
                self.counters.rx_oversize.inc();
                ring.release(frame);
                continue;
            }
            let Some(mut p) = pool.alloc() else {
                // Leave it in the ring for the next burst.
                self.counters.rx_no_buffer.inc();
                break;
            };
            let Some(buf) = p.prepare(meta.len) else {
                self.counters.rx_oversize.inc();
                pool.free(p);
                ring.release(frame);
                continue;
            };
            ring.copy_frame(frame, &meta, buf);
            if meta.csum_partial {
                complete_l4_checksum(buf);
            }
            ring.release(frame);
            if let Some((tpid, tci)) = meta.vlan
                && !p.push_vlan(tpid, tci)
            {
                self.counters.rx_errors.inc();
                pool.free(p);
                continue;
            }
            out.push(p);
            n += 1;
        }
        n
    }
}
