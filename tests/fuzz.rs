//! Robustness fuzzing of the whole engine: lexer, parser, resolver, compiler and
//! a budget-limited interpreter run.
//!
//! Every case is a Vela source that must end in `Ok` or a clean `Err` (a
//! non-empty message; compile errors rendered with a location) — never a Rust
//! panic, an abort (Rust stack overflow, double panic, `abort()`), or a hang.
//! Sources come from four generators, all driven by a seeded PRNG written here
//! (no dependencies), so every case is reproducible from `(seed, index)`:
//!
//! 1. mutations of every program in `tests/lang/**/*.vela` and
//!    `benches/programs/*.vela` (byte flips, token deletion / duplication /
//!    swaps / replacement, number and identifier replacement, splicing lines of
//!    two files, truncation, insertion of random tokens);
//! 2. grammar-based random programs (structs with methods, functions,
//!    closures, loops, arrays, maps, interpolation, method calls, runtime error
//!    cases) that mostly compile, so the interpreter is exercised;
//! 3. deep-nesting and noise programs (parentheses, blocks, closures,
//!    interpolation, chains, long token soups, many locals/parameters);
//! 4. JIT programs (8%): numeric hot-loop kernels with mid-loop type changes,
//!    overflows and bad indices, and grammar programs whose loops are all
//!    bounded, run with the trace JIT on at `--hot-loop` 1 to 3. The JIT does
//!    not count instructions, so these run without a budget (their call depth
//!    is [`JIT_CALL_DEPTH`]); termination comes from their shape.
//!
//! Each other case runs with an instruction budget of [`BUDGET`], a heap limit of
//! [`MEM_LIMIT`] and [`STACK_SLOTS`] value-stack slots, output to a sink, on a
//! thread with a [`CASE_THREAD_STACK`] Rust stack (the default size of a
//! spawned Rust thread, which an embedder would use), inside `catch_unwind`.
//! Some cases (10%) are split at a line and run as two chunks in one VM, the way
//! a REPL or an embedder feeding code piecewise does.
//!
//! Aborts cannot be caught in-process, so the `fuzz` test runs the cases in
//! child processes (this same test binary running `fuzz_worker`), one per
//! shard, and watches them: a child that dies is reported with the case it was
//! running (regenerated from its seed), and then restarted after that case; a
//! child that makes no progress for [`STALL`] is killed and reported as a hang.
//! Panics are caught in the child, minimised (line and chunk deletion), and
//! reported with their message, location and the engine frames of the backtrace.
//! Children run under a [`CHILD_VMEM_KIB`] address-space cap (`ulimit -v`), so
//! a runaway allocation is a reported abort, not trouble for the machine.
//!
//! Environment:
//! - `VELA_FUZZ_CASES=N` (default [`DEFAULT_CASES`]) and `VELA_FUZZ_SEED=S`
//!   (decimal or `0x` hex; default [`DEFAULT_SEED`]) for soak runs;
//! - `VELA_FUZZ_ONLY=I` runs only case index `I` (to reproduce a report);
//! - `VELA_FUZZ_SHARDS=K` sets the number of child processes;
//! - `VELA_FUZZ_PRINT=I` prints the source of case `I` to stderr and writes it
//!   to `target/tmp/fuzz-case-I.vela` (and runs it);
//! - `VELA_FUZZ_STRICT=1` fails on the known panics in [`KNOWN_BUGS`] and on
//!   slow cases too;
//! - `VELA_FUZZ_KIND=jit` runs only the cases of the generators whose name
//!   contains the text (`grammar`, `mutation`, `deep`, `noise`, `jit`);
//! - `VELA_FUZZ_VERBOSE=1` (with a worker run) logs every case's outcome;
//! - `VELA_FUZZ_SELFTEST=1` fakes a panic on sources containing `while` and
//!   `fn`, to see the reporting and minimising at work.
//!
//! Engine bugs found by this fuzzer are recorded as `#[ignore]`d `bug_*`
//! tests at the end of this file; run them with
//! `cargo test --test fuzz -- --ignored`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Cases of a default run.
const DEFAULT_CASES: u64 = 3000;
/// Base seed of a default run.
const DEFAULT_SEED: u64 = 0x005E_ED0F_7E1A;
/// Instructions a case may execute.
const BUDGET: u64 = 200_000;
/// Heap limit of a case.
const MEM_LIMIT: usize = 64 << 20;
/// Value-stack slots of a case.
const STACK_SLOTS: usize = 1 << 16;
/// Call depth of the JIT cases (which run without an instruction budget).
const JIT_CALL_DEPTH: usize = 200;
/// Rust stack of the thread that runs the cases (std's default for spawned threads).
const CASE_THREAD_STACK: usize = 2 << 20;
/// A case slower than this (debug build) is reported as a warning (a failure
/// with `VELA_FUZZ_STRICT=1`): some budget-limited programs are legitimately
/// slow, e.g. 200k instructions of concatenation onto a growing string.
const SLOW_CASE: Duration = Duration::from_secs(10);
/// A child with no progress for this long is killed and reported as hung.
const STALL: Duration = Duration::from_secs(120);
/// At most this many child restarts after crashes, per shard.
const MAX_RESTARTS: usize = 25;
/// Panic minimisation stops after this many runs or this much time.
const MINIMISE_RUNS: usize = 3000;
const MINIMISE_TIME: Duration = Duration::from_secs(20);

const WORKER_ENV: &str = "VELA_FUZZ_WORKER";
const SOURCE_ENV: &str = "VELA_FUZZ_SOURCE";
const SOURCE_JIT_ENV: &str = "VELA_FUZZ_SOURCE_JIT";
/// Separates the chunks of a reproducer run in one VM.
const CHUNK_SEP: char = '\u{1}';
/// Virtual memory cap of child processes (KiB), so a runaway allocation is
/// an abort we report rather than trouble for the machine.
const CHILD_VMEM_KIB: u64 = 4 << 20;
const MARK: &str = "@@fuzz";

/// Panics the fuzz test tolerates (unless `VELA_FUZZ_STRICT=1`) because they are
/// known engine bugs with an `#[ignore]`d reproducer below: (substring of the
/// panic location or message, description).
const KNOWN_BUGS: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------
// PRNG: splitmix64 for seeding, xorshift64* for the stream.

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of case `idx` of a run with base seed `base`.
fn case_seed(base: u64, idx: u64) -> u64 {
    splitmix64(base ^ splitmix64(idx.wrapping_add(0x1234_5678)))
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(splitmix64(seed) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn pick_str(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len())]
    }

    /// An index into `weights`, chosen proportionally.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = (self.next_u64() % u64::from(total.max(1))) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// Small sizes mostly, occasionally larger: `0..=max`, skewed low.
    fn skewed(&mut self, max: usize) -> usize {
        let a = self.below(max + 1);
        let b = self.below(max + 1);
        a.min(b)
    }
}

// ---------------------------------------------------------------------------
// Configuration

#[derive(Clone, Debug)]
struct FuzzConfig {
    cases: u64,
    seed: u64,
    only: Option<u64>,
    print: Option<u64>,
    strict: bool,
    /// Run only the cases whose generator name contains this.
    kind: Option<String>,
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(parse_u64(&v).unwrap_or_else(|| panic!("{name}={v:?} is not a number")))
}

impl FuzzConfig {
    fn from_env() -> FuzzConfig {
        FuzzConfig {
            cases: env_u64("VELA_FUZZ_CASES").unwrap_or(DEFAULT_CASES),
            seed: env_u64("VELA_FUZZ_SEED").unwrap_or(DEFAULT_SEED),
            only: env_u64("VELA_FUZZ_ONLY"),
            print: env_u64("VELA_FUZZ_PRINT"),
            strict: std::env::var("VELA_FUZZ_STRICT").is_ok_and(|v| v != "0" && !v.is_empty()),
            kind: std::env::var("VELA_FUZZ_KIND").ok().filter(|k| !k.is_empty()),
        }
    }

    /// The case indices of this run, in order.
    fn indices(&self) -> Vec<u64> {
        match self.only.or(self.print) {
            Some(i) => vec![i],
            None => (0..self.cases).collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// Corpus

fn collect_vela(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_vela(&path, out);
        } else if path.extension().is_some_and(|e| e == "vela") {
            out.push(path);
        }
    }
}

/// Every program of the conformance tests and benchmarks, in path order.
fn load_corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect_vela(&root.join("tests/lang"), &mut files);
    collect_vela(&root.join("benches/programs"), &mut files);
    files.sort();
    let corpus: Vec<String> = files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect();
    assert!(!corpus.is_empty(), "no .vela programs found under {}", root.display());
    corpus
}

// ---------------------------------------------------------------------------
// Cases

/// One generated case: what made it and the source (plus, for a two-chunk
/// run, the byte offset of the split).
#[derive(Clone, Debug)]
struct Case {
    kind: &'static str,
    source: String,
    split: Option<usize>,
    /// Run with the JIT on, no instruction budget, and these `(hot_loop,
    /// hot_exit)` thresholds (only for programs whose loops all terminate).
    jit: Option<(u32, u32)>,
}

fn make_case(corpus: &[String], seed: u64) -> Case {
    let mut r = Rng::new(seed);
    let mut jit = None;
    let (kind, source) = match r.weighted(&[36, 32, 12, 8, 4, 8]) {
        0 => ("grammar", Gen::new(&mut r).program()),
        1 => {
            let base = r.pick(corpus).clone();
            ("mutation", mutate(&mut r, corpus, base, false))
        }
        2 => {
            let base = Gen::new(&mut r).program();
            let semantic = r.chance(60);
            ("grammar+mutation", mutate(&mut r, corpus, base, semantic))
        }
        3 => ("deep", deep_program(&mut r)),
        4 => ("noise", noise(&mut r)),
        _ => {
            jit = Some((r.range(1, 3) as u32, r.range(1, 3) as u32));
            if r.chance(65) {
                ("jit-kernel", jit_kernel(&mut r))
            } else {
                ("grammar-jit", Gen::terminating(&mut r).program())
            }
        }
    };
    let split = if r.chance(10) {
        // Cut before a line that starts a top-level item, if there is one.
        let cuts: Vec<usize> = source
            .match_indices('\n')
            .map(|(i, _)| i + 1)
            .filter(|&i| source[i..].starts_with(|c: char| c.is_ascii_alphabetic()) && !source[i..].starts_with("else"))
            .collect();
        (!cuts.is_empty()).then(|| *r.pick(&cuts))
    } else {
        None
    };
    Case { kind, source, split, jit }
}

// ---------------------------------------------------------------------------
// Mutations

/// Tokens inserted by mutations.
const INSERT_TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "..",
    "..=",
    "${",
    "\"",
    "\n",
    "fn",
    "let",
    "=",
    "==",
    "!=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "<<",
    ">>",
    "&",
    "|",
    "^",
    "!",
    "~",
    "&&",
    "||",
    "<",
    "<=",
    ">",
    ">=",
    ".",
    ":",
    "->",
    "if",
    "else",
    "while",
    "for",
    "in",
    "loop",
    "break",
    "continue",
    "return",
    "struct",
    "impl",
    "self",
    "nil",
    "true",
    "false",
    "0",
    "1",
    "-1",
    "63",
    "64",
    "255",
    "256",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "0x",
    "0xffffffffffffffff",
    "0b",
    "0b2",
    "1e309",
    "1.",
    ".5",
    "1e",
    "1_",
    "0.0",
    "\"\"",
    "\"${",
    "}\"",
    "\"${x:.",
    "/*",
    "*/",
    "//",
    "\\",
    "\\u{",
    "$",
    ":.",
    ":.999",
    "main",
    "print",
    "x",
    "_",
    "é",
    "😀",
    "\r",
    "\t",
    "\r\n",
    "\0",
    "\u{feff}",
    "+=",
    "%=",
    "<<=",
    "a.b",
    "()",
    "[]",
    "{}",
    "fn()",
    "fn(x) { x }",
    "len",
    "str",
    "push",
    "self.x",
    "P { x: 1 }",
    "[1, 2][5]",
    "{\"k\": 1}",
    "array(100, 0)",
    "1 / 0",
    "-(-9223372036854775807 - 1)",
];

/// Numbers substituted for numeric tokens.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "10",
    "63",
    "64",
    "65",
    "-64",
    "100",
    "255",
    "256",
    "1000",
    "65535",
    "65536",
    "100000",
    "1000000",
    "9223372036854775807",
    "-9223372036854775808",
    "4611686018427387904",
    "0x7fffffffffffffff",
    "0.0",
    "-0.0",
    "0.5",
    "1e308",
    "1e-320",
    "3.0e10",
    "2.5",
];

const TWO_CHAR: &[&str] =
    &["..", "==", "!=", "<=", ">=", "&&", "||", "<<", ">>", "+=", "-=", "*=", "/=", "%=", "->", "${", "/*", "*/"];

/// Byte ranges of the non-space tokens of `s`, by a rough lexer that is
/// good enough for mutation (identifiers and numbers, strings, comments, operators).
fn crude_tokens(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_alphanumeric() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            while !s.is_char_boundary(i) {
                i += 1;
            }
        } else if s[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if s[i..].starts_with("..=") {
            i += 3;
        } else if TWO_CHAR.iter().any(|t| s[i..].starts_with(t)) {
            i += 2;
        } else {
            i += s[i..].chars().next().map_or(1, char::len_utf8);
        }
        out.push((start, i));
    }
    out
}

fn is_ident_token(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

fn is_number_token(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_digit())
}

/// Applies 1 to 4 (rarely up to 12) random mutations to `src`.
/// `semantic` mutations keep the syntax mostly intact (numbers, names and
/// whole statements change) so that the mutant still runs.
fn mutate(r: &mut Rng, corpus: &[String], mut src: String, semantic: bool) -> String {
    let n = if r.chance(10) { r.range(5, 12) } else { r.range(1, 4) };
    for _ in 0..n {
        src = mutate_once(r, corpus, &src, semantic);
    }
    src
}

