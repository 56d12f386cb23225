//! Table-driven CUDA steps: one update launch for a whole model, as PyTorch's
//! `multi_tensor_apply`.
//!
//! `adamant_cuda_<rule>_step_multi` checks a list of views on the host and queues one update
//! kernel per tensor. A model's tensors keep their device addresses from step to step, so the
//! list can instead be encoded once into a device table of tensor entries that one launch
//! walks (each chunk of 16384 elements finds its tensor by a binary search over the entries'
//! first chunks):
//!
//! 1. `adamant_cuda_tensor_table_bytes(count)`: the table's size in bytes (64 per tensor);
//! 2. `adamant_cuda_tensor_table_encode(...)`: checks the lists exactly as the `_multi` entry
//!    points do, then writes the table bytes (the little-endian layout the kernels read) into
//!    a caller-owned host buffer and fills an [`adamant_cuda_tensor_table`] descriptor;
//! 3. the caller copies the bytes to device memory once (`cudaMemcpy`, `torch.Tensor.cuda()`),
//!    and keeps the descriptor on the host;
//! 4. `adamant_cuda_<rule>_step_table(config, args, &descriptor, table_device, stream)` every
//!    step: the finite scan (when on) and the update are one launch each over the table, then
//!    one commit advances the device step counter.
//!
//! Every tensor is keyed for stochastic rounding from its own element 0, as in the `_multi`
//! entry points, so a table step gives the same bits as `_multi` (and as the CPU ABI's
//! `_multi` calls). One table holds one dtype triple (parameters, gradients, states); a model
//! with several triples uses one table per triple.

use crate::cuda::{
    adam_lens, adamant_cuda_step_args, device_addr, entry, same_lens, status_of, ADAM_SPECS,
    THREE_SPECS,
};
use crate::cuda_dev::on_stream;
use crate::multi::{array_range, check_all, views, Raw, Spec};
use crate::status::adamant_status;
use crate::tensor::{
    adamant_const_tensor, adamant_tensor, check_dtype, check_overlap, Range, View, ANY_DTYPE,
    STATE_DTYPES,
};
use crate::{adamant_adam_config, adamant_lion_config, adamant_sgd_config};
use adamant_core::Dtype;
use adamant_cuda::args::{AdamHyper, LionHyper, Rule, SgdHyper, TensorEntry};
use adamant_cuda::ops::{self, Launcher, Tensors};
use core::ffi::c_void;

/// The update rule a tensor table is laid out for (which state buffers each entry holds).
/// Crosses the ABI as a `uint32_t`, checked on entry.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum adamant_cuda_rule {
    /// Adam and AdamW: `param, grad, exp_avg, exp_avg_sq`.
    Adam = 0,
    /// SGD: `param, grad, momentum_buffer` (every buffer empty when the step has no momentum).
    Sgd = 1,
    /// Lion: `param, grad, exp_avg`.
    Lion = 2,
}

impl adamant_cuda_rule {
    fn from_u32(v: u32) -> Result<adamant_cuda_rule, adamant_status> {
        match v {
            0 => Ok(adamant_cuda_rule::Adam),
            1 => Ok(adamant_cuda_rule::Sgd),
            2 => Ok(adamant_cuda_rule::Lion),
            _ => Err(adamant_status::InvalidEnum),
        }
    }

    fn kernels(self) -> Rule {
        match self {
            adamant_cuda_rule::Adam => Rule::Adam,
            adamant_cuda_rule::Sgd => Rule::Sgd,
            adamant_cuda_rule::Lion => Rule::Lion,
        }
    }
}

/// Host descriptor of an encoded tensor table, filled by `adamant_cuda_tensor_table_encode`
/// and passed (unchanged) to every `adamant_cuda_<rule>_step_table` call over that table.
/// The step checks it before queueing anything; a descriptor the encoder would not produce
/// gives `ADAMANT_STATUS_INVALID_CONFIG` (or the dtype statuses for bad dtype codes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct adamant_cuda_tensor_table {
    /// Tensors in the table (1 to `UINT32_MAX`).
    pub count: usize,
    /// Launch chunks of the table: the sum of `ceil(len / 16384)` over its tensors.
    pub total_chunks: u64,
    /// Device address of the f32 clip coefficient every entry carries (NULL: no clipping).
    /// A step's `args->clip_coef` must be this address.
    pub clip_coef: *const f32,
    /// The `adamant_cuda_rule` the table was encoded for.
    pub rule: u32,
    /// `adamant_dtype` of every parameter buffer.
    pub param_dtype: u32,
    /// `adamant_dtype` of every gradient buffer.
    pub grad_dtype: u32,
    /// `adamant_dtype` of every state buffer.
    pub state_dtype: u32,
    /// State buffers per entry: 2 (Adam), 1 (Lion; SGD with momentum buffers), 0 (SGD with
    /// empty momentum buffers).
    pub state_count: u32,
}

/// Bytes of one table entry.
const ENTRY_BYTES: usize = TensorEntry::SIZE;

/// Bytes of the device table of `count` tensors (64 per tensor), for
/// `adamant_cuda_tensor_table_encode`'s buffer. 0 when no table of `count` tensors can be
/// built (`count` is 0 or above `UINT32_MAX`).
#[no_mangle]
pub extern "C" fn adamant_cuda_tensor_table_bytes(count: usize) -> usize {
    if count == 0 || count > u32::MAX as usize {
        return 0;
    }
    count * ENTRY_BYTES
}

/// The momentum buffers of an SGD table are all full (length of their parameters) or all
/// empty; anything else is a length mismatch for either kind of step.
fn sgd_lens(v: &[View; 3]) -> Result<(), adamant_status> {
    let n = v[0].len;
    if v[1].len != n || (v[2].len != n && v[2].len != 0) {
        return Err(adamant_status::LengthMismatch);
    }
    Ok(())
}

/// Check the lists of a table (dtypes uniform over the table, then every check of the
/// `_multi` entry points, then the host buffers) and only then write the entries into `out`
/// and the descriptor into `out_desc`.
fn encode<const B: usize>(
    rule: adamant_cuda_rule,
    specs: &[Spec; B],
    raw: impl Fn(usize) -> [Raw; B],
    lens: impl Fn(&[View; B]) -> Result<(), adamant_status>,
    count: usize,
    clip: u64,
    arrays: &[Range],
    out: *mut u8,
    out_desc: *mut adamant_cuda_tensor_table,
) -> Result<(), adamant_status> {
    // Pass 1: enum and allowed dtype of every view, then one dtype per buffer kind.
    for i in 0..count {
        let r = raw(i);
        for b in 0..B {
            check_dtype(r[b].dtype, specs[b].allowed)?;
        }
    }
    let first = raw(0);
    for i in 0..count {
        let r = raw(i);
        for b in 0..B {
            if r[b].dtype != first[b].dtype {
                return Err(adamant_status::UnsupportedDtype);
            }
        }
    }
    // Passes 2 and 3 of the `_multi` entry points: pointers, lengths, device overlap.
    check_all(count, specs, &raw, &lens, &[])?;
    // Chunks (cannot overflow: the views are disjoint address ranges; checked anyway) and,
    // for SGD, whether the table carries momentum buffers.
    let mut total = 0u64;
    let mut all_empty = true;
    for i in 0..count {
        let v = views(specs, &raw(i))?;
        total = total
            .checked_add((v[0].len as u64).div_ceil(adamant_cuda::args::CHUNK))
            .ok_or(adamant_status::LengthTooLarge)?;
        all_empty &= v[2].len == 0;
    }
    let state_count = match rule {
        adamant_cuda_rule::Adam => 2,
        adamant_cuda_rule::Lion => 1,
        adamant_cuda_rule::Sgd => u32::from(!all_empty),
    };
    if rule == adamant_cuda_rule::Sgd && !all_empty {
        // Full buffers somewhere: every one must be full (`sgd_lens` let empty ones through).
        for i in 0..count {
            let v = views(specs, &raw(i))?;
            if v[2].len != v[0].len {
                return Err(adamant_status::LengthMismatch);
            }
        }
    }
    // Host buffers: the table and the descriptor are written while the view arrays are read.
    let table = Range {
        start: out.addr(),
        end: out.addr() + count * ENTRY_BYTES,
        written: true,
    };
    let desc = View::out_range(out_desc.cast_const());
    check_overlap(arrays.len() + 2, |k| match k {
        0 => table,
        1 => desc,
        _ => arrays[k - 2],
    })?;
    let mut chunk = 0u64;
    for i in 0..count {
        let v = views(specs, &raw(i))?;
        let mut e = entry(&v, clip);
        e.chunk_start = chunk;
        chunk += e.chunks();
        let bytes = e.to_bytes();
        // SAFETY: `out` holds at least `count * 64` writable bytes (checked by the caller of
        // this function) that overlap nothing this call reads (checked above).
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(i * ENTRY_BYTES), ENTRY_BYTES)
        };
    }
    debug_assert_eq!(chunk, total);
    let d = adamant_cuda_tensor_table {
        count,
        total_chunks: total,
        clip_coef: core::ptr::without_provenance(clip as usize),
        rule: rule as u32,
        param_dtype: first[0].dtype,
        grad_dtype: first[1].dtype,
        state_dtype: first[2].dtype,
        state_count,
    };
    // SAFETY: non-NULL and aligned (`try_out!`), a host struct the caller owns.
    unsafe { out_desc.write(d) };
    Ok(())
}

