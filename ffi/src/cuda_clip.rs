//! CUDA entry points of gradient clipping: AdaGC (`adamant_cuda_adagc_coefs` before the step,
//! `adamant_cuda_adagc_commit` after it) and global-norm clipping
//! (`adamant_cuda_clip_coef_global_norm`), computed from the gradients on the device with no
//! host round trip. The rules and bits are the CPU ABI's (`adamant_adagc_coefs`,
//! `adamant_adagc_commit`, `adamant_clip_coef_global_norm`); what the CPU takes as host values
//! the device keeps in device memory.
//!
//! ## Setup (once per model: gradient addresses are fixed across steps)
//! 1. `adamant_cuda_clip_scratch_len(grads, count)`: f32 elements of device scratch (tensor
//!    sums, the global combine, AdaGC's next thresholds, each tensor's tile partials);
//!    allocate it on the device.
//! 2. `adamant_cuda_clip_table_bytes(count)` bytes of host memory, then
//!    `adamant_cuda_clip_table_encode(grads, count, scratch, ...)` fills them (32 bytes per
//!    tensor, little-endian: gradient address, length, partials address, first tile) and the
//!    host descriptor `adamant_cuda_clip_table`. Copy the bytes to device memory (8-byte
//!    aligned) once.
//!
//! ## Each step
//! `adamant_cuda_adagc_coefs` (or `_clip_coef_global_norm`) writes one f32 coefficient per
//! tensor into `out_coefs` (device): point a CUDA step's `clip_coef` (or an Adam-mini table's
//! `clip_coefs`) at it. After the step, `adamant_cuda_adagc_commit` advances AdaGC's state
//! unless the step was skipped. The record (`out_record`, four 32-bit device words) holds the
//! global norm (f32), the global coefficient (f32) and a finite flag (1/0), then 0.
//!
//! ## Non-finite gradients
//! The CPU calls return `ADAMANT_STATUS_SKIPPED_NON_FINITE` for a NaN or infinite norm. The
//! device cannot return it: it writes coefficient 1.0 for every tensor and a finite flag of 0,
//! and the commit then leaves the thresholds and step alone. Run the step with finite checking
//! (`check_finite = 1` or a loss scale) so its scan skips the update, as the CPU caller would.

use crate::adagc::adamant_adagc_config;
use crate::cuda_dev::{dev_array, dev_scalar, launch, on_stream};
use crate::loco::no_overlap;
use crate::multi::{array_range, check_all, views, Raw, Spec};
use crate::status::adamant_status;
use crate::tensor::{adamant_const_tensor, check_out_array, Range, View, ANY_DTYPE};
use adamant_core::clip::GlobalNormClip;
use adamant_core::Dtype;
use adamant_cuda::args::{ClipBuffers, ClipHyper, ReduceEntry, TILE};
use adamant_cuda::ops::{self, Launcher, ReduceInputs};
use core::ffi::c_void;

/// The host descriptor of an encoded clip table (filled by `adamant_cuda_clip_table_encode`;
/// pass it unchanged to the clip calls).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct adamant_cuda_clip_table {
    /// Tensors in the table (`>= 1`).
    pub count: usize,
    /// Tiles of 4096 gradient values over every tensor.
    pub total_tiles: u64,
    /// Device scratch the table's partials point into (`scratch_len` f32 elements).
    pub scratch: *mut f32,
    /// Its length in f32 elements (`adamant_cuda_clip_scratch_len`).
    pub scratch_len: usize,
    /// The `adamant_dtype` of every gradient.
    pub grad_dtype: u32,
}

const GRADS: [Spec; 1] = [Spec {
    written: false,
    allowed: ANY_DTYPE,
}];

