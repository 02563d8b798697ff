//! The types of trace IR values. A concrete type's number equals the runtime
//! value tag of that kind (the `vela` crate asserts this), so boxing a value
//! for an exit is "write the type number as the tag".

use std::fmt;

#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Nil = 0,
    Bool = 1,
    Int = 2,
    Float = 3,
    Str = 4,
    Array = 5,
    Map = 6,
    Func = 7,
    Native = 8,
    Struct = 9,
    Cell = 10,
    /// A boxed value of unknown kind: the 16-byte tag + payload pair.
    Value = 12,
    /// No value (guards, stores, the loop marker).
    Void = 13,
}

impl Type {
    /// The value tag of a concrete type.
    pub fn tag(self) -> Option<u8> {
        match self {
            Type::Value | Type::Void => None,
            t => Some(t as u8),
        }
    }

    /// Types whose payload is a heap pointer.
    pub fn is_ref(self) -> bool {
        matches!(self, Type::Str | Type::Array | Type::Map | Type::Func | Type::Struct | Type::Cell)
    }

    pub fn name(self) -> &'static str {
        match self {
            Type::Nil => "nil",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Float => "flt",
            Type::Str => "str",
            Type::Array => "arr",
            Type::Map => "map",
            Type::Func => "fun",
            Type::Native => "nat",
            Type::Struct => "obj",
            Type::Cell => "cel",
            Type::Value => "val",
            Type::Void => "",
        }
    }

    pub fn from_name(s: &str) -> Option<Type> {
        [
            Type::Nil,
            Type::Bool,
            Type::Int,
            Type::Float,
            Type::Str,
            Type::Array,
            Type::Map,
            Type::Func,
            Type::Native,
            Type::Struct,
            Type::Cell,
            Type::Value,
        ]
        .into_iter()
        .find(|t| t.name() == s)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
