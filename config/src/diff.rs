//! What changed between two configurations.
use crate::model::Config;
/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {}
/// Diff.
pub fn diff(_old: &Config, _new: &Config) -> Vec<Change> {
    Vec::new()
}
