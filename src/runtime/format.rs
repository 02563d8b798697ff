//! Text forms of values: what `print` and `str` produce, and the quoted form
//! used inside containers. Owns the number formatting rules of the language.

use std::fmt::Write;

use rustc_hash::FxHashMap;

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

/// `print(x)` / `str(x)` text, however long it gets.
pub fn display(v: Value, ctx: &FmtCtx) -> String {
    let mut s = String::new();
    let _ = write_display(&mut s, v, ctx, usize::MAX);
    s
}

/// The text being written would pass the length it was allowed.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong;

/// Appends the `print(x)` / `str(x)` text of `v` to `out`, giving up once `out`
/// is longer than `max_len` bytes. A container held in several places is
/// written in full at each, so a small value can have an exponentially long
/// text (`a = [a, a]` forty times); the cap is what keeps that bounded.
pub fn write_display(out: &mut String, v: Value, ctx: &FmtCtx, max_len: usize) -> Result<(), TooLong> {
    Printer::new(out, ctx, max_len).top(v, false)
}

/// A constant's text with strings quoted (disassembler).
pub fn debug_string(v: &Value) -> String {
    let ctx = FmtCtx { structs: &[], native_names: &[] };
    let mut s = String::new();
    let _ = Printer::new(&mut s, &ctx, usize::MAX).top(*v, true);
    s
}

/// Containers nested deeper than this print as `[...]` / `{...}`, so
/// printing never exhausts the Rust stack.
const MAX_DEPTH: usize = 200;

/// Containers with a text at least this long are remembered for copying (see
/// [`Printer::written`]), at most one per this many bytes of text, which
/// bounds the memory the memo takes to a fraction of the text's.
const MEMO_MIN: usize = 256;

struct Printer<'o, 'c> {
    out: &'o mut String,
    ctx: &'c FmtCtx<'c>,
    max_len: usize,
    /// Containers being written, outermost first: meeting one again is a cycle.
    seen: Vec<usize>,
    /// Cycle and depth elisions written so far. A container whose text has
    /// none prints the same wherever it stands (nothing changes a value while
    /// it is printed), as long as it does not reach the depth cap there.
    elisions: usize,
    /// The deepest nesting (`seen.len()`) a container was entered at since the
    /// innermost open container was entered.
    reach: usize,
    /// Texts that print the same anywhere, by container address: a value
    /// holding the same container many times (`a = [a, a]`) has a text
    /// exponentially longer than itself, and copying makes writing it as fast
    /// as copying memory, up to `max_len`.
    written: FxHashMap<usize, Written>,
}

/// Where a container's text is in the output, and how many levels it nests.
struct Written {
    start: usize,
    end: usize,
    height: usize,
}

impl<'o, 'c> Printer<'o, 'c> {
    fn new(out: &'o mut String, ctx: &'c FmtCtx<'c>, max_len: usize) -> Self {
        Printer { out, ctx, max_len, seen: Vec::new(), elisions: 0, reach: 0, written: FxHashMap::default() }
    }

    /// Writes `v`, then fails if the text ended up longer than allowed.
    fn top(&mut self, v: Value, quoted: bool) -> Result<(), TooLong> {
        self.value(v, quoted)?;
        if self.out.len() > self.max_len {
            return Err(TooLong);
        }
        Ok(())
    }

    /// Writes the container at address `id` with `body`, or copies its text
    /// when it was written before. Returns `false`, having written nothing,
    /// when the container is open already: the caller writes the cycle mark.
    fn container(&mut self, id: usize, body: impl FnOnce(&mut Self) -> Result<(), TooLong>) -> Result<bool, TooLong> {
        if self.seen.contains(&id) {
            self.elisions += 1;
            return Ok(false);
        }
        let depth = self.seen.len();
        // Most values have no text worth copying: skip hashing for them.
        if !self.written.is_empty() {
            if let Some(w) = self.written.get(&id) {
                if depth + w.height < MAX_DEPTH {
                    let (start, end) = (w.start, w.end);
                    if self.out.len() + (end - start) > self.max_len {
                        return Err(TooLong);
                    }
                    self.reach = self.reach.max(depth + w.height);
                    self.out.extend_from_within(start..end);
                    return Ok(true);
                }
            }
        }
        let (start, elisions, outer_reach) = (self.out.len(), self.elisions, self.reach);
        self.reach = depth;
        self.seen.push(id);
        body(self)?;
        self.seen.pop();
        let height = self.reach - depth;
        self.reach = self.reach.max(outer_reach);
        let end = self.out.len();
        if self.elisions == elisions && end - start >= MEMO_MIN && self.written.len() < end / MEMO_MIN {
            self.written.insert(id, Written { start, end, height });
        }
        Ok(true)
    }

    fn value(&mut self, v: Value, quoted: bool) -> Result<(), TooLong> {
        // Checked before each value, not after each push: what a value writes
        // before its parts are checked is one scalar's text, which is bounded.
        if self.out.len() > self.max_len {
            return Err(TooLong);
        }
        if self.seen.len() >= MAX_DEPTH {
            let elided = match v {
                Value::Array(_) => "[...]",
                Value::Map(_) | Value::Struct(_) => "{...}",
                _ => "",
            };
            if !elided.is_empty() {
                self.elisions += 1;
                self.out.push_str(elided);
                return Ok(());
            }
        }
        let out = &mut *self.out;
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
                let name = self.ctx.native_names.get(i as usize).copied().unwrap_or("native");
                let _ = write!(out, "<fn {name}>");
            }
            Value::Cell(c) => return self.value(c.get().value, quoted),
            Value::Array(a) => {
                let written = self.container(a.as_ptr() as usize, |p| {
                    p.out.push('[');
                    for (i, item) in a.get().iter().enumerate() {
                        if i > 0 {
                            p.out.push_str(", ");
                        }
                        p.value(item, true)?;
                    }
                    p.out.push(']');
                    Ok(())
                })?;
                if !written {
                    self.out.push_str("[...]");
                }
            }
            Value::Map(m) => {
                let written = self.container(m.as_ptr() as usize, |p| {
                    p.out.push('{');
                    for (i, (k, val)) in m.get().entries.iter().enumerate() {
                        if i > 0 {
                            p.out.push_str(", ");
                        }
                        p.value(k.to_value(), true)?;
                        p.out.push_str(": ");
                        p.value(*val, true)?;
                    }
                    p.out.push('}');
                    Ok(())
                })?;
                if !written {
                    self.out.push_str("{...}");
                }
            }
            Value::Struct(s) => {
                let obj = s.get();
                let def = self.ctx.structs.get(obj.def as usize);
                let name = def.map(|d| d.name.as_str()).unwrap_or("struct");
                let written = self.container(s.as_ptr() as usize, |p| {
                    let _ = write!(p.out, "{name} {{");
                    for (i, val) in obj.fields().iter().enumerate() {
                        p.out.push_str(if i > 0 { ", " } else { " " });
                        let field = def.and_then(|d| d.fields.get(i)).map(|s| s.as_str()).unwrap_or("?");
                        let _ = write!(p.out, "{field}: ");
                        p.value(*val, true)?;
                    }
                    p.out.push_str(if obj.fields().is_empty() { "}" } else { " }" });
                    Ok(())
                })?;
                if !written {
                    let _ = write!(self.out, "{name} {{...}}");
                }
            }
        }
        Ok(())
    }
}
