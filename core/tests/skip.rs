//! The skip path writes nothing; validation errors are typed and write nothing; warnings
//! never stop a step.

mod common;

use adamant_core::error::{Buffer, Hyper};
use adamant_core::rules::adam::adam_slice;
use adamant_core::scalars::LibmSqrt;
use adamant_core::{
    bf16, f16, Adam, AdamConfig, Begin, ConfigError, Element, LayoutError, Lion, LionConfig, Sgd,
    SgdConfig, SkipReason, StateElement, StepError, StepOptions, StepOutcome, Warnings,
};
use common::{bits, mixed, Rng};

fn filled<T: Element>(n: usize, seed: u64) -> Vec<T> {
    let mut r = Rng(seed);
    (0..n).map(|_| mixed::<T>(&mut r, 0.5, 0)).collect()
}

/// Non-finite patterns of each width: +-inf and NaNs with payloads.
fn non_finite<T: Element>() -> Vec<T> {
    let raw: &[u32] = match T::DTYPE {
        adamant_core::Dtype::F32 => &[
            0x7F80_0000,
            0xFF80_0000,
            0x7FC0_0000,
            0xFFA5_0001,
            0x7F80_0001,
        ],
        adamant_core::Dtype::Bf16 => &[0x7F80, 0xFF80, 0x7FC0, 0xFFA5, 0x7F81],
        adamant_core::Dtype::F16 => &[0x7C00, 0xFC00, 0x7E00, 0xFD5A, 0x7C01],
    };
    raw.iter().map(|&b| T::from_bits_u32(b)).collect()
}

/// Three tensors stepped as one model: plan over all gradients, apply, commit. This is the
/// shape of a multi-tensor driver (the CPU and CUDA drivers do the same through `begin`).
fn adam_model_step<P: Element, G: Element, S: StateElement>(
    opt: &mut Adam,
    params: &mut [Vec<P>; 3],
    grads: &[Vec<G>; 3],
    m: &mut [Vec<S>; 3],
    v: &mut [Vec<S>; 3],
    opts: &StepOptions,
) -> StepOutcome {
    match opt.begin(opts, grads.iter().map(|g| &g[..])).unwrap() {
        Begin::Skip(r) => StepOutcome::Skipped(r),
        Begin::Apply(plan) => {
            for i in 0..3 {
                adam_slice::<P, G, S, LibmSqrt>(
                    &mut params[i],
                    &grads[i],
                    &mut m[i],
                    &mut v[i],
                    &plan,
                );
            }
            opt.commit(&plan);
            StepOutcome::Applied { step: plan.step }
        }
    }
}

