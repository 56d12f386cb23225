//! Host entry points of the second-wave rules against core as the oracle: Adam-mini (every
//! layout, whole tensor and sharded phases, clip coefficient), AdaGC, LoCo, the name rules,
//! `clip_coef` on Adam. `==` on bits on adversarial inputs.

use super::host::*;
use super::tests::{adversarial, ptr, same};
use adamant_core::clip::{tensor_sum_sq, AdaGc, AdaGcConfig, AdaGcMode};
use adamant_core::feedback::{ErrorBuf, ErrorStorage};
use adamant_core::loco::{self, Loco, LocoConfig};
use adamant_core::quant::Bits;
use adamant_core::rules::adam_mini::{apply_tensor, Path};
use adamant_core::{bf16, AdamMini, AdamMiniConfig, Begin, BlockLayout, Segment, StepOptions};
use adamant_core::{Adam, AdamConfig};
use core::ffi::{c_char, c_void};
use std::ffi::CStr;

fn finite(n: usize, seed: u32) -> Vec<f32> {
    adversarial(n, seed)
        .into_iter()
        .map(|x| {
            if x.is_finite() {
                x.clamp(-1e3, 1e3)
            } else {
                -0.0
            }
        })
        .collect()
}

fn msg_of(m: &[c_char]) -> String {
    // SAFETY: the entry points NUL-terminate within the buffer.
    unsafe { CStr::from_ptr(m.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

const CFG: AdamMiniConfig = AdamMiniConfig {
    lr: 0.0,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weight_decay: 0.1,
    stochastic_rounding_seed: None,
};

/// `adamant_host_adam_mini` over slices (`n` and `state_len` are their lengths) with `CFG`'s
/// hyper-parameters and lr 1e-3.
#[allow(clippy::too_many_arguments)]
fn host_mini<T>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    dtype: i32,
    count: i64,
    clip_coef: f32,
    kind: i64,
    block_len: i64,
    pairs: &[i64],
    msg: &mut [c_char],
) -> i32 {
    let segments = if pairs.is_empty() {
        core::ptr::null()
    } else {
        pairs.as_ptr()
    };
    // SAFETY: every pointer comes from a slice of the stated length.
    unsafe {
        adamant_host_adam_mini(
            ptr(p),
            dtype,
            g.as_ptr() as *const c_void,
            dtype,
            ptr(m),
            ptr(v),
            dtype,
            p.len(),
            v.len(),
            1e-3,
            count,
            clip_coef,
            CFG.beta1,
            CFG.beta2,
            CFG.eps,
            CFG.weight_decay,
            kind,
            block_len,
            segments,
            pairs.len() / 2,
            msg.as_mut_ptr(),
            msg.len(),
        )
    }
}

/// `(kind, block_len, segment pairs)` as the host entry point takes them, and the core layout.
fn layouts() -> Vec<(usize, i64, i64, Vec<i64>)> {
    vec![
        (4099, 0, 0, vec![]),
        (8197, 3, 0, vec![]),
        (37 * 131, 1, 37, vec![]),
        (4096, 2, 1024, vec![]),
        (2048 + 13 + 300, 4, 0, vec![2048, 512, 13, 0, 300, 100]),
    ]
}

fn core_layout(kind: i64, bl: i64, segs: &[Segment]) -> BlockLayout<'_> {
    match kind {
        0 => BlockLayout::Element,
        1 => BlockLayout::Rows {
            row_len: bl as usize,
        },
        2 => BlockLayout::Heads {
            head_numel: bl as usize,
        },
        3 => BlockLayout::Tensor,
        _ => BlockLayout::Segments(segs),
    }
}

#[test]
fn conformance_host_adam_mini_matches_core_reference_path() {
    let mut msg = [0 as c_char; 256];
    for (seed, (n, kind, bl, pairs)) in layouts().into_iter().enumerate() {
        let segs: Vec<Segment> = pairs
            .chunks(2)
            .map(|p| {
                if p[1] == 0 {
                    Segment::Element { len: p[0] as usize }
                } else {
                    Segment::Blocks {
                        len: p[0] as usize,
                        block_len: p[1] as usize,
                    }
                }
            })
            .collect();
        let layout = core_layout(kind, bl, &segs);
        let sl = layout.state_len(n).unwrap();
        for finite_grad in [false, true] {
            let s = seed as u32 * 10;
            let g = if finite_grad {
                finite(n, s + 1)
            } else {
                adversarial(n, s + 1)
            };
            let (mut p, mut m) = (adversarial(n, s + 2), adversarial(n, s + 3));
            let v0 = if finite_grad {
                finite(sl, s + 4)
            } else {
                adversarial(sl, s + 4)
            };
            let mut v: Vec<f32> = v0.iter().map(|x| x.abs()).collect();
            let (mut wp, mut wm, mut wv) = (p.clone(), m.clone(), v.clone());
            for (count, coef) in [(0i64, 1.0f32), (1, 0.37), (5, 1.0)] {
                let rc = host_mini(
                    &mut p, &g, &mut m, &mut v, 11, count, coef, kind, bl, &pairs, &mut msg,
                );
                assert_eq!(rc, 0, "{}", msg_of(&msg));
                let mut opt = AdamMini::new(CFG).unwrap();
                opt.state.step = count as u64;
                let mut o = StepOptions::new(1e-3);
                if coef != 1.0 {
                    o.clip_coef = Some(coef);
                }
                let Begin::Apply(plan) = opt.begin::<f32, _>(&o, []).unwrap() else {
                    panic!("skipped")
                };
                apply_tensor(
                    &mut wp,
                    &g,
                    &mut wm,
                    &mut wv,
                    &layout,
                    true,
                    &plan,
                    Path::Reference,
                )
                .unwrap();
                assert!(same(&p, &wp), "param, layout {kind}, count {count}");
                assert!(same(&m, &wm), "exp_avg, layout {kind}, count {count}");
                assert!(same(&v, &wv), "exp_avg_sq, layout {kind}, count {count}");
            }
            if finite_grad {
                assert!(v.iter().all(|x| x.is_finite()));
            }
        }
    }
}

#[test]
fn conformance_sharded_block_phases_equal_the_whole_tensor() {
    let mut msg = [0 as c_char; 256];
    let (n, k) = (4 * 8192, 4);
    let g = finite(n, 91);
    let (p0, m0) = (adversarial(n, 92), adversarial(n, 93));
    let v0 = [0.25f32];
    let (mut wp, mut wm, mut wv) = (p0.clone(), m0.clone(), v0.to_vec());
    let rc = host_mini(
        &mut wp,
        &g,
        &mut wm,
        &mut wv,
        11,
        2,
        0.5,
        3,
        0,
        &[],
        &mut msg,
    );
    assert_eq!(rc, 0, "{}", msg_of(&msg));
    // SAFETY (all calls below): buffers have their stated lengths; msg has its length.
    let piece = n / k;
    let mut parts = vec![0f32; n / 4096];
    for i in 0..k {
        let t = piece / 4096;
        let rc = unsafe {
            adamant_host_adam_mini_partials(
                g[i * piece..].as_ptr() as *const c_void,
                11,
                piece,
                0.5,
                parts[i * t..].as_mut_ptr(),
                t,
                msg.as_mut_ptr(),
                msg.len(),
            )
        };
        assert_eq!(rc, 0, "{}", msg_of(&msg));
    }
    let mut sum = 0f32;
    let rc = unsafe {
        adamant_host_combine(
            parts.as_ptr(),
            parts.len(),
            &mut sum,
            msg.as_mut_ptr(),
            msg.len(),
        )
    };
    assert_eq!(rc, 0);
    let (mut p, mut m) = (p0.clone(), m0.clone());
    for i in 0..k {
        let mut v = v0;
        let r = i * piece..(i + 1) * piece;
        let rc = unsafe {
            adamant_host_adam_mini_block(
                ptr(&mut p[r.clone()]),
                11,
                g[r.clone()].as_ptr() as *const c_void,
                11,
                ptr(&mut m[r.clone()]),
                ptr(&mut v),
                11,
                piece,
                sum,
                n as u64,
                1e-3,
                2,
                0.5,
                0.9,
                0.95,
                1e-8,
                0.1,
                msg.as_mut_ptr(),
                msg.len(),
            )
        };
        assert_eq!(rc, 0, "{}", msg_of(&msg));
        assert_eq!(v[0].to_bits(), wv[0].to_bits(), "piece {i}");
    }
    assert!(same(&p, &wp) && same(&m, &wm));
}

#[test]
fn conformance_host_adam_mini_bf16_and_errors_write_nothing() {
    let mut msg = [0 as c_char; 256];
    let n = 4096;
    let g: Vec<bf16> = finite(n, 5).iter().map(|&x| bf16::from_f32(x)).collect();
    let mut p: Vec<bf16> = adversarial(n, 6)
        .iter()
        .map(|&x| bf16::from_f32(x))
        .collect();
    let mut m = vec![bf16::from_f32(0.0); n];
    let mut v = vec![bf16::from_f32(0.0); 4];
    let (mut wp, mut wm, mut wv) = (p.clone(), m.clone(), v.clone());
    let rc = host_mini(
        &mut p,
        &g,
        &mut m,
        &mut v,
        16,
        0,
        1.0,
        2,
        1024,
        &[],
        &mut msg,
    );
    assert_eq!(rc, 0, "{}", msg_of(&msg));
    let mut opt = AdamMini::new(CFG).unwrap();
    opt.step_tensor(
        &mut wp,
        &g,
        &mut wm,
        &mut wv,
        &BlockLayout::Heads { head_numel: 1024 },
        true,
        &StepOptions::new(1e-3),
    )
    .unwrap();
    let bits = |x: &[bf16]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&p), bits(&wp));
    assert_eq!(bits(&v), bits(&wv));
    // A state of the wrong length: an error naming it, nothing written.
    let before = (bits(&p), bits(&m));
    let rc = host_mini(
        &mut p,
        &g,
        &mut m,
        &mut v[..3],
        16,
        1,
        1.0,
        2,
        1024,
        &[],
        &mut msg,
    );
    assert_eq!(rc, 1);
    assert!(
        msg_of(&msg).contains("`exp_avg_sq` has 3 elements, expected 4"),
        "{}",
        msg_of(&msg)
    );
    assert_eq!((bits(&p), bits(&m)), before);
}

