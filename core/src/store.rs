//! Storage types: exact widening to f32, round-to-nearest-even narrowing by integer bit
//! operations, canonical NaNs (numeric contract items 3 and 4), and stochastic rounding of
//! bf16 parameters from a counter-based generator.
//!
//! Every function here is integer code (plus the exact f32 <-> bits moves), so the CUDA
//! mirror (`cuda/kernels/store.cuh`) can reproduce it operation for operation. This module
//! does not do arithmetic on values: rules do.
//!
//! `half`'s own `from_f32` is not used on the store path: it keeps NaN payloads and signs,
//! where the contract stores the canonical NaN that NVIDIA hardware produces.

use half::{bf16, f16};

/// Canonical f32 NaN, `0x7FFF_FFFF`: what NVIDIA f32 arithmetic returns for every NaN.
pub const CANONICAL_NAN_F32: u32 = 0x7FFF_FFFF;
/// Canonical bf16 NaN, `0x7FFF`.
pub const CANONICAL_NAN_BF16: u16 = 0x7FFF;
/// Canonical f16 NaN, `0x7FFF`.
pub const CANONICAL_NAN_F16: u16 = 0x7FFF;

/// The element types a buffer may hold. The integer values are stable (they cross the C ABI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Dtype {
    /// IEEE binary32.
    F32 = 0,
    /// bfloat16: the top 16 bits of an f32.
    Bf16 = 1,
    /// IEEE binary16.
    F16 = 2,
}

impl Dtype {
    /// Every dtype, in ABI order.
    pub const ALL: [Dtype; 3] = [Dtype::F32, Dtype::Bf16, Dtype::F16];

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::Bf16 | Dtype::F16 => 2,
        }
    }

    /// Lower-case name as used in kernel names and CLI output (`f32`, `bf16`, `f16`).
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
            Dtype::F16 => "f16",
        }
    }

    /// The dtype with ABI value `v`, if any.
    pub const fn from_u32(v: u32) -> Option<Dtype> {
        match v {
            0 => Some(Dtype::F32),
            1 => Some(Dtype::Bf16),
            2 => Some(Dtype::F16),
            _ => None,
        }
    }
}

impl core::fmt::Display for Dtype {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// `x` with every NaN replaced by the canonical `0x7FFF_FFFF`; all other bits unchanged.
#[inline(always)]
pub fn canonicalize_f32(x: f32) -> f32 {
    if x.is_nan() {
        f32::from_bits(CANONICAL_NAN_F32)
    } else {
        x
    }
}

/// bf16 bits -> f32, exact: the bf16 pattern becomes the top half of the f32 pattern.
#[inline(always)]
pub const fn bf16_bits_to_f32_bits(h: u16) -> u32 {
    (h as u32) << 16
}

/// f32 bits -> bf16 bits, round to nearest, ties to even; NaN -> `0x7FFF`.
///
/// Adding `0x7FFF + lsb` carries into bit 16 exactly when the dropped half is above the tie,
/// or equal to it with an odd kept part; finite values past bf16's range carry into the
/// exponent and become +-inf, as IEEE rounding requires.
#[inline(always)]
pub const fn f32_bits_to_bf16_bits(x: u32) -> u16 {
    if x & 0x7FFF_FFFF > 0x7F80_0000 {
        return CANONICAL_NAN_BF16;
    }
    let lsb = (x >> 16) & 1;
    (x.wrapping_add(0x7FFF + lsb) >> 16) as u16
}

/// f32 bits -> bf16 bits, stochastic rounding with 16 random bits `r16` (`0..=0xFFFF`);
/// NaN -> `0x7FFF`.
///
/// Adding `r16` below the kept bits carries into them with probability (dropped part)/2^16, so
/// the expected stored value equals `x`. Exactly representable values never change; values
/// within one bf16 step of the largest finite one may become +-inf.
#[inline(always)]
pub const fn f32_bits_to_bf16_bits_stochastic(x: u32, r16: u32) -> u16 {
    if x & 0x7FFF_FFFF > 0x7F80_0000 {
        return CANONICAL_NAN_BF16;
    }
    (x.wrapping_add(r16 & 0xFFFF) >> 16) as u16
}

/// f16 bits -> f32 bits, exact (subnormals normalized, NaN payload kept, +-0 and +-inf kept).
#[inline(always)]
pub const fn f16_bits_to_f32_bits(h: u16) -> u32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let exp = (h >> 10) & 0x1F;
    let man = h & 0x3FF;
    if exp == 0x1F {
        sign | 0x7F80_0000 | (man << 13)
    } else if exp != 0 {
        // Rebias 15 -> 127.
        sign | ((exp + 112) << 23) | (man << 13)
    } else if man == 0 {
        sign
    } else {
        // Subnormal m * 2^-24: shift the leading one into the hidden-bit position.
        let shift = man.leading_zeros() - 21; // 1..=10
        sign | ((113 - shift) << 23) | (((man << shift) & 0x3FF) << 13)
    }
}

