//! The apply half of a step, for callers that validated, planned and decided the skip
//! themselves (the C ABI: it checks every view of a call before anything runs, then hands each
//! tensor here with core's plan).
//!
//! Same bits as core's `*_slice` on one thread for any thread count and instruction set (each
//! piece gets the plan with its stochastic-rounding key moved to the piece's first element).
//! A tensor that fits one thread (fewer than `2 * grain` elements, or one thread configured)
//! runs on the calling thread without allocating; a larger one is split over scoped threads,
//! which allocates their stacks and the piece lists.

use super::{AdamTensor, Driver, LionTensor, SgdTensor};
use crate::kernels;
use adamant_core::rules::adam::AdamScalars;
use adamant_core::rules::lion::LionScalars;
use adamant_core::rules::sgd::SgdScalars;
use adamant_core::store::{Element, StateElement};
use adamant_core::Plan;

impl Driver {
    /// Threads a tensor of `len` elements is split over (1: the calling thread only).
    pub fn threads_for(&self, len: usize) -> usize {
        self.threads.clamp(1, len.div_ceil(self.grain).max(1))
    }

    /// Whether every element of `grad` is finite (core's `all_finite`), split over the threads.
    pub fn all_finite_planned<G: Element>(&self, grad: &[G]) -> bool {
        if self.threads_for(grad.len()) == 1 {
            return kernels::all_finite(self.isa, grad);
        }
        self.all_finite(vec![grad])
    }

    /// Core's `adam_slice` under `plan` over one tensor whose buffers all have `param`'s length
    /// (panics otherwise: the caller checked them).
    pub fn adam_planned<P: Element, G: Element, S: StateElement>(
        &self,
        plan: &Plan<AdamScalars>,
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        exp_avg_sq: &mut [S],
    ) {
        let n = param.len();
        assert!(grad.len() == n && exp_avg.len() == n && exp_avg_sq.len() == n);
        let isa = self.isa;
        if self.threads_for(n) == 1 {
            return kernels::adam(isa, param, grad, exp_avg, exp_avg_sq, plan);
        }
        let tensor = AdamTensor {
            param,
            grad,
            exp_avg,
            exp_avg_sq,
        };
        self.apply(plan, &mut [tensor], None);
    }

    /// Core's `sgd_slice` under `plan` over one tensor (`momentum_buffer` as long as `param`,
    /// or empty without momentum).
    pub fn sgd_planned<P: Element, G: Element, S: StateElement>(
        &self,
        plan: &Plan<SgdScalars>,
        param: &mut [P],
        grad: &[G],
        momentum_buffer: &mut [S],
    ) {
        let n = param.len();
        assert!(grad.len() == n && (momentum_buffer.len() == n || momentum_buffer.is_empty()));
        let isa = self.isa;
        if self.threads_for(n) == 1 {
            return kernels::sgd(isa, param, grad, momentum_buffer, plan);
        }
        let tensor = SgdTensor {
            param,
            grad,
            momentum_buffer,
        };
        self.apply(plan, &mut [tensor], None);
    }

    /// Core's `lion_slice` under `plan` over one tensor whose buffers have `param`'s length.
    pub fn lion_planned<P: Element, G: Element, S: StateElement>(
        &self,
        plan: &Plan<LionScalars>,
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
    ) {
        let n = param.len();
        assert!(grad.len() == n && exp_avg.len() == n);
        let isa = self.isa;
        if self.threads_for(n) == 1 {
            return kernels::lion(isa, param, grad, exp_avg, plan);
        }
        let tensor = LionTensor {
            param,
            grad,
            exp_avg,
        };
        self.apply(plan, &mut [tensor], None);
    }
}

#[cfg(test)]
mod tests {
    use crate::Driver;
    use adamant_core::rules::adam::{adam_slice, AdamConfig};
    use adamant_core::rules::lion::{lion_slice, LionConfig};
    use adamant_core::rules::sgd::{sgd_slice, SgdConfig};
    use adamant_core::scalars::LibmSqrt;
    use adamant_core::{bf16, Adam, Begin, Lion, Sgd, StepOptions};

