//! The driver's promise: any thread split and any instruction set give the bits of core's
//! reference path, for every rule and storage combination, on adversarial values.

use adamant_core::rules::adam::adam_reference;
use adamant_core::rules::lion::lion_reference;
use adamant_core::rules::sgd::sgd_reference;
use adamant_core::scalars::{LibmSqrt, Sqrt};
use adamant_core::store::{Element, StateElement};
use adamant_core::{
    bf16, f16, Adam, AdamConfig, Begin, Lion, LionConfig, Sgd, SgdConfig, SkipReason, StepError,
    StepOptions, StepOutcome,
};
use adamant_cpu::{AdamTensor, Driver, HwSqrt, Isa, LionTensor, SgdTensor};

const THREADS: [usize; 4] = [1, 2, 3, 7];
// 65, 1000, 4099 and 9293 pass the prefetching kernels' whole chunks (64 elements for Adam,
// 128 for SGD and Lion) and a shorter rest, split at arbitrary points by the thread counts.
const LENS: [usize; 7] = [0, 1, 63, 65, 1000, 4099, 9293];

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

/// An adversarial f32: mostly ordinary values, with NaN payloads, +-0, subnormals, +-inf,
/// huge and tiny values mixed in.
fn adversarial(r: &mut Rng) -> f32 {
    let sign = if r.next() & 1 == 1 { 0x8000_0000u32 } else { 0 };
    let bits = match r.below(16) {
        0 => 0x7F80_0001 | (r.next() as u32 & 0x007F_FFFF), // NaN with payload
        1 => 0,                                             // zero
        2 => r.next() as u32 & 0x007F_FFFF,                 // subnormal
        3 => 0x7F80_0000,                                   // inf
        4 => 0x7F00_0000 | (r.next() as u32 & 0x00FF_FFFF), // huge
        5 => 0x0080_0000 | (r.next() as u32 & 0x00FF_FFFF), // tiny normal
        6 => 0x3880_0000 | (r.next() as u32 & 0x007F_FFFF), // f16 subnormal boundary
        _ => 0x3C00_0000 + (r.next() as u32 % 0x0400_0000), // ordinary, ~1e-2 .. 4
    };
    f32::from_bits(bits | sign)
}

fn buf<T: Element>(r: &mut Rng, n: usize) -> Vec<T> {
    (0..n)
        .map(|_| T::narrow_bits_of(adversarial(r)))
        .collect::<Vec<T>>()
}

/// Store without canonicalising NaNs, so that inputs keep their payloads.
trait RawFrom {
    fn narrow_bits_of(x: f32) -> Self;
}
impl<T: Element> RawFrom for T {
    fn narrow_bits_of(x: f32) -> T {
        let b = x.to_bits();
        match T::DTYPE {
            adamant_core::Dtype::F32 => T::from_bits_u32(b),
            // Keep the high half: NaN payloads survive in bf16; f16 gets arbitrary patterns,
            // including its NaNs, infinities and subnormals.
            _ => T::from_bits_u32(b >> 16),
        }
    }
}

fn bits<T: Element>(v: &[T]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits_u32()).collect()
}

fn drivers() -> Vec<Driver> {
    let mut out = Vec::new();
    for isa in Isa::ALL {
        if let Ok(d) = Driver::new().with_isa(isa) {
            for t in THREADS {
                out.push(d.with_threads(t).with_grain(1));
            }
        }
    }
    out
}

fn opts_list() -> Vec<StepOptions> {
    let plain = StepOptions::new(1e-2);
    let mut clipped = StepOptions::new(3e-3);
    clipped.clip_coef = Some(0.37);
    vec![plain, clipped]
}

