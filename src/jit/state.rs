//! The JIT's state inside a `Vm`: settings, the recorder in progress, the
//! code cache, what traces assumed (dependencies, for invalidation) and the
//! statistics. Decides when traces are made, attached, merged into their
//! root (trace trees), invalidated or discarded, and keeps the per-loop bookkeeping (abort counts,
//! blacklisting); must not interpret.

use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use vela_ir::{Opcode, SnapId, Snapshot, Trace};

use bitvec::vec::BitVec;

use super::backend::{self, CompiledTrace, Counters, Links};
use super::cache::{CacheStats, CodeCache, TraceId};
use super::compiler::{Compiler, Done, Job};
use super::layout::NativeCalls;
use super::recorder::{Recorder, CALLEE_NOT_COMPILED, INNER_LOOP_NOT_COMPILED};
use crate::bytecode::proto::{HotSlot, FUNC_ENTRY};
use crate::bytecode::Proto;
use crate::runtime::object::FuncObj;
use crate::runtime::{GcRef, Value};

/// What `--dump=ir|llvm|asm` asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpFlags {
    pub ir: bool,
    pub llvm: bool,
    pub asm: bool,
}

/// JIT settings (from `Config`).
#[derive(Clone, Copy, Debug)]
pub struct JitSettings {
    pub enabled: bool,
    /// Back-edges before a loop is recorded.
    pub hot_loop: u32,
    /// Calls before a function is recorded from its entry.
    pub hot_func: u32,
    /// IR instructions before a recording is abandoned.
    pub max_trace: usize,
    /// Aborted recordings before a loop is blacklisted.
    pub max_aborts: u32,
    /// Times an exit is taken before a side trace is recorded from it.
    pub hot_exit: u32,
    /// Entries of a side trace before it is merged into its root (0: never).
    pub hot_merge: u64,
    /// Code cache size limit in bytes.
    pub cache_bytes: usize,
    pub verbose: bool,
    pub dump: DumpFlags,
    /// Compile on a thread of its own while the interpreter goes on.
    pub background: bool,
}

/// One exit (snapshot) of a compiled trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExitState {
    /// The side trace attached to it (which may since have been evicted).
    pub side: Option<TraceId>,
    /// Recording a side trace kept failing: stop trying.
    pub blacklisted: bool,
    /// Failed side-trace recordings that count towards `blacklisted`.
    pub aborts: u32,
    /// Times taken (`TraceRecord::taken`) at which a side trace may be
    /// recorded (again).
    pub retry_at: u64,
    /// A side trace from here is being compiled.
    pub compiling: bool,
    /// Its side trace was found not to merge, or is being merged.
    pub merge_tried: bool,
}

/// What a trace assumed beyond its guards: when one of these changes, the
/// trace is invalidated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dep {
    /// Global slot `g` holds the value the trace baked in as a constant.
    Global(u16),
    /// Struct `def`'s method `name` is the function the trace inlined.
    Method(u32, u16),
    /// Field `idx` of every instance of struct `def` holds a Float
    /// (`StructDef::float_only`): the trace reads or writes it untagged.
    FloatField(u32, u16),
}

/// A trace handed to the compiler, with what attaching it will need.
struct Pending {
    /// The compiler job's id.
    id: u64,
    serial: u32,
    name: String,
    where_: String,
    side_of: Option<(TraceId, u32)>,
    root_proto: *const Proto,
    loop_id: u16,
    header_pc: usize,
    link: Option<u16>,
    straight: bool,
    deps: Vec<Dep>,
    /// Heap objects the code will refer to by address: GC roots meanwhile.
    roots: Vec<Value>,
    /// The cells whose addresses the code bakes in.
    linkage: Option<(Counters, Links)>,
    /// One of `deps` changed while it compiled: drop it when it is done.
    stale: bool,
}

/// A root trace being recompiled with side traces merged into it.
struct PendingMerge {
    /// The compiler job's id (`MERGE_JOB` set).
    id: u64,
    root: TraceId,
    root_serial: u32,
    /// (root exit, side trace) for every side trace in the new code.
    merged: Vec<(u32, TraceId)>,
}

/// Marks the ids of merge jobs (other jobs' ids are trace serials).
const MERGE_JOB: u64 = 1 << 40;

/// One compiled trace.
pub struct TraceRecord {
    /// `trace{serial}`, as in messages and reports.
    pub serial: u32,
    pub name: String,
    pub code: CompiledTrace,
    pub snaps: Vec<Snapshot>,
    /// The closure of each inlined frame, by snapshot-frame `func` ref.
    pub funcs: FxHashMap<u32, GcRef<FuncObj>>,
    /// Heap objects the machine code refers to by address.
    pub roots: Vec<Value>,
    pub exits: Vec<ExitState>,
    /// For a side trace: (parent trace, exit).
    pub parent: Option<(TraceId, u32)>,
    /// The loop this trace belongs to (its root's): prototype, loop id and
    /// the header's pc.
    pub root_proto: *const Proto,
    pub loop_id: u16,
    pub header_pc: usize,
    /// For a straight-line trace: the loop (id in `root_proto`) whose header
    /// it ends at.
    pub link: Option<u16>,
    /// Ends through its tail snapshot instead of closing into a loop.
    pub straight: bool,
    pub deps: Vec<Dep>,
    /// Run-time counts kept by the machine code (`backend::Linkage`):
    /// entries, then exits taken per snapshot.
    counters: Counters,
    /// Per snapshot: 0, or the body of the trace its exit jumps on into.
    links: Links,
    /// The exits of other traces whose `links` jump into this one.
    linked_from: Vec<(TraceId, u32)>,
    /// `entries()` when the code cache last looked (for LRU).
    pub seen_entries: u64,
    /// Position of the `loop` instruction: a guard before it belongs to the
    /// peeled first iteration.
    pub loop_at: u32,
    /// The code cache's clock when the trace last ran.
    pub last_used: u64,
    /// Highest slot (relative to the trace base) an exit may write, plus one.
    pub extent: usize,
    /// Deepest inlining in any snapshot.
    pub max_frames: usize,
    pub compile_ms: f64,
    /// The process's first compile, which also pays LLVM's lazily built
    /// machinery (`backend::warm_up`); reported apart from the others.
    pub first_compile: bool,
    /// The optimised IR the code was compiled from (merging compiles a root
    /// again, with side traces).
    pub ir: Trace,
    /// For a side trace: the root whose code runs it inline. It lives and
    /// goes with that root (the root's code uses its exit codes and cells).
    pub merged_into: Option<TraceId>,
}

