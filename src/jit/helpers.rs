//! The runtime helpers compiled traces call (`vela_ir::Helper`): allocation,
//! strings and maps, done by the same runtime code the interpreter uses.
//! Their C-ABI conventions are in `super::layout`; `address` gives the back
//! end each one's entry point.
//!
//! A helper reaches the VM through `CURRENT`, which `Vm::run_trace` sets for
//! the duration of a trace (`TraceVm`). Helpers allocate but never collect:
//! the GC runs only in the interpreter, after a trace's GC exit (see
//! `vela_ir::Snapshot::gc`), so an object a trace holds only in a register
//! is never freed under it. A helper that can fail does nothing before it
//! reports failure, so the interpreter can redo the operation and raise the
//! error itself.

use std::cell::Cell;
use std::ptr::null_mut;

use vela_ir::Helper;

use super::layout::{HelperValue, HELPER_FAILED};
use crate::interp::Vm;
use crate::runtime::object::{ArrayObj, CellObj, FuncObj, MapKey, MapObj, StrObj, StructObj};
use crate::runtime::structdef::method;
use crate::runtime::value::tag;
use crate::runtime::{builtins, GcRef, Value};

thread_local! {
    /// The VM whose trace is running on this thread (null when none).
    static CURRENT: Cell<*mut Vm> = const { Cell::new(null_mut()) };
}

/// Makes `vm` the helpers' VM until dropped (then restores the previous one).
pub(crate) struct TraceVm(*mut Vm);

impl TraceVm {
    /// # Safety
    /// `vm` stays valid, and is not used through any other path than the
    /// helpers, until the returned guard is dropped.
    pub(crate) unsafe fn enter(vm: *mut Vm) -> TraceVm {
        FOUND.with(|f| f.set(None));
        TraceVm(CURRENT.with(|c| c.replace(vm)))
    }
}

