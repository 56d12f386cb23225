//! Kernel argument structures, byte for byte as the `.cu` sources declare them. The PTX
//! simulator's verification matrix and the launcher both build launches from these.
//!
//! Every update kernel (`adamant_{adam,sgd,lion}_<param>_<grad>_<state>`) takes, in order:
//!
//! | # | PTX param | meaning |
//! |---|---|---|
//! | 0 | `.u64` | device address of a [`TensorEntry`] table, or 0 for one tensor |
//! | 1 | `.align 8 .b8 [64]` | the [`TensorEntry`] used when #0 is 0 (ignored otherwise) |
//! | 2 | `.u32` | number of table entries |
//! | 3 | `.u64` | total chunks of the launch (see [`TensorEntry::chunk_start`]) |
//! | 4 | `.u64` | device address of the f32 learning rate |
//! | 5 | `.u64` | device address of the u64 step count (steps already applied; t = step+1) |
//! | 6 | `.u64` | device address of the f32 loss scale (gradients are divided by it), 0 = none |
//! | 7 | `.u64` | device address of the 32-bit `found_inf` flag, 0 = none; a set flag skips |
//! | 8 | `.align 8 .b8 [48 / 40]` | the rule's hyper-parameters ([`AdamHyper`], [`SgdHyper`], [`LionHyper`]) |
//!
//! The reduction kernels (`adamant_reduce_{sum,sumsq,maxabs}_<dtype>`) take
//! `(u64 table, ReduceEntry one, u32 count, u64 total_tiles)` and need exactly 256 threads per
//! block. `adamant_nonfinite_<grad>` takes `(u64 table, TensorEntry one, u32 count,
//! u64 total_chunks, u64 found_inf)`; `adamant_step_commit` takes `(u64 step, u64 found_inf)`.
//!
//! Adam-mini (`adamant_mini_*`, module `adam_mini`) takes the update kernels' nine parameters
//! with a [`MiniSegment`] (112 bytes) in #1 and [`MiniHyper`] in #8; [`MiniPlan`] builds the
//! tables. Clipping (module `clip`): `adamant_clip_sumsq_<grad>(u64 table, ReduceEntry one,
//! u32 count, u64 total_tiles, u64 grad_scale)`, `adamant_clip_tensor_sums(u64 table,
//! ReduceEntry one, u32 count, u64 sums)`, `adamant_clip_coefs(ClipBuffers, ClipHyper)`,
//! `adamant_clip_commit(ClipBuffers, u64 found_inf, ClipHyper)`.
//!
//! Chunk mapping of a multi-tensor launch: tensor `k` owns launch chunks
//! `chunk_start[k] .. chunk_start[k] + ceil(n[k] / CHUNK)`; block `b` takes chunks `b`,
//! `b + grid`, ...; inside a chunk thread `x` takes 8-element groups `x, x + 256, ...` with
//! 128-bit accesses when all the tensor's buffers are 16-byte aligned, single elements otherwise
//! and for the tail.

use adamant_core::Dtype;

/// Elements per launch chunk.
pub const CHUNK: u64 = 16384;
/// Values per reduction tile (one 256-thread block), as `adamant_core::reduce::TILE`.
pub const TILE: u64 = adamant_core::reduce::TILE as u64;
/// Threads per block of every launch.
pub const BLOCK: u32 = 256;
/// Largest grid the launcher uses; blocks stride over further chunks.
pub const MAX_GRID: u64 = 4096;
/// The word `adamant_nonfinite_*` stores into `found_inf` (f32 1.0, as PyTorch's flag).
pub const FOUND_INF_SET: u32 = 0x3F80_0000;

/// One tensor of an update launch (64 bytes, align 8). Offsets in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TensorEntry {
    /// 0: device address of the parameters.
    pub param: u64,
    /// 8: device address of the gradients (read only).
    pub grad: u64,
    /// 16: `exp_avg` (Adam, Lion) or `momentum_buffer` (SGD); 0 when unused.
    pub state0: u64,
    /// 24: `exp_avg_sq` (Adam); 0 when unused.
    pub state1: u64,
    /// 32: number of elements.
    pub n: u64,
    /// 40: global index of element 0 for stochastic rounding (a shard passes its offset).
    pub sr_index_offset: u64,
    /// 48: device address of this tensor's f32 clip coefficient, 0 = no clipping.
    pub clip_coef: u64,
    /// 56: first launch chunk of this tensor (sum of `ceil(n / CHUNK)` over earlier entries).
    pub chunk_start: u64,
}

impl TensorEntry {
    /// Size in bytes.
    pub const SIZE: usize = 64;

    /// Little-endian bytes, as the kernel reads them.
    pub fn to_bytes(&self) -> [u8; 64] {
        words_to_bytes([
            self.param,
            self.grad,
            self.state0,
            self.state1,
            self.n,
            self.sr_index_offset,
            self.clip_coef,
            self.chunk_start,
        ])
    }

    /// Chunks this tensor spans: `ceil(n / CHUNK)`.
    pub fn chunks(&self) -> u64 {
        self.n.div_ceil(CHUNK)
    }
}

/// Fill `chunk_start` of every entry (prefix sums) and return the launch's total chunks.
pub fn assign_chunks(entries: &mut [TensorEntry]) -> u64 {
    assign_starts(entries, TensorEntry::chunks, |e| &mut e.chunk_start)
}

