//! AF_XDP uplink port: one receive queue of a netdev, through an XDP
//! socket.
//!
//! **Crate choice: `xdpilone` (1.3), not `xsk-rs`.**
//! - *Build:* xdpilone is pure Rust (libc and spin), so CI needs no system
//!   packages and a clean build adds seconds. xsk-rs wraps libxdp through
//!   `libxdp-sys`, which runs bindgen and builds vendored libbpf and libxdp
//!   with make, clang, llc and m4 (about a minute more on a clean 2-core
//!   build, plus clang, m4 and libelf-dev in `scripts/install-deps.sh`),
//!   and pins `libbpf-sys =1.5.1`, which locks every other BPF crate out
//!   of the graph (`links = "bpf"`).
//! - *Control:* libxdp loads its own redirect program through its
//!   dispatcher, which wants bpffs and finds program objects at run time;
//!   its failure modes are not ours to report. With xdpilone we load a
//!   six-instruction program ourselves (module `bpf`): we know exactly what
//!   runs, errors name the interface and the step ("vb: XDP attach in skb
//!   mode failed (...)"), and the program is detached when the port is
//!   dropped.
//! - *License:* xdpilone is EUPL-1.2, a weak copyleft licence that is
//!   OSI-approved and explicitly compatible with GPL/LGPL/MPL; it does not
//!   extend to our code (Apache-2.0 OR MIT), but a binary that ships it
//!   must offer xdpilone's source (unmodified, it is on crates.io). If the
//!   project's licence policy refuses EUPL, the replacement is the ~300
//!   lines of ring code xdpilone holds, not xsk-rs.
//!
//! **Shape.** [`AfXdpPort::open`] binds an AF_XDP socket in copy mode to
//! queue 0 of the interface, with XDP attached in generic (skb) mode:
//! this works on any netdev, veths included. [`AfXdpConfig`] selects the
//! queue and driver mode (copy or zero-copy where the driver allows). The
//! UMEM (frames of [`FRAME_SIZE`] bytes by default) is split in two: half the frames
//! feed the fill ring, half are transmit buffers. Frames are copied between
//! the UMEM and [`Packet`] buffers, once each way.
//!
//! One port per interface: the program and its XSKMAP belong to the
//! port, and a second port on another queue of the same interface is
//! refused at attach time (it would need to share them; not done yet).
//!
//! **Transmit-only handles** for the other PMDs are AF_PACKET protocol-0
//! sockets on the same interface ([`AfXdpPort::open_tx_only`] returns an
//! [`AfPacketPort`]): an XDP socket has one transmit ring, owned by one
//! thread, and AF_PACKET transmission reaches the same wire.
//!
//! **VLANs.** In skb mode the program sees the frame as it is in the
//! packet buffer; a tag still in the frame reaches us intact. A tag a NIC
//! stripped into receive metadata (`rxvlan` offload) is not visible to
//! XDP: turn that offload off (`ethtool -K DEV rxvlan off`) on AF_XDP
//! trunk uplinks, or use AF_PACKET, which restores it.
//!
//! **Checksums and segmentation.** XDP sees frames as they are: a frame
//! whose TCP/UDP checksum was left for the NIC to fill in (sent by the
//! host's stack, or by a veth peer with checksum offload on) arrives with
//! a partial checksum, and the port cannot tell it from a wrong one
//! (AF_PACKET can, and completes it). Likewise a veth peer with TSO/GSO on
//! hands over frames larger than the MTU, which the kernel drops for not
//! fitting a UMEM frame. Physical NICs receive finished, wire-sized frames;
//! on veth uplinks turn the peer's offloads off
//! (`ethtool -K PEER tx off tso off gso off`).
//!
//! **Failure.** As for AF_PACKET: a link that goes down or an interface
//! that disappears makes transmit count drops ([`NetdevCounters`]) and
//! receive return nothing, with at most one log line per interval.
//! Frames larger than the packet buffer are dropped and counted; frames
//! larger than a UMEM frame are dropped by the kernel (the socket's
//! `rx_dropped` statistic, [`AfXdpPort::kernel_rx_dropped`]). A frame
//! the driver drops with the carrier up (a veth whose peer's backlog is
//! full) is counted as `tx_queue_full`, and the frames behind it wait on
//! the ring for the next poll instead of meeting the same full queue.
//! `vswitchctl stats` shows these counters per uplink and team member.
//!
//! Unsafe code here: the UMEM mapping (created, shared with the kernel and
//! unmapped by this module) is only accessed through raw pointers at
//! offsets the kernel gave us, bounds-checked against the mapping.

