//! `vswitchd` and `vswitchctl`: the daemon that builds the switches from
//! the YAML configuration and runs them, and its command-line client.
//!
//! This library holds what the binaries share; switching logic lives in
//! `dataplane`, `teaming` and `sriov`.
#![warn(missing_docs)]

pub mod translate;
