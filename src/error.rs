//! The public error type of the engine: compile, runtime and I/O errors with
//! their source location and Vela stack trace.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The source did not compile; nothing ran.
    Compile,
    /// A Vela runtime error (including stack overflow, memory limit, budget).
    Runtime,
    /// The host stopped the script (instruction budget or interrupt callback).
    Interrupted,
    /// A file could not be read.
    Io,
    /// A host-side conversion failed (wrong Rust type for a Vela value).
    Conversion,
}

/// One frame of a Vela stack trace, innermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceFrame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// A source position: 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// Where a compile error is, or the innermost frame of a runtime error.
    pub location: Option<Location>,
    /// The Vela stack trace of a runtime error (empty otherwise).
    pub trace: Vec<TraceFrame>,
    /// A compile error rendered with the source line and a caret.
    pub rendered: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into(), location: None, trace: Vec::new(), rendered: None }
    }

    /// The process exit status the CLI uses for this error.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Compile => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.rendered {
            return write!(f, "{}", r.trim_end());
        }
        write!(f, "error: {}", self.message)?;
        if !self.trace.is_empty() {
            write!(f, "\nstack traceback:")?;
            for t in &self.trace {
                write!(f, "\n  at {} ({}:{})", t.function, t.file, t.line)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
