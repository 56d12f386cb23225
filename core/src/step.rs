//! What every rule shares around its per-element formula: per-step options (learning rate,
//! loss scale, clip coefficient, `found_inf`), gradient preparation, the non-finite check
//! (numeric contract item 7), and the step counter.
//!
//! The order of a step is fixed: validate everything -> skip checks (`found_inf`, then the
//! finite scan) -> per-step scalars -> per-element pass -> commit the counter. Nothing is
//! written before the skip decision.

use crate::error::{positive, ConfigError, Hyper, SkipReason};
use crate::store::Element;

/// Per-step inputs that are not hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOptions {
    /// Learning rate for this step (from a schedule, or the constant one).
    pub lr: f64,
    /// Loss scale: every gradient element is divided by it (`g / grad_scale`, as PyTorch's
    /// fused optimizers). Giving one turns finite-checking on.
    pub grad_scale: Option<f32>,
    /// Per-tensor clip coefficient (AdaGC or global-norm clipping): the unscaled gradient is
    /// multiplied by it inside the rule's own pass.
    pub clip_coef: Option<f32>,
    /// The caller's overflow flag (PyTorch `found_inf`): nonzero skips the step.
    pub found_inf: bool,
    /// Scan the gradients and skip the step if any element is NaN or infinite.
    pub check_finite: bool,
}

impl StepOptions {
    /// Options for a plain step at learning rate `lr`.
    pub const fn new(lr: f64) -> StepOptions {
        StepOptions {
            lr,
            grad_scale: None,
            clip_coef: None,
            found_inf: false,
            check_finite: false,
        }
    }

    /// Whether the finite scan runs (asked for, or implied by a loss scale).
    pub fn checks_finite(&self) -> bool {
        self.check_finite || self.grad_scale.is_some()
    }

    /// Validate the per-step values (lr finite and >= 0, loss scale finite and > 0, clip
    /// coefficient finite and >= 0).
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::error::non_negative(Hyper::Lr, self.lr)?;
        if let Some(s) = self.grad_scale {
            positive(Hyper::GradScale, s as f64)?;
        }
        if let Some(c) = self.clip_coef {
            crate::error::non_negative(Hyper::Clip, c as f64)?;
        }
        Ok(())
    }

    /// The gradient preparation these options ask for.
    pub fn grad_prep(&self) -> GradPrep {
        GradPrep {
            grad_scale: self.grad_scale.unwrap_or(1.0),
            clip_coef: self.clip_coef.unwrap_or(1.0),
        }
    }
}

/// How a loaded gradient is prepared before the rule sees it:
/// `g = (g / grad_scale) * clip_coef`, each operation skipped when its operand is exactly 1
/// (which gives the same bits: `x / 1 = x * 1 = x` for every non-NaN `x`, and a NaN stays NaN
/// and is canonical on store).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradPrep {
    /// Divisor (loss scale); 1 when none.
    pub grad_scale: f32,
    /// Multiplier (clip coefficient); 1 when none.
    pub clip_coef: f32,
}

impl GradPrep {
    /// No preparation.
    pub const IDENTITY: GradPrep = GradPrep {
        grad_scale: 1.0,
        clip_coef: 1.0,
    };

    /// Whether this preparation changes no value.
    #[inline(always)]
    pub fn is_identity(&self) -> bool {
        self.grad_scale == 1.0 && self.clip_coef == 1.0
    }

    /// `g = (g / grad_scale) * clip_coef`: the contract's two operations, in this order.
    #[inline(always)]
    pub fn apply(&self, g: f32) -> f32 {
        (g / self.grad_scale) * self.clip_coef
    }
}

/// Decide whether a step is skipped, before anything is written: `found_inf` first, then
/// (when finite-checking is on) a scan of every gradient buffer.
pub fn skip_reason<'a, G: Element, I>(opts: &StepOptions, grads: I) -> Option<SkipReason>
where
    I: IntoIterator<Item = &'a [G]>,
{
    if opts.found_inf {
        return Some(SkipReason::FoundInf);
    }
    if opts.checks_finite() {
        for g in grads {
            if !all_finite(g) {
                return Some(SkipReason::NonFiniteGrad);
            }
        }
    }
    None
}

