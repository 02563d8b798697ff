//! Compaction: drops `Nop`s and snapshots nothing uses, renumbering what
//! remains. Every pass that removes instructions ends with it.

use crate::inst::{Opcode, Ref, SnapId};
use crate::trace::Trace;

/// Removes `Nop` instructions and the snapshots no live guard and not the tail
/// use; renumbers refs (operands, `Phi` forward refs, snapshot entries and
/// frames), snapshot ids (guards, tail) and snapshot `at` positions (to the
/// first kept instruction at or after the old position), then rebuilds the
/// constant table.
///
/// Panics if a kept instruction or snapshot refers to a `Nop` (a pass forgot
/// to substitute a value it removed).
pub fn compact(mut t: Trace) -> Trace {
    let n = t.insts.len();
    let mut used = vec![false; t.snaps.len()];
    for inst in t.insts.iter().filter(|i| i.op != Opcode::Nop && i.snap != SnapId::NONE) {
        used[inst.snap.0 as usize] = true;
    }
    if let Some(tail) = t.tail {
        used[tail.0 as usize] = true;
    }

    // before[i]: number of kept instructions before position i.
    let mut new_ref = vec![Ref::NONE; n];
    let mut before = Vec::with_capacity(n + 1);
    let mut kept = 0u32;
    for (i, inst) in t.insts.iter().enumerate() {
        before.push(kept);
        if inst.op != Opcode::Nop {
            new_ref[i] = Ref(kept);
            kept += 1;
        }
    }
    before.push(kept);
    let map = |r: Ref| -> Ref {
        if r.is_none() {
            return r;
        }
        let m = new_ref[r.index()];
        assert!(!m.is_none(), "compact: reference to removed instruction {:04}", r.0);
        m
    };

    let mut new_snap = vec![SnapId::NONE; t.snaps.len()];
    let mut snaps = Vec::new();
    for (s, mut snap) in std::mem::take(&mut t.snaps).into_iter().enumerate() {
        if !used[s] {
            continue;
        }
        new_snap[s] = SnapId(snaps.len() as u32);
        for e in &mut snap.entries {
            e.value = map(e.value);
        }
        for f in &mut snap.frames {
            f.func = map(f.func);
        }
        snap.at = before[snap.at as usize];
        snaps.push(snap);
    }

    let mut insts = Vec::with_capacity(kept as usize);
    for mut inst in std::mem::take(&mut t.insts).into_iter().filter(|i| i.op != Opcode::Nop) {
        for r in inst.operands_mut() {
            *r = map(*r);
        }
        if inst.snap != SnapId::NONE {
            inst.snap = new_snap[inst.snap.0 as usize];
        }
        insts.push(inst);
    }
    t.insts = insts;
    t.snaps = snaps;
    t.tail = t.tail.map(|s| new_snap[s.0 as usize]);
    t.rebuild_const_table();
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::testutil::check;

    #[test]
    fn renumbers_refs_snapshots_and_positions() {
        check(
            compact,
            "0000 int >  sload  #1 S1
             0001        nop
             0002 int    kint   1
             0003        nop
             0004 int >  addov  0000 0002 S1
             0005        loop
             0006 int    phi    0004 0007
             0007 int >  addov  0006 0002 S2
             S0 pc=1 at=0000
             S1 pc=2 at=0000
             S2 pc=3 at=0007 #1=0006
             S3 pc=4 at=0008 #1=0007
             tail S3",
            "0000 int >  sload  #1 S0
             0001 int    kint   1
             0002 int >  addov  0000 0001 S0
             0003        loop
             0004 int    phi    0002 0005
             0005 int >  addov  0004 0001 S1
             S0 pc=2 at=0000
             S1 pc=3 at=0005 #1=0004
             S2 pc=4 at=0006 #1=0005
             tail S2",
        );
    }

    #[test]
    fn snapshot_at_a_removed_instruction_moves_to_the_next_kept_one() {
        check(
            compact,
            "0000 bool   kbool  true
             0001        nop
             0002        nop
             0003      > gtrue  0000 S0
             S0 pc=1 at=0002",
            "0000 bool   kbool  true
             0001      > gtrue  0000 S0
             S0 pc=1 at=0001",
        );
    }
}
