//! One step of each rule as kernel launches, generic over whatever executes them: a
//! [`Backend`] (real GPU or PTX simulator, which wait for each launch; tests and `verify`) or
//! a [`crate::driver::StreamLauncher`] on a borrowed stream (the trainer's step path: launches
//! only, no allocation, no synchronization, no device reads on the host).
//!
//! A step is: optional non-finite scan (writes `found_inf`) -> the rule's update kernel
//! (skipped on the device when `found_inf` is set; reads `lr` and `step` from device memory)
//! -> the commit kernel (`step += 1` unless skipped). The caller zeroes `found_inf` first.
//!
//! Every function here builds its launches without allocating on the host (parameters on the
//! stack, `&'static str` entry names); only an error allocates, for its message.

use crate::args::{
    self, AdamHyper, ClipBuffers, ClipHyper, LionHyper, MiniHyper, MiniSegment, ReduceEntry,
    Reduction, Rule, SgdHyper, TensorEntry, BLOCK, MAX_GRID, TILE,
};
use crate::backend::{Backend, BackendError, LaunchShape, ParamValue};
use adamant_core::Dtype;
use core::fmt;

/// Something that can launch a kernel of an embedded module.
pub trait Launcher {
    /// Launch `entry` of module `module` (asynchronously or not, as the implementor does).
    fn launch_kernel(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError>;
}

impl<B: Backend + ?Sized> Launcher for B {
    fn launch_kernel(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError> {
        self.launch(module, entry, shape, params)
    }
}

/// A failure of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpError {
    /// No CUDA driver or device (the C ABI's "no CUDA device" status).
    NoDevice(String),
    /// A dtype combination without a kernel (state f16, or an unknown ABI code).
    UnsupportedDtype(String),
    /// An argument the kernels cannot take (null address, zero count, ...). Nothing launched.
    InvalidArgument(String),
    /// The driver (or simulator) refused a launch.
    Launch(String),
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::NoDevice(m) => write!(f, "no CUDA device: {m}"),
            OpError::UnsupportedDtype(m) => write!(f, "unsupported dtype: {m}"),
            OpError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            OpError::Launch(m) => write!(f, "launch failed: {m}"),
        }
    }
}

impl std::error::Error for OpError {}

impl From<BackendError> for OpError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NoDevice(m) => OpError::NoDevice(m),
            BackendError::Failed(m) => OpError::Launch(m),
        }
    }
}

/// The tensors of an update launch: one (passed by value, no device table) or a device table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tensors {
    /// One tensor; its `chunk_start` must be 0.
    One(TensorEntry),
    /// A device table of `count` [`TensorEntry`]s at `addr`, built with
    /// [`args::assign_chunks`], spanning `total_chunks` chunks.
    Table {
        /// Device address of the table (8-byte aligned).
        addr: u64,
        /// Entries.
        count: u32,
        /// Total chunks (the value [`args::assign_chunks`] returned).
        total_chunks: u64,
    },
}

/// The table parameters of one entry passed by value (no table): it must start at unit 0.
fn single<E>(e: E, start: u64, units: u64, what: &str) -> Result<(u64, E, u32, u64), OpError> {
    if start != 0 {
        return Err(OpError::InvalidArgument(format!("a single {what} 0")));
    }
    Ok((0, e, 1, units))
}

impl Tensors {
    fn params(&self) -> Result<(u64, TensorEntry, u32, u64), OpError> {
        match *self {
            Tensors::One(e) => single(e, e.chunk_start, e.chunks(), "tensor starts at chunk"),
            Tensors::Table {
                addr,
                count,
                total_chunks,
            } => {
                if addr == 0 || addr % 8 != 0 {
                    return Err(OpError::InvalidArgument(
                        "tensor table address is null or not 8-byte aligned".into(),
                    ));
                }
                if count == 0 {
                    return Err(OpError::InvalidArgument("empty tensor table".into()));
                }
                Ok((addr, TensorEntry::default(), count, total_chunks))
            }
        }
    }
}

/// Device addresses of the per-step values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepRefs {
    /// f32 learning rate (required).
    pub lr: u64,
    /// u64 count of steps already applied (required); the commit kernel advances it.
    pub step: u64,
    /// f32 loss scale (gradients are divided by it), 0 = none.
    pub grad_scale: u64,
    /// 32-bit `found_inf` flag, 0 = none. Required when the scan runs.
    pub found_inf: u64,
}

/// Launch shape of a chunked launch over `units` chunks or tiles.
pub fn shape_for(units: u64) -> LaunchShape {
    LaunchShape {
        grid: (units.clamp(1, MAX_GRID) as u32, 1, 1),
        block: (BLOCK, 1, 1),
        shared_bytes: 0,
    }
}

