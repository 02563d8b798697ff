//! The verifier: checks the structural and type rules every pass keeps and
//! every consumer (back end, exit handler) relies on. Errors name the
//! instruction or snapshot: `0005 addov: operand b 0003 has type flt, expected int`.

use crate::helper::Param;
use crate::inst::{Inst, Opcode, Ref, SnapId};
use crate::layout::{Field, Imm};
use crate::print::ref_str;
use crate::trace::Trace;
use crate::types::Type;

/// What an operand must be.
#[derive(Clone, Copy)]
enum Want {
    T(Type),
    /// A concrete type (not `Value`, not `Void`).
    Concrete,
    /// A pointer kind, a Bool or a Native, the same as operand `a` (`PEq`/`PNe`).
    Identity,
    /// The instruction's own type (`Phi`).
    Own,
    /// A `KPtr` constant of any type (`GLoad`'s globals array).
    Address,
    /// A concrete type or `Value` (`Ret`).
    Boxable,
    /// A `val` or a `carg` chain (a helper's `Param::Args`).
    Args,
    /// `val`, `int`, `flt` or `bool` (`AStore`'s element).
    Element,
    /// `val`, or `flt` for a field known to hold only Floats (`FStore`).
    Field,
}

/// What an instruction's own type must be.
#[derive(Clone, Copy)]
enum Res {
    T(Type),
    /// Concrete or `Value` (`SLoad`).
    Loadable,
    /// Concrete, not `Value` (`Unbox`).
    Concrete,
    /// A heap pointer kind, `Native`, or `Value` for an untyped address
    /// (`KPtr`; the recorder makes the globals array a `val` pointer).
    Pointer,
    /// Anything but `Void` (`Phi`).
    NonVoid,
    /// What an array element can be stored as: `val`, `int`, `flt` or
    /// `bool` (`ALoad`).
    Element,
    /// `val`, or `flt` for a field known to hold only Floats (`FLoad`).
    Field,
}

fn is_element(t: Type) -> bool {
    matches!(t, Type::Value | Type::Int | Type::Float | Type::Bool)
}

fn is_field(t: Type) -> bool {
    matches!(t, Type::Value | Type::Float)
}

fn is_concrete(t: Type) -> bool {
    t.tag().is_some()
}

/// The operand types (in layout order) and result type of an opcode.
fn signature(op: Opcode) -> (&'static [Want], Res) {
    use Opcode::*;
    use Type::*;
    const II: &[Want] = &[Want::T(Int), Want::T(Int)];
    const FF: &[Want] = &[Want::T(Float), Want::T(Float)];
    const I: &[Want] = &[Want::T(Int)];
    const F: &[Want] = &[Want::T(Float)];
    match op {
        KInt => (&[], Res::T(Int)),
        KFloat => (&[], Res::T(Float)),
        KBool => (&[], Res::T(Bool)),
        KNil => (&[], Res::T(Nil)),
        KPtr => (&[], Res::Pointer),
        SLoad => (&[], Res::Loadable),
        Unbox => (&[Want::T(Value)], Res::Concrete),
        Box => (&[Want::Concrete], Res::T(Value)),
        AddOv | SubOv | MulOv | Div | Rem | Add | Sub | BAnd | BOr | BXor | Shl | Shr => (II, Res::T(Int)),
        BNot => (I, Res::T(Int)),
        FAdd | FSub | FMul | FDiv | FRem | FPow => (FF, Res::T(Float)),
        FNeg | FSqrt | FSin | FCos | FFloor | FCeil | FAbs => (F, Res::T(Float)),
        IToF => (I, Res::T(Float)),
        ILt | ILe | IEq | INe | ULt => (II, Res::T(Bool)),
        FLt | FLe | FEq | FNe => (FF, Res::T(Bool)),
        PEq | PNe => (&[Want::Identity, Want::Identity], Res::T(Bool)),
        GuardTrue | GuardFalse => (&[Want::T(Bool)], Res::T(Void)),
        ALen | AKind => (&[Want::T(Array)], Res::T(Int)),
        ALoad => (&[Want::T(Array), Want::T(Int)], Res::Element),
        AStore => (&[Want::T(Array), Want::T(Int), Want::Element], Res::T(Void)),
        GuardDef => (&[Want::T(Struct)], Res::T(Void)),
        FLoad => (&[Want::T(Struct)], Res::Field),
        FStore => (&[Want::T(Struct), Want::Field], Res::T(Void)),
        CLoad => (&[Want::T(Cell)], Res::T(Value)),
        CStore => (&[Want::T(Cell), Want::T(Value)], Res::T(Void)),
        Upval => (&[Want::T(Func)], Res::T(Cell)),
        GLoad => (&[Want::Address], Res::T(Value)),
        GStore => (&[Want::Address, Want::T(Value)], Res::T(Void)),
        TCall => (&[], Res::T(Value)),
        TCallAt => (&[Want::Address], Res::T(Value)),
        Ret => (&[Want::Boxable], Res::T(Void)),
        SLen => (&[Want::T(Str)], Res::T(Int)),
        SByte => (&[Want::T(Str), Want::T(Int)], Res::T(Int)),
        // Checked per helper (`helper_signature`); this is the widest form.
        Call | CallG => (&[Want::Args, Want::Args, Want::Args], Res::NonVoid),
        CArg => (&[Want::Args, Want::T(Value)], Res::T(Void)),
        Loop => (&[], Res::T(Void)),
        Phi => (&[Want::Own, Want::Own], Res::NonVoid),
        Nop => (&[], Res::T(Void)),
    }
}

