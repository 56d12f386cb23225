//! CUDA entry points of Adam-mini: the device tables of a model encoded on the host into a
//! caller buffer (`adamant_cuda_adam_mini_table_bytes`, `adamant_cuda_adam_mini_scratch_len`,
//! `adamant_cuda_adam_mini_table_encode`), then one call per step
//! (`adamant_cuda_adam_mini_step_table`). The update is `adamant_adam_mini_step_multi`'s, bit
//! for bit: same layouts (`adamant_block_layout`), same per-tensor clip coefficients, same
//! stochastic-rounding keys.
//!
//! ## Setup (once per model: tensor addresses and layouts are fixed across steps)
//! 1. `adamant_cuda_adam_mini_scratch_len(layouts, params, count)`: f32 elements of device
//!    scratch for the block statistics (one block scale per block, then
//!    `ceil(block_len / 4096)` tile partials per block); allocate it (may be 0 elements when
//!    every tensor is per-element).
//! 2. `adamant_cuda_adam_mini_table_bytes(layouts, params, count)` bytes of host memory, then
//!    `adamant_cuda_adam_mini_table_encode(...)` with the device views (the lists of
//!    `adamant_adam_mini_step_multi`), the optional device clip coefficients and the scratch.
//!    It fills the bytes and the host descriptor `adamant_cuda_adam_mini_table`, allocating
//!    nothing. Copy the bytes to device memory (8-byte aligned) once.
//!
//! The bytes are little-endian: the uniform-block segments (112 bytes each,
//! `adamant_cuda::args::MiniSegment`: addresses of the segment's first parameter, gradient,
//! `exp_avg`, `exp_avg_sq`, its block scales and tile partials in the scratch; element count,
//! block length, stochastic-rounding index, clip coefficient address, weight-decay flag, first
//! chunk, tile and block), then the per-element runs with weight decay, those without, and one
//! whole-tensor entry per tensor for the finite scan (64 bytes each,
//! `adamant_cuda::args::TensorEntry`). Consecutive blocks of one length are merged into one
//! segment. The scratch and every tensor address are in the bytes: re-encode when one moves.

use crate::adam_mini::{adamant_adam_mini_config, adamant_block_layout, layout_from, Layout};
use crate::cuda::{adamant_cuda_step_args, status_of};
use crate::cuda_dev::{dev_array, on_stream};
use crate::multi::{array_range, check_all, views, Raw, Spec};
use crate::status::adamant_status;
use crate::tensor::{
    adamant_const_tensor, adamant_tensor, check_out_array, dtype_from, Range, View, STATE_DTYPES,
};
use adamant_core::rules::adam_mini::Block;
use adamant_core::{BlockLayout, Dtype};
use adamant_cuda::args::{MiniHyper, MiniSegment, TensorEntry, CHUNK, TILE};
use adamant_cuda::ops::{self, Launcher, MiniLaunch, Tensors};
use core::ffi::c_void;

/// The host descriptor of an encoded Adam-mini table (filled by
/// `adamant_cuda_adam_mini_table_encode`; pass it unchanged to
/// `adamant_cuda_adam_mini_step_table`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct adamant_cuda_adam_mini_table {
    /// Bytes of the encoded table.
    pub table_bytes: usize,
    /// Uniform-block segments (112 bytes each, from byte 0).
    pub segment_count: usize,
    /// Per-element runs with weight decay (64 bytes each, after the segments).
    pub decay_count: usize,
    /// Per-element runs without weight decay (after those with).
    pub plain_count: usize,
    /// Whole tensors for the finite scan (last).
    pub scan_count: usize,
    /// Chunks of 16384 elements of the segments' element pass.
    pub total_chunks: u64,
    /// Tiles of 4096 values of the block statistics.
    pub total_tiles: u64,
    /// Blocks of the block update.
    pub total_blocks: u64,
    /// Chunks of the runs with weight decay.
    pub decay_chunks: u64,
    /// Chunks of the runs without weight decay.
    pub plain_chunks: u64,
    /// Chunks of the finite scan.
    pub scan_chunks: u64,
    /// `adamant_dtype` of every parameter.
    pub param_dtype: u32,
    /// `adamant_dtype` of every gradient.
    pub grad_dtype: u32,
    /// `adamant_dtype` of every state (`exp_avg`, `exp_avg_sq`).
    pub state_dtype: u32,
}

/// `[param, grad, exp_avg, exp_avg_sq]`, as the dense Adam call.
const SPECS: [Spec; 4] = crate::cuda::ADAM_SPECS;

fn lens(v: &[View; 4]) -> Result<(), adamant_status> {
    let n = v[0].len;
    if v[1].len != n || v[2].len != n {
        return Err(adamant_status::LengthMismatch);
    }
    if v[2].dtype != v[3].dtype {
        return Err(adamant_status::UnsupportedDtype);
    }
    Ok(())
}

