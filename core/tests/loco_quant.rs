//! Quantizer properties: rounding, error bounds, reference == fast == any split, the packed
//! layout, typed errors with nothing written, and the rank-order reduction.
// Sums spell `s = s + v` so each line reads as one rounded operation; indexed loops mirror
// the formulas.
#![allow(clippy::assign_op_pattern, clippy::needless_range_loop)]

mod loco_util;

use adamant_core::error::Buffer;
use adamant_core::quant::{
    code_at, dequantize, dequantize_reduce, group_scale, pack_nibbles, packed_len, quantize,
    quantize_elem, quantize_reference, round_half_even, unpack_nibbles, Bits, QuantLayout,
};
use adamant_core::{bf16, f16, QuantError};
use loco_util::{adversarial, Lcg};
use proptest::prelude::*;

fn pack(x: &[f32], gl: usize, bits: Bits) -> Vec<u8> {
    let l = QuantLayout::new(x.len(), gl, bits).unwrap();
    let mut p = vec![0xA5u8; l.packed_len()];
    quantize(x, &l, &mut p).unwrap();
    p
}

fn unpack(p: &[u8], n: usize, gl: usize, bits: Bits) -> Vec<f32> {
    let l = QuantLayout::new(n, gl, bits).unwrap();
    let mut out = vec![0.0; n];
    dequantize(p, &l, &mut out).unwrap();
    out
}

#[test]
fn round_half_even_equals_std() {
    let mut r = Lcg(1);
    let mut cases: Vec<f32> = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        0.49999997,
        8388607.5,
        -8388607.5,
        8388608.0,
        4194303.5,
        1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
    ];
    for k in -300..300 {
        cases.push(k as f32 + 0.5);
        cases.push(k as f32 * 0.25);
    }
    for _ in 0..1_000_000 {
        cases.push(f32::from_bits(r.next_u32()));
    }
    let mut checked = 0;
    for y in cases {
        if y.is_nan() {
            assert!(round_half_even(y).is_nan());
            continue;
        }
        assert_eq!(
            round_half_even(y).to_bits(),
            y.round_ties_even().to_bits(),
            "{y:e}"
        );
        checked += 1;
    }
    assert!(checked > 990_000);
}

#[test]
fn scale_matches_deepspeed_form_and_saturates() {
    let mut r = Lcg(2);
    for _ in 0..100_000 {
        let a = f32::from_bits(r.next_u32() & 0x7FFF_FFFF);
        if !a.is_finite() || a == 0.0 || !(2.0 * a).is_finite() || a < 1e-37 {
            continue;
        }
        for bits in [Bits::Four, Bits::Eight] {
            let ds = (1u32 << bits.bits()) as f32 / (2.0 * a);
            if !ds.is_finite() {
                assert_eq!(group_scale(a, bits).0, f32::MAX);
                continue;
            }
            let (s, inv) = group_scale(a, bits);
            assert_eq!(s.to_bits(), ds.to_bits(), "a = {a:e}");
            assert_eq!(inv.to_bits(), (1.0 / ds).to_bits());
        }
    }
    assert_eq!(group_scale(0.0, Bits::Four), (1.0, 1.0));
    // Tiny subnormal group: DeepSpeed's scale would be inf; ours saturates.
    let (s, inv) = group_scale(f32::from_bits(3), Bits::Four);
    assert_eq!(s, f32::MAX);
    assert!(inv > 0.0 && inv.is_finite());
    // Huge absmax: 2*absmax overflows in DeepSpeed's form; ours stays finite.
    let (s, inv) = group_scale(f32::MAX, Bits::Four);
    assert!(s > 0.0 && inv.is_finite());
}

