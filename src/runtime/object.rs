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

/// How an array stores its elements. An array made by `array(n, v)`, or
/// whose first element arrives in an empty array, holds Int, Float or Bool
/// elements unboxed (8, 8 and 1 bytes instead of a 16-byte `Value`); the
/// first element of another type turns it into an `Any` array for good. The
/// kind is invisible to Vela code: every read gives back the same `Value`.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemKind {
    Any = 0,
    Int = 1,
    Float = 2,
    Bool = 3,
}

impl ElemKind {
    /// The kind an array of only `v`s can have.
    pub fn of(v: Value) -> ElemKind {
        match v {
            Value::Int(_) => ElemKind::Int,
            Value::Float(_) => ElemKind::Float,
            Value::Bool(_) => ElemKind::Bool,
            _ => ElemKind::Any,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElemKind::Any => std::mem::size_of::<Value>(),
            ElemKind::Int | ElemKind::Float => 8,
            ElemKind::Bool => 1,
        }
    }
}

/// An array's elements as the `Vec` they are stored in (see `ArrayObj::take`).
enum Elems {
    Any(Vec<Value>),
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
}

impl Elems {
    fn with_capacity(kind: ElemKind, cap: usize) -> Elems {
        match kind {
            ElemKind::Any => Elems::Any(Vec::with_capacity(cap)),
            ElemKind::Int => Elems::Int(Vec::with_capacity(cap)),
            ElemKind::Float => Elems::Float(Vec::with_capacity(cap)),
            ElemKind::Bool => Elems::Bool(Vec::with_capacity(cap)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Elems::Any(v) => v.len(),
            Elems::Int(v) => v.len(),
            Elems::Float(v) => v.len(),
            Elems::Bool(v) => v.len(),
        }
    }

    fn capacity(&self) -> usize {
        match self {
            Elems::Any(v) => v.capacity(),
            Elems::Int(v) => v.capacity(),
            Elems::Float(v) => v.capacity(),
            Elems::Bool(v) => v.capacity(),
        }
    }

    fn kind(&self) -> ElemKind {
        match self {
            Elems::Any(_) => ElemKind::Any,
            Elems::Int(_) => ElemKind::Int,
            Elems::Float(_) => ElemKind::Float,
            Elems::Bool(_) => ElemKind::Bool,
        }
    }

    fn into_values(self) -> Vec<Value> {
        match self {
            Elems::Any(v) => v,
            Elems::Int(v) => v.into_iter().map(Value::Int).collect(),
            Elems::Float(v) => v.into_iter().map(Value::Float).collect(),
            Elems::Bool(v) => v.into_iter().map(Value::Bool).collect(),
        }
    }

    /// Appends `v`, which must be of the kind (or any value for `Any`).
    fn push(&mut self, v: Value) {
        match (self, v) {
            (Elems::Any(e), v) => e.push(v),
            (Elems::Int(e), Value::Int(x)) => e.push(x),
            (Elems::Float(e), Value::Float(x)) => e.push(x),
            (Elems::Bool(e), Value::Bool(x)) => e.push(x),
            _ => unreachable!("element of another kind"),
        }
    }
}

/// A growable array. Layout for compiled code (`jit::layout`): `data` at
/// offset 16, `len` at 24, `cap` at 32, `kind` (an `ElemKind`, one byte) at
/// 40; the elements are contiguous, `kind.size()` bytes each: a `Value`, an
/// i64, an f64 or a bool byte.
#[repr(C)]
pub struct ArrayObj {
    header: GcHeader,
    // pub(crate) only so `jit::layout` can check their offsets.
    pub(crate) data: NonNull<u8>,
    pub(crate) len: usize,
    cap: usize,
    pub(crate) kind: ElemKind,
}

impl ArrayObj {
    /// An array of `v`'s elements, unboxed if they are all Ints, all Floats
    /// or all Bools.
    pub fn from_vec(v: Vec<Value>) -> ArrayObj {
        let kind = match v.first() {
            Some(&first) if v.iter().all(|&x| ElemKind::of(x) == ElemKind::of(first)) => ElemKind::of(first),
            _ => ElemKind::Any,
        };
        let elems = match kind {
            ElemKind::Any => Elems::Any(v),
            _ => {
                let mut e = Elems::with_capacity(kind, v.len());
                v.into_iter().for_each(|x| e.push(x));
                e
            }
        };
        let mut a = ArrayObj::empty();
        a.put(elems);
        a
    }