#[derive(Clone, Debug, Default)]
pub struct JitStats {
    pub compiled: u64,
    pub aborted: u64,
    pub blacklisted: u64,
    /// Traces dropped because an assumption broke, or their exits kept failing.
    pub invalidated: u64,
    /// Exits patched to jump straight into another trace (a side trace, or
    /// the trace of the loop header they reach): after the first crossing,
    /// which goes through `Vm::enter_trace`, the machine code does it alone.
    /// (The report's `links` counts the crossings: entries not made by the
    /// interpreter.)
    pub patched_links: u64,
    /// Traces entered from the interpreter (the other entries are links).
    pub interp_entries: u64,
    /// Abort reason → count.
    pub abort_reasons: FxHashMap<String, u64>,
    /// Native call levels rebuilt as interpreter frames after an exit taken
    /// inside native calls.
    pub unwound_levels: u64,
    /// One-time LLVM start-up, paid by the first trace (not in its compile
    /// time): initialising the target, and waiting for libLLVM to finish
    /// loading (`jit::libllvm`) if it has not.
    pub llvm_init_ms: Option<f64>,
    /// The first compile's time (see `TraceRecord::first_compile`).
    pub first_compile_ms: Option<f64>,
    /// Traces compiled on the compile thread (attached or not).
    pub background: u64,
    /// Compiled traces not attached because their parent, their loop or an
    /// assumption went while they compiled.
    pub dropped: u64,
    /// Side traces merged into their root's code.
    pub merged: u64,
    /// Exits that took a side trace grown from another exit of their trace
    /// resuming at the same pc (`JitState::sibling_side`).
    pub shared_sides: u64,
    /// Milliseconds each recompile of a root with merged side traces took.
    pub merge_ms: Vec<f64>,
    /// Every compile the back end finished (traces, recompiles with merged
    /// side traces, failed ones, ones dropped or evicted since), and the
    /// milliseconds they took together with LLVM's one-time start-up: the
    /// run's whole cost of compiling, next to which per-trace figures say
    /// little when a run is short.
    pub compiles: u64,
    pub compile_total_ms: f64,
    pub cache: CacheStats,
}

/// Invalidations of one loop's traces before it is blacklisted.
const MAX_INVALIDATIONS: u32 = 4;
/// Fewest non-constant IR instructions a function-entry trace must have.
const MIN_ENTRY_TRACE: usize = 40;
const TOO_SHORT: &str = "function trace too short to pay for its entry";
/// Too-short recordings of one function entry per abort counted towards
/// blacklisting it.
const SHORT_PER_ABORT: u32 = 4;
/// Evictions of one loop's root trace before the loop is blacklisted.
const MAX_EVICTIONS: u32 = 8;
/// Invalidations caused by one global before traces stop treating it as a
/// constant: fewer than `MAX_INVALIDATIONS`, so a loop invalidated by one
/// restless global gets recorded once more, loading it, before it would be
/// blacklisted.
const MAX_GLOBAL_CHANGES: u32 = 3;
/// A root loop trace is discarded when, after this many entries, nearly all
/// of them left before reaching the loop.
const DISCARD_AFTER: u64 = 1000;

pub struct JitState {
    pub settings: JitSettings,
    pub recorder: Option<Box<Recorder>>,
    pub cache: CodeCache,
    /// Traces made so far (numbers the next one).
    serial: u32,
    /// (proto address, loop id) → aborted recordings.
    pub aborts: FxHashMap<(usize, u16), u32>,
    /// (proto address, FUNC_ENTRY) → entry recordings refused as too short.
    short_entries: FxHashMap<(usize, u16), u32>,
    /// (proto address, loop id) → recordings that waited for a called
    /// function's entry trace (`CALLEE_NOT_COMPILED`).
    callee_waits: FxHashMap<(usize, u16), u32>,
    /// (proto address, loop id) → evictions of that loop's root trace.
    evictions: FxHashMap<(usize, u16), u32>,
    /// (proto address, loop id) → invalidations of that loop's traces.
    invalidations: FxHashMap<(usize, u16), u32>,
    /// The root loop trace (and its header pc) that last stopped for a
    /// checkpoint.
    pub checkpoint: Option<(TraceId, usize)>,
    /// Live traces by serial number (exit codes name traces by serial).
    pub serials: FxHashMap<u32, TraceId>,
    /// The most slots above its base, and inlined frames, any trace's exits
    /// may need: entering any trace checks room for these, so every trace it
    /// links into fits too.
    pub max_extent: usize,
    pub max_frames: usize,
    /// Which live traces depend on what.
    dependents: FxHashMap<Dep, Vec<TraceId>>,
    /// (caller prototype address, pc of a call) → the addresses of the
    /// closure (`POLYMORPHIC` once recordings have met two closures of one
    /// prototype there) and of the prototype the last recording through
    /// that call met (see `Recorder::polymorphic_site`).
    pub call_sites: RefCell<FxHashMap<(usize, u32), (usize, usize)>>,
    /// Globals some live trace baked in: writing one must invalidate.
    watched: BitVec,
    /// Globals that changed too often to be treated as constants.
    volatile: BitVec,
    global_changes: FxHashMap<u16, u32>,
    compiler: Compiler,
    /// Traces in the compiler, oldest first.
    pending: Vec<Pending>,
    /// Roots being recompiled with side traces merged in.
    merging: Vec<PendingMerge>,
    /// Shared by native calls between traces (`layout::NativeCalls`); its
    /// address is baked into traces that make them.
    pub calls: Box<NativeCalls>,
    /// A trace left through a GC exit: the interpreter collects before it
    /// goes on (`Vm::execute`).
    pub gc_due: bool,
    /// What the last trace that returned from its root frame (`ret`) left
    /// in the callee slot: the result `Vm::execute` gives when that frame
    /// was the first it ran.
    pub returned: Value,
    pub stats: JitStats,
    /// Merge jobs submitted (their ids).
    serial_merges: u64,
}