impl Drop for TraceVm {
    fn drop(&mut self) {
        FOUND.with(|f| f.set(None));
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The running trace's VM.
///
/// # Safety
/// Called only from a helper, while a trace runs (`TraceVm` is live), and the
/// reference is dropped before the helper returns.
unsafe fn vm<'a>() -> &'a mut Vm {
    let p = CURRENT.with(|c| c.get());
    assert!(!p.is_null(), "a JIT helper ran outside a trace");
    // SAFETY: `TraceVm::enter`'s contract: the VM is valid and only the
    // helpers use it while the trace runs; helpers do not nest.
    unsafe { &mut *p }
}

/// The value a trace passed as two words.
///
/// # Safety
/// The words are a valid `Value` (the trace only passes values it loaded
/// from memory or boxed from a typed value, whose references are live).
unsafe fn value(tag: u64, payload: u64) -> Value {
    // SAFETY: `Value` is `repr(C, u64)`: a tag word then a payload word
    // (`super::layout`); the caller guarantees a valid pair. Bytes of the
    // payload word a variant does not use are padding.
    unsafe { std::mem::transmute::<[u64; 2], Value>([tag, payload]) }
}

/// A value as the two words a helper returns.
fn words(v: Value) -> HelperValue {
    let (t, payload) = match v {
        Value::Nil => (tag::NIL, 0),
        Value::Bool(b) => (tag::BOOL, b as u64),
        Value::Int(i) => (tag::INT, i as u64),
        Value::Float(f) => (tag::FLOAT, f.to_bits()),
        Value::Str(r) => (tag::STR, r.as_ptr() as u64),
        Value::Array(r) => (tag::ARRAY, r.as_ptr() as u64),
        Value::Map(r) => (tag::MAP, r.as_ptr() as u64),
        Value::Func(r) => (tag::FUNC, r.as_ptr() as u64),
        Value::Native(i) => (tag::NATIVE, i as u64),
        Value::Struct(r) => (tag::STRUCT, r.as_ptr() as u64),
        Value::Cell(r) => (tag::CELL, r.as_ptr() as u64),
        Value::Uninit => (tag::UNINIT, 0),
    };
    HelperValue { tag: t as u64, payload }
}

const FAILED: HelperValue = HelperValue { tag: HELPER_FAILED, payload: 0 };

/// A map key from two words; the recorder passes only Int, Bool and String keys.
///
/// # Safety
/// As for `value`.
unsafe fn key(t: u64, p: u64) -> Option<MapKey> {
    match t {
        t if t == tag::INT as u64 => Some(MapKey::Int(p as i64)),
        t if t == tag::BOOL as u64 => Some(MapKey::Bool(p as u8 != 0)),
        // SAFETY: a String value's payload is a live StrObj (the caller's
        // guarantee).
        t if t == tag::STR as u64 => Some(MapKey::Str(unsafe { GcRef::from_raw(p as *mut StrObj) })),
        _ => None,
    }
}

/// The last map entry a lookup found: (map address, key words, entry
/// index). `m[k] = m.get(k, 0) + 1` then hashes once: the store finds the
/// entry here. Entry indices stay valid while nothing removes from the map:
/// `map_remove` forgets the entry, and `TraceVm` forgets it whenever a trace
/// starts or ends (the interpreter may remove, or the GC free the map, in
/// between).
#[derive(Clone, Copy)]
struct Found {
    map: usize,
    key: (u64, u64),
    index: usize,
}

thread_local! {
    static FOUND: Cell<Option<Found>> = const { Cell::new(None) };
}

/// Finds key (`kt`, `kp`) in `m`, remembering where (`FOUND`).
///
/// # Safety
/// As for `value`; `m` is a live map.
unsafe fn lookup(m: *mut MapObj, kt: u64, kp: u64) -> Option<Value> {
    // SAFETY: forwarded.
    let (map, k) = unsafe { (&*m, key(kt, kp)?) };
    let (index, _, v) = map.entries.get_full(&k)?;
    FOUND.with(|f| f.set(Some(Found { map: m as usize, key: (kt, kp), index })));
    Some(*v)
}

/// # Safety
/// `p` is a live object of type `T` (the trace guarded its kind).
unsafe fn obj<T>(p: *mut T) -> GcRef<T> {
    // SAFETY: forwarded.
    unsafe { GcRef::from_raw(p) }
}

/// The entry point of `h`, for the back end.
pub fn address(h: Helper) -> usize {
    match h {
        Helper::GcWanted => gc_wanted as *const () as usize,
        Helper::MapGet => map_get as *const () as usize,
        Helper::MapGetOr => map_get_or as *const () as usize,
        Helper::MapHas => map_has as *const () as usize,
        Helper::MapRemove => map_remove as *const () as usize,
        Helper::MapKeyAt => map_key_at as *const () as usize,
        Helper::MapSet => map_set as *const () as usize,
        Helper::MapLen => map_len as *const () as usize,
        Helper::MapNew => map_new as *const () as usize,
        Helper::ArrayNew => array_new as *const () as usize,
        Helper::ArrayFill => array_fill as *const () as usize,
        Helper::ArrayPush => array_push as *const () as usize,
        Helper::ArrayJoin => array_join as *const () as usize,
        Helper::StructNew => struct_new as *const () as usize,
        Helper::Concat => concat as *const () as usize,
        Helper::StrAdd => str_add as *const () as usize,
        Helper::StrContains => str_contains as *const () as usize,
        Helper::FmtPrec => fmt_prec as *const () as usize,
        Helper::StrSlice => str_slice as *const () as usize,
        Helper::StrSplit => str_split as *const () as usize,
        Helper::Method => method as *const () as usize,
        Helper::CellNew => cell_new as *const () as usize,
        Helper::ClosureNew => closure_new as *const () as usize,
        Helper::SameProto => same_proto as *const () as usize,
    }
}

extern "C" fn gc_wanted() -> u64 {
    // SAFETY: called by a trace (see `vm`).
    unsafe { vm() }.heap.should_collect() as u64
}

/// # Safety (all helpers below)
/// Called only by trace code, with arguments of the kinds `Helper::params`
/// names: live objects of the guarded kinds and valid boxed values.
unsafe extern "C" fn map_get(m: *mut MapObj, kt: u64, kp: u64) -> HelperValue {
    // SAFETY: see above.
    match unsafe { lookup(m, kt, kp) } {
        Some(v) => words(v),
        None => FAILED,
    }
}

unsafe extern "C" fn map_get_or(m: *mut MapObj, kt: u64, kp: u64, dt: u64, dp: u64) -> HelperValue {
    // SAFETY: see `map_get`.
    match unsafe { lookup(m, kt, kp) } {
        Some(v) => words(v),
        None => HelperValue { tag: dt, payload: dp },
    }
}

unsafe extern "C" fn map_has(m: *mut MapObj, kt: u64, kp: u64) -> u64 {
    // SAFETY: see `map_get`.
    let (m, k) = unsafe { (&*m, key(kt, kp)) };
    k.is_some_and(|k| m.entries.contains_key(&k)) as u64
}

unsafe extern "C" fn map_remove(m: *mut MapObj, kt: u64, kp: u64) -> HelperValue {
    // Entries after the removed one move down: `FOUND`'s index may now name
    // another entry.
    FOUND.with(|f| f.set(None));
    // SAFETY: see `map_get`.
    let (m, k) = unsafe { (obj(m), key(kt, kp)) };
    let removed = k.and_then(|k| m.get_mut().entries.shift_remove(&k));
    words(removed.unwrap_or(Value::Nil))
}

unsafe extern "C" fn map_set(m: *mut MapObj, kt: u64, kp: u64, vt: u64, vp: u64) {
    if let Some(f) = FOUND.with(|f| f.get()).filter(|f| f.map == m as usize && f.key == (kt, kp)) {
        // SAFETY: see `map_get`; `FOUND` names an entry of this map with
        // this very key, which is still there (see `Found`).
        let slot = unsafe { (*m).entries.get_index_mut(f.index) };
        if let Some((_, slot)) = slot {
            // SAFETY: as above.
            *slot = unsafe { value(vt, vp) };
            return;
        }
    }
    // SAFETY: see `map_get`.
    let (m, k, v) = unsafe { (obj(m), value(kt, kp), value(vt, vp)) };
    // The recorder passes valid keys only, so this cannot fail.
    if let Ok(d) = builtins::set_index(Value::Map(m), k, v) {
        // SAFETY: called by a trace.
        unsafe { vm() }.heap.account(d);
    }
}

unsafe extern "C" fn map_key_at(m: *mut MapObj, i: i64) -> HelperValue {
    // SAFETY: see `map_get`.
    let m = unsafe { &*m };
    let k = usize::try_from(i).ok().and_then(|i| m.entries.get_index(i)).map(|(k, _)| k.to_value());
    words(k.unwrap_or(Value::Nil))
}

unsafe extern "C" fn map_len(m: *mut MapObj) -> u64 {
    // SAFETY: see `map_get`.
    unsafe { &*m }.entries.len() as u64
}

extern "C" fn map_new() -> *mut MapObj {
    // SAFETY: called by a trace.
    unsafe { vm() }.heap.alloc_map(MapObj::new()).as_ptr()
}

extern "C" fn array_new(cap: i64) -> *mut ArrayObj {
    // SAFETY: called by a trace.
    unsafe { vm() }.heap.alloc_array_with_capacity(cap.max(0) as usize).as_ptr()
}

unsafe extern "C" fn array_fill(n: i64, vt: u64, vp: u64) -> *mut ArrayObj {
    // SAFETY: see `map_get`.
    let v = unsafe { value(vt, vp) };
    // SAFETY: called by a trace.
    match builtins::array(unsafe { vm() }, &[Value::Int(n), v]) {
        Ok(Value::Array(a)) => a.as_ptr(),
        _ => null_mut(),
    }
}

unsafe extern "C" fn array_push(a: *mut ArrayObj, vt: u64, vp: u64) {
    // SAFETY: see `map_get`.
    let (a, v) = unsafe { (obj(a), value(vt, vp)) };
    let d = a.get_mut().push(v);
    // SAFETY: called by a trace.
    unsafe { vm() }.heap.account(d);
}

/// `a.join(sep)` as `builtins::call_method` does it (the same text, failing
/// in the same cases: a text longer than the memory limit).
unsafe extern "C" fn array_join(a: *mut ArrayObj, sep: *mut StrObj) -> *mut StrObj {
    // SAFETY: see `map_get`.
    let (a, sep, vm) = unsafe { (obj(a), obj(sep), vm()) };
    text_of(vm, a.get().iter(), sep.get().as_str())
}

extern "C" fn struct_new(def: i64) -> *mut StructObj {
    // SAFETY: called by a trace.
    let vm = unsafe { vm() };
    let n = vm.structs[def as usize].fields.len();
    vm.heap.alloc_struct(StructObj::new(def as u32, vec![Value::Nil; n])).as_ptr()
}

unsafe extern "C" fn cell_new(vt: u64, vp: u64) -> *mut CellObj {
    // SAFETY: see `map_get`.
    let v = unsafe { value(vt, vp) };
    // SAFETY: called by a trace.
    unsafe { vm() }.heap.alloc_cell(v).as_ptr()
}

/// Closure `parent`'s nested function number `p` over `cells`, as
/// `Op::Closure` makes it in the interpreter.
///
/// # Safety
/// As for every helper; besides, `cells` holds at least the nested
/// function's number of upvalues, each a cell.
unsafe extern "C" fn closure_new(cells: *const Value, n: u64, parent: *mut FuncObj, p: i64) -> *mut FuncObj {
    // SAFETY: see above.
    let (cells, parent) = unsafe { (std::slice::from_raw_parts(cells, n as usize), &*parent) };
    let proto = parent.proto.protos[p as usize].clone();
    let upvals: Box<[GcRef<CellObj>]> = cells[..proto.upvals.len()]
        .iter()
        .map(|v| match v {
            Value::Cell(c) => *c,
            _ => unreachable!("the recorder passes cells"),
        })
        .collect();
    // SAFETY: called by a trace.
    unsafe { vm() }.heap.alloc_func(FuncObj::new(proto, upvals)).as_ptr()
}

unsafe extern "C" fn same_proto(f: *mut FuncObj, g: *mut FuncObj) -> u64 {
    // SAFETY: see `map_get`.
    let (f, g) = unsafe { (&*f, &*g) };
    std::rc::Rc::ptr_eq(&f.proto, &g.proto) as u64
}

thread_local! {
    /// Where `concat` and `array_join` build their text, so it grows once
    /// and the string is then allocated at its exact size.
    static TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Appends the `str(v)` text of `v` to `out`, writing strings and Ints
/// directly (the common parts of interpolations and joins) and the rest with
/// the interpreter's printer. Fails as `Vm::write_display` does: once `out`
/// is longer than the memory limit after writing a value.
fn push_text(vm: &Vm, out: &mut String, v: Value) -> Result<(), ()> {
    match v {
        Value::Str(s) => out.push_str(s.get().as_str()),
        Value::Int(i) => {
            let mut buf = [0u8; 20];
            let mut at = buf.len();
            let mut n = i.unsigned_abs();
            loop {
                at -= 1;
                buf[at] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            if i < 0 {
                out.push('-');
            }
            // SAFETY: `buf[at..]` holds only ASCII digits, which are UTF-8.
            out.push_str(unsafe { std::str::from_utf8_unchecked(&buf[at..]) });
        }
        v => return vm.write_display(out, v).map_err(|_| ()),
    }
    if out.len() > vm.heap.limit {
        return Err(());
    }
    Ok(())
}

/// The text of `parts` (with `sep` between them) as a new string, or null
/// when it would pass the memory limit.
fn text_of(vm: &mut Vm, parts: impl IntoIterator<Item = Value>, sep: &str) -> *mut StrObj {
    TEXT.with(|t| {
        let mut out = t.borrow_mut();
        out.clear();
        for (k, v) in parts.into_iter().enumerate() {
            if k > 0 {
                out.push_str(sep);
            }
            if push_text(vm, &mut out, v).is_err() {
                return null_mut();
            }
        }
        let s = vm.heap.alloc_str(&out).as_ptr();
        if out.capacity() > 1 << 20 {
            // Do not keep a huge buffer around.
            *out = String::new();
        }
        s
    })
}

/// # Safety
/// As for `map_get`; `parts` points to `n` valid Values.
unsafe extern "C" fn concat(parts: *const Value, n: u64) -> *mut StrObj {
    // SAFETY: see above.
    let (vm, parts) = unsafe { (vm(), std::slice::from_raw_parts(parts, n as usize)) };
    text_of(vm, parts.iter().copied(), "")
}

unsafe extern "C" fn fmt_prec(t: u64, p: u64, prec: i64) -> *mut StrObj {
    // SAFETY: see `map_get`.
    let x = match unsafe { value(t, p) } {
        Value::Int(i) => i as f64,
        Value::Float(f) => f,
        // The interpreter raises the error.
        _ => return null_mut(),
    };
    let text = format!("{:.*}", prec as usize, x);
    // SAFETY: called by a trace.
    unsafe { vm() }.heap.alloc_string(text).as_ptr()
}

/// A string method, exactly as the interpreter runs it (`builtins`); null
/// when it fails, so the interpreter redoes the call and raises the error.
fn string_method(s: *mut StrObj, name: u16, args: &[Value]) -> Value {
    // SAFETY: see `map_get`; called by a trace.
    let (s, vm) = unsafe { (obj(s), vm()) };
    builtins::call_method(vm, Value::Str(s), name, args).unwrap_or(Value::Nil)
}

unsafe extern "C" fn str_slice(s: *mut StrObj, a: i64, b: i64) -> *mut StrObj {
    match string_method(s, method::SLICE, &[Value::Int(a), Value::Int(b)]) {
        Value::Str(r) => r.as_ptr(),
        _ => null_mut(),
    }
}

unsafe extern "C" fn str_split(s: *mut StrObj, sep: *mut StrObj) -> *mut ArrayObj {
    // SAFETY: see `map_get`.
    let sep = unsafe { obj(sep) };
    match string_method(s, method::SPLIT, &[Value::Str(sep)]) {
        Value::Array(r) => r.as_ptr(),
        _ => null_mut(),
    }
}

unsafe extern "C" fn method(parts: *const Value, n: u64, id: i64) -> HelperValue {
    // SAFETY: see `concat`: `parts` holds `n >= 1` values, the receiver first.
    let (vm, parts) = unsafe { (vm(), std::slice::from_raw_parts(parts, n as usize)) };
    // Every method the recorder sends here checks its arguments before it
    // changes anything: an error means nothing was done.
    match builtins::call_method(vm, parts[0], id as u16, &parts[1..]) {
        Ok(v) => words(v),
        Err(_) => FAILED,
    }
}

unsafe extern "C" fn str_contains(a: *mut StrObj, b: *mut StrObj) -> u64 {
    // SAFETY: see `map_get`.
    let (s, t) = unsafe { ((*a).as_str(), (*b).as_str()) };
    s.contains(t) as u64
}

unsafe extern "C" fn str_add(a: *mut StrObj, b: *mut StrObj) -> *mut StrObj {
    // SAFETY: see `map_get`.
    let (s, t, vm) = unsafe { ((*a).as_str(), (*b).as_str(), vm()) };
    if vm.heap.too_big(s.len() + t.len()) {
        return null_mut();
    }
    let mut out = String::with_capacity(s.len() + t.len());
    out.push_str(s);
    out.push_str(t);
    vm.heap.alloc_string(out).as_ptr()
}
