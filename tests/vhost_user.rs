//! vhost-user ports end to end, with a fake QEMU: the `vhost` crate's
//! frontend over a real Unix socket, guest memory in a shared file, and a
//! tiny virtio-net driver that fills the rings the way a guest does.

use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dataplane::testing::{frame, guest, mac};
use dataplane::vhost::VhostUserPort;
use dataplane::{IdlePolicy, PmdConfig, PortId, Switch, SwitchSpec, VlanMode};
use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};
use vmm_sys_util::eventfd::EventFd;

const MEM_SIZE: usize = 4 << 20;
/// Where the fake QEMU pretends the guest memory is mapped.
const FRONTEND_VA: u64 = 0x7f00_0000_0000;
const QSIZE: u16 = 256;
const BUF: u64 = 2048;
const HDR: usize = 12;

const VERSION_1: u64 = 1 << 32;
const MRG_RXBUF: u64 = 1 << 15;
const EVENT_IDX: u64 = 1 << 29;
const PROTOCOL_FEATURES: u64 = 1 << 30;

/// Ring layout of vring `q` inside guest memory.
fn ring_at(q: usize) -> (u64, u64, u64) {
    let base = 0x1_0000 * q as u64;
    (base, base + 0x1000, base + 0x2000)
}

fn buf_at(q: usize, slot: u16) -> u64 {
    0x10_0000 + 0x10_0000 * q as u64 + BUF * u64::from(slot)
}

/// A fake guest plus its QEMU.
struct FakeGuest {
    fe: Frontend,
    mem: GuestMemoryMmap<()>,
    _file: std::fs::File,
    calls: [EventFd; 2],
    kicks: [EventFd; 2],
    /// Next avail index we publish on each ring.
    avail: [u16; 2],
    /// Next used index we consume on each ring.
    used: [u16; 2],
}

impl FakeGuest {
    fn connect(path: &Path) -> FakeGuest {
        let deadline = Instant::now() + Duration::from_secs(5);
        let fe = loop {
            match Frontend::connect(path, 2) {
                Ok(fe) => break fe,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("connect {}: {e}", path.display()),
            }
        };
        Self::with_frontend(fe)
    }

    fn with_frontend(mut fe: Frontend) -> FakeGuest {
        let file = tempfile::tempfile().expect("memory file");
        file.set_len(MEM_SIZE as u64).expect("size memory file");
        let region =
            MmapRegion::from_file(FileOffset::new(file.try_clone().expect("dup"), 0), MEM_SIZE)
                .expect("mmap guest memory");
        let region = GuestRegionMmap::new(region, GuestAddress(0)).expect("region");
        let mem = GuestMemoryMmap::from_regions(vec![region]).expect("guest memory");
        let ev = || EventFd::new(libc_nonblock()).expect("eventfd");
        let g = FakeGuest {
            calls: [ev(), ev()],
            kicks: [ev(), ev()],
            avail: [0, 0],
            used: [0, 0],
            _file: file,
            mem,
            fe: {
                fe.set_owner().expect("SET_OWNER");
                let offered = fe.get_features().expect("GET_FEATURES");
                let want = VERSION_1 | MRG_RXBUF | EVENT_IDX | PROTOCOL_FEATURES;
                assert_eq!(offered & want, want, "features offered: {offered:#x}");
                fe.set_features(want).expect("SET_FEATURES");
                let proto = fe.get_protocol_features().expect("GET_PROTOCOL_FEATURES");
                assert!(
                    proto.contains(
                        VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::CONFIG
                    )
                );
                fe.set_protocol_features(
                    proto & (VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::REPLY_ACK),
                )
                .expect("SET_PROTOCOL_FEATURES");
                assert_eq!(fe.get_queue_num().expect("GET_QUEUE_NUM"), 2);
                fe
            },
        };
        g.setup()
    }

