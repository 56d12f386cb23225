//! Case generators, one per PTX module. Each maps a kernel entry of its module to the cases
//! that cover it (`None` for an entry it does not know, which the coverage check reports).
//!
//! Every update entry gets: sensitivity cases first (one per rule configuration, wide-range
//! and subnormal values, 128-bit and scalar paths: these catch a contracted multiply-add, an
//! `.ftz` or a reordered sum on their first launch), then one multi-tensor launch per value
//! family over the sizes {0, 1, 3, 4095, 4096, 4097} with rotating offsets, clip
//! coefficients and grid shapes, one single-tensor launch per size, a 100003-element launch,
//! loss-scale and skip cases. The f32/f32/f32 entry of each rule also runs 100003 elements in
//! every family.

use crate::cases::{CommitSpec, Offsets, ReduceSpec, RuleConfig, ScanSpec, UpdTensor, UpdateSpec};
use crate::values::Family;
use crate::{Case, Level};
use adamant_core::{AdamConfig, Dtype, LionConfig, SgdConfig};
use adamant_cuda::args::{Reduction, Rule};

/// Sizes of the matrix.
pub const SIZES: [usize; 7] = [0, 1, 3, 4095, 4096, 4097, 100_003];
const SMALL: [usize; 6] = [0, 1, 3, 4095, 4096, 4097];
/// Grid shapes: the launcher's, one block (striding over every chunk), three blocks.
const GRIDS: [Option<u32>; 3] = [None, Some(1), Some(3)];

fn dtype(name: &str) -> Option<Dtype> {
    Dtype::ALL.into_iter().find(|d| d.name() == name)
}

/// Buffer offsets for element width `w` bytes: aligned; all moved by one element; only the
/// gradient moved; all moved by 3; the states moved by 4 (16 bytes for f32: still aligned).
fn offsets(k: usize) -> Offsets {
    const O: [Offsets; 5] = [[0; 4], [1; 4], [0, 1, 0, 0], [3; 4], [0, 0, 4, 4]];
    O[k % O.len()]
}

fn adam_configs() -> Vec<RuleConfig> {
    let w = AdamConfig::adamw();
    vec![
        RuleConfig::Adam(w),
        // Adam with L2 and an eps that is an f32 subnormal: the denominator and the moments
        // reach the subnormal range.
        RuleConfig::Adam(AdamConfig {
            beta1: 0.8,
            beta2: 0.95,
            eps: 1e-40,
            weight_decay: 0.1,
            decoupled: false,
            ..w
        }),
        RuleConfig::Adam(AdamConfig {
            eps: 1e-6,
            weight_decay: 0.3,
            stochastic_rounding_seed: Some(0x5EED),
            ..w
        }),
        // A tiny L2 coefficient: weight_decay*p is subnormal even for f16 parameters.
        RuleConfig::Adam(AdamConfig {
            beta1: 0.95,
            eps: 3e-44,
            weight_decay: 1e-36,
            decoupled: false,
            ..w
        }),
    ]
}

fn sgd_configs() -> Vec<RuleConfig> {
    vec![
        RuleConfig::Sgd(SgdConfig {
            momentum: 0.9,
            dampening: 0.1,
            weight_decay: 1e-4,
            ..SgdConfig::new(0.05)
        }),
        // No momentum, a strong L2 term: with lr*weight_decay >= 1/2 (the sensitivity cases
        // run it at lr 0.37) a contraction of g + weight_decay*p moves p by an ulp; with a
        // small product it could not show in p at all.
        // (Not 3: `3*p` is exact for bf16/f16 `p`, and its contraction could not show.)
        RuleConfig::Sgd(SgdConfig {
            weight_decay: 2.9,
            ..SgdConfig::new(0.1)
        }),
        RuleConfig::Sgd(SgdConfig {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            stochastic_rounding_seed: Some(7),
            ..SgdConfig::new(0.05)
        }),
        // A tiny L2 coefficient with momentum: weight_decay*p is subnormal even for f16
        // parameters.
        RuleConfig::Sgd(SgdConfig {
            momentum: 0.7,
            dampening: 0.3,
            nesterov: true,
            weight_decay: 1e-36,
            ..SgdConfig::new(0.05)
        }),
    ]
}

