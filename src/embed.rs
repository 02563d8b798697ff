//! The typed embedding API: moving Rust values in and out of a [`Vm`], calling
//! Vela functions and registering Rust closures as Vela functions.
//!
//! The untyped layer on [`Vm`] (`run_source`, `global`, `set_global`,
//! `call_value`, `register_native`) works with raw [`Value`]s. This module adds
//! two conversion traits, [`FromVela`] and [`IntoVela`], and the methods built
//! on them:
//!
//! | method | does |
//! | --- | --- |
//! | [`Vm::get`] | reads a global as a Rust type |
//! | [`Vm::set`] | sets (or creates) a global from a Rust value |
//! | [`Vm::call`] | calls a Vela function (by global name or as a value) with Rust arguments |
//! | [`Vm::register_fn`] | makes a Rust closure with typed arguments callable from Vela |
//! | [`Vm::type_name`] | what Vela's `type(x)` says about a value |
//!
//! ```
//! use vela::{Config, Vm};
//!
//! let mut vm = Vm::new(Config::default());
//! vm.register_fn("hypot", |a: f64, b: f64| (a * a + b * b).sqrt());
//! vm.set("scale", 2);
//! vm.run_source("fn area(w, h) { return w * h * scale }", "shapes.vela")?;
//!
//! assert_eq!(vm.call::<i64>("area", (3, 4))?, 24);
//! assert_eq!(vm.call::<f64>("hypot", (3, 4.0))?, 5.0);
//! # Ok::<(), vela::Error>(())
//! ```
//!
//! # Conversions
//!
//! | Rust | Vela | notes |
//! | --- | --- | --- |
//! | `i64`, `i32`, `i16`, `i8`, `u32`, `u16`, `u8`, `isize` | Int | reading checks the range |
//! | `u64`, `usize` | Int | read only (a Rust value may not fit an Int) |
//! | `f64`, `f32` | Float | reading also accepts an Int |
//! | `bool` | Bool | strict: reading `nil` is an error, not `false` |
//! | `String` (`&str` to Vela) | String | |
//! | `()` | nil | reading accepts (and discards) any value |
//! | `Option<T>` | `nil` or `T` | `None` ⇄ `nil` |
//! | `Vec<T>` (`&[T]` to Vela) | Array | element by element |
//! | `HashMap<K, V>`, `BTreeMap<K, V>` | Map | keys: `String`, `&str`, integers, `bool` |
//! | [`Value`] | anything | no conversion; see below |
//!
//! A conversion failure inside a host function is a Vela runtime error
//! (``argument 1 of `f`: expected int, found string``); on the host side
//! ([`Vm::get`], the result of [`Vm::call`]) it is an [`Error`] of kind
//! [`ErrorKind::Conversion`].
//!
//! # Values and the garbage collector
//!
//! A [`Value`] that holds a String, Array, Map, function or struct is a pointer
//! into the VM's garbage-collected heap, and the host's copies of it are **not
//! GC roots**. Such a `Value` is valid only until the VM next runs Vela code
//! (`run_source`, `run_file`, `call`, `call_value`, ...), because a collection
//! may then free the object unless Vela itself still references it (from a
//! global, for instance). Values passed as arguments to a host function stay
//! valid for the whole call, including calls back into the VM. Converting to
//! an owned Rust type (`String`, `Vec<T>`, ...) is always safe; to keep a Vela
//! object across runs, store it in a global with [`Vm::set`] and read it back
//! with [`Vm::get`]. A `Value` also belongs to the VM that made it: never pass
//! one to another VM.
//!
//! # Stopping a runaway script
//!
//! [`Config::mem_limit`](crate::Config::mem_limit) /
//! [`Vm::set_memory_limit`] bound the heap (`memory limit exceeded`, a
//! [`ErrorKind::Runtime`] error). [`Vm::set_instruction_budget`] and
//! [`Vm::set_interrupt`] stop a script with an [`ErrorKind::Interrupted`]
//! error; both are checked at every loop header and function entry. The budget
//! counts every instruction the VM has executed since it was created
//! ([`Vm::stats`]`().instructions`), so a per-call budget is
//! `vm.set_instruction_budget(Some(vm.stats().instructions + n))`.
//!
//! ```
//! use vela::{Config, ErrorKind, Vm};
//!
//! let mut vm = Vm::new(Config { instruction_budget: Some(100_000), ..Config::default() });
//! let err = vm.run_source("while true {}", "spin.vela").unwrap_err();
//! assert_eq!(err.kind, ErrorKind::Interrupted);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::rc::Rc;

use crate::error::{Error, ErrorKind};
use crate::frontend::compiler::GlobalKind;
use crate::interp::{NativeFn, Vm};
use crate::runtime::object::MapObj;
use crate::runtime::ops::map_key;
use crate::runtime::Value;

// ---------------------------------------------------------------------------
// Conversion traits
// ---------------------------------------------------------------------------

/// A Rust type that can be read from a Vela [`Value`].
///
/// The error is a short message such as `expected int, found string`; callers
/// add context (which argument, which global).
///
/// ```
/// use vela::embed::FromVela;
/// use vela::{Config, Value, Vm};
///
/// let vm = Vm::new(Config::default());
/// assert_eq!(i64::from_vela(&vm, Value::Int(7)), Ok(7));
/// assert_eq!(f64::from_vela(&vm, Value::Int(7)), Ok(7.0));
/// assert_eq!(Option::<bool>::from_vela(&vm, Value::Nil), Ok(None));
/// assert_eq!(i64::from_vela(&vm, Value::Bool(true)), Err("expected int, found bool".to_string()));
/// ```
///
/// Implement it for your own types by delegating to the provided ones:
///
/// ```
/// use vela::embed::FromVela;
/// use vela::{Config, Value, Vm};
///
/// struct Celsius(f64);
/// impl FromVela for Celsius {
///     fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
///         f64::from_vela(vm, v).map(Celsius)
///     }
/// }
///
/// let mut vm = Vm::new(Config::default());
/// vm.run_source("let t = 21.5", "t.vela")?;
/// assert_eq!(vm.get::<Celsius>("t")?.0, 21.5);
/// # Ok::<(), vela::Error>(())
/// ```
pub trait FromVela: Sized {
    /// Converts `v`, which belongs to `vm`.
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String>;
}

/// A Rust value that can be turned into a Vela [`Value`] (allocating on the
/// VM's heap for strings, arrays and maps).
///
/// ```
/// use vela::embed::IntoVela;
/// use vela::{Config, Vm};
///
/// let mut vm = Vm::new(Config::default());
/// let v = vec!["a", "b"].into_vela(&mut vm);
/// assert_eq!(vm.display(v), r#"["a", "b"]"#);
/// ```
pub trait IntoVela {
    /// Converts `self` into a value of `vm`.
    fn into_vela(self, vm: &mut Vm) -> Value;
}

