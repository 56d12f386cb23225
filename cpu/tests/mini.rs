//! Adam-mini on the threaded driver: any thread split and any instruction set give the bits of
//! core's reference path (and of its fast path), for every block layout, storage combination,
//! gradient preparation and stochastic rounding, on adversarial values; skips and errors write
//! nothing.

use adamant_core::error::LayoutError;
use adamant_core::rules::adam_mini::{apply_tensor, Path};
use adamant_core::store::{Element, StateElement};
use adamant_core::{
    bf16, f16, AdamMini, AdamMiniConfig, Begin, BlockLayout, Segment, SkipReason, StepError,
    StepOptions, StepOutcome,
};
use adamant_cpu::{AdamMiniTensor, Driver, Isa, FUSE_MAX};

/// Thread counts (two in debug builds, which run the same checks about ten times slower).
const THREADS: &[usize] = if cfg!(debug_assertions) {
    &[1, 7]
} else {
    &[1, 2, 3, 7]
};

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

/// NaN payloads, +-0, subnormals, +-inf, huge and tiny values among ordinary ones.
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

/// A finite gradient over a wide exponent range (zeros, subnormals, tiny, large) so that the
/// block sums depend on the summation order; one non-finite value in `1/odds` of them.
fn gradient(r: &mut Rng, odds: u64) -> f32 {
    if odds > 0 && r.below(odds) == 0 {
        return adversarial(r);
    }
    let sign = if r.next() & 1 == 1 { 0x8000_0000u32 } else { 0 };
    let bits = match r.below(10) {
        0 => 0,
        1 => r.next() as u32 & 0x007F_FFFF,
        2 => 0x0080_0000 + (r.next() as u32 % 0x1000_0000),
        3 => 0x5000_0000 + (r.next() as u32 % 0x0800_0000),
        _ => 0x3000_0000 + (r.next() as u32 % 0x1000_0000),
    };
    f32::from_bits(bits | sign)
}

/// Store the raw bits (NaN payloads survive; bf16/f16 keep the high half).
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
    assert!(out.len() >= THREADS.len());
    out
}

#[derive(Clone)]
struct Model<P, G, S> {
    p: Vec<Vec<P>>,
    g: Vec<Vec<G>>,
    m: Vec<Vec<S>>,
    v: Vec<Vec<S>>,
}