/// Set each entry's `start` to the sum of the earlier entries' `units`; returns the total.
fn assign_starts<E>(entries: &mut [E], units: fn(&E) -> u64, start: fn(&mut E) -> &mut u64) -> u64 {
    let mut c = 0u64;
    for e in entries.iter_mut() {
        *start(e) = c;
        c += units(e);
    }
    c
}

/// The bytes of a table of entries, for upload.
pub fn table_bytes(entries: &[TensorEntry]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.to_bytes()).collect()
}

/// One input of a reduction launch (32 bytes, align 8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ReduceEntry {
    /// 0: device address of the values.
    pub x: u64,
    /// 8: number of values.
    pub n: u64,
    /// 16: device address of `ceil(n / 4096)` f32 tile results.
    pub out: u64,
    /// 24: first launch tile of this entry.
    pub tile_start: u64,
}

impl ReduceEntry {
    /// Size in bytes.
    pub const SIZE: usize = 32;
    /// Little-endian bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        words_to_bytes([self.x, self.n, self.out, self.tile_start])
    }
    /// Tiles of this entry: `ceil(n / 4096)`.
    pub fn tiles(&self) -> u64 {
        self.n.div_ceil(TILE)
    }
}

/// Fill `tile_start` of every entry and return the total tiles.
pub fn assign_tiles(entries: &mut [ReduceEntry]) -> u64 {
    assign_starts(entries, ReduceEntry::tiles, |e| &mut e.tile_start)
}

/// One field of a kernel argument struct: 8 bytes (u64, f64 bits) or 4 bytes (u32, f32 bits).
#[derive(Clone, Copy)]
enum Field {
    Word(u64),
    Half(u32),
}

impl From<u64> for Field {
    fn from(v: u64) -> Field {
        Field::Word(v)
    }
}
impl From<f64> for Field {
    fn from(v: f64) -> Field {
        Field::Word(v.to_bits())
    }
}
impl From<u32> for Field {
    fn from(v: u32) -> Field {
        Field::Half(v)
    }
}
impl From<f32> for Field {
    fn from(v: f32) -> Field {
        Field::Half(v.to_bits())
    }
}

/// The fields one after the other, little-endian, filling exactly `N` bytes (the structs
/// declare no padding: every 8-byte field sits at a multiple of 8).
fn le_bytes<const N: usize>(fields: &[Field]) -> [u8; N] {
    let mut b = [0u8; N];
    let mut at = 0;
    for f in fields {
        match *f {
            Field::Word(v) => {
                b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                at += 8;
            }
            Field::Half(v) => {
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                at += 4;
            }
        }
    }
    assert_eq!(at, N, "argument fields fill the struct");
    b
}

/// Adam/AdamW hyper-parameters as the kernel reads them (48 bytes, align 8). The device
/// computes `AdamConfig::scalars(lr as f64, step + 1)` from these with the f64 recipe.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct AdamHyper {
    /// 0
    pub beta1: f64,
    /// 8
    pub beta2: f64,
    /// 16
    pub eps: f64,
    /// 24
    pub weight_decay: f64,
    /// 32: stochastic rounding seed.
    pub sr_seed: u64,
    /// 40: 1 = AdamW (decoupled decay), 0 = Adam (L2).
    pub decoupled: u32,
    /// 44: 1 = stochastic rounding of bf16 parameters.
    pub stochastic: u32,
}

impl AdamHyper {
    /// Size in bytes.
    pub const SIZE: usize = 48;
    /// From a core configuration (its `lr` is not used: the kernel reads `lr` from the device).
    pub fn from_config(c: &adamant_core::AdamConfig) -> AdamHyper {
        AdamHyper {
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            sr_seed: c.stochastic_rounding_seed.unwrap_or(0),
            decoupled: c.decoupled as u32,
            stochastic: c.stochastic_rounding_seed.is_some() as u32,
        }
    }
    /// Little-endian bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        le_bytes(&[
            self.beta1.into(),
            self.beta2.into(),
            self.eps.into(),
            self.weight_decay.into(),
            self.sr_seed.into(),
            self.decoupled.into(),
            self.stochastic.into(),
        ])
    }
}

/// SGD hyper-parameters as the kernel reads them (40 bytes, align 8).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct SgdHyper {
    /// 0
    pub momentum: f64,
    /// 8
    pub dampening: f64,
    /// 16
    pub weight_decay: f64,
    /// 24: stochastic rounding seed.
    pub sr_seed: u64,
    /// 32: 1 = Nesterov.
    pub nesterov: u32,
    /// 36: 1 = stochastic rounding of bf16 parameters.
    pub stochastic: u32,
}

impl SgdHyper {
    /// Size in bytes.
    pub const SIZE: usize = 40;
    /// From a core configuration.
    pub fn from_config(c: &adamant_core::SgdConfig) -> SgdHyper {
        SgdHyper {
            momentum: c.momentum,
            dampening: c.dampening,
            weight_decay: c.weight_decay,
            sr_seed: c.stochastic_rounding_seed.unwrap_or(0),
            nesterov: c.nesterov as u32,
            stochastic: c.stochastic_rounding_seed.is_some() as u32,
        }
    }
    /// Little-endian bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        le_bytes(&[
            self.momentum.into(),
            self.dampening.into(),
            self.weight_decay.into(),
            self.sr_seed.into(),
            self.nesterov.into(),
            self.stochastic.into(),
        ])
    }
}

