//! Entry points for the fuzzers (`fuzz/`) and for the tests that replay
//! their corpora: a guest or frontend that controls every byte it can
//! reach. Each function panics only when an invariant of the switch breaks
//! (never on bad input: bad input must be counted and survived).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use vhost::vhost_user::BackendReqHandler;
use vm_memory::{Bytes, GuestAddress};

use super::backend::PortCtl;
use super::conn::{early_vring_enable, whole_message};
use super::guest_mem::{GuestMem, Mem};
use super::handover::{ActiveRing, Shared, lock};
use super::net_hdr::{self, NetHdr};
use super::port::VhostQueue;
use super::split_ring::{RingAddrs, SplitRing};
use crate::packet::{Packet, PacketPool};
use crate::port::Port;

/// Guest memory of the ring fuzzer: rings at fixed places, the rest is
/// buffers; descriptors may point anywhere in the 64-bit space.
const MEM_SIZE: usize = 0x1_0000;
const DESC: u64 = 0;
const AVAIL: u64 = 0x1000;
const USED: u64 = 0x2000;

/// Parameters of one ring-fuzzing run, from the input's first 8 bytes.
struct RingCase {
    size: u16,
    base: u16,
    mrg_rxbuf: bool,
    event_idx: bool,
    /// Receive with `rx_burst_lending` (frame tails left in guest memory).
    lend: bool,
    frame_lens: [u16; 3],
}

impl RingCase {
    fn parse(data: &[u8]) -> Option<(RingCase, &[u8])> {
        let (p, image) = data.split_first_chunk::<8>()?;
        let frame_len = |b: u8| 14 + u16::from(b) * 12;
        Some((
            RingCase {
                size: 1 << (p[0] % 9), // 1..=256
                base: u16::from_le_bytes([p[1], p[2]]),
                mrg_rxbuf: p[3] & 1 != 0,
                event_idx: p[3] & 2 != 0,
                lend: p[3] & 4 != 0,
                frame_lens: [frame_len(p[4]), frame_len(p[5]), frame_len(p[6])],
            },
            image,
        ))
    }
}

fn memory(image: &[u8]) -> Arc<GuestMem> {
    let m = Mem::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).expect("anonymous memory");
    let mem = GuestMem::from_mmap(m, Vec::new());
    let n = image.len().min(MEM_SIZE);
    mem.write(GuestAddress(0), &image[..n])
        .expect("image fits the memory");
    Arc::new(mem)
}

fn queue(
    mem: &Arc<GuestMem>,
    case: &RingCase,
    guest_rx: bool,
) -> Option<(VhostQueue, Arc<Shared>)> {
    let addrs = RingAddrs {
        size: case.size,
        desc: GuestAddress(DESC),
        avail: GuestAddress(AVAIL),
        used: GuestAddress(USED),
    };
    let ring = SplitRing::new(mem, addrs, case.base, case.event_idx).ok()?;
    let shared = Arc::new(Shared::single().expect("eventfd and epoll"));
    let active = ActiveRing {
        ring,
        mem: mem.clone(),
        call: None,
        kick: None,
        hdr: NetHdr {
            len: net_hdr::LEN,
            mrg_rxbuf: case.mrg_rxbuf,
        },
        broken: false,
    };
    let pair = &shared.pairs[0];
    *lock(if guest_rx { &pair.tx } else { &pair.rx }) = Some(active);
    Some((VhostQueue::new(shared.clone(), 0), shared))
}