impl JitState {
    pub fn new(settings: JitSettings) -> JitState {
        JitState {
            settings,
            recorder: None,
            cache: CodeCache::new(settings.cache_bytes),
            serial: 0,
            aborts: FxHashMap::default(),
            short_entries: FxHashMap::default(),
            callee_waits: FxHashMap::default(),
            evictions: FxHashMap::default(),
            invalidations: FxHashMap::default(),
            dependents: FxHashMap::default(),
            call_sites: Default::default(),
            checkpoint: None,
            serials: FxHashMap::default(),
            max_extent: 0,
            max_frames: 0,
            watched: BitVec::new(),
            volatile: BitVec::new(),
            global_changes: FxHashMap::default(),
            compiler: Compiler::new(settings.background && !dump_any(settings.dump)),
            pending: Vec::new(),
            merging: Vec::new(),
            calls: NativeCalls::new(),
            gc_due: false,
            returned: Value::Nil,
            stats: JitStats::default(),
            serial_merges: 0,
        }
    }

    fn log(&self, msg: &str) {
        if self.settings.verbose {
            eprintln!("[jit] {msg}");
        }
    }

    /// Every value compiled code or the recorder holds by address.
    pub fn roots(&self) -> impl Iterator<Item = &Value> {
        self.cache
            .iter()
            .flat_map(|(_, t)| t.roots.iter())
            .chain(self.recorder.iter().flat_map(|r| r.roots.iter()))
            .chain(self.pending.iter().flat_map(|p| p.roots.iter()))
    }

    /// The live trace `id`'s name, for messages.
    pub fn name_of(&self, id: TraceId) -> String {
        self.cache.get(id).map_or_else(|| "an evicted trace".to_string(), |t| format!("trace{}", t.serial))
    }

    pub fn start_recording(&mut self, rec: Recorder, where_: &str) {
        self.log(&format!("record {where_}"));
        self.recorder = Some(Box::new(rec));
    }

    /// Gives up on a recording; blacklists the loop after repeated failures.
    pub fn abort(&mut self, key: (usize, u16), why: &str, slot: &HotSlot, where_: &str) {
        self.stats.aborted += 1;
        *self.stats.abort_reasons.entry(why.to_string()).or_default() += 1;
        if why == INNER_LOOP_NOT_COMPILED {
            // Try again once the inner loop has a trace (or is blacklisted).
            self.log(&format!("abort {where_}: {why}"));
            return;
        }
        if why == CALLEE_NOT_COMPILED {
            // Try again once the called function has an entry trace to call
            // natively; but that may never come (the function is called
            // too rarely), so every few such aborts count.
            let n = self.callee_waits.entry(key).or_default();
            *n += 1;
            if !n.is_multiple_of(SHORT_PER_ABORT) {
                self.log(&format!("abort {where_}: {why}"));
                return;
            }
        }
        if why == TOO_SHORT {
            // The recorded call may have taken a recursive function's short
            // base case (half of recursive fib's calls do): a function counts
            // one blacklisting abort per `SHORT_PER_ABORT` short recordings.
            let n = self.short_entries.entry(key).or_default();
            *n += 1;
            if !n.is_multiple_of(SHORT_PER_ABORT) {
                self.log(&format!("abort {where_}: {why}"));
                return;
            }
        }
        let n = {
            let n = self.aborts.entry(key).or_default();
            *n += 1;
            *n
        };
        self.log(&format!("abort {where_}: {why}"));
        if n >= self.settings.max_aborts {
            self.blacklist(slot, where_);
        }
    }

    fn blacklist(&mut self, slot: &HotSlot, where_: &str) {
        slot.blacklisted.set(true);
        slot.trace.set(None);
        self.stats.blacklisted += 1;
        self.log(&format!("blacklist {where_}"));
    }

    /// Gives up on a side-trace recording; stops trying that exit after
    /// repeated failures.
    pub fn abort_side(&mut self, parent: TraceId, exit: u32, why: &str, where_: &str) {
        self.stats.aborted += 1;
        *self.stats.abort_reasons.entry(why.to_string()).or_default() += 1;
        let name = self.name_of(parent);
        self.log(&format!("abort side trace of {name} exit S{exit} at {where_}: {why}"));
        let (max_aborts, hot_exit) = (self.settings.max_aborts, self.settings.hot_exit as u64);
        let Some(p) = self.cache.get_mut(parent) else { return };
        let taken = p.taken(exit as usize);
        let e = &mut p.exits[exit as usize];
        // Wait for another `hot_exit` exits before trying again.
        e.retry_at = taken + hot_exit;
        if why != INNER_LOOP_NOT_COMPILED {
            e.aborts += 1;
            if e.aborts >= max_aborts {
                e.blacklisted = true;
            }
        }
    }

    /// `abort_side` for a side trace of `side_of`, else `abort` of `key`'s loop.
    pub fn abort_any(
        &mut self,
        side_of: Option<(TraceId, u32)>,
        key: (usize, u16),
        why: &str,
        slot: &HotSlot,
        where_: &str,
    ) {
        match side_of {
            Some((p, e)) => self.abort_side(p, e, why, where_),
            None => self.abort(key, why, slot, where_),
        }
    }

    /// Whether traces may bake global `g`'s current value in as a constant.
    pub fn global_is_constant(&self, g: u16) -> bool {
        !self.volatile.get(g as usize).is_some_and(|b| *b)
    }

    /// Globals a recording assigns: compiled code will write them without
    /// telling anyone, so from now on none is baked into a trace, and the
    /// traces that baked one in are invalidated now.
    pub fn globals_assigned(&mut self, globals: &[u16]) {
        for &g in globals {
            if self.volatile.len() <= g as usize {
                self.volatile.resize(g as usize + 1, false);
            }
            if self.volatile.replace(g as usize, true) {
                continue;
            }
            if self.watches_global(g) {
                self.watched.set(g as usize, false);
            }
            self.invalidate_dep(Dep::Global(g), &format!("global #{g} is assigned by a trace"));
        }
    }

