//! Common-subexpression elimination (value numbering over the linear trace).
//!
//! An instruction identical to an earlier one (same opcode, type, operands
//! after substitution, immediate) is replaced by it:
//! - constants and pure instructions always;
//! - loads unless a store of the same memory kind (`Mem`) came in between. A
//!   store also makes its value available to a later load of the same place
//!   (store-to-load forwarding). At the `Loop` marker, every load of a kind
//!   the loop body stores to is forgotten: in the second and later iterations
//!   the body's stores run between the earlier load and the reuse. A helper
//!   call is a store to everything. `SLoad` is never invalidated (a trace
//!   never writes the stack), `ALen` and `AKind` only by calls (element
//!   stores never change an array's length, nor its kind: a store of an
//!   element of another kind never records);
//! - guards (with `cse_with_guards`, or `guards::redundant_guards` alone): a
//!   guard identical to an earlier one can never fail.
//!
//! A native `tcall` (and `ret`) is never merged with anything, and no load of
//! heap memory is reused across it: the callee may store anywhere. (`SLoad`s
//! stay valid: a callee writes only its own frame, above the caller's
//! registers the recorder still reads.)
//!
//! Reuse across the `Loop` marker needs nothing special: an instruction in the
//! loop is identical to one before it only if it has the same operand refs,
//! which then hold the same values in every iteration. Two `Phi`s with the
//! same `a` and the same `b` (compared as written: `b` refers forward) are
//! equal in every iteration, by induction, and are merged too (a slot and its
//! copy, like a `for` loop's counter and variable). Stores, helper calls and
//! the loop marker are never merged.

use rustc_hash::FxHashMap;

use super::{apply_subst, compact, identity_map, key, load_mem, store_mem, Key, Mem};
use crate::inst::{Inst, Opcode, Ref};
use crate::trace::Trace;
use crate::types::Type;

/// CSE of constants, pure instructions and loads.
pub fn cse(t: Trace) -> Trace {
    number(t, true, false)
}

/// `cse` and redundant-guard elimination in one sweep, so values merged by
/// either can make more of the other identical.
pub fn cse_with_guards(t: Trace) -> Trace {
    number(t, true, true)
}

/// Value numbering: merges values (`values`: constants, pure instructions and
/// loads) and/or guards (`guards`).
pub(crate) fn number(mut t: Trace, values: bool, guards: bool) -> Trace {
    let n = t.insts.len();
    let mut subst = identity_map(n);
    // Never invalidated: constants, pure instructions, SLoad/ALen, guards.
    let mut stable: FxHashMap<Key, Ref> = FxHashMap::default();
    // Loads (and store-forwarded values) a store can invalidate.
    let mut memory: FxHashMap<Key, Ref> = FxHashMap::default();
    let loop_pos = t.loop_start().map(|r| r.index());
    let body_stores: Vec<Mem> = match loop_pos {
        Some(l) => t.insts[l..].iter().filter_map(store_mem).collect(),
        None => Vec::new(),
    };

    for i in 0..n {
        let mut inst = t.insts[i];
        if inst.op == Opcode::Nop {
            continue;
        }
        for r in [&mut inst.a, &mut inst.c] {
            if !r.is_none() {
                *r = subst[r.index()];
            }
        }
        if inst.op != Opcode::Phi && !inst.b.is_none() {
            inst.b = subst[inst.b.index()];
        }
        t.insts[i] = inst;
        let me = Ref(i as u32);
        let table = match class(&inst) {
            Class::Stable if values => &mut stable,
            Class::Guard if guards => &mut stable,
            Class::Load if values => &mut memory,
            Class::Store(mem) if values => {
                memory.retain(|k, _| !kind_of(k).is_some_and(|l| mem.clobbers(l)));
                let elem = if inst.c.is_none() { Type::Void } else { t.ty(inst.c) };
                if let Some((k, v)) = forwarded(&inst, elem) {
                    memory.insert(k, v);
                }
                continue;
            }
            Class::Loop => {
                memory.retain(|k, _| kind_of(k).is_none_or(|m| !body_stores.iter().any(|s| s.clobbers(m))));
                continue;
            }
            _ => continue,
        };
        match table.get(&key(&inst)) {
            Some(&r) => {
                subst[i] = r;
                t.insts[i] = Inst::new(Opcode::Nop, Type::Void);
            }
            None => {
                table.insert(key(&inst), me);
            }
        }
    }
    apply_subst(&mut t, &subst);
    compact(t)
}

