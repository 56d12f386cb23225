//! Shared helpers for the LoCo / quantizer tests (allocation is fine here).
#![allow(dead_code)]

/// A small deterministic generator (64-bit LCG, upper bits).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
    /// Approximately normal (sum of 4 uniforms).
    pub fn normal(&mut self) -> f32 {
        (self.unit() + self.unit() + self.unit() + self.unit()) * 0.866
    }
    /// A value with a wide exponent range.
    pub fn wide(&mut self) -> f32 {
        let e = (self.next_u32() % 60) as i32 - 30;
        self.unit() * 2f32.powi(e)
    }
}

/// Adversarial finite values: signed zeros, subnormals, extremes, ties.
pub fn adversarial(n: usize, seed: u64) -> Vec<f32> {
    let specials = [
        0.0f32,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::from_bits(0x007F_FFFF),
        f32::MAX,
        -f32::MAX,
        1.0,
        -1.0,
        0.5,
        -0.5,
        3.0e38,
        1e-30,
        -1e-30,
    ];
    let mut r = Lcg(seed);
    (0..n)
        .map(|_| {
            let k = r.next_u32() as usize % 4;
            if k == 0 {
                specials[r.next_u32() as usize % specials.len()]
            } else {
                r.wide()
            }
        })
        .collect()
}

/// Round half to even in f64 (test-side reference).
pub fn rne64(y: f64) -> f64 {
    let f = y.floor();
    let d = y - f;
    if d > 0.5 || (d == 0.5 && (f as i64) % 2 != 0) {
        f + 1.0
    } else {
        f
    }
}
