//! The VelaVM trace IR: a linear SSA list of typed instructions recorded from
//! one loop iteration, with guards and the snapshots they exit through; its
//! textual form, verifier and optimisation passes. Must not depend on LLVM or
//! on the `vela` runtime (values appear only as constants and slot numbers).
//!
//! - `print` / `parse`: the text form (`impl Display for Trace`, `parse`).
//! - `verify`: the rules every pass keeps.
//! - `passes`: fold, cse, redundant guards, dce, loop peeling, and `optimize`.

pub mod helper;
pub mod inst;
pub mod layout;
pub mod merge;
pub mod parse;
pub mod passes;
pub mod print;
pub mod snapshot;
pub mod trace;
pub mod types;
pub mod verify;

pub use helper::{Helper, Param};
pub use inst::{Inst, Opcode, Ref, SnapId};
pub use layout::{Field, Imm, Layout};
pub use parse::parse;
pub use passes::optimize;
pub use snapshot::{SnapEntry, SnapFrame, Snapshot};
pub use trace::Trace;
pub use types::Type;
pub use verify::verify;
