//! Test bodies shared by every executor of the kernels: each runs launches through a
//! [`Backend`] (a real GPU, or the PTX simulator) and compares the results with `adamant-core`
//! bit for bit, on adversarial inputs (NaN payloads, +-0, subnormals, +-inf, huge and tiny
//! values, odd lengths, unaligned buffers, several tensors per launch, device-resident lr and
//! step). Each returns the number of elements compared, or a description of the first
//! mismatch.

use crate::args::{
    self, AdamHyper, ClipBuffers, ClipHyper, LionHyper, MiniHyper, MiniPlan, MiniTensor,
    ReduceEntry, Reduction, Rule, SgdHyper, TensorEntry,
};
use crate::backend::{Backend, ParamValue};
use crate::ops::{self, MiniLaunch, ReduceInputs, StepRefs, Tensors};
use adamant_core::clip::{
    tensor_sum_sq, tensor_sum_sq_partials, AdaGc, AdaGcConfig, AdaGcMode, GlobalNormClip,
};
use adamant_core::reduce;
use adamant_core::rules::adam_mini;
use adamant_core::rules::{adam, lion, sgd, Plan};
use adamant_core::step::{skip_reason, GradPrep, StepOptions, StochasticRounding};
use adamant_core::store::{canonicalize_f32, Element, StateElement};
use adamant_core::{
    bf16, f16, AdamConfig, AdamMiniConfig, BlockLayout, Dtype, LionConfig, Segment, SgdConfig,
};

pub mod quant;

/// Deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// f32 patterns that exercise every special path.
const SPECIAL_F32: &[u32] = &[
    0x0000_0000,
    0x8000_0000,
    0x0000_0001,
    0x8000_0001,
    0x007F_FFFF,
    0x0080_0000,
    0x7F7F_FFFF,
    0xFF7F_FFFF,
    0x7F80_0000,
    0xFF80_0000,
    0x7FC0_0000,
    0xFFC0_0001,
    0x7F80_0001,
    0x3F80_0000,
    0x3380_0000,
    0x477F_F000,
    0x3F80_8000,
    0x3F81_8000,
    0x0001_8000,
];

/// `n` adversarial values of `T`: mostly ordinary magnitudes (so updates are meaningful),
/// with specials and random bit patterns mixed in. `positive` keeps ordinary values >= 0 (for
/// second moments).
fn values<T: Element>(rng: &mut Rng, n: usize, positive: bool) -> Vec<T> {
    values_with(rng, n, positive, false)
}

/// As [`values`]; `finite` replaces every NaN and infinity by a finite value (for sums, where
/// one NaN per tile would hide the summation order).
fn values_with<T: Element>(rng: &mut Rng, n: usize, positive: bool, finite: bool) -> Vec<T> {
    (0..n)
        .map(|_| {
            let r = rng.next();
            let x = match r % 16 {
                0 => f32::from_bits(SPECIAL_F32[(r >> 8) as usize % SPECIAL_F32.len()]),
                1 => f32::from_bits((r >> 16) as u32),
                2 => (rng.unit() - 0.5) * 1e-30,
                3 => (rng.unit() - 0.5) * 3e4,
                _ => {
                    let e = ((r >> 8) % 24) as i32 - 16;
                    let m = if positive {
                        rng.unit()
                    } else {
                        rng.unit() * 2.0 - 1.0
                    };
                    m * 2f32.powi(e)
                }
            };
            let v = match T::DTYPE {
                Dtype::F32 => T::from_bits_u32(x.to_bits()),
                Dtype::Bf16 => T::from_bits_u32(bf16::from_f32(x).to_bits() as u32),
                Dtype::F16 => T::from_bits_u32(f16::from_f32(x).to_bits() as u32),
            };
            if finite && !v.is_finite_bits() {
                T::from_bits_u32(v.to_bits_u32() & 0x3FFF)
            } else {
                v
            }
        })
        .collect()
}

fn to_bytes<T: Element>(xs: &[T]) -> Vec<u8> {
    let w = T::DTYPE.size();
    xs.iter()
        .flat_map(|x| x.to_bits_u32().to_le_bytes()[..w].to_vec())
        .collect()
}

fn bits_of<T: Element>(xs: &[T]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits_u32()).collect()
}

fn from_bytes(bytes: &[u8], w: usize) -> Vec<u32> {
    bytes
        .chunks(w)
        .map(|c| {
            let mut b = [0u8; 4];
            b[..w].copy_from_slice(c);
            u32::from_le_bytes(b)
        })
        .collect()
}

/// Device memory helper: allocations with a chosen misalignment.
fn put<B: Backend + ?Sized>(b: &mut B, bytes: &[u8], misalign: u64) -> Result<u64, String> {
    let a = b.alloc(bytes.len() + 16).map_err(|e| e.to_string())? + misalign;
    if !bytes.is_empty() {
        b.upload(a, bytes).map_err(|e| e.to_string())?;
    }
    Ok(a)
}

fn get<B: Backend + ?Sized>(b: &mut B, addr: u64, n: usize, w: usize) -> Result<Vec<u32>, String> {
    let mut out = vec![0u8; n * w];
    if n > 0 {
        b.download(addr, &mut out).map_err(|e| e.to_string())?;
    }
    Ok(from_bytes(&out, w))
}

/// A rule with its configuration.
#[derive(Clone, Copy, Debug)]
pub enum RuleConfig {
    /// Adam / AdamW.
    Adam(AdamConfig),
    /// SGD.
    Sgd(SgdConfig),
    /// Lion.
    Lion(LionConfig),
}

impl RuleConfig {
    fn rule(&self) -> Rule {
        match self {
            RuleConfig::Adam(_) => Rule::Adam,
            RuleConfig::Sgd(_) => Rule::Sgd,
            RuleConfig::Lion(_) => Rule::Lion,
        }
    }
    fn states(&self) -> usize {
        match self {
            RuleConfig::Adam(_) => 2,
            RuleConfig::Sgd(c) => c.has_momentum() as usize,
            RuleConfig::Lion(_) => 1,
        }
    }
    fn hyper(&self) -> Vec<u8> {
        match self {
            RuleConfig::Adam(c) => AdamHyper::from_config(c).to_bytes().to_vec(),
            RuleConfig::Sgd(c) => SgdHyper::from_config(c).to_bytes().to_vec(),
            RuleConfig::Lion(c) => LionHyper::from_config(c).to_bytes().to_vec(),
        }
    }
    fn seed(&self) -> Option<u64> {
        match self {
            RuleConfig::Adam(c) => c.stochastic_rounding_seed,
            RuleConfig::Sgd(c) => c.stochastic_rounding_seed,
            RuleConfig::Lion(c) => c.stochastic_rounding_seed,
        }
    }
}

/// One tensor of a case.
#[derive(Clone, Copy, Debug)]
pub struct TensorSpec {
    /// Elements.
    pub n: usize,
    /// Elements by which every buffer is moved from a 256-byte-aligned address (1 forces the
    /// scalar path for every dtype).
    pub misalign: u64,
    /// Per-tensor clip coefficient.
    pub clip: Option<f32>,
    /// Stochastic-rounding index offset.
    pub sr_index_offset: u64,
}

impl TensorSpec {
    /// `n` elements, aligned, no clipping, offset 0.
    pub const fn plain(n: usize) -> TensorSpec {
        TensorSpec {
            n,
            misalign: 0,
            clip: None,
            sr_index_offset: 0,
        }
    }
}

/// One update launch to compare.
#[derive(Clone, Debug)]
pub struct UpdateCase {
    /// Rule and hyper-parameters.
    pub config: RuleConfig,
    /// Tensors (all of the same dtypes).
    pub tensors: Vec<TensorSpec>,
    /// Pass a device table (true) or the single tensor by value (needs one tensor).
    pub table: bool,
    /// Learning rate (f32 on the device; core gets it widened to f64).
    pub lr: f32,
    /// Steps already applied (the device's step count before the launch).
    pub step0: u64,
    /// Loss scale.
    pub grad_scale: Option<f32>,
    /// Caller's found_inf flag set before the step.
    pub found_inf: bool,
    /// Finite checking requested.
    pub check_finite: bool,
    /// Data seed.
    pub data_seed: u64,
}

