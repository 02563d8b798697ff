//! Merging a side trace into its root: whether the side trace's code may run
//! inside the root's loop (the root's failed guard running the side trace
//! in place of leaving, and the side trace's end jumping straight back to
//! the root's loop header), and which slot each loop-carried value is read
//! back from when it does. Pure analysis of two optimised traces; the back
//! end builds the code, and must not merge a pair this rejects.
//!
//! The merged code keeps the contract of both traces: the root's exit
//! writes its snapshot to the stack before the side trace runs, and the side
//! trace writes its final snapshot before jumping back, so the stack holds
//! the interpreter's state at the loop header. What the root's code assumes
//! at its header must then agree with the stack:
//!
//! * each `Phi` is read back from a slot it stands for, which must hold a
//!   value of the phi's type;
//! * every other slot the root's tail snapshot names holds either a value
//!   the root computed before the loop (or a constant), which the side trace
//!   must leave as the root's exit wrote it, or a value each iteration
//!   computes afresh before any exit names the slot, which the side trace
//!   may change (a temporary register both paths use);
//! * a slot the root reads before the loop and never writes must not be
//!   written by the side trace (nor by the exit);
//! * a slot the exit writes that the tail snapshot does not name is dead at
//!   the header (the recorder leaves registers no path reads before writing
//!   out of snapshots), so it may hold anything there;
//! * the side trace writes no heap memory and calls nothing, so no value the
//!   root loaded before the loop goes stale.

use crate::inst::{Opcode, Ref, SnapId};
use crate::trace::Trace;
use crate::types::Type;

/// How a merged side trace rejoins its root's loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergePlan {
    /// The side trace's snapshot at the root's loop header (its last exit).
    pub loopback: SnapId,
    /// Each root `Phi`, with the slot its value is read back from.
    pub reload: Vec<(Ref, i32)>,
}

/// Where a slot's value comes from after the root's exit and the side trace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Root(Ref),
    Side(Ref),
}

