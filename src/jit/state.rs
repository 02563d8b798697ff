//! The JIT's state inside a `Vm`: settings, the recorder in progress, the
//! compiled traces and their statistics. Owns trace lifetimes and the
//! per-loop bookkeeping (abort counts, blacklisting); must not interpret.

use std::time::Instant;

use rustc_hash::FxHashMap;
use vela_ir::{Opcode, Snapshot, Trace};

use super::backend::{self, CompiledTrace};
use super::recorder::{Recorder, INNER_LOOP_NOT_COMPILED};
use crate::bytecode::proto::{LoopSlot, BLACKLISTED};
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
    /// IR instructions before a recording is abandoned.
    pub max_trace: usize,
    /// Aborted recordings before a loop is blacklisted.
    pub max_aborts: u32,
    /// Times an exit is taken before a side trace is recorded from it.
    pub hot_exit: u32,
    pub verbose: bool,
    pub dump: DumpFlags,
}

/// One compiled trace.
pub struct TraceRecord {
    pub name: String,
    pub code: CompiledTrace,
    pub snaps: Vec<Snapshot>,
    /// The closure of each inlined frame, by snapshot-frame `func` ref.
    pub funcs: FxHashMap<u32, GcRef<FuncObj>>,
    /// Heap objects the machine code refers to by address.
    pub roots: Vec<Value>,
    /// Times each exit (snapshot) was taken.
    pub exits: Vec<u64>,
    /// Per exit: 0, the id of the side trace attached to it, or
    /// `BLACKLISTED` when recording one kept failing.
    pub side: Vec<u32>,
    /// Per exit: failed side-trace recordings.
    pub side_aborts: Vec<u32>,
    /// For a side trace: (parent trace id, exit).
    pub parent: Option<(u32, u32)>,
    /// The loop this trace belongs to (its root's): prototype, loop id and
    /// the header's pc.
    pub root_proto: *const Proto,
    pub loop_id: u16,
    pub header_pc: usize,
    /// For a straight-line trace: the loop (id in `root_proto`) whose header
    /// it ends at.
    pub link: Option<u16>,
    pub entries: u64,
    /// Highest slot (relative to the trace base) an exit may write, plus one.
    pub extent: usize,
    /// Deepest inlining in any snapshot.
    pub max_frames: usize,
    pub compile_ms: f64,
}

#[derive(Clone, Debug, Default)]
pub struct JitStats {
    pub compiled: u64,
    pub aborted: u64,
    pub blacklisted: u64,
    /// Abort reason → count.
    pub abort_reasons: FxHashMap<String, u64>,
    /// One-time LLVM start-up, paid by the first trace (not in its compile time).
    pub llvm_init_ms: Option<f64>,
}

pub struct JitState {
    pub settings: JitSettings,
    pub recorder: Option<Box<Recorder>>,
    /// Trace `id` is `traces[id - 1]`.
    pub traces: Vec<TraceRecord>,
    /// (proto address, loop id) → aborted recordings.
    pub aborts: FxHashMap<(usize, u16), u32>,
    pub stats: JitStats,
}

impl JitState {
    pub fn new(settings: JitSettings) -> JitState {
        JitState {
            settings,
            recorder: None,
            traces: Vec::new(),
            aborts: FxHashMap::default(),
            stats: JitStats::default(),
        }
    }

    fn log(&self, msg: &str) {
        if self.settings.verbose {
            eprintln!("[jit] {msg}");
        }
    }

    /// Every value compiled code or the recorder holds by address.
    pub fn roots(&self) -> impl Iterator<Item = &Value> {
        self.traces.iter().flat_map(|t| t.roots.iter()).chain(self.recorder.iter().flat_map(|r| r.roots.iter()))
    }

    pub fn start_recording(&mut self, rec: Recorder, where_: &str) {
        self.log(&format!("record {where_}"));
        self.recorder = Some(Box::new(rec));
    }

    /// Gives up on a recording; blacklists the loop after repeated failures.
    pub fn abort(&mut self, key: (usize, u16), why: &str, slot: &LoopSlot, where_: &str) {
        self.stats.aborted += 1;
        *self.stats.abort_reasons.entry(why.to_string()).or_default() += 1;
        if why == INNER_LOOP_NOT_COMPILED {
            // Try again once the inner loop has a trace (or is blacklisted).
            self.log(&format!("abort {where_}: {why}"));
            return;
        }
        let n = {
            let n = self.aborts.entry(key).or_default();
            *n += 1;
            *n
        };
        self.log(&format!("abort {where_}: {why}"));
        if n >= self.settings.max_aborts {
            slot.trace.set(BLACKLISTED);
            self.stats.blacklisted += 1;
            self.log(&format!("blacklist {where_}"));
        }
    }

    /// Gives up on a side-trace recording; stops trying that exit after
    /// repeated failures.
    pub fn abort_side(&mut self, parent: u32, exit: u32, why: &str, where_: &str) {
        self.stats.aborted += 1;
        *self.stats.abort_reasons.entry(why.to_string()).or_default() += 1;
        self.log(&format!("abort side trace of trace{parent} exit S{exit} at {where_}: {why}"));
        let p = &mut self.traces[parent as usize - 1];
        let e = exit as usize;
        p.side_aborts[e] += 1;
        if p.side_aborts[e] >= self.settings.max_aborts {
            p.side[e] = BLACKLISTED;
        }
    }

