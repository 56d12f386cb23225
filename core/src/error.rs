//! Typed errors, warnings and step outcomes. Errors are small `Copy` values; a skipped step
//! is an outcome, not an error; warnings are a bitset that never stops a step.

use core::fmt;

/// Which hyper-parameter a [`ConfigError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hyper {
    /// Learning rate.
    Lr,
    /// First-moment decay (`beta1`, optax `b1`).
    Beta1,
    /// Second-moment decay (`beta2`, optax `b2`).
    Beta2,
    /// Denominator epsilon.
    Eps,
    /// Weight decay.
    WeightDecay,
    /// SGD momentum.
    Momentum,
    /// SGD dampening.
    Dampening,
    /// Loss scale (`grad_scale`).
    GradScale,
    /// Gradient clipping coefficient or threshold.
    Clip,
    /// A schedule parameter.
    Schedule,
    /// A block or group length.
    BlockLen,
    /// AdaGC's threshold EMA decay (`--clip-beta`).
    ClipBeta,
    /// LoCo's error moving-average coefficient (`err_beta`).
    ErrBeta,
    /// Number of ranks (or nodes) in a collective, or a divisor derived from it.
    WorldSize,
}

impl Hyper {
    /// The field's name as users write it.
    pub const fn name(self) -> &'static str {
        match self {
            Hyper::Lr => "lr",
            Hyper::Beta1 => "beta1",
            Hyper::Beta2 => "beta2",
            Hyper::Eps => "eps",
            Hyper::WeightDecay => "weight_decay",
            Hyper::Momentum => "momentum",
            Hyper::Dampening => "dampening",
            Hyper::GradScale => "grad_scale",
            Hyper::Clip => "clip",
            Hyper::Schedule => "schedule",
            Hyper::BlockLen => "block_len",
            Hyper::ClipBeta => "clip_beta",
            Hyper::ErrBeta => "err_beta",
            Hyper::WorldSize => "world_size",
        }
    }
}

/// An impossible configuration, found before anything is written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConfigError {
    /// The value is NaN or infinite.
    NonFinite {
        /// Which hyper-parameter.
        which: Hyper,
        /// The offending value.
        value: f64,
    },
    /// The value lies outside its allowed range `[min, max)` (or `[min, max]`, see the doc of
    /// the field).
    OutOfRange {
        /// Which hyper-parameter.
        which: Hyper,
        /// The offending value.
        value: f64,
    },
    /// Nesterov momentum needs `momentum > 0` and `dampening == 0` (as PyTorch).
    NesterovNeedsMomentum,
    /// The step counter would pass `u64::MAX`.
    StepOverflow,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::NonFinite { which, value } => {
                write!(f, "{} must be finite, got {}", which.name(), value)
            }
            ConfigError::OutOfRange { which, value } => {
                let range = match which {
                    Hyper::Beta1 | Hyper::Beta2 | Hyper::ClipBeta | Hyper::ErrBeta => "[0, 1)",
                    Hyper::Eps => "(0, inf)",
                    Hyper::GradScale => "(0, inf)",
                    Hyper::Dampening => "[0, 1]",
                    _ => "[0, inf)",
                };
                write!(f, "{} = {} is outside {}", which.name(), value, range)
            }
            ConfigError::NesterovNeedsMomentum => {
                f.write_str("nesterov momentum requires momentum > 0 and dampening = 0")
            }
            ConfigError::StepOverflow => f.write_str("step counter would overflow u64"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Names of the buffers a rule touches, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// Parameters.
    Param,
    /// Gradients.
    Grad,
    /// First moment (`exp_avg`, optax `mu`).
    ExpAvg,
    /// Second moment (`exp_avg_sq`, optax `nu`).
    ExpAvgSq,
    /// SGD momentum buffer.
    MomentumBuffer,
    /// Per-tile partial results.
    Partials,
    /// Per-block or per-tensor state.
    BlockState,
    /// Error-feedback buffer.
    ErrorFeedback,
    /// Packed output bytes.
    Packed,
}

impl Buffer {
    /// The buffer's name as PyTorch's state dict spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Buffer::Param => "param",
            Buffer::Grad => "grad",
            Buffer::ExpAvg => "exp_avg",
            Buffer::ExpAvgSq => "exp_avg_sq",
            Buffer::MomentumBuffer => "momentum_buffer",
            Buffer::Partials => "partials",
            Buffer::BlockState => "block_state",
            Buffer::ErrorFeedback => "error_feedback",
            Buffer::Packed => "packed",
        }
    }
}

/// Buffers whose shapes do not fit together; found before anything is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// A buffer's length differs from the one the layout needs.
    LenMismatch {
        /// Which buffer.
        buffer: Buffer,
        /// Length the layout needs.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// A block length of zero, or blocks that do not tile the tensor.
    BadBlocks {
        /// Tensor length.
        len: usize,
        /// Block length that does not fit.
        block_len: usize,
    },
    /// Explicit block segments that do not cover the tensor exactly.
    BlocksDoNotTile {
        /// Tensor length.
        len: usize,
        /// Elements the segments cover.
        covered: usize,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayoutError::LenMismatch {
                buffer,
                expected,
                got,
            } => write!(
                f,
                "buffer `{}` has {} elements, expected {}",
                buffer.name(),
                got,
                expected
            ),
            LayoutError::BadBlocks { len, block_len } => write!(
                f,
                "block length {} does not tile a tensor of {} elements",
                block_len, len
            ),
            LayoutError::BlocksDoNotTile { len, covered } => write!(
                f,
                "block segments cover {} elements of a tensor of {}",
                covered, len
            ),
        }
    }
}

