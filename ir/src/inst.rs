//! Instructions: small `Copy` records in a linear SSA trace, named by `Ref`.

use std::fmt;

use crate::types::Type;

/// An SSA value: the index of the instruction that defines it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref(pub u32);

impl Ref {
    /// "No operand".
    pub const NONE: Ref = Ref(u32::MAX);

    pub fn index(self) -> usize {
        self.0 as usize
    }
    pub fn is_none(self) -> bool {
        self == Ref::NONE
    }
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            write!(f, "_")
        } else {
            write!(f, "%{}", self.0)
        }
    }
}

/// Names a snapshot of the trace (`Trace::snaps`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct SnapId(pub u32);

impl SnapId {
    pub const NONE: SnapId = SnapId(u32::MAX);
}

/// What an instruction does. Operands are `a`, `b`, `c` (`Ref`s) and `imm`;
/// the comment after each says which it uses. "guard" means the instruction
/// has a snapshot (`Inst::snap`) and leaves the trace through it when its
/// check fails.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opcode {
    // Constants (no operands; the value is in `imm`).
    /// `imm` as i64.
    KInt,
    /// `imm` holds the f64 bits.
    KFloat,
    /// `imm` is 0 or 1.
    KBool,
    KNil,
    /// A heap pointer constant (`imm` is the address); `ty` names its kind.
    KPtr,

    /// Reads stack slot `imm` (relative to the trace's base frame). With a
    /// concrete `ty` it is a guard that the slot holds that kind, and yields
    /// the unboxed payload; with `Type::Value` it yields the boxed value.
    SLoad,
    /// Guard that boxed `a` has kind `ty`; yields the unboxed payload.
    Unbox,
    /// Boxes `a` (of a concrete type) into a `Value`.
    Box,

    // Int arithmetic. `..Ov` are guards: they exit on signed overflow.
    AddOv,
    SubOv,
    MulOv,
    /// `a / b` truncating; the recorder guards `b != 0` and no overflow first.
    Div,
    /// `a % b`; guarded like `Div`.
    Rem,
    /// Wrapping add (for values proved not to overflow).
    Add,
    Sub,
    BAnd,
    BOr,
    BXor,
    /// `a << b`, `b` in 0..=63 (guarded by the recorder).
    Shl,
    /// Arithmetic `a >> b`.
    Shr,
    BNot,

    // Float arithmetic.
    FAdd,
    FSub,
    FMul,
    FDiv,
    FRem,
    FNeg,
    /// Int `a` to Float.
    IToF,
    /// Float math intrinsics of `a` (and `b` for `FPow`).
    FSqrt,
    FSin,
    FCos,
    FFloor,
    FCeil,
    FAbs,
    FPow,

    // Comparisons, yielding Bool.
    ILt,
    ILe,
    IEq,
    INe,
    /// Int `a < b` compared as unsigned: for a non-negative `b`, whether
    /// `0 <= a < b` (one bounds check instead of two).
    ULt,
    FLt,
    FLe,
    FEq,
    FNe,
    /// Identity of two pointers, or equality of two Bools or two Natives.
    PEq,
    PNe,

    /// Guard: exit unless Bool `a` is true.
    GuardTrue,
    /// Guard: exit unless Bool `a` is false.
    GuardFalse,

    // Heap access (pointers are already type-guarded).
    /// Length of Array `a` (Int).
    ALen,
    /// `akind a`: array `a`'s element kind (the runtime's `ElemKind` number).
    AKind,
    /// Element `b` of Array `a`; bounds and the array's kind are guarded
    /// before. The type says how the element is stored: `val` in an `Any`
    /// array, `int`/`flt`/`bool` unboxed in an array of that kind.
    ALoad,
    /// Element `b` of Array `a` = `c`, stored as `c`'s type says (as `ALoad`).
    AStore,
    /// Guard that Struct `a` is an instance of struct definition `imm`.
    GuardDef,
    /// Field number `imm` of Struct `a`: boxed (`val`), or, for a field
    /// every instance holds a Float in (the trace depends on that staying
    /// so), the Float itself (`flt`), read without testing the tag.
    FLoad,
    /// Field number `imm` of Struct `a` = `c`: boxed (`val`), or a `flt`
    /// written without its tag into such a field of a constructed instance.
    FStore,
    /// The value in Cell `a` (boxed).
    CLoad,
    /// Cell `a` = boxed `c`.
    CStore,
    /// Upvalue cell number `imm` of closure `a` (a Cell pointer).
    Upval,
    /// Global number `imm` (boxed Value), read from the globals array whose
    /// address is the `KPtr` `a` (the array never moves while traces exist).
    GLoad,
    /// Global number `imm` of the globals array `a` = boxed `c`. The VM
    /// treats a global some trace stores to as volatile: no trace bakes its
    /// value in, so the store needs no invalidation.
    GStore,

    /// A native call of a function-entry trace (a recursive call): the
    /// callee's frame starts at slot `imm` (its arguments and nil-initialised
    /// registers are the entries of the snapshot at or above `imm`; the
    /// callee closure is in slot `imm - 1`). Yields the boxed value the
    /// callee returned into slot `imm - 1`. A guard: it exits through its
    /// snapshot, which resumes at the call instruction, when there is no
    /// room for another native frame; when the callee leaves for the
    /// interpreter instead of returning, this frame is materialised from the
    /// same snapshot as "returning from that call" (see the `vela` crate's
    /// `jit::deopt`). Never merged or moved; clobbers all heap memory and
    /// the stack from slot `imm - 1` up.
    TCall,
    /// A native call of another function's entry trace, otherwise as
    /// `TCall`: the body entered is the address in the word at `a` (a
    /// `kptr`: the callee function's entry cell, which the VM keeps at its
    /// entry trace's body, or 0 when it has none). With 0 there it exits
    /// through its snapshot, as when there is no room, and the interpreter
    /// makes the call.
    TCallAt,
    /// Returns boxed `a` from the trace's root frame: writes it to slot -1
    /// (the callee slot, where a return value goes) and leaves with the
    /// "returned" code. Only instructions that define nothing may follow.
    Ret,

    // Strings (immutable: these read memory no trace writes).
    /// Byte length of String `a` (Int).
    SLen,
    /// Byte `b` of String `a` (Int); bounds are guarded before.
    SByte,

    // Runtime helpers (`crate::helper`): `imm` names the helper, `a`/`b`/`c`
    // are its arguments in order. Every call counts as a store to all heap
    // memory (never removed, merged or reordered).
    /// Calls a helper that cannot fail.
    Call,
    /// Guard: calls a helper that can fail, and exits when it reports
    /// failure (having done nothing).
    CallG,
    /// An argument list link: the arguments of `a` (a `val`, or another
    /// `carg`) followed by `val` `b`. Used only as a helper's `Args`.
    CArg,

    /// Start of the loop body: everything before runs once per entry.
    Loop,
    /// Loop-carried value: `a` on entry to the loop, `b` from the previous
    /// iteration. Placed after the loop body; the back end makes it a phi at
    /// the loop header.
    Phi,
    /// Removed by a pass; ignored by every consumer.
    Nop,
}

