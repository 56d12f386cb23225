//! CPU steps through the threaded, ISA-dispatched driver give the same bits for every thread
//! count, equal to core's one-thread reference, on tensors long enough to be split (one test
//! function: the thread count is process-wide).

mod common;
use adamant::*;
use adamant_core::rules::adam::{adam_reference, AdamConfig};
use adamant_core::{bf16, Adam, Begin, StepOptions};
use common::{bits, buffer, cview, view, Rng};

#[test]
fn conformance_every_thread_count_gives_core_bits() {
    // 2.5 grains plus an odd tail: several pieces, cuts at multiples of 64 elements.
    let n = 5 * (1 << 15) + 77;
    let mut rng = Rng(11);
    let g: Vec<f32> = buffer(&mut rng, n, 1.0, true, true);
    let p0: Vec<bf16> = buffer(&mut rng, n, 1.0, true, true);
    let mut cfg = adamant_adamw_config_default();
    cfg.stochastic_rounding = 1;
    cfg.stochastic_rounding_seed = 1234;
    let mut opt = adamant_step_options_default();
    opt.lr = 3e-3;
    // Core's reference, one thread, libm square root.
    let core_cfg = AdamConfig {
        lr: opt.lr,
        stochastic_rounding_seed: Some(1234),
        ..AdamConfig::adamw()
    };
    let opts = StepOptions::new(opt.lr);
    let mut reference = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
    for _ in 0..2 {
        let mut adam = Adam::new(core_cfg).unwrap();
        adam.state.step = 0;
        let Begin::Apply(plan) = adam.begin::<f32, _>(&opts, core::iter::empty()).unwrap() else {
            panic!("skipped")
        };
        let (p, m, v) = &mut reference;
        adam_reference(p, &g, m, v, &plan);
    }
    for threads in [1usize, 2, 3, 8] {
        assert_eq!(adamant_set_num_threads(threads), adamant_status::Ok);
        assert_eq!(adamant_num_threads(), threads);
        let (mut p, mut m, mut v) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        for _ in 0..2 {
            let mut out = 0;
            // SAFETY: views over live vectors.
            let s = unsafe {
                adamant_adamw_step(
                    &cfg,
                    &opt,
                    0,
                    view(&mut p),
                    cview(&g),
                    view(&mut m),
                    view(&mut v),
                    &mut out,
                )
            };
            assert_eq!(s, adamant_status::Ok);
            assert_eq!(out, 1);
        }
        assert_eq!(bits(&p), bits(&reference.0), "param, {threads} threads");
        assert_eq!(bits(&m), bits(&reference.1), "exp_avg, {threads} threads");
        assert_eq!(
            bits(&v),
            bits(&reference.2),
            "exp_avg_sq, {threads} threads"
        );
    }
    assert_eq!(adamant_set_num_threads(0), adamant_status::Ok);
    assert!(adamant_num_threads() >= 1);
}
