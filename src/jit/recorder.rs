//! The trace recorder: while a hot loop runs one more iteration in the
//! interpreter, turns each executed instruction, with the runtime types and
//! values it sees, into trace IR with guards and snapshots. Owns the mapping
//! from interpreter slots to SSA values; must not execute anything (the
//! interpreter does, right after each `step`).
//!
//! Slots are numbered relative to the trace's root frame base, so an inlined
//! callee's registers are simply higher slots. A guard's snapshot resumes at
//! the instruction being recorded, which the interpreter then re-executes
//! (branches and checks have no side effects before they fail).

use smallvec::SmallVec;
use std::rc::Rc;
use vela_ir::{Helper, Opcode, Ref, SnapEntry, SnapFrame, SnapId, Snapshot, Trace, Type};

use super::cache::TraceId;
use super::layout::RETURN_SLOT;
use super::state::Dep;
use crate::bytecode::proto::FUNC_ENTRY;
use crate::bytecode::{Op, Proto, Reg, UpvalDesc};
use crate::interp::Vm;
use crate::runtime::heap::GcRef;
use crate::runtime::object::{ArrayObj, ElemKind, FuncObj};
use crate::runtime::ops;
use crate::runtime::structdef::{method, TRACKED_FIELDS};
use crate::runtime::Value;

/// What the interpreter does after a recorded instruction.
pub enum Step {
    /// Execute the instruction and keep recording.
    Continue,
    /// The iteration is complete: compile the trace (do not execute this
    /// instruction in recording mode).
    Done,
    /// Give up, for the stated reason.
    Abort(String),
}

type R<T> = Result<T, String>;

fn abort<T>(why: impl Into<String>) -> R<T> {
    Err(why.into())
}

/// A native call being interpreted: the recorder skips the callee's
/// instructions until control is back in the calling frame.
#[derive(Clone, Copy)]
struct Paused {
    /// Inlining depth of the calling frame.
    depth: usize,
    /// The caller's register (relative to the root base) the result lands in.
    slot: usize,
    /// The `Call` instruction, whose value is the boxed result.
    call: Ref,
}

/// An inlined frame while recording.
struct InlineFrame {
    proto: *const Proto,
    /// Slot of the callee's base relative to the root base.
    base: usize,
}

pub struct Recorder {
    pub trace: Trace,
    /// For a side trace: the parent trace id and the exit (snapshot) it
    /// starts from. A side trace runs from that exit to the loop header.
    pub side_of: Option<(TraceId, u32)>,
    /// Set when the trace ends at a loop header other than the one it closes
    /// into: the id of that loop (in the root prototype). Such a trace is
    /// straight-line, and leaves through its tail snapshot to that header.
    pub link: Option<u16>,
    /// The trace does not close into a loop: it ends by leaving through its
    /// tail snapshot (at a linked loop header, or at a return).
    pub straight: bool,
    /// What the trace assumes beyond its guards (for invalidation).
    pub deps: Vec<Dep>,
    /// The values baked in for `deps` (global, or struct method), checked
    /// again after a native call ran uninstrumented in the interpreter.
    baked: Vec<(Dep, Value)>,
    /// Globals the trace assigns (`Opcode::GStore`). The VM makes them
    /// volatile before the trace runs, and also when the recording aborts:
    /// no trace may bake in a value compiled code changes without telling.
    pub stores_globals: SmallVec<[u16; 2]>,
    /// Struct fields (def, field) the trace may store something other than
    /// a Float to: the VM notes them (`StructDef::note_other_write`) before the
    /// trace runs, since compiled code writes fields without telling.
    pub mixed_fields: SmallVec<[(u32, u16); 2]>,
    /// The trace makes native calls (`Opcode::TCall`) of its function's
    /// entry trace.
    pub native_calls: bool,
    /// The trace ends by returning from its root frame (`Opcode::Ret`):
    /// a function-entry trace or one of its side traces.
    pub returns: bool,
    paused: Option<Paused>,
    /// Slots a native call overwrote (the callee's frame): reading one
    /// before writing it aborts, since the stack no longer holds what the
    /// trace saw on entry.
    clobbered: Vec<bool>,
    /// Loop headers recorded through (unrolled), with the count of passes.
    unrolled: SmallVec<[((usize, u16), u32); 2]>,
    /// Where the loop lives.
    pub root_proto: *const Proto,
    pub loop_id: u16,
    /// pc of the `Loop` instruction (the trace's anchor and resume point).
    pub header_pc: usize,
    /// Absolute stack index of the root frame's base.
    pub root_base: usize,
    /// `Vm::frames.len()` when recording started.
    pub root_depth: usize,
    slots: Vec<Ref>,
    modified: Vec<bool>,
    frames: SmallVec<[SnapFrame; 2]>,
    inline: Vec<InlineFrame>,
    /// Heap objects the trace refers to by address: kept alive by the GC.
    pub roots: Vec<Value>,
    max_len: usize,
    /// pc of the instruction being recorded (snapshots resume here).
    pc: usize,
    globals_addr: u64,
    /// The last snapshot taken and the trace length then, to share snapshots.
    last_snap: Option<(SnapId, usize, usize)>,
    /// The instruction just recorded allocated, at a safe point of the
    /// interpreter: the next step first emits the GC check (`gc_check`).
    gc_pending: bool,
    /// The root frame's closure, loaded from its callee slot (slot -1) for
    /// the first access to one of its upvalues.
    root_closure: Option<Ref>,
    /// Snapshots keep every slot from here up, dead or not: set while a
    /// native call's snapshot is taken, whose callee registers the call
    /// itself stores from it.
    keep_from: usize,
}

const MAX_INLINE_DEPTH: usize = 8;

/// Passes through the header of a loop without a trace before the recording
/// gives up on unrolling it.
const MAX_UNROLL: u32 = 4;

/// The abort of an outer loop whose inner loop may still get a trace to link
/// to: it does not count towards blacklisting the outer loop.
pub const INNER_LOOP_NOT_COMPILED: &str = "inner loop not compiled yet";

/// The abort of a recording that met a call it cannot inline (the function
/// has a loop, or recurses) and must call natively, when that function has
/// no entry trace yet: it may soon (it is being called often), so only
/// every few such aborts count towards blacklisting.
pub const CALLEE_NOT_COMPILED: &str = "a function to call natively has no entry trace yet";

/// `JitState::call_sites`' mark of a call that met more than one closure.
const POLYMORPHIC: usize = usize::MAX;

