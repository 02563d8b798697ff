//! The LLVM back end: lowers one `vela_ir::Trace` to native code (inkwell,
//! LLVM 14; `super::loader` places the object code) and owns that code. Must
//! not know about the recorder, the interpreter's frames or the GC: it sees
//! only the IR and the value/object layouts of `super::layout`.
//!
//! # Calling convention
//!
//! `entry(base)` gets a pointer to slot 0 of the trace's base frame on the
//! value stack. The code runs the instructions before `Loop` once, then the
//! loop body forever; it returns only through a failed guard. A failed guard
//! branches to the (cold) exit path of its snapshot, which writes every entry
//! of the snapshot to `base[slot]`, boxed (two 8-byte stores: tag word,
//! payload word; constants as constants), and returns the snapshot id. Guards
//! sharing a snapshot share its exit block (same SSA values, same stores),
//! and exit paths share the stores their snapshots have in common (see
//! `ExitTree`). Nothing else ever writes the stack, so `SLoad` always reads
//! the slot as it was on entry. A root compiled with merged side traces
//! works on a copy of its frame instead and writes the stack only on the
//! way out (`Lower::shadow`).
//!
//! # What the IR must look like
//!
//! * Exactly one `Loop`. Instructions before it form the pre-loop part; a
//!   `Phi` must come after it (the verifier wants them right after it; the
//!   back end also accepts them after the body).
//! * A `Phi` *is* the loop-carried value: loop-body instructions and snapshot
//!   entries name it by the `Phi`'s own `Ref` (forward references to a `Phi`
//!   are fine). `a` is defined before `Loop` (or is a constant) and always
//!   means the value on loop entry; `b` may be anything defined by the end of
//!   the body (including another `Phi`: phis update in parallel). The
//!   LuaJIT-style convention (body uses name `a`) is not supported; a trace
//!   that looks like it (an unused `Phi` whose `a` the body uses) is rejected.
//! * Every other operand is defined earlier in the list, or is a constant
//!   (constants may be defined anywhere). A guard's snapshot may name only
//!   values defined before the guard (never the guard's own result), the
//!   loop-carried `Phi`s if the guard is in the body, and constants. It
//!   names each slot at most once.
//! * Operand types are checked; a mismatch is an `Err`, never a crash.
//!
//! # Values in LLVM
//!
//! Int, Nil (always 0) and Native (the u32 index, zero-extended) are `i64`;
//! Bool is `i1`; Float is `double`; heap references are `i8*`; a boxed
//! `Value` is a pair of `i64`s (tag word, payload word). Loading a Bool
//! payload looks only at byte 8 and a Native payload only at bytes 8..12 (Rust
//! leaves the rest of the word undefined); boxing writes whole words.
//!
//! # Heap access and what LLVM may assume
//!
//! The object fields a trace reads but never writes (an array's data pointer
//! and length, a struct's definition and field pointer) are loaded once, right
//! where the object reference is defined, so a loop over an array defined
//! before `Loop` reads `len`/`data` once per trace entry. Only runtime helper
//! calls (`push`) resize an array and nothing replaces a struct's fields, so
//! in a trace that calls helpers an array's `len`/`data` are instead loaded
//! where used (LLVM merges the loads between two calls). Value words
//! (elements, fields, cells, stack slots) and object fields have distinct
//! TBAA types, `base` is `noalias` (helpers never touch the stack), and
//! stores are emitted in IR order. All loads are non-volatile.
//!
//! # Helper calls
//!
//! `call`/`callg` call the helper's Rust function (`super::helpers::address`)
//! through its absolute address with the C ABI described in `super::layout`;
//! a `callg` branches to its exit when the result says the helper failed (a
//! null object, or the `HELPER_FAILED` tag). `Args` lists are stored to one
//! buffer allocated in the entry block, sized for the longest list.
//!
//! # Pipeline and compile time
//!
//! Lowering, then a short new-pass-manager pipeline (`PASSES`), then integer
//! division by constants is expanded (`expand_const_divs`) and overflow
//! guards' exit edges are split (`split_flag_edges`), then the code
//! generator emits an object file with FastISel and the greedy register
//! allocator (`CODEGEN_FLAGS`, set once per process), which
//! `super::loader` places and relocates. Only `compile_keeping_ir` (for
//! `--dump=llvm|asm`) also writes the optimised module out as bitcode.
//!
//! Measured on a busy 2-core EPYC VM (release build): the `compile_time`
//! test's 8-instruction loop takes about 3 ms and its 112-instruction traces
//! (31 guards, 8 divisions by constants, little for exits to share) about
//! 10 ms; nbody's 170-instruction main trace (43 exits) about 14 ms in a real
//! run: 0.9 ms lowering and verifying, 2.4 ms IR passes, 10 ms code
//! generation. About 3 ms of code generation is paid per trace whatever its
//! size (building the code generator's pass pipeline, object emission); the
//! rest grows with the machine code, over half of which is still exit paths
//! after `ExitTree`'s sharing. Each thread keeps one `TargetMachine` for all
//! its compiles: MCJIT, used before, made one per trace, and rebuilding its
//! subtarget tables cost about 0.7 ms of every compile.
//!
//! # Ownership
//!
//! Each compile gets its own LLVM `Context` and module, dropped when the
//! compile ends: a `CompiledTrace` keeps only its machine code (in a
//! `super::memory::TraceMemory`) and, for dumps, the optimised module as
//! bitcode. Dropping it unmaps the code and gives the pages back to the system
//! (`code_bytes` says how many): `entry` must not be called after.

use std::cell::{Cell, OnceCell};
use std::ffi::{c_char, c_int, CString};
use std::sync::OnceLock;

use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::basic_block::BasicBlock;
use inkwell::builder::{Builder, BuilderError};
use inkwell::context::Context;
use inkwell::intrinsics::Intrinsic;
use inkwell::memory_buffer::MemoryBuffer;
use inkwell::module::Module;
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple};
use inkwell::types::{BasicMetadataTypeEnum, BasicTypeEnum, FloatType, IntType, PointerType};
use inkwell::values::{
    AsValueRef, BasicMetadataValueEnum, BasicValue, BasicValueEnum, FloatValue, FunctionValue, InstructionOpcode,
    InstructionValue, IntValue, MetadataValue, Operand, PhiValue, PointerValue,
};
use inkwell::{AddressSpace, FloatPredicate, IntPredicate, OptimizationLevel};
use rustc_hash::FxHashMap;
use vela_ir::merge::MergePlan;
use vela_ir::{Opcode, Param, Ref, SnapId, Trace, Type};

use super::layout::{
    NativeCalls, ARRAY_DATA, ARRAY_KIND, ARRAY_LEN, CELL_VALUE, FUNC_UPVALS, HELPER_FAILED, NC_CALLS_MADE,
    NC_FRAMES_LEFT, NC_LEVELS_LEFT, NC_STACK_LIMIT, NC_UNWIND, NC_UNWIND_LEN, RETURNED, RETURN_SLOT, STRUCT_DEF,
    STRUCT_FIELDS, STR_DATA, STR_LEN, VALUE_SIZE, VALUE_WORDS,
};
use super::memory::{MappedBytes, TraceMemory};
use super::{loader, perf_map};
use crate::runtime::Value;

/// The door into trace bodies (`door`): calls the `tailcc` body at address
/// `body` with `base` and returns its exit code.
type DoorFn = unsafe extern "C" fn(base: *mut Value, body: usize) -> u64;

/// How to run a compiled trace from Rust: its body, called through the door.
#[derive(Clone, Copy)]
pub struct Entry {
    door: DoorFn,
    body: usize,
}

impl Entry {
    /// Runs the trace (and any it links to) from `base`, slot 0 of the
    /// trace's base frame, and returns the final exit code: the snapshot's
    /// index in the low 32 bits and the serial number (`Linkage::serial`) of
    /// the trace that took the exit in the high ones, since a linked exit may
    /// continue in another trace.
    ///
    /// # Safety
    /// `base` points at the trace's base slot of a stack with room for every
    /// slot the trace reads or its exits write, every heap object the trace
    /// refers to (constants included) is alive and not moved, and the trace
    /// whose `Entry` this is has not been dropped.
    pub unsafe fn call(self, base: *mut Value) -> u64 {
        // SAFETY: the door is a C-ABI function of this signature (`door`);
        // the rest is the caller's contract.
        unsafe { (self.door)(base, self.body) }
    }
}

/// LLVM's `tailcc` calling convention: a call in tail position is always a
/// jump, so a chain of linked traces runs in one native stack frame.
const TAILCC: u32 = 18;

/// The counters a trace's code bumps (`Linkage::counters`).
pub type Counters = Box<[Cell<u64>]>;
/// The link cells a trace's exits jump through (`Linkage::links`).
pub type Links = Box<[Cell<usize>]>;

/// Where a trace's code keeps its run-time counts and links: memory owned by
/// the trace's record in the JIT, whose addresses are baked into the code.
/// Safety contract: both arrays outlive the code and have one element per
/// snapshot (`counters` one more); only this thread touches them.
#[derive(Clone, Copy, Debug)]
pub struct Linkage {
    /// Returned in the high 32 bits of every exit code.
    pub serial: u32,
    /// `counters[0]` counts entries, `counters[1 + s]` exits through snapshot s.
    pub counters: *const Cell<u64>,
    /// `links[s]`: 0, or the body address (`CompiledTrace::body`) of the
    /// trace an exit through snapshot `s` goes on into (root-frame
    /// snapshots only: the others need interpreter frames built first).
    pub links: *const Cell<usize>,
    /// Return `CHECKPOINT` instead of running on every 1024th entry, so
    /// the JIT gets to look at a trace that linked traces keep re-entering.
    pub checkpoint: bool,
    /// The VM's `layout::NativeCalls` (null if the trace makes no native
    /// calls). Safety contract: outlives the code; only this thread touches it.
    pub calls: *const NativeCalls,
    /// The body a native `tcall` enters: 0 for the trace being compiled
    /// itself (a function-entry trace calling its own function), else the
    /// `CompiledTrace::body` of that function's entry trace, which outlives
    /// this trace (it is this side trace's root).
    pub call_target: usize,
}

/// The snapshot part of an exit code that means "entered, but stopped at
/// once for a checkpoint": nothing ran, nothing to write back.
pub const CHECKPOINT: u32 = u32::MAX;

/// What a merged side trace's function returns (as its code) when it ends
/// at the loop header: never a real exit code (no trace has serial
/// `u32::MAX`), and it never leaves the root's code.
const LOOPBACK: u64 = u64::MAX;

/// The IR-level passes, run with the new pass manager. The trace arrives
/// already folded, CSE'd and peeled by `vela-ir`, so LLVM's job is local
/// cleanup: EarlyCSE (loads, store-to-load forwarding along the guard chain,
/// which here is the whole CFG), instcombine (boxing/unboxing, tag tests),
/// simplifycfg (merges guards exiting through one snapshot, drops folded
/// ones). Chosen by measurement on the test traces: about 1.4 ms for a
/// 112-instruction trace against 2.9 ms with GVN and LICM added and 30+ ms
/// for `default<O1>`, with the same generated loop.
///
/// EarlyCSE runs without MemorySSA: that variant also sees loads past stores
/// to memory they cannot alias, but `vela-ir` leaves no such redundant loads
/// (the stack is never written, object fields are loaded once), and on the
/// 115 traces of `benches/programs` and `traces/` the machine code was
/// identical either way, 2-4% of a compile cheaper. Worth re-checking if the
/// IR ever repeats heap loads across stores.
const PASSES: &str = "function(early-cse,instcombine,simplifycfg)";
/// `PASSES` for a root with merged side traces: their functions are inlined
/// first; SROA turns the shadow frame (`Lower::shadow`) into SSA values, so
/// the slots the exits write and the side traces read, and the slots a side
/// trace hands back to the loop, become registers (with phis at the loop
/// header for those only a side trace changes); EarlyCSE with MemorySSA
/// (which sees past the counter stores, a TBAA class of their own) forwards
/// what is left; jump-threading sends the side trace's loop-back exit
/// straight to the block that reads the loop-carried values back, and a
/// second EarlyCSE forwards those. Measured on sum_loop's merged trace
/// before shadow frames: without the threading and second EarlyCSE the loop
/// ran 0.215 s instead of 0.181 s; the passes cost about 0.5 ms of the 10 ms
/// recompile. Without the two EarlyCSEs or the threading the merged code of
/// sum_loop and sieve still changes.
const MERGED_PASSES: &str =
    "always-inline,function(sroa,early-cse<memssa>,instcombine,jump-threading,early-cse<memssa>,simplifycfg)";
/// Machine-code optimisation level, for compiles and for `asm()`.
const CODEGEN_OPT: OptimizationLevel = OptimizationLevel::Default;

/// Branch weight of a guard's exit edge relative to staying on trace.
const COLD_WEIGHT: u64 = 1;
const HOT_WEIGHT: u64 = 1 << 20;

/// A trace compiled to machine code. Owns the code; dropping it unmaps it.
pub struct CompiledTrace {
    /// How to run the code (valid only while `self` lives).
    pub entry: Entry,
    /// The `tailcc` function behind `entry`: what other traces' exits jump
    /// to (`Linkage::links`).
    pub body: usize,
    name: String,
    /// The optimised module as bitcode (captured before the code generator
    /// rewrites the module in place), if asked for: writing it costs about 5%
    /// of a compile and only the dumps read it.
    ir: Option<Vec<u8>>,
    /// How much of `memory` is mapped.
    mapped: MappedBytes,
    /// The placed machine code and constants; `entry` and `body` point in.
    _memory: TraceMemory,
}

impl std::fmt::Debug for CompiledTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledTrace").field("name", &self.name).field("body", &(self.body as *const ())).finish()
    }
}

impl CompiledTrace {
    /// The function's name in the module.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of memory holding this trace's machine code and data (whole
    /// pages, as mapped); they go back to the system when the trace is dropped.
    pub fn code_bytes(&self) -> usize {
        self.mapped.get()
    }

    /// The optimised LLVM module as text (`--dump=llvm`). Only a trace from
    /// `compile_keeping_ir` has it.
    pub fn llvm_ir(&self) -> String {
        let cx = Context::create();
        let text = match self.reload(&cx) {
            Ok(module) => module.print_to_string().to_string(),
            Err(e) => format!("; cannot print the module of {}: {e}\n", self.name),
        };
        text
    }

    /// A copy of the optimised module in context `cx`.
    fn reload<'c>(&self, cx: &'c Context) -> Result<Module<'c>, String> {
        let ir = self.ir.as_ref().ok_or("its IR was not kept (compile_keeping_ir keeps it)")?;
        let buf = MemoryBuffer::create_from_memory_range_copy(ir, &self.name);
        cx.create_module_from_ir(buf).map_err(|e| e.to_string())
    }

    /// The trace's machine code as assembly (`--dump=asm`). Produced by
    /// re-running the code generator (same CPU, features, code model and
    /// optimisation level as the compile) over the optimised module, so it
    /// matches the code that runs, modulo addresses. Only a trace from
    /// `compile_keeping_ir` has it.
    pub fn asm(&self) -> String {
        match self.render_asm() {
            Ok(s) => s,
            Err(e) => format!("; cannot produce assembly for {}: {e}\n", self.name),
        }
    }

    fn render_asm(&self) -> Result<String, String> {
        let host = host()?;
        let cx = Context::create();
        let module = self.reload(&cx)?;
        // The code model of `TM`.
        let tm = target_machine(host, CodeModel::Large)?;
        tm.set_asm_verbosity(true);
        let out = tm.write_to_memory_buffer(&module, FileType::Assembly).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(out.as_slice()).into_owned())
    }
}

/// What the native target is, found once.
struct Host {
    triple: String,
    cpu: String,
    features: String,
}

/// Initialises LLVM's native target on first use (a program that never
/// compiles a trace never gets here).
fn host() -> Result<&'static Host, String> {
    super::libllvm::ensure_loaded()?;
    static HOST: OnceLock<Result<Host, String>> = OnceLock::new();
    HOST.get_or_init(|| {
        Target::initialize_native(&InitializationConfig::default())?;
        set_codegen_options();
        Ok(Host {
            triple: TargetMachine::get_default_triple().as_str().to_string_lossy().into_owned(),
            cpu: TargetMachine::get_host_cpu_name().to_string(),
            features: TargetMachine::get_host_cpu_features().to_string(),
        })
    })
    .as_ref()
    .map_err(|e| format!("LLVM native target: {e}"))
}

/// LLVM's code generator options (process-wide: they are `cl::opt`s, and
/// `asm()` sees them too). Chosen by measurement (`compile_time` test and a
/// run-time benchmark of the same traces): FastISel with the greedy register
/// allocator takes about half the code generation time of the SelectionDAG
/// selector and, on trace-shaped code (short blocks ending in guard
/// branches), ran the loops as fast, except that it does not turn division by
/// a constant into a multiplication (`expand_const_divs` does that first).
/// The two schedulers cost about a millisecond per trace and gained nothing
/// measurable on this out-of-order core. Loop strength reduction (with the
/// loop canonicalisation and scalar evolution it needs) was 10-20% of a
/// compile, and without it the benchmark loops ran as fast (their in-loop
/// instruction counts stayed within one of each other).
///
/// `PASSES` is tuned here too: instcombine normally repeats its sweep over
/// the function until a sweep changes nothing. With a single sweep every
/// benchmark trace compiled to identical machine code, and instcombine took
/// a third less time.
const CODEGEN_FLAGS: &[&str] =
    &["-fast-isel", "-enable-misched=false", "-disable-post-ra", "-disable-lsr", "-instcombine-max-iterations=1"];

fn set_codegen_options() {
    let args: Vec<CString> = std::iter::once("vela")
        .chain(CODEGEN_FLAGS.iter().copied())
        .map(|a| CString::new(a).expect("no NUL in flags"))
        .collect();
    let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    // SAFETY: `argv` holds `argv.len()` pointers to NUL-terminated strings
    // that outlive the call (LLVM copies what it keeps); the overview is an
    // empty C string. Called once, from `host()`'s `OnceLock`, before any
    // code generation; LLVM reports bad options to the given stream
    // (`nulls()`) and returns instead of exiting.
    unsafe {
        inkwell::llvm_sys::support::LLVMParseCommandLineOptions(argv.len() as c_int, argv.as_ptr(), c"".as_ptr());
    }
}

fn target_machine(host: &Host, model: CodeModel) -> Result<TargetMachine, String> {
    let triple = TargetTriple::create(&host.triple);
    let target = Target::from_triple(&triple).map_err(|e| e.to_string())?;
    target
        .create_target_machine(&triple, &host.cpu, &host.features, CODEGEN_OPT, RelocMode::Default, model)
        .ok_or_else(|| "LLVM: cannot create a target machine".to_string())
}

/// Initialises LLVM and the pass pipeline's target machine if that has not
/// happened yet (the one-time cost the first compile would otherwise carry).
///
/// LLVM also builds some machinery (pass pipelines, the JIT's code
/// generator) lazily on the first compile. Paying that here by compiling a
/// throwaway trace made the first real compile look cheaper but cost every
/// run 3-5 ms of wall time (mandelbrot, spectral_norm, nested_loops,
/// `perf stat -r 8`), so the first trace carries it instead.
pub fn warm_up() -> Result<(), String> {
    with_tm(host()?, |_| Ok(()))
}

/// A side trace compiled into its root's code (`compile_merged`).
pub struct Merge {
    /// The root's snapshot whose exit runs the side trace.
    pub exit: SnapId,
    pub side: Trace,
    /// The side trace's own counters and links (its serial names its exits).
    pub linkage: Linkage,
    /// From `vela_ir::merge::plan(root, exit, side)`.
    pub plan: MergePlan,
}

/// Compiles `trace` to a function named `name`.
pub fn compile(trace: &Trace, name: &str) -> Result<CompiledTrace, String> {
    compile_linked(trace, name, None, false)
}

/// `compile`, also keeping the optimised module for `llvm_ir` and `asm`.
pub fn compile_keeping_ir(trace: &Trace, name: &str) -> Result<CompiledTrace, String> {
    compile_linked(trace, name, None, true)
}

/// Compiles `trace` with exit counting and linking through `linkage`,
/// keeping the optimised module for `llvm_ir` and `asm` if `keep_ir`.
pub fn compile_linked(
    trace: &Trace,
    name: &str,
    linkage: Option<Linkage>,
    keep_ir: bool,
) -> Result<CompiledTrace, String> {
    compile_merged(trace, name, linkage, &[], keep_ir)
}

/// `compile_linked`, with the side traces `merges` compiled into the root
/// `trace`'s code: a merged exit runs its side trace in place (after
/// writing its snapshot, as leaving would), and the side trace's last exit,
/// at the loop header, goes back into the loop instead of leaving. The side
/// traces' other exits leave (or link) with their own exit codes, so their
/// records must live as long as this code.
pub fn compile_merged(
    trace: &Trace,
    name: &str,
    linkage: Option<Linkage>,
    merges: &[Merge],
    keep_ir: bool,
) -> Result<CompiledTrace, String> {
    let host = host()?;
    let name = if name.is_empty() { "trace" } else { name };
    let cx = Context::create();
    let (mut loaded, ir) = with_tm(host, |tm| build(&cx, tm, host, trace, name, linkage, merges, keep_ir))?;
    let body =
        loaded.address(&format!("{name}.body")).ok_or_else(|| format!("JIT: {name}.body missing from the object"))?;
    perf_map::record(&loaded.functions);
    keep_door(&mut loaded)?;
    let entry = Entry { door: door()?, body };
    let mapped = loaded.memory.mapped();
    Ok(CompiledTrace { entry, body, name: name.to_string(), ir, mapped, _memory: loaded.memory })
}

thread_local! {
    /// The target machine of this thread's compiles: the IR passes' cost
    /// model and data layout, and the code generator. Made once per thread
    /// because creating one (and the subtarget it builds on first use) is
    /// not free. The large code model, as MCJIT used on x86-64: a trace's
    /// code reaches helpers and constants anywhere in the address space.
    static TM: OnceCell<Result<TargetMachine, String>> = const { OnceCell::new() };
}

