//! The YAML model of the switch: schema, defaults, validation with
//! file:line:column errors, and diffs between two configurations.
//!
//! - [`load_file`] / [`parse_str`] read a file into a validated [`Config`],
//!   or return a [`ConfigError`] listing every problem as
//!   `file:line:column: path: message`.
//! - [`load_file_with`] / [`parse_str_with`] also resolve user and group
//!   names (`socket-owner`, `socket-group`) and check that uplinks'
//!   interfaces exist, through a [`Host`]; the plain functions accept
//!   numeric ids only and do not look interfaces up.
//! - [`default_config`] is the built-in configuration (one switch, two
//!   vhost-user server ports `vhost0.sock` and `vhost1.sock`, untagged).
//! - [`diff()`] lists what changed between two configurations as [`Change`]s
//!   that read like an engineer's notes ("port vm7: VLAN 10 -> 20").
//!
//! The file format is documented in this crate's `README.md`.
//!
//! ```
//! let old = config::parse_str("switches:\n  - name: sw0\n    ports:\n      - name: vm7\n        vlan: 10\n", "a.yaml")?;
//! let new = config::parse_str("switches:\n  - name: sw0\n    ports:\n      - name: vm7\n        vlan: 20\n", "b.yaml")?;
//! let words: Vec<String> = config::diff(&old, &new).iter().map(ToString::to_string).collect();
//! assert_eq!(words, ["port vm7: VLAN 10 -> 20"]);
//!
//! let err = config::parse_str("switches:\n  - name: sw0\n    mtu: 99999\n", "c.yaml").unwrap_err();
//! assert_eq!(err.to_string(), "c.yaml:3:10: switches[0].mtu: 99999 is out of range (68-9710)");
//! # Ok::<(), config::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod diff;
mod error;
mod locate;
mod model;
mod raw;
mod validate;

use std::borrow::Cow;
use std::path::Path;

use serde_saphyr::{Error as YamlError, MessageFormatter, UserMessageFormatter};

pub use diff::{Change, diff};
pub use error::{ConfigError, Diagnostic};
pub use model::*;

use error::suggestion;
use locate::PathMap;

/// The built-in configuration, used when the daemon starts without a file.
/// Relative socket paths are under the runtime directory.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default.yaml");

const EMPTY_FILE: &str = "the file is empty; expected a mapping with at least `switches:` \
                          (see the config crate's README for a minimal example)";

/// File name reported in diagnostics about [`DEFAULT_CONFIG_YAML`].
pub const DEFAULT_CONFIG_NAME: &str = "<default config>";

/// Reads and validates the configuration file at `path`. Relative socket
/// paths resolve under the file's `runtime.runtime-dir` (default
/// [`DEFAULT_RUNTIME_DIR`]).
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with_runtime_dir(path, None)
}

/// [`load_file`], with the runtime directory from the command line, which
/// overrides the file's `runtime.runtime-dir` when `Some`.
pub fn load_file_with_runtime_dir(
    path: &Path,
    runtime_dir: Option<&Path>,
) -> Result<Config, ConfigError> {
    load_file_with(path, runtime_dir, &NumericIdsOnly)
}

/// [`load_file_with_runtime_dir`], with user and group names
/// (`socket-owner`, `socket-group`) resolved and uplink interfaces looked
/// up through `host`: an unknown name or a missing interface is an error
/// at its position, like any other.
pub fn load_file_with(
    path: &Path,
    runtime_dir: Option<&Path>,
    host: &dyn Host,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_str_with(&text, &path.display().to_string(), runtime_dir, host)
}

/// Parses and validates YAML `text`; `file_name` is only used in
/// diagnostics.
pub fn parse_str(text: &str, file_name: &str) -> Result<Config, ConfigError> {
    parse_str_with_runtime_dir(text, file_name, None)
}

