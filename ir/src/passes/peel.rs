//! Loop peeling by copy-substitution (the idea of LuaJIT's loop optimiser).
//!
//! The input is one recorded iteration. The output is that iteration, run once
//! (the peeled iteration), then `Loop`, the `Phi`s, and a copy of the
//! iteration with every value substituted: the loop body.
//!
//! - V = the slots of the tail snapshot (the slots the iteration changes). For
//!   each slot of V a `Phi` follows `Loop`, with `a` = the slot's value after
//!   the peeled iteration and `b` = its value after the copied iteration.
//! - In the copy, an `SLoad` of a slot of V becomes that slot's `Phi` (the
//!   types must agree, else the loop is type-unstable: an error); an `SLoad`
//!   of another slot becomes the original `SLoad` (the slot never changes).
//!   Constants are not copied. Every other instruction is copied with its
//!   operands substituted, unless an identical instruction (same opcode,
//!   type, operands, immediate) is already in the trace: then that one is
//!   reused. This is what hoists loop-invariant code and guards: their copies
//!   are identical to the peeled originals. A load is reused only if the
//!   iteration stores nothing of its kind (stores run between the original
//!   and every later iteration); stores are always copied.
//! - A copied guard exits through a copy of its snapshot: the slots of V hold
//!   their `Phi`s (the state at the start of the iteration), overridden by the
//!   original entries, substituted. The copied tail is the new tail and gives
//!   the `Phi`s their `b`.
//! - A `Phi` whose `b` is itself or equal to its `a` never changes: it is
//!   replaced by its `a`.

use rustc_hash::FxHashMap;

use super::{apply_subst, compact, identity_map, key, load_mem, store_mem, Key, Mem};
use crate::inst::{Inst, Opcode, Ref, SnapId};
use crate::print::ref_str;
use crate::snapshot::{SnapEntry, Snapshot};
use crate::trace::Trace;
use crate::types::Type;

/// Peels the recorded iteration `t` (no `Loop` yet, with a tail snapshot).
/// Errors: `t` already has a loop or a phi, has no tail (or a tail with
/// inlined frames), refers to a removed instruction, or is type-unstable.
pub fn peel(t: Trace) -> Result<Trace, String> {
    if let Some(l) = t.loop_start() {
        return Err(format!("peel: the trace already has a loop marker ({:04})", l.0));
    }
    if let Some(p) = t.insts.iter().position(|i| i.op == Opcode::Phi) {
        return Err(format!("peel: phi {p:04} in a trace without a loop"));
    }
    let tail_id = t.tail.ok_or("peel: the trace has no tail snapshot")?;
    let tail = t.snaps.get(tail_id.0 as usize).ok_or_else(|| format!("peel: tail S{} does not exist", tail_id.0))?;
    if !tail.frames.is_empty() {
        return Err(format!("peel: tail S{} has inlined frames: not at the loop header", tail_id.0));
    }
    let tail_entries = tail.entries.clone();
    let n = t.insts.len();
    let stored: Vec<Mem> = t.insts.iter().filter_map(store_mem).collect();
    let reusable = |i: &Inst| match load_mem(i) {
        Some(m) => !stored.iter().any(|s| s.clobbers(m)),
        None => !i.op.is_store() && !i.op.is_const() && !matches!(i.op, Opcode::Nop | Opcode::Loop | Opcode::Phi),
    };
    let mut seen: FxHashMap<Key, Ref> = FxHashMap::default();
    for (i, inst) in t.insts.iter().enumerate() {
        if reusable(inst) {
            seen.entry(key(inst)).or_insert(Ref(i as u32));
        }
    }

    let mut p = Peeler {
        t,
        subst: vec![Ref::NONE; n],
        copy_pos: vec![0; n + 1],
        copied: FxHashMap::default(),
        phis: Vec::new(),
    };
    p.t.push(Inst::new(Opcode::Loop, Type::Void));
    for e in &tail_entries {
        let ty = if e.value.is_none() || e.value.index() >= n { Type::Void } else { p.t.ty(e.value) };
        let mut phi = Inst::new(Opcode::Phi, ty);
        phi.a = e.value;
        let r = p.t.push(phi);
        p.phis.push((e.slot, r));
    }

    for i in 0..n {
        p.copy_pos[i] = p.t.insts.len() as u32;
        let inst = p.t.insts[i];
        let me = Ref(i as u32);
        if inst.op == Opcode::Nop {
            continue;
        }
        if inst.op.is_const() {
            p.subst[i] = me;
            continue;
        }
        if inst.op == Opcode::SLoad {
            p.subst[i] = match p.phi(inst.imm as i32) {
                None => me,
                Some(phi) if p.t.ty(phi) == inst.ty => phi,
                Some(phi) => {
                    return Err(format!(
                        "peel: type-unstable loop: slot #{} is loaded as {} ({}) but the iteration leaves {} {} in it",
                        inst.imm,
                        inst.ty,
                        ref_str(me),
                        p.t.ty(phi),
                        ref_str(p.t.inst(phi).a)
                    ))
                }
            };
            continue;
        }
        let mut c = inst;
        for r in c.operands_mut() {
            *r = p.subst_of(*r)?;
        }
        if reusable(&c) {
            if let Some(&r) = seen.get(&key(&c)) {
                p.subst[i] = r;
                continue;
            }
        }
        if c.snap != SnapId::NONE {
            c.snap = p.copy_snapshot(c.snap)?;
        }
        let r = p.t.push(c);
        if reusable(&c) {
            seen.insert(key(&c), r);
        }
        p.subst[i] = r;
    }
    p.copy_pos[n] = p.t.insts.len() as u32;

    let new_tail = p.copy_snapshot(tail_id)?;
    for (k, &(_, phi)) in p.phis.iter().enumerate() {
        let b = p.subst_of(tail_entries[k].value)?;
        p.t.inst_mut(phi).b = b;
    }
    let mut t = p.t;
    t.tail = Some(new_tail);

    // Phis that never change are their entry value.
    let phis: Vec<Ref> = p.phis.iter().map(|&(_, r)| r).collect();
    loop {
        let mut map = identity_map(t.insts.len());
        let mut changed = false;
        for &r in &phis {
            let phi = *t.inst(r);
            if phi.op == Opcode::Phi && (phi.b == r || phi.b == phi.a) {
                map[r.index()] = phi.a;
                *t.inst_mut(r) = Inst::new(Opcode::Nop, Type::Void);
                changed = true;
            }
        }
        if !changed {
            break;
        }
        apply_subst(&mut t, &map);
    }
    Ok(compact(t))
}

