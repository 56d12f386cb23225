//! Status codes returned by every entry point.
//!
//! Values are part of the ABI: they are never renumbered or reused. A retired code stays
//! here as a comment. `0` is success; every other value means nothing was written.

use core::ffi::c_char;

/// The result of every adamant call. `ADAMANT_STATUS_OK` (0) is success; every other value
/// means the call wrote nothing (no parameter, state or `out_*` value changed).
///
/// Checks run in this order, so a call with several faults reports the first: NULL struct,
/// array and `out_*` pointers; flag values; configuration and options; then over every
/// view: enum and allowed dtype; then per view NULL data, byte length, alignment, and the
/// call's length rule; then overlap; then the step counter; then the skip decision
/// (`found_inf`, then the finite scan).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum adamant_status {
    /// Success.
    Ok = 0,
    /// A required pointer was NULL (a struct pointer, an array of views with `count > 0`,
    /// an `out_*` pointer, or a view's `data` with `len > 0`).
    NullPointer = 1,
    /// Buffers that must have the same (or a derived) number of elements do not.
    LengthMismatch = 2,
    /// A view's `data` is not aligned for its dtype (4 bytes for f32, 2 for bf16/f16), or
    /// an `out_*` pointer is not aligned for its type.
    Misaligned = 3,
    /// Two buffers of one call overlap in memory and at least one of them is written.
    Overlap = 4,
    /// An integer that encodes an enum (dtype, reduction, decay shape) or a 0/1 flag has a
    /// value outside its range.
    InvalidEnum = 5,
    /// A hyper-parameter or per-step option is impossible (beta outside [0, 1), eps <= 0,
    /// non-finite lr, bad schedule, ...).
    InvalidConfig = 6,
    /// A valid dtype that this buffer may not have (states are f32 or bf16; the two Adam
    /// moments must share one dtype; reductions produce f32).
    UnsupportedDtype = 7,
    /// The step was skipped because the caller's `found_inf` flag was nonzero. Nothing was
    /// written; the step counter did not advance.
    SkippedFoundInf = 8,
    /// The step was skipped because a gradient element was NaN or infinite (finite-checking
    /// on, or a loss scale given). Nothing was written; the step counter did not advance.
    SkippedNonFinite = 9,
    /// The step counter would pass `UINT64_MAX`.
    StepOverflow = 10,
    /// A view's byte length overflows the address space (`len * element size` too large).
    LengthTooLarge = 11,
    /// A panic was caught at the ABI boundary (a bug in adamant: please report it).
    Panic = 12,
    /// A CUDA driver call failed (CUDA entry points only).
    CudaError = 13,
    /// No CUDA driver could be loaded (CUDA entry points only).
    NoCudaDriver = 14,
}

impl adamant_status {
    /// Every status, in numeric order (used by tests and `adamant_status_string`).
    pub const ALL: [adamant_status; 15] = [
        adamant_status::Ok,
        adamant_status::NullPointer,
        adamant_status::LengthMismatch,
        adamant_status::Misaligned,
        adamant_status::Overlap,
        adamant_status::InvalidEnum,
        adamant_status::InvalidConfig,
        adamant_status::UnsupportedDtype,
        adamant_status::SkippedFoundInf,
        adamant_status::SkippedNonFinite,
        adamant_status::StepOverflow,
        adamant_status::LengthTooLarge,
        adamant_status::Panic,
        adamant_status::CudaError,
        adamant_status::NoCudaDriver,
    ];

    /// The status with value `v`, if any.
    pub fn from_u32(v: u32) -> Option<adamant_status> {
        Self::ALL.get(v as usize).copied()
    }

    /// A static, NUL-terminated description.
    pub const fn message(self) -> &'static str {
        match self {
            adamant_status::Ok => "ok\0",
            adamant_status::NullPointer => "a required pointer was NULL\0",
            adamant_status::LengthMismatch => "buffer lengths do not match\0",
            adamant_status::Misaligned => "pointer not aligned for its dtype\0",
            adamant_status::Overlap => "buffers overlap\0",
            adamant_status::InvalidEnum => "enum or flag value out of range\0",
            adamant_status::InvalidConfig => "invalid hyper-parameter or step option\0",
            adamant_status::UnsupportedDtype => "dtype not supported for this buffer\0",
            adamant_status::SkippedFoundInf => "step skipped: found_inf was set\0",
            adamant_status::SkippedNonFinite => "step skipped: non-finite gradient\0",
            adamant_status::StepOverflow => "step counter would overflow\0",
            adamant_status::LengthTooLarge => "buffer length overflows the address space\0",
            adamant_status::Panic => "internal panic caught at the ABI boundary (a bug)\0",
            adamant_status::CudaError => "CUDA driver error\0",
            adamant_status::NoCudaDriver => "no CUDA driver available\0",
        }
    }

    /// The status as the integer that crosses the ABI.
    #[inline]
    pub const fn code(self) -> u32 {
        self as u32
    }
}

/// Message for codes that no version of adamant has defined.
pub(crate) const UNKNOWN_STATUS: &str = "unknown status code\0";

impl From<adamant_core::ConfigError> for adamant_status {
    fn from(e: adamant_core::ConfigError) -> Self {
        match e {
            adamant_core::ConfigError::StepOverflow => adamant_status::StepOverflow,
            _ => adamant_status::InvalidConfig,
        }
    }
}

impl From<adamant_core::LayoutError> for adamant_status {
    fn from(_: adamant_core::LayoutError) -> Self {
        adamant_status::LengthMismatch
    }
}

impl From<adamant_core::StepError> for adamant_status {
    fn from(e: adamant_core::StepError) -> Self {
        match e {
            adamant_core::StepError::Config(c) => c.into(),
            adamant_core::StepError::Layout(l) => l.into(),
        }
    }
}

impl From<adamant_core::SkipReason> for adamant_status {
    fn from(r: adamant_core::SkipReason) -> Self {
        match r {
            adamant_core::SkipReason::FoundInf => adamant_status::SkippedFoundInf,
            adamant_core::SkipReason::NonFiniteGrad => adamant_status::SkippedNonFinite,
        }
    }
}

/// Pointer to a static message for `v`.
pub(crate) fn message_ptr(v: u32) -> *const c_char {
    let s = match adamant_status::from_u32(v) {
        Some(s) => s.message(),
        None => UNKNOWN_STATUS,
    };
    s.as_ptr().cast()
}
