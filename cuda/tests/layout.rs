//! The Rust argument structures match the kernels' PTX parameter lists: count, sizes and
//! alignment of every `.param`, for every entry.

use adamant_cuda::args::{
    AdamHyper, ClipBuffers, ClipHyper, LionHyper, MiniHyper, MiniSegment, QuantArgs, ReduceEntry,
    SgdHyper, TensorEntry,
};
use adamant_cuda::ptx::MODULES;

/// (size, align) of each parameter of `entry` in `ptx`.
fn params(ptx: &str, entry: &str) -> Vec<(usize, usize)> {
    let start = ptx.find(&format!(".entry {entry}(")).expect("entry");
    let body = &ptx[start..];
    let end = body.find(')').unwrap();
    body[..end]
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_end_matches(',');
            let rest = l.strip_prefix(".param ")?;
            if let Some(r) = rest.strip_prefix(".align ") {
                let (align, r) = r.split_once(' ').unwrap();
                let size = r.split('[').nth(1)?.trim_end_matches(']').parse().ok()?;
                Some((size, align.parse().unwrap()))
            } else {
                let ty = rest.split_whitespace().next()?;
                let size = match &ty[2..] {
                    "8" => 1,
                    "16" => 2,
                    "32" => 4,
                    "64" => 8,
                    _ => return None,
                };
                Some((size, size))
            }
        })
        .collect()
}

#[test]
fn spec_struct_sizes() {
    assert_eq!(std::mem::size_of::<TensorEntry>(), TensorEntry::SIZE);
    assert_eq!(std::mem::size_of::<ReduceEntry>(), ReduceEntry::SIZE);
    assert_eq!(std::mem::size_of::<AdamHyper>(), AdamHyper::SIZE);
    assert_eq!(std::mem::size_of::<SgdHyper>(), SgdHyper::SIZE);
    assert_eq!(std::mem::size_of::<LionHyper>(), LionHyper::SIZE);
    assert_eq!(std::mem::size_of::<QuantArgs>(), QuantArgs::SIZE);
    assert_eq!(QuantArgs::default().to_bytes().len(), QuantArgs::SIZE);
    assert_eq!(std::mem::size_of::<MiniSegment>(), MiniSegment::SIZE);
    assert_eq!(std::mem::size_of::<MiniHyper>(), MiniHyper::SIZE);
    assert_eq!(std::mem::size_of::<ClipBuffers>(), ClipBuffers::SIZE);
    assert_eq!(std::mem::size_of::<ClipHyper>(), ClipHyper::SIZE);
    assert_eq!(MiniSegment::default().to_bytes().len(), MiniSegment::SIZE);
    assert_eq!(ClipBuffers::default().to_bytes().len(), ClipBuffers::SIZE);
    let e = TensorEntry {
        param: 1,
        grad: 2,
        state0: 3,
        state1: 4,
        n: 5,
        sr_index_offset: 6,
        clip_coef: 7,
        chunk_start: 8,
    };
    let b = e.to_bytes();
    for k in 0..8 {
        assert_eq!(
            u64::from_le_bytes(b[8 * k..8 * k + 8].try_into().unwrap()),
            k as u64 + 1
        );
    }
}

#[test]
fn spec_ptx_parameter_lists_match_the_rust_layouts() {
    let mut checked = 0;
    for m in MODULES {
        for entry in adamant_cuda::ptx::entries(m.ptx) {
            let got = params(m.ptx, entry);
            let want: Vec<(usize, usize)> = match m.name {
                "adam" | "sgd" | "lion" => {
                    let hyper = match m.name {
                        "adam" => AdamHyper::SIZE,
                        "sgd" => SgdHyper::SIZE,
                        _ => LionHyper::SIZE,
                    };
                    vec![
                        (8, 8),
                        (64, 8),
                        (4, 4),
                        (8, 8),
                        (8, 8),
                        (8, 8),
                        (8, 8),
                        (8, 8),
                        (hyper, 8),
                    ]
                }
                "reduce" => vec![(8, 8), (32, 8), (4, 4), (8, 8)],
                "step" if entry == "adamant_step_commit" => vec![(8, 8), (8, 8)],
                "step" => vec![(8, 8), (64, 8), (4, 4), (8, 8), (8, 8)],
                "quant" => vec![(QuantArgs::SIZE, 8)],
                "adam_mini" => vec![
                    (8, 8),
                    (MiniSegment::SIZE, 8),
                    (4, 4),
                    (8, 8),
                    (8, 8),
                    (8, 8),
                    (8, 8),
                    (8, 8),
                    (MiniHyper::SIZE, 8),
                ],
                "clip" if entry.starts_with("adamant_clip_sumsq_") => {
                    vec![(8, 8), (32, 8), (4, 4), (8, 8), (8, 8)]
                }
                "clip" if entry == "adamant_clip_tensor_sums" => {
                    vec![(8, 8), (32, 8), (4, 4), (8, 8)]
                }
                "clip" if entry == "adamant_clip_coefs" => {
                    vec![(ClipBuffers::SIZE, 8), (ClipHyper::SIZE, 8)]
                }
                "clip" if entry == "adamant_clip_commit" => {
                    vec![(ClipBuffers::SIZE, 8), (8, 8), (ClipHyper::SIZE, 8)]
                }
                other => panic!("unknown module {other}"),
            };
            assert_eq!(got, want, "{}::{entry}", m.name);
            checked += 1;
        }
    }
    // adam/sgd/lion 54, reduce 9, step 4, quant 10, adam_mini 18 + 3 + 2, clip 3 + 3.
    assert_eq!(checked, 54 + 9 + 4 + 10 + 23 + 6);
}

