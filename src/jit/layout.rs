//! The memory layout compiled traces rely on: where a `Value`'s tag and
//! payload words sit, the offsets of the heap-object fields traces read, and
//! how frames look to native calls between traces (`NativeCalls`).
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
/// `ArrayObj::kind` (u8, an `ElemKind`): what the elements are. An `Any`
/// array holds `Value`s; an `Int`, `Float` or `Bool` one holds i64s, f64s or
/// bool bytes. A trace guards the kind before it touches an element.
pub const ARRAY_KIND: u64 = 40;
/// `StructObj::def` (u32).
pub const STRUCT_DEF: u64 = 16;
/// `StructObj::fields`: pointer to the contiguous fields.
pub const STRUCT_FIELDS: u64 = 24;
/// `CellObj::value`: the boxed value, inline.
pub const CELL_VALUE: u64 = 16;
/// `FuncObj::upvals_data`: pointer to the closure's cell pointers, one word
/// each, by upvalue number (immutable once the closure exists).
pub const FUNC_UPVALS: u64 = 40;
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
    assert!(offset_of!(ArrayObj, kind) as u64 == ARRAY_KIND);
    assert!(offset_of!(StrObj, data) as u64 == STR_DATA);
    assert!(offset_of!(StrObj, len) as u64 == STR_LEN);
    assert!(offset_of!(StructObj, def) as u64 == STRUCT_DEF);
    assert!(offset_of!(StructObj, fields) as u64 == STRUCT_FIELDS);
    assert!(offset_of!(crate::runtime::object::FuncObj, upvals_data) as u64 == FUNC_UPVALS);
    assert!(std::mem::size_of::<crate::runtime::heap::GcRef<crate::runtime::object::CellObj>>() == 8);
    assert!(std::mem::size_of::<HelperValue>() == 16);
};

// ---- Frames, as native calls between traces see them ----
//
// A frame's registers are the slots `base + 0 ..` of the value stack; the
// slot just below, `base - 1`, holds the called closure and receives the
// return value (the interpreter's `Call { a, .. }` puts the callee in
// register `a` of the caller and the callee's base is `a + 1`). A trace
// body is entered with `base` = its root frame's slot 0:
//
// * `ret` stores the boxed result at slot `RETURN_SLOT` (-1) and returns
//   `RETURNED` instead of an exit code;
// * a native `tcall` (trace IR `TCall`, imm = the callee's base slot `c`)
//   stores the callee's arguments and nil registers at `c ..`, enters the
//   callee's body with `base + c`, and on `RETURNED` reads the result from
//   slot `c - 1` (its own register `a`). Any other code means the callee
//   left for the interpreter: the caller writes its own snapshot below `c`,
//   appends its exit code to `NativeCalls::unwind` and returns the callee's
//   code unchanged. `jit::deopt` rebuilds one interpreter frame per level.

/// The slot (relative to a frame's base) of the called closure, where a
/// return value goes.
pub const RETURN_SLOT: i64 = -1;

/// The code a trace body returns when its root frame returned (`ret`): the
/// result is in slot `RETURN_SLOT`. Exit codes are never 0 (serial numbers
/// start at 1).
pub const RETURNED: u64 = 0;

/// Most native call levels (nested recursive calls in machine code) one
/// entry from the interpreter may make: bounds the native stack (each level
/// is one machine frame of a trace body, typically well under 256 bytes) and
/// the unwind buffer. A call deeper than this exits, and the interpreter
/// makes it (and may enter the trace again from there).
pub const MAX_NATIVE_LEVELS: usize = 256;