    /// An `Any` array of `v`'s elements, whatever they are.
    #[cfg(test)]
    pub fn boxed(v: Vec<Value>) -> ArrayObj {
        let mut a = ArrayObj::empty();
        a.put(Elems::Any(v));
        a
    }

    /// `n` copies of `v` (the `array(n, v)` built-in).
    pub fn filled(n: usize, v: Value) -> ArrayObj {
        let elems = match v {
            Value::Int(x) => Elems::Int(vec![x; n]),
            Value::Float(x) => Elems::Float(vec![x; n]),
            Value::Bool(x) => Elems::Bool(vec![x; n]),
            v => Elems::Any(vec![v; n]),
        };
        let mut a = ArrayObj::empty();
        a.put(elems);
        a
    }

    /// An empty array with room for `cap` elements of any kind; its first
    /// element decides its kind.
    pub fn with_capacity(cap: usize) -> ArrayObj {
        let mut a = ArrayObj::empty();
        a.put(Elems::Any(Vec::with_capacity(cap)));
        a
    }

    fn empty() -> ArrayObj {
        ArrayObj {
            header: GcHeader::new(ObjKind::Array),
            data: NonNull::<Value>::dangling().cast(),
            len: 0,
            cap: 0,
            kind: ElemKind::Any,
        }
    }

    /// Moves the elements out as their `Vec`, leaving `self` empty; `put`
    /// gives them back.
    fn take(&mut self) -> Elems {
        let (data, len, cap, kind) = (self.data.as_ptr(), self.len, self.cap, self.kind);
        (self.len, self.cap, self.kind) = (0, 0, ElemKind::Any);
        self.data = NonNull::<Value>::dangling().cast();
        // SAFETY: data/len/cap/kind describe a Vec of the kind's element
        // type (made by `put`), and `self` no longer refers to it.
        unsafe {
            match kind {
                ElemKind::Any => Elems::Any(Vec::from_raw_parts(data.cast(), len, cap)),
                ElemKind::Int => Elems::Int(Vec::from_raw_parts(data.cast(), len, cap)),
                ElemKind::Float => Elems::Float(Vec::from_raw_parts(data.cast(), len, cap)),
                ElemKind::Bool => Elems::Bool(Vec::from_raw_parts(data.cast(), len, cap)),
            }
        }
    }