/// Scratch elements for `count` tensors with `tiles(i)` partials each: sums, combine scratch
/// and next thresholds (`count` each), then each tensor's partials (at least one, so that
/// an empty tensor's combine has a place to write).
fn scratch_len_of(count: usize, tiles: impl Fn(usize) -> usize) -> Result<usize, adamant_status> {
    let mut n = count.checked_mul(3).ok_or(adamant_status::LengthTooLarge)?;
    for i in 0..count {
        n = n
            .checked_add(tiles(i).max(1))
            .ok_or(adamant_status::LengthTooLarge)?;
    }
    if n.checked_mul(4).is_none_or(|b| b > isize::MAX as usize) {
        return Err(adamant_status::LengthTooLarge);
    }
    Ok(n)
}

/// Check the gradient list (dtypes, views, one shared dtype) and return that dtype.
fn check_grads(g: &[adamant_const_tensor], extra: &[Range]) -> Result<Dtype, adamant_status> {
    if g.is_empty() {
        return Err(adamant_status::LengthMismatch);
    }
    let raw = |i: usize| [Raw::from(g[i])];
    check_all(g.len(), &GRADS, raw, |_: &[View; 1]| Ok(()), extra)?;
    let d = views(&GRADS, &raw(0))?[0].dtype;
    for i in 1..g.len() {
        if views(&GRADS, &raw(i))?[0].dtype != d {
            return Err(adamant_status::UnsupportedDtype);
        }
    }
    Ok(d)
}

/// Bytes of the encoded clip table of `count` tensors (32 per tensor), into `*out_bytes`.
///
/// # Safety
/// `out_bytes` points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_clip_table_bytes(
    count: usize,
    out_bytes: *mut usize,
) -> adamant_status {
    ffi_boundary!({
        let out = try_out!(out_bytes);
        let b = count
            .checked_mul(ReduceEntry::SIZE)
            .ok_or(adamant_status::LengthTooLarge)?;
        // SAFETY: non-NULL, aligned (try_out!).
        unsafe { out.write(b) };
        Ok(())
    })
}

/// f32 elements of the device scratch of a clip over `count` gradients (host array of
/// device views; `count >= 1`, one dtype), into `*out_len`:
/// `3*count + sum_i max(1, ceil(grads[i].len / 4096))`.
///
/// # Safety
/// `grads` points to `count` views; `out_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_clip_scratch_len(
    grads: *const adamant_const_tensor,
    count: usize,
    out_len: *mut usize,
) -> adamant_status {
    ffi_boundary!({
        let g = try_slice!(grads, count);
        let out = try_out!(out_len);
        check_grads(g, &[])?;
        let n = scratch_len_of(count, |i| g[i].len.div_ceil(TILE as usize))?;
        // SAFETY: non-NULL, aligned (try_out!).
        unsafe { out.write(n) };
        Ok(())
    })
}

/// Encode the clip table of `count` device gradients (one dtype) whose statistics use the
/// device scratch `scratch` (exactly `adamant_cuda_clip_scratch_len` f32 elements) into
/// `out_table` (host, exactly `adamant_cuda_clip_table_bytes(count)` bytes), and fill
/// `*out_desc`. Reads no device memory. `count == 0` gives `ADAMANT_STATUS_LENGTH_MISMATCH`;
/// gradients of different dtypes `ADAMANT_STATUS_UNSUPPORTED_DTYPE`.
///
/// # Safety
/// `grads` points to `count` views (device data); `out_table` to `table_bytes` writable host
/// bytes; `out_desc` to a writable struct.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_clip_table_encode(
    grads: *const adamant_const_tensor,
    count: usize,
    scratch: *mut f32,
    scratch_len: usize,
    out_table: *mut u8,
    table_bytes: usize,
    out_desc: *mut adamant_cuda_clip_table,
) -> adamant_status {
    ffi_boundary!({
        let g = try_slice!(grads, count);
        let od = try_out!(out_desc);
        check_out_array(out_table, table_bytes)?;
        let (sa, sr) = dev_array(scratch.cast_const(), scratch_len, 4, 4, true)?;
        let outs = [
            sr,
            Range {
                written: true,
                ..array_range(out_table, table_bytes)
            },
            View::out_range(od),
        ];
        let d = check_grads(g, &outs)?;
        let tiles = |i: usize| g[i].len.div_ceil(TILE as usize);
        if scratch_len_of(count, tiles)? != scratch_len {
            return Err(adamant_status::LengthMismatch);
        }
        if count.checked_mul(ReduceEntry::SIZE) != Some(table_bytes) {
            return Err(adamant_status::LengthMismatch);
        }
        u32::try_from(count).map_err(|_| adamant_status::LengthTooLarge)?;
        let (mut tile, mut part) = (0u64, 3 * count as u64);
        for (i, t) in g.iter().enumerate() {
            let e = ReduceEntry {
                x: if t.len == 0 { 0 } else { t.data.addr() as u64 },
                n: t.len as u64,
                out: sa + 4 * part,
                tile_start: tile,
            };
            tile += e.tiles();
            part += e.tiles().max(1);
            // SAFETY: `table_bytes = 32*count` writable host bytes (checked), overlapping no
            // other buffer of the call.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    e.to_bytes().as_ptr(),
                    out_table.add(i * ReduceEntry::SIZE),
                    ReduceEntry::SIZE,
                )
            };
        }
        // SAFETY: non-NULL, aligned (try_out!), overlapping nothing else.
        unsafe {
            od.write(adamant_cuda_clip_table {
                count,
                total_tiles: tile,
                scratch,
                scratch_len,
                grad_dtype: d as u32,
            })
        };
        Ok(())
    })
}