/// The first four parameters of every table launch: the table's device address (0 = one
/// entry), the entry passed by value, the entries, the launch's chunks or tiles.
fn table_params<const M: usize>(
    table: u64,
    one: [u8; M],
    count: u32,
    total: u64,
) -> [ParamValue; 4] {
    [
        ParamValue::U64(table),
        ParamValue::from_struct(8, one),
        ParamValue::U32(count),
        ParamValue::U64(total),
    ]
}

/// The nine parameters of an update launch (rule kernels and Adam-mini's three launches):
/// the table parameters, the per-step references, the hyper-parameters.
fn update_params<const M: usize>(
    (table, one, count, total): (u64, [u8; M], u32, u64),
    refs: &StepRefs,
    hyper: ParamValue,
) -> [ParamValue; 9] {
    let [p0, p1, p2, p3] = table_params(table, one, count, total);
    [
        p0,
        p1,
        p2,
        p3,
        ParamValue::U64(refs.lr),
        ParamValue::U64(refs.step),
        ParamValue::U64(refs.grad_scale),
        ParamValue::U64(refs.found_inf),
        hyper,
    ]
}

fn check_lr_step(refs: &StepRefs) -> Result<(), OpError> {
    if refs.lr == 0 || refs.step == 0 {
        return Err(OpError::InvalidArgument(
            "lr and step must be device addresses".into(),
        ));
    }
    Ok(())
}

/// Whether a step runs the finite scan (asked for, or a loss scale given, as core does); it
/// needs a `found_inf` flag.
fn scan_needed(refs: &StepRefs, check_finite: bool) -> Result<bool, OpError> {
    let scan = check_finite || refs.grad_scale != 0;
    if scan && refs.found_inf == 0 {
        return Err(OpError::InvalidArgument(
            "finite checking needs a found_inf flag".into(),
        ));
    }
    Ok(scan)
}

fn dtypes_for(rule: Rule, p: Dtype, g: Dtype, s: Dtype) -> Result<&'static str, OpError> {
    args::update_entry(rule, p, g, s).ok_or_else(|| {
        OpError::UnsupportedDtype(format!("state dtype {s} (states are f32 or bf16)"))
    })
}

/// The hyper-parameter bytes of an update launch as a by-value parameter (align 8).
fn hyper_param(hyper: &[u8]) -> Result<ParamValue, OpError> {
    ParamValue::from_slice(8, hyper).map_err(|_| {
        OpError::InvalidArgument(format!(
            "hyper-parameters of {} bytes exceed a kernel parameter",
            hyper.len()
        ))
    })
}

/// Launch one rule's update kernel (no scan, no commit). `hyper` is the rule's
/// hyper-parameter bytes ([`AdamHyper::to_bytes`], [`SgdHyper::to_bytes`],
/// [`LionHyper::to_bytes`]).
pub fn update<L: Launcher + ?Sized>(
    l: &mut L,
    rule: Rule,
    dtypes: (Dtype, Dtype, Dtype),
    tensors: &Tensors,
    refs: &StepRefs,
    hyper: &[u8],
) -> Result<(), OpError> {
    let entry = dtypes_for(rule, dtypes.0, dtypes.1, dtypes.2)?;
    let hyper = hyper_param(hyper)?;
    check_lr_step(refs)?;
    let (table, one, count, total) = tensors.params()?;
    if total == 0 {
        return Ok(());
    }
    let params = update_params((table, one.to_bytes(), count, total), refs, hyper);
    l.launch_kernel(rule.name(), entry, shape_for(total), &params)?;
    Ok(())
}

/// Launch the non-finite scan of the gradients of `tensors` into `found_inf`.
pub fn nonfinite_scan<L: Launcher + ?Sized>(
    l: &mut L,
    grad: Dtype,
    tensors: &Tensors,
    found_inf: u64,
) -> Result<(), OpError> {
    if found_inf == 0 {
        return Err(OpError::InvalidArgument(
            "the finite scan needs a found_inf flag".into(),
        ));
    }
    let (table, one, count, total) = tensors.params()?;
    if total == 0 {
        return Ok(());
    }
    let [p0, p1, p2, p3] = table_params(table, one.to_bytes(), count, total);
    let params = [p0, p1, p2, p3, ParamValue::U64(found_inf)];
    l.launch_kernel(
        "step",
        args::nonfinite_entry(grad),
        shape_for(total),
        &params,
    )?;
    Ok(())
}

