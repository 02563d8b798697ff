//! The `Vm`: everything a running program owns, and the entry points that
//! compile and run source.
//!
//! Frame layout (also in docs/architecture.md): all frames live in one value
//! stack allocated once at its full size, so slot addresses never change. A
//! frame's registers are `stack[base .. base + proto.max_slots]`; the called
//! function sits at `stack[base - 1]`, where the return value is written.
//! Arguments arrive in registers `0..arity`.

use std::io::Write;
use std::rc::Rc;
use std::time::Instant;

use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;

use crate::bytecode::Proto;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Location, TraceFrame};
use crate::frontend::compiler::{self, CompileEnv, GlobalKind};
use crate::frontend::resolve::Known;
use crate::frontend::{self, CompileError};
use crate::jit::state::{JitSettings, JitState};
use crate::runtime::format::{display, write_display, FmtCtx};
use crate::runtime::object::FuncObj;
use crate::runtime::structdef::StructDef;
use crate::runtime::{builtins, GcRef, Heap, Value};

/// A host or built-in function: receives the VM and the arguments.
pub type NativeFn = Rc<dyn Fn(&mut Vm, &[Value]) -> Result<Value, String>>;

pub struct Native {
    pub name: String,
    pub min_args: u8,
    /// `u8::MAX` for variadic.
    pub max_args: u8,
    pub f: NativeFn,
}

/// One activation record. `pc` is saved only while the frame is not running.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    pub func: GcRef<FuncObj>,
    pub base: usize,
    pub pc: usize,
}

/// Counters reported by `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub instructions: u64,
}

pub struct Vm {
    pub(crate) heap: Heap,
    pub(crate) stack: Vec<Value>,
    pub(crate) frames: Vec<Frame>,
    pub(crate) globals: Vec<Value>,
    pub(crate) env: CompileEnv,
    pub(crate) structs: Vec<StructDef>,
    pub(crate) natives: Vec<Native>,
    /// Every prototype ever compiled: their constants are GC roots.
    pub(crate) protos: Vec<Rc<Proto>>,
    pub(crate) config: Config,
    pub(crate) out: Box<dyn Write>,
    pub(crate) stats: Stats,
    pub(crate) start: Instant,
    pub(crate) interrupt: Option<Box<dyn FnMut() -> bool>>,
    pub(crate) native_names: Vec<&'static str>,
    /// Arguments of natives the host calls directly (`call_value` on a native):
    /// no frame holds them, so they are GC roots here for the call's duration.
    pub(crate) host_roots: Vec<Value>,
    pub(crate) jit: JitState,
}

/// A value stack of `n` slots, all `Nil`, whose pages the OS hands out (zeroed)
/// only when touched: writing 32 MiB of `Nil`s up front was a third of the
/// start-up time of a short program.
fn nil_stack(n: usize) -> Vec<Value> {
    const _: () = assert!(crate::runtime::value::tag::NIL == 0);
    let layout = std::alloc::Layout::array::<Value>(n).expect("stack size fits in memory");
    // SAFETY: `layout` has a non-zero size (n >= 64). All-zero bytes are a
    // `Value::Nil` (`repr(C, u64)` with discriminant 0; Nil has no payload),
    // so the `n` elements are initialised, and the allocation comes from the
    // global allocator with exactly the layout `Vec<Value>` frees with.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout) as *mut Value;
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Vec::from_raw_parts(p, n, n)
    }
}

