//! End to end: loops recorded with the builder API the way the recorder
//! records them, run through `optimize`, verified, checked for what was
//! hoisted out of the loop, and executed by a small reference interpreter of
//! the IR against the unoptimised recording (which loops by writing its tail
//! snapshot back to the stack and starting over, as the VM would).

use std::collections::{BTreeMap, HashMap};

use vela_ir::{optimize, verify, Helper, Inst, Opcode, Ref, SnapEntry, SnapId, Snapshot, Trace, Type};

// ---- recording, the way `src/jit/recorder.rs` does it ----

struct Rec {
    t: Trace,
    header_pc: u32,
    pc: u32,
    slots: BTreeMap<i32, Ref>,
    modified: BTreeMap<i32, Ref>,
    last: Option<(SnapId, usize, u32)>,
}

impl Rec {
    fn new(header_pc: u32) -> Rec {
        Rec { t: Trace::new(), header_pc, pc: header_pc, slots: BTreeMap::new(), modified: BTreeMap::new(), last: None }
    }

    fn snapshot(&mut self) -> SnapId {
        let len = self.t.len();
        if let Some((id, at, pc)) = self.last {
            if at == len && pc == self.pc {
                return id;
            }
        }
        let entries = self.modified.iter().map(|(&slot, &value)| SnapEntry { slot, value }).collect();
        let id = self.t.add_snapshot(Snapshot {
            pc: self.pc,
            entries,
            frames: Default::default(),
            at: len as u32,
            gc: false,
        });
        self.last = Some((id, len, self.pc));
        id
    }

    fn get(&mut self, slot: i32, ty: Type) -> Ref {
        if let Some(&r) = self.slots.get(&slot) {
            return r;
        }
        let snap = self.snapshot();
        let mut i = Inst::new(Opcode::SLoad, ty);
        i.imm = slot as i64;
        i.snap = snap;
        let r = self.t.push(i);
        self.slots.insert(slot, r);
        r
    }

    fn set(&mut self, slot: i32, r: Ref) {
        self.slots.insert(slot, r);
        self.modified.insert(slot, r);
    }

    fn emit(&mut self, op: Opcode, ty: Type, a: Ref, b: Ref) -> Ref {
        self.t.emit(op, ty, a, b)
    }

    fn guard(&mut self, op: Opcode, ty: Type, a: Ref, b: Ref) -> Ref {
        let snap = self.snapshot();
        self.t.guard(op, ty, a, b, snap)
    }

    fn with_imm(&mut self, op: Opcode, ty: Type, a: Ref, c: Ref, imm: i64) -> Ref {
        let mut i = Inst::new(op, ty);
        (i.a, i.c, i.imm) = (a, c, imm);
        if op.is_guard(ty) {
            i.snap = self.snapshot();
        }
        self.t.push(i)
    }

    fn index_guards(&mut self, arr: Ref, idx: Ref) {
        let len = self.emit(Opcode::ALen, Type::Int, arr, Ref::NONE);
        let c = self.emit(Opcode::ULt, Type::Bool, idx, len);
        self.guard(Opcode::GuardTrue, Type::Void, c, Ref::NONE);
    }

    /// `for` loop step on counter slot `a` (limit `a + 1`, variable `a + 2`).
    fn for_step(&mut self, a: i32) {
        let x = self.get(a, Type::Int);
        let lim = self.get(a + 1, Type::Int);
        let one = self.t.kint(1);
        let n = self.emit(Opcode::Add, Type::Int, x, one);
        let c = self.emit(Opcode::ILt, Type::Bool, n, lim);
        self.guard(Opcode::GuardTrue, Type::Void, c, Ref::NONE);
        let n = self.emit(Opcode::Add, Type::Int, x, one);
        self.set(a, n);
        self.set(a + 2, n);
    }

    fn finish(mut self) -> Trace {
        self.pc = self.header_pc;
        self.last = None;
        let id = self.snapshot();
        self.t.tail = Some(id);
        verify(&self.t).unwrap_or_else(|e| panic!("recording does not verify: {e}\n{}", self.t));
        self.t
    }
}

// ---- a reference interpreter of the IR ----

#[derive(Clone, Copy, Debug, PartialEq)]
enum V {
    Nil,
    Bool(bool),
    Int(i64),
    /// f64 bits (compared bit-exactly).
    Float(u64),
    Ptr(Type, u64),
}