/// Launch the commit: `step += 1` on the device unless `found_inf` is set.
pub fn commit<L: Launcher + ?Sized>(l: &mut L, refs: &StepRefs) -> Result<(), OpError> {
    if refs.step == 0 {
        return Err(OpError::InvalidArgument(
            "step must be a device address".into(),
        ));
    }
    let shape = LaunchShape {
        grid: (1, 1, 1),
        block: (32, 1, 1),
        shared_bytes: 0,
    };
    let params = [ParamValue::U64(refs.step), ParamValue::U64(refs.found_inf)];
    l.launch_kernel("step", args::COMMIT_ENTRY, shape, &params)?;
    Ok(())
}

/// A whole step of one rule: scan (when `check_finite`, or when a loss scale is given, as core
/// does), update, commit.
pub fn step<L: Launcher + ?Sized>(
    l: &mut L,
    rule: Rule,
    dtypes: (Dtype, Dtype, Dtype),
    tensors: &Tensors,
    refs: &StepRefs,
    hyper: &[u8],
    check_finite: bool,
) -> Result<(), OpError> {
    // Validate everything before the first launch, so an error launches nothing.
    dtypes_for(rule, dtypes.0, dtypes.1, dtypes.2)?;
    hyper_param(hyper)?;
    tensors.params()?;
    let scan = scan_needed(refs, check_finite)?;
    check_lr_step(refs)?;
    if scan {
        nonfinite_scan(l, dtypes.1, tensors, refs.found_inf)?;
    }
    update(l, rule, dtypes, tensors, refs, hyper)?;
    commit(l, refs)
}

