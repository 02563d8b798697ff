//! The resolver: binds every name use to a local declaration or a global,
//! marks captured locals, and reports the name-related compile errors.
//!
//! Scoping rules:
//! - Locals are `let`s inside any block or function (a `let` in a block of a
//!   top-level `if`/`while`/`for`/`{}` is a local of the top-level chunk),
//!   parameters (including `self`), loop variables, and nested named `fn`s.
//!   A local is visible from the statement after its declaration to the end
//!   of its block; a `let` initializer sees the outer binding. A nested `fn`
//!   is bound before its body, so it can call itself.
//! - Globals are top-level `let`s, top-level `fn`s, structs and the
//!   [`BUILTINS`]; they are visible in the whole file. A user global may
//!   shadow a built-in.
//! - A use of a local declared in an enclosing *function* marks it captured.
//!
//! Choices made where the language page is silent:
//! - A nested `fn` is visible from its own statement on (no hoisting inside
//!   blocks; only top-level names are visible in the whole file).
//! - Assigning to a built-in is an error like assigning to a top-level `fn`
//!   ("cannot assign to built-in function `print`") unless the user shadowed
//!   it with a top-level `let`.
//! - Two `impl` blocks for one struct may not define the same method.
//! - Struct names in literals and `impl`s always refer to top-level structs,
//!   even where a local of the same name is in scope.
//! - `impl` outside the top level reports the same error as `struct`.

use std::collections::{HashMap, HashSet};

use super::ast::*;

/// The built-in global functions.
pub const BUILTINS: &[&str] = &[
    "print", "len", "str", "int", "float", "type", "abs", "min", "max", "sqrt", "floor", "ceil", "sin", "cos", "pow",
    "array", "chr", "clock", "assert", "error",
];

/// Resolves all names of `program` in place (see the module docs).
pub fn resolve(program: &mut Program) -> Result<(), CompileError> {
    resolve_with(program, &Known::default())
}

/// Globals that exist before this program: earlier REPL input, host values.
#[derive(Default, Debug)]
pub struct Known {
    /// Name and whether it is a constant function (assigning to it is an error).
    pub globals: Vec<(String, bool)>,
    /// Struct name and its fields.
    pub structs: Vec<(String, Vec<String>)>,
}

/// `resolve` for a program that runs after others in the same VM.
pub fn resolve_with(program: &mut Program, known: &Known) -> Result<(), CompileError> {
    let Program { stmts, decl_count, captured } = program;
    if captured.len() < *decl_count as usize {
        captured.resize(*decl_count as usize, false);
    }
    let mut resolver = Resolver {
        globals: HashMap::new(),
        structs: HashMap::new(),
        scopes: Vec::new(),
        level: 0,
        loop_depth: 0,
        captured,
    };
    for (name, is_fn) in &known.globals {
        resolver.globals.insert(name.clone(), if *is_fn { Global::Fn } else { Global::Let });
    }
    for (name, fields) in &known.structs {
        resolver.globals.insert(name.clone(), Global::Struct);
        resolver.structs.insert(name.clone(), fields.clone());
    }
    resolver.declare_globals(stmts)?;
    resolver.stmts(stmts, true)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Global {
    Let,
    Fn,
    Struct,
    Builtin,
}

struct Scope {
    names: HashMap<String, DeclId>,
    /// Function nesting level of the declarations in this scope (0 = top-level chunk).
    level: u32,
}

struct Resolver<'a> {
    globals: HashMap<String, Global>,
    /// Struct name to declared fields.
    structs: HashMap<String, Vec<String>>,
    scopes: Vec<Scope>,
    /// Current function nesting level.
    level: u32,
    /// Loops enclosing the current point within the current function.
    loop_depth: u32,
    captured: &'a mut Vec<bool>,
}

fn err<T>(message: String, span: Span) -> Result<T, CompileError> {
    Err(CompileError::new(message, span))
}

