//! `Config`: every knob of a VM, set by the host or the CLI.

pub use crate::jit::state::DumpFlags;

/// How a VM is built. `Config::default()` is what `vela FILE` uses.
#[derive(Clone, Debug)]
pub struct Config {
    /// Run the trace JIT (`--jit=on|off`, env `VELA_JIT=off`).
    pub jit: bool,
    /// Back-edges before a loop is recorded (`--hot-loop`). LuaJIT uses 56;
    /// an LLVM compile costs about as much as a few thousand interpreted loop
    /// iterations, so VelaVM waits a little longer before committing to one.
    pub hot_loop: u32,
    /// Times a trace exit is taken before a side trace is recorded from it
    /// (`--hot-exit`). LuaJIT's hotexit is 10, but an LLVM compile (about
    /// 5 ms) costs as much as thousands of exits through the interpreter, and
    /// many exits taken 10 times are rare paths: at 100 sieve compiles 9
    /// traces instead of 13, and sieve, fannkuch_redux and spectral_norm ran
    /// 7-8% faster, the rest within 3% (idle machine, 5 runs each).
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
            hot_loop: 200,
            hot_exit: 100,
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
