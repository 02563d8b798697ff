//! `Config`: every knob of a VM, set by the host or the CLI.

/// How a VM is built. `Config::default()` is what `vela FILE` uses.
#[derive(Clone, Debug)]
pub struct Config {
    /// Run the trace JIT (`--jit=on|off`, env `VELA_JIT=off`). The JIT is not
    /// built yet: the flag is accepted and recorded.
    pub jit: bool,
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

impl Default for Config {
    fn default() -> Self {
        Config {
            jit: std::env::var("VELA_JIT").map(|v| v != "off").unwrap_or(true),
            mem_limit: 4 << 30,
            instruction_budget: None,
            stack_slots: 1 << 21,
            max_call_depth: 200_000,
        }
    }
}
