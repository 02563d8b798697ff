//! Function prototypes: the compiled, immutable form of one function body.

use std::cell::{Cell, OnceCell};
use std::rc::Rc;

use super::liveness::Liveness;
use super::op::Op;
use crate::jit::cache::TraceId;
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
    /// Profiling and trace state of each `Loop` header, by loop id.
    pub loops: Box<[HotSlot]>,
    /// Profiling and trace state of the function's entry (`FUNC_ENTRY`).
    pub entry: HotSlot,
    /// The body address of the function's live entry trace, or 0: what
    /// compiled code that calls this function natively (trace IR `TCallAt`)
    /// reads, so the cell's address is baked into it. `JitState` sets it
    /// when such a trace is attached and clears it when the trace leaves
    /// the cache; the VM keeps its prototypes as long as its traces.
    pub entry_body: Cell<usize>,
    /// A recording could not inline a call of this function (it has a loop,
    /// or recurses): later recordings call its entry trace natively instead.
    pub call_natively: Cell<bool>,
    /// Line of the definition.
    pub line: u32,
    /// Register liveness, computed the first time the JIT asks.
    pub liveness: OnceCell<Liveness>,
}

/// The pseudo loop id of a function's entry: traces anchored there are
/// entered on calls. The compiler never numbers a loop `u16::MAX`.
pub const FUNC_ENTRY: u16 = u16::MAX;

impl Proto {
    /// Which registers each pc may still read (`Liveness`).
    pub fn liveness(&self) -> &Liveness {
        self.liveness.get_or_init(|| Liveness::of(self))
    }

    /// The profiling slot of loop `id`, or of the entry for `FUNC_ENTRY`.
    pub fn hot_slot(&self, id: u16) -> &HotSlot {
        if id == FUNC_ENTRY {
            &self.entry
        } else {
            &self.loops[id as usize]
        }
    }
}

/// JIT state of a loop header or a function entry, counted down by the
/// interpreter on every arrival. The fast path is one decrement and one
/// test; everything else happens when the countdown reaches zero
/// (`Vm::hot`).
#[derive(Debug, Default)]
pub struct HotSlot {
    /// Arrivals left before the slow path runs. Starts at 0, so the first
    /// arrival arms the counter with the VM's threshold (prototypes do not
    /// know the VM's settings).
    pub countdown: Cell<i32>,
    /// Whether the countdown has been armed with the hot-loop threshold.
    pub armed: Cell<bool>,
    /// The JIT gave up on this loop.
    pub blacklisted: Cell<bool>,
    /// The loop's root trace in the code cache (which may since have been
    /// evicted: a stale id fails to look up).
    pub trace: Cell<Option<TraceId>>,
}