    /// Optimises a finished recording and hands it to the compiler; the
    /// trace is attached (`install`) when its machine code is ready, which
    /// in the synchronous mode is before this returns.
    pub fn finish(&mut self, rec: Box<Recorder>, slot: &HotSlot, where_: &str) {
        let mut rec = *rec;
        self.globals_assigned(&rec.stores_globals);
        let key = (rec.root_proto as usize, rec.loop_id);
        if let Some((p, _)) = rec.side_of {
            if self.cache.get(p).is_none() {
                // The parent went while the side trace was recorded.
                self.log(&format!("drop side trace at {where_}: its parent is gone"));
                return;
            }
        }
        self.serial += 1;
        let serial = self.serial;
        let name = match rec.side_of {
            Some((p, e)) => format!("trace{serial} (side of {} S{e}) {where_}", self.name_of(p)),
            None => format!("trace{serial} {where_}"),
        };
        if rec.returns {
            // Ends with `ret`; the loop marker after it is never reached.
            rec.trace.push(vela_ir::Inst::new(Opcode::Loop, vela_ir::Type::Void));
        } else if rec.straight {
            // A straight-line trace ends by leaving through its tail snapshot:
            // to a loop header, whose trace is entered next, or to a return.
            let tail = rec.trace.tail.take().expect("a finished recording has a tail");
            let never = rec.trace.kbool(false);
            rec.trace.guard(Opcode::GuardTrue, vela_ir::Type::Void, never, vela_ir::Ref::NONE, tail);
            rec.trace.push(vela_ir::Inst::new(Opcode::Loop, vela_ir::Type::Void));
        }
        let dump = self.settings.dump;
        if dump.ir {
            eprintln!("---- {name} recorded\n{}", rec.trace);
        }
        let entry_trace = rec.loop_id == FUNC_ENTRY && rec.side_of.is_none();
        // An entry trace that runs into a loop's trace saves more than its own
        // instructions: the loop is then entered natively on every call.
        let linked = rec.link.is_some();
        // Native calls enter the function's entry trace: this one, or the
        // root of this side trace's tree (which outlives it).
        let mut call_target = 0;
        if rec.native_calls {
            let mut p = rec.side_of;
            while let Some((pt, _)) = p {
                let Some(t) = self.cache.get(pt) else { break };
                call_target = t.code.body;
                p = t.parent;
            }
        }
        let calls: *const NativeCalls = if rec.native_calls { &*self.calls } else { std::ptr::null() };
        // SAFETY: `Vm::protos` keeps every prototype the VM compiled alive
        // as long as the VM (and this state) lives.
        let wanted_natively = unsafe { &*rec.root_proto }.call_natively.get();
        let optimized = vela_ir::passes::optimize(rec.trace).and_then(|t| {
            vela_ir::verify::verify(&t)?;
            let work = t.insts.iter().filter(|i| !i.op.is_const()).count();
            if entry_trace && work < MIN_ENTRY_TRACE && !linked && !rec.native_calls && !wanted_natively {
                // Entering and leaving a trace costs more than interpreting
                // a few instructions (recursive fib's base case ran 2x slower)
                // when the trace then only hands back to the interpreter.
                // Not so when compiled code waits to call it natively.
                return Err(TOO_SHORT.to_string());
            }
            Ok(t)
        });
        let trace = match optimized {
            Ok(t) => t,
            Err(why) => {
                let why = if why == TOO_SHORT { why } else { format!("compile: {why}") };
                if self.serial == serial {
                    self.serial -= 1;
                }
                self.abort_any(rec.side_of, key, &why, slot, where_);
                return;
            }
        };
        let counters: Counters = (0..=trace.snaps.len()).map(|_| Cell::new(0)).collect();
        let links: Links = (0..trace.snaps.len()).map(|_| Cell::new(0)).collect();
        // Root loop traces stop for a look now and then (`discard_if_failing`).
        let checkpoint = rec.side_of.is_none() && !rec.straight;
        // The boxes move into the pending entry and then the trace's record;
        // their heap memory, whose address the code keeps, does not move.
        let linkage = backend::Linkage {
            serial,
            counters: counters.as_ptr(),
            links: links.as_ptr(),
            checkpoint,
            calls,
            call_target,
        };
        // What the trace assumes must be watched while it compiles, so that
        // a change in the meantime is noticed (`pending_stale`).
        for d in &rec.deps {
            self.watch(*d);
        }
        if let Some((p, e)) = rec.side_of {
            if let Some(parent) = self.cache.get_mut(p) {
                parent.exits[e as usize].compiling = true;
            }
        }
        let id = serial as u64;
        self.pending.push(Pending {
            id,
            serial,
            name: name.clone(),
            where_: where_.to_string(),
            side_of: rec.side_of,
            root_proto: rec.root_proto,
            loop_id: rec.loop_id,
            header_pc: rec.header_pc,
            link: rec.link,
            straight: rec.straight,
            deps: rec.deps,
            roots: rec.roots,
            linkage: Some((counters, links)),
            stale: false,
        });
        self.compiler.submit(Job { id, trace, name, linkage, keep_ir: dump.llvm || dump.asm, merges: Vec::new() });
        if !self.compiler.is_background() {
            self.install_finished();
        }
    }

    /// Whether compiled traces (or recompiles with merged side traces) are
    /// waiting to be attached or are still compiling.
    #[inline]
    pub fn compiling_any(&self) -> bool {
        !self.pending.is_empty() || !self.merging.is_empty()
    }

    /// Attaches every trace the compiler has finished since the last call.
    /// Call only when no trace is running: attaching may evict traces.
    pub fn install_finished(&mut self) {
        while let Some(done) = self.compiler.finished() {
            self.stats.compiles += 1;
            self.stats.compile_total_ms += done.ms + done.llvm_init_ms.unwrap_or(0.0);
            if done.id & MERGE_JOB != 0 {
                self.install_merge(done);
            } else {
                self.install(done);
            }
        }
    }

