//! LoCo, the Low-bit Communication Adaptor (Xie et al., arXiv 2407.04480, TPAMI 2025), as
//! merged into DeepSpeed's ZeRO++ (`all_to_all_loco_quant_reduce`): every gradient goes out as
//! 4-bit codes, and a moving average of past compression errors is added back before the next
//! compression, so the exchanged gradients lose no quality.
//!
//! adamant provides the shard-local kernels; the trainer's collective moves the bytes:
//!
//! ```text
//! plan = loco.begin()
//! compress(plan, grad, err_intra)          -> packed (one chunk per destination)
//!   all_to_all(packed)                      (the framework: NCCL, XLA, MPI)
//! [two hops: reduce_hop(plan, received, err_inter) -> packed2 ; all_to_all(packed2) among nodes]
//! decompress_reduce(received)              -> this rank's shard of the averaged gradient
//! loco.commit(plan)
//! ```
//!
//! ## Arithmetic (f32, nearest even, no FMA; see [`crate::quant`] and [`crate::feedback`])
//! Per element of a compressed group, with `e_old` the stored error (or 0 at a reset step):
//! ```text
//! 1. x = g + e_old
//! 2. absmax/scale/inv_scale of the group; q = clamp(rne(x*scale), -8, 7); x̂ = f32(q)*inv_scale
//! 3. e_new = err_beta*e_old + one_minus_err_beta*(x - x̂)      (loco_error_elem)
//! 4. store e_new: f32, or 8-bit (its own group absmax/scale, DeepSpeed's default)
//! ```
//! `err_beta` is rounded once to f32 and `one_minus_err_beta = f32(1 - err_beta)` is computed in
//! f64 and rounded once (the contract's scalar recipe; DeepSpeed computes `1.0f - err_beta` in
//! f32, which differs in the last bit for 0.8). DeepSpeed forms `x` and the hop sum with fp16
//! additions and rounds the error to fp16 before persisting it; adamant keeps f32 throughout.
//!
//! Reduction: `decompress_reduce` sums the peers' dequantized contributions in rank order,
//! `s = +0.0; for r in 0..count: s = s + deQ_r`, then divides once by the world size (f32);
//! every rank folding the same bytes gets the same bits. With two hops the intermediate
//! `reduce_hop` folds the local ranks' chunks the same way, adds its own error buffer and
//! re-compresses (DeepSpeed's `loco_quantized_reduction`); the final division is by the world
//! size (DeepSpeed divides by the number of nodes and leaves the local sum unaveraged).
//!
//! ## Layout
//! The local gradient (`len` elements, `len % world == 0`) is cut into `world` shards of
//! `shard_len = len / world`; shard `k` is owned by rank `k` (rank `k = node*local + j`).
//! Every shard is packed on its own (groups restart at shard boundaries) into a chunk of
//! [`crate::quant::packed_len`]`(shard_len, group_len, 4)` bytes. One hop (`nodes = 1`): chunk
//! `c` of `compress`'s output is shard `c`. Two hops (`nodes > 1`, `local = world/nodes`):
//! chunk `c = j*nodes + n` is shard `n*local + j`, so the intra-node all-to-all hands local rank
//! `j` the `nodes` shards it forwards, and after `reduce_hop` its chunk `n` goes to node `n`.
//! The intra error buffer follows the gradient's element order (f32: `len` values; 8-bit: one
//! packed chunk per shard, shard order); the inter error buffer covers the `nodes` shards a
//! rank forwards (`nodes*shard_len` values, or `nodes` 8-bit chunks), in node order.
//!
//! ## Reset
//! At steps `1, 1 + reset_every, 1 + 2*reset_every, ...` every error buffer of this compressor
//! is read as zero (so buffers need not be zeroed by the caller); `reset_every = 0` never resets
//! after step 1. DeepSpeed instead keeps one module-global counter over compressed *tensors*
//! and re-zeroes the buffers of whichever tensor is being compressed when the counter passes
//! `reset_T` (1024): one tensor every `reset_T + 1` tensor compressions, so which tensor resets
//! when depends on how many tensors a step compresses and in which order. Here a reset is a
//! per-step event, the same for every tensor and every rank.

