//! The parser: tokens to the AST of [`super::ast`].
//!
//! Recursive descent for statements, precedence climbing for binary
//! operators. Newlines end statements except where the language says a line
//! continues: inside `( [ {` of lists, map and struct literals (the parser's
//! `ignore_nl` mode), after a binary operator, `=`, `,`, `.` or `..`, and
//! before a line that starts with `else` (or with `.`, for method chains).
//!
//! Nesting is limited to [`MAX_DEPTH`] levels: deeper input is a compile
//! error ("nesting too deep"), never a Rust stack overflow. Statements,
//! blocks, expressions and the links of left-leaning chains (`a + b + c ...`,
//! `a.b().c ...`) all count, so the limit bounds the height of the AST: later
//! recursive passes over it need at most about `MAX_DEPTH` frames. (In
//! practice: ~66 nested `if`/`while` blocks, ~190 nested parentheses or
//! calls, sums of ~190 operands.)
//!
//! Choices made where the language page is silent:
//! - Comparisons do not chain: `a < b < c` and `a == b == c` are compile
//!   errors (as in Rust); `(a < b) < c` is fine.
//! - `-` directly applied to an integer literal is folded into the literal
//!   (this is how `-9223372036854775808` is i64::MIN); `-5.abs()` is still
//!   `-(5.abs())`. Float literals are not folded.
//! - Besides the lines the language says continue, a line also continues
//!   after `=`/`op=`, a unary operator, `.` and `..`/`..=`, and a line that
//!   starts with `.` continues a method chain. A line starting with a binary
//!   operator does not continue (`-x` on its own line is a new statement),
//!   and a `(` on the next line is not a call.
//! - The `{` of a block may be on the next line (`if c\n{`, `fn f()\n{`).
//! - A statement-level `if` ends at its last block (no operator or postfix
//!   may follow it, as in Rust); in expression position it is an ordinary
//!   primary expression.
//! - At the start of a statement `{` is always a block, so `{"a": 1}` alone
//!   is an error (as in Rust).
//! - Struct literals accept the shorthand `P { x }` for `P { x: x }`.
//! - Types are accepted and dropped: a name, `nil` or `self`, optionally with
//!   `<T, ...>` arguments (`>>` closes two); `fn(T, ...) -> T`; `[T]`;
//!   `(T, ...)`.
//! - `self` may only be the first parameter of a function inside `impl`;
//!   duplicate parameter names are errors.
//! - DeclIds are handed out in source order of the declaring name; every
//!   `let` gets one, including top-level lets (which resolve as globals).

use std::cell::Cell;

use super::ast::*;
use super::lexer::{tokenize, tokenize_range, StrPart, Tok, Token};

/// The maximum nesting depth of expressions, blocks and types.
pub const MAX_DEPTH: u32 = 200;

type PResult<T> = Result<T, CompileError>;

/// Parses a whole program. Names come out [`Resolution::Unresolved`]; run
/// [`super::resolve::resolve`] next.
pub fn parse(source: &str) -> Result<Program, CompileError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        src: source,
        toks: tokens,
        pos: 0,
        prev_end: 0,
        ignore_nl: false,
        no_struct: false,
        depth: 0,
        high: 0,
        block_depth: 0,
        next_decl: 0,
        interp_end: None,
    };
    let stmts = parser.parse_stmts(true)?;
    let decl_count = parser.next_decl;
    Ok(Program { stmts, decl_count, captured: vec![false; decl_count as usize] })
}

/// `||` and `&&` are not [`BinOp`]s.
#[derive(Clone, Copy)]
enum BinKind {
    Or,
    And,
    Op(BinOp),
}

const PREC_EQ: u8 = 3;
const PREC_CMP: u8 = 4;

fn binop(tok: &Tok) -> Option<(u8, BinKind)> {
    Some(match tok {
        Tok::OrOr => (1, BinKind::Or),
        Tok::AndAnd => (2, BinKind::And),
        Tok::EqEq => (PREC_EQ, BinKind::Op(BinOp::Eq)),
        Tok::NotEq => (PREC_EQ, BinKind::Op(BinOp::Ne)),
        Tok::Lt => (PREC_CMP, BinKind::Op(BinOp::Lt)),
        Tok::Le => (PREC_CMP, BinKind::Op(BinOp::Le)),
        Tok::Gt => (PREC_CMP, BinKind::Op(BinOp::Gt)),
        Tok::Ge => (PREC_CMP, BinKind::Op(BinOp::Ge)),
        Tok::Pipe => (5, BinKind::Op(BinOp::BitOr)),
        Tok::Caret => (6, BinKind::Op(BinOp::BitXor)),
        Tok::Amp => (7, BinKind::Op(BinOp::BitAnd)),
        Tok::Shl => (8, BinKind::Op(BinOp::Shl)),
        Tok::Shr => (8, BinKind::Op(BinOp::Shr)),
        Tok::Plus => (9, BinKind::Op(BinOp::Add)),
        Tok::Minus => (9, BinKind::Op(BinOp::Sub)),
        Tok::Star => (10, BinKind::Op(BinOp::Mul)),
        Tok::Slash => (10, BinKind::Op(BinOp::Div)),
        Tok::Percent => (10, BinKind::Op(BinOp::Rem)),
        _ => return None,
    })
}

fn assign_op(tok: &Tok) -> Option<Option<BinOp>> {
    Some(match tok {
        Tok::Assign => None,
        Tok::PlusEq => Some(BinOp::Add),
        Tok::MinusEq => Some(BinOp::Sub),
        Tok::StarEq => Some(BinOp::Mul),
        Tok::SlashEq => Some(BinOp::Div),
        Tok::PercentEq => Some(BinOp::Rem),
        _ => return None,
    })
}

/// Replaces `expr` by the node `make(expr)` ending at `end`.
#[inline(never)]
fn wrap(expr: &mut Expr, end: Span, make: impl FnOnce(Box<Expr>) -> ExprKind) {
    let inner = std::mem::replace(expr, Expr { kind: ExprKind::Nil, span: end });
    let span = Span { start: inner.span.start, end: end.end };
    *expr = Expr { kind: make(Box::new(inner)), span };
}

fn name_expr(ident: Ident) -> Expr {
    let span = ident.span;
    Expr { kind: ExprKind::Name(ident, Cell::new(Resolution::Unresolved)), span }
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    /// End offset of the last consumed token.
    prev_end: u32,
    /// Newlines are insignificant (inside `( [ {` lists and interpolations).
    ignore_nl: bool,
    /// A struct literal may not start here (the head of `if`/`while`/`for`).
    no_struct: bool,
    /// Current nesting depth.
    depth: u32,
    /// High-water mark of `depth` plus chain heights, used to measure the
    /// height of the subtree being parsed (see `begin_measure`).
    high: u32,
    /// Number of enclosing blocks: 0 for top-level statements.
    block_depth: u32,
    next_decl: u32,
    /// When parsing a `${...}` expression: how to describe its end.
    interp_end: Option<&'static str>,
}

impl<'s> Parser<'s> {
    // ----- token access -------------------------------------------------

    fn skip_ignored(&mut self) {
        if self.ignore_nl {
            self.skip_newlines();
        }
    }

