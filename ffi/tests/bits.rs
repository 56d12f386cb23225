//! The C ABI gives the same bits as the Rust API (`adamant_core`'s optimizer values, with the
//! software square root) on the same inputs: every parameter/gradient/state dtype, odd
//! lengths, adversarial values (NaN payloads, +-0, subnormals, +-inf, extremes), several
//! steps, loss scale, clip coefficient, weight decay and stochastic rounding. Single-tensor
//! and multi-tensor calls agree, and reductions match core.

mod common;
use adamant::*;
use adamant_core::rules::adam::AdamConfig;
use adamant_core::rules::lion::LionConfig;
use adamant_core::rules::sgd::SgdConfig;
use adamant_core::{Adam, Element, Lion, Sgd, StateElement, StepOptions, StepOutcome};
use common::*;

const LENS: [usize; 6] = [0, 1, 7, 33, 1000, 4099];

/// The step options of variant `k` (0..4) in both forms.
fn options(k: usize, lr: f64) -> (adamant_step_options, StepOptions) {
    let mut c = adamant_step_options_default();
    c.lr = lr;
    let mut r = StepOptions::new(lr);
    match k {
        0 => {}
        1 => {
            c.has_grad_scale = 1;
            c.grad_scale = 1024.0;
            r.grad_scale = Some(1024.0);
        }
        2 => {
            c.has_clip_coef = 1;
            c.clip_coef = 0.375;
            r.clip_coef = Some(0.375);
        }
        _ => {
            c.has_grad_scale = 1;
            c.grad_scale = 3.0;
            c.has_clip_coef = 1;
            c.clip_coef = 0.7;
            r.grad_scale = Some(3.0);
            r.clip_coef = Some(0.7);
        }
    }
    (c, r)
}

fn status_of(r: &Result<StepOutcome, adamant_core::StepError>) -> adamant_status {
    match r {
        Ok(StepOutcome::Applied { .. }) => adamant_status::Ok,
        Ok(StepOutcome::Skipped(s)) => (*s).into(),
        Err(e) => (*e).into(),
    }
}

fn adam_case<P: Element, G: Element, S: StateElement>() {
    let (mut applied, mut skipped) = (0, 0);
    for (li, &n) in LENS.iter().enumerate() {
        for decoupled in [true, false] {
            for variant in 0..4 {
                let seed = (li * 97 + variant * 13 + decoupled as usize) as u64;
                let mut rng = Rng(seed);
                // Variant 0 and 2 keep specials in the gradient (no finite scan); 1 and 3 use a
                // loss scale, which scans, so half of those runs skip.
                let specials = rng.chance(1, 2) || variant % 2 == 0;
                let mut p: Vec<P> = buffer(&mut rng, n, 2.0, true, false);
                let mut m: Vec<S> = buffer(&mut rng, n, 0.1, true, false);
                let mut v: Vec<S> = buffer(&mut rng, n, 0.01, false, true)
                    .iter()
                    .map(|x: &S| S::narrow(x.widen().abs()))
                    .collect();
                let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
                let mut cfg = if decoupled {
                    adamant_adamw_config_default()
                } else {
                    adamant_adam_config_default()
                };
                cfg.weight_decay = 0.1;
                cfg.beta1 = 0.85;
                if variant == 3 && P::DTYPE == adamant_core::Dtype::Bf16 {
                    cfg.stochastic_rounding = 1;
                    cfg.stochastic_rounding_seed = 0xDEAD_BEEF;
                }
                let mut adam = Adam::new(AdamConfig {
                    lr: 3e-3,
                    beta1: cfg.beta1,
                    beta2: cfg.beta2,
                    eps: cfg.eps,
                    weight_decay: cfg.weight_decay,
                    decoupled,
                    stochastic_rounding_seed: (cfg.stochastic_rounding == 1)
                        .then_some(cfg.stochastic_rounding_seed),
                })
                .unwrap();
                let mut step = 0u64;
                for s in 0..3 {
                    let g: Vec<G> = buffer(&mut rng, n, 1.0, specials, false);
                    let lr = 3e-3 / (s + 1) as f64;
                    let (copt, ropt) = options(variant, lr);
                    let want = status_of(&adam.step(&mut p2, &g, &mut m2, &mut v2, &ropt));
                    let mut out = u64::MAX;
                    let f = if decoupled {
                        adamant_adamw_step
                    } else {
                        adamant_adam_step
                    };
                    // SAFETY: valid views over live vectors; out points to a local.
                    let got = unsafe {
                        f(
                            &cfg,
                            &copt,
                            step,
                            view(&mut p),
                            cview(&g),
                            view(&mut m),
                            view(&mut v),
                            &mut out,
                        )
                    };
                    let ctx = format!(
                        "adam decoupled={decoupled} P={:?} G={:?} S={:?} n={n} variant={variant} step={s}",
                        P::DTYPE, G::DTYPE, S::DTYPE
                    );
                    assert_eq!(got, want, "{ctx}");
                    if got == adamant_status::Ok {
                        applied += 1;
                        step += 1;
                        assert_eq!(out, step, "{ctx}");
                    } else {
                        skipped += 1;
                        assert_eq!(out, u64::MAX, "{ctx}: out_step written on {got:?}");
                    }
                    assert_eq!(bits(&p), bits(&p2), "param {ctx}");
                    assert_eq!(bits(&m), bits(&m2), "exp_avg {ctx}");
                    assert_eq!(bits(&v), bits(&v2), "exp_avg_sq {ctx}");
                }
            }
        }
    }
    // Both paths were exercised: applied steps and skipped ones.
    assert!(
        applied > 100 && skipped > 5,
        "applied {applied} skipped {skipped}"
    );
}

