//! Guest memory of one vhost-user frontend, as mapped from SET_MEM_TABLE.
//!
//! Guest memory is shared with an untrusted guest that may change it at any
//! moment, so it is never seen as `&[u8]`: every access goes through a
//! `vm-memory` [`VolatileSlice`], which copies with volatile accesses (or
//! `memcpy`, as `vm-memory` does) and loads and stores atomically, and every
//! slice is bounded by the mapped region it lies in.
//!
//! The fast path finds the region in its own small table ([`GuestMem`]'s
//! `regions`: guest-physical span and host address of each mapping) instead
//! of `vm-memory`'s generic region search, and a ring area is resolved to a
//! [`HostRange`] (region, offset, length) once when the ring starts, so a
//! descriptor or index access is a few compares, not a search.
//!
//! The `unsafe` here: `GuestMem::host_slice` makes a `VolatileSlice` from a
//! region's host address; `GuestMem` is declared `Send` and `Sync` (it holds
//! those addresses); [`prefetch`] and [`prefetch_w`] issue prefetch hints;
//! [`write_at`] and [`read_at`] copy small pieces inline, and
//! [`copy_forward`] copies guest memory to guest memory with raw moves
//! (their SAFETY comments bound each range by its slice). The invariants:
//! - `regions[i].host .. + (end - start)` is exactly the host mapping of
//!   region `i` of `mem`, which `GuestMem` owns and never changes or unmaps
//!   before it drops (the SIGBUS handler may swap pages under it for zero
//!   pages, which changes values, never validity: see `super::sigbus`);
//! - every slice is checked to lie inside its region before it is made, and
//!   borrows the `GuestMem`, so it cannot outlive the mapping;
//! - guest memory is only touched through `VolatileSlice` (never a Rust
//!   reference), like everything else `vm-memory` hands out.
//!
//! A [`GuestMem`] is immutable once built. The control thread builds a new
//! one per SET_MEM_TABLE and hands it to the PMD as an `Arc` snapshot: the
//! old mapping is unmapped only when the last holder (a PMD between bursts,
//! at the latest) drops it, so a PMD never touches an unmapped page.

use std::fs::File;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::{
    Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    MemoryRegionAddress, VolatileSlice,
};

/// The mapped guest memory type (no dirty-page bitmap: no live migration).
pub type Mem = GuestMemoryMmap<()>;

/// Most memory regions a frontend may send (QEMU sends 2 to 8).
pub const MAX_REGIONS: usize = 64;

