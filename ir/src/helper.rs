//! Runtime helpers: the operations a trace leaves to Rust code in the `vela`
//! runtime (allocation, strings, maps). A `call` or `callg` instruction names
//! one in its `imm`; this table says what each takes and gives, so the
//! printer, parser, verifier and passes treat every helper alike, and the
//! back end knows how to pass its arguments. The IR knows only the helper's
//! number and signature; what it does is the runtime's business.
//!
//! Every helper call counts as a store to all heap memory: passes never
//! remove, merge or reorder one, and no load is reused across it (a helper
//! may allocate, grow an array or insert into a map). A helper that can fail
//! (`can_fail`) is called only through `callg`, a guard: it reports failure
//! without having done anything, and the trace leaves through the snapshot
//! taken before the call, so the interpreter redoes the operation and raises
//! its error.

use crate::types::Type;

/// One argument of a helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// A value of this IR type (`val`: a boxed value, two words).
    T(Type),
    /// Any number of boxed values: one `val`, or a `carg` chain of them
    /// (passed as a pointer to the values laid out in order, and their count).
    Args,
}

/// The helpers, by number (`Inst::imm` of a `call`/`callg`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Helper {
    /// Whether the heap wants a collection (`Heap::should_collect`).
    GcWanted,
    /// `m[k]`; fails when the key is missing.
    MapGet,
    /// `m.get(k, default)`.
    MapGetOr,
    /// `m.has(k)`.
    MapHas,
    /// `m[k] = v`.
    MapSet,
    /// `len(m)`.
    MapLen,
    /// `m.remove(k)`: the value removed, or nil.
    MapRemove,
    /// The key of map `m`'s entry number `i` in insertion order (`for k in
    /// m`), or nil past the end.
    MapKeyAt,
    /// `{}`.
    MapNew,
    /// An empty array with room for `n` elements (array literals).
    ArrayNew,
    /// `array(n, v)`; fails on a negative or too large `n`.
    ArrayFill,
    /// `a.push(v)` (also the elements of an array literal).
    ArrayPush,
    /// `a.join(sep)`; fails when the text would pass the memory limit.
    ArrayJoin,
    /// A new instance of struct definition `def`, all fields nil.
    StructNew,
    /// The concatenated texts of the values (`"a${x}b"`, `str(x)`); fails
    /// when the text would pass the memory limit.
    Concat,
    /// `s + t` for two strings; fails when the result is too big.
    StrAdd,
    /// `s.contains(t)` for two strings.
    StrContains,
    /// `"${x:.N}"`: number `x` (int or float) as text with `N` decimals;
    /// fails on anything but a number.
    FmtPrec,
    /// `s.slice(a, b)`; fails out of bounds or off a character boundary.
    StrSlice,
    /// `s.split(sep)`; fails on an empty separator or past the memory limit.
    StrSplit,
    /// Built-in method number `id` of the first value, with the others as
    /// its arguments (array `pop`, `insert`, `remove`, `slice`; map `keys`,
    /// `values`); fails where the method raises an error, having done
    /// nothing.
    Method,
    /// A new cell holding the value (a local some closure captures).
    CellNew,
    /// A new closure of nested function number `p` of closure `f`'s
    /// prototype over the cells listed, in its upvalue order (a closure
    /// without upvalues gets one ignored value).
    ClosureNew,
    /// Whether two closures are of the same function prototype.
    SameProto,
}

