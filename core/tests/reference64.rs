//! Agreement with float64 evaluations of the peers' update rules over 100 steps.
//!
//! The f64 references below are written from the published formulas (PyTorch
//! `torch.optim.AdamW`/`Adam`/`SGD` single-tensor math, the official Lion of
//! `google/automl`), not from core. Both sides see the same f32 gradients (exact in f64);
//! core runs in f32 storage through `step`.
//!
//! ## Tolerance (derived)
//! With `u = 2^-24` (f32 unit roundoff), one step of core differs from the exact update by:
//! - at most 2 roundings at the scale of `p` (`p*decay`, `p - update`): `2u|p|`;
//! - a relative error on the update from its own chain of ~10 roundings plus the f32-rounded
//!   per-step scalars (~6 more), plus the error the moment buffers carry in. An EMA
//!   `m = b*m + (1-b)*g` adds at most 3u of `b|m| + (1-b)|g|` per step and damps old error by
//!   `b`, so over T = 100 steps a moment holds at most `3u*T = 300u` of its own scale; `sqrt`
//!   halves that for `v`. The update's error is therefore bounded by `K*u*S` with
//!   `S = step_size*(b1|m_prev| + (1-b1)|g|)/denom` (an upper bound of |update| that does not
//!   vanish when `m` cancels) and `K = 512` for Adam, `K = 64` for SGD (momentum damps by 0.9),
//!   `K = 4` for Lion (the update is `lr*sign`, exact up to the rounding of `lr`).
//!
//! Each element's error budget is the sum of these along the f64 trajectory:
//! `|p32 - p64| <= sum_t (3u|p_t| + K*u*S_t)` (3u instead of 2u for margin), checked for every
//! element. As a relative tolerance: the budget is at most `512u ~= 3.1e-5` of the element's
//! trajectory scale `max_t |p_t| + sum_t S_t`; the observed worst error/budget ratios (printed
//! with `--nocapture`) are below 0.35, and the worst error relative to `max(|p|, lr)` below 3e-5.
//! Lion's sign is a discontinuity: an element whose `c` is within `1e-4` (relative) of zero
//! at some step (far above the ~300u its inputs may differ by) is excluded from the
//! comparison after that step; fewer than 1% may be excluded, and every other sign decision
//! must agree (a flipped sign moves `p` by `2*lr`, far outside the budget).

// Element-wise loops index several parallel buffers, as the formulas do.
#![allow(clippy::needless_range_loop)]

mod common;

use adamant_core::{Adam, AdamConfig, Lion, LionConfig, Sgd, SgdConfig, StepOptions};
use common::Rng;

const N: usize = 512;
const T: usize = 100;
const U: f64 = 1.0 / 16_777_216.0; // 2^-24

/// Per-element gradient scale spread over 10^-9 .. 10^1, so some elements live in the
/// eps-dominated regime of Adam and some are large.
fn grad_scale(i: usize) -> f64 {
    10f64.powf(-9.0 + 10.0 * i as f64 / N as f64)
}

fn initial_params() -> Vec<f32> {
    let mut r = Rng(11);
    (0..N).map(|_| r.normalish() as f32).collect()
}

/// The gradient sequence: deterministic, independent of the parameters, already f32.
fn gradients() -> Vec<Vec<f32>> {
    let mut r = Rng(12);
    (0..T)
        .map(|_| {
            (0..N)
                .map(|i| (r.normalish() * grad_scale(i)) as f32)
                .collect()
        })
        .collect()
}

/// Result of an f64 trajectory: final params and each element's error budget.
struct Ref64 {
    p: Vec<f64>,
    budget: Vec<f64>,
    /// Elements excluded after a near tie (Lion only).
    excluded: Vec<bool>,
}

fn compare(name: &str, core: &[f32], r: &Ref64, lr: f64) {
    let mut worst_ratio = 0.0f64;
    let mut worst_rel = 0.0f64;
    let mut compared = 0;
    for i in 0..N {
        if r.excluded[i] {
            continue;
        }
        compared += 1;
        let err = (core[i] as f64 - r.p[i]).abs();
        assert!(
            err <= r.budget[i],
            "{name}: element {i}: core {} vs f64 {} (error {err:e} > budget {:e})",
            core[i],
            r.p[i],
            r.budget[i]
        );
        worst_ratio = worst_ratio.max(err / r.budget[i].max(f64::MIN_POSITIVE));
        worst_rel = worst_rel.max(err / r.p[i].abs().max(lr));
    }
    // A loose sanity check on top of the per-element budget: nowhere near single precision's
    // noise floor after 100 steps.
    assert!(
        worst_rel <= 1e-4,
        "{name}: relative error {worst_rel:e} > 1e-4"
    );
    let excluded = N - compared;
    assert!(excluded * 100 < N, "{name}: {excluded} of {N} excluded");
    eprintln!(
        "{name}: {compared} elements, worst error/budget {worst_ratio:.3}, worst relative {worst_rel:.2e}, excluded {excluded}"
    );
}

