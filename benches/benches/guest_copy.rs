//! Guest-to-guest copy of a lent frame tail (the one copy a 1518-byte
//! frame takes through the switch): our `copy_forward` (front to back, 64
//! bytes a step) against `vm-memory`'s `copy_to_volatile_slice` (glibc
//! `memmove`). Source and destination buffers sit at the same offset of
//! their 4 KiB pages, as a generator's buffers do; `memmove` takes that
//! for possible 4K aliasing and copies backwards.
//!
//! `hot`: one buffer pair, in L1. `cycling`: 1024 pairs in turn, 2.8 MB
//! touched, more than the 2 MiB L2 of the machines we measure on: the
//! copy waits on misses, as in the switch.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dataplane::vhost::guest_mem::{GuestMem, Mem, copy_forward};
use vm_memory::GuestAddress;

/// The tail of a 1518-byte frame past the 128 bytes kept in the packet.
const TAIL: usize = 1518 - 128;
const PAIRS: u64 = 1024;
const PAGE: u64 = 4096;
/// Offset of the tail in its page: past a buffer's headroom, header and head.
const OFF: u64 = 256;
const SRC: u64 = 0;
const DST: u64 = PAIRS * PAGE;

fn guest_copy(c: &mut Criterion) {
    let m = Mem::from_ranges(&[(GuestAddress(0), (2 * PAIRS * PAGE) as usize)]).expect("memory");
    let mem = GuestMem::from_mmap(m, Vec::new());
    let frame: Vec<u8> = (0..TAIL).map(|i| (i * 7) as u8).collect();
    for i in 0..PAIRS {
        mem.write(GuestAddress(SRC + i * PAGE + OFF), &frame)
            .expect("source");
    }
    let slices = |i: u64| {
        let s = mem
            .slice(GuestAddress(SRC + i * PAGE + OFF), TAIL)
            .expect("src");
        let d = mem
            .slice(GuestAddress(DST + i * PAGE + OFF), TAIL)
            .expect("dst");
        (s, d)
    };

    // The copy is exact (a benchmark of a wrong copy proves nothing).
    let (s1, d1) = slices(1);
    assert_eq!(copy_forward(&d1, &s1), Some(()));
    let mut back = vec![0u8; TAIL];
    mem.read(GuestAddress(DST + PAGE + OFF), &mut back)
        .expect("read back");
    assert_eq!(back, frame, "copy_forward's tail differs");

    let mut g = c.benchmark_group("guest_copy_1390B");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.throughput(Throughput::Bytes(TAIL as u64));
    for (tag, pairs) in [("hot", 1), ("cycling", PAIRS)] {
        let mut i = 0;
        g.bench_function(format!("copy_forward/{tag}"), |b| {
            b.iter(|| {
                let (s, d) = slices(i);
                i = (i + 1) % pairs;
                black_box(copy_forward(&d, &s))
            })
        });
        let mut i = 0;
        g.bench_function(format!("memmove/{tag}"), |b| {
            b.iter(|| {
                let (s, d) = slices(i);
                i = (i + 1) % pairs;
                s.copy_to_volatile_slice(d);
                black_box(())
            })
        });
    }
    g.finish();
    mem.read(GuestAddress(DST + OFF), &mut back)
        .expect("read back");
    assert_eq!(back, frame, "the last copy of pair 0 differs");
}

criterion_group!(benches, guest_copy);
criterion_main!(benches);
