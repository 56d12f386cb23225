//! Adam-mini and AdaGC through the C ABI give the same bits as the Rust API on the same
//! inputs: every parameter/gradient/state dtype, every layout kind (explicit segments
//! included), adversarial values, several steps, loss scale, per-tensor clip coefficients,
//! weight decay, stochastic rounding, and the sharded phases of a block split over ranks.

mod common;
use adamant::*;
use adamant_core::clip::{AdaGc, AdaGcConfig, AdaGcMode};
use adamant_core::rules::adam_mini::{apply_tensor, Path};
use adamant_core::{
    AdamMini, AdamMiniConfig, Begin, BlockLayout, Element, Segment, StateElement, StepOptions,
    StepOutcome,
};
use common::*;

/// A layout case: the C descriptor (segments borrowed from `segs`), the core layout, and the
/// tensor length it fits.
fn layouts(segs: &[adamant_block_segment], core_segs: &[Segment]) -> Vec<(u32, usize, usize)> {
    let seg_len: usize = segs.iter().map(|s| s.len).sum();
    let _ = core_segs;
    vec![
        (0, 0, 37),
        (1, 24, 24 * 5),
        (2, 64, 64 * 3),
        (3, 0, 4099),
        (3, 0, 0),
        (4, 0, seg_len),
    ]
}

fn core_layout(kind: u32, block_len: usize, segs: &[Segment]) -> BlockLayout<'_> {
    match kind {
        0 => BlockLayout::Element,
        1 => BlockLayout::Rows { row_len: block_len },
        2 => BlockLayout::Heads {
            head_numel: block_len,
        },
        3 => BlockLayout::Tensor,
        _ => BlockLayout::Segments(segs),
    }
}

fn c_layout(
    kind: u32,
    block_len: usize,
    segs: &[adamant_block_segment],
    wd: bool,
) -> adamant_block_layout {
    adamant_block_layout {
        kind,
        block_len,
        segments: segs.as_ptr(),
        segment_count: segs.len(),
        weight_decay: wd as u32,
    }
}

const C_SEGS: [adamant_block_segment; 4] = [
    adamant_block_segment {
        len: 96,
        block_len: 32,
    },
    adamant_block_segment {
        len: 5,
        block_len: 0,
    },
    adamant_block_segment {
        len: 40,
        block_len: 40,
    },
    adamant_block_segment {
        len: 3,
        block_len: 1,
    },
];
const CORE_SEGS: [Segment; 4] = [
    Segment::Blocks {
        len: 96,
        block_len: 32,
    },
    Segment::Element { len: 5 },
    Segment::Blocks {
        len: 40,
        block_len: 40,
    },
    Segment::Blocks {
        len: 3,
        block_len: 1,
    },
];