fn mutate_once(r: &mut Rng, corpus: &[String], src: &str, semantic: bool) -> String {
    let toks = crude_tokens(src);
    let tok = |r: &mut Rng| toks.get(r.below(toks.len())).copied();
    let weights: &[u32] = if semantic {
        &[0, 0, 0, 0, 0, 0, 12, 10, 0, 0, 0, 0, 0, 4]
    } else {
        &[8, 10, 8, 8, 8, 10, 12, 6, 6, 4, 6, 6, 4, 3]
    };
    match r.weighted(weights) {
        // Byte flip (bit flip or a random interesting byte).
        0 => {
            let mut bytes = src.as_bytes().to_vec();
            if bytes.is_empty() {
                return "{".to_string();
            }
            let i = r.below(bytes.len());
            bytes[i] = match r.below(3) {
                0 => bytes[i] ^ (1 << r.below(8)),
                1 => *r.pick(b"{}()[],;.\"$\\\n:=+-*/%<>!&|^~0123456789_ ae"),
                _ => r.below(256) as u8,
            };
            String::from_utf8_lossy(&bytes).into_owned()
        }
        // Delete a token.
        1 => match tok(r) {
            Some((a, b)) => format!("{}{}", &src[..a], &src[b..]),
            None => src.to_string(),
        },
        // Duplicate a token.
        2 => match tok(r) {
            Some((a, b)) => format!("{}{}{}", &src[..b], &src[a..b], &src[b..]),
            None => src.to_string(),
        },
        // Swap two tokens.
        3 => match (tok(r), tok(r)) {
            (Some(x), Some(y)) if x != y => {
                let ((a1, b1), (a2, b2)) = if x.0 < y.0 { (x, y) } else { (y, x) };
                format!("{}{}{}{}{}", &src[..a1], &src[a2..b2], &src[b1..a2], &src[a1..b1], &src[b2..])
            }
            _ => src.to_string(),
        },
        // Replace a token with another token of the same file.
        4 => match (tok(r), tok(r)) {
            (Some((a, b)), Some((c, d))) => format!("{}{}{}", &src[..a], &src[c..d], &src[b..]),
            _ => src.to_string(),
        },
        // Insert a random token.
        5 => {
            let at = tok(r).map_or(0, |(a, b)| if r.chance(50) { a } else { b });
            let t = *r.pick(INSERT_TOKENS);
            let pad = if r.chance(50) { " " } else { "" };
            format!("{}{pad}{t}{pad}{}", &src[..at], &src[at..])
        }
        // Replace a number with an interesting one (keeps the program parsing).
        6 => {
            let nums: Vec<_> = toks.iter().filter(|&&(a, b)| is_number_token(&src[a..b])).collect();
            if nums.is_empty() {
                return src.to_string();
            }
            let &&(a, b) = r.pick(&nums);
            format!("{}{}{}", &src[..a], r.pick(NUMBERS), &src[b..])
        }
        // Replace an identifier with another identifier of the file (type confusion).
        7 => {
            let ids: Vec<_> = toks.iter().filter(|&&(a, b)| is_ident_token(&src[a..b])).collect();
            if ids.len() < 2 {
                return src.to_string();
            }
            let &&(a, b) = r.pick(&ids);
            let &&(c, d) = r.pick(&ids);
            format!("{}{}{}", &src[..a], &src[c..d], &src[b..])
        }
        // Splice: a prefix of this file's lines, a run of another file's lines, the rest.
        8 => {
            let other = r.pick(corpus);
            let mine: Vec<&str> = src.split_inclusive('\n').collect();
            let theirs: Vec<&str> = other.split_inclusive('\n').collect();
            let at = r.below(mine.len() + 1);
            let from = r.below(theirs.len() + 1);
            let to = from + r.below(theirs.len() - from + 1);
            let mut s: String = mine[..at].concat();
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&theirs[from..to].concat());
            if r.chance(70) {
                s.push_str(&mine[at..].concat());
            }
            s
        }
        // Truncate.
        9 => {
            let mut at = r.below(src.len() + 1);
            while !src.is_char_boundary(at) {
                at -= 1;
            }
            src[..at].to_string()
        }
        // Delete or duplicate a run of lines.
        10 => {
            let lines: Vec<&str> = src.split_inclusive('\n').collect();
            let a = r.below(lines.len() + 1);
            let b = a + r.skewed(lines.len() - a);
            if r.chance(50) {
                format!("{}{}", lines[..a].concat(), lines[b..].concat())
            } else {
                format!("{}{}{}", lines[..b].concat(), lines[a..b].concat(), lines[b..].concat())
            }
        }
        // Wrap a run of tokens in brackets or a block.
        11 => match (tok(r), tok(r)) {
            (Some(x), Some(y)) => {
                let (a, b) = (x.0.min(y.0), x.1.max(y.1));
                let (open, close) =
                    *r.pick(&[("(", ")"), ("[", "]"), ("{ ", " }"), ("\"${", "}\""), ("fn() { ", " }")]);
                format!("{}{open}{}{close}{}", &src[..a], &src[a..b], &src[b..])
            }
            _ => src.to_string(),
        },
        // Replace a whole line with a line of another file.
        12 => {
            let other = r.pick(corpus);
            let theirs: Vec<&str> = other.lines().collect();
            let mut mine: Vec<&str> = src.lines().collect();
            if mine.is_empty() || theirs.is_empty() {
                return src.to_string();
            }
            let i = r.below(mine.len());
            mine[i] = *r.pick(&theirs);
            mine.join("\n")
        }
        // Insert a runtime-error snippet as a statement.
        _ => {
            let lines: Vec<&str> = src.split_inclusive('\n').collect();
            let at = r.below(lines.len() + 1);
            format!("{}\n{}\n{}", lines[..at].concat(), r.pick(ERROR_SNIPPETS), lines[at..].concat())
        }
    }
}

/// One-line statements that should each end in a (clean) error.
const ERROR_SNIPPETS: &[&str] = &[
    "let e = 9223372036854775807 + 1",
    "let e = -9223372036854775807 - 2",
    "let e = 4611686018427387904 * 2",
    "let e = (-9223372036854775807 - 1) / -1",
    "let e = (-9223372036854775807 - 1) % -1",
    "let e = abs(-9223372036854775807 - 1)",
    "let e = -(-9223372036854775807 - 1)",
    "let e = 1 / 0",
    "let e = 1 % 0",
    "let z = 0\nlet e = 5 / z",
    "let e = 1 << 64",
    "let e = 1 >> -1",
    "let e = [1, 2, 3][3]",
    "let e = [1, 2, 3][-1]",
    "let e = [][0]",
    "let a = []\na[0] = 1",
    "let e = {\"a\": 1}[\"b\"]",
    "let e = {1.5: 2}",
    "let m = {}\nm[[1]] = 2",
    "let e = {}[nil]",
    "let e = 1(2)",
    "let e = nil()",
    "let e = \"s\"(1)",
    "let f = fn(a, b) { return a }\nf(1)",
    "let f = fn() { return 1 }\nf(1, 2, 3)",
    "let e = len(1)",
    "let e = len()",
    "let e = str(1, 2)",
    "let e = min()",
    "let e = max(1)",
    "let e = sqrt(\"x\")",
    "let e = \"a\" + 1",
    "let e = 1 + \"a\"",
    "let e = nil + 1",
    "let e = [1] + [2]",
    "let e = \"a\" - \"b\"",
    "let e = 1 < \"a\"",
    "let e = [] < []",
    "let e = nil < nil",
    "let e = ~1.5",
    "let e = 1.5 & 1",
    "let e = -\"a\"",
    "let e = int(\"abc\")",
    "let e = int(\"99999999999999999999\")",
    "let e = int(1e300)",
    "let e = int(0.0 / 0.0)",
    "let e = float(\"x\")",
    "let e = chr(-1)",
    "let e = chr(1114112)",
    "let e = chr(55296)",
    "let e = array(-1, 0)",
    "let e = array(100000000, 0)",
    "let e = \"é\".slice(0, 1)",
    "let e = \"abc\".slice(2, 1)",
    "let e = \"abc\".slice(0, 99)",
    "let e = \"abc\".byte(3)",
    "let e = \"abc\".byte(-1)",
    "let e = \"a,b\".split(\"\")",
    "let e = [].pop()",
    "let e = [1].remove(1)",
    "let e = [1].insert(2, 0)",
    "let e = [1].insert(-1, 0)",
    "let e = [1, 2].slice(2, 1)",
    "let e = [1, 2].slice(-1, 1)",
    "let e = {}.remove(\"k\")",
    "let e = [1].nope()",
    "let e = 1.nope()",
    "let e = nil.x",
    "let e = (1).x",
    "nil.x = 1",
    "let e = pow(10, 400)",
    "let e = pow(-8, 0.5)",
    "let e = \"${1:.999}\"",
    "for i in 1.5..3 { }",
    "for i in 0..\"a\" { }",
    "for x in 5 { }",
    "for x in nil { }",
    "assert(false)",
    "assert(nil, \"message\")",
    "assert(false, 42)",
    "error(\"boom\")",
    "error(nil)",
    "error([1, 2])",
    "let e = type()",
    "let e = clock(1)",
    "let s = \"x\"\nwhile true { s = s + s }",
    "let a = []\nwhile true { a.push([1, 2, 3, 4, 5, 6, 7, 8]) }",
    "let m = {}\nlet i = 0\nwhile true { m[i] = \"v\"; i += 1 }",
    "fn rec(n) { return rec(n + 1) + 1 }\nrec(0)",
    "let g = fn(n) { return n }\ng = fn(n) { return g(n) + 1 }\ng(0)",
    "while true { }",
    "loop { }",
];

// ---------------------------------------------------------------------------
// Grammar-based programs

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Int,
    Float,
    Str,
    Bool,
    Arr,
    Map,
    Func(usize),
    Obj(usize),
    Nil,
}

#[derive(Clone, Debug)]
struct Var {
    name: String,
    ty: Ty,
    /// False for nested `fn` names (constants) and `self`.
    assignable: bool,
}

struct StructPlan {
    name: String,
    fields: Vec<String>,
    /// (name, arity without `self`); methods return Int.
    methods: Vec<(String, usize)>,
    /// (name, arity); statics return an instance.
    statics: Vec<(String, usize)>,
}

const FIELD_POOL: &[&str] = &["x", "y", "v", "n", "next", "items", "label", "total"];
const METHOD_POOL: &[&str] = &["get", "step", "area", "push", "length", "m0", "m1", "describe", "keys"];
const STATIC_POOL: &[&str] = &["new", "origin", "make"];
const WORDS: &[&str] = &["a", "hello", "x y", "é", "😀", "日本", ",", "", "key", "0", "-", "{}", "[1]", "nil"];
const ESCAPES: &[&str] = &["\\n", "\\t", "\\\\", "\\\"", "\\0", "\\u{1F600}", "\\u{e9}", "\\r", "\\u{0}"];
const FLOATS: &[&str] =
    &["0.5", "1.5", "2.0", "0.0", "-0.0", "1e9", "2.5e-3", "1e308", "3.14159", "1e-7", "1e16", "1_0.2_5"];
const INT_EDGES: &[&str] = &[
    "9223372036854775807",
    "-9223372036854775808",
    "0xff",
    "0b1010",
    "1_000_000",
    "4294967296",
    "0x7fff_ffff_ffff_ffff",
    "-1",
    "63",
    "64",
    "3037000500",
];

/// Grammar-based generator of (mostly) well-formed, well-scoped Vela programs.
/// Values are lightly typed ([`Ty`]) so most operations make sense and the
/// program runs for a while; a few percent of expressions get a random type
/// and a few statements are error snippets, so runtime errors happen too.
struct Gen<'r> {
    r: &'r mut Rng,
    /// `scopes[0]` holds the globals.
    scopes: Vec<Vec<Var>>,
    fns: Vec<(String, usize)>,
    structs: Vec<StructPlan>,
    in_loop: bool,
    in_fn: bool,
    depth: usize,
    max_depth: usize,
    nodes: usize,
    max_nodes: usize,
    one_line: bool,
    no_struct: bool,
    chaotic: bool,
    /// Every loop is bounded by a small count (runs without an instruction budget).
    terminating: bool,
    /// Extra statements for the next function body (a long `main`).
    body_extra: usize,
    ids: usize,
    indent: usize,
}