/// Visit the blocks of a tensor of `numel` elements (layout checked against `numel`), as
/// `BlockLayout::for_each_block` does for core's layouts: an ABI segment list visits each
/// per-element segment as one run and each block segment block by block.
fn for_each_block(layout: &Layout<'_>, numel: usize, mut f: impl FnMut(Block)) {
    match layout {
        Layout::Plain(b) => b.for_each_block(numel, f),
        Layout::Segments(segs) => {
            let (mut off, mut st) = (0usize, 0usize);
            for s in *segs {
                if s.block_len == 0 {
                    f(Block {
                        offset: off,
                        len: s.len,
                        state_index: st,
                        per_element: true,
                    });
                    st += s.len;
                } else {
                    BlockLayout::Heads {
                        head_numel: s.block_len,
                    }
                    .for_each_block(s.len, |b| {
                        f(Block {
                            offset: off + b.offset,
                            state_index: st + b.state_index,
                            ..b
                        })
                    });
                    st += s.len / s.block_len;
                }
                off += s.len;
            }
        }
    }
}

/// The runs of a tensor: consecutive uniform blocks of one length merged into `(first block,
/// count)`, per-element runs alone (`MiniPlan::build`'s merge).
fn for_each_run(layout: &Layout<'_>, numel: usize, mut f: impl FnMut(Block, u64)) {
    let mut cur: Option<(Block, u64)> = None;
    for_each_block(layout, numel, |b| {
        if let Some((last, count)) = cur.as_mut() {
            let contiguous = !b.per_element
                && !last.per_element
                && last.len == b.len
                && last.offset + last.len * *count as usize == b.offset
                && last.state_index + *count as usize == b.state_index;
            if contiguous {
                *count += 1;
                return;
            }
            f(*last, *count);
        }
        cur = Some((b, 1));
    });
    if let Some((b, c)) = cur {
        f(b, c);
    }
}

/// Sizes of a model's tables.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    segments: usize,
    decay: usize,
    plain: usize,
    tensors: usize,
    blocks: u64,
    tiles: u64,
}

impl Counts {
    fn table_bytes(&self) -> Result<usize, adamant_status> {
        self.segments
            .checked_mul(MiniSegment::SIZE)
            .and_then(|b| {
                let e = self
                    .decay
                    .checked_add(self.plain)?
                    .checked_add(self.tensors)?;
                b.checked_add(e.checked_mul(TensorEntry::SIZE)?)
            })
            .ok_or(adamant_status::LengthTooLarge)
    }
    fn scratch_len(&self) -> Result<usize, adamant_status> {
        self.blocks
            .checked_add(self.tiles)
            .filter(|&n| n <= (isize::MAX as u64) / 4)
            .map(|n| n as usize)
            .ok_or(adamant_status::LengthTooLarge)
    }
}

/// Count the tables of `count` tensors (`layouts(i)` checked against `numel(i)`).
fn counts<'a>(
    count: usize,
    layout: impl Fn(usize) -> Result<(Layout<'a>, bool), adamant_status>,
    numel: impl Fn(usize) -> usize,
) -> Result<Counts, adamant_status> {
    let mut c = Counts {
        tensors: count,
        ..Counts::default()
    };
    for i in 0..count {
        let (l, wd) = layout(i)?;
        l.state_len(numel(i))?;
        for_each_run(&l, numel(i), |b, n| {
            if b.per_element {
                if wd {
                    c.decay += 1;
                } else {
                    c.plain += 1;
                }
            } else {
                c.segments += 1;
                c.blocks += n;
                c.tiles += n * (b.len as u64).div_ceil(TILE);
            }
        });
    }
    Ok(c)
}

/// Check the layout array and the parameter views for the size queries.
///
/// # Safety
/// `layouts` and `params` point to `count` values each.
unsafe fn query_counts(
    layouts: *const adamant_block_layout,
    params: *const adamant_tensor,
    count: usize,
) -> Result<Counts, adamant_status> {
    let l = try_slice!(layouts, count);
    let p = try_slice!(params, count);
    for x in l {
        // SAFETY: the caller's contract (segment arrays valid for the call).
        unsafe { layout_from(x) }?;
    }
    // SAFETY: as above.
    counts(count, |i| unsafe { layout_from(&l[i]) }, |i| p[i].len)
}

/// Bytes of the encoded Adam-mini table of `count` tensors (`layouts[i]` over `params[i].len`
/// elements; only the lengths of the views are read), into `*out_bytes`. Layouts that do not
/// tile their tensor give `ADAMANT_STATUS_LENGTH_MISMATCH`.
///
/// # Safety
/// `layouts` (and their segment arrays) and `params` point to `count` values each (may be NULL
/// when `count` is 0); `out_bytes` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adam_mini_table_bytes(
    layouts: *const adamant_block_layout,
    params: *const adamant_tensor,
    count: usize,
    out_bytes: *mut usize,
) -> adamant_status {
    ffi_boundary!({
        let out = try_out!(out_bytes);
        // SAFETY: the caller's contract above.
        let c = unsafe { query_counts(layouts, params, count) }?;
        let b = c.table_bytes()?;
        // SAFETY: non-NULL, aligned (try_out!).
        unsafe { out.write(b) };
        Ok(())
    })
}

/// f32 elements of the device scratch of the block statistics of these tensors (one scale
/// per block plus `ceil(block_len / 4096)` partials per block), into `*out_len`; arguments
/// as `adamant_cuda_adam_mini_table_bytes`.
///
/// # Safety
/// As `adamant_cuda_adam_mini_table_bytes`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adam_mini_scratch_len(
    layouts: *const adamant_block_layout,
    params: *const adamant_tensor,
    count: usize,
    out_len: *mut usize,
) -> adamant_status {
    ffi_boundary!({
        let out = try_out!(out_len);
        // SAFETY: the caller's contract above.
        let c = unsafe { query_counts(layouts, params, count) }?;
        let n = c.scratch_len()?;
        // SAFETY: non-NULL, aligned (try_out!).
        unsafe { out.write(n) };
        Ok(())
    })
}