fn check_adam<P: Element, G: Element, S: StateElement>(seed: u64) {
    let mut r = Rng(seed);
    for decoupled in [true, false] {
        for sr in [None, Some(99u64)] {
            let config = AdamConfig {
                decoupled,
                weight_decay: 0.1,
                stochastic_rounding_seed: sr,
                ..AdamConfig::adamw()
            };
            for &n in &LENS {
                for opts in opts_list() {
                    let p0: Vec<P> = buf(&mut r, n);
                    let g: Vec<G> = buf(&mut r, n);
                    let m0: Vec<S> = buf(&mut r, n);
                    let v0: Vec<S> = buf(&mut r, n);
                    // Reference: two steps of core's reference path.
                    let mut opt = Adam::new(config).unwrap();
                    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
                    for _ in 0..2 {
                        let Begin::Apply(plan) = opt.begin(&opts, [&g[..]]).unwrap() else {
                            panic!("unexpected skip")
                        };
                        adam_reference(&mut p, &g, &mut m, &mut v, &plan);
                        opt.commit(&plan);
                    }
                    let want = (bits(&p), bits(&m), bits(&v));
                    for d in drivers() {
                        let mut opt = Adam::new(config).unwrap();
                        let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
                        for _ in 0..2 {
                            let out = d.adam_step(&mut opt, &mut p, &g, &mut m, &mut v, &opts);
                            assert!(matches!(out, Ok(StepOutcome::Applied { .. })));
                        }
                        assert_eq!(opt.state.step, 2);
                        let got = (bits(&p), bits(&m), bits(&v));
                        assert!(
                            got == want,
                            "adam {}/{}/{} n={n} {d:?} sr={sr:?} decoupled={decoupled}",
                            P::DTYPE,
                            G::DTYPE,
                            S::DTYPE
                        );
                    }
                }
            }
        }
    }
}

fn check_sgd<P: Element, G: Element, S: StateElement>(seed: u64) {
    let mut r = Rng(seed);
    for (momentum, nesterov) in [(0.0, false), (0.9, false), (0.9, true)] {
        for sr in [None, Some(7u64)] {
            let config = SgdConfig {
                momentum,
                nesterov,
                dampening: if nesterov { 0.0 } else { 0.1 },
                weight_decay: 0.01,
                stochastic_rounding_seed: sr,
                ..SgdConfig::new(0.1)
            };
            for &n in &LENS {
                for opts in opts_list() {
                    let opt0 = Sgd::new(config).unwrap();
                    let p0: Vec<P> = buf(&mut r, n);
                    let g: Vec<G> = buf(&mut r, n);
                    let b0: Vec<S> = buf(&mut r, opt0.momentum_buffer_len(n));
                    let mut opt = opt0;
                    let (mut p, mut b) = (p0.clone(), b0.clone());
                    for _ in 0..2 {
                        let Begin::Apply(plan) = opt.begin(&opts, [&g[..]]).unwrap() else {
                            panic!("unexpected skip")
                        };
                        sgd_reference(&mut p, &g, &mut b, &plan);
                        opt.commit(&plan);
                    }
                    let want = (bits(&p), bits(&b));
                    for d in drivers() {
                        let mut opt = opt0;
                        let (mut p, mut b) = (p0.clone(), b0.clone());
                        for _ in 0..2 {
                            d.sgd_step(&mut opt, &mut p, &g, &mut b, &opts).unwrap();
                        }
                        assert!(
                            (bits(&p), bits(&b)) == want,
                            "sgd {}/{}/{} n={n} {d:?} momentum={momentum} nesterov={nesterov}",
                            P::DTYPE,
                            G::DTYPE,
                            S::DTYPE
                        );
                    }
                }
            }
        }
    }
}

fn check_lion<P: Element, G: Element, S: StateElement>(seed: u64) {
    let mut r = Rng(seed);
    for sr in [None, Some(5u64)] {
        let config = LionConfig {
            weight_decay: 0.5,
            stochastic_rounding_seed: sr,
            ..LionConfig::official()
        };
        for &n in &LENS {
            for opts in opts_list() {
                let p0: Vec<P> = buf(&mut r, n);
                let g: Vec<G> = buf(&mut r, n);
                let m0: Vec<S> = buf(&mut r, n);
                let mut opt = Lion::new(config).unwrap();
                let (mut p, mut m) = (p0.clone(), m0.clone());
                for _ in 0..2 {
                    let Begin::Apply(plan) = opt.begin(&opts, [&g[..]]).unwrap() else {
                        panic!("unexpected skip")
                    };
                    lion_reference(&mut p, &g, &mut m, &plan);
                    opt.commit(&plan);
                }
                let want = (bits(&p), bits(&m));
                for d in drivers() {
                    let mut opt = Lion::new(config).unwrap();
                    let (mut p, mut m) = (p0.clone(), m0.clone());
                    for _ in 0..2 {
                        d.lion_step(&mut opt, &mut p, &g, &mut m, &opts).unwrap();
                    }
                    assert!(
                        (bits(&p), bits(&m)) == want,
                        "lion {}/{}/{} n={n} {d:?}",
                        P::DTYPE,
                        G::DTYPE,
                        S::DTYPE
                    );
                }
            }
        }
    }
}