/// A rule's typed step: [`step`] with the hyper-parameters' bytes.
macro_rules! rule_step {
    ($(#[$doc:meta])* $name:ident, $rule:expr, $hyper:ty) => {
        $(#[$doc])*
        pub fn $name<L: Launcher + ?Sized>(
            l: &mut L,
            dtypes: (Dtype, Dtype, Dtype),
            tensors: &Tensors,
            refs: &StepRefs,
            hyper: &$hyper,
            check_finite: bool,
        ) -> Result<(), OpError> {
            let hyper = hyper.to_bytes();
            step(l, $rule, dtypes, tensors, refs, &hyper, check_finite)
        }
    };
}

rule_step!(
    /// Adam/AdamW step (see [`step`]).
    adam_step, Rule::Adam, AdamHyper
);
rule_step!(
    /// SGD step (see [`step`]). Without momentum `state0` is not touched.
    sgd_step, Rule::Sgd, SgdHyper
);
rule_step!(
    /// Lion step (see [`step`]).
    lion_step, Rule::Lion, LionHyper
);

/// The inputs of a reduction launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceInputs {
    /// One buffer; `tile_start` must be 0.
    One(ReduceEntry),
    /// A device table of [`ReduceEntry`]s built with [`args::assign_tiles`].
    Table {
        /// Device address (8-byte aligned).
        addr: u64,
        /// Entries.
        count: u32,
        /// Total tiles.
        total_tiles: u64,
    },
}

impl ReduceInputs {
    /// (table, entry by value, entries, total tiles); `bad_table` names a bad table.
    fn params(&self, bad_table: &str) -> Result<(u64, ReduceEntry, u32, u64), OpError> {
        match *self {
            ReduceInputs::One(e) => single(e, e.tile_start, e.tiles(), "input starts at tile"),
            ReduceInputs::Table {
                addr,
                count,
                total_tiles,
            } => {
                if addr == 0 || addr % 8 != 0 || count == 0 {
                    return Err(OpError::InvalidArgument(bad_table.into()));
                }
                Ok((addr, ReduceEntry::default(), count, total_tiles))
            }
        }
    }
}

/// Per-tile partials (one f32 per 4096 values, in order, into each entry's `out`):
/// `adamant_core::reduce::partials_by` with `f = v` (Sum), `v*v` (SumSq), or per-tile max-abs.
pub fn partials<L: Launcher + ?Sized>(
    l: &mut L,
    kind: Reduction,
    dtype: Dtype,
    inputs: &ReduceInputs,
) -> Result<(), OpError> {
    let (table, one, count, total) = inputs.params("bad reduction table")?;
    if total == 0 {
        return Ok(());
    }
    let params = table_params(table, one.to_bytes(), count, total);
    l.launch_kernel(
        "reduce",
        args::reduce_entry(kind, dtype),
        shape_for(total),
        &params,
    )?;
    Ok(())
}

/// f32 elements of scratch [`combine`] needs for `m` partials.
pub fn combine_scratch_len(m: u64) -> u64 {
    let mut len = 0;
    let mut k = m;
    while k > 1 {
        k = k.div_ceil(TILE);
        len += k;
    }
    len
}

/// Reduce `m >= 1` partials at `partials` to one value, level by level with the tile procedure
/// (`adamant_core::reduce::combine` for Sum/SumSq, `combine_max_abs` for MaxAbs). Returns the
/// device address of the result: `partials` itself when `m == 1`, else inside `scratch`
/// (`combine_scratch_len(m)` f32s).
pub fn combine<L: Launcher + ?Sized>(
    l: &mut L,
    kind: Reduction,
    partials_addr: u64,
    m: u64,
    scratch: u64,
) -> Result<u64, OpError> {
    if m == 0 {
        return Err(OpError::InvalidArgument("nothing to combine".into()));
    }
    let kind = match kind {
        Reduction::SumSq => Reduction::Sum, // partials are already squared
        k => k,
    };
    let mut src = partials_addr;
    let mut k = m;
    let mut dst = scratch;
    while k > 1 {
        if scratch == 0 {
            return Err(OpError::InvalidArgument("combine needs scratch".into()));
        }
        let e = ReduceEntry {
            x: src,
            n: k,
            out: dst,
            tile_start: 0,
        };
        self::partials(l, kind, Dtype::F32, &ReduceInputs::One(e))?;
        src = dst;
        k = k.div_ceil(TILE);
        dst += 4 * k;
    }
    Ok(src)
}

// ---------------------------------------------------------------------------------------------
// Quantizers, LoCo and two-way error feedback (`quant` module). Each call is a pre-scan launch
// (stores f32 1.0 into `status` where core would return an error) and the main launch (writes
// nothing when `status` is set). The caller zeroes `status` before the first call of a step;
// passing the step's `found_inf` also makes an overflowed step skip compression.

use crate::args::{QuantArgs, QuantSource, QUANT_MODULE};
use adamant_core::feedback::{ErrorRule, ErrorStorage, ShardLayout};
use adamant_core::loco::{LocoLayout, LocoPlan};
use adamant_core::quant::{Bits, QuantLayout};

fn bits_u32(b: Bits) -> u32 {
    b.bits()
}

fn storage_code(s: Option<ErrorStorage>) -> u32 {
    match s {
        None => 0,
        Some(ErrorStorage::F32) => 1,
        Some(ErrorStorage::Int8) => 2,
    }
}

fn invalid(m: &str) -> OpError {
    OpError::InvalidArgument(m.into())
}

fn aligned(addr: u64, align: u64, what: &str) -> Result<(), OpError> {
    if addr == 0 || addr % align != 0 {
        return Err(OpError::InvalidArgument(format!(
            "{what} is null or not {align}-byte aligned"
        )));
    }
    Ok(())
}

/// Launch groups of a quant launch: `chunks * ceil(len / group_len)`.
fn quant_groups(a: &QuantArgs) -> u64 {
    a.chunks as u64 * a.len.div_ceil(a.group_len as u64)
}

fn check_quant_args(a: &QuantArgs, packed_src: bool, err_elem: u64) -> Result<(), OpError> {
    if a.group_len == 0 {
        return Err(invalid("group_len must be positive"));
    }
    if a.nodes == 0 || a.chunks % a.nodes != 0 {
        return Err(invalid("nodes must divide the chunks"));
    }
    for b in [a.bits, a.src_bits] {
        if b != 4 && b != 8 {
            return Err(invalid("code width must be 4 or 8 bits"));
        }
    }
    aligned(a.status, 4, "status")?;
    if quant_groups(a) == 0 {
        return Ok(());
    }
    aligned(a.src, if packed_src { 4 } else { err_elem }, "source")?;
    if packed_src && (a.peers == 0 || a.peer_stride % 4 != 0 || a.src_chunk_stride % 4 != 0) {
        return Err(invalid("peers must be > 0 with 4-byte multiple strides"));
    }
    aligned(a.out, 4, "output")?;
    if a.err_storage != 0 {
        aligned(a.err, 4, "error buffer")?;
    }
    if a.err_storage > 2 || a.rule > 1 || a.reset > 1 {
        return Err(invalid("error storage, rule or reset out of range"));
    }
    Ok(())
}

/// Launch the pre-scan and the compress kernel of `src` with `args` (see [`QuantArgs`]).
pub fn quant_compress<L: Launcher + ?Sized>(
    l: &mut L,
    src: QuantSource,
    args: &QuantArgs,
) -> Result<(), OpError> {
    let elem = match src {
        QuantSource::Grad(d) => d.size() as u64,
        QuantSource::Packed => 4,
    };
    check_quant_args(args, src == QuantSource::Packed, elem)?;
    let entries = [
        args::quant_check_entry(src),
        args::quant_compress_entry(src),
    ];
    quant_launch(l, entries, args)
}

/// Launch the pre-scan then the main kernel of a checked quant launch, one thread per group.
fn quant_launch<L: Launcher + ?Sized>(
    l: &mut L,
    entries: [&str; 2],
    args: &QuantArgs,
) -> Result<(), OpError> {
    let total = quant_groups(args);
    if total == 0 {
        return Ok(());
    }
    let params = [ParamValue::from_struct(8, args.to_bytes())];
    for entry in entries {
        l.launch_kernel(QUANT_MODULE, entry, shape_for(total), &params)?;
    }
    Ok(())
}

/// Launch the pre-scan and the decompress kernel with `args` (see [`QuantArgs`]).
pub fn quant_decompress<L: Launcher + ?Sized>(l: &mut L, args: &QuantArgs) -> Result<(), OpError> {
    check_quant_args(args, true, 4)?;
    if !(args.divisor == 0.0 || (args.divisor > 0.0 && args.divisor <= f32::MAX)) {
        return Err(invalid("the divisor must be finite and positive"));
    }
    let entries = [
        args::QUANT_DECOMPRESS_CHECK_ENTRY,
        args::QUANT_DECOMPRESS_ENTRY,
    ];
    quant_launch(l, entries, args)
}

fn u32_of(v: usize, what: &str) -> Result<u32, OpError> {
    u32::try_from(v).map_err(|_| OpError::InvalidArgument(format!("{what} exceeds 2^32 - 1")))
}

/// A core layout error as an argument error.
fn layout_error<E: fmt::Debug>(e: E) -> OpError {
    OpError::InvalidArgument(format!("{e:?}"))
}

fn quant_layout(layout: &QuantLayout) -> Result<QuantLayout, OpError> {
    QuantLayout::new(layout.len, layout.group_len, layout.bits).map_err(layout_error)
}

fn shard_layout(layout: &ShardLayout) -> Result<ShardLayout, OpError> {
    ShardLayout::new(layout.len, layout.shards, layout.group_len, layout.bits).map_err(layout_error)
}

fn base_args(len: usize, group_len: usize, bits: Bits, status: u64) -> Result<QuantArgs, OpError> {
    Ok(QuantArgs {
        status,
        len: len as u64,
        group_len: u32_of(group_len, "group_len")?,
        bits: bits_u32(bits),
        src_bits: bits_u32(bits),
        ..QuantArgs::default()
    })
}

/// `adamant_core::quant::quantize` of `layout.len` values of dtype `dtype` at `x` into the
/// packed buffer at `packed` (`layout.packed_len()` bytes, 4-byte aligned).
pub fn quantize<L: Launcher + ?Sized>(
    l: &mut L,
    dtype: Dtype,
    layout: &QuantLayout,
    x: u64,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    let q = quant_layout(layout)?;
    let a = QuantArgs {
        src: x,
        out: packed,
        chunks: 1,
        ..base_args(q.len, q.group_len, q.bits, status)?
    };
    quant_compress(l, QuantSource::Grad(dtype), &a)
}

/// `adamant_core::quant::dequantize` of the packed buffer at `packed` into `layout.len` f32
/// values at `out`.
pub fn dequantize<L: Launcher + ?Sized>(
    l: &mut L,
    layout: &QuantLayout,
    packed: u64,
    out: u64,
    status: u64,
) -> Result<(), OpError> {
    let q = quant_layout(layout)?;
    let a = QuantArgs {
        src: packed,
        out,
        chunks: 1,
        peers: 1,
        ..base_args(q.len, q.group_len, q.bits, status)?
    };
    quant_decompress(l, &a)
}

/// `a` with the error feedback of a LoCo plan: its storage, reset and rule.
fn with_plan(plan: &LocoPlan, a: QuantArgs) -> QuantArgs {
    let (rule, err_beta, one_minus_err_beta) = match plan.rule {
        ErrorRule::Plain => (0, 0.0, 1.0),
        ErrorRule::Ema {
            err_beta,
            one_minus_err_beta,
        } => (1, err_beta, one_minus_err_beta),
    };
    QuantArgs {
        err_storage: storage_code(Some(plan.error_storage)),
        reset: plan.reset as u32,
        rule,
        err_beta,
        one_minus_err_beta,
        ..a
    }
}

fn loco_layout(layout: &LocoLayout) -> Result<LocoLayout, OpError> {
    LocoLayout::new(
        layout.len,
        layout.world,
        layout.nodes,
        layout.group_len,
        layout.bits,
    )
    .map_err(layout_error)
}

/// `adamant_core::loco::compress`: this rank's gradient (`grad`, dtype `dtype`) plus the intra
/// error buffer `err` (storage `plan.error_storage`) into `world` packed chunks at `packed`.
#[allow(clippy::too_many_arguments)]
pub fn loco_compress<L: Launcher + ?Sized>(
    l: &mut L,
    plan: &LocoPlan,
    layout: &LocoLayout,
    dtype: Dtype,
    grad: u64,
    err: u64,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    let lay = loco_layout(layout)?;
    let a = QuantArgs {
        src: grad,
        err,
        out: packed,
        chunks: u32_of(lay.world, "world")?,
        nodes: u32_of(lay.nodes, "nodes")?,
        ..base_args(lay.shard_len(), lay.group_len, lay.bits, status)?
    };
    quant_compress(l, QuantSource::Grad(dtype), &with_plan(plan, a))
}

/// `adamant_core::loco::reduce_hop` (two-hop layouts): the intra-node all-to-all output at
/// `received` plus the inter error buffer `err_inter` into `nodes` packed chunks at `packed`.
pub fn loco_reduce_hop<L: Launcher + ?Sized>(
    l: &mut L,
    plan: &LocoPlan,
    layout: &LocoLayout,
    received: u64,
    err_inter: u64,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    let lay = loco_layout(layout)?;
    let cl = lay.chunk_len() as u64;
    let a = QuantArgs {
        src: received,
        err: err_inter,
        out: packed,
        peer_stride: lay.nodes as u64 * cl,
        src_chunk_stride: cl,
        chunks: u32_of(lay.nodes, "nodes")?,
        peers: u32_of(lay.local(), "local ranks")?,
        ..base_args(lay.shard_len(), lay.group_len, lay.bits, status)?
    };
    quant_compress(l, QuantSource::Packed, &with_plan(plan, a))
}

/// `adamant_core::loco::decompress_reduce` (`average = true`: divided by the world size) or
/// `decompress_sum` (`average = false`): `final_count()` chunks at `received` into
/// `shard_len` f32 values at `out`.
pub fn loco_decompress<L: Launcher + ?Sized>(
    l: &mut L,
    layout: &LocoLayout,
    received: u64,
    out: u64,
    average: bool,
    status: u64,
) -> Result<(), OpError> {
    let lay = loco_layout(layout)?;
    let a = QuantArgs {
        src: received,
        out,
        peer_stride: lay.chunk_len() as u64,
        chunks: 1,
        peers: u32_of(lay.final_count(), "ranks")?,
        // decompress_sum divides by 1.0, which leaves every fold unchanged.
        divisor: if average { lay.world as f32 } else { 0.0 },
        ..base_args(lay.shard_len(), lay.group_len, lay.bits, status)?
    };
    quant_decompress(l, &a)
}

/// `adamant_core::feedback::ef_worker_compress`: `x` (dtype `dtype`) plus the worker error
/// buffer `err` (`storage`) into `shards` packed chunks at `packed`.
#[allow(clippy::too_many_arguments)]
pub fn ef_worker_compress<L: Launcher + ?Sized>(
    l: &mut L,
    layout: &ShardLayout,
    dtype: Dtype,
    x: u64,
    err: u64,
    storage: ErrorStorage,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    let lay = shard_layout(layout)?;
    let a = QuantArgs {
        src: x,
        err,
        out: packed,
        chunks: u32_of(lay.shards, "shards")?,
        err_storage: storage_code(Some(storage)),
        ..base_args(lay.shard_len(), lay.group_len, lay.bits, status)?
    };
    quant_compress(l, QuantSource::Grad(dtype), &a)
}

/// `adamant_core::feedback::ef_server_compress`: `workers` chunks of `worker` at `received`,
/// averaged, plus the server error `err` (`storage`), into one chunk of `server_bits` at
/// `packed`.
#[allow(clippy::too_many_arguments)]
pub fn ef_server_compress<L: Launcher + ?Sized>(
    l: &mut L,
    worker: &QuantLayout,
    server_bits: Bits,
    received: u64,
    workers: usize,
    err: u64,
    storage: ErrorStorage,
    packed: u64,
    status: u64,
) -> Result<(), OpError> {
    let w = quant_layout(worker)?;
    if workers == 0 {
        return Err(invalid("no workers"));
    }
    let a = QuantArgs {
        src: received,
        err,
        out: packed,
        peer_stride: w.packed_len() as u64,
        chunks: 1,
        peers: u32_of(workers, "workers")?,
        src_bits: bits_u32(w.bits),
        err_storage: storage_code(Some(storage)),
        divisor: workers as f32,
        ..base_args(w.len, w.group_len, server_bits, status)?
    };
    quant_compress(l, QuantSource::Packed, &a)
}

/// `adamant_core::feedback::ef_decompress`: the all-gathered server chunks at `packed` into
/// `layout.len` f32 values at `out`.
pub fn ef_decompress<L: Launcher + ?Sized>(
    l: &mut L,
    layout: &ShardLayout,
    packed: u64,
    out: u64,
    status: u64,
) -> Result<(), OpError> {
    let lay = shard_layout(layout)?;
    let a = QuantArgs {
        src: packed,
        out,
        src_chunk_stride: lay.chunk_len() as u64,
        chunks: u32_of(lay.shards, "shards")?,
        peers: 1,
        ..base_args(lay.shard_len(), lay.group_len, lay.bits, status)?
    };
    quant_decompress(l, &a)
}

/// The uploaded tables of an Adam-mini step ([`args::MiniPlan`] after upload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiniLaunch {
    /// Device address of the [`MiniSegment`] table, or 0 with `one` for one segment.
    pub segments: u64,
    /// The segment used when `segments` is 0 (its starts must be 0).
    pub one: MiniSegment,
    /// Segments in the table (0: no uniform blocks).
    pub count: u32,
    /// Chunks of the element pass.
    pub total_chunks: u64,
    /// Tiles of the statistics launch.
    pub total_tiles: u64,
    /// Blocks of the block-update launch.
    pub total_blocks: u64,
    /// Per-element runs with weight decay (Adam kernels), if any.
    pub elements_decay: Option<Tensors>,
    /// Per-element runs without weight decay, if any.
    pub elements_plain: Option<Tensors>,
    /// Whole tensors for the non-finite scan (required when the scan runs).
    pub scan: Option<Tensors>,
}