/// A device view's address (0 when empty).
fn addr(v: &View) -> u64 {
    if v.len == 0 {
        0
    } else {
        v.ptr.addr() as u64
    }
}

/// Little-endian bytes of a segment into `out` (112 bytes), the kernels' layout.
fn put_segment(s: &MiniSegment, out: &mut [u8]) {
    let w = [
        s.param,
        s.grad,
        s.exp_avg,
        s.exp_avg_sq,
        s.scale,
        s.partials,
        s.n,
        s.block_len,
        s.sr_index_offset,
        s.clip_coef,
        s.weight_decay,
        s.chunk_start,
        s.tile_start,
        s.block_start,
    ];
    for (k, v) in w.iter().enumerate() {
        out[8 * k..8 * k + 8].copy_from_slice(&v.to_le_bytes());
    }
}

/// One tensor of an encode: device addresses, element sizes, its layout and flags.
struct EncTensor<'a> {
    param: u64,
    grad: u64,
    exp_avg: u64,
    exp_avg_sq: u64,
    numel: usize,
    layout: Layout<'a>,
    weight_decay: bool,
    clip_coef: u64,
}

/// Write the tables of `tensors` (counted as `c`) into `out` (`c.table_bytes()` bytes) with
/// the scratch at `scratch`, the bytes of `MiniPlan::build` without allocating; returns the
/// descriptor (dtypes left 0).
fn encode_into<'a>(
    tensors: impl Fn(usize) -> EncTensor<'a>,
    c: &Counts,
    sizes: (u64, u64, u64),
    scratch: u64,
    out: &mut [u8],
) -> adamant_cuda_adam_mini_table {
    let (ps, gs, ss) = sizes;
    let decay_at = c.segments * MiniSegment::SIZE;
    let plain_at = decay_at + c.decay * TensorEntry::SIZE;
    let scan_at = plain_at + c.plain * TensorEntry::SIZE;
    let mut d = adamant_cuda_adam_mini_table {
        table_bytes: out.len(),
        segment_count: c.segments,
        decay_count: c.decay,
        plain_count: c.plain,
        scan_count: c.tensors,
        ..Default::default()
    };
    let (mut seg, mut dec, mut pla) = (0usize, 0usize, 0usize);
    for i in 0..c.tensors {
        let t = tensors(i);
        let scan = TensorEntry {
            grad: t.grad,
            n: t.numel as u64,
            chunk_start: d.scan_chunks,
            ..TensorEntry::default()
        };
        d.scan_chunks += scan.chunks();
        let at = scan_at + i * TensorEntry::SIZE;
        out[at..at + TensorEntry::SIZE].copy_from_slice(&scan.to_bytes());
        for_each_run(&t.layout, t.numel, |b, count| {
            let off = b.offset as u64;
            let state = t.exp_avg_sq + b.state_index as u64 * ss;
            if b.per_element {
                let (chunks, at) = if t.weight_decay {
                    dec += 1;
                    (
                        &mut d.decay_chunks,
                        decay_at + (dec - 1) * TensorEntry::SIZE,
                    )
                } else {
                    pla += 1;
                    (
                        &mut d.plain_chunks,
                        plain_at + (pla - 1) * TensorEntry::SIZE,
                    )
                };
                let e = TensorEntry {
                    param: t.param + off * ps,
                    grad: t.grad + off * gs,
                    state0: t.exp_avg + off * ss,
                    state1: state,
                    n: b.len as u64,
                    sr_index_offset: off,
                    clip_coef: t.clip_coef,
                    chunk_start: *chunks,
                };
                *chunks += e.chunks();
                out[at..at + TensorEntry::SIZE].copy_from_slice(&e.to_bytes());
                return;
            }
            let s = MiniSegment {
                param: t.param + off * ps,
                grad: t.grad + off * gs,
                exp_avg: t.exp_avg + off * ss,
                exp_avg_sq: state,
                scale: scratch + 4 * d.total_blocks,
                partials: scratch + 4 * c.blocks + 4 * d.total_tiles,
                n: b.len as u64 * count,
                block_len: b.len as u64,
                sr_index_offset: off,
                clip_coef: t.clip_coef,
                weight_decay: t.weight_decay as u64,
                chunk_start: d.total_chunks,
                tile_start: d.total_tiles,
                block_start: d.total_blocks,
            };
            d.total_chunks += s.n.div_ceil(CHUNK);
            d.total_tiles += count * s.tiles_per_block();
            d.total_blocks += count;
            let at = seg * MiniSegment::SIZE;
            put_segment(&s, &mut out[at..at + MiniSegment::SIZE]);
            seg += 1;
        });
    }
    d
}

