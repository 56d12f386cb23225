//! The executor: threads with register files, warps that execute `shfl.sync`/`vote.sync`
//! collectively, `bar.sync` across the block, per-block shared memory and a checked global arena.
//!
//! Scheduling: every thread of a block runs on its own until it reaches a collective
//! instruction (`bar.sync`, `shfl.sync`, `vote.sync`) or exits. Then each warp's waiting lanes
//! are grouped by instruction; a group executes its collective when its member mask names
//! exactly the lanes in the group (anything else is a divergent shuffle and an error). When no
//! warp can proceed and every live thread waits at `bar.sync`, all are released. This is exact
//! for race-free kernels whose collectives are convergent, which is all the simulator accepts.

use crate::ir::*;
use crate::num::*;
use crate::SimError;

/// The device memory arena: allocations at 256-byte aligned addresses above 4 GiB, separated
/// by unallocated gaps; every access is checked to lie inside one allocation.
#[derive(Clone, Debug)]
pub struct Global {
    base: u64,
    mem: Vec<u8>,
    /// (start, len), sorted by start.
    allocs: Vec<(u64, u64)>,
    last: usize,
    /// Per byte, during a launch: bit 0 = read through `ld.global.nc`, bit 1 = written.
    access: Vec<u8>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            base: 1 << 32,
            mem: Vec::new(),
            allocs: Vec::new(),
            last: 0,
            access: Vec::new(),
        }
    }
}

impl Global {
    /// Allocates `bytes` zeroed bytes, 256-byte aligned.
    pub fn alloc(&mut self, bytes: usize) -> u64 {
        // A 256-byte unallocated gap after every allocation, so an overrun by a few elements
        // faults instead of landing in the next buffer.
        let end = self.base + self.mem.len() as u64;
        let addr = if self.allocs.is_empty() {
            self.base
        } else {
            (end + 256).next_multiple_of(256)
        };
        let new_end = addr + (bytes as u64).max(1);
        self.mem.resize((new_end - self.base) as usize, 0);
        self.allocs.push((addr, bytes as u64));
        addr
    }

    /// Index into `mem` of `[addr, addr+size)` if it lies inside one allocation.
    #[inline]
    pub fn range(&mut self, addr: u64, size: u64) -> Option<usize> {
        let inside =
            |&(s, l): &(u64, u64)| addr >= s && addr.checked_add(size).is_some_and(|e| e <= s + l);
        if let Some(a) = self.allocs.get(self.last) {
            if inside(a) {
                return Some((addr - self.base) as usize);
            }
        }
        let k = self.allocs.partition_point(|&(s, _)| s <= addr);
        if k == 0 {
            return None;
        }
        if inside(&self.allocs[k - 1]) {
            self.last = k - 1;
            Some((addr - self.base) as usize)
        } else {
            None
        }
    }

    /// Copies host bytes in.
    pub fn write(&mut self, addr: u64, src: &[u8]) -> Option<()> {
        let i = self.range(addr, src.len() as u64)?;
        self.mem[i..i + src.len()].copy_from_slice(src);
        Some(())
    }

    /// Copies device bytes out.
    pub fn read(&mut self, addr: u64, dst: &mut [u8]) -> Option<()> {
        let i = self.range(addr, dst.len() as u64)?;
        dst.copy_from_slice(&self.mem[i..i + dst.len()]);
        Some(())
    }

    /// Snapshot of the memory bytes (to restore after a failed launch).
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        self.mem.clone()
    }

    pub(crate) fn restore(&mut self, m: Vec<u8>) {
        self.mem = m;
    }

    /// Clears the per-launch access record.
    pub(crate) fn begin_launch(&mut self) {
        self.access.clear();
        self.access.resize(self.mem.len(), 0);
    }

    /// Records an access of `len` bytes at index `i` (`bit` 1 = nc read, 2 = write); false if
    /// the same launch both writes and nc-reads one of the bytes.
    #[inline(always)]
    fn record(&mut self, i: usize, len: usize, bit: u8) -> bool {
        let mut seen = 0;
        for a in &mut self.access[i..i + len] {
            seen |= *a;
            *a |= bit;
        }
        seen & (3 ^ bit) == 0
    }
}

