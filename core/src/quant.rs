//! Symmetric block quantizers (4-bit and 8-bit) with DeepSpeed's arithmetic
//! (`quantize::Params<Symmetric, bits>`, the compressor LoCo and ZeRO++ qgZ use), and the
//! packed byte layout that compressed gradients travel in.
//!
//! ## Arithmetic (f32, round to nearest even, no fused multiply-add), per group
//! A tensor of `len` elements is cut into groups of `group_len` contiguous elements; the last
//! group holds the remaining `len % group_len` elements when that is not zero.
//!
//! ```text
//! 1. absmax    = max |x_i| over the group           (crate::reduce::max_abs; order-free)
//! 2. scale     = 1                                   if absmax == 0
//!                min(H / absmax, f32::MAX)           otherwise, H = 2^(bits-1) (8 or 128)
//! 3. inv_scale = 1 / scale                           (stored; the dequantization step)
//! 4. q_i       = clamp(rne(x_i * scale), -H, H - 1)  (rne: round half to even, exact)
//! 5. x̂_i       = f32(q_i) * inv_scale                 (dequantize)
//! ```
//! `H / absmax` equals DeepSpeed's `2^bits / (2*absmax)` bit for bit whenever DeepSpeed's
//! `2*absmax` does not overflow (scaling numerator and denominator by 2 does not change a
//! correctly rounded quotient), and stays finite where it would. The saturation at
//! `f32::MAX` only acts for groups whose absmax is below `H / f32::MAX` (about 2.4e-38 for
//! 4 bits), where DeepSpeed's scale is infinite and its output NaN; there `inv_scale` is
//! `2^-128` and every code is 0 or tiny. Round half to even is [`round_half_even`], done with
//! two f32 additions (CUDA: `__float2int_rn`, which agrees on the range used here).
//!
//! ## Error bound
//! With `step = inv_scale`, every element whose scaled value `x*scale` lies in
//! `[-H - 1/2, H - 1/2]` dequantizes within half a step (plus the two f32 roundings of
//! steps 4 and 5, a few ulps of `absmax`). The symmetric range is one code short on the
//! positive side, as DeepSpeed's: values in `((H - 1/2)*step, absmax]` map to `H - 1` and lose
//! up to one full step (the group maximum itself loses exactly `absmax/H`).
//!
//! ## Packed layout
//! One packed buffer holds one tensor (or one shard of one, see [`crate::loco`]):
//!
//! ```text
//! [codes: groups x group_code_bytes, the last group possibly shorter]
//! [zero padding to a multiple of 4 bytes]
//! [scales: one little-endian f32 `inv_scale` per group, in group order]
//! ```
//! Codes are two's complement. 8-bit: one byte per element. 4-bit: two codes per byte, every
//! group starting on a byte boundary (`ceil(group_len/2)` bytes per group); within a group,
//! element `2k` sits in the high nibble (bits 4..7) and element `2k+1` in the low nibble
//! (bits 0..3), which is DeepSpeed's `PackedInt4` byte on little-endian targets; an odd
//! group's last byte has a zero low nibble. [`packed_len`] gives the total length.
//!
//! Non-finite inputs are a typed error ([`QuantError::NonFinite`]) found before anything is
//! written; a packed buffer whose scale is not finite and positive is refused on decode
//! ([`QuantError::BadScale`]).

use crate::error::{Buffer, ConfigError, Hyper, LayoutError, QuantError};
use crate::store::Element;

/// Bit width of a symmetric quantizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bits {
    /// 4-bit codes in `[-8, 7]`, two per byte.
    Four,
    /// 8-bit codes in `[-128, 127]`, one per byte.
    Eight,
}

