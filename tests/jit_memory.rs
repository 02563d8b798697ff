//! The JIT gives machine-code memory back: the process-wide count of mapped
//! JIT bytes (`vela::jit::memory::live_bytes`) rises by exactly a trace's
//! `code_bytes()` when it is compiled and falls back when it is dropped, and
//! a VM's traces go with the VM.
//!
//! One test in its own binary on purpose: the counter is process-wide, so
//! nothing else may compile traces while it is read.

use vela::jit::{backend, memory};
use vela::{Config, Value, Vm};

const COUNTING_LOOP: &str = "0000 int  > sload  #0 S0\n0001 int    kint   1\n0002        loop\n0003 int    phi    0000 0004\n0004 int  > addov  0003 0001 S1\nS0 pc=0 at=0000\nS1 pc=0 at=0004 #0=0003\n";

#[test]
fn jit_memory_is_returned() {
    let trace = vela_ir::parse(COUNTING_LOOP).expect("parses");
    // LLVM's one-time set-up, and the door every trace is entered through
    // (made by the first compile and never freed), happen outside the
    // measured window.
    drop(backend::compile(&trace, "first").expect("compiles"));
    let before = memory::live_bytes();

    let mut traces = Vec::new();
    let mut total = 0;
    for k in 0..30 {
        let c = backend::compile(&trace, &format!("t{k}")).expect("compiles");
        assert!(c.code_bytes() > 0);
        total += c.code_bytes();
        assert_eq!(memory::live_bytes(), before + total, "trace {k}");
        traces.push(c);
    }
    // Free from the middle, as an evicting cache would.
    while !traces.is_empty() {
        let c = traces.remove(traces.len() / 2);
        total -= c.code_bytes();
        drop(c);
        assert_eq!(memory::live_bytes(), before + total);
    }
    assert_eq!(memory::live_bytes(), before);

    // The same through a VM: its traces are freed when it is dropped.
    let config = Config { jit: true, hot_loop: 2, ..Config::default() };
    let mut vm = Vm::new(config);
    // In functions: the JIT does not trace loops that assign globals.
    let src = "fn ints() {\n let s = 0\n for i in 0..100000 { s = s + i % 7 }\n return s\n}\n\
               fn floats() {\n let t = 0.0\n let j = 0\n while j < 50000 { t = t + 0.5\n j = j + 1 }\n return t\n}\n\
               let s = ints()\nlet t = floats()\n";
    vm.run_source(src, "jit_memory.vela").expect("runs");
    let sum: i64 = (0..100000).map(|i| i % 7).sum();
    assert!(matches!(vm.global("s"), Some(Value::Int(s)) if s == sum), "{:?}", vm.global("s"));
    assert!(matches!(vm.global("t"), Some(Value::Float(f)) if f == 25000.0));
    assert!(memory::live_bytes() > before, "the VM compiled traces");
    drop(vm);
    assert_eq!(memory::live_bytes(), before);

    // Compiling in the background, traces may still be in the compile
    // thread's hands, or finished and never collected, when the VM goes:
    // their memory goes too (dropping the VM joins the thread).
    for round in 0..5 {
        let mut vm = Vm::new(Config { jit: true, hot_loop: 2, jit_background: true, ..Config::default() });
        vm.run_source(src, "jit_memory.vela").expect("runs");
        drop(vm);
        assert_eq!(memory::live_bytes(), before, "round {round}");
    }
}
