//! Clipped steps (AdaGC per-tensor and global, global-norm) on the threaded driver: any thread
//! split and any instruction set give the bits of core's clip flow (`tensor_sum_sq`, the
//! clipper's plan, the rule's reference path with each tensor's `clip_coef`, both commits), for
//! Adam, SGD, Lion and Adam-mini; skips and errors write nothing.

use adamant_core::clip::{tensor_sum_sq, AdaGc, AdaGcConfig, AdaGcMode, GlobalNormClip};
use adamant_core::rules::adam::adam_reference;
use adamant_core::rules::adam_mini::{apply_tensor, Path};
use adamant_core::rules::lion::lion_reference;
use adamant_core::rules::sgd::sgd_reference;
use adamant_core::store::{Element, StateElement};
use adamant_core::{
    bf16, Adam, AdamConfig, AdamMini, AdamMiniConfig, Begin, BlockLayout, Lion, LionConfig, Plan,
    Sgd, SgdConfig, SkipReason, StepError, StepOptions, StepOutcome,
};
use adamant_cpu::{
    AdamMiniTensor, AdamTensor, Clipper, Driver, Isa, LionTensor, SgdTensor, FUSE_MAX,
};

/// Thread counts (two in debug builds, which run the same checks about ten times slower).
const THREADS: &[usize] = if cfg!(debug_assertions) {
    &[1, 7]
} else {
    &[1, 2, 3, 7]
};
const STEPS: u64 = 3;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let z = self.0;
        (z ^ (z >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (z >> 32)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn adversarial(r: &mut Rng) -> f32 {
    let sign = if r.next() & 1 == 1 { 0x8000_0000u32 } else { 0 };
    let bits = match r.below(16) {
        0 => 0x7F80_0001 | (r.next() as u32 & 0x007F_FFFF),
        1 => 0,
        2 => r.next() as u32 & 0x007F_FFFF,
        3 => 0x7F80_0000,
        4 => 0x7F00_0000 | (r.next() as u32 & 0x00FF_FFFF),
        5 => 0x0080_0000 | (r.next() as u32 & 0x00FF_FFFF),
        _ => 0x3C00_0000 + (r.next() as u32 % 0x0400_0000),
    };
    f32::from_bits(bits | sign)
}

/// Finite gradients over a wide exponent range (zeros, subnormals, tiny, up to ~1e5).
fn gradient(r: &mut Rng) -> f32 {
    let sign = if r.next() & 1 == 1 { 0x8000_0000u32 } else { 0 };
    let bits = match r.below(10) {
        0 => 0,
        1 => r.next() as u32 & 0x007F_FFFF,
        2 => 0x0080_0000 + (r.next() as u32 % 0x1000_0000),
        3 => 0x4400_0000 + (r.next() as u32 % 0x0400_0000),
        _ => 0x3400_0000 + (r.next() as u32 % 0x0C00_0000),
    };
    f32::from_bits(bits | sign)
}

fn raw<T: Element>(x: f32) -> T {
    match T::DTYPE {
        adamant_core::Dtype::F32 => T::from_bits_u32(x.to_bits()),
        _ => T::from_bits_u32(x.to_bits() >> 16),
    }
}

fn bits<T: Element>(v: &[T]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits_u32()).collect()
}

fn drivers() -> Vec<Driver> {
    let mut out = Vec::new();
    for isa in Isa::ALL {
        if let Ok(d) = Driver::new().with_isa(isa) {
            for &t in THREADS {
                out.push(d.with_threads(t).with_grain(1));
            }
        }
    }
    out
}

/// The clippers under test: global-norm, AdaGC per-tensor and global, each with a warm-up of
/// one step so that later steps run the adaptive rule, and thresholds that clip.
#[derive(Clone, Copy, Debug)]
enum Kind {
    GlobalNorm,
    AdaGcPerTensor,
    AdaGcGlobal,
}
const KINDS: [Kind; 3] = [Kind::GlobalNorm, Kind::AdaGcPerTensor, Kind::AdaGcGlobal];

/// A clipper's state: AdaGC and its thresholds (unused for global-norm).
#[derive(Clone)]
struct ClipState {
    kind: Kind,
    adagc: AdaGc,
    gamma: Vec<f32>,
}

impl ClipState {
    fn new(kind: Kind, n: usize) -> Self {
        let adagc = AdaGc::new(AdaGcConfig {
            lambda_rel: 0.9,
            t_start: 1,
            max_norm: 50.0,
            mode: match kind {
                Kind::AdaGcGlobal => AdaGcMode::Global,
                _ => AdaGcMode::PerTensor,
            },
            ..AdaGcConfig::default()
        })
        .unwrap();
        let gamma = vec![0.0; adagc.gamma_len(n)];
        ClipState { kind, adagc, gamma }
    }

    fn clipper(&mut self) -> Clipper<'_> {
        match self.kind {
            Kind::GlobalNorm => Clipper::GlobalNorm(GlobalNormClip::new(50.0).unwrap()),
            _ => Clipper::AdaGc {
                clip: &mut self.adagc,
                gamma: &mut self.gamma,
            },
        }
    }

    /// Core's flow: sums, coefficients; `commit` after the rule applied.
    fn reference_coefs<G: Element>(&self, grads: &[Vec<G>], opts: &StepOptions) -> Vec<f32> {
        let gs = opts.grad_scale.unwrap_or(1.0);
        let sums: Vec<f32> = grads.iter().map(|g| tensor_sum_sq(g, gs)).collect();
        let mut coefs = vec![0.0; sums.len()];
        match self.kind {
            Kind::GlobalNorm => {
                let (_, c) = GlobalNormClip::new(50.0).unwrap().coefficient(&sums);
                coefs.fill(c);
            }
            _ => {
                self.adagc.plan(&sums, &self.gamma, &mut coefs).unwrap();
            }
        }
        coefs
    }

    fn reference_commit<G: Element>(&mut self, grads: &[Vec<G>], opts: &StepOptions) {
        if let Kind::GlobalNorm = self.kind {
            return;
        }
        let gs = opts.grad_scale.unwrap_or(1.0);
        let sums: Vec<f32> = grads.iter().map(|g| tensor_sum_sq(g, gs)).collect();
        let mut coefs = vec![0.0; sums.len()];
        let plan = self.adagc.plan(&sums, &self.gamma, &mut coefs).unwrap();
        assert!(self.adagc.commit(&sums, &mut self.gamma, &plan).unwrap());
    }

    fn bits(&self) -> (u64, Vec<u32>) {
        (self.adagc.state.step, bits(&self.gamma))
    }
}

