//! Where a compiled trace's machine code and data live: `TraceMemory` (one
//! per trace) maps the sections the loader (`super::loader`) places with
//! `mmap`, protects them once they are relocated (`finalize`) and unmaps them
//! when dropped; and the process-wide count of mapped bytes (`live_bytes`).
//! Owns those mappings and nothing else: it must not know about traces, the
//! IR, LLVM or object files.
//!
//! The figures are page-rounded mapped bytes, not the sizes the sections need:
//! that is what a trace really costs the process, and what a code cache with a
//! byte budget has to count. Sections of the same kind (code, read-only data,
//! writable data) share pages, so a typical trace costs two or three pages.
//!
//! The manager assumes an instruction cache that stays coherent with data
//! writes (x86 and x86-64); another architecture would need a cache flush in
//! `finalize` before the code is run.

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Bytes mapped by every live `TraceMemory` in the process.
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Bytes of JIT code and data currently mapped in this process (all traces,
/// page-rounded).
pub fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// The system page size: the unit every figure here comes in.
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: `sysconf` only reads a configuration value.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        // Linux always answers; 4 KiB is the only sane fallback if it did not.
        if n > 0 {
            n as usize
        } else {
            4096
        }
    })
}

/// What a section becomes once its memory is finalized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Code,
    ReadOnly,
    Writable,
}

/// One `mmap`ed run of pages, filled from the bottom up.
#[derive(Debug)]
struct Region {
    base: *mut u8,
    len: usize,
    used: usize,
    kind: Kind,
    /// Finalized: its protection is final and nothing more goes into it
    /// (a later allocation gets new pages).
    sealed: bool,
}

impl Region {
    /// Where `size` bytes aligned to `align` would go, if they fit.
    fn fit(&self, size: usize, align: usize) -> Option<usize> {
        let addr = self.base as usize + self.used;
        let start = addr.checked_next_multiple_of(align)? - self.base as usize;
        (start.checked_add(size)? <= self.len).then_some(start)
    }
}

/// The size of one trace's mappings, as a handle that can be read apart from
/// the `TraceMemory` (statistics). Reads 0 once the mappings are gone.
#[derive(Clone, Debug, Default)]
pub struct MappedBytes(Arc<AtomicUsize>);

impl MappedBytes {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// The mappings of one trace's code and data; dropping it unmaps them.
#[derive(Debug)]
pub struct TraceMemory {
    regions: Vec<Region>,
    mapped: MappedBytes,
}

impl TraceMemory {
    /// A manager with nothing mapped, and the handle that reports its size.
    pub fn new() -> (TraceMemory, MappedBytes) {
        let mapped = MappedBytes::default();
        (TraceMemory { regions: Vec::new(), mapped: mapped.clone() }, mapped)
    }

    /// A handle on the size of these mappings.
    pub fn mapped(&self) -> MappedBytes {
        self.mapped.clone()
    }

    /// Room for `size` bytes aligned to `align` (0 means 1) in writable pages
    /// that become `kind` at `finalize`; null if the alignment is not a power
    /// of two or the system has no memory to map.
    pub fn allocate(&mut self, size: usize, align: usize, kind: Kind) -> *mut u8 {
        let align = align.max(1);
        if !align.is_power_of_two() {
            return ptr::null_mut();
        }
        let fits = self
            .regions
            .iter_mut()
            .filter(|r| r.kind == kind && !r.sealed)
            .find_map(|r| Some((r.fit(size, align)?, r)));
        if let Some((start, r)) = fits {
            r.used = start + size;
            // SAFETY: `start + size <= r.len`, so the result is inside the mapping.
            return unsafe { r.base.add(start) };
        }
        // mmap gives page alignment; anything stricter needs slack to align within.
        let page = page_size();
        let slack = align.saturating_sub(page);
        let Some(len) = size.max(1).checked_add(slack).and_then(|n| n.checked_next_multiple_of(page)) else {
            return ptr::null_mut();
        };
        // SAFETY: a fresh private anonymous mapping; it overlaps nothing of ours.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return ptr::null_mut();
        }
        LIVE_BYTES.fetch_add(len, Ordering::Relaxed);
        self.mapped.0.fetch_add(len, Ordering::Relaxed);
        let mut r = Region { base: base.cast(), len, used: 0, kind, sealed: false };
        let start = r.fit(size, align).expect("a fresh region has room for what it was sized for");
        r.used = start + size;
        // SAFETY: as above, inside the new mapping.
        let p = unsafe { r.base.add(start) };
        self.regions.push(r);
        p
    }

