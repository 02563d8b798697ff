//! The `vela` command: runs a file, a `-e` string, or an interactive REPL.
//! Owns argument parsing, exit codes and the `--stats` report; everything
//! else is the library's.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use vela::{Config, Error, Vm};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Dump {
    Bytecode,
}

#[derive(Parser, Debug)]
#[command(
    name = "vela",
    version,
    about = "VelaVM: run Vela programs",
    override_usage = "vela [OPTIONS] [FILE] [ARGS]..."
)]
struct Cli {
    /// Run this code instead of a file.
    #[arg(short = 'e', value_name = "CODE")]
    eval: Option<String>,
    /// Turn the trace JIT on or off (also env VELA_JIT=off).
    #[arg(long, value_enum, value_name = "on|off")]
    jit: Option<OnOff>,
    /// Print the compiled form instead of running.
    #[arg(long, value_enum)]
    dump: Option<Dump>,
    /// After running, print instructions executed, GC cycles, peak heap and wall time to stderr.
    #[arg(long)]
    stats: bool,
    /// Heap limit in bytes; exceeding it is a runtime error.
    #[arg(long, value_name = "BYTES")]
    mem_limit: Option<usize>,
    /// The program to run; with no FILE and no -e, start the REPL.
    file: Option<String>,
    /// Arguments for the program, available as the global `args`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = Config::default();
    if let Some(j) = cli.jit {
        config.jit = j == OnOff::On;
    }
    if let Some(m) = cli.mem_limit {
        config.mem_limit = m;
    }
    let mut vm = Vm::new(config);
    let args: Vec<vela::Value> = cli.args.iter().map(|a| vm.new_string(a)).collect();
    let args = vm.new_array(args);
    vm.set_global("args", args);

    let (source, file) = match (&cli.eval, &cli.file) {
        (Some(code), _) => (code.clone(), "<eval>".to_string()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(s) => (s, path.clone()),
            Err(e) => {
                eprintln!("error: cannot read {path}: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => return repl(&mut vm),
    };

    if cli.dump == Some(Dump::Bytecode) {
        return match vm.disassemble(&source, &file) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => report(&e),
        };
    }

    let started = Instant::now();
    let result = vm.run_source(&source, &file);
    vm.flush();
    if cli.stats {
        let s = vm.stats();
        let h = vm.heap_stats();
        eprintln!("instructions executed: {}", s.instructions);
        eprintln!("gc cycles: {}", h.collections);
        eprintln!("peak heap: {} bytes", h.peak_bytes);
        eprintln!("wall time: {:.3} ms", started.elapsed().as_secs_f64() * 1e3);
    }
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn report(e: &Error) -> ExitCode {
    let _ = std::io::stdout().flush();
    eprintln!("{e}");
    ExitCode::from(e.exit_code() as u8)
}

fn repl(vm: &mut Vm) -> ExitCode {
    println!("Vela {} REPL. Ctrl-D exits.", env!("CARGO_PKG_VERSION"));
    let Ok(mut rl) = rustyline::DefaultEditor::new() else {
        eprintln!("error: cannot open the terminal");
        return ExitCode::from(1);
    };
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() { "> " } else { ". " };
        match rl.readline(prompt) {
            Ok(line) => {
                pending.push_str(&line);
                pending.push('\n');
                if !balanced(&pending) {
                    continue;
                }
                let _ = rl.add_history_entry(pending.trim_end());
                if let Err(e) = vm.run_source(&pending, "<repl>") {
                    eprintln!("{e}");
                }
                pending.clear();
            }
            Err(rustyline::error::ReadlineError::Interrupted) => pending.clear(),
            Err(_) => break,
        }
    }
    ExitCode::SUCCESS
}

/// Whether brackets are closed, so the REPL knows to wait for more lines.
fn balanced(src: &str) -> bool {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut escaped = false;
    for c in src.chars() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    depth <= 0 && !in_str
}
