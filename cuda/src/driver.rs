//! The real GPU: the CUDA driver loaded at run time (cudarc, `dynamic-loading`), kernels
//! launched on a borrowed `CUstream` (PyTorch's or JAX's), modules loaded once per context.
//!
//! On a machine without `libcuda` or without a device every entry returns
//! [`BackendError::NoDevice`]; nothing here panics (the driver calls are additionally guarded
//! against panics of the loader).

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

/// Loaded modules and resolved functions, per context (keyed by the context handle).
struct Loaded {
    modules: HashMap<&'static str, usize>,
    functions: HashMap<(String, String), usize>,
}

fn registry() -> &'static Mutex<HashMap<usize, Loaded>> {
    static R: OnceLock<Mutex<HashMap<usize, Loaded>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The function `entry` of module `module` in context `ctx` (current on this thread),
/// loading the module on first use in that context.
fn function(
    ctx: sys::CUcontext,
    module: &str,
    entry: &str,
) -> Result<sys::CUfunction, BackendError> {
    let mut reg = registry()
        .lock()
        .map_err(|_| BackendError::Failed("module registry poisoned".into()))?;
    let loaded = reg.entry(ctx as usize).or_insert_with(|| Loaded {
        modules: HashMap::new(),
        functions: HashMap::new(),
    });
    let key = (module.to_string(), entry.to_string());
    if let Some(&f) = loaded.functions.get(&key) {
        return Ok(f as sys::CUfunction);
    }
    let m = ptx::module(module)
        .ok_or_else(|| BackendError::Failed(format!("no PTX module named {module}")))?;
    let handle = match loaded.modules.get(m.name) {
        Some(&h) => h as sys::CUmodule,
        None => {
            // SAFETY: `ptx_nul` is a NUL-terminated PTX image that lives for the program.
            let h = unsafe { result::module::load_data(m.ptx_nul.as_ptr() as *const c_void) }
                .map_err(|e| failed(&format!("cuModuleLoadData({module})"), e))?;
            loaded.modules.insert(m.name, h as usize);
            h
        }
    };
    let name = CString::new(entry).map_err(|_| BackendError::Failed("bad entry name".into()))?;
    // SAFETY: `handle` is a loaded module of the current context, never unloaded.
    let f = unsafe { result::module::get_function(handle, name) }
        .map_err(|e| failed(&format!("cuModuleGetFunction({entry})"), e))?;
    loaded.functions.insert(key, f as usize);
    Ok(f)
}

/// Parameter storage for `cuLaunchKernel`: each value in its own 8-byte-aligned words.
fn param_words(params: &[ParamValue]) -> Vec<Vec<u64>> {
    params
        .iter()
        .map(|p| {
            let bytes: Vec<u8> = match p {
                ParamValue::U32(v) => v.to_le_bytes().to_vec(),
                ParamValue::U64(v) => v.to_le_bytes().to_vec(),
                ParamValue::F32(v) => v.to_le_bytes().to_vec(),
                ParamValue::F64(v) => v.to_le_bytes().to_vec(),
                ParamValue::Bytes { bytes, .. } => bytes.clone(),
            };
            let mut w = vec![0u64; bytes.len().div_ceil(8).max(1)];
            for (k, b) in bytes.iter().enumerate() {
                w[k / 8] |= (*b as u64) << (8 * (k % 8));
            }
            w
        })
        .collect()
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
    let mut words = param_words(params);
    let mut ptrs: Vec<*mut c_void> = words
        .iter_mut()
        .map(|w| w.as_mut_ptr() as *mut c_void)
        .collect();
    // SAFETY: `f` is a function of the current context; `ptrs` point to one value per kernel parameter, laid
    // out as the kernel declares it (args.rs), alive until cuLaunchKernel returns (the driver
    // copies them); the stream belongs to `ctx`.
    unsafe {
        result::launch_kernel(
            f,
            shape.grid,
            shape.block,
            shape.shared_bytes,
            stream,
            &mut ptrs,
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
        guarded("alloc", || {
            self.make_current()?;
            // SAFETY: plain allocation in the current context; cuMemAlloc aligns to >= 256.
            let a = unsafe { result::malloc_sync(bytes.max(1)) }
                .map_err(|e| failed("cuMemAlloc", e))?;
            self.allocations.push(a);
            // SAFETY: `a` holds at least `bytes` bytes.
            unsafe { result::memset_d8_sync(a, 0, bytes.max(1)) }
                .map_err(|e| failed("cuMemsetD8", e))?;
            Ok(a)
        })
    }

    fn upload(&mut self, dst: u64, src: &[u8]) -> Result<(), BackendError> {
        guarded("upload", || {
            self.make_current()?;
            // SAFETY: the caller passes an address of at least `src.len()` bytes it allocated.
            unsafe { result::memcpy_htod_sync(dst, src) }.map_err(|e| failed("cuMemcpyHtoD", e))
        })
    }

    fn download(&mut self, src: u64, dst: &mut [u8]) -> Result<(), BackendError> {
        guarded("download", || {
            self.make_current()?;
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
        guarded("launch", || {
            self.make_current()?;
            if let Some(&m) = self.custom.get(module) {
                let name = CString::new(entry)
                    .map_err(|_| BackendError::Failed("bad entry name".into()))?;
                // SAFETY: `m` is a module this backend loaded in its context, not unloaded.
                let f = unsafe { result::module::get_function(m as sys::CUmodule, name) }
                    .map_err(|e| failed(&format!("cuModuleGetFunction({entry})"), e))?;
                launch_function(f, self.stream, entry, shape, params)?;
            } else {
                launch_raw(self.ctx, self.stream, module, entry, shape, params)?;
            }
            // SAFETY: our own live stream.
            unsafe { result::stream::synchronize(self.stream) }
                .map_err(|e| failed(&format!("kernel {entry}"), e))
        })
    }

    fn load_module(&mut self, name: &str, ptx: &str) -> Result<(), BackendError> {
        let text = CString::new(ptx)
            .map_err(|_| BackendError::Failed(format!("module {name}: NUL byte in PTX")))?;
        guarded("load module", || {
            self.make_current()?;
            // SAFETY: `text` is a NUL-terminated PTX image alive for the call (the driver
            // copies it).
            let h = unsafe { result::module::load_data(text.as_ptr() as *const c_void) }
                .map_err(|e| failed(&format!("cuModuleLoadData({name})"), e))?;
            if let Some(old) = self.custom.insert(name.to_string(), h as usize) {
                // SAFETY: an earlier module of this backend, no launch of it is pending
                // (launch waits).
                let _ = unsafe { result::module::unload(old as sys::CUmodule) };
            }
            Ok(())
        })
    }

    fn free_all(&mut self) -> Result<(), BackendError> {
        guarded("free", || {
            self.make_current()?;
            for a in self.allocations.drain(..) {
                // SAFETY: allocated by this backend with cuMemAlloc, not freed before; no
                // launch is pending (launch waits).
                unsafe { result::free_sync(a) }.map_err(|e| failed("cuMemFree", e))?;
            }
            Ok(())
        })
    }
}
