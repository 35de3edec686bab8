//! What the control plane asks the kernel about host network interfaces:
//! link state, hardware address, and sending the odd control frame
//! (beacons, RARP/GARP announcements) out of one interface.
//!
//! The fast path's uplink ports live in `dataplane::port`; these are the
//! slow-path helpers of team supervision.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAMSIZ: usize = libc::IFNAMSIZ;

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name"),
        ));
    }
    // SAFETY: ifreq is a plain C struct (a name array and a union of
    // integers/addresses); all-zero bytes are a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &b) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    Ok(req)
}

fn dgram_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments; the result is
    // checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A socket for interface ioctls, opened once and reused.
#[derive(Debug)]
pub struct LinkProbe {
    sock: OwnedFd,
}

impl LinkProbe {
    /// Opens the probe socket (in the calling thread's network namespace).
    pub fn new() -> io::Result<LinkProbe> {
        Ok(LinkProbe {
            sock: dgram_socket()?,
        })
    }

    /// Whether `name` is up with carrier (`IFF_UP` and `IFF_RUNNING`, i.e.
    /// operationally up). `None` when the interface does not exist.
    pub fn link_up(&self, name: &str) -> Option<bool> {
        let mut req = ifreq_for(name).ok()?;
        // SAFETY: SIOCGIFFLAGS reads the name and writes the flags member
        // of the ifreq we own; the pointer is valid for the call.
        let rc = unsafe { libc::ioctl(self.sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
        if rc < 0 {
            return None;
        }
        // SAFETY: after a successful SIOCGIFFLAGS the union holds the flags.
        let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
        Some(flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0)
    }

    /// The interface's index, or `None` if it does not exist.
    pub fn index(&self, name: &str) -> Option<i32> {
        let c = CString::new(name).ok()?;
        // SAFETY: `c` is a valid NUL-terminated string for the call.
        let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
        (idx != 0).then_some(idx as i32)
    }

    /// The interface's hardware (MAC) address.
    pub fn hw_addr(&self, name: &str) -> Option<[u8; 6]> {
        let mut req = ifreq_for(name).ok()?;
        // SAFETY: SIOCGIFHWADDR reads the name and writes the hwaddr member
        // of the ifreq we own; the pointer is valid for the call.
        let rc = unsafe { libc::ioctl(self.sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) };
        if rc < 0 {
            return None;
        }
        // SAFETY: after a successful SIOCGIFHWADDR the union holds a sockaddr.
        let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (m, &b) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *m = b as u8;
        }
        Some(mac)
    }
}

const ETHTOOL_GFLAGS: u32 = 0x25;
const ETHTOOL_SFLAGS: u32 = 0x26;
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_SGRO: u32 = 0x2c;
const ETH_FLAG_LRO: u32 = 1 << 15;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

impl LinkProbe {
    fn ethtool(&self, name: &str, cmd: u32, data: u32) -> io::Result<u32> {
        let mut req = ifreq_for(name)?;
        let mut v = EthtoolValue { cmd, data };
        req.ifr_ifru.ifru_data = (&raw mut v).cast();
        // SAFETY: SIOCETHTOOL reads the name and the ethtool_value that
        // `ifru_data` points to (ours, alive for the call) and writes back
        // into it; the pointers are valid for the call only.
        let rc = unsafe { libc::ioctl(self.sock.as_raw_fd(), libc::SIOCETHTOOL, &mut req) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(v.data)
    }

    /// Turns off GRO and LRO on `name`: an uplink's AF_PACKET socket must
    /// see frames as they were on the wire, not merged into 64 KiB
    /// super-frames it would have to drop. Returns what it turned off.
    pub fn disable_receive_offloads(&self, name: &str) -> io::Result<Vec<&'static str>> {
        let mut off = Vec::new();
        if self.ethtool(name, ETHTOOL_GGRO, 0)? != 0 {
            self.ethtool(name, ETHTOOL_SGRO, 0)?;
            off.push("gro");
        }
        // LRO: not every driver has flags; absent means nothing to do.
        if let Ok(flags) = self.ethtool(name, ETHTOOL_GFLAGS, 0)
            && flags & ETH_FLAG_LRO != 0
        {
            self.ethtool(name, ETHTOOL_SFLAGS, flags & !ETH_FLAG_LRO)?;
            off.push("lro");
        }
        Ok(off)
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
        // SAFETY: plain socket(2) call; protocol 0 binds to no ethertype,
        // so the socket never queues received frames.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
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
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
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
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_and_unknown_names_are_none() {
        let p = LinkProbe::new().expect("socket");
        assert_eq!(p.link_up("lo"), Some(true));
        assert_eq!(p.link_up("no-such-if0"), None);
        assert_eq!(p.link_up(""), None);
        assert_eq!(p.link_up("a-name-that-is-far-too-long"), None);
        assert_eq!(p.hw_addr("lo"), Some([0; 6]));
        assert!(p.index("lo").is_some());
        assert!(FrameSender::open("no-such-if0").is_err());
        assert!(p.disable_receive_offloads("no-such-if0").is_err());
    }
}