/// Runs `f` with this thread's target machine, made on first use.
fn with_tm<R>(host: &Host, f: impl FnOnce(&TargetMachine) -> Result<R, String>) -> Result<R, String> {
    TM.with(|tm| f(tm.get_or_init(|| target_machine(host, CodeModel::Large)).as_ref()?))
}

#[allow(clippy::too_many_arguments)]
fn build(
    cx: &Context,
    tm: &TargetMachine,
    host: &Host,
    trace: &Trace,
    name: &str,
    linkage: Option<Linkage>,
    merges: &[Merge],
    keep_ir: bool,
) -> Result<(loader::Loaded, Option<Vec<u8>>), String> {
    let module = cx.create_module(name);
    module.set_triple(&tm.get_triple());
    module.set_data_layout(&tm.get_target_data().get_data_layout());

    let mut merged = Vec::with_capacity(merges.len());
    for (k, m) in merges.iter().enumerate() {
        let role = Role::Merged { loopback: m.plan.loopback.0 };
        let side = Lower::new(cx, &module, &m.side, &format!("{name}.side{k}"), host, Some(m.linkage), role)?.run()?;
        merged.push(MergedExit {
            exit: m.exit.0,
            func: side,
            links: m.linkage.links as u64,
            reload: m.plan.reload.clone(),
        });
    }
    let shadow = if merges.is_empty() { None } else { shadow_slots(trace, merges.iter().map(|m| &m.side)) };
    let role = Role::Whole { merged, shadow };
    let func = Lower::new(cx, &module, trace, &format!("{name}.body"), host, linkage, role)?.run()?;
    // Not into a module the dumps show: whether it is there would depend on
    // what else the process compiled first.
    if DOOR.get().is_none() && !keep_ir {
        add_door(cx, &module, host)?;
    }
    if !func.verify(false) {
        let why = module.verify().err().map(|e| e.to_string()).unwrap_or_default();
        return Err(format!("internal error: LLVM rejected the lowered trace: {why}"));
    }
    let passes = if merges.is_empty() { PASSES } else { MERGED_PASSES };
    module.run_passes(passes, tm, PassBuilderOptions::create()).map_err(|e| e.to_string())?;
    expand_const_divs(cx, func)?;
    split_flag_edges(cx, &module, func)?;
    // Bitcode: much cheaper to write than text, and the code generator is
    // about to rewrite the module in place.
    let ir = keep_ir.then(|| module.write_bitcode_to_memory().as_slice().to_vec());
    let object = tm.write_to_memory_buffer(&module, FileType::Object).map_err(|e| format!("LLVM: {e}"))?;
    let (memory, _) = TraceMemory::new();
    let loaded = loader::load(object.as_slice(), memory, Some(DOOR_SECTION))?;
    Ok((loaded, ir))
}

/// The slots whose tag word an exit need not write, with their type: those
/// a concrete `sload` guarded. A trace writes the stack only at its exits
/// (and native calls, below), and the recorder loads a slot only before
/// anything writes it, so every exit whose snapshot names such a slot comes
/// after the guard that found that type's tag there, and the tag is still
/// there. A trace with native calls (`tcall`, `ret`) writes callee frames
/// and the return slot in between: it gets no such shortcut. Halves the
/// stores of the common exit (and of every link crossing, which exits first).
fn entry_tags(trace: &Trace) -> FxHashMap<i64, Type> {
    if trace.insts.iter().any(|i| i.op.is_native_call() || i.op == Opcode::Ret) {
        return FxHashMap::default();
    }
    trace.insts.iter().filter(|i| i.op == Opcode::SLoad && i.ty.tag().is_some()).map(|i| (i.imm, i.ty)).collect()
}

/// Most slots a shadow frame copies (`Lower::shadow`): past this, a root
/// with merged side traces works on the stack itself, as before shadows.
const MAX_SHADOW_SLOTS: i64 = 64;

/// The slots `0..n` a root and its merged side traces read or write, if
/// they fit a shadow frame: every `sload` and every snapshot entry, of
/// inlined frames too, is then a slot of the copy.
fn shadow_slots<'t>(root: &'t Trace, sides: impl Iterator<Item = &'t Trace>) -> Option<u64> {
    let mut top = -1i64;
    for t in std::iter::once(root).chain(sides) {
        let loads = t.insts.iter().filter(|i| i.op == Opcode::SLoad).map(|i| i.imm);
        let writes = t.snaps.iter().flat_map(|s| s.entries.iter().map(|e| e.slot as i64));
        for slot in loads.chain(writes) {
            if !(0..MAX_SHADOW_SLOTS).contains(&slot) {
                return None;
            }
            top = top.max(slot);
        }
    }
    Some((top + 1) as u64)
}

/// The door's address once some compile has made it (`DOOR_SECTION`).
static DOOR: OnceLock<usize> = OnceLock::new();

/// The ELF section the door is emitted in: the loader keeps it apart from
/// the trace that brought it, so evicting that trace leaves the door.
const DOOR_SECTION: &str = ".text.vela.door";
const DOOR_NAME: &str = "vela.door";

/// Adds the C-ABI function through which Rust runs every trace to `module`:
/// `vela.door(base, body)` calls the `tailcc` body at address `body`. Exits
/// that link to other traces jump from body to body; only the final exit
/// code comes back through here. The first compile of the process emits it
/// alongside its trace, and it is never freed: a door in every module was a
/// second function for the code generator, about 10% of each compile, and a
/// module of its own cost as much as several of those.
fn add_door<'c>(cx: &'c Context, module: &Module<'c>, host: &Host) -> Result<(), String> {
    let i64 = cx.i64_type();
    let i64p = i64.ptr_type(AddressSpace::default());
    let f = module.add_function(DOOR_NAME, i64.fn_type(&[i64p.into(), i64.into()], false), None);
    f.as_global_value().set_section(Some(DOOR_SECTION));
    let attr = |n: &str| cx.create_enum_attribute(Attribute::get_named_enum_kind_id(n), 0);
    f.add_attribute(AttributeLoc::Function, attr("nounwind"));
    f.add_attribute(AttributeLoc::Function, cx.create_string_attribute("target-cpu", &host.cpu));
    f.add_attribute(AttributeLoc::Function, cx.create_string_attribute("target-features", &host.features));
    let b = cx.create_builder();
    b.position_at_end(cx.append_basic_block(f, "entry"));
    let base = f.get_nth_param(0).ok_or("no parameter")?;
    let body = f.get_nth_param(1).ok_or("no parameter")?.into_int_value();
    let fn_ty = i64.fn_type(&[i64p.into()], false);
    let fp = b.build_int_to_ptr(body, fn_ty.ptr_type(AddressSpace::default()), "body").e()?;
    let callee = inkwell::values::CallableValue::try_from(fp).map_err(|_| "body is not callable")?;
    let call = b.build_call(callee, &[base.into()], "exit").e()?;
    call.set_call_convention(TAILCC);
    let r = call.try_as_basic_value().basic().ok_or("trace body returns nothing")?;
    b.build_return(Some(&r)).e()?;
    if !f.verify(false) {
        return Err("internal error: LLVM rejected the trace door".to_string());
    }
    Ok(())
}

/// The door, made by the first compile (or, for one that keeps its module
/// for the dumps, in a module of its own).
fn door() -> Result<DoorFn, String> {
    let addr = match DOOR.get() {
        Some(&a) => a,
        None => {
            let host = host()?;
            let cx = Context::create();
            let module = cx.create_module(DOOR_NAME);
            let mut loaded = with_tm(host, |tm| {
                module.set_triple(&tm.get_triple());
                module.set_data_layout(&tm.get_target_data().get_data_layout());
                add_door(&cx, &module, host)?;
                let object = tm.write_to_memory_buffer(&module, FileType::Object).map_err(|e| format!("LLVM: {e}"))?;
                loader::load(object.as_slice(), TraceMemory::new().0, Some(DOOR_SECTION))
            })?;
            perf_map::record(&loaded.functions);
            keep_door(&mut loaded)?;
            *DOOR.get().ok_or("internal error: no door")?
        }
    };
    // SAFETY: `addr` is where the loader placed `vela.door`, built by
    // `add_door` with signature `i64 (i64*, i64)`, which is `DoorFn` in the
    // C ABI; its memory is never unmapped.
    Ok(unsafe { std::mem::transmute::<usize, DoorFn>(addr) })
}

/// Keeps the door `loaded` brought, if any, unless another compile's came
/// first (then this one, never used, is unmapped with `loaded.kept`).
fn keep_door(loaded: &mut loader::Loaded) -> Result<(), String> {
    let Some(kept) = loaded.kept.take() else { return Ok(()) };
    let addr = loaded.address(DOOR_NAME).ok_or("JIT: vela.door missing from its object")?;
    if DOOR.set(addr).is_ok() {
        // The door serves every trace until the process ends.
        std::mem::forget(kept);
    }
    Ok(())
}

/// How the exit paths of a trace share their stores. Snapshots along a trace
/// differ in a few entries and repeat the rest (nbody's main trace: 43 exits,
/// 338 entries, 106 distinct once shared), and those stores were most of the
/// code LLVM had to optimise and compile.
///
/// It is a trie of (slot, value) entries: each used snapshot is the path from
/// the root through its entries, most widely shared first, so the entries a
/// snapshot has alone sit at the end of its path. An exit stores from its
/// snapshot's node upwards. A node where paths meet (two or more children or
/// snapshots end there) and the root get a block of their own, which the
/// paths below branch to, passing the snapshot id in a phi; the root's block
/// returns it.
///
/// Sharing is sound because every path into a node's block comes from a guard
/// whose snapshot contains that node's entry, and a snapshot names only
/// values defined before its guard: the value dominates the block.
struct ExitTree {
    nodes: Vec<TailNode>,
    /// Used snapshot id → the node its path ends at.
    leaf: FxHashMap<u32, usize>,
}

#[derive(Clone, Copy)]
struct TailNode {
    parent: usize,
    slot: i32,
    value: Ref,
    /// Children plus snapshots ending here.
    ins: u32,
}

impl ExitTree {
    const ROOT: usize = 0;

    fn new(trace: &Trace) -> Result<ExitTree, String> {
        let mut used: Vec<u32> = Vec::new();
        let mut seen = vec![false; trace.snaps.len()];
        for i in trace.insts.iter().filter(|i| i.op.is_guard(i.ty)) {
            if let Some(seen) = seen.get_mut(i.snap.0 as usize).filter(|s| !**s) {
                *seen = true;
                used.push(i.snap.0);
            }
        }
        let mut count: FxHashMap<(i32, Ref), u32> = FxHashMap::default();
        for &s in &used {
            for e in &trace.snaps[s as usize].entries {
                *count.entry((e.slot, e.value)).or_default() += 1;
            }
        }
        let mut tree = ExitTree {
            nodes: vec![TailNode { parent: Self::ROOT, slot: 0, value: Ref::NONE, ins: 0 }],
            leaf: FxHashMap::default(),
        };
        let mut child: FxHashMap<(usize, i32, Ref), usize> = FxHashMap::default();
        let mut path: Vec<(i32, Ref)> = Vec::new();
        for &s in &used {
            path.clear();
            path.extend(trace.snaps[s as usize].entries.iter().map(|e| (e.slot, e.value)));
            // Stores along a path are unordered, so one slot twice would be ambiguous.
            path.sort_by_key(|&(slot, _)| slot);
            if path.windows(2).any(|w| w[0].0 == w[1].0) {
                return err(format!("snapshot {s} names a slot twice"));
            }
            path.sort_by_key(|&(slot, value)| (std::cmp::Reverse(count[&(slot, value)]), slot, value.0));
            let mut at = Self::ROOT;
            for &(slot, value) in &path {
                at = *child.entry((at, slot, value)).or_insert_with(|| {
                    tree.nodes[at].ins += 1;
                    tree.nodes.push(TailNode { parent: at, slot, value, ins: 0 });
                    tree.nodes.len() - 1
                });
            }
            tree.nodes[at].ins += 1;
            tree.leaf.insert(s, at);
        }
        Ok(tree)
    }

    /// Whether `node` gets a block of its own.
    fn is_shared(&self, node: usize) -> bool {
        node == Self::ROOT || self.nodes[node].ins > 1
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(msg.into())
}

/// Builder results into this module's error type.
trait Llvm<T> {
    fn e(self) -> Result<T, String>;
}

impl<T> Llvm<T> for Result<T, BuilderError> {
    fn e(self) -> Result<T, String> {
        self.map_err(|e| format!("internal error: LLVM builder: {e}"))
    }
}

/// An IR value in LLVM.
#[derive(Clone, Copy)]
enum V<'c> {
    /// Int, Nil, Native (`i64`) or Bool (`i1`).
    I(IntValue<'c>),
    F(FloatValue<'c>),
    /// A heap reference (`i8*`).
    P(PointerValue<'c>),
    /// A boxed `Value`: tag word, payload word.
    B(IntValue<'c>, IntValue<'c>),
}

/// Object fields loaded once where the object reference is defined.
#[derive(Clone, Copy, Default)]
struct ObjFields<'c> {
    /// Array elements or struct fields, as `i64*` (two words per Value).
    values: Option<PointerValue<'c>>,
    /// Array length.
    len: Option<IntValue<'c>>,
    /// Struct definition (`i32`).
    def: Option<IntValue<'c>>,
}

/// TBAA access classes.
#[derive(Clone, Copy)]
enum Mem {
    /// A Value word: stack slot, array element, struct field, cell value.
    Value,
    /// An object field the trace never writes (array data/len, struct def/fields).
    Meta,
    /// The JIT's own counters and link cells (`Linkage`), which nothing
    /// else reads or writes: bumping a counter between an exit's stores
    /// and a merged side trace's loads does not hide the stored values.
    Jit,
}

/// What the function being lowered is.
enum Role<'c> {
    /// A trace's body, with the side traces merged into it. With merged
    /// side traces, `shadow` is the number of slots (from 0) of the stack
    /// frame the code keeps in a copy of its own (`Lower::shadow`).
    Whole { merged: Vec<MergedExit<'c>>, shadow: Option<u64> },
    /// A side trace merged into its root: an internal function the root's
    /// merged exit calls (and LLVM inlines). Returns its exit code instead
    /// of jumping on through a link (the root does that), or `LOOPBACK` from
    /// snapshot `loopback`.
    Merged { loopback: u32 },
}

/// A root exit that runs a merged side trace.
struct MergedExit<'c> {
    exit: u32,
    func: FunctionValue<'c>,
    /// The side trace's link cells (`Linkage::links`).
    links: u64,
    /// Each root `Phi` and the slot it is read back from on loop-back.
    reload: Vec<(Ref, i32)>,
}

struct Lower<'a, 'c> {
    cx: &'c Context,
    linkage: Option<Linkage>,
    role: Role<'c>,
    /// The loop header, made up front: merged exits branch back to it.
    header: Option<BasicBlock<'c>>,
    /// Blocks that go back to the header after a merged side trace, with the
    /// slots to read the loop-carried values from (filled in once the
    /// header's phis exist).
    loopbacks: Vec<(BasicBlock<'c>, Vec<(Ref, i32)>)>,
    module: &'a Module<'c>,
    b: Builder<'c>,
    f: FunctionValue<'c>,
    trace: &'a Trace,
    vals: Vec<Option<V<'c>>>,
    /// The exit block of each snapshot used so far.
    exits: FxHashMap<u32, BasicBlock<'c>>,
    /// How the exit paths share their stores, and the blocks made so far.
    tree: ExitTree,
    tails: Vec<Option<(BasicBlock<'c>, PhiValue<'c>)>>,
    objs: Vec<ObjFields<'c>>,
    /// The trace calls runtime helpers, which may resize arrays: array
    /// data and length are then loaded where used, not once per object.
    calls: bool,
    /// Slots whose tag word is known at every exit that writes them: the
    /// type a guarded `sload` found there (see `entry_tags`).
    entry_tags: FxHashMap<i64, Type>,
    /// Room for the most `Args` values any helper call passes (two words
    /// each), allocated once in the entry block.
    scratch: Option<PointerValue<'c>>,
    /// Slot 0 of the frame the code reads and writes, as `i64*`: the base
    /// frame on the stack, or its shadow copy (`shadow`).
    base: PointerValue<'c>,
    /// Slot 0 of the base frame on the stack (the function's argument).
    real_base: PointerValue<'c>,
    /// Words of the shadow frame, when the code keeps one: a root with
    /// merged side traces copies slots `0..n` of its frame into a local
    /// array on entry, runs on the copy, and copies it back before every
    /// return or jump into another trace. Its slots are then values LLVM
    /// keeps in registers (SROA), so a merged side trace and the root's
    /// loop hand each other slots without going through memory: the stack
    /// is written only when the code leaves, as in any other trace.
    shadow: Option<u64>,
    i1: IntType<'c>,
    i8: IntType<'c>,
    i32: IntType<'c>,
    i64: IntType<'c>,
    f64: FloatType<'c>,
    i8p: PointerType<'c>,
    i64p: PointerType<'c>,
    tbaa_kind: u32,
    tbaa_value: MetadataValue<'c>,
    tbaa_meta: MetadataValue<'c>,
    tbaa_jit: MetadataValue<'c>,
    prof_kind: u32,
    exit_if_true: MetadataValue<'c>,
    exit_if_false: MetadataValue<'c>,
}

impl<'a, 'c> Lower<'a, 'c> {
    fn new(
        cx: &'c Context,
        module: &'a Module<'c>,
        trace: &'a Trace,
        name: &str,
        host: &Host,
        linkage: Option<Linkage>,
        role: Role<'c>,
    ) -> Result<Self, String> {
        let i64 = cx.i64_type();
        let i64p = i64.ptr_type(AddressSpace::default());
        let attr = |n: &str, v: u64| cx.create_enum_attribute(Attribute::get_named_enum_kind_id(n), v);
        let f = match role {
            Role::Whole { .. } => {
                let f = module.add_function(name, i64.fn_type(&[i64p.into()], false), None);
                f.set_call_conventions(TAILCC);
                f.add_attribute(AttributeLoc::Function, attr("noinline", 0));
                f
            }
            Role::Merged { .. } => {
                let f = module.add_function(
                    name,
                    i64.fn_type(&[i64p.into()], false),
                    Some(inkwell::module::Linkage::Internal),
                );
                f.add_attribute(AttributeLoc::Function, attr("alwaysinline", 0));
                f
            }
        };
        f.add_attribute(AttributeLoc::Function, attr("nounwind", 0));
        f.add_attribute(AttributeLoc::Function, cx.create_string_attribute("target-cpu", &host.cpu));
        f.add_attribute(AttributeLoc::Function, cx.create_string_attribute("target-features", &host.features));
        f.add_attribute(AttributeLoc::Param(0), attr("noalias", 0));
        f.add_attribute(AttributeLoc::Param(0), attr("nocapture", 0));
        f.add_attribute(AttributeLoc::Param(0), attr("nonnull", 0));
        // The slots the trace reads or its exits write are inside the stack
        // (the caller checks the trace's extent before entering).
        let written = trace
            .insts
            .iter()
            .filter(|i| i.op.is_guard(i.ty))
            .filter_map(|i| trace.snaps.get(i.snap.0 as usize))
            .flat_map(|s| s.entries.iter().map(|e| e.slot as i64));
        let read = trace.insts.iter().filter(|i| i.op == Opcode::SLoad).map(|i| i.imm);
        let shadow_top = match &role {
            Role::Whole { shadow: Some(n), .. } => *n as i64 - 1,
            _ => -1,
        };
        let top = read.chain(written).max().unwrap_or(-1).max(shadow_top);
        if top >= 0 {
            f.add_attribute(AttributeLoc::Param(0), attr("dereferenceable", (top as u64 + 1) * VALUE_SIZE));
        }
        let base = f.get_first_param().ok_or("no parameter")?.into_pointer_value();
        base.set_name("base");
        let tree = ExitTree::new(trace)?;

        let s = |x: &str| cx.metadata_string(x);
        let root = cx.metadata_node(&[s("vela tbaa").into()]);
        let zero = i64.const_zero();
        let ty_value = cx.metadata_node(&[s("vela value word").into(), root.into(), zero.into()]);
        let ty_meta = cx.metadata_node(&[s("vela object field").into(), root.into(), zero.into()]);
        let ty_jit = cx.metadata_node(&[s("vela jit cell").into(), root.into(), zero.into()]);
        let tag = |t: MetadataValue<'c>| cx.metadata_node(&[t.into(), t.into(), zero.into()]);
        let weights = |a: u64, b: u64| {
            let i32 = cx.i32_type();
            cx.metadata_node(&[
                s("branch_weights").into(),
                i32.const_int(a, false).into(),
                i32.const_int(b, false).into(),
            ])
        };

        Ok(Lower {
            cx,
            linkage,
            role,
            header: None,
            loopbacks: Vec::new(),
            module,
            b: cx.create_builder(),
            f,
            trace,
            vals: vec![None; trace.insts.len()],
            exits: FxHashMap::default(),
            tails: vec![None; tree.nodes.len()],
            tree,
            objs: vec![ObjFields::default(); trace.insts.len()],
            calls: trace.insts.iter().any(|i| i.op.is_call()),
            entry_tags: entry_tags(trace),
            scratch: None,
            base,
            real_base: base,
            shadow: None,
            i1: cx.bool_type(),
            i8: cx.i8_type(),
            i32: cx.i32_type(),
            i64,
            f64: cx.f64_type(),
            i8p: cx.i8_type().ptr_type(AddressSpace::default()),
            i64p,
            tbaa_kind: cx.get_kind_id("tbaa"),
            tbaa_value: tag(ty_value),
            tbaa_meta: tag(ty_meta),
            tbaa_jit: tag(ty_jit),
            prof_kind: cx.get_kind_id("prof"),
            exit_if_true: weights(COLD_WEIGHT, HOT_WEIGHT),
            exit_if_false: weights(HOT_WEIGHT, COLD_WEIGHT),
        })
    }

