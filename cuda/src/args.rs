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
        let mut b = [0u8; 64];
        let f = [
            self.param,
            self.grad,
            self.state0,
            self.state1,
            self.n,
            self.sr_index_offset,
            self.clip_coef,
            self.chunk_start,
        ];
        for (k, v) in f.iter().enumerate() {
            b[8 * k..8 * k + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Chunks this tensor spans: `ceil(n / CHUNK)`.
    pub fn chunks(&self) -> u64 {
        self.n.div_ceil(CHUNK)
    }
}

/// Fill `chunk_start` of every entry (prefix sums) and return the launch's total chunks.
pub fn assign_chunks(entries: &mut [TensorEntry]) -> u64 {
    let mut c = 0u64;
    for e in entries.iter_mut() {
        e.chunk_start = c;
        c += e.chunks();
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
        let mut b = [0u8; 32];
        for (k, v) in [self.x, self.n, self.out, self.tile_start]
            .iter()
            .enumerate()
        {
            b[8 * k..8 * k + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
    /// Tiles of this entry: `ceil(n / 4096)`.
    pub fn tiles(&self) -> u64 {
        self.n.div_ceil(TILE)
    }
}

/// Fill `tile_start` of every entry and return the total tiles.
pub fn assign_tiles(entries: &mut [ReduceEntry]) -> u64 {
    let mut c = 0u64;
    for e in entries.iter_mut() {
        e.tile_start = c;
        c += e.tiles();
    }
    c
}

fn put_f64(b: &mut [u8], at: usize, v: f64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
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
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        put_f64(&mut b, 0, self.beta1);
        put_f64(&mut b, 8, self.beta2);
        put_f64(&mut b, 16, self.eps);
        put_f64(&mut b, 24, self.weight_decay);
        put_u64(&mut b, 32, self.sr_seed);
        put_u32(&mut b, 40, self.decoupled);
        put_u32(&mut b, 44, self.stochastic);
        b
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
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        put_f64(&mut b, 0, self.momentum);
        put_f64(&mut b, 8, self.dampening);
        put_f64(&mut b, 16, self.weight_decay);
        put_u64(&mut b, 24, self.sr_seed);
        put_u32(&mut b, 32, self.nesterov);
        put_u32(&mut b, 36, self.stochastic);
        b
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
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        put_f64(&mut b, 0, self.beta1);
        put_f64(&mut b, 8, self.beta2);
        put_f64(&mut b, 16, self.weight_decay);
        put_u64(&mut b, 24, self.sr_seed);
        put_u32(&mut b, 32, self.stochastic);
        b
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

/// Entry name of an update kernel: `adamant_<rule>_<param>_<grad>_<state>`; `None` when the
/// state dtype is not a state type (f16).
pub fn update_entry(rule: Rule, param: Dtype, grad: Dtype, state: Dtype) -> Option<String> {
    if state == Dtype::F16 {
        return None;
    }
    Some(format!(
        "adamant_{}_{}_{}_{}",
        rule.name(),
        param.name(),
        grad.name(),
        state.name()
    ))
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
pub fn reduce_entry(kind: Reduction, dtype: Dtype) -> String {
    let k = match kind {
        Reduction::Sum => "sum",
        Reduction::SumSq => "sumsq",
        Reduction::MaxAbs => "maxabs",
    };
    format!("adamant_reduce_{k}_{}", dtype.name())
}

/// Entry name of the non-finite scan for gradients of `grad`.
pub fn nonfinite_entry(grad: Dtype) -> String {
    format!("adamant_nonfinite_{}", grad.name())
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
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::SIZE];
        put_u64(&mut b, 0, self.src);
        put_u64(&mut b, 8, self.err);
        put_u64(&mut b, 16, self.out);
        put_u64(&mut b, 24, self.status);
        put_u64(&mut b, 32, self.len);
        put_u64(&mut b, 40, self.peer_stride);
        put_u64(&mut b, 48, self.src_chunk_stride);
        put_u32(&mut b, 56, self.chunks);
        put_u32(&mut b, 60, self.nodes);
        put_u32(&mut b, 64, self.peers);
        put_u32(&mut b, 68, self.group_len);
        put_u32(&mut b, 72, self.bits);
        put_u32(&mut b, 76, self.src_bits);
        put_u32(&mut b, 80, self.err_storage);
        put_u32(&mut b, 84, self.reset);
        put_u32(&mut b, 88, self.rule);
        put_u32(&mut b, 92, self.err_beta.to_bits());
        put_u32(&mut b, 96, self.one_minus_err_beta.to_bits());
        put_u32(&mut b, 100, self.divisor.to_bits());
        b
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

impl QuantSource {
    fn suffix(self) -> &'static str {
        match self {
            QuantSource::Grad(d) => d.name(),
            QuantSource::Packed => "packed",
        }
    }
}

/// Module (PTX file stem) of the quantizer kernels.
pub const QUANT_MODULE: &str = "quant";

/// Entry name of the pre-scan of a compress launch: `adamant_quant_check_<src>`.
pub fn quant_check_entry(src: QuantSource) -> String {
    format!("adamant_quant_check_{}", src.suffix())
}

/// Entry name of a compress kernel: `adamant_quant_compress_<src>`.
pub fn quant_compress_entry(src: QuantSource) -> String {
    format!("adamant_quant_compress_{}", src.suffix())
}

/// Entry name of the pre-scan of a decompress launch.
pub const QUANT_DECOMPRESS_CHECK_ENTRY: &str = "adamant_quant_decompress_check";
/// Entry name of the decompress kernel.
pub const QUANT_DECOMPRESS_ENTRY: &str = "adamant_quant_decompress";