/// A checked descriptor: (grad dtype, scratch address and range).
fn check_desc(t: &adamant_cuda_clip_table) -> Result<(Dtype, u64, Range), adamant_status> {
    let d = crate::tensor::dtype_from(t.grad_dtype)?;
    if t.count == 0 || u32::try_from(t.count).is_err() {
        return Err(adamant_status::LengthMismatch);
    }
    let (sa, sr) = dev_array(t.scratch.cast_const(), t.scratch_len, 4, 4, true)?;
    let least = (t.count as u64)
        .checked_mul(3)
        .and_then(|n| n.checked_add(t.total_tiles))
        .ok_or(adamant_status::LengthTooLarge)?;
    if (t.scratch_len as u64) < least {
        return Err(adamant_status::LengthMismatch);
    }
    Ok((d, sa, sr))
}

/// The uploaded table: required, 8-byte aligned, `count` entries.
fn check_table_device(
    t: &adamant_cuda_clip_table,
    table_device: *const c_void,
) -> Result<(u64, Range), adamant_status> {
    if table_device.is_null() {
        return Err(adamant_status::NullPointer);
    }
    dev_array(
        table_device.cast::<u8>(),
        t.count,
        ReduceEntry::SIZE,
        8,
        false,
    )
}

/// The device buffers of a clip call.
fn buffers(
    t: &adamant_cuda_clip_table,
    scratch: u64,
    coefs: u64,
    gamma: u64,
    clip_step: u64,
    record: u64,
) -> ClipBuffers {
    let n = t.count as u64;
    ClipBuffers {
        sums: scratch,
        count: n,
        scratch: scratch + 4 * n,
        coefs,
        gamma,
        gamma_next: if gamma == 0 { 0 } else { scratch + 8 * n },
        clip_step,
        record,
    }
}

fn inputs(t: &adamant_cuda_clip_table, table: u64) -> ReduceInputs {
    ReduceInputs::Table {
        addr: table,
        count: t.count as u32,
        total_tiles: t.total_tiles,
    }
}

