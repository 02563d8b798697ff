//! The abstract syntax tree produced by the parser and annotated by the resolver.
//! Owns only plain data; must not know about bytecode or runtime values.

use std::cell::Cell;

/// A byte range in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// Identifies one binding declaration (a `let`, a parameter, a loop variable,
/// `self`, or the name of a nested `fn`). Numbered densely from 0 per program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeclId(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// What a name refers to, filled in by the resolver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Not resolved yet (the parser's output).
    Unresolved,
    /// A local binding of the current function or of an enclosing one.
    Local(DeclId),
    /// A top-level name (global `let`, top-level `fn`, struct, or a built-in).
    Global,
}

#[derive(Debug)]
pub struct Program {
    pub stmts: Vec<Stmt>,
    /// Number of `DeclId`s handed out.
    pub decl_count: u32,
    /// `captured[d]` is true when some nested function refers to declaration `d`
    /// (filled by the resolver; indexed by `DeclId.0`).
    pub captured: Vec<bool>,
}

#[derive(Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum StmtKind {
    Expr(Expr),
    /// `let name = init` / `let name` (type annotations are parsed and dropped).
    Let {
        name: Ident,
        decl: DeclId,
        init: Option<Expr>,
    },
    /// `target = value` or `target op= value`; target is a Name, Index or Field expression.
    Assign {
        target: Expr,
        op: Option<BinOp>,
        value: Expr,
    },
    While {
        cond: Expr,
        body: Block,
    },
    Loop {
        body: Block,
    },
    /// `for var in start..end` / `start..=end`.
    ForRange {
        var: Ident,
        decl: DeclId,
        start: Expr,
        end: Expr,
        inclusive: bool,
        body: Block,
    },
    /// `for var in iterable` (Array elements or Map keys).
    ForIn {
        var: Ident,
        decl: DeclId,
        iter: Expr,
        body: Block,
    },
    Break,
    Continue,
    Return(Option<Expr>),
    /// A named function. At top level it is a global constant; nested, it binds
    /// a local (`FnDecl::decl`).
    Fn(FnDecl),
    Struct(StructDecl),
    Impl(ImplDecl),
    Block(Block),
}

#[derive(Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Debug)]
pub struct Param {
    pub name: Ident,
    pub decl: DeclId,
}

#[derive(Debug)]
pub struct FnDecl {
    /// None for `fn(x) { ... }` expressions.
    pub name: Option<Ident>,
    /// The local binding of a nested named function (None at top level, in
    /// `impl` blocks and for anonymous functions).
    pub decl: Option<DeclId>,
    /// Includes `self` as the first parameter for methods.
    pub params: Vec<Param>,
    pub body: Block,
    pub span: Span,
}

impl FnDecl {
    pub fn has_self(&self) -> bool {
        self.params.first().is_some_and(|p| p.name.name == "self")
    }
}

#[derive(Debug)]
pub struct StructDecl {
    pub name: Ident,
    pub fields: Vec<Ident>,
}

#[derive(Debug)]
pub struct ImplDecl {
    pub name: Ident,
    pub methods: Vec<FnDecl>,
}

#[derive(Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum InterpPart {
    Lit(String),
    /// `${expr}` or `${expr:.N}` (precision N).
    Expr(Expr, Option<u32>),
}

#[derive(Debug)]
pub enum ExprKind {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Interp(Vec<InterpPart>),
    /// A variable reference (including `self`).
    Name(Ident, Cell<Resolution>),
    Array(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    StructLit {
        name: Ident,
        fields: Vec<(Ident, Expr)>,
    },
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Call {
        callee: Box<Expr>,
        args: Vec<Expr>,
    },
    /// `recv.name(args)`; also `Struct.func(args)` for functions without `self`.
    MethodCall {
        recv: Box<Expr>,
        name: Ident,
        args: Vec<Expr>,
    },
    Index {
        obj: Box<Expr>,
        index: Box<Expr>,
    },
    Field {
        obj: Box<Expr>,
        name: Ident,
    },
    /// `if` used anywhere: as a statement it is an expression statement.
    /// `else_` is an `ExprKind::Block` or another `ExprKind::If`.
    If {
        cond: Box<Expr>,
        then: Block,
        else_: Option<Box<Expr>>,
    },
    /// A block used as a value (only as an `else` branch). Its value is the value
    /// of its last statement when that is an expression statement, else nil.
    Block(Block),
    Fn(Box<FnDecl>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
        }
    }
}

/// A compile error: a message saying what was expected, at a source span.
#[derive(Clone, Debug, PartialEq)]
pub struct CompileError {
    pub message: String,
    pub span: Span,
}

impl CompileError {
    pub fn new(message: impl Into<String>, span: Span) -> CompileError {
        CompileError { message: message.into(), span }
    }
}
