//! `vswitchd` and `vswitchctl`: the daemon that builds the switches from
//! the YAML configuration and runs them, and its command-line client.
//!
//! This library holds what the binaries share; switching logic lives in
//! `dataplane`, `teaming` and `sriov`.
//!
//! - [`translate`]: config model -> dataplane specs, stable port IDs.
//! - [`daemon`]: the running state and live reload.
//! - [`protocol`]: the control protocol's messages (line-delimited JSON).
//! - [`control`]: the control socket server.
//! - [`sriov`]: SR-IOV virtual functions: apply, show, release.
//! - [`client`]: the client side, and the tables `vswitchctl` prints.
#![warn(missing_docs)]

pub mod client;
pub mod control;
pub mod daemon;
pub mod protocol;
pub mod sriov;
pub mod translate;
