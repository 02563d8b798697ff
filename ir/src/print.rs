//! The textual form of a trace (in the spirit of LuaJIT's `-jdump`), read back
//! by `parse`. One line per instruction, then one per snapshot, then the tail:
//!
//! ```text
//! 0000 int  > sload  #0 S0
//! 0001 int    kint   1
//! 0002 int  > addov  0000 0001 S0
//! 0003 int  > sload  #1 S0
//! 0004 bool   ilt    0002 0003
//! 0005      > gtrue  0004 S1
//! 0006        loop
//! 0007 int    phi    0002 0008
//! 0008 int  > addov  0007 0001 S2
//! 0009 bool   ilt    0008 0003
//! 0010      > gtrue  0009 S3
//! S0 pc=5 at=0000
//! S1 pc=9 at=0005 #0=0002
//! S2 pc=5 at=0008 #0=0007
//! S3 pc=9 at=0010 #0=0008
//! S4 pc=5 at=0011 #0=0008
//! tail S4
//! ```
//!
//! Instruction line: ref (4+ digits), type (blank for void), `>` for a guard,
//! opcode, then the operands the opcode uses (refs; `_` for a missing one),
//! then its immediate: a constant's value (`kflt` prints the shortest decimal
//! that reads back bit-exactly, else `0x` + the 16 hex digits of its bits;
//! `kptr` prints the address in hex), `#slot` (`sload`), `field N`
//! (`fload`/`fstore`), `def N` (`gdef`), `uv N` (`upval`), `global N`
//! (`gload`); then `S<n>` for the
//! snapshot. Fields an opcode does not use are printed only when set, as
//! `a=0003`/`b=..`/`c=..`/`imm=5`, so nothing is lost.
//! A helper call prints the helper's name before its operands
//! (`callg  map_get 0003 0004 S2`), as many operands as the helper takes.
//! Snapshot line: `S<n> pc=<pc> at=<ref>`, `gc` for a GC exit, then `#slot=ref` per entry and
//! `frames=[func base=B ret=R, ...]` when there are inlined frames.
//! `Nop`s print as `nop` only.

use std::fmt::{self, Write as _};

use crate::inst::{Inst, Opcode, Ref, SnapId};
use crate::layout::{Field, Imm};
use crate::snapshot::Snapshot;
use crate::trace::Trace;
use crate::types::Type;

/// `0012`, or `_` for `Ref::NONE`.
pub fn ref_str(r: Ref) -> String {
    if r.is_none() {
        "_".to_string()
    } else {
        format!("{:04}", r.0)
    }
}

/// A float constant: shortest round-tripping decimal, or its raw bits.
pub fn float_str(bits: u64) -> String {
    let v = f64::from_bits(bits);
    let s = format!("{v:?}");
    match s.parse::<f64>() {
        Ok(back) if back.to_bits() == bits => s,
        _ => format!("0x{bits:016x}"),
    }
}

/// One instruction line (without newline).
pub fn inst_line(r: Ref, inst: &Inst) -> String {
    let (ty, op) = if inst.op == Opcode::Nop { (Type::Void, Opcode::Nop) } else { (inst.ty, inst.op) };
    let guard = if op.is_guard(ty) { '>' } else { ' ' };
    let mut s = format!("{:04} {:4} {} {:6}", r.0, ty.name(), guard, op.name());
    if op == Opcode::Nop {
        return s.trim_end().to_string();
    }
    let layout = op.layout();
    let imm = inst.imm;
    if layout.imm == Imm::Helper {
        match inst.helper() {
            Some(h) => s.push_str(&format!(" {}", h.name())),
            None => s.push_str(&format!(" helper{imm}")),
        }
    }
    let fields = inst.operand_fields();
    for &f in fields {
        s.push(' ');
        s.push_str(&ref_str(inst.field(f)));
    }
    let _ = match layout.imm {
        Imm::None | Imm::Helper => Ok(()),
        Imm::Int => write!(s, " {imm}"),
        Imm::Float => write!(s, " {}", float_str(imm as u64)),
        Imm::Bool => match imm {
            0 => write!(s, " false"),
            1 => write!(s, " true"),
            _ => write!(s, " {imm}"),
        },
        Imm::Ptr => write!(s, " 0x{:x}", imm as u64),
        Imm::Slot => write!(s, " #{imm}"),
        Imm::Field => write!(s, " field {imm}"),
        Imm::Def => write!(s, " def {imm}"),
        Imm::Upval => write!(s, " uv {imm}"),
        Imm::Global => write!(s, " global {imm}"),
    };
    for f in Field::ALL {
        let v = inst.field(f);
        if !v.is_none() && !fields.contains(&f) {
            let _ = write!(s, " {}={}", f.name(), ref_str(v));
        }
    }
    if layout.imm == Imm::None && imm != 0 {
        let _ = write!(s, " imm={imm}");
    }
    if inst.snap != SnapId::NONE {
        let _ = write!(s, " S{}", inst.snap.0);
    }
    s.trim_end().to_string()
}

