//! f32/f64 semantics: `.rn` arithmetic with canonical NaN, min/max with NaN and signed zero,
//! ordered and unordered compares, conversions (int<->float, f32<->f64, bf16/f16 `.rn`,
//! `.rni/.rzi/.sat`) - against Rust (and core's bf16/f16 stores) on adversarial operands.

mod common;
use adamant_core::store::{f16_bits_to_f32_bits, f32_bits_to_bf16_bits, f32_bits_to_f16_bits};
use adamant_cuda::backend::{Backend, ParamValue};
use common::*;

const NAN32: u32 = 0x7FFF_FFFF;
const NAN64: u64 = 0x7FFF_FFFF_FFFF_FFFF;

fn c32(x: f32) -> u32 {
    if x.is_nan() {
        NAN32
    } else {
        x.to_bits()
    }
}
fn c64(x: f64) -> f64 {
    if x.is_nan() {
        f64::from_bits(NAN64)
    } else {
        x
    }
}

/// PTX min/max: NaN loses, two NaNs give the canonical NaN, -0 < +0.
fn minmax(x: f32, y: f32, max: bool) -> u32 {
    if x.is_nan() && y.is_nan() {
        return NAN32;
    }
    if x.is_nan() {
        return y.to_bits();
    }
    if y.is_nan() {
        return x.to_bits();
    }
    if x == 0.0 && y == 0.0 {
        let neg = if max {
            x.is_sign_negative() && y.is_sign_negative()
        } else {
            x.is_sign_negative() || y.is_sign_negative()
        };
        return if neg { 0x8000_0000 } else { 0 };
    }
    if (x < y) ^ max {
        x.to_bits()
    } else {
        y.to_bits()
    }
}

// The negated compares mirror the kernel's `!(x < y)` (unordered: true for NaN).
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn expected(x: f32, y: f32) -> [u32; 24] {
    let un = x.is_nan() || y.is_nan();
    let flags = [
        x < y,
        x <= y,
        x > y,
        x >= y,
        x == y,
        x != y,
        !(x < y),
        !(x >= y),
        x.is_nan(),
        !un,
    ];
    let c = flags
        .iter()
        .enumerate()
        .fold(0u32, |a, (i, &f)| a | ((f as u32) << i));
    let (dx, dy) = (c64(x as f64), c64(y as f64));
    let mut s = c64(c64(dx * dy) + c64(dx / dy));
    s = c64(s - c64(dx.sqrt()));
    s = c64(dx.mul_add(dy, s));
    let sb = s.to_bits();
    // `__double_as_longlong` is signed: the shift is arithmetic.
    let u = ((dx.to_bits() as i64) >> 12) as u64;
    let h = (x.to_bits() & 0xFFFF) as u16;
    let h32 = f16_bits_to_f32_bits(h);
    let h32 = if f32::from_bits(h32).is_nan() {
        NAN32
    } else {
        h32
    };
    let sat = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    [
        minmax(x, y, false),
        minmax(x, y, true),
        c,
        c32(x + y),
        c32(x - y),
        c32(x * y),
        c32(x / y),
        c32(x.sqrt()),
        c32(x.mul_add(y, x)),
        (x as i32) as u32,
        x.round_ties_even() as u32,
        c32((y.to_bits() as i32) as f32),
        c32(y.to_bits() as f32),
        f32_bits_to_bf16_bits(x.to_bits()) as u32
            | (f32_bits_to_f16_bits(y.to_bits()) as u32) << 16,
        h32,
        sb as u32,
        (sb >> 32) as u32,
        c32(s as f32),
        c32((u as f64) as f32),
        (dx * 3.0) as u64 as u32,
        sat.to_bits(),
        (x.to_bits() & 0x7FFF_FFFF) ^ (y.to_bits() ^ 0x8000_0000),
        c32(x.round_ties_even()),
        c32(y.trunc()),
    ]
}

#[test]
fn float_ops_and_conversions_match_rust() {
    let specials: Vec<f32> = [
        0x0000_0000u32,
        0x8000_0000,
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0000,
        0xFFC0_1234,
        0x7F80_0001,
        0x0000_0001,
        0x8000_0001,
        0x007F_FFFF,
        0x0080_0000,
        0x7F7F_FFFF,
        0xFF7F_FFFF,
        0x3F80_0000,
        0x3F00_0000,
        0x3FC0_0000,
        0x4020_0000,
        0xBFC0_0000,
        0x4F80_0000,
        0x4F00_0000,
        0xCF00_0001,
        0x5F80_0000,
        0x477F_F000,
        0x3380_0000,
        0x7C00_7E01,
    ]
    .iter()
    .map(|&b| f32::from_bits(b))
    .collect();
    let mut a = Vec::new();
    let mut b = Vec::new();
    for &x in &specials {
        for &y in &specials {
            a.push(x);
            b.push(y);
        }
    }
    let mut rng = Rng(42);
    for fam in FAMILIES {
        a.extend(values(500, fam, &mut rng));
        b.extend(values(500, fam, &mut rng));
    }
    let n = a.len();
    let mut s = sim();
    let bk: &mut dyn Backend = &mut s;
    let ad = put(bk, &to_bytes_f32(&a), 4);
    let bd = put(bk, &to_bytes_f32(&b), 8);
    let out = bk.alloc(96 * n).unwrap();
    let params = [
        ParamValue::U64(ad),
        ParamValue::U64(bd),
        ParamValue::U64(out),
        ParamValue::U32(n as u32),
    ];
    bk.launch(
        "floatops",
        "floatops",
        shape(n.div_ceil(256) as u32, 256),
        &params,
    )
    .unwrap();
    let got = from_bytes_u32(&get(bk, out, 96 * n));
    let names = [
        "min",
        "max",
        "compares",
        "add",
        "sub",
        "mul",
        "div",
        "sqrt",
        "fma",
        "f2i.rz",
        "f2u.rn",
        "i2f",
        "u2f",
        "bf16|f16",
        "f16->f32",
        "f64 lo",
        "f64 hi",
        "f64->f32",
        "u64->f64->f32",
        "f64->u64.rz",
        "sat",
        "abs^neg",
        "rint",
        "trunc",
    ];
    for i in 0..n {
        let want = expected(a[i], b[i]);
        for k in 0..24 {
            assert_eq!(
                got[24 * i + k],
                want[k],
                "{} x={:#010x} y={:#010x}: got {:#x} want {:#x}",
                names[k],
                a[i].to_bits(),
                b[i].to_bits(),
                got[24 * i + k],
                want[k]
            );
        }
    }
}
