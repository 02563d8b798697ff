//! Dead-code elimination: removes instructions whose value nothing needs.
//!
//! Roots: guards, stores, the `Loop` marker, and the tail snapshot. A live
//! instruction makes its operands live; a live guard makes its snapshot's
//! entries and frames live; a live `Phi` makes its `b` (the value from the
//! previous iteration) live — so a loop-carried value computed only for
//! itself dies with its `Phi`. Snapshots no live guard uses are dropped by
//! compaction.

use super::compact;
use crate::inst::{Inst, Opcode, Ref, SnapId};
use crate::trace::Trace;
use crate::types::Type;

/// Removes dead instructions; see the module docs.
pub fn dce(mut t: Trace) -> Trace {
    let mut m = Marker { live: vec![false; t.insts.len()], snap_done: vec![false; t.snaps.len()], work: Vec::new() };
    for (i, inst) in t.insts.iter().enumerate() {
        let root = inst.op.is_guard(inst.ty) || inst.op.is_store() || inst.op == Opcode::Loop;
        if inst.op != Opcode::Nop && root {
            m.mark(Ref(i as u32));
        }
    }
    if let Some(tail) = t.tail {
        m.mark_snap(&t, tail);
    }
    while let Some(r) = m.work.pop() {
        let inst = t.insts[r.index()];
        for o in inst.operands() {
            m.mark(o);
        }
        if inst.snap != SnapId::NONE {
            m.mark_snap(&t, inst.snap);
        }
    }
    for (inst, live) in t.insts.iter_mut().zip(m.live) {
        if !live {
            *inst = Inst::new(Opcode::Nop, Type::Void);
        }
    }
    compact(t)
}

struct Marker {
    live: Vec<bool>,
    snap_done: Vec<bool>,
    work: Vec<Ref>,
}

impl Marker {
    fn mark(&mut self, r: Ref) {
        if !r.is_none() && !self.live[r.index()] {
            self.live[r.index()] = true;
            self.work.push(r);
        }
    }

    fn mark_snap(&mut self, t: &Trace, s: SnapId) {
        let Some(snap) = t.snaps.get(s.0 as usize) else { return };
        if std::mem::replace(&mut self.snap_done[s.0 as usize], true) {
            return;
        }
        for r in snap.entries.iter().map(|e| e.value).chain(snap.frames.iter().map(|f| f.func)) {
            self.mark(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dce;
    use crate::passes::testutil::check;

    #[test]
    fn removes_unused_values_but_keeps_guards_stores_and_snapshot_values() {
        check(
            dce,
            "0000 int > sload #0 S0
             0001 int > sload #1 S0
             0002 val sload #2
             0003 int kint 1
             0004 int add 0000 0003
             0005 int add 0004 0003
             0006 flt itof 0001
             0007 int > addov 0000 0003 S1
             0008 arr > sload #3 S0
             0009 val aload 0008 0000
             0010 val box 0005
             0011 astore 0008 0000 0010
             0012 int add 0007 0007
             S0 pc=1 at=0000
             S1 pc=2 at=0007 #5=0004
             S2 pc=3 at=0012 #9=0006
             tail S2",
            // 0002 (a non-guard sload), 0009 and 0012 are dead; 0004 lives for S1, 0006 for the tail.
            "0000 int > sload #0 S0
             0001 int > sload #1 S0
             0002 int kint 1
             0003 int add 0000 0002
             0004 int add 0003 0002
             0005 flt itof 0001
             0006 int > addov 0000 0002 S1
             0007 arr > sload #3 S0
             0008 val box 0004
             0009 astore 0007 0000 0008
             S0 pc=1 at=0000
             S1 pc=2 at=0006 #5=0003
             S2 pc=3 at=0010 #9=0005
             tail S2",
        );
    }

    #[test]
    fn phis_live_only_through_their_uses() {
        check(
            dce,
            "0000 int > sload #0 S0
             0001 int kint 1
             0002 int add 0000 0001
             0003 loop
             0004 int phi 0002 0007
             0005 int phi 0002 0006
             0006 int add 0005 0001
             0007 int add 0004 0001
             0008 bool ilt 0007 0000
             0009 > gtrue 0008 S1
             S0 pc=1 at=0000
             S1 pc=1 at=0009 #0=0004
             S2 pc=1 at=0010
             tail S2",
            // The second phi only feeds itself: it dies, with its update.
            "0000 int > sload #0 S0
             0001 int kint 1
             0002 int add 0000 0001
             0003 loop
             0004 int phi 0002 0005
             0005 int add 0004 0001
             0006 bool ilt 0005 0000
             0007 > gtrue 0006 S1
             S0 pc=1 at=0000
             S1 pc=1 at=0007 #0=0004
             S2 pc=1 at=0008
             tail S2",
        );
    }

    #[test]
    fn keeps_calls_and_their_argument_lists() {
        check(
            dce,
            "0000 int > sload #0 S0
             0001 val box 0000
             0002 carg 0001 0001
             0003 str > callg concat 0002 S0
             0004 map call map_new
             0005 int call map_len 0004
             0006 carg 0001 0001
             0007 str kptr 0x10
             0008 int slen 0007
             S0 pc=1 at=0000",
            // Unused results of calls stay (the calls may allocate or fail); an unused
            // `carg` and a pure `slen` go.
            "0000 int > sload #0 S0
             0001 val box 0000
             0002 carg 0001 0001
             0003 str > callg concat 0002 S0
             0004 map call map_new
             0005 int call map_len 0004
             S0 pc=1 at=0000",
        );
    }
}
