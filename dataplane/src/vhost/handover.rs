//! The state a vhost-user port's control thread (the protocol handler,
//! [`super::backend`]) shares with the PMDs' queue objects
//! ([`super::VhostQueue`]), and the hand-over rule between them.
//!
//! - **Ring slots**: each queue pair has two slots, `Mutex<Option<ActiveRing>>`,
//!   one per direction. A PMD takes a slot's mutex once per burst (the
//!   receive side with `try_lock`, so it never waits: if the control
//!   thread holds it, the burst is simply empty).
//! - **Hand-over**: the control thread installs, replaces and removes a
//!   ring (and its `Arc` memory snapshot) under the same mutex, for O(1)
//!   work. Taking the mutex therefore waits for the PMD's current burst to
//!   end: that is the "stop after the current burst" round trip that
//!   GET_VRING_BASE needs, and the old memory map is unmapped only after
//!   the PMD let go of it.
//! - **Wake-ups**: each PMD's wake fd for the port is an epoll set holding
//!   the kick eventfds of the rings it polls (while they run) and a
//!   control eventfd (the bell) rung when one of them changes, so an
//!   adaptive PMD sleeps until the guest kicks or a ring is (re)started.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::counters::VhostCounters;
use super::guest_mem::GuestMem;
use super::net_hdr::NetHdr;
use super::split_ring::SplitRing;

/// A running ring with what the PMD needs to serve it.
#[derive(Debug)]
pub(crate) struct ActiveRing {
    pub(crate) ring: SplitRing,
    pub(crate) mem: Arc<GuestMem>,
    pub(crate) call: Option<File>,
    pub(crate) kick: Option<File>,
    pub(crate) hdr: NetHdr,
    /// The guest corrupted the ring itself; it stays stopped until the
    /// control thread resets the port.
    pub(crate) broken: bool,
}

/// One queue pair's rings.
#[derive(Debug, Default)]
pub(crate) struct Pair {
    /// The guest's TX ring (vring `2q + 1`): the switch receives from it.
    pub(crate) rx: Mutex<Option<ActiveRing>>,
    /// The guest's RX ring (vring `2q`): the switch transmits into it.
    pub(crate) tx: Mutex<Option<ActiveRing>>,
    /// Frames received from the guest on this pair (added once per burst).
    pub(crate) rx_frames: AtomicU64,
    /// Frames sent to the guest on this pair (added once per burst).
    pub(crate) tx_frames: AtomicU64,
}

/// What wakes one sleeping PMD for this port: an epoll set of the kick
/// eventfds of the receive rings it polls, plus a bell rung when one of
/// those rings changes.
#[derive(Debug)]
pub(super) struct Wake {
    pub(super) epoll: Epoll,
    bell: EventFd,
}

/// State shared by the control thread and the PMDs' queue objects.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The queue pairs, `queues` of the port's config.
    pub(crate) pairs: Box<[Pair]>,
    /// The PMD that polls each pair's receive ring.
    poller: Box<[usize]>,
    /// One per PMD of the switch.
    pub(super) wakes: Box<[Wake]>,
    pub(crate) counters: VhostCounters,
    pub(crate) connected: AtomicBool,
}

/// Locks a ring slot; a poisoned lock (a panic elsewhere) still holds
/// consistent state, since every update under it is a single assignment.
pub(crate) fn lock(m: &Mutex<Option<ActiveRing>>) -> MutexGuard<'_, Option<ActiveRing>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// `pairs` queue pairs served by `pmds` PMDs: pair `q`'s receive ring
    /// is polled by PMD `(first_pmd + q) % pmds`.
    pub(crate) fn new(pairs: usize, pmds: usize, first_pmd: usize) -> std::io::Result<Shared> {
        let pairs = pairs.max(1);
        let pmds = pmds.max(1);
        let wakes = (0..pmds)
            .map(|_| {
                let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
                let bell = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
                epoll.add(bell.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 0))?;
                Ok(Wake { epoll, bell })
            })
            .collect::<std::io::Result<Box<[Wake]>>>()?;
        Ok(Shared {
            pairs: (0..pairs).map(|_| Pair::default()).collect(),
            poller: (0..pairs).map(|q| (first_pmd + q) % pmds).collect(),
            wakes,
            counters: VhostCounters::default(),
            connected: AtomicBool::new(false),
        })
    }

    /// A port with one queue pair and one PMD (tests and fuzzing).
    #[cfg(any(test, feature = "test-utils"))]
    pub(crate) fn single() -> std::io::Result<Shared> {
        Shared::new(1, 1, 0)
    }

    /// The PMD that polls pair `q`'s receive ring.
    pub(crate) fn poller(&self, q: usize) -> usize {
        self.poller.get(q).copied().unwrap_or(0)
    }

    fn wake_of(&self, q: usize) -> Option<&Wake> {
        self.wakes.get(self.poller(q))
    }

    /// Wakes the PMD sleeping on pair `q`'s receive ring (a ring changed).
    pub(crate) fn ring_bell(&self, q: usize) {
        if let Some(w) = self.wake_of(q) {
            // EAGAIN: a wake-up is already pending.
            let _ = w.bell.write(1);
        }
    }

    /// Watches the guest's kick eventfd while pair `q`'s receive ring runs.
    pub(crate) fn watch_kick(&self, q: usize, kick: &File) {
        let Some(w) = self.wake_of(q) else { return };
        if let Err(e) = w
            .epoll
            .add(kick.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 1))
        {
            tracing::warn!(error = %e, "cannot watch the kick eventfd; an idle PMD wakes late");
        }
    }

    /// Stops watching a kick eventfd (before it is closed: the frontend
    /// keeps its own copy, so closing ours would not remove it).
    pub(crate) fn unwatch_kick(&self, q: usize, kick: &File) {
        if let Some(w) = self.wake_of(q) {
            let _ = w.epoll.delete(kick.as_fd());
        }
    }

    pub(super) fn drain_bell(&self, pmd: usize) {
        if let Some(w) = self.wakes.get(pmd) {
            // EAGAIN when nothing was written: nothing to clear.
            let _ = w.bell.read();
        }
    }
}