impl V {
    fn kind(self) -> Type {
        match self {
            V::Nil => Type::Nil,
            V::Bool(_) => Type::Bool,
            V::Int(_) => Type::Int,
            V::Float(_) => Type::Float,
            V::Ptr(t, _) => t,
        }
    }
    fn int(self) -> i64 {
        match self {
            V::Int(i) => i,
            v => panic!("not an int: {v:?}"),
        }
    }
    fn flt(self) -> f64 {
        match self {
            V::Float(b) => f64::from_bits(b),
            v => panic!("not a float: {v:?}"),
        }
    }
    fn boolean(self) -> bool {
        match self {
            V::Bool(b) => b,
            v => panic!("not a bool: {v:?}"),
        }
    }
    fn addr(self) -> u64 {
        match self {
            V::Ptr(_, a) => a,
            v => panic!("not a pointer: {v:?}"),
        }
    }
}

fn f(x: f64) -> V {
    V::Float(x.to_bits())
}

#[derive(Clone, Debug, PartialEq, Default)]
struct State {
    stack: Vec<V>,
    arrays: HashMap<u64, Vec<V>>,
    /// Struct objects: (definition, fields).
    objs: HashMap<u64, (i64, Vec<V>)>,
}

/// Runs `t` until a guard fails; returns the exit's pc. A trace without a
/// `Loop` is a recorded iteration: it loops by applying its tail snapshot.
fn run(t: &Trace, st: &mut State) -> u32 {
    let n = t.len();
    let lp = t.loop_start().map(|r| r.index());
    let phis: Vec<usize> = match lp {
        Some(l) => (l + 1..n).take_while(|&k| t.insts[k].op == Opcode::Phi).collect(),
        None => Vec::new(),
    };
    let body = lp.map_or(0, |l| l + 1 + phis.len());
    let mut vals: Vec<Option<V>> = vec![None; n];
    let mut i = 0;
    for _ in 0..100_000 {
        while i < n {
            let inst = t.insts[i];
            if inst.op == Opcode::Loop {
                for &p in &phis {
                    vals[p] = vals[t.insts[p].a.index()];
                }
                i = body;
                continue;
            }
            match step(&inst, &vals, st) {
                Ok(v) => vals[i] = v,
                Err(()) => {
                    write_back(t, inst.snap, &vals, st);
                    return t.snaps[inst.snap.0 as usize].pc;
                }
            }
            i += 1;
        }
        if lp.is_some() {
            let next: Vec<Option<V>> = phis.iter().map(|&p| vals[t.insts[p].b.index()]).collect();
            for (&p, v) in phis.iter().zip(next) {
                vals[p] = v;
            }
            i = body;
        } else {
            write_back(t, t.tail.expect("tail"), &vals, st);
            vals = vec![None; n];
            i = 0;
        }
    }
    panic!("trace did not exit");
}

fn write_back(t: &Trace, s: SnapId, vals: &[Option<V>], st: &mut State) {
    for e in &t.snaps[s.0 as usize].entries {
        let slot = e.slot as usize;
        if st.stack.len() <= slot {
            st.stack.resize(slot + 1, V::Nil);
        }
        st.stack[slot] = vals[e.value.index()].expect("snapshot value computed");
    }
}

