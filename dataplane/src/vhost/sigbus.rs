//! Guest memory that vanishes under the switch.
//!
//! A frontend shares guest memory as files (memfd, hugetlbfs, tmpfs) and
//! may shrink one after SET_MEM_TABLE (`ftruncate`). The mapping stays,
//! every bounds check still passes, and the next access to a page past the
//! new end raises SIGBUS, which would kill every port of the switch.
//! Sealing the file (F_SEAL_SHRINK) is the frontend's choice: QEMU's memfd
//! backend seals, hugetlbfs files cannot be sealed.
//!
//! So every mapped region is registered here, and a SIGBUS handler that
//! finds the faulting address inside a registered region replaces the
//! whole region with anonymous zero memory (one `mmap(MAP_FIXED)`, a plain
//! system call, safe in a signal handler on Linux), marks the region lost
//! and returns: the faulting access runs again and reads zeros. The port's
//! control thread sees the loss ([`super::guest_mem::GuestMem::lost`]) and
//! resets the port. A SIGBUS anywhere else goes to the handler that was
//! there before (or the default action: the process dies, as before).
//!
//! Invariants the `unsafe` code relies on:
//! - a slot holds `[start, start + len)` only while its `GuestMem` owns a
//!   live mapping of exactly that range, and is cleared before the mapping
//!   is unmapped (the registration guard is `GuestMem`'s first field, so
//!   it drops before the mapping does);
//! - nothing but guest-memory accesses (volatile copies through
//!   `vm-memory`, never Rust references) touches those ranges, so swapping
//!   the pages underneath them changes values, never validity;
//! - the handler touches only atomics and calls only `mmap`, `sigaction`
//!   and `raise`.

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Regions that can be registered at once (64 per memory table at most).
const SLOTS: usize = 1024;

struct Slot {
    used: AtomicBool,
    start: AtomicUsize,
    len: AtomicUsize,
    lost: AtomicBool,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        used: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        lost: AtomicBool::new(false),
    }
}; SLOTS];

/// The SIGBUS action before ours (None: installing failed).
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();

/// Registered host ranges; unregistered when dropped.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    slots: Vec<usize>,
}

impl Guard {
    /// Registers the host range `[start, start + len)` of one mapped region.
    /// Returns false (the range stays unprotected) if the handler could not
    /// be installed or every slot is taken.
    pub(crate) fn register(&mut self, start: usize, len: usize) -> bool {
        if start == 0 || len == 0 || !install() {
            return false;
        }
        for (i, s) in TABLE.iter().enumerate() {
            if s.used
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                s.lost.store(false, Ordering::Relaxed);
                s.len.store(len, Ordering::Release);
                s.start.store(start, Ordering::Release);
                self.slots.push(i);
                return true;
            }
        }
        false
    }

    /// True if a SIGBUS hit one of the ranges (now zero pages).
    pub(crate) fn lost(&self) -> bool {
        self.slots
            .iter()
            .any(|&i| TABLE[i].lost.load(Ordering::Acquire))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for &i in &self.slots {
            let s = &TABLE[i];
            s.start.store(0, Ordering::Release);
            s.len.store(0, Ordering::Release);
            s.lost.store(false, Ordering::Relaxed);
            s.used.store(false, Ordering::Release);
        }
    }
}

/// Installs the handler once; true if it is in place.
fn install() -> bool {
    PREVIOUS
        .get_or_init(|| {
            // SAFETY: an all-zero `sigaction` is a valid value (no flags,
            // empty mask, SIG_DFL) that is then filled in field by field.
            let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
            act.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `act.sa_mask` is a valid sigset_t owned by this frame.
            unsafe { libc::sigemptyset(&raw mut act.sa_mask) };
            // SAFETY: as above; the zeroed value is overwritten by the call.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: both pointers are to valid `sigaction` values; the
            // handler only does what the module doc allows.
            let rc = unsafe { libc::sigaction(libc::SIGBUS, &raw const act, &raw mut old) };
            (rc == 0).then_some(old)
        })
        .is_some()
}

extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let info = unsafe { &*info };
    // SAFETY: for SIGBUS the kernel fills in si_addr.
    let addr = unsafe { info.si_addr() }.addr();
    let code = info.si_code;
    for s in &TABLE {
        let start = s.start.load(Ordering::Acquire);
        let len = s.len.load(Ordering::Acquire);
        if start != 0 && addr >= start && addr - start < len {
            // SAFETY: `[start, start + len)` is a live mapping of guest
            // memory that only volatile guest accesses use (module
            // invariants); MAP_FIXED swaps its pages for zeros in place.
            let p = unsafe {
                libc::mmap(
                    std::ptr::without_provenance_mut(start),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                s.lost.store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not guest memory: the previous action takes it (a fault re-runs the
    // access and raises it again; a sent signal is raised again).
    if let Some(Some(old)) = PREVIOUS.get() {
        // SAFETY: `old` is the action the kernel gave back at install time.
        unsafe { libc::sigaction(libc::SIGBUS, old, std::ptr::null_mut()) };
    }
    if code <= 0 {
        // SAFETY: raise is async-signal-safe.
        unsafe { libc::raise(sig) };
    }
}
