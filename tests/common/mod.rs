//! The program-running harness shared by `tests/lang.rs` (the conformance
//! corpus) and `tests/traces.rs` (the JIT scenarios): directive parsing,
//! running `vela` with a timeout and capped output, the stdout/stderr/exit
//! checks, the comparison between execution modes, diffs, and a small
//! parallel runner. Each test file decides its modes and how to report.

// Each test crate that includes this module uses a different subset of it.
#![allow(dead_code)]

#[path = "../support/process.rs"]
mod process;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use process::Ended;

/// Wall-clock limit of one run; the process is killed when it is reached.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Programs run in parallel on this many threads.
pub const THREADS: usize = 2;

/// Bytes kept of each output stream (the rest is read and dropped).
pub const OUTPUT_CAP: usize = 4 << 20;

// ---------------------------------------------------------------------------
// Directives

#[derive(Debug, Default, PartialEq)]
pub struct Directives {
    pub exit: i32,
    pub stderr: Vec<String>,
    pub flags: Vec<String>,
}

/// Reads the directives of a program's source (`exit`, `stderr`, `flags`;
/// other `// word:` comments are left to the caller).
pub fn parse_directives(source: &str) -> Result<Directives, String> {
    let mut d = Directives::default();
    let mut exit_seen = false;
    for (i, line) in source.lines().enumerate() {
        let lineno = i + 1;
        let Some(comment) = line.trim_start().strip_prefix("//") else {
            continue;
        };
        let body = comment.trim_start();
        let Some((key, value)) = directive_key(body) else {
            continue;
        };
        let value = value.trim();
        match key {
            "exit" => {
                if exit_seen {
                    return Err(format!("line {lineno}: more than one `// exit:` directive"));
                }
                exit_seen = true;
                d.exit = value.parse().map_err(|_| format!("line {lineno}: bad exit status `{value}`"))?;
            }
            "stderr" => {
                if value.is_empty() {
                    return Err(format!("line {lineno}: empty `// stderr:` directive"));
                }
                d.stderr.push(value.to_string());
            }
            "flags" => d.flags.extend(value.split_whitespace().map(str::to_string)),
            "stdout" => {
                return Err(format!(
                    "line {lineno}: there is no `// stdout:` directive; put the expected stdout in a .out file"
                ))
            }
            _ => unreachable!(),
        }
    }
    Ok(d)
}