// ------------------------------------------------------------ PyTorch Adam / AdamW, f64

/// `torch.optim.AdamW` (decoupled) or `torch.optim.Adam` with L2 `weight_decay`, f64.
fn torch_adam_f64(
    lr: f64,
    (b1, b2): (f64, f64),
    eps: f64,
    wd: f64,
    decoupled: bool,
    grads: &[Vec<f32>],
) -> Ref64 {
    let mut p: Vec<f64> = initial_params().iter().map(|&x| x as f64).collect();
    let mut m = vec![0.0f64; N];
    let mut v = vec![0.0f64; N];
    let mut budget = vec![0.0f64; N];
    for (t0, g32) in grads.iter().enumerate() {
        let t = (t0 + 1) as i32;
        let bc1 = 1.0 - b1.powi(t);
        let bc2 = 1.0 - b2.powi(t);
        let step_size = lr / bc1;
        for i in 0..N {
            let mut g = g32[i] as f64;
            if decoupled {
                p[i] *= 1.0 - lr * wd;
            } else {
                g += wd * p[i];
            }
            let m_prev = m[i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            let denom = v[i].sqrt() / bc2.sqrt() + eps;
            let s = step_size * (b1 * m_prev.abs() + (1.0 - b1) * g.abs()) / denom;
            budget[i] += 3.0 * U * p[i].abs() + 512.0 * U * s;
            p[i] -= step_size * m[i] / denom;
        }
    }
    Ref64 {
        p,
        budget,
        excluded: vec![false; N],
    }
}

fn core_adam(cfg: AdamConfig, grads: &[Vec<f32>]) -> Vec<f32> {
    let mut opt = Adam::new(cfg).unwrap();
    let mut p = initial_params();
    let (mut m, mut v) = (vec![0.0f32; N], vec![0.0f32; N]);
    for g in grads {
        let out = opt
            .step(&mut p, g, &mut m, &mut v, &StepOptions::new(cfg.lr))
            .unwrap();
        assert!(out.applied());
    }
    p
}

#[test]
fn adamw_agrees_with_torch_adamw_in_f64() {
    let grads = gradients();
    let cfg = AdamConfig::adamw();
    let r = torch_adam_f64(cfg.lr, (0.9, 0.999), 1e-8, 1e-2, true, &grads);
    compare(
        "AdamW (torch defaults)",
        &core_adam(cfg, &grads),
        &r,
        cfg.lr,
    );

    let cfg = AdamConfig {
        lr: 3e-2,
        beta1: 0.8,
        beta2: 0.95,
        eps: 1e-6,
        weight_decay: 0.1,
        ..AdamConfig::adamw()
    };
    let r = torch_adam_f64(cfg.lr, (0.8, 0.95), 1e-6, 0.1, true, &grads);
    compare(
        "AdamW (lr 3e-2, betas 0.8/0.95, wd 0.1)",
        &core_adam(cfg, &grads),
        &r,
        cfg.lr,
    );
}

#[test]
fn adam_l2_agrees_with_torch_adam_in_f64() {
    let grads = gradients();
    let cfg = AdamConfig {
        weight_decay: 1e-2,
        ..AdamConfig::adam()
    };
    let r = torch_adam_f64(cfg.lr, (0.9, 0.999), 1e-8, 1e-2, false, &grads);
    compare("Adam + L2", &core_adam(cfg, &grads), &r, cfg.lr);
    let cfg = AdamConfig::adam();
    let r = torch_adam_f64(cfg.lr, (0.9, 0.999), 1e-8, 0.0, false, &grads);
    compare("Adam (torch defaults)", &core_adam(cfg, &grads), &r, cfg.lr);
}

// ------------------------------------------------------------ PyTorch SGD, f64

/// `torch.optim.SGD` single-tensor math in f64.
fn torch_sgd_f64(
    lr: f64,
    momentum: f64,
    dampening: f64,
    wd: f64,
    nesterov: bool,
    grads: &[Vec<f32>],
) -> Ref64 {
    let mut p: Vec<f64> = initial_params().iter().map(|&x| x as f64).collect();
    let mut buf = vec![0.0f64; N];
    let mut budget = vec![0.0f64; N];
    for (t0, g32) in grads.iter().enumerate() {
        for i in 0..N {
            let mut d_p = g32[i] as f64 + wd * p[i];
            let mut s = d_p.abs();
            if momentum != 0.0 {
                if t0 == 0 {
                    buf[i] = d_p;
                } else {
                    s = momentum * buf[i].abs() + (1.0 - dampening) * d_p.abs();
                    buf[i] = momentum * buf[i] + (1.0 - dampening) * d_p;
                }
                if nesterov {
                    s = d_p.abs() + momentum * s;
                    d_p += momentum * buf[i];
                } else {
                    d_p = buf[i];
                }
            }
            budget[i] += 3.0 * U * p[i].abs() + 64.0 * U * lr * s;
            p[i] -= lr * d_p;
        }
    }
    Ref64 {
        p,
        budget,
        excluded: vec![false; N],
    }
}

#[test]
fn sgd_agrees_with_torch_sgd_in_f64() {
    let grads = gradients();
    for (momentum, dampening, wd, nesterov) in [
        (0.0, 0.0, 0.0, false),
        (0.0, 0.0, 1e-2, false),
        (0.9, 0.0, 0.0, false),
        (0.9, 0.1, 1e-3, false),
        (0.9, 0.0, 1e-3, true),
    ] {
        let cfg = SgdConfig {
            momentum,
            dampening,
            weight_decay: wd,
            nesterov,
            ..SgdConfig::new(1e-2)
        };
        let mut opt = Sgd::new(cfg).unwrap();
        let mut p = initial_params();
        let mut buf = vec![0.0f32; opt.momentum_buffer_len(N)];
        for g in &grads {
            assert!(opt
                .step(&mut p, g, &mut buf, &StepOptions::new(cfg.lr))
                .unwrap()
                .applied());
        }
        let r = torch_sgd_f64(cfg.lr, momentum, dampening, wd, nesterov, &grads);
        let name = format!(
            "SGD (momentum {momentum}, dampening {dampening}, wd {wd}, nesterov {nesterov})"
        );
        compare(&name, &p, &r, cfg.lr);
    }
}

// ------------------------------------------------------------ official Lion, f64

fn lion_f64(lr: f64, (b1, b2): (f64, f64), wd: f64, grads: &[Vec<f32>]) -> Ref64 {
    let mut p: Vec<f64> = initial_params().iter().map(|&x| x as f64).collect();
    let mut m = vec![0.0f64; N];
    let mut budget = vec![0.0f64; N];
    let mut excluded = vec![false; N];
    for g32 in grads {
        for i in 0..N {
            let g = g32[i] as f64;
            p[i] *= 1.0 - lr * wd;
            let c = b1 * m[i] + (1.0 - b1) * g;
            let scale = b1 * m[i].abs() + (1.0 - b1) * g.abs();
            if c.abs() <= 1e-4 * scale {
                excluded[i] = true;
            }
            let sign = if c > 0.0 {
                1.0
            } else if c < 0.0 {
                -1.0
            } else {
                0.0
            };
            budget[i] += 3.0 * U * p[i].abs() + 4.0 * U * lr;
            p[i] -= lr * sign;
            m[i] = b2 * m[i] + (1.0 - b2) * g;
        }
    }
    Ref64 {
        p,
        budget,
        excluded,
    }
}

#[test]
fn lion_agrees_with_official_lion_in_f64() {
    let grads = gradients();
    for cfg in [
        LionConfig::official(),
        LionConfig {
            lr: 3e-4,
            beta1: 0.95,
            beta2: 0.98,
            weight_decay: 1.0,
            ..LionConfig::official()
        },
    ] {
        let mut opt = Lion::new(cfg).unwrap();
        let mut p = initial_params();
        let mut m = vec![0.0f32; N];
        for g in &grads {
            assert!(opt
                .step(&mut p, g, &mut m, &StepOptions::new(cfg.lr))
                .unwrap()
                .applied());
        }
        let r = lion_f64(cfg.lr, (cfg.beta1, cfg.beta2), cfg.weight_decay, &grads);
        let name = format!(
            "Lion (lr {}, betas {}/{}, wd {})",
            cfg.lr, cfg.beta1, cfg.beta2, cfg.weight_decay
        );
        compare(&name, &p, &r, cfg.lr);
    }
}