impl MiniLaunch {
    /// The launch of `plan` whose tables were uploaded at these addresses (0 for an empty
    /// table; a one-entry table may be passed by value with address 0).
    pub fn from_plan(
        plan: &args::MiniPlan,
        segments: u64,
        elements_decay: u64,
        elements_plain: u64,
        scan: u64,
    ) -> MiniLaunch {
        let table = |v: &[TensorEntry], addr: u64| -> Option<Tensors> {
            match (v.len(), addr) {
                (0, _) => None,
                (1, 0) => Some(Tensors::One(v[0])),
                (n, a) => Some(Tensors::Table {
                    addr: a,
                    count: n as u32,
                    total_chunks: v.iter().map(|e| e.chunks()).sum(),
                }),
            }
        };
        MiniLaunch {
            segments: if plan.segments.len() == 1 && segments == 0 {
                0
            } else {
                segments
            },
            one: plan.segments.first().copied().unwrap_or_default(),
            count: plan.segments.len() as u32,
            total_chunks: plan.total_chunks,
            total_tiles: plan.total_tiles,
            total_blocks: plan.total_blocks,
            elements_decay: table(&plan.elements_decay, elements_decay),
            elements_plain: table(&plan.elements_plain, elements_plain),
            scan: table(&plan.scan, scan),
        }
    }