    fn setup(mut self) -> FakeGuest {
        let info = VhostUserMemoryRegionInfo {
            guest_phys_addr: 0,
            memory_size: MEM_SIZE as u64,
            userspace_addr: FRONTEND_VA,
            mmap_offset: 0,
            mmap_handle: self._file.as_raw_fd(),
        };
        self.fe.set_mem_table(&[info]).expect("SET_MEM_TABLE");
        for q in 0..2 {
            let (d, a, u) = ring_at(q);
            self.fe.set_vring_num(q, QSIZE).expect("SET_VRING_NUM");
            let cfg = VringConfigData {
                queue_max_size: QSIZE,
                queue_size: QSIZE,
                flags: 0,
                desc_table_addr: FRONTEND_VA + d,
                used_ring_addr: FRONTEND_VA + u,
                avail_ring_addr: FRONTEND_VA + a,
                log_addr: None,
            };
            self.fe.set_vring_addr(q, &cfg).expect("SET_VRING_ADDR");
            self.fe.set_vring_base(q, 0).expect("SET_VRING_BASE");
            self.fe
                .set_vring_call(q, &self.calls[q])
                .expect("SET_VRING_CALL");
            self.fe
                .set_vring_kick(q, &self.kicks[q])
                .expect("SET_VRING_KICK");
            self.fe.set_vring_enable(q, true).expect("SET_VRING_ENABLE");
        }
        // Receive buffers: one 2 KiB buffer per descriptor.
        for slot in 0..QSIZE {
            self.desc(0, slot, buf_at(0, slot), BUF as u32, 2);
        }
        for slot in 0..QSIZE {
            self.offer(0, slot);
        }
        self.publish(0);
        self
    }

    fn desc(&self, q: usize, slot: u16, addr: u64, len: u32, flags: u16) {
        let (d, _, _) = ring_at(q);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        self.mem
            .write_slice(&b, GuestAddress(d + 16 * u64::from(slot)))
            .expect("descriptor");
    }

    fn offer(&mut self, q: usize, head: u16) {
        let (_, a, _) = ring_at(q);
        let slot = self.avail[q] % QSIZE;
        self.mem
            .write_obj(head, GuestAddress(a + 4 + 2 * u64::from(slot)))
            .expect("avail entry");
        self.avail[q] = self.avail[q].wrapping_add(1);
    }

    fn publish(&self, q: usize) {
        let (_, a, _) = ring_at(q);
        self.mem
            .store(self.avail[q], GuestAddress(a + 2), Ordering::Release)
            .expect("avail idx");
        // Always kick (the backend suppresses them; this is harmless).
        let _ = self.kicks[q].write(1);
    }

    fn used_idx(&self, q: usize) -> u16 {
        let (_, _, u) = ring_at(q);
        self.mem
            .load(GuestAddress(u + 2), Ordering::Acquire)
            .expect("used idx")
    }

    /// Sends frames on the TX ring (waits for free descriptors).
    fn send(&mut self, frames: &[Vec<u8>]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for f in frames {
            while self.avail[1].wrapping_sub(self.used_idx(1)) >= QSIZE {
                assert!(Instant::now() < deadline, "TX ring never drained");
                std::thread::yield_now();
            }
            let slot = self.avail[1] % QSIZE;
            let addr = buf_at(1, slot);
            let mut b = vec![0u8; HDR];
            b.extend_from_slice(f);
            self.mem
                .write_slice(&b, GuestAddress(addr))
                .expect("tx buffer");
            self.desc(1, slot, addr, b.len() as u32, 0);
            self.offer(1, slot);
            self.publish(1);
        }
    }

    /// Takes every received frame and gives its buffer back.
    fn recv(&mut self) -> Vec<Vec<u8>> {
        let (_, _, u) = ring_at(0);
        let end = self.used_idx(0);
        let mut out = Vec::new();
        while self.used[0] != end {
            let at = u + 4 + 8 * u64::from(self.used[0] % QSIZE);
            let id: u32 = self.mem.read_obj(GuestAddress(at)).expect("used id");
            let len: u32 = self.mem.read_obj(GuestAddress(at + 4)).expect("used len");
            let head = u16::try_from(id).expect("head fits");
            let mut b = vec![0u8; len as usize];
            self.mem
                .read_slice(&mut b, GuestAddress(buf_at(0, head)))
                .expect("rx buffer");
            assert!(b.len() >= HDR, "short used length {len}");
            assert_eq!(u16::from_le_bytes([b[10], b[11]]), 1, "num_buffers");
            out.push(b[HDR..].to_vec());
            self.used[0] = self.used[0].wrapping_add(1);
            self.offer(0, head);
        }
        if !out.is_empty() {
            self.publish(0);
        }
        out
    }

