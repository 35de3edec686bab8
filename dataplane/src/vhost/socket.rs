//! The socket file of a server-role vhost-user port, and who may connect.
//!
//! Connecting to a Unix socket needs write permission on its file, so the
//! file's owner, group and mode decide which local processes can reach the
//! port and hold its single connection (keeping the VM out). The socket
//! must never be reachable with looser permissions than asked for, not
//! even for an instant, so it is not bound at its final path:
//!
//! 1. a private directory (mode 0700 or stricter, the daemon's) is made
//!    next to the final path: same directory, so same file system;
//! 2. the socket is bound inside it, where nobody else can look its path
//!    up, whatever mode the umask gave it;
//! 3. it gets its owner and group (`fchownat`), then its mode
//!    (`fchmodat`);
//! 4. `rename()` moves it to the final path. That is atomic: the path names
//!    either what was there (a stale socket) or the finished new socket,
//!    never a half-set-up one;
//! 5. the private directory is removed.
//!
//! The process-wide umask is not touched: it is shared by every thread
//! (other ports' control threads, the control socket), and a umask
//! switched back and forth by two threads at once can be left loose.
//!
//! A directory that other users may write to defeats any of this (they
//! can rename the socket away and put their own in its place): socket
//! directories must be writable by their owner only.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, open, openat, renameat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmodat, fstat, fstatat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, unlinkat};

/// `sizeof(sockaddr_un.sun_path)` minus the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Name of the socket inside the private directory.
const TMP_LEAF: &str = "s";

/// Owner, group and permission bits of a socket the switch creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketPerms {
    /// Permission bits (0o777 at most; the rest is ignored).
    pub mode: u32,
    /// Owner; `None`: the daemon's effective user.
    pub uid: Option<u32>,
    /// Group; `None`: the daemon's effective group.
    pub gid: Option<u32>,
}

impl Default for SocketPerms {
    /// Mode 0600, the daemon's user and group: only the daemon's user
    /// (root) may connect.
    fn default() -> Self {
        SocketPerms {
            mode: 0o600,
            uid: None,
            gid: None,
        }
    }
}

impl SocketPerms {
    fn mode(self) -> Mode {
        Mode::from_bits_truncate(self.mode & 0o777)
    }

    /// Owner and group, the daemon's where not given: always set, so a
    /// reload back to the defaults undoes an earlier `socket-group`, and
    /// a set-group-ID directory does not pick the group.
    fn owner(self) -> (Uid, Gid) {
        (
            self.uid.map_or_else(nix::unistd::geteuid, Uid::from_raw),
            self.gid.map_or_else(nix::unistd::getegid, Gid::from_raw),
        )
    }
}

/// A socket file the switch created: its path and the inode bound there,
/// so that it is changed or removed only while the path still names it
/// (and not a successor's socket, or a file someone put in its place).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// An I/O error with what was being done.
fn ctx(what: impl std::fmt::Display, e: impl Into<io::Error>) -> io::Error {
    let e: io::Error = e.into();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Splits `path` into its directory and file name.
fn split(path: &Path) -> io::Result<(&Path, &std::ffi::OsStr)> {
    let leaf = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((dir, leaf))
}

/// Makes a fresh private directory in `dir` (mode 0700 before the umask,
/// so never looser); returns its name and an fd on it.
fn private_dir(dir: &OwnedFd) -> io::Result<(String, OwnedFd)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    for _ in 0..64 {
        let name = format!(".vs-{pid}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        match nix::sys::stat::mkdirat(dir, name.as_str(), Mode::S_IRWXU) {
            Ok(()) => {}
            // A leftover of an earlier daemon with our pid: next name.
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(ctx("creating a private directory", e)),
        }
        let fd = openat(
            dir,
            name.as_str(),
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        return match fd {
            Ok(fd) => Ok((name, fd)),
            Err(e) => {
                let _ = unlinkat(dir, name.as_str(), UnlinkatFlags::RemoveDir);
                Err(ctx("opening the private directory", e))
            }
        };
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name for a private directory",
    ))
}

/// Creates a listening socket at `path` with `perms` (see the module
/// docs for how it never exists with looser ones). A stale socket at
/// `path` is replaced; anything else there is an error.
pub fn bind(path: &Path, perms: SocketPerms) -> io::Result<(UnixListener, SocketFile)> {
    let (dir_path, leaf) = split(path)?;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.file_type().is_socket()
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    let dir = open(
        dir_path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ctx(format_args!("opening {}", dir_path.display()), e))?;
    let (tmp_name, tmp) = private_dir(&dir)?;
    let bound = bind_private(&dir, dir_path, &tmp_name, &tmp, leaf, perms);
    if bound.is_err() {
        let _ = unlinkat(&tmp, TMP_LEAF, UnlinkatFlags::NoRemoveDir);
    }
    // Empty now: the socket was moved out, or removed above.
    let _ = unlinkat(&dir, tmp_name.as_str(), UnlinkatFlags::RemoveDir);
    let (listener, dev, ino) = bound?;
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
            dev,
            ino,
        },
    ))
}

