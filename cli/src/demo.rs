//! `adamant demo`: what adamant does, in two seconds.
//!
//! Trains the small MLP of [`crate::mlp`] on its synthetic dataset with each optimizer row
//! (warm-up + cosine learning rate from `adamant_core::schedule`), and prints per row the
//! loss at several steps, the optimizer-state bytes, and a hash of the final parameter bits.
//! Then it shows a loss-scale overflow skipping a step without writing anything, bf16
//! parameters with and without stochastic rounding, and a gradient spike (a few steps with
//! gradients x100) hitting AdamW without clipping, with global-norm clipping and with AdaGC.
//!
//! Adam-mini's blocks come from the official name rules applied to the MLP's tensor names
//! ([`crate::mlp::TENSOR_NAMES`]); AdaGC and global clipping reduce the per-tensor norms first
//! and pass each tensor's coefficient into AdamW's own pass ([`ClippedAdamW`]).
//!
//! Every number is computed with fixed-order f32 arithmetic and software `tanhf/expf/logf`,
//! and every optimizer step follows adamant's numeric contract, so the output is the same on
//! every run and every machine.
//!
//! ## Adding a row
//! Implement [`Trainer`] for your optimizer (it owns its state buffers and steps all four
//! tensors of an [`Mlp`] as one model: `begin` over every gradient, the rule's slice
//! function on each tensor, `commit`), then append a [`Row`] to [`ROWS`] with a name, a peak
//! learning rate and a constructor. The table, JSON output and tests pick it up.

use crate::mlp::{Dataset, Grads, Mlp, HIDDEN, TENSOR_NAMES, TENSOR_SHAPES};
use adamant_core::clip::{global_sum_sq, norm, tensor_sum_sq, AdaGc, AdaGcConfig, GlobalNormClip};
use adamant_core::partition::{partition, BlockRule, ModelDims, NameRules, Param, ParamBlocks};
use adamant_core::rules::adam::adam_slice;
use adamant_core::rules::adam_mini::{apply_tensor, check_tensor, Path};
use adamant_core::rules::lion::lion_slice;
use adamant_core::rules::sgd::sgd_slice;
use adamant_core::scalars::LibmSqrt;
use adamant_core::schedule::Schedule;
use adamant_core::{
    bf16, f16, Adam, AdamConfig, AdamMini, AdamMiniConfig, Begin, BlockLayout, Element, Lion,
    LionConfig, Sgd, SgdConfig, StateElement, StepError, StepOptions, StepOutcome,
    NUMERIC_CONTRACT_VERSION,
};
use std::fmt::Write as _;

/// Examples in the synthetic dataset.
pub const EXAMPLES: usize = 1024;
/// Minibatch size.
pub const BATCH: usize = 64;
/// Default number of steps.
pub const DEFAULT_STEPS: u64 = 300;
/// `max_norm` of global-norm clipping (the usual LLM value, and AdaGC's warm-up threshold).
pub const MAX_NORM: f64 = 1.0;
/// AdaGC's warm-up (`T_start`), shortened from the official 100 for runs of a few hundred steps.
pub const ADAGC_T_START: u64 = 20;
const DATA_SEED: u64 = 0xDA7A;
const MODEL_SEED: u64 = 0x1417;

/// An optimizer that steps every tensor of an [`Mlp`] as one model and owns its state.
pub trait Trainer<P: Element = f32> {
    /// One step: decide (skip on `found_inf` / non-finite gradients when checking), update
    /// every tensor, record. Gradients may be in any storage type through [`Trainer::step_g`];
    /// this is the f32 case.
    fn step(
        &mut self,
        model: &mut Mlp<P>,
        grads: &Grads,
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        let g = grads.tensors();
        self.step_g(model, [g[0], g[1], g[2], g[3]], opts)
    }