impl<'r> Gen<'r> {
    fn new(r: &'r mut Rng) -> Gen<'r> {
        let max_depth = r.range(2, 7);
        let max_nodes = r.range(40, 700);
        let chaotic = r.chance(20);
        Gen {
            r,
            scopes: vec![Vec::new()],
            fns: Vec::new(),
            structs: Vec::new(),
            in_loop: false,
            in_fn: false,
            depth: 0,
            max_depth,
            nodes: 0,
            max_nodes,
            one_line: false,
            no_struct: false,
            chaotic,
            terminating: false,
            body_extra: 0,
            ids: 0,
            indent: 0,
        }
    }

    /// A generator of programs whose loops all end after a few iterations
    /// (for the JIT, which runs without an instruction budget).
    fn terminating(r: &'r mut Rng) -> Gen<'r> {
        let mut g = Gen::new(r);
        g.terminating = true;
        g
    }

    /// True with `percent` probability in the "chaotic" programs (a fifth),
    /// which also make the mistakes that end in compile or runtime errors.
    fn chaos(&mut self, percent: u64) -> bool {
        self.chaotic && self.r.chance(percent)
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.ids += 1;
        format!("{prefix}{}", self.ids)
    }

    fn declare(&mut self, name: &str, ty: Ty) {
        self.scopes.last_mut().unwrap().push(Var { name: name.to_string(), ty, assignable: true });
    }

    /// A visible variable of type `ty` (innermost binding of each name wins).
    fn var_of(&mut self, ty: Ty) -> Option<String> {
        let mut seen = Vec::new();
        let mut found = Vec::new();
        for scope in self.scopes.iter().rev() {
            for v in scope.iter().rev() {
                if seen.contains(&v.name) {
                    continue;
                }
                seen.push(v.name.clone());
                if v.ty == ty {
                    found.push(v.name.clone());
                }
            }
        }
        if found.is_empty() {
            None
        } else {
            Some(found.swap_remove(self.r.below(found.len())))
        }
    }

    /// Any visible variable with its type.
    fn any_var(&mut self) -> Option<Var> {
        let all: Vec<Var> = self.scopes.iter().flatten().cloned().collect();
        if all.is_empty() {
            None
        } else {
            Some(self.r.pick(&all).clone())
        }
    }

    fn random_ty(&mut self) -> Ty {
        let n_structs = self.structs.len();
        let structs = if n_structs > 0 { 7 } else { 0 };
        // Terminating programs feed the JIT, which records numeric code and
        // aborts on allocation, strings, maps and captured variables.
        let weights = if self.terminating {
            [60, 15, 2, 8, 10, 1, 1, structs / 2, 0]
        } else {
            [35, 8, 12, 8, 14, 9, 6, structs, 1]
        };
        match self.r.weighted(&weights) {
            0 => Ty::Int,
            1 => Ty::Float,
            2 => Ty::Str,
            3 => Ty::Bool,
            4 => Ty::Arr,
            5 => Ty::Map,
            6 => Ty::Func(self.r.below(3)),
            7 => Ty::Obj(self.r.below(n_structs)),
            _ => Ty::Nil,
        }
    }

    fn sep(&self) -> String {
        if self.one_line {
            "; ".to_string()
        } else {
            format!("\n{}", "    ".repeat(self.indent))
        }
    }

    /// `{ parts }` laid out for the current indentation (parts were generated
    /// at `indent + 1`).
    fn wrap(&self, parts: &[String]) -> String {
        if parts.is_empty() {
            return "{ }".to_string();
        }
        if self.one_line {
            return format!("{{ {} }}", parts.join("; "));
        }
        let inner = format!("\n{}", "    ".repeat(self.indent + 1));
        let mut s = "{".to_string();
        for p in parts {
            s.push_str(&inner);
            s.push_str(p);
        }
        s.push('\n');
        s.push_str(&"    ".repeat(self.indent));
        s.push('}');
        s
    }

    /// A block of `n` statements (in a new scope) with an optional tail expression.
    fn block(&mut self, prelude: Vec<String>, n: usize, tail: Option<Ty>) -> String {
        self.scopes.push(Vec::new());
        self.indent += 1;
        self.depth += 1;
        let mut parts = prelude;
        for _ in 0..n {
            let s = self.stmt();
            parts.push(s);
        }
        if let Some(ty) = tail {
            let e = self.expr(ty);
            parts.push(e);
        }
        self.depth -= 1;
        self.indent -= 1;
        self.scopes.pop();
        self.wrap(&parts)
    }

    fn body_len(&mut self) -> usize {
        if self.depth >= self.max_depth || self.nodes >= self.max_nodes {
            self.r.below(2)
        } else {
            self.r.range(0, 4)
        }
    }

    // --- programs and declarations

    fn program(&mut self) -> String {
        for i in 0..self.r.skewed(3) {
            let mut fields: Vec<String> = Vec::new();
            for _ in 0..self.r.range(1, 4) {
                let f = self.r.pick(FIELD_POOL).to_string();
                if !fields.contains(&f) {
                    fields.push(f);
                }
            }
            let mut methods: Vec<(String, usize)> = Vec::new();
            for _ in 0..self.r.range(0, 3) {
                let m = self.r.pick(METHOD_POOL).to_string();
                if !methods.iter().any(|(n, _)| *n == m) {
                    methods.push((m, self.r.below(3)));
                }
            }
            let statics =
                if self.r.chance(50) { vec![(self.r.pick(STATIC_POOL).to_string(), self.r.below(3))] } else { vec![] };
            self.structs.push(StructPlan { name: format!("S{i}"), fields, methods, statics });
        }
        for i in 0..self.r.range(0, 4) {
            let arity = self.r.below(4);
            self.fns.push((format!("f{i}"), arity));
        }

        enum Item {
            Struct(usize),
            Impl(usize),
            Fn(usize),
            Stmt,
            Main,
        }
        let mut items: Vec<Item> = Vec::new();
        for i in 0..self.fns.len() {
            items.push(Item::Fn(i));
        }
        for i in 0..self.structs.len() {
            items.push(Item::Impl(i));
        }
        // Terminating programs keep most statements in `main`, where
        // variables are locals (the JIT aborts on global assignment).
        let in_main = self.terminating && self.r.chance(75);
        let top = if in_main { self.r.range(0, 3) } else { self.r.range(2, 14) };
        for _ in 0..top {
            items.push(Item::Stmt);
        }
        if in_main || self.r.chance(30) {
            items.push(Item::Main);
        }
        // Shuffle (Fisher-Yates); struct declarations usually come first.
        for i in (1..items.len()).rev() {
            let j = self.r.below(i + 1);
            items.swap(i, j);
        }
        let mut head: Vec<Item> = (0..self.structs.len()).map(Item::Struct).collect();
        if self.r.chance(85) {
            head.append(&mut items);
            items = head;
        } else {
            items.append(&mut head);
        }

        let mut out = String::new();
        for item in items {
            let text = match item {
                Item::Struct(i) => self.struct_decl(i),
                Item::Impl(i) => self.impl_block(i),
                Item::Fn(i) => {
                    let (name, arity) = self.fns[i].clone();
                    let ret = if self.r.chance(90) { Ty::Int } else { Ty::Nil };
                    self.fn_decl(&name, arity, None, ret)
                }
                Item::Stmt => self.stmt(),
                Item::Main => {
                    self.body_extra = if self.terminating { self.r.range(3, 10) } else { 0 };
                    let text = self.fn_decl("main", 0, None, Ty::Nil);
                    self.body_extra = 0;
                    text
                }
            };
            out.push_str(&text);
            out.push('\n');
        }
        out
    }

    fn struct_decl(&mut self, i: usize) -> String {
        let fields: Vec<String> = self.structs[i]
            .fields
            .clone()
            .into_iter()
            .map(|f| if self.r.chance(20) { format!("{f}: Int") } else { f })
            .collect();
        format!("struct {} {{ {} }}", self.structs[i].name, fields.join(", "))
    }

    fn impl_block(&mut self, i: usize) -> String {
        let methods = self.structs[i].methods.clone();
        let statics = self.structs[i].statics.clone();
        let mut parts = Vec::new();
        self.indent += 1;
        for (name, arity) in methods {
            parts.push(self.fn_decl(&name, arity, Some(i), Ty::Int));
        }
        for (name, arity) in statics {
            parts.push(self.fn_decl(&name, arity, None, Ty::Obj(i)));
        }
        self.indent -= 1;
        format!("impl {} {}", self.structs[i].name, self.wrap(&parts))
    }

    /// `fn name(params) { body; return ret }` at top level or in an impl
    /// (`self_of` is the struct of a method): sees only the globals.
    fn fn_decl(&mut self, name: &str, arity: usize, self_of: Option<usize>, ret: Ty) -> String {
        // Top-level statements may call a function before the globals it
        // reads are initialised: only some functions read globals.
        let globals = if self.chaotic || self.r.chance(30) { self.scopes[0].clone() } else { Vec::new() };
        let saved = std::mem::replace(&mut self.scopes, vec![globals]);
        let (saved_loop, saved_fn, saved_depth) = (self.in_loop, self.in_fn, self.depth);
        self.in_loop = false;
        self.in_fn = true;
        self.depth = 0;
        let mut params = Vec::new();
        let mut names = Vec::new();
        if let Some(s) = self_of {
            params.push(Var { name: "self".into(), ty: Ty::Obj(s), assignable: false });
            names.push("self".to_string());
        }
        for _ in 0..arity {
            let p = self.fresh("p");
            names.push(if self.r.chance(10) { format!("{p}: Int") } else { p.clone() });
            params.push(Var { name: p, ty: Ty::Int, assignable: true });
        }
        let body = self.fn_body(params, ret);
        self.scopes = saved;
        self.in_loop = saved_loop;
        self.in_fn = saved_fn;
        self.depth = saved_depth;
        let ret_ann = if self.r.chance(10) { " -> Int" } else { "" };
        format!("fn {name}({}){ret_ann} {body}", names.join(", "))
    }

    fn fn_body(&mut self, params: Vec<Var>, ret: Ty) -> String {
        self.scopes.push(params);
        self.indent += 1;
        self.depth += 1;
        let mut parts = Vec::new();
        let n = self.body_len() + 1 + std::mem::take(&mut self.body_extra);
        for _ in 0..n {
            let s = self.stmt();
            parts.push(s);
        }
        if ret != Ty::Nil || self.r.chance(20) {
            let e = self.expr(ret);
            parts.push(format!("return {e}"));
        }
        self.depth -= 1;
        self.indent -= 1;
        self.scopes.pop();
        self.wrap(&parts)
    }

    /// `fn(params) { ... }`: a closure that sees everything in scope.
    fn closure(&mut self, arity: usize) -> String {
        let (saved_loop, saved_fn) = (self.in_loop, self.in_fn);
        self.in_loop = false;
        self.in_fn = true;
        let mut params = Vec::new();
        for _ in 0..arity {
            let p = self.fresh("c");
            params.push(Var { name: p, ty: Ty::Int, assignable: true });
        }
        let names: Vec<String> = params.iter().map(|v| v.name.clone()).collect();
        let body = self.fn_body(params, Ty::Int);
        self.in_loop = saved_loop;
        self.in_fn = saved_fn;
        format!("fn({}) {body}", names.join(", "))
    }

    // --- statements

    fn stmt(&mut self) -> String {
        self.nodes += 1;
        let deep = self.depth >= self.max_depth || self.nodes >= self.max_nodes;
        let b = |on: bool, w: u32| if on { w } else { 0 };
        let weights = [
            22,                                                 // 0 let
            12,                                                 // 1 assign
            8,                                                  // 2 index / field assign
            10,                                                 // 3 call statement
            b(!self.terminating, 5),                            // 4 print
            b(!deep, 10),                                       // 5 if
            b(!deep, 4),                                        // 6 while
            b(!deep, 6),                                        // 7 for range
            b(!deep, 5),                                        // 8 for in
            b(!deep, 3),                                        // 9 loop
            b(self.in_loop, 3),                                 // 10 break / continue
            b(self.in_fn, 3),                                   // 11 return
            b(!deep && !self.terminating, 3),                   // 12 nested fn
            b(!deep && !self.one_line, 2),                      // 13 block
            b(!deep && !self.one_line && !self.terminating, 2), // 14 closures capturing loop variables
            b(self.chaotic, 2),                                 // 15 assert
            b(self.chaotic, 3),                                 // 16 error snippet
        ];
        match self.r.weighted(&weights) {
            0 => {
                let ty = self.random_ty();
                let name = self.fresh("v");
                let s = if self.r.chance(3) {
                    self.declare(&name, Ty::Nil);
                    return format!("let {name}");
                } else {
                    let e = self.expr(ty);
                    let ann = if self.r.chance(5) { ": Int" } else { "" };
                    format!("let {name}{ann} = {e}")
                };
                self.declare(&name, ty);
                s
            }
            1 => match self.any_var() {
                // Loop counters of terminating programs stay unassignable even
                // in chaotic ones: their loops must end.
                Some(v) if v.assignable || (!self.terminating && self.chaos(10)) => {
                    let compound = match v.ty {
                        Ty::Int | Ty::Float => Some(*self.r.pick(&["+=", "-=", "*=", "/=", "%=", "+=", "-="])),
                        Ty::Str => Some("+="),
                        _ => None,
                    };
                    match compound {
                        Some(op) if self.r.chance(50) => {
                            let rhs =
                                if op == "/=" || op == "%=" { self.r.range(1, 9).to_string() } else { self.expr(v.ty) };
                            format!("{} {op} {rhs}", v.name)
                        }
                        _ => {
                            let e = self.expr(v.ty);
                            format!("{} = {e}", v.name)
                        }
                    }
                }
                _ => self.call_stmt(),
            },
            2 => {
                let kind = self.r.below(3);
                match kind {
                    0 => match self.var_of(Ty::Arr) {
                        Some(a) => {
                            let i = self.index_expr();
                            let e = self.expr(Ty::Int);
                            let op = if self.r.chance(25) { "+=" } else { "=" };
                            match i.parse::<usize>() {
                                Ok(n) if !self.chaos(40) => {
                                    format!("if {a}.length() > {n} {{ {a}[{i}] {op} {e} }}")
                                }
                                _ => format!("{a}[{i}] {op} {e}"),
                            }
                        }
                        None => self.call_stmt(),
                    },
                    1 => match self.var_of(Ty::Map) {
                        Some(m) => {
                            let k = self.map_key();
                            let e = self.expr(Ty::Int);
                            let op = if self.r.chance(15) { "+=" } else { "=" };
                            format!("{m}[{k}] {op} {e}")
                        }
                        None => self.call_stmt(),
                    },
                    _ => {
                        let objs: Vec<usize> = (0..self.structs.len()).collect();
                        for &s in &objs {
                            if let Some(o) = self.var_of(Ty::Obj(s)) {
                                let f = self.field_of(s);
                                let e = self.expr(Ty::Int);
                                let op = if self.r.chance(25) { "+=" } else { "=" };
                                return format!("{o}.{f} {op} {e}");
                            }
                        }
                        self.call_stmt()
                    }
                }
            }
            3 => self.call_stmt(),
            4 => {
                let mut args = Vec::new();
                for _ in 0..self.r.skewed(3) {
                    let ty = self.random_ty();
                    args.push(self.expr(ty));
                }
                format!("print({})", args.join(", "))
            }
            5 => {
                let c = self.cond();
                let n = self.body_len();
                let mut s = format!("if {c} {}", self.block(vec![], n, None));
                while self.r.chance(30) {
                    let c = self.cond();
                    let n = self.body_len();
                    write!(s, " else if {c} {}", self.block(vec![], n, None)).unwrap();
                }
                if self.r.chance(50) {
                    let n = self.body_len();
                    let nl = if self.r.chance(20) && !self.one_line { self.sep() } else { " ".to_string() };
                    write!(s, "{nl}else {}", self.block(vec![], n, None)).unwrap();
                }
                s
            }
            6 => {
                let w = self.fresh("w");
                let k = self.loop_count();
                let c = if self.r.chance(70) {
                    format!("{w} < {k}")
                } else {
                    let extra = self.cond();
                    format!("{w} < {k} && {extra}")
                };
                self.declare(&w, Ty::Int);
                self.scopes.last_mut().unwrap().last_mut().unwrap().assignable = !self.terminating;
                let saved = self.in_loop;
                self.in_loop = true;
                let n = self.body_len();
                let body = self.block(vec![format!("{w} += 1")], n, None);
                self.in_loop = saved;
                format!("let {w} = 0{}while {c} {body}", self.sep())
            }
            7 => {
                let i = self.fresh("i");
                let free = !self.terminating && self.r.chance(30);
                let lo = if free { self.expr(Ty::Int) } else { self.r.below(3).to_string() };
                let free = !self.terminating && self.r.chance(30);
                let hi = if free { self.expr(Ty::Int) } else { self.loop_count().to_string() };
                let op = if self.r.chance(30) { "..=" } else { ".." };
                let saved = self.in_loop;
                self.in_loop = true;
                self.scopes.push(vec![Var { name: i.clone(), ty: Ty::Int, assignable: true }]);
                let n = self.body_len();
                let body = self.block(vec![], n, None);
                self.scopes.pop();
                self.in_loop = saved;
                format!("for {i} in {lo}{op}{hi} {body}")
            }
            8 => {
                let x = self.fresh("x");
                let (src, ty) = match self.r.below(if self.chaotic { 5 } else { 4 }) {
                    // A terminating program iterates over a copy: the body may grow the original.
                    0..=2 if self.terminating => {
                        let a = self.head_expr(Ty::Arr);
                        let a = self.postfix_base(a);
                        (format!("{a}.slice(0, {a}.length())"), Ty::Int)
                    }
                    0..=2 => (self.head_expr(Ty::Arr), Ty::Int),
                    3 if self.terminating => {
                        let m = self.head_expr(Ty::Map);
                        let m = self.postfix_base(m);
                        (format!("{m}.keys()"), Ty::Str)
                    }
                    3 => (self.head_expr(Ty::Map), Ty::Str),
                    _ => {
                        let ty = self.random_ty();
                        (self.head_expr(ty), Ty::Int)
                    }
                };
                let saved = self.in_loop;
                self.in_loop = true;
                self.scopes.push(vec![Var { name: x.clone(), ty, assignable: true }]);
                let n = self.body_len();
                let body = self.block(vec![], n, None);
                self.scopes.pop();
                self.in_loop = saved;
                format!("for {x} in {src} {body}")
            }
            9 => {
                let l = self.fresh("l");
                let k = self.loop_count();
                self.declare(&l, Ty::Int);
                self.scopes.last_mut().unwrap().last_mut().unwrap().assignable = !self.terminating;
                let saved = self.in_loop;
                self.in_loop = true;
                let n = self.body_len();
                let body = self.block(vec![format!("{l} += 1"), format!("if {l} > {k} {{ break }}")], n, None);
                self.in_loop = saved;
                format!("let {l} = 0{}loop {body}", self.sep())
            }
            10 => {
                let kw = if self.r.chance(60) { "break" } else { "continue" };
                if self.r.chance(60) {
                    let c = self.cond();
                    format!("if {c} {{ {kw} }}")
                } else {
                    kw.to_string()
                }
            }
            11 => {
                if self.r.chance(80) {
                    let e = self.expr(Ty::Int);
                    format!("return {e}")
                } else {
                    "return".to_string()
                }
            }
            12 => {
                let name = self.fresh("g");
                let arity = self.r.below(3);
                // Declared first: a nested fn may call itself. Its name is a constant.
                self.declare(&name, Ty::Func(arity));
                self.scopes.last_mut().unwrap().last_mut().unwrap().assignable = self.chaotic;
                let (saved_loop, saved_fn) = (self.in_loop, self.in_fn);
                self.in_loop = false;
                self.in_fn = true;
                let mut params = Vec::new();
                for _ in 0..arity {
                    let p = self.fresh("q");
                    params.push(Var { name: p, ty: Ty::Int, assignable: true });
                }
                let names: Vec<String> = params.iter().map(|v| v.name.clone()).collect();
                let body = self.fn_body(params, Ty::Int);
                self.in_loop = saved_loop;
                self.in_fn = saved_fn;
                format!("fn {name}({}) {body}", names.join(", "))
            }
            13 => {
                let n = self.body_len();
                self.block(vec![], n, None)
            }
            14 => {
                let fs = self.fresh("fs");
                let i = self.fresh("i");
                let k = self.r.range(1, 5);
                let captured = if self.r.chance(50) { i.clone() } else { format!("{i} * 2 + 1") };
                let sep = self.sep();
                let idx = self.r.below(k + usize::from(self.chaotic));
                let r = self.fresh("v");
                self.declare(&fs, Ty::Arr);
                self.declare(&r, Ty::Int);
                format!(
                    "let {fs} = []{sep}for {i} in 0..{k} {{ {fs}.push(fn() {{ {i} += 1; return {captured} }}) }}{sep}let {r} = {fs}[{idx}]()"
                )
            }
            15 => {
                let c = self.expr(Ty::Bool);
                if self.r.chance(50) {
                    format!("assert({c})")
                } else {
                    format!("assert({c}, \"assertion ${{1 + 1}}\")")
                }
            }
            _ => {
                let mut s = *self.r.pick(ERROR_SNIPPETS);
                while self.terminating && (s.contains("while true") || s.contains("loop")) {
                    s = *self.r.pick(ERROR_SNIPPETS);
                }
                if self.one_line {
                    s.replace('\n', "; ")
                } else {
                    s.replace('\n', &self.sep())
                }
            }
        }
    }

    fn call_stmt(&mut self) -> String {
        match self.r.below(6) {
            0 if !self.fns.is_empty() => {
                let (f, arity) = self.r.pick(&self.fns).clone();
                let args = self.args(arity);
                format!("{f}({args})")
            }
            1 => match self.var_of(Ty::Arr) {
                Some(a) => {
                    let e = self.expr(Ty::Int);
                    format!("{a}.push({e})")
                }
                None => "print()".to_string(),
            },
            2 => match self.var_of(Ty::Map) {
                Some(m) => {
                    let k = self.map_key();
                    if self.r.chance(70) {
                        let e = self.expr(Ty::Int);
                        format!("{m}[{k}] = {e}")
                    } else {
                        format!("{m}.remove({k})")
                    }
                }
                None => "print(1)".to_string(),
            },
            3 => {
                let arity = self.r.below(3);
                match self.var_of(Ty::Func(arity)) {
                    Some(f) => {
                        let args = self.args(arity);
                        format!("{f}({args})")
                    }
                    None => {
                        let c = self.closure(arity);
                        let args = self.args(arity);
                        format!("({c})({args})")
                    }
                }
            }
            _ => self.method_call_int(),
        }
    }

    /// A method call returning an Int, on whatever is in scope.
    fn method_call_int(&mut self) -> String {
        let structs = self.structs.len();
        if structs > 0 && self.r.chance(50) {
            let s = self.r.below(structs);
            let recv = self.expr(Ty::Obj(s));
            let recv = self.postfix_base(recv);
            let methods = self.structs[s].methods.clone();
            if !methods.is_empty() && !self.chaos(10) {
                let (m, arity) = self.r.pick(&methods).clone();
                let arity = if self.chaos(5) { arity + 1 } else { arity };
                let args = self.args(arity);
                return format!("{recv}.{m}({args})");
            }
            if self.chaotic {
                let m = self.r.pick(METHOD_POOL).to_string();
                return format!("{recv}.{m}()");
            }
        }
        match self.r.below(4) {
            0 => {
                let a = self.expr(Ty::Arr);
                let a = self.postfix_base(a);
                format!("{a}.length()")
            }
            1 => {
                let s = self.expr(Ty::Str);
                let s = self.postfix_base(s);
                let i = self.r.below(4);
                if self.r.chance(50) {
                    format!("{s}.length()")
                } else {
                    self.guard(&s, i, format!("{s}.byte({i})"))
                }
            }
            2 => {
                let m = self.expr(Ty::Map);
                let m = self.postfix_base(m);
                let k = self.map_key();
                format!("{m}.get({k}, 0)")
            }
            _ => {
                let a = self.expr(Ty::Arr);
                let a = self.postfix_base(a);
                if self.r.chance(50) {
                    self.guard(&a, 0, format!("{a}.pop()"))
                } else {
                    self.guard(&a, 0, format!("{a}.remove(0)"))
                }
            }
        }
    }

    /// Parenthesises an expression unless it is a plain name or literal, so a
    /// postfix operator applies to all of it.
    fn postfix_base(&mut self, e: String) -> String {
        let simple = e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || (e.starts_with('[') && e.ends_with(']') && !e.contains('\n'))
            || (e.starts_with('"') && e.ends_with('"') && e.matches('"').count() == 2);
        if simple && !e.starts_with(|c: char| c.is_ascii_digit()) {
            e
        } else {
            format!("({e})")
        }
    }

    /// `(if recv.length() > n { e } else { 0 })` most of the time, so
    /// indexing rarely fails (a failure ends the program's run early).
    fn guard(&mut self, recv: &str, n: usize, e: String) -> String {
        self.guard_or(recv, n, e, "0")
    }

    fn guard_or(&mut self, recv: &str, n: usize, e: String, fallback: &str) -> String {
        if recv.len() < 80 && !self.chaos(40) {
            format!("(if {recv}.length() > {n} {{ {e} }} else {{ {fallback} }})")
        } else {
            e
        }
    }

    fn args(&mut self, n: usize) -> String {
        let n = if self.chaos(3) { self.r.below(5) } else { n };
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(self.expr(Ty::Int));
        }
        v.join(", ")
    }

    fn cond(&mut self) -> String {
        let saved = self.no_struct;
        self.no_struct = true;
        let c = if self.r.chance(90) {
            self.expr(Ty::Bool)
        } else {
            let ty = self.random_ty();
            self.expr(ty)
        };
        self.no_struct = saved;
        c
    }

    fn head_expr(&mut self, ty: Ty) -> String {
        let saved = self.no_struct;
        self.no_struct = true;
        let e = self.expr(ty);
        self.no_struct = saved;
        e
    }

    fn loop_count(&mut self) -> usize {
        if self.terminating {
            // Enough iterations for a loop to get hot at a low --hot-loop.
            self.r.range(0, 12)
        } else if self.r.chance(90) {
            self.r.range(0, 6)
        } else {
            self.r.range(10, 300)
        }
    }

    fn index_expr(&mut self) -> String {
        if self.r.chance(80) {
            self.r.skewed(4).to_string()
        } else {
            self.expr(Ty::Int)
        }
    }

    fn map_key(&mut self) -> String {
        let odd = if self.chaotic { 5 } else { 0 };
        match self.r.weighted(&[60, 25, 5, 5, odd]) {
            0 => format!("\"{}\"", self.r.pick(&["a", "b", "key", "", "é"])),
            1 => self.r.below(5).to_string(),
            2 => "true".to_string(),
            3 => self.expr(Ty::Str),
            _ => {
                let ty = self.random_ty();
                self.expr(ty)
            }
        }
    }

    fn field_of(&mut self, s: usize) -> String {
        if self.chaos(3) {
            return "nofield".to_string();
        }
        let fields = self.structs[s].fields.clone();
        self.r.pick(&fields).clone()
    }

    // --- expressions

    fn expr(&mut self, ty: Ty) -> String {
        let ty = if self.chaos(5) { self.random_ty() } else { ty };
        self.nodes += 1;
        self.depth += 1;
        let leaf = self.depth >= self.max_depth + 2 || self.nodes >= self.max_nodes || self.r.chance(35);
        let e = if leaf { self.atom(ty) } else { self.compound(ty) };
        self.depth -= 1;
        e
    }

    fn int_lit(&mut self) -> String {
        let edges = if self.chaotic { 10 } else { 2 };
        match self.r.weighted(&[70, 15, 5, edges]) {
            0 => self.r.below(11).to_string(),
            1 => self.r.below(1001).to_string(),
            2 => format!("-{}", self.r.range(1, 20)),
            _ => self.r.pick(INT_EDGES).to_string(),
        }
    }

    fn str_lit(&mut self) -> String {
        let mut s = "\"".to_string();
        for _ in 0..self.r.skewed(4) {
            match self.r.weighted(&[50, 15, 5, 25, 5]) {
                0 => s.push_str(self.r.pick_str(WORDS)),
                1 => s.push_str(self.r.pick_str(ESCAPES)),
                2 => s.push_str("$x "),
                3 if self.depth < self.max_depth + 2 => {
                    let saved = (self.one_line, self.no_struct);
                    self.one_line = true;
                    self.no_struct = false;
                    self.depth += 2;
                    let ty = self.random_ty();
                    let e = self.expr(ty);
                    self.depth -= 2;
                    (self.one_line, self.no_struct) = saved;
                    write!(s, "${{{e}}}").unwrap();
                }
                _ => {
                    let saved = (self.one_line, self.no_struct);
                    self.one_line = true;
                    self.no_struct = false;
                    let ty = if self.r.chance(50) { Ty::Int } else { Ty::Float };
                    let e = self.atom(ty);
                    (self.one_line, self.no_struct) = saved;
                    let n = if self.r.chance(95) { self.r.below(8) } else { self.r.range(20, 400) };
                    write!(s, "${{{e}:.{n}}}").unwrap();
                }
            }
        }
        s.push('"');
        s
    }

    fn map_lit(&mut self) -> String {
        let mut entries = Vec::new();
        for _ in 0..self.r.skewed(4) {
            let k = self.map_key();
            let v = self.expr(Ty::Int);
            entries.push(format!("{k}: {v}"));
        }
        let trailing = if !entries.is_empty() && self.r.chance(10) { "," } else { "" };
        let m = format!("{{{}{trailing}}}", entries.join(", "));
        if self.no_struct {
            format!("({m})")
        } else {
            m
        }
    }

    fn arr_lit(&mut self) -> String {
        let mut items = Vec::new();
        for _ in 0..self.r.skewed(5) {
            let ty = if self.r.chance(85) { Ty::Int } else { self.random_ty() };
            items.push(self.expr(ty));
        }
        format!("[{}]", items.join(", "))
    }

    fn struct_lit(&mut self, s: usize) -> String {
        let fields = self.structs[s].fields.clone();
        let mut parts = Vec::new();
        for f in fields {
            if self.r.chance(85) {
                let e = self.expr(Ty::Int);
                parts.push(format!("{f}: {e}"));
            }
        }
        if self.chaos(3) {
            parts.push("bogus: 1".to_string());
        }
        let lit = format!("{} {{ {} }}", self.structs[s].name, parts.join(", "));
        if self.no_struct {
            format!("({lit})")
        } else {
            lit
        }
    }

    fn atom(&mut self, ty: Ty) -> String {
        match ty {
            Ty::Int => match self.var_of(ty) {
                Some(v) if self.r.chance(55) => v,
                _ => self.int_lit(),
            },
            Ty::Float => match self.var_of(ty) {
                Some(v) if self.r.chance(40) => v,
                _ => self.r.pick(FLOATS).to_string(),
            },
            Ty::Str => match self.var_of(ty) {
                Some(v) if self.r.chance(40) => v,
                _ => self.str_lit(),
            },
            Ty::Bool => match self.var_of(ty) {
                Some(v) if self.r.chance(30) => v,
                _ => self.r.pick(&["true", "false"]).to_string(),
            },
            Ty::Arr => match self.var_of(ty) {
                Some(v) if self.r.chance(60) => v,
                _ => self.r.pick(&["[]", "[1, 2, 3]", "[0]", "[\"a\", 2.5, nil]"]).to_string(),
            },
            Ty::Map => match self.var_of(ty) {
                Some(v) if self.r.chance(60) => v,
                _ => {
                    let m = *self.r.pick(&["{}", "{\"a\": 1, \"b\": 2}", "{1: 2, true: 3}"]);
                    if self.no_struct {
                        format!("({m})")
                    } else {
                        m.to_string()
                    }
                }
            },
            Ty::Func(n) => match self.var_of(ty) {
                Some(v) if self.r.chance(60) => v,
                _ => {
                    let named: Vec<String> =
                        self.fns.iter().filter(|(_, a)| *a == n).map(|(name, _)| name.clone()).collect();
                    if !named.is_empty() && self.r.chance(60) {
                        self.r.pick(&named).clone()
                    } else {
                        let builtin = match n {
                            0 => "clock",
                            1 => *self.r.pick(&["abs", "len", "str", "int", "floor", "type"]),
                            _ => *self.r.pick(&["min", "max", "pow", "array"]),
                        };
                        builtin.to_string()
                    }
                }
            },
            Ty::Obj(s) => match self.var_of(ty) {
                Some(v) if self.r.chance(60) => v,
                _ => self.struct_lit(s),
            },
            Ty::Nil => "nil".to_string(),
        }
    }

    fn binop(&mut self, ty: Ty, ops: &[&str]) -> String {
        let op = *self.r.pick(ops);
        let a = self.expr(ty);
        let b = match op {
            "/" | "%" if self.r.chance(85) => self.r.range(1, 9).to_string(),
            "<<" | ">>" if self.r.chance(90) => self.r.below(64).to_string(),
            _ => self.expr(ty),
        };
        format!("({a} {op} {b})")
    }

    fn compound(&mut self, ty: Ty) -> String {
        match ty {
            Ty::Int => match self.r.weighted(if self.terminating {
                &[30, 8, 8, 5, 2, 4, 8, 1, 5, 8, 2, 3, 4, 0, 1, 1]
            } else {
                &[25, 6, 6, 5, 6, 5, 6, 6, 5, 8, 5, 5, 3, 3, 3, 3]
            }) {
                0 => self.binop(Ty::Int, &["+", "-", "*", "+", "-", "*", "/", "%"]),
                1 => self.binop(Ty::Int, &["&", "|", "^", "<<", ">>"]),
                2 => {
                    // An unparenthesised chain: precedence is the parser's business.
                    let n = self.r.range(2, 5);
                    let mut s = self.atom(Ty::Int);
                    for _ in 1..n {
                        let op = *self.r.pick(&["+", "-", "*", "&", "|", "^"]);
                        let b = self.atom(Ty::Int);
                        write!(s, " {op} {b}").unwrap();
                    }
                    s
                }
                3 => {
                    let op = *self.r.pick(&["-", "~", "-"]);
                    let e = self.expr(Ty::Int);
                    format!("{op}({e})")
                }
                4 => {
                    let (f, t) = *self.r.pick(&[
                        ("len", Ty::Arr),
                        ("len", Ty::Str),
                        ("len", Ty::Map),
                        ("int", Ty::Float),
                        ("abs", Ty::Int),
                        ("floor", Ty::Int),
                        ("ceil", Ty::Int),
                    ]);
                    let e = self.expr(t);
                    format!("{f}({e})")
                }
                5 => {
                    let f = *self.r.pick(&["min", "max"]);
                    let a = self.expr(Ty::Int);
                    let b = self.expr(Ty::Int);
                    format!("{f}({a}, {b})")
                }
                6 => {
                    let a = self.expr(Ty::Arr);
                    let a = self.postfix_base(a);
                    let i = self.index_expr();
                    match i.parse::<usize>() {
                        Ok(n) => self.guard(&a, n, format!("{a}[{i}]")),
                        Err(_) => format!("{a}[{i}]"),
                    }
                }
                7 => {
                    let m = self.expr(Ty::Map);
                    let m = self.postfix_base(m);
                    let k = self.map_key();
                    if self.r.chance(15) {
                        format!("{m}[{k}]")
                    } else {
                        format!("{m}.get({k}, 0)")
                    }
                }
                8 if !self.structs.is_empty() => {
                    let s = self.r.below(self.structs.len());
                    let o = self.expr(Ty::Obj(s));
                    let o = self.postfix_base(o);
                    let f = self.field_of(s);
                    format!("{o}.{f}")
                }
                9 if !self.fns.is_empty() => {
                    let (f, arity) = self.r.pick(&self.fns).clone();
                    let args = self.args(arity);
                    format!("{f}({args})")
                }
                10 => {
                    let arity = self.r.below(3);
                    match self.var_of(Ty::Func(arity)) {
                        Some(f) => {
                            let args = self.args(arity);
                            format!("{f}({args})")
                        }
                        None => self.method_call_int(),
                    }
                }
                11 => self.method_call_int(),
                12 => {
                    let c = self.cond();
                    let saved = self.one_line;
                    self.one_line = true;
                    let a = self.block(vec![], 0, Some(Ty::Int));
                    let b = self.block(vec![], 0, Some(Ty::Int));
                    self.one_line = saved;
                    format!("(if {c} {a} else {b})")
                }
                13 => {
                    let arity = self.r.below(3);
                    let c = self.closure(arity);
                    let args = self.args(arity);
                    format!("({c})({args})")
                }
                14 => {
                    let s = self.expr(Ty::Str);
                    let s = self.postfix_base(s);
                    format!("{s}.length()")
                }
                _ => {
                    let s = self.expr(Ty::Str);
                    let s = self.postfix_base(s);
                    let i = self.r.below(3);
                    self.guard(&s, i, format!("{s}.byte({i})"))
                }
            },
            Ty::Float => match self.r.below(6) {
                0 | 1 => {
                    let op = *self.r.pick(&["+", "-", "*", "/", "%"]);
                    let a = self.expr(Ty::Float);
                    let b = if self.r.chance(50) { self.expr(Ty::Int) } else { self.expr(Ty::Float) };
                    if self.r.chance(50) {
                        format!("({a} {op} {b})")
                    } else {
                        format!("({b} {op} {a})")
                    }
                }
                2 => {
                    let f = *self.r.pick(&["sqrt", "sin", "cos", "float", "floor", "ceil", "abs"]);
                    let t = if self.r.chance(50) { Ty::Int } else { Ty::Float };
                    let e = self.expr(t);
                    format!("{f}({e})")
                }
                3 => {
                    let a = self.expr(Ty::Float);
                    let b = self.expr(Ty::Int);
                    format!("pow({a}, {b})")
                }
                4 => {
                    let e = self.expr(Ty::Float);
                    format!("-{e}")
                }
                _ => {
                    let f = *self.r.pick(&["min", "max"]);
                    let a = self.expr(Ty::Float);
                    let b = self.expr(Ty::Int);
                    format!("{f}({a}, {b})")
                }
            },
            Ty::Str => match self.r.below(8) {
                0 | 1 => {
                    let a = self.expr(Ty::Str);
                    let b = self.expr(Ty::Str);
                    format!("({a} + {b})")
                }
                2 => {
                    let ty = self.random_ty();
                    let e = self.expr(ty);
                    format!("str({e})")
                }
                3 => self.str_lit(),
                4 => {
                    let s = self.expr(Ty::Str);
                    let s = self.postfix_base(s);
                    let a = self.r.below(3);
                    let b = a + self.r.below(3);
                    let e = format!("{s}.slice({a}, {b})");
                    self.guard_or(&s, b.max(1) - 1, e, "\"\"")
                }
                5 => {
                    let a = self.expr(Ty::Arr);
                    let a = self.postfix_base(a);
                    let sep = self.str_lit();
                    format!("{a}.join({sep})")
                }
                6 => {
                    let c = if self.r.chance(90) { self.r.range(32, 0xD7FF).to_string() } else { self.expr(Ty::Int) };
                    format!("chr({c})")
                }
                _ => {
                    let ty = self.random_ty();
                    let e = self.expr(ty);
                    format!("type({e})")
                }
            },
            Ty::Bool => match self.r.below(8) {
                0 | 1 => {
                    let op = *self.r.pick(&["<", "<=", ">", ">=", "==", "!="]);
                    let t = *self.r.pick(&[Ty::Int, Ty::Int, Ty::Float, Ty::Str]);
                    let a = self.expr(t);
                    let b = self.expr(t);
                    format!("({a} {op} {b})")
                }
                2 => {
                    let op = *self.r.pick(&["==", "!="]);
                    let t1 = self.random_ty();
                    let t2 = self.random_ty();
                    let a = self.expr(t1);
                    let b = self.expr(t2);
                    format!("({a} {op} {b})")
                }
                3 => {
                    let e = self.expr(Ty::Bool);
                    format!("!{}", self.postfix_base(e))
                }
                4 => {
                    let op = *self.r.pick(&["&&", "||"]);
                    let a = self.expr(Ty::Bool);
                    let b = self.expr(Ty::Bool);
                    format!("({a} {op} {b})")
                }
                5 => {
                    let s = self.expr(Ty::Str);
                    let s = self.postfix_base(s);
                    let t = self.str_lit();
                    format!("{s}.contains({t})")
                }
                6 => {
                    let m = self.expr(Ty::Map);
                    let m = self.postfix_base(m);
                    let k = self.map_key();
                    format!("{m}.has({k})")
                }
                _ => {
                    let ty = self.random_ty();
                    let e = self.expr(ty);
                    format!("({e} == nil)")
                }
            },
            Ty::Arr => match self.r.below(7) {
                0..=2 => self.arr_lit(),
                3 => {
                    let n = self.r.skewed(20);
                    let fill = self.expr(Ty::Int);
                    format!("array({n}, {fill})")
                }
                4 => {
                    let s = self.expr(Ty::Str);
                    let s = self.postfix_base(s);
                    let sep = *self.r.pick(&["\",\"", "\" \"", "\"a\"", "\"é\""]);
                    format!("{s}.split({sep})")
                }
                5 => {
                    let m = self.expr(Ty::Map);
                    let m = self.postfix_base(m);
                    let f = *self.r.pick(&["keys", "values"]);
                    format!("{m}.{f}()")
                }
                _ => {
                    let a = self.expr(Ty::Arr);
                    let a = self.postfix_base(a);
                    let x = self.r.below(2);
                    let y = x + self.r.below(3);
                    let e = format!("{a}.slice({x}, {y})");
                    self.guard_or(&a, y.max(1) - 1, e, "[]")
                }
            },
            Ty::Map => self.map_lit(),
            Ty::Func(n) => self.closure(n),
            Ty::Obj(s) => {
                let statics = self.structs[s].statics.clone();
                if !statics.is_empty() && self.r.chance(40) {
                    let (f, arity) = self.r.pick(&statics).clone();
                    let args = self.args(arity);
                    format!("{}.{f}({args})", self.structs[s].name)
                } else {
                    self.struct_lit(s)
                }
            }
            Ty::Nil => "nil".to_string(),
        }
    }
}

// ---------------------------------------------------------------------------
// Deep nesting, long chains, noise

/// A program built around one deeply nested or very long construct. Depths
/// range around the parser's nesting limit (200) so both sides are covered.
fn deep_program(r: &mut Rng) -> String {
    let d = match r.below(4) {
        0 => r.range(1, 20),
        1 => r.range(20, 120),
        2 => r.range(120, 210),
        _ => r.range(190, 320),
    };
    let pre = "struct P { x, next }\nlet a = [[1]]\nfn id(v) { return v }\nlet o = P { x: 1, next: nil }\n";
    let body = match r.below(23) {
        0 => format!("let x = {}1{}", "(".repeat(d), ")".repeat(d)),
        1 => format!("let x = {}{}", "[".repeat(d), "]".repeat(d)),
        2 => format!("let x = {}1{}", "{\"k\": ".repeat(d), "}".repeat(d)),
        3 => format!("{}let y = 1{}", "if true { ".repeat(d), " }".repeat(d)),
        4 => format!("{}let y = 1{}", "{ ".repeat(d), " }".repeat(d)),
        5 => format!("let f = {}1{}\nlet r = f{}", "fn() { return ".repeat(d), " }".repeat(d), "()".repeat(d)),
        6 => format!("let x = {}1", "-".repeat(d)),
        7 => format!("let x = {}true", "!".repeat(d)),
        8 => format!("let x = {}1", "~".repeat(d)),
        9 => format!("let x = 1{}", " + 1".repeat(d * 3)),
        10 => format!("let x = {}1{}", "1 + (".repeat(d), ")".repeat(d)),
        11 => format!("let x = {}1{}", "id(".repeat(d), ")".repeat(d)),
        12 => format!("let x = a{}", "[0]".repeat(d)),
        13 => format!("let x = \"ab\"{}", ".slice(0, 2)".repeat(d)),
        14 => format!("let x = o{}", ".next".repeat(d)),
        15 => format!("let x = {}1{}", "\"${".repeat(d), "}\"".repeat(d)),
        16 => format!("let x = 1 {}{} 2", "/*".repeat(d), "*/".repeat(d)),
        17 => format!("{}let y = 1{}", "fn g() { ".repeat(d), " }".repeat(d)),
        18 => format!("{}let y = 1{}", "for i in 0..1 { ".repeat(d.min(60)), " }".repeat(d.min(60))),
        19 => {
            // Many locals, parameters, arguments, captures: register and operand limits.
            let n = r.range(200, 300);
            let lets: String = (0..n).map(|i| format!("let l{i} = {i}\n")).collect();
            match r.below(4) {
                0 => format!("fn big() {{\n{lets}return l0 }}\nbig()"),
                1 => {
                    let params: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
                    let args: Vec<String> = (0..n).map(|i| i.to_string()).collect();
                    format!("fn big({}) {{ return p0 }}\nbig({})", params.join(", "), args.join(", "))
                }
                2 => {
                    let sum: Vec<String> = (0..n).map(|i| format!("l{i}")).collect();
                    format!("fn big() {{\n{lets}return fn() {{ return {} }} }}\nbig()()", sum.join(" + "))
                }
                _ => {
                    let items: Vec<String> = (0..n * 4).map(|i| format!("\"k{i}\": [{i}, {i}.5]")).collect();
                    format!("let m = {{{}}}\nlet s = str(m)", items.join(", "))
                }
            }
        }
        20 => {
            // A deep value built at run time, then printed (printing stops at
            // 200 levels; it once overflowed the Rust stack).
            let n = if r.chance(50) { r.range(1, 300) } else { r.range(300, 8000) };
            format!("let v = []\nfor i in 0..{n} {{ v = [v] }}\nprint(v)\nlet m = {{}}\nfor i in 0..{n} {{ m = {{\"k\": m}} }}\nlet s = str(m)")
        }
        21 => {
            // A value with shared parts, printed: its text doubles with each
            // step, up to the memory limit (bug_shared_value_print_is_unbounded).
            let n = if r.chance(90) { r.range(1, 10) } else { r.range(10, 40) };
            format!("let v = [1]\nfor i in 0..{n} {{ v = [v, v] }}\nlet s = str(v)\nprint(v)")
        }
        _ => format!("let x = 1{}", " < 2 == true".repeat(d.min(5))),
    };
    format!("{pre}{body}\n")
}

/// A JIT-oriented program: numeric hot loops over locals, an array, a struct
/// and helper functions, with the occasional type change, overflow, bad index
/// or division by zero mid-loop, so traces get recorded, compiled, exited
/// and side-traced. Every loop is bounded (the JIT runs without a budget).
fn jit_kernel(r: &mut Rng) -> String {
    struct K<'a> {
        r: &'a mut Rng,
        n: usize,
        loop_vars: Vec<String>,
        depth: usize,
        ids: usize,
    }
    impl K<'_> {
        fn int(&mut self, d: usize) -> String {
            if d == 0 || self.r.chance(40) {
                let lv = self.loop_vars.clone();
                return match self.r.below(11) {
                    0 | 1 if !lv.is_empty() => self.r.pick(&lv).clone(),
                    0..=2 => "s".into(),
                    3 => "t".into(),
                    4 => self.r.below(10).to_string(),
                    5 => format!("a[{}]", self.index()),
                    6 => "p.x".into(),
                    7 => "g".into(),
                    8 => "a.length()".into(),
                    9 if self.r.chance(20) => (*self.r.pick(&["4611686018427387904", "-9223372036854775807"])).into(),
                    9 => (*self.r.pick(&["-1", "255", "1000003"])).into(),
                    _ => "len(a)".into(),
                };
            }
            let a = self.int(d - 1);
            let b = self.int(d - 1);
            match self.r.below(12) {
                0..=2 => format!("({a} + {b})"),
                3 => format!("({a} - {b})"),
                4 => format!("({a} * {b})"),
                5 => format!("({a} / {})", self.divisor(b)),
                6 => format!("({a} % {})", self.divisor(b)),
                7 => format!("({a} {} {b})", self.r.pick(&["&", "|", "^"])),
                8 => format!(
                    "({a} {} {})",
                    self.r.pick(&["<<", ">>"]),
                    if self.r.chance(90) { self.r.below(64).to_string() } else { b }
                ),
                9 => format!("h({a}, {b})"),
                10 => format!("p.m({a})"),
                _ => format!("-{a}"),
            }
        }