impl<P: Element, G: Element, S: StateElement> Model<P, G, S> {
    fn new(r: &mut Rng, specs: &[(usize, BlockLayout<'_>, bool)], odds: u64) -> Self {
        let mut m = Model {
            p: vec![],
            g: vec![],
            m: vec![],
            v: vec![],
        };
        for (n, layout, _) in specs {
            let k = layout.state_len(*n).unwrap();
            m.p.push((0..*n).map(|_| raw(adversarial(r))).collect());
            m.g.push((0..*n).map(|_| raw(gradient(r, odds))).collect());
            m.m.push((0..*n).map(|_| raw(adversarial(r))).collect());
            // Second moments: mostly ordinary non-negative values, some adversarial.
            m.v.push(
                (0..k)
                    .map(|_| {
                        if r.below(4) == 0 {
                            raw(adversarial(r))
                        } else {
                            raw(f32::from_bits(
                                0x3000_0000 + (r.next() as u32 % 0x0C00_0000),
                            ))
                        }
                    })
                    .collect(),
            );
        }
        m
    }

    fn bits(&self) -> Vec<Vec<u32>> {
        let mut out = vec![];
        for i in 0..self.p.len() {
            out.push(bits(&self.p[i]));
            out.push(bits(&self.m[i]));
            out.push(bits(&self.v[i]));
        }
        out
    }

    /// Core: `begin`, `apply_tensor` per tensor (stochastic rounding keyed by the tensor's
    /// offset in the model's index space), `commit`.
    fn reference_step(
        &mut self,
        opt: &mut AdamMini,
        specs: &[(usize, BlockLayout<'_>, bool)],
        opts: &StepOptions,
        coefs: Option<&[f32]>,
        path: Path,
    ) {
        let Begin::Apply(plan) = opt
            .begin(opts, self.g.iter().map(|g| g.as_slice()))
            .unwrap()
        else {
            panic!("unexpected skip")
        };
        let mut base = 0;
        for (i, (n, layout, wd)) in specs.iter().enumerate() {
            let mut p = plan;
            p.sr = plan.sr.map(|k| k.offset_by(base));
            if let Some(c) = coefs {
                p.prep.clip_coef = c[i];
            }
            apply_tensor(
                &mut self.p[i],
                &self.g[i],
                &mut self.m[i],
                &mut self.v[i],
                layout,
                *wd,
                &p,
                path,
            )
            .unwrap();
            base += n;
        }
        opt.commit(&plan);
    }

    fn tensors<'a>(
        &'a mut self,
        specs: &[(usize, BlockLayout<'a>, bool)],
    ) -> Vec<AdamMiniTensor<'a, P, G, S>> {
        self.p
            .iter_mut()
            .zip(&self.g)
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
            .zip(specs)
            .map(|(((p, g), (m, v)), s)| AdamMiniTensor {
                param: p,
                grad: g,
                exp_avg: m,
                exp_avg_sq: v,
                layout: s.1,
                weight_decay: s.2,
            })
            .collect()
    }
}

const SEGS: [Segment; 4] = [
    Segment::Blocks {
        len: 192,
        block_len: 64,
    },
    Segment::Element { len: 5 },
    Segment::Blocks {
        len: 300,
        block_len: 300,
    },
    Segment::Blocks {
        len: 8194,
        block_len: 4097,
    },
];

/// A plain step, a clipped one, and (for finite gradients: a loss scale turns finite-checking
/// on) a loss-scaled and clipped one.
fn opts_list(finite: bool) -> Vec<StepOptions> {
    let plain = StepOptions::new(1e-2);
    let mut clipped = StepOptions::new(3e-3);
    clipped.clip_coef = Some(0.37);
    let mut scaled = clipped;
    scaled.grad_scale = Some(0.75);
    if finite {
        vec![plain, clipped, scaled]
    } else {
        vec![plain, clipped]
    }
}

fn config(sr: Option<u64>) -> AdamMiniConfig {
    AdamMiniConfig {
        weight_decay: 0.1,
        stochastic_rounding_seed: sr,
        ..AdamMiniConfig::default()
    }
}

/// Two steps of core's reference path against two steps of every driver, for a model.
fn check_model<P: Element, G: Element, S: StateElement>(
    seed: u64,
    specs: &[(usize, BlockLayout<'_>, bool)],
    odds: u64,
) {
    let mut r = Rng(seed);
    for sr in [None, Some(41u64)] {
        for opts in opts_list(odds == 0) {
            let m0: Model<P, G, S> = Model::new(&mut r, specs, odds);
            let mut want = m0.clone();
            let mut opt = AdamMini::new(config(sr)).unwrap();
            for _ in 0..2 {
                want.reference_step(&mut opt, specs, &opts, None, Path::Reference);
            }
            let want = want.bits();
            // Core's fast path agrees.
            let mut fast = m0.clone();
            let mut opt = AdamMini::new(config(sr)).unwrap();
            for _ in 0..2 {
                fast.reference_step(&mut opt, specs, &opts, None, Path::Fast);
            }
            assert!(fast.bits() == want, "core fast path");
            for d in drivers() {
                let mut got = m0.clone();
                let mut opt = AdamMini::new(config(sr)).unwrap();
                for step in 1..=2 {
                    let mut t = got.tensors(specs);
                    let out = d.adam_mini_step_multi(&mut opt, &mut t, &opts).unwrap();
                    assert_eq!(out, StepOutcome::Applied { step });
                }
                assert!(
                    got.bits() == want,
                    "adam-mini {}/{}/{} {d:?} sr={sr:?} opts={opts:?} specs={specs:?}",
                    P::DTYPE,
                    G::DTYPE,
                    S::DTYPE
                );
            }
        }
    }
}

/// Every layout alone at several sizes, then a model mixing them.
fn check_layouts<P: Element, G: Element, S: StateElement>(seed: u64) {
    let singles: Vec<(usize, BlockLayout<'static>)> = vec![
        (0, BlockLayout::Element),
        (1, BlockLayout::Element),
        (1000, BlockLayout::Element),
        (1000, BlockLayout::Rows { row_len: 100 }),
        (65 * 7, BlockLayout::Rows { row_len: 65 }),
        (4096 * 3, BlockLayout::Rows { row_len: 4096 }),
        (4099 * 2, BlockLayout::Heads { head_numel: 4099 }),
        (3 * 4 * 2, BlockLayout::Heads { head_numel: 3 }),
        (1, BlockLayout::Tensor),
        (4097, BlockLayout::Tensor),
        (8194 + 497, BlockLayout::Segments(&SEGS)),
    ];
    for (k, &(n, layout)) in singles.iter().enumerate() {
        for wd in [true, false] {
            check_model::<P, G, S>(seed * 100 + k as u64, &[(n, layout, wd)], 0);
        }
    }
    let model = [
        (1000, BlockLayout::Rows { row_len: 100 }, true),
        (37, BlockLayout::Element, false),
        (0, BlockLayout::Tensor, true),
        (8198, BlockLayout::Heads { head_numel: 4099 }, true),
        (513, BlockLayout::Tensor, false),
        (8194 + 497, BlockLayout::Segments(&SEGS), true),
    ];
    check_model::<P, G, S>(seed * 100 + 99, &model, 0);
    // Rare non-finite gradients (without finite-checking): NaN/inf blocks stay in their block.
    check_model::<P, G, S>(seed * 100 + 98, &model, 3000);
}

#[test]
fn conformance_adam_mini_any_split_any_isa_equals_reference() {
    check_layouts::<f32, f32, f32>(1);
    check_layouts::<bf16, bf16, f32>(2);
    check_layouts::<bf16, bf16, bf16>(3);
    check_layouts::<f32, bf16, bf16>(4);
    check_layouts::<bf16, f32, bf16>(5);
    check_layouts::<f16, f32, f32>(6);
}

#[test]
fn conformance_adam_mini_large_blocks_two_pass_equals_reference() {
    // Blocks above FUSE_MAX take the split statistics pass: a whole tensor, big heads and a
    // big segment, next to small blocks.
    let n = FUSE_MAX + 4096 + 77;
    let segs = [
        Segment::Element { len: 64 },
        Segment::Blocks {
            len: 2 * (FUSE_MAX + 1),
            block_len: FUSE_MAX + 1,
        },
        Segment::Blocks {
            len: 4096,
            block_len: 128,
        },
    ];
    let model = [
        (n, BlockLayout::Tensor, true),
        (
            2 * (FUSE_MAX + 64),
            BlockLayout::Heads {
                head_numel: FUSE_MAX + 64,
            },
            false,
        ),
        (
            64 + 2 * (FUSE_MAX + 1) + 4096,
            BlockLayout::Segments(&segs),
            true,
        ),
        (FUSE_MAX, BlockLayout::Tensor, true),
    ];
    check_model::<f32, f32, f32>(7, &model, 0);
    check_model::<bf16, bf16, bf16>(8, &model, 0);
    check_model::<bf16, bf16, f32>(9, &model, 200_000);
}

#[test]
fn spec_adam_mini_multi_tensor_state_layout_errors_write_nothing() {
    let mut r = Rng(10);
    let specs = [
        (1000usize, BlockLayout::Rows { row_len: 100 }, true),
        (64, BlockLayout::Element, false),
    ];
    for d in drivers() {
        let mut model: Model<f32, f32, f32> = Model::new(&mut r, &specs, 0);
        let before = model.bits();
        let mut opt = AdamMini::new(config(None)).unwrap();
        // A row length that does not divide the second tensor.
        let bad = [specs[0], (64, BlockLayout::Rows { row_len: 10 }, false)];
        let mut t = model.tensors(&bad);
        let err = d
            .adam_mini_step_multi(&mut opt, &mut t, &StepOptions::new(1e-3))
            .unwrap_err();
        assert!(matches!(
            err,
            StepError::Layout(LayoutError::BadBlocks { .. })
        ));
        drop(t);
        // A second-moment buffer of the wrong length.
        model.v[0].push(0.0);
        let mut t = model.tensors(&specs);
        let err = d
            .adam_mini_step_multi(&mut opt, &mut t, &StepOptions::new(1e-3))
            .unwrap_err();
        assert!(matches!(err, StepError::Layout(_)));
        drop(t);
        model.v[0].pop();
        assert!(model.bits() == before);
        assert_eq!(opt.state.step, 0);
    }
}

#[test]
fn spec_adam_mini_skips_write_nothing() {
    let mut r = Rng(11);
    let specs = [
        (FUSE_MAX + 1, BlockLayout::Tensor, true),
        (1000, BlockLayout::Rows { row_len: 100 }, true),
        (64, BlockLayout::Element, false),
    ];
    for d in drivers() {
        for bad in 0..3 {
            let mut model: Model<bf16, bf16, f32> = Model::new(&mut r, &specs, 0);
            let last = model.g[bad].len() - 1;
            model.g[bad][last] = bf16::from_bits(0x7FC1);
            let before = model.bits();
            let mut opt = AdamMini::new(config(Some(3))).unwrap();
            let mut opts = StepOptions::new(1e-3);
            opts.grad_scale = Some(1024.0);
            let mut t = model.tensors(&specs);
            let out = d.adam_mini_step_multi(&mut opt, &mut t, &opts).unwrap();
            assert_eq!(out, StepOutcome::Skipped(SkipReason::NonFiniteGrad));
            let mut opts = StepOptions::new(1e-3);
            opts.found_inf = true;
            let out = d.adam_mini_step_multi(&mut opt, &mut t, &opts).unwrap();
            assert_eq!(out, StepOutcome::Skipped(SkipReason::FoundInf));
            drop(t);
            assert!(model.bits() == before);
            assert_eq!(opt.state.step, 0);
        }
    }
}

#[test]
fn spec_adam_mini_single_tensor_form_equals_multi() {
    let mut r = Rng(12);
    let specs = [(4096 * 5, BlockLayout::Rows { row_len: 4096 }, true)];
    let m0: Model<bf16, bf16, f32> = Model::new(&mut r, &specs, 0);
    let opts = StepOptions::new(1e-3);
    let mut want = m0.clone();
    let mut opt = AdamMini::new(config(Some(9))).unwrap();
    want.reference_step(&mut opt, &specs, &opts, None, Path::Reference);
    for d in drivers() {
        let mut got = m0.clone();
        let mut opt = AdamMini::new(config(Some(9))).unwrap();
        let (p, g, m, v) = (&mut got.p[0], &got.g[0], &mut got.m[0], &mut got.v[0]);
        let out = d
            .adam_mini_step(&mut opt, p, g, m, v, &specs[0].1, true, &opts)
            .unwrap();
        assert_eq!(out, StepOutcome::Applied { step: 1 });
        assert!(got.bits() == want.bits(), "{d:?}");
    }
}

#[test]
fn spec_sums_sq_equal_core_canonical_sums() {
    let mut r = Rng(13);
    let lens = [0usize, 1, 4095, 4096, 4097, 3 * 4096 + 5, 70_001];
    let grads: Vec<Vec<bf16>> = lens
        .iter()
        .map(|&n| (0..n).map(|_| raw(gradient(&mut r, 0))).collect())
        .collect();
    let views: Vec<&[bf16]> = grads.iter().map(|g| g.as_slice()).collect();
    for prep in [
        adamant_core::step::GradPrep::IDENTITY,
        adamant_core::step::GradPrep {
            grad_scale: 0.5,
            clip_coef: 0.3,
        },
    ] {
        let want: Vec<u32> = grads
            .iter()
            .map(|g| adamant_core::rules::adam_mini::grad_sq_sum(g, prep).to_bits())
            .collect();
        for d in drivers() {
            let got: Vec<u32> = d
                .sums_sq(&views, prep)
                .iter()
                .map(|s| s.to_bits())
                .collect();
            assert_eq!(got, want, "{d:?}");
        }
        if prep.clip_coef == 1.0 {
            let core: Vec<u32> = grads
                .iter()
                .map(|g| adamant_core::clip::tensor_sum_sq(g, 1.0).to_bits())
                .collect();
            assert_eq!(core, want);
        }
    }
}

#[test]
fn spec_read1_ceiling_reads_every_element() {
    // The statistics-pass ceiling returns the wrapping sum of the raw bits, so it must load
    // every element once, whatever the split.
    let mut r = Rng(14);
    let g: Vec<bf16> = (0..70_001).map(|_| raw(gradient(&mut r, 0))).collect();
    let want = g.iter().fold(0u32, |s, x| s.wrapping_add(x.to_bits_u32()));
    for d in drivers() {
        assert_eq!(adamant_cpu::ceiling::read1(&d, &g), want, "{d:?}");
    }
}

#[test]
fn spec_reread_ceiling_reads_every_gradient_and_writes_each_element_once() {
    // Adam-mini's pipelined ceiling: the or it returns must see every gradient element (one
    // nonzero element at a time, in the first block, on row and block edges, in the last
    // block), and with a full mask each of `a, b` is xor-ed with `g` exactly once, whatever
    // the block length and the thread split.
    let mut r = Rng(15);
    for block_len in [1usize, 300, 1000, 4096] {
        let n = block_len * (9000 / block_len + 3);
        let a0: Vec<f32> = (0..n).map(|_| gradient(&mut r, 0)).collect();
        let b0: Vec<bf16> = (0..n).map(|_| raw(gradient(&mut r, 0))).collect();
        let g: Vec<f32> = (0..n).map(|_| gradient(&mut r, 0)).collect();
        for d in drivers() {
            let (mut a, mut b) = (a0.clone(), b0.clone());
            let got = adamant_cpu::ceiling::rw3x2_reread(&d, &mut a, &g, &mut b, block_len, 0);
            assert_eq!(got, g.iter().fold(0, |s, x| s | x.to_bits()), "{d:?}");
            assert_eq!(
                (bits(&a), bits(&b)),
                (bits(&a0), bits(&b0)),
                "mask 0 writes"
            );
            adamant_cpu::ceiling::rw3x2_reread(&d, &mut a, &g, &mut b, block_len, u32::MAX);
            for i in 0..n {
                let x = g[i].to_bits();
                assert_eq!(a[i].to_bits(), a0[i].to_bits() ^ x, "a[{i}] {d:?}");
                // A bf16 keeps the low 16 bits of the xor.
                assert_eq!(b[i].to_bits(), b0[i].to_bits() ^ x as u16, "b[{i}] {d:?}");
            }
            for k in [
                0,
                255,
                256,
                block_len - 1,
                block_len,
                n / 2,
                n - block_len,
                n - 1,
            ] {
                let k = k.min(n - 1);
                let mut one = vec![0.0f32; n];
                one[k] = f32::from_bits(1 << (k % 31));
                let (mut a, mut b) = (a0.clone(), b0.clone());
                let got =
                    adamant_cpu::ceiling::rw3x2_reread(&d, &mut a, &one, &mut b, block_len, 0);
                assert_eq!(got, 1 << (k % 31), "element {k} of block {block_len} {d:?}");
            }
        }
    }
}

#[test]
fn spec_two_pass_ceiling_reads_every_gradient_and_writes_each_element_once() {
    // The large-block ceiling returns the wrapping sum of every gradient's raw bits (its
    // statistic pass) and, with a full mask, xors each element of `a, b` exactly once.
    let mut r = Rng(16);
    for block_len in [1usize, 777, 4096, 20_000] {
        let n = block_len * (60_000 / block_len).clamp(1, 5);
        let a0: Vec<f32> = (0..n).map(|_| gradient(&mut r, 0)).collect();
        let b0: Vec<bf16> = (0..n).map(|_| raw(gradient(&mut r, 0))).collect();
        let g: Vec<bf16> = (0..n).map(|_| raw(gradient(&mut r, 0))).collect();
        let want = g.iter().fold(0u32, |s, x| s.wrapping_add(x.to_bits_u32()));
        for d in drivers() {
            let (mut a, mut b) = (a0.clone(), b0.clone());
            let ceiling = adamant_cpu::ceiling::read1_rw3x2_blocks;
            assert_eq!(ceiling(&d, &mut a, &g, &mut b, block_len, 0), want, "{d:?}");
            assert_eq!(
                (bits(&a), bits(&b)),
                (bits(&a0), bits(&b0)),
                "mask 0 writes"
            );
            ceiling(&d, &mut a, &g, &mut b, block_len, u32::MAX);
            for i in 0..n {
                let x = g[i].to_bits_u32();
                assert_eq!(a[i].to_bits(), a0[i].to_bits() ^ x, "a[{i}] {d:?}");
                assert_eq!(b[i].to_bits(), b0[i].to_bits() ^ x as u16, "b[{i}] {d:?}");
            }
        }
    }
}