    fn recv_n(&mut self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            let more = self.recv();
            if more.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
            got.extend(more);
        }
        got
    }
}

fn libc_nonblock() -> i32 {
    // EFD_NONBLOCK == O_NONBLOCK on Linux.
    0o4000
}

fn switch(ports: u16, pmds: usize) -> Switch {
    let ports = (1..=ports).map(|i| guest(i, VlanMode::Access(1))).collect();
    let spec = SwitchSpec {
        ports,
        ..Default::default()
    };
    let cfg: Vec<PmdConfig> = (0..pmds)
        .map(|_| PmdConfig {
            idle: IdlePolicy::adaptive(),
            ..PmdConfig::default()
        })
        .collect();
    Switch::start(spec, &cfg).expect("switch starts")
}

fn attach(sw: &Switch, id: u16, path: &Path) -> VhostUserPort {
    let (port, queues) =
        VhostUserPort::server(&format!("vhu{id}"), path, sw.pmd_count()).expect("port");
    sw.attach_port(PortId(id), queues).expect("attach");
    port
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn frames(src: u64, dst: u64, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| frame(mac(dst), mac(src), &[], format!("frame {i:06}").as_bytes()))
        .collect()
}

#[test]
fn frames_cross_from_one_guest_to_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sw = switch(2, 2);
    let pa = attach(&sw, 1, &dir.path().join("a.sock"));
    let pb = attach(&sw, 2, &dir.path().join("b.sock"));
    let mut a = FakeGuest::connect(&dir.path().join("a.sock"));
    let mut b = FakeGuest::connect(&dir.path().join("b.sock"));
    wait_for("rings", || pa.rings_running() && pb.rings_running());

    // Both learn each other, then a burst well beyond the ring size.
    a.send(&frames(1, 2, 1));
    assert_eq!(b.recv_n(1, Duration::from_secs(5)).len(), 1);
    b.send(&frames(2, 1, 1));
    assert_eq!(a.recv_n(1, Duration::from_secs(5)).len(), 1);

    const N: usize = 2000;
    let sent = frames(1, 2, N);
    let mut got = Vec::new();
    for chunk in sent.chunks(100) {
        a.send(chunk);
        got.extend(b.recv_n(chunk.len(), Duration::from_secs(5)));
    }
    assert_eq!(
        got.len(),
        N,
        "counters: a {:?} b {:?}",
        pa.counters(),
        pb.counters()
    );
    assert_eq!(got, sent, "frames arrive intact and in order");
    assert_eq!(a.recv().len(), 0, "nothing flooded back");
    let cb = pb.counters();
    assert_eq!(cb.tx_ring_full + cb.tx_bad_chain + cb.rx_bad_chain, 0);
    assert!(cb.guest_notifies > 0, "the receiving guest was interrupted");
    assert_eq!(sw.port_stats(PortId(2)).tx_packets, N as u64 + 1);
    sw.shutdown();
}

#[test]
fn a_guest_reconnects_after_disconnect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sw = switch(2, 1);
    let pa = attach(&sw, 1, &dir.path().join("a.sock"));
    let pb = attach(&sw, 2, &dir.path().join("b.sock"));
    let mut b = FakeGuest::connect(&dir.path().join("b.sock"));
    for round in 0..3 {
        let mut a = FakeGuest::connect(&dir.path().join("a.sock"));
        wait_for("rings", || pa.rings_running() && pb.rings_running());
        a.send(&frames(1, 2, 50));
        assert_eq!(
            b.recv_n(50, Duration::from_secs(5)).len(),
            50,
            "round {round}"
        );
        // GET_VRING_BASE stops the ring and reports where the guest is.
        assert_eq!(a.fe.get_vring_base(1).expect("GET_VRING_BASE"), 50);
        drop(a);
        wait_for("disconnect", || !pa.connected());
        assert!(!pa.rings_running());
    }
    assert_eq!(pa.counters().connects, 3);
    sw.shutdown();
}

