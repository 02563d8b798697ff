//! One-pass compiler from the resolved AST to register bytecode. Owns register
//! allocation, constant pools, jump patching and the compile-time tables of
//! globals, structs and member names (`CompileEnv`, which persists across
//! chunks so the REPL can build on earlier input). Must not execute code.

use std::cell::Cell;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use super::ast::*;
use super::resolve::BUILTINS;
use crate::bytecode::{Op, Proto, Reg, UpvalDesc};
use crate::runtime::structdef::{Names, TRACKED_FIELDS};
use crate::runtime::{Heap, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalKind {
    Builtin,
    Let,
    Fn,
    Struct,
    /// Registered by the host through the embedding API.
    Host,
}

#[derive(Clone, Debug)]
pub struct GlobalInfo {
    pub name: String,
    pub kind: GlobalKind,
}

#[derive(Clone, Debug)]
pub struct StructInfo {
    pub name: String,
    pub fields: Vec<String>,
    pub field_ids: Vec<u16>,
    pub global: u16,
}

/// Global slots are `u16` operands, so a program (with everything the host
/// and earlier chunks defined) has at most this many globals.
pub const MAX_GLOBALS: usize = 1 << 16;

/// Compile-time knowledge that outlives one chunk.
#[derive(Debug)]
pub struct CompileEnv {
    pub globals: Vec<GlobalInfo>,
    pub global_ids: FxHashMap<String, u16>,
    pub structs: Vec<StructInfo>,
    pub struct_ids: FxHashMap<String, u16>,
    pub names: Names,
    /// (slot, kind before) of each existing global re-kinded since the last
    /// [`CompileEnv::mark`], for [`CompileEnv::rollback`].
    rekinded: Vec<(u16, GlobalKind)>,
}

/// How far a [`CompileEnv`] had got before a chunk.
struct EnvMark {
    globals: usize,
    structs: usize,
    names: usize,
}

impl Default for CompileEnv {
    fn default() -> Self {
        CompileEnv::new()
    }
}

impl CompileEnv {
    pub fn new() -> CompileEnv {
        let mut env = CompileEnv {
            globals: Vec::new(),
            global_ids: FxHashMap::default(),
            structs: Vec::new(),
            struct_ids: FxHashMap::default(),
            names: Names::new(),
            rekinded: Vec::new(),
        };
        for b in BUILTINS {
            env.define_global(b, GlobalKind::Builtin).expect("the builtins fit in the global slots");
        }
        env
    }

    /// The slot of global `name`, creating it (or re-kinding it) as needed;
    /// `None` when a new one is needed and all [`MAX_GLOBALS`] slots are taken.
    pub fn define_global(&mut self, name: &str, kind: GlobalKind) -> Option<u16> {
        if let Some(&g) = self.global_ids.get(name) {
            let old = std::mem::replace(&mut self.globals[g as usize].kind, kind);
            if old != kind {
                self.rekinded.push((g, old));
            }
            return Some(g);
        }
        let g = u16::try_from(self.globals.len()).ok()?;
        self.globals.push(GlobalInfo { name: name.to_owned(), kind });
        self.global_ids.insert(name.to_owned(), g);
        Some(g)
    }

    pub fn global(&self, name: &str) -> Option<(u16, GlobalKind)> {
        self.global_ids.get(name).map(|&g| (g, self.globals[g as usize].kind))
    }

    /// Where the environment stands now (before compiling a chunk).
    fn mark(&mut self) -> EnvMark {
        self.rekinded.clear();
        EnvMark { globals: self.globals.len(), structs: self.structs.len(), names: self.names.len() }
    }

    /// Forgets everything declared since `mark`: a chunk that failed to
    /// compile installs none of its globals, structs or methods in the VM, so
    /// the next chunk must not see them declared either.
    fn rollback(&mut self, mark: EnvMark) {
        for (g, kind) in self.rekinded.drain(..).rev() {
            if (g as usize) < mark.globals {
                self.globals[g as usize].kind = kind;
            }
        }
        for g in self.globals.drain(mark.globals..) {
            self.global_ids.remove(&g.name);
        }
        for s in self.structs.drain(mark.structs..) {
            self.struct_ids.remove(&s.name);
        }
        // A struct the chunk declared again took the name from the older one,
        // which gets it back (the latest older one, if there are several).
        for (id, s) in self.structs.iter().enumerate().rev() {
            self.struct_ids.entry(s.name.clone()).or_insert(id as u16);
        }
        self.names.truncate(mark.names);
    }
}

/// A compiled chunk: its top-level code plus the functions and methods the VM
/// installs before running it.
pub struct Chunk {
    pub script: Rc<Proto>,
    /// (global slot, function) for each top-level `fn`.
    pub functions: Vec<(u16, Rc<Proto>)>,
    /// (struct id, name id, function) for each `impl` member.
    pub methods: Vec<(u16, u16, Rc<Proto>)>,
    /// Struct ids declared by this chunk.
    pub new_structs: std::ops::Range<usize>,
}

type CResult<T> = Result<T, CompileError>;

struct LoopCtx {
    header: usize,
    breaks: Vec<usize>,
    /// Jumps to the step instruction (for ranges); others continue at the header.
    continues: Vec<usize>,
    continue_at_header: bool,
}

#[derive(Default)]
struct FnState {
    name: String,
    arity: u8,
    code: Vec<Op>,
    lines: Vec<u32>,
    consts: Vec<Value>,
    const_strs: FxHashMap<String, u16>,
    const_nums: FxHashMap<(u8, u64), u16>,
    protos: Vec<Rc<Proto>>,
    upvals: Vec<UpvalDesc>,
    upval_map: FxHashMap<u32, u8>,
    decl_regs: FxHashMap<u32, Reg>,
    free: u16,
    max: u16,
    loops: Vec<LoopCtx>,
    loop_count: u16,
    line: u32,
    is_script: bool,
}

const MAX_REGS: u16 = 250;

pub struct Compiler<'a> {
    env: &'a mut CompileEnv,
    heap: &'a mut Heap,
    file: Rc<str>,
    line_starts: Vec<u32>,
    captured: Vec<bool>,
    fns: Vec<FnState>,
    /// Blocks open around the current statement in the script (0: top level).
    block_depth: u32,
}

