//! The XDP side of an AF_XDP port: an XSKMAP, a six-instruction program
//! that redirects each frame to the socket of its receive queue (or lets
//! it pass to the kernel stack), and attaching/detaching that program with
//! rtnetlink (`RTM_SETLINK`, `IFLA_XDP`).
//!
//! Everything goes through raw `bpf(2)` and netlink system calls on
//! structures defined here from the kernel UAPI (`linux/bpf.h`,
//! `linux/if_link.h`, `linux/netlink.h`); no BPF library, no compiler.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::port::netdev::NetdevError;

const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const XDP_PASS: i32 = 2;

/// `IFLA_XDP` and its nested attributes.
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_EXPECTED_FD: u16 = 8;
const NLA_F_NESTED: u16 = 1 << 15;
/// `XDP_FLAGS_*` of `linux/if_link.h`.
pub(crate) const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1 << 0;
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_FLAGS_REPLACE: u32 = 1 << 4;
/// Netlink extended-ack attribute carrying the kernel's message.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLM_F_ACK_TLVS: u16 = 0x200;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// The program, for an XSKMAP whose fd is `map_fd`:
///
/// ```text
/// r2 = *(u32 *)(r1 + 16)          ; ctx->rx_queue_index
/// r1 = map_fd ll                  ; the XSKMAP (two-slot ld_imm64)
/// r3 = XDP_PASS                   ; action when the slot is empty
/// call bpf_redirect_map           ; r0 = XDP_REDIRECT or XDP_PASS
/// exit
/// ```
fn program(map_fd: RawFd) -> [Insn; 6] {
    [
        // BPF_LDX | BPF_MEM | BPF_W
        insn(0x61, 2, 1, 16, 0),
        // BPF_LD | BPF_DW | BPF_IMM, src = BPF_PSEUDO_MAP_FD
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // BPF_ALU64 | BPF_MOV | BPF_K
        insn(0xb7, 3, 0, 0, XDP_PASS),
        // BPF_JMP | BPF_CALL
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        // BPF_JMP | BPF_EXIT
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// The `BPF_MAP_CREATE` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// The `BPF_MAP_*_ELEM` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The `BPF_PROG_LOAD` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// `bpf(cmd, attr, sizeof attr)`; returns the new fd or the error.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, exclusively borrowed `#[repr(C)]` prefix
    // of `union bpf_attr` whose size we pass; the kernel zero-extends the
    // rest. Pointers inside it (instructions, license, log, key, value)
    // point to live buffers owned by the caller for the whole call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr),
            size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` is a descriptor the kernel just returned to us from
    // bpf(2) (a non-negative int), owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (d, s) in out.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    out
}

/// An XSKMAP with `entries` slots (queue index -> AF_XDP socket).
pub(crate) fn create_xskmap(ifname: &str, entries: u32) -> Result<OwnedFd, NetdevError> {
    let mut attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_XSKMAP,
        key_size: 4,
        value_size: 4,
        max_entries: entries,
        map_name: name16("vsw_xsks"),
        ..MapCreateAttr::default()
    };
    bpf(BPF_MAP_CREATE, &mut attr)
        .map(owned)
        .map_err(|e| NetdevError::os(ifname, "XSKMAP create (bpf BPF_MAP_CREATE)", e))
}

/// Puts AF_XDP socket `xsk` in slot `queue` of `map`.
pub(crate) fn xskmap_set(
    ifname: &str,
    map: &OwnedFd,
    queue: u32,
    xsk: RawFd,
) -> Result<(), NetdevError> {
    let key = queue;
    let value = xsk as u32;
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: (&raw const key) as u64,
        value: (&raw const value) as u64,
        ..MapElemAttr::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
        .map(drop)
        .map_err(|e| NetdevError::os(ifname, "XSKMAP update", e))
}

/// Empties slot `queue` of `map` (best effort: used on teardown).
pub(crate) fn xskmap_delete(map: &OwnedFd, queue: u32) {
    let key = queue;
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: (&raw const key) as u64,
        ..MapElemAttr::default()
    };
    let _ = bpf(BPF_MAP_DELETE_ELEM, &mut attr);
}

/// Loads the redirect program for `map`. On refusal, the error carries the
/// first lines of the verifier's log.
pub(crate) fn load_redirect_prog(ifname: &str, map: &OwnedFd) -> Result<OwnedFd, NetdevError> {
    let insns = program(map.as_raw_fd());
    let license = c"Dual MIT/GPL";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_XDP,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name16("vsw_xsk_redir"),
        ..ProgLoadAttr::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(first) => {
            // Once more with the verifier's log, to say why.
            let mut log = vec![0u8; 16 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            match bpf(BPF_PROG_LOAD, &mut attr) {
                Ok(fd) => Ok(owned(fd)),
                Err(e) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]);
                    let detail: Vec<&str> = text.lines().rev().take(3).collect();
                    let detail = detail.into_iter().rev().collect::<Vec<_>>().join("; ");
                    if detail.is_empty() {
                        Err(NetdevError::os(ifname, "XDP program load", first))
                    } else {
                        Err(NetdevError::Refused {
                            ifname: ifname.to_owned(),
                            step: "XDP program load",
                            detail,
                            source: e,
                        })
                    }
                }
            }
        }
    }
}

/// A netlink route socket, kept for the life of the attachment so detach
/// works from whatever thread drops the port (and in the namespace where
/// the program was attached).
#[derive(Debug)]
pub(crate) struct XdpAttachment {
    nl: OwnedFd,
    ifname: String,
    ifindex: u32,
    mode: u32,
    prog: OwnedFd,
    attached: bool,
}

impl XdpAttachment {
    /// Attaches `prog` to `ifindex` in `mode` (`XDP_FLAGS_SKB_MODE` or
    /// `XDP_FLAGS_DRV_MODE`), refusing to replace a program already there.
    pub(crate) fn attach(
        ifname: &str,
        ifindex: u32,
        mode: u32,
        prog: OwnedFd,
    ) -> Result<XdpAttachment, NetdevError> {
        let step = if mode & XDP_FLAGS_SKB_MODE != 0 {
            "XDP attach in skb mode"
        } else {
            "XDP attach in driver mode"
        };
        let nl = netlink_socket().map_err(|e| NetdevError::os(ifname, step, e))?;
        let mut me = XdpAttachment {
            nl,
            ifname: ifname.to_owned(),
            ifindex,
            mode,
            prog,
            attached: false,
        };
        let fd = me.prog.as_raw_fd();
        me.set_link_xdp(fd, None, mode | XDP_FLAGS_UPDATE_IF_NOEXIST)
            .map_err(|(e, detail)| match detail {
                Some(detail) => NetdevError::Refused {
                    ifname: ifname.to_owned(),
                    step,
                    detail,
                    source: e,
                },
                None => NetdevError::os(ifname, step, e),
            })?;
        me.attached = true;
        Ok(me)
    }

    /// Removes our program (only if it is still the one attached).
    pub(crate) fn detach(&mut self) -> Result<(), (io::Error, Option<String>)> {
        if !self.attached {
            return Ok(());
        }
        self.attached = false;
        let ours = self.prog.as_raw_fd();
        self.set_link_xdp(-1, Some(ours), self.mode | XDP_FLAGS_REPLACE)
    }

    fn set_link_xdp(
        &mut self,
        fd: RawFd,
        expected: Option<RawFd>,
        flags: u32,
    ) -> Result<(), (io::Error, Option<String>)> {
        let mut inner = Vec::with_capacity(24);
        put_attr(&mut inner, IFLA_XDP_FD, &fd.to_ne_bytes());
        put_attr(&mut inner, IFLA_XDP_FLAGS, &flags.to_ne_bytes());
        if let Some(x) = expected {
            put_attr(&mut inner, IFLA_XDP_EXPECTED_FD, &x.to_ne_bytes());
        }
        let mut msg = Vec::with_capacity(64);
        // nlmsghdr, length patched below.
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&libc::RTM_SETLINK.to_ne_bytes());
        msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
        msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
        // ifinfomsg
        msg.push(libc::AF_UNSPEC as u8);
        msg.push(0);
        msg.extend_from_slice(&0u16.to_ne_bytes());
        msg.extend_from_slice(&(self.ifindex as i32).to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        put_attr(&mut msg, IFLA_XDP | NLA_F_NESTED, &inner);
        let len = msg.len() as u32;
        msg[..4].copy_from_slice(&len.to_ne_bytes());
        netlink_request(self.nl.as_raw_fd(), &msg)
    }
}

impl Drop for XdpAttachment {
    fn drop(&mut self) {
        if let Err((e, detail)) = self.detach() {
            // The interface may be gone already, which detaches everything.
            if e.raw_os_error() != Some(libc::ENODEV) {
                tracing::warn!(
                    interface = %self.ifname,
                    error = %e,
                    detail = detail.as_deref().unwrap_or(""),
                    "XDP detach failed"
                );
            }
        }
    }
}

/// Appends a netlink attribute (header, payload, padding to 4 bytes).
fn put_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = (4 + payload.len()) as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn netlink_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    // Errors come back without our request echoed, with the kernel's
    // explanation attached (best effort: old kernels lack these).
    let _ = crate::port::netdev::packet_socket::setsockopt(
        raw,
        libc::SOL_NETLINK,
        libc::NETLINK_CAP_ACK,
        &1i32,
    );
    let _ = crate::port::netdev::packet_socket::setsockopt(
        raw,
        libc::SOL_NETLINK,
        libc::NETLINK_EXT_ACK,
        &1i32,
    );
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    crate::port::netdev::packet_socket::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
    Ok(fd)
}

/// Sends one request to the kernel and reads its acknowledgement.
fn netlink_request(fd: RawFd, msg: &[u8]) -> Result<(), (io::Error, Option<String>)> {
    // SAFETY: sockaddr_nl is plain old data; all-zero is valid (pid 0 is
    // the kernel).
    let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    to.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: `msg` and `to` are live buffers of the given sizes for the
    // whole call; sendto only reads them.
    let rc = unsafe {
        libc::sendto(
            fd,
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&raw const to).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err((io::Error::last_os_error(), None));
    }
    let mut buf = vec![0u8; 8192];
    loop {
        // SAFETY: `buf` is a live, exclusively borrowed buffer of
        // `buf.len()` bytes for the whole call.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err((e, None));
        }
        let n = n as usize;
        let mut off = 0;
        while off + 16 <= n {
            let u32_at =
                |o: usize| u32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
            let u16_at = |o: usize| u16::from_ne_bytes([buf[o], buf[o + 1]]);
            let len = u32_at(off) as usize;
            let ty = u16_at(off + 4);
            let flags = u16_at(off + 6);
            if len < 16 || off + len > n {
                break;
            }
            if ty == libc::NLMSG_ERROR as u16 && len >= 20 {
                let err = i32::from_ne_bytes([
                    buf[off + 16],
                    buf[off + 17],
                    buf[off + 18],
                    buf[off + 19],
                ]);
                if err == 0 {
                    return Ok(());
                }
                let mut detail = None;
                if flags & NLM_F_ACK_TLVS != 0 {
                    // nlmsgerr: error (4) + the request's header (16),
                    // then attributes.
                    let mut a = off + 36;
                    while a + 4 <= off + len {
                        let alen = usize::from(u16_at(a));
                        let aty = u16_at(a + 2) & 0x3fff;
                        if alen < 4 || a + alen > off + len {
                            break;
                        }
                        if aty == NLMSGERR_ATTR_MSG {
                            let s = &buf[a + 4..a + alen];
                            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                            detail = Some(String::from_utf8_lossy(&s[..end]).into_owned());
                        }
                        a += alen.div_ceil(4) * 4;
                    }
                }
                return Err((io::Error::from_raw_os_error(-err), detail));
            }
            off += len.div_ceil(4) * 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_encoding_matches_the_kernel_abi() {
        let p = program(7);
        assert_eq!(size_of::<Insn>(), 8);
        // r2 = *(u32 *)(r1 + 16): dst 2, src 1.
        assert_eq!((p[0].code, p[0].regs, p[0].off), (0x61, 0x12, 16));
        // ld_imm64 r1, map fd 7 with src = BPF_PSEUDO_MAP_FD.
        assert_eq!((p[1].code, p[1].regs, p[1].imm), (0x18, 0x11, 7));
        assert_eq!((p[3].code, p[3].regs, p[3].imm), (0xb7, 0x03, XDP_PASS));
        assert_eq!((p[4].code, p[4].imm), (0x85, 51));
        assert_eq!(p[5].code, 0x95);
    }

    #[test]
    fn attributes_are_padded() {
        let mut b = Vec::new();
        put_attr(&mut b, 1, &[1, 2, 3, 4, 5]);
        assert_eq!(b.len(), 12);
        assert_eq!(
            &b[..4],
            &[9u16.to_ne_bytes(), 1u16.to_ne_bytes()].concat()[..]
        );
    }
}