enum Class {
    /// Constants, pure instructions, phis and loads nothing in a trace can change.
    Stable,
    Guard,
    /// A load a store can change.
    Load,
    Store(Mem),
    Loop,
    Other,
}

fn class(i: &Inst) -> Class {
    // First: a `callg` is a guard too, but calls are never merged.
    if let Some(m) = store_mem(i) {
        return Class::Store(m);
    }
    if i.op.is_guard(i.ty) {
        return Class::Guard;
    }
    if load_mem(i).is_some() {
        return Class::Load;
    }
    match i.op {
        Opcode::Loop => Class::Loop,
        Opcode::Nop => Class::Other,
        _ => Class::Stable,
    }
}

fn kind_of(k: &Key) -> Option<Mem> {
    let mut i = Inst::new(k.0, k.1);
    i.imm = k.5;
    load_mem(&i)
}

/// The load a store makes redundant, and the value it would read: a load
/// of the stored value's type (`elem`), which for an array element is how
/// the element is stored (a `val`, or unboxed).
fn forwarded(store: &Inst, elem: Type) -> Option<(Key, Ref)> {
    let (op, a, b) = match store.op {
        Opcode::AStore => (Opcode::ALoad, store.a, store.b),
        Opcode::FStore => (Opcode::FLoad, store.a, Ref::NONE),
        Opcode::CStore => (Opcode::CLoad, store.a, Ref::NONE),
        Opcode::GStore => (Opcode::GLoad, store.a, Ref::NONE),
        _ => return None,
    };
    let mut load = Inst::new(op, elem);
    (load.a, load.b, load.imm) = (a, b, store.imm);
    Some((key(&load), store.c))
}

#[cfg(test)]
mod tests {
    use super::{cse, cse_with_guards};
    use crate::passes::testutil::check;

    #[test]
    fn merges_constants_and_pure_instructions() {
        check(
            cse,
            "0000 int > sload #0 S0
             0001 int kint 1
             0002 int add 0000 0001
             0003 int kint 1
             0004 int add 0000 0003
             0005 int add 0003 0000
             0006 bool ilt 0002 0004
             0007 int > addov 0000 0001 S0
             0008 int > addov 0000 0001 S0
             0009 val box 0002
             0010 val box 0004
             S0 pc=1 at=0000
             S1 pc=2 at=0011 #1=0004 #2=0005 #3=0006 #4=0008 #5=0010
             tail S1",
            // Operand order matters (fold puts constants right); guards are left to `redundant_guards`.
            "0000 int > sload #0 S0
             0001 int kint 1
             0002 int add 0000 0001
             0003 int add 0001 0000
             0004 bool ilt 0002 0002
             0005 int > addov 0000 0001 S0
             0006 int > addov 0000 0001 S0
             0007 val box 0002
             S0 pc=1 at=0000
             S1 pc=2 at=0008 #1=0002 #2=0003 #3=0004 #4=0006 #5=0007
             tail S1",
        );
    }

    #[test]
    fn loads_are_merged_until_a_store_of_the_same_kind() {
        check(
            cse,
            "0000 arr > sload #0 S0
             0001 obj > sload #1 S0
             0002 cel > sload #2 S0
             0003 int kint 0
             0004 val aload 0000 0003
             0005 val fload 0001 field 1
             0006 val cload 0002
             0007 int alen 0000
             0008 fstore 0001 0004 field 2
             0009 val aload 0000 0003
             0010 val fload 0001 field 1
             0011 val cload 0002
             0012 astore 0000 0003 0005
             0013 val aload 0000 0003
             0014 val fload 0001 field 1
             0015 val cload 0002
             0016 int alen 0000
             0017 arr > sload #0 S0
             S0 pc=1 at=0000
             S1 pc=2 at=0018 #3=0004 #4=0009 #5=0010 #6=0011 #7=0013 #8=0014 #9=0015 #10=0016",
            // `fstore field 2` kills nothing read here; `astore` kills the aload (and forwards its
            // value to the next one) but not `alen`; sload guards are for `redundant_guards`.
            "0000 arr > sload #0 S0
             0001 obj > sload #1 S0
             0002 cel > sload #2 S0
             0003 int kint 0
             0004 val aload 0000 0003
             0005 val fload 0001 field 1
             0006 val cload 0002
             0007 int alen 0000
             0008 fstore 0001 0004 field 2
             0009 astore 0000 0003 0005
             0010 arr > sload #0 S0
             S0 pc=1 at=0000",
        );
    }