/// An infinity (`negative`: -inf) in the middle of the last non-empty gradient.
fn plant_infinity<'a, G: Element + 'a>(
    grads: impl DoubleEndedIterator<Item = &'a mut Vec<G>>,
    negative: bool,
) {
    if let Some(g) = grads.rev().find(|g| !g.is_empty()) {
        let k = g.len() / 2;
        let sign = negative as u32;
        g[k] = G::from_bits_u32(match G::DTYPE {
            Dtype::F32 => 0x7F80_0000 | sign << 31,
            Dtype::Bf16 => 0x7F80 | sign << 15,
            Dtype::F16 => 0x7C00 | sign << 15,
        });
    }
}

/// Core's decision for a step over `grads` (no clip; `flags` = (found_inf, check_finite)):
/// whether it skips, and whether the finite scan sets `found_inf`.
fn core_skip<G: Element>(
    lr: f64,
    grad_scale: Option<f32>,
    (found_inf, check_finite): (bool, bool),
    grads: &[&[G]],
) -> (bool, bool) {
    let opts = StepOptions {
        lr,
        grad_scale,
        clip_coef: None,
        found_inf,
        check_finite,
    };
    let skip = skip_reason(&opts, grads.iter().copied()).is_some();
    let scan_flag = !found_inf
        && opts.checks_finite()
        && grads.iter().any(|g| g.iter().any(|x| !x.is_finite_bits()));
    (skip, scan_flag)
}

/// The device's step counter and `found_inf` flag (set: f32 1.0) after a step, against core's.
fn check_step_and_flag<B: Backend + ?Sized>(
    b: &mut B,
    what: &str,
    (step, want_step): (u64, u64),
    (found_inf, want_set): (u64, bool),
) -> Result<(), String> {
    let bytes: Vec<u8> = get(b, step, 8, 1)?.iter().map(|&x| x as u8).collect();
    let step_after = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| "step bytes")?);
    if step_after != want_step {
        return Err(format!("{what}: step {step_after}, core {want_step}"));
    }
    let flag = get(b, found_inf, 1, 4)?[0];
    let want_flag = if want_set { args::FOUND_INF_SET } else { 0 };
    if flag != want_flag {
        return Err(format!(
            "{what}: found_inf {flag:#x}, expected {want_flag:#x}"
        ));
    }
    Ok(())
}

fn sr_key(seed: Option<u64>, t: u64, off: u64) -> Option<StochasticRounding> {
    seed.map(|seed| StochasticRounding {
        seed,
        step: t,
        index_offset: off,
    })
}

/// Run `case` on the backend and on core with types `P, G, S`; compare every buffer, the
/// step count and the found_inf flag, bit for bit. Returns the elements compared.
pub fn update_case<B: Backend + ?Sized, P: Element, G: Element, S: StateElement>(
    b: &mut B,
    case: &UpdateCase,
) -> Result<usize, String> {
    let mut rng = Rng(case.data_seed);
    let nstates = case.config.states();
    struct Host<P, G, S> {
        p: Vec<P>,
        g: Vec<G>,
        s0: Vec<S>,
        s1: Vec<S>,
    }
    let mut host: Vec<Host<P, G, S>> = Vec::new();
    for t in &case.tensors {
        let p = values::<P>(&mut rng, t.n, false);
        let mut g = values::<G>(&mut rng, t.n, false);
        if case.check_finite || case.grad_scale.is_some() {
            // Mostly finite gradients so that applied steps are compared too; the
            // non-finite cases put their bad element in explicitly.
            for x in g.iter_mut() {
                if !x.is_finite_bits() {
                    *x = G::from_bits_u32(0);
                }
            }
        }
        let s0 = if nstates >= 1 {
            values::<S>(&mut rng, t.n, false)
        } else {
            Vec::new()
        };
        let s1 = if nstates >= 2 {
            values::<S>(&mut rng, t.n, true)
        } else {
            Vec::new()
        };
        host.push(Host { p, g, s0, s1 });
    }
    // A case with check_finite and data_seed odd plants one infinity in the last tensor.
    if case.check_finite && case.data_seed % 2 == 1 {
        plant_infinity(host.iter_mut().map(|h| &mut h.g), true);
    }

    // Device side.
    let (pw, gw, sw) = (P::DTYPE.size(), G::DTYPE.size(), S::DTYPE.size());
    let mut entries = Vec::new();
    let mut addrs = Vec::new();
    for (t, h) in case.tensors.iter().zip(&host) {
        let m = t.misalign;
        let param = put(b, &to_bytes(&h.p), m * pw as u64)?;
        let grad = put(b, &to_bytes(&h.g), m * gw as u64)?;
        let state0 = if nstates >= 1 {
            put(b, &to_bytes(&h.s0), m * sw as u64)?
        } else {
            0
        };
        let state1 = if nstates >= 2 {
            put(b, &to_bytes(&h.s1), m * sw as u64)?
        } else {
            0
        };
        let clip_coef = match t.clip {
            Some(c) => put(b, &c.to_le_bytes(), 0)?,
            None => 0,
        };
        entries.push(TensorEntry {
            param,
            grad,
            state0,
            state1,
            n: t.n as u64,
            sr_index_offset: t.sr_index_offset,
            clip_coef,
            chunk_start: 0,
        });
        addrs.push((param, state0, state1));
    }
    let total = args::assign_chunks(&mut entries);
    let tensors = if case.table {
        let addr = put(b, &args::table_bytes(&entries), 0)?;
        Tensors::Table {
            addr,
            count: entries.len() as u32,
            total_chunks: total,
        }
    } else {
        if entries.len() != 1 {
            return Err("a single-tensor case needs exactly one tensor".into());
        }
        Tensors::One(entries[0])
    };
    let refs = StepRefs {
        lr: put(b, &case.lr.to_le_bytes(), 0)?,
        step: put(b, &case.step0.to_le_bytes(), 0)?,
        grad_scale: match case.grad_scale {
            Some(s) => put(b, &s.to_le_bytes(), 0)?,
            None => 0,
        },
        found_inf: put(
            b,
            &(if case.found_inf { 1.0f32 } else { 0.0 }).to_le_bytes(),
            0,
        )?,
    };
    let dtypes = (P::DTYPE, G::DTYPE, S::DTYPE);
    ops::step(
        b,
        case.config.rule(),
        dtypes,
        &tensors,
        &refs,
        &case.config.hyper(),
        case.check_finite,
    )
    .map_err(|e| e.to_string())?;

    // Core side.
    let t = case.step0 + 1;
    let lr = case.lr as f64;
    let grads: Vec<&[G]> = host.iter().map(|h| &h.g[..]).collect();
    let flags = (case.found_inf, case.check_finite);
    let (skip, scan_flag) = core_skip(lr, case.grad_scale, flags, &grads);
    let mut want = host;
    if !skip {
        for (spec, h) in case.tensors.iter().zip(want.iter_mut()) {
            let prep = GradPrep {
                grad_scale: case.grad_scale.unwrap_or(1.0),
                clip_coef: spec.clip.unwrap_or(1.0),
            };
            let sr = sr_key(case.config.seed(), t, spec.sr_index_offset);
            match case.config {
                RuleConfig::Adam(c) => {
                    let plan = Plan {
                        step: t,
                        scalars: c.scalars(lr, t),
                        prep,
                        sr,
                    };
                    adam::adam_reference(&mut h.p, &h.g, &mut h.s0, &mut h.s1, &plan);
                }
                RuleConfig::Sgd(c) => {
                    let plan = Plan {
                        step: t,
                        scalars: c.scalars(lr, t),
                        prep,
                        sr,
                    };
                    sgd::sgd_reference(&mut h.p, &h.g, &mut h.s0, &plan);
                }
                RuleConfig::Lion(c) => {
                    let plan = Plan {
                        step: t,
                        scalars: c.scalars(lr),
                        prep,
                        sr,
                    };
                    lion::lion_reference(&mut h.p, &h.g, &mut h.s0, &plan);
                }
            }
        }
    }

    // Compare.
    let what = format!(
        "{} {}/{}/{} on {}",
        case.config.rule().name(),
        P::DTYPE,
        G::DTYPE,
        S::DTYPE,
        b.name()
    );
    let mut compared = 0;
    for (k, (spec, h)) in case.tensors.iter().zip(&want).enumerate() {
        let (pa, s0a, s1a) = addrs[k];
        let bufs: [(&str, u64, Vec<u32>, usize); 3] = [
            ("param", pa, bits_of(&h.p), pw),
            ("state0", s0a, bits_of(&h.s0), sw),
            ("state1", s1a, bits_of(&h.s1), sw),
        ];
        for (name, addr, want_bits, w) in bufs {
            if want_bits.is_empty() {
                continue;
            }
            let got = get(b, addr, spec.n, w)?;
            if let Some(i) = (0..spec.n).find(|&i| got[i] != want_bits[i]) {
                return Err(format!(
                    "{what}: tensor {k} {name}[{i}] device {:#x} core {:#x} (grad {:#x}, case {case:?})",
                    got[i],
                    want_bits[i],
                    h.g[i].to_bits_u32()
                ));
            }
            compared += spec.n;
        }
    }
    let want_step = if skip { case.step0 } else { t };
    let want_flag = case.found_inf || scan_flag;
    check_step_and_flag(
        b,
        &what,
        (refs.step, want_step),
        (refs.found_inf, want_flag),
    )?;
    Ok(compared)
}