        /// Mostly a small positive constant, else computed: possibly 0 (a
        /// runtime error) or -1, which once sent the JIT into an endless
        /// chain of side traces (bug_jit_division_by_minus_one_side_trace_storm,
        /// fixed in f02898b).
        fn divisor(&mut self, b: String) -> String {
            if self.r.chance(85) {
                self.r.range(1, 9).to_string()
            } else {
                b
            }
        }

        fn float(&mut self) -> String {
            match self.r.below(6) {
                0 => "f".into(),
                1 => format!("(f * {})", self.r.pick(&["0.5", "1.01", "-1.0", "2"])),
                2 => format!("float({})", self.int(1)),
                3 => format!("(f + {})", self.int(1)),
                4 => "sqrt(f * f)".into(),
                _ => (*self.r.pick(&["0.5", "1e300", "-0.0", "3"])).into(),
            }
        }

        fn index(&mut self) -> String {
            let lv = self.loop_vars.clone();
            match self.r.below(10) {
                0..=4 if !lv.is_empty() => format!("{} % {}", self.r.pick(&lv), self.n),
                5 => format!("(s & 7) % {}", self.n),
                6 => self.r.below(self.n + 1).to_string(),
                _ => "0".into(),
            }
        }

        fn cond(&mut self) -> String {
            let a = self.int(1);
            let b = self.int(1);
            match self.r.below(6) {
                0 => format!("{a} < {b}"),
                1 => format!("{a} == {b}"),
                2 => format!("{a} % 3 == 0"),
                3 => format!("f > {}", self.float()),
                4 => format!("({a} >= {b}) && ({a} != 0)"),
                _ => format!("!({a} <= {b}) || s == t"),
            }
        }

