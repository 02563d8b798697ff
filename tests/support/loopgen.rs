//! Random loop-heavy Vela programs for differential testing of the trace JIT,
//! and the machinery to run them: both `tests/jit_fuzz.rs` and
//! `examples/jit_fuzz.rs` include this file with `#[path = ...] mod loopgen;`.
//!
//! A generated *program* is one file with a few structs (methods with the same
//! names on two of them), helper functions (inlined by the JIT), globals and
//! `per_program` independent *cases* `c0() .. cN()` called from `main`. Each
//! case declares its variables, runs one to three loop nests over them and
//! prints every variable after each nest. Every program runs twice,
//! `--jit=off` and in one of the `JIT_MODES` with `--jit-stats`; stdout,
//! stderr (without the `jit:` report lines) and the exit status must be
//! identical.
//!
//! Program-wide toggles give programs different characters; among them
//! branches over phases of a counter (side traces, and side traces of side
//! traces), nests that always go 2-3 deep (trace trees), small recursive
//! helpers called from loops, and globals (`GV`, a function, and `GK`, an
//! Int) reassigned inside and between loops (invalidation, volatility).
//!
//! Cases are "safe" by construction (no runtime error is intended): every Int
//! stored in a variable, field or element stays small (the generator tracks
//! a bound on each expression's magnitude in bits and reduces with `% M` when
//! it grows), divisors are non-zero constants or `(e % 7 + 8)`, indices are
//! reduced modulo the array length, and loops have bounded trip counts. The
//! last case of some programs is "risky": it adds statements that fail late
//! in a loop (overflow, division by zero, bad index, a receiver changing to a
//! struct without the method or field, a type change followed by an Int-only
//! operation, `MIN / -1`, shift counts, `int(inf)`, failed asserts), often
//! inside an inlined helper or method, so the error and its traceback come out
//! of a trace exit.

#![allow(dead_code)]

#[path = "process.rs"]
mod process;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use process::Ended;

// ===========================================================================
// Random numbers (splitmix64: no dependency, same stream on every platform)

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut r = Rng(seed);
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// An index into `weights`, chosen with probability proportional to its
    /// weight (zero weights are never chosen; all zero gives 0).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        if total == 0 {
            return 0;
        }
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w as u64 {
                return i;
            }
            x -= w as u64;
        }
        0
    }
}

// ===========================================================================
// Generator

/// What is statically known about an expression's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Always an Int.
    Int,
    /// An Int or a Float.
    Num,
    /// Always a Float.
    Float,
}

/// An expression with its kind and, if it may be an Int, a bound on its
/// magnitude: `|v| < 2^bits`.
#[derive(Clone, Debug)]
struct E {
    s: String,
    kind: Kind,
    bits: u32,
}

impl E {
    fn new(s: impl Into<String>, kind: Kind, bits: u32) -> E {
        E { s: s.into(), kind, bits }
    }
}

/// Bound assumed for any Int read from a variable, field or element.
const LEAF_BITS: u32 = 24;
/// Largest bound of a value stored without a `% M` reduction.
const STORE_BITS: u32 = 20;
/// Largest bound of a value added to a bounded variable with `+=`.
const STEP_BITS: u32 = 11;
/// Largest bound of a value added to an accumulator.
const ACC_BITS: u32 = 40;
/// Largest bound of any intermediate.
const MAX_BITS: u32 = 60;
const MODS: &[i64] = &[97, 1009, 10007, 65521];
const FLOATS: &[f64] = &[0.5, 1.5, -2.25, 3.0, 0.1, 0.25, 2.5, 1e-3, 7.75, -0.5, 100.0, 0.0, -0.0, 1e10];

fn bits_of(v: i64) -> u32 {
    (64 - v.unsigned_abs().leading_zeros()).max(1)
}

fn int_lit(v: i64) -> String {
    if v < 0 {
        format!("({v})")
    } else {
        v.to_string()
    }
}

fn float_lit(f: f64) -> String {
    let s = format!("{f:?}");
    if f.is_sign_negative() {
        format!("({s})")
    } else {
        s
    }
}

const A: u8 = 1;
const B: u8 = 2;
const C: u8 = 4;

#[derive(Clone, Debug)]
struct Counter {
    name: String,
    /// Smallest and largest value the body sees.
    lo: i64,
    hi: i64,
    /// A `for` range variable (assignable: a fresh copy per iteration).
    assignable: bool,
}

impl Counter {
    fn bits(&self) -> u32 {
        bits_of(self.lo).max(bits_of(self.hi)) + 1
    }
}

#[derive(Clone, Debug)]
struct Arr {
    name: String,
    elem: Kind,
    /// Arrays never shrink: indices below this are always valid.
    min_len: usize,
}

#[derive(Clone, Debug)]
struct SVar {
    name: String,
    /// Which structs it may hold (A | B | C bits).
    types: u8,
    assignable: bool,
}

#[derive(Clone, Debug)]
struct RoVal {
    name: String,
    kind: Kind,
}

#[derive(Clone, Debug, Default)]
struct Scope {
    /// Assignable bounded Ints.
    ints: Vec<String>,
    /// Assignable bounded-if-Int numbers (their kind changes mid-loop).
    nums: Vec<String>,
    /// Assignable Floats (may be inf or NaN).
    floats: Vec<String>,
    /// Accumulators: only `+=`/`-=`, compared and printed.
    accs: Vec<String>,
    counters: Vec<Counter>,
    /// Read-only values: for-in elements, parameters.
    ros: Vec<RoVal>,
    arrays: Vec<Arr>,
    structs: Vec<SVar>,
    bools: Vec<String>,
    /// Assignable variables holding nil or a bounded Int.
    opts: Vec<String>,
    /// Arrays whose elements are nil or bounded Ints.
    opt_arrays: Vec<Arr>,
    /// Arrays of Int arrays: (name, rows, columns).
    grids: Vec<(String, usize, usize)>,
    /// Variables holding an Int-like helper of the given arity.
    fvars: Vec<(String, usize)>,
    /// Variables holding one of the built-ins `sqrt floor ceil abs`.
    fbvars: Vec<String>,
    /// Arrays of structs: (name, kinds, length).
    sarrs: Vec<(String, u8, usize)>,
    /// Arrays of Bools.
    bool_arrays: Vec<Arr>,
    /// Array variables rebound among Int arrays: (name, candidates).
    rebinds: Vec<(String, Vec<String>)>,
    /// Closures made before the loops that update a captured accumulator.
    captors: Vec<String>,
    /// Arrays of closures of one prototype (`use_closures`).
    poly_fns: Vec<String>,
    /// Inside a loop (break/continue allowed).
    in_loop: bool,
    /// Helper bodies: parameters may be Floats, so no Int-only operations.
    no_bitwise: bool,
    /// Helpers callable from here (index limit, to avoid recursion).
    helpers_upto: usize,
    /// Methods may be called.
    methods: bool,
    /// Strings (never empty).
    strs: Vec<String>,
    /// Maps with Int and String keys and bounded Int values.
    maps: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HKind {
    /// Int result for Int arguments (Num otherwise).
    IntLike,
    /// Always a Float.
    Float,
}

#[derive(Clone, Debug)]
struct Helper {
    name: String,
    arity: usize,
    kind: HKind,
}

#[derive(Clone, Debug)]
struct StructDef {
    name: &'static str,
    /// Field names in declaration order.
    fields: Vec<&'static str>,
}

/// Per-case state.
#[derive(Default)]
struct CaseState {
    name: String,
    /// Variables printed after each loop nest.
    printed: Vec<String>,
    /// A risky statement is still to be placed.
    risky_pending: bool,
    risky: bool,
    /// Place the pending risky statement at the next opportunity.
    force_risky: bool,
    /// Iterations left for this case.
    budget: i64,
}

struct Gen {
    rng: Rng,
    lines: Vec<String>,
    indent: usize,
    helpers: Vec<Helper>,
    structs: Vec<StructDef>,
    fresh: usize,
    case: CaseState,
    /// Program-wide feature toggles, so programs differ in character.
    use_closures: bool,
    use_recursion: bool,
    use_globals_write: bool,
    /// Branches over phases of a counter (flipping partway, back and forth,
    /// or one inside another), for side traces and side traces of those.
    use_phases: bool,
    /// Loop kind that always nests 2 or 3 deep (trace trees linked at headers).
    use_deep_nests: bool,
    /// Small bounded recursive helpers (`hfib`, `hsum`, `hacc`, `hev`/`hod`)
    /// called from loops.
    use_rec_helpers: bool,
    /// The global function `GV` and the numeric global `GK`, baked into
    /// traces as constants, reassigned in and between loops (invalidation,
    /// and volatility once one changes often).
    use_global_swaps: bool,
    /// Levels of nested loop the next loop bodies must contain.
    force_nest: u32,
    /// Strings, maps and short-lived arrays in loops (helper calls, GC
    /// exits in traces).
    use_alloc: bool,
}

/// A generated program.
#[derive(Clone, Debug)]
pub struct Program {
    pub seed: u64,
    pub text: String,
    pub cases: usize,
    /// Whether the last case may fail at run time on purpose.
    pub risky: bool,
}

/// Generates the program for `seed` with `cases` case functions.
pub fn generate(seed: u64, cases: usize) -> Program {
    let mut g = Gen {
        rng: Rng::new(seed),
        lines: Vec::new(),
        indent: 0,
        helpers: Vec::new(),
        structs: Vec::new(),
        fresh: 0,
        case: CaseState::default(),
        use_closures: false,
        use_recursion: false,
        use_globals_write: false,
        use_phases: false,
        use_deep_nests: false,
        use_rec_helpers: false,
        use_global_swaps: false,
        force_nest: 0,
        use_alloc: false,
    };
    let risky = g.rng.percent(45);
    g.program(seed, cases, risky);
    let mut text = g.lines.join("\n");
    text.push('\n');
    Program { seed, text, cases, risky }
}

impl Gen {
    fn line(&mut self, s: impl AsRef<str>) {
        let mut l = "  ".repeat(self.indent);
        l.push_str(s.as_ref());
        self.lines.push(l);
    }

    fn open(&mut self, s: impl AsRef<str>) {
        self.line(s);
        self.indent += 1;
    }

    fn close(&mut self) {
        self.indent -= 1;
        self.line("}");
    }

    fn name(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn modulus(&mut self) -> i64 {
        *self.rng.pick(MODS)
    }

    /// `e` reduced to at most `limit` bits if it may be a larger Int.
    fn wrap(&mut self, e: E, limit: u32) -> E {
        if e.kind == Kind::Float || e.bits <= limit {
            return e;
        }
        let m = self.modulus();
        E::new(format!("({} % {m})", e.s), e.kind, bits_of(m))
    }

    // ---- program structure ----

    fn program(&mut self, seed: u64, cases: usize, risky: bool) {
        self.use_closures = self.rng.percent(10);
        self.use_recursion = self.rng.percent(15);
        self.use_globals_write = self.rng.percent(20);
        self.use_phases = self.rng.percent(35);
        self.use_deep_nests = self.rng.percent(30);
        self.use_rec_helpers = self.rng.percent(30);
        self.use_global_swaps = self.rng.percent(35);
        self.use_alloc = self.rng.percent(50);
        self.line(format!("// jit fuzz program, seed {seed}"));
        self.structs_and_globals();
        self.helper_fns();
        self.methods();
        for k in 0..cases {
            let risky_case = risky && k + 1 == cases;
            self.case_fn(k, risky_case);
        }
        self.open("fn main() {");
        for k in 0..cases {
            self.line(format!("c{k}()"));
        }
        self.line("print(\"globals\", G0, G1, GA, GF, GH, GK, GV)");
        self.close();
    }

    fn structs_and_globals(&mut self) {
        let mut a = vec!["x", "y"];
        if self.rng.percent(40) {
            a.push("w");
        }
        let mut b = vec!["x", "y", "z"];
        self.shuffle(&mut a);
        self.shuffle(&mut b);
        let c = if self.rng.percent(50) { vec!["x"] } else { vec!["q", "x"] };
        for (name, fields) in [("A", &a), ("B", &b), ("C", &c)] {
            self.line(format!("struct {name} {{ {} }}", fields.join(", ")));
        }
        self.structs = vec![
            StructDef { name: "A", fields: a },
            StructDef { name: "B", fields: b },
            StructDef { name: "C", fields: c },
        ];
        let g0 = self.rng.int(-20, 40);
        self.line(format!("let G0 = {}", int_lit(g0)));
        self.line("let G1 = 0");
        let n = self.rng.int(3, 7);
        let ga: Vec<String> = (0..n).map(|_| self.rng.int(-9, 30).to_string()).collect();
        self.line(format!("let GA = [{}]", ga.join(", ")));
        let gf = *self.rng.pick(FLOATS);
        self.line(format!("let GF = {}", float_lit(gf)));
        // A global holding a function: reassigning it invalidates inlined calls.
        self.line("let GH = h_id");
        // Two more, reassigned more often (see `use_global_swaps`): a small
        // Int and a function; every reassignment invalidates the traces that
        // baked them in, until they change often enough to be loaded instead.
        let gk = self.rng.int(1, 20);
        self.line(format!("let GK = {gk}"));
        self.line("let GV = h_id");
    }

    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }

    fn helper_fns(&mut self) {
        // Helpers the risky statements use (cheap to have always).
        self.line("fn hov(a, b) { return a * b + 1 }");
        self.line("fn hov2(a) { return hov(a, 7) - 1 }");
        self.line("fn hdz(a, b) { return a / b }");
        self.line("fn hmod(a, b) { return h_id(a) % b }");
        self.line("fn h_id(a) { return a }");
        self.line("fn hdeep(n) {");
        self.line("  let s = 0");
        self.line("  for k in 0..3 { s += k }");
        self.line("  if n > 0 { return hdeep(n - 1) + s }");
        self.line("  return s");
        self.line("}");
        self.helpers.push(Helper { name: "h_id".into(), arity: 1, kind: HKind::IntLike });
        let n = self.rng.int(2, 5) as usize;
        for k in 0..n {
            let arity = self.rng.int(1, 3) as usize;
            let kind = if self.rng.percent(25) { HKind::Float } else { HKind::IntLike };
            let params: Vec<String> = (0..arity).map(|i| format!("p{i}")).collect();
            let name = format!("h{k}");
            self.open(format!("fn {name}({}) {{", params.join(", ")));
            let mut sc = Scope { no_bitwise: true, helpers_upto: self.helpers.len(), ..Scope::default() };
            for p in &params {
                sc.ros.push(RoVal { name: p.clone(), kind: Kind::Int });
            }
            sc.ints.clear();
            self.helper_body(&sc, kind);
            self.close();
            self.helpers.push(Helper { name, arity, kind });
        }
        if self.use_recursion {
            self.open("fn hrec(n) {");
            self.line("if n <= 0 { return 1 }");
            self.line("return (hrec(n - 1) * 3 + n) % 1009");
            self.close();
        }
        if self.use_rec_helpers {
            self.rec_helpers();
        }
    }

    /// Recursive helpers; callers keep their depth argument below 10, so
    /// each call is at most a few hundred frames of work. They never call
    /// `GH` or `GV`, which may be rebound to anything.
    fn rec_helpers(&mut self) {
        // Two recursive calls per frame.
        let base = self.rng.int(1, 2);
        self.line(format!("fn hfib(n) {{ if n < {} {{ return n }} return hfib(n - 1) + hfib(n - 2) }}", base + 1));
        // A loop in every frame: each recursion level enters the loop's trace
        // from a different depth.
        let m = self.modulus();
        let w = self.rng.int(1, 5);
        self.open("fn hsum(n) {");
        self.line("let s = 0");
        self.line(format!("for k in 0..n {{ s += k * {w} }}"));
        self.line("if n <= 0 { return s }");
        self.line(format!("return (s + hsum(n - 1)) % {m}"));
        self.close();
        // Tail-style recursion with an accumulator.
        let (a, m) = (self.rng.int(2, 9), self.modulus());
        self.line(format!("fn hacc(n, a) {{ if n <= 0 {{ return a }} return hacc(n - 1, (a * {a} + n) % {m}) }}"));
        // Mutual recursion returning Bools.
        self.line("fn hev(n) { if n <= 0 { return true } return hod(n - 1) }");
        self.line("fn hod(n) { if n <= 0 { return false } return hev(n - 1) }");
    }