impl Bits {
    /// The bit width (4 or 8).
    pub const fn bits(self) -> u32 {
        match self {
            Bits::Four => 4,
            Bits::Eight => 8,
        }
    }
    /// `Bits` from a width; `None` unless 4 or 8.
    pub const fn from_u32(b: u32) -> Option<Bits> {
        match b {
            4 => Some(Bits::Four),
            8 => Some(Bits::Eight),
            _ => None,
        }
    }
    /// `H = 2^(bits-1)`: 8 or 128 (the numerator of the scale, and `-q_min`).
    pub const fn half_levels(self) -> f32 {
        match self {
            Bits::Four => 8.0,
            Bits::Eight => 128.0,
        }
    }
    /// Smallest code, `-2^(bits-1)`.
    pub const fn q_min(self) -> i32 {
        match self {
            Bits::Four => -8,
            Bits::Eight => -128,
        }
    }
    /// Largest code, `2^(bits-1) - 1`.
    pub const fn q_max(self) -> i32 {
        match self {
            Bits::Four => 7,
            Bits::Eight => 127,
        }
    }
    /// Bytes of codes for a group of `n` elements: `ceil(n/2)` (4-bit) or `n` (8-bit).
    pub const fn code_bytes(self, n: usize) -> usize {
        match self {
            Bits::Four => n.div_ceil(2),
            Bits::Eight => n,
        }
    }
}

/// Number of groups: `ceil(len / group_len)` (`group_len > 0`).
pub const fn group_count(len: usize, group_len: usize) -> usize {
    len.div_ceil(group_len)
}

/// Bytes of codes of a whole tensor (every group byte-aligned).
pub const fn code_bytes(len: usize, group_len: usize, bits: Bits) -> usize {
    let full = len / group_len;
    full * bits.code_bytes(group_len) + bits.code_bytes(len - full * group_len)
}

/// Byte offset of the scales: the code bytes rounded up to a multiple of 4.
pub const fn scales_offset(len: usize, group_len: usize, bits: Bits) -> usize {
    code_bytes(len, group_len, bits).div_ceil(4) * 4
}

/// Length in bytes of the packed form of `len` elements: codes, padding to 4 bytes, and a
/// 4-byte scale per group. `group_len` must be positive (see [`QuantLayout::new`]).
pub const fn packed_len(len: usize, group_len: usize, bits: Bits) -> usize {
    scales_offset(len, group_len, bits) + 4 * group_count(len, group_len)
}

/// A validated `(len, group_len, bits)` triple: how one tensor (or shard) is packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantLayout {
    /// Elements.
    pub len: usize,
    /// Elements per group (the last group may be shorter).
    pub group_len: usize,
    /// Bit width.
    pub bits: Bits,
}

impl QuantLayout {
    /// Check `group_len > 0` ([`LayoutError::BadBlocks`] otherwise).
    pub const fn new(len: usize, group_len: usize, bits: Bits) -> Result<QuantLayout, LayoutError> {
        if group_len == 0 {
            return Err(LayoutError::BadBlocks {
                len,
                block_len: group_len,
            });
        }
        Ok(QuantLayout {
            len,
            group_len,
            bits,
        })
    }
    /// Number of groups.
    pub const fn groups(&self) -> usize {
        group_count(self.len, self.group_len)
    }
    /// Bytes of codes.
    pub const fn code_bytes(&self) -> usize {
        code_bytes(self.len, self.group_len, self.bits)
    }
    /// Offset of the scales.
    pub const fn scales_offset(&self) -> usize {
        scales_offset(self.len, self.group_len, self.bits)
    }
    /// Total packed length in bytes.
    pub const fn packed_len(&self) -> usize {
        packed_len(self.len, self.group_len, self.bits)
    }
    /// Element range `[start, end)` of group `g`.
    pub const fn group_range(&self, g: usize) -> (usize, usize) {
        let start = g * self.group_len;
        let end = if start + self.group_len < self.len {
            start + self.group_len
        } else {
            self.len
        };
        (start, end)
    }
    /// Byte offset of group `g`'s codes.
    pub const fn group_code_offset(&self, g: usize) -> usize {
        g * self.bits.code_bytes(self.group_len)
    }
    /// The stored `inv_scale` of group `g` of `packed` (little-endian f32).
    pub fn scale(&self, packed: &[u8], g: usize) -> f32 {
        read_f32(packed, self.scales_offset() + 4 * g)
    }
    /// Check that `packed` has exactly [`QuantLayout::packed_len`] bytes.
    pub fn check_packed(&self, buffer: Buffer, packed: &[u8]) -> Result<(), LayoutError> {
        check_len(buffer, self.packed_len(), packed.len())
    }
}