    #[test]
    fn global_stores_forward_and_kill_only_their_global() {
        check(
            cse,
            "0000 val kptr 0x1000
             0001 val sload #1
             0002 val gload 0000 global 3
             0003 val gload 0000 global 4
             0004 gstore 0000 0001 global 3
             0005 val gload 0000 global 3
             0006 val gload 0000 global 4
             S0 pc=1 at=0007 #1=0002 #2=0003 #3=0005 #4=0006
             tail S0",
            // Global 3 reads what was just stored; global 4 is loaded once.
            "0000 val kptr 0x1000
             0001 val sload #1
             0002 val gload 0000 global 3
             0003 val gload 0000 global 4
             0004 gstore 0000 0001 global 3
             S0 pc=1 at=0005 #1=0002 #2=0003 #3=0001 #4=0003
             tail S0",
        );
    }

    #[test]
    fn field_and_cell_stores_forward_and_kill() {
        check(
            cse,
            "0000 obj > sload #1 S0
             0001 cel > sload #2 S0
             0002 obj > sload #3 S0
             0003 val sload #4
             0004 val fload 0000 field 1
             0005 fstore 0002 0003 field 1
             0006 val fload 0000 field 1
             0007 val fload 0002 field 1
             0008 val cload 0001
             0009 cstore 0001 0003
             0010 val cload 0001
             S0 pc=1 at=0000
             S1 pc=2 at=0011 #1=0004 #2=0006 #3=0007 #4=0008 #5=0010
             tail S1",
            // The store to 0002's field 1 may alias 0000's field 1: reload it.
            "0000 obj > sload #1 S0
             0001 cel > sload #2 S0
             0002 obj > sload #3 S0
             0003 val sload #4
             0004 val fload 0000 field 1
             0005 fstore 0002 0003 field 1
             0006 val fload 0000 field 1
             0007 val cload 0001
             0008 cstore 0001 0003
             S0 pc=1 at=0000
             S1 pc=2 at=0009 #1=0004 #2=0006 #3=0003 #4=0007 #5=0003
             tail S1",
        );
    }

    #[test]
    fn loads_before_the_loop_are_reused_only_if_the_body_does_not_store() {
        check(
            cse,
            "0000 arr > sload #0 S0
             0001 obj > sload #1 S0
             0002 int kint 0
             0003 val aload 0000 0002
             0004 val fload 0001 field 0
             0005 int alen 0000
             0006 int add 0005 0002
             0007 loop
             0008 val aload 0000 0002
             0009 val fload 0001 field 0
             0010 int alen 0000
             0011 int add 0010 0002
             0012 int kint 0
             0013 fstore 0001 0009 field 0
             S0 pc=1 at=0000
             S1 pc=2 at=0014 #1=0008 #2=0009 #3=0011 #4=0012
             tail S1",
            // The body stores field 0, so `fload field 0` is reloaded every iteration.
            "0000 arr > sload #0 S0
             0001 obj > sload #1 S0
             0002 int kint 0
             0003 val aload 0000 0002
             0004 val fload 0001 field 0
             0005 int alen 0000
             0006 int add 0005 0002
             0007 loop
             0008 val fload 0001 field 0
             0009 fstore 0001 0008 field 0
             S0 pc=1 at=0000
             S1 pc=2 at=0010 #1=0003 #2=0008 #3=0006 #4=0002
             tail S1",
        );
    }