/// Encode the Adam-mini tables of `count` device tensors (the lists of
/// `adamant_adam_mini_step_multi`: `layouts[i]`, `params[i]`, `grads[i]`, `exp_avgs[i]`,
/// `exp_avg_sqs[i]`, one dtype per list) into `out_table` (host, exactly
/// `adamant_cuda_adam_mini_table_bytes` bytes) and `*out_desc`. `clip_coefs` is NULL (no
/// clipping) or a device array of `count` f32 coefficients read at every step (AdaGC's or
/// global-norm clipping's `out_coefs`); `scratch` is device memory of exactly
/// `adamant_cuda_adam_mini_scratch_len` f32 elements (NULL when that is 0). Checks as
/// `adamant_adam_mini_step_multi` (dtypes, views, lengths, layouts, overlap); tensors of
/// different dtypes give `ADAMANT_STATUS_UNSUPPORTED_DTYPE`. Reads no device memory and
/// allocates nothing.
///
/// # Safety
/// Every array holds `count` values (may be NULL when `count` is 0); the views' `data`,
/// `clip_coefs` and `scratch` are device addresses (never dereferenced here); `out_table` is
/// `table_bytes` writable host bytes; `out_desc` a writable struct.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adam_mini_table_encode(
    layouts: *const adamant_block_layout,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    exp_avgs: *const adamant_tensor,
    exp_avg_sqs: *const adamant_tensor,
    clip_coefs: *const f32,
    count: usize,
    scratch: *mut f32,
    scratch_len: usize,
    out_table: *mut u8,
    table_bytes: usize,
    out_desc: *mut adamant_cuda_adam_mini_table,
) -> adamant_status {
    ffi_boundary!({
        let od = try_out!(out_desc);
        let l = try_slice!(layouts, count);
        let p = try_slice!(params, count);
        let g = try_slice!(grads, count);
        let m = try_slice!(exp_avgs, count);
        let v = try_slice!(exp_avg_sqs, count);
        check_out_array(out_table, table_bytes)?;
        // SAFETY: the caller's contract (segment arrays valid for the call).
        let layout_at = |i: usize| unsafe { layout_from(&l[i]) };
        for i in 0..count {
            layout_at(i)?;
        }
        // NULL: no clipping.
        let (ca, cr) = if clip_coefs.is_null() {
            (0, crate::cuda_dev::NO_RANGE)
        } else {
            dev_array(clip_coefs, count, 4, 4, false)?
        };
        let (sa, sr) = dev_array(scratch.cast_const(), scratch_len, 4, 4, true)?;
        let extra = [
            cr,
            sr,
            Range {
                written: true,
                ..array_range(out_table, table_bytes)
            },
            crate::tensor::View::out_range(od),
        ];
        let raw = |i: usize| -> [Raw; 4] { [p[i].into(), g[i].into(), m[i].into(), v[i].into()] };
        check_all(count, &SPECS, raw, lens, &extra)?;
        let mut dt = None;
        for i in 0..count {
            let w = views(&SPECS, &raw(i))?;
            if layout_at(i)?.0.state_len(w[0].len)? != w[3].len {
                return Err(adamant_status::LengthMismatch);
            }
            let d = (w[0].dtype, w[1].dtype, w[2].dtype);
            if *dt.get_or_insert(d) != d {
                return Err(adamant_status::UnsupportedDtype);
            }
        }
        let c = counts(count, layout_at, |i| p[i].len)?;
        if c.scratch_len()? != scratch_len || c.table_bytes()? != table_bytes {
            return Err(adamant_status::LengthMismatch);
        }
        u32::try_from(c.segments.max(c.decay).max(c.plain).max(count))
            .map_err(|_| adamant_status::LengthTooLarge)?;
        let (pd, gd, sd) = dt.unwrap_or((Dtype::F32, Dtype::F32, Dtype::F32));
        let sizes = (pd.size() as u64, gd.size() as u64, sd.size() as u64);
        let out: &mut [u8] = if table_bytes == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL, aligned, `table_bytes` writable bytes (checked), overlapping
            // no other buffer of the call.
            unsafe { core::slice::from_raw_parts_mut(out_table, table_bytes) }
        };
        let tensor = |i: usize| {
            let w = views(&SPECS, &raw(i)).unwrap_or_else(|_| unreachable!("checked above"));
            let (layout, wd) = layout_at(i).unwrap_or_else(|_| unreachable!("checked above"));
            EncTensor {
                param: addr(&w[0]),
                grad: addr(&w[1]),
                exp_avg: addr(&w[2]),
                exp_avg_sq: addr(&w[3]),
                numel: w[0].len,
                layout,
                weight_decay: wd,
                clip_coef: if ca == 0 { 0 } else { ca + 4 * i as u64 },
            }
        };
        let mut d = encode_into(tensor, &c, sizes, sa, out);
        (d.param_dtype, d.grad_dtype, d.state_dtype) = (pd as u32, gd as u32, sd as u32);
        // SAFETY: non-NULL, aligned (try_out!), overlapping no other buffer.
        unsafe { od.write(d) };
        Ok(())
    })
}