#[test]
fn spec_host_classify_uses_core_name_rules() {
    let mut msg = [0 as c_char; 256];
    let cases: &[(&str, &[i64], [i64; 5])] = &[
        (
            "model.layers.3.self_attn.q_proj.weight",
            &[64, 64],
            [2, 1024, 1, 1, 4],
        ),
        (
            "model.layers.3.self_attn.k_proj.weight",
            &[32, 64],
            [2, 1024, 1, 1, 2],
        ),
        (
            "model.layers.3.mlp.down_proj.weight",
            &[64, 128],
            [1, 128, 1, 2, 64],
        ),
        ("model.layers.3.mlp.down_proj.bias", &[64], [0, 0, 0, 0, 64]),
        ("model.norm.weight", &[64], [3, 0, 0, 3, 1]),
        (
            "transformer.h.0.attn.proj.weight",
            &[64, 64],
            [1, 64, 1, 2, 64],
        ),
    ];
    for (name, shape, want) in cases {
        let mut out = [0i64; 5];
        // SAFETY: name/shape/out have the stated lengths.
        let rc = unsafe {
            adamant_host_adam_mini_classify(
                name.as_ptr(),
                name.len(),
                shape.as_ptr(),
                shape.len(),
                64,
                4,
                2,
                out.as_mut_ptr(),
                msg.as_mut_ptr(),
                msg.len(),
            )
        };
        assert_eq!(rc, 0, "{}", msg_of(&msg));
        assert_eq!(&out, want, "{name}");
    }
    let mut out = [0i64; 5];
    let name = "x";
    // SAFETY: as above.
    let rc = unsafe {
        adamant_host_adam_mini_classify(
            name.as_ptr(),
            1,
            [4i64].as_ptr(),
            1,
            64,
            4,
            3,
            out.as_mut_ptr(),
            msg.as_mut_ptr(),
            msg.len(),
        )
    };
    assert_eq!(rc, 1);
    assert!(msg_of(&msg).contains("n_kv_heads"), "{}", msg_of(&msg));
}

