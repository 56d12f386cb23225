//! Adam and AdamW (Kingma & Ba, 2015; Loshchilov & Hutter, arXiv:1711.05101, 2019) with
//! PyTorch's semantics: weight decay multiplied by `lr` and applied before the update
//! (AdamW), or added to the gradient as L2 (Adam); `eps` added after `sqrt(v) / sqrt(bc2)`.
//!
//! | here | PyTorch | optax |
//! |---|---|---|
//! | `exp_avg` | `exp_avg` | `mu` |
//! | `exp_avg_sq` | `exp_avg_sq` | `nu` |
//! | `beta1`, `beta2` | `betas` | `b1`, `b2` |
//!
//! This module does not clip or reduce: clip coefficients arrive through [`crate::step::GradPrep`].

use crate::error::{beta, non_negative, positive, Buffer, ConfigError, Hyper, StepError};
use crate::error::{StepOutcome, Warnings};
use crate::rules::{begin_common, check_lens, chunked4, Begin, ChunkHook, NoHook, Plan};
use crate::scalars::{bias_correction, sqrt_f64, to_f32, LibmSqrt, Sqrt};
use crate::step::{store_param, StepOptions, StochasticRounding};
use crate::store::{Element, StateElement};

/// Adam/AdamW hyper-parameters. Defaults are PyTorch's AdamW: `lr 1e-3, betas (0.9, 0.999),
/// eps 1e-8, weight_decay 1e-2`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate used by [`Adam::step`] (per-step `lr` may override it).
    pub lr: f64,
    /// First-moment decay, in `[0, 1)`.
    pub beta1: f64,
    /// Second-moment decay, in `[0, 1)`.
    pub beta2: f64,
    /// Added to `sqrt(v)/sqrt(bc2)`, `> 0`.
    pub eps: f64,
    /// Weight decay, `>= 0`.
    pub weight_decay: f64,
    /// `true`: AdamW (`p <- p*(1 - lr*wd)` before the update); `false`: Adam (`g <- g + wd*p`).
    pub decoupled: bool,
    /// Seed for stochastic rounding of bf16 parameters; `None` rounds to nearest even.
    pub stochastic_rounding_seed: Option<u64>,
}

impl AdamConfig {
    /// PyTorch `torch.optim.AdamW` defaults.
    pub const fn adamw() -> AdamConfig {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
            decoupled: true,
            stochastic_rounding_seed: None,
        }
    }

    /// PyTorch `torch.optim.Adam` defaults (no weight decay).
    pub const fn adam() -> AdamConfig {
        AdamConfig {
            weight_decay: 0.0,
            decoupled: false,
            ..AdamConfig::adamw()
        }
    }

    /// Typed errors for impossible values: lr finite and `>= 0`, betas in `[0, 1)`,
    /// eps finite and `> 0`, weight decay finite and `>= 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_negative(Hyper::Lr, self.lr)?;
        beta(Hyper::Beta1, self.beta1)?;
        beta(Hyper::Beta2, self.beta2)?;
        positive(Hyper::Eps, self.eps)?;
        non_negative(Hyper::WeightDecay, self.weight_decay)?;
        Ok(())
    }

    /// Convergence-region warnings (never errors).
    pub fn warnings(&self) -> Warnings {
        Warnings::for_adam_betas(self.beta1, self.beta2)
    }

    /// Per-step scalars for step `t` (1-based) at learning rate `lr`, by the contract's f64
    /// recipe: `bc1 = 1 - beta1^t`, `bc2 = 1 - beta2^t`, `step_size = lr/bc1`,
    /// `bias_correction2_sqrt = sqrt(bc2)`, `decay = 1 - lr*wd`, each rounded once to f32.
    pub fn scalars(&self, lr: f64, t: u64) -> AdamScalars {
        let bc1 = bias_correction(self.beta1, t);
        let bc2 = bias_correction(self.beta2, t);
        AdamScalars {
            decay: if self.decoupled {
                to_f32(1.0 - lr * self.weight_decay)
            } else {
                1.0
            },
            weight_decay: if self.decoupled {
                0.0
            } else {
                to_f32(self.weight_decay)
            },
            beta1: to_f32(self.beta1),
            one_minus_beta1: to_f32(1.0 - self.beta1),
            beta2: to_f32(self.beta2),
            one_minus_beta2: to_f32(1.0 - self.beta2),
            step_size: to_f32(lr / bc1),
            bias_correction2_sqrt: to_f32(sqrt_f64(bc2)),
            eps: to_f32(self.eps),
        }
    }
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig::adamw()
    }
}

