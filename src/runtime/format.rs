//! Text forms of values: what `print` and `str` produce, and the quoted form
//! used inside containers. Owns the number formatting rules of the language.

use std::fmt::Write;

use super::structdef::StructDef;
use super::value::Value;

/// What formatting needs from the VM to name structs and native functions.
pub struct FmtCtx<'a> {
    pub structs: &'a [StructDef],
    pub native_names: &'a [&'a str],
}

/// A Float as Rust's `{:?}` prints an f64.
pub fn float_to_string(f: f64) -> String {
    format!("{f:?}")
}

/// `print(x)` / `str(x)` text.
pub fn display(v: Value, ctx: &FmtCtx) -> String {
    let mut s = String::new();
    write_value(&mut s, v, false, ctx, &mut Vec::new());
    s
}

/// A constant's text with strings quoted (disassembler).
pub fn debug_string(v: &Value) -> String {
    let ctx = FmtCtx { structs: &[], native_names: &[] };
    let mut s = String::new();
    write_value(&mut s, *v, true, &ctx, &mut Vec::new());
    s
}

/// Containers nested deeper than this print as `[...]` / `{...}`, so
/// printing never exhausts the Rust stack.
const MAX_DEPTH: usize = 200;

fn write_value(out: &mut String, v: Value, quoted: bool, ctx: &FmtCtx, seen: &mut Vec<usize>) {
    if seen.len() >= MAX_DEPTH {
        match v {
            Value::Array(_) => return out.push_str("[...]"),
            Value::Map(_) => return out.push_str("{...}"),
            Value::Struct(_) => return out.push_str("{...}"),
            _ => {}
        }
    }
    match v {
        Value::Nil | Value::Uninit => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        Value::Str(s) => {
            if quoted {
                let _ = write!(out, "{:?}", s.get().as_str());
            } else {
                out.push_str(s.get().as_str());
            }
        }
        Value::Func(f) => {
            let name = &f.get().proto.name;
            if name == "<fn>" {
                out.push_str("<fn>");
            } else {
                let _ = write!(out, "<fn {name}>");
            }
        }
        Value::Native(i) => {
            let name = ctx.native_names.get(i as usize).copied().unwrap_or("native");
            let _ = write!(out, "<fn {name}>");
        }
        Value::Cell(c) => write_value(out, c.get().value, quoted, ctx, seen),
        Value::Array(a) => {
            let id = a.as_ptr() as usize;
            if seen.contains(&id) {
                out.push_str("[...]");
                return;
            }
            seen.push(id);
            out.push('[');
            for (i, item) in a.get().as_slice().iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, *item, true, ctx, seen);
            }
            out.push(']');
            seen.pop();
        }
        Value::Map(m) => {
            let id = m.as_ptr() as usize;
            if seen.contains(&id) {
                out.push_str("{...}");
                return;
            }
            seen.push(id);
            out.push('{');
            for (i, (k, val)) in m.get().entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, k.to_value(), true, ctx, seen);
                out.push_str(": ");
                write_value(out, *val, true, ctx, seen);
            }
            out.push('}');
            seen.pop();
        }
        Value::Struct(s) => {
            let obj = s.get();
            let def = ctx.structs.get(obj.def as usize);
            let name = def.map(|d| d.name.as_str()).unwrap_or("struct");
            let id = s.as_ptr() as usize;
            if seen.contains(&id) {
                let _ = write!(out, "{name} {{...}}");
                return;
            }
            seen.push(id);
            let _ = write!(out, "{name} {{");
            for (i, val) in obj.fields().iter().enumerate() {
                out.push_str(if i > 0 { ", " } else { " " });
                let field = def.and_then(|d| d.fields.get(i)).map(|s| s.as_str()).unwrap_or("?");
                let _ = write!(out, "{field}: ");
                write_value(out, *val, true, ctx, seen);
            }
            out.push_str(if obj.fields().is_empty() { "}" } else { " }" });
            seen.pop();
        }
    }
}