fn sgd_case<P: Element, G: Element, S: StateElement>() {
    for (li, &n) in LENS.iter().enumerate() {
        for (mi, (momentum, dampening, nesterov)) in
            [(0.0, 0.0, false), (0.9, 0.1, false), (0.9, 0.0, true)]
                .into_iter()
                .enumerate()
        {
            let mut rng = Rng((li * 31 + mi) as u64 + 1000);
            let mut p: Vec<P> = buffer(&mut rng, n, 2.0, true, false);
            let blen = if momentum != 0.0 { n } else { 0 };
            let mut b: Vec<S> = vec![S::narrow(0.0); blen];
            let (mut p2, mut b2) = (p.clone(), b.clone());
            let mut cfg = adamant_sgd_config_default();
            cfg.momentum = momentum;
            cfg.dampening = dampening;
            cfg.nesterov = nesterov as u32;
            cfg.weight_decay = 0.01;
            let mut sgd = Sgd::new(SgdConfig {
                momentum,
                dampening,
                nesterov,
                weight_decay: 0.01,
                ..SgdConfig::new(0.1)
            })
            .unwrap();
            let mut step = 0u64;
            for s in 0..3 {
                let g: Vec<G> = buffer(&mut rng, n, 1.0, true, false);
                let (copt, ropt) = options(s % 4, 0.1);
                let want = status_of(&sgd.step(&mut p2, &g, &mut b2, &ropt));
                let mut out = u64::MAX;
                // SAFETY: valid views over live vectors.
                let got = unsafe {
                    adamant_sgd_step(
                        &cfg,
                        &copt,
                        step,
                        view(&mut p),
                        cview(&g),
                        view(&mut b),
                        &mut out,
                    )
                };
                let ctx = format!(
                    "sgd P={:?} G={:?} S={:?} n={n} m={mi} s={s}",
                    P::DTYPE,
                    G::DTYPE,
                    S::DTYPE
                );
                assert_eq!(got, want, "{ctx}");
                if got == adamant_status::Ok {
                    step += 1;
                    assert_eq!(out, step);
                }
                assert_eq!(bits(&p), bits(&p2), "param {ctx}");
                assert_eq!(bits(&b), bits(&b2), "momentum_buffer {ctx}");
            }
        }
    }
}

fn lion_case<P: Element, G: Element, S: StateElement>() {
    for (li, &n) in LENS.iter().enumerate() {
        let mut rng = Rng(li as u64 + 5000);
        let mut p: Vec<P> = buffer(&mut rng, n, 2.0, true, false);
        let mut m: Vec<S> = buffer(&mut rng, n, 0.1, true, false);
        let (mut p2, mut m2) = (p.clone(), m.clone());
        let mut cfg = adamant_lion_config_default();
        cfg.weight_decay = 0.5;
        let mut lion = Lion::new(LionConfig {
            weight_decay: 0.5,
            ..LionConfig::official()
        })
        .unwrap();
        let mut step = 0u64;
        for s in 0..4 {
            let g: Vec<G> = buffer(&mut rng, n, 1.0, true, false);
            let (copt, ropt) = options(s, 1e-2);
            let want = status_of(&lion.step(&mut p2, &g, &mut m2, &ropt));
            let mut out = u64::MAX;
            // SAFETY: valid views over live vectors.
            let got = unsafe {
                adamant_lion_step(
                    &cfg,
                    &copt,
                    step,
                    view(&mut p),
                    cview(&g),
                    view(&mut m),
                    &mut out,
                )
            };
            let ctx = format!(
                "lion P={:?} G={:?} S={:?} n={n} s={s}",
                P::DTYPE,
                G::DTYPE,
                S::DTYPE
            );
            assert_eq!(got, want, "{ctx}");
            if got == adamant_status::Ok {
                step += 1;
                assert_eq!(out, step);
            }
            assert_eq!(bits(&p), bits(&p2), "param {ctx}");
            assert_eq!(bits(&m), bits(&m2), "exp_avg {ctx}");
        }
    }
}

