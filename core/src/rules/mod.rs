//! The update rules. Each module holds one rule's hyper-parameters, its per-step scalars,
//! its per-element formula (one `#[inline]` function, the single definition that the slice
//! kernels and the CUDA mirror follow), a reference path and a fast slice path.

pub mod adam;
pub mod adam_mini;
pub mod lion;
pub mod sgd;

use crate::error::{Buffer, LayoutError, SkipReason, StepError};
use crate::step::{GradPrep, StepOptions, StochasticRounding};

/// Everything a per-element pass needs for one step, decided before anything is written:
/// the step being applied, the rule's per-step scalars, gradient preparation and the
/// stochastic-rounding key. A driver may split the pass over threads or shards in any way
/// and then call the rule's `commit`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan<K> {
    /// The step being applied (the counter's value after commit).
    pub step: u64,
    /// The rule's per-step scalars.
    pub scalars: K,
    /// Gradient preparation (loss scale, clip coefficient).
    pub prep: GradPrep,
    /// Stochastic rounding of bf16 parameters, keyed for element 0 of the tensor.
    pub sr: Option<StochasticRounding>,
}

/// A step either goes ahead with a plan or is skipped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Begin<K> {
    /// Apply this plan, then commit.
    Apply(Plan<K>),
    /// Write nothing.
    Skip(SkipReason),
}

/// Check that every buffer has `expected` elements.
pub fn check_lens(expected: usize, bufs: &[(Buffer, usize)]) -> Result<(), LayoutError> {
    for &(buffer, got) in bufs {
        if got != expected {
            return Err(LayoutError::LenMismatch {
                buffer,
                expected,
                got,
            });
        }
    }
    Ok(())
}

/// Shared prologue: validate options, decide the skip, compute the next step number.
pub(crate) fn begin_common<'a, G: crate::store::Element, I>(
    step: u64,
    opts: &StepOptions,
    grads: I,
) -> Result<Result<u64, SkipReason>, StepError>
where
    I: IntoIterator<Item = &'a [G]>,
{
    opts.validate()?;
    let t = crate::step::next_step(step)?;
    if let Some(r) = crate::step::skip_reason(opts, grads) {
        return Ok(Err(r));
    }
    Ok(Ok(t))
}
