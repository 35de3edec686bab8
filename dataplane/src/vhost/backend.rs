//! The protocol side of a vhost-user port, on the `vhost` crate.
//!
//! [`PortCtl`] implements `VhostUserBackendReqHandlerMut`; `vhost` parses
//! and checks every message (sizes, fd counts, feature gating, REPLY_ACK)
//! and calls it. `PortCtl` lives on the port's control thread and never
//! touches a ring during a burst: it builds immutable things (an
//! `Arc<GuestMem>`, a validated [`SplitRing`]) and installs or removes them
//! in the port's ring slots (see `handover.rs` for the hand-over rule).
//!
//! A ring starts when it has memory, a size, addresses and a kick (the
//! protocol's start signal), and, once PROTOCOL_FEATURES is negotiated,
//! SET_VRING_ENABLE(1). GET_VRING_BASE stops it after the PMD's current
//! burst and answers the next avail index. Any error (a malformed message,
//! a frontend that hangs up, a ring the guest broke) resets only this port:
//! rings stopped, memory dropped, features forgotten, and the control thread
//! waits for (or reconnects to) a new frontend.

use std::fs::File;
use std::sync::Arc;

use vhost::VhostUserMemoryRegionBase;
use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVirtioFeatures,
    VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{
    Error as VuError, GpuBackend, Result as VuResult, VhostUserBackendReqHandlerMut,
};
use virtio_bindings::virtio_config::{VIRTIO_F_IN_ORDER, VIRTIO_F_VERSION_1};
use virtio_bindings::virtio_net::{VIRTIO_NET_F_MQ, VIRTIO_NET_F_MRG_RXBUF};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

use super::guest_mem::GuestMem;
use super::handover::{ActiveRing, Shared, lock};
use super::net_hdr::{self, NetHdr};
use super::split_ring::{RingAddrs, SplitRing};

/// Vrings of one queue pair: `2q` is the guest's RX ring, `2q + 1` its
/// TX ring.
pub const VRINGS_PER_PAIR: usize = 2;
/// Most queue pairs a port may have (the config's `queues` limit).
pub const MAX_QUEUE_PAIRS: usize = 16;
/// Largest vring size accepted (QEMU's maximum is 1024).
pub const MAX_VRING_SIZE: u32 = 32768;

/// The virtio features a port with one queue pair offers; with more,
/// [`device_features`] adds VIRTIO_NET_F_MQ.
///
/// VIRTIO_F_IN_ORDER promises that buffers go back in the order they were
/// made available, which the split ring already does on every path (bad
/// chains, full rings, lent frames: see the `vhost_rings` fuzz target's
/// order check). A driver that negotiates it (DPDK's virtio-user does by
/// default; Linux guests and QEMU's device do not) may then skip its
/// descriptor free list.
pub const DEVICE_FEATURES: u64 = (1 << VIRTIO_F_VERSION_1)
    | (1 << VIRTIO_F_IN_ORDER)
    | (1 << VIRTIO_NET_F_MRG_RXBUF)
    | (1 << VIRTIO_RING_F_EVENT_IDX)
    | (1 << VIRTIO_RING_F_INDIRECT_DESC)
    | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();

/// The virtio features a port with `pairs` queue pairs offers.
pub fn device_features(pairs: usize) -> u64 {
    if pairs > 1 {
        DEVICE_FEATURES | (1 << VIRTIO_NET_F_MQ)
    } else {
        DEVICE_FEATURES
    }
}

/// The vhost-user protocol features a port offers (`vhost` adds REPLY_ACK
/// handling itself once it is negotiated).
pub fn protocol_features() -> VhostUserProtocolFeatures {
    VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::REPLY_ACK
        | VhostUserProtocolFeatures::CONFIG
}

#[derive(Debug, Default)]
struct RingCfg {
    size: u16,
    /// desc, used, avail as frontend virtual addresses.
    addrs: Option<(u64, u64, u64)>,
    base: u16,
    kicked: bool,
    kick: Option<File>,
    call: Option<File>,
    enabled: bool,
    started: bool,
}

/// The vhost-user request handler of one port.
#[derive(Debug)]
pub struct PortCtl {
    shared: Arc<Shared>,
    acked_features: u64,
    acked_protocol: u64,
    mem: Option<Arc<GuestMem>>,
    /// `VRINGS_PER_PAIR` per queue pair of the port.
    rings: Vec<RingCfg>,
}