/// One snapshot line (without newline).
pub fn snap_line(id: SnapId, snap: &Snapshot) -> String {
    let mut s = format!("S{} pc={} at={:04}", id.0, snap.pc, snap.at);
    if snap.gc {
        s.push_str(" gc");
    }
    for e in &snap.entries {
        let _ = write!(s, " #{}={}", e.slot, ref_str(e.value));
    }
    if !snap.frames.is_empty() {
        let frames: Vec<String> =
            snap.frames.iter().map(|fr| format!("{} base={} ret={}", ref_str(fr.func), fr.base, fr.ret_pc)).collect();
        let _ = write!(s, " frames=[{}]", frames.join(", "));
    }
    s
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, inst) in self.insts.iter().enumerate() {
            writeln!(f, "{}", inst_line(Ref(i as u32), inst))?;
        }
        for (i, snap) in self.snaps.iter().enumerate() {
            writeln!(f, "{}", snap_line(SnapId(i as u32), snap))?;
        }
        if let Some(t) = self.tail {
            writeln!(f, "tail S{}", t.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use smallvec::smallvec;

    use super::*;
    use crate::snapshot::{SnapEntry, SnapFrame};

    #[test]
    fn prints_the_documented_form() {
        let mut t = Trace::new();
        let s0 = t.add_snapshot(Snapshot { pc: 10, at: 0, ..Default::default() });
        let i = t.guard(Opcode::SLoad, Type::Int, Ref::NONE, Ref::NONE, s0);
        t.inst_mut(i).imm = 2;
        let one = t.kint(1);
        let s1 = t.add_snapshot(Snapshot {
            pc: 12,
            at: 2,
            entries: vec![SnapEntry { slot: 3, value: i }],
            ..Default::default()
        });
        let i2 = t.guard(Opcode::AddOv, Type::Int, i, one, s1);
        let arr = t.kptr(Type::Array, 0x7f00a000);
        let v = t.emit(Opcode::ALoad, Type::Value, arr, i);
        let mut st = Inst::new(Opcode::AStore, Type::Void);
        (st.a, st.b, st.c) = (arr, i, v);
        t.push(st);
        let f = t.kptr(Type::Func, 0x5000);
        let s2 = t.add_snapshot(Snapshot {
            pc: 10,
            at: 6,
            entries: vec![SnapEntry { slot: 2, value: i2 }],
            frames: smallvec![SnapFrame { func: f, base: 5, ret_pc: 14 }],
            gc: false,
        });
        t.tail = Some(s2);
        let mut fl = Inst::new(Opcode::FLoad, Type::Value);
        fl.a = arr;
        fl.imm = 3;
        t.push(fl);
        t.push(Inst::new(Opcode::Loop, Type::Void));
        let k = t.kfloat(-0.0);
        let nan = t.kfloat(f64::from_bits(0x7ff8_0000_0000_0001));
        let mut odd = Inst::new(Opcode::Add, Type::Int);
        (odd.a, odd.c, odd.imm) = (i, one, 7);
        t.push(odd);
        t.push(Inst::new(Opcode::Nop, Type::Int));
        let _ = (k, nan);
        let text = t.to_string();
        let expected = "\
0000 int  > sload  #2 S0
0001 int    kint   1
0002 int  > addov  0000 0001 S1
0003 arr    kptr   0x7f00a000
0004 val    aload  0003 0000
0005        astore 0003 0000 0004
0006 fun    kptr   0x5000
0007 val    fload  0003 field 3
0008        loop
0009 flt    kflt   -0.0
0010 flt    kflt   0x7ff8000000000001
0011 int    add    0000 _ c=0001 imm=7
0012        nop
S0 pc=10 at=0000
S1 pc=12 at=0002 #3=0000
S2 pc=10 at=0006 #2=0002 frames=[0006 base=5 ret=14]
tail S2
";
        assert_eq!(text, expected);
    }
}