/// Checks that `side`, grown from `root`'s exit through snapshot `exit`, may
/// be merged into `root`, and says how its end rejoins the loop.
pub fn plan(root: &Trace, exit: SnapId, side: &Trace) -> Result<MergePlan, String> {
    let lp = root.loop_start().ok_or("the root has no loop")?.index();
    if root.insts.iter().any(|i| i.op.is_native_call() || i.op == Opcode::Ret) {
        return Err("the root makes native calls".into());
    }
    let tail = root.snaps.get(root.tail.ok_or("the root has no tail snapshot")?.0 as usize).ok_or("bad root tail")?;
    if !tail.frames.is_empty() {
        return Err("the root's tail snapshot has inlined frames".into());
    }
    let at_exit = root.snaps.get(exit.0 as usize).ok_or("no such exit")?;
    if !at_exit.frames.is_empty() || at_exit.gc {
        return Err("the exit is in an inlined frame or a GC exit".into());
    }
    let guards: Vec<usize> = (0..root.insts.len())
        .filter(|&k| root.insts[k].op.is_guard(root.insts[k].ty) && root.insts[k].snap == exit)
        .collect();
    if guards.is_empty() || guards.iter().any(|&k| k < lp) {
        return Err("the exit is not (only) in the loop body".into());
    }

    let loopback = side_loopback(side)?;
    let end = &side.snaps[loopback.0 as usize];
    if !end.frames.is_empty() || end.pc != tail.pc {
        return Err("the side trace does not end at the root's loop header".into());
    }
    if let Some(i) = side.insts.iter().find(|i| i.op.is_store() || i.op == Opcode::Phi) {
        return Err(format!("the side trace writes memory or calls ({})", i.op.name()));
    }

    let side_value = |slot: i32| end.entries.iter().find(|e| e.slot == slot).map(|e| e.value);
    let exit_value = |slot: i32| at_exit.entries.iter().find(|e| e.slot == slot).map(|e| e.value);
    let after = |slot: i32| side_value(slot).map(Source::Side).or(exit_value(slot).map(Source::Root));
    // A slot the exit names but the tail does not was written in the
    // iteration and is dead at the header (snapshots leave dead registers
    // out): no iteration reads it before writing it, so whatever the exit
    // leaves there is harmless, unless the root reads it once before its loop.
    let read_once = |slot: i32| root.insts.iter().any(|i| i.op == Opcode::SLoad && i.imm as i32 == slot);
    let outside = |slot: i32| !tail.entries.iter().any(|t| t.slot == slot);
    if let Some(e) = at_exit.entries.iter().find(|e| outside(e.slot) && read_once(e.slot)) {
        return Err(format!("the exit writes slot {} outside the loop's state", e.slot));
    }

    let phis: Vec<usize> = (lp + 1..root.insts.len()).filter(|&k| root.insts[k].op == Opcode::Phi).collect();
    let mut reload = Vec::with_capacity(phis.len());
    for &p in &phis {
        let phi = root.insts[p];
        let slots: Vec<i32> = tail.entries.iter().filter(|e| e.value == phi.b).map(|e| e.slot).collect();
        let Some(&first) = slots.first() else {
            return Err(format!("loop-carried {p:04} is no slot's value at the loop header"));
        };
        let src = after(first).ok_or_else(|| format!("slot {first} of {p:04} is not written on the way back"))?;
        if slots.iter().any(|&s| after(s) != Some(src)) {
            return Err(format!("the slots of {p:04} part ways in the side trace"));
        }
        let ty = match src {
            Source::Root(r) => root.ty(r),
            Source::Side(r) => side.ty(r),
        };
        if phi.ty != Type::Value && ty != phi.ty {
            return Err(format!("slot {first} of {p:04} comes back as {} instead of {}", ty.name(), phi.ty.name()));
        }
        reload.push((Ref(p as u32), first));
    }

    let carried = |slot: i32| {
        reload.iter().any(|&(p, _)| tail.entries.iter().any(|e| e.slot == slot && e.value == root.inst(p).b))
    };
    // Made afresh in every iteration (in the body, not carried): every exit
    // that names the slot writes this iteration's value.
    let fresh = |r: Ref| r.index() > lp && r.index() < root.insts.len() && root.insts[r.index()].op != Opcode::Phi;
    let body_snaps: Vec<usize> = (lp + 1..root.insts.len())
        .filter(|&k| root.insts[k].op.is_guard(root.insts[k].ty))
        .map(|k| root.insts[k].snap.0 as usize)
        .collect();
    for t in tail.entries.iter().filter(|t| !carried(t.slot)) {
        let kept = side_value(t.slot).is_none() && exit_value(t.slot) == Some(t.value);
        let rewritten = fresh(t.value)
            && body_snaps.iter().all(|&s| root.snaps[s].entries.iter().all(|e| e.slot != t.slot || fresh(e.value)));
        if !kept && !rewritten {
            return Err(format!("slot {} is the same on every iteration but the side trace may change it", t.slot));
        }
    }
    for i in root.insts.iter().filter(|i| i.op == Opcode::SLoad) {
        let slot = i.imm as i32;
        if !tail.entries.iter().any(|t| t.slot == slot) && side_value(slot).is_some() {
            return Err(format!("the side trace writes slot {slot}, which the root reads once before its loop"));
        }
    }
    Ok(MergePlan { loopback, reload })
}