#[test]
fn conformance_host_adagc_matches_core_plan_and_commit() {
    let mut msg = [0 as c_char; 256];
    for mode in [AdaGcMode::PerTensor, AdaGcMode::Global] {
        let cfg = AdaGcConfig {
            t_start: 3,
            max_norm: 2.0,
            mode,
            ..AdaGcConfig::default()
        };
        let mut clip = AdaGc::new(cfg).unwrap();
        let n = 5;
        let gl = clip.gamma_len(n);
        let (mut gamma, mut wgamma) = (vec![0f32; gl], vec![0f32; gl]);
        for step in 0..9i64 {
            let spike = if step == 6 { 100.0 } else { 1.0 };
            let sums: Vec<f32> = (0..n)
                .map(|i| {
                    let g = finite(300 + 50 * i, (step * 7 + i as i64) as u32);
                    tensor_sum_sq(&g, 1.0) * if i % 2 == 0 { spike } else { 1.0 } * 1e-6
                })
                .collect();
            let (mut coefs, mut norm) = (vec![0f32; n], 0f32);
            // SAFETY: stated lengths.
            let rc = unsafe {
                adamant_host_adagc(
                    sums.as_ptr(),
                    n,
                    gamma.as_mut_ptr(),
                    gl,
                    coefs.as_mut_ptr(),
                    &mut norm,
                    step,
                    2.0,
                    1.04,
                    0.99,
                    1e-6,
                    3,
                    (mode == AdaGcMode::Global) as i32,
                    msg.as_mut_ptr(),
                    msg.len(),
                )
            };
            assert_eq!(rc, 0, "{}", msg_of(&msg));
            let mut wc = vec![0f32; n];
            let plan = clip.plan(&sums, &wgamma, &mut wc).unwrap();
            assert!(clip.commit(&sums, &mut wgamma, &plan).unwrap());
            assert!(same(&coefs, &wc), "coefs, step {step}");
            assert!(same(&gamma, &wgamma), "gamma, step {step}");
            assert_eq!(norm.to_bits(), plan.global_norm.to_bits());
            if step == 6 {
                assert!(coefs[0] < 0.5, "the spike was not clipped: {coefs:?}");
            }
        }
    }
}

