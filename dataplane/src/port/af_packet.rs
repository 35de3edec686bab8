//! AF_PACKET uplink port: any Linux netdev as a switch port.
//!
//! One [`AfPacketPort`] is one queue pair on one interface:
//!
//! - the **receiving** queue pair ([`AfPacketPort::open`]) is a raw
//!   `ETH_P_ALL` socket in promiscuous mode (`PACKET_MR_PROMISC`: an uplink
//!   must see frames for guest MACs) with a `TPACKET_V2` receive ring mapped
//!   into our memory, so a burst costs no syscall when frames wait;
//! - **tx-only** queue pairs for the other PMD threads
//!   ([`AfPacketPort::open_tx_only`]) are raw sockets bound with protocol 0:
//!   the kernel never queues a received frame on them, so every frame on
//!   the wire is received by exactly one socket of ours.
//!
//! Transmission is `sendmmsg` (one syscall per burst) with
//! `PACKET_QDISC_BYPASS`: frames go straight to the driver, and a link
//! without carrier refuses them (`ENOBUFS`/`ENETDOWN`) instead of vanishing
//! in a no-op qdisc, so drops are counted. Our own transmissions are not
//! looped back to the receive ring (`PACKET_IGNORE_OUTGOING`, and frames
//! marked `PACKET_OUTGOING` are skipped should an older kernel ignore the
//! option).
//!
//! **Receive modes.** The ring ([`AfPacketRxMode::Ring`], the default) was
//! measured against batched copies with `recvmmsg`
//! ([`AfPacketRxMode::Mmsg`]): see "Uplink ports (veth)" in BENCHMARKS.md.
//! The ring copies each frame twice (kernel to ring, ring to packet) but
//! needs no syscall while frames wait; `recvmmsg` copies once but pays a
//! syscall (and per-message socket locking) per burst.
//!
//! **VLANs.** The kernel strips the outer 802.1Q/802.1ad tag on receive
//! into the packet's metadata (`tp_vlan_tci`, `tp_vlan_tpid`). Uplinks are
//! trunks, so the port puts the tag back: the switch sees every frame as it
//! was on the wire.
//!
//! **Checksums.** Frames from the host's own stack or from a veth peer
//! can arrive with the TCP/UDP checksum left for the NIC to fill in
//! (`TP_STATUS_CSUMNOTREADY`); the port completes it in software (IPv4,
//! and IPv6 without extension headers), or the frame would reach guests
//! and the wire with a wrong checksum. Segmentation offload is the other
//! half of that story and is not handled here: a veth peer with TSO/GSO on
//! may hand over frames larger than the MTU, which do not fit and are
//! counted as `rx_oversize`; wire-sized frames need `ethtool -K PEER tso
//! off gso off` on such peers (and GRO/LRO off on the uplink itself).
//!
//! **Failure.** A link that goes down or an interface that disappears
//! makes transmit bursts count their frames as dropped and receive bursts
//! return nothing; every kernel error is a counter ([`NetdevCounters`])
//! plus at most one log line per [`LOG_INTERVAL`]. A frame that does not
//! fit the packet buffer (or the ring frame) is dropped and counted, never
//! truncated.
//!
//! Unsafe code here: socket options and `sendmmsg`/`recvmmsg` (pointers to
//! our own buffers, valid for the call), and the receive ring, a region
//! shared with the kernel: it is only accessed through raw pointers (the
//! status word atomically), and a frame's bytes are read only while its
//! status says the kernel handed it to us.

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Port, TxOutcome};
use crate::packet::{Packet, PacketPool};
use crate::stats::Counter;

/// Most frames handed to the kernel in one `sendmmsg`/`recvmmsg`.
pub const SYSCALL_BATCH: usize = 64;

/// Kernel errors on the fast path are logged at most once per interval
/// (with the number of errors suppressed meanwhile).
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// `TPACKET_V2` from `enum tpacket_versions`.
const TPACKET_V2: libc::c_int = 1;

/// Ethernet type carried in an 802.1Q tag when the kernel does not report
/// the TPID.
const ETH_P_8021Q: u16 = 0x8100;

