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
//! - `sigbus`: guest memory that vanishes (a frontend shrinks its file):
//!   a SIGBUS in a registered region becomes zero pages and a port reset.
//!
//! Where `unsafe` is, and why (each block has its `SAFETY` comment; the
//! module headers list the invariants):
//!
//! - [`guest_mem`]: `GuestMem::host_slice` makes a `VolatileSlice` from a
//!   region's host address after a bounds check against that region;
//!   `GuestMem` is declared `Send` and `Sync` (it holds those addresses);
//!   [`guest_mem::prefetch`] and [`guest_mem::prefetch_w`] issue prefetch
//!   hints (an intrinsic, inline `asm!`); [`guest_mem::write_at`],
//!   [`guest_mem::read_at`] and [`guest_mem::copy_forward`] copy with raw
//!   unaligned (or AVX-512) moves inside bounds-checked slices, instead of
//!   `memcpy`/`memmove`, for the packet rate.
//! - `sigbus`: the SIGBUS handler and its `sigaction`/`mmap(MAP_FIXED)`
//!   calls, which turn a vanished region into zero pages.
//! - `rx.rs`: one call of the unsafe `Packet::set_tail` when a receive
//!   burst lends a frame's tail (a pointer into guest memory); the queue
//!   holds that memory's `Arc` until `rx_complete`.
//!
//! No other file of `vhost` has any. Guest memory is never seen as a Rust
//! reference: it is reached through `VolatileSlice`s bounded by their
//! region, either `vm-memory`'s checked volatile accessors or the raw
//! copies above.

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