mod bpf;

use std::io;
use std::num::NonZeroU32;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::Arc;

use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

use super::af_packet::AfPacketPort;
use super::netdev::ifreq::{c_ifname, ifindex};
use super::netdev::packet_socket::take_socket_error;
use super::netdev::{
    ErrorLog, LinkProbe, NetdevCounters, NetdevError, TxFailure, classify_tx_errno,
};
use super::{Port, TxOutcome};
use crate::packet::{Packet, PacketPool};

/// Default bytes per UMEM frame. The kernel keeps 256 bytes of headroom
/// in each, so frames up to 1792 bytes are received (4096: up to 3840).
pub const FRAME_SIZE: u32 = 2048;

/// Headroom the kernel keeps in front of a received frame (XDP_PACKET_HEADROOM).
const KERNEL_HEADROOM: usize = 256;

/// How many times (10 ms apart) a bind that finds the queue busy is
/// retried: the kernel releases a closed socket's queue asynchronously.
const BIND_RETRIES: u32 = 100;

/// Options of an AF_XDP port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// The interface's receive queue to serve.
    pub queue: u32,
    /// Attach XDP in driver mode (needs driver support; zero-copy if the
    /// driver offers it) instead of generic skb mode with copies.
    pub native: bool,
    /// UMEM frames for receive (and as many for transmit); rounded up to
    /// a power of two. Also the size of each of the four rings.
    pub ring_frames: u32,
    /// Bytes per UMEM frame: 2048 or 4096 (other values are rounded into
    /// that range). The largest frame received is this minus 256.
    pub frame_size: u32,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        AfXdpConfig {
            queue: 0,
            native: false,
            ring_frames: 2048,
            frame_size: FRAME_SIZE,
        }
    }
}

/// The UMEM area: an anonymous mapping owned by the port.
///
/// Invariant: `base` maps `len` bytes, readable and writable, for the
/// lifetime of this value; the kernel writes received frames into frames
/// it got from the fill ring and reads frames we put in the transmit ring.
#[derive(Debug)]
struct UmemArea {
    base: NonNull<u8>,
    len: usize,
}