    /// One step with f32 gradient tensors in model order.
    fn step_g(
        &mut self,
        model: &mut Mlp<P>,
        grads: [&[f32]; 4],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError>;

    /// Bytes of per-element optimizer state held for the model.
    fn state_bytes(&self) -> usize;

    /// Steps applied so far.
    fn steps_applied(&self) -> u64;
}

/// Global index of each tensor's first element, so stochastic rounding keys every element
/// of the model differently.
fn offsets<P: Element>(model: &Mlp<P>) -> [usize; 4] {
    let t = model.tensors();
    [
        0,
        t[0].len(),
        t[0].len() + t[1].len(),
        t[0].len() + t[1].len() + t[2].len(),
    ]
}

/// Adam/AdamW with states in `S`.
pub struct AdamTrainer<S: StateElement> {
    /// The optimizer value (hyper-parameters and step counter).
    pub opt: Adam,
    exp_avg: [Vec<S>; 4],
    exp_avg_sq: [Vec<S>; 4],
}

impl<S: StateElement> AdamTrainer<S> {
    /// Zero states shaped like `model`.
    pub fn new<P: Element>(config: AdamConfig, model: &Mlp<P>) -> AdamTrainer<S> {
        let zeros = || model.tensors().map(|t| vec![S::narrow(0.0); t.len()]);
        AdamTrainer {
            opt: Adam::new(config).expect("demo AdamConfig is valid"),
            exp_avg: zeros(),
            exp_avg_sq: zeros(),
        }
    }
}

impl<S: StateElement> AdamTrainer<S> {
    /// One step; with `clip_coefs`, tensor `i`'s gradient is multiplied by `clip_coefs[i]`
    /// inside the update (`plan.prep.clip_coef`), replacing `opts.clip_coef`.
    pub fn step_clipped<P: Element>(
        &mut self,
        model: &mut Mlp<P>,
        grads: [&[f32]; 4],
        opts: &StepOptions,
        clip_coefs: Option<[f32; 4]>,
    ) -> Result<StepOutcome, StepError> {
        let off = offsets(model);
        match self.opt.begin(opts, grads)? {
            Begin::Skip(r) => Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => {
                for (i, p) in model.tensors_mut().into_iter().enumerate() {
                    let mut plan_i = adamant_core::Plan {
                        sr: plan.sr.map(|s| s.offset_by(off[i])),
                        ..plan
                    };
                    if let Some(c) = clip_coefs {
                        plan_i.prep.clip_coef = c[i];
                    }
                    adam_slice::<P, f32, S, LibmSqrt>(
                        p,
                        grads[i],
                        &mut self.exp_avg[i],
                        &mut self.exp_avg_sq[i],
                        &plan_i,
                    );
                }
                self.opt.commit(&plan);
                Ok(StepOutcome::Applied { step: plan.step })
            }
        }
    }
}

impl<P: Element, S: StateElement> Trainer<P> for AdamTrainer<S> {
    fn step_g(
        &mut self,
        model: &mut Mlp<P>,
        grads: [&[f32]; 4],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        self.step_clipped(model, grads, opts, None)
    }
    fn state_bytes(&self) -> usize {
        self.exp_avg
            .iter()
            .chain(&self.exp_avg_sq)
            .map(|b| b.len())
            .sum::<usize>()
            * S::DTYPE.size()
    }
    fn steps_applied(&self) -> u64 {
        self.opt.state.step
    }
}

/// SGD (momentum buffer in f32 when momentum is on).
pub struct SgdTrainer {
    /// The optimizer value.
    pub opt: Sgd,
    momentum_buffer: [Vec<f32>; 4],
}

impl SgdTrainer {
    /// Buffers shaped like `model` (empty without momentum).
    pub fn new<P: Element>(config: SgdConfig, model: &Mlp<P>) -> SgdTrainer {
        let opt = Sgd::new(config).expect("demo SgdConfig is valid");
        SgdTrainer {
            momentum_buffer: model
                .tensors()
                .map(|t| vec![0.0; opt.momentum_buffer_len(t.len())]),
            opt,
        }
    }
}

impl<P: Element> Trainer<P> for SgdTrainer {
    fn step_g(
        &mut self,
        model: &mut Mlp<P>,
        grads: [&[f32]; 4],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        let off = offsets(model);
        match self.opt.begin(opts, grads)? {
            Begin::Skip(r) => Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => {
                for (i, p) in model.tensors_mut().into_iter().enumerate() {
                    let plan_i = adamant_core::Plan {
                        sr: plan.sr.map(|s| s.offset_by(off[i])),
                        ..plan
                    };
                    sgd_slice(p, grads[i], &mut self.momentum_buffer[i], &plan_i);
                }
                self.opt.commit(&plan);
                Ok(StepOutcome::Applied { step: plan.step })
            }
        }
    }
    fn state_bytes(&self) -> usize {
        self.momentum_buffer.iter().map(|b| b.len() * 4).sum()
    }
    fn steps_applied(&self) -> u64 {
        self.opt.state.step
    }
}

/// Lion (momentum in f32).
pub struct LionTrainer {
    /// The optimizer value.
    pub opt: Lion,
    exp_avg: [Vec<f32>; 4],
}

impl LionTrainer {
    /// Zero momentum shaped like `model`.
    pub fn new<P: Element>(config: LionConfig, model: &Mlp<P>) -> LionTrainer {
        LionTrainer {
            opt: Lion::new(config).expect("demo LionConfig is valid"),
            exp_avg: model.tensors().map(|t| vec![0.0; t.len()]),
        }
    }
}

impl<P: Element> Trainer<P> for LionTrainer {
    fn step_g(
        &mut self,
        model: &mut Mlp<P>,
        grads: [&[f32]; 4],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        let off = offsets(model);
        match self.opt.begin(opts, grads)? {
            Begin::Skip(r) => Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => {
                for (i, p) in model.tensors_mut().into_iter().enumerate() {
                    let plan_i = adamant_core::Plan {
                        sr: plan.sr.map(|s| s.offset_by(off[i])),
                        ..plan
                    };
                    lion_slice(p, grads[i], &mut self.exp_avg[i], &plan_i);
                }
                self.opt.commit(&plan);
                Ok(StepOutcome::Applied { step: plan.step })
            }
        }
    }
    fn state_bytes(&self) -> usize {
        self.exp_avg.iter().map(|b| b.len() * 4).sum()
    }
    fn steps_applied(&self) -> u64 {
        self.opt.state.step
    }
}

/// Adam-mini: one second moment per block. The blocks come from the official name rules
/// ([`adamant_core::partition`]) applied to [`TENSOR_NAMES`]: the weights match `mlp` and get
/// per-row blocks (one `exp_avg_sq` per output neuron), the biases match `bias` and get
/// per-element AdamW without weight decay.
pub struct AdamMiniTrainer {
    /// The optimizer value.
    pub opt: AdamMini,
    /// The partition's decision per tensor, in model order.
    pub blocks: [ParamBlocks<'static>; 4],
    exp_avg: [Vec<f32>; 4],
    exp_avg_sq: [Vec<f32>; 4],
}

impl AdamMiniTrainer {
    /// Partition the MLP by name and allocate zero states.
    pub fn new<P: Element>(config: AdamMiniConfig, model: &Mlp<P>) -> AdamMiniTrainer {
        let params = [0, 1, 2, 3].map(|i| Param {
            name: TENSOR_NAMES[i],
            shape: TENSOR_SHAPES[i],
        });
        // No attention here, so the head rule's dims are never used; they only need to be valid.
        let dims = ModelDims {
            dim: HIDDEN,
            n_heads: 1,
            n_kv_heads: 1,
        };
        let placeholder = ParamBlocks {
            rule: BlockRule::Tensor,
            layout: BlockLayout::Tensor,
            weight_decay: false,
            numel: 0,
            state_len: 0,
        };
        let mut blocks = [placeholder; 4];
        partition(&params, &dims, &NameRules::OFFICIAL, &[], &mut blocks)
            .expect("the MLP's shapes tile by the official rules");
        let t = model.tensors();
        AdamMiniTrainer {
            opt: AdamMini::new(config).expect("demo AdamMiniConfig is valid"),
            exp_avg: t.map(|t| vec![0.0; t.len()]),
            exp_avg_sq: blocks.map(|b| vec![0.0; b.state_len]),
            blocks,
        }
    }
}

impl<P: Element> Trainer<P> for AdamMiniTrainer {
    fn step_g(
        &mut self,
        model: &mut Mlp<P>,
        grads: [&[f32]; 4],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        let off = offsets(model);
        // Every tensor checked before any is written, so an error leaves the model untouched.
        for (i, p) in model.tensors().into_iter().enumerate() {
            check_tensor(
                p.len(),
                grads[i].len(),
                self.exp_avg[i].len(),
                self.exp_avg_sq[i].len(),
                &self.blocks[i].layout,
            )?;
        }
        match self.opt.begin(opts, grads)? {
            Begin::Skip(r) => Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => {
                for (i, p) in model.tensors_mut().into_iter().enumerate() {
                    let plan_i = adamant_core::Plan {
                        sr: plan.sr.map(|s| s.offset_by(off[i])),
                        ..plan
                    };
                    apply_tensor(
                        p,
                        grads[i],
                        &mut self.exp_avg[i],
                        &mut self.exp_avg_sq[i],
                        &self.blocks[i].layout,
                        self.blocks[i].weight_decay,
                        &plan_i,
                        Path::Fast,
                    )?;
                }
                self.opt.commit(&plan);
                Ok(StepOutcome::Applied { step: plan.step })
            }
        }
    }
    fn state_bytes(&self) -> usize {
        self.exp_avg
            .iter()
            .chain(&self.exp_avg_sq)
            .map(|b| b.len() * 4)
            .sum()
    }
    fn steps_applied(&self) -> u64 {
        self.opt.state.step
    }
}

/// A gradient clipper for [`ClippedAdamW`].
#[derive(Clone, Debug)]
pub enum Clip {
    /// No clipping (the norms are still measured, for the report).
    Off,
    /// PyTorch `clip_grad_norm_`: one coefficient from the global norm.
    Global(GlobalNormClip),
    /// AdaGC: one adaptive threshold per tensor (`gamma`, caller-owned state).
    AdaGc {
        /// The clipper (hyper-parameters and step counter).
        clip: AdaGc,
        /// One threshold per tensor.
        gamma: [f32; 4],
    },
}

/// AdamW (f32 states) with gradient clipping: the per-tensor sums of squares are reduced
/// first (read-only), the clipper turns them into one coefficient per tensor, and AdamW's own
/// pass multiplies each gradient by its coefficient. AdaGC's thresholds are committed only
/// when the step is applied.
pub struct ClippedAdamW {
    /// The optimizer.
    pub adamw: AdamTrainer<f32>,
    /// The clipper.
    pub clip: Clip,
    /// Global norm of the last step's (unscaled) gradient.
    pub last_norm: f32,
    /// Clip coefficients of the last step, per tensor.
    pub last_coefs: [f32; 4],
}

impl ClippedAdamW {
    /// AdamW (PyTorch defaults) with `clip`.
    pub fn new<P: Element>(clip: Clip, model: &Mlp<P>) -> ClippedAdamW {
        ClippedAdamW {
            adamw: AdamTrainer::new(AdamConfig::adamw(), model),
            clip,
            last_norm: 0.0,
            last_coefs: [1.0; 4],
        }
    }