/// `expected {what}, found {type of v}`.
fn mismatch(vm: &Vm, what: &str, v: Value) -> String {
    format!("expected {what}, found {}", vm.type_name(v))
}

impl FromVela for Value {
    fn from_vela(_: &Vm, v: Value) -> Result<Self, String> {
        Ok(v)
    }
}

impl IntoVela for Value {
    fn into_vela(self, _: &mut Vm) -> Value {
        self
    }
}

impl FromVela for i64 {
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i),
            _ => Err(mismatch(vm, "int", v)),
        }
    }
}

impl IntoVela for i64 {
    fn into_vela(self, _: &mut Vm) -> Value {
        Value::Int(self)
    }
}

/// Integer types narrower than (or as wide as) an Int: checked on the way in,
/// exact on the way out.
macro_rules! small_int {
    ($($t:ty),*) => {$(
        impl FromVela for $t {
            fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
                let i = i64::from_vela(vm, v)?;
                <$t>::try_from(i).map_err(|_| format!("int {i} out of range for {}", stringify!($t)))
            }
        }
        impl IntoVela for $t {
            fn into_vela(self, _: &mut Vm) -> Value {
                Value::Int(self as i64)
            }
        }
    )*};
}
small_int!(i8, i16, i32, u8, u16, u32, isize);

/// Integer types that may not fit an Int: read only.
macro_rules! wide_int {
    ($($t:ty),*) => {$(
        impl FromVela for $t {
            fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
                let i = i64::from_vela(vm, v)?;
                <$t>::try_from(i).map_err(|_| format!("int {i} out of range for {}", stringify!($t)))
            }
        }
    )*};
}
wide_int!(u64, usize);

impl FromVela for f64 {
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
        v.as_f64().ok_or_else(|| mismatch(vm, "float", v))
    }
}

impl IntoVela for f64 {
    fn into_vela(self, _: &mut Vm) -> Value {
        Value::Float(self)
    }
}

impl FromVela for f32 {
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
        f64::from_vela(vm, v).map(|f| f as f32)
    }
}

impl IntoVela for f32 {
    fn into_vela(self, _: &mut Vm) -> Value {
        Value::Float(self as f64)
    }
}

impl FromVela for bool {
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
        match v {
            Value::Bool(b) => Ok(b),
            _ => Err(mismatch(vm, "bool", v)),
        }
    }
}

impl IntoVela for bool {
    fn into_vela(self, _: &mut Vm) -> Value {
        Value::Bool(self)
    }
}

impl FromVela for String {
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
        match v {
            Value::Str(s) => Ok(s.get().as_str().to_owned()),
            _ => Err(mismatch(vm, "string", v)),
        }
    }
}

impl IntoVela for String {
    fn into_vela(self, vm: &mut Vm) -> Value {
        Value::Str(vm.heap.alloc_string(self))
    }
}

impl IntoVela for &str {
    fn into_vela(self, vm: &mut Vm) -> Value {
        vm.new_string(self)
    }
}

impl IntoVela for &String {
    fn into_vela(self, vm: &mut Vm) -> Value {
        vm.new_string(self)
    }
}

/// Reading `()` accepts any value and discards it (for `call::<()>`).
impl FromVela for () {
    fn from_vela(_: &Vm, _: Value) -> Result<Self, String> {
        Ok(())
    }
}

impl IntoVela for () {
    fn into_vela(self, _: &mut Vm) -> Value {
        Value::Nil
    }
}

/// `nil` is `None`; anything else must convert to `T`.
impl<T: FromVela> FromVela for Option<T> {
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
        match v {
            Value::Nil => Ok(None),
            v => T::from_vela(vm, v).map(Some),
        }
    }
}

impl<T: IntoVela> IntoVela for Option<T> {
    fn into_vela(self, vm: &mut Vm) -> Value {
        match self {
            Some(x) => x.into_vela(vm),
            None => Value::Nil,
        }
    }
}

impl<T: FromVela> FromVela for Vec<T> {
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
        let Value::Array(a) = v else { return Err(mismatch(vm, "array", v)) };
        a.get().iter().enumerate().map(|(i, x)| T::from_vela(vm, x).map_err(|e| format!("at index {i}: {e}"))).collect()
    }
}

impl<T: IntoVela> IntoVela for Vec<T> {
    fn into_vela(self, vm: &mut Vm) -> Value {
        // Allocating the elements cannot collect garbage (collection happens only
        // at safe points in the dispatch loop), so the unrooted items are safe.
        let items: Vec<Value> = self.into_iter().map(|x| x.into_vela(vm)).collect();
        vm.new_array(items)
    }
}

impl<T: IntoVela + Clone> IntoVela for &[T] {
    fn into_vela(self, vm: &mut Vm) -> Value {
        let items: Vec<Value> = self.iter().map(|x| x.clone().into_vela(vm)).collect();
        vm.new_array(items)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that becomes a valid Vela map key (Int, Bool or String).
/// Implemented for `String`, `&str`, the integer types that are [`IntoVela`],
/// and `bool`; it cannot be implemented outside this crate.
pub trait VelaKey: IntoVela + sealed::Sealed {}

macro_rules! vela_key {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl VelaKey for $t {}
    )*};
}
vela_key!(String, &str, bool, i64, i32, i16, i8, u32, u16, u8, isize);

/// A readable rendering of a map key for error messages.
fn key_text(vm: &Vm, k: Value) -> String {
    match k {
        Value::Str(s) => format!("{:?}", s.get().as_str()),
        k => vm.display(k),
    }
}

/// Reads a Vela Map entry by entry.
fn map_from_vela<K: FromVela, V: FromVela, M: FromIterator<(K, V)>>(vm: &Vm, v: Value) -> Result<M, String> {
    let Value::Map(m) = v else { return Err(mismatch(vm, "map", v)) };
    m.get()
        .entries
        .iter()
        .map(|(k, x)| {
            let k = k.to_value();
            let key = K::from_vela(vm, k).map_err(|e| format!("key {}: {e}", key_text(vm, k)))?;
            let val = V::from_vela(vm, *x).map_err(|e| format!("at key {}: {e}", key_text(vm, k)))?;
            Ok((key, val))
        })
        .collect()
}

