//! Built-in functions (`print`, `len`, `sqrt`, ...) and the methods of Array,
//! String and Map. Each takes already-evaluated arguments and returns a value
//! or an error message; the interpreter adds the stack trace.

use std::io::Write;
use std::rc::Rc;

use super::heap;
use super::object::ElemKind;
use super::ops::{self, cmp_int_float, index_error, key_not_found, map_key};
use super::structdef::{method, BUILTIN_METHODS};
use super::value::Value;
use crate::frontend::compiler::GlobalKind;
use crate::interp::{NativeFn, Vm};

type R = Result<Value, String>;
type Builtin = fn(&mut Vm, &[Value]) -> R;

fn native(f: Builtin) -> NativeFn {
    Rc::new(f)
}

/// Registers every built-in function as a global, in `compiler::BUILTINS` order.
pub fn install(vm: &mut Vm) {
    let table: &[(&str, u8, u8, Builtin)] = &[
        ("print", 0, u8::MAX, print),
        ("len", 1, 1, len),
        ("str", 1, 1, str_),
        ("int", 1, 1, int),
        ("float", 1, 1, float),
        ("type", 1, 1, type_),
        ("abs", 1, 1, abs),
        ("min", 1, u8::MAX, min),
        ("max", 1, u8::MAX, max),
        ("sqrt", 1, 1, |_, a| Ok(Value::Float(num(a[0], "sqrt")?.sqrt()))),
        ("floor", 1, 1, floor),
        ("ceil", 1, 1, ceil),
        ("sin", 1, 1, |_, a| Ok(Value::Float(num(a[0], "sin")?.sin()))),
        ("cos", 1, 1, |_, a| Ok(Value::Float(num(a[0], "cos")?.cos()))),
        ("pow", 2, 2, |_, a| Ok(Value::Float(num(a[0], "pow")?.powf(num(a[1], "pow")?)))),
        ("array", 2, 2, array),
        ("chr", 1, 1, chr),
        ("clock", 0, 0, |vm, _| Ok(Value::Float(vm.start.elapsed().as_secs_f64()))),
        ("assert", 1, 2, assert),
        ("error", 1, 1, |vm, a| Err(text(vm, a[0])?)),
    ];
    for (name, min, max, f) in table {
        vm.register_native(name, *min, *max, native(*f), GlobalKind::Builtin);
    }
}

fn num(v: Value, what: &str) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("{what} expects a number, found {}", v.kind_name()))
}

/// `str(v)`, or `memory limit exceeded` when that text would not fit in memory.
fn text(vm: &Vm, v: Value) -> Result<String, String> {
    let mut s = String::new();
    vm.write_display(&mut s, v)?;
    Ok(s)
}

fn print(vm: &mut Vm, args: &[Value]) -> R {
    let mut line = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        vm.write_display(&mut line, *a)?;
    }
    line.push('\n');
    vm.out.write_all(line.as_bytes()).map_err(|e| format!("cannot write output: {e}"))?;
    Ok(Value::Nil)
}

fn len(_: &mut Vm, a: &[Value]) -> R {
    Ok(Value::Int(match a[0] {
        Value::Str(s) => s.get().as_str().len() as i64,
        Value::Array(x) => x.get().len() as i64,
        Value::Map(m) => m.get().entries.len() as i64,
        v => return Err(format!("len expects a string, array or map, found {}", v.kind_name())),
    }))
}

fn str_(vm: &mut Vm, a: &[Value]) -> R {
    if let Value::Str(_) = a[0] {
        return Ok(a[0]);
    }
    let s = text(vm, a[0])?;
    Ok(Value::Str(vm.heap.alloc_string(s)))
}

