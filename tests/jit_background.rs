//! Compiling traces on a background thread (`Config::jit_background`): the interpreter
//! goes on while LLVM works, a finished trace is attached at the next loop
//! header or call that looks, a trace whose assumptions broke while it
//! compiled is dropped, not attached, and a VM can be dropped with a compile
//! in flight. `traces/` runs every scenario in this mode too, but checks only
//! its output there: when a trace gets attached depends on the machine.

use vela::{Config, Value, Vm};

fn vm() -> Vm {
    Vm::new(Config { jit: true, hot_loop: 2, jit_background: true, ..Config::default() })
}

fn int_global(vm: &Vm, name: &str) -> i64 {
    match vm.global(name) {
        Some(Value::Int(v)) => v,
        other => panic!("`{name}` is {other:?}"),
    }
}

/// The entries of the report's trace lines, summed.
fn trace_entries(report: &str) -> u64 {
    report
        .lines()
        .filter(|l| l.starts_with("jit: trace"))
        .filter_map(|l| l.split("entries ").nth(1)?.split(',').next()?.trim().parse::<u64>().ok())
        .sum()
}

#[test]
fn a_trace_compiled_in_the_background_is_attached_and_runs() {
    let mut vm = vm();
    // Millions of iterations: the interpreter is still in the loop long after
    // the trace has compiled (a few milliseconds), however loaded the machine.
    let src = "fn f() {\n let t = 0\n for i in 0..3000000 { if i % 3 == 0 { t += i } else { t -= 1 } }\n return t\n}\n\
               let total = f()\n";
    vm.run_source(src, "<bg>").expect("runs");
    let expected: i64 = (0..3_000_000i64).map(|i| if i % 3 == 0 { i } else { -1 }).sum();
    assert_eq!(int_global(&vm, "total"), expected);
    let stats = vm.jit_stats();
    let report = vm.jit_report();
    assert!(stats.background >= 1, "nothing compiled in the background:\n{report}");
    assert!(stats.compiled >= 1, "no trace attached:\n{report}");
    assert!(trace_entries(&report) > 0, "the attached trace never ran:\n{report}");
    assert!(report.contains("jit: compiled in the background"), "{report}");
}

#[test]
fn a_trace_whose_global_changed_while_it_compiled_is_dropped() {
    let mut vm = vm();
    // `run`'s loop is recorded on its second back-edge with `k` = 5 baked in;
    // `k` changes microseconds later, long before LLVM is done. The trace
    // must not be attached, and the loop is recorded again with `k` = 7.
    // Two million calls: the program must outlast that second compile too,
    // the process's first LLVM work on a cold machine included.
    let src = "let k = 5\n\
               fn run() {\n let t = 0\n for i in 0..10 { t += k }\n return t\n}\n\
               fn many() {\n let b = 0\n for j in 0..2000000 { b += run() }\n return b\n}\n\
               let a = run()\n\
               k = 7\n\
               let b = many()\n";
    vm.run_source(src, "<stale>").expect("runs");
    assert_eq!(int_global(&vm, "a"), 50);
    assert_eq!(int_global(&vm, "b"), 2_000_000 * 70);
    let stats = vm.jit_stats();
    let report = vm.jit_report();
    assert!(stats.dropped >= 1, "the stale trace was not dropped:\n{report}");
    assert!(stats.compiled >= 1, "the loop was not compiled again:\n{report}");
}

#[test]
fn a_vm_dropped_while_compiling_waits_for_the_compile_thread() {
    let mut in_flight = 0;
    for round in 0..10 {
        let mut vm = vm();
        // Ends right after the recordings are handed to the compiler.
        let src = "fn f() {\n let s = 0\n for i in 0..4 { for j in 0..4 { s += i * j } }\n return s\n}\nlet s = f()\n";
        vm.run_source(src, "<drop>").expect("runs");
        assert_eq!(int_global(&vm, "s"), 36, "round {round}");
        let report = vm.jit_report();
        in_flight += (report.contains("still compiling") && !report.contains("still compiling 0")) as u32;
        drop(vm);
    }
    // The program ends microseconds after handing its traces over; LLVM
    // takes milliseconds, so the drops above did find compiles in flight.
    assert!(in_flight > 0, "no VM was dropped with a compile in flight");
}

#[test]
fn the_default_synchronous_mode_attaches_before_the_loop_goes_on() {
    let mut vm = Vm::new(Config { jit: true, hot_loop: 2, ..Config::default() });
    let src = "fn f() {\n let s = 0\n for i in 0..100 { s += i }\n return s\n}\nlet s = f()\n";
    vm.run_source(src, "<sync>").expect("runs");
    assert_eq!(int_global(&vm, "s"), 4950);
    let stats = vm.jit_stats();
    assert_eq!(stats.compiled, 1, "{}", vm.jit_report());
    assert_eq!(stats.background, 0, "{}", vm.jit_report());
    // Attached at once: every iteration after the recorded one ran native.
    assert!(trace_entries(&vm.jit_report()) >= 1, "{}", vm.jit_report());
}

#[test]
fn a_merge_compiled_in_the_background_is_attached_while_the_loop_runs_natively() {
    // The branch's side trace is merged after 1000 entries; the root runs
    // natively from checkpoint to checkpoint (every 1024 entries) and never
    // comes back to its loop header in the interpreter, so the checkpoint
    // is where the finished merge must be attached. 40 million iterations,
    // about 0.1 s native: the loop outlasts the recompile (5-15 ms) even
    // with the other tests compiling on both cores. With 6 million (about
    // 20 ms) the loop ended first in one run in four.
    let mut vm = Vm::new(Config {
        jit: true,
        hot_loop: 2,
        hot_exit: 2,
        hot_merge: 1000,
        jit_background: true,
        ..Config::default()
    });
    let src = "fn f() {\n let t = 0\n let odd = 0\n for i in 0..40000000 { t += i\n if i % 3 == 1 { odd += 1 } }\n return t + odd\n}\n\
               let total = f()\n";
    vm.run_source(src, "<bg merge>").expect("runs");
    let expected: i64 = (0..40_000_000i64).map(|i| i + i64::from(i % 3 == 1)).sum();
    assert_eq!(int_global(&vm, "total"), expected);
    let stats = vm.jit_stats();
    let report = vm.jit_report();
    assert_eq!(stats.merged, 1, "the merge was not attached:\n{report}");
    assert!(report.contains("(merged)"), "{report}");
}
