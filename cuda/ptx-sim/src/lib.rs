//! # adamant-ptx-sim
//!
//! Executes the PTX that nvcc 11.8 emits for adamant's kernels on the CPU, bit for bit, so
//! the promise "CPU and GPU updates are bit-identical" can be tested on machines without a GPU.
//! It runs the committed PTX exactly as shipped and implements [`adamant_cuda::backend::Backend`],
//! so one test body drives core, the simulator and (when present) a real GPU.
//!
//! What it accepts is an allowlist (see [`SUPPORTED_OPCODES`]). Everything else is refused with
//! an error naming the PTX line: f32/f64 arithmetic without `.rn` (ptxas may contract or
//! approximate it), `.ftz`, `.approx`, `.full`, float atomics, `.local`, calls, unknown opcodes,
//! divergent or partial-warp shuffles. Nothing is silently approximated.
//!
//! ## Use
//! ```
//! use adamant_cuda::backend::{Backend, LaunchShape, ParamValue};
//! use ptx_sim::Simulator;
//!
//! let ptx = "
//! .version 7.8
//! .target sm_70
//! .address_size 64
//! .visible .entry scale(.param .u64 x, .param .f32 a)
//! {
//!     .reg .b32 %r<2>;
//!     .reg .f32 %f<3>;
//!     .reg .b64 %rd<4>;
//!     ld.param.u64 %rd1, [x];
//!     ld.param.f32 %f1, [a];
//!     cvta.to.global.u64 %rd2, %rd1;
//!     mov.u32 %r1, %tid.x;
//!     mul.wide.u32 %rd3, %r1, 4;
//!     add.s64 %rd2, %rd2, %rd3;
//!     ld.global.f32 %f2, [%rd2];
//!     mul.rn.f32 %f2, %f2, %f1;
//!     st.global.f32 [%rd2], %f2;
//!     ret;
//! }";
//! let mut sim = Simulator::new();
//! sim.register_module("demo", ptx).unwrap();
//! let x = sim.alloc(4 * 32).unwrap();
//! let data: Vec<u8> = (0..32).flat_map(|i| (i as f32).to_le_bytes()).collect();
//! sim.upload(x, &data).unwrap();
//! let shape = LaunchShape { grid: (1, 1, 1), block: (32, 1, 1), shared_bytes: 0 };
//! sim.launch("demo", "scale", shape, &[ParamValue::U64(x), ParamValue::F32(0.5)]).unwrap();
//! let mut out = vec![0u8; 4 * 32];
//! sim.download(x, &mut out).unwrap();
//! assert_eq!(f32::from_le_bytes(out[12..16].try_into().unwrap()), 1.5);
//!
//! // Without `.rn` the multiply could be contracted by ptxas: refused, naming the line.
//! let err = sim.register_module("bad", &ptx.replace("mul.rn.f32", "mul.f32")).unwrap_err();
//! let line = ptx.lines().position(|l| l.contains("mul.rn.f32")).unwrap() + 1;
//! assert_eq!(err.line as usize, line);
//! ```
//!
//! ## Numeric decisions
//! - `add sub mul div sqrt rcp fma` `.rn` f32/f64 are IEEE-754 correctly rounded, which Rust's
//!   operators and `mul_add` are on x86-64 and aarch64 (SSE/NEON, no FTZ/DAZ).
//! - f32 NaN results are the canonical `0x7FFFFFFF` whatever the inputs (NVIDIA hardware
//!   behaviour, see cuda-toolchain.md 3.4). f64 NaN results are taken to be
//!   `0x7FFFFFFFFFFFFFFF` by analogy: **unconfirmed on hardware**, so a contract must not depend
//!   on the bits of an f64 NaN (adamant's f64 per-step scalars never produce one from valid
//!   hyper-parameters).
//! - `min`/`max` (f32, f64): a NaN operand loses to a number (PTX ISA), two NaNs give the
//!   canonical NaN, and `-0.0 < +0.0` (IEEE 754-2019 minimumNumber/maximumNumber; the sign-of-zero
//!   rule is an assumption to confirm on hardware, so kernels should not depend on it).
//! - `cvt` f32 -> bf16/f16 `.rn`: round to nearest even, NaN -> `0x7FFF` (cuda_bf16.h's
//!   sm_70 emulation; assumed for `F2FP` on sm_80+). Widening conversions (f16/bf16 -> f32,
//!   f32 -> f64) are exact, NaN -> the canonical NaN of the destination (assumption).
//!   Float -> integer `.rni/.rzi/.rmi/.rpi` round, then saturate to the destination range;
//!   NaN -> 0 (PTX ISA). `cvt.sat.f32.f32` clamps to [0, 1] with NaN -> +0.0 and keeps -0.0.
//! - `abs`/`neg` on floats change only the sign bit.
//! - Shift counts are unsigned and clamp: `shl`/`shr.u` by >= width give 0, `shr.s` gives the
//!   sign fill.
//! - `shfl.sync` follows the PTX ISA pseudo-code (`c` = clamp | segmask << 8); the source lane
//!   must take part, the member mask must name exactly the lanes executing the instruction.
//! - Integer division by zero is refused at run time (hardware result is unspecified).
//!
//! ## Memory checks
//! Every global access must lie inside one allocation (allocations are separated by unallocated
//! gaps) and be naturally aligned (16 bytes for `.v4.f32`); shared accesses must lie inside the
//! block's static + dynamic shared memory. Bytes read through `ld.global.nc` (a
//! `const __restrict__` input) and written in the same launch are refused: the non-coherent
//! cache makes that undefined on hardware while an interpreter would silently "work".
//! A failed launch leaves device memory as it was.

