//! OSR entry and exit: calls a compiled trace from the interpreter's loop
//! header, and on a failed guard turns the exit's snapshot back into
//! interpreter frames so the interpreter resumes as if it had run all along.
//!
//! The exit code itself has already stored the snapshot's slots (boxed) into
//! the value stack; what is left here is the frame records: the pc to resume
//! at, and a `Frame` for each call the trace had inlined.

use crate::interp::{Frame, Vm};

impl Vm {
    /// Whether trace `t` may run with its root frame at stack slot `base`:
    /// every slot and frame its exits can create must fit.
    #[inline(never)]
    pub(crate) fn can_enter(&self, t: u32, base: usize) -> bool {
        let rec = &self.jit.traces[t as usize - 1];
        base + rec.extent < self.stack.len() && self.frames.len() + rec.max_frames < self.config.max_call_depth
    }

    /// Runs trace `t` from the loop header of the innermost frame (whose
    /// registers start at stack slot `base`) until it exits, then rebuilds
    /// the interpreter state described by the exit's snapshot.
    #[cold]
    #[inline(never)]
    pub(crate) fn enter_trace(&mut self, t: u32, base: usize) {
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
    }
}
