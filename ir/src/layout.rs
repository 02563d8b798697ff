//! Per-opcode operand layout: which of `a`/`b`/`c` an opcode reads and what its
//! `imm` means. Shared by the printer, the parser and the verifier so the three
//! agree on every opcode.

use crate::inst::{Inst, Opcode, Ref};

/// One of the three `Ref` operand fields of an `Inst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    A,
    B,
    C,
}

impl Field {
    pub const ALL: [Field; 3] = [Field::A, Field::B, Field::C];

    pub fn name(self) -> &'static str {
        match self {
            Field::A => "a",
            Field::B => "b",
            Field::C => "c",
        }
    }
}

/// What an opcode's `imm` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imm {
    /// Unused (must be 0).
    None,
    /// `KInt`: the value.
    Int,
    /// `KFloat`: the f64 bits.
    Float,
    /// `KBool`: 0 or 1.
    Bool,
    /// `KPtr`: the address.
    Ptr,
    /// `SLoad`: the stack slot.
    Slot,
    /// `FLoad`/`FStore`: the field number.
    Field,
    /// `GuardDef`: the struct definition.
    Def,
    /// `Upval`: the upvalue number.
    Upval,
    /// `GLoad`: the global number.
    Global,
    /// `Call`/`CallG`: the helper number (`crate::helper::Helper`), printed
    /// by name before the operands.
    Helper,
}

/// The operands an opcode uses, in the order they are printed.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub operands: &'static [Field],
    pub imm: Imm,
}

