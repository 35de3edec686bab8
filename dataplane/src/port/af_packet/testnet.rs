//! Test helpers: a private network namespace per test, veth pairs, a raw
//! socket to play the peer, and test frames.
//!
//! [`in_netns`] runs the test body on a new thread that first moves itself
//! into a fresh, unnamed network namespace (`unshare(CLONE_NEWNET)`).
//! Processes it spawns (`ip`) inherit that namespace. When the thread ends
//! — normally or by a panic — its sockets close and the namespace, with
//! every interface made in it, disappears: nothing is left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::packet::{Packet, PacketPool};
use crate::port::Port;

/// Ethernet type of test frames (IEEE local experimental).
pub(crate) const TEST_ETHERTYPE: u16 = 0x88b5;

/// Runs `f` in a fresh network namespace on its own thread; re-raises its
/// panic.
pub(crate) fn in_netns<F: FnOnce() + Send + 'static>(f: F) {
    let h = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): these tests need root (CAP_SYS_ADMIN)");
        // No IPv6 autoconfiguration chatter (router/neighbour
        // solicitations, MLD) on the test links. Best effort: test code
        // counts only test frames anyway.
        for k in ["default", "all"] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{k}/disable_ipv6"), "1");
        }
        f();
    });
    if let Err(e) = h.join() {
        std::panic::resume_unwind(e);
    }
}

/// Runs `ip ARGS`, panicking with its stderr on failure.
pub(crate) fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A veth pair `a`/`b`, both up.
pub(crate) fn veth(a: &str, b: &str) {
    ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
    ip(&["link", "set", a, "up"]);
    ip(&["link", "set", b, "up"]);
}

/// A test frame of `len` bytes (at least 18) numbered `seq`.
pub(crate) fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(18)];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7).wrapping_add(seq as u8);
    }
    f
}

/// `frame` with an outer tag (`tpid`, `tci`) after the MAC addresses.
pub(crate) fn tagged(f: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(f.len() + 4);
    t.extend_from_slice(&f[..12]);
    t.extend_from_slice(&tpid.to_be_bytes());
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

/// True for frames made by [`frame`], tagged or not (other traffic on a
/// test link is ignored).
pub(crate) fn is_test_frame(f: &[u8]) -> bool {
    let et = |o: usize| f.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match et(12) {
        Some(TEST_ETHERTYPE) => true,
        Some(0x8100 | 0x88a8) => et(16) == Some(TEST_ETHERTYPE),
        _ => false,
    }
}

/// Receives from `port` until `want` test frames arrived or `timeout`
/// passed, then keeps polling `linger` longer to catch extra frames.
/// Returns the test frames' bytes in arrival order.
pub(crate) fn collect(
    port: &mut dyn Port,
    pool: &mut PacketPool,
    want: usize,
    timeout: Duration,
    linger: Duration,
) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut burst: Vec<Packet> = Vec::new();
    let start = Instant::now();
    let mut done_at: Option<Instant> = None;
    loop {
        let n = port.rx_burst(pool, &mut burst, 32);
        for p in burst.drain(..) {
            if is_test_frame(p.data()) {
                got.push(p.data().to_vec());
            }
            pool.free(p);
        }
        let now = Instant::now();
        if got.len() >= want && done_at.is_none() {
            done_at = Some(now);
        }
        match done_at {
            Some(t) if now.duration_since(t) >= linger => break,
            None if now.duration_since(start) >= timeout => break,
            _ => {}
        }
        if n == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    got
}

/// Waits until frames from `peer` reach `port` again after a link came
/// back: the peer's queueing discipline is reactivated asynchronously
/// (link watch), and until then its sends vanish. Probes carry another
/// Ethernet type than test frames, so they never count as such.
pub(crate) fn wait_peer_to_port(
    peer: &RawSock,
    port: &mut dyn Port,
    pool: &mut PacketPool,
) -> bool {
    let mut probe = frame(0, 64);
    probe[12..14].copy_from_slice(&(TEST_ETHERTYPE + 1).to_be_bytes());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut burst = Vec::new();
    while Instant::now() < deadline {
        let _ = peer.send(&probe);
        let until = Instant::now() + Duration::from_millis(20);
        while Instant::now() < until {
            port.rx_burst(pool, &mut burst, 32);
            let seen = burst
                .iter()
                .any(|p| p.data().get(12..14) == probe.get(12..14));
            pool.free_all(&mut burst);
            if seen {
                return true;
            }
        }
    }
    false
}

/// Packets holding copies of `frames`, from `pool`'s buffer size.
pub(crate) fn packets(pool: &mut PacketPool, frames: &[Vec<u8>]) -> Vec<Packet> {
    frames
        .iter()
        .map(|f| {
            let mut p = pool.alloc_or_new();
            assert!(p.set_frame(f), "test frame larger than the pool buffer");
            p
        })
        .collect()
}

/// Compares frame lists, reporting the first difference briefly.
#[track_caller]
pub(crate) fn assert_frames(got: &[Vec<u8>], want: &[Vec<u8>]) {
    let short = |f: &[u8]| format!("{} bytes {:02x?}", f.len(), &f[..f.len().min(20)]);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "frame {i} differs: got {}, want {}",
            short(g),
            short(w)
        );
    }
    assert_eq!(got.len(), want.len(), "frame count");
}

