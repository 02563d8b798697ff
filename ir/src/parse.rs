//! Reads the textual form written by `print` back into a `Trace`, so tests can
//! be written as text: `parse(&t.to_string())` gives `t` back (up to `Nop`
//! fields) and `parse(s)?.to_string() == s` for printed text.
//!
//! Beyond the printed form the parser accepts: any amount of whitespace
//! between tokens and around lines, blank lines, `--` comments to the end of a
//! line, and instruction/snapshot/tail lines in any interleaving (instructions
//! and snapshots must still be numbered 0, 1, 2, ... in order). It checks
//! syntax and numbering only (and that `>` agrees with `Opcode::is_guard`);
//! `verify` checks meaning.

use std::str::FromStr;

use crate::inst::{Inst, Opcode, Ref, SnapId};
use crate::layout::{Field, Imm};
use crate::snapshot::{SnapEntry, SnapFrame, Snapshot};
use crate::trace::Trace;
use crate::types::Type;

/// Parses a trace; errors name the 1-based line: `line 3: unknown opcode 'adov'`.
pub fn parse(src: &str) -> Result<Trace, String> {
    let mut t = Trace::new();
    for (n, raw) in src.lines().enumerate() {
        let line = match raw.find("--") {
            Some(p) => &raw[..p],
            None => raw,
        }
        .trim();
        if line.is_empty() {
            continue;
        }
        parse_line(&mut t, line).map_err(|e| format!("line {}: {e}", n + 1))?;
    }
    t.rebuild_const_table();
    Ok(t)
}

impl FromStr for Trace {
    type Err = String;
    fn from_str(s: &str) -> Result<Trace, String> {
        parse(s)
    }
}

fn parse_line(t: &mut Trace, line: &str) -> Result<(), String> {
    let first = line.split_whitespace().next().unwrap_or_default();
    if first == "tail" {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() != 2 {
            return Err("expected 'tail S<n>'".into());
        }
        if t.tail.is_some() {
            return Err("second tail line".into());
        }
        t.tail = Some(snap_id(toks[1])?);
        Ok(())
    } else if first.starts_with('S') {
        parse_snapshot(t, line)
    } else if first.bytes().all(|b| b.is_ascii_digit()) {
        parse_inst(t, line)
    } else {
        Err(format!("expected an instruction, a snapshot or 'tail', found '{first}'"))
    }
}

fn number<T: FromStr>(s: &str, what: &str) -> Result<T, String> {
    s.parse::<T>().map_err(|_| format!("expected {what}, found '{s}'"))
}

fn parse_ref(s: &str) -> Result<Ref, String> {
    if s == "_" {
        return Ok(Ref::NONE);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a ref, found '{s}'"));
    }
    let n: u32 = number(s, "a ref")?;
    if n == u32::MAX {
        return Err(format!("ref {s} is out of range"));
    }
    Ok(Ref(n))
}

fn snap_id(s: &str) -> Result<SnapId, String> {
    match s.strip_prefix('S') {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = number(n, "a snapshot number")?;
            if n == u32::MAX {
                return Err(format!("snapshot {s} is out of range"));
            }
            Ok(SnapId(n))
        }
        _ => Err(format!("expected a snapshot 'S<n>', found '{s}'")),
    }
}

