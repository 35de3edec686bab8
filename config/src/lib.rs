//! The YAML model of the switch: schema, defaults, validation with
//! file:line:column errors, and diffs between two configurations.
#![forbid(unsafe_code)]