    #[test]
    fn with_guards_merges_guards_and_what_they_make_identical() {
        check(
            cse_with_guards,
            "0000 int > sload #0 S0
             0001 int kint 1
             0002 int > addov 0000 0001 S0
             0003 int > addov 0000 0001 S1
             0004 bool ilt 0002 0001
             0005 bool ilt 0003 0001
             0006 > gtrue 0004 S1
             0007 > gtrue 0005 S1
             0008 int > sload #0 S1
             S0 pc=1 at=0000
             S1 pc=2 at=0003 #1=0002",
            "0000 int > sload #0 S0
             0001 int kint 1
             0002 int > addov 0000 0001 S0
             0003 bool ilt 0002 0001
             0004 > gtrue 0003 S1
             S0 pc=1 at=0000
             S1 pc=2 at=0003 #1=0002",
        );
    }

    #[test]
    fn merges_identical_phis() {
        check(
            cse,
            "0000 int > sload #3 S0
             0001 int kint 1
             0002 int add 0000 0001
             0003 loop
             0004 int phi 0002 0007
             0005 int phi 0002 0007
             0006 int phi 0001 0007
             0007 int add 0004 0001
             0008 int add 0005 0001
             S0 pc=1 at=0000
             S1 pc=1 at=0009 #3=0007 #5=0008 #6=0007
             tail S1",
            "0000 int > sload #3 S0
             0001 int kint 1
             0002 int add 0000 0001
             0003 loop
             0004 int phi 0002 0006
             0005 int phi 0001 0006
             0006 int add 0004 0001
             S0 pc=1 at=0000
             S1 pc=1 at=0007 #3=0006 #5=0006 #6=0006
             tail S1",
        );
    }

    #[test]
    fn native_calls_are_never_merged_and_end_load_reuse() {
        check(
            cse,
            "0000 obj > sload #0 S0
             0001 val   fload  0000 field 1
             0002 val > tcall  #3 S0
             0003 val > tcall  #3 S0
             0004 val   fload  0000 field 1
             S0 pc=1 at=0000",
            // Identical calls both stay, and the field is loaded again after them.
            "0000 obj > sload #0 S0
             0001 val   fload  0000 field 1
             0002 val > tcall  #3 S0
             0003 val > tcall  #3 S0
             0004 val   fload  0000 field 1
             S0 pc=1 at=0000",
        );
    }

    #[test]
    fn calls_are_never_merged_and_kill_every_load() {
        check(
            cse_with_guards,
            "0000 arr > sload #0 S0
             0001 map > sload #1 S0
             0002 val sload #2
             0003 int alen 0000
             0004 int kint 0
             0005 val aload 0000 0004
             0006 val call map_get_or 0001 0002 0002
             0007 val call map_get_or 0001 0002 0002
             0008 val > callg map_get 0001 0002 S0
             0009 val > callg map_get 0001 0002 S0
             0010 int alen 0000
             0011 val aload 0000 0004
             0012 call array_push 0000 0002
             0013 int alen 0000
             0014 val aload 0000 0004
             0015 str kptr 0x10
             0016 int slen 0015
             0017 int slen 0015
             S0 pc=1 at=0000
             S1 pc=2 at=0018 #3=0003 #4=0005 #5=0006 #6=0007 #7=0008 #8=0009 #9=0010 #10=0011 #11=0013 #12=0014 #13=0017
             tail S1",
            // Identical calls stay (each may change the heap, callg included, though it is a
            // guard); array_push kills `alen` and `aload` (the pure map lookups before it
            // already did); `slen` of an immutable string is merged across calls.
            "0000 arr > sload #0 S0
             0001 map > sload #1 S0
             0002 val sload #2
             0003 int alen 0000
             0004 int kint 0
             0005 val aload 0000 0004
             0006 val call map_get_or 0001 0002 0002
             0007 val call map_get_or 0001 0002 0002
             0008 val > callg map_get 0001 0002 S0
             0009 val > callg map_get 0001 0002 S0
             0010 int alen 0000
             0011 val aload 0000 0004
             0012 call array_push 0000 0002
             0013 int alen 0000
             0014 val aload 0000 0004
             0015 str kptr 0x10
             0016 int slen 0015
             S0 pc=1 at=0000
             S1 pc=2 at=0017 #3=0003 #4=0005 #5=0006 #6=0007 #7=0008 #8=0009 #9=0010 #10=0011 #11=0013 #12=0014 #13=0016
             tail S1",
        );
    }
}