pub(crate) fn checked_adagc_coefs<L: Launcher>(
    config: *const adamant_adagc_config,
    table: *const adamant_cuda_clip_table,
    table_device: *const c_void,
    grad_scale: *const f32,
    gamma: *const f32,
    gamma_len: usize,
    clip_step: *const u64,
    out_coefs: *mut f32,
    out_record: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let c = *try_ref!(config);
    let t = *try_ref!(table);
    let a = c.to_core()?;
    let (d, sa, sr) = check_desc(&t)?;
    let (ta, tr) = check_table_device(&t, table_device)?;
    let (ga, gr) = dev_array(gamma, gamma_len, 4, 4, false)?;
    let (csa, csr) = dev_scalar(clip_step, false, false)?;
    let (ca, cr) = dev_array(out_coefs.cast_const(), t.count, 4, 4, true)?;
    let (ra, rr) = dev_array(out_record.cast_const(), 4, 4, 4, true)?;
    let (gsa, gsr) = dev_scalar(grad_scale, true, false)?;
    if a.gamma_len(t.count) != gamma_len {
        return Err(adamant_status::LengthMismatch);
    }
    no_overlap(&[sr, tr, gr, csr, cr, rr, gsr])?;
    let hyper = ClipHyper::adagc(&a.config);
    let bufs = buffers(&t, sa, ca, ga, csa, ra);
    launch(launcher, |l| {
        ops::clip_coefficients(l, d, &inputs(&t, ta), gsa, &bufs, &hyper)
    })
}

pub(crate) fn checked_adagc_commit<L: Launcher>(
    config: *const adamant_adagc_config,
    table: *const adamant_cuda_clip_table,
    gamma: *mut f32,
    gamma_len: usize,
    clip_step: *mut u64,
    record: *const f32,
    found_inf: *const f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let c = *try_ref!(config);
    let t = *try_ref!(table);
    let a = c.to_core()?;
    let (_, sa, sr) = check_desc(&t)?;
    let (ga, gr) = dev_array(gamma.cast_const(), gamma_len, 4, 4, true)?;
    let (csa, csr) = dev_scalar(clip_step.cast_const(), false, true)?;
    let (ra, rr) = dev_array(record, 4, 4, 4, false)?;
    let (fa, fr) = dev_scalar(found_inf, true, false)?;
    if a.gamma_len(t.count) != gamma_len {
        return Err(adamant_status::LengthMismatch);
    }
    // The commit reads the next thresholds from the scratch, writes nothing there.
    let sr = Range {
        written: false,
        ..sr
    };
    no_overlap(&[sr, gr, csr, rr, fr])?;
    let hyper = ClipHyper::adagc(&a.config);
    let bufs = buffers(&t, sa, 0, ga, csa, ra);
    launch(launcher, |l| ops::clip_commit(l, &bufs, fa, &hyper))
}

pub(crate) fn checked_global_norm<L: Launcher>(
    max_norm: f32,
    eps: f32,
    table: *const adamant_cuda_clip_table,
    table_device: *const c_void,
    grad_scale: *const f32,
    out_coefs: *mut f32,
    out_record: *mut f32,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let t = *try_ref!(table);
    let (ca, cr) = dev_array(out_coefs.cast_const(), t.count, 4, 4, true)?;
    let (ra, rr) = dev_array(out_record.cast_const(), 4, 4, 4, true)?;
    if !(max_norm.is_finite() && max_norm > 0.0 && eps.is_finite() && eps >= 0.0) {
        return Err(adamant_status::InvalidConfig);
    }
    // The kernel adds PyTorch's eps (`global_norm::CLIP_EPS`), a constant of the PTX.
    if eps.to_bits() != adamant_core::clip::global_norm::CLIP_EPS.to_bits() {
        return Err(adamant_status::InvalidConfig);
    }
    let clip = GlobalNormClip::new(max_norm as f64).map_err(|_| adamant_status::InvalidConfig)?;
    let (d, sa, sr) = check_desc(&t)?;
    let (ta, tr) = check_table_device(&t, table_device)?;
    let (gsa, gsr) = dev_scalar(grad_scale, true, false)?;
    no_overlap(&[sr, tr, cr, rr, gsr])?;
    let hyper = ClipHyper::global_norm(&clip);
    let bufs = buffers(&t, sa, ca, 0, 0, ra);
    launch(launcher, |l| {
        ops::clip_coefficients(l, d, &inputs(&t, ta), gsa, &bufs, &hyper)
    })
}

