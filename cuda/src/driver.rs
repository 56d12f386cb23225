//! The real GPU: the CUDA driver loaded at run time (cudarc, `dynamic-loading`), kernels
//! launched on a borrowed `CUstream` (PyTorch's or JAX's), modules loaded once per context.
//!
//! On a machine without `libcuda` or without a device every entry returns
//! [`BackendError::NoDevice`]; nothing here panics (the driver calls are additionally guarded
//! against panics of the loader).
//!
//! # Allocation
//!
//! A launch through [`StreamLauncher`] allocates nothing on the host once its module is
//! loaded in the stream's context: the parameters are packed into fixed-size stack arrays
//! ([`PackedParams`]: at most [`MAX_PARAMS`] parameters in [`MAX_PARAM_WORDS`] words; a
//! by-value struct holds at most [`MAX_PARAM_BYTES`](crate::backend::MAX_PARAM_BYTES) bytes
//! inline), and the function is found
//! in a per-context cache keyed by the `&'static str` names of the embedded PTX (a lookup
//! builds no key). The first launch of a module in a context loads it and resolves every
//! entry of it, which allocates (initialization, once per module and context); an error
//! allocates its message. [`CudaBackend`] (tests and `verify`) allocates freely.

use crate::backend::{Backend, BackendError, LaunchShape, ParamValue};
use crate::ops::Launcher;
use crate::ptx;
use cudarc::driver::{result, sys};
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};

fn no_device(why: impl Into<String>) -> BackendError {
    BackendError::NoDevice(why.into())
}

fn failed(what: &str, e: result::DriverError) -> BackendError {
    // `{:?}` of the code only: DriverError's Display asks the driver for a string, which a
    // stub library cannot give.
    let code = e.0;
    match code {
        sys::cudaError_enum::CUDA_ERROR_NO_DEVICE
        | sys::cudaError_enum::CUDA_ERROR_STUB_LIBRARY
        | sys::cudaError_enum::CUDA_ERROR_NOT_INITIALIZED => no_device(format!("{what}: {code:?}")),
        _ => BackendError::Failed(format!("{what}: {code:?}")),
    }
}

/// Run a driver call, turning a loader panic (missing library or symbol) into `NoDevice`.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, BackendError>) -> Result<T, BackendError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(no_device(format!(
            "{what}: the CUDA driver library is unusable"
        ))),
    }
}

/// Load the driver and call `cuInit` once per process; the outcome is remembered.
pub fn init_driver() -> Result<(), BackendError> {
    static INIT: OnceLock<Result<(), BackendError>> = OnceLock::new();
    INIT.get_or_init(|| {
        guarded("cuInit", || {
            // SAFETY: only probes whether libcuda can be opened.
            if !unsafe { sys::is_culib_present() } {
                return Err(no_device("libcuda.so (the NVIDIA driver) is not installed"));
            }
            result::init().map_err(|e| failed("cuInit", e))?;
            let n = result::device::get_count().map_err(|e| failed("cuDeviceGetCount", e))?;
            if n <= 0 {
                return Err(no_device("the driver reports no CUDA device"));
            }
            Ok(())
        })
    })
    .clone()
}

/// The functions of the embedded modules loaded in one context, by module and entry name
/// (the `&'static str`s of [`ptx::MODULES`] and of their PTX text, so a lookup with borrowed
/// names builds no key).
type ContextFunctions = HashMap<&'static str, HashMap<&'static str, usize>>;

/// Loaded modules' functions, per context (keyed by the context handle).
fn registry() -> &'static Mutex<HashMap<usize, ContextFunctions>> {
    static R: OnceLock<Mutex<HashMap<usize, ContextFunctions>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Load module `m` in the current context and resolve every entry of it (allocates: once per
/// module and context).
fn load_module_functions(
    m: &'static ptx::Module,
) -> Result<HashMap<&'static str, usize>, BackendError> {
    // SAFETY: `ptx_nul` is a NUL-terminated PTX image that lives for the program.
    let handle = unsafe { result::module::load_data(m.ptx_nul.as_ptr() as *const c_void) }
        .map_err(|e| failed(&format!("cuModuleLoadData({})", m.name), e))?;
    let mut functions = HashMap::new();
    for entry in ptx::entries(m.ptx) {
        // SAFETY: `handle` is a module just loaded in the current context, never unloaded.
        let f = unsafe { get_function(handle, entry) }?;
        functions.insert(entry, f as usize);
    }
    Ok(functions)
}