/// Per-step f32 scalars of Adam/AdamW (see [`AdamConfig::scalars`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct AdamScalars {
    /// `1 - lr*weight_decay` for AdamW, 1 for Adam.
    pub decay: f32,
    /// L2 coefficient for Adam, 0 for AdamW (0 skips the L2 term).
    pub weight_decay: f32,
    /// `beta1`.
    pub beta1: f32,
    /// `1 - beta1` (rounded from f64).
    pub one_minus_beta1: f32,
    /// `beta2`.
    pub beta2: f32,
    /// `1 - beta2` (rounded from f64).
    pub one_minus_beta2: f32,
    /// `lr / bias_correction1`.
    pub step_size: f32,
    /// `sqrt(bias_correction2)`.
    pub bias_correction2_sqrt: f32,
    /// `eps`.
    pub eps: f32,
}

/// One element of Adam/AdamW. With `k` from [`AdamConfig::scalars`], the f32 operations,
/// in order, each rounded to nearest even, no fused multiply-add:
///
/// ```text
/// 1. if weight_decay != 0: g = g + weight_decay*p      (Adam's L2; AdamW has weight_decay = 0)
/// 2. p = p * decay                                      (AdamW: decay = 1 - lr*wd; Adam: 1)
/// 3. exp_avg    = beta1*exp_avg + one_minus_beta1*g
/// 4. exp_avg_sq = beta2*exp_avg_sq + one_minus_beta2*(g*g)
/// 5. denom = sqrt(exp_avg_sq)/bias_correction2_sqrt + eps  (the divide is skipped when
///    bias_correction2_sqrt == 1, which gives the same bits)
/// 6. p = p - step_size*(exp_avg/denom)
/// ```
/// Returns `(p, exp_avg, exp_avg_sq)`. CUDA mirror: `adam_elem` in `cuda/kernels/adam.cu`.
#[inline(always)]
pub fn adam_elem<Q: Sqrt>(
    param: f32,
    grad: f32,
    exp_avg: f32,
    exp_avg_sq: f32,
    k: &AdamScalars,
) -> (f32, f32, f32) {
    let mut g = grad;
    if k.weight_decay != 0.0 {
        g = g + k.weight_decay * param;
    }
    let p = param * k.decay;
    let m = k.beta1 * exp_avg + k.one_minus_beta1 * g;
    let v = k.beta2 * exp_avg_sq + k.one_minus_beta2 * (g * g);
    let mut s = Q::sqrt(v);
    // x / 1 == x for every x (NaN stays NaN, canonical on store), so skipping the divide once
    // bias_correction2 has rounded to 1 (after ~16.6k steps at beta2 = 0.999) changes no bit
    // and frees the divider, which bounds AdamW's speed on some CPUs.
    if k.bias_correction2_sqrt != 1.0 {
        s = s / k.bias_correction2_sqrt;
    }
    let denom = s + k.eps;
    let p = p - k.step_size * (m / denom);
    (p, m, v)
}