/// Compiles a resolved program.
pub fn compile(program: &Program, source: &str, file: &str, env: &mut CompileEnv, heap: &mut Heap) -> CResult<Chunk> {
    let mut line_starts = vec![0u32];
    for (i, b) in source.bytes().enumerate() {
        if b == b'\n' {
            line_starts.push(i as u32 + 1);
        }
    }
    let mark = env.mark();
    let mut c = Compiler {
        env,
        heap,
        file: file.into(),
        line_starts,
        captured: program.captured.clone(),
        fns: Vec::new(),
        block_depth: 0,
    };
    let chunk = c.compile_chunk(program);
    if chunk.is_err() {
        env.rollback(mark);
    }
    chunk
}

fn is_block_like(e: &Expr) -> bool {
    matches!(
        e.kind,
        ExprKind::And(..)
            | ExprKind::Or(..)
            | ExprKind::If { .. }
            | ExprKind::Block(_)
            | ExprKind::Array(_)
            | ExprKind::Map(_)
            | ExprKind::StructLit { .. }
            | ExprKind::Interp(_)
    )
}

impl<'a> Compiler<'a> {
    fn line_of(&self, span: Span) -> u32 {
        match self.line_starts.binary_search(&span.start) {
            Ok(i) => i as u32 + 1,
            Err(i) => i as u32,
        }
    }

    fn f(&mut self) -> &mut FnState {
        self.fns.last_mut().expect("a function is being compiled")
    }

    fn emit(&mut self, op: Op) -> usize {
        let f = self.f();
        let line = f.line;
        f.code.push(op);
        f.lines.push(line);
        f.code.len() - 1
    }

    fn here(&mut self) -> usize {
        self.f().code.len()
    }

    fn set_line(&mut self, span: Span) {
        let line = self.line_of(span);
        self.f().line = line;
    }

    /// Points the jump at `pos` to `target`.
    fn patch(&mut self, pos: usize, target: usize) {
        let off = target as i32 - (pos as i32 + 1);
        let op = &mut self.f().code[pos];
        match op {
            Op::Jmp { off: o }
            | Op::JmpIf { off: o, .. }
            | Op::JmpIfNot { off: o, .. }
            | Op::JmpNotLt { off: o, .. }
            | Op::JmpNotLe { off: o, .. }
            | Op::JmpNotEq { off: o, .. }
            | Op::JmpNotNe { off: o, .. }
            | Op::JmpNotLtK { off: o, .. }
            | Op::JmpNotLeK { off: o, .. }
            | Op::JmpNotGtK { off: o, .. }
            | Op::JmpNotGeK { off: o, .. }
            | Op::JmpNotEqK { off: o, .. }
            | Op::JmpNotNeK { off: o, .. }
            | Op::ForPrep { off: o, .. }
            | Op::ForStep { off: o, .. }
            | Op::ForInNext { off: o, .. } => *o = off,
            _ => unreachable!("patching a non-jump"),
        }
    }

    fn patch_here(&mut self, jumps: Vec<usize>) {
        let here = self.here();
        for j in jumps {
            self.patch(j, here);
        }
    }

    fn jump_to(&mut self, target: usize) {
        let pos = self.emit(Op::Jmp { off: 0 });
        self.patch(pos, target);
    }

    fn alloc(&mut self, span: Span) -> CResult<Reg> {
        let f = self.f();
        if f.free >= MAX_REGS {
            return Err(CompileError::new("function too complex: more than 250 registers needed", span));
        }
        let r = f.free as Reg;
        f.free += 1;
        f.max = f.max.max(f.free);
        Ok(r)
    }

    fn free_to(&mut self, mark: u16) {
        self.f().free = mark;
    }

    fn mark(&mut self) -> u16 {
        self.f().free
    }

    fn add_const(&mut self, v: Value, span: Span) -> CResult<u16> {
        let f = self.f();
        if f.consts.len() >= u16::MAX as usize {
            return Err(CompileError::new("function too complex: too many constants", span));
        }
        f.consts.push(v);
        Ok((f.consts.len() - 1) as u16)
    }

    fn str_const(&mut self, s: &str, span: Span) -> CResult<u16> {
        if let Some(&k) = self.f().const_strs.get(s) {
            return Ok(k);
        }
        let obj = self.heap.alloc_str(s);
        let k = self.add_const(Value::Str(obj), span)?;
        self.f().const_strs.insert(s.to_owned(), k);
        Ok(k)
    }

    fn num_const(&mut self, v: Value, span: Span) -> CResult<u16> {
        let key = match v {
            Value::Int(i) => (0, i as u64),
            Value::Float(x) => (1, x.to_bits()),
            _ => unreachable!(),
        };
        if let Some(&k) = self.f().const_nums.get(&key) {
            return Ok(k);
        }
        let k = self.add_const(v, span)?;
        self.f().const_nums.insert(key, k);
        Ok(k)
    }

    fn name_id(&mut self, name: &str, span: Span) -> CResult<u16> {
        self.env.names.intern(name).ok_or_else(|| CompileError::new("too many distinct field and method names", span))
    }

    fn define_global(&mut self, name: &Ident, kind: GlobalKind) -> CResult<u16> {
        self.env.define_global(&name.name, kind).ok_or_else(|| {
            CompileError::new(format!("too many globals (at most {MAX_GLOBALS}, counting built-ins)"), name.span)
        })
    }

    // ---- chunk and functions ----

