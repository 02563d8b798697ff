//! The tagged 16-byte `Value` every register, global, constant and container
//! slot holds. Owns the value layout and cheap type queries; must not allocate.
//!
//! Layout (`#[repr(C, u64)]`, see docs/architecture.md): bytes 0..8 are the
//! tag (the explicit discriminants below) as a `u64`, bytes 8..16 the payload:
//! an `i64`, an `f64`, a `bool` in byte 8, or a pointer to a heap object.
//! Compiled code reads and writes values through exactly this layout. The tag
//! is a whole word, not a byte, so that a value written as two 8-byte stores can
//! be read back by one 16-byte load without a store-forwarding stall.

use super::heap::GcRef;
use super::object::{ArrayObj, CellObj, FuncObj, MapObj, StrObj, StructObj};

#[repr(C, u64)]
#[derive(Clone, Copy, Debug)]
pub enum Value {
    Nil = 0,
    Bool(bool) = 1,
    Int(i64) = 2,
    Float(f64) = 3,
    Str(GcRef<StrObj>) = 4,
    Array(GcRef<ArrayObj>) = 5,
    Map(GcRef<MapObj>) = 6,
    Func(GcRef<FuncObj>) = 7,
    /// A built-in or host function: an index into the VM's native table.
    Native(u32) = 8,
    Struct(GcRef<StructObj>) = 9,
    /// A captured variable's box. Internal: never visible to Vela code.
    Cell(GcRef<CellObj>) = 10,
    /// A global whose `let` has not run yet. Internal.
    Uninit = 11,
}

/// Tag values, for code that reads the layout directly (the JIT).
pub mod tag {
    pub const NIL: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const FLOAT: u8 = 3;
    pub const STR: u8 = 4;
    pub const ARRAY: u8 = 5;
    pub const MAP: u8 = 6;
    pub const FUNC: u8 = 7;
    pub const NATIVE: u8 = 8;
    pub const STRUCT: u8 = 9;
    pub const CELL: u8 = 10;
    pub const UNINIT: u8 = 11;
}

const _: () = assert!(std::mem::size_of::<Value>() == 16);

impl Value {
    #[inline(always)]
    pub fn tag(&self) -> u8 {
        // SAFETY: `Value` is `repr(C, u64)`, so its first word is the discriminant.
        unsafe { *(self as *const Value as *const u64) as u8 }
    }

    #[inline(always)]
    pub fn is_truthy(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    /// The same value bit for bit: same kind, same payload (references are
    /// compared by address, floats by bits).
    pub fn identical(&self, other: &Value) -> bool {
        match (*self, *other) {
            (Value::Nil, Value::Nil) | (Value::Uninit, Value::Uninit) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Func(a), Value::Func(b)) => a == b,
            (Value::Native(a), Value::Native(b)) => a == b,
            (Value::Struct(a), Value::Struct(b)) => a == b,
            (Value::Cell(a), Value::Cell(b)) => a == b,
            _ => false,
        }
    }

    /// The name `type(x)` returns for built-in kinds; structs are named by the caller.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil | Value::Uninit => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Func(_) | Value::Native(_) => "function",
            Value::Struct(_) => "struct",
            Value::Cell(_) => "cell",
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }
}

/// Word-level access to a `Value` in memory, for the interpreter's fast paths
/// (and the layout the JIT uses). Reading the tag and payload as separate
/// 8-byte words, and copying values word by word, keeps loads the same size as
/// the stores that wrote them, so they forward from the store buffer.
pub mod raw {
    use super::{tag, Value};
    use std::mem::MaybeUninit;

    /// # Safety
    /// `p` points to a live `Value`.
    #[inline(always)]
    pub unsafe fn tag_of(p: *const Value) -> u64 {
        // SAFETY: the first word of a `repr(C, u64)` enum is its tag.
        unsafe { *(p as *const u64) }
    }

    /// # Safety
    /// `p` points to a live `Value::Int`.
    #[inline(always)]
    pub unsafe fn int_of(p: *const Value) -> i64 {
        // SAFETY: an Int's payload is the second word.
        unsafe { *(p as *const i64).add(1) }
    }

    /// # Safety
    /// `p` points to a live `Value::Float`.
    #[inline(always)]
    pub unsafe fn float_of(p: *const Value) -> f64 {
        // SAFETY: a Float's payload is the second word.
        unsafe { *(p as *const f64).add(1) }
    }

    /// # Safety
    /// `p` points to a writable `Value` slot.
    #[inline(always)]
    pub unsafe fn put_int(p: *mut Value, v: i64) {
        // SAFETY: writes a complete, valid `Value::Int` (tag word, payload word).
        unsafe {
            *(p as *mut u64) = tag::INT as u64;
            *(p as *mut i64).add(1) = v;
        }
    }

    /// # Safety
    /// `p` points to a writable `Value` slot.
    #[inline(always)]
    pub unsafe fn put_float(p: *mut Value, v: f64) {
        // SAFETY: writes a complete, valid `Value::Float`.
        unsafe {
            *(p as *mut u64) = tag::FLOAT as u64;
            *(p as *mut f64).add(1) = v;
        }
    }

    /// # Safety
    /// Both point to `Value` slots; `src` is live.
    #[inline(always)]
    pub unsafe fn copy(dst: *mut Value, src: *const Value) {
        // SAFETY: copies both words of a valid Value (the payload word may be
        // padding, hence MaybeUninit).
        unsafe {
            let s = src as *const MaybeUninit<u64>;
            let d = dst as *mut MaybeUninit<u64>;
            let (w0, w1) = (std::ptr::read_volatile(s), std::ptr::read_volatile(s.add(1)));
            *d = w0;
            *d.add(1) = w1;
        }
    }

    /// Reads a whole value as two 8-byte words.
    ///
    /// # Safety
    /// `p` points to a live `Value`.
    #[inline(always)]
    pub unsafe fn load(p: *const Value) -> Value {
        let mut out = MaybeUninit::<Value>::uninit();
        // SAFETY: copies the two words of a valid Value into `out`, which then
        // holds that same valid Value.
        unsafe {
            copy(out.as_mut_ptr(), p);
            out.assume_init()
        }
    }

    pub const INT: u64 = tag::INT as u64;
    pub const FLOAT: u64 = tag::FLOAT as u64;
}