/// Errors building or accessing guest memory.
#[derive(Debug, thiserror::Error)]
pub enum MemError {
    /// A region is empty, overflows, or the table is too large.
    #[error("invalid memory region {index}")]
    BadRegion {
        /// Position of the region in the table.
        index: usize,
    },
    /// The frontend sent fewer files than regions.
    #[error("memory table has {regions} regions but {files} files")]
    FileCount {
        /// Regions in the table.
        regions: usize,
        /// Files attached.
        files: usize,
    },
    /// Mapping a region failed.
    #[error("cannot map memory region {index}")]
    Map {
        /// Position of the region in the table.
        index: usize,
        /// Cause.
        #[source]
        source: vhost::vhost_user::Error,
    },
    /// A region's file is not a regular file (memfd, hugetlbfs or tmpfs
    /// file), or the region reaches past the file's end. Mapping it would
    /// succeed, but the first access past the end raises SIGBUS and kills
    /// the whole switch.
    #[error("memory region {index} is not inside its file")]
    PastEof {
        /// Position of the region in the table.
        index: usize,
    },
    /// The region's file cannot be inspected.
    #[error("cannot inspect the file of memory region {index}")]
    Stat {
        /// Position of the region in the table.
        index: usize,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Regions overlap or cannot form a memory map.
    #[error("memory regions overlap")]
    Layout(#[source] vm_memory::GuestRegionCollectionError),
    /// Two regions overlap in the frontend's (user) address space, so a
    /// ring address (SET_VRING_ADDR is in those addresses) could mean
    /// either region.
    #[error("memory regions {first} and {second} overlap in the frontend's address space")]
    FrontendOverlap {
        /// Position of the region that starts first.
        first: usize,
        /// Position of the region that starts inside it.
        second: usize,
    },
    /// A frontend virtual address is in no region (or its range crosses one).
    #[error("frontend address {va:#x}+{len} is not in guest memory")]
    Unmapped {
        /// Frontend virtual address.
        va: u64,
        /// Length of the range.
        len: u64,
    },
    /// A guest physical range is outside guest memory.
    #[error("guest range {addr:#x}+{len} is out of bounds")]
    OutOfBounds {
        /// Guest physical address.
        addr: u64,
        /// Length.
        len: usize,
    },
}

/// One region as the frontend sees it: its virtual address, the guest
/// physical address and the size. Used to translate SET_VRING_ADDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrMap {
    /// Frontend (QEMU) virtual address of the region.
    pub frontend_va: u64,
    /// Guest physical address of the region.
    pub gpa: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Mapped guest memory plus the frontend-VA table.
#[derive(Debug)]
pub struct GuestMem {
    /// The regions' host ranges, registered with the SIGBUS handler
    /// ([`super::sigbus`]). First field: it must drop (unregister) before
    /// `mem` unmaps them.
    guard: super::sigbus::Guard,
    mem: Mem,
    maps: Vec<AddrMap>,
    /// Each region of `mem`, in `mem`'s order: the fast path's lookup table
    /// (a linear scan of 1-8 entries beats `vm-memory`'s generic region
    /// search, which the packet-rate profile showed at about a fifth of the
    /// switch's time) and the regions' host addresses.
    regions: Vec<HostRegion>,
}

/// One mapped region: guest-physical `[start, end)` and the host address
/// of `start` (see the module's invariants).
#[derive(Clone, Copy, Debug)]
struct HostRegion {
    start: u64,
    end: u64,
    host: NonNull<u8>,
}

// SAFETY: `HostRegion::host` points into a mapping owned by the same
// `GuestMem` (its `mem`, itself `Send` and `Sync`), which stays mapped for
// the `GuestMem`'s whole life. The pointer is only turned into
// `VolatileSlice`s borrowed from `&GuestMem`, the same volatile and atomic
// access that `vm-memory` offers from any thread; `GuestMem` is immutable.
unsafe impl Send for GuestMem {}
// SAFETY: as for `Send` above: shared access only makes `VolatileSlice`s.
unsafe impl Sync for GuestMem {}

/// A guest-physical range that lies in one mapped region, resolved once
/// (a ring area, an indirect table): region index, offset in the region,
/// length. Accesses through it ([`GuestMem::range_slice`]) cost a few
/// compares instead of a region search. It holds no pointer: used with
/// another `GuestMem` it is still bounded by that memory's regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostRange {
    region: usize,
    off: u64,
    len: usize,
}

impl HostRange {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty range.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn regions_of(mem: &Mem) -> Vec<HostRegion> {
    mem.iter()
        .filter_map(|r| {
            let host = r.get_host_address(MemoryRegionAddress(0)).ok()?;
            Some(HostRegion {
                start: r.start_addr().0,
                end: r.start_addr().0.saturating_add(r.len()),
                host: NonNull::new(host)?,
            })
        })
        .collect()
}

/// A region of `size` bytes at `offset` in `file` must lie inside a
/// regular file: `vm-memory` maps past the end without complaint, and the
/// first access there (a vring the frontend placed past the end) is a
/// SIGBUS for the whole process.
fn check_in_file(file: &File, offset: u64, size: u64, index: usize) -> Result<(), MemError> {
    let meta = file
        .metadata()
        .map_err(|source| MemError::Stat { index, source })?;
    let inside = offset
        .checked_add(size)
        .is_some_and(|end| end <= meta.len());
    if meta.file_type().is_file() && inside {
        Ok(())
    } else {
        Err(MemError::PastEof { index })
    }
}

/// No two regions may share a frontend address: SET_VRING_ADDR names the
/// rings by frontend address, and an address in two regions would be
/// translated by whichever comes first. (`vm-memory` refuses overlapping
/// guest physical addresses; this is the same rule for the other side.)
/// Every `frontend_va + size` was checked not to overflow.
fn check_frontend_overlap(maps: &[AddrMap]) -> Result<(), MemError> {
    let mut by_va: Vec<(usize, &AddrMap)> = maps.iter().enumerate().collect();
    by_va.sort_by_key(|(_, m)| m.frontend_va);
    for pair in by_va.windows(2) {
        let [(first, a), (second, b)] = pair else {
            continue;
        };
        if a.frontend_va.saturating_add(a.size) > b.frontend_va {
            return Err(MemError::FrontendOverlap {
                first: *first,
                second: *second,
            });
        }
    }
    Ok(())
}

impl GuestMem {
    /// Maps the regions of a SET_MEM_TABLE message (one file per region).
    pub fn from_regions(
        regions: &[VhostUserMemoryRegion],
        files: Vec<File>,
    ) -> Result<Self, MemError> {
        if regions.len() > MAX_REGIONS {
            return Err(MemError::BadRegion { index: MAX_REGIONS });
        }
        if files.len() != regions.len() {
            return Err(MemError::FileCount {
                regions: regions.len(),
                files: files.len(),
            });
        }
        let mut mapped = Vec::with_capacity(regions.len());
        let mut maps = Vec::with_capacity(regions.len());
        for (index, (r, f)) in regions.iter().zip(files).enumerate() {
            // Copy out of the packed struct before use.
            let (gpa, size, va) = (r.guest_phys_addr, r.memory_size, r.user_addr);
            let ok = size > 0
                && gpa.checked_add(size).is_some()
                && va.checked_add(size).is_some()
                && usize::try_from(size).is_ok();
            if !ok {
                return Err(MemError::BadRegion { index });
            }
            check_in_file(&f, r.mmap_offset, size, index)?;
            let mmap = r
                .mmap_region::<()>(f)
                .map_err(|source| MemError::Map { index, source })?;
            let region = GuestRegionMmap::new(mmap, GuestAddress(gpa))
                .ok_or(MemError::BadRegion { index })?;
            mapped.push(region);
            maps.push(AddrMap {
                frontend_va: va,
                gpa,
                size,
            });
        }
        check_frontend_overlap(&maps)?;
        let mem = GuestMemoryMmap::from_regions(mapped).map_err(MemError::Layout)?;
        let regions = regions_of(&mem);
        // A frontend may still shrink a file later: a touch past its new
        // end is then caught and turned into zeros plus `lost()`.
        let mut guard = super::sigbus::Guard::default();
        for r in mem.iter() {
            let start = r
                .get_host_address(MemoryRegionAddress(0))
                .map(|p| p.addr())
                .unwrap_or(0);
            let len = usize::try_from(r.len()).unwrap_or(0);
            if !guard.register(start, len) {
                tracing::warn!(
                    start,
                    len,
                    "guest memory region not protected against SIGBUS"
                );
            }
        }
        Ok(GuestMem {
            guard,
            mem,
            maps,
            regions,
        })
    }