fn lens() -> Vec<usize> {
    vec![1000, 37, 4097, 0, FUSE_MAX + 4099]
}

fn opts_list() -> Vec<StepOptions> {
    let plain = StepOptions::new(1e-2);
    let mut scaled = StepOptions::new(3e-3);
    scaled.grad_scale = Some(0.5);
    vec![plain, scaled]
}

/// Per tensor: the plan with its clip coefficient and its offset in the model's index space.
fn tensor_plans<K: Copy>(plan: &Plan<K>, lens: &[usize], coefs: &[f32]) -> Vec<Plan<K>> {
    let mut base = 0;
    lens.iter()
        .zip(coefs)
        .map(|(&n, &c)| {
            let mut p = *plan;
            p.sr = plan.sr.map(|k| k.offset_by(base));
            p.prep.clip_coef = c;
            base += n;
            p
        })
        .collect()
}

fn vecs<T: Element>(r: &mut Rng, lens: &[usize], f: fn(&mut Rng) -> f32) -> Vec<Vec<T>> {
    lens.iter()
        .map(|&n| (0..n).map(|_| raw(f(r))).collect())
        .collect()
}

fn check_adam<P: Element, G: Element, S: StateElement>(seed: u64) {
    let mut r = Rng(seed);
    let lens = lens();
    let config = AdamConfig {
        weight_decay: 0.1,
        stochastic_rounding_seed: Some(5),
        ..AdamConfig::adamw()
    };
    for kind in KINDS {
        for opts in opts_list() {
            let p0: Vec<Vec<P>> = vecs(&mut r, &lens, adversarial);
            let g: Vec<Vec<G>> = vecs(&mut r, &lens, gradient);
            let m0: Vec<Vec<S>> = vecs(&mut r, &lens, adversarial);
            let v0: Vec<Vec<S>> = vecs(&mut r, &lens, adversarial);
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            let mut opt = Adam::new(config).unwrap();
            let mut clip = ClipState::new(kind, lens.len());
            for _ in 0..STEPS {
                let coefs = clip.reference_coefs(&g, &opts);
                let Begin::Apply(plan) = opt.begin(&opts, g.iter().map(|g| &g[..])).unwrap() else {
                    panic!()
                };
                for (i, tp) in tensor_plans(&plan, &lens, &coefs).iter().enumerate() {
                    adam_reference(&mut p[i], &g[i], &mut m[i], &mut v[i], tp);
                }
                opt.commit(&plan);
                clip.reference_commit(&g, &opts);
            }
            let want = (
                p.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                m.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                v.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                clip.bits(),
            );
            for d in drivers() {
                let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
                let mut opt = Adam::new(config).unwrap();
                let mut clip = ClipState::new(kind, lens.len());
                for step in 1..=STEPS {
                    let mut t: Vec<AdamTensor<'_, P, G, S>> = p
                        .iter_mut()
                        .zip(&g)
                        .zip(m.iter_mut().zip(v.iter_mut()))
                        .map(|((p, g), (m, v))| AdamTensor {
                            param: p,
                            grad: g,
                            exp_avg: m,
                            exp_avg_sq: v,
                        })
                        .collect();
                    let out = d
                        .adam_step_clipped(&mut opt, &mut t, &opts, clip.clipper())
                        .unwrap();
                    assert_eq!(out.outcome, StepOutcome::Applied { step });
                    assert_eq!(out.coefs.len(), lens.len());
                }
                let got = (
                    p.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                    m.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                    v.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                    clip.bits(),
                );
                assert!(got == want, "adam {kind:?} {d:?} {opts:?}");
            }
        }
    }
}

