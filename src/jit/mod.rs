//! The trace JIT. The loop profiler is the interpreter's `Loop` instruction
//! counting into `bytecode::proto::HotSlot`; here are the recorder (one loop
//! iteration → trace IR, `recorder`), the LLVM back end (`backend`), run on a compile thread (`compiler`), with the
//! value/object layout it relies on (`layout`), the loader that places its
//! object code (`loader`), the memory that code lives in (`memory`) and the
//! symbol file that names it for `perf` (`perf_map`), OSR entry and deoptimizing exits (`deopt`), the
//! code cache (`cache`), and the JIT's state and statistics (`state`).
//! The IR, its verifier and passes are crate `vela-ir`.

// Without the loop profiler nothing enters the JIT (a build for measuring
// what counting costs).
#![cfg_attr(not(feature = "loop-counters"), allow(dead_code))]

pub mod backend;
pub mod cache;
pub mod compiler;
pub mod deopt;
pub mod helpers;
pub mod layout;
pub mod libllvm;
pub mod loader;
pub mod memory;
pub mod perf_map;
pub mod recorder;
pub mod state;
