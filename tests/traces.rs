//! Trace JIT scenarios: every `traces/<name>.vela` program exercises one thing
//! the tracer does (or refuses to do). Each runs with the `vela` binary from
//! the crate root in three modes,
//!
//! - `vela --jit=off [// flags: ...] traces/<name>.vela` (the interpreter),
//! - `vela --jit=on --hot-loop=2 --hot-exit=10 --hot-merge=1000 --jit-stats [// flags: ...] traces/<name>.vela`
//!   (loops are recorded on their second back-edge, side traces on an
//!   exit's tenth use and merged after a thousand entries, and each trace
//!   is compiled the moment its recording ends, so the report is
//!   repeatable), and
//! - `vela --jit=on --hot-loop=2 --hot-exit=10 --hot-merge=1000 --jit-background [// flags: ...] traces/<name>.vela`
//!   (traces compile on a thread of their own: only the output is checked,
//!   since when a trace gets attached depends on the machine's load),
//!
//! and is checked like a `tests/lang` program (the harness is shared, in
//! `tests/common/mod.rs`):
//!
//! - `<name>.out`: the exact expected stdout (no file: stdout must be empty);
//! - `// exit: N`, `// stderr: TEXT` (in order; none: stderr must be empty),
//!   `// flags: A B ...`, with the runtime-error report checks of `tests/lang`;
//! - all modes give the same stdout, stderr and exit status. The JIT mode's
//!   `jit: ...` report lines are taken out of its stderr first;
//!
//! and, against the `--jit-stats` report of the JIT run:
//!
//! - `// jit: KEY OP N`, KEY one of `compiled`, `aborted`, `blacklisted` (the
//!   summary line's counts), `entries`, `exits` (totals over the traces still
//!   live at the end, side traces included: the report lists no others),
//!   `side` (live side traces: the summary line's `side traces N`), `links`,
//!   `invalidated`, `unwound` (the summary line's: native call levels rebuilt
//!   as interpreter frames after an exit inside native calls), `evictions`
//!   (the `jit: cache` line's), `side_depth` (the longest chain of live side
//!   traces, each the side trace of the one before, from a root trace),
//!   `merged` (side traces merged into their root's code, ever), OP
//!   one of `>=`, `==`, `<=`. Every program needs at least one: a JIT scenario
//!   that never shows what the JIT did asserts nothing;
//! - `// jit-abort: TEXT`: some abort reason contains TEXT.
//!
//! A second test, `trace_ir_snapshots`, runs every program with
//! `--jit=on --hot-loop=2 --dump=ir` and snapshots the optimised IR of all its
//! traces (insta, `snapshots/trace_ir_<name>.snap`), with heap addresses in
//! `kptr` constants replaced by `<addr>`. It runs each program twice and fails
//! if the two dumps differ, so a snapshot can only hold deterministic text.
//! Update snapshots with `INSTA_UPDATE=always cargo test --release --test traces`.
//!
//! All failures are gathered and reported in one panic. `VELA_TRACE_FILTER=text`
//! runs only the programs whose path (`traces/...`) contains `text`.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{
    check_run, collect, command_line, compare_modes, failure_report, indent, load_program, mode_label, run_parallel,
    run_vela, Program, RunOutput, Status,
};

const TRACES_DIR: &str = "traces";

/// The interpreter alone.
const OFF: &[&str] = &["--jit=off"];
/// The JIT, eager, with its report. `--jit=on` so that `VELA_JIT=off` in the
/// environment cannot silently turn these into interpreter runs.
/// `--hot-exit=10` (LuaJIT's hotexit; the default is 2000): the scenarios
/// grow side traces from exits their short loops take a few dozen times,
/// and `--hot-merge=1000` merges those that end at their loop header once
/// entered a thousand times. A scenario's own `// flags:` come after the
/// mode's and win.
const JIT: &[&str] = &["--jit=on", "--hot-loop=2", "--hot-exit=10", "--hot-merge=1000", "--jit-stats"];
/// The JIT compiling in the background.
const BACKGROUND: &[&str] = &["--jit=on", "--hot-loop=2", "--hot-exit=10", "--hot-merge=1000", "--jit-background"];
/// The JIT, eager, printing each trace's IR.
const DUMP: &[&str] = &["--jit=on", "--hot-loop=2", "--hot-exit=10", "--dump=ir"];