    /// Global-norm clipping to `max_norm`.
    pub fn global<P: Element>(max_norm: f64, model: &Mlp<P>) -> ClippedAdamW {
        let clip = GlobalNormClip::new(max_norm).expect("demo max_norm is valid");
        ClippedAdamW::new(Clip::Global(clip), model)
    }

    /// Per-tensor AdaGC with the official defaults except a warm-up of `t_start` steps.
    pub fn adagc<P: Element>(t_start: u64, model: &Mlp<P>) -> ClippedAdamW {
        let config = AdaGcConfig {
            t_start,
            ..AdaGcConfig::default()
        };
        let clip = AdaGc::new(config).expect("demo AdaGcConfig is valid");
        ClippedAdamW::new(
            Clip::AdaGc {
                clip,
                gamma: [0.0; 4],
            },
            model,
        )
    }
}

impl<P: Element> Trainer<P> for ClippedAdamW {
    fn step_g(
        &mut self,
        model: &mut Mlp<P>,
        grads: [&[f32]; 4],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        // Norms of the unscaled gradients (the loss scale divided out first).
        let grad_scale = opts.grad_scale.unwrap_or(1.0);
        let sums = grads.map(|g| tensor_sum_sq(g, grad_scale));
        match &mut self.clip {
            Clip::Off => {
                self.last_norm = norm(global_sum_sq(&sums));
                self.last_coefs = [1.0; 4];
                self.adamw.step_clipped(model, grads, opts, None)
            }
            Clip::Global(c) => {
                let (norm, coef) = c.coefficient(&sums);
                self.last_norm = norm;
                self.last_coefs = [coef; 4];
                self.adamw.step_clipped(model, grads, opts, Some([coef; 4]))
            }
            Clip::AdaGc { clip, gamma } => {
                let mut coefs = [1.0f32; 4];
                let plan = clip.plan(&sums, gamma, &mut coefs)?;
                self.last_norm = plan.global_norm;
                self.last_coefs = coefs;
                let out = self.adamw.step_clipped(model, grads, opts, Some(coefs))?;
                if out.applied() {
                    clip.commit(&sums, gamma, &plan)?;
                }
                Ok(out)
            }
        }
    }
    fn state_bytes(&self) -> usize {
        let gamma = match self.clip {
            Clip::Off | Clip::Global(_) => 0,
            Clip::AdaGc { .. } => 4 * 4,
        };
        Trainer::<P>::state_bytes(&self.adamw) + gamma
    }
    fn steps_applied(&self) -> u64 {
        Trainer::<P>::steps_applied(&self.adamw)
    }
}

/// One line of the demo's table.
pub struct Row {
    /// Name printed in the table.
    pub name: &'static str,
    /// Peak learning rate of the warm-up cosine schedule.
    pub peak_lr: f64,
    /// Build the trainer for an f32 model.
    pub make: fn(&Mlp) -> Box<dyn Trainer>,
}

/// The optimizer rows, in table order. Append here to add one.
pub const ROWS: &[Row] = &[
    Row {
        name: "AdamW",
        peak_lr: 2e-2,
        make: |m| Box::new(AdamTrainer::<f32>::new(AdamConfig::adamw(), m)),
    },
    Row {
        name: "AdamW (bf16 states)",
        peak_lr: 2e-2,
        make: |m| Box::new(AdamTrainer::<bf16>::new(AdamConfig::adamw(), m)),
    },
    Row {
        name: "Adam",
        peak_lr: 2e-2,
        make: |m| Box::new(AdamTrainer::<f32>::new(AdamConfig::adam(), m)),
    },
    Row {
        name: "SGD (momentum 0.9)",
        peak_lr: 0.2,
        make: |m| {
            let mut c = SgdConfig::new(0.2);
            c.momentum = 0.9;
            Box::new(SgdTrainer::new(c, m))
        },
    },
    Row {
        name: "Adam-mini",
        peak_lr: 2e-2,
        make: |m| {
            let c = AdamMiniConfig {
                weight_decay: 1e-2,
                ..AdamMiniConfig::default()
            };
            Box::new(AdamMiniTrainer::new(c, m))
        },
    },
    Row {
        name: "AdamW + AdaGC",
        peak_lr: 2e-2,
        make: |m| Box::new(ClippedAdamW::adagc(ADAGC_T_START, m)),
    },
    Row {
        name: "Lion",
        peak_lr: 2e-3,
        make: |m| {
            let c = LionConfig {
                lr: 2e-3,
                weight_decay: 0.1,
                ..LionConfig::official()
            };
            Box::new(LionTrainer::new(c, m))
        },
    },
];

/// The minibatch of step `k` (0-based): a fixed interleaved walk through the dataset.
pub fn batch(k: u64) -> Vec<usize> {
    // 389 is prime and coprime with EXAMPLES, so consecutive batches visit every example.
    (0..BATCH)
        .map(|b| ((k as usize * BATCH + b) * 389) % EXAMPLES)
        .collect()
}

/// Steps at which the loss is reported: 0 and five points up to `steps`.
pub fn report_points(steps: u64) -> Vec<u64> {
    let mut v: Vec<u64> = [0, 1, 2, 3, 4, 6].iter().map(|&i| steps * i / 6).collect();
    v.dedup();
    v
}

/// Result of training one row.
#[derive(Clone, Debug, PartialEq)]
pub struct RowResult {
    /// Row name.
    pub name: String,
    /// Peak learning rate.
    pub peak_lr: f64,
    /// `(step, full-dataset loss)` at the report points.
    pub losses: Vec<(u64, f32)>,
    /// Bytes of optimizer state.
    pub state_bytes: usize,
    /// FNV-1a 64 of the final parameter bits.
    pub hash: u64,
}

/// Train `model` with `trainer` for `steps` steps under a warm-up cosine schedule
/// (10% warm-up from 0, decay to 10% of the peak), reporting the full-dataset loss.
pub fn train<P: Element>(
    trainer: &mut dyn Trainer<P>,
    model: &mut Mlp<P>,
    data: &Dataset,
    steps: u64,
    peak_lr: f64,
) -> Result<Vec<(u64, f32)>, StepError> {
    let schedule = Schedule::warmup_cosine(0.0, peak_lr, steps / 10, steps, peak_lr * 0.1);
    let points = report_points(steps);
    let mut losses = Vec::new();
    for k in 0..steps {
        if points.contains(&k) {
            losses.push((k, model.full_loss(data)));
        }
        let (_, g) = model.loss_and_grads(data, &batch(k));
        let out = trainer.step(model, &g, &StepOptions::new(schedule.lr_at(k)))?;
        debug_assert!(out.applied());
    }
    losses.push((steps, model.full_loss(data)));
    Ok(losses)
}

/// Train every row of [`ROWS`].
pub fn run_rows(steps: u64) -> Result<Vec<RowResult>, StepError> {
    let data = Dataset::synthetic(EXAMPLES, DATA_SEED);
    ROWS.iter()
        .map(|row| {
            let mut model: Mlp = Mlp::init(MODEL_SEED);
            let mut trainer = (row.make)(&model);
            let losses = train(trainer.as_mut(), &mut model, &data, steps, row.peak_lr)?;
            Ok(RowResult {
                name: row.name.to_owned(),
                peak_lr: row.peak_lr,
                losses,
                state_bytes: trainer.state_bytes(),
                hash: model.hash(),
            })
        })
        .collect()
}

/// What the loss-scale overflow demonstration observed.
#[derive(Clone, Debug, PartialEq)]
pub struct SkipDemo {
    /// Loss scale that overflowed f16.
    pub big_scale: f32,
    /// Outcome of the step with that scale.
    pub skipped: StepOutcome,
    /// Parameter hash before and after the skipped step.
    pub hash_before: u64,
    /// Parameter hash after the skipped step.
    pub hash_after_skip: u64,
    /// Step counter before and after the skipped step.
    pub steps_before: u64,
    /// Step counter after the skipped step.
    pub steps_after_skip: u64,
    /// Retried loss scale.
    pub small_scale: f32,
    /// Outcome of the retry.
    pub retried: StepOutcome,
    /// Parameter hash after the retry.
    pub hash_after_retry: u64,
}

/// One AdamW step on f16 gradients of a loss scaled by `scale` (as a mixed-precision trainer
/// produces them), with `grad_scale = scale` so the gradients are checked and unscaled
/// inside the step. Adam's `begin`/slice/`commit` is generic in the gradient type.
fn scaled_f16_step(
    t: &mut AdamTrainer<f32>,
    model: &mut Mlp,
    g: &Grads,
    scale: f32,
) -> Result<StepOutcome, StepError> {
    let g16: [Vec<f16>; 4] = g.scaled(scale);
    let opts = StepOptions {
        grad_scale: Some(scale),
        ..StepOptions::new(1e-3)
    };
    match t.opt.begin(&opts, g16.iter().map(|v| &v[..]))? {
        Begin::Skip(r) => Ok(StepOutcome::Skipped(r)),
        Begin::Apply(plan) => {
            for (i, p) in model.tensors_mut().into_iter().enumerate() {
                adam_slice::<f32, f16, f32, LibmSqrt>(
                    p,
                    &g16[i],
                    &mut t.exp_avg[i],
                    &mut t.exp_avg_sq[i],
                    &plan,
                );
            }
            t.opt.commit(&plan);
            Ok(StepOutcome::Applied { step: plan.step })
        }
    }
}

/// Dynamic loss scaling's overflow case: after a few AdamW steps, gradients of the loss
/// scaled by 2^24 overflow f16 to inf, so the step with `grad_scale = 2^24` is skipped and
/// writes nothing (parameter hash and step counter unchanged); the retry at 2^10 applies.
pub fn skip_demo() -> Result<SkipDemo, StepError> {
    const WARM: u64 = 20;
    let data = Dataset::synthetic(EXAMPLES, DATA_SEED);
    let mut model: Mlp = Mlp::init(MODEL_SEED);
    let mut t = AdamTrainer::<f32>::new(AdamConfig::adamw(), &model);
    train(&mut t, &mut model, &data, WARM, 1e-2)?;
    let (_, g) = model.loss_and_grads(&data, &batch(WARM));
    let (big, small) = (16_777_216.0f32, 1024.0f32);

    let hash_before = model.hash();
    let steps_before = Trainer::<f32>::steps_applied(&t);
    let skipped = scaled_f16_step(&mut t, &mut model, &g, big)?;
    let hash_after_skip = model.hash();
    let steps_after_skip = Trainer::<f32>::steps_applied(&t);
    let retried = scaled_f16_step(&mut t, &mut model, &g, small)?;
    Ok(SkipDemo {
        big_scale: big,
        skipped,
        hash_before,
        hash_after_skip,
        steps_before,
        steps_after_skip,
        small_scale: small,
        retried,
        hash_after_retry: model.hash(),
    })
}

/// bf16 parameters trained with AdamW, rounding to nearest vs stochastically.
#[derive(Clone, Debug, PartialEq)]
pub struct Bf16Demo {
    /// Peak learning rate used.
    pub peak_lr: f64,
    /// Final full-dataset loss with round-to-nearest-even stores.
    pub loss_nearest: f32,
    /// Final loss with stochastic rounding.
    pub loss_stochastic: f32,
    /// Final loss of the f32-parameter AdamW run with the same schedule, for comparison.
    pub loss_f32: f32,
    /// Parameter hash (bf16 bits) of the stochastic-rounding run.
    pub hash_stochastic: u64,
    /// Bytes of parameters in bf16 (half of f32).
    pub param_bytes: usize,
}

/// Train bf16 parameters (f32 states) with AdamW at a small learning rate, where many updates
/// are below half a bf16 unit in the last place: nearest rounding drops them, stochastic
/// rounding keeps them in expectation. The random bits are a pure function of
/// (seed, step, element index), so the run is as reproducible as the others.
pub fn bf16_demo(steps: u64) -> Result<Bf16Demo, StepError> {
    let peak_lr = 1e-3;
    let data = Dataset::synthetic(EXAMPLES, DATA_SEED);
    let run = |seed: Option<u64>| -> Result<(f32, u64, usize), StepError> {
        let mut model: Mlp<bf16> = Mlp::init(MODEL_SEED);
        let config = AdamConfig {
            stochastic_rounding_seed: seed,
            ..AdamConfig::adamw()
        };
        let mut t = AdamTrainer::<f32>::new(config, &model);
        let losses = train(&mut t, &mut model, &data, steps, peak_lr)?;
        Ok((losses.last().unwrap().1, model.hash(), model.len() * 2))
    };
    let (loss_nearest, _, param_bytes) = run(None)?;
    let (loss_stochastic, hash_stochastic, _) = run(Some(0x5EED))?;
    let mut model: Mlp = Mlp::init(MODEL_SEED);
    let mut t = AdamTrainer::<f32>::new(AdamConfig::adamw(), &model);
    let loss_f32 = train(&mut t, &mut model, &data, steps, peak_lr)?
        .last()
        .unwrap()
        .1;
    Ok(Bf16Demo {
        peak_lr,
        loss_nearest,
        loss_stochastic,
        loss_f32,
        hash_stochastic,
        param_bytes,
    })
}

/// Steps of each spike-scenario run.
pub const SPIKE_RUN_STEPS: u64 = 150;
/// Peak learning rate of the spike scenario (warm-up cosine over [`SPIKE_RUN_STEPS`]).
pub const SPIKE_PEAK_LR: f64 = 5e-2;
/// Steps whose gradients are multiplied by [`SPIKE_FACTOR`] (a bad batch).
pub const SPIKE_STEPS: std::ops::Range<u64> = 80..83;
/// The bad batch's gradient multiplier.
pub const SPIKE_FACTOR: f32 = 100.0;
/// Steps at which the spike scenario records the full-dataset loss (before the step's
/// update): every step around the spike, then sparser (each costs a pass over the dataset).
pub const SPIKE_WINDOW: [u64; 21] = [
    78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 96, 100, 105, 110,
];

/// One run of the spike scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeRun {
    /// Clipper name.
    pub name: &'static str,
    /// `(step, full-dataset loss before that step's update)` at the steps of [`SPIKE_WINDOW`].
    pub losses: Vec<(u64, f32)>,
    /// Global gradient norm of the last step before the spike (the usual size).
    pub usual_norm: f32,
    /// Global norm of the first spiked gradient.
    pub spike_norm: f32,
    /// Clip coefficients of the first spiked step, per tensor.
    pub spike_coefs: [f32; 4],
    /// Loss just before the first spiked step.
    pub before: f32,
    /// Highest loss after the first spiked step, and its step.
    pub peak: (u64, f32),
    /// Loss at the end of the run.
    pub final_loss: f32,
}

impl SpikeRun {
    /// Relative loss jump `(peak - before) / before`, 0 when the loss never rises above `before`.
    pub fn jump(&self) -> f32 {
        ((self.peak.1 - self.before) / self.before).max(0.0)
    }
}

/// Train AdamW with `trainer`'s clipper for [`SPIKE_RUN_STEPS`] steps (warm-up cosine to
/// [`SPIKE_PEAK_LR`], decaying to a tenth), multiplying the gradients of [`SPIKE_STEPS`] by
/// [`SPIKE_FACTOR`], and record the loss around the spike.
pub fn spike_run(name: &'static str, mut trainer: ClippedAdamW) -> Result<SpikeRun, StepError> {
    let data = Dataset::synthetic(EXAMPLES, DATA_SEED);
    let mut model: Mlp = Mlp::init(MODEL_SEED);
    let (steps, peak_lr) = (SPIKE_RUN_STEPS, SPIKE_PEAK_LR);
    let schedule = Schedule::warmup_cosine(0.0, peak_lr, steps / 10, steps, peak_lr * 0.1);
    let mut losses = Vec::new();
    let (mut usual_norm, mut spike_norm, mut spike_coefs) = (0.0, 0.0, [1.0; 4]);
    for k in 0..steps {
        if SPIKE_WINDOW.contains(&k) {
            losses.push((k, model.full_loss(&data)));
        }
        let (_, g) = model.loss_and_grads(&data, &batch(k));
        let opts = StepOptions::new(schedule.lr_at(k));
        let out = if SPIKE_STEPS.contains(&k) {
            let s: [Vec<f32>; 4] = g.scaled(SPIKE_FACTOR);
            trainer.step_g(&mut model, [&s[0], &s[1], &s[2], &s[3]], &opts)?
        } else {
            trainer.step(&mut model, &g, &opts)?
        };
        debug_assert!(out.applied());
        if k + 1 == SPIKE_STEPS.start {
            usual_norm = trainer.last_norm;
        } else if k == SPIKE_STEPS.start {
            (spike_norm, spike_coefs) = (trainer.last_norm, trainer.last_coefs);
        }
    }
    let before = losses
        .iter()
        .find(|l| l.0 == SPIKE_STEPS.start)
        .expect("the window covers the spike")
        .1;
    let peak = losses.iter().filter(|l| l.0 > SPIKE_STEPS.start).fold(
        (0, f32::NEG_INFINITY),
        |a, &(k, l)| if l > a.1 { (k, l) } else { a },
    );
    Ok(SpikeRun {
        name,
        losses,
        usual_norm,
        spike_norm,
        spike_coefs,
        before,
        peak,
        final_loss: model.full_loss(&data),
    })
}

/// The spike scenario: the same AdamW run without clipping, with global-norm clipping to
/// [`MAX_NORM`], and with per-tensor AdaGC, each hit by the same bad batch.
#[derive(Clone, Debug, PartialEq)]
pub struct SpikeDemo {
    /// Runs in order: no clipping, global clip, AdaGC.
    pub runs: Vec<SpikeRun>,
}

impl SpikeDemo {
    /// The run named `name`.
    pub fn run(&self, name: &str) -> &SpikeRun {
        self.runs
            .iter()
            .find(|r| r.name == name)
            .expect("spike run exists")
    }
}

/// Run the spike scenario.
pub fn spike_demo() -> Result<SpikeDemo, StepError> {
    let m: Mlp = Mlp::init(MODEL_SEED);
    Ok(SpikeDemo {
        runs: vec![
            spike_run("no clipping", ClippedAdamW::new(Clip::Off, &m))?,
            spike_run("global clip", ClippedAdamW::global(MAX_NORM, &m))?,
            spike_run("AdaGC", ClippedAdamW::adagc(ADAGC_T_START, &m))?,
        ],
    })
}

/// Everything the demo computes.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Steps per row.
    pub steps: u64,
    /// Parameters in the model.
    pub params: usize,
    /// One result per row of [`ROWS`].
    pub rows: Vec<RowResult>,
    /// The skipped-step demonstration.
    pub skip: SkipDemo,
    /// The bf16 / stochastic rounding demonstration.
    pub bf16: Bf16Demo,
    /// The gradient-spike scenario.
    pub spike: SpikeDemo,
}