        fn stmts(&mut self, n: usize) -> Vec<String> {
            (0..n).map(|_| self.stmt()).collect()
        }

        fn block(&mut self, n: usize) -> String {
            self.depth += 1;
            let body = self.stmts(n);
            self.depth -= 1;
            format!("{{ {} }}", body.join("; "))
        }

        fn stmt(&mut self) -> String {
            let nest = self.depth < 3;
            let in_loop = !self.loop_vars.is_empty();
            let w = [
                20,
                8,
                8,
                8,
                6,
                4,
                if nest { 8 } else { 0 },
                if in_loop { 4 } else { 0 },
                if nest { 6 } else { 0 },
                if in_loop { 3 } else { 0 },
                3,
                2,
                2,
                2,
            ];
            match self.r.weighted(&w) {
                0 => format!("s += {}", self.int(2)),
                1 => format!("t = {}", self.int(2)),
                2 => format!("f = {}", self.float()),
                3 => format!("a[{}] = {}", self.index(), self.int(2)),
                4 => format!("p.x = {}", self.int(1)),
                5 => "s = s % 1000003".into(),
                6 => {
                    let c = self.cond();
                    let n1 = self.r.range(1, 3);
                    let then = self.block(n1);
                    if self.r.chance(50) {
                        let n2 = self.r.range(1, 2);
                        format!("if {c} {then} else {}", self.block(n2))
                    } else {
                        format!("if {c} {then}")
                    }
                }
                7 => {
                    let c = self.cond();
                    format!("if {c} {{ {} }}", self.r.pick(&["break", "continue"]))
                }
                8 => {
                    self.ids += 1;
                    let v = format!("j{}", self.ids);
                    let k = self.r.range(1, 40);
                    self.loop_vars.push(v.clone());
                    let n = self.r.range(1, 4);
                    let body = self.block(n);
                    self.loop_vars.pop();
                    if self.r.chance(70) {
                        format!("for {v} in 0..{k} {body}")
                    } else {
                        format!("let {v} = 0; while {v} < {k} {{ {v} += 1; {} }}", &body[2..body.len() - 2])
                    }
                }
                9 => {
                    // A type change after a while: guards fail, traces exit.
                    let lv = self.r.pick(&self.loop_vars.clone()).clone();
                    let k = self.r.range(1, 30);
                    let v = *self.r.pick(&["0.5", "nil", "\"x\"", "true", "[1]", "1e18"]);
                    let target = *self.r.pick(&["s", "t", "f", "p.x", "a[0]"]);
                    format!("if {lv} == {k} {{ {target} = {v} }}")
                }
                10 => format!("s += h({}, {})", self.int(1), self.int(1)),
                11 => "g += 1".into(),
                12 => format!("a.push({})", self.int(1)),
                _ => format!("s += r({})", self.r.below(20)),
            }
        }
    }

    let n = r.range(1, 8);
    let mut k = K { r, n, loop_vars: Vec::new(), depth: 0, ids: 0 };
    let helper = match k.r.below(4) {
        0 => "fn h(x, y) { return x * 3 - y }".to_string(),
        1 => "fn h(x, y) { if x > y { return x - y } return y % 7 }".to_string(),
        2 => "fn h(x, y) { let z = 0; for q in 0..3 { z += x } return z + y }".to_string(),
        _ => "fn h(x, y) { return x }".to_string(),
    };
    let mut loops = Vec::new();
    for _ in 0..k.r.range(1, 3) {
        k.ids += 1;
        let i = format!("i{}", k.ids);
        let count = k.r.range(3, 300);
        k.loop_vars.push(i.clone());
        let nb = k.r.range(2, 7);
        let body = k.block(nb);
        k.loop_vars.pop();
        loops.push(format!("    for {i} in 0..{count} {body}"));
    }
    let fill = *k.r.pick(&["0", "1", "-3", "0.5", "nil"]);
    let in_main = k.r.chance(80);
    let decls = format!(
        "    let s = 0\n    let t = 1\n    let f = 1.5\n    let a = array({n}, {fill})\n    let p = P {{ x: 1, y: 2 }}\n"
    );
    let body = format!("{decls}{}\n    print(s, t, f, a, p)\n", loops.join("\n"));
    let prelude = format!(
        "struct P {{ x, y }}\nimpl P {{ fn m(self, k) {{ return self.x + k }} }}\nlet g = 0\n{helper}\nfn r(n) {{ if n <= 0 {{ return 0 }} return n + r(n - 1) }}\n"
    );
    if in_main {
        format!("{prelude}fn main() {{\n{body}}}\n")
    } else {
        format!("{prelude}{}", body.replace("\n    ", "\n").trim_start())
    }
}