// ---------------------------------------------------------------------------
// `// jit:` and `// jit-abort:` directives

#[derive(Clone, Copy, Debug, PartialEq)]
enum Key {
    Compiled,
    Aborted,
    Blacklisted,
    Exits,
    Entries,
    /// Side traces (the `side traces N` field of the summary line).
    Side,
    /// Trace-to-trace transitions (side exits taken into side traces, links
    /// at loop headers).
    Links,
    /// Traces dropped because an assumption broke or their exits kept failing.
    Invalidated,
    /// Traces evicted from the code cache (the `jit: cache` line).
    Evictions,
    /// Native call levels rebuilt as interpreter frames (summary line).
    Unwound,
    /// Native calls of other functions' entry traces made (summary line).
    NativeCalls,
    /// Exits that took a side trace grown from a sibling exit (summary line).
    SharedSides,
    /// The longest chain root -> side -> side of side ... among the live
    /// traces (0: no side trace).
    SideDepth,
    /// Side traces merged into their root's code (`jit: side traces merged
    /// ...` line; 0 without it).
    Merged,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cmp {
    Ge,
    Eq,
    Le,
}

#[derive(Debug, PartialEq)]
struct JitAssert {
    line: usize,
    key: Key,
    cmp: Cmp,
    n: u64,
}

#[derive(Debug, Default, PartialEq)]
struct JitDirectives {
    asserts: Vec<JitAssert>,
    aborts: Vec<String>,
}

/// Reads the `// jit:` and `// jit-abort:` lines; at least one `// jit:` is required.
fn parse_jit_directives(source: &str) -> Result<JitDirectives, String> {
    let mut d = JitDirectives::default();
    for (i, line) in source.lines().enumerate() {
        let lineno = i + 1;
        let Some(comment) = line.trim_start().strip_prefix("//") else {
            continue;
        };
        let body = comment.trim_start();
        if let Some(value) = body.strip_prefix("jit-abort").and_then(|r| r.trim_start().strip_prefix(':')) {
            let value = value.trim();
            if value.is_empty() {
                return Err(format!("line {lineno}: empty `// jit-abort:` directive"));
            }
            d.aborts.push(value.to_string());
        } else if let Some(value) = body.strip_prefix("jit").and_then(|r| r.trim_start().strip_prefix(':')) {
            let words: Vec<&str> = value.split_whitespace().collect();
            let [key, op, n] = words[..] else {
                return Err(format!("line {lineno}: `// jit:` wants `KEY OP N`, got `{}`", value.trim()));
            };
            let key = match key {
                "compiled" => Key::Compiled,
                "aborted" => Key::Aborted,
                "blacklisted" => Key::Blacklisted,
                "exits" => Key::Exits,
                "entries" => Key::Entries,
                "side" => Key::Side,
                "links" => Key::Links,
                "invalidated" => Key::Invalidated,
                "evictions" => Key::Evictions,
                "unwound" => Key::Unwound,
                "native_calls" => Key::NativeCalls,
                "shared_sides" => Key::SharedSides,
                "side_depth" => Key::SideDepth,
                "merged" => Key::Merged,
                _ => {
                    return Err(format!(
                        "line {lineno}: unknown `// jit:` key `{key}` (compiled, aborted, blacklisted, exits, \
                         entries, side, links, invalidated, evictions, unwound, native_calls, shared_sides, side_depth, \
                         merged)"
                    ))
                }
            };
            let cmp = match op {
                ">=" => Cmp::Ge,
                "==" => Cmp::Eq,
                "<=" => Cmp::Le,
                _ => return Err(format!("line {lineno}: unknown `// jit:` operator `{op}` (>=, ==, <=)")),
            };
            let n = n.parse().map_err(|_| format!("line {lineno}: bad `// jit:` count `{n}`"))?;
            d.asserts.push(JitAssert { line: lineno, key, cmp, n });
        }
    }
    if d.asserts.is_empty() {
        return Err("no `// jit: KEY OP N` directive: a JIT scenario must assert what the JIT did".to_string());
    }
    Ok(d)
}

// ---------------------------------------------------------------------------
// The `--jit-stats` report

#[derive(Debug, Default, PartialEq)]
struct JitStats {
    compiled: u64,
    aborted: u64,
    blacklisted: u64,
    entries: u64,
    exits: u64,
    /// Side traces, when the summary line reports them.
    side: Option<u64>,
    links: Option<u64>,
    invalidated: Option<u64>,
    evictions: Option<u64>,
    unwound: Option<u64>,
    native_calls: Option<u64>,
    shared_sides: Option<u64>,
    /// Deepest side trace among the trace lines (a root trace is 0).
    side_depth: u64,
    merged: u64,
    /// `(count, reason)` per `jit: abort reason` line.
    abort_reasons: Vec<(u64, String)>,
}

impl JitStats {
    fn get(&self, key: Key) -> Option<u64> {
        Some(match key {
            Key::Compiled => self.compiled,
            Key::Aborted => self.aborted,
            Key::Blacklisted => self.blacklisted,
            Key::Exits => self.exits,
            Key::Entries => self.entries,
            Key::Side => return self.side,
            Key::Links => return self.links,
            Key::Invalidated => return self.invalidated,
            Key::Evictions => return self.evictions,
            Key::Unwound => return self.unwound,
            Key::NativeCalls => return self.native_calls,
            Key::SharedSides => return self.shared_sides,
            Key::SideDepth => return self.side.map(|_| self.side_depth),
            Key::Merged => self.merged,
        })
    }
}

/// Splits stderr into what the program wrote and the `jit: ` report lines.
fn split_jit_report(stderr: &str) -> (String, String) {
    let (mut program, mut report) = (String::new(), String::new());
    for line in stderr.split_inclusive('\n') {
        if line.starts_with("jit: ") {
            report.push_str(line);
        } else {
            program.push_str(line);
        }
    }
    (program, report)
}

fn number(s: &str) -> Result<u64, String> {
    s.trim().parse().map_err(|_| format!("not a count: `{s}`"))
}

/// Parses the `jit: ` lines of `--jit-stats`.
fn parse_jit_stats(report: &str) -> Result<JitStats, String> {
    let mut stats = JitStats::default();
    let mut summary = false;
    // `traceN` -> its depth; the report lists traces by serial, so a parent
    // (always live while its side traces are) comes before its children.
    let mut depths: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for line in report.lines() {
        let Some(body) = line.strip_prefix("jit: ") else { continue };
        if let Some(rest) = body.strip_prefix("traces ") {
            // `traces compiled 1, aborted 0, blacklisted 0` (and maybe more `, name N` fields)
            let mut seen = [false; 3];
            for field in rest.split(", ") {
                let (name, n) = field.rsplit_once(' ').ok_or(format!("bad summary line `{line}`"))?;
                let k = match name {
                    "compiled" => 0,
                    "aborted" => 1,
                    "blacklisted" => 2,
                    "side traces" => {
                        stats.side = Some(number(n)?);
                        continue;
                    }
                    "links" => {
                        stats.links = Some(number(n)?);
                        continue;
                    }
                    "invalidated" => {
                        stats.invalidated = Some(number(n)?);
                        continue;
                    }
                    "unwound" => {
                        stats.unwound = Some(number(n)?);
                        continue;
                    }
                    "native calls" => {
                        stats.native_calls = Some(number(n)?);
                        continue;
                    }
                    "exits sharing a side trace" => {
                        stats.shared_sides = Some(number(n)?);
                        continue;
                    }
                    _ => continue,
                };
                *[&mut stats.compiled, &mut stats.aborted, &mut stats.blacklisted][k] = number(n)?;
                seen[k] = true;
            }
            if seen != [true; 3] {
                return Err(format!("summary line without compiled/aborted/blacklisted counts: `{line}`"));
            }
            summary = true;
        } else if let Some(rest) = body.strip_prefix("cache ") {
            // `cache hits 5, misses 1, hit rate 83.33%, evictions 0, ...`
            for field in rest.split(", ") {
                if let Some(n) = field.strip_prefix("evictions ") {
                    stats.evictions = Some(number(n)?);
                }
            }
        } else if let Some(rest) = body.strip_prefix("side traces merged into their root's loop ") {
            // `side traces merged into their root's loop 2, still merged 1`
            stats.merged = number(rest.split(',').next().unwrap_or(""))?;
        } else if let Some(rest) = body.strip_prefix("abort reason ") {
            // `abort reason 3 x inner loop`
            let (n, why) = rest.split_once(" x ").ok_or(format!("bad abort line `{line}`"))?;
            stats.abort_reasons.push((number(n)?, why.to_string()));
        } else if let Some(at) = body.rfind(": entries ") {
            // `trace1 FILE:LINE (in main): entries 5, exits 5 [S3=4 S7=1]`
            let rest = &body[at + ": entries ".len()..];
            let (entries, rest) = rest.split_once(", exits ").ok_or(format!("bad trace line `{line}`"))?;
            let exits = rest.split_whitespace().next().unwrap_or("");
            stats.entries += number(entries)?;
            stats.exits += number(exits)?;
            // `trace2 (side of trace1 S3) ...`
            let name = body.split_whitespace().next().unwrap_or("");
            let depth = match body[name.len()..].trim_start().strip_prefix("(side of ") {
                Some(parent) => {
                    let parent = parent.split_whitespace().next().unwrap_or("");
                    let Some(d) = depths.get(parent) else {
                        return Err(format!("side trace of a trace not in the report: `{line}`"));
                    };
                    d + 1
                }
                None => 0,
            };
            depths.insert(name, depth);
            stats.side_depth = stats.side_depth.max(depth);
        }
    }
    if !summary {
        return Err("no `jit: traces compiled N, aborted N, blacklisted N` line in stderr".to_string());
    }
    Ok(stats)
}

/// Checks the `// jit:` and `// jit-abort:` directives against a report.
fn check_jit(d: &JitDirectives, stats: &JitStats) -> Vec<String> {
    let mut problems = Vec::new();
    for a in &d.asserts {
        let key = match a.key {
            Key::SideDepth => "side_depth".to_string(),
            k => format!("{k:?}").to_lowercase(),
        };
        let Some(actual) = stats.get(a.key) else {
            problems.push(format!("line {}: the --jit-stats report has no `{key}` count", a.line));
            continue;
        };
        let ok = match a.cmp {
            Cmp::Ge => actual >= a.n,
            Cmp::Eq => actual == a.n,
            Cmp::Le => actual <= a.n,
        };
        if !ok {
            let op = match a.cmp {
                Cmp::Ge => ">=",
                Cmp::Eq => "==",
                Cmp::Le => "<=",
            };
            problems.push(format!("line {}: `// jit: {key} {op} {}` does not hold: {key} is {actual}", a.line, a.n));
        }
    }
    for text in &d.aborts {
        if !stats.abort_reasons.iter().any(|(_, why)| why.contains(text.as_str())) {
            problems.push(format!("`// jit-abort: {text}`: no abort reason contains it"));
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// Running the scenarios

/// Runs one scenario in both modes; returns its failure reports.
fn run_program(root: &Path, prog: &Program) -> Vec<String> {
    let loaded = match load_program(prog) {
        Ok(l) => l,
        Err(report) => return vec![report],
    };
    let jit_directives = match parse_jit_directives(&loaded.source) {
        Ok(d) => d,
        Err(e) => return vec![format!("=== {}\n  bad jit directive: {e}\n", prog.rel)],
    };
    let mut failures = Vec::new();

    let off_label = mode_label(OFF);
    let off = run_vela(root, &command_line(OFF, &loaded.directives, &prog.rel));
    let problems = check_run(&prog.rel, &loaded, &off);
    if !problems.is_empty() {
        failures.push(failure_report(&prog.rel, &off_label, problems));
    }

    let jit_label = mode_label(JIT);
    let raw = run_vela(root, &command_line(JIT, &loaded.directives, &prog.rel));
    let (program_stderr, report) = split_jit_report(&raw.stderr);
    let jit = RunOutput { stdout: raw.stdout, stderr: program_stderr, status: raw.status };
    let mut problems = check_run(&prog.rel, &loaded, &jit);
    if !matches!(jit.status, Status::TimedOut | Status::SpawnFailed(_)) {
        match parse_jit_stats(&report) {
            Ok(stats) => {
                let jit_problems = check_jit(&jit_directives, &stats);
                if !jit_problems.is_empty() {
                    problems.extend(jit_problems);
                    problems.push(format!("--jit-stats report:\n{}", indent(&report, "      | ")));
                }
            }
            Err(e) => {
                problems.push(format!("--jit-stats: {e}\n    actual stderr:\n{}", indent(&raw.stderr, "      | ")))
            }
        }
    }
    if !problems.is_empty() {
        failures.push(failure_report(&prog.rel, &jit_label, problems));
    }

    let bg_label = mode_label(BACKGROUND);
    let bg = run_vela(root, &command_line(BACKGROUND, &loaded.directives, &prog.rel));
    let problems = check_run(&prog.rel, &loaded, &bg);
    if !problems.is_empty() {
        failures.push(failure_report(&prog.rel, &bg_label, problems));
    }

    failures.extend(compare_modes(&prog.rel, &[(off_label, off), (jit_label, jit), (bg_label, bg)]));
    failures
}

/// The scenarios to run (all of `traces/`, or those matching `VELA_TRACE_FILTER`)
/// and the orphan `.out` files; panics when there are no programs.
fn scenarios(root: &Path) -> (Vec<Program>, Vec<String>) {
    let filter = std::env::var("VELA_TRACE_FILTER").ok().filter(|f| !f.is_empty());
    let mut programs = Vec::new();
    let mut orphans = Vec::new();
    collect(&root.join(TRACES_DIR), TRACES_DIR, &mut programs, &mut orphans);
    if let Some(f) = &filter {
        programs.retain(|p| p.rel.contains(f.as_str()));
        orphans.retain(|p| p.contains(f.as_str()));
    }
    assert!(
        !programs.is_empty(),
        "no Vela programs found under {TRACES_DIR}{}",
        filter.as_ref().map(|f| format!(" matching VELA_TRACE_FILTER={f:?}")).unwrap_or_default()
    );
    (programs, orphans)
}

#[test]
fn traces() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (programs, orphans) = scenarios(root);
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
    if !report.is_empty() {
        panic!(
            "\n{report}\n{failed_programs} of {} JIT scenarios failed (modes [{}], [{}], [{}]){}\n",
            programs.len(),
            OFF.join(" "),
            JIT.join(" "),
            BACKGROUND.join(" "),
            if orphans.is_empty() { String::new() } else { format!("; {} orphan .out files", orphans.len()) }
        );
    }
    eprintln!(
        "{} JIT scenarios passed in modes [{}], [{}], [{}]",
        programs.len(),
        OFF.join(" "),
        JIT.join(" "),
        BACKGROUND.join(" ")
    );
}

// ---------------------------------------------------------------------------
// Optimised-IR snapshots

/// The `---- traceN ... optimised` sections of a `--dump=ir` stderr (each up
/// to its terminating blank line), addresses redacted; a marker when no trace
/// was compiled.
fn optimised_ir(stderr: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in stderr.lines() {
        if inside {
            if line.is_empty() {
                inside = false;
                out.push('\n');
            } else {
                out.push_str(&redact(line));
                out.push('\n');
            }
        } else if line.starts_with("---- trace") && line.ends_with(" optimised") {
            inside = true;
            out.push_str(line);
            out.push('\n');
        }
    }
    if out.is_empty() {
        out.push_str("(no trace compiled)\n");
    }
    out
}

/// Replaces the address of a `kptr` constant (`0007 fun    kptr   0x55d0c1a2b3c0`)
/// by `<addr>`. Native-function constants (`nat`) hold a small builtin index,
/// not an address, and stay.
fn redact(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let is_kptr = words.len() >= 3 && words[2] == "kptr" && words[1] != "nat";
    if !is_kptr {
        return line.to_string();
    }
    line.split(' ')
        .map(|w| {
            let hex = w.strip_prefix("0x").is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()));
            let dec = !w.is_empty() && w.len() >= 5 && w.chars().all(|c| c.is_ascii_digit());
            if (hex || dec) && !words[0].eq(w) {
                "<addr>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `--dump=ir` on a program: its optimised IR, or a failure report.
fn dump_ir(root: &Path, prog: &Program) -> Result<String, String> {
    let loaded = load_program(prog)?;
    let out = run_vela(root, &command_line(DUMP, &loaded.directives, &prog.rel));
    if matches!(out.status, Status::TimedOut | Status::SpawnFailed(_) | Status::Signaled(_)) {
        return Err(failure_report(&prog.rel, &mode_label(DUMP), vec![format!("{}", out.status)]));
    }
    Ok(optimised_ir(&out.stderr))
}

/// `traces/counting_loop.vela` -> `counting_loop`.
fn scenario_name(prog: &Program) -> String {
    Path::new(&prog.rel).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

#[test]
fn trace_ir_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (programs, _) = scenarios(root);
    // Dump every program twice (in parallel), keep the text when both agree.
    let dumps = run_parallel(&programs, |prog| {
        let first = dump_ir(root, prog);
        let second = dump_ir(root, prog);
        vec![match (first, second) {
            (Ok(a), Ok(b)) if a == b => Ok(a),
            (Ok(a), Ok(b)) => Err(format!(
                "=== {}\n  the optimised IR differs between two runs (snapshots must be deterministic):\n{}",
                prog.rel,
                common::diff(&a, &b)
            )),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }]
    });

    let mut failures = Vec::new();
    for (i, mut results) in dumps {
        let prog = &programs[i];
        let text = match results.pop().expect("one result per program") {
            Ok(text) => text,
            Err(report) => {
                failures.push(report);
                continue;
            }
        };
        let name = format!("trace_ir_{}", scenario_name(prog));
        // Compare every snapshot (insta panics on a mismatch) and report all.
        let outcome = std::panic::catch_unwind(|| {
            insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
                insta::assert_snapshot!(name.as_str(), text);
            });
        });
        if outcome.is_err() {
            failures.push(format!("=== {}\n  optimised IR does not match snapshots/{name}.snap\n", prog.rel));
        }
    }

    // Snapshots of scenarios that no longer exist.
    if std::env::var("VELA_TRACE_FILTER").ok().filter(|f| !f.is_empty()).is_none() {
        let names: Vec<String> = programs.iter().map(|p| format!("trace_ir_{}.snap", scenario_name(p))).collect();
        if let Ok(rd) = std::fs::read_dir(root.join("snapshots")) {
            let mut stale: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("trace_ir_") && n.ends_with(".snap") && !names.contains(n))
                .collect();
            stale.sort();
            for s in stale {
                failures.push(format!("=== snapshots/{s}\n  snapshot of a scenario that is not in {TRACES_DIR}/\n"));
            }
        }
    }

    if !failures.is_empty() {
        panic!("\n{}\n{} IR snapshot failures ({} scenarios)\n", failures.concat(), failures.len(), programs.len());
    }
    eprintln!("{} optimised-IR snapshots match", programs.len());
}

// ---------------------------------------------------------------------------
// Self-checks of the harness (they do not run `vela`).

#[test]
fn harness_parses_jit_directives() {
    let src = "// jit: compiled >= 1\n  // jit:exits == 0\n// jit-abort: inner loop\n// jit: entries <= 7\nprint(1)\n";
    let d = parse_jit_directives(src).unwrap();
    assert_eq!(
        d.asserts,
        vec![
            JitAssert { line: 1, key: Key::Compiled, cmp: Cmp::Ge, n: 1 },
            JitAssert { line: 2, key: Key::Exits, cmp: Cmp::Eq, n: 0 },
            JitAssert { line: 4, key: Key::Entries, cmp: Cmp::Le, n: 7 },
        ]
    );
    assert_eq!(d.aborts, vec!["inner loop".to_string()]);
    assert!(parse_jit_directives("print(1)\n").is_err(), "a program needs a `// jit:` line");
    assert!(parse_jit_directives("// jit-abort: allocation\n").is_err(), "`jit-abort` alone is not enough");
    assert!(parse_jit_directives("// jit: traces >= 1\n").is_err());
    assert!(parse_jit_directives("// jit: compiled > 1\n").is_err());
    assert!(parse_jit_directives("// jit: compiled >= one\n").is_err());
    assert!(parse_jit_directives("// jit: compiled >=1\n").is_err());
    assert!(parse_jit_directives("// jit: compiled >= 1\n// jit-abort:\n").is_err());
}

#[test]
fn harness_parses_jit_stats() {
    let stderr =
        "error: boom\njit: traces compiled 2, aborted 5, blacklisted 1, side traces 1, links 9, invalidated 3\n\
                  jit: cache hits 40, misses 2, hit rate 95.24%, evictions 4, live traces 2, 8192 bytes of 65536\n\
                  jit: abort reason 4 x inner loop\n\
                  jit: abort reason 1 x call of built-in `print`\n\
                  jit: compile time per trace: median 7.41 ms, max 9.00 ms\n\
                  jit: trace1 traces/a.vela:3 (in main): entries 5, exits 5 [S3=4 S7=1]\n\
                  jit: trace2 (side of trace1 S3) traces/a.vela:9 (in f): entries 2, exits 1 []\nstack traceback:\n";
    let (program, report) = split_jit_report(stderr);
    assert_eq!(program, "error: boom\nstack traceback:\n");
    let s = parse_jit_stats(&report).unwrap();
    assert_eq!((s.compiled, s.aborted, s.blacklisted, s.entries, s.exits, s.side), (2, 5, 1, 7, 6, Some(1)));
    assert_eq!((s.links, s.invalidated, s.evictions), (Some(9), Some(3), Some(4)));
    assert_eq!(s.get(Key::SideDepth), Some(1));
    let chain = "jit: traces compiled 4, aborted 0, blacklisted 0, side traces 3, links 9, invalidated 0\n\
                 jit: trace1 a.vela:3 (in main): entries 5, exits 5 [S3=4->trace2]\n\
                 jit: trace2 (side of trace1 S3) a.vela:3 (in main): entries 4, exits 4 [S1=4->trace4]\n\
                 jit: trace3 (side of trace1 S5) a.vela:3 (in main): entries 1, exits 1 []\n\
                 jit: trace4 (side of trace2 S1) a.vela:3 (in main): entries 4, exits 4 []\n";
    assert_eq!(parse_jit_stats(chain).unwrap().get(Key::SideDepth), Some(2));
    let orphan = "jit: traces compiled 1, aborted 0, blacklisted 0, side traces 1\n\
                  jit: trace2 (side of trace1 S3) a.vela:3 (in main): entries 4, exits 4 []\n";
    assert!(parse_jit_stats(orphan).is_err(), "a side trace's parent must be in the report");
    let d = parse_jit_directives("// jit: side_depth >= 3\n").unwrap();
    assert_eq!(
        check_jit(&d, &parse_jit_stats(chain).unwrap()),
        vec!["line 1: `// jit: side_depth >= 3` does not hold: side_depth is 2".to_string()]
    );
    assert_eq!(s.abort_reasons, vec![(4, "inner loop".to_string()), (1, "call of built-in `print`".to_string())]);
    assert!(parse_jit_stats("jit: abort reason 1 x x\n").is_err(), "the summary line is required");
    assert!(parse_jit_stats("jit: traces compiled 1, aborted 0\n").is_err());
    let old_format = parse_jit_stats("jit: traces compiled 1, aborted 0, blacklisted 0\n").unwrap();
    assert_eq!((old_format.compiled, old_format.aborted, old_format.blacklisted), (1, 0, 0));
    let d = parse_jit_directives("// jit: side >= 1\n").unwrap();
    assert_eq!(check_jit(&d, &old_format).len(), 1, "`side` needs the report's side-trace count");

    let d = parse_jit_directives("// jit: compiled >= 2\n// jit: exits == 6\n// jit: side == 1\n// jit-abort: inner\n")
        .unwrap();
    assert!(check_jit(&d, &s).is_empty());
    let d = parse_jit_directives("// jit: blacklisted == 0\n// jit: entries <= 3\n// jit-abort: allocation\n").unwrap();
    assert_eq!(check_jit(&d, &s).len(), 3);
}

#[test]
fn harness_extracts_and_redacts_ir() {
    let stderr = "---- trace1 traces/a.vela:3 (in main) recorded\n0000 int  > sload  #0 S0\ntail S0\n\n\
                  ---- trace1 traces/a.vela:3 (in main) optimised\n0000 int  > sload  #0 S0\n\
                  0001 fun    kptr   0x55d0c1a2b3c0\n0002 nat    kptr   0xa\n0003 flt    kflt   0x7ff8000000000001\n\
                  S0 pc=5 at=0000\ntail S0\n\nerror: x\n";
    assert_eq!(
        optimised_ir(stderr),
        "---- trace1 traces/a.vela:3 (in main) optimised\n0000 int  > sload  #0 S0\n\
         0001 fun    kptr   <addr>\n0002 nat    kptr   0xa\n0003 flt    kflt   0x7ff8000000000001\n\
         S0 pc=5 at=0000\ntail S0\n\n"
    );
    assert_eq!(optimised_ir("error: x\n"), "(no trace compiled)\n");
}