/// A launch's fixed inputs.
pub struct LaunchCtx<'a> {
    /// The kernel.
    pub k: &'a Kernel,
    /// Grid dims.
    pub grid: (u32, u32, u32),
    /// Block dims.
    pub block: (u32, u32, u32),
    /// Parameter buffer.
    pub params: &'a [u8],
    /// Total shared bytes per block (static + dynamic).
    pub shared_bytes: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Ready,
    Blocked,
    Done,
}

#[inline(always)]
fn rd(regs: &[u64], s: Src) -> u64 {
    match s {
        Src::R(i) => regs[i as usize],
        Src::I(v) => v,
    }
}

#[inline(always)]
fn mask(w: u32) -> u64 {
    if w >= 64 {
        u64::MAX
    } else {
        (1u64 << w) - 1
    }
}

#[inline(always)]
fn sext(v: u64, w: u32) -> i64 {
    if w >= 64 {
        v as i64
    } else {
        ((v << (64 - w)) as i64) >> (64 - w)
    }
}

#[inline(always)]
fn f32of(v: u64) -> f32 {
    f32::from_bits(v as u32)
}

#[inline(always)]
fn f64of(v: u64) -> f64 {
    f64::from_bits(v)
}

/// Reads a float of type `t` from register bits as f64 (exact), with a NaN flag kept by value.
fn float_in(v: u64, t: Ty) -> f64 {
    match t {
        Ty::F16 => half::f16::from_bits(v as u16).to_f64(),
        Ty::Bf16 => f32::from_bits((v as u32 & 0xFFFF) << 16) as f64,
        Ty::F32 => f32of(v) as f64,
        _ => f64of(v),
    }
}

struct Thread<'a> {
    tid: (u32, u32, u32),
    ctaid: (u32, u32, u32),
    lin: u32,
    ctx: &'a LaunchCtx<'a>,
}

fn fail(k: &Kernel, pc: usize, msg: impl Into<String>) -> SimError {
    SimError {
        line: k.insts[pc].line,
        text: k.texts[pc].clone(),
        msg: msg.into(),
    }
}

/// Runs one block. Returns the number of instructions executed.
pub fn run_block(
    ctx: &LaunchCtx<'_>,
    global: &mut Global,
    ctaid: (u32, u32, u32),
    regs: &mut Vec<u64>,
    shared: &mut Vec<u8>,
) -> Result<u64, SimError> {
    let k = ctx.k;
    let (bx, by, bz) = ctx.block;
    let n = (bx * by * bz) as usize;
    let nr = k.nregs as usize;
    regs.clear();
    regs.resize(n * nr, 0);
    shared.clear();
    shared.resize(ctx.shared_bytes as usize, 0);
    let mut pcs = vec![0usize; n];
    let mut st = vec![St::Ready; n];
    let mut count = 0u64;
    loop {
        for t in 0..n {
            if st[t] != St::Ready {
                continue;
            }
            let lin = t as u32;
            let th = Thread {
                tid: (lin % bx, (lin / bx) % by, lin / (bx * by)),
                ctaid,
                lin,
                ctx,
            };
            let r = &mut regs[t * nr..(t + 1) * nr];
            let done = run_thread(&th, r, &mut pcs[t], global, shared, &mut count)?;
            st[t] = if done { St::Done } else { St::Blocked };
        }
        // Warp collectives.
        let mut progressed = false;
        for w0 in (0..n).step_by(32) {
            let w1 = (w0 + 32).min(n);
            let mut handled = 0u32;
            for l in w0..w1 {
                let bit = 1u32 << (l - w0);
                if st[l] != St::Blocked
                    || handled & bit != 0
                    || matches!(k.insts[pcs[l]].op, Op::Bar)
                {
                    continue;
                }
                let pc = pcs[l];
                let mut group = 0u32;
                for m in w0..w1 {
                    if st[m] == St::Blocked && pcs[m] == pc {
                        group |= 1 << (m - w0);
                    }
                }
                handled |= group;
                collective(k, pc, w0, group, regs, nr)?;
                for m in w0..w1 {
                    if group & (1 << (m - w0)) != 0 {
                        pcs[m] += 1;
                        st[m] = St::Ready;
                    }
                }
                count += group.count_ones() as u64;
                progressed = true;
            }
        }
        if progressed {
            continue;
        }
        let mut live = 0;
        for t in 0..n {
            if st[t] == St::Blocked {
                live += 1;
                debug_assert!(matches!(k.insts[pcs[t]].op, Op::Bar));
            }
        }
        if live == 0 {
            return Ok(count);
        }
        for t in 0..n {
            if st[t] == St::Blocked {
                pcs[t] += 1;
                st[t] = St::Ready;
                count += 1;
            }
        }
    }
}

