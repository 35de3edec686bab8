//! TAP internal port: the host's own interface on the switch.
//!
//! [`TapPort::create`] opens `/dev/net/tun` as a TAP device
//! (`IFF_TAP | IFF_NO_PI`, no virtio-net header), non-blocking, and sets
//! the interface up. The host's stack then sends frames into the switch
//! through it (each `read` of the fd is one frame) and receives what the
//! switch writes (each `write` is one frame).
//!
//! Other PMD threads get transmit-only handles ([`TapPort::tx_handle`]):
//! a `dup` of the fd that only ever writes, so each frame the host sends is
//! read by exactly one handle, the one `create` returned. The device is not
//! persistent: it disappears when the last handle is dropped.
//!
//! TAP has no batched I/O, so a burst costs one system call per frame
//! (plus one that finds the queue empty). Receive reads each frame into
//! the packet buffer followed by a scratch buffer, so a frame larger than
//! the packet buffer is seen whole, dropped and counted, never truncated.
//! The TAP's ring toward the switch holds [`TAP_QUEUE_FRAMES`] frames
//! (the kernel's default 500 overflowed under host bursts while an
//! adaptive PMD slept). Kernel errors are counters ([`NetdevCounters`]) with rate-limited logs,
//! as for AF_PACKET.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::netdev::ifreq::{Ifreq, IfreqIoctl};
use super::netdev::{
    ErrorLog, NetdevCounters, NetdevError, TxFailure, classify_tx_errno, set_link_up, set_mtu,
    set_tx_queue_len,
};
use super::{Port, TxOutcome};
use crate::packet::{Packet, PacketPool};

/// Scratch space after the packet buffer on receive: enough for any frame
/// a TAP device can carry (64 KiB).
const OVERFLOW: usize = 1 << 16;

/// Frames the TAP's ring holds until the switch reads them (the kernel's
/// default is 500). A host that sends a burst while an adaptive PMD
/// sleeps fills the ring before the PMD wakes: with 500, four senders
/// of 1,000 back-to-back datagrams each lost 2-4 frames at their TAPs in
/// 4 of 10 runs on the 2-core test machine; with 2048, none in 11. 2048
/// pointers are 16 KiB of kernel memory.
pub const TAP_QUEUE_FRAMES: u16 = 2048;

/// One handle of a TAP device. See the module docs.
pub struct TapPort {
    ifname: Arc<str>,
    fd: OwnedFd,
    /// Receive scratch space; `None` for transmit-only handles.
    overflow: Option<Box<[u8]>>,
    /// The device was deleted under us (EBADFD): its fd only reports
    /// errors now, so it offers no wake fd.
    dead: bool,
    counters: Arc<NetdevCounters>,
    log: ErrorLog,
}

impl std::fmt::Debug for TapPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapPort")
            .field("ifname", &self.ifname)
            .field("fd", &self.fd)
            .field("receives", &self.receives())
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

impl TapPort {
    /// Creates TAP device `name` (a `%d` in it is replaced by the kernel
    /// with a free number; see [`ifname`](Self::ifname)) with MTU `mtu`,
    /// sets it up and returns its receiving handle.
    pub fn create(name: &str, mtu: u16) -> Result<TapPort, NetdevError> {
        let mut ifr = Ifreq::new(name)?;
        // SAFETY: the path is a valid NUL-terminated string; open(2)
        // borrows it only for the call.
        let fd = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(NetdevError::last_os(name, "open /dev/net/tun"));
        }
        // SAFETY: `fd` was just returned by open(2) and is owned by nobody
        // else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        ifr.set_flags((libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short);
        ifr.ioctl(fd.as_raw_fd(), IfreqIoctl::TunSetIff)
            .map_err(|e| NetdevError::os(name, "TUNSETIFF (create TAP)", e))?;
        // The kernel wrote back the name it chose.
        let actual = ifr.name();
        set_mtu(&actual, mtu)?;
        set_tx_queue_len(&actual, TAP_QUEUE_FRAMES)?;
        set_link_up(&actual)?;
        Ok(TapPort {
            ifname: Arc::from(actual.as_str()),
            fd,
            overflow: Some(vec![0u8; OVERFLOW].into_boxed_slice()),
            dead: false,
            counters: Arc::default(),
            log: ErrorLog::new("tap", &actual),
        })
    }

    /// A transmit-only handle on the same device for another PMD: it
    /// shares the device (a `dup` of the fd) and never reads.
    pub fn tx_handle(&self) -> Result<TapPort, NetdevError> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| NetdevError::os(&self.ifname, "dup of the TAP fd", e))?;
        Ok(TapPort {
            ifname: Arc::clone(&self.ifname),
            fd,
            overflow: None,
            dead: false,
            counters: Arc::default(),
            log: ErrorLog::new("tap", &self.ifname),
        })
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Whether this handle receives (false for transmit-only handles).
    pub fn receives(&self) -> bool {
        self.overflow.is_some()
    }

    /// This handle's error counters.
    pub fn counters(&self) -> Arc<NetdevCounters> {
        Arc::clone(&self.counters)
    }
}