pub(crate) fn checked_mini_step<L: Launcher>(
    config: *const adamant_adam_mini_config,
    args: *const adamant_cuda_step_args,
    table: *const adamant_cuda_adam_mini_table,
    table_device: *const c_void,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let config = *try_ref!(config);
    let args = *try_ref!(args);
    let t = *try_ref!(table);
    let (refs, clip, scan) = args.refs()?;
    // The clip coefficients are in the table (the encode's `clip_coefs`).
    if clip != 0 {
        return Err(adamant_status::InvalidConfig);
    }
    let cfg = config.to_core(0.0)?;
    cfg.validate()?;
    let (p, g, s) = (
        dtype_from(t.param_dtype)?,
        dtype_from(t.grad_dtype)?,
        dtype_from(t.state_dtype)?,
    );
    if !STATE_DTYPES.contains(&s) {
        return Err(adamant_status::UnsupportedDtype);
    }
    let c = Counts {
        segments: t.segment_count,
        decay: t.decay_count,
        plain: t.plain_count,
        tensors: t.scan_count,
        ..Counts::default()
    };
    if c.table_bytes()? != t.table_bytes {
        return Err(adamant_status::LengthMismatch);
    }
    let to_u32 = |n: usize| u32::try_from(n).map_err(|_| adamant_status::LengthTooLarge);
    let (ta, _) = dev_array(table_device.cast::<u8>(), t.table_bytes, 1, 8, false)?;
    let table_at = |at: usize, n: usize, chunks: u64| -> Result<Option<Tensors>, adamant_status> {
        Ok((n > 0).then_some(Tensors::Table {
            addr: ta + at as u64,
            count: to_u32(n)?,
            total_chunks: chunks,
        }))
    };
    let decay_at = c.segments * MiniSegment::SIZE;
    let plain_at = decay_at + c.decay * TensorEntry::SIZE;
    let scan_at = plain_at + c.plain * TensorEntry::SIZE;
    let launch = MiniLaunch {
        segments: if c.segments > 0 { ta } else { 0 },
        one: MiniSegment::default(),
        count: to_u32(c.segments)?,
        total_chunks: t.total_chunks,
        total_tiles: t.total_tiles,
        total_blocks: t.total_blocks,
        elements_decay: table_at(decay_at, c.decay, t.decay_chunks)?,
        elements_plain: table_at(plain_at, c.plain, t.plain_chunks)?,
        scan: table_at(scan_at, c.tensors, t.scan_chunks)?,
    };
    let hyper = MiniHyper::from_config(&cfg);
    let mut l = launcher()?;
    ops::mini_step(&mut l, (p, g, s), &launch, &refs, &hyper, scan).map_err(status_of)
}

/// One Adam-mini step of the encoded model (`table`, its bytes uploaded at `table_device`)
/// on `stream`: the finite scan (when `args->check_finite` is 1 or a loss scale is given),
/// the block statistics, the block update, the element pass, the per-element runs, the step
/// commit, with the learning rate, loss scale, `found_inf` and step counter read from the
/// device (`args`), as `adamant_adam_mini_step_multi` with the table's clip coefficients.
/// `args->clip_coef` must be NULL (the coefficients are the encode's `clip_coefs`), else
/// `ADAMANT_STATUS_INVALID_CONFIG`.
///
/// Returns `ADAMANT_STATUS_OK` when queued; argument errors as the CPU ABI (nothing queued);
/// `ADAMANT_STATUS_NO_CUDA_DRIVER` without a driver or device; `ADAMANT_STATUS_CUDA_ERROR`
/// when the driver refused a launch.
///
/// # Safety
/// `config`, `args` and `table` point to valid host structs; `table_device` holds the
/// encoded bytes in device memory; every address in them is a device address of the current
/// context, valid until the stream ran the step; `stream` is NULL or a live stream of it.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adam_mini_step_table(
    config: *const adamant_adam_mini_config,
    args: *const adamant_cuda_step_args,
    table: *const adamant_cuda_adam_mini_table,
    table_device: *const c_void,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        let l = unsafe { on_stream(stream) };
        checked_mini_step(config, args, table, table_device, l)
    })
}

#[cfg(test)]
mod tests {
    //! The encoder against `MiniPlan::build` (same bytes), and the step entry's validation and
    //! launches on the PTX simulator against `adamant_adam_mini_step_multi`, bit for bit.
    use super::*;
    use crate::adam_mini::{adamant_adam_mini_config_default, adamant_block_segment};
    use crate::cuda_dev::sim::*;
    use crate::{adamant_adam_mini_step_multi, adamant_step_options};
    use adamant_core::rules::adam_mini::Segment;
    use adamant_cuda::args::{table_bytes as entry_bytes, MiniPlan, MiniTensor};

    const OK: adamant_status = adamant_status::Ok;

    /// A tensor of a test model: layout kind, block length, segments, weight decay, numel.
    #[derive(Clone)]
    struct Spec {
        kind: u32,
        block_len: usize,
        segs: Vec<adamant_block_segment>,
        wd: u32,
        numel: usize,
    }

    fn seg(len: usize, block_len: usize) -> adamant_block_segment {
        adamant_block_segment { len, block_len }
    }

    fn spec(kind: u32, block_len: usize, wd: u32, numel: usize) -> Spec {
        Spec {
            kind,
            block_len,
            segs: vec![],
            wd,
            numel,
        }
    }