impl Opcode {
    pub fn is_const(self) -> bool {
        matches!(self, Opcode::KInt | Opcode::KFloat | Opcode::KBool | Opcode::KNil | Opcode::KPtr)
    }

    /// Whether the instruction may leave the trace (needs a snapshot).
    pub fn is_guard(self, ty: Type) -> bool {
        match self {
            Opcode::SLoad => ty != Type::Value,
            Opcode::Unbox
            | Opcode::AddOv
            | Opcode::SubOv
            | Opcode::MulOv
            | Opcode::GuardTrue
            | Opcode::GuardFalse
            | Opcode::GuardDef
            | Opcode::TCall
            | Opcode::TCallAt
            | Opcode::CallG => true,
            _ => false,
        }
    }

    /// Whether the instruction writes memory (never removed, never reordered).
    pub fn is_store(self) -> bool {
        matches!(
            self,
            Opcode::AStore
                | Opcode::FStore
                | Opcode::CStore
                | Opcode::GStore
                | Opcode::Call
                | Opcode::CallG
                | Opcode::TCall
                | Opcode::TCallAt
                | Opcode::Ret
        )
    }

    /// A call (of a runtime helper, or natively of an entry trace) or a
    /// return: a barrier no load is reused across and no instruction is
    /// merged with, and after which object fields are read again.
    pub fn is_call(self) -> bool {
        matches!(self, Opcode::Call | Opcode::CallG | Opcode::TCall | Opcode::TCallAt | Opcode::Ret)
    }

    /// A native call of an entry trace (`TCall`, `TCallAt`).
    pub fn is_native_call(self) -> bool {
        matches!(self, Opcode::TCall | Opcode::TCallAt)
    }

    /// Whether the instruction calls a runtime helper (`imm` names it).
    pub fn is_helper_call(self) -> bool {
        matches!(self, Opcode::Call | Opcode::CallG)
    }