    /// Attaches a compiled trace to its loop (a root trace) or to its
    /// parent's exit (a side trace), unless what it was recorded under has
    /// changed while it compiled.
    fn install(&mut self, done: Done) {
        let Some(at) = self.pending.iter().position(|p| p.id == done.id) else { return };
        let mut p = self.pending.swap_remove(at);
        if let Some(ms) = done.llvm_init_ms {
            self.stats.llvm_init_ms.get_or_insert(ms);
            self.stats.first_compile_ms.get_or_insert(done.ms);
        }
        if self.compiler.is_background() {
            self.stats.background += 1;
        }
        let where_ = p.where_.as_str();
        let key = (p.root_proto as usize, p.loop_id);
        // SAFETY: `Vm::protos` keeps every prototype the VM compiled alive
        // as long as the VM (and with it this state) lives.
        let slot = hot_slot(unsafe { &*p.root_proto }, p.loop_id);
        if let Some((pt, e)) = p.side_of {
            if let Some(parent) = self.cache.get_mut(pt) {
                parent.exits[e as usize].compiling = false;
            }
        }
        let code = match done.code {
            Ok(code) => code,
            Err(why) => {
                let why = format!("compile: {why}");
                self.abort_any(p.side_of, key, &why, slot, where_);
                return;
            }
        };
        let trace = done.trace;
        let gone = match p.side_of {
            Some((pt, _)) => self.cache.get(pt).is_none().then_some("its parent is gone"),
            None if slot.blacklisted.get() => Some("its loop was blacklisted"),
            None => None,
        };
        if let Some(why) = p.stale.then_some("an assumption broke while it compiled").or(gone) {
            self.stats.dropped += 1;
            self.log(&format!("drop {}: {why}", p.name));
            if p.side_of.is_none() && !slot.blacklisted.get() {
                // Count towards a new recording under the new facts.
                slot.trace.set(None);
                slot.armed.set(false);
                slot.countdown.set(0);
            }
            return;
        }
        let dump = self.settings.dump;
        let name = std::mem::take(&mut p.name);
        if dump.ir {
            eprintln!("---- {name} optimised\n{trace}");
        }
        if dump.llvm {
            eprintln!("---- {name} llvm\n{}", code.llvm_ir());
        }
        if dump.asm {
            eprintln!("---- {name} asm\n{}", code.asm());
        }
        let linkage = p.linkage.take().expect("made with the job");
        let mut record = TraceRecord::new(name, code, &trace, linkage, std::mem::take(&mut p.roots), done.ms);
        record.serial = p.serial;
        record.parent = p.side_of;
        record.root_proto = p.root_proto;
        record.loop_id = p.loop_id;
        record.header_pc = p.header_pc;
        record.link = p.link;
        record.straight = p.straight;
        record.deps = std::mem::take(&mut p.deps);
        record.first_compile = done.llvm_init_ms.is_some();
        // A native call's snapshot is taken when there is no room for
        // another native level: the interpreter makes that call, and a side
        // trace from there would only try the same call again.
        for i in trace.insts.iter().filter(|i| i.op.is_native_call()) {
            record.exits[i.snap.0 as usize].blacklisted = true;
        }
        record.ir = trace;
        // A side trace's ancestors stay: it is reached only through them.
        let mut keep = Vec::new();
        let mut up = p.side_of;
        while let Some((pt, _)) = up {
            keep.push(pt);
            up = self.cache.get(pt).and_then(|t| t.parent);
        }
        let (id, evicted) = match self.cache.insert(record, &keep) {
            Ok(x) => x,
            Err(evicted) => {
                self.unhook_evicted(evicted);
                let why = "trace larger than the code cache";
                self.abort_any(p.side_of, key, why, slot, where_);
                return;
            }
        };
        self.serials.insert(p.serial, id);
        let t = self.cache.get(id).expect("just inserted");
        self.max_extent = self.max_extent.max(t.extent);
        self.max_frames = self.max_frames.max(t.max_frames);
        self.unhook_evicted(evicted);
        for d in self.cache.get(id).expect("just inserted").deps.clone() {
            self.dependents.entry(d).or_default().push(id);
            self.watch(d);
        }
        match p.side_of {
            Some((pt, e)) => {
                if let Some(parent) = self.cache.get_mut(pt) {
                    parent.exits[e as usize].side = Some(id);
                }
            }
            None => {
                slot.trace.set(Some(id));
                slot.countdown.set(1);
                if p.loop_id == FUNC_ENTRY {
                    // SAFETY: `Vm::protos` keeps every prototype the VM
                    // compiled alive as long as the VM (and this state) lives.
                    let proto = unsafe { &*p.root_proto };
                    proto.entry_body.set(self.cache.get(id).expect("live").code.body);
                }
            }
        }
        self.stats.compiled += 1;
        self.log(&format!("compiled {where_} ({} IR instructions)", self.cache.get(id).expect("live").ir.len()));
    }

    /// At a checkpoint of root trace `root`: merges the first of its side
    /// traces that has been entered `hot_merge` times and not tried yet.
    pub fn merge_hot_sides(&mut self, root: TraceId) {
        let hot = self.settings.hot_merge;
        let Some(r) = self.cache.get(root) else { return };
        if hot == 0 {
            return;
        }
        let candidate = r.exits.iter().enumerate().find_map(|(e, x)| {
            let s = self.cache.get(x.side?)?;
            (!x.merge_tried && s.merged_into.is_none() && s.entries() >= hot).then_some((e as u32, x.side?))
        });
        if let Some((e, side)) = candidate {
            self.cache.get_mut(root).expect("live").exits[e as usize].merge_tried = true;
            self.try_merge(root, e, side);
        }
    }

    /// How a live trace's code reaches its counters and link cells.
    fn linkage_of(t: &TraceRecord) -> backend::Linkage {
        backend::Linkage {
            serial: t.serial,
            counters: t.counters.as_ptr(),
            links: t.links.as_ptr(),
            checkpoint: t.parent.is_none() && !t.straight,
            calls: std::ptr::null(),
            call_target: 0,
        }
    }

