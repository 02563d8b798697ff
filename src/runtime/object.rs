//! Heap object layouts: strings, arrays, maps, closures, struct instances and
//! captured-variable cells. Each is `repr(C)` with a `GcHeader` first. Owns the
//! object shapes and their primitive operations; must not allocate on the heap
//! (that is `Heap`'s job) nor raise Vela errors.

use std::hash::{Hash, Hasher};
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::rc::Rc;

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;

use super::heap::{GcHeader, GcRef, ObjKind};
use super::value::Value;
use crate::bytecode::Proto;

/// An immutable UTF-8 string with its hash computed once. Layout for
/// compiled code: `hash` at offset 16, the bytes' address at 24 and their
/// length at 32 (a leaked `Box<str>`, spelled out so the order is fixed).
#[repr(C)]
pub struct StrObj {
    header: GcHeader,
    pub hash: u64,
    // pub(crate) only so `jit::layout` can check their offsets.
    pub(crate) data: NonNull<u8>,
    pub(crate) len: usize,
}

pub fn hash_str(s: &str) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(s.as_bytes());
    h.finish()
}

impl StrObj {
    pub fn new(s: &str) -> StrObj {
        StrObj::from_string(s.to_owned())
    }
    pub fn from_string(s: String) -> StrObj {
        let hash = hash_str(&s);
        let b = ManuallyDrop::new(s.into_boxed_str());
        // SAFETY: a boxed str's pointer is never null.
        let data = unsafe { NonNull::new_unchecked(b.as_ptr() as *mut u8) };
        StrObj { header: GcHeader::new(ObjKind::Str), hash, data, len: b.len() }
    }
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: data/len describe the boxed str leaked in `from_string`,
        // which is valid UTF-8 and lives as long as `self`.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.data.as_ptr(), self.len)) }
    }
}

impl Drop for StrObj {
    fn drop(&mut self) {
        let ptr = std::ptr::slice_from_raw_parts_mut(self.data.as_ptr(), self.len) as *mut str;
        // SAFETY: reconstructs the boxed str leaked in `from_string`, exactly once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// A growable array. Layout for compiled code: `data` at offset 16, `len` at
/// 24, `cap` at 32; elements are contiguous `Value`s.
#[repr(C)]
pub struct ArrayObj {
    header: GcHeader,
    // pub(crate) only so `jit::layout` can check their offsets.
    pub(crate) data: NonNull<Value>,
    pub(crate) len: usize,
    cap: usize,
}

impl ArrayObj {
    pub fn from_vec(v: Vec<Value>) -> ArrayObj {
        let mut v = ManuallyDrop::new(v);
        ArrayObj {
            header: GcHeader::new(ObjKind::Array),
            // SAFETY: a Vec's pointer is never null.
            data: unsafe { NonNull::new_unchecked(v.as_mut_ptr()) },
            len: v.len(),
            cap: v.capacity(),
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    #[inline(always)]
    pub fn as_slice(&self) -> &[Value] {
        // SAFETY: data/len/cap always describe a live Vec<Value> buffer.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }

    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Value] {
        // SAFETY: as in `as_slice`, and `&mut self` is unique.
        unsafe { std::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }

    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<Value> {
        self.as_slice().get(i).copied()
    }

    /// Runs `f` on the elements as a `Vec` and returns the change in bytes owned.
    pub fn with_vec<R>(&mut self, f: impl FnOnce(&mut Vec<Value>) -> R) -> (R, isize) {
        // SAFETY: data/len/cap came from a Vec<Value> (from_vec or a previous
        // with_vec) and are written back before anyone else sees them.
        let mut v = unsafe { Vec::from_raw_parts(self.data.as_ptr(), self.len, self.cap) };
        let old = self.cap;
        let r = f(&mut v);
        let mut v = ManuallyDrop::new(v);
        // SAFETY: a Vec's pointer is never null.
        self.data = unsafe { NonNull::new_unchecked(v.as_mut_ptr()) };
        self.len = v.len();
        self.cap = v.capacity();
        (r, (self.cap as isize - old as isize) * 16)
    }

    /// Appends one value; returns the change in bytes owned.
    #[inline]
    pub fn push(&mut self, value: Value) -> isize {
        if self.len < self.cap {
            // SAFETY: len < cap, so the slot is inside the buffer.
            unsafe { self.data.as_ptr().add(self.len).write(value) };
            self.len += 1;
            0
        } else {
            self.with_vec(|v| v.push(value)).1
        }
    }
}

impl Drop for ArrayObj {
    fn drop(&mut self) {
        // SAFETY: data/len/cap describe a Vec we own; Values need no drop.
        drop(unsafe { Vec::from_raw_parts(self.data.as_ptr(), self.len, self.cap) });
    }
}

/// A map key: Int, Bool or String (by content).
#[derive(Clone, Copy, Debug)]
pub enum MapKey {
    Int(i64),
    Bool(bool),
    Str(GcRef<StrObj>),
}

impl MapKey {
    pub fn to_value(self) -> Value {
        match self {
            MapKey::Int(i) => Value::Int(i),
            MapKey::Bool(b) => Value::Bool(b),
            MapKey::Str(s) => Value::Str(s),
        }
    }
}

impl PartialEq for MapKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (MapKey::Int(a), MapKey::Int(b)) => a == b,
            (MapKey::Bool(a), MapKey::Bool(b)) => a == b,
            (MapKey::Str(a), MapKey::Str(b)) => a == b || a.get().as_str() == b.get().as_str(),
            _ => false,
        }
    }
}
impl Eq for MapKey {}

impl Hash for MapKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            MapKey::Int(i) => state.write_u64(*i as u64),
            MapKey::Bool(b) => state.write_u64(*b as u64 ^ 0x9e37_79b9),
            MapKey::Str(s) => state.write_u64(s.get().hash),
        }
    }
}