/// `exit: 3` -> ("exit", " 3"); only the known directive words count.
fn directive_key(body: &str) -> Option<(&'static str, &str)> {
    for key in ["exit", "stderr", "flags", "stdout"] {
        if let Some(rest) = body.strip_prefix(key) {
            if let Some(value) = rest.trim_start().strip_prefix(':') {
                return Some((key, value));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Running a program

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Exited(i32),
    Signaled(String),
    TimedOut,
    SpawnFailed(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exit status {c}"),
            Status::Signaled(s) => write!(f, "killed by {s}"),
            Status::TimedOut => write!(f, "timed out after {}s (killed)", TIMEOUT.as_secs()),
            Status::SpawnFailed(e) => write!(f, "could not start: {e}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunOutput {
    pub stdout: String,
    pub stderr: String,
    pub status: Status,
}

/// Runs the `vela` binary with `args` from `root`, with no stdin, the
/// `TIMEOUT` and at most `OUTPUT_CAP` bytes kept of each output stream.
pub fn run_vela(root: &Path, args: &[String]) -> RunOutput {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vela"));
    cmd.args(args).current_dir(root);
    let run = match process::run_with_timeout(&mut cmd, TIMEOUT, OUTPUT_CAP) {
        Ok(run) => run,
        Err(e) => {
            return RunOutput {
                stdout: String::new(),
                stderr: String::new(),
                status: Status::SpawnFailed(e.to_string()),
            }
        }
    };
    let status = match run.ended {
        Ended::Exited(code) => Status::Exited(code),
        Ended::Signaled(sig) => Status::Signaled(format!("signal {sig}")),
        Ended::TimedOut => Status::TimedOut,
        Ended::WaitFailed(e) => Status::SpawnFailed(format!("wait failed: {e}")),
    };
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    RunOutput { stdout, stderr, status }
}

// ---------------------------------------------------------------------------
// Checks

/// Checks that each expected text occurs in `stderr` in order.
pub fn check_stderr_in_order(expected: &[String], stderr: &str) -> Result<(), String> {
    let mut pos = 0;
    for (i, text) in expected.iter().enumerate() {
        match stderr[pos..].find(text.as_str()) {
            Some(at) => pos += at + text.len(),
            None => {
                let mut msg = String::from("stderr does not contain, in this order:\n");
                for (j, t) in expected.iter().enumerate() {
                    let mark = if j < i {
                        "found  "
                    } else if j == i {
                        "MISSING"
                    } else {
                        "       "
                    };
                    let _ = writeln!(msg, "      {mark} {t}");
                }
                let _ = write!(msg, "    actual stderr:\n{}", indent(stderr, "      | "));
                return Err(msg);
            }
        }
    }
    Ok(())
}

/// `tests/lang/a/b.vela:12:5` inside `text` -> (12, 5).
pub fn find_line_col(text: &str, rel: &str) -> Option<(usize, usize)> {
    let at = text.find(&format!("{rel}:"))?;
    let rest = &text[at + rel.len() + 1..];
    let line_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let line: usize = rest[..line_end].parse().ok()?;
    let rest = rest[line_end..].strip_prefix(':')?;
    let col_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let col: usize = rest[..col_end].parse().ok()?;
    Some((line, col))
}

/// Checks that `stderr` shows source line `line` of `source` with a caret run
/// starting exactly under column `col` (1-based, counted in characters) on one
/// of the three lines after it. Works whether or not the implementation strips
/// the line's indentation, and with any gutter (`4 | `, `4 │ `...).
pub fn check_caret(source: &str, line: usize, col: usize, stderr: &str) -> Result<(), String> {
    let Some(src_line) = source.lines().nth(line.wrapping_sub(1)) else {
        return Err(format!("the test names line {line}, which the program does not have"));
    };
    let text = src_line.trim();
    if text.is_empty() {
        return Err(format!("the test names line {line}, which is blank"));
    }
    let indent_chars = src_line.chars().count() - src_line.trim_start().chars().count();
    let lines: Vec<&str> = stderr.lines().collect();
    let mut shown = false;
    for (i, l) in lines.iter().enumerate() {
        let Some(byte_at) = l.find(text) else {
            continue;
        };
        shown = true;
        let text_start = l[..byte_at].chars().count() as isize;
        let want = text_start - indent_chars as isize + col as isize - 1;
        if want < 0 {
            continue;
        }
        let want = want as usize;
        for next in lines.iter().skip(i + 1).take(3) {
            let chars: Vec<char> = next.chars().collect();
            if chars.get(want) == Some(&'^') && (want == 0 || chars[want - 1] != '^') {
                return Ok(());
            }
        }
    }
    let what = if shown {
        format!("no `^` under column {col} of the shown source line {line}")
    } else {
        format!("source line {line} (`{text}`) is not shown")
    };
    Err(format!("compile error display: {what}\n    actual stderr:\n{}", indent(stderr, "      | ")))
}

/// Checks the shape of a runtime error report.
pub fn check_traceback(rel: &str, stderr: &str) -> Result<(), String> {
    let mut problems = Vec::new();
    if !stderr.starts_with("error: ") {
        problems.push("stderr does not start with `error: `");
    }
    let lines: Vec<&str> = stderr.lines().collect();
    match lines.iter().position(|l| l.trim_end() == "stack traceback:") {
        None => problems.push("no `stack traceback:` line"),
        Some(i) => {
            let frame = format!("({rel}:");
            let ok = lines[i + 1..]
                .iter()
                .any(|l| l.starts_with("  at ") && l.contains(&frame) && l.trim_end().ends_with(')'));
            if !ok {
                problems.push("no frame line `  at NAME (FILE:LINE)` for this file after `stack traceback:`");
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "runtime error report: {}\n    actual stderr:\n{}",
            problems.join("; "),
            indent(stderr, "      | ")
        ))
    }
}

pub fn indent(text: &str, prefix: &str) -> String {
    let mut s = String::new();
    if text.is_empty() {
        let _ = writeln!(s, "{prefix}<empty>");
    }
    for l in text.lines() {
        let _ = writeln!(s, "{prefix}{l}");
    }
    if !text.is_empty() && !text.ends_with('\n') {
        let _ = writeln!(s, "{prefix}<no newline at end>");
    }
    s
}

/// A line diff (`-` expected, `+` actual, ` ` both), trimmed to the area around
/// the differences.
pub fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.split_inclusive('\n').collect();
    let a: Vec<&str> = actual.split_inclusive('\n').collect();
    let show = |l: &str| -> String {
        match l.strip_suffix('\n') {
            Some(body) => body.to_string(),
            None => format!("{l}  <no newline at end>"),
        }
    };
    // Longest common subsequence (the outputs are small; cap the work).
    let mut ops: Vec<(char, &str)> = Vec::new();
    if e.len() * a.len() <= 4_000_000 {
        let (n, m) = (e.len(), a.len());
        let mut t = vec![vec![0u32; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                t[i][j] = if e[i] == a[j] { t[i + 1][j + 1] + 1 } else { t[i + 1][j].max(t[i][j + 1]) };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && e[i] == a[j] {
                ops.push((' ', e[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || t[i + 1][j] >= t[i][j + 1]) {
                ops.push(('-', e[i]));
                i += 1;
            } else {
                ops.push(('+', a[j]));
                j += 1;
            }
        }
    } else {
        ops.extend(e.iter().map(|l| ('-', *l)));
        ops.extend(a.iter().map(|l| ('+', *l)));
    }
    // Keep 2 lines of context around changes, at most 60 lines in all.
    let changed: Vec<bool> = ops.iter().map(|(k, _)| *k != ' ').collect();
    let near = |i: usize| (i.saturating_sub(2)..=(i + 2).min(ops.len() - 1)).any(|k| changed[k]);
    let mut out = String::new();
    let mut printed = 0;
    let mut skipped = false;
    for (i, (k, l)) in ops.iter().enumerate() {
        if !near(i) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("      ...\n");
            skipped = false;
        }
        if printed == 60 {
            out.push_str("      ... (diff cut)\n");
            return out;
        }
        let _ = writeln!(out, "      {k} {}", show(l));
        printed += 1;
    }
    if skipped {
        out.push_str("      ...\n");
    }
    out
}

// ---------------------------------------------------------------------------
// Programs

pub struct Program {
    /// Path as given on the command line, e.g. `tests/lang/lexical/comments.vela`.
    pub rel: String,
    pub path: PathBuf,
}

/// A program's source, its directives and its expected stdout.
pub struct Loaded {
    pub source: String,
    pub directives: Directives,
    pub expected_stdout: String,
}

/// Reads a program and its `.out` file; `Err` is a complete failure report.
pub fn load_program(prog: &Program) -> Result<Loaded, String> {
    let source = match std::fs::read_to_string(&prog.path) {
        Ok(s) => s,
        Err(e) => return Err(format!("=== {}\n  cannot read: {e}\n", prog.rel)),
    };
    let directives = match parse_directives(&source) {
        Ok(d) => d,
        Err(e) => return Err(format!("=== {}\n  bad directive: {e}\n", prog.rel)),
    };
    let out_path = prog.path.with_extension("out");
    let expected_stdout = match std::fs::read(&out_path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => return Err(format!("=== {}\n  the .out file is not UTF-8\n", prog.rel)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("=== {}\n  cannot read the .out file: {e}\n", prog.rel)),
    };
    Ok(Loaded { source, directives, expected_stdout })
}

/// The command line of one run: mode flags, the program's `// flags:`, the file.
pub fn command_line(mode: &[&str], directives: &Directives, rel: &str) -> Vec<String> {
    let mut args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
    args.extend(directives.flags.iter().cloned());
    args.push(rel.to_string());
    args
}

/// A mode's label in reports: its flags.
pub fn mode_label(mode: &[&str]) -> String {
    if mode.is_empty() {
        "default mode".to_string()
    } else {
        mode.join(" ")
    }
}

/// Checks one run against the program's expectations: exit status, exact
/// stdout, the `// stderr:` texts (or empty stderr), the runtime error report
/// shape (exit 1) and the carets of compile errors (exit 2). `out.stderr` is
/// what the program itself wrote (callers remove any report the mode adds).
pub fn check_run(rel: &str, prog: &Loaded, out: &RunOutput) -> Vec<String> {
    let directives = &prog.directives;
    let mut problems: Vec<String> = Vec::new();
    if out.status != Status::Exited(directives.exit) {
        problems.push(format!("expected exit status {}, got {}", directives.exit, out.status));
    }
    if out.stdout != prog.expected_stdout {
        problems.push(format!("stdout differs (- expected, + actual):\n{}", diff(&prog.expected_stdout, &out.stdout)));
    }
    if directives.stderr.is_empty() {
        if !out.stderr.is_empty() {
            problems.push(format!("expected empty stderr, got:\n{}", indent(&out.stderr, "      | ")));
        }
    } else if let Err(e) = check_stderr_in_order(&directives.stderr, &out.stderr) {
        problems.push(e);
    }
    if directives.exit == 1 && out.status == Status::Exited(1) {
        if let Err(e) = check_traceback(rel, &out.stderr) {
            problems.push(e);
        }
    }
    if directives.exit == 2 && out.status == Status::Exited(2) {
        for text in &directives.stderr {
            if let Some((line, col)) = find_line_col(text, rel) {
                if let Err(e) = check_caret(&prog.source, line, col, &out.stderr) {
                    problems.push(e);
                }
            }
        }
    }
    problems
}

/// `=== REL [LABEL]` and one indented line per problem.
pub fn failure_report(rel: &str, label: &str, problems: Vec<String>) -> String {
    let mut msg = format!("=== {rel} [{label}]\n");
    for p in problems {
        let _ = writeln!(msg, "  {}", p.trim_end());
    }
    msg
}

/// Checks that every mode gave the same stdout, stderr and status as the
/// first (skipped when a run timed out or could not start); one report per
/// disagreeing mode.
pub fn compare_modes(rel: &str, results: &[(String, RunOutput)]) -> Vec<String> {
    let mut failures = Vec::new();
    let comparable = results.iter().all(|(_, o)| !matches!(o.status, Status::TimedOut | Status::SpawnFailed(_)));
    if !comparable || results.is_empty() {
        return failures;
    }
    let (first_label, first) = &results[0];
    for (label, other) in &results[1..] {
        let mut problems = Vec::new();
        if other.status != first.status {
            problems.push(format!("status: {} under [{first_label}], {} under [{label}]", first.status, other.status));
        }
        if other.stdout != first.stdout {
            problems.push(format!("stdout (- [{first_label}], + [{label}]):\n{}", diff(&first.stdout, &other.stdout)));
        }
        if other.stderr != first.stderr {
            problems.push(format!("stderr (- [{first_label}], + [{label}]):\n{}", diff(&first.stderr, &other.stderr)));
        }
        if !problems.is_empty() {
            let mut msg = format!("=== {rel} [{first_label}] vs [{label}]: modes disagree\n");
            for p in problems {
                let _ = writeln!(msg, "  {}", p.trim_end());
            }
            failures.push(msg);
        }
    }
    failures
}

/// Finds every `.vela` program under `dir` (sorted, recursively), and every
/// `.out` file without a program next to it.
pub fn collect(dir: &Path, rel: &str, programs: &mut Vec<Program>, orphans: &mut Vec<String>) {
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).collect(),
        Err(e) => panic!("cannot read {}: {e}", dir.display()),
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel_child = format!("{rel}/{name}");
        if path.is_dir() {
            collect(&path, &rel_child, programs, orphans);
        } else if name.ends_with(".vela") {
            programs.push(Program { rel: rel_child, path });
        } else if name.ends_with(".out") && !path.with_extension("vela").exists() {
            orphans.push(rel_child);
        }
    }
}

/// Runs `check` on every item, on `THREADS` threads; returns the non-empty
/// results with their item's index, in item order.
pub fn run_parallel<T: Sync, R: Send>(items: &[T], check: impl Fn(&T) -> Vec<R> + Sync) -> Vec<(usize, Vec<R>)> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Vec<R>)>> = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..THREADS.min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = check(item);
                if !r.is_empty() {
                    results.lock().unwrap().push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results
}