impl UmemArea {
    fn new(ifname: &str, len: usize) -> Result<UmemArea, NetdevError> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(NetdevError::last_os(ifname, "UMEM mmap"));
        }
        match NonNull::new(ptr.cast::<u8>()) {
            Some(base) => Ok(UmemArea { base, len }),
            None => Err(NetdevError::last_os(ifname, "UMEM mmap")),
        }
    }

    /// Copies `len` bytes at UMEM offset `addr` into `dst`; false if the
    /// range is outside the area.
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        let Ok(off) = usize::try_from(addr) else {
            return false;
        };
        if off.checked_add(dst.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: `off + dst.len() <= len` (checked above), so the source
        // lies inside the mapping; the kernel handed this frame to us on
        // the receive ring and does not write it until we put it back on
        // the fill ring; `dst` is a distinct, exclusively borrowed buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().wrapping_add(off),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
        true
    }

    /// Copies `src` to UMEM offset `addr`; false if it does not fit.
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        let Ok(off) = usize::try_from(addr) else {
            return false;
        };
        if off.checked_add(src.len()).is_none_or(|end| end > self.len) {
            return false;
        }
        // SAFETY: `off + src.len() <= len` (checked above); the frame is
        // on our free transmit list, so the kernel does not read it until
        // we post it on the transmit ring; `src` is a distinct buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.base.as_ptr().wrapping_add(off),
                src.len(),
            );
        }
        true
    }

    fn as_slice_ptr(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.base, self.len)
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`, unmapped once; the
        // port drops the socket (and so the kernel's use) before this.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// One AF_XDP queue pair. See the module docs.
///
/// Field order is drop order: the XDP program is detached first, then
/// the rings and the socket go, and the UMEM mapping last.
pub struct AfXdpPort {
    ifname: Arc<str>,
    _attachment: bpf::XdpAttachment,
    _xskmap: std::os::fd::OwnedFd,
    rx: RingRx,
    tx: RingTx,
    fq_cq: DeviceQueue,
    user: User,
    _umem: Umem,
    area: UmemArea,
    /// Transmit frames not in flight.
    tx_free: Vec<u64>,
    /// Receive frames to give back to the fill ring.
    refill: Vec<u64>,
    /// Descriptors being prepared for the transmit ring.
    staged: Vec<XdpDesc>,
    /// The interface is gone (socket unbound): drop without trying.
    dead: bool,
    queue: u32,
    frame_size: u32,
    counters: Arc<NetdevCounters>,
    log: ErrorLog,
    /// Asks whether the carrier is up when the driver refuses a frame
    /// (an XDP socket takes no interface ioctls).
    probe: Option<LinkProbe>,
}

// SAFETY: the only non-`Send` parts are xdpilone's `Umem` (a pointer to
// our UMEM area) and `UmemArea` (the same mapping); both are owned by this
// value alone and the mapping is process-wide memory, so moving the whole
// port to another thread moves the only user of it.
unsafe impl Send for AfXdpPort {}

impl Drop for AfXdpPort {
    fn drop(&mut self) {
        // The map holds a reference to the socket; drop it now so the
        // socket is released when its fd closes (the fields drop next:
        // program detached, map and socket closed, UMEM unmapped).
        bpf::xskmap_delete(&self._xskmap, self.queue);
    }
}

impl std::fmt::Debug for AfXdpPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfXdpPort")
            .field("ifname", &self.ifname)
            .field("tx_free", &self.tx_free.len())
            .field("dead", &self.dead)
            .finish_non_exhaustive()
    }
}

fn xdp_err(ifname: &str, step: &'static str, e: &xdpilone::Errno) -> NetdevError {
    NetdevError::os(
        ifname,
        step,
        io::Error::from_raw_os_error(e.get_raw().abs()),
    )
}

impl AfXdpPort {
    /// Opens queue 0 of `ifname` in copy mode with XDP in skb mode.
    pub fn open(ifname: &str) -> Result<AfXdpPort, NetdevError> {
        Self::open_with(ifname, &AfXdpConfig::default())
    }

    /// Opens a queue with `cfg`.
    pub fn open_with(ifname: &str, cfg: &AfXdpConfig) -> Result<AfXdpPort, NetdevError> {
        let index = ifindex(ifname)?;
        let frames = cfg.ring_frames.max(64).next_power_of_two();
        let frame_size = cfg.frame_size.clamp(2048, 4096).next_power_of_two();
        let total = frames as usize * 2;
        let area = UmemArea::new(ifname, total * frame_size as usize)?;
        let umem_cfg = UmemConfig {
            fill_size: frames,
            complete_size: frames,
            frame_size,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: the area is a page-aligned mapping of `total` whole
        // frames that lives in the returned port after `umem` (fields drop
        // in order, `area` last), as `Umem::new` requires.
        let umem = unsafe { Umem::new(umem_cfg, area.as_slice_ptr()) }
            .map_err(|e| xdp_err(ifname, "UMEM registration (XDP_UMEM_REG)", &e))?;
        let cname = c_ifname(ifname)?;
        let mut info = IfInfo::invalid();
        info.from_name(&cname)
            .map_err(|e| xdp_err(ifname, "interface lookup", &e))?;
        info.set_queue(cfg.queue);
        let sock =
            Socket::with_shared(&info, &umem).map_err(|e| xdp_err(ifname, "AF_XDP socket", &e))?;
        let mut fq_cq = umem
            .fq_cq(&sock)
            .map_err(|e| xdp_err(ifname, "AF_XDP fill/completion rings", &e))?;
        let ring = NonZeroU32::new(frames);
        let sock_cfg = SocketConfig {
            rx_size: ring,
            tx_size: ring,
            bind_flags: if cfg.native {
                0
            } else {
                SocketConfig::XDP_BIND_COPY
            },
        };
        let user = umem
            .rx_tx(&sock, &sock_cfg)
            .map_err(|e| xdp_err(ifname, "AF_XDP rx/tx rings", &e))?;
        let rx = user
            .map_rx()
            .map_err(|e| xdp_err(ifname, "AF_XDP rx ring mmap", &e))?;
        let tx = user
            .map_tx()
            .map_err(|e| xdp_err(ifname, "AF_XDP tx ring mmap", &e))?;
        // A queue whose previous socket was just closed stays busy until
        // the kernel's deferred release runs: retry EBUSY for a while.
        let mut tries = 0;
        loop {
            match umem.bind(&user) {
                Ok(()) => break,
                Err(e) if e.get_raw().abs() == libc::EBUSY && tries < BIND_RETRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => {
                    let step = if cfg.native {
                        "AF_XDP bind"
                    } else {
                        "AF_XDP bind (copy mode)"
                    };
                    return Err(xdp_err(ifname, step, &e));
                }
            }
        }

        // Receive frames: the first half, all on the fill ring.
        let rx_frames: Vec<u64> = (0..u64::from(frames))
            .map(|i| i * u64::from(frame_size))
            .collect();
        {
            let mut w = fq_cq.fill(frames);
            let n = w.insert(rx_frames.iter().copied());
            w.commit();
            if n != frames {
                return Err(NetdevError::os(
                    ifname,
                    "AF_XDP fill ring setup",
                    io::Error::from_raw_os_error(libc::ENOSPC),
                ));
            }
        }
        let tx_free: Vec<u64> = (u64::from(frames)..2 * u64::from(frames))
            .map(|i| i * u64::from(frame_size))
            .collect();

        let xskmap = bpf::create_xskmap(ifname, cfg.queue.max(63) + 1)?;
        bpf::xskmap_set(ifname, &xskmap, cfg.queue, rx.as_raw_fd())?;
        let prog = bpf::load_redirect_prog(ifname, &xskmap)?;
        let mode = if cfg.native {
            bpf::XDP_FLAGS_DRV_MODE
        } else {
            bpf::XDP_FLAGS_SKB_MODE
        };
        let attachment = bpf::XdpAttachment::attach(ifname, index, mode, prog)?;
        Ok(AfXdpPort {
            ifname: Arc::from(ifname),
            _attachment: attachment,
            _xskmap: xskmap,
            rx,
            tx,
            fq_cq,
            user,
            _umem: umem,
            area,
            tx_free,
            refill: Vec::with_capacity(frames as usize),
            staged: Vec::with_capacity(64),
            dead: false,
            queue: cfg.queue,
            frame_size,
            counters: Arc::default(),
            log: ErrorLog::new("af_xdp", ifname),
            probe: LinkProbe::new().ok(),
        })
    }

    /// A transmit-only queue pair on `ifname` for the PMDs that do not
    /// poll this uplink: an AF_PACKET socket bound with protocol 0 (it
    /// receives nothing; see [`AfPacketPort::open_tx_only`]).
    pub fn open_tx_only(ifname: &str) -> Result<AfPacketPort, NetdevError> {
        AfPacketPort::open_tx_only(ifname)
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// This queue pair's error counters.
    pub fn counters(&self) -> Arc<NetdevCounters> {
        Arc::clone(&self.counters)
    }

    /// The largest frame this port receives (a UMEM frame less the
    /// kernel's headroom); larger ones are dropped by the kernel.
    pub fn max_frame(&self) -> usize {
        self.frame_size as usize - KERNEL_HEADROOM
    }

    /// Frames the kernel dropped on receive (no fill buffer, too large for
    /// a UMEM frame, receive ring full), from the socket's statistics.
    pub fn kernel_rx_dropped(&self) -> u64 {
        self.user
            .statistics_v2()
            .map(|s| s.rx_dropped + s.rx_ring_full)
            .unwrap_or(0)
    }

    /// The socket's XDP statistics (`XDP_STATISTICS`): receive drops,
    /// receive-ring-full and fill-ring-empty events; `None` if the kernel
    /// does not answer.
    pub fn xdp_statistics(&self) -> Option<(u64, u64, u64)> {
        self.user
            .statistics_v2()
            .ok()
            .map(|s| (s.rx_dropped, s.rx_ring_full, s.rx_fill_ring_empty_descs))
    }

    /// Moves completed transmit frames back to the free list.
    fn reclaim(&mut self) {
        let want = self.fq_cq.available();
        if want == 0 {
            return;
        }
        let mut c = self.fq_cq.complete(want);
        while let Some(addr) = c.read() {
            self.tx_free.push(addr);
        }
        c.release();
    }

    /// Gives received frames back to the fill ring.
    fn refill(&mut self) {
        if self.refill.is_empty() {
            return;
        }
        let mut w = self.fq_cq.fill(self.refill.len() as u32);
        let cap = (w.capacity() as usize).min(self.refill.len());
        let n = w.insert(self.refill[..cap].iter().copied()) as usize;
        w.commit();
        self.refill.drain(..n);
    }

    /// Asks the kernel to send what is on the transmit ring; returns the
    /// errno of a failed kick.
    fn kick(&self) -> Result<(), i32> {
        // SAFETY: a zero-length sendto on our own XDP socket with no
        // buffers and no address: the kernel reads no user memory.
        let rc = unsafe {
            libc::sendto(
                self.tx.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(())
        }
    }

    /// Copies the frames of `pkts` into free UMEM frames and posts their
    /// descriptors (kept in `staged`) on the transmit ring; frames that
    /// cannot go are counted and added to `out.dropped`. Returns how many
    /// descriptors were posted and their bytes.
    fn post_frames(&mut self, pkts: &[Packet], out: &mut TxOutcome) -> (usize, usize) {
        let mut bytes = 0;
        self.staged.clear();
        for p in pkts {
            if p.len() > self.frame_size as usize {
                self.counters.tx_oversize.inc();
                out.dropped += 1;
                continue;
            }
            let Some(addr) = self.tx_free.pop() else {
                self.counters.tx_queue_full.inc();
                out.dropped += 1;
                continue;
            };
            if !self.area.write(addr, p.data()) {
                self.tx_free.push(addr);
                self.counters.tx_errors.inc();
                out.dropped += 1;
                continue;
            }
            self.staged.push(XdpDesc {
                addr,
                len: p.len() as u32,
                options: 0,
            });
            bytes += p.len();
        }
        let posted = {
            let mut w = self.tx.transmit(self.staged.len() as u32);
            let n = w.insert(self.staged.iter().copied()) as usize;
            w.commit();
            n
        };
        // Descriptors that found no room on the ring: their frames go
        // back to the free list and count as dropped.
        for d in &self.staged[posted..] {
            self.tx_free.push(d.addr);
            bytes -= d.len as usize;
            self.counters.tx_queue_full.inc();
            out.dropped += 1;
        }
        (posted, bytes)
    }

    /// Kicks the kernel to send the frames on the ring (`posted` of them
    /// just put there).
    fn kick_posted(&mut self, posted: usize) -> Kicked {
        // In copy mode each kick sends a bounded batch (32 frames) and
        // says EAGAIN when more wait: kick while the kernel makes progress.
        // An EAGAIN without progress leaves the rest for the next kick
        // (the next burst, or the next receive poll; the PMD does not
        // sleep while frames wait, see `set_rx_notify`); any error but
        // EBUSY leaves the ring as it is.
        //
        // EBUSY means the driver dropped exactly one frame (the kernel's
        // NET_XMIT_DROP: "completed but not sent"). With the carrier off
        // that is every frame (a veth whose peer is down): kick on, so the
        // ring does not fill with stale frames. With the carrier on, the
        // receiver was full (a veth peer's backlog) or the frame too large
        // for it: stop, so the frames behind it wait for the next kick
        // instead of meeting the same full queue one by one. (Kicking on
        // lost up to a whole burst per congestion episode.)
        let mut k = Kicked::default();
        // Asked once per call, at the first EBUSY (an ioctl).
        let mut carrier: Option<Option<bool>> = None;
        let mut pending = self.tx.pending();
        for _ in 0..posted + 8 {
            if pending == 0 {
                break;
            }
            let res = self.kick();
            let now = self.tx.pending();
            match res {
                Ok(()) => {}
                Err(libc::EAGAIN) if now < pending => {}
                Err(libc::EAGAIN) => break,
                Err(libc::EBUSY) => {
                    let up = *carrier.get_or_insert_with(|| {
                        self.probe.as_ref().and_then(|p| p.link_up(&self.ifname))
                    });
                    if up == Some(false) {
                        k.link_down += 1;
                    } else {
                        k.congested += 1;
                        break;
                    }
                }
                Err(e) => {
                    k.fatal = Some(e);
                    break;
                }
            }
            pending = now;
        }
        k
    }
}

impl AfXdpPort {
    /// Counts the frames the driver refused during kicks (frames of an
    /// earlier burst among them: that burst counted them as sent).
    fn count_refused(&mut self, k: &Kicked) {
        if k.link_down > 0 {
            self.counters.tx_link_down.add(k.link_down as u64);
            self.log
                .note("AF_XDP transmit (driver refused, carrier off)", libc::EBUSY);
        }
        if k.congested > 0 {
            self.counters.tx_queue_full.add(k.congested as u64);
        }
    }
}

/// What [`AfXdpPort::kick_posted`] saw.
#[derive(Debug, Default)]
struct Kicked {
    /// Frames the driver dropped with the carrier off.
    link_down: usize,
    /// Frames the driver dropped with the carrier on (receiver full).
    congested: usize,
    /// The error that stopped the kicks, if one did.
    fatal: Option<i32>,
}

impl Port for AfXdpPort {
    fn netdev_counters(&self) -> Option<Arc<NetdevCounters>> {
        Some(self.counters())
    }

    fn rx_burst(&mut self, pool: &mut PacketPool, out: &mut Vec<Packet>, max: usize) -> usize {
        // Frames a transmit burst left on the ring (the kernel was busy)
        // go out now; their completions are reaped by the next transmit.
        if !self.dead && self.tx.pending() > 0 {
            let kicked = self.kick_posted(0);
            self.count_refused(&kicked);
        }
        // Take no more than the pool can hold: the rest waits in the ring.
        let max = max.min(pool.available());
        if max == 0 {
            if self.rx.available() > 0 {
                self.counters.rx_no_buffer.inc();
            }
            return 0;
        }
        let mut n = 0;
        {
            let mut r = self.rx.receive(max.min(u32::MAX as usize) as u32);
            while let Some(desc) = r.read() {
                // Every descriptor read goes back to the fill ring.
                self.refill.push(desc.addr);
                let len = desc.len as usize;
                let Some(mut p) = pool.alloc() else {
                    self.counters.rx_no_buffer.inc();
                    continue;
                };
                let Some(buf) = p.prepare(len) else {
                    self.counters.rx_oversize.inc();
                    pool.free(p);
                    continue;
                };
                if !self.area.read(desc.addr, buf) {
                    self.counters.rx_errors.inc();
                    pool.free(p);
                    continue;
                }
                out.push(p);
                n += 1;
            }
            r.release();
        }
        self.refill();
        n
    }

    fn tx_burst(&mut self, pkts: &mut Vec<Packet>, pool: &mut PacketPool) -> TxOutcome {
        let mut out = TxOutcome::default();
        if pkts.is_empty() {
            return out;
        }
        if self.dead {
            self.counters.tx_link_down.add(pkts.len() as u64);
            out.dropped = pkts.len();
            pool.free_all(pkts);
            return out;
        }
        // Frames left on the ring by an earlier burst go first; if the link
        // still refuses them, this burst is dropped without touching the
        // ring (it would only fill up with stale frames).
        if self.tx.pending() > 0 {
            let kicked = self.kick_posted(0);
            self.count_refused(&kicked);
            if let Some(e) = kicked.fatal
                && classify_tx_errno(e) == TxFailure::LinkDown
            {
                self.dead |= e == libc::ENXIO || e == libc::ENODEV;
                self.counters.tx_link_down.add(pkts.len() as u64);
                self.log.note("AF_XDP transmit", e);
                out.dropped = pkts.len();
                pool.free_all(pkts);
                return out;
            }
        }
        self.reclaim();
        let (posted, bytes) = self.post_frames(pkts, &mut out);
        let kicked = self.kick_posted(posted);
        let refused = (kicked.link_down + kicked.congested).min(posted);
        // After a fatal error the frames still on the ring are counted as
        // dropped (should the link come back, the kernel may still send
        // them: the count then overstates the loss).
        let stranded = if kicked.fatal.is_some() {
            (self.tx.pending() as usize).min(posted - refused)
        } else {
            0
        };
        self.count_refused(&kicked);
        if let Some(e) = kicked.fatal {
            match classify_tx_errno(e) {
                TxFailure::LinkDown => self.counters.tx_link_down.add(stranded as u64),
                TxFailure::QueueFull | TxFailure::Interrupted => {
                    self.counters.tx_queue_full.add(stranded as u64)
                }
                TxFailure::Oversize => self.counters.tx_oversize.add(stranded as u64),
                TxFailure::Other => self.counters.tx_errors.add(stranded as u64),
            }
            if e == libc::ENXIO || e == libc::ENODEV {
                // Unbound: the interface went away for good.
                self.dead = true;
            }
            self.log.note("AF_XDP transmit", e);
        }
        let lost = refused + stranded;
        out.dropped += lost;
        out.sent = posted - lost;
        // Bytes of the frames that went: the refused ones are the oldest
        // on the ring, so take the sizes from the end of this burst.
        out.bytes = if lost == 0 {
            bytes
        } else {
            self.staged[lost..posted]
                .iter()
                .map(|d| d.len as usize)
                .sum()
        };
        pool.free_all(pkts);
        out
    }

    fn wake_fd(&self) -> Option<RawFd> {
        (!self.dead).then(|| self.rx.as_raw_fd())
    }

    fn set_rx_notify(&mut self, on: bool) -> bool {
        if !on {
            return false;
        }
        // The kernel flags the socket with ENETDOWN when the interface
        // goes away, and poll() would then return at once forever: read
        // (and clear) the error, and stop offering a wake fd.
        if take_socket_error(self.rx.as_raw_fd()) == libc::ENETDOWN {
            self.dead = true;
        }
        // Frames left on the transmit ring (a congested receiver) need a
        // kick from a poll: no sleeping while they wait.
        let tx_waiting = !self.dead && self.tx.pending() > 0;
        tx_waiting || self.rx.available() > 0
    }
}

#[cfg(test)]
mod tests;