struct Peeler {
    t: Trace,
    /// Original ref → its value in the copy.
    subst: Vec<Ref>,
    /// Original position → position in the output where its copy starts.
    copy_pos: Vec<u32>,
    /// Original snapshot → its copy.
    copied: FxHashMap<SnapId, SnapId>,
    /// (slot, phi), sorted by slot.
    phis: Vec<(i32, Ref)>,
}

impl Peeler {
    fn phi(&self, slot: i32) -> Option<Ref> {
        self.phis.binary_search_by_key(&slot, |&(s, _)| s).ok().map(|k| self.phis[k].1)
    }

    fn subst_of(&self, r: Ref) -> Result<Ref, String> {
        match self.subst.get(r.index()) {
            Some(&s) if !s.is_none() => Ok(s),
            _ => Err(format!("peel: reference to {}, which is not an earlier instruction", ref_str(r))),
        }
    }

    fn copy_snapshot(&mut self, id: SnapId) -> Result<SnapId, String> {
        if let Some(&c) = self.copied.get(&id) {
            return Ok(c);
        }
        let orig = self.t.snaps.get(id.0 as usize).ok_or_else(|| format!("peel: S{} does not exist", id.0))?.clone();
        let mut entries: Vec<SnapEntry> = self.phis.iter().map(|&(slot, value)| SnapEntry { slot, value }).collect();
        for e in &orig.entries {
            let value = self.subst_of(e.value)?;
            match entries.binary_search_by_key(&e.slot, |x| x.slot) {
                Ok(k) => entries[k].value = value,
                Err(k) => entries.insert(k, SnapEntry { slot: e.slot, value }),
            }
        }
        let mut frames = orig.frames.clone();
        for f in &mut frames {
            f.func = self.subst_of(f.func)?;
        }
        let at = *self.copy_pos.get(orig.at as usize).ok_or_else(|| format!("peel: S{} is past the end", id.0))?;
        let c = self.t.add_snapshot(Snapshot { pc: orig.pc, entries, frames, at, gc: orig.gc });
        self.copied.insert(id, c);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::peel;
    use crate::parse::parse;
    use crate::passes::testutil::check;

    fn peeled(t: crate::Trace) -> crate::Trace {
        peel(t).unwrap()
    }

    #[test]
    fn counter_loop() {
        check(
            peeled,
            "0000 int > sload #0 S0      -- i
             0001 int kint 1
             0002 int > addov 0000 0001 S0
             0003 int > sload #1 S0      -- n
             0004 bool ilt 0002 0003
             0005 > gtrue 0004 S1
             S0 pc=5 at=0000
             S1 pc=9 at=0005 #0=0002
             S2 pc=5 at=0006 #0=0002
             tail S2",
            "0000 int > sload #0 S0
             0001 int kint 1
             0002 int > addov 0000 0001 S0
             0003 int > sload #1 S0
             0004 bool ilt 0002 0003
             0005 > gtrue 0004 S1
             0006 loop
             0007 int phi 0002 0008
             0008 int > addov 0007 0001 S2
             0009 bool ilt 0008 0003
             0010 > gtrue 0009 S3
             S0 pc=5 at=0000
             S1 pc=9 at=0005 #0=0002
             S2 pc=5 at=0008 #0=0007
             S3 pc=9 at=0010 #0=0008
             S4 pc=5 at=0011 #0=0008
             tail S4",
        );
    }

    #[test]
    fn hoists_invariant_loads_and_guards() {
        check(
            peeled,
            "0000 arr > sload #0 S0      -- a, never written
             0001 int > sload #1 S0      -- i
             0002 int alen 0000
             0003 bool ilt 0001 0002
             0004 > gtrue 0003 S0
             0005 val aload 0000 0001
             0006 int > unbox 0005 S0
             0007 int > sload #2 S0      -- sum
             0008 int > addov 0007 0006 S0
             0009 int kint 1
             0010 int > addov 0001 0009 S1
             S0 pc=3 at=0000
             S1 pc=6 at=0010 #2=0008
             S2 pc=3 at=0011 #1=0010 #2=0008
             tail S2",
            // `sload #0` and `alen` are reused: the loop has no copy of them.
            "0000 arr > sload #0 S0
             0001 int > sload #1 S0
             0002 int alen 0000
             0003 bool ilt 0001 0002
             0004 > gtrue 0003 S0
             0005 val aload 0000 0001
             0006 int > unbox 0005 S0
             0007 int > sload #2 S0
             0008 int > addov 0007 0006 S0
             0009 int kint 1
             0010 int > addov 0001 0009 S1
             0011 loop
             0012 int phi 0010 0019
             0013 int phi 0008 0018
             0014 bool ilt 0012 0002
             0015 > gtrue 0014 S2
             0016 val aload 0000 0012
             0017 int > unbox 0016 S2
             0018 int > addov 0013 0017 S2
             0019 int > addov 0012 0009 S3
             S0 pc=3 at=0000
             S1 pc=6 at=0010 #2=0008
             S2 pc=3 at=0014 #1=0012 #2=0013
             S3 pc=6 at=0019 #1=0012 #2=0018
             S4 pc=3 at=0020 #1=0019 #2=0018
             tail S4",
        );
    }

    #[test]
    fn loads_of_stored_kinds_stay_in_the_loop() {
        check(
            peeled,
            "0000 obj > sload #0 S0
             0001 > gdef 0000 def 7 S0
             0002 val fload 0000 field 1
             0003 flt > unbox 0002 S0
             0004 flt > sload #1 S0
             0005 flt fadd 0004 0003
             0006 val box 0005
             0007 fstore 0000 0006 field 2
             0008 val fload 0000 field 2
             S0 pc=2 at=0000
             S1 pc=2 at=0009 #1=0005 #3=0008
             tail S1",
            // The guards and `fload field 1` are invariant; field 2 is stored, so reloaded.
            "0000 obj > sload #0 S0
             0001 > gdef 0000 def 7 S0
             0002 val fload 0000 field 1
             0003 flt > unbox 0002 S0
             0004 flt > sload #1 S0
             0005 flt fadd 0004 0003
             0006 val box 0005
             0007 fstore 0000 0006 field 2
             0008 val fload 0000 field 2
             0009 loop
             0010 flt phi 0005 0012
             0011 val phi 0008 0015
             0012 flt fadd 0010 0003
             0013 val box 0012
             0014 fstore 0000 0013 field 2
             0015 val fload 0000 field 2
             S0 pc=2 at=0000
             S1 pc=2 at=0016 #1=0012 #3=0015
             tail S1",
        );
    }

    #[test]
    fn stored_globals_are_reloaded_in_the_loop() {
        check(
            peeled,
            "0000 val kptr 0x1000
             0001 val gload 0000 global 1
             0002 int > unbox 0001 S0
             0003 val gload 0000 global 2
             0004 int > unbox 0003 S0
             0005 int add 0002 0004
             0006 val box 0005
             0007 gstore 0000 0006 global 1
             S0 pc=2 at=0001
             S1 pc=2 at=0008
             tail S1",
            // Global 2 is invariant (loaded and guarded once); global 1 is stored, so reloaded.
            "0000 val kptr 0x1000
             0001 val gload 0000 global 1
             0002 int > unbox 0001 S0
             0003 val gload 0000 global 2
             0004 int > unbox 0003 S0
             0005 int add 0002 0004
             0006 val box 0005
             0007 gstore 0000 0006 global 1
             0008 loop
             0009 val gload 0000 global 1
             0010 int > unbox 0009 S1
             0011 int add 0010 0004
             0012 val box 0011
             0013 gstore 0000 0012 global 1
             S0 pc=2 at=0001
             S1 pc=2 at=0009
             S2 pc=2 at=0014
             tail S2",
        );
    }

    #[test]
    fn swapped_and_unchanged_slots() {
        check(
            peeled,
            "0000 int > sload #0 S0
             0001 int > sload #1 S0
             0002 int > sload #2 S0
             0003 int kint 7
             S0 pc=1 at=0000
             S1 pc=1 at=0004 #0=0001 #1=0000 #2=0002 #3=0003
             tail S1",
            // a, b = b, a: the phis refer to each other; #2 (written back unchanged) and #3 (a
            // constant) need no phi.
            "0000 int > sload #0 S0
             0001 int > sload #1 S0
             0002 int > sload #2 S0
             0003 int kint 7
             0004 loop
             0005 int phi 0001 0006
             0006 int phi 0000 0005
             S0 pc=1 at=0000
             S1 pc=1 at=0007 #0=0006 #1=0005 #2=0002 #3=0003
             tail S1",
        );
    }

    #[test]
    fn copies_frames_and_keeps_snapshot_entries_sorted() {
        check(
            peeled,
            "0000 int > sload #4 S0
             0001 fun kptr 0x5000
             0002 int kint 1
             0003 int > addov 0000 0002 S1
             0004 int > addov 0003 0002 S2
             S0 pc=1 at=0000
             S1 pc=20 at=0003 #6=0000 frames=[0001 base=5 ret=3]
             S2 pc=21 at=0004 #2=0003 frames=[0001 base=5 ret=3]
             S3 pc=1 at=0005 #4=0004
             tail S3",
            "0000 int > sload #4 S0
             0001 fun kptr 0x5000
             0002 int kint 1
             0003 int > addov 0000 0002 S1
             0004 int > addov 0003 0002 S2
             0005 loop
             0006 int phi 0004 0008
             0007 int > addov 0006 0002 S3
             0008 int > addov 0007 0002 S4
             S0 pc=1 at=0000
             S1 pc=20 at=0003 #6=0000 frames=[0001 base=5 ret=3]
             S2 pc=21 at=0004 #2=0003 frames=[0001 base=5 ret=3]
             S3 pc=20 at=0007 #4=0006 #6=0006 frames=[0001 base=5 ret=3]
             S4 pc=21 at=0008 #2=0007 #4=0006 frames=[0001 base=5 ret=3]
             S5 pc=1 at=0009 #4=0008
             tail S5",
        );
    }

    #[test]
    fn errors() {
        let unstable = "0000 int > sload #0 S0\n0001 flt itof 0000\nS0 pc=1 at=0000\nS1 pc=1 at=0002 #0=0001\ntail S1";
        assert_eq!(
            peel(parse(unstable).unwrap()).unwrap_err(),
            "peel: type-unstable loop: slot #0 is loaded as int (0000) but the iteration leaves flt 0001 in it"
        );
        let looped = "0000 loop\nS0 pc=1 at=0001\ntail S0";
        assert_eq!(peel(parse(looped).unwrap()).unwrap_err(), "peel: the trace already has a loop marker (0000)");
        let no_tail = "0000 int kint 1";
        assert_eq!(peel(parse(no_tail).unwrap()).unwrap_err(), "peel: the trace has no tail snapshot");
    }

    /// `while .. { a.push(x); n = len(a) }`: the call may grow the array, so
    /// its length is read again in every iteration, and the call is copied.
    #[test]
    fn calls_are_copied_and_keep_loads_in_the_loop() {
        check(
            peeled,
            "0000 arr > sload #0 S0
             0001 val sload #1
             0002 call array_push 0000 0001
             0003 bool call gc_wanted
             0004 > gfalse 0003 S1
             0005 int alen 0000
             0006 str kptr 0x10
             0007 int slen 0006
             S0 pc=3 at=0000
             S1 pc=5 at=0004 gc
             S2 pc=3 at=0008 #2=0005 #3=0007
             tail S2",
            "0000 arr > sload #0 S0
             0001 val sload #1
             0002 call array_push 0000 0001
             0003 bool call gc_wanted
             0004 > gfalse 0003 S1
             0005 int alen 0000
             0006 str kptr 0x10
             0007 int slen 0006
             0008 loop
             0009 int phi 0005 0013
             0010 call array_push 0000 0001
             0011 bool call gc_wanted
             0012 > gfalse 0011 S2
             0013 int alen 0000
             S0 pc=3 at=0000
             S1 pc=5 at=0004 gc
             S2 pc=5 at=0012 gc #2=0009 #3=0007
             S3 pc=3 at=0014 #2=0013 #3=0007
             tail S3",
        );
    }
}
