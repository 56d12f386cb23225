//! One launch interface for every executor of adamant's PTX: the real GPU launcher (cudarc,
//! on a borrowed stream) and the PTX simulator (`cuda/ptx-sim`). Test bodies and
//! `adamant verify` are written once against [`Backend`] and run on whichever is present.
//!
//! Device memory is addressed by plain 64-bit device pointers, as `CUdeviceptr` and as the
//! kernels' `.u64` parameters see them.
//!
//! A [`ParamValue`] holds its bytes inline (by-value structs in a [`ParamBytes`] of fixed
//! capacity), so building a launch's parameters never touches the heap.

use core::fmt;

/// Capacity of a by-value struct parameter, in bytes. The largest struct adamant's kernels take
/// is `MiniSegment` (112 bytes; `QuantArgs` 104, `TensorEntry` and `ClipBuffers` 64); the
/// simulator's own tests pass tables of up to 192 bytes.
pub const MAX_PARAM_BYTES: usize = 256;

/// The bytes of a by-value struct parameter, stored inline (no heap).
pub type ParamBytes = heapless::Vec<u8, MAX_PARAM_BYTES>;

/// A kernel parameter, laid out as PTX `.param` space expects it.
// The struct bytes are inline on purpose: boxing them would allocate on every launch.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// `.u32` / `.s32` / `.b32`.
    U32(u32),
    /// `.u64` / `.s64` / `.b64`, also device pointers.
    U64(u64),
    /// `.f32`.
    F32(f32),
    /// `.f64`.
    F64(f64),
    /// A by-value struct (`.param .align A .b8 name[N]`): its bytes, little-endian,
    /// laid out as the C struct in the `.cu` source.
    Bytes {
        /// Alignment the kernel declares for the parameter.
        align: u32,
        /// The struct's bytes (at most [`MAX_PARAM_BYTES`]).
        bytes: ParamBytes,
    },
}

impl ParamValue {
    /// A by-value struct of `M <= MAX_PARAM_BYTES` bytes (checked when compiling).
    pub const fn from_struct<const M: usize>(align: u32, bytes: [u8; M]) -> ParamValue {
        ParamValue::Bytes {
            align,
            bytes: ParamBytes::from_array(bytes),
        }
    }

    /// A by-value struct from a slice; [`BackendError::Failed`] when it exceeds
    /// [`MAX_PARAM_BYTES`] (the error message is the only allocation).
    pub fn from_slice(align: u32, bytes: &[u8]) -> Result<ParamValue, BackendError> {
        match ParamBytes::from_slice(bytes) {
            Ok(bytes) => Ok(ParamValue::Bytes { align, bytes }),
            Err(_) => Err(BackendError::Failed(format!(
                "a by-value kernel parameter of {} bytes exceeds {MAX_PARAM_BYTES}",
                bytes.len()
            ))),
        }
    }
}

/// Grid and block shape of a launch, and dynamic shared memory bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchShape {
    /// Blocks per grid (x, y, z).
    pub grid: (u32, u32, u32),
    /// Threads per block (x, y, z).
    pub block: (u32, u32, u32),
    /// Dynamic shared memory per block, in bytes.
    pub shared_bytes: u32,
}

/// A failure of a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// No CUDA driver library could be loaded, or no device is present.
    NoDevice(String),
    /// The driver (or simulator) refused the call; the message says why.
    Failed(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::NoDevice(m) => write!(f, "no CUDA device: {m}"),
            BackendError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// An executor of adamant's kernels. The step path of a real trainer uses only
/// [`Backend::launch`]; `alloc`, `upload` and `download` exist for tests and `verify`.
pub trait Backend {
    /// A short name for reports (`"ptx-sim"`, `"cuda:0 NVIDIA H100"`).
    fn name(&self) -> String;
    /// Allocate `bytes` of device memory (zeroed), aligned to at least 256 bytes.
    fn alloc(&mut self, bytes: usize) -> Result<u64, BackendError>;
    /// Copy host bytes to device memory at `dst`.
    fn upload(&mut self, dst: u64, src: &[u8]) -> Result<(), BackendError>;
    /// Copy device memory at `src` to the host.
    fn download(&mut self, src: u64, dst: &mut [u8]) -> Result<(), BackendError>;
    /// Launch kernel `entry` of PTX module `module` (the file stem in `cuda/ptx/`, e.g.
    /// `"adam"`) and wait for it to finish (tests only; the trainer path never waits).
    fn launch(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError>;
    /// Load PTX text as module `name`, replacing the embedded module of that name for this
    /// backend's later launches (`adamant verify --ptx-dir` audits a user's own PTX build this
    /// way). A backend that cannot take PTX text returns [`BackendError::Failed`].
    fn load_module(&mut self, name: &str, ptx: &str) -> Result<(), BackendError> {
        let _ = ptx;
        Err(BackendError::Failed(format!(
            "{} cannot load PTX text (module {name})",
            self.name()
        )))
    }
    /// Free every allocation made so far (addresses returned by [`Backend::alloc`] become
    /// invalid); loaded modules stay. Lets a long test run reuse one device.
    fn free_all(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}
