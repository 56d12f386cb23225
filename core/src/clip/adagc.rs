//! AdaGC (arXiv 2502.11034): per-tensor adaptive gradient clipping as the official
//! Megatron code (`lishuai-97/AdaGC`, `clip_grads.py`) computes it.
//!
//! Per tensor `i`, norm `n_i` of the unscaled gradient, step `k` (1-based, this clip's own
//! counter):
//! - warm-up, `k <= t_start`: plain global clipping (`c = max_norm/(G + eps)` if below 1), and
//!   `gamma_i` = running *minimum* of the clipped norms (`c * n_i`);
//! - afterwards: `threshold = lambda_rel * gamma_i`; if `n_i > threshold`, clip by
//!   `threshold / (n_i + eps)` and feed `threshold` (the clipped norm) to the EMA
//!   `gamma_i = beta*gamma_i + (1-beta)*clipped`.
//!
//! [`AdaGcMode::Global`] (official `AdaGC-Global`) runs the same rule on the global norm with
//! one `gamma`; the coefficient is the same for every tensor. `AdaGC-Shard` is the per-tensor
//! mode with each tensor-parallel shard passed as its own tensor; the default `AdaGC` mode
//! passes the combined sum of a sharded tensor (see [`crate::clip`]).
//!
//! Differences from the official code, by decision: the warm-up's clipped norm is `c * n_i`
//! (f32) instead of a second reduction over the clipped gradient (mathematically equal; it
//! keeps the clip a single read-only pass); the global norm is the canonical combine of the
//! per-tensor sums ([`super::global_sum_sq`]). State: one f32 `gamma` per tensor (caller-owned)
//! plus the step counter; [`encode`] gives the stable byte form.

use super::{global_sum_sq, norm, threshold_coef};
use crate::error::{beta, positive, Buffer, ConfigError, Hyper, LayoutError, StepError};
use crate::rules::check_lens;

/// Per-tensor (official `AdaGC`/`AdaGC-Shard`) or one global threshold (`AdaGC-Global`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdaGcMode {
    /// One `gamma` per tensor.
    PerTensor,
    /// One `gamma` for the global norm.
    Global,
}

/// AdaGC hyper-parameters; defaults are the official code's (`--clip-ratio 1.04`,
/// `--clip-beta 0.99`, `eps 1e-6`, `start_clip_steps 100`, `--clip-grad 1.0`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaGcConfig {
    /// `lambda_rel`: relative threshold, finite and `> 0`.
    pub lambda_rel: f64,
    /// EMA decay of the thresholds, in `[0, 1)`.
    pub beta: f64,
    /// Added to the norm in the divisor, finite and `> 0`.
    pub eps: f64,
    /// Warm-up steps of global clipping (`T_start`).
    pub t_start: u64,
    /// `lambda_abs`: global clipping threshold during warm-up, finite and `> 0`.
    pub max_norm: f64,
    /// Per-tensor or global.
    pub mode: AdaGcMode,
}

impl Default for AdaGcConfig {
    fn default() -> Self {
        AdaGcConfig {
            lambda_rel: 1.04,
            beta: 0.99,
            eps: 1e-6,
            t_start: 100,
            max_norm: 1.0,
            mode: AdaGcMode::PerTensor,
        }
    }
}

impl AdaGcConfig {
    /// Typed errors for impossible values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive(Hyper::Clip, self.lambda_rel)?;
        beta(Hyper::ClipBeta, self.beta)?;
        positive(Hyper::Eps, self.eps)?;
        positive(Hyper::Clip, self.max_norm)?;
        Ok(())
    }

    /// The f32 constants, each rounded once from f64.
    pub fn scalars(&self) -> AdaGcScalars {
        AdaGcScalars {
            lambda_rel: self.lambda_rel as f32,
            beta: self.beta as f32,
            one_minus_beta: (1.0 - self.beta) as f32,
            eps: self.eps as f32,
            max_norm: self.max_norm as f32,
        }
    }
}

/// AdaGC's f32 constants.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct AdaGcScalars {
    /// `lambda_rel`.
    pub lambda_rel: f32,
    /// `beta`.
    pub beta: f32,
    /// `1 - beta`.
    pub one_minus_beta: f32,
    /// `eps`.
    pub eps: f32,
    /// `max_norm` (`lambda_abs`).
    pub max_norm: f32,
}

