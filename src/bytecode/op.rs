//! The register instruction set. Every instruction is an 8-byte `Copy` value;
//! operands name frame slots (`Reg`), constants, globals or jump offsets.
//! Jump offsets are relative to the instruction after the jump.

/// A frame slot: register `r` is `stack[base + r]`.
pub type Reg = u8;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Move {
        a: Reg,
        b: Reg,
    },
    LoadNil {
        a: Reg,
    },
    LoadBool {
        a: Reg,
        v: bool,
    },
    LoadInt {
        a: Reg,
        v: i32,
    },
    LoadK {
        a: Reg,
        k: u16,
    },

    GetGlobal {
        a: Reg,
        g: u16,
    },
    SetGlobal {
        a: Reg,
        g: u16,
    },

    /// R[a] = a new cell holding R[b].
    NewCell {
        a: Reg,
        b: Reg,
    },
    /// R[a] = cell R[b]'s value.
    GetCell {
        a: Reg,
        b: Reg,
    },
    /// cell R[a]'s value = R[b].
    SetCell {
        a: Reg,
        b: Reg,
    },
    GetUpval {
        a: Reg,
        u: u8,
    },
    SetUpval {
        u: u8,
        b: Reg,
    },
    /// R[a] = a closure of child prototype `p`, capturing per its upvalue list.
    Closure {
        a: Reg,
        p: u16,
    },

    Add {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Sub {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Mul {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Div {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Rem {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    /// R[a] = R[b] + v (Int or Float R[b]); `x - 1` is AddInt with v = -1.
    AddInt {
        a: Reg,
        b: Reg,
        v: i16,
    },
    /// R[a] = R[b] op K[k], for a numeric constant operand.
    AddK {
        a: Reg,
        b: Reg,
        k: u16,
    },
    SubK {
        a: Reg,
        b: Reg,
        k: u16,
    },
    MulK {
        a: Reg,
        b: Reg,
        k: u16,
    },
    DivK {
        a: Reg,
        b: Reg,
        k: u16,
    },
    RemK {
        a: Reg,
        b: Reg,
        k: u16,
    },
    BitAnd {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    BitOr {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    BitXor {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Shl {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Shr {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Neg {
        a: Reg,
        b: Reg,
    },
    Not {
        a: Reg,
        b: Reg,
    },
    BitNot {
        a: Reg,
        b: Reg,
    },
    Eq {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Ne {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Lt {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    Le {
        a: Reg,
        b: Reg,
        c: Reg,
    },

    Jmp {
        off: i32,
    },
    JmpIf {
        a: Reg,
        off: i32,
    },
    JmpIfNot {
        a: Reg,
        off: i32,
    },
    /// Jump unless R[a] < R[b] (fused compare and branch).
    JmpNotLt {
        a: Reg,
        b: Reg,
        off: i32,
    },
    JmpNotLe {
        a: Reg,
        b: Reg,
        off: i32,
    },
    JmpNotEq {
        a: Reg,
        b: Reg,
        off: i32,
    },
    JmpNotNe {
        a: Reg,
        b: Reg,
        off: i32,
    },
    /// Jump unless R[a] < K[k]; likewise for the other comparisons with a constant.
    JmpNotLtK {
        a: Reg,
        k: u16,
        off: i32,
    },
    JmpNotLeK {
        a: Reg,
        k: u16,
        off: i32,
    },
    JmpNotGtK {
        a: Reg,
        k: u16,
        off: i32,
    },
    JmpNotGeK {
        a: Reg,
        k: u16,
        off: i32,
    },
    JmpNotEqK {
        a: Reg,
        k: u16,
        off: i32,
    },
    JmpNotNeK {
        a: Reg,
        k: u16,
        off: i32,
    },

    /// Loop header: every back-edge lands here. `id` numbers the loops of a
    /// prototype (profiling counters, trace anchors).
    Loop {
        id: u16,
    },
    /// R[a] = start, R[a+1] = limit (Ints, else error); jumps past the loop
    /// when empty, else sets the loop variable R[a+2] = R[a].
    ForPrep {
        a: Reg,
        incl: bool,
        off: i32,
    },
    /// R[a] += 1 and R[a+2] = R[a], jumping back to the loop header, while
    /// within the limit.
    ForStep {
        a: Reg,
        incl: bool,
        off: i32,
    },
    /// R[a] = iterable (Array or Map, else error), R[a+1] = 0.
    ForInPrep {
        a: Reg,
    },
    /// R[b] = next element (Array) or key (Map) and advance; jumps when done.
    ForInNext {
        a: Reg,
        b: Reg,
        off: i32,
    },

    /// R[a] = R[a](R[a+1], ..., R[a+n]).
    Call {
        a: Reg,
        n: u8,
    },
    /// R[a] = R[a+1].name(R[a+2], ..., R[a+1+n]).
    CallMethod {
        a: Reg,
        n: u8,
        name: u16,
    },
    /// R[a] = the function `name` of struct `def` (`Point.origin`).
    GetStructFn {
        a: Reg,
        def: u16,
        name: u16,
    },
    Return {
        a: Reg,
    },
    ReturnNil,

    NewArray {
        a: Reg,
        cap: u16,
    },
    /// Append R[b] to the Array in R[a] (array literals).
    ArrayPush {
        a: Reg,
        b: Reg,
    },
    NewMap {
        a: Reg,
    },
    /// R[a] = a new instance of struct `def`, all fields nil.
    NewStruct {
        a: Reg,
        def: u16,
    },
    /// Field `idx` of the instance in R[a] = R[b] (struct literals; index known).
    InitField {
        a: Reg,
        idx: u8,
        b: Reg,
    },
    GetIndex {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    /// R[a][R[b]] = R[c].
    SetIndex {
        a: Reg,
        b: Reg,
        c: Reg,
    },
    GetField {
        a: Reg,
        b: Reg,
        name: u16,
    },
    /// R[a].name = R[c].
    SetField {
        a: Reg,
        name: u16,
        c: Reg,
    },

    /// R[a] = str(R[b]) ++ ... ++ str(R[b+n-1]).
    Concat {
        a: Reg,
        b: Reg,
        n: u8,
    },
    /// R[a] = R[b] formatted as a Float with `prec` decimals.
    FmtPrec {
        a: Reg,
        b: Reg,
        // The lexer allows up to 1000 decimals, more than a u8 holds.
        prec: u16,
    },
}

const _: () = assert!(std::mem::size_of::<Op>() == 8);

impl Op {
    /// The relative offset of a jump, branch or loop-control instruction.
    pub fn jump_offset(&self) -> Option<i32> {
        match *self {
            Op::Jmp { off }
            | Op::JmpIf { off, .. }
            | Op::JmpIfNot { off, .. }
            | Op::JmpNotLt { off, .. }
            | Op::JmpNotLe { off, .. }
            | Op::JmpNotEq { off, .. }
            | Op::JmpNotNe { off, .. }
            | Op::JmpNotLtK { off, .. }
            | Op::JmpNotLeK { off, .. }
            | Op::JmpNotGtK { off, .. }
            | Op::JmpNotGeK { off, .. }
            | Op::JmpNotEqK { off, .. }
            | Op::JmpNotNeK { off, .. }
            | Op::ForPrep { off, .. }
            | Op::ForStep { off, .. }
            | Op::ForInNext { off, .. } => Some(off),
            _ => None,
        }
    }

    /// Where the instruction at `pc` jumps to, if it can jump.
    pub fn jump_target(&self, pc: usize) -> Option<usize> {
        self.jump_offset().map(|off| (pc as i64 + 1 + off as i64) as usize)
    }
}