fn check_sgd_lion<P: Element, G: Element, S: StateElement>(seed: u64) {
    let mut r = Rng(seed);
    let lens = lens();
    let sgd = SgdConfig {
        momentum: 0.9,
        weight_decay: 0.01,
        stochastic_rounding_seed: Some(6),
        ..SgdConfig::new(0.1)
    };
    let lion = LionConfig {
        weight_decay: 0.5,
        stochastic_rounding_seed: Some(7),
        ..LionConfig::official()
    };
    for kind in KINDS {
        for opts in opts_list() {
            let p0: Vec<Vec<P>> = vecs(&mut r, &lens, adversarial);
            let g: Vec<Vec<G>> = vecs(&mut r, &lens, gradient);
            let m0: Vec<Vec<S>> = vecs(&mut r, &lens, adversarial);
            for is_lion in [false, true] {
                let (mut p, mut m) = (p0.clone(), m0.clone());
                let (mut os, mut ol) = (Sgd::new(sgd).unwrap(), Lion::new(lion).unwrap());
                let mut clip = ClipState::new(kind, lens.len());
                for _ in 0..STEPS {
                    let coefs = clip.reference_coefs(&g, &opts);
                    let grads = g.iter().map(|g| &g[..]);
                    if is_lion {
                        let Begin::Apply(plan) = ol.begin(&opts, grads).unwrap() else {
                            panic!()
                        };
                        for (i, tp) in tensor_plans(&plan, &lens, &coefs).iter().enumerate() {
                            lion_reference(&mut p[i], &g[i], &mut m[i], tp);
                        }
                        ol.commit(&plan);
                    } else {
                        let Begin::Apply(plan) = os.begin(&opts, grads).unwrap() else {
                            panic!()
                        };
                        for (i, tp) in tensor_plans(&plan, &lens, &coefs).iter().enumerate() {
                            sgd_reference(&mut p[i], &g[i], &mut m[i], tp);
                        }
                        os.commit(&plan);
                    }
                    clip.reference_commit(&g, &opts);
                }
                let want = (
                    p.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                    m.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                    clip.bits(),
                );
                for d in drivers() {
                    let (mut p, mut m) = (p0.clone(), m0.clone());
                    let (mut os, mut ol) = (Sgd::new(sgd).unwrap(), Lion::new(lion).unwrap());
                    let mut clip = ClipState::new(kind, lens.len());
                    for step in 1..=STEPS {
                        let out = if is_lion {
                            let mut t: Vec<LionTensor<'_, P, G, S>> = p
                                .iter_mut()
                                .zip(&g)
                                .zip(m.iter_mut())
                                .map(|((p, g), m)| LionTensor {
                                    param: p,
                                    grad: g,
                                    exp_avg: m,
                                })
                                .collect();
                            d.lion_step_clipped(&mut ol, &mut t, &opts, clip.clipper())
                        } else {
                            let mut t: Vec<SgdTensor<'_, P, G, S>> = p
                                .iter_mut()
                                .zip(&g)
                                .zip(m.iter_mut())
                                .map(|((p, g), m)| SgdTensor {
                                    param: p,
                                    grad: g,
                                    momentum_buffer: m,
                                })
                                .collect();
                            d.sgd_step_clipped(&mut os, &mut t, &opts, clip.clipper())
                        };
                        assert_eq!(out.unwrap().outcome, StepOutcome::Applied { step });
                    }
                    let got = (
                        p.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                        m.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                        clip.bits(),
                    );
                    assert!(got == want, "lion={is_lion} {kind:?} {d:?} {opts:?}");
                }
            }
        }
    }
}