    fn skip_newlines(&mut self) {
        while self.toks[self.pos].kind == Tok::Newline {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> &Tok {
        self.skip_ignored();
        &self.toks[self.pos].kind
    }

    fn peek_span(&mut self) -> Span {
        self.skip_ignored();
        self.toks[self.pos].span
    }

    /// The token `n` places ahead, newlines included.
    fn raw(&self, n: usize) -> &Tok {
        let i = (self.pos + n).min(self.toks.len() - 1);
        &self.toks[i].kind
    }

    /// The first token at or after `pos` that is not a newline.
    fn next_non_newline(&self) -> &Tok {
        let mut i = self.pos;
        while self.toks[i].kind == Tok::Newline {
            i += 1;
        }
        &self.toks[i].kind
    }

    fn bump(&mut self) -> Token {
        self.skip_ignored();
        let tok = self.toks[self.pos].clone();
        if tok.kind != Tok::Eof {
            self.pos += 1;
        }
        self.prev_end = tok.span.end;
        tok
    }

    fn eat(&mut self, kind: &Tok) -> bool {
        if self.peek() == kind {
            self.bump();
            true
        } else {
            false
        }
    }

    fn describe(&self, tok: &Token) -> String {
        match (&tok.kind, self.interp_end) {
            (Tok::Eof, Some(end)) => end.to_string(),
            (kind, _) => kind.describe(),
        }
    }

    fn error_at(&self, expected: &str, tok: &Token) -> CompileError {
        CompileError::new(format!("expected {expected}, found {}", self.describe(tok)), tok.span)
    }

    /// "expected X, found <next token>".
    fn unexpected(&mut self, expected: &str) -> CompileError {
        self.skip_ignored();
        let tok = &self.toks[self.pos];
        self.error_at(expected, tok)
    }

    fn expect(&mut self, kind: Tok) -> PResult<Token> {
        if self.peek() == &kind {
            Ok(self.bump())
        } else {
            let text = kind.text().unwrap_or("?");
            Err(self.unexpected(&format!("'{text}'")))
        }
    }

    fn expect_ident(&mut self, what: &str) -> PResult<Ident> {
        if let Tok::Ident(_) = self.peek() {
            let tok = self.bump();
            if let Tok::Ident(name) = tok.kind {
                return Ok(Ident { name, span: tok.span });
            }
        }
        Err(self.unexpected(what))
    }

    fn new_decl(&mut self) -> DeclId {
        let id = DeclId(self.next_decl);
        self.next_decl += 1;
        id
    }

    // ----- nesting limits -----------------------------------------------

    fn enter(&mut self) -> PResult<()> {
        #[cfg(test)]
        tests::record_stack();
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let span = self.peek_span();
            return Err(CompileError::new("nesting too deep", span));
        }
        self.high = self.high.max(self.depth);
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Starts measuring the height of the subtree parsed next; returns the
    /// saved high-water mark for `end_measure`.
    fn begin_measure(&mut self) -> u32 {
        std::mem::replace(&mut self.high, self.depth)
    }

    /// The height of the subtree parsed since `begin_measure`.
    fn end_measure(&mut self, saved: u32) -> u32 {
        let height = self.high - self.depth;
        self.high = self.high.max(saved);
        height
    }

    /// Records that a chain node at depth `base` now has height `height`.
    fn grow(&mut self, base: u32, height: u32, span: Span) -> PResult<()> {
        if base + height > MAX_DEPTH {
            return Err(CompileError::new("nesting too deep", span));
        }
        self.high = self.high.max(base + height);
        Ok(())
    }

    /// Enters `( [ {` of a list: newlines insignificant, struct literals
    /// allowed. Returns the state for `close_brackets`. (Errors abort the
    /// whole parse, so the state need not be restored on error paths.)
    fn open_brackets(&mut self) -> (bool, bool) {
        let saved = (self.ignore_nl, self.no_struct);
        self.ignore_nl = true;
        self.no_struct = false;
        saved
    }

    fn close_brackets(&mut self, saved: (bool, bool)) {
        (self.ignore_nl, self.no_struct) = saved;
    }

    // ----- statements ---------------------------------------------------
    //
    // The functions on the recursion "spine" (parse_stmts, parse_stmt,
    // parse_block, parse_expr, parse_binary, parse_unary, parse_postfix,
    // parse_primary, ...) are kept small and delegate to helpers, because
    // debug builds give every temporary of a function its own stack slot and
    // the nesting limit must fit in a 2 MiB thread stack.

    /// Statements up to end of file (`top`) or up to (not including) `}`.
    fn parse_stmts(&mut self, top: bool) -> PResult<Vec<Stmt>> {
        let mut stmts = Vec::new();
        loop {
            while matches!(self.peek(), Tok::Newline | Tok::Semi) {
                self.bump();
            }
            match self.peek() {
                Tok::Eof if top => break,
                Tok::RBrace if !top => break,
                Tok::Eof => return Err(self.unexpected("'}'")),
                _ => {}
            }
            let block_like = self.parse_stmt(&mut stmts)?;
            if !block_like {
                self.stmt_terminator(top)?;
            }
        }
        Ok(stmts)
    }

    fn stmt_terminator(&mut self, top: bool) -> PResult<()> {
        match self.peek() {
            Tok::Newline | Tok::Semi => {
                self.bump();
            }
            Tok::Eof => {}
            Tok::RBrace if !top => {}
            _ => return Err(self.unexpected("newline or ';' after statement")),
        }
        Ok(())
    }

    /// Parses one statement onto `out`; returns whether it ends with a block
    /// (and so needs no terminator).
    fn parse_stmt(&mut self, out: &mut Vec<Stmt>) -> PResult<bool> {
        let start = self.peek_span().start;
        let named_fn = matches!(self.raw(1), Tok::Ident(_));
        // A single call through a function pointer keeps this frame small in
        // debug builds (one result slot instead of one per arm).
        let parse: fn(&mut Self) -> PResult<(StmtKind, bool)> = match self.peek() {
            Tok::Let => Self::parse_let,
            Tok::Fn if named_fn => Self::parse_fn_stmt,
            Tok::Struct => Self::parse_struct,
            Tok::Impl => Self::parse_impl,
            Tok::While => Self::parse_while,
            Tok::Loop => Self::parse_loop,
            Tok::For => Self::parse_for,
            Tok::Break | Tok::Continue => Self::parse_break_continue,
            Tok::Return => Self::parse_return,
            Tok::LBrace => Self::parse_block_stmt,
            Tok::If => Self::parse_if_stmt,
            _ => Self::parse_expr_stmt,
        };
        self.enter()?;
        let (kind, block_like) = parse(self)?;
        self.leave();
        let span = Span { start, end: self.prev_end.max(start) };
        out.push(Stmt { kind, span });
        Ok(block_like)
    }

    fn parse_let(&mut self) -> PResult<(StmtKind, bool)> {
        self.bump();
        let name = self.expect_ident("a variable name after `let`")?;
        let decl = self.new_decl();
        if self.eat(&Tok::Colon) {
            self.parse_type()?;
        }
        let init = if self.eat(&Tok::Assign) {
            self.skip_newlines();
            Some(self.parse_expr()?)
        } else {
            None
        };
        Ok((StmtKind::Let { name, decl, init }, false))
    }

    fn parse_fn_stmt(&mut self) -> PResult<(StmtKind, bool)> {
        Ok((StmtKind::Fn(self.parse_fn_decl(false)?), true))
    }

    fn parse_while(&mut self) -> PResult<(StmtKind, bool)> {
        self.bump();
        let cond = self.parse_head_expr()?;
        let body = self.parse_block()?;
        Ok((StmtKind::While { cond, body }, true))
    }

    fn parse_loop(&mut self) -> PResult<(StmtKind, bool)> {
        self.bump();
        let body = self.parse_block()?;
        Ok((StmtKind::Loop { body }, true))
    }

    fn parse_break_continue(&mut self) -> PResult<(StmtKind, bool)> {
        let kind = if self.bump().kind == Tok::Break { StmtKind::Break } else { StmtKind::Continue };
        Ok((kind, false))
    }

    fn parse_return(&mut self) -> PResult<(StmtKind, bool)> {
        self.bump();
        let value = match self.peek() {
            Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof => None,
            _ => Some(self.parse_expr()?),
        };
        Ok((StmtKind::Return(value), false))
    }

    fn parse_block_stmt(&mut self) -> PResult<(StmtKind, bool)> {
        Ok((StmtKind::Block(self.parse_block()?), true))
    }

    /// A statement-level `if` ends with its last block: no operator or
    /// postfix may follow it.
    fn parse_if_stmt(&mut self) -> PResult<(StmtKind, bool)> {
        Ok((StmtKind::Expr(self.parse_if_expr()?), true))
    }

    fn parse_expr_stmt(&mut self) -> PResult<(StmtKind, bool)> {
        let target = self.parse_expr()?;
        let Some(op) = assign_op(self.peek()) else {
            return Ok((StmtKind::Expr(target), false));
        };
        if !matches!(target.kind, ExprKind::Name(..) | ExprKind::Index { .. } | ExprKind::Field { .. }) {
            return Err(CompileError::new("invalid assignment target", target.span));
        }
        self.bump();
        self.skip_newlines();
        let value = self.parse_expr()?;
        Ok((StmtKind::Assign { target, op, value }, false))
    }

    fn parse_for(&mut self) -> PResult<(StmtKind, bool)> {
        self.bump();
        let var = self.expect_ident("a loop variable name after `for`")?;
        let decl = self.new_decl();
        self.expect(Tok::In)?;
        let start = self.parse_head_expr()?;
        let inclusive = match self.peek() {
            Tok::DotDot => false,
            Tok::DotDotEq => true,
            _ => {
                let body = self.parse_block()?;
                return Ok((StmtKind::ForIn { var, decl, iter: start, body }, true));
            }
        };
        self.bump();
        self.skip_newlines();
        let end = self.parse_head_expr()?;
        let body = self.parse_block()?;
        Ok((StmtKind::ForRange { var, decl, start, end, inclusive, body }, true))
    }

    /// `fn name(params) { body }` as a statement (`method`: inside `impl`).
    fn parse_fn_decl(&mut self, method: bool) -> PResult<FnDecl> {
        let start = self.expect(Tok::Fn)?.span;
        let name = self.expect_ident("a function name after `fn`")?;
        let decl = if !method && self.block_depth > 0 { Some(self.new_decl()) } else { None };
        let params = self.parse_params(method)?;
        let body = self.parse_fn_body()?;
        let span = start.to(body.span);
        Ok(FnDecl { name: Some(name), decl, params, body, span })
    }

    /// `(a, b: Type, ...)` (`self` first in methods).
    fn parse_params(&mut self, method: bool) -> PResult<Vec<Param>> {
        self.expect(Tok::LParen)?;
        let saved = self.open_brackets();
        let mut params: Vec<Param> = Vec::new();
        loop {
            if self.eat(&Tok::RParen) {
                break;
            }
            let tok = self.bump();
            let name = match tok.kind {
                Tok::Ident(name) => Ident { name, span: tok.span },
                Tok::SelfKw if method && params.is_empty() => Ident { name: "self".to_string(), span: tok.span },
                Tok::SelfKw if method => {
                    return Err(CompileError::new("`self` must be the first parameter", tok.span));
                }
                Tok::SelfKw => {
                    return Err(CompileError::new("`self` parameter is only allowed in methods", tok.span));
                }
                _ => return Err(self.error_at("a parameter name", &tok)),
            };
            if params.iter().any(|q| q.name.name == name.name) {
                return Err(CompileError::new(format!("duplicate parameter `{}`", name.name), name.span));
            }
            let decl = self.new_decl();
            if self.eat(&Tok::Colon) {
                self.parse_type()?;
            }
            params.push(Param { name, decl });
            if self.eat(&Tok::Comma) {
                continue;
            }
            if self.eat(&Tok::RParen) {
                break;
            }
            return Err(self.unexpected("',' or ')'"));
        }
        self.close_brackets(saved);
        Ok(params)
    }

    /// Optional `-> Type`, then the body block.
    fn parse_fn_body(&mut self) -> PResult<Block> {
        if self.eat(&Tok::Arrow) {
            self.parse_type()?;
        }
        self.parse_block()
    }

    /// A type annotation, parsed and dropped: `Int`, `Array<Int>`,
    /// `Map<String, Array<Int>>`, `fn(Int) -> Int`, `[Int]`, `(A, B)`, `nil`.
    fn parse_type(&mut self) -> PResult<()> {
        self.enter()?;
        let tok = self.bump();
        match tok.kind {
            Tok::Ident(_) | Tok::Nil | Tok::SelfKw => {
                if self.peek() == &Tok::Lt {
                    self.bump();
                    self.parse_type_args()?;
                }
            }
            Tok::Fn => {
                if self.eat(&Tok::LParen) {
                    self.parse_type_list(Tok::RParen)?;
                }
                if self.eat(&Tok::Arrow) {
                    self.parse_type()?;
                }
            }
            Tok::LBracket => {
                let saved = self.open_brackets();
                self.parse_type()?;
                self.expect(Tok::RBracket)?;
                self.close_brackets(saved);
            }
            Tok::LParen => self.parse_type_list(Tok::RParen)?,
            _ => return Err(self.error_at("a type", &tok)),
        }
        self.leave();
        Ok(())
    }

    /// `T, U>` after a `<`; a `>>` closes two lists.
    fn parse_type_args(&mut self) -> PResult<()> {
        let saved = self.open_brackets();
        loop {
            self.parse_type()?;
            // `Map<K, V,>` is fine too.
            if self.eat(&Tok::Comma) && !matches!(self.peek(), Tok::Gt | Tok::Shr) {
                continue;
            }
            match self.peek() {
                Tok::Gt => {
                    self.bump();
                }
                Tok::Shr => {
                    // `Array<Array<Int>>`: split `>>` into two `>`.
                    let tok = &mut self.toks[self.pos];
                    tok.kind = Tok::Gt;
                    tok.span.start += 1;
                }
                _ => return Err(self.unexpected("',' or '>' in type")),
            }
            break;
        }
        self.close_brackets(saved);
        Ok(())
    }

    /// Types separated by commas up to `close` (the opener is consumed).
    fn parse_type_list(&mut self, close: Tok) -> PResult<()> {
        let saved = self.open_brackets();
        while !self.eat(&close) {
            self.parse_type()?;
            if !self.eat(&Tok::Comma) && self.peek() != &close {
                return Err(self.unexpected(&format!("',' or '{}'", close.text().unwrap_or("?"))));
            }
        }
        self.close_brackets(saved);
        Ok(())
    }

    /// `struct Name { a, b: Type \n c }`
    fn parse_struct(&mut self) -> PResult<(StmtKind, bool)> {
        self.bump();
        let name = self.expect_ident("a struct name after `struct`")?;
        self.skip_newlines();
        self.expect(Tok::LBrace)?;
        let mut fields = Vec::new();
        let mut need_separator = false;
        loop {
            match self.peek() {
                Tok::Newline | Tok::Comma | Tok::Semi => {
                    self.bump();
                    need_separator = false;
                }
                Tok::RBrace => {
                    self.bump();
                    break;
                }
                Tok::Ident(_) if !need_separator => {
                    fields.push(self.expect_ident("a field name")?);
                    if self.eat(&Tok::Colon) {
                        self.parse_type()?;
                    }
                    need_separator = true;
                }
                _ if need_separator => return Err(self.unexpected("',' or '}'")),
                _ => return Err(self.unexpected("a field name or '}'")),
            }
        }
        Ok((StmtKind::Struct(StructDecl { name, fields }), true))
    }

    /// `impl Name { fn a(self) { } fn b() { } }`
    fn parse_impl(&mut self) -> PResult<(StmtKind, bool)> {
        self.bump();
        let name = self.expect_ident("a struct name after `impl`")?;
        self.skip_newlines();
        self.expect(Tok::LBrace)?;
        let mut methods = Vec::new();
        loop {
            match self.peek() {
                Tok::Newline | Tok::Semi => {
                    self.bump();
                }
                Tok::RBrace => {
                    self.bump();
                    break;
                }
                Tok::Fn => methods.push(self.parse_fn_decl(true)?),
                _ => return Err(self.unexpected("`fn` or '}'")),
            }
        }
        Ok((StmtKind::Impl(ImplDecl { name, methods }), true))
    }

    /// `{ stmts }`; a `{` on the next line is accepted.
    fn parse_block(&mut self) -> PResult<Block> {
        self.skip_newlines();
        let open = self.expect(Tok::LBrace)?.span;
        self.enter()?;
        let saved = (self.ignore_nl, self.no_struct);
        self.ignore_nl = false;
        self.no_struct = false;
        self.block_depth += 1;
        let stmts = self.parse_stmts(false)?;
        let close = self.bump().span; // `parse_stmts` stopped at `}`
        self.block_depth -= 1;
        (self.ignore_nl, self.no_struct) = saved;
        self.leave();
        Ok(Block { stmts, span: open.to(close) })
    }

    // ----- expressions --------------------------------------------------

    fn parse_expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let expr = self.parse_binary(1);
        self.leave();
        expr
    }

    /// An expression where a bare struct literal is not allowed (`if`/`while`/`for` heads).
    fn parse_head_expr(&mut self) -> PResult<Expr> {
        let saved = self.no_struct;
        self.no_struct = true;
        let result = self.parse_expr();
        self.no_struct = saved;
        result
    }

    /// Precedence climbing over the binary operators with precedence >= `min_prec`.
    fn parse_binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let saved = self.begin_measure();
        let lhs = self.parse_unary()?;
        let height = self.end_measure(saved);
        match binop(self.peek()) {
            Some((prec, _)) if prec >= min_prec => self.parse_binary_rest(min_prec, lhs, height),
            _ => Ok(lhs),
        }
    }

