//! A loop's side trace that reaches its function's `return` performs the
//! return itself (`ret`). When the host called that function, the frame the
//! trace pops is the one `Vm::execute` was asked to run, and the call must
//! still come back with the right value (`JitState::returned`): `traces/`
//! cannot make host calls, so this is checked here.

use vela::{Config, Vm};

const PROGRAM: &str = "
fn tri(n) {
    let s = 0
    for i in 0..n { s += i }
    return s * 2 + 1
}
fn ratio(n) {
    let s = 0.0
    for i in 0..n { s += 1.0 }
    return s / 2.0
}
";

/// The trace lines of a `--jit-stats` report: (name and place, entries, exits).
fn trace_lines(report: &str) -> Vec<(String, u64, u64)> {
    report
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("jit: ")?.split_once(": entries ")?;
            let (entries, rest) = rest.split_once(", exits ")?;
            let exits = rest.split_whitespace().next()?;
            Some((name.to_string(), entries.parse().ok()?, exits.parse().ok()?))
        })
        .collect()
}

fn calls(jit: bool) -> (Vec<String>, String) {
    let mut vm = Vm::new(Config { jit, hot_loop: 2, hot_exit: 2, ..Config::default() });
    vm.run_source(PROGRAM, "ret.vela").expect("defines the functions");
    let mut out = Vec::new();
    for k in 0..300i64 {
        let t: i64 = vm.call("tri", (k % 17 + 1,)).expect("tri runs");
        let r: f64 = vm.call("ratio", (k % 5 + 3,)).expect("ratio runs");
        out.push(format!("{t} {r}"));
    }
    (out, vm.jit_report())
}

#[test]
fn a_side_trace_returns_from_a_function_the_host_called() {
    let (off, _) = calls(false);
    let (on, report) = calls(true);
    let expected: Vec<String> = (0..300i64)
        .map(|k| {
            let n = k % 17 + 1;
            format!("{} {}", n * (n - 1) + 1, ((k % 5 + 3) as f64) / 2.0)
        })
        .collect();
    assert_eq!(off, expected);
    assert_eq!(on, off, "the JIT VM computed something else");

    // Each loop's exit at its end grew a side trace that ran the return
    // itself: entered many times, it never left through an exit.
    let sides: Vec<_> = trace_lines(&report).into_iter().filter(|(name, _, _)| name.contains("(side of ")).collect();
    for f in ["(in tri)", "(in ratio)"] {
        let returning = sides.iter().find(|(name, entries, exits)| name.contains(f) && *entries >= 100 && *exits == 0);
        assert!(returning.is_some(), "no side trace of {f} returned by itself:\n{report}");
    }
}