/// Checks the documented error bound of every element of `x` packed with `gl` and `bits`:
/// half a step where the scaled value is at most H - 1/2, one step in the clamped top code.
fn check_bound(x: &[f32], gl: usize, bits: Bits) -> usize {
    let p = pack(x, gl, bits);
    let y = unpack(&p, x.len(), gl, bits);
    let l = QuantLayout::new(x.len(), gl, bits).unwrap();
    let h = bits.half_levels() as f64;
    let mut checked = 0;
    for g in 0..l.groups() {
        let (s, e) = l.group_range(g);
        let absmax = x[s..e].iter().fold(0.0f64, |m, v| m.max((*v as f64).abs()));
        let inv = l.scale(&p, g) as f64;
        let (scale, _) = group_scale(absmax as f32, bits);
        // f32 roundings of x*scale and q*inv_scale: a few ulps of absmax.
        let slack = absmax * 2f64.powi(-21) + f32::from_bits(1) as f64;
        for i in s..e {
            let err = (x[i] as f64 - y[i] as f64).abs();
            let scaled = x[i] as f64 * scale as f64;
            let bound = if scaled <= h - 0.5 { 0.5 * inv } else { inv };
            assert!(
                err <= bound + slack,
                "x = {:e}, x̂ = {:e}, step = {inv:e}, group {g}",
                x[i],
                y[i]
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn error_bound_on_adversarial_values() {
    let mut n = 0;
    for (seed, gl) in [(1u64, 1usize), (2, 2), (3, 7), (4, 32), (5, 33), (6, 512)] {
        for bits in [Bits::Four, Bits::Eight] {
            n += check_bound(&adversarial(1031, seed), gl, bits);
        }
    }
    assert!(n > 12_000);
}

#[test]
fn clamped_top_code_loses_one_step() {
    // The group maximum maps to H - 1: it loses exactly absmax / H.
    let x = [1.0f32, -0.5, 0.25, 0.0];
    let y = unpack(&pack(&x, 4, Bits::Four), 4, 4, Bits::Four);
    assert_eq!(y[0], 0.875);
    assert_eq!(y[1], -0.5);
    assert_eq!(y[2], 0.25);
    assert_eq!(y[3].to_bits(), 0);
    // The negative side reaches -H exactly.
    let y = unpack(&pack(&[-1.0f32, 0.5], 2, Bits::Four), 2, 2, Bits::Four);
    assert_eq!(y, [-1.0, 0.5]);
}

#[test]
fn packed_layout_is_the_documented_one() {
    assert_eq!(packed_len(0, 4, Bits::Four), 0);
    assert_eq!(packed_len(1, 4, Bits::Four), 4 + 4);
    assert_eq!(packed_len(8, 4, Bits::Four), 4 + 8);
    // group_len 5: groups of 3 bytes; 11 elements = 5+5+1 -> 3+3+1 = 7 bytes, pad to 8.
    assert_eq!(packed_len(11, 5, Bits::Four), 8 + 12);
    assert_eq!(packed_len(11, 5, Bits::Eight), 12 + 12);
    assert_eq!(packed_len(4096, 512, Bits::Four), 2048 + 32);

    let x: Vec<f32> = vec![7.0, -8.0, 1.0, 2.0, 3.0, -1.0, 0.0, 5.0, 6.0, -7.0, 4.0];
    let p = pack(&x, 5, Bits::Four);
    // Group 0: absmax 8 -> scale 1: codes 7,-8,1,2,3; group 1: absmax 7 -> scale 8/7.
    assert_eq!(p[0], 0x78); // element 0 high nibble, element 1 low nibble (-8 = 0x8)
    assert_eq!(p[1], 0x12);
    assert_eq!(p[2], 0x30); // odd group: last low nibble zero
    assert_eq!(unpack_nibbles(p[0]), (7, -8));
    assert_eq!(p[7], 0); // padding
    let l = QuantLayout::new(11, 5, Bits::Four).unwrap();
    assert_eq!(l.scale(&p, 0), 1.0);
    assert_eq!(
        l.scale(&p, 1).to_bits(),
        (1.0f32 / (8.0f32 / 7.0)).to_bits()
    );
    assert_eq!(&p[8..12], &1.0f32.to_le_bytes());
    // Codes of every element decode back to quantize_elem's code.
    for g in 0..l.groups() {
        let (s, e) = l.group_range(g);
        let absmax = x[s..e].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let (scale, _) = group_scale(absmax, Bits::Four);
        for i in s..e {
            let j = i - s;
            let (hi, lo) = unpack_nibbles(p[l.group_code_offset(g) + j / 2]);
            let code = if j % 2 == 0 { hi } else { lo };
            assert_eq!(code, quantize_elem(x[i], scale, Bits::Four));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(debug_assertions) { 96 } else { 512 }))]

    #[test]
    fn reference_fast_and_any_split_agree(
        len in 0usize..400, gl in 1usize..70, eight in any::<bool>(), seed in any::<u64>(),
        cut_groups in 0usize..10,
    ) {
        let bits = if eight { Bits::Eight } else { Bits::Four };
        let x = adversarial(len, seed);
        let l = QuantLayout::new(len, gl, bits).unwrap();
        let mut fast = vec![0x5Au8; l.packed_len()];
        let mut refr = vec![0xC3u8; l.packed_len()];
        quantize(&x, &l, &mut fast).unwrap();
        quantize_reference(&x, &l, &mut refr).unwrap();
        prop_assert_eq!(&fast, &refr);
        // Split at a group boundary: each part packs to the same codes and scales.
        let cut = (cut_groups * gl).min(len);
        let (a, b) = x.split_at(cut);
        let (pa, pb) = (pack(a, gl, bits), pack(b, gl, bits));
        let la = QuantLayout::new(a.len(), gl, bits).unwrap();
        let lb = QuantLayout::new(b.len(), gl, bits).unwrap();
        let mut codes = pa[..la.code_bytes()].to_vec();
        codes.extend_from_slice(&pb[..lb.code_bytes()]);
        prop_assert_eq!(&codes[..], &fast[..l.code_bytes()]);
        let mut scales = pa[la.scales_offset()..].to_vec();
        scales.extend_from_slice(&pb[lb.scales_offset()..]);
        prop_assert_eq!(&scales[..], &fast[l.scales_offset()..]);
        // Layout round trip: the codes read back by the documented layout, re-packed by hand
        // with the scales, give the same bytes; decoding gives code * scale.
        let y = unpack(&fast, len, gl, bits);
        let mut rebuilt = vec![0u8; l.packed_len()];
        for g in 0..l.groups() {
            let (s, e) = l.group_range(g);
            let at = l.group_code_offset(g);
            for i in s..e {
                let q = code_at(&fast[at..], i - s, bits);
                prop_assert_eq!(y[i].to_bits(), (q as f32 * l.scale(&fast, g)).to_bits());
                match bits {
                    Bits::Eight => rebuilt[at + i - s] = q as u8,
                    Bits::Four => {
                        let j = i - s;
                        let b = &mut rebuilt[at + j / 2];
                        *b = if j % 2 == 0 { pack_nibbles(q, 0) } else { *b | pack_nibbles(0, q) };
                    }
                }
            }
            let so = l.scales_offset() + 4 * g;
            rebuilt[so..so + 4].copy_from_slice(&l.scale(&fast, g).to_le_bytes());
        }
        prop_assert_eq!(&rebuilt, &fast);
    }

    #[test]
    fn error_bound_random(len in 1usize..300, gl in 1usize..64, eight in any::<bool>(), seed in any::<u64>()) {
        let bits = if eight { Bits::Eight } else { Bits::Four };
        let mut r = Lcg(seed);
        let x: Vec<f32> = (0..len).map(|_| r.normal() * 1e-3).collect();
        check_bound(&x, gl, bits);
    }
}

#[test]
fn bf16_and_f16_inputs_widen_exactly() {
    let x = adversarial(300, 9);
    let xb: Vec<bf16> = x.iter().map(|v| bf16::from_f32(*v)).collect();
    let xh: Vec<f16> = x.iter().map(|v| f16::from_f32(*v)).collect();
    for (wide, name) in [
        (xb.iter().map(|v| v.to_f32()).collect::<Vec<f32>>(), "bf16"),
        (xh.iter().map(|v| v.to_f32()).collect::<Vec<f32>>(), "f16"),
    ] {
        if wide.iter().any(|v| !v.is_finite()) {
            continue; // f16 overflows on the huge values; covered by the error tests
        }
        let l = QuantLayout::new(300, 16, Bits::Four).unwrap();
        let mut a = vec![0u8; l.packed_len()];
        let mut b = vec![0u8; l.packed_len()];
        quantize(&wide, &l, &mut a).unwrap();
        if name == "bf16" {
            quantize(&xb, &l, &mut b).unwrap();
        } else {
            quantize(&xh, &l, &mut b).unwrap();
        }
        assert_eq!(a, b, "{name}");
    }
    // f16 inputs with infinities are refused.
    let l = QuantLayout::new(300, 16, Bits::Four).unwrap();
    let mut p = vec![7u8; l.packed_len()];
    let first = xh
        .iter()
        .position(|v| !v.is_finite())
        .expect("f16 overflows on 3e38");
    assert_eq!(
        quantize(&xh, &l, &mut p),
        Err(QuantError::NonFinite {
            buffer: Buffer::Grad,
            index: first
        })
    );
    assert!(p.iter().all(|b| *b == 7));
}

#[test]
fn non_finite_and_bad_lengths_write_nothing() {
    let l = QuantLayout::new(9, 4, Bits::Four).unwrap();
    for bad in [
        f32::NAN,
        f32::from_bits(0xFFC0_0001),
        f32::INFINITY,
        f32::NEG_INFINITY,
    ] {
        let mut x = vec![1.0f32; 9];
        x[6] = bad;
        let mut p = vec![0xEEu8; l.packed_len()];
        assert_eq!(
            quantize(&x, &l, &mut p),
            Err(QuantError::NonFinite {
                buffer: Buffer::Grad,
                index: 6
            })
        );
        assert!(p.iter().all(|b| *b == 0xEE));
        assert!(quantize_reference(&x, &l, &mut p).is_err());
        assert!(p.iter().all(|b| *b == 0xEE));
    }
    let x = vec![1.0f32; 9];
    let mut short = vec![0xEEu8; l.packed_len() - 1];
    assert!(matches!(
        quantize(&x, &l, &mut short),
        Err(QuantError::Layout(_))
    ));
    assert!(short.iter().all(|b| *b == 0xEE));
    assert!(QuantLayout::new(9, 0, Bits::Four).is_err());
    // Decoding refuses corrupt scales.
    let good = pack(&x, 4, Bits::Four);
    for s in [f32::NAN, f32::INFINITY, 0.0, -1.0] {
        let mut p = good.clone();
        let at = l.scales_offset() + 4;
        p[at..at + 4].copy_from_slice(&s.to_le_bytes());
        let mut out = vec![3.0f32; 9];
        assert_eq!(
            dequantize(&p, &l, &mut out),
            Err(QuantError::BadScale {
                buffer: Buffer::Packed,
                group: 1
            })
        );
        assert!(out.iter().all(|v| *v == 3.0));
    }
}

#[test]
fn rank_order_reduction() {
    let (n, gl, world) = (1000usize, 64usize, 5usize);
    let l = QuantLayout::new(n, gl, Bits::Four).unwrap();
    let mut received = Vec::new();
    let mut parts = Vec::new();
    for r in 0..world {
        let mut g = Lcg(100 + r as u64);
        let x: Vec<f32> = (0..n).map(|_| g.normal()).collect();
        let p = pack(&x, gl, Bits::Four);
        parts.push(unpack(&p, n, gl, Bits::Four));
        received.extend_from_slice(&p);
    }
    let mut out = vec![0.0f32; n];
    dequantize_reduce(&received, &l, world, world as f32, &mut out).unwrap();
    let mut reversed_differs = 0;
    for i in 0..n {
        let mut s = 0.0f32;
        for p in &parts {
            s = s + p[i];
        }
        assert_eq!(out[i].to_bits(), (s / world as f32).to_bits(), "i = {i}");
        let mut t = 0.0f32;
        for p in parts.iter().rev() {
            t = t + p[i];
        }
        reversed_differs += ((t / world as f32).to_bits() != out[i].to_bits()) as usize;
    }
    // The order is part of the contract: another order gives other bits somewhere.
    assert!(reversed_differs > 0);
    // Every rank reducing the same bytes gets the same bits.
    for _rank in 0..world {
        let mut again = vec![0.0f32; n];
        dequantize_reduce(&received, &l, world, world as f32, &mut again).unwrap();
        assert_eq!(
            again.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
    // Overflowing sums and bad divisors are refused, nothing written.
    let big = pack(&[f32::MAX; 8], 8, Bits::Four);
    let lb = QuantLayout::new(8, 8, Bits::Four).unwrap();
    let two = [big.clone(), big].concat();
    let mut o = vec![1.0f32; 8];
    assert!(matches!(
        dequantize_reduce(&two, &lb, 2, 2.0, &mut o),
        Err(QuantError::NonFinite { .. })
    ));
    assert!(dequantize_reduce(&two[..lb.packed_len()], &lb, 1, 0.0, &mut o).is_err());
    assert!(o.iter().all(|v| *v == 1.0));
    dequantize_reduce(&two[..lb.packed_len()], &lb, 1, 1.0, &mut o).unwrap();
    assert!(o.iter().all(|v| v.is_finite()));
}

/// Groups longer than the fast quantizer's tile (512) and odd lengths: fast == reference,
/// on adversarial values and on groups scaled down to the saturated-scale range.
#[test]
fn long_groups_fast_equals_reference() {
    let mut cases = 0;
    for (len, gl) in [
        (3001usize, 513usize),
        (2050, 1024),
        (5000, 2049),
        (1537, 1537),
    ] {
        for bits in [Bits::Four, Bits::Eight] {
            for (seed, tiny) in [(1u64, false), (2, true)] {
                let mut x = adversarial(len, seed);
                if tiny {
                    // Absmax below 8/f32::MAX: the scale saturates at f32::MAX.
                    for v in x.iter_mut() {
                        *v = f32::from_bits(v.to_bits() & 0x8000_0FFF);
                    }
                }
                let l = QuantLayout::new(len, gl, bits).unwrap();
                let mut fast = vec![0x5Au8; l.packed_len()];
                let mut refr = vec![0xC3u8; l.packed_len()];
                quantize(&x, &l, &mut fast).unwrap();
                quantize_reference(&x, &l, &mut refr).unwrap();
                assert_eq!(fast, refr, "len {len} gl {gl} {bits:?} tiny {tiny}");
                let mut y = vec![0.0f32; len];
                dequantize(&fast, &l, &mut y).unwrap();
                // Decoded by hand from the documented layout.
                let want: Vec<f32> = (0..len)
                    .map(|i| {
                        let (g, j) = (i / gl, i % gl);
                        let q = code_at(&fast[l.group_code_offset(g)..], j, bits);
                        q as f32 * l.scale(&fast, g)
                    })
                    .collect();
                assert_eq!(
                    y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 16);
}
