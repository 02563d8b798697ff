//! Conformance tests for the Vela language (see /work/shared/vela-language.md).
//!
//! Every `tests/lang/<topic>/<name>.vela` program is run with the `vela` binary
//! in each of the `MODES`, from the crate root, as
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

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Command-line flags of each execution mode; every program runs in each.
const MODES: &[&[&str]] = &[&["--jit=off"], &["--hot-loop=2"]];

/// Wall-clock limit of one run; the process is killed when it is reached.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Programs run in parallel on this many threads.
const THREADS: usize = 2;

/// Bytes kept of each output stream (the rest is read and dropped).
const OUTPUT_CAP: usize = 4 << 20;

const LANG_DIR: &str = "tests/lang";

// ---------------------------------------------------------------------------
// Directives

#[derive(Debug, Default, PartialEq)]
struct Directives {
    exit: i32,
    stderr: Vec<String>,
    flags: Vec<String>,
}

/// Reads the directives of a program's source.
fn parse_directives(source: &str) -> Result<Directives, String> {
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
enum Status {
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
struct RunOutput {
    stdout: String,
    stderr: String,
    status: Status,
}

fn read_capped(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Status {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return exit_status(status),
            Ok(None) => {}
            Err(e) => return Status::SpawnFailed(format!("wait failed: {e}")),
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Status::TimedOut;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn exit_status(status: std::process::ExitStatus) -> Status {
    if let Some(code) = status.code() {
        return Status::Exited(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return Status::Signaled(format!("signal {sig}"));
        }
    }
    Status::Signaled(format!("{status}"))
}

fn run_vela(root: &Path, args: &[String]) -> RunOutput {
    let mut child = match Command::new(env!("CARGO_BIN_EXE_vela"))
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return RunOutput {
                stdout: String::new(),
                stderr: String::new(),
                status: Status::SpawnFailed(e.to_string()),
            }
        }
    };
    let out = read_capped(child.stdout.take().unwrap());
    let err = read_capped(child.stderr.take().unwrap());
    let status = wait_with_timeout(&mut child, TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    RunOutput { stdout, stderr, status }
}

// ---------------------------------------------------------------------------
// Checks

/// Checks that each expected text occurs in `stderr` in order.
fn check_stderr_in_order(expected: &[String], stderr: &str) -> Result<(), String> {
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
fn find_line_col(text: &str, rel: &str) -> Option<(usize, usize)> {
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
fn check_caret(source: &str, line: usize, col: usize, stderr: &str) -> Result<(), String> {
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
fn check_traceback(rel: &str, stderr: &str) -> Result<(), String> {
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

fn indent(text: &str, prefix: &str) -> String {
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
fn diff(expected: &str, actual: &str) -> String {
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

struct Program {
    /// Path as given on the command line, e.g. `tests/lang/lexical/comments.vela`.
    rel: String,
    path: PathBuf,
}

/// Runs one program in every mode; returns its failure reports.
fn run_program(root: &Path, prog: &Program) -> Vec<String> {
    let mut failures = Vec::new();
    let source = match std::fs::read_to_string(&prog.path) {
        Ok(s) => s,
        Err(e) => return vec![format!("=== {}\n  cannot read: {e}\n", prog.rel)],
    };
    let directives = match parse_directives(&source) {
        Ok(d) => d,
        Err(e) => return vec![format!("=== {}\n  bad directive: {e}\n", prog.rel)],
    };
    let out_path = prog.path.with_extension("out");
    let expected_stdout = match std::fs::read(&out_path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => return vec![format!("=== {}\n  the .out file is not UTF-8\n", prog.rel)],
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return vec![format!("=== {}\n  cannot read the .out file: {e}\n", prog.rel)],
    };

    let mut results: Vec<(String, RunOutput)> = Vec::new();
    for mode in MODES {
        let mut args: Vec<String> = mode.iter().map(|s| s.to_string()).collect();
        args.extend(directives.flags.iter().cloned());
        args.push(prog.rel.clone());
        let label = if mode.is_empty() { "default mode".to_string() } else { mode.join(" ") };
        let out = run_vela(root, &args);

        let mut problems: Vec<String> = Vec::new();
        if out.status != Status::Exited(directives.exit) {
            problems.push(format!("expected exit status {}, got {}", directives.exit, out.status));
        }
        if out.stdout != expected_stdout {
            problems.push(format!("stdout differs (- expected, + actual):\n{}", diff(&expected_stdout, &out.stdout)));
        }
        if directives.stderr.is_empty() {
            if !out.stderr.is_empty() {
                problems.push(format!("expected empty stderr, got:\n{}", indent(&out.stderr, "      | ")));
            }
        } else if let Err(e) = check_stderr_in_order(&directives.stderr, &out.stderr) {
            problems.push(e);
        }
        if directives.exit == 1 && out.status == Status::Exited(1) {
            if let Err(e) = check_traceback(&prog.rel, &out.stderr) {
                problems.push(e);
            }
        }
        if directives.exit == 2 && out.status == Status::Exited(2) {
            for text in &directives.stderr {
                if let Some((line, col)) = find_line_col(text, &prog.rel) {
                    if let Err(e) = check_caret(&source, line, col, &out.stderr) {
                        problems.push(e);
                    }
                }
            }
        }
        if !problems.is_empty() {
            let mut msg = format!("=== {} [{label}]\n", prog.rel);
            for p in problems {
                let _ = writeln!(msg, "  {}", p.trim_end());
            }
            failures.push(msg);
        }
        results.push((label, out));
    }

    // Every mode must behave the same.
    let comparable = results.iter().all(|(_, o)| !matches!(o.status, Status::TimedOut | Status::SpawnFailed(_)));
    if comparable {
        let (first_label, first) = &results[0];
        for (label, other) in &results[1..] {
            let mut problems = Vec::new();
            if other.status != first.status {
                problems
                    .push(format!("status: {} under [{first_label}], {} under [{label}]", first.status, other.status));
            }
            if other.stdout != first.stdout {
                problems
                    .push(format!("stdout (- [{first_label}], + [{label}]):\n{}", diff(&first.stdout, &other.stdout)));
            }
            if other.stderr != first.stderr {
                problems
                    .push(format!("stderr (- [{first_label}], + [{label}]):\n{}", diff(&first.stderr, &other.stderr)));
            }
            if !problems.is_empty() {
                let mut msg = format!("=== {} [{first_label}] vs [{label}]: modes disagree\n", prog.rel);
                for p in problems {
                    let _ = writeln!(msg, "  {}", p.trim_end());
                }
                failures.push(msg);
            }
        }
    }
    failures
}

fn collect(dir: &Path, rel: &str, programs: &mut Vec<Program>, orphans: &mut Vec<String>) {
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

    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, Vec<String>)>> = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..THREADS.min(programs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(prog) = programs.get(i) else { break };
                let f = run_program(root, prog);
                if !f.is_empty() {
                    failures.lock().unwrap().push((i, f));
                }
            });
        }
    });

    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|(i, _)| *i);
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
    let modes: Vec<String> = MODES.iter().map(|m| format!("[{}]", m.join(" "))).collect();
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