impl Port for TapPort {
    fn netdev_counters(&self) -> Option<Arc<NetdevCounters>> {
        Some(self.counters())
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<Packet>, max: usize) -> usize {
        let Some(overflow) = self.overflow.as_mut() else {
            return 0;
        };
        let mut n = 0;
        while n < max {
            let Some(mut p) = pool.alloc() else {
                self.counters.rx_no_buffer.inc();
                break;
            };
            let cap = p.capacity();
            let Some(buf) = p.prepare(cap) else {
                pool.free(p);
                break;
            };
            let iov = [
                libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                },
                libc::iovec {
                    iov_base: overflow.as_mut_ptr().cast(),
                    iov_len: overflow.len(),
                },
            ];
            // SAFETY: both iovecs describe live, exclusively borrowed
            // buffers (the packet's frame area and our scratch space) of
            // the stated lengths for the whole call; readv writes at most
            // that much.
            let rc = unsafe { libc::readv(self.fd.as_raw_fd(), iov.as_ptr(), 2) };
            if rc < 0 {
                pool.free(p);
                let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if e != libc::EAGAIN && e != libc::EINTR {
                    self.dead |= e == libc::EBADFD;
                    self.counters.rx_errors.inc();
                    self.log.note("TAP read", e);
                }
                break;
            }
            let len = rc as usize;
            if len > cap {
                self.counters.rx_oversize.inc();
                pool.free(p);
                continue;
            }
            if len == 0 || p.prepare(len).is_none() {
                pool.free(p);
                continue;
            }
            out.push(p);
            n += 1;
        }
        n
    }

    fn tx_burst(&mut self, pkts: &mut Vec<Packet>, pool: &mut PacketPool) -> TxOutcome {
        let mut out = TxOutcome::default();
        let mut stop: Option<TxFailure> = None;
        for p in pkts.iter() {
            if let Some(why) = stop {
                out.dropped += 1;
                match why {
                    TxFailure::LinkDown => self.counters.tx_link_down.inc(),
                    _ => self.counters.tx_queue_full.inc(),
                }
                continue;
            }
            let data = p.data();
            // SAFETY: `data` is a live buffer of `data.len()` bytes for the
            // whole call; write(2) only reads it.
            let rc = unsafe { libc::write(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
            if rc >= 0 {
                out.sent += 1;
                out.bytes += data.len();
                continue;
            }
            out.dropped += 1;
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            match classify_tx_errno(e) {
                TxFailure::LinkDown => {
                    self.dead |= e == libc::EBADFD;
                    self.counters.tx_link_down.inc();
                    self.log.note("TAP write", e);
                    stop = Some(TxFailure::LinkDown);
                }
                TxFailure::QueueFull | TxFailure::Interrupted => {
                    self.counters.tx_queue_full.inc();
                    stop = Some(TxFailure::QueueFull);
                }
                TxFailure::Oversize => self.counters.tx_oversize.inc(),
                TxFailure::Other => {
                    self.counters.tx_errors.inc();
                    self.log.note("TAP write", e);
                }
            }
        }
        pool.free_all(pkts);
        out
    }

    fn wake_fd(&self) -> Option<RawFd> {
        match (&self.overflow, self.dead) {
            (Some(_), false) => Some(self.fd.as_raw_fd()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