/// A soup of random tokens and bytes.
fn noise(r: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..r.skewed(200) {
        match r.below(5) {
            0..=2 => s.push_str(r.pick_str(INSERT_TOKENS)),
            3 => s.push(char::from_u32(r.below(0x80) as u32).unwrap_or('?')),
            _ => s.push_str(r.pick_str(&["x", "y", "f", "P", "a", "1", "\"s\""])),
        }
        s.push_str(r.pick_str(&[" ", "", "\n", " "]));
    }
    s
}

// ---------------------------------------------------------------------------
// Running a case

/// How a case ended (when it did not panic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Compile,
    Runtime,
    Interrupted,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Compile => "compile-error",
            Outcome::Runtime => "runtime-error",
            Outcome::Interrupted => "budget",
        }
    }
}

/// A caught panic (or a broken error invariant, which is reported the same way).
#[derive(Clone, Debug)]
struct Failure {
    message: String,
    /// `file:line:col` of the panic, or a description of the broken invariant.
    location: String,
    backtrace: Option<String>,
}

impl Failure {
    /// What identifies this failure across cases.
    fn key(&self) -> String {
        if self.location.is_empty() {
            self.message.clone()
        } else {
            self.location.clone()
        }
    }
}

thread_local! {
    /// Traces compiled and recordings aborted by the JIT cases so far.
    static JIT_TRACES: Cell<u64> = const { Cell::new(0) };
    static JIT_ABORTS: Cell<u64> = const { Cell::new(0) };
    /// The message of the last error (for `VELA_FUZZ_VERBOSE=1` and reproducers).
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    static IN_CASE: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<Failure>> = const { RefCell::new(None) };
    static WANT_BACKTRACE: Cell<bool> = const { Cell::new(true) };
}

/// Records panics in `LAST_PANIC` instead of printing them (worker processes only).
fn install_panic_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !IN_CASE.with(|c| c.get()) {
            // A panic of the fuzzer itself: report it normally.
            return default(info);
        }
        let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "<non-string panic payload>".to_string()
        };
        let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
        let backtrace =
            WANT_BACKTRACE.with(|w| w.get()).then(|| std::backtrace::Backtrace::force_capture().to_string());
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(Failure { message, location, backtrace }));
    }));
}

fn new_vm(jit: Option<(u32, u32)>) -> vela::Vm {
    let mut vm = vela::Vm::new(vela::Config {
        jit: jit.is_some(),
        hot_loop: jit.map_or(200, |j| j.0),
        hot_exit: jit.map_or(10, |j| j.1),
        // The JIT does not count instructions, so a budget would turn it off.
        instruction_budget: if jit.is_some() { None } else { Some(BUDGET) },
        mem_limit: MEM_LIMIT,
        stack_slots: STACK_SLOTS,
        // Without a budget, runaway recursion is bounded by the call depth:
        // keep it shallow so such a case stays fast.
        max_call_depth: if jit.is_some() { JIT_CALL_DEPTH } else { vela::Config::default().max_call_depth },
        ..vela::Config::default()
    });
    vm.set_output(Box::new(std::io::sink()));
    vm
}

/// Checks that an error is clean: a message, and for compile errors a location
/// and a rendering.
fn check_error(e: &vela::Error) -> Result<Outcome, String> {
    let text = format!("{e}");
    LAST_ERROR.with(|l| *l.borrow_mut() = e.message.clone());
    if e.message.trim().is_empty() || text.trim().is_empty() {
        return Err(format!("error with an empty message: {e:?}"));
    }
    match e.kind {
        vela::ErrorKind::Compile => {
            if e.location.is_none() || e.rendered.is_none() {
                return Err(format!("compile error without location or rendering: {e:?}"));
            }
            Ok(Outcome::Compile)
        }
        vela::ErrorKind::Runtime => Ok(Outcome::Runtime),
        vela::ErrorKind::Interrupted => Ok(Outcome::Interrupted),
        other => Err(format!("unexpected error kind {other:?}: {e:?}")),
    }
}

/// The chunks of a case: the source, or its two halves when it is split.
fn case_chunks(source: &str, split: Option<usize>) -> Vec<String> {
    match split {
        Some(at) if source.is_char_boundary(at) => vec![source[..at].to_string(), source[at..].to_string()],
        _ => vec![source.to_string()],
    }
}

/// Runs a case's chunks (see [`run_chunks`]), then, for some, the bytecode listing.
fn run_source(chunks: &[String], jit: Option<(u32, u32)>) -> Result<Outcome, String> {
    let source = chunks.concat();
    // `VELA_FUZZ_SELFTEST=1` fakes an engine panic to check the reporting
    // and minimising machinery.
    if std::env::var_os("VELA_FUZZ_SELFTEST").is_some() && source.contains("while") && source.contains("fn") {
        panic!("fuzz self-test panic");
    }
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    let outcome = run_chunks(&refs, jit)?;
    // Also exercise the bytecode listing of programs that compile.
    if outcome != Outcome::Compile && source.len().is_multiple_of(4) {
        let mut vm = new_vm(None);
        if let Err(e) = vm.disassemble(&source, "fuzz.vela") {
            check_error(&e)?;
        }
    }
    Ok(outcome)
}

/// Runs chunks one after the other in one VM (as a REPL does); the outcome
/// is the last chunk's.
fn run_chunks(chunks: &[&str], jit: Option<(u32, u32)>) -> Result<Outcome, String> {
    let mut vm = new_vm(jit);
    let mut outcome = Outcome::Ok;
    for (i, chunk) in chunks.iter().enumerate() {
        let name = format!("fuzz{}.vela", i + 1);
        LAST_ERROR.with(|l| l.borrow_mut().clear());
        outcome = match vm.run_source(chunk, &name) {
            Ok(v) => {
                let _ = vm.display(v);
                Outcome::Ok
            }
            Err(e) => check_error(&e)?,
        };
    }
    if jit.is_some() {
        let st = vm.jit_stats();
        JIT_TRACES.with(|t| t.set(t.get() + st.compiled));
        JIT_ABORTS.with(|t| t.set(t.get() + st.aborted));
        if std::env::var_os("VELA_FUZZ_VERBOSE").is_some() {
            eprintln!("jit: {} compiled, abort reasons {:?}", st.compiled, st.abort_reasons);
        }
    }
    Ok(outcome)
}

/// Runs one case's chunks, catching panics.
fn run_case(chunks: &[String], jit: Option<(u32, u32)>) -> Result<Outcome, Failure> {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    IN_CASE.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| run_source(chunks, jit)));
    IN_CASE.with(|c| c.set(false));
    match result {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(invariant)) => Err(Failure { message: invariant, location: String::new(), backtrace: None }),
        Err(_) => Err(LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or(Failure {
            message: "panic (no hook information)".into(),
            location: String::new(),
            backtrace: None,
        })),
    }
}

/// Shrinks a failing case while it still fails with the same key: tries it as
/// one chunk, then drops runs of lines, then of tokens, then of characters
/// from each chunk, halving the run length each round.
fn minimise(chunks: &[String], jit: Option<(u32, u32)>, key: &str) -> Vec<String> {
    WANT_BACKTRACE.with(|w| w.set(false));
    let start = Instant::now();
    let runs = Cell::new(0usize);
    let still_fails = |candidate: &[String]| {
        runs.set(runs.get() + 1);
        matches!(run_case(candidate, jit), Err(f) if f.key() == key)
    };
    let budget_left = || runs.get() < MINIMISE_RUNS && start.elapsed() < MINIMISE_TIME;
    let mut best = chunks.to_vec();
    // A chunked case may also fail as one chunk, which is easier to read.
    if best.len() > 1 && still_fails(&[best.concat()]) {
        best = vec![best.concat()];
    }
    // Bracket groups first: empty a `{ }`, `( )` or `[ ]`, or drop it with
    // the rest of its line's statement head, innermost last.
    for c in 0..best.len() {
        let mut progress = true;
        while progress && budget_left() {
            progress = false;
            for (open, close) in bracket_pairs(&best[c]).into_iter().rev() {
                if !budget_left() {
                    break;
                }
                let text = &best[c];
                let line_start = text[..open.0].rfind('\n').map_or(0, |i| i + 1);
                let candidates = [
                    format!("{}{}", &text[..line_start], &text[close.1..]),
                    format!("{}{}", &text[..open.0], &text[close.1..]),
                    format!("{}{}", &text[..open.1], &text[close.0..]),
                ];
                for cand in candidates {
                    if cand.len() < best[c].len() {
                        let mut candidate = best.clone();
                        candidate[c] = cand;
                        if still_fails(&candidate) {
                            best = candidate;
                            progress = true;
                            break;
                        }
                    }
                }
                if progress {
                    break;
                }
            }
        }
    }
    for unit in ["line", "token", "char"] {
        let units = |s: &str| -> Vec<String> {
            match unit {
                "line" => s.split_inclusive('\n').map(str::to_string).collect(),
                "token" => {
                    // Each token with the space before it; the rest last.
                    let mut out = Vec::new();
                    let mut from = 0;
                    for (_, end) in crude_tokens(s) {
                        out.push(s[from..end].to_string());
                        from = end;
                    }
                    out.push(s[from..].to_string());
                    out
                }
                _ => s.chars().map(String::from).collect(),
            }
        };
        for c in 0..best.len() {
            let mut run = units(&best[c]).len().div_ceil(2).max(1);
            loop {
                let mut i = 0;
                loop {
                    let u = units(&best[c]);
                    if i >= u.len() || !budget_left() {
                        break;
                    }
                    let mut candidate = best.clone();
                    candidate[c] = u[..i].concat() + &u[(i + run).min(u.len())..].concat();
                    if still_fails(&candidate) {
                        best = candidate;
                    } else {
                        i += run;
                    }
                }
                if run == 1 || !budget_left() {
                    break;
                }
                run /= 2;
            }
        }
    }
    WANT_BACKTRACE.with(|w| w.set(true));
    best
}

/// Matching bracket tokens of `s` as ((open start, open end), (close start,
/// close end)), outermost first.
fn bracket_pairs(s: &str) -> Vec<((usize, usize), (usize, usize))> {
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut pairs = Vec::new();
    for (a, b) in crude_tokens(s) {
        match &s[a..b] {
            "{" | "(" | "[" | "${" => stack.push((a, b)),
            "}" | ")" | "]" => {
                if let Some(open) = stack.pop() {
                    pairs.push((open, (a, b)));
                }
            }
            _ => {}
        }
    }
    pairs.sort();
    pairs
}