/// Errors of opening a netdev port: they name the interface and the step.
#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    /// The name is empty, too long or holds a NUL byte.
    #[error("{ifname:?}: invalid interface name")]
    BadName {
        /// The name as given.
        ifname: String,
    },
    /// No interface has that name (in this network namespace).
    #[error("{ifname}: no such interface")]
    NoSuchInterface {
        /// The interface.
        ifname: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// A system call failed.
    #[error("{ifname}: {step} failed")]
    Os {
        /// The interface.
        ifname: String,
        /// What was being done, e.g. "XDP attach in skb mode".
        step: &'static str,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The kernel refused, with an explanation of its own (netlink
    /// extended ack, BPF verifier log).
    #[error("{ifname}: {step} failed ({detail})")]
    Refused {
        /// The interface.
        ifname: String,
        /// What was being done.
        step: &'static str,
        /// The kernel's explanation.
        detail: String,
        /// The error code.
        #[source]
        source: io::Error,
    },
}

impl NetdevError {
    /// An `Os` error from `errno`.
    pub(crate) fn last_os(ifname: &str, step: &'static str) -> Self {
        NetdevError::Os {
            ifname: ifname.to_owned(),
            step,
            source: io::Error::last_os_error(),
        }
    }

    /// An `Os` error from an `io::Error`.
    pub(crate) fn os(ifname: &str, step: &'static str, source: io::Error) -> Self {
        NetdevError::Os {
            ifname: ifname.to_owned(),
            step,
            source,
        }
    }
}

/// Per-queue-pair error counters of a netdev port (AF_PACKET, AF_XDP,
/// TAP). Written by the owning PMD, readable from any thread through the
/// `Arc` the port hands out.
#[derive(Debug, Default)]
pub struct NetdevCounters {
    /// Received frames dropped because they did not fit the packet buffer
    /// (or were truncated by the kernel to the ring's frame size).
    pub rx_oversize: Counter,
    /// Received frames left in (or dropped from) the kernel queue because
    /// the packet pool was empty.
    pub rx_no_buffer: Counter,
    /// Receive system calls that failed for another reason than "nothing
    /// waiting" (a link gone down or an interface gone away among them).
    pub rx_errors: Counter,
    /// Frames dropped on transmit because the link is down or the
    /// interface is gone (ENETDOWN, ENXIO, ENODEV, EIO, EBADFD).
    pub tx_link_down: Counter,
    /// Frames dropped on transmit because the kernel queue was full or the
    /// driver refused them (ENOBUFS, EAGAIN, EBUSY, or a full AF_XDP ring).
    pub tx_queue_full: Counter,
    /// Frames dropped on transmit because they exceed the interface MTU
    /// (EMSGSIZE).
    pub tx_oversize: Counter,
    /// Frames dropped on transmit for any other kernel error.
    pub tx_errors: Counter,
}

/// Values of [`NetdevCounters`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct NetdevCountersSnapshot {
    pub rx_oversize: u64,
    pub rx_no_buffer: u64,
    pub rx_errors: u64,
    pub tx_link_down: u64,
    pub tx_queue_full: u64,
    pub tx_oversize: u64,
    pub tx_errors: u64,
}

impl NetdevCounters {
    /// Current values.
    pub fn snapshot(&self) -> NetdevCountersSnapshot {
        NetdevCountersSnapshot {
            rx_oversize: self.rx_oversize.get(),
            rx_no_buffer: self.rx_no_buffer.get(),
            rx_errors: self.rx_errors.get(),
            tx_link_down: self.tx_link_down.get(),
            tx_queue_full: self.tx_queue_full.get(),
            tx_oversize: self.tx_oversize.get(),
            tx_errors: self.tx_errors.get(),
        }
    }
}

impl NetdevCountersSnapshot {
    /// All transmit drops.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_link_down + self.tx_queue_full + self.tx_oversize + self.tx_errors
    }
}

/// How a failed transmit system call is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxFailure {
    /// Link down or interface gone: drop the rest of the burst.
    LinkDown,
    /// Queue full: drop the rest of the burst (no back-pressure).
    QueueFull,
    /// The kernel was interrupted: try again.
    Interrupted,
    /// This frame is too large for the link: drop it, go on.
    Oversize,
    /// Something about this frame: drop it, go on.
    Other,
}