/// Lion hyper-parameters as the kernel reads them (40 bytes, align 8).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct LionHyper {
    /// 0
    pub beta1: f64,
    /// 8
    pub beta2: f64,
    /// 16
    pub weight_decay: f64,
    /// 24: stochastic rounding seed.
    pub sr_seed: u64,
    /// 32: 1 = stochastic rounding of bf16 parameters.
    pub stochastic: u32,
    /// 36: must be 0.
    pub reserved: u32,
}

impl LionHyper {
    /// Size in bytes.
    pub const SIZE: usize = 40;
    /// From a core configuration.
    pub fn from_config(c: &adamant_core::LionConfig) -> LionHyper {
        LionHyper {
            beta1: c.beta1,
            beta2: c.beta2,
            weight_decay: c.weight_decay,
            sr_seed: c.stochastic_rounding_seed.unwrap_or(0),
            stochastic: c.stochastic_rounding_seed.is_some() as u32,
            reserved: 0,
        }
    }
    /// Little-endian bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        le_bytes(&[
            self.beta1.into(),
            self.beta2.into(),
            self.weight_decay.into(),
            self.sr_seed.into(),
            self.stochastic.into(),
            // `reserved` goes to the device as 0 whatever the field holds.
            0u32.into(),
        ])
    }
}

/// The update rules with kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Adam / AdamW (module `adam`).
    Adam,
    /// SGD (module `sgd`).
    Sgd,
    /// Lion (module `lion`).
    Lion,
}

impl Rule {
    /// Module (PTX file stem) and entry prefix.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::Adam => "adam",
            Rule::Sgd => "sgd",
            Rule::Lion => "lion",
        }
    }
}

// Entry names are `&'static str`s picked by exhaustive matches (no formatting, no heap on
// the launch path); `tests/ptx_lint.rs` checks that every name is an entry of its module, and
// the unit tests below that each equals the name spelled from the dtypes' names.

/// `$pre $mid <name of dtype $d> $suffix` (`f32`, `bf16`, `f16`).
macro_rules! by_dtype {
    ($pre:literal, $mid:literal, $d:expr, $suffix:literal) => {
        match $d {
            Dtype::F32 => concat!($pre, $mid, "f32", $suffix),
            Dtype::Bf16 => concat!($pre, $mid, "bf16", $suffix),
            Dtype::F16 => concat!($pre, $mid, "f16", $suffix),
        }
    };
    ($pre:literal, $d:expr) => {
        by_dtype!($pre, "", $d, "")
    };
}

/// `$pre` followed by `<param>_<grad>`, for every parameter and gradient dtype.
macro_rules! by_param_grad {
    ($pre:literal, $p:expr, $g:expr, $suffix:literal) => {
        match $p {
            Dtype::F32 => by_dtype!($pre, "f32_", $g, $suffix),
            Dtype::Bf16 => by_dtype!($pre, "bf16_", $g, $suffix),
            Dtype::F16 => by_dtype!($pre, "f16_", $g, $suffix),
        }
    };
    ($pre:literal, $p:expr, $g:expr) => {
        by_param_grad!($pre, $p, $g, "")
    };
}

/// `$pre<param>_<grad>_<state>` for the state dtypes (f32, bf16); `None` for f16 states.
macro_rules! by_param_grad_state {
    ($pre:literal, $p:expr, $g:expr, $s:expr) => {
        match $s {
            Dtype::F32 => Some(by_param_grad!($pre, $p, $g, "_f32")),
            Dtype::Bf16 => Some(by_param_grad!($pre, $p, $g, "_bf16")),
            Dtype::F16 => None,
        }
    };
}

/// Entry name of an update kernel: `adamant_<rule>_<param>_<grad>_<state>`; `None` when the
/// state dtype is not a state type (f16).
pub fn update_entry(rule: Rule, param: Dtype, grad: Dtype, state: Dtype) -> Option<&'static str> {
    match rule {
        Rule::Adam => by_param_grad_state!("adamant_adam_", param, grad, state),
        Rule::Sgd => by_param_grad_state!("adamant_sgd_", param, grad, state),
        Rule::Lion => by_param_grad_state!("adamant_lion_", param, grad, state),
    }
}

/// The reductions with kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// Canonical sum (`adamant_core::reduce::sum`, per tile).
    Sum,
    /// Canonical sum of squares (`sum_sq`).
    SumSq,
    /// Max-abs (`max_abs`).
    MaxAbs,
}

/// Entry name of a reduction kernel: `adamant_reduce_<sum|sumsq|maxabs>_<dtype>`.
pub fn reduce_entry(kind: Reduction, dtype: Dtype) -> &'static str {
    match kind {
        Reduction::Sum => by_dtype!("adamant_reduce_sum_", dtype),
        Reduction::SumSq => by_dtype!("adamant_reduce_sumsq_", dtype),
        Reduction::MaxAbs => by_dtype!("adamant_reduce_maxabs_", dtype),
    }
}

/// Entry name of the non-finite scan for gradients of `grad`.
pub fn nonfinite_entry(grad: Dtype) -> &'static str {
    by_dtype!("adamant_nonfinite_", grad)
}

/// Entry name of the step-counter commit kernel.
pub const COMMIT_ENTRY: &str = "adamant_step_commit";