#![deny(missing_docs)]

pub mod exec;
pub mod ir;
pub mod mutate;
pub mod num;
pub mod parse;

use adamant_cuda::backend::{Backend, BackendError, LaunchShape, ParamValue};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub use parse::{parse_module, Module, ParseOptions};

/// The opcodes (with their accepted variants) the simulator executes.
pub const SUPPORTED_OPCODES: &[&str] = &[
    "add/sub/mul/div.rn.f32, sqrt.rn.f32, rcp.rn.f32, fma.rn.f32, min/max.f32, abs/neg.f32",
    "add/sub/mul/div.rn.f64, sqrt.rn.f64, rcp.rn.f64, fma.rn.f64, min/max.f64, abs/neg.f64",
    "add/sub/mul.lo/mul.hi/div/rem/min/max .{s,u}{16,32,64}; mul.wide/mad.wide .{s,u}{16,32}; mad.lo/mad.hi",
    "and/or/xor/not/shl/shr .b{16,32,64} (shr.s, shr.u), and/or/xor/not.pred, cnot, abs/neg.s*, popc, clz, brev, bfe, bfi, prmt (default mode)",
    "setp.{eq,ne,lt,le,gt,ge,lo,ls,hi,hs}.{int,f32,f64}, setp.{equ,neu,ltu,leu,gtu,geu,num,nan}.{f32,f64}, selp",
    "mov (scalar, special registers %tid %ntid %ctaid %nctaid %laneid %warpid %nwarpid, shared symbol address, pack/unpack {a,b})",
    "cvt int<->int, int->float .rn, float->int .rni/.rzi/.rmi/.rpi, f32<->f64, f16/bf16<->f32 (.rn narrowing), .rni/.rzi/.rmi/.rpi/.sat same-type, cvta.to.global",
    "ld/st .global/.shared (.v2/.v4), ld.global.nc, ld.param (scalars and by-value .b8 structs)",
    "bra (incl. .uni), ret, exit, bar.sync 0, barrier.sync 0, shfl.sync.{up,down,bfly,idx}.b32 (d|p), vote.sync.{ballot.b32,all,any,uni}",
];

/// A refusal or run-time fault, naming the PTX line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimError {
    /// 1-based line number in the PTX text (0 if not tied to a line).
    pub line: u32,
    /// The statement's text.
    pub text: String,
    /// What went wrong.
    pub msg: String,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PTX line {}: `{}`: {}", self.line, self.text, self.msg)
    }
}