fn mini_layouts() -> Vec<BlockLayout<'static>> {
    vec![
        BlockLayout::Rows { row_len: 100 },
        BlockLayout::Element,
        BlockLayout::Heads { head_numel: 4097 },
        BlockLayout::Tensor,
        BlockLayout::Tensor,
    ]
}

fn check_mini<P: Element, G: Element, S: StateElement>(seed: u64) {
    let mut r = Rng(seed);
    let lens = lens();
    let layouts = mini_layouts();
    let wds = [true, false, true, false, true];
    let config = AdamMiniConfig {
        weight_decay: 0.1,
        stochastic_rounding_seed: Some(8),
        ..AdamMiniConfig::default()
    };
    for kind in KINDS {
        for opts in opts_list() {
            let p0: Vec<Vec<P>> = vecs(&mut r, &lens, adversarial);
            let g: Vec<Vec<G>> = vecs(&mut r, &lens, gradient);
            let m0: Vec<Vec<S>> = vecs(&mut r, &lens, adversarial);
            let v0: Vec<Vec<S>> = lens
                .iter()
                .zip(&layouts)
                .map(|(&n, l)| {
                    (0..l.state_len(n).unwrap())
                        .map(|_| raw(adversarial(&mut r).abs()))
                        .collect()
                })
                .collect();
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            let mut opt = AdamMini::new(config).unwrap();
            let mut clip = ClipState::new(kind, lens.len());
            for _ in 0..STEPS {
                let coefs = clip.reference_coefs(&g, &opts);
                let Begin::Apply(plan) = opt.begin(&opts, g.iter().map(|g| &g[..])).unwrap() else {
                    panic!()
                };
                for (i, tp) in tensor_plans(&plan, &lens, &coefs).iter().enumerate() {
                    let (pi, gi, mi, vi) = (&mut p[i], &g[i], &mut m[i], &mut v[i]);
                    apply_tensor(pi, gi, mi, vi, &layouts[i], wds[i], tp, Path::Reference).unwrap();
                }
                opt.commit(&plan);
                clip.reference_commit(&g, &opts);
            }
            let want = (
                p.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                m.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                v.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                clip.bits(),
            );
            for d in drivers() {
                let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
                let mut opt = AdamMini::new(config).unwrap();
                let mut clip = ClipState::new(kind, lens.len());
                for step in 1..=STEPS {
                    let mut t: Vec<AdamMiniTensor<'_, P, G, S>> = p
                        .iter_mut()
                        .zip(&g)
                        .zip(m.iter_mut().zip(v.iter_mut()))
                        .enumerate()
                        .map(|(i, ((p, g), (m, v)))| AdamMiniTensor {
                            param: p,
                            grad: g,
                            exp_avg: m,
                            exp_avg_sq: v,
                            layout: layouts[i],
                            weight_decay: wds[i],
                        })
                        .collect();
                    let out = d
                        .adam_mini_step_clipped(&mut opt, &mut t, &opts, clip.clipper())
                        .unwrap();
                    assert_eq!(out.outcome, StepOutcome::Applied { step });
                }
                let got = (
                    p.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                    m.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                    v.iter().map(|x| bits(x)).collect::<Vec<_>>(),
                    clip.bits(),
                );
                assert!(got == want, "adam-mini {kind:?} {d:?} {opts:?}");
            }
        }
    }
}

#[test]
fn conformance_clipped_adam_any_split_any_isa_equals_core_flow() {
    check_adam::<f32, f32, f32>(1);
    check_adam::<bf16, bf16, f32>(2);
    check_adam::<bf16, bf16, bf16>(3);
}

#[test]
fn conformance_clipped_sgd_and_lion_any_split_any_isa_equal_core_flow() {
    check_sgd_lion::<f32, f32, f32>(4);
    check_sgd_lion::<bf16, bf16, bf16>(5);
}

