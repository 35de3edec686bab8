//! Unit tests of malformed chains, and a property test of [`SplitRing`]
//! against `virtio-queue`'s `Queue` on the same guest memory.

use proptest::prelude::*;
use virtio_queue::mock::MockSplitQueue;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::vhost::guest_mem::{GuestMem, Mem};

const MEM_SIZE: usize = 0x20_0000;
const INDIRECT_AT: u64 = 0x4_0000;
const BUF_AT: u64 = 0x10_0000;

fn guest_mem() -> GuestMem {
    let m = Mem::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).expect("anonymous memory");
    GuestMem::from_mmap(m, Vec::new())
}

fn put_desc(mem: &GuestMem, table: u64, idx: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[12..14].copy_from_slice(&flags.to_le_bytes());
    d[14..].copy_from_slice(&next.to_le_bytes());
    mem.write(GuestAddress(table + 16 * u64::from(idx)), &d)
        .expect("descriptor in memory");
}

/// A ring of `size` at 0 laid out like `MockSplitQueue` does.
fn ring_addrs(size: u16) -> RingAddrs {
    let desc = 0u64;
    let avail = 16 * u64::from(size);
    let used = (avail + 6 + 2 * u64::from(size) + 3) & !3;
    RingAddrs {
        size,
        desc: GuestAddress(desc),
        avail: GuestAddress(avail),
        used: GuestAddress(used),
    }
}

fn offer(mem: &GuestMem, a: &RingAddrs, heads: &[u16], base: u16) {
    for (i, &h) in heads.iter().enumerate() {
        let slot = (base.wrapping_add(i as u16)) & (a.size - 1);
        mem.write(
            GuestAddress(a.avail.0 + 4 + 2 * u64::from(slot)),
            &h.to_le_bytes(),
        )
        .expect("avail slot");
    }
    let idx = base.wrapping_add(heads.len() as u16);
    mem.write(GuestAddress(a.avail.0 + 2), &idx.to_le_bytes())
        .expect("avail idx");
}

fn walk_one(mem: &GuestMem, a: RingAddrs, head: u16) -> Result<u32, ChainError> {
    let ring = SplitRing::new(mem, a, 0, false).expect("valid ring");
    let mut segs = Vec::new();
    ring.walk(mem, head, &mut segs)
}

#[test]
fn rejects_bad_geometry() {
    let mem = guest_mem();
    let mut a = ring_addrs(8);
    a.size = 6;
    assert!(matches!(
        SplitRing::new(&mem, a, 0, false),
        Err(RingError::Size(6))
    ));
    let mut a = ring_addrs(8);
    a.desc = GuestAddress(8);
    assert!(matches!(
        SplitRing::new(&mem, a, 0, false),
        Err(RingError::Align(8))
    ));
    let mut a = ring_addrs(8);
    a.used = GuestAddress(MEM_SIZE as u64 - 8);
    assert!(matches!(
        SplitRing::new(&mem, a, 0, false),
        Err(RingError::Area(_))
    ));
}

#[test]
fn malformed_chains_are_errors_not_panics() {
    let mem = guest_mem();
    let a = ring_addrs(8);
    // Out-of-range address.
    put_desc(&mem, 0, 0, MEM_SIZE as u64 - 10, 100, 0, 0);
    assert_eq!(walk_one(&mem, a, 0), Err(ChainError::OutOfRange));
    // Address overflow.
    put_desc(&mem, 0, 0, u64::MAX - 4, 100, 0, 0);
    assert_eq!(walk_one(&mem, a, 0), Err(ChainError::OutOfRange));
    // Zero length.
    put_desc(&mem, 0, 0, BUF_AT, 0, 0, 0);
    assert_eq!(walk_one(&mem, a, 0), Err(ChainError::ZeroLen));
    // Huge length.
    put_desc(&mem, 0, 0, BUF_AT, u32::MAX, 0, 0);
    assert_eq!(walk_one(&mem, a, 0), Err(ChainError::TooLong));
    // Next index out of range.
    put_desc(&mem, 0, 0, BUF_AT, 10, VRING_DESC_F_NEXT, 8);
    assert_eq!(walk_one(&mem, a, 0), Err(ChainError::BadIndex));
    // A loop: 0 -> 1 -> 0.
    put_desc(&mem, 0, 0, BUF_AT, 10, VRING_DESC_F_NEXT, 1);
    put_desc(&mem, 0, 1, BUF_AT, 10, VRING_DESC_F_NEXT, 0);
    assert_eq!(walk_one(&mem, a, 0), Err(ChainError::Loop));
    // A self-loop.
    put_desc(&mem, 0, 3, BUF_AT, 10, VRING_DESC_F_NEXT, 3);
    assert_eq!(walk_one(&mem, a, 3), Err(ChainError::Loop));
}

