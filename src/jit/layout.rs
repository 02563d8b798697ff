//! The memory layout compiled traces rely on: where a `Value`'s tag and
//! payload words sit, and the offsets of the heap-object fields traces read.
//! The numbers mirror `runtime::value` and `runtime::object` (and the table in
//! docs/architecture.md); the tests below check them against real objects, so
//! a layout change there fails here instead of in generated code.

use vela_ir::Type;

use crate::runtime::value::tag;
use crate::runtime::Value;

/// Size of a `Value` in bytes (two 8-byte words).
pub const VALUE_SIZE: u64 = 16;
/// Words per `Value`: the tag word at word 0, the payload word at word 1.
pub const VALUE_WORDS: i64 = 2;

/// `ArrayObj::data`: pointer to the contiguous elements.
pub const ARRAY_DATA: u64 = 16;
/// `ArrayObj::len` (u64).
pub const ARRAY_LEN: u64 = 24;
/// `StructObj::def` (u32).
pub const STRUCT_DEF: u64 = 16;
/// `StructObj::fields`: pointer to the contiguous fields.
pub const STRUCT_FIELDS: u64 = 24;
/// `CellObj::value`: the boxed value, inline.
pub const CELL_VALUE: u64 = 16;
/// `StrObj::data`: pointer to the UTF-8 bytes (immutable).
pub const STR_DATA: u64 = 24;
/// `StrObj::len` (u64): the byte length.
pub const STR_LEN: u64 = 32;

// Runtime helpers (`super::helpers`), called with the C ABI:
// - an object argument or result is its address (`i8*`); a helper that can
//   fail and returns an object returns null for failure;
// - an Int argument or result is an `i64`; a Bool result is an `i64` (0/1);
// - a boxed `Value` argument is two `i64`s, tag word then payload word; a
//   `Value` result is `HelperValue`, a `repr(C)` pair of `u64`s, which the C
//   ABI returns in two registers (LLVM `{i64, i64}`); a helper that can fail
//   returns the tag `HELPER_FAILED` for failure;
// - `Args` is a pointer to `n` Values laid out as in memory, then `n`.
/// The tag of a `Value` result that means "the helper failed".
pub const HELPER_FAILED: u64 = 0xff;

/// A `Value` as a helper returns it: (tag word, payload word).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HelperValue {
    pub tag: u64,
    pub payload: u64,
}

const _: () = {
    use crate::runtime::object::{ArrayObj, StrObj, StructObj};
    use std::mem::offset_of;
    assert!(offset_of!(ArrayObj, data) as u64 == ARRAY_DATA);
    assert!(offset_of!(ArrayObj, len) as u64 == ARRAY_LEN);
    assert!(offset_of!(StrObj, data) as u64 == STR_DATA);
    assert!(offset_of!(StrObj, len) as u64 == STR_LEN);
    assert!(offset_of!(StructObj, def) as u64 == STRUCT_DEF);
    assert!(offset_of!(StructObj, fields) as u64 == STRUCT_FIELDS);
    assert!(std::mem::size_of::<HelperValue>() == 16);
};

const _: () = assert!(std::mem::size_of::<Value>() == VALUE_SIZE as usize);
const _: () = assert!(std::mem::align_of::<Value>() == 8);

// The IR's concrete types are numbered by value tag, so boxing is "write the
// type number as the tag word".
const _: () = {
    assert!(Type::Nil as u8 == tag::NIL);
    assert!(Type::Bool as u8 == tag::BOOL);
    assert!(Type::Int as u8 == tag::INT);
    assert!(Type::Float as u8 == tag::FLOAT);
    assert!(Type::Str as u8 == tag::STR);
    assert!(Type::Array as u8 == tag::ARRAY);
    assert!(Type::Map as u8 == tag::MAP);
    assert!(Type::Func as u8 == tag::FUNC);
    assert!(Type::Native as u8 == tag::NATIVE);
    assert!(Type::Struct as u8 == tag::STRUCT);
    assert!(Type::Cell as u8 == tag::CELL);
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::object::StructObj;
    use crate::runtime::Heap;

    /// Reads the 8-byte word at byte offset `off` of `p`.
    ///
    /// # Safety
    /// `p + off .. p + off + 8` is readable.
    unsafe fn word(p: *const u8, off: u64) -> u64 {
        // SAFETY: the caller guarantees the range is readable; unaligned read
        // so the helper makes no alignment claim.
        unsafe { (p.add(off as usize) as *const u64).read_unaligned() }
    }

    #[test]
    fn value_words() {
        let vals = [Value::Int(-5), Value::Float(1.5), Value::Bool(true), Value::Nil];
        let p = vals.as_ptr() as *const u8;
        // SAFETY: `vals` holds four 16-byte values; every offset read is inside.
        unsafe {
            assert_eq!(word(p, 0), tag::INT as u64);
            assert_eq!(word(p, 8) as i64, -5);
            assert_eq!(word(p, 16), tag::FLOAT as u64);
            assert_eq!(f64::from_bits(word(p, 24)), 1.5);
            assert_eq!(word(p, 32), tag::BOOL as u64);
            assert_eq!(*p.add(40), 1);
            assert_eq!(word(p, 48), tag::NIL as u64);
        }
    }

    #[test]
    fn object_offsets() {
        let mut heap = Heap::new(1 << 30);
        let arr = heap.alloc_array(vec![Value::Int(7), Value::Int(8), Value::Int(9)]);
        let p = arr.as_ptr() as *const u8;
        // SAFETY: `arr` is a live ArrayObj (40 bytes); the data pointer read
        // from it points at its three elements.
        unsafe {
            assert_eq!(word(p, ARRAY_LEN), 3);
            let data = word(p, ARRAY_DATA) as *const u8;
            assert_eq!(data, arr.get().as_slice().as_ptr() as *const u8);
            assert_eq!(word(data, 2 * VALUE_SIZE + 8), 9);
        }

        let s = heap.alloc_struct(StructObj::new(42, vec![Value::Nil, Value::Int(11)]));
        let p = s.as_ptr() as *const u8;
        // SAFETY: `s` is a live StructObj (32 bytes) with two fields.
        unsafe {
            assert_eq!(word(p, STRUCT_DEF) as u32, 42);
            let fields = word(p, STRUCT_FIELDS) as *const u8;
            assert_eq!(word(fields, VALUE_SIZE), tag::INT as u64);
            assert_eq!(word(fields, VALUE_SIZE + 8), 11);
        }

        let st = heap.alloc_str("héllo");
        let p = st.as_ptr() as *const u8;
        // SAFETY: `st` is a live StrObj (40 bytes) whose data pointer points
        // at its 6 bytes.
        unsafe {
            assert_eq!(word(p, STR_LEN), 6);
            let data = word(p, STR_DATA) as *const u8;
            assert_eq!(*data.add(1), 0xc3);
        }

        let c = heap.alloc_cell(Value::Int(99));
        let p = c.as_ptr() as *const u8;
        // SAFETY: `c` is a live CellObj (32 bytes).
        unsafe {
            assert_eq!(word(p, CELL_VALUE), tag::INT as u64);
            assert_eq!(word(p, CELL_VALUE + 8), 99);
        }
    }
}