    /// Optimises and compiles a finished recording and attaches it to its
    /// loop (a root trace) or to its parent's exit (a side trace).
    pub fn finish(&mut self, rec: Box<Recorder>, slot: &LoopSlot, where_: &str) {
        if self.stats.llvm_init_ms.is_none() {
            let t = Instant::now();
            // An error here resurfaces from `compile` below and aborts the trace.
            let _ = backend::warm_up();
            self.stats.llvm_init_ms = Some(t.elapsed().as_secs_f64() * 1e3);
        }
        let started = Instant::now();
        let mut rec = *rec;
        let key = (rec.root_proto as usize, rec.loop_id);
        let name = match rec.side_of {
            Some((p, e)) => format!("trace{} (side of trace{p} S{e}) {where_}", self.traces.len() + 1),
            None => format!("trace{} {where_}", self.traces.len() + 1),
        };
        if rec.link.is_some() {
            // A linking trace is straight-line: it ends by leaving through its
            // tail snapshot to a loop header, whose trace is entered next.
            let tail = rec.trace.tail.take().expect("a finished recording has a tail");
            let never = rec.trace.kbool(false);
            rec.trace.guard(Opcode::GuardTrue, vela_ir::Type::Void, never, vela_ir::Ref::NONE, tail);
            rec.trace.push(vela_ir::Inst::new(Opcode::Loop, vela_ir::Type::Void));
        }
        let dump = self.settings.dump;
        if dump.ir {
            eprintln!("---- {name} recorded\n{}", rec.trace);
        }
        let result = vela_ir::passes::optimize(rec.trace).and_then(|t| {
            vela_ir::verify::verify(&t)?;
            let code = backend::compile(&t, &name)?;
            Ok((t, code))
        });
        let (trace, code) = match result {
            Ok(x) => x,
            Err(why) => {
                let why = format!("compile: {why}");
                match rec.side_of {
                    Some((p, e)) => self.abort_side(p, e, &why, where_),
                    None => self.abort(key, &why, slot, where_),
                }
                return;
            }
        };
        if dump.ir {
            eprintln!("---- {name} optimised\n{trace}");
        }
        if dump.llvm {
            eprintln!("---- {name} llvm\n{}", code.llvm_ir());
        }
        if dump.asm {
            eprintln!("---- {name} asm\n{}", code.asm());
        }
        let mut record = TraceRecord::new(name, code, &trace, rec.roots, started.elapsed().as_secs_f64() * 1e3);
        record.parent = rec.side_of;
        record.link = rec.link;
        record.root_proto = rec.root_proto;
        record.loop_id = rec.loop_id;
        record.header_pc = rec.header_pc;
        self.traces.push(record);
        let id = self.traces.len() as u32;
        match rec.side_of {
            Some((p, e)) => self.traces[p as usize - 1].side[e as usize] = id,
            None => {
                slot.trace.set(id);
                slot.countdown.set(1);
            }
        }
        self.stats.compiled += 1;
        self.log(&format!("compiled {where_} ({} IR instructions)", trace.len()));
    }

    /// The `--jit-stats` report.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let s = &self.stats;
        let sides = self.traces.iter().filter(|t| t.parent.is_some()).count();
        out.push_str(&format!(
            "jit: traces compiled {}, aborted {}, blacklisted {}, side traces {}\n",
            s.compiled, s.aborted, s.blacklisted, sides
        ));
        let mut reasons: Vec<_> = s.abort_reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (why, n) in reasons {
            out.push_str(&format!("jit: abort reason {n} x {why}\n"));
        }
        let mut times: Vec<f64> = self.traces.iter().map(|t| t.compile_ms).collect();
        times.sort_by(|a, b| a.total_cmp(b));
        if !times.is_empty() {
            out.push_str(&format!(
                "jit: compile time per trace: median {:.2} ms, max {:.2} ms (LLVM start-up {:.2} ms, once)\n",
                times[times.len() / 2],
                times[times.len() - 1],
                s.llvm_init_ms.unwrap_or(0.0)
            ));
        }
        for t in &self.traces {
            let exits: u64 = t.exits.iter().sum();
            let by_snap: Vec<String> =
                t.exits.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| format!("S{i}={n}")).collect();
            out.push_str(&format!("jit: {}: entries {}, exits {} [{}]\n", t.name, t.entries, exits, by_snap.join(" ")));
        }
        out
    }
}

impl TraceRecord {
    fn new(name: String, code: CompiledTrace, trace: &Trace, roots: Vec<Value>, compile_ms: f64) -> TraceRecord {
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
            name,
            code,
            exits: vec![0; trace.snaps.len()],
            side: vec![0; trace.snaps.len()],
            side_aborts: vec![0; trace.snaps.len()],
            parent: None,
            root_proto: std::ptr::null(),
            loop_id: 0,
            header_pc: 0,
            link: None,
            snaps: trace.snaps.clone(),
            funcs,
            roots,
            entries: 0,
            extent,
            max_frames,
            compile_ms,
        }
    }
}

/// `proto`'s loop slot `id`.
pub fn loop_slot(proto: &Proto, id: u16) -> &LoopSlot {
    &proto.loops[id as usize]
}