    /// The result of a helper: bounded Int-like, or a Float.
    fn helper_result(&mut self, sc: &Scope, kind: HKind) -> String {
        match kind {
            HKind::IntLike => {
                let e = self.int_expr(sc, 2);
                self.wrap(e, STORE_BITS).s
            }
            HKind::Float => {
                let e = self.float_expr(sc, 2);
                e.s
            }
        }
    }

    fn helper_body(&mut self, sc: &Scope, kind: HKind) {
        match self.rng.below(5) {
            0 | 1 => {
                let r = self.helper_result(sc, kind);
                self.line(format!("return {r}"));
            }
            2 => {
                let c = self.cond(sc, 1);
                let r1 = self.helper_result(sc, kind);
                let r2 = self.helper_result(sc, kind);
                self.open(format!("if {c} {{"));
                self.line(format!("return {r1}"));
                self.close();
                self.line(format!("return {r2}"));
            }
            3 => {
                let t = self.name("t");
                let e = self.int_expr(sc, 2);
                let e = self.wrap(e, STORE_BITS);
                self.line(format!("let {t} = {}", e.s));
                let mut sc2 = sc.clone();
                sc2.ints.push(t.clone());
                let c = self.cond(&sc2, 1);
                let e2 = self.int_expr(&sc2, 2);
                let e2 = self.wrap(e2, STORE_BITS);
                self.open(format!("if {c} {{"));
                self.line(format!("{t} = {}", e2.s));
                self.close();
                if kind == HKind::Float {
                    self.line(format!("return {t} * 0.5 + 0.25"));
                } else {
                    self.line(format!("return {t}"));
                }
            }
            _ => {
                // A small loop inside an inlined call: the recorder aborts.
                let t = self.name("t");
                let k = self.name("k");
                self.line(format!("let {t} = 0"));
                let n = self.rng.int(1, 4);
                self.open(format!("for {k} in 0..{n} {{"));
                let mut sc2 = sc.clone();
                sc2.counters.push(Counter { name: k.clone(), lo: 0, hi: n - 1, assignable: false });
                let e = self.int_expr(&sc2, 1);
                let e = self.wrap(e, STORE_BITS);
                let m = self.modulus();
                self.line(format!("{t} = ({t} + {}) % {m}", e.s));
                if self.rng.percent(40) && kind == HKind::IntLike {
                    let mut sc3 = sc2.clone();
                    sc3.ints.push(t.clone());
                    let c = self.cond(&sc3, 1);
                    self.line(format!("if {c} {{ return {t} }}"));
                }
                self.close();
                if kind == HKind::Float {
                    self.line(format!("return {t} / 4.0"));
                } else {
                    self.line(format!("return {t}"));
                }
            }
        }
    }

    fn methods(&mut self) {
        for (si, sname) in ["A", "B"].into_iter().enumerate() {
            let types = if si == 0 { A } else { B };
            self.open(format!("impl {sname} {{"));
            let base = Scope {
                structs: vec![SVar { name: "self".into(), types, assignable: false }],
                helpers_upto: self.helpers.len(),
                ..Scope::default()
            };
            // m0(self, a): Int for an Int argument.
            let mut sc = base.clone();
            sc.ros.push(RoVal { name: "a".into(), kind: Kind::Int });
            self.open("fn m0(self, a) {");
            if self.rng.percent(40) {
                let c = self.cond(&sc, 1);
                let e = self.int_expr(&sc, 2);
                let e = self.wrap(e, STORE_BITS);
                self.line(format!("if {c} {{ return {} }}", e.s));
            }
            let e = self.int_expr(&sc, 2);
            let e = self.wrap(e, STORE_BITS);
            self.line(format!("return {}", e.s));
            self.close();
            // m1(self): a number.
            self.open("fn m1(self) {");
            let e = self.num_expr(&base, 2);
            let e = self.wrap(e, STORE_BITS);
            self.line(format!("return {}", e.s));
            self.close();
            // bump(self, d): mutates fields.
            let mut sc = base.clone();
            sc.ros.push(RoVal { name: "d".into(), kind: Kind::Int });
            self.open("fn bump(self, d) {");
            let m = self.modulus();
            self.line(format!("self.x = (self.x + d) % {m}"));
            if self.rng.percent(50) {
                let e = self.num_expr(&sc, 1);
                let e = self.wrap(e, STORE_BITS);
                self.line(format!("self.y = {}", e.s));
            }
            if si == 1 && self.rng.percent(60) {
                self.line("self.z = (self.z + d) % 97");
            }
            self.close();
            self.line("fn mdiv(self, d) { return self.x / d }");
            self.line("fn getx(self) { return self.x }");
            self.close();
        }
    }

    // ---- cases ----

    fn case_fn(&mut self, k: usize, risky: bool) {
        self.case = CaseState {
            name: format!("c{k}"),
            printed: Vec::new(),
            risky_pending: risky,
            risky,
            force_risky: false,
            budget: 4000,
        };
        self.open(format!("fn c{k}() {{"));
        let mut sc = Scope { helpers_upto: self.helpers.len(), methods: true, ..Scope::default() };
        self.declarations(&mut sc);
        let nests = self.rng.int(1, 3);
        for l in 0..nests {
            if self.rng.percent(30) {
                self.stmt(&mut sc, 0);
            }
            if self.rng.percent(8) {
                // Enough garbage for a collection between trace runs.
                let (k, j) = (self.name("k"), self.name("junk"));
                self.line(format!("for {k} in 0..150 {{ let {j} = array(4000, {k}) }}"));
            }
            if self.rng.percent(12) {
                self.merge_loop(&sc);
            }
            let budget = *self.rng.pick(&[6, 20, 60, 200, 500, 1000, 2000]);
            let budget = budget.min(self.case.budget);
            if budget >= 3 {
                self.loop_nest(&sc, 0, budget);
            }
            self.print_vars(&format!("c{k}/L{l}"));
        }
        if self.case.risky_pending {
            self.case.force_risky = true;
            let budget = self.rng.int(20, 300);
            self.loop_nest(&sc, 0, budget);
            self.print_vars(&format!("c{k}/R"));
        }
        self.print_vars(&format!("c{k}/end"));
        self.close();
    }

    /// A long loop whose branch is taken every few iterations: a root trace,
    /// a side trace for the branch, and (the root reaching a checkpoint,
    /// 1024 entries, with `--hot-merge=2`) the side trace merged into the
    /// root's loop. The branch changes a variable only it touches and
    /// sometimes one the loop also changes, so merged code carries both
    /// round the loop.
    fn merge_loop(&mut self, sc: &Scope) {
        let (k, a, b) = (self.name("k"), self.name("ma"), self.name("mb"));
        let (va, vb) = (self.rng.int(-20, 50), self.rng.int(-20, 50));
        self.line(format!("let {a} = {}", int_lit(va)));
        self.line(format!("let {b} = {}", int_lit(vb)));
        let n = self.rng.int(2500, 7000);
        let period = self.rng.int(2, 5);
        let phase = self.rng.int(0, period - 1);
        self.open(format!("for {k} in 0..{n} {{"));
        let mut sc2 = sc.clone();
        sc2.counters.push(Counter { name: k.clone(), lo: 0, hi: n - 1, assignable: false });
        sc2.ints.push(a.clone());
        let e = self.int_expr(&sc2, 1);
        let e = self.wrap(e, STORE_BITS);
        let m = self.modulus();
        self.line(format!("{a} = ({a} + {}) % {m}", e.s));
        let cond = if self.rng.percent(70) { format!("{k} % {period} == {phase}") } else { self.cond(&sc2, 1) };
        self.open(format!("if {cond} {{"));
        sc2.ints.push(b.clone());
        let e = self.int_expr(&sc2, 1);
        let e = self.wrap(e, STORE_BITS);
        let m = self.modulus();
        self.line(format!("{b} = ({b} + {}) % {m}", e.s));
        if self.rng.percent(40) {
            self.line(format!("{a} = ({a} + 1) % {m}"));
        }
        self.close();
        self.close();
        self.case.printed.push(a);
        self.case.printed.push(b);
    }

    fn print_vars(&mut self, label: &str) {
        let mut args = vec![format!("\"{label}\"")];
        args.extend(self.case.printed.iter().cloned());
        self.line(format!("print({})", args.join(", ")));
    }

    fn declarations(&mut self, sc: &mut Scope) {
        let mut printed = Vec::new();
        for _ in 0..self.rng.int(1, 3) {
            let n = self.name("n");
            let v = if self.rng.percent(80) { self.rng.int(-30, 60) } else { self.rng.int(-100_000, 100_000) };
            self.line(format!("let {n} = {}", int_lit(v)));
            sc.ints.push(n.clone());
            printed.push(n);
        }
        for _ in 0..self.rng.int(1, 2) {
            let x = self.name("x");
            let init =
                if self.rng.percent(60) { int_lit(self.rng.int(-20, 50)) } else { float_lit(*self.rng.pick(FLOATS)) };
            self.line(format!("let {x} = {init}"));
            sc.nums.push(x.clone());
            printed.push(x);
        }
        for _ in 0..self.rng.int(0, 2) {
            let f = self.name("f");
            let init = *self.rng.pick(FLOATS);
            self.line(format!("let {f} = {}", float_lit(init)));
            sc.floats.push(f.clone());
            printed.push(f);
        }
        let acc = self.name("acc");
        let init = if self.rng.percent(75) { "0" } else { "0.0" };
        self.line(format!("let {acc} = {init}"));
        sc.accs.push(acc.clone());
        printed.push(acc);
        if self.use_closures {
            // A captured accumulator (a cell) and a closure updating it,
            // both made before the loops: the loops read and write the cell,
            // and calls of the closure inline its upvalue accesses.
            let (cap, kf) = (self.name("cap"), self.name("kf"));
            self.line(format!("let {cap} = 0"));
            if self.rng.percent(50) {
                self.line(format!("let {kf} = fn(q) {{ {cap} += q % 7\n return {cap} % 101 }}"));
            } else {
                // With a loop of its own: called natively, its traces load
                // the cell through the closure in their frame's callee slot.
                let t = self.name("t");
                self.line(format!(
                    "let {kf} = fn(q) {{ for {t} in 0..3 {{ {cap} += (q + {t}) % 7 }}\n return {cap} % 101 }}"
                ));
            }
            sc.accs.push(cap.clone());
            sc.captors.push(kf);
            printed.push(cap);
            // Four closures of one prototype, each over its own `z`: the
            // calls through `kfs[..]` make polymorphic call sites.
            let (kfs, z) = (self.name("kfs"), self.name("z"));
            self.line(format!("let {kfs} = []"));
            self.line(format!("for {z} in 0..4 {{ {kfs}.push(fn(q) {{ return (q * 3 + {z}) % 101 }}) }}"));
            sc.poly_fns.push(kfs);
        }
        if self.use_alloc {
            for _ in 0..self.rng.int(1, 2) {
                let s = self.name("s");
                self.line(format!("let {s} = \"s\""));
                sc.strs.push(s.clone());
                printed.push(s);
            }
            let m = self.name("m");
            self.line(format!("let {m} = {{}}"));
            sc.maps.push(m.clone());
            printed.push(m);
        }
        for _ in 0..self.rng.int(1, 3) {
            let a = self.name("a");
            let len = self.rng.int(2, 9) as usize;
            let elem = *self.rng.pick(&[Kind::Int, Kind::Int, Kind::Num, Kind::Float]);
            let items: Vec<String> = (0..len)
                .map(|_| match elem {
                    Kind::Int => int_lit(self.rng.int(-20, 99)),
                    Kind::Float => float_lit(*self.rng.pick(FLOATS)),
                    Kind::Num => {
                        if self.rng.percent(50) {
                            int_lit(self.rng.int(-20, 99))
                        } else {
                            float_lit(*self.rng.pick(FLOATS))
                        }
                    }
                })
                .collect();
            if elem == Kind::Int && self.rng.percent(15) {
                let fill = self.rng.int(-5, 5);
                self.line(format!("let {a} = array({len}, {})", int_lit(fill)));
            } else {
                self.line(format!("let {a} = [{}]", items.join(", ")));
            }
            sc.arrays.push(Arr { name: a.clone(), elem, min_len: len });
            printed.push(a.clone());
            if self.rng.percent(15) {
                // An alias: writes through either name hit the same array.
                let al = self.name("al");
                self.line(format!("let {al} = {a}"));
                sc.arrays.push(Arr { name: al, elem, min_len: len });
            }
        }
        let ns = self.rng.int(1, 3);
        for i in 0..ns {
            let s = self.name("s");
            let ty = if i == 0 || self.rng.percent(50) { "A" } else { "B" };
            let lit = self.struct_lit(ty);
            self.line(format!("let {s} = {lit}"));
            sc.structs.push(SVar { name: s.clone(), types: if ty == "A" { A } else { B }, assignable: false });
            printed.push(s);
        }
        if self.rng.percent(70) {
            let o = self.name("o");
            let first = sc.structs[0].name.clone();
            self.line(format!("let {o} = {first}"));
            sc.structs.push(SVar { name: o.clone(), types: A | B, assignable: true });
            printed.push(o.clone());
            // Make sure both kinds exist to switch between.
            if !sc.structs.iter().any(|s| s.types == B) {
                let s = self.name("s");
                let lit = self.struct_lit("B");
                self.line(format!("let {s} = {lit}"));
                sc.structs.push(SVar { name: s.clone(), types: B, assignable: false });
                printed.push(s);
            }
        }
        if self.rng.percent(50) {
            let b = self.name("b");
            let v = if self.rng.percent(50) { "true" } else { "false" };
            self.line(format!("let {b} = {v}"));
            sc.bools.push(b.clone());
            printed.push(b);
        }
        if self.rng.percent(40) {
            let u = self.name("u");
            if self.rng.percent(50) {
                self.line(format!("let {u}"));
            } else {
                let v = self.rng.int(-9, 40);
                self.line(format!("let {u} = {}", int_lit(v)));
            }
            sc.opts.push(u.clone());
            printed.push(u);
        }
        if self.rng.percent(25) {
            let on = self.name("on");
            let len = self.rng.int(2, 7) as usize;
            let items: Vec<String> = (0..len)
                .map(|_| if self.rng.percent(40) { "nil".to_string() } else { int_lit(self.rng.int(-9, 40)) })
                .collect();
            self.line(format!("let {on} = [{}]", items.join(", ")));
            sc.opt_arrays.push(Arr { name: on.clone(), elem: Kind::Int, min_len: len });
            printed.push(on);
        }
        if self.rng.percent(25) {
            let g = self.name("g");
            let (r, c) = (self.rng.int(2, 4) as usize, self.rng.int(2, 5) as usize);
            let rows: Vec<String> = (0..r)
                .map(|_| {
                    let items: Vec<String> = (0..c).map(|_| int_lit(self.rng.int(-9, 60))).collect();
                    format!("[{}]", items.join(", "))
                })
                .collect();
            self.line(format!("let {g} = [{}]", rows.join(", ")));
            sc.grids.push((g.clone(), r, c));
            printed.push(g);
        }
        let int_helpers: Vec<Helper> = self.helpers.iter().filter(|h| h.kind == HKind::IntLike).cloned().collect();
        if self.rng.percent(30) && !int_helpers.is_empty() {
            let h = self.rng.pick(&int_helpers).clone();
            let fv = self.name("fv");
            self.line(format!("let {fv} = {}", h.name));
            sc.fvars.push((fv.clone(), h.arity));
            printed.push(fv);
        }
        if self.rng.percent(15) {
            let fb = self.name("fb");
            let f = *self.rng.pick(&["sqrt", "floor", "ceil", "abs"]);
            self.line(format!("let {fb} = {f}"));
            sc.fbvars.push(fb.clone());
            printed.push(fb);
        }
        let plain: Vec<SVar> = sc.structs.iter().filter(|s| !s.assignable).cloned().collect();
        if self.rng.percent(30) && plain.len() >= 2 {
            let ps = self.name("ps");
            let len = self.rng.int(2, 5) as usize;
            let items: Vec<SVar> = (0..len).map(|_| self.rng.pick(&plain).clone()).collect();
            let types = items.iter().fold(0, |t, s| t | s.types);
            let names: Vec<String> = items.iter().map(|s| s.name.clone()).collect();
            self.line(format!("let {ps} = [{}]", names.join(", ")));
            sc.sarrs.push((ps.clone(), types, len));
            printed.push(ps);
        }
        let int_arrays: Vec<Arr> =
            sc.arrays.iter().filter(|a| a.elem == Kind::Int && !a.name.starts_with("al")).cloned().collect();
        if int_arrays.len() >= 2 && self.rng.percent(40) {
            let ar = self.name("ar");
            self.line(format!("let {ar} = {}", int_arrays[0].name));
            let min_len = int_arrays.iter().map(|a| a.min_len).min().unwrap_or(1);
            sc.arrays.push(Arr { name: ar.clone(), elem: Kind::Int, min_len });
            sc.rebinds.push((ar, int_arrays.iter().map(|a| a.name.clone()).collect()));
        }
        if self.rng.percent(20) {
            let bb = self.name("bb");
            let len = self.rng.int(2, 6) as usize;
            let items: Vec<&str> = (0..len).map(|_| if self.rng.percent(50) { "true" } else { "false" }).collect();
            self.line(format!("let {bb} = [{}]", items.join(", ")));
            sc.bool_arrays.push(Arr { name: bb.clone(), elem: Kind::Int, min_len: len });
            printed.push(bb);
        }
        if self.case.risky {
            self.line("let r0 = 1");
            let d = self.rng.int(3, 900);
            self.line(format!("let r1 = 9223372036854775807 - {d}"));
            let d = self.rng.int(3, 900);
            self.line(format!("let r2 = -9223372036854775807 + {d}"));
            let r3 = self.rng.int(2, 3);
            self.line(format!("let r3 = {r3}"));
            self.line("let r4 = 0");
            self.line("let rmin = -9223372036854775807 - 1");
            self.line("let rc = C { x: 1 }");
            let first = sc.structs[0].name.clone();
            self.line(format!("let ro = {first}"));
            self.line("let rf = h_id");
            printed.extend(["r0", "r1", "r2", "r3", "r4"].map(String::from));
        }
        self.case.printed = printed;
    }