impl Vm {
    pub fn new(config: Config) -> Vm {
        let stack = nil_stack(config.stack_slots.max(64));
        let jit = JitState::new(JitSettings {
            // Compiled loops do not count instructions or poll the interrupt
            // callback, so a VM with either runs in the interpreter only.
            enabled: config.jit && config.instruction_budget.is_none(),
            hot_loop: config.hot_loop.max(1),
            // As in LuaJIT, a function needs twice as many calls as a loop
            // needs iterations to count as hot.
            hot_func: config.hot_loop.max(1).saturating_mul(2),
            max_trace: config.max_trace,
            max_aborts: 4,
            hot_exit: config.hot_exit.max(1),
            hot_merge: config.hot_merge,
            cache_bytes: config.jit_cache,
            verbose: config.jit_verbose,
            dump: config.jit_dump,
            background: config.jit_background,
        });
        if jit.settings.enabled {
            crate::jit::libllvm::start();
        }
        let mut vm = Vm {
            heap: Heap::new(config.mem_limit),
            stack,
            frames: Vec::new(),
            // Reserving every possible global slot up front means the array never
            // moves, so compiled traces may read it by address.
            globals: Vec::with_capacity(compiler::MAX_GLOBALS),
            env: CompileEnv::new(),
            structs: Vec::new(),
            natives: Vec::new(),
            protos: Vec::new(),
            config,
            out: Box::new(std::io::BufWriter::new(std::io::stdout())),
            stats: Stats::default(),
            start: Instant::now(),
            interrupt: None,
            native_names: Vec::new(),
            host_roots: Vec::new(),
            jit,
        };
        builtins::install(&mut vm);
        vm
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where `print` writes (stdout, buffered, by default).
    pub fn set_output(&mut self, out: Box<dyn Write>) {
        let _ = self.out.flush();
        self.out = out;
    }

    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The `--jit-stats` report.
    pub fn jit_report(&self) -> String {
        self.jit.report()
    }

    /// JIT counters (traces compiled, aborted, blacklisted).
    pub fn jit_stats(&self) -> crate::jit::state::JitStats {
        crate::jit::state::JitStats { cache: self.jit.cache.stats(), ..self.jit.stats.clone() }
    }

    pub fn heap_stats(&self) -> crate::runtime::heap::HeapStats {
        let mut s = self.heap.stats;
        s.bytes = self.heap.bytes();
        s
    }

    /// Called at loop headers and calls; returning `true` stops the script.
    pub fn set_interrupt(&mut self, f: impl FnMut() -> bool + 'static) {
        // Compiled loops do not poll the callback: interpret from now on.
        self.jit.settings.enabled = false;
        self.interrupt = Some(Box::new(f));
        self.rearm_loop_headers();
    }

    pub fn set_instruction_budget(&mut self, budget: Option<u64>) {
        // Compiled loops do not count instructions: interpret from now on.
        if budget.is_some() {
            self.jit.settings.enabled = false;
        }
        self.config.instruction_budget = budget;
        self.rearm_loop_headers();
    }

    /// Whether loop headers and calls must check a budget or interrupt.
    #[inline(always)]
    pub(crate) fn polls(&self) -> bool {
        self.config.instruction_budget.is_some() || self.interrupt.is_some()
    }

    /// Sends every loop header's next arrival down the profiler's slow path,
    /// which polls when the VM now must (a parked counter would not).
    fn rearm_loop_headers(&mut self) {
        if cfg!(feature = "loop-counters") {
            for p in &self.protos {
                for slot in p.loops.iter() {
                    slot.countdown.set(0);
                }
            }
        }
    }

    pub fn set_memory_limit(&mut self, bytes: usize) {
        self.config.mem_limit = bytes;
        self.heap.limit = bytes;
    }

    /// Registers a native function as a global.
    ///
    /// # Panics
    /// When `name` is new and all 65536 global slots are taken.
    pub fn register_native(&mut self, name: &str, min_args: u8, max_args: u8, f: NativeFn, kind: GlobalKind) {
        let g = self.host_global(name, kind) as usize;
        let idx = self.natives.len() as u32;
        self.natives.push(Native { name: name.to_owned(), min_args, max_args, f });
        self.sync_globals();
        self.write_global(g as u16, Value::Native(idx));
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        self.native_names.push(leaked);
    }

    /// The slot of a global the host defines. The host API has no error path
    /// for this, and a host defining 65536 globals is a bug in the host.
    fn host_global(&mut self, name: &str, kind: GlobalKind) -> u16 {
        match self.env.define_global(name, kind) {
            Some(g) => g,
            None => panic!("cannot define global `{name}`: all {} global slots are taken", compiler::MAX_GLOBALS),
        }
    }

    pub(crate) fn sync_globals(&mut self) {
        while self.globals.len() < self.env.globals.len() {
            self.globals.push(Value::Uninit);
        }
    }

    pub(crate) fn fmt_ctx(&self) -> FmtCtx<'_> {
        FmtCtx { structs: &self.structs, native_names: &self.native_names }
    }

    /// `str(v)`, however long the text gets (see [`Vm::write_display`]).
    pub fn display(&self, v: Value) -> String {
        display(v, &self.fmt_ctx())
    }