impl Opcode {
    /// Every opcode, in declaration order (`Opcode::ALL[op as usize] == op`).
    pub const ALL: &'static [Opcode] = &[
        Opcode::KInt,
        Opcode::KFloat,
        Opcode::KBool,
        Opcode::KNil,
        Opcode::KPtr,
        Opcode::SLoad,
        Opcode::Unbox,
        Opcode::Box,
        Opcode::AddOv,
        Opcode::SubOv,
        Opcode::MulOv,
        Opcode::Div,
        Opcode::Rem,
        Opcode::Add,
        Opcode::Sub,
        Opcode::BAnd,
        Opcode::BOr,
        Opcode::BXor,
        Opcode::Shl,
        Opcode::Shr,
        Opcode::BNot,
        Opcode::FAdd,
        Opcode::FSub,
        Opcode::FMul,
        Opcode::FDiv,
        Opcode::FRem,
        Opcode::FNeg,
        Opcode::IToF,
        Opcode::FSqrt,
        Opcode::FSin,
        Opcode::FCos,
        Opcode::FFloor,
        Opcode::FCeil,
        Opcode::FAbs,
        Opcode::FPow,
        Opcode::ILt,
        Opcode::ILe,
        Opcode::IEq,
        Opcode::INe,
        Opcode::ULt,
        Opcode::FLt,
        Opcode::FLe,
        Opcode::FEq,
        Opcode::FNe,
        Opcode::PEq,
        Opcode::PNe,
        Opcode::GuardTrue,
        Opcode::GuardFalse,
        Opcode::ALen,
        Opcode::AKind,
        Opcode::ALoad,
        Opcode::AStore,
        Opcode::GuardDef,
        Opcode::FLoad,
        Opcode::FStore,
        Opcode::CLoad,
        Opcode::CStore,
        Opcode::Upval,
        Opcode::GLoad,
        Opcode::GStore,
        Opcode::TCall,
        Opcode::TCallAt,
        Opcode::Ret,
        Opcode::SLen,
        Opcode::SByte,
        Opcode::Call,
        Opcode::CallG,
        Opcode::CArg,
        Opcode::Loop,
        Opcode::Phi,
        Opcode::Nop,
    ];

    /// The opcode printed as `name` (inverse of `Opcode::name`).
    pub fn from_name(name: &str) -> Option<Opcode> {
        Opcode::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// Which operand fields the opcode uses and what its `imm` means.
    pub fn layout(self) -> Layout {
        use Field::*;
        use Opcode::*;
        const NONE: &[Field] = &[];
        const UN: &[Field] = &[A];
        const BIN: &[Field] = &[A, B];
        let (operands, imm) = match self {
            KInt => (NONE, Imm::Int),
            KFloat => (NONE, Imm::Float),
            KBool => (NONE, Imm::Bool),
            KNil => (NONE, Imm::None),
            KPtr => (NONE, Imm::Ptr),
            SLoad => (NONE, Imm::Slot),
            Unbox | Box => (UN, Imm::None),
            AddOv | SubOv | MulOv | Div | Rem | Add | Sub | BAnd | BOr | BXor | Shl | Shr => (BIN, Imm::None),
            BNot => (UN, Imm::None),
            FAdd | FSub | FMul | FDiv | FRem | FPow => (BIN, Imm::None),
            FNeg | IToF | FSqrt | FSin | FCos | FFloor | FCeil | FAbs => (UN, Imm::None),
            ILt | ILe | IEq | INe | ULt | FLt | FLe | FEq | FNe | PEq | PNe => (BIN, Imm::None),
            GuardTrue | GuardFalse => (UN, Imm::None),
            ALen | AKind => (UN, Imm::None),
            ALoad => (BIN, Imm::None),
            AStore => (&[A, B, C] as &[Field], Imm::None),
            GuardDef => (UN, Imm::Def),
            FLoad => (UN, Imm::Field),
            FStore => (&[A, C] as &[Field], Imm::Field),
            CLoad => (UN, Imm::None),
            CStore => (&[A, C] as &[Field], Imm::None),
            Upval => (UN, Imm::Upval),
            GLoad => (UN, Imm::Global),
            GStore => (&[A, C] as &[Field], Imm::Global),
            TCall => (NONE, Imm::Slot),
            TCallAt => (UN, Imm::Slot),
            Ret => (UN, Imm::None),
            SLen => (UN, Imm::None),
            SByte => (BIN, Imm::None),
            // As many as the helper takes (`Inst::operand_fields`).
            Call | CallG => (&[A, B, C] as &[Field], Imm::Helper),
            CArg => (BIN, Imm::None),
            Loop => (NONE, Imm::None),
            Phi => (BIN, Imm::None),
            Nop => (NONE, Imm::None),
        };
        Layout { operands, imm }
    }

    /// Whether swapping `a` and `b` never changes the result (integer and
    /// pointer operations only: float operations are left alone so NaN
    /// payloads stay bit-exact).
    pub fn is_commutative(self) -> bool {
        matches!(
            self,
            Opcode::AddOv
                | Opcode::MulOv
                | Opcode::Add
                | Opcode::BAnd
                | Opcode::BOr
                | Opcode::BXor
                | Opcode::IEq
                | Opcode::INe
                | Opcode::PEq
                | Opcode::PNe
        )
    }
}

impl Inst {
    /// The operand fields this instruction uses: the layout's, except that a
    /// helper call uses as many as its helper takes (none for a bad helper).
    pub fn operand_fields(&self) -> &'static [Field] {
        if self.op.is_helper_call() {
            match self.helper().map_or(0, |h| h.params().len()) {
                0 => &[],
                1 => &[Field::A],
                2 => &[Field::A, Field::B],
                _ => &[Field::A, Field::B, Field::C],
            }
        } else {
            self.op.layout().operands
        }
    }

    pub fn field(&self, f: Field) -> Ref {
        match f {
            Field::A => self.a,
            Field::B => self.b,
            Field::C => self.c,
        }
    }

    pub fn field_mut(&mut self, f: Field) -> &mut Ref {
        match f {
            Field::A => &mut self.a,
            Field::B => &mut self.b,
            Field::C => &mut self.c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_opcode_once_in_order() {
        assert_eq!(Opcode::ALL.len(), Opcode::Nop as usize + 1);
        for (i, op) in Opcode::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?}");
            assert_eq!(Opcode::from_name(op.name()), Some(*op), "names must be unique: {op:?}");
        }
    }
}