    fn struct_lit(&mut self, ty: &str) -> String {
        let def = self.structs.iter().find(|d| d.name == ty).expect("struct").clone();
        let mut fields: Vec<String> = def
            .fields
            .iter()
            .map(|f| {
                let v = match *f {
                    "y" => {
                        if self.rng.percent(50) {
                            float_lit(*self.rng.pick(FLOATS))
                        } else {
                            int_lit(self.rng.int(-9, 50))
                        }
                    }
                    _ => int_lit(self.rng.int(-9, 50)),
                };
                format!("{f}: {v}")
            })
            .collect();
        self.shuffle(&mut fields);
        format!("{ty} {{ {} }}", fields.join(", "))
    }

    // ---- loops ----

    /// Trip count for a loop with `budget` iterations left in its nest.
    fn trips(&mut self, budget: i64) -> i64 {
        let t = match self.rng.below(10) {
            0..=2 => self.rng.int(3, 8),
            3..=6 => self.rng.int(8, 40),
            _ => self.rng.int(40, 2000),
        };
        t.clamp(1, budget.max(1))
    }

    /// A loop (with possibly nested loops) of at most `budget` iterations in all.
    fn loop_nest(&mut self, sc: &Scope, depth: u32, budget: i64) {
        let t = self.trips(budget);
        self.case.budget -= t;
        let inner = budget / t.max(1);
        let mut sc = sc.clone();
        sc.in_loop = true;
        let others = sc.grids.len() + sc.sarrs.len() + sc.opt_arrays.len();
        let kind = self.rng.weighted(&[
            45,
            20,
            10,
            if sc.arrays.is_empty() { 0 } else { 20 },
            5,
            if others == 0 { 0 } else { 10 },
            5,
            if self.use_deep_nests && depth == 0 && budget >= 40 { 15 } else { 0 },
        ]);
        match kind {
            0 => {
                // for i in lo..hi / lo..=hi
                let i = self.name("i");
                let lo = match self.rng.below(10) {
                    0..=5 => 0,
                    6 | 7 => self.rng.int(1, 5),
                    8 => self.rng.int(-10, -1),
                    _ => self.rng.int(1_000_000, 3_000_000_000),
                };
                if lo > 1_000_000 && self.rng.percent(40) {
                    // A range at the edge of the Int range: the counter must not overflow.
                    let t = t.min(50);
                    let (head, lo, hi) = match self.rng.below(3) {
                        0 => {
                            let lo = i64::MAX - (t - 1);
                            (format!("for {i} in {lo}..={} {{", i64::MAX), lo, i64::MAX)
                        }
                        1 => {
                            let lo = i64::MAX - t;
                            (format!("for {i} in {lo}..{} {{", i64::MAX), lo, i64::MAX - 1)
                        }
                        _ => {
                            let hi = i64::MIN + t;
                            (format!("for {i} in {}..{} {{", int_lit(i64::MIN), int_lit(hi)), i64::MIN, hi - 1)
                        }
                    };
                    self.open(head);
                    sc.counters.push(Counter { name: i, lo, hi, assignable: false });
                    self.loop_body(&mut sc, depth, inner);
                    self.close();
                    return;
                }
                let hi = lo + t;
                let head = match self.rng.below(6) {
                    0 => format!("for {i} in {}..={} {{", int_lit(lo), int_lit(hi - 1)),
                    1 if lo == 0 => {
                        // The bound in a variable.
                        let lim = self.name("lim");
                        self.line(format!("let {lim} = {t}"));
                        format!("for {i} in 0..{lim} {{")
                    }
                    _ => format!("for {i} in {}..{} {{", int_lit(lo), int_lit(hi)),
                };
                self.open(head);
                sc.counters.push(Counter { name: i, lo, hi: hi - 1, assignable: true });
                self.loop_body(&mut sc, depth, inner);
                self.close();
            }
            1 => {
                let w = self.name("w");
                self.line(format!("let {w} = 0"));
                let c = self.cond(&sc, 1);
                let head = match self.rng.below(4) {
                    0 => format!("while ({c}) && {w} < {t} {{"),
                    1 => format!("while {w} < {t} && (({c}) || {w} < 3) {{"),
                    2 => format!("while !({w} >= {t}) {{"),
                    _ => format!("while {w} < {t} && ({c}) {{"),
                };
                self.open(head);
                self.line(format!("{w} += 1"));
                sc.counters.push(Counter { name: w, lo: 1, hi: t, assignable: false });
                self.loop_body(&mut sc, depth, inner);
                self.close();
            }
            2 => {
                let w = self.name("w");
                self.line(format!("let {w} = 0"));
                self.open("loop {");
                self.line(format!("{w} += 1"));
                self.line(format!("if {w} > {t} {{ break }}"));
                sc.counters.push(Counter { name: w, lo: 1, hi: t, assignable: false });
                self.loop_body(&mut sc, depth, inner);
                self.close();
            }
            3 => {
                let arr = self.rng.pick(&sc.arrays).clone();
                let v = self.name("v");
                let counted = self.rng.percent(50);
                let k = self.name("k");
                if counted {
                    self.line(format!("let {k} = 0"));
                }
                self.open(format!("for {v} in {} {{", arr.name));
                if counted {
                    self.line(format!("{k} += 1"));
                    sc.counters.push(Counter { name: k, lo: 1, hi: arr.min_len as i64, assignable: false });
                }
                sc.ros.push(RoVal { name: v, kind: arr.elem });
                let inner = budget / (arr.min_len as i64 + 8);
                self.loop_body(&mut sc, depth, inner);
                self.close();
            }
            5 => {
                let v = self.name("v");
                let k = self.name("k");
                self.line(format!("let {k} = 0"));
                let which = self.rng.below(others as u64) as usize;
                let trips;
                if which < sc.grids.len() {
                    let (g, r, c) = sc.grids[which].clone();
                    self.open(format!("for {v} in {g} {{"));
                    sc.arrays.push(Arr { name: v, elem: Kind::Int, min_len: c });
                    trips = r;
                } else if which < sc.grids.len() + sc.sarrs.len() {
                    let (ps, types, len) = sc.sarrs[which - sc.grids.len()].clone();
                    self.open(format!("for {v} in {ps} {{"));
                    sc.structs.push(SVar { name: v, types, assignable: false });
                    trips = len;
                } else {
                    let on = sc.opt_arrays[which - sc.grids.len() - sc.sarrs.len()].clone();
                    self.open(format!("for {v} in {} {{", on.name));
                    sc.opts.push(v);
                    trips = on.min_len;
                }
                self.line(format!("{k} += 1"));
                sc.counters.push(Counter { name: k, lo: 1, hi: trips as i64, assignable: false });
                self.loop_body(&mut sc, depth, budget / (trips as i64 + 4));
                self.close();
            }
            7 => {
                // A nest 2 or 3 deep whose outer loops turn only a few times,
                // so the inner loops' traces are entered (and linked to)
                // again and again.
                let t2 = self.rng.int(3, 12).min(budget);
                self.case.budget += t - t2;
                let inner = budget / t2;
                self.force_nest = if inner >= 60 && self.rng.percent(50) { 2 } else { 1 };
                let i = self.name("i");
                self.open(format!("for {i} in 0..{t2} {{"));
                sc.counters.push(Counter { name: i, lo: 0, hi: t2 - 1, assignable: true });
                self.loop_body(&mut sc, depth, inner);
                self.close();
                self.force_nest = 0;
            }
            6 => {
                // A float counter.
                let fw = self.name("fw");
                let start = *self.rng.pick(&[0.0, -1.5, 0.25, 100.0]);
                let step = *self.rng.pick(&[0.5, 0.25, 1.5, 0.1, 0.75]);
                let limit = start + step * t as f64;
                self.line(format!("let {fw} = {}", float_lit(start)));
                self.open(format!("while {fw} < {} {{", float_lit(limit)));
                self.line(format!("{fw} += {}", float_lit(step)));
                sc.ros.push(RoVal { name: fw, kind: Kind::Float });
                self.loop_body(&mut sc, depth, inner);
                self.close();
            }
            _ => {
                // for-in over a global array or a literal.
                let v = self.name("v");
                if self.rng.percent(50) {
                    self.open(format!("for {v} in GA {{"));
                } else {
                    let n = self.rng.int(2, 6);
                    let items: Vec<String> = (0..n).map(|_| int_lit(self.rng.int(-5, 20))).collect();
                    self.open(format!("for {v} in [{}] {{", items.join(", ")));
                }
                sc.ros.push(RoVal { name: v, kind: Kind::Int });
                self.loop_body(&mut sc, depth, budget / 8);
                self.close();
            }
        }
    }

    fn loop_body(&mut self, sc: &mut Scope, depth: u32, inner: i64) {
        // Now and then a long body (long traces, perhaps too long).
        let n = if self.rng.percent(4) { self.rng.int(10, 25) } else { self.rng.int(1, 5) };
        let mut nested = false;
        let forced = (self.force_nest > 0 && depth < 2 && inner >= 3).then(|| self.rng.below(n as u64) as i64);
        for k in 0..n {
            if self.case.risky_pending && (self.case.force_risky || self.rng.percent(25)) {
                self.risky_stmt(sc);
                self.case.risky_pending = false;
                continue;
            }
            if !nested && (forced == Some(k) || depth < 2 && inner >= 3 && self.rng.percent(35)) {
                nested = true;
                if forced.is_some() {
                    self.force_nest -= 1;
                }
                self.loop_nest(sc, depth + 1, inner);
                continue;
            }
            self.stmt(sc, 0);
        }
    }

    /// A late-flipping constant for counter `c`: inside its range, mostly
    /// in the second half.
    fn late_k(&mut self, c: &Counter) -> i64 {
        if c.hi <= c.lo {
            return c.lo;
        }
        let span = c.hi - c.lo;
        if self.rng.percent(70) {
            self.rng.int(c.lo + span / 2, c.hi)
        } else {
            self.rng.int(c.lo, c.hi)
        }
    }

    // ---- statements ----

