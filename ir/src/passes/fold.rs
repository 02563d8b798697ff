//! Constant folding and algebraic simplification.
//!
//! One forward sweep rewrites each instruction given its (already simplified)
//! operands. An instruction either stays (perhaps with its operands swapped to
//! put a constant on the right, or with a simpler operand), becomes a constant
//! in place (or reuses an identical earlier constant), is replaced by an
//! earlier value, or — a guard that can never fail — is dropped. New constants
//! are made in place so they are always defined before their uses. Sweeps
//! repeat until nothing changes (a `Phi`'s `b` refers forward, so it is only
//! seen simplified by the next sweep).
//!
//! Integer folds follow the interpreter: checked `AddOv`/`SubOv`/`MulOv`
//! (an overflowing constant operation is left alone: it will exit), truncating
//! `Div`/`Rem`, shifts only for amounts 0..=63. Float folds are IEEE
//! bit-exact: only correctly rounded operations of constants (`+ - * / %`,
//! `sqrt`, `floor`, `ceil`, `abs`, `neg`, int→float) and sign-bit identities
//! (`-(-x)`, `|-x|`, `||x||`); never `x + 0.0`, `x * 1.0` or `x * 0.0`
//! (signed zeros, NaN quieting), and never `sin`/`cos`/`pow` (not correctly
//! rounded: the back end's libm call need not agree with ours).

use rustc_hash::FxHashMap;

use super::{apply_subst, compact, identity_map};
use crate::inst::{Inst, Opcode, Ref};
use crate::trace::Trace;
use crate::types::Type;

/// Folds constants and simplifies algebraically; see the module docs.
pub fn fold(mut t: Trace) -> Trace {
    while sweep(&mut t) {}
    compact(t)
}

/// What becomes of an instruction.
enum Fold {
    /// Replace by an earlier value.
    Value(Ref),
    /// Becomes a constant.
    Const(Opcode, Type, i64),
    /// A guard that always passes: remove it (it has no value).
    Drop,
}

fn int(v: i64) -> Option<Fold> {
    Some(Fold::Const(Opcode::KInt, Type::Int, v))
}
fn flt(v: f64) -> Option<Fold> {
    Some(Fold::Const(Opcode::KFloat, Type::Float, v.to_bits() as i64))
}
fn boolean(v: bool) -> Option<Fold> {
    Some(Fold::Const(Opcode::KBool, Type::Bool, v as i64))
}

/// One forward sweep; whether anything changed.
fn sweep(t: &mut Trace) -> bool {
    let n = t.insts.len();
    let mut subst = identity_map(n);
    let mut consts: FxHashMap<(Opcode, Type, i64), Ref> = FxHashMap::default();
    let mut changed = false;
    for i in 0..n {
        let mut inst = t.insts[i];
        if inst.op == Opcode::Nop {
            continue;
        }
        let before = inst;
        for r in [&mut inst.a, &mut inst.c] {
            if !r.is_none() {
                *r = subst[r.index()];
            }
        }
        if inst.op != Opcode::Phi && !inst.b.is_none() {
            inst.b = subst[inst.b.index()];
        }
        let me = Ref(i as u32);
        match simplify(t, &mut inst, me) {
            None => {}
            Some(Fold::Value(r)) => {
                subst[i] = r;
                inst = Inst::new(Opcode::Nop, Type::Void);
            }
            Some(Fold::Drop) => inst = Inst::new(Opcode::Nop, Type::Void),
            Some(Fold::Const(op, ty, imm)) => match consts.get(&(op, ty, imm)) {
                Some(&r) => {
                    subst[i] = r;
                    inst = Inst::new(Opcode::Nop, Type::Void);
                }
                None => {
                    inst = Inst::new(op, ty);
                    inst.imm = imm;
                }
            },
        }
        if inst.op.is_const() {
            consts.entry((inst.op, inst.ty, inst.imm)).or_insert(me);
        }
        changed |= inst != before;
        t.insts[i] = inst;
    }
    apply_subst(t, &subst);
    changed
}

