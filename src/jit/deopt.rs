//! OSR entry and exit: calls a compiled trace from the interpreter's loop
//! header, and on a failed guard turns the exit's snapshot back into
//! interpreter frames so the interpreter resumes as if it had run all along.
//! An exit with a side trace attached goes straight on into it, and an exit
//! at a loop header that has a trace goes on into that trace (how side
//! traces and nested loops link); only exits that reach neither come back.
//!
//! The exit code itself has already stored the snapshot's slots (boxed) into
//! the value stack; what is left here is the frame records: the pc to resume
//! at, and a `Frame` for each call the trace had inlined. When the exit was
//! taken inside native calls (a function-entry trace calling its own
//! function), each caller level left its exit code in
//! `layout::NativeCalls::unwind`: those levels are rebuilt outermost first,
//! each resuming as returning from its call, with a frame for the callee.
//! A function-entry trace that returns (`RETURNED`) has done the return.

use super::backend::CHECKPOINT;
use super::cache::TraceId;
use super::helpers::TraceVm;
use super::layout::{MAX_NATIVE_LEVELS, RETURNED, VALUE_SIZE};
use super::recorder::Recorder;
use crate::bytecode::Op;
use crate::interp::{Frame, Vm};
use crate::runtime::Value;

/// How a run of compiled code ended.
enum Ran {
    /// The root frame's function returned (`ret`).
    Returned,
    /// A root loop trace stopped at its entry for a checkpoint; the frame it
    /// belongs to is at this base.
    Checkpoint(usize),
    /// Through snapshot `exit` of a trace, whose root frame is at this base.
    Exit(TraceId, usize, usize),
}

/// Longest chain of side traces grown from one root trace.
const MAX_SIDE_DEPTH: usize = 8;

impl Vm {
    /// Whether trace `t` may run with its root frame at stack slot `base`:
    /// every slot and frame the exits of any trace it may link into can
    /// create must fit.
    #[inline(never)]
    pub(crate) fn can_enter(&self, t: TraceId, base: usize) -> bool {
        self.jit.cache.get(t).is_some()
            && base + self.jit.max_extent < self.stack.len()
            && self.frames.len() + self.jit.max_frames < self.config.max_call_depth
    }

