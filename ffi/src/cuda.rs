//! CUDA entry points: `adamant_cuda_*`, the same rules as the CPU ABI on device memory, queued
//! on the caller's stream.
//!
//! Shape: views are the CPU ABI's `adamant_tensor` / `adamant_const_tensor` whose `data` is a
//! device address (from `cudaMalloc`, `torch.Tensor.data_ptr()`, ...); the learning rate, step
//! counter, loss scale, clip coefficient and `found_inf` flag live on the device
//! ([`adamant_cuda_step_args`]), so a step needs no host synchronisation and works under CUDA
//! graphs; the stream is a borrowed `CUstream` / `cudaStream_t` passed as `void *` (NULL: the
//! legacy default stream of the current context). Nothing is allocated on the device, nothing
//! synchronises, and no device memory is read on the host.
//!
//! Every entry point checks its arguments exactly as the CPU ABI does (NULL, enum, dtype,
//! length, alignment for the dtype, overlap of the device ranges) and only then looks for the
//! driver: bad arguments give their own status on any machine, and valid ones give
//! `ADAMANT_STATUS_NO_CUDA_DRIVER` where no NVIDIA driver or device is present. The library
//! loads `libcuda` at run time, so it links no NVIDIA library.
//!
//! The step outcome is on the device: the kernels skip the update (and the commit leaves the
//! counter alone) when `*found_inf` is nonzero, and the finite scan sets it to 1.0 when a
//! gradient is NaN or infinite. `ADAMANT_STATUS_OK` means the work was queued.

use crate::multi::{check_all, views, Raw, Spec};
use crate::options::flag;
use crate::status::adamant_status;
use crate::tensor::{
    adamant_const_tensor, adamant_tensor, check_dtype, check_ptr, View, ANY_DTYPE, STATE_DTYPES,
};
use crate::{adamant_adam_config, adamant_lion_config, adamant_sgd_config};
use adamant_core::Dtype;
use adamant_cuda::args::{
    AdamHyper, LionHyper, ReduceEntry, Reduction, Rule, SgdHyper, TensorEntry,
};
use adamant_cuda::capi;
use adamant_cuda::driver::StreamLauncher;
use adamant_cuda::ops::{self, OpError, ReduceInputs, StepRefs, Tensors};
use core::ffi::c_void;

/// Device-resident per-step values of a CUDA step. Every pointer is a device address.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct adamant_cuda_step_args {
    /// f32 learning rate of this step (required).
    pub lr: *const f32,
    /// Count of steps applied so far (required); the step's last kernel adds 1 unless
    /// `*found_inf` is set.
    pub step: *mut u64,
    /// f32 loss scale the gradients are divided by, or NULL for none. Giving one turns the
    /// finite scan on.
    pub grad_scale: *const f32,
    /// f32 clip coefficient the unscaled gradients are multiplied by, or NULL for none.
    pub clip_coef: *const f32,
    /// f32 overflow flag (PyTorch's `found_inf`): nonzero skips the step; the finite scan
    /// stores 1.0 into it. May be NULL only when no scan runs.
    pub found_inf: *mut f32,
    /// 1: scan the gradients first and skip the step on a NaN or infinity; 0: no scan unless
    /// a loss scale is given. Other values: `ADAMANT_STATUS_INVALID_ENUM`.
    pub check_finite: u32,
}

/// A device address argument: `NullPointer` when required and NULL, `Misaligned` when not
/// aligned for `T`; 0 for an optional NULL.
fn device_addr<T>(p: *const T, required: bool) -> Result<u64, adamant_status> {
    if p.is_null() {
        return if required {
            Err(adamant_status::NullPointer)
        } else {
            Ok(0)
        };
    }
    if !p.is_aligned() {
        return Err(adamant_status::Misaligned);
    }
    Ok(p.addr() as u64)
}

impl adamant_cuda_step_args {
    /// The kernels' step references, the clip coefficient's address and whether the scan runs.
    fn refs(&self) -> Result<(StepRefs, u64, bool), adamant_status> {
        let check = flag(self.check_finite)?;
        let refs = StepRefs {
            lr: device_addr(self.lr, true)?,
            step: device_addr(self.step.cast_const(), true)?,
            grad_scale: device_addr(self.grad_scale, false)?,
            found_inf: device_addr(self.found_inf.cast_const(), false)?,
        };
        let clip = device_addr(self.clip_coef, false)?;
        let scan = check || refs.grad_scale != 0;
        if scan && refs.found_inf == 0 {
            return Err(adamant_status::NullPointer);
        }
        Ok((refs, clip, scan))
    }
}