    fn run(mut self) -> Result<FunctionValue<'c>, String> {
        let trace = self.trace;
        let n = trace.insts.len();
        let entry = self.cx.append_basic_block(self.f, "entry");
        self.b.position_at_end(entry);
        if let Some(l) = self.linkage {
            let p = self.abs_ptr(l.counters as u64)?;
            let n = self.bump(p)?;
            if l.checkpoint {
                let low = self.b.build_and(n, self.i64.const_int(1023, false), "n.low").e()?;
                let due = self.b.build_int_compare(IntPredicate::EQ, low, self.i64.const_zero(), "checkpoint").e()?;
                let (stop, go) =
                    (self.cx.append_basic_block(self.f, "checkpoint"), self.cx.append_basic_block(self.f, "run"));
                let br = self.b.build_conditional_branch(due, stop, go).e()?;
                br.set_metadata(self.exit_if_true, self.prof_kind).map_err(|e| e.to_string())?;
                self.b.position_at_end(stop);
                let code = ((l.serial as u64) << 32) | CHECKPOINT as u64;
                self.b.build_return(Some(&self.i64.const_int(code, false))).e()?;
                self.b.position_at_end(go);
            }
        }
        if let Role::Whole { shadow: Some(slots), .. } = self.role {
            self.open_shadow(entry, slots)?;
        }

        let lp = trace.loop_start().ok_or("trace has no Loop")?.index();
        let mut phis = Vec::new();
        for (i, inst) in trace.insts.iter().enumerate() {
            match inst.op {
                Opcode::Loop if i != lp => return err(format!("second Loop at %{i}")),
                Opcode::Phi if i < lp => return err(format!("Phi %{i} before the Loop")),
                Opcode::Phi => phis.push(i),
                _ => {}
            }
        }
        self.check_phi_convention(lp, &phis)?;

        let mut most_args = 0;
        for inst in trace.insts.iter().filter(|i| i.op.is_helper_call()) {
            let Some(h) = inst.helper() else { continue };
            for (&f, p) in inst.operand_fields().iter().zip(h.params()) {
                if *p == Param::Args {
                    most_args = most_args.max(self.args(inst.field(f))?.len());
                }
            }
        }
        if most_args > 0 {
            let ty = self.i64.array_type(most_args as u32 * VALUE_WORDS as u32);
            let buf = self.b.build_alloca(ty, "args").e()?;
            self.scratch = Some(self.b.build_pointer_cast(buf, self.i64p, "args.p").e()?);
        }

        // Constants are position-independent: define them all up front.
        for i in 0..n {
            if trace.insts[i].op.is_const() {
                let v = self.constant(i)?;
                self.define(i, v)?;
            }
        }

        if matches!(&self.role, Role::Whole { merged, .. } if !merged.is_empty()) {
            self.header = Some(self.cx.append_basic_block(self.f, "loop"));
        }
        for i in 0..lp {
            self.lower(i)?;
        }
        let pre_end = self.b.get_insert_block().ok_or("no block")?;
        let header = match self.header {
            Some(h) => {
                h.move_after(pre_end).map_err(|()| "cannot move the loop header")?;
                h
            }
            None => self.cx.append_basic_block(self.f, "loop"),
        };
        self.b.build_unconditional_branch(header).e()?;
        self.b.position_at_end(header);

        // One LLVM phi per IR Phi (two for a boxed Value), incoming `a` from
        // the pre-loop part now, `b` from the latch once the body is lowered.
        let mut llvm_phis = Vec::with_capacity(phis.len());
        for &p in &phis {
            let inst = trace.insts[p];
            let init = self.get(inst.a)?;
            let names = format!("phi{p}");
            let v = match (inst.ty, init) {
                (Type::Value, V::B(t, w)) => {
                    let pt = self.b.build_phi(self.i64, &format!("{names}.tag")).e()?;
                    let pw = self.b.build_phi(self.i64, &format!("{names}.pay")).e()?;
                    pt.add_incoming(&[(&t, pre_end)]);
                    pw.add_incoming(&[(&w, pre_end)]);
                    llvm_phis.push((p, vec![pt, pw]));
                    V::B(pt.as_basic_value().into_int_value(), pw.as_basic_value().into_int_value())
                }
                (ty, init) => {
                    self.check_kind(inst.a, ty, init)?;
                    let init = one(init)?;
                    let ph = self.b.build_phi(init.get_type(), &names).e()?;
                    ph.add_incoming(&[(&init, pre_end)]);
                    llvm_phis.push((p, vec![ph]));
                    single(ph.as_basic_value())
                }
            };
            self.check_kind(Ref(p as u32), inst.ty, v)?;
            self.vals[p] = Some(v);
        }
        for &p in &phis {
            self.load_obj_fields(p)?;
        }

        for i in lp + 1..n {
            if trace.insts[i].op != Opcode::Phi {
                self.lower(i)?;
            }
        }

        let latch = self.b.get_insert_block().ok_or("no block")?;
        for (p, lphis) in &llvm_phis {
            let inst = trace.insts[*p];
            let next = self.get(inst.b)?;
            self.check_kind(inst.b, inst.ty, next)?;
            Self::add_incoming(lphis, next, latch)?;
        }
        self.b.build_unconditional_branch(header).e()?;
        self.close_loopbacks(header, &llvm_phis)?;
        Ok(self.f)
    }

    fn add_incoming(phis: &[PhiValue<'c>], v: V<'c>, from: BasicBlock<'c>) -> Result<(), String> {
        match v {
            V::B(t, w) => {
                phis[0].add_incoming(&[(&t, from)]);
                phis[1].add_incoming(&[(&w, from)]);
            }
            v => phis[0].add_incoming(&[(&one(v)?, from)]),
        }
        Ok(())
    }

    /// Fills in the blocks that go back into the loop after a merged side
    /// trace: each loop-carried value is read back from the slot the side
    /// trace (or the root's exit before it) wrote it to. The reads are of
    /// stores just made, which LLVM forwards (`MERGED_PASSES`).
    fn close_loopbacks(&mut self, header: BasicBlock<'c>, phis: &[(usize, Vec<PhiValue<'c>>)]) -> Result<(), String> {
        for (block, reload) in std::mem::take(&mut self.loopbacks) {
            self.b.position_at_end(block);
            for (p, lphis) in phis {
                let Some(&(_, slot)) = reload.iter().find(|(r, _)| r.index() == *p) else {
                    return err(format!("merged side trace: no slot to read %{p} back from"));
                };
                let ty = self.trace.insts[*p].ty;
                let v = match ty {
                    Type::Value => self.load_value(self.base, self.slot_index(slot as i64))?,
                    ty => {
                        let wp =
                            self.word_ptr(self.base, self.i64.const_int((slot as i64 * VALUE_WORDS + 1) as u64, true))?;
                        let w = self.load(wp, Mem::Value, "back")?.into_int_value();
                        self.unpack(ty, w)?
                    }
                };
                Self::add_incoming(lphis, v, block)?;
            }
            self.b.build_unconditional_branch(header).e()?;
        }
        Ok(())
    }

    /// Rejects a trace written in the LuaJIT convention (the body uses a
    /// Phi's `a` and never the Phi): it would loop forever here.
    fn check_phi_convention(&self, lp: usize, phis: &[usize]) -> Result<(), String> {
        let trace = self.trace;
        for &p in phis {
            let inst = trace.insts[p];
            if inst.a.is_none() || inst.b.is_none() {
                return err(format!("Phi %{p} lacks an operand"));
            }
            if inst.a == inst.b || trace.insts.get(inst.a.index()).is_none_or(|a| a.op.is_const()) {
                continue;
            }
            let r = Ref(p as u32);
            let used = trace.insts.iter().any(|i| i.operands().any(|o| o == r))
                || trace.snaps.iter().any(|s| s.entries.iter().any(|e| e.value == r));
            let a_in_body =
                trace.insts[lp + 1..].iter().any(|i| i.op != Opcode::Phi && i.operands().any(|o| o == inst.a));
            if !used && a_in_body {
                return err(format!(
                    "Phi %{p} is never used but the loop body uses its entry value {:?}: the back end expects body \
                     uses of a loop-carried value to name the Phi",
                    inst.a
                ));
            }
        }
        Ok(())
    }

    // ---- values ----