/// Whether every element of `g` is finite, from the stored bits.
#[inline]
pub fn all_finite<G: Element>(g: &[G]) -> bool {
    // Chunked OR-reduction of a per-lane flag so the scan vectorizes and stops early on long
    // buffers.
    const CHUNK: usize = 1024;
    for chunk in g.chunks(CHUNK) {
        let mut bad = false;
        for &x in chunk {
            bad |= !x.is_finite_bits();
        }
        if bad {
            return false;
        }
    }
    true
}

/// The step counter after one more step, or an overflow error.
pub fn next_step(step: u64) -> Result<u64, ConfigError> {
    step.checked_add(1).ok_or(ConfigError::StepOverflow)
}

/// Stochastic rounding of bf16 parameters: the generator's key. The element index is
/// `index_offset + i` for element `i` of the slice, so a shard passes its global offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StochasticRounding {
    /// User seed.
    pub seed: u64,
    /// Step number mixed into the key (the step being applied).
    pub step: u64,
    /// Global index of the slice's first element.
    pub index_offset: u64,
}

impl StochasticRounding {
    /// The same key for a sub-slice starting `start` elements later.
    #[inline]
    pub fn offset_by(self, start: usize) -> Self {
        StochasticRounding {
            index_offset: self.index_offset.wrapping_add(start as u64),
            ..self
        }
    }

    /// Random bits for element `i` of the slice.
    #[inline(always)]
    pub fn bits(&self, i: usize) -> u32 {
        crate::store::stochastic_bits(
            self.seed,
            self.step,
            self.index_offset.wrapping_add(i as u64),
        )
    }
}

/// Store a parameter: nearest-even, or stochastic when a key is given (bf16 only).
#[inline(always)]
pub(crate) fn store_param<P: Element>(x: f32, sr: &Option<StochasticRounding>, i: usize) -> P {
    match sr {
        None => P::narrow(x),
        Some(k) => P::narrow_stochastic(x, k.bits(i)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    #[test]
    fn spec_found_inf_wins_over_scan() {
        let mut o = StepOptions::new(1e-3);
        o.found_inf = true;
        let g = [1.0f32];
        assert_eq!(skip_reason(&o, [&g[..]]), Some(SkipReason::FoundInf));
    }

    #[test]
    fn spec_loss_scale_implies_checking() {
        let mut o = StepOptions::new(1e-3);
        let g = [1.0f32, f32::NAN];
        assert_eq!(skip_reason(&o, [&g[..]]), None);
        o.grad_scale = Some(1024.0);
        assert_eq!(skip_reason(&o, [&g[..]]), Some(SkipReason::NonFiniteGrad));
    }

    #[test]
    fn spec_scan_finds_one_bad_element_anywhere() {
        for n in [1usize, 3, 1023, 1024, 1025, 5000] {
            for bad in [0, n / 2, n - 1] {
                let mut g = vec![bf16::from_f32(1.0); n];
                g[bad] = bf16::from_bits(0xFF80);
                assert!(!all_finite(&g), "n={n} bad={bad}");
                g[bad] = bf16::from_f32(-0.0);
                assert!(all_finite(&g));
            }
        }
    }

    #[test]
    fn spec_identity_prep_is_bit_identical() {
        let p = GradPrep::IDENTITY;
        for b in [0u32, 0x8000_0000, 1, 0x7F7F_FFFF, 0xFF80_0000, 0x0080_0000] {
            assert_eq!(p.apply(f32::from_bits(b)).to_bits(), b);
        }
    }

    #[test]
    fn spec_options_validation() {
        assert!(StepOptions::new(f64::NAN).validate().is_err());
        assert!(StepOptions::new(-1.0).validate().is_err());
        let mut o = StepOptions::new(0.0);
        o.grad_scale = Some(0.0);
        assert!(o.validate().is_err());
        o.grad_scale = Some(f32::INFINITY);
        assert!(o.validate().is_err());
        o.grad_scale = Some(65536.0);
        assert!(o.validate().is_ok());
        assert_eq!(next_step(u64::MAX), Err(ConfigError::StepOverflow));
    }
}