/// The ABI status of a launcher error. Every argument was checked before the launcher ran,
/// so `UnsupportedDtype` and `InvalidArgument` only mean the two checks disagree (reported as
/// the closest CPU status).
fn status_of(e: OpError) -> adamant_status {
    match e {
        OpError::NoDevice(_) => adamant_status::NoCudaDriver,
        OpError::Launch(_) => adamant_status::CudaError,
        OpError::UnsupportedDtype(_) => adamant_status::UnsupportedDtype,
        OpError::InvalidArgument(_) => adamant_status::InvalidConfig,
    }
}

/// The launch entry of one checked tensor: `[param, grad, state0?, state1?]`, keyed for
/// stochastic rounding from its own element 0 (as the CPU ABI's multi-tensor calls).
fn entry<const B: usize>(v: &[View; B], clip: u64) -> TensorEntry {
    let addr = |b: usize| -> u64 {
        if b < B && v[b].len > 0 {
            v[b].ptr.addr() as u64
        } else {
            0
        }
    };
    TensorEntry {
        param: addr(0),
        grad: addr(1),
        state0: addr(2),
        state1: addr(3),
        n: v[0].len as u64,
        sr_index_offset: 0,
        clip_coef: clip,
        chunk_start: 0,
    }
}

/// Dtype codes `(param, grad, state)` of a checked tensor.
fn dtype_codes<const B: usize>(v: &[View; B]) -> [u32; 3] {
    [v[0].dtype as u32, v[1].dtype as u32, v[2].dtype as u32]
}

/// One step of `rule` over `count` device tensors: validate every argument, then (single
/// tensor) the capi step, or (list) the finite scan of every gradient, the update of every
/// tensor and one commit, all on `stream`.
///
/// # Safety
/// As the public entry points.
unsafe fn device_step<const B: usize>(
    rule: Rule,
    hyper: Vec<u8>,
    args: *const adamant_cuda_step_args,
    count: usize,
    specs: &[Spec; B],
    raw: impl Fn(usize) -> [Raw; B],
    lens: impl Fn(&[View; B]) -> Result<(), adamant_status>,
    stream: *mut c_void,
) -> Result<(), adamant_status> {
    let (refs, clip, scan) = try_ref!(args).refs()?;
    check_all(count, specs, &raw, lens, &[])?;
    if count == 1 {
        let v = views(specs, &raw(0))?;
        // SAFETY: the caller's contract (live stream, device buffers of the declared sizes).
        return unsafe {
            capi::step_on_stream(
                stream,
                rule,
                dtype_codes(&v),
                &Tensors::One(entry(&v, clip)),
                &refs,
                hyper,
                scan,
            )
        }
        .map_err(status_of);
    }
    // SAFETY: the caller's contract: `stream` is NULL or a live stream.
    let mut l = unsafe { StreamLauncher::new(stream) }.map_err(|e| status_of(OpError::from(e)))?;
    if scan {
        for i in 0..count {
            let v = views(specs, &raw(i))?;
            let t = Tensors::One(entry(&v, clip));
            ops::nonfinite_scan(&mut l, v[1].dtype, &t, refs.found_inf).map_err(status_of)?;
        }
    }
    for i in 0..count {
        let v = views(specs, &raw(i))?;
        let d = (v[0].dtype, v[1].dtype, v[2].dtype);
        let t = Tensors::One(entry(&v, clip));
        ops::update(&mut l, rule, d, &t, &refs, hyper.clone()).map_err(status_of)?;
    }
    ops::commit(&mut l, &refs).map_err(status_of)
}

const ADAM_SPECS: [Spec; 4] = [
    Spec {
        written: true,
        allowed: ANY_DTYPE,
    },
    Spec {
        written: false,
        allowed: ANY_DTYPE,
    },
    Spec {
        written: true,
        allowed: STATE_DTYPES,
    },
    Spec {
        written: true,
        allowed: STATE_DTYPES,
    },
];