/// Arguments of every `quant` kernel (`cuda/kernels/quant.cu`), passed by value (104 bytes,
/// align 8). A launch covers `chunks` chunks of `len` elements each, one packed chunk per
/// chunk (the layout of `adamant_core::quant`: codes, zero padding to 4 bytes, one f32
/// `inv_scale` per group).
///
/// - Compress (`adamant_quant_{check,compress}_<src>`): chunk `c` holds shard
///   `k = (c % nodes) * (chunks / nodes) + c / nodes` (`adamant_core::loco::LocoLayout::
///   shard_of_chunk`; `nodes = 1`: `k = c`). Its values are the gradient elements
///   `src + k*len*size(G)` (dtype sources), or the rank-order fold of `peers` packed chunks at
///   `src + c*src_chunk_stride + r*peer_stride` (`packed` source) divided by `divisor` when
///   that is not 0. The error chunk is shard `k` of `err` (f32: `len` values; 8-bit: one
///   packed chunk of `bits = 8`), the output chunk `c` of `out`.
/// - Decompress (`adamant_quant_decompress[_check]`): `out[c*len + i]` (f32) is the fold of
///   the `peers` chunks of chunk `c` (as above, with `src_bits`), divided by `divisor` unless 0.
///
/// Sources are read through the read-only path (`ld.global.nc`): they must not overlap `out`
/// or `err` (core's borrows forbid that too).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct QuantArgs {
    /// 0: gradient of shard 0, or chunk 0's first peer chunk (4-byte aligned).
    pub src: u64,
    /// 8: error buffer (f32 values or 8-bit packed chunks), 0 = none.
    pub err: u64,
    /// 16: packed output chunks (compress) or f32 values (decompress).
    pub out: u64,
    /// 24: the 32-bit status word: the check kernel stores f32 1.0 (= [`FOUND_INF_SET`]) where
    /// core would refuse the call; a set word makes the main kernel write nothing.
    pub status: u64,
    /// 32: elements per chunk.
    pub len: u64,
    /// 40: bytes between consecutive peers' chunks (packed sources).
    pub peer_stride: u64,
    /// 48: bytes between the first peer chunks of consecutive chunks (packed sources).
    pub src_chunk_stride: u64,
    /// 56: chunks of the launch.
    pub chunks: u32,
    /// 60: shard permutation (see the type doc); 1 = identity.
    pub nodes: u32,
    /// 64: peers folded per element (packed sources and decompress), 0 for dtype sources.
    pub peers: u32,
    /// 68: elements per group (> 0).
    pub group_len: u32,
    /// 72: output code width (4 or 8).
    pub bits: u32,
    /// 76: peers' code width (4 or 8).
    pub src_bits: u32,
    /// 80: error storage: 0 none, 1 f32, 2 8-bit packed.
    pub err_storage: u32,
    /// 84: 1 = the step reads every error as zero (LoCo reset).
    pub reset: u32,
    /// 88: 0 = plain error feedback `e = x - x̂`, 1 = LoCo `err_beta*e + (1-err_beta)*(x - x̂)`.
    pub rule: u32,
    /// 92: `err_beta` (f32).
    pub err_beta: f32,
    /// 96: `1 - err_beta` (f64, rounded once to f32).
    pub one_minus_err_beta: f32,
    /// 100: divisor of the fold; 0 = none.
    pub divisor: f32,
}

impl Default for QuantArgs {
    fn default() -> Self {
        QuantArgs {
            src: 0,
            err: 0,
            out: 0,
            status: 0,
            len: 0,
            peer_stride: 0,
            src_chunk_stride: 0,
            chunks: 0,
            nodes: 1,
            peers: 0,
            group_len: 1,
            bits: 4,
            src_bits: 4,
            err_storage: 0,
            reset: 0,
            rule: 0,
            err_beta: 0.0,
            one_minus_err_beta: 1.0,
            divisor: 0.0,
        }
    }
}

impl QuantArgs {
    /// Size in bytes.
    pub const SIZE: usize = 104;
    /// Little-endian bytes, as the kernels read them.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        le_bytes(&[
            self.src.into(),
            self.err.into(),
            self.out.into(),
            self.status.into(),
            self.len.into(),
            self.peer_stride.into(),
            self.src_chunk_stride.into(),
            self.chunks.into(),
            self.nodes.into(),
            self.peers.into(),
            self.group_len.into(),
            self.bits.into(),
            self.src_bits.into(),
            self.err_storage.into(),
            self.reset.into(),
            self.rule.into(),
            self.err_beta.into(),
            self.one_minus_err_beta.into(),
            self.divisor.into(),
        ])
    }
}

// ---------------------------------------------------------------------------------------------
// Adam-mini (module `adam_mini`) and clipping (module `clip`).

/// `W` little-endian u64 words as `B = 8 * W` bytes.
fn words_to_bytes<const W: usize, const B: usize>(words: [u64; W]) -> [u8; B] {
    const { assert!(B == 8 * W) };
    let mut b = [0u8; B];
    for (k, w) in words.iter().enumerate() {
        b[8 * k..8 * k + 8].copy_from_slice(&w.to_le_bytes());
    }
    b
}

