//! The dispatch loop: executes bytecode frames until the entry frame returns.
//!
//! Hot state (register base, code, pc) lives in locals; `Vm::frames` holds
//! each caller's saved pc. Int and Float fast paths are inline; everything
//! else calls into `runtime::ops`. Garbage is collected only at safe points
//! (loop headers, calls, after allocating instructions), where every live
//! value is in a register, a global or a constant.

use super::vm::{Frame, Vm};
use crate::bytecode::proto::{HotSlot, FUNC_ENTRY};
use crate::bytecode::{Op, Proto, UpvalDesc};
use crate::error::Error;
use crate::jit::recorder::{Recorder, Step};
use crate::runtime::object::{FuncObj, StructObj};
use crate::runtime::ops::{self, Arith, Bitwise};
use crate::runtime::structdef::BUILTIN_METHODS;
use crate::runtime::value::raw::{self, FLOAT, INT};
use crate::runtime::GcRef;
use crate::runtime::{builtins, Value};

impl Vm {
    /// Runs the function in `stack[slot]` with `nargs` arguments after it, and
    /// returns its result. Frames pushed here are popped on return or left for
    /// the caller to truncate on error.
    pub(crate) fn call_at(&mut self, slot: usize, nargs: usize) -> Result<Value, Error> {
        match self.stack[slot] {
            Value::Func(f) => {
                let p = &f.get().proto;
                if p.arity as usize != nargs {
                    return Err(self.runtime_error(wrong_args(&p.name, p.arity as usize, nargs)));
                }
                let base = slot + 1;
                let top = base + p.max_slots as usize;
                if top >= self.stack.len() || self.frames.len() >= self.config.max_call_depth {
                    return Err(self.runtime_error("stack overflow".into()));
                }
                for v in &mut self.stack[base + nargs..top] {
                    *v = Value::Nil;
                }
                let entry = self.frames.len();
                self.frames.push(Frame { func: f, base, pc: 0 });
                self.execute(entry)
            }
            Value::Native(i) => {
                let args: Vec<Value> = self.stack[slot + 1..slot + 1 + nargs].to_vec();
                self.call_native(i, &args).map_err(|m| self.runtime_error(m))
            }
            v => {
                let msg = format!("cannot call {}", v.kind_name());
                Err(self.runtime_error(msg))
            }
        }
    }

    pub(crate) fn call_native(&mut self, i: u32, args: &[Value]) -> Result<Value, String> {
        let n = &self.natives[i as usize];
        if args.len() < n.min_args as usize || (n.max_args != u8::MAX && args.len() > n.max_args as usize) {
            let expected = if n.min_args == n.max_args {
                format!("{}", n.min_args)
            } else if n.max_args == u8::MAX {
                format!("at least {}", n.min_args)
            } else {
                format!("{} to {}", n.min_args, n.max_args)
            };
            return Err(format!("wrong number of arguments: `{}` expects {expected}, got {}", n.name, args.len()));
        }
        let f = n.f.clone();
        f(self, args)
    }

    /// Runs frames until the frame at depth `entry` returns, switching between
    /// the plain loop and the recording loop as the JIT asks.
    fn execute(&mut self, entry: usize) -> Result<Value, Error> {
        loop {
            let flow = if self.jit.recorder.is_some() { self.run::<true>(entry) } else { self.run::<false>(entry) };
            match flow {
                Ok(Flow::Return(v)) => return Ok(v),
                Ok(Flow::Switch) => {
                    if self.frames.len() == entry {
                        // A trace returned from the frame this call ran.
                        return Ok(std::mem::replace(&mut self.jit.returned, Value::Nil));
                    }
                    // After a trace's GC exit: the safe point right after the
                    // allocation it exited behind, as in the interpreter.
                    if std::mem::take(&mut self.jit.gc_due) && self.heap.should_collect() {
                        let top = self.stack_top();
                        if let Err(m) = self.collect_garbage(top) {
                            self.jit.recorder = None;
                            return Err(self.runtime_error(m));
                        }
                    }
                }
                Err(e) => {
                    // A recording cut short by an error is simply dropped.
                    self.jit.recorder = None;
                    return Err(e);
                }
            }
        }
    }

    /// A closure of child prototype `p` of `proto`, capturing per its
    /// upvalue list. Out of line: the interpreter loop's code layout is
    /// sensitive to what its rarely taken arms inline (one pointer store
    /// here once made matrix_multiply's interpreted loop 2x slower).
    ///
    /// # Safety
    /// `base` points at the running frame's registers.
    #[inline(never)]
    unsafe fn make_closure(
        &mut self,
        proto: &Proto,
        p: u16,
        func: GcRef<FuncObj>,
        base: *const Value,
    ) -> GcRef<FuncObj> {
        let child = proto.protos[p as usize].clone();
        let upvals: Box<[_]> = child
            .upvals
            .iter()
            .map(|d| match *d {
                // SAFETY: the compiler names captured registers inside the frame.
                UpvalDesc::Local(r) => match unsafe { *base.add(r as usize) } {
                    Value::Cell(c) => c,
                    _ => unreachable!("captured local without a cell"),
                },
                UpvalDesc::Upval(u) => func.get().upvals()[u as usize],
            })
            .collect();
        self.heap.alloc_func(FuncObj::new(child, upvals))
    }