/// AdaGC phase one on the device: from the gradients of the encoded table (`table`, its
/// bytes uploaded at `table_device`), divided by the device loss scale `*grad_scale` when
/// not NULL, the per-tensor sums of squares and the global norm (their combine in tensor
/// order), then each tensor's clip coefficient into `out_coefs` (device, `table->count`
/// floats) and the record into `out_record` (device, 4 words; see the module doc), as
/// `adamant_adagc_coefs` with `step = *clip_step` (device u64, the AdaGC steps committed so
/// far) and `gamma` (device, `adamant_adagc_gamma_len` floats). Writes the table's scratch
/// (including this step's thresholds for the commit); writes no AdaGC state.
///
/// Returns `ADAMANT_STATUS_OK` when queued; argument errors as the CPU ABI (nothing queued);
/// `ADAMANT_STATUS_NO_CUDA_DRIVER` / `ADAMANT_STATUS_CUDA_ERROR` as every CUDA entry point.
///
/// # Safety
/// `config` and `table` point to valid host structs; every other pointer is a device address
/// of the current context holding the declared elements, valid until the stream ran the call;
/// `stream` is NULL or a live stream of the current context.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adagc_coefs(
    config: *const adamant_adagc_config,
    table: *const adamant_cuda_clip_table,
    table_device: *const c_void,
    grad_scale: *const f32,
    gamma: *const f32,
    gamma_len: usize,
    clip_step: *const u64,
    out_coefs: *mut f32,
    out_record: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_adagc_coefs(
            config,
            table,
            table_device,
            grad_scale,
            gamma,
            gamma_len,
            clip_step,
            out_coefs,
            out_record,
            l,
        )
    })
}

/// AdaGC phase two on the device, queued after the step that used the coefficients of
/// `adamant_cuda_adagc_coefs` (same `config`, `table`, `gamma`, `clip_step`, `record`):
/// unless `*found_inf` (device, may be NULL) is nonzero or the record says the norm was not
/// finite, `gamma` takes this step's thresholds and `*clip_step += 1`, as
/// `adamant_adagc_commit`.
///
/// # Safety
/// As `adamant_cuda_adagc_coefs`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adagc_commit(
    config: *const adamant_adagc_config,
    table: *const adamant_cuda_clip_table,
    gamma: *mut f32,
    gamma_len: usize,
    clip_step: *mut u64,
    record: *const f32,
    found_inf: *const f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_adagc_commit(
            config, table, gamma, gamma_len, clip_step, record, found_inf, l,
        )
    })
}

/// Global-norm clipping (PyTorch `clip_grad_norm_`) on the device: the per-tensor sums of
/// squares of the table's gradients (divided by `*grad_scale` when not NULL), their combine
/// in tensor order `sum_sq`, then `adamant_clip_coef_global_norm(sum_sq, max_norm, eps)`:
/// the coefficient into every element of `out_coefs` (device, `table->count` floats) and the
/// norm, coefficient and finite flag into `out_record` (device, 4 words). `eps` must be
/// PyTorch's `1e-6f` (the kernels' constant), else `ADAMANT_STATUS_INVALID_CONFIG`; a
/// non-finite norm gives coefficient 1 and finite flag 0 (see the module doc).
///
/// # Safety
/// As `adamant_cuda_adagc_coefs`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_clip_coef_global_norm(
    max_norm: f32,
    eps: f32,
    table: *const adamant_cuda_clip_table,
    table_device: *const c_void,
    grad_scale: *const f32,
    out_coefs: *mut f32,
    out_record: *mut f32,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_global_norm(
            max_norm,
            eps,
            table,
            table_device,
            grad_scale,
            out_coefs,
            out_record,
            l,
        )
    })
}

#[cfg(test)]
mod sim_tests {
    //! The clip entry points' validation and launches on the PTX simulator against the CPU
    //! ABI chain (`adamant_adam_mini_partials` + `adamant_reduce_combine` per tensor for the
    //! sums of squares of the unscaled gradients, then `adamant_adagc_coefs` /
    //! `adamant_adagc_commit` / `adamant_clip_coef_global_norm`), bit for bit.
    use super::*;
    use crate::cuda_dev::sim::*;
    use crate::{
        adamant_adagc_coefs, adamant_adagc_commit, adamant_adagc_config_default,
        adamant_adam_mini_partials, adamant_clip_coef_global_norm, adamant_reduce_combine,
        adamant_step_options_default,
    };
    use ptx_sim::Simulator;

