//! Register liveness of a prototype: for each pc, the registers some path
//! from there may read before writing them. The JIT leaves the others out
//! of its snapshots (a dead register needs no restoring when the
//! interpreter resumes there), as LuaJIT's snapshot use-def analysis does.
//! Plain data computed from the bytecode; must not execute anything.
//!
//! The analysis errs towards live: an instruction that writes a register on
//! only some paths (`ForPrep`'s loop variable, `ForInNext`'s element) does
//! not kill it, and a `Closure` reads every register its upvalue list names.

use super::op::{Op, Reg};
use super::proto::{Proto, UpvalDesc};

/// A set of registers (a frame has at most 256).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegSet([u64; 4]);

impl RegSet {
    pub fn contains(&self, r: usize) -> bool {
        r < 256 && self.0[r / 64] & (1 << (r % 64)) != 0
    }

    fn insert(&mut self, r: usize) {
        if r < 256 {
            self.0[r / 64] |= 1 << (r % 64);
        }
    }

    fn insert_range(&mut self, from: usize, count: usize) {
        for r in from..from + count {
            self.insert(r);
        }
    }

    fn union(self, o: RegSet) -> RegSet {
        RegSet(std::array::from_fn(|w| self.0[w] | o.0[w]))
    }

    fn minus(self, o: RegSet) -> RegSet {
        RegSet(std::array::from_fn(|w| self.0[w] & !o.0[w]))
    }
}

/// The registers live on entry to each instruction of one prototype.
#[derive(Debug)]
pub struct Liveness {
    live_in: Box<[RegSet]>,
}

impl Liveness {
    /// Whether register `r` may be read, before being written, by some path
    /// starting at `pc`.
    pub fn is_live(&self, pc: usize, r: usize) -> bool {
        self.live_in.get(pc).is_none_or(|s| s.contains(r))
    }

    /// Backward dataflow to a fixed point; loops need a few sweeps.
    pub fn of(proto: &Proto) -> Liveness {
        let code = &proto.code;
        let effects: Vec<(RegSet, RegSet)> = code.iter().map(|op| effect(proto, *op)).collect();
        let mut live_in = vec![RegSet::default(); code.len()].into_boxed_slice();
        let mut changed = true;
        while changed {
            changed = false;
            for pc in (0..code.len()).rev() {
                let mut out = RegSet::default();
                for s in successors(code[pc], pc).into_iter().flatten() {
                    if let Some(l) = live_in.get(s) {
                        out = out.union(*l);
                    }
                }
                let (reads, kills) = effects[pc];
                let new = reads.union(out.minus(kills));
                if new != live_in[pc] {
                    live_in[pc] = new;
                    changed = true;
                }
            }
        }
        Liveness { live_in }
    }
}

/// Where control may go after the instruction at `pc` (none after a return).
fn successors(op: Op, pc: usize) -> [Option<usize>; 2] {
    match op {
        Op::Return { .. } | Op::ReturnNil => [None, None],
        Op::Jmp { .. } => [op.jump_target(pc), None],
        _ => [Some(pc + 1), op.jump_target(pc)],
    }
}

