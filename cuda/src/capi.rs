//! C-shaped entry points for the `adamant_cuda_*` ABI (wrapped by `adamant-ffi`): device
//! addresses as `u64`, the caller's stream as `*mut c_void`, dtypes as their ABI codes
//! (`adamant_core::Dtype`), results as [`OpError`] (its `NoDevice` is the ABI's "no CUDA
//! device" status). Every function checks for the driver first, so on a machine without one
//! each returns `NoDevice`. Nothing here allocates, synchronizes or reads device memory.

use crate::args::{
    AdamHyper, ClipBuffers, ClipHyper, LionHyper, MiniHyper, Reduction, Rule, SgdHyper,
};
use crate::driver::StreamLauncher;
use crate::ops::{self, ClipInputs, MiniLaunch, OpError, ReduceInputs, StepRefs, Tensors};
use adamant_core::quant::QuantLayout;
use adamant_core::Dtype;
use std::ffi::c_void;

fn dtype(code: u32) -> Result<Dtype, OpError> {
    Dtype::from_u32(code).ok_or_else(|| OpError::UnsupportedDtype(format!("dtype code {code}")))
}

fn dtypes(codes: [u32; 3]) -> Result<(Dtype, Dtype, Dtype), OpError> {
    Ok((dtype(codes[0])?, dtype(codes[1])?, dtype(codes[2])?))
}

/// # Safety
/// `stream` must be null or a live `CUstream` of the current device.
unsafe fn launcher(stream: *mut c_void) -> Result<StreamLauncher, OpError> {
    // SAFETY: forwarded from the caller.
    Ok(unsafe { StreamLauncher::new(stream) }?)
}

/// One step of `rule` on `stream`: finite scan (when `check_finite` or a loss scale is given),
/// update, commit. `dtype_codes` = (param, grad, state).
///
/// # Safety
/// `stream` must be null or a live `CUstream`; every device address must point to memory of
/// the current context with the sizes the tensors declare, valid until the stream runs them.
pub unsafe fn step_on_stream(
    stream: *mut c_void,
    rule: Rule,
    dtype_codes: [u32; 3],
    tensors: &Tensors,
    refs: &StepRefs,
    hyper: &[u8],
    check_finite: bool,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    ops::step(
        &mut l,
        rule,
        dtypes(dtype_codes)?,
        tensors,
        refs,
        hyper,
        check_finite,
    )
}

/// A rule's typed step on `stream`: [`step_on_stream`] with the hyper-parameters' bytes.
macro_rules! rule_step_on_stream {
    ($(#[$doc:meta])* $name:ident, $rule:expr, $hyper:ty) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// As [`step_on_stream`].
        pub unsafe fn $name(
            stream: *mut c_void,
            dtype_codes: [u32; 3],
            tensors: &Tensors,
            refs: &StepRefs,
            hyper: &$hyper,
            check_finite: bool,
        ) -> Result<(), OpError> {
            let hyper = hyper.to_bytes();
            // SAFETY: forwarded from the caller.
            unsafe {
                step_on_stream(stream, $rule, dtype_codes, tensors, refs, &hyper, check_finite)
            }
        }
    };
}

rule_step_on_stream!(
    /// Adam/AdamW step on `stream` (see [`step_on_stream`]).
    adam_step_on_stream, Rule::Adam, AdamHyper
);
rule_step_on_stream!(
    /// SGD step on `stream` (see [`step_on_stream`]).
    sgd_step_on_stream, Rule::Sgd, SgdHyper
);
rule_step_on_stream!(
    /// Lion step on `stream` (see [`step_on_stream`]).
    lion_step_on_stream, Rule::Lion, LionHyper
);

/// Per-tile partials of a reduction on `stream` (see [`ops::partials`]).
///
/// # Safety
/// As [`step_on_stream`].
pub unsafe fn partials_on_stream(
    stream: *mut c_void,
    kind: Reduction,
    dtype_code: u32,
    inputs: &ReduceInputs,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    ops::partials(&mut l, kind, dtype(dtype_code)?, inputs)
}

/// Combine `m` partials on `stream` (see [`ops::combine`]); returns the result's address.
///
/// # Safety
/// As [`step_on_stream`].
pub unsafe fn combine_on_stream(
    stream: *mut c_void,
    kind: Reduction,
    partials: u64,
    m: u64,
    scratch: u64,
) -> Result<u64, OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    ops::combine(&mut l, kind, partials, m, scratch)
}

