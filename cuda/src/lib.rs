//! # adamant-cuda
//!
//! CUDA kernels mirroring `adamant-core` line for line (`kernels/*.cu`), compiled offline to
//! PTX (`ptx/*.ptx`, committed and embedded), and a launcher on the caller's stream.
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod backend;
