//! Loads libLLVM when the JIT first needs it instead of when the process
//! starts. Owns the table through which every LLVM C function the back end
//! calls is reached; must not call LLVM itself (`super::backend` does,
//! after `ensure_loaded`).
//!
//! Why: libLLVM-14 and what it pulls in (z3, ICU, libstdc++, libxml2) cost
//! 13-16 ms of every process start when the dynamic linker loads them up
//! front (370,000 relocations, 3,000 page faults), interpreter-only runs
//! and one-line scripts included. Here each LLVM function the back end uses
//! is defined in the executable as a one-instruction stub that jumps
//! through a slot of a table; with no symbol left for libLLVM to provide,
//! the linker (`--as-needed`, rustc's default) drops it from the
//! executable's dependencies. `start` loads it with `dlopen` on a thread of
//! its own when a VM with the JIT on is made, so the interpreter runs while
//! it loads, and `ensure_loaded` (the back end's first step) waits for it,
//! or loads it there if nothing started it.
//!
//! The library loaded is, first, `libLLVM-14-vela.so`, which `build.rs`
//! links from LLVM 14's static archives with only what the back end needs
//! (about 4 ms to load instead of 18-20), then the system's libLLVM-14;
//! `VELA_LIBLLVM` names one library to load instead.
//!
//! A function missing from `llvm_stubs!` is not an error: the linker then
//! binds it to libLLVM directly, libLLVM is loaded at start again, and only
//! the start-up time is lost. `tests/startup.rs` checks that the `vela`
//! command does not depend on libLLVM (and names what is missing if it does).
//! Before the table is filled every slot holds `llvm_not_loaded`, which
//! aborts with a message: calling LLVM before `ensure_loaded` is a bug in
//! the back end, and this turns it into a clear one instead of a jump to
//! nowhere. Only x86-64 Linux has the stubs; elsewhere libLLVM is linked
//! as usual and `ensure_loaded` has nothing to do. If libLLVM cannot be
//! loaded, the interpreter stops recording traces (`failed`) and the
//! report says why (`error`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// What loading gave: `Err` says why the JIT cannot compile.
static LOADED: OnceLock<Result<(), String>> = OnceLock::new();

/// The file name of the library loaded, once one is.
static LIBRARY: OnceLock<String> = OnceLock::new();

/// Whether `start` has run.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Starts loading libLLVM on a thread of its own, unless that has started.
pub fn start() {
    if STARTED.swap(true, Ordering::Relaxed) || LOADED.get().is_some() {
        return;
    }
    // A failed spawn only means `ensure_loaded` loads on the caller's thread.
    let _ = std::thread::Builder::new().name("vela-llvm-load".into()).spawn(|| {
        let _ = ensure_loaded();
    });
}

/// Whether loading libLLVM was tried and failed: the JIT cannot compile,
/// so recording is wasted work.
pub fn failed() -> bool {
    LOADED.get().is_some_and(|r| r.is_err())
}

/// Why loading libLLVM failed, if it did.
pub fn error() -> Option<&'static str> {
    LOADED.get().and_then(|r| r.as_ref().err()).map(String::as_str)
}

/// The file name of the LLVM library loaded (`libLLVM-14-vela.so` unless
/// the build could not link it), if one is.
pub fn library() -> Option<&'static str> {
    LIBRARY.get().map(String::as_str)
}

