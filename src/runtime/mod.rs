//! The runtime: values, the heap and its collector, object layouts, and the
//! built-in functions and methods. Must not know about source text or parsing.

pub mod builtins;
pub mod format;
pub mod heap;
pub mod object;
pub mod ops;
pub mod structdef;
pub mod value;

pub use heap::{GcRef, Heap};
pub use value::Value;