/// The function `entry` of `module`.
///
/// # Safety
/// `module` must be a loaded module of the current context.
unsafe fn get_function(
    module: sys::CUmodule,
    entry: &str,
) -> Result<sys::CUfunction, BackendError> {
    let name = CString::new(entry).map_err(|_| BackendError::Failed("bad entry name".into()))?;
    // SAFETY: forwarded from the caller.
    unsafe { result::module::get_function(module, name) }
        .map_err(|e| failed(&format!("cuModuleGetFunction({entry})"), e))
}

/// The function `entry` of module `module` in context `ctx` (current on this thread),
/// loading the module on first use in that context. Allocation-free once the module is loaded.
fn function(
    ctx: sys::CUcontext,
    module: &str,
    entry: &str,
) -> Result<sys::CUfunction, BackendError> {
    let mut reg = registry()
        .lock()
        .map_err(|_| BackendError::Failed("module registry poisoned".into()))?;
    // `entry` reserves room only for a new context (hashbrown reserves on a vacant key only).
    let loaded = reg.entry(ctx as usize).or_default();
    if !loaded.contains_key(module) {
        let m = ptx::module(module)
            .ok_or_else(|| BackendError::Failed(format!("no PTX module named {module}")))?;
        let functions = load_module_functions(m)?;
        loaded.insert(m.name, functions);
    }
    loaded
        .get(module)
        .and_then(|functions| functions.get(entry))
        .map(|&f| f as sys::CUfunction)
        .ok_or_else(|| BackendError::Failed(format!("module {module} has no entry {entry}")))
}

/// Most parameters a launch may pass (the update kernels take 9).
pub const MAX_PARAMS: usize = 16;
/// Most 8-byte words all parameters of a launch may occupy together (1 KiB; an update launch
/// takes 21).
pub const MAX_PARAM_WORDS: usize = 128;

/// Parameter storage for `cuLaunchKernel`, on the stack: each parameter in its own
/// 8-byte-aligned words, little-endian, zero-padded to whole words (`max(1, ceil(bytes / 8))`
/// words per parameter), one after the other. No heap allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedParams {
    words: [u64; MAX_PARAM_WORDS],
    /// Parameter `i` occupies `words[starts[i]..starts[i + 1]]`.
    starts: [u16; MAX_PARAMS + 1],
    count: usize,
}

impl PackedParams {
    /// Pack `params`; [`BackendError::Failed`] when there are more than [`MAX_PARAMS`] of
    /// them or they need more than [`MAX_PARAM_WORDS`] words (the message is the only
    /// allocation).
    pub fn pack(params: &[ParamValue]) -> Result<PackedParams, BackendError> {
        if params.len() > MAX_PARAMS {
            return Err(BackendError::Failed(format!(
                "a launch passes {} parameters, at most {MAX_PARAMS} are supported",
                params.len()
            )));
        }
        let mut packed = PackedParams {
            words: [0; MAX_PARAM_WORDS],
            starts: [0; MAX_PARAMS + 1],
            count: params.len(),
        };
        let mut at = 0usize;
        for (i, p) in params.iter().enumerate() {
            let mut scalar = [0u8; 8];
            let bytes: &[u8] = match p {
                ParamValue::U32(v) => {
                    scalar[..4].copy_from_slice(&v.to_le_bytes());
                    &scalar[..4]
                }
                ParamValue::U64(v) => {
                    scalar = v.to_le_bytes();
                    &scalar
                }
                ParamValue::F32(v) => {
                    scalar[..4].copy_from_slice(&v.to_le_bytes());
                    &scalar[..4]
                }
                ParamValue::F64(v) => {
                    scalar = v.to_le_bytes();
                    &scalar
                }
                ParamValue::Bytes { bytes, .. } => bytes,
            };
            let len = bytes.len().div_ceil(8).max(1);
            if at + len > MAX_PARAM_WORDS {
                return Err(BackendError::Failed(format!(
                    "the parameters of a launch exceed {} bytes",
                    8 * MAX_PARAM_WORDS
                )));
            }
            let w = &mut packed.words[at..at + len];
            for (k, b) in bytes.iter().enumerate() {
                w[k / 8] |= (*b as u64) << (8 * (k % 8));
            }
            packed.starts[i] = at as u16;
            at += len;
            packed.starts[i + 1] = at as u16;
        }
        Ok(packed)
    }