/// One instruction: its value (`None` for no value), or `Err` if it exits.
fn step(i: &Inst, vals: &[Option<V>], st: &mut State) -> Result<Option<V>, ()> {
    use Opcode::*;
    let v = |r: Ref| vals[r.index()].unwrap_or_else(|| panic!("{r:?} used before it is computed"));
    let check = |ok: bool| if ok { Ok(()) } else { Err(()) };
    Ok(Some(match i.op {
        KInt => V::Int(i.imm),
        KFloat => V::Float(i.imm as u64),
        KBool => V::Bool(i.imm != 0),
        KNil => V::Nil,
        KPtr => V::Ptr(i.ty, i.imm as u64),
        SLoad => {
            let x = st.stack[i.imm as usize];
            check(i.ty == Type::Value || x.kind() == i.ty)?;
            x
        }
        Unbox => {
            let x = v(i.a);
            check(x.kind() == i.ty)?;
            x
        }
        Box => v(i.a),
        AddOv => V::Int(v(i.a).int().checked_add(v(i.b).int()).ok_or(())?),
        SubOv => V::Int(v(i.a).int().checked_sub(v(i.b).int()).ok_or(())?),
        MulOv => V::Int(v(i.a).int().checked_mul(v(i.b).int()).ok_or(())?),
        Add => V::Int(v(i.a).int().wrapping_add(v(i.b).int())),
        Sub => V::Int(v(i.a).int().wrapping_sub(v(i.b).int())),
        BAnd => V::Int(v(i.a).int() & v(i.b).int()),
        BOr => V::Int(v(i.a).int() | v(i.b).int()),
        BXor => V::Int(v(i.a).int() ^ v(i.b).int()),
        Shl => V::Int(v(i.a).int() << v(i.b).int()),
        Shr => V::Int(v(i.a).int() >> v(i.b).int()),
        BNot => V::Int(!v(i.a).int()),
        FAdd => f(v(i.a).flt() + v(i.b).flt()),
        FMul => f(v(i.a).flt() * v(i.b).flt()),
        IToF => f(v(i.a).int() as f64),
        ILt => V::Bool(v(i.a).int() < v(i.b).int()),
        ILe => V::Bool(v(i.a).int() <= v(i.b).int()),
        IEq => V::Bool(v(i.a).int() == v(i.b).int()),
        INe => V::Bool(v(i.a).int() != v(i.b).int()),
        ULt => V::Bool((v(i.a).int() as u64) < (v(i.b).int() as u64)),
        FLt => V::Bool(v(i.a).flt() < v(i.b).flt()),
        PEq => V::Bool(v(i.a) == v(i.b)),
        GuardTrue => {
            check(v(i.a).boolean())?;
            return Ok(None);
        }
        GuardFalse => {
            check(!v(i.a).boolean())?;
            return Ok(None);
        }
        GuardDef => {
            check(st.objs[&v(i.a).addr()].0 == i.imm)?;
            return Ok(None);
        }
        ALen => V::Int(st.arrays[&v(i.a).addr()].len() as i64),
        ALoad => st.arrays[&v(i.a).addr()][v(i.b).int() as usize],
        AStore => {
            let (a, k, x) = (v(i.a).addr(), v(i.b).int() as usize, v(i.c));
            st.arrays.get_mut(&a).unwrap()[k] = x;
            return Ok(None);
        }
        FLoad => st.objs[&v(i.a).addr()].1[i.imm as usize],
        FStore => {
            let (a, x) = (v(i.a).addr(), v(i.c));
            st.objs.get_mut(&a).unwrap().1[i.imm as usize] = x;
            return Ok(None);
        }
        Nop | Phi => return Ok(None),
        op => panic!("reference interpreter: {op:?} not supported"),
    }))
}

/// Optimises `rec`, checks it, and runs both on `start`: same exit, same state.
fn optimize_and_compare(rec: &Trace, starts: &[State]) -> Trace {
    let opt = optimize(rec.clone()).unwrap_or_else(|e| panic!("optimize: {e}\n{rec}"));
    verify(&opt).unwrap_or_else(|e| panic!("optimised trace does not verify: {e}\n{opt}"));
    // The text form round-trips.
    assert_eq!(vela_ir::parse(&opt.to_string()).unwrap().to_string(), opt.to_string());
    for start in starts {
        let (mut a, mut b) = (start.clone(), start.clone());
        let (pa, pb) = (run(rec, &mut a), run(&opt, &mut b));
        assert_eq!((pa, &a), (pb, &b), "recorded vs optimised from {start:?}\n{rec}\n{opt}");
    }
    opt
}

/// The instructions before and after the `Loop`, as printed lines.
fn split(t: &Trace) -> (Vec<String>, Vec<String>) {
    let text = t.to_string();
    let lines: Vec<String> = text.lines().take(t.len()).map(str::to_string).collect();
    let l = t.loop_start().expect("a loop").index();
    (lines[..l].to_vec(), lines[l + 1..].to_vec())
}

fn count(lines: &[String], op: &str) -> usize {
    lines.iter().filter(|l| l.split_whitespace().any(|w| w == op)).count()
}

const ARR: u64 = 0x1000;
const OBJ: u64 = 0x2000;

// ---- the loops ----