impl std::error::Error for SimError {}

/// The simulator: registered PTX modules plus a device memory arena.
#[derive(Default)]
pub struct Simulator {
    modules: HashMap<String, Arc<Module>>,
    global: exec::Global,
    opts: ParseOptions,
    instructions: u64,
    regs: Vec<u64>,
    shared: Vec<u8>,
}

impl Simulator {
    /// A simulator that refuses everything outside the allowlist (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// A simulator with explicit parse options (e.g. permissive `.ftz` for negative controls).
    pub fn with_options(opts: ParseOptions) -> Self {
        Simulator {
            opts,
            ..Self::default()
        }
    }

    /// A simulator with the same registered modules and options but empty device memory
    /// (modules are shared, not re-parsed: cheap enough to call per test case).
    pub fn fresh(&self) -> Simulator {
        Simulator {
            modules: self.modules.clone(),
            opts: self.opts,
            ..Simulator::default()
        }
    }

    /// Names of the registered modules.
    pub fn modules(&self) -> Vec<String> {
        let mut v: Vec<String> = self.modules.keys().cloned().collect();
        v.sort();
        v
    }

    /// Registers several modules (e.g. the embedded set of `adamant-cuda`: file stem, PTX text).
    pub fn register_modules<'a>(
        &mut self,
        modules: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), SimError> {
        for (name, ptx) in modules {
            self.register_module(name, ptx)?;
        }
        Ok(())
    }

    /// Parses `ptx` and registers it as module `name` (replacing an earlier one).
    pub fn register_module(&mut self, name: &str, ptx: &str) -> Result<(), SimError> {
        let m = parse_module(ptx, self.opts)?;
        self.modules.insert(name.to_string(), Arc::new(m));
        Ok(())
    }

    /// Reads a `.ptx` file and registers it under its file stem.
    pub fn register_module_file(&mut self, path: &std::path::Path) -> Result<String, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError {
            line: 0,
            text: path.display().to_string(),
            msg: e.to_string(),
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.register_module(&name, &text)?;
        Ok(name)
    }

    /// Instructions executed since creation (per thread; a collective counts once per lane).
    pub fn instructions_executed(&self) -> u64 {
        self.instructions
    }

    /// Launches a kernel and reports refusals/faults as a [`SimError`] with the PTX line.
    /// On error, device memory is left as it was before the launch.
    pub fn launch_sim(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), SimError> {
        let e = |msg: String| SimError {
            line: 0,
            text: format!("{module}::{entry}"),
            msg,
        };
        let m = self
            .modules
            .get(module)
            .ok_or_else(|| e(format!("module `{module}` is not registered")))?
            .clone();
        let k = m
            .kernel(entry)
            .ok_or_else(|| e(format!("no entry `{entry}` in module `{module}`")))?;
        let buf = param_buffer(k, params).map_err(e)?;
        let (g, b) = (shape.grid, shape.block);
        let threads = b.0 as u64 * b.1 as u64 * b.2 as u64;
        if threads == 0
            || threads > 1024
            || g.0 == 0
            || g.1 == 0
            || g.2 == 0
            || g.1 > 65535
            || g.2 > 65535
        {
            return Err(e(format!("invalid launch shape {shape:?}")));
        }
        if let Some((x, y, z)) = k.maxntid {
            if threads > x as u64 * y as u64 * z as u64 {
                return Err(e(format!(
                    "block {b:?} exceeds the kernel's .maxntid {x}, {y}, {z}"
                )));
            }
        }
        if let Some(r) = k.reqntid {
            if r != b {
                return Err(e(format!(
                    "block {b:?} differs from the kernel's .reqntid {r:?}"
                )));
            }
        }
        let shared_bytes = k.shared_bytes as u64 + shape.shared_bytes as u64;
        if shared_bytes > 48 * 1024 {
            return Err(e(format!(
                "{shared_bytes} bytes of shared memory exceed 48 KiB"
            )));
        }
        let ctx = exec::LaunchCtx {
            k,
            grid: g,
            block: b,
            params: &buf,
            shared_bytes: shared_bytes as u32,
        };
        let backup = self.global.snapshot();
        self.global.begin_launch();
        let mut regs = std::mem::take(&mut self.regs);
        let mut shared = std::mem::take(&mut self.shared);
        let mut result = Ok(());
        'grid: for z in 0..g.2 {
            for y in 0..g.1 {
                for x in 0..g.0 {
                    match exec::run_block(&ctx, &mut self.global, (x, y, z), &mut regs, &mut shared)
                    {
                        Ok(n) => self.instructions += n,
                        Err(err) => {
                            result = Err(err);
                            break 'grid;
                        }
                    }
                }
            }
        }
        self.regs = regs;
        self.shared = shared;
        if result.is_err() {
            self.global.restore(backup);
        }
        result
    }
}

