//! Optimisation passes over a recorded trace. Each pass takes a verified trace
//! and returns a verified trace; passes that remove instructions compact the
//! trace (`compact`) so the result has no `Nop`s.
//!
//! `optimize` runs the standard pipeline:
//! fold → cse → peel → fold → cse with redundant-guard elimination → dce.

use crate::inst::{Inst, Opcode, Ref};
use crate::trace::Trace;
use crate::types::Type;
use crate::verify::verify;

pub mod compact;
pub mod cse;
pub mod dce;
pub mod fold;
pub mod guards;
pub mod peel;

pub use compact::compact;
pub use cse::{cse, cse_with_guards};
pub use dce::dce;
pub use fold::fold;
pub use guards::redundant_guards;
pub use peel::peel;

/// Runs the whole pipeline on a recorded iteration (no `Loop` yet). A trace
/// without a tail snapshot (one that does not loop back to its own header) is
/// optimised without peeling. Errors: the input does not verify, or peeling
/// finds the loop type-unstable.
pub fn optimize(t: Trace) -> Result<Trace, String> {
    verify(&t).map_err(|e| format!("input trace: {e}"))?;
    let t = checked(fold(t), "fold");
    let t = checked(cse(t), "cse");
    let t = if t.tail.is_some() { checked(peel(t)?, "peel") } else { t };
    let t = checked(fold(t), "fold after peel");
    let t = checked(cse_with_guards(t), "cse+guards");
    Ok(checked(dce(t), "dce"))
}

/// In debug builds, asserts that a pass produced a valid trace.
fn checked(t: Trace, pass: &str) -> Trace {
    debug_assert!(verify(&t).is_ok(), "{pass} produced an invalid trace: {}\n{t}", verify(&t).unwrap_err());
    let _ = pass;
    t
}

/// The identity used by CSE and peeling: opcode, type, operands, immediate
/// (not the snapshot: two identical guards are redundant whatever their exits).
pub(crate) type Key = (Opcode, Type, Ref, Ref, Ref, i64);

pub(crate) fn key(i: &Inst) -> Key {
    (i.op, i.ty, i.a, i.b, i.c, i.imm)
}

/// A kind of mutable heap memory: a store of one kind can change the result of
/// a load of the same kind only, except that a helper call (`Mem::All`) may
/// change anything. Field stores are told apart by field number (distinct
/// objects never overlap, and distinct fields of one object are distinct
/// words). An array's length and element kind (`Mem::Len`) change only in
/// helpers (`push`): element stores never change them (the recorder stores
/// only elements of the array's kind). Globals are told apart by number.
/// `SLoad` reads nothing a trace can write (a trace never writes the stack),
/// nor do `SLen`/`SByte` (strings are immutable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mem {
    Array,
    Len,
    Field(i64),
    Cell,
    Global(i64),
    /// Everything: what a helper call may write.
    All,
}

impl Mem {
    /// Whether a store to `self` may change what a load of `load` reads.
    pub(crate) fn clobbers(self, load: Mem) -> bool {
        self == Mem::All || self == load
    }
}

/// The memory a load reads, if a store in the trace can change it.
pub(crate) fn load_mem(i: &Inst) -> Option<Mem> {
    match i.op {
        Opcode::ALoad => Some(Mem::Array),
        Opcode::ALen | Opcode::AKind => Some(Mem::Len),
        Opcode::FLoad => Some(Mem::Field(i.imm)),
        Opcode::CLoad => Some(Mem::Cell),
        Opcode::GLoad => Some(Mem::Global(i.imm)),
        _ => None,
    }
}

/// The memory a store (or a helper call) writes.
pub(crate) fn store_mem(i: &Inst) -> Option<Mem> {
    match i.op {
        Opcode::AStore => Some(Mem::Array),
        Opcode::FStore => Some(Mem::Field(i.imm)),
        Opcode::CStore => Some(Mem::Cell),
        Opcode::GStore => Some(Mem::Global(i.imm)),
        Opcode::Call | Opcode::CallG | Opcode::TCall | Opcode::TCallAt | Opcode::Ret => Some(Mem::All),
        _ => None,
    }
}

/// `map[r]` replaces `r` (identity where unchanged; chains are followed).
pub(crate) fn identity_map(n: usize) -> Vec<Ref> {
    (0..n as u32).map(Ref).collect()
}

pub(crate) fn resolve(map: &[Ref], mut r: Ref) -> Ref {
    while !r.is_none() && r.index() < map.len() && map[r.index()] != r {
        r = map[r.index()];
    }
    r
}

/// Replaces every use of a ref by `map[ref]`: operands of live instructions,
/// snapshot entries and frames.
pub(crate) fn apply_subst(t: &mut Trace, map: &[Ref]) {
    for inst in t.insts.iter_mut().filter(|i| i.op != Opcode::Nop) {
        for r in inst.operands_mut() {
            *r = resolve(map, *r);
        }
    }
    for snap in &mut t.snaps {
        for e in &mut snap.entries {
            e.value = resolve(map, e.value);
        }
        for f in &mut snap.frames {
            f.func = resolve(map, f.func);
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::parse::parse;
    use crate::trace::Trace;
    use crate::verify::verify;

    /// Parses and verifies `input`, runs `pass`, verifies the result and
    /// compares it with `expected` (parsed and printed again, so spacing in
    /// the expectation does not matter).
    pub fn check(pass: impl FnOnce(Trace) -> Trace, input: &str, expected: &str) {
        let t = parse(input).unwrap_or_else(|e| panic!("input: {e}"));
        verify(&t).unwrap_or_else(|e| panic!("input does not verify: {e}\n{t}"));
        let out = pass(t);
        if let Err(e) = verify(&out) {
            panic!("output does not verify: {e}\n{out}");
        }
        let want = parse(expected).unwrap_or_else(|e| panic!("expected: {e}")).to_string();
        let got = out.to_string();
        assert!(got == want, "\n--- got:\n{got}--- expected:\n{want}");
    }
}