/// `for i in 0..lim { sum = sum + a[i] }`; slots: 0 a, 2 sum, 3 counter, 4 limit, 5 i, 6 a[i].
fn record_sum() -> Trace {
    let mut r = Rec::new(4);
    r.pc = 5; // t6 = a[i]
    let a = r.get(0, Type::Array);
    let i = r.get(5, Type::Int);
    r.index_guards(a, i);
    let boxed = r.emit(Opcode::ALoad, Type::Value, a, i);
    let e = r.guard(Opcode::Unbox, Type::Int, boxed, Ref::NONE);
    r.set(6, e);
    r.pc = 6; // sum = sum + t6
    let s = r.get(2, Type::Int);
    let s = r.guard(Opcode::AddOv, Type::Int, s, e);
    r.set(2, s);
    r.pc = 7; // ForStep
    r.for_step(3);
    r.finish()
}

fn sum_state(elems: &[i64], lim: i64) -> State {
    let mut st = State {
        stack: vec![V::Ptr(Type::Array, ARR), V::Nil, V::Int(0), V::Int(0), V::Int(lim), V::Int(0), V::Nil],
        ..Default::default()
    };
    st.arrays.insert(ARR, elems.iter().map(|&x| V::Int(x)).collect());
    st
}

#[test]
fn sum_over_an_array() {
    let rec = record_sum();
    let starts = [
        sum_state(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 10), // runs to the end of the range
        sum_state(&[1, 2, 3], 10),                       // leaves through the bounds guard
        sum_state(&[1, i64::MAX, 3], 3),                 // leaves through the overflow guard
    ];
    let opt = optimize_and_compare(&rec, &starts);

    let (pre, body) = split(&opt);
    // Loop-invariant loads and guards are before the loop, once.
    for op in ["alen", "sload"] {
        assert_eq!(count(&body, op), 0, "{op} in the loop body:\n{opt}");
    }
    assert_eq!(count(&pre, "alen"), 1);
    assert!(pre.iter().any(|l| l.contains("sload  #0")) && pre.iter().any(|l| l.contains("sload  #4")));
    // The body: bounds checks, load, unbox, add, step, exit test; the counter
    // and the loop variable share one phi; the duplicate `add x 1` is merged.
    assert_eq!(count(&body, "aload"), 1);
    assert_eq!(count(&body, "add"), 1);
    assert_eq!(count(&body, "phi"), 3, "sum, counter = variable, element:\n{opt}");

    let text = format!("-- recorded\n{rec}-- optimised\n{opt}");
    insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("ir_optimize_sum_array", text);
    });
}

/// `for i in 0..lim { a[i] = a[i] + a[0] }`: the store to `a[i]` may change
/// `a[0]` (it does when i == 0), so `a[0]` must be reloaded every iteration.
#[test]
fn array_store_in_the_loop_keeps_loads_in_the_loop() {
    let mut r = Rec::new(4);
    r.pc = 5; // t6 = a[i]
    let a = r.get(0, Type::Array);
    let i = r.get(5, Type::Int);
    r.index_guards(a, i);
    let b = r.emit(Opcode::ALoad, Type::Value, a, i);
    let x = r.guard(Opcode::Unbox, Type::Int, b, Ref::NONE);
    r.set(6, x);
    r.pc = 6; // t7 = a[0]
    let k0 = r.t.kint(0);
    r.index_guards(a, k0);
    let b0 = r.emit(Opcode::ALoad, Type::Value, a, k0);
    let y = r.guard(Opcode::Unbox, Type::Int, b0, Ref::NONE);
    r.set(7, y);
    r.pc = 7; // t6 = t6 + t7
    let s = r.guard(Opcode::AddOv, Type::Int, x, y);
    r.set(6, s);
    r.pc = 8; // a[i] = t6
    r.index_guards(a, i);
    let bs = r.emit(Opcode::Box, Type::Value, s, Ref::NONE);
    let mut st = Inst::new(Opcode::AStore, Type::Void);
    (st.a, st.b, st.c) = (a, i, bs);
    r.t.push(st);
    r.pc = 9;
    r.for_step(3);
    let rec = r.finish();

    let starts = [sum_state(&[1, 2, 3, 4, 5], 5), sum_state(&[1, 2, 3], 8), sum_state(&[i64::MAX / 2, 9, 9], 3)];
    let opt = optimize_and_compare(&rec, &starts);
    let (pre, body) = split(&opt);
    assert_eq!(count(&body, "aload"), 2, "a[i] and a[0] are loaded every iteration:\n{opt}");
    assert_eq!(count(&body, "astore"), 1);
    assert_eq!(count(&body, "alen"), 0, "stores do not change the length:\n{opt}");
    // `0 < len` and `0 < 0` are invariant / folded; `i < len` is checked once per iteration.
    assert_eq!(count(&body, "gtrue"), 2, "i < len, and the loop test:\n{opt}");
    assert_eq!(count(&pre, "alen"), 1);
}