    /// Appends the `str(v)` text to `out`. Fails with `memory limit exceeded`
    /// once `out` is longer than the memory limit: a container held in several
    /// places is written in full at each, so the text of a small value can be
    /// exponentially long, and building it is neither counted by the
    /// instruction budget nor seen by the heap until it is done.
    pub(crate) fn write_display(&self, out: &mut String, v: Value) -> Result<(), String> {
        write_display(out, v, &self.fmt_ctx(), self.heap.limit).map_err(|_| "memory limit exceeded".to_string())
    }

    /// Compiles `source` (named `file` in messages) into a runnable script closure.
    pub fn compile(&mut self, source: &str, file: &str) -> Result<Value, Error> {
        let known = self.known_globals();
        let program = frontend::parse_program_with(source, &known).map_err(|e| compile_error(e, source, file))?;
        let chunk = compiler::compile(&program, source, file, &mut self.env, &mut self.heap)
            .map_err(|e| compile_error(e, source, file))?;
        self.sync_globals();
        for id in chunk.new_structs.clone() {
            let info = &self.env.structs[id];
            self.structs.push(StructDef::new(info.name.clone(), info.fields.clone(), &info.field_ids));
        }
        for (g, proto) in &chunk.functions {
            self.register_proto(proto);
            let f = self.heap.alloc_func(FuncObj::new(proto.clone(), Box::new([])));
            self.write_global(*g, Value::Func(f));
        }
        for (sid, nid, proto) in &chunk.methods {
            self.register_proto(proto);
            let f = self.heap.alloc_func(FuncObj::new(proto.clone(), Box::new([])));
            if self.structs[*sid as usize].method(*nid).is_some() {
                self.jit.method_replaced(*sid as u32, *nid);
            }
            self.structs[*sid as usize].set_method(*nid, Value::Func(f));
        }
        self.register_proto(&chunk.script);
        let f = self.heap.alloc_func(FuncObj::new(chunk.script.clone(), Box::new([])));
        Ok(Value::Func(f))
    }

    /// What earlier chunks and the host defined, for the resolver.
    fn known_globals(&self) -> Known {
        let mut known = Known::default();
        for g in &self.env.globals {
            match g.kind {
                GlobalKind::Builtin => {}
                GlobalKind::Struct => {}
                GlobalKind::Fn => known.globals.push((g.name.clone(), true)),
                GlobalKind::Let | GlobalKind::Host => known.globals.push((g.name.clone(), false)),
            }
        }
        for s in &self.env.structs {
            known.structs.push((s.name.clone(), s.fields.clone()));
        }
        known
    }

    fn register_proto(&mut self, p: &Rc<Proto>) {
        self.protos.push(p.clone());
        for c in &p.protos {
            self.register_proto(c);
        }
    }

    /// Compiles and runs `source`; `file` names it in messages.
    pub fn run_source(&mut self, source: &str, file: &str) -> Result<Value, Error> {
        let script = self.compile(source, file)?;
        let r = self.call_value(script, &[]);
        self.flush();
        r
    }