    fn compile_chunk(&mut self, program: &Program) -> CResult<Chunk> {
        // Pass 1: declare every top-level name so uses anywhere can see it.
        let first_struct = self.env.structs.len();
        for stmt in &program.stmts {
            match &stmt.kind {
                StmtKind::Let { name, .. } => {
                    self.define_global(name, GlobalKind::Let)?;
                }
                StmtKind::Fn(f) => {
                    let name = f.name.as_ref().expect("top-level fn has a name");
                    self.define_global(name, GlobalKind::Fn)?;
                }
                StmtKind::Struct(s) => {
                    let g = self.define_global(&s.name, GlobalKind::Struct)?;
                    let mut field_ids = Vec::new();
                    for fl in &s.fields {
                        field_ids.push(self.name_id(&fl.name, fl.span)?);
                    }
                    if self.env.structs.len() >= u16::MAX as usize {
                        return Err(CompileError::new("too many structs", s.name.span));
                    }
                    let id = self.env.structs.len() as u16;
                    self.env.structs.push(StructInfo {
                        name: s.name.name.clone(),
                        fields: s.fields.iter().map(|f| f.name.clone()).collect(),
                        field_ids,
                        global: g,
                    });
                    self.env.struct_ids.insert(s.name.name.clone(), id);
                }
                _ => {}
            }
        }
        // Pass 2: top-level functions and methods (they capture nothing).
        let mut functions = Vec::new();
        let mut methods = Vec::new();
        for stmt in &program.stmts {
            match &stmt.kind {
                StmtKind::Fn(f) => {
                    let name = f.name.as_ref().expect("named").name.clone();
                    let proto = self.compile_function(f, name.clone())?;
                    let (g, _) = self.env.global(&name).expect("declared in pass 1");
                    functions.push((g, proto));
                }
                StmtKind::Impl(imp) => {
                    let sid = *self.env.struct_ids.get(&imp.name.name).ok_or_else(|| {
                        CompileError::new(format!("unknown struct `{}`", imp.name.name), imp.name.span)
                    })?;
                    for m in &imp.methods {
                        let mname = m.name.as_ref().expect("named");
                        let nid = self.name_id(&mname.name, mname.span)?;
                        let proto = self.compile_function(m, format!("{}.{}", imp.name.name, mname.name))?;
                        methods.push((sid, nid, proto));
                    }
                }
                _ => {}
            }
        }
        // Pass 3: the top-level statements.
        self.fns.push(FnState { name: "<script>".into(), is_script: true, line: 1, ..Default::default() });
        for stmt in &program.stmts {
            self.stmt(stmt)?;
        }
        let defines_main = program.stmts.iter().any(|s| match &s.kind {
            StmtKind::Fn(f) => f.name.as_ref().is_some_and(|n| n.name == "main"),
            _ => false,
        });
        if defines_main {
            let (g, _) = self.env.global("main").expect("declared");
            let r = self.alloc(Span::default())?;
            self.emit(Op::GetGlobal { a: r, g });
            self.emit(Op::Call { a: r, n: 0 });
            self.free_to(r as u16);
        }
        self.emit(Op::ReturnNil);
        let script = self.finish_fn(1);
        Ok(Chunk { script, functions, methods, new_structs: first_struct..self.env.structs.len() })
    }

    fn finish_fn(&mut self, line: u32) -> Rc<Proto> {
        let f = self.fns.pop().expect("function state");
        Rc::new(Proto {
            name: f.name,
            file: self.file.clone(),
            arity: f.arity,
            max_slots: f.max.max(1),
            code: f.code,
            lines: f.lines,
            consts: f.consts,
            protos: f.protos,
            upvals: f.upvals,
            loops: (0..f.loop_count).map(|_| Default::default()).collect(),
            entry: Default::default(),
            entry_body: Cell::new(0),
            call_natively: Cell::new(false),
            line,
            liveness: Default::default(),
        })
    }

    fn compile_function(&mut self, decl: &FnDecl, name: String) -> CResult<Rc<Proto>> {
        if decl.params.len() > 200 {
            return Err(CompileError::new("too many parameters", decl.span));
        }
        let line = self.line_of(decl.span);
        self.fns.push(FnState { name, arity: decl.params.len() as u8, line, ..Default::default() });
        for p in &decl.params {
            let r = self.alloc(p.name.span)?;
            self.f().decl_regs.insert(p.decl.0, r);
        }
        for p in &decl.params {
            if self.captured[p.decl.0 as usize] {
                let r = self.f().decl_regs[&p.decl.0];
                self.emit(Op::NewCell { a: r, b: r });
            }
        }
        for s in &decl.body.stmts {
            self.stmt(s)?;
        }
        self.emit(Op::ReturnNil);
        Ok(self.finish_fn(line))
    }

    /// Compiles a nested function and emits the closure into `dst`.
    fn closure(&mut self, decl: &FnDecl, name: String, dst: Reg) -> CResult<()> {
        let proto = self.compile_function(decl, name)?;
        self.set_line(decl.span);
        let f = self.f();
        if f.protos.len() >= u16::MAX as usize {
            return Err(CompileError::new("too many nested functions", decl.span));
        }
        f.protos.push(proto);
        let p = (f.protos.len() - 1) as u16;
        self.emit(Op::Closure { a: dst, p });
        Ok(())
    }

    // ---- statements ----

    fn block(&mut self, b: &Block) -> CResult<()> {
        let mark = self.mark();
        self.block_depth += 1;
        for s in &b.stmts {
            self.stmt(s)?;
        }
        self.block_depth -= 1;
        self.free_to(mark);
        Ok(())
    }

    fn declare_local(&mut self, decl: DeclId, span: Span) -> CResult<Reg> {
        let r = self.alloc(span)?;
        self.f().decl_regs.insert(decl.0, r);
        Ok(r)
    }

    /// Wraps a freshly written local in a cell when a closure captures it.
    fn box_if_captured(&mut self, decl: DeclId, r: Reg) {
        if self.captured[decl.0 as usize] {
            self.emit(Op::NewCell { a: r, b: r });
        }
    }