use crate::error::{beta, Buffer, ConfigError, Hyper, LayoutError, QuantError};
use crate::feedback::{
    bad_grad_or_error, check_err, ef_compress_chunk, err_chunk, error_len, first_bad, ErrorBuf,
    ErrorRule, ErrorStorage, FoldBase, SliceBase,
};
use crate::quant::{check_len, check_scales, Bits, QuantLayout};
use crate::scalars::to_f32;
use crate::store::Element;

/// LoCo hyper-parameters. Defaults: DeepSpeed's `zeropp_loco_param` (`err_beta 0.8`, reset
/// period 1024, here in steps), 4-bit gradients, 8-bit error storage, groups of 512.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocoConfig {
    /// Weight of the error history, in `[0, 1)`; `0` is classic error feedback.
    pub err_beta: f64,
    /// Elements per quantization group (> 0).
    pub group_len: usize,
    /// Bit width of the exchanged codes (DeepSpeed: 4).
    pub bits: Bits,
    /// Error-buffer storage (DeepSpeed: 8-bit).
    pub error_storage: ErrorStorage,
    /// Reset period in steps (0: never after the first step).
    pub reset_every: u64,
}

impl LocoConfig {
    /// DeepSpeed's defaults with groups of 512.
    pub const fn deepspeed() -> LocoConfig {
        LocoConfig {
            err_beta: 0.8,
            group_len: 512,
            bits: Bits::Four,
            error_storage: ErrorStorage::Int8,
            reset_every: 1024,
        }
    }

    /// `err_beta` in `[0, 1)`, `group_len > 0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        beta(Hyper::ErrBeta, self.err_beta)?;
        if self.group_len == 0 {
            return Err(ConfigError::OutOfRange {
                which: Hyper::BlockLen,
                value: 0.0,
            });
        }
        Ok(())
    }

    /// The error rule: `err_beta` and `1 - err_beta` (f64, rounded once) as f32.
    pub fn rule(&self) -> ErrorRule {
        ErrorRule::Ema {
            err_beta: to_f32(self.err_beta),
            one_minus_err_beta: to_f32(1.0 - self.err_beta),
        }
    }
}

impl Default for LocoConfig {
    fn default() -> Self {
        LocoConfig::deepspeed()
    }
}

/// LoCo's scalar state: compressed steps so far (stable encoding: 8 bytes little-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocoState {
    /// Steps committed.
    pub step: u64,
}

impl LocoState {
    /// Stable byte encoding for checkpoints.
    pub fn to_bytes(&self) -> [u8; 8] {
        self.step.to_le_bytes()
    }
    /// Inverse of [`LocoState::to_bytes`].
    pub fn from_bytes(b: [u8; 8]) -> Self {
        LocoState {
            step: u64::from_le_bytes(b),
        }
    }
}

/// Everything one step's kernels need, decided before anything is written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocoPlan {
    /// The step being compressed (1-based; the counter's value after commit).
    pub step: u64,
    /// Whether this step reads every error buffer as zero.
    pub reset: bool,
    /// The error update.
    pub rule: ErrorRule,
    /// Error storage expected of the buffers.
    pub error_storage: ErrorStorage,
}

/// A LoCo compressor: hyper-parameters plus the step counter. Error buffers belong to the
/// caller (lengths from [`LocoLayout`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Loco {
    /// Hyper-parameters (validated by [`Loco::new`]).
    pub config: LocoConfig,
    /// Scalar state.
    pub state: LocoState,
}

impl Loco {
    /// Validate `config` and start at step 0.
    pub fn new(config: LocoConfig) -> Result<Loco, ConfigError> {
        config.validate()?;
        Ok(Loco {
            config,
            state: LocoState::default(),
        })
    }