    fn stmt(&mut self, sc: &mut Scope, depth: u32) {
        let has_ctr = !sc.counters.is_empty();
        let has_arr = !sc.arrays.is_empty();
        let has_struct = !sc.structs.is_empty();
        let has_o = sc.structs.iter().any(|s| s.assignable);
        let w = [
            12,                                                                              // 0 int var
            if sc.nums.is_empty() { 0 } else { 7 },                                          // 1 num var
            if sc.floats.is_empty() { 0 } else { 5 },                                        // 2 float var
            if sc.accs.is_empty() { 0 } else { 10 },                                         // 3 accumulator
            if has_arr { 9 } else { 0 },                                                     // 4 array write
            if has_struct { 6 } else { 0 },                                                  // 5 field write
            if has_struct && sc.methods { 4 } else { 0 },                                    // 6 method call
            if has_o { 4 } else { 0 },                                                       // 7 receiver swap
            4,                                                                               // 8 local let
            if depth < 2 { 7 } else { 0 },                                                   // 9 if/else
            if sc.in_loop { 4 } else { 0 },                                                  // 10 break/continue
            if sc.in_loop && has_ctr { 1 } else { 0 },                                       // 11 print inside the loop
            if has_arr { 1 } else { 0 },                                                     // 12 push
            if sc.bools.is_empty() { 0 } else { 2 },                                         // 13 bool
            if has_arr { 1 } else { 0 },                                                     // 14 global array write
            if self.use_globals_write { 1 } else { 0 },                                      // 15 global assignment
            if self.use_closures { 2 } else { 0 },                                           // 16 closure
            if has_ctr && sc.counters.last().is_some_and(|c| c.assignable) { 2 } else { 0 }, // 17 loop var
            if !sc.nums.is_empty() && has_ctr { 3 } else { 0 },                              // 18 type flip
            if sc.opts.is_empty() { 0 } else { 4 },                                          // 19 nil-or-int variable
            if sc.opt_arrays.is_empty() { 0 } else { 3 },                                    // 20 nil-or-int array
            if sc.grids.is_empty() { 0 } else { 4 },                                         // 21 2D array write
            if sc.fvars.is_empty() { 0 } else { 2 },  // 22 function variable swap
            if sc.fbvars.is_empty() { 0 } else { 1 }, // 23 built-in variable swap
            if sc.sarrs.is_empty() { 0 } else { 3 },  // 24 struct from an array
            if sc.sarrs.is_empty() { 0 } else { 1 },  // 25 struct array write
            3,                                        // 26 swap or rotation
            if self.use_globals_write { 1 } else { 0 }, // 27 global function reassigned
            if sc.rebinds.is_empty() { 0 } else { 3 }, // 28 array variable rebound
            if sc.bool_arrays.is_empty() { 0 } else { 3 }, // 29 bool array write
            if self.use_phases && has_ctr && depth < 2 { 8 } else { 0 }, // 30 phased branch
            if self.use_global_swaps { 3 } else { 0 }, // 31 global function reassigned
            if self.use_global_swaps { 2 } else { 0 }, // 32 numeric global reassigned
            if sc.strs.is_empty() || sc.accs.is_empty() { 0 } else { 6 }, // 33 string building
            if sc.maps.is_empty() || sc.accs.is_empty() { 0 } else { 6 }, // 34 map counting
            if self.use_alloc && !sc.accs.is_empty() { 3 } else { 0 }, // 35 short-lived array
        ];
        match self.rng.weighted(&w) {
            0 => self.assign_int(sc),
            1 => {
                let x = self.rng.pick(&sc.nums).clone();
                let e = self.num_expr(sc, 2);
                let e = self.wrap(e, STORE_BITS);
                self.line(format!("{x} = {}", e.s));
            }
            2 => {
                let f = self.rng.pick(&sc.floats).clone();
                let e = self.float_expr(sc, 2);
                let op = *self.rng.pick(&["=", "=", "+=", "*=", "-="]);
                self.line(format!("{f} {op} {}", e.s));
            }
            3 => {
                let a = self.rng.pick(&sc.accs).clone();
                let e = if self.rng.percent(65) { self.int_expr(sc, 2) } else { self.num_expr(sc, 2) };
                let e = self.wrap(e, ACC_BITS);
                let op = if self.rng.percent(75) { "+=" } else { "-=" };
                self.line(format!("{a} {op} {}", e.s));
            }
            4 => self.array_write(sc),
            5 => self.field_write(sc),
            6 => {
                let s = self.struct_with(sc, A | B);
                if let Some(s) = s {
                    let e = self.int_expr(sc, 1);
                    let e = self.wrap(e, STORE_BITS);
                    self.line(format!("{s}.bump({})", e.s));
                }
            }
            7 => {
                let o: Vec<SVar> = sc.structs.iter().filter(|s| s.assignable).cloned().collect();
                let o = self.rng.pick(&o).clone();
                let srcs: Vec<String> = sc
                    .structs
                    .iter()
                    .filter(|s| s.types & !o.types == 0 && s.name != o.name)
                    .map(|s| s.name.clone())
                    .collect();
                if srcs.is_empty() {
                    return;
                }
                let s1 = self.rng.pick(&srcs).clone();
                let s2 = self.rng.pick(&srcs).clone();
                if has_ctr && self.rng.percent(60) {
                    let c = sc.counters.last().expect("counter").clone();
                    let k = self.late_k(&c);
                    let cmp = *self.rng.pick(&[">", ">=", "=="]);
                    self.line(format!("{} = if {} {cmp} {k} {{ {s1} }} else {{ {s2} }}", o.name, c.name));
                } else {
                    self.line(format!("{} = {s1}", o.name));
                }
            }
            8 => {
                let t = self.name("t");
                if self.rng.percent(60) {
                    let e = self.int_expr(sc, 2);
                    let e = self.wrap(e, STORE_BITS);
                    if self.rng.percent(25) {
                        // The traces' guarded pick of the two.
                        let f = self.int_expr(sc, 1);
                        let f = self.wrap(f, STORE_BITS);
                        let op = if self.rng.percent(50) { "min" } else { "max" };
                        self.line(format!("let {t} = {op}({}, {})", e.s, f.s));
                    } else {
                        self.line(format!("let {t} = {}", e.s));
                    }
                    sc.ints.push(t);
                } else {
                    let e = self.num_expr(sc, 2);
                    let e = self.wrap(e, STORE_BITS);
                    self.line(format!("let {t} = {}", e.s));
                    sc.nums.push(t);
                }
            }
            9 => self.if_stmt(sc, depth),
            10 => {
                let c = self.late_cond(sc);
                let what = if self.rng.percent(50) { "break" } else { "continue" };
                self.line(format!("if {c} {{ {what} }}"));
            }
            11 => {
                let c = sc.counters.last().expect("counter").clone();
                let k = self.late_k(&c);
                let mut args = vec![format!("\"{}/at\"", self.case.name), c.name.clone()];
                let e = self.int_expr(sc, 1);
                args.push(e.s);
                let e = self.num_expr(sc, 1);
                args.push(e.s);
                self.line(format!("if {} == {k} {{ print({}) }}", c.name, args.join(", ")));
            }
            12 => {
                let a = self.rng.pick(&sc.arrays).clone();
                let e = self.expr_of(sc, a.elem, 1);
                let e = self.wrap(e, STORE_BITS);
                let cap = self.rng.int(a.min_len as i64 + 1, 24);
                self.line(format!("if len({}) < {cap} {{ {}.push({}) }}", a.name, a.name, e.s));
            }
            13 => {
                let b = self.rng.pick(&sc.bools).clone();
                let c = self.cond(sc, 1);
                self.line(format!("{b} = {c}"));
            }
            14 => {
                let idx = self.global_index(sc);
                let e = self.int_expr(sc, 1);
                let e = self.wrap(e, STORE_BITS);
                self.line(format!("GA[{idx}] = {}", e.s));
            }
            15 => {
                let e = self.int_expr(sc, 1);
                let e = self.wrap(e, STORE_BITS);
                self.line(format!("G1 = {}", e.s));
            }
            16 if self.rng.percent(35) => {
                // A closure over a fresh local, made and dropped: the trace
                // makes the cell and the closure (`cell_new`, `closure_new`)
                // and reads the local back through its cell.
                let (cv, cf) = (self.name("cv"), self.name("cf"));
                let e = self.int_expr(sc, 1);
                let e = self.wrap(e, STORE_BITS);
                let a = self.rng.pick(&sc.accs.clone()).clone();
                self.line(format!("let {cv} = {}", e.s));
                self.line(format!("let {cf} = fn() {{ {cv} += 1\n return {cv} % 101 }}"));
                self.line(format!("{a} += {cv} % 101"));
            }
            16 if !sc.poly_fns.is_empty() && self.rng.percent(30) => {
                let kfs = self.rng.pick(&sc.poly_fns.clone()).clone();
                let a = self.rng.pick(&sc.accs.clone()).clone();
                let idx = self.int_expr(sc, 1);
                let arg = self.int_expr(sc, 1);
                let arg = self.wrap(arg, STORE_BITS);
                self.line(format!("{a} += {kfs}[(({}) % 4 + 4) % 4]({})", idx.s, arg.s));
            }
            16 if !sc.captors.is_empty() && self.rng.percent(60) => {
                let kf = self.rng.pick(&sc.captors.clone()).clone();
                let a = self.rng.pick(&sc.accs.clone()).clone();
                let arg = self.int_expr(sc, 1);
                let arg = self.wrap(arg, STORE_BITS);
                self.line(format!("{a} += {kf}({})", arg.s));
            }
            16 => {
                let cf = self.name("cf");
                let e = self.int_expr(sc, 1);
                let e = self.wrap(e, STORE_BITS);
                let a = self.rng.pick(&sc.accs.clone()).clone();
                self.line(format!("let {cf} = fn(q) {{ return (q + {}) % 101 }}", e.s));
                let arg = self.int_expr(sc, 1);
                let arg = self.wrap(arg, STORE_BITS);
                self.line(format!("{a} += {cf}({})", arg.s));
            }
            17 => {
                let c = sc.counters.last().expect("counter").clone();
                let d = self.rng.int(1, 3);
                self.line(format!("{} += {d}", c.name));
                // Stays a small non-negative-if-it-was Int.
                let last = sc.counters.last_mut().expect("counter");
                last.hi += d;
                last.lo += d;
            }
            19 => {
                let u = self.rng.pick(&sc.opts).clone();
                let e = self.int_expr(sc, 1);
                let e = self.wrap(e, STORE_BITS);
                match self.rng.below(3) {
                    0 => {
                        let a = self.rng.pick(&sc.accs).clone();
                        self.line(format!("if {u} != nil {{ {a} += {u} }} else {{ {u} = {} }}", e.s));
                    }
                    1 => {
                        let c = self.late_cond(sc);
                        self.line(format!("if {c} {{ {u} = nil }}"));
                    }
                    _ => {
                        let c = self.cond(sc, 1);
                        self.line(format!("{u} = if {c} {{ nil }} else {{ {} }}", e.s));
                    }
                }
            }
            20 => {
                let on = self.rng.pick(&sc.opt_arrays).clone();
                let idx = self.index(sc, &on);
                let e = self.int_expr(sc, 1);
                let e = self.wrap(e, STORE_BITS);
                match self.rng.below(3) {
                    0 => {
                        let a = self.rng.pick(&sc.accs).clone();
                        self.line(format!(
                            "if {n}[{idx}] != nil {{ {a} += {n}[{idx}] }} else {{ {n}[{idx}] = {} }}",
                            e.s,
                            n = on.name
                        ));
                    }
                    1 => self.line(format!("{}[{idx}] = nil", on.name)),
                    _ => self.line(format!("{}[{idx}] = {}", on.name, e.s)),
                }
            }
            21 => {
                let (g, r, c) = self.rng.pick(&sc.grids).clone();
                let ir = self.index(sc, &Arr { name: g.clone(), elem: Kind::Int, min_len: r });
                let ic = self.index_below(sc, c);
                if self.rng.percent(30) {
                    let e = self.int_expr(sc, 1);
                    let e = self.wrap(e, STEP_BITS);
                    self.line(format!("{g}[{ir}][{ic}] += {}", e.s));
                } else {
                    let e = self.int_expr(sc, 2);
                    let e = self.wrap(e, STORE_BITS);
                    self.line(format!("{g}[{ir}][{ic}] = {}", e.s));
                }
            }
            22 => {
                let (fv, arity) = self.rng.pick(&sc.fvars).clone();
                let same: Vec<Helper> =
                    self.helpers.iter().filter(|h| h.kind == HKind::IntLike && h.arity == arity).cloned().collect();
                let h = self.rng.pick(&same).name.clone();
                if sc.in_loop && self.rng.percent(70) {
                    let c = self.late_cond(sc);
                    self.line(format!("if {c} {{ {fv} = {h} }}"));
                } else {
                    self.line(format!("{fv} = {h}"));
                }
            }
            23 => {
                let fb = self.rng.pick(&sc.fbvars).clone();
                let f = *self.rng.pick(&["sqrt", "floor", "ceil", "abs"]);
                let c = self.late_cond(sc);
                self.line(format!("if {c} {{ {fb} = {f} }}"));
            }
            24 => {
                let (ps, types, len) = self.rng.pick(&sc.sarrs).clone();
                let idx = self.index(sc, &Arr { name: ps.clone(), elem: Kind::Int, min_len: len });
                let p = self.name("p");
                self.line(format!("let {p} = {ps}[{idx}]"));
                sc.structs.push(SVar { name: p, types, assignable: false });
            }
            25 => {
                let (ps, types, len) = self.rng.pick(&sc.sarrs).clone();
                let idx = self.index(sc, &Arr { name: ps.clone(), elem: Kind::Int, min_len: len });
                let src: Vec<String> = sc
                    .structs
                    .iter()
                    .filter(|s| s.types & !types == 0 && s.name.starts_with('s'))
                    .map(|s| s.name.clone())
                    .collect();
                if !src.is_empty() {
                    let s = self.rng.pick(&src).clone();
                    self.line(format!("{ps}[{idx}] = {s}"));
                }
            }
            26 => self.rotate(sc),
            28 => {
                let (ar, cands) = self.rng.pick(&sc.rebinds).clone();
                let to = self.rng.pick(&cands).clone();
                if sc.in_loop && self.rng.percent(60) {
                    let c = self.late_cond(sc);
                    self.line(format!("if {c} {{ {ar} = {to} }}"));
                } else {
                    self.line(format!("{ar} = {to}"));
                }
            }
            29 => {
                let bb = self.rng.pick(&sc.bool_arrays).clone();
                let idx = self.index(sc, &bb);
                let c = self.cond(sc, 1);
                self.line(format!("{}[{idx}] = {c}", bb.name));
            }
            30 => self.phase_branch(sc, depth),
            31 => {
                let h: Vec<Helper> =
                    self.helpers.iter().filter(|h| h.kind == HKind::IntLike && h.arity == 1).cloned().collect();
                let h = self.rng.pick(&h).name.clone();
                if sc.in_loop && self.rng.percent(75) {
                    let c = self.late_cond(sc);
                    self.line(format!("if {c} {{ GV = {h} }}"));
                } else {
                    self.line(format!("GV = {h}"));
                }
            }
            32 => {
                let (a, b) = (self.rng.int(1, 5), self.rng.int(0, 9));
                let v = if self.rng.percent(50) {
                    format!("(GK * {a} + {b}) % 61")
                } else {
                    self.rng.int(0, 60).to_string()
                };
                if sc.in_loop && self.rng.percent(75) {
                    let c = self.late_cond(sc);
                    self.line(format!("if {c} {{ GK = {v} }}"));
                } else {
                    self.line(format!("GK = {v}"));
                }
            }
            27 => {
                let h: Vec<Helper> =
                    self.helpers.iter().filter(|h| h.kind == HKind::IntLike && h.arity == 1).cloned().collect();
                let h = self.rng.pick(&h).name.clone();
                let c = self.late_cond(sc);
                self.line(format!("if {c} {{ GH = {h} }}"));
            }
            33 => self.string_stmt(sc),
            34 => self.map_stmt(sc),
            35 => {
                let acc = self.rng.pick(&sc.accs).clone();
                let t = self.name("t");
                let es: Vec<String> = (0..3)
                    .map(|_| {
                        let e = self.int_expr(sc, 1);
                        self.wrap(e, STORE_BITS).s
                    })
                    .collect();
                if self.rng.percent(70) {
                    self.line(format!("let {t} = [{}]", es.join(", ")));
                } else {
                    self.line(format!("let {t} = array(3, {})", es[0]));
                    self.line(format!("{t}.push({})", es[1]));
                }
                let k = self.rng.int(0, 2);
                self.line(format!("{acc} += {t}[{k}] + len({t})"));
            }
            _ => {
                // A number variable changes kind late in the loop.
                let x = self.rng.pick(&sc.nums).clone();
                let c = sc.counters.last().expect("counter").clone();
                let k = self.late_k(&c);
                let cmp = *self.rng.pick(&["==", ">", ">="]);
                let e = if self.rng.percent(50) {
                    let f = *self.rng.pick(&[0.5, 1.5, 0.25, -0.0]);
                    format!("{x} + {}", float_lit(f))
                } else {
                    let e = self.int_expr(sc, 1);
                    self.wrap(e, STORE_BITS).s
                };
                self.line(format!("if {} {cmp} {k} {{ {x} = {e} }}", c.name));
            }
        }
    }

    /// A branch over phases of the innermost counter: it alternates every
    /// few iterations, holds only inside a window, or nests one late flip
    /// inside another (the side trace of the first exit then grows a side
    /// trace of its own).
    fn phase_branch(&mut self, sc: &Scope, depth: u32) {
        let c = sc.counters.last().expect("counter").clone();
        let i = c.name.clone();
        match self.rng.below(3) {
            0 => {
                let p = *self.rng.pick(&[2, 3, 7, 20, 50, 150]);
                self.open(format!("if ({i} / {p}) % 2 == 0 {{"));
                self.block(sc, depth + 1);
                if self.rng.percent(50) {
                    self.indent -= 1;
                    self.open("} else {");
                    self.block(sc, depth + 1);
                }
                self.close();
            }
            1 => {
                let k1 = self.late_k(&c);
                let k2 = k1.saturating_add(self.rng.int(1, c.hi.saturating_sub(k1).clamp(1, 400)));
                self.open(format!("if {i} >= {} && {i} < {} {{", int_lit(k1), int_lit(k2)));
                self.block(sc, depth + 1);
                self.close();
            }
            _ => {
                let span = c.hi.saturating_sub(c.lo);
                let k1 = c.lo.saturating_add(self.rng.int(span / 4, span / 2));
                let k2 = k1.saturating_add(self.rng.int(1, c.hi.saturating_sub(k1).max(1)));
                self.open(format!("if {i} > {} {{", int_lit(k1)));
                self.block(sc, depth + 1);
                self.open(format!("if {i} > {} {{", int_lit(k2)));
                self.block(sc, depth + 1);
                self.close();
                self.close();
            }
        }
    }

    /// Swaps or rotates values of one class (phis that read each other).
    /// Builds, measures or reads a string (`concat`, `str_add`, `str`,
    /// `join`, `len`, `byte` in traces). Strings stay short and never empty.
    fn string_stmt(&mut self, sc: &Scope) {
        let s = self.rng.pick(&sc.strs).clone();
        let acc = self.rng.pick(&sc.accs).clone();
        let e = self.int_expr(sc, 1);
        let e = self.wrap(e, STORE_BITS).s;
        match self.rng.below(5) {
            0 => {
                let x = self.num_expr(sc, 1);
                let x = self.wrap(x, STORE_BITS).s;
                self.line(format!("{s} = \"k${{{e}}}=${{{x}}}\""));
            }
            1 | 4 => {
                if self.rng.percent(50) {
                    self.line(format!("{s} = {s} + str({e})"));
                } else {
                    self.line(format!("{s} = [{s}, str({e})].join(\"-\")"));
                }
                self.open(format!("if len({s}) > 48 {{"));
                self.line(format!("{s} = \"r\" + str(len({s}))"));
                self.close();
            }
            2 => {
                self.line(format!("{acc} += {s}.byte((({e}) % len({s}) + len({s})) % len({s}))"));
            }
            _ => self.line(format!("{acc} += len({s})")),
        }
    }