fn lion_configs() -> Vec<RuleConfig> {
    vec![
        RuleConfig::Lion(LionConfig {
            weight_decay: 0.1,
            ..LionConfig::official()
        }),
        RuleConfig::Lion(LionConfig {
            beta1: 0.95,
            beta2: 0.98,
            weight_decay: 0.0,
            stochastic_rounding_seed: Some(99),
            ..LionConfig::official()
        }),
        RuleConfig::Lion(LionConfig {
            weight_decay: 1.0,
            beta2: 0.99,
            ..LionConfig::official()
        }),
    ]
}

const LRS: [f32; 4] = [1e-3, 0.37, 3e-4, 1e-2];
const STEPS: [u64; 5] = [0, 1, 9, 1 << 21, 123_456_789];
const CLIPS: [f32; 3] = [0.25, 1e-30, 3.0];

fn tensor(n: usize, family: Family, k: usize) -> UpdTensor {
    UpdTensor {
        n,
        family,
        offsets: offsets(k),
        clip: None,
        sr_index_offset: (k as u64).wrapping_mul(4099),
        plant: false,
    }
}

/// Cases of update entry `adamant_<rule>_<p>_<g>_<s>`.
fn update_cases(rule: Rule, entry: &str, level: Level) -> Option<Vec<Case>> {
    let rest = entry.strip_prefix(&format!("adamant_{}_", rule.name()))?;
    let parts: Vec<&str> = rest.split('_').collect();
    let [p, g, s] = parts[..] else { return None };
    let dtypes = (dtype(p)?, dtype(g)?, dtype(s)?);
    if dtypes.2 == Dtype::F16 {
        return None;
    }
    let configs = match rule {
        Rule::Adam => adam_configs(),
        Rule::Sgd => sgd_configs(),
        Rule::Lion => lion_configs(),
    };
    // Entries differ in their salt, so that the rotations below cover different
    // combinations in different entries.
    let salt = entry
        .bytes()
        .fold(0usize, |h, c| h.wrapping_mul(31).wrapping_add(c as usize))
        % 1_000_003;
    let mut specs = Vec::new();
    let base = |config: RuleConfig, tensors: Vec<UpdTensor>, seed: u64| UpdateSpec {
        config,
        dtypes,
        table: tensors.len() != 1,
        tensors,
        grid: None,
        lr: 1e-3,
        step0: 9,
        grad_scale: None,
        found_inf: None,
        seed,
    };
    // 1. Sensitivity: every configuration on wide-range and subnormal values, 128-bit path
    // (aligned, a multiple of 8 plus a scalar tail) and scalar path (misaligned).
    for (ci, &config) in configs.iter().enumerate() {
        for (fi, fam) in [Family::Wide, Family::Subnormal].into_iter().enumerate() {
            for (oi, off) in [0usize, 1].into_iter().enumerate() {
                if level == Level::Quick && (ci + fi + oi) % 4 != 0 {
                    continue;
                }
                let mut t = tensor(4097, fam, off);
                // Planted separating inputs (one search per configuration and kernel).
                t.plant = fam == Family::Wide;
                // Some cases scale and clip the gradients so that they reach the subnormal
                // range inside the kernel too.
                if fam == Family::Subnormal && oi == 1 {
                    t.clip = Some(CLIPS[ci % 3]);
                }
                let mut sp = base(config, vec![t], (ci * 16 + fi * 4 + oi) as u64);
                sp.table = false;
                sp.lr = LRS[ci % 4];
                // Never the first step here (SGD's buffer would only copy the gradient).
                sp.step0 = [9, 1 << 21, 123_456_789, 1][ci % 4];
                if fam == Family::Subnormal && oi == 0 && ci % 2 == 1 {
                    sp.grad_scale = Some(1e34);
                }
                specs.push(sp);
            }
        }
    }
    // A subnormal learning rate (SGD, Lion): `lr*g` and `lr*sign(c)` are subnormal, so an
    // `.ftz` on them or on the parameter update shows (as the sign of a zero parameter even
    // when parameters are stored as f16).
    if matches!(rule, Rule::Sgd | Rule::Lion) {
        let mut t = tensor(4097, Family::Wide, 0);
        t.plant = true;
        let mut sp = base(configs[0], vec![t], 77);
        sp.table = false;
        sp.lr = 1e-40;
        specs.push(sp);
        // A tiny clip coefficient with planted inputs, with momentum (the kernels' general
        // path): `g*clip_coef` is subnormal, and an `.ftz` on it shows in the buffer and as
        // the sign of a zero parameter (any parameter type).
        let mut t = tensor(4097, Family::Wide, 0);
        t.plant = true;
        t.clip = Some(1e-30);
        let mut sp = base(configs[0], vec![t], 78);
        sp.table = false;
        sp.lr = 0.37;
        specs.push(sp);
    }
    if level == Level::Full {
        // 2. One multi-tensor launch per family over the small sizes.
        for (fi, fam) in Family::ALL.into_iter().enumerate() {
            let r = fi + salt;
            let tensors = SMALL
                .iter()
                .enumerate()
                .map(|(k, &n)| {
                    let mut t = tensor(n, fam, r + k);
                    if k == 3 || k == 5 {
                        t.clip = Some(CLIPS[(r + k) % 3]);
                    }
                    t
                })
                .collect();
            let mut sp = base(configs[r % configs.len()], tensors, 100 + fi as u64);
            sp.grid = GRIDS[r % 3];
            sp.lr = LRS[r % 4];
            sp.step0 = STEPS[r % 5];
            sp.grad_scale = [None, Some(1024.0), None, Some(3.0)][r % 4];
            sp.found_inf = [None, Some(0), Some(0x8000_0000)][r % 3];
            specs.push(sp);
        }
        // 3. Single-tensor launches, one per size, family rotating.
        for (k, &n) in SIZES.iter().enumerate() {
            let r = k + salt;
            let fam = if n == 100_003 {
                [Family::Wide, Family::Bits, Family::Subnormal][salt % 3]
            } else {
                Family::ALL[r % 7]
            };
            let mut sp = base(
                configs[r % configs.len()],
                vec![tensor(n, fam, r)],
                200 + k as u64,
            );
            sp.table = false;
            sp.grid = if n == 100_003 { Some(2) } else { GRIDS[r % 3] };
            sp.lr = LRS[(r + 1) % 4];
            sp.step0 = STEPS[(r + 1) % 5];
            specs.push(sp);
        }
        // 4. A skipped step (found_inf set): nothing is written.
        let mut sp = base(
            configs[salt % configs.len()],
            vec![tensor(4097, Family::Bits, 0), tensor(3, Family::Wide, 1)],
            300,
        );
        sp.found_inf = Some(0x3F80_0000);
        specs.push(sp);
        // 5. The f32 entry of each rule: 100003 elements in every family, plus a multi-tensor
        // launch with a large tensor between small ones.
        if dtypes == (Dtype::F32, Dtype::F32, Dtype::F32) {
            for (fi, fam) in Family::ALL.into_iter().enumerate() {
                let mut sp = base(
                    configs[fi % configs.len()],
                    vec![tensor(100_003, fam, fi)],
                    400 + fi as u64,
                );
                sp.table = fi % 2 == 0;
                sp.grid = GRIDS[fi % 3];
                sp.step0 = STEPS[fi % 5];
                specs.push(sp);
            }
            let sp = base(
                configs[0],
                vec![
                    tensor(3, Family::Wide, 1),
                    tensor(100_003, Family::Wide, 0),
                    tensor(4097, Family::Subnormal, 2),
                ],
                500,
            );
            specs.push(sp);
        }
    }
    let module = rule.name();
    Some(
        specs
            .into_iter()
            .map(|sp| {
                let label = format!(
                    "{:?} n={:?} {} grid {:?} {}",
                    sp.config,
                    sp.tensors.iter().map(|t| t.n).collect::<Vec<_>>(),
                    sp.tensors
                        .iter()
                        .map(|t| t.family.name())
                        .collect::<Vec<_>>()
                        .join(","),
                    sp.grid,
                    if sp.table { "table" } else { "by value" }
                );
                let cost = sp.cost();
                Case::new(module, entry, label, cost, move |b| sp.run(b))
            })
            .collect(),
    )
}

