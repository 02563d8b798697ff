//! VelaVM: an embeddable engine for the Vela language.
//!
//! Pipeline: `frontend` (lexer, parser, resolver, compiler) → `bytecode` →
//! `interp` (the dispatch loop over `runtime` values and heap).
//!
//! ```
//! let mut vm = vela::Vm::new(vela::Config::default());
//! vm.run_source("let x = 6 * 7", "demo.vela").unwrap();
//! assert!(matches!(vm.global("x"), Some(vela::Value::Int(42))));
//! ```

pub mod bytecode;
pub mod config;
pub mod embed;
pub mod error;
pub mod frontend;
pub mod interp;
pub mod jit;
pub mod runtime;

pub use config::Config;
pub use embed::{Callee, FromVela, HostFn, HostResult, IntoArgs, IntoVela, VelaKey, WithVm};
pub use error::{Error, ErrorKind, Location, TraceFrame};
pub use interp::Vm;
pub use runtime::Value;
