//! OSR entry and exit: calls a compiled trace from the interpreter's loop
//! header, and on a failed guard turns the exit's snapshot back into
//! interpreter frames so the interpreter resumes as if it had run all along.
//! An exit with a side trace attached goes straight on into it, and an exit
//! at a loop header that has a trace goes on into that trace (how side
//! traces and nested loops link); only exits that reach neither come back.
//!
//! The exit code itself has already stored the snapshot's slots (boxed) into
//! the value stack; what is left here is the frame records: the pc to resume
//! at, and a `Frame` for each call the trace had inlined.

use super::backend::CHECKPOINT;
use super::cache::TraceId;
use super::helpers::TraceVm;
use super::recorder::Recorder;
use crate::bytecode::Op;
use crate::interp::{Frame, Vm};

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

    /// Runs trace `t` from a loop header of the innermost frame (whose
    /// registers start at stack slot `base`), following side traces and
    /// links between loops, until an exit hands control back to the
    /// interpreter; then rebuilds the interpreter state that exit's snapshot
    /// describes. May start recording a side trace from a hot exit.
    #[cold]
    #[inline(never)]
    pub(crate) fn enter_trace(&mut self, t: TraceId, base: usize) {
        self.jit.stats.interp_entries += 1;
        let mut next = t;
        loop {
            let Some((t, exit)) = self.run_trace(next, base) else {
                // A checkpoint: root loop trace `next` stopped at its entry.
                let (id, header_pc) = self.jit.checkpoint.take().expect("set by run_trace");
                if self.jit.discard_if_failing(id) {
                    // The interpreter carries on from the loop header.
                    let root = self.frames.len() - 1;
                    self.frames[root].pc = header_pc + 1;
                    return;
                }
                next = id;
                continue;
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
                // A function-entry trace's end: nothing to grow from here.
                return;
            }
            let hot = taken >= self.jit.settings.hot_exit as u64 && taken >= state.retry_at;
            if state.side.is_none() && !state.blacklisted && hot {
                self.start_side_trace(t, exit as u32, base);
            }
            return;
        }
    }

    /// Calls trace `t`, which may jump on through linked traces, and applies
    /// the snapshot of the exit that came back; returns which trace took it
    /// and through which snapshot.
    ///
    /// `None` when a root loop trace stopped at its entry for a checkpoint
    /// (`backend::CHECKPOINT`; which one is in `JitState::checkpoint`).
    fn run_trace(&mut self, t: TraceId, base: usize) -> Option<(TraceId, usize)> {
        self.jit.cache.touch(t);
        let entry = self.jit.cache.get(t).expect("live trace").code.entry;
        let vm: *mut Vm = self;
        // SAFETY: `can_enter` checked that every slot any trace may touch is
        // inside the value stack (all linked traces share this base); traces
        // read and write only those slots and heap objects they guarded or
        // made. They allocate only through helpers (`super::helpers`), which
        // reach the VM through `vm` (nothing else uses it until the trace
        // returns) and never collect, so no GC runs while the code holds
        // object pointers.
        let code = unsafe {
            let _helpers = TraceVm::enter(vm);
            entry((*vm).stack.as_mut_ptr().add(base))
        };
        let (serial, exit) = ((code >> 32) as u32, code as u32 as usize);
        let t = self.jit.serials[&serial];
        let rec = self.jit.cache.get(t).expect("live trace");
        if exit as u32 == CHECKPOINT {
            self.jit.checkpoint = Some((t, rec.header_pc));
            return None;
        }
        let snap = &rec.snaps[exit];
        let root = self.frames.len() - 1;
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
        Some((t, exit))
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
