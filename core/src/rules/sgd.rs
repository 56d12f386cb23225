//! SGD with momentum, dampening, Nesterov and L2 weight decay, as `torch.optim.SGD`:
//! `g += wd*p`; `buf = g` on the first step, else `buf = momentum*buf + (1-dampening)*g`;
//! `g = g + momentum*buf` (Nesterov) or `g = buf`; `p -= lr*g`.
//!
//! With `momentum == 0` there is no momentum buffer (its slice is empty).

use crate::error::{non_negative, Buffer, ConfigError, Hyper, StepError, StepOutcome};
use crate::rules::{begin_common, check_lens, chunked3, Begin, ChunkHook, NoHook, Plan};
use crate::scalars::to_f32;
use crate::step::{store_param, StepOptions, StochasticRounding};
use crate::store::{Element, StateElement};

/// SGD hyper-parameters (PyTorch defaults apart from `lr`, which PyTorch requires).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate, `>= 0`.
    pub lr: f64,
    /// Momentum factor, `>= 0` (0 disables the buffer).
    pub momentum: f64,
    /// Dampening for momentum, in `[0, 1]`.
    pub dampening: f64,
    /// L2 weight decay added to the gradient, `>= 0`.
    pub weight_decay: f64,
    /// Nesterov momentum (needs `momentum > 0`, `dampening == 0`).
    pub nesterov: bool,
    /// Seed for stochastic rounding of bf16 parameters.
    pub stochastic_rounding_seed: Option<u64>,
}

impl SgdConfig {
    /// `lr` with PyTorch's other defaults (no momentum, no decay).
    pub const fn new(lr: f64) -> SgdConfig {
        SgdConfig {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            stochastic_rounding_seed: None,
        }
    }

    /// Typed errors for impossible values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        non_negative(Hyper::Lr, self.lr)?;
        non_negative(Hyper::Momentum, self.momentum)?;
        non_negative(Hyper::Dampening, self.dampening)?;
        if self.dampening > 1.0 {
            return Err(ConfigError::OutOfRange {
                which: Hyper::Dampening,
                value: self.dampening,
            });
        }
        non_negative(Hyper::WeightDecay, self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(ConfigError::NesterovNeedsMomentum);
        }
        Ok(())
    }

    /// Whether a momentum buffer is used.
    pub fn has_momentum(&self) -> bool {
        self.momentum != 0.0
    }

    /// Per-step scalars for step `t` (1-based).
    pub fn scalars(&self, lr: f64, t: u64) -> SgdScalars {
        SgdScalars {
            lr: to_f32(lr),
            weight_decay: to_f32(self.weight_decay),
            momentum: to_f32(self.momentum),
            one_minus_dampening: to_f32(1.0 - self.dampening),
            first_step: (t == 1) as u32,
            nesterov: self.nesterov as u32,
        }
    }
}

/// Per-step f32 scalars of SGD.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct SgdScalars {
    /// `lr`.
    pub lr: f32,
    /// L2 coefficient (0 skips the term).
    pub weight_decay: f32,
    /// Momentum factor (0: no buffer).
    pub momentum: f32,
    /// `1 - dampening`.
    pub one_minus_dampening: f32,
    /// 1 on the first step (the buffer is initialised to the gradient), else 0.
    pub first_step: u32,
    /// 1 for Nesterov momentum.
    pub nesterov: u32,
}

/// One element of SGD. f32 operations in order, each rounded to nearest even:
///
/// ```text
/// 1. if weight_decay != 0: g = g + weight_decay*p
/// 2. if momentum != 0:
///      buf = first_step ? g : momentum*buf + one_minus_dampening*g
///      g   = nesterov ? g + momentum*buf : buf
/// 3. p = p - lr*g
/// ```
/// Returns `(p, buf)` (`buf` unchanged without momentum). CUDA mirror: `sgd_elem` in
/// `cuda/kernels/sgd.cu`.
#[inline(always)]
pub fn sgd_elem(param: f32, grad: f32, momentum_buffer: f32, k: &SgdScalars) -> (f32, f32) {
    let mut g = grad;
    if k.weight_decay != 0.0 {
        g = g + k.weight_decay * param;
    }
    let mut buf = momentum_buffer;
    if k.momentum != 0.0 {
        buf = if k.first_step != 0 {
            g
        } else {
            k.momentum * buf + k.one_minus_dampening * g
        };
        g = if k.nesterov != 0 {
            g + k.momentum * buf
        } else {
            buf
        };
    }
    (param - k.lr * g, buf)
}

/// Reference path. Without momentum `momentum_buffer` is ignored (and may be empty).
pub fn sgd_reference<P: Element, G: Element, S: StateElement>(
    param: &mut [P],
    grad: &[G],
    momentum_buffer: &mut [S],
    plan: &Plan<SgdScalars>,
) {
    let n = param.len().min(grad.len());
    let with_buf = plan.scalars.momentum != 0.0;
    for i in 0..n {
        let g = plan.prep.apply(grad[i].widen());
        let b = if with_buf {
            momentum_buffer[i].widen()
        } else {
            0.0
        };
        let (p, b) = sgd_elem(param[i].widen(), g, b, &plan.scalars);
        param[i] = store_param(p, &plan.sr, i);
        if with_buf {
            momentum_buffer[i] = S::narrow(b);
        }
    }
}

/// Fast path over zipped slices.
#[inline(always)]
pub fn sgd_slice<P: Element, G: Element, S: StateElement>(
    param: &mut [P],
    grad: &[G],
    momentum_buffer: &mut [S],
    plan: &Plan<SgdScalars>,
) {
    sgd_slice_hooked::<P, G, S, NoHook>(param, grad, momentum_buffer, plan, &mut NoHook)
}