    /// The operator loop of `parse_binary`, after the first operand.
    #[inline(never)]
    fn parse_binary_rest(&mut self, min_prec: u8, mut lhs: Expr, mut height: u32) -> PResult<Expr> {
        let base = self.depth;
        let mut last_comparison = None;
        while let Some((prec, kind)) = binop(self.peek()) {
            if prec < min_prec {
                break;
            }
            let op_tok = self.bump();
            if last_comparison == Some(prec) {
                return Err(CompileError::new("comparison operators cannot be chained (use parentheses)", op_tok.span));
            }
            self.skip_newlines();
            let saved = self.begin_measure();
            self.enter()?;
            let rhs = self.parse_binary(prec + 1)?;
            self.leave();
            // The rhs was parsed one level down, so its measured height
            // already counts the new node.
            height = (height + 1).max(self.end_measure(saved));
            let span = lhs.span.to(rhs.span);
            self.grow(base, height, span)?;
            let (l, r) = (Box::new(lhs), Box::new(rhs));
            let kind = match kind {
                BinKind::Or => ExprKind::Or(l, r),
                BinKind::And => ExprKind::And(l, r),
                BinKind::Op(op) => ExprKind::Binary(op, l, r),
            };
            lhs = Expr { kind, span };
            last_comparison = (prec == PREC_EQ || prec == PREC_CMP).then_some(prec);
        }
        Ok(lhs)
    }

    fn parse_unary(&mut self) -> PResult<Expr> {
        let parse: fn(&mut Self) -> PResult<Expr> = match self.peek() {
            Tok::Minus | Tok::Bang | Tok::Tilde => Self::parse_unary_op,
            _ => Self::parse_postfix,
        };
        parse(self)
    }

    /// Whether a postfix operator follows the current token (used to decide
    /// whether `-<int>` can be folded into a literal).
    fn postfix_follows(&self) -> bool {
        match self.raw(1) {
            Tok::LParen | Tok::LBracket | Tok::Dot => true,
            Tok::Newline => {
                let mut i = self.pos + 1;
                while self.toks[i].kind == Tok::Newline {
                    i += 1;
                }
                self.ignore_nl || self.toks[i].kind == Tok::Dot
            }
            _ => false,
        }
    }

    #[inline(never)]
    fn parse_unary_op(&mut self) -> PResult<Expr> {
        let tok = self.bump();
        let op = match tok.kind {
            Tok::Minus => UnOp::Neg,
            Tok::Bang => UnOp::Not,
            _ => UnOp::BitNot,
        };
        self.skip_newlines();
        if op == UnOp::Neg {
            // `-<integer literal>` is folded, which is what makes
            // `-9223372036854775808` (i64::MIN) expressible.
            if let Tok::Int(n) = *self.raw(0) {
                if !self.postfix_follows() {
                    let int = self.bump();
                    if n > 1u64 << 63 {
                        return Err(CompileError::new("integer literal out of range", int.span));
                    }
                    let value = (-(n as i128)) as i64;
                    return Ok(Expr { kind: ExprKind::Int(value), span: tok.span.to(int.span) });
                }
            }
        }
        self.enter()?;
        let operand = self.parse_unary()?;
        self.leave();
        let span = tok.span.to(operand.span);
        Ok(Expr { kind: ExprKind::Unary(op, Box::new(operand)), span })
    }