/// `for i in 0..lim { p.x = p.x + p.d }` on a struct: the definition guard and
/// the load of field `d` are invariant; field `x` is stored, so it is reloaded.
#[test]
fn struct_fields() {
    let mut r = Rec::new(4);
    r.pc = 5;
    let p = r.get(0, Type::Struct);
    r.with_imm(Opcode::GuardDef, Type::Void, p, Ref::NONE, 7);
    let bx = r.with_imm(Opcode::FLoad, Type::Value, p, Ref::NONE, 0);
    let x = r.guard(Opcode::Unbox, Type::Float, bx, Ref::NONE);
    r.with_imm(Opcode::GuardDef, Type::Void, p, Ref::NONE, 7);
    let bd = r.with_imm(Opcode::FLoad, Type::Value, p, Ref::NONE, 1);
    let d = r.guard(Opcode::Unbox, Type::Float, bd, Ref::NONE);
    let s = r.emit(Opcode::FAdd, Type::Float, x, d);
    r.pc = 6;
    r.with_imm(Opcode::GuardDef, Type::Void, p, Ref::NONE, 7);
    let bs = r.emit(Opcode::Box, Type::Value, s, Ref::NONE);
    r.with_imm(Opcode::FStore, Type::Void, p, bs, 0);
    r.pc = 7;
    r.for_step(3);
    let rec = r.finish();

    let state = |def: i64, x: V, lim: i64| {
        let mut st = State {
            stack: vec![V::Ptr(Type::Struct, OBJ), V::Nil, V::Nil, V::Int(0), V::Int(lim), V::Int(0)],
            ..Default::default()
        };
        st.objs.insert(OBJ, (def, vec![x, f(0.1)]));
        st
    };
    let starts = [state(7, f(1.0), 10), state(8, f(1.0), 10), state(7, V::Int(1), 10)];
    let opt = optimize_and_compare(&rec, &starts);
    let (pre, body) = split(&opt);
    assert_eq!(count(&pre, "gdef"), 1);
    assert_eq!(count(&body, "gdef"), 0, "{opt}");
    assert!(pre.iter().any(|l| l.ends_with("field 1")));
    assert!(!body.iter().any(|l| l.contains("fload") && l.ends_with("field 1")), "{opt}");
    assert_eq!(body.iter().filter(|l| l.contains("fload") && l.contains("field 0")).count(), 1, "{opt}");
}

/// `while true { t = a + b; a = b; b = t }`: the slots swap through phis that
/// refer to each other; the loop leaves through the overflow guard.
#[test]
fn fibonacci_swap() {
    let mut r = Rec::new(3);
    r.pc = 4;
    let a = r.get(0, Type::Int);
    let b = r.get(1, Type::Int);
    let t = r.guard(Opcode::AddOv, Type::Int, a, b);
    r.set(2, t);
    r.pc = 5;
    r.set(0, b);
    r.pc = 6;
    r.set(1, t);
    let rec = r.finish();
    let start = State { stack: vec![V::Int(0), V::Int(1), V::Nil], ..Default::default() };
    let opt = optimize_and_compare(&rec, &[start]);
    let (_, body) = split(&opt);
    // a's phi takes b's; b and t hold the same value: one phi.
    assert_eq!(count(&body, "phi"), 2, "{opt}");
    assert_eq!(count(&body, "addov"), 1);
}

/// A loop whose slot changes type (int, then float) cannot be peeled.
#[test]
fn type_unstable_loop_is_an_error() {
    let mut r = Rec::new(1);
    r.pc = 2;
    let x = r.get(0, Type::Int);
    let y = r.emit(Opcode::IToF, Type::Float, x, Ref::NONE);
    r.set(0, y);
    let rec = r.finish();
    let err = optimize(rec).unwrap_err();
    assert!(err.contains("type-unstable loop: slot #0"), "{err}");
}

