//! Input values of the matrix: a deterministic generator and the value families, produced as
//! raw bits of the storage type (f32, bf16 or f16).

use adamant_core::Dtype;

/// Deterministic generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
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
}

/// A family of input values. Every buffer of a tensor is drawn from its tensor's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Uniformly random bit patterns: NaNs with payloads of both signs, infinities,
    /// subnormals, zeros, everything.
    Bits,
    /// +0 and -0 mixed with wide-range values (the sign of zero must survive every op).
    Zeros,
    /// Subnormals of the storage type, +-0, the smallest normals and tiny normals whose
    /// products and quotients fall into the f32 subnormal range (`.ftz` shows here).
    Subnormal,
    /// Wide-range values with +-inf and NaNs (payloads) mixed in.
    Infinite,
    /// Huge (the top binades, up to MAX) and tiny (subnormal to 2^-100) values.
    Extreme,
    /// Every element of a buffer equal (one random wide-range value per buffer).
    Equal,
    /// Random sign and mantissa, exponents spread over 2^-40 .. 2^40 (storage range
    /// permitting): products are inexact and sums lose bits, so a fused multiply-add or a
    /// reassociated sum shows in the result.
    Wide,
    /// For reductions: subnormals small enough that a whole tile sums to a subnormal
    /// (buffers of odd length hold only these), and values near 2^-70 whose squares are
    /// subnormal (`.ftz` anywhere in a tree shows).
    Tiny,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 7] = [
        Family::Bits,
        Family::Zeros,
        Family::Subnormal,
        Family::Infinite,
        Family::Extreme,
        Family::Equal,
        Family::Wide,
    ];

    /// Families without NaN or infinity (for sums whose order must show in the bits).
    pub const FINITE: [Family; 5] = [
        Family::Zeros,
        Family::Subnormal,
        Family::Extreme,
        Family::Equal,
        Family::Wide,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Bits => "bits",
            Family::Zeros => "zeros",
            Family::Subnormal => "subnormal",
            Family::Infinite => "inf",
            Family::Extreme => "extreme",
            Family::Equal => "equal",
            Family::Wide => "wide",
            Family::Tiny => "tiny",
        }
    }
}

/// Field widths of a storage format: (exponent bits, mantissa bits).
fn format(dt: Dtype) -> (u32, u32) {
    match dt {
        Dtype::F32 => (8, 23),
        Dtype::Bf16 => (8, 7),
        Dtype::F16 => (5, 10),
    }
}

/// Bits of `sign`, biased exponent `e` and mantissa `m` in format `dt`.
fn pack(dt: Dtype, sign: bool, e: u32, m: u32) -> u32 {
    let (eb, mb) = format(dt);
    ((sign as u32) << (eb + mb)) | (e << mb) | (m & ((1 << mb) - 1))
}

/// One value in format `dt` with a random mantissa and an unbiased exponent in `lo..=hi`
/// (clamped to the normal range of the format).
fn wide_value(rng: &mut Rng, dt: Dtype, lo: i32, hi: i32) -> u32 {
    let (eb, mb) = format(dt);
    let bias = (1i32 << (eb - 1)) - 1;
    let emax = (1i32 << eb) - 2; // largest biased exponent of a normal
    let (lo_b, hi_b) = ((lo + bias).clamp(1, emax), (hi + bias).clamp(1, emax));
    let e = lo_b + rng.below((hi_b - lo_b + 1) as u64) as i32;
    let r = rng.next_u64();
    pack(dt, r & 1 == 1, e as u32, (r >> 8) as u32 & ((1 << mb) - 1))
}