    fn get(&self, r: Ref) -> Result<V<'c>, String> {
        if r.is_none() {
            return err("missing operand");
        }
        match self.vals.get(r.index()) {
            None => err(format!("operand {r:?} out of range")),
            Some(None) => err(format!("{r:?} used where it is not defined")),
            Some(Some(v)) => Ok(*v),
        }
    }

    fn ty(&self, r: Ref) -> Type {
        self.trace.insts[r.index()].ty
    }

    /// Whether `v` is how a value of IR type `ty` is represented.
    fn check_kind(&self, r: Ref, ty: Type, v: V<'c>) -> Result<(), String> {
        let ok = match (ty, v) {
            (Type::Bool, V::I(x)) => x.get_type().get_bit_width() == 1,
            (Type::Int | Type::Nil | Type::Native, V::I(x)) => x.get_type().get_bit_width() == 64,
            (Type::Float, V::F(_)) => true,
            (Type::Value, V::B(..)) => true,
            (t, V::P(_)) => t.is_ref() || t == Type::Value,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            err(format!("type mismatch: {r:?} is used as `{ty}`"))
        }
    }

    /// Records the value of instruction `i`, and loads the fields of the
    /// object it refers to (see the module docs).
    fn define(&mut self, i: usize, v: V<'c>) -> Result<(), String> {
        let ty = self.trace.insts[i].ty;
        self.check_kind(Ref(i as u32), ty, v)?;
        self.vals[i] = Some(v);
        self.load_obj_fields(i)
    }

    fn load_obj_fields(&mut self, i: usize) -> Result<(), String> {
        let ty = self.trace.insts[i].ty;
        let Some(V::P(obj)) = self.vals[i] else { return Ok(()) };
        match ty {
            Type::Array => {
                let data = self.field_ptr(obj, ARRAY_DATA, self.i64p.ptr_type(AddressSpace::default()))?;
                let data = self.load(data, Mem::Meta, "data")?.into_pointer_value();
                let len = self.field_ptr(obj, ARRAY_LEN, self.i64p)?;
                let len = self.load(len, Mem::Meta, "len")?.into_int_value();
                self.objs[i] = ObjFields { values: Some(data), len: Some(len), def: None };
            }
            Type::Struct => {
                let fields = self.field_ptr(obj, STRUCT_FIELDS, self.i64p.ptr_type(AddressSpace::default()))?;
                let fields = self.load(fields, Mem::Meta, "fields")?.into_pointer_value();
                let def = self.field_ptr(obj, STRUCT_DEF, self.i32.ptr_type(AddressSpace::default()))?;
                let def = self.load(def, Mem::Meta, "def")?.into_int_value();
                self.objs[i] = ObjFields { values: Some(fields), len: None, def: Some(def) };
            }
            _ => {}
        }
        Ok(())
    }

    fn constant(&self, i: usize) -> Result<V<'c>, String> {
        let inst = self.trace.insts[i];
        Ok(match inst.op {
            Opcode::KInt => V::I(self.i64.const_int(inst.imm as u64, true)),
            Opcode::KFloat => V::F(self.f64.const_float(inst.float())),
            Opcode::KBool => V::I(self.i1.const_int((inst.imm != 0) as u64, false)),
            Opcode::KNil => V::I(self.i64.const_zero()),
            Opcode::KPtr if inst.ty == Type::Native => V::I(self.i64.const_int(inst.imm as u64 & 0xffff_ffff, false)),
            Opcode::KPtr => V::P(self.i64.const_int(inst.imm as u64, false).const_to_pointer(self.i8p)),
            _ => return err("not a constant"),
        })
    }

    fn int(&self, r: Ref) -> Result<IntValue<'c>, String> {
        match (self.ty(r), self.get(r)?) {
            (Type::Int, V::I(x)) => Ok(x),
            (t, _) => err(format!("{r:?} is `{t}`, expected int")),
        }
    }

    fn flt(&self, r: Ref) -> Result<FloatValue<'c>, String> {
        match (self.ty(r), self.get(r)?) {
            (Type::Float, V::F(x)) => Ok(x),
            (t, _) => err(format!("{r:?} is `{t}`, expected flt")),
        }
    }

    fn boolean(&self, r: Ref) -> Result<IntValue<'c>, String> {
        match (self.ty(r), self.get(r)?) {
            (Type::Bool, V::I(x)) => Ok(x),
            (t, _) => err(format!("{r:?} is `{t}`, expected bool")),
        }
    }

    fn obj(&self, r: Ref, want: Type) -> Result<(PointerValue<'c>, ObjFields<'c>), String> {
        match (self.ty(r), self.get(r)?) {
            (t, V::P(p)) if t == want => Ok((p, self.objs[r.index()])),
            (t, _) => err(format!("{r:?} is `{t}`, expected {want}")),
        }
    }

    /// The (tag, payload) words of `r`, boxing a typed value.
    fn words(&self, r: Ref) -> Result<(IntValue<'c>, IntValue<'c>), String> {
        let ty = self.ty(r);
        let v = self.get(r)?;
        self.check_kind(r, ty, v)?;
        if let V::B(t, w) = v {
            return Ok((t, w));
        }
        let tag = ty.tag().ok_or_else(|| format!("{r:?} of type `{ty}` cannot be boxed"))?;
        let payload = match v {
            V::I(x) if ty == Type::Bool => self.b.build_int_z_extend(x, self.i64, "").e()?,
            V::I(x) => x,
            V::F(x) => self.b.build_bit_cast(x, self.i64, "").e()?.into_int_value(),
            V::P(p) => self.b.build_ptr_to_int(p, self.i64, "").e()?,
            V::B(..) => unreachable!("handled above"),
        };
        Ok((self.i64.const_int(tag as u64, false), payload))
    }

    /// A payload word as a value of concrete type `ty`.
    fn unpack(&self, ty: Type, w: IntValue<'c>) -> Result<V<'c>, String> {
        Ok(match ty {
            Type::Int => V::I(w),
            Type::Nil => V::I(self.i64.const_zero()),
            Type::Float => V::F(self.b.build_bit_cast(w, self.f64, "").e()?.into_float_value()),
            Type::Bool => {
                let byte = self.b.build_int_truncate(w, self.i8, "").e()?;
                V::I(self.b.build_int_compare(IntPredicate::NE, byte, self.i8.const_zero(), "").e()?)
            }
            Type::Native => V::I(self.b.build_and(w, self.i64.const_int(0xffff_ffff, false), "").e()?),
            t if t.is_ref() => V::P(self.b.build_int_to_ptr(w, self.i8p, "").e()?),
            t => return err(format!("cannot unbox to `{t}`")),
        })
    }

    // ---- memory ----

    fn field_ptr(&self, obj: PointerValue<'c>, off: u64, ty: PointerType<'c>) -> Result<PointerValue<'c>, String> {
        // SAFETY (of the emitted code, not of this call): `obj` is a guarded
        // object of the kind whose layout `off` comes from; the GEP stays
        // inside it. Building a GEP instruction is itself harmless.
        let p = unsafe { self.b.build_in_bounds_gep(obj, &[self.i64.const_int(off, false)], "") }.e()?;
        self.b.build_pointer_cast(p, ty, "").e()
    }

    /// Word `idx` of the `i64*` array `p`.
    fn word_ptr(&self, p: PointerValue<'c>, idx: IntValue<'c>) -> Result<PointerValue<'c>, String> {
        // SAFETY (of the emitted code): callers index Values that exist (stack
        // slots inside the caller-checked extent, guarded element indices,
        // declared field numbers). Building the instruction is harmless.
        unsafe { self.b.build_in_bounds_gep(p, &[idx], "") }.e()
    }

    /// Byte `idx` of the array whose data pointer is `p` (a Bool array's
    /// element).
    fn byte_ptr(&self, p: PointerValue<'c>, idx: IntValue<'c>) -> Result<PointerValue<'c>, String> {
        let bytes = self.b.build_pointer_cast(p, self.i8p, "").e()?;
        // SAFETY (of the emitted code): the recorder guards the index
        // against the length and the kind before. Building it is harmless.
        unsafe { self.b.build_in_bounds_gep(bytes, &[idx], "") }.e()
    }

    fn load(&self, p: PointerValue<'c>, mem: Mem, name: &str) -> Result<BasicValueEnum<'c>, String> {
        let v = self.b.build_load(p, name).e()?;
        if let Some(ins) = v.as_instruction_value() {
            self.tbaa(ins, mem)?;
        }
        Ok(v)
    }

    fn store(&self, p: PointerValue<'c>, v: IntValue<'c>, mem: Mem) -> Result<(), String> {
        let ins = self.b.build_store(p, v).e()?;
        self.tbaa(ins, mem)
    }

    fn tbaa(&self, ins: InstructionValue<'c>, mem: Mem) -> Result<(), String> {
        let md = match mem {
            Mem::Value => self.tbaa_value,
            Mem::Meta => self.tbaa_meta,
            Mem::Jit => self.tbaa_jit,
        };
        ins.set_metadata(md, self.tbaa_kind).map_err(|e| e.to_string())
    }

    /// The Value at word index `idx` (a multiple of 2) of `p`.
    /// The tag word and the payload word of the Value at word `idx` of `p`.
    fn value_words(
        &self,
        p: PointerValue<'c>,
        idx: IntValue<'c>,
    ) -> Result<(PointerValue<'c>, PointerValue<'c>), String> {
        let tp = self.word_ptr(p, idx)?;
        Ok((tp, self.word_ptr(tp, self.i64.const_int(1, false))?))
    }

    fn load_value(&self, p: PointerValue<'c>, idx: IntValue<'c>) -> Result<V<'c>, String> {
        let (tp, wp) = self.value_words(p, idx)?;
        let t = self.load(tp, Mem::Value, "tag")?.into_int_value();
        let w = self.load(wp, Mem::Value, "pay")?.into_int_value();
        Ok(V::B(t, w))
    }

    fn store_value(
        &self,
        p: PointerValue<'c>,
        idx: IntValue<'c>,
        words: (IntValue<'c>, IntValue<'c>),
    ) -> Result<(), String> {
        let (tp, wp) = self.value_words(p, idx)?;
        self.store(tp, words.0, Mem::Value)?;
        self.store(wp, words.1, Mem::Value)
    }

    fn slot_index(&self, slot: i64) -> IntValue<'c> {
        self.i64.const_int((slot * VALUE_WORDS) as u64, true)
    }

    /// Word index of element `i`: `2 * i`.
    fn elem_index(&self, i: IntValue<'c>) -> Result<IntValue<'c>, String> {
        self.b.build_left_shift(i, self.i64.const_int(1, false), "").e()
    }

    fn cell_values(&self, cell: PointerValue<'c>) -> Result<PointerValue<'c>, String> {
        self.field_ptr(cell, CELL_VALUE, self.i64p)
    }

    // ---- guards and exits ----

    /// Leaves the trace through `snap` when `cond == exit_on`.
    ///
    /// Guards that share a snapshot share its exit block: the entries name
    /// the same SSA values, and the first such guard dominates the others
    /// (the code is a chain of guards), so the stores are the same for all.
    fn guard(&mut self, at: usize, cond: IntValue<'c>, exit_on: bool, snap: SnapId) -> Result<(), String> {
        let here = self.b.get_insert_block().ok_or("no block")?;
        let exit = match self.exits.get(&snap.0) {
            Some(&b) => b,
            None => {
                let b = self.cx.append_basic_block(self.f, &format!("exit{}", snap.0));
                self.b.position_at_end(b);
                self.exit(at, snap)?;
                self.b.position_at_end(here);
                self.exits.insert(snap.0, b);
                b
            }
        };
        let cont = self.cx.insert_basic_block_after(here, "");
        let br = if exit_on {
            self.b.build_conditional_branch(cond, exit, cont).e()?
        } else {
            self.b.build_conditional_branch(cond, cont, exit).e()?
        };
        let w = if exit_on { self.exit_if_true } else { self.exit_if_false };
        br.set_metadata(w, self.prof_kind).map_err(|e| e.to_string())?;
        self.b.position_at_end(cont);
        Ok(())
    }

    /// Writes snapshot `snap` to the stack and returns its id: stores the
    /// entries only this snapshot has, then joins the path it shares with
    /// others (`ExitTree`).
    fn exit(&mut self, at: usize, snap: SnapId) -> Result<(), String> {
        let Some(s) = self.trace.snaps.get(snap.0 as usize) else {
            return err(format!("guard %{at} has no valid snapshot ({snap:?})"));
        };
        // Every entry must be valid here, including those whose stores an
        // earlier exit already emitted on a shared path.
        for e in &s.entries {
            let ty = self.ty(e.value);
            self.get(e.value)
                .and_then(|v| self.check_kind(e.value, ty, v))
                .map_err(|m| format!("snapshot {} of guard %{at}, slot {}: {m}", snap.0, e.slot))?;
        }
        if let Role::Merged { loopback } = self.role {
            if loopback == snap.0 {
                return self.loopback_exit(snap);
            }
        }
        if let Role::Whole { merged, .. } = &self.role {
            if let Some(m) = merged.iter().find(|m| m.exit == snap.0) {
                let (func, links, reload) = (m.func, m.links, m.reload.clone());
                return self.merged_exit(snap, func, links, reload);
            }
        }
        let leaf = *self.tree.leaf.get(&snap.0).ok_or("internal error: snapshot missing from the exit tree")?;
        self.exit_path(leaf, self.i32.const_int(snap.0 as u64, false))
    }

    /// A merged side trace's exit at the loop header: writes the snapshot,
    /// counts it, and returns `{LOOPBACK, 0}` straight from here (once
    /// inlined, a branch back into the root's loop).
    fn loopback_exit(&mut self, snap: SnapId) -> Result<(), String> {
        self.store_snapshot(snap)?;
        self.count_exit(snap)?;
        self.b.build_return(Some(&self.i64.const_int(LOOPBACK, false))).e()?;
        Ok(())
    }

    /// Writes every entry of `snap`, on a path of its own (no `ExitTree`
    /// sharing).
    fn store_snapshot(&mut self, snap: SnapId) -> Result<(), String> {
        let trace = self.trace;
        for e in &trace.snaps[snap.0 as usize].entries {
            self.store_entry(e.slot, e.value)?;
        }
        Ok(())
    }

    /// Adds one to the exit count of `snap`.
    fn count_exit(&mut self, snap: SnapId) -> Result<(), String> {
        let l = self.linkage.ok_or("a merged trace needs linkage")?;
        let counters = self.abs_ptr(l.counters as u64)?;
        // SAFETY (of the generated code): `counters` has one element per
        // snapshot after the entry count.
        let p = unsafe { self.b.build_gep(counters, &[self.i64.const_int(1 + snap.0 as u64, false)], "n.p") }.e()?;
        self.bump(p)?;
        Ok(())
    }

    /// The exit through `snap` when a side trace is merged there: it has a
    /// path of its own (inside the loop body, so that going back to the
    /// header is dominated by everything before the loop). Writes the
    /// snapshot and counts the exit as leaving would, then runs the side
    /// trace, and goes back into the loop or on as the side trace says.
    fn merged_exit(
        &mut self,
        snap: SnapId,
        side: FunctionValue<'c>,
        links: u64,
        reload: Vec<(Ref, i32)>,
    ) -> Result<(), String> {
        self.store_snapshot(snap)?;
        self.count_exit(snap)?;
        let r = self.b.build_call(side, &[self.base.into()], "side").e()?;
        let code = r.try_as_basic_value().basic().ok_or("side trace returns nothing")?.into_int_value();
        let back = self.b.build_int_compare(IntPredicate::EQ, code, self.i64.const_int(LOOPBACK, false), "").e()?;
        let (again, out) =
            (self.cx.append_basic_block(self.f, "loopback"), self.cx.append_basic_block(self.f, "side.out"));
        self.b.build_conditional_branch(back, again, out).e()?;
        self.loopbacks.push((again, reload));
        self.b.position_at_end(out);
        let id = self.b.build_and(code, self.i64.const_int(u32::MAX as u64, false), "side.exit").e()?;
        let links = self.abs_ptr(links)?;
        // SAFETY (of the generated code): the side trace's exit codes carry
        // its snapshot numbers, and its `links` has one cell per snapshot.
        let cell = unsafe { self.b.build_gep(links, &[id], "link.p") }.e()?;
        let next = self.load(cell, Mem::Jit, "link")?.into_int_value();
        self.close_shadow()?;
        self.jump_or_return(code, next)
    }

    /// From the current block: stores the entries of `node` and its ancestors
    /// up to the first shared one, then branches there passing on `id`.
    fn exit_path(&mut self, mut node: usize, id: IntValue<'c>) -> Result<(), String> {
        while !self.tree.is_shared(node) {
            self.exit_store(node)?;
            node = self.tree.nodes[node].parent;
        }
        let (block, phi) = self.shared_tail(node)?;
        let here = self.b.get_insert_block().ok_or("no block")?;
        phi.add_incoming(&[(&id, here)]);
        self.b.build_unconditional_branch(block).e()?;
        Ok(())
    }

    /// The block that stores the entries of shared `node` and its ancestors
    /// (made on first use) and returns the id it receives.
    fn shared_tail(&mut self, node: usize) -> Result<(BasicBlock<'c>, PhiValue<'c>), String> {
        if let Some(t) = self.tails[node] {
            return Ok(t);
        }
        let here = self.b.get_insert_block().ok_or("no block")?;
        let block = self.cx.append_basic_block(self.f, "exit.tail");
        self.b.position_at_end(block);
        let phi = self.b.build_phi(self.i32, "exit.id").e()?;
        self.tails[node] = Some((block, phi));
        let id = phi.as_basic_value().into_int_value();
        if node == ExitTree::ROOT {
            self.exit_return(id)?;
        } else {
            self.exit_store(node)?;
            self.exit_path(self.tree.nodes[node].parent, id)?;
        }
        self.b.position_at_end(here);
        Ok((block, phi))
    }

    /// The end of every exit path: counts the exit, then jumps on into the
    /// trace its link names, or returns the exit code. Only root-frame
    /// exits are ever linked (`Vm::enter_trace`); the others' cells stay 0.
    fn exit_return(&mut self, id: IntValue<'c>) -> Result<(), String> {
        self.close_shadow()?;
        let id = self.b.build_int_z_extend(id, self.i64, "exit").e()?;
        let Some(l) = self.linkage else {
            self.b.build_return(Some(&id)).e()?;
            return Ok(());
        };
        let one = self.i64.const_int(1, false);
        let counters = self.abs_ptr(l.counters as u64)?;
        // SAFETY (of the generated code): `id` is a snapshot index and
        // `counters` has one element per snapshot after the entry count.
        let slot = self.b.build_int_add(id, one, "counter").e()?;
        let p = unsafe { self.b.build_gep(counters, &[slot], "n.p") }.e()?;
        self.bump(p)?;
        let code = self.b.build_or(id, self.i64.const_int((l.serial as u64) << 32, false), "code").e()?;
        if let Role::Merged { .. } = self.role {
            // The root jumps on (`merged_exit`): a jump from here would not
            // be a tail call once the function is inlined.
            self.b.build_return(Some(&code)).e()?;
            return Ok(());
        }
        let links = self.abs_ptr(l.links as u64)?;
        // SAFETY (of the generated code): `links` has one cell per snapshot.
        let cell = unsafe { self.b.build_gep(links, &[id], "link.p") }.e()?;
        let target = self.load(cell, Mem::Jit, "link")?.into_int_value();
        self.jump_or_return(code, target)
    }

    /// Jumps on into the trace body at `target` if it is not 0, else
    /// returns `code`.
    fn jump_or_return(&mut self, code: IntValue<'c>, target: IntValue<'c>) -> Result<(), String> {
        let linked = self.b.build_int_compare(IntPredicate::NE, target, self.i64.const_zero(), "linked").e()?;
        let (jump, back) =
            (self.cx.append_basic_block(self.f, "link"), self.cx.append_basic_block(self.f, "to_interpreter"));
        self.b.build_conditional_branch(linked, jump, back).e()?;
        self.b.position_at_end(back);
        self.b.build_return(Some(&code)).e()?;
        self.b.position_at_end(jump);
        let fn_ty = self.i64.fn_type(&[self.i64p.into()], false);
        let fp = self.b.build_int_to_ptr(target, fn_ty.ptr_type(AddressSpace::default()), "next").e()?;
        let callee = inkwell::values::CallableValue::try_from(fp).map_err(|_| "link is not callable")?;
        let call = self.b.build_call(callee, &[self.real_base.into()], "exit").e()?;
        call.set_call_convention(TAILCC);
        call.set_tail_call(true);
        let r = call.try_as_basic_value().basic().ok_or("trace body returns nothing")?;
        self.b.build_return(Some(&r)).e()?;
        Ok(())
    }

    /// Makes the shadow frame (`Lower::shadow`) of `slots` slots: the array
    /// in block `entry` (where SROA looks for it), the copy-in here.
    fn open_shadow(&mut self, entry: BasicBlock<'c>, slots: u64) -> Result<(), String> {
        let words = slots * VALUE_WORDS as u64;
        let here = self.b.get_insert_block().ok_or("no block")?;
        match entry.get_first_instruction() {
            Some(first) => self.b.position_before(&first),
            None => self.b.position_at_end(entry),
        }
        let arr = self.b.build_alloca(self.i64.array_type(words as u32), "shadow").e()?;
        let shadow = self.b.build_pointer_cast(arr, self.i64p, "shadow.p").e()?;
        self.b.position_at_end(here);
        self.copy_words(self.real_base, shadow, words)?;
        self.base = shadow;
        self.shadow = Some(words);
        Ok(())
    }

    /// Copies the shadow frame, if there is one, back to the stack (before
    /// the code returns or jumps on). Words it never changed are stores of
    /// what was loaded from the same place, which LLVM drops.
    fn close_shadow(&mut self) -> Result<(), String> {
        let Some(words) = self.shadow else { return Ok(()) };
        self.copy_words(self.base, self.real_base, words)
    }

    /// Copies the first `words` value words of `from` to `to`.
    fn copy_words(&self, from: PointerValue<'c>, to: PointerValue<'c>, words: u64) -> Result<(), String> {
        for w in 0..words {
            let k = self.i64.const_int(w, false);
            let v = self.load(self.word_ptr(from, k)?, Mem::Value, "copy")?.into_int_value();
            self.store(self.word_ptr(to, k)?, v, Mem::Value)?;
        }
        Ok(())
    }

    /// `addr` (a Rust-owned location) as an `i64*`.
    fn abs_ptr(&self, addr: u64) -> Result<PointerValue<'c>, String> {
        self.b.build_int_to_ptr(self.i64.const_int(addr, false), self.i64p, "cell").e()
    }

    /// Adds one to the `u64` counter at `p`; returns the new count.
    fn bump(&self, p: PointerValue<'c>) -> Result<IntValue<'c>, String> {
        let n = self.load(p, Mem::Jit, "n")?.into_int_value();
        let n = self.b.build_int_add(n, self.i64.const_int(1, false), "n1").e()?;
        self.store(p, n, Mem::Jit)?;
        Ok(n)
    }

    fn exit_store(&mut self, node: usize) -> Result<(), String> {
        let TailNode { slot, value, .. } = self.tree.nodes[node];
        self.store_entry(slot, value)
    }

    /// Writes snapshot entry `value` to `slot`.
    fn store_entry(&mut self, slot: i32, value: Ref) -> Result<(), String> {
        let words = self.words(value).map_err(|m| format!("snapshot entry slot {slot}: {m}"))?;
        let idx = self.slot_index(slot as i64);
        if self.entry_tags.get(&(slot as i64)) == Some(&self.ty(value)) {
            // The slot already holds this type's tag: only the payload changes.
            let wp = self.word_ptr(self.word_ptr(self.base, idx)?, self.i64.const_int(1, false))?;
            return self.store(wp, words.1, Mem::Value);
        }
        self.store_value(self.base, idx, words)
    }

    // ---- instructions ----

    fn lower(&mut self, i: usize) -> Result<(), String> {
        self.lower_inst(i).map_err(|e| format!("%{i} {}: {e}", self.trace.insts[i].op.name()))
    }

    fn lower_inst(&mut self, i: usize) -> Result<(), String> {
        let inst = self.trace.insts[i];
        let (a, b, c) = (inst.a, inst.b, inst.c);
        let ty = inst.ty;
        let bld = &self.b;
        let v = match inst.op {
            // Defined up front (`run`); Nops are ignored.
            Opcode::KInt | Opcode::KFloat | Opcode::KBool | Opcode::KNil | Opcode::KPtr | Opcode::Nop => return Ok(()),
            Opcode::Loop | Opcode::Phi => return err("misplaced"),

            Opcode::SLoad => {
                let idx = self.slot_index(inst.imm);
                if ty == Type::Value {
                    self.load_value(self.base, idx)?
                } else {
                    let tag = ty.tag().ok_or("bad type")?;
                    let tp = self.word_ptr(self.base, idx)?;
                    let t = self.load(tp, Mem::Value, "tag")?.into_int_value();
                    let bad =
                        self.b.build_int_compare(IntPredicate::NE, t, self.i64.const_int(tag as u64, false), "").e()?;
                    self.guard(i, bad, true, inst.snap)?;
                    let wp = self.word_ptr(tp, self.i64.const_int(1, false))?;
                    let w = self.load(wp, Mem::Value, "pay")?.into_int_value();
                    self.unpack(ty, w)?
                }
            }
            Opcode::Unbox => {
                let V::B(t, w) = self.get(a)? else { return err(format!("{a:?} is not boxed")) };
                let tag = ty.tag().ok_or("cannot unbox to `val`")?;
                let bad =
                    self.b.build_int_compare(IntPredicate::NE, t, self.i64.const_int(tag as u64, false), "").e()?;
                self.guard(i, bad, true, inst.snap)?;
                self.unpack(ty, w)?
            }
            Opcode::Box => {
                let (t, w) = self.words(a)?;
                V::B(t, w)
            }

            Opcode::AddOv | Opcode::SubOv | Opcode::MulOv => {
                let (x, y) = (self.int(a)?, self.int(b)?);
                let name = match inst.op {
                    Opcode::AddOv => "llvm.sadd.with.overflow",
                    Opcode::SubOv => "llvm.ssub.with.overflow",
                    _ => "llvm.smul.with.overflow",
                };
                let f = self.intrinsic(name, self.i64.into())?;
                let call = self.b.build_call(f, &[x.into(), y.into()], "").e()?;
                let pair = call.try_as_basic_value().basic().ok_or("intrinsic returned void")?.into_struct_value();
                let r = self.b.build_extract_value(pair, 0, "").e()?.into_int_value();
                let ov = self.b.build_extract_value(pair, 1, "ov").e()?.into_int_value();
                self.guard(i, ov, true, inst.snap)?;
                V::I(r)
            }
            Opcode::Div | Opcode::Rem => {
                let (x, y) = (self.int(a)?, self.int(b)?);
                let rem = inst.op == Opcode::Rem;
                if self.const_int(b) == Some(0) {
                    return err("division by constant zero");
                }
                // Constant divisors become multiplications after the IR
                // passes (`expand_const_divs`).
                V::I(if rem {
                    bld.build_int_signed_rem(x, y, "").e()?
                } else {
                    bld.build_int_signed_div(x, y, "").e()?
                })
            }
            Opcode::Add => V::I(bld.build_int_add(self.int(a)?, self.int(b)?, "").e()?),
            Opcode::Sub => V::I(bld.build_int_sub(self.int(a)?, self.int(b)?, "").e()?),
            Opcode::Shl => V::I(bld.build_left_shift(self.int(a)?, self.int(b)?, "").e()?),
            Opcode::Shr => V::I(bld.build_right_shift(self.int(a)?, self.int(b)?, true, "").e()?),
            Opcode::BAnd | Opcode::BOr | Opcode::BXor => {
                let (x, y) = self.same_int_like(a, b, &[Type::Int, Type::Bool])?;
                V::I(match inst.op {
                    Opcode::BAnd => bld.build_and(x, y, "").e()?,
                    Opcode::BOr => bld.build_or(x, y, "").e()?,
                    _ => bld.build_xor(x, y, "").e()?,
                })
            }
            Opcode::BNot => {
                let x = self.int(a)?;
                V::I(bld.build_xor(x, self.i64.const_all_ones(), "").e()?)
            }

            Opcode::FAdd => V::F(bld.build_float_add(self.flt(a)?, self.flt(b)?, "").e()?),
            Opcode::FSub => V::F(bld.build_float_sub(self.flt(a)?, self.flt(b)?, "").e()?),
            Opcode::FMul => V::F(bld.build_float_mul(self.flt(a)?, self.flt(b)?, "").e()?),
            Opcode::FDiv => V::F(bld.build_float_div(self.flt(a)?, self.flt(b)?, "").e()?),
            Opcode::FRem => V::F(bld.build_float_rem(self.flt(a)?, self.flt(b)?, "").e()?),
            Opcode::FNeg => V::F(bld.build_float_neg(self.flt(a)?, "").e()?),
            Opcode::IToF => V::F(bld.build_signed_int_to_float(self.int(a)?, self.f64, "").e()?),
            Opcode::FSqrt | Opcode::FSin | Opcode::FCos | Opcode::FFloor | Opcode::FCeil | Opcode::FAbs => {
                let name = match inst.op {
                    Opcode::FSqrt => "llvm.sqrt",
                    Opcode::FSin => "llvm.sin",
                    Opcode::FCos => "llvm.cos",
                    Opcode::FFloor => "llvm.floor",
                    Opcode::FCeil => "llvm.ceil",
                    _ => "llvm.fabs",
                };
                let x = self.flt(a)?;
                V::F(self.call_f64(name, &[x])?)
            }
            Opcode::FPow => {
                let (x, y) = (self.flt(a)?, self.flt(b)?);
                V::F(self.call_f64("llvm.pow", &[x, y])?)
            }

            Opcode::ILt | Opcode::ILe | Opcode::ULt => {
                let p = match inst.op {
                    Opcode::ILt => IntPredicate::SLT,
                    Opcode::ULt => IntPredicate::ULT,
                    _ => IntPredicate::SLE,
                };
                V::I(bld.build_int_compare(p, self.int(a)?, self.int(b)?, "").e()?)
            }
            Opcode::IEq | Opcode::INe => {
                let (x, y) = self.same_int_like(a, b, &[Type::Int, Type::Bool, Type::Native, Type::Nil])?;
                let p = if inst.op == Opcode::IEq { IntPredicate::EQ } else { IntPredicate::NE };
                V::I(bld.build_int_compare(p, x, y, "").e()?)
            }
            Opcode::FLt | Opcode::FLe | Opcode::FEq | Opcode::FNe => {
                let p = match inst.op {
                    Opcode::FLt => FloatPredicate::OLT,
                    Opcode::FLe => FloatPredicate::OLE,
                    Opcode::FEq => FloatPredicate::OEQ,
                    _ => FloatPredicate::UNE,
                };
                V::I(bld.build_float_compare(p, self.flt(a)?, self.flt(b)?, "").e()?)
            }
            Opcode::PEq | Opcode::PNe => {
                let p = if inst.op == Opcode::PEq { IntPredicate::EQ } else { IntPredicate::NE };
                V::I(self.identity(p, a, b)?)
            }

            Opcode::GuardTrue | Opcode::GuardFalse => {
                let x = self.boolean(a)?;
                self.guard(i, x, inst.op == Opcode::GuardFalse, inst.snap)?;
                return Ok(());
            }

            Opcode::ALen => {
                let o = self.array(a)?;
                V::I(o.len.ok_or("array length not loaded")?)
            }
            Opcode::AKind => {
                let (p, _) = self.obj(a, Type::Array)?;
                let kp = self.field_ptr(p, ARRAY_KIND, self.i8p)?;
                let k = self.load(kp, Mem::Meta, "kind")?.into_int_value();
                V::I(self.b.build_int_z_extend(k, self.i64, "").e()?)
            }
            Opcode::ALoad => {
                let data = self.array(a)?.values.ok_or("array data not loaded")?;
                let i = self.int(b)?;
                match inst.ty {
                    Type::Value => self.load_value(data, self.elem_index(i)?)?,
                    Type::Int => V::I(self.load(self.word_ptr(data, i)?, Mem::Value, "elem")?.into_int_value()),
                    Type::Float => {
                        let w = self.load(self.word_ptr(data, i)?, Mem::Value, "elem")?;
                        V::F(self.b.build_bit_cast(w, self.f64, "").e()?.into_float_value())
                    }
                    Type::Bool => {
                        let byte = self.load(self.byte_ptr(data, i)?, Mem::Value, "elem")?.into_int_value();
                        V::I(self.b.build_int_truncate(byte, self.cx.bool_type(), "").e()?)
                    }
                    t => return err(format!("aload of type {t}")),
                }
            }
            Opcode::AStore => {
                let data = self.array(a)?.values.ok_or("array data not loaded")?;
                let i = self.int(b)?;
                match self.ty(c) {
                    Type::Value => self.store_value(data, self.elem_index(i)?, self.words(c)?)?,
                    Type::Int => self.store(self.word_ptr(data, i)?, self.int(c)?, Mem::Value)?,
                    Type::Float => {
                        let w = self.b.build_bit_cast(self.flt(c)?, self.i64, "").e()?.into_int_value();
                        self.store(self.word_ptr(data, i)?, w, Mem::Value)?
                    }
                    Type::Bool => {
                        let byte = self.b.build_int_z_extend(self.boolean(c)?, self.cx.i8_type(), "").e()?;
                        self.store(self.byte_ptr(data, i)?, byte, Mem::Value)?
                    }
                    t => return err(format!("astore of a {t}")),
                }
                return Ok(());
            }
            Opcode::SLen => {
                let (p, _) = self.obj(a, Type::Str)?;
                let lp = self.field_ptr(p, STR_LEN, self.i64p)?;
                V::I(self.load(lp, Mem::Meta, "slen")?.into_int_value())
            }
            Opcode::SByte => {
                let (p, _) = self.obj(a, Type::Str)?;
                let i = self.int(b)?;
                let dp = self.field_ptr(p, STR_DATA, self.i8p.ptr_type(AddressSpace::default()))?;
                let data = self.load(dp, Mem::Meta, "sdata")?.into_pointer_value();
                // SAFETY (of the emitted code): the recorder guards 0 <= i < len.
                let bp = unsafe { self.b.build_in_bounds_gep(data, &[i], "") }.e()?;
                let byte = self.load(bp, Mem::Meta, "byte")?.into_int_value();
                V::I(self.b.build_int_z_extend(byte, self.i64, "").e()?)
            }
            Opcode::Call | Opcode::CallG => match self.call(i)? {
                Some(v) => v,
                None => return Ok(()),
            },
            // Consumed by the calls that use it.
            Opcode::CArg => return Ok(()),
            Opcode::GuardDef => {
                let (_, o) = self.obj(a, Type::Struct)?;
                let def = o.def.ok_or("struct def not loaded")?;
                let want = self.i32.const_int(inst.imm as u32 as u64, false);
                let bad = self.b.build_int_compare(IntPredicate::NE, def, want, "").e()?;
                self.guard(i, bad, true, inst.snap)?;
                return Ok(());
            }
            Opcode::FLoad => {
                let (_, o) = self.obj(a, Type::Struct)?;
                let fields = o.values.ok_or("struct fields not loaded")?;
                if ty == Type::Float {
                    // A field known to hold a Float: only its payload.
                    let (_, wp) = self.value_words(fields, self.slot_index(inst.imm))?;
                    let w = self.load(wp, Mem::Value, "pay")?.into_int_value();
                    self.unpack(Type::Float, w)?
                } else {
                    self.load_value(fields, self.slot_index(inst.imm))?
                }
            }
            Opcode::FStore => {
                let (_, o) = self.obj(a, Type::Struct)?;
                let fields = o.values.ok_or("struct fields not loaded")?;
                let words = self.words(c)?;
                if self.ty(c) == Type::Float {
                    // Into a field known to hold a Float: its tag stays.
                    let (_, wp) = self.value_words(fields, self.slot_index(inst.imm))?;
                    self.store(wp, words.1, Mem::Value)?;
                } else {
                    self.store_value(fields, self.slot_index(inst.imm), words)?;
                }
                return Ok(());
            }
            Opcode::CLoad => {
                let (p, _) = self.obj(a, Type::Cell)?;
                self.load_value(self.cell_values(p)?, self.i64.const_zero())?
            }
            Opcode::CStore => {
                let (p, _) = self.obj(a, Type::Cell)?;
                let words = self.words(c)?;
                self.store_value(self.cell_values(p)?, self.i64.const_zero(), words)?;
                return Ok(());
            }
            Opcode::GLoad => {
                // `a` is the address of the globals' contiguous Values.
                let V::P(p) = self.get(a)? else { return err(format!("{a:?} is not a pointer constant")) };
                let p = self.b.build_pointer_cast(p, self.i64p, "globals").e()?;
                self.load_value(p, self.slot_index(inst.imm))?
            }
            Opcode::GStore => {
                let V::P(p) = self.get(a)? else { return err(format!("{a:?} is not a pointer constant")) };
                let p = self.b.build_pointer_cast(p, self.i64p, "globals").e()?;
                let words = self.words(c)?;
                self.store_value(p, self.slot_index(inst.imm), words)?;
                return Ok(());
            }
            Opcode::Upval => {
                // The closure's cell pointers never change: loads of them are `Meta`.
                let (f, _) = self.obj(a, Type::Func)?;
                let cells = self.field_ptr(
                    f,
                    FUNC_UPVALS,
                    self.i8p.ptr_type(AddressSpace::default()).ptr_type(AddressSpace::default()),
                )?;
                let cells = self.load(cells, Mem::Meta, "upvals")?.into_pointer_value();
                // SAFETY (of the emitted code): the recorder saw upvalue
                // `imm` of a closure of this prototype, and every closure of
                // a prototype has the same number of upvalues.
                let cell =
                    unsafe { self.b.build_in_bounds_gep(cells, &[self.i64.const_int(inst.imm as u64, false)], "") }
                        .e()?;
                V::P(self.load(cell, Mem::Meta, "cell")?.into_pointer_value())
            }
            Opcode::TCall | Opcode::TCallAt => self.native_call(i)?,
            Opcode::Ret => {
                let words = self.words(a)?;
                self.store_value(self.base, self.slot_index(RETURN_SLOT), words)?;
                self.b.build_return(Some(&self.i64.const_int(RETURNED, false))).e()?;
                // Whatever follows (the loop marker) is unreachable.
                let dead = self.cx.append_basic_block(self.f, "after.ret");
                self.b.position_at_end(dead);
                return Ok(());
            }
        };
        self.define(i, v)
    }

    /// A native call (`Opcode::TCall`, see `layout` for the protocol): checks
    /// for room (else exits through the call's snapshot, resuming at the call
    /// instruction), stores the callee's registers, enters the callee's
    /// body and yields the value it returned. When the callee left for the
    /// interpreter, writes this frame's part of the snapshot (the slots
    /// below the callee's frame), appends this level's exit code to the
    /// unwind buffer and returns the callee's code.
    fn native_call(&mut self, i: usize) -> Result<V<'c>, String> {
        let inst = self.trace.insts[i];
        let l = self.linkage.ok_or("native call without linkage")?;
        if l.calls.is_null() {
            return err("native call without the VM's call state");
        }
        let snap = self.trace.snaps.get(inst.snap.0 as usize).ok_or("native call without a snapshot")?.clone();
        let callee_slot = inst.imm;
        // Frames materialised for the callee if it leaves: this level's
        // inlined frames at the call, and the callee's own.
        let need = self.i64.const_int(snap.frames.len() as u64 + 1, false);
        let calls = self.abs_ptr(l.calls as u64)?;
        let cell = |this: &Self, w: u64| this.word_ptr(calls, this.i64.const_int(w, false));
        let (fl_p, ll_p, lim_p) =
            (cell(self, NC_FRAMES_LEFT)?, cell(self, NC_LEVELS_LEFT)?, cell(self, NC_STACK_LIMIT)?);
        let fl = self.b.build_load(fl_p, "frames_left").e()?.into_int_value();
        let ll = self.b.build_load(ll_p, "levels_left").e()?.into_int_value();
        let lim = self.b.build_load(lim_p, "stack_limit").e()?.into_int_value();
        let callee = self.word_ptr(self.base, self.slot_index(callee_slot))?;
        let addr = self.b.build_ptr_to_int(callee, self.i64, "callee.addr").e()?;
        let no_frames = self.b.build_int_compare(IntPredicate::SLT, fl, need, "").e()?;
        let no_levels = self.b.build_int_compare(IntPredicate::SLE, ll, self.i64.const_zero(), "").e()?;
        let no_stack = self.b.build_int_compare(IntPredicate::UGT, addr, lim, "").e()?;
        let bad = self.b.build_or(no_frames, no_levels, "").e()?;
        let mut bad = self.b.build_or(bad, no_stack, "no_room").e()?;
        // `TCallAt`: the callee's entry trace, if it has one now.
        let mut target = None;
        if inst.op == Opcode::TCallAt {
            let V::P(cell) = self.get(inst.a)? else { return err("the entry cell is not a pointer constant") };
            let cell = self.b.build_pointer_cast(cell, self.i64p, "entry.cell").e()?;
            let body = self.load(cell, Mem::Jit, "entry.body")?.into_int_value();
            let none = self.b.build_int_compare(IntPredicate::EQ, body, self.i64.const_zero(), "no_entry").e()?;
            bad = self.b.build_or(bad, none, "").e()?;
            target = Some(body);
        }
        self.guard(i, bad, true, inst.snap)?;
        if target.is_some() {
            self.bump(cell(self, NC_CALLS_MADE)?)?;
        }

        // The callee's closure (in its callee slot, where the callee's own
        // upvalue accesses load it from), arguments and nil registers (a Nil
        // has no payload: its tag word is all there is to write).
        for e in snap.entries.iter().filter(|e| e.slot as i64 >= callee_slot + RETURN_SLOT) {
            let words = self.words(e.value).map_err(|m| format!("call argument slot {}: {m}", e.slot))?;
            if self.ty(e.value) == Type::Nil {
                let tp = self.word_ptr(self.base, self.slot_index(e.slot as i64))?;
                self.store(tp, words.0, Mem::Value)?;
            } else {
                self.store_value(self.base, self.slot_index(e.slot as i64), words)?;
            }
        }
        let fl1 = self.b.build_int_sub(fl, need, "").e()?;
        let ll1 = self.b.build_int_sub(ll, self.i64.const_int(1, false), "").e()?;
        self.b.build_store(fl_p, fl1).e()?;
        self.b.build_store(ll_p, ll1).e()?;
        let fn_ty = self.i64.fn_type(&[self.i64p.into()], false);
        // Its own entry trace: this function, or (from a side trace) its root's.
        let target = match target {
            None if l.call_target == 0 => None,
            None => Some(self.i64.const_int(l.call_target as u64, false)),
            t => t,
        };
        let call = match target {
            None => self.b.build_call(self.f, &[callee.into()], "callee.code").e()?,
            Some(addr) => {
                let fp = self.b.build_int_to_ptr(addr, fn_ty.ptr_type(AddressSpace::default()), "").e()?;
                let target = inkwell::values::CallableValue::try_from(fp).map_err(|_| "call target is not callable")?;
                self.b.build_call(target, &[callee.into()], "callee.code").e()?
            }
        };
        call.set_call_convention(TAILCC);
        let code = call.try_as_basic_value().basic().ok_or("trace body returns nothing")?.into_int_value();
        self.b.build_store(fl_p, fl).e()?;
        self.b.build_store(ll_p, ll).e()?;
        let returned =
            self.b.build_int_compare(IntPredicate::EQ, code, self.i64.const_int(RETURNED, false), "returned").e()?;
        let here = self.b.get_insert_block().ok_or("no block")?;
        let (cont, unwind) =
            (self.cx.insert_basic_block_after(here, "returned"), self.cx.append_basic_block(self.f, "unwind"));
        let br = self.b.build_conditional_branch(returned, cont, unwind).e()?;
        br.set_metadata(self.exit_if_false, self.prof_kind).map_err(|e| e.to_string())?;

        self.b.position_at_end(unwind);
        // The callee's exit wrote its frame (from `callee_slot` up): write
        // only this frame's slots below it.
        for e in snap.entries.iter().filter(|e| (e.slot as i64) < callee_slot) {
            let words = self.words(e.value).map_err(|m| format!("call snapshot slot {}: {m}", e.slot))?;
            self.store_value(self.base, self.slot_index(e.slot as i64), words)?;
        }
        let len_p = cell(self, NC_UNWIND_LEN)?;
        let n = self.b.build_load(len_p, "unwind.len").e()?.into_int_value();
        let buf = cell(self, NC_UNWIND)?;
        // SAFETY (of the generated code): `levels_left` bounds the levels, so
        // fewer than `MAX_NATIVE_LEVELS` callers ever append.
        let entry = unsafe { self.b.build_gep(buf, &[n], "unwind.entry") }.e()?;
        let me = ((l.serial as u64) << 32) | inst.snap.0 as u64;
        self.b.build_store(entry, self.i64.const_int(me, false)).e()?;
        let n1 = self.b.build_int_add(n, self.i64.const_int(1, false), "").e()?;
        self.b.build_store(len_p, n1).e()?;
        self.b.build_return(Some(&code)).e()?;

        self.b.position_at_end(cont);
        self.load_value(self.base, self.slot_index(callee_slot + RETURN_SLOT))
    }

    /// The data and length of array `r`: loaded once where `r` is defined,
    /// or here when helper calls may have resized it (`calls`).
    fn array(&self, r: Ref) -> Result<ObjFields<'c>, String> {
        let (obj, o) = self.obj(r, Type::Array)?;
        if !self.calls {
            return Ok(o);
        }
        let data = self.field_ptr(obj, ARRAY_DATA, self.i64p.ptr_type(AddressSpace::default()))?;
        let data = self.load(data, Mem::Meta, "data")?.into_pointer_value();
        let len = self.field_ptr(obj, ARRAY_LEN, self.i64p)?;
        let len = self.load(len, Mem::Meta, "len")?.into_int_value();
        Ok(ObjFields { values: Some(data), len: Some(len), def: None })
    }

    /// The values an `Args` operand passes, in order: one `val`, or the
    /// values of a `carg` chain.
    fn args(&self, r: Ref) -> Result<Vec<Ref>, String> {
        let mut out = Vec::new();
        let mut at = r;
        loop {
            let inst = self.trace.insts.get(at.index()).ok_or("argument out of range")?;
            if inst.op != Opcode::CArg {
                out.push(at);
                break;
            }
            out.push(inst.b);
            at = inst.a;
        }
        out.reverse();
        Ok(out)
    }

    /// Calls the runtime helper of `call`/`callg` `i` (see `super::layout`
    /// for the conventions); a `callg` exits when the helper reports
    /// failure. Returns the result, if the helper has one.
    fn call(&mut self, i: usize) -> Result<Option<V<'c>>, String> {
        let inst = self.trace.insts[i];
        let h = inst.helper().ok_or_else(|| format!("unknown helper {}", inst.imm))?;
        let mut args: Vec<BasicMetadataValueEnum<'c>> = Vec::new();
        for (&f, p) in inst.operand_fields().iter().zip(h.params()) {
            let r = inst.field(f);
            match *p {
                Param::T(Type::Value) => {
                    let (t, w) = self.words(r)?;
                    args.push(t.into());
                    args.push(w.into());
                }
                Param::T(Type::Int) => args.push(self.int(r)?.into()),
                Param::T(t) if t.is_ref() => args.push(self.obj(r, t)?.0.into()),
                Param::T(t) => return err(format!("helper parameter of type `{t}`")),
                Param::Args => {
                    let vals = self.args(r)?;
                    let buf = self.scratch.ok_or("no argument buffer")?;
                    for (k, &v) in vals.iter().enumerate() {
                        let words = self.words(v)?;
                        self.store_value(buf, self.slot_index(k as i64), words)?;
                    }
                    args.push(buf.into());
                    args.push(self.i64.const_int(vals.len() as u64, false).into());
                }
            }
        }
        let params: Vec<BasicMetadataTypeEnum<'c>> = args
            .iter()
            .map(|a| match a {
                BasicMetadataValueEnum::IntValue(x) => Ok(x.get_type().into()),
                BasicMetadataValueEnum::PointerValue(p) => Ok(p.get_type().into()),
                _ => err("unexpected helper argument"),
            })
            .collect::<Result<_, String>>()?;
        let pair = self.cx.struct_type(&[self.i64.into(), self.i64.into()], false);
        let fn_ty = match h.result() {
            Type::Void => self.cx.void_type().fn_type(&params, false),
            Type::Bool | Type::Int => self.i64.fn_type(&params, false),
            Type::Value => pair.fn_type(&params, false),
            t if t.is_ref() => self.i8p.fn_type(&params, false),
            t => return err(format!("helper result of type `{t}`")),
        };
        let addr = self.i64.const_int(super::helpers::address(h) as u64, false);
        let fp = self.b.build_int_to_ptr(addr, fn_ty.ptr_type(AddressSpace::default()), h.name()).e()?;
        let callee = inkwell::values::CallableValue::try_from(fp).map_err(|_| "helper is not callable")?;
        let call = self.b.build_call(callee, &args, h.name()).e()?;
        let Some(r) = call.try_as_basic_value().basic() else { return Ok(None) };
        let failed = inst.op == Opcode::CallG;
        Ok(Some(match h.result() {
            Type::Bool => {
                let x = r.into_int_value();
                V::I(self.b.build_int_compare(IntPredicate::NE, x, self.i64.const_zero(), "").e()?)
            }
            Type::Int => V::I(r.into_int_value()),
            Type::Value => {
                let sv = r.into_struct_value();
                let t = self.b.build_extract_value(sv, 0, "tag").e()?.into_int_value();
                let w = self.b.build_extract_value(sv, 1, "pay").e()?.into_int_value();
                if failed {
                    let bad = self
                        .b
                        .build_int_compare(IntPredicate::EQ, t, self.i64.const_int(HELPER_FAILED, false), "failed")
                        .e()?;
                    self.guard(i, bad, true, inst.snap)?;
                }
                V::B(t, w)
            }
            _ => {
                let p = r.into_pointer_value();
                if failed {
                    let bad = self.b.build_is_null(p, "failed").e()?;
                    self.guard(i, bad, true, inst.snap)?;
                }
                V::P(p)
            }
        }))
    }

    /// The value of `r` if it is an int constant.
    fn const_int(&self, r: Ref) -> Option<i64> {
        let inst = self.trace.insts.get(r.index())?;
        (inst.op == Opcode::KInt).then_some(inst.imm)
    }

    /// Two operands of one type from `allowed` (all represented as integers).
    fn same_int_like(&self, a: Ref, b: Ref, allowed: &[Type]) -> Result<(IntValue<'c>, IntValue<'c>), String> {
        let (ta, tb) = (self.ty(a), self.ty(b));
        match (self.get(a)?, self.get(b)?) {
            (V::I(x), V::I(y)) if ta == tb && allowed.contains(&ta) => Ok((x, y)),
            _ => err(format!("operands {a:?}: `{ta}` and {b:?}: `{tb}` do not fit")),
        }
    }

    /// `PEq`/`PNe`: identity of two references, or equality of two Bools
    /// (or of two Natives, Ints or Nils).
    fn identity(&self, p: IntPredicate, a: Ref, b: Ref) -> Result<IntValue<'c>, String> {
        let (ta, tb) = (self.ty(a), self.ty(b));
        let (x, y) = match (self.get(a)?, self.get(b)?) {
            (V::I(x), V::I(y)) if ta == tb => (x, y),
            (V::P(x), V::P(y)) if ta.is_ref() && tb.is_ref() => {
                (self.b.build_ptr_to_int(x, self.i64, "").e()?, self.b.build_ptr_to_int(y, self.i64, "").e()?)
            }
            _ => return err(format!("cannot compare {a:?}: `{ta}` and {b:?}: `{tb}` by identity")),
        };
        self.b.build_int_compare(p, x, y, "").e()
    }

    fn intrinsic(&self, name: &str, ty: BasicTypeEnum<'c>) -> Result<FunctionValue<'c>, String> {
        Intrinsic::find(name)
            .and_then(|k| k.get_declaration(self.module, &[ty]))
            .ok_or_else(|| format!("internal error: no intrinsic {name}"))
    }

    fn call_f64(&self, name: &str, args: &[FloatValue<'c>]) -> Result<FloatValue<'c>, String> {
        let f = self.intrinsic(name, self.f64.into())?;
        let args: Vec<_> = args.iter().map(|x| (*x).into()).collect();
        let call = self.b.build_call(f, &args, "").e()?;
        Ok(call.try_as_basic_value().basic().ok_or("intrinsic returned void")?.into_float_value())
    }
}

/// Replaces `sdiv`/`srem` by a constant with multiplications and shifts.
/// FastISel (see `CODEGEN_FLAGS`) would emit a divide instruction; doing
/// this after the IR passes keeps instcombine from chewing on the 128-bit
/// products. The recorder guarantees `x / -1` does not overflow.
fn expand_const_divs(cx: &Context, func: FunctionValue<'_>) -> Result<(), String> {
    let b = cx.create_builder();
    let i64 = cx.i64_type();
    for bb in func.get_basic_blocks() {
        let mut next = bb.get_first_instruction();
        while let Some(ins) = next {
            next = ins.get_next_instruction();
            let rem = match ins.get_opcode() {
                InstructionOpcode::SDiv => false,
                InstructionOpcode::SRem => true,
                _ => continue,
            };
            let (Some(Operand::Value(BasicValueEnum::IntValue(x))), Some(Operand::Value(BasicValueEnum::IntValue(d)))) =
                (ins.get_operand(0), ins.get_operand(1))
            else {
                continue;
            };
            let Some(d) = d.get_sign_extended_constant().filter(|&d| d != 0 && x.get_type() == i64) else { continue };
            b.position_before(&ins);
            let new = div_by_const(cx, &b, x, d, rem)?;
            IntValue::try_from(ins).map_err(|_| "sdiv is not an int")?.replace_all_uses_with(new);
            ins.erase_from_basic_block();
        }
    }
    Ok(())
}

/// Gives every edge from an overflow guard into a block that starts with
/// phis an empty block of its own. FastISel branches on an overflow
/// intrinsic's flag directly (`jo`) only when neither successor of the
/// branch has phis, whose copies could clobber the flags; otherwise it
/// keeps the flag in a register (`seto`) and tests it again. SimplifyCFG
/// leaves guards branching straight into the shared exit tails, which begin
/// with the exit-id phi. The new block is on the exit side: one more jump
/// on the way out, none on the trace's path. It holds an `llvm.donothing`
/// (which emits no code) because CodeGenPrepare folds blocks holding only a
/// branch back into their successor's phis.
fn split_flag_edges<'c>(cx: &'c Context, module: &Module<'c>, func: FunctionValue<'c>) -> Result<(), String> {
    let b = cx.create_builder();
    let nothing = Intrinsic::find("llvm.donothing")
        .and_then(|i| i.get_declaration(module, &[]))
        .ok_or("LLVM: no llvm.donothing")?;
    for bb in func.get_basic_blocks() {
        let Some(br) = bb.get_terminator().filter(|t| branches_on_overflow(*t)) else { continue };
        // A conditional `br`'s operands are [cond, false dest, true dest];
        // `LLVMSetSuccessor` counts the true dest as 0.
        let succ = |k: u32| match br.get_operand(2 - k) {
            Some(Operand::Block(s)) => Some(s),
            _ => None,
        };
        let (Some(t), Some(f)) = (succ(0), succ(1)) else { continue };
        if t == f {
            continue;
        }
        for (k, to) in [(0, t), (1, f)] {
            if to.get_first_instruction().is_none_or(|i| i.get_opcode() != InstructionOpcode::Phi) {
                continue;
            }
            let edge = cx.append_basic_block(func, "flag.edge");
            b.position_at_end(edge);
            b.build_call(nothing, &[], "").e()?;
            b.build_unconditional_branch(to).e()?;
            // SAFETY: `br` is a conditional branch (two successors, `k` < 2)
            // and `edge` is a block of the same function.
            unsafe { inkwell::llvm_sys::core::LLVMSetSuccessor(br.as_value_ref(), k, edge.as_mut_ptr()) };
            retarget_phis(&b, to, bb, edge)?;
        }
    }
    Ok(())
}

/// Whether `br` is a conditional branch on the overflow flag of a
/// `*.with.overflow` intrinsic in its own block, with nothing but
/// `extractvalue`s between them: the shape FastISel can fold into `jo`.
fn branches_on_overflow(br: InstructionValue<'_>) -> bool {
    if br.get_opcode() != InstructionOpcode::Br || br.get_num_operands() != 3 {
        return false;
    }
    let Some(Operand::Value(BasicValueEnum::IntValue(cond))) = br.get_operand(0) else { return false };
    let Some(ev) = cond.as_instruction().filter(|i| i.get_opcode() == InstructionOpcode::ExtractValue) else {
        return false;
    };
    let Some(Operand::Value(agg)) = ev.get_operand(0) else { return false };
    let Some(call) = agg.as_instruction_value().filter(|i| i.get_opcode() == InstructionOpcode::Call) else {
        return false;
    };
    // The callee is a call's last operand.
    let Some(Operand::Value(BasicValueEnum::PointerValue(f))) = call.get_operand(call.get_num_operands() - 1) else {
        return false;
    };
    let is_overflow = f.get_name().to_str().is_ok_and(|n| n.starts_with("llvm.") && n.contains(".with.overflow."));
    is_overflow && call.get_parent() == br.get_parent()
}

/// Rebuilds the phis at the start of `block` with their incoming edge from
/// `old` coming from `new` instead (the C API cannot change a phi's
/// incoming block in place).
fn retarget_phis<'c>(
    b: &Builder<'c>,
    block: BasicBlock<'c>,
    old: BasicBlock<'c>,
    new: BasicBlock<'c>,
) -> Result<(), String> {
    let mut next = block.get_first_instruction();
    while let Some(ins) = next.filter(|i| i.get_opcode() == InstructionOpcode::Phi) {
        next = ins.get_next_instruction();
        let phi = PhiValue::try_from(ins).map_err(|_| "phi is not a phi")?;
        b.position_before(&ins);
        let name = phi.get_name().to_str().unwrap_or("").to_string();
        let rebuilt = b.build_phi(phi.as_basic_value().get_type(), &name).e()?;
        for (v, from) in phi.get_incomings() {
            rebuilt.add_incoming(&[(&v, if from == old { new } else { from })]);
        }
        ins.replace_all_uses_with(&rebuilt.as_instruction());
        ins.erase_from_basic_block();
    }
    Ok(())
}