    /// Wraps memory that is already mapped (tests, fuzzing), with the
    /// given frontend-VA table.
    pub fn from_mmap(mem: Mem, maps: Vec<AddrMap>) -> Self {
        let regions = regions_of(&mem);
        GuestMem {
            guard: super::sigbus::Guard::default(),
            mem,
            maps,
            regions,
        }
    }

    /// True if part of this memory vanished under the switch (the
    /// frontend shrank a file after SET_MEM_TABLE): those pages now read
    /// as zeros and the port must be reset.
    pub fn lost(&self) -> bool {
        self.guard.lost()
    }

    /// `addr..addr+len` as a range of one region; `None` when no single
    /// region holds it (out of bounds, or a range crossing two adjacent
    /// regions: the slow path handles those).
    #[inline]
    pub fn resolve(&self, addr: GuestAddress, len: usize) -> Option<HostRange> {
        let addr = addr.0;
        let region = self
            .regions
            .iter()
            .position(|r| addr >= r.start && addr < r.end)?;
        let r = &self.regions[region];
        if len as u64 > r.end - addr {
            return None;
        }
        Some(HostRange {
            region,
            off: addr - r.start,
            len,
        })
    }

    /// `len` bytes at `at` inside `range`, as a volatile slice; `None` if
    /// that is outside `range` or `range` is outside this memory.
    #[inline]
    pub fn range_slice(
        &self,
        range: HostRange,
        at: usize,
        len: usize,
    ) -> Option<VolatileSlice<'_>> {
        if at > range.len || len > range.len - at {
            return None;
        }
        self.host_slice(range.region, range.off.checked_add(at as u64)?, len)
    }

    /// The whole of `range` as a volatile slice.
    #[inline]
    pub fn whole(&self, range: HostRange) -> Option<VolatileSlice<'_>> {
        self.host_slice(range.region, range.off, range.len)
    }

