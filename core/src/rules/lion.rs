//! Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", arXiv:2302.06675,
//! 2023), as the official `google/automl` PyTorch code computes it: decoupled weight decay
//! multiplied by `lr` first, the sign of an interpolation as the update, then the momentum
//! update with the second beta. `sign(0) = 0`, so a zero interpolation leaves `p` unchanged.
//!
//! Defaults: `lr 1e-4, betas (0.9, 0.99), weight_decay 0`. optax's `lion` spells the
//! momentum `mu` and its betas `b1`, `b2`.

use crate::error::{beta, non_negative, Buffer, ConfigError, Hyper, StepError, StepOutcome};
use crate::rules::{begin_common, check_lens, chunked3, Begin, ChunkHook, NoHook, Plan};
use crate::scalars::to_f32;
use crate::step::{store_param, StepOptions, StochasticRounding};
use crate::store::{Element, StateElement};

/// Lion hyper-parameters (defaults from the official code).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LionConfig {
    /// Learning rate, `>= 0`.
    pub lr: f64,
    /// Interpolation factor of the update, in `[0, 1)`.
    pub beta1: f64,
    /// Momentum decay, in `[0, 1)`.
    pub beta2: f64,
    /// Decoupled weight decay, `>= 0` (multiplied by `lr`).
    pub weight_decay: f64,
    /// Seed for stochastic rounding of bf16 parameters.
    pub stochastic_rounding_seed: Option<u64>,
}

impl LionConfig {
    /// `lr 1e-4, betas (0.9, 0.99), weight_decay 0`.
    pub const fn official() -> LionConfig {
        LionConfig {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.0,
            stochastic_rounding_seed: None,
        }
    }

    /// Typed errors for impossible values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_negative(Hyper::Lr, self.lr)?;
        beta(Hyper::Beta1, self.beta1)?;
        beta(Hyper::Beta2, self.beta2)?;
        non_negative(Hyper::WeightDecay, self.weight_decay)?;
        Ok(())
    }

    /// Per-step scalars: `decay = 1 - lr*wd`, `lr`, betas and `1 - beta` (f64, rounded once).
    pub fn scalars(&self, lr: f64) -> LionScalars {
        LionScalars {
            decay: to_f32(1.0 - lr * self.weight_decay),
            lr: to_f32(lr),
            beta1: to_f32(self.beta1),
            one_minus_beta1: to_f32(1.0 - self.beta1),
            beta2: to_f32(self.beta2),
            one_minus_beta2: to_f32(1.0 - self.beta2),
        }
    }
}

impl Default for LionConfig {
    fn default() -> Self {
        LionConfig::official()
    }
}

/// Per-step f32 scalars of Lion.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct LionScalars {
    /// `1 - lr*weight_decay`.
    pub decay: f32,
    /// `lr`.
    pub lr: f32,
    /// `beta1`.
    pub beta1: f32,
    /// `1 - beta1`.
    pub one_minus_beta1: f32,
    /// `beta2`.
    pub beta2: f32,
    /// `1 - beta2`.
    pub one_minus_beta2: f32,
}

/// `sign(x)`: 1 for `x > 0`, -1 for `x < 0`, +0 for +-0, NaN for NaN.
#[inline(always)]
pub fn sign(x: f32) -> f32 {
    // Written on the bits so it compiles to selects, not branches (vectorizes on SSE2 too):
    // +-1 carries x's sign bit; +-0 gives +0; NaN passes through (canonical on store).
    let b = x.to_bits();
    let mag = b & 0x7FFF_FFFF;
    let unit = (b & 0x8000_0000) | 0x3F80_0000;
    let r = if mag == 0 { 0 } else { unit };
    if mag > 0x7F80_0000 {
        x
    } else {
        f32::from_bits(r)
    }
}

/// One element of Lion. f32 operations in order, each rounded to nearest even:
///
/// ```text
/// 1. p = p * decay                                   (decay = 1 - lr*wd)
/// 2. c = beta1*exp_avg + one_minus_beta1*g
/// 3. p = p - lr*sign(c)                              (sign(+-0) = +0, sign(NaN) = NaN)
/// 4. exp_avg = beta2*exp_avg + one_minus_beta2*g
/// ```
/// Returns `(p, exp_avg)`. CUDA mirror: `lion_elem` in `cuda/kernels/lion.cu`.
#[inline(always)]
pub fn lion_elem(param: f32, grad: f32, exp_avg: f32, k: &LionScalars) -> (f32, f32) {
    let p = param * k.decay;
    let c = k.beta1 * exp_avg + k.one_minus_beta1 * grad;
    let p = p - k.lr * sign(c);
    let m = k.beta2 * exp_avg + k.one_minus_beta2 * grad;
    (p, m)
}

/// Reference path: indexed loop, gradient preparation always applied.
pub fn lion_reference<P: Element, G: Element, S: StateElement>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    plan: &Plan<LionScalars>,
) {
    let n = param.len().min(grad.len()).min(exp_avg.len());
    for i in 0..n {
        let g = plan.prep.apply(grad[i].widen());
        let (p, m) = lion_elem(param[i].widen(), g, exp_avg[i].widen(), &plan.scalars);
        param[i] = store_param(p, &plan.sr, i);
        exp_avg[i] = S::narrow(m);
    }
}