/// One tensor's clip coefficient and new threshold. `first` is step 1 (no threshold yet),
/// `warmup` is `k <= t_start`, `global_coef` the warm-up's global coefficient
/// ([`super::threshold_coef`] of the global norm). f32 operations in order:
///
/// ```text
/// warm-up:
///   1. coef = global_coef
///   2. clipped = coef * norm
///   3. gamma = if first { clipped } else if clipped < gamma { clipped } else { gamma }
/// after warm-up:
///   1. g0 = if first { norm } else { gamma }
///   2. threshold = lambda_rel * g0
///   3. if norm > threshold { coef = threshold / (norm + eps); clipped = threshold }
///      else                { coef = 1;                          clipped = norm }
///   4. gamma = beta*g0 + one_minus_beta*clipped
/// ```
/// Returns `(coef, gamma)`. CUDA mirror: `adagc_tensor` in `cuda/kernels/clip.cu`.
#[inline]
pub fn adagc_tensor(
    gamma: f32,
    norm: f32,
    first: bool,
    warmup: bool,
    global_coef: f32,
    k: &AdaGcScalars,
) -> (f32, f32) {
    if warmup {
        let clipped = global_coef * norm;
        let g = if first || clipped < gamma {
            clipped
        } else {
            gamma
        };
        (global_coef, g)
    } else {
        let g0 = if first { norm } else { gamma };
        let threshold = k.lambda_rel * g0;
        let (coef, clipped) = if norm > threshold {
            (threshold / (norm + k.eps), threshold)
        } else {
            (1.0, norm)
        };
        (coef, k.beta * g0 + k.one_minus_beta * clipped)
    }
}

/// AdaGC's scalar state: the step counter (8 bytes little-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdaGcState {
    /// Steps committed so far.
    pub step: u64,
}

/// What [`AdaGc::plan`] decided for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaGcPlan {
    /// The step being applied (1-based).
    pub step: u64,
    /// Global norm (always computed, for logging, as the official code does).
    pub global_norm: f32,
    /// The warm-up's global coefficient (1 after warm-up).
    pub global_coef: f32,
    /// Whether every norm was finite; a plan that is not is never committed.
    pub finite: bool,
}

/// An AdaGC clipper: hyper-parameters plus the step counter. The caller owns `gamma`
/// ([`AdaGc::gamma_len`] f32 values, any initial value: step 1 sets them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaGc {
    /// Hyper-parameters (validated by [`AdaGc::new`]).
    pub config: AdaGcConfig,
    /// Scalar state.
    pub state: AdaGcState,
}

impl AdaGc {
    /// Validate `config` and start at step 0.
    pub fn new(config: AdaGcConfig) -> Result<AdaGc, ConfigError> {
        config.validate()?;
        Ok(AdaGc {
            config,
            state: AdaGcState::default(),
        })
    }

    /// Length of the `gamma` buffer for `n_tensors` tensors.
    pub fn gamma_len(&self, n_tensors: usize) -> usize {
        match self.config.mode {
            AdaGcMode::PerTensor => n_tensors,
            AdaGcMode::Global => 1,
        }
    }

    fn check(&self, sums: usize, gamma: usize, coefs: usize) -> Result<(), LayoutError> {
        check_lens(self.gamma_len(sums), &[(Buffer::BlockState, gamma)])?;
        check_lens(sums, &[(Buffer::Partials, coefs)])
    }

    /// For each `(tensor, gamma)` in order: `(coef, new_gamma)` of this step.
    fn each<F: FnMut(usize, f32, f32)>(
        &self,
        tensor_sums: &[f32],
        gamma: &[f32],
        mut f: F,
    ) -> AdaGcPlan {
        let k = self.config.scalars();
        let step = self.state.step.saturating_add(1);
        let first = step == 1;
        let warmup = step <= self.config.t_start;
        let global_norm = norm(global_sum_sq(tensor_sums));
        let finite = global_norm.is_finite();
        let global_coef = if warmup {
            threshold_coef(global_norm, k.max_norm, k.eps)
        } else {
            1.0
        };
        match self.config.mode {
            AdaGcMode::PerTensor => {
                for (i, (&s, &g)) in tensor_sums.iter().zip(gamma).enumerate() {
                    let n = norm(s);
                    let (c, ng) = adagc_tensor(g, n, first, warmup, global_coef, &k);
                    f(i, if finite { c } else { 1.0 }, ng);
                }
            }
            AdaGcMode::Global => {
                let (c, ng) = adagc_tensor(gamma[0], global_norm, first, warmup, global_coef, &k);
                for i in 0..tensor_sums.len() {
                    f(i, if finite { c } else { 1.0 }, ng);
                }
            }
        }
        AdaGcPlan {
            step,
            global_norm,
            global_coef,
            finite,
        }
    }