    /// `len` bytes at offset `off` of region `region`, bounds-checked.
    #[inline]
    fn host_slice(&self, region: usize, off: u64, len: usize) -> Option<VolatileSlice<'_>> {
        let r = self.regions.get(region)?;
        let size = r.end - r.start;
        if off > size || len as u64 > size - off {
            return None;
        }
        // `off < size <= isize::MAX` (a mapping of `size` bytes exists).
        let off = usize::try_from(off).ok()?;
        // SAFETY: `r.host .. r.host + size` is the live mapping of region
        // `region` of `self.mem` (module invariants), and `off + len <= size`
        // was checked above, so the slice lies inside it; the slice borrows
        // `self`, so the mapping outlives it, and guest memory is only ever
        // accessed through volatile slices, never through references.
        Some(unsafe { VolatileSlice::new(r.host.as_ptr().wrapping_add(off), len) })
    }

    /// The underlying memory map.
    pub fn mem(&self) -> &Mem {
        &self.mem
    }

    /// Translates a frontend virtual address range to a guest physical
    /// address. The whole range `va..va+len` must lie in one region.
    pub fn va_to_gpa(&self, va: u64, len: u64) -> Result<GuestAddress, MemError> {
        self.maps
            .iter()
            .find(|m| {
                va >= m.frontend_va
                    && va - m.frontend_va < m.size
                    && len <= m.size - (va - m.frontend_va)
            })
            .map(|m| GuestAddress(m.gpa + (va - m.frontend_va)))
            .ok_or(MemError::Unmapped { va, len })
    }

    /// True if `addr..addr+len` is entirely mapped.
    #[inline]
    pub fn check_range(&self, addr: GuestAddress, len: usize) -> bool {
        self.resolve(addr, len).is_some() || GuestMemoryBackend::check_range(&self.mem, addr, len)
    }

    /// `addr..addr+len` as one volatile slice, if one region holds it.
    #[inline]
    pub fn slice(&self, addr: GuestAddress, len: usize) -> Option<VolatileSlice<'_>> {
        self.resolve(addr, len).and_then(|r| self.whole(r))
    }

    /// Prefetches the first line of `addr..addr+len` and, if the range
    /// reaches into it, the next one (a no-op for unmapped ranges).
    #[inline]
    pub fn prefetch(&self, addr: GuestAddress, len: usize) {
        self.prefetch_head(addr, len, prefetch);
    }

    /// Like [`GuestMem::prefetch`], for lines about to be written (see
    /// [`prefetch_w`]).
    #[inline]
    pub fn prefetch_write(&self, addr: GuestAddress, len: usize) {
        self.prefetch_head(addr, len, prefetch_w);
    }

    /// Applies `hint` to the first line of `addr..addr+len` and, if the
    /// range reaches into it, the next one.
    #[inline(always)]
    fn prefetch_head(&self, addr: GuestAddress, len: usize, hint: fn(&VolatileSlice<'_>, usize)) {
        if let Some(s) = self.slice(addr, len) {
            hint(&s, 0);
            hint(&s, 64 - (addr.0 % 64) as usize);
        }
    }

    /// Copies `buf.len()` bytes of guest memory at `addr` into `buf`.
    #[inline]
    pub fn read(&self, addr: GuestAddress, buf: &mut [u8]) -> Result<(), MemError> {
        if let Some(slice) = self.slice(addr, buf.len()) {
            // Bounded by `slice`: inline for a small frame, else the
            // volatile copy of `vm-memory` (memcpy for more than 8 bytes).
            if read_at(&slice, 0, buf).is_some() {
                return Ok(());
            }
        }
        self.mem
            .read_slice(buf, addr)
            .map_err(|_| MemError::OutOfBounds {
                addr: addr.0,
                len: buf.len(),
            })
    }

    /// Copies `buf` into guest memory at `addr`.
    #[inline]
    pub fn write(&self, addr: GuestAddress, buf: &[u8]) -> Result<(), MemError> {
        if let Some(slice) = self.slice(addr, buf.len()) {
            slice.copy_from(buf);
            return Ok(());
        }
        self.mem
            .write_slice(buf, addr)
            .map_err(|_| MemError::OutOfBounds {
                addr: addr.0,
                len: buf.len(),
            })
    }

    /// An atomic 16-bit load (ring indexes and flags). `addr` must be
    /// 2-byte aligned.
    #[inline]
    pub fn load_u16(&self, addr: GuestAddress, order: Ordering) -> Result<u16, MemError> {
        let err = || MemError::OutOfBounds {
            addr: addr.0,
            len: 2,
        };
        match self.slice(addr, 2) {
            Some(s) => load_u16(&s, 0, order).ok_or_else(err),
            None => self
                .mem
                .load::<u16>(addr, order)
                .map(u16::from_le)
                .map_err(|_| err()),
        }
    }

    /// An atomic 16-bit store. `addr` must be 2-byte aligned.
    #[inline]
    pub fn store_u16(&self, addr: GuestAddress, val: u16, order: Ordering) -> Result<(), MemError> {
        let err = || MemError::OutOfBounds {
            addr: addr.0,
            len: 2,
        };
        match self.slice(addr, 2) {
            Some(s) => store_u16(&s, 0, val, order).ok_or_else(err),
            None => self.mem.store(val.to_le(), addr, order).map_err(|_| err()),
        }
    }
}

/// Asks the CPU to bring the cache line holding byte `at` of `s` closer
/// (a no-op if `at` is outside `s`). Used a burst ahead of the accesses, so
/// the misses on lines the guest's CPU just wrote overlap instead of
/// stalling one frame at a time.
#[inline]
pub fn prefetch(s: &VolatileSlice<'_>, at: usize) {
    if at >= s.len() {
        return;
    }
    let ptr = s.ptr_guard().as_ptr().wrapping_add(at);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults, has no
    // architecturally visible read and writes nothing, so any address is
    // allowed (this one is inside `s` anyway); SSE, which provides it, is
    // part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// [`prefetch`] for a line about to be written: PREFETCHW, which fetches
/// the line owned (the stores that follow then need no second transfer
/// from the guest's CPU to upgrade a shared copy), or a plain prefetch on
/// a CPU without it.
#[inline]
pub fn prefetch_w(s: &VolatileSlice<'_>, at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < s.len() && has_prefetchw() {
        let ptr = s.ptr_guard().as_ptr().wrapping_add(at);
        // SAFETY: a hint, as in `prefetch` (never faults, writes nothing);
        // `has_prefetchw` checked that the CPU has it (older Intel CPUs
        // may raise #UD); it touches no stack and no flags.
        unsafe {
            std::arch::asm!(
                "prefetchw [{0}]",
                in(reg) ptr,
                options(nostack, readonly, preserves_flags)
            );
        }
        return;
    }
    prefetch(s, at);
}

/// Whether the CPU implements PREFETCHW (CPUID 0x8000_0001 ECX bit 8:
/// AMD since K8, Intel since Broadwell). Read once.
#[cfg(target_arch = "x86_64")]
fn has_prefetchw() -> bool {
    use std::arch::x86_64::__cpuid;
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
    })
}

/// Copies up to this many bytes with inline moves ([`write_at`],
/// [`read_at`]): a whole minimum-size frame.
pub const SMALL_COPY: usize = 64;

// `copy_forward` hands everything above `SMALL_COPY` to `steps_of_64`,
// which needs at least 64 bytes.
const _: () = assert!(SMALL_COPY >= 63);