/// One segment of uniform Adam-mini blocks of one tensor, as `adam_mini.cu` reads it (112
/// bytes, align 8). Per-element (bias) segments are not segments: they run through the Adam
/// kernels ([`MiniPlan::elements_decay`], [`MiniPlan::elements_plain`]).
///
/// The three launches of a step walk the same table with different units: the statistics
/// launch tiles (`ceil(block_len / 4096)` per block, from `tile_start`), the block update
/// blocks (from `block_start`), the element pass chunks of [`CHUNK`] (from `chunk_start`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MiniSegment {
    /// 0: address of the segment's first parameter.
    pub param: u64,
    /// 8: its first gradient (read only).
    pub grad: u64,
    /// 16: its first `exp_avg`.
    pub exp_avg: u64,
    /// 24: the `exp_avg_sq` of its first block (one per block).
    pub exp_avg_sq: u64,
    /// 32: f32 scratch, one block scale per block.
    pub scale: u64,
    /// 40: f32 scratch, `ceil(block_len / 4096)` tile partials per block.
    pub partials: u64,
    /// 48: elements (a multiple of `block_len`).
    pub n: u64,
    /// 56: elements per block (`> 0`).
    pub block_len: u64,
    /// 64: global stochastic-rounding index of the segment's element 0.
    pub sr_index_offset: u64,
    /// 72: address of the tensor's f32 clip coefficient, 0 = none.
    pub clip_coef: u64,
    /// 80: 1 applies decoupled weight decay, 0 not.
    pub weight_decay: u64,
    /// 88: first chunk of the element pass.
    pub chunk_start: u64,
    /// 96: first tile of the statistics launch.
    pub tile_start: u64,
    /// 104: first block of the block-update launch.
    pub block_start: u64,
}

impl MiniSegment {
    /// Size in bytes.
    pub const SIZE: usize = 112;
    /// Little-endian bytes, as the kernels read them.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        words_to_bytes([
            self.param,
            self.grad,
            self.exp_avg,
            self.exp_avg_sq,
            self.scale,
            self.partials,
            self.n,
            self.block_len,
            self.sr_index_offset,
            self.clip_coef,
            self.weight_decay,
            self.chunk_start,
            self.tile_start,
            self.block_start,
        ])
    }
    /// Blocks: `n / block_len`.
    pub fn blocks(&self) -> u64 {
        self.n / self.block_len.max(1)
    }
    /// Tiles per block: `ceil(block_len / 4096)`.
    pub fn tiles_per_block(&self) -> u64 {
        self.block_len.div_ceil(TILE)
    }
    /// Chunks of the element pass: `ceil(n / CHUNK)`.
    pub fn chunks(&self) -> u64 {
        self.n.div_ceil(CHUNK)
    }
}

/// Adam-mini hyper-parameters as the kernels read them (48 bytes, align 8); the device computes
/// `AdamMiniConfig::scalars(lr as f64, step + 1)` from these with the f64 recipe.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct MiniHyper {
    /// 0
    pub beta1: f64,
    /// 8
    pub beta2: f64,
    /// 16
    pub eps: f64,
    /// 24
    pub weight_decay: f64,
    /// 32: stochastic rounding seed.
    pub sr_seed: u64,
    /// 40: 1 = stochastic rounding of bf16 parameters.
    pub stochastic: u32,
    /// 44: must be 0.
    pub reserved: u32,
}

impl MiniHyper {
    /// Size in bytes.
    pub const SIZE: usize = 48;
    /// From a core configuration (its `lr` is not used: the kernels read `lr` from the device).
    pub fn from_config(c: &adamant_core::AdamMiniConfig) -> MiniHyper {
        MiniHyper {
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            sr_seed: c.stochastic_rounding_seed.unwrap_or(0),
            stochastic: c.stochastic_rounding_seed.is_some() as u32,
            reserved: 0,
        }
    }
    /// The Adam kernels' hyper-parameters that run Adam-mini's per-element blocks
    /// (`AdamMiniScalars::element_scalars`: AdamW with this decay, no L2 term); `weight_decay`
    /// false gives decay `1 - lr*0 = 1`, as core's `without_weight_decay`.
    pub fn element_hyper(&self, weight_decay: bool) -> AdamHyper {
        AdamHyper {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: if weight_decay { self.weight_decay } else { 0.0 },
            sr_seed: self.sr_seed,
            decoupled: 1,
            stochastic: self.stochastic,
        }
    }
    /// Little-endian bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        le_bytes(&[
            self.beta1.into(),
            self.beta2.into(),
            self.eps.into(),
            self.weight_decay.into(),
            self.sr_seed.into(),
            self.stochastic.into(),
            self.reserved.into(),
        ])
    }
}

/// Where a compress launch reads its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantSource {
    /// A gradient buffer of this dtype.
    Grad(Dtype),
    /// The rank-order fold of peers' packed chunks.
    Packed,
}

/// Module (PTX file stem) of the quantizer kernels.
pub const QUANT_MODULE: &str = "quant";

/// Entry name of the pre-scan of a compress launch: `adamant_quant_check_<src>`.
pub fn quant_check_entry(src: QuantSource) -> &'static str {
    match src {
        QuantSource::Grad(d) => by_dtype!("adamant_quant_check_", d),
        QuantSource::Packed => "adamant_quant_check_packed",
    }
}

/// Entry name of a compress kernel: `adamant_quant_compress_<src>`.
pub fn quant_compress_entry(src: QuantSource) -> &'static str {
    match src {
        QuantSource::Grad(d) => by_dtype!("adamant_quant_compress_", d),
        QuantSource::Packed => "adamant_quant_compress_packed",
    }
}