/// `x / d` or `x % d` (truncating) for a constant `d != 0`, emitted at `b`.
/// See `DivMagic`.
fn div_by_const<'c>(
    cx: &'c Context,
    b: &Builder<'c>,
    x: IntValue<'c>,
    d: i64,
    rem: bool,
) -> Result<IntValue<'c>, String> {
    let i64 = cx.i64_type();
    let k = |v: i64| i64.const_int(v as u64, true);
    let q = match DivMagic::new(d) {
        DivMagic::One => x,
        DivMagic::MinusOne => b.build_int_neg(x, "").e()?,
        DivMagic::Pow2 { shift, neg } => {
            // Round toward zero: add 2^shift - 1 to negative dividends.
            let sign = b.build_right_shift(x, k(63), true, "").e()?;
            let bias = b.build_right_shift(sign, k(64 - shift as i64), false, "").e()?;
            let biased = b.build_int_add(x, bias, "").e()?;
            let q = b.build_right_shift(biased, k(shift as i64), true, "").e()?;
            if neg {
                b.build_int_neg(q, "").e()?
            } else {
                q
            }
        }
        DivMagic::Mul { magic, shift } => {
            let i128 = cx.i128_type();
            let wide = b.build_int_s_extend(x, i128, "").e()?;
            let prod = b.build_int_mul(wide, i128.const_int(magic as u64, true), "").e()?;
            let hi = b.build_right_shift(prod, i128.const_int(64, false), true, "").e()?;
            let mut q = b.build_int_truncate(hi, i64, "").e()?;
            if d > 0 && magic < 0 {
                q = b.build_int_add(q, x, "").e()?;
            } else if d < 0 && magic > 0 {
                q = b.build_int_sub(q, x, "").e()?;
            }
            let q = if shift == 0 { q } else { b.build_right_shift(q, k(shift as i64), true, "").e()? };
            let neg = b.build_right_shift(q, k(63), false, "").e()?;
            b.build_int_add(q, neg, "").e()?
        }
    };
    if rem {
        let qd = b.build_int_mul(q, k(d), "").e()?;
        b.build_int_sub(x, qd, "").e()
    } else {
        Ok(q)
    }
}