/// Adam-mini step on `stream` (see [`ops::mini_step`]). `dtype_codes` = (param, grad, state).
///
/// # Safety
/// As [`step_on_stream`]; the tables of `launch` and the scratch its segments name must stay
/// valid until the stream runs the step.
pub unsafe fn mini_step_on_stream(
    stream: *mut c_void,
    dtype_codes: [u32; 3],
    launch: &MiniLaunch,
    refs: &StepRefs,
    hyper: &MiniHyper,
    check_finite: bool,
) -> Result<(), OpError> {
    let dt = dtypes(dtype_codes)?;
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    ops::mini_step(&mut l, dt, launch, refs, hyper, check_finite)
}

/// Clip coefficients on `stream` (see [`ops::clip_coefficients`]).
///
/// # Safety
/// As [`step_on_stream`].
pub unsafe fn clip_coefficients_on_stream(
    stream: *mut c_void,
    grad_dtype_code: u32,
    inputs: &ClipInputs,
    grad_scale: u64,
    buffers: &ClipBuffers,
    hyper: &ClipHyper,
) -> Result<(), OpError> {
    let g = dtype(grad_dtype_code)?;
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    ops::clip_coefficients(&mut l, g, inputs, grad_scale, buffers, hyper)
}

/// AdaGC commit on `stream` (see [`ops::clip_commit`]).
///
/// # Safety
/// As [`step_on_stream`].
pub unsafe fn clip_commit_on_stream(
    stream: *mut c_void,
    buffers: &ClipBuffers,
    found_inf: u64,
    hyper: &ClipHyper,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    ops::clip_commit(&mut l, buffers, found_inf, hyper)
}

/// Whether a CUDA driver and device are usable (`Err(NoDevice)` explains why not).
pub fn probe() -> Result<(), OpError> {
    Ok(crate::driver::init_driver()?)
}

// Quantizers, LoCo and two-way error feedback on a stream (see the `ops` functions of the
// same names). `status` is the device address of a 32-bit word the caller zeroes: where core
// would return an error the kernels store f32 1.0 into it and write nothing else.

fn quant_bits(b: u32) -> Result<adamant_core::quant::Bits, OpError> {
    adamant_core::quant::Bits::from_u32(b)
        .ok_or_else(|| OpError::InvalidArgument(format!("{b}-bit codes (4 or 8)")))
}

fn quant_layout(len: usize, group_len: usize, bits: u32) -> Result<QuantLayout, OpError> {
    let bits = quant_bits(bits)?;
    Ok(QuantLayout {
        len,
        group_len,
        bits,
    })
}

fn error_storage(code: u32) -> Result<adamant_core::feedback::ErrorStorage, OpError> {
    use adamant_core::feedback::ErrorStorage;
    match code {
        0 => Ok(ErrorStorage::F32),
        1 => Ok(ErrorStorage::Int8),
        c => Err(OpError::InvalidArgument(format!("error storage code {c}"))),
    }
}

/// `adamant_core::quant::quantize` on `stream`: `len` values (dtype code `dtype_code`) at `x`
/// into the packed buffer at `packed`, groups of `group_len`, `bits` 4 or 8.
///
/// # Safety
/// As [`step_on_stream`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn quantize_on_stream(
    stream: *mut c_void,
    dtype_code: u32,
    len: usize,
    group_len: usize,
    bits: u32,
    x: u64,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    let layout = quant_layout(len, group_len, bits)?;
    ops::quantize(&mut l, dtype(dtype_code)?, &layout, x, packed, status)
}