/// Entry name of the pre-scan of a decompress launch.
pub const QUANT_DECOMPRESS_CHECK_ENTRY: &str = "adamant_quant_decompress_check";
/// Entry name of the decompress kernel.
pub const QUANT_DECOMPRESS_ENTRY: &str = "adamant_quant_decompress";

/// One tensor of an Adam-mini step, by device address.
#[derive(Clone, Copy, Debug)]
pub struct MiniTensor<'a> {
    /// Parameters.
    pub param: u64,
    /// Gradients.
    pub grad: u64,
    /// `exp_avg` (one per element).
    pub exp_avg: u64,
    /// `exp_avg_sq` (`layout.state_len(numel)` entries).
    pub exp_avg_sq: u64,
    /// Elements.
    pub numel: u64,
    /// How the tensor is cut into blocks.
    pub layout: adamant_core::BlockLayout<'a>,
    /// Whether weight decay applies (the descriptor's flag).
    pub weight_decay: bool,
    /// Global stochastic-rounding index of element 0.
    pub sr_index_offset: u64,
    /// Address of the tensor's f32 clip coefficient, 0 = none.
    pub clip_coef: u64,
}

/// The host-side plan of an Adam-mini step over a model: the segment table of the three
/// Adam-mini launches, the Adam tables of the per-element runs (with and without weight
/// decay), and a whole-tensor table for the non-finite scan. Built once per model (layouts
/// and addresses are fixed), uploaded, and launched every step by `ops::mini_step`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MiniPlan {
    /// Uniform-block segments (starts assigned).
    pub segments: Vec<MiniSegment>,
    /// Per-element runs with weight decay (Adam kernel entries, chunks assigned).
    pub elements_decay: Vec<TensorEntry>,
    /// Per-element runs without weight decay.
    pub elements_plain: Vec<TensorEntry>,
    /// Whole tensors (grad and `n` only), for the non-finite scan.
    pub scan: Vec<TensorEntry>,
    /// Chunks, tiles and blocks of the segment table.
    pub total_chunks: u64,
    /// Tiles of the statistics launch.
    pub total_tiles: u64,
    /// Blocks of the block-update launch.
    pub total_blocks: u64,
    /// Scratch bytes used from the `scratch` address (block scales, then tile partials).
    pub scratch_bytes: u64,
}

impl MiniPlan {
    /// Cut every tensor by its layout. `sizes` = bytes per element of (param, grad, state);
    /// `scratch` = device address of [`MiniPlan::scratch_bytes`] bytes (build once with 0 to
    /// learn the size). Layout errors are returned before anything is built.
    pub fn build(
        tensors: &[MiniTensor<'_>],
        sizes: (u64, u64, u64),
        scratch: u64,
    ) -> Result<MiniPlan, adamant_core::LayoutError> {
        use adamant_core::rules::adam_mini::Block;
        let mut plan = MiniPlan::default();
        let (ps, gs, ss) = sizes;
        let mut blocks_total = 0u64;
        let mut tiles_total = 0u64;
        for t in tensors {
            t.layout.state_len(t.numel as usize)?;
        }
        // First pass: the blocks (scales first in scratch, then partials).
        let mut pending: Vec<(MiniSegment, u64)> = Vec::new(); // (segment, blocks)
        for t in tensors {
            let mut runs: Vec<(Block, u64)> = Vec::new(); // merged runs of equal block_len
            t.layout.for_each_block(t.numel as usize, |b| {
                if let Some((last, count)) = runs.last_mut() {
                    let contiguous = !b.per_element
                        && !last.per_element
                        && last.len == b.len
                        && last.offset + last.len * *count as usize == b.offset
                        && last.state_index + *count as usize == b.state_index;
                    if contiguous {
                        *count += 1;
                        return;
                    }
                }
                runs.push((b, 1));
            });
            plan.scan.push(TensorEntry {
                grad: t.grad,
                n: t.numel,
                ..TensorEntry::default()
            });
            for (b, count) in runs {
                let off = b.offset as u64;
                if b.per_element {
                    let e = TensorEntry {
                        param: t.param + off * ps,
                        grad: t.grad + off * gs,
                        state0: t.exp_avg + off * ss,
                        state1: t.exp_avg_sq + b.state_index as u64 * ss,
                        n: b.len as u64,
                        sr_index_offset: t.sr_index_offset + off,
                        clip_coef: t.clip_coef,
                        chunk_start: 0,
                    };
                    if t.weight_decay {
                        plan.elements_decay.push(e);
                    } else {
                        plan.elements_plain.push(e);
                    }
                    continue;
                }
                let s = MiniSegment {
                    param: t.param + off * ps,
                    grad: t.grad + off * gs,
                    exp_avg: t.exp_avg + off * ss,
                    exp_avg_sq: t.exp_avg_sq + b.state_index as u64 * ss,
                    n: b.len as u64 * count,
                    block_len: b.len as u64,
                    sr_index_offset: t.sr_index_offset + off,
                    clip_coef: t.clip_coef,
                    weight_decay: t.weight_decay as u64,
                    ..MiniSegment::default()
                };
                blocks_total += count;
                tiles_total += count * s.tiles_per_block();
                pending.push((s, count));
            }
        }
        let (mut chunk, mut tile, mut block) = (0u64, 0u64, 0u64);
        for (mut s, count) in pending {
            s.scale = scratch + 4 * block;
            s.partials = scratch + 4 * blocks_total + 4 * tile;
            s.chunk_start = chunk;
            s.tile_start = tile;
            s.block_start = block;
            chunk += s.chunks();
            tile += count * s.tiles_per_block();
            block += count;
            plan.segments.push(s);
        }
        plan.total_chunks = chunk;
        plan.total_tiles = tile;
        plan.total_blocks = block;
        plan.scratch_bytes = 4 * (blocks_total + tiles_total);
        assign_chunks(&mut plan.elements_decay);
        assign_chunks(&mut plan.elements_plain);
        assign_chunks(&mut plan.scan);
        Ok(plan)
    }

    /// The bytes of the segment table, for upload.
    pub fn segment_bytes(&self) -> Vec<u8> {
        self.segments.iter().flat_map(|s| s.to_bytes()).collect()
    }
}

/// Entry name of the Adam-mini element pass: `adamant_mini_<param>_<grad>_<state>`; `None`
/// for f16 states.
pub fn mini_entry(param: Dtype, grad: Dtype, state: Dtype) -> Option<&'static str> {
    by_param_grad_state!("adamant_mini_", param, grad, state)
}

