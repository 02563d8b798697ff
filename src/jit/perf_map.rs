//! Names the JIT's machine code for `perf`: with the environment variable
//! `VELA_PERF_MAP` set, every compiled function's address, size and name
//! (`trace3 file.vela:12 (in f).body`) is appended to `/tmp/perf-<pid>.map`,
//! the symbol file `perf report` reads for code that has no ELF file behind
//! it. Owns that file; must not know about traces.
//!
//! The file is never trimmed: an evicted trace's lines stay, and a later trace
//! may reuse its addresses (perf then shows whichever name it finds first).

use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use super::loader::Function;

/// The open map file, or `None` when not asked for or it cannot be created
/// (profiling is best effort: the run goes on either way).
fn file() -> &'static Mutex<Option<File>> {
    static FILE: OnceLock<Mutex<Option<File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let wanted = std::env::var_os("VELA_PERF_MAP").is_some();
        let path = format!("/tmp/perf-{}.map", std::process::id());
        Mutex::new(wanted.then(|| File::create(path).ok()).flatten())
    })
}

/// Appends `functions` to the map, if one is being written.
pub fn record(functions: &[Function]) {
    let Ok(mut guard) = file().lock() else { return };
    let Some(f) = guard.as_mut() else { return };
    for func in functions {
        // perf's format: hex start, hex size, name to the end of the line.
        let _ = writeln!(f, "{:x} {:x} {}", func.address, func.size, func.name.replace('\n', " "));
    }
}