fn skip_across_tensors<P: Element, G: Element, S: StateElement>() {
    let lens = [1usize, 1031, 64];
    let mk =
        |seed: u64| -> [Vec<P>; 3] { core::array::from_fn(|i| filled(lens[i], seed + i as u64)) };
    let mut params = mk(10);
    let mut m: [Vec<S>; 3] = core::array::from_fn(|i| filled(lens[i], 20 + i as u64));
    let mut v: [Vec<S>; 3] = core::array::from_fn(|i| {
        filled::<S>(lens[i], 30 + i as u64)
            .iter()
            .map(|x| S::narrow(x.widen().abs()))
            .collect()
    });
    let grads: [Vec<G>; 3] = core::array::from_fn(|i| filled(lens[i], 40 + i as u64));
    let mut opt = Adam::new(AdamConfig::adamw()).unwrap();
    // One applied step first so the skip is checked against a non-initial state.
    let out = adam_model_step(
        &mut opt,
        &mut params,
        &grads,
        &mut m,
        &mut v,
        &StepOptions::new(1e-3),
    );
    assert_eq!(out, StepOutcome::Applied { step: 1 });

    let snapshot = |p: &[Vec<P>; 3], m: &[Vec<S>; 3], v: &[Vec<S>; 3]| {
        (
            p.iter().map(|x| bits(x)).collect::<Vec<_>>(),
            m.iter().map(|x| bits(x)).collect::<Vec<_>>(),
            v.iter().map(|x| bits(x)).collect::<Vec<_>>(),
        )
    };
    let before = snapshot(&params, &m, &v);

    // found_inf, whatever the gradients hold.
    let mut o = StepOptions::new(1e-3);
    o.found_inf = true;
    let out = adam_model_step(&mut opt, &mut params, &grads, &mut m, &mut v, &o);
    assert_eq!(out, StepOutcome::Skipped(SkipReason::FoundInf));
    assert_eq!(opt.state.step, 1);
    assert_eq!(snapshot(&params, &m, &v), before);

    // One non-finite element anywhere in any tensor, found by the scan (asked for, or implied
    // by a loss scale).
    for bad in non_finite::<G>() {
        for t in 0..3 {
            for &at in &[0usize, lens[t] / 2, lens[t] - 1] {
                let mut g = grads.clone();
                g[t][at] = bad;
                for opts in [
                    StepOptions {
                        check_finite: true,
                        ..StepOptions::new(1e-3)
                    },
                    StepOptions {
                        grad_scale: Some(1024.0),
                        ..StepOptions::new(1e-3)
                    },
                ] {
                    let out = adam_model_step(&mut opt, &mut params, &g, &mut m, &mut v, &opts);
                    assert_eq!(
                        out,
                        StepOutcome::Skipped(SkipReason::NonFiniteGrad),
                        "{} tensor {t} index {at}",
                        G::DTYPE
                    );
                    assert_eq!(opt.state.step, 1);
                    assert_eq!(snapshot(&params, &m, &v), before);
                }
                // found_inf is reported first when both hold.
                let opts = StepOptions {
                    found_inf: true,
                    check_finite: true,
                    ..StepOptions::new(1e-3)
                };
                let out = adam_model_step(&mut opt, &mut params, &g, &mut m, &mut v, &opts);
                assert_eq!(out, StepOutcome::Skipped(SkipReason::FoundInf));
            }
        }
    }
    // Without checking, a non-finite gradient is applied (PyTorch's default) and changes bits.
    let mut g = grads.clone();
    g[1][7] = non_finite::<G>()[2];
    let out = adam_model_step(
        &mut opt,
        &mut params,
        &g,
        &mut m,
        &mut v,
        &StepOptions::new(1e-3),
    );
    assert_eq!(out, StepOutcome::Applied { step: 2 });
    assert_ne!(snapshot(&params, &m, &v), before);
}

#[test]
fn skip_writes_nothing_across_tensors_and_dtypes() {
    skip_across_tensors::<f32, f32, f32>();
    skip_across_tensors::<f32, bf16, f32>();
    skip_across_tensors::<bf16, f16, bf16>();
    skip_across_tensors::<f16, f16, f32>();
    skip_across_tensors::<bf16, bf16, bf16>();
}

#[test]
fn skip_writes_nothing_for_every_rule_through_step() {
    let n = 333;
    let p0: Vec<bf16> = filled(n, 1);
    let m0: Vec<f32> = filled(n, 2);
    let v0: Vec<f32> = filled::<f32>(n, 3).iter().map(|x| x.abs()).collect();
    let mut g: Vec<f16> = filled(n, 4);
    g[n - 1] = f16::from_bits(0x7C00);
    let opts = StepOptions {
        grad_scale: Some(65536.0),
        ..StepOptions::new(1e-3)
    };

    let mut adam = Adam::new(AdamConfig {
        stochastic_rounding_seed: Some(9),
        ..AdamConfig::adamw()
    })
    .unwrap();
    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
    assert_eq!(
        adam.step(&mut p, &g, &mut m, &mut v, &opts),
        Ok(StepOutcome::Skipped(SkipReason::NonFiniteGrad))
    );
    assert_eq!(
        (bits(&p), bits(&m), bits(&v)),
        (bits(&p0), bits(&m0), bits(&v0))
    );
    assert_eq!(adam.state.step, 0);

    let mut cfg = SgdConfig::new(0.1);
    cfg.momentum = 0.9;
    let mut sgd = Sgd::new(cfg).unwrap();
    let (mut p, mut m) = (p0.clone(), m0.clone());
    assert_eq!(
        sgd.step(&mut p, &g, &mut m, &opts),
        Ok(StepOutcome::Skipped(SkipReason::NonFiniteGrad))
    );
    assert_eq!((bits(&p), bits(&m)), (bits(&p0), bits(&m0)));
    assert_eq!(sgd.state.step, 0);

    let mut lion = Lion::new(LionConfig::official()).unwrap();
    let (mut p, mut m) = (p0.clone(), m0.clone());
    let o = StepOptions {
        found_inf: true,
        ..StepOptions::new(1e-4)
    };
    assert_eq!(
        lion.step(&mut p, &g, &mut m, &o),
        Ok(StepOutcome::Skipped(SkipReason::FoundInf))
    );
    assert_eq!((bits(&p), bits(&m)), (bits(&p0), bits(&m0)));
    assert_eq!(lion.state.step, 0);

    // The same buffers with the bad element fixed do step, so the checks above are not vacuous.
    g[n - 1] = f16::from_f32(0.25);
    let (mut p, mut m) = (p0.clone(), m0.clone());
    assert_eq!(
        lion.step(&mut p, &g, &mut m, &StepOptions::new(1e-4)),
        Ok(StepOutcome::Applied { step: 1 })
    );
    assert_ne!(bits(&p), bits(&p0));
}