/// The optimiser rejects a recording that does not verify.
#[test]
fn invalid_input_is_an_error() {
    let mut t = Trace::new();
    let k = t.kint(1);
    t.emit(Opcode::FNeg, Type::Float, k, Ref::NONE);
    assert_eq!(optimize(t).unwrap_err(), "input trace: 0001 fneg: operand a 0000 has type int, expected flt");
}

// ---- random loops ----

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Slots: 0..=4 ints, 5 counter, 6 limit, 7 float accumulator, 8 array of 4 ints.
fn random_loop(rng: &mut Rng) -> Trace {
    let mut r = Rec::new(1);
    let mut vals: Vec<Ref> = Vec::new();
    let steps = 3 + rng.below(14);
    for step in 0..steps {
        r.pc = 2 + step as u32;
        let int = |r: &mut Rec, rng: &mut Rng, vals: &[Ref]| -> Ref {
            match rng.below(4) {
                0 => {
                    let k = [0, 1, -1, 2, 3, 7, 63, i64::MAX, i64::MIN][rng.below(9) as usize];
                    r.t.kint(k)
                }
                1 if !vals.is_empty() => vals[rng.below(vals.len() as u64) as usize],
                _ => r.get(rng.below(5) as i32, Type::Int),
            }
        };
        let dst = rng.below(5) as i32;
        match rng.below(10) {
            0..=3 => {
                let (x, y) = (int(&mut r, rng, &vals), int(&mut r, rng, &vals));
                let ops = [Opcode::Add, Opcode::Sub, Opcode::BAnd, Opcode::BOr, Opcode::BXor];
                let v = match rng.below(8) {
                    k @ 0..=4 => r.emit(ops[k as usize], Type::Int, x, y),
                    5 => r.guard(Opcode::AddOv, Type::Int, x, y),
                    6 => r.guard(Opcode::SubOv, Type::Int, x, y),
                    _ => r.guard(Opcode::MulOv, Type::Int, x, y),
                };
                vals.push(v);
                r.set(dst, v);
            }
            4 => {
                let x = int(&mut r, rng, &vals);
                let v = match rng.below(3) {
                    0 => r.emit(Opcode::BNot, Type::Int, x, Ref::NONE),
                    k => {
                        let amount = r.t.kint(rng.below(64) as i64);
                        r.emit(if k == 1 { Opcode::Shl } else { Opcode::Shr }, Type::Int, x, amount)
                    }
                };
                vals.push(v);
                r.set(dst, v);
            }
            5 => {
                let (x, y) = (int(&mut r, rng, &vals), int(&mut r, rng, &vals));
                let op = [Opcode::ILt, Opcode::ILe, Opcode::IEq, Opcode::INe, Opcode::ULt][rng.below(5) as usize];
                let c = r.emit(op, Type::Bool, x, y);
                r.guard(
                    if rng.below(2) == 0 { Opcode::GuardTrue } else { Opcode::GuardFalse },
                    Type::Void,
                    c,
                    Ref::NONE,
                );
            }
            6 => {
                let src = r.get(rng.below(5) as i32, Type::Int);
                r.set(dst, src);
            }
            7 => {
                let x = int(&mut r, rng, &vals);
                let acc = r.get(7, Type::Float);
                let xf = r.emit(Opcode::IToF, Type::Float, x, Ref::NONE);
                let op = if rng.below(2) == 0 { Opcode::FAdd } else { Opcode::FMul };
                let v = r.emit(op, Type::Float, acc, xf);
                r.set(7, v);
            }
            _ => {
                let arr = r.get(8, Type::Array);
                let x = int(&mut r, rng, &vals);
                let three = r.t.kint(3);
                let idx = r.emit(Opcode::BAnd, Type::Int, x, three);
                r.index_guards(arr, idx);
                if rng.below(2) == 0 {
                    let b = r.emit(Opcode::ALoad, Type::Value, arr, idx);
                    let v = r.guard(Opcode::Unbox, Type::Int, b, Ref::NONE);
                    vals.push(v);
                    r.set(dst, v);
                } else {
                    let v = int(&mut r, rng, &vals);
                    let b = r.emit(Opcode::Box, Type::Value, v, Ref::NONE);
                    let mut st = Inst::new(Opcode::AStore, Type::Void);
                    (st.a, st.b, st.c) = (arr, idx, b);
                    r.t.push(st);
                }
            }
        }
    }
    // counter += 1; exit when it reaches the limit.
    r.pc = 100;
    let c = r.get(5, Type::Int);
    let one = r.t.kint(1);
    let c1 = r.guard(Opcode::AddOv, Type::Int, c, one);
    let lim = r.get(6, Type::Int);
    let more = r.emit(Opcode::ILt, Type::Bool, c1, lim);
    r.guard(Opcode::GuardTrue, Type::Void, more, Ref::NONE);
    r.set(5, c1);
    r.finish()
}