const THREE_SPECS: [Spec; 3] = [
    Spec {
        written: true,
        allowed: ANY_DTYPE,
    },
    Spec {
        written: false,
        allowed: ANY_DTYPE,
    },
    Spec {
        written: true,
        allowed: STATE_DTYPES,
    },
];

fn adam_lens(v: &[View; 4]) -> Result<(), adamant_status> {
    let n = v[0].len;
    if v[1].len != n || v[2].len != n || v[3].len != n {
        return Err(adamant_status::LengthMismatch);
    }
    if v[2].dtype != v[3].dtype {
        return Err(adamant_status::UnsupportedDtype);
    }
    Ok(())
}

fn same_lens(v: &[View; 3]) -> Result<(), adamant_status> {
    let n = v[0].len;
    if v[1].len != n || v[2].len != n {
        return Err(adamant_status::LengthMismatch);
    }
    Ok(())
}

unsafe fn adam_any(
    decoupled: bool,
    config: *const adamant_adam_config,
    args: *const adamant_cuda_step_args,
    count: usize,
    raw: impl Fn(usize) -> [Raw; 4],
    stream: *mut c_void,
) -> Result<(), adamant_status> {
    let config = *try_ref!(config);
    // Pointers and flags before values, as the CPU ABI.
    try_ref!(args).refs()?;
    // The learning rate is on the device: validate the rest at lr 0.
    let cfg = config.to_core(decoupled, 0.0)?;
    cfg.validate()?;
    let hyper = AdamHyper::from_config(&cfg).to_bytes();
    // SAFETY: forwarded caller contract.
    unsafe {
        device_step(
            Rule::Adam,
            hyper,
            args,
            count,
            &ADAM_SPECS,
            raw,
            adam_lens,
            stream,
        )
    }
}

unsafe fn adam_multi(
    decoupled: bool,
    config: *const adamant_adam_config,
    args: *const adamant_cuda_step_args,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    exp_avg_sqs: *const adamant_tensor,
    count: usize,
    stream: *mut c_void,
) -> Result<(), adamant_status> {
    let _ = try_ref!(config);
    let _ = try_ref!(args);
    let p = try_slice!(params, count);
    let g = try_slice!(grads, count);
    let m = try_slice!(exp_avgs, count);
    let v = try_slice!(exp_avg_sqs, count);
    let raw = |i: usize| [p[i].into(), g[i].into(), m[i].into(), v[i].into()];
    // SAFETY: forwarded caller contract.
    unsafe { adam_any(decoupled, config, args, count, raw, stream) }
}

/// AdamW (decoupled weight decay) step over one device tensor, queued on `stream`: the
/// update of `adamant_adamw_step` (same per-element operations, same bits as the CPU) with
/// the learning rate, loss scale, clip coefficient, `found_inf` and step counter read from
/// the device (`args`). Dtypes and length rules as `adamant_adamw_step`.
///
/// Returns `ADAMANT_STATUS_OK` when the step was queued; argument errors as the CPU ABI
/// (nothing queued); `ADAMANT_STATUS_NO_CUDA_DRIVER` without an NVIDIA driver or device;
/// `ADAMANT_STATUS_CUDA_ERROR` when the driver refused a launch.
///
/// # Safety
/// `config` and `args` point to valid host structs; every view's `data` and every pointer in
/// `args` is a device address of the current context holding the declared elements, valid
/// until the stream has run the step; `stream` is NULL or a live stream of the current
/// context.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adamw_step(
    config: *const adamant_adam_config,
    args: *const adamant_cuda_step_args,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    exp_avg: adamant_tensor,
    exp_avg_sq: adamant_tensor,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let raw = |_| [param.into(), grad.into(), exp_avg.into(), exp_avg_sq.into()];
        // SAFETY: the caller's contract above.
        unsafe { adam_any(true, config, args, 1, raw, stream) }
    })
}

/// Adam (L2 weight decay) step over one device tensor; see `adamant_cuda_adamw_step` and
/// `adamant_adam_step`.
///
/// # Safety
/// As `adamant_cuda_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adam_step(
    config: *const adamant_adam_config,
    args: *const adamant_cuda_step_args,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    exp_avg: adamant_tensor,
    exp_avg_sq: adamant_tensor,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let raw = |_| [param.into(), grad.into(), exp_avg.into(), exp_avg_sq.into()];
        // SAFETY: the caller's contract above.
        unsafe { adam_any(false, config, args, 1, raw, stream) }
    })
}