/// Instantiate a check for every (param, grad, state) storage combination.
macro_rules! every_combination {
    ($name:ident, $check:ident) => {
        #[test]
        fn $name() {
            let mut seed = 1;
            macro_rules! one {
                ($p:ty, $g:ty, $s:ty) => {
                    seed += 1;
                    $check::<$p, $g, $s>(seed);
                };
            }
            macro_rules! grads {
                ($p:ty, $s:ty) => {
                    one!($p, f32, $s);
                    one!($p, bf16, $s);
                    one!($p, f16, $s);
                };
            }
            grads!(f32, f32);
            grads!(f32, bf16);
            grads!(bf16, f32);
            grads!(bf16, bf16);
            grads!(f16, f32);
            grads!(f16, bf16);
        }
    };
}

every_combination!(
    conformance_adam_any_split_any_isa_equals_reference,
    check_adam
);
every_combination!(
    conformance_sgd_any_split_any_isa_equals_reference,
    check_sgd
);
every_combination!(
    conformance_lion_any_split_any_isa_equals_reference,
    check_lion
);

#[test]
fn spec_hw_sqrt_is_bit_identical_to_libm() {
    let edges = [
        0u32,
        0x8000_0000,
        1,
        0x8000_0001,
        0x007F_FFFF,
        0x0080_0000,
        0x3F80_0000,
        0x3F80_0001,
        0x4000_0000,
        0x7F7F_FFFF,
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0000,
        0x7F80_0001,
        0xFFC0_1234,
        0xBF80_0000,
    ];
    let mut r = Rng(12345);
    let sample = (0..2_000_000).map(|_| r.next() as u32);
    // Every exponent with a few mantissas, plus the random sample.
    let sweep = (0..=0x1FFu32).flat_map(|e| [0u32, 1, 0x40_0000, 0x7F_FFFF].map(|m| (e << 23) | m));
    let mut count = 0;
    for b in edges.into_iter().chain(sweep).chain(sample) {
        let x = f32::from_bits(b);
        let (hw, sw) = (HwSqrt::sqrt(x), LibmSqrt::sqrt(x));
        if sw.is_nan() {
            // Both NaN; the store path canonicalises the payload.
            assert!(hw.is_nan(), "{b:#010x}");
        } else {
            assert_eq!(hw.to_bits(), sw.to_bits(), "{b:#010x}");
        }
        count += 1;
    }
    assert!(count > 2_000_000);
}

#[test]
fn spec_hw_sqrt_in_a_vector_loop_matches_libm() {
    // The vectorized sqrt (sqrtps/vsqrtps) through Adam's fast path with each ISA equals the
    // reference with libm on a large sample of ordinary and adversarial values.
    let mut r = Rng(77);
    let n = 1 << 14;
    let p0: Vec<f32> = buf(&mut r, n);
    let g: Vec<f32> = (0..n)
        .map(|_| f32::from_bits(r.next() as u32 & 0x7FFF_FFFF))
        .collect();
    let m0: Vec<f32> = buf(&mut r, n);
    let v0: Vec<f32> = (0..n).map(|_| f32::from_bits(r.next() as u32)).collect();
    let opts = StepOptions::new(1e-3);
    let mut opt = Adam::new(AdamConfig::adamw()).unwrap();
    let Begin::Apply(plan) = opt.begin(&opts, [&g[..]]).unwrap() else {
        panic!()
    };
    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
    adam_reference(&mut p, &g, &mut m, &mut v, &plan);
    for d in drivers() {
        let mut opt = Adam::new(AdamConfig::adamw()).unwrap();
        let (mut p2, mut m2, mut v2) = (p0.clone(), m0.clone(), v0.clone());
        d.adam_step(&mut opt, &mut p2, &g, &mut m2, &mut v2, &opts)
            .unwrap();
        assert!(bits(&p2) == bits(&p) && bits(&v2) == bits(&v) && bits(&m2) == bits(&m));
    }
    opt.commit(&plan);
}