fn invalid<T>(what: &'static str) -> VuResult<T> {
    Err(VuError::InvalidOperation(what))
}

/// The kick, call and err fds of the protocol are eventfds; anything else
/// is refused. A pipe or socket the frontend never drains would block the
/// PMD in its notification write (stopping every port on that PMD: a
/// hostile frontend did exactly this in tests/hostile.rs), and a
/// regular file would grow by 8 bytes per notification. Where `/proc` is
/// missing the fd cannot be checked and is taken as it is.
fn check_eventfd(index: u8, fd: Option<&File>) -> VuResult<()> {
    use std::os::fd::AsRawFd;
    let Some(f) = fd else {
        return Ok(());
    };
    match std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())) {
        Ok(target) if target.as_os_str() == "anon_inode:[eventfd]" => Ok(()),
        Ok(target) => {
            tracing::warn!(vring = index, fd = %target.display(), "vring fd is not an eventfd");
            Err(VuError::InvalidParam)
        }
        Err(e) => {
            tracing::debug!(vring = index, error = %e, "cannot check the vring fd");
            Ok(())
        }
    }
}

impl PortCtl {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let rings = Self::fresh_rings(&shared);
        PortCtl {
            shared,
            acked_features: 0,
            acked_protocol: 0,
            mem: None,
            rings,
        }
    }

    fn fresh_rings(shared: &Shared) -> Vec<RingCfg> {
        (0..VRINGS_PER_PAIR * shared.pairs.len())
            .map(|_| RingCfg::default())
            .collect()
    }

    fn pairs(&self) -> usize {
        self.shared.pairs.len()
    }

    /// Whether the frontend acked VHOST_USER_F_PROTOCOL_FEATURES.
    pub(crate) fn protocol_features_acked(&self) -> bool {
        self.acked_features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() != 0
    }

    fn ring(&mut self, index: u32) -> VuResult<&mut RingCfg> {
        let pairs = self.pairs();
        self.rings.get_mut(index as usize).ok_or_else(|| {
            tracing::warn!(
                vring = index,
                queue_pairs = pairs,
                "the frontend uses more queue pairs than the port has: \
                 raise the port's `queues` or lower the frontend's (QEMU: queues=N on the netdev)"
            );
            VuError::InvalidParam
        })
    }

    /// The slot of vring `index` (which exists: see [`Self::ring`]).
    fn slot(&self, index: usize) -> &std::sync::Mutex<Option<ActiveRing>> {
        let pair = &self.shared.pairs[index / VRINGS_PER_PAIR];
        if index.is_multiple_of(VRINGS_PER_PAIR) {
            &pair.tx
        } else {
            &pair.rx
        }
    }

    fn hdr(&self) -> NetHdr {
        let f = self.acked_features;
        let v1 = f & (1 << VIRTIO_F_VERSION_1) != 0;
        let mrg = f & (1 << VIRTIO_NET_F_MRG_RXBUF) != 0;
        NetHdr {
            len: if v1 || mrg {
                net_hdr::LEN
            } else {
                net_hdr::LEN_LEGACY
            },
            mrg_rxbuf: mrg,
        }
    }

    /// Stops ring `index` after the PMD's current burst; returns its next
    /// avail index if it was running.
    fn stop(&mut self, index: usize) -> Option<u16> {
        if index >= self.rings.len() {
            return None;
        }
        let q = index / VRINGS_PER_PAIR;
        let taken = lock(self.slot(index)).take();
        self.shared.ring_bell(q);
        if let Some(cfg) = self.rings.get_mut(index) {
            cfg.started = false;
        }
        let r = taken?;
        if let Some(k) = &r.kick {
            self.shared.unwatch_kick(q, k);
        }
        Some(r.ring.next_avail())
        // `r` drops here, outside the lock: its memory snapshot with it.
    }

    fn maybe_start(&mut self, index: usize) -> VuResult<()> {
        let proto = self.acked_features & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() != 0;
        let event_idx = self.acked_features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0;
        let hdr = self.hdr();
        let Some(mem) = self.mem.clone() else {
            return Ok(());
        };
        let cfg = self.ring(index as u32)?;
        let Some((desc, used, avail)) = cfg.addrs else {
            return Ok(());
        };
        if cfg.started || !cfg.kicked || cfg.size == 0 || (proto && !cfg.enabled) {
            return Ok(());
        }
        let n = u64::from(cfg.size);
        let tr = |va: u64, len: u64| mem.va_to_gpa(va, len).map_err(|_| VuError::InvalidParam);
        let addrs = RingAddrs {
            size: cfg.size,
            desc: tr(desc, 16 * n)?,
            avail: tr(avail, 6 + 2 * n)?,
            used: tr(used, 6 + 8 * n)?,
        };
        let mut ring =
            SplitRing::new(&mem, addrs, cfg.base, event_idx).map_err(|_| VuError::InvalidParam)?;
        // Poll mode: no kicks unless a PMD sleeps on this ring.
        ring.set_kick_notify(&mem, false)
            .map_err(|_| VuError::InvalidParam)?;
        let call = cfg.call.as_ref().and_then(|f| f.try_clone().ok());
        let kick = cfg.kick.as_ref().and_then(|f| f.try_clone().ok());
        cfg.started = true;
        let q = index / VRINGS_PER_PAIR;
        if index % VRINGS_PER_PAIR == 1
            && let Some(k) = &kick
        {
            self.shared.watch_kick(q, k);
        }
        let active = ActiveRing {
            ring,
            mem,
            call,
            kick,
            hdr,
            broken: false,
        };
        *lock(self.slot(index)) = Some(active);
        self.shared.ring_bell(q);
        tracing::debug!(vring = index, size = addrs.size, "vring started");
        Ok(())
    }

    /// Forgets the frontend: rings stopped, memory dropped, features reset.
    pub(crate) fn reset(&mut self) {
        for i in 0..self.rings.len() {
            self.stop(i);
        }
        self.mem = None;
        self.rings = Self::fresh_rings(&self.shared);
        self.acked_features = 0;
        self.acked_protocol = 0;
        self.shared
            .counters
            .resets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Why the port must be reset without a message from the frontend:
    /// the PMD found a ring the guest corrupted, or guest memory vanished
    /// (the frontend shrank its file: see [`super::sigbus`]).
    pub(crate) fn broken(&self) -> Option<&'static str> {
        let rings = (0..self.rings.len()).map(|i| lock(self.slot(i)));
        let mut lost = self.mem.as_ref().is_some_and(|m| m.lost());
        let mut broken = false;
        for r in rings {
            if let Some(r) = r.as_ref() {
                broken |= r.broken;
                lost |= r.mem.lost();
            }
        }
        if lost {
            Some("guest memory vanished (the frontend shrank its file; SIGBUS caught)")
        } else if broken {
            Some("guest corrupted a vring")
        } else {
            None
        }
    }
}

