//! Integer semantics: clamped shift counts, mul.hi/wide, min/max, div/rem, popc/clz/brev, abs,
//! 64-bit arithmetic shifts - against Rust on adversarial operands.

mod common;
use adamant_cuda::backend::{Backend, ParamValue};
use common::*;

fn shl(x: u32, s: u32) -> u32 {
    if s >= 32 {
        0
    } else {
        x << s
    }
}
fn shr_u(x: u32, s: u32) -> u32 {
    if s >= 32 {
        0
    } else {
        x >> s
    }
}
fn shr_s(x: i32, s: u32) -> u32 {
    (x >> s.min(31)) as u32
}

fn expected(x: u32, y: u32) -> [u32; 16] {
    let (sx, sy) = (x as i32, y as i32);
    let w = x as u64 * y as u64;
    let s64 = (sx as i64) << 20;
    let sh = s64 >> (y & 127).min(63);
    [
        shl(x, y & 63),
        shr_u(x, y & 63),
        shr_s(sx, y & 63),
        (w >> 32) as u32,
        ((sx as i64 * sy as i64) >> 32) as u32,
        (w >> 32) as u32 ^ w as u32,
        x.min(y),
        sx.max(sy) as u32,
        x.checked_div(y).unwrap_or(0xdead_beef),
        if sy != 0 && !(sx == i32::MIN && sy == -1) {
            (sx % sy) as u32
        } else {
            0
        },
        x.count_ones() + (y.leading_zeros() << 8),
        sx.wrapping_abs() as u32,
        x.reverse_bits(),
        x.wrapping_mul(2_654_435_761).wrapping_add(y),
        sh as u32 ^ (sh as u64 >> 32) as u32,
        x.abs_diff(y),
    ]
}

#[test]
fn integer_ops_match_rust() {
    let mut rng = Rng(0x1234_5678);
    let special = [
        0u32,
        1,
        2,
        31,
        32,
        33,
        63,
        64,
        127,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFFF,
        0xFFFF_FFE0,
    ];
    let mut a = Vec::new();
    let mut b = Vec::new();
    for &x in &special {
        for &y in &special {
            a.push(x);
            b.push(y);
        }
    }
    for _ in 0..2000 {
        a.push(rng.u32());
        b.push(if rng.below(2) == 0 {
            rng.below(130)
        } else {
            rng.u32()
        });
    }
    let n = a.len();
    let mut s = sim();
    let bk: &mut dyn Backend = &mut s;
    let ad = put(bk, &to_bytes_u32(&a), 0);
    let bd = put(bk, &to_bytes_u32(&b), 4);
    let out = bk.alloc(64 * n).unwrap();
    let params = [
        ParamValue::U64(ad),
        ParamValue::U64(bd),
        ParamValue::U64(out),
        ParamValue::U32(n as u32),
    ];
    bk.launch(
        "intops",
        "intops",
        shape(n.div_ceil(128) as u32 + 1, 128),
        &params,
    )
    .unwrap();
    let got = from_bytes_u32(&get(bk, out, 64 * n));
    for i in 0..n {
        assert_eq!(
            got[16 * i..16 * i + 16],
            expected(a[i], b[i]),
            "a={:#x} b={:#x}",
            a[i],
            b[i]
        );
    }
}

#[test]
fn integer_division_by_zero_is_refused() {
    // Drop the kernel's own `y != 0` guard so the division by zero is reached.
    let guard = "\t@%p2 bra \t$L__BB0_3;\n\n\tcvt.u32.u64 \t%r25, %rd1;\n\tdiv.u32";
    assert!(
        INTOPS.contains(guard),
        "intops.ptx changed; update this test"
    );
    let ptx = INTOPS.replacen(guard, "\n\n\tcvt.u32.u64 \t%r25, %rd1;\n\tdiv.u32", 1);
    let mut s = sim();
    s.register_module("i", &ptx).unwrap();
    let bk: &mut dyn Backend = &mut s;
    let ad = put(bk, &to_bytes_u32(&[5]), 0);
    let bd = put(bk, &to_bytes_u32(&[0]), 0);
    let out = bk.alloc(64).unwrap();
    let params = [
        ParamValue::U64(ad),
        ParamValue::U64(bd),
        ParamValue::U64(out),
        ParamValue::U32(1),
    ];
    let e = s
        .launch_sim("i", "intops", shape(1, 32), &params)
        .unwrap_err();
    assert!(
        e.msg.contains("division by zero") && e.text.starts_with("div.u32"),
        "{e}"
    );
    assert!(ptx
        .lines()
        .nth(e.line as usize - 1)
        .unwrap()
        .contains("div.u32"));
}