#[test]
fn spec_quant_args_byte_offsets() {
    let a = QuantArgs {
        src: 1,
        err: 2,
        out: 3,
        status: 4,
        len: 5,
        peer_stride: 6,
        src_chunk_stride: 7,
        chunks: 8,
        nodes: 9,
        peers: 10,
        group_len: 11,
        bits: 12,
        src_bits: 13,
        err_storage: 14,
        reset: 15,
        rule: 16,
        err_beta: 0.8,
        one_minus_err_beta: 0.2,
        divisor: 3.0,
    };
    let b = a.to_bytes();
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    for k in 0..7 {
        assert_eq!(u64_at(8 * k), k as u64 + 1);
    }
    for k in 0..9 {
        assert_eq!(u32_at(56 + 4 * k), k as u32 + 8);
    }
    assert_eq!(u32_at(92), 0.8f32.to_bits());
    assert_eq!(u32_at(96), 0.2f32.to_bits());
    assert_eq!(u32_at(100), 3.0f32.to_bits());
    // The .cu struct's field comments carry the same offsets.
    let cu = include_str!("../kernels/quant.cu");
    for (name, off) in [
        ("src;", 0),
        ("err;", 8),
        ("status;", 24),
        ("src_chunk_stride;", 48),
        ("chunks;", 56),
        ("rule;", 88),
        ("divisor;", 100),
    ] {
        let line = cu
            .lines()
            .find(|l| l.contains(name) && l.contains("//"))
            .unwrap();
        let comment = line.split("//").nth(1).unwrap().trim_start();
        assert!(comment.starts_with(&format!("{off}:")), "{line}");
    }
}

/// Field offsets of the new by-value structures: word k of the bytes is field k.
#[test]
fn spec_mini_and_clip_field_offsets() {
    let s = MiniSegment {
        param: 1,
        grad: 2,
        exp_avg: 3,
        exp_avg_sq: 4,
        scale: 5,
        partials: 6,
        n: 7,
        block_len: 8,
        sr_index_offset: 9,
        clip_coef: 10,
        weight_decay: 11,
        chunk_start: 12,
        tile_start: 13,
        block_start: 14,
    };
    let b = s.to_bytes();
    for k in 0..14 {
        assert_eq!(
            u64::from_le_bytes(b[8 * k..8 * k + 8].try_into().unwrap()),
            k as u64 + 1
        );
    }
    let c = ClipBuffers {
        sums: 1,
        count: 2,
        scratch: 3,
        coefs: 4,
        gamma: 5,
        gamma_next: 6,
        clip_step: 7,
        record: 8,
    };
    let b = c.to_bytes();
    for k in 0..8 {
        assert_eq!(
            u64::from_le_bytes(b[8 * k..8 * k + 8].try_into().unwrap()),
            k as u64 + 1
        );
    }
    let h = ClipHyper {
        lambda_rel: 1.5,
        beta: 0.25,
        eps: 2.0,
        max_norm: 3.0,
        t_start: 9,
        mode: 2,
        reserved: 0,
    }
    .to_bytes();
    assert_eq!(f64::from_le_bytes(h[24..32].try_into().unwrap()), 3.0);
    assert_eq!(u64::from_le_bytes(h[32..40].try_into().unwrap()), 9);
    assert_eq!(u32::from_le_bytes(h[40..44].try_into().unwrap()), 2);
    let m = MiniHyper {
        beta1: 0.5,
        beta2: 0.75,
        eps: 1e-8,
        weight_decay: 0.1,
        sr_seed: 77,
        stochastic: 1,
        reserved: 0,
    }
    .to_bytes();
    assert_eq!(u64::from_le_bytes(m[32..40].try_into().unwrap()), 77);
    assert_eq!(u32::from_le_bytes(m[40..44].try_into().unwrap()), 1);
    // Global-norm clipping's eps: core's CLIP_EPS survives the f64 round trip exactly.
    assert_eq!(
        ClipHyper::global_norm(&adamant_core::clip::GlobalNormClip::new(1.0).unwrap()).eps as f32,
        adamant_core::clip::global_norm::CLIP_EPS
    );
}