    /// Runs trace `t` from a loop header or function entry of the innermost
    /// frame (whose registers start at stack slot `base`), following side
    /// traces and links between loops, until an exit hands control back to
    /// the interpreter; then rebuilds the interpreter state that exit's
    /// snapshot describes (the frames of every native call level too). May
    /// start recording a side trace from a hot exit. A function-entry trace
    /// that returned has popped its frame.
    #[cold]
    #[inline(never)]
    pub(crate) fn enter_trace(&mut self, t: TraceId, base: usize) {
        self.jit.stats.interp_entries += 1;
        let mut next = t;
        let mut base = base;
        loop {
            let (t, exit) = match self.run_trace(next, base) {
                Ran::Returned => {
                    // The root frame's function returned (the result is in
                    // its callee slot): the caller resumes after its call,
                    // or, when that frame was the first `Vm::execute` ran (a
                    // loop's side trace returns from whatever frame the loop
                    // is in), `execute` returns the result.
                    let f = self.frames.pop().expect("the trace's frame");
                    self.jit.returned = self.stack[f.base - 1];
                    return;
                }
                Ran::Checkpoint(b) => {
                    // A checkpoint: root loop trace `next` stopped at its entry.
                    base = b;
                    let (id, header_pc) = self.jit.checkpoint.take().expect("set by run_trace");
                    // Not while a recording is paused in a native call
                    // (`Vm::enter_while_paused`): it may link to these traces.
                    let recording = self.jit.recorder.is_some();
                    if !recording && self.jit.discard_if_failing(id) {
                        // The interpreter carries on from the loop header.
                        let root = self.frames.len() - 1;
                        self.frames[root].pc = header_pc + 1;
                        return;
                    }
                    // May put new code (with a side trace merged) in place.
                    if !recording {
                        self.jit.merge_hot_sides(id);
                        // On the compile thread, a merge (or any other
                        // trace) is attached here too: a loop that runs
                        // natively between checkpoints never comes back
                        // to a loop header that would attach it.
                        if self.jit.compiling_any() {
                            self.jit.install_finished();
                        }
                        if !self.jit.cache.contains(Some(id)) {
                            // Attaching evicted it: interpret from its header.
                            let root = self.frames.len() - 1;
                            self.frames[root].pc = header_pc + 1;
                            return;
                        }
                    }
                    next = id;
                    continue;
                }
                Ran::Exit(t, exit, b) => {
                    base = b;
                    (t, exit)
                }
            };
            let rec = self.jit.cache.get(t).expect("a trace is not evicted while it runs");
            let snap = &rec.snaps[exit];
            if snap.gc {
                // The heap wants a collection: the interpreter runs it
                // (`Vm::execute`) with every new object now in a frame, and
                // carries on. Not a path the trace mispredicted: never linked,
                // never grown into a side trace.
                self.jit.gc_due = true;
                return;
            }
            if !snap.frames.is_empty() {
                return;
            }
            let (pc, state, taken) = (snap.pc as usize, rec.exits[exit], rec.taken(exit));
            if state.side.is_none() && !state.blacklisted {
                if let Some(side) = self.jit.sibling_side(t, exit) {
                    if self.can_enter(side, base) {
                        self.jit.adopt_side(t, exit as u32, side);
                        next = side;
                        continue;
                    }
                }
            }
            if state.side.is_some() {
                match self.jit.cache.lookup(state.side) {
                    Some(side) if self.can_enter(side, base) => {
                        // From now on the exit jumps there without coming back here.
                        self.jit.link(t, exit as u32, side);
                        next = side;
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        // Evicted: forget it; the exit may grow a new one.
                        let e = &mut self.jit.cache.get_mut(t).expect("live").exits[exit];
                        e.side = None;
                        e.retry_at = taken + self.jit.settings.hot_exit as u64;
                    }
                }
            }
            // Resuming at a loop header with a trace is entering that trace.
            let proto = &self.frames.last().expect("the trace's frame").func.get().proto;
            if let Some(Op::Loop { id }) = proto.code.get(pc) {
                let slot = &proto.loops[*id as usize];
                if slot.trace.get().is_some() {
                    match self.jit.cache.lookup(slot.trace.get()) {
                        Some(n) if n != t && self.can_enter(n, base) => {
                            self.jit.link(t, exit as u32, n);
                            next = n;
                            continue;
                        }
                        Some(_) => {}
                        None => {
                            // Evicted: the loop counts towards a new trace.
                            slot.trace.set(None);
                            slot.armed.set(false);
                            slot.countdown.set(0);
                        }
                    }
                }
                // The interpreter runs the header's profiler; a side trace
                // from here would only link to it.
                return;
            }
            if matches!(proto.code.get(pc), Some(Op::Return { .. } | Op::ReturnNil)) {
                // A loop trace's side trace ends here: nothing to grow from here.
                return;
            }
            let hot = taken >= self.jit.settings.hot_exit as u64 && taken >= state.retry_at;
            let recording = self.jit.recorder.is_some();
            if state.side.is_none() && !state.blacklisted && !state.compiling && hot && !recording {
                self.start_side_trace(t, exit as u32, base);
            }
            return;
        }
    }

    /// Calls trace `t`, which may jump on through linked traces and make
    /// native calls, and applies the snapshot of the exit that came back,
    /// with those of the native call levels it left from; returns which
    /// trace took the exit, through which snapshot, and the base of the
    /// frame it left from (the innermost native level's).
    fn run_trace(&mut self, t: TraceId, base: usize) -> Ran {
        self.jit.cache.touch(t);
        let entry = self.jit.cache.get(t).expect("live trace").code.entry;
        self.arm_native_calls();
        let vm: *mut Vm = self;
        // SAFETY: `can_enter` checked that every slot any trace may touch is
        // inside the value stack (all linked traces share this base, and a
        // native call checks `NativeCalls::stack_limit` for its callee's);
        // traces read and write only those slots and heap objects they
        // guarded or made. They allocate only through helpers
        // (`super::helpers`), which reach the VM through `vm` (nothing else
        // uses it until the trace returns) and never collect, so no GC runs
        // while the code holds object pointers.
        let code = unsafe {
            let _helpers = TraceVm::enter(vm);
            entry.call((*vm).stack.as_mut_ptr().add(base))
        };
        if code == RETURNED {
            debug_assert_eq!(self.jit.calls.unwind_len.get(), 0);
            return Ran::Returned;
        }
        // The caller levels of native calls, outermost first: each resumes
        // as returning from its call, with a frame pushed for the callee.
        let mut base = base;
        let levels = self.jit.calls.unwind_len.replace(0) as usize;
        for k in (0..levels).rev() {
            let code = self.jit.calls.unwind[k].get();
            let (t, snap) = self.exit_of(code);
            let pc = self.apply_snapshot(t, snap, base);
            base = self.push_callee_frame(pc);
        }
        self.jit.stats.unwound_levels += levels as u64;
        let (t, exit) = self.exit_of(code);
        if exit as u32 == CHECKPOINT {
            let rec = self.jit.cache.get(t).expect("live trace");
            self.jit.checkpoint = Some((t, rec.header_pc));
            return Ran::Checkpoint(base);
        }
        self.apply_snapshot(t, exit, base);
        Ran::Exit(t, exit, base)
    }