/// Simplifies `inst` (whose operands are final); may rewrite it in place.
fn simplify(t: &Trace, inst: &mut Inst, me: Ref) -> Option<Fold> {
    use Opcode::*;
    let kint = |r: Ref| (!r.is_none() && t.inst(r).op == KInt).then(|| t.inst(r).imm);
    let kflt = |r: Ref| (!r.is_none() && t.inst(r).op == KFloat).then(|| t.inst(r).float());
    let kbool = |r: Ref| (!r.is_none() && t.inst(r).op == KBool).then(|| t.inst(r).imm != 0);
    let is_const = |r: Ref| !r.is_none() && t.inst(r).op.is_const();

    // Constants go right: `k + x` becomes `x + k` (so `x + 0` rules and CSE see one form).
    if inst.op.is_commutative() && is_const(inst.a) && !is_const(inst.b) {
        std::mem::swap(&mut inst.a, &mut inst.b);
    }
    let (a, b) = (inst.a, inst.b);
    let (x, y) = (kint(a), kint(b));
    let (fx, fy) = (kflt(a), kflt(b));
    let same = a == b;
    let def = |r: Ref| t.inst(r);

    match inst.op {
        // Wrapping arithmetic.
        Add => match (x, y) {
            (Some(x), Some(y)) => int(x.wrapping_add(y)),
            (_, Some(0)) => Some(Fold::Value(a)),
            _ => None,
        },
        Sub => match (x, y) {
            (Some(x), Some(y)) => int(x.wrapping_sub(y)),
            (_, Some(0)) => Some(Fold::Value(a)),
            _ if same => int(0),
            _ => None,
        },
        // Overflow-checked arithmetic: a fold that would overflow stays (it exits).
        AddOv => match (x, y) {
            (Some(x), Some(y)) => x.checked_add(y).and_then(int),
            (_, Some(0)) => Some(Fold::Value(a)),
            _ => None,
        },
        SubOv => match (x, y) {
            (Some(x), Some(y)) => x.checked_sub(y).and_then(int),
            (_, Some(0)) => Some(Fold::Value(a)),
            _ if same => int(0),
            _ => None,
        },
        MulOv => match (x, y) {
            (Some(x), Some(y)) => x.checked_mul(y).and_then(int),
            (_, Some(1)) => Some(Fold::Value(a)),
            (_, Some(0)) => int(0),
            _ => None,
        },
        Div => match (x, y) {
            (Some(x), Some(y)) => x.checked_div(y).and_then(int),
            (_, Some(1)) => Some(Fold::Value(a)),
            _ => None,
        },
        Rem => match (x, y) {
            (Some(x), Some(y)) => x.checked_rem(y).and_then(int),
            (_, Some(1)) => int(0),
            _ => None,
        },
        BAnd => match (x, y) {
            (Some(x), Some(y)) => int(x & y),
            (_, Some(0)) => int(0),
            (_, Some(-1)) => Some(Fold::Value(a)),
            _ if same => Some(Fold::Value(a)),
            _ => None,
        },
        BOr => match (x, y) {
            (Some(x), Some(y)) => int(x | y),
            (_, Some(0)) => Some(Fold::Value(a)),
            (_, Some(-1)) => int(-1),
            _ if same => Some(Fold::Value(a)),
            _ => None,
        },
        BXor => match (x, y) {
            (Some(x), Some(y)) => int(x ^ y),
            (_, Some(0)) => Some(Fold::Value(a)),
            _ if same => int(0),
            _ => None,
        },
        Shl | Shr => match (x, y) {
            (Some(x), Some(y @ 0..=63)) => int(if inst.op == Shl { x << y } else { x >> y }),
            (_, Some(0)) => Some(Fold::Value(a)),
            _ => None,
        },
        BNot => match x {
            Some(x) => int(!x),
            None if def(a).op == BNot => Some(Fold::Value(def(a).a)),
            None => None,
        },

        // Float arithmetic: constants only (bit-exact IEEE).
        FAdd | FSub | FMul | FDiv | FRem => {
            let (x, y) = (fx?, fy?);
            flt(match inst.op {
                FAdd => x + y,
                FSub => x - y,
                FMul => x * y,
                FDiv => x / y,
                _ => x % y,
            })
        }
        FNeg => match fx {
            Some(x) => flt(-x),
            None if def(a).op == FNeg => Some(Fold::Value(def(a).a)),
            None => None,
        },
        FAbs => match fx {
            Some(x) => flt(x.abs()),
            None if def(a).op == FAbs => Some(Fold::Value(a)),
            None if def(a).op == FNeg => {
                inst.a = def(a).a;
                None
            }
            None => None,
        },
        FSqrt => flt(fx?.sqrt()),
        FFloor => flt(fx?.floor()),
        FCeil => flt(fx?.ceil()),
        IToF => flt(x? as f64),

        // Comparisons.
        ILt | ILe | IEq | INe | ULt => {
            if let (Some(x), Some(y)) = (x, y) {
                return boolean(match inst.op {
                    ILt => x < y,
                    ULt => (x as u64) < (y as u64),
                    ILe => x <= y,
                    IEq => x == y,
                    _ => x != y,
                });
            }
            if same {
                boolean(matches!(inst.op, ILe | IEq))
            } else {
                None
            }
        }
        FLt | FLe | FEq | FNe => {
            let (x, y) = (fx?, fy?);
            boolean(match inst.op {
                FLt => x < y,
                FLe => x <= y,
                FEq => x == y,
                _ => x != y,
            })
        }
        PEq | PNe => {
            let eq = if same {
                true
            } else if is_const(a) && is_const(b) {
                let (p, q) = (def(a), def(b));
                (p.op, p.ty, p.imm) == (q.op, q.ty, q.imm)
            } else {
                return None;
            };
            boolean(eq == (inst.op == PEq))
        }

        // Guards that cannot fail.
        GuardTrue => (kbool(a) == Some(true)).then_some(Fold::Drop),
        GuardFalse => (kbool(a) == Some(false)).then_some(Fold::Drop),
        Unbox => {
            let d = def(a);
            (d.op == Box && t.ty(d.a) == inst.ty).then_some(Fold::Value(d.a))
        }

        // A loop-carried value that never changes.
        Phi => (b == me || b == a).then_some(Fold::Value(a)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::fold;
    use crate::passes::testutil::check;

    #[test]
    fn folds_int_constants() {
        check(
            fold,
            "0000 int kint 2
             0001 int kint 3
             0002 int add 0000 0001
             0003 int sub 0000 0001
             0004 int > mulov 0000 0001 S0
             0005 int div 0002 0000
             0006 int rem 0002 0000
             0007 int shl 0001 0000
             0008 int bnot 0000
             0009 int bxor 0008 0003
             0010 int > addov 0009 0007 S0
             S0 pc=1 at=0000
             S1 pc=2 at=0011 #1=0002 #2=0004 #3=0005 #4=0006 #5=0010
             tail S1",
            // 5, -1, 6, 5/2 = 2 (reuses 0000), 5%2 = 1, 3<<2 = 12, !2 = -3, -3^-1 = 2 (reuses 0000), 2+12 = 14
            "0000 int kint 2
             0001 int kint 3
             0002 int kint 5
             0003 int kint -1
             0004 int kint 6
             0005 int kint 1
             0006 int kint 12
             0007 int kint -3
             0008 int kint 14
             S0 pc=2 at=0009 #1=0002 #2=0004 #3=0000 #4=0005 #5=0008
             tail S0",
        );
    }

    #[test]
    fn folds_unsigned_bounds_checks() {
        // ult is `0 <= a < b`: -1 is out of bounds of 3, 2 in bounds, 3 not.
        check(
            fold,
            "0000 int kint -1
             0001 int kint 2
             0002 int kint 3
             0003 bool ult 0000 0002
             0004 bool ult 0001 0002
             0005 bool ult 0002 0002
             S0 pc=1 at=0006 #1=0003 #2=0004 #3=0005
             tail S0",
            "0000 int kint -1
             0001 int kint 2
             0002 int kint 3
             0003 bool kbool false
             0004 bool kbool true
             S0 pc=1 at=0005 #1=0003 #2=0004 #3=0003
             tail S0",
        );
    }

    #[test]
    fn leaves_overflowing_and_undefined_int_folds() {
        check(
            fold,
            "0000 int kint 9223372036854775807
             0001 int kint 1
             0002 int kint 0
             0003 int kint 64
             0004 int kint -9223372036854775808
             0005 int kint -1
             0006 int > addov 0000 0001 S0
             0007 int > mulov 0000 0000 S0
             0008 int > subov 0004 0001 S0
             0009 int div 0001 0002
             0010 int div 0004 0005
             0011 int rem 0004 0005
             0012 int shl 0001 0003
             0013 int add 0000 0001
             S0 pc=1 at=0000
             S1 pc=2 at=0014 #1=0006 #2=0007 #3=0008 #4=0009 #5=0010 #6=0011 #7=0012 #8=0013
             tail S1",
            "0000 int kint 9223372036854775807
             0001 int kint 1
             0002 int kint 0
             0003 int kint 64
             0004 int kint -9223372036854775808
             0005 int kint -1
             0006 int > addov 0000 0001 S0
             0007 int > mulov 0000 0000 S0
             0008 int > subov 0004 0001 S0
             0009 int div 0001 0002
             0010 int div 0004 0005
             0011 int rem 0004 0005
             0012 int shl 0001 0003
             S0 pc=1 at=0000
             S1 pc=2 at=0013 #1=0006 #2=0007 #3=0008 #4=0009 #5=0010 #6=0011 #7=0012 #8=0004
             tail S1",
        );
    }

    #[test]
    fn simplifies_int_identities() {
        check(
            fold,
            "0000 int > sload #0 S0
             0001 int kint 0
             0002 int kint 1
             0003 int > addov 0001 0000 S0
             0004 int > subov 0000 0001 S0
             0005 int > mulov 0002 0000 S0
             0006 int > mulov 0000 0001 S0
             0007 int sub 0000 0000
             0008 int bxor 0000 0000
             0009 int bnot 0000
             0010 int bnot 0009
             0011 int > subov 0000 0000 S0
             0012 int bor 0000 0001
             0013 int band 0000 0000
             0014 int div 0000 0002
             0015 int rem 0000 0002
             0016 int add 0002 0000
             S0 pc=1 at=0000
             S1 pc=2 at=0017 #1=0003 #2=0004 #3=0005 #4=0006 #5=0007 #6=0008 #7=0010 #8=0011 #9=0012 #10=0013 #11=0014 #12=0015 #13=0016
             tail S1",
            // fold does not remove the now unused `bnot` (dce does).
            "0000 int > sload #0 S0
             0001 int kint 0
             0002 int kint 1
             0003 int bnot 0000
             0004 int add 0000 0002
             S0 pc=1 at=0000
             S1 pc=2 at=0005 #1=0000 #2=0000 #3=0000 #4=0001 #5=0001 #6=0001 #7=0000 #8=0001 #9=0000 #10=0000 #11=0000 #12=0001 #13=0004
             tail S1",
        );
    }

    #[test]
    fn folds_floats_bit_exactly() {
        check(
            fold,
            "0000 flt > sload #0 S0
             0001 flt kflt 0.1
             0002 flt kflt 0.2
             0003 flt fadd 0001 0002
             0004 flt kflt 0.0
             0005 flt fmul 0000 0004
             0006 flt fadd 0000 0004
             0007 flt fneg 0004
             0008 flt fneg 0000
             0009 flt fneg 0008
             0010 flt fabs 0008
             0011 int kint 3
             0012 flt itof 0011
             0013 flt fsqrt 0012
             0014 flt fdiv 0002 0004
             0015 flt fsin 0001
             0016 flt kflt -7.5
             0017 flt kflt 2.0
             0018 flt frem 0016 0017
             0019 bool feq 0014 0014
             0020 bool flt 0002 0001
             0021 flt fabs 0010
             0022 bool feq 0000 0000
             0023 flt fmul 0000 0017
             S0 pc=1 at=0000
             S1 pc=2 at=0024 #1=0003 #2=0005 #3=0006 #4=0007 #5=0009 #6=0010 #7=0012 #8=0013 #9=0014 #10=0015 #11=0018 #12=0019 #13=0020 #14=0021 #15=0022 #16=0023
             tail S1",
            // x*0.0, x+0.0, sin, x == x (NaN) and x*2.0 stay; -(-x) is x; |-x| is |x|.
            "0000 flt > sload #0 S0
             0001 flt kflt 0.1
             0002 flt kflt 0.2
             0003 flt kflt 0.30000000000000004
             0004 flt kflt 0.0
             0005 flt fmul 0000 0004
             0006 flt fadd 0000 0004
             0007 flt kflt -0.0
             0008 flt fneg 0000
             0009 flt fabs 0000
             0010 int kint 3
             0011 flt kflt 3.0
             0012 flt kflt 1.7320508075688772
             0013 flt kflt inf
             0014 flt fsin 0001
             0015 flt kflt -7.5
             0016 flt kflt 2.0
             0017 flt kflt -1.5
             0018 bool kbool true
             0019 bool kbool false
             0020 bool feq 0000 0000
             0021 flt fmul 0000 0016
             S0 pc=1 at=0000
             S1 pc=2 at=0022 #1=0003 #2=0005 #3=0006 #4=0007 #5=0000 #6=0009 #7=0011 #8=0012 #9=0013 #10=0014 #11=0017 #12=0018 #13=0019 #14=0009 #15=0020 #16=0021
             tail S1",
        );
    }

    #[test]
    fn folds_comparisons_and_guards() {
        check(
            fold,
            "0000 int > sload #0 S0
             0001 int kint 1
             0002 int kint 2
             0003 bool ilt 0001 0002
             0004 > gtrue 0003 S0
             0005 bool ile 0002 0001
             0006 > gtrue 0005 S0
             0007 > gfalse 0005 S0
             0008 bool ilt 0000 0000
             0009 > gfalse 0008 S0
             0010 bool ieq 0000 0000
             0011 > gtrue 0010 S0
             0012 str kptr 0x10
             0013 str kptr 0x20
             0014 bool peq 0012 0013
             0015 bool pne 0012 0012
             0016 bool peq 0014 0015
             0017 > gtrue 0016 S0
             0018 bool ilt 0000 0002
             0019 > gtrue 0018 S0
             S0 pc=1 at=0000",
            // ile 2 1 is false: `gtrue false` stays (it always exits), `gfalse false` goes.
            "0000 int > sload #0 S0
             0001 int kint 1
             0002 int kint 2
             0003 bool kbool true
             0004 bool kbool false
             0005 > gtrue 0004 S0
             0006 str kptr 0x10
             0007 str kptr 0x20
             0008 bool ilt 0000 0002
             0009 > gtrue 0008 S0
             S0 pc=1 at=0000",
        );
    }

    #[test]
    fn unbox_of_box_and_constant_canonicalisation() {
        check(
            fold,
            "0000 int > sload #0 S0
             0001 val box 0000
             0002 int > unbox 0001 S0
             0003 flt > unbox 0001 S0
             0004 int kint 5
             0005 int add 0004 0002
             0006 int > addov 0004 0004 S0
             S0 pc=1 at=0000
             S1 pc=2 at=0007 #1=0003 #2=0005 #3=0006
             tail S1",
            "0000 int > sload #0 S0
             0001 val box 0000
             0002 flt > unbox 0001 S0
             0003 int kint 5
             0004 int add 0000 0003
             0005 int kint 10
             S0 pc=1 at=0000
             S1 pc=2 at=0006 #1=0002 #2=0004 #3=0005
             tail S1",
        );
    }

    #[test]
    fn removes_phis_that_never_change() {
        check(
            fold,
            "0000 int > sload #0 S0
             0001 int kint 0
             0002 int > sload #1 S0
             0003 loop
             0004 int phi 0000 0004
             0005 int phi 0002 0007
             0006 int phi 0000 0008
             0007 int add 0005 0001
             0008 int add 0004 0001
             S0 pc=1 at=0000
             S1 pc=2 at=0009 #0=0004 #1=0007 #2=0008
             tail S1",
            // phi 0004 is 0000; then 0008 is 0000 and phi 0006 is phi(0000, 0000) = 0000;
            // 0007 is 0005, so phi 0005 is phi(0002, itself) = 0002.
            "0000 int > sload #0 S0
             0001 int kint 0
             0002 int > sload #1 S0
             0003 loop
             S0 pc=1 at=0000
             S1 pc=2 at=0004 #0=0000 #1=0002 #2=0000
             tail S1",
        );
    }
}