fn value(rng: &mut Rng, dt: Dtype, fam: Family) -> u32 {
    let (eb, mb) = format(dt);
    let emax_b = (1u32 << eb) - 1; // inf/NaN exponent
    let bias = (1i32 << (eb - 1)) - 1;
    let r = rng.next_u64();
    let sign = r & 1 == 1;
    let man = (r >> 8) as u32 & ((1 << mb) - 1);
    let pick = (r >> 40) % 100;
    match fam {
        Family::Bits => (r >> 16) as u32 & ((1u64 << (1 + eb + mb)) - 1) as u32,
        Family::Zeros => {
            if pick < 50 {
                pack(dt, sign, 0, 0)
            } else {
                wide_value(rng, dt, -30, 10)
            }
        }
        Family::Subnormal => match pick {
            0..=39 => pack(dt, sign, 0, man.max(1)),
            40..=49 => pack(dt, sign, 0, 0),
            50..=59 => pack(dt, sign, 1, man),
            // Tiny normals: their products with the rules' scalars (0.1, 0.001, lr) land in
            // the f32 subnormal range.
            60..=84 => wide_value(rng, dt, -126, -100),
            _ => wide_value(rng, dt, -20, 4),
        },
        Family::Infinite => match pick {
            0..=14 => pack(dt, sign, emax_b, 0),
            15..=19 => pack(dt, sign, emax_b, man.max(1)),
            _ => wide_value(rng, dt, -30, 20),
        },
        Family::Extreme => {
            if pick < 50 {
                wide_value(rng, dt, bias - 8, bias)
            } else if pick < 75 {
                pack(dt, sign, 0, man.max(1))
            } else {
                wide_value(rng, dt, -200, -100)
            }
        }
        Family::Equal => unreachable!("handled per buffer"),
        Family::Wide => wide_value(rng, dt, -40, 40),
        Family::Tiny => {
            if pick < 50 {
                pack(dt, sign, 0, (man & 0x3FF).max(1))
            } else {
                wide_value(rng, dt, -75, -66)
            }
        }
    }
}

/// `n` values of family `fam` as raw bits of `dt`; `positive` clears the sign bit (second
/// moments), except for [`Family::Bits`] which keeps every pattern.
pub fn buffer(rng: &mut Rng, dt: Dtype, fam: Family, n: usize, positive: bool) -> Vec<u32> {
    let (eb, mb) = format(dt);
    let sign_bit = 1u32 << (eb + mb);
    let fix = |x: u32| {
        if positive && fam != Family::Bits {
            x & !sign_bit
        } else {
            x
        }
    };
    if fam == Family::Equal {
        let v = fix(wide_value(rng, dt, -20, 10));
        return vec![v; n];
    }
    if fam == Family::Tiny && n % 2 == 1 {
        // Odd lengths: only subnormals, so every partial sum of the buffer stays subnormal
        // (even lengths mix in values whose squares are subnormal).
        let (eb, mb) = format(dt);
        return (0..n)
            .map(|_| {
                let r = rng.next_u64();
                fix((((r & 1) as u32) << (eb + mb))
                    | ((r >> 8) as u32 & 0x3FF & ((1 << mb) - 1)).max(1))
            })
            .collect();
    }
    (0..n).map(|_| fix(value(rng, dt, fam))).collect()
}

/// One value of `fam` (for [`Family::Equal`]: one wide-range value), as [`buffer`] draws them.
pub fn one(rng: &mut Rng, dt: Dtype, fam: Family, positive: bool) -> u32 {
    let (eb, mb) = format(dt);
    let x = if fam == Family::Equal {
        wide_value(rng, dt, -20, 10)
    } else {
        value(rng, dt, fam)
    };
    if positive && fam != Family::Bits {
        x & !(1u32 << (eb + mb))
    } else {
        x
    }
}

/// Whether raw bits of `dt` encode a finite value.
pub fn is_finite(dt: Dtype, bits: u32) -> bool {
    let (eb, mb) = format(dt);
    let emax = (1u32 << eb) - 1;
    (bits >> mb) & emax != emax
}

/// Little-endian bytes of raw values of width `dt.size()`.
pub fn to_bytes(dt: Dtype, xs: &[u32]) -> Vec<u8> {
    let w = dt.size();
    let mut out = Vec::with_capacity(xs.len() * w);
    for x in xs {
        out.extend_from_slice(&x.to_le_bytes()[..w]);
    }
    out
}

/// Raw values of width `w` bytes from little-endian bytes.
pub fn from_bytes(bytes: &[u8], w: usize) -> Vec<u32> {
    bytes
        .chunks(w)
        .map(|c| {
            let mut b = [0u8; 4];
            b[..w].copy_from_slice(c);
            u32::from_le_bytes(b)
        })
        .collect()
}