#[test]
fn conformance_adam_abi_equals_rust_api() {
    for_all_dtypes!(adam_case);
}

#[test]
fn conformance_sgd_abi_equals_rust_api() {
    for_all_dtypes!(sgd_case);
}

#[test]
fn conformance_lion_abi_equals_rust_api() {
    for_all_dtypes!(lion_case);
}

/// Multi-tensor AdamW over tensors of mixed dtypes and lengths equals one call per tensor.
#[test]
fn conformance_multi_equals_single() {
    use adamant_core::bf16;
    let mut rng = Rng(77);
    let lens = [5usize, 0, 4096, 300, 1];
    let mut p32: Vec<Vec<f32>> = lens
        .iter()
        .map(|&n| buffer(&mut rng, n, 1.0, true, false))
        .collect();
    let g16: Vec<Vec<bf16>> = lens
        .iter()
        .map(|&n| buffer(&mut rng, n, 1.0, true, false))
        .collect();
    let mut m: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
    let mut v: Vec<Vec<bf16>> = lens.iter().map(|&n| vec![bf16::ZERO; n]).collect();
    let mut m_b: Vec<Vec<bf16>> = lens.iter().map(|&n| vec![bf16::ZERO; n]).collect();
    let (mut p2, mut m2, mut v2) = (p32.clone(), m.clone(), v.clone());
    // Exp_avg and exp_avg_sq must share a dtype: use f32/f32 for the singles and the multi.
    let _ = &mut m_b;
    let mut v32: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
    let mut v32b = v32.clone();
    let cfg = adamant_adamw_config_default();
    let mut opt = adamant_step_options_default();
    for step in 0..3u64 {
        opt.lr = 1e-2 / (step + 1) as f64;
        let params: Vec<adamant_tensor> = p32.iter_mut().map(|x| view(x)).collect();
        let grads: Vec<adamant_const_tensor> = g16.iter().map(|x| cview(x)).collect();
        let ms: Vec<adamant_tensor> = m.iter_mut().map(|x| view(x)).collect();
        let vs: Vec<adamant_tensor> = v32.iter_mut().map(|x| view(x)).collect();
        let mut out = 0;
        // SAFETY: arrays of valid views over live vectors.
        let s = unsafe {
            adamant_adamw_step_multi(
                &cfg,
                &opt,
                step,
                params.as_ptr(),
                grads.as_ptr(),
                ms.as_ptr(),
                vs.as_ptr(),
                lens.len(),
                &mut out,
            )
        };
        assert_eq!(s, adamant_status::Ok);
        assert_eq!(out, step + 1);
        for i in 0..lens.len() {
            let mut o = 0;
            // SAFETY: valid views.
            let s = unsafe {
                adamant_adamw_step(
                    &cfg,
                    &opt,
                    step,
                    view(&mut p2[i]),
                    cview(&g16[i]),
                    view(&mut m2[i]),
                    view(&mut v32b[i]),
                    &mut o,
                )
            };
            assert_eq!(s, adamant_status::Ok);
        }
        for i in 0..lens.len() {
            assert_eq!(bits(&p32[i]), bits(&p2[i]), "tensor {i} step {step}");
            assert_eq!(bits(&m[i]), bits(&m2[i]));
            assert_eq!(bits(&v32[i]), bits(&v32b[i]));
        }
    }
    let _ = (&mut v, &mut v2);
}