#[test]
fn bad_configs_are_typed_errors() {
    let a = AdamConfig::adamw();
    let cases: Vec<(AdamConfig, ConfigError)> = vec![
        (
            AdamConfig { lr: f64::NAN, ..a },
            ConfigError::NonFinite {
                which: Hyper::Lr,
                value: f64::NAN,
            },
        ),
        (
            AdamConfig { lr: -1e-3, ..a },
            ConfigError::OutOfRange {
                which: Hyper::Lr,
                value: -1e-3,
            },
        ),
        (
            AdamConfig { beta1: 1.0, ..a },
            ConfigError::OutOfRange {
                which: Hyper::Beta1,
                value: 1.0,
            },
        ),
        (
            AdamConfig { beta1: -0.1, ..a },
            ConfigError::OutOfRange {
                which: Hyper::Beta1,
                value: -0.1,
            },
        ),
        (
            AdamConfig { beta2: 1.5, ..a },
            ConfigError::OutOfRange {
                which: Hyper::Beta2,
                value: 1.5,
            },
        ),
        (
            AdamConfig {
                beta2: f64::INFINITY,
                ..a
            },
            ConfigError::NonFinite {
                which: Hyper::Beta2,
                value: f64::INFINITY,
            },
        ),
        (
            AdamConfig { eps: 0.0, ..a },
            ConfigError::OutOfRange {
                which: Hyper::Eps,
                value: 0.0,
            },
        ),
        (
            AdamConfig { eps: -1e-8, ..a },
            ConfigError::OutOfRange {
                which: Hyper::Eps,
                value: -1e-8,
            },
        ),
        (
            AdamConfig {
                weight_decay: -0.01,
                ..a
            },
            ConfigError::OutOfRange {
                which: Hyper::WeightDecay,
                value: -0.01,
            },
        ),
    ];
    for (cfg, want) in cases {
        let got = Adam::new(cfg).unwrap_err();
        // NaN != NaN, so compare the variant and field through Debug.
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{cfg:?}");
        assert!(!got.to_string().is_empty());
    }

    let mut s = SgdConfig::new(0.1);
    s.nesterov = true;
    assert_eq!(Sgd::new(s).unwrap_err(), ConfigError::NesterovNeedsMomentum);
    s.momentum = 0.9;
    s.dampening = 0.1;
    assert_eq!(Sgd::new(s).unwrap_err(), ConfigError::NesterovNeedsMomentum);
    s.dampening = 0.0;
    assert!(Sgd::new(s).is_ok());
    let mut s = SgdConfig::new(0.1);
    s.dampening = 1.5;
    assert_eq!(
        Sgd::new(s).unwrap_err(),
        ConfigError::OutOfRange {
            which: Hyper::Dampening,
            value: 1.5
        }
    );
    s.dampening = 0.0;
    s.momentum = -0.9;
    assert_eq!(
        Sgd::new(s).unwrap_err(),
        ConfigError::OutOfRange {
            which: Hyper::Momentum,
            value: -0.9
        }
    );

    let l = LionConfig::official();
    assert_eq!(
        Lion::new(LionConfig { beta2: 1.0, ..l }).unwrap_err(),
        ConfigError::OutOfRange {
            which: Hyper::Beta2,
            value: 1.0
        }
    );
    assert_eq!(
        Lion::new(LionConfig {
            weight_decay: -1.0,
            ..l
        })
        .unwrap_err(),
        ConfigError::OutOfRange {
            which: Hyper::WeightDecay,
            value: -1.0
        }
    );
}

