//! Socket paths (resolved under the runtime directory, at most
//! [`MAX_SOCKET_PATH`] bytes, each used once) and the access of a server
//! port's socket (`socket-owner`, `socket-group`, `socket-mode`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

use super::{Ctx, at, join};
use crate::model::*;
use crate::raw::*;

/// `sizeof(sockaddr_un.sun_path)` minus the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Every socket path so far, with its owner and line.
#[derive(Default)]
pub(super) struct Sockets {
    seen: HashMap<PathBuf, (String, u64)>,
}

impl Sockets {
    /// Resolves `raw` under `dir`, checks length and uniqueness.
    pub(super) fn add(
        &mut self,
        ctx: &mut Ctx,
        dir: &Path,
        raw: &str,
        loc: Location,
        path: &str,
        owner: &str,
    ) -> Option<PathBuf> {
        if raw.is_empty() {
            ctx.err(loc, path, "socket path is empty");
            return None;
        }
        let full = dir.join(raw);
        let len = full.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            ctx.err(
                loc,
                path,
                format!(
                    "socket path {} is {len} bytes; a Unix socket path is at most \
                     {MAX_SOCKET_PATH}: use a shorter name or runtime-dir",
                    full.display()
                ),
            );
            return None;
        }
        if let Some((other, l)) = self.seen.get(&full) {
            ctx.err(
                loc,
                path,
                format!(
                    "socket {} is already used by {other} (line {l})",
                    full.display()
                ),
            );
            return None;
        }
        self.seen
            .insert(full.clone(), (owner.to_string(), loc.line()));
        Some(full)
    }
}

/// The socket access keys, in the order of [`socket_access`]'s array.
pub(super) const SOCKET_KEYS: [&str; 3] = ["socket-owner", "socket-group", "socket-mode"];

/// `socket-owner`, `socket-group`, `socket-mode` (each optional) over
/// `base`, key by key; a bad value is reported and `base`'s kept.
pub(super) fn socket_access(
    ctx: &mut Ctx,
    [owner, group, mode]: [&Option<S<String>>; 3],
    base: &SocketAccess,
    path: &str,
) -> SocketAccess {
    let [owner_key, group_key, mode_key] = SOCKET_KEYS;
    SocketAccess {
        owner: match owner {
            Some(v) => account(ctx, v, &join(path, owner_key), "user"),
            None => base.owner.clone(),
        },
        group: match group {
            Some(v) => account(ctx, v, &join(path, group_key), "group"),
            None => base.group.clone(),
        },
        mode: mode
            .as_ref()
            .and_then(|v| socket_mode(ctx, v, &join(path, mode_key)))
            .unwrap_or(base.mode),
    }
}

/// A numeric id, or a `what` (`user` or `group`) name resolved through
/// the context's account database.
fn account(ctx: &mut Ctx, raw: &S<String>, path: &str, what: &str) -> Option<Account> {
    let text = raw.value.trim();
    let id_kind = if what == "user" { "uid" } else { "gid" };
    if text.is_empty() {
        ctx.err(
            at(raw),
            path,
            format!("expected a {what} name or a numeric {id_kind}, found an empty value"),
        );
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // u32::MAX is chown's "leave unchanged", not an id.
        return match text.parse::<u32>() {
            Ok(id) if id != u32::MAX => Some(Account { id, name: None }),
            _ => {
                ctx.err(
                    at(raw),
                    path,
                    format!(
                        "{text} is out of range for a {id_kind} (0-{})",
                        u32::MAX - 1
                    ),
                );
                None
            }
        };
    }
    let found = if what == "user" {
        ctx.host.uid(text)
    } else {
        ctx.host.gid(text)
    };
    match found {
        Ok(Some(id)) => Some(Account {
            id,
            name: Some(text.to_string()),
        }),
        Ok(None) => {
            ctx.err(
                at(raw),
                path,
                format!(
                    "unknown {what} `{text}`: no such {what} on this host (use an existing \
                     {what} name or a numeric {id_kind})"
                ),
            );
            None
        }
        Err(why) => {
            ctx.err(at(raw), path, why);
            None
        }
    }
}

/// An octal mode: `0660`, `660` or `0o660`, at most 0777 and never
/// writable by others.
fn socket_mode(ctx: &mut Ctx, raw: &S<String>, path: &str) -> Option<u32> {
    let text = raw.value.trim();
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = (!digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten();
    let problem = match mode {
        None => format!("`{text}` is not a mode: expected octal permission bits like \"0660\""),
        Some(m) if m > 0o777 => format!(
            "mode {text} has bits outside 0777 (setuid, setgid and sticky mean nothing on a \
             socket)"
        ),
        Some(m) if m & 0o002 != 0 => format!(
            "mode {m:04o} lets every local user connect (write permission for others); \
             give the VMM's group access instead: socket-group with a mode like \"0660\""
        ),
        Some(m) => return Some(m),
    };
    ctx.err(at(raw), path, problem);
    None
}