/// Whole-tensor reductions, partials + combine and max-abs equal core's, and tile-aligned
/// shards reproduce the unsharded bits through the ABI.
#[test]
fn conformance_reductions_equal_core() {
    use adamant_core::reduce;
    let mut rng = Rng(9);
    for n in [0usize, 1, 4095, 4096, 4097, 3 * 4096 + 5] {
        let x: Vec<f32> = buffer(&mut rng, n, 100.0, false, true);
        for (op, want) in [(0u32, reduce::sum(&x)), (1, reduce::sum_sq(&x))] {
            let mut r = f32::NAN;
            // SAFETY: valid view and out pointer.
            assert_eq!(
                unsafe { adamant_reduce(cview(&x), op, &mut r) },
                adamant_status::Ok
            );
            assert_eq!(r.to_bits(), want.to_bits(), "n={n} op={op}");
            let k = adamant_reduce_tile_count(n);
            let mut parts = vec![0.0f32; k];
            // SAFETY: `parts` holds k floats.
            let s = unsafe { adamant_reduce_partials(cview(&x), op, parts.as_mut_ptr(), k) };
            assert_eq!(s, adamant_status::Ok);
            let mut c = f32::NAN;
            // SAFETY: valid pointers.
            assert_eq!(
                unsafe { adamant_reduce_combine(parts.as_ptr(), k, &mut c) },
                adamant_status::Ok
            );
            assert_eq!(
                c.to_bits(),
                want.to_bits(),
                "partials+combine n={n} op={op}"
            );
        }
        let mut mx = 0.0f32;
        // SAFETY: valid view and out pointer.
        assert_eq!(
            unsafe { adamant_max_abs(cview(&x), &mut mx) },
            adamant_status::Ok
        );
        assert_eq!(mx.to_bits(), reduce::max_abs(&x).to_bits());
    }
    // Sharded at tile boundaries, gathered in order: the unsharded bits.
    let x: Vec<f32> = buffer(&mut rng, 5 * 4096 + 77, 10.0, false, true);
    let (a, b) = x.split_at(2 * 4096);
    let shards = [cview(a), cview(b)];
    let k = adamant_reduce_tile_count(a.len()) + adamant_reduce_tile_count(b.len());
    let mut parts = vec![0.0f32; k];
    // SAFETY: array of 2 valid views; parts holds k floats.
    let s = unsafe { adamant_reduce_partials_multi(shards.as_ptr(), 2, 1, parts.as_mut_ptr(), k) };
    assert_eq!(s, adamant_status::Ok);
    let mut c = 0.0f32;
    // SAFETY: valid pointers.
    unsafe { adamant_reduce_combine(parts.as_ptr(), k, &mut c) };
    assert_eq!(c.to_bits(), reduce::sum_sq(&x).to_bits());
}

#[test]
fn spec_all_finite_and_clip_coef() {
    let good = [1.0f32, -0.0, 3.0];
    let bad = [1.0f32, f32::INFINITY];
    let mut flag = 7u32;
    // SAFETY: arrays of valid views.
    unsafe {
        assert_eq!(
            adamant_all_finite([cview(&good)].as_ptr(), 1, &mut flag),
            adamant_status::Ok
        );
        assert_eq!(flag, 1);
        assert_eq!(
            adamant_all_finite([cview(&good), cview(&bad)].as_ptr(), 2, &mut flag),
            adamant_status::Ok
        );
        assert_eq!(flag, 0);
    }
    // clip_coef = min(max_norm / (sqrt(sum_sq) + eps), 1), f32 operations in order.
    let (mut c, mut n) = (0.0f32, 0.0f32);
    // SAFETY: distinct locals.
    unsafe {
        assert_eq!(
            adamant_clip_coef_global_norm(16.0, 1.0, 1e-6, &mut c, &mut n),
            adamant_status::Ok
        );
    }
    assert_eq!(n, 4.0);
    assert_eq!(c.to_bits(), (1.0f32 / (4.0f32 + 1e-6f32)).to_bits());
    // SAFETY: distinct locals.
    unsafe { adamant_clip_coef_global_norm(0.25, 1.0, 1e-6, &mut c, &mut n) };
    assert_eq!(c, 1.0);
}

#[test]
fn sanity_scalars_and_schedule() {
    let cfg = adamant_adamw_config_default();
    let mut k = std::mem::MaybeUninit::<adamant_adam_scalars>::uninit();
    // SAFETY: k is writable memory for one struct.
    assert_eq!(
        unsafe { adamant_adamw_step_scalars(&cfg, 1e-3, 10, k.as_mut_ptr()) },
        adamant_status::Ok
    );
    // SAFETY: written on success.
    let k = unsafe { k.assume_init() };
    let want = AdamConfig {
        lr: 1e-3,
        ..AdamConfig::adamw()
    }
    .scalars(1e-3, 10);
    assert_eq!(k.step_size.to_bits(), want.step_size.to_bits());
    assert_eq!(
        k.bias_correction2_sqrt.to_bits(),
        want.bias_correction2_sqrt.to_bits()
    );
    assert_eq!(k.decay.to_bits(), want.decay.to_bits());

    let mut s = adamant_schedule_default();
    s.init_lr = 0.0;
    s.peak_lr = 1e-3;
    s.final_lr = 1e-5;
    s.warmup_steps = 10;
    s.total_steps = 110;
    s.decay = adamant_decay::Cosine as u32;
    let core_s = adamant_core::schedule::Schedule::warmup_cosine(0.0, 1e-3, 10, 110, 1e-5);
    for count in [0u64, 5, 10, 60, 110, 5000] {
        let mut lr = -1.0;
        // SAFETY: valid pointers.
        assert_eq!(
            unsafe { adamant_schedule_lr(&s, count, &mut lr) },
            adamant_status::Ok
        );
        assert_eq!(lr.to_bits(), core_s.lr_at(count).to_bits(), "count {count}");
    }
}
