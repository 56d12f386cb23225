//! Reference path == fast path, bit for bit, for every rule and storage combination, on
//! adversarial inputs (NaN payloads of both signs, +-0, subnormals, +-inf, extremes, random
//! bit patterns mixed with ordinary values), odd lengths, unaligned starting offsets, with
//! and without loss scale / clip coefficient / stochastic rounding, and for any split of
//! the slice into up to five calls (`StochasticRounding::offset_by` keys each piece).
//!
//! `PROPTEST_CASES` sets the number of cases per property (default 256).

mod common;

use adamant_core::rules::adam::{adam_reference, adam_slice, AdamConfig};
use adamant_core::rules::lion::{lion_reference, lion_slice, LionConfig};
use adamant_core::rules::sgd::{sgd_reference, sgd_slice, SgdConfig};
use adamant_core::rules::Plan;
use adamant_core::scalars::LibmSqrt;
use adamant_core::step::{GradPrep, StochasticRounding};
use adamant_core::{bf16, f16, Element, StateElement};
use common::{bits, family, first_diffs};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// One raw element draw: `kind` picks random bits, an adversarial pattern or an ordinary value.
type Raw = (u8, u32);

fn raw() -> impl Strategy<Value = Raw> {
    (0u8..10, any::<u32>())
}