fn type_of(v: Value) -> R<Type> {
    Ok(match v {
        Value::Nil => Type::Nil,
        Value::Bool(_) => Type::Bool,
        Value::Int(_) => Type::Int,
        Value::Float(_) => Type::Float,
        Value::Str(_) => Type::Str,
        Value::Array(_) => Type::Array,
        Value::Map(_) => Type::Map,
        Value::Func(_) => Type::Func,
        Value::Native(_) => Type::Native,
        Value::Struct(_) => Type::Struct,
        Value::Cell(_) => Type::Cell,
        Value::Uninit => return abort("uninitialized value"),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Eq,
    Ne,
}

impl Recorder {
    pub fn new(
        root_proto: *const Proto,
        loop_id: u16,
        header_pc: usize,
        root_base: usize,
        root_depth: usize,
        max_len: usize,
        globals_addr: u64,
    ) -> Recorder {
        Recorder {
            trace: Trace::new(),
            side_of: None,
            link: None,
            straight: false,
            deps: Vec::new(),
            baked: Vec::new(),
            stores_globals: SmallVec::new(),
            mixed_fields: SmallVec::new(),
            native_calls: false,
            returns: false,
            paused: None,
            clobbered: Vec::new(),
            unrolled: SmallVec::new(),
            root_proto,
            loop_id,
            header_pc,
            root_base,
            root_depth,
            slots: Vec::new(),
            modified: Vec::new(),
            frames: SmallVec::new(),
            inline: Vec::new(),
            roots: Vec::new(),
            max_len,
            pc: header_pc,
            globals_addr,
            last_snap: None,
            gc_pending: false,
            keep_from: usize::MAX,
            root_closure: None,
        }
    }

    // ---- slots and snapshots ----

    fn ensure(&mut self, slot: usize) {
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, Ref::NONE);
            self.modified.resize(slot + 1, false);
            self.clobbered.resize(slot + 1, false);
        }
    }

    fn set(&mut self, slot: usize, r: Ref) {
        self.ensure(slot);
        self.slots[slot] = r;
        self.modified[slot] = true;
        self.clobbered[slot] = false;
    }

    /// The current slot state as a snapshot resuming at `self.pc`.
    fn snapshot(&mut self) -> SnapId {
        let len = self.trace.len();
        if let Some((id, at, pc)) = self.last_snap {
            if at == len && pc == self.pc {
                return id;
            }
        }
        let entries: Vec<SnapEntry> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(i, r)| self.modified[*i] && !r.is_none() && self.needs_restoring(*i))
            .map(|(i, r)| SnapEntry { slot: i as i32, value: *r })
            .collect();
        let snap = Snapshot { pc: self.pc as u32, entries, frames: self.frames.clone(), at: len as u32, gc: false };
        let id = self.trace.add_snapshot(snap);
        self.last_snap = Some((id, len, self.pc));
        id
    }

    /// Whether an exit resuming at `self.pc` must write `slot`. A register
    /// of the root frame that no path from its resume pc reads before
    /// writing (`Proto::liveness`) may keep what it held when the trace was
    /// entered: a valid value, since the frame was live then and nothing
    /// collects while compiled code runs. Every other slot is written: an
    /// inlined frame's registers, and the callee region of an inlined or
    /// native call (`keep_from`), lie above the frame the trace entered,
    /// where the stack may hold stale pointers the GC must never see.
    fn needs_restoring(&self, slot: usize) -> bool {
        // SAFETY: the VM keeps the prototypes of the code it runs alive for
        // the whole recording.
        let root = unsafe { &*self.root_proto };
        if slot >= self.keep_from || slot >= root.max_slots as usize {
            return true;
        }
        let pc = match self.frames.first() {
            None => self.pc,
            // The root frame waits in its call, whose closure and arguments
            // sit at the callee's base - 1 and up.
            Some(f) if slot + 1 >= f.base as usize => return true,
            Some(f) => f.ret_pc as usize,
        };
        root.liveness().is_live(pc, slot)
    }

    /// Calls runtime helper `h` with `args`; one that can fail is a guard
    /// exiting before the instruction being recorded (it has done nothing
    /// then, and the interpreter redoes the operation and raises its error).
    fn call(&mut self, h: Helper, args: &[Ref]) -> Ref {
        let op = if h.can_fail() { Opcode::CallG } else { Opcode::Call };
        let mut inst = vela_ir::Inst::new(op, h.result());
        inst.imm = h as i64;
        for (f, &r) in [&mut inst.a, &mut inst.b, &mut inst.c].into_iter().zip(args) {
            *f = r;
        }
        if h.can_fail() {
            inst.snap = self.snapshot();
        }
        self.trace.push(inst)
    }

    /// After an allocation, at the interpreter's safe point behind it: exit
    /// through a GC snapshot (resuming after the allocating instruction, with
    /// the new object in its slot) when the heap wants a collection.
    fn gc_check(&mut self) {
        let wanted = self.call(Helper::GcWanted, &[]);
        self.last_snap = None;
        let snap = self.snapshot();
        self.trace.snaps[snap.0 as usize].gc = true;
        self.last_snap = None;
        self.trace.guard(Opcode::GuardFalse, Type::Void, wanted, Ref::NONE, snap);
    }

    /// Whether `r` is the result of a call of helper `h` in this trace.
    fn made_here(&self, r: Ref, h: Helper) -> bool {
        self.trace.insts.get(r.index()).is_some_and(|i| i.op.is_helper_call() && i.helper() == Some(h))
    }

    /// The arguments of a helper taking `Args`: the values of `refs` boxed,
    /// chained with `carg`.
    fn arg_list(&mut self, refs: &[Ref]) -> Ref {
        let mut list = self.boxed(refs[0]);
        for &r in &refs[1..] {
            let v = self.boxed(r);
            list = self.trace.emit(Opcode::CArg, Type::Void, list, v);
        }
        list
    }

    fn guard(&mut self, op: Opcode, ty: Type, a: Ref, b: Ref) -> Ref {
        let snap = self.snapshot();
        self.trace.guard(op, ty, a, b, snap)
    }

    /// The SSA value of slot `slot`, loading (and type-guarding) it on first use.
    fn get(&mut self, slot: usize, v: Value) -> R<Ref> {
        self.ensure(slot);
        let r = self.slots[slot];
        if !r.is_none() {
            return Ok(r);
        }
        if self.clobbered[slot] {
            return abort("read of a register a recursive call overwrote");
        }
        let ty = type_of(v)?;
        let snap = self.snapshot();
        let mut inst = vela_ir::Inst::new(Opcode::SLoad, ty);
        inst.imm = slot as i64;
        inst.snap = snap;
        let r = self.trace.push(inst);
        self.slots[slot] = r;
        Ok(r)
    }

    /// A constant for a runtime value.
    fn konst(&mut self, v: Value) -> R<Ref> {
        Ok(match v {
            Value::Nil => self.trace.knil(),
            Value::Bool(b) => self.trace.kbool(b),
            Value::Int(i) => self.trace.kint(i),
            Value::Float(f) => self.trace.kfloat(f),
            Value::Str(s) => self.kptr(Type::Str, s.as_ptr() as u64, v),
            Value::Func(f) => self.kptr(Type::Func, f.as_ptr() as u64, v),
            // An index into the VM's native table, not an address.
            Value::Native(i) => self.trace.kptr(Type::Native, i as u64),
            _ => return abort(format!("constant of kind {}", v.kind_name())),
        })
    }

    fn kptr(&mut self, ty: Type, addr: u64, v: Value) -> Ref {
        self.roots.push(v);
        self.trace.kptr(ty, addr)
    }

    /// A boxed value converted to the type it has now (guarded).
    fn unbox(&mut self, boxed: Ref, actual: Value) -> R<Ref> {
        let ty = type_of(actual)?;
        Ok(self.guard(Opcode::Unbox, ty, boxed, Ref::NONE))
    }

    fn as_float(&mut self, r: Ref) -> Ref {
        match self.trace.ty(r) {
            Type::Int => self.trace.emit(Opcode::IToF, Type::Float, r, Ref::NONE),
            _ => r,
        }
    }

    /// Float `r` (whose value now is `v`), or Int `r` as a Float for a
    /// comparison with one. The interpreter compares an Int with a Float
    /// exactly; converting first gives the same answer when the Int is
    /// exactly representable (|i| <= 2^53), which a constant is checked for
    /// here and a variable by a guard (failing, the interpreter redoes the
    /// comparison exactly).
    fn exact_float(&mut self, r: Ref, v: Value) -> R<Ref> {
        const EXACT: i64 = 1 << 53;
        let Value::Int(i) = v else { return Ok(r) };
        if !(-EXACT..=EXACT).contains(&i) {
            return abort("int/float comparison with an int beyond 2^53");
        }
        let k = *self.trace.inst(r);
        if k.op == Opcode::KInt {
            return Ok(self.trace.kfloat(k.imm as f64));
        }
        let (lo, hi) = (self.trace.kint(-EXACT), self.trace.kint(EXACT));
        let above = self.trace.emit(Opcode::ILe, Type::Bool, lo, r);
        self.guard(Opcode::GuardTrue, Type::Void, above, Ref::NONE);
        let below = self.trace.emit(Opcode::ILe, Type::Bool, r, hi);
        self.guard(Opcode::GuardTrue, Type::Void, below, Ref::NONE);
        Ok(self.trace.emit(Opcode::IToF, Type::Float, r, Ref::NONE))
    }

    /// Stores `v` into field `idx` of struct `o`, an instance of `def`:
    /// boxed, or just its payload (`untagged`: the field is known to hold
    /// a Float already, `v` is a Float, the trace depends on it staying
    /// so). A value that may not be a Float is noted (`mixed_fields`).
    fn fstore(&mut self, o: Ref, def: u32, idx: usize, v: Ref, untagged: bool) {
        let float = self.trace.ty(v) == Type::Float;
        if !float && idx < TRACKED_FIELDS && !self.mixed_fields.contains(&(def, idx as u16)) {
            self.mixed_fields.push((def, idx as u16));
        }
        let stored = if float && untagged {
            self.depend(Dep::FloatField(def, idx as u16));
            v
        } else {
            self.boxed(v)
        };
        let mut inst = vela_ir::Inst::new(Opcode::FStore, Type::Void);
        inst.a = o;
        inst.imm = idx as i64;
        inst.c = stored;
        self.trace.push(inst);
    }

    /// The value in cell `cell` (a captured variable), whose value now is `now`.
    fn cell_load(&mut self, cell: Ref, now: Value) -> R<Ref> {
        let boxed = self.trace.emit(Opcode::CLoad, Type::Value, cell, Ref::NONE);
        self.unbox(boxed, now)
    }

    /// Stores `v`, boxed, into cell `cell`.
    fn cell_store(&mut self, cell: Ref, v: Ref) {
        let boxed = self.boxed(v);
        let mut inst = vela_ir::Inst::new(Opcode::CStore, Type::Void);
        inst.a = cell;
        inst.c = boxed;
        self.trace.push(inst);
    }

    /// The cell of upvalue `u` of the running closure. In an inlined frame,
    /// a constant: the call guarded the closure's identity, so its cells
    /// are fixed. The frame the trace entered may belong to any closure of
    /// its prototype: there the cell is loaded (`upval`) from the closure in
    /// the frame's callee slot (slot -1, which a native call fills too).
    fn upval(&mut self, vm: &Vm, depth: usize, u: u8) -> R<Ref> {
        let func = vm.frames.last().expect("frame").func;
        let Some(&cell) = func.get().upvals().get(u as usize) else { return abort("no such upvalue") };
        if depth > 0 {
            return Ok(self.kptr(Type::Cell, cell.as_ptr() as u64, Value::Cell(cell)));
        }
        let closure = self.running_closure(vm, depth);
        let mut inst = vela_ir::Inst::new(Opcode::Upval, Type::Cell);
        inst.a = closure;
        inst.imm = u as i64;
        Ok(self.trace.push(inst))
    }

    /// The closure the current frame runs: in an inlined frame a constant
    /// (the call guarded its identity), in the frame the trace entered the
    /// closure in its callee slot (slot -1, which a native call fills too),
    /// loaded once.
    fn running_closure(&mut self, vm: &Vm, depth: usize) -> Ref {
        let func = vm.frames.last().expect("frame").func;
        if depth > 0 {
            return self.kptr(Type::Func, func.as_ptr() as u64, Value::Func(func));
        }
        if let Some(r) = self.root_closure {
            return r;
        }
        let mut inst = vela_ir::Inst::new(Opcode::SLoad, Type::Func);
        inst.imm = RETURN_SLOT;
        inst.snap = self.snapshot();
        let r = self.trace.push(inst);
        self.root_closure = Some(r);
        r
    }

    fn boxed(&mut self, r: Ref) -> Ref {
        if self.trace.ty(r) == Type::Value {
            r
        } else {
            self.trace.emit(Opcode::Box, Type::Value, r, Ref::NONE)
        }
    }

    // ---- operations ----

    fn arith(&mut self, op: Arith, x: Ref, xv: Value, y: Ref, yv: Value) -> R<Ref> {
        match (xv, yv) {
            (Value::Int(_), Value::Int(yi)) => {
                let ir = match op {
                    Arith::Add => return Ok(self.guard(Opcode::AddOv, Type::Int, x, y)),
                    Arith::Sub => return Ok(self.guard(Opcode::SubOv, Type::Int, x, y)),
                    Arith::Mul => return Ok(self.guard(Opcode::MulOv, Type::Int, x, y)),
                    Arith::Div => Opcode::Div,
                    Arith::Rem => Opcode::Rem,
                };
                // A constant positive divisor needs no checks; otherwise guard
                // the two error cases (zero, and -1 which may overflow) so the
                // interpreter raises them.
                if yi == -1 || yi == 0 {
                    // The guards below would fail on every entry.
                    return abort("division by -1 or 0");
                }
                let yk = self.trace.inst(y).op == Opcode::KInt;
                if !(yk && yi > 0) {
                    let zero = self.trace.kint(0);
                    let c = self.trace.emit(Opcode::INe, Type::Bool, y, zero);
                    self.guard(Opcode::GuardTrue, Type::Void, c, Ref::NONE);
                    let m1 = self.trace.kint(-1);
                    let c = self.trace.emit(Opcode::INe, Type::Bool, y, m1);
                    self.guard(Opcode::GuardTrue, Type::Void, c, Ref::NONE);
                }
                Ok(self.trace.emit(ir, Type::Int, x, y))
            }
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                let (fx, fy) = (self.as_float(x), self.as_float(y));
                let ir = match op {
                    Arith::Add => Opcode::FAdd,
                    Arith::Sub => Opcode::FSub,
                    Arith::Mul => Opcode::FMul,
                    Arith::Div => Opcode::FDiv,
                    Arith::Rem => Opcode::FRem,
                };
                Ok(self.trace.emit(ir, Type::Float, fx, fy))
            }
            _ => abort(format!("arithmetic on {} and {}", xv.kind_name(), yv.kind_name())),
        }
    }

    /// A Bool-typed comparison, or a constant when the types decide it.
    fn compare(&mut self, cmp: Cmp, x: Ref, xv: Value, y: Ref, yv: Value) -> R<Ref> {
        let ir = match (xv, yv) {
            (Value::Int(_), Value::Int(_)) => match cmp {
                Cmp::Lt => Opcode::ILt,
                Cmp::Le => Opcode::ILe,
                Cmp::Eq => Opcode::IEq,
                Cmp::Ne => Opcode::INe,
            },
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                let (x, y) = (self.exact_float(x, xv)?, self.exact_float(y, yv)?);
                let op = match cmp {
                    Cmp::Lt => Opcode::FLt,
                    Cmp::Le => Opcode::FLe,
                    Cmp::Eq => Opcode::FEq,
                    Cmp::Ne => Opcode::FNe,
                };
                return Ok(self.trace.emit(op, Type::Bool, x, y));
            }
            _ if matches!(cmp, Cmp::Eq | Cmp::Ne) => {
                let same_kind = xv.tag() == yv.tag();
                match (xv, yv) {
                    (Value::Nil, Value::Nil) => return Ok(self.trace.kbool(cmp == Cmp::Eq)),
                    (Value::Bool(_), Value::Bool(_))
                    | (Value::Array(_), Value::Array(_))
                    | (Value::Map(_), Value::Map(_))
                    | (Value::Func(_), Value::Func(_))
                    | (Value::Struct(_), Value::Struct(_))
                    | (Value::Native(_), Value::Native(_)) => {
                        let op = if cmp == Cmp::Eq { Opcode::PEq } else { Opcode::PNe };
                        return Ok(self.trace.emit(op, Type::Bool, x, y));
                    }
                    _ if !same_kind => return Ok(self.trace.kbool(cmp == Cmp::Ne)),
                    _ => return abort(format!("equality on {}", xv.kind_name())),
                }
            }
            _ => return abort(format!("ordering {} and {}", xv.kind_name(), yv.kind_name())),
        };
        Ok(self.trace.emit(ir, Type::Bool, x, y))
    }

    /// Guards that the recorded path is taken again: `c` had value `taken`.
    fn branch(&mut self, c: Ref, taken: bool) {
        if self.trace.inst(c).op == Opcode::KBool {
            return;
        }
        let op = if taken { Opcode::GuardTrue } else { Opcode::GuardFalse };
        self.guard(op, Type::Void, c, Ref::NONE);
    }

    /// The truthiness of a slot value as a guard-able fact.
    fn truthy(&mut self, r: Ref, v: Value) -> R<Option<Ref>> {
        Ok(match v {
            Value::Bool(_) => Some(r),
            _ => None, // decided by the type, already guarded
        })
    }

    /// Guards that array `arr` still has `kind` (its kind now): element
    /// loads and stores are compiled for one way of storing elements.
    fn kind_guard(&mut self, arr: Ref, kind: ElemKind) {
        let k = self.trace.emit(Opcode::AKind, Type::Int, arr, Ref::NONE);
        let want = self.trace.kint(kind as i64);
        let c = self.trace.emit(Opcode::IEq, Type::Bool, k, want);
        self.guard(Opcode::GuardTrue, Type::Void, c, Ref::NONE);
    }

    /// Element `idx` of array `arr` (bounds already guarded), whose value
    /// now is `elem`: unboxed, as the array stores it or by a type guard.
    fn element(&mut self, a: GcRef<ArrayObj>, arr: Ref, idx: Ref, elem: Value) -> R<Ref> {
        let kind = a.get().kind();
        self.kind_guard(arr, kind);
        Ok(match kind {
            ElemKind::Any => {
                let boxed = self.trace.emit(Opcode::ALoad, Type::Value, arr, idx);
                self.unbox(boxed, elem)?
            }
            ElemKind::Int => self.trace.emit(Opcode::ALoad, Type::Int, arr, idx),
            ElemKind::Float => self.trace.emit(Opcode::ALoad, Type::Float, arr, idx),
            ElemKind::Bool => self.trace.emit(Opcode::ALoad, Type::Bool, arr, idx),
        })
    }

    fn index_guards(&mut self, arr: Ref, idx: Ref) {
        let len = self.trace.emit(Opcode::ALen, Type::Int, arr, Ref::NONE);
        self.bounds_guards(idx, len);
    }

    /// Guards `0 <= idx < len` (`len`, a length, is never negative).
    fn bounds_guards(&mut self, idx: Ref, len: Ref) {
        let c = self.trace.emit(Opcode::ULt, Type::Bool, idx, len);
        self.guard(Opcode::GuardTrue, Type::Void, c, Ref::NONE);
    }

    /// Whether a native call is running unrecorded (`call_trace`).
    pub fn is_paused(&self) -> bool {
        self.paused.is_some()
    }

    /// Records one instruction about to execute at `pc` in the frame whose
    /// registers start at `base` (absolute slot `frame_base`).
    ///
    /// # Safety
    /// `base` points at the running frame's registers, all live values.
    pub unsafe fn step(&mut self, vm: &Vm, op: Op, pc: usize, frame_base: usize, base: *const Value) -> Step {
        if let Some(p) = &self.paused {
            if vm.frames.len() - self.root_depth > p.depth {
                // The interpreter runs the natively called function.
                return Step::Continue;
            }
        }
        self.pc = pc;
        if std::mem::take(&mut self.gc_pending) {
            self.gc_check();
        }
        // SAFETY: forwarded from the caller.
        match unsafe { self.step_inner(vm, op, frame_base, base) } {
            Ok(s) => {
                if self.trace.len() > self.max_len {
                    return Step::Abort(format!("trace too long (more than {} instructions)", self.max_len));
                }
                s
            }
            Err(why) => Step::Abort(why),
        }
    }

    unsafe fn step_inner(&mut self, vm: &Vm, op: Op, frame_base: usize, base: *const Value) -> R<Step> {
        let rel = frame_base - self.root_base;
        let depth = vm.frames.len() - self.root_depth;
        if depth != self.inline.len() {
            return abort("left the loop's frame");
        }
        if let Some(p) = self.paused.take() {
            // SAFETY: the result register is in the running (calling) frame.
            self.resume(vm, p, unsafe { *base.add(p.slot - rel) })?;
        }
        // SAFETY (for `val!`): registers named by the instruction are inside
        // the running frame, as the caller guarantees.
        macro_rules! val {
            ($r:expr) => {
                unsafe { *base.add($r as usize) }
            };
        }
        macro_rules! get {
            ($r:expr) => {
                self.get(rel + $r as usize, val!($r))?
            };
        }
        macro_rules! set {
            ($r:expr, $v:expr) => {{
                let v = $v;
                self.set(rel + $r as usize, v)
            }};
        }
        let proto: &Proto = &vm.frames.last().expect("frame").func.get().proto;
        match op {
            Op::Loop { id } => return self.loop_header(vm, proto, id, depth),
            Op::Move { a, b } => set!(a, get!(b)),
            Op::LoadNil { a } => set!(a, self.trace.knil()),
            Op::LoadBool { a, v } => set!(a, self.trace.kbool(v)),
            Op::LoadInt { a, v } => set!(a, self.trace.kint(v as i64)),
            Op::LoadK { a, k } => {
                let c = self.konst(proto.consts[k as usize])?;
                set!(a, c)
            }
            Op::GetGlobal { a, g } => {
                let v = vm.globals[g as usize];
                if let Value::Uninit = v {
                    return abort("uninitialized global");
                }
                let constant = matches!(
                    v,
                    Value::Nil
                        | Value::Bool(_)
                        | Value::Int(_)
                        | Value::Float(_)
                        | Value::Str(_)
                        | Value::Func(_)
                        | Value::Native(_)
                );
                if constant && vm.jit.global_is_constant(g) && !self.stores_globals.contains(&g) {
                    // Globals rarely change (functions, settings): bake the
                    // value in and invalidate the trace if it ever does.
                    let k = self.konst(v)?;
                    self.depend(Dep::Global(g));
                    self.baked.push((Dep::Global(g), v));
                    set!(a, k);
                    return Ok(Step::Continue);
                }
                let arr = self.trace.kptr(Type::Value, self.globals_addr);
                let mut inst = vela_ir::Inst::new(Opcode::GLoad, Type::Value);
                inst.a = arr;
                inst.imm = g as i64;
                let boxed = self.trace.push(inst);
                let r = self.unbox(boxed, v)?;
                set!(a, r)
            }
            Op::Add { a, b, c } => {
                let (x, y) = (get!(b), get!(c));
                if let (Value::Str(_), Value::Str(_)) = (val!(b), val!(c)) {
                    set!(a, self.call(Helper::StrAdd, &[x, y]));
                    self.gc_pending = true;
                } else {
                    self.arith_op(Arith::Add, rel, a, val!(b), x, val!(c), y)?
                }
            }
            Op::Sub { a, b, c } => {
                let (x, y) = (get!(b), get!(c));
                self.arith_op(Arith::Sub, rel, a, val!(b), x, val!(c), y)?
            }
            Op::Mul { a, b, c } => {
                let (x, y) = (get!(b), get!(c));
                self.arith_op(Arith::Mul, rel, a, val!(b), x, val!(c), y)?
            }
            Op::Div { a, b, c } => {
                let (x, y) = (get!(b), get!(c));
                self.arith_op(Arith::Div, rel, a, val!(b), x, val!(c), y)?
            }
            Op::Rem { a, b, c } => {
                let (x, y) = (get!(b), get!(c));
                self.arith_op(Arith::Rem, rel, a, val!(b), x, val!(c), y)?
            }
            Op::AddInt { a, b, v } => {
                let (xv, x) = (val!(b), get!(b));
                let kv = Value::Int(v as i64);
                let k = self.trace.kint(v as i64);
                self.arith_op(Arith::Add, rel, a, xv, x, kv, k)?
            }
            Op::AddK { a, b, k }
            | Op::SubK { a, b, k }
            | Op::MulK { a, b, k }
            | Op::DivK { a, b, k }
            | Op::RemK { a, b, k } => {
                let kind = match op {
                    Op::AddK { .. } => Arith::Add,
                    Op::SubK { .. } => Arith::Sub,
                    Op::MulK { .. } => Arith::Mul,
                    Op::DivK { .. } => Arith::Div,
                    _ => Arith::Rem,
                };
                let kv = proto.consts[k as usize];
                let kr = self.konst(kv)?;
                let (xv, x) = (val!(b), get!(b));
                self.arith_op(kind, rel, a, xv, x, kv, kr)?
            }
            Op::Neg { a, b } => {
                let (xv, x) = (val!(b), get!(b));
                let r = match xv {
                    Value::Int(_) => {
                        let zero = self.trace.kint(0);
                        self.guard(Opcode::SubOv, Type::Int, zero, x)
                    }
                    Value::Float(_) => self.trace.emit(Opcode::FNeg, Type::Float, x, Ref::NONE),
                    _ => return abort("negation of a non-number"),
                };
                set!(a, r)
            }
            Op::Not { a, b } => {
                let (xv, x) = (val!(b), get!(b));
                let r = match xv {
                    Value::Bool(_) => {
                        let f = self.trace.kbool(false);
                        self.trace.emit(Opcode::PEq, Type::Bool, x, f)
                    }
                    v => self.trace.kbool(!v.is_truthy()),
                };
                set!(a, r)
            }
            Op::BitAnd { a, b, c } | Op::BitOr { a, b, c } | Op::BitXor { a, b, c } => {
                let (Value::Int(_), Value::Int(_)) = (val!(b), val!(c)) else {
                    return abort("bitwise operation on non-ints");
                };
                let ir = match op {
                    Op::BitAnd { .. } => Opcode::BAnd,
                    Op::BitOr { .. } => Opcode::BOr,
                    _ => Opcode::BXor,
                };
                let (x, y) = (get!(b), get!(c));
                set!(a, self.trace.emit(ir, Type::Int, x, y))
            }
            Op::Shl { a, b, c } | Op::Shr { a, b, c } => {
                let (Value::Int(_), Value::Int(n)) = (val!(b), val!(c)) else {
                    return abort("shift of non-ints");
                };
                if !(0..=63).contains(&n) {
                    return abort("shift count out of range");
                }
                let (x, y) = (get!(b), get!(c));
                if self.trace.inst(y).op != Opcode::KInt {
                    let zero = self.trace.kint(0);
                    let lt = self.trace.emit(Opcode::ILt, Type::Bool, y, zero);
                    self.guard(Opcode::GuardFalse, Type::Void, lt, Ref::NONE);
                    let k63 = self.trace.kint(63);
                    let le = self.trace.emit(Opcode::ILe, Type::Bool, y, k63);
                    self.guard(Opcode::GuardTrue, Type::Void, le, Ref::NONE);
                }
                let ir = if matches!(op, Op::Shl { .. }) { Opcode::Shl } else { Opcode::Shr };
                set!(a, self.trace.emit(ir, Type::Int, x, y))
            }
            Op::BitNot { a, b } => {
                let Value::Int(_) = val!(b) else { return abort("bitwise not of a non-int") };
                let x = get!(b);
                set!(a, self.trace.emit(Opcode::BNot, Type::Int, x, Ref::NONE))
            }
            Op::Eq { a, b, c } | Op::Ne { a, b, c } | Op::Lt { a, b, c } | Op::Le { a, b, c } => {
                let cmp = match op {
                    Op::Eq { .. } => Cmp::Eq,
                    Op::Ne { .. } => Cmp::Ne,
                    Op::Lt { .. } => Cmp::Lt,
                    _ => Cmp::Le,
                };
                let (xv, yv) = (val!(b), val!(c));
                let (x, y) = (get!(b), get!(c));
                let r = self.compare(cmp, x, xv, y, yv)?;
                set!(a, r)
            }
            Op::Jmp { .. } => {}
            Op::JmpIf { a, .. } | Op::JmpIfNot { a, .. } => {
                let v = val!(a);
                let x = get!(a);
                if let Some(c) = self.truthy(x, v)? {
                    self.branch(c, v.is_truthy());
                }
            }
            Op::JmpNotLt { a, b, .. }
            | Op::JmpNotLe { a, b, .. }
            | Op::JmpNotEq { a, b, .. }
            | Op::JmpNotNe { a, b, .. } => {
                let cmp = match op {
                    Op::JmpNotLt { .. } => Cmp::Lt,
                    Op::JmpNotLe { .. } => Cmp::Le,
                    Op::JmpNotEq { .. } => Cmp::Eq,
                    _ => Cmp::Ne,
                };
                let (xv, yv) = (val!(a), val!(b));
                let (x, y) = (get!(a), get!(b));
                self.cond_branch(cmp, x, xv, y, yv)?;
            }
            Op::JmpNotLtK { a, k, .. }
            | Op::JmpNotLeK { a, k, .. }
            | Op::JmpNotGtK { a, k, .. }
            | Op::JmpNotGeK { a, k, .. }
            | Op::JmpNotEqK { a, k, .. }
            | Op::JmpNotNeK { a, k, .. } => {
                let kv = proto.consts[k as usize];
                let kr = self.konst(kv)?;
                let (xv, x) = (val!(a), get!(a));
                match op {
                    Op::JmpNotLtK { .. } => self.cond_branch(Cmp::Lt, x, xv, kr, kv)?,
                    Op::JmpNotLeK { .. } => self.cond_branch(Cmp::Le, x, xv, kr, kv)?,
                    Op::JmpNotGtK { .. } => self.cond_branch(Cmp::Lt, kr, kv, x, xv)?,
                    Op::JmpNotGeK { .. } => self.cond_branch(Cmp::Le, kr, kv, x, xv)?,
                    Op::JmpNotEqK { .. } => self.cond_branch(Cmp::Eq, x, xv, kr, kv)?,
                    _ => self.cond_branch(Cmp::Ne, x, xv, kr, kv)?,
                }
            }
            Op::ForPrep { a, incl, .. } => {
                let (Value::Int(s), Value::Int(e)) = (val!(a), val!(a + 1)) else {
                    return abort("range bounds not ints");
                };
                let (x, y) = (get!(a), get!(a + 1));
                let c = self.trace.emit(if incl { Opcode::ILe } else { Opcode::ILt }, Type::Bool, x, y);
                let enters = if incl { s <= e } else { s < e };
                self.branch(c, enters);
                if enters {
                    set!(a + 2, x);
                }
            }
            Op::ForStep { a, incl, .. } => {
                let (Value::Int(i), Value::Int(e)) = (val!(a), val!(a + 1)) else {
                    return abort("range counter not int");
                };
                let (x, lim) = (get!(a), get!(a + 1));
                let one = self.trace.kint(1);
                let (c, again) = if incl {
                    (self.trace.emit(Opcode::ILt, Type::Bool, x, lim), i < e)
                } else {
                    // i < e holds, so i + 1 cannot overflow.
                    let n = self.trace.emit(Opcode::Add, Type::Int, x, one);
                    (self.trace.emit(Opcode::ILt, Type::Bool, n, lim), i + 1 < e)
                };
                self.branch(c, again);
                if again {
                    let n = self.trace.emit(Opcode::Add, Type::Int, x, one);
                    set!(a, n);
                    set!(a + 2, n);
                }
            }
            Op::ForInNext { a, b, .. } => {
                if let (Value::Map(m), Value::Int(i)) = (val!(a), val!(a + 1)) {
                    // The interpreter's walk: entry `i` in insertion order,
                    // the length read again each time (the body may insert).
                    let (mr, ir) = (get!(a), get!(a + 1));
                    let len = self.call(Helper::MapLen, &[mr]);
                    let c = self.trace.emit(Opcode::ILt, Type::Bool, ir, len);
                    let key =
                        usize::try_from(i).ok().and_then(|i| m.get().entries.get_index(i)).map(|(k, _)| k.to_value());
                    self.branch(c, key.is_some());
                    if let Some(k) = key {
                        let boxed = self.call(Helper::MapKeyAt, &[mr, ir]);
                        let kr = self.unbox(boxed, k)?;
                        set!(b, kr);
                        let one = self.trace.kint(1);
                        set!(a + 1, self.trace.emit(Opcode::Add, Type::Int, ir, one));
                    }
                    return Ok(Step::Continue);
                }
                let (Value::Array(arr), Value::Int(i)) = (val!(a), val!(a + 1)) else {
                    return abort("for-in over something else than an array or a map");
                };
                let (ar, ir) = (get!(a), get!(a + 1));
                let len = self.trace.emit(Opcode::ALen, Type::Int, ar, Ref::NONE);
                let c = self.trace.emit(Opcode::ILt, Type::Bool, ir, len);
                let has = (i as usize) < arr.get().len();
                self.branch(c, has);
                if has {
                    let elem = self.element(arr, ar, ir, arr.get().get(i as usize).expect("in bounds"))?;
                    set!(b, elem);
                    let one = self.trace.kint(1);
                    set!(a + 1, self.trace.emit(Opcode::Add, Type::Int, ir, one));
                }
            }
            Op::GetIndex { a, b, c } => match (val!(b), val!(c)) {
                (Value::Array(arr), Value::Int(i)) if i >= 0 && (i as usize) < arr.get().len() => {
                    let (ar, ir) = (get!(b), get!(c));
                    self.index_guards(ar, ir);
                    let r = self.element(arr, ar, ir, arr.get().get(i as usize).expect("in bounds"))?;
                    set!(a, r)
                }
                (Value::Map(m), k) if is_key(k) => {
                    let Some(v) = m.get().entries.get(&ops::map_key(k).expect("a key")).copied() else {
                        return abort("missing map key");
                    };
                    let (mr, kr) = (get!(b), get!(c));
                    let key = self.boxed(kr);
                    let boxed = self.call(Helper::MapGet, &[mr, key]);
                    let r = self.unbox(boxed, v)?;
                    set!(a, r)
                }
                (o, _) => return abort(format!("indexing {}", o.kind_name())),
            },
            Op::SetIndex { a, b, c } => match (val!(a), val!(b)) {
                (Value::Array(arr), Value::Int(i)) if i >= 0 && (i as usize) < arr.get().len() => {
                    let kind = arr.get().kind();
                    let v = val!(c);
                    if kind != ElemKind::Any && ElemKind::of(v) != kind {
                        return abort("array element of another kind (the array becomes boxed)");
                    }
                    let (ar, ir, vr) = (get!(a), get!(b), get!(c));
                    self.index_guards(ar, ir);
                    self.kind_guard(ar, kind);
                    let stored = match kind {
                        ElemKind::Any => self.boxed(vr),
                        _ if self.trace.ty(vr) == Type::Value => self.unbox(vr, v)?,
                        _ => vr,
                    };
                    let mut inst = vela_ir::Inst::new(Opcode::AStore, Type::Void);
                    inst.a = ar;
                    inst.b = ir;
                    inst.c = stored;
                    self.trace.push(inst);
                }
                (Value::Map(_), k) if is_key(k) => {
                    let (mr, kr, vr) = (get!(a), get!(b), get!(c));
                    let (key, v) = (self.boxed(kr), self.boxed(vr));
                    self.call(Helper::MapSet, &[mr, key, v]);
                    self.gc_pending = true;
                }
                (o, _) => return abort(format!("index assignment on {}", o.kind_name())),
            },
            Op::GetField { a, b, name } => {
                let Value::Struct(s) = val!(b) else { return abort("field of a non-struct") };
                let def = s.get().def;
                let Some(idx) = vm.structs[def as usize].field_index(name) else {
                    return abort("unknown field");
                };
                let o = get!(b);
                self.guard_def(o, def);
                let now = s.get().fields()[idx];
                let float_only = vm.structs[def as usize].float_only(idx);
                let mut inst = vela_ir::Inst::new(Opcode::FLoad, Type::Value);
                inst.a = o;
                inst.imm = idx as i64;
                let r = if float_only && matches!(now, Value::Float(_)) {
                    // Every instance's field holds a Float: no tag to test.
                    self.depend(Dep::FloatField(def, idx as u16));
                    inst.ty = Type::Float;
                    self.trace.push(inst)
                } else {
                    let boxed = self.trace.push(inst);
                    self.unbox(boxed, now)?
                };
                set!(a, r)
            }
            Op::SetField { a, name, c } => {
                let Value::Struct(s) = val!(a) else { return abort("field of a non-struct") };
                let def = s.get().def;
                let Some(idx) = vm.structs[def as usize].field_index(name) else {
                    return abort("unknown field");
                };
                let (o, v) = (get!(a), get!(c));
                self.guard_def(o, def);
                let untagged = vm.structs[def as usize].float_only(idx);
                self.fstore(o, def, idx, v, untagged);
            }
            Op::Call { a, n } => match val!(a) {
                Value::Func(f) => {
                    let callee = get!(a);
                    if self.made_here(callee, Helper::ClosureNew) {
                        // Each iteration makes a new one: a guard on this
                        // one's identity would fail on the next.
                        return abort("call of a closure made in the trace");
                    }
                    if self.polymorphic_site(vm, proto, f) {
                        return self.call_any_closure(rel, a, n as usize, f, callee, base).map(|()| Step::Continue);
                    }
                    let k = self.kptr(Type::Func, f.as_ptr() as u64, Value::Func(f));
                    let same = self.trace.emit(Opcode::PEq, Type::Bool, callee, k);
                    self.branch(same, true);
                    self.enter(rel, a, n as usize, f.get().proto.as_ref(), k, pc_after(self.pc), base)?;
                }
                Value::Native(i) => {
                    let callee = get!(a);
                    self.native_call(vm, i, callee, rel, a, n, base)?;
                }
                _ => return abort("call of a non-function"),
            },
            Op::CallMethod { a, n, name } => match val!(a + 1) {
                Value::Struct(s) => {
                    let def = s.get().def;
                    let Some(Value::Func(f)) = vm.structs[def as usize].method(name) else {
                        return abort("unknown method");
                    };
                    let o = get!(a + 1);
                    self.guard_def(o, def);
                    self.depend(Dep::Method(def, name));
                    self.baked.push((Dep::Method(def, name), Value::Func(f)));
                    let k = self.kptr(Type::Func, f.as_ptr() as u64, Value::Func(f));
                    set!(a, k);
                    self.enter(rel, a, n as usize + 1, f.get().proto.as_ref(), k, pc_after(self.pc), base)?;
                }
                Value::Array(_) if name == method::LENGTH && n == 0 => {
                    let o = get!(a + 1);
                    set!(a, self.trace.emit(Opcode::ALen, Type::Int, o, Ref::NONE));
                }
                Value::Array(_) if name == method::PUSH && n == 1 => {
                    let (o, x) = (get!(a + 1), get!(a + 2));
                    let v = self.boxed(x);
                    self.call(Helper::ArrayPush, &[o, v]);
                    set!(a, self.trace.knil());
                    self.gc_pending = true;
                }
                Value::Array(_) if name == method::JOIN && n == 1 && matches!(val!(a + 2), Value::Str(_)) => {
                    let (o, sep) = (get!(a + 1), get!(a + 2));
                    set!(a, self.call(Helper::ArrayJoin, &[o, sep]));
                    self.gc_pending = true;
                }
                Value::Str(_) if name == method::LENGTH && n == 0 => {
                    let o = get!(a + 1);
                    set!(a, self.trace.emit(Opcode::SLen, Type::Int, o, Ref::NONE));
                }
                Value::Str(s) if name == method::BYTE && n == 1 => {
                    let Value::Int(i) = val!(a + 2) else { return abort("byte of a non-int index") };
                    if i < 0 || i as usize >= s.get().as_str().len() {
                        return abort("byte index out of bounds");
                    }
                    let (o, ir) = (get!(a + 1), get!(a + 2));
                    let len = self.trace.emit(Opcode::SLen, Type::Int, o, Ref::NONE);
                    self.bounds_guards(ir, len);
                    set!(a, self.trace.emit(Opcode::SByte, Type::Int, o, ir));
                }
                Value::Str(_) if name == method::CONTAINS && n == 1 && matches!(val!(a + 2), Value::Str(_)) => {
                    let (o, t) = (get!(a + 1), get!(a + 2));
                    set!(a, self.call(Helper::StrContains, &[o, t]));
                }
                Value::Str(_)
                    if name == method::SLICE
                        && n == 2
                        && matches!((val!(a + 2), val!(a + 3)), (Value::Int(_), Value::Int(_))) =>
                {
                    let (o, x, y) = (get!(a + 1), get!(a + 2), get!(a + 3));
                    set!(a, self.call(Helper::StrSlice, &[o, x, y]));
                    self.gc_pending = true;
                }
                Value::Str(_) if name == method::SPLIT && n == 1 && matches!(val!(a + 2), Value::Str(_)) => {
                    let (o, sep) = (get!(a + 1), get!(a + 2));
                    set!(a, self.call(Helper::StrSplit, &[o, sep]));
                    self.gc_pending = true;
                }
                Value::Map(_) if name == method::GET && n == 2 && is_key(val!(a + 2)) => {
                    let Value::Map(m) = val!(a + 1) else { unreachable!("matched") };
                    let k = ops::map_key(val!(a + 2)).expect("a key");
                    let v = m.get().entries.get(&k).copied().unwrap_or(val!(a + 3));
                    let (o, kr, d) = (get!(a + 1), get!(a + 2), get!(a + 3));
                    let (key, d) = (self.boxed(kr), self.boxed(d));
                    let boxed = self.call(Helper::MapGetOr, &[o, key, d]);
                    let r = self.unbox(boxed, v)?;
                    set!(a, r)
                }
                Value::Map(_) if name == method::HAS && n == 1 && is_key(val!(a + 2)) => {
                    let (o, kr) = (get!(a + 1), get!(a + 2));
                    let key = self.boxed(kr);
                    set!(a, self.call(Helper::MapHas, &[o, key]));
                }
                Value::Map(m) if name == method::REMOVE && n == 1 && is_key(val!(a + 2)) => {
                    let k = ops::map_key(val!(a + 2)).expect("a key");
                    let v = m.get().entries.get(&k).copied().unwrap_or(Value::Nil);
                    let (o, kr) = (get!(a + 1), get!(a + 2));
                    let key = self.boxed(kr);
                    let boxed = self.call(Helper::MapRemove, &[o, key]);
                    let r = self.unbox(boxed, v)?;
                    set!(a, r)
                }
                Value::Map(_) if name == method::LENGTH && n == 0 => {
                    let o = get!(a + 1);
                    set!(a, self.call(Helper::MapLen, &[o]));
                }
                recv @ (Value::Array(_) | Value::Map(_)) => {
                    // The other built-in methods, run by the interpreter's
                    // own code through one helper; the result's type is
                    // what the call is about to give.
                    let Some(ty) = method_result(recv, name, n, |k| val!(a + 2 + k)) else {
                        return abort(format!("method call on {}", recv.kind_name()));
                    };
                    let mut parts: SmallVec<[Ref; 4]> = SmallVec::new();
                    for k in 0..=n {
                        parts.push(get!(a + 1 + k));
                    }
                    let list = self.arg_list(&parts);
                    let id = self.trace.kint(name as i64);
                    let boxed = self.call(Helper::Method, &[list, id]);
                    set!(a, self.guard(Opcode::Unbox, ty, boxed, Ref::NONE));
                    self.gc_pending = true;
                }
                v => return abort(format!("method call on {}", v.kind_name())),
            },
            Op::Return { .. } | Op::ReturnNil
                if depth == 0 && (self.loop_id == FUNC_ENTRY || self.side_of.is_some()) =>
            {
                // A function-entry trace or a side trace returns by itself,
                // also to a native caller (a loop's side trace may be
                // reached from a call of its function's entry trace).
                let r = match op {
                    Op::Return { a } => get!(a),
                    _ => self.trace.knil(),
                };
                let mut ret = vela_ir::Inst::new(Opcode::Ret, Type::Void);
                ret.a = r;
                self.trace.push(ret);
                self.returns = true;
                self.straight = true;
                return Ok(Step::Done);
            }
            Op::Return { .. } | Op::ReturnNil if depth == 0 => return abort("return from the loop's function"),
            Op::Return { a } => {
                let r = get!(a);
                self.leave(rel, r)?;
            }
            Op::ReturnNil => {
                let r = self.trace.knil();
                self.leave(rel, r)?;
            }
            Op::GetCell { a, b } => {
                let Value::Cell(c) = val!(b) else { return abort("captured local without a cell") };
                let cell = get!(b);
                let r = self.cell_load(cell, c.get().value)?;
                set!(a, r)
            }
            Op::SetCell { a, b } => {
                let (cell, x) = (get!(a), get!(b));
                self.cell_store(cell, x);
            }
            Op::GetUpval { a, u } => {
                let cell = self.upval(vm, depth, u)?;
                let now = vm.frames.last().expect("frame").func.get().upvals()[u as usize].get().value;
                let r = self.cell_load(cell, now)?;
                set!(a, r)
            }
            Op::SetUpval { u, b } => {
                let cell = self.upval(vm, depth, u)?;
                let x = get!(b);
                self.cell_store(cell, x);
            }
            Op::NewCell { a, b } => {
                let x = get!(b);
                let v = self.boxed(x);
                set!(a, self.call(Helper::CellNew, &[v]));
                self.gc_pending = true;
            }
            Op::Closure { a, p } => {
                let child = &proto.protos[p as usize];
                let mut cells: SmallVec<[Ref; 8]> = SmallVec::new();
                for d in &child.upvals {
                    cells.push(match *d {
                        UpvalDesc::Local(r) => get!(r),
                        UpvalDesc::Upval(u) => self.upval(vm, depth, u)?,
                    });
                }
                if cells.is_empty() {
                    cells.push(self.trace.knil());
                }
                let list = self.arg_list(&cells);
                let parent = self.running_closure(vm, depth);
                let p = self.trace.kint(p as i64);
                set!(a, self.call(Helper::ClosureNew, &[list, parent, p]));
                self.gc_pending = true;
            }
            Op::SetGlobal { a, g } => {
                if !self.stores_globals.contains(&g) {
                    self.stores_globals.push(g);
                }
                if self.baked.iter().any(|(d, _)| *d == Dep::Global(g)) {
                    // Read as a constant earlier in this recording; the abort
                    // makes it volatile, so the next recording loads it.
                    return abort("assignment to a global read as a constant");
                }
                let v = get!(a);
                let boxed = self.boxed(v);
                let mut inst = vela_ir::Inst::new(Opcode::GStore, Type::Void);
                inst.a = self.trace.kptr(Type::Value, self.globals_addr);
                inst.imm = g as i64;
                inst.c = boxed;
                self.trace.push(inst);
            }
            Op::ForInPrep { a } => match val!(a) {
                Value::Array(_) | Value::Map(_) => {
                    // Loading the slot guards that it still holds an array.
                    get!(a);
                    set!(a + 1, self.trace.kint(0));
                }
                v => return abort(format!("for-in over {}", v.kind_name())),
            },
            Op::GetStructFn { .. } => return abort("associated function"),
            Op::NewArray { a, cap } => {
                let cap = self.trace.kint(cap as i64);
                set!(a, self.call(Helper::ArrayNew, &[cap]));
                self.gc_pending = true;
            }
            Op::ArrayPush { a, b } => {
                // An array literal's element: no safe point in the interpreter.
                let (o, x) = (get!(a), get!(b));
                let v = self.boxed(x);
                self.call(Helper::ArrayPush, &[o, v]);
            }
            Op::NewMap { a } => {
                set!(a, self.call(Helper::MapNew, &[]));
                self.gc_pending = true;
            }
            Op::NewStruct { a, def } => {
                let d = self.trace.kint(def as i64);
                set!(a, self.call(Helper::StructNew, &[d]));
                self.gc_pending = true;
            }
            Op::InitField { a, idx, b } => {
                let Value::Struct(s) = val!(a) else { return abort("field of a non-struct") };
                let (o, x) = (get!(a), get!(b));
                // A new instance: its fields hold the `nil`s it was made
                // with until written, so the tag is always written.
                self.fstore(o, s.get().def, idx as usize, x, false);
            }
            Op::Concat { a, b, n } => {
                if n == 0 {
                    return abort("empty concatenation");
                }
                let mut parts: SmallVec<[Ref; 8]> = SmallVec::new();
                for k in 0..n {
                    parts.push(get!(b + k));
                }
                let list = self.arg_list(&parts);
                set!(a, self.call(Helper::Concat, &[list]));
                self.gc_pending = true;
            }
            Op::FmtPrec { a, b, prec } => {
                if !matches!(val!(b), Value::Int(_) | Value::Float(_)) {
                    return abort("formatting something else than a number with a precision");
                }
                let x = get!(b);
                let boxed = self.boxed(x);
                let p = self.trace.kint(prec as i64);
                set!(a, self.call(Helper::FmtPrec, &[boxed, p]));
                self.gc_pending = true;
            }
        }
        Ok(Step::Continue)
    }

    #[allow(clippy::too_many_arguments)]
    fn arith_op(&mut self, kind: Arith, rel: usize, a: Reg, xv: Value, x: Ref, yv: Value, y: Ref) -> R<()> {
        let r = self.arith(kind, x, xv, y, yv)?;
        self.set(rel + a as usize, r);
        Ok(())
    }

    fn cond_branch(&mut self, cmp: Cmp, x: Ref, xv: Value, y: Ref, yv: Value) -> R<()> {
        let outcome = match cmp {
            Cmp::Lt => ops::less(xv, yv),
            Cmp::Le => ops::less_eq(xv, yv),
            Cmp::Eq => Ok(ops::equal(xv, yv)),
            Cmp::Ne => Ok(!ops::equal(xv, yv)),
        };
        let Ok(outcome) = outcome else { return abort("comparison error") };
        let c = self.compare(cmp, x, xv, y, yv)?;
        self.branch(c, outcome);
        Ok(())
    }

    /// Whether the fields the trace reads or writes untagged still hold
    /// only Floats (the interpreter may have run code that changed that).
    pub fn float_fields_hold(&self, vm: &Vm) -> bool {
        self.deps.iter().all(|d| match *d {
            Dep::FloatField(def, idx) => vm.structs[def as usize].float_only(idx as usize),
            _ => true,
        })
    }

    fn depend(&mut self, d: Dep) {
        if !self.deps.contains(&d) {
            self.deps.push(d);
        }
    }

    fn guard_def(&mut self, o: Ref, def: u32) {
        let snap = self.snapshot();
        let mut inst = vela_ir::Inst::new(Opcode::GuardDef, Type::Void);
        inst.a = o;
        inst.imm = def as i64;
        inst.snap = snap;
        self.trace.push(inst);
    }

    /// Follows a call into a Vela function: its frame becomes higher slots;
    /// or, for a call of the function a function-entry trace belongs to, a
    /// native call of that trace (`recursive_call`).
    #[allow(clippy::too_many_arguments)]
    fn enter(
        &mut self,
        rel: usize,
        a: Reg,
        nargs: usize,
        proto: &Proto,
        func: Ref,
        ret_pc: usize,
        base: *const Value,
    ) -> R<()> {
        if self.inline.len() >= MAX_INLINE_DEPTH {
            return abort("call depth");
        }
        if proto.arity as usize != nargs {
            return abort("wrong number of arguments");
        }
        if std::ptr::eq(proto, self.root_proto) && self.loop_id == FUNC_ENTRY {
            return self.call_trace(rel, a, nargs, proto, func, base, None);
        }
        if proto.call_natively.get() && !proto.entry.blacklisted.get() {
            return match proto.entry_body.get() {
                0 => abort(CALLEE_NOT_COMPILED),
                _ => self.call_trace(rel, a, nargs, proto, func, base, Some(proto)),
            };
        }
        if std::ptr::eq(proto, self.root_proto) || self.inline.iter().any(|f| std::ptr::eq(f.proto, proto)) {
            return self.cannot_inline(proto, "recursive call");
        }
        let callee_base = rel + a as usize + 1;
        let nil = self.trace.knil();
        for s in nargs..proto.max_slots as usize {
            self.set(callee_base + s, nil);
        }
        self.frames.push(SnapFrame { func, base: callee_base as i32, ret_pc: ret_pc as u32 });
        self.inline.push(InlineFrame { proto, base: callee_base });
        Ok(())
    }

    /// Whether the call at `self.pc` of `caller` has met other closures of
    /// `f`'s prototype than `f` in earlier recordings; it remembers `f`. A
    /// call that meets another function instead (a global reassigned) stays
    /// specialised on the closure.
    fn polymorphic_site(&self, vm: &Vm, caller: &Proto, f: GcRef<FuncObj>) -> bool {
        let (func, proto) = (f.as_ptr() as usize, Rc::as_ptr(&f.get().proto) as usize);
        let mut sites = vm.jit.call_sites.borrow_mut();
        let seen = sites.entry((caller as *const Proto as usize, self.pc as u32)).or_insert((func, proto));
        if seen.1 != proto {
            *seen = (func, proto);
        } else if seen.0 != func {
            seen.0 = POLYMORPHIC;
        }
        seen.0 == POLYMORPHIC
    }

    /// A call site that meets many closures (of one prototype, as a rule:
    /// callbacks, closures made in a loop): instead of a guard on the
    /// closure's identity, which the next closure would fail, a guard on its
    /// prototype, and a native call of the prototype's entry trace, which
    /// finds the callee's upvalues through the closure in its callee slot.
    fn call_any_closure(
        &mut self,
        rel: usize,
        a: Reg,
        nargs: usize,
        f: GcRef<FuncObj>,
        callee: Ref,
        base: *const Value,
    ) -> R<()> {
        let k = self.kptr(Type::Func, f.as_ptr() as u64, Value::Func(f));
        let same = self.call(Helper::SameProto, &[callee, k]);
        self.branch(same, true);
        let proto: &Proto = &f.get().proto;
        if proto.arity as usize != nargs {
            return abort("wrong number of arguments");
        }
        if std::ptr::eq(proto, self.root_proto) && self.loop_id == FUNC_ENTRY {
            return self.call_trace(rel, a, nargs, proto, callee, base, None);
        }
        if proto.entry.blacklisted.get() {
            return abort("a call site meets many closures, and their function has no entry trace");
        }
        if proto.entry_body.get() == 0 {
            proto.call_natively.set(true);
            return abort(CALLEE_NOT_COMPILED);
        }
        self.call_trace(rel, a, nargs, proto, callee, base, Some(proto))
    }

    /// A call this recording cannot inline, of `proto`: from now on calls of
    /// it are native (`call_trace`), once it has an entry trace.
    fn cannot_inline<T>(&mut self, proto: &Proto, why: &'static str) -> R<T> {
        if proto.entry.blacklisted.get() {
            return abort(why);
        }
        proto.call_natively.set(true);
        abort(CALLEE_NOT_COMPILED)
    }

    /// A native call of an entry trace: of the recording function's own
    /// (`Opcode::TCall`: a recursive call in a function-entry tree), or of
    /// `other`'s, a function with a loop or recursion that cannot be inlined
    /// (`Opcode::TCallAt`, through its `entry_body` cell). The arguments and
    /// the callee's nil registers join the snapshot (the call stores them),
    /// as does the callee in register `a` (exits rebuild the callee's frame
    /// from it). The interpreter then runs the call unrecorded (`paused`);
    /// `resume` picks up the result.
    #[allow(clippy::too_many_arguments)]
    fn call_trace(
        &mut self,
        rel: usize,
        a: Reg,
        nargs: usize,
        proto: &Proto,
        func: Ref,
        base: *const Value,
        other: Option<&Proto>,
    ) -> R<()> {
        let callee_base = rel + a as usize + 1;
        self.set(callee_base - 1, func);
        for s in 0..nargs {
            // SAFETY: argument registers a+1..=a+nargs are inside the running frame.
            let v = unsafe { *base.add(a as usize + 1 + s) };
            let r = self.get(callee_base + s, v)?;
            self.set(callee_base + s, r);
        }
        let nil = self.trace.knil();
        for s in nargs..proto.max_slots as usize {
            self.set(callee_base + s, nil);
        }
        // The snapshot resumes at the call: the interpreter makes it when
        // there is no room for another native level.
        self.last_snap = None;
        self.keep_from = callee_base - 1;
        let snap = self.snapshot();
        self.keep_from = usize::MAX;
        let mut call = match other {
            None => vela_ir::Inst::new(Opcode::TCall, Type::Value),
            Some(p) => {
                let mut c = vela_ir::Inst::new(Opcode::TCallAt, Type::Value);
                c.a = self.trace.kptr(Type::Value, p.entry_body.as_ptr() as u64);
                c
            }
        };
        call.imm = callee_base as i64;
        call.snap = snap;
        let call = self.trace.push(call);
        self.native_calls = true;
        self.paused = Some(Paused { depth: self.inline.len(), slot: callee_base - 1, call });
        Ok(())
    }

    /// Back in the caller after a native call the interpreter ran: the
    /// callee's frame is gone (its slots are clobbered), the result `v` is
    /// in the callee slot and becomes the `Call`'s value, unboxed to the
    /// type it has now.
    fn resume(&mut self, vm: &Vm, p: Paused, v: Value) -> R<()> {
        // The callee ran without the recorder seeing it: what the trace baked
        // in must still hold.
        for (d, was) in &self.baked {
            let now = match *d {
                Dep::Global(g) => vm.globals[g as usize],
                Dep::Method(def, name) => vm.structs[def as usize].method(name).unwrap_or(Value::Nil),
                Dep::FloatField(..) => continue,
            };
            if !now.identical(was) {
                return abort("a global or method changed during a recursive call");
            }
        }
        if !self.float_fields_hold(vm) {
            return abort("a Float-only field got another kind of value during a recursive call");
        }
        for s in p.slot + 1..self.slots.len() {
            self.slots[s] = Ref::NONE;
            self.modified[s] = false;
            self.clobbered[s] = true;
        }
        self.set(p.slot, p.call);
        let r = self.unbox(p.call, v)?;
        self.set(p.slot, r);
        Ok(())
    }

    /// Records a return from an inlined frame: the result goes to the callee slot.
    fn leave(&mut self, rel: usize, result: Ref) -> R<()> {
        let Some(f) = self.inline.pop() else {
            return abort("return from the loop's function");
        };
        debug_assert_eq!(f.base, rel);
        self.frames.pop();
        // The callee's registers are dead now; forget them so snapshots shrink.
        for s in f.base..self.slots.len() {
            self.slots[s] = Ref::NONE;
            self.modified[s] = false;
        }
        self.set(f.base - 1, result);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn native_call(&mut self, vm: &Vm, i: u32, callee: Ref, rel: usize, a: Reg, n: u8, base: *const Value) -> R<()> {
        let name = vm.natives[i as usize].name.as_str();
        let k = self.trace.kptr(Type::Native, i as u64);
        // The callee slot holds a Native: compare its index.
        let same = self.trace.emit(Opcode::PEq, Type::Bool, callee, k);
        self.branch(same, true);
        let arg = |j: usize| -> Value {
            // SAFETY: argument registers a+1..=a+n are inside the frame.
            unsafe { *base.add(a as usize + 1 + j) }
        };
        let float1 = |op: Opcode, this: &mut Self| -> R<Ref> {
            let v = arg(0);
            if n != 1 || !matches!(v, Value::Int(_) | Value::Float(_)) {
                return abort(format!("call of {name}"));
            }
            let x = this.get(rel + a as usize + 1, v)?;
            let fx = this.as_float(x);
            Ok(this.trace.emit(op, Type::Float, fx, Ref::NONE))
        };
        let r = match name {
            "sqrt" => float1(Opcode::FSqrt, self)?,
            "sin" => float1(Opcode::FSin, self)?,
            "cos" => float1(Opcode::FCos, self)?,
            "floor" | "ceil" | "abs" if n == 1 && matches!(arg(0), Value::Float(_)) => {
                let op = match name {
                    "floor" => Opcode::FFloor,
                    "ceil" => Opcode::FCeil,
                    _ => Opcode::FAbs,
                };
                float1(op, self)?
            }
            "floor" | "ceil" if n == 1 && matches!(arg(0), Value::Int(_)) => self.get(rel + a as usize + 1, arg(0))?,
            "float" if n == 1 && matches!(arg(0), Value::Int(_) | Value::Float(_)) => {
                let x = self.get(rel + a as usize + 1, arg(0))?;
                self.as_float(x)
            }
            "int" if n == 1 && matches!(arg(0), Value::Int(_)) => self.get(rel + a as usize + 1, arg(0))?,
            "min" | "max" if n == 2 && matches!((arg(0), arg(1)), (Value::Int(_), Value::Int(_))) => {
                // The pick this iteration made, behind a guard on the
                // comparison: a running minimum or maximum rarely changes
                // hands, and when it does a side trace takes the other pick.
                let (Value::Int(x), Value::Int(y)) = (arg(0), arg(1)) else { unreachable!("matched above") };
                let rx = self.get(rel + a as usize + 1, arg(0))?;
                let ry = self.get(rel + a as usize + 2, arg(1))?;
                let (c, take_y) = if name == "min" {
                    (self.trace.emit(Opcode::ILt, Type::Bool, ry, rx), y < x)
                } else {
                    (self.trace.emit(Opcode::ILt, Type::Bool, rx, ry), y > x)
                };
                self.branch(c, take_y);
                if take_y {
                    ry
                } else {
                    rx
                }
            }
            "abs" if n == 1 && matches!(arg(0), Value::Int(_)) => {
                // |x| = (x ^ s) - s, s = x >> 63 (0 or -1): the subtraction
                // overflows for i64::MIN alone, and that exit lets the
                // interpreter make the call and raise its overflow error.
                let x = self.get(rel + a as usize + 1, arg(0))?;
                let k63 = self.trace.kint(63);
                let s = self.trace.emit(Opcode::Shr, Type::Int, x, k63);
                let t = self.trace.emit(Opcode::BXor, Type::Int, x, s);
                self.guard(Opcode::SubOv, Type::Int, t, s)
            }
            "len" if n == 1 && matches!(arg(0), Value::Array(_)) => {
                let x = self.get(rel + a as usize + 1, arg(0))?;
                self.trace.emit(Opcode::ALen, Type::Int, x, Ref::NONE)
            }
            "len" if n == 1 && matches!(arg(0), Value::Str(_)) => {
                let x = self.get(rel + a as usize + 1, arg(0))?;
                self.trace.emit(Opcode::SLen, Type::Int, x, Ref::NONE)
            }
            "len" if n == 1 && matches!(arg(0), Value::Map(_)) => {
                let x = self.get(rel + a as usize + 1, arg(0))?;
                self.call(Helper::MapLen, &[x])
            }
            "str" if n == 1 => {
                let x = self.get(rel + a as usize + 1, arg(0))?;
                if let Value::Str(_) = arg(0) {
                    x
                } else {
                    let list = self.arg_list(&[x]);
                    self.gc_pending = true;
                    self.call(Helper::Concat, &[list])
                }
            }
            "array" if n == 2 && matches!(arg(0), Value::Int(_)) => {
                let len = self.get(rel + a as usize + 1, arg(0))?;
                let x = self.get(rel + a as usize + 2, arg(1))?;
                let v = self.boxed(x);
                self.gc_pending = true;
                self.call(Helper::ArrayFill, &[len, v])
            }
            _ => return abort(format!("call of built-in `{name}`")),
        };
        self.set(rel + a as usize, r);
        Ok(())
    }

    /// A loop header reached while recording. In the root frame the trace
    /// ends at its own loop's header (a root trace closes into a loop, a
    /// side trace links back to it) or at another loop's header that has a
    /// trace (it links there: nested loops become a tree of traces joined at
    /// their headers). Any other header is recorded through, unrolling a few
    /// iterations of a loop with no trace of its own.
    fn loop_header(&mut self, vm: &Vm, proto: &Proto, id: u16, depth: usize) -> R<Step> {
        let slot = &proto.loops[id as usize];
        let traced = vm.jit.cache.contains(slot.trace.get());
        if depth == 0 {
            debug_assert!(std::ptr::eq(proto, self.root_proto));
            if id == self.loop_id && self.side_of.is_none() {
                self.snapshot_tail();
                return Ok(Step::Done);
            }
            if id == self.loop_id || traced {
                self.link = Some(id);
                self.straight = true;
                self.snapshot_tail();
                return Ok(Step::Done);
            }
            if self.side_of.is_none() && !slot.blacklisted.get() {
                // A root trace should describe its own loop's common path;
                // through another loop it would do so only by chance.
                // Every loop of a function is inner to its entry.
                let inner =
                    self.loop_id == FUNC_ENTRY || (self.header_pc..=loop_end(proto, self.header_pc)).contains(&self.pc);
                return abort(if inner { INNER_LOOP_NOT_COMPILED } else { "left the loop" });
            }
        }
        let key = (proto as *const Proto as usize, id);
        let n = match self.unrolled.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.unrolled.push((key, 1));
                1
            }
        };
        if n > MAX_UNROLL {
            if depth > 0 {
                return self.cannot_inline(proto, "loop in an inlined call");
            }
            return abort("loop unrolled too far");
        }
        Ok(Step::Continue)
    }

    /// The slot state at the loop header, for peeling.
    fn snapshot_tail(&mut self) {
        self.last_snap = None;
        let id = self.snapshot();
        self.trace.tail = Some(id);
    }
}

