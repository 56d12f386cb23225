//! The `_multi_clip` entry points (per-tensor clip coefficients, as AdaGC produces them) give
//! the Rust API's bits: each tensor stepped by its own optimizer value at the same step with
//! `clip_coef` set to its coefficient. Bad coefficients and a NULL array write nothing.

mod common;
use adamant::*;
use adamant_core::rules::adam::AdamConfig;
use adamant_core::rules::lion::LionConfig;
use adamant_core::rules::sgd::SgdConfig;
use adamant_core::{Adam, Lion, Sgd, StepOptions};
use common::*;

const LENS: [usize; 3] = [33, 1000, 4099];
const COEFS: [[f32; 3]; 3] = [[0.5, 1.0, 0.0], [0.125, 0.75, 1.0], [1.0, 0.3, 0.0625]];

fn grads(rng: &mut Rng) -> Vec<Vec<f32>> {
    LENS.iter()
        .map(|&n| buffer(rng, n, 2.0, true, true))
        .collect()
}

#[test]
fn spec_adam_multi_clip_matches_core() {
    for decoupled in [true, false] {
        let mut rng = Rng(decoupled as u64 + 1);
        let mut p: Vec<Vec<f32>> = LENS
            .iter()
            .map(|&n| buffer(&mut rng, n, 1.0, false, true))
            .collect();
        let mut m: Vec<Vec<f32>> = LENS.iter().map(|&n| vec![0.0; n]).collect();
        let mut v = m.clone();
        let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
        let cfg = if decoupled {
            adamant_adamw_config_default()
        } else {
            adamant_adam_config_default()
        };
        let core_cfg = AdamConfig {
            weight_decay: cfg.weight_decay,
            ..if decoupled {
                AdamConfig::adamw()
            } else {
                AdamConfig::adam()
            }
        };
        let mut opt: Vec<Adam> = (0..3).map(|_| Adam::new(core_cfg).unwrap()).collect();
        let mut step = 0;
        for coefs in COEFS {
            let g = grads(&mut rng);
            for i in 0..3 {
                let mut o = StepOptions::new(1e-2);
                o.clip_coef = Some(coefs[i]);
                opt[i]
                    .step(&mut p2[i], &g[i], &mut m2[i], &mut v2[i], &o)
                    .unwrap();
            }
            let mut o = adamant_step_options_default();
            o.lr = 1e-2;
            let pv: Vec<_> = p.iter_mut().map(|x| view(x)).collect();
            let gv: Vec<_> = g.iter().map(|x| cview(x)).collect();
            let mv: Vec<_> = m.iter_mut().map(|x| view(x)).collect();
            let vv: Vec<_> = v.iter_mut().map(|x| view(x)).collect();
            let mut out = 0;
            let f = if decoupled {
                adamant_adamw_step_multi_clip
            } else {
                adamant_adam_step_multi_clip
            };
            // SAFETY: arrays of 3 valid views and 3 coefficients.
            let st = unsafe {
                f(
                    &cfg,
                    &o,
                    step,
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
                assert_eq!(bits(&p[i]), bits(&p2[i]));
                assert_eq!(bits(&m[i]), bits(&m2[i]));
                assert_eq!(bits(&v[i]), bits(&v2[i]));
            }
        }
        assert_eq!(step, 3);
    }
}

#[test]
fn spec_sgd_and_lion_multi_clip_match_core() {
    let mut rng = Rng(9);
    let mut p: Vec<Vec<f32>> = LENS
        .iter()
        .map(|&n| buffer(&mut rng, n, 1.0, false, true))
        .collect();
    let mut b: Vec<Vec<f32>> = LENS.iter().map(|&n| vec![0.0; n]).collect();
    let (mut p2, mut b2) = (p.clone(), b.clone());
    let mut lp = p.clone();
    let mut lm = b.clone();
    let (mut lp2, mut lm2) = (lp.clone(), lm.clone());
    let mut sgd_cfg = adamant_sgd_config_default();
    sgd_cfg.momentum = 0.9;
    let lion_cfg = adamant_lion_config_default();
    let mut sgd: Vec<Sgd> = (0..3)
        .map(|_| {
            Sgd::new(SgdConfig {
                momentum: 0.9,
                ..SgdConfig::new(1e-2)
            })
            .unwrap()
        })
        .collect();
    let mut lion: Vec<Lion> = (0..3)
        .map(|_| {
            Lion::new(LionConfig {
                weight_decay: lion_cfg.weight_decay,
                ..LionConfig::official()
            })
            .unwrap()
        })
        .collect();
    let (mut s_step, mut l_step) = (0, 0);
    for coefs in COEFS {
        let g = grads(&mut rng);
        for i in 0..3 {
            let mut o = StepOptions::new(1e-2);
            o.clip_coef = Some(coefs[i]);
            sgd[i].step(&mut p2[i], &g[i], &mut b2[i], &o).unwrap();
            lion[i].step(&mut lp2[i], &g[i], &mut lm2[i], &o).unwrap();
        }
        let mut o = adamant_step_options_default();
        o.lr = 1e-2;
        let gv: Vec<_> = g.iter().map(|x| cview(x)).collect();
        let mut out = 0;
        let pv: Vec<_> = p.iter_mut().map(|x| view(x)).collect();
        let bv: Vec<_> = b.iter_mut().map(|x| view(x)).collect();
        // SAFETY: arrays of 3 valid views and 3 coefficients.
        let st = unsafe {
            adamant_sgd_step_multi_clip(
                &sgd_cfg,
                &o,
                s_step,
                pv.as_ptr(),
                gv.as_ptr(),
                bv.as_ptr(),
                coefs.as_ptr(),
                3,
                &mut out,
            )
        };
        assert_eq!(st, adamant_status::Ok);
        s_step = out;
        let pv: Vec<_> = lp.iter_mut().map(|x| view(x)).collect();
        let mv: Vec<_> = lm.iter_mut().map(|x| view(x)).collect();
        // SAFETY: as above.
        let st = unsafe {
            adamant_lion_step_multi_clip(
                &lion_cfg,
                &o,
                l_step,
                pv.as_ptr(),
                gv.as_ptr(),
                mv.as_ptr(),
                coefs.as_ptr(),
                3,
                &mut out,
            )
        };
        assert_eq!(st, adamant_status::Ok);
        l_step = out;
        for i in 0..3 {
            assert_eq!(bits(&p[i]), bits(&p2[i]));
            assert_eq!(bits(&b[i]), bits(&b2[i]));
            assert_eq!(bits(&lp[i]), bits(&lp2[i]));
            assert_eq!(bits(&lm[i]), bits(&lm2[i]));
        }
    }
    assert_eq!((s_step, l_step), (3, 3));
}

#[test]
fn multi_clip_errors_write_nothing() {
    let mut p = vec![0.5f32; 8];
    let g = vec![0.25f32; 8];
    let mut m = vec![0.1f32; 8];
    let mut v = vec![0.1f32; 8];
    let cfg = adamant_adamw_config_default();
    let o = adamant_step_options_default();
    let pv = [view(&mut p)];
    let gv = [cview(&g)];
    let mv = [view(&mut m)];
    let vv = [view(&mut v)];
    for (coefs, want) in [
        (Some(f32::NAN), adamant_status::InvalidConfig),
        (Some(-1.0), adamant_status::InvalidConfig),
        (Some(f32::INFINITY), adamant_status::InvalidConfig),
        (None, adamant_status::NullPointer),
    ] {
        let c = coefs.map(|x| [x]);
        let cp = c.as_ref().map_or(core::ptr::null(), |a| a.as_ptr());
        let mut out = 99;
        // SAFETY: valid arrays; a NULL coefficient array is rejected before use.
        let st = unsafe {
            adamant_adamw_step_multi_clip(
                &cfg,
                &o,
                0,
                pv.as_ptr(),
                gv.as_ptr(),
                mv.as_ptr(),
                vv.as_ptr(),
                cp,
                1,
                &mut out,
            )
        };
        assert_eq!(st, want);
        assert_eq!(out, 99);
    }
    assert!(p.iter().all(|&x| x == 0.5));
    assert!(m.iter().chain(&v).all(|&x| x == 0.1));
}