    fn check(&self) -> Result<(), OpError> {
        if self.count > 1 && (self.segments == 0 || self.segments % 8 != 0) {
            return Err(OpError::InvalidArgument(
                "segment table address is null or not 8-byte aligned".into(),
            ));
        }
        if self.segments == 0
            && self.count == 1
            && (self.one.chunk_start | self.one.tile_start | self.one.block_start) != 0
        {
            return Err(OpError::InvalidArgument(
                "a single segment starts at chunk, tile and block 0".into(),
            ));
        }
        if self.count == 1 && self.one.block_len == 0 && self.segments == 0 {
            return Err(OpError::InvalidArgument("block_len must be > 0".into()));
        }
        for t in [&self.elements_decay, &self.elements_plain, &self.scan]
            .into_iter()
            .flatten()
        {
            t.params()?;
        }
        Ok(())
    }
}

fn mini_launch<L: Launcher + ?Sized>(
    l: &mut L,
    entry: &str,
    m: &MiniLaunch,
    total: u64,
    refs: &StepRefs,
    hyper: &MiniHyper,
) -> Result<(), OpError> {
    if m.count == 0 || total == 0 {
        return Ok(());
    }
    let params = update_params(
        (m.segments, m.one.to_bytes(), m.count, total),
        refs,
        ParamValue::from_struct(8, hyper.to_bytes()),
    );
    l.launch_kernel("adam_mini", entry, shape_for(total), &params)?;
    Ok(())
}