/// Builds a Vela Map; entries are inserted in the iterator's order.
fn map_into_vela<K: VelaKey, V: IntoVela>(vm: &mut Vm, entries: impl IntoIterator<Item = (K, V)>) -> Value {
    let mut map = MapObj::new();
    for (k, v) in entries {
        let k = k.into_vela(vm);
        let key = map_key(k).expect("a VelaKey converts to an Int, Bool or String");
        let v = v.into_vela(vm);
        map.entries.insert(key, v);
    }
    Value::Map(vm.heap.alloc_map(map))
}

impl<K: FromVela + Eq + Hash, V: FromVela, S: BuildHasher + Default> FromVela for HashMap<K, V, S> {
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
        map_from_vela(vm, v)
    }
}

/// The Vela map's order is the `HashMap`'s iteration order (unspecified); use a
/// `BTreeMap` for sorted keys.
impl<K: VelaKey, V: IntoVela, S> IntoVela for HashMap<K, V, S> {
    fn into_vela(self, vm: &mut Vm) -> Value {
        map_into_vela(vm, self)
    }
}

impl<K: FromVela + Ord, V: FromVela> FromVela for BTreeMap<K, V> {
    fn from_vela(vm: &Vm, v: Value) -> Result<Self, String> {
        map_from_vela(vm, v)
    }
}

impl<K: VelaKey, V: IntoVela> IntoVela for BTreeMap<K, V> {
    fn into_vela(self, vm: &mut Vm) -> Value {
        map_into_vela(vm, self)
    }
}

// ---------------------------------------------------------------------------
// Host functions
// ---------------------------------------------------------------------------

/// What a host function may return: any [`IntoVela`] value, or a `Result`
/// whose `Err` becomes a Vela runtime error (with the Vela stack trace of the
/// call site) carrying its message.
///
/// Error types: `String`, `&'static str` and [`Error`] (its message only, so an
/// [`ErrorKind::Interrupted`] error from a nested [`Vm::call`] still stops the
/// script as interrupted).
pub trait HostResult {
    /// The returned value, or the message of the Vela runtime error to raise.
    fn into_host_result(self, vm: &mut Vm) -> Result<Value, String>;
}

impl<T: IntoVela> HostResult for T {
    fn into_host_result(self, vm: &mut Vm) -> Result<Value, String> {
        Ok(self.into_vela(vm))
    }
}

impl<T: IntoVela> HostResult for Result<T, String> {
    fn into_host_result(self, vm: &mut Vm) -> Result<Value, String> {
        self.map(|x| x.into_vela(vm))
    }
}

impl<T: IntoVela> HostResult for Result<T, &'static str> {
    fn into_host_result(self, vm: &mut Vm) -> Result<Value, String> {
        self.map(|x| x.into_vela(vm)).map_err(str::to_owned)
    }
}

impl<T: IntoVela> HostResult for Result<T, Error> {
    fn into_host_result(self, vm: &mut Vm) -> Result<Value, String> {
        self.map(|x| x.into_vela(vm)).map_err(|e| e.message)
    }
}

/// A Rust closure usable as a Vela function: `Fn(A, B, ..) -> R` or
/// `Fn(&mut Vm, A, B, ..) -> R` with up to six [`FromVela`] arguments and an
/// `R:` [`HostResult`]. Implemented automatically; see [`Vm::register_fn`].
///
/// `Args` only tells the implementations apart: `(A, B)` for a closure of
/// `A, B`, `(WithVm, A, B)` for one that also takes the VM.
pub trait HostFn<Args>: 'static {
    /// The number of Vela arguments.
    const ARITY: u8;
    /// Converts the arguments, calls the closure and converts its result.
    /// `name` is the registered name, for error messages.
    fn invoke(&self, vm: &mut Vm, name: &str, args: &[Value]) -> Result<Value, String>;
}

/// Marks the [`HostFn`] implementations for closures whose first parameter is
/// `&mut Vm`.
pub enum WithVm {}

/// Converts argument `i` (0-based) of host function `name`.
fn arg<T: FromVela>(vm: &Vm, name: &str, args: &[Value], i: usize) -> Result<T, String> {
    T::from_vela(vm, args[i]).map_err(|e| format!("argument {} of `{name}`: {e}", i + 1))
}

macro_rules! host_fn {
    ($n:expr; $($a:ident $i:tt),*) => {
        impl<F, R, $($a,)*> HostFn<($($a,)*)> for F
        where
            F: Fn($($a),*) -> R + 'static,
            R: HostResult,
            $($a: FromVela,)*
        {
            const ARITY: u8 = $n;
            #[allow(unused_variables)]
            fn invoke(&self, vm: &mut Vm, name: &str, args: &[Value]) -> Result<Value, String> {
                if args.len() != $n {
                    return Err(wrong_count(name, $n, args.len()));
                }
                let r = self($(arg::<$a>(vm, name, args, $i)?),*);
                r.into_host_result(vm)
            }
        }

        impl<F, R, $($a,)*> HostFn<(WithVm, $($a,)*)> for F
        where
            F: Fn(&mut Vm, $($a),*) -> R + 'static,
            R: HostResult,
            $($a: FromVela,)*
        {
            const ARITY: u8 = $n;
            #[allow(unused_variables)]
            fn invoke(&self, vm: &mut Vm, name: &str, args: &[Value]) -> Result<Value, String> {
                if args.len() != $n {
                    return Err(wrong_count(name, $n, args.len()));
                }
                let r = self(vm, $(arg::<$a>(vm, name, args, $i)?),*);
                r.into_host_result(vm)
            }
        }
    };
}

host_fn!(0;);
host_fn!(1; A 0);
host_fn!(2; A 0, B 1);
host_fn!(3; A 0, B 1, C 2);
host_fn!(4; A 0, B 1, C 2, D 3);
host_fn!(5; A 0, B 1, C 2, D 3, E 4);
host_fn!(6; A 0, B 1, C 2, D 3, E 4, G 5);

/// The same message the interpreter gives for a native called with the wrong
/// number of arguments (it checks before calling; this covers direct calls).
fn wrong_count(name: &str, expected: usize, got: usize) -> String {
    format!("wrong number of arguments: `{name}` expects {expected}, got {got}")
}

// ---------------------------------------------------------------------------
// Calling Vela
// ---------------------------------------------------------------------------

/// An argument list for [`Vm::call`]: a tuple of up to eight [`IntoVela`]
/// values (`()` for none, `(x,)` for one), or a `Vec`/slice/array whose
/// elements are the arguments. To pass a single Array argument, wrap it in a
/// tuple: `(vec![1, 2],)`.
pub trait IntoArgs {
    /// Converts every argument.
    fn into_args(self, vm: &mut Vm) -> Vec<Value>;
}