macro_rules! dispatch3 {
    ($f:ident, $b:expr, $case:expr, $p:expr, $g:expr, $s:expr) => {{
        macro_rules! with_s {
            ($P:ty, $G:ty) => {
                match $s {
                    Dtype::F32 => $f::<_, $P, $G, f32>($b, $case),
                    Dtype::Bf16 => $f::<_, $P, $G, bf16>($b, $case),
                    Dtype::F16 => Err("f16 states have no kernels".to_string()),
                }
            };
        }
        macro_rules! with_g {
            ($P:ty) => {
                match $g {
                    Dtype::F32 => with_s!($P, f32),
                    Dtype::Bf16 => with_s!($P, bf16),
                    Dtype::F16 => with_s!($P, f16),
                }
            };
        }
        match $p {
            Dtype::F32 => with_g!(f32),
            Dtype::Bf16 => with_g!(bf16),
            Dtype::F16 => with_g!(f16),
        }
    }};
}

/// [`update_case`] with the element types chosen at run time.
pub fn update_case_dyn<B: Backend + ?Sized>(
    b: &mut B,
    case: &UpdateCase,
    dtypes: (Dtype, Dtype, Dtype),
) -> Result<usize, String> {
    dispatch3!(update_case, b, case, dtypes.0, dtypes.1, dtypes.2)
}

/// Every storage combination (param, grad in f32/bf16/f16; state f32/bf16).
pub fn all_dtypes() -> Vec<(Dtype, Dtype, Dtype)> {
    let mut v = Vec::new();
    for p in Dtype::ALL {
        for g in Dtype::ALL {
            for s in [Dtype::F32, Dtype::Bf16] {
                v.push((p, g, s));
            }
        }
    }
    v
}

/// The rule configurations of the matrix.
pub fn configs() -> Vec<RuleConfig> {
    let adamw = AdamConfig::adamw();
    let adam_l2 = AdamConfig {
        weight_decay: 0.1,
        ..AdamConfig::adam()
    };
    let adamw_sr = AdamConfig {
        stochastic_rounding_seed: Some(0x5EED),
        ..adamw
    };
    let sgd_plain = SgdConfig::new(0.1);
    let sgd_mom = SgdConfig {
        momentum: 0.9,
        dampening: 0.1,
        weight_decay: 1e-4,
        ..SgdConfig::new(0.05)
    };
    let sgd_nesterov = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        stochastic_rounding_seed: Some(7),
        ..SgdConfig::new(0.05)
    };
    let lion = LionConfig {
        weight_decay: 0.1,
        ..LionConfig::official()
    };
    let lion_sr = LionConfig {
        stochastic_rounding_seed: Some(99),
        ..LionConfig::official()
    };
    vec![
        RuleConfig::Adam(adamw),
        RuleConfig::Adam(adam_l2),
        RuleConfig::Adam(adamw_sr),
        RuleConfig::Sgd(sgd_plain),
        RuleConfig::Sgd(sgd_mom),
        RuleConfig::Sgd(sgd_nesterov),
        RuleConfig::Lion(lion),
        RuleConfig::Lion(lion_sr),
    ]
}

/// A multi-tensor launch over an aligned vector-plus-tail tensor, an empty one, a misaligned
/// one (scalar path) and a clipped one with a stochastic-rounding offset.
pub fn mixed_tensors() -> Vec<TensorSpec> {
    vec![
        TensorSpec::plain(45),
        TensorSpec::plain(0),
        TensorSpec {
            n: 13,
            misalign: 1,
            clip: None,
            sr_index_offset: 45,
        },
        TensorSpec {
            n: 24,
            misalign: 0,
            clip: Some(0.25),
            sr_index_offset: 1 << 40,
        },
    ]
}

/// The small matrix: every configuration x every storage combination, one multi-tensor launch
/// each with device-resident lr and step, plus single-tensor launches with a loss scale,
/// skips (found_inf, a non-finite gradient), a step count past 2^20 and a two-chunk tensor.
/// Returns (launch cases, elements compared).
pub fn update_matrix<B: Backend + ?Sized>(
    b: &mut B,
    quick: bool,
) -> Result<(usize, usize), String> {
    let mut cases = 0;
    let mut elems = 0;
    for (ci, config) in configs().into_iter().enumerate() {
        for (di, dt) in all_dtypes().into_iter().enumerate() {
            if quick && di % 5 != ci % 5 {
                continue;
            }
            let case = UpdateCase {
                config,
                tensors: mixed_tensors(),
                table: true,
                lr: 1e-3,
                step0: (ci * 7 + di) as u64,
                grad_scale: None,
                found_inf: false,
                check_finite: false,
                data_seed: (ci * 100 + di) as u64 * 2,
            };
            elems += update_case_dyn(b, &case, dt)?;
            cases += 1;
        }
        // Single tensor, loss scale, checking on (and one planted infinity when odd seed).
        for (k, dt) in [
            (Dtype::Bf16, Dtype::F16, Dtype::F32),
            (Dtype::F32, Dtype::Bf16, Dtype::Bf16),
        ]
        .into_iter()
        .enumerate()
        {
            for seed in [10 + 2 * k as u64, 11 + 2 * k as u64] {
                let case = UpdateCase {
                    config,
                    tensors: vec![TensorSpec::plain(301)],
                    table: false,
                    lr: 3e-4,
                    step0: 1 << 21,
                    grad_scale: Some(1024.0),
                    found_inf: false,
                    check_finite: true,
                    data_seed: seed,
                };
                elems += update_case_dyn(b, &case, dt)?;
                cases += 1;
            }
        }
        // The caller's found_inf skips.
        let case = UpdateCase {
            config,
            tensors: vec![TensorSpec::plain(33)],
            table: false,
            lr: 1e-2,
            step0: 0,
            grad_scale: None,
            found_inf: true,
            check_finite: false,
            data_seed: 4,
        };
        elems += update_case_dyn(b, &case, (Dtype::F32, Dtype::F32, Dtype::F32))?;
        cases += 1;
    }
    if !quick {
        // Two chunks in one tensor, first step (SGD's buffer initialisation).
        for config in configs() {
            let case = UpdateCase {
                config,
                tensors: vec![
                    TensorSpec::plain(args::CHUNK as usize + 11),
                    TensorSpec::plain(5),
                ],
                table: true,
                lr: 0.5,
                step0: 0,
                grad_scale: None,
                found_inf: false,
                check_finite: false,
                data_seed: 77,
            };
            elems += update_case_dyn(b, &case, (Dtype::Bf16, Dtype::Bf16, Dtype::F32))?;
            cases += 1;
        }
    }
    Ok((cases, elems))
}