    /// Counts in a map with Int or String keys (`map_get_or`, `map_set`,
    /// `map_has`, `map_get`, `map_len` in traces).
    fn map_stmt(&mut self, sc: &Scope) {
        let m = self.rng.pick(&sc.maps).clone();
        let acc = self.rng.pick(&sc.accs).clone();
        let e = self.int_expr(sc, 1);
        let e = self.wrap(e, STORE_BITS).s;
        let k = self.name("k");
        if self.rng.percent(50) {
            self.line(format!("let {k} = ({e}) % 13"));
        } else {
            self.line(format!("let {k} = \"k${{({e}) % 13}}\""));
        }
        match self.rng.below(4) {
            0 => self.line(format!("{m}[{k}] = {m}.get({k}, 0) + 1")),
            1 => {
                self.open(format!("if {m}.has({k}) {{"));
                self.line(format!("{acc} += {m}[{k}]"));
                self.close();
            }
            2 => self.line(format!("{acc} += len({m})")),
            _ => {
                let v = self.int_expr(sc, 1);
                let v = self.wrap(v, STORE_BITS).s;
                self.line(format!("{m}[{k}] = {v}"));
            }
        }
    }

    fn rotate(&mut self, sc: &Scope) {
        let t = self.name("t");
        let mut groups: Vec<Vec<String>> = vec![sc.ints.clone(), sc.nums.clone(), sc.floats.clone(), sc.opts.clone()];
        groups.push(sc.structs.iter().filter(|s| s.assignable).map(|s| s.name.clone()).collect());
        groups.retain(|g| g.len() >= 2);
        if groups.is_empty() || self.rng.percent(35) {
            // Swap two elements of an array.
            let Some(a) = sc.arrays.first().cloned() else { return };
            let a = if sc.arrays.len() > 1 { self.rng.pick(&sc.arrays).clone() } else { a };
            let (i, j) = (self.index(sc, &a), self.index(sc, &a));
            self.line(format!("let {t} = {}[{i}]", a.name));
            self.line(format!("{n}[{i}] = {n}[{j}]", n = a.name));
            self.line(format!("{}[{j}] = {t}", a.name));
            return;
        }
        let mut g = self.rng.pick(&groups).clone();
        self.shuffle(&mut g);
        let k = if g.len() >= 3 && self.rng.percent(40) { 3 } else { 2 };
        self.line(format!("let {t} = {}", g[0]));
        for w in 0..k - 1 {
            self.line(format!("{} = {}", g[w], g[w + 1]));
        }
        self.line(format!("{} = {t}", g[k - 1]));
    }

    fn assign_int(&mut self, sc: &mut Scope) {
        let n = self.rng.pick(&sc.ints).clone();
        match self.rng.below(6) {
            0 => {
                let e = self.int_expr(sc, 1);
                let e = self.wrap(e, STEP_BITS);
                let op = if self.rng.percent(60) { "+=" } else { "-=" };
                self.line(format!("{n} {op} {}", e.s));
            }
            1 => {
                let d = self.divisor(sc);
                let op = if self.rng.percent(50) { "%=" } else { "/=" };
                self.line(format!("{n} {op} {d}"));
            }
            _ => {
                let e = self.int_expr(sc, 2);
                let e = self.wrap(e, STORE_BITS);
                self.line(format!("{n} = {}", e.s));
            }
        }
    }

    fn array_write(&mut self, sc: &Scope) {
        let a = self.rng.pick(&sc.arrays).clone();
        let idx = self.index(sc, &a);
        if a.elem == Kind::Int && self.rng.percent(30) {
            let e = self.int_expr(sc, 1);
            let e = self.wrap(e, STEP_BITS);
            self.line(format!("{}[{idx}] += {}", a.name, e.s));
        } else {
            let e = self.expr_of(sc, a.elem, 2);
            let e = self.wrap(e, STORE_BITS);
            self.line(format!("{}[{idx}] = {}", a.name, e.s));
        }
    }

    fn field_write(&mut self, sc: &Scope) {
        let s = self.rng.pick(&sc.structs).clone();
        let fields = self.fields_of(s.types);
        let f = *self.rng.pick(&fields);
        let kind = if f == "y" { Kind::Num } else { Kind::Int };
        if kind == Kind::Int && self.rng.percent(30) {
            let e = self.int_expr(sc, 1);
            let e = self.wrap(e, STEP_BITS);
            self.line(format!("{}.{f} += {}", s.name, e.s));
        } else {
            let e = self.expr_of(sc, kind, 2);
            let e = self.wrap(e, STORE_BITS);
            self.line(format!("{}.{f} = {}", s.name, e.s));
        }
    }

    fn if_stmt(&mut self, sc: &Scope, depth: u32) {
        let c = if self.rng.percent(50) { self.late_cond(sc) } else { self.cond(sc, 2) };
        self.open(format!("if {c} {{"));
        self.block(sc, depth + 1);
        match self.rng.below(3) {
            0 => self.close(),
            1 => {
                self.indent -= 1;
                self.open("} else {");
                self.block(sc, depth + 1);
                self.close();
            }
            _ => {
                let c2 = self.cond(sc, 1);
                self.indent -= 1;
                self.open(format!("}} else if {c2} {{"));
                self.block(sc, depth + 1);
                self.indent -= 1;
                self.open("} else {");
                self.block(sc, depth + 1);
                self.close();
            }
        }
    }

    fn block(&mut self, sc: &Scope, depth: u32) {
        let mut sc = sc.clone();
        for _ in 0..self.rng.int(1, 3) {
            self.stmt(&mut sc, depth);
        }
    }

    // ---- risky statements ----

    fn risky_stmt(&mut self, sc: &Scope) {
        let c = sc.counters.last().cloned();
        let Some(c) = c else {
            match self.rng.below(4) {
                0 => self.line("r0 = r0 * 3 + 1"),
                1 => self.line("r1 += 1"),
                2 => self.line("r3 = r3 * r3"),
                _ => self.line("r0 = hov2(r0)"),
            }
            return;
        };
        let k = self.late_k(&c);
        let i = c.name.clone();
        let n = sc.ints.first().cloned().unwrap_or_else(|| "r4".into());
        let acc = sc.accs.first().cloned().unwrap_or_else(|| "r4".into());
        let arr = sc.arrays.first().cloned();
        let st = sc.structs.iter().find(|s| s.types & C == 0).map(|s| s.name.clone());
        match self.rng.below(22) {
            0 => self.line("r0 = r0 * 3 + 1"),
            1 => {
                let step = if self.rng.percent(50) { "1".to_string() } else { i.clone() };
                self.line(format!("r1 += {step}"));
            }
            2 => self.line("r2 -= 1"),
            3 => self.line("r3 = r3 * r3"),
            4 => self.line("r0 = hov(r0, 5)"),
            5 => self.line(format!("{n} = {n} / ({i} - {})", int_lit(k))),
            6 => self.line(format!("{n} = {n} % ({} - {i})", int_lit(k))),
            7 => self.line(format!("{acc} += hdz({n}, {i} - {})", int_lit(k))),
            8 => match st {
                Some(s) => self.line(format!("{acc} += {s}.mdiv({} - {i})", int_lit(k))),
                None => self.line(format!("{acc} += hmod({n}, {} - {i})", int_lit(k))),
            },
            9 => match &arr {
                Some(a) => {
                    let off = self.rng.int(0, 3);
                    self.line(format!("{acc} += {}[({i} + {off}) % (len({}) + 1)]", a.name, a.name));
                }
                None => self.line("r0 = r0 * 3 + 1"),
            },
            10 => match &arr {
                Some(a) => self.line(format!("{}[({} - {i}) % len({})] = 1", a.name, int_lit(k), a.name)),
                None => self.line("r3 = r3 * r3"),
            },
            11 => {
                self.line(format!("if {i} == {} {{ {n} = {n} + 0.5 }}", int_lit(k)));
                match &arr {
                    Some(a) if self.rng.percent(50) => {
                        let l = a.min_len;
                        self.line(format!("{acc} += {}[({n} % {l} + {l}) % {l}]", a.name));
                    }
                    _ => self.line(format!("{acc} += {n} & 7")),
                }
            }
            12 => {
                self.line(format!("if {i} >= {} {{ ro = rc }}", int_lit(k)));
                self.line(format!("{acc} += ro.m0({i})"));
            }
            13 => {
                self.line(format!("if {i} == {} {{ ro = rc }}", int_lit(k)));
                self.line(format!("{acc} += ro.y"));
            }
            14 => self.line(format!("r4 = {n} << (({} - {i}) % 64)", int_lit(k))),
            15 => {
                let dd = self.name("dd");
                self.line(format!("let {dd} = if {i} > {} {{ -1 }} else {{ 1 }}", int_lit(k)));
                self.line(format!("r4 = rmin / {dd}"));
            }
            16 => self.line(format!("assert({i} < {}, \"late assert\")", int_lit(k))),
            17 => {
                let f = sc.floats.first().cloned().unwrap_or_else(|| "GF".into());
                self.line(format!("if {i} == {} {{ {acc} += int({f} / 0.0) }}", int_lit(k)));
            }
            19 => {
                // A function variable rebound to one of another arity.
                self.line(format!("if {i} >= {} {{ rf = hov }}", int_lit(k)));
                self.line(format!("{acc} += rf({i})"));
            }
            20 => {
                // The global function changes arity.
                self.line(format!("if {i} == {} {{ GH = hdz }}", int_lit(k)));
                self.line(format!("{acc} += GH({n})"));
            }
            21 if self.rng.percent(30) => {
                // Deep recursion with a hot loop in every frame: stack overflow
                // late (rare: a 200000-frame traceback is slow to print).
                self.line(format!("if {i} == {} {{ {acc} += hdeep(300000) }}", int_lit(k)));
            }
            _ => self.line(format!("r1 = r1 + hov({i}, 2)")),
        }
    }

    // ---- expressions ----

    fn expr_of(&mut self, sc: &Scope, kind: Kind, depth: u32) -> E {
        match kind {
            Kind::Int => self.int_expr(sc, depth),
            Kind::Num => self.num_expr(sc, depth),
            Kind::Float => self.float_expr(sc, depth),
        }
    }

    fn fields_of(&self, types: u8) -> Vec<&'static str> {
        let mut common: Option<Vec<&'static str>> = None;
        for (i, d) in self.structs.iter().enumerate() {
            if types & (1 << i) == 0 {
                continue;
            }
            common = Some(match common {
                None => d.fields.clone(),
                Some(c) => c.into_iter().filter(|f| d.fields.contains(f)).collect(),
            });
        }
        common.unwrap_or_default().into_iter().filter(|f| *f != "q").collect()
    }

    /// A struct variable whose possible kinds are all within `within`.
    fn struct_with(&mut self, sc: &Scope, within: u8) -> Option<String> {
        let ok: Vec<String> = sc.structs.iter().filter(|s| s.types & !within == 0).map(|s| s.name.clone()).collect();
        if ok.is_empty() {
            None
        } else {
            Some(self.rng.pick(&ok).clone())
        }
    }

    fn int_const(&mut self) -> E {
        let v = match self.rng.below(10) {
            0..=5 => self.rng.int(-3, 12),
            6 | 7 => self.rng.int(-100, 100),
            8 => *self.rng.pick(&[0, 1, -1, 2, 7, 64, 255, 1000, 4096]),
            9 if self.rng.percent(25) => {
                let v = self.rng.int(1 << 30, 1 << 44);
                if self.rng.percent(50) {
                    -v
                } else {
                    v
                }
            }
            _ => self.rng.int(-100_000, 100_000),
        };
        E::new(int_lit(v), Kind::Int, bits_of(v))
    }

    /// A non-zero Int divisor (never -1 for an unbounded dividend: all are bounded).
    fn divisor(&mut self, sc: &Scope) -> String {
        match self.rng.below(5) {
            0..=2 => int_lit(*self.rng.pick(&[
                1,
                2,
                3,
                5,
                6,
                7,
                9,
                10,
                11,
                12,
                13,
                16,
                25,
                100,
                641,
                1000,
                7919,
                1 << 20,
                -1,
                -2,
                -3,
                -7,
                -16,
                -100,
            ])),
            3 => {
                let e = self.int_leaf(sc, 0);
                format!("({} % 7 + 8)", e.s)
            }
            _ => {
                if sc.no_bitwise {
                    let e = self.int_leaf(sc, 0);
                    format!("({} % 5 - 9)", e.s)
                } else {
                    let e = self.int_leaf(sc, 0);
                    format!("(({} & 15) + 1)", e.s)
                }
            }
        }
    }

    /// A safe index into `a`.
    fn index(&mut self, sc: &Scope, a: &Arr) -> String {
        let l = a.min_len;
        let nonneg: Vec<Counter> = sc.counters.iter().filter(|c| c.lo >= 0).cloned().collect();
        match self.rng.below(6) {
            0 => self.rng.int(0, l as i64 - 1).to_string(),
            1 | 2 if !nonneg.is_empty() => {
                let c = self.rng.pick(&nonneg).clone();
                if self.rng.percent(50) {
                    format!("{} % len({})", c.name, a.name)
                } else {
                    format!("{} % {l}", c.name)
                }
            }
            3 if l >= 4 && !sc.no_bitwise => {
                let e = self.int_expr(sc, 1);
                format!("{} & 3", paren(&e.s))
            }
            4 => format!("len({}) - 1", a.name),
            _ => {
                let e = self.int_expr(sc, 1);
                format!("({} % {l} + {l}) % {l}", e.s)
            }
        }
    }

    /// A safe index below `n` not mentioning any array.
    fn index_below(&mut self, sc: &Scope, n: usize) -> String {
        let nonneg: Vec<Counter> = sc.counters.iter().filter(|c| c.lo >= 0).cloned().collect();
        match self.rng.below(3) {
            0 => self.rng.int(0, n as i64 - 1).to_string(),
            1 if !nonneg.is_empty() => format!("{} % {n}", self.rng.pick(&nonneg).name),
            _ => {
                let e = self.int_expr(sc, 1);
                format!("({} % {n} + {n}) % {n}", e.s)
            }
        }
    }

    fn global_index(&mut self, sc: &Scope) -> String {
        // GA has at least 3 elements.
        let e = self.int_expr(sc, 1);
        format!("({} % 3 + 3) % 3", e.s)
    }