/// Reference path: a plain indexed loop over [`adam_elem`] with the gradient preparation
/// always applied. Operates on the common length of the buffers.
pub fn adam_reference<P: Element, G: Element, S: StateElement>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    exp_avg_sq: &mut [S],
    plan: &Plan<AdamScalars>,
) {
    let n = param
        .len()
        .min(grad.len())
        .min(exp_avg.len())
        .min(exp_avg_sq.len());
    for i in 0..n {
        let g = plan.prep.apply(grad[i].widen());
        let (p, m, v) = adam_elem::<LibmSqrt>(
            param[i].widen(),
            g,
            exp_avg[i].widen(),
            exp_avg_sq[i].widen(),
            &plan.scalars,
        );
        param[i] = store_param(p, &plan.sr, i);
        exp_avg[i] = S::narrow(m);
        exp_avg_sq[i] = S::narrow(v);
    }
}

/// Fast path: the same formula over zipped slices, specialised on whether gradient
/// preparation and stochastic rounding are active so the inner loop vectorizes.
/// `plan.sr`'s index offset names `param[0]`'s global index.
#[inline(always)]
pub fn adam_slice<P: Element, G: Element, S: StateElement, Q: Sqrt>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    exp_avg_sq: &mut [S],
    plan: &Plan<AdamScalars>,
) {
    adam_slice_hooked::<P, G, S, Q, NoHook>(param, grad, exp_avg, exp_avg_sq, plan, &mut NoHook)
}

/// [`adam_slice`] with `hook.before(start)` run ahead of every `H::CHUNK` elements (same
/// bits for any hook).
#[inline(always)]
pub fn adam_slice_hooked<P: Element, G: Element, S: StateElement, Q: Sqrt, H: ChunkHook>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    exp_avg_sq: &mut [S],
    plan: &Plan<AdamScalars>,
    hook: &mut H,
) {
    let prep = !plan.prep.is_identity();
    let l2 = plan.scalars.weight_decay != 0.0;
    match (prep, l2, plan.sr) {
        // Steady state of long runs: bias_correction2 has rounded to 1; a copy of the loop
        // without the divide (same bits, see `adam_elem`).
        (false, false, None) if plan.scalars.bias_correction2_sqrt == 1.0 => {
            adam_loop::<P, G, S, Q, H, false, false, false, true>(
                param, grad, exp_avg, exp_avg_sq, plan, hook,
            )
        }
        (true, false, None) if plan.scalars.bias_correction2_sqrt == 1.0 => {
            adam_loop::<P, G, S, Q, H, true, false, false, true>(
                param, grad, exp_avg, exp_avg_sq, plan, hook,
            )
        }
        (false, false, None) => adam_loop::<P, G, S, Q, H, false, false, false, false>(
            param, grad, exp_avg, exp_avg_sq, plan, hook,
        ),
        (true, false, None) => adam_loop::<P, G, S, Q, H, true, false, false, false>(
            param, grad, exp_avg, exp_avg_sq, plan, hook,
        ),
        (false, true, None) => adam_loop::<P, G, S, Q, H, false, true, false, false>(
            param, grad, exp_avg, exp_avg_sq, plan, hook,
        ),
        (true, true, None) => adam_loop::<P, G, S, Q, H, true, true, false, false>(
            param, grad, exp_avg, exp_avg_sq, plan, hook,
        ),
        (false, _, Some(_)) => adam_loop::<P, G, S, Q, H, false, true, true, false>(
            param, grad, exp_avg, exp_avg_sq, plan, hook,
        ),
        (true, _, Some(_)) => adam_loop::<P, G, S, Q, H, true, true, true, false>(
            param, grad, exp_avg, exp_avg_sq, plan, hook,
        ),
    }
}

#[inline(always)]
fn adam_loop<
    P: Element,
    G: Element,
    S: StateElement,
    Q: Sqrt,
    H: ChunkHook,
    const PREP: bool,
    const L2: bool,
    const SR: bool,
    const BC2_IS_ONE: bool,