/// Reductions: per-tile partials (one launch over a table of inputs) and the combine levels,
/// against `adamant_core::reduce` (`partials_by`, `combine`, `max_abs`, `combine_max_abs`).
/// `finite` keeps NaN and infinity out of the values (so the summation order shows in the
/// bits); otherwise some tiles hold them.
pub fn reduce_case<B: Backend + ?Sized, T: Element>(
    b: &mut B,
    sizes: &[usize],
    seed: u64,
    finite: bool,
) -> Result<usize, String> {
    let mut rng = Rng(seed);
    let inputs: Vec<Vec<T>> = sizes
        .iter()
        .map(|&n| values_with::<T>(&mut rng, n, false, finite))
        .collect();
    let mut compared = 0;
    for kind in [Reduction::Sum, Reduction::SumSq, Reduction::MaxAbs] {
        let mut entries = Vec::new();
        for x in &inputs {
            let xa = put(b, &to_bytes(x), 0)?;
            let tiles = reduce::tile_count(x.len());
            let out = put(b, &vec![0xAAu8; 4 * tiles.max(1)], 0)?;
            entries.push(ReduceEntry {
                x: xa,
                n: x.len() as u64,
                out,
                tile_start: 0,
            });
        }
        let total = args::assign_tiles(&mut entries);
        let addr = put(
            b,
            &entries
                .iter()
                .flat_map(|e| e.to_bytes())
                .collect::<Vec<_>>(),
            0,
        )?;
        ops::partials(
            b,
            kind,
            T::DTYPE,
            &ReduceInputs::Table {
                addr,
                count: entries.len() as u32,
                total_tiles: total,
            },
        )
        .map_err(|e| e.to_string())?;
        for (x, e) in inputs.iter().zip(&entries) {
            let tiles = reduce::tile_count(x.len());
            let mut want = vec![0f32; tiles];
            match kind {
                Reduction::Sum => reduce::partials_by(x, |v| v, &mut want),
                Reduction::SumSq => reduce::partials_by(x, |v| v * v, &mut want),
                Reduction::MaxAbs => {
                    for (o, t) in want.iter_mut().zip(x.chunks(reduce::TILE)) {
                        *o = reduce::max_abs(t);
                    }
                    Ok(())
                }
            }
            .map_err(|e| format!("{e:?}"))?;
            let got = get(b, e.out, tiles, 4)?;
            for i in 0..tiles {
                // Core's sums keep x86 NaN payloads; the contract stores the canonical NaN,
                // which is what the device computes.
                let w = canonicalize_f32(want[i]).to_bits();
                if got[i] != w {
                    return Err(format!(
                        "{kind:?} {} n={} tile {i}: device {:#x} core {w:#x}",
                        T::DTYPE,
                        x.len(),
                        got[i]
                    ));
                }
            }
            compared += x.len();
            if tiles >= 1 {
                let scratch = put(
                    b,
                    &vec![0u8; 4 * ops::combine_scratch_len(tiles as u64) as usize],
                    0,
                )?;
                let r = ops::combine(b, kind, e.out, tiles as u64, scratch)
                    .map_err(|e| e.to_string())?;
                let got = get(b, r, 1, 4)?[0];
                let whole = match kind {
                    Reduction::MaxAbs => reduce::combine_max_abs(&want),
                    _ => reduce::combine(&want),
                };
                let w = canonicalize_f32(whole).to_bits();
                if got != w {
                    return Err(format!(
                        "{kind:?} combine {} n={}: device {got:#x} core {w:#x}",
                        T::DTYPE,
                        x.len()
                    ));
                }
                if kind != Reduction::MaxAbs {
                    let direct = match kind {
                        Reduction::Sum => reduce::sum(x),
                        _ => reduce::sum_sq(x),
                    };
                    if canonicalize_f32(direct).to_bits() != w {
                        return Err(format!(
                            "{kind:?} {}: partials+combine differ from the one-pass sum",
                            T::DTYPE
                        ));
                    }
                }
            }
        }
    }
    Ok(compared)
}

/// Reductions for every dtype over odd sizes (one tile, several tiles, a partial tile).
/// Finite data everywhere, plus one adversarial (NaN/inf-holding) pass per dtype.
pub fn reduce_matrix<B: Backend + ?Sized>(b: &mut B) -> Result<usize, String> {
    let sizes = [1usize, 255, 4097, 3 * 4096 + 5];
    let special = [300usize, 4096 + 7];
    Ok(reduce_case::<B, f32>(b, &sizes, 1, true)?
        + reduce_case::<B, bf16>(b, &sizes, 2, true)?
        + reduce_case::<B, f16>(b, &sizes, 3, true)?
        + reduce_case::<B, f32>(b, &special, 4, false)?
        + reduce_case::<B, bf16>(b, &special, 5, false)?
        + reduce_case::<B, f16>(b, &special, 6, false)?)
}

// ---------------------------------------------------------------------------------------------
// Adam-mini and clipping.

/// Gradients for order-sensitive statistics: every value finite and at most 1e4 in magnitude
/// (squares never overflow), so a block's sum shows its summation order in the bits.
fn tame<T: Element>(xs: &mut [T]) {
    for x in xs.iter_mut() {
        if !x.is_finite_bits() || x.widen().abs() > 1e4 {
            *x = T::from_bits_u32(x.to_bits_u32() & 0x3FFF);
        }
    }
}

/// An owned block layout (core's [`BlockLayout`] borrows its segments).
#[derive(Clone, Debug, PartialEq)]
pub enum MiniLayout {
    /// Per-element AdamW.
    Element,
    /// Rows of `row_len`.
    Rows(usize),
    /// Heads of `head_numel`.
    Heads(usize),
    /// One block.
    Tensor,
    /// Explicit segments.
    Segments(Vec<Segment>),
}

impl MiniLayout {
    /// The core layout.
    pub fn as_layout(&self) -> BlockLayout<'_> {
        match self {
            MiniLayout::Element => BlockLayout::Element,
            MiniLayout::Rows(r) => BlockLayout::Rows { row_len: *r },
            MiniLayout::Heads(h) => BlockLayout::Heads { head_numel: *h },
            MiniLayout::Tensor => BlockLayout::Tensor,
            MiniLayout::Segments(s) => BlockLayout::Segments(s),
        }
    }
}

/// One tensor of an Adam-mini case.
#[derive(Clone, Debug)]
pub struct MiniTensorSpec {
    /// Elements.
    pub numel: usize,
    /// Blocks.
    pub layout: MiniLayout,
    /// Weight decay flag.
    pub weight_decay: bool,
    /// Elements by which every buffer is moved off 256-byte alignment.
    pub misalign: u64,
    /// Fixed clip coefficient (ignored when the case runs AdaGC).
    pub clip: Option<f32>,
    /// Stochastic-rounding index offset.
    pub sr_index_offset: u64,
}