    fn int_leaf(&mut self, sc: &Scope, depth: u32) -> E {
        let ints_ro: Vec<RoVal> = sc.ros.iter().filter(|r| r.kind == Kind::Int).cloned().collect();
        let int_arrs: Vec<Arr> = sc.arrays.iter().filter(|a| a.elem == Kind::Int).cloned().collect();
        let int_helpers: Vec<Helper> =
            self.helpers[..sc.helpers_upto].iter().filter(|h| h.kind == HKind::IntLike).cloned().collect();
        let m0_recv = sc.structs.iter().any(|s| s.types & C == 0);
        let w = [
            if sc.counters.is_empty() { 0 } else { 14 },
            if sc.ints.is_empty() { 0 } else { 12 },
            8,
            if ints_ro.is_empty() { 0 } else { 8 },
            if int_arrs.is_empty() { 0 } else { 5 },
            if sc.structs.is_empty() { 0 } else { 4 },
            if sc.arrays.is_empty() { 0 } else { 2 },
            2,
            if int_helpers.is_empty() || depth == 0 { 0 } else { 4 },
            if m0_recv && sc.methods && depth > 0 { 3 } else { 0 },
            if depth > 0 { 1 } else { 0 },
            if self.use_recursion && sc.methods && depth > 0 { 1 } else { 0 },
            if sc.grids.is_empty() { 0 } else { 4 },
            if sc.fvars.is_empty() || depth == 0 { 0 } else { 3 },
            if sc.opts.is_empty() || depth == 0 { 0 } else { 2 },
            // Only cases call GH: a helper calling it could recurse once it is rebound.
            if depth == 0 || !sc.methods { 0 } else { 1 },
            if self.use_rec_helpers && sc.methods && depth > 0 { 3 } else { 0 },
            if self.use_global_swaps && sc.methods && depth > 0 { 4 } else { 0 },
            if self.use_global_swaps { 2 } else { 0 },
        ];
        match self.rng.weighted(&w) {
            0 => {
                let c = self.rng.pick(&sc.counters).clone();
                E::new(c.name.clone(), Kind::Int, c.bits())
            }
            1 => E::new(self.rng.pick(&sc.ints).clone(), Kind::Int, LEAF_BITS),
            2 => self.int_const(),
            3 => E::new(self.rng.pick(&ints_ro).name.clone(), Kind::Int, LEAF_BITS),
            4 => {
                let a = self.rng.pick(&int_arrs).clone();
                let idx = self.index(sc, &a);
                E::new(format!("{}[{idx}]", a.name), Kind::Int, LEAF_BITS)
            }
            5 => {
                let s = self.rng.pick(&sc.structs).clone();
                let fields: Vec<&str> = self.fields_of(s.types).into_iter().filter(|f| *f != "y").collect();
                let f = *self.rng.pick(&fields);
                if sc.methods && s.types & C == 0 && self.rng.percent(20) {
                    E::new(format!("{}.getx()", s.name), Kind::Int, LEAF_BITS)
                } else {
                    E::new(format!("{}.{f}", s.name), Kind::Int, LEAF_BITS)
                }
            }
            6 => {
                let a = self.rng.pick(&sc.arrays).clone();
                let s = if self.rng.percent(70) { format!("len({})", a.name) } else { format!("{}.length()", a.name) };
                E::new(s, Kind::Int, 12)
            }
            7 => {
                if self.rng.percent(60) {
                    E::new("G0", Kind::Int, 8)
                } else {
                    E::new(format!("GA[{}]", self.rng.int(0, 2)), Kind::Int, LEAF_BITS)
                }
            }
            8 => {
                let h = self.rng.pick(&int_helpers).clone();
                let args: Vec<String> = (0..h.arity)
                    .map(|_| {
                        let e = self.int_expr(sc, depth - 1);
                        self.wrap(e, LEAF_BITS).s
                    })
                    .collect();
                E::new(format!("{}({})", h.name, args.join(", ")), Kind::Int, LEAF_BITS)
            }
            9 => {
                let s = self.struct_with(sc, A | B).expect("receiver");
                let e = self.int_expr(sc, depth - 1);
                let e = self.wrap(e, LEAF_BITS);
                E::new(format!("{s}.m0({})", e.s), Kind::Int, LEAF_BITS)
            }
            10 => {
                let e = self.int_expr(sc, depth - 1);
                E::new(format!("floor({})", e.s), Kind::Int, e.bits)
            }
            11 => {
                let e = self.int_expr(sc, 0);
                E::new(format!("hrec({} % 5)", paren(&e.s)), Kind::Int, 10)
            }
            12 => {
                let (g, r, c) = self.rng.pick(&sc.grids).clone();
                let ir = self.index(sc, &Arr { name: g.clone(), elem: Kind::Int, min_len: r });
                let ic = self.index_below(sc, c);
                E::new(format!("{g}[{ir}][{ic}]"), Kind::Int, LEAF_BITS)
            }
            15 => {
                let e = self.int_expr(sc, depth - 1);
                let e = self.wrap(e, LEAF_BITS);
                E::new(format!("GH({})", e.s), Kind::Int, LEAF_BITS)
            }
            16 => {
                // The depth argument stays below 10 whatever `e` is.
                let e = self.int_expr(sc, depth - 1);
                let n = paren(&e.s);
                match self.rng.below(3) {
                    0 => E::new(format!("hfib({n} % 9)"), Kind::Int, 12),
                    1 => E::new(format!("hsum({n} % 8)"), Kind::Int, 17),
                    _ => {
                        let a = self.int_expr(sc, 0);
                        let a = self.wrap(a, LEAF_BITS);
                        E::new(format!("hacc({n} % 9, {})", a.s), Kind::Int, LEAF_BITS)
                    }
                }
            }
            17 => {
                let e = self.int_expr(sc, depth - 1);
                let e = self.wrap(e, LEAF_BITS);
                E::new(format!("GV({})", e.s), Kind::Int, LEAF_BITS)
            }
            18 => E::new("GK", Kind::Int, 7),
            14 => {
                // `||` yields the deciding operand: the nil-or-Int value or the default.
                let u = self.rng.pick(&sc.opts).clone();
                let e = self.int_expr(sc, depth - 1);
                let e = self.wrap(e, LEAF_BITS);
                E::new(format!("({u} || {})", e.s), Kind::Int, LEAF_BITS)
            }
            _ => {
                let (fv, arity) = self.rng.pick(&sc.fvars).clone();
                let args: Vec<String> = (0..arity)
                    .map(|_| {
                        let e = self.int_expr(sc, depth - 1);
                        self.wrap(e, LEAF_BITS).s
                    })
                    .collect();
                E::new(format!("{fv}({})", args.join(", ")), Kind::Int, LEAF_BITS)
            }
        }
    }

    fn int_expr(&mut self, sc: &Scope, depth: u32) -> E {
        if depth == 0 || self.rng.percent(30) {
            return self.int_leaf(sc, depth);
        }
        let a = self.int_expr(sc, depth - 1);
        // Counters at the edge of the Int range: reduce before any operation.
        let a = if a.bits > 62 { self.wrap(a, 16) } else { a };
        let bitwise = !sc.no_bitwise;
        let op = self.rng.weighted(&[
            10,
            8,
            7,
            3,
            3,
            if bitwise { 5 } else { 0 },
            if bitwise { 3 } else { 0 },
            2,
            if bitwise { 1 } else { 0 },
        ]);
        match op {
            0 | 1 => {
                let b = self.int_expr(sc, depth - 1);
                let o = if op == 0 { "+" } else { "-" };
                let bits = a.bits.max(b.bits) + 1;
                if bits > MAX_BITS {
                    let b = self.wrap(b, 16);
                    let a = self.wrap(a, 16);
                    return E::new(format!("({} {o} {})", a.s, b.s), Kind::Int, 17);
                }
                E::new(format!("({} {o} {})", a.s, b.s), Kind::Int, bits)
            }
            2 => {
                let b = self.int_expr(sc, depth - 1);
                let (a, b) = if a.bits + b.bits > MAX_BITS { (self.wrap(a, 16), self.wrap(b, 16)) } else { (a, b) };
                let bits = a.bits + b.bits;
                E::new(format!("({} * {})", a.s, b.s), Kind::Int, bits)
            }
            3 => {
                let d = self.divisor(sc);
                E::new(format!("({} / {d})", a.s), Kind::Int, a.bits)
            }
            4 => {
                let d = self.divisor(sc);
                E::new(format!("({} % {d})", a.s), Kind::Int, a.bits.min(17))
            }
            5 => {
                let b = self.int_expr(sc, depth - 1);
                let o = *self.rng.pick(&["&", "|", "^"]);
                E::new(format!("({} {o} {})", a.s, b.s), Kind::Int, a.bits.max(b.bits))
            }
            6 => {
                if self.rng.percent(50) && a.bits < 40 {
                    let k = self.rng.int(0, (40 - a.bits as i64).min(12));
                    E::new(format!("({} << {k})", a.s), Kind::Int, a.bits + k as u32)
                } else if self.rng.percent(50) {
                    let k = self.rng.int(0, 63);
                    E::new(format!("({} >> {k})", a.s), Kind::Int, a.bits)
                } else {
                    let c = self.int_leaf(sc, 0);
                    E::new(format!("({} >> ({} & 31))", a.s, c.s), Kind::Int, a.bits)
                }
            }
            7 => E::new(format!("-{}", paren(&a.s)), Kind::Int, a.bits),
            _ => E::new(format!("~{}", paren(&a.s)), Kind::Int, a.bits + 1),
        }
    }

    fn num_leaf(&mut self, sc: &Scope, depth: u32) -> E {
        let num_ro: Vec<RoVal> = sc.ros.iter().filter(|r| r.kind != Kind::Int).cloned().collect();
        let num_arrs: Vec<Arr> = sc.arrays.iter().filter(|a| a.elem != Kind::Int).cloned().collect();
        let y_structs: Vec<SVar> = sc.structs.iter().filter(|s| s.types & C == 0).cloned().collect();
        let w = [
            10,
            if sc.nums.is_empty() { 0 } else { 10 },
            if sc.floats.is_empty() { 0 } else { 5 },
            3,
            if num_ro.is_empty() { 0 } else { 6 },
            if num_arrs.is_empty() { 0 } else { 5 },
            if y_structs.is_empty() { 0 } else { 4 },
            if y_structs.is_empty() || !sc.methods || depth == 0 { 0 } else { 2 },
            if depth == 0 { 0 } else { 3 },
        ];
        match self.rng.weighted(&w) {
            0 => {
                let e = self.int_leaf(sc, depth);
                E::new(e.s, Kind::Int, e.bits)
            }
            1 => E::new(self.rng.pick(&sc.nums).clone(), Kind::Num, LEAF_BITS),
            2 => E::new(self.rng.pick(&sc.floats).clone(), Kind::Float, 0),
            3 => E::new(float_lit(*self.rng.pick(FLOATS)), Kind::Float, 0),
            4 => {
                let r = self.rng.pick(&num_ro).clone();
                E::new(r.name, r.kind, LEAF_BITS)
            }
            5 => {
                let a = self.rng.pick(&num_arrs).clone();
                let idx = self.index(sc, &a);
                E::new(format!("{}[{idx}]", a.name), a.elem, LEAF_BITS)
            }
            6 => {
                let s = self.rng.pick(&y_structs).clone();
                E::new(format!("{}.y", s.name), Kind::Num, LEAF_BITS)
            }
            7 => {
                let s = self.rng.pick(&y_structs).clone();
                E::new(format!("{}.m1()", s.name), Kind::Num, LEAF_BITS)
            }
            _ => {
                let hs: Vec<Helper> = self.helpers[..sc.helpers_upto].to_vec();
                let h = self.rng.pick(&hs).clone();
                let args: Vec<String> = (0..h.arity)
                    .map(|_| {
                        let e = self.num_expr(sc, depth - 1);
                        self.wrap(e, LEAF_BITS).s
                    })
                    .collect();
                let kind = if h.kind == HKind::Float { Kind::Float } else { Kind::Num };
                E::new(format!("{}({})", h.name, args.join(", ")), kind, LEAF_BITS)
            }
        }
    }

    fn num_kind(a: Kind, b: Kind) -> Kind {
        match (a, b) {
            (Kind::Int, Kind::Int) => Kind::Int,
            (Kind::Float, _) | (_, Kind::Float) => Kind::Float,
            _ => Kind::Num,
        }
    }

    fn num_expr(&mut self, sc: &Scope, depth: u32) -> E {
        if depth == 0 || self.rng.percent(30) {
            return self.num_leaf(sc, depth);
        }
        let a = self.num_expr(sc, depth - 1);
        let a = if a.bits > 62 { self.wrap(a, 16) } else { a };
        match self.rng.weighted(&[10, 8, 7, 4, 3, 2, 2, 3]) {
            0 | 1 => {
                let b = self.num_expr(sc, depth - 1);
                let o = if self.rng.percent(55) { "+" } else { "-" };
                let (a, b) =
                    if a.bits.max(b.bits) + 1 > MAX_BITS { (self.wrap(a, 16), self.wrap(b, 16)) } else { (a, b) };
                let kind = Self::num_kind(a.kind, b.kind);
                E::new(format!("({} {o} {})", a.s, b.s), kind, a.bits.max(b.bits) + 1)
            }
            2 => {
                let b = self.num_expr(sc, depth - 1);
                let (a, b) = if a.bits + b.bits > MAX_BITS { (self.wrap(a, 16), self.wrap(b, 16)) } else { (a, b) };
                let kind = Self::num_kind(a.kind, b.kind);
                E::new(format!("({} * {})", a.s, b.s), kind, a.bits + b.bits)
            }
            3 | 4 => {
                let o = if self.rng.percent(50) { "/" } else { "%" };
                if self.rng.percent(50) {
                    let d = self.float_expr(sc, depth - 1);
                    E::new(format!("({} {o} {})", a.s, d.s), Kind::Float, 0)
                } else {
                    let d = self.divisor(sc);
                    E::new(format!("({} {o} {d})", a.s), a.kind, a.bits)
                }
            }
            5 => E::new(format!("-{}", paren(&a.s)), a.kind, a.bits),
            7 => {
                let f = *self.rng.pick(&["sin", "cos", "pow", "min", "max"]);
                let b = self.float_expr(sc, depth - 1);
                match f {
                    "pow" => E::new(format!("pow({}, {})", a.s, b.s), Kind::Float, 0),
                    // Both kinds may be chosen: the result is a number.
                    "min" | "max" => {
                        let (a, b) = (self.wrap(a, STORE_BITS), self.wrap(b, STORE_BITS));
                        E::new(format!("{f}({}, {})", a.s, b.s), Kind::Num, STORE_BITS)
                    }
                    _ => E::new(format!("{f}({})", a.s), Kind::Float, 0),
                }
            }
            _ => {
                let f = match self.rng.below(3) {
                    0 => "sqrt",
                    1 => "floor",
                    _ => "abs",
                };
                if f == "sqrt" {
                    E::new(format!("sqrt({})", a.s), Kind::Float, 0)
                } else if a.kind == Kind::Float {
                    E::new(format!("{f}({})", a.s), Kind::Float, 0)
                } else {
                    // abs/floor of a possible Int keep its kind.
                    E::new(format!("{f}({})", a.s), a.kind, a.bits)
                }
            }
        }
    }

    fn float_leaf(&mut self, sc: &Scope, depth: u32) -> E {
        let f_ro: Vec<RoVal> = sc.ros.iter().filter(|r| r.kind == Kind::Float).cloned().collect();
        let f_arrs: Vec<Arr> = sc.arrays.iter().filter(|a| a.elem == Kind::Float).cloned().collect();
        let f_helpers: Vec<Helper> =
            self.helpers[..sc.helpers_upto].iter().filter(|h| h.kind == HKind::Float).cloned().collect();
        let w = [
            if sc.floats.is_empty() { 0 } else { 10 },
            6,
            if f_ro.is_empty() { 0 } else { 5 },
            if f_arrs.is_empty() { 0 } else { 5 },
            2,
            if f_helpers.is_empty() || depth == 0 { 0 } else { 3 },
            if depth == 0 { 0 } else { 3 },
            if sc.fbvars.is_empty() || depth == 0 { 0 } else { 3 },
            3,
        ];
        match self.rng.weighted(&w) {
            8 => {
                // An Int (perhaps a huge counter) converted by a Float operation.
                let e = self.int_leaf(sc, 0);
                let f = *self.rng.pick(&["* 1.0", "+ 0.5", "/ 3.0", "- 0.0"]);
                E::new(format!("({} {f})", e.s), Kind::Float, 0)
            }
            0 => E::new(self.rng.pick(&sc.floats).clone(), Kind::Float, 0),
            1 => E::new(float_lit(*self.rng.pick(FLOATS)), Kind::Float, 0),
            2 => E::new(self.rng.pick(&f_ro).name.clone(), Kind::Float, 0),
            3 => {
                let a = self.rng.pick(&f_arrs).clone();
                let idx = self.index(sc, &a);
                E::new(format!("{}[{idx}]", a.name), Kind::Float, 0)
            }
            4 => E::new("GF", Kind::Float, 0),
            5 => {
                let h = self.rng.pick(&f_helpers).clone();
                let args: Vec<String> = (0..h.arity)
                    .map(|_| {
                        let e = self.num_expr(sc, depth - 1);
                        self.wrap(e, LEAF_BITS).s
                    })
                    .collect();
                E::new(format!("{}({})", h.name, args.join(", ")), Kind::Float, 0)
            }
            6 => {
                let e = self.num_expr(sc, depth - 1);
                E::new(format!("sqrt({})", e.s), Kind::Float, 0)
            }
            _ => {
                let fb = self.rng.pick(&sc.fbvars).clone();
                let e = self.float_expr(sc, depth - 1);
                E::new(format!("{fb}({})", e.s), Kind::Float, 0)
            }
        }
    }