    /// Plan the next step; writes nothing.
    pub fn begin(&self) -> Result<LocoPlan, ConfigError> {
        let t = crate::step::next_step(self.state.step)?;
        let r = self.config.reset_every;
        let reset = t == 1 || (r != 0 && (t - 1) % r == 0);
        Ok(LocoPlan {
            step: t,
            reset,
            rule: self.config.rule(),
            error_storage: self.config.error_storage,
        })
    }

    /// Record that `plan`'s compression was done on every tensor.
    pub fn commit(&mut self, plan: &LocoPlan) {
        self.state.step = plan.step;
    }

    /// The layout of a `len`-element tensor over `world` ranks on `nodes` nodes.
    pub fn layout(
        &self,
        len: usize,
        world: usize,
        nodes: usize,
    ) -> Result<LocoLayout, LayoutError> {
        LocoLayout::new(len, world, nodes, self.config.group_len, self.config.bits)
    }
}

/// How one tensor is sharded and packed (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocoLayout {
    /// Elements of the local gradient.
    pub len: usize,
    /// Ranks.
    pub world: usize,
    /// Nodes (`1`: one hop; `> 1`: intra-node then inter-node).
    pub nodes: usize,
    /// Elements per group.
    pub group_len: usize,
    /// Code width.
    pub bits: Bits,
}

impl LocoLayout {
    /// Validate: `world > 0`, `nodes > 0`, `world % nodes == 0`, `len % world == 0`,
    /// `group_len > 0` ([`LayoutError::BadBlocks`] otherwise).
    pub fn new(
        len: usize,
        world: usize,
        nodes: usize,
        group_len: usize,
        bits: Bits,
    ) -> Result<LocoLayout, LayoutError> {
        if world == 0 || nodes == 0 || world % nodes != 0 {
            return Err(LayoutError::BadBlocks {
                len: world,
                block_len: nodes,
            });
        }
        if len % world != 0 {
            return Err(LayoutError::BadBlocks {
                len,
                block_len: world,
            });
        }
        QuantLayout::new(len / world, group_len, bits)?;
        Ok(LocoLayout {
            len,
            world,
            nodes,
            group_len,
            bits,
        })
    }
    /// Ranks per node.
    pub const fn local(&self) -> usize {
        self.world / self.nodes
    }
    /// Elements per shard.
    pub const fn shard_len(&self) -> usize {
        self.len / self.world
    }
    /// One shard's packed layout.
    pub const fn chunk(&self) -> QuantLayout {
        QuantLayout {
            len: self.shard_len(),
            group_len: self.group_len,
            bits: self.bits,
        }
    }
    /// Bytes of one packed chunk.
    pub const fn chunk_len(&self) -> usize {
        self.chunk().packed_len()
    }
    /// Bytes `compress` writes (and the first all-to-all moves per rank).
    pub const fn compress_len(&self) -> usize {
        self.world * self.chunk_len()
    }
    /// Bytes `reduce_hop` writes (two hops only).
    pub const fn hop_len(&self) -> usize {
        self.nodes * self.chunk_len()
    }
    /// Chunks `decompress_reduce` folds: `world` with one hop, `nodes` with two.
    pub const fn final_count(&self) -> usize {
        if self.nodes == 1 {
            self.world
        } else {
            self.nodes
        }
    }
    /// Bytes `decompress_reduce` reads.
    pub const fn received_len(&self) -> usize {
        self.final_count() * self.chunk_len()
    }
    /// Length of the intra (compress) error buffer.
    pub const fn error_len(&self, storage: ErrorStorage) -> usize {
        error_len(storage, self.shard_len(), self.world, self.group_len)
    }
    /// Length of the inter (second hop) error buffer.
    pub const fn inter_error_len(&self, storage: ErrorStorage) -> usize {
        error_len(storage, self.shard_len(), self.nodes, self.group_len)
    }
    /// The shard held by chunk `c` of `compress`'s output.
    pub const fn shard_of_chunk(&self, c: usize) -> usize {
        let j = c / self.nodes;
        let n = c % self.nodes;
        n * self.local() + j
    }
}