/// How to divide by a constant (Hacker's Delight, ch. 10): the quotient of
/// `n / d` truncated toward zero is, for `Mul`, `mulhs(n, magic)`, corrected
/// by `+ n` (`d > 0`, `magic < 0`) or `- n` (`d < 0`, `magic > 0`), shifted
/// right arithmetically by `shift`, plus one if negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DivMagic {
    One,
    MinusOne,
    /// `|d| == 1 << shift`; `neg` when `d < 0`.
    Pow2 {
        shift: u32,
        neg: bool,
    },
    Mul {
        magic: i64,
        shift: u32,
    },
}

impl DivMagic {
    /// `d` must not be 0.
    fn new(d: i64) -> DivMagic {
        match d {
            1 => return DivMagic::One,
            -1 => return DivMagic::MinusOne,
            _ => {}
        }
        let ad = d.unsigned_abs();
        if ad.is_power_of_two() {
            return DivMagic::Pow2 { shift: ad.trailing_zeros(), neg: d < 0 };
        }
        const TWO63: u64 = 1 << 63;
        let t = TWO63 + ((d as u64) >> 63);
        let anc = t - 1 - t % ad;
        let mut p = 63u32;
        let (mut q1, mut r1) = (TWO63 / anc, TWO63 % anc);
        let (mut q2, mut r2) = (TWO63 / ad, TWO63 % ad);
        loop {
            p += 1;
            q1 = q1.wrapping_mul(2);
            r1 = r1.wrapping_mul(2);
            if r1 >= anc {
                q1 = q1.wrapping_add(1);
                r1 = r1.wrapping_sub(anc);
            }
            q2 = q2.wrapping_mul(2);
            r2 = r2.wrapping_mul(2);
            if r2 >= ad {
                q2 = q2.wrapping_add(1);
                r2 = r2.wrapping_sub(ad);
            }
            let delta = ad - r2;
            if !(q1 < delta || (q1 == delta && r1 == 0)) {
                break;
            }
        }
        let magic = q2.wrapping_add(1) as i64;
        DivMagic::Mul { magic: if d < 0 { magic.wrapping_neg() } else { magic }, shift: p - 64 }
    }

    /// What the emitted code computes (for tests).
    #[cfg(test)]
    fn quotient(self, n: i64, d: i64) -> i64 {
        match self {
            DivMagic::One => n,
            DivMagic::MinusOne => n.wrapping_neg(),
            DivMagic::Pow2 { shift, neg } => {
                let bias = ((n >> 63) as u64 >> (64 - shift)) as i64;
                let q = n.wrapping_add(bias) >> shift;
                if neg {
                    q.wrapping_neg()
                } else {
                    q
                }
            }
            DivMagic::Mul { magic, shift } => {
                let mut q = ((n as i128 * magic as i128) >> 64) as i64;
                if d > 0 && magic < 0 {
                    q = q.wrapping_add(n);
                } else if d < 0 && magic > 0 {
                    q = q.wrapping_sub(n);
                }
                let q = q >> shift;
                q + ((q as u64) >> 63) as i64
            }
        }
    }
}