    fn float_expr(&mut self, sc: &Scope, depth: u32) -> E {
        if depth == 0 || self.rng.percent(30) {
            return self.float_leaf(sc, depth);
        }
        let a = self.float_expr(sc, depth - 1);
        match self.rng.weighted(&[12, 4, 3, 3, 3]) {
            0 => {
                let b = self.num_expr(sc, depth - 1);
                let o = *self.rng.pick(&["+", "-", "*", "/", "%", "+", "*"]);
                if self.rng.percent(50) {
                    E::new(format!("({} {o} {})", a.s, b.s), Kind::Float, 0)
                } else {
                    E::new(format!("({} {o} {})", b.s, a.s), Kind::Float, 0)
                }
            }
            1 => {
                let b = self.float_expr(sc, depth - 1);
                let o = *self.rng.pick(&["+", "-", "*", "/"]);
                E::new(format!("({} {o} {})", a.s, b.s), Kind::Float, 0)
            }
            2 => E::new(format!("-{}", paren(&a.s)), Kind::Float, 0),
            3 => {
                let f = *self.rng.pick(&["abs", "floor", "ceil"]);
                E::new(format!("{f}({})", a.s), Kind::Float, 0)
            }
            _ => {
                let b = self.num_expr(sc, depth - 1);
                E::new(format!("sqrt({})", b.s), Kind::Float, 0)
            }
        }
    }

    // ---- conditions ----

    /// A condition that flips late in the innermost loop, if there is one.
    fn late_cond(&mut self, sc: &Scope) -> String {
        let Some(c) = sc.counters.last().cloned() else {
            return self.cond(sc, 1);
        };
        let k = self.late_k(&c);
        match self.rng.below(6) {
            0 | 1 => format!("{} > {}", c.name, int_lit(k)),
            2 => format!("{} >= {}", c.name, int_lit(k)),
            3 => format!("{} == {}", c.name, int_lit(k)),
            4 => {
                let p = self.rng.int(2, 7);
                let r = self.rng.int(0, p - 1);
                format!("{} % {p} == {r}", c.name)
            }
            _ => format!("{} < {}", c.name, int_lit(k)),
        }
    }

    fn cmp_op(&mut self) -> &'static str {
        const OPS: &[&str] = &["<", "<=", ">", ">=", "==", "!="];
        let op: &&'static str = self.rng.pick(OPS);
        op
    }

    fn cond(&mut self, sc: &Scope, depth: u32) -> String {
        let w = [
            10,
            6,
            if sc.floats.is_empty() { 0 } else { 3 },
            if sc.bools.is_empty() { 0 } else { 3 },
            if depth > 0 { 4 } else { 0 },
            if depth > 0 { 2 } else { 0 },
            if sc.structs.len() >= 2 { 2 } else { 0 },
            if sc.counters.is_empty() { 0 } else { 6 },
            if sc.accs.is_empty() { 0 } else { 2 },
            if sc.opts.is_empty() { 0 } else { 3 },
            if sc.opt_arrays.is_empty() { 0 } else { 2 },
            if sc.bool_arrays.is_empty() { 0 } else { 3 },
            if self.use_rec_helpers && sc.methods { 2 } else { 0 },
        ];
        match self.rng.weighted(&w) {
            0 => {
                let a = self.int_expr(sc, 1);
                let b = self.int_expr(sc, 1);
                let o = self.cmp_op();
                format!("{} {o} {}", a.s, b.s)
            }
            12 => {
                let e = self.int_expr(sc, 1);
                let f = if self.rng.percent(50) { "hev" } else { "hod" };
                format!("{f}(abs({}) % 10)", e.s)
            }
            1 => {
                let a = self.num_expr(sc, 1);
                let b = self.num_expr(sc, 1);
                let o = self.cmp_op();
                format!("{} {o} {}", a.s, b.s)
            }
            2 => {
                let f = self.rng.pick(&sc.floats).clone();
                let b = self.float_expr(sc, 1);
                match self.rng.below(3) {
                    0 => format!("{f} != {f}"),
                    _ => {
                        let o = self.cmp_op();
                        format!("{f} {o} {}", b.s)
                    }
                }
            }
            3 => {
                let b = self.rng.pick(&sc.bools).clone();
                if self.rng.percent(50) {
                    b
                } else {
                    format!("!{b}")
                }
            }
            4 => {
                let a = self.cond(sc, depth - 1);
                let b = self.cond(sc, depth - 1);
                let o = if self.rng.percent(50) { "&&" } else { "||" };
                format!("({a}) {o} ({b})")
            }
            5 => {
                let a = self.cond(sc, depth - 1);
                format!("!({a})")
            }
            6 => {
                let a = self.rng.pick(&sc.structs).name.clone();
                let b = self.rng.pick(&sc.structs).name.clone();
                let o = if self.rng.percent(50) { "==" } else { "!=" };
                format!("{a} {o} {b}")
            }
            7 => self.late_cond(sc),
            8 => {
                let a = self.rng.pick(&sc.accs).clone();
                let k = self.rng.int(-1000, 100_000);
                let o = self.cmp_op();
                format!("{a} {o} {}", int_lit(k))
            }
            9 => {
                let u = self.rng.pick(&sc.opts).clone();
                match self.rng.below(4) {
                    0 => u,
                    1 => format!("!{u}"),
                    _ => {
                        let o = if self.rng.percent(50) { "==" } else { "!=" };
                        format!("{u} {o} nil")
                    }
                }
            }
            10 => {
                let on = self.rng.pick(&sc.opt_arrays).clone();
                let idx = self.index(sc, &on);
                let o = if self.rng.percent(50) { "==" } else { "!=" };
                format!("{}[{idx}] {o} nil", on.name)
            }
            _ => {
                let bb = self.rng.pick(&sc.bool_arrays).clone();
                let idx = self.index(sc, &bb);
                if self.rng.percent(50) {
                    format!("{}[{idx}]", bb.name)
                } else {
                    format!("!{}[{idx}]", bb.name)
                }
            }
        }
    }
}

/// `s` in parentheses unless it already is a single token or parenthesised.
fn paren(s: &str) -> String {
    let simple = s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if simple || (s.starts_with('(') && s.ends_with(')') && balanced_outer(s)) {
        s.to_string()
    } else {
        format!("({s})")
    }
}

/// Whether the first `(` of `s` closes at its last character.
fn balanced_outer(s: &str) -> bool {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 && i + 1 != s.len() {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

// ===========================================================================
// Running the VM

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    SpawnFailed(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exit status {c}"),
            Status::Signaled(s) => write!(f, "killed by signal {s}"),
            Status::TimedOut => write!(f, "timed out (killed)"),
            Status::SpawnFailed(e) => write!(f, "could not start: {e}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunOutput {
    pub stdout: String,
    pub stderr: String,
    pub status: Status,
    /// Some output was dropped (past `OUTPUT_CAP`).
    pub truncated: bool,
}

/// Bytes kept of each output stream; the rest is read and dropped.
const OUTPUT_CAP: usize = 16 << 20;

/// Runs `vela FLAGS FILE` with a wall-clock limit.
pub fn run_vela(vela: &Path, flags: &[&str], file: &Path, timeout: Duration) -> RunOutput {
    let mut cmd = Command::new(vela);
    cmd.args(flags).arg(file).env_remove("VELA_JIT");
    let run = match process::run_with_timeout(&mut cmd, timeout, OUTPUT_CAP) {
        Ok(run) => run,
        Err(e) => {
            return RunOutput {
                stdout: String::new(),
                stderr: String::new(),
                status: Status::SpawnFailed(e.to_string()),
                truncated: false,
            }
        }
    };
    let status = match run.ended {
        Ended::Exited(code) => Status::Exited(code),
        Ended::Signaled(sig) => Status::Signaled(sig),
        Ended::TimedOut => Status::TimedOut,
        Ended::WaitFailed(e) => Status::SpawnFailed(format!("wait failed: {e}")),
    };
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    RunOutput { stdout, stderr, status, truncated: run.truncated }
}

pub const INTERP_FLAGS: &[&str] = &["--jit=off"];
/// The JIT runs' flags (`--jit-stats` is always added). Program seed `S`
/// runs in mode `S % JIT_MODES.len()`, so every mode gets a share of the
/// programs at the cost of one JIT run each, and a seed always reruns in the
/// mode it failed in. Side traces grow after two exits, not ten, in the
/// second mode; the third also keeps the code cache small enough that traces
/// are evicted and recorded again (32 KiB: with 16 KiB nearly every program
/// thrashes, and the mode costs twice the others for less running code).
/// The first mode compiles in the background (`--jit-background`); the
/// others compile synchronously, so a failing seed replays exactly. The
/// second and third merge a side trace into its root at the root's first
/// checkpoint after two entries (`--hot-merge=2`).
pub const JIT_MODES: &[&[&str]] = &[
    &["--hot-loop=2", "--jit-background"],
    &["--hot-loop=2", "--hot-exit=2", "--hot-merge=2"],
    &["--hot-loop=2", "--hot-exit=2", "--hot-merge=2", "--jit-cache=32768"],
];

/// The flags of the JIT run of program `seed` among `modes` (not empty).
pub fn mode_of(modes: &[Vec<String>], seed: u64) -> &[String] {
    &modes[(seed % modes.len() as u64) as usize]
}

/// What `--jit-stats` reported.
#[derive(Clone, Debug, Default)]
pub struct JitStats {
    pub compiled: u64,
    pub aborted: u64,
    pub blacklisted: u64,
    /// Compiled traces per function name (`(in NAME)` of each trace line).
    pub traces_in: BTreeMap<String, u64>,
    pub abort_reasons: BTreeMap<String, u64>,
    pub exits: u64,
    /// Side traces compiled into their root's loop (`side traces merged
    /// into their root's loop N`).
    pub merged: u64,
}

/// Splits a JIT run's stderr into the program's own stderr and the stats.
pub fn split_jit_stderr(stderr: &str) -> (String, JitStats) {
    let mut own = String::new();
    let mut st = JitStats::default();
    for line in stderr.split_inclusive('\n') {
        let Some(rest) = line.strip_prefix("jit: ") else {
            own.push_str(line);
            continue;
        };
        let rest = rest.trim_end();
        if let Some(r) = rest.strip_prefix("traces compiled ") {
            // "N, aborted M, blacklisted K"
            let nums: Vec<u64> = r
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect();
            if nums.len() >= 3 {
                st.compiled = nums[0];
                st.aborted = nums[1];
                st.blacklisted = nums[2];
            }
        } else if let Some(r) = rest.strip_prefix("side traces merged into their root's loop ") {
            // "N, still merged M, recompiles K (median X ms)"
            let n: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
            st.merged = n.parse().unwrap_or(0);
        } else if let Some(r) = rest.strip_prefix("abort reason ") {
            // "N x REASON"
            if let Some((n, why)) = r.split_once(" x ") {
                *st.abort_reasons.entry(why.to_string()).or_default() += n.parse::<u64>().unwrap_or(0);
            }
        } else if rest.starts_with("trace") {
            if let (Some(a), Some(b)) = (rest.find("(in "), rest.find("):")) {
                if a + 4 <= b {
                    *st.traces_in.entry(rest[a + 4..b].to_string()).or_default() += 1;
                }
            }
            if let Some(x) = rest.find("exits ") {
                let n: String = rest[x + 6..].chars().take_while(|c| c.is_ascii_digit()).collect();
                st.exits += n.parse::<u64>().unwrap_or(0);
            }
        }
    }
    (own, st)
}

/// Both runs of one program.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub interp: RunOutput,
    pub jit: RunOutput,
    /// The JIT run's stderr without `jit:` lines.
    pub jit_stderr: String,
    pub stats: JitStats,
}

/// Equal texts, or, when output was cut, one a prefix of the other.
fn same_text(a: &str, b: &str, cut: bool) -> bool {
    if cut {
        a.starts_with(b) || b.starts_with(a)
    } else {
        a == b
    }
}

impl Outcome {
    pub fn mismatch(&self) -> bool {
        let cut = self.interp.truncated || self.jit.truncated;
        self.interp.status != self.jit.status
            || !same_text(&self.interp.stdout, &self.jit.stdout, cut)
            || !same_text(&self.interp.stderr, &self.jit_stderr, cut)
    }

    /// A short name for the kind of mismatch.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if self.interp.status != self.jit.status {
            what.push(format!("status {} vs {}", self.interp.status, self.jit.status));
        }
        let cut = self.interp.truncated || self.jit.truncated;
        if !same_text(&self.interp.stdout, &self.jit.stdout, cut) {
            what.push("stdout differs".to_string());
        }
        if !same_text(&self.interp.stderr, &self.jit_stderr, cut) {
            what.push("stderr differs".to_string());
        }
        what.join(", ")
    }
}

/// Runs the interpreter and then the JIT on `file`. `None` when the
/// interpreter run itself timed out (a candidate the shrinker broke).
pub fn run_both(vela: &Path, jit_flags: &[String], file: &Path, timeout: Duration) -> Option<Outcome> {
    let interp = run_vela(vela, INTERP_FLAGS, file, timeout);
    if interp.status == Status::TimedOut {
        return None;
    }
    let mut flags: Vec<&str> = jit_flags.iter().map(String::as_str).collect();
    flags.push("--jit-stats");
    let jit = run_vela(vela, &flags, file, timeout);
    let (jit_stderr, stats) = split_jit_stderr(&jit.stderr);
    Some(Outcome { interp, jit, jit_stderr, stats })
}

// ===========================================================================
// Shrinking

fn brace_net(line: &str) -> i32 {
    let mut net = 0;
    let mut in_str = false;
    let mut prev = ' ';
    for c in line.chars() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '{' if !in_str => net += 1,
            '}' if !in_str => net -= 1,
            _ => {}
        }
        prev = c;
    }
    net
}

/// Depth before each line, and after the last.
fn depths(lines: &[String]) -> Vec<i32> {
    let mut d = vec![0; lines.len() + 1];
    for (i, l) in lines.iter().enumerate() {
        d[i + 1] = d[i] + brace_net(l);
    }
    d
}

fn opens_block(line: &str) -> bool {
    line.trim_end().ends_with('{')
}

fn is_else(line: &str) -> bool {
    line.trim_start().starts_with("} else")
}

/// For the block (or if/else chain) opened at `start`, the index of its last line.
fn block_end(lines: &[String], d: &[i32], start: usize) -> Option<usize> {
    let base = d[start];
    (start + 1..lines.len()).find(|&j| d[j + 1] <= base)
}

/// For an `} else ...{` line at `start`, the last line of the chain.
fn else_end(lines: &[String], d: &[i32], start: usize) -> Option<usize> {
    let base = d[start] - 1;
    (start + 1..lines.len()).find(|&j| d[j + 1] <= base)
}