/// The type of what built-in method `name` of `recv`, called with `n`
/// arguments (`arg(k)`), is about to return, for the methods traces run
/// through `Helper::Method`; `None` for the others, and for a call that is
/// about to fail (the recording would stop there anyway).
fn method_result(recv: Value, name: u16, n: u8, arg: impl Fn(u8) -> Value) -> Option<Type> {
    match (recv, name, n) {
        (Value::Array(arr), method::POP, 0) => type_of(arr.get().get(arr.get().len().checked_sub(1)?)?).ok(),
        (Value::Array(_), method::INSERT, 2) => Some(Type::Nil),
        (Value::Array(arr), method::REMOVE, 1) => {
            let Value::Int(i) = arg(0) else { return None };
            type_of(arr.get().get(usize::try_from(i).ok()?)?).ok()
        }
        (Value::Array(_), method::SLICE, 2) => Some(Type::Array),
        (Value::Map(_), method::KEYS | method::VALUES, 0) => Some(Type::Array),
        _ => None,
    }
}

/// The pc of the back-edge of the loop whose header is at `header`: the last
/// jump to it.
fn loop_end(proto: &Proto, header: usize) -> usize {
    (header..proto.code.len()).rev().find(|&pc| proto.code[pc].jump_target(pc) == Some(header)).unwrap_or(header)
}

/// Whether `v` can be a map key (anything else is an error the interpreter raises).
fn is_key(v: Value) -> bool {
    matches!(v, Value::Int(_) | Value::Bool(_) | Value::Str(_))
}

fn pc_after(pc: usize) -> usize {
    pc + 1
}