#[test]
fn spec_multi_tensor_equals_one_concatenated_tensor() {
    let mut r = Rng(3);
    let lens = [0usize, 130, 1, 4096, 77, 64];
    let total: usize = lens.iter().sum();
    let config = AdamConfig {
        stochastic_rounding_seed: Some(11),
        ..AdamConfig::adamw()
    };
    let p0: Vec<bf16> = buf(&mut r, total);
    let g: Vec<f32> = (0..total).map(|_| adversarial(&mut r)).collect();
    let m0: Vec<f32> = buf(&mut r, total);
    let v0: Vec<f32> = buf(&mut r, total);
    let opts = StepOptions::new(1e-2);
    // One tensor, core reference.
    let opt = Adam::new(config).unwrap();
    let Begin::Apply(plan) = opt.begin(&opts, [&g[..]]).unwrap() else {
        panic!()
    };
    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
    adam_reference(&mut p, &g, &mut m, &mut v, &plan);
    for d in drivers() {
        let mut opt = Adam::new(config).unwrap();
        let (mut p2, mut m2, mut v2) = (p0.clone(), m0.clone(), v0.clone());
        {
            let mut tensors = Vec::new();
            let (mut pr, mut gr, mut mr, mut vr) = (&mut p2[..], &g[..], &mut m2[..], &mut v2[..]);
            for &l in &lens {
                let (pa, pb) = pr.split_at_mut(l);
                let (ga, gb) = gr.split_at(l);
                let (ma, mb) = mr.split_at_mut(l);
                let (va, vb) = vr.split_at_mut(l);
                tensors.push(AdamTensor {
                    param: pa,
                    grad: ga,
                    exp_avg: ma,
                    exp_avg_sq: va,
                });
                (pr, gr, mr, vr) = (pb, gb, mb, vb);
            }
            let out = d.adam_step_multi(&mut opt, &mut tensors, &opts).unwrap();
            assert_eq!(out, StepOutcome::Applied { step: 1 });
        }
        assert!(bits(&p2) == bits(&p) && bits(&m2) == bits(&m) && bits(&v2) == bits(&v));
    }
}

#[test]
fn spec_non_finite_grad_in_any_tensor_skips_and_writes_nothing() {
    let mut r = Rng(4);
    for d in drivers() {
        for bad_tensor in 0..3 {
            let n = [100usize, 5000, 3];
            let mut p: Vec<Vec<f32>> = n.iter().map(|&l| buf(&mut r, l)).collect();
            let mut g: Vec<Vec<bf16>> = n.iter().map(|&l| vec![bf16::from_f32(0.5); l]).collect();
            let mut m: Vec<Vec<f32>> = n.iter().map(|&l| vec![0.25; l]).collect();
            let last = n[bad_tensor] - 1;
            g[bad_tensor][last] = bf16::from_bits(0xFF80);
            let before = (p.clone(), m.clone());
            let mut opt = Lion::new(LionConfig::official()).unwrap();
            let mut opts = StepOptions::new(1e-3);
            opts.grad_scale = Some(1024.0);
            let mut tensors: Vec<LionTensor<'_, f32, bf16, f32>> = p
                .iter_mut()
                .zip(&g)
                .zip(m.iter_mut())
                .map(|((p, g), m)| LionTensor {
                    param: p,
                    grad: g,
                    exp_avg: m,
                })
                .collect();
            let out = d.lion_step_multi(&mut opt, &mut tensors, &opts).unwrap();
            assert_eq!(out, StepOutcome::Skipped(SkipReason::NonFiniteGrad));
            drop(tensors);
            assert_eq!(opt.state.step, 0);
            let same = p.iter().zip(&before.0).all(|(a, b)| bits(a) == bits(b))
                && m.iter().zip(&before.1).all(|(a, b)| bits(a) == bits(b));
            assert!(same, "{d:?} wrote on a skipped step");
            // found_inf wins over the scan; a finite step then applies.
            g[bad_tensor][last] = bf16::from_f32(1.0);
            opts.found_inf = true;
            let mut tensors: Vec<LionTensor<'_, f32, bf16, f32>> = p
                .iter_mut()
                .zip(&g)
                .zip(m.iter_mut())
                .map(|((p, g), m)| LionTensor {
                    param: p,
                    grad: g,
                    exp_avg: m,
                })
                .collect();
            let out = d.lion_step_multi(&mut opt, &mut tensors, &opts).unwrap();
            assert_eq!(out, StepOutcome::Skipped(SkipReason::FoundInf));
            opts.found_inf = false;
            let out = d.lion_step_multi(&mut opt, &mut tensors, &opts).unwrap();
            assert_eq!(out, StepOutcome::Applied { step: 1 });
        }
    }
}