    /// Reads and runs a file.
    pub fn run_file(&mut self, path: impl AsRef<std::path::Path>) -> Result<Value, Error> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read {}: {e}", path.display())))?;
        self.run_source(&source, &path.display().to_string())
    }

    /// Calls a Vela function value with arguments.
    pub fn call_value(&mut self, f: Value, args: &[Value]) -> Result<Value, Error> {
        let top = self.stack_top();
        if top + args.len() + 2 >= self.stack.len() {
            return Err(Error::new(ErrorKind::Runtime, "stack overflow"));
        }
        self.stack[top] = f;
        for (i, a) in args.iter().enumerate() {
            self.stack[top + 1 + i] = *a;
        }
        let depth = self.frames.len();
        // A native runs without a frame, so its argument slots are not roots and
        // a native that re-enters the VM reuses them: root the arguments here.
        let rooted = self.host_roots.len();
        if let Value::Native(_) = f {
            self.host_roots.extend_from_slice(args);
        }
        let r = self.call_at(top, args.len());
        self.host_roots.truncate(rooted);
        self.frames.truncate(depth);
        r
    }

    /// The first stack slot not used by any live frame.
    pub(crate) fn stack_top(&self) -> usize {
        match self.frames.last() {
            Some(fr) => fr.base + fr.func.get().proto.max_slots as usize,
            None => 0,
        }
    }

    /// Collects garbage with everything live rooted; errors when the heap is
    /// still over its limit afterwards.
    pub(crate) fn collect_garbage(&mut self, top: usize) -> Result<(), String> {
        let roots = self.stack[..top]
            .iter()
            .chain(self.globals.iter())
            .chain(self.host_roots.iter())
            .chain(self.structs.iter().flat_map(|s| s.methods().iter()))
            .chain(self.protos.iter().flat_map(|p| p.consts.iter()))
            .chain(self.jit.roots());
        self.heap.collect(roots);
        if self.heap.bytes() > self.heap.limit {
            return Err("memory limit exceeded".into());
        }
        Ok(())
    }

    /// A runtime error with the stack trace of the current frames.
    pub(crate) fn runtime_error(&mut self, message: String) -> Error {
        let _ = self.out.flush();
        let mut trace = Vec::new();
        for fr in self.frames.iter().rev() {
            let p = &fr.func.get().proto;
            let pc = fr.pc.saturating_sub(1).min(p.lines.len().saturating_sub(1));
            let line = p.lines.get(pc).copied().unwrap_or(p.line);
            trace.push(TraceFrame { function: p.name.clone(), file: p.file.to_string(), line });
        }
        let kind = if message.starts_with("interrupted") || message.starts_with("instruction budget") {
            ErrorKind::Interrupted
        } else {
            ErrorKind::Runtime
        };
        let location = trace.first().map(|t| Location { file: t.file.clone(), line: t.line, column: 0 });
        Error { kind, message, location, trace, rendered: None }
    }

    /// Reads a global by name.
    pub fn global(&self, name: &str) -> Option<Value> {
        let (g, _) = self.env.global(name)?;
        match self.globals.get(g as usize) {
            Some(Value::Uninit) | None => None,
            Some(v) => Some(*v),
        }
    }

    /// Sets (creating if needed) a global by name.
    ///
    /// # Panics
    /// When `name` is new and all 65536 global slots are taken.
    pub fn set_global(&mut self, name: &str, value: Value) {
        let g = match self.env.global(name) {
            Some((g, _)) => g,
            None => self.host_global(name, GlobalKind::Host),
        };
        self.sync_globals();
        self.write_global(g, value);
    }

    /// Stores global `g` from outside the interpreter loop, invalidating
    /// traces that baked in its old value.
    fn write_global(&mut self, g: u16, value: Value) {
        let old = std::mem::replace(&mut self.globals[g as usize], value);
        if self.jit.watches_global(g) && !old.identical(&value) {
            self.jit.global_written(g);
        }
    }

    /// Allocates a String value.
    pub fn new_string(&mut self, s: &str) -> Value {
        Value::Str(self.heap.alloc_str(s))
    }

    /// Allocates an Array value.
    pub fn new_array(&mut self, items: Vec<Value>) -> Value {
        Value::Array(self.heap.alloc_array(items))
    }

    /// Compiles and prints the bytecode listing of `source`.
    pub fn disassemble(&mut self, source: &str, file: &str) -> Result<String, Error> {
        let script = self.compile(source, file)?;
        let Value::Func(f) = script else { unreachable!() };
        let mut out = String::new();
        for p in self.protos.iter() {
            if Rc::ptr_eq(p, &f.get().proto) {
                break;
            }
            if p.file.as_ref() == file && !out.contains(&format!("function {} (", p.name)) {
                out.push_str(&crate::bytecode::disasm::disassemble(p));
                out.push('\n');
            }
        }
        out.push_str(&crate::bytecode::disasm::disassemble(&f.get().proto));
        Ok(out)
    }
}

/// Renders a compile error with the source line and a caret.
pub fn compile_error(e: CompileError, source: &str, file: &str) -> Error {
    let files = SimpleFile::new(file, source);
    let start = (e.span.start as usize).min(source.len());
    let end = (e.span.end as usize).clamp(start, source.len());
    let diag = Diagnostic::error().with_message(&e.message).with_labels(vec![Label::primary((), start..end)]);
    let cfg = term::Config::default();
    let rendered = term::emit_into_string(&cfg, &files, &diag).unwrap_or_else(|_| format!("error: {}", e.message));
    let line = source[..start].matches('\n').count() as u32 + 1;
    let line_start = source[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = source[line_start..start].chars().count() as u32 + 1;
    Error {
        kind: ErrorKind::Compile,
        message: e.message,
        location: Some(Location { file: file.to_owned(), line, column }),
        trace: Vec::new(),
        rendered: Some(rendered),
    }
}