/// The operand types and result type of a helper call.
fn helper_signature(inst: &Inst) -> Result<(Vec<Want>, Res), String> {
    let h = inst.helper().ok_or_else(|| format!("unknown helper number {}", inst.imm))?;
    if h.can_fail() != (inst.op == Opcode::CallG) {
        let why = if h.can_fail() { "can fail: call it with callg" } else { "cannot fail: call it with call" };
        return Err(format!("helper {} {why}", h.name()));
    }
    let wants = h
        .params()
        .iter()
        .map(|p| match *p {
            Param::T(t) => Want::T(t),
            Param::Args => Want::Args,
        })
        .collect();
    Ok((wants, Res::T(h.result())))
}

fn type_name(t: Type) -> &'static str {
    if t == Type::Void {
        "void"
    } else {
        t.name()
    }
}

/// Checks `t`; the first problem found is returned.
///
/// Rules: operands are defined (and not `Nop`) before use, except a `Phi`'s
/// `b`, which may refer forward; each opcode has exactly the operands its
/// layout names, of the types its signature names; guards (and only guards)
/// have a snapshot, taken at or before the guard, and inside the loop body for
/// guards in the loop body; at most one `Loop`, with all `Phi`s right after
/// it and their entry value `a` defined before it; constants have no operands;
/// snapshot entries are sorted by slot without duplicates and refer to values
/// defined before the snapshot's `at` (a `Phi` counts as defined at the
/// `Loop`); frames name `fun` constants; the tail is a snapshot; a `ret` is
/// before the loop and followed by nothing that defines a value or acts; a
/// `tcall`'s callee base is slot 1 or above.
pub fn verify(t: &Trace) -> Result<(), String> {
    let n = t.insts.len();
    let mut loop_pos: Option<usize> = None;
    // Whether only Phis (and Nops) have been seen since the Loop.
    let mut in_phis = false;
    // Where a `ret` was: only instructions that define nothing may follow.
    let mut ret_at: Option<usize> = None;
    for (i, inst) in t.insts.iter().enumerate() {
        if inst.op == Opcode::Nop {
            continue;
        }
        let name = || format!("{:04} {}", i, inst.op.name());
        if let Some(r) = ret_at {
            if !(inst.op.is_const() || matches!(inst.op, Opcode::Loop | Opcode::Phi)) {
                return Err(format!("{}: follows the ret at {r:04}", name()));
            }
        }
        match inst.op {
            Opcode::Ret if loop_pos.is_some() => return Err(format!("{}: ret in the loop body", name())),
            Opcode::Ret => ret_at = Some(i),
            Opcode::TCall | Opcode::TCallAt if inst.imm < 1 => {
                return Err(format!("{}: callee base #{} below slot 1", name(), inst.imm))
            }
            _ => {}
        }
        match inst.op {
            Opcode::Loop => {
                if let Some(l) = loop_pos {
                    return Err(format!("{}: second loop marker (the first is {l:04})", name()));
                }
                loop_pos = Some(i);
                in_phis = true;
            }
            Opcode::Phi => {
                if loop_pos.is_none() {
                    return Err(format!("{}: phi without a loop marker before it", name()));
                }
                if !in_phis {
                    return Err(format!("{}: phi not immediately after the loop marker", name()));
                }
            }
            _ => in_phis = false,
        }
        check_inst(t, i, inst, loop_pos).map_err(|e| format!("{}: {e}", name()))?;
    }
    for (s, snap) in t.snaps.iter().enumerate() {
        let name = format!("S{s}");
        if snap.at as usize > n {
            return Err(format!("{name}: at={:04} is past the end of the trace ({n} instructions)", snap.at));
        }
        let mut prev: Option<i32> = None;
        for e in &snap.entries {
            if let Some(p) = prev {
                if e.slot == p {
                    return Err(format!("{name}: slot #{} listed twice", e.slot));
                }
                if e.slot < p {
                    return Err(format!("{name}: entries not sorted by slot (#{} after #{p})", e.slot));
                }
            }
            prev = Some(e.slot);
            let what = format!("{name}: entry #{}", e.slot);
            let ty = check_snap_ref(t, snap.at, e.value, loop_pos).map_err(|m| format!("{what} {m}"))?;
            if ty == Type::Void {
                return Err(format!("{what} refers to {}, which has no value", ref_str(e.value)));
            }
        }
        for (k, fr) in snap.frames.iter().enumerate() {
            let what = format!("{name}: frame {k}");
            check_snap_ref(t, snap.at, fr.func, loop_pos).map_err(|m| format!("{what} {m}"))?;
            let f = t.inst(fr.func);
            if f.op != Opcode::KPtr || f.ty != Type::Func {
                return Err(format!("{what}: function {} is not a fun constant", ref_str(fr.func)));
            }
        }
    }
    if let Some(tail) = t.tail {
        if tail.0 as usize >= t.snaps.len() {
            return Err(format!("tail S{} does not exist ({} snapshots)", tail.0, t.snaps.len()));
        }
    }
    Ok(())
}