fn mini_case<P: Element, G: Element, S: StateElement>() -> usize {
    let mut cases = 0;
    for (li, (kind, bl, n)) in layouts(&C_SEGS, &CORE_SEGS).into_iter().enumerate() {
        for variant in 0..4usize {
            let mut rng = Rng((li * 131 + variant * 7) as u64 + 1);
            let core_l = core_layout(kind, bl, &CORE_SEGS);
            let wd = variant != 1;
            let cl = c_layout(kind, bl, &C_SEGS, wd);
            let mut state_len = 0usize;
            // SAFETY: valid struct and out pointer.
            let st = unsafe { adamant_adam_mini_state_len(&cl, n, &mut state_len) };
            assert_eq!(st, adamant_status::Ok);
            assert_eq!(state_len, core_l.state_len(n).unwrap());
            let specials = variant % 2 == 0;
            let mut p: Vec<P> = buffer(&mut rng, n, 2.0, true, false);
            let mut m: Vec<S> = buffer(&mut rng, n, 0.1, true, false);
            let mut v: Vec<S> = (0..state_len)
                .map(|_| S::narrow(rng.float(0.01).abs()))
                .collect();
            let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
            let mut cfg = adamant_adam_mini_config_default();
            cfg.weight_decay = 0.1;
            cfg.beta1 = 0.85;
            if variant == 3 {
                cfg.stochastic_rounding = 1;
                cfg.stochastic_rounding_seed = 0xFEED;
            }
            let mut mini = AdamMini::new(AdamMiniConfig {
                lr: 1e-2,
                beta1: cfg.beta1,
                beta2: cfg.beta2,
                eps: cfg.eps,
                weight_decay: cfg.weight_decay,
                stochastic_rounding_seed: (variant == 3).then_some(0xFEED),
            })
            .unwrap();
            let mut step = 0u64;
            for _ in 0..3 {
                let g: Vec<G> = buffer(&mut rng, n, 1.5, specials, false);
                let mut o = adamant_step_options_default();
                o.lr = 1e-2;
                let mut r = StepOptions::new(1e-2);
                if variant == 1 {
                    o.has_grad_scale = 1;
                    o.grad_scale = 8.0;
                    r.grad_scale = Some(8.0);
                }
                if variant == 2 {
                    o.has_clip_coef = 1;
                    o.clip_coef = 0.5;
                    r.clip_coef = Some(0.5);
                }
                let want = mini.step_tensor(&mut p2, &g, &mut m2, &mut v2, &core_l, wd, &r);
                let want = match want {
                    Ok(StepOutcome::Applied { .. }) => adamant_status::Ok,
                    Ok(StepOutcome::Skipped(s)) => s.into(),
                    Err(e) => e.into(),
                };
                let mut out = u64::MAX;
                // SAFETY: valid views over live vectors.
                let got = unsafe {
                    adamant_adam_mini_step(
                        &cfg,
                        &o,
                        step,
                        &cl,
                        view(&mut p),
                        cview(&g),
                        view(&mut m),
                        view(&mut v),
                        &mut out,
                    )
                };
                assert_eq!(got, want, "layout {kind} n {n} variant {variant}");
                if got == adamant_status::Ok {
                    step = out;
                    assert_eq!(step, mini.state.step);
                }
                assert_eq!(bits(&p), bits(&p2), "param, layout {kind} n {n} v{variant}");
                assert_eq!(bits(&m), bits(&m2));
                assert_eq!(bits(&v), bits(&v2));
                cases += 1;
            }
        }
    }
    cases
}

#[test]
fn spec_adam_mini_step_matches_core_bits_every_dtype_and_layout() {
    use adamant_core::{bf16, f16};
    let mut n = 0;
    n += mini_case::<f32, f32, f32>();
    n += mini_case::<f32, f32, bf16>();
    n += mini_case::<bf16, bf16, f32>();
    n += mini_case::<bf16, f32, bf16>();
    n += mini_case::<f16, f16, f32>();
    n += mini_case::<f16, bf16, bf16>();
    assert_eq!(n, 6 * 6 * 4 * 3);
}

/// `_multi` with per-tensor clip coefficients equals core's plan with `prep.clip_coef` set per
/// tensor, applied with `apply_tensor`.
#[test]
fn spec_adam_mini_multi_with_clip_coefs_matches_core() {
    let mut rng = Rng(99);
    let shapes: [(u32, usize, usize); 3] = [(1, 16, 64), (0, 0, 9), (3, 0, 300)];
    let mut ps: Vec<Vec<f32>> = shapes
        .iter()
        .map(|s| buffer(&mut rng, s.2, 1.0, false, true))
        .collect();
    let mut ms: Vec<Vec<f32>> = shapes.iter().map(|s| vec![0.0; s.2]).collect();
    let mut vs: Vec<Vec<f32>> = shapes
        .iter()
        .map(|&(k, bl, n)| vec![0.0; core_layout(k, bl, &[]).state_len(n).unwrap()])
        .collect();
    let (mut ps2, mut ms2, mut vs2) = (ps.clone(), ms.clone(), vs.clone());
    let cfg = adamant_adam_mini_config_default();
    let mut mini = AdamMini::new(AdamMiniConfig {
        lr: 3e-3,
        ..AdamMiniConfig::default()
    })
    .unwrap();
    let mut step = 0;
    for s in 0..4 {
        let gs: Vec<Vec<f32>> = shapes
            .iter()
            .map(|x| buffer(&mut rng, x.2, 2.0, false, true))
            .collect();
        let coefs = [0.25f32, 1.0, 0.0625 * (s + 1) as f32];
        let r = StepOptions::new(3e-3);
        let plan = match mini.begin(&r, [gs[0].as_slice()]).unwrap() {
            Begin::Apply(p) => p,
            Begin::Skip(_) => unreachable!(),
        };
        for i in 0..3 {
            let mut pl = plan;
            pl.prep.clip_coef = coefs[i];
            let (k, bl, _) = shapes[i];
            apply_tensor(
                &mut ps2[i],
                &gs[i],
                &mut ms2[i],
                &mut vs2[i],
                &core_layout(k, bl, &[]),
                true,
                &pl,
                Path::Fast,
            )
            .unwrap();
        }
        mini.commit(&plan);
        let mut o = adamant_step_options_default();
        o.lr = 3e-3;
        let ls: Vec<adamant_block_layout> = shapes
            .iter()
            .map(|&(k, bl, _)| c_layout(k, bl, &[], true))
            .collect();
        let pv: Vec<_> = ps.iter_mut().map(|x| view(x)).collect();
        let gv: Vec<_> = gs.iter().map(|x| cview(x)).collect();
        let mv: Vec<_> = ms.iter_mut().map(|x| view(x)).collect();
        let vv: Vec<_> = vs.iter_mut().map(|x| view(x)).collect();
        let mut out = 0;
        // SAFETY: arrays of 3 valid views.
        let st = unsafe {
            adamant_adam_mini_step_multi(
                &cfg,
                &o,
                step,
                ls.as_ptr(),
                pv.as_ptr(),
                gv.as_ptr(),
                mv.as_ptr(),
                vv.as_ptr(),
                coefs.as_ptr(),
                3,
                &mut out,
            )
        };
        assert_eq!(st, adamant_status::Ok);
        step = out;
        for i in 0..3 {
            assert_eq!(bits(&ps[i]), bits(&ps2[i]));
            assert_eq!(bits(&ms[i]), bits(&ms2[i]));
            assert_eq!(bits(&vs[i]), bits(&vs2[i]));
        }
    }
    assert_eq!(step, 4);
}