/// AdamW step over `count` device tensors sharing one step counter: the finite scan of every
/// gradient (when on), then every update, then one commit, all on `stream`. Same bits as
/// one `adamant_cuda_adamw_step` per tensor (and as `adamant_adamw_step_multi`). The view
/// arrays are host memory, read during the call only.
///
/// # Safety
/// As `adamant_cuda_adamw_step` for every view; each array holds `count` views (may be NULL
/// when `count` is 0).
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adamw_step_multi(
    config: *const adamant_adam_config,
    args: *const adamant_cuda_step_args,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    exp_avg_sqs: *const adamant_tensor,
    count: usize,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        unsafe {
            adam_multi(
                true,
                config,
                args,
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                count,
                stream,
            )
        }
    })
}

/// Adam step over `count` device tensors; see `adamant_cuda_adamw_step_multi`.
///
/// # Safety
/// As `adamant_cuda_adamw_step_multi`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adam_step_multi(
    config: *const adamant_adam_config,
    args: *const adamant_cuda_step_args,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    exp_avg_sqs: *const adamant_tensor,
    count: usize,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        unsafe {
            adam_multi(
                false,
                config,
                args,
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                count,
                stream,
            )
        }
    })
}

unsafe fn sgd_any(
    config: *const adamant_sgd_config,
    args: *const adamant_cuda_step_args,
    count: usize,
    raw: impl Fn(usize) -> [Raw; 3],
    stream: *mut c_void,
) -> Result<(), adamant_status> {
    let config = *try_ref!(config);
    // Pointers and flags before values, as the CPU ABI.
    try_ref!(args).refs()?;
    let cfg = config.to_core(0.0)?;
    cfg.validate()?;
    let with_buf = cfg.has_momentum();
    let lens = move |v: &[View; 3]| {
        let n = v[0].len;
        let want_buf = if with_buf { n } else { 0 };
        if v[1].len != n || v[2].len != want_buf {
            return Err(adamant_status::LengthMismatch);
        }
        Ok(())
    };
    let hyper = SgdHyper::from_config(&cfg).to_bytes();
    // SAFETY: forwarded caller contract.
    unsafe {
        device_step(
            Rule::Sgd,
            hyper,
            args,
            count,
            &THREE_SPECS,
            raw,
            lens,
            stream,
        )
    }
}

/// SGD step over one device tensor (`momentum_buffer` empty without momentum); see
/// `adamant_sgd_step` for the rule and `adamant_cuda_adamw_step` for the device contract.
///
/// # Safety
/// As `adamant_cuda_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_sgd_step(
    config: *const adamant_sgd_config,
    args: *const adamant_cuda_step_args,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    momentum_buffer: adamant_tensor,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let raw = |_| [param.into(), grad.into(), momentum_buffer.into()];
        // SAFETY: the caller's contract above.
        unsafe { sgd_any(config, args, 1, raw, stream) }
    })
}

/// SGD step over `count` device tensors; see `adamant_cuda_adamw_step_multi`.
///
/// # Safety
/// As `adamant_cuda_adamw_step_multi`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_sgd_step_multi(
    config: *const adamant_sgd_config,
    args: *const adamant_cuda_step_args,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    momentum_buffers: *const adamant_tensor,
    count: usize,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let _ = try_ref!(config);
        let _ = try_ref!(args);
        let p = try_slice!(params, count);
        let g = try_slice!(grads, count);
        let b = try_slice!(momentum_buffers, count);
        let raw = |i: usize| [p[i].into(), g[i].into(), b[i].into()];
        // SAFETY: the caller's contract above.
        unsafe { sgd_any(config, args, count, raw, stream) }
    })
}

unsafe fn lion_any(
    config: *const adamant_lion_config,
    args: *const adamant_cuda_step_args,
    count: usize,
    raw: impl Fn(usize) -> [Raw; 3],
    stream: *mut c_void,
) -> Result<(), adamant_status> {
    let config = *try_ref!(config);
    // Pointers and flags before values, as the CPU ABI.
    try_ref!(args).refs()?;
    let cfg = config.to_core(0.0)?;
    cfg.validate()?;
    let hyper = LionHyper::from_config(&cfg).to_bytes();
    // SAFETY: forwarded caller contract.
    unsafe {
        device_step(
            Rule::Lion,
            hyper,
            args,
            count,
            &THREE_SPECS,
            raw,
            same_lens,
            stream,
        )
    }
}