/// A raw AF_PACKET socket on an interface: the peer in tests. It puts
/// back the VLAN tag the kernel strips (PACKET_AUXDATA).
#[derive(Debug)]
pub(crate) struct RawSock {
    fd: OwnedFd,
}

impl RawSock {
    /// Bound to `ifname`, receiving every protocol, non-blocking.
    pub(crate) fn open(ifname: &str) -> RawSock {
        // SAFETY: plain socket(2) call.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from((libc::ETH_P_ALL as u16).to_be()),
            )
        };
        assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
        // SAFETY: fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let idx = nix::net::if_::if_nametoindex(ifname).unwrap();
        // SAFETY: plain old data, all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = idx as i32;
        // SAFETY: valid sockaddr_ll of the given size, alive for the call.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "bind: {}", io::Error::last_os_error());
        let big = 16i32 << 20;
        // SAFETY: `big` is a valid int for the call.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const big).cast(),
                size_of::<i32>() as u32,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", io::Error::last_os_error());
        let one = 1i32;
        // SAFETY: `one` is a valid int for the call.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                (&raw const one).cast(),
                size_of::<i32>() as u32,
            )
        };
        assert_eq!(rc, 0, "PACKET_AUXDATA: {}", io::Error::last_os_error());
        RawSock { fd }
    }

    /// Sends one frame; returns the kernel's error if it refused.
    pub(crate) fn send(&self, f: &[u8]) -> io::Result<()> {
        // SAFETY: `f` is a valid buffer of `f.len()` bytes for the call.
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Sends frames, retrying briefly when the socket buffer is full.
    pub(crate) fn send_all(&self, frames: &[Vec<u8>]) {
        for f in frames {
            let mut tries = 0;
            loop {
                match self.send(f) {
                    Ok(()) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && tries < 1000 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    Err(e) => panic!("raw send: {e}"),
                }
            }
        }
    }

    /// Receives incoming test frames (not our own outgoing ones) until
    /// `want` arrived or `timeout`, then lingers for extras.
    pub(crate) fn collect(&self, want: usize, timeout: Duration, linger: Duration) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        let start = Instant::now();
        let mut done_at: Option<Instant> = None;
        loop {
            let (rc, f) = self.recv_one(&mut buf);
            if let Some(f) = f
                && is_test_frame(&f)
            {
                got.push(f);
            }
            let now = Instant::now();
            if got.len() >= want && done_at.is_none() {
                done_at = Some(now);
            }
            match done_at {
                Some(t) if now.duration_since(t) >= linger => break,
                None if now.duration_since(start) >= timeout => break,
                _ => {}
            }
            if rc < 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        got
    }

    /// One non-blocking receive: the syscall result and, for an incoming
    /// frame, its bytes with the stripped tag put back.
    fn recv_one(&self, buf: &mut [u8]) -> (isize, Option<Vec<u8>>) {
        // SAFETY: plain old data, all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        let mut cbuf = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: plain old data, all-zero is valid.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&raw mut sll).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>();
        // SAFETY: every pointer in `msg` refers to a live local buffer of
        // the stated size for the whole call.
        let rc = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
        if rc < 0 || sll.sll_pkttype == libc::PACKET_OUTGOING {
            return (rc, None);
        }
        let mut f = buf[..rc as usize].to_vec();
        // SAFETY: `msg` was filled by recvmsg; CMSG_* walk its control
        // buffer within the length the kernel wrote.
        let mut c = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
        while !c.is_null() {
            // SAFETY: non-null results of CMSG_FIRSTHDR/NXTHDR point to a
            // whole cmsghdr inside `cbuf`.
            let h = unsafe { std::ptr::read_unaligned(c) };
            if h.cmsg_level == libc::SOL_PACKET && h.cmsg_type == libc::PACKET_AUXDATA {
                // SAFETY: `c` is a valid cmsghdr; CMSG_DATA only computes
                // the address after it.
                let data = unsafe { libc::CMSG_DATA(c) };
                // SAFETY: a PACKET_AUXDATA message carries a whole
                // tpacket_auxdata inside `cbuf`.
                let aux = unsafe { std::ptr::read_unaligned(data.cast::<libc::tpacket_auxdata>()) };
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 && f.len() >= 12 {
                    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    f = tagged(&f, tpid, aux.tp_vlan_tci);
                }
            }
            // SAFETY: `c` is a valid cmsghdr of `msg`.
            c = unsafe { libc::CMSG_NXTHDR(&raw const msg, c) };
        }
        (rc, Some(f))
    }
}