/// Fast path over zipped slices.
#[inline(always)]
pub fn lion_slice<P: Element, G: Element, S: StateElement>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    plan: &Plan<LionScalars>,
) {
    lion_slice_hooked::<P, G, S, NoHook>(param, grad, exp_avg, plan, &mut NoHook)
}

/// [`lion_slice`] with `hook.before(start)` run ahead of every `H::CHUNK` elements (same
/// bits for any hook).
#[inline(always)]
pub fn lion_slice_hooked<P: Element, G: Element, S: StateElement, H: ChunkHook>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    plan: &Plan<LionScalars>,
    hook: &mut H,
) {
    match (!plan.prep.is_identity(), plan.sr.is_some()) {
        (false, false) => lion_loop::<P, G, S, H, false, false>(param, grad, exp_avg, plan, hook),
        (true, false) => lion_loop::<P, G, S, H, true, false>(param, grad, exp_avg, plan, hook),
        (false, true) => lion_loop::<P, G, S, H, false, true>(param, grad, exp_avg, plan, hook),
        (true, true) => lion_loop::<P, G, S, H, true, true>(param, grad, exp_avg, plan, hook),
    }
}

#[inline(always)]
fn lion_loop<
    P: Element,
    G: Element,
    S: StateElement,
    H: ChunkHook,
    const PREP: bool,
    const SR: bool,
>(
    param: &mut [P],
    grad: &[G],
    exp_avg: &mut [S],
    plan: &Plan<LionScalars>,
    hook: &mut H,
) {
    let k = plan.scalars;
    let prep = plan.prep;
    let sr = plan.sr.unwrap_or(StochasticRounding {
        seed: 0,
        step: 0,
        index_offset: 0,
    });
    chunked3(param, grad, exp_avg, hook, |i, p, g, m| {
        let mut gv = g.widen();
        if PREP {
            gv = prep.apply(gv);
        }
        let (np, nm) = lion_elem(p.widen(), gv, m.widen(), &k);
        *p = if SR {
            P::narrow_stochastic(np, sr.bits(i))
        } else {
            P::narrow(np)
        };
        *m = S::narrow(nm);
    });
}

/// Lion scalar state: the step counter (Lion's formula does not use it; it keys stochastic
/// rounding and records progress). Encoding: 8 bytes little-endian.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LionState {
    /// Steps applied so far.
    pub step: u64,
}

impl LionState {
    /// Stable byte encoding.
    pub fn to_bytes(&self) -> [u8; 8] {
        self.step.to_le_bytes()
    }
    /// Inverse of [`LionState::to_bytes`].
    pub fn from_bytes(b: [u8; 8]) -> Self {
        LionState {
            step: u64::from_le_bytes(b),
        }
    }
}

/// A Lion optimizer: hyper-parameters plus scalar state. `exp_avg` has the parameter's
/// length and starts at zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lion {
    /// Hyper-parameters.
    pub config: LionConfig,
    /// Scalar state.
    pub state: LionState,
}

impl Lion {
    /// Validate and start at step 0.
    pub fn new(config: LionConfig) -> Result<Lion, ConfigError> {
        config.validate()?;
        Ok(Lion {
            config,
            state: LionState::default(),
        })
    }

    /// Plan the next step (writes nothing).
    pub fn begin<'a, G: Element, I>(
        &self,
        opts: &StepOptions,
        grads: I,
    ) -> Result<Begin<LionScalars>, StepError>
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
            scalars: self.config.scalars(opts.lr),
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

    /// Record that `plan` was applied.
    pub fn commit(&mut self, plan: &Plan<LionScalars>) {
        self.state.step = plan.step;
    }

    /// One step over one tensor on the calling thread.
    pub fn step<P: Element, G: Element, S: StateElement>(
        &mut self,
        param: &mut [P],
        grad: &[G],
        exp_avg: &mut [S],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        check_lens(
            param.len(),
            &[(Buffer::Grad, grad.len()), (Buffer::ExpAvg, exp_avg.len())],
        )?;
        match self.begin(opts, [grad])? {
            Begin::Skip(r) => Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => {
                lion_slice(param, grad, exp_avg, &plan);
                self.commit(&plan);
                Ok(StepOutcome::Applied { step: plan.step })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sign;

    /// The comparison-chain definition `sign` replaced, for every 61st f32 pattern and the
    /// specials: the bit form must agree exactly (NaN as NaN).
    #[test]
    fn spec_sign_bits_equal_the_comparison_definition() {
        fn by_compare(x: f32) -> f32 {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else if x == 0.0 {
                0.0
            } else {
                x
            }
        }
        let specials = [
            0u32,
            0x8000_0000,
            1,
            0x8000_0001,
            0x7F80_0000,
            0xFF80_0000,
            0x7FC0_0000,
            0xFFFF_FFFF,
        ];
        let sweep = (0..=u32::MAX / 61).map(|i| i * 61);
        for b in specials.into_iter().chain(sweep) {
            let x = f32::from_bits(b);
            let (got, want) = (sign(x), by_compare(x));
            if want.is_nan() {
                assert!(got.is_nan(), "{b:#010x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{b:#010x}");
            }
        }
    }
}
