//! Bit-exact PTX numeric semantics on the host.
//!
//! Decisions (see the crate docs for the reasoning):
//! - f32 results that are NaN are the canonical `0x7FFF_FFFF`, whatever the inputs' payloads.
//! - f64 results that are NaN are `0x7FFF_FFFF_FFFF_FFFF` (assumed by analogy; unconfirmed on
//!   hardware, so no bit-exact contract may depend on an f64 NaN's bits).
//! - f16 / bf16 NaN results are `0x7FFF`.
//! - `min`/`max`: a NaN operand loses to a number; two NaNs give the canonical NaN;
//!   `-0.0` is smaller than `+0.0`.
//! - `abs`/`neg` act on the sign bit only (NaN payloads pass through, as the hardware's
//!   sign-bit logic does).

/// Canonical f32 NaN bits.
pub const NAN32: u32 = 0x7FFF_FFFF;
/// Canonical f64 NaN bits (assumption, see module docs).
pub const NAN64: u64 = 0x7FFF_FFFF_FFFF_FFFF;
/// Canonical f16 / bf16 NaN bits.
pub const NAN16: u16 = 0x7FFF;

/// Returns the f32 bits of `x`, canonical if NaN.
#[inline]
pub fn canon32(x: f32) -> u32 {
    if x.is_nan() {
        NAN32
    } else {
        x.to_bits()
    }
}

/// Returns the f64 bits of `x`, canonical if NaN.
#[inline]
pub fn canon64(x: f64) -> u64 {
    if x.is_nan() {
        NAN64
    } else {
        x.to_bits()
    }
}

/// Flushes an f32 subnormal to zero of the same sign (permissive `.ftz` mode only).
#[inline]
pub fn ftz32(x: f32) -> f32 {
    if x.is_subnormal() {
        f32::from_bits(x.to_bits() & 0x8000_0000)
    } else {
        x
    }
}

/// PTX `min.f32` / `max.f32` (not the `.NaN` variants).
#[inline]
pub fn minmax32(a: f32, b: f32, max: bool) -> u32 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => NAN32,
        (true, false) => b.to_bits(),
        (false, true) => a.to_bits(),
        _ => {
            if a == b {
                // Equal values differ only in the sign of zero: -0 < +0.
                let (ab, bb) = (a.to_bits(), b.to_bits());
                if max {
                    ab & bb
                } else {
                    ab | bb
                }
            } else if (a < b) != max {
                a.to_bits()
            } else {
                b.to_bits()
            }
        }
    }
}

/// PTX `min.f64` / `max.f64`, same rules as f32.
#[inline]
pub fn minmax64(a: f64, b: f64, max: bool) -> u64 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => NAN64,
        (true, false) => b.to_bits(),
        (false, true) => a.to_bits(),
        _ => {
            if a == b {
                let (ab, bb) = (a.to_bits(), b.to_bits());
                if max {
                    ab & bb
                } else {
                    ab | bb
                }
            } else if (a < b) != max {
                a.to_bits()
            } else {
                b.to_bits()
            }
        }
    }
}

/// f32 -> bf16, round to nearest even; NaN -> `0x7FFF`.
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    if x.is_nan() {
        return NAN16;
    }
    let u = x.to_bits();
    let lsb = (u >> 16) & 1;
    (u.wrapping_add(0x7FFF + lsb) >> 16) as u16
}

/// f32 -> f16, round to nearest even (overflow to inf); NaN -> `0x7FFF`.
#[inline]
pub fn f32_to_f16(x: f32) -> u16 {
    if x.is_nan() {
        return NAN16;
    }
    half::f16::from_f32(x).to_bits()
}

/// f64 -> f16, round to nearest even, single rounding; NaN -> `0x7FFF`.
#[inline]
pub fn f64_to_f16(x: f64) -> u16 {
    if x.is_nan() {
        return NAN16;
    }
    half::f16::from_f64(x).to_bits()
}

/// Rounds to an integral value in the given mode (`.rni .rzi .rmi .rpi`).
#[inline]
pub fn round_int(x: f64, rnd: crate::ir::Rnd) -> f64 {
    use crate::ir::Rnd;
    match rnd {
        Rnd::Rni => x.round_ties_even(),
        Rnd::Rzi => x.trunc(),
        Rnd::Rmi => x.floor(),
        Rnd::Rpi => x.ceil(),
        _ => x,
    }
}