/// Waits until libLLVM is loaded and the stub table filled (loading it here
/// if no thread is at it), and says whether that worked.
pub fn ensure_loaded() -> Result<(), String> {
    LOADED.get_or_init(stubs::load).clone()
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod stubs {
    pub fn load() -> Result<(), String> {
        Ok(())
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod stubs {
    use std::ffi::{CStr, CString};

    /// The system's libLLVM, by the names the linker would have recorded:
    /// `dlopen` searches for them as the dynamic linker would have at start.
    const SYSTEM: [&str; 2] = ["libLLVM-14.so.1", "libLLVM-14.so"];

    /// The libraries to try, in order: `VELA_LIBLLVM` alone when it is set
    /// (to choose one, e.g. to compare them); else the trimmed library
    /// `build.rs` linked, if it did, then the system's.
    fn candidates() -> Vec<Vec<u8>> {
        use std::os::unix::ffi::OsStringExt;
        if let Some(chosen) = std::env::var_os("VELA_LIBLLVM") {
            return vec![chosen.into_vec()];
        }
        let trimmed = env!("VELA_TRIMMED_LLVM");
        let trimmed = (!trimmed.is_empty() && std::path::Path::new(trimmed).exists()).then_some(trimmed);
        trimmed.into_iter().chain(SYSTEM).map(|l| l.as_bytes().to_vec()).collect()
    }

    /// Defines, for each name, a global (hidden) function of that name that
    /// jumps through its own 8-byte slot, and lays the slots out in order
    /// from `vela_llvm_slots`, each holding `llvm_not_loaded` until `load`
    /// writes the real address. The stubs never touch a register, so they
    /// pass any signature through unchanged.
    macro_rules! llvm_stubs {
        ($($name:ident),* $(,)?) => {
            /// The stubbed functions, in slot order.
            pub const NAMES: &[&str] = &[$(stringify!($name)),*];

            core::arch::global_asm!(
                ".pushsection .text.vela_llvm_stubs,\"ax\",@progbits",
                $(
                    concat!(".globl ", stringify!($name)),
                    concat!(".hidden ", stringify!($name)),
                    concat!(".type ", stringify!($name), ",@function"),
                    concat!(stringify!($name), ":"),
                    concat!("jmp qword ptr [rip + vela_llvm_slot_", stringify!($name), "]"),
                )*
                ".popsection",
                ".pushsection .data.vela_llvm_slots,\"aw\",@progbits",
                ".balign 8",
                ".globl vela_llvm_slots",
                ".hidden vela_llvm_slots",
                "vela_llvm_slots:",
                $(
                    concat!("vela_llvm_slot_", stringify!($name), ":"),
                    ".quad {unloaded}",
                )*
                ".popsection",
                unloaded = sym llvm_not_loaded,
            );
        };
    }

    // What the `vela` binary needs from libLLVM (`nm -D --undefined-only`
    // on a build without this table).
    llvm_stubs! {
    LLVMAddAttributeAtIndex, LLVMAddFunction, LLVMAddIncoming, LLVMAppendBasicBlockInContext,
    LLVMArrayType, LLVMBuildAShr, LLVMBuildAdd, LLVMBuildAlloca,
    LLVMBuildAnd, LLVMBuildBitCast, LLVMBuildBr, LLVMBuildCall,
    LLVMBuildCondBr, LLVMBuildExtractValue, LLVMBuildFAdd, LLVMBuildFCmp,
    LLVMBuildFDiv, LLVMBuildFMul, LLVMBuildFNeg, LLVMBuildFRem,
    LLVMBuildFSub, LLVMBuildGEP, LLVMBuildICmp, LLVMBuildInBoundsGEP,
    LLVMBuildIntToPtr, LLVMBuildIsNull, LLVMBuildLShr, LLVMBuildLoad,
    LLVMBuildMul, LLVMBuildNeg, LLVMBuildOr, LLVMBuildPhi,
    LLVMBuildPointerCast, LLVMBuildPtrToInt, LLVMBuildRet, LLVMBuildRetVoid, LLVMBuildSDiv,
    LLVMBuildSExt, LLVMBuildSIToFP, LLVMBuildSRem, LLVMBuildShl,
    LLVMBuildStore, LLVMBuildSub, LLVMBuildTrunc, LLVMBuildXor,
    LLVMBuildZExt, LLVMConstAllOnes, LLVMConstInt, LLVMConstIntGetSExtValue,
    LLVMConstIntToPtr, LLVMConstNull, LLVMConstPointerNull, LLVMConstReal,
    LLVMContextCreate, LLVMContextDispose, LLVMCopyStringRepOfTargetData, LLVMCountBasicBlocks,
    LLVMCountIncoming, LLVMCountParams, LLVMCountStructElementTypes, LLVMCreateBuilderInContext,
    LLVMCreateEnumAttribute, LLVMCreateMemoryBufferWithMemoryRangeCopy, LLVMCreateMessage, LLVMCreatePassBuilderOptions,
    LLVMCreateStringAttribute, LLVMCreateTargetDataLayout, LLVMCreateTargetMachine, LLVMDisposeBuilder,
    LLVMDisposeExecutionEngine, LLVMDisposeMemoryBuffer, LLVMDisposeMessage, LLVMDisposeModule,
    LLVMDisposePassBuilderOptions, LLVMDisposeTargetData, LLVMDisposeTargetMachine, LLVMDoubleTypeInContext,
    LLVMFunctionType, LLVMGetArrayLength, LLVMGetBasicBlockParent, LLVMGetBasicBlockTerminator,
    LLVMGetBasicBlocks, LLVMGetBufferSize, LLVMGetBufferStart, LLVMGetDataLayoutStr,
    LLVMGetDefaultTargetTriple, LLVMGetElementType, LLVMGetEnumAttributeKindForName, LLVMGetErrorMessage,
    LLVMGetFirstInstruction, LLVMGetFirstParam, LLVMGetFirstUse, LLVMGetHostCPUFeatures,
    LLVMGetHostCPUName, LLVMGetIncomingBlock, LLVMGetIncomingValue, LLVMGetInsertBlock,
    LLVMGetInstructionOpcode, LLVMGetInstructionParent, LLVMGetIntTypeWidth, LLVMGetIntrinsicDeclaration,
    LLVMGetMDKindIDInContext, LLVMGetNextBasicBlock, LLVMGetNextInstruction, LLVMGetNumOperands,
    LLVMGetOperand, LLVMGetParam, LLVMGetReturnType, LLVMGetTargetFromTriple,
    LLVMGetTargetMachineTriple, LLVMGetTypeKind, LLVMGetValueKind, LLVMGetValueName2,
    LLVMInitializeX86AsmParser, LLVMInitializeX86AsmPrinter, LLVMInitializeX86Disassembler, LLVMInitializeX86Target,
    LLVMInitializeX86TargetInfo, LLVMInitializeX86TargetMC, LLVMInsertBasicBlockInContext, LLVMInstructionEraseFromParent,
    LLVMInt1TypeInContext, LLVMInt32TypeInContext, LLVMInt64TypeInContext, LLVMInt8TypeInContext,
    LLVMIntTypeInContext, LLVMIntrinsicIsOverloaded, LLVMIsABasicBlock, LLVMIsAConstantArray,
    LLVMIsAConstantDataArray, LLVMIsAConstantInt, LLVMIsAFunction, LLVMIsAInstruction,
    LLVMIsAMDNode, LLVMIsAMDString, LLVMIsConstant, LLVMIsNull,
    LLVMIsPoison, LLVMIsUndef, LLVMLookupIntrinsicID, LLVMMDNodeInContext2,
    LLVMMDStringInContext2, LLVMMetadataAsValue, LLVMModuleCreateWithNameInContext, LLVMMoveBasicBlockAfter,
    LLVMParseCommandLineOptions, LLVMParseIRInContext, LLVMPointerType, LLVMPositionBuilderAtEnd,
    LLVMPositionBuilderBefore, LLVMPrintModuleToString, LLVMPrintTypeToString, LLVMPrintValueToString,
    LLVMReplaceAllUsesWith, LLVMRunPasses, LLVMSetDataLayout, LLVMSetFunctionCallConv,
    LLVMSetInstructionCallConv, LLVMSetLinkage, LLVMSetMetadata, LLVMSetSection,
    LLVMSetSuccessor, LLVMSetTailCall, LLVMSetTarget, LLVMSetTargetMachineAsmVerbosity,
    LLVMSetValueName2, LLVMStructTypeInContext, LLVMTargetMachineEmitToMemoryBuffer, LLVMTypeOf,
    LLVMValueAsBasicBlock, LLVMValueAsMetadata, LLVMValueIsBasicBlock, LLVMVerifyFunction,
    LLVMVerifyModule, LLVMVoidTypeInContext, LLVMWriteBitcodeToMemoryBuffer,
    }

    extern "C" {
        /// `NAMES.len()` slots, laid out by `llvm_stubs!`.
        static mut vela_llvm_slots: [usize; NAMES.len()];
    }

    /// Every slot's target until `load` fills the table.
    extern "C" fn llvm_not_loaded() -> ! {
        eprintln!("vela: internal error: an LLVM function was called before libLLVM was loaded");
        std::process::abort()
    }

    /// Opens the first library of `candidates` that has every function of
    /// `NAMES` and points every slot at its function. Runs once
    /// (`super::LOADED`), before any stub is called.
    pub fn load() -> Result<(), String> {
        let mut why = Vec::new();
        for lib in candidates() {
            let name = String::from_utf8_lossy(&lib).into_owned();
            match CString::new(lib).map_err(|e| e.to_string()).and_then(|lib| open(&lib)) {
                Ok(addrs) => {
                    for (k, addr) in addrs.into_iter().enumerate() {
                        // SAFETY: slot `k` exists (`open` gives one address per
                        // name, `NAMES.len()` of them). No stub runs before
                        // `load` returns (`super::ensure_loaded` is every LLVM
                        // call's first step and waits on the `OnceLock` that
                        // runs this), and the `OnceLock` publishes these writes
                        // to the threads that then call through the stubs.
                        unsafe { (*std::ptr::addr_of_mut!(vela_llvm_slots))[k] = addr };
                    }
                    let file = std::path::Path::new(&name).file_name().map(|f| f.to_string_lossy().into_owned());
                    let _ = super::LIBRARY.set(file.unwrap_or(name));
                    return Ok(());
                }
                Err(e) => why.push(e),
            }
        }
        Err(format!("cannot load libLLVM-14 ({}); the JIT needs LLVM 14 installed", why.join("; ")))
    }

    /// Opens `lib` and finds every function of `NAMES` in it, or closes it
    /// again and says what failed (naming `lib`, as `dlerror` does).
    fn open(lib: &CStr) -> Result<Vec<usize>, String> {
        // SAFETY: `lib` is a NUL-terminated name. Loading runs LLVM's
        // initialisers, which touch only the library's own globals.
        let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            // SAFETY: `dlerror` takes no arguments and only reads this
            // thread's last `dl*` error.
            let why = unsafe { libc::dlerror() };
            if why.is_null() {
                return Err("dlopen failed".to_string());
            }
            // SAFETY: a non-null `dlerror` result is a NUL-terminated
            // message, valid until the next `dl*` call on this thread; it
            // is copied before any.
            return Err(unsafe { CStr::from_ptr(why) }.to_string_lossy().into_owned());
        }
        let mut addrs = Vec::with_capacity(NAMES.len());
        for name in NAMES {
            let cname = CString::new(*name).map_err(|e| e.to_string())?;
            // SAFETY: `handle` is an open library and `cname` NUL-terminated.
            let addr = unsafe { libc::dlsym(handle, cname.as_ptr()) };
            if addr.is_null() {
                // SAFETY: `handle` came from `dlopen`, and nothing of the
                // library is in use: no slot points into it.
                unsafe { libc::dlclose(handle) };
                return Err(format!("{}: no function {name}", lib.to_string_lossy()));
            }
            addrs.push(addr as usize);
        }
        Ok(addrs)
    }
}