    fn put(&mut self, elems: Elems) {
        fn parts<T>(v: Vec<T>) -> (NonNull<u8>, usize, usize) {
            let mut v = ManuallyDrop::new(v);
            // SAFETY: a Vec's pointer is never null.
            (unsafe { NonNull::new_unchecked(v.as_mut_ptr().cast()) }, v.len(), v.capacity())
        }
        debug_assert!(self.cap == 0, "put over live elements");
        let (kind, (data, len, cap)) = match elems {
            Elems::Any(v) => (ElemKind::Any, parts(v)),
            Elems::Int(v) => (ElemKind::Int, parts(v)),
            Elems::Float(v) => (ElemKind::Float, parts(v)),
            Elems::Bool(v) => (ElemKind::Bool, parts(v)),
        };
        (self.data, self.len, self.cap, self.kind) = (data, len, cap, kind);
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn kind(&self) -> ElemKind {
        self.kind
    }

    /// Bytes of element storage (the capacity, in the kind's element size).
    pub fn buffer_bytes(&self) -> usize {
        self.cap * self.kind.size()
    }

    /// The elements of an `Any` array (the ones that can refer to heap
    /// objects); empty for the unboxed kinds.
    pub fn boxed_values(&self) -> &[Value] {
        match self.kind {
            // SAFETY: an Any array's data/len describe a live Vec<Value>.
            ElemKind::Any => unsafe { std::slice::from_raw_parts(self.data.as_ptr().cast(), self.len) },
            _ => &[],
        }
    }

    /// Element `i`, if in bounds.
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<Value> {
        if i >= self.len {
            return None;
        }
        // SAFETY: i < len, and the buffer holds len elements of the kind's type.
        unsafe {
            let p = self.data.as_ptr();
            Some(match self.kind {
                ElemKind::Any => *p.cast::<Value>().add(i),
                ElemKind::Int => Value::Int(*p.cast::<i64>().add(i)),
                ElemKind::Float => Value::Float(*p.cast::<f64>().add(i)),
                ElemKind::Bool => Value::Bool(*p.cast::<bool>().add(i)),
            })
        }
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = Value> + '_ {
        (0..self.len).map(|i| self.get(i).expect("in bounds"))
    }

    pub fn to_vec(&self) -> Vec<Value> {
        self.iter().collect()
    }

    /// Stores `v` at `i`; false if `i` is out of bounds. Returns the change
    /// in bytes owned through `delta` (an unboxed array given an element of
    /// another kind is boxed first).
    #[inline]
    pub fn set(&mut self, i: usize, v: Value, delta: &mut isize) -> bool {
        if i >= self.len {
            return false;
        }
        if self.kind != ElemKind::Any && ElemKind::of(v) != self.kind {
            *delta += self.rebox();
        }
        // SAFETY: i < len, and `v` fits the (possibly new) kind.
        unsafe {
            let p = self.data.as_ptr();
            match (self.kind, v) {
                (ElemKind::Int, Value::Int(x)) => *p.cast::<i64>().add(i) = x,
                (ElemKind::Float, Value::Float(x)) => *p.cast::<f64>().add(i) = x,
                (ElemKind::Bool, Value::Bool(x)) => *p.cast::<bool>().add(i) = x,
                _ => *p.cast::<Value>().add(i) = v,
            }
        }
        true
    }

    /// Turns an unboxed array into an `Any` one; returns the change in bytes.
    fn rebox(&mut self) -> isize {
        let old = self.buffer_bytes() as isize;
        let values = self.take().into_values();
        self.put(Elems::Any(values));
        self.buffer_bytes() as isize - old
    }

    /// Appends one value; returns the change in bytes owned.
    #[inline]
    pub fn push(&mut self, value: Value) -> isize {
        let kind = ElemKind::of(value);
        if self.len < self.cap && (self.kind == kind || self.kind == ElemKind::Any && self.len > 0) {
            // SAFETY: len < cap, so the slot is inside the buffer, and the
            // value fits the kind.
            unsafe {
                let p = self.data.as_ptr();
                match value {
                    Value::Int(x) if self.kind == ElemKind::Int => *p.cast::<i64>().add(self.len) = x,
                    Value::Float(x) if self.kind == ElemKind::Float => *p.cast::<f64>().add(self.len) = x,
                    Value::Bool(x) if self.kind == ElemKind::Bool => *p.cast::<bool>().add(self.len) = x,
                    _ => *p.cast::<Value>().add(self.len) = value,
                }
            }
            self.len += 1;
            return 0;
        }
        self.with_elems(|e| e.push(value), value).1
    }

    /// Runs `f` on the elements, in a `Vec` of the kind they will have once
    /// `incoming` is among them: an empty array takes `incoming`'s kind, an
    /// unboxed one of another kind is boxed. Returns `f`'s result and the
    /// change in bytes owned.
    fn with_elems<R>(&mut self, f: impl FnOnce(&mut Elems) -> R, incoming: Value) -> (R, isize) {
        let old = self.buffer_bytes() as isize;
        let kind = ElemKind::of(incoming);
        let elems = self.take();
        let mut elems = if elems.len() == 0 && elems.kind() != kind {
            Elems::with_capacity(kind, elems.capacity())
        } else if elems.kind() == kind || elems.kind() == ElemKind::Any {
            elems
        } else {
            Elems::Any(elems.into_values())
        };
        let r = f(&mut elems);
        self.put(elems);
        (r, self.buffer_bytes() as isize - old)
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<Value> {
        let v = self.get(self.len.checked_sub(1)?);
        self.len -= 1;
        v
    }

    /// Inserts `v` at `i` (at most `len`); returns the change in bytes owned.
    pub fn insert(&mut self, i: usize, v: Value) -> isize {
        self.with_elems(
            |e| match (e, v) {
                (Elems::Any(e), v) => e.insert(i, v),
                (Elems::Int(e), Value::Int(x)) => e.insert(i, x),
                (Elems::Float(e), Value::Float(x)) => e.insert(i, x),
                (Elems::Bool(e), Value::Bool(x)) => e.insert(i, x),
                _ => unreachable!("with_elems made room for the kind"),
            },
            v,
        )
        .1
    }

    /// Removes and returns element `i` (below `len`).
    pub fn remove(&mut self, i: usize) -> Value {
        let v = self.get(i).expect("in bounds");
        let mut elems = self.take();
        match &mut elems {
            Elems::Any(e) => drop(e.remove(i)),
            Elems::Int(e) => drop(e.remove(i)),
            Elems::Float(e) => drop(e.remove(i)),
            Elems::Bool(e) => drop(e.remove(i)),
        }
        self.put(elems);
        v
    }
}

impl Drop for ArrayObj {
    fn drop(&mut self) {
        drop(self.take());
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
    upvals: Box<[GcRef<CellObj>]>,
    /// `upvals`' first element, for compiled code (`jit::layout::FUNC_UPVALS`):
    /// a boxed slice's own layout is not specified. The slice never moves
    /// or changes after creation.
    pub(crate) upvals_data: *const GcRef<CellObj>,
}

impl FuncObj {
    pub fn new(proto: Rc<Proto>, upvals: Box<[GcRef<CellObj>]>) -> FuncObj {
        let upvals_data = upvals.as_ptr();
        FuncObj { header: GcHeader::new(ObjKind::Func), proto, upvals, upvals_data }
    }

    /// The cells the closure captured, by upvalue number.
    pub fn upvals(&self) -> &[GcRef<CellObj>] {
        &self.upvals
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

#[cfg(test)]
mod tests {
    use super::{ArrayObj, ElemKind};
    use crate::runtime::Value;

    fn show(a: &ArrayObj) -> String {
        format!("{:?} {:?}", a.kind(), a.to_vec())
    }

    #[test]
    fn arrays_of_one_scalar_type_are_unboxed() {
        let ints = ArrayObj::from_vec(vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(ints.kind(), ElemKind::Int);
        assert_eq!(ints.buffer_bytes(), 16);
        assert!(ints.boxed_values().is_empty());
        assert_eq!(ArrayObj::from_vec(vec![Value::Float(1.0)]).kind(), ElemKind::Float);
        assert_eq!(ArrayObj::filled(1000, Value::Bool(true)).buffer_bytes(), 1000);
        // Mixed, non-scalar or empty: boxed.
        assert_eq!(ArrayObj::from_vec(vec![Value::Int(1), Value::Float(1.0)]).kind(), ElemKind::Any);
        assert_eq!(ArrayObj::from_vec(vec![Value::Nil]).kind(), ElemKind::Any);
        assert_eq!(ArrayObj::from_vec(vec![]).kind(), ElemKind::Any);
        assert_eq!(ArrayObj::filled(3, Value::Nil).boxed_values().len(), 3);
    }

    #[test]
    fn the_first_element_of_an_empty_array_decides_its_kind() {
        let mut a = ArrayObj::with_capacity(4);
        assert_eq!(a.kind(), ElemKind::Any);
        a.push(Value::Float(0.5));
        a.push(Value::Float(1.5));
        assert_eq!(show(&a), "Float [Float(0.5), Float(1.5)]");
        assert_eq!(a.pop().map(|v| format!("{v:?}")), Some("Float(1.5)".into()));
        assert_eq!(a.pop().map(|v| format!("{v:?}")), Some("Float(0.5)".into()));
        assert!(a.pop().is_none());
        // Empty again: the next first element decides again.
        a.push(Value::Bool(false));
        assert_eq!(show(&a), "Bool [Bool(false)]");
    }

    #[test]
    fn an_element_of_another_kind_boxes_the_array_for_good() {
        let mut a = ArrayObj::filled(3, Value::Int(7));
        let mut delta = 0;
        assert!(a.set(1, Value::Int(8), &mut delta));
        assert_eq!(delta, 0);
        assert!(a.set(2, Value::Float(2.5), &mut delta));
        assert_eq!(delta, 3 * 16 - 3 * 8);
        assert!(!a.set(3, Value::Int(0), &mut delta), "out of bounds");
        assert_eq!(show(&a), "Any [Int(7), Int(8), Float(2.5)]");
        a.set(2, Value::Int(9), &mut delta);
        assert_eq!(a.kind(), ElemKind::Any);

        let mut b = ArrayObj::from_vec(vec![Value::Bool(true)]);
        assert!(b.push(Value::Int(1)) > 0);
        assert_eq!(show(&b), "Any [Bool(true), Int(1)]");
    }

    #[test]
    fn insert_and_remove_keep_or_box_the_kind() {
        let mut a = ArrayObj::from_vec(vec![Value::Int(1), Value::Int(3)]);
        a.insert(1, Value::Int(2));
        assert_eq!(show(&a), "Int [Int(1), Int(2), Int(3)]");
        assert!(matches!(a.remove(0), Value::Int(1)));
        assert_eq!(show(&a), "Int [Int(2), Int(3)]");
        a.insert(2, Value::Nil);
        assert_eq!(show(&a), "Any [Int(2), Int(3), Nil]");
        let mut e = ArrayObj::with_capacity(0);
        e.insert(0, Value::Float(1.0));
        assert_eq!(show(&e), "Float [Float(1.0)]");
    }
}
