//! vhost-user ports: VMs attach here.
//!
//! - [`guest_mem`]: the guest memory of SET_MEM_TABLE, frontend-VA -> GPA
//!   translation, and bounds-checked volatile access (never `&[u8]`).
//! - [`split_ring`]: the split-virtqueue fast path (bursts, shadow used
//!   ring, one `used.idx` store per burst), the funnel for untrusted rings.
//! - [`port`]: the PMD side, one [`VhostQueue`] per PMD implementing
//!   [`crate::Port`], and the hand-over rule between control and PMDs.
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
#[cfg(any(test, feature = "test-utils"))]
pub mod fuzzing;
pub mod guest_mem;
pub mod port;
mod sigbus;
pub mod socket;
pub mod split_ring;

pub use conn::{SocketRole, VhostError, VhostUserPort, VhostUserSpec};
pub use port::{NetHdr, VhostCounters, VhostCountersSnapshot, VhostQueue};
pub use socket::{SocketFile, SocketPerms};
