//! Native recursion (function-entry traces calling themselves) against the
//! VM's limits, which `traces/` cannot set: with a small
//! `Config::max_call_depth` or value stack, a recursion that overflows must
//! fail with the same error, at the same depth and with the same stack trace
//! under the JIT as in the interpreter, and recursion that fits must give the
//! same results. The JIT runs must really have made native calls: the entry
//! trace of the recursive function is entered far more often than the
//! interpreter entered it.

use vela::{Config, Error, Vm};

const PROGRAM: &str = "
fn down(n, stop) {
    if n == stop { return 0 }
    return down(n + 1, stop) + 1
}
fn fib(n) { if n < 2 { return n } return fib(n - 1) + fib(n - 2) }
fn warm() {
    let s = 0
    for i in 0..300 { s += down(0, 20) + fib(i % 12) }
    return s
}
";

/// Runs `PROGRAM`, then `call`, in a fresh VM; returns the result or error
/// and the JIT report.
fn run(jit: bool, cfg: Config, call: &str) -> (Result<String, Error>, String) {
    let mut vm = Vm::new(Config { jit, hot_loop: 2, ..cfg });
    vm.run_source(PROGRAM, "rec.vela").expect("defines the functions");
    vm.run_source("let w = warm()", "warm.vela").expect("warm-up runs");
    let r = vm.run_source(&format!("let r = {call}"), "call.vela").map(|_| vm.display(vm.global("r").unwrap()));
    (r, vm.jit_report())
}

fn entries(report: &str) -> u64 {
    report
        .lines()
        .filter_map(|l| l.split(": entries ").nth(1))
        .filter_map(|r| r.split(',').next()?.trim().parse::<u64>().ok())
        .sum()
}

fn same(cfg: Config, call: &str) -> Result<String, Error> {
    let (off, _) = run(false, cfg.clone(), call);
    let (on, report) = run(true, cfg, call);
    match (&off, &on) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{call}: results differ\n{report}"),
        (Err(a), Err(b)) => {
            assert_eq!(a.message, b.message, "{call}: messages differ\n{report}");
            assert_eq!(a.trace, b.trace, "{call}: stack traces differ\n{report}");
        }
        _ => panic!("{call}: one mode failed: off {off:?}, on {on:?}\n{report}"),
    }
    assert!(entries(&report) > 1000, "{call}: no native recursion\n{report}");
    on
}

#[test]
fn call_depth_limit_is_the_interpreters() {
    for depth in [300, 301, 302, 500, 1000, 1001, 4000] {
        let cfg = Config { max_call_depth: depth, ..Config::default() };
        for stop in [depth as i64 - 10, depth as i64 - 4, depth as i64 - 3, depth as i64, -1] {
            let r = same(cfg.clone(), &format!("down(0, {stop})"));
            if stop == -1 {
                let e = r.expect_err("endless recursion overflows");
                assert_eq!(e.message, "stack overflow");
                assert_eq!(e.trace.len(), depth);
            }
        }
    }
}

#[test]
fn value_stack_limit_is_the_interpreters() {
    for slots in [2000, 2001, 2003, 5000, 20000] {
        let cfg = Config { stack_slots: slots, ..Config::default() };
        for stop in [100, 300, 400, 1000, 2000, -1] {
            let r = same(cfg.clone(), &format!("down(0, {stop})"));
            if stop == -1 {
                assert_eq!(r.expect_err("endless recursion overflows").message, "stack overflow");
            }
        }
        same(cfg.clone(), "fib(18)").expect("fits");
    }
}