fn hex_u64(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

fn parse_inst(t: &mut Trace, line: &str) -> Result<(), String> {
    let toks: Vec<&str> = line.split_whitespace().collect();
    let n: usize = number(toks[0], "an instruction number")?;
    if n != t.len() {
        return Err(format!("instruction {} out of order: expected {:04}", toks[0], t.len()));
    }
    let mut i = 1;
    // Type column (blank for void). `flt` is both a type and an opcode: it is
    // the type only if an opcode follows.
    let op_follows = |k: usize| {
        let k = if toks.get(k) == Some(&">") { k + 1 } else { k };
        toks.get(k).and_then(|s| Opcode::from_name(s)).is_some()
    };
    let ty = match toks.get(i).map(|s| (Type::from_name(s), Opcode::from_name(s))) {
        Some((Some(ty), None)) => {
            i += 1;
            ty
        }
        Some((Some(ty), Some(_))) if op_follows(i + 1) => {
            i += 1;
            ty
        }
        _ => Type::Void,
    };
    let marked = toks.get(i) == Some(&">");
    if marked {
        i += 1;
    }
    let name = toks.get(i).ok_or("missing opcode")?;
    let op = Opcode::from_name(name).ok_or_else(|| format!("unknown opcode '{name}'"))?;
    i += 1;
    if marked != op.is_guard(ty) {
        let what = if ty == Type::Void { op.name().to_string() } else { format!("{} {}", ty.name(), op.name()) };
        return Err(if marked {
            format!("'>' marks a guard, but {what} is not one")
        } else {
            format!("{what} is a guard: mark it with '>'")
        });
    }
    let mut inst = Inst::new(op, ty);
    if op == Opcode::Nop {
        if let Some(extra) = toks.get(i) {
            return Err(format!("unexpected '{extra}' after nop"));
        }
        t.push(inst);
        return Ok(());
    }
    let layout = op.layout();
    let mut next = |what: &str| -> Result<&str, String> {
        let tok = toks.get(i).copied().ok_or_else(|| format!("{}: missing {what}", op.name()))?;
        i += 1;
        Ok(tok)
    };
    if layout.imm == Imm::Helper {
        let name = next("helper")?;
        let h = crate::helper::Helper::from_name(name).ok_or_else(|| format!("unknown helper '{name}'"))?;
        inst.imm = h as i64;
    }
    let fields = inst.operand_fields();
    for &f in fields {
        *inst.field_mut(f) = parse_ref(next("operand")?)?;
    }
    inst.imm = match layout.imm {
        Imm::None => 0,
        Imm::Helper => inst.imm,
        Imm::Int => number(next("value")?, "an integer")?,
        Imm::Float => {
            let s = next("value")?;
            match hex_u64(s) {
                Some(bits) => bits as i64,
                None => number::<f64>(s, "a float")?.to_bits() as i64,
            }
        }
        Imm::Bool => match next("value")? {
            "true" => 1,
            "false" => 0,
            s => number(s, "true or false")?,
        },
        Imm::Ptr => {
            let s = next("address")?;
            hex_u64(s).ok_or_else(|| format!("expected a hex address 0x..., found '{s}'"))? as i64
        }
        Imm::Slot => {
            let s = next("slot")?;
            number(s.strip_prefix('#').ok_or_else(|| format!("expected a slot '#N', found '{s}'"))?, "a slot")?
        }
        Imm::Field | Imm::Def | Imm::Upval | Imm::Global => {
            let key = match layout.imm {
                Imm::Field => "field",
                Imm::Def => "def",
                Imm::Upval => "uv",
                _ => "global",
            };
            let s = next(key)?;
            if s != key {
                return Err(format!("expected '{key} N', found '{s}'"));
            }
            number(next("number")?, "a number")?
        }
    };
    for tok in &toks[i..] {
        if let Some((k, v)) = tok.split_once('=') {
            match k {
                "a" | "b" | "c" => {
                    let f = match k {
                        "a" => Field::A,
                        "b" => Field::B,
                        _ => Field::C,
                    };
                    if fields.contains(&f) {
                        return Err(format!("operand {k} of {} is positional", op.name()));
                    }
                    *inst.field_mut(f) = parse_ref(v)?;
                }
                "imm" if layout.imm == Imm::None => inst.imm = number(v, "an integer")?,
                _ => return Err(format!("unexpected '{tok}'")),
            }
        } else if tok.starts_with('S') {
            if inst.snap != SnapId::NONE {
                return Err("second snapshot".into());
            }
            inst.snap = snap_id(tok)?;
        } else {
            return Err(format!("unexpected '{tok}'"));
        }
    }
    t.push(inst);
    Ok(())
}

fn parse_snapshot(t: &mut Trace, line: &str) -> Result<(), String> {
    let (head, frames) = match line.find("frames=[") {
        Some(p) => {
            let rest = line[p + "frames=[".len()..].trim_end();
            let inner = rest.strip_suffix(']').ok_or("frames=[...] must end the line with ']'")?;
            (&line[..p], Some(inner))
        }
        None => (line, None),
    };
    let toks: Vec<&str> = head.split_whitespace().collect();
    let id = snap_id(toks[0])?;
    if id.0 as usize != t.snaps.len() {
        return Err(format!("snapshot {} out of order: expected S{}", toks[0], t.snaps.len()));
    }
    let mut snap = Snapshot::default();
    let (mut pc, mut at) = (None, None);
    for tok in &toks[1..] {
        if let Some(v) = tok.strip_prefix("pc=") {
            pc = Some(number(v, "a pc")?);
        } else if let Some(v) = tok.strip_prefix("at=") {
            at = Some(number(v, "a position")?);
        } else if *tok == "gc" {
            snap.gc = true;
        } else if let Some(e) = tok.strip_prefix('#') {
            let (slot, value) = e.split_once('=').ok_or_else(|| format!("expected '#slot=ref', found '{tok}'"))?;
            snap.entries.push(SnapEntry { slot: number(slot, "a slot")?, value: parse_ref(value)? });
        } else {
            return Err(format!("unexpected '{tok}' in snapshot"));
        }
    }
    snap.pc = pc.ok_or("snapshot without pc=")?;
    snap.at = at.ok_or("snapshot without at=")?;
    if let Some(inner) = frames {
        for fr in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let ft: Vec<&str> = fr.split_whitespace().collect();
            let bad = || format!("expected a frame 'func base=B ret=R', found '{fr}'");
            if ft.len() != 3 {
                return Err(bad());
            }
            let base = ft[1].strip_prefix("base=").ok_or_else(bad)?;
            let ret = ft[2].strip_prefix("ret=").ok_or_else(bad)?;
            snap.frames.push(SnapFrame {
                func: parse_ref(ft[0])?,
                base: number(base, "a base slot")?,
                ret_pc: number(ret, "a pc")?,
            });
        }
    }
    t.add_snapshot(snap);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
0000 int  > sload  #2 S0
0001 int    kint   1
0002 int  > addov  0000 0001 S1
0003 arr    kptr   0x7f00a000
0004 val    aload  0003 0000
0005        astore 0003 0000 0004
0006 fun    kptr   0x5000
0007 val    fload  0003 field 3
0008 obj  > sload  #-1 S0
0009      > gdef   0008 def 4 S0
0010 cel    upval  0006 uv 2
0011 bool   flt    0012 0012
0012 flt    kflt   -0.0
0013 flt    kflt   0x7ff8000000000001
0014 flt    kflt   1e300
0015 bool   kbool  true
0016 nil    knil
0017 int    add    0000 _ c=0001 imm=7
0018        nop
0019 val    kptr   0x7000
0020 val    gload  0019 global 3
0021        loop
0022 int    phi    0000 0002
S0 pc=10 at=0000
S1 pc=12 at=0002 #-1=0008 #3=0000
S2 pc=10 at=0006 #2=0002 frames=[0006 base=5 ret=14, 0006 base=9 ret=3]
tail S2
";

    #[test]
    fn round_trips() {
        let t = parse(SAMPLE).unwrap();
        assert_eq!(t.to_string(), SAMPLE);
        assert_eq!(t.inst(Ref(12)).float().to_bits(), (-0.0f64).to_bits());
        assert_eq!(t.inst(Ref(13)).imm as u64, 0x7ff8000000000001);
        assert_eq!(t.inst(Ref(11)).op, Opcode::FLt);
        assert_eq!(t.snaps[2].frames[1].base, 9);
        // Printing and parsing again is the identity on the structure too.
        let again = parse(&t.to_string()).unwrap();
        assert_eq!(again.insts, t.insts);
        assert_eq!(again.snaps, t.snaps);
        assert_eq!(again.tail, t.tail);
    }

    #[test]
    fn round_trips_helper_calls_and_gc_snapshots() {
        let text = "\
0000 map  > sload  #1 S0
0001 val    sload  #2
0002 val  > callg  map_get 0000 0001 S0
0003 int  > unbox  0002 S0
0004        carg   0001 0002
0005        carg   0004 0001
0006 str  > callg  concat 0005 S0
0007        call   map_set 0000 0001 0002
0008 bool   call   gc_wanted
0009      > gfalse 0008 S1
0010 int    slen   0006
0011 int    sbyte  0006 0003
S0 pc=4 at=0000
S1 pc=5 at=0009 gc #3=0006
";
        let t = parse(text).unwrap();
        assert_eq!(t.to_string(), text);
        crate::verify::verify(&t).unwrap();
        assert!(t.snaps[1].gc && !t.snaps[0].gc);
        assert_eq!(parse("0000 bool call gc_wantd").unwrap_err(), "line 1: unknown helper 'gc_wantd'");
    }

    #[test]
    fn builder_constants_are_interned_after_parse() {
        let mut t = parse("0000 int kint 1\n").unwrap();
        assert_eq!(t.kint(1), Ref(0));
    }

    #[test]
    fn accepts_loose_spacing_and_comments() {
        let t = parse(
            "
            -- a comment
            0000   int  >  sload #2   S0   -- i
            S0 pc=1 at=0

            tail S0
            ",
        )
        .unwrap();
        assert_eq!(t.to_string(), "0000 int  > sload  #2 S0\nS0 pc=1 at=0000\ntail S0\n");
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("0000 int > adov 0001 0002", "line 1: unknown opcode 'adov'"),
            ("0001 int kint 1", "line 1: instruction 0001 out of order: expected 0000"),
            ("0000 int kint 1\n0001 int > add 0000 0000", "line 2: '>' marks a guard, but int add is not one"),
            ("0000 int sload #1", "line 1: int sload is a guard: mark it with '>'"),
            ("0000 int kint x", "line 1: expected an integer, found 'x'"),
            ("0000 int > addov 0000", "line 1: addov: missing operand"),
            ("0000 val fload 0001 fld 2", "line 1: expected 'field N', found 'fld'"),
            ("S1 pc=1 at=0", "line 1: snapshot S1 out of order: expected S0"),
            ("S0 at=0", "line 1: snapshot without pc="),
            ("S0 pc=1 at=0 frames=[0001 base=1]", "line 1: expected a frame 'func base=B ret=R', found '0001 base=1'"),
            ("\n\nbogus", "line 3: expected an instruction, a snapshot or 'tail', found 'bogus'"),
            ("0000 int add 0001 0002 zz", "line 1: unexpected 'zz'"),
        ];
        for (src, want) in cases {
            assert_eq!(parse(src).unwrap_err(), want, "{src}");
        }
    }
}