    /// Unmaps everything.
    fn release(&mut self) {
        for r in self.regions.drain(..) {
            // SAFETY: `base`/`len` are exactly a mapping made in `allocate`,
            // unmapped only here (the region leaves the list as it goes). Its
            // trace is being dropped, so nothing will execute or read it again.
            let rc = unsafe { libc::munmap(r.base.cast(), r.len) };
            // munmap fails only for arguments that were never a mapping, which
            // would be a bug here; count the bytes as gone either way so the
            // figures cannot drift upwards.
            debug_assert_eq!(rc, 0, "munmap of a JIT region failed");
            LIVE_BYTES.fetch_sub(r.len, Ordering::Relaxed);
            self.mapped.0.fetch_sub(r.len, Ordering::Relaxed);
        }
    }
}

impl TraceMemory {
    /// Gives every region allocated so far its final protection (code
    /// read+execute, read-only data read-only) and seals it. Call once the
    /// sections are written and relocated: nothing can write them after.
    pub fn finalize(&mut self) -> Result<(), String> {
        for r in self.regions.iter_mut().filter(|r| !r.sealed) {
            let prot = match r.kind {
                Kind::Code => libc::PROT_READ | libc::PROT_EXEC,
                Kind::ReadOnly => libc::PROT_READ,
                Kind::Writable => {
                    r.sealed = true;
                    continue;
                }
            };
            // SAFETY: `base`/`len` are exactly one of our live mappings.
            if unsafe { libc::mprotect(r.base.cast(), r.len, prot) } != 0 {
                return Err(format!("JIT memory: mprotect failed: {}", std::io::Error::last_os_error()));
            }
            r.sealed = true;
        }
        Ok(())
    }
}

// SAFETY: the regions are private mappings owned by this value alone (the
// raw pointers are just their addresses); moving the owner to another thread
// (the compile thread hands traces to the VM's) moves them along.
unsafe impl Send for TraceMemory {}

impl Drop for TraceMemory {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_share_pages_by_kind_and_are_unmapped() {
        let page = page_size();
        let (mut mm, mapped) = TraceMemory::new();
        let code = mm.allocate(100, 16, Kind::Code);
        let more = mm.allocate(10, 64, Kind::Code);
        let ro = mm.allocate(8, 8, Kind::ReadOnly);
        let rw = mm.allocate(page + 1, 8, Kind::Writable);
        for p in [code, more, ro, rw] {
            assert!(!p.is_null());
        }
        assert_eq!(more as usize % 64, 0);
        assert_eq!(more as usize - code as usize, 128, "second code section packed after the first");
        assert_eq!(mapped.get(), 4 * page, "one code page, one read-only page, two writable pages");

        // SAFETY: each pointer has room for what was asked, and the pages are
        // still writable before finalize.
        unsafe {
            // x86-64 `mov eax, 42; ret`.
            ptr::copy_nonoverlapping([0xb8u8, 42, 0, 0, 0, 0xc3].as_ptr(), code, 6);
            ro.cast::<u64>().write(7);
            rw.add(page).write(1);
        }
        mm.finalize().expect("mprotect");
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `code` holds a complete function of this type and is now executable.
            let f: extern "C" fn() -> u32 = unsafe { std::mem::transmute(code) };
            assert_eq!(f(), 42);
        }
        // SAFETY: read-only data stays readable after finalize.
        assert_eq!(unsafe { ro.cast::<u64>().read() }, 7);

        // A section after finalize gets its own page, not a sealed one.
        let late = mm.allocate(8, 8, Kind::ReadOnly);
        assert!(!late.is_null());
        assert_ne!(late as usize / page, ro as usize / page);
        assert_eq!(mapped.get(), 5 * page);

        drop(mm);
        assert_eq!(mapped.get(), 0, "drop unmaps everything");
    }

    #[test]
    fn large_alignment_and_empty_sections() {
        let page = page_size();
        let (mut mm, mapped) = TraceMemory::new();
        let p = mm.allocate(10, 4 * page, Kind::Code);
        assert!(!p.is_null());
        assert_eq!(p as usize % (4 * page), 0);
        let z = mm.allocate(0, 0, Kind::Writable);
        assert!(!z.is_null());
        assert!(mm.allocate(8, 3, Kind::Writable).is_null(), "alignment 3 is refused");
        assert!(mapped.get() >= 4 * page);
        drop(mm);
        assert_eq!(mapped.get(), 0);
    }
}
