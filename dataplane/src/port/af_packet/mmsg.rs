//! `recvmmsg`/`sendmmsg` batches: every queue pair's transmit burst, and
//! the receive burst of [`AfPacketRxMode::Mmsg`](super::AfPacketRxMode::Mmsg).
//!
//! Unsafe code here: `sendmmsg`/`recvmmsg` and the control messages they
//! return (pointers to our own buffers, valid for the call).

use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, RawFd};

use super::{AfPacketPort, Rx, RxMeta, vlan_of};
use crate::packet::{Packet, PacketPool};
use crate::port::TxOutcome;
use crate::port::netdev::{ErrorLog, NetdevCounters, TxFailure, classify_tx_errno, errno, link_up};
use wire::complete_l4_checksum;

/// Most frames handed to the kernel in one `sendmmsg`/`recvmmsg`.
pub const SYSCALL_BATCH: usize = 64;

/// Headers for `sendmmsg`/`recvmmsg`, reused across bursts.
///
/// The raw pointers in `hdrs` and `iovs` are written right before each
/// system call and used only during it; between calls they are stale and
/// never dereferenced.
pub(crate) struct MsgBatch {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    /// Receive only: source addresses and control buffers.
    addrs: Vec<libc::sockaddr_ll>,
    cmsgs: Vec<[u64; 8]>,
    /// Receive only: the packets the current call fills.
    staged: Vec<Packet>,
}

impl std::fmt::Debug for MsgBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgBatch")
            .field("capacity", &self.hdrs.len())
            .finish()
    }
}

// SAFETY: the raw pointers inside are only meaningful during one system
// call made by the owner (see the type docs); the value owns no shared
// state.
unsafe impl Send for MsgBatch {}

impl MsgBatch {
    pub(crate) fn new(receive: bool) -> Self {
        // SAFETY: mmsghdr, iovec and sockaddr_ll are plain old data for
        // which all-zero (null pointers, zero lengths) is a valid value.
        let hdr: libc::mmsghdr = unsafe { zeroed() };
        // SAFETY: as above.
        let iov: libc::iovec = unsafe { zeroed() };
        // SAFETY: as above.
        let sll: libc::sockaddr_ll = unsafe { zeroed() };
        MsgBatch {
            hdrs: vec![hdr; SYSCALL_BATCH],
            iovs: vec![iov; SYSCALL_BATCH],
            addrs: if receive {
                vec![sll; SYSCALL_BATCH]
            } else {
                Vec::new()
            },
            cmsgs: if receive {
                vec![[0u64; 8]; SYSCALL_BATCH]
            } else {
                Vec::new()
            },
            staged: Vec::with_capacity(if receive { SYSCALL_BATCH } else { 0 }),
        }
    }