    /// The interpreter loop. With `RECORD`, the JIT's recorder sees every
    /// instruction before it executes.
    fn run<const RECORD: bool>(&mut self, entry: usize) -> Result<Flow, Error> {
        let stack = self.stack.as_mut_ptr();
        let stack_len = self.stack.len();
        let mut icount: u64 = 0;

        let mut frame = *self.frames.last().expect("a frame to run");
        let mut proto: &Proto = &frame.func.get().proto;
        // The next instruction. SAFETY (for every use): the compiler ends every
        // prototype with a return and keeps jump targets inside the code, so
        // `ip` always points into `proto.code`.
        let mut ip: *const Op = unsafe { proto.code.as_ptr().add(frame.pc) };
        // SAFETY: `frame.base + proto.max_slots <= stack_len` was checked when the
        // frame was pushed, and the stack buffer never moves or shrinks.
        let mut base = unsafe { stack.add(frame.base) };

        // Register access. SAFETY (for every use): the compiler only emits
        // register operands below `proto.max_slots`, so `base + r` is inside
        // this frame's part of the stack.
        macro_rules! r {
            ($i:expr) => {
                unsafe { raw::load(base.add($i as usize)) }
            };
        }
        macro_rules! reg {
            ($i:expr) => {
                base.wrapping_add($i as usize)
            };
        }
        macro_rules! set {
            ($i:expr, $v:expr) => {{
                let v = $v;
                unsafe { *base.add($i as usize) = v }
            }};
        }
        macro_rules! throw {
            ($msg:expr) => {{
                let msg: String = $msg;
                self.frames.last_mut().expect("frame").pc = cur_pc!();
                self.stats.instructions += icount;
                return Err(self.runtime_error(msg));
            }};
        }
        macro_rules! tri {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(m) => throw!(m),
                }
            };
        }
        // Index of the next instruction, for saving into the frame.
        macro_rules! cur_pc {
            () => {
                (ip as usize - proto.code.as_ptr() as usize) / std::mem::size_of::<Op>()
            };
        }
        macro_rules! jump {
            ($off:expr) => {
                ip = unsafe { ip.offset($off as isize) }
            };
        }
        macro_rules! top {
            () => {
                frame.base + proto.max_slots as usize
            };
        }
        // A safe point: collect when the heap asks for it.
        macro_rules! gc_point {
            () => {
                if self.heap.should_collect() {
                    let top = top!();
                    tri!(self.collect_garbage(top));
                }
            };
        }
        // A constant operand. SAFETY: the compiler only emits constant indices
        // below `proto.consts.len()`.
        macro_rules! k {
            ($k:expr) => {
                unsafe { *proto.consts.get_unchecked($k as usize) }
            };
        }
        macro_rules! kp {
            ($k:expr) => {
                unsafe { proto.consts.as_ptr().add($k as usize) }
            };
        }
        // SAFETY (raw accessors below): the pointers come from `reg!`/`kp!` and
        // point at live values; payloads are read only after checking the tag.
        macro_rules! arith {
            ($a:expr, $pb:expr, $pc:expr, $op:expr, $iop:ident, $fop:tt) => {{
                let (pb, pc) = ($pb, $pc);
                let (tb, tc) = unsafe { (raw::tag_of(pb), raw::tag_of(pc)) };
                if tb == INT && tc == INT {
                    match unsafe { raw::int_of(pb).$iop(raw::int_of(pc)) } {
                        Some(k) => unsafe { raw::put_int(reg!($a), k) },
                        None => throw!(ops::OVERFLOW.into()),
                    }
                } else if tb == FLOAT && tc == FLOAT {
                    unsafe { raw::put_float(reg!($a), raw::float_of(pb) $fop raw::float_of(pc)) }
                } else {
                    let v = tri!(self.arith_slow($op, unsafe { *pb }, unsafe { *pc }));
                    set!($a, v);
                }
            }};
        }
        macro_rules! compare {
            ($pa:expr, $pb:expr, $op:tt, $slow:path) => {{
                let (pa, pb) = ($pa, $pb);
                let (ta, tb) = unsafe { (raw::tag_of(pa), raw::tag_of(pb)) };
                if ta == INT && tb == INT {
                    unsafe { raw::int_of(pa) $op raw::int_of(pb) }
                } else if ta == FLOAT && tb == FLOAT {
                    unsafe { raw::float_of(pa) $op raw::float_of(pb) }
                } else {
                    tri!($slow(unsafe { *pa }, unsafe { *pb }))
                }
            }};
        }
        macro_rules! equal {
            ($pa:expr, $pb:expr) => {{
                let (pa, pb) = ($pa, $pb);
                let (ta, tb) = unsafe { (raw::tag_of(pa), raw::tag_of(pb)) };
                if ta == INT && tb == INT {
                    unsafe { raw::int_of(pa) == raw::int_of(pb) }
                } else {
                    ops::equal(unsafe { *pa }, unsafe { *pb })
                }
            }};
        }
        macro_rules! reload {
            () => {{
                frame = *self.frames.last().expect("frame");
                proto = &frame.func.get().proto;
                ip = unsafe { proto.code.as_ptr().add(frame.pc) };
                // SAFETY: as at entry: the frame fits in the stack.
                base = unsafe { stack.add(frame.base) };
            }};
        }
        macro_rules! check_budget {
            () => {
                if self.polls() {
                    self.frames.last_mut().expect("frame").pc = cur_pc!();
                    self.poll(icount)?;
                }
            };
        }
        // Pushes a frame for Vela function `f` whose callee slot is register `a`.
        macro_rules! enter {
            ($f:expr, $a:expr, $n:expr) => {{
                let f = $f;
                let n: usize = $n;
                let p: &Proto = &f.get().proto;
                if p.arity as usize != n {
                    throw!(wrong_args(&p.name, p.arity as usize, n));
                }
                let new_base = frame.base + $a as usize + 1;
                let top = new_base + p.max_slots as usize;
                if top >= stack_len || self.frames.len() >= self.config.max_call_depth {
                    throw!("stack overflow".into());
                }
                for i in new_base + n..top {
                    // SAFETY: `top < stack_len` was checked just above.
                    unsafe { *stack.add(i) = Value::Nil };
                }
                self.frames.last_mut().expect("frame").pc = cur_pc!();
                self.frames.push(Frame { func: f, base: new_base, pc: 0 });
                reload!();
                gc_point!();
                check_budget!();
                // The entry profiler: as at a loop header (`Op::Loop`).
                #[cfg(feature = "loop-counters")]
                if !RECORD {
                    let left = proto.entry.countdown.get() - 1;
                    proto.entry.countdown.set(left);
                    if left <= 0 && self.hot(proto, FUNC_ENTRY, 0, frame.base) {
                        // Recording started, or a trace ran: restart from `self.frames`.
                        self.stats.instructions += icount;
                        return Ok(Flow::Switch);
                    }
                } else if self.recording_paused() && self.enter_while_paused(&proto.entry, frame.base) {
                    self.stats.instructions += icount;
                    return Ok(Flow::Switch);
                }
            }};
        }

        loop {
            let op = unsafe { *ip };
            if RECORD {
                let mut rec = self.jit.recorder.take().expect("recording");
                // SAFETY: `base` points at this frame's live registers.
                let mut step = unsafe { rec.step(self, op, cur_pc!(), frame.base, base) };
                if matches!(step, Step::Done) {
                    // Its code may store other kinds of values into these
                    // fields without telling.
                    for &(def, idx) in &rec.mixed_fields {
                        self.note_other_write(def, idx as usize);
                    }
                    if !rec.float_fields_hold(self) {
                        step = Step::Abort("a Float-only field it reads got another kind of value".into());
                    }
                }
                match step {
                    // The common case (also every instruction of a call the
                    // recorder skips): nothing else to do.
                    Step::Continue => self.jit.recorder = Some(rec),
                    Step::Done => {
                        self.frames.last_mut().expect("frame").pc = cur_pc!();
                        self.stats.instructions += icount;
                        let (slot, where_) = (root_slot(&rec), rec_where(&rec));
                        self.jit.finish(rec, slot, &where_);
                        return Ok(Flow::Switch);
                    }
                    Step::Abort(why) => {
                        self.frames.last_mut().expect("frame").pc = cur_pc!();
                        self.stats.instructions += icount;
                        let where_ = rec_where(&rec);
                        let key = (rec.root_proto as usize, rec.loop_id);
                        self.jit.globals_assigned(&rec.stores_globals);
                        self.jit.abort_any(rec.side_of, key, &why, root_slot(&rec), &where_);
                        return Ok(Flow::Switch);
                    }
                }
            }
            ip = unsafe { ip.add(1) };
            icount += 1;
            match op {
                Op::Move { a, b } => unsafe { raw::copy(reg!(a), reg!(b)) },
                Op::LoadNil { a } => set!(a, Value::Nil),
                Op::LoadBool { a, v } => set!(a, Value::Bool(v)),
                Op::LoadInt { a, v } => set!(a, Value::Int(v as i64)),
                Op::LoadK { a, k } => set!(a, k!(k)),
                Op::GetGlobal { a, g } => {
                    let v = self.globals[g as usize];
                    if let Value::Uninit = v {
                        throw!(format!("uninitialized global {}", self.env.globals[g as usize].name));
                    }
                    set!(a, v)
                }
                Op::SetGlobal { a, g } => {
                    let v = r!(a);
                    let old = std::mem::replace(&mut self.globals[g as usize], v);
                    if self.jit.watches_global(g) && !old.identical(&v) {
                        self.jit.global_written(g);
                    }
                }
                Op::NewCell { a, b } => {
                    let c = self.heap.alloc_cell(r!(b));
                    set!(a, Value::Cell(c));
                    gc_point!();
                }
                Op::GetCell { a, b } => match r!(b) {
                    Value::Cell(c) => set!(a, c.get().value),
                    _ => unreachable!("captured local without a cell"),
                },
                Op::SetCell { a, b } => match r!(a) {
                    Value::Cell(c) => c.get_mut().value = r!(b),
                    _ => unreachable!("captured local without a cell"),
                },
                Op::GetUpval { a, u } => set!(a, frame.func.get().upvals()[u as usize].get().value),
                Op::SetUpval { u, b } => frame.func.get().upvals()[u as usize].get_mut().value = r!(b),
                Op::Closure { a, p } => {
                    // SAFETY: `base` points at this frame's live registers.
                    let f = unsafe { self.make_closure(proto, p, frame.func, base) };
                    set!(a, Value::Func(f));
                    gc_point!();
                }

                Op::Add { a, b, c } => {
                    if let (Value::Str(x), Value::Str(y)) = (r!(b), r!(c)) {
                        let (s, t) = (x.get().as_str(), y.get().as_str());
                        if self.heap.too_big(s.len() + t.len()) {
                            throw!("memory limit exceeded".into());
                        }
                        let mut out = String::with_capacity(s.len() + t.len());
                        out.push_str(s);
                        out.push_str(t);
                        let v = Value::Str(self.heap.alloc_string(out));
                        set!(a, v);
                        gc_point!();
                    } else {
                        arith!(a, reg!(b), reg!(c), Arith::Add, checked_add, +)
                    }
                }
                Op::Sub { a, b, c } => arith!(a, reg!(b), reg!(c), Arith::Sub, checked_sub, -),
                Op::Mul { a, b, c } => arith!(a, reg!(b), reg!(c), Arith::Mul, checked_mul, *),
                Op::Div { a, b, c } => {
                    let (x, y) = (r!(b), r!(c));
                    let v = match (x, y) {
                        (Value::Float(i), Value::Float(j)) => Value::Float(i / j),
                        _ => tri!(ops::arith(Arith::Div, x, y)),
                    };
                    set!(a, v);
                }
                Op::Rem { a, b, c } => {
                    let (x, y) = (r!(b), r!(c));
                    let v = match (x, y) {
                        (Value::Int(i), Value::Int(j)) if j > 0 => Value::Int(i % j),
                        _ => tri!(ops::arith(Arith::Rem, x, y)),
                    };
                    set!(a, v);
                }
                Op::AddInt { a, b, v } => {
                    let pb = reg!(b);
                    let tb = unsafe { raw::tag_of(pb) };
                    if tb == INT {
                        match unsafe { raw::int_of(pb) }.checked_add(v as i64) {
                            Some(k) => unsafe { raw::put_int(reg!(a), k) },
                            None => throw!(ops::OVERFLOW.into()),
                        }
                    } else if tb == FLOAT {
                        unsafe { raw::put_float(reg!(a), raw::float_of(pb) + v as f64) }
                    } else {
                        let op = if v < 0 { Arith::Sub } else { Arith::Add };
                        let v = tri!(self.arith_slow(op, r!(b), Value::Int((v as i64).abs())));
                        set!(a, v);
                    }
                }
                Op::AddK { a, b, k } => arith!(a, reg!(b), kp!(k), Arith::Add, checked_add, +),
                Op::SubK { a, b, k } => arith!(a, reg!(b), kp!(k), Arith::Sub, checked_sub, -),
                Op::MulK { a, b, k } => arith!(a, reg!(b), kp!(k), Arith::Mul, checked_mul, *),
                Op::DivK { a, b, k } => {
                    let (x, y) = (r!(b), k!(k));
                    let v = match (x, y) {
                        (Value::Float(i), Value::Float(j)) => Value::Float(i / j),
                        (Value::Int(i), Value::Int(j)) if j > 0 => Value::Int(i / j),
                        _ => tri!(ops::arith(Arith::Div, x, y)),
                    };
                    set!(a, v);
                }
                Op::RemK { a, b, k } => {
                    let (x, y) = (r!(b), k!(k));
                    let v = match (x, y) {
                        (Value::Int(i), Value::Int(j)) if j > 0 => Value::Int(i % j),
                        _ => tri!(ops::arith(Arith::Rem, x, y)),
                    };
                    set!(a, v);
                }
                Op::BitAnd { a, b, c } => set!(a, tri!(ops::bitwise(Bitwise::And, r!(b), r!(c)))),
                Op::BitOr { a, b, c } => set!(a, tri!(ops::bitwise(Bitwise::Or, r!(b), r!(c)))),
                Op::BitXor { a, b, c } => set!(a, tri!(ops::bitwise(Bitwise::Xor, r!(b), r!(c)))),
                Op::Shl { a, b, c } => set!(a, tri!(ops::bitwise(Bitwise::Shl, r!(b), r!(c)))),
                Op::Shr { a, b, c } => set!(a, tri!(ops::bitwise(Bitwise::Shr, r!(b), r!(c)))),
                Op::Neg { a, b } => set!(a, tri!(ops::negate(r!(b)))),
                Op::Not { a, b } => set!(a, Value::Bool(!r!(b).is_truthy())),
                Op::BitNot { a, b } => match r!(b) {
                    Value::Int(i) => set!(a, Value::Int(!i)),
                    v => throw!(format!("cannot apply `~` to {}", v.kind_name())),
                },
                Op::Eq { a, b, c } => set!(a, Value::Bool(ops::equal(r!(b), r!(c)))),
                Op::Ne { a, b, c } => set!(a, Value::Bool(!ops::equal(r!(b), r!(c)))),
                Op::Lt { a, b, c } => {
                    set!(a, Value::Bool(compare!(reg!(b), reg!(c), <, ops::less)))
                }
                Op::Le { a, b, c } => {
                    set!(a, Value::Bool(compare!(reg!(b), reg!(c), <=, ops::less_eq)))
                }

                Op::Jmp { off } => jump!(off),
                Op::JmpIf { a, off } => {
                    if r!(a).is_truthy() {
                        jump!(off)
                    }
                }
                Op::JmpIfNot { a, off } => {
                    if !r!(a).is_truthy() {
                        jump!(off)
                    }
                }
                Op::JmpNotLt { a, b, off } => {
                    if !compare!(reg!(a), reg!(b), <, ops::less) {
                        jump!(off)
                    }
                }
                Op::JmpNotLe { a, b, off } => {
                    if !compare!(reg!(a), reg!(b), <=, ops::less_eq) {
                        jump!(off)
                    }
                }
                Op::JmpNotLtK { a, k, off } => {
                    if !compare!(reg!(a), kp!(k), <, ops::less) {
                        jump!(off)
                    }
                }
                Op::JmpNotLeK { a, k, off } => {
                    if !compare!(reg!(a), kp!(k), <=, ops::less_eq) {
                        jump!(off)
                    }
                }
                Op::JmpNotGtK { a, k, off } => {
                    if !compare!(kp!(k), reg!(a), <, ops::less) {
                        jump!(off)
                    }
                }
                Op::JmpNotGeK { a, k, off } => {
                    if !compare!(kp!(k), reg!(a), <=, ops::less_eq) {
                        jump!(off)
                    }
                }
                Op::JmpNotEqK { a, k, off } => {
                    let eq = equal!(reg!(a), kp!(k));
                    if !eq {
                        jump!(off)
                    }
                }
                Op::JmpNotNeK { a, k, off } => {
                    let eq = equal!(reg!(a), kp!(k));
                    if eq {
                        jump!(off)
                    }
                }
                Op::JmpNotEq { a, b, off } => {
                    let eq = equal!(reg!(a), reg!(b));
                    if !eq {
                        jump!(off)
                    }
                }
                Op::JmpNotNe { a, b, off } => {
                    let eq = equal!(reg!(a), reg!(b));
                    if eq {
                        jump!(off)
                    }
                }

                Op::Loop { id } => {
                    // Every allocating instruction is a safe point of its own, so
                    // a loop header need not be one. The rare work a header owes
                    // (polling a budget or interrupt, the JIT) waits behind one
                    // countdown: a polling VM keeps it at 1 (`Vm::hot`).
                    #[cfg(feature = "loop-counters")]
                    if !RECORD {
                        // SAFETY: the compiler numbers loops densely below `loops.len()`.
                        let slot = unsafe { proto.loops.get_unchecked(id as usize) };
                        let left = slot.countdown.get() - 1;
                        slot.countdown.set(left);
                        if left <= 0 {
                            self.frames.last_mut().expect("frame").pc = cur_pc!();
                            match self.loop_slow(proto, id, frame.base, icount) {
                                Ok(false) => {}
                                Ok(true) => {
                                    // Recording started, or a trace ran and left
                                    // new frames: restart from `self.frames`.
                                    self.stats.instructions += icount;
                                    return Ok(Flow::Switch);
                                }
                                Err(e) => return Err(e),
                            }
                        }
                    }
                    if RECORD || cfg!(not(feature = "loop-counters")) {
                        let _ = id;
                        check_budget!();
                    }
                    #[cfg(feature = "loop-counters")]
                    if RECORD && self.recording_paused() {
                        // SAFETY: as above, `id` is below `loops.len()`.
                        let slot = unsafe { proto.loops.get_unchecked(id as usize) };
                        self.frames.last_mut().expect("frame").pc = cur_pc!();
                        if self.enter_while_paused(slot, frame.base) {
                            self.stats.instructions += icount;
                            return Ok(Flow::Switch);
                        }
                    }
                }
                Op::ForPrep { a, incl, off } => match (r!(a), r!(a + 1)) {
                    (Value::Int(s), Value::Int(e)) => {
                        if (incl && s > e) || (!incl && s >= e) {
                            jump!(off)
                        } else {
                            set!(a + 2, Value::Int(s));
                        }
                    }
                    (s, e) => {
                        let bad = if matches!(s, Value::Int(_)) { e } else { s };
                        throw!(format!("range bounds must be int, found {}", bad.kind_name()))
                    }
                },
                Op::ForStep { a, incl, off } => {
                    // ForPrep checked both are Ints; the body cannot write R[a].
                    let (i, e) = unsafe { (raw::int_of(reg!(a)), raw::int_of(reg!(a + 1))) };
                    // `i < e` (or `i + 1 < e`) means `i + 1` cannot overflow.
                    if (incl && i < e) || (!incl && i + 1 < e) {
                        unsafe {
                            raw::put_int(reg!(a), i + 1);
                            raw::put_int(reg!(a + 2), i + 1);
                        }
                        jump!(off)
                    }
                }
                Op::ForInPrep { a } => match r!(a) {
                    Value::Array(_) | Value::Map(_) => set!(a + 1, Value::Int(0)),
                    v => throw!(format!("cannot iterate over {}", v.kind_name())),
                },
                Op::ForInNext { a, b, off } => {
                    let Value::Int(i) = r!(a + 1) else { unreachable!("for-in index") };
                    let next = match r!(a) {
                        Value::Array(arr) => arr.get().get(i as usize),
                        Value::Map(m) => m.get().entries.get_index(i as usize).map(|(k, _)| k.to_value()),
                        _ => unreachable!("for-in over a checked iterable"),
                    };
                    match next {
                        Some(v) => {
                            set!(b, v);
                            set!(a + 1, Value::Int(i + 1));
                        }
                        None => jump!(off),
                    }
                }

                Op::Call { a, n } => match r!(a) {
                    Value::Func(f) => enter!(f, a, n as usize),
                    Value::Native(i) => {
                        // SAFETY: the arguments are registers a+1..=a+n of this frame.
                        // Natives never write the value stack below the running
                        // frame's top (a host re-entering the VM starts above it),
                        // so the slice is not mutated while borrowed.
                        let args = unsafe { std::slice::from_raw_parts(base.add(a as usize + 1), n as usize) };
                        self.frames.last_mut().expect("frame").pc = cur_pc!();
                        let v = tri!(self.call_native(i, args));
                        set!(a, v);
                        gc_point!();
                    }
                    v => throw!(format!("cannot call {}", v.kind_name())),
                },
                Op::CallMethod { a, n, name } => {
                    let recv = r!(a + 1);
                    match recv {
                        Value::Struct(s) => {
                            let def = &self.structs[s.get().def as usize];
                            match def.method(name) {
                                Some(Value::Func(f)) => {
                                    set!(a, Value::Func(f));
                                    enter!(f, a, n as usize + 1)
                                }
                                _ => throw!(format!("unknown method {} for {}", self.env.names.name(name), def.name)),
                            }
                        }
                        Value::Array(_) | Value::Str(_) | Value::Map(_) if (name as usize) < BUILTIN_METHODS.len() => {
                            // SAFETY: the arguments are registers a+2..a+2+n of this
                            // frame; built-in methods never touch the value stack.
                            let args = unsafe { std::slice::from_raw_parts(base.add(a as usize + 2), n as usize) };
                            let v = tri!(builtins::call_method(self, recv, name, args));
                            set!(a, v);
                            gc_point!();
                        }
                        _ => throw!(format!("unknown method {} for {}", self.env.names.name(name), recv.kind_name())),
                    }
                }
                Op::GetStructFn { a, def, name } => {
                    let d = &self.structs[def as usize];
                    match d.method(name) {
                        Some(f) => set!(a, f),
                        None => throw!(format!("unknown method {} for {}", self.env.names.name(name), d.name)),
                    }
                }
                Op::Return { a } => {
                    let v = r!(a);
                    self.frames.pop();
                    if self.frames.len() == entry {
                        self.stats.instructions += icount;
                        return Ok(Flow::Return(v));
                    }
                    // SAFETY: the callee slot `base - 1` belongs to the caller's frame.
                    unsafe { *base.sub(1) = v };
                    reload!();
                }
                Op::ReturnNil => {
                    self.frames.pop();
                    if self.frames.len() == entry {
                        self.stats.instructions += icount;
                        return Ok(Flow::Return(Value::Nil));
                    }
                    // SAFETY: as for `Return`.
                    unsafe { *base.sub(1) = Value::Nil };
                    reload!();
                }

                Op::NewArray { a, cap } => {
                    let arr = self.heap.alloc_array_with_capacity(cap as usize);
                    set!(a, Value::Array(arr));
                    gc_point!();
                }
                Op::ArrayPush { a, b } => {
                    let Value::Array(arr) = r!(a) else { unreachable!("array literal") };
                    let d = arr.get_mut().push(r!(b));
                    self.heap.account(d);
                }
                Op::NewMap { a } => {
                    let m = self.heap.alloc_map(Default::default());
                    set!(a, Value::Map(m));
                    gc_point!();
                }
                Op::NewStruct { a, def } => {
                    let n = self.structs[def as usize].fields.len();
                    let s = self.heap.alloc_struct(StructObj::new(def as u32, vec![Value::Nil; n]));
                    set!(a, Value::Struct(s));
                    gc_point!();
                }
                Op::InitField { a, idx, b } => {
                    let Value::Struct(s) = r!(a) else { unreachable!("struct literal") };
                    let v = r!(b);
                    let obj = s.get_mut();
                    obj.fields_mut()[idx as usize] = v;
                    if !matches!(v, Value::Float(_)) {
                        let def = obj.def;
                        self.note_other_write(def, idx as usize);
                    }
                }
                Op::GetIndex { a, b, c } => {
                    let v = match (r!(b), r!(c)) {
                        (Value::Array(arr), Value::Int(i)) => match arr.get().get(i as usize) {
                            Some(v) if i >= 0 => v,
                            _ => throw!(ops::index_error(i, arr.get().len())),
                        },
                        (o, k) => tri!(builtins::get_index(o, k)),
                    };
                    set!(a, v);
                }
                Op::SetIndex { a, b, c } => match (r!(a), r!(b)) {
                    (Value::Array(arr), Value::Int(i)) => {
                        let arr = arr.get_mut();
                        let mut d = 0;
                        if i < 0 || !arr.set(i as usize, r!(c), &mut d) {
                            throw!(ops::index_error(i, arr.len()));
                        }
                        self.heap.account(d);
                    }
                    (o, k) => {
                        let d = tri!(builtins::set_index(o, k, r!(c)));
                        self.heap.account(d);
                        gc_point!();
                    }
                },
                Op::GetField { a, b, name } => match r!(b) {
                    Value::Struct(s) => {
                        let obj = s.get();
                        let def = &self.structs[obj.def as usize];
                        match def.field_index(name) {
                            Some(i) => set!(a, obj.fields()[i]),
                            None => throw!(format!("unknown field {} for {}", self.env.names.name(name), def.name)),
                        }
                    }
                    v => throw!(format!("unknown field {} for {}", self.env.names.name(name), v.kind_name())),
                },
                Op::SetField { a, name, c } => match r!(a) {
                    Value::Struct(s) => {
                        let obj = s.get_mut();
                        let def = &mut self.structs[obj.def as usize];
                        match def.field_index(name) {
                            Some(i) => {
                                let v = r!(c);
                                obj.fields_mut()[i] = v;
                                if !matches!(v, Value::Float(_)) && def.note_other_write(i) {
                                    self.jit.field_no_longer_float(obj.def, i);
                                }
                            }
                            None => throw!(format!("unknown field {} for {}", self.env.names.name(name), def.name)),
                        }
                    }
                    v => throw!(format!("unknown field {} for {}", self.env.names.name(name), v.kind_name())),
                },
                Op::Concat { a, b, n } => {
                    let mut out = String::new();
                    for i in 0..n {
                        if let Err(e) = self.write_display(&mut out, r!(b + i)) {
                            throw!(e);
                        }
                    }
                    let s = self.heap.alloc_string(out);
                    set!(a, Value::Str(s));
                    gc_point!();
                }
                Op::FmtPrec { a, b, prec } => {
                    let s = match r!(b) {
                        Value::Int(i) => format!("{:.*}", prec as usize, i as f64),
                        Value::Float(f) => format!("{:.*}", prec as usize, f),
                        v => throw!(format!("cannot format {} with a precision", v.kind_name())),
                    };
                    let s = self.heap.alloc_string(s);
                    set!(a, Value::Str(s));
                    gc_point!();
                }
            }
        }
    }

    fn arith_slow(&mut self, op: Arith, x: Value, y: Value) -> Result<Value, String> {
        if let (Value::Str(_), _) | (_, Value::Str(_)) = (x, y) {
            if op == Arith::Add {
                return Err(format!("cannot add {} and {}", x.kind_name(), y.kind_name()));
            }
        }
        ops::arith(op, x, y)
    }
}

