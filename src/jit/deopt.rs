//! OSR entry and exit: calls a compiled trace from the interpreter's loop
//! header, and on a failed guard turns the exit's snapshot back into
//! interpreter frames so the interpreter resumes as if it had run all along.
//! An exit with a side trace attached goes straight on into it; a side trace
//! that reaches the loop header goes back into the root trace.
//!
//! The exit code itself has already stored the snapshot's slots (boxed) into
//! the value stack; what is left here is the frame records: the pc to resume
//! at, and a `Frame` for each call the trace had inlined.

use super::recorder::Recorder;
use crate::bytecode::proto::BLACKLISTED;
use crate::bytecode::Op;
use crate::interp::{Frame, Vm};

/// Longest chain of side traces grown from one root trace.
const MAX_SIDE_DEPTH: usize = 8;

impl Vm {
    /// Whether trace `t` may run with its root frame at stack slot `base`:
    /// every slot and frame its exits can create must fit.
    #[inline(never)]
    pub(crate) fn can_enter(&self, t: u32, base: usize) -> bool {
        let rec = &self.jit.traces[t as usize - 1];
        base + rec.extent < self.stack.len() && self.frames.len() + rec.max_frames < self.config.max_call_depth
    }

    /// Runs trace `t` from a loop header of the innermost frame (whose
    /// registers start at stack slot `base`), following side traces and
    /// links between loops, until an exit hands control back to the
    /// interpreter; then rebuilds the interpreter state that exit's snapshot
    /// describes. May start recording a side trace from a hot exit.
    #[cold]
    #[inline(never)]
    pub(crate) fn enter_trace(&mut self, mut t: u32, base: usize) {
        loop {
            let exit = self.run_trace(t, base);
            let rec = &self.jit.traces[t as usize - 1];
            let snap = &rec.snaps[exit];
            if !snap.frames.is_empty() {
                return;
            }
            let side = rec.side[exit];
            if side != 0 && side != BLACKLISTED && self.can_enter(side, base) {
                t = side;
                continue;
            }
            // Resuming at a loop header with a trace is entering that trace.
            let proto = &self.frames.last().expect("the trace's frame").func.get().proto;
            if let Some(Op::Loop { id }) = proto.code.get(snap.pc as usize) {
                let next = proto.loops[*id as usize].trace.get();
                if next != 0 && next != BLACKLISTED && next != t && self.can_enter(next, base) {
                    t = next;
                    continue;
                }
                // The interpreter runs the header's profiler; a side trace
                // from here would only link to it.
                return;
            }
            if side == 0 && rec.exits[exit] >= self.jit.settings.hot_exit as u64 {
                self.start_side_trace(t, exit as u32, base);
            }
            return;
        }
    }

    /// Calls trace `t` and applies the snapshot of the exit it took.
    fn run_trace(&mut self, t: u32, base: usize) -> usize {
        let idx = t as usize - 1;
        let entry = self.jit.traces[idx].code.entry;
        // SAFETY: `can_enter` checked that every slot the trace may touch is
        // inside the value stack; the trace reads and writes only those slots
        // and heap objects it guarded, and it allocates nothing (so no GC can
        // run while it holds object pointers).
        let exit = unsafe { entry(self.stack.as_mut_ptr().add(base)) } as usize;
        let rec = &mut self.jit.traces[idx];
        rec.entries += 1;
        rec.exits[exit] += 1;
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
        exit
    }

    /// Starts recording a side trace from exit `exit` of trace `t`; the
    /// interpreter is about to resume at that exit's pc.
    fn start_side_trace(&mut self, t: u32, exit: u32, base: usize) {
        // Bound chains of side traces: an exit that keeps failing in every
        // new side trace must not grow them without end.
        let mut depth = 0;
        let mut p = self.jit.traces[t as usize - 1].parent;
        while let Some((pt, _)) = p {
            depth += 1;
            p = self.jit.traces[pt as usize - 1].parent;
        }
        if depth >= MAX_SIDE_DEPTH {
            self.jit.traces[t as usize - 1].side[exit as usize] = BLACKLISTED;
            return;
        }
        let rec = &self.jit.traces[t as usize - 1];
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
        let where_ = format!("trace{t} exit S{exit}");
        self.jit.start_recording(r, &where_);
    }
}