/// f32 bits -> f16 bits, round to nearest, ties to even; overflow -> +-inf; NaN -> `0x7FFF`.
#[inline(always)]
pub const fn f32_bits_to_f16_bits(x: u32) -> u16 {
    let sign = ((x >> 16) & 0x8000) as u16;
    let a = x & 0x7FFF_FFFF;
    if a > 0x7F80_0000 {
        return CANONICAL_NAN_F16;
    }
    if a >= 0x477F_F000 {
        // 65520 = halfway between f16::MAX (65504) and 65536: ties-to-even rounds it up to inf.
        return sign | 0x7C00;
    }
    if a >= 0x3880_0000 {
        // Normal f16 range [2^-14, 65520): rebias 127 -> 15, then round 13 dropped bits.
        let r = a - 0x3800_0000;
        let lsb = (r >> 13) & 1;
        return sign | ((r + 0x0FFF + lsb) >> 13) as u16;
    }
    if a <= 0x3300_0000 {
        // |x| <= 2^-25: at most half of the smallest subnormal; the tie goes to even (zero).
        return sign;
    }
    // Subnormal result: mantissa = round(|x| * 2^24); 1024 correctly encodes 2^-14.
    let exp = a >> 23; // 102..=112
    let man = (a & 0x7F_FFFF) | 0x80_0000;
    let shift = 126 - exp; // 14..=24
    let q = man >> shift;
    let rem = man & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let up = (rem > half || (rem == half && (q & 1) == 1)) as u32;
    sign | (q + up) as u16
}

/// A buffer element type: loads widen exactly to f32, stores narrow by the contract's rounding.
pub trait Element: Copy + Send + Sync + 'static {
    /// The dtype tag of this type.
    const DTYPE: Dtype;
    /// Exact widening to f32.
    fn widen(self) -> f32;
    /// Round-to-nearest-even narrowing with canonical NaN.
    fn narrow(x: f32) -> Self;
    /// Narrowing with stochastic rounding from 16 random bits; only bf16 rounds
    /// stochastically, f32 and f16 round to nearest (the bits `r16` are ignored).
    fn narrow_stochastic(x: f32, r16: u32) -> Self;
    /// Whether the stored value is finite (not +-inf, not NaN), read from the bits.
    fn is_finite_bits(self) -> bool;
    /// The raw bits, zero-extended.
    fn to_bits_u32(self) -> u32;
    /// The element with raw bits `b` (truncated to the type's width).
    fn from_bits_u32(b: u32) -> Self;
}

/// Element types allowed for optimizer states (f32 and bf16).
pub trait StateElement: Element {}

impl Element for f32 {
    const DTYPE: Dtype = Dtype::F32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[inline(always)]
    fn narrow(x: f32) -> f32 {
        canonicalize_f32(x)
    }
    #[inline(always)]
    fn narrow_stochastic(x: f32, _r16: u32) -> f32 {
        canonicalize_f32(x)
    }
    #[inline(always)]
    fn is_finite_bits(self) -> bool {
        self.to_bits() & 0x7F80_0000 != 0x7F80_0000
    }
    #[inline(always)]
    fn to_bits_u32(self) -> u32 {
        self.to_bits()
    }
    #[inline(always)]
    fn from_bits_u32(b: u32) -> f32 {
        f32::from_bits(b)
    }
}
impl StateElement for f32 {}