fn int(_: &mut Vm, a: &[Value]) -> R {
    match a[0] {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(f) => {
            let t = f.trunc();
            if t.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&t) {
                return Err(format!("cannot convert {f:?} to int"));
            }
            Ok(Value::Int(t as i64))
        }
        Value::Str(s) => {
            let text = s.get().as_str().trim();
            text.parse::<i64>().map(Value::Int).map_err(|_| format!("cannot parse {:?} as int", s.get().as_str()))
        }
        v => Err(format!("cannot convert {} to int", v.kind_name())),
    }
}

fn float(_: &mut Vm, a: &[Value]) -> R {
    match a[0] {
        Value::Int(i) => Ok(Value::Float(i as f64)),
        Value::Float(f) => Ok(Value::Float(f)),
        Value::Str(s) => {
            let text = s.get().as_str().trim();
            text.parse::<f64>().map(Value::Float).map_err(|_| format!("cannot parse {:?} as float", s.get().as_str()))
        }
        v => Err(format!("cannot convert {} to float", v.kind_name())),
    }
}

fn type_(vm: &mut Vm, a: &[Value]) -> R {
    let name = match a[0] {
        Value::Struct(s) => vm.structs[s.get().def as usize].name.clone(),
        v => v.kind_name().to_owned(),
    };
    Ok(Value::Str(vm.heap.alloc_string(name)))
}

fn abs(_: &mut Vm, a: &[Value]) -> R {
    match a[0] {
        Value::Int(i) => i.checked_abs().map(Value::Int).ok_or_else(|| ops::OVERFLOW.to_string()),
        Value::Float(f) => Ok(Value::Float(f.abs())),
        v => Err(format!("abs expects a number, found {}", v.kind_name())),
    }
}

/// Index of the smallest (`want_less`) or largest argument, keeping its kind.
fn pick(a: &[Value], want_less: bool, what: &str) -> R {
    let mut best = a[0];
    num(best, what)?;
    for &v in &a[1..] {
        num(v, what)?;
        let less = match (v, best) {
            (Value::Float(x), _) if x.is_nan() => true,
            (_, Value::Float(y)) if y.is_nan() => false,
            (Value::Int(x), Value::Float(y)) => cmp_int_float(x, y) == Some(std::cmp::Ordering::Less),
            (Value::Float(x), Value::Int(y)) => cmp_int_float(y, x) == Some(std::cmp::Ordering::Greater),
            _ => ops::less(v, best)?,
        };
        let greater = !less && !ops::equal(v, best);
        if (want_less && less) || (!want_less && greater) {
            best = v;
        }
    }
    Ok(best)
}

fn min(_: &mut Vm, a: &[Value]) -> R {
    pick(a, true, "min")
}

fn max(_: &mut Vm, a: &[Value]) -> R {
    pick(a, false, "max")
}

fn floor(_: &mut Vm, a: &[Value]) -> R {
    match a[0] {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(f) => Ok(Value::Float(f.floor())),
        v => Err(format!("floor expects a number, found {}", v.kind_name())),
    }
}

fn ceil(_: &mut Vm, a: &[Value]) -> R {
    match a[0] {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(f) => Ok(Value::Float(f.ceil())),
        v => Err(format!("ceil expects a number, found {}", v.kind_name())),
    }
}

pub(crate) fn array(vm: &mut Vm, a: &[Value]) -> R {
    let Value::Int(n) = a[0] else {
        return Err(format!("array expects an int length, found {}", a[0].kind_name()));
    };
    if n < 0 {
        return Err(format!("array length {n} is negative"));
    }
    if vm.heap.too_big((n as usize).saturating_mul(ElemKind::of(a[1]).size())) {
        return Err("memory limit exceeded".into());
    }
    Ok(Value::Array(vm.heap.alloc_array_filled(n as usize, a[1])))
}

fn chr(vm: &mut Vm, a: &[Value]) -> R {
    let Value::Int(c) = a[0] else {
        return Err(format!("chr expects an int, found {}", a[0].kind_name()));
    };
    let ch = u32::try_from(c).ok().and_then(char::from_u32).ok_or_else(|| format!("invalid character code {c}"))?;
    Ok(Value::Str(vm.heap.alloc_string(ch.to_string())))
}

