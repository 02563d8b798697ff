//! The front end: source text to bytecode (lexer, parser, resolver, compiler).
//! Must not execute code.

pub mod ast;
pub mod compiler;
pub mod lexer;
pub mod parser;
pub mod resolve;

pub use ast::{CompileError, Span};

/// Parses and resolves a whole program.
pub fn parse_program(source: &str) -> Result<ast::Program, CompileError> {
    let mut program = parser::parse(source)?;
    resolve::resolve(&mut program)?;
    Ok(program)
}

/// Like `parse_program`, for a VM that already has globals (earlier REPL
/// input, host functions).
pub fn parse_program_with(source: &str, known: &resolve::Known) -> Result<ast::Program, CompileError> {
    let mut program = parser::parse(source)?;
    resolve::resolve_with(&mut program, known)?;
    Ok(program)
}
