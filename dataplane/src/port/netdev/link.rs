//! Link state and settings of host interfaces: the one link-state rule
//! ([`link_up`], see the module docs of [`super`]), setting a link up,
//! and [`LinkProbe`], the control plane's view (link state, index,
//! hardware address, receive offloads) used by team supervision and the
//! uplink set-up.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::NetdevError;
use super::ifreq::{EthtoolValueCmd, Ifreq, IfreqIoctl, ethtool_value, ifindex, ioctl_socket};

/// Whether interface `ifname` is up, asked through socket `fd` (of the
/// interface's namespace): administratively up (`IFF_UP`) and with
/// carrier, where carrier is `ETHTOOL_GLINK` (the driver's view, updated
/// at once) when the driver answers it, else `IFF_RUNNING` (which can lag
/// behind by the kernel's link watch, up to a second). `None` if the
/// kernel does not say (interface gone, bad name).
pub(crate) fn link_up(fd: RawFd, ifname: &str) -> Option<bool> {
    let mut req = Ifreq::new(ifname).ok()?;
    req.ioctl(fd, IfreqIoctl::GetFlags).ok()?;
    let flags = i32::from(req.flags());
    if flags & libc::IFF_UP == 0 {
        return Some(false);
    }
    match ethtool_value(fd, Ifreq::new(ifname).ok()?, EthtoolValueCmd::GetLink, 0) {
        Ok(link) => Some(link != 0),
        Err(_) => Some(flags & libc::IFF_RUNNING != 0),
    }
}

/// Sets `IFF_UP` on interface `ifname` (of the calling thread's namespace).
pub(crate) fn set_link_up(ifname: &str) -> Result<(), NetdevError> {
    let mut ifr = Ifreq::new(ifname)?;
    let s = ioctl_socket().map_err(|e| NetdevError::os(ifname, "socket for interface flags", e))?;
    ifr.ioctl(s.as_raw_fd(), IfreqIoctl::GetFlags)
        .map_err(|e| NetdevError::os(ifname, "SIOCGIFFLAGS", e))?;
    ifr.set_flags(ifr.flags() | libc::IFF_UP as libc::c_short);
    ifr.ioctl(s.as_raw_fd(), IfreqIoctl::SetFlags)
        .map_err(|e| NetdevError::os(ifname, "setting the link up", e))
}

/// Sets interface `ifname`'s MTU (an internal port follows its switch's
/// `mtu:`).
pub fn set_mtu(ifname: &str, mtu: u16) -> Result<(), NetdevError> {
    let mut ifr = Ifreq::new(ifname)?;
    let s = ioctl_socket().map_err(|e| NetdevError::os(ifname, "socket for interface MTU", e))?;
    ifr.set_mtu(mtu);
    ifr.ioctl(s.as_raw_fd(), IfreqIoctl::SetMtu)
        .map_err(|e| NetdevError::os(ifname, "SIOCSIFMTU", e))
}

/// Sets interface `ifname`'s transmit queue length (for a TAP: how many
/// frames its ring holds until the switch reads them).
pub fn set_tx_queue_len(ifname: &str, qlen: u16) -> Result<(), NetdevError> {
    let mut ifr = Ifreq::new(ifname)?;
    let s = ioctl_socket().map_err(|e| NetdevError::os(ifname, "socket for queue length", e))?;
    ifr.set_qlen(qlen);
    ifr.ioctl(s.as_raw_fd(), IfreqIoctl::SetTxQueueLen)
        .map_err(|e| NetdevError::os(ifname, "SIOCSIFTXQLEN", e))
}

/// `Ifreq::new` with the error the control plane reports for a bad name.
fn ifreq_for(name: &str) -> io::Result<Ifreq> {
    Ifreq::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name"),
        )
    })
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
            sock: ioctl_socket()?,
        })
    }

    /// Whether `name` is administratively up with carrier, by the one
    /// link-state rule (see the `netdev` module docs). `None` when the
    /// interface does not exist.
    pub fn link_up(&self, name: &str) -> Option<bool> {
        link_up(self.sock.as_raw_fd(), name)
    }

    /// The interface's index, or `None` if it does not exist.
    pub fn index(&self, name: &str) -> Option<i32> {
        ifindex(name).ok().map(|idx| idx as i32)
    }

    /// The interface's hardware (MAC) address.
    pub fn hw_addr(&self, name: &str) -> Option<wire::MacAddr> {
        let mut req = Ifreq::new(name).ok()?;
        req.ioctl(self.sock.as_raw_fd(), IfreqIoctl::GetHwAddr)
            .ok()?;
        Some(wire::MacAddr(req.hw_addr()))
    }
}

const ETH_FLAG_LRO: u32 = 1 << 15;

impl LinkProbe {
    fn ethtool(&self, name: &str, cmd: EthtoolValueCmd, data: u32) -> io::Result<u32> {
        ethtool_value(self.sock.as_raw_fd(), ifreq_for(name)?, cmd, data)
    }

    /// Turns off GRO and LRO on `name`: an uplink's AF_PACKET socket must
    /// see frames as they were on the wire, not merged into 64 KiB
    /// super-frames it would have to drop. Returns what it turned off.
    pub fn disable_receive_offloads(&self, name: &str) -> io::Result<Vec<&'static str>> {
        let mut off = Vec::new();
        if self.ethtool(name, EthtoolValueCmd::GetGro, 0)? != 0 {
            self.ethtool(name, EthtoolValueCmd::SetGro, 0)?;
            off.push("gro");
        }
        // LRO: not every driver has flags; absent means nothing to do.
        if let Ok(flags) = self.ethtool(name, EthtoolValueCmd::GetFlags, 0)
            && flags & ETH_FLAG_LRO != 0
        {
            self.ethtool(name, EthtoolValueCmd::SetFlags, flags & !ETH_FLAG_LRO)?;
            off.push("lro");
        }
        Ok(off)
    }
}