/// Steps 2 to 4: bind in the private directory `tmp` (called `tmp_name`
/// in `dir`), set owner, group and mode, rename to `leaf` in `dir`.
fn bind_private(
    dir: &OwnedFd,
    dir_path: &Path,
    tmp_name: &str,
    tmp: &OwnedFd,
    leaf: &std::ffi::OsStr,
    perms: SocketPerms,
) -> io::Result<(UnixListener, u64, u64)> {
    let direct = dir_path.join(tmp_name).join(TMP_LEAF);
    // A path too long for sun_path goes through the directory's fd.
    let bind_path = if direct.as_os_str().len() <= MAX_SOCKET_PATH {
        direct
    } else {
        PathBuf::from(format!("/proc/self/fd/{}/{TMP_LEAF}", tmp.as_raw_fd()))
    };
    let listener = UnixListener::bind(&bind_path).map_err(|e| ctx("bind", e))?;
    let (uid, gid) = perms.owner();
    fchownat(
        tmp,
        TMP_LEAF,
        Some(uid),
        Some(gid),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| ctx(format_args!("setting owner {uid} and group {gid}"), e))?;
    // Our own private directory: nobody can have put a symlink there.
    fchmodat(tmp, TMP_LEAF, perms.mode(), FchmodatFlags::FollowSymlink)
        .map_err(|e| ctx(format_args!("setting mode {:04o}", perms.mode), e))?;
    let st = fstatat(tmp, TMP_LEAF, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| ctx("stat", e))?;
    renameat(tmp, TMP_LEAF, dir, leaf).map_err(|e| ctx("moving the socket into place", e))?;
    Ok((listener, st.st_dev, st.st_ino))
}

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An `O_PATH` fd on the file at the path, if it is still this socket.
    fn open_current(&self) -> io::Result<OwnedFd> {
        let fd = open(
            &self.path,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ctx(format_args!("opening {}", self.path.display()), e))?;
        let st = fstat(&fd).map_err(|e| ctx("stat", e))?;
        let is_socket = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK;
        if !is_socket || st.st_dev != self.dev || st.st_ino != self.ino {
            return Err(io::Error::other(format!(
                "{} is no longer the port's socket (replaced by someone else)",
                self.path.display()
            )));
        }
        Ok(fd)
    }

    /// Gives the existing socket new owner, group and mode, if the path
    /// still names it. Acts on the inode through an fd, never on a path
    /// that could be swapped meanwhile. At no moment does anyone have an
    /// access neither the old nor the new settings give: the mode drops to
    /// what both allow before the owner changes, then rises to the new one.
    /// A connected frontend stays connected.
    pub fn set_perms(&self, perms: SocketPerms) -> io::Result<()> {
        let fd = self.open_current()?;
        let old = fstat(&fd).map_err(|e| ctx("stat", e))?.st_mode & 0o777;
        // chmod has no AT_EMPTY_PATH before fchmodat2 (Linux 6.6): go
        // through the fd's /proc link, which names this inode.
        let proc = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let chmod = |mode: u32| {
            fchmodat(
                AT_FDCWD,
                &proc,
                Mode::from_bits_truncate(mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| ctx(format_args!("setting mode {mode:04o}"), e))
        };
        let new = perms.mode & 0o777;
        chmod(old & new)?;
        let (uid, gid) = perms.owner();
        fchownat(&fd, "", Some(uid), Some(gid), AtFlags::AT_EMPTY_PATH)
            .map_err(|e| ctx(format_args!("setting owner {uid} and group {gid}"), e))?;
        chmod(new)
    }

    /// Removes the socket file, if the path still names it.
    pub fn remove(&self) {
        if self.open_current().is_ok()
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(socket = %self.path.display(), error = %e, "cannot remove socket");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::net::UnixStream;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).expect("exists").mode() & 0o7777
    }

    #[test]
    fn binds_with_the_mode_asked_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vm0.sock");
        let (l, file) = bind(&path, SocketPerms::default()).expect("binds");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(file.path(), path);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["vm0.sock"], "no private directory is left");
        // The renamed socket is the listening one.
        let _c = UnixStream::connect(&path).expect("connects");
        l.accept().expect("accepts");

        file.set_perms(SocketPerms {
            mode: 0o660,
            uid: None,
            gid: Some(nix::unistd::getegid().as_raw()),
        })
        .expect("chmod");
        assert_eq!(mode(&path), 0o660);
        file.remove();
        assert!(!path.exists());
    }

    #[test]
    fn replaces_a_stale_socket_but_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.sock");
        drop(UnixListener::bind(&path).expect("stale socket"));
        let (_l, file) = bind(
            &path,
            SocketPerms {
                mode: 0o640,
                ..SocketPerms::default()
            },
        )
        .expect("replaces the stale socket");
        assert_eq!(mode(&path), 0o640);
        let file_path = dir.path().join("b.sock");
        std::fs::write(&file_path, "data").expect("write");
        let e = bind(&file_path, SocketPerms::default()).expect_err("a file is not replaced");
        assert!(e.to_string().contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read(&file_path).expect("kept"), b"data");

        // A socket put in its place is neither changed nor removed.
        std::fs::remove_file(&path).expect("rm");
        drop(UnixListener::bind(&path).expect("someone else's socket"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = file
            .set_perms(SocketPerms::default())
            .expect_err("not ours");
        assert!(e.to_string().contains("no longer the port's socket"), "{e}");
        file.remove();
        assert_eq!(mode(&path), 0o644);
    }

    #[test]
    fn a_path_too_long_for_the_private_directory_goes_through_proc() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().as_os_str().len() + 1;
        // The final path fits sun_path exactly; the private one would not.
        let path = dir.path().join("x".repeat(MAX_SOCKET_PATH - base));
        assert_eq!(path.as_os_str().len(), MAX_SOCKET_PATH);
        let (_l, _f) = bind(&path, SocketPerms::default()).expect("binds");
        assert_eq!(mode(&path), 0o600);
        UnixStream::connect(&path).expect("connects");
    }
}