/// One Adam-mini step to compare (optionally clipped by AdaGC computed on the device).
#[derive(Clone, Debug)]
pub struct MiniCase {
    /// Hyper-parameters (its `lr` is unused: `lr` below lives on the device).
    pub config: AdamMiniConfig,
    /// Tensors.
    pub tensors: Vec<MiniTensorSpec>,
    /// Upload every table (true) or pass one-entry tables by value.
    pub table: bool,
    /// Learning rate.
    pub lr: f32,
    /// Steps already applied.
    pub step0: u64,
    /// Loss scale.
    pub grad_scale: Option<f32>,
    /// Caller's found_inf.
    pub found_inf: bool,
    /// Finite checking.
    pub check_finite: bool,
    /// Keep gradients tame (see `tame`); false mixes NaN, inf and huge values in.
    pub tame: bool,
    /// AdaGC clipping (per-tensor coefficients computed on the device from the gradients).
    pub adagc: Option<AdaGcConfig>,
    /// Data seed (odd with `check_finite`: one planted infinity).
    pub data_seed: u64,
}

/// Run `case` on the backend and on core (`adam_mini::apply_tensor`, reference path; with
/// `adagc`: `tensor_sum_sq`, `AdaGc::plan`/`commit` first); compare parameters, both states,
/// the step, found_inf and (with AdaGC) the coefficients, gammas and clip step, bit for bit.
pub fn mini_case<B: Backend + ?Sized, P: Element, G: Element, S: StateElement>(
    b: &mut B,
    case: &MiniCase,
) -> Result<usize, String> {
    let mut rng = Rng(case.data_seed);
    struct Host<P, G, S> {
        p: Vec<P>,
        g: Vec<G>,
        m: Vec<S>,
        v: Vec<S>,
    }
    let mut host: Vec<Host<P, G, S>> = Vec::new();
    for t in &case.tensors {
        let state = t
            .layout
            .as_layout()
            .state_len(t.numel)
            .map_err(|e| format!("{e:?}"))?;
        let p = values::<P>(&mut rng, t.numel, false);
        let mut g = values::<G>(&mut rng, t.numel, false);
        if case.tame || case.check_finite || case.grad_scale.is_some() {
            tame(&mut g);
        }
        let m = values::<S>(&mut rng, t.numel, false);
        let mut v = values::<S>(&mut rng, state, true);
        if case.tame {
            tame(&mut v);
            for x in v.iter_mut() {
                *x = S::from_bits_u32(x.to_bits_u32() & !(1 << (S::DTYPE.size() * 8 - 1)));
            }
        }
        host.push(Host { p, g, m, v });
    }
    if case.check_finite && case.data_seed % 2 == 1 {
        plant_infinity(host.iter_mut().map(|h| &mut h.g), false);
    }
    let (pw, gw, sw) = (P::DTYPE.size(), G::DTYPE.size(), S::DTYPE.size());
    let mut addrs = Vec::new();
    for (t, h) in case.tensors.iter().zip(&host) {
        let a = t.misalign;
        addrs.push((
            put(b, &to_bytes(&h.p), a * pw as u64)?,
            put(b, &to_bytes(&h.g), a * gw as u64)?,
            put(b, &to_bytes(&h.m), a * sw as u64)?,
            put(b, &to_bytes(&h.v), a * sw as u64)?,
        ));
    }
    let found_inf = put(
        b,
        &(if case.found_inf { 1.0f32 } else { 0.0 }).to_le_bytes(),
        0,
    )?;
    let grad_scale = match case.grad_scale {
        Some(s) => put(b, &s.to_le_bytes(), 0)?,
        None => 0,
    };
    let n_t = case.tensors.len();
    // AdaGC on the device: coefficients into `coefs`, read by the update through clip_coef.
    let mut clip_dev = None;
    if let Some(cfg) = case.adagc {
        let mut entries: Vec<ReduceEntry> = Vec::new();
        for (t, &(_, ga, _, _)) in case.tensors.iter().zip(&addrs) {
            entries.push(ReduceEntry {
                x: ga,
                n: t.numel as u64,
                out: put(b, &vec![0u8; 4 * reduce::tile_count(t.numel).max(1)], 0)?,
                tile_start: 0,
            });
        }
        let total_tiles = args::assign_tiles(&mut entries);
        let gamma_len = match cfg.mode {
            AdaGcMode::PerTensor => n_t,
            AdaGcMode::Global => 1,
        };
        let gamma0: Vec<f32> = (0..gamma_len).map(|k| 0.5 + k as f32).collect();
        let bufs = ClipBuffers {
            sums: put(b, &vec![0u8; 4 * n_t], 0)?,
            count: n_t as u64,
            scratch: put(b, &vec![0u8; 4 * n_t], 0)?,
            coefs: put(b, &vec![0u8; 4 * n_t], 0)?,
            gamma: put(b, &to_bytes(&gamma0), 0)?,
            gamma_next: put(b, &vec![0u8; 4 * gamma_len], 0)?,
            clip_step: put(b, &case.step0.to_le_bytes(), 0)?,
            record: put(b, &[0u8; 16], 0)?,
        };
        let inputs = ReduceInputs::Table {
            addr: put(
                b,
                &entries
                    .iter()
                    .flat_map(|e| e.to_bytes())
                    .collect::<Vec<_>>(),
                0,
            )?,
            count: n_t as u32,
            total_tiles,
        };
        let hyper = ClipHyper::adagc(&cfg);
        ops::clip_coefficients(b, G::DTYPE, &inputs, grad_scale, &bufs, &hyper)
            .map_err(|e| e.to_string())?;
        clip_dev = Some((bufs, hyper, gamma0));
    }
    let mut tensors = Vec::new();
    for (k, (t, &(pa, ga, ma, va))) in case.tensors.iter().zip(&addrs).enumerate() {
        let clip_coef = match (&clip_dev, t.clip) {
            (Some((bufs, _, _)), _) => bufs.coefs + 4 * k as u64,
            (None, Some(c)) => put(b, &c.to_le_bytes(), 0)?,
            (None, None) => 0,
        };
        tensors.push(MiniTensor {
            param: pa,
            grad: ga,
            exp_avg: ma,
            exp_avg_sq: va,
            numel: t.numel as u64,
            layout: t.layout.as_layout(),
            weight_decay: t.weight_decay,
            sr_index_offset: t.sr_index_offset,
            clip_coef,
        });
    }
    let sizes = (pw as u64, gw as u64, sw as u64);
    let probe = MiniPlan::build(&tensors, sizes, 0).map_err(|e| format!("{e:?}"))?;
    let scratch = put(b, &vec![0xA5u8; probe.scratch_bytes.max(4) as usize], 0)?;
    let plan = MiniPlan::build(&tensors, sizes, scratch).map_err(|e| format!("{e:?}"))?;
    let upload = |b: &mut B, bytes: Vec<u8>, len: usize| -> Result<u64, String> {
        if len == 0 || (len == 1 && !case.table) {
            Ok(0)
        } else {
            put(b, &bytes, 0)
        }
    };
    let seg = upload(b, plan.segment_bytes(), plan.segments.len())?;
    let dec = upload(
        b,
        args::table_bytes(&plan.elements_decay),
        plan.elements_decay.len(),
    )?;
    let pla = upload(
        b,
        args::table_bytes(&plan.elements_plain),
        plan.elements_plain.len(),
    )?;
    let scn = upload(b, args::table_bytes(&plan.scan), plan.scan.len())?;
    let launch = MiniLaunch::from_plan(&plan, seg, dec, pla, scn);
    let refs = StepRefs {
        lr: put(b, &case.lr.to_le_bytes(), 0)?,
        step: put(b, &case.step0.to_le_bytes(), 0)?,
        grad_scale,
        found_inf,
    };
    let hyper = MiniHyper::from_config(&case.config);
    ops::mini_step(
        b,
        (P::DTYPE, G::DTYPE, S::DTYPE),
        &launch,
        &refs,
        &hyper,
        case.check_finite,
    )
    .map_err(|e| e.to_string())?;
    if let Some((bufs, h, _)) = &clip_dev {
        ops::clip_commit(b, bufs, found_inf, h).map_err(|e| e.to_string())?;
    }

    // Core.
    let t = case.step0 + 1;
    let lr = case.lr as f64;
    let grads: Vec<&[G]> = host.iter().map(|h| &h.g[..]).collect();
    let flags = (case.found_inf, case.check_finite);
    let (skip, scan_flag) = core_skip(lr, case.grad_scale, flags, &grads);
    let what = format!(
        "adam_mini {}/{}/{} on {}",
        P::DTYPE,
        G::DTYPE,
        S::DTYPE,
        b.name()
    );
    let mut coefs = vec![1.0f32; n_t];
    let mut compared = 0;
    if let (Some(cfg), Some((bufs, _, gamma0))) = (case.adagc, &clip_dev) {
        let sums: Vec<f32> = host
            .iter()
            .map(|h| tensor_sum_sq(&h.g, case.grad_scale.unwrap_or(1.0)))
            .collect();
        let mut clip = AdaGc::new(cfg).map_err(|e| format!("{e:?}"))?;
        clip.state.step = case.step0;
        let mut gamma = gamma0.clone();
        let cp = clip
            .plan(&sums, &gamma, &mut coefs)
            .map_err(|e| format!("{e:?}"))?;
        if !skip {
            clip.commit(&sums, &mut gamma, &cp)
                .map_err(|e| format!("{e:?}"))?;
        }
        let checks: [(&str, u64, Vec<u32>); 3] = [
            (
                "sums",
                bufs.sums,
                sums.iter()
                    .map(|x| canonicalize_f32(*x).to_bits())
                    .collect(),
            ),
            (
                "coefs",
                bufs.coefs,
                coefs.iter().map(|x| x.to_bits()).collect(),
            ),
            (
                "gamma",
                bufs.gamma,
                gamma.iter().map(|x| x.to_bits()).collect(),
            ),
        ];
        for (name, addr, want) in checks {
            let got = get(b, addr, want.len(), 4)?;
            if got != want {
                return Err(format!(
                    "{what}: AdaGC {name} device {got:x?} core {want:x?}"
                ));
            }
            compared += want.len();
        }
        let cs = get(b, bufs.clip_step, 8, 1)?;
        let cs = u64::from_le_bytes(
            cs.iter().map(|&x| x as u8).collect::<Vec<_>>()[..8]
                .try_into()
                .unwrap(),
        );
        if cs != clip.state.step {
            return Err(format!("{what}: clip step {cs}, core {}", clip.state.step));
        }
    }
    let mut want = host;
    if !skip {
        for (k, (spec, h)) in case.tensors.iter().zip(want.iter_mut()).enumerate() {
            let clip = if case.adagc.is_some() {
                coefs[k]
            } else {
                spec.clip.unwrap_or(1.0)
            };
            let plan = Plan {
                step: t,
                scalars: case.config.scalars(lr, t),
                prep: GradPrep {
                    grad_scale: case.grad_scale.unwrap_or(1.0),
                    clip_coef: clip,
                },
                sr: sr_key(
                    case.config.stochastic_rounding_seed,
                    t,
                    spec.sr_index_offset,
                ),
            };
            adam_mini::apply_tensor(
                &mut h.p,
                &h.g,
                &mut h.m,
                &mut h.v,
                &spec.layout.as_layout(),
                spec.weight_decay,
                &plan,
                adam_mini::Path::Reference,
            )
            .map_err(|e| format!("{e:?}"))?;
        }
    }
    for (k, (spec, h)) in case.tensors.iter().zip(&want).enumerate() {
        let (pa, _, ma, va) = addrs[k];
        let bufs: [(&str, u64, Vec<u32>, usize); 3] = [
            ("param", pa, bits_of(&h.p), pw),
            ("exp_avg", ma, bits_of(&h.m), sw),
            ("exp_avg_sq", va, bits_of(&h.v), sw),
        ];
        for (name, addr, want_bits, w) in bufs {
            let got = get(b, addr, want_bits.len(), w)?;
            if let Some(i) = (0..want_bits.len()).find(|&i| got[i] != want_bits[i]) {
                return Err(format!(
                    "{what}: tensor {k} ({:?}) {name}[{i}] device {:#x} core {:#x} (seed {})",
                    spec.layout, got[i], want_bits[i], case.data_seed
                ));
            }
            compared += want_bits.len();
        }
    }
    let want_step = if skip { case.step0 } else { t };
    let want_flag = case.found_inf || scan_flag;
    check_step_and_flag(b, &what, (refs.step, want_step), (found_inf, want_flag))?;
    Ok(compared)
}