fn join(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// Greedily deletes functions, blocks, else branches, block wrappers and
/// single lines of `text` while `interesting` holds. `budget` bounds the
/// number of `interesting` calls.
pub fn shrink(text: &str, mut interesting: impl FnMut(&str) -> bool, mut budget: usize) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut try_lines = |cand: Vec<String>, lines: &mut Vec<String>, budget: &mut usize| -> bool {
        if *budget == 0 || cand.len() == lines.len() && cand == *lines {
            return false;
        }
        *budget -= 1;
        if interesting(&join(&cand)) {
            *lines = cand;
            true
        } else {
            false
        }
    };
    loop {
        let mut changed = false;
        // 1. A top-level function with every call of it (`NAME()` lines).
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i].clone();
            if let Some(rest) = l.strip_prefix("fn ") {
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                let d = depths(&lines);
                let end = if opens_block(&l) { block_end(&lines, &d, i) } else { Some(i) };
                if let Some(end) = end {
                    let call = format!("{name}()");
                    let cand: Vec<String> = lines
                        .iter()
                        .enumerate()
                        .filter(|(j, x)| !(i..=end).contains(j) && x.trim() != call)
                        .map(|(_, x)| x.clone())
                        .collect();
                    if try_lines(cand, &mut lines, &mut budget) {
                        changed = true;
                        continue;
                    }
                }
            }
            i += 1;
        }
        // 2. Whole blocks (an if/else chain at once).
        let mut i = 0;
        while i < lines.len() {
            if opens_block(&lines[i]) && !is_else(&lines[i]) {
                let d = depths(&lines);
                if let Some(end) = block_end(&lines, &d, i) {
                    let mut cand = lines.clone();
                    cand.drain(i..=end);
                    if try_lines(cand, &mut lines, &mut budget) {
                        changed = true;
                        continue;
                    }
                }
            }
            i += 1;
        }
        // 3. Else branches.
        let mut i = 0;
        while i < lines.len() {
            if is_else(&lines[i]) {
                let d = depths(&lines);
                if let Some(end) = else_end(&lines, &d, i) {
                    let indent: String = lines[i].chars().take_while(|c| *c == ' ').collect();
                    let mut cand = lines.clone();
                    cand.drain(i..=end);
                    cand.insert(i, format!("{indent}}}"));
                    if try_lines(cand, &mut lines, &mut budget) {
                        changed = true;
                    }
                }
            }
            i += 1;
        }
        // 4. Single lines (statements).
        let mut i = 0;
        while i < lines.len() {
            if !opens_block(&lines[i]) && brace_net(&lines[i]) == 0 && !lines[i].trim().is_empty() {
                let mut cand = lines.clone();
                cand.remove(i);
                if try_lines(cand, &mut lines, &mut budget) {
                    changed = true;
                    continue;
                }
            }
            i += 1;
        }
        // 5. Unwrap a block: keep its body, drop the header and the `}`.
        let mut i = 0;
        while i < lines.len() {
            if opens_block(&lines[i]) && !is_else(&lines[i]) && !lines[i].starts_with("fn ") {
                let d = depths(&lines);
                if let Some(end) = block_end(&lines, &d, i) {
                    let simple =
                        lines[end].trim() == "}" && !(i + 1..end).any(|j| is_else(&lines[j]) && d[j] == d[i] + 1);
                    if simple {
                        let mut cand = lines.clone();
                        cand.remove(end);
                        cand.remove(i);
                        if try_lines(cand, &mut lines, &mut budget) {
                            changed = true;
                            continue;
                        }
                    }
                }
            }
            i += 1;
        }
        // 6. Expressions, once the program is small: a parenthesised group or
        // a call becomes `1` or `0`.
        if lines.len() <= 80 {
            for i in 0..lines.len() {
                let mut g = 0;
                while g < groups(&lines[i]).len() {
                    let (from, to) = groups(&lines[i])[g];
                    let mut replaced = false;
                    for r in ["1", "0"] {
                        let l = &lines[i];
                        let new = format!("{}{r}{}", &l[..from], &l[to..]);
                        let mut cand = lines.clone();
                        cand[i] = new;
                        if try_lines(cand, &mut lines, &mut budget) {
                            changed = true;
                            replaced = true;
                            break;
                        }
                    }
                    if !replaced {
                        g += 1;
                    }
                }
            }
        }
        if !changed || budget == 0 {
            break;
        }
    }
    join(&lines)
}

/// Byte ranges of the parenthesised groups of `line` (with the name before
/// a call's `(`), outermost first; `if`/`while` heads and calls with no
/// arguments are left alone.
fn groups(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut open = Vec::new();
    let mut out = Vec::new();
    let mut in_str = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'"' if i == 0 || b[i - 1] != b'\\' => in_str = !in_str,
            b'(' if !in_str => open.push(i),
            b')' if !in_str => {
                if let Some(o) = open.pop() {
                    let mut from = o;
                    while from > 0
                        && (b[from - 1].is_ascii_alphanumeric() || b[from - 1] == b'_' || b[from - 1] == b'.')
                    {
                        from -= 1;
                    }
                    let name = &line[from..o];
                    let empty = o + 1 == i;
                    if !empty && !matches!(name, "print" | "fn") {
                        out.push((from, i + 1));
                    }
                }
            }
            _ => {}
        }
    }
    out.sort();
    out
}

// ===========================================================================
// The fuzzing loop

#[derive(Clone, Debug)]
pub struct FuzzConfig {
    pub vela: PathBuf,
    /// Flags of the JIT runs, one set per mode (normally `JIT_MODES`; see
    /// `mode_of`; `--jit-stats` is added).
    pub jit_modes: Vec<Vec<String>>,
    /// Cases (case functions) to run in all; rounded up to whole programs.
    pub cases: usize,
    pub seed: u64,
    pub per_program: usize,
    pub threads: usize,
    /// Wall-clock limit of one run.
    pub timeout: Duration,
    /// Wall-clock limit of one run while shrinking.
    pub shrink_timeout: Duration,
    /// Failures minimised (the rest are reported unminimised).
    pub max_shrinks: usize,
    /// Wall-clock time allowed per minimisation.
    pub shrink_time: Duration,
    /// Print a progress line to stderr about every this often.
    pub progress: Option<Duration>,
    /// Where program files are written.
    pub work_dir: PathBuf,
}

impl FuzzConfig {
    pub fn programs(&self) -> usize {
        self.cases.div_ceil(self.per_program.max(1))
    }
}

#[derive(Clone, Debug)]
pub struct Failure {
    /// Seed of the program (reproduce with `--seed SEED --cases PER_PROGRAM`).
    pub seed: u64,
    pub original: String,
    pub original_outcome: Outcome,
    /// Minimised program and its outcome (None if not minimised).
    pub minimized: Option<(String, Outcome)>,
    /// The JIT run's flags, space-separated.
    pub jit_flags: String,
}

impl Failure {
    pub fn report(&self, per_program: usize) -> String {
        let mut s = String::new();
        let (prog, out) = match &self.minimized {
            Some((p, o)) => (p.as_str(), o),
            None => (self.original.as_str(), &self.original_outcome),
        };
        let _ = writeln!(
            s,
            "==== JIT mismatch: program seed {} ({}) — {}",
            self.seed,
            if self.minimized.is_some() { "minimised" } else { "not minimised" },
            out.describe()
        );
        let _ = writeln!(
            s,
            "reproduce: cargo run --release --example jit_fuzz -- --seed {} --cases {per_program} --per-program {per_program} --jit-flags '{}'",
            self.seed, self.jit_flags
        );
        let _ = writeln!(s, "---- program ({} lines):", prog.lines().count());
        s.push_str(prog);
        let _ = writeln!(s, "---- --jit=off: {}", out.interp.status);
        let _ = writeln!(s, "stdout:\n{}", indent(&out.interp.stdout));
        let _ = writeln!(s, "stderr:\n{}", indent(&out.interp.stderr));
        let _ = writeln!(s, "---- {}: {}", self.jit_flags, out.jit.status);
        let _ = writeln!(s, "stdout:\n{}", indent(&out.jit.stdout));
        let _ = writeln!(s, "stderr (jit: lines removed):\n{}", indent(&out.jit_stderr));
        let jit_lines: Vec<&str> = out.jit.stderr.lines().filter(|l| l.starts_with("jit: ")).collect();
        let _ = writeln!(s, "jit stats:\n{}", indent(&jit_lines.join("\n")));
        s
    }
}

fn indent(t: &str) -> String {
    if t.is_empty() {
        return "    <empty>".into();
    }
    let lines: Vec<String> = t.lines().take(40).map(|l| format!("    | {l}")).collect();
    let more = t.lines().count().saturating_sub(40);
    let mut s = lines.join("\n");
    if more > 0 {
        let _ = write!(s, "\n    ... ({more} more lines)");
    }
    s
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub programs: usize,
    pub risky_programs: usize,
    /// Case functions that ran (finished, or raised the program's error).
    pub cases_run: usize,
    /// Of those, cases with at least one compiled trace anchored in them.
    pub cases_compiled: usize,
    pub programs_compiled: usize,
    pub traces_compiled: u64,
    pub traces_aborted: u64,
    pub trace_exits: u64,
    pub sides_merged: u64,
    /// Programs that ended with a runtime error, by first line of stderr.
    pub errors: BTreeMap<String, usize>,
    pub abort_reasons: BTreeMap<String, u64>,
    pub failures: Vec<Failure>,
    pub elapsed: Duration,
    /// Programs whose interpreter run timed out (the generator's fault).
    pub interp_timeouts: usize,
}

impl Summary {
    pub fn case_fraction(&self) -> f64 {
        self.cases_compiled as f64 / self.cases_run.max(1) as f64
    }

    pub fn program_fraction(&self) -> f64 {
        self.programs_compiled as f64 / self.programs.max(1) as f64
    }

    pub fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "jit fuzz: {} programs ({} with a risky last case), {} cases run, in {:.1} s",
            self.programs,
            self.risky_programs,
            self.cases_run,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "jit fuzz: cases with a compiled trace: {}/{} = {:.1}%; programs: {}/{} = {:.1}%",
            self.cases_compiled,
            self.cases_run,
            100.0 * self.case_fraction(),
            self.programs_compiled,
            self.programs,
            100.0 * self.program_fraction()
        );
        let _ = writeln!(
            s,
            "jit fuzz: traces compiled {}, recordings aborted {}, trace exits {}, side traces merged {}",
            self.traces_compiled, self.traces_aborted, self.trace_exits, self.sides_merged
        );
        let mut reasons: Vec<_> = self.abort_reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = reasons.iter().take(8).map(|(w, n)| format!("{n} x {w}")).collect();
        let _ = writeln!(s, "jit fuzz: top abort reasons: {}", top.join("; "));
        let mut errs: Vec<_> = self.errors.iter().collect();
        errs.sort_by(|a, b| b.1.cmp(a.1));
        let errs: Vec<String> = errs.iter().map(|(w, n)| format!("{n} x {w}")).collect();
        let _ = writeln!(s, "jit fuzz: programs ending in a runtime error: {}", errs.join("; "));
        if self.interp_timeouts > 0 {
            let _ = writeln!(s, "jit fuzz: interpreter timeouts (generator bug): {}", self.interp_timeouts);
        }
        let _ = writeln!(s, "jit fuzz: mismatches: {}", self.failures.len());
        s
    }
}

/// The error class of a stderr: its first line with numbers and names blurred.
fn error_class(stderr: &str) -> String {
    let first = stderr.lines().next().unwrap_or("");
    let mut out = String::new();
    let mut last_digit = false;
    for c in first.chars() {
        if c.is_ascii_digit() {
            if !last_digit {
                out.push('N');
            }
            last_digit = true;
        } else {
            last_digit = false;
            out.push(c);
        }
    }
    out.chars().take(60).collect()
}

/// How many cases of a program ran: finished ones (`cK/end` printed) plus
/// the one that raised the error, if any.
fn cases_run(prog: &Program, out: &RunOutput) -> Vec<usize> {
    let mut ran = Vec::new();
    for k in 0..prog.cases {
        let marker = format!("c{k}/end ");
        if out.stdout.lines().any(|l| l.starts_with(&marker)) {
            ran.push(k);
        } else {
            if out.status != Status::Exited(0) {
                ran.push(k);
            }
            break;
        }
    }
    ran
}

/// Runs `cfg.cases` cases; `on_event` receives failures (as soon as they are
/// minimised) and progress lines.
pub fn run_fuzz(cfg: &FuzzConfig, on_event: &(dyn Fn(&str) + Sync)) -> Summary {
    let started = Instant::now();
    let _ = std::fs::create_dir_all(&cfg.work_dir);
    let programs = cfg.programs();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let shrinks = AtomicUsize::new(0);
    let summary = Mutex::new(Summary::default());
    let last_progress = Mutex::new(Instant::now());
    thread::scope(|s| {
        for t in 0..cfg.threads.max(1) {
            let (next, done, shrinks, summary, last_progress) = (&next, &done, &shrinks, &summary, &last_progress);
            s.spawn(move || {
                let file = cfg.work_dir.join(format!("t{t}.vela"));
                let shrink_file = cfg.work_dir.join(format!("t{t}-shrink.vela"));
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= programs {
                        break;
                    }
                    let seed = cfg.seed.wrapping_add(i as u64);
                    let prog = generate(seed, cfg.per_program);
                    std::fs::write(&file, &prog.text).expect("write program");
                    let flags = mode_of(&cfg.jit_modes, seed);
                    let out = run_both(&cfg.vela, flags, &file, cfg.timeout);
                    let mut failure = None;
                    {
                        let mut sm = summary.lock().unwrap();
                        sm.programs += 1;
                        sm.risky_programs += prog.risky as usize;
                        match &out {
                            None => sm.interp_timeouts += 1,
                            Some(o) => {
                                let ran = cases_run(&prog, &o.interp);
                                sm.cases_run += ran.len();
                                sm.cases_compiled +=
                                    ran.iter().filter(|k| o.stats.traces_in.contains_key(&format!("c{k}"))).count();
                                sm.programs_compiled += (o.stats.compiled > 0) as usize;
                                sm.traces_compiled += o.stats.compiled;
                                sm.traces_aborted += o.stats.aborted;
                                sm.trace_exits += o.stats.exits;
                                sm.sides_merged += o.stats.merged;
                                for (w, n) in &o.stats.abort_reasons {
                                    *sm.abort_reasons.entry(w.clone()).or_default() += n;
                                }
                                if o.interp.status != Status::Exited(0) {
                                    *sm.errors.entry(error_class(&o.interp.stderr)).or_default() += 1;
                                }
                                if o.mismatch() {
                                    failure = Some(o.clone());
                                }
                            }
                        }
                    }
                    if let Some(o) = failure {
                        let mut f = Failure {
                            seed,
                            original: prog.text.clone(),
                            original_outcome: o,
                            minimized: None,
                            jit_flags: flags.join(" "),
                        };
                        if shrinks.fetch_add(1, Ordering::SeqCst) < cfg.max_shrinks {
                            on_event(&format!("jit fuzz: mismatch in program seed {seed}; minimising..."));
                            f.minimized = minimize(cfg, flags, &prog.text, &shrink_file);
                        }
                        on_event(&f.report(cfg.per_program));
                        summary.lock().unwrap().failures.push(f);
                    }
                    let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if let Some(every) = cfg.progress {
                        let mut lp = last_progress.lock().unwrap();
                        if lp.elapsed() >= every || d == programs {
                            *lp = Instant::now();
                            let sm = summary.lock().unwrap();
                            on_event(&format!(
                                "jit fuzz: {d}/{programs} programs, {} cases, {:.1}% with traces, {} mismatches, {:.0} s",
                                sm.cases_run,
                                100.0 * sm.case_fraction(),
                                sm.failures.len(),
                                started.elapsed().as_secs_f64()
                            ));
                        }
                    }
                }
                let _ = std::fs::remove_file(&file);
                let _ = std::fs::remove_file(&shrink_file);
            });
        }
    });
    let mut sm = summary.into_inner().unwrap();
    sm.failures.sort_by_key(|f| f.seed);
    sm.elapsed = started.elapsed();
    sm
}

/// Shrinks a mismatching program; returns it with its outcome if the
/// mismatch still reproduces.
pub fn minimize(cfg: &FuzzConfig, jit_flags: &[String], text: &str, file: &Path) -> Option<(String, Outcome)> {
    let check = |t: &str| -> Option<Outcome> {
        std::fs::write(file, t).ok()?;
        let o = run_both(&cfg.vela, jit_flags, file, cfg.shrink_timeout)?;
        o.mismatch().then_some(o)
    };
    // A candidate that no longer compiles never reaches the JIT.
    let compiles = check(text)?.interp.status != Status::Exited(2);
    let check = |t: &str| check(t).filter(|o| !compiles || o.interp.status != Status::Exited(2));
    let deadline = Instant::now() + cfg.shrink_time;
    let small = shrink(text, |t| Instant::now() < deadline && check(t).is_some(), usize::MAX);
    // Confirm twice: a flaky mismatch is reported as such.
    let o = check(&small)?;
    check(&small)?;
    Some((small, o))
}
