//! vhost-user ports: VMs attach here.
//!
//! - [`guest_mem`]: the guest memory of SET_MEM_TABLE, frontend-VA -> GPA
//!   translation, and bounds-checked volatile access (never `&[u8]`).
//! - [`split_ring`]: the split-virtqueue fast path (bursts, shadow used
//!   ring, one `used.idx` store per burst), the funnel for untrusted rings.
//!
//! No module here has `unsafe` code: guest memory is reached only through
//! `vm-memory`'s checked, volatile accessors.

pub mod guest_mem;
pub mod split_ring;
