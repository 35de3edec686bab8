//! `vswitchd` and `vswitchctl`: the daemon that builds the switches from
//! the YAML configuration and runs them, and its command-line client.
//!
//! This library holds what the binaries share; switching logic lives in
//! `dataplane`, `teaming` and `sriov`.
//!
//! - [`translate`]: config model -> dataplane specs, stable port IDs.
//! - [`backends`]: uplinks, teams and internal ports: opening, attaching.
//! - [`daemon`]: the running state: start-up, vhost-user ports, request
//!   dispatch, the query views and live reload, one file each.
//! - [`protocol`]: the control protocol's messages (line-delimited JSON).
//! - [`control`]: the control socket server.
//! - [`team_supervisor`]: the daemon's half of a team: link state,
//!   beacons, failover, notify switches, `team show`/`explain` (the
//!   `teaming` crate is the logic, `dataplane::port::team` the fast path).
//! - [`sriov_service`]: the daemon's SR-IOV service: apply, show, release
//!   virtual functions (on the `sriov` crate).
//! - [`client`]: the client side, and the tables `vswitchctl` prints.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backends;
pub mod client;
pub mod control;
pub mod daemon;
pub mod metrics;
pub mod protocol;
pub mod sriov_service;
pub mod team_supervisor;
pub mod translate;