#[test]
fn random_loops_behave_like_their_recording() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut iterations = 0;
    for _ in 0..400 {
        let rec = random_loop(&mut rng);
        let starts: Vec<State> = (0..4)
            .map(|_| {
                let mut stack: Vec<V> = (0..5).map(|_| V::Int(rng.below(21) as i64 - 10)).collect();
                stack.extend([V::Int(0), V::Int(1 + rng.below(40) as i64), f(0.5), V::Ptr(Type::Array, ARR)]);
                let mut st = State { stack, ..Default::default() };
                st.arrays.insert(ARR, (0..4).map(|_| V::Int(rng.below(100) as i64)).collect());
                st
            })
            .collect();
        optimize_and_compare(&rec, &starts);
        for start in &starts {
            let mut st = start.clone();
            run(&rec, &mut st);
            iterations += st.stack[5].int();
        }
    }
    // The loops do run for a while (not every one exits in its first iteration).
    assert!(iterations > 1000, "{iterations}");
}

/// `for i in a..b { m[k] = m.get(k, 0) + 1 }` as the recorder records it,
/// with the GC check after the map store: the three helper calls are copied
/// into the loop in their order (never hoisted or merged, though the first
/// two have the same operands in every iteration), the unboxed count is
/// guarded each time, and the GC exit's snapshot stays a GC snapshot.
#[test]
fn helper_calls_stay_in_the_loop_in_order() {
    let mut r = Rec::new(4);
    r.pc = 5;
    let m = r.get(0, Type::Map);
    let k = r.get(1, Type::Int);
    let kb = r.emit(Opcode::Box, Type::Value, k, Ref::NONE);
    let zero = r.t.kint(0);
    let zb = r.emit(Opcode::Box, Type::Value, zero, Ref::NONE);
    let call = |r: &mut Rec, h: Helper, ty: Type, args: [Ref; 3]| {
        let mut c = Inst::new(Opcode::Call, ty);
        c.imm = h as i64;
        (c.a, c.b, c.c) = (args[0], args[1], args[2]);
        r.t.push(c)
    };
    let got = call(&mut r, Helper::MapGetOr, Type::Value, [m, kb, zb]);
    let v = r.guard(Opcode::Unbox, Type::Int, got, Ref::NONE);
    let one = r.t.kint(1);
    r.pc = 6;
    let v1 = r.guard(Opcode::AddOv, Type::Int, v, one);
    r.set(3, v1);
    r.pc = 7;
    let vb = r.emit(Opcode::Box, Type::Value, v1, Ref::NONE);
    call(&mut r, Helper::MapSet, Type::Void, [m, kb, vb]);
    r.pc = 8;
    let wanted = call(&mut r, Helper::GcWanted, Type::Bool, [Ref::NONE; 3]);
    r.last = None;
    let s = r.snapshot();
    r.t.snaps[s.0 as usize].gc = true;
    r.last = None;
    r.t.guard(Opcode::GuardFalse, Type::Void, wanted, Ref::NONE, s);
    r.for_step(4);
    let rec = r.finish();
    let opt = optimize(rec.clone()).unwrap_or_else(|e| panic!("{e}\n{rec}"));
    verify(&opt).unwrap();

    let (pre, body) = split(&opt);
    assert_eq!(count(&pre, "call"), 3);
    assert_eq!(count(&body, "call"), 3, "{opt}");
    let order: Vec<&str> = body
        .iter()
        .filter(|l| l.contains(" call "))
        .map(|l| l.split_whitespace().find(|w| w.starts_with("map_") || w.starts_with("gc_")).unwrap_or(""))
        .collect();
    assert_eq!(order, ["map_get_or", "map_set", "gc_wanted"]);
    assert_eq!(count(&body, "unbox"), 1);
    assert!(opt.snaps.iter().filter(|s| s.gc).count() >= 2, "{opt}");

    let text = format!("-- recorded\n{rec}-- optimised\n{opt}");
    insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("ir_optimize_map_counting", text);
    });
}