/// A `Tensor` block of 4096 + 700 elements split over two "ranks" at 4096: partials, combine,
/// block step on each piece give the unsharded step's bits.
#[test]
fn spec_adam_mini_sharded_block_matches_unsharded() {
    use adamant_core::bf16;
    let n = 4096 + 700;
    let mut rng = Rng(5);
    let mut p: Vec<bf16> = buffer(&mut rng, n, 1.0, false, true);
    let mut m: Vec<f32> = vec![0.0; n];
    let mut v = vec![0.0f32; 1];
    let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
    let mut cfg = adamant_adam_mini_config_default();
    cfg.weight_decay = 0.05;
    cfg.stochastic_rounding = 1;
    cfg.stochastic_rounding_seed = 11;
    let mut mini = AdamMini::new(AdamMiniConfig {
        lr: 1e-2,
        weight_decay: 0.05,
        stochastic_rounding_seed: Some(11),
        ..AdamMiniConfig::default()
    })
    .unwrap();
    let mut o = adamant_step_options_default();
    o.lr = 1e-2;
    o.has_grad_scale = 1;
    o.grad_scale = 4.0;
    let mut r = StepOptions::new(1e-2);
    r.grad_scale = Some(4.0);
    let mut step = 0;
    for _ in 0..3 {
        let g: Vec<f32> = buffer(&mut rng, n, 3.0, false, true);
        mini.step_tensor(
            &mut p2,
            &g,
            &mut m2,
            &mut v2,
            &BlockLayout::Tensor,
            true,
            &r,
        )
        .unwrap();
        let mut partials = vec![0.0f32; 2];
        // SAFETY: valid views and arrays.
        unsafe {
            assert_eq!(
                adamant_adam_mini_partials(&o, cview(&g[..4096]), partials.as_mut_ptr(), 1),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_adam_mini_partials(&o, cview(&g[4096..]), partials.as_mut_ptr().add(1), 1),
                adamant_status::Ok
            );
        }
        let mut sum = 0.0f32;
        // SAFETY: valid array and out pointer.
        assert_eq!(
            unsafe { adamant_reduce_combine(partials.as_ptr(), 2, &mut sum) },
            adamant_status::Ok
        );
        let mut out = 0;
        let mut v_rank1 = v.clone();
        let (pa, pb) = p.split_at_mut(4096);
        let (ma, mb) = m.split_at_mut(4096);
        // SAFETY: valid views.
        unsafe {
            assert_eq!(
                adamant_adam_mini_block_step(
                    &cfg,
                    &o,
                    step,
                    sum,
                    n as u64,
                    0,
                    1,
                    view(pa),
                    cview(&g[..4096]),
                    view(ma),
                    view(&mut v),
                    &mut out
                ),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_adam_mini_block_step(
                    &cfg,
                    &o,
                    step,
                    sum,
                    n as u64,
                    4096,
                    1,
                    view(pb),
                    cview(&g[4096..]),
                    view(mb),
                    view(&mut v_rank1),
                    &mut out
                ),
                adamant_status::Ok
            );
        }
        step = out;
        assert_eq!(bits(&v), bits(&v_rank1));
        assert_eq!(bits(&p), bits(&p2));
        assert_eq!(bits(&m), bits(&m2));
        assert_eq!(bits(&v), bits(&v2));
    }
}

