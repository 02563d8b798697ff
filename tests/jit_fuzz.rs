//! Differential fuzzing of the trace JIT against the interpreter.
//!
//! Random loop-heavy programs (see `tests/support/loopgen.rs`: ints, floats,
//! arrays, structs with polymorphic methods, inlined helpers, nested loops,
//! late-flipping and phased branches, nests 2-3 deep, bounded recursion,
//! globals reassigned mid-loop, break/continue, type changes, nil, and in
//! some programs a last case that fails late with a runtime error) are each
//! run with `--jit=off` and in one JIT mode with `--jit-stats`: program seed
//! `S` uses `loopgen::JIT_MODES[S % 3]` (`--hot-loop=2`; with `--hot-exit=2`;
//! with `--hot-exit=2 --jit-cache=32768`), so the modes share the programs and
//! the run costs what one mode did. Stdout, stderr (without the `jit:`
//! report) and the exit status must be identical. A mismatch is shrunk to a
//! small program, printed with both outputs, and fails the test.
//!
//! The run is seeded and reproducible. Environment:
//! - `VELA_JIT_FUZZ_CASES=N`: case functions in all (10 per program; default 2200);
//! - `VELA_JIT_FUZZ_SEED=S`: seed of the first program (program `i` uses `S + i`,
//!   so a failing program's seed with `VELA_JIT_FUZZ_CASES=10` reruns it alone);
//! - `VELA_JIT_FUZZ_VELA=PATH`: the binary to test instead of this crate's `vela`.
//!
//! The test also checks that the JIT actually ran: at least `MIN_COMPILED`
//! of the cases must have a compiled trace anchored in them, per the JIT
//! run's `--jit-stats`. Run with `--nocapture` to see the summary. For long
//! soak runs use `cargo run --release --example jit_fuzz -- --cases N --seed S`.

#[path = "support/loopgen.rs"]
mod loopgen;

use std::path::PathBuf;
use std::time::Duration;

/// Chosen for CI time: the rotating JIT modes cost about 16% more CPU per
/// program than `--hot-loop=2` alone (more side traces, recompiles after
/// evictions), so 2200 cases take what 2500 did with one mode.
const DEFAULT_CASES: usize = 2200;
const DEFAULT_SEED: u64 = 20_250_101;
const PER_PROGRAM: usize = 10;
/// Fraction of cases that must have compiled a trace.
const MIN_COMPILED: f64 = 0.30;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v} is not a valid number")),
        Err(_) => default,
    }
}

#[test]
fn jit_agrees_with_the_interpreter_on_random_loop_programs() {
    let cfg = loopgen::FuzzConfig {
        // `VELA_JIT_FUZZ_VELA=PATH` runs another binary (to test this harness).
        vela: std::env::var_os("VELA_JIT_FUZZ_VELA")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vela")), PathBuf::from),
        jit_modes: loopgen::JIT_MODES.iter().map(|m| m.iter().map(|f| f.to_string()).collect()).collect(),
        cases: env_or("VELA_JIT_FUZZ_CASES", DEFAULT_CASES),
        seed: env_or("VELA_JIT_FUZZ_SEED", DEFAULT_SEED),
        per_program: PER_PROGRAM,
        threads: 2,
        timeout: Duration::from_secs(20),
        shrink_timeout: Duration::from_secs(5),
        max_shrinks: 2,
        shrink_time: Duration::from_secs(60),
        progress: None,
        work_dir: std::env::temp_dir().join(format!("vela-jit-fuzz-test-{}", std::process::id())),
    };
    let summary = loopgen::run_fuzz(&cfg, &|msg| eprintln!("{msg}"));
    let _ = std::fs::remove_dir_all(&cfg.work_dir);
    let report = summary.report();
    eprint!("{report}");

    let mut problems = Vec::new();
    if !summary.failures.is_empty() {
        let seeds: Vec<String> = summary.failures.iter().map(|f| f.seed.to_string()).collect();
        let mut msg = format!(
            "{} program(s) behave differently under the JIT (program seeds {}):\n",
            summary.failures.len(),
            seeds.join(" ")
        );
        // The minimised ones in full, and at most two others.
        let shown = summary
            .failures
            .iter()
            .filter(|f| f.minimized.is_some())
            .chain(summary.failures.iter().filter(|f| f.minimized.is_none()).take(2));
        for f in shown {
            msg.push_str(&f.report(PER_PROGRAM));
            msg.push_str(&format!(
                "rerun alone: VELA_JIT_FUZZ_SEED={} VELA_JIT_FUZZ_CASES={PER_PROGRAM} cargo test --release --test jit_fuzz\n",
                f.seed
            ));
        }
        problems.push(msg);
    }
    if summary.interp_timeouts > 0 {
        problems.push(format!(
            "{} generated program(s) timed out in the interpreter: the generator must keep loops bounded",
            summary.interp_timeouts
        ));
    }
    if summary.case_fraction() < MIN_COMPILED {
        problems.push(format!(
            "only {:.1}% of the cases compiled a trace (need {:.0}%): the differential test would prove little",
            100.0 * summary.case_fraction(),
            100.0 * MIN_COMPILED
        ));
    }
    assert!(problems.is_empty(), "{report}\n{}", problems.join("\n"));
}