#[test]
fn malformed_indirect_tables_are_errors() {
    let mem = guest_mem();
    let a = ring_addrs(8);
    // Indirect inside indirect.
    put_desc(&mem, 0, 0, INDIRECT_AT, 32, VRING_DESC_F_INDIRECT, 0);
    put_desc(&mem, INDIRECT_AT, 0, BUF_AT, 10, VRING_DESC_F_NEXT, 1);
    put_desc(
        &mem,
        INDIRECT_AT,
        1,
        INDIRECT_AT + 0x100,
        16,
        VRING_DESC_F_INDIRECT,
        0,
    );
    assert_eq!(walk_one(&mem, a, 0), Err(ChainError::NestedIndirect));
    // Table length not a multiple of 16, zero, or too large.
    for len in [24, 0, 16 * (MAX_INDIRECT + 1)] {
        put_desc(&mem, 0, 0, INDIRECT_AT, len, VRING_DESC_F_INDIRECT, 0);
        assert_eq!(
            walk_one(&mem, a, 0),
            Err(ChainError::BadIndirect),
            "len {len}"
        );
    }
    // Table outside memory.
    put_desc(
        &mem,
        0,
        0,
        MEM_SIZE as u64 - 16,
        32,
        VRING_DESC_F_INDIRECT,
        0,
    );
    assert_eq!(walk_one(&mem, a, 0), Err(ChainError::BadIndirect));
    // A loop inside the indirect table ends by its own TTL.
    put_desc(&mem, 0, 0, INDIRECT_AT, 32, VRING_DESC_F_INDIRECT, 0);
    put_desc(&mem, INDIRECT_AT, 0, BUF_AT, 10, VRING_DESC_F_NEXT, 1);
    put_desc(&mem, INDIRECT_AT, 1, BUF_AT, 10, VRING_DESC_F_NEXT, 0);
    assert_eq!(walk_one(&mem, a, 0), Err(ChainError::Loop));
    // And a good one walks.
    put_desc(&mem, INDIRECT_AT, 1, BUF_AT + 64, 20, VRING_DESC_F_WRITE, 0);
    assert_eq!(walk_one(&mem, a, 0), Ok(30));
}

#[test]
fn avail_index_too_far_ahead_breaks_the_ring() {
    let mem = guest_mem();
    let a = ring_addrs(8);
    let mut ring = SplitRing::new(&mem, a, 0, false).expect("valid ring");
    mem.write(GuestAddress(a.avail.0 + 2), &9u16.to_le_bytes())
        .expect("avail idx");
    assert!(matches!(
        ring.begin_burst(&mem),
        Err(RingError::AvailIdx { ahead: 9, .. })
    ));
    // A head index outside the table.
    offer(&mem, &a, &[8], 0);
    assert_eq!(ring.begin_burst(&mem).ok(), Some(1));
    assert!(matches!(ring.pop_head(&mem), Err(RingError::BadHead(8))));
}