/// Lion step over one device tensor; see `adamant_lion_step` for the rule and
/// `adamant_cuda_adamw_step` for the device contract.
///
/// # Safety
/// As `adamant_cuda_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_lion_step(
    config: *const adamant_lion_config,
    args: *const adamant_cuda_step_args,
    param: adamant_tensor,
    grad: adamant_const_tensor,
    exp_avg: adamant_tensor,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let raw = |_| [param.into(), grad.into(), exp_avg.into()];
        // SAFETY: the caller's contract above.
        unsafe { lion_any(config, args, 1, raw, stream) }
    })
}

/// Lion step over `count` device tensors; see `adamant_cuda_adamw_step_multi`.
///
/// # Safety
/// As `adamant_cuda_adamw_step_multi`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_lion_step_multi(
    config: *const adamant_lion_config,
    args: *const adamant_cuda_step_args,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    count: usize,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let _ = try_ref!(config);
        let _ = try_ref!(args);
        let p = try_slice!(params, count);
        let g = try_slice!(grads, count);
        let m = try_slice!(exp_avgs, count);
        let raw = |i: usize| [p[i].into(), g[i].into(), m[i].into()];
        // SAFETY: the caller's contract above.
        unsafe { lion_any(config, args, count, raw, stream) }
    })
}

/// Finite scan of `count` device gradients on `stream`: stores f32 1.0 into the device flag
/// `*found_inf` if any element is NaN or infinite, and writes nothing otherwise (the caller
/// zeroes the flag before the step). For callers that run their own update between the scan
/// and `adamant_cuda_step_commit`.
///
/// # Safety
/// `grads` holds `count` views of device memory (may be NULL when `count` is 0);
/// `found_inf` is a device address; `stream` as `adamant_cuda_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_nonfinite_check(
    grads: *const adamant_const_tensor,
    count: usize,
    found_inf: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let g = try_slice!(grads, count);
        let flag_addr = device_addr(found_inf.cast_const(), true)?;
        const SPECS: [Spec; 1] = [Spec {
            written: false,
            allowed: ANY_DTYPE,
        }];
        let raw = |i: usize| -> [Raw; 1] { [g[i].into()] };
        check_all(count, &SPECS, raw, |_| Ok(()), &[])?;
        // SAFETY: the caller's contract: `stream` is NULL or a live stream.
        let mut l =
            unsafe { StreamLauncher::new(stream) }.map_err(|e| status_of(OpError::from(e)))?;
        for i in 0..count {
            let v = views(&SPECS, &raw(i))?;
            let t = Tensors::One(TensorEntry {
                grad: v[0].ptr.addr() as u64,
                n: v[0].len as u64,
                ..TensorEntry::default()
            });
            ops::nonfinite_scan(&mut l, v[0].dtype, &t, flag_addr).map_err(status_of)?;
        }
        Ok(())
    })
}

/// The end of a step on `stream`: `*step += 1` on the device unless `*found_inf` is nonzero
/// (`found_inf` may be NULL: always advance).
///
/// # Safety
/// `step` (and `found_inf` when not NULL) are device addresses; `stream` as
/// `adamant_cuda_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_step_commit(
    step: *mut u64,
    found_inf: *const f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let refs = StepRefs {
            step: device_addr(step.cast_const(), true)?,
            found_inf: device_addr(found_inf, false)?,
            ..StepRefs::default()
        };
        // SAFETY: the caller's contract: `stream` is NULL or a live stream.
        let mut l =
            unsafe { StreamLauncher::new(stream) }.map_err(|e| status_of(OpError::from(e)))?;
        ops::commit(&mut l, &refs).map_err(status_of)
    })
}

/// The reduction of an `adamant_reduce_op` value (0 sum, 1 sum of squares).
fn reduction(op: u32) -> Result<Reduction, adamant_status> {
    match op {
        0 => Ok(Reduction::Sum),
        1 => Ok(Reduction::SumSq),
        _ => Err(adamant_status::InvalidEnum),
    }
}

