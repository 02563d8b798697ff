//! Start-up without LLVM (`vela::jit::libllvm`): the `vela` command does not
//! make the dynamic linker load libLLVM, an interpreter-only run never loads
//! it, and a run with the JIT on loads it and compiles.
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

fn libllvm_mapped() -> bool {
    std::fs::read_to_string("/proc/self/maps").expect("reads /proc/self/maps").contains("libLLVM")
}

/// One test, so no other test of this process loads LLVM in between.
#[test]
fn an_interpreted_run_leaves_libllvm_unloaded_and_the_jit_loads_it() {
    let src = "fn f() {\n let t = 0\n for i in 0..5000 { t += i }\n return t\n}\nlet total = f()\n";
    let mut vm = Vm::new(Config { jit: false, ..Config::default() });
    vm.run_source(src, "<interpreted>").expect("runs");
    assert!(!libllvm_mapped(), "an interpreter-only VM loaded libLLVM");

    let mut vm = Vm::new(Config { jit: true, hot_loop: 2, ..Config::default() });
    vm.run_source(src, "<jit>").expect("runs");
    assert!(vm.jit_stats().compiled >= 1, "{}", vm.jit_report());
    assert!(libllvm_mapped(), "the JIT compiled without libLLVM mapped?");
}

#[test]
fn without_a_loadable_libllvm_the_interpreter_runs_everything_and_says_why() {
    // A libLLVM-14 that is not a library, found first through LD_LIBRARY_PATH.
    let dir = std::env::temp_dir().join(format!("vela-no-llvm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("makes a directory");
    for name in ["libLLVM-14.so.1", "libLLVM-14.so"] {
        std::fs::write(dir.join(name), b"").expect("writes a file");
    }
    let src = dir.join("loop.vela");
    std::fs::write(&src, "fn main() {\n let t = 0\n for i in 0..100000 { t += i }\n print(t)\n}\n").expect("writes");
    let path = std::env::var("LD_LIBRARY_PATH").map(|p| format!("{}:{p}", dir.display()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vela"))
        .args(["--jit-stats", "--hot-loop=2"])
        .arg(&src)
        .env("LD_LIBRARY_PATH", path.unwrap_or_else(|_| dir.display().to_string()))
        .output()
        .expect("runs vela");
    let _ = std::fs::remove_dir_all(&dir);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "4999950000\n");
    assert!(stderr.contains("jit: not compiling: cannot load libLLVM-14"), "{stderr}");
    assert!(stderr.contains("jit: traces compiled 0,"), "{stderr}");
}
