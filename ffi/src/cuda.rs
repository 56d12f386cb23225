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

use crate::cuda_dev::{launch, on_stream};
use crate::loco::no_overlap;
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
use adamant_cuda::ops::{self, Launcher, OpError, ReduceInputs, StepRefs, Tensors};
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
pub(crate) fn device_addr<T>(p: *const T, required: bool) -> Result<u64, adamant_status> {
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
    pub(crate) fn refs(&self) -> Result<(StepRefs, u64, bool), adamant_status> {
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
pub(crate) fn status_of(e: OpError) -> adamant_status {
    match e {
        OpError::NoDevice(_) => adamant_status::NoCudaDriver,
        OpError::Launch(_) => adamant_status::CudaError,
        OpError::UnsupportedDtype(_) => adamant_status::UnsupportedDtype,
        OpError::InvalidArgument(_) => adamant_status::InvalidConfig,
    }
}

/// The launch entry of one checked tensor: `[param, grad, state0?, state1?]`, keyed for
/// stochastic rounding from its own element 0 (as the CPU ABI's multi-tensor calls).
pub(crate) fn entry<const B: usize>(v: &[View; B], clip: u64) -> TensorEntry {
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

/// One step of `rule` over `count` device tensors from its host `config`: the config and
/// `args` checked (pointers and flags before values, as the CPU ABI), then `prepare` (the
/// rule's validation, at learning rate 0 since the rate is on the device) gives the kernel
/// hyperparameters and the length rule, then every view is checked and the step queued on
/// `stream` (see [`checked_step`]).
///
/// # Safety
/// As the public entry points.
unsafe fn rule_step<C: Copy, H: AsRef<[u8]>, F, const B: usize>(
    rule: Rule,
    config: *const C,
    args: *const adamant_cuda_step_args,
    count: usize,
    specs: &[Spec; B],
    raw: impl Fn(usize) -> [Raw; B],
    prepare: impl FnOnce(C) -> Result<(H, F), adamant_status>,
    stream: *mut c_void,
) -> Result<(), adamant_status>
where
    F: Fn(&[View; B]) -> Result<(), adamant_status>,
{
    let config = *try_ref!(config);
    let args = *try_ref!(args);
    args.refs()?;
    let (hyper, lens) = prepare(config)?;
    let hyper = hyper.as_ref();
    // SAFETY: the caller's contract: `stream` is NULL or a live stream of the current context.
    let launcher = unsafe { on_stream(stream) };
    checked_step(rule, hyper, &args, count, specs, raw, lens, launcher)
}

/// Validate a whole step (device scalars, every view), then get the launcher from `launcher`
/// (the driver check) and queue: one tensor as `ops::step` (scan, update, commit); a list as
/// the scan of every gradient, the update of every tensor, one commit. Each tensor is one
/// launch keyed from its own element 0, so a list gives the bits of one call per tensor.
pub(crate) fn checked_step<L: Launcher, const B: usize>(
    rule: Rule,
    hyper: &[u8],
    args: &adamant_cuda_step_args,
    count: usize,
    specs: &[Spec; B],
    raw: impl Fn(usize) -> [Raw; B],
    lens: impl Fn(&[View; B]) -> Result<(), adamant_status>,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let (refs, clip, scan) = args.refs()?;
    check_all(count, specs, &raw, lens, &[])?;
    let mut l = launcher()?;
    if count == 1 {
        let v = views(specs, &raw(0))?;
        let d = (v[0].dtype, v[1].dtype, v[2].dtype);
        let t = Tensors::One(entry(&v, clip));
        return ops::step(&mut l, rule, d, &t, &refs, hyper, scan).map_err(status_of);
    }
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
        ops::update(&mut l, rule, d, &t, &refs, hyper).map_err(status_of)?;
    }
    ops::commit(&mut l, &refs).map_err(status_of)
}

pub(crate) const ADAM_SPECS: [Spec; 4] = [
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

pub(crate) const THREE_SPECS: [Spec; 3] = [
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

pub(crate) fn adam_lens(v: &[View; 4]) -> Result<(), adamant_status> {
    let n = v[0].len;
    if v[1].len != n || v[2].len != n || v[3].len != n {
        return Err(adamant_status::LengthMismatch);
    }
    if v[2].dtype != v[3].dtype {
        return Err(adamant_status::UnsupportedDtype);
    }
    Ok(())
}

pub(crate) fn same_lens(v: &[View; 3]) -> Result<(), adamant_status> {
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
    let prepare = |c: adamant_adam_config| -> Result<_, adamant_status> {
        let cfg = c.to_core(decoupled, 0.0)?;
        cfg.validate()?;
        Ok((AdamHyper::from_config(&cfg).to_bytes(), adam_lens))
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        rule_step(
            Rule::Adam,
            config,
            args,
            count,
            &ADAM_SPECS,
            raw,
            prepare,
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
    let prepare = |c: adamant_sgd_config| -> Result<_, adamant_status> {
        let cfg = c.to_core(0.0)?;
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
        Ok((SgdHyper::from_config(&cfg).to_bytes(), lens))
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        rule_step(
            Rule::Sgd,
            config,
            args,
            count,
            &THREE_SPECS,
            raw,
            prepare,
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
    let prepare = |c: adamant_lion_config| -> Result<_, adamant_status> {
        let cfg = c.to_core(0.0)?;
        cfg.validate()?;
        Ok((LionHyper::from_config(&cfg).to_bytes(), same_lens))
    };
    // SAFETY: forwarded caller contract.
    unsafe {
        rule_step(
            Rule::Lion,
            config,
            args,
            count,
            &THREE_SPECS,
            raw,
            prepare,
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
        let mut l = unsafe { on_stream(stream) }()?;
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
        launch(unsafe { on_stream(stream) }, |l| ops::commit(l, &refs))
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
        no_overlap(&[xv.as_range(), ov.as_range()])?;
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
        no_overlap(&[pv.as_range(), sv.as_range()])?;
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

#[cfg(test)]
mod sim_tests {
    //! The queueing of the step entry points, run on the PTX simulator (the committed kernels
    //! executed on the CPU) and compared with the CPU ABI bit for bit.
    use super::*;
    use crate::cuda_dev::sim::{sim, Borrowed};
    use crate::{adamant_adamw_config_default, adamant_adamw_step_multi, adamant_step_options};
    use adamant_core::{bf16, Element};
    use adamant_cuda::backend::Backend;
    use ptx_sim::Simulator;

    fn put<T: Element>(s: &mut Simulator, v: &[T]) -> u64 {
        let bytes: Vec<u8> = v
            .iter()
            .flat_map(|x| {
                let b = x.to_bits_u32().to_le_bytes();
                b[..core::mem::size_of::<T>()].to_vec()
            })
            .collect();
        let a = s.alloc(bytes.len().max(4)).unwrap();
        s.upload(a, &bytes).unwrap();
        a
    }

    fn get<T: Element>(s: &mut Simulator, a: u64, n: usize) -> Vec<u32> {
        let size = core::mem::size_of::<T>();
        let mut b = vec![0u8; n * size];
        s.download(a, &mut b).unwrap();
        b.chunks(size)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..size].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect()
    }

    fn bits<T: Element>(v: &[T]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits_u32()).collect()
    }

    fn values(n: usize, k: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = (i as u32 ^ k).wrapping_mul(2_654_435_761);
                (x % 4001) as f32 / 500.0 - 4.0
            })
            .collect()
    }

    /// AdamW over three tensors (bf16 parameters with stochastic rounding, bf16 gradients,
    /// f32 states, one empty tensor) with a loss scale and a clip coefficient: the simulated
    /// list step equals `adamant_adamw_step_multi` bit for bit, the device counter advances;
    /// a non-finite gradient sets `found_inf`, writes nothing and leaves the counter.
    #[test]
    #[cfg_attr(miri, ignore = "interprets PTX: far too slow under Miri")]
    fn conformance_multi_step_on_the_simulator_equals_the_cpu_abi() {
        let lens = [300usize, 0, 37];
        let mut cfg = adamant_adamw_config_default();
        cfg.stochastic_rounding = 1;
        cfg.stochastic_rounding_seed = 77;
        for poison in [false, true] {
            let mut s = sim();
            let mut p: Vec<Vec<bf16>> = lens
                .iter()
                .enumerate()
                .map(|(t, &n)| {
                    values(n, t as u32)
                        .iter()
                        .map(|&x| bf16::from_f32(x))
                        .collect()
                })
                .collect();
            let mut g: Vec<Vec<bf16>> = lens
                .iter()
                .enumerate()
                .map(|(t, &n)| {
                    values(n, 9 + t as u32)
                        .iter()
                        .map(|&x| bf16::from_f32(x))
                        .collect()
                })
                .collect();
            if poison {
                g[2][5] = bf16::from_f32(f32::INFINITY);
            }
            let mut m: Vec<Vec<f32>> = lens
                .iter()
                .map(|&n| values(n, 3).iter().map(|x| x * 0.1).collect())
                .collect();
            let mut v: Vec<Vec<f32>> = lens
                .iter()
                .map(|&n| values(n, 4).iter().map(|x| x.abs()).collect())
                .collect();
            let addr = |s: &mut Simulator, p: &[bf16], g: &[bf16], m: &[f32], v: &[f32]| {
                (put(s, p), put(s, g), put(s, m), put(s, v))
            };
            let dev: Vec<(u64, u64, u64, u64)> = (0..3)
                .map(|t| addr(&mut s, &p[t], &g[t], &m[t], &v[t]))
                .collect();
            let (lr, scale, clip) = (0.0078125f32, 512.0f32, 0.75f32);
            let lr_a = put(&mut s, &[lr]);
            let scale_a = put(&mut s, &[scale]);
            let clip_a = put(&mut s, &[clip]);
            let found_a = put(&mut s, &[0.0f32]);
            let step_a = s.alloc(8).unwrap();
            s.upload(step_a, &3u64.to_le_bytes()).unwrap();
            let args = adamant_cuda_step_args {
                lr: core::ptr::without_provenance(lr_a as usize),
                step: core::ptr::without_provenance_mut(step_a as usize),
                grad_scale: core::ptr::without_provenance(scale_a as usize),
                clip_coef: core::ptr::without_provenance(clip_a as usize),
                found_inf: core::ptr::without_provenance_mut(found_a as usize),
                check_finite: 0,
            };
            let t = |a: u64, d: u32, n: usize| adamant_tensor {
                data: if n == 0 {
                    core::ptr::null_mut()
                } else {
                    core::ptr::without_provenance_mut(a as usize)
                },
                dtype: d,
                len: n,
            };
            let raw = |i: usize| -> [Raw; 4] {
                let (pa, ga, ma, va) = dev[i];
                let n = lens[i];
                [
                    t(pa, 1, n).into(),
                    t(ga, 1, n).into(),
                    t(ma, 0, n).into(),
                    t(va, 0, n).into(),
                ]
            };
            let core_cfg = cfg.to_core(true, 0.0).unwrap();
            let hyper = AdamHyper::from_config(&core_cfg).to_bytes();
            let r = checked_step(
                Rule::Adam,
                &hyper,
                &args,
                3,
                &ADAM_SPECS,
                raw,
                adam_lens,
                || Ok(Borrowed(&mut s)),
            );
            assert_eq!(r, Ok(()));
            // The CPU ABI on the same inputs.
            let opts = adamant_step_options {
                lr: lr as f64,
                grad_scale: scale,
                clip_coef: clip,
                has_grad_scale: 1,
                has_clip_coef: 1,
                found_inf: 0,
                check_finite: 0,
            };
            let (p0, m0, v0) = (p.clone(), m.clone(), v.clone());
            let ps: Vec<adamant_tensor> = p
                .iter_mut()
                .map(|x| adamant_tensor {
                    data: x.as_mut_ptr().cast(),
                    dtype: 1,
                    len: x.len(),
                })
                .collect();
            let gs: Vec<adamant_const_tensor> = g
                .iter()
                .map(|x| adamant_const_tensor {
                    data: x.as_ptr().cast(),
                    dtype: 1,
                    len: x.len(),
                })
                .collect();
            let ms: Vec<adamant_tensor> = m
                .iter_mut()
                .map(|x| adamant_tensor {
                    data: x.as_mut_ptr().cast(),
                    dtype: 0,
                    len: x.len(),
                })
                .collect();
            let vs: Vec<adamant_tensor> = v
                .iter_mut()
                .map(|x| adamant_tensor {
                    data: x.as_mut_ptr().cast(),
                    dtype: 0,
                    len: x.len(),
                })
                .collect();
            let mut out = 0u64;
            // SAFETY: arrays of views over live vectors.
            let st = unsafe {
                adamant_adamw_step_multi(
                    &cfg,
                    &opts,
                    3,
                    ps.as_ptr(),
                    gs.as_ptr(),
                    ms.as_ptr(),
                    vs.as_ptr(),
                    3,
                    &mut out,
                )
            };
            let mut step = [0u8; 8];
            s.download(step_a, &mut step).unwrap();
            let found = get::<f32>(&mut s, found_a, 1)[0];
            if poison {
                assert_eq!(st, adamant_status::SkippedNonFinite);
                assert_eq!(
                    u64::from_le_bytes(step),
                    3,
                    "counter advanced on a skipped step"
                );
                assert_eq!(found, 1.0f32.to_bits());
                assert_eq!((&p, &m, &v), (&p0, &m0, &v0));
            } else {
                assert_eq!(st, adamant_status::Ok);
                assert_eq!(u64::from_le_bytes(step), 4);
                assert_eq!(found, 0);
            }
            for i in 0..3 {
                let n = lens[i];
                let (pa, _, ma, va) = dev[i];
                assert_eq!(
                    get::<bf16>(&mut s, pa, n),
                    bits(&p[i]),
                    "param {i} poison {poison}"
                );
                assert_eq!(get::<f32>(&mut s, ma, n), bits(&m[i]), "exp_avg {i}");
                assert_eq!(get::<f32>(&mut s, va, n), bits(&v[i]), "exp_avg_sq {i}");
            }
        }
    }
}