fn check_storage(plan: &LocoPlan, err: &ErrorBuf<'_>) -> Result<(), QuantError> {
    if err.storage() != plan.error_storage {
        return Err(QuantError::WrongStorage {
            buffer: Buffer::ErrorFeedback,
        });
    }
    Ok(())
}

/// Compress this rank's gradient: for every chunk `c` (shard `k = shard_of_chunk(c)`),
/// `x = g + e`, 4-bit codes into chunk `c` of `packed`, LoCo's error update into the intra
/// error buffer. Errors, before anything is written: wrong lengths or storage, a non-finite
/// gradient or `g + e`, a bad 8-bit error scale.
pub fn compress<G: Element>(
    plan: &LocoPlan,
    layout: &LocoLayout,
    grad: &[G],
    mut err: ErrorBuf<'_>,
    packed: &mut [u8],
) -> Result<(), QuantError> {
    let chunk = layout.chunk();
    let s = layout.shard_len();
    check_storage(plan, &err)?;
    check_len(Buffer::Grad, layout.len, grad.len())?;
    check_len(Buffer::Packed, layout.compress_len(), packed.len())?;
    check_err(&err, &chunk, layout.world, plan.reset)?;
    // One screen of `g + e` per shard, in element order (shard k holds elements k*s..).
    for k in 0..layout.world {
        let base = SliceBase(&grad[k * s..(k + 1) * s]);
        let e = err_chunk(&mut err, &chunk, k);
        if let Some(i) = first_bad(&chunk, &base, &e, plan.reset) {
            return Err(bad_grad_or_error(grad, k * s + i));
        }
    }
    for (c, out) in packed.chunks_mut(layout.chunk_len()).enumerate() {
        let k = layout.shard_of_chunk(c);
        let base = SliceBase(&grad[k * s..(k + 1) * s]);
        let mut e = err_chunk(&mut err, &chunk, k);
        ef_compress_chunk(&chunk, &base, &mut e, plan.reset, plan.rule, out);
    }
    Ok(())
}

/// Reference path of [`compress`] for f32 errors: one element at a time with plain indexed
/// loops and no shared engine. Gives the same bits (tested); f32 storage only.
#[allow(clippy::needless_range_loop)] // an indexed loop on purpose: the plain reading
pub fn compress_reference(
    plan: &LocoPlan,
    layout: &LocoLayout,
    grad: &[f32],
    err: &mut [f32],
    packed: &mut [u8],
) -> Result<(), QuantError> {
    check_len(Buffer::Grad, layout.len, grad.len())?;
    check_len(Buffer::ErrorFeedback, layout.len, err.len())?;
    check_len(Buffer::Packed, layout.compress_len(), packed.len())?;
    let e_old = |i: usize, err: &[f32]| if plan.reset { 0.0 } else { err[i] };
    for i in 0..layout.len {
        if !(grad[i] + e_old(i, err)).is_finite() {
            return Err(QuantError::NonFinite {
                buffer: if grad[i].is_finite() {
                    Buffer::ErrorFeedback
                } else {
                    Buffer::Grad
                },
                index: i,
            });
        }
    }
    let (b, omb) = match plan.rule {
        ErrorRule::Ema {
            err_beta,
            one_minus_err_beta,
        } => (err_beta, one_minus_err_beta),
        ErrorRule::Plain => (0.0, 1.0),
    };
    let chunk = layout.chunk();
    let cl = layout.chunk_len();
    for v in packed.iter_mut() {
        *v = 0;
    }
    for c in 0..layout.world {
        let k = layout.shard_of_chunk(c);
        let out = &mut packed[c * cl..(c + 1) * cl];
        for g in 0..chunk.groups() {
            let (start, end) = chunk.group_range(g);
            let mut absmax = 0.0f32;
            for i in start..end {
                let x = grad[k * chunk.len + i] + e_old(k * chunk.len + i, err);
                let a = f32::from_bits(x.to_bits() & 0x7FFF_FFFF);
                if a > absmax {
                    absmax = a;
                }
            }
            let (scale, inv) = crate::quant::group_scale(absmax, chunk.bits);
            for i in start..end {
                let gi = k * chunk.len + i;
                let eo = e_old(gi, err);
                let x = grad[gi] + eo;
                let q = crate::quant::quantize_elem(x, scale, chunk.bits);
                let x_hat = (q as f32) * inv;
                let d = x - x_hat;
                err[gi] = b * eo + omb * d;
                let j = i - start;
                let at = chunk.group_code_offset(g);
                match chunk.bits {
                    Bits::Eight => out[at + j] = q as u8,
                    Bits::Four => {
                        let shift = if j % 2 == 0 { 4 } else { 0 };
                        out[at + j / 2] |= ((q as u8) & 0x0F) << shift;
                    }
                }
            }
            crate::quant::write_f32(out, chunk.scales_offset() + 4 * g, inv);
        }
    }
    Ok(())
}