/// Checks that every chain the switch took from the avail ring went back
/// to the used ring and that `used.idx` in guest memory says so (the
/// image may hold any used index until the switch publishes one).
fn check_returned(
    mem: &GuestMem,
    slot: &Mutex<Option<ActiveRing>>,
    case: &RingCase,
    avail_before: &[u8],
    what: &str,
) {
    let g = lock(slot);
    let Some(r) = g.as_ref() else { return };
    if r.broken {
        return;
    }
    assert_eq!(
        r.ring.next_used(),
        r.ring.next_avail(),
        "{what}: every popped chain returned"
    );
    let base = case.base;
    if r.ring.next_used() != base {
        let used: u16 = mem
            .mem()
            .read_obj(GuestAddress(USED + 2))
            .expect("used ring in memory");
        assert_eq!(used, r.ring.next_used(), "{what}: used.idx published");
    }
    // VIRTIO_F_IN_ORDER (offered): chains go back in the order they were
    // made available. Checked unless a frame the switch wrote landed on
    // the avail ring itself (then the order it read is not the image's).
    if avail_ring(mem, case.size) == avail_before {
        let n = r.ring.next_used().wrapping_sub(base);
        for i in 0..n {
            let slot = u64::from(base.wrapping_add(i) % case.size);
            let offered = u16::from_le_bytes([
                avail_before[4 + 2 * slot as usize],
                avail_before[5 + 2 * slot as usize],
            ]);
            let id: u32 = mem
                .mem()
                .read_obj(GuestAddress(USED + 4 + 8 * slot))
                .expect("used ring in memory");
            assert_eq!(
                id,
                u32::from(offered),
                "{what}: used entry {i} out of order"
            );
        }
    }
}

/// The avail ring's bytes (flags, idx, entries) as they are in `mem`.
fn avail_ring(mem: &GuestMem, size: u16) -> Vec<u8> {
    let mut b = vec![0u8; 4 + 2 * usize::from(size)];
    mem.read(GuestAddress(AVAIL), &mut b)
        .expect("avail ring in memory");
    b
}

/// Runs the switch's receive path (the guest's TX ring) and its transmit
/// path (the guest's RX ring, mergeable or not) over guest memory and
/// rings taken from `data`. Invariant: every chain the switch took from
/// the avail ring is back in the used ring (with `used.idx` published),
/// whatever the chain looked like, unless the ring was marked broken.
pub fn rings(data: &[u8]) {
    let Some((case, image)) = RingCase::parse(data) else {
        return;
    };
    let mut pool = PacketPool::new(64, 2048);

    // Guest TX -> switch.
    let mem = memory(image);
    let avail_before = avail_ring(&mem, case.size);
    if let Some((mut q, shared)) = queue(&mem, &case, false) {
        let mut out = Vec::new();
        for _ in 0..3 {
            let before = out.len();
            let n = if case.lend {
                q.rx_burst_lending(&mut pool, &mut out, 32)
            } else {
                q.rx_burst(&mut pool, &mut out, 32)
            };
            assert_eq!(out.len() - before, n, "rx_burst counts what it returns");
            if case.lend {
                // What a non-vhost port would get: the whole frame.
                for p in &mut out[before..] {
                    let len = p.len();
                    p.materialize();
                    assert_eq!(p.data().len(), len, "materialized frame is whole");
                }
                q.rx_complete();
            }
        }
        for p in &out {
            assert!(
                p.len() >= 14 && p.len() <= 2048 - 64,
                "frame length {}",
                p.len()
            );
        }
        check_returned(
            &mem,
            &shared.pairs[0].rx,
            &case,
            &avail_before,
            "guest TX ring",
        );
        out.clear();
    }

    // Switch -> guest RX.
    let mem = memory(image);
    if let Some((mut q, shared)) = queue(&mem, &case, true) {
        let mut pkts: Vec<Packet> = case
            .frame_lens
            .iter()
            .map(|&l| Packet::from_frame(&vec![0x5a; usize::from(l)]))
            .collect();
        let given = pkts.len();
        let out = q.tx_burst(&mut pkts, &mut pool);
        assert_eq!(out.sent + out.dropped, given, "every frame sent or dropped");
        check_returned(
            &mem,
            &shared.pairs[0].tx,
            &case,
            &avail_before,
            "guest RX ring",
        );
    }
}

/// Largest memory file the message fuzzer hands out.
const FUZZ_FILE_MAX: u64 = 4 << 20;
/// Most fds one message-fuzzer input may carry in all.
const FUZZ_FDS_MAX: usize = 64;

