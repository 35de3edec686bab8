//! The one `struct ifreq` helper: interface-name validation, an `ifreq`
//! naming one interface (the rest zeroed), and the interface ioctls made
//! with it. Only requests that read and write nothing but the `ifreq`
//! itself ([`IfreqIoctl`]), and ethtool commands whose argument is one
//! `struct ethtool_value` ([`EthtoolValueCmd`]), can be made, so both
//! wrappers are safe to call.

use std::ffi::CString;
use std::io;
use std::mem::zeroed;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::NetdevError;

/// Whether `ifname` can name an interface: 1 to 15 bytes (IFNAMSIZ - 1),
/// no NUL byte.
fn valid_ifname(ifname: &str) -> bool {
    !ifname.is_empty() && ifname.len() < libc::IFNAMSIZ && !ifname.contains('\0')
}

fn bad_name(ifname: &str) -> NetdevError {
    NetdevError::BadName {
        ifname: ifname.to_owned(),
    }
}

/// The interface name as a C string (for ioctls), or `BadName`.
pub(crate) fn c_ifname(ifname: &str) -> Result<CString, NetdevError> {
    if !valid_ifname(ifname) {
        return Err(bad_name(ifname));
    }
    CString::new(ifname).map_err(|_| bad_name(ifname))
}

/// The index of interface `ifname` in the calling thread's namespace.
pub(crate) fn ifindex(ifname: &str) -> Result<u32, NetdevError> {
    if !valid_ifname(ifname) {
        return Err(bad_name(ifname));
    }
    nix::net::if_::if_nametoindex(ifname).map_err(|e| NetdevError::NoSuchInterface {
        ifname: ifname.to_owned(),
        source: io::Error::from(e),
    })
}

/// A socket for interface ioctls (an `AF_INET` datagram socket in the
/// calling thread's network namespace).
pub(crate) fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments; the result is
    // checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Interface ioctls that read and write only the `ifreq` they are given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IfreqIoctl {
    /// `SIOCGIFFLAGS`: fills in the flags.
    GetFlags,
    /// `SIOCSIFFLAGS`: sets the flags.
    SetFlags,
    /// `SIOCGIFHWADDR`: fills in the hardware address.
    GetHwAddr,
    /// `TUNSETIFF` on a `/dev/net/tun` descriptor: creates or attaches the
    /// device named, with the flags given, and writes back its name.
    TunSetIff,
    /// `SIOCSIFMTU`: sets the MTU to the mtu member.
    SetMtu,
    /// `SIOCSIFTXQLEN`: sets the transmit queue length (a TAP's ring of
    /// frames toward its reader) to the qlen member.
    SetTxQueueLen,
}

impl IfreqIoctl {
    fn request(self) -> libc::Ioctl {
        match self {
            IfreqIoctl::GetFlags => libc::SIOCGIFFLAGS as libc::Ioctl,
            IfreqIoctl::SetFlags => libc::SIOCSIFFLAGS as libc::Ioctl,
            IfreqIoctl::GetHwAddr => libc::SIOCGIFHWADDR as libc::Ioctl,
            IfreqIoctl::TunSetIff => libc::TUNSETIFF as libc::Ioctl,
            IfreqIoctl::SetMtu => libc::SIOCSIFMTU as libc::Ioctl,
            IfreqIoctl::SetTxQueueLen => libc::SIOCSIFTXQLEN as libc::Ioctl,
        }
    }
}

/// One `struct ifreq` naming an interface, the rest zeroed.
///
/// Invariant: the union was all zero when made and is written only by
/// [`Ifreq::set_flags`] and by the kernel through [`IfreqIoctl`] requests,
/// which store plain integers (flags, a `sockaddr`); so every byte of it
/// is initialised and any member may be read.
pub(crate) struct Ifreq(libc::ifreq);

impl std::fmt::Debug for Ifreq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Ifreq").field(&self.name()).finish()
    }
}

impl Ifreq {
    /// An `ifreq` naming `ifname`, or `BadName`.
    pub(crate) fn new(ifname: &str) -> Result<Ifreq, NetdevError> {
        if !valid_ifname(ifname) {
            return Err(bad_name(ifname));
        }
        // SAFETY: ifreq is plain old data (a name and a union of plain
        // fields); all-zero is a valid value.
        let mut raw: libc::ifreq = unsafe { zeroed() };
        for (d, s) in raw.ifr_name.iter_mut().zip(ifname.as_bytes()) {
            *d = *s as libc::c_char;
        }
        Ok(Ifreq(raw))
    }

