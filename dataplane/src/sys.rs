//! Thin OS helpers: pinning, timer slack and CPU time for PMD threads;
//! poll, peek and queued bytes for the vhost-user control threads.

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

/// Pins the calling thread to `core`; logs and carries on if it cannot.
pub fn pin_current_thread(core: usize) {
    let mut set = CpuSet::new();
    let res = set
        .set(core)
        .and_then(|()| sched_setaffinity(Pid::from_raw(0), &set));
    if let Err(e) = res {
        tracing::warn!(core, error = %e, "cannot pin PMD thread; it will float");
    }
}

/// Makes short sleeps short: the default timer slack (50 µs) would
/// stretch every adaptive-idle sleep to at least that.
pub fn set_fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only changes
    // the calling thread's timer slack; no memory is passed.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!("PR_SET_TIMERSLACK failed; idle sleeps may be longer");
    }
}

/// CPU time used by the calling thread, in nanoseconds.
pub fn thread_cpu_time_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID) {
        Ok(ts) => (ts.tv_sec() as u64) * 1_000_000_000 + ts.tv_nsec() as u64,
        Err(_) => 0,
    }
}

/// CPU time used by the whole process, in nanoseconds.
pub fn process_cpu_time_ns() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID) {
        Ok(ts) => (ts.tv_sec() as u64) * 1_000_000_000 + ts.tv_nsec() as u64,
        Err(_) => 0,
    }
}

/// Waits up to `timeout_ms` for any of `fds` to become readable; returns
/// whether one did. Interrupted waits count as "not readable".
pub fn poll_readable(fds: &[std::os::fd::RawFd], timeout_ms: i32) -> std::io::Result<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a valid, exclusively borrowed array of `pfds.len()`
    // pollfd structs for the whole call; poll only writes `revents`.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(rc > 0)
}

/// Copies up to `buf.len()` bytes that wait on socket `fd` into `buf`
/// without consuming them (recv with MSG_PEEK, non-blocking); returns how
/// many were copied (0 when nothing waits or the peer closed).
pub fn peek(fd: std::os::fd::RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is a valid, exclusively borrowed byte buffer of
    // `buf.len()` bytes for the whole call; recv writes at most that many.
    let rc = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(rc as usize)
}

/// How many bytes wait in stream socket `fd`'s receive queue (`FIONREAD`).
/// For a Unix stream socket this counts every queued chunk, also past
/// one that carries file descriptors, where `MSG_PEEK` stops.
pub fn queued_bytes(fd: std::os::fd::RawFd) -> std::io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer it is given; `n` is a
    // valid, exclusively borrowed int for the whole call.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &raw mut n) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Whether the peer of stream socket `fd` has closed its writing side
/// (POLLRDHUP or POLLHUP), i.e. no more bytes will come.
pub fn peer_closed(fd: std::os::fd::RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: `p` is one valid, exclusively borrowed pollfd for the whole
    // call; poll only writes its `revents`.
    let rc = unsafe { libc::poll(&mut p, 1, 0) };
    rc > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP) != 0
}
