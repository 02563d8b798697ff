//! The report's whole-run compile figure (`JitStats::compiles`,
//! `compile_total_ms`, the `jit: compiling took` line): every compile the
//! back end finished counts once, recompiles that merge side traces
//! included, and the time covers at least each live trace's own compile.

use vela::{Config, Value, Vm};

#[test]
fn every_compile_counts_in_the_total_recompiles_included() {
    // A branch taken every third iteration: a root trace, a side trace for
    // the branch, then a recompile of the root with the side trace merged.
    let mut vm = Vm::new(Config { jit: true, hot_loop: 2, hot_exit: 2, hot_merge: 1000, ..Config::default() });
    let src = "fn f() {\n let t = 0\n for i in 0..30000 { if i % 3 == 1 { t += 2 } else { t += 1 } }\n return t\n}\n\
               let total = f()\n";
    vm.run_source(src, "<total>").expect("runs");
    assert!(matches!(vm.global("total"), Some(Value::Int(40000))), "{:?}", vm.global("total"));
    let stats = vm.jit_stats();
    let report = vm.jit_report();
    assert!(stats.merged >= 1, "no recompile merged the side trace:\n{report}");
    let recompiles = stats.merge_ms.len() as u64;
    assert_eq!(stats.compiles, stats.compiled + recompiles, "{report}");
    let first_and_merges: f64 = stats.first_compile_ms.unwrap_or(0.0) + stats.merge_ms.iter().sum::<f64>();
    assert!(stats.compile_total_ms >= first_and_merges, "{report}");
    let line = format!("({} compiles, LLVM start-up included)", stats.compiles);
    assert!(report.lines().any(|l| l.starts_with("jit: compiling took ") && l.ends_with(&line)), "{report}");
}

#[test]
fn a_run_that_compiles_nothing_reports_no_total() {
    let mut vm = Vm::new(Config { jit: true, ..Config::default() });
    vm.run_source("let x = 1 + 2\n", "<none>").expect("runs");
    let stats = vm.jit_stats();
    assert_eq!((stats.compiles, stats.compile_total_ms), (0, 0.0));
    assert!(!vm.jit_report().contains("compiling took"), "{}", vm.jit_report());
}