/// The files a frontend would attach to the message `m` (header + as much
/// of the body as there is): a memfd per SET_MEM_TABLE region, as long as
/// the region and its offset ask for (a 4 KiB one when they ask for more
/// than 4 MiB, which the switch must refuse), and an eventfd for
/// SET_VRING_KICK/CALL/ERR without the no-fd flag. None when no memfd or
/// eventfd can be made.
fn fds_for(m: &[u8]) -> Option<Vec<std::os::fd::OwnedFd>> {
    use nix::sys::eventfd::{EfdFlags, EventFd};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    let word = |i: usize| -> Option<u64> {
        let b = m.get(i..i + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    let request = u32::from_le_bytes(m.get(0..4)?.try_into().ok()?);
    let mut fds = Vec::new();
    match request {
        // SET_MEM_TABLE: u32 count, u32 padding, then 32-byte regions
        // (guest address, size, user address, mmap offset).
        5 => {
            let n = u32::from_le_bytes(m.get(12..16)?.try_into().ok()?) as usize;
            for i in 0..n.min(8) {
                let at = 20 + 32 * i;
                let (Some(size), Some(offset)) = (word(at + 8), word(at + 24)) else {
                    break;
                };
                let want = size.saturating_add(offset);
                let len = if want <= FUZZ_FILE_MAX { want } else { 4096 };
                let fd = memfd_create(c"fuzz-guest", MFdFlags::MFD_CLOEXEC).ok()?;
                std::fs::File::from(fd.try_clone().ok()?)
                    .set_len(len)
                    .ok()?;
                fds.push(fd);
            }
        }
        // SET_VRING_KICK, CALL, ERR: u64 index, bit 8 = no fd.
        12..=14 if word(12).is_some_and(|v| v & 0x100 == 0) => {
            let e = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).ok()?;
            fds.push(e.into());
        }
        _ => {}
    }
    Some(fds)
}

/// Writes the frontend's byte stream message by message (by the sizes the
/// headers announce), with the files [`fds_for`] makes attached to each
/// message as SCM_RIGHTS. False if the socket refused it.
fn send_stream(theirs: &mut UnixStream, data: &[u8]) -> bool {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    use std::os::fd::AsRawFd;
    let mut rest = data;
    let mut budget = FUZZ_FDS_MAX;
    while !rest.is_empty() {
        let size = rest
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize);
        let end = 12usize.saturating_add(size).min(rest.len());
        let (m, tail) = rest.split_at(end);
        rest = tail;
        let fds = fds_for(m).unwrap_or_default();
        let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).take(budget).collect();
        budget -= raw.len();
        let iov = [std::io::IoSlice::new(m)];
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
        match sendmsg::<()>(theirs.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None) {
            Ok(n) if n == m.len() => {}
            Ok(n) => {
                if theirs.write_all(&m[n..]).is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
        // Our copies of the fds close here; the ones in flight stay open.
    }
    true
}

/// Feeds `data` as the byte stream of a frontend to a port's protocol
/// handler (the same loop as a connected port: the early
/// SET_VRING_ENABLE filter, then the `vhost` crate's handler) until it
/// errors or the stream ends. The files a frontend attaches are made up
/// from the messages themselves ([`fds_for`]): real memfds for memory
/// tables (so rings start on real mappings), eventfds for kicks.
/// Invariant: no panic, and a reset leaves a port that starts clean.
pub fn messages(data: &[u8]) {
    let Some((shared, ctl)) = feed(data) else {
        return;
    };
    let mut c = ctl
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    c.reset();
    assert!(
        shared
            .pairs
            .iter()
            .all(|p| lock(&p.rx).is_none() && lock(&p.tx).is_none()),
        "reset stops every ring"
    );
}

/// The request loop of [`messages`], without the final reset.
fn feed(data: &[u8]) -> Option<(Arc<Shared>, Arc<Mutex<PortCtl>>)> {
    let data = &data[..data.len().min(32 * 1024)];
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    // The whole input fits the socket buffer; closing our end of the
    // frontend side makes the handler see end-of-stream afterwards.
    if !send_stream(&mut theirs, data) {
        return None;
    }
    drop(theirs);
    // Two queue pairs over two PMDs: vrings 0-3 are valid, 4 and up not.
    let shared = Arc::new(Shared::new(2, 2, 0).expect("eventfd and epoll"));
    let ctl = Arc::new(Mutex::new(PortCtl::new(shared.clone())));
    let mut side = ours.try_clone().expect("dup");
    let mut handler = BackendReqHandler::from_stream(ours, ctl.clone());
    for _ in 0..4096 {
        match whole_message(&side) {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
        match early_vring_enable(&ctl, &mut side) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(_) => break,
        }
        if handler.handle_request().is_err() {
            break;
        }
    }
    Some((shared, ctl))
}

/// Replays a fuzz target's committed corpus (`fuzz/corpus/NAME`), then
/// deterministic byte-flip mutations of each input, through `f`. Keeps
/// the fuzzers' findings as regression tests in the normal test run.
#[cfg(any(test, feature = "test-utils"))]
pub fn replay_corpus(name: &str, mutations: usize, f: impl Fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(name);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{} is empty", dir.display());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut runs = 0;
    for input in &inputs {
        f(input);
        runs += 1;
        for _ in 0..mutations {
            let mut m = input.clone();
            if m.is_empty() {
                continue;
            }
            for _ in 0..1 + next() % 4 {
                let i = (next() % m.len() as u64) as usize;
                m[i] = next() as u8;
            }
            f(&m);
            runs += 1;
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_corpus_and_mutations_keep_the_invariants() {
        // The interesting bytes are the first few KiB (params, descriptors,
        // avail ring); mutations land anywhere, so run enough of them.
        assert!(replay_corpus("vhost_rings", 300, rings) > 6);
    }

    #[test]
    fn message_corpus_and_mutations_keep_the_invariants() {
        assert!(replay_corpus("vhost_messages", 300, messages) > 4);
    }

    /// The message fuzzer attaches real files: a memory table maps, and
    /// both rings start on it; a region past its file's end is refused.
    #[test]
    fn message_fuzzer_attaches_memory_and_kicks() {
        let msg = |req: u32, body: &[u8]| {
            let mut m = req.to_le_bytes().to_vec();
            m.extend_from_slice(&1u32.to_le_bytes());
            m.extend_from_slice(&(body.len() as u32).to_le_bytes());
            m.extend_from_slice(body);
            m
        };
        let words = |w: &[u64]| -> Vec<u8> { w.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let va = 0x7f00_0000_0000u64;
        let table = |size: u64| {
            let mut b = vec![1, 0, 0, 0, 0, 0, 0, 0];
            b.extend(words(&[0, size, va, 0]));
            b
        };
        let state = |q: u32, n: u32| [q.to_le_bytes(), n.to_le_bytes()].concat();
        let start = |size: u64| {
            let mut s = msg(3, &[]);
            s.extend(msg(2, &words(&[1 << 32])));
            s.extend(msg(5, &table(size)));
            for q in 0..2u32 {
                let base = va + 0x4000 * u64::from(q);
                let mut addr = [q.to_le_bytes(), 0u32.to_le_bytes()].concat();
                addr.extend(words(&[base, base + 0x2000, base + 0x1000, 0]));
                s.extend(msg(8, &state(q, 256)));
                s.extend(msg(9, &addr));
                s.extend(msg(10, &state(q, 0)));
                s.extend(msg(12, &words(&[u64::from(q)])));
            }
            s
        };
        let (shared, _ctl) = feed(&start(0x1_0000)).expect("fed");
        let p = &shared.pairs[0];
        assert!(lock(&p.rx).is_some() && lock(&p.tx).is_some());
        let (shared, _ctl) = feed(&start(64 << 20)).expect("fed");
        let p = &shared.pairs[0];
        assert!(lock(&p.rx).is_none() && lock(&p.tx).is_none());
    }

    #[test]
    fn frame_corpus_and_mutations_keep_the_invariants() {
        assert!(replay_corpus("frames", 500, crate::testing::fuzz_frames) > 4);
    }
}
