//! The pre-decoded program: registers are indices into a per-thread file of `u64` slots,
//! symbols are resolved to offsets, labels to instruction indices.

/// A PTX data type as it appears in an instruction's suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `.b8` .. `.b64`, `.u8` .. `.u64`, `.s8` .. `.s64`: (bits, signed).
    Int(u32, bool),
    /// `.f16`.
    F16,
    /// `.bf16`.
    Bf16,
    /// `.f32`.
    F32,
    /// `.f64`.
    F64,
    /// `.pred`.
    Pred,
}

impl Ty {
    /// Parses a type suffix (without the dot).
    pub fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "b8" | "u8" => Ty::Int(8, false),
            "b16" | "u16" => Ty::Int(16, false),
            "b32" | "u32" => Ty::Int(32, false),
            "b64" | "u64" => Ty::Int(64, false),
            "s8" => Ty::Int(8, true),
            "s16" => Ty::Int(16, true),
            "s32" => Ty::Int(32, true),
            "s64" => Ty::Int(64, true),
            "f16" => Ty::F16,
            "bf16" => Ty::Bf16,
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            "pred" => Ty::Pred,
            _ => return None,
        })
    }
    /// Width in bits (`.pred` counts as 1).
    pub fn bits(self) -> u32 {
        match self {
            Ty::Int(b, _) => b,
            Ty::F16 | Ty::Bf16 => 16,
            Ty::F32 => 32,
            Ty::F64 => 64,
            Ty::Pred => 1,
        }
    }
    /// Size in bytes in memory.
    pub fn bytes(self) -> u32 {
        self.bits().div_ceil(8)
    }
    /// Whether the type is a signed integer.
    pub fn signed(self) -> bool {
        matches!(self, Ty::Int(_, true))
    }
}

/// A source operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    /// A register slot.
    R(u32),
    /// An immediate, as raw bits (integers sign-extended to 64 bits).
    I(u64),
}

/// A special register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// `%tid.{x,y,z}`.
    Tid(u8),
    /// `%ntid.{x,y,z}`.
    Ntid(u8),
    /// `%ctaid.{x,y,z}`.
    Ctaid(u8),
    /// `%nctaid.{x,y,z}`.
    Nctaid(u8),
    /// `%laneid`.
    Laneid,
    /// `%warpid`.
    Warpid,
    /// `%nwarpid`.
    Nwarpid,
}

/// A memory state space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// `.global` (and generic addresses, which the simulator maps to global memory).
    Global,
    /// `ld.global.nc`: the non-coherent (read-only) path. Reading bytes that the same launch
    /// writes is undefined on hardware, so the simulator refuses it.
    GlobalNc,
    /// `.shared` (addresses are offsets into the block's shared window).
    Shared,
    /// `.param` (kernel parameters; offsets into the parameter buffer).
    Param,
}

/// `[base + off]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr {
    /// Register holding the base address, if any.
    pub base: Option<u32>,
    /// Constant byte offset (symbol offsets folded in).
    pub off: i64,
}

/// Integer binary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variants are the PTX modifiers of the same name
pub enum IntOp {
    Add,
    Sub,
    MulLo,
    MulHi,
    Div,
    Rem,
    And,
    Or,
    Xor,
    Min,
    Max,
    Shl,
    Shr,
}

/// Integer unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variants are the PTX modifiers of the same name
pub enum IntUn {
    Not,
    Neg,
    Abs,
    Popc,
    Clz,
    Brev,
    Cnot,
}

/// Float binary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variants are the PTX modifiers of the same name
pub enum FOp {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
}

/// Float unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variants are the PTX modifiers of the same name
pub enum FUn {
    Sqrt,
    Rcp,
    Abs,
    Neg,
}

/// Comparison operators of `setp` (integer and float).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variants are the PTX modifiers of the same name
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Equ,
    Neu,
    Ltu,
    Leu,
    Gtu,
    Geu,
    Num,
    Nan,
}

/// Rounding modifier of `cvt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rnd {
    /// No modifier (exact conversions).
    None,
    /// `.rn`
    Rn,
    /// `.rz`
    Rz,
    /// `.rni`
    Rni,
    /// `.rzi`
    Rzi,
    /// `.rmi`
    Rmi,
    /// `.rpi`
    Rpi,
}

/// `shfl.sync` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variants are the PTX modifiers of the same name
pub enum ShflMode {
    Up,
    Down,
    Bfly,
    Idx,
}

/// `vote.sync` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // variants are the PTX modifiers of the same name
pub enum VoteMode {
    Ballot,
    All,
    Any,
    Uni,
}

