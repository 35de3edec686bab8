//! The daemon's control socket: a Unix stream socket, mode 0600, that
//! only root and the daemon's own user may use (checked with
//! `SO_PEERCRED` on every connection, on top of the file mode). Each
//! connection gets its own thread and speaks the line-delimited JSON of
//! [`crate::protocol`]; the commands themselves are a [`Handler`]'s
//! business, so this module knows nothing about switches.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::protocol::{MAX_REQUEST_LINE, Request, Response};

/// Connections served at once; more are refused with an error line.
const MAX_CONNECTIONS: usize = 16;
/// A connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the accept loop looks at its stop flag.
const TICK_MS: i32 = 100;

/// Answers requests. Called from connection threads, one call per request.
pub trait Handler: Send + Sync + 'static {
    /// The response to `req`.
    fn handle(&self, req: Request) -> Response;
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another process answers on the socket.
    #[error("{}: another vswitchd is running (it answers on this control socket)", .0.display())]
    InUse(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{}: exists and is not a socket; not removing it", .0.display())]
    NotASocket(PathBuf),
    /// Creating, binding or setting up the socket failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Whether a peer with user ID `peer` may use a daemon running as `own`.
pub fn peer_allowed(peer: u32, own: u32) -> bool {
    peer == 0 || peer == own
}

/// The listening control socket and its accept thread. Dropping it stops
/// accepting and removes the socket file (connections being served finish
/// their current request).
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A bound control socket not serving yet: the daemon binds first (so a
/// second daemon on the same runtime directory stops before touching any
/// port), starts its switches, then serves. Dropping it removes the socket.
#[derive(Debug)]
pub struct ControlListener {
    path: PathBuf,
    listener: Option<UnixListener>,
}

impl ControlListener {
    /// Creates the socket at `path` (mode 0600). A stale socket left by a
    /// crashed daemon is replaced; a live one is an error.
    pub fn bind(path: &Path) -> Result<ControlListener, ControlError> {
        let io = |source| ControlError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(ControlError::NotASocket(path.to_path_buf()));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        // Bind with a umask that leaves the socket 0600 from its first
        // moment; set the mode again in case the umask did not apply.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        nix::sys::stat::umask(old);
        let bound = ControlListener {
            path: path.to_path_buf(),
            listener: Some(bound.map_err(io)?),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(bound)
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts serving `handler` on its own thread.
    pub fn serve(mut self, handler: Arc<dyn Handler>) -> Result<ControlServer, ControlError> {
        let io = |source| ControlError::Io {
            path: self.path.clone(),
            source,
        };
        let Some(listener) = self.listener.take() else {
            return Err(io(std::io::Error::other("the listener is gone")));
        };
        // From here on the server owns the socket file.
        let mut server = ControlServer {
            path: self.path.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        listener.set_nonblocking(true).map_err(io)?;
        let stop = server.stop.clone();
        server.thread = Some(
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || accept_loop(&listener, handler, &stop))
                .map_err(io)?,
        );
        tracing::info!(socket = %self.path.display(), "control socket listening");
        Ok(server)
    }
}

impl Drop for ControlListener {
    fn drop(&mut self) {
        if self.listener.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl ControlServer {
    /// [`ControlListener::bind`], then [`ControlListener::serve`].
    pub fn start(path: &Path, handler: Arc<dyn Handler>) -> Result<ControlServer, ControlError> {
        ControlListener::bind(path)?.serve(handler)
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("control socket thread panicked");
        }
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(socket = %self.path.display(), error = %e, "cannot remove the control socket");
        }
    }
}

fn accept_loop(listener: &UnixListener, handler: Arc<dyn Handler>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    let own_uid = nix::unistd::geteuid().as_raw();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    tracing::warn!("control socket: too many connections, refusing one");
                    refuse(stream, "too many control connections; try again");
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let handler = handler.clone();
                let done = active.clone();
                let spawned = std::thread::Builder::new()
                    .name("control-conn".into())
                    .spawn(move || {
                        serve(stream, handler.as_ref(), own_uid);
                        done.fetch_sub(1, Ordering::Relaxed);
                    });
                if let Err(e) = spawned {
                    active.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "control socket: cannot start a connection thread");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Err(e) = dataplane::sys::poll_readable(&[listener.as_raw_fd()], TICK_MS) {
                    tracing::warn!(error = %e, "control socket: poll failed");
                    std::thread::sleep(Duration::from_millis(TICK_MS as u64));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket: accept failed");
                std::thread::sleep(Duration::from_millis(TICK_MS as u64));
            }
        }
    }
}

fn send(stream: &mut UnixStream, resp: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(resp).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    stream.flush()
}

fn refuse(mut stream: UnixStream, why: &str) {
    // Best effort: the peer may already be gone.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = send(&mut stream, &Response::failure(why));
}

/// Serves one connection: checks the peer, then answers request lines
/// until EOF, an oversized line, a write error or the idle timeout.
fn serve(stream: UnixStream, handler: &dyn Handler, own_uid: u32) {
    let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials);
    match peer {
        Ok(cred) if peer_allowed(cred.uid(), own_uid) => {}
        Ok(cred) => {
            tracing::warn!(
                uid = cred.uid(),
                pid = cred.pid(),
                "control socket: refused a peer that is neither root nor the daemon's user"
            );
            refuse(
                stream,
                &format!(
                    "permission denied: uid {} may not control this vswitchd (only root and uid {own_uid})",
                    cred.uid()
                ),
            );
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "control socket: cannot read the peer's credentials");
            refuse(stream, "permission denied: peer credentials unavailable");
            return;
        }
    }
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(IDLE_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(IDLE_TIMEOUT)))
        .and_then(|()| stream.try_clone());
    let mut writer = match setup {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "control socket: cannot set up a connection");
            return;
        }
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        let n = match reader
            .by_ref()
            .take(MAX_REQUEST_LINE as u64)
            .read_line(&mut line)
        {
            Ok(n) => n,
            Err(e) => {
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    // Bad UTF-8 or a reset: say so if we still can, then close.
                    let _ = send(&mut writer, &Response::failure(format!("bad request: {e}")));
                }
                return;
            }
        };
        if n == 0 {
            return;
        }
        if !line.ends_with('\n') && n >= MAX_REQUEST_LINE {
            let _ = send(
                &mut writer,
                &Response::failure(format!("bad request: longer than {MAX_REQUEST_LINE} bytes")),
            );
            return;
        }
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let resp = match serde_json::from_str::<Request>(text) {
            Ok(req) => {
                tracing::debug!(?req, "control request");
                handler.handle(req)
            }
            Err(e) => Response::failure(format!(
                "bad request: {e} (expected one JSON object per line, like {{\"cmd\":\"status\"}})"
            )),
        };
        if let Err(e) = send(&mut writer, &resp) {
            tracing::debug!(error = %e, "control socket: peer went away");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::VersionReply;

    struct Echo;

    impl Handler for Echo {
        fn handle(&self, req: Request) -> Response {
            match req {
                Request::Version => Response::success(&VersionReply {
                    version: "test".into(),
                    protocol: 1,
                }),
                other => Response::failure(format!("{other:?}")),
            }
        }
    }

    fn roundtrip(stream: &mut UnixStream, reader: &mut BufReader<UnixStream>, req: &str) -> String {
        stream
            .write_all(format!("{req}\n").as_bytes())
            .expect("write");
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        line
    }

    #[test]
    fn serves_lines_and_rejects_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ctl.sock");
        let server = ControlServer::start(&path, Arc::new(Echo)).expect("starts");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut s = UnixStream::connect(&path).expect("connects");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        assert_eq!(
            roundtrip(&mut s, &mut r, r#"{"cmd":"version"}"#),
            "{\"ok\":true,\"result\":{\"version\":\"test\",\"protocol\":1}}\n"
        );
        let bad = roundtrip(&mut s, &mut r, "status please");
        assert!(
            bad.starts_with("{\"ok\":false,\"error\":\"bad request:"),
            "{bad}"
        );
        // The connection survives a bad line.
        assert!(roundtrip(&mut s, &mut r, r#"{"cmd":"stats"}"#).contains("Stats"));
        // A second daemon on the same socket is refused.
        assert!(matches!(
            ControlServer::start(&path, Arc::new(Echo)),
            Err(ControlError::InUse(_))
        ));
        drop(server);
        assert!(!path.exists(), "the socket is removed on drop");
    }

    #[test]
    fn replaces_a_stale_socket_but_not_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ctl.sock");
        drop(UnixListener::bind(&path).expect("binds"));
        assert!(path.exists(), "a stale socket file is left behind");
        let server = ControlServer::start(&path, Arc::new(Echo)).expect("replaces it");
        drop(server);
        std::fs::write(&path, "not a socket").expect("write");
        assert!(matches!(
            ControlServer::start(&path, Arc::new(Echo)),
            Err(ControlError::NotASocket(_))
        ));
    }

    #[test]
    fn oversized_lines_close_the_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ctl.sock");
        let _server = ControlServer::start(&path, Arc::new(Echo)).expect("starts");
        let mut s = UnixStream::connect(&path).expect("connects");
        let big = vec![b'x'; MAX_REQUEST_LINE + 10];
        // The daemon may close before reading everything.
        let _ = s.write_all(&big);
        let mut out = String::new();
        let _ = BufReader::new(s).read_to_string(&mut out);
        assert!(out.contains("longer than"), "{out}");
    }

    #[test]
    fn peer_policy() {
        assert!(peer_allowed(0, 1000));
        assert!(peer_allowed(1000, 1000));
        assert!(!peer_allowed(1001, 1000));
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(65534, 0));
    }
}