impl Helper {
    pub const ALL: &'static [Helper] = &[
        Helper::GcWanted,
        Helper::MapGet,
        Helper::MapGetOr,
        Helper::MapHas,
        Helper::MapSet,
        Helper::MapLen,
        Helper::MapRemove,
        Helper::MapKeyAt,
        Helper::MapNew,
        Helper::ArrayNew,
        Helper::ArrayFill,
        Helper::ArrayPush,
        Helper::ArrayJoin,
        Helper::StructNew,
        Helper::Concat,
        Helper::StrAdd,
        Helper::StrContains,
        Helper::FmtPrec,
        Helper::StrSlice,
        Helper::StrSplit,
        Helper::Method,
        Helper::CellNew,
        Helper::ClosureNew,
        Helper::SameProto,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Helper::GcWanted => "gc_wanted",
            Helper::MapGet => "map_get",
            Helper::MapGetOr => "map_get_or",
            Helper::MapHas => "map_has",
            Helper::MapSet => "map_set",
            Helper::MapLen => "map_len",
            Helper::MapRemove => "map_remove",
            Helper::MapKeyAt => "map_key_at",
            Helper::MapNew => "map_new",
            Helper::ArrayNew => "array_new",
            Helper::ArrayFill => "array_fill",
            Helper::ArrayPush => "array_push",
            Helper::ArrayJoin => "array_join",
            Helper::StructNew => "struct_new",
            Helper::Concat => "concat",
            Helper::StrAdd => "str_add",
            Helper::StrContains => "str_contains",
            Helper::FmtPrec => "fmt_prec",
            Helper::StrSlice => "str_slice",
            Helper::StrSplit => "str_split",
            Helper::Method => "method",
            Helper::CellNew => "cell_new",
            Helper::ClosureNew => "closure_new",
            Helper::SameProto => "same_proto",
        }
    }

    pub fn from_name(s: &str) -> Option<Helper> {
        Helper::ALL.iter().copied().find(|h| h.name() == s)
    }

    /// The helper numbered `imm`, if any.
    pub fn from_imm(imm: i64) -> Option<Helper> {
        usize::try_from(imm).ok().and_then(|i| Helper::ALL.get(i)).copied()
    }

    pub fn params(self) -> &'static [Param] {
        use Param::{Args, T};
        use Type::*;
        match self {
            Helper::GcWanted | Helper::MapNew => &[],
            Helper::MapGet | Helper::MapHas | Helper::MapRemove => &[T(Map), T(Value)],
            Helper::MapGetOr | Helper::MapSet => &[T(Map), T(Value), T(Value)],
            Helper::MapLen => &[T(Map)],
            Helper::MapKeyAt => &[T(Map), T(Int)],
            Helper::ArrayNew | Helper::StructNew => &[T(Int)],
            Helper::ArrayFill => &[T(Int), T(Value)],
            Helper::ArrayPush => &[T(Array), T(Value)],
            Helper::ArrayJoin => &[T(Array), T(Str)],
            Helper::Concat => &[Args],
            Helper::Method => &[Args, T(Int)],
            Helper::ClosureNew => &[Args, T(Func), T(Int)],
            Helper::CellNew => &[T(Value)],
            Helper::SameProto => &[T(Func), T(Func)],
            Helper::StrAdd | Helper::StrContains | Helper::StrSplit => &[T(Str), T(Str)],
            Helper::StrSlice => &[T(Str), T(Int), T(Int)],
            Helper::FmtPrec => &[T(Value), T(Int)],
        }
    }

    /// The result type (`Void` for none).
    pub fn result(self) -> Type {
        match self {
            Helper::GcWanted | Helper::MapHas | Helper::StrContains | Helper::SameProto => Type::Bool,
            Helper::MapGet | Helper::MapGetOr | Helper::MapRemove | Helper::MapKeyAt | Helper::Method => Type::Value,
            Helper::MapSet | Helper::ArrayPush => Type::Void,
            Helper::MapLen => Type::Int,
            Helper::MapNew => Type::Map,
            Helper::ArrayNew | Helper::ArrayFill => Type::Array,
            Helper::StructNew => Type::Struct,
            Helper::ArrayJoin | Helper::Concat | Helper::StrAdd | Helper::FmtPrec | Helper::StrSlice => Type::Str,
            Helper::StrSplit => Type::Array,
            Helper::CellNew => Type::Cell,
            Helper::ClosureNew => Type::Func,
        }
    }

    /// Whether the helper may fail (then it is called through `callg`).
    /// A failing helper has done nothing; its result says so: a null
    /// pointer, or a value whose tag is no value kind.
    pub fn can_fail(self) -> bool {
        matches!(
            self,
            Helper::MapGet
                | Helper::ArrayFill
                | Helper::ArrayJoin
                | Helper::Concat
                | Helper::StrAdd
                | Helper::FmtPrec
                | Helper::StrSlice
                | Helper::StrSplit
                | Helper::Method
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_helper_once_in_order() {
        for (i, h) in Helper::ALL.iter().enumerate() {
            assert_eq!(*h as usize, i, "{h:?}");
            assert_eq!(Helper::from_name(h.name()), Some(*h));
            assert_eq!(Helper::from_imm(i as i64), Some(*h));
            let fails = h.can_fail();
            assert!(!fails || h.result() != Type::Void && h.result() != Type::Bool, "{h:?} cannot report failure");
        }
        assert_eq!(Helper::from_imm(Helper::ALL.len() as i64), None);
        assert_eq!(Helper::from_imm(-1), None);
    }
}
