//! The errors of host-interface code: opening errors ([`NetdevError`])
//! and the fast path's handling of kernel errors (what a failed transmit
//! means, [`TxFailure`]; rate-limited logging, [`ErrorLog`]).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kernel errors on the fast path are logged at most once per interval
/// (with the number of errors suppressed meanwhile).
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

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
/// Each line names the port's kind (`af_packet`, `af_xdp`, `tap`) and its
/// interface.
#[derive(Debug)]
pub(crate) struct ErrorLog {
    kind: &'static str,
    ifname: Arc<str>,
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    pub(crate) fn new(kind: &'static str, ifname: &str) -> Self {
        ErrorLog {
            kind,
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
            port = self.kind,
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

/// The calling thread's `errno`.
pub(crate) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