#[test]
fn conformance_host_loco_matches_core() {
    let mut msg = [0 as c_char; 256];
    let (world, len, group) = (4usize, 4 * 1000, 256usize);
    for storage in [ErrorStorage::F32, ErrorStorage::Int8] {
        let cfg = LocoConfig {
            err_beta: 0.8,
            group_len: group,
            bits: Bits::Four,
            error_storage: storage,
            reset_every: 3,
        };
        let mut lc = Loco::new(cfg).unwrap();
        let layout = lc.layout(len, world, 1).unwrap();
        let mut sizes = [0usize; 3];
        // SAFETY: stated lengths.
        let rc = unsafe {
            adamant_host_loco_layout(
                len,
                world as i64,
                group as i64,
                4,
                (storage == ErrorStorage::Int8) as i64,
                sizes.as_mut_ptr(),
                msg.as_mut_ptr(),
                msg.len(),
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(
            sizes,
            [
                layout.chunk_len(),
                layout.compress_len(),
                layout.error_len(storage)
            ]
        );
        let elen = sizes[2];
        let (mut ef, mut wef) = (vec![0f32; len], vec![0f32; len]);
        let (mut e8, mut we8) = (vec![0u8; elen], vec![0u8; elen]);
        for step in 0..4i64 {
            let g = finite(len, 40 + step as u32);
            let mut packed = vec![0u8; sizes[1]];
            let (err_ptr, err_len) = match storage {
                ErrorStorage::F32 => (ptr(&mut ef), len),
                ErrorStorage::Int8 => (ptr(&mut e8), elen),
            };
            // SAFETY: stated lengths.
            let rc = unsafe {
                adamant_host_loco_compress(
                    g.as_ptr() as *const c_void,
                    11,
                    len,
                    err_ptr,
                    (storage == ErrorStorage::Int8) as i64,
                    err_len,
                    packed.as_mut_ptr(),
                    packed.len(),
                    step,
                    world as i64,
                    group as i64,
                    4,
                    0.8,
                    3,
                    msg.as_mut_ptr(),
                    msg.len(),
                )
            };
            assert_eq!(rc, 0, "{}", msg_of(&msg));
            let plan = lc.begin().unwrap();
            let mut wpacked = vec![0u8; sizes[1]];
            match storage {
                ErrorStorage::F32 => {
                    loco::compress_reference(&plan, &layout, &g, &mut wef, &mut wpacked).unwrap()
                }
                ErrorStorage::Int8 => {
                    loco::compress(&plan, &layout, &g, ErrorBuf::Int8(&mut we8), &mut wpacked)
                        .unwrap()
                }
            }
            lc.commit(&plan);
            assert_eq!(packed, wpacked, "packed, step {step}");
            assert!(same(&ef, &wef) && e8 == we8, "error, step {step}");
            // The final reduction of a received set (here: this rank's chunks, as if sent by
            // four ranks).
            let shard = len / world;
            let (mut out, mut wout) = (vec![0f32; shard], vec![0f32; shard]);
            let rc = unsafe {
                adamant_host_loco_decompress_reduce(
                    packed.as_ptr(),
                    packed.len(),
                    out.as_mut_ptr(),
                    shard,
                    world as i64,
                    group as i64,
                    4,
                    msg.as_mut_ptr(),
                    msg.len(),
                )
            };
            assert_eq!(rc, 0, "{}", msg_of(&msg));
            loco::decompress_reduce(&layout, &packed, &mut wout).unwrap();
            assert!(same(&out, &wout));
        }
    }
}

#[test]
fn conformance_host_adam_clip_coef_matches_core_step_options() {
    let mut msg = [0 as c_char; 256];
    let n = 4099;
    let g = adversarial(n, 61);
    let (mut p, mut m, mut v) = (adversarial(n, 62), vec![0f32; n], vec![0f32; n]);
    let (mut wp, mut wm, mut wv) = (p.clone(), m.clone(), v.clone());
    let cfg = AdamConfig {
        lr: 1e-3,
        weight_decay: 0.01,
        ..AdamConfig::default()
    };
    let mut adam = Adam::new(cfg).unwrap();
    for count in 0..3 {
        // SAFETY: stated lengths.
        let rc = unsafe {
            adamant_host_adam(
                ptr(&mut p),
                11,
                g.as_ptr() as *const c_void,
                11,
                ptr(&mut m),
                ptr(&mut v),
                11,
                n,
                1e-3,
                count,
                cfg.beta1,
                cfg.beta2,
                cfg.eps,
                0.01,
                cfg.decoupled as i32,
                0.25,
                msg.as_mut_ptr(),
                msg.len(),
            )
        };
        assert_eq!(rc, 0, "{}", msg_of(&msg));
        let mut o = StepOptions::new(1e-3);
        o.clip_coef = Some(0.25);
        adam.step(&mut wp, &g, &mut wm, &mut wv, &o).unwrap();
        assert!(
            same(&p, &wp) && same(&m, &wm) && same(&v, &wv),
            "count {count}"
        );
    }
}
