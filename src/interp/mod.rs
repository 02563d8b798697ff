//! The interpreter: the `Vm` (value stack, call frames, globals, natives) and
//! the bytecode dispatch loop. Owns frame layout and the calling convention;
//! must not parse or compile (it asks the front end).

mod dispatch;
pub mod vm;

pub use vm::{Frame, Native, NativeFn, Stats, Vm};