impl Vm {
    /// A write of something other than a Float to field `idx` of an
    /// instance of struct `def` (`StructDef::note_other_write`): the traces
    /// that read or write that field untagged go if it held only Floats.
    #[inline(always)]
    fn note_other_write(&mut self, def: u32, idx: usize) {
        if self.structs[def as usize].note_other_write(idx) {
            self.jit.field_no_longer_float(def, idx);
        }
    }

    /// Everything a loop header does when its countdown runs out, kept out
    /// of `run` so the interpreter's hot code stays small: polls a budget or
    /// interrupt, then `hot`. The innermost frame's pc is the
    /// instruction after the header; `icount` is the instructions `run` has
    /// executed but not yet added to the statistics.
    #[cfg_attr(not(feature = "loop-counters"), allow(dead_code))]
    #[cold]
    #[inline(never)]
    fn loop_slow(&mut self, proto: &Proto, id: u16, base: usize, icount: u64) -> Result<bool, Error> {
        if self.polls() {
            self.poll(icount)?;
        }
        let header_pc = self.frames.last().expect("frame").pc - 1;
        Ok(self.hot(proto, id, header_pc, base))
    }

    /// Stops the script if its instruction budget is spent or the host's
    /// interrupt callback says so. `icount` as for `loop_slow`.
    #[cold]
    #[inline(never)]
    fn poll(&mut self, icount: u64) -> Result<(), Error> {
        let executed = self.stats.instructions + icount;
        if let Some(b) = self.config.instruction_budget.filter(|&b| executed > b) {
            self.stats.instructions = executed;
            return Err(self.runtime_error(format!("instruction budget of {b} exceeded")));
        }
        if let Some(f) = self.interrupt.as_mut() {
            if f() {
                self.stats.instructions = executed;
                return Err(self.runtime_error("interrupted by host".to_string()));
            }
        }
        Ok(())
    }