    /// Rows, a bias, explicit segments (two block segments of one length that merge, an
    /// element segment between), a two-tile whole-tensor block, an empty tensor, heads, and
    /// two adjacent element segments (never merged).
    fn model() -> Vec<Spec> {
        vec![
            spec(1, 520, 1, 1560),
            spec(0, 0, 0, 37),
            Spec {
                segs: vec![seg(64, 32), seg(10, 0), seg(96, 32), seg(64, 32)],
                ..spec(4, 0, 1, 234)
            },
            spec(3, 0, 0, 4101),
            spec(0, 0, 1, 0),
            spec(2, 16, 0, 48),
            Spec {
                segs: vec![seg(5, 0), seg(7, 0)],
                ..spec(4, 0, 1, 12)
            },
            spec(3, 0, 1, 0),
        ]
    }

    fn abi_layouts(m: &[Spec]) -> Vec<adamant_block_layout> {
        m.iter()
            .map(|s| adamant_block_layout {
                kind: s.kind,
                block_len: s.block_len,
                segments: s.segs.as_ptr(),
                segment_count: s.segs.len(),
                weight_decay: s.wd,
            })
            .collect()
    }

    fn state_len(m: &Spec) -> usize {
        match m.kind {
            0 => m.numel,
            1 | 2 => m.numel / m.block_len,
            3 => (m.numel > 0) as usize,
            _ => m
                .segs
                .iter()
                .map(|s| s.len.checked_div(s.block_len).unwrap_or(s.len))
                .sum(),
        }
    }

    /// Device-address views of the model (each buffer at `base`, 1 MiB apart).
    struct Views {
        p: Vec<adamant_tensor>,
        g: Vec<adamant_const_tensor>,
        m: Vec<adamant_tensor>,
        v: Vec<adamant_tensor>,
    }

    fn views_at(m: &[Spec], d: (u32, u32, u32), base: impl Fn(usize, usize) -> u64) -> Views {
        let t = |a: u64, dt: u32, n: usize| adamant_tensor {
            data: if n == 0 {
                core::ptr::null_mut()
            } else {
                dptr(a)
            },
            dtype: dt,
            len: n,
        };
        let mut vs = Views {
            p: vec![],
            g: vec![],
            m: vec![],
            v: vec![],
        };
        for (i, s) in m.iter().enumerate() {
            vs.p.push(t(base(i, 0), d.0, s.numel));
            let gv = t(base(i, 1), d.1, s.numel);
            vs.g.push(adamant_const_tensor {
                data: gv.data.cast_const(),
                dtype: gv.dtype,
                len: gv.len,
            });
            vs.m.push(t(base(i, 2), d.2, s.numel));
            vs.v.push(t(base(i, 3), d.2, state_len(s)));
        }
        vs
    }

    /// Size queries and encode through the ABI.
    fn encode(
        m: &[Spec],
        vs: &Views,
        clip: *const f32,
        scratch: impl FnOnce(usize) -> u64,
    ) -> (Vec<u8>, adamant_cuda_adam_mini_table, u64) {
        let l = abi_layouts(m);
        let n = m.len();
        let (mut tb, mut sl) = (0usize, 0usize);
        // SAFETY: live host arrays; view data are never dereferenced.
        unsafe {
            assert_eq!(
                adamant_cuda_adam_mini_table_bytes(l.as_ptr(), vs.p.as_ptr(), n, &mut tb),
                OK
            );
            assert_eq!(
                adamant_cuda_adam_mini_scratch_len(l.as_ptr(), vs.p.as_ptr(), n, &mut sl),
                OK
            );
        }
        let sa = scratch(sl);
        let mut out = vec![0u8; tb];
        let mut desc = adamant_cuda_adam_mini_table::default();
        // SAFETY: as above.
        let st = unsafe {
            adamant_cuda_adam_mini_table_encode(
                l.as_ptr(),
                vs.p.as_ptr(),
                vs.g.as_ptr(),
                vs.m.as_ptr(),
                vs.v.as_ptr(),
                clip,
                n,
                if sl == 0 {
                    core::ptr::null_mut()
                } else {
                    dptr(sa)
                },
                sl,
                out.as_mut_ptr(),
                tb,
                &mut desc,
            )
        };
        assert_eq!(st, OK);
        (out, desc, sa)
    }

