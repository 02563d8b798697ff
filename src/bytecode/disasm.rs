//! Readable listings of prototypes (`vela --dump=bytecode`).

use std::fmt::Write;

use super::op::Op;
use super::proto::Proto;
use crate::runtime::format::debug_string;

/// Lists `proto` and, after it, every nested prototype.
pub fn disassemble(proto: &Proto) -> String {
    let mut out = String::new();
    list(proto, &mut out);
    out
}

fn const_operand(op: &Op) -> Option<u16> {
    match *op {
        Op::LoadK { k, .. }
        | Op::AddK { k, .. }
        | Op::SubK { k, .. }
        | Op::MulK { k, .. }
        | Op::DivK { k, .. }
        | Op::RemK { k, .. }
        | Op::JmpNotLtK { k, .. }
        | Op::JmpNotLeK { k, .. }
        | Op::JmpNotGtK { k, .. }
        | Op::JmpNotGeK { k, .. }
        | Op::JmpNotEqK { k, .. }
        | Op::JmpNotNeK { k, .. } => Some(k),
        _ => None,
    }
}

/// `Add { a: 1, b: 2, c: 3 }` becomes `Add         a=1 b=2 c=3`.
fn format_op(op: &Op) -> String {
    let dbg = format!("{op:?}");
    let (name, rest) = match dbg.find(" {") {
        Some(i) => (&dbg[..i], dbg[i + 2..].trim_end_matches('}').trim()),
        None => (dbg.as_str(), ""),
    };
    let operands: Vec<String> = rest.split(", ").filter(|s| !s.is_empty()).map(|s| s.replacen(": ", "=", 1)).collect();
    format!("{name:<12}{}", operands.join(" "))
}

fn list(proto: &Proto, out: &mut String) {
    let _ = writeln!(
        out,
        "function {} ({}:{}) arity={} slots={} consts={} upvals={}",
        proto.name,
        proto.file,
        proto.line,
        proto.arity,
        proto.max_slots,
        proto.consts.len(),
        proto.upvals.len()
    );
    for (pc, op) in proto.code.iter().enumerate() {
        let mut line = format!("  {pc:04}  [{:>4}]  {}", proto.lines[pc], format_op(op));
        if let Some(off) = op.jump_offset() {
            let _ = write!(line, "  ; -> {:04}", pc as i64 + 1 + off as i64);
        }
        if let Some(k) = const_operand(op) {
            let _ = write!(line, "  ; {}", debug_string(&proto.consts[k as usize]));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for (i, k) in proto.consts.iter().enumerate() {
        let _ = writeln!(out, "  const {i}: {}", debug_string(k));
    }
    for child in &proto.protos {
        out.push('\n');
        list(child, out);
    }
}