#[test]
fn step_errors_write_nothing() {
    let n = 101;
    let p0: Vec<f32> = filled(n, 1);
    let g0: Vec<f32> = filled(n, 2);
    let m0: Vec<bf16> = filled(n, 3);
    let v0: Vec<bf16> = vec![bf16::from_f32(0.5); n];
    let mut adam = Adam::new(AdamConfig::adamw()).unwrap();

    let check = |adam: &mut Adam,
                 p: &mut Vec<f32>,
                 g: &[f32],
                 m: &mut Vec<bf16>,
                 v: &mut Vec<bf16>,
                 o: &StepOptions| {
        let (bp, bm, bv) = (bits(p), bits(m), bits(v));
        let r = adam.step(p, g, m, v, o);
        assert!(r.is_err(), "expected an error, got {r:?}");
        assert_eq!((bits(p), bits(m), bits(v)), (bp, bm, bv));
        assert_eq!(adam.state.step, 0);
        r.unwrap_err()
    };

    // Per-step option errors.
    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
    for (o, which) in [
        (
            StepOptions {
                grad_scale: Some(0.0),
                ..StepOptions::new(1e-3)
            },
            Hyper::GradScale,
        ),
        (
            StepOptions {
                grad_scale: Some(-2.0),
                ..StepOptions::new(1e-3)
            },
            Hyper::GradScale,
        ),
        (
            StepOptions {
                grad_scale: Some(f32::NAN),
                ..StepOptions::new(1e-3)
            },
            Hyper::GradScale,
        ),
        (StepOptions::new(f64::INFINITY), Hyper::Lr),
        (StepOptions::new(-1.0), Hyper::Lr),
        (
            StepOptions {
                clip_coef: Some(-1.0),
                ..StepOptions::new(1e-3)
            },
            Hyper::Clip,
        ),
    ] {
        match check(&mut adam, &mut p, &g0, &mut m, &mut v, &o) {
            StepError::Config(
                ConfigError::NonFinite { which: w, .. } | ConfigError::OutOfRange { which: w, .. },
            ) => assert_eq!(w, which),
            e => panic!("unexpected {e:?}"),
        }
    }
    // Errors win over skips: an invalid loss scale with found_inf is still an error.
    let o = StepOptions {
        grad_scale: Some(0.0),
        found_inf: true,
        ..StepOptions::new(1e-3)
    };
    check(&mut adam, &mut p, &g0, &mut m, &mut v, &o);

    // Length mismatch of each buffer, shorter and longer.
    let o = StepOptions::new(1e-3);
    for delta in [-1isize, 1] {
        let len = (n as isize + delta) as usize;
        let g_bad: Vec<f32> = filled(len, 5);
        let e = check(&mut adam, &mut p, &g_bad, &mut m, &mut v, &o);
        assert_eq!(
            e,
            StepError::Layout(LayoutError::LenMismatch {
                buffer: Buffer::Grad,
                expected: n,
                got: len
            })
        );
        let mut m_bad: Vec<bf16> = filled(len, 6);
        let e = check(&mut adam, &mut p, &g0, &mut m_bad, &mut v, &o);
        assert_eq!(
            e,
            StepError::Layout(LayoutError::LenMismatch {
                buffer: Buffer::ExpAvg,
                expected: n,
                got: len
            })
        );
        let mut v_bad: Vec<bf16> = filled(len, 7);
        let e = check(&mut adam, &mut p, &g0, &mut m, &mut v_bad, &o);
        assert_eq!(
            e,
            StepError::Layout(LayoutError::LenMismatch {
                buffer: Buffer::ExpAvgSq,
                expected: n,
                got: len
            })
        );
    }

    // SGD: the momentum buffer must be n long with momentum, empty without.
    let mut cfg = SgdConfig::new(0.1);
    cfg.momentum = 0.9;
    let mut sgd = Sgd::new(cfg).unwrap();
    let mut buf: Vec<f32> = vec![1.0; n - 1];
    let mut p = p0.clone();
    let e = sgd.step(&mut p, &g0, &mut buf, &o).unwrap_err();
    assert_eq!(
        e,
        StepError::Layout(LayoutError::LenMismatch {
            buffer: Buffer::MomentumBuffer,
            expected: n,
            got: n - 1
        })
    );
    assert_eq!(bits(&p), bits(&p0));
    assert_eq!(buf, vec![1.0; n - 1]);
    let mut sgd = Sgd::new(SgdConfig::new(0.1)).unwrap();
    let e = sgd.step(&mut p, &g0, &mut buf, &o).unwrap_err();
    assert_eq!(
        e,
        StepError::Layout(LayoutError::LenMismatch {
            buffer: Buffer::MomentumBuffer,
            expected: 0,
            got: n - 1
        })
    );
    let e = sgd
        .step(&mut p, &g0[1..], &mut Vec::<f32>::new(), &o)
        .unwrap_err();
    assert_eq!(
        e,
        StepError::Layout(LayoutError::LenMismatch {
            buffer: Buffer::Grad,
            expected: n,
            got: n - 1
        })
    );
    assert_eq!(bits(&p), bits(&p0));
    assert_eq!(sgd.state.step, 0);

    // Lion.
    let mut lion = Lion::new(LionConfig::official()).unwrap();
    let mut m = m0.clone();
    let e = lion.step(&mut p, &g0, &mut m[1..], &o).unwrap_err();
    assert_eq!(
        e,
        StepError::Layout(LayoutError::LenMismatch {
            buffer: Buffer::ExpAvg,
            expected: n,
            got: n - 1
        })
    );
    assert_eq!((bits(&p), bits(&m)), (bits(&p0), bits(&m0)));
    assert_eq!(lion.state.step, 0);
}