/// The snapshot a straight side trace ends through: the always-failing guard
/// right before its closing `loop`.
pub fn side_loopback(side: &Trace) -> Result<SnapId, String> {
    let lp = side.loop_start().ok_or("the side trace has no loop marker")?.index();
    if lp + 1 != side.insts.len() || lp == 0 {
        return Err("the side trace does not end at its loop marker".into());
    }
    let g = side.insts[lp - 1];
    let never = side.insts.get(g.a.index()).is_some_and(|c| c.op == Opcode::KBool && c.imm == 0);
    if g.op != Opcode::GuardTrue || !never {
        return Err("the side trace does not end by leaving".into());
    }
    Ok(g.snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    /// `for i in 0..n { total += i; if i % 3 == 1 { odd += 1 } }` and the
    /// side trace of its `if` (also used by the `vela` back end's tests).
    const ROOT: &str = include_str!("../tests/data/merge_root.ir");
    const SIDE: &str = include_str!("../tests/data/merge_side.ir");

    fn pair(side_edit: impl Fn(&str) -> String) -> (Trace, Trace) {
        (parse(ROOT).expect("root parses"), parse(&side_edit(SIDE)).expect("side parses"))
    }

    #[test]
    fn a_branch_that_rejoins_the_loop_merges() {
        let (root, side) = pair(|s| s.to_string());
        let plan = plan(&root, SnapId(8), &side).expect("merges");
        assert_eq!(plan.loopback, SnapId(7));
        // total from the root's exit, i from the side trace, the remainder
        // from the root's exit.
        assert_eq!(plan.reload, vec![(Ref(14), 1), (Ref(15), 3), (Ref(16), 6)]);
    }

    #[test]
    fn what_the_loop_assumes_must_still_hold() {
        let rejects = |edit: &dyn Fn(&str) -> String, why: &str| {
            let (root, side) = pair(edit);
            let err = plan(&root, SnapId(8), &side).expect_err(why);
            assert!(err.contains(why), "{err}");
        };
        // The side trace overwrites n, which the root read once.
        rejects(&|s| s.replace("#3=0008 #5=0008", "#3=0008 #4=0008 #5=0008"), "reads once before its loop");
        // i comes back as a Float.
        rejects(&|s| s.replace("0008 int    add    0006 0000", "0008 flt    kflt 1.5"), "comes back as");
        // With the remainder (slot 6) not carried but computed afresh by every
        // iteration before an exit names it, the side trace may reuse slot 6...
        let fresh_root = ROOT
            .replace("0016 int    phi    0004 0018", "0016        nop")
            .replace("S7 pc=7 at=0017 #1=0014 #3=0015 #5=0015 #6=0016", "S7 pc=7 at=0017 #1=0014 #3=0015 #5=0015");
        assert_eq!(fresh_root.matches("nop").count() + fresh_root.matches("#6=0016").count(), 1);
        let root = parse(&fresh_root).expect("root parses");
        let side = parse(&SIDE.replace("#3=0008 #5=0008", "#3=0008 #5=0008 #6=0008")).expect("side parses");
        assert!(plan(&root, SnapId(8), &side).is_ok());
        // ... but not if an exit before that names it with last iteration's value.
        let stale_root = fresh_root.replace("#1=0014 #3=0015 #5=0015\n", "#1=0014 #3=0015 #5=0015 #6=0004\n");
        assert_ne!(stale_root, fresh_root);
        let err = plan(&parse(&stale_root).expect("parses"), SnapId(8), &side).expect_err("stale");
        assert!(err.contains("same on every iteration"), "{err}");
        // The two slots of i disagree.
        rejects(&|s| s.replace("#5=0008", "#5=0006"), "part ways");
        // Ends at another pc.
        rejects(&|s| s.replace("S7 pc=6", "S7 pc=8"), "does not end at the root's loop header");
        // Ends by looping itself.
        rejects(&|s| s.replace("0012      > gtrue  0011 S7", "0012      > gtrue  0009 S7"), "does not end by leaving");
        // Writes the heap.
        rejects(&|s| s.replace("0010      > gtrue  0009 S6", "0010        astore 0006 0006 0006"), "astore");
    }

    #[test]
    fn an_exit_may_write_a_slot_dead_at_the_header() {
        // As the recorder snapshots it now: the remainder (slot 6) is dead
        // at the loop header, so neither the tail nor the exits where
        // nothing reads it name it, and no phi carries it. Exit S8, at the
        // `if` that reads it, still writes it.
        let pruned = ROOT
            .replace("0016 int    phi    0004 0018", "0016        nop")
            .replace(" #6=0016", "")
            .replace("S9 pc=11 at=0023 #1=0017 #3=0015 #5=0015 #6=0018", "S9 pc=11 at=0023 #1=0017 #3=0015 #5=0015")
            .replace("S10 pc=6 at=0024 #1=0017 #3=0021 #5=0021 #6=0018", "S10 pc=6 at=0024 #1=0017 #3=0021 #5=0021");
        let root = parse(&pruned).expect("root parses");
        let side = parse(SIDE).expect("side parses");
        assert!(root.snaps[8].entries.iter().any(|e| e.slot == 6), "the exit names slot 6");
        assert!(!root.snaps[10].entries.iter().any(|e| e.slot == 6), "the tail does not");
        let plan = plan(&root, SnapId(8), &side).expect("merges");
        assert_eq!(plan.reload, vec![(Ref(14), 1), (Ref(15), 3)]);
        // Unless the root reads that slot once before its loop: then the
        // loop relies on the stack keeping it.
        let reads_it = pruned.replace("0009 int  > sload  #4 S5", "0009 int  > sload  #6 S5");
        let err = plan_of(&reads_it, &side).expect_err("slot 6 is read once");
        assert!(err.contains("outside the loop's state"), "{err}");
    }

    fn plan_of(root: &str, side: &Trace) -> Result<MergePlan, String> {
        plan(&parse(root).expect("root parses"), SnapId(8), side)
    }

    #[test]
    fn only_exits_of_the_loop_body_merge() {
        let (root, side) = pair(|s| s.to_string());
        let err = plan(&root, SnapId(3), &side).expect_err("a peeled-iteration exit");
        assert!(err.contains("not (only) in the loop body"), "{err}");
        let err = plan(&root, SnapId(40), &side).expect_err("no such exit");
        assert!(err.contains("no such exit"), "{err}");
    }
}