pub type Entries = IndexMap<MapKey, Value, FxBuildHasher>;

/// An insertion-ordered hash map.
#[repr(C)]
pub struct MapObj {
    header: GcHeader,
    pub entries: Entries,
}

impl Default for MapObj {
    fn default() -> Self {
        MapObj::new()
    }
}

impl MapObj {
    pub fn new() -> MapObj {
        MapObj { header: GcHeader::new(ObjKind::Map), entries: Entries::default() }
    }
    /// Approximate bytes owned by the entry storage.
    pub fn footprint(&self) -> usize {
        self.entries.capacity() * 48
    }
}

/// A closure: a prototype plus the cells it captured.
#[repr(C)]
pub struct FuncObj {
    header: GcHeader,
    pub proto: Rc<Proto>,
    pub upvals: Box<[GcRef<CellObj>]>,
}

impl FuncObj {
    pub fn new(proto: Rc<Proto>, upvals: Box<[GcRef<CellObj>]>) -> FuncObj {
        FuncObj { header: GcHeader::new(ObjKind::Func), proto, upvals }
    }
}

/// A struct instance. `def` indexes the VM's struct table; fields sit in
/// declaration order in a separate fixed-size buffer (`fields` at offset 24).
#[repr(C)]
pub struct StructObj {
    header: GcHeader,
    pub def: u32,
    nfields: u32,
    // pub(crate) only so `jit::layout` can check its offset.
    pub(crate) fields: NonNull<Value>,
}

impl StructObj {
    pub fn new(def: u32, fields: Vec<Value>) -> StructObj {
        let b = ManuallyDrop::new(fields.into_boxed_slice());
        let n = b.len() as u32;
        StructObj {
            header: GcHeader::new(ObjKind::Struct),
            def,
            nfields: n,
            // SAFETY: a boxed slice's pointer is never null.
            fields: unsafe { NonNull::new_unchecked(b.as_ptr() as *mut Value) },
        }
    }
    #[inline(always)]
    pub fn fields(&self) -> &[Value] {
        // SAFETY: fields/nfields describe the boxed slice made in `new`.
        unsafe { std::slice::from_raw_parts(self.fields.as_ptr(), self.nfields as usize) }
    }
    #[inline(always)]
    pub fn fields_mut(&mut self) -> &mut [Value] {
        // SAFETY: as in `fields`, with unique access.
        unsafe { std::slice::from_raw_parts_mut(self.fields.as_ptr(), self.nfields as usize) }
    }
}

impl Drop for StructObj {
    fn drop(&mut self) {
        let ptr = std::ptr::slice_from_raw_parts_mut(self.fields.as_ptr(), self.nfields as usize);
        // SAFETY: reconstructs the boxed slice leaked in `new`, exactly once.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// The box of a captured local: closures share it, so writes are seen by all.
#[repr(C)]
pub struct CellObj {
    header: GcHeader,
    pub value: Value,
}

impl CellObj {
    pub fn new(value: Value) -> CellObj {
        CellObj { header: GcHeader::new(ObjKind::Cell), value }
    }
}
