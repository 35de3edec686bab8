//! Uplink teams: load-balancing policies, failure detection and failover.
//!
//! Pure logic: no I/O, time comes in as a parameter, so every behaviour is
//! testable without root. The policies (port ID, IP hash, source MAC hash,
//! explicit failover) land with the teaming issue; today the crate only
//! fixes the boundary the dataplane will call.
#![forbid(unsafe_code)]