    /// The interface name it holds (the kernel writes back the name it
    /// chose on `TUNSETIFF`).
    pub(crate) fn name(&self) -> String {
        let bytes: Vec<u8> = self
            .0
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The flags member (after [`IfreqIoctl::GetFlags`]).
    pub(crate) fn flags(&self) -> libc::c_short {
        // SAFETY: every byte of the union is initialised (type invariant)
        // and any bit pattern is a valid c_short.
        unsafe { self.0.ifr_ifru.ifru_flags }
    }

    /// Sets the mtu member (for [`IfreqIoctl::SetMtu`]).
    pub(crate) fn set_mtu(&mut self, mtu: u16) {
        self.0.ifr_ifru.ifru_mtu = libc::c_int::from(mtu);
    }

    /// Sets the qlen member (for [`IfreqIoctl::SetTxQueueLen`]): the
    /// kernel's `ifr_qlen` is the union's int member, the one libc names
    /// `ifru_mtu`.
    pub(crate) fn set_qlen(&mut self, qlen: u16) {
        self.0.ifr_ifru.ifru_mtu = libc::c_int::from(qlen);
    }

    /// Sets the flags member (for [`IfreqIoctl::SetFlags`] and
    /// [`IfreqIoctl::TunSetIff`]).
    pub(crate) fn set_flags(&mut self, flags: libc::c_short) {
        self.0.ifr_ifru.ifru_flags = flags;
    }

    /// The first six bytes of the hardware address member (after
    /// [`IfreqIoctl::GetHwAddr`]).
    pub(crate) fn hw_addr(&self) -> [u8; 6] {
        // SAFETY: every byte of the union is initialised (type invariant)
        // and a sockaddr is plain integers, valid for any bit pattern.
        let sa = unsafe { self.0.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (m, &b) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *m = b as u8;
        }
        mac
    }

    /// Makes interface ioctl `req` on `fd` with this `ifreq`.
    pub(crate) fn ioctl(&mut self, fd: RawFd, req: IfreqIoctl) -> io::Result<()> {
        // SAFETY: `self.0` is a valid, exclusively borrowed ifreq for the
        // whole call; the requests of `IfreqIoctl` read and write only that
        // struct (no pointer inside it is followed).
        let rc = unsafe { libc::ioctl(fd, req.request(), &raw mut self.0) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// ethtool commands whose argument is one `struct ethtool_value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EthtoolValueCmd {
    /// `ETHTOOL_GLINK`: the driver's view of the carrier.
    GetLink,
    /// `ETHTOOL_GFLAGS`: the offload flags (LRO among them).
    GetFlags,
    /// `ETHTOOL_SFLAGS`: sets them.
    SetFlags,
    /// `ETHTOOL_GGRO`: whether GRO is on.
    GetGro,
    /// `ETHTOOL_SGRO`: turns it on or off.
    SetGro,
}

impl EthtoolValueCmd {
    fn code(self) -> u32 {
        match self {
            EthtoolValueCmd::GetLink => 0x0000_000a,
            EthtoolValueCmd::GetFlags => 0x25,
            EthtoolValueCmd::SetFlags => 0x26,
            EthtoolValueCmd::GetGro => 0x2b,
            EthtoolValueCmd::SetGro => 0x2c,
        }
    }
}

/// `struct ethtool_value { u32 cmd; u32 data; }`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `SIOCETHTOOL` with `cmd` and `data` on the interface `req` names;
/// returns the `data` the kernel wrote back.
pub(crate) fn ethtool_value(
    fd: RawFd,
    req: Ifreq,
    cmd: EthtoolValueCmd,
    data: u32,
) -> io::Result<u32> {
    let mut raw = req.0;
    let mut v = EthtoolValue {
        cmd: cmd.code(),
        data,
    };
    raw.ifr_ifru.ifru_data = (&raw mut v).cast();
    // SAFETY: SIOCETHTOOL reads the name and the ethtool_value that
    // `ifru_data` points to (`v`, ours, alive for the call; every command
    // of `EthtoolValueCmd` takes exactly that struct) and writes back into
    // it; `raw` and `v` are exclusively borrowed locals for the call.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL as libc::Ioctl, &raw mut raw) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v.data)
}