    /// Resets the native call state before compiled code runs: room for as
    /// many frames and stack slots as `can_enter` would allow each level.
    fn arm_native_calls(&mut self) {
        let c = &self.jit.calls;
        let frames_left = self.config.max_call_depth as i64 - self.frames.len() as i64 - self.jit.max_frames as i64 - 1;
        c.frames_left.set(frames_left);
        c.levels_left.set(MAX_NATIVE_LEVELS as i64);
        let limit = match self.stack.len().checked_sub(self.jit.max_extent + 1) {
            // The address of slot `i`, the highest callee base whose extent fits.
            Some(i) => self.stack.as_ptr() as u64 + i as u64 * VALUE_SIZE,
            None => 0,
        };
        c.stack_limit.set(limit);
        c.unwind_len.set(0);
    }

    /// The trace and snapshot an exit code names.
    fn exit_of(&self, code: u64) -> (TraceId, usize) {
        let (serial, exit) = ((code >> 32) as u32, code as u32 as usize);
        (self.jit.serials[&serial], exit)
    }

    /// Rebuilds the frames snapshot `exit` of trace `t` describes, the
    /// innermost frame (the trace's root frame) being at stack slot `base`
    /// (the exit code already wrote the slots): the root frame's pc, and a
    /// `Frame` for every inlined call. Returns the pc the innermost frame
    /// resumes at.
    fn apply_snapshot(&mut self, t: TraceId, exit: usize, base: usize) -> usize {
        let rec = self.jit.cache.get(t).expect("live trace");
        let snap = &rec.snaps[exit];
        let root = self.frames.len() - 1;
        debug_assert_eq!(self.frames[root].base, base, "a trace's root frame is the innermost frame");
        match snap.frames.first() {
            None => self.frames[root].pc = snap.pc as usize,
            Some(first) => self.frames[root].pc = first.ret_pc as usize,
        }
        let n = snap.frames.len();
        for (k, f) in snap.frames.iter().enumerate() {
            let func = rec.funcs[&f.func.0];
            let pc = if k + 1 < n { snap.frames[k + 1].ret_pc } else { snap.pc };
            self.frames.push(Frame { func, base: base + f.base as usize, pc: pc as usize });
        }
        snap.pc as usize
    }

    /// The innermost frame stopped at the call instruction at `pc` that a
    /// native call made (`Opcode::TCall`): it resumes after the call, and the
    /// callee gets its frame, whose pc the callee's own level sets. Returns
    /// the callee's base.
    fn push_callee_frame(&mut self, pc: usize) -> usize {
        let top = self.frames.len() - 1;
        let caller = self.frames[top];
        let a = match caller.func.get().proto.code[pc] {
            Op::Call { a, .. } | Op::CallMethod { a, .. } => a as usize,
            op => unreachable!("a native call's snapshot resumes at a call, not {op:?}"),
        };
        self.frames[top].pc = pc + 1;
        let base = caller.base + a + 1;
        // The caller's exit wrote the callee (register `a`) with its snapshot.
        let Value::Func(func) = self.stack[base - 1] else {
            unreachable!("a native call's callee slot holds its closure")
        };
        self.frames.push(Frame { func, base, pc: 0 });
        base
    }
    /// Starts recording a side trace from exit `exit` of trace `t`; the
    /// interpreter is about to resume at that exit's pc.
    fn start_side_trace(&mut self, t: TraceId, exit: u32, base: usize) {
        // Bound chains of side traces: an exit that keeps failing in every
        // new side trace must not grow them without end.
        let mut depth = 0;
        let mut p = self.jit.cache.get(t).and_then(|r| r.parent);
        while let Some((pt, _)) = p {
            depth += 1;
            p = self.jit.cache.get(pt).and_then(|r| r.parent);
        }
        let Some(rec) = self.jit.cache.get_mut(t) else { return };
        if depth >= MAX_SIDE_DEPTH {
            rec.exits[exit as usize].blacklisted = true;
            return;
        }
        let (root_proto, loop_id, header_pc) = (rec.root_proto, rec.loop_id, rec.header_pc);
        let mut r = Recorder::new(
            root_proto,
            loop_id,
            header_pc,
            base,
            self.frames.len(),
            self.jit.settings.max_trace,
            self.globals.as_ptr() as u64,
        );
        r.side_of = Some((t, exit));
        let where_ = format!("{} exit S{exit}", self.jit.name_of(t));
        self.jit.start_recording(r, &where_);
    }
}