    fn stmt(&mut self, s: &Stmt) -> CResult<()> {
        self.set_line(s.span);
        match &s.kind {
            StmtKind::Expr(e) => self.expr_effect(e),
            StmtKind::Let { name, decl, init } => {
                let top = self.at_top_scope();
                if top {
                    let (g, _) = self.env.global(&name.name).expect("declared in pass 1");
                    let mark = self.mark();
                    let r = match init {
                        Some(e) => self.expr_any(e)?,
                        None => {
                            let r = self.alloc(s.span)?;
                            self.emit(Op::LoadNil { a: r });
                            r
                        }
                    };
                    self.set_line(s.span);
                    self.emit(Op::SetGlobal { a: r, g });
                    self.free_to(mark);
                } else {
                    // The initializer sees the outer binding, so evaluate first.
                    let r = self.alloc(name.span)?;
                    match init {
                        Some(e) => self.expr_to(e, r)?,
                        None => {
                            self.emit(Op::LoadNil { a: r });
                        }
                    }
                    self.f().decl_regs.insert(decl.0, r);
                    self.box_if_captured(*decl, r);
                }
                Ok(())
            }
            StmtKind::Assign { target, op, value } => self.assign(target, *op, value, s.span),
            StmtKind::While { cond, body } => self.while_loop(Some(cond), body),
            StmtKind::Loop { body } => self.while_loop(None, body),
            StmtKind::ForRange { decl, start, end, inclusive, body, .. } => {
                self.for_range(*decl, start, end, *inclusive, body)
            }
            StmtKind::ForIn { decl, iter, body, .. } => self.for_in(*decl, iter, body),
            StmtKind::Break => {
                let j = self.emit(Op::Jmp { off: 0 });
                match self.f().loops.last_mut() {
                    Some(l) => l.breaks.push(j),
                    None => return Err(CompileError::new("`break` outside of a loop", s.span)),
                }
                Ok(())
            }
            StmtKind::Continue => {
                let Some(l) = self.f().loops.last() else {
                    return Err(CompileError::new("`continue` outside of a loop", s.span));
                };
                if l.continue_at_header {
                    let h = l.header;
                    self.jump_to(h);
                } else {
                    let j = self.emit(Op::Jmp { off: 0 });
                    self.f().loops.last_mut().expect("loop").continues.push(j);
                }
                Ok(())
            }
            StmtKind::Return(e) => {
                if self.fns.len() == 1 && self.f().is_script {
                    return Err(CompileError::new("`return` outside of a function", s.span));
                }
                match e {
                    Some(e) => {
                        let mark = self.mark();
                        let r = self.expr_any(e)?;
                        self.set_line(s.span);
                        self.emit(Op::Return { a: r });
                        self.free_to(mark);
                    }
                    None => {
                        self.emit(Op::ReturnNil);
                    }
                }
                Ok(())
            }
            StmtKind::Fn(decl) => {
                if self.at_top_scope() {
                    return Ok(()); // installed by the VM before the chunk runs
                }
                let name = decl.name.as_ref().map(|n| n.name.clone()).unwrap_or_else(|| "<fn>".into());
                let d = decl.decl.expect("nested fn binds a local");
                let r = self.declare_local(d, s.span)?;
                if self.captured[d.0 as usize] {
                    // The function may refer to itself: make the cell first.
                    self.emit(Op::LoadNil { a: r });
                    self.emit(Op::NewCell { a: r, b: r });
                    let t = self.alloc(s.span)?;
                    self.closure(decl, name, t)?;
                    self.emit(Op::SetCell { a: r, b: t });
                    self.free_to(t as u16);
                } else {
                    self.closure(decl, name, r)?;
                }
                Ok(())
            }
            StmtKind::Struct(sd) => {
                if !(self.fns.len() == 1 && self.f().is_script) {
                    return Err(CompileError::new("struct declarations are only allowed at top level", sd.name.span));
                }
                Ok(())
            }
            StmtKind::Impl(imp) => {
                if !(self.fns.len() == 1 && self.f().is_script) {
                    return Err(CompileError::new("struct declarations are only allowed at top level", imp.name.span));
                }
                Ok(())
            }
            StmtKind::Block(b) => self.block(b),
        }
    }

    /// True while compiling statements directly at the top level of the script
    /// (not inside any block).
    fn at_top_scope(&self) -> bool {
        self.fns.last().is_some_and(|f| f.is_script) && self.block_depth == 0
    }

    // ---- loops ----

    fn begin_loop(&mut self, continue_at_header: bool, span: Span) -> CResult<usize> {
        let f = self.f();
        let id = f.loop_count;
        if id == u16::MAX {
            return Err(CompileError::new("function too complex: more than 65535 loops", span));
        }
        f.loop_count += 1;
        let header = self.emit(Op::Loop { id });
        self.f().loops.push(LoopCtx { header, breaks: Vec::new(), continues: Vec::new(), continue_at_header });
        Ok(header)
    }

    fn while_loop(&mut self, cond: Option<&Expr>, body: &Block) -> CResult<()> {
        let header = self.begin_loop(true, body.span)?;
        let exits = match cond {
            Some(c) => self.cond_jump_false(c)?,
            None => Vec::new(),
        };
        self.block(body)?;
        self.jump_to(header);
        let l = self.f().loops.pop().expect("loop");
        self.patch_here(exits);
        self.patch_here(l.breaks);
        Ok(())
    }

    fn for_range(&mut self, decl: DeclId, start: &Expr, end: &Expr, incl: bool, body: &Block) -> CResult<()> {
        let mark = self.mark();
        let a = self.alloc(start.span)?;
        self.alloc(end.span)?;
        self.expr_to(start, a)?;
        self.expr_to(end, a + 1)?;
        self.set_line(start.span);
        let var = self.declare_local(decl, start.span)?;
        debug_assert_eq!(var, a + 2);
        let prep = self.emit(Op::ForPrep { a, incl, off: 0 });
        let header = self.begin_loop(false, body.span)?;
        self.block_depth += 1;
        self.box_if_captured(decl, var);
        self.block(body)?;
        self.block_depth -= 1;
        let l = self.f().loops.pop().expect("loop");
        self.patch_here(l.continues);
        let step = self.emit(Op::ForStep { a, incl, off: 0 });
        self.patch(step, header);
        self.patch_here(vec![prep]);
        self.patch_here(l.breaks);
        self.free_to(mark);
        Ok(())
    }