/// Executes a `shfl.sync` or `vote.sync` for the lanes in `group` (bits relative to `w0`).
fn collective(
    k: &Kernel,
    pc: usize,
    w0: usize,
    group: u32,
    regs: &mut [u64],
    nr: usize,
) -> Result<(), SimError> {
    let lanes = || (0..32usize).filter(move |l| group & (1 << l) != 0);
    let reg =
        |regs: &[u64], lane: usize, s: Src| rd(&regs[(w0 + lane) * nr..(w0 + lane + 1) * nr], s);
    let check_mask = |regs: &[u64], mask: Src| -> Result<(), SimError> {
        for l in lanes() {
            let m = reg(regs, l, mask) as u32;
            if m != group {
                return Err(fail(
                    k,
                    pc,
                    format!(
                        "divergent or partial warp collective: lane {l} names member mask {m:#010x}, \
                         but the lanes executing it are {group:#010x}"
                    ),
                ));
            }
        }
        Ok(())
    };
    match k.insts[pc].op {
        Op::Shfl {
            mode,
            d,
            p,
            a,
            b,
            c,
            mask,
        } => {
            check_mask(regs, mask)?;
            let mut out = [(0u32, false); 32];
            for l in lanes() {
                let bval = reg(regs, l, b) as u32;
                let cval = reg(regs, l, c) as u32;
                let segmask = (cval >> 8) & 0x1F;
                let lane = l as i64;
                let max_lane = ((l as u32 & segmask) | (cval & 0x1F & !segmask)) as i64;
                let min_lane = (l as u32 & segmask) as i64;
                let (j, valid) = match mode {
                    ShflMode::Up => {
                        let j = lane - bval as i64;
                        (j, j >= max_lane)
                    }
                    ShflMode::Down => {
                        let j = lane + bval as i64;
                        (j, j <= max_lane)
                    }
                    ShflMode::Bfly => {
                        let j = lane ^ bval as i64;
                        (j, j <= max_lane)
                    }
                    ShflMode::Idx => {
                        let j = min_lane | (bval & 0x1F & !segmask) as i64;
                        (j, j <= max_lane)
                    }
                };
                let src = if valid { j as usize } else { l };
                if group & (1 << src) == 0 {
                    return Err(fail(
                        k,
                        pc,
                        format!(
                            "lane {l} reads lane {src}, which does not take part in the shuffle"
                        ),
                    ));
                }
                out[l] = (reg(regs, src, a) as u32, valid);
            }
            for l in lanes() {
                let r = &mut regs[(w0 + l) * nr..(w0 + l + 1) * nr];
                r[d as usize] = out[l].0 as u64;
                if let Some(p) = p {
                    r[p as usize] = out[l].1 as u64;
                }
            }
        }
        Op::Vote {
            mode,
            d,
            negate,
            p,
            mask,
        } => {
            check_mask(regs, mask)?;
            let mut ballot = 0u32;
            for l in lanes() {
                if (reg(regs, l, p) != 0) != negate {
                    ballot |= 1 << l;
                }
            }
            let v = match mode {
                VoteMode::Ballot => ballot as u64,
                VoteMode::All => (ballot == group) as u64,
                VoteMode::Any => (ballot != 0) as u64,
                VoteMode::Uni => (ballot == 0 || ballot == group) as u64,
            };
            for l in lanes() {
                regs[(w0 + l) * nr + d as usize] = v;
            }
        }
        _ => unreachable!("collective called on a non-collective instruction"),
    }
    Ok(())
}

#[inline(always)]
fn f32bin(op: FOp, a: f32, b: f32) -> u32 {
    match op {
        FOp::Add => canon32(a + b),
        FOp::Sub => canon32(a - b),
        FOp::Mul => canon32(a * b),
        FOp::Div => canon32(a / b),
        FOp::Min => minmax32(a, b, false),
        FOp::Max => minmax32(a, b, true),
    }
}