    /// Parameters packed.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no parameter was packed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The words of parameter `i` (`max(1, ceil(bytes / 8))` of them).
    pub fn words(&self, i: usize) -> &[u64] {
        &self.words[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    /// One pointer per parameter to its first word, as `cuLaunchKernel`'s `kernelParams`
    /// reads them (valid while `self` is neither moved nor dropped); entries past
    /// [`PackedParams::len`] are null.
    fn pointers(&mut self) -> [*mut c_void; MAX_PARAMS] {
        let mut ptrs = [std::ptr::null_mut::<c_void>(); MAX_PARAMS];
        let base = self.words.as_mut_ptr();
        for (i, p) in ptrs.iter_mut().enumerate().take(self.count) {
            // `starts[i] < MAX_PARAM_WORDS` for every packed parameter (each takes >= 1 word).
            *p = base.wrapping_add(self.starts[i] as usize) as *mut c_void;
        }
        ptrs
    }
}

/// Launch on `stream` in context `ctx` without waiting.
fn launch_raw(
    ctx: sys::CUcontext,
    stream: sys::CUstream,
    module: &str,
    entry: &str,
    shape: LaunchShape,
    params: &[ParamValue],
) -> Result<(), BackendError> {
    let f = function(ctx, module, entry)?;
    launch_function(f, stream, entry, shape, params)
}

/// Launch function `f` (of the context current on this thread) on `stream` without waiting.
fn launch_function(
    f: sys::CUfunction,
    stream: sys::CUstream,
    entry: &str,
    shape: LaunchShape,
    params: &[ParamValue],
) -> Result<(), BackendError> {
    let mut packed = PackedParams::pack(params)?;
    let count = packed.len();
    let mut ptrs = packed.pointers();
    // SAFETY: `f` is a function of the current context; `ptrs[..count]` point to one value per
    // kernel parameter, laid out as the kernel declares it (args.rs), inside `packed`, which
    // is neither moved nor dropped until cuLaunchKernel returns (the driver copies the values);
    // the stream belongs to the current context.
    unsafe {
        result::launch_kernel(
            f,
            shape.grid,
            shape.block,
            shape.shared_bytes,
            stream,
            &mut ptrs[..count],
        )
    }
    .map_err(|e| failed(&format!("cuLaunchKernel({entry})"), e))
}

/// Launches on a stream the caller owns (PyTorch's `torch.cuda.current_stream().cuda_stream`,
/// JAX's FFI stream). Never allocates device memory, never synchronizes, never reads device
/// memory; never destroys the stream. Launches return as soon as they are queued.
pub struct StreamLauncher {
    ctx: sys::CUcontext,
    stream: sys::CUstream,
}

impl StreamLauncher {
    /// Borrow `stream` (a `CUstream`/`cudaStream_t`; null is the legacy default stream of the
    /// current context).
    ///
    /// # Safety
    /// `stream` must be null or a live stream, and stay alive while launches are queued.
    pub unsafe fn new(stream: *mut c_void) -> Result<StreamLauncher, BackendError> {
        init_driver()?;
        guarded("stream context", || {
            let stream = stream as sys::CUstream;
            let mut ctx: sys::CUcontext = std::ptr::null_mut();
            if stream.is_null() {
                // SAFETY: writes the current context handle (or null) into `ctx`.
                unsafe { sys::cuCtxGetCurrent(&mut ctx) }
                    .result()
                    .map_err(|e| failed("cuCtxGetCurrent", e))?;
            } else {
                // SAFETY: the caller guarantees `stream` is live.
                unsafe { sys::cuStreamGetCtx(stream, &mut ctx) }
                    .result()
                    .map_err(|e| failed("cuStreamGetCtx", e))?;
            }
            if ctx.is_null() {
                return Err(BackendError::Failed(
                    "no current CUDA context on this thread".into(),
                ));
            }
            let current = result::ctx::get_current().map_err(|e| failed("cuCtxGetCurrent", e))?;
            if current != Some(ctx) {
                // SAFETY: `ctx` is the live context of the caller's stream.
                unsafe { result::ctx::set_current(ctx) }
                    .map_err(|e| failed("cuCtxSetCurrent", e))?;
            }
            Ok(StreamLauncher { ctx, stream })
        })
    }
}

impl Launcher for StreamLauncher {
    fn launch_kernel(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError> {
        let (ctx, stream) = (self.ctx, self.stream);
        guarded("launch", || {
            launch_raw(ctx, stream, module, entry, shape, params)
        })
    }
}

/// A device for tests and `verify`: its own primary-context retain and its own stream;
/// `launch` waits for the kernel. Memory it allocates is freed on drop.
pub struct CudaBackend {
    dev: sys::CUdevice,
    ctx: sys::CUcontext,
    stream: sys::CUstream,
    name: String,
    allocations: Vec<u64>,
    /// Modules loaded from PTX text by `load_module` (name -> handle), used instead of the
    /// embedded ones; unloaded on drop.
    custom: HashMap<String, usize>,
}

impl CudaBackend {
    /// Open device `ordinal`, or `NoDevice` when there is no driver or no such device.
    pub fn new(ordinal: i32) -> Result<CudaBackend, BackendError> {
        init_driver()?;
        guarded("open device", || {
            let dev = result::device::get(ordinal).map_err(|e| failed("cuDeviceGet", e))?;
            let name = result::device::get_name(dev).unwrap_or_else(|_| "unknown".into());
            // SAFETY: `dev` is a valid device; the retain is released in Drop.
            let ctx = unsafe { result::primary_ctx::retain(dev) }
                .map_err(|e| failed("cuDevicePrimaryCtxRetain", e))?;
            // SAFETY: `ctx` was just retained.
            unsafe { result::ctx::set_current(ctx) }.map_err(|e| failed("cuCtxSetCurrent", e))?;
            let stream = result::stream::create(result::stream::StreamKind::NonBlocking)
                .map_err(|e| failed("cuStreamCreate", e))?;
            Ok(CudaBackend {
                dev,
                ctx,
                stream,
                name: format!("cuda:{ordinal} {name}"),
                allocations: Vec::new(),
                custom: HashMap::new(),
            })
        })
    }

    fn make_current(&self) -> Result<(), BackendError> {
        // SAFETY: `self.ctx` stays retained for the life of `self`.
        unsafe { result::ctx::set_current(self.ctx) }.map_err(|e| failed("cuCtxSetCurrent", e))
    }

    /// Run `f` with this backend's context current, guarded against loader panics.
    fn in_context<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Self) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        guarded(what, || {
            self.make_current()?;
            f(self)
        })
    }
}

impl Drop for CudaBackend {
    fn drop(&mut self) {
        let _ = guarded("drop", || {
            let _ = self.make_current();
            for &a in &self.allocations {
                // SAFETY: allocated by this backend with cuMemAlloc and not freed before.
                let _ = unsafe { result::free_sync(a) };
            }
            for &m in self.custom.values() {
                // SAFETY: loaded by `load_module` in this context and not unloaded before.
                let _ = unsafe { result::module::unload(m as sys::CUmodule) };
            }
            // SAFETY: the stream was created by this backend (never a borrowed one).
            let _ = unsafe { sys::cuStreamDestroy_v2(self.stream) };
            // SAFETY: balances the retain in `new`.
            let _ = unsafe { result::primary_ctx::release(self.dev) };
            Ok(())
        });
    }
}

impl Backend for CudaBackend {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn alloc(&mut self, bytes: usize) -> Result<u64, BackendError> {
        self.in_context("alloc", |this| {
            // SAFETY: plain allocation in the current context; cuMemAlloc aligns to >= 256.
            let a = unsafe { result::malloc_sync(bytes.max(1)) }
                .map_err(|e| failed("cuMemAlloc", e))?;
            this.allocations.push(a);
            // SAFETY: `a` holds at least `bytes` bytes.
            unsafe { result::memset_d8_sync(a, 0, bytes.max(1)) }
                .map_err(|e| failed("cuMemsetD8", e))?;
            Ok(a)
        })
    }