/// [`mini_case`] with the element types chosen at run time.
pub fn mini_case_dyn<B: Backend + ?Sized>(
    b: &mut B,
    case: &MiniCase,
    dtypes: (Dtype, Dtype, Dtype),
) -> Result<usize, String> {
    dispatch3!(mini_case, b, case, dtypes.0, dtypes.1, dtypes.2)
}

/// A model of every layout in one step: rows crossing 8-element groups, misaligned heads with
/// a clip coefficient, a two-tile whole-tensor block with a large SR offset, a bias, explicit
/// segments (element run + two block sizes), an empty tensor.
pub fn mini_tensors() -> Vec<MiniTensorSpec> {
    let spec = |numel, layout, weight_decay, misalign, clip, sr_index_offset| MiniTensorSpec {
        numel,
        layout,
        weight_decay,
        misalign,
        clip,
        sr_index_offset,
    };
    vec![
        spec(185, MiniLayout::Rows(37), true, 0, None, 0),
        spec(256, MiniLayout::Heads(64), false, 1, Some(0.5), 185),
        spec(4096 + 300, MiniLayout::Tensor, true, 0, None, 1 << 33),
        spec(19, MiniLayout::Element, false, 0, Some(0.75), 7),
        spec(
            86,
            MiniLayout::Segments(vec![
                Segment::Element { len: 8 },
                Segment::Blocks {
                    len: 48,
                    block_len: 16,
                },
                Segment::Blocks {
                    len: 30,
                    block_len: 3,
                },
            ]),
            true,
            0,
            None,
            5000,
        ),
        spec(0, MiniLayout::Rows(4), true, 0, None, 0),
    ]
}

