//! Conformance tests for the Vela language (see /work/shared/vela-language.md).
//!
//! Every `tests/lang/<topic>/<name>.vela` program is run with the `vela` binary
//! in each of the `MODES` (and, if it has a loop, the `LOOP_MODES`), from the
//! crate root, as
//! `vela [mode flags] [// flags: ...] tests/lang/<topic>/<name>.vela`, and checked
//! against:
//!
//! - `<name>.out`: the exact expected stdout (no file: stdout must be empty);
//! - `// exit: N`: the expected exit status (default 0; runtime error 1,
//!   compile error 2);
//! - `// stderr: TEXT` (any number): each TEXT must occur in stderr, in the order
//!   given (each search starts where the previous match ended). Without any
//!   `// stderr:` line, stderr must be empty;
//! - `// flags: A B ...`: extra command-line flags for this program.
//!
//! Directives are whole-line `//` comments anywhere in the program.
//!
//! Extra checks made for every program:
//! - exit 1 (runtime error): stderr starts with `error: `, has a `stack traceback:`
//!   line and at least one frame line `  at NAME (FILE:LINE)` naming this file;
//! - exit 2 (compile error): for each `// stderr:` text holding `FILE:LINE:COL`
//!   of this file, stderr shows source line LINE and, on one of the next lines,
//!   a `^` exactly under column COL (the caret run starts there);
//! - every mode gives the same stdout, stderr and exit status.
//!
//! All failures are gathered and reported in one panic. `VELA_TEST_FILTER=text`
//! runs only the programs whose path (`tests/lang/...`) contains `text`.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{
    check_caret, check_run, check_stderr_in_order, check_traceback, collect, command_line, compare_modes, diff,
    failure_report, find_line_col, load_program, mode_label, parse_directives, run_parallel, run_vela, Directives,
    Program, RunOutput,
};

/// Command-line flags of each execution mode; every program runs in each.
const MODES: &[&[&str]] = &[&["--jit=off"], &["--hot-loop=2"]];

/// Further JIT modes, for the programs with a loop: side traces grown from
/// an exit's second use (and merged into their root at its first checkpoint
/// after two entries), and that with a code cache small enough for
/// multi-loop programs to evict traces. Both only change what happens once a
/// trace exists, and traces start only at loop headers, so a program without
/// a loop would run exactly as under `--hot-loop=2` (three quarters of the
/// programs: running them again would nearly double the test's time).
const LOOP_MODES: &[&[&str]] =
    &[&["--hot-loop=2", "--hot-exit=2", "--hot-merge=2"], &["--hot-loop=2", "--hot-exit=2", "--jit-cache=16384"]];

/// Whether `source` may hold a loop: some word of it is `for`, `while` or
/// `loop` (in a comment or a string too, which only costs extra runs).
fn may_loop(source: &str) -> bool {
    source.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| matches!(w, "for" | "while" | "loop"))
}

const LANG_DIR: &str = "tests/lang";

/// Runs one program in every mode; returns its failure reports.
fn run_program(root: &Path, prog: &Program) -> Vec<String> {
    let loaded = match load_program(prog) {
        Ok(l) => l,
        Err(report) => return vec![report],
    };
    let mut failures = Vec::new();
    let mut results: Vec<(String, RunOutput)> = Vec::new();
    let extra: &[&[&str]] = if may_loop(&loaded.source) { LOOP_MODES } else { &[] };
    for mode in MODES.iter().chain(extra) {
        let label = mode_label(mode);
        let out = run_vela(root, &command_line(mode, &loaded.directives, &prog.rel));
        let problems = check_run(&prog.rel, &loaded, &out);
        if !problems.is_empty() {
            failures.push(failure_report(&prog.rel, &label, problems));
        }
        results.push((label, out));
    }
    // Every mode must behave the same.
    failures.extend(compare_modes(&prog.rel, &results));
    failures
}

#[test]
fn lang() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let filter = std::env::var("VELA_TEST_FILTER").ok().filter(|f| !f.is_empty());
    let mut programs = Vec::new();
    let mut orphans = Vec::new();
    collect(&root.join(LANG_DIR), LANG_DIR, &mut programs, &mut orphans);
    if let Some(f) = &filter {
        programs.retain(|p| p.rel.contains(f.as_str()));
        orphans.retain(|p| p.contains(f.as_str()));
    }
    assert!(
        !programs.is_empty(),
        "no Vela programs found under {LANG_DIR}{}",
        filter.as_ref().map(|f| format!(" matching VELA_TEST_FILTER={f:?}")).unwrap_or_default()
    );

    let failures = run_parallel(&programs, |prog| run_program(root, prog));
    let failed_programs = failures.len();
    let mut report = String::new();
    for (_, fs) in &failures {
        for f in fs {
            report.push_str(f);
        }
    }
    for o in &orphans {
        let _ = writeln!(report, "=== {o}\n  .out file without a .vela program");
    }
    let mut modes: Vec<String> = MODES.iter().map(|m| format!("[{}]", m.join(" "))).collect();
    modes.extend(LOOP_MODES.iter().map(|m| format!("[{}] (programs with loops)", m.join(" "))));
    if !report.is_empty() {
        panic!(
            "\n{report}\n{failed_programs} of {} Vela programs failed (modes {}){}\n",
            programs.len(),
            modes.join(", "),
            if orphans.is_empty() { String::new() } else { format!("; {} orphan .out files", orphans.len()) }
        );
    }
    eprintln!("{} Vela programs passed in modes {}", programs.len(), modes.join(", "));
}