    fn upload(&mut self, dst: u64, src: &[u8]) -> Result<(), BackendError> {
        self.in_context("upload", |_| {
            // SAFETY: the caller passes an address of at least `src.len()` bytes it allocated.
            unsafe { result::memcpy_htod_sync(dst, src) }.map_err(|e| failed("cuMemcpyHtoD", e))
        })
    }

    fn download(&mut self, src: u64, dst: &mut [u8]) -> Result<(), BackendError> {
        self.in_context("download", |_| {
            // SAFETY: the stream's work is finished (launch waits); `src` holds `dst.len()` bytes.
            unsafe { result::memcpy_dtoh_sync(dst, src) }.map_err(|e| failed("cuMemcpyDtoH", e))
        })
    }

    fn launch(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError> {
        self.in_context("launch", |this| {
            if let Some(&m) = this.custom.get(module) {
                // SAFETY: `m` is a module this backend loaded in its context, not unloaded.
                let f = unsafe { get_function(m as sys::CUmodule, entry) }?;
                launch_function(f, this.stream, entry, shape, params)?;
            } else {
                launch_raw(this.ctx, this.stream, module, entry, shape, params)?;
            }
            // SAFETY: our own live stream.
            unsafe { result::stream::synchronize(this.stream) }
                .map_err(|e| failed(&format!("kernel {entry}"), e))
        })
    }

    fn load_module(&mut self, name: &str, ptx: &str) -> Result<(), BackendError> {
        let text = CString::new(ptx)
            .map_err(|_| BackendError::Failed(format!("module {name}: NUL byte in PTX")))?;
        self.in_context("load module", |this| {
            // SAFETY: `text` is a NUL-terminated PTX image alive for the call (the driver
            // copies it).
            let h = unsafe { result::module::load_data(text.as_ptr() as *const c_void) }
                .map_err(|e| failed(&format!("cuModuleLoadData({name})"), e))?;
            if let Some(old) = this.custom.insert(name.to_string(), h as usize) {
                // SAFETY: an earlier module of this backend, no launch of it is pending
                // (launch waits).
                let _ = unsafe { result::module::unload(old as sys::CUmodule) };
            }
            Ok(())
        })
    }

    fn free_all(&mut self) -> Result<(), BackendError> {
        self.in_context("free", |this| {
            for a in this.allocations.drain(..) {
                // SAFETY: allocated by this backend with cuMemAlloc, not freed before; no
                // launch is pending (launch waits).
                unsafe { result::free_sync(a) }.map_err(|e| failed("cuMemFree", e))?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    //! The stack packing gives the words the launcher passed before it stopped allocating
    //! (`old_param_words`, the previous heap-based packing kept here as the reference), for the
    //! launches the step path makes, and its pointers address those words.
    use super::*;
    use crate::args::{
        AdamHyper, ClipBuffers, ClipHyper, MiniHyper, MiniSegment, QuantArgs, TensorEntry,
    };
    use crate::backend::MAX_PARAM_BYTES;

    /// The launcher's packing before this change: one heap vector of words per parameter.
    fn old_param_words(params: &[ParamValue]) -> Vec<Vec<u64>> {
        params
            .iter()
            .map(|p| {
                let bytes: Vec<u8> = match p {
                    ParamValue::U32(v) => v.to_le_bytes().to_vec(),
                    ParamValue::U64(v) => v.to_le_bytes().to_vec(),
                    ParamValue::F32(v) => v.to_le_bytes().to_vec(),
                    ParamValue::F64(v) => v.to_le_bytes().to_vec(),
                    ParamValue::Bytes { bytes, .. } => bytes.to_vec(),
                };
                let mut w = vec![0u64; bytes.len().div_ceil(8).max(1)];
                for (k, b) in bytes.iter().enumerate() {
                    w[k / 8] |= (*b as u64) << (8 * (k % 8));
                }
                w
            })
            .collect()
    }

    fn launches() -> Vec<Vec<ParamValue>> {
        let one = TensorEntry {
            param: 0x7F00_0000_1000,
            grad: 0x7F00_0000_2002,
            state0: 0x7F00_0000_3000,
            state1: 0x7F00_0000_4000,
            n: 40_003,
            sr_index_offset: u64::MAX,
            clip_coef: 0,
            chunk_start: 0,
        };
        let adam = AdamHyper::from_config(&adamant_core::AdamConfig::adamw());
        let update = vec![
            ParamValue::U64(0),
            ParamValue::from_struct(8, one.to_bytes()),
            ParamValue::U32(1),
            ParamValue::U64(3),
            ParamValue::U64(0x10),
            ParamValue::U64(0x18),
            ParamValue::U64(0),
            ParamValue::U64(0x20),
            ParamValue::from_struct(8, adam.to_bytes()),
        ];
        let mini = vec![
            ParamValue::U64(0xB000),
            ParamValue::from_struct(
                8,
                MiniSegment {
                    block_len: 4096,
                    n: 8192,
                    ..MiniSegment::default()
                }
                .to_bytes(),
            ),
            ParamValue::U32(2),
            ParamValue::U64(9),
            ParamValue::U64(0x10),
            ParamValue::U64(0x18),
            ParamValue::U64(0x28),
            ParamValue::U64(0x20),
            ParamValue::from_struct(
                8,
                MiniHyper::from_config(&adamant_core::AdamMiniConfig::default()).to_bytes(),
            ),
        ];
        let quant = vec![ParamValue::from_struct(
            8,
            QuantArgs {
                src: 0x1002,
                err_beta: 0.8,
                divisor: 3.0,
                ..QuantArgs::default()
            }
            .to_bytes(),
        )];
        let clip = vec![
            ParamValue::from_struct(
                8,
                ClipBuffers {
                    sums: 1,
                    record: 2,
                    ..ClipBuffers::default()
                }
                .to_bytes(),
            ),
            ParamValue::U64(0x4000),
            ParamValue::from_struct(
                8,
                ClipHyper::global_norm(&adamant_core::clip::GlobalNormClip::new(1.0).unwrap())
                    .to_bytes(),
            ),
        ];
        // Scalars of every kind, with their sign bits and NaN payloads, and odd struct sizes
        // (padded to whole words; an empty struct still takes one word).
        let scalars = vec![
            ParamValue::U32(0xFFFF_FFFF),
            ParamValue::F32(f32::from_bits(0xFFC0_0001)),
            ParamValue::F64(-0.0),
            ParamValue::U64(0x0123_4567_89AB_CDEF),
            ParamValue::from_struct(4, [0xEEu8; 13]),
            ParamValue::from_struct(1, []),
            ParamValue::from_slice(4, &[7u8; 200]).unwrap(),
        ];
        vec![update, mini, quant, clip, scalars, vec![]]
    }

    #[test]
    fn stack_packing_equals_the_previous_heap_packing() {
        for params in launches() {
            let old = old_param_words(&params);
            let mut packed = PackedParams::pack(&params).unwrap();
            assert_eq!(packed.len(), old.len());
            assert_eq!(packed.is_empty(), old.is_empty());
            for (i, w) in old.iter().enumerate() {
                assert_eq!(packed.words(i), &w[..], "parameter {i} of {params:?}");
            }
            // The pointer array addresses each parameter's words inside the packing, in order,
            // 8-byte aligned; unused slots are null.
            let ptrs = packed.pointers();
            for (i, p) in ptrs.iter().enumerate() {
                if i < packed.len() {
                    let want = packed.words(i).as_ptr() as *mut c_void;
                    assert_eq!(*p, want, "pointer {i}");
                    assert_eq!(p.addr() % 8, 0);
                } else {
                    assert!(p.is_null());
                }
            }
        }
    }

    #[test]
    fn packing_refuses_what_its_arrays_cannot_hold() {
        let many = vec![ParamValue::U32(0); MAX_PARAMS + 1];
        let e = PackedParams::pack(&many).unwrap_err();
        assert!(matches!(e, BackendError::Failed(ref m) if m.contains("parameters")));
        let wide = ParamValue::from_struct(8, [0u8; MAX_PARAM_BYTES]);
        let n = MAX_PARAM_WORDS / (MAX_PARAM_BYTES / 8);
        assert!(PackedParams::pack(&vec![wide.clone(); n]).is_ok());
        let e = PackedParams::pack(&vec![wide; n + 1]).unwrap_err();
        assert!(matches!(e, BackendError::Failed(ref m) if m.contains("bytes")));
    }
}