fn assert(vm: &mut Vm, a: &[Value]) -> R {
    if a[0].is_truthy() {
        return Ok(Value::Nil);
    }
    match a.get(1) {
        Some(m) => Err(format!("assertion failed: {}", text(vm, *m)?)),
        None => Err("assertion failed".into()),
    }
}

// ---- indexing ----

/// `o[k]` for everything but the Array fast path.
pub fn get_index(o: Value, k: Value) -> R {
    match o {
        Value::Array(_) => Err(format!("array index must be an int, found {}", k.kind_name())),
        Value::Map(m) => {
            let key = map_key(k)?;
            m.get().entries.get(&key).copied().ok_or_else(|| key_not_found(key))
        }
        v => Err(format!("cannot index {}", v.kind_name())),
    }
}

/// `o[k] = v` for everything but the Array fast path; returns bytes grown.
pub fn set_index(o: Value, k: Value, v: Value) -> Result<isize, String> {
    match o {
        Value::Array(_) => Err(format!("array index must be an int, found {}", k.kind_name())),
        Value::Map(m) => {
            let key = map_key(k)?;
            let m = m.get_mut();
            let before = m.footprint();
            m.entries.insert(key, v);
            Ok(m.footprint() as isize - before as isize)
        }
        v => Err(format!("cannot index {}", v.kind_name())),
    }
}

// ---- methods ----

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of arguments: `{name}` expects {n}, got {}", args.len()));
    }
    Ok(())
}

fn int_arg(v: Value, what: &str) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(i),
        _ => Err(format!("{what} expects an int, found {}", v.kind_name())),
    }
}

fn slice_bounds(a: i64, b: i64, len: usize) -> Result<(usize, usize), String> {
    if a < 0 || b < a || b as usize > len {
        return Err(format!("slice {a}..{b} out of bounds for length {len}"));
    }
    Ok((a as usize, b as usize))
}