/// Encode the device table of one model's tensors for `adamant_cuda_<rule>_step_table`.
///
/// The lists are those of `adamant_cuda_<rule>_step_multi`: for `ADAMANT_CUDA_RULE_ADAM`
/// `states0` = `exp_avgs`, `states1` = `exp_avg_sqs`; for `ADAMANT_CUDA_RULE_SGD` `states0` =
/// `momentum_buffers` (all with their parameters' lengths, or all empty for steps without
/// momentum); for `ADAMANT_CUDA_RULE_LION` `states0` = `exp_avgs`. `states1` is not read for
/// SGD and Lion (may be NULL). Every view's `data` is a device address; the views are checked
/// as by the `_multi` entry points (dtype, NULL, length, alignment, overlap of the device
/// ranges) and, in addition, all parameters must share one dtype, all gradients one, all
/// states one (`ADAMANT_STATUS_UNSUPPORTED_DTYPE` otherwise). `clip_coef` is the device
/// address of an f32 clip coefficient the table's steps multiply every gradient by, or NULL.
///
/// On success, the `adamant_cuda_tensor_table_bytes(count)` first bytes of `out_table` (a host
/// buffer of `table_bytes` bytes) hold the table, to be copied to 8-byte aligned device
/// memory, and `*out_desc` describes it. Errors: `count` 0 or above `UINT32_MAX`
/// (`ADAMANT_STATUS_INVALID_CONFIG`), `table_bytes` too small (`ADAMANT_STATUS_LENGTH_MISMATCH`),
/// `out_table` or `out_desc` overlapping each other or the view arrays
/// (`ADAMANT_STATUS_OVERLAP`), and the view statuses; on any error nothing is written. No
/// device memory is touched and no driver is needed.
///
/// # Safety
/// Each array holds `count` views (`states1` too for Adam); `out_table` points to
/// `table_bytes` writable bytes; `out_desc` is a writable host pointer.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_tensor_table_encode(
    rule: u32,
    clip_coef: *const f32,
    params: *const adamant_tensor,
    grads: *const adamant_const_tensor,
    states0: *const adamant_tensor,
    states1: *const adamant_tensor,
    count: usize,
    out_table: *mut u8,
    table_bytes: usize,
    out_desc: *mut adamant_cuda_tensor_table,
) -> adamant_status {
    ffi_boundary!({
        let out_desc = try_out!(out_desc);
        if out_table.is_null() {
            return Err(adamant_status::NullPointer);
        }
        let p = try_slice!(params, count);
        let g = try_slice!(grads, count);
        let s0 = try_slice!(states0, count);
        let rule = adamant_cuda_rule::from_u32(rule)?;
        let clip = device_addr(clip_coef, false)?;
        let need = adamant_cuda_tensor_table_bytes(count);
        if need == 0 {
            return Err(adamant_status::InvalidConfig);
        }
        if table_bytes < need {
            return Err(adamant_status::LengthMismatch);
        }
        if out_table.addr().checked_add(need).is_none() {
            return Err(adamant_status::LengthTooLarge);
        }
        let mut arrays = [
            array_range(params, count),
            array_range(grads, count),
            array_range(states0, count),
            array_range(states1, 0),
        ];
        match rule {
            adamant_cuda_rule::Adam => {
                let s1 = try_slice!(states1, count);
                arrays[3] = array_range(states1, count);
                let raw = |i: usize| [p[i].into(), g[i].into(), s0[i].into(), s1[i].into()];
                encode(
                    rule,
                    &ADAM_SPECS,
                    raw,
                    adam_lens,
                    count,
                    clip,
                    &arrays,
                    out_table,
                    out_desc,
                )
            }
            adamant_cuda_rule::Sgd | adamant_cuda_rule::Lion => {
                let raw = |i: usize| [p[i].into(), g[i].into(), s0[i].into()];
                let lens = if rule == adamant_cuda_rule::Sgd {
                    sgd_lens
                } else {
                    same_lens
                };
                encode(
                    rule,
                    &THREE_SPECS,
                    raw,
                    lens,
                    count,
                    clip,
                    &arrays[..3],
                    out_table,
                    out_desc,
                )
            }
        }
    })
}

/// What a checked descriptor gives the launches.
struct Checked {
    dtypes: (Dtype, Dtype, Dtype),
    count: u32,
    total_chunks: u64,
}

/// Check a descriptor against the step that uses it: rule, dtype codes, count, state
/// buffers (`states` the step needs), clip coefficient address.
fn check_desc(
    rule: adamant_cuda_rule,
    d: &adamant_cuda_tensor_table,
    states: u32,
    clip: u64,
) -> Result<Checked, adamant_status> {
    if adamant_cuda_rule::from_u32(d.rule)? != rule {
        return Err(adamant_status::InvalidConfig);
    }
    let p = check_dtype(d.param_dtype, ANY_DTYPE)?;
    let g = check_dtype(d.grad_dtype, ANY_DTYPE)?;
    let s = check_dtype(d.state_dtype, STATE_DTYPES)?;
    if d.count == 0 || d.count > u32::MAX as usize {
        return Err(adamant_status::InvalidConfig);
    }
    let layout_ok = match rule {
        adamant_cuda_rule::Adam => d.state_count == 2,
        adamant_cuda_rule::Lion => d.state_count == 1,
        adamant_cuda_rule::Sgd => d.state_count <= 1,
    };
    if !layout_ok {
        return Err(adamant_status::InvalidConfig);
    }
    // An SGD table without elements carries no buffers either way.
    if d.state_count != states && d.total_chunks > 0 {
        return Err(adamant_status::LengthMismatch);
    }
    if d.clip_coef.addr() as u64 != clip {
        return Err(adamant_status::InvalidConfig);
    }
    Ok(Checked {
        dtypes: (p, g, s),
        count: d.count as u32,
        total_chunks: d.total_chunks,
    })
}

/// Check the descriptor and the table address, get the launcher (the driver check), then
/// queue: the scan over the table (when on), one update launch over the table, one commit.
/// `args` passed `refs()`; `hyper` gives the kernel bytes of a validated configuration
/// (built only once everything passed).
pub(crate) fn table_step<L: Launcher, H: AsRef<[u8]>>(
    rule: adamant_cuda_rule,
    hyper: impl FnOnce() -> H,
    args: &adamant_cuda_step_args,
    desc: &adamant_cuda_tensor_table,
    states: u32,
    table_device: *const c_void,
    launcher: impl FnOnce() -> Result<L, adamant_status>,
) -> Result<(), adamant_status> {
    let (refs, clip, scan) = args.refs()?;
    let c = check_desc(rule, desc, states, clip)?;
    let addr = device_addr(table_device.cast::<u64>(), true)?;
    let mut l = launcher()?;
    let t = Tensors::Table {
        addr,
        count: c.count,
        total_chunks: c.total_chunks,
    };
    if scan {
        ops::nonfinite_scan(&mut l, c.dtypes.1, &t, refs.found_inf).map_err(status_of)?;
    }
    let hyper = hyper();
    ops::update(&mut l, rule.kernels(), c.dtypes, &t, &refs, hyper.as_ref()).map_err(status_of)?;
    ops::commit(&mut l, &refs).map_err(status_of)
}

