//! A bounded single-producer single-consumer ring with burst push and pop
//! (Snabb's `link`): one acquire load of the other side's index per burst
//! in the common case, one release store of one's own index per burst.
//!
//! Invariants: `head` (next slot to pop) is written only by the consumer,
//! `tail` (next slot to push) only by the producer; `tail - head <= cap`
//! (wrapping arithmetic on indices that grow without bound); slots
//! `head..tail` (mod cap) hold initialised values and the others do not.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
}

// SAFETY: a slot is accessed by the producer only while it is outside
// `head..tail` and by the consumer only while it is inside; the acquire /
// release pairs on `head` and `tail` order those accesses, so values of a
// `Send` type move between exactly two threads without data races.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let head = *self.head.get_mut();
        let tail = *self.tail.get_mut();
        let mut i = head;
        while i != tail {
            // SAFETY: slots in head..tail are initialised (module invariant),
            // MaybeUninit<T> has T's layout, and drop has exclusive access.
            unsafe { std::ptr::drop_in_place(self.slots[i & self.mask].get().cast::<T>()) };
            i = i.wrapping_add(1);
        }
    }
}

/// The pushing end.
pub struct Producer<T> {
    ring: Arc<Ring<T>>,
    tail: usize,
    cached_head: usize,
}

/// The popping end.
pub struct Consumer<T> {
    ring: Arc<Ring<T>>,
    head: usize,
    cached_tail: usize,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Producer(cap={}, tail={})",
            self.ring.mask + 1,
            self.tail
        )
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Consumer(cap={}, head={})",
            self.ring.mask + 1,
            self.head
        )
    }
}

/// A ring of at least `capacity` slots (rounded up to a power of two).
pub fn spsc_ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity.max(2).next_power_of_two();
    let slots = (0..cap)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let ring = Arc::new(Ring {
        slots,
        mask: cap - 1,
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
    });
    (
        Producer {
            ring: ring.clone(),
            tail: 0,
            cached_head: 0,
        },
        Consumer {
            ring,
            head: 0,
            cached_tail: 0,
        },
    )
}

impl<T: Send> Producer<T> {
    fn free_slots(&mut self, want: usize) -> usize {
        let cap = self.ring.mask + 1;
        let mut free = cap - self.tail.wrapping_sub(self.cached_head);
        if free < want {
            self.cached_head = self.ring.head.load(Ordering::Acquire);
            free = cap - self.tail.wrapping_sub(self.cached_head);
        }
        free
    }

    /// Pushes one value, or gives it back if the ring is full.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        if self.free_slots(1) == 0 {
            return Err(v);
        }
        // SAFETY: the slot at `tail` is outside head..tail (free_slots > 0),
        // so the consumer does not touch it until we publish `tail + 1`.
        unsafe { (*self.ring.slots[self.tail & self.ring.mask].get()).write(v) };
        self.tail = self.tail.wrapping_add(1);
        self.ring.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Moves as many values as fit from the front of `src` into the ring,
    /// with one index publication; returns how many moved.
    pub fn push_burst(&mut self, src: &mut Vec<T>) -> usize {
        let n = self.free_slots(src.len()).min(src.len());
        for (k, v) in src.drain(..n).enumerate() {
            let i = self.tail.wrapping_add(k) & self.ring.mask;
            // SAFETY: k < n <= free slots, so slot i is outside head..tail
            // and unpublished; only this producer writes it.
            unsafe { (*self.ring.slots[i].get()).write(v) };
        }
        self.tail = self.tail.wrapping_add(n);
        self.ring.tail.store(self.tail, Ordering::Release);
        n
    }

    /// Slots in use as seen by the producer (may be stale high).
    pub fn len(&self) -> usize {
        self.tail
            .wrapping_sub(self.ring.head.load(Ordering::Acquire))
    }

    /// True if the consumer has taken everything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send> Consumer<T> {
    fn ready(&mut self, want: usize) -> usize {
        let mut n = self.cached_tail.wrapping_sub(self.head);
        if n < want {
            self.cached_tail = self.ring.tail.load(Ordering::Acquire);
            n = self.cached_tail.wrapping_sub(self.head);
        }
        n
    }

    /// Pops one value.
    pub fn pop(&mut self) -> Option<T> {
        if self.ready(1) == 0 {
            return None;
        }
        // SAFETY: head < cached_tail, so the slot is initialised (and
        // MaybeUninit<T> has T's layout) and published by the producer
        // (acquire load of tail); after we
        // publish head + 1 the producer may reuse it, and we moved out first.
        let v = unsafe {
            self.ring.slots[self.head & self.ring.mask]
                .get()
                .cast::<T>()
                .read()
        };
        self.head = self.head.wrapping_add(1);
        self.ring.head.store(self.head, Ordering::Release);
        Some(v)
    }

    /// Pops up to `max` values into `out` with one index publication.
    pub fn pop_burst(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let n = self.ready(max).min(max);
        for k in 0..n {
            let i = self.head.wrapping_add(k) & self.ring.mask;
            // SAFETY: k < n <= ready, so slot i is initialised and published
            // (MaybeUninit<T> has T's layout); we move the value out before
            // publishing the new head, so it is read exactly once.
            out.push(unsafe { self.ring.slots[i].get().cast::<T>().read() });
        }
        self.head = self.head.wrapping_add(n);
        self.ring.head.store(self.head, Ordering::Release);
        n
    }

    /// Values waiting.
    pub fn len(&self) -> usize {
        self.ring
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head)
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_bounds() {
        let (mut p, mut c) = spsc_ring::<u32>(4);
        for i in 0..4 {
            assert!(p.push(i).is_ok());
        }
        assert_eq!(p.push(9), Err(9));
        assert_eq!(c.pop(), Some(0));
        let mut src = vec![10, 11, 12];
        assert_eq!(p.push_burst(&mut src), 1);
        assert_eq!(src, vec![11, 12]);
        let mut out = Vec::new();
        assert_eq!(c.pop_burst(&mut out, 32), 4);
        assert_eq!(out, vec![1, 2, 3, 10]);
        assert!(c.pop().is_none());
    }

    #[test]
    fn drops_remaining_values() {
        let counter = Arc::new(());
        let (mut p, c) = spsc_ring::<Arc<()>>(8);
        for _ in 0..5 {
            assert!(p.push(counter.clone()).is_ok());
        }
        drop(p);
        drop(c);
        assert_eq!(Arc::strong_count(&counter), 1);
    }

    #[test]
    fn two_threads_no_loss_no_dup() {
        let (mut p, mut c) = spsc_ring::<u64>(64);
        const N: u64 = 200_000;
        let h = std::thread::spawn(move || {
            let mut next = 0u64;
            let mut batch = Vec::new();
            while next < N {
                while batch.len() < 16 && next < N {
                    batch.push(next);
                    next += 1;
                }
                p.push_burst(&mut batch);
                std::hint::spin_loop();
            }
            while !batch.is_empty() {
                p.push_burst(&mut batch);
            }
        });
        let mut expect = 0u64;
        let mut out = Vec::new();
        while expect < N {
            out.clear();
            c.pop_burst(&mut out, 32);
            for &v in &out {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        h.join().expect("producer");
        assert!(c.pop().is_none());
    }
}
