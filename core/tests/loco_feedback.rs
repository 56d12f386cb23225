//! Two-way error feedback (Efficient-Adam style): exact update rules, a parameter-server
//! simulation whose accumulated broadcast tracks the accumulated mean, and typed errors.
// Sums spell `s = s + v` so each line reads as one rounded operation; indexed loops mirror
// the formulas.
#![allow(clippy::assign_op_pattern, clippy::needless_range_loop)]

mod loco_util;

use adamant_core::error::Buffer;
use adamant_core::feedback::{
    ef_decompress, ef_server_compress, ef_worker_compress, ErrorBuf, ErrorStorage, ShardLayout,
};
use adamant_core::quant::{dequantize, quantize, Bits, QuantLayout};
use adamant_core::QuantError;
use loco_util::Lcg;

fn bits_of(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn worker_rule_is_u_minus_deq_q() {
    for bits in [Bits::Four, Bits::Eight] {
        let l = ShardLayout::new(120, 3, 9, bits).unwrap();
        let mut r = Lcg(3);
        let mut e = vec![0.0f32; 120];
        for _ in 0..5 {
            let x: Vec<f32> = (0..120).map(|_| r.normal()).collect();
            let u: Vec<f32> = x.iter().zip(&e).map(|(a, b)| a + b).collect();
            let mut p = vec![0u8; l.packed_len()];
            ef_worker_compress(&l, &x, ErrorBuf::F32(&mut e), &mut p).unwrap();
            let c = l.chunk();
            let s = l.shard_len();
            for k in 0..3 {
                let mut want = vec![0u8; c.packed_len()];
                quantize(&u[k * s..(k + 1) * s], &c, &mut want).unwrap();
                let got = &p[k * l.chunk_len()..(k + 1) * l.chunk_len()];
                assert_eq!(got, &want[..]);
                let mut uh = vec![0.0f32; s];
                dequantize(got, &c, &mut uh).unwrap();
                let want_e: Vec<f32> = (0..s).map(|i| u[k * s + i] - uh[i]).collect();
                assert_eq!(bits_of(&e[k * s..(k + 1) * s]), bits_of(&want_e));
            }
        }
    }
}

/// Parameter-server simulation: 4 workers, server with 4-bit broadcast. The accumulated
/// broadcast equals the accumulated mean up to the bounded errors held in the memories.
#[test]
fn parameter_server_tracks_the_mean() {
    for storage in [ErrorStorage::F32, ErrorStorage::Int8] {
        let (n, workers, gl) = (256usize, 4usize, 32usize);
        let wl = ShardLayout::new(n, 1, gl, Bits::Four).unwrap();
        let chunk = wl.chunk();
        let mut ew: Vec<Vec<f32>> = vec![vec![0.0; n]; workers];
        let mut es32 = vec![0.0f32; n];
        let mut es8 = vec![0u8; wl.error_len(ErrorStorage::Int8)];
        // 8-bit zero error: zero codes with scale 1.
        let l8 = QuantLayout::new(n, gl, Bits::Eight).unwrap();
        quantize(&vec![0.0f32; n], &l8, &mut es8).unwrap();
        let (mut acc_out, mut acc_mean) = (vec![0.0f64; n], vec![0.0f64; n]);
        let mut r = Lcg(11);
        for step in 0..50 {
            let mut received = Vec::new();
            let mut mean = vec![0.0f64; n];
            for e in ew.iter_mut() {
                let x: Vec<f32> = (0..n)
                    .map(|i| {
                        ((i as f32 * 0.1 + step as f32 * 0.03).cos()) * 1e-2 + 3e-3 * r.normal()
                    })
                    .collect();
                for i in 0..n {
                    mean[i] += x[i] as f64 / workers as f64;
                }
                let mut p = vec![0u8; wl.packed_len()];
                ef_worker_compress(&wl, &x, ErrorBuf::F32(e), &mut p).unwrap();
                received.extend_from_slice(&p);
            }
            let mut delta = vec![0u8; chunk.packed_len()];
            let err = match storage {
                ErrorStorage::F32 => ErrorBuf::F32(&mut es32),
                ErrorStorage::Int8 => ErrorBuf::Int8(&mut es8),
            };
            ef_server_compress(&chunk, Bits::Four, &received, workers, err, &mut delta).unwrap();
            let mut upd = vec![0.0f32; n];
            ef_decompress(&wl, &delta, &mut upd).unwrap();
            for i in 0..n {
                acc_out[i] += upd[i] as f64;
                acc_mean[i] += mean[i];
            }
        }
        let worst = (0..n)
            .map(|i| (acc_out[i] - acc_mean[i]).abs())
            .fold(0.0, f64::max);
        let peak = acc_mean.iter().map(|v| v.abs()).fold(0.0, f64::max);
        // Without feedback the bias of 4-bit rounding accumulates over 50 steps; with it the
        // gap is a few steps of one exchange (step <= absmax/8 ~ 2e-3 here).
        assert!(
            worst < 0.03 * peak,
            "{storage:?}: worst {worst}, peak {peak}"
        );
    }
}

#[test]
fn server_mean_then_feedback_exact_bits() {
    let (n, workers, gl) = (40usize, 3usize, 8usize);
    let chunk = QuantLayout::new(n, gl, Bits::Eight).unwrap();
    let mut r = Lcg(5);
    let mut received = Vec::new();
    let mut deq = Vec::new();
    for _ in 0..workers {
        let x: Vec<f32> = (0..n).map(|_| r.normal()).collect();
        let mut p = vec![0u8; chunk.packed_len()];
        quantize(&x, &chunk, &mut p).unwrap();
        let mut d = vec![0.0f32; n];
        dequantize(&p, &chunk, &mut d).unwrap();
        deq.push(d);
        received.extend_from_slice(&p);
    }
    let mut es: Vec<f32> = (0..n).map(|_| r.normal() * 0.01).collect();
    let w: Vec<f32> = (0..n)
        .map(|i| {
            let mut s = 0.0f32;
            for d in &deq {
                s = s + d[i];
            }
            s / workers as f32 + es[i]
        })
        .collect();
    let out_l = QuantLayout::new(n, gl, Bits::Four).unwrap();
    let mut want = vec![0u8; out_l.packed_len()];
    quantize(&w, &out_l, &mut want).unwrap();
    let mut wh = vec![0.0f32; n];
    dequantize(&want, &out_l, &mut wh).unwrap();
    let mut got = vec![0u8; out_l.packed_len()];
    ef_server_compress(
        &chunk,
        Bits::Four,
        &received,
        workers,
        ErrorBuf::F32(&mut es),
        &mut got,
    )
    .unwrap();
    assert_eq!(got, want);
    let want_e: Vec<f32> = (0..n).map(|i| w[i] - wh[i]).collect();
    assert_eq!(bits_of(&es), bits_of(&want_e));
}

#[test]
fn feedback_errors_write_nothing() {
    let l = ShardLayout::new(16, 2, 4, Bits::Four).unwrap();
    let mut e = vec![0.5f32; 16];
    let mut p = vec![9u8; l.packed_len()];
    let mut x = vec![1.0f32; 16];
    x[3] = f32::INFINITY;
    assert_eq!(
        ef_worker_compress(&l, &x, ErrorBuf::F32(&mut e), &mut p),
        Err(QuantError::NonFinite {
            buffer: Buffer::Grad,
            index: 3
        })
    );
    assert!(e.iter().all(|v| *v == 0.5) && p.iter().all(|b| *b == 9));
    let mut e8 = vec![0u8; l.error_len(ErrorStorage::Int8)];
    // All-zero 8-bit error bytes carry zero scales: refused as corrupt.
    assert!(matches!(
        ef_worker_compress(&l, &[1.0f32; 16], ErrorBuf::Int8(&mut e8), &mut p),
        Err(QuantError::BadScale { .. })
    ));
    assert!(p.iter().all(|b| *b == 9));
    assert!(ShardLayout::new(15, 2, 4, Bits::Four).is_err());
    let chunk = l.chunk();
    let mut out = vec![0u8; chunk.packed_len()];
    assert!(ef_server_compress(
        &chunk,
        Bits::Four,
        &[],
        0,
        ErrorBuf::F32(&mut e[..8]),
        &mut out
    )
    .is_err());
}