/// `adam` module.
pub fn adam(entry: &str, level: Level) -> Option<Vec<Case>> {
    update_cases(Rule::Adam, entry, level)
}
/// `sgd` module.
pub fn sgd(entry: &str, level: Level) -> Option<Vec<Case>> {
    update_cases(Rule::Sgd, entry, level)
}
/// `lion` module.
pub fn lion(entry: &str, level: Level) -> Option<Vec<Case>> {
    update_cases(Rule::Lion, entry, level)
}

/// `reduce` module: `adamant_reduce_{sum,sumsq,maxabs}_<dtype>`.
pub fn reduce(entry: &str, level: Level) -> Option<Vec<Case>> {
    let rest = entry.strip_prefix("adamant_reduce_")?;
    let (k, d) = rest.split_once('_')?;
    let kind = match k {
        "sum" => Reduction::Sum,
        "sumsq" => Reduction::SumSq,
        "maxabs" => Reduction::MaxAbs,
        _ => return None,
    };
    let dt = dtype(d)?;
    let salt = entry.len() + k.len() * 7;
    let mut specs = Vec::new();
    // Sensitivity: full tiles of wide-range and subnormal values, aligned and misaligned.
    for (i, fam) in [
        Family::Wide,
        Family::Tiny,
        Family::Subnormal,
        Family::Extreme,
    ]
    .into_iter()
    .enumerate()
    {
        if level == Level::Quick && i >= 2 {
            continue;
        }
        specs.push(ReduceSpec {
            kind,
            dtype: dt,
            inputs: vec![(3 * 4096, fam, 0), (4096 + 9, fam, 1)],
            table: true,
            grid: None,
            seed: i as u64,
        });
    }
    if level == Level::Full {
        for (fi, fam) in Family::ALL.into_iter().enumerate() {
            let r = fi + salt;
            specs.push(ReduceSpec {
                kind,
                dtype: dt,
                inputs: SMALL
                    .iter()
                    .enumerate()
                    .map(|(k, &n)| (n, fam, [0, 1, 3, 4][(r + k) % 4]))
                    .collect(),
                table: true,
                grid: GRIDS[r % 3],
                seed: 10 + fi as u64,
            });
        }
        for (k, &n) in SIZES.iter().enumerate() {
            let r = k + salt;
            let fam = if n == 100_003 {
                Family::Wide
            } else {
                Family::ALL[r % 7]
            };
            specs.push(ReduceSpec {
                kind,
                dtype: dt,
                inputs: vec![(n, fam, r % 3)],
                table: false,
                grid: if n == 100_003 { Some(7) } else { GRIDS[r % 3] },
                seed: 20 + k as u64,
            });
        }
        if dt == Dtype::F32 {
            for (fi, fam) in Family::ALL.into_iter().enumerate() {
                specs.push(ReduceSpec {
                    kind,
                    dtype: dt,
                    inputs: vec![(100_003, fam, fi % 2)],
                    table: fi % 2 == 1,
                    grid: GRIDS[fi % 3],
                    seed: 40 + fi as u64,
                });
            }
        }
    }
    Some(
        specs
            .into_iter()
            .map(|sp| {
                let label = format!(
                    "{:?} {} inputs {:?} grid {:?}",
                    sp.kind, sp.dtype, sp.inputs, sp.grid
                );
                let cost = sp.cost();
                Case::new("reduce", entry, label, cost, move |b| sp.run(b))
            })
            .collect(),
    )
}

