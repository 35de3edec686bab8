//! What the control plane asks the kernel about host network interfaces:
//! link state, hardware address, and sending the odd control frame
//! (beacons, RARP/GARP announcements) out of one interface.
//!
//! The code lives with the rest of the host-interface code in
//! `dataplane::port::netdev` (its module docs state the link-state rule);
//! this module names what team supervision and the uplink set-up use.

pub use dataplane::port::netdev::{FrameSender, LinkProbe};
