//! Shared helpers for core's integration tests: adversarial value families, a deterministic
//! generator, bit views of buffers and an FNV-1a hash.
#![allow(dead_code)]

use adamant_core::{Dtype, Element};

/// f32 bit patterns every test should meet: NaNs with payloads and both signs, +-0,
/// subnormals, +-inf, the extremes, and values that round at the storage boundaries.
pub const F32_FAMILY: &[u32] = &[
    0x0000_0000, // +0
    0x8000_0000, // -0
    0x0000_0001, // smallest subnormal
    0x8000_0001,
    0x007F_FFFF, // largest subnormal
    0x807F_FFFF,
    0x0040_0000,
    0x0080_0000, // f32::MIN_POSITIVE
    0x8080_0000,
    0x7F7F_FFFF, // f32::MAX
    0xFF7F_FFFF, // f32::MIN
    0x7F80_0000, // +inf
    0xFF80_0000, // -inf
    0x7FC0_0000, // quiet NaN
    0xFFC0_0000, // negative quiet NaN
    0x7F80_0001, // signalling NaN, payload 1
    0xFF80_0001,
    0x7FFF_FFFF, // canonical NaN
    0x7FA5_A5A5, // NaN with payload
    0xFFD0_0DAD,
    0x3F80_0000, // 1
    0xBF80_0000, // -1
    0x3F80_8000, // 1 + bf16 half-ulp: a bf16 tie
    0x3F81_8000, // bf16 tie with odd kept part
    0x3F80_1000, // 1 + f16 half-ulp: an f16 tie
    0x477F_F000, // 65520: f16 rounds to inf
    0x477F_E000, // 65504 = f16::MAX
    0x3880_0000, // 2^-14: smallest f16 normal
    0x3380_0000, // 2^-24: smallest f16 subnormal
    0x3300_0000, // 2^-25: ties to zero in f16
    0x0D00_0000, // tiny
    0x7E00_0000, // huge
    0x2000_0000,
    0x6000_0000,
];

/// bf16 patterns (NaN payloads, subnormals, extremes).
pub const BF16_FAMILY: &[u16] = &[
    0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0,
    0x7F81, 0xFF81, 0x7FFF, 0x7FA5, 0x3F80, 0xBF80, 0x3F81, 0x0D00, 0x7E00,
];

/// f16 patterns (NaN payloads, subnormals, extremes).
pub const F16_FAMILY: &[u16] = &[
    0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFE00,
    0x7C01, 0xFC01, 0x7FFF, 0x7D5A, 0x3C00, 0xBC00, 0x3C01, 0x0200, 0x7800,
];

/// The adversarial patterns of `T`'s width.
pub fn family<T: Element>() -> &'static [u32] {
    // Stored widened to u32 so one code path serves every type.
    use std::sync::OnceLock;
    static BF: OnceLock<Vec<u32>> = OnceLock::new();
    static HF: OnceLock<Vec<u32>> = OnceLock::new();
    match T::DTYPE {
        Dtype::F32 => F32_FAMILY,
        Dtype::Bf16 => BF.get_or_init(|| BF16_FAMILY.iter().map(|&b| b as u32).collect()),
        Dtype::F16 => HF.get_or_init(|| F16_FAMILY.iter().map(|&b| b as u32).collect()),
    }
}

/// Deterministic SplitMix64 generator (the tests' own, independent of core).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `[-1, 1)`.
    pub fn symmetric(&mut self) -> f64 {
        2.0 * self.uniform() - 1.0
    }
    /// Approximately standard normal (sum of 4 uniforms, rescaled): cheap and deterministic.
    pub fn normalish(&mut self) -> f64 {
        let s: f64 = (0..4).map(|_| self.uniform()).sum();
        (s - 2.0) * 1.732_050_807_568_877_2
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// An ordinary value of `T` near `scale`: what a trainer's tensors mostly hold.
pub fn ordinary<T: Element>(rng: &mut Rng, scale: f64) -> T {
    T::narrow((rng.normalish() * scale) as f32)
}

/// A mixed value: one in `1/adversarial_every` comes from the adversarial family or random
/// bits, the rest are ordinary.
pub fn mixed<T: Element>(rng: &mut Rng, scale: f64, adversarial_every: u64) -> T {
    if adversarial_every != 0 && rng.below(adversarial_every) == 0 {
        if rng.below(2) == 0 {
            let fam = family::<T>();
            T::from_bits_u32(fam[rng.below(fam.len() as u64) as usize])
        } else {
            T::from_bits_u32(rng.next_u64() as u32)
        }
    } else {
        ordinary(rng, scale)
    }
}

/// Bits of a buffer, widened to u32.
pub fn bits<T: Element>(x: &[T]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits_u32()).collect()
}

/// FNV-1a 64 over the little-endian bytes of every element's bits (element width bytes).
pub fn fnv1a<T: Element>(mut h: u64, x: &[T]) -> u64 {
    let w = T::DTYPE.size();
    for v in x {
        let b = v.to_bits_u32().to_le_bytes();
        for &byte in &b[..w] {
            h ^= byte as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}

/// FNV-1a 64 offset basis.
pub const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

/// Positions where two bit vectors differ (first few), for failure messages.
pub fn first_diffs(a: &[u32], b: &[u32]) -> Vec<(usize, u32, u32)> {
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| (i, *x, *y))
        .take(4)
        .collect()
}
