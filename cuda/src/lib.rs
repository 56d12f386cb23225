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
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod args;
pub mod backend;
pub mod capi;
pub mod conformance;
pub mod driver;
pub mod ops;
pub mod ptx;