#[inline(always)]
fn int_bin(op: IntOp, w: u32, signed: bool, a: u64, b: u64) -> Option<u64> {
    let m = mask(w);
    let (ua, ub) = (a & m, b & m);
    let (sa, sb) = (sext(a, w), sext(b, w));
    Some(
        match op {
            IntOp::Add => ua.wrapping_add(ub),
            IntOp::Sub => ua.wrapping_sub(ub),
            IntOp::MulLo => ua.wrapping_mul(ub),
            IntOp::MulHi => {
                if signed {
                    ((sa as i128 * sb as i128) >> w) as u64
                } else {
                    ((ua as u128 * ub as u128) >> w) as u64
                }
            }
            IntOp::Div => {
                if ub == 0 {
                    return None;
                }
                if signed {
                    sa.wrapping_div(sb) as u64
                } else {
                    ua / ub
                }
            }
            IntOp::Rem => {
                if ub == 0 {
                    return None;
                }
                if signed {
                    sa.wrapping_rem(sb) as u64
                } else {
                    ua % ub
                }
            }
            IntOp::And => ua & ub,
            IntOp::Or => ua | ub,
            IntOp::Xor => ua ^ ub,
            IntOp::Min => {
                if signed {
                    sa.min(sb) as u64
                } else {
                    ua.min(ub)
                }
            }
            IntOp::Max => {
                if signed {
                    sa.max(sb) as u64
                } else {
                    ua.max(ub)
                }
            }
            IntOp::Shl => {
                // Shift counts are unsigned 32-bit and clamp at the width.
                let s = b as u32;
                if s >= w {
                    0
                } else {
                    ua << s
                }
            }
            IntOp::Shr => {
                let s = b as u32;
                if signed {
                    (sa >> s.min(w - 1)) as u64
                } else if s >= w {
                    0
                } else {
                    ua >> s
                }
            }
        } & m,
    )
}

fn int_un(op: IntUn, w: u32, signed: bool, a: u64) -> u64 {
    let m = mask(w);
    let ua = a & m;
    match op {
        IntUn::Not => !ua & m,
        IntUn::Neg => ua.wrapping_neg() & m,
        IntUn::Abs => {
            let _ = signed;
            (sext(a, w).wrapping_abs() as u64) & m
        }
        IntUn::Popc => ua.count_ones() as u64,
        IntUn::Clz => (ua.leading_zeros() - (64 - w)) as u64,
        IntUn::Brev => ua.reverse_bits() >> (64 - w),
        IntUn::Cnot => (ua == 0) as u64,
    }
}

#[inline(always)]
fn cmp_int(cmp: Cmp, w: u32, signed: bool, a: u64, b: u64) -> bool {
    use std::cmp::Ordering::*;
    let o = if signed {
        sext(a, w).cmp(&sext(b, w))
    } else {
        (a & mask(w)).cmp(&(b & mask(w)))
    };
    match cmp {
        Cmp::Eq => o == Equal,
        Cmp::Ne => o != Equal,
        Cmp::Lt => o == Less,
        Cmp::Le => o != Greater,
        Cmp::Gt => o == Greater,
        Cmp::Ge => o != Less,
        _ => false,
    }
}

fn cmp_float(cmp: Cmp, a: f64, b: f64) -> bool {
    let un = a.is_nan() || b.is_nan();
    match cmp {
        Cmp::Eq => a == b,
        Cmp::Ne => !un && a != b,
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
        Cmp::Equ => un || a == b,
        Cmp::Neu => a != b,
        Cmp::Ltu => un || a < b,
        Cmp::Leu => un || a <= b,
        Cmp::Gtu => un || a > b,
        Cmp::Geu => un || a >= b,
        Cmp::Num => !un,
        Cmp::Nan => un,
    }
}