/// What native calls between traces share, at a fixed address the trace
/// code has baked in (one per VM, in `JitState`). Reset by the interpreter
/// on every entry into compiled code (`Vm::run_trace`); only machine code
/// of this VM's thread touches it while a trace runs.
#[repr(C)]
pub struct NativeCalls {
    /// Interpreter frames the native calls below may still add: a call needs
    /// as many as the frames it would materialise (the caller's inlined ones
    /// plus the callee), so that any exit can rebuild every frame within
    /// `Config::max_call_depth` (the room `Vm::can_enter` checks, level by level).
    pub frames_left: std::cell::Cell<i64>,
    /// Native call levels left (`MAX_NATIVE_LEVELS` on entry).
    pub levels_left: std::cell::Cell<i64>,
    /// Address of the highest stack slot a callee's base may be at: above
    /// it, the slots any trace's exits may write would not fit.
    pub stack_limit: std::cell::Cell<u64>,
    /// Used entries of `unwind`.
    pub unwind_len: std::cell::Cell<u64>,
    /// Native calls of other functions' entry traces (`TCallAt`) made so
    /// far, for `--jit-stats`; never reset.
    pub calls_made: std::cell::Cell<u64>,
    /// Exit codes (serial << 32 | snapshot) of the caller levels, innermost
    /// caller first, when a callee left for the interpreter.
    pub unwind: [std::cell::Cell<u64>; MAX_NATIVE_LEVELS],
}

/// Offsets of the `NativeCalls` fields, in 8-byte words.
pub const NC_FRAMES_LEFT: u64 = 0;
pub const NC_LEVELS_LEFT: u64 = 1;
pub const NC_STACK_LIMIT: u64 = 2;
pub const NC_UNWIND_LEN: u64 = 3;
pub const NC_CALLS_MADE: u64 = 4;
pub const NC_UNWIND: u64 = 5;

const _: () = {
    assert!(std::mem::offset_of!(NativeCalls, frames_left) == 8 * NC_FRAMES_LEFT as usize);
    assert!(std::mem::offset_of!(NativeCalls, levels_left) == 8 * NC_LEVELS_LEFT as usize);
    assert!(std::mem::offset_of!(NativeCalls, stack_limit) == 8 * NC_STACK_LIMIT as usize);
    assert!(std::mem::offset_of!(NativeCalls, unwind_len) == 8 * NC_UNWIND_LEN as usize);
    assert!(std::mem::offset_of!(NativeCalls, calls_made) == 8 * NC_CALLS_MADE as usize);
    assert!(std::mem::offset_of!(NativeCalls, unwind) == 8 * NC_UNWIND as usize);
    assert!(std::mem::size_of::<std::cell::Cell<u64>>() == 8);
};

impl NativeCalls {
    pub fn new() -> Box<NativeCalls> {
        Box::new(NativeCalls {
            frames_left: Default::default(),
            levels_left: Default::default(),
            stack_limit: Default::default(),
            unwind_len: Default::default(),
            calls_made: Default::default(),
            unwind: std::array::from_fn(|_| Default::default()),
        })
    }
}

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
    use crate::runtime::object::{ElemKind, StructObj};
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
        let s = Value::Str(heap.alloc_str("s"));
        let arr = heap.alloc_array(vec![s, Value::Int(8), Value::Int(9)]);
        let p = arr.as_ptr() as *const u8;
        // SAFETY: `arr` is a live ArrayObj (48 bytes); the data pointer read
        // from it points at its three boxed elements.
        unsafe {
            assert_eq!(word(p, ARRAY_LEN), 3);
            assert_eq!(*p.add(ARRAY_KIND as usize), ElemKind::Any as u8);
            let data = word(p, ARRAY_DATA) as *const u8;
            assert_eq!(word(data, 2 * VALUE_SIZE + 8), 9);
        }
        let floats = heap.alloc_array(vec![Value::Float(0.5), Value::Float(1.5)]);
        let p = floats.as_ptr() as *const u8;
        // SAFETY: as above; a Float array's elements are two f64s.
        unsafe {
            assert_eq!(*p.add(ARRAY_KIND as usize), ElemKind::Float as u8);
            let data = word(p, ARRAY_DATA) as *const u8;
            assert_eq!(word(data, 8), 1.5f64.to_bits());
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
