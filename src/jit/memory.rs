//! Where a compiled trace's machine code and data live: an MCJIT memory
//! manager (`TraceMemory`, one per execution engine) that maps its sections
//! with `mmap`, protects them when MCJIT finalizes the module and unmaps them
//! when the engine is disposed of, and the process-wide count of mapped bytes
//! (`live_bytes`). Owns those mappings and nothing else: it must not know
//! about traces, the IR or LLVM beyond the `McjitMemoryManager` callbacks.
//!
//! The figures are page-rounded mapped bytes, not the sizes LLVM asked for:
//! that is what a trace really costs the process, and what a code cache with a
//! byte budget has to count. Sections of the same kind (code, read-only data,
//! writable data) share pages, so a typical trace costs two or three pages.
//!
//! The manager assumes an instruction cache that stays coherent with data
//! writes (x86 and x86-64); another architecture would need a cache flush in
//! `finalize_memory` before the code is run.

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use inkwell::memory_manager::McjitMemoryManager;

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

/// What a section becomes once MCJIT finalizes the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
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
    /// (MCJIT may allocate again for a later module; that gets new pages).
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

/// The size of one trace's mappings, shared between its memory manager (which
/// LLVM owns) and the trace (which reports it). Reads 0 once the mappings are
/// gone.
#[derive(Clone, Debug, Default)]
pub struct MappedBytes(Arc<AtomicUsize>);

impl MappedBytes {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// An MCJIT memory manager for one execution engine. LLVM owns it once it is
/// handed to the engine and calls `destroy` when the engine is disposed of
/// (or could not be made); `Drop` unmaps too, so a manager that never reached
/// LLVM leaks nothing either.
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

    fn allocate(&mut self, size: usize, align: usize, kind: Kind) -> *mut u8 {
        // LLVM passes alignment 0 for "don't care" in some paths.
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
            // MCJIT turns a null section into a fatal error of its own.
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

    /// Unmaps everything. Idempotent (LLVM's `destroy` and then `Drop`).
    fn release(&mut self) {
        for r in self.regions.drain(..) {
            // SAFETY: `base`/`len` are exactly a mapping made in `allocate`,
            // unmapped only here (the region leaves the list as it goes). The
            // engine that ran code from it is being disposed of, so nothing
            // will execute or read it again.
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

impl McjitMemoryManager for TraceMemory {
    fn allocate_code_section(&mut self, size: usize, alignment: u32, _id: u32, _name: &str) -> *mut u8 {
        self.allocate(size, alignment as usize, Kind::Code)
    }

    fn allocate_data_section(&mut self, size: usize, alignment: u32, _id: u32, _name: &str, ro: bool) -> *mut u8 {
        self.allocate(size, alignment as usize, if ro { Kind::ReadOnly } else { Kind::Writable })
    }

    /// Called after MCJIT has applied relocations (and registered the
    /// unwind tables), so nothing writes code or read-only data after this.
    fn finalize_memory(&mut self) -> Result<(), String> {
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

    fn destroy(&mut self) {
        self.release();
    }
}

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
        let code = mm.allocate_code_section(100, 16, 1, ".text");
        let more = mm.allocate_code_section(10, 64, 2, ".text.more");
        let ro = mm.allocate_data_section(8, 8, 3, ".rodata.cst8", true);
        let rw = mm.allocate_data_section(page + 1, 8, 4, ".data", false);
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
        mm.finalize_memory().expect("mprotect");
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `code` holds a complete function of this type and is now executable.
            let f: extern "C" fn() -> u32 = unsafe { std::mem::transmute(code) };
            assert_eq!(f(), 42);
        }
        // SAFETY: read-only data stays readable after finalize.
        assert_eq!(unsafe { ro.cast::<u64>().read() }, 7);

        // A section after finalize gets its own page, not a sealed one.
        let late = mm.allocate_data_section(8, 8, 5, ".rodata", true);
        assert!(!late.is_null());
        assert_ne!(late as usize / page, ro as usize / page);
        assert_eq!(mapped.get(), 5 * page);

        mm.destroy();
        assert_eq!(mapped.get(), 0);
        drop(mm);
        assert_eq!(mapped.get(), 0, "destroy then drop unmaps once");
    }

    #[test]
    fn large_alignment_and_empty_sections() {
        let page = page_size();
        let (mut mm, mapped) = TraceMemory::new();
        let p = mm.allocate_code_section(10, (4 * page) as u32, 1, ".text");
        assert!(!p.is_null());
        assert_eq!(p as usize % (4 * page), 0);
        let z = mm.allocate_data_section(0, 0, 2, ".bss", false);
        assert!(!z.is_null());
        assert!(mm.allocate_data_section(8, 3, 3, ".bad", false).is_null(), "alignment 3 is refused");
        assert!(mapped.get() >= 4 * page);
        drop(mm);
        assert_eq!(mapped.get(), 0);
    }
}