// ---------------------------------------------------------------------------
// Self-checks of the harness (they do not run `vela`).

#[test]
fn harness_parses_directives() {
    let src = "// exit: 1\n  // stderr: error: integer overflow\n// stderr:   at f (x.vela:3)  \n\
               //flags: --mem-limit=1000 --x\n// exits early, not a directive\nprint(1) // exit: 5\n";
    let d = parse_directives(src).unwrap();
    assert_eq!(d.exit, 1);
    assert_eq!(d.stderr, vec!["error: integer overflow".to_string(), "at f (x.vela:3)".to_string()]);
    assert_eq!(d.flags, vec!["--mem-limit=1000".to_string(), "--x".to_string()]);
    assert_eq!(parse_directives("print(1)\n").unwrap(), Directives::default());
    assert!(parse_directives("// exit: one\n").is_err());
    assert!(parse_directives("// exit: 1\n// exit: 2\n").is_err());
    assert!(parse_directives("// stderr:\n").is_err());
    assert!(parse_directives("// stdout: 1\n").is_err());
}

#[test]
fn harness_finds_loops() {
    assert!(may_loop("fn main() {\n  for i in 0..3 { print(i) }\n}\n"));
    assert!(may_loop("let x = 1; while x < 3 { x += 1 }"));
    assert!(may_loop("loop{ break }"));
    assert!(!may_loop("fn forward(looping) { return while_ + for_each }\nprint(1)\n"));
}

#[test]
fn harness_checks_stderr_order() {
    let err = "error: assertion failed: boom\nstack traceback:\n  at f (a.vela:2)\n  at <script> (a.vela:5)\n";
    let want = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(check_stderr_in_order(&want(&["assertion failed", "boom", "at f (a.vela:2)"]), err).is_ok());
    assert!(check_stderr_in_order(&want(&["boom", "assertion failed"]), err).is_err());
    assert!(check_stderr_in_order(&want(&["at <script> (a.vela:5)", "at f"]), err).is_err());
    assert!(check_traceback("a.vela", err).is_ok());
    assert!(check_traceback("b.vela", err).is_err());
    assert!(check_traceback("a.vela", "error: x\n").is_err());
    assert!(check_traceback("a.vela", "oops\nstack traceback:\n  at f (a.vela:2)\n").is_err());
}

#[test]
fn harness_checks_carets() {
    let src = "print(1)\n    print(y)\n";
    assert_eq!(find_line_col("error at t/a.vela:2:11 here", "t/a.vela"), Some((2, 11)));
    assert_eq!(find_line_col("t/a.vela:2:", "t/a.vela"), None);
    // codespan-reporting style, indentation kept.
    let cs = "error: undeclared name `y`\n  ┌─ t/a.vela:2:11\n  │\n2 │     print(y)\n  │           ^ not found\n";
    assert!(check_caret(src, 2, 11, cs).is_ok());
    assert!(check_caret(src, 2, 10, cs).is_err());
    // Plain style with the indentation stripped.
    let plain = "error: undeclared name `y`\n --> t/a.vela:2:11\n  |\n2 | print(y)\n  |       ^\n";
    assert!(check_caret(src, 2, 11, plain).is_ok());
    assert!(check_caret(src, 2, 5, plain).is_err());
    // A run of carets must start under the column.
    let run = "error: x\n2 |     print(y)\n  |       ^^^^\n";
    assert!(check_caret(src, 2, 7, run).is_ok());
    assert!(check_caret(src, 2, 9, run).is_err());
    assert!(check_caret(src, 2, 11, "error: x\nt/a.vela:2:11\n").is_err());
}

#[test]
fn harness_diffs() {
    let d = diff("a\nb\nc\n", "a\nx\nc\n");
    assert!(d.contains("- b") && d.contains("+ x") && d.contains("  a"), "{d}");
    let d = diff("a\n", "a");
    assert!(d.contains("<no newline at end>"), "{d}");
    let d = diff("", "x\n");
    assert!(d.contains("+ x"), "{d}");
}