>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    exp_avg_sq: &mut [S],
    plan: &Plan<AdamScalars>,
    hook: &mut H,
) {
    let mut k = plan.scalars;
    if BC2_IS_ONE {
        // A literal the compiler can see, so the divide in `adam_elem` folds away.
        k.bias_correction2_sqrt = 1.0;
    }
    if !L2 {
        // Lets the compiler drop step 1 of the formula; only reached when it is 0 already.
        k.weight_decay = 0.0;
    }
    let prep = plan.prep;
    let sr = plan.sr.unwrap_or(StochasticRounding {
        seed: 0,
        step: 0,
        index_offset: 0,
    });
    chunked4(param, grad, exp_avg, exp_avg_sq, hook, |i, p, g, m, v| {
        let mut gv = g.widen();
        if PREP {
            gv = prep.apply(gv);
        }
        let (np, nm, nv) = adam_elem::<Q>(p.widen(), gv, m.widen(), v.widen(), &k);
        *p = if SR {
            P::narrow_stochastic(np, sr.bits(i))
        } else {
            P::narrow(np)
        };
        *m = S::narrow(nm);
        *v = S::narrow(nv);
    });
}

/// Adam/AdamW scalar state: the step counter (stable encoding: 8 bytes little-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdamState {
    /// Steps applied so far.
    pub step: u64,
}

impl AdamState {
    /// Stable byte encoding for checkpoints.
    pub fn to_bytes(&self) -> [u8; 8] {
        self.step.to_le_bytes()
    }
    /// Inverse of [`AdamState::to_bytes`].
    pub fn from_bytes(b: [u8; 8]) -> Self {
        AdamState {
            step: u64::from_le_bytes(b),
        }
    }
}

/// An Adam/AdamW optimizer: hyper-parameters plus the step counter. Buffers belong to the
/// caller: `exp_avg` and `exp_avg_sq` have the parameter's length and start at zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// Hyper-parameters (validated by [`Adam::new`]).
    pub config: AdamConfig,
    /// Scalar state.
    pub state: AdamState,
}

impl Adam {
    /// Validate `config` and start at step 0.
    pub fn new(config: AdamConfig) -> Result<Adam, ConfigError> {
        config.validate()?;
        Ok(Adam {
            config,
            state: AdamState::default(),
        })
    }

    /// Validate options, decide the skip and compute the plan for the next step over the
    /// given gradients. Writes nothing.
    pub fn begin<'a, G: Element, I>(
        &self,
        opts: &StepOptions,
        grads: I,
    ) -> Result<Begin<AdamScalars>, StepError>
    where
        I: IntoIterator<Item = &'a [G]>,
    {
        // `config` is a public field: re-check it so a later edit cannot slip past `new`.
        self.config.validate()?;
        let t = match begin_common(self.state.step, opts, grads)? {
            Ok(t) => t,
            Err(r) => return Ok(Begin::Skip(r)),
        };
        Ok(Begin::Apply(Plan {
            step: t,
            scalars: self.config.scalars(opts.lr, t),
            prep: opts.grad_prep(),
            sr: self
                .config
                .stochastic_rounding_seed
                .map(|seed| StochasticRounding {
                    seed,
                    step: t,
                    index_offset: 0,
                }),
        }))
    }

    /// Record that `plan` was applied to every buffer.
    pub fn commit(&mut self, plan: &Plan<AdamScalars>) {
        self.state.step = plan.step;
    }

    /// One step over one tensor with the fast path on the calling thread (software sqrt;
    /// the `adamant-cpu` driver uses the hardware instruction and all cores).
    pub fn step<P: Element, G: Element, S: StateElement>(
        &mut self,
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        exp_avg_sq: &mut [S],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        check_lens(
            param.len(),
            &[
                (Buffer::Grad, grad.len()),
                (Buffer::ExpAvg, exp_avg.len()),
                (Buffer::ExpAvgSq, exp_avg_sq.len()),
            ],
        )?;
        match self.begin(opts, [grad])? {
            Begin::Skip(r) => Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => {
                adam_slice::<P, G, S, LibmSqrt>(param, grad, exp_avg, exp_avg_sq, &plan);
                self.commit(&plan);
                Ok(StepOutcome::Applied { step: plan.step })
            }
        }
    }
}
