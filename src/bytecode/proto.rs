//! Function prototypes: the compiled, immutable form of one function body.

use std::rc::Rc;

use super::op::Op;
use crate::runtime::Value;

/// How a closure gets one captured cell when it is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpvalDesc {
    /// The cell in the creating function's register.
    Local(u8),
    /// The creating function's own upvalue.
    Upval(u8),
}

#[derive(Debug)]
pub struct Proto {
    /// Display name in stack traces: `f`, `Point.norm`, `<fn>`, `<script>`.
    pub name: String,
    pub file: Rc<str>,
    pub arity: u8,
    /// Registers used by the frame (parameters first).
    pub max_slots: u16,
    pub code: Vec<Op>,
    /// Source line of each instruction.
    pub lines: Vec<u32>,
    pub consts: Vec<Value>,
    pub protos: Vec<Rc<Proto>>,
    pub upvals: Vec<UpvalDesc>,
    /// Number of `Loop` headers in `code`.
    pub loop_count: u16,
    /// Line of the definition.
    pub line: u32,
}