    /// The slow path of the profiler: the countdown of hot slot `id` of
    /// `proto` (a loop, whose `Loop` instruction is at `header_pc`, or
    /// `FUNC_ENTRY` on a call whose frame was just pushed) reached zero.
    /// Starts a recording, runs the attached trace, or parks the counter
    /// when the JIT is off or the slot is blacklisted. Returns whether the
    /// dispatch loop must restart from `self.frames` (a recording started, or
    /// a trace ran).
    #[cfg_attr(not(feature = "loop-counters"), allow(dead_code))]
    #[cold]
    #[inline(never)]
    fn hot(&mut self, proto: &Proto, id: u16, header_pc: usize, base: usize) -> bool {
        if self.jit.compiling_any() {
            // No trace runs now: a good moment to attach finished ones.
            self.jit.install_finished();
        }
        let slot = proto.hot_slot(id);
        if !self.jit.settings.enabled || slot.blacklisted.get() || crate::jit::libllvm::failed() {
            // Park the counter; a polling VM comes back to every loop header
            // (calls poll on their own).
            slot.countdown.set(if self.polls() && id != FUNC_ENTRY { 1 } else { i32::MAX });
            return false;
        }
        if slot.trace.get().is_some() {
            if let Some(t) = self.jit.cache.lookup(slot.trace.get()) {
                // Stay at zero so every arrival comes back here and enters.
                slot.countdown.set(1);
                if !self.can_enter(t, base) {
                    return false;
                }
                self.enter_trace(t, base);
                return true;
            }
            // Evicted or invalidated: count towards a new trace.
            slot.trace.set(None);
            slot.armed.set(false);
        }
        if self.jit.compiling_any() {
            // Its trace, or another that may be its inner loop's, is on the
            // compile thread: look again a little later. (Recording an outer
            // loop before its inner loop's trace is attached would abort, or
            // worse, record some other path through the nest.)
            slot.countdown.set(COMPILE_POLL);
            return false;
        }
        let threshold = if id == FUNC_ENTRY { self.jit.settings.hot_func } else { self.jit.settings.hot_loop };
        let threshold = threshold.min(i32::MAX as u32) as i32;
        if slot.armed.get() {
            self.jit.cache.miss();
            let rec = Recorder::new(
                proto as *const Proto,
                id,
                header_pc,
                base,
                self.frames.len(),
                self.jit.settings.max_trace,
                self.globals.as_ptr() as u64,
            );
            let where_ = rec_where(&rec);
            self.jit.start_recording(rec, &where_);
            // If the recording fails, count a full threshold again.
            slot.countdown.set(threshold);
            return true;
        }
        // First arrival: start counting towards the threshold.
        slot.armed.set(true);
        slot.countdown.set(threshold);
        false
    }
}