/// [`table_step`] on the caller's stream.
///
/// # Safety
/// As the public entry points.
unsafe fn stream_step<H: AsRef<[u8]>>(
    rule: adamant_cuda_rule,
    hyper: impl FnOnce() -> H,
    args: &adamant_cuda_step_args,
    desc: *const adamant_cuda_tensor_table,
    states: u32,
    table_device: *const c_void,
    stream: *mut c_void,
) -> Result<(), adamant_status> {
    let desc = *try_ref!(desc);
    // SAFETY: the caller's contract: `stream` is NULL or a live stream of the current context.
    let launcher = unsafe { on_stream(stream) };
    table_step(rule, hyper, args, &desc, states, table_device, launcher)
}

/// Adam or AdamW over a table.
///
/// # Safety
/// As `adamant_cuda_adamw_step_table`.
unsafe fn adam_table(
    decoupled: bool,
    config: *const adamant_adam_config,
    args: *const adamant_cuda_step_args,
    desc: *const adamant_cuda_tensor_table,
    table_device: *const c_void,
    stream: *mut c_void,
) -> Result<(), adamant_status> {
    let config = *try_ref!(config);
    let args = *try_ref!(args);
    let _ = try_ref!(desc);
    // Pointers and flags before values, as the CPU ABI.
    args.refs()?;
    // The learning rate is on the device: validate the rest at lr 0.
    let cfg = config.to_core(decoupled, 0.0)?;
    cfg.validate()?;
    let hyper = || AdamHyper::from_config(&cfg).to_bytes();
    // SAFETY: forwarded caller contract.
    unsafe {
        stream_step(
            adamant_cuda_rule::Adam,
            hyper,
            &args,
            desc,
            2,
            table_device,
            stream,
        )
    }
}

/// AdamW step over a whole encoded table on `stream`: the finite scan of every gradient (when
/// `args->check_finite` is 1 or a loss scale is given) as one launch, the update of every
/// tensor as ONE launch, then one commit of the device step counter. Same bits as
/// `adamant_cuda_adamw_step_multi` over the lists the table was encoded from (and as
/// `adamant_adamw_step_multi`).
///
/// `table` is the descriptor `adamant_cuda_tensor_table_encode` filled for
/// `ADAMANT_CUDA_RULE_ADAM`; `table_device` is the device address (8-byte aligned) of the
/// table bytes it wrote. `args->clip_coef` must be the `clip_coef` given to the encoder
/// (both NULL for no clipping). Checked before anything is queued: NULL pointers, `args`
/// as `adamant_cuda_adamw_step`, the configuration, then the descriptor (another rule, a
/// zero count, a different clip address: `ADAMANT_STATUS_INVALID_CONFIG`; dtype codes as for
/// views), then `table_device` (`ADAMANT_STATUS_NULL_POINTER`, `ADAMANT_STATUS_MISALIGNED`).
/// Returns as `adamant_cuda_adamw_step`.
///
/// # Safety
/// `config`, `args` and `table` point to valid host structs; the device table holds the
/// bytes encoded with `*table` and every address in it (and in `args`) is device memory of
/// the current context, valid until the stream has run the step; `stream` is NULL or a live
/// stream of the current context.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adamw_step_table(
    config: *const adamant_adam_config,
    args: *const adamant_cuda_step_args,
    table: *const adamant_cuda_tensor_table,
    table_device: *const c_void,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        unsafe { adam_table(true, config, args, table, table_device, stream) }
    })
}

/// Adam (L2 weight decay) step over an encoded table; see `adamant_cuda_adamw_step_table`.
///
/// # Safety
/// As `adamant_cuda_adamw_step_table`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_adam_step_table(
    config: *const adamant_adam_config,
    args: *const adamant_cuda_step_args,
    table: *const adamant_cuda_tensor_table,
    table_device: *const c_void,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        // SAFETY: the caller's contract above.
        unsafe { adam_table(false, config, args, table, table_device, stream) }
    })
}

/// SGD step over a table encoded for `ADAMANT_CUDA_RULE_SGD`; see
/// `adamant_cuda_adamw_step_table`. A configuration with momentum needs a table encoded with
/// momentum buffers, one without needs empty ones (`ADAMANT_STATUS_LENGTH_MISMATCH`
/// otherwise, as the `_multi` entry point).
///
/// # Safety
/// As `adamant_cuda_adamw_step_table`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_sgd_step_table(
    config: *const adamant_sgd_config,
    args: *const adamant_cuda_step_args,
    table: *const adamant_cuda_tensor_table,
    table_device: *const c_void,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let config = *try_ref!(config);
        let args = *try_ref!(args);
        let _ = try_ref!(table);
        args.refs()?;
        let cfg = config.to_core(0.0)?;
        cfg.validate()?;
        let states = u32::from(cfg.has_momentum());
        let hyper = || SgdHyper::from_config(&cfg).to_bytes();
        // SAFETY: the caller's contract above.
        unsafe {
            stream_step(
                adamant_cuda_rule::Sgd,
                hyper,
                &args,
                table,
                states,
                table_device,
                stream,
            )
        }
    })
}

/// Lion step over a table encoded for `ADAMANT_CUDA_RULE_LION`; see
/// `adamant_cuda_adamw_step_table`.
///
/// # Safety
/// As `adamant_cuda_adamw_step_table`.
#[no_mangle]
pub unsafe extern "C" fn adamant_cuda_lion_step_table(
    config: *const adamant_lion_config,
    args: *const adamant_cuda_step_args,
    table: *const adamant_cuda_tensor_table,
    table_device: *const c_void,
    stream: *mut c_void,
) -> adamant_status {
    ffi_boundary!({
        let config = *try_ref!(config);
        let args = *try_ref!(args);
        let _ = try_ref!(table);
        args.refs()?;
        let cfg = config.to_core(0.0)?;
        cfg.validate()?;
        let hyper = || LionHyper::from_config(&cfg).to_bytes();
        // SAFETY: the caller's contract above.
        unsafe {
            stream_step(
                adamant_cuda_rule::Lion,
                hyper,
                &args,
                table,
                1,
                table_device,
                stream,
            )
        }
    })
}

#[cfg(test)]
mod sim_tests {
    //! The table entry points run on the PTX simulator (the committed kernels executed on the
    //! CPU): encode -> upload -> one update launch, compared bit for bit with the CPU ABI's
    //! `_multi` calls and with the per-tensor launches of the CUDA `_multi` path.
    use super::*;
    use crate::cuda::checked_step;
    use crate::cuda_dev::sim::sim;
    use crate::{
        adamant_adam_config_default, adamant_adam_step_multi, adamant_adamw_config_default,
        adamant_adamw_step_multi, adamant_lion_config_default, adamant_lion_step_multi,
        adamant_sgd_config_default, adamant_sgd_step_multi, adamant_step_options,
    };
    use adamant_core::{bf16, f16, Element};
    use adamant_cuda::backend::{Backend, BackendError, LaunchShape, ParamBytes, ParamValue};
    use ptx_sim::Simulator;