    const OK: adamant_status = adamant_status::Ok;

    /// Gradients on the host (aligned words) and on the device.
    struct Grads {
        d: u32,
        lens: Vec<usize>,
        host: Vec<Vec<u32>>,
        dev: Vec<u64>,
    }

    impl Grads {
        fn new(s: &mut Simulator, d: u32, lens: &[usize]) -> Grads {
            let size = [4, 2, 2][d as usize];
            let dev = lens
                .iter()
                .map(|&n| put_bytes(s, &vec![0u8; n * size]))
                .collect();
            Grads {
                d,
                lens: lens.to_vec(),
                host: vec![vec![]; lens.len()],
                dev,
            }
        }
        /// New values for every tensor (`poison`: a NaN payload in the last non-empty one).
        fn fill(&mut self, s: &mut Simulator, seed: u64, poison: bool) {
            let last = self.lens.iter().rposition(|&n| n > 0).unwrap();
            for (k, &n) in self.lens.iter().enumerate() {
                let raw: Vec<(usize, u32)> = if poison && k == last {
                    vec![(n / 2, nan_payload(self.d))]
                } else {
                    vec![]
                };
                let huge = if self.d == 2 { 6.0e4 } else { 1e15 };
                let b = elem_bytes(self.d, &adversarial(n, seed * 7 + k as u64, huge), &raw);
                put_at(s, self.dev[k], &b);
                self.host[k] = words(&b);
            }
        }
        fn device_views(&self) -> Vec<adamant_const_tensor> {
            self.lens
                .iter()
                .zip(&self.dev)
                .map(|(&n, &a)| adamant_const_tensor {
                    data: dptr::<c_void>(a).cast_const(),
                    dtype: self.d,
                    len: n,
                })
                .collect()
        }
        /// The CPU ABI's per-tensor sums of squares of `g / grad_scale`.
        fn cpu_sums(&self, grad_scale: Option<f32>) -> Vec<f32> {
            let mut o = adamant_step_options_default();
            if let Some(sc) = grad_scale {
                o.grad_scale = sc;
                o.has_grad_scale = 1;
            }
            (0..self.lens.len())
                .map(|k| {
                    let n = self.lens[k];
                    let tiles = adamant_core::reduce::tile_count(n);
                    if tiles == 0 {
                        return 0.0;
                    }
                    let mut parts = vec![0f32; tiles];
                    let v = adamant_const_tensor {
                        data: self.host[k].as_ptr().cast(),
                        dtype: self.d,
                        len: n,
                    };
                    let mut sum = 0f32;
                    // SAFETY: live host buffers of the declared lengths.
                    unsafe {
                        assert_eq!(
                            adamant_adam_mini_partials(&o, v, parts.as_mut_ptr(), tiles),
                            OK
                        );
                        assert_eq!(adamant_reduce_combine(parts.as_ptr(), tiles, &mut sum), OK);
                    }
                    sum
                })
                .collect()
        }
    }

    /// Encode the table through the ABI (size queries, encode), upload it; returns the
    /// descriptor and the table's device address.
    fn encode(s: &mut Simulator, g: &Grads) -> (adamant_cuda_clip_table, u64) {
        let views = g.device_views();
        let (mut slen, mut tbytes) = (0usize, 0usize);
        // SAFETY: live host pointers; the views' data are never dereferenced.
        unsafe {
            assert_eq!(
                adamant_cuda_clip_scratch_len(views.as_ptr(), views.len(), &mut slen),
                OK
            );
            assert_eq!(adamant_cuda_clip_table_bytes(views.len(), &mut tbytes), OK);
        }
        let scratch = put_bytes(s, &vec![0xA5u8; 4 * slen]);
        let mut table = vec![0u8; tbytes];
        let mut desc = core::mem::MaybeUninit::<adamant_cuda_clip_table>::uninit();
        // SAFETY: as above.
        let st = unsafe {
            adamant_cuda_clip_table_encode(
                views.as_ptr(),
                views.len(),
                dptr(scratch),
                slen,
                table.as_mut_ptr(),
                tbytes,
                desc.as_mut_ptr(),
            )
        };
        assert_eq!(st, OK);
        // SAFETY: written on success.
        let desc = unsafe { desc.assume_init() };
        (desc, put_bytes(s, &table))
    }