macro_rules! tuple_args {
    ($($a:ident),*) => {
        impl<$($a: IntoVela),*> IntoArgs for ($($a,)*) {
            #[allow(non_snake_case, unused_variables)]
            fn into_args(self, vm: &mut Vm) -> Vec<Value> {
                let ($($a,)*) = self;
                vec![$($a.into_vela(vm)),*]
            }
        }
    };
}

tuple_args!();
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, G);
tuple_args!(A, B, C, D, E, G, H);
tuple_args!(A, B, C, D, E, G, H, I);

impl<T: IntoVela> IntoArgs for Vec<T> {
    fn into_args(self, vm: &mut Vm) -> Vec<Value> {
        self.into_iter().map(|x| x.into_vela(vm)).collect()
    }
}

impl<T: IntoVela + Clone> IntoArgs for &[T] {
    fn into_args(self, vm: &mut Vm) -> Vec<Value> {
        self.iter().map(|x| x.clone().into_vela(vm)).collect()
    }
}

impl<T: IntoVela, const N: usize> IntoArgs for [T; N] {
    fn into_args(self, vm: &mut Vm) -> Vec<Value> {
        self.into_iter().map(|x| x.into_vela(vm)).collect()
    }
}

/// What [`Vm::call`] can call: the name of a global (`&str`, `String`) or a
/// function [`Value`] (a Vela closure or a native, e.g. a callback the script
/// handed to a host function).
pub trait Callee {
    /// The function value and a name for error messages.
    fn resolve(self, vm: &Vm) -> Result<(Value, String), Error>;
}

impl Callee for &str {
    fn resolve(self, vm: &Vm) -> Result<(Value, String), Error> {
        let f = vm.lookup_global(self)?;
        Ok((f, self.to_owned()))
    }
}

impl Callee for &String {
    fn resolve(self, vm: &Vm) -> Result<(Value, String), Error> {
        self.as_str().resolve(vm)
    }
}

impl Callee for String {
    fn resolve(self, vm: &Vm) -> Result<(Value, String), Error> {
        let f = vm.lookup_global(&self)?;
        Ok((f, self))
    }
}

impl Callee for Value {
    fn resolve(self, vm: &Vm) -> Result<(Value, String), Error> {
        let name = match self {
            Value::Func(f) => f.get().proto.name.clone(),
            Value::Native(i) => vm.natives.get(i as usize).map_or_else(|| "<native>".to_owned(), |n| n.name.clone()),
            v => vm.type_name(v),
        };
        Ok((self, name))
    }
}

fn conversion_error(context: String, message: String) -> Error {
    Error::new(ErrorKind::Conversion, format!("{context}: {message}"))
}

// ---------------------------------------------------------------------------
// The typed methods on Vm
// ---------------------------------------------------------------------------

impl Vm {
    /// What Vela's `type(v)` returns: `"int"`, `"string"`, ... or the name of
    /// the value's struct.
    ///
    /// ```
    /// # use vela::{Config, Value, Vm};
    /// let mut vm = Vm::new(Config::default());
    /// vm.run_source("struct P { x }\nlet p = P { x: 1 }", "p.vela")?;
    /// assert_eq!(vm.type_name(vm.global("p").unwrap()), "P");
    /// assert_eq!(vm.type_name(Value::Float(1.0)), "float");
    /// # Ok::<(), vela::Error>(())
    /// ```
    pub fn type_name(&self, v: Value) -> String {
        match v {
            Value::Struct(s) => {
                self.structs.get(s.get().def as usize).map_or_else(|| "struct".to_owned(), |d| d.name.clone())
            }
            v => v.kind_name().to_owned(),
        }
    }

    /// A defined, initialised global, or the error Vela itself would give.
    fn lookup_global(&self, name: &str) -> Result<Value, Error> {
        match self.global(name) {
            Some(v) => Ok(v),
            None if self.env.global(name).is_some() => {
                Err(Error::new(ErrorKind::Runtime, format!("uninitialized global {name}")))
            }
            None => Err(Error::new(ErrorKind::Runtime, format!("undefined global `{name}`"))),
        }
    }

    /// Reads global `name` as a `T`.
    ///
    /// Errors: [`ErrorKind::Runtime`] when the global does not exist or its
    /// `let` has not run yet; [`ErrorKind::Conversion`] when its value is not a
    /// `T`.
    ///
    /// ```
    /// use vela::{Config, ErrorKind, Vm};
    ///
    /// let mut vm = Vm::new(Config::default());
    /// vm.run_source(r#"let name = "Ada"; let scores = [90, 85]; let none = nil"#, "g.vela")?;
    /// assert_eq!(vm.get::<String>("name")?, "Ada");
    /// assert_eq!(vm.get::<Vec<i64>>("scores")?, vec![90, 85]);
    /// assert_eq!(vm.get::<Option<i64>>("none")?, None);
    ///
    /// let err = vm.get::<i64>("name").unwrap_err();
    /// assert_eq!(err.kind, ErrorKind::Conversion);
    /// assert_eq!(err.message, "global `name`: expected int, found string");
    /// assert_eq!(vm.get::<i64>("nope").unwrap_err().kind, ErrorKind::Runtime);
    /// # Ok::<(), vela::Error>(())
    /// ```
    pub fn get<T: FromVela>(&self, name: &str) -> Result<T, Error> {
        let v = self.lookup_global(name)?;
        T::from_vela(self, v).map_err(|e| conversion_error(format!("global `{name}`"), e))
    }

    /// Sets global `name` to `value`, creating it if needed. Scripts compiled
    /// afterwards can use it like any global (and assign to it).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use vela::{Config, Vm};
    ///
    /// let mut vm = Vm::new(Config::default());
    /// vm.set("limit", 10);
    /// vm.set("user", "ada");
    /// vm.set("config", BTreeMap::from([("debug", true)]));
    /// vm.run_source(r#"let msg = "${user} ${limit * 2} ${config["debug"]}""#, "s.vela")?;
    /// assert_eq!(vm.get::<String>("msg")?, "ada 20 true");
    /// # Ok::<(), vela::Error>(())
    /// ```
    pub fn set(&mut self, name: &str, value: impl IntoVela) {
        let v = value.into_vela(self);
        self.set_global(name, v);
    }