/// An Adam-mini step (`adamant_core::rules::adam_mini::apply_tensor` over every tensor, then
/// commit), all on the device: scan (when `check_finite` or a loss scale is given), block
/// statistics (tile partials of the prepared squares), block update (combine, `exp_avg_sq`,
/// block scale), element pass, the per-element runs as AdamW, commit. Arguments are checked
/// before the first launch.
pub fn mini_step<L: Launcher + ?Sized>(
    l: &mut L,
    dtypes: (Dtype, Dtype, Dtype),
    m: &MiniLaunch,
    refs: &StepRefs,
    hyper: &MiniHyper,
    check_finite: bool,
) -> Result<(), OpError> {
    let (p, g, s) = dtypes;
    let elem = args::mini_entry(p, g, s).ok_or_else(|| {
        OpError::UnsupportedDtype(format!("state dtype {s} (states are f32 or bf16)"))
    })?;
    let block = args::mini_block_entry(s).unwrap_or_default();
    m.check()?;
    check_lr_step(refs)?;
    if scan_needed(refs, check_finite)? {
        if let Some(t) = &m.scan {
            nonfinite_scan(l, g, t, refs.found_inf)?;
        }
    }
    mini_launch(l, args::mini_sumsq_entry(g), m, m.total_tiles, refs, hyper)?;
    mini_launch(l, block, m, m.total_blocks, refs, hyper)?;
    mini_launch(l, elem, m, m.total_chunks, refs, hyper)?;
    for (t, decay) in [(&m.elements_decay, true), (&m.elements_plain, false)] {
        if let Some(t) = t {
            let h = hyper.element_hyper(decay);
            update(l, Rule::Adam, dtypes, t, refs, &h.to_bytes())?;
        }
    }
    commit(l, refs)
}