    /// Whether the instruction reads mutable memory (its result depends on
    /// stores before it).
    pub fn is_load(self) -> bool {
        matches!(
            self,
            Opcode::SLoad
                | Opcode::ALoad
                | Opcode::FLoad
                | Opcode::CLoad
                | Opcode::ALen
                | Opcode::AKind
                | Opcode::GLoad
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Opcode::KInt => "kint",
            Opcode::KFloat => "kflt",
            Opcode::KBool => "kbool",
            Opcode::KNil => "knil",
            Opcode::KPtr => "kptr",
            Opcode::SLoad => "sload",
            Opcode::Unbox => "unbox",
            Opcode::Box => "box",
            Opcode::AddOv => "addov",
            Opcode::SubOv => "subov",
            Opcode::MulOv => "mulov",
            Opcode::Div => "div",
            Opcode::Rem => "rem",
            Opcode::Add => "add",
            Opcode::Sub => "sub",
            Opcode::BAnd => "band",
            Opcode::BOr => "bor",
            Opcode::BXor => "bxor",
            Opcode::Shl => "shl",
            Opcode::Shr => "shr",
            Opcode::BNot => "bnot",
            Opcode::FAdd => "fadd",
            Opcode::FSub => "fsub",
            Opcode::FMul => "fmul",
            Opcode::FDiv => "fdiv",
            Opcode::FRem => "frem",
            Opcode::FNeg => "fneg",
            Opcode::IToF => "itof",
            Opcode::FSqrt => "fsqrt",
            Opcode::FSin => "fsin",
            Opcode::FCos => "fcos",
            Opcode::FFloor => "ffloor",
            Opcode::FCeil => "fceil",
            Opcode::FAbs => "fabs",
            Opcode::FPow => "fpow",
            Opcode::ILt => "ilt",
            Opcode::ILe => "ile",
            Opcode::IEq => "ieq",
            Opcode::INe => "ine",
            Opcode::ULt => "ult",
            Opcode::FLt => "flt",
            Opcode::FLe => "fle",
            Opcode::FEq => "feq",
            Opcode::FNe => "fne",
            Opcode::PEq => "peq",
            Opcode::PNe => "pne",
            Opcode::GuardTrue => "gtrue",
            Opcode::GuardFalse => "gfalse",
            Opcode::ALen => "alen",
            Opcode::AKind => "akind",
            Opcode::ALoad => "aload",
            Opcode::AStore => "astore",
            Opcode::GuardDef => "gdef",
            Opcode::FLoad => "fload",
            Opcode::FStore => "fstore",
            Opcode::CLoad => "cload",
            Opcode::CStore => "cstore",
            Opcode::Upval => "upval",
            Opcode::GLoad => "gload",
            Opcode::GStore => "gstore",
            Opcode::TCall => "tcall",
            Opcode::TCallAt => "tcallat",
            Opcode::Ret => "ret",
            Opcode::SLen => "slen",
            Opcode::SByte => "sbyte",
            Opcode::Call => "call",
            Opcode::CallG => "callg",
            Opcode::CArg => "carg",
            Opcode::Loop => "loop",
            Opcode::Phi => "phi",
            Opcode::Nop => "nop",
        }
    }
}

/// One instruction. 24 bytes, `Copy`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inst {
    pub op: Opcode,
    pub ty: Type,
    pub a: Ref,
    pub b: Ref,
    pub c: Ref,
    pub imm: i64,
    /// The snapshot a guard exits through (`SnapId::NONE` otherwise).
    pub snap: SnapId,
}

impl Inst {
    pub fn new(op: Opcode, ty: Type) -> Inst {
        Inst { op, ty, a: Ref::NONE, b: Ref::NONE, c: Ref::NONE, imm: 0, snap: SnapId::NONE }
    }

    /// The `Ref` operands in use.
    pub fn operands(&self) -> impl Iterator<Item = Ref> {
        [self.a, self.b, self.c].into_iter().filter(|r| !r.is_none())
    }

    pub fn operands_mut(&mut self) -> impl Iterator<Item = &mut Ref> {
        [&mut self.a, &mut self.b, &mut self.c].into_iter().filter(|r| !r.is_none())
    }

    pub fn float(&self) -> f64 {
        f64::from_bits(self.imm as u64)
    }

    /// The helper a `call`/`callg` names (None for other instructions or a
    /// bad number).
    pub fn helper(&self) -> Option<crate::helper::Helper> {
        if self.op.is_helper_call() {
            crate::helper::Helper::from_imm(self.imm)
        } else {
            None
        }
    }
}
