//! The split-ring fast path: our `SplitRing` (one acquire load of
//! avail.idx per burst, a shadow used ring, one used.idx store per burst)
//! against `virtio-queue`'s `Queue` (per-chain iterator and per-chain
//! add_used), on the same guest memory and the same chains: bursts of 32
//! two-descriptor chains (12-byte header + 64-byte frame), popped, walked
//! and returned, with the notification decision at the end.
//! This is the measurement behind writing our own fast path (issue 3).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataplane::vhost::guest_mem::{GuestMem, Mem};
use dataplane::vhost::split_ring::{RingAddrs, Seg, SplitRing, VRING_DESC_F_NEXT};
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::GuestAddress;

const SIZE: u16 = 256;
const BURST: u16 = 32;
const DESC: u64 = 0;
const AVAIL: u64 = 0x1000;
const USED: u64 = 0x2000;

fn setup() -> (Mem, GuestMem) {
    let m = Mem::from_ranges(&[(GuestAddress(0), 0x10_0000)]).expect("memory");
    let mem = GuestMem::from_mmap(m.clone(), Vec::new());
    // SIZE/2 chains of (header, frame); every avail slot names one.
    for c in 0..SIZE / 2 {
        let put = |i: u16, addr: u64, len: u32, flags: u16, next: u16| {
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&addr.to_le_bytes());
            d[8..12].copy_from_slice(&len.to_le_bytes());
            d[12..14].copy_from_slice(&flags.to_le_bytes());
            d[14..].copy_from_slice(&next.to_le_bytes());
            mem.write(GuestAddress(DESC + 16 * u64::from(i)), &d)
                .expect("desc");
        };
        let buf = 0x8000 + 0x100 * u64::from(c);
        put(2 * c, buf, 12, VRING_DESC_F_NEXT, 2 * c + 1);
        put(2 * c + 1, buf + 16, 64, 0, 0);
    }
    for slot in 0..SIZE {
        let head = 2 * (slot % (SIZE / 2));
        mem.write(
            GuestAddress(AVAIL + 4 + 2 * u64::from(slot)),
            &head.to_le_bytes(),
        )
        .expect("avail slot");
    }
    (m, mem)
}

fn addrs() -> RingAddrs {
    RingAddrs {
        size: SIZE,
        desc: GuestAddress(DESC),
        avail: GuestAddress(AVAIL),
        used: GuestAddress(USED),
    }
}

/// The guest offers the next burst: one avail.idx store.
fn offer(mem: &GuestMem, idx: &mut u16) {
    *idx = idx.wrapping_add(BURST);
    mem.write(GuestAddress(AVAIL + 2), &idx.to_le_bytes())
        .expect("avail idx");
}

fn virtqueue(c: &mut Criterion) {
    let mut g = c.benchmark_group("split_ring_burst32");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(u64::from(BURST)));

    for event_idx in [false, true] {
        let tag = if event_idx {
            "event_idx"
        } else {
            "no_event_idx"
        };

        let (_m, mem) = setup();
        let mut ring = SplitRing::new(&mem, addrs(), 0, event_idx).expect("ring");
        let mut idx = 0u16;
        let mut segs: Vec<Seg> = Vec::with_capacity(8);
        g.bench_function(format!("ours/{tag}"), |b| {
            b.iter(|| {
                offer(&mem, &mut idx);
                let n = ring.begin_burst(&mem).expect("burst");
                assert_eq!(n, BURST);
                let mut bytes = 0u32;
                while let Some(h) = ring.pop_head(&mem).expect("head") {
                    bytes += ring.walk(&mem, h, &mut segs).expect("chain");
                    ring.stage_used(h, 0);
                }
                let notify = ring.publish(&mem).expect("publish");
                std::hint::black_box((bytes, notify))
            })
        });

        let (m, mem) = setup();
        let mut q = Queue::new(SIZE).expect("queue");
        q.try_set_desc_table_address(GuestAddress(DESC))
            .expect("desc");
        q.try_set_avail_ring_address(GuestAddress(AVAIL))
            .expect("avail");
        q.try_set_used_ring_address(GuestAddress(USED))
            .expect("used");
        q.set_event_idx(event_idx);
        q.set_ready(true);
        let mut idx = 0u16;
        let mut heads: Vec<u16> = Vec::with_capacity(usize::from(BURST));
        g.bench_function(format!("virtio-queue/{tag}"), |b| {
            b.iter(|| {
                offer(&mem, &mut idx);
                heads.clear();
                let mut bytes = 0u32;
                for chain in q.iter(&m).expect("iter") {
                    heads.push(chain.head_index());
                    bytes += chain.map(|d| d.len()).sum::<u32>();
                }
                assert_eq!(heads.len(), usize::from(BURST));
                for &h in &heads {
                    q.add_used(&m, h, 0).expect("add_used");
                }
                let notify = q.needs_notification(&m).expect("notify");
                std::hint::black_box((bytes, notify))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, virtqueue);
criterion_main!(benches);
