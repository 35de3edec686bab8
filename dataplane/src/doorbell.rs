//! Doorbells: how a sleeping PMD is woken when frames arrive.
//!
//! A PMD that has been idle for a while *arms* the doorbell of each of its
//! receive queues and sleeps in `poll(2)` on their eventfds. A producer
//! that adds frames rings the doorbell only if it is armed, so a busy
//! switch pays one relaxed-looking load per burst and no syscall. This is
//! the virtio notification-suppression idea (and OVS-DPDK's PMD sleep),
//! and for vhost-user ports the guest's kick eventfd plays the same part.
//!
//! The lost-wake-up race is closed Dekker-style: the producer publishes
//! its frames, then (SeqCst) checks `armed`; the consumer sets `armed`,
//! then (SeqCst) checks for frames. At least one of them sees the other.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering, fence};

use nix::sys::eventfd::{EfdFlags, EventFd};

/// An armed-flag plus an eventfd.
#[derive(Debug)]
pub struct Doorbell {
    armed: AtomicBool,
    fd: EventFd,
}

impl Doorbell {
    /// A disarmed doorbell with a non-blocking eventfd.
    pub fn new() -> std::io::Result<Doorbell> {
        let fd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(std::io::Error::from)?;
        Ok(Doorbell {
            armed: AtomicBool::new(false),
            fd,
        })
    }

    /// Producer side, after publishing frames: wake the consumer if it
    /// asked to be woken.
    #[inline]
    pub fn ring_if_armed(&self) {
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::AcqRel) {
            self.ring();
        }
    }

    /// Wakes the consumer unconditionally (control-plane messages).
    pub fn ring(&self) {
        // A full counter (EAGAIN) means a wake-up is already pending.
        let _ = self.fd.write(1);
    }

    /// Consumer side, before sleeping. The caller must look for work again
    /// after this returns and before sleeping.
    #[inline]
    pub fn arm(&self) {
        self.armed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Consumer side, after waking: stop notifications and clear the fd.
    #[inline]
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::Relaxed);
        // EAGAIN when nothing was written: nothing to clear.
        let _ = self.fd.read();
    }

    /// The eventfd to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        crate::sys::poll_readable(&[fd], 0).unwrap_or(false)
    }

    #[test]
    fn rings_only_when_armed() {
        let d = Doorbell::new().expect("eventfd");
        d.ring_if_armed();
        assert!(!readable(d.fd()));
        d.arm();
        d.ring_if_armed();
        assert!(readable(d.fd()));
        d.disarm();
        assert!(!readable(d.fd()));
        // One ring per arming.
        d.ring_if_armed();
        assert!(!readable(d.fd()));
    }
}