    /// Side trace `side` of exit `e` of `root`: if it ends back at `root`'s
    /// loop header and `vela_ir::merge` allows it, recompiles `root` with it
    /// (and the side traces merged before) inline. Until that code replaces
    /// the root's, the exit links to the side trace.
    fn try_merge(&mut self, root: TraceId, e: u32, side: TraceId) {
        let (Some(r), Some(s)) = (self.cache.get(root), self.cache.get(side)) else { return };
        let loop_root = r.parent.is_none() && !r.straight && r.loop_id != FUNC_ENTRY;
        if !loop_root || !s.straight || s.link != Some(r.loop_id) || s.root_proto != r.root_proto {
            return;
        }
        // The side traces merged before stay in the new code.
        let before = r.exits.iter().enumerate().filter_map(|(x, st)| {
            let t = st.side?;
            self.cache.get(t)?.merged_into.map(|_| (x as u32, t))
        });
        let all: Vec<(u32, TraceId)> = before.chain([(e, side)]).collect();
        let mut merges = Vec::with_capacity(all.len());
        for &(exit, t) in &all {
            let Some(st) = self.cache.get(t) else { return };
            match vela_ir::merge::plan(&r.ir, SnapId(exit), &st.ir) {
                Ok(plan) => merges.push((exit, t, plan)),
                Err(why) => {
                    self.log(&format!("not merging {} into {}: {why}", st.name, r.name));
                    return;
                }
            }
        }
        self.serial_merges += 1;
        let id = MERGE_JOB | self.serial_merges;
        let jobs = merges
            .iter()
            .map(|(exit, t, plan)| {
                let st = self.cache.get(*t).expect("checked above");
                backend::Merge {
                    exit: SnapId(*exit),
                    side: st.ir.clone(),
                    linkage: Self::linkage_of(st),
                    plan: plan.clone(),
                }
            })
            .collect();
        let dump = self.settings.dump;
        let name = r.name.clone();
        self.log(&format!("merge {} into {}", s.name, r.name));
        let job = Job {
            id,
            trace: r.ir.clone(),
            name,
            linkage: Self::linkage_of(r),
            keep_ir: dump.llvm || dump.asm,
            merges: jobs,
        };
        let merged = merges.iter().map(|(exit, t, _)| (*exit, *t)).collect();
        self.merging.push(PendingMerge { id, root, root_serial: r.serial, merged });
        self.compiler.submit(job);
        if !self.compiler.is_background() {
            self.install_finished();
        }
    }

    /// Puts a root's code with merged side traces in place of its old code,
    /// if the root and those side traces are all still there.
    fn install_merge(&mut self, done: Done) {
        let Some(at) = self.merging.iter().position(|p| p.id == done.id) else { return };
        let p = self.merging.swap_remove(at);
        self.stats.merge_ms.push(done.ms);
        let live = |t: TraceId| self.cache.get(t).is_some();
        let same_root = self.cache.get(p.root).is_some_and(|r| r.serial == p.root_serial);
        if !same_root || !p.merged.iter().all(|&(_, t)| live(t)) {
            self.stats.dropped += 1;
            return;
        }
        let code = match done.code {
            Ok(code) => code,
            Err(why) => {
                self.log(&format!("merge failed: {why}"));
                return;
            }
        };
        let dump = self.settings.dump;
        let name = self.cache.get(p.root).expect("live").name.clone();
        if dump.llvm {
            eprintln!("---- {name} with merged side traces llvm\n{}", code.llvm_ir());
        }
        if dump.asm {
            eprintln!("---- {name} with merged side traces asm\n{}", code.asm());
        }
        let body = code.body;
        let Some(old) = self.cache.replace_code(p.root, code) else {
            self.log(&format!("not merging into {name}: the code cache is full"));
            return;
        };
        // Links into the root now jump into the new code; the old is freed.
        let from: Vec<(TraceId, u32)> = self.cache.get(p.root).expect("live").linked_from.clone();
        for (f, e) in from {
            if let Some(f) = self.cache.get(f) {
                f.link(e as usize, body);
            }
        }
        drop(old);
        for &(_, t) in &p.merged {
            if let Some(s) = self.cache.get_mut(t) {
                if s.merged_into.is_none() {
                    self.stats.merged += 1;
                }
                s.merged_into = Some(p.root);
            }
        }
        self.log(&format!("merged side traces into {name}"));
    }

    /// Makes writes to what `d` names reach `global_written`.
    fn watch(&mut self, d: Dep) {
        if let Dep::Global(g) = d {
            if self.watched.len() <= g as usize {
                self.watched.resize(g as usize + 1, false);
            }
            self.watched.set(g as usize, true);
        }
    }

    fn unhook_evicted(&mut self, evicted: Vec<TraceRecord>) {
        for t in evicted {
            self.log(&format!("evict {}", t.name));
            self.forget(&t);
            self.count_eviction(&t);
        }
    }

    /// A cache too small for the working set would evict and recompile the
    /// same traces forever: a loop whose root trace was evicted too often
    /// is blacklisted, and an evicted side trace counts as a failed
    /// recording of its exit.
    fn count_eviction(&mut self, t: &TraceRecord) {
        match t.parent {
            None => {
                let n = {
                    let n = self.evictions.entry((t.root_proto as usize, t.loop_id)).or_default();
                    *n += 1;
                    *n
                };
                if n >= MAX_EVICTIONS {
                    // SAFETY: `Vm::protos` keeps every prototype the VM
                    // compiled alive as long as the VM (and this state) lives.
                    let slot = hot_slot(unsafe { &*t.root_proto }, t.loop_id);
                    self.blacklist(slot, &format!("{} (evicted {n} times)", t.name));
                }
            }
            Some((p, e)) => {
                let max_aborts = self.settings.max_aborts;
                if let Some(parent) = self.cache.get_mut(p) {
                    let exit = &mut parent.exits[e as usize];
                    exit.aborts += 1;
                    exit.blacklisted |= exit.aborts >= max_aborts;
                }
            }
        }
    }

    /// Bookkeeping after trace `t` left the cache: its dependencies go. Loop
    /// slots and exits still naming it find out on their next lookup.
    fn forget(&mut self, t: &TraceRecord) {
        self.serials.remove(&t.serial);
        if t.parent.is_none() && t.loop_id == FUNC_ENTRY {
            // SAFETY: as in `install`, the prototype lives as long as the VM.
            let proto = unsafe { &*t.root_proto };
            if proto.entry_body.get() == t.code.body {
                // Native callers now exit at the call and the interpreter makes it.
                proto.entry_body.set(0);
            }
        }
        for &(from, e) in &t.linked_from {
            if let Some(f) = self.cache.get(from) {
                f.links[e as usize].set(0);
            }
        }
        for d in &t.deps {
            if let Some(v) = self.dependents.get_mut(d) {
                v.retain(|id| self.cache.get(*id).is_some());
            }
        }
    }

