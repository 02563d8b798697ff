//! Snapshots: what the interpreter's frames look like at a guard, so a failed
//! guard can rebuild them and resume at the right bytecode.

use smallvec::SmallVec;

use crate::inst::Ref;

/// One stack slot to restore: `slot` is relative to the trace's base frame;
/// `value` is the SSA value (or constant) it holds. Its type says how to box it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapEntry {
    pub slot: i32,
    pub value: Ref,
}

/// A frame inlined into the trace, outermost first. `func` is a `KPtr`
/// constant of the called closure; `base` is the frame's base slot relative to
/// the trace's base; `ret_pc` is the caller's pc to resume at after this
/// frame returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapFrame {
    pub func: Ref,
    pub base: i32,
    pub ret_pc: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Bytecode pc to resume at, in the innermost frame.
    pub pc: u32,
    /// Slots that differ from what the stack holds when the trace is entered,
    /// sorted by slot.
    pub entries: Vec<SnapEntry>,
    /// Inlined frames active at this point (empty in the loop's own frame).
    pub frames: SmallVec<[SnapFrame; 2]>,
    /// Position in the trace: the first instruction not yet executed.
    pub at: u32,
    /// A GC exit: taken after an allocation when the heap wants a
    /// collection. It resumes after the allocating instruction, and the
    /// interpreter collects there; it is never linked or grown into a side
    /// trace (it is not a path the trace failed to predict).
    pub gc: bool,
}