/// Sorts a transmit `errno`.
pub(crate) fn classify_tx_errno(errno: i32) -> TxFailure {
    match errno {
        libc::ENETDOWN | libc::ENXIO | libc::ENODEV | libc::EIO | libc::EBADFD => {
            TxFailure::LinkDown
        }
        libc::ENOBUFS | libc::EAGAIN | libc::EBUSY | libc::ENOMEM => TxFailure::QueueFull,
        libc::EINTR => TxFailure::Interrupted,
        libc::EMSGSIZE => TxFailure::Oversize,
        _ => TxFailure::Other,
    }
}

/// At most one log line per [`LOG_INTERVAL`] for fast-path kernel errors.
#[derive(Debug)]
pub(crate) struct ErrorLog {
    ifname: Arc<str>,
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    pub(crate) fn new(ifname: &str) -> Self {
        ErrorLog {
            ifname: Arc::from(ifname),
            last: None,
            suppressed: 0,
        }
    }

    /// The interface name.
    pub(crate) fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Notes a failed `what` with `errno`; logs it if the last line is old
    /// enough.
    #[cold]
    pub(crate) fn note(&mut self, what: &'static str, errno: i32) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            interface = %self.ifname,
            error = %io::Error::from_raw_os_error(errno),
            suppressed = self.suppressed,
            "{what} failed (further errors counted, logged at most every {}s)",
            LOG_INTERVAL.as_secs()
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The index of interface `ifname` in the calling thread's namespace.
pub(crate) fn ifindex(ifname: &str) -> Result<u32, NetdevError> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains('\0') {
        return Err(NetdevError::BadName {
            ifname: ifname.to_owned(),
        });
    }
    nix::net::if_::if_nametoindex(ifname).map_err(|e| NetdevError::NoSuchInterface {
        ifname: ifname.to_owned(),
        source: io::Error::from(e),
    })
}

/// Whether interface `ifname` has carrier, asked through socket `fd` (of
/// the interface's namespace): `ETHTOOL_GLINK` (the driver's view, updated
/// at once), else `IFF_RUNNING` (which lags behind by the kernel's link
/// watch, up to a second). `None` if the kernel does not say (interface
/// gone, bad name).
pub(crate) fn link_running(fd: RawFd, ifname: &str) -> Option<bool> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GLINK: u32 = 0x0000_000a;
    let name = c_ifname(ifname).ok()?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.to_bytes()) {
        *d = *s as libc::c_char;
    }
    // struct ethtool_value { u32 cmd; u32 data; }
    let mut value: [u32; 2] = [ETHTOOL_GLINK, 0];
    ifr.ifr_ifru.ifru_data = value.as_mut_ptr().cast();
    // SAFETY: SIOCETHTOOL with ETHTOOL_GLINK reads the name and writes
    // the 8-byte ethtool_value `ifru_data` points to; both `ifr` and
    // `value` are live, exclusively borrowed locals for the call.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL as libc::Ioctl, &raw mut ifr) };
    if rc == 0 {
        return Some(value[1] != 0);
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.to_bytes()) {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `ifr`,
    // a valid, exclusively borrowed ifreq, during the call only.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS as libc::Ioctl, &raw mut ifr) };
    if rc < 0 {
        return None;
    }
    // SAFETY: SIOCGIFFLAGS succeeded, so it filled `ifru_flags`.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    Some(i32::from(flags) & libc::IFF_RUNNING != 0)
}

/// Reads (and so clears) a pending socket error (`SO_ERROR`); returns it.
pub(crate) fn take_socket_error(fd: RawFd) -> i32 {
    let mut err: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid, exclusively borrowed locals for
    // the call and `len` holds the size of `err`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &raw mut len,
        )
    };
    if rc == 0 { err } else { 0 }
}