/// The single LLVM value of a non-boxed IR value.
fn one(v: V<'_>) -> Result<BasicValueEnum<'_>, String> {
    Ok(match v {
        V::I(x) => x.as_basic_value_enum(),
        V::F(x) => x.as_basic_value_enum(),
        V::P(x) => x.as_basic_value_enum(),
        V::B(..) => return err("boxed value where a single value was expected"),
    })
}

fn single(v: BasicValueEnum<'_>) -> V<'_> {
    match v {
        BasicValueEnum::FloatValue(x) => V::F(x),
        BasicValueEnum::PointerValue(x) => V::P(x),
        other => V::I(other.into_int_value()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use vela_ir::{Inst, SnapEntry, Snapshot};

    use super::*;
    use crate::runtime::object::{ElemKind, FuncObj, StructObj};
    use crate::runtime::value::tag;
    use crate::runtime::Heap;

    // ---- trace building ----

    fn snap(t: &mut Trace, entries: &[(i32, Ref)]) -> SnapId {
        let entries = entries.iter().map(|&(slot, value)| SnapEntry { slot, value }).collect();
        let at = t.len() as u32;
        t.add_snapshot(Snapshot { pc: 0, entries, frames: Default::default(), at, gc: false })
    }

    fn sload(t: &mut Trace, slot: i64, ty: Type, s: SnapId) -> Ref {
        let mut i = Inst::new(Opcode::SLoad, ty);
        i.imm = slot;
        if ty != Type::Value {
            i.snap = s;
        }
        t.push(i)
    }

    fn with_imm(t: &mut Trace, op: Opcode, ty: Type, a: Ref, c: Ref, imm: i64, s: SnapId) -> Ref {
        let mut i = Inst::new(op, ty);
        i.a = a;
        i.c = c;
        i.imm = imm;
        if op.is_guard(ty) {
            i.snap = s;
        }
        t.push(i)
    }

    fn store(t: &mut Trace, op: Opcode, a: Ref, b: Ref, c: Ref, imm: i64) {
        let mut i = Inst::new(op, Type::Void);
        i.a = a;
        i.b = b;
        i.c = c;
        i.imm = imm;
        t.push(i);
    }

    fn op1(t: &mut Trace, op: Opcode, ty: Type, a: Ref) -> Ref {
        t.emit(op, ty, a, Ref::NONE)
    }

    fn loop_(t: &mut Trace) {
        t.emit(Opcode::Loop, Type::Void, Ref::NONE, Ref::NONE);
    }

    /// A Phi whose `b` is set later with `close`.
    fn phi(t: &mut Trace, ty: Type, a: Ref) -> Ref {
        t.emit(Opcode::Phi, ty, a, Ref::NONE)
    }

    fn close(t: &mut Trace, phi: Ref, b: Ref) {
        t.inst_mut(phi).b = b;
    }

    fn guard(t: &mut Trace, op: Opcode, a: Ref, s: SnapId) {
        t.guard(op, Type::Void, a, Ref::NONE, s);
    }

    // ---- running ----

    fn stack(vals: &[Value], size: usize) -> Vec<Value> {
        let mut v = vals.to_vec();
        v.resize(size, Value::Nil);
        v
    }

    fn compiled(t: &Trace) -> CompiledTrace {
        compile(t, "test_trace").unwrap_or_else(|e| panic!("compile failed: {e}"))
    }

    fn enter(c: &CompiledTrace, stack: &mut [Value]) -> u32 {
        // SAFETY: the tests size `stack` for every slot their traces read or
        // write, and keep every object the trace refers to alive.
        unsafe { c.entry.call(stack.as_mut_ptr()) as u32 }
    }

    fn run(t: &Trace, stack: &mut [Value]) -> u32 {
        enter(&compiled(t), stack)
    }

    fn int(v: Value) -> i64 {
        match v {
            Value::Int(i) => i,
            other => panic!("expected an int, got {other:?}"),
        }
    }

    fn flt(v: Value) -> f64 {
        match v {
            Value::Float(f) => f,
            other => panic!("expected a float, got {other:?}"),
        }
    }

    /// The raw (tag, payload) words of a stack slot.
    fn words(v: &Value) -> (u64, u64) {
        let p = v as *const Value as *const u64;
        // SAFETY: a Value is two initialised words once written by a trace or
        // a test (tests only inspect slots a trace wrote or that hold Ints).
        unsafe { (*p, *p.add(1)) }
    }

    fn put_words(v: &mut Value, tag: u64, payload: u64) {
        let p = v as *mut Value as *mut u64;
        // SAFETY: writes a valid Value (the tests only use tags whose payload
        // word is valid for any bits in the bytes the runtime ignores).
        unsafe {
            *p = tag;
            *p.add(1) = payload;
        }
    }

    /// `i = slot 0; n = slot 1; while i < n { i += 1 }`, exit writes slot 0.
    fn counting_loop() -> (Trace, SnapId, SnapId) {
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let i0 = sload(&mut t, 0, Type::Int, s0);
        let n = sload(&mut t, 1, Type::Int, s0);
        let one = t.kint(1);
        loop_(&mut t);
        let i = phi(&mut t, Type::Int, i0);
        let s1 = snap(&mut t, &[(0, i)]);
        let c = t.emit(Opcode::ILt, Type::Bool, i, n);
        guard(&mut t, Opcode::GuardTrue, c, s1);
        let i1 = t.guard(Opcode::AddOv, Type::Int, i, one, s1);
        close(&mut t, i, i1);
        (t, s0, s1)
    }

    #[test]
    fn counting_loop_exits_with_the_slot_written() {
        let (t, s0, s1) = counting_loop();
        let c = compiled(&t);
        let mut st = stack(&[Value::Int(0), Value::Int(10)], 4);
        assert_eq!(enter(&c, &mut st), s1.0);
        assert_eq!(int(st[0]), 10);
        assert_eq!(int(st[1]), 10);
        assert!(matches!(st[2], Value::Nil));

        // Already done on entry: leaves at once through the loop guard.
        let mut st = stack(&[Value::Int(7), Value::Int(3)], 4);
        assert_eq!(enter(&c, &mut st), s1.0);
        assert_eq!(int(st[0]), 7);

        // A type guard on entry fails: nothing is written.
        let mut st = stack(&[Value::Int(0), Value::Float(3.0)], 4);
        assert_eq!(enter(&c, &mut st), s0.0);
        assert_eq!(int(st[0]), 0);
        assert_eq!(flt(st[1]), 3.0);
    }

    #[test]
    fn phis_may_also_follow_the_body() {
        // The same loop with the Phi placed after the body it closes.
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let i0 = sload(&mut t, 0, Type::Int, s0);
        let n = sload(&mut t, 1, Type::Int, s0);
        let one = t.kint(1);
        loop_(&mut t);
        let phi_ref = Ref(t.len() as u32 + 3);
        let s1 = snap(&mut t, &[(0, phi_ref)]);
        let c = t.emit(Opcode::ILt, Type::Bool, phi_ref, n);
        guard(&mut t, Opcode::GuardTrue, c, s1);
        let i1 = t.guard(Opcode::AddOv, Type::Int, phi_ref, one, s1);
        let p = t.emit(Opcode::Phi, Type::Int, i0, i1);
        assert_eq!(p, phi_ref);
        let mut st = stack(&[Value::Int(-3), Value::Int(4)], 2);
        assert_eq!(run(&t, &mut st), s1.0);
        assert_eq!(int(st[0]), 4);
    }

    #[test]
    fn float_accumulation() {
        // i, n, x = slots 0..3; while i < n { x += float(i) * 0.5; i += 1 }
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let i0 = sload(&mut t, 0, Type::Int, s0);
        let n = sload(&mut t, 1, Type::Int, s0);
        let x0 = sload(&mut t, 2, Type::Float, s0);
        let one = t.kint(1);
        let half = t.kfloat(0.5);
        loop_(&mut t);
        let i = phi(&mut t, Type::Int, i0);
        let x = phi(&mut t, Type::Float, x0);
        let s1 = snap(&mut t, &[(0, i), (2, x)]);
        let c = t.emit(Opcode::ILt, Type::Bool, i, n);
        guard(&mut t, Opcode::GuardTrue, c, s1);
        let fi = op1(&mut t, Opcode::IToF, Type::Float, i);
        let d = t.emit(Opcode::FMul, Type::Float, fi, half);
        let x1 = t.emit(Opcode::FAdd, Type::Float, x, d);
        let i1 = t.guard(Opcode::AddOv, Type::Int, i, one, s1);
        close(&mut t, i, i1);
        close(&mut t, x, x1);
        let mut st = stack(&[Value::Int(0), Value::Int(10), Value::Float(1.0)], 3);
        assert_eq!(run(&t, &mut st), s1.0);
        assert_eq!(int(st[0]), 10);
        assert_eq!(flt(st[2]), 1.0 + 22.5);
    }

    #[test]
    fn float_ops_and_intrinsics() {
        // Computes everything before the loop; the loop exits at once and its
        // snapshot writes the results to slots 1...
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let x = sload(&mut t, 0, Type::Float, s0);
        let y = t.kfloat(-2.25);
        let three = t.kfloat(3.0);
        let ops: Vec<Ref> = vec![
            op1(&mut t, Opcode::FSqrt, Type::Float, x),
            op1(&mut t, Opcode::FSin, Type::Float, x),
            op1(&mut t, Opcode::FCos, Type::Float, x),
            op1(&mut t, Opcode::FFloor, Type::Float, y),
            op1(&mut t, Opcode::FCeil, Type::Float, y),
            op1(&mut t, Opcode::FAbs, Type::Float, y),
            op1(&mut t, Opcode::FNeg, Type::Float, x),
            t.emit(Opcode::FPow, Type::Float, x, three),
            t.emit(Opcode::FRem, Type::Float, x, three),
            t.emit(Opcode::FDiv, Type::Float, x, y),
            t.emit(Opcode::FSub, Type::Float, x, y),
        ];
        let cmps: Vec<Ref> = vec![
            t.emit(Opcode::FLt, Type::Bool, y, x),
            t.emit(Opcode::FLe, Type::Bool, x, x),
            t.emit(Opcode::FEq, Type::Bool, x, y),
            t.emit(Opcode::FNe, Type::Bool, x, y),
        ];
        let never = t.kbool(false);
        loop_(&mut t);
        let mut entries: Vec<(i32, Ref)> =
            ops.iter().chain(&cmps).enumerate().map(|(k, &r)| (k as i32 + 1, r)).collect();
        entries.push((20, t.knil()));
        let s1 = snap(&mut t, &entries);
        guard(&mut t, Opcode::GuardTrue, never, s1);
        let mut st = stack(&[Value::Float(7.5)], 21);
        assert_eq!(run(&t, &mut st), s1.0);
        let x = 7.5f64;
        let want = [x.sqrt(), x.sin(), x.cos(), -3.0, -2.0, 2.25, -x, x.powf(3.0), x % 3.0, x / -2.25, x + 2.25];
        for (k, w) in want.iter().enumerate() {
            assert_eq!(flt(st[k + 1]), *w, "slot {}", k + 1);
        }
        let bools: Vec<bool> = (12..16).map(|k| matches!(st[k], Value::Bool(true))).collect();
        assert_eq!(bools, [true, true, false, true]);
        // Bools are written as whole words.
        assert_eq!(words(&st[12]), (tag::BOOL as u64, 1));
        assert_eq!(words(&st[14]), (tag::BOOL as u64, 0));
        assert_eq!(words(&st[20]), (tag::NIL as u64, 0));
    }

    #[test]
    fn int_ops() {
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let a = sload(&mut t, 0, Type::Int, s0);
        let b = sload(&mut t, 1, Type::Int, s0);
        let k3 = t.kint(3);
        let ops: Vec<Ref> = vec![
            t.emit(Opcode::Div, Type::Int, a, b),
            t.emit(Opcode::Rem, Type::Int, a, b),
            t.emit(Opcode::Add, Type::Int, a, b),
            t.emit(Opcode::Sub, Type::Int, a, b),
            t.emit(Opcode::BAnd, Type::Int, a, b),
            t.emit(Opcode::BOr, Type::Int, a, b),
            t.emit(Opcode::BXor, Type::Int, a, b),
            t.emit(Opcode::Shl, Type::Int, a, k3),
            t.emit(Opcode::Shr, Type::Int, a, k3),
            op1(&mut t, Opcode::BNot, Type::Int, a),
            t.guard(Opcode::MulOv, Type::Int, a, b, s0),
            t.guard(Opcode::SubOv, Type::Int, a, b, s0),
            t.emit(Opcode::ILt, Type::Bool, a, b),
            t.emit(Opcode::ILe, Type::Bool, a, a),
            t.emit(Opcode::IEq, Type::Bool, a, b),
            t.emit(Opcode::INe, Type::Bool, a, b),
        ];
        let never = t.kbool(true);
        loop_(&mut t);
        let entries: Vec<(i32, Ref)> = ops.iter().enumerate().map(|(k, &r)| (k as i32 + 2, r)).collect();
        let s1 = snap(&mut t, &entries);
        guard(&mut t, Opcode::GuardFalse, never, s1);
        let (x, y) = (-100i64, 7i64);
        let mut st = stack(&[Value::Int(x), Value::Int(y)], 2 + ops.len());
        assert_eq!(run(&t, &mut st), s1.0);
        let want = [x / y, x % y, x + y, x - y, x & y, x | y, x ^ y, x << 3, x >> 3, !x, x * y, x - y];
        for (k, w) in want.iter().enumerate() {
            assert_eq!(int(st[k + 2]), *w, "slot {}", k + 2);
        }
        let bools: Vec<bool> = (14..18).map(|k| matches!(st[k], Value::Bool(true))).collect();
        assert_eq!(bools, [true, true, false, true]);
    }

    /// Divisors that exercise every `DivMagic` case and its corner cases.
    fn divisors() -> Vec<i64> {
        let mut ds: Vec<i64> = (-40..=40).filter(|&d| d != 0).collect();
        for k in [5, 7, 13, 31, 32, 62] {
            ds.extend([(1 << k) - 1, (1 << k) + 1, -(1 << k) + 1, -(1 << k) - 1, 1 << k, -(1 << k)]);
        }
        ds.extend([1000, 1001, 641, 6_700_417, 1_000_000_007, i64::MAX, i64::MIN, i64::MIN + 1, i64::MAX - 1]);
        ds.extend([-1000, 3 << 40, -(7 << 50), 0x5555_5555_5555_5555, -0x3333_3333_3333_3333]);
        ds
    }

    fn dividends() -> Vec<i64> {
        let mut ns: Vec<i64> = (-70..=70).collect();
        ns.extend([i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1, 1 << 62, -(1 << 62), 123_456_789_012_345]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ns.push(x as i64);
            ns.push((x >> (x % 61)) as i64);
        }
        ns
    }

    #[test]
    fn division_by_constants_matches_rust() {
        for d in divisors() {
            let m = DivMagic::new(d);
            for n in dividends() {
                if d == -1 && n == i64::MIN {
                    continue;
                }
                assert_eq!(m.quotient(n, d), n / d, "{n} / {d} with {m:?}");
            }
        }
    }

    #[test]
    fn compiled_division_by_constants() {
        let ds = divisors();
        for chunk in ds.chunks(64) {
            // Slot 0 = n; slots 1.. = n / d, n % d for each d; exits at once.
            let mut t = Trace::new();
            let s0 = snap(&mut t, &[]);
            let n = sload(&mut t, 0, Type::Int, s0);
            let mut entries = Vec::new();
            for (k, &d) in chunk.iter().enumerate() {
                let kd = t.kint(d);
                let q = t.emit(Opcode::Div, Type::Int, n, kd);
                let r = t.emit(Opcode::Rem, Type::Int, n, kd);
                entries.push((2 * k as i32 + 1, q));
                entries.push((2 * k as i32 + 2, r));
            }
            let never = t.kbool(false);
            loop_(&mut t);
            let s1 = snap(&mut t, &entries);
            guard(&mut t, Opcode::GuardTrue, never, s1);
            let c = compiled(&t);
            for n in dividends().into_iter().step_by(7).chain([i64::MIN, i64::MAX, -1, 0, 1]) {
                let mut st = stack(&[Value::Int(n)], 1 + 2 * chunk.len());
                assert_eq!(enter(&c, &mut st), s1.0);
                for (k, &d) in chunk.iter().enumerate() {
                    if d == -1 && n == i64::MIN {
                        continue;
                    }
                    assert_eq!(int(st[2 * k + 1]), n / d, "{n} / {d}");
                    assert_eq!(int(st[2 * k + 2]), n % d, "{n} % {d}");
                }
            }
        }
    }

    #[test]
    fn overflow_exits_with_the_value_before_the_overflow() {
        for (op, start, k, want) in [
            (Opcode::AddOv, i64::MAX - 25, 10, i64::MAX - 5),
            (Opcode::SubOv, i64::MIN + 25, 10, i64::MIN + 5),
            (Opcode::MulOv, 3, 2, 3 << 61),
        ] {
            let mut t = Trace::new();
            let s0 = snap(&mut t, &[]);
            let acc0 = sload(&mut t, 0, Type::Int, s0);
            let step = t.kint(k);
            loop_(&mut t);
            let acc = phi(&mut t, Type::Int, acc0);
            let s1 = snap(&mut t, &[(0, acc)]);
            let acc1 = t.guard(op, Type::Int, acc, step, s1);
            close(&mut t, acc, acc1);
            let mut st = stack(&[Value::Int(start)], 1);
            assert_eq!(run(&t, &mut st), s1.0, "{op:?}");
            assert_eq!(int(st[0]), want, "{op:?}");
        }
    }

    /// Overflow guards branch on the flag itself (`jo`), also where their
    /// exit joins a tail other exits share (`split_flag_edges`).
    #[test]
    fn overflow_guards_branch_on_the_flag() {
        for op in [Opcode::AddOv, Opcode::SubOv, Opcode::MulOv] {
            let mut t = Trace::new();
            let s0 = snap(&mut t, &[]);
            let acc0 = sload(&mut t, 0, Type::Int, s0);
            let lim = sload(&mut t, 1, Type::Int, s0);
            let step = t.kint(3);
            loop_(&mut t);
            let acc = phi(&mut t, Type::Int, acc0);
            // Counting down, SubOv runs until it passes -1000.
            let more = if op == Opcode::SubOv {
                t.emit(Opcode::ILt, Type::Bool, lim, acc)
            } else {
                t.emit(Opcode::ILt, Type::Bool, acc, lim)
            };
            // Both exits write the same slot: they share one tail.
            let s1 = snap(&mut t, &[(0, acc)]);
            guard(&mut t, Opcode::GuardTrue, more, s1);
            let s2 = snap(&mut t, &[(0, acc)]);
            let acc1 = t.guard(op, Type::Int, acc, step, s2);
            close(&mut t, acc, acc1);
            let asm = compile_keeping_ir(&t, "flags").expect("compiles").asm();
            assert!(asm.contains("\tjo\t") || asm.contains("\tjno\t"), "{op:?}: {asm}");
            assert!(!asm.contains("seto"), "{op:?}: {asm}");
            let lim = if op == Opcode::SubOv { -1000 } else { 1000 };
            let mut st = stack(&[Value::Int(1), Value::Int(lim)], 2);
            assert_eq!(run(&t, &mut st), s1.0, "{op:?}");
        }
    }

    /// An exit writes only the payload of a slot an `sload` guarded to the
    /// same type, and the whole value where the type changed or the slot
    /// was never loaded.
    #[test]
    fn exit_writes_tags_only_where_the_type_may_differ() {
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let x = sload(&mut t, 0, Type::Int, s0);
        let y = sload(&mut t, 1, Type::Int, s0);
        let one = t.kint(1);
        let x1 = t.emit(Opcode::Add, Type::Int, x, one);
        let yf = t.emit(Opcode::IToF, Type::Float, y, Ref::NONE);
        let no = t.kbool(false);
        loop_(&mut t);
        // Slot 0 stays an Int, slot 1 becomes a Float, slot 2 was never read.
        let s1 = snap(&mut t, &[(0, x1), (1, yf), (2, x1)]);
        guard(&mut t, Opcode::GuardTrue, no, s1);
        assert_eq!(entry_tags(&t).len(), 2);
        let c = compiled(&t);
        let mut st = stack(&[Value::Int(41), Value::Int(7), Value::Str(Heap::new(1 << 20).alloc_str("s"))], 3);
        assert_eq!(enter(&c, &mut st), s1.0);
        assert_eq!(int(st[0]), 42);
        assert_eq!(flt(st[1]), 7.0);
        assert_eq!(int(st[2]), 42);
    }

    #[test]
    fn type_guard_exit_writes_constants_and_inlined_slots() {
        let mut heap = Heap::new(1 << 30);
        let arr = heap.alloc_array(vec![]);
        let mut t = Trace::new();
        let k7 = t.kint(7);
        let kf = t.kfloat(2.5);
        let kn = t.knil();
        let kb = t.kbool(true);
        let ka = t.kptr(Type::Array, arr.as_ptr() as u64);
        let s0 = snap(&mut t, &[(3, k7), (4, kf), (5, kn), (6, kb), (7, ka), (40, k7)]);
        let x = sload(&mut t, 0, Type::Int, s0);
        loop_(&mut t);
        let s1 = snap(&mut t, &[(1, x)]);
        let c = t.emit(Opcode::ILt, Type::Bool, x, x);
        guard(&mut t, Opcode::GuardTrue, c, s1);
        let c = compiled(&t);

        let mut st = stack(&[Value::Str(heap.alloc_str("not an int"))], 41);
        assert_eq!(enter(&c, &mut st), s0.0);
        assert!(matches!(st[0], Value::Str(_)));
        assert!(matches!(st[1], Value::Nil));
        assert_eq!(int(st[3]), 7);
        assert_eq!(flt(st[4]), 2.5);
        assert_eq!(words(&st[5]), (tag::NIL as u64, 0));
        assert_eq!(words(&st[6]), (tag::BOOL as u64, 1));
        assert!(matches!(st[7], Value::Array(a) if a == arr));
        assert_eq!(int(st[40]), 7);

        let mut st = stack(&[Value::Int(5)], 41);
        assert_eq!(enter(&c, &mut st), s1.0);
        assert_eq!(int(st[1]), 5);
        assert!(matches!(st[3], Value::Nil));
    }

    /// `while i < len(a) { s += a[i]; a[i] = i * i; i += 1 }` over slots
    /// a, i, s = 0, 1, 2.
    fn array_loop() -> (Trace, SnapId, SnapId) {
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let arr = sload(&mut t, 0, Type::Array, s0);
        let i0 = sload(&mut t, 1, Type::Int, s0);
        let acc0 = sload(&mut t, 2, Type::Int, s0);
        let one = t.kint(1);
        let zero = t.kint(0);
        loop_(&mut t);
        let i = phi(&mut t, Type::Int, i0);
        let acc = phi(&mut t, Type::Int, acc0);
        let s1 = snap(&mut t, &[(1, i), (2, acc)]);
        let len = op1(&mut t, Opcode::ALen, Type::Int, arr);
        let c = t.emit(Opcode::ILt, Type::Bool, i, len);
        guard(&mut t, Opcode::GuardTrue, c, s1);
        let c = t.emit(Opcode::ILt, Type::Bool, i, zero);
        guard(&mut t, Opcode::GuardFalse, c, s1);
        let boxed = t.emit(Opcode::ALoad, Type::Value, arr, i);
        let x = t.guard(Opcode::Unbox, Type::Int, boxed, Ref::NONE, s1);
        let acc1 = t.guard(Opcode::AddOv, Type::Int, acc, x, s1);
        let sq = t.guard(Opcode::MulOv, Type::Int, i, i, s1);
        let bsq = op1(&mut t, Opcode::Box, Type::Value, sq);
        store(&mut t, Opcode::AStore, arr, i, bsq, 0);
        let i1 = t.emit(Opcode::Add, Type::Int, i, one);
        close(&mut t, i, i1);
        close(&mut t, acc, acc1);
        (t, s0, s1)
    }

    /// `while i < len(a) { a[i] = f(a[i]); i += 1 }` over an unboxed array
    /// of `ty` in slot 0 (i in slot 1), with its kind guarded: `f` doubles a
    /// Float, adds 3 to an Int and negates a Bool.
    fn typed_array_loop(ty: Type, kind: ElemKind) -> (Trace, SnapId, SnapId) {
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let arr = sload(&mut t, 0, Type::Array, s0);
        let i0 = sload(&mut t, 1, Type::Int, s0);
        let k = op1(&mut t, Opcode::AKind, Type::Int, arr);
        let want = t.kint(kind as i64);
        let c = t.emit(Opcode::IEq, Type::Bool, k, want);
        guard(&mut t, Opcode::GuardTrue, c, s0);
        let one = t.kint(1);
        let (two, three, no) = (t.kfloat(2.0), t.kint(3), t.kbool(false));
        loop_(&mut t);
        let i = phi(&mut t, Type::Int, i0);
        let s1 = snap(&mut t, &[(1, i)]);
        let len = op1(&mut t, Opcode::ALen, Type::Int, arr);
        let c = t.emit(Opcode::ULt, Type::Bool, i, len);
        guard(&mut t, Opcode::GuardTrue, c, s1);
        let x = t.emit(Opcode::ALoad, ty, arr, i);
        let y = match ty {
            Type::Float => t.emit(Opcode::FMul, Type::Float, x, two),
            Type::Int => t.emit(Opcode::Add, Type::Int, x, three),
            _ => t.emit(Opcode::IEq, Type::Bool, x, no),
        };
        store(&mut t, Opcode::AStore, arr, i, y, 0);
        let i1 = t.emit(Opcode::Add, Type::Int, i, one);
        close(&mut t, i, i1);
        (t, s0, s1)
    }

    #[test]
    fn unboxed_array_elements_load_and_store() {
        let mut heap = Heap::new(1 << 30);
        let cases: [(Type, ElemKind, Vec<Value>, Vec<Value>); 3] = [
            (
                Type::Float,
                ElemKind::Float,
                vec![Value::Float(0.5), Value::Float(-3.0), Value::Float(1e300)],
                vec![Value::Float(1.0), Value::Float(-6.0), Value::Float(2e300)],
            ),
            (
                Type::Int,
                ElemKind::Int,
                vec![Value::Int(-3), Value::Int(7), Value::Int(i64::MAX - 3)],
                vec![Value::Int(0), Value::Int(10), Value::Int(i64::MAX)],
            ),
            (
                Type::Bool,
                ElemKind::Bool,
                vec![Value::Bool(true), Value::Bool(false), Value::Bool(true)],
                vec![Value::Bool(false), Value::Bool(true), Value::Bool(false)],
            ),
        ];
        for (ty, kind, before, after) in cases {
            let (t, s0, s1) = typed_array_loop(ty, kind);
            let c = compiled(&t);
            let arr = heap.alloc_array(before.clone());
            assert_eq!(arr.get().kind(), kind);
            let mut st = stack(&[Value::Array(arr), Value::Int(0)], 2);
            assert_eq!(enter(&c, &mut st), s1.0, "{ty}");
            assert_eq!(int(st[1]), 3, "{ty}");
            let got = arr.get().to_vec();
            assert_eq!(format!("{got:?}"), format!("{after:?}"), "{ty}");

            // A negative index fails the one unsigned bounds check.
            let mut st = stack(&[Value::Array(arr), Value::Int(-1)], 2);
            assert_eq!(enter(&c, &mut st), s1.0, "{ty}");
            assert_eq!(int(st[1]), -1, "{ty}");
            assert_eq!(format!("{:?}", arr.get().to_vec()), format!("{after:?}"), "{ty}");

            // The same elements boxed: the kind guard exits before touching them.
            let boxed = heap.alloc_boxed_array(before.clone());
            let mut st = stack(&[Value::Array(boxed), Value::Int(0)], 2);
            assert_eq!(enter(&c, &mut st), s0.0, "{ty}");
            assert_eq!(format!("{:?}", boxed.get().to_vec()), format!("{before:?}"), "{ty}");
        }
    }

    #[test]
    fn array_load_store_with_bounds_guard() {
        let (t, s0, s1) = array_loop();
        let c = compiled(&t);
        let mut heap = Heap::new(1 << 30);
        let arr = heap.alloc_boxed_array((1..=5).map(|k| Value::Int(k * 10)).collect());
        let mut st = stack(&[Value::Array(arr), Value::Int(0), Value::Int(1)], 3);
        assert_eq!(enter(&c, &mut st), s1.0);
        assert_eq!(int(st[1]), 5);
        assert_eq!(int(st[2]), 1 + 150);
        let got: Vec<i64> = arr.get().iter().map(int).collect();
        assert_eq!(got, [0, 1, 4, 9, 16]);

        // An element of another type: the Unbox guard exits before that
        // iteration's effects.
        let arr = heap.alloc_boxed_array(vec![Value::Int(1), Value::Int(2), Value::Float(0.5), Value::Int(4)]);
        let mut st = stack(&[Value::Array(arr), Value::Int(0), Value::Int(0)], 3);
        assert_eq!(enter(&c, &mut st), s1.0);
        assert_eq!(int(st[1]), 2);
        assert_eq!(int(st[2]), 3);
        assert!(matches!(arr.get().get(2), Some(Value::Float(f)) if f == 0.5));
        assert!(matches!(arr.get().get(1), Some(Value::Int(1))));

        // Not an array.
        let mut st = stack(&[Value::Int(3), Value::Int(0), Value::Int(0)], 3);
        assert_eq!(enter(&c, &mut st), s0.0);
    }

    #[test]
    fn struct_fields_with_guard_def() {
        // o = slot 0; guard def 3; while o.f0 < 5 { o.f0 = o.f0 + 1; o.f1 = o.f0 as float }
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let o = sload(&mut t, 0, Type::Struct, s0);
        with_imm(&mut t, Opcode::GuardDef, Type::Void, o, Ref::NONE, 3, s0);
        let lim = t.kint(5);
        let one = t.kint(1);
        loop_(&mut t);
        let s1 = snap(&mut t, &[]);
        let f0 = with_imm(&mut t, Opcode::FLoad, Type::Value, o, Ref::NONE, 0, s1);
        let x = t.guard(Opcode::Unbox, Type::Int, f0, Ref::NONE, s1);
        let c = t.emit(Opcode::ILt, Type::Bool, x, lim);
        guard(&mut t, Opcode::GuardTrue, c, s1);
        let x1 = t.guard(Opcode::AddOv, Type::Int, x, one, s1);
        let bx = op1(&mut t, Opcode::Box, Type::Value, x1);
        store(&mut t, Opcode::FStore, o, Ref::NONE, bx, 0);
        let fx = op1(&mut t, Opcode::IToF, Type::Float, x1);
        let bfx = op1(&mut t, Opcode::Box, Type::Value, fx);
        store(&mut t, Opcode::FStore, o, Ref::NONE, bfx, 1);
        let c = compiled(&t);

        let mut heap = Heap::new(1 << 30);
        let obj = heap.alloc_struct(StructObj::new(3, vec![Value::Int(1), Value::Nil]));
        let mut st = stack(&[Value::Struct(obj)], 1);
        assert_eq!(enter(&c, &mut st), s1.0);
        assert_eq!(int(obj.get().fields()[0]), 5);
        assert_eq!(flt(obj.get().fields()[1]), 5.0);

        let other = heap.alloc_struct(StructObj::new(4, vec![Value::Int(1), Value::Nil]));
        let mut st = stack(&[Value::Struct(other)], 1);
        assert_eq!(enter(&c, &mut st), s0.0);
        assert_eq!(int(other.get().fields()[0]), 1);
    }

    #[test]
    fn float_only_fields_are_read_and_written_without_their_tags() {
        // o = slot 0; guard def 2; while o.f0 < 4.0 { o.f0 = o.f0 + 1.0 },
        // with `flt fload` and an untagged `fstore`: the tag word is never
        // read or written (here it deliberately says Int, which no real
        // instance of a Float-only field would).
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let o = sload(&mut t, 0, Type::Struct, s0);
        with_imm(&mut t, Opcode::GuardDef, Type::Void, o, Ref::NONE, 2, s0);
        let lim = t.kfloat(4.0);
        let one = t.kfloat(1.0);
        loop_(&mut t);
        let s1 = snap(&mut t, &[]);
        let x = with_imm(&mut t, Opcode::FLoad, Type::Float, o, Ref::NONE, 0, s1);
        let c = t.emit(Opcode::FLt, Type::Bool, x, lim);
        guard(&mut t, Opcode::GuardTrue, c, s1);
        let x1 = t.emit(Opcode::FAdd, Type::Float, x, one);
        store(&mut t, Opcode::FStore, o, Ref::NONE, x1, 0);
        let c = compiled(&t);

        let mut heap = Heap::new(1 << 30);
        let obj = heap.alloc_struct(StructObj::new(2, vec![Value::Float(0.5)]));
        let words = obj.get().fields().as_ptr() as *mut u64;
        // SAFETY: the field is a live Value of two words; the test writes
        // the tag word only, and never reads the field as a Value after.
        unsafe { *words = tag::INT as u64 };
        let mut st = stack(&[Value::Struct(obj)], 1);
        assert_eq!(enter(&c, &mut st), s1.0);
        // SAFETY: as above.
        let (t0, w1) = unsafe { (*words, *words.add(1)) };
        assert_eq!((t0, f64::from_bits(w1)), (tag::INT as u64, 4.5));
    }

    #[test]
    fn cells_globals_and_identity() {
        // c = cell in slot 0, f = func-like Native in slot 1, flag = bool in slot 2:
        // guard f is native 5 and flag is true; while cell < global 1 { cell += 1 }
        let mut heap = Heap::new(1 << 30);
        let cell = heap.alloc_cell(Value::Int(0));
        let globals = [Value::Nil, Value::Int(4)];
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let c = sload(&mut t, 0, Type::Cell, s0);
        let f = sload(&mut t, 1, Type::Native, s0);
        let flag = sload(&mut t, 2, Type::Bool, s0);
        let k5 = t.kptr(Type::Native, 5);
        let same = t.emit(Opcode::PEq, Type::Bool, f, k5);
        guard(&mut t, Opcode::GuardTrue, same, s0);
        let kt = t.kbool(true);
        let diff = t.emit(Opcode::PNe, Type::Bool, flag, kt);
        guard(&mut t, Opcode::GuardFalse, diff, s0);
        let gp = t.kptr(Type::Value, globals.as_ptr() as u64);
        let g = with_imm(&mut t, Opcode::GLoad, Type::Value, gp, Ref::NONE, 1, s0);
        let lim = t.guard(Opcode::Unbox, Type::Int, g, Ref::NONE, s0);
        let one = t.kint(1);
        loop_(&mut t);
        let s1 = snap(&mut t, &[(3, c)]);
        let v = op1(&mut t, Opcode::CLoad, Type::Value, c);
        let x = t.guard(Opcode::Unbox, Type::Int, v, Ref::NONE, s1);
        let lt = t.emit(Opcode::ILt, Type::Bool, x, lim);
        guard(&mut t, Opcode::GuardTrue, lt, s1);
        let x1 = t.guard(Opcode::AddOv, Type::Int, x, one, s1);
        let bx = op1(&mut t, Opcode::Box, Type::Value, x1);
        store(&mut t, Opcode::CStore, c, Ref::NONE, bx, 0);
        let code = compiled(&t);

        // Native index 5 with junk in the payload's upper half, and a true
        // Bool with junk above byte 8: both must read as the runtime does.
        let mut st = stack(&[Value::Cell(cell), Value::Nil, Value::Nil], 4);
        put_words(&mut st[1], tag::NATIVE as u64, 0xdead_beef_0000_0005);
        put_words(&mut st[2], tag::BOOL as u64, 0xffff_ff01);
        assert_eq!(enter(&code, &mut st), s1.0);
        assert_eq!(int(cell.get().value), 4);
        assert!(matches!(st[3], Value::Cell(x) if x == cell));

        // A false Bool (byte 8 is 0, junk above) fails the flag guard.
        put_words(&mut st[2], tag::BOOL as u64, 0xffff_ff00);
        assert_eq!(enter(&code, &mut st), s0.0);
        put_words(&mut st[2], tag::BOOL as u64, 1);
        put_words(&mut st[1], tag::NATIVE as u64, 6);
        assert_eq!(enter(&code, &mut st), s0.0);
    }

    #[test]
    fn upvalue_cells_are_read_from_the_running_closure() {
        // f = closure in slot 0: while upvalue 1 < 5 { upvalue 1 += upvalue 0 }.
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let f = sload(&mut t, 0, Type::Func, s0);
        loop_(&mut t);
        let s1 = snap(&mut t, &[]);
        let step_cell = with_imm(&mut t, Opcode::Upval, Type::Cell, f, Ref::NONE, 0, s1);
        let sum_cell = with_imm(&mut t, Opcode::Upval, Type::Cell, f, Ref::NONE, 1, s1);
        let v = op1(&mut t, Opcode::CLoad, Type::Value, sum_cell);
        let x = t.guard(Opcode::Unbox, Type::Int, v, Ref::NONE, s1);
        let five = t.kint(5);
        let lt = t.emit(Opcode::ILt, Type::Bool, x, five);
        guard(&mut t, Opcode::GuardTrue, lt, s1);
        let sv = op1(&mut t, Opcode::CLoad, Type::Value, step_cell);
        let step = t.guard(Opcode::Unbox, Type::Int, sv, Ref::NONE, s1);
        let x1 = t.guard(Opcode::AddOv, Type::Int, x, step, s1);
        let bx = op1(&mut t, Opcode::Box, Type::Value, x1);
        store(&mut t, Opcode::CStore, sum_cell, Ref::NONE, bx, 0);
        let code = compiled(&t);

        // Two closures of one prototype, each with cells of its own: the same
        // code updates whichever runs it.
        let src = "let x = 1";
        let program = crate::frontend::parse_program(src).expect("parses");
        let mut env = crate::frontend::compiler::CompileEnv::new();
        let mut heap = Heap::new(1 << 30);
        let chunk = crate::frontend::compiler::compile(&program, src, "t.vela", &mut env, &mut heap).expect("compiles");
        for (step, start, end) in [(1, 0, 5), (2, 1, 5), (3, 0, 6)] {
            let cells = [heap.alloc_cell(Value::Int(step)), heap.alloc_cell(Value::Int(start))];
            let func = heap.alloc_func(FuncObj::new(chunk.script.clone(), Box::new(cells)));
            let mut st = stack(&[Value::Func(func)], 1);
            assert_eq!(enter(&code, &mut st), s1.0);
            assert_eq!(int(cells[1].get().value), end, "step {step} from {start}");
            assert_eq!(int(cells[0].get().value), step);
        }
    }

    #[test]
    fn boxed_phis_and_parallel_update() {
        // (a, b) = (b, a) each iteration, n times; a and b are boxed values.
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let a0 = sload(&mut t, 0, Type::Value, s0);
        let b0 = sload(&mut t, 1, Type::Value, s0);
        let n0 = sload(&mut t, 2, Type::Int, s0);
        let one = t.kint(1);
        let zero = t.kint(0);
        loop_(&mut t);
        let a = phi(&mut t, Type::Value, a0);
        let b = phi(&mut t, Type::Value, b0);
        let n = phi(&mut t, Type::Int, n0);
        let s1 = snap(&mut t, &[(0, a), (1, b), (2, n)]);
        let c = t.emit(Opcode::ILt, Type::Bool, zero, n);
        guard(&mut t, Opcode::GuardTrue, c, s1);
        let n1 = t.emit(Opcode::Sub, Type::Int, n, one);
        close(&mut t, a, b);
        close(&mut t, b, a);
        close(&mut t, n, n1);
        let c = compiled(&t);
        let mut heap = Heap::new(1 << 30);
        let s = heap.alloc_str("s");
        for (n, swapped) in [(3, true), (4, false)] {
            let mut st = stack(&[Value::Float(1.5), Value::Str(s), Value::Int(n)], 3);
            assert_eq!(enter(&c, &mut st), s1.0);
            assert_eq!(int(st[2]), 0);
            if swapped {
                assert!(matches!((st[0], st[1]), (Value::Str(x), Value::Float(f)) if x == s && f == 1.5));
            } else {
                assert!(matches!((st[0], st[1]), (Value::Float(f), Value::Str(x)) if x == s && f == 1.5));
            }
        }
    }

    #[test]
    fn rejected_traces() {
        let msg = |t: &Trace| compile(t, "bad").expect_err("should not compile");

        let mut t = Trace::new();
        t.kint(1);
        assert!(msg(&t).contains("no Loop"));

        // A snapshot naming its own guard's result.
        let mut t = Trace::new();
        let x = Ref(0);
        let s0 = snap(&mut t, &[(0, x)]);
        assert_eq!(sload(&mut t, 0, Type::Int, s0), x);
        loop_(&mut t);
        assert!(msg(&t).contains("not defined"), "{}", msg(&t));

        // Type errors are reported, not crashes.
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let x = sload(&mut t, 0, Type::Float, s0);
        let one = t.kint(1);
        loop_(&mut t);
        t.emit(Opcode::Add, Type::Int, x, one);
        assert!(msg(&t).contains("expected int"), "{}", msg(&t));

        // LuaJIT-style phis (the body uses `a`, not the Phi).
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let i0 = sload(&mut t, 0, Type::Int, s0);
        let one = t.kint(1);
        loop_(&mut t);
        let p = phi(&mut t, Type::Int, i0);
        let s1 = snap(&mut t, &[(0, i0)]);
        let i1 = t.guard(Opcode::AddOv, Type::Int, i0, one, s1);
        close(&mut t, p, i1);
        assert!(msg(&t).contains("never used"), "{}", msg(&t));

        // A snapshot naming one slot twice.
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let i0 = sload(&mut t, 0, Type::Int, s0);
        let one = t.kint(1);
        loop_(&mut t);
        let i = phi(&mut t, Type::Int, i0);
        let s1 = snap(&mut t, &[(0, i), (0, one)]);
        let i1 = t.guard(Opcode::AddOv, Type::Int, i, one, s1);
        close(&mut t, i, i1);
        assert!(msg(&t).contains("names a slot twice"), "{}", msg(&t));
    }

    /// Two straight-line traces: A copies slot 0 to slot 1 and leaves through
    /// S1; B adds one to slot 1 into slot 2 and leaves through S1.
    const LINK_A: &str = "0000 int  > sload  #0 S0\n0001 bool   kbool  false\n0002      > gtrue  0001 S1\n0003        loop\nS0 pc=0 at=0000\nS1 pc=5 at=0002 #1=0000\n";
    const LINK_B: &str = "0000 int  > sload  #1 S0\n0001 int    kint   1\n0002 int  > addov  0000 0001 S0\n0003 bool   kbool  false\n0004      > gtrue  0003 S1\n0005        loop\nS0 pc=0 at=0000\nS1 pc=9 at=0004 #2=0002\n";

    fn linkage(serial: u32, snaps: usize) -> (Counters, Links, Linkage) {
        let counters: Counters = (0..=snaps).map(|_| Cell::new(0)).collect();
        let links: Links = (0..snaps).map(|_| Cell::new(0)).collect();
        let l = Linkage {
            serial,
            counters: counters.as_ptr(),
            links: links.as_ptr(),
            checkpoint: false,
            calls: std::ptr::null(),
            call_target: 0,
        };
        (counters, links, l)
    }

    #[test]
    fn linked_exits_count_and_jump_into_the_next_trace() {
        let (a, b) = (vela_ir::parse(LINK_A).unwrap(), vela_ir::parse(LINK_B).unwrap());
        let (ca, la, link_a) = linkage(7, a.snaps.len());
        let (cb, _lb, link_b) = linkage(9, b.snaps.len());
        let ta = compile_linked(&a, "a", Some(link_a), true).unwrap();
        let tb = compile_linked(&b, "b", Some(link_b), false).unwrap();
        let mut stack = stack(&[Value::Int(41), Value::Nil, Value::Nil], 4);
        // SAFETY: `stack` has every slot the traces touch; the linkage arrays
        // outlive both traces.
        let code = unsafe { ta.entry.call(stack.as_mut_ptr()) };
        assert_eq!(code, (7 << 32) | 1, "unlinked: A's own exit S1");
        assert_eq!((ca[0].get(), ca[2].get(), cb[0].get()), (1, 1, 0));
        la[1].set(tb.body);
        // SAFETY: as above; `tb` is alive while A links to it.
        let code = unsafe { ta.entry.call(stack.as_mut_ptr()) };
        assert_eq!(code, (9 << 32) | 1, "linked: B's exit S1");
        assert_eq!((ca[0].get(), ca[2].get(), cb[0].get(), cb[2].get()), (2, 2, 1, 1));
        assert_eq!(int(stack[2]), 42);
        assert!(ta.asm().contains("TAILCALL"), "{}", ta.asm());
    }

    /// Runs the root of `ir/tests/data/merge_*.ir` over `0..n` with its side
    /// trace merged; returns the exit code, the stack, and how many times the
    /// side trace ran.
    fn run_merged(n: i64) -> (u64, Vec<Value>, u64, CompiledTrace) {
        let root = vela_ir::parse(include_str!("../../ir/tests/data/merge_root.ir")).unwrap();
        let side = vela_ir::parse(include_str!("../../ir/tests/data/merge_side.ir")).unwrap();
        let (cr, _lr, link_r) = linkage(3, root.snaps.len());
        let (cs, _ls, link_s) = linkage(4, side.snaps.len());
        let plan = vela_ir::merge::plan(&root, SnapId(8), &side).expect("mergeable");
        let merge = Merge { exit: SnapId(8), side, linkage: link_s, plan };
        let t = compile_merged(&root, "merged", Some(link_r), &[merge], true).expect("compiles");
        let ints = [0, 0, 0, 0, n, 0, 0].map(Value::Int);
        let mut st = stack(&ints, 8);
        // SAFETY: `st` has every slot both traces touch; the linkage arrays
        // outlive the code.
        let code = unsafe { t.entry.call(st.as_mut_ptr()) };
        assert_eq!(cr[1 + 8].get(), cs[0].get(), "every merged exit ran the side trace");
        (code, st, cs[0].get(), t)
    }

    #[test]
    fn merged_side_traces_run_inside_the_loop() {
        // i = 9 ends the loop on the root's path: its own loop-end exit S9.
        let (code, st, sides, t) = run_merged(10);
        assert_eq!(code, (3 << 32) | 9);
        assert_eq!((int(st[1]), int(st[2]), int(st[3])), (45, 3, 9), "total, odd (1, 4, 7), i");
        assert_eq!(sides, 3);
        // The body (the module's one function) calls nothing.
        let asm = t.asm();
        assert!(asm.contains("merged.body:"), "{asm}");
        assert!(!asm.contains("call"), "the side trace is inlined:\n{asm}");
        // The slot only the side trace writes (odd) is carried round the
        // loop in a register of the shadow frame, not through the stack:
        // the header has a phi for it, and the stack is written only on
        // the way out (never in a block that branches back to the header).
        let ir = t.llvm_ir();
        let header = &ir[ir.find("\nloop:").expect("loop header")..];
        let header = &header[..header[1..].find("\n\n").expect("end of the header") + 1];
        assert!(header.contains("= phi i64") && header.contains("shadow.sroa"), "{ir}");
        for block in ir.split("\n\n").filter(|b| b.contains("label %loop")) {
            assert!(
                !block.contains("store i64 %shadow") && !block.contains("%base"),
                "stack write in the loop:\n{block}"
            );
        }
        // i = 10 takes the branch: the side trace's own loop-end exit S6.
        let (code, st, sides, _) = run_merged(11);
        assert_eq!(code, (4 << 32) | 6);
        assert_eq!((int(st[1]), int(st[2]), int(st[3])), (55, 4, 10), "the interpreter resumes at the loop test");
        assert_eq!(sides, 4);
    }

    #[test]
    fn the_door_section_is_kept_apart_from_the_rest_of_its_object() {
        let host = host().unwrap();
        let cx = Context::create();
        let module = cx.create_module("door_only");
        let object = with_tm(host, |tm| {
            module.set_triple(&tm.get_triple());
            module.set_data_layout(&tm.get_target_data().get_data_layout());
            add_door(&cx, &module, host)?;
            tm.write_to_memory_buffer(&module, FileType::Object).map_err(|e| e.to_string())
        })
        .unwrap();
        let mut loaded = loader::load(object.as_slice(), TraceMemory::new().0, Some(DOOR_SECTION)).unwrap();
        let kept = loaded.kept.take().expect("the door's section has memory of its own");
        let addr = loaded.address(DOOR_NAME).expect("door");
        // Unmaps all but the door.
        drop(loaded);
        let (t, _, s1) = counting_loop();
        let c = compiled(&t);
        let mut st = stack(&[Value::Int(0), Value::Int(10)], 4);
        // SAFETY: `addr` is the door just built (`DoorFn`), its memory is
        // `kept`, alive here; `st` has every slot the trace touches.
        let code = unsafe { std::mem::transmute::<usize, DoorFn>(addr)(st.as_mut_ptr(), c.body) };
        assert_eq!(code as u32, s1.0);
        assert_eq!(int(st[0]), 10);
        drop(kept);
    }

    #[test]
    fn dumps() {
        let (t, _, _) = counting_loop();
        let c = compile_keeping_ir(&t, "test_trace").expect("compiles");
        let ir = c.llvm_ir();
        assert!(ir.contains("define tailcc i64 @test_trace.body(i64* noalias"), "{ir}");
        assert!(!ir.contains("vela.door"), "the door is never in a dumped module: {ir}");
        assert!(ir.contains("llvm.sadd.with.overflow.i64"), "{ir}");
        let asm = c.asm();
        assert!(asm.contains("test_trace.body:"), "{asm}");
        assert!(asm.contains("ret"), "{asm}");
        // Without a dump nothing is kept, and saying so is not a crash.
        let plain = compiled(&t);
        assert!(plain.llvm_ir().contains("not kept"), "{}", plain.llvm_ir());
        assert!(plain.asm().contains("not kept"), "{}", plain.asm());
    }

    #[test]
    fn loop_invariant_array_fields_are_read_before_the_loop() {
        let (t, _, _) = array_loop();
        let ir = compile_keeping_ir(&t, "test_trace").expect("compiles").llvm_ir();
        let start = ir.find("\nloop:").expect("loop header");
        let end = start + ir[start..].find("\nexit").expect("exit block after the loop");
        let body = &ir[start..end];
        // Per iteration: the element's tag and payload, and nothing else (not
        // the array's length or data pointer).
        assert_eq!(body.matches(" = load ").count(), 2, "{body}");
        // Both guards of the bounds check exit through the same snapshot:
        // simplifycfg merged them into one branch.
        assert_eq!(body.matches("br i1").count(), 4, "{body}");
    }

    #[test]
    fn exits_share_common_stores_and_write_only_their_own() {
        // i = slot 0 + 1 each iteration; four guards whose snapshots overlap:
        // S2 and S3 share two entries, S4 has only those two, S5 the same
        // entries as S4 under another id.
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let i0 = sload(&mut t, 0, Type::Int, s0);
        let n = sload(&mut t, 1, Type::Int, s0);
        let one = t.kint(1);
        let k7 = t.kint(7);
        let half = t.kfloat(2.5);
        let (k5, k6, k7b) = (t.kint(5), t.kint(6), t.kint(7));
        loop_(&mut t);
        let i = phi(&mut t, Type::Int, i0);
        let s1 = snap(&mut t, &[(0, i)]);
        let i1 = t.guard(Opcode::AddOv, Type::Int, i, one, s1);
        let s2 = snap(&mut t, &[(0, i1), (2, k7), (3, i)]);
        let c = t.emit(Opcode::ILt, Type::Bool, i1, n);
        guard(&mut t, Opcode::GuardTrue, c, s2);
        let s3 = snap(&mut t, &[(0, i1), (2, k7), (4, half)]);
        let c = t.emit(Opcode::INe, Type::Bool, i1, k5);
        guard(&mut t, Opcode::GuardTrue, c, s3);
        let s4 = snap(&mut t, &[(0, i1), (2, k7)]);
        let c = t.emit(Opcode::INe, Type::Bool, i1, k6);
        guard(&mut t, Opcode::GuardTrue, c, s4);
        let s5 = snap(&mut t, &[(0, i1), (2, k7)]);
        let c = t.emit(Opcode::INe, Type::Bool, i1, k7b);
        guard(&mut t, Opcode::GuardTrue, c, s5);
        close(&mut t, i, i1);

        // Root, (0, i1), (2, k7), (3, i), (4, 2.5), (0, i): 5 stores for 11 entries.
        assert_eq!(ExitTree::new(&t).expect("valid").nodes.len(), 6);

        let c = compiled(&t);
        let run = |i0: i64, n: i64| {
            let mut st = stack(&[Value::Int(i0), Value::Int(n)], 6);
            let exit = enter(&c, &mut st);
            (exit, st)
        };
        let (exit, st) = run(0, 3);
        assert_eq!(exit, s2.0);
        assert_eq!((int(st[0]), int(st[2]), int(st[3])), (3, 7, 2));
        assert!(matches!(st[4], Value::Nil));
        let (exit, st) = run(0, 100);
        assert_eq!(exit, s3.0);
        assert_eq!((int(st[0]), int(st[2]), flt(st[4])), (5, 7, 2.5));
        assert!(matches!(st[3], Value::Nil));
        let (exit, st) = run(5, 100);
        assert_eq!(exit, s4.0);
        assert_eq!((int(st[0]), int(st[2])), (6, 7));
        assert!(matches!((st[3], st[4]), (Value::Nil, Value::Nil)));
        let (exit, st) = run(6, 100);
        assert_eq!(exit, s5.0);
        assert_eq!((int(st[0]), int(st[2])), (7, 7));
        assert!(matches!((st[3], st[4]), (Value::Nil, Value::Nil)));
        let (exit, st) = run(i64::MAX, 100);
        assert_eq!(exit, s1.0);
        assert_eq!(int(st[0]), i64::MAX);
        assert!(matches!((st[2], st[3], st[4]), (Value::Nil, Value::Nil, Value::Nil)));
    }

    #[test]
    fn many_traces_compile_run_and_free() {
        let (t, _, s1) = counting_loop();
        for k in 0..50 {
            let c = compile(&t, &format!("t{k}")).expect("compiles");
            let mut st = stack(&[Value::Int(0), Value::Int(k)], 2);
            assert_eq!(enter(&c, &mut st), s1.0);
            assert_eq!(int(st[0]), k);
        }
    }

    /// The trace's own figure, not `memory::live_bytes()`: other tests compile
    /// traces in parallel (`tests/jit_memory.rs` checks the process-wide one).
    #[test]
    fn code_bytes_are_mapped_pages_and_go_away_with_the_trace() {
        let (t, _, s1) = counting_loop();
        let page = super::super::memory::page_size();
        for k in 0..20 {
            let c = compile(&t, &format!("m{k}")).expect("compiles");
            let bytes = c.code_bytes();
            assert!(bytes >= page && bytes.is_multiple_of(page), "{bytes}");
            // A counting loop is a few hundred bytes of code and constants.
            assert!(bytes <= 4 * page, "{bytes}");
            let mut st = stack(&[Value::Int(0), Value::Int(k)], 2);
            assert_eq!(enter(&c, &mut st), s1.0);
            assert_eq!(int(st[0]), k);
            let mapped = c.mapped.clone();
            drop(c);
            assert_eq!(mapped.get(), 0, "dropping the trace unmaps all its memory");
        }
    }

    /// A ~100-instruction trace: an array walk with int and float arithmetic
    /// and a guard every few instructions.
    fn big_trace(seed: i64) -> Trace {
        let mut t = Trace::new();
        let s0 = snap(&mut t, &[]);
        let arr = sload(&mut t, 0, Type::Array, s0);
        let i0 = sload(&mut t, 1, Type::Int, s0);
        let x0 = sload(&mut t, 2, Type::Float, s0);
        let acc0 = sload(&mut t, 3, Type::Int, s0);
        let one = t.kint(1);
        loop_(&mut t);
        let i = phi(&mut t, Type::Int, i0);
        let x = phi(&mut t, Type::Float, x0);
        let acc = phi(&mut t, Type::Int, acc0);
        let s = snap(&mut t, &[(1, i), (2, x), (3, acc)]);
        let len = op1(&mut t, Opcode::ALen, Type::Int, arr);
        let c = t.emit(Opcode::ILt, Type::Bool, i, len);
        guard(&mut t, Opcode::GuardTrue, c, s);
        let e = t.emit(Opcode::ALoad, Type::Value, arr, i);
        let ev = t.guard(Opcode::Unbox, Type::Int, e, Ref::NONE, s);
        let (mut a, mut xf) = (t.guard(Opcode::AddOv, Type::Int, acc, ev, s), x);
        for j in 0..8 {
            let sj = snap(&mut t, &[(1, i), (2, xf), (3, a), (4 + j, a)]);
            let k = t.kint(seed + j as i64);
            let a1 = t.guard(Opcode::AddOv, Type::Int, a, k, sj);
            let k3 = t.kint(3);
            let m = t.guard(Opcode::MulOv, Type::Int, a1, k3, sj);
            let kr = t.kint(1000 + j as i64);
            let d = t.emit(Opcode::Rem, Type::Int, m, kr);
            let f = op1(&mut t, Opcode::IToF, Type::Float, d);
            let kf = t.kfloat(0.25 * (j + 1) as f64);
            let fm = t.emit(Opcode::FMul, Type::Float, f, kf);
            xf = t.emit(Opcode::FAdd, Type::Float, xf, fm);
            let big = t.kfloat(1e300);
            let ok = t.emit(Opcode::FLt, Type::Bool, xf, big);
            guard(&mut t, Opcode::GuardTrue, ok, sj);
            a = t.emit(Opcode::BXor, Type::Int, d, a1);
        }
        let i1 = t.emit(Opcode::Add, Type::Int, i, one);
        close(&mut t, i, i1);
        close(&mut t, x, xf);
        close(&mut t, acc, a);
        t
    }

    fn report(what: &str, mut times: Vec<Duration>) {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "compile time, {what}: median {:.2} ms, min {:.2} ms, max {:.2} ms over {}",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1]),
            times.len(),
        );
    }

    /// Prints compile times (run with `--nocapture`); asserts only that the
    /// code works.
    #[test]
    fn compile_time() {
        // The first compile also initialises LLVM: report it separately.
        let (small, _, small_exit) = counting_loop();
        let t0 = Instant::now();
        drop(compile(&small, "warmup").expect("compiles"));
        println!("first compile, including LLVM initialisation: {:.2} ms", t0.elapsed().as_secs_f64() * 1e3);

        let mut times = Vec::new();
        for k in 0..20 {
            let t0 = Instant::now();
            let c = compile(&small, &format!("small{k}")).expect("compiles");
            times.push(t0.elapsed());
            let mut st = stack(&[Value::Int(0), Value::Int(k)], 2);
            assert_eq!(enter(&c, &mut st), small_exit.0);
        }
        report(&format!("{}-instruction counting loop", small.len()), times);

        let traces: Vec<Trace> = (0..20).map(big_trace).collect();
        let mut times = Vec::new();
        let mut heap = Heap::new(1 << 30);
        let arr = heap.alloc_boxed_array((0..100).map(Value::Int).collect());
        for (k, t) in traces.iter().enumerate() {
            let t0 = Instant::now();
            let c = compile(t, &format!("big{k}")).expect("compiles");
            times.push(t0.elapsed());
            let mut st = stack(&[Value::Array(arr), Value::Int(0), Value::Float(0.0), Value::Int(0)], 12);
            enter(&c, &mut st);
            assert_eq!(int(st[1]), 100, "trace {k} ran to the end of the array");
        }
        let guards = traces[0].insts.iter().filter(|i| i.op.is_guard(i.ty)).count();
        report(&format!("{}-instruction traces with {guards} guards", traces[0].len()), times);
    }
}
