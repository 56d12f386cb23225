//! `adamant demo`: what adamant does, in two seconds.
//!
//! Trains the small MLP of [`crate::mlp`] on its synthetic dataset with each optimizer row
//! (warm-up + cosine learning rate from `adamant_core::schedule`), and prints per row the
//! loss at several steps, the optimizer-state bytes, and a hash of the final parameter bits.
//! Then it shows a loss-scale overflow skipping a step without writing anything, and bf16
//! parameters with and without stochastic rounding.
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

use crate::mlp::{Dataset, Grads, Mlp};
use adamant_core::rules::adam::adam_slice;
use adamant_core::rules::lion::lion_slice;
use adamant_core::rules::sgd::sgd_slice;
use adamant_core::scalars::LibmSqrt;
use adamant_core::schedule::Schedule;
use adamant_core::{
    bf16, f16, Adam, AdamConfig, Begin, Element, Lion, LionConfig, Sgd, SgdConfig, StateElement,
    StepError, StepOptions, StepOutcome, NUMERIC_CONTRACT_VERSION,
};
use std::fmt::Write as _;

/// Examples in the synthetic dataset.
pub const EXAMPLES: usize = 1024;
/// Minibatch size.
pub const BATCH: usize = 64;
/// Default number of steps.
pub const DEFAULT_STEPS: u64 = 300;
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

impl<P: Element, S: StateElement> Trainer<P> for AdamTrainer<S> {
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
}

/// Run the whole demo.
pub fn report(steps: u64) -> Result<Report, StepError> {
    Ok(Report {
        steps,
        params: Mlp::<f32>::init(MODEL_SEED).len(),
        rows: run_rows(steps)?,
        skip: skip_demo()?,
        bf16: bf16_demo(steps)?,
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
    s
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
        "  \"bf16\": {{\"peak_lr\": {}, \"loss_nearest\": {}, \"loss_stochastic\": {}, \"loss_f32\": {}, \"hash_stochastic\": \"{:016x}\", \"param_bytes\": {}}}",
        b.peak_lr, b.loss_nearest, b.loss_stochastic, b.loss_f32, b.hash_stochastic, b.param_bytes
    );
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
    }
    Ok(())
}