impl Resolver<'_> {
    /// Pass 1: top-level names, struct fields and impl methods.
    fn declare_globals(&mut self, stmts: &[Stmt]) -> Result<(), CompileError> {
        for name in BUILTINS {
            self.globals.entry((*name).to_string()).or_insert(Global::Builtin);
        }
        let mut user: HashSet<String> = HashSet::new();
        let mut define = |globals: &mut HashMap<String, Global>, name: &Ident, kind: Global| {
            if !user.insert(name.name.clone()) {
                return err(format!("duplicate definition of `{}`", name.name), name.span);
            }
            globals.insert(name.name.clone(), kind);
            Ok(())
        };
        for stmt in stmts {
            match &stmt.kind {
                StmtKind::Let { name, .. } => define(&mut self.globals, name, Global::Let)?,
                StmtKind::Fn(f) => {
                    if let Some(name) = &f.name {
                        define(&mut self.globals, name, Global::Fn)?;
                    }
                }
                StmtKind::Struct(s) => {
                    define(&mut self.globals, &s.name, Global::Struct)?;
                    let mut fields: Vec<String> = Vec::with_capacity(s.fields.len());
                    for field in &s.fields {
                        if fields.contains(&field.name) {
                            return err(format!("duplicate field `{}`", field.name), field.span);
                        }
                        fields.push(field.name.clone());
                    }
                    self.structs.insert(s.name.name.clone(), fields);
                }
                _ => {}
            }
        }
        let mut methods: HashSet<(&str, &str)> = HashSet::new();
        for stmt in stmts {
            if let StmtKind::Impl(imp) = &stmt.kind {
                if !self.structs.contains_key(&imp.name.name) {
                    return err(format!("unknown struct `{}`", imp.name.name), imp.name.span);
                }
                for method in &imp.methods {
                    let Some(name) = &method.name else { continue };
                    if !methods.insert((imp.name.name.as_str(), name.name.as_str())) {
                        return err(format!("duplicate method `{}`", name.name), name.span);
                    }
                }
            }
        }
        Ok(())
    }

    // ----- scopes -------------------------------------------------------

    fn push_scope(&mut self) {
        self.scopes.push(Scope { names: HashMap::new(), level: self.level });
    }

    fn pop_scope(&mut self) {
        self.scopes.pop();
    }

    fn declare(&mut self, name: &Ident, decl: DeclId) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.names.insert(name.name.clone(), decl);
        }
    }

    /// Resolves a name use, marking captures; `None` if it is not a local.
    fn lookup_local(&mut self, name: &str) -> Option<DeclId> {
        for scope in self.scopes.iter().rev() {
            if let Some(&decl) = scope.names.get(name) {
                if scope.level < self.level {
                    if let Some(flag) = self.captured.get_mut(decl.0 as usize) {
                        *flag = true;
                    }
                }
                return Some(decl);
            }
        }
        None
    }

    /// Resolves a `Name` expression; returns the global kind when it is a global.
    fn name(&mut self, ident: &Ident, cell: &std::cell::Cell<Resolution>) -> Result<Option<Global>, CompileError> {
        if let Some(decl) = self.lookup_local(&ident.name) {
            cell.set(Resolution::Local(decl));
            return Ok(None);
        }
        match self.globals.get(&ident.name) {
            Some(&kind) => {
                cell.set(Resolution::Global);
                Ok(Some(kind))
            }
            None => err(format!("undeclared name `{}`", ident.name), ident.span),
        }
    }

    // ----- statements ---------------------------------------------------

    fn stmts(&mut self, stmts: &[Stmt], top: bool) -> Result<(), CompileError> {
        for stmt in stmts {
            self.stmt(stmt, top)?;
        }
        Ok(())
    }

    fn block(&mut self, block: &Block) -> Result<(), CompileError> {
        self.push_scope();
        self.stmts(&block.stmts, false)?;
        self.pop_scope();
        Ok(())
    }

    fn loop_body(&mut self, block: &Block) -> Result<(), CompileError> {
        self.loop_depth += 1;
        self.block(block)?;
        self.loop_depth -= 1;
        Ok(())
    }

    fn stmt(&mut self, stmt: &Stmt, top: bool) -> Result<(), CompileError> {
        match &stmt.kind {
            StmtKind::Expr(e) => self.expr(e),
            StmtKind::Let { name, decl, init } => {
                if let Some(init) = init {
                    self.expr(init)?;
                }
                if !top {
                    self.declare(name, *decl);
                }
                Ok(())
            }
            StmtKind::Assign { target, value, .. } => {
                if let ExprKind::Name(ident, cell) = &target.kind {
                    let message = match self.name(ident, cell)? {
                        Some(Global::Fn) => Some("function"),
                        Some(Global::Struct) => Some("struct"),
                        Some(Global::Builtin) => Some("built-in function"),
                        _ => None,
                    };
                    if let Some(what) = message {
                        return err(format!("cannot assign to {what} `{}`", ident.name), ident.span);
                    }
                } else {
                    self.expr(target)?;
                }
                self.expr(value)
            }
            StmtKind::While { cond, body } => {
                self.expr(cond)?;
                self.loop_body(body)
            }
            StmtKind::Loop { body } => self.loop_body(body),
            StmtKind::ForRange { var, decl, start, end, body, .. } => {
                self.expr(start)?;
                self.expr(end)?;
                self.for_body(var, *decl, body)
            }
            StmtKind::ForIn { var, decl, iter, body } => {
                self.expr(iter)?;
                self.for_body(var, *decl, body)
            }
            StmtKind::Break | StmtKind::Continue => {
                if self.loop_depth == 0 {
                    let word = if matches!(stmt.kind, StmtKind::Break) { "break" } else { "continue" };
                    return err(format!("`{word}` outside of a loop"), stmt.span);
                }
                Ok(())
            }
            StmtKind::Return(value) => {
                if self.level == 0 {
                    return err("`return` outside of a function".to_string(), stmt.span);
                }
                match value {
                    Some(v) => self.expr(v),
                    None => Ok(()),
                }
            }
            StmtKind::Fn(f) => {
                if !top {
                    if let (Some(name), Some(decl)) = (&f.name, f.decl) {
                        self.declare(name, decl);
                    }
                }
                self.function(f)
            }
            StmtKind::Struct(s) => {
                if !top {
                    return err("struct declarations are only allowed at top level".to_string(), s.name.span);
                }
                Ok(())
            }
            StmtKind::Impl(imp) => {
                if !top {
                    return err("struct declarations are only allowed at top level".to_string(), imp.name.span);
                }
                for method in &imp.methods {
                    self.function(method)?;
                }
                Ok(())
            }
            StmtKind::Block(block) => self.block(block),
        }
    }

    fn for_body(&mut self, var: &Ident, decl: DeclId, body: &Block) -> Result<(), CompileError> {
        self.push_scope();
        self.declare(var, decl);
        let result = self.loop_body(body);
        self.pop_scope();
        result
    }

    fn function(&mut self, f: &FnDecl) -> Result<(), CompileError> {
        let saved_loops = std::mem::replace(&mut self.loop_depth, 0);
        self.level += 1;
        self.push_scope();
        for param in &f.params {
            self.declare(&param.name, param.decl);
        }
        self.block(&f.body)?;
        self.pop_scope();
        self.level -= 1;
        self.loop_depth = saved_loops;
        Ok(())
    }

    // ----- expressions --------------------------------------------------

    fn expr(&mut self, expr: &Expr) -> Result<(), CompileError> {
        match &expr.kind {
            ExprKind::Nil | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) => Ok(()),
            ExprKind::Interp(parts) => {
                for part in parts {
                    if let InterpPart::Expr(e, _) = part {
                        self.expr(e)?;
                    }
                }
                Ok(())
            }
            ExprKind::Name(ident, cell) => self.name(ident, cell).map(|_| ()),
            ExprKind::Array(items) => self.exprs(items),
            ExprKind::Map(entries) => {
                for (k, v) in entries {
                    self.expr(k)?;
                    self.expr(v)?;
                }
                Ok(())
            }
            ExprKind::StructLit { name, fields } => {
                let Some(declared) = self.structs.get(&name.name) else {
                    return err(format!("unknown struct `{}`", name.name), name.span);
                };
                let mut seen: Vec<&str> = Vec::with_capacity(fields.len());
                for (field, _) in fields {
                    if !declared.contains(&field.name) {
                        return err(format!("unknown field `{}` in struct `{}`", field.name, name.name), field.span);
                    }
                    if seen.contains(&field.name.as_str()) {
                        return err(format!("duplicate field `{}`", field.name), field.span);
                    }
                    seen.push(&field.name);
                }
                for (_, value) in fields {
                    self.expr(value)?;
                }
                Ok(())
            }
            ExprKind::Unary(_, e) => self.expr(e),
            ExprKind::Binary(_, l, r) | ExprKind::And(l, r) | ExprKind::Or(l, r) => {
                self.expr(l)?;
                self.expr(r)
            }
            ExprKind::Call { callee, args } => {
                self.expr(callee)?;
                self.exprs(args)
            }
            ExprKind::MethodCall { recv, args, .. } => {
                self.expr(recv)?;
                self.exprs(args)
            }
            ExprKind::Index { obj, index } => {
                self.expr(obj)?;
                self.expr(index)
            }
            ExprKind::Field { obj, .. } => self.expr(obj),
            ExprKind::If { cond, then, else_ } => {
                self.expr(cond)?;
                self.block(then)?;
                match else_ {
                    Some(e) => self.expr(e),
                    None => Ok(()),
                }
            }
            ExprKind::Block(block) => self.block(block),
            ExprKind::Fn(f) => self.function(f),
        }
    }

    fn exprs(&mut self, exprs: &[Expr]) -> Result<(), CompileError> {
        for e in exprs {
            self.expr(e)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::*;

    fn resolved(src: &str) -> Program {
        let mut program = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"));
        resolve(&mut program).unwrap_or_else(|e| panic!("{src:?}: {e:?}"));
        program
    }

    fn error(src: &str) -> (String, String) {
        let mut program = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"));
        let err = resolve(&mut program).expect_err(src);
        (err.message, src[err.span.start as usize..err.span.end as usize].to_string())
    }

    /// Every name use in source order, as `name=G` (global) or `name=L<decl>`.
    fn uses(program: &Program) -> String {
        fn expr(e: &Expr, out: &mut Vec<String>) {
            match &e.kind {
                ExprKind::Name(ident, cell) => out.push(match cell.get() {
                    Resolution::Global => format!("{}=G", ident.name),
                    Resolution::Local(d) => format!("{}=L{}", ident.name, d.0),
                    Resolution::Unresolved => format!("{}=?", ident.name),
                }),
                ExprKind::Interp(parts) => {
                    for part in parts {
                        if let InterpPart::Expr(e, _) = part {
                            expr(e, out);
                        }
                    }
                }
                ExprKind::Array(items) => items.iter().for_each(|e| expr(e, out)),
                ExprKind::Map(entries) => entries.iter().for_each(|(k, v)| {
                    expr(k, out);
                    expr(v, out)
                }),
                ExprKind::StructLit { fields, .. } => fields.iter().for_each(|(_, v)| expr(v, out)),
                ExprKind::Unary(_, e) | ExprKind::Field { obj: e, .. } => expr(e, out),
                ExprKind::Binary(_, l, r)
                | ExprKind::And(l, r)
                | ExprKind::Or(l, r)
                | ExprKind::Index { obj: l, index: r } => {
                    expr(l, out);
                    expr(r, out);
                }
                ExprKind::Call { callee: e, args } | ExprKind::MethodCall { recv: e, args, .. } => {
                    expr(e, out);
                    args.iter().for_each(|a| expr(a, out));
                }
                ExprKind::If { cond, then, else_ } => {
                    expr(cond, out);
                    block(then, out);
                    if let Some(e) = else_ {
                        expr(e, out);
                    }
                }
                ExprKind::Block(b) => block(b, out),
                ExprKind::Fn(f) => block(&f.body, out),
                _ => {}
            }
        }
        fn block(b: &Block, out: &mut Vec<String>) {
            b.stmts.iter().for_each(|s| stmt(s, out));
        }
        fn stmt(s: &Stmt, out: &mut Vec<String>) {
            match &s.kind {
                StmtKind::Expr(e) | StmtKind::Return(Some(e)) | StmtKind::Let { init: Some(e), .. } => expr(e, out),
                StmtKind::Assign { target, value, .. } => {
                    expr(target, out);
                    expr(value, out);
                }
                StmtKind::While { cond, body } => {
                    expr(cond, out);
                    block(body, out);
                }
                StmtKind::Loop { body } | StmtKind::Block(body) => block(body, out),
                StmtKind::ForRange { start, end, body, .. } => {
                    expr(start, out);
                    expr(end, out);
                    block(body, out);
                }
                StmtKind::ForIn { iter, body, .. } => {
                    expr(iter, out);
                    block(body, out);
                }
                StmtKind::Fn(f) => block(&f.body, out),
                StmtKind::Impl(i) => i.methods.iter().for_each(|m| block(&m.body, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        program.stmts.iter().for_each(|s| stmt(s, &mut out));
        out.join(" ")
    }

    fn captured(program: &Program) -> Vec<u32> {
        (0..program.decl_count).filter(|&d| program.captured[d as usize]).collect()
    }

    #[test]
    fn globals_and_builtins() {
        let p = resolved(
            "let x = 1\nfn f() { return x + g() }\nfn g() { return len(str(x)) }\nprint(f, Point)\nstruct Point { x }",
        );
        assert_eq!(uses(&p), "x=G g=G len=G str=G x=G print=G f=G Point=G");
        // Every built-in is a global.
        for name in BUILTINS {
            assert_eq!(uses(&resolved(name)), format!("{name}=G"));
        }
        // A user global may shadow a built-in.
        assert_eq!(uses(&resolved("fn print(x) { return x }\nprint(1)")), "x=L0 print=G");
        assert_eq!(uses(&resolved("let len = 3\nlen = 4")), "len=G");
        // Top-level names are visible before their declaration.
        assert_eq!(uses(&resolved("fn main() { return later }\nlet later = 1")), "later=G");
    }

    #[test]
    fn locals_and_shadowing() {
        // x: global; params: a=1; lets: y=2, x=3 (inner)
        let p = resolved("let x = 1\nfn f(a) {\n let y = a + x\n let x = x + y\n return x\n}");
        assert_eq!(uses(&p), "a=L1 x=G x=G y=L2 x=L3");
        // Block scoping: a let is visible only in its block, after its statement.
        let p = resolved("fn f() {\n let a = 1\n { let a = a + 1; print(a) }\n return a\n}");
        assert_eq!(uses(&p), "a=L0 print=G a=L1 a=L0");
        // Shadowing in the same block.
        let p = resolved("fn f() { let a = 1; let a = a; return a }");
        assert_eq!(uses(&p), "a=L0 a=L1");
        // A let's initializer does not see the let itself.
        assert_eq!(error("fn f() { let q = q }"), ("undeclared name `q`".into(), "q".into()));
    }

    #[test]
    fn top_level_blocks_have_locals() {
        // The `let` inside a top-level `if` is a local of the chunk, not a global.
        let p = resolved("if true { let t = 1; print(t) }\nwhile false { let w = 2; print(w) }");
        assert_eq!(uses(&p), "print=G t=L0 print=G w=L1");
        assert_eq!(error("if true { let t = 1 }\nprint(t)").0, "undeclared name `t`");
        let p = resolved("for i in 0..3 { print(i) }\n{ let b = 1; b = 2 }");
        assert_eq!(uses(&p), "print=G i=L0 b=L1");
    }

    #[test]
    fn loop_variables() {
        let p = resolved("fn f(xs) { for x in xs { print(x) } for i in 0..len(xs) { xs[i] = i } }");
        assert_eq!(uses(&p), "xs=L0 print=G x=L1 len=G xs=L0 xs=L0 i=L2 i=L2");
        // The range bounds do not see the loop variable.
        assert_eq!(error("fn f() { for i in 0..i { } }").0, "undeclared name `i`");
        // It is not visible after the loop.
        assert_eq!(error("fn f() { for i in 0..3 { } return i }").0, "undeclared name `i`");
    }

    #[test]
    fn captures() {
        // a=0 (outer param), b=1 (let), g's param c=2.
        let p = resolved("fn outer(a) {\n let b = 1\n let g = fn(c) { return a + c }\n return g\n}");
        assert_eq!(captured(&p), vec![0]);
        assert_eq!(uses(&p), "a=L0 c=L3 g=L2");
        // Captures through two levels mark the declaration once.
        let p = resolved("fn f() { let x = 1; return fn() { return fn() { return x } } }");
        assert_eq!(captured(&p), vec![0]);
        // Using a variable of the same function (even in nested blocks) is not a capture.
        let p = resolved("fn f() { let x = 1; if x { while x { x = x + 1 } } }");
        assert_eq!(captured(&p), Vec::<u32>::new());
        // Top-level chunk locals captured by a closure.
        let p = resolved("for i in 0..3 { let j = i; let f = fn() { return i + j } }");
        assert_eq!(captured(&p), vec![0, 1]);
        // Globals are never captured.
        let p = resolved("let g = 1\nfn f() { return fn() { return g } }");
        assert_eq!(captured(&p), Vec::<u32>::new());
        // Assignment from a closure is a capture too.
        let p = resolved("fn f() { let n = 0; let inc = fn() { n += 1 }; return inc }");
        assert_eq!(captured(&p), vec![0]);
        // Captures inside interpolations.
        let p = resolved("fn f(v) { return fn() { return \"${v}\" } }");
        assert_eq!(captured(&p), vec![0]);
    }

    #[test]
    fn nested_named_functions() {
        // g is bound before its body (recursion), and that use is a capture.
        let p = resolved("fn f() {\n fn g(n) { return g(n - 1) }\n return g(3)\n}");
        // g=0, n=1
        assert_eq!(uses(&p), "g=L0 n=L1 g=L0");
        assert_eq!(captured(&p), vec![0]);
        // Not visible before its statement.
        assert_eq!(error("fn f() { h()\n fn h() {} }").0, "undeclared name `h`");
        // A nested fn in a top-level block is a local of the chunk.
        let p = resolved("if true { fn k() { return 1 }\n k() }");
        assert_eq!(uses(&p), "k=L0");
        // Assigning to a nested fn's name is fine: it is a local.
        resolved("fn f() { fn g() {}\n g = 1 }");
    }

    #[test]
    fn methods_and_self() {
        let src = "struct P { x }\nimpl P {\n fn get(self) { return self.x }\n fn later(self) { return fn() { return self } }\n fn make() { return P { x: 1 } }\n}";
        let p = resolved(src);
        // self params: get's = 0, later's = 1
        assert_eq!(uses(&p), "self=L0 self=L1");
        assert_eq!(captured(&p), vec![1]);
        assert_eq!(error("fn f() { return self }"), ("undeclared name `self`".into(), "self".into()));
        assert_eq!(error("self.x = 1").0, "undeclared name `self`");
        assert_eq!(error("struct P {}\nimpl P { fn make() { return self } }").0, "undeclared name `self`");
        // Method names are not globals.
        assert_eq!(error("struct P {}\nimpl P { fn m(self) {} }\nm()").0, "undeclared name `m`");
        // Static calls go through the struct name.
        assert_eq!(uses(&resolved("struct P {}\nimpl P { fn make() {} }\nP.make()")), "P=G");
    }

    #[test]
    fn undeclared_names() {
        assert_eq!(error("print(y)"), ("undeclared name `y`".into(), "y".into()));
        assert_eq!(error("y = 1"), ("undeclared name `y`".into(), "y".into()));
        assert_eq!(error("y += 1").0, "undeclared name `y`");
        assert_eq!(error("fn f() { return [1, {\"a\": zz}] }").0, "undeclared name `zz`");
        assert_eq!(error("let s = \"${nope}\""), ("undeclared name `nope`".into(), "nope".into()));
        // A local of one function is not visible in another.
        assert_eq!(error("fn f() { let a = 1 }\nfn g() { return a }").0, "undeclared name `a`");
    }

    #[test]
    fn assignments_to_constants() {
        assert_eq!(error("fn f() {}\nf = 1"), ("cannot assign to function `f`".into(), "f".into()));
        assert_eq!(error("fn f() {}\nfn g() { f += 1 }").0, "cannot assign to function `f`");
        assert_eq!(error("struct S {}\nS = 1"), ("cannot assign to struct `S`".into(), "S".into()));
        assert_eq!(error("struct S {}\nS -= 1").0, "cannot assign to struct `S`");
        assert_eq!(error("print = 1").0, "cannot assign to built-in function `print`");
        // A `let` global holding a function can be reassigned; so can locals shadowing a function.
        resolved("let h = fn() {}\nh = 1");
        resolved("fn f() {}\nfn g(f) { f = 1 }");
        resolved("fn f() {}\nfn g() { let f = 1; f = 2 }");
        // Fields and elements of anything are assignable.
        resolved("struct S { x }\nlet s = S { x: 1 }\ns.x = 2\nfn f() {}\nf.x = 1\nS[0] = 1");
    }

    #[test]
    fn duplicate_definitions() {
        assert_eq!(error("let x = 1\nlet x = 2"), ("duplicate definition of `x`".into(), "x".into()));
        assert_eq!(e_span("let x = 1\nlet x = 2"), 14);
        assert_eq!(error("fn f() {}\nlet f = 1").0, "duplicate definition of `f`");
        assert_eq!(error("let f = 1\nfn f() {}").0, "duplicate definition of `f`");
        assert_eq!(error("fn f() {}\nfn f() {}").0, "duplicate definition of `f`");
        assert_eq!(error("struct S {}\nfn S() {}").0, "duplicate definition of `S`");
        assert_eq!(error("struct S {}\nstruct S {}").0, "duplicate definition of `S`");
        // Locals may shadow freely.
        resolved("let x = 1\nfn f(x) { let x = x; let x = 2 }\nif true { let x = 3; let x = 4 }");
    }

    fn e_span(src: &str) -> u32 {
        let mut program = parse(src).unwrap();
        resolve(&mut program).unwrap_err().span.start
    }

    #[test]
    fn loops_and_returns() {
        resolved("while true { break }\nloop { continue }\nfor i in 0..3 { if i { break } }");
        assert_eq!(error("break"), ("`break` outside of a loop".into(), "break".into()));
        assert_eq!(error("fn f() { continue }"), ("`continue` outside of a loop".into(), "continue".into()));
        assert_eq!(error("if true { break }").0, "`break` outside of a loop");
        // A function body is not inside the enclosing loop.
        assert_eq!(error("while true { let f = fn() { break } }").0, "`break` outside of a loop");
        assert_eq!(error("loop { fn g() { continue } }").0, "`continue` outside of a loop");
        // But a loop inside a function inside a loop is fine.
        resolved("loop { let f = fn() { while true { break } }; break }");
        assert_eq!(error("return 1"), ("`return` outside of a function".into(), "return 1".into()));
        assert_eq!(error("if true { return }").0, "`return` outside of a function");
        assert_eq!(error("for i in 0..3 { return i }").0, "`return` outside of a function");
        resolved("let f = fn() { return 1 }\nfn g() { if true { return } }");
    }

    #[test]
    fn structs() {
        resolved("struct P { x, y }\nlet p = P { x: 1, y: 2 }\nlet q = P { y: 1 }\nlet r = P {}");
        assert_eq!(error("let p = Q { x: 1 }"), ("unknown struct `Q`".into(), "Q".into()));
        assert_eq!(
            error("struct P { x }\nlet p = P { x: 1, z: 2 }"),
            ("unknown field `z` in struct `P`".into(), "z".into())
        );
        assert_eq!(error("struct P { x }\nlet p = P { x: 1, x: 2 }"), ("duplicate field `x`".into(), "x".into()));
        assert_eq!(e_span("struct P { x }\nlet p = P { x: 1, x: 2 }"), 33);
        assert_eq!(error("struct P { x, y, x }"), ("duplicate field `x`".into(), "x".into()));
        assert_eq!(e_span("struct P { x, y, x }"), 17);
        assert_eq!(error("struct P {}\nlet p = P { x: undefined_thing }").0, "unknown field `x` in struct `P`");
        // Struct literal field values are resolved.
        assert_eq!(error("struct P { x }\nlet p = P { x: nope }").0, "undeclared name `nope`");
        // Shorthand fields resolve like names.
        assert_eq!(uses(&resolved("struct P { x }\nfn f(x) { return P { x } }")), "x=L0");
        // Forward references to structs work.
        resolved("fn f() { return P { x: 1 } }\nstruct P { x }");
    }

    #[test]
    fn impls() {
        resolved("impl P { fn a(self) {} }\nstruct P { x }\nimpl P { fn b() {} }");
        assert_eq!(error("impl Q { fn a(self) {} }"), ("unknown struct `Q`".into(), "Q".into()));
        assert_eq!(error("fn Q() {}\nimpl Q { }").0, "unknown struct `Q`");
        assert_eq!(
            error("struct P {}\nimpl P { fn a(self) {} fn a() {} }"),
            ("duplicate method `a`".into(), "a".into())
        );
        assert_eq!(error("struct P {}\nimpl P { fn a(self) {} }\nimpl P { fn a(self) {} }").0, "duplicate method `a`");
        // Two structs may have methods with the same name.
        resolved("struct A {}\nstruct B {}\nimpl A { fn m(self) {} }\nimpl B { fn m(self) {} }");
        // Method bodies are resolved.
        assert_eq!(error("struct P {}\nimpl P { fn a(self) { return zz } }").0, "undeclared name `zz`");
    }

    #[test]
    fn declarations_only_at_top_level() {
        let msg = "struct declarations are only allowed at top level";
        assert_eq!(error("fn f() { struct S {} }"), (msg.into(), "S".into()));
        assert_eq!(error("if true { struct S {} }"), (msg.into(), "S".into()));
        assert_eq!(error("struct S {}\nfn f() { impl S {} }"), (msg.into(), "S".into()));
        assert_eq!(error("{ struct S {} }").0, msg);
    }

    #[test]
    fn deep_programs_resolve() {
        // Near the parser's nesting limit the resolver must not overflow the stack.
        let src = format!("x = {}1{}", "f(".repeat(150), ")".repeat(150));
        let mut program = parse(&format!("fn f(a) {{ return a }}\nlet x = 0\n{src}")).unwrap();
        resolve(&mut program).unwrap();
        let src = format!("fn g() {{ {} }}", "if true { ".repeat(60) + &"}".repeat(60));
        resolved(&src);
        let src = format!("fn g() {{ return {}1{} }}", "fn() { return ".repeat(60), " }".repeat(60));
        resolved(&src);
    }

    /// The deepest program of each shape that parses also resolves within a
    /// 1 MiB stack (debug build).
    #[test]
    fn deepest_parsable_programs_resolve_in_a_small_stack() {
        let shapes: &[(&str, &str)] = &[
            ("(", ")"),
            ("[", "]"),
            ("-", ""),
            ("{1: ", "}"),
            ("f(", ")"),
            ("a.b(", ")"),
            ("1 + (", ")"),
            ("P { x: ", " }"),
            ("if a { ", " } else { 1 }"),
            ("fn() { return ", " }"),
            ("fn() { while a { x = ", " } }"),
            ("\"${", "}\""),
        ];
        for (open, close) in shapes {
            // Binary search for the deepest nesting that parses.
            let make = |n: usize| {
                format!(
                    "struct P {{ x }}\nlet a = 1\nlet x = {}a{}\nfn f(v) {{ return v }}",
                    open.repeat(n),
                    close.repeat(n)
                )
            };
            let (mut lo, mut hi) = (1, 400);
            while lo + 1 < hi {
                let mid = (lo + hi) / 2;
                if parse(&make(mid)).is_ok() {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let src = make(lo);
            let handle = std::thread::Builder::new()
                .stack_size(1024 * 1024)
                .spawn(move || {
                    let mut program = parse(&src).unwrap();
                    resolve(&mut program).map(|_| ())
                })
                .unwrap();
            let result = handle.join().unwrap();
            assert!(result.is_ok(), "{open:?} x {lo}: {result:?}");
        }
    }

    #[test]
    fn parse_program_runs_both() {
        let program = super::super::parse_program("let a = 1\nfn f(x) { return a + x }").unwrap();
        assert_eq!(uses(&program), "a=G x=L1");
        assert_eq!(super::super::parse_program("b").unwrap_err().message, "undeclared name `b`");
        assert_eq!(super::super::parse_program("(").unwrap_err().message, "expected expression, found end of file");
    }
}