impl Vm {
    /// Whether a recording is waiting for a native call it recorded to
    /// return (the interpreter runs the callee unrecorded).
    fn recording_paused(&self) -> bool {
        self.jit.recorder.as_ref().is_some_and(|r| r.is_paused())
    }

    /// While the recording is paused, runs the trace attached at `slot` (a
    /// function entry or loop header of code the recording does not see),
    /// as the compiled native call will: a long-running callee then does not
    /// run in the recording interpreter. Never counts, records or grows
    /// side traces. Returns whether a trace ran.
    #[cold]
    #[inline(never)]
    fn enter_while_paused(&mut self, slot: &HotSlot, base: usize) -> bool {
        let Some(t) = slot.trace.get().filter(|&t| self.jit.cache.contains(Some(t))) else { return false };
        if !self.can_enter(t, base) {
            return false;
        }
        self.enter_trace(t, base);
        true
    }
}

/// Arrivals at a slot whose trace is compiling between looks at whether it
/// is ready: a look is cheap, and a trace takes milliseconds to compile.
const COMPILE_POLL: i32 = 32;

/// How `run` ended.
enum Flow {
    /// The entry frame returned this value.
    Return(Value),
    /// Recording started or stopped: run again in the other mode.
    Switch,
}

/// The profiling slot of a recorder's loop (or function entry). Not tied to
/// `rec`'s lifetime: the slot lives in the prototype, not the recorder.
fn root_slot<'p>(rec: &Recorder) -> &'p HotSlot {
    // SAFETY: the recorder's root prototype is alive: its frame is on the
    // stack, and `Vm::protos` keeps every prototype as long as the VM; the
    // caller uses the slot only while the VM runs.
    crate::jit::state::hot_slot(unsafe { &*rec.root_proto }, rec.loop_id)
}

/// `file:line` of a recorder's loop, for JIT messages.
fn rec_where(rec: &Recorder) -> String {
    // SAFETY: the root prototype's frame is on the stack while recording.
    let p = unsafe { &*rec.root_proto };
    let line = p.lines.get(rec.header_pc).copied().unwrap_or(p.line);
    let entry = if rec.loop_id == FUNC_ENTRY { " entry" } else { "" };
    format!("{}:{} (in {}){entry}", p.file, line, p.name)
}

fn wrong_args(name: &str, expected: usize, got: usize) -> String {
    format!("wrong number of arguments: `{name}` expects {expected}, got {got}")
}