/// Entry name of the Adam-mini block statistics (tile partials) for gradients of `grad`.
pub fn mini_sumsq_entry(grad: Dtype) -> &'static str {
    by_dtype!("adamant_mini_sumsq_", grad)
}

/// Entry name of the Adam-mini block update for states of `state`; `None` for f16.
pub fn mini_block_entry(state: Dtype) -> Option<&'static str> {
    match state {
        Dtype::F32 => Some("adamant_mini_block_f32"),
        Dtype::Bf16 => Some("adamant_mini_block_bf16"),
        Dtype::F16 => None,
    }
}

/// Device buffers of a clipped step, as `clip.cu` reads them (64 bytes, align 8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ClipBuffers {
    /// 0: f32 per tensor: the tensor sums of squares (written by `adamant_clip_tensor_sums`).
    pub sums: u64,
    /// 8: tensors.
    pub count: u64,
    /// 16: f32 x `count` scratch for the global combine.
    pub scratch: u64,
    /// 24: f32 per tensor: the clip coefficients (point each tensor's `clip_coef` here).
    pub coefs: u64,
    /// 32: AdaGC thresholds `gamma` (f32 per tensor; global mode: 1); 0 for global-norm clipping.
    pub gamma: u64,
    /// 40: this step's thresholds (same length), copied to `gamma` by the commit.
    pub gamma_next: u64,
    /// 48: u64 AdaGC steps committed; 0 for global-norm clipping.
    pub clip_step: u64,
    /// 56: 16 bytes written: global norm (f32), global coefficient (f32), finite (u32 0/1), 0.
    pub record: u64,
}

impl ClipBuffers {
    /// Size in bytes.
    pub const SIZE: usize = 64;
    /// Little-endian bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        words_to_bytes([
            self.sums,
            self.count,
            self.scratch,
            self.coefs,
            self.gamma,
            self.gamma_next,
            self.clip_step,
            self.record,
        ])
    }
}

/// Clipping modes of `adamant_clip_coefs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClipMode {
    /// `GlobalNormClip` (PyTorch `clip_grad_norm_`).
    GlobalNorm = 0,
    /// AdaGC, one threshold per tensor.
    AdaGcPerTensor = 1,
    /// AdaGC on the global norm.
    AdaGcGlobal = 2,
}

/// Clipping hyper-parameters as `clip.cu` reads them (48 bytes, align 8).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct ClipHyper {
    /// 0: AdaGC `lambda_rel`.
    pub lambda_rel: f64,
    /// 8: AdaGC EMA decay.
    pub beta: f64,
    /// 16: AdaGC eps (global-norm clipping uses `CLIP_EPS` = 1e-6 f32).
    pub eps: f64,
    /// 24: `max_norm` (AdaGC's warm-up threshold, or the global-norm clip's).
    pub max_norm: f64,
    /// 32: AdaGC warm-up steps.
    pub t_start: u64,
    /// 40: [`ClipMode`].
    pub mode: u32,
    /// 44: must be 0.
    pub reserved: u32,
}

impl ClipHyper {
    /// Size in bytes.
    pub const SIZE: usize = 48;
    /// From an AdaGC configuration.
    pub fn adagc(c: &adamant_core::clip::AdaGcConfig) -> ClipHyper {
        ClipHyper {
            lambda_rel: c.lambda_rel,
            beta: c.beta,
            eps: c.eps,
            max_norm: c.max_norm,
            t_start: c.t_start,
            mode: match c.mode {
                adamant_core::clip::AdaGcMode::PerTensor => ClipMode::AdaGcPerTensor as u32,
                adamant_core::clip::AdaGcMode::Global => ClipMode::AdaGcGlobal as u32,
            },
            reserved: 0,
        }
    }
    /// From a global-norm clip.
    pub fn global_norm(c: &adamant_core::clip::GlobalNormClip) -> ClipHyper {
        ClipHyper {
            lambda_rel: 0.0,
            beta: 0.0,
            eps: adamant_core::clip::global_norm::CLIP_EPS as f64,
            max_norm: c.max_norm,
            t_start: 0,
            mode: ClipMode::GlobalNorm as u32,
            reserved: 0,
        }
    }
    /// Little-endian bytes.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        le_bytes(&[
            self.lambda_rel.into(),
            self.beta.into(),
            self.eps.into(),
            self.max_norm.into(),
            self.t_start.into(),
            self.mode.into(),
            self.reserved.into(),
        ])
    }
}