/// Second hop (two-hop layouts, on rank `(node, j)`): `received` holds the intra-node
/// all-to-all output, `local` blocks in local-rank order, each the `nodes` chunks that rank
/// sent to `j`. For every node `n`: `y = fold_r(deQ_r) + e_inter` (rank-order fold over the
/// local ranks), 4-bit codes into chunk `n` of `packed` (sent to node `n`), LoCo's error update
/// into the inter error buffer. Errors before anything is written.
pub fn reduce_hop(
    plan: &LocoPlan,
    layout: &LocoLayout,
    received: &[u8],
    mut err_inter: ErrorBuf<'_>,
    packed: &mut [u8],
) -> Result<(), QuantError> {
    let chunk = layout.chunk();
    let cl = layout.chunk_len();
    let (nodes, local) = (layout.nodes, layout.local());
    check_storage(plan, &err_inter)?;
    check_len(Buffer::Packed, layout.compress_len(), received.len())?;
    check_len(Buffer::Packed, layout.hop_len(), packed.len())?;
    check_err(&err_inter, &chunk, nodes, plan.reset)?;
    check_scales(Buffer::Packed, received, &chunk, layout.world)?;
    // Chunk (r, n) sits at block r, position n: stride `nodes` chunks between ranks.
    let base_for = |n: usize| FoldBase {
        received,
        layout: chunk,
        first: n,
        stride: nodes,
        count: local,
        divisor: None,
    };
    for n in 0..nodes {
        let base = base_for(n);
        let e = err_chunk(&mut err_inter, &chunk, n);
        if let Some(i) = first_bad(&chunk, &base, &e, plan.reset) {
            return Err(QuantError::NonFinite {
                buffer: Buffer::Packed,
                index: n * chunk.len + i,
            });
        }
    }
    for (n, out) in packed.chunks_mut(cl).enumerate() {
        let base = base_for(n);
        let mut e = err_chunk(&mut err_inter, &chunk, n);
        ef_compress_chunk(&chunk, &base, &mut e, plan.reset, plan.rule, out);
    }
    Ok(())
}

/// Final reduction of this rank's shard: `received` holds `final_count()` chunks in rank
/// order (one hop: all ranks; two hops: all nodes); `out[i] = fold_r(deQ_r[i]) / world`
/// (rank-order fold from `+0.0`, one f32 division by the world size). Errors before anything
/// is written: wrong lengths, bad scales, an overflowing sum.
pub fn decompress_reduce(
    layout: &LocoLayout,
    received: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    let chunk = layout.chunk();
    let count = layout.final_count();
    crate::quant::dequantize_reduce(received, &chunk, count, layout.world as f32, out)
}

/// The sum without the division (`fold_r deQ_r`), for callers that average elsewhere.
pub fn decompress_sum(
    layout: &LocoLayout,
    received: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    let chunk = layout.chunk();
    let count = layout.final_count();
    crate::quant::dequantize_reduce(received, &chunk, count, 1.0, out)
}