/// Adam-mini: every storage combination (quick: a third of them) over [`mini_tensors`] with
/// plain and stochastic-rounding configurations; one-segment by-value launches with a loss
/// scale and finite checking (one planted infinity); the caller's found_inf; untamed
/// gradients (NaN, inf, huge); and AdaGC-clipped steps (coefficients computed on the device
/// from the gradients, warm-up and after). Returns (launch cases, elements compared).
pub fn adam_mini_matrix<B: Backend + ?Sized>(
    b: &mut B,
    quick: bool,
) -> Result<(usize, usize), String> {
    let plain = AdamMiniConfig {
        weight_decay: 0.1,
        ..AdamMiniConfig::default()
    };
    let sr = AdamMiniConfig {
        stochastic_rounding_seed: Some(0xADA),
        ..plain
    };
    let base = MiniCase {
        config: plain,
        tensors: mini_tensors(),
        table: true,
        lr: 1e-3,
        step0: 0,
        grad_scale: None,
        found_inf: false,
        check_finite: false,
        tame: true,
        adagc: None,
        data_seed: 2,
    };
    let (mut cases, mut elems) = (0, 0);
    for (ci, config) in [plain, sr].into_iter().enumerate() {
        for (di, dt) in all_dtypes().into_iter().enumerate() {
            if quick && di % 3 != ci % 3 {
                continue;
            }
            let case = MiniCase {
                config,
                step0: (3 * di + ci) as u64,
                data_seed: (100 * ci + di) as u64 * 2,
                ..base.clone()
            };
            elems += mini_case_dyn(b, &case, dt)?;
            cases += 1;
        }
    }
    let one = vec![MiniTensorSpec {
        numel: 64,
        layout: MiniLayout::Rows(16),
        weight_decay: true,
        misalign: 0,
        clip: None,
        sr_index_offset: 0,
    }];
    for seed in [10u64, 11] {
        let case = MiniCase {
            config: sr,
            tensors: one.clone(),
            table: false,
            lr: 3e-4,
            step0: 1 << 21,
            grad_scale: Some(1024.0),
            check_finite: true,
            data_seed: seed,
            ..base.clone()
        };
        elems += mini_case_dyn(b, &case, (Dtype::Bf16, Dtype::F16, Dtype::F32))?;
        cases += 1;
    }
    let skip = MiniCase {
        found_inf: true,
        data_seed: 4,
        ..base.clone()
    };
    elems += mini_case_dyn(b, &skip, (Dtype::F32, Dtype::F32, Dtype::F32))?;
    cases += 1;
    for (k, dt) in [
        (Dtype::F32, Dtype::F32, Dtype::F32),
        (Dtype::Bf16, Dtype::Bf16, Dtype::Bf16),
    ]
    .into_iter()
    .enumerate()
    {
        let wild = MiniCase {
            tame: false,
            data_seed: 40 + 2 * k as u64,
            ..base.clone()
        };
        elems += mini_case_dyn(b, &wild, dt)?;
        cases += 1;
    }
    if !quick {
        // Blocks across a chunk boundary (rows of 1000 over two chunks),
        // and a whole-tensor block of five tiles spanning two chunks.
        let spec = |numel, layout, misalign| MiniTensorSpec {
            numel,
            layout,
            weight_decay: true,
            misalign,
            clip: None,
            sr_index_offset: 3,
        };
        for (k, dt) in [
            (Dtype::Bf16, Dtype::Bf16, Dtype::F32),
            (Dtype::F32, Dtype::F16, Dtype::Bf16),
        ]
        .into_iter()
        .enumerate()
        {
            let case = MiniCase {
                config: if k == 0 { sr } else { plain },
                tensors: vec![
                    spec(17_000, MiniLayout::Rows(1000), 0),
                    spec(args::CHUNK as usize + 9, MiniLayout::Tensor, k as u64),
                ],
                step0: 9,
                data_seed: 80 + 2 * k as u64,
                ..base.clone()
            };
            elems += mini_case_dyn(b, &case, dt)?;
            cases += 1;
        }
    }
    // AdaGC-clipped steps: warm-up (global coefficient) and after (per-tensor thresholds),
    // per tensor and global, with a loss scale.
    let adagc = AdaGcConfig {
        t_start: 2,
        max_norm: 0.5,
        ..AdaGcConfig::default()
    };
    for (k, (step0, mode)) in [
        (0u64, AdaGcMode::PerTensor),
        (1, AdaGcMode::PerTensor),
        (5, AdaGcMode::PerTensor),
        (5, AdaGcMode::Global),
        (1, AdaGcMode::Global),
    ]
    .into_iter()
    .enumerate()
    {
        if quick && k == 4 {
            continue;
        }
        let case = MiniCase {
            step0,
            grad_scale: if k % 2 == 1 { Some(8.0) } else { None },
            adagc: Some(AdaGcConfig { mode, ..adagc }),
            data_seed: 60 + 2 * k as u64,
            ..base.clone()
        };
        elems += mini_case_dyn(b, &case, (Dtype::Bf16, Dtype::Bf16, Dtype::F32))?;
        cases += 1;
    }
    Ok((cases, elems))
}

/// Clipping alone over a few steps: per-tensor sums (unscaled by the loss scale), the global
/// combine, coefficients and the committed thresholds of every mode against core
/// (`tensor_sum_sq`, `GlobalNormClip::coefficient`, `AdaGc::plan`/`commit`), including a
/// skipped step (found_inf: nothing committed), a non-finite gradient (coefficient 1, not
/// committed) and a tensor longer than one tile. Returns the values compared.
pub fn clip_case<B: Backend + ?Sized, G: Element>(
    b: &mut B,
    sizes: &[usize],
    mode: Option<AdaGcConfig>,
    grad_scale: Option<f32>,
    seed: u64,
) -> Result<usize, String> {
    let mut rng = Rng(seed);
    let n_t = sizes.len();
    let mut compared = 0;
    let gamma0: Vec<f32> = (0..n_t).map(|k| 1.0 + k as f32).collect();
    let gamma_len = match mode.map(|m| m.mode) {
        Some(AdaGcMode::Global) => 1,
        _ => n_t,
    };
    let bufs = ClipBuffers {
        sums: put(b, &vec![0u8; 4 * n_t], 0)?,
        count: n_t as u64,
        scratch: put(b, &vec![0u8; 4 * n_t], 0)?,
        coefs: put(b, &vec![0u8; 4 * n_t], 0)?,
        gamma: put(b, &to_bytes(&gamma0[..gamma_len]), 0)?,
        gamma_next: put(b, &vec![0u8; 4 * gamma_len], 0)?,
        clip_step: put(b, &0u64.to_le_bytes(), 0)?,
        record: put(b, &[0u8; 16], 0)?,
    };
    let hyper = match mode {
        Some(c) => ClipHyper::adagc(&c),
        None => ClipHyper::global_norm(&GlobalNormClip::new(1.0).map_err(|e| format!("{e:?}"))?),
    };
    let gs_addr = match grad_scale {
        Some(s) => put(b, &s.to_le_bytes(), 0)?,
        None => 0,
    };
    let found_inf = put(b, &[0u8; 4], 0)?;
    let mut clip = mode.map(|c| AdaGc::new(c).unwrap());
    let mut gamma = gamma0[..gamma_len].to_vec();
    for step in 0..6u64 {
        // Step 2: a spike; step 3: skipped by the caller's found_inf; step 4: a NaN; step 5:
        // sparse gradients (nonzero only in lane 0 of each tile), so that each lane's
        // accumulation order and rounding shows in the tile sums instead of being absorbed.
        let mut grads: Vec<Vec<G>> = sizes
            .iter()
            .map(|&n| {
                let mut g = values::<G>(&mut rng, n, false);
                tame(&mut g);
                if step == 5 {
                    for (j, x) in g.iter_mut().enumerate() {
                        if j % reduce::LANES != 0 {
                            *x = G::from_bits_u32(0);
                        } else {
                            *x = G::narrow(0.5 + rng.unit());
                        }
                    }
                }
                if step == 2 {
                    for x in g.iter_mut().take(3) {
                        *x = G::narrow(x.widen() * 300.0);
                    }
                }
                g
            })
            .collect();
        if step == 4 {
            if let Some(g) = grads.iter_mut().find(|g| !g.is_empty()) {
                g[0] = G::from_bits_u32(0xFFFF_FFFF >> (32 - 8 * G::DTYPE.size()));
            }
        }
        let skipped = step == 3;
        b.upload(
            found_inf,
            &(if skipped { 1.0f32 } else { 0.0 }).to_le_bytes(),
        )
        .map_err(|e| e.to_string())?;
        let mut entries = Vec::new();
        for g in &grads {
            entries.push(ReduceEntry {
                x: put(b, &to_bytes(g), 0)?,
                n: g.len() as u64,
                out: put(b, &vec![0u8; 4 * reduce::tile_count(g.len()).max(1)], 0)?,
                tile_start: 0,
            });
        }
        let total_tiles = args::assign_tiles(&mut entries);
        let inputs = if n_t == 1 {
            ReduceInputs::One(entries[0])
        } else {
            ReduceInputs::Table {
                addr: put(
                    b,
                    &entries
                        .iter()
                        .flat_map(|e| e.to_bytes())
                        .collect::<Vec<_>>(),
                    0,
                )?,
                count: n_t as u32,
                total_tiles,
            }
        };
        ops::clip_coefficients(b, G::DTYPE, &inputs, gs_addr, &bufs, &hyper)
            .map_err(|e| e.to_string())?;
        ops::clip_commit(b, &bufs, found_inf, &hyper).map_err(|e| e.to_string())?;

        let sums: Vec<f32> = grads
            .iter()
            .map(|g| tensor_sum_sq(g, grad_scale.unwrap_or(1.0)))
            .collect();
        let mut coefs = vec![0f32; n_t];
        let (norm, gcoef, finite) = match &mut clip {
            None => {
                let (total, c) = GlobalNormClip::new(1.0).unwrap().coefficient(&sums);
                coefs.iter_mut().for_each(|x| *x = c);
                (total, c, total.is_finite())
            }
            Some(clip) => {
                let p = clip
                    .plan(&sums, &gamma, &mut coefs)
                    .map_err(|e| format!("{e:?}"))?;
                if !skipped {
                    clip.commit(&sums, &mut gamma, &p)
                        .map_err(|e| format!("{e:?}"))?;
                }
                (p.global_norm, p.global_coef, p.finite)
            }
        };
        let what = format!(
            "clip {:?} {} step {step} on {}",
            mode.map(|m| m.mode),
            G::DTYPE,
            b.name()
        );
        let canon =
            |v: &[f32]| -> Vec<u32> { v.iter().map(|x| canonicalize_f32(*x).to_bits()).collect() };
        let checks: [(&str, u64, Vec<u32>); 4] = [
            ("sums", bufs.sums, canon(&sums)),
            ("coefs", bufs.coefs, canon(&coefs)),
            ("gamma", bufs.gamma, canon(&gamma)),
            (
                "record",
                bufs.record,
                vec![
                    canonicalize_f32(norm).to_bits(),
                    canonicalize_f32(gcoef).to_bits(),
                    finite as u32,
                ],
            ),
        ];
        for (name, addr, want) in checks {
            if mode.is_none() && name == "gamma" {
                continue;
            }
            let got = get(b, addr, want.len(), 4)?;
            if got != want {
                return Err(format!("{what}: {name} device {got:x?} core {want:x?}"));
            }
            compared += want.len();
        }
        if let Some(clip) = &clip {
            let cs = get(b, bufs.clip_step, 8, 1)?;
            let cs = u64::from_le_bytes(
                cs.iter().map(|&x| x as u8).collect::<Vec<_>>()[..8]
                    .try_into()
                    .unwrap(),
            );
            if cs != clip.state.step {
                return Err(format!("{what}: clip step {cs}, core {}", clip.state.step));
            }
        }
    }
    Ok(compared)
}