/// [`parse_str`], with a runtime directory that overrides the file's when
/// `Some`.
pub fn parse_str_with_runtime_dir(
    text: &str,
    file_name: &str,
    runtime_dir: Option<&Path>,
) -> Result<Config, ConfigError> {
    parse_str_with(text, file_name, runtime_dir, &NumericIdsOnly)
}

/// [`parse_str_with_runtime_dir`], with user and group names resolved
/// and uplink interfaces looked up through `host` (see [`load_file_with`]).
pub fn parse_str_with(
    text: &str,
    file_name: &str,
    runtime_dir: Option<&Path>,
    host: &dyn Host,
) -> Result<Config, ConfigError> {
    let paths = PathMap::new(text);
    if !paths.has_content {
        return Err(empty_file(file_name));
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    let raw: Option<raw::RawConfig> = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| ConfigError::Invalid(vec![yaml_diagnostic(&e, &paths, file_name)]))?;
    let Some(raw) = raw else {
        return Err(empty_file(file_name));
    };
    validate::validate(&raw, file_name, runtime_dir, host).map_err(ConfigError::Invalid)
}

/// The error for a file with no YAML node (empty, or only comments).
fn empty_file(file_name: &str) -> ConfigError {
    ConfigError::Invalid(vec![Diagnostic {
        file: file_name.to_string(),
        line: 1,
        column: 1,
        path: String::new(),
        message: EMPTY_FILE.to_string(),
    }])
}

/// The built-in configuration with its sockets under `runtime_dir`: switch
/// `sw0` with vhost-user server ports `vhost0` (`vhost0.sock`) and `vhost1`
/// (`vhost1.sock`), untagged (VLAN 1). Fails only if `runtime_dir` makes a
/// socket path too long for a Unix socket.
pub fn default_config(runtime_dir: &Path) -> Result<Config, ConfigError> {
    parse_str_with_runtime_dir(DEFAULT_CONFIG_YAML, DEFAULT_CONFIG_NAME, Some(runtime_dir))
}

/// Turns a serde-saphyr error (syntax, type, unknown key) into a diagnostic.
fn yaml_diagnostic(e: &YamlError, paths: &PathMap, file: &str) -> Diagnostic {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let inner = e.without_snippet();
    let list = |v: &[&str]| v.join(", ");
    let (message, innermost): (Cow<'_, str>, bool) = match inner {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => (
            format!(
                "unknown key `{field}`{} (expected one of: {})",
                suggestion(field, expected.iter().copied()),
                list(expected)
            )
            .into(),
            true,
        ),
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            format!(
                "unknown value `{variant}`{} (expected one of: {})",
                suggestion(variant, expected.iter().copied()),
                list(expected)
            )
            .into(),
            false,
        ),
        YamlError::SerdeMissingField { field, .. } => {
            (format!("missing required key `{field}`").into(), false)
        }
        YamlError::DuplicateMappingKey { key, .. } => (
            match key {
                Some(k) => format!("key `{k}` appears twice in the same mapping"),
                None => "a key appears twice in the same mapping".to_string(),
            }
            .into(),
            true,
        ),
        other => (UserMessageFormatter.format_message(other), false),
    };
    let mut message = message.into_owned();
    if let Some(ty) = message.strip_prefix("invalid ")
        && matches!(
            ty,
            "i64" | "u64" | "i32" | "u32" | "u16" | "u8" | "bool" | "boolean"
        )
    {
        let what = if ty.starts_with("bool") {
            "`true` or `false`"
        } else {
            "an integer"
        };
        message = match paths.scalar_at(line, column) {
            Some(s) => format!("expected {what}, found `{s}`"),
            None => format!("expected {what}"),
        };
    }
    let path = paths.path_at(line, column, innermost);
    if path.is_empty() && message.starts_with("expected mapping") {
        message = "the top level must be a mapping with keys `runtime`, `switches`, `sriov` and `metrics`"
            .to_string();
    }
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        path,
        message,
    }
}

#[cfg(test)]
mod tests;
