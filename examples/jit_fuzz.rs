//! Soak tool for the trace JIT: generates random loop-heavy Vela programs
//! (see `tests/support/loopgen.rs`), runs each with `--jit=off` and in one
//! of the JIT modes (`loopgen::JIT_MODES`: `--hot-loop=2`, plus
//! `--hot-exit=2`, plus `--jit-cache=32768`, chosen by the program's seed),
//! and reports (minimised) programs whose stdout, stderr or exit status
//! differ.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example jit_fuzz -- --cases 100000 --seed 7
//! ```
//!
//! Options: `--cases N` (case functions in all, 10 per program by default),
//! `--seed S`, `--vela PATH` (default `target/release/vela`), `--threads T`,
//! `--per-program K`, `--max-shrinks M`, `--print SEED` (print one
//! program and exit), `--keep DIR` (write minimised failures there),
//! `--jit-flags 'FLAGS'` (a JIT mode's flags, e.g.
//! `'--hot-loop=1 --max-trace=300'`; repeat it for several modes, which
//! then replace `JIT_MODES`; `--jit-stats` is always added).
//! Exits with status 1 if any mismatch was found.

#[path = "../tests/support/loopgen.rs"]
mod loopgen;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!(
        "usage: jit_fuzz [--cases N] [--seed S] [--vela PATH] [--threads T] [--per-program K] \
         [--max-shrinks M] [--keep DIR] [--jit-flags 'FLAGS'] [--print SEED]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut cases = 1000usize;
    let mut seed = 1u64;
    let mut vela = PathBuf::from("target/release/vela");
    let mut threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut per_program = 10usize;
    let mut max_shrinks = 20usize;
    let mut keep: Option<PathBuf> = None;
    let mut print_seed: Option<u64> = None;
    let mut jit_modes: Vec<Vec<String>> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next();
        let ok = match a.as_str() {
            "--cases" => val().and_then(|v| v.parse().ok()).map(|v| cases = v).is_some(),
            "--seed" => val().and_then(|v| v.parse().ok()).map(|v| seed = v).is_some(),
            "--vela" => val().map(|v| vela = PathBuf::from(v)).is_some(),
            "--threads" => val().and_then(|v| v.parse().ok()).map(|v| threads = v).is_some(),
            "--per-program" => val().and_then(|v| v.parse().ok()).map(|v| per_program = v).is_some(),
            "--max-shrinks" => val().and_then(|v| v.parse().ok()).map(|v| max_shrinks = v).is_some(),
            "--keep" => val().map(|v| keep = Some(PathBuf::from(v))).is_some(),
            "--jit-flags" => val().map(|v| jit_modes.push(v.split_whitespace().map(String::from).collect())).is_some(),
            "--print" => val().and_then(|v| v.parse().ok()).map(|v| print_seed = Some(v)).is_some(),
            "-h" | "--help" => return usage(),
            _ => false,
        };
        if !ok {
            return usage();
        }
    }
    if jit_modes.is_empty() {
        jit_modes = loopgen::JIT_MODES.iter().map(|m| m.iter().map(|f| f.to_string()).collect()).collect();
    }
    if let Some(s) = print_seed {
        print!("{}", loopgen::generate(s, per_program).text);
        return ExitCode::SUCCESS;
    }
    if !vela.exists() {
        eprintln!("jit_fuzz: {} not found (run `cargo build --release` or pass --vela PATH)", vela.display());
        return ExitCode::from(2);
    }
    let cfg = loopgen::FuzzConfig {
        vela,
        jit_modes,
        cases,
        seed,
        per_program,
        threads,
        timeout: Duration::from_secs(20),
        shrink_timeout: Duration::from_secs(5),
        max_shrinks,
        shrink_time: Duration::from_secs(300),
        progress: Some(Duration::from_secs(5)),
        work_dir: std::env::temp_dir().join(format!("vela-jit-fuzz-{}", std::process::id())),
    };
    eprintln!(
        "jit_fuzz: {} programs x {} cases, seeds {}..{}, {} threads, {}, modes {}",
        cfg.programs(),
        per_program,
        seed,
        seed.wrapping_add(cfg.programs() as u64),
        threads,
        cfg.vela.display(),
        cfg.jit_modes.iter().map(|m| format!("[{}]", m.join(" "))).collect::<Vec<_>>().join(" ")
    );
    let keep_dir = keep.clone();
    let on_event = move |msg: &str| {
        eprintln!("{msg}");
        if let (Some(dir), Some(rest)) = (&keep_dir, msg.strip_prefix("==== JIT mismatch: program seed ")) {
            let seed: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join(format!("mismatch-{seed}.txt")), msg);
        }
    };
    let summary = loopgen::run_fuzz(&cfg, &on_event);
    let _ = std::fs::remove_dir_all(&cfg.work_dir);
    eprint!("{}", summary.report());
    if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        let seeds: Vec<String> = summary.failures.iter().map(|f| f.seed.to_string()).collect();
        eprintln!("jit_fuzz: mismatching program seeds: {}", seeds.join(" "));
        ExitCode::from(1)
    }
}