#[test]
fn spec_errors_are_reported_before_anything_is_written() {
    let d = Driver::new().with_threads(2).with_grain(1);
    let mut p = vec![1.0f32; 300];
    let g = vec![1.0f32; 300];
    let mut m = vec![0.0f32; 300];
    let mut v_short = vec![0.0f32; 299];
    let mut opt = Adam::new(AdamConfig::adamw()).unwrap();
    let opts = StepOptions::new(1e-3);
    let e = d.adam_step(&mut opt, &mut p, &g, &mut m, &mut v_short, &opts);
    assert!(matches!(e, Err(StepError::Layout(_))));
    // A mismatch in the second tensor of a list: the first is untouched too.
    let mut p2 = [1.0f32; 10];
    let g2 = [1.0f32; 10];
    let mut b2 = [0.0f32; 9];
    let mut b1 = vec![0.0f32; 300];
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::new(0.1)
    })
    .unwrap();
    let mut tensors = [
        SgdTensor {
            param: &mut p[..],
            grad: &g[..],
            momentum_buffer: &mut b1[..],
        },
        SgdTensor {
            param: &mut p2[..],
            grad: &g2[..],
            momentum_buffer: &mut b2[..],
        },
    ];
    let e = d.sgd_step_multi(&mut sgd, &mut tensors, &opts);
    assert!(matches!(e, Err(StepError::Layout(_))));
    // Bad options are a config error, not a skip, even with found_inf set.
    let mut bad = StepOptions::new(f64::NAN);
    bad.found_inf = true;
    let _ = tensors;
    let mut v = vec![0.0f32; 300];
    let e = d.adam_step(&mut opt, &mut p, &g, &mut m, &mut v, &bad);
    assert!(matches!(e, Err(StepError::Config(_))));
    assert!(v.iter().all(|&x| x == 0.0));
    assert!(p.iter().all(|&x| x == 1.0) && p2.iter().all(|&x| x == 1.0));
    assert!(m.iter().all(|&x| x == 0.0) && b1.iter().all(|&x| x == 0.0));
    assert_eq!((opt.state.step, sgd.state.step), (0, 0));
}

#[test]
fn sanity_isa_names_and_override() {
    for isa in Isa::ALL {
        assert_eq!(Isa::parse(isa.name()), Some(isa));
    }
    assert!(Isa::Baseline.is_available());
    assert!(adamant_cpu::isa() <= adamant_cpu::detected_isa());
    assert!(adamant_cpu::isa().is_available());
    for isa in Isa::ALL {
        assert_eq!(Driver::new().with_isa(isa).is_ok(), isa.is_available());
    }
}

#[test]
fn spec_isa_env_var_caps_the_instruction_set() {
    // `isa()` reads the variable once per process, so check it in a child process: this same
    // test binary, running only this test, with the variable set.
    if let Ok(v) = std::env::var(adamant_cpu::ISA_ENV) {
        assert_eq!(v, "sse2");
        assert_eq!(adamant_cpu::isa(), Isa::Baseline);
        assert_eq!(Driver::new().isa(), Isa::Baseline);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args([
            "--exact",
            "spec_isa_env_var_caps_the_instruction_set",
            "--test-threads=1",
        ])
        .env(adamant_cpu::ISA_ENV, "sse2")
        .status()
        .unwrap();
    assert!(status.success());
}