/// The clip's inputs: one [`ReduceEntry`] per tensor, in tensor order (`x` = gradients, `n`,
/// `out` = `ceil(n / 4096)` f32 partials), as a device table or one entry by value.
pub type ClipInputs = ReduceInputs;

/// Clip coefficients on the device: per-tile sums of squares of `g / grad_scale`, each
/// tensor's combine into `buffers.sums`, then the coefficients (`adamant_core::clip`:
/// [`adamant_core::clip::GlobalNormClip::coefficient`] or [`adamant_core::clip::AdaGc::plan`])
/// into `buffers.coefs` and the record. Launch before the update; the update kernels read
/// `coefs` through each tensor's `clip_coef`.
pub fn clip_coefficients<L: Launcher + ?Sized>(
    l: &mut L,
    grad: Dtype,
    inputs: &ClipInputs,
    grad_scale: u64,
    buffers: &ClipBuffers,
    hyper: &ClipHyper,
) -> Result<(), OpError> {
    let (table, one, count, total) = inputs.params("bad clip table")?;
    if buffers.count != count as u64 {
        return Err(OpError::InvalidArgument(
            "clip buffers and inputs name different tensor counts".into(),
        ));
    }
    let adagc = hyper.mode != args::ClipMode::GlobalNorm as u32;
    if buffers.sums == 0
        || buffers.scratch == 0
        || buffers.coefs == 0
        || buffers.record == 0
        || (adagc && (buffers.gamma == 0 || buffers.gamma_next == 0 || buffers.clip_step == 0))
        || hyper.mode > 2
    {
        return Err(OpError::InvalidArgument(
            "clip buffers missing for this mode".into(),
        ));
    }
    if total > 0 {
        let [p0, p1, p2, p3] = table_params(table, one.to_bytes(), count, total);
        let p = [p0, p1, p2, p3, ParamValue::U64(grad_scale)];
        l.launch_kernel("clip", args::clip_sumsq_entry(grad), shape_for(total), &p)?;
    }
    // The tensor sums take the table parameters with the sums' address for the total.
    let p = table_params(table, one.to_bytes(), count, buffers.sums);
    l.launch_kernel(
        "clip",
        args::CLIP_TENSOR_SUMS_ENTRY,
        shape_for(count as u64),
        &p,
    )?;
    l.launch_kernel(
        "clip",
        args::CLIP_COEFS_ENTRY,
        shape_for(1),
        &[
            ParamValue::from_struct(8, buffers.to_bytes()),
            ParamValue::from_struct(8, hyper.to_bytes()),
        ],
    )?;
    Ok(())
}

/// AdaGC's commit on the device (`adamant_core::clip::AdaGc::commit`): unless `found_inf` is
/// set or the record is not finite, `gamma = gamma_next` and the clip's step advances. Launch
/// after the update kernels. Nothing to do for global-norm clipping.
pub fn clip_commit<L: Launcher + ?Sized>(
    l: &mut L,
    buffers: &ClipBuffers,
    found_inf: u64,
    hyper: &ClipHyper,
) -> Result<(), OpError> {
    if hyper.mode == args::ClipMode::GlobalNorm as u32 {
        return Ok(());
    }
    if buffers.gamma == 0
        || buffers.gamma_next == 0
        || buffers.clip_step == 0
        || buffers.record == 0
    {
        return Err(OpError::InvalidArgument(
            "AdaGC commit needs gamma, gamma_next, clip_step and record".into(),
        ));
    }
    l.launch_kernel(
        "clip",
        args::CLIP_COMMIT_ENTRY,
        shape_for(1),
        &[
            ParamValue::from_struct(8, buffers.to_bytes()),
            ParamValue::U64(found_inf),
            ParamValue::from_struct(8, hyper.to_bytes()),
        ],
    )?;
    Ok(())
}