/// Turn a draw into an element of `T`; `nonneg` makes ordinary values non-negative (for
/// second moments, so most of a case stays finite and exercises the arithmetic).
fn elem<T: Element>((kind, r): Raw, nonneg: bool) -> T {
    match kind {
        0 | 1 => T::from_bits_u32(r),
        2 | 3 => {
            let fam = family::<T>();
            T::from_bits_u32(fam[r as usize % fam.len()])
        }
        _ => {
            // +-(1 + m/2^20) * 2^e, e in [-14, 1]: ordinary magnitudes of weights and grads.
            let m = 1.0 + (r & 0xF_FFFF) as f32 / (1u32 << 20) as f32;
            let e = ((r >> 20) & 15) as i32 - 14;
            let sign = if !nonneg && (r >> 31) == 1 { -1.0 } else { 1.0 };
            T::narrow(sign * m * (2.0f32).powi(e))
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    p: Vec<Raw>,
    g: Vec<Raw>,
    m: Vec<Raw>,
    v: Vec<Raw>,
    /// Leading elements before the slice under test (unaligned starts).
    off: usize,
    /// Cut points as fractions of the length (per mille, 0..=1000), up to 4: the fast path
    /// also runs as one call per piece.
    cuts: Vec<usize>,
    grad_scale: Option<f32>,
    clip_coef: Option<f32>,
    sr: Option<(u64, u64)>,
}

impl Case {
    fn n(&self) -> usize {
        self.p.len()
    }
    /// `(start, end)` of every piece, covering `0..n` in order (empty pieces allowed).
    fn pieces(&self) -> Vec<(usize, usize)> {
        let mut at: Vec<usize> = self.cuts.iter().map(|c| self.n() * c / 1000).collect();
        at.sort_unstable();
        let mut out = Vec::new();
        let mut start = 0;
        for a in at.into_iter().chain([self.n()]) {
            out.push((start, a));
            start = a;
        }
        out
    }
    fn prep(&self) -> GradPrep {
        GradPrep {
            grad_scale: self.grad_scale.unwrap_or(1.0),
            clip_coef: self.clip_coef.unwrap_or(1.0),
        }
    }
    fn sr(&self, t: u64) -> Option<StochasticRounding> {
        self.sr.map(|(seed, index_offset)| StochasticRounding {
            seed,
            step: t,
            index_offset,
        })
    }
}

fn case() -> impl Strategy<Value = Case> {
    (0usize..72).prop_flat_map(|n| {
        (
            (
                proptest::collection::vec(raw(), n),
                proptest::collection::vec(raw(), n),
                proptest::collection::vec(raw(), n),
                proptest::collection::vec(raw(), n),
            ),
            0usize..4,
            proptest::collection::vec(0usize..=1000, 1..=4),
            proptest::option::of(prop::sample::select(vec![
                1.0f32, 1024.0, 3.0, 65536.0, 1e-30,
            ])),
            proptest::option::of(prop::sample::select(vec![1.0f32, 0.5, 0.0, 0.123, 1e30])),
            proptest::option::of((any::<u64>(), any::<u64>())),
        )
            .prop_map(
                |((p, g, m, v), off, cuts, grad_scale, clip_coef, sr)| Case {
                    p,
                    g,
                    m,
                    v,
                    off,
                    cuts,
                    grad_scale,
                    clip_coef,
                    sr,
                },
            )
    })
}

/// A buffer of `raws` with `off` filler elements in front (the slice under test starts at
/// `off`, so its address is not aligned to more than the element size when `off` is odd).
fn padded<T: Element>(raws: &[Raw], off: usize, nonneg: bool) -> Vec<T> {
    let mut out: Vec<T> = (0..off).map(|i| T::narrow(i as f32 + 0.5)).collect();
    out.extend(raws.iter().map(|&r| elem::<T>(r, nonneg)));
    out
}

fn check_eq<T: Element>(what: &str, want: &[T], got: &[T]) -> Result<(), TestCaseError> {
    let (a, b) = (bits(want), bits(got));
    prop_assert!(
        a == b,
        "{what} ({}) differs at (index, reference bits, other bits): {:x?}",
        T::DTYPE,
        first_diffs(&a, &b)
    );
    Ok(())
}

fn t_values() -> impl Strategy<Value = u64> {
    prop::sample::select(vec![1u64, 2, 3, 10, 1000, 1 << 40])
}

// ---------------------------------------------------------------- Adam / AdamW

#[derive(Clone, Debug)]
struct AdamHyper {
    config: AdamConfig,
    lr: f64,
    t: u64,
}

fn adam_hyper() -> impl Strategy<Value = AdamHyper> {
    (
        prop::sample::select(vec![0.0f64, 0.5, 0.9]),
        prop::sample::select(vec![0.0f64, 0.99, 0.999]),
        prop::sample::select(vec![1e-8f64, 1e-30, 0.5]),
        prop::sample::select(vec![0.0f64, 0.01, 3.0]),
        any::<bool>(),
        prop::sample::select(vec![0.0f64, 1e-3, 0.1, 10.0]),
        t_values(),
    )
        .prop_map(
            |(beta1, beta2, eps, weight_decay, decoupled, lr, t)| AdamHyper {
                config: AdamConfig {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled,
                    stochastic_rounding_seed: None,
                },
                lr,
                t,
            },
        )
}

fn check_adam<P: Element, G: Element, S: StateElement>(
    c: &Case,
    h: &AdamHyper,
) -> Result<(), TestCaseError> {
    let plan = Plan {
        step: h.t,
        scalars: h.config.scalars(h.lr, h.t),
        prep: c.prep(),
        sr: c.sr(h.t),
    };
    let (n, off) = (c.n(), c.off);
    let p0: Vec<P> = padded(&c.p, off, false);
    let g0: Vec<G> = padded(&c.g, off, false);
    let m0: Vec<S> = padded(&c.m, off, false);
    let v0: Vec<S> = padded(&c.v, off, true);

    // Reference, on freshly allocated exact-length buffers.
    let (mut rp, rg, mut rm, mut rv) = (
        p0[off..].to_vec(),
        g0[off..].to_vec(),
        m0[off..].to_vec(),
        v0[off..].to_vec(),
    );
    adam_reference(&mut rp, &rg, &mut rm, &mut rv, &plan);

    // Fast path, whole slice at an unaligned start.
    let (mut fp, mut fm, mut fv) = (p0.clone(), m0.clone(), v0.clone());
    adam_slice::<P, G, S, LibmSqrt>(
        &mut fp[off..],
        &g0[off..],
        &mut fm[off..],
        &mut fv[off..],
        &plan,
    );
    check_eq("adam fast param", &rp, &fp[off..])?;
    check_eq("adam fast exp_avg", &rm, &fm[off..])?;
    check_eq("adam fast exp_avg_sq", &rv, &fv[off..])?;
    // Filler in front is untouched.
    check_eq("adam filler", &p0[..off], &fp[..off])?;

    // Fast path, one call per piece; stochastic rounding keyed by each piece's start.
    let (mut sp, mut sm, mut sv) = (p0[off..].to_vec(), m0[off..].to_vec(), v0[off..].to_vec());
    let g = &g0[off..];
    for (a, b) in c.pieces() {
        let piece = Plan {
            sr: plan.sr.map(|s| s.offset_by(a)),
            ..plan
        };
        adam_slice::<P, G, S, LibmSqrt>(
            &mut sp[a..b],
            &g[a..b],
            &mut sm[a..b],
            &mut sv[a..b],
            &piece,
        );
    }
    check_eq("adam split param", &rp, &sp)?;
    check_eq("adam split exp_avg", &rm, &sm)?;
    check_eq("adam split exp_avg_sq", &rv, &sv)?;
    prop_assert_eq!(rp.len(), n);
    Ok(())
}

// ---------------------------------------------------------------- SGD

#[derive(Clone, Debug)]
struct SgdHyper {
    config: SgdConfig,
    t: u64,
}

fn sgd_hyper() -> impl Strategy<Value = SgdHyper> {
    (
        prop::sample::select(vec![0.0f64, 0.9, 0.5]),
        prop::sample::select(vec![0.0f64, 0.1, 1.0]),
        prop::sample::select(vec![0.0f64, 1e-4, 2.0]),
        any::<bool>(),
        prop::sample::select(vec![0.0f64, 1e-2, 0.5, 100.0]),
        prop::sample::select(vec![1u64, 1, 2, 5, 1 << 33]),
    )
        .prop_map(|(momentum, dampening, weight_decay, nesterov, lr, t)| {
            // Nesterov only where PyTorch allows it (momentum > 0, dampening 0).
            let nesterov = nesterov && momentum > 0.0 && dampening == 0.0;
            let config = SgdConfig {
                lr,
                momentum,
                dampening,
                weight_decay,
                nesterov,
                stochastic_rounding_seed: None,
            };
            config.validate().expect("generated SGD config is valid");
            SgdHyper { config, t }
        })
}

fn check_sgd<P: Element, G: Element, S: StateElement>(
    c: &Case,
    h: &SgdHyper,
) -> Result<(), TestCaseError> {
    let plan = Plan {
        step: h.t,
        scalars: h.config.scalars(h.config.lr, h.t),
        prep: c.prep(),
        sr: c.sr(h.t),
    };
    let off = c.off;
    let with_buf = h.config.has_momentum();
    let p0: Vec<P> = padded(&c.p, off, false);
    let g0: Vec<G> = padded(&c.g, off, false);
    let b0: Vec<S> = if with_buf {
        padded(&c.m, off, false)
    } else {
        Vec::new()
    };
    let boff = if with_buf { off } else { 0 };

    let (mut rp, rg, mut rb) = (p0[off..].to_vec(), g0[off..].to_vec(), b0[boff..].to_vec());
    sgd_reference(&mut rp, &rg, &mut rb, &plan);

    let (mut fp, mut fb) = (p0.clone(), b0.clone());
    sgd_slice(&mut fp[off..], &g0[off..], &mut fb[boff..], &plan);
    check_eq("sgd fast param", &rp, &fp[off..])?;
    check_eq("sgd fast momentum_buffer", &rb, &fb[boff..])?;

    let (mut sp, mut sb) = (p0[off..].to_vec(), b0[boff..].to_vec());
    let g = &g0[off..];
    for (a, b) in c.pieces() {
        let piece = Plan {
            sr: plan.sr.map(|s| s.offset_by(a)),
            ..plan
        };
        let buf = if with_buf { &mut sb[a..b] } else { &mut sb[..] };
        sgd_slice(&mut sp[a..b], &g[a..b], buf, &piece);
    }
    check_eq("sgd split param", &rp, &sp)?;
    check_eq("sgd split momentum_buffer", &rb, &sb)?;
    Ok(())
}

// ---------------------------------------------------------------- Lion

#[derive(Clone, Debug)]
struct LionHyper {
    config: LionConfig,
}

fn lion_hyper() -> impl Strategy<Value = LionHyper> {
    (
        prop::sample::select(vec![0.0f64, 0.9, 0.95]),
        prop::sample::select(vec![0.0f64, 0.99, 0.98]),
        prop::sample::select(vec![0.0f64, 0.1, 10.0]),
        prop::sample::select(vec![0.0f64, 1e-4, 0.5, 3.0]),
    )
        .prop_map(|(beta1, beta2, weight_decay, lr)| LionHyper {
            config: LionConfig {
                lr,
                beta1,
                beta2,
                weight_decay,
                stochastic_rounding_seed: None,
            },
        })
}

fn check_lion<P: Element, G: Element, S: StateElement>(
    c: &Case,
    h: &LionHyper,
) -> Result<(), TestCaseError> {
    let t = 7;
    let plan = Plan {
        step: t,
        scalars: h.config.scalars(h.config.lr),
        prep: c.prep(),
        sr: c.sr(t),
    };
    let off = c.off;
    let p0: Vec<P> = padded(&c.p, off, false);
    let g0: Vec<G> = padded(&c.g, off, false);
    let m0: Vec<S> = padded(&c.m, off, false);

    let (mut rp, rg, mut rm) = (p0[off..].to_vec(), g0[off..].to_vec(), m0[off..].to_vec());
    lion_reference(&mut rp, &rg, &mut rm, &plan);

    let (mut fp, mut fm) = (p0.clone(), m0.clone());
    lion_slice(&mut fp[off..], &g0[off..], &mut fm[off..], &plan);
    check_eq("lion fast param", &rp, &fp[off..])?;
    check_eq("lion fast exp_avg", &rm, &fm[off..])?;

    let (mut sp, mut sm) = (p0[off..].to_vec(), m0[off..].to_vec());
    let g = &g0[off..];
    for (a, b) in c.pieces() {
        let piece = Plan {
            sr: plan.sr.map(|s| s.offset_by(a)),
            ..plan
        };
        lion_slice(&mut sp[a..b], &g[a..b], &mut sm[a..b], &piece);
    }
    check_eq("lion split param", &rp, &sp)?;
    check_eq("lion split exp_avg", &rm, &sm)?;
    Ok(())
}

// ---------------------------------------------------------------- the storage matrix

/// One module per (param, grad, state) storage combination, each with one property per rule.
macro_rules! storage_matrix {
    ($($name:ident: $p:ty, $g:ty, $s:ty;)*) => {$(
        mod $name {
            use super::*;
            proptest! {
                #[test]
                fn adam_reference_equals_fast_and_splits(c in case(), h in adam_hyper()) {
                    check_adam::<$p, $g, $s>(&c, &h)?;
                }
                #[test]
                fn sgd_reference_equals_fast_and_splits(c in case(), h in sgd_hyper()) {
                    check_sgd::<$p, $g, $s>(&c, &h)?;
                }
                #[test]
                fn lion_reference_equals_fast_and_splits(c in case(), h in lion_hyper()) {
                    check_lion::<$p, $g, $s>(&c, &h)?;
                }
            }
        }
    )*};
}

storage_matrix! {
    p32_g32_s32: f32, f32, f32;
    p32_g32_sbf: f32, f32, bf16;
    p32_gbf_s32: f32, bf16, f32;
    p32_gbf_sbf: f32, bf16, bf16;
    p32_g16_s32: f32, f16, f32;
    p32_g16_sbf: f32, f16, bf16;
    pbf_g32_s32: bf16, f32, f32;
    pbf_g32_sbf: bf16, f32, bf16;
    pbf_gbf_s32: bf16, bf16, f32;
    pbf_gbf_sbf: bf16, bf16, bf16;
    pbf_g16_s32: bf16, f16, f32;
    pbf_g16_sbf: bf16, f16, bf16;
    p16_g32_s32: f16, f32, f32;
    p16_g32_sbf: f16, f32, bf16;
    p16_gbf_s32: f16, bf16, f32;
    p16_gbf_sbf: f16, bf16, bf16;
    p16_g16_s32: f16, f16, f32;
    p16_g16_sbf: f16, f16, bf16;
}

/// The generators reach every family: a deterministic sweep (not a property) that feeds each
/// adversarial pattern as param, grad and state through both paths, so coverage of the
/// families does not depend on the random draw.
#[test]
fn every_family_pattern_through_both_paths() {
    fn sweep<P: Element, G: Element, S: StateElement>() {
        let fam_p = family::<P>();
        let fam_g = family::<G>();
        let fam_s = family::<S>();
        let n = fam_p.len().max(fam_g.len()).max(fam_s.len());
        // Every pairing (i, j) of param and grad patterns, with states rotating.
        let mut p = Vec::new();
        let mut g = Vec::new();
        let mut m = Vec::new();
        for i in 0..n {
            for j in 0..n {
                p.push(P::from_bits_u32(fam_p[i % fam_p.len()]));
                g.push(G::from_bits_u32(fam_g[j % fam_g.len()]));
                m.push(S::from_bits_u32(fam_s[(i + j) % fam_s.len()]));
            }
        }
        let v: Vec<S> = m.iter().rev().copied().collect();
        let sr = Some(StochasticRounding {
            seed: 5,
            step: 3,
            index_offset: 0,
        });
        for prep in [
            GradPrep::IDENTITY,
            GradPrep {
                grad_scale: 1024.0,
                clip_coef: 0.5,
            },
        ] {
            let plan = Plan {
                step: 3,
                scalars: AdamConfig::adamw().scalars(1e-3, 3),
                prep,
                sr,
            };
            let (mut rp, mut rm, mut rv) = (p.clone(), m.clone(), v.clone());
            adam_reference(&mut rp, &g, &mut rm, &mut rv, &plan);
            let (mut fp, mut fm, mut fv) = (p.clone(), m.clone(), v.clone());
            adam_slice::<P, G, S, LibmSqrt>(&mut fp, &g, &mut fm, &mut fv, &plan);
            assert_eq!(bits(&rp), bits(&fp));
            assert_eq!(bits(&rm), bits(&fm));
            assert_eq!(bits(&rv), bits(&fv));

            let plan = Plan {
                step: 3,
                scalars: LionConfig {
                    weight_decay: 0.1,
                    ..LionConfig::official()
                }
                .scalars(1e-4),
                prep,
                sr,
            };
            let (mut rp, mut rm) = (p.clone(), m.clone());
            lion_reference(&mut rp, &g, &mut rm, &plan);
            let (mut fp, mut fm) = (p.clone(), m.clone());
            lion_slice(&mut fp, &g, &mut fm, &plan);
            assert_eq!(bits(&rp), bits(&fp));
            assert_eq!(bits(&rm), bits(&fm));

            let mut cfg = SgdConfig::new(1e-2);
            cfg.momentum = 0.9;
            cfg.nesterov = true;
            cfg.weight_decay = 1e-4;
            let plan = Plan {
                step: 3,
                scalars: cfg.scalars(1e-2, 3),
                prep,
                sr,
            };
            let (mut rp, mut rm) = (p.clone(), m.clone());
            sgd_reference(&mut rp, &g, &mut rm, &plan);
            let (mut fp, mut fm) = (p.clone(), m.clone());
            sgd_slice(&mut fp, &g, &mut fm, &plan);
            assert_eq!(bits(&rp), bits(&fp));
            assert_eq!(bits(&rm), bits(&fm));

            // Every stored NaN is canonical.
            for (x, w) in rp.iter().map(|x| (x.to_bits_u32(), P::DTYPE)) {
                if !P::from_bits_u32(x).widen().is_nan() {
                    continue;
                }
                let canon = if w == adamant_core::Dtype::F32 {
                    0x7FFF_FFFF
                } else {
                    0x7FFF
                };
                assert_eq!(x, canon, "non-canonical stored NaN {x:#x} ({w})");
            }
        }
    }
    sweep::<f32, f32, f32>();
    sweep::<bf16, f32, f32>();
    sweep::<f16, bf16, bf16>();
    sweep::<f32, f16, bf16>();
    sweep::<bf16, bf16, bf16>();
    sweep::<f16, f16, f32>();
}
