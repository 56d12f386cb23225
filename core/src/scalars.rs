//! Per-step scalars by the contract's f64 recipe (numeric contract item 5).
//!
//! `beta^t` is computed by left-to-right square-and-multiply over the bits of `t` in f64;
//! then `1 - beta^t`, `lr / bc1`, `sqrt(bc2)` and the like are formed in f64 and each is
//! rounded once to f32. f64 `+ - * / sqrt` are correctly rounded on every CPU and GPU, so
//! the same recipe inside a CUDA kernel (device-resident `lr` and `step`) gives the same
//! bits. No `pow`/`exp`/`log` from a math library appears here.
//!
//! This module does not know any rule: each rule module builds its own scalar struct from
//! these pieces.

/// `base^t` by left-to-right square-and-multiply over the bits of `t` (f64, each product
/// rounded): `r = 1; for bit in t from the highest set bit down: r = r*r; if bit: r = r*base`.
/// `t = 0` gives exactly 1.
#[inline]
pub fn pow_u64(base: f64, t: u64) -> f64 {
    let mut r = 1.0f64;
    if t == 0 {
        return r;
    }
    let top = 63 - t.leading_zeros();
    let mut i = top as i32;
    while i >= 0 {
        r *= r;
        if (t >> i) & 1 == 1 {
            r *= base;
        }
        i -= 1;
    }
    r
}

/// `bias_correction = 1 - beta^t` (f64), with `beta^t` from [`pow_u64`].
#[inline]
pub fn bias_correction(beta: f64, t: u64) -> f64 {
    1.0 - pow_u64(beta, t)
}

/// Correctly rounded f64 square root (`libm::sqrt`, IEEE exact on every platform).
#[inline]
pub fn sqrt_f64(x: f64) -> f64 {
    libm::sqrt(x)
}

/// Round an f64 to f32, nearest-even (Rust's `as` is IEEE round-to-nearest-even).
#[inline(always)]
pub fn to_f32(x: f64) -> f32 {
    x as f32
}

/// Correctly rounded f32 square root. Core's slice kernels are generic over it so that the
/// std-side driver can supply the hardware instruction (which vectorizes); every
/// implementation must return the IEEE result, and [`LibmSqrt`] is the reference.
pub trait Sqrt: Copy + Send + Sync + 'static {
    /// IEEE-754 square root, round to nearest even.
    fn sqrt(x: f32) -> f32;
}

/// Software square root from `libm` (correctly rounded; slow but available without `std`).
#[derive(Clone, Copy, Debug, Default)]
pub struct LibmSqrt;

impl Sqrt for LibmSqrt {
    #[inline(always)]
    fn sqrt(x: f32) -> f32 {
        libm::sqrtf(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanity_pow_small_exponents() {
        assert_eq!(pow_u64(0.9, 0), 1.0);
        assert_eq!(pow_u64(0.9, 1), 0.9);
        assert_eq!(pow_u64(0.9, 2), 0.9 * 0.9);
        // t = 3 = 0b11: r = 1*1*b = b; r = b*b*b.
        assert_eq!(pow_u64(0.9, 3), (0.9f64 * 0.9) * 0.9);
        // t = 4 = 0b100: ((b)^2)^2.
        let b2 = 0.999f64 * 0.999;
        assert_eq!(pow_u64(0.999, 4), b2 * b2);
    }

    #[test]
    fn conformance_pow_order_is_pinned() {
        // t = 5 = 0b101: r=b; r=b^2; r=(b^2)^2*b. A right-to-left loop gives b * b^4 with a
        // different rounding for some bases; pin the bits of the contract's order.
        let b = 0.999f64;
        let want = ((b * b) * (b * b)) * b;
        assert_eq!(pow_u64(b, 5).to_bits(), want.to_bits());
        let t = 1_000_003u64;
        let mut r = 1.0f64;
        for i in (0..64 - t.leading_zeros()).rev() {
            r *= r;
            if (t >> i) & 1 == 1 {
                r *= b;
            }
        }
        assert_eq!(pow_u64(b, t).to_bits(), r.to_bits());
    }

    #[test]
    fn sanity_bias_correction_tends_to_one() {
        assert!((bias_correction(0.9, 1) - 0.1).abs() < 1e-15);
        assert_eq!(bias_correction(0.9, 100_000), 1.0);
        assert_eq!(bias_correction(0.0, 1), 1.0);
    }

    #[test]
    fn spec_libm_sqrt_is_ieee_on_edges() {
        for b in [
            0u32,
            0x8000_0000,
            1,
            0x007F_FFFF,
            0x0080_0000,
            0x3F80_0000,
            0x7F7F_FFFF,
            0x7F80_0000,
        ] {
            let x = f32::from_bits(b);
            let r = LibmSqrt::sqrt(x);
            let want = (x as f64).sqrt() as f32; // exact: f64 sqrt of an f32 rounds correctly to f32
            assert_eq!(r.to_bits(), want.to_bits(), "{b:#x}");
        }
        assert!(LibmSqrt::sqrt(-1.0).is_nan());
    }
}