#[test]
fn publishes_once_and_wraps() {
    let mem = guest_mem();
    let a = ring_addrs(4);
    let base = u16::MAX - 1;
    let mut ring = SplitRing::new(&mem, a, base, false).expect("valid ring");
    for i in 0..4u16 {
        put_desc(&mem, 0, i, BUF_AT, 10, 0, 0);
    }
    offer(&mem, &a, &[0, 1, 2, 3], base);
    assert_eq!(ring.begin_burst(&mem).ok(), Some(4));
    let mut heads = Vec::new();
    while let Ok(Some(h)) = ring.pop_head(&mem) {
        heads.push(h);
        ring.stage_used(h, u32::from(h) * 100);
    }
    assert_eq!(heads, [0, 1, 2, 3]);
    assert!(
        ring.publish(&mem).expect("publish"),
        "no NO_INTERRUPT: notify"
    );
    let idx: u16 = mem
        .mem()
        .read_obj(GuestAddress(a.used.0 + 2))
        .expect("used idx");
    assert_eq!(idx, base.wrapping_add(4));
    // Slot of the first element is base % 4 == 2; then 3, 0, 1.
    let elem = |slot: u64| -> (u32, u32) {
        let at = a.used.0 + 4 + 8 * slot;
        let id: u32 = mem.mem().read_obj(GuestAddress(at)).expect("id");
        let len: u32 = mem.mem().read_obj(GuestAddress(at + 4)).expect("len");
        (id, len)
    };
    assert_eq!(elem(2), (0, 0));
    assert_eq!(elem(3), (1, 100));
    assert_eq!(elem(0), (2, 200));
    assert_eq!(elem(1), (3, 300));
    assert_eq!(ring.next_avail(), base.wrapping_add(4));
}

#[test]
fn kick_notify_closes_the_race() {
    let mem = guest_mem();
    let a = ring_addrs(8);
    let mut ring = SplitRing::new(&mem, a, 0, false).expect("valid ring");
    assert!(!ring.set_kick_notify(&mem, true).expect("arm"));
    let flags: u16 = mem.mem().read_obj(a.used).expect("flags");
    assert_eq!(flags, 0);
    put_desc(&mem, 0, 0, BUF_AT, 10, 0, 0);
    offer(&mem, &a, &[0], 0);
    assert!(
        ring.set_kick_notify(&mem, true).expect("arm"),
        "work is pending"
    );
    ring.set_kick_notify(&mem, false).expect("disarm");
    let flags: u16 = mem.mem().read_obj(a.used).expect("flags");
    assert_eq!(flags, VRING_USED_F_NO_NOTIFY);
    // EVENT_IDX: arming writes avail_event = next_avail.
    let mut ring = SplitRing::new(&mem, a, 0, true).expect("valid ring");
    assert_eq!(ring.begin_burst(&mem).ok(), Some(1));
    assert_eq!(ring.pop_head(&mem).ok(), Some(Some(0)));
    assert!(!ring.set_kick_notify(&mem, true).expect("arm"));
    let ev: u16 = mem
        .mem()
        .read_obj(GuestAddress(a.used.0 + 4 + 8 * 8))
        .expect("avail_event");
    assert_eq!(ev, 1);
}

#[derive(Clone, Debug)]
struct ChainSpec {
    bufs: Vec<(u32, bool)>,
    indirect: bool,
}