/// Copies `src` into `s` at `at`; `None` if that is out of bounds. Up to
/// [`SMALL_COPY`] bytes (a virtio-net header, a small frame) are copied
/// inline with fixed-size moves, more through `vm-memory`. At 64 bytes a
/// frame is copied three times (header in, frame out, frame in), and
/// `memcpy` (call, size dispatch and moves) was 9% of the PMD's time under
/// perf; inline, the packet rate went from 0.71x to 0.77x of testpmd.
#[inline(always)]
pub fn write_at(s: &VolatileSlice<'_>, at: usize, src: &[u8]) -> Option<()> {
    let n = src.len();
    if at > s.len() || n > s.len() - at {
        return None;
    }
    if n > SMALL_COPY {
        return s.write_slice(src, at).ok();
    }
    // Plain unaligned moves, as `vm-memory` itself copies more than 8
    // bytes (`copy_nonoverlapping`); guest memory is never referenced.
    let dst = s.ptr_guard_mut().as_ptr().wrapping_add(at);
    // SAFETY: `dst .. dst + n` is inside `s` (checked above), mapped while
    // `s` lives; `src` is the caller's memory, never guest memory: apart.
    unsafe { copy_small(dst, src.as_ptr(), n) };
    Some(())
}

/// Copies `dst.len()` bytes of `s` from `at` into `dst`; `None` if that is
/// out of bounds. Inline up to [`SMALL_COPY`] bytes, as [`write_at`].
#[inline(always)]
pub fn read_at(s: &VolatileSlice<'_>, at: usize, dst: &mut [u8]) -> Option<()> {
    let n = dst.len();
    if at > s.len() || n > s.len() - at {
        return None;
    }
    if n > SMALL_COPY {
        let sub = s.subslice(at, n).ok()?;
        sub.copy_to(dst);
        return Some(());
    }
    let src = s.ptr_guard().as_ptr().wrapping_add(at);
    // SAFETY: `src .. src + n` lies inside `s` (checked above), mapped for
    // the slice's lifetime; `dst` is the caller's own buffer of `n` bytes,
    // never guest memory. The guest may change its bytes meanwhile: the
    // copy then holds some mix of old and new bytes, as with `vm-memory`.
    unsafe { copy_small(dst.as_mut_ptr(), src, n) };
    Some(())
}

/// Copies `n <= SMALL_COPY` bytes with at most two overlapping fixed-size
/// moves of the largest power of two `<= n` (as `memcpy` does inside, less
/// the call and the dispatch).
///
/// # Safety
/// `src .. src + n` must be readable and `dst .. dst + n` writable. The
/// two may overlap (guest memory to guest memory, one guest's two ports):
/// every move is a raw unaligned load then a raw store, no reference is
/// formed, so an overlap leaves some mix of old and new bytes in `dst`.
#[inline(always)]
unsafe fn copy_small(dst: *mut u8, src: *const u8, n: usize) {
    debug_assert!(n <= SMALL_COPY);
    // In each branch `K <= n` for the `move_two::<K>` it calls, and the
    // caller vouched for `n` bytes at `src` and at `dst`.
    if n >= 32 {
        // SAFETY: 32 <= n; the ranges as above.
        unsafe { move_two::<32>(dst, src, n) }
    } else if n >= 16 {
        // SAFETY: 16 <= n; the ranges as above.
        unsafe { move_two::<16>(dst, src, n) }
    } else if n >= 8 {
        // SAFETY: 8 <= n; the ranges as above.
        unsafe { move_two::<8>(dst, src, n) }
    } else if n >= 4 {
        // SAFETY: 4 <= n; the ranges as above.
        unsafe { move_two::<4>(dst, src, n) }
    } else {
        for i in 0..n {
            // SAFETY: `i < n`: inside the source range.
            let b = unsafe { src.wrapping_add(i).read() };
            // SAFETY: `i < n`: inside the destination range.
            unsafe { dst.wrapping_add(i).write(b) };
        }
    }
}

/// Copies bytes `0..K` and `n - K..n` (together all of `0..n` when
/// `K <= n < 2K`).
///
/// # Safety
/// `K <= n`, and as for [`copy_small`].
#[inline(always)]
unsafe fn move_two<const K: usize>(dst: *mut u8, src: *const u8, n: usize) {
    use std::ptr::{read_unaligned, write_unaligned};
    debug_assert!(K <= n);
    // SAFETY: the first `K <= n` bytes of the source; unaligned is fine.
    let a = unsafe { read_unaligned(src.cast::<[u8; K]>()) };
    // SAFETY: bytes `n - K .. n` of the source.
    let b = unsafe { read_unaligned(src.wrapping_add(n - K).cast::<[u8; K]>()) };
    // SAFETY: the first `K` bytes of the destination.
    unsafe { write_unaligned(dst.cast::<[u8; K]>(), a) };
    // SAFETY: bytes `n - K .. n` of the destination.
    unsafe { write_unaligned(dst.wrapping_add(n - K).cast::<[u8; K]>(), b) };
}