    fn for_in(&mut self, decl: DeclId, iter: &Expr, body: &Block) -> CResult<()> {
        let mark = self.mark();
        let a = self.alloc(iter.span)?;
        self.alloc(iter.span)?;
        self.expr_to(iter, a)?;
        self.set_line(iter.span);
        self.emit(Op::ForInPrep { a });
        let header = self.begin_loop(true, body.span)?;
        self.block_depth += 1;
        let var = self.declare_local(decl, iter.span)?;
        let next = self.emit(Op::ForInNext { a, b: var, off: 0 });
        self.box_if_captured(decl, var);
        self.block(body)?;
        self.block_depth -= 1;
        self.jump_to(header);
        let l = self.f().loops.pop().expect("loop");
        self.patch_here(vec![next]);
        self.patch_here(l.breaks);
        self.free_to(mark);
        Ok(())
    }

    /// Emits jumps taken when `e` is falsy; returns them for patching.
    fn cond_jump_false(&mut self, e: &Expr) -> CResult<Vec<usize>> {
        let mark = self.mark();
        let jumps = match &e.kind {
            ExprKind::Bool(true) => Vec::new(),
            ExprKind::Binary(op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne), l, r)
                if self.const_operand(r).is_some() || self.const_operand(l).is_some() =>
            {
                // Keep the constant on the right: `3 < x` is `x > 3`.
                let (op, x, k) = if let Some(v) = self.const_operand(r) {
                    (*op, l, v)
                } else {
                    let flipped = match op {
                        BinOp::Lt => BinOp::Gt,
                        BinOp::Le => BinOp::Ge,
                        BinOp::Gt => BinOp::Lt,
                        BinOp::Ge => BinOp::Le,
                        o => *o,
                    };
                    (flipped, r, self.const_operand(l).expect("checked"))
                };
                let ra = self.expr_any(x)?;
                let k = self.const_index(k, e.span)?;
                self.set_line(e.span);
                let op = match op {
                    BinOp::Lt => Op::JmpNotLtK { a: ra, k, off: 0 },
                    BinOp::Le => Op::JmpNotLeK { a: ra, k, off: 0 },
                    BinOp::Gt => Op::JmpNotGtK { a: ra, k, off: 0 },
                    BinOp::Ge => Op::JmpNotGeK { a: ra, k, off: 0 },
                    BinOp::Eq => Op::JmpNotEqK { a: ra, k, off: 0 },
                    _ => Op::JmpNotNeK { a: ra, k, off: 0 },
                };
                vec![self.emit(op)]
            }
            ExprKind::Binary(op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne), l, r) => {
                let rl = self.expr_any(l)?;
                let rr = self.expr_any(r)?;
                self.set_line(e.span);
                let op = match op {
                    BinOp::Lt => Op::JmpNotLt { a: rl, b: rr, off: 0 },
                    BinOp::Le => Op::JmpNotLe { a: rl, b: rr, off: 0 },
                    BinOp::Gt => Op::JmpNotLt { a: rr, b: rl, off: 0 },
                    BinOp::Ge => Op::JmpNotLe { a: rr, b: rl, off: 0 },
                    BinOp::Eq => Op::JmpNotEq { a: rl, b: rr, off: 0 },
                    _ => Op::JmpNotNe { a: rl, b: rr, off: 0 },
                };
                vec![self.emit(op)]
            }
            ExprKind::And(l, r) => {
                let mut j = self.cond_jump_false(l)?;
                j.extend(self.cond_jump_false(r)?);
                j
            }
            ExprKind::Unary(UnOp::Not, x) => {
                let r = self.expr_any(x)?;
                vec![self.emit(Op::JmpIf { a: r, off: 0 })]
            }
            _ => {
                let r = self.expr_any(e)?;
                vec![self.emit(Op::JmpIfNot { a: r, off: 0 })]
            }
        };
        self.free_to(mark);
        Ok(jumps)
    }

    // ---- assignment ----

    fn local_reg(&self, d: DeclId) -> Option<Reg> {
        self.fns.last().and_then(|f| f.decl_regs.get(&d.0).copied())
    }

    fn upval(&mut self, level: usize, d: u32) -> Option<u8> {
        if let Some(&u) = self.fns[level].upval_map.get(&d) {
            return Some(u);
        }
        if level == 0 {
            return None;
        }
        let parent = level - 1;
        let desc = match self.fns[parent].decl_regs.get(&d) {
            Some(&r) => UpvalDesc::Local(r),
            None => UpvalDesc::Upval(self.upval(parent, d)?),
        };
        let f = &mut self.fns[level];
        if f.upvals.len() >= 255 {
            return None;
        }
        f.upvals.push(desc);
        let u = (f.upvals.len() - 1) as u8;
        f.upval_map.insert(d, u);
        Some(u)
    }

    fn upval_of(&mut self, d: DeclId, span: Span) -> CResult<u8> {
        let level = self.fns.len() - 1;
        self.upval(level, d.0).ok_or_else(|| CompileError::new("too many captured variables", span))
    }

    fn global_slot(&self, name: &Ident) -> CResult<(u16, GlobalKind)> {
        self.env
            .global(&name.name)
            .ok_or_else(|| CompileError::new(format!("undeclared name `{}`", name.name), name.span))
    }

    fn assign(&mut self, target: &Expr, op: Option<BinOp>, value: &Expr, span: Span) -> CResult<()> {
        let mark = self.mark();
        match &target.kind {
            ExprKind::Name(name, res) => {
                let cur = |c: &mut Self| -> CResult<Reg> {
                    let t = c.alloc(target.span)?;
                    c.expr_to(target, t)?;
                    Ok(t)
                };
                match res.get() {
                    Resolution::Local(d) => {
                        if let Some(r) = self.local_reg(d).filter(|_| !self.captured[d.0 as usize]) {
                            match op {
                                None if !is_block_like(value) => self.expr_to(value, r)?,
                                None => {
                                    let t = self.expr_any(value)?;
                                    self.emit(Op::Move { a: r, b: t });
                                }
                                Some(op) => self.binary_rhs(op, r, r, value, span)?,
                            }
                        } else {
                            let v = match op {
                                None => self.expr_any(value)?,
                                Some(op) => {
                                    let t = cur(self)?;
                                    self.binary_rhs(op, t, t, value, span)?;
                                    t
                                }
                            };
                            match self.local_reg(d) {
                                Some(r) => self.emit(Op::SetCell { a: r, b: v }),
                                None => {
                                    let u = self.upval_of(d, span)?;
                                    self.emit(Op::SetUpval { u, b: v })
                                }
                            };
                        }
                    }
                    _ => {
                        let (g, kind) = self.global_slot(name)?;
                        match kind {
                            GlobalKind::Fn => {
                                return Err(CompileError::new(
                                    format!("cannot assign to function `{}`", name.name),
                                    name.span,
                                ))
                            }
                            GlobalKind::Struct => {
                                return Err(CompileError::new(
                                    format!("cannot assign to struct `{}`", name.name),
                                    name.span,
                                ))
                            }
                            _ => {}
                        }
                        let v = match op {
                            None => self.expr_any(value)?,
                            Some(op) => {
                                let t = cur(self)?;
                                self.binary_rhs(op, t, t, value, span)?;
                                t
                            }
                        };
                        self.set_line(span);
                        self.emit(Op::SetGlobal { a: v, g });
                    }
                }
            }
            ExprKind::Index { obj, index } => {
                let o = self.expr_any(obj)?;
                let i = self.expr_any(index)?;
                let v = match op {
                    None => self.expr_any(value)?,
                    Some(op) => {
                        let t = self.alloc(span)?;
                        self.set_line(target.span);
                        self.emit(Op::GetIndex { a: t, b: o, c: i });
                        self.binary_rhs(op, t, t, value, span)?;
                        t
                    }
                };
                self.set_line(span);
                self.emit(Op::SetIndex { a: o, b: i, c: v });
            }
            ExprKind::Field { obj, name } => {
                let o = self.expr_any(obj)?;
                let nid = self.name_id(&name.name, name.span)?;
                let v = match op {
                    None => self.expr_any(value)?,
                    Some(op) => {
                        let t = self.alloc(span)?;
                        self.set_line(target.span);
                        self.emit(Op::GetField { a: t, b: o, name: nid });
                        self.binary_rhs(op, t, t, value, span)?;
                        t
                    }
                };
                self.set_line(span);
                self.emit(Op::SetField { a: o, name: nid, c: v });
            }
            _ => return Err(CompileError::new("invalid assignment target", target.span)),
        }
        self.free_to(mark);
        Ok(())
    }

    /// A numeric (or, for equality, string) literal usable as a constant operand.
    fn const_operand<'e>(&self, e: &'e Expr) -> Option<&'e ExprKind> {
        match &e.kind {
            k @ (ExprKind::Int(_) | ExprKind::Float(_)) => Some(k),
            _ => None,
        }
    }

    fn const_index(&mut self, k: &ExprKind, span: Span) -> CResult<u16> {
        match k {
            ExprKind::Int(i) => self.num_const(Value::Int(*i), span),
            ExprKind::Float(f) => self.num_const(Value::Float(*f), span),
            _ => unreachable!("not a constant operand"),
        }
    }

    /// R[dst] = R[lhs] op rhs, using an immediate or constant form when `rhs`
    /// is a literal.
    fn binary_rhs(&mut self, op: BinOp, dst: Reg, lhs: Reg, rhs: &Expr, span: Span) -> CResult<()> {
        let imm = match op {
            BinOp::Add => Self::small_int(rhs),
            BinOp::Sub => Self::small_int(rhs).map(|v| -v),
            _ => None,
        };
        if let Some(v) = imm {
            self.set_line(span);
            self.emit(Op::AddInt { a: dst, b: lhs, v: v as i16 });
            return Ok(());
        }
        if let (Some(k), BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem) = (self.const_operand(rhs), op)
        {
            let k = self.const_index(k, span)?;
            self.set_line(span);
            self.emit(match op {
                BinOp::Add => Op::AddK { a: dst, b: lhs, k },
                BinOp::Sub => Op::SubK { a: dst, b: lhs, k },
                BinOp::Mul => Op::MulK { a: dst, b: lhs, k },
                BinOp::Div => Op::DivK { a: dst, b: lhs, k },
                _ => Op::RemK { a: dst, b: lhs, k },
            });
            return Ok(());
        }
        let rr = self.expr_any(rhs)?;
        self.set_line(span);
        self.emit_binary(op, dst, lhs, rr);
        Ok(())
    }

    fn emit_binary(&mut self, op: BinOp, a: Reg, b: Reg, c: Reg) {
        let ins = match op {
            BinOp::Add => Op::Add { a, b, c },
            BinOp::Sub => Op::Sub { a, b, c },
            BinOp::Mul => Op::Mul { a, b, c },
            BinOp::Div => Op::Div { a, b, c },
            BinOp::Rem => Op::Rem { a, b, c },
            BinOp::Eq => Op::Eq { a, b, c },
            BinOp::Ne => Op::Ne { a, b, c },
            BinOp::Lt => Op::Lt { a, b, c },
            BinOp::Le => Op::Le { a, b, c },
            BinOp::Gt => Op::Lt { a, b: c, c: b },
            BinOp::Ge => Op::Le { a, b: c, c: b },
            BinOp::BitAnd => Op::BitAnd { a, b, c },
            BinOp::BitOr => Op::BitOr { a, b, c },
            BinOp::BitXor => Op::BitXor { a, b, c },
            BinOp::Shl => Op::Shl { a, b, c },
            BinOp::Shr => Op::Shr { a, b, c },
        };
        self.emit(ins);
    }

    // ---- expressions ----

    /// Evaluates `e` for its effects only.
    fn expr_effect(&mut self, e: &Expr) -> CResult<()> {
        let mark = self.mark();
        match &e.kind {
            ExprKind::If { cond, then, else_ } => {
                let jf = self.cond_jump_false(cond)?;
                self.block(then)?;
                match else_ {
                    Some(els) => {
                        let jend = self.emit(Op::Jmp { off: 0 });
                        self.patch_here(jf);
                        self.expr_effect(els)?;
                        self.patch_here(vec![jend]);
                    }
                    None => self.patch_here(jf),
                }
            }
            ExprKind::Block(b) => self.block(b)?,
            _ => {
                self.expr_any(e)?;
            }
        }
        self.free_to(mark);
        Ok(())
    }

    /// The register holding `e`'s value: a local's own register when `e` names
    /// one, else a fresh temporary.
    fn expr_any(&mut self, e: &Expr) -> CResult<Reg> {
        if let ExprKind::Name(_, res) = &e.kind {
            if let Resolution::Local(d) = res.get() {
                if !self.captured[d.0 as usize] {
                    if let Some(r) = self.local_reg(d) {
                        return Ok(r);
                    }
                }
            }
        }
        let r = self.alloc(e.span)?;
        self.expr_to(e, r)?;
        Ok(r)
    }

    /// A block's value into `dst`: its last statement's when that is an expression.
    fn block_value(&mut self, b: &Block, dst: Reg) -> CResult<()> {
        let mark = self.mark();
        self.block_depth += 1;
        let n = b.stmts.len();
        for (i, s) in b.stmts.iter().enumerate() {
            if i + 1 == n {
                if let StmtKind::Expr(e) = &s.kind {
                    self.set_line(s.span);
                    self.expr_to(e, dst)?;
                    continue;
                }
            }
            self.stmt(s)?;
        }
        if !matches!(b.stmts.last().map(|s| &s.kind), Some(StmtKind::Expr(_))) {
            self.emit(Op::LoadNil { a: dst });
        }
        self.block_depth -= 1;
        self.free_to(mark);
        Ok(())
    }

    fn small_int(e: &Expr) -> Option<i64> {
        match e.kind {
            ExprKind::Int(i) if (i16::MIN as i64 + 1..=i16::MAX as i64).contains(&i) => Some(i),
            _ => None,
        }
    }

    fn expr_to(&mut self, e: &Expr, dst: Reg) -> CResult<()> {
        self.set_line(e.span);
        let mark = self.mark();
        match &e.kind {
            ExprKind::Nil => {
                self.emit(Op::LoadNil { a: dst });
            }
            ExprKind::Bool(v) => {
                self.emit(Op::LoadBool { a: dst, v: *v });
            }
            ExprKind::Int(i) => self.load_int(*i, dst, e.span)?,
            ExprKind::Float(x) => {
                let k = self.num_const(Value::Float(*x), e.span)?;
                self.emit(Op::LoadK { a: dst, k });
            }
            ExprKind::Str(s) => {
                let k = self.str_const(s, e.span)?;
                self.emit(Op::LoadK { a: dst, k });
            }
            ExprKind::Interp(parts) => {
                if parts.len() > 200 {
                    return Err(CompileError::new("too many interpolated parts", e.span));
                }
                let base = self.mark() as Reg;
                for p in parts {
                    let r = self.alloc(e.span)?;
                    match p {
                        InterpPart::Lit(s) => {
                            let k = self.str_const(s, e.span)?;
                            self.emit(Op::LoadK { a: r, k });
                        }
                        InterpPart::Expr(x, prec) => {
                            self.expr_to(x, r)?;
                            if let Some(p) = prec {
                                self.set_line(x.span);
                                let prec = u16::try_from(*p)
                                    .map_err(|_| CompileError::new("format precision too large", x.span))?;
                                self.emit(Op::FmtPrec { a: r, b: r, prec });
                            }
                        }
                    }
                }
                self.set_line(e.span);
                self.emit(Op::Concat { a: dst, b: base, n: parts.len() as u8 });
            }
            ExprKind::Name(name, res) => match res.get() {
                Resolution::Local(d) => match self.local_reg(d) {
                    Some(r) if self.captured[d.0 as usize] => {
                        self.emit(Op::GetCell { a: dst, b: r });
                    }
                    Some(r) => {
                        if r != dst {
                            self.emit(Op::Move { a: dst, b: r });
                        }
                    }
                    None => {
                        let u = self.upval_of(d, e.span)?;
                        self.emit(Op::GetUpval { a: dst, u });
                    }
                },
                _ => {
                    let (g, kind) = self.global_slot(name)?;
                    if kind == GlobalKind::Struct {
                        return Err(CompileError::new(format!("struct `{}` is not a value", name.name), name.span));
                    }
                    self.emit(Op::GetGlobal { a: dst, g });
                }
            },
            ExprKind::Array(items) => {
                let t = dst;
                self.emit(Op::NewArray { a: t, cap: items.len().min(u16::MAX as usize) as u16 });
                for it in items {
                    let m = self.mark();
                    let v = self.expr_any(it)?;
                    self.emit(Op::ArrayPush { a: t, b: v });
                    self.free_to(m);
                }
            }
            ExprKind::Map(entries) => {
                let t = dst;
                self.emit(Op::NewMap { a: t });
                for (k, v) in entries {
                    let m = self.mark();
                    let kr = self.expr_any(k)?;
                    let vr = self.expr_any(v)?;
                    self.set_line(k.span);
                    self.emit(Op::SetIndex { a: t, b: kr, c: vr });
                    self.free_to(m);
                }
            }
            ExprKind::StructLit { name, fields } => {
                let sid = *self
                    .env
                    .struct_ids
                    .get(&name.name)
                    .ok_or_else(|| CompileError::new(format!("unknown struct `{}`", name.name), name.span))?;
                let t = dst;
                self.emit(Op::NewStruct { a: t, def: sid });
                let mut initialised = vec![false; self.env.structs[sid as usize].fields.len()];
                for (fname, fexpr) in fields {
                    let info = &self.env.structs[sid as usize];
                    let Some(idx) = info.fields.iter().position(|f| *f == fname.name) else {
                        return Err(CompileError::new(
                            format!("unknown field `{}` in struct `{}`", fname.name, name.name),
                            fname.span,
                        ));
                    };
                    if idx > 255 {
                        return Err(CompileError::new("struct has too many fields", fname.span));
                    }
                    let m = self.mark();
                    let v = self.expr_any(fexpr)?;
                    self.emit(Op::InitField { a: t, idx: idx as u8, b: v });
                    self.free_to(m);
                    initialised[idx] = true;
                }
                // The fields the literal leaves out are written `nil` too, so
                // that every tracked field of every instance is written by an
                // `InitField` before anything can read it: what the JIT's
                // float-field tracking (`StructDef::float_only`, the first
                // `TRACKED_FIELDS` fields) counts on.
                let tracked = initialised.len().min(TRACKED_FIELDS);
                let omitted: Vec<u8> = (0..tracked).filter(|&i| !initialised[i]).map(|i| i as u8).collect();
                if !omitted.is_empty() {
                    let m = self.mark();
                    let r = self.alloc(e.span)?;
                    self.emit(Op::LoadNil { a: r });
                    for idx in omitted {
                        self.emit(Op::InitField { a: t, idx, b: r });
                    }
                    self.free_to(m);
                }
            }
            ExprKind::Unary(op, x) => match (op, &x.kind) {
                (UnOp::Neg, ExprKind::Int(i)) => {
                    let v = i.checked_neg().ok_or_else(|| CompileError::new("integer literal out of range", e.span))?;
                    self.load_int(v, dst, e.span)?;
                }
                (UnOp::Neg, ExprKind::Float(f)) => {
                    let k = self.num_const(Value::Float(-f), e.span)?;
                    self.emit(Op::LoadK { a: dst, k });
                }
                _ => {
                    let r = self.expr_any(x)?;
                    self.set_line(e.span);
                    self.emit(match op {
                        UnOp::Neg => Op::Neg { a: dst, b: r },
                        UnOp::Not => Op::Not { a: dst, b: r },
                        UnOp::BitNot => Op::BitNot { a: dst, b: r },
                    });
                }
            },
            ExprKind::Binary(op, l, r) => {
                let rl = self.expr_any(l)?;
                self.binary_rhs(*op, dst, rl, r, e.span)?;
            }
            ExprKind::And(l, r) | ExprKind::Or(l, r) => {
                let t = dst;
                self.expr_to(l, t)?;
                let j = if matches!(e.kind, ExprKind::And(..)) {
                    self.emit(Op::JmpIfNot { a: t, off: 0 })
                } else {
                    self.emit(Op::JmpIf { a: t, off: 0 })
                };
                self.expr_to(r, t)?;
                self.patch_here(vec![j]);
            }
            ExprKind::Call { callee, args } => {
                let base = self.call_base(dst, e.span)?;
                self.expr_to(callee, base)?;
                self.args(args, e.span)?;
                self.set_line(e.span);
                self.emit(Op::Call { a: base, n: args.len() as u8 });
                if base != dst {
                    self.emit(Op::Move { a: dst, b: base });
                }
            }
            ExprKind::MethodCall { recv, name, args } => {
                let base = self.call_base(dst, e.span)?;
                let nid = self.name_id(&name.name, name.span)?;
                let static_struct = match &recv.kind {
                    ExprKind::Name(n, res)
                        if res.get() != Resolution::Unresolved && !matches!(res.get(), Resolution::Local(_)) =>
                    {
                        self.env.struct_ids.get(&n.name).copied()
                    }
                    _ => None,
                };
                if let Some(def) = static_struct {
                    self.emit(Op::GetStructFn { a: base, def, name: nid });
                    self.args(args, e.span)?;
                    self.set_line(e.span);
                    self.emit(Op::Call { a: base, n: args.len() as u8 });
                } else {
                    let rr = self.alloc(e.span)?;
                    self.expr_to(recv, rr)?;
                    self.args(args, e.span)?;
                    self.set_line(e.span);
                    self.emit(Op::CallMethod { a: base, n: args.len() as u8, name: nid });
                }
                if base != dst {
                    self.emit(Op::Move { a: dst, b: base });
                }
            }
            ExprKind::Index { obj, index } => {
                let o = self.expr_any(obj)?;
                let i = self.expr_any(index)?;
                self.set_line(e.span);
                self.emit(Op::GetIndex { a: dst, b: o, c: i });
            }
            ExprKind::Field { obj, name } => {
                let o = self.expr_any(obj)?;
                let nid = self.name_id(&name.name, name.span)?;
                self.set_line(e.span);
                self.emit(Op::GetField { a: dst, b: o, name: nid });
            }
            ExprKind::If { cond, then, else_ } => {
                let t = dst;
                let jf = self.cond_jump_false(cond)?;
                self.block_value(then, t)?;
                let jend = self.emit(Op::Jmp { off: 0 });
                self.patch_here(jf);
                match else_ {
                    Some(els) => self.expr_to(els, t)?,
                    None => {
                        self.emit(Op::LoadNil { a: t });
                    }
                }
                self.patch_here(vec![jend]);
            }
            ExprKind::Block(b) => {
                let t = dst;
                self.block_value(b, t)?;
            }
            ExprKind::Fn(decl) => {
                self.closure(decl, "<fn>".into(), dst)?;
            }
        }
        self.free_to(mark);
        Ok(())
    }

    /// Where a call puts its callee: `dst` itself when it is the newest
    /// temporary (so the result needs no move), else a fresh register.
    fn call_base(&mut self, dst: Reg, span: Span) -> CResult<Reg> {
        if dst as u16 + 1 == self.mark() && !self.is_local_reg(dst) {
            Ok(dst)
        } else {
            self.alloc(span)
        }
    }

    fn is_local_reg(&self, r: Reg) -> bool {
        self.fns.last().is_some_and(|f| f.decl_regs.values().any(|&x| x == r))
    }

    fn load_int(&mut self, i: i64, dst: Reg, span: Span) -> CResult<()> {
        if let Ok(v) = i32::try_from(i) {
            self.emit(Op::LoadInt { a: dst, v });
        } else {
            let k = self.num_const(Value::Int(i), span)?;
            self.emit(Op::LoadK { a: dst, k });
        }
        Ok(())
    }

    /// Evaluates call arguments into the registers after the callee's.
    fn args(&mut self, args: &[Expr], span: Span) -> CResult<()> {
        if args.len() > 200 {
            return Err(CompileError::new("too many arguments", span));
        }
        for a in args {
            let r = self.alloc(a.span)?;
            self.expr_to(a, r)?;
        }
        Ok(())
    }
}