    /// `sendmmsg` of up to [`SYSCALL_BATCH`] frames; returns how many the
    /// kernel took, or the errno.
    fn send(&mut self, fd: RawFd, pkts: &[Packet]) -> Result<usize, i32> {
        let k = pkts.len().min(SYSCALL_BATCH);
        for (j, p) in pkts[..k].iter().enumerate() {
            let data = p.data();
            self.iovs[j] = libc::iovec {
                iov_base: data.as_ptr().cast_mut().cast(),
                iov_len: data.len(),
            };
            let h = &mut self.hdrs[j].msg_hdr;
            h.msg_name = std::ptr::null_mut();
            h.msg_namelen = 0;
            h.msg_iov = &raw mut self.iovs[j];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        // SAFETY: `hdrs[..k]` are initialised headers whose iovecs point
        // into the frames of `pkts`, which stay borrowed (and unmoved) for
        // the whole call; the kernel only reads the frames and writes
        // `msg_len` of each header.
        let rc = unsafe {
            libc::sendmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                k as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if rc < 0 {
            Err(errno())
        } else {
            Ok(rc as usize)
        }
    }

    /// `recvmmsg` into the buffers of `self.staged`; returns how many
    /// messages arrived, or the errno.
    fn recv(&mut self, fd: RawFd) -> Result<usize, i32> {
        let k = self.staged.len().min(SYSCALL_BATCH);
        for j in 0..k {
            let cap = self.staged[j].capacity();
            let Some(buf) = self.staged[j].prepare(cap) else {
                return Ok(0);
            };
            self.iovs[j] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let h = &mut self.hdrs[j].msg_hdr;
            h.msg_name = (&raw mut self.addrs[j]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            h.msg_iov = &raw mut self.iovs[j];
            h.msg_iovlen = 1;
            h.msg_control = self.cmsgs[j].as_mut_ptr().cast();
            h.msg_controllen = size_of::<[u64; 8]>();
            h.msg_flags = 0;
            self.hdrs[j].msg_len = 0;
        }
        // SAFETY: `hdrs[..k]` point to `iovs`, `addrs`, `cmsgs` (owned by
        // self, not touched during the call) and to the packet buffers of
        // `staged` (heap buffers that do not move while the packets sit in
        // the vector), each with its true length; the kernel writes at most
        // those lengths.
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                k as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            Err(errno())
        } else {
            Ok(rc as usize)
        }
    }

    /// Metadata of received message `i` (after a successful `recv`).
    fn rx_meta(&self, i: usize) -> RxMeta {
        let h = &self.hdrs[i];
        let len = h.msg_len as usize;
        let mut meta = RxMeta {
            len,
            mac: 0,
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            outgoing: self.addrs[i].sll_pkttype == libc::PACKET_OUTGOING,
            csum_partial: false,
            vlan: None,
        };
        // SAFETY: `msg_hdr` was filled by recvmmsg: its control pointer and
        // the length the kernel wrote describe `cmsgs[i]`, which is alive
        // and 8-aligned; CMSG_FIRSTHDR only reads the header fields.
        let mut c = unsafe { libc::CMSG_FIRSTHDR(&raw const h.msg_hdr) };
        while !c.is_null() {
            // SAFETY: CMSG_FIRSTHDR/NXTHDR return null or a pointer to a
            // complete cmsghdr inside the control buffer.
            let ch = unsafe { std::ptr::read_unaligned(c) };
            if ch.cmsg_level == libc::SOL_PACKET
                && ch.cmsg_type == libc::PACKET_AUXDATA
                && ch.cmsg_len as usize
                    >= size_of::<libc::cmsghdr>() + size_of::<libc::tpacket_auxdata>()
            {
                // SAFETY: `c` is a valid cmsghdr (see above); CMSG_DATA
                // only computes the address after it.
                let data = unsafe { libc::CMSG_DATA(c) };
                // SAFETY: the kernel wrote a whole tpacket_auxdata after
                // the header (length checked just above) inside the
                // control buffer.
                let aux = unsafe { std::ptr::read_unaligned(data.cast::<libc::tpacket_auxdata>()) };
                meta.vlan = vlan_of(aux.tp_status, aux.tp_vlan_tci, aux.tp_vlan_tpid);
                meta.csum_partial = aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0;
            }
            // SAFETY: `c` is a valid cmsghdr of this message (see above).
            c = unsafe { libc::CMSG_NXTHDR(&raw const h.msg_hdr, c) };
        }
        meta
    }
}

/// Sends `pkts` on the bound packet socket `fd` with `sendmmsg`, counting
/// what the kernel refused. Frees every packet to `pool`.
pub(crate) fn send_burst(
    fd: RawFd,
    batch: &mut MsgBatch,
    pkts: &mut Vec<Packet>,
    pool: &mut PacketPool,
    counters: &NetdevCounters,
    log: &mut ErrorLog,
) -> TxOutcome {
    let mut out = TxOutcome::default();
    let mut i = 0;
    let mut interrupted = 0;
    while i < pkts.len() {
        let end = (i + SYSCALL_BATCH).min(pkts.len());
        match batch.send(fd, &pkts[i..end]) {
            Ok(k) if k > 0 => {
                out.sent += k;
                out.bytes += pkts[i..i + k].iter().map(Packet::len).sum::<usize>();
                i += k;
            }
            Ok(_) => {
                // Nothing taken and no error: treat as a full queue.
                let rest = pkts.len() - i;
                counters.tx_queue_full.add(rest as u64);
                out.dropped += rest;
                break;
            }
            Err(e) => match classify_tx_errno(e) {
                TxFailure::Interrupted if interrupted < 4 => interrupted += 1,
                TxFailure::LinkDown => {
                    let rest = pkts.len() - i;
                    counters.tx_link_down.add(rest as u64);
                    out.dropped += rest;
                    log.note("sendmmsg", e);
                    break;
                }
                TxFailure::QueueFull | TxFailure::Interrupted => {
                    // With the qdisc bypassed, a link without carrier
                    // also says ENOBUFS: ask which it is (failure path
                    // only, one ioctl per burst).
                    let rest = pkts.len() - i;
                    if e == libc::ENOBUFS && link_up(fd, log.ifname()) == Some(false) {
                        counters.tx_link_down.add(rest as u64);
                        log.note("sendmmsg", e);
                    } else {
                        counters.tx_queue_full.add(rest as u64);
                    }
                    out.dropped += rest;
                    break;
                }
                TxFailure::Oversize => {
                    counters.tx_oversize.inc();
                    out.dropped += 1;
                    i += 1;
                }
                TxFailure::Other => {
                    counters.tx_errors.inc();
                    out.dropped += 1;
                    log.note("sendmmsg", e);
                    i += 1;
                }
            },
        }
    }
    pool.free_all(pkts);
    out
}

impl AfPacketPort {
    /// Receives a burst with one `recvmmsg` (mmsg mode).
    pub(super) fn rx_mmsg(
        &mut self,
        pool: &mut PacketPool,
        out: &mut Vec<Packet>,
        max: usize,
    ) -> usize {
        let Rx::Mmsg(batch) = &mut self.rx else {
            return 0;
        };
        let want = max.min(SYSCALL_BATCH);
        batch.staged.clear();
        while batch.staged.len() < want {
            match pool.alloc() {
                Some(p) => batch.staged.push(p),
                None => break,
            }
        }
        if batch.staged.is_empty() {
            self.counters.rx_no_buffer.inc();
            return 0;
        }
        let got = batch.recv(self.fd.as_raw_fd());
        let mut n = 0;
        match got {
            Ok(got) => {
                let mut staged = std::mem::take(&mut batch.staged);
                for (i, mut p) in staged.drain(..).enumerate() {
                    if i >= got {
                        pool.free(p);
                        continue;
                    }
                    let meta = batch.rx_meta(i);
                    if meta.outgoing {
                        pool.free(p);
                        continue;
                    }
                    match (meta.truncated, p.prepare(meta.len)) {
                        (false, Some(buf)) => {
                            if meta.csum_partial {
                                complete_l4_checksum(buf);
                            }
                        }
                        _ => {
                            self.counters.rx_oversize.inc();
                            pool.free(p);
                            continue;
                        }
                    }
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
                // Keep the vector's allocation for the next burst.
                batch.staged = staged;
            }
            Err(e) => {
                pool.free_all(&mut batch.staged);
                if e != libc::EAGAIN && e != libc::EINTR {
                    self.counters.rx_errors.inc();
                    self.log.note("recvmmsg", e);
                }
            }
        }
        n
    }
}