/// `setsockopt(fd, level, name, &value)`.
pub(crate) fn setsockopt<T>(fd: RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialised `T` borrowed for the whole
    // call and the length passed is exactly its size; the kernel only
    // reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A new non-blocking raw packet socket, not yet bound (so it receives
/// nothing).
fn packet_socket(ifname: &str) -> Result<OwnedFd, NetdevError> {
    // SAFETY: plain socket(2) call with constant arguments; no memory is
    // passed.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(NetdevError::last_os(ifname, "AF_PACKET socket"));
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a packet socket to `ifindex` with `protocol` (host order; 0 means
/// "receive nothing").
fn bind_packet(fd: RawFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll living for the call and the
    // length given is its size.
    let rc = unsafe {
        libc::bind(
            fd,
            (&raw const sll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How the receiving queue pair takes frames from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AfPacketRxMode {
    /// A `TPACKET_V2` ring mapped into our memory (no syscall per burst).
    #[default]
    Ring,
    /// `recvmmsg` into the packet buffers (one syscall per burst).
    Mmsg,
}

/// Options of an AF_PACKET port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Receive mode.
    pub rx_mode: AfPacketRxMode,
    /// Frames in the receive ring (rounded to whole blocks).
    pub ring_frames: u32,
    /// Bytes per ring frame, a power of two of at least 2048: the largest
    /// frame received is this minus about 100 bytes of metadata.
    pub ring_frame_size: u32,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            rx_mode: AfPacketRxMode::Ring,
            ring_frames: 4096,
            ring_frame_size: 2048,
        }
    }
}

/// One queue pair of an AF_PACKET port. See the module docs.
#[derive(Debug)]
pub struct AfPacketPort {
    ifname: Arc<str>,
    fd: OwnedFd,
    rx: Rx,
    tx: MsgBatch,
    counters: Arc<NetdevCounters>,
    log: ErrorLog,
    kernel_drops: u64,
}

#[derive(Debug)]
enum Rx {
    None,
    Ring(RxRing),
    Mmsg(MsgBatch),
}

impl AfPacketPort {
    /// Opens the receiving (and sending) queue pair on `ifname` with the
    /// default options: ring receive, promiscuous mode.
    pub fn open(ifname: &str) -> Result<AfPacketPort, NetdevError> {
        Self::open_with(ifname, &AfPacketConfig::default())
    }

    /// Opens the receiving (and sending) queue pair with `cfg`.
    pub fn open_with(ifname: &str, cfg: &AfPacketConfig) -> Result<AfPacketPort, NetdevError> {
        let index = ifindex(ifname)?;
        let fd = packet_socket(ifname)?;
        let raw = fd.as_raw_fd();
        common_tx_options(ifname, raw)?;
        // Our own transmissions must not come back to us. Kernels before
        // 4.20 lack the option; the PACKET_OUTGOING check covers them.
        let _ = setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32);
        let rx = match cfg.rx_mode {
            AfPacketRxMode::Ring => {
                setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V2)
                    .map_err(|e| NetdevError::os(ifname, "PACKET_VERSION TPACKET_V2", e))?;
                Rx::Ring(RxRing::new(ifname, raw, cfg)?)
            }
            AfPacketRxMode::Mmsg => {
                setsockopt(raw, libc::SOL_PACKET, libc::PACKET_AUXDATA, &1i32)
                    .map_err(|e| NetdevError::os(ifname, "PACKET_AUXDATA", e))?;
                // The socket queue is the only buffer in this mode: make it
                // hold a few thousand frames (FORCE needs CAP_NET_ADMIN;
                // the plain option is capped by net.core.rmem_max).
                let bytes = 8i32 << 20;
                if setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &bytes).is_err() {
                    let _ = setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &bytes);
                }
                Rx::Mmsg(MsgBatch::new(true))
            }
        };
        // SAFETY: packet_mreq is plain old data; all-zero is a valid value.
        let mut mreq: libc::packet_mreq = unsafe { zeroed() };
        mreq.mr_ifindex = index as i32;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        setsockopt(raw, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| NetdevError::os(ifname, "promiscuous mode (PACKET_MR_PROMISC)", e))?;
        // Bound last, so nothing is queued before the ring exists.
        bind_packet(raw, index, libc::ETH_P_ALL as u16)
            .map_err(|e| NetdevError::os(ifname, "AF_PACKET bind", e))?;
        Ok(AfPacketPort {
            ifname: Arc::from(ifname),
            fd,
            rx,
            tx: MsgBatch::new(false),
            counters: Arc::default(),
            log: ErrorLog::new(ifname),
            kernel_drops: 0,
        })
    }

    /// Opens a transmit-only queue pair on `ifname` (for the PMDs that do
    /// not poll this uplink): bound with protocol 0, the socket never
    /// receives a frame, so each frame on the wire reaches exactly one of
    /// our sockets (the one [`open`](Self::open) made). Its
    /// [`rx_burst`](Port::rx_burst) always returns 0.
    pub fn open_tx_only(ifname: &str) -> Result<AfPacketPort, NetdevError> {
        let index = ifindex(ifname)?;
        let fd = packet_socket(ifname)?;
        common_tx_options(ifname, fd.as_raw_fd())?;
        bind_packet(fd.as_raw_fd(), index, 0)
            .map_err(|e| NetdevError::os(ifname, "AF_PACKET bind", e))?;
        Ok(AfPacketPort {
            ifname: Arc::from(ifname),
            fd,
            rx: Rx::None,
            tx: MsgBatch::new(false),
            counters: Arc::default(),
            log: ErrorLog::new(ifname),
            kernel_drops: 0,
        })
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Whether this queue pair receives (false for tx-only handles).
    pub fn receives(&self) -> bool {
        !matches!(self.rx, Rx::None)
    }

    /// This queue pair's error counters.
    pub fn counters(&self) -> Arc<NetdevCounters> {
        Arc::clone(&self.counters)
    }

    /// Frames the kernel dropped before we saw them (ring or socket queue
    /// full), since the port was opened (`PACKET_STATISTICS`; a system
    /// call, for the control path).
    pub fn kernel_rx_dropped(&mut self) -> u64 {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `st` and `len` are valid, exclusively borrowed locals and
        // `len` holds the size of `st`; the kernel writes at most that.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut st).cast(),
                &raw mut len,
            )
        };
        // Reading resets the kernel's counters: keep the sum.
        if rc == 0 {
            self.kernel_drops += u64::from(st.tp_drops);
        }
        self.kernel_drops
    }

    fn rx_ring(&mut self, pool: &mut PacketPool, out: &mut Vec<Packet>, max: usize) -> usize {
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

    fn rx_mmsg(&mut self, pool: &mut PacketPool, out: &mut Vec<Packet>, max: usize) -> usize {
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

/// Options every sending socket gets.
fn common_tx_options(ifname: &str, fd: RawFd) -> Result<(), NetdevError> {
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1i32)
        .map_err(|e| NetdevError::os(ifname, "PACKET_QDISC_BYPASS", e))
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
                    if e == libc::ENOBUFS && link_running(fd, log.ifname()) == Some(false) {
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

impl Port for AfPacketPort {
    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<Packet>, max: usize) -> usize {
        match self.rx {
            Rx::None => 0,
            Rx::Ring(_) => self.rx_ring(pool, out, max),
            Rx::Mmsg(_) => self.rx_mmsg(pool, out, max),
        }
    }

    fn tx_burst(&mut self, pkts: &mut Vec<Packet>, pool: &mut PacketPool) -> TxOutcome {
        if pkts.is_empty() {
            return TxOutcome::default();
        }
        send_burst(
            self.fd.as_raw_fd(),
            &mut self.tx,
            pkts,
            pool,
            &self.counters,
            &mut self.log,
        )
    }

    fn wake_fd(&self) -> Option<RawFd> {
        match self.rx {
            Rx::None => None,
            _ => Some(self.fd.as_raw_fd()),
        }
    }

    fn set_rx_notify(&mut self, on: bool) -> bool {
        if !on {
            return false;
        }
        // A link that went down (or away) leaves an error on the socket
        // that keeps poll() returning at once: read it, which clears it,
        // so a sleeping PMD really sleeps.
        if !matches!(self.rx, Rx::None) {
            take_socket_error(self.fd.as_raw_fd());
        }
        match &mut self.rx {
            Rx::None => false,
            Rx::Ring(ring) => ring.user_frame().is_some(),
            // Readiness of the socket itself is checked by the PMD's poll.
            Rx::Mmsg(_) => false,
        }
    }
}

/// What the kernel told us about one received frame.
#[derive(Clone, Copy, Debug)]
struct RxMeta {
    len: usize,
    /// Offset of the frame in the ring slot (ring mode only).
    mac: usize,
    /// The kernel kept fewer bytes than the frame had.
    truncated: bool,
    /// Our own transmission, looped back.
    outgoing: bool,
    /// The L4 checksum is left for "hardware" to fill in
    /// (`TP_STATUS_CSUMNOTREADY`: a local sender or a veth peer).
    csum_partial: bool,
    /// The outer tag the kernel stripped: (TPID, TCI).
    vlan: Option<(u16, u16)>,
}

fn vlan_of(status: u32, tci: u16, tpid: u16) -> Option<(u16, u16)> {
    if status & libc::TP_STATUS_VLAN_VALID == 0 {
        return None;
    }
    let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
        tpid
    } else {
        ETH_P_8021Q
    };
    Some((tpid, tci))
}

/// A `TPACKET_V2` receive ring.
///
/// Invariants: `base` maps `frame_nr * frame_size` bytes shared with the
/// kernel for the lifetime of this value; frame `i` starts at
/// `base + i * frame_size` (frames never straddle a block because the block
/// size is a multiple of the frame size); `head < frame_nr`.
#[derive(Debug)]
struct RxRing {
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
    fn new(ifname: &str, fd: RawFd, cfg: &AfPacketConfig) -> Result<RxRing, NetdevError> {
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
    fn user_frame(&mut self) -> Option<usize> {
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

/// Fills in the TCP or UDP checksum of an Ethernet frame (untagged, or
/// with 802.1Q/802.1ad tags) carrying unfragmented IPv4, or IPv6 without
/// extension headers. The kernel hands over frames from local senders and
/// veth peers with the checksum left for the NIC (`CHECKSUM_PARTIAL`);
/// on the switch they would reach guests and the wire with a wrong one.
/// Returns false, leaving the frame as it is, for anything else.
pub(crate) fn complete_l4_checksum(f: &mut [u8]) -> bool {
    let be16 = |f: &[u8], o: usize| f.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut off = 12;
    let mut ethertype = be16(f, off);
    while matches!(ethertype, Some(0x8100 | 0x88a8)) {
        off += 4;
        ethertype = be16(f, off);
    }
    let l3 = off + 2;
    let (proto, l4, l4_len, mut sum) = match ethertype {
        Some(0x0800) => {
            let Some(&vihl) = f.get(l3) else {
                return false;
            };
            let ihl = usize::from(vihl & 0x0f) * 4;
            let (Some(total), Some(frag)) = (be16(f, l3 + 2), be16(f, l3 + 6)) else {
                return false;
            };
            // A fragment (offset or more-fragments set) has no L4 checksum
            // of its own to complete.
            if vihl >> 4 != 4 || ihl < 20 || frag & 0x3fff != 0 {
                return false;
            }
            let total = usize::from(total);
            let Some(l4_len) = total.checked_sub(ihl) else {
                return false;
            };
            let Some(addrs) = f.get(l3 + 12..l3 + 20) else {
                return false;
            };
            (f[l3 + 9], l3 + ihl, l4_len, ones_sum(addrs, 0))
        }
        Some(0x86dd) => {
            let (Some(payload), Some(addrs)) = (be16(f, l3 + 4), f.get(l3 + 8..l3 + 40)) else {
                return false;
            };
            (f[l3 + 6], l3 + 40, usize::from(payload), ones_sum(addrs, 0))
        }
        _ => return false,
    };
    let csum_at = match proto {
        6 => 16,
        17 => 6,
        _ => return false,
    };
    if l4 + l4_len > f.len() || l4_len < csum_at + 2 || l4_len > 0xffff {
        return false;
    }
    sum += u32::from(proto) + l4_len as u32;
    f[l4 + csum_at] = 0;
    f[l4 + csum_at + 1] = 0;
    sum = ones_sum(&f[l4..l4 + l4_len], sum);
    let mut c = !fold(sum);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    f[l4 + csum_at..l4 + csum_at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Adds `data` as big-endian 16-bit words to `sum` (odd tail padded).
fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
        if sum >= 0x8000_0000 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [last] = words.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds a 32-bit one's-complement sum to 16 bits.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The interface name as a C string (for ioctls), or `BadName`.
pub(crate) fn c_ifname(ifname: &str) -> Result<CString, NetdevError> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(NetdevError::BadName {
            ifname: ifname.to_owned(),
        });
    }
    CString::new(ifname).map_err(|_| NetdevError::BadName {
        ifname: ifname.to_owned(),
    })
}

#[cfg(test)]
pub(crate) mod testnet;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bench;
