//! Start-up without LLVM (`vela::jit::libllvm`): the `vela` command does not
//! make the dynamic linker load libLLVM, an interpreter-only run never loads
//! it, and a run with the JIT on loads it (the trimmed `libLLVM-14-vela.so`
//! that `build.rs` links, which compiles to the same machine code as the
//! system's libLLVM-14) and compiles.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use object::read::elf::{Dyn, ElfFile64};
use object::{elf, Endianness, Object, ObjectSymbol};
use vela::{Config, Vm};

/// The shared libraries the dynamic linker loads for `path`, and the
/// functions it would look up in libLLVM.
fn needed_and_llvm_imports(path: &str) -> (Vec<String>, Vec<String>) {
    let data = std::fs::read(path).expect("reads the executable");
    let file = ElfFile64::<Endianness>::parse(&*data).expect("an ELF executable");
    let endian = file.endian();
    let sections = file.elf_section_table();
    let (dynamic, link) = sections.dynamic(endian, &*data).expect("reads .dynamic").expect("dynamically linked");
    let strings = sections.strings(endian, &*data, link).expect("reads .dynstr");
    let needed = dynamic
        .iter()
        .filter(|d| d.d_tag(endian) == u64::from(elf::DT_NEEDED))
        .map(|d| String::from_utf8_lossy(strings.get(d.d_val(endian) as u32).expect("a name")).into_owned())
        .collect();
    let imports = file
        .dynamic_symbols()
        .filter(|s| s.is_undefined())
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|n| n.starts_with("LLVM"))
        .collect();
    (needed, imports)
}

#[test]
fn the_vela_command_does_not_make_the_dynamic_linker_load_libllvm() {
    let (needed, imports) = needed_and_llvm_imports(env!("CARGO_BIN_EXE_vela"));
    assert!(needed.iter().any(|n| n.starts_with("libc.")), "the reader found no libc among {needed:?}");
    assert!(
        !needed.iter().any(|n| n.starts_with("libLLVM")),
        "`vela` depends on libLLVM again: add these to `llvm_stubs!` in src/jit/libllvm.rs: {imports:?}"
    );
    assert!(imports.is_empty(), "{imports:?}");
}

fn maps() -> String {
    std::fs::read_to_string("/proc/self/maps").expect("reads /proc/self/maps")
}

/// One test, so no other test of this process loads LLVM in between.
#[test]
fn an_interpreted_run_leaves_libllvm_unloaded_and_the_jit_loads_it() {
    let src = "fn f() {\n let t = 0\n for i in 0..5000 { t += i }\n return t\n}\nlet total = f()\n";
    let mut vm = Vm::new(Config { jit: false, ..Config::default() });
    vm.run_source(src, "<interpreted>").expect("runs");
    assert!(!maps().contains("libLLVM"), "an interpreter-only VM loaded libLLVM");

    let mut vm = Vm::new(Config { jit: true, hot_loop: 2, ..Config::default() });
    vm.run_source(src, "<jit>").expect("runs");
    assert!(vm.jit_stats().compiled >= 1, "{}", vm.jit_report());
    assert!(vm.jit_report().contains("loading libLLVM-14-vela.so included"), "{}", vm.jit_report());
    let maps = maps();
    assert!(maps.contains("/libLLVM-14-vela.so"), "the JIT did not load the trimmed library build.rs links");
    assert!(!maps.contains("/libLLVM-14.so"), "the JIT loaded the system's libLLVM-14 as well");
}

#[test]
fn without_a_loadable_libllvm_the_interpreter_runs_everything_and_says_why() {
    // A libLLVM-14 that is not a library, chosen through VELA_LIBLLVM.
    let dir = std::env::temp_dir().join(format!("vela-no-llvm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("makes a directory");
    let fake = dir.join("libLLVM-14.so.1");
    std::fs::write(&fake, b"").expect("writes a file");
    let src = dir.join("loop.vela");
    std::fs::write(&src, "fn main() {\n let t = 0\n for i in 0..100000 { t += i }\n print(t)\n}\n").expect("writes");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vela"))
        .args(["--jit-stats", "--hot-loop=2"])
        .arg(&src)
        .env("VELA_LIBLLVM", &fake)
        .output()
        .expect("runs vela");
    let _ = std::fs::remove_dir_all(&dir);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "4999950000\n");
    assert!(stderr.contains("jit: not compiling: cannot load libLLVM-14"), "{stderr}");
    assert!(stderr.contains("jit: traces compiled 0,"), "{stderr}");
}

/// `vela --dump asm PROGRAM`'s machine code with every number masked (the
/// code embeds heap addresses, which differ from run to run), and how
/// many traces it printed.
fn machine_code(program: &str, library: Option<&str>) -> (String, usize) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_vela"));
    cmd.args(["--dump", "asm"]).arg(format!("{}/benches/programs/{program}.vela", env!("CARGO_MANIFEST_DIR")));
    match library {
        Some(lib) => cmd.env("VELA_LIBLLVM", lib),
        None => cmd.env_remove("VELA_LIBLLVM"),
    };
    let out = cmd.output().expect("runs vela");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dump = String::from_utf8_lossy(&out.stderr);
    let traces = dump.lines().filter(|l| l.starts_with("---- ")).count();
    let code = dump
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim_end())
        .filter(|l| !l.trim_start().starts_with('.') && !l.is_empty())
        .map(|l| mask_numbers(l) + "\n")
        .collect();
    (code, traces)
}

/// `l` with each run of digits and minus signs replaced by one `N`.
fn mask_numbers(l: &str) -> String {
    let mut masked = String::with_capacity(l.len());
    for c in l.chars() {
        match c {
            '0'..='9' | '-' if masked.ends_with('N') => {}
            '0'..='9' | '-' => masked.push('N'),
            _ => masked.push(c),
        }
    }
    masked
}

#[test]
fn the_trimmed_library_compiles_what_the_system_libllvm_compiles() {
    // Float arithmetic, struct fields, calls and loop nests (nbody); Bool
    // arrays, side traces and a merged recompile (sieve).
    for program in ["nbody", "sieve"] {
        let (trimmed, traces) = machine_code(program, None);
        let (system, _) = machine_code(program, Some("libLLVM-14.so.1"));
        assert!(traces >= 4, "{program}: {traces} traces");
        assert!(trimmed == system, "{program}: the machine code differs between the two libraries");
    }
}