fn chain_spec() -> impl Strategy<Value = ChainSpec> {
    (
        prop::collection::vec((1u32..3000, any::<bool>()), 1..5),
        any::<bool>(),
    )
        .prop_map(|(bufs, indirect)| ChainSpec { bufs, indirect })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Same memory, same chains: our ring pops the same heads with the same
    /// buffers as `virtio-queue`, writes byte-identical used rings, and
    /// agrees on whether to notify (EVENT_IDX on and off).
    #[test]
    fn matches_virtio_queue(
        size_log in 2u32..8,
        chains in prop::collection::vec(chain_spec(), 1..40),
        base in any::<u16>(),
        event_idx in any::<bool>(),
        used_event_off in any::<u16>(),
        lens in prop::collection::vec(any::<u32>(), 40),
    ) {
        let size = 1u16 << size_log;
        let m = Mem::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).expect("anonymous memory");
        let mock = MockSplitQueue::create(&m, GuestAddress(0), size);
        // The mock places the used ring over the avail ring's used_event
        // (its ring `end()` counts entries, not bytes), so the used ring
        // moves to the spec layout; desc and avail are the mock's.
        let a = ring_addrs(size);
        prop_assert_eq!((a.desc, a.avail), (mock.desc_table_addr(), mock.avail_addr()));
        let mem = GuestMem::from_mmap(m.clone(), Vec::new());

        // Lay the chains out: direct ones in the table, indirect ones in
        // their own tables; stop when the ring is full.
        let mut next_desc = 0u16;
        let mut next_ind = INDIRECT_AT;
        let mut buf = BUF_AT;
        let mut heads = Vec::new();
        let mut expect: Vec<Vec<Seg>> = Vec::new();
        for c in &chains {
            let need = if c.indirect { 1 } else { c.bufs.len() as u16 };
            if next_desc + need > size || heads.len() == usize::from(size) {
                break;
            }
            let head = next_desc;
            let mut segs = Vec::new();
            let (table, first) = if c.indirect {
                let t = next_ind;
                next_ind += 16 * c.bufs.len() as u64;
                put_desc(&mem, 0, head, t, 16 * c.bufs.len() as u32, VRING_DESC_F_INDIRECT, 0);
                next_desc += 1;
                (t, 0u16)
            } else {
                next_desc += need;
                (0, head)
            };
            for (i, &(len, write)) in c.bufs.iter().enumerate() {
                let i = i as u16;
                let last = usize::from(i) + 1 == c.bufs.len();
                let flags = if write { VRING_DESC_F_WRITE } else { 0 }
                    | if last { 0 } else { VRING_DESC_F_NEXT };
                put_desc(&mem, table, first + i, buf, len, flags, first + i + 1);
                segs.push(Seg { addr: GuestAddress(buf), len, write });
                buf += u64::from(len);
            }
            heads.push(head);
            expect.push(segs);
        }
        offer(&mem, &a, &heads, base);
        let used_event = base.wrapping_add(used_event_off % (heads.len() as u16 + 2));
        mem.write(GuestAddress(a.avail.0 + 4 + 2 * u64::from(size)), &used_event.to_le_bytes())
            .expect("used_event");

        // Ours.
        let mut ring = SplitRing::new(&mem, a, base, event_idx).expect("valid ring");
        prop_assert_eq!(ring.begin_burst(&mem).ok(), Some(heads.len() as u16));
        let mut segs = Vec::new();
        let mut ours = Vec::new();
        while let Some(h) = ring.pop_head(&mem).expect("good heads") {
            ring.walk(&mem, h, &mut segs).expect("good chain");
            ours.push((h, segs.clone()));
            ring.stage_used(h, lens[ours.len() - 1]);
        }
        let our_notify = ring.publish(&mem).expect("publish");
        let used_len = 6 + 8 * usize::from(size);
        let mut our_used = vec![0u8; used_len];
        mem.read(a.used, &mut our_used).expect("used ring");
        prop_assert_eq!(ring.next_avail(), base.wrapping_add(heads.len() as u16));

        // The oracle, on the same memory with the used ring cleared.
        mem.write(a.used, &vec![0u8; used_len]).expect("clear used");
        let mut q: Queue = mock.create_queue().expect("queue");
        q.try_set_used_ring_address(a.used).expect("used ring address");
        q.set_next_avail(base);
        q.set_next_used(base);
        q.set_event_idx(event_idx);
        let mut theirs = Vec::new();
        for chain in q.iter(&m).expect("iter") {
            let h = chain.head_index();
            let segs: Vec<Seg> = chain
                .clone()
                .map(|d| Seg { addr: d.addr(), len: d.len(), write: d.is_write_only() })
                .collect();
            theirs.push((h, segs));
        }
        for (i, (h, _)) in theirs.iter().enumerate() {
            q.add_used(&m, *h, lens[i]).expect("add_used");
        }
        let their_notify = q.needs_notification(&m).expect("needs_notification");
        let mut their_used = vec![0u8; used_len];
        mem.read(a.used, &mut their_used).expect("used ring");

        prop_assert_eq!(&ours, &theirs);
        for ((_, s), e) in ours.iter().zip(&expect) {
            prop_assert_eq!(s, e);
        }
        // Flags are ours to set (NO_NOTIFY); compare idx and elements.
        prop_assert_eq!(&our_used[2..], &their_used[2..]);
        prop_assert_eq!(our_notify, their_notify);
    }
}
