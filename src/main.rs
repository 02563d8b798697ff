//! The `vela` command: runs a file, a `-e` string, or an interactive REPL.
//! Owns argument parsing, exit codes and the `--stats` report; everything
//! else is the library's.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use vela::{Config, Error, Vm};

/// The command's allocator. Every Vela object is its own allocation, freed
/// one by one by the sweep: the allocation-heavy benchmarks spent up to 40%
/// of their time in glibc's malloc and free. The library leaves this choice
/// to the application that embeds it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Dump {
    /// The compiled bytecode, instead of running.
    Bytecode,
    /// Each trace's IR (recorded and optimised) as it is compiled, to stderr.
    Ir,
    /// Each trace's LLVM IR as compiled, to stderr.
    Llvm,
    /// Each trace's machine code as compiled, to stderr.
    Asm,
}

#[derive(Parser, Debug)]
#[command(
    name = "vela",
    version,
    about = "VelaVM: run Vela programs",
    override_usage = "vela [OPTIONS] [FILE] [ARGS]...",
    // A repeated option takes its last value, so a wrapper's defaults can be
    // overridden by flags added after them.
    args_override_self = true
)]
struct Cli {
    /// Run this code instead of a file.
    #[arg(short = 'e', value_name = "CODE")]
    eval: Option<String>,
    /// Turn the trace JIT on or off (also env VELA_JIT=off).
    #[arg(long, value_enum, value_name = "on|off")]
    jit: Option<OnOff>,
    /// Print compiled forms: bytecode (instead of running), or each trace's ir/llvm/asm.
    #[arg(long, value_enum)]
    dump: Option<Dump>,
    /// Loop back-edges before a loop is recorded by the JIT.
    #[arg(long, value_name = "N")]
    hot_loop: Option<u32>,
    /// Times a trace exit is taken before a side trace is recorded from it.
    #[arg(long, value_name = "N")]
    hot_exit: Option<u32>,
    /// Entries of a side trace that ends at its loop's header before it is merged into the loop's code (0: never).
    #[arg(long, value_name = "N")]
    hot_merge: Option<u64>,
    /// Most bytes of machine code the JIT keeps; least recently used traces are evicted past it.
    #[arg(long, value_name = "BYTES")]
    jit_cache: Option<usize>,
    /// Longest trace in IR instructions; longer recordings are abandoned.
    #[arg(long, value_name = "N")]
    max_trace: Option<usize>,
    /// Log trace starts, aborts (with reasons) and blacklisting to stderr.
    #[arg(long)]
    jit_verbose: bool,
    /// Compile traces on a background thread while the interpreter goes on (statistics then vary run to run).
    #[arg(long)]
    jit_background: bool,
    /// After running, report traces compiled/aborted/blacklisted, exits and compile times to stderr.
    #[arg(long)]
    jit_stats: bool,
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
    if let Some(n) = cli.hot_loop {
        config.hot_loop = n;
    }
    if let Some(n) = cli.hot_exit {
        config.hot_exit = n;
    }
    if let Some(n) = cli.hot_merge {
        config.hot_merge = n;
    }
    if let Some(n) = cli.jit_cache {
        config.jit_cache = n;
    }
    if let Some(n) = cli.max_trace {
        config.max_trace = n;
    }
    config.jit_verbose = cli.jit_verbose;
    config.jit_background = cli.jit_background;
    config.jit_dump.ir = cli.dump == Some(Dump::Ir);
    config.jit_dump.llvm = cli.dump == Some(Dump::Llvm);
    config.jit_dump.asm = cli.dump == Some(Dump::Asm);
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
        (None, None) => {
            let code = repl(&mut vm);
            if cli.jit_stats {
                eprint!("{}", vm.jit_report());
            }
            return code;
        }
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
    if cli.jit_stats {
        eprint!("{}", vm.jit_report());
    }
    let code = match &result {
        Ok(_) => 0,
        Err(e) => print_error(e),
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: ends the process at once, as `exit` would without running
    // destructors or atexit handlers: all output is flushed above, and
    // nothing else needs to happen before the process ends.
    unsafe { libc::_exit(code) }
}

fn report(e: &Error) -> ExitCode {
    ExitCode::from(print_error(e) as u8)
}

/// Prints `e` after what the program printed; returns its exit status.
fn print_error(e: &Error) -> i32 {
    let _ = std::io::stdout().flush();
    eprintln!("{e}");
    e.exit_code()
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
