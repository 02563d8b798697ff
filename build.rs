//! Links `libLLVM-14-vela.so`: a shared library holding only the parts of
//! LLVM 14 that the JIT's back end calls, from the static component
//! archives that `llvm-14-dev` installs beside libLLVM-14.so. Must not
//! affect anything else in the build: when the library cannot be linked,
//! the build goes on with a warning and the JIT uses the system's
//! libLLVM-14 (`jit::libllvm`).
//!
//! Why: a JIT run pays for loading LLVM before its first compile. The full
//! libLLVM-14 (every target, tool library and analysis, with z3, ICU and
//! libxml2 behind it) took 18-20 ms to `dlopen` on the development machine;
//! this one, with only the x86 back end and the passes, its symbols bound
//! at link time and none exported but the C functions `jit::libllvm`
//! stubs, and libstdc++ linked in, about 4 ms. It is the same LLVM build,
//! so the machine code is the same (`tests/startup.rs` compares it).
//!
//! The path is handed to the crate as `VELA_TRIMMED_LLVM` (empty when there
//! is no such library), which `jit::libllvm` tries first.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The LLVM components whose archives hold the functions the back end
/// calls and what they need (x86-64 code generation only).
const COMPONENTS: &[&str] =
    &["core", "passes", "x86codegen", "x86asmparser", "x86desc", "x86info", "x86disassembler", "executionengine"];

const FILE: &str = "libLLVM-14-vela.so";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/jit/libllvm.rs");
    println!("cargo:rerun-if-env-changed=LLVM_SYS_140_PREFIX");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // Only x86-64 Linux reaches LLVM through `jit::libllvm`'s table.
    let path = if (arch.as_str(), os.as_str()) == ("x86_64", "linux") {
        match link(&out) {
            Ok(lib) => lib.display().to_string(),
            Err(why) => {
                println!("cargo:warning=the JIT will load the system's libLLVM-14 (slower to load): {why}");
                String::new()
            }
        }
    } else {
        String::new()
    };
    println!("cargo:rustc-env=VELA_TRIMMED_LLVM={path}");
}

fn link(out: &Path) -> Result<PathBuf, String> {
    let stubs = std::fs::read_to_string("src/jit/libllvm.rs").map_err(|e| format!("src/jit/libllvm.rs: {e}"))?;
    let names = stub_names(&stubs)?;
    let config = llvm_config()?;
    let libdir = output(&config, &["--libdir"])?;
    let mut args = vec!["--link-static", "--libs"];
    args.extend(COMPONENTS);
    let archives = output(&config, &args)?;

    // Exported: the stubbed functions only. Everything else is bound inside
    // the library at link time, so loading it looks up almost no symbols.
    let script = out.join("libLLVM-14-vela.map");
    let mut text = String::from("{\n  global:\n");
    for n in &names {
        text.push_str(&format!("    {n};\n"));
    }
    text.push_str("  local: *;\n};\n");
    std::fs::write(&script, text).map_err(|e| format!("{}: {e}", script.display()))?;

    let lib = out.join(FILE);
    let partial = out.join(format!("{FILE}.partial"));
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
    let link_with = |runtime: &[&str]| -> Result<(), String> {
        let result = Command::new(&cxx)
            .arg("-shared")
            .args(runtime)
            .arg("-o")
            .arg(&partial)
            .arg(format!("-L{libdir}"))
            // `-u` pulls each function's archive member in; the version
            // script then fails the link (`--no-undefined-version`) if one
            // is missing.
            .args(names.iter().map(|n| format!("-Wl,-u,{n}")))
            .args(["-Wl,--gc-sections", "-Wl,--no-undefined", "-Wl,--no-undefined-version", "-Wl,-O1"])
            .arg(format!("-Wl,--version-script={}", script.display()))
            .arg("-Wl,--start-group")
            .args(archives.split_whitespace())
            .arg("-Wl,--end-group")
            // LLVM's system libraries, by soname: their `-dev` symlinks may be absent.
            .args(["-Wl,--as-needed", "-l:libz.so.1", "-l:libtinfo.so.6", "-lpthread", "-ldl", "-lm"])
            .output()
            .map_err(|e| format!("cannot run {cxx}: {e}"))?;
        if result.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&result.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
        Err(format!("linking {FILE} failed: {}", tail.into_iter().rev().collect::<Vec<_>>().join(" | ")))
    };
    // libstdc++ linked in saves loading it (about 1 ms of the 5); where its
    // static archive is missing, the shared one does.
    link_with(&["-static-libstdc++", "-static-libgcc"]).or_else(|_| link_with(&[]))?;
    std::fs::rename(&partial, &lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    Ok(lib)
}

/// The names listed in the `llvm_stubs! { ... }` invocation.
fn stub_names(src: &str) -> Result<Vec<String>, String> {
    let missing = || "src/jit/libllvm.rs has no `llvm_stubs! { ... }` list".to_string();
    let start = src.find("\n    llvm_stubs! {").ok_or_else(missing)?;
    let body = &src[start..];
    let open = body.find('{').ok_or_else(missing)? + 1;
    let close = open + body[open..].find('}').ok_or_else(missing)?;
    let names: Vec<String> = body[open..close]
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    match names.iter().find(|n| !n.starts_with("LLVM") || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
        Some(bad) => Err(format!("unexpected name in the `llvm_stubs!` list: {bad}")),
        None if names.is_empty() => Err(missing()),
        None => Ok(names),
    }
}

/// `llvm-config` of LLVM 14: where llvm-sys looks first
/// (`LLVM_SYS_140_PREFIX`), then by the names Debian gives it.
fn llvm_config() -> Result<String, String> {
    let mut tried = Vec::new();
    if let Some(prefix) = std::env::var_os("LLVM_SYS_140_PREFIX") {
        tried.push(Path::new(&prefix).join("bin/llvm-config").display().to_string());
    }
    tried.extend(["llvm-config-14".to_string(), "llvm-config".to_string()]);
    for c in &tried {
        if output(c, &["--version"]).is_ok_and(|v| v.starts_with("14.")) {
            return Ok(c.clone());
        }
    }
    Err(format!("no llvm-config of LLVM 14 (tried {})", tried.join(", ")))
}

fn output(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