#[test]
fn a_malformed_message_resets_only_its_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sw = switch(3, 1);
    let pa = attach(&sw, 1, &dir.path().join("a.sock"));
    let pb = attach(&sw, 2, &dir.path().join("b.sock"));
    let pc = attach(&sw, 3, &dir.path().join("c.sock"));
    let mut a = FakeGuest::connect(&dir.path().join("a.sock"));
    let mut b = FakeGuest::connect(&dir.path().join("b.sock"));
    let c = FakeGuest::connect(&dir.path().join("c.sock"));
    wait_for("rings", || {
        pa.rings_running() && pb.rings_running() && pc.rings_running()
    });

    // A ring size that is not a power of two: refused, port C reset.
    let resets = pc.counters().resets;
    // (The frontend sees an error only if it asked for an ack.)
    let _ = c.fe.set_vring_num(0, 100);
    wait_for("reset of C", || {
        pc.counters().resets > resets && !pc.connected()
    });
    assert!(!pc.rings_running());
    drop(c);

    // Garbage on the wire: an unknown request code.
    let resets = pc.counters().resets;
    let mut raw = UnixStream::connect(dir.path().join("c.sock")).expect("connect raw");
    let mut hdr = [0u8; 12];
    hdr[..4].copy_from_slice(&9999u32.to_le_bytes());
    hdr[4..8].copy_from_slice(&1u32.to_le_bytes());
    std::io::Write::write_all(&mut raw, &hdr).expect("write garbage");
    wait_for("reset after garbage", || pc.counters().resets > resets);

    // A and B never noticed.
    a.send(&frames(1, 2, 20));
    assert_eq!(b.recv_n(20, Duration::from_secs(5)).len(), 20);
    assert_eq!(pa.counters().resets, 0);
    assert_eq!(pb.counters().resets, 0);

    // And C works again with a well-behaved frontend.
    drop(raw);
    let mut c = FakeGuest::connect(&dir.path().join("c.sock"));
    wait_for("C rings", || pc.rings_running());
    c.send(&frames(3, 1, 5));
    assert_eq!(a.recv_n(5, Duration::from_secs(5)).len(), 5);
    sw.shutdown();
}

#[test]
fn a_frontend_stalled_mid_message_is_reset_and_the_port_stops_promptly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sw = switch(1, 1);
    let p = attach(&sw, 1, &dir.path().join("a.sock"));
    // Half a header, then silence with the connection open.
    let mut raw = UnixStream::connect(dir.path().join("a.sock")).expect("connect");
    std::io::Write::write_all(&mut raw, &1u32.to_le_bytes()).expect("write");
    wait_for("connected", || p.connected());
    let t0 = Instant::now();
    wait_for("reset after the stall", || p.counters().resets > 0);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // A good frontend gets the port afterwards.
    drop(raw);
    let _g = FakeGuest::connect(&dir.path().join("a.sock"));
    wait_for("rings", || p.rings_running());
    // Stalled again, then the port is stopped: no hang in drop.
    let mut raw = UnixStream::connect(dir.path().join("a.sock")).expect("connect");
    std::io::Write::write_all(&mut raw, &[1u8, 0, 0]).expect("write");
    let t0 = Instant::now();
    drop(p);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t0.elapsed()
    );
    sw.shutdown();
}

#[test]
fn client_role_connects_and_reconnects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("qemu.sock");
    let mut sw = switch(2, 1);
    let (pa, queues) = VhostUserPort::client("vhu1", &path, 1).expect("client port");
    sw.attach_port(PortId(1), queues).expect("attach");
    let pb = attach(&sw, 2, &dir.path().join("b.sock"));
    let mut b = FakeGuest::connect(&dir.path().join("b.sock"));
    // QEMU starts after the switch: the port retries until it can connect.
    std::thread::sleep(Duration::from_millis(100));
    for round in 0..2 {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("QEMU listens");
        let (stream, _) = listener.accept().expect("switch connects");
        let mut a = FakeGuest::with_frontend(Frontend::from_stream(stream, 2));
        wait_for("rings", || pa.rings_running() && pb.rings_running());
        a.send(&frames(1, 2, 10));
        assert_eq!(
            b.recv_n(10, Duration::from_secs(5)).len(),
            10,
            "round {round}"
        );
        drop(a);
        drop(listener);
        wait_for("disconnect", || !pa.connected());
    }
    sw.shutdown();
}