    /// The encoder writes `MiniPlan::build`'s bytes (segments, element runs with and without
    /// weight decay, scan table) and totals, for a mixed model with bf16 parameters and f32
    /// gradients and states, with and without clip coefficients, and for a model of biases
    /// only (no segments, no scratch).
    #[test]
    fn spec_encoder_bytes_equal_mini_plan() {
        let bias_only = vec![spec(0, 0, 1, 9), spec(0, 0, 0, 0), spec(0, 0, 0, 33)];
        for (m, clip) in [
            (model(), 0x7000_0000u64),
            (model(), 0),
            (bias_only, 0x7000_0040),
        ] {
            let d = (1u32, 0u32, 0u32);
            let base = |i: usize, b: usize| 0x1000_0000 + (4 * i + b) as u64 * 0x10_0000 + 8;
            let vs = views_at(&m, d, base);
            let clip_ptr = if clip == 0 {
                core::ptr::null()
            } else {
                dptr::<f32>(clip).cast_const()
            };
            let (bytes, desc, scratch) =
                encode(
                    &m,
                    &vs,
                    clip_ptr,
                    |sl| if sl == 0 { 0 } else { 0x6000_0000 },
                );
            // The same model through MiniPlan.
            let core_segs: Vec<Vec<Segment>> = m
                .iter()
                .map(|s| {
                    s.segs
                        .iter()
                        .map(|x| {
                            if x.block_len == 0 {
                                Segment::Element { len: x.len }
                            } else {
                                Segment::Blocks {
                                    len: x.len,
                                    block_len: x.block_len,
                                }
                            }
                        })
                        .collect()
                })
                .collect();
            let tensors: Vec<MiniTensor<'_>> = m
                .iter()
                .enumerate()
                .map(|(i, s)| MiniTensor {
                    param: if s.numel == 0 { 0 } else { base(i, 0) },
                    grad: if s.numel == 0 { 0 } else { base(i, 1) },
                    exp_avg: if s.numel == 0 { 0 } else { base(i, 2) },
                    exp_avg_sq: if state_len(s) == 0 { 0 } else { base(i, 3) },
                    numel: s.numel as u64,
                    layout: match s.kind {
                        0 => BlockLayout::Element,
                        1 => BlockLayout::Rows {
                            row_len: s.block_len,
                        },
                        2 => BlockLayout::Heads {
                            head_numel: s.block_len,
                        },
                        3 => BlockLayout::Tensor,
                        _ => BlockLayout::Segments(&core_segs[i]),
                    },
                    weight_decay: s.wd == 1,
                    sr_index_offset: 0,
                    clip_coef: if clip == 0 { 0 } else { clip + 4 * i as u64 },
                })
                .collect();
            let want_scratch = if m.len() == 3 { 0 } else { 0x6000_0000 };
            assert_eq!(scratch, want_scratch);
            let plan = MiniPlan::build(&tensors, (2, 4, 4), want_scratch).unwrap();
            let s_end = plan.segments.len() * MiniSegment::SIZE;
            let d_end = s_end + plan.elements_decay.len() * TensorEntry::SIZE;
            let p_end = d_end + plan.elements_plain.len() * TensorEntry::SIZE;
            assert_eq!(bytes[..s_end], plan.segment_bytes()[..], "segments");
            assert_eq!(bytes[s_end..d_end], entry_bytes(&plan.elements_decay)[..]);
            assert_eq!(bytes[d_end..p_end], entry_bytes(&plan.elements_plain)[..]);
            assert_eq!(bytes[p_end..], entry_bytes(&plan.scan)[..], "scan");
            let chunks = |v: &[TensorEntry]| v.iter().map(|e| e.chunks()).sum::<u64>();
            assert_eq!(
                (desc.total_chunks, desc.total_tiles, desc.total_blocks),
                (plan.total_chunks, plan.total_tiles, plan.total_blocks)
            );
            assert_eq!(
                (desc.decay_chunks, desc.plain_chunks, desc.scan_chunks),
                (
                    chunks(&plan.elements_decay),
                    chunks(&plan.elements_plain),
                    chunks(&plan.scan)
                )
            );
            assert_eq!(
                (desc.param_dtype, desc.grad_dtype, desc.state_dtype),
                (1, 0, 0)
            );
            if m.len() > 3 {
                // The merge of the third tensor's 2nd and 3rd block segments is visible.
                assert!(plan
                    .segments
                    .iter()
                    .any(|s| s.n == 160 && s.block_len == 32));
                assert!(plan.total_blocks > 0 && !plan.elements_plain.is_empty());
            } else {
                assert_eq!((desc.segment_count, plan.scratch_bytes), (0, 0));
            }
        }
    }

