//! Struct declarations at run time and the program-wide table of member names.
//! Field and method names are interned once (compile time) to dense ids, so a
//! field or method lookup is an array index, never a string hash.

use rustc_hash::FxHashMap;

use super::value::Value;

/// Interned field and method names. The first `BUILTIN_METHODS.len()` ids are
/// the built-in methods of Array, String and Map, in that order.
#[derive(Default, Debug)]
pub struct Names {
    ids: FxHashMap<String, u16>,
    names: Vec<String>,
}

/// Ids of the built-in methods (positions in `BUILTIN_METHODS`).
pub mod method {
    pub const PUSH: u16 = 0;
    pub const POP: u16 = 1;
    pub const LENGTH: u16 = 2;
    pub const INSERT: u16 = 3;
    pub const REMOVE: u16 = 4;
    pub const SLICE: u16 = 5;
    pub const JOIN: u16 = 6;
    pub const BYTE: u16 = 7;
    pub const SPLIT: u16 = 8;
    pub const CONTAINS: u16 = 9;
    pub const HAS: u16 = 10;
    pub const GET: u16 = 11;
    pub const KEYS: u16 = 12;
    pub const VALUES: u16 = 13;
}

/// Built-in method names; their ids are their positions here.
pub const BUILTIN_METHODS: &[&str] = &[
    "push", "pop", "length", "insert", "remove", "slice", "join", "byte", "split", "contains", "has", "get", "keys",
    "values",
];

impl Names {
    pub fn new() -> Names {
        let mut n = Names::default();
        for m in BUILTIN_METHODS {
            n.intern(m);
        }
        n
    }
    /// The id of `name`, or `None` when more than 65536 names exist.
    pub fn intern(&mut self, name: &str) -> Option<u16> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        let id = u16::try_from(self.names.len()).ok()?;
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        Some(id)
    }
    pub fn name(&self, id: u16) -> &str {
        &self.names[id as usize]
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
    /// Forgets the names interned after the first `len`.
    pub fn truncate(&mut self, len: usize) {
        for name in self.names.drain(len..) {
            self.ids.remove(&name);
        }
    }
}

const ABSENT: u32 = u32::MAX;

#[derive(Debug)]
pub struct StructDef {
    pub name: String,
    /// Field names in declaration order.
    pub fields: Vec<String>,
    /// Field index by name id (`ABSENT` when the struct has no such field).
    field_slot: Vec<u32>,
    /// Method (or associated function) by name id; `Nil` when absent.
    methods: Vec<Value>,
    /// Bit `i`: some write to field `i` (of any instance) stored something
    /// other than a Float.
    others: u64,
}

/// Fields whose kinds `StructDef` tracks: the first 64 (one bit each).
pub const TRACKED_FIELDS: usize = 64;

impl StructDef {
    pub fn new(name: String, fields: Vec<String>, field_ids: &[u16]) -> StructDef {
        let mut def = StructDef { name, fields, field_slot: Vec::new(), methods: Vec::new(), others: 0 };
        for (i, &id) in field_ids.iter().enumerate() {
            let id = id as usize;
            if def.field_slot.len() <= id {
                def.field_slot.resize(id + 1, ABSENT);
            }
            def.field_slot[id] = i as u32;
        }
        def
    }

    #[inline(always)]
    pub fn field_index(&self, name: u16) -> Option<usize> {
        match self.field_slot.get(name as usize) {
            Some(&i) if i != ABSENT => Some(i as usize),
            _ => None,
        }
    }

    #[inline(always)]
    pub fn method(&self, name: u16) -> Option<Value> {
        match self.methods.get(name as usize) {
            Some(v) if !matches!(v, Value::Nil) => Some(*v),
            _ => None,
        }
    }

    pub fn set_method(&mut self, name: u16, f: Value) {
        let id = name as usize;
        if self.methods.len() <= id {
            self.methods.resize(id + 1, Value::Nil);
        }
        self.methods[id] = f;
    }

    pub fn methods(&self) -> &[Value] {
        &self.methods
    }

    /// Whether every write to field `i` so far stored a Float. Every
    /// tracked field of every instance is written before it can be read (a
    /// struct literal writes them all, `nil` where it names none), so then
    /// every instance's field `i` holds a Float: the JIT reads and writes it
    /// without looking at its tag.
    #[inline(always)]
    pub fn float_only(&self, i: usize) -> bool {
        i < TRACKED_FIELDS && self.others >> i & 1 == 0
    }

    /// Notes a write of something other than a Float to field `i` of some
    /// instance; true if field `i` was `float_only` until now.
    #[inline(always)]
    pub fn note_other_write(&mut self, i: usize) -> bool {
        let was = self.float_only(i);
        if was {
            self.others |= 1 << i;
        }
        was
    }
}

#[cfg(test)]
mod tests {
    use super::{StructDef, TRACKED_FIELDS};

    #[test]
    fn a_field_is_float_only_until_something_else_is_written_to_it() {
        let mut fields: Vec<String> = (0..70).map(|i| format!("f{i}")).collect();
        fields[0] = "x".into();
        let ids: Vec<u16> = (0..70).collect();
        let mut def = StructDef::new("P".into(), fields, &ids);
        assert!(def.float_only(0) && def.float_only(1));
        assert!(def.note_other_write(1), "the first other write ends it");
        assert!(!def.note_other_write(1), "and only the first says so");
        assert!(def.float_only(0) && !def.float_only(1));
        // Past the tracked fields nothing is float-only, and no write counts.
        assert!(!def.float_only(TRACKED_FIELDS) && !def.note_other_write(TRACKED_FIELDS + 1));
    }
}