fn cvt(dt: Ty, st: Ty, rnd: Rnd, sat: bool, ftz: bool, v: u64) -> Option<u64> {
    let is_f = |t: Ty| matches!(t, Ty::F16 | Ty::Bf16 | Ty::F32 | Ty::F64);
    Some(match (is_f(st), is_f(dt)) {
        (false, false) => {
            let x = if st.signed() {
                sext(v, st.bits()) as u64
            } else {
                v & mask(st.bits())
            };
            x & mask(dt.bits())
        }
        (false, true) => {
            let (i, u) = (sext(v, st.bits()), v & mask(st.bits()));
            match dt {
                Ty::F32 => (if st.signed() { i as f32 } else { u as f32 }).to_bits() as u64,
                Ty::F64 => (if st.signed() { i as f64 } else { u as f64 }).to_bits(),
                Ty::F16 if st.bits() <= 32 => {
                    f64_to_f16(if st.signed() { i as f64 } else { u as f64 }) as u64
                }
                _ => return None,
            }
        }
        (true, false) => {
            let mut x = float_in(v, st);
            if ftz && st == Ty::F32 {
                x = ftz32(x as f32) as f64;
            }
            f_to_int(x, rnd, dt.bits(), dt.signed()) & mask(dt.bits())
        }
        (true, true) => {
            let mut x = float_in(v, st);
            if ftz && st == Ty::F32 {
                x = ftz32(x as f32) as f64;
            }
            if dt == st {
                let r = if sat {
                    if x.is_nan() {
                        0.0
                    } else {
                        x.clamp(0.0, 1.0)
                    }
                } else {
                    round_int(x, rnd)
                };
                match dt {
                    Ty::F32 => {
                        let r = if ftz { ftz32(r as f32) } else { r as f32 };
                        canon32(r) as u64
                    }
                    Ty::F64 => canon64(r),
                    _ => return None,
                }
            } else {
                match dt {
                    Ty::F64 => canon64(x),
                    Ty::F32 => {
                        let r = x as f32; // f64 -> f32 is RNE; narrower sources are exact.
                        canon32(if ftz { ftz32(r) } else { r }) as u64
                    }
                    Ty::F16 if st == Ty::F32 => f32_to_f16(x as f32) as u64,
                    Ty::F16 => f64_to_f16(x) as u64,
                    Ty::Bf16 if st == Ty::F32 => f32_to_bf16(x as f32) as u64,
                    _ => return None,
                }
            }
        }
    })
}

/// Little-endian element `i` of size `es` (1, 2, 4 or 8 bytes) of `b`, with fixed-size copies.
#[inline(always)]
fn load_le(b: &[u8], i: usize, es: usize) -> u64 {
    match es {
        4 => u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap_or([0; 4])) as u64,
        8 => u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap_or([0; 8])),
        2 => u16::from_le_bytes(b[2 * i..2 * i + 2].try_into().unwrap_or([0; 2])) as u64,
        _ => b[i] as u64,
    }
}

#[inline(always)]
fn store_le(b: &mut [u8], i: usize, es: usize, v: u64) {
    match es {
        4 => b[4 * i..4 * i + 4].copy_from_slice(&(v as u32).to_le_bytes()),
        8 => b[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes()),
        2 => b[2 * i..2 * i + 2].copy_from_slice(&(v as u16).to_le_bytes()),
        _ => b[i] = v as u8,
    }
}

/// Instructions one thread may run between two collectives before it is declared runaway.
const RUNAWAY: u64 = 1 << 32;