impl Element for bf16 {
    const DTYPE: Dtype = Dtype::Bf16;
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits(bf16_bits_to_f32_bits(self.to_bits()))
    }
    #[inline(always)]
    fn narrow(x: f32) -> bf16 {
        bf16::from_bits(f32_bits_to_bf16_bits(x.to_bits()))
    }
    #[inline(always)]
    fn narrow_stochastic(x: f32, r16: u32) -> bf16 {
        bf16::from_bits(f32_bits_to_bf16_bits_stochastic(x.to_bits(), r16))
    }
    #[inline(always)]
    fn is_finite_bits(self) -> bool {
        self.to_bits() & 0x7F80 != 0x7F80
    }
    #[inline(always)]
    fn to_bits_u32(self) -> u32 {
        self.to_bits() as u32
    }
    #[inline(always)]
    fn from_bits_u32(b: u32) -> bf16 {
        bf16::from_bits(b as u16)
    }
}
impl StateElement for bf16 {}

impl Element for f16 {
    const DTYPE: Dtype = Dtype::F16;
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits(f16_bits_to_f32_bits(self.to_bits()))
    }
    #[inline(always)]
    fn narrow(x: f32) -> f16 {
        f16::from_bits(f32_bits_to_f16_bits(x.to_bits()))
    }
    #[inline(always)]
    fn narrow_stochastic(x: f32, _r16: u32) -> f16 {
        f16::from_bits(f32_bits_to_f16_bits(x.to_bits()))
    }
    #[inline(always)]
    fn is_finite_bits(self) -> bool {
        self.to_bits() & 0x7C00 != 0x7C00
    }
    #[inline(always)]
    fn to_bits_u32(self) -> u32 {
        self.to_bits() as u32
    }
    #[inline(always)]
    fn from_bits_u32(b: u32) -> f16 {
        f16::from_bits(b as u16)
    }
}