/// Float-to-integer conversion: round as `rnd` says, then clamp to the destination range;
/// NaN -> 0 (PTX saturates float-to-integer conversions).
#[inline]
pub fn f_to_int(x: f64, rnd: crate::ir::Rnd, bits: u32, signed: bool) -> u64 {
    let r = round_int(x, rnd);
    if r.is_nan() {
        return 0;
    }
    match (bits, signed) {
        (8, false) => r as u8 as u64,
        (16, false) => r as u16 as u64,
        (32, false) => r as u32 as u64,
        (64, false) => r as u64,
        (8, true) => r as i8 as i64 as u64,
        (16, true) => r as i16 as i64 as u64,
        (32, true) => r as i32 as i64 as u64,
        _ => r as i64 as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Rnd;

    #[test]
    fn min_max_nan_and_signed_zero() {
        let nan = f32::from_bits(0xFFC0_1234);
        assert_eq!(minmax32(nan, 1.5, false), 1.5f32.to_bits());
        assert_eq!(minmax32(-2.0, nan, true), (-2.0f32).to_bits());
        assert_eq!(minmax32(nan, nan, false), NAN32);
        assert_eq!(minmax32(0.0, -0.0, false), 0x8000_0000);
        assert_eq!(minmax32(-0.0, 0.0, false), 0x8000_0000);
        assert_eq!(minmax32(0.0, -0.0, true), 0);
        assert_eq!(minmax32(-0.0, -0.0, true), 0x8000_0000);
        assert_eq!(minmax32(f32::from_bits(1), 0.0, true), 1);
        assert_eq!(minmax64(-0.0, 0.0, true), 0);
        assert_eq!(minmax64(f64::NAN, f64::NAN, true), NAN64);
    }

    #[test]
    fn canonical_nans() {
        assert_eq!(canon32(f32::from_bits(0xFFC0_0000)), NAN32);
        assert_eq!(canon32(f32::INFINITY - f32::INFINITY), NAN32);
        assert_eq!(canon32(-0.0), 0x8000_0000);
        assert_eq!(canon64(f64::from_bits(0xFFF8_0000_0000_0001)), NAN64);
        assert_eq!(f32_to_bf16(f32::from_bits(0xFF80_0001)), NAN16);
        assert_eq!(f32_to_f16(f32::NAN), NAN16);
    }

    #[test]
    fn bf16_and_f16_rounding_ties_to_even() {
        assert_eq!(f32_to_bf16(f32::from_bits(0x3F80_8000)), 0x3F80); // tie, even stays
        assert_eq!(f32_to_bf16(f32::from_bits(0x3F81_8000)), 0x3F82); // tie, odd rounds up
        assert_eq!(f32_to_bf16(f32::from_bits(0x7F7F_FFFF)), 0x7F80); // overflow to inf
        assert_eq!(f32_to_bf16(f32::from_bits(0x0000_0001)), 0x0000); // subnormal rounds to 0
        assert_eq!(f32_to_f16(65520.0), 0x7C00);
        assert_eq!(f32_to_f16(65519.0), 0x7BFF);
        assert_eq!(f32_to_f16(f32::from_bits(0x3300_0001)), 0x0001);
    }

    #[test]
    fn float_to_int_saturates_and_maps_nan_to_zero() {
        assert_eq!(f_to_int(f64::NAN, Rnd::Rzi, 32, true), 0);
        assert_eq!(f_to_int(3e9, Rnd::Rzi, 32, true), i32::MAX as u64);
        assert_eq!(f_to_int(-3e9, Rnd::Rzi, 32, true) as u32, i32::MIN as u32);
        assert_eq!(f_to_int(-1.5, Rnd::Rni, 32, false), 0);
        assert_eq!(f_to_int(2.5, Rnd::Rni, 32, false), 2);
        assert_eq!(f_to_int(3.5, Rnd::Rni, 32, false), 4);
        assert_eq!(f_to_int(-2.5, Rnd::Rmi, 64, true) as i64, -3);
        assert_eq!(f_to_int(2.1, Rnd::Rpi, 64, true), 3);
        assert_eq!(f_to_int(1e30, Rnd::Rzi, 64, false), u64::MAX);
    }
}
