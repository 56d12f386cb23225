//! # adamant-cuda
//!
//! CUDA kernels mirroring `adamant-core` line for line (`kernels/*.cu`), compiled offline to
//! PTX (`ptx/*.ptx`, committed and embedded), and a launcher on the caller's stream.
//!
//! - [`ptx`]: the embedded modules; [`args`]: kernel argument layouts and entry names.
//! - [`ops`]: a step of each rule (Adam, SGD, Lion, Adam-mini), reductions, clip coefficients
//!   (global norm, AdaGC) and their commit, the non-finite scan and the step commit, as
//!   launches generic over [`ops::Launcher`] (every [`backend::Backend`] is one).
//! - [`driver`]: the real GPU (cudarc, driver loaded at run time): [`driver::CudaBackend`] for
//!   tests, [`driver::StreamLauncher`] for the step path on a borrowed stream.
//! - [`capi`]: C-shaped entry points for the `adamant_cuda_*` ABI.
//! - [`conformance`]: test bodies comparing any backend with core, bit for bit.
//!
//! ## Host allocation on the step path
//!
//! Building and queueing a launch allocates nothing on the host: kernel entry names are
//! `&'static str`s picked by exhaustive matches ([`args`]), hyper-parameters and argument
//! structs are fixed-size byte arrays (`to_bytes() -> [u8; SIZE]`), by-value parameters hold
//! them inline ([`backend::ParamBytes`], at most [`backend::MAX_PARAM_BYTES`] bytes), and the
//! driver packs a launch's parameters into stack arrays ([`driver::PackedParams`]) and finds
//! its function in a per-context cache without building a key. Two things do allocate:
//!
//! - initialization: the first launch of a module in a CUDA context loads the module and
//!   resolves all its entries (once per module and context), and `cuInit` once per process;
//! - errors: an [`ops::OpError`] or [`backend::BackendError`] carries a formatted message.
//!
//! `tests/no_alloc.rs` checks this with a counting allocator over every `ops` launch builder.
//! The test-only executors ([`driver::CudaBackend`], the PTX simulator) allocate freely.
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod args;
pub mod backend;
pub mod capi;
pub mod conformance;
pub mod driver;
pub mod ops;
pub mod ptx;
