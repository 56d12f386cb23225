//! Shared helpers of the ABI tests: a seeded generator, adversarial bit patterns, typed
//! buffers and view constructors.
#![allow(dead_code)]

use adamant::{adamant_const_tensor, adamant_tensor};
use adamant_core::Element;

/// SplitMix64: small, seeded, reproducible.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    /// A float in `[-scale, scale)`.
    pub fn float(&mut self, scale: f32) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
}

/// f32 bit patterns that stress a formula: NaN payloads, signed zeros, subnormals,
/// infinities, extremes.
pub const SPECIAL_F32: [u32; 14] = [
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x0000_0001, // smallest subnormal
    0x807F_FFFF, // largest negative subnormal
    0x0080_0000, // smallest normal
    0x7F7F_FFFF, // largest finite
    0xFF7F_FFFF, // most negative finite
    0x7F80_0000, // +inf
    0xFF80_0000, // -inf
    0x7FC0_0000, // quiet NaN
    0xFFC0_0001, // negative NaN with payload
    0x7F80_0001, // signalling NaN
    0x3F80_0000, // 1
    0x2F80_0000, // tiny normal
];

/// A value for element `i`: mostly ordinary, sometimes special (when `specials`), as f32.
pub fn value(rng: &mut Rng, scale: f32, specials: bool, finite_only: bool) -> f32 {
    if specials && rng.chance(1, 6) {
        let b = SPECIAL_F32[rng.below(SPECIAL_F32.len() as u64) as usize];
        let x = f32::from_bits(b);
        if finite_only && !x.is_finite() {
            return 0.5;
        }
        return x;
    }
    rng.float(scale)
}

/// A buffer of `n` elements of `T`, each the storage of a generated f32 (nearest-even,
/// canonical NaN: what a framework would have stored).
pub fn buffer<T: Element>(
    rng: &mut Rng,
    n: usize,
    scale: f32,
    specials: bool,
    finite: bool,
) -> Vec<T> {
    (0..n)
        .map(|_| T::narrow(value(rng, scale, specials, finite)))
        .collect()
}

/// Raw bits of a buffer, for `==` comparisons.
pub fn bits<T: Element>(v: &[T]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits_u32()).collect()
}

pub fn view<T: Element>(v: &mut [T]) -> adamant_tensor {
    adamant_tensor {
        data: v.as_mut_ptr().cast(),
        dtype: T::DTYPE as u32,
        len: v.len(),
    }
}

pub fn cview<T: Element>(v: &[T]) -> adamant_const_tensor {
    adamant_const_tensor {
        data: v.as_ptr().cast(),
        dtype: T::DTYPE as u32,
        len: v.len(),
    }
}

pub fn empty_view() -> adamant_tensor {
    adamant_tensor {
        data: core::ptr::null_mut(),
        dtype: 0,
        len: 0,
    }
}

/// Call `$f::<P, G, S>()` for every parameter, gradient and state dtype.
#[macro_export]
macro_rules! for_all_dtypes {
    ($f:ident) => {{
        use adamant_core::{bf16, f16};
        $f::<f32, f32, f32>();
        $f::<f32, f32, bf16>();
        $f::<f32, bf16, f32>();
        $f::<f32, bf16, bf16>();
        $f::<f32, f16, f32>();
        $f::<f32, f16, bf16>();
        $f::<bf16, f32, f32>();
        $f::<bf16, f32, bf16>();
        $f::<bf16, bf16, f32>();
        $f::<bf16, bf16, bf16>();
        $f::<bf16, f16, f32>();
        $f::<bf16, f16, bf16>();
        $f::<f16, f32, f32>();
        $f::<f16, f32, bf16>();
        $f::<f16, bf16, f32>();
        $f::<f16, bf16, bf16>();
        $f::<f16, f16, f32>();
        $f::<f16, f16, bf16>();
    }};
}