/// Lays out parameters in `.param` space: each at its declared alignment, checked against
/// the kernel's declaration (type class and size; by-value structs by size and alignment).
fn param_buffer(k: &ir::Kernel, params: &[ParamValue]) -> Result<Vec<u8>, String> {
    if params.len() != k.params.len() {
        return Err(format!(
            "kernel `{}` takes {} parameters, {} given",
            k.name,
            k.params.len(),
            params.len()
        ));
    }
    let mut buf = vec![0u8; k.param_bytes as usize];
    for (i, (decl, v)) in k.params.iter().zip(params).enumerate() {
        let bytes: Vec<u8> = match (decl.ty, v) {
            (Some(ir::Ty::Int(32, _)), ParamValue::U32(x)) => x.to_le_bytes().to_vec(),
            (Some(ir::Ty::Int(64, _)), ParamValue::U64(x)) => x.to_le_bytes().to_vec(),
            (Some(ir::Ty::F32), ParamValue::F32(x)) => x.to_bits().to_le_bytes().to_vec(),
            (Some(ir::Ty::F64), ParamValue::F64(x)) => x.to_bits().to_le_bytes().to_vec(),
            (None, ParamValue::Bytes { align, bytes })
                if bytes.len() == decl.size as usize && *align == decl.align =>
            {
                bytes.to_vec()
            }
            _ => {
                return Err(format!(
                    "parameter {i} (`{}`, {} bytes, align {}) does not accept {v:?}",
                    decl.name, decl.size, decl.align
                ))
            }
        };
        buf[decl.offset as usize..decl.offset as usize + bytes.len()].copy_from_slice(&bytes);
    }
    Ok(buf)
}

impl Backend for Simulator {
    fn name(&self) -> String {
        "ptx-sim".to_string()
    }

    fn alloc(&mut self, bytes: usize) -> Result<u64, BackendError> {
        Ok(self.global.alloc(bytes))
    }

    fn upload(&mut self, dst: u64, src: &[u8]) -> Result<(), BackendError> {
        self.global.write(dst, src).ok_or_else(|| {
            BackendError::Failed(format!(
                "upload of {} bytes to {dst:#x} is out of bounds",
                src.len()
            ))
        })
    }

    fn download(&mut self, src: u64, dst: &mut [u8]) -> Result<(), BackendError> {
        let n = dst.len();
        self.global.read(src, dst).ok_or_else(|| {
            BackendError::Failed(format!(
                "download of {n} bytes from {src:#x} is out of bounds"
            ))
        })
    }

    fn launch(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError> {
        self.launch_sim(module, entry, shape, params)
            .map_err(|e| BackendError::Failed(e.to_string()))
    }

    fn load_module(&mut self, name: &str, ptx: &str) -> Result<(), BackendError> {
        self.register_module(name, ptx)
            .map_err(|e| BackendError::Failed(format!("module {name} refused: {e}")))
    }

    fn free_all(&mut self) -> Result<(), BackendError> {
        self.global = exec::Global::default();
        Ok(())
    }
}