/// Entry name of the clip's per-tile sums of squares for gradients of `grad`.
pub fn clip_sumsq_entry(grad: Dtype) -> &'static str {
    by_dtype!("adamant_clip_sumsq_", grad)
}
/// Entry that combines each tensor's partials into its sum.
pub const CLIP_TENSOR_SUMS_ENTRY: &str = "adamant_clip_tensor_sums";
/// Entry computing the coefficients (one block).
pub const CLIP_COEFS_ENTRY: &str = "adamant_clip_coefs";
/// Entry committing AdaGC's thresholds and step (one block).
pub const CLIP_COMMIT_ENTRY: &str = "adamant_clip_commit";

#[cfg(test)]
mod tests {
    //! The entry names picked by the matches equal the names spelled from the dtypes' names
    //! (the formatting the launcher used before it stopped allocating).
    use super::*;

    #[test]
    fn entry_names_equal_the_spelled_names() {
        let mut checked = 0;
        for p in Dtype::ALL {
            for g in Dtype::ALL {
                for s in Dtype::ALL {
                    let spell = |pre: &str| {
                        (s != Dtype::F16)
                            .then(|| format!("{pre}_{}_{}_{}", p.name(), g.name(), s.name()))
                    };
                    for rule in [Rule::Adam, Rule::Sgd, Rule::Lion] {
                        let want = spell(&format!("adamant_{}", rule.name()));
                        assert_eq!(update_entry(rule, p, g, s).map(String::from), want);
                        checked += 1;
                    }
                    assert_eq!(mini_entry(p, g, s).map(String::from), spell("adamant_mini"));
                    checked += 1;
                }
            }
            let d = p.name();
            for (k, name) in [
                (Reduction::Sum, "sum"),
                (Reduction::SumSq, "sumsq"),
                (Reduction::MaxAbs, "maxabs"),
            ] {
                assert_eq!(reduce_entry(k, p), format!("adamant_reduce_{name}_{d}"));
            }
            assert_eq!(nonfinite_entry(p), format!("adamant_nonfinite_{d}"));
            assert_eq!(mini_sumsq_entry(p), format!("adamant_mini_sumsq_{d}"));
            assert_eq!(clip_sumsq_entry(p), format!("adamant_clip_sumsq_{d}"));
            assert_eq!(
                mini_block_entry(p).map(String::from),
                (p != Dtype::F16).then(|| format!("adamant_mini_block_{d}"))
            );
            let src = QuantSource::Grad(p);
            assert_eq!(quant_check_entry(src), format!("adamant_quant_check_{d}"));
            assert_eq!(
                quant_compress_entry(src),
                format!("adamant_quant_compress_{d}")
            );
            checked += 9;
        }
        assert_eq!(
            quant_check_entry(QuantSource::Packed),
            "adamant_quant_check_packed"
        );
        assert_eq!(
            quant_compress_entry(QuantSource::Packed),
            "adamant_quant_compress_packed"
        );
        assert_eq!(checked, 27 * 4 + 27);
    }

    /// The fixed-size byte images equal the struct layouts field by field (offsets from the
    /// type docs), so the arrays carry the same bytes the old `Vec`s did.
    #[test]
    fn hyper_bytes_follow_the_documented_offsets() {
        let a = AdamHyper {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            sr_seed: 0x0102_0304_0506_0708,
            decoupled: 1,
            stochastic: 7,
        }
        .to_bytes();
        assert_eq!(a.len(), AdamHyper::SIZE);
        assert_eq!(a[0..8], 0.9f64.to_le_bytes());
        assert_eq!(a[24..32], 0.01f64.to_le_bytes());
        assert_eq!(a[32..40], 0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(a[40..44], 1u32.to_le_bytes());
        assert_eq!(a[44..48], 7u32.to_le_bytes());
        let lion = LionHyper {
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: -0.0,
            sr_seed: 3,
            stochastic: 1,
            reserved: 0xFFFF_FFFF,
        }
        .to_bytes();
        assert_eq!(lion[16..24], (-0.0f64).to_le_bytes());
        assert_eq!(
            lion[32..40],
            [1, 0, 0, 0, 0, 0, 0, 0],
            "reserved is sent as 0"
        );
        let q = QuantArgs {
            chunks: 5,
            divisor: -2.5,
            ..QuantArgs::default()
        }
        .to_bytes();
        assert_eq!((q[56], q[60], q[68], q[72], q[76]), (5, 1, 1, 4, 4));
        assert_eq!(
            q[96..104],
            [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat()
        );
        let c = ClipBuffers {
            sums: 1,
            count: 2,
            scratch: 3,
            coefs: 4,
            gamma: 5,
            gamma_next: 6,
            clip_step: 7,
            record: 8,
        }
        .to_bytes();
        for (k, w) in c.chunks(8).enumerate() {
            assert_eq!(w, (k as u64 + 1).to_le_bytes());
        }
        let m = MiniSegment {
            block_start: 0xABCD,
            param: 9,
            ..MiniSegment::default()
        }
        .to_bytes();
        assert_eq!((m.len(), m[0], m[104], m[105]), (112, 9, 0xCD, 0xAB));
    }
}