/// Calls built-in method `name` (an id below `BUILTIN_METHODS.len()`).
pub fn call_method(vm: &mut Vm, recv: Value, name: u16, args: &[Value]) -> R {
    let m = BUILTIN_METHODS[name as usize];
    match recv {
        Value::Array(arr) => match name {
            method::PUSH => {
                arity(m, args, 1)?;
                let d = arr.get_mut().push(args[0]);
                vm.heap.account(d);
                Ok(Value::Nil)
            }
            method::POP => {
                arity(m, args, 0)?;
                arr.get_mut().pop().ok_or_else(|| "pop from an empty array".to_string())
            }
            method::LENGTH => {
                arity(m, args, 0)?;
                Ok(Value::Int(arr.get().len() as i64))
            }
            method::INSERT => {
                arity(m, args, 2)?;
                let i = int_arg(args[0], "insert")?;
                let len = arr.get().len();
                if i < 0 || i as usize > len {
                    return Err(index_error(i, len));
                }
                let d = arr.get_mut().insert(i as usize, args[1]);
                vm.heap.account(d);
                Ok(Value::Nil)
            }
            method::REMOVE => {
                arity(m, args, 1)?;
                let i = int_arg(args[0], "remove")?;
                let len = arr.get().len();
                if i < 0 || i as usize >= len {
                    return Err(index_error(i, len));
                }
                Ok(arr.get_mut().remove(i as usize))
            }
            method::SLICE => {
                arity(m, args, 2)?;
                let (a, b) = slice_bounds(int_arg(args[0], "slice")?, int_arg(args[1], "slice")?, arr.get().len())?;
                let items = arr.get().iter().skip(a).take(b - a).collect();
                Ok(Value::Array(vm.heap.alloc_array(items)))
            }
            method::JOIN => {
                arity(m, args, 1)?;
                let Value::Str(sep) = args[0] else {
                    return Err(format!("join expects a string separator, found {}", args[0].kind_name()));
                };
                let mut out = String::new();
                for (i, v) in arr.get().iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep.get().as_str());
                    }
                    vm.write_display(&mut out, v)?;
                }
                Ok(Value::Str(vm.heap.alloc_string(out)))
            }
            _ => Err(format!("unknown method {m} for array")),
        },
        Value::Str(s) => {
            let text = s.get().as_str();
            match name {
                method::LENGTH => {
                    arity(m, args, 0)?;
                    Ok(Value::Int(text.len() as i64))
                }
                method::BYTE => {
                    arity(m, args, 1)?;
                    let i = int_arg(args[0], "byte")?;
                    match text.as_bytes().get(i as usize) {
                        Some(b) if i >= 0 => Ok(Value::Int(*b as i64)),
                        _ => Err(index_error(i, text.len())),
                    }
                }
                method::SLICE => {
                    arity(m, args, 2)?;
                    let (a, b) = slice_bounds(int_arg(args[0], "slice")?, int_arg(args[1], "slice")?, text.len())?;
                    match text.get(a..b) {
                        Some(sub) => Ok(Value::Str(vm.heap.alloc_str(sub))),
                        None => Err(format!("slice {a}..{b} is not on a character boundary")),
                    }
                }
                method::SPLIT => {
                    arity(m, args, 1)?;
                    let Value::Str(sep) = args[0] else {
                        return Err(format!("split expects a string separator, found {}", args[0].kind_name()));
                    };
                    let sep = sep.get().as_str();
                    if sep.is_empty() {
                        return Err("split separator must not be empty".into());
                    }
                    // No collection can run while the parts are made (nothing roots
                    // them yet), so the limit is looked at first: with what the heap
                    // will be charged for the parts and the Array, which is known
                    // before anything is allocated.
                    let n = text.matches(sep).count() + 1;
                    let part_bytes = text.len() - (n - 1) * sep.len();
                    if vm.heap.too_big(n * (std::mem::size_of::<Value>() + heap::str_size(0)) + part_bytes) {
                        return Err("memory limit exceeded".into());
                    }
                    let mut parts = Vec::with_capacity(n);
                    parts.extend(text.split(sep).map(|p| Value::Str(vm.heap.alloc_str(p))));
                    Ok(Value::Array(vm.heap.alloc_array(parts)))
                }
                method::CONTAINS => {
                    arity(m, args, 1)?;
                    let Value::Str(sub) = args[0] else {
                        return Err(format!("contains expects a string, found {}", args[0].kind_name()));
                    };
                    Ok(Value::Bool(text.contains(sub.get().as_str())))
                }
                _ => Err(format!("unknown method {m} for string")),
            }
        }
        Value::Map(map) => match name {
            method::HAS => {
                arity(m, args, 1)?;
                Ok(Value::Bool(map.get().entries.contains_key(&map_key(args[0])?)))
            }
            method::GET => {
                arity(m, args, 2)?;
                Ok(map.get().entries.get(&map_key(args[0])?).copied().unwrap_or(args[1]))
            }
            method::REMOVE => {
                arity(m, args, 1)?;
                Ok(map.get_mut().entries.shift_remove(&map_key(args[0])?).unwrap_or(Value::Nil))
            }
            method::KEYS => {
                arity(m, args, 0)?;
                let keys: Vec<Value> = map.get().entries.keys().map(|k| k.to_value()).collect();
                Ok(Value::Array(vm.heap.alloc_array(keys)))
            }
            method::VALUES => {
                arity(m, args, 0)?;
                let vals: Vec<Value> = map.get().entries.values().copied().collect();
                Ok(Value::Array(vm.heap.alloc_array(vals)))
            }
            method::LENGTH => {
                arity(m, args, 0)?;
                Ok(Value::Int(map.get().entries.len() as i64))
            }
            _ => Err(format!("unknown method {m} for map")),
        },
        v => Err(format!("unknown method {m} for {}", v.kind_name())),
    }
}