/// Run the whole demo.
pub fn report(steps: u64) -> Result<Report, StepError> {
    Ok(Report {
        steps,
        params: Mlp::<f32>::init(MODEL_SEED).len(),
        rows: run_rows(steps)?,
        skip: skip_demo()?,
        bf16: bf16_demo(steps)?,
        spike: spike_demo()?,
    })
}

fn outcome_text(o: &StepOutcome) -> String {
    match o {
        StepOutcome::Applied { step } => format!("applied (step counter now {step})"),
        StepOutcome::Skipped(adamant_core::SkipReason::NonFiniteGrad) => {
            "skipped: a gradient element is inf/NaN".into()
        }
        StepOutcome::Skipped(adamant_core::SkipReason::FoundInf) => {
            "skipped: found_inf was set".into()
        }
    }
}

/// The human-readable report.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "adamant demo: a 2-layer MLP (16 -> 64 -> 4, tanh, softmax cross-entropy, {} parameters)\n\
         on {EXAMPLES} synthetic examples, batch {BATCH}, {} steps, learning rate warm-up (10%) then cosine decay.\n",
        r.params, r.steps
    );
    let points: Vec<u64> = r.rows[0].losses.iter().map(|l| l.0).collect();
    let _ = write!(w, "{:<20} {:>8}", "optimizer", "peak lr");
    for p in &points {
        let _ = write!(w, " {:>8}", format!("loss@{p}"));
    }
    let _ = writeln!(w, " {:>12}  final params hash", "state bytes");
    for row in &r.rows {
        let _ = write!(w, "{:<20} {:>8}", row.name, format!("{:e}", row.peak_lr));
        for (_, l) in &row.losses {
            let _ = write!(w, " {:>8.4}", l);
        }
        let _ = writeln!(w, " {:>12}  {:016x}", row.state_bytes, row.hash);
    }
    let _ = writeln!(
        w,
        "\nThe hash is FNV-1a 64 over the bits of every final parameter. adamant's numeric contract\n\
         (version {NUMERIC_CONTRACT_VERSION}) fixes every rounding of every step, so this run prints the same hashes on every\n\
         run and machine, and adamant's CPU threads and CUDA kernels produce the same bits as this\n\
         single-threaded run. Run it twice and compare.\n"
    );
    let k = &r.skip;
    let _ = writeln!(
        w,
        "Loss-scale overflow (mixed precision): f16 gradients of the loss x {} overflow to inf.",
        k.big_scale
    );
    let _ = writeln!(
        w,
        "  AdamW step with grad_scale {}: {}; params hash {:016x} -> {:016x}, step counter {} -> {}",
        k.big_scale,
        outcome_text(&k.skipped),
        k.hash_before,
        k.hash_after_skip,
        k.steps_before,
        k.steps_after_skip
    );
    let _ = writeln!(
        w,
        "  retry with grad_scale {}: {}; params hash {:016x}\n",
        k.small_scale,
        outcome_text(&k.retried),
        k.hash_after_retry
    );
    let b = &r.bf16;
    let _ = writeln!(
        w,
        "bf16 parameters ({} bytes instead of {}), AdamW, peak lr {:e}, {} steps, final loss:",
        b.param_bytes,
        b.param_bytes * 2,
        b.peak_lr,
        r.steps
    );
    let _ = writeln!(
        w,
        "  round to nearest {:.4}   stochastic rounding {:.4} (hash {:016x})   f32 parameters {:.4}",
        b.loss_nearest, b.loss_stochastic, b.hash_stochastic, b.loss_f32
    );
    render_spike_text(w, &r.spike);
    s
}