/// The lines of a backtrace that point into this crate's sources.
fn engine_frames(backtrace: &str) -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let lines: Vec<&str> = backtrace.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let ours = t.contains(root) || t.starts_with("at ./src/") || t.starts_with("at src/");
        if t.starts_with("at ") && ours && !t.contains("/tests/") {
            let func = lines.get(i.wrapping_sub(1)).map_or("", |l| l.trim());
            out.push(format!("{func}\n        {t}"));
            if out.len() >= 8 {
                break;
            }
        }
    }
    out
}

fn known_bug(f: &Failure) -> Option<&'static str> {
    KNOWN_BUGS.iter().find(|(pat, _)| f.location.contains(pat) || f.message.contains(pat)).map(|(_, desc)| *desc)
}

// ---------------------------------------------------------------------------
// Worker (child process)

/// Formats a source for a report: indented, with visible control characters.
fn show_source(source: &str) -> String {
    let mut out = String::new();
    let shown: String = if source.len() > 4000 {
        format!("{}\n... ({} bytes in all)", &source[..source.floor_char_boundary_compat(4000)], source.len())
    } else {
        source.to_string()
    };
    for line in shown.split('\n') {
        let escaped: String = line
            .chars()
            .map(|c| if c.is_control() && c != '\t' { c.escape_default().to_string() } else { c.to_string() })
            .collect();
        writeln!(out, "    | {escaped}").unwrap();
    }
    write!(out, "    as a Rust string: {:?}", if source.len() > 4000 { &shown } else { source }).unwrap();
    out
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        i = i.min(self.len());
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// Runs the cases of one shard, reporting on stdout with `@@fuzz` lines.
fn worker(spec: &str) {
    let cfg = FuzzConfig::from_env();
    let nums: Vec<u64> = spec.split_whitespace().filter_map(parse_u64).collect();
    let [shard, shards, start] = nums[..] else { panic!("bad {WORKER_ENV}={spec:?}") };
    let corpus = load_corpus();
    install_panic_hook();
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let verbose = std::env::var_os("VELA_FUZZ_VERBOSE").is_some();
    let stdout = std::io::stdout();
    for idx in cfg.indices().into_iter().filter(|&i| i >= start && i % shards == shard) {
        let seed = case_seed(cfg.seed, idx);
        let case = make_case(&corpus, seed);
        if cfg.kind.as_ref().is_some_and(|k| !case.kind.contains(k.as_str())) {
            writeln!(stdout.lock(), "{MARK} done {idx} skipped 0 {}", case.kind).unwrap();
            continue;
        }
        if cfg.print == Some(idx) {
            let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-case-{idx}.vela"));
            std::fs::write(&path, &case.source).unwrap();
            eprintln!(
                "case {idx} ({}), split {:?}, written to {}:\n{}",
                case.kind,
                case.split,
                path.display(),
                case.source
            );
        }
        {
            let mut out = stdout.lock();
            writeln!(out, "{MARK} start {idx}").unwrap();
            out.flush().unwrap();
        }
        let t = Instant::now();
        let chunks = case_chunks(&case.source, case.split);
        let result = run_case(&chunks, case.jit);
        let micros = t.elapsed().as_micros();
        let mut out = stdout.lock();
        match result {
            Ok(outcome) => {
                writeln!(out, "{MARK} done {idx} {} {micros} {}", outcome.name(), case.kind).unwrap();
                if verbose {
                    let msg = match outcome {
                        Outcome::Ok => String::new(),
                        _ => LAST_ERROR.with(|l| l.borrow().lines().next().unwrap_or("").to_string()),
                    };
                    eprintln!("{idx} {} {} {micros}us {msg}", case.kind, outcome.name());
                }
            }
            Err(f) => {
                let key = f.key();
                let known = known_bug(&f);
                let first = seen.insert(key.clone(), ()).is_none();
                writeln!(out, "{MARK} failure {idx} {} {key}", if known.is_some() { "known" } else { "new" }).unwrap();
                if first {
                    let minimal = minimise(&chunks, case.jit, &key);
                    writeln!(out, "{MARK} report-begin").unwrap();
                    writeln!(
                        out,
                        "case {idx} of seed {:#x} ({}, jit {:?}; reproduce with VELA_FUZZ_SEED={:#x} VELA_FUZZ_ONLY={idx})",
                        cfg.seed, case.kind, case.jit, cfg.seed
                    )
                    .unwrap();
                    if let Some(desc) = known {
                        writeln!(out, "known engine bug: {desc}").unwrap();
                    }
                    writeln!(out, "panic: {}", f.message).unwrap();
                    writeln!(out, "at: {}", f.location).unwrap();
                    if let Some(bt) = &f.backtrace {
                        let frames = engine_frames(bt);
                        if !frames.is_empty() {
                            writeln!(out, "engine frames:\n  {}", frames.join("\n  ")).unwrap();
                        }
                    }
                    if minimal.len() > 1 {
                        writeln!(
                            out,
                            "minimised: {} chunks run one after another in one VM (as a REPL does)",
                            minimal.len()
                        )
                        .unwrap();
                    }
                    for (i, chunk) in minimal.iter().enumerate() {
                        let which = if minimal.len() > 1 { format!(" (chunk {})", i + 1) } else { String::new() };
                        writeln!(out, "minimised source{which}:\n{}", show_source(chunk)).unwrap();
                    }
                    if minimal.concat().len() < case.source.len() {
                        writeln!(out, "original source ({} bytes):\n{}", case.source.len(), show_source(&case.source))
                            .unwrap();
                    }
                    writeln!(out, "{MARK} report-end").unwrap();
                }
                writeln!(out, "{MARK} done {idx} failure {micros} {}", case.kind).unwrap();
            }
        }
        out.flush().unwrap();
    }
    let (traces, aborts) = (JIT_TRACES.with(Cell::get), JIT_ABORTS.with(Cell::get));
    writeln!(stdout.lock(), "{MARK} jit {traces} {aborts}").unwrap();
    writeln!(stdout.lock(), "{MARK} finished").unwrap();
}

/// Runs one given source (reproducer tests), reporting like a worker.
fn run_one_source(source: &str) {
    install_panic_hook();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK} start 0").unwrap();
    out.flush().unwrap();
    let jit = std::env::var(SOURCE_JIT_ENV).ok().and_then(|v| parse_u64(&v)).map(|h| (h as u32, h as u32));
    let chunks: Vec<&str> = source.split(CHUNK_SEP).collect();
    LAST_PANIC.with(|p| p.borrow_mut().take());
    IN_CASE.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| run_chunks(&chunks, jit)));
    IN_CASE.with(|c| c.set(false));
    let result = match result {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(invariant)) => Err(Failure { message: invariant, location: String::new(), backtrace: None }),
        Err(_) => Err(LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap()),
    };
    match result {
        Ok(outcome) => {
            writeln!(out, "{MARK} done 0 {} 0 given", outcome.name()).unwrap();
            let message = LAST_ERROR.with(|l| l.borrow().clone());
            writeln!(out, "{MARK} message {message:?}").unwrap();
        }
        Err(f) => {
            writeln!(out, "{MARK} failure 0 new {}", f.key()).unwrap();
            writeln!(out, "{MARK} report-begin\npanic: {}\nat: {}", f.message, f.location).unwrap();
            if let Some(bt) = &f.backtrace {
                writeln!(out, "engine frames:\n  {}", engine_frames(bt).join("\n  ")).unwrap();
            }
            writeln!(out, "{MARK} report-end").unwrap();
        }
    }
    writeln!(out, "{MARK} finished").unwrap();
}

/// The entry point of child processes; a no-op in a normal test run.
#[test]
fn fuzz_worker() {
    let spec = std::env::var(WORKER_ENV).ok();
    let source = std::env::var(SOURCE_ENV).ok();
    let run = move || {
        if let Some(path) = source {
            let src = std::fs::read_to_string(&path).expect("read reproducer source");
            run_one_source(&src);
        } else if let Some(spec) = spec {
            worker(&spec);
        }
    };
    std::thread::Builder::new().stack_size(CASE_THREAD_STACK).spawn(run).unwrap().join().unwrap();
}

// ---------------------------------------------------------------------------
// Supervisor (the test)

fn spawn_child(envs: &[(&str, String)], vmem_kib: u64) -> Child {
    let mut exe = std::env::current_exe().expect("test binary path");
    // Rebuilt while running: Linux reports the old file as "PATH (deleted)".
    if let Some(live) = exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")) {
        exe = PathBuf::from(live);
    }
    let args = ["fuzz_worker", "--exact", "--nocapture", "--test-threads=1", "-q"];
    let mut cmd = if cfg!(unix) && Path::new("/bin/sh").exists() {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(format!("ulimit -v {vmem_kib} 2>/dev/null; exec \"$0\" \"$@\"")).arg(exe).args(args);
        c
    } else {
        let mut c = Command::new(exe);
        c.args(args);
        c
    };
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn fuzz worker")
}

enum Event {
    Line(usize, String),
    Eof(usize),
}

struct Shard {
    child: Option<Child>,
    stderr: Option<std::thread::JoinHandle<String>>,
    running: Option<u64>,
    finished: bool,
    restarts: usize,
    last_activity: Instant,
    in_report: bool,
    report: String,
    /// The case a stalled child was killed in.
    hung: Option<u64>,
}

#[derive(Default)]
struct Summary {
    outcomes: BTreeMap<String, u64>,
    kinds: BTreeMap<String, u64>,
    cases: u64,
    slowest: Vec<(u128, u64, String)>,
    /// key -> (report, count, known)
    panics: BTreeMap<String, (String, u64, bool)>,
    crashes: Vec<String>,
    /// Cases slower than [`SLOW_CASE`]: warnings (failures with `VELA_FUZZ_STRICT`).
    slow: Vec<String>,
    jit_traces: u64,
    jit_aborts: u64,
}