    /// A live side trace grown from another exit of trace `t` that resumes
    /// where exit `exit` does (same pc, in the root frame). A side trace
    /// starts from the interpreter state at its pc, reading every slot it
    /// uses from the stack behind a type guard, so it serves any exit that
    /// resumes there; and copies of one guard (in the peeled iteration and
    /// in the loop body) fail alike: nbody's inner loop ends through both,
    /// and its second side trace was a second compile of the same code.
    pub fn sibling_side(&self, t: TraceId, exit: usize) -> Option<TraceId> {
        let rec = self.cache.get(t)?;
        let pc = rec.snaps[exit].pc;
        rec.exits.iter().enumerate().find_map(|(e, x)| {
            let s = &rec.snaps[e];
            let side = x.side.filter(|&id| self.cache.get(id).is_some())?;
            (e != exit && s.pc == pc && s.frames.is_empty() && !s.gc).then_some(side)
        })
    }

    /// Makes exit `e` of `t` run side trace `side`, grown from a sibling
    /// exit (`sibling_side`). `side` stays a child of that exit: it goes
    /// with `t`'s tree, and when it goes, the link is cleared (`forget`)
    /// and the stale id found on the next lookup.
    pub fn adopt_side(&mut self, t: TraceId, e: u32, side: TraceId) {
        let Some(rec) = self.cache.get_mut(t) else { return };
        rec.exits[e as usize].side = Some(side);
        self.stats.shared_sides += 1;
        self.log(&format!("{} exit S{e} shares side trace {}", self.name_of(t), self.name_of(side)));
        self.link(t, e, side);
    }

    /// Makes exit `e` of `from` jump straight into `to` from now on.
    pub fn link(&mut self, from: TraceId, e: u32, to: TraceId) {
        let Some(body) = self.cache.get(to).map(|t| t.code.body) else { return };
        let Some(f) = self.cache.get(from) else { return };
        f.link(e as usize, body);
        self.stats.patched_links += 1;
        self.cache.get_mut(to).expect("live").linked_from.push((from, e));
    }

    /// Whether writing global `g` must go through `global_written`.
    #[inline(always)]
    pub fn watches_global(&self, g: u16) -> bool {
        self.watched.get(g as usize).is_some_and(|b| *b)
    }

    /// Global `g` was written: invalidate every trace that baked in its old
    /// value. A global that keeps changing stops being treated as a constant.
    pub fn global_written(&mut self, g: u16) {
        self.watched.set(g as usize, false);
        let n = {
            let n = self.global_changes.entry(g).or_default();
            *n += 1;
            *n
        };
        if n >= MAX_GLOBAL_CHANGES {
            if self.volatile.len() <= g as usize {
                self.volatile.resize(g as usize + 1, false);
            }
            self.volatile.set(g as usize, true);
        }
        self.invalidate_dep(Dep::Global(g), &format!("global #{g} changed"));
    }

    /// Struct `def`'s method `name` was replaced.
    pub fn method_replaced(&mut self, def: u32, name: u16) {
        self.invalidate_dep(Dep::Method(def, name), "method replaced");
    }

    /// Field `idx` of struct `def` was given something other than a Float
    /// after only Floats.
    pub fn field_no_longer_float(&mut self, def: u32, idx: usize) {
        self.invalidate_dep(Dep::FloatField(def, idx as u16), "a Float-only field got another kind of value");
    }

    fn invalidate_dep(&mut self, dep: Dep, why: &str) {
        for p in self.pending.iter_mut().filter(|p| p.deps.contains(&dep)) {
            p.stale = true;
        }
        let Some(ids) = self.dependents.remove(&dep) else { return };
        for id in ids {
            self.invalidate(id, why);
        }
    }

    /// Drops trace `id` with its side traces. A root trace's loop goes back
    /// to counting (and is recorded again under the new facts) unless its
    /// traces keep getting invalidated, when it is blacklisted.
    pub fn invalidate(&mut self, id: TraceId, why: &str) {
        // A merged side trace's assumptions are its root's code's too.
        let id = self.cache.merged_root(id);
        let Some(t) = self.cache.get(id) else { return };
        let (is_root, proto, loop_id) = (t.parent.is_none(), t.root_proto, t.loop_id);
        let removed = self.cache.remove_tree(id);
        for t in &removed {
            self.stats.invalidated += 1;
            self.log(&format!("invalidate {}: {why}", t.name));
            self.forget(t);
        }
        if is_root {
            // SAFETY: `Vm::protos` keeps every prototype the VM compiled
            // alive as long as the VM (and with it this state) lives.
            let slot = hot_slot(unsafe { &*proto }, loop_id);
            slot.trace.set(None);
            slot.armed.set(false);
            slot.countdown.set(0);
            let n = {
                let n = self.invalidations.entry((proto as usize, loop_id)).or_default();
                *n += 1;
                *n
            };
            if n >= MAX_INVALIDATIONS {
                let name = removed.first().map(|t| t.name.clone()).unwrap_or_default();
                self.blacklist(slot, &name);
            }
        }
    }

    /// Discards root loop trace `id` when its entries keep leaving before
    /// they reach its loop: whatever it was recorded under no longer holds
    /// (a type changed for good, say), and a new recording will see what
    /// does. Returns whether it did.
    pub fn discard_if_failing(&mut self, id: TraceId) -> bool {
        let Some(t) = self.cache.get(id) else { return false };
        if t.parent.is_some() || t.straight || t.entries() < DISCARD_AFTER {
            return false;
        }
        let early: u64 = (0..t.snaps.len()).filter(|&e| t.snaps[e].at < t.loop_at).map(|e| t.taken(e)).sum();
        let failing = early * 10 > t.entries() * 9;
        if failing {
            self.invalidate(id, "its exits keep failing before the loop");
        }
        failing
    }

