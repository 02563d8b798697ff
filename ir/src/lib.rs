//! The VelaVM trace IR. Owns the linear SSA trace representation, its printer,
//! verifier and optimisation passes. Must not depend on LLVM or on the `vela` runtime.
