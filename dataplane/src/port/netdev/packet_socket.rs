//! Packet sockets: the one opener of raw `AF_PACKET` sockets, binding,
//! socket options and pending errors, and [`FrameSender`], which sends the
//! odd control frame (beacons, RARP/GARP announcements) out of one
//! interface for team supervision.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::NetdevError;
use super::link::LinkProbe;

/// Reads (and so clears) a pending socket error (`SO_ERROR`); returns it.
pub(crate) fn take_socket_error(fd: RawFd) -> i32 {
    let mut err: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid, exclusively borrowed locals for
    // the call and `len` holds the size of `err`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &raw mut len,
        )
    };
    if rc == 0 { err } else { 0 }
}

/// `setsockopt(fd, level, name, &value)`.
pub(crate) fn setsockopt<T>(fd: RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialised `T` borrowed for the whole
    // call and the length passed is exactly its size; the kernel only
    // reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A new non-blocking raw packet socket, not yet bound (so it receives
/// nothing).
pub(crate) fn packet_socket(ifname: &str) -> Result<OwnedFd, NetdevError> {
    raw_packet_socket().map_err(|e| NetdevError::os(ifname, "AF_PACKET socket", e))
}

/// A new non-blocking raw packet socket with protocol 0: until it is bound
/// to a protocol it never queues a received frame.
fn raw_packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments; no memory is
    // passed.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody
    // else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a packet socket to `ifindex` with `protocol` (host order; 0 means
/// "receive nothing").
pub(crate) fn bind_packet(fd: RawFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll living for the call and the
    // length given is its size.
    let rc = unsafe {
        libc::bind(
            fd,
            (&raw const sll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An AF_PACKET socket that only sends (protocol 0: it receives nothing),
/// for control frames out of one interface.
#[derive(Debug)]
pub struct FrameSender {
    sock: OwnedFd,
    ifindex: i32,
    name: String,
}

impl FrameSender {
    /// A sender on interface `name`.
    pub fn open(name: &str) -> io::Result<FrameSender> {
        let probe = LinkProbe::new()?;
        let ifindex = probe.index(name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name}: no such interface"),
            )
        })?;
        // Protocol 0 binds to no ethertype, so the socket never queues
        // received frames.
        let sock = raw_packet_socket()?;
        Ok(FrameSender {
            sock,
            ifindex,
            name: name.to_string(),
        })
    }

    /// The interface it sends on.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one whole Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is a plain C struct; all-zero is valid.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        for (d, &b) in addr.sll_addr.iter_mut().zip(frame.iter().take(6)) {
            *d = b;
        }
        // SAFETY: `frame` is valid for `frame.len()` bytes and `addr` for
        // its size during the call; sendto does not keep either pointer.
        let rc = unsafe {
            libc::sendto(
                self.sock.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