fn launch(
    shard_idx: usize,
    shards: usize,
    start: u64,
    tx: &mpsc::Sender<Event>,
) -> (Child, std::thread::JoinHandle<String>) {
    let mut child = spawn_child(&[(WORKER_ENV, format!("{shard_idx} {shards} {start}"))], CHILD_VMEM_KIB);
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(Event::Line(shard_idx, line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Event::Eof(shard_idx));
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    (child, err)
}

/// The report of a case that killed or hung its process.
fn crash_report(what: &str, idx: u64, cfg: &FuzzConfig, corpus: &[String], stderr: &str) -> String {
    let case = make_case(corpus, case_seed(cfg.seed, idx));
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
    format!(
        "{what} in case {idx} of seed {:#x} ({}; reproduce with VELA_FUZZ_SEED={:#x} VELA_FUZZ_ONLY={idx}), split {:?}, jit {:?}\nchild stderr (tail):\n    {}\nsource:\n{}",
        cfg.seed,
        case.kind,
        cfg.seed,
        case.split,
        case.jit,
        tail.join("\n    "),
        show_source(&case.source)
    )
}

#[test]
fn fuzz() {
    if std::env::var_os(WORKER_ENV).is_some() || std::env::var_os(SOURCE_ENV).is_some() {
        return;
    }
    let cfg = FuzzConfig::from_env();
    let corpus = load_corpus();
    let n = cfg.indices().len();
    let parallel = std::thread::available_parallelism().map_or(2, |p| p.get());
    let shards = env_u64("VELA_FUZZ_SHARDS").map_or(parallel.min(8), |s| s as usize).clamp(1, 64).min(n.max(1));
    let started = Instant::now();

    let (tx, rx) = mpsc::channel();
    let mut state: Vec<Shard> = (0..shards)
        .map(|i| {
            let (child, err) = launch(i, shards, 0, &tx);
            Shard {
                child: Some(child),
                stderr: Some(err),
                running: None,
                finished: false,
                restarts: 0,
                last_activity: Instant::now(),
                in_report: false,
                report: String::new(),
                hung: None,
            }
        })
        .collect();
    let mut sum = Summary::default();
    let mut pending_key: Vec<Option<(String, bool)>> = vec![None; shards];

    while state.iter().any(|s| s.child.is_some()) {
        let event = rx.recv_timeout(Duration::from_secs(1));
        match event {
            Ok(Event::Line(i, line)) => {
                let sh = &mut state[i];
                sh.last_activity = Instant::now();
                let Some(rest) = line.strip_prefix(MARK) else {
                    if sh.in_report {
                        sh.report.push_str(&line);
                        sh.report.push('\n');
                    }
                    continue;
                };
                let words: Vec<&str> = rest.split_whitespace().collect();
                match words.as_slice() {
                    ["start", idx] => sh.running = parse_u64(idx),
                    ["done", idx, outcome, micros, kind] => {
                        sh.running = None;
                        sum.cases += 1;
                        *sum.outcomes.entry(outcome.to_string()).or_default() += 1;
                        *sum.kinds.entry(format!("{kind} {outcome}")).or_default() += 1;
                        let us: u128 = micros.parse().unwrap_or(0);
                        let idx = parse_u64(idx).unwrap_or(0);
                        sum.slowest.push((us, idx, kind.to_string()));
                        sum.slowest.sort_by(|a, b| b.cmp(a));
                        sum.slowest.truncate(5);
                        if us > SLOW_CASE.as_micros() {
                            sum.slow.push(format!(
                                "slow case ({} ms > {} ms): {}",
                                us / 1000,
                                SLOW_CASE.as_millis(),
                                crash_report("slow", idx, &cfg, &corpus, "")
                            ));
                        }
                    }
                    ["failure", _idx, known, key @ ..] => {
                        let key = key.join(" ");
                        let known = *known == "known";
                        let entry = sum.panics.entry(key.clone()).or_insert((String::new(), 0, known));
                        entry.1 += 1;
                        pending_key[i] = Some((key, known));
                    }
                    ["report-begin"] => {
                        sh.in_report = true;
                        sh.report.clear();
                    }
                    ["report-end"] => {
                        sh.in_report = false;
                        if let Some((key, _)) = pending_key[i].take() {
                            let entry = sum.panics.get_mut(&key).unwrap();
                            if entry.0.is_empty() {
                                entry.0 = std::mem::take(&mut sh.report);
                            }
                        }
                    }
                    ["finished"] => sh.finished = true,
                    ["jit", traces, aborts] => {
                        sum.jit_traces += parse_u64(traces).unwrap_or(0);
                        sum.jit_aborts += parse_u64(aborts).unwrap_or(0);
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof(i)) => {
                let sh = &mut state[i];
                let mut child = sh.child.take().unwrap();
                let status = child.wait().expect("wait for fuzz worker");
                let stderr = sh.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
                if sh.finished && status.success() {
                    continue;
                }
                let hung = sh.hung.take();
                match hung.or(sh.running.take()) {
                    Some(idx) => {
                        if hung.is_none() {
                            sum.cases += 1;
                            sum.crashes.push(crash_report(
                                &format!("worker died ({status})"),
                                idx,
                                &cfg,
                                &corpus,
                                &stderr,
                            ));
                        }
                        sh.running = None;
                        if sh.restarts < MAX_RESTARTS {
                            sh.restarts += 1;
                            let (c, e) = launch(i, shards, idx + 1, &tx);
                            sh.child = Some(c);
                            sh.stderr = Some(e);
                            sh.last_activity = Instant::now();
                        }
                    }
                    None => sum.crashes.push(format!("worker {i} failed outside a case ({status}):\n{stderr}")),
                }
            }
            Err(_) => {}
        }
        for sh in state.iter_mut() {
            if sh.child.is_some() && sh.hung.is_none() && sh.last_activity.elapsed() > STALL {
                // Kill our own stalled child; its reader then sees EOF and the
                // shard restarts after the case.
                if let Some(c) = sh.child.as_mut() {
                    let _ = c.kill();
                }
                let idx = sh.running.unwrap_or(0);
                sum.cases += 1;
                sum.crashes.push(crash_report(
                    &format!("hang (no progress for {} s)", STALL.as_secs()),
                    idx,
                    &cfg,
                    &corpus,
                    "",
                ));
                sh.hung = Some(idx);
            }
        }
    }

    let elapsed = started.elapsed();
    let mut report = String::new();
    writeln!(
        report,
        "fuzz: {} cases (seed {:#x}) in {:.1} s on {shards} workers; outcomes {:?}",
        sum.cases,
        cfg.seed,
        elapsed.as_secs_f64(),
        sum.outcomes
    )
    .unwrap();
    writeln!(report, "by generator: {:?}", sum.kinds).unwrap();
    writeln!(report, "JIT cases: {} traces compiled, {} recordings aborted", sum.jit_traces, sum.jit_aborts).unwrap();
    writeln!(
        report,
        "slowest cases (ms, index, kind): {:?}",
        sum.slowest.iter().map(|(us, i, k)| (us / 1000, i, k.as_str())).collect::<Vec<_>>()
    )
    .unwrap();
    let mut failed = !sum.crashes.is_empty() || (cfg.strict && !sum.slow.is_empty());
    for c in &sum.slow {
        writeln!(report, "\n==== warning: {c}").unwrap();
    }
    for (key, (text, count, known)) in &sum.panics {
        let counts = !*known || cfg.strict;
        failed |= counts;
        writeln!(report, "\n==== {} panic ({count} cases): {key}\n{text}", if *known { "KNOWN" } else { "NEW" })
            .unwrap();
    }
    for c in &sum.crashes {
        writeln!(report, "\n==== {c}").unwrap();
    }
    eprintln!("{report}");
    assert!(!failed, "the engine panicked, crashed or hung on fuzz inputs:\n{report}");
    assert_eq!(sum.cases as usize, n, "not every case ran:\n{report}");
}

// ---------------------------------------------------------------------------
// Reproducers of engine bugs found by this fuzzer

/// How an isolated run ended.
#[derive(Debug)]
struct Isolated {
    /// `ok`, `compile-error`, `runtime-error` or `budget`; None if it panicked,
    /// crashed or timed out.
    outcome: Option<String>,
    message: String,
    /// Everything the child said, for failure messages.
    log: String,
}

/// Runs `chunks` one after another in one VM in a child process (so an abort
/// cannot take the test harness down), with the fuzzer's limits, the JIT at
/// `hot_loop` when given, a wall-clock `timeout` and a virtual memory cap.
fn run_isolated(chunks: &[&str], jit: Option<u32>, timeout: Duration, vmem_kib: u64) -> Isolated {
    // The source goes through a file: the environment limits the size of a variable.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-src-{}-{n}.vela", std::process::id()));
    std::fs::write(&path, chunks.join(&CHUNK_SEP.to_string())).expect("write reproducer source");
    let mut envs = vec![(SOURCE_ENV, path.display().to_string())];
    if let Some(h) = jit {
        envs.push((SOURCE_JIT_ENV, h.to_string()));
    }
    let mut child = spawn_child(&envs, vmem_kib);
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > timeout {
            // Our own child: kill it by its handle.
            let _ = child.kill();
            timed_out = true;
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    let mut outcome = None;
    let mut message = String::new();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix(&format!("{MARK} done 0 ")) {
            outcome = rest.split_whitespace().next().map(str::to_string);
        } else if let Some(rest) = line.strip_prefix(&format!("{MARK} message ")) {
            message = rest.trim_matches('"').replace("\\n", "\n").replace("\\\"", "\"");
        }
    }
    if outcome.as_deref() == Some("failure") || !status.success() || timed_out {
        outcome = None;
    }
    let what = if timed_out { format!("timed out after {} s", timeout.as_secs()) } else { status.to_string() };
    let log = format!("{what}\nstdout:\n{stdout}\nstderr (tail):\n{}", tail(&stderr, 30));
    Isolated { outcome, message, log }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn in_child() -> bool {
    std::env::var_os(WORKER_ENV).is_some() || std::env::var_os(SOURCE_ENV).is_some()
}

/// Fails unless `source` ends in `Ok` or a clean `Err` (no panic, abort or hang).
fn assert_clean(source: &str) {
    let r = run_isolated(&[source], None, Duration::from_secs(60), CHILD_VMEM_KIB);
    assert!(r.outcome.is_some(), "source {source:?} did not end cleanly: {}", r.log);
}

/// Fails unless the last chunk ends in a runtime error whose message contains `want`.
fn assert_runtime_error(chunks: &[&str], jit: Option<u32>, want: &str) {
    assert_runtime_error_within(chunks, jit, want, Duration::from_secs(60), CHILD_VMEM_KIB);
}

/// [`assert_runtime_error`] with a time limit and a virtual memory cap (KiB).
fn assert_runtime_error_within(chunks: &[&str], jit: Option<u32>, want: &str, timeout: Duration, vmem_kib: u64) {
    let r = run_isolated(chunks, jit, timeout, vmem_kib);
    assert_failed_with(chunks, &r, "runtime-error", want);
}

/// Fails unless the last chunk ends in a compile error whose message contains `want`.
fn assert_compile_error(chunks: &[&str], want: &str) {
    let r = run_isolated(chunks, None, Duration::from_secs(60), CHILD_VMEM_KIB);
    assert_failed_with(chunks, &r, "compile-error", want);
}

/// Fails unless run `r` of `chunks` ended in `outcome` with a message containing `want`.
fn assert_failed_with(chunks: &[&str], r: &Isolated, outcome: &str, want: &str) {
    assert!(
        r.outcome.as_deref() == Some(outcome) && r.message.contains(want),
        "expected a {outcome} with {want:?} from {chunks:?}, got {:?} {}: {}",
        r.outcome,
        r.message,
        r.log
    );
}

#[test]
fn reproducer_harness_works() {
    if in_child() {
        return;
    }
    assert_clean("let x = 1 / 0");
    assert_clean("let x = (");
    assert_clean("print(1)");
    assert_runtime_error(&["let x = 1", "let y = x / 0"], None, "division by zero");
}

/// Fails unless the last chunk ends in `Ok`.
fn assert_ok(chunks: &[&str], jit: Option<u32>) {
    let r = run_isolated(chunks, jit, Duration::from_secs(60), CHILD_VMEM_KIB);
    assert!(
        r.outcome.as_deref() == Some("ok"),
        "expected {chunks:?} to run, got {:?} {}: {}",
        r.outcome,
        r.message,
        r.log
    );
}

/// Chunks run after a chunk that failed to compile (REPL, embedder) must not
/// see half-declared structs or functions.
#[test]
fn chunks_after_a_compile_error_stay_clean() {
    if in_child() {
        return;
    }
    let failed = "struct P { x }\nimpl P { fn m(self) { return 1 } }\nfn f() { return 1 }\nlet y = nope";
    assert_clean(&[failed, "let p = P { x: 1 }\nlet a = p.x\nlet t = type(p)\nprint(p, p.m())"].join("\u{1}"));
    assert_clean(&[failed, "let z = f()"].join("\u{1}"));
    assert_clean(&[failed, "impl P { fn n(self) { return 2 } }\nlet q = P { x: 1 }.n()"].join("\u{1}"));
    assert_clean(&[failed, "struct P { x, y }\nlet q = P { y: 1 }\nprint(q)"].join("\u{1}"));
}

/// Very deep or very long constructs end in a compile error ("nesting too
/// deep") or run; none overflows the Rust stack of a 2 MiB thread.
#[test]
fn frontend_nesting_limits_hold() {
    if in_child() {
        return;
    }
    let n = 20_000;
    let sources = [
        format!("let x = 1\nif x == 0 {{ }}{} else {{ }}", " else if x == 1 { }".repeat(n)),
        format!("let x: {}Int{} = 1", "[".repeat(n), "]".repeat(n)),
        format!("let x: {}Int{} = 1", "Map<".repeat(n), ">".repeat(n)),
        format!("let x: {}Int = 1", "fn() -> ".repeat(n)),
        format!("let x = 1{}", ".length()".repeat(n)),
        format!("let x = \"a\"{}", " + \"a\"".repeat(n)),
        format!("let x = {}", "fn() { return ".repeat(n)),
        format!("struct P {{ x }}\nlet x = {}1{}", "P { x: ".repeat(n), " }".repeat(n)),
        format!("let x = {}1{}", "if true { ".repeat(n), " } else { 2 }".repeat(n)),
        format!("let s = \"{}{}\"", "${\"".repeat(n / 4), "\"}".repeat(n / 4)),
        "let a = []\nfor i in 0..25000 { a = [a] }\nlet n = len(a)".to_string(),
    ];
    for src in &sources {
        assert_clean(src);
    }
}

// Engine bugs found by the fuzzer. Each is the smallest program found that
// shows it; run them with `cargo test --test fuzz -- --ignored`.

/// `format::write_value` recursed once per nesting level of the value, so
/// `str`, `print`, `join` and interpolation of a deeply nested value overflowed
/// the Rust stack and aborted the process (the CLI at ~100k levels; a 2 MiB
/// thread in a debug build at ~4k). Fixed (printing stops at 200 levels);
/// kept as a regression test.
#[test]
fn bug_deep_value_print_overflows_rust_stack() {
    if in_child() {
        return;
    }
    assert_clean("let a = []\nfor i in 0..20000 { a = [a] }\nlet s = str(a)");
}

/// `format::write_value` expands shared substructure: a value built in 40
/// steps (`a = [a, a]`) prints as 2^40 elements. The time and memory are
/// spent inside one `str` call, so neither the instruction budget nor the
/// memory limit stopped it: the run hung and allocated without bound. Fixed
/// (a text longer than the memory limit is the error `memory limit exceeded`,
/// for every way of printing; a repeated part's text is copied, so getting
/// there takes ~0.1 s); kept as a regression test.
#[test]
fn bug_shared_value_print_is_unbounded() {
    if in_child() {
        return;
    }
    for print in ["let s = str(a)", "print(a)", "let s = \"${a}\"", "let s = [0, a].join(\",\")", "error(a)"] {
        let src = format!("let a = [1]\nfor i in 0..40 {{ a = [a, a] }}\n{print}");
        assert_runtime_error_within(&[&src], None, "memory limit exceeded", Duration::from_secs(30), 1 << 20);
    }
}

/// `CompileEnv::define_global` (src/frontend/compiler.rs:77) numbered
/// globals with `self.globals.len() as u16`, which wraps after 65536: the
/// next global silently shared slot 0 (the builtin `print`), so assigning it
/// overwrote `print`. Fixed (the compile error "too many globals"); kept as
/// a regression test.
#[test]
fn bug_global_slot_index_wraps_at_65536() {
    if in_child() {
        return;
    }
    let mut src: String = (0..65_600).map(|i| format!("let g{i} = {i}\n")).collect();
    src.push_str("print(1)\n");
    assert_compile_error(&[&src], "too many globals");
}

/// The lexer accepts `${x:.N}` up to N = 1000 (lexer.rs:702), but the
/// compiler emitted `FmtPrec { prec: (*p).min(255) as u8 }`
/// (src/frontend/compiler.rs:1049), so N > 255 silently printed 255 decimals.
/// Fixed (the precision operand is a u16); kept as a regression test.
#[test]
fn bug_format_precision_clamped_to_255() {
    if in_child() {
        return;
    }
    assert_ok(&["assert(len(\"${1.5:.300}\") == 302)\nassert(len(\"${-2:.1000}\") == 1003)"], None);
}

/// `String.split` (src/runtime/builtins.rs, method::SPLIT) allocated every
/// part before the memory limit was looked at: splitting a 16 MiB string of
/// separators makes 16M strings, ~1.3 GB resident with a 64 MiB limit (the
/// error came only afterwards, at the next safe point). Under a 1 GiB
/// address-space cap the process aborted instead of reporting the limit.
/// Fixed (a result that could never fit is refused before anything is
/// allocated); kept as a regression test.
#[test]
fn bug_split_overshoots_memory_limit() {
    if in_child() {
        return;
    }
    let src = "let s = \"a\"\nfor i in 0..24 { s = s + s }\nlet p = s.split(\"a\")";
    assert_runtime_error_within(&[src], None, "memory limit exceeded", Duration::from_secs(60), 1 << 20);
}

/// A chunk that fails in the compiler after its pass 1 has declared its structs
/// (here: "struct `P` is not a value") left them in the compile
/// environment (`Vm::env`), but `Vm::compile` only creates the runtime
/// `StructDef`s when the whole chunk compiled (src/interp/vm.rs:202). The next
/// chunk that used the struct indexed `Vm::structs` out of bounds: an `impl`
/// panicked at src/interp/vm.rs:214 (`self.structs[*sid as usize]`), a literal
/// at run time in the dispatch loop. Fixed (a chunk that fails to compile
/// declares nothing); kept as a regression test.
#[test]
fn bug_struct_of_failed_chunk_panics_next_chunk() {
    if in_child() {
        return;
    }
    let failed = "let print = 1\nfn f() { return 1 }\nstruct P { x }\nlet q = P";
    assert_compile_error(&[failed, "let p = P { x: 1 }\nprint(p.x)"], "unknown struct `P`");
    assert_compile_error(&[failed, "impl P { fn m(self) { return 1 } }"], "unknown struct `P`");
    assert_compile_error(&[failed, "let y = f()"], "undeclared name `f`");
    assert_compile_error(&[failed, "print = 2"], "cannot assign to built-in");
    let redeclared = "struct P { y }\nlet p = P { y: 2 }\nimpl P { fn m(self) { return self.y } }\nassert(p.m() == 2)";
    assert_ok(&[failed, redeclared, "print(P { y: 3 }.m())"], None);
}

/// The recorder guards an Int `/` or `%` with `divisor != -1`
/// (src/jit/recorder.rs:256-258, meant for the `MIN / -1` overflow). When the
/// recorded divisor is -1 that guard is `ine k(-1), k(-1)`, folded to `false`:
/// the trace exits at it on every entry. Each exit gets hot and records a side
/// trace with the same always-failing guard, without limit: 20000 iterations of
/// `s += 8 / -1` compile ~2000 traces and take 10 s and 900 MB (0.03 s with
/// `--jit=off`); longer loops effectively hang. Results stay correct.
#[test]
fn bug_jit_division_by_minus_one_side_trace_storm() {
    if in_child() {
        return;
    }
    let src =
        "fn main() {\n    let s = 0\n    for i in 0..50000 {\n        s += 8 / -1\n    }\n    assert(s == -400000)\n}";
    let r = run_isolated(&[src], Some(10), Duration::from_secs(30), CHILD_VMEM_KIB);
    assert!(
        r.outcome.as_deref() == Some("ok"),
        "expected the loop to finish quickly, got {:?} {}: {}",
        r.outcome,
        r.message,
        r.log
    );
}