    /// The simulator as a launcher that logs every launch's `(module, entry)`.
    struct Counting<'a> {
        sim: &'a mut Simulator,
        log: &'a mut Vec<(String, String)>,
    }

    impl Launcher for Counting<'_> {
        fn launch_kernel(
            &mut self,
            module: &str,
            entry: &str,
            shape: LaunchShape,
            params: &[ParamValue],
        ) -> Result<(), BackendError> {
            self.log.push((module.to_string(), entry.to_string()));
            self.sim.launch(module, entry, shape, params)
        }
    }

    /// Element bits (low 16 bits for bf16/f16) of a buffer in host memory, packed in u32
    /// words so its views are aligned for every dtype.
    #[derive(Clone, Debug)]
    struct Host {
        dtype: Dtype,
        len: usize,
        words: Vec<u32>,
    }

    impl Host {
        fn new(dtype: Dtype, bits: &[u32]) -> Host {
            let size = dtype.size();
            let mut bytes: Vec<u8> = bits
                .iter()
                .flat_map(|b| b.to_le_bytes()[..size].to_vec())
                .collect();
            bytes.resize(bytes.len().next_multiple_of(4), 0);
            let words = bytes
                .chunks(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Host {
                dtype,
                len: bits.len(),
                words,
            }
        }
        fn bytes(&self) -> Vec<u8> {
            let b: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
            b[..self.len * self.dtype.size()].to_vec()
        }
        fn bits(&self) -> Vec<u32> {
            unpack(self.dtype, &self.bytes())
        }
        fn view(&mut self) -> adamant_tensor {
            adamant_tensor {
                data: self.words.as_mut_ptr().cast(),
                dtype: self.dtype as u32,
                len: self.len,
            }
        }
        fn cview(&self) -> adamant_const_tensor {
            adamant_const_tensor {
                data: self.words.as_ptr().cast(),
                dtype: self.dtype as u32,
                len: self.len,
            }
        }
    }

    fn unpack(dtype: Dtype, bytes: &[u8]) -> Vec<u32> {
        bytes
            .chunks(dtype.size())
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect()
    }

    /// Equal bits, or a panic naming the first differing element (not the whole buffer).
    fn same_bits(got: &[u32], want: &[u32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{what}: element {i} of {}: {:#x} != {:#x}",
                got.len(),
                got[i],
                want[i]
            );
        }
    }

    /// Special values per dtype: NaN payloads of both signs (quiet and signalling), +-0,
    /// the smallest and largest subnormals, +-inf, the largest finite, the smallest normal.
    fn specials(d: Dtype) -> &'static [u32] {
        match d {
            Dtype::F32 => &[
                0x7fc0_0000,
                0x7fc1_2345,
                0xffa0_0001,
                0x0000_0000,
                0x8000_0000,
                0x0000_0001,
                0x807f_ffff,
                0x7f80_0000,
                0xff80_0000,
                0x7f7f_ffff,
                0x0080_0000,
            ],
            Dtype::Bf16 => &[
                0x7fc0, 0x7fc1, 0xff81, 0x0000, 0x8000, 0x0001, 0x807f, 0x7f80, 0xff80, 0x7f7f,
                0x0080,
            ],
            Dtype::F16 => &[
                0x7e00, 0x7e01, 0xfc01, 0x0000, 0x8000, 0x0001, 0x83ff, 0x7c00, 0xfc00, 0x7bff,
                0x0400,
            ],
        }
    }

    fn finite(d: Dtype, x: f32) -> u32 {
        match d {
            Dtype::F32 => x.to_bits(),
            Dtype::Bf16 => bf16::from_f32(x).to_bits_u32(),
            Dtype::F16 => f16::from_f32(x).to_bits_u32(),
        }
    }

    /// `n` element bits: ordinary values in [-4, 4) (scaled by `scale`), and, when `special`,
    /// every few elements one of [`specials`].
    fn values(d: Dtype, n: usize, seed: u32, scale: f32, special: bool) -> Vec<u32> {
        let sp = specials(d);
        (0..n)
            .map(|i| {
                let h = (i as u32 ^ seed.wrapping_mul(0x9e37_79b9)).wrapping_mul(2_654_435_761);
                if special && h % 7 == 3 {
                    sp[(h >> 8) as usize % sp.len()]
                } else {
                    finite(d, ((h >> 4) % 4001) as f32 / 500.0 * scale - 4.0 * scale)
                }
            })
            .collect()
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kind {
        AdamW,
        Adam,
        SgdMomentum,
        SgdPlain,
        Lion,
    }

    impl Kind {
        const ALL: [Kind; 5] = [
            Kind::AdamW,
            Kind::Adam,
            Kind::SgdMomentum,
            Kind::SgdPlain,
            Kind::Lion,
        ];
        fn rule(self) -> adamant_cuda_rule {
            match self {
                Kind::AdamW | Kind::Adam => adamant_cuda_rule::Adam,
                Kind::SgdMomentum | Kind::SgdPlain => adamant_cuda_rule::Sgd,
                Kind::Lion => adamant_cuda_rule::Lion,
            }
        }
        /// State buffers with elements per tensor.
        fn states(self) -> u32 {
            match self {
                Kind::AdamW | Kind::Adam => 2,
                Kind::SgdMomentum | Kind::Lion => 1,
                Kind::SgdPlain => 0,
            }
        }
        fn adam(self) -> adamant_adam_config {
            let mut c = if self == Kind::AdamW {
                adamant_adamw_config_default()
            } else {
                adamant_adam_config_default()
            };
            c.weight_decay = 0.0625;
            c.stochastic_rounding = 1;
            c.stochastic_rounding_seed = 1234;
            c
        }
        fn sgd(self) -> adamant_sgd_config {
            let mut c = adamant_sgd_config_default();
            if self == Kind::SgdMomentum {
                c.momentum = 0.875;
                c.dampening = 0.125;
                c.nesterov = 0;
            }
            c.weight_decay = 0.01;
            c.stochastic_rounding = 1;
            c.stochastic_rounding_seed = 99;
            c
        }
        fn lion(self) -> adamant_lion_config {
            let mut c = adamant_lion_config_default();
            c.weight_decay = 0.1;
            c.stochastic_rounding = 1;
            c.stochastic_rounding_seed = 5;
            c
        }
        /// The kernel bytes, inline (no heap: the no-allocation test uses them too).
        fn hyper(self) -> ParamBytes {
            let b = match self {
                Kind::AdamW | Kind::Adam => {
                    let c = self.adam().to_core(self == Kind::AdamW, 0.0).unwrap();
                    ParamBytes::from_slice(&AdamHyper::from_config(&c).to_bytes())
                }
                Kind::SgdMomentum | Kind::SgdPlain => ParamBytes::from_slice(
                    &SgdHyper::from_config(&self.sgd().to_core(0.0).unwrap()).to_bytes(),
                ),
                Kind::Lion => ParamBytes::from_slice(
                    &LionHyper::from_config(&self.lion().to_core(0.0).unwrap()).to_bytes(),
                ),
            };
            b.unwrap()
        }
    }

    /// One model's buffers on the host: per tensor param, grad, state0, state1 (state1 empty
    /// lists for three-buffer rules; SGD without momentum has empty state0 views).
    #[derive(Clone, Debug)]
    struct Model {
        p: Vec<Host>,
        g: Vec<Host>,
        s0: Vec<Host>,
        s1: Vec<Host>,
    }

    /// Odd lengths: one spanning three chunks, an empty one, a one-element one, one just over
    /// a chunk, short tails.
    const LENS: [usize; 6] = [2 * 16384 + 9, 0, 1, 16384 + 3, 515, 6];

    fn model(kind: Kind, d: (Dtype, Dtype, Dtype), grad_special: bool) -> Model {
        let k = LENS.len();
        let n_states = kind.states();
        let mk = |t: usize, dt: Dtype, seed: u32, scale: f32, sp: bool| {
            Host::new(dt, &values(dt, LENS[t], seed + 31 * t as u32, scale, sp))
        };
        Model {
            p: (0..k).map(|t| mk(t, d.0, 1, 1.0, true)).collect(),
            g: (0..k).map(|t| mk(t, d.1, 2, 1.0, grad_special)).collect(),
            s0: (0..k)
                .map(|t| {
                    if n_states >= 1 {
                        mk(t, d.2, 3, 0.25, true)
                    } else {
                        Host::new(d.2, &[])
                    }
                })
                .collect(),
            s1: if n_states == 2 {
                (0..k)
                    .map(|t| {
                        // Second moments: mostly non-negative, specials included.
                        let v: Vec<u32> = values(d.2, LENS[t], 4 + 31 * t as u32, 0.5, true)
                            .into_iter()
                            .map(|b| match d.2 {
                                Dtype::F32 if b & 0x7f80_0000 != 0x7f80_0000 => b & !0x8000_0000,
                                Dtype::Bf16 if b & 0x7f80 != 0x7f80 => b & !0x8000,
                                _ => b,
                            })
                            .collect();
                        Host::new(d.2, &v)
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Device copies of a model: per tensor the addresses of its buffers (0 for empty ones).
    /// Tensor `t` starts `t % 3` elements into its allocation, so some tensors are not
    /// 16-byte aligned and take the kernels' element-wise path.
    fn upload(s: &mut Simulator, m: &Model) -> Vec<[u64; 4]> {
        let mut put = |h: &Host, t: usize| -> u64 {
            if h.len == 0 {
                return 0;
            }
            let off = (t % 3) * h.dtype.size();
            let a = s.alloc(h.len * h.dtype.size() + off).unwrap();
            s.upload(a + off as u64, &h.bytes()).unwrap();
            a + off as u64
        };
        (0..m.p.len())
            .map(|t| {
                [
                    put(&m.p[t], t),
                    put(&m.g[t], t),
                    put(&m.s0[t], t),
                    m.s1.get(t).map_or(0, |h| put(h, t)),
                ]
            })
            .collect()
    }

    fn download(s: &mut Simulator, a: u64, h: &Host) -> Vec<u32> {
        let mut b = vec![0u8; h.len * h.dtype.size()];
        if !b.is_empty() {
            s.download(a, &mut b).unwrap();
        }
        unpack(h.dtype, &b)
    }

    fn dview(a: u64, d: Dtype, n: usize) -> adamant_tensor {
        adamant_tensor {
            data: if n == 0 {
                core::ptr::null_mut()
            } else {
                core::ptr::without_provenance_mut(a as usize)
            },
            dtype: d as u32,
            len: n,
        }
    }

    fn cdview(a: u64, d: Dtype, n: usize) -> adamant_const_tensor {
        let v = dview(a, d, n);
        adamant_const_tensor {
            data: v.data.cast_const(),
            dtype: v.dtype,
            len: v.len,
        }
    }

    /// The device view lists of a model at `dev`.
    struct Lists {
        p: Vec<adamant_tensor>,
        g: Vec<adamant_const_tensor>,
        s0: Vec<adamant_tensor>,
        s1: Vec<adamant_tensor>,
    }

    fn lists(m: &Model, dev: &[[u64; 4]]) -> Lists {
        let k = m.p.len();
        Lists {
            p: (0..k)
                .map(|t| dview(dev[t][0], m.p[t].dtype, m.p[t].len))
                .collect(),
            g: (0..k)
                .map(|t| cdview(dev[t][1], m.g[t].dtype, m.g[t].len))
                .collect(),
            s0: (0..k)
                .map(|t| dview(dev[t][2], m.s0[t].dtype, m.s0[t].len))
                .collect(),
            s1: (0..m.s1.len())
                .map(|t| dview(dev[t][3], m.s1[t].dtype, m.s1[t].len))
                .collect(),
        }
    }

    /// Device scalars of one step.
    struct Scalars {
        lr: u64,
        step: u64,
        scale: u64,
        clip: u64,
        found: u64,
    }

    const LR: f32 = 0.001;
    const SCALE: f32 = 256.0;
    const CLIP: f32 = 0.625;
    const STEP: u64 = 3;

    fn scalars(s: &mut Simulator, found: f32) -> Scalars {
        let mut f = |v: f32| {
            let a = s.alloc(4).unwrap();
            s.upload(a, &v.to_le_bytes()).unwrap();
            a
        };
        let (lr, scale, clip, found) = (f(LR), f(SCALE), f(CLIP), f(found));
        let step = s.alloc(8).unwrap();
        s.upload(step, &STEP.to_le_bytes()).unwrap();
        Scalars {
            lr,
            step,
            scale,
            clip,
            found,
        }
    }

    /// A step's per-step inputs.
    #[derive(Clone, Copy, Debug)]
    struct Case {
        scale: bool,
        clip: bool,
        check: u32,
        found_inf: bool,
        grad_special: bool,
        poison: bool,
    }

    fn args(sc: &Scalars, c: &Case) -> adamant_cuda_step_args {
        let p = |a: u64| core::ptr::without_provenance::<f32>(a as usize);
        adamant_cuda_step_args {
            lr: p(sc.lr),
            step: core::ptr::without_provenance_mut(sc.step as usize),
            grad_scale: if c.scale { p(sc.scale) } else { p(0) },
            clip_coef: if c.clip { p(sc.clip) } else { p(0) },
            found_inf: core::ptr::without_provenance_mut(sc.found as usize),
            check_finite: c.check,
        }
    }

    /// The CPU ABI's `_multi` call of `kind` over `m` (in place); its status.
    fn cpu_step(kind: Kind, c: &Case, m: &mut Model) -> adamant_status {
        let opts = adamant_step_options {
            lr: LR as f64,
            grad_scale: SCALE,
            clip_coef: CLIP,
            has_grad_scale: u32::from(c.scale),
            has_clip_coef: u32::from(c.clip),
            found_inf: u32::from(c.found_inf),
            check_finite: c.check,
        };
        let ps: Vec<adamant_tensor> = m.p.iter_mut().map(Host::view).collect();
        let gs: Vec<adamant_const_tensor> = m.g.iter().map(Host::cview).collect();
        let s0: Vec<adamant_tensor> = m.s0.iter_mut().map(Host::view).collect();
        let s1: Vec<adamant_tensor> = m.s1.iter_mut().map(Host::view).collect();
        let k = ps.len();
        let mut out = 0u64;
        // SAFETY: arrays of `k` views over live host vectors.
        unsafe {
            match kind {
                Kind::AdamW => adamant_adamw_step_multi(
                    &kind.adam(),
                    &opts,
                    STEP,
                    ps.as_ptr(),
                    gs.as_ptr(),
                    s0.as_ptr(),
                    s1.as_ptr(),
                    k,
                    &mut out,
                ),
                Kind::Adam => adamant_adam_step_multi(
                    &kind.adam(),
                    &opts,
                    STEP,
                    ps.as_ptr(),
                    gs.as_ptr(),
                    s0.as_ptr(),
                    s1.as_ptr(),
                    k,
                    &mut out,
                ),
                Kind::SgdMomentum | Kind::SgdPlain => adamant_sgd_step_multi(
                    &kind.sgd(),
                    &opts,
                    STEP,
                    ps.as_ptr(),
                    gs.as_ptr(),
                    s0.as_ptr(),
                    k,
                    &mut out,
                ),
                Kind::Lion => adamant_lion_step_multi(
                    &kind.lion(),
                    &opts,
                    STEP,
                    ps.as_ptr(),
                    gs.as_ptr(),
                    s0.as_ptr(),
                    k,
                    &mut out,
                ),
            }
        }
    }

    /// Encode the table of `l` for `kind` (clip coefficient at `clip`).
    fn encode_lists(
        kind: Kind,
        l: &Lists,
        clip: u64,
    ) -> (
        Result<(), adamant_status>,
        Vec<u8>,
        adamant_cuda_tensor_table,
    ) {
        let k = l.p.len();
        let mut bytes = vec![0u8; adamant_cuda_tensor_table_bytes(k)];
        let mut desc = blank_desc();
        // SAFETY: arrays of `k` views (states1 empty for three-buffer rules: not read);
        // `bytes` has the size asked for.
        let st = unsafe {
            adamant_cuda_tensor_table_encode(
                kind.rule() as u32,
                core::ptr::without_provenance(clip as usize),
                l.p.as_ptr(),
                l.g.as_ptr(),
                l.s0.as_ptr(),
                if l.s1.is_empty() {
                    core::ptr::null()
                } else {
                    l.s1.as_ptr()
                },
                k,
                bytes.as_mut_ptr(),
                bytes.len(),
                &mut desc,
            )
        };
        let r = if st == adamant_status::Ok {
            Ok(())
        } else {
            Err(st)
        };
        (r, bytes, desc)
    }

    fn blank_desc() -> adamant_cuda_tensor_table {
        adamant_cuda_tensor_table {
            count: 77,
            total_chunks: 77,
            clip_coef: core::ptr::without_provenance(7),
            rule: 77,
            param_dtype: 77,
            grad_dtype: 77,
            state_dtype: 77,
            state_count: 77,
        }
    }

    /// The CUDA `_multi` path (one update launch per tensor) on the simulator.
    fn multi_step(
        kind: Kind,
        a: &adamant_cuda_step_args,
        l: &Lists,
        launcher: Counting<'_>,
    ) -> Result<(), adamant_status> {
        let k = l.p.len();
        let hyper = kind.hyper();
        match kind {
            Kind::AdamW | Kind::Adam => {
                let raw = |i: usize| [l.p[i].into(), l.g[i].into(), l.s0[i].into(), l.s1[i].into()];
                checked_step(
                    Rule::Adam,
                    &hyper,
                    a,
                    k,
                    &ADAM_SPECS,
                    raw,
                    adam_lens,
                    || Ok(launcher),
                )
            }
            _ => {
                let raw = |i: usize| [l.p[i].into(), l.g[i].into(), l.s0[i].into()];
                let rule = kind.rule().kernels();
                checked_step(rule, &hyper, a, k, &THREE_SPECS, raw, sgd_lens, || {
                    Ok(launcher)
                })
            }
        }
    }

    /// Every rule, three dtype triples, four step cases (plain with non-finite gradients,
    /// loss scale + clip, a poisoned gradient under the finite scan, a preset `found_inf`):
    /// the table step equals the CPU ABI's `_multi` call and the CUDA `_multi` path bit for
    /// bit, with one update launch (one scan launch when the scan is on, one commit).
    #[test]
    #[cfg_attr(miri, ignore = "interprets PTX: far too slow under Miri")]
    fn conformance_table_step_equals_cpu_multi_and_cuda_multi() {
        let base = sim();
        let triples = [
            (Dtype::F32, Dtype::F32, Dtype::F32),
            (Dtype::Bf16, Dtype::Bf16, Dtype::F32),
            (Dtype::F16, Dtype::Bf16, Dtype::Bf16),
        ];
        let plain = Case {
            scale: false,
            clip: true,
            check: 0,
            found_inf: false,
            grad_special: true,
            poison: false,
        };
        let cases = [
            plain,
            Case {
                scale: true,
                grad_special: false,
                ..plain
            },
            Case {
                check: 1,
                clip: false,
                grad_special: false,
                poison: true,
                ..plain
            },
            Case {
                found_inf: true,
                ..plain
            },
        ];
        // Unoptimised builds interpret PTX slowly: one dtype triple there, all in release.
        let triples = if cfg!(debug_assertions) {
            &triples[..1]
        } else {
            &triples[..]
        };
        let mut runs = 0;
        for kind in Kind::ALL {
            for &d in triples {
                for c in cases {
                    check_case(&base, kind, d, c);
                    runs += 1;
                }
            }
        }
        assert_eq!(runs, 5 * 4 * triples.len());
    }

    fn check_case(base: &Simulator, kind: Kind, d: (Dtype, Dtype, Dtype), c: Case) {
        let what = format!("{kind:?} {d:?} {c:?}");
        let mut m = model(kind, d, c.grad_special);
        if c.poison {
            // Tensor 3's gradient, past the first chunk's vectorised part.
            let mut g = m.g[3].bits();
            g[16384 + 1] = specials(d.1)[7];
            m.g[3] = Host::new(d.1, &g);
        }
        let orig = m.clone();
        let mut s = base.fresh();
        let found0 = if c.found_inf { 1.0 } else { 0.0 };
        // Table path.
        let dev_t = upload(&mut s, &m);
        let sc_t = scalars(&mut s, found0);
        let l_t = lists(&m, &dev_t);
        let clip = if c.clip { sc_t.clip } else { 0 };
        let (r, bytes, desc) = encode_lists(kind, &l_t, clip);
        assert_eq!(r, Ok(()), "{what}");
        assert_eq!(desc.count, LENS.len());
        assert_eq!(desc.total_chunks, 3 + 1 + 2 + 1 + 1);
        assert_eq!(desc.state_count, kind.states(), "{what}");
        let table = s.alloc(bytes.len()).unwrap();
        s.upload(table, &bytes).unwrap();
        let a_t = args(&sc_t, &c);
        let mut log = Vec::new();
        let r = table_step(
            kind.rule(),
            || kind.hyper(),
            &a_t,
            &desc,
            kind.states(),
            core::ptr::without_provenance(table as usize),
            || {
                Ok(Counting {
                    sim: &mut s,
                    log: &mut log,
                })
            },
        );
        assert_eq!(r, Ok(()), "{what}");
        let count = |log: &[(String, String)], module: &str| {
            log.iter().filter(|(m, _)| m == module).count()
        };
        let scan = c.check == 1 || c.scale;
        assert_eq!(
            count(&log, kind.rule().kernels().name()),
            1,
            "{what}: {log:?}"
        );
        assert_eq!(log.len(), 1 + usize::from(scan) + 1, "{what}: {log:?}");
        assert_eq!(log.last().unwrap().1, adamant_cuda::args::COMMIT_ENTRY);
        // `_multi` path on its own copy.
        let dev_m = upload(&mut s, &m);
        let sc_m = scalars(&mut s, found0);
        let l_m = lists(&m, &dev_m);
        let mut a_m = args(&sc_m, &c);
        if !c.clip {
            a_m.clip_coef = core::ptr::null();
        }
        let mut log_m = Vec::new();
        let r = multi_step(
            kind,
            &a_m,
            &l_m,
            Counting {
                sim: &mut s,
                log: &mut log_m,
            },
        );
        assert_eq!(r, Ok(()), "{what}");
        let nonempty = LENS.iter().filter(|&&n| n > 0).count();
        assert_eq!(count(&log_m, kind.rule().kernels().name()), nonempty);
        // CPU ABI.
        let st = cpu_step(kind, &c, &mut m);
        let skipped = c.found_inf || c.poison;
        let want = if c.found_inf {
            adamant_status::SkippedFoundInf
        } else if c.poison {
            adamant_status::SkippedNonFinite
        } else {
            adamant_status::Ok
        };
        assert_eq!(st, want, "{what}");
        if skipped {
            for (a, b) in [(&m.p, &orig.p), (&m.s0, &orig.s0), (&m.s1, &orig.s1)] {
                for (x, y) in a.iter().zip(b.iter()) {
                    same_bits(
                        &x.bits(),
                        &y.bits(),
                        &format!("{what}: CPU wrote on a skip"),
                    );
                }
            }
        }
        for (dev, sc, path) in [(&dev_t, &sc_t, "table"), (&dev_m, &sc_m, "multi")] {
            for (t, d) in dev.iter().enumerate() {
                let bufs = [Some(&m.p[t]), Some(&m.s0[t]), m.s1.get(t)];
                for (slot, h) in [0usize, 2, 3].into_iter().zip(bufs) {
                    let Some(h) = h else { continue };
                    same_bits(
                        &download(&mut s, d[slot], h),
                        &h.bits(),
                        &format!("{what}: {path} tensor {t} buffer {slot}"),
                    );
                }
                // Gradients are read only.
                same_bits(
                    &download(&mut s, d[1], &m.g[t]),
                    &orig.g[t].bits(),
                    &format!("{what}: {path} tensor {t} gradient"),
                );
            }
            let mut step = [0u8; 8];
            s.download(sc.step, &mut step).unwrap();
            let mut found = [0u8; 4];
            s.download(sc.found, &mut found).unwrap();
            let want_step = if skipped { STEP } else { STEP + 1 };
            assert_eq!(
                u64::from_le_bytes(step),
                want_step,
                "{what}: {path} counter"
            );
            let want_found = if skipped { 1.0f32 } else { 0.0 };
            assert_eq!(f32::from_le_bytes(found).to_bits(), want_found.to_bits());
        }
        // The table itself is never written by a step.
        let mut after = vec![0u8; bytes.len()];
        s.download(table, &mut after).unwrap();
        assert_eq!(after, bytes);
    }

    /// Fake device buffers for host-only checks (encoding never touches device memory):
    /// `k` f32 tensors of `n` elements, each buffer at its own 1 MiB-spaced address.
    fn fake_lists(kind: Kind, k: usize, n: usize) -> Lists {
        let a = |t: usize, slot: usize| 0x1000_0000 + ((t * 4 + slot) as u64) * 0x10_0000;
        let n0 = if kind == Kind::SgdPlain { 0 } else { n };
        Lists {
            p: (0..k).map(|t| dview(a(t, 0), Dtype::F32, n)).collect(),
            g: (0..k).map(|t| cdview(a(t, 1), Dtype::F32, n)).collect(),
            s0: (0..k).map(|t| dview(a(t, 2), Dtype::F32, n0)).collect(),
            s1: if kind.states() == 2 {
                (0..k).map(|t| dview(a(t, 3), Dtype::F32, n)).collect()
            } else {
                Vec::new()
            },
        }
    }

    fn same_desc(a: &adamant_cuda_tensor_table, b: &adamant_cuda_tensor_table) -> bool {
        (a.count, a.total_chunks, a.clip_coef, a.rule)
            == (b.count, b.total_chunks, b.clip_coef, b.rule)
            && (a.param_dtype, a.grad_dtype, a.state_dtype, a.state_count)
                == (b.param_dtype, b.grad_dtype, b.state_dtype, b.state_count)
    }

    /// The encoded bytes are `adamant_cuda::args`' table of the same entries (chunks from
    /// `assign_chunks`, every tensor keyed from element 0, the clip address in each entry).
    #[test]
    fn spec_encoded_bytes_are_the_launcher_table_layout() {
        for kind in Kind::ALL {
            let mut l = fake_lists(kind, 4, 1);
            let lens = [40_000usize, 0, 16_384, 7];
            for (t, &n) in lens.iter().enumerate() {
                l.p[t].len = n;
                l.g[t].len = n;
                if kind != Kind::SgdPlain {
                    l.s0[t].len = n;
                }
                if let Some(v) = l.s1.get_mut(t) {
                    v.len = n;
                }
            }
            let clip = 0x7000_0004u64;
            let (r, bytes, desc) = encode_lists(kind, &l, clip);
            assert_eq!(r, Ok(()), "{kind:?}");
            let addr = |p: *const c_void, n: usize| if n == 0 { 0 } else { p.addr() as u64 };
            let mut entries: Vec<TensorEntry> = (0..4)
                .map(|t| TensorEntry {
                    param: addr(l.p[t].data.cast_const(), lens[t]),
                    grad: addr(l.g[t].data, lens[t]),
                    state0: addr(l.s0[t].data.cast_const(), l.s0[t].len),
                    state1: l.s1.get(t).map_or(0, |v| addr(v.data.cast_const(), v.len)),
                    n: lens[t] as u64,
                    sr_index_offset: 0,
                    clip_coef: clip,
                    chunk_start: 0,
                })
                .collect();
            let total = adamant_cuda::args::assign_chunks(&mut entries);
            assert_eq!(bytes, adamant_cuda::args::table_bytes(&entries), "{kind:?}");
            assert_eq!((desc.count, desc.total_chunks), (4, total));
            assert_eq!(total, 3 + 1 + 1);
            assert_eq!(desc.rule, kind.rule() as u32);
            assert_eq!(desc.state_count, kind.states());
            assert_eq!(desc.clip_coef.addr() as u64, clip);
            assert_eq!(
                (desc.param_dtype, desc.grad_dtype, desc.state_dtype),
                (0, 0, 0)
            );
        }
        assert_eq!(adamant_cuda_tensor_table_bytes(0), 0);
        assert_eq!(adamant_cuda_tensor_table_bytes(3), 192);
        assert_eq!(
            adamant_cuda_tensor_table_bytes(u32::MAX as usize),
            64 * u32::MAX as usize
        );
        assert_eq!(adamant_cuda_tensor_table_bytes(u32::MAX as usize + 1), 0);
    }

    /// Every argument error of the encoder returns its status and writes neither the table
    /// buffer nor the descriptor.
    #[test]
    fn spec_encode_errors_write_nothing() {
        use adamant_status as S;
        let k = 3;
        let need = adamant_cuda_tensor_table_bytes(k);
        type Edit = fn(&mut Lists);
        let cases: [(Kind, &str, Edit, S); 12] = [
            (
                Kind::Adam,
                "bad dtype enum",
                |l| l.g[1].dtype = 9,
                S::InvalidEnum,
            ),
            (
                Kind::Adam,
                "mixed parameter dtypes",
                |l| l.p[2].dtype = 1,
                S::UnsupportedDtype,
            ),
            (
                Kind::Lion,
                "mixed gradient dtypes",
                |l| l.g[0].dtype = 2,
                S::UnsupportedDtype,
            ),
            (
                Kind::Adam,
                "mixed state dtypes",
                |l| l.s1[1].dtype = 1,
                S::UnsupportedDtype,
            ),
            (
                Kind::Adam,
                "moments of two dtypes",
                |l| {
                    for v in &mut l.s1 {
                        v.dtype = 1;
                    }
                },
                S::UnsupportedDtype,
            ),
            (
                Kind::SgdMomentum,
                "f16 states",
                |l| {
                    for v in &mut l.s0 {
                        v.dtype = 2;
                    }
                },
                S::UnsupportedDtype,
            ),
            (
                Kind::Lion,
                "short gradient",
                |l| l.g[2].len -= 1,
                S::LengthMismatch,
            ),
            (
                Kind::SgdMomentum,
                "some momentum buffers empty",
                |l| l.s0[1].len = 0,
                S::LengthMismatch,
            ),
            (
                Kind::Adam,
                "NULL data",
                |l| l.s0[1].data = core::ptr::null_mut(),
                S::NullPointer,
            ),
            (
                Kind::Adam,
                "misaligned data",
                |l| l.p[1].data = l.p[1].data.wrapping_byte_add(2),
                S::Misaligned,
            ),
            (
                Kind::Lion,
                "one buffer twice",
                |l| l.s0[2].data = l.p[0].data,
                S::Overlap,
            ),
            (
                Kind::Adam,
                "overlapping tensors",
                |l| l.p[1].data = l.p[0].data.wrapping_byte_add(8),
                S::Overlap,
            ),
        ];
        for (kind, what, edit, want) in cases {
            let mut l = fake_lists(kind, k, 100);
            edit(&mut l);
            let (r, bytes, desc) = encode_lists(kind, &l, 0);
            assert_eq!(r, Err(want), "{what}");
            assert!(bytes.iter().all(|&b| b == 0), "{what}: table written");
            assert!(
                same_desc(&desc, &blank_desc()),
                "{what}: descriptor written"
            );
        }
        // Host-side arguments, through the entry point itself.
        let l = fake_lists(Kind::Adam, k, 100);
        let mut buf = vec![0xabu8; need + 64];
        let mut desc = blank_desc();
        let call = |rule: u32,
                    clip: usize,
                    s1: *const adamant_tensor,
                    count: usize,
                    out: *mut u8,
                    len: usize,
                    desc: *mut adamant_cuda_tensor_table| {
            // SAFETY: arrays of `k` views; `out` has `len` bytes or aliases the view arrays
            // (the call must refuse before writing).
            unsafe {
                adamant_cuda_tensor_table_encode(
                    rule,
                    core::ptr::without_provenance(clip),
                    l.p.as_ptr(),
                    l.g.as_ptr(),
                    l.s0.as_ptr(),
                    s1,
                    count,
                    out,
                    len,
                    desc,
                )
            }
        };
        let s1 = l.s1.as_ptr();
        let out = buf.as_mut_ptr();
        let cases: [(&str, S, adamant_status); 9] = [
            (
                "rule 3",
                S::InvalidEnum,
                call(3, 0, s1, k, out, need, &mut desc),
            ),
            (
                "NULL desc",
                S::NullPointer,
                call(0, 0, s1, k, out, need, core::ptr::null_mut()),
            ),
            (
                "NULL table",
                S::NullPointer,
                call(0, 0, s1, k, core::ptr::null_mut(), need, &mut desc),
            ),
            (
                "NULL exp_avg_sqs",
                S::NullPointer,
                call(0, 0, core::ptr::null(), k, out, need, &mut desc),
            ),
            (
                "misaligned clip",
                S::Misaligned,
                call(0, 0x1002, s1, k, out, need, &mut desc),
            ),
            (
                "count 0",
                S::InvalidConfig,
                call(0, 0, s1, 0, out, need, &mut desc),
            ),
            (
                "buffer one byte short",
                S::LengthMismatch,
                call(0, 0, s1, k, out, need - 1, &mut desc),
            ),
            (
                "buffer for fewer tensors",
                S::LengthMismatch,
                call(
                    0,
                    0,
                    s1,
                    k,
                    out,
                    adamant_cuda_tensor_table_bytes(k - 1),
                    &mut desc,
                ),
            ),
            (
                "descriptor inside the table",
                S::Overlap,
                call(0, 0, s1, k, out, need, out.wrapping_add(64).cast()),
            ),
        ];
        for (what, want, got) in cases {
            assert_eq!(got, want, "{what}");
        }
        // The table buffer over the caller's own view array.
        let alias = l.g.as_ptr().cast_mut().cast::<u8>();
        assert_eq!(call(0, 0, s1, k, alias, need, &mut desc), S::Overlap);
        assert!(buf.iter().all(|&b| b == 0xab), "table written on an error");
        assert!(
            same_desc(&desc, &blank_desc()),
            "descriptor written on an error"
        );
        // SGD and Lion do not read the second state list; the valid call writes exactly the
        // table's bytes.
        let l3 = fake_lists(Kind::Lion, k, 100);
        // SAFETY: arrays of `k` views; `buf` has `need + 64` bytes.
        let st = unsafe {
            adamant_cuda_tensor_table_encode(
                adamant_cuda_rule::Lion as u32,
                core::ptr::null(),
                l3.p.as_ptr(),
                l3.g.as_ptr(),
                l3.s0.as_ptr(),
                core::ptr::null(),
                k,
                buf.as_mut_ptr(),
                buf.len(),
                &mut desc,
            )
        };
        assert_eq!(st, S::Ok);
        assert!(buf[..need].iter().any(|&b| b != 0xab));
        assert!(
            buf[need..].iter().all(|&b| b == 0xab),
            "wrote past the table"
        );
        assert_eq!((desc.count, desc.state_count, desc.rule), (k, 1, 2));
    }

    /// Every descriptor or step-argument error of a table step returns its status before the
    /// driver is asked for (the launcher is never made) and launches nothing.
    #[test]
    fn spec_table_step_errors_queue_nothing() {
        use adamant_status as S;
        let words = [0u64; 8];
        let dev = |i: usize| words.as_ptr().wrapping_add(i).addr() as u64;
        let p = |a: u64| core::ptr::without_provenance::<f32>(a as usize);
        let good_args = |clip: u64| adamant_cuda_step_args {
            lr: p(dev(0)),
            step: core::ptr::without_provenance_mut(dev(1) as usize),
            grad_scale: core::ptr::null(),
            clip_coef: p(clip),
            found_inf: core::ptr::without_provenance_mut(dev(2) as usize),
            check_finite: 1,
        };
        let table_addr: *const c_void = core::ptr::without_provenance(0x2000_0000);
        let run = |kind: Kind,
                   desc: &adamant_cuda_tensor_table,
                   states: u32,
                   args: &adamant_cuda_step_args,
                   table: *const c_void| {
            let mut made = false;
            let r = table_step(
                kind.rule(),
                || kind.hyper(),
                args,
                desc,
                states,
                table,
                || {
                    made = true;
                    Err::<Counting<'_>, _>(S::NoCudaDriver)
                },
            );
            (r, made)
        };
        let clip = dev(3);
        for kind in Kind::ALL {
            let (r, _, desc) = encode_lists(kind, &fake_lists(kind, 3, 100), clip);
            assert_eq!(r, Ok(()));
            let a = good_args(clip);
            let st = kind.states();
            // The valid step reaches the driver check.
            assert_eq!(
                run(kind, &desc, st, &a, table_addr),
                (Err(S::NoCudaDriver), true)
            );
            type Edit = fn(&mut adamant_cuda_tensor_table);
            let bad: [(&str, Edit, S); 9] = [
                (
                    "another rule",
                    |d| d.rule = (d.rule + 1) % 3,
                    S::InvalidConfig,
                ),
                ("rule 9", |d| d.rule = 9, S::InvalidEnum),
                ("param dtype 5", |d| d.param_dtype = 5, S::InvalidEnum),
                ("f16 states", |d| d.state_dtype = 2, S::UnsupportedDtype),
                ("count 0", |d| d.count = 0, S::InvalidConfig),
                ("count too large", |d| d.count = 1 << 32, S::InvalidConfig),
                ("state count", |d| d.state_count = 3, S::InvalidConfig),
                (
                    "other clip",
                    |d| d.clip_coef = d.clip_coef.wrapping_add(1),
                    S::InvalidConfig,
                ),
                (
                    "no clip",
                    |d| d.clip_coef = core::ptr::null(),
                    S::InvalidConfig,
                ),
            ];
            for (what, edit, want) in bad {
                let mut d = desc;
                edit(&mut d);
                assert_eq!(
                    run(kind, &d, st, &a, table_addr),
                    (Err(want), false),
                    "{kind:?} {what}"
                );
            }
            let odd = table_addr.wrapping_byte_add(4);
            assert_eq!(run(kind, &desc, st, &a, odd), (Err(S::Misaligned), false));
            assert_eq!(
                run(kind, &desc, st, &a, core::ptr::null()),
                (Err(S::NullPointer), false)
            );
            let no_flag = adamant_cuda_step_args {
                found_inf: core::ptr::null_mut(),
                ..a
            };
            assert_eq!(
                run(kind, &desc, st, &no_flag, table_addr),
                (Err(S::NullPointer), false)
            );
            let no_clip = adamant_cuda_step_args {
                clip_coef: core::ptr::null(),
                ..a
            };
            assert_eq!(
                run(kind, &desc, st, &no_clip, table_addr),
                (Err(S::InvalidConfig), false)
            );
        }
        // SGD: a momentum table needs a momentum step and the other way round; a table
        // without elements fits either.
        let (_, _, with) = encode_lists(Kind::SgdMomentum, &fake_lists(Kind::SgdMomentum, 2, 9), 0);
        let (_, _, without) = encode_lists(Kind::SgdPlain, &fake_lists(Kind::SgdPlain, 2, 9), 0);
        let (_, _, empty) =
            encode_lists(Kind::SgdMomentum, &fake_lists(Kind::SgdMomentum, 2, 0), 0);
        assert_eq!(
            (with.state_count, without.state_count, empty.state_count),
            (1, 0, 0)
        );
        let a = good_args(0);
        let sgd = Kind::SgdMomentum;
        assert_eq!(
            run(sgd, &with, 0, &a, table_addr),
            (Err(S::LengthMismatch), false)
        );
        assert_eq!(
            run(sgd, &without, 1, &a, table_addr),
            (Err(S::LengthMismatch), false)
        );
        assert_eq!(
            run(sgd, &empty, 1, &a, table_addr),
            (Err(S::NoCudaDriver), true)
        );
        assert_eq!(
            run(sgd, &empty, 0, &a, table_addr),
            (Err(S::NoCudaDriver), true)
        );
    }
}
