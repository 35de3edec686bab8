//! vhost-user ports: VMs attach here.
//!
//! - [`guest_mem`]: the guest memory of SET_MEM_TABLE, frontend-VA -> GPA
//!   translation, and bounds-checked volatile access (never `&[u8]`).
//! - [`split_ring`]: the split-virtqueue fast path (bursts, shadow used
//!   ring, one `used.idx` store per burst), the funnel for untrusted rings.
//! - [`port`]: the PMD side, one [`VhostQueue`] per PMD implementing
//!   [`crate::Port`]; its receive path (the guest's TX ring) is in `rx.rs`,
//!   its transmit path (the guest's RX ring, mergeable buffers) in `tx.rs`.
//! - `handover.rs`: the state the control thread shares with the PMDs (ring
//!   slots, wake-ups) and the hand-over rule between them.
//! - [`net_hdr`]: the virtio-net header's fields and lengths ([`NetHdr`]).
//! - `counters.rs`: [`VhostCounters`], the per-port drop and event counters.
//! - [`backend`]: the protocol handler ([`backend::PortCtl`] on the
//!   `vhost` crate), features and ring lifecycle.
//! - [`conn`]: the port's control thread (server or client socket,
//!   reset and wait/reconnect after any error) and its handle
//!   [`VhostUserPort`].
//! - [`socket`]: a server port's socket file, created with its final
//!   owner, group and mode ([`SocketPerms`]) before anyone can reach it.
//!
//! - [`sigbus`]: guest memory that vanishes (a frontend shrinks its file):
//!   a SIGBUS in a registered region becomes zero pages and a port reset.
//!
//! Only `sigbus` has `unsafe` code (its header lists the invariants): guest
//! memory is reached only through `vm-memory`'s checked, volatile accessors.

pub mod backend;
pub mod conn;
mod counters;
#[cfg(any(test, feature = "test-utils"))]
pub mod fuzzing;
pub mod guest_mem;
mod handover;
pub mod net_hdr;
pub mod port;
mod rx;
mod sigbus;
pub mod socket;
pub mod split_ring;
mod tx;

pub use conn::{SocketRole, VhostError, VhostUserPort, VhostUserSpec};
pub use counters::{VhostCounters, VhostCountersSnapshot};
pub use net_hdr::NetHdr;
pub use port::VhostQueue;
pub use socket::{SocketFile, SocketPerms};