/// [`sgd_slice`] with `hook.before(start)` run ahead of every `H::CHUNK` elements when there
/// is a momentum buffer (without momentum the plain loop runs and the hook is not called);
/// the same bits for any hook.
#[inline(always)]
pub fn sgd_slice_hooked<P: Element, G: Element, S: StateElement, H: ChunkHook>(
    param: &mut [P],
    grad: &[G],
    momentum_buffer: &mut [S],
    plan: &Plan<SgdScalars>,
    hook: &mut H,
) {
    let prep = !plan.prep.is_identity();
    let sr = plan.sr.is_some();
    if plan.scalars.momentum == 0.0 {
        match (prep, sr) {
            (false, false) => sgd_plain::<P, G, false, false>(param, grad, plan),
            (true, false) => sgd_plain::<P, G, true, false>(param, grad, plan),
            (false, true) => sgd_plain::<P, G, false, true>(param, grad, plan),
            (true, true) => sgd_plain::<P, G, true, true>(param, grad, plan),
        }
    } else {
        match (prep, sr) {
            (false, false) => {
                sgd_mom::<P, G, S, H, false, false>(param, grad, momentum_buffer, plan, hook)
            }
            (true, false) => {
                sgd_mom::<P, G, S, H, true, false>(param, grad, momentum_buffer, plan, hook)
            }
            (false, true) => {
                sgd_mom::<P, G, S, H, false, true>(param, grad, momentum_buffer, plan, hook)
            }
            (true, true) => {
                sgd_mom::<P, G, S, H, true, true>(param, grad, momentum_buffer, plan, hook)
            }
        }
    }
}

fn no_sr() -> StochasticRounding {
    StochasticRounding {
        seed: 0,
        step: 0,
        index_offset: 0,
    }
}

#[inline(always)]
fn sgd_plain<P: Element, G: Element, const PREP: bool, const SR: bool>(
    param: &mut [P],
    grad: &[G],
    plan: &Plan<SgdScalars>,
) {
    let k = plan.scalars;
    let prep = plan.prep;
    let sr = plan.sr.unwrap_or(no_sr());
    for (i, (p, g)) in param.iter_mut().zip(grad).enumerate() {
        let mut gv = g.widen();
        if PREP {
            gv = prep.apply(gv);
        }
        let (np, _) = sgd_elem(p.widen(), gv, 0.0, &k);
        *p = if SR {
            P::narrow_stochastic(np, sr.bits(i))
        } else {
            P::narrow(np)
        };
    }
}

#[inline(always)]
fn sgd_mom<
    P: Element,
    G: Element,
    S: StateElement,
    H: ChunkHook,
    const PREP: bool,
    const SR: bool,
>(
    param: &mut [P],
    grad: &[G],
    momentum_buffer: &mut [S],
    plan: &Plan<SgdScalars>,
    hook: &mut H,
) {
    let k = plan.scalars;
    let prep = plan.prep;
    let sr = plan.sr.unwrap_or(no_sr());
    chunked3(param, grad, momentum_buffer, hook, |i, p, g, b| {
        let mut gv = g.widen();
        if PREP {
            gv = prep.apply(gv);
        }
        let (np, nb) = sgd_elem(p.widen(), gv, b.widen(), &k);
        *p = if SR {
            P::narrow_stochastic(np, sr.bits(i))
        } else {
            P::narrow(np)
        };
        *b = S::narrow(nb);
    });
}

/// SGD scalar state: the step counter (8 bytes little-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SgdState {
    /// Steps applied so far.
    pub step: u64,
}

impl SgdState {
    /// Stable byte encoding.
    pub fn to_bytes(&self) -> [u8; 8] {
        self.step.to_le_bytes()
    }
    /// Inverse of [`SgdState::to_bytes`].
    pub fn from_bytes(b: [u8; 8]) -> Self {
        SgdState {
            step: u64::from_le_bytes(b),
        }
    }
}

/// An SGD optimizer: hyper-parameters plus the step counter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Hyper-parameters.
    pub config: SgdConfig,
    /// Scalar state.
    pub state: SgdState,
}

impl Sgd {
    /// Validate and start at step 0.
    pub fn new(config: SgdConfig) -> Result<Sgd, ConfigError> {
        config.validate()?;
        Ok(Sgd {
            config,
            state: SgdState::default(),
        })
    }

    /// Length the momentum buffer must have for a parameter of `n` elements.
    pub fn momentum_buffer_len(&self, n: usize) -> usize {
        if self.config.has_momentum() {
            n
        } else {
            0
        }
    }

    /// Plan the next step (writes nothing).
    pub fn begin<'a, G: Element, I>(
        &self,
        opts: &StepOptions,
        grads: I,
    ) -> Result<Begin<SgdScalars>, StepError>
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

    /// Record that `plan` was applied.
    pub fn commit(&mut self, plan: &Plan<SgdScalars>) {
        self.state.step = plan.step;
    }

    /// One step over one tensor on the calling thread.
    pub fn step<P: Element, G: Element, S: StateElement>(
        &mut self,
        param: &mut [P],
        grad: &[G],
        momentum_buffer: &mut [S],
        opts: &StepOptions,
    ) -> Result<StepOutcome, StepError> {
        check_lens(param.len(), &[(Buffer::Grad, grad.len())])?;
        check_lens(
            self.momentum_buffer_len(param.len()),
            &[(Buffer::MomentumBuffer, momentum_buffer.len())],
        )?;
        match self.begin(opts, [grad])? {
            Begin::Skip(r) => Ok(StepOutcome::Skipped(r)),
            Begin::Apply(plan) => {
                sgd_slice(param, grad, momentum_buffer, &plan);
                self.commit(&plan);
                Ok(StepOutcome::Applied { step: plan.step })
            }
        }
    }
}
