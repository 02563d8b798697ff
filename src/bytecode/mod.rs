//! Bytecode: the instruction set, function prototypes and the disassembler.
//! Plain data; must not execute anything.

pub mod disasm;
pub mod liveness;
pub mod op;
pub mod proto;

pub use op::{Op, Reg};
pub use proto::{Proto, UpvalDesc};