    /// Phase: from the per-tensor sums of squares of the unscaled gradients (tensor-parallel
    /// tensors already combined), write each tensor's clip coefficient into `coefs`. Writes
    /// nothing else; lengths are checked first (`gamma`: [`AdaGc::gamma_len`], `coefs`: one per
    /// tensor).
    pub fn plan(
        &self,
        tensor_sums: &[f32],
        gamma: &[f32],
        coefs: &mut [f32],
    ) -> Result<AdaGcPlan, StepError> {
        self.config.validate()?;
        self.check(tensor_sums.len(), gamma.len(), coefs.len())?;
        if self.state.step == u64::MAX {
            return Err(ConfigError::StepOverflow.into());
        }
        Ok(self.each(tensor_sums, gamma, |i, c, _| coefs[i] = c))
    }

    /// Record an applied step: update every `gamma` and the counter. Call it only when the
    /// optimizer applied the step; returns `false` (and writes nothing) for a plan that is not
    /// finite or does not follow the current state.
    pub fn commit(
        &mut self,
        tensor_sums: &[f32],
        gamma: &mut [f32],
        plan: &AdaGcPlan,
    ) -> Result<bool, LayoutError> {
        self.check(tensor_sums.len(), gamma.len(), tensor_sums.len())?;
        if !plan.finite || plan.step != self.state.step.saturating_add(1) {
            return Ok(false);
        }
        let k = self.config.scalars();
        let first = plan.step == 1;
        let warmup = plan.step <= self.config.t_start;
        match self.config.mode {
            AdaGcMode::Global => {
                let (_, ng) = adagc_tensor(
                    gamma[0],
                    plan.global_norm,
                    first,
                    warmup,
                    plan.global_coef,
                    &k,
                );
                gamma[0] = ng;
            }
            AdaGcMode::PerTensor => {
                // Each gamma depends only on its own old value and its tensor's norm.
                for (g, &s) in gamma.iter_mut().zip(tensor_sums) {
                    let (_, ng) = adagc_tensor(*g, norm(s), first, warmup, plan.global_coef, &k);
                    *g = ng;
                }
            }
        }
        self.state.step = plan.step;
        Ok(true)
    }
}

/// Bytes of the stable encoding for `n` gammas: 8 (step, little-endian) + 4 per gamma (f32
/// bits, little-endian).
pub const fn encoded_len(n: usize) -> usize {
    8 + 4 * n
}

/// Write the state and the gammas into `out` (exactly [`encoded_len`] bytes, checked first).
pub fn encode(state: &AdaGcState, gamma: &[f32], out: &mut [u8]) -> Result<(), LayoutError> {
    check_lens(encoded_len(gamma.len()), &[(Buffer::Packed, out.len())])?;
    out[..8].copy_from_slice(&state.step.to_le_bytes());
    for (c, g) in out[8..].chunks_exact_mut(4).zip(gamma) {
        c.copy_from_slice(&g.to_bits().to_le_bytes());
    }
    Ok(())
}

/// Inverse of [`encode`]: read the state and fill `gamma` (lengths checked first).
pub fn decode(bytes: &[u8], gamma: &mut [f32]) -> Result<AdaGcState, LayoutError> {
    check_lens(encoded_len(gamma.len()), &[(Buffer::Packed, bytes.len())])?;
    let mut s = [0u8; 8];
    s.copy_from_slice(&bytes[..8]);
    for (g, c) in gamma.iter_mut().zip(bytes[8..].chunks_exact(4)) {
        *g = f32::from_bits(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    }
    Ok(AdaGcState {
        step: u64::from_le_bytes(s),
    })
}
