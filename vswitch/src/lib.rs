//! `vswitchd` and `vswitchctl`: the daemon that builds the switches from
//! the YAML configuration and runs them, and its command-line client.
//!
//! This library holds what the binaries share; switching logic lives in
//! `dataplane`, `teaming` and `sriov`.
//!
//! - [`translate`]: config model -> dataplane specs, stable port IDs.
//! - [`backends`]: uplinks, teams and internal ports: opening, attaching.
//! - [`daemon`]: the running state and live reload.
//! - [`protocol`]: the control protocol's messages (line-delimited JSON).
//! - [`control`]: the control socket server.
//! - [`teams`]: team supervision: link state, beacons, failover, notify switches.
//! - [`netdev`]: link state, MAC address and control frames on host interfaces.
//! - [`sriov`]: SR-IOV virtual functions: apply, show, release.
//! - [`client`]: the client side, and the tables `vswitchctl` prints.
#![warn(missing_docs)]

pub mod backends;
pub mod client;
pub mod control;
pub mod daemon;
pub mod netdev;
pub mod protocol;
pub mod sriov_service;
pub mod team_supervisor;
pub mod translate;