/// Per-tile partials of a device buffer on `stream`, as `adamant_reduce_partials`: tile `t`
/// of 4096 values gives one f32 into `out_partials` (a device f32 view of exactly
/// `adamant_reduce_tile_count(x.len)` elements). `op` is an `adamant_reduce_op`.
///
/// # Safety
/// Both views are device memory of the current context; `stream` as `adamant_cuda_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_reduce_partials(
    op: u32,
    x: adamant_const_tensor,
    out_partials: adamant_tensor,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let kind = reduction(op)?;
        let xd = check_dtype(x.dtype, ANY_DTYPE)?;
        let od = check_dtype(out_partials.dtype, &[Dtype::F32])?;
        let xv = check_ptr(x.data, xd, x.len, false)?;
        let ov = check_ptr(out_partials.data.cast_const(), od, out_partials.len, true)?;
        if ov.len != adamant_core::reduce::tile_count(xv.len) {
            return Err(adamant_status::LengthMismatch);
        }
        crate::tensor::check_overlap(2, |i| [xv.as_range(), ov.as_range()][i])?;
        let e = ReduceEntry {
            x: if xv.len > 0 { xv.ptr.addr() as u64 } else { 0 },
            n: xv.len as u64,
            out: if ov.len > 0 { ov.ptr.addr() as u64 } else { 0 },
            tile_start: 0,
        };
        // SAFETY: the caller's contract above.
        unsafe { capi::partials_on_stream(stream, kind, xd as u32, &ReduceInputs::One(e)) }
            .map_err(status_of)
    })
}

/// f32 elements of device scratch `adamant_cuda_reduce_combine` needs for `count` partials.
#[no_mangle]
pub extern "C" fn adamant_cuda_reduce_combine_scratch_len(count: usize) -> usize {
    ops::combine_scratch_len(count as u64) as usize
}

/// Combine `partials` (a device f32 view, in global tile order, at least one element) to one
/// value on `stream`, as `adamant_reduce_combine` (sum and sum of squares both add the
/// partials). `scratch` is a device f32 view of at least
/// `adamant_cuda_reduce_combine_scratch_len(partials.len)` elements (may be empty for one
/// partial). On success `*out_result` (host) receives the device address of the result: the
/// first partial itself when there is one, else an element of `scratch`.
///
/// # Safety
/// Both views are device memory of the current context; `out_result` is a writable host
/// pointer; `stream` as `adamant_cuda_adamw_step`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_reduce_combine(
    partials: adamant_const_tensor,
    scratch: adamant_tensor,
    out_result: *mut *const f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let out_result = try_out!(out_result);
        let pd = check_dtype(partials.dtype, &[Dtype::F32])?;
        let sd = check_dtype(scratch.dtype, &[Dtype::F32])?;
        let pv = check_ptr(partials.data, pd, partials.len, false)?;
        let sv = check_ptr(scratch.data.cast_const(), sd, scratch.len, true)?;
        if pv.len == 0 || sv.len < adamant_cuda_reduce_combine_scratch_len(pv.len) {
            return Err(adamant_status::LengthMismatch);
        }
        crate::tensor::check_overlap(2, |i| [pv.as_range(), sv.as_range()][i])?;
        let scratch_addr = if sv.len > 0 { sv.ptr.addr() as u64 } else { 0 };
        // SAFETY: the caller's contract above.
        let r = unsafe {
            capi::combine_on_stream(
                stream,
                Reduction::Sum,
                pv.ptr.addr() as u64,
                pv.len as u64,
                scratch_addr,
            )
        }
        .map_err(status_of)?;
        // SAFETY: non-NULL and aligned (try_out!); a host pointer the caller owns.
        unsafe { out_result.write(core::ptr::without_provenance(r as usize)) };
        Ok(())
    })
}

/// Whether a CUDA driver and device are usable: `ADAMANT_STATUS_OK`, or
/// `ADAMANT_STATUS_NO_CUDA_DRIVER` (no NVIDIA driver installed, or no device), or
/// `ADAMANT_STATUS_CUDA_ERROR` (the driver failed to initialise).
#[no_mangle]
pub extern "C" fn adamant_cuda_available() -> adamant_status {
    ffi_boundary!({ capi::probe().map_err(status_of) })
}
