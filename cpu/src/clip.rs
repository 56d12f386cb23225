//! Clipped steps: AdaGC or global-norm clipping around any rule's pass, on the driver's
//! threads.
//!
//! A clipped step is core's clip flow ([`adamant_core::clip`]) with each phase in parallel:
//! 1. the rule's checks and `begin` (validation, `found_inf`), before anything else;
//! 2. every tensor's canonical sum of `(g/grad_scale)^2` ([`Driver::sums_sq`]: tile partials in
//!    parallel, combined in order, so the bits of core's `clip::tensor_sum_sq`);
//! 3. with finite-checking on, a non-finite sum sends the step to the parallel finite scan of
//!    the gradients (a finite sum of squares proves every element finite, so the scan is only
//!    needed then); a non-finite element skips the step;
//! 4. the clipper's coefficients from core (`GlobalNormClip::coefficient`, `AdaGc::plan`);
//! 5. the rule's pass with each tensor's coefficient as its `clip_coef`, then the rule's commit
//!    and the clipper's commit (AdaGC's commit leaves a plan with a non-finite norm
//!    uncommitted, as core does).
//!
//! A skipped step or an error writes nothing: no parameter, state, `gamma` or counter.

use crate::driver::{AdamTensor, Driver, LionTensor, RuleTensor, SgdTensor};
use crate::mini::{adam_mini_check, AdamMiniTensor};
use adamant_core::clip::{AdaGc, AdaGcPlan, GlobalNormClip};
use adamant_core::error::{ConfigError, Hyper, SkipReason, StepError, StepOutcome};
use adamant_core::step::GradPrep;
use adamant_core::store::{Element, StateElement};
use adamant_core::{Adam, AdamMini, Begin, Lion, Plan, Sgd, StepOptions};

/// Where a clipped step's coefficients come from.
#[derive(Debug)]
pub enum Clipper<'a> {
    /// PyTorch `clip_grad_norm_`: one coefficient `min(1, max_norm/(norm + 1e-6))` for every
    /// tensor, from the global norm.
    GlobalNorm(GlobalNormClip),
    /// AdaGC (per-tensor or global mode) with its thresholds (`gamma`:
    /// [`AdaGc::gamma_len`] entries for the model's tensor count).
    AdaGc {
        /// The clipper (its step counter advances when a step is applied with a finite norm).
        clip: &'a mut AdaGc,
        /// Its thresholds, updated on commit.
        gamma: &'a mut [f32],
    },
}

/// What a clipped step did.
#[derive(Clone, Debug, PartialEq)]
pub struct ClippedOutcome {
    /// The rule's outcome.
    pub outcome: StepOutcome,
    /// Global norm of the unscaled gradients, `sqrt(combine(tensor sums))` (NaN when skipped
    /// before the sums were taken).
    pub global_norm: f32,
    /// Each tensor's clip coefficient (empty when skipped before they were computed).
    pub coefs: Vec<f32>,
}

impl ClippedOutcome {
    fn skipped(r: SkipReason, global_norm: f32) -> Self {
        ClippedOutcome {
            outcome: StepOutcome::Skipped(r),
            global_norm,
            coefs: Vec::new(),
        }
    }
}

/// A decided clipped step: apply the plan with these coefficients, then commit.
struct Decided<K> {
    plan: Plan<K>,
    sums: Vec<f32>,
    coefs: Vec<f32>,
    global_norm: f32,
    adagc: Option<AdaGcPlan>,
}

impl Driver {
    /// Phases 1 to 4 of a clipped step (see the module documentation); `Err(outcome)` is a
    /// skip. Writes nothing.
    fn clip_plan<K, G: Element>(
        &self,
        begin: Begin<K>,
        opts: &StepOptions,
        grads: Vec<&[G]>,
        clipper: &Clipper<'_>,
    ) -> Result<Result<Decided<K>, ClippedOutcome>, StepError> {
        if let Some(c) = opts.clip_coef {
            // The clipper computes the coefficients; a second one would be applied silently.
            return Err(ConfigError::OutOfRange {
                which: Hyper::Clip,
                value: c as f64,
            }
            .into());
        }
        if let Clipper::AdaGc { clip, gamma } = clipper {
            let want = clip.gamma_len(grads.len());
            adamant_core::rules::check_lens(
                want,
                &[(adamant_core::error::Buffer::BlockState, gamma.len())],
            )?;
            clip.config.validate()?;
        }
        let plan = match begin {
            Begin::Skip(r) => return Ok(Err(ClippedOutcome::skipped(r, f32::NAN))),
            Begin::Apply(plan) => plan,
        };
        let prep = GradPrep {
            grad_scale: opts.grad_prep().grad_scale,
            clip_coef: 1.0,
        };
        let sums = self.sums_sq(&grads, prep);
        let global_norm = adamant_core::clip::norm(adamant_core::clip::global_sum_sq(&sums));
        if opts.checks_finite()
            && !sums.iter().all(|s| s.is_finite())
            && !self.all_finite_grads(grads)
        {
            return Ok(Err(ClippedOutcome::skipped(
                SkipReason::NonFiniteGrad,
                global_norm,
            )));
        }
        let mut coefs = vec![1.0f32; sums.len()];
        let adagc = match clipper {
            Clipper::GlobalNorm(g) => {
                let (_, c) = g.coefficient(&sums);
                coefs.fill(c);
                None
            }
            Clipper::AdaGc { clip, gamma } => Some(clip.plan(&sums, gamma, &mut coefs)?),
        };
        Ok(Ok(Decided {
            plan,
            sums,
            coefs,
            global_norm,
            adagc,
        }))
    }