#[test]
fn warnings_are_reported_and_do_not_stop_the_step() {
    let cases = [
        (0.9, 0.999, 0),
        (0.99, 0.95, Warnings::BETA1_AT_LEAST_SQRT_BETA2),
        (0.5, 0.8, Warnings::SMALL_BETA2),
        (
            0.95,
            0.5,
            Warnings::BETA1_AT_LEAST_SQRT_BETA2 | Warnings::SMALL_BETA2,
        ),
        // beta1 == sqrt(beta2) exactly (0.5^2 = 0.25) is outside the region too.
        (
            0.5,
            0.25,
            Warnings::BETA1_AT_LEAST_SQRT_BETA2 | Warnings::SMALL_BETA2,
        ),
    ];
    for (beta1, beta2, want) in cases {
        let cfg = AdamConfig {
            beta1,
            beta2,
            ..AdamConfig::adamw()
        };
        let w = cfg.warnings();
        assert_eq!(w, Warnings(want), "betas ({beta1}, {beta2})");
        assert_eq!(w.is_empty(), want == 0);
        if want != 0 {
            assert!(!w.to_string().is_empty());
        }
        let mut adam = Adam::new(cfg).expect("a warning is not an error");
        let mut p = vec![1.0f32; 5];
        let g = vec![0.5f32; 5];
        let (mut m, mut v) = (vec![0.0f32; 5], vec![0.0f32; 5]);
        assert_eq!(
            adam.step(&mut p, &g, &mut m, &mut v, &StepOptions::new(1e-3)),
            Ok(StepOutcome::Applied { step: 1 })
        );
        assert!(p.iter().all(|&x| x < 1.0));
    }
}

#[test]
fn config_edited_after_new_is_rechecked_and_nothing_is_written() {
    use adamant_core::{Adam, AdamConfig, StepOptions};
    let mut opt = Adam::new(AdamConfig::adamw()).unwrap();
    opt.config.eps = -1.0;
    let mut p = [1.0f32; 5];
    let g = [0.5f32; 5];
    let (mut m, mut v) = ([0.0f32; 5], [0.0f32; 5]);
    let err = opt.step(&mut p, &g, &mut m, &mut v, &StepOptions::new(1e-3));
    assert!(err.is_err());
    assert_eq!(p, [1.0; 5]);
    assert_eq!(m, [0.0; 5]);
    assert_eq!(opt.state.step, 0);
}