/// Checks that `r` exists, is not a `Nop` and is defined before `at`; returns its type.
fn check_snap_ref(t: &Trace, at: u32, r: Ref, loop_pos: Option<usize>) -> Result<Type, String> {
    if r.is_none() || r.index() >= t.insts.len() {
        return Err(format!("refers to {}, which does not exist", ref_str(r)));
    }
    let def = t.inst(r);
    if def.op == Opcode::Nop {
        return Err(format!("refers to {}, which is a nop", ref_str(r)));
    }
    // A Phi is defined at the loop header.
    let pos = match (def.op, loop_pos) {
        (Opcode::Phi, Some(l)) => l,
        _ => r.index(),
    };
    if pos >= at as usize {
        return Err(format!("refers to {}, which is not defined before at={at:04}", ref_str(r)));
    }
    Ok(def.ty)
}

fn check_inst(t: &Trace, i: usize, inst: &Inst, loop_pos: Option<usize>) -> Result<(), String> {
    let layout = inst.op.layout();
    let (wants, result) = if inst.op.is_helper_call() {
        helper_signature(inst)?
    } else {
        let (w, r) = signature(inst.op);
        (w.to_vec(), r)
    };
    let operands = inst.operand_fields();
    debug_assert_eq!(wants.len(), operands.len());

    // Result type.
    let ty = inst.ty;
    let ok = match result {
        Res::T(want) => ty == want,
        Res::Loadable => ty != Type::Void,
        Res::Concrete => is_concrete(ty),
        Res::Pointer => ty.is_ref() || ty == Type::Native || ty == Type::Value,
        Res::NonVoid => ty != Type::Void,
        Res::Element => is_element(ty),
        Res::Field => is_field(ty),
    };
    if !ok {
        let want = match result {
            Res::T(w) => type_name(w).to_string(),
            Res::Loadable => "a concrete type or val".into(),
            Res::Concrete => "a concrete type".into(),
            Res::Pointer => "a pointer type".into(),
            Res::NonVoid => "a value type".into(),
            Res::Element => "val, int, flt or bool".into(),
            Res::Field => "val or flt".into(),
        };
        return Err(format!("has type {}, expected {want}", type_name(ty)));
    }
    if layout.imm == Imm::Bool && !(0..=1).contains(&inst.imm) {
        return Err(format!("boolean constant {} is not 0 or 1", inst.imm));
    }
    if layout.imm == Imm::None && inst.imm != 0 {
        return Err(format!("has imm={} but takes no immediate", inst.imm));
    }

    // Operands: presence, definition, type.
    for f in Field::ALL {
        if !operands.contains(&f) && !inst.field(f).is_none() {
            let what = if inst.op.is_const() { "constant has an operand" } else { "unexpected operand" };
            return Err(format!("{what} {} {}", f.name(), ref_str(inst.field(f))));
        }
    }
    for (&f, want) in operands.iter().zip(wants) {
        let r = inst.field(f);
        let what = format!("operand {}", f.name());
        if r.is_none() {
            return Err(format!("missing {what}"));
        }
        if r.index() >= t.insts.len() {
            return Err(format!("{what} {} does not exist", ref_str(r)));
        }
        let forward_ok = inst.op == Opcode::Phi && f == Field::B;
        if r.index() >= i && !forward_ok {
            return Err(format!("{what} {} is not defined before use", ref_str(r)));
        }
        let def = t.inst(r);
        if def.op == Opcode::Nop {
            return Err(format!("{what} {} is a nop", ref_str(r)));
        }
        let oty = def.ty;
        let ok = match want {
            Want::T(w) => oty == w,
            Want::Concrete => is_concrete(oty),
            Want::Identity => {
                (oty.is_ref() || oty == Type::Bool || oty == Type::Native) && (f == Field::A || oty == t.ty(inst.a))
            }
            Want::Own => oty == ty,
            Want::Address => def.op == Opcode::KPtr,
            Want::Boxable => is_concrete(oty) || oty == Type::Value,
            Want::Args => oty == Type::Value || def.op == Opcode::CArg,
            Want::Element => is_element(oty),
            Want::Field => is_field(oty),
        };
        if !ok {
            let w = match want {
                Want::T(w) => type_name(w).to_string(),
                Want::Concrete => "a concrete type".into(),
                Want::Identity if f == Field::A => "a pointer, bool or nat".into(),
                Want::Identity => format!("{} (like operand a)", type_name(t.ty(inst.a))),
                Want::Own => type_name(ty).to_string(),
                Want::Address => "a kptr constant".into(),
                Want::Boxable => "a concrete type or val".into(),
                Want::Args => "val or a carg".into(),
                Want::Element => "val, int, flt or bool".into(),
                Want::Field => "val or flt".into(),
            };
            return Err(format!("{what} {} has type {}, expected {w}", ref_str(r), type_name(oty)));
        }
    }
    if inst.op == Opcode::Phi {
        if let Some(l) = loop_pos {
            if inst.a.index() >= l {
                return Err(format!("entry value {} is not defined before the loop", ref_str(inst.a)));
            }
        }
    }

    // Snapshot.
    let guard = inst.op.is_guard(ty);
    if !guard {
        if inst.snap != SnapId::NONE {
            return Err(format!("is not a guard but has snapshot S{}", inst.snap.0));
        }
        return Ok(());
    }
    if inst.snap == SnapId::NONE {
        return Err("guard without a snapshot".into());
    }
    let s = inst.snap.0 as usize;
    let Some(snap) = t.snaps.get(s) else {
        return Err(format!("guard snapshot S{s} does not exist ({} snapshots)", t.snaps.len()));
    };
    if snap.at as usize > i {
        return Err(format!("guard snapshot S{s} is taken at {:04}, after the guard", snap.at));
    }
    if let Some(l) = loop_pos {
        if i > l && (snap.at as usize) <= l {
            return Err(format!("guard in the loop body exits through S{s}, taken before the loop"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn err(src: &str) -> String {
        verify(&parse(src).unwrap()).unwrap_err()
    }

    #[test]
    fn accepts_a_peeled_loop() {
        let t = parse(
            "0000 int >  sload  #1 S0
             0001 int    kint   1
             0002 int >  addov  0000 0001 S0
             0003        loop
             0004 int    phi    0002 0005
             0005 int >  addov  0004 0001 S1
             S0 pc=3 at=0000
             S1 pc=3 at=0005 #1=0004
             S2 pc=3 at=0006 #1=0005
             tail S2",
        )
        .unwrap();
        verify(&t).unwrap();
    }

    #[test]
    fn ret_ends_the_trace_and_call_needs_a_callee_slot() {
        let after = err("0000 int > sload #0 S0
             0001 ret 0000
             0002 int kint 1
             0003 int add 0000 0002
             0004 loop
             S0 pc=0 at=0000");
        assert_eq!(after, "0003 add: follows the ret at 0001");
        let slot = err("0000 val > tcall #0 S0
             S0 pc=0 at=0000");
        assert_eq!(slot, "0000 tcall: callee base #0 below slot 1");
        verify(
            &parse(
                "0000 int > sload #0 S0
                 0001 val > tcall #2 S0
                 0002 ret 0001
                 0003 loop
                 S0 pc=0 at=0000",
            )
            .unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn reports_errors_naming_the_ref() {
        let cases = [
            ("0000 int add 0001 0001\n0001 int kint 1", "0000 add: operand a 0001 is not defined before use"),
            (
                "0000 flt kflt 1.0\n0001 int kint 1\n0002 int > addov 0001 0000 S0\nS0 pc=0 at=0",
                "0002 addov: operand b 0000 has type flt, expected int",
            ),
            ("0000 int kint 1\n0001 int ilt 0000 0000", "0001 ilt: has type int, expected bool"),
            (
                "0000 int kint 1\n0001 > gtrue 0000 S0\nS0 pc=0 at=0",
                "0001 gtrue: operand a 0000 has type int, expected bool",
            ),
            ("0000 bool kbool true\n0001 > gtrue 0000", "0001 gtrue: guard without a snapshot"),
            (
                "0000 bool kbool true\n0001 > gtrue 0000 S3",
                "0001 gtrue: guard snapshot S3 does not exist (0 snapshots)",
            ),
            ("0000 int kint 1 S0\nS0 pc=0 at=0", "0000 kint: is not a guard but has snapshot S0"),
            ("0000 int kint 1 a=0000", "0000 kint: constant has an operand a 0000"),
            ("0000 int kint 1\n0001 int > addov 0000 _ S0\nS0 pc=0 at=0", "0001 addov: missing operand b"),
            ("0000 val > unbox 0000 S0\nS0 pc=0 at=0", "0000 unbox: has type val, expected a concrete type"),
            (
                "0000 int kint 1\n0001 val > unbox 0000 S0\nS0 pc=0 at=0",
                "0001 unbox: has type val, expected a concrete type",
            ),
            ("0000 int kint 1\n0001 int box 0000", "0001 box: has type int, expected val"),
            (
                "0000 arr kptr 0x10\n0001 flt kflt 1.0\n0002 val aload 0000 0001",
                "0002 aload: operand b 0001 has type flt, expected int",
            ),
            ("0000 loop\n0001 loop", "0001 loop: second loop marker (the first is 0000)"),
            ("0000 int kint 1\n0001 int phi 0000 0000", "0001 phi: phi without a loop marker before it"),
            (
                "0000 int kint 1\n0001 loop\n0002 int add 0000 0000\n0003 int phi 0000 0002",
                "0003 phi: phi not immediately after the loop marker",
            ),
            (
                "0000 int kint 1\n0001 loop\n0002 flt phi 0000 0000",
                "0002 phi: operand a 0000 has type int, expected flt",
            ),
            (
                "0000 loop\n0001 int kint 1\n0002 int phi 0001 0001",
                "0002 phi: phi not immediately after the loop marker",
            ),
            ("0000 int kint 1\n0001 loop\n0002 int phi 0000 0009", "0002 phi: operand b 0009 does not exist"),
            ("0000 int kint 1\n0001 nop\n0002 int add 0000 0001", "0002 add: operand b 0001 is a nop"),
            (
                "0000 str kptr 0x10\n0001 arr kptr 0x20\n0002 bool peq 0000 0001",
                "0002 peq: operand b 0001 has type arr, expected str (like operand a)",
            ),
            ("0000 int kint 1\nS0 pc=0 at=0001 #2=0000 #1=0000", "S0: entries not sorted by slot (#1 after #2)"),
            ("0000 int kint 1\nS0 pc=0 at=0001 #2=0000 #2=0000", "S0: slot #2 listed twice"),
            (
                "0000 int kint 1\nS0 pc=0 at=0000 #2=0000",
                "S0: entry #2 refers to 0000, which is not defined before at=0000",
            ),
            ("0000 int kint 1\nS0 pc=0 at=0001 #2=0007", "S0: entry #2 refers to 0007, which does not exist"),
            ("0000 loop\nS0 pc=0 at=0001 #2=0000", "S0: entry #2 refers to 0000, which has no value"),
            ("0000 int kint 1\nS0 pc=0 at=0009", "S0: at=0009 is past the end of the trace (1 instructions)"),
            (
                "0000 int kint 1\nS0 pc=0 at=0001 frames=[0000 base=3 ret=4]",
                "S0: frame 0: function 0000 is not a fun constant",
            ),
            ("0000 int kint 1\ntail S0", "tail S0 does not exist (0 snapshots)"),
            (
                "0000 bool kbool true\n0001 > gtrue 0000 S0\nS0 pc=0 at=0009",
                "0001 gtrue: guard snapshot S0 is taken at 0009, after the guard",
            ),
            (
                "0000 bool kbool true\n0001 loop\n0002 > gtrue 0000 S0\nS0 pc=0 at=0001",
                "0002 gtrue: guard in the loop body exits through S0, taken before the loop",
            ),
            (
                "0000 int kint 1\n0001 loop\n0002 int phi 0000 0002\n0003 int phi 0002 0003",
                "0003 phi: entry value 0002 is not defined before the loop",
            ),
            ("0000 bool kbool 2", "0000 kbool: boolean constant 2 is not 0 or 1"),
            ("0000 int kint 1\n0001 int call map_len 0000", "0001 call: operand a 0000 has type int, expected map"),
            ("0000 map call map_new\n0001 val call map_len 0000", "0001 call: has type val, expected int"),
            (
                "0000 map call map_new\n0001 val > callg map_len 0000 S0\nS0 pc=0 at=0",
                "0001 callg: helper map_len cannot fail: call it with call",
            ),
            (
                "0000 map call map_new\n0001 val sload #1\n0002 val call map_get 0000 0001",
                "0002 call: helper map_get can fail: call it with callg",
            ),
            (
                "0000 int kint 1\n0001 int > sload #0 S0\n0002 str > callg concat 0001 S0\nS0 pc=0 at=0",
                "0002 callg: operand a 0001 has type int, expected val or a carg",
            ),
            ("0000 map call map_new\n0001 int call map_len 0000 b=0000", "0001 call: unexpected operand b 0000"),
            ("0000 int kptr 0x10", "0000 kptr: has type int, expected a pointer type"),
            (
                "0000 arr > sload #0 S0\n0001 val gload 0000 global 1\nS0 pc=0 at=0",
                "0001 gload: operand a 0000 has type arr, expected a kptr constant",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(err(src), want, "{src}");
        }
    }

    #[test]
    fn signatures_match_layouts() {
        for &op in Opcode::ALL {
            assert_eq!(signature(op).0.len(), op.layout().operands.len(), "{op:?}");
        }
    }

    #[test]
    fn a_field_is_loaded_and_stored_boxed_or_as_a_float() {
        let ok = "0000 obj > sload #0 S0
             0001 val fload 0000 field 0
             0002 flt fload 0000 field 1
             0003 fstore 0000 0001 field 2
             0004 fstore 0000 0002 field 1
             S0 pc=0 at=0000";
        verify(&parse(ok).unwrap()).unwrap();
        let load = err("0000 obj > sload #0 S0\n0001 int fload 0000 field 0\nS0 pc=0 at=0000");
        assert_eq!(load, "0001 fload: has type int, expected val or flt");
        let store = err("0000 obj > sload #0 S0\n0001 int kint 1\n0002 fstore 0000 0001 field 0\nS0 pc=0 at=0000");
        assert_eq!(store, "0002 fstore: operand c 0001 has type int, expected val or flt");
    }

    #[test]
    fn phi_counts_as_defined_at_the_loop_header() {
        let ok = "0000 int kint 1\n0001 loop\n0002 int phi 0000 0003\n0003 int add 0002 0000\nS0 pc=0 at=0002 #1=0002";
        verify(&parse(ok).unwrap()).unwrap();
    }
}