impl core::error::Error for LayoutError {}

/// Any reason a step was refused before writing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepError {
    /// Bad hyper-parameters or per-step options.
    Config(ConfigError),
    /// Buffers that do not fit.
    Layout(LayoutError),
}

impl From<ConfigError> for StepError {
    fn from(e: ConfigError) -> Self {
        StepError::Config(e)
    }
}
impl From<LayoutError> for StepError {
    fn from(e: LayoutError) -> Self {
        StepError::Layout(e)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Config(e) => e.fmt(f),
            StepError::Layout(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for StepError {}

/// Why a quantization, compression or decompression call refused to write (nothing was
/// written).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QuantError {
    /// Bad hyper-parameters.
    Config(ConfigError),
    /// Buffers that do not fit the layout.
    Layout(LayoutError),
    /// A value to be quantized is NaN or infinite: `buffer[index]`, or the error-compensated
    /// value formed from it (`g + e` overflowing counts too). Non-finite values are never packed.
    NonFinite {
        /// Which input buffer.
        buffer: Buffer,
        /// Element index within that buffer.
        index: usize,
    },
    /// A packed buffer holds a group scale that is not finite and positive (corrupt bytes).
    BadScale {
        /// Which packed buffer.
        buffer: Buffer,
        /// Group index (counted over the whole buffer, chunk by chunk).
        group: usize,
    },
    /// An error buffer's storage (f32 or 8-bit) differs from the configured one.
    WrongStorage {
        /// Which buffer.
        buffer: Buffer,
    },
}

impl From<ConfigError> for QuantError {
    fn from(e: ConfigError) -> Self {
        QuantError::Config(e)
    }
}
impl From<LayoutError> for QuantError {
    fn from(e: LayoutError) -> Self {
        QuantError::Layout(e)
    }
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QuantError::Config(e) => e.fmt(f),
            QuantError::Layout(e) => e.fmt(f),
            QuantError::NonFinite { buffer, index } => write!(
                f,
                "non-finite value at `{}`[{}]; nothing was quantized",
                buffer.name(),
                index
            ),
            QuantError::BadScale { buffer, group } => write!(
                f,
                "packed buffer `{}` holds a non-finite or non-positive scale in group {}",
                buffer.name(),
                group
            ),
            QuantError::WrongStorage { buffer } => write!(
                f,
                "buffer `{}` is stored differently from the configured error storage",
                buffer.name()
            ),
        }
    }
}

impl core::error::Error for QuantError {}

/// Why a step was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The caller's `found_inf` flag was nonzero.
    FoundInf,
    /// Finite-checking found a NaN or infinite gradient element.
    NonFiniteGrad,
}

/// What a step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// The update was applied; `step` is the new value of the step counter.
    Applied {
        /// Step counter after the update (1 after the first step).
        step: u64,
    },
    /// Nothing was written: parameters, states and the step counter are unchanged.
    Skipped(SkipReason),
}

impl StepOutcome {
    /// Whether the update was applied.
    pub fn applied(&self) -> bool {
        matches!(self, StepOutcome::Applied { .. })
    }
}

/// Warnings about a valid configuration (never errors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Warnings(pub u32);

impl Warnings {
    /// `beta1 >= sqrt(beta2)`: outside the region where unmodified Adam provably converges
    /// (Zhang et al., NeurIPS 2022).
    pub const BETA1_AT_LEAST_SQRT_BETA2: u32 = 1;
    /// `beta2 < 0.9`: small beta2, where Adam can diverge; consider raising it.
    pub const SMALL_BETA2: u32 = 2;

    /// No warning set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Whether the warning bit `w` is set.
    pub fn contains(self, w: u32) -> bool {
        self.0 & w != 0
    }

    /// Adam's convergence-region warnings for `(beta1, beta2)`.
    pub fn for_adam_betas(beta1: f64, beta2: f64) -> Warnings {
        let mut w = 0;
        if beta1 * beta1 >= beta2 {
            w |= Self::BETA1_AT_LEAST_SQRT_BETA2;
        }
        if beta2 < 0.9 {
            w |= Self::SMALL_BETA2;
        }
        Warnings(w)
    }
}

impl fmt::Display for Warnings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            Ok::<(), fmt::Error>(())
        };
        if self.contains(Self::BETA1_AT_LEAST_SQRT_BETA2) {
            sep(f)?;
            f.write_str("beta1 >= sqrt(beta2): outside Adam's proven convergence region")?;
        }
        if self.contains(Self::SMALL_BETA2) {
            sep(f)?;
            f.write_str("beta2 < 0.9: small beta2 may diverge; consider raising it")?;
        }
        Ok(())
    }
}

/// Check that `value` is finite.
pub(crate) fn finite(which: Hyper, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ConfigError::NonFinite { which, value })
    }
}

/// Check `0 <= value < 1`.
pub(crate) fn beta(which: Hyper, value: f64) -> Result<(), ConfigError> {
    finite(which, value)?;
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange { which, value })
    }
}

/// Check `value >= 0` and finite.
pub(crate) fn non_negative(which: Hyper, value: f64) -> Result<(), ConfigError> {
    finite(which, value)?;
    if value >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange { which, value })
    }
}

/// Check `value > 0` and finite.
pub(crate) fn positive(which: Hyper, value: f64) -> Result<(), ConfigError> {
    finite(which, value)?;
    if value > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange { which, value })
    }
}
