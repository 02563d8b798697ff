//! `Config`: every knob of a VM, set by the host or the CLI.

pub use crate::jit::state::DumpFlags;

/// How a VM is built. `Config::default()` is what `vela FILE` uses.
#[derive(Clone, Debug)]
pub struct Config {
    /// Run the trace JIT (`--jit=on|off`, env `VELA_JIT=off`).
    pub jit: bool,
    /// Back-edges before a loop is recorded (`--hot-loop`). LuaJIT uses 56,
    /// but its compiles take tens of microseconds and an LLVM compile takes
    /// about 5 ms: as much as interpreting some 50,000 iterations of a small
    /// loop. At 3000 the wait costs a tenth of a compile, and loops that run
    /// only a few thousand times in all (an outer loop whose inner loop is
    /// native, a loop over a short array) are not compiled at all.
    /// Measured with `hot_exit` (wall, `perf stat -r 8`, 200/100 against
    /// 3000/2000): matrix_multiply 0.151 -> 0.119 s (9 traces -> 5),
    /// spectral_norm 0.096 -> 0.088, fannkuch_redux 0.306 -> 0.276,
    /// nested_loops 0.146 -> 0.139, sieve 0.101 -> 0.096, mandelbrot 0.099
    /// -> 0.094, sum_loop and nbody equal.
    pub hot_loop: u32,
    /// Times a trace exit is taken before a side trace is recorded from it
    /// (`--hot-exit`). LuaJIT's hotexit is 10; here a compile costs as much as
    /// a few thousand exits through the interpreter, and a side trace for an
    /// exit taken a few hundred times in all (an inner loop's exit when the
    /// outer loop runs 340 times) never pays for itself. Chosen with
    /// `hot_loop` (above).
    pub hot_exit: u32,
    /// Entries of a side trace that ends back at its root's loop header
    /// before the root is recompiled with it merged in (`--hot-merge`; 0:
    /// never): the branch then runs inside the loop instead of crossing
    /// between traces through the stack (docs/architecture.md, "Trace
    /// trees"). A merge recompiles the root with its side traces (about
    /// 10 ms) and saves about 6 ns per entry, so it waits until the side
    /// trace has shown it runs often.
    pub hot_merge: u64,
    /// Most bytes of machine code the JIT keeps (`--jit-cache`); past it the
    /// least recently used traces are evicted.
    pub jit_cache: usize,
    /// IR instructions before a recording is abandoned (`--max-trace`).
    pub max_trace: usize,
    /// Log trace starts, aborts with reasons, and blacklisting to stderr.
    pub jit_verbose: bool,
    /// Print each trace's IR / LLVM IR / assembly to stderr as it is compiled.
    pub jit_dump: DumpFlags,
    /// Compile traces on a thread of their own while the interpreter goes on
    /// running the loop (`--jit-background`). Off (the default), a trace is
    /// compiled and attached the moment its recording ends, so runs are
    /// repeatable to the last statistic. Off is also faster on this suite:
    /// the interpreter gains little while it waits (a native loop is 5-10x
    /// faster), and on a loaded 2-core machine the extra thread cost 10-40%
    /// (docs/architecture.md). Dumps always compile synchronously.
    pub jit_background: bool,
    /// Heap limit in bytes; exceeding it is the runtime error `memory limit exceeded`.
    pub mem_limit: usize,
    /// Stop with an error after this many executed instructions (checked at
    /// loop headers and calls).
    pub instruction_budget: Option<u64>,
    /// Value-stack size in slots (16 bytes each); running out is `stack overflow`.
    pub stack_slots: usize,
    /// Maximum call depth; deeper is `stack overflow`.
    pub max_call_depth: usize,
}

/// `Config::hot_merge`'s default.
pub const HOT_MERGE: u64 = 1_000_000;

impl Default for Config {
    fn default() -> Self {
        Config {
            jit: std::env::var("VELA_JIT").map(|v| v != "off").unwrap_or(true),
            hot_loop: 3000,
            hot_exit: 2000,
            hot_merge: HOT_MERGE,
            max_trace: 2000,
            jit_verbose: false,
            jit_dump: DumpFlags::default(),
            jit_background: false,
            mem_limit: 4 << 30,
            instruction_budget: None,
            jit_cache: 64 << 20,
            stack_slots: 1 << 21,
            max_call_depth: 200_000,
        }
    }
}