/// Steps shown in the text table of the spike scenario (a subset of [`SPIKE_WINDOW`]).
const SPIKE_COLUMNS: [u64; 12] = [78, 80, 81, 82, 83, 84, 86, 88, 90, 96, 100, 110];

fn render_spike_text(w: &mut String, d: &SpikeDemo) {
    let last = SPIKE_STEPS.end - 1;
    let _ = writeln!(
        w,
        "\nGradient spike: AdamW, {SPIKE_RUN_STEPS} steps, peak lr {SPIKE_PEAK_LR:e}; at steps {}-{last} every gradient is\n\
         multiplied by {SPIKE_FACTOR} (a bad batch). Full-dataset loss before each step (* = spiked step):",
        SPIKE_STEPS.start
    );
    let mut line = format!("  {:<12}", "step");
    for k in SPIKE_COLUMNS {
        let mark = if SPIKE_STEPS.contains(&k) { "*" } else { " " };
        let _ = write!(line, " {:>6}{mark}", k);
    }
    let _ = writeln!(w, "{}", line.trim_end());
    for run in &d.runs {
        let mut line = format!("  {:<12}", run.name);
        for k in SPIKE_COLUMNS {
            let l = run
                .losses
                .iter()
                .find(|l| l.0 == k)
                .map_or(f32::NAN, |l| l.1);
            let _ = write!(line, " {:>6.4} ", l);
        }
        let _ = writeln!(w, "{}", line.trim_end());
    }
    let (off, global, adagc) = (d.run("no clipping"), d.run("global clip"), d.run("AdaGC"));
    let clipped = global.spike_norm * global.spike_coefs[0];
    let _ = writeln!(
        w,
        "  global clip (max_norm {MAX_NORM}) scales the spiked gradient's norm {:.1} down to {:.2}: still {:.1}x the\n  \
         usual {:.2}. AdaGC (per tensor, T_start {ADAGC_T_START}) scales each tensor by {:.4}..{:.4}, back to about\n  \
         1.04x that tensor's running norm.",
        global.spike_norm,
        clipped,
        clipped / global.usual_norm,
        global.usual_norm,
        adagc.spike_coefs.iter().fold(f32::INFINITY, |a, &c| a.min(c)),
        adagc.spike_coefs.iter().fold(0.0f32, |a, &c| a.max(c)),
    );
    let _ = writeln!(
        w,
        "  Loss before step {} -> highest loss after it:",
        SPIKE_STEPS.start
    );
    for r in [off, global, adagc] {
        let _ = writeln!(
            w,
            "    {:<12} {:.4} -> {:.4} {:>+8.1}% (step {}); final loss (step {SPIKE_RUN_STEPS}) {:.4}",
            r.name,
            r.before,
            r.peak.1,
            100.0 * r.jump(),
            r.peak.0,
            r.final_loss
        );
    }
    let verdict = if adagc.jump() < 0.5 * global.jump() {
        format!(
            "the spike shows under global clipping (+{:.1}%); AdaGC cuts the jump to {:.0}% of that",
            100.0 * global.jump(),
            100.0 * adagc.jump() / global.jump()
        )
    } else {
        "AdaGC does not cut the jump to below half of global clipping's in this run".to_owned()
    };
    let _ = writeln!(w, "  Verdict: {verdict}.");
}