    fn u64_at(s: &mut Simulator, a: u64) -> u64 {
        u64::from_le_bytes(get_bytes(s, a, 8).try_into().unwrap())
    }

    /// AdaGC, per tensor (with a loss scale, f32 gradients) and global (bf16), over six steps
    /// (warm-up to step 2, then adaptive; step 3 skipped by `found_inf`, step 4 with a NaN
    /// gradient), tensors of 300, 4096+77, 0 and 31 elements: coefficients, global norm,
    /// thresholds and the AdaGC step equal the CPU ABI's; the NaN step gives coefficient 1,
    /// a finite flag of 0 and no commit, where the CPU refuses the step.
    #[test]
    #[cfg_attr(miri, ignore = "interprets PTX: far too slow under Miri")]
    fn conformance_adagc_on_the_simulator_equals_the_cpu_abi() {
        let mut s = sim();
        let lens = [300usize, 4096 + 77, 0, 31];
        for (mode, d, scale) in [(0u32, 0u32, Some(64.0f32)), (1, 1, None)] {
            let cfg = crate::adamant_adagc_config {
                t_start: 2,
                max_norm: 2.0,
                mode,
                ..adamant_adagc_config_default()
            };
            let mut g = Grads::new(&mut s, d, &lens);
            let (desc, table) = encode(&mut s, &g);
            let n = lens.len();
            let glen = if mode == 0 { n } else { 1 };
            let mut gamma: Vec<f32> = (0..glen).map(|k| 0.5 + k as f32).collect();
            let gamma_a = put_bytes(&mut s, &le(&gamma));
            let mut step = 0u64;
            let step_a = put_bytes(&mut s, &le(&[step]));
            let coefs_a = put_bytes(&mut s, &vec![0u8; 4 * n]);
            let rec_a = put_bytes(&mut s, &[0u8; 16]);
            let found_a = put_bytes(&mut s, &[0u8; 4]);
            let gs_a = scale.map(|x| put_bytes(&mut s, &le(&[x])));
            for k in 0..6u64 {
                let what = format!("mode {mode} step {k}");
                let (skipped, poison) = (k == 3, k == 4);
                g.fill(&mut s, 100 * mode as u64 + k, poison);
                put_at(&mut s, found_a, &le(&[if skipped { 1.0f32 } else { 0.0 }]));
                let sums = g.cpu_sums(scale);
                let mut coefs = vec![0f32; n];
                let mut norm = 0f32;
                // SAFETY: live host buffers.
                let st = unsafe {
                    adamant_adagc_coefs(
                        &cfg,
                        step,
                        sums.as_ptr(),
                        n,
                        gamma.as_ptr(),
                        glen,
                        coefs.as_mut_ptr(),
                        &mut norm,
                    )
                };
                let r = checked_adagc_coefs(
                    &cfg,
                    &desc,
                    dptr::<c_void>(table),
                    gs_a.map_or(core::ptr::null(), |a| dptr::<f32>(a).cast_const()),
                    dptr::<f32>(gamma_a),
                    glen,
                    dptr::<u64>(step_a),
                    dptr(coefs_a),
                    dptr(rec_a),
                    || Ok(Borrowed(&mut s)),
                );
                assert_eq!(r, Ok(()), "{what}");
                let rec = get_words(&mut s, rec_a, 4);
                let got = get_words(&mut s, coefs_a, n);
                if poison {
                    assert_eq!(st, adamant_status::SkippedNonFinite, "{what}");
                    assert_eq!(got, vec![1.0f32.to_bits(); n], "{what}: coefficients");
                    assert_eq!(rec[2], 0, "{what}: finite flag");
                } else {
                    assert_eq!(st, OK, "{what}");
                    let want: Vec<u32> = coefs.iter().map(|x| x.to_bits()).collect();
                    assert_eq!(got, want, "{what}: coefficients");
                    assert_eq!((rec[0], rec[2]), (norm.to_bits(), 1), "{what}: record");
                    if !skipped {
                        // SAFETY: live host buffers.
                        let st = unsafe {
                            adamant_adagc_commit(
                                &cfg,
                                step,
                                sums.as_ptr(),
                                n,
                                gamma.as_mut_ptr(),
                                glen,
                                &mut step,
                            )
                        };
                        assert_eq!(st, OK, "{what}");
                    }
                }
                let r = checked_adagc_commit(
                    &cfg,
                    &desc,
                    dptr(gamma_a),
                    glen,
                    dptr(step_a),
                    dptr::<f32>(rec_a).cast_const(),
                    dptr::<f32>(found_a).cast_const(),
                    || Ok(Borrowed(&mut s)),
                );
                assert_eq!(r, Ok(()), "{what}");
                let want: Vec<u32> = gamma.iter().map(|x| x.to_bits()).collect();
                assert_eq!(get_words(&mut s, gamma_a, glen), want, "{what}: gamma");
                assert_eq!(u64_at(&mut s, step_a), step, "{what}: AdaGC step");
            }
            assert_eq!(step, 4, "four committed steps of six");
        }
    }

