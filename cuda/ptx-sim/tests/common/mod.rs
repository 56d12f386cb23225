//! Shared helpers for the simulator's tests: the committed test PTX, a deterministic PRNG,
//! adversarial value families and typed device buffers over the `Backend` trait.
#![allow(dead_code)]

use adamant_cuda::backend::{Backend, LaunchShape};
use ptx_sim::Simulator;

pub const ELEMENTWISE: &str = include_str!("../kernels/elementwise.ptx");
pub const REDUCE: &str = include_str!("../kernels/reduce.ptx");
pub const SHUFFLES: &str = include_str!("../kernels/shuffles.ptx");
pub const INTOPS: &str = include_str!("../kernels/intops.ptx");
pub const FLOATOPS: &str = include_str!("../kernels/floatops.ptx");

/// A simulator with every test module registered under its file stem.
pub fn sim() -> Simulator {
    let mut s = Simulator::new();
    for (n, t) in [
        ("elementwise", ELEMENTWISE),
        ("reduce", REDUCE),
        ("shuffles", SHUFFLES),
        ("intops", INTOPS),
        ("floatops", FLOATOPS),
    ] {
        s.register_module(n, t)
            .unwrap_or_else(|e| panic!("{n}: {e}"));
    }
    s
}

pub fn shape(grid: u32, block: u32) -> LaunchShape {
    LaunchShape {
        grid: (grid, 1, 1),
        block: (block, 1, 1),
        shared_bytes: 0,
    }
}

/// xorshift64* - deterministic, dependency-free.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next() % n as u64) as u32
    }
}

/// Value families of the verification matrix.
#[derive(Clone, Copy, Debug)]
pub enum Family {
    /// Uniformly random bit patterns (NaN payloads of both signs, infinities, subnormals).
    RandomBits,
    /// +-0, +-inf, NaNs with payloads, MIN_POSITIVE, MAX, smallest subnormal, mixed with 1.0-ish.
    Specials,
    /// Subnormals only.
    Subnormals,
    /// Huge and tiny normals.
    HugeTiny,
    /// Everything equal.
    AllEqual,
    /// Ordinary training-like magnitudes.
    Ordinary,
}

pub const FAMILIES: [Family; 6] = [
    Family::RandomBits,
    Family::Specials,
    Family::Subnormals,
    Family::HugeTiny,
    Family::AllEqual,
    Family::Ordinary,
];

pub fn values(n: usize, fam: Family, rng: &mut Rng) -> Vec<f32> {
    const SPECIALS: [u32; 14] = [
        0x0000_0000,
        0x8000_0000,
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0000,
        0xFFC0_0001,
        0x7F80_0001,
        0x0080_0000,
        0x7F7F_FFFF,
        0xFF7F_FFFF,
        0x0000_0001,
        0x8000_0001,
        0x3F80_0000,
        0x3F80_0001,
    ];
    let fixed = f32::from_bits(0x3E4C_CCCD | (rng.u32() & 0xFF));
    (0..n)
        .map(|_| match fam {
            Family::RandomBits => f32::from_bits(rng.u32()),
            Family::Specials => {
                if rng.below(3) == 0 {
                    f32::from_bits(SPECIALS[rng.below(14) as usize])
                } else {
                    (rng.u32() as f32 / u32::MAX as f32 - 0.5) * 2.0
                }
            }
            Family::Subnormals => f32::from_bits((rng.u32() & 0x807F_FFFF) | (rng.below(2) << 31)),
            Family::HugeTiny => {
                let e = if rng.below(2) == 0 {
                    250 + rng.below(4)
                } else {
                    1 + rng.below(4)
                };
                f32::from_bits((rng.u32() & 0x807F_FFFF) | (e << 23))
            }
            Family::AllEqual => fixed,
            Family::Ordinary => (rng.u32() as f32 / u32::MAX as f32 - 0.5) * 0.02,
        })
        .collect()
}

pub fn to_bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect()
}
pub fn to_bytes_u32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn to_bytes_u16(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
pub fn from_bytes_u32(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}
pub fn from_bytes_u16(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Allocates `bytes.len() + offset` bytes and uploads `bytes` at `base + offset`;
/// returns the device address of the data.
pub fn put(b: &mut dyn Backend, bytes: &[u8], offset: usize) -> u64 {
    let base = b.alloc(bytes.len() + offset).unwrap();
    b.upload(base + offset as u64, bytes).unwrap();
    base + offset as u64
}

pub fn get(b: &mut dyn Backend, addr: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    b.download(addr, &mut out).unwrap();
    out
}