/// Counter-based random bits for stochastic rounding: a pure function of
/// `(seed, step, index)`, so every backend, thread split and shard draws the same bits for
/// the same element of the same step.
///
/// `z = seed + step*0x9E3779B97F4A7C15 + index*0xD1B54A32D192ED03 (mod 2^64)`, then the
/// SplitMix64 finalizer; the top 16 bits are returned. Only 64-bit integer add, multiply,
/// xor and shift, which PTX has.
#[inline(always)]
pub const fn stochastic_bits(seed: u64, step: u64, index: u64) -> u32 {
    let mut z = seed
        .wrapping_add(step.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 48) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_nan_bf16(b: u16) -> bool {
        b & 0x7FFF > 0x7F80
    }
    fn is_nan_f16(b: u16) -> bool {
        b & 0x7FFF > 0x7C00
    }

    #[test]
    fn spec_bf16_widen_then_narrow_is_identity_on_all_bits() {
        for b in 0..=u16::MAX {
            let want = if is_nan_bf16(b) {
                CANONICAL_NAN_BF16
            } else {
                b
            };
            assert_eq!(
                f32_bits_to_bf16_bits(bf16_bits_to_f32_bits(b)),
                want,
                "bits {b:#06x}"
            );
        }
    }

    #[test]
    fn spec_f16_widen_matches_half_and_round_trips_on_all_bits() {
        for b in 0..=u16::MAX {
            let ours = f16_bits_to_f32_bits(b);
            let theirs = f16::from_bits(b).to_f32().to_bits();
            if is_nan_f16(b) {
                assert!(f32::from_bits(ours).is_nan(), "bits {b:#06x}");
                assert_eq!(f32_bits_to_f16_bits(ours), CANONICAL_NAN_F16);
            } else {
                assert_eq!(ours, theirs, "bits {b:#06x}");
                assert_eq!(f32_bits_to_f16_bits(ours), b, "bits {b:#06x}");
            }
        }
    }

    /// Reference RNE narrowing through f64 (exact for these magnitudes) to check the
    /// integer code on values that are not representable.
    fn f16_reference(x: f32) -> u16 {
        if x.is_nan() {
            return CANONICAL_NAN_F16;
        }
        // half's conversion is RNE for non-NaN inputs.
        f16::from_f32(x).to_bits()
    }

    #[test]
    fn conformance_f32_to_f16_against_half_on_a_dense_sweep() {
        // Every 61st f32 pattern plus the neighbourhoods of every rounding boundary.
        let mut b: u32 = 0;
        loop {
            let x = f32::from_bits(b);
            assert_eq!(
                f32_bits_to_f16_bits(b),
                f16_reference(x),
                "bits {b:#010x} ({x:e})"
            );
            match b.checked_add(61) {
                Some(n) => b = n,
                None => break,
            }
        }
        for base in [
            0x3300_0000u32,
            0x3880_0000,
            0x477F_F000,
            0x477F_E000,
            0x3380_0000,
        ] {
            for d in 0..4096u32 {
                for s in [0u32, 0x8000_0000] {
                    let b = (base - 2048 + d) | s;
                    assert_eq!(f32_bits_to_f16_bits(b), f16_reference(f32::from_bits(b)));
                }
            }
        }
    }

    #[test]
    fn conformance_f32_to_bf16_ties() {
        // 1.0 + half an ulp of bf16 (tie, kept lsb even) rounds down to 1.0.
        assert_eq!(f32_bits_to_bf16_bits(0x3F80_8000), 0x3F80);
        // tie with odd kept lsb rounds up to even.
        assert_eq!(f32_bits_to_bf16_bits(0x3F81_8000), 0x3F82);
        // just above the tie rounds up.
        assert_eq!(f32_bits_to_bf16_bits(0x3F80_8001), 0x3F81);
        // largest finite f32 overflows to inf; -inf stays.
        assert_eq!(f32_bits_to_bf16_bits(0x7F7F_FFFF), 0x7F80);
        assert_eq!(f32_bits_to_bf16_bits(0xFF80_0000), 0xFF80);
        // NaN with payload and sign -> canonical.
        assert_eq!(f32_bits_to_bf16_bits(0xFFC0_1234), 0x7FFF);
        // subnormals keep their rounding.
        assert_eq!(f32_bits_to_bf16_bits(0x0000_8000), 0x0000);
        assert_eq!(f32_bits_to_bf16_bits(0x0001_8000), 0x0002);
    }

    #[test]
    fn conformance_f32_to_bf16_against_half_on_a_sweep() {
        let mut b: u32 = 0;
        loop {
            let x = f32::from_bits(b);
            let want = if x.is_nan() {
                CANONICAL_NAN_BF16
            } else {
                bf16::from_f32(x).to_bits()
            };
            assert_eq!(f32_bits_to_bf16_bits(b), want, "bits {b:#010x}");
            match b.checked_add(97) {
                Some(n) => b = n,
                None => break,
            }
        }
    }

    #[test]
    fn spec_stochastic_rounding_keeps_representable_values_and_is_unbiased() {
        for b in [0x3F80_0000u32, 0xBF80_0000, 0, 0x8000_0000, 0x7F80_0000] {
            for r in [0u32, 1, 0x7FFF, 0xFFFF] {
                assert_eq!(
                    f32_bits_to_bf16_bits_stochastic(b, r) as u32,
                    b >> 16,
                    "{b:#x} {r:#x}"
                );
            }
        }
        assert_eq!(f32_bits_to_bf16_bits_stochastic(0x7FC0_0001, 5), 0x7FFF);
        // x = 1 + 0.25 ulp: rounds up with probability 1/4.
        let x = 0x3F80_4000u32;
        let ups = (0..65536u64)
            .filter(|&i| f32_bits_to_bf16_bits_stochastic(x, stochastic_bits(7, 3, i)) == 0x3F81)
            .count();
        assert!((15_000..17_800).contains(&ups), "ups = {ups}");
    }

    #[test]
    fn sanity_stochastic_bits_depend_on_every_key() {
        let a = stochastic_bits(1, 2, 3);
        assert_ne!(a, stochastic_bits(2, 2, 3));
        assert_ne!(a, stochastic_bits(1, 3, 3));
        assert_ne!(a, stochastic_bits(1, 2, 4));
        assert!(a <= 0xFFFF);
    }

    #[test]
    fn spec_element_finite_checks() {
        assert!(!f32::INFINITY.is_finite_bits());
        assert!(!f32::from_bits(0x7FC0_0000).is_finite_bits());
        assert!(f32::MAX.is_finite_bits());
        assert!(!bf16::from_bits(0xFF80).is_finite_bits());
        assert!(bf16::from_bits(0x7F7F).is_finite_bits());
        assert!(!f16::from_bits(0x7C01).is_finite_bits());
        assert!(f16::from_bits(0x7BFF).is_finite_bits());
    }
}