/// The in-place multi-level combine of `adamant_clip_tensor_sums` (as used by Adam-mini's
/// block update) on a tensor of more than 4096 tiles, without its data: the partials are
/// uploaded directly and compared with `reduce::combine`.
pub fn combine_levels_case<B: Backend + ?Sized>(
    b: &mut B,
    partials: usize,
    seed: u64,
) -> Result<usize, String> {
    let mut rng = Rng(seed);
    let mut p = values_with::<f32>(&mut rng, partials, true, true);
    tame(&mut p);
    let out = put(b, &to_bytes(&p), 0)?;
    let sums = put(b, &[0u8; 4], 0)?;
    let e = ReduceEntry {
        x: 0,
        n: partials as u64 * args::TILE,
        out,
        tile_start: 0,
    };
    b.launch(
        "clip",
        args::CLIP_TENSOR_SUMS_ENTRY,
        ops::shape_for(1),
        &[
            ParamValue::U64(0),
            ParamValue::from_struct(8, e.to_bytes()),
            ParamValue::U32(1),
            ParamValue::U64(sums),
        ],
    )
    .map_err(|e| e.to_string())?;
    let got = get(b, sums, 1, 4)?[0];
    let want = canonicalize_f32(reduce::combine(&p)).to_bits();
    if got != want {
        return Err(format!(
            "combine of {partials} partials: device {got:#x} core {want:#x}"
        ));
    }
    Ok(partials)
}

/// The clip's per-tile partials alone (`adamant_clip_sumsq_<grad>` against
/// `clip::tensor_sum_sq_partials`), on `tiles` full tiles of values of one magnitude in
/// [0.5, 1.5) divided by a loss scale (odd `seed`: only each lane's first two values
/// nonzero): every lane's accumulation order and rounding reaches
/// the tile results, which are compared before any combine can absorb a difference.
pub fn clip_partials_case<B: Backend + ?Sized, G: Element>(
    b: &mut B,
    tiles: usize,
    seed: u64,
) -> Result<usize, String> {
    let mut rng = Rng(seed);
    let n = tiles * reduce::TILE;
    // Odd seeds keep only the first two values of every lane (zeros add exactly), so the
    // rounding of the lanes' first additions is not buried under fourteen more.
    let head = seed % 2 == 1;
    let g: Vec<G> = (0..n)
        .map(|j| {
            let sign = if rng.next() & 1 == 0 { 1.0 } else { -1.0 };
            let v = G::narrow(sign * (0.5 + rng.unit()));
            if head && j % reduce::TILE >= 2 * reduce::LANES {
                G::from_bits_u32(0)
            } else {
                v
            }
        })
        .collect();
    let x = put(b, &to_bytes(&g), 0)?;
    let out = put(b, &vec![0u8; 4 * tiles], 0)?;
    let scale = 3.0f32;
    let gs = put(b, &scale.to_le_bytes(), 0)?;
    let e = ReduceEntry {
        x,
        n: n as u64,
        out,
        tile_start: 0,
    };
    b.launch(
        "clip",
        args::clip_sumsq_entry(G::DTYPE),
        ops::shape_for(tiles as u64),
        &[
            ParamValue::U64(0),
            ParamValue::from_struct(8, e.to_bytes()),
            ParamValue::U32(1),
            ParamValue::U64(tiles as u64),
            ParamValue::U64(gs),
        ],
    )
    .map_err(|e| e.to_string())?;
    let mut want = vec![0f32; tiles];
    tensor_sum_sq_partials(&g, scale, &mut want).map_err(|e| format!("{e:?}"))?;
    let got = get(b, out, tiles, 4)?;
    for (i, (d, w)) in got.iter().zip(&want).enumerate() {
        if *d != w.to_bits() {
            return Err(format!(
                "clip partials {} tile {i}: device {d:#x} core {:#x}",
                G::DTYPE,
                w.to_bits()
            ));
        }
    }
    Ok(n)
}

/// Clipping: global-norm and AdaGC (per tensor, global) over five steps each, for every
/// gradient dtype, plus the multi-level combine. Returns (cases, values compared).
pub fn clip_matrix<B: Backend + ?Sized>(b: &mut B) -> Result<(usize, usize), String> {
    let sizes = [300usize, 4096 + 77, 0, 31];
    let adagc = AdaGcConfig {
        t_start: 2,
        max_norm: 2.0,
        ..AdaGcConfig::default()
    };
    let modes = [
        None,
        Some(adagc),
        Some(AdaGcConfig {
            mode: AdaGcMode::Global,
            ..adagc
        }),
    ];
    let (mut cases, mut n) = (0, 0);
    for (k, mode) in modes.into_iter().enumerate() {
        let gs = if k == 1 { Some(64.0) } else { None };
        n += clip_case::<B, f32>(b, &sizes, mode, gs, 1 + k as u64)?;
        n += clip_case::<B, bf16>(b, &sizes, mode, gs, 11 + k as u64)?;
        n += clip_case::<B, f16>(b, &sizes[..1], mode, gs, 21 + k as u64)?;
        cases += 3;
    }
    n += combine_levels_case(b, 4096 * 2 + 5, 99)?;
    n += clip_partials_case::<B, f32>(b, 32, 4)?;
    n += clip_partials_case::<B, f32>(b, 32, 5)?;
    n += clip_partials_case::<B, bf16>(b, 8, 6)?;
    n += clip_partials_case::<B, f16>(b, 8, 7)?;
    cases += 5;
    Ok((cases, n))
}