    /// Global-norm clipping (f16 and f32 gradients, with and without a loss scale, then a NaN
    /// gradient): every coefficient, the norm and the coefficient in the record equal
    /// `adamant_clip_coef_global_norm` on the tensor sums combined in tensor order.
    #[test]
    #[cfg_attr(miri, ignore = "interprets PTX: far too slow under Miri")]
    fn conformance_global_norm_clip_on_the_simulator_equals_the_cpu_abi() {
        let mut s = sim();
        let lens = [4096 + 77, 0, 999];
        for (d, scale, poison) in [
            (2u32, None, false),
            (0, Some(8.0f32), false),
            (0, None, true),
        ] {
            let what = format!("dtype {d} scale {scale:?} poison {poison}");
            let mut g = Grads::new(&mut s, d, &lens);
            g.fill(&mut s, 5 + d as u64, poison);
            let (desc, table) = encode(&mut s, &g);
            let n = lens.len();
            let coefs_a = put_bytes(&mut s, &vec![0u8; 4 * n]);
            let rec_a = put_bytes(&mut s, &[0u8; 16]);
            let gs_a = scale.map(|x| put_bytes(&mut s, &le(&[x])));
            let r = checked_global_norm(
                0.75,
                1e-6,
                &desc,
                dptr::<c_void>(table),
                gs_a.map_or(core::ptr::null(), |a| dptr::<f32>(a).cast_const()),
                dptr(coefs_a),
                dptr(rec_a),
                || Ok(Borrowed(&mut s)),
            );
            assert_eq!(r, Ok(()), "{what}");
            let sums = g.cpu_sums(scale);
            let mut sum_sq = 0f32;
            let (mut c, mut norm) = (0f32, 0f32);
            // SAFETY: live host buffers.
            let st = unsafe {
                assert_eq!(adamant_reduce_combine(sums.as_ptr(), n, &mut sum_sq), OK);
                adamant_clip_coef_global_norm(sum_sq, 0.75, 1e-6, &mut c, &mut norm)
            };
            let rec = get_words(&mut s, rec_a, 4);
            let got = get_words(&mut s, coefs_a, n);
            if poison {
                assert_eq!(st, adamant_status::SkippedNonFinite, "{what}");
                assert_eq!(got, vec![1.0f32.to_bits(); n], "{what}");
                assert_eq!(rec[2], 0, "{what}");
            } else {
                assert_eq!(st, OK, "{what}");
                assert!(c < 1.0, "{what}: the case clips");
                assert_eq!(got, vec![c.to_bits(); n], "{what}: coefficients");
                assert_eq!(rec[..3], [norm.to_bits(), c.to_bits(), 1], "{what}: record");
            }
        }
    }
}
