//! The semantics of operators on values: arithmetic with overflow checks,
//! exact Int/Float comparison, equality, bitwise ops and map-key conversion.
//! The interpreter inlines the Int/Float fast paths and calls these for the
//! rest. Errors are plain messages; the caller adds the stack trace.

use std::cmp::Ordering;

use super::object::MapKey;
use super::value::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Arith {
    fn verb(self) -> &'static str {
        match self {
            Arith::Add => "add",
            Arith::Sub => "subtract",
            Arith::Mul => "multiply",
            Arith::Div => "divide",
            Arith::Rem => "take the remainder of",
        }
    }
}

pub const OVERFLOW: &str = "integer overflow";
pub const DIV_ZERO: &str = "division by zero";

#[inline]
pub fn int_arith(op: Arith, x: i64, y: i64) -> Result<i64, String> {
    let r = match op {
        Arith::Add => x.checked_add(y),
        Arith::Sub => x.checked_sub(y),
        Arith::Mul => x.checked_mul(y),
        Arith::Div => {
            if y == 0 {
                return Err(DIV_ZERO.into());
            }
            x.checked_div(y)
        }
        Arith::Rem => {
            if y == 0 {
                return Err(DIV_ZERO.into());
            }
            x.checked_rem(y)
        }
    };
    r.ok_or_else(|| OVERFLOW.to_string())
}

#[inline]
pub fn float_arith(op: Arith, x: f64, y: f64) -> f64 {
    match op {
        Arith::Add => x + y,
        Arith::Sub => x - y,
        Arith::Mul => x * y,
        Arith::Div => x / y,
        Arith::Rem => x % y,
    }
}

/// Arithmetic on any two values except String + String (the caller
/// concatenates, since that allocates).
pub fn arith(op: Arith, a: Value, b: Value) -> Result<Value, String> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_arith(op, x, y).map(Value::Int),
        (Value::Float(x), Value::Float(y)) => Ok(Value::Float(float_arith(op, x, y))),
        (Value::Int(x), Value::Float(y)) => Ok(Value::Float(float_arith(op, x as f64, y))),
        (Value::Float(x), Value::Int(y)) => Ok(Value::Float(float_arith(op, x, y as f64))),
        _ => Err(format!("cannot {} {} and {}", op.verb(), a.kind_name(), b.kind_name())),
    }
}

pub fn negate(a: Value) -> Result<Value, String> {
    match a {
        Value::Int(x) => x.checked_neg().map(Value::Int).ok_or_else(|| OVERFLOW.to_string()),
        Value::Float(x) => Ok(Value::Float(-x)),
        _ => Err(format!("cannot negate {}", a.kind_name())),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bitwise {
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

pub fn bitwise(op: Bitwise, a: Value, b: Value) -> Result<Value, String> {
    let (Value::Int(x), Value::Int(y)) = (a, b) else {
        let sym = match op {
            Bitwise::And => "&",
            Bitwise::Or => "|",
            Bitwise::Xor => "^",
            Bitwise::Shl => "<<",
            Bitwise::Shr => ">>",
        };
        return Err(format!("cannot apply `{sym}` to {} and {}", a.kind_name(), b.kind_name()));
    };
    Ok(Value::Int(match op {
        Bitwise::And => x & y,
        Bitwise::Or => x | y,
        Bitwise::Xor => x ^ y,
        Bitwise::Shl | Bitwise::Shr => {
            if !(0..=63).contains(&y) {
                return Err(format!("shift count {y} out of range 0..=63"));
            }
            if op == Bitwise::Shl {
                x << y
            } else {
                x >> y
            }
        }
    }))
}

/// Exact comparison of an Int with a Float; None when the Float is NaN.
pub fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= 9_223_372_036_854_775_808.0 {
        return Some(Ordering::Less);
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => Some(if f > t {
            Ordering::Less
        } else if f < t {
            Ordering::Greater
        } else {
            Ordering::Equal
        }),
        o => Some(o),
    }
}

/// `<`-family ordering; Ok(None) when unordered (NaN).
pub fn compare(a: Value, b: Value) -> Result<Option<Ordering>, String> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(&y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(&y),
        (Value::Int(x), Value::Float(y)) => cmp_int_float(x, y),
        (Value::Float(x), Value::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
        (Value::Str(x), Value::Str(y)) => Some(x.get().as_str().cmp(y.get().as_str())),
        _ => return Err(format!("cannot compare {} and {}", a.kind_name(), b.kind_name())),
    })
}

pub fn less(a: Value, b: Value) -> Result<bool, String> {
    Ok(compare(a, b)? == Some(Ordering::Less))
}

pub fn less_eq(a: Value, b: Value) -> Result<bool, String> {
    Ok(matches!(compare(a, b)?, Some(Ordering::Less | Ordering::Equal)))
}

/// `==`: by value for nil, Bool, numbers and Strings; by identity otherwise.
pub fn equal(a: Value, b: Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => {
            cmp_int_float(x, y) == Some(Ordering::Equal)
        }
        (Value::Str(x), Value::Str(y)) => x == y || x.get().as_str() == y.get().as_str(),
        (Value::Array(x), Value::Array(y)) => x == y,
        (Value::Map(x), Value::Map(y)) => x == y,
        (Value::Func(x), Value::Func(y)) => x == y,
        (Value::Struct(x), Value::Struct(y)) => x == y,
        (Value::Native(x), Value::Native(y)) => x == y,
        _ => false,
    }
}

pub fn map_key(v: Value) -> Result<MapKey, String> {
    match v {
        Value::Int(i) => Ok(MapKey::Int(i)),
        Value::Bool(b) => Ok(MapKey::Bool(b)),
        Value::Str(s) => Ok(MapKey::Str(s)),
        _ => Err(format!("invalid map key: {}", v.kind_name())),
    }
}

/// `key "k" not found` / `key 7 not found`.
pub fn key_not_found(k: MapKey) -> String {
    match k {
        MapKey::Int(i) => format!("key {i} not found"),
        MapKey::Bool(b) => format!("key {b} not found"),
        MapKey::Str(s) => format!("key {:?} not found", s.get().as_str()),
    }
}

pub fn index_error(i: i64, len: usize) -> String {
    format!("index {i} out of bounds for length {len}")
}