    fn data(n: usize, k: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(k);
                (x % 20_001) as f32 / 1000.0 - 10.0
            })
            .collect()
    }

    fn bits<T: adamant_core::store::Element>(v: &[T]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits_u32()).collect()
    }

    /// Every thread count and odd grains give core's one-thread bits, stochastic rounding
    /// included (the key moves with each piece).
    #[test]
    fn conformance_planned_equals_core_slices() {
        let n = 1000 + 37;
        let opts = StepOptions::new(1e-2);
        let cfg = AdamConfig {
            stochastic_rounding_seed: Some(9),
            ..AdamConfig::adamw()
        };
        let Begin::Apply(plan) = Adam::new(cfg)
            .unwrap()
            .begin::<f32, _>(&opts, core::iter::empty())
            .unwrap()
        else {
            panic!("skip")
        };
        let sgd_cfg = SgdConfig {
            momentum: 0.9,
            stochastic_rounding_seed: Some(3),
            ..SgdConfig::new(1e-2)
        };
        let Begin::Apply(sgd_plan) = Sgd::new(sgd_cfg)
            .unwrap()
            .begin::<f32, _>(&opts, core::iter::empty())
            .unwrap()
        else {
            panic!("skip")
        };
        let lion_cfg = LionConfig {
            stochastic_rounding_seed: Some(5),
            ..LionConfig::official()
        };
        let Begin::Apply(lion_plan) = Lion::new(lion_cfg)
            .unwrap()
            .begin::<f32, _>(&opts, core::iter::empty())
            .unwrap()
        else {
            panic!("skip")
        };
        let g = data(n, 1);
        let p0: Vec<bf16> = data(n, 2).iter().map(|&x| bf16::from_f32(x)).collect();
        let m0 = data(n, 3);
        let v0: Vec<f32> = data(n, 4).iter().map(|x| x.abs()).collect();
        let (mut rp, mut rm, mut rv) = (p0.clone(), m0.clone(), v0.clone());
        adam_slice::<_, _, _, LibmSqrt>(&mut rp, &g, &mut rm, &mut rv, &plan);
        let (mut sp, mut sb) = (p0.clone(), m0.clone());
        sgd_slice(&mut sp, &g, &mut sb, &sgd_plan);
        let (mut lp, mut lm) = (p0.clone(), m0.clone());
        lion_slice(&mut lp, &g, &mut lm, &lion_plan);
        for (threads, grain) in [(1, 1 << 16), (2, 64), (3, 100), (7, 1)] {
            let d = Driver::new().with_threads(threads).with_grain(grain);
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            d.adam_planned(&plan, &mut p, &g, &mut m, &mut v);
            assert_eq!(bits(&p), bits(&rp), "adam threads {threads}");
            assert_eq!(bits(&m), bits(&rm));
            assert_eq!(bits(&v), bits(&rv));
            let (mut p, mut b) = (p0.clone(), m0.clone());
            d.sgd_planned(&sgd_plan, &mut p, &g, &mut b);
            assert_eq!(bits(&p), bits(&sp), "sgd threads {threads}");
            assert_eq!(bits(&b), bits(&sb));
            let (mut p, mut m) = (p0.clone(), m0.clone());
            d.lion_planned(&lion_plan, &mut p, &g, &mut m);
            assert_eq!(bits(&p), bits(&lp), "lion threads {threads}");
            assert_eq!(bits(&m), bits(&lm));
            let mut bad = g.clone();
            assert!(d.all_finite_planned(&bad));
            bad[n - 3] = f32::NAN;
            assert!(!d.all_finite_planned(&bad));
        }
        assert_eq!(
            Driver::new()
                .with_threads(4)
                .with_grain(100)
                .threads_for(250),
            3
        );
        assert_eq!(Driver::new().with_threads(4).threads_for(0), 1);
    }
}