/// Copies `src` into `dst` (guest memory to guest memory: a lent frame
/// tail into the receiving guest's buffer); `None` if the lengths differ.
///
/// Front to back in 64-byte steps, never through `memmove`: the two
/// buffers usually sit at the same offset in their 4 KiB pages (a
/// generator's buffers are all alike), `memmove` then copies backwards to
/// dodge 4K aliasing, and backwards the copy waits on every miss. Paired
/// 100 ms slices of one run, flipping between the two: 1518-byte frames
/// +6.5% (won 183 of 197 pairs), 512-byte +2.4%.
#[inline]
pub fn copy_forward(dst: &VolatileSlice<'_>, src: &VolatileSlice<'_>) -> Option<()> {
    let n = src.len();
    if dst.len() != n {
        return None;
    }
    let d = dst.ptr_guard_mut().as_ptr();
    let s = src.ptr_guard().as_ptr();
    // Guest memory may overlap guest memory (one guest's two ports, both
    // mapping its RAM): every step below loads before it stores, through
    // raw pointers, so an overlap only mixes old and new bytes.
    if n <= SMALL_COPY {
        // SAFETY: `n` bytes at `s` and at `d`, each inside its slice (its
        // length is `n`), both mapped while the slices live.
        unsafe { copy_small(d, s, n) };
        return Some(());
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: as above, `n >= 64` bytes at each; the CPU has AVX-512F
        // (checked, and cached by `std`).
        unsafe { copy_forward_avx512(d, s, n) };
        return Some(());
    }
    // SAFETY: as above, `n >= 64` bytes at each.
    unsafe { copy_forward_64(d, s, n) };
    Some(())
}

/// [`copy_forward`]'s loop: 64 bytes at a time, then the last 64 bytes
/// again (overlapping bytes already copied) if `n` is not a multiple.
///
/// # Safety
/// `n >= 64`; `s .. s + n` readable, `d .. d + n` writable.
#[inline(always)]
unsafe fn copy_forward_64(d: *mut u8, s: *const u8, n: usize) {
    use std::ptr::{read_unaligned, write_unaligned};
    debug_assert!(n >= 64);
    steps_of_64(n, |at| {
        // SAFETY: `at + 64 <= n` (`steps_of_64`): source bytes
        // `at .. at + 64`, unaligned, no reference to guest memory formed.
        let v = unsafe { read_unaligned(s.wrapping_add(at).cast::<[u8; 64]>()) };
        // SAFETY: the same bytes of the destination.
        unsafe { write_unaligned(d.wrapping_add(at).cast::<[u8; 64]>(), v) };
    });
}

/// Calls `step` with the offset of every whole 64-byte piece of `0..n`
/// in order, then with `n - 64` if `n` is not a multiple of 64 (the last
/// piece, overlapping the one before). Every `at` has `at + 64 <= n`.
#[inline(always)]
fn steps_of_64(n: usize, mut step: impl FnMut(usize)) {
    debug_assert!(n >= 64);
    let mut at = 0;
    while at + 64 <= n {
        step(at);
        at += 64;
    }
    if at < n {
        step(n - 64);
    }
}

/// [`copy_forward_64`] with one 64-byte register per step.
///
/// # Safety
/// As [`copy_forward_64`], and the CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_forward_avx512(d: *mut u8, s: *const u8, n: usize) {
    use std::arch::x86_64::{_mm512_loadu_si512, _mm512_storeu_si512};
    debug_assert!(n >= 64);
    steps_of_64(n, |at| {
        // SAFETY: `at + 64 <= n` (`steps_of_64`): source bytes
        // `at .. at + 64`; unaligned loads are allowed.
        let v = unsafe { _mm512_loadu_si512(s.wrapping_add(at).cast()) };
        // SAFETY: the same bytes of the destination.
        unsafe { _mm512_storeu_si512(d.wrapping_add(at).cast(), v) };
    });
}

/// An atomic little-endian 16-bit load at `at` in `s`; `None` if out of
/// bounds or misaligned.
#[inline]
pub fn load_u16(s: &VolatileSlice<'_>, at: usize, order: Ordering) -> Option<u16> {
    s.load::<u16>(at, order).ok().map(u16::from_le)
}

