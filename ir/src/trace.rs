//! A trace: the instruction list, its snapshots, and the builder API the
//! recorder and the passes use.

use rustc_hash::FxHashMap;

use crate::inst::{Inst, Opcode, Ref, SnapId};
use crate::snapshot::Snapshot;
use crate::types::Type;

#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub insts: Vec<Inst>,
    pub snaps: Vec<Snapshot>,
    /// The slot state when the recorded iteration is back at the loop header
    /// (the recorder's last snapshot); loop peeling reads it.
    pub tail: Option<SnapId>,
    /// Interned constants, so each constant is defined once.
    consts: FxHashMap<(Opcode, Type, i64), Ref>,
}

impl Trace {
    pub fn new() -> Trace {
        Trace::default()
    }

    pub fn len(&self) -> usize {
        self.insts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }

    pub fn inst(&self, r: Ref) -> &Inst {
        &self.insts[r.index()]
    }

    pub fn inst_mut(&mut self, r: Ref) -> &mut Inst {
        &mut self.insts[r.index()]
    }

    pub fn ty(&self, r: Ref) -> Type {
        self.insts[r.index()].ty
    }

    /// Appends an instruction and returns its value.
    pub fn push(&mut self, inst: Inst) -> Ref {
        let r = Ref(self.insts.len() as u32);
        self.insts.push(inst);
        r
    }

    pub fn emit(&mut self, op: Opcode, ty: Type, a: Ref, b: Ref) -> Ref {
        let mut i = Inst::new(op, ty);
        i.a = a;
        i.b = b;
        self.push(i)
    }

    /// A guard exiting through `snap`.
    pub fn guard(&mut self, op: Opcode, ty: Type, a: Ref, b: Ref, snap: SnapId) -> Ref {
        let mut i = Inst::new(op, ty);
        i.a = a;
        i.b = b;
        i.snap = snap;
        self.push(i)
    }

    fn constant(&mut self, op: Opcode, ty: Type, imm: i64) -> Ref {
        if let Some(&r) = self.consts.get(&(op, ty, imm)) {
            return r;
        }
        let mut i = Inst::new(op, ty);
        i.imm = imm;
        let r = self.push(i);
        self.consts.insert((op, ty, imm), r);
        r
    }

    pub fn kint(&mut self, v: i64) -> Ref {
        self.constant(Opcode::KInt, Type::Int, v)
    }
    pub fn kfloat(&mut self, v: f64) -> Ref {
        self.constant(Opcode::KFloat, Type::Float, v.to_bits() as i64)
    }
    pub fn kbool(&mut self, v: bool) -> Ref {
        self.constant(Opcode::KBool, Type::Bool, v as i64)
    }
    pub fn knil(&mut self) -> Ref {
        self.constant(Opcode::KNil, Type::Nil, 0)
    }
    pub fn kptr(&mut self, ty: Type, addr: u64) -> Ref {
        self.constant(Opcode::KPtr, ty, addr as i64)
    }

    pub fn add_snapshot(&mut self, snap: Snapshot) -> SnapId {
        self.snaps.push(snap);
        SnapId(self.snaps.len() as u32 - 1)
    }

    /// The position of the `Loop` marker, if the trace has one.
    pub fn loop_start(&self) -> Option<Ref> {
        self.insts.iter().position(|i| i.op == Opcode::Loop).map(|p| Ref(p as u32))
    }

    /// Forgets the constant table (after a pass renumbered instructions).
    pub fn rebuild_const_table(&mut self) {
        self.consts.clear();
        for (i, inst) in self.insts.iter().enumerate() {
            if inst.op.is_const() {
                self.consts.entry((inst.op, inst.ty, inst.imm)).or_insert(Ref(i as u32));
            }
        }
    }
}