impl VhostUserBackendReqHandlerMut for PortCtl {
    fn set_owner(&mut self) -> VuResult<()> {
        Ok(())
    }

    fn reset_owner(&mut self) -> VuResult<()> {
        self.reset();
        Ok(())
    }

    fn reset_device(&mut self) -> VuResult<()> {
        self.reset();
        Ok(())
    }

    fn get_features(&mut self) -> VuResult<u64> {
        Ok(device_features(self.pairs()))
    }

    fn set_features(&mut self, features: u64) -> VuResult<()> {
        if features & !device_features(self.pairs()) != 0 {
            return Err(VuError::InvalidParam);
        }
        self.acked_features = features;
        tracing::debug!(features = %format_args!("{features:#x}"), "virtio features acked");
        Ok(())
    }

    fn set_mem_table(
        &mut self,
        ctx: &[VhostUserMemoryRegion],
        files: Vec<File>,
        _postcopy_listening: Option<bool>,
    ) -> VuResult<Option<Vec<VhostUserMemoryRegionBase>>> {
        let mem = GuestMem::from_regions(ctx, files).map_err(|e| {
            tracing::warn!(error = %e, "SET_MEM_TABLE refused");
            VuError::InvalidParam
        })?;
        self.mem = Some(Arc::new(mem));
        // Running rings move to the new map at their current position;
        // the old map goes when the PMD has let go of it.
        for i in 0..self.rings.len() {
            if let Some(next) = self.stop(i) {
                self.rings[i].base = next;
                self.maybe_start(i)?;
            }
        }
        Ok(None)
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> VuResult<()> {
        if num == 0 || num > MAX_VRING_SIZE || !num.is_power_of_two() {
            return Err(VuError::InvalidParam);
        }
        self.ring(index)?.size = u16::try_from(num).map_err(|_| VuError::InvalidParam)?;
        Ok(())
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> VuResult<()> {
        self.ring(index)?.addrs = Some((descriptor, used, available));
        Ok(())
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> VuResult<()> {
        self.ring(index)?.base = u16::try_from(base).map_err(|_| VuError::InvalidParam)?;
        Ok(())
    }

    fn get_vring_base(&mut self, index: u32) -> VuResult<VhostUserVringState> {
        self.ring(index)?;
        let next = self.stop(index as usize);
        let cfg = self.ring(index)?;
        let next = next.unwrap_or(cfg.base);
        cfg.base = next;
        cfg.kicked = false;
        cfg.kick = None;
        cfg.call = None;
        Ok(VhostUserVringState::new(index, u32::from(next)))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> VuResult<()> {
        // Poll mode: the kick fd is the start signal, and the wake-up of an
        // idle PMD; it is read only to clear it.
        let i = usize::from(index);
        self.ring(u32::from(index))?;
        check_eventfd(index, fd.as_ref())?;
        if let Some(next) = self.stop(i) {
            self.rings[i].base = next;
        }
        let cfg = self.ring(u32::from(index))?;
        cfg.kick = fd;
        cfg.kicked = true;
        self.maybe_start(i)
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> VuResult<()> {
        let i = usize::from(index);
        check_eventfd(index, fd.as_ref())?;
        let cfg = self.ring(u32::from(index))?;
        let running_copy = fd.as_ref().and_then(|f| f.try_clone().ok());
        cfg.call = fd;
        if let Some(r) = lock(self.slot(i)).as_mut() {
            r.call = running_copy;
        }
        Ok(())
    }

    fn set_vring_err(&mut self, index: u8, fd: Option<File>) -> VuResult<()> {
        self.ring(u32::from(index))?;
        check_eventfd(index, fd.as_ref())
    }

    fn get_protocol_features(&mut self) -> VuResult<VhostUserProtocolFeatures> {
        Ok(protocol_features())
    }

    fn set_protocol_features(&mut self, features: u64) -> VuResult<()> {
        if features & !protocol_features().bits() != 0 {
            return Err(VuError::InvalidParam);
        }
        self.acked_protocol = features;
        Ok(())
    }

    fn get_queue_num(&mut self) -> VuResult<u64> {
        // QEMU reads this as queue pairs, the `vhost` frontend (and
        // cloud-hypervisor) as vrings; the vring count satisfies both. A
        // QEMU asking for more pairs than the port has is then told at its
        // first vring beyond them (`ring`), and the port resets.
        Ok(self.rings.len() as u64)
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> VuResult<()> {
        let cfg = self.ring(index)?;
        cfg.enabled = enable;
        if enable {
            self.maybe_start(index as usize)
        } else {
            if let Some(next) = self.stop(index as usize) {
                self.ring(index)?.base = next;
            }
            Ok(())
        }
    }

    fn get_config(
        &mut self,
        offset: u32,
        size: u32,
        _flags: VhostUserConfigFlags,
    ) -> VuResult<Vec<u8>> {
        // struct virtio_net_config: mac[6], status, max_virtqueue_pairs, mtu.
        let mut cfg = [0u8; 12];
        cfg[6..8].copy_from_slice(&1u16.to_le_bytes()); // VIRTIO_NET_S_LINK_UP
        let pairs = u16::try_from(self.pairs()).unwrap_or(u16::MAX);
        cfg[8..10].copy_from_slice(&pairs.to_le_bytes());
        cfg[10..12].copy_from_slice(&1500u16.to_le_bytes());
        let start = offset as usize;
        let end = start
            .checked_add(size as usize)
            .ok_or(VuError::InvalidParam)?;
        cfg.get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or(VuError::InvalidParam)
    }

    fn set_config(
        &mut self,
        _offset: u32,
        _buf: &[u8],
        _flags: VhostUserConfigFlags,
    ) -> VuResult<()> {
        // The device config is read-only for the driver.
        Ok(())
    }

    fn set_gpu_socket(&mut self, _gpu_backend: GpuBackend) -> VuResult<()> {
        invalid("GPU socket")
    }

    fn get_shared_object(&mut self, _uuid: VhostUserSharedMsg) -> VuResult<File> {
        invalid("shared objects")
    }

    fn get_inflight_fd(
        &mut self,
        _inflight: &VhostUserInflight,
    ) -> VuResult<(VhostUserInflight, File)> {
        invalid("inflight fd")
    }

    fn set_inflight_fd(&mut self, _inflight: &VhostUserInflight, _file: File) -> VuResult<()> {
        invalid("inflight fd")
    }

    fn get_max_mem_slots(&mut self) -> VuResult<u64> {
        invalid("memory slots")
    }

    fn add_mem_region(
        &mut self,
        _region: &VhostUserSingleMemoryRegion,
        _fd: File,
        _postcopy_listening: Option<bool>,
    ) -> VuResult<Option<VhostUserMemoryRegionBase>> {
        invalid("memory slots")
    }

    fn remove_mem_region(&mut self, _region: &VhostUserSingleMemoryRegion) -> VuResult<()> {
        invalid("memory slots")
    }

    fn set_device_state_fd(
        &mut self,
        _direction: VhostTransferStateDirection,
        _phase: VhostTransferStatePhase,
        _file: File,
    ) -> VuResult<Option<File>> {
        invalid("device state")
    }

    fn check_device_state(&mut self) -> VuResult<()> {
        invalid("device state")
    }

    fn get_shmem_config(&mut self) -> VuResult<VhostUserShMemConfig> {
        invalid("shared memory")
    }

    fn set_log_base(&mut self, _log: &VhostUserLog, _file: File) -> VuResult<()> {
        invalid("dirty log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kick, call and err must be eventfds: a pipe nobody drains once
    /// blocked the PMD in its notification write (every port on it
    /// stopped; tests/hostile.rs), a regular file would grow.
    #[test]
    fn vring_fds_must_be_eventfds() {
        let shared = Arc::new(Shared::single().expect("eventfds"));
        let mut ctl = PortCtl::new(shared);
        let eventfd = || {
            let e = nix::sys::eventfd::EventFd::from_value_and_flags(
                0,
                nix::sys::eventfd::EfdFlags::EFD_CLOEXEC,
            )
            .expect("eventfd");
            File::from(std::os::fd::OwnedFd::from(e))
        };
        let pipe = || {
            let (_rd, wr) = nix::unistd::pipe().expect("pipe");
            File::from(wr)
        };
        let file = || tempfile::tempfile().expect("tempfile");
        assert!(ctl.set_vring_call(0, Some(eventfd())).is_ok());
        assert!(ctl.set_vring_kick(1, Some(eventfd())).is_ok());
        assert!(ctl.set_vring_err(1, Some(eventfd())).is_ok());
        assert!(ctl.set_vring_call(0, None).is_ok());
        for f in [pipe(), file()] {
            assert!(ctl.set_vring_call(1, Some(f)).is_err());
        }
        for f in [pipe(), file()] {
            assert!(ctl.set_vring_kick(0, Some(f)).is_err());
        }
        assert!(ctl.set_vring_err(0, Some(pipe())).is_err());
    }

    #[test]
    fn a_multiqueue_port_offers_mq_and_its_pairs_and_refuses_vrings_beyond() {
        let mut one = PortCtl::new(Arc::new(Shared::single().expect("eventfds")));
        let mut two = PortCtl::new(Arc::new(Shared::new(2, 2, 0).expect("eventfds")));
        let mq = 1u64 << VIRTIO_NET_F_MQ;
        assert_eq!(one.get_features().expect("features") & mq, 0);
        assert_eq!(two.get_features().expect("features") & mq, mq);
        assert!(one.set_features(DEVICE_FEATURES | mq).is_err());
        assert!(two.set_features(DEVICE_FEATURES | mq).is_ok());
        assert_eq!(one.get_queue_num().expect("queues"), 2);
        assert_eq!(two.get_queue_num().expect("queues"), 4);
        let pairs = |c: &mut PortCtl| {
            let b = c
                .get_config(8, 2, VhostUserConfigFlags::empty())
                .expect("config");
            u16::from_le_bytes([b[0], b[1]])
        };
        assert_eq!((pairs(&mut one), pairs(&mut two)), (1, 2));
        assert!(two.set_vring_num(3, 256).is_ok());
        assert!(two.set_vring_num(4, 256).is_err());
        assert!(one.set_vring_num(2, 256).is_err());
        assert!(two.set_vring_enable(3, true).is_ok());
        assert!(two.get_vring_base(5).is_err());
    }
}