pub(crate) fn check_len(buffer: Buffer, expected: usize, got: usize) -> Result<(), LayoutError> {
    if expected == got {
        Ok(())
    } else {
        Err(LayoutError::LenMismatch {
            buffer,
            expected,
            got,
        })
    }
}

#[inline(always)]
pub(crate) fn read_f32(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(crate) fn write_f32(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Round half to even, for every f32, with the IEEE sign (`-0.3 -> -0.0`): equal to std's
/// `f32::round_ties_even`. For `|y| < 2^23`: `r = (|y| + 2^23) - 2^23` (the first addition
/// rounds to an integer, nearest even; the subtraction is exact), then the sign of `y` is put
/// back. Larger values, infinities and NaN are returned unchanged.
#[inline(always)]
pub fn round_half_even(y: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    let bits = y.to_bits();
    let a = f32::from_bits(bits & 0x7FFF_FFFF);
    if a.is_nan() || a >= TWO_23 {
        return y;
    }
    let r = (a + TWO_23) - TWO_23;
    f32::from_bits(r.to_bits() | (bits & 0x8000_0000))
}

/// Per-group scales from the group's absmax (steps 2-3 of the module doc): returns
/// `(scale, inv_scale)`; `(1, 1)` when `absmax == 0`. `absmax` must be finite.
#[inline(always)]
pub fn group_scale(absmax: f32, bits: Bits) -> (f32, f32) {
    if absmax == 0.0 {
        return (1.0, 1.0);
    }
    let mut scale = bits.half_levels() / absmax;
    if scale > f32::MAX {
        scale = f32::MAX;
    }
    (scale, 1.0 / scale)
}

/// One code (step 4): `clamp(rne(x*scale), q_min, q_max)`.
#[inline(always)]
pub fn quantize_elem(x: f32, scale: f32, bits: Bits) -> i8 {
    let r = round_half_even(x * scale);
    let lo = bits.q_min() as f32;
    let hi = bits.q_max() as f32;
    let c = if r < lo {
        lo
    } else if r > hi {
        hi
    } else {
        r
    };
    c as i8
}

/// One dequantized value (step 5): `f32(q) * inv_scale`.
#[inline(always)]
pub fn dequantize_elem(q: i8, inv_scale: f32) -> f32 {
    (q as f32) * inv_scale
}

/// The byte holding element `2k` (high nibble) and `2k+1` (low nibble) of a 4-bit group.
#[inline(always)]
pub const fn pack_nibbles(even: i8, odd: i8) -> u8 {
    (((even as u8) & 0x0F) << 4) | ((odd as u8) & 0x0F)
}

/// Inverse of [`pack_nibbles`]: `(even, odd)`, sign-extended.
#[inline(always)]
pub const fn unpack_nibbles(b: u8) -> (i8, i8) {
    ((b as i8) >> 4, ((b << 4) as i8) >> 4)
}

/// Code of element `j` of a group whose codes start at `codes[0]`.
#[inline(always)]
pub fn code_at(codes: &[u8], j: usize, bits: Bits) -> i8 {
    match bits {
        Bits::Eight => codes[j] as i8,
        Bits::Four => {
            let (e, o) = unpack_nibbles(codes[j / 2]);
            if j % 2 == 0 {
                e
            } else {
                o
            }
        }
    }
}

/// Index of the first non-finite element, if any. Tiles of 256 are screened with a
/// branch-free max of the magnitude bits (it vectorizes); only a failing tile is searched.
pub(crate) fn first_non_finite<G: Element>(x: &[G]) -> Option<usize> {
    for (t, tile) in x.chunks(256).enumerate() {
        let mut m = 0u32;
        for v in tile {
            m = m.max(v.widen().to_bits() & 0x7FFF_FFFF);
        }
        if m >= 0x7F80_0000 {
            return tile
                .iter()
                .position(|v| !v.is_finite_bits())
                .map(|i| t * 256 + i);
        }
    }
    None
}

/// `1.5 * 2^23`. For `|y| <= 2^22`, `y + MAGIC` lies in `[2^23, 2^24)`, where the f32 step is
/// 1: the addition rounds `y` to an integer, nearest even (`MAGIC` is even), and that integer
/// `r` sits in the low mantissa bits (`bits = 0x4B40_0000 + r`, so the low byte is `r`'s two's
/// complement byte), and `(y + MAGIC) - MAGIC = f32(r)` exactly (`+0.0` for `r = 0`).
pub(crate) const MAGIC: f32 = 12_582_912.0;

/// Largest magnitude of a finite group (the bits of non-negative floats order like the
/// floats): `max |x_i|`, `+0.0` when empty. Branch-free, so it vectorizes.
#[inline(always)]
pub(crate) fn absmax(xs: &[f32]) -> f32 {
    f32::from_bits(max_magnitude_bits(xs))
}

/// `max (bits(x_i) & 0x7FFF_FFFF)`: at least `0x7F80_0000` iff some `x_i` is not finite.
#[inline(always)]
pub(crate) fn max_magnitude_bits(xs: &[f32]) -> u32 {
    let mut m = 0u32;
    for v in xs {
        m = m.max(v.to_bits() & 0x7FFF_FFFF);
    }
    m
}

/// The fast form of [`quantize_elem`] (same code): `t = clamp(x*scale, lo, hi) + MAGIC`, the
/// code is `t`'s low byte and its value `t - MAGIC`. Clamping before rounding gives the same
/// integer as clamping after, since `lo`, `hi` are integers and rounding is monotone; the
/// clamped value has magnitude `<= 128`, inside [`MAGIC`]'s exact range.
#[inline(always)]
pub(crate) fn code_sum(x: f32, scale: f32, lo: f32, hi: f32) -> f32 {
    let y = x * scale;
    let y = if y < lo { lo } else { y };
    let y = if y > hi { hi } else { y };
    y + MAGIC
}

/// Pack a group's code sums (`t.to_bits()` of [`code_sum`], whose low byte is the code) into
/// `out`: 8-bit one byte each, 4-bit two per byte (`ceil(n/2)` bytes; an odd group's last low
/// nibble is zero). Straight-line u32 lane arithmetic, so it vectorizes.
#[inline(always)]
pub(crate) fn pack_code_bits(ts: &[u32], bits: Bits, out: &mut [u8]) {
    match bits {
        Bits::Eight => {
            for (o, t) in out.iter_mut().zip(ts) {
                *o = *t as u8;
            }
        }
        Bits::Four => {
            let pairs = ts.chunks_exact(2);
            let rem = pairs.remainder();
            for (o, p) in out.iter_mut().zip(pairs) {
                *o = (((p[0] << 4) & 0xF0) | (p[1] & 0x0F)) as u8;
            }
            if let [last] = rem {
                out[ts.len() / 2] = ((last << 4) & 0xF0) as u8;
            }
        }
    }
}

/// The two codes of a 4-bit byte as f32, `(even, odd)`: sign-extended nibbles by i32 shifts
/// (the same values as [`unpack_nibbles`]; i32 lanes vectorize where i8 shifts do not).
#[inline(always)]
fn nibble_values(c: u8) -> (f32, f32) {
    let w = c as i32;
    (((w << 24) >> 28) as f32, ((w << 28) >> 28) as f32)
}

/// Codes of one group (fast path) into `codes` (one per byte, `x.len()` bytes).
#[inline(always)]
pub(crate) fn code_group<G: Element>(x: &[G], scale: f32, bits: Bits, codes: &mut [u8]) {
    let (lo, hi) = (bits.q_min() as f32, bits.q_max() as f32);
    for (c, v) in codes.iter_mut().zip(x) {
        *c = code_sum(v.widen(), scale, lo, hi).to_bits() as u8;
    }
}

/// Dequantize one group's codes (`n` elements starting at `codes[0]`) into `out[..n]`.
#[inline(always)]
pub(crate) fn dequantize_group(codes: &[u8], bits: Bits, inv: f32, out: &mut [f32]) {
    match bits {
        Bits::Eight => {
            for (o, c) in out.iter_mut().zip(codes) {
                *o = dequantize_elem(*c as i8, inv);
            }
        }
        Bits::Four => {
            // f32(q) * inv_scale, as dequantize_elem.
            let n = out.len();
            let mut pairs = out.chunks_exact_mut(2);
            for (p, c) in (&mut pairs).zip(codes) {
                let (e, o) = nibble_values(*c);
                p[0] = e * inv;
                p[1] = o * inv;
            }
            if let [last] = pairs.into_remainder() {
                *last = nibble_values(codes[n / 2]).0 * inv;
            }
        }
    }
}

/// `acc[j] = acc[j] + deQ(codes)[j]` over one group (one step of the rank-order fold).
#[inline(always)]
pub(crate) fn dequantize_group_add(codes: &[u8], bits: Bits, inv: f32, acc: &mut [f32]) {
    match bits {
        Bits::Eight => {
            for (o, c) in acc.iter_mut().zip(codes) {
                *o = *o + dequantize_elem(*c as i8, inv);
            }
        }
        Bits::Four => {
            let n = acc.len();
            let mut pairs = acc.chunks_exact_mut(2);
            for (p, c) in (&mut pairs).zip(codes) {
                let (e, o) = nibble_values(*c);
                p[0] = p[0] + e * inv;
                p[1] = p[1] + o * inv;
            }
            if let [last] = pairs.into_remainder() {
                *last = *last + nibble_values(codes[n / 2]).0 * inv;
            }
        }
    }
}

/// Quantize and pack one group (no checks): codes into `codes` (exactly the group's code
/// bytes), returns `inv_scale`. The fast path: the absmax, then [`code_sum`] per element,
/// 4-bit codes formed two at a time straight into their byte.
#[inline]
fn quantize_group<G: Element>(x: &[G], bits: Bits, codes: &mut [u8]) -> f32 {
    let mut m = 0u32;
    for v in x {
        m = m.max(v.widen().to_bits() & 0x7FFF_FFFF);
    }
    let (scale, inv) = group_scale(f32::from_bits(m), bits);
    match bits {
        Bits::Eight => code_group(x, scale, bits, codes),
        Bits::Four => {
            let (lo, hi) = (bits.q_min() as f32, bits.q_max() as f32);
            let pairs = x.chunks_exact(2);
            let rem = pairs.remainder();
            for (c, p) in codes.iter_mut().zip(pairs) {
                let e = code_sum(p[0].widen(), scale, lo, hi).to_bits();
                let o = code_sum(p[1].widen(), scale, lo, hi).to_bits();
                *c = (((e << 4) & 0xF0) | (o & 0x0F)) as u8;
            }
            if let [last] = rem {
                let e = code_sum(last.widen(), scale, lo, hi).to_bits();
                codes[x.len() / 2] = ((e << 4) & 0xF0) as u8;
            }
        }
    }
    inv
}

/// Quantize `x` into `packed` (layout in the module doc). Errors, before anything is
/// written: `x.len() != layout.len`, `packed.len() != layout.packed_len()`, any non-finite
/// `x` element. The padding bytes are written as zero.
pub fn quantize<G: Element>(
    x: &[G],
    layout: &QuantLayout,
    packed: &mut [u8],
) -> Result<(), QuantError> {
    check_len(Buffer::Grad, layout.len, x.len())?;
    layout.check_packed(Buffer::Packed, packed)?;
    if let Some(index) = first_non_finite(x) {
        return Err(QuantError::NonFinite {
            buffer: Buffer::Grad,
            index,
        });
    }
    let (codes, scales) = packed.split_at_mut(layout.scales_offset());
    let gb = layout.bits.code_bytes(layout.group_len);
    for b in codes[layout.code_bytes()..].iter_mut() {
        *b = 0;
    }
    let groups = x.chunks(layout.group_len).zip(codes.chunks_mut(gb));
    for (g, (xg, cg)) in groups.enumerate() {
        let n = layout.bits.code_bytes(xg.len());
        let inv = quantize_group(xg, layout.bits, &mut cg[..n]);
        write_f32(scales, 4 * g, inv);
    }
    Ok(())
}

/// Reference path of [`quantize`]: an indexed loop, one element at a time, with the group
/// absmax found by comparing magnitudes. Gives the same bytes.
#[allow(clippy::needless_range_loop)] // an indexed loop on purpose: the plain reading
pub fn quantize_reference<G: Element>(
    x: &[G],
    layout: &QuantLayout,
    packed: &mut [u8],
) -> Result<(), QuantError> {
    check_len(Buffer::Grad, layout.len, x.len())?;
    layout.check_packed(Buffer::Packed, packed)?;
    if let Some(index) = first_non_finite(x) {
        return Err(QuantError::NonFinite {
            buffer: Buffer::Grad,
            index,
        });
    }
    for b in packed.iter_mut() {
        *b = 0;
    }
    for g in 0..layout.groups() {
        let (start, end) = layout.group_range(g);
        let mut absmax = 0.0f32;
        for v in &x[start..end] {
            let a = f32::from_bits(v.widen().to_bits() & 0x7FFF_FFFF);
            if a > absmax {
                absmax = a;
            }
        }
        let (scale, inv) = group_scale(absmax, layout.bits);
        let base = layout.group_code_offset(g);
        for i in start..end {
            let q = quantize_elem(x[i].widen(), scale, layout.bits);
            let j = i - start;
            match layout.bits {
                Bits::Eight => packed[base + j] = q as u8,
                Bits::Four => {
                    let nib = (q as u8) & 0x0F;
                    let shift = if j % 2 == 0 { 4 } else { 0 };
                    packed[base + j / 2] |= nib << shift;
                }
            }
        }
        write_f32(packed, layout.scales_offset() + 4 * g, inv);
    }
    Ok(())
}

/// Check every scale of `count` consecutive packed chunks of `layout`.
pub(crate) fn check_scales(
    buffer: Buffer,
    packed: &[u8],
    layout: &QuantLayout,
    count: usize,
) -> Result<(), QuantError> {
    let len = layout.packed_len();
    let so = layout.scales_offset();
    for c in 0..count {
        let chunk = &packed[c * len..(c + 1) * len];
        for g in 0..layout.groups() {
            let s = read_f32(chunk, so + 4 * g);
            // Rejects NaN, infinities, zero, negatives.
            if !(s > 0.0 && s <= f32::MAX) {
                return Err(QuantError::BadScale {
                    buffer,
                    group: c * layout.groups() + g,
                });
            }
        }
    }
    Ok(())
}

/// Dequantize `packed` into `out` (`out[i] = f32(q_i) * inv_scale`). Errors, before anything
/// is written: wrong lengths, a scale that is not finite and positive.
pub fn dequantize(packed: &[u8], layout: &QuantLayout, out: &mut [f32]) -> Result<(), QuantError> {
    layout.check_packed(Buffer::Packed, packed)?;
    check_len(Buffer::Grad, layout.len, out.len())?;
    check_scales(Buffer::Packed, packed, layout, 1)?;
    dequantize_unchecked(packed, layout, out);
    Ok(())
}

fn dequantize_unchecked(packed: &[u8], layout: &QuantLayout, out: &mut [f32]) {
    let gb = layout.bits.code_bytes(layout.group_len);
    let so = layout.scales_offset();
    for (g, (og, cg)) in out
        .chunks_mut(layout.group_len)
        .zip(packed.chunks(gb))
        .enumerate()
    {
        dequantize_group(cg, layout.bits, read_f32(packed, so + 4 * g), og);
    }
}

/// The dequantized value of element `i` of the packed chunk `chunk` (no checks).
#[inline(always)]
pub(crate) fn dequantized_at(chunk: &[u8], layout: &QuantLayout, i: usize) -> f32 {
    let g = i / layout.group_len;
    let j = i - g * layout.group_len;
    let codes = &chunk[layout.group_code_offset(g)..];
    dequantize_elem(code_at(codes, j, layout.bits), layout.scale(chunk, g))
}

/// Sum of `count` peers' dequantized contributions, in rank order (the left fold of the
/// contract's lane order with the ranks as the lane's items):
/// `s = +0.0; for r in 0..count: s = s + deQ_r[i]`. Every rank that folds the same bytes
/// gets the same bits.
#[inline(always)]
pub(crate) fn fold_peers(received: &[u8], layout: &QuantLayout, count: usize, i: usize) -> f32 {
    let len = layout.packed_len();
    let mut s = 0.0f32;
    for r in 0..count {
        s = s + dequantized_at(&received[r * len..(r + 1) * len], layout, i);
    }
    s
}

/// Whether folding `count` chunks could overflow somewhere in group `g`: the f64 bound
/// `sum_r H*inv_scale_r` (at least the sum of magnitudes) against 2^127 (half of the f32
/// range, covering the fold's roundings). Only adversarial scales near `f32::MAX` hit it.
pub(crate) fn fold_may_overflow(
    received: &[u8],
    layout: &QuantLayout,
    count: usize,
    g: usize,
) -> bool {
    let len = layout.packed_len();
    let so = layout.scales_offset();
    let mut bound = 0.0f64;
    for r in 0..count {
        let s = read_f32(&received[r * len..(r + 1) * len], so + 4 * g) as f64;
        bound += s * layout.bits.half_levels() as f64;
    }
    bound >= 1.7014118346046923e38
}

/// Decode and reduce `count` packed chunks of `layout` (concatenated in rank order, as an
/// all-to-all or all-gather delivers them): `out[i] = fold_r(deQ_r[i]) / divisor` with the
/// rank-order fold `s = +0.0; for r in 0..count: s = s + deQ_r[i]` and one f32 division
/// (`divisor = 1` gives the sum).
/// Errors, before anything is written: a divisor that is not finite and positive, wrong
/// lengths, a bad scale, a sum that overflows.
pub fn dequantize_reduce(
    received: &[u8],
    layout: &QuantLayout,
    count: usize,
    divisor: f32,
    out: &mut [f32],
) -> Result<(), QuantError> {
    if !(divisor > 0.0 && divisor <= f32::MAX) {
        return Err(QuantError::Config(ConfigError::OutOfRange {
            which: Hyper::WorldSize,
            value: divisor as f64,
        }));
    }
    check_len(Buffer::Packed, count * layout.packed_len(), received.len())?;
    check_len(Buffer::Grad, layout.len, out.len())?;
    check_scales(Buffer::Packed, received, layout, count)?;
    for g in 0..layout.groups() {
        if fold_may_overflow(received, layout, count, g) {
            let (start, end) = layout.group_range(g);
            for i in start..end {
                if !(fold_peers(received, layout, count, i) / divisor).is_finite() {
                    return Err(QuantError::NonFinite {
                        buffer: Buffer::Packed,
                        index: i,
                    });
                }
            }
        }
    }
    fold_groups(received, layout, count, divisor, out);
    Ok(())
}

/// The rank-order fold of `count` chunks, group by group into `out` (no checks):
/// `out[i] = +0.0; for r in 0..count: out[i] = out[i] + deQ_r[i]; out[i] = out[i] / divisor`.
pub(crate) fn fold_groups(
    received: &[u8],
    layout: &QuantLayout,
    count: usize,
    divisor: f32,
    out: &mut [f32],
) {
    let len = layout.packed_len();
    let so = layout.scales_offset();
    for (g, og) in out.chunks_mut(layout.group_len).enumerate() {
        og.fill(0.0);
        let at = layout.group_code_offset(g);
        for r in 0..count {
            let chunk = &received[r * len..(r + 1) * len];
            dequantize_group_add(&chunk[at..], layout.bits, read_f32(chunk, so + 4 * g), og);
        }
        for o in og.iter_mut() {
            *o = *o / divisor;
        }
    }
}