    /// The model's step on the simulator through the encode and `checked_mini_step` equals
    /// `adamant_adam_mini_step_multi`: bf16 parameters with stochastic rounding, bf16
    /// gradients under a loss scale, per-tensor clip coefficients, f32 states; then f32
    /// parameters, f16 gradients, bf16 states with finite checking, clean and with a NaN
    /// gradient (skipped: nothing written, counter kept, `found_inf` set). Values include
    /// +-0, subnormals and large magnitudes.
    #[test]
    #[cfg_attr(miri, ignore = "interprets PTX: far too slow under Miri")]
    fn conformance_step_table_on_the_simulator_equals_the_cpu_abi() {
        let m = model();
        let n = m.len();
        let mut cfg = adamant_adam_mini_config_default();
        cfg.weight_decay = 0.1;
        cfg.stochastic_rounding = 1;
        cfg.stochastic_rounding_seed = 77;
        let cases = [
            ((1u32, 1u32, 0u32), Some(512.0f32), true, false),
            ((0, 2, 1), None, false, false),
            ((0, 2, 1), None, false, true),
        ];
        for (case, &(d, scale, clip, poison)) in cases.iter().enumerate() {
            let what = format!("dtypes {d:?} scale {scale:?} clip {clip} poison {poison}");
            let mut s = sim();
            let huge = if d.1 == 2 { 6.0e4 } else { 1e15 };
            // Host buffers (aligned words) per tensor: param, grad, exp_avg, exp_avg_sq.
            let mut host: Vec<[Vec<u32>; 4]> = vec![];
            let mut dev: Vec<[u64; 4]> = vec![];
            for (i, sp) in m.iter().enumerate() {
                let k = (10 * case + i) as u64;
                let nv = state_len(sp);
                let g_raw: Vec<(usize, u32)> = if poison && i == 3 {
                    vec![(4100, nan_payload(d.1))]
                } else {
                    vec![]
                };
                let abs: Vec<f32> = adversarial(nv, k + 3, 10.0)
                    .iter()
                    .map(|x| x.abs())
                    .collect();
                let bytes = [
                    elem_bytes(d.0, &adversarial(sp.numel, k, 1e3), &[]),
                    elem_bytes(d.1, &adversarial(sp.numel, k + 1, huge), &g_raw),
                    elem_bytes(d.2, &adversarial(sp.numel, k + 2, 1.0), &[]),
                    elem_bytes(d.2, &abs, &[]),
                ];
                dev.push(core::array::from_fn(|b| put_bytes(&mut s, &bytes[b])));
                host.push(core::array::from_fn(|b| words(&bytes[b])));
            }
            let coefs: Vec<f32> = (0..n).map(|i| [0.75, 1.0, 0.5, 0.25][i % 4]).collect();
            let coefs_a = put_bytes(&mut s, &le(&coefs));
            let vs = views_at(&m, d, |i, b| dev[i][b]);
            let clip_ptr = if clip {
                dptr::<f32>(coefs_a).cast_const()
            } else {
                core::ptr::null()
            };
            let (bytes, desc, _) = encode(&m, &vs, clip_ptr, |len| {
                put_bytes(&mut s, &vec![0xA5u8; 4 * len])
            });
            let table_a = put_bytes(&mut s, &bytes);
            let lr = 0.0078125f32;
            let lr_a = put_bytes(&mut s, &le(&[lr]));
            let step_a = put_bytes(&mut s, &le(&[3u64]));
            let found_a = put_bytes(&mut s, &[0u8; 4]);
            let scale_a = scale.map(|x| put_bytes(&mut s, &le(&[x])));
            let args = adamant_cuda_step_args {
                lr: dptr::<f32>(lr_a).cast_const(),
                step: dptr(step_a),
                grad_scale: scale_a.map_or(core::ptr::null(), |a| dptr::<f32>(a).cast_const()),
                clip_coef: core::ptr::null(),
                found_inf: dptr(found_a),
                check_finite: (scale.is_none()) as u32,
            };
            let r = checked_mini_step(&cfg, &args, &desc, dptr::<c_void>(table_a), || {
                Ok(Borrowed(&mut s))
            });
            assert_eq!(r, Ok(()), "{what}");
            // The CPU ABI on the same host values.
            let host0 = host.clone();
            let view = |w: &mut Vec<u32>, dt: u32, len: usize| adamant_tensor {
                data: w.as_mut_ptr().cast(),
                dtype: dt,
                len,
            };
            let (mut ps, mut gs, mut ms, mut vs2) = (vec![], vec![], vec![], vec![]);
            for (i, sp) in m.iter().enumerate() {
                let [p, g, mm, v] = &mut host[i];
                ps.push(view(p, d.0, sp.numel));
                let gv = view(g, d.1, sp.numel);
                gs.push(adamant_const_tensor {
                    data: gv.data.cast_const(),
                    dtype: gv.dtype,
                    len: gv.len,
                });
                ms.push(view(mm, d.2, sp.numel));
                vs2.push(view(v, d.2, state_len(sp)));
            }
            let opts = adamant_step_options {
                lr: lr as f64,
                grad_scale: scale.unwrap_or(1.0),
                clip_coef: 1.0,
                has_grad_scale: scale.is_some() as u32,
                has_clip_coef: 0,
                found_inf: 0,
                check_finite: scale.is_none() as u32,
            };
            let layouts = abi_layouts(&m);
            let mut out_step = 0u64;
            // SAFETY: arrays of views over live host vectors.
            let st = unsafe {
                adamant_adam_mini_step_multi(
                    &cfg,
                    &opts,
                    3,
                    layouts.as_ptr(),
                    ps.as_ptr(),
                    gs.as_ptr(),
                    ms.as_ptr(),
                    vs2.as_ptr(),
                    if clip {
                        coefs.as_ptr()
                    } else {
                        core::ptr::null()
                    },
                    n,
                    &mut out_step,
                )
            };
            let dev_step = u64::from_le_bytes(get_bytes(&mut s, step_a, 8).try_into().unwrap());
            let found = get_words(&mut s, found_a, 1)[0];
            if poison {
                assert_eq!(st, adamant_status::SkippedNonFinite, "{what}");
                assert_eq!((dev_step, found), (3, 0x3F80_0000), "{what}");
                assert_eq!(host, host0, "{what}: the CPU wrote");
            } else {
                assert_eq!((st, out_step), (OK, 4), "{what}");
                assert_eq!((dev_step, found), (4, 0), "{what}");
            }
            let size = |dt: u32| [4usize, 2, 2][dt as usize];
            for (i, sp) in m.iter().enumerate() {
                let lens = [sp.numel, sp.numel, sp.numel, state_len(sp)];
                let dts = [d.0, d.1, d.2, d.2];
                for b in [0usize, 2, 3] {
                    let nb = lens[b] * size(dts[b]);
                    let got = get_bytes(&mut s, dev[i][b], nb);
                    let want = &le(&host[i][b])[..nb];
                    assert_eq!(got, want, "{what}: tensor {i} buffer {b}");
                }
            }
            if !poison {
                assert_ne!(host, host0, "{what}: the step changed nothing");
            }
        }
    }
}