/// `adamant_core::quant::dequantize` on `stream` into `len` f32 values at `out`.
///
/// # Safety
/// As [`step_on_stream`].
pub unsafe fn dequantize_on_stream(
    stream: *mut c_void,
    len: usize,
    group_len: usize,
    bits: u32,
    packed: u64,
    out: u64,
    status: u64,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    let layout = quant_layout(len, group_len, bits)?;
    ops::dequantize(&mut l, &layout, packed, out, status)
}

/// `adamant_core::loco::compress` on `stream` (see [`ops::loco_compress`]).
///
/// # Safety
/// As [`step_on_stream`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn loco_compress_on_stream(
    stream: *mut c_void,
    plan: &adamant_core::loco::LocoPlan,
    layout: &adamant_core::loco::LocoLayout,
    grad_dtype_code: u32,
    grad: u64,
    err: u64,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    let d = dtype(grad_dtype_code)?;
    ops::loco_compress(&mut l, plan, layout, d, grad, err, packed, status)
}

/// `adamant_core::loco::reduce_hop` on `stream` (see [`ops::loco_reduce_hop`]).
///
/// # Safety
/// As [`step_on_stream`].
pub unsafe fn loco_reduce_hop_on_stream(
    stream: *mut c_void,
    plan: &adamant_core::loco::LocoPlan,
    layout: &adamant_core::loco::LocoLayout,
    received: u64,
    err_inter: u64,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    ops::loco_reduce_hop(&mut l, plan, layout, received, err_inter, packed, status)
}

/// `adamant_core::loco::decompress_reduce` (`average`) or `decompress_sum` on `stream`.
///
/// # Safety
/// As [`step_on_stream`].
pub unsafe fn loco_decompress_on_stream(
    stream: *mut c_void,
    layout: &adamant_core::loco::LocoLayout,
    received: u64,
    out: u64,
    average: bool,
    status: u64,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    ops::loco_decompress(&mut l, layout, received, out, average, status)
}

/// `adamant_core::feedback::ef_worker_compress` on `stream`; `storage_code` 0 = f32 errors,
/// 1 = 8-bit.
///
/// # Safety
/// As [`step_on_stream`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn ef_worker_compress_on_stream(
    stream: *mut c_void,
    layout: &adamant_core::feedback::ShardLayout,
    dtype_code: u32,
    x: u64,
    err: u64,
    storage_code: u32,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    let (d, s) = (dtype(dtype_code)?, error_storage(storage_code)?);
    ops::ef_worker_compress(&mut l, layout, d, x, err, s, packed, status)
}

/// `adamant_core::feedback::ef_server_compress` on `stream`; `storage_code` as
/// [`ef_worker_compress_on_stream`].
///
/// # Safety
/// As [`step_on_stream`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn ef_server_compress_on_stream(
    stream: *mut c_void,
    worker: &adamant_core::quant::QuantLayout,
    server_bits: u32,
    received: u64,
    workers: usize,
    err: u64,
    storage_code: u32,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    let (b, s) = (quant_bits(server_bits)?, error_storage(storage_code)?);
    ops::ef_server_compress(&mut l, worker, b, received, workers, err, s, packed, status)
}

/// `adamant_core::feedback::ef_decompress` on `stream`.
///
/// # Safety
/// As [`step_on_stream`].
pub unsafe fn ef_decompress_on_stream(
    stream: *mut c_void,
    layout: &adamant_core::feedback::ShardLayout,
    packed: u64,
    out: u64,
    status: u64,
) -> Result<(), OpError> {
    // SAFETY: forwarded from the caller.
    let mut l = unsafe { launcher(stream) }?;
    ops::ef_decompress(&mut l, layout, packed, out, status)
}