#[test]
fn conformance_clipped_adam_mini_any_split_any_isa_equals_core_flow() {
    check_mini::<f32, f32, f32>(6);
    check_mini::<bf16, bf16, f32>(7);
    check_mini::<bf16, bf16, bf16>(8);
}

#[test]
fn spec_clipping_changes_the_update() {
    // The coefficients are not all 1 in these cases: a clipped step differs from a plain one.
    let mut r = Rng(9);
    let lens = lens();
    let g: Vec<Vec<f32>> = vecs(&mut r, &lens, gradient);
    for kind in KINDS {
        let clip = ClipState::new(kind, lens.len());
        let coefs = clip.reference_coefs(&g, &StepOptions::new(1e-3));
        assert!(coefs.iter().any(|&c| c < 1.0), "{kind:?} {coefs:?}");
    }
}

#[test]
fn spec_clipped_skips_and_errors_write_nothing() {
    let mut r = Rng(10);
    let lens = [1000usize, FUSE_MAX + 1, 64];
    for d in drivers() {
        for kind in KINDS {
            for bad in 0..lens.len() {
                let mut p: Vec<Vec<bf16>> = vecs(&mut r, &lens, adversarial);
                let mut g: Vec<Vec<bf16>> = vecs(&mut r, &lens, gradient);
                let mut m: Vec<Vec<f32>> = vecs(&mut r, &lens, adversarial);
                let mut v: Vec<Vec<f32>> = vecs(&mut r, &lens, adversarial);
                let last = lens[bad] - 1;
                g[bad][last] = bf16::from_bits(0xFF80);
                let snapshot = |p: &[Vec<bf16>], m: &[Vec<f32>], v: &[Vec<f32>]| {
                    let b = |x: &[Vec<f32>]| x.iter().map(|x| bits(x)).collect::<Vec<_>>();
                    (p.iter().map(|x| bits(x)).collect::<Vec<_>>(), b(m), b(v))
                };
                let before = snapshot(&p, &m, &v);
                let mut opt = Adam::new(AdamConfig::adamw()).unwrap();
                let mut clip = ClipState::new(kind, lens.len());
                let clip_before = clip.bits();
                let mut t: Vec<AdamTensor<'_, bf16, bf16, f32>> = p
                    .iter_mut()
                    .zip(&g)
                    .zip(m.iter_mut().zip(v.iter_mut()))
                    .map(|((p, g), (m, v))| AdamTensor {
                        param: p,
                        grad: g,
                        exp_avg: m,
                        exp_avg_sq: v,
                    })
                    .collect();
                // A non-finite gradient with a loss scale: skipped.
                let mut opts = StepOptions::new(1e-3);
                opts.grad_scale = Some(1024.0);
                let out = d
                    .adam_step_clipped(&mut opt, &mut t, &opts, clip.clipper())
                    .unwrap();
                assert_eq!(out.outcome, StepOutcome::Skipped(SkipReason::NonFiniteGrad));
                // found_inf: skipped.
                let mut opts = StepOptions::new(1e-3);
                opts.found_inf = true;
                let out = d
                    .adam_step_clipped(&mut opt, &mut t, &opts, clip.clipper())
                    .unwrap();
                assert_eq!(out.outcome, StepOutcome::Skipped(SkipReason::FoundInf));
                // A clip coefficient next to a clipper: an error.
                let mut opts = StepOptions::new(1e-3);
                opts.clip_coef = Some(0.5);
                let err = d.adam_step_clipped(&mut opt, &mut t, &opts, clip.clipper());
                assert!(matches!(err, Err(StepError::Config(_))));
                // A gamma buffer of the wrong length: an error.
                if !matches!(kind, Kind::GlobalNorm) {
                    let mut short = vec![0.0f32; 0];
                    let err = d.adam_step_clipped(
                        &mut opt,
                        &mut t,
                        &StepOptions::new(1e-3),
                        Clipper::AdaGc {
                            clip: &mut clip.adagc,
                            gamma: &mut short,
                        },
                    );
                    assert!(matches!(err, Err(StepError::Layout(_))));
                }
                drop(t);
                assert!(snapshot(&p, &m, &v) == before);
                assert_eq!(opt.state.step, 0);
                assert!(clip.bits() == clip_before);
            }
        }
    }
}