    /// Calls a Vela function with Rust arguments and converts its result.
    ///
    /// `f` is a global's name or a function [`Value`] (see [`Callee`]); `args`
    /// is a tuple such as `(1, "two", 3.0)` or a `Vec`/slice (see
    /// [`IntoArgs`]). Use `call::<()>` to ignore the result, `call::<Value>` to
    /// keep it unconverted.
    ///
    /// Errors: whatever the call raises (kind [`ErrorKind::Runtime`] or
    /// [`ErrorKind::Interrupted`], with location and stack trace); a missing
    /// global is [`ErrorKind::Runtime`]; a result that is not a `T` is
    /// [`ErrorKind::Conversion`].
    ///
    /// ```
    /// use vela::{Config, ErrorKind, Vm};
    ///
    /// let mut vm = Vm::new(Config::default());
    /// vm.run_source(
    ///     r#"
    /// fn greet(name, times) { return "hi ${name}! " + str(times) }
    /// fn make_adder(n) { return fn(x) { return x + n } }
    /// "#,
    ///     "calls.vela",
    /// )?;
    /// assert_eq!(vm.call::<String>("greet", ("Bo", 2))?, "hi Bo! 2");
    ///
    /// // A function value returned by Vela can be called too.
    /// let add5: vela::Value = vm.call("make_adder", (5,))?;
    /// assert_eq!(vm.call::<i64>(add5, (10,))?, 15);
    ///
    /// let err = vm.call::<bool>("greet", ("Bo", 2)).unwrap_err();
    /// assert_eq!(err.kind, ErrorKind::Conversion);
    /// # Ok::<(), vela::Error>(())
    /// ```
    pub fn call<T: FromVela>(&mut self, f: impl Callee, args: impl IntoArgs) -> Result<T, Error> {
        let (f, name) = f.resolve(self)?;
        let args = args.into_args(self);
        let r = self.call_value(f, &args)?;
        T::from_vela(self, r).map_err(|e| conversion_error(format!("return value of `{name}`"), e))
    }