    /// The `--jit-stats` report.
    pub fn report(&self) -> String {
        let mut out = String::new();
        if let Some(why) = super::libllvm::error() {
            out.push_str(&format!("jit: not compiling: {why}\n"));
        }
        let s = &self.stats;
        let sides = self.cache.iter().filter(|(_, t)| t.parent.is_some()).count();
        out.push_str(&format!(
            "jit: traces compiled {}, aborted {}, blacklisted {}, side traces {}, links {}, invalidated {}, \
             unwound {}, native calls {}, exits sharing a side trace {}\n",
            s.compiled,
            s.aborted,
            s.blacklisted,
            sides,
            self.cache.stats().hits.saturating_sub(s.interp_entries),
            s.invalidated,
            s.unwound_levels,
            self.calls.calls_made.get(),
            s.shared_sides
        ));
        let c = &self.cache.stats();
        out.push_str(&format!(
            "jit: cache hits {}, misses {}, hit rate {:.2}%, evictions {}, live traces {}, {} bytes of {}, \
             links patched {}\n",
            c.hits,
            c.misses,
            c.hit_rate(),
            c.evictions,
            self.cache.len(),
            self.cache.bytes(),
            self.cache.limit,
            s.patched_links
        ));
        let mut reasons: Vec<_> = s.abort_reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (why, n) in reasons {
            out.push_str(&format!("jit: abort reason {n} x {why}\n"));
        }
        // The first compile also builds LLVM's lazy machinery: it is shown
        // apart, and in the median only when no other trace is live.
        let live = || self.cache.iter().map(|(_, t)| t);
        let mut times: Vec<f64> = live().filter(|t| !t.first_compile).map(|t| t.compile_ms).collect();
        if times.is_empty() {
            times = live().map(|t| t.compile_ms).collect();
        }
        times.sort_by(|a, b| a.total_cmp(b));
        if !times.is_empty() {
            out.push_str(&format!(
                "jit: compile time per trace: median {:.2} ms, max {:.2} ms (the first trace {:.2} ms with LLVM's \
                 lazy set-up, LLVM start-up {:.2} ms once, loading {} included)\n",
                (times[(times.len() - 1) / 2] + times[times.len() / 2]) / 2.0,
                times[times.len() - 1],
                s.first_compile_ms.unwrap_or(0.0),
                s.llvm_init_ms.unwrap_or(0.0),
                super::libllvm::library().unwrap_or("libLLVM")
            ));
        }
        if s.compiles > 0 {
            out.push_str(&format!(
                "jit: compiling took {:.1} ms in all ({} compiles, LLVM start-up included)\n",
                s.compile_total_ms, s.compiles
            ));
        }
        if s.merged > 0 {
            let live = self.cache.iter().filter(|(_, t)| t.merged_into.is_some()).count();
            let mut ms = s.merge_ms.clone();
            ms.sort_by(|a, b| a.total_cmp(b));
            out.push_str(&format!(
                "jit: side traces merged into their root's loop {}, still merged {live}, recompiles {} (median {:.2} \
                 ms)\n",
                s.merged,
                ms.len(),
                ms.get(ms.len() / 2).copied().unwrap_or(0.0)
            ));
        }
        if s.background > 0 || s.dropped > 0 || !self.pending.is_empty() {
            out.push_str(&format!(
                "jit: compiled in the background {}, dropped (changed while compiling) {}, still compiling {}\n",
                s.background,
                s.dropped,
                self.pending.len()
            ));
        }
        let mut live: Vec<&TraceRecord> = self.cache.iter().map(|(_, t)| t).collect();
        live.sort_by_key(|t| t.serial);
        for t in live {
            let exits: u64 = (0..t.exits.len()).map(|e| t.taken(e)).sum();
            let by_snap: Vec<String> = t
                .exits
                .iter()
                .enumerate()
                .filter(|(i, _)| t.taken(*i) > 0)
                .map(|(i, e)| match e.side.and_then(|s| self.cache.get(s)) {
                    Some(side) if side.merged_into.is_some() => {
                        format!("S{i}={}->trace{} (merged)", t.taken(i), side.serial)
                    }
                    Some(side) => format!("S{i}={}->trace{}", t.taken(i), side.serial),
                    None => format!("S{i}={}", t.taken(i)),
                })
                .collect();
            out.push_str(&format!(
                "jit: {}: entries {}, exits {} [{}]\n",
                t.name,
                t.entries(),
                exits,
                by_snap.join(" ")
            ));
        }
        out
    }
}

impl TraceRecord {
    /// Times the trace was entered (from the interpreter or another trace).
    pub fn entries(&self) -> u64 {
        self.counters[0].get()
    }

    /// Times exit `e` was taken.
    pub fn taken(&self, e: usize) -> u64 {
        self.counters[e + 1].get()
    }

    /// Makes exit `e` jump straight into `target` (a live trace's body).
    pub fn link(&self, e: usize, body: usize) {
        self.links[e].set(body);
    }

    fn new(
        name: String,
        code: CompiledTrace,
        trace: &Trace,
        linkage: (Counters, Links),
        roots: Vec<Value>,
        compile_ms: f64,
    ) -> TraceRecord {
        let mut funcs = FxHashMap::default();
        let mut extent = 0usize;
        let mut max_frames = 0usize;
        for s in &trace.snaps {
            max_frames = max_frames.max(s.frames.len());
            for e in &s.entries {
                extent = extent.max(e.slot as usize + 1);
            }
            for f in &s.frames {
                let k = trace.inst(f.func);
                debug_assert_eq!(k.op, Opcode::KPtr);
                // SAFETY: the recorder made this constant from a live closure,
                // which `roots` keeps alive as long as the trace exists.
                let func = unsafe { GcRef::from_raw(k.imm as usize as *mut FuncObj) };
                let top = f.base as usize + func.get().proto.max_slots as usize;
                extent = extent.max(top);
                funcs.insert(f.func.0, func);
            }
        }
        TraceRecord {
            serial: 0,
            name,
            code,
            exits: vec![ExitState::default(); trace.snaps.len()],
            parent: None,
            root_proto: std::ptr::null(),
            loop_id: 0,
            header_pc: 0,
            link: None,
            straight: false,
            deps: Vec::new(),
            snaps: trace.snaps.clone(),
            funcs,
            roots,
            counters: linkage.0,
            links: linkage.1,
            linked_from: Vec::new(),
            seen_entries: 0,
            loop_at: trace.insts.iter().position(|i| i.op == Opcode::Loop).map_or(u32::MAX, |p| p as u32),
            last_used: 0,
            extent,
            max_frames,
            compile_ms,
            first_compile: false,
            ir: Trace::new(),
            merged_into: None,
        }
    }
}

/// Dumps print as traces are made, in order: they compile on the VM's thread.
fn dump_any(d: DumpFlags) -> bool {
    d.ir || d.llvm || d.asm
}

/// `proto`'s profiling slot `id` (a loop, or `FUNC_ENTRY`).
pub fn hot_slot(proto: &Proto, id: u16) -> &HotSlot {
    proto.hot_slot(id)
}