/// `step` module: `adamant_nonfinite_<grad>` and `adamant_step_commit`.
pub fn step(entry: &str, level: Level) -> Option<Vec<Case>> {
    if entry == adamant_cuda::args::COMMIT_ENTRY {
        let mut v = Vec::new();
        let flags = [
            None,
            Some(0),
            Some(0x3F80_0000),
            Some(0x8000_0000),
            Some(0x7FFF_FFFF),
            Some(1),
        ];
        let steps = [0u64, 9, u32::MAX as u64, (1 << 53) + 1, u64::MAX - 1];
        let shapes = [((1, 1, 1), 32), ((1, 1, 1), 1), ((2, 1, 1), 32)];
        for (i, &flag) in flags.iter().enumerate() {
            for (j, &step0) in steps.iter().enumerate() {
                if level == Level::Quick && (i + j) % 3 != 0 {
                    continue;
                }
                let sp = CommitSpec {
                    step0,
                    flag,
                    shape: shapes[(i + j) % 3],
                };
                let label = format!("{sp:?}");
                v.push(Case::new("step", entry, label, 1, move |b| sp.run(b)));
            }
        }
        return Some(v);
    }
    let dt = dtype(entry.strip_prefix("adamant_nonfinite_")?)?;
    let mut specs = Vec::new();
    // Finite families report nothing; one planted non-finite value anywhere reports.
    for (fi, fam) in Family::FINITE.into_iter().enumerate() {
        for (k, &n) in SIZES.iter().enumerate() {
            if level == Level::Quick && (fi + k) % 4 != 0 {
                continue;
            }
            if n == 100_003 && fi != 0 {
                continue;
            }
            let plants: Vec<Option<(usize, u8)>> = if n == 0 {
                vec![None]
            } else {
                vec![None, Some((0, 0)), Some((n - 1, 2)), Some((n / 2, 1))]
            };
            for (pi, plant) in plants.into_iter().enumerate() {
                specs.push(ScanSpec {
                    dtype: dt,
                    grads: vec![(n, fam, (fi + k + pi) % 3, plant)],
                    table: (k + pi) % 2 == 0,
                    grid: GRIDS[(fi + k + pi) % 3],
                    flag0: 0,
                    seed: (fi * 100 + k * 10 + pi) as u64,
                });
            }
        }
    }
    // Random bit patterns (nearly always holding a NaN or infinity), several tensors, and a
    // flag that was already set.
    for (fi, fam) in [Family::Bits, Family::Infinite].into_iter().enumerate() {
        specs.push(ScanSpec {
            dtype: dt,
            grads: SMALL
                .iter()
                .map(|&n| (n, Family::Wide, fi, None))
                .chain([(9, fam, 0, None)])
                .collect(),
            table: true,
            grid: GRIDS[fi],
            flag0: 0,
            seed: 900 + fi as u64,
        });
    }
    specs.push(ScanSpec {
        dtype: dt,
        grads: vec![(4097, Family::Wide, 0, None)],
        table: false,
        grid: None,
        flag0: 0x3F80_0000,
        seed: 950,
    });
    Some(
        specs
            .into_iter()
            .map(|sp| {
                let label = format!("scan {} {:?} grid {:?}", sp.dtype, sp.grads, sp.grid);
                let cost = sp.cost();
                Case::new("step", entry, label, cost, move |b| sp.run(b))
            })
            .collect(),
    )
}