    /// Whether a postfix operator (call, index, field, method) comes next; a
    /// line starting with `.` continues a method chain.
    fn at_postfix(&mut self) -> bool {
        if !self.ignore_nl && self.raw(0) == &Tok::Newline && self.next_non_newline() == &Tok::Dot {
            self.skip_newlines();
        }
        matches!(self.peek(), Tok::LParen | Tok::LBracket | Tok::Dot)
    }

    fn parse_postfix(&mut self) -> PResult<Expr> {
        let saved = self.begin_measure();
        let expr = self.parse_primary()?;
        let height = self.end_measure(saved);
        if self.at_postfix() {
            self.parse_postfix_rest(expr, height)
        } else {
            Ok(expr)
        }
    }

    /// The postfix loop of `parse_postfix`, after the primary expression.
    #[inline(never)]
    fn parse_postfix_rest(&mut self, mut expr: Expr, mut height: u32) -> PResult<Expr> {
        let base = self.depth;
        while self.at_postfix() {
            let saved = self.begin_measure();
            self.parse_postfix_op(&mut expr)?;
            // Arguments and indices are parsed one level down (`parse_expr`),
            // so their measured height already counts the new node.
            height = (height + 1).max(self.end_measure(saved));
            self.grow(base, height, expr.span)?;
        }
        Ok(expr)
    }

    /// Applies one postfix operator (at the current token) to `expr` in place.
    fn parse_postfix_op(&mut self, expr: &mut Expr) -> PResult<()> {
        let parse: fn(&mut Self, &mut Expr) -> PResult<()> = match self.bump().kind {
            Tok::LParen => Self::parse_call,
            Tok::LBracket => Self::parse_index_op,
            _ => Self::parse_field_or_method,
        };
        parse(self, expr)
    }

    /// `args)` after `(`.
    fn parse_call(&mut self, expr: &mut Expr) -> PResult<()> {
        let (args, close) = self.parse_list(Tok::RParen, Self::push_expr)?;
        wrap(expr, close, |callee| ExprKind::Call { callee, args });
        Ok(())
    }

    /// `index]` after `[`.
    fn parse_index_op(&mut self, expr: &mut Expr) -> PResult<()> {
        let (index, close) = self.parse_index()?;
        wrap(expr, close, |obj| ExprKind::Index { obj, index: Box::new(index) });
        Ok(())
    }

    /// `name` or `name(args)` after `.`.
    fn parse_field_or_method(&mut self, expr: &mut Expr) -> PResult<()> {
        self.skip_newlines();
        let name = self.expect_ident("a field or method name after '.'")?;
        if self.raw(0) == &Tok::LParen {
            self.bump();
            let (args, close) = self.parse_list(Tok::RParen, Self::push_expr)?;
            wrap(expr, close, |recv| ExprKind::MethodCall { recv, name, args });
        } else {
            let end = name.span;
            wrap(expr, end, |obj| ExprKind::Field { obj, name });
        }
        Ok(())
    }

    /// `index]` after a `[`.
    fn parse_index(&mut self) -> PResult<(Expr, Span)> {
        let saved = self.open_brackets();
        let index = self.parse_expr()?;
        let close = self.expect(Tok::RBracket)?.span;
        self.close_brackets(saved);
        Ok((index, close))
    }

    /// Items separated by commas (trailing comma allowed, newlines ignored) up
    /// to `close`; the opening bracket is already consumed. `item` parses one
    /// item onto the vector. Returns the items and the span of the closing
    /// bracket.
    fn parse_list<T>(
        &mut self,
        close: Tok,
        item: fn(&mut Self, &mut Vec<T>) -> PResult<()>,
    ) -> PResult<(Vec<T>, Span)> {
        let saved = self.open_brackets();
        let mut items = Vec::new();
        while self.peek() != &close {
            item(self, &mut items)?;
            if !self.eat(&Tok::Comma) && self.peek() != &close {
                return Err(self.list_error(&close));
            }
        }
        let end = self.bump().span;
        self.close_brackets(saved);
        Ok((items, end))
    }

    #[cold]
    #[inline(never)]
    fn list_error(&mut self, close: &Tok) -> CompileError {
        self.unexpected(&format!("',' or '{}'", close.text().unwrap_or("?")))
    }

    fn push_expr(&mut self, out: &mut Vec<Expr>) -> PResult<()> {
        let expr = self.parse_expr()?;
        out.push(expr);
        Ok(())
    }

    fn parse_primary(&mut self) -> PResult<Expr> {
        let parse: fn(&mut Self) -> PResult<Expr> = match self.peek() {
            Tok::If => Self::parse_if_expr,
            Tok::Fn => Self::parse_lambda,
            Tok::LParen => Self::parse_paren,
            Tok::LBracket => Self::parse_array,
            Tok::LBrace => Self::parse_map,
            Tok::Ident(_) => Self::parse_name_or_struct,
            Tok::Interp(_) => Self::parse_interp,
            _ => Self::parse_atom,
        };
        parse(self)
    }

    /// Literals, `self`, interpolated strings.
    fn parse_atom(&mut self) -> PResult<Expr> {
        let tok = self.bump();
        let span = tok.span;
        let kind = match tok.kind {
            Tok::Int(n) => match i64::try_from(n) {
                Ok(n) => ExprKind::Int(n),
                Err(_) => return Err(CompileError::new("integer literal out of range", span)),
            },
            Tok::Float(x) => ExprKind::Float(x),
            Tok::Str(s) => ExprKind::Str(s),
            Tok::True => ExprKind::Bool(true),
            Tok::False => ExprKind::Bool(false),
            Tok::Nil => ExprKind::Nil,
            Tok::SelfKw => return Ok(name_expr(Ident { name: "self".to_string(), span })),
            _ => return Err(self.error_at("expression", &tok)),
        };
        Ok(Expr { kind, span })
    }

    /// `(expr)`
    fn parse_paren(&mut self) -> PResult<Expr> {
        let open = self.bump().span;
        let saved = self.open_brackets();
        let inner = self.parse_expr()?;
        let close = self.expect(Tok::RParen)?.span;
        self.close_brackets(saved);
        Ok(Expr { kind: inner.kind, span: open.to(close) })
    }

    /// `[a, b]`
    fn parse_array(&mut self) -> PResult<Expr> {
        let open = self.bump().span;
        let (items, close) = self.parse_list(Tok::RBracket, Self::push_expr)?;
        Ok(Expr { kind: ExprKind::Array(items), span: open.to(close) })
    }

    /// `{k: v, ...}` in expression position.
    fn parse_map(&mut self) -> PResult<Expr> {
        let open = self.bump().span;
        let (entries, close) = self.parse_list(Tok::RBrace, Self::parse_map_entry)?;
        Ok(Expr { kind: ExprKind::Map(entries), span: open.to(close) })
    }

    fn parse_map_entry(&mut self, out: &mut Vec<(Expr, Expr)>) -> PResult<()> {
        let key = self.parse_expr()?;
        self.expect(Tok::Colon)?;
        let value = self.parse_expr()?;
        out.push((key, value));
        Ok(())
    }

    /// A name, or a struct literal `Name { field: value, ... }` where allowed.
    fn parse_name_or_struct(&mut self) -> PResult<Expr> {
        let name = self.expect_ident("a name")?;
        if self.no_struct || self.raw(0) != &Tok::LBrace {
            return Ok(name_expr(name));
        }
        self.bump();
        let (fields, close) = self.parse_list(Tok::RBrace, Self::parse_struct_field)?;
        let span = name.span.to(close);
        Ok(Expr { kind: ExprKind::StructLit { name, fields }, span })
    }

    /// `field: value`, or `field` alone for `field: field`.
    fn parse_struct_field(&mut self, out: &mut Vec<(Ident, Expr)>) -> PResult<()> {
        let field = self.expect_ident("a field name")?;
        let value = if self.eat(&Tok::Colon) { self.parse_expr()? } else { name_expr(field.clone()) };
        out.push((field, value));
        Ok(())
    }