    /// Registers a Rust closure as the global Vela function `name`.
    ///
    /// The closure takes up to six arguments of [`FromVela`] types, optionally
    /// preceded by `&mut Vm` (to call back into Vela or allocate), and returns
    /// an [`IntoVela`] value or a `Result<T, String>` (see [`HostResult`]) whose
    /// error becomes a Vela runtime error. Vela checks the argument count
    /// (`wrong number of arguments`) and each conversion
    /// (``argument 1 of `name`: expected int, found string``). Registering a name
    /// again replaces the function for code compiled afterwards.
    ///
    /// Annotate every closure parameter (`|a: i64, s: String|`): the types
    /// select the conversions. An `Option<T>` parameter accepts `nil` but the
    /// argument must still be passed. [`Value`] arguments stay valid for the
    /// whole call; a `Value` the closure itself allocates (e.g. with
    /// [`Vm::new_string`]) is not rooted, so return it rather than holding it
    /// across a call back into Vela.
    ///
    /// ```
    /// use vela::{Config, ErrorKind, Value, Vm};
    ///
    /// let mut vm = Vm::new(Config::default());
    /// vm.register_fn("add", |a: i64, b: i64| a + b);
    /// vm.register_fn("shout", |s: String| s.to_uppercase());
    /// vm.register_fn("sum", |xs: Vec<f64>| xs.iter().sum::<f64>());
    /// vm.register_fn("checked_div", |a: i64, b: i64| -> Result<i64, String> {
    ///     a.checked_div(b).ok_or_else(|| "division by zero".to_string())
    /// });
    /// // With the VM: call a Vela callback.
    /// vm.register_fn("twice", |vm: &mut Vm, f: Value, x: i64| -> Result<i64, vela::Error> {
    ///     let once: i64 = vm.call(f, (x,))?;
    ///     vm.call(f, (once,))
    /// });
    ///
    /// vm.run_source(
    ///     r#"
    /// let a = add(2, 3)
    /// let b = shout("hey")
    /// let c = sum([1, 2.5])
    /// let d = twice(fn(x) { return x * 10 }, 2)
    /// "#,
    ///     "host.vela",
    /// )?;
    /// assert_eq!(vm.get::<i64>("a")?, 5);
    /// assert_eq!(vm.get::<String>("b")?, "HEY");
    /// assert_eq!(vm.get::<f64>("c")?, 3.5);
    /// assert_eq!(vm.get::<i64>("d")?, 200);
    ///
    /// let err = vm.run_source("add(1, \"x\")", "bad.vela").unwrap_err();
    /// assert_eq!(err.kind, ErrorKind::Runtime);
    /// assert_eq!(err.message, "argument 2 of `add`: expected int, found string");
    /// assert_eq!(err.trace[0].line, 1);
    ///
    /// let err = vm.run_source("checked_div(1, 0)", "div.vela").unwrap_err();
    /// assert_eq!(err.message, "division by zero");
    /// # Ok::<(), vela::Error>(())
    /// ```
    pub fn register_fn<Args, F: HostFn<Args>>(&mut self, name: &str, f: F) {
        let fname: Rc<str> = name.into();
        let native: NativeFn = Rc::new(move |vm: &mut Vm, args: &[Value]| f.invoke(vm, &fname, args));
        self.register_native(name, F::ARITY, F::ARITY, native, GlobalKind::Host);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::{BTreeMap, HashMap};
    use std::rc::Rc;

    use super::*;
    use crate::Config;

    fn vm() -> Vm {
        let mut vm = Vm::new(Config { stack_slots: 1 << 14, ..Config::default() });
        vm.set_output(Box::new(std::io::sink()));
        vm
    }

    /// A VM whose `print` output the test can read.
    fn vm_with_output() -> (Vm, Rc<RefCell<Vec<u8>>>) {
        struct Shared(Rc<RefCell<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.borrow_mut().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Rc::new(RefCell::new(Vec::new()));
        let mut vm = vm();
        vm.set_output(Box::new(Shared(buf.clone())));
        (vm, buf)
    }

    #[test]
    fn scalar_round_trips() {
        let mut vm = vm();
        vm.set("i", 42i64);
        vm.set("small", 7u8);
        vm.set("f", 1.5);
        vm.set("b", true);
        vm.set("s", "text");
        vm.set("owned", String::from("owned"));
        vm.set("n", ());
        vm.set("some", Some(3));
        vm.set("none", None::<i64>);
        assert_eq!(vm.get::<i64>("i").unwrap(), 42);
        assert_eq!(vm.get::<i32>("i").unwrap(), 42);
        assert_eq!(vm.get::<u8>("small").unwrap(), 7);
        assert_eq!(vm.get::<f64>("f").unwrap(), 1.5);
        assert_eq!(vm.get::<f64>("i").unwrap(), 42.0, "f64 accepts an Int");
        assert!(vm.get::<bool>("b").unwrap());
        assert_eq!(vm.get::<String>("s").unwrap(), "text");
        assert_eq!(vm.get::<String>("owned").unwrap(), "owned");
        vm.get::<()>("n").unwrap();
        assert_eq!(vm.get::<Option<i64>>("some").unwrap(), Some(3));
        assert_eq!(vm.get::<Option<i64>>("none").unwrap(), None);
        assert!(matches!(vm.get::<Value>("i").unwrap(), Value::Int(42)));
    }

    #[test]
    fn conversion_errors() {
        let mut vm = vm();
        vm.set("i", 300);
        vm.set("neg", -1);
        vm.set("s", "x");
        vm.set("f", 2.5);
        let e = vm.get::<u8>("i").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conversion);
        assert_eq!(e.message, "global `i`: int 300 out of range for u8");
        assert_eq!(vm.get::<usize>("neg").unwrap_err().message, "global `neg`: int -1 out of range for usize");
        assert_eq!(vm.get::<i64>("f").unwrap_err().message, "global `f`: expected int, found float");
        assert_eq!(vm.get::<bool>("s").unwrap_err().message, "global `s`: expected bool, found string");
        assert_eq!(vm.get::<Vec<i64>>("s").unwrap_err().message, "global `s`: expected array, found string");
        assert_eq!(vm.get::<Option<i64>>("s").unwrap_err().message, "global `s`: expected int, found string");
        let e = vm.get::<i64>("missing").unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Runtime, "undefined global `missing`"));
    }

    #[test]
    fn uninitialized_global_is_an_error() {
        let mut vm = vm();
        let e = vm.run_source("fn f() { return later }\nlet early = f()\nlet later = 1", "u.vela").unwrap_err();
        assert!(e.message.contains("uninitialized global later"), "{}", e.message);
        let e = vm.get::<i64>("later").unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Runtime, "uninitialized global later"));
    }

    #[test]
    fn collections() {
        let mut vm = vm();
        vm.set("xs", vec![1, 2, 3]);
        vm.set("nested", vec![vec!["a"], vec![], vec!["b", "c"]]);
        vm.set("slice", &[1.5, 2.5][..]);
        vm.set("opt", vec![Some(1), None]);
        vm.set("m", BTreeMap::from([("b", 2), ("a", 1)]));
        vm.set("hm", HashMap::from([(1, "one")]));
        vm.run_source("xs.push(4)\nlet total = 0\nfor x in xs { total += x }\nm[\"c\"] = 3", "c.vela").unwrap();
        assert_eq!(vm.get::<Vec<i64>>("xs").unwrap(), vec![1, 2, 3, 4]);
        assert_eq!(vm.get::<i64>("total").unwrap(), 10);
        assert_eq!(vm.get::<Vec<Vec<String>>>("nested").unwrap(), vec![vec!["a"], vec![], vec!["b", "c"]]);
        assert_eq!(vm.get::<Vec<f64>>("slice").unwrap(), vec![1.5, 2.5]);
        assert_eq!(vm.get::<Vec<Option<i64>>>("opt").unwrap(), vec![Some(1), None]);
        let m = vm.get::<BTreeMap<String, i64>>("m").unwrap();
        assert_eq!(m, BTreeMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]));
        assert_eq!(vm.display(vm.global("m").unwrap()), r#"{"a": 1, "b": 2, "c": 3}"#);
        let hm = vm.get::<HashMap<i64, String>>("hm").unwrap();
        assert_eq!(hm, HashMap::from([(1, "one".to_string())]));

        vm.run_source(r#"let bad = [1, "two"]; let badmap = {"k": true}"#, "b.vela").unwrap();
        assert_eq!(
            vm.get::<Vec<i64>>("bad").unwrap_err().message,
            "global `bad`: at index 1: expected int, found string"
        );
        assert_eq!(
            vm.get::<HashMap<String, i64>>("badmap").unwrap_err().message,
            "global `badmap`: at key \"k\": expected int, found bool"
        );
        assert_eq!(
            vm.get::<HashMap<i64, bool>>("badmap").unwrap_err().message,
            "global `badmap`: key \"k\": expected int, found string"
        );
    }

    #[test]
    fn struct_type_names_in_errors() {
        let mut vm = vm();
        vm.run_source("struct Point { x, y }\nlet p = Point { x: 1, y: 2 }", "p.vela").unwrap();
        assert_eq!(vm.get::<i64>("p").unwrap_err().message, "global `p`: expected int, found Point");
    }

    #[test]
    fn host_fn_called_from_vela() {
        let (mut vm, out) = vm_with_output();
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        vm.register_fn("add", move |a: i64, b: f64| {
            c.set(c.get() + 1);
            a as f64 + b
        });
        vm.register_fn("answer", || 42);
        vm.register_fn("greet", |name: String, excited: bool| {
            format!("hello {name}{}", if excited { "!" } else { "" })
        });
        vm.register_fn("first", |xs: Vec<String>| xs.into_iter().next());
        vm.register_fn("four", |a: i64, b: i64, c: i64, d: i64| vec![a, b, c, d]);
        vm.register_fn("six", |a: i64, b: i64, c: i64, d: i64, e: i64, f: i64| a + b + c + d + e + f);
        vm.register_fn("nothing", |_: Value| ());
        vm.run_source(
            r#"
print(add(1, 2.5), add(1, 2))
print(answer(), greet("vela", true), greet("x", false))
print(first(["a", "b"]), first([]))
print(four(1, 2, 3, 4), six(1, 2, 3, 4, 5, 6), nothing(nil))
"#,
            "host.vela",
        )
        .unwrap();
        assert_eq!(calls.get(), 2);
        assert_eq!(
            String::from_utf8(out.borrow().clone()).unwrap(),
            "3.5 3.0\n42 hello vela! hello x\na nil\n[1, 2, 3, 4] 21 nil\n"
        );
    }

    #[test]
    fn host_fn_argument_errors() {
        let mut vm = vm();
        vm.register_fn("add", |a: i64, b: i64| a + b);
        vm.register_fn("len_all", |xs: Vec<String>| xs.len() as i64);
        let e = vm.run_source("fn f() { return add(1, \"two\") }\nf()", "args.vela").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Runtime);
        assert_eq!(e.message, "argument 2 of `add`: expected int, found string");
        assert_eq!(e.trace.len(), 2);
        assert_eq!((e.trace[0].function.as_str(), e.trace[0].line), ("f", 1));
        assert_eq!(e.trace[1].line, 2);

        let e = vm.run_source("add(1)", "args.vela").unwrap_err();
        assert!(e.message.contains("wrong number of arguments"), "{}", e.message);
        assert!(e.message.contains("`add` expects 2, got 1"), "{}", e.message);

        let e = vm.run_source("len_all([\"a\", 1])", "args.vela").unwrap_err();
        assert_eq!(e.message, "argument 1 of `len_all`: at index 1: expected string, found int");

        // Calling the registered function directly from the host goes through the same checks.
        let e = vm.call::<i64>("add", (1, 2, 3)).unwrap_err();
        assert!(e.message.contains("wrong number of arguments"), "{}", e.message);
        assert_eq!(vm.call::<i64>("add", (1, 2)).unwrap(), 3);
    }

    #[test]
    fn host_fn_errors_become_vela_errors() {
        let mut vm = vm();
        vm.register_fn("fail", |msg: String| -> Result<(), String> { Err(msg) });
        vm.register_fn("fail_static", || -> Result<i64, &'static str> { Err("static failure") });
        let e = vm.run_source("let x = 1\nfail(\"custom ${x}\")", "fail.vela").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Runtime);
        assert_eq!(e.message, "custom 1");
        assert_eq!(e.location.as_ref().map(|l| (l.file.as_str(), l.line)), Some(("fail.vela", 2)));
        assert_eq!(vm.run_source("fail_static()", "f.vela").unwrap_err().message, "static failure");
    }

    #[test]
    fn host_fn_with_vm_calls_back() {
        let mut vm = vm();
        vm.register_fn("map_ints", |vm: &mut Vm, xs: Vec<i64>, f: Value| -> Result<Vec<i64>, Error> {
            xs.into_iter().map(|x| vm.call::<i64>(f, (x,))).collect()
        });
        vm.register_fn("heap_bytes", |vm: &mut Vm| vm.heap_stats().bytes as i64);
        vm.register_fn("make_list", |vm: &mut Vm, n: i64| {
            let items: Vec<Value> = (0..n).map(|i| vm.new_string(&format!("item{i}"))).collect();
            vm.new_array(items)
        });
        vm.run_source(
            "let k = 3\nlet ys = map_ints([1, 2, 3], fn(x) { return x * k })\nlet l = make_list(2)",
            "cb.vela",
        )
        .unwrap();
        assert_eq!(vm.get::<Vec<i64>>("ys").unwrap(), vec![3, 6, 9]);
        assert_eq!(vm.get::<Vec<String>>("l").unwrap(), vec!["item0", "item1"]);
        assert!(vm.call::<i64>("heap_bytes", ()).unwrap() > 0);

        // An error in the callback surfaces from the outer script.
        let e = vm.run_source("map_ints([1], fn(x) { return x / 0 })", "cb2.vela").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Runtime);
        assert!(e.message.contains("division by zero"), "{}", e.message);
    }

    #[test]
    fn host_fn_values_survive_gc_during_callback() {
        // A host fn receives strings, calls back into Vela code that allocates
        // heavily (forcing collections), then reads its arguments again.
        let mut vm = vm();
        vm.register_fn("hold", |vm: &mut Vm, s: Value, f: Value| -> Result<String, Error> {
            vm.call::<()>(f, ())?;
            vm.call::<String>("id", (s,))
        });
        vm.run_source(
            r#"
fn id(x) { return x }
fn churn() { let a = []; for i in 0..600000 { a.push("s${i}") } }
let r = hold("kept " + "alive", churn)
"#,
            "gc.vela",
        )
        .unwrap();
        assert!(vm.heap_stats().collections > 0);
        assert_eq!(vm.get::<String>("r").unwrap(), "kept alive");
    }

    #[test]
    fn host_called_native_keeps_its_arguments_alive() {
        // The host calls a native directly (no Vela frame holds the arguments)
        // and the native re-enters the VM, which collects garbage.
        let mut vm = vm();
        vm.register_fn("hold", |vm: &mut Vm, s: Value, f: Value| -> Result<String, Error> {
            vm.call::<()>(f, ())?;
            String::from_vela(vm, s).map_err(|e| Error::new(ErrorKind::Conversion, e))
        });
        vm.run_source("fn churn() { let a = []; for i in 0..600000 { a.push(\"s${i}\") } }", "gc.vela").unwrap();
        let before = vm.heap_stats().collections;
        let text = format!("{}{}", "host ", "string");
        let churn = vm.global("churn").unwrap();
        assert_eq!(vm.call::<String>("hold", (text.as_str(), churn)).unwrap(), "host string");
        assert!(vm.heap_stats().collections > before);
    }

    #[test]
    fn call_by_name_and_value() {
        let mut vm = vm();
        vm.run_source(
            "fn add(a, b) { return a + b }\nfn adder(n) { return fn(x) { return x + n } }\nfn nothing() {}",
            "call.vela",
        )
        .unwrap();
        assert_eq!(vm.call::<i64>("add", (2, 3)).unwrap(), 5);
        assert_eq!(vm.call::<f64>("add", (2, 0.5)).unwrap(), 2.5);
        assert_eq!(vm.call::<String>("add", ("a", "b")).unwrap(), "ab");
        assert_eq!(vm.call::<i64>("add", vec![1, 2]).unwrap(), 3);
        assert_eq!(vm.call::<i64>("add", [4, 5]).unwrap(), 9);
        assert_eq!(vm.call::<i64>(String::from("add"), &[Value::Int(1), Value::Int(1)][..]).unwrap(), 2);
        let f: Value = vm.call("adder", (10,)).unwrap();
        assert_eq!(vm.call::<i64>(f, (1,)).unwrap(), 11);
        vm.call::<()>("nothing", ()).unwrap();
        assert_eq!(vm.call::<Option<i64>>("nothing", ()).unwrap(), None);
        let e = vm.call::<i64>("add", (1, 2, 3)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Runtime);
        assert!(e.message.contains("wrong number of arguments"), "{}", e.message);
        let e = vm.call::<bool>("add", (1, 2)).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::Conversion, "return value of `add`: expected bool, found int")
        );
        let e = vm.call::<i64>("nope", ()).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Runtime, "undefined global `nope`"));
        let e = vm.call::<i64>(Value::Int(3), ()).unwrap_err();
        assert!(e.message.contains("cannot call int"), "{}", e.message);
        // Builtins are callable by name too.
        assert_eq!(vm.call::<i64>("max", (3, 9, 4)).unwrap(), 9);
    }

    #[test]
    fn runtime_error_carries_trace_and_location() {
        let mut vm = vm();
        vm.run_source("fn inner(xs) {\n  return xs[5]\n}\nfn outer() {\n  return inner([1])\n}", "trace.vela").unwrap();
        let e = vm.call::<i64>("outer", ()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Runtime);
        assert!(e.message.contains("index 5 out of bounds for length 1"), "{}", e.message);
        let frames: Vec<(&str, &str, u32)> =
            e.trace.iter().map(|t| (t.function.as_str(), t.file.as_str(), t.line)).collect();
        assert_eq!(frames, vec![("inner", "trace.vela", 2), ("outer", "trace.vela", 5)]);
        let loc = e.location.clone().unwrap();
        assert_eq!((loc.file.as_str(), loc.line), ("trace.vela", 2));
        let shown = e.to_string();
        assert!(shown.contains("at inner (trace.vela:2)"), "{shown}");
        // The VM is usable after an error.
        assert_eq!(vm.call::<i64>("inner", (vec![1, 2, 3, 4, 5, 6],)).unwrap(), 6);
    }

    #[test]
    fn compile_error_carries_line_and_column() {
        let mut vm = vm();
        let e = vm.run_source("let a = 1\nlet b = a +* 2\n", "bad.vela").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Compile);
        let loc = e.location.clone().unwrap();
        assert_eq!((loc.file.as_str(), loc.line, loc.column), ("bad.vela", 2, 12));
        assert!(e.trace.is_empty());
        assert!(e.rendered.as_deref().unwrap_or("").contains("bad.vela:2:12"), "{:?}", e.rendered);

        let e = vm.run_source("print(1)\n  undefined_name", "names.vela").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Compile);
        let loc = e.location.unwrap();
        assert_eq!((loc.line, loc.column), (2, 3));
    }

    #[test]
    fn instruction_budget_stops_runaway_loop() {
        let mut vm = Vm::new(Config { stack_slots: 1 << 14, instruction_budget: Some(50_000), ..Config::default() });
        let e = vm.run_source("let i = 0\nwhile true { i += 1 }", "spin.vela").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Interrupted);
        assert!(e.message.contains("instruction budget"), "{}", e.message);
        assert_eq!(e.trace[0].line, 2);
        let i = vm.get::<i64>("i").unwrap();
        assert!(i > 1000 && i < 50_000, "{i}");

        // Recursion without loops is stopped at function entry.
        vm.set_instruction_budget(Some(vm.stats().instructions + 10_000));
        vm.run_source("fn f(n) { return f(n + 1) + 0 }", "rec.vela").unwrap();
        let e = vm.call::<i64>("f", (0,)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Interrupted);

        // A fresh allowance lets the VM run again.
        vm.set_instruction_budget(Some(vm.stats().instructions + 10_000));
        assert_eq!(vm.call::<i64>("max", (1, 2)).unwrap(), 2);
        vm.set_instruction_budget(None);
        vm.run_source("let j = 0\nwhile j < 100000 { j += 1 }", "ok.vela").unwrap();
    }

    #[test]
    fn interrupt_callback_stops_script() {
        let mut vm = vm();
        let polls = Rc::new(Cell::new(0u32));
        let p = polls.clone();
        vm.set_interrupt(move || {
            p.set(p.get() + 1);
            p.get() >= 100
        });
        let e = vm.run_source("fn spin() { loop {} }\nspin()", "int.vela").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Interrupted);
        assert!(e.message.contains("interrupted"), "{}", e.message);
        assert_eq!(polls.get(), 100);
        assert_eq!(e.trace.iter().map(|t| t.function.as_str()).collect::<Vec<_>>(), vec!["spin", "<script>"]);
    }

    #[test]
    fn interrupt_from_another_thread() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let mut vm = vm();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        vm.set_interrupt(move || flag.load(Ordering::Relaxed));
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            stop.store(true, Ordering::Relaxed);
        });
        let e = vm.run_source("while true {}", "thread.vela").unwrap_err();
        t.join().unwrap();
        assert_eq!(e.kind, ErrorKind::Interrupted);
    }

    #[test]
    fn interrupt_inside_host_callback_keeps_its_kind() {
        let mut vm = Vm::new(Config { stack_slots: 1 << 14, instruction_budget: Some(20_000), ..Config::default() });
        vm.register_fn("run", |vm: &mut Vm, f: Value| -> Result<(), Error> { vm.call(f, ()) });
        let e = vm.run_source("run(fn() { while true {} })", "nested.vela").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Interrupted, "{}", e.message);
    }

    #[test]
    fn memory_limit() {
        let mut vm = vm();
        vm.set_memory_limit(2 << 20);
        let e = vm.run_source("let xs = []\nwhile true { xs.push(\"some text ${len(xs)}\") }", "mem.vela").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Runtime);
        assert!(e.message.contains("memory limit exceeded"), "{}", e.message);
        assert_eq!(e.location.map(|l| l.line), Some(2));

        // From the configuration, and for garbage that is freed the VM keeps going.
        let mut vm = Vm::new(Config { stack_slots: 1 << 14, mem_limit: 8 << 20, ..Config::default() });
        vm.run_source("for i in 0..100000 { let s = \"temporary ${i}\" }", "ok.vela").unwrap();
        let e = vm.run_source("let big = array(10000000, 0)", "big.vela").unwrap_err();
        assert!(e.message.contains("memory limit exceeded"), "{}", e.message);
    }

    #[test]
    fn run_file_and_io_error() {
        let dir = std::env::temp_dir().join(format!("vela-embed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("prog.vela");
        std::fs::write(&path, "fn double(x) { return x * 2 }\nlet ready = true\n").unwrap();
        let mut vm = vm();
        vm.run_file(&path).unwrap();
        assert!(vm.get::<bool>("ready").unwrap());
        assert_eq!(vm.call::<i64>("double", (21,)).unwrap(), 42);
        let e = vm.run_file(dir.join("missing.vela")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Io);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn set_then_assign_from_vela() {
        let mut vm = vm();
        vm.set("counter", 0);
        vm.run_source("counter += 5", "a.vela").unwrap();
        vm.run_source("counter += 5", "b.vela").unwrap();
        assert_eq!(vm.get::<i64>("counter").unwrap(), 10);
        vm.set("counter", "reset");
        assert_eq!(vm.get::<String>("counter").unwrap(), "reset");
    }

    #[test]
    fn registering_again_replaces() {
        let mut vm = vm();
        vm.register_fn("v", || 1);
        assert_eq!(vm.call::<i64>("v", ()).unwrap(), 1);
        vm.register_fn("v", || 2);
        vm.run_source("let x = v()", "r.vela").unwrap();
        assert_eq!(vm.get::<i64>("x").unwrap(), 2);
    }
}