    /// Phase 5's clipper commit.
    fn clip_commit<K>(d: &Decided<K>, clipper: &mut Clipper<'_>) -> ClippedOutcome {
        if let (Clipper::AdaGc { clip, gamma }, Some(p)) = (clipper, &d.adagc) {
            // Lengths were checked in `clip_plan`.
            let _ = clip.commit(&d.sums, gamma, p);
        }
        ClippedOutcome {
            outcome: StepOutcome::Applied { step: d.plan.step },
            global_norm: d.global_norm,
            coefs: d.coefs.clone(),
        }
    }

    /// The clipped step of Adam, SGD or Lion (phases 1 to 5 of the module documentation),
    /// written once against the rule's [`RuleTensor`] parts, as the unclipped step is.
    fn step_clipped<T: RuleTensor>(
        &self,
        opt: &mut T::Opt,
        tensors: &mut [T],
        opts: &StepOptions,
        mut clipper: Clipper<'_>,
    ) -> Result<ClippedOutcome, StepError> {
        T::check(opt, tensors)?;
        let begin = T::begin(opt, opts)?;
        let grads = tensors.iter().map(T::grad).collect();
        let d = match self.clip_plan(begin, opts, grads, &clipper)? {
            Ok(d) => d,
            Err(skipped) => return Ok(skipped),
        };
        self.apply(&d.plan, tensors, Some(&d.coefs));
        T::commit(opt, &d.plan);
        Ok(Self::clip_commit(&d, &mut clipper))
    }

    /// One clipped Adam/AdamW step over a model (see the module documentation). `opts` must
    /// not carry a `clip_coef` (the clipper supplies one per tensor).
    pub fn adam_step_clipped<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut Adam,
        tensors: &mut [AdamTensor<'_, P, G, S>],
        opts: &StepOptions,
        clipper: Clipper<'_>,
    ) -> Result<ClippedOutcome, StepError> {
        self.step_clipped(opt, tensors, opts, clipper)
    }

    /// One clipped SGD step over a model. See [`Driver::adam_step_clipped`].
    pub fn sgd_step_clipped<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut Sgd,
        tensors: &mut [SgdTensor<'_, P, G, S>],
        opts: &StepOptions,
        clipper: Clipper<'_>,
    ) -> Result<ClippedOutcome, StepError> {
        self.step_clipped(opt, tensors, opts, clipper)
    }

    /// One clipped Lion step over a model. See [`Driver::adam_step_clipped`].
    pub fn lion_step_clipped<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut Lion,
        tensors: &mut [LionTensor<'_, P, G, S>],
        opts: &StepOptions,
        clipper: Clipper<'_>,
    ) -> Result<ClippedOutcome, StepError> {
        self.step_clipped(opt, tensors, opts, clipper)
    }

    /// One clipped Adam-mini step over a model. See [`Driver::adam_step_clipped`].
    pub fn adam_mini_step_clipped<P: Element, G: Element, S: StateElement>(
        &self,
        opt: &mut AdamMini,
        tensors: &mut [AdamMiniTensor<'_, P, G, S>],
        opts: &StepOptions,
        mut clipper: Clipper<'_>,
    ) -> Result<ClippedOutcome, StepError> {
        adam_mini_check(tensors)?;
        let begin = opt.begin::<G, _>(opts, core::iter::empty())?;
        let grads = tensors.iter().map(|t| t.grad).collect();
        let d = match self.clip_plan(begin, opts, grads, &clipper)? {
            Ok(d) => d,
            Err(skipped) => return Ok(skipped),
        };
        self.adam_mini_apply(&d.plan, tensors, Some(&d.coefs));
        opt.commit(&d.plan);
        Ok(Self::clip_commit(&d, &mut clipper))
    }
}