    fn parse_if_expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let expr = self.parse_if();
        self.leave();
        expr
    }

    /// `if cond { } [else if ... | else { }]`, at the `if`.
    fn parse_if(&mut self) -> PResult<Expr> {
        let start = self.bump().span;
        let cond = self.parse_head_expr()?;
        let then = self.parse_block()?;
        let else_ = if self.next_non_newline() == &Tok::Else { Some(Box::new(self.parse_else()?)) } else { None };
        let end = else_.as_ref().map_or(then.span, |e| e.span);
        Ok(Expr { kind: ExprKind::If { cond: Box::new(cond), then, else_ }, span: start.to(end) })
    }

    /// `else if ...` or `else { }`, at the (possibly newline-preceded) `else`.
    fn parse_else(&mut self) -> PResult<Expr> {
        self.skip_newlines();
        self.bump();
        self.skip_newlines();
        if self.peek() == &Tok::If {
            return self.parse_if_expr();
        }
        let block = self.parse_block()?;
        let span = block.span;
        Ok(Expr { kind: ExprKind::Block(block), span })
    }

    /// `fn(params) { body }`
    fn parse_lambda(&mut self) -> PResult<Expr> {
        let start = self.bump().span;
        if self.peek() != &Tok::LParen {
            return Err(self.unexpected("'(' (a function expression has no name)"));
        }
        let params = self.parse_params(false)?;
        let body = self.parse_fn_body()?;
        let span = start.to(body.span);
        Ok(Expr { kind: ExprKind::Fn(Box::new(FnDecl { name: None, decl: None, params, body, span })), span })
    }

    /// An interpolated string: parses the expressions of its `${...}` parts
    /// from their source ranges.
    fn parse_interp(&mut self) -> PResult<Expr> {
        let tok = self.bump();
        let Tok::Interp(parts) = tok.kind else { unreachable!("parse_primary checked") };
        let mut out = Vec::with_capacity(parts.len());
        for part in parts {
            match part {
                StrPart::Lit(text) => out.push(InterpPart::Lit(text)),
                StrPart::Expr { start, end, precision, .. } => {
                    let expr = self.parse_interp_expr(start, end, precision.is_some())?;
                    out.push(InterpPart::Expr(expr, precision));
                }
            }
        }
        Ok(Expr { kind: ExprKind::Interp(out), span: tok.span })
    }

    /// Parses the expression of one `${...}` from its source range.
    fn parse_interp_expr(&mut self, start: usize, end: usize, has_format: bool) -> PResult<Expr> {
        let tokens = tokenize_range(self.src, start, end)?;
        let saved_toks = std::mem::replace(&mut self.toks, tokens);
        let saved = (self.pos, self.prev_end, self.ignore_nl, self.no_struct, self.interp_end);
        self.pos = 0;
        self.ignore_nl = true;
        self.no_struct = false;
        let end_desc = if has_format { "':'" } else { "'}'" };
        self.interp_end = Some(end_desc);
        let expr = self.parse_expr()?;
        if self.peek() != &Tok::Eof {
            return Err(self.unexpected(end_desc));
        }
        self.toks = saved_toks;
        (self.pos, self.prev_end, self.ignore_nl, self.no_struct, self.interp_end) = saved;
        Ok(expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ----- a compact S-expression printer for the AST -------------------

    fn block(b: &Block) -> String {
        let stmts: Vec<String> = b.stmts.iter().map(stmt).collect();
        format!("{{{}}}", stmts.join("; "))
    }

    fn fn_decl(f: &FnDecl) -> String {
        let params: Vec<&str> = f.params.iter().map(|p| p.name.name.as_str()).collect();
        let name = f.name.as_ref().map(|n| format!(" {}", n.name)).unwrap_or_default();
        format!("(fn{name} ({}) {})", params.join(" "), block(&f.body))
    }

    fn list(items: &[Expr]) -> String {
        items.iter().map(|e| format!(" {}", expr(e))).collect()
    }

    fn expr(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Nil => "nil".into(),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Int(n) => n.to_string(),
            ExprKind::Float(x) => format!("{x:?}"),
            ExprKind::Str(s) => format!("{s:?}"),
            ExprKind::Interp(parts) => {
                let parts: Vec<String> = parts
                    .iter()
                    .map(|p| match p {
                        InterpPart::Lit(s) => format!("{s:?}"),
                        InterpPart::Expr(e, None) => expr(e),
                        InterpPart::Expr(e, Some(n)) => format!("(fmt {} {n})", expr(e)),
                    })
                    .collect();
                format!("(interp {})", parts.join(" "))
            }
            ExprKind::Name(ident, _) => ident.name.clone(),
            ExprKind::Array(items) => format!("(array{})", list(items)),
            ExprKind::Map(entries) => {
                let entries: String = entries.iter().map(|(k, v)| format!(" ({} {})", expr(k), expr(v))).collect();
                format!("(map{entries})")
            }
            ExprKind::StructLit { name, fields } => {
                let fields: String = fields.iter().map(|(f, v)| format!(" ({} {})", f.name, expr(v))).collect();
                format!("(new {}{fields})", name.name)
            }
            ExprKind::Unary(op, e) => {
                let op = match op {
                    UnOp::Neg => "-",
                    UnOp::Not => "!",
                    UnOp::BitNot => "~",
                };
                format!("({op} {})", expr(e))
            }
            ExprKind::Binary(op, l, r) => format!("({} {} {})", op.symbol(), expr(l), expr(r)),
            ExprKind::And(l, r) => format!("(&& {} {})", expr(l), expr(r)),
            ExprKind::Or(l, r) => format!("(|| {} {})", expr(l), expr(r)),
            ExprKind::Call { callee, args } => format!("(call {}{})", expr(callee), list(args)),
            ExprKind::MethodCall { recv, name, args } => {
                format!("(.{} {}{})", name.name, expr(recv), list(args))
            }
            ExprKind::Index { obj, index } => format!("([] {} {})", expr(obj), expr(index)),
            ExprKind::Field { obj, name } => format!("(. {} {})", expr(obj), name.name),
            ExprKind::If { cond, then, else_ } => match else_ {
                Some(e) => format!("(if {} {} {})", expr(cond), block(then), expr(e)),
                None => format!("(if {} {})", expr(cond), block(then)),
            },
            ExprKind::Block(b) => block(b),
            ExprKind::Fn(f) => fn_decl(f),
        }
    }

    fn stmt(s: &Stmt) -> String {
        match &s.kind {
            StmtKind::Expr(e) => expr(e),
            StmtKind::Let { name, init: Some(init), .. } => format!("(let {} {})", name.name, expr(init)),
            StmtKind::Let { name, init: None, .. } => format!("(let {})", name.name),
            StmtKind::Assign { target, op, value } => {
                format!("({}= {} {})", op.map(|o| o.symbol()).unwrap_or(""), expr(target), expr(value))
            }
            StmtKind::While { cond, body } => format!("(while {} {})", expr(cond), block(body)),
            StmtKind::Loop { body } => format!("(loop {})", block(body)),
            StmtKind::ForRange { var, start, end, inclusive, body, .. } => format!(
                "(for {} {} {} {} {})",
                var.name,
                expr(start),
                if *inclusive { "..=" } else { ".." },
                expr(end),
                block(body)
            ),
            StmtKind::ForIn { var, iter, body, .. } => format!("(for {} in {} {})", var.name, expr(iter), block(body)),
            StmtKind::Break => "break".into(),
            StmtKind::Continue => "continue".into(),
            StmtKind::Return(None) => "(return)".into(),
            StmtKind::Return(Some(e)) => format!("(return {})", expr(e)),
            StmtKind::Fn(f) => fn_decl(f),
            StmtKind::Struct(s) => {
                let fields: String = s.fields.iter().map(|f| format!(" {}", f.name)).collect();
                format!("(struct {}{fields})", s.name.name)
            }
            StmtKind::Impl(i) => {
                let methods: String = i.methods.iter().map(|m| format!(" {}", fn_decl(m))).collect();
                format!("(impl {}{methods})", i.name.name)
            }
            StmtKind::Block(b) => block(b),
        }
    }

    fn p(src: &str) -> String {
        let program = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"));
        let stmts: Vec<String> = program.stmts.iter().map(stmt).collect();
        stmts.join("; ")
    }

    fn e(src: &str) -> CompileError {
        match parse(src) {
            Ok(program) => panic!("{src:?} parsed: {:?}", program.stmts),
            Err(e) => e,
        }
    }

    /// The error message, and the source text its span covers.
    fn es(src: &str) -> (String, String) {
        let err = e(src);
        (err.message, src[err.span.start as usize..err.span.end as usize].to_string())
    }

    // ----- expressions --------------------------------------------------

    #[test]
    fn precedence() {
        assert_eq!(p("1 + 2 * 3"), "(+ 1 (* 2 3))");
        assert_eq!(p("(1 + 2) * 3"), "(* (+ 1 2) 3)");
        assert_eq!(p("a - b - c"), "(- (- a b) c)");
        assert_eq!(p("a / b % c * d"), "(* (% (/ a b) c) d)");
        assert_eq!(p("a || b && c || d"), "(|| (|| a (&& b c)) d)");
        assert_eq!(p("a == b < c"), "(== a (< b c))");
        assert_eq!(p("a < b == c >= d"), "(== (< a b) (>= c d))");
        assert_eq!(p("1 | 2 ^ 3 & 4 << 5 + 6"), "(| 1 (^ 2 (& 3 (<< 4 (+ 5 6)))))");
        assert_eq!(p("a >> b << c"), "(<< (>> a b) c)");
        assert_eq!(p("x == 1 && y != 2 || !z"), "(|| (&& (== x 1) (!= y 2)) (! z))");
        assert_eq!(p("-a.b(c)[d]"), "(- ([] (.b a c) d))");
        assert_eq!(p("!x == y"), "(== (! x) y)");
        assert_eq!(p("~-!x"), "(~ (- (! x)))");
        assert_eq!(p("- -x"), "(- (- x))");
        assert_eq!(p("a.b.c(1, 2).d"), "(. (.c (. a b) 1 2) d)");
        assert_eq!(p("f(1)(2)[3]"), "([] (call (call f 1) 2) 3)");
        assert_eq!(p("a < b && c > d"), "(&& (< a b) (> c d))");
    }

    #[test]
    fn comparisons_do_not_chain() {
        assert_eq!(es("a < b < c").1, "<");
        assert!(e("a == b == c").message.contains("cannot be chained"));
        assert!(e("a < b > c").message.contains("cannot be chained"));
        assert_eq!(p("(a < b) < c"), "(< (< a b) c)");
    }

    #[test]
    fn literals() {
        assert_eq!(
            p("nil; true; false; 1.5; 2.0e-3; 1e9; \"hi\\n\""),
            "nil; true; false; 1.5; 0.002; 1000000000.0; \"hi\\n\""
        );
        assert_eq!(p("[]; [1, 2.5, \"x\"]; [1,]"), "(array); (array 1 2.5 \"x\"); (array 1)");
        assert_eq!(p("0xff + 0b1010 + 1_000_000"), "(+ (+ 255 10) 1000000)");
        assert_eq!(p("9223372036854775807"), "9223372036854775807");
        assert_eq!(p("0x7fffffffffffffff"), "9223372036854775807");
    }

    #[test]
    fn negative_literals_and_i64_min() {
        assert_eq!(p("-9223372036854775808"), "-9223372036854775808");
        assert_eq!(p("x = -9223372036854775808"), "(= x -9223372036854775808)");
        assert_eq!(p("-0x8000000000000000"), "-9223372036854775808");
        assert_eq!(p("- 5"), "-5");
        assert_eq!(p("1 - -5"), "(- 1 -5)");
        assert_eq!(p("-5.abs()"), "(- (.abs 5))");
        assert_eq!(p("-x"), "(- x)");
        assert_eq!(p("-1.5"), "(- 1.5)");
        let program = parse("-9223372036854775808").unwrap();
        let StmtKind::Expr(Expr { kind: ExprKind::Int(n), span }) = &program.stmts[0].kind else { panic!() };
        assert_eq!(*n, i64::MIN);
        assert_eq!(*span, Span::new(0, 20));
        assert_eq!(es("9223372036854775808"), ("integer literal out of range".into(), "9223372036854775808".into()));
        assert_eq!(es("x = -9223372036854775809").0, "integer literal out of range");
        assert_eq!(es("0x8000000000000000").0, "integer literal out of range");
        assert_eq!(es("-9223372036854775808.abs()").0, "integer literal out of range");
        assert_eq!(es("99999999999999999999999").0, "integer literal out of range");
    }

    #[test]
    fn ranges_lex_after_ints() {
        assert_eq!(p("for i in 0..10 {}"), "(for i 0 .. 10 {})");
        assert_eq!(p("for i in 0..=n {}"), "(for i 0 ..= n {})");
        assert_eq!(p("for i in a.len()..b + 1 {}"), "(for i (.len a) .. (+ b 1) {})");
        assert_eq!(p("for i in 0..\n10 {}"), "(for i 0 .. 10 {})");
        assert_eq!(p("for x in [1, 2] { print(x) }"), "(for x in (array 1 2) {(call print x)})");
        assert_eq!(p("for k in m {}"), "(for k in m {})");
    }

    #[test]
    fn calls_methods_fields_and_indexing() {
        assert_eq!(p("f()"), "(call f)");
        assert_eq!(p("f(a, b,)"), "(call f a b)");
        assert_eq!(p("o.m(x)"), "(.m o x)");
        assert_eq!(p("o.f"), "(. o f)");
        assert_eq!(p("(o.f)(x)"), "(call (. o f) x)");
        assert_eq!(p("Point.origin()"), "(.origin Point)");
        assert_eq!(p("self.x"), "(. self x)");
        assert_eq!(p("a[i][j]"), "([] ([] a i) j)");
        assert_eq!(p("m[\"k\"] = 1"), "(= ([] m \"k\") 1)");
    }

    #[test]
    fn interpolation() {
        assert_eq!(p(r#""x = ${x}!""#), r#"(interp "x = " x "!")"#);
        assert_eq!(p(r#""${a + b * 2}""#), "(interp (+ a (* b 2)))");
        assert_eq!(p(r#""${x:.2} and ${y}""#), r#"(interp (fmt x 2) " and " y)"#);
        assert_eq!(p(r#""${m["k"]}""#), r#"(interp ([] m "k"))"#);
        assert_eq!(p(r#""${f({"a":1})}""#), r#"(interp (call f (map ("a" 1))))"#);
        assert_eq!(p(r#""${"in${x}ner"}""#), r#"(interp (interp "in" x "ner"))"#);
        assert_eq!(
            p(r#""${ {"a": 1}["a"]:.1 }""#.replace(":.1 }", ":.1}").as_str()),
            r#"(interp (fmt ([] (map ("a" 1)) "a") 1))"#
        );
        assert_eq!(p(r#""cost: $5 ${n}$""#), r#"(interp "cost: $5 " n "$")"#);
        assert_eq!(p("\"${\n  a +\n  b\n}\""), "(interp (+ a b))");
        assert_eq!(p(r#""${Point { x: 1 }}""#), "(interp (new Point (x 1)))");
        assert_eq!(p(r#""${if a { 1 } else { 2 }}""#), "(interp (if a {1} {2}))");
        assert_eq!(p(r#""${fn(x) { return x }(3)}""#), "(interp (call (fn (x) {(return x)}) 3))");
    }

    #[test]
    fn interpolation_errors_point_into_the_string() {
        assert_eq!(es(r#"let s = "ab ${1 +} cd""#), ("expected expression, found '}'".into(), "".into()));
        assert_eq!(e(r#"let s = "ab ${1 +} cd""#).span, Span::new(17, 17));
        assert_eq!(es(r#"let s = "${a b}""#), ("expected '}', found identifier `b`".into(), "b".into()));
        assert_eq!(es(r#""${}""#).0, "expected expression, found '}'");
        assert_eq!(es(r#""${a b:.2}""#).0, "expected ':', found identifier `b`");
        assert_eq!(es(r#"x = "${ "${ 1 + ) }" }""#), ("expected expression, found ')'".into(), ")".into()));
    }

    // ----- statements and newlines --------------------------------------

    #[test]
    fn statements_end_at_newline_or_semicolon() {
        assert_eq!(p("a = 1\nb = 2"), "(= a 1); (= b 2)");
        assert_eq!(p("a = 1; b = 2;"), "(= a 1); (= b 2)");
        assert_eq!(p(";;\n;a;;;\n\n;"), "a");
        assert_eq!(p(""), "");
        assert_eq!(p("\n\n// only a comment\n"), "");
        assert_eq!(
            es("a = 1 b = 2"),
            ("expected newline or ';' after statement, found identifier `b`".into(), "b".into())
        );
        assert_eq!(es("f() g()").0, "expected newline or ';' after statement, found identifier `g`");
    }

    #[test]
    fn block_statements_need_no_terminator() {
        assert_eq!(
            p("fn f(n) { if n < 2 { return n } return f(n - 1) + f(n - 2) }"),
            "(fn f (n) {(if (< n 2) {(return n)}); (return (+ (call f (- n 1)) (call f (- n 2))))})"
        );
        assert_eq!(p("while a { } b = 1"), "(while a {}); (= b 1)");
        assert_eq!(p("loop { break } x"), "(loop {break}); x");
        assert_eq!(p("for i in 0..3 { } x"), "(for i 0 .. 3 {}); x");
        assert_eq!(p("{ a } { b }"), "{a}; {b}");
        assert_eq!(p("fn a() {} fn b() {}"), "(fn a () {}); (fn b () {})");
        assert_eq!(
            p("struct S { x } impl S { fn m(self) { } } S { x: 1 }"),
            "(struct S x); (impl S (fn m (self) {})); (new S (x 1))"
        );
        assert_eq!(p("if a { b } else { c } d"), "(if a {b} {c}); d");
    }

    #[test]
    fn lines_continue_after_operators_commas_and_brackets() {
        assert_eq!(p("let x = 1 +\n  2"), "(let x (+ 1 2))");
        assert_eq!(p("let x = a &&\n b ||\n c"), "(let x (|| (&& a b) c))");
        assert_eq!(p("let x =\n 5"), "(let x 5)");
        assert_eq!(p("x +=\n 5"), "(+= x 5)");
        assert_eq!(p("f(1,\n  2\n)"), "(call f 1 2)");
        assert_eq!(p("f(\n  1\n  + 2\n)"), "(call f (+ 1 2))");
        assert_eq!(p("let a = [\n 1,\n 2,\n]"), "(let a (array 1 2))");
        assert_eq!(p("let m = {\n \"a\": 1,\n \"b\":\n 2\n}"), "(let m (map (\"a\" 1) (\"b\" 2)))");
        assert_eq!(p("let x = (1\n + 2)"), "(let x (+ 1 2))");
        assert_eq!(p("a[\n 1\n]"), "([] a 1)");
        assert_eq!(p("o.\n  f"), "(. o f)");
        // A line starting with `.` continues a method chain.
        assert_eq!(p("xs\n  .push(1)\n  .push(2)"), "(.push (.push xs 1) 2)");
        // A line that starts with a binary operator does not continue.
        assert_eq!(es("let x = 1\n+ 2"), ("expected expression, found '+'".into(), "+".into()));
        assert_eq!(p("let x = 1\n-2"), "(let x 1); -2");
        // A call's `(` must be on the same line.
        assert_eq!(p("f\n(1)"), "f; 1");
    }

    #[test]
    fn else_on_the_next_line() {
        assert_eq!(p("if a { 1 }\nelse { 2 }"), "(if a {1} {2})");
        assert_eq!(p("if a {\n 1\n}\n\n// c\nelse\n{\n 2\n}"), "(if a {1} {2})");
        assert_eq!(p("if a { 1 } else if b { 2 }\nelse if c { 3 } else { 4 }"), "(if a {1} (if b {2} (if c {3} {4})))");
        assert_eq!(p("let m = if a > b { a }\nelse { b }"), "(let m (if (> a b) {a} {b}))");
        assert_eq!(p("if a { 1 }\nb"), "(if a {1}); b");
        assert_eq!(p("if a\n{\n 1\n}"), "(if a {1})");
        assert_eq!(es("if a { 1 };\nelse { 2 }").0, "expected expression, found `else`");
    }

    #[test]
    fn if_expressions() {
        assert_eq!(p("let m = if a > b { a } else { b }"), "(let m (if (> a b) {a} {b}))");
        assert_eq!(p("f(if a { 1 } else { 2 })"), "(call f (if a {1} {2}))");
        assert_eq!(p("let x = 1 + if a { 1 } else { 2 }"), "(let x (+ 1 (if a {1} {2})))");
        assert_eq!(p("let x = if a { 1 } else if b { 2 } else { 3 }"), "(let x (if a {1} (if b {2} {3})))");
        let program = parse("let x = if a { 1 } else { 2 }").unwrap();
        let StmtKind::Let { init: Some(init), .. } = &program.stmts[0].kind else { panic!() };
        let ExprKind::If { else_: Some(else_), .. } = &init.kind else { panic!() };
        assert!(matches!(else_.kind, ExprKind::Block(_)));
        assert_eq!(init.span, Span::new(8, 29));
    }

    #[test]
    fn map_versus_block() {
        assert_eq!(p("{}"), "{}");
        assert_eq!(p("{ x = 1 }"), "{(= x 1)}");
        assert_eq!(p("let m = {}"), "(let m (map))");
        assert_eq!(p("let m = {\"a\": 1, 2: true,}"), "(let m (map (\"a\" 1) (2 true)))");
        assert_eq!(p("f({})"), "(call f (map))");
        assert_eq!(p("x = {k: v}"), "(= x (map (k v)))");
        assert_eq!(p("return {}").as_str(), "(return (map))");
        assert_eq!(p("[{}, {1: 2}]"), "(array (map) (map (1 2)))");
        assert_eq!(es("{\"a\": 1}").0, "expected newline or ';' after statement, found ':'");
        assert_eq!(es("let m = {1 2}").0, "expected ':', found integer `2`");
    }

    #[test]
    fn struct_literals_and_heads() {
        assert_eq!(p("let p = Point { x: 1.0, y: 2 }"), "(let p (new Point (x 1.0) (y 2)))");
        assert_eq!(p("let p = Point {\n x: 1,\n y: 2,\n}"), "(let p (new Point (x 1) (y 2)))");
        assert_eq!(p("let p = P { x, y }"), "(let p (new P (x x) (y y)))");
        assert_eq!(p("let p = P {}"), "(let p (new P))");
        assert_eq!(p("if x { y }"), "(if x {y})");
        assert_eq!(p("while x { y }"), "(while x {y})");
        assert_eq!(p("for x in xs { y }"), "(for x in xs {y})");
        assert_eq!(p("for i in 0..n { y }"), "(for i 0 .. n {y})");
        assert_eq!(p("while p.x < n { }"), "(while (< (. p x) n) {})");
        assert_eq!(p("if (P { x: 1 }).x { }"), "(if (. (new P (x 1)) x) {})");
        assert_eq!(p("if f(P { x: 1 }) { }"), "(if (call f (new P (x 1))) {})");
        assert_eq!(p("if a == b { P { x: 1 } }"), "(if (== a b) {(new P (x 1))})");
        assert_eq!(p("if a { } else { P { x: 1 } }"), "(if a {} {(new P (x 1))})");
        assert_eq!(p("if [P {x: 1}][0].x { }"), "(if (. ([] (array (new P (x 1))) 0) x) {})");
    }

    #[test]
    fn assignments() {
        assert_eq!(p("x = 1"), "(= x 1)");
        assert_eq!(p("a[i] = e"), "(= ([] a i) e)");
        assert_eq!(p("o.f = e"), "(= (. o f) e)");
        assert_eq!(p("x += 1; x -= 1; x *= 2; x /= 2; x %= 3"), "(+= x 1); (-= x 1); (*= x 2); (/= x 2); (%= x 3)");
        assert_eq!(p("a[i].f += g(1)"), "(+= (. ([] a i) f) (call g 1))");
        assert_eq!(es("1 = 2"), ("invalid assignment target".into(), "1".into()));
        assert_eq!(es("f() = 2"), ("invalid assignment target".into(), "f()".into()));
        assert_eq!(es("o.m() += 2").0, "invalid assignment target");
        assert_eq!(es("a + b = 2"), ("invalid assignment target".into(), "a + b".into()));
        assert_eq!(es("x = y = 2").0, "expected newline or ';' after statement, found '='");
        assert_eq!(es("let x = 1 = 2").0, "expected newline or ';' after statement, found '='");
    }

    #[test]
    fn declarations_and_type_annotations() {
        assert_eq!(p("let x\nlet y = 2"), "(let x); (let y 2)");
        assert_eq!(p("let n: Int = 3"), "(let n 3)");
        assert_eq!(p("let a: Array<Int> = []"), "(let a (array))");
        assert_eq!(p("let m: Map<String, Array<Int>> = {}"), "(let m (map))");
        assert_eq!(p("let m: Map<String, Map<Int, Array<Int>>>"), "(let m)");
        assert_eq!(p("let f: fn(Int, Float) -> Int = g"), "(let f g)");
        assert_eq!(p("let v: nil = nil"), "(let v nil)");
        assert_eq!(p("fn f(a: Int, b) -> Float { return a }"), "(fn f (a b) {(return a)})");
        assert_eq!(p("fn f(\n a,\n b: Array<Int>,\n) {}"), "(fn f (a b) {})");
        assert_eq!(p("let f = fn(x) { x + 1 }"), "(let f (fn (x) {(+ x 1)}))");
        assert_eq!(p("let f = fn(x) -> Int {\n return x\n}"), "(let f (fn (x) {(return x)}))");
        assert_eq!(p("fn(){}()"), "(call (fn () {}))");
        assert_eq!(es("let = 3").0, "expected a variable name after `let`, found '='");
        assert_eq!(es("let x: = 3").0, "expected a type, found '='");
        assert_eq!(es("let fn = 3").0, "expected a variable name after `let`, found `fn`");
        assert_eq!(es("fn f(a, a) {}"), ("duplicate parameter `a`".into(), "a".into()));
        assert_eq!(es("fn f(a b) {}").0, "expected ',' or ')', found identifier `b`");
        assert_eq!(es("fn f(self) {}").0, "`self` parameter is only allowed in methods");
        assert_eq!(es("let f = fn g() {}").0, "expected '(' (a function expression has no name), found identifier `g`");
    }

    #[test]
    fn structs_and_impls() {
        assert_eq!(p("struct Point { x, y: Float }"), "(struct Point x y)");
        assert_eq!(p("struct Point {\n x: Int\n y\n\n z,\n}"), "(struct Point x y z)");
        assert_eq!(p("struct E {}"), "(struct E)");
        assert_eq!(
            p("impl Point {\n fn norm(self) { return self.x }\n fn origin() { } fn f(self, a) {} }"),
            "(impl Point (fn norm (self) {(return (. self x))}) (fn origin () {}) (fn f (self a) {}))"
        );
        assert_eq!(es("struct P { x y }").0, "expected ',' or '}', found identifier `y`");
        assert_eq!(es("struct P { 1 }").0, "expected a field name or '}', found integer `1`");
        assert_eq!(es("impl P { let x = 1 }").0, "expected `fn` or '}', found `let`");
        assert_eq!(es("impl P { fn m(a, self) {} }").0, "`self` must be the first parameter");
    }

    #[test]
    fn returns() {
        assert_eq!(p("fn f() { return }"), "(fn f () {(return)})");
        assert_eq!(p("fn f() { return\n 1 }"), "(fn f () {(return); 1})");
        assert_eq!(p("fn f() { return; }"), "(fn f () {(return)})");
        assert_eq!(p("fn f() { return 1 + 2 }"), "(fn f () {(return (+ 1 2))})");
        assert_eq!(p("fn f() { if a { return } return 1 }"), "(fn f () {(if a {(return)}); (return 1)})");
    }

    #[test]
    fn decl_ids_are_dense() {
        let src = "let a = 1\nfn top(p, q) {\n let b = fn(r) { return r }\n fn inner(s) { }\n for i in 0..3 { }\n}\nimpl S { fn m(self, t) { } }\nfor x in xs { let c }";
        let program = parse(src).unwrap();
        // a p q b r inner s i self t x c
        assert_eq!(program.decl_count, 12);
        assert_eq!(program.captured, vec![false; 12]);
        let StmtKind::Let { decl, .. } = &program.stmts[0].kind else { panic!() };
        assert_eq!(*decl, DeclId(0));
        let StmtKind::Fn(top) = &program.stmts[1].kind else { panic!() };
        assert_eq!(top.decl, None);
        assert_eq!(top.params.iter().map(|p| p.decl).collect::<Vec<_>>(), vec![DeclId(1), DeclId(2)]);
        let StmtKind::Fn(inner) = &top.body.stmts[1].kind else { panic!() };
        assert_eq!(inner.decl, Some(DeclId(5)));
        assert_eq!(inner.params[0].decl, DeclId(6));
        let StmtKind::Impl(imp) = &program.stmts[2].kind else { panic!() };
        assert_eq!(imp.methods[0].decl, None);
        assert!(imp.methods[0].has_self());
        assert_eq!(imp.methods[0].params[0].decl, DeclId(8));
        let StmtKind::ForIn { decl, body, .. } = &program.stmts[3].kind else { panic!() };
        assert_eq!(*decl, DeclId(10));
        let StmtKind::Let { decl, .. } = &body.stmts[0].kind else { panic!() };
        assert_eq!(*decl, DeclId(11));
        // Nested fns in top-level blocks are locals of the chunk.
        let program = parse("if a { fn g() {} }").unwrap();
        let StmtKind::Expr(Expr { kind: ExprKind::If { then, .. }, .. }) = &program.stmts[0].kind else { panic!() };
        let StmtKind::Fn(g) = &then.stmts[0].kind else { panic!() };
        assert_eq!(g.decl, Some(DeclId(0)));
    }

    #[test]
    fn names_start_unresolved() {
        let program = parse("x").unwrap();
        let StmtKind::Expr(Expr { kind: ExprKind::Name(_, cell), .. }) = &program.stmts[0].kind else { panic!() };
        assert_eq!(cell.get(), Resolution::Unresolved);
    }

    #[test]
    fn spans() {
        let src = "let x = foo(1, 2)\n  y.z = [a]";
        let program = parse(src).unwrap();
        let text = |s: Span| &src[s.start as usize..s.end as usize];
        assert_eq!(text(program.stmts[0].span), "let x = foo(1, 2)");
        assert_eq!(text(program.stmts[1].span), "y.z = [a]");
        let StmtKind::Let { init: Some(init), name, .. } = &program.stmts[0].kind else { panic!() };
        assert_eq!(text(init.span), "foo(1, 2)");
        assert_eq!(text(name.span), "x");
        let StmtKind::Assign { target, value, .. } = &program.stmts[1].kind else { panic!() };
        assert_eq!(text(target.span), "y.z");
        assert_eq!(text(value.span), "[a]");
        let program = parse("fn f(a) {\n return a\n}").unwrap();
        let StmtKind::Fn(f) = &program.stmts[0].kind else { panic!() };
        assert_eq!(text_of("fn f(a) {\n return a\n}", f.span), "fn f(a) {\n return a\n}");
        assert_eq!(text_of("fn f(a) {\n return a\n}", f.body.span), "{\n return a\n}");
        assert_eq!(text_of("(1 + 2)", parse("(1 + 2)").unwrap().stmts[0].span), "(1 + 2)");
    }

    fn text_of(src: &str, s: Span) -> &str {
        &src[s.start as usize..s.end as usize]
    }

    #[test]
    fn error_messages() {
        assert_eq!(es("f(1, 2"), ("expected ',' or ')', found end of file".into(), "".into()));
        assert_eq!(es("fn f() {"), ("expected '}', found end of file".into(), "".into()));
        assert_eq!(e("fn f() {\n x").span, Span::new(11, 11));
        assert_eq!(es("f(1, )x"), ("expected newline or ';' after statement, found identifier `x`".into(), "x".into()));
        assert_eq!(es("f(,)"), ("expected expression, found ','".into(), ",".into()));
        assert_eq!(es("x = )"), ("expected expression, found ')'".into(), ")".into()));
        assert_eq!(es("}"), ("expected expression, found '}'".into(), "}".into()));
        assert_eq!(es("x +"), ("expected expression, found end of file".into(), "".into()));
        assert_eq!(es("x + \n"), ("expected expression, found end of file".into(), "".into()));
        assert_eq!(es("[1, 2"), ("expected ',' or ']', found end of file".into(), "".into()));
        assert_eq!(es("a[1"), ("expected ']', found end of file".into(), "".into()));
        assert_eq!(es("(1"), ("expected ')', found end of file".into(), "".into()));
        assert_eq!(es("if x\ny = 1"), ("expected '{', found identifier `y`".into(), "y".into()));
        assert_eq!(es("while {}").0, "expected '{', found end of file");
        assert_eq!(es("for 1 in x {}").0, "expected a loop variable name after `for`, found integer `1`");
        assert_eq!(es("for i x {}").0, "expected 'in', found identifier `x`");
        assert_eq!(es("o.1").0, "expected a field or method name after '.', found integer `1`");
        assert_eq!(es("let x = 1 ..").0, "expected newline or ';' after statement, found '..'");
        assert_eq!(es("x = @").0, "unexpected character `@`");
        assert_eq!(es("x = a\n  .").0, "expected a field or method name after '.', found end of file");
        assert_eq!(es("let s = \"abc").0, "unterminated string");
    }

    // ----- nesting limits -----------------------------------------------

    fn too_deep(src: &str) {
        let err = e(src);
        assert_eq!(err.message, "nesting too deep", "{}", &src[..src.len().min(40)]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let n = 100_000;
        too_deep(&"(".repeat(n));
        too_deep(&format!("{}1{}", "(".repeat(n), ")".repeat(n)));
        too_deep(&"[".repeat(n));
        too_deep(&"{".repeat(n));
        too_deep(&format!("x = {}", "{".repeat(n)));
        too_deep(&format!("x = {}1", "-".repeat(n)));
        too_deep(&format!("x = {}1", "!".repeat(n)));
        too_deep(&"if a { ".repeat(n));
        too_deep(&format!("x = {}1", "fn() { return ".repeat(n)));
        too_deep(&format!("x = 1{}", " + 1".repeat(n)));
        too_deep(&format!("x = a{}", ".b".repeat(n)));
        too_deep(&format!("x = f{}", "()".repeat(n)));
        too_deep(&format!("x = a{}", "[0]".repeat(n)));
        too_deep(&format!("x = 1{}", " ** 1".replace("**", "-").repeat(n)));
        too_deep(&format!("if a {{}}{}", " else if a {}".repeat(n)));
        // Unterminated: the lexer reports it (without recursing).
        assert_eq!(e(&format!("{}1", "\"${".repeat(n))).message, "unterminated string");
        // (Each interpolation level is re-lexed, so keep this one smaller.)
        too_deep(&format!("{}1{}", "\"${".repeat(5_000), "}\"".repeat(5_000)));
        too_deep(&format!("let x: {}Int", "Array<".repeat(n)));
        too_deep(&format!("x = a{}", "(1, 2)[0].f".repeat(n)));
        // Mixed nesting of chains inside parentheses inside chains.
        too_deep(&format!("x = {}", "a + (b + (".repeat(n)));
        too_deep(&format!("x = {}1{}", "(a + ".repeat(n), " + b)".repeat(n)));
    }

    #[test]
    fn moderate_nesting_is_fine() {
        parse(&format!("x = {}1{}", "(".repeat(100), ")".repeat(100))).unwrap();
        parse(&format!("x = 1{}", " + 1".repeat(150))).unwrap();
        parse(&format!("x = {}1{}", "[".repeat(100), "]".repeat(100))).unwrap();
        parse(&format!("fn f() {{ {} }}", "if a { ".repeat(60) + &"}".repeat(60))).unwrap();
        parse(&format!("x = [{}]", "1, ".repeat(100_000))).unwrap();
        parse(&"x = 1\n".repeat(100_000)).unwrap();
    }

    thread_local! {
        static STACK_LOW: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }

    /// Called by `enter` in test builds: records the lowest stack address seen.
    #[inline(never)]
    pub(super) fn record_stack() {
        let marker = std::hint::black_box(0u8);
        let addr = &marker as *const u8 as usize;
        STACK_LOW.with(|low| low.set(low.get().min(addr)));
    }

    /// Stack bytes used by parsing `src` (measured at `enter` calls).
    fn stack_used(src: &str) -> (usize, PResult<Program>) {
        let marker = std::hint::black_box(0u8);
        let base = &marker as *const u8 as usize;
        STACK_LOW.with(|low| low.set(usize::MAX));
        let result = parse(src);
        let low = STACK_LOW.with(|low| low.get());
        (base.saturating_sub(low), result)
    }

    /// Parsing right up to the limit, for every kind of nesting, must fit
    /// comfortably in a test thread's 2 MiB stack in a debug build.
    #[test]
    fn the_limit_fits_in_a_small_stack() {
        let shapes: &[(&str, &str)] = &[
            ("(", ")"),
            ("[", "]"),
            ("-", ""),
            ("{1: ", "}"),
            ("{", ": 1}"),
            ("f(", ")"),
            ("a.b(", ")"),
            ("a[", "]"),
            ("P { x: ", " }"),
            ("if a { ", " }"),
            ("if (", ") {}"),
            ("if a {} else { ", " }"),
            ("fn() { while a { ", " } }"),
            ("fn() { for i in 0..3 { x = ", " } }"),
            ("fn() { { x = ", " } }"),
            ("fn() { return ", " }"),
            ("fn() { ", " }"),
            ("fn(a) { fn g() { return ", " } }"),
            ("a + (", ")"),
            ("1 || 1 && 1 == 1 < 1 | 1 ^ 1 & 1 << 1 + 1 * (", ")"),
            ("1 * 1 + 1 << 1 & 1 ^ 1 | 1 < 1 == 1 && 1 || (", ")"),
            ("\"${", "}\""),
            ("\"a${ f(", ") }b\""),
        ];
        let mut worst = 0;
        for (open, close) in shapes {
            // Some nesting is fine...
            let src = format!("x = {}1{}", open.repeat(10), close.repeat(10));
            parse(&src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            // ...and past the limit it is an error, found with bounded stack.
            let depth = MAX_DEPTH as usize + 1;
            let src = format!("x = {}1{}", open.repeat(depth), close.repeat(depth));
            let (used, result) = stack_used(&src);
            assert_eq!(result.unwrap_err().message, "nesting too deep", "{open:?}");
            assert!(used < 1024 * 1024, "{open:?}: {used} bytes of stack");
            worst = worst.max(used);
        }
        eprintln!("worst stack use at the nesting limit: {worst} bytes");
    }
}
