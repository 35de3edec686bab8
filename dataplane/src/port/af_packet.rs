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
//! ([`AfPacketRxMode::Mmsg`]): see "Uplink ports (veth)" in BENCHMARKS.md
//! and, for the reasoning, in docs/benchmark-history.md.
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
//! plus at most one log line per [`LOG_INTERVAL`](super::netdev::LOG_INTERVAL). A frame that does not
//! fit the packet buffer (or the ring frame) is dropped and counted, never
//! truncated.
//!
//!
//! Files: this one opens the sockets and implements [`Port`]; `ring` is
//! the `TPACKET_V2` receive ring, `mmsg` the `recvmmsg`/`sendmmsg`
//! batches (receive in [`AfPacketRxMode::Mmsg`], and transmit in every
//! mode). Sockets, interface names and the link-state rule come from
//! [`super::netdev`], checksum completion from `wire::checksum`.
//!
//! Unsafe code here: socket options (`PACKET_STATISTICS`, the promiscuous
//! membership). In `mmsg`: `sendmmsg`/`recvmmsg` (pointers to our own
//! buffers, valid for the call). In `ring`: the receive ring, a region
//! shared with the kernel: it is only accessed through raw pointers (the
//! status word atomically), and a frame's bytes are read only while its
//! status says the kernel handed it to us.

use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::netdev::ifreq::ifindex;
use super::netdev::packet_socket::{bind_packet, packet_socket, setsockopt, take_socket_error};
use super::netdev::{ErrorLog, NetdevCounters, NetdevError};
use super::{Port, TxOutcome};
use crate::packet::{Packet, PacketPool};

mod mmsg;
mod ring;

pub use mmsg::SYSCALL_BATCH;
use mmsg::{MsgBatch, send_burst};
use ring::{RxRing, TPACKET_V2};

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
            log: ErrorLog::new("af_packet", ifname),
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
            log: ErrorLog::new("af_packet", ifname),
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
}

/// Options every sending socket gets.
fn common_tx_options(ifname: &str, fd: RawFd) -> Result<(), NetdevError> {
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &1i32)
        .map_err(|e| NetdevError::os(ifname, "PACKET_QDISC_BYPASS", e))
}

impl Port for AfPacketPort {
    fn netdev_counters(&self) -> Option<Arc<NetdevCounters>> {
        Some(self.counters())
    }

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
        // The kernel did not report the TPID: an 802.1Q tag.
        wire::TPID_8021Q
    };
    Some((tpid, tci))
}

#[cfg(test)]
pub(crate) mod testnet;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bench;