/// Runs a thread until it blocks at a collective (false) or exits (true).
#[inline(never)]
fn run_thread(
    th: &Thread<'_>,
    regs: &mut [u64],
    pc_ref: &mut usize,
    global: &mut Global,
    shared: &mut [u8],
    count: &mut u64,
) -> Result<bool, SimError> {
    let k = th.ctx.k;
    let insts = &k.insts[..];
    let mut pc = *pc_ref;
    let mut executed = 0u64;
    let result = loop {
        let Some(inst) = insts.get(pc) else {
            break Err(SimError {
                line: 0,
                text: String::new(),
                msg: "fell off the end of the kernel without ret".into(),
            });
        };
        executed += 1;
        if let Some((g, neg)) = inst.guard {
            if (regs[g as usize] != 0) == neg {
                pc += 1;
                continue;
            }
        }
        match inst.op {
            Op::F32Bin { op, ftz, d, a, b } => {
                let (mut x, mut y) = (f32of(rd(regs, a)), f32of(rd(regs, b)));
                regs[d as usize] = if ftz {
                    x = ftz32(x);
                    y = ftz32(y);
                    canon32(ftz32(f32::from_bits(f32bin(op, x, y)))) as u64
                } else {
                    f32bin(op, x, y) as u64
                };
            }
            Op::F32Un { op, ftz, d, a } => {
                let mut x = f32of(rd(regs, a));
                if ftz {
                    x = ftz32(x);
                }
                let r = match op {
                    FUn::Sqrt => canon32(x.sqrt()),
                    FUn::Rcp => canon32(1.0 / x),
                    FUn::Abs => x.to_bits() & 0x7FFF_FFFF,
                    FUn::Neg => x.to_bits() ^ 0x8000_0000,
                };
                regs[d as usize] = if ftz {
                    ftz32(f32::from_bits(r)).to_bits() as u64
                } else {
                    r as u64
                };
            }
            Op::F32Fma { ftz, d, a, b, c } => {
                let (mut x, mut y, mut z) =
                    (f32of(rd(regs, a)), f32of(rd(regs, b)), f32of(rd(regs, c)));
                if ftz {
                    x = ftz32(x);
                    y = ftz32(y);
                    z = ftz32(z);
                }
                let r = x.mul_add(y, z);
                regs[d as usize] = canon32(if ftz { ftz32(r) } else { r }) as u64;
            }
            Op::F64Bin { op, d, a, b } => {
                let (x, y) = (f64of(rd(regs, a)), f64of(rd(regs, b)));
                regs[d as usize] = match op {
                    FOp::Add => canon64(x + y),
                    FOp::Sub => canon64(x - y),
                    FOp::Mul => canon64(x * y),
                    FOp::Div => canon64(x / y),
                    FOp::Min => minmax64(x, y, false),
                    FOp::Max => minmax64(x, y, true),
                };
            }
            Op::F64Un { op, d, a } => {
                let x = f64of(rd(regs, a));
                regs[d as usize] = match op {
                    FUn::Sqrt => canon64(x.sqrt()),
                    FUn::Rcp => canon64(1.0 / x),
                    FUn::Abs => x.to_bits() & 0x7FFF_FFFF_FFFF_FFFF,
                    FUn::Neg => x.to_bits() ^ 0x8000_0000_0000_0000,
                };
            }
            Op::F64Fma { d, a, b, c } => {
                let (x, y, z) = (f64of(rd(regs, a)), f64of(rd(regs, b)), f64of(rd(regs, c)));
                regs[d as usize] = canon64(x.mul_add(y, z));
            }
            Op::Int {
                op,
                w,
                signed,
                d,
                a,
                b,
            } => {
                let Some(v) = int_bin(op, w, signed, rd(regs, a), rd(regs, b)) else {
                    break Err(fail(
                        k,
                        pc,
                        "integer division by zero (unspecified on hardware)",
                    ));
                };
                regs[d as usize] = v;
            }
            Op::IntUn {
                op,
                w,
                signed,
                d,
                a,
            } => regs[d as usize] = int_un(op, w, signed, rd(regs, a)),
            Op::MulWide {
                w,
                signed,
                d,
                a,
                b,
                c,
            } => {
                let (x, y) = (rd(regs, a), rd(regs, b));
                let p = if signed {
                    (sext(x, w).wrapping_mul(sext(y, w))) as u64
                } else {
                    (x & mask(w)).wrapping_mul(y & mask(w))
                };
                let p = match c {
                    Some(c) => p.wrapping_add(rd(regs, c)),
                    None => p,
                };
                regs[d as usize] = p & mask(2 * w);
            }
            Op::Mad {
                hi,
                w,
                signed,
                d,
                a,
                b,
                c,
            } => {
                let op = if hi { IntOp::MulHi } else { IntOp::MulLo };
                let p = int_bin(op, w, signed, rd(regs, a), rd(regs, b)).unwrap_or(0);
                regs[d as usize] = p.wrapping_add(rd(regs, c)) & mask(w);
            }
            Op::Bfe {
                w,
                signed,
                d,
                a,
                b,
                c,
            } => {
                let (x, pos, len) = (
                    rd(regs, a) & mask(w),
                    rd(regs, b) as u32 & 0xFF,
                    rd(regs, c) as u32 & 0xFF,
                );
                let msb = if signed && len > 0 {
                    (x >> (pos + len - 1).min(w - 1)) & 1
                } else {
                    0
                };
                let mut r = 0u64;
                for i in 0..w {
                    let bit = if i < len && pos + i < w {
                        (x >> (pos + i)) & 1
                    } else {
                        msb
                    };
                    r |= bit << i;
                }
                regs[d as usize] = r;
            }
            Op::Bfi { w, d, f, b, c, l } => {
                let (fv, mut r, pos, len) = (
                    rd(regs, f),
                    rd(regs, b) & mask(w),
                    rd(regs, c) as u32 & 0xFF,
                    rd(regs, l) as u32 & 0xFF,
                );
                for i in 0..len {
                    if pos + i >= w {
                        break;
                    }
                    r = (r & !(1 << (pos + i))) | (((fv >> i) & 1) << (pos + i));
                }
                regs[d as usize] = r;
            }
            Op::Prmt { d, a, b, c } => {
                let t = (rd(regs, b) & 0xFFFF_FFFF) << 32 | (rd(regs, a) & 0xFFFF_FFFF);
                let sel = rd(regs, c) as u32;
                let mut r = 0u64;
                for i in 0..4 {
                    let s = (sel >> (4 * i)) & 0xF;
                    let mut byte = (t >> (8 * (s & 7))) & 0xFF;
                    if s & 8 != 0 {
                        byte = if byte & 0x80 != 0 { 0xFF } else { 0 };
                    }
                    r |= byte << (8 * i);
                }
                regs[d as usize] = r;
            }
            Op::PredBin { op, d, a, b } => {
                let (x, y) = (rd(regs, a) & 1, rd(regs, b) & 1);
                regs[d as usize] = match op {
                    IntOp::And => x & y,
                    IntOp::Or => x | y,
                    _ => x ^ y,
                };
            }
            Op::PredNot { d, a } => regs[d as usize] = (rd(regs, a) & 1) ^ 1,
            Op::Setp { cmp, ty, d, a, b } => {
                let (x, y) = (rd(regs, a), rd(regs, b));
                regs[d as usize] = match ty {
                    Ty::Int(w, s) => cmp_int(cmp, w, s, x, y),
                    Ty::F32 => cmp_float(cmp, f32of(x) as f64, f32of(y) as f64),
                    _ => cmp_float(cmp, f64of(x), f64of(y)),
                } as u64;
            }
            Op::Selp { w, d, a, b, p } => {
                regs[d as usize] = if rd(regs, p) & 1 != 0 {
                    rd(regs, a)
                } else {
                    rd(regs, b)
                } & mask(w);
            }
            Op::Mov { w, d, a } => regs[d as usize] = rd(regs, a) & mask(w),
            Op::MovSpecial { d, sr } => {
                let pick = |t: (u32, u32, u32), i: u8| match i {
                    0 => t.0,
                    1 => t.1,
                    _ => t.2,
                };
                let c = th.ctx;
                regs[d as usize] = match sr {
                    Special::Tid(i) => pick(th.tid, i),
                    Special::Ntid(i) => pick(c.block, i),
                    Special::Ctaid(i) => pick(th.ctaid, i),
                    Special::Nctaid(i) => pick(c.grid, i),
                    Special::Laneid => th.lin % 32,
                    Special::Warpid => th.lin / 32,
                    Special::Nwarpid => (c.block.0 * c.block.1 * c.block.2).div_ceil(32),
                } as u64;
            }
            Op::Pack {
                part_bits,
                d,
                ref parts,
            } => {
                let mut v = 0u64;
                for (i, p) in parts.iter().enumerate() {
                    v |= (rd(regs, *p) & mask(part_bits)) << (part_bits * i as u32);
                }
                regs[d as usize] = v;
            }
            Op::Unpack {
                part_bits,
                ref ds,
                a,
            } => {
                let v = rd(regs, a);
                for (i, dd) in ds.iter().enumerate() {
                    if let Some(dd) = dd {
                        regs[*dd as usize] = (v >> (part_bits * i as u32)) & mask(part_bits);
                    }
                }
            }
            Op::Cvt {
                dt,
                st,
                rnd,
                sat,
                ftz,
                d,
                a,
            } => match cvt(dt, st, rnd, sat, ftz, rd(regs, a)) {
                Some(v) => regs[d as usize] = v,
                None => break Err(fail(k, pc, "unsupported conversion")),
            },
            Op::Cvta { d, a } => regs[d as usize] = rd(regs, a),
            Op::Ld {
                space,
                ty,
                n,
                ds,
                addr,
            } => {
                let es = ty.bytes() as u64;
                let base = addr
                    .base
                    .map_or(0, |r| regs[r as usize])
                    .wrapping_add(addr.off as u64);
                let total = es * n as u64;
                if base % total != 0 {
                    break Err(fail(
                        k,
                        pc,
                        format!("misaligned {total}-byte load at {base:#x}"),
                    ));
                }
                let bytes: &[u8] = match space {
                    Space::Global | Space::GlobalNc => match global.range(base, total) {
                        Some(i) => {
                            if space == Space::GlobalNc && !global.record(i, total as usize, 1) {
                                break Err(fail(
                                    k,
                                    pc,
                                    format!(
                                        "ld.global.nc at {base:#x} reads bytes this launch writes \
                                         (a const __restrict__ input aliases an output)"
                                    ),
                                ));
                            }
                            &global.mem[i..i + total as usize]
                        }
                        None => {
                            break Err(fail(
                                k,
                                pc,
                                format!(
                                    "global load of {total} bytes at {base:#x} is out of bounds"
                                ),
                            ))
                        }
                    },
                    Space::Shared => match shared.get(base as usize..(base + total) as usize) {
                        Some(s) if base < u32::MAX as u64 => s,
                        _ => {
                            break Err(fail(
                                k,
                                pc,
                                format!("shared load at {base:#x} is out of bounds"),
                            ))
                        }
                    },
                    Space::Param => {
                        // Addresses from `mov %rd, param` carry the PARAM_ADDR tag.
                        let off = match addr.base {
                            None => Some(base),
                            Some(_) => base.checked_sub(crate::parse::PARAM_ADDR).and_then(|t| {
                                let p = k.params.get((t >> 32) as usize)?;
                                let within = t & 0xFFFF_FFFF;
                                (within + total <= p.size as u64)
                                    .then_some(p.offset as u64 + within)
                            }),
                        };
                        match off.and_then(|o| th.ctx.params.get(o as usize..(o + total) as usize))
                        {
                            Some(s) => s,
                            None => {
                                break Err(fail(
                                    k,
                                    pc,
                                    format!("parameter load at {base:#x} is out of bounds"),
                                ))
                            }
                        }
                    }
                };
                let mut vals = [0u64; 4];
                for (i, v) in vals.iter_mut().enumerate().take(n as usize) {
                    let x = load_le(bytes, i, es as usize);
                    *v = if ty.signed() {
                        sext(x, ty.bits()) as u64
                    } else {
                        x
                    };
                }
                for i in 0..n as usize {
                    if let Some(dd) = ds[i] {
                        regs[dd as usize] = vals[i];
                    }
                }
            }
            Op::St {
                space,
                ty,
                n,
                vals,
                addr,
            } => {
                let es = ty.bytes() as usize;
                let base = addr
                    .base
                    .map_or(0, |r| regs[r as usize])
                    .wrapping_add(addr.off as u64);
                let total = es * n as usize;
                if base % total as u64 != 0 {
                    break Err(fail(
                        k,
                        pc,
                        format!("misaligned {total}-byte store at {base:#x}"),
                    ));
                }
                let dst: &mut [u8] = match space {
                    Space::Global => match global.range(base, total as u64) {
                        Some(i) => {
                            if !global.record(i, total, 2) {
                                break Err(fail(
                                    k,
                                    pc,
                                    format!(
                                        "st.global at {base:#x} writes bytes this launch reads \
                                         through ld.global.nc (aliasing)"
                                    ),
                                ));
                            }
                            &mut global.mem[i..i + total]
                        }
                        None => {
                            break Err(fail(
                                k,
                                pc,
                                format!(
                                    "global store of {total} bytes at {base:#x} is out of bounds"
                                ),
                            ))
                        }
                    },
                    Space::Shared => {
                        let len = shared.len();
                        match shared.get_mut(base as usize..(base as usize).saturating_add(total)) {
                            Some(s) if base < u32::MAX as u64 => s,
                            _ => {
                                break Err(fail(
                                    k,
                                    pc,
                                    format!(
                                        "shared store at {base:#x} is out of bounds ({len} bytes)"
                                    ),
                                ))
                            }
                        }
                    }
                    Space::Param | Space::GlobalNc => {
                        break Err(fail(k, pc, "st.param is not supported"))
                    }
                };
                for (i, v) in vals.iter().enumerate().take(n as usize) {
                    store_le(dst, i, es, rd(regs, *v));
                }
            }
            Op::Bra { target } => {
                // Watchdog on backward branches: a thread that runs this long between two
                // collectives is looping forever (e.g. a mutated loop bound).
                if target as usize <= pc && executed > RUNAWAY {
                    break Err(fail(
                        k,
                        pc,
                        format!(
                            "thread ran {executed} instructions without reaching a barrier or exit"
                        ),
                    ));
                }
                pc = target as usize;
                continue;
            }
            Op::Exit => break Ok(true),
            Op::Bar | Op::Shfl { .. } | Op::Vote { .. } => {
                // Counted when the collective executes.
                executed -= 1;
                break Ok(false);
            }
        }
        pc += 1;
    };
    *pc_ref = pc;
    *count += executed;
    result
}