/// The registers an instruction reads, and those it always writes.
fn effect(proto: &Proto, op: Op) -> (RegSet, RegSet) {
    let mut reads = RegSet::default();
    let mut kills = RegSet::default();
    let r = |set: &mut RegSet, regs: &[Reg]| regs.iter().for_each(|&x| set.insert(x as usize));
    match op {
        Op::Move { a, b }
        | Op::NewCell { a, b }
        | Op::GetCell { a, b }
        | Op::Neg { a, b }
        | Op::Not { a, b }
        | Op::BitNot { a, b }
        | Op::AddInt { a, b, .. }
        | Op::AddK { a, b, .. }
        | Op::SubK { a, b, .. }
        | Op::MulK { a, b, .. }
        | Op::DivK { a, b, .. }
        | Op::RemK { a, b, .. }
        | Op::GetField { a, b, .. }
        | Op::FmtPrec { a, b, .. } => {
            r(&mut reads, &[b]);
            r(&mut kills, &[a]);
        }
        Op::LoadNil { a }
        | Op::LoadBool { a, .. }
        | Op::LoadInt { a, .. }
        | Op::LoadK { a, .. }
        | Op::GetGlobal { a, .. }
        | Op::GetUpval { a, .. }
        | Op::GetStructFn { a, .. }
        | Op::NewArray { a, .. }
        | Op::NewMap { a }
        | Op::NewStruct { a, .. } => r(&mut kills, &[a]),
        Op::SetGlobal { a, .. } | Op::JmpIf { a, .. } | Op::JmpIfNot { a, .. } | Op::Return { a } => {
            r(&mut reads, &[a])
        }
        Op::JmpNotLtK { a, .. }
        | Op::JmpNotLeK { a, .. }
        | Op::JmpNotGtK { a, .. }
        | Op::JmpNotGeK { a, .. }
        | Op::JmpNotEqK { a, .. }
        | Op::JmpNotNeK { a, .. } => r(&mut reads, &[a]),
        Op::SetUpval { b, .. } => r(&mut reads, &[b]),
        Op::SetCell { a, b } | Op::ArrayPush { a, b } | Op::InitField { a, b, .. } => r(&mut reads, &[a, b]),
        Op::SetField { a, c, .. } => r(&mut reads, &[a, c]),
        Op::JmpNotLt { a, b, .. }
        | Op::JmpNotLe { a, b, .. }
        | Op::JmpNotEq { a, b, .. }
        | Op::JmpNotNe { a, b, .. } => r(&mut reads, &[a, b]),
        Op::Closure { a, p } => {
            for u in proto.protos.get(p as usize).map(|c| &c.upvals[..]).unwrap_or(&[]) {
                if let UpvalDesc::Local(x) = u {
                    reads.insert(*x as usize);
                }
            }
            r(&mut kills, &[a]);
        }
        Op::Add { a, b, c }
        | Op::Sub { a, b, c }
        | Op::Mul { a, b, c }
        | Op::Div { a, b, c }
        | Op::Rem { a, b, c }
        | Op::BitAnd { a, b, c }
        | Op::BitOr { a, b, c }
        | Op::BitXor { a, b, c }
        | Op::Shl { a, b, c }
        | Op::Shr { a, b, c }
        | Op::Eq { a, b, c }
        | Op::Ne { a, b, c }
        | Op::Lt { a, b, c }
        | Op::Le { a, b, c }
        | Op::GetIndex { a, b, c } => {
            r(&mut reads, &[b, c]);
            r(&mut kills, &[a]);
        }
        Op::SetIndex { a, b, c } => r(&mut reads, &[a, b, c]),
        Op::Jmp { .. } | Op::Loop { .. } | Op::ReturnNil => {}
        Op::ForPrep { a, .. } | Op::ForStep { a, .. } | Op::ForInNext { a, .. } => reads.insert_range(a as usize, 2),
        Op::ForInPrep { a } => r(&mut reads, &[a]),
        // The callee's frame overwrites the registers above `a`; only the
        // result in `a` is certain to be written.
        Op::Call { a, n } => {
            reads.insert_range(a as usize, n as usize + 1);
            r(&mut kills, &[a]);
        }
        Op::CallMethod { a, n, .. } => {
            reads.insert_range(a as usize, n as usize + 2);
            r(&mut kills, &[a]);
        }
        Op::Concat { a, b, n } => {
            reads.insert_range(b as usize, n as usize);
            r(&mut kills, &[a]);
        }
    }
    (reads, kills)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::compiler::{compile, CompileEnv};
    use crate::frontend::parse_program;
    use crate::runtime::Heap;

    /// Top-level function `name` of program `src`, and its liveness.
    fn live(src: &str, name: &str) -> (std::rc::Rc<Proto>, Liveness) {
        let program = parse_program(src).expect("parses");
        let chunk =
            compile(&program, src, "test.vela", &mut CompileEnv::new(), &mut Heap::new(1 << 20)).expect("compiles");
        let (_, p) = chunk.functions.into_iter().find(|(_, p)| p.name == name).expect("the function");
        let l = Liveness::of(&p);
        (p, l)
    }

    #[test]
    fn a_temporary_is_dead_before_it_is_written_and_after_its_last_read() {
        let (p, l) = live("fn f(n) {\n let s = 0\n for i in 0..n {\n let t = i * 2\n s += t\n }\n return s\n}", "f");
        let header = p.code.iter().position(|op| matches!(op, Op::Loop { .. })).expect("a loop");
        // At the loop header: `n`'s range and `s` are live, `t` is not.
        let mul = p.code.iter().position(|op| matches!(op, Op::Mul { .. } | Op::MulK { .. })).expect("i * 2");
        let t = match p.code[mul] {
            Op::Mul { a, .. } | Op::MulK { a, .. } => a as usize,
            _ => unreachable!(),
        };
        assert!(!l.is_live(header, t), "t is written before it is read in every iteration");
        assert!(l.is_live(mul + 1, t), "t is read by the addition after it");
        let ret = p.code.iter().position(|op| matches!(op, Op::Return { .. })).expect("return");
        let Op::Return { a: s } = p.code[ret] else { unreachable!() };
        assert!(l.is_live(header, s as usize), "s is carried around the loop and returned");
        assert!(!l.is_live(ret, t), "nothing reads t after the loop");
    }

    #[test]
    fn call_arguments_and_loop_state_are_live() {
        let (p, l) = live("fn g(x) { return x }\nfn f(n) {\n for i in 0..n {\n g(i)\n }\n}", "f");
        let call = p.code.iter().position(|op| matches!(op, Op::Call { .. })).expect("a call");
        let Op::Call { a, n } = p.code[call] else { unreachable!() };
        for r in a as usize..=(a + n) as usize {
            assert!(l.is_live(call, r), "register {r} of the call is read");
        }
        let step = p.code.iter().position(|op| matches!(op, Op::ForStep { .. })).expect("for step");
        let Op::ForStep { a, .. } = p.code[step] else { unreachable!() };
        assert!(l.is_live(call, a as usize) && l.is_live(call, a as usize + 1), "the range's counter and limit");
    }

    #[test]
    fn registers_a_closure_captures_are_live_until_it_is_made() {
        let (p, l) = live("fn f() {\n let x = 1\n let g = fn() { return x }\n return g\n}", "f");
        let clo = p.code.iter().position(|op| matches!(op, Op::Closure { .. })).expect("a closure");
        let Op::Closure { p: child, .. } = p.code[clo] else { unreachable!() };
        let captured: Vec<usize> = p.protos[child as usize]
            .upvals
            .iter()
            .filter_map(|u| if let UpvalDesc::Local(r) = u { Some(*r as usize) } else { None })
            .collect();
        assert!(!captured.is_empty(), "the closure captures x's cell");
        for r in captured {
            assert!(l.is_live(clo, r), "captured register {r} is read by the closure");
        }
    }
}
