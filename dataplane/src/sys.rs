//! Thin OS helpers for PMD threads: pinning, timer slack, CPU time.

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