/// The report as JSON (one row per line).
pub fn render_json(r: &Report) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "{{");
    let _ = writeln!(
        w,
        "  \"numeric_contract_version\": {NUMERIC_CONTRACT_VERSION},"
    );
    let _ = writeln!(w, "  \"steps\": {},", r.steps);
    let _ = writeln!(w, "  \"params\": {},", r.params);
    let _ = writeln!(w, "  \"rows\": [");
    for (i, row) in r.rows.iter().enumerate() {
        let losses: Vec<String> = row
            .losses
            .iter()
            .map(|(k, l)| format!("[{k}, {l}]"))
            .collect();
        let _ = writeln!(
            w,
            "    {{\"name\": \"{}\", \"peak_lr\": {}, \"losses\": [{}], \"state_bytes\": {}, \"hash\": \"{:016x}\"}}{}",
            row.name,
            row.peak_lr,
            losses.join(", "),
            row.state_bytes,
            row.hash,
            if i + 1 < r.rows.len() { "," } else { "" }
        );
    }
    let _ = writeln!(w, "  ],");
    let k = &r.skip;
    let _ = writeln!(
        w,
        "  \"skip\": {{\"grad_scale\": {}, \"applied\": {}, \"hash_before\": \"{:016x}\", \"hash_after\": \"{:016x}\", \"step_before\": {}, \"step_after\": {}, \"retry_grad_scale\": {}, \"retry_applied\": {}}},",
        k.big_scale,
        k.skipped.applied(),
        k.hash_before,
        k.hash_after_skip,
        k.steps_before,
        k.steps_after_skip,
        k.small_scale,
        k.retried.applied()
    );
    let b = &r.bf16;
    let _ = writeln!(
        w,
        "  \"bf16\": {{\"peak_lr\": {}, \"loss_nearest\": {}, \"loss_stochastic\": {}, \"loss_f32\": {}, \"hash_stochastic\": \"{:016x}\", \"param_bytes\": {}}},",
        b.peak_lr, b.loss_nearest, b.loss_stochastic, b.loss_f32, b.hash_stochastic, b.param_bytes
    );
    let _ = writeln!(
        w,
        "  \"spike\": {{\"steps\": {SPIKE_RUN_STEPS}, \"peak_lr\": {SPIKE_PEAK_LR}, \"spike_steps\": [{}, {}], \"factor\": {SPIKE_FACTOR}, \"max_norm\": {MAX_NORM}, \"adagc_t_start\": {ADAGC_T_START}, \"runs\": [",
        SPIKE_STEPS.start,
        SPIKE_STEPS.end - 1
    );
    for (i, run) in r.spike.runs.iter().enumerate() {
        let curve: Vec<String> = run
            .losses
            .iter()
            .map(|(k, l)| format!("[{k}, {l}]"))
            .collect();
        let coefs: Vec<String> = run.spike_coefs.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(
            w,
            "    {{\"clip\": \"{}\", \"before\": {}, \"peak_step\": {}, \"peak\": {}, \"jump\": {}, \"final_loss\": {}, \"usual_norm\": {}, \"spike_norm\": {}, \"spike_coefs\": [{}], \"curve\": [{}]}}{}",
            run.name,
            run.before,
            run.peak.0,
            run.peak.1,
            run.jump(),
            run.final_loss,
            run.usual_norm,
            run.spike_norm,
            coefs.join(", "),
            curve.join(", "),
            if i + 1 < r.spike.runs.len() { "," } else { "" }
        );
    }
    let _ = writeln!(w, "  ]}}");
    let _ = writeln!(w, "}}");
    s
}

const USAGE: &str = "usage: adamant demo [--steps N] [--json]";

/// `adamant demo [--steps N] [--json]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let mut steps = DEFAULT_STEPS;
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--steps" => {
                let v = it
                    .next()
                    .ok_or_else(|| format!("--steps needs a value\n{USAGE}"))?;
                steps = v
                    .parse()
                    .map_err(|_| format!("--steps: not a number: {v}\n{USAGE}"))?;
                if steps < 6 {
                    return Err(format!("--steps must be at least 6\n{USAGE}"));
                }
            }
            "--json" => json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    let r = report(steps).map_err(|e| format!("demo step failed: {e}"))?;
    if json {
        print!("{}", render_json(&r));
    } else {
        print!("{}", render_text(&r));
        // LoCo row (issue 8): data-parallel workers exchanging f32, plain 4-bit and LoCo
        // 4-bit gradients; `adamant dp-sim` is the full version.
        let mut dp = String::new();
        crate::dp_sim::demo_section(&mut dp)?;
        print!("\n{dp}");
    }
    Ok(())
}