/// One decoded instruction. Field names follow the PTX operand order: `d` destination,
/// `a b c` sources, `p` predicate.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// f32 binary op (`ftz` only in permissive mode).
    F32Bin {
        op: FOp,
        ftz: bool,
        d: u32,
        a: Src,
        b: Src,
    },
    /// f32 unary op.
    F32Un { op: FUn, ftz: bool, d: u32, a: Src },
    /// `fma.rn.f32`.
    F32Fma {
        ftz: bool,
        d: u32,
        a: Src,
        b: Src,
        c: Src,
    },
    /// f64 binary op.
    F64Bin { op: FOp, d: u32, a: Src, b: Src },
    /// f64 unary op.
    F64Un { op: FUn, d: u32, a: Src },
    /// `fma.rn.f64`.
    F64Fma { d: u32, a: Src, b: Src, c: Src },
    /// Integer binary op of width `w` bits.
    Int {
        op: IntOp,
        w: u32,
        signed: bool,
        d: u32,
        a: Src,
        b: Src,
    },
    /// Integer unary op.
    IntUn {
        op: IntUn,
        w: u32,
        signed: bool,
        d: u32,
        a: Src,
    },
    /// `mul.wide` / `mad.wide` (c = None for mul): 2w-bit product of w-bit operands.
    MulWide {
        w: u32,
        signed: bool,
        d: u32,
        a: Src,
        b: Src,
        c: Option<Src>,
    },
    /// `mad.lo` / `mad.hi`.
    Mad {
        hi: bool,
        w: u32,
        signed: bool,
        d: u32,
        a: Src,
        b: Src,
        c: Src,
    },
    /// `bfe`.
    Bfe {
        w: u32,
        signed: bool,
        d: u32,
        a: Src,
        b: Src,
        c: Src,
    },
    /// `bfi`.
    Bfi {
        w: u32,
        d: u32,
        f: Src,
        b: Src,
        c: Src,
        l: Src,
    },
    /// `prmt.b32` default mode.
    Prmt { d: u32, a: Src, b: Src, c: Src },
    /// Predicate logic: `and/or/xor.pred` (`not.pred` is IntUn Cnot-like via Not on w=1).
    PredBin { op: IntOp, d: u32, a: Src, b: Src },
    /// `not.pred`.
    PredNot { d: u32, a: Src },
    /// `setp.cmp.ty`.
    Setp {
        cmp: Cmp,
        ty: Ty,
        d: u32,
        a: Src,
        b: Src,
    },
    /// `selp.ty d, a, b, p`.
    Selp {
        w: u32,
        d: u32,
        a: Src,
        b: Src,
        p: Src,
    },
    /// `mov` (w-bit).
    Mov { w: u32, d: u32, a: Src },
    /// `mov d, %special`.
    MovSpecial { d: u32, sr: Special },
    /// `mov.bN d, {a, b, ...}`: parts little-endian, `part_bits` each.
    Pack {
        part_bits: u32,
        d: u32,
        parts: Vec<Src>,
    },
    /// `mov.bN {d0, d1, ...}, a`.
    Unpack {
        part_bits: u32,
        ds: Vec<Option<u32>>,
        a: Src,
    },
    /// `cvt`.
    Cvt {
        dt: Ty,
        st: Ty,
        rnd: Rnd,
        sat: bool,
        ftz: bool,
        d: u32,
        a: Src,
    },
    /// `cvta.to.global` (identity in the simulator).
    Cvta { d: u32, a: Src },
    /// `ld` (up to 4 destinations; `None` = sink `_`).
    Ld {
        space: Space,
        ty: Ty,
        n: u8,
        ds: [Option<u32>; 4],
        addr: Addr,
    },
    /// `st`.
    St {
        space: Space,
        ty: Ty,
        n: u8,
        vals: [Src; 4],
        addr: Addr,
    },
    /// `bra target`.
    Bra { target: u32 },
    /// `ret` / `exit`.
    Exit,
    /// `bar.sync 0` / `barrier.sync 0`.
    Bar,
    /// `shfl.sync.mode.b32 d[|p], a, b, c, mask`.
    Shfl {
        mode: ShflMode,
        d: u32,
        p: Option<u32>,
        a: Src,
        b: Src,
        c: Src,
        mask: Src,
    },
    /// `vote.sync.mode d, p, mask`.
    Vote {
        mode: VoteMode,
        d: u32,
        negate: bool,
        p: Src,
        mask: Src,
    },
}

/// An instruction with its guard and source line.
#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    /// The operation.
    pub op: Op,
    /// Guard predicate slot and whether it is negated (`@!p`).
    pub guard: Option<(u32, bool)>,
    /// 1-based line in the PTX text.
    pub line: u32,
}

/// A kernel parameter's place in the `.param` buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Parameter name.
    pub name: String,
    /// Declared scalar type, or `None` for a `.b8` array.
    pub ty: Option<Ty>,
    /// Byte offset in the parameter buffer.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// Alignment in bytes.
    pub align: u32,
}

/// A decoded `.entry`.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// Entry name.
    pub name: String,
    /// Parameters in order.
    pub params: Vec<Param>,
    /// Bytes of the parameter buffer.
    pub param_bytes: u32,
    /// Static shared bytes (dynamic shared starts at the next 16-byte boundary).
    pub shared_bytes: u32,
    /// Register slots per thread.
    pub nregs: u32,
    /// `.maxntid x, y, z` (launches with more threads per block fail, as on hardware).
    pub maxntid: Option<(u32, u32, u32)>,
    /// `.reqntid x, y, z` (launches with another block shape fail, as on hardware).
    pub reqntid: Option<(u32, u32, u32)>,
    /// The program.
    pub insts: Vec<Inst>,
    /// Source text of each instruction (for error messages), parallel to `insts`.
    pub texts: Vec<String>,
}