/// AdaGC through `coefs` + `commit` equals core's `plan` + `commit`, both modes, across the
/// warm-up boundary; a step the optimizer skipped (no commit) leaves gamma unchanged.
#[test]
fn spec_adagc_phases_match_core() {
    for mode in [0u32, 1] {
        let mut cfg = adamant_adagc_config_default();
        cfg.t_start = 2;
        cfg.mode = mode;
        let mut core = AdaGc::new(AdaGcConfig {
            t_start: 2,
            mode: if mode == 0 {
                AdaGcMode::PerTensor
            } else {
                AdaGcMode::Global
            },
            ..AdaGcConfig::default()
        })
        .unwrap();
        let count = 5;
        let mut glen = 0;
        // SAFETY: valid pointers.
        assert_eq!(
            unsafe { adamant_adagc_gamma_len(&cfg, count, &mut glen) },
            adamant_status::Ok
        );
        assert_eq!(glen, core.gamma_len(count));
        let mut gamma = vec![0.0f32; glen];
        let mut gamma2 = gamma.clone();
        let mut rng = Rng(3 + mode as u64);
        let mut step = 0;
        for k in 0..8 {
            let sums: Vec<f32> = (0..count)
                .map(|i| (rng.float(4.0) * (1 + i + k % 3) as f32).abs())
                .collect();
            let mut want = vec![0.0f32; count];
            let plan = core.plan(&sums, &gamma2, &mut want).unwrap();
            let mut coefs = vec![f32::NAN; count];
            let mut norm = 0.0f32;
            // SAFETY: valid arrays.
            let st = unsafe {
                adamant_adagc_coefs(
                    &cfg,
                    step,
                    sums.as_ptr(),
                    count,
                    gamma.as_ptr(),
                    glen,
                    coefs.as_mut_ptr(),
                    &mut norm,
                )
            };
            assert_eq!(st, adamant_status::Ok);
            assert_eq!(bits(&coefs), bits(&want));
            assert_eq!(norm.to_bits(), plan.global_norm.to_bits());
            if k == 4 {
                continue; // the optimizer skipped this step: nothing is committed
            }
            assert!(core.commit(&sums, &mut gamma2, &plan).unwrap());
            let mut out = 0;
            // SAFETY: valid arrays.
            let st = unsafe {
                adamant_adagc_commit(
                    &cfg,
                    step,
                    sums.as_ptr(),
                    count,
                    gamma.as_mut_ptr(),
                    glen,
                    &mut out,
                )
            };
            assert_eq!(st, adamant_status::Ok);
            step = out;
            assert_eq!(step, core.state.step);
            assert_eq!(bits(&gamma), bits(&gamma2));
        }
        // A non-finite sum: skip, nothing written.
        let sums = [1.0, f32::INFINITY, 2.0, 0.0, 1.0];
        let mut coefs = [7.0f32; 5];
        let mut norm = 7.0f32;
        let g0 = gamma.clone();
        let mut out = 7;
        // SAFETY: valid arrays.
        unsafe {
            assert_eq!(
                adamant_adagc_coefs(
                    &cfg,
                    step,
                    sums.as_ptr(),
                    5,
                    gamma.as_ptr(),
                    glen,
                    coefs.as_mut_ptr(),
                    &mut norm
                ),
                adamant_status::SkippedNonFinite
            );
            assert_eq!(
                adamant_adagc_commit(
                    &cfg,
                    step,
                    sums.as_ptr(),
                    5,
                    gamma.as_mut_ptr(),
                    glen,
                    &mut out
                ),
                adamant_status::SkippedNonFinite
            );
        }
        assert_eq!(coefs, [7.0; 5]);
        assert_eq!(norm, 7.0);
        assert_eq!(out, 7);
        assert_eq!(bits(&gamma), bits(&g0));
    }
}