/// An atomic little-endian 16-bit store at `at` in `s`; `None` if out of
/// bounds or misaligned.
#[inline]
pub fn store_u16(s: &VolatileSlice<'_>, at: usize, val: u16, order: Ordering) -> Option<()> {
    s.store(val.to_le(), at, order).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> GuestMem {
        let m = Mem::from_ranges(&[
            (GuestAddress(0x1000), 0x1000),
            (GuestAddress(0x10000), 0x2000),
        ])
        .expect("anonymous guest memory");
        GuestMem::from_mmap(
            m,
            vec![
                AddrMap {
                    frontend_va: 0x7f00_0000_1000,
                    gpa: 0x1000,
                    size: 0x1000,
                },
                AddrMap {
                    frontend_va: 0x7f00_0010_0000,
                    gpa: 0x10000,
                    size: 0x2000,
                },
            ],
        )
    }

    #[test]
    fn translates_frontend_addresses_within_one_region() {
        let m = mem();
        assert_eq!(
            m.va_to_gpa(0x7f00_0000_1000, 16).ok(),
            Some(GuestAddress(0x1000))
        );
        assert_eq!(
            m.va_to_gpa(0x7f00_0010_0ff0, 16).ok(),
            Some(GuestAddress(0x10ff0))
        );
        // Last byte in, one past out.
        assert!(m.va_to_gpa(0x7f00_0000_1fff, 1).is_ok());
        assert!(m.va_to_gpa(0x7f00_0000_1fff, 2).is_err());
        assert!(m.va_to_gpa(0x7f00_0000_0fff, 1).is_err());
        assert!(m.va_to_gpa(u64::MAX, 1).is_err());
    }

    #[test]
    fn accesses_are_bounded() {
        let m = mem();
        let mut buf = [0u8; 16];
        assert!(m.write(GuestAddress(0x1ff0), &[7u8; 16]).is_ok());
        assert!(m.read(GuestAddress(0x1ff0), &mut buf).is_ok());
        assert_eq!(buf, [7u8; 16]);
        // Crosses the end of the first region into a hole.
        assert!(m.read(GuestAddress(0x1ff8), &mut buf).is_err());
        assert!(m.write(GuestAddress(u64::MAX - 4), &buf).is_err());
        assert!(m.load_u16(GuestAddress(0x5000), Ordering::Acquire).is_err());
        assert!(!m.check_range(GuestAddress(0x11ff0), 0x1000));
        assert!(m.check_range(GuestAddress(0x11000), 0x1000));
    }

    /// The inline small copies move exactly the bytes asked for, at every
    /// length and offset, never a byte more, and refuse what is outside
    /// the slice.
    #[test]
    fn small_copies_are_exact_and_bounded() {
        let m = mem();
        let s = m.slice(GuestAddress(0x10000), 0x200).expect("mapped");
        let src: Vec<u8> = (0..100u8)
            .map(|i| i.wrapping_mul(7).wrapping_add(1))
            .collect();
        for n in 0..=(SMALL_COPY + 3) {
            for at in [0usize, 1, 3, 13, 64] {
                assert!(m.write(GuestAddress(0x10000), &[0xee; 0x200]).is_ok());
                assert_eq!(write_at(&s, at, &src[..n]), Some(()), "write {n} at {at}");
                let mut back = [0u8; 0x200];
                assert!(m.read(GuestAddress(0x10000), &mut back).is_ok());
                assert!(back[..at].iter().all(|&b| b == 0xee), "before, {n} at {at}");
                assert_eq!(&back[at..at + n], &src[..n], "{n} at {at}");
                assert!(
                    back[at + n..].iter().all(|&b| b == 0xee),
                    "after, {n} at {at}"
                );
                let mut out = vec![0x55u8; n + 1];
                assert_eq!(read_at(&s, at, &mut out[..n]), Some(()));
                assert_eq!(&out[..n], &src[..n], "read {n} at {at}");
                assert_eq!(out[n], 0x55, "read past {n}");
            }
        }
        assert_eq!(write_at(&s, 0x200 - 3, &src[..4]), None);
        assert_eq!(write_at(&s, 0x201, &[]), None);
        assert_eq!(read_at(&s, 0x1f0, &mut [0u8; 17]), None);
        assert_eq!(read_at(&s, usize::MAX, &mut [0u8; 1]), None);
    }

    #[test]
    fn forward_copies_are_exact_and_bounded() {
        let m = mem();
        let src: Vec<u8> = (0..0x300u32)
            .map(|i| (i.wrapping_mul(31) ^ (i >> 3)) as u8)
            .collect();
        assert!(m.write(GuestAddress(0x10000), &src).is_ok());
        let from = m.slice(GuestAddress(0x10000), 0x300).expect("mapped");
        let to = m.slice(GuestAddress(0x10400), 0x400).expect("mapped");
        for n in (0..200).chain([255, 256, 257, 511, 640, 703]) {
            for at in [0usize, 1, 12, 63, 64] {
                assert!(m.write(GuestAddress(0x10400), &[0xee; 0x400]).is_ok());
                let s = from.subslice(at, n).expect("source");
                let d = to.subslice(at + 5, n).expect("destination");
                assert_eq!(copy_forward(&d, &s), Some(()), "{n} at {at}");
                let mut back = [0u8; 0x400];
                assert!(m.read(GuestAddress(0x10400), &mut back).is_ok());
                assert!(
                    back[..at + 5].iter().all(|&b| b == 0xee),
                    "before, {n} at {at}"
                );
                assert_eq!(&back[at + 5..at + 5 + n], &src[at..at + n], "{n} at {at}");
                assert!(
                    back[at + 5 + n..].iter().all(|&b| b == 0xee),
                    "after, {n} at {at}"
                );
            }
        }
        // The portable loop, which this CPU may not take above.
        for n in [64usize, 65, 127, 128, 200, 703] {
            assert!(m.write(GuestAddress(0x10400), &[0xee; 0x400]).is_ok());
            let s = from.subslice(0, n).expect("source");
            let d = to.subslice(3, n).expect("destination");
            // SAFETY: `n >= 64` bytes inside each mapped slice.
            unsafe { copy_forward_64(d.ptr_guard_mut().as_ptr(), s.ptr_guard().as_ptr(), n) };
            let mut back = [0u8; 0x400];
            assert!(m.read(GuestAddress(0x10400), &mut back).is_ok());
            assert_eq!(&back[3..3 + n], &src[..n], "portable {n}");
            assert!(back[..3].iter().chain(&back[3 + n..]).all(|&b| b == 0xee));
        }
        let s = from.subslice(0, 100).expect("source");
        let d = to.subslice(0, 99).expect("destination");
        assert_eq!(copy_forward(&d, &s), None, "lengths differ");
    }

    /// A frontend that declares a region larger than its file (or at an
    /// offset past its end, or backed by something that is not a regular
    /// file) is refused at SET_MEM_TABLE: mapping it would succeed and the
    /// first touch past the end would SIGBUS the switch
    /// (tests/hostile.rs found this).
    #[test]
    fn regions_must_lie_inside_their_file() {
        let file = |len: u64| {
            let f = tempfile::tempfile().expect("tempfile");
            f.set_len(len).expect("set_len");
            f
        };
        let region =
            |size: u64, offset: u64| VhostUserMemoryRegion::new(0, size, 0x7f00_0000_0000, offset);
        let mib = 1 << 20;
        let ok = GuestMem::from_regions(&[region(mib, 0)], vec![file(mib)]);
        assert!(ok.is_ok(), "{ok:?}");
        let ok = GuestMem::from_regions(&[region(mib / 2, mib / 2)], vec![file(mib)]);
        assert!(ok.is_ok(), "{ok:?}");
        for (size, offset, len) in [
            (64 * mib, 0, mib),
            (mib, 2 * mib, mib),
            (mib, 4096, mib),
            (mib, u64::MAX - 4095, mib),
        ] {
            let r = GuestMem::from_regions(&[region(size, offset)], vec![file(len)]);
            assert!(
                matches!(r, Err(MemError::PastEof { index: 0 })),
                "size {size} offset {offset} file {len}: {r:?}"
            );
        }
        let (rd, _wr) = nix::unistd::pipe().expect("pipe");
        let r = GuestMem::from_regions(&[region(mib, 0)], vec![File::from(rd)]);
        assert!(matches!(r, Err(MemError::PastEof { index: 0 })), "{r:?}");
    }

    /// Two regions at distinct guest addresses but overlapping frontend
    /// addresses are refused: a ring address in the overlap would be
    /// ambiguous (an independent check found them accepted, issue 26).
    #[test]
    fn regions_may_not_overlap_in_frontend_addresses() {
        let mib = 1u64 << 20;
        let file = || {
            let f = tempfile::tempfile().expect("tempfile");
            f.set_len(mib).expect("set_len");
            f
        };
        let va = 0x7f00_0000_0000u64;
        let region = |gpa: u64, va: u64| VhostUserMemoryRegion::new(gpa, mib, va, 0);
        let apart = GuestMem::from_regions(
            &[region(0, va), region(mib, va + mib)],
            vec![file(), file()],
        );
        assert!(apart.is_ok(), "{apart:?}");
        for (a, b) in [(va, va + mib / 2), (va + mib / 2, va), (va, va)] {
            let r =
                GuestMem::from_regions(&[region(0, a), region(4 * mib, b)], vec![file(), file()]);
            assert!(
                matches!(r, Err(MemError::FrontendOverlap { .. })),
                "{a:#x} {b:#x}: {r:?}"
            );
        }
        // The region that starts first is named first, whatever the order.
        let r = GuestMem::from_regions(
            &[region(0, va + mib / 2), region(4 * mib, va)],
            vec![file(), file()],
        );
        assert!(
            matches!(
                r,
                Err(MemError::FrontendOverlap {
                    first: 1,
                    second: 0
                })
            ),
            "{r:?}"
        );
    }

    /// A frontend that shrinks its memory file after SET_MEM_TABLE: the
    /// next access used to be a SIGBUS that killed the switch
    /// (tests/hostile.rs found this). Now the access reads zeros
    /// and the memory says it is lost.
    #[test]
    fn a_file_shrunk_after_mapping_reads_zeros_and_is_lost() {
        let len = 64 * 1024u64;
        let f = tempfile::tempfile().expect("tempfile");
        f.set_len(len).expect("set_len");
        let shrink = f.try_clone().expect("dup");
        let region = VhostUserMemoryRegion::new(0, len, 0x7f00_0000_0000, 0);
        let m = GuestMem::from_regions(&[region], vec![f]).expect("maps");
        assert!(m.write(GuestAddress(0x1000), &[0xa5; 16]).is_ok());
        assert!(!m.lost());
        shrink.set_len(0).expect("shrink");
        let mut buf = [0xffu8; 16];
        assert!(m.read(GuestAddress(0x1000), &mut buf).is_ok());
        assert_eq!(buf, [0u8; 16]);
        assert!(m.lost());
        // Writes land in the zero pages; nothing else is affected.
        assert!(m.write(GuestAddress(0x2000), &[1u8; 16]).is_ok());
        let other = GuestMem::from_regions(
            &[VhostUserMemoryRegion::new(0, len, 0x7f00_0000_0000, 0)],
            vec![{
                let g = tempfile::tempfile().expect("tempfile");
                g.set_len(len).expect("set_len");
                g
            }],
        )
        .expect("maps");
        assert!(!other.lost());
        drop(m);
        drop(other);
    }
}