/// The same seed gives the same program; different seeds differ.
#[test]
fn generator_is_deterministic() {
    let a = loopgen::generate(7, PER_PROGRAM);
    let b = loopgen::generate(7, PER_PROGRAM);
    let c = loopgen::generate(8, PER_PROGRAM);
    assert_eq!(a.text, b.text);
    assert_ne!(a.text, c.text);
    assert_eq!(a.text.matches("\nfn c").count(), PER_PROGRAM);
}

/// Each of the generator's constructs for side traces, trace trees,
/// recursion and invalidation shows up in a modest number of programs.
#[test]
fn generator_makes_every_construct() {
    let texts: Vec<String> = (0..120).map(|s| loopgen::generate(s, PER_PROGRAM).text).collect();
    let count = |needle: &dyn Fn(&str) -> bool| texts.iter().filter(|t| needle(t)).count();
    let has = |pat: &'static str| move |t: &str| t.contains(pat);
    // An alternating phase `if (i / P) % 2 == 0`, and one flip nested in another.
    let alternating = |t: &str| t.lines().any(|l| l.trim_start().starts_with("if (") && l.contains(") % 2 == 0 {"));
    let nested_flip = |t: &str| {
        let lines: Vec<&str> = t.lines().collect();
        lines.windows(3).any(|w| {
            let head = |l: &str| l.trim_start().starts_with("if i") && l.contains(" > ") && l.ends_with('{');
            head(w[0]) && (head(w[1]) || head(w[2]))
        })
    };
    // A loop header three deep: case bodies indent by 2, loop bodies by 2
    // more, and loops are only ever made directly in loop bodies.
    let three_deep = |t: &str| {
        t.lines().any(|l| {
            let body = l.trim_start();
            l.len() - body.len() >= 6 && (body.starts_with("for ") || body.starts_with("while ") || body == "loop {")
        })
    };
    for (what, n) in [
        ("alternating phase", count(&alternating)),
        ("nested late flips", count(&nested_flip)),
        ("nest three deep", count(&three_deep)),
        ("hfib call", count(&has("hfib("))),
        ("hsum call", count(&has("hsum("))),
        ("hev/hod call", count(&|t: &str| t.contains("hev(abs(") || t.contains("hod(abs("))),
        ("GV reassigned in a loop", count(&has("{ GV = "))),
        ("GV called", count(&has("GV("))),
        ("GK reassigned in a loop", count(&has("{ GK = "))),
        ("closure over a fresh local", count(&has("= fn() { cv"))),
        ("call of closures of one prototype", count(&has(" % 4 + 4) % 4]("))),
        ("min or max of two Ints", count(&|t: &str| t.contains(" = min(") || t.contains(" = max("))),
    ] {
        assert!(n >= 5, "only {n} of 120 programs have a {what}");
    }
}

/// The shrinker keeps what the predicate needs and drops the rest,
/// including whole case functions with their calls.
#[test]
fn shrinker_removes_what_does_not_matter() {
    let p = loopgen::generate(11, PER_PROGRAM);
    let needed = |t: &str| t.contains("fn hdz(") && t.contains("fn main() {") && t.contains("  c3()");
    assert!(needed(&p.text));
    let small = loopgen::shrink(&p.text, needed, usize::MAX);
    assert!(needed(&small), "{small}");
    assert!(small.lines().count() < 25, "not shrunk enough:\n{small}");
    assert!(!small.contains("c4()"), "{small}");
}
