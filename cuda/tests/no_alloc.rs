//! The success path of every launch builder allocates nothing on the host (issue #5: "kernels
//! launched on a borrowed CUstream, never allocating ... on the step path"). A counting global
//! allocator (this binary's own) sees zero allocations on this thread while `ops::*` queue
//! whole steps through a recording launcher that itself allocates nothing: it checks each
//! entry against the committed PTX's entry list (listed before counting starts) and packs the
//! parameters with the driver's own packing (`driver::PackedParams`, what `StreamLauncher`
//! hands to `cuLaunchKernel`) into a buffer reserved before counting. The recorded launches
//! are then compared with the expected entries and parameter words.

use adamant_core::clip::{AdaGcConfig, GlobalNormClip};
use adamant_core::feedback::{ErrorStorage, ShardLayout};
use adamant_core::loco::{LocoConfig, LocoLayout, LocoPlan};
use adamant_core::quant::{Bits, QuantLayout};
use adamant_core::Segment;
use adamant_core::{AdamConfig, AdamMiniConfig, BlockLayout, Dtype, LionConfig, SgdConfig};
use adamant_cuda::args::{
    self, AdamHyper, ClipBuffers, ClipHyper, LionHyper, MiniHyper, MiniPlan, MiniTensor,
    ReduceEntry, Reduction, Rule, SgdHyper, TensorEntry, TILE,
};
use adamant_cuda::backend::{BackendError, LaunchShape, ParamValue, MAX_PARAM_BYTES};
use adamant_cuda::driver::{PackedParams, MAX_PARAMS, MAX_PARAM_WORDS};
use adamant_cuda::ops::{self, Launcher, MiniLaunch, ReduceInputs, StepRefs, Tensors};
use adamant_cuda::ptx;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn counted() {
    if COUNTING.with(|c| c.get()) {
        COUNT.with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        counted();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        counted();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        counted();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, new_size) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Allocations on this thread while `f` runs.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(|c| c.get())
}

/// One recorded launch: indices into the PTX entry lists, the shape, and the packed words.
#[derive(Clone, Copy, Debug)]
struct Launch {
    module: usize,
    entry: usize,
    shape: LaunchShape,
    params: usize,
    words: (usize, usize),
}

/// A launcher that allocates nothing: everything it needs is reserved up front.
struct Recorder {
    /// `(module, entries)` of every committed PTX module.
    ptx: Vec<(&'static str, Vec<&'static str>)>,
    launches: Vec<Launch>,
    words: Vec<u64>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            ptx: ptx::MODULES
                .iter()
                .map(|m| (m.name, ptx::entries(m.ptx).collect()))
                .collect(),
            launches: Vec::with_capacity(256),
            words: Vec::with_capacity(256 * MAX_PARAM_WORDS),
        }
    }

    fn clear(&mut self) {
        self.launches.clear();
        self.words.clear();
    }

    /// `(module, entry)` names of the recorded launches.
    fn names(&self) -> Vec<(&'static str, &'static str)> {
        self.launches
            .iter()
            .map(|l| (self.ptx[l.module].0, self.ptx[l.module].1[l.entry]))
            .collect()
    }

    fn entries(&self) -> Vec<&'static str> {
        self.names().into_iter().map(|n| n.1).collect()
    }

    /// The packed parameter words of launch `i`, one parameter after the other.
    fn words(&self, i: usize) -> &[u64] {
        let (a, b) = self.launches[i].words;
        &self.words[a..b]
    }
}

impl Launcher for Recorder {
    fn launch_kernel(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError> {
        let m = self.ptx.iter().position(|(name, _)| *name == module);
        let Some(m) = m else {
            return Err(BackendError::Failed(format!("no module {module}")));
        };
        let Some(e) = self.ptx[m].1.iter().position(|name| *name == entry) else {
            return Err(BackendError::Failed(format!(
                "no entry {entry} in {module}"
            )));
        };
        let packed = PackedParams::pack(params)?;
        let start = self.words.len();
        for i in 0..packed.len() {
            let w = packed.words(i);
            if self.words.len() + w.len() > self.words.capacity()
                || self.launches.len() == self.launches.capacity()
            {
                return Err(BackendError::Failed("recorder full".into()));
            }
            self.words.extend_from_slice(w);
        }
        self.launches.push(Launch {
            module: m,
            entry: e,
            shape,
            params: packed.len(),
            words: (start, self.words.len()),
        });
        Ok(())
    }
}

fn refs(grad_scale: u64) -> StepRefs {
    StepRefs {
        lr: 0x1000,
        step: 0x2000,
        grad_scale,
        found_inf: 0x4000,
    }
}

fn entry_words(e: &TensorEntry) -> [u64; 8] {
    [
        e.param,
        e.grad,
        e.state0,
        e.state1,
        e.n,
        e.sr_index_offset,
        e.clip_coef,
        e.chunk_start,
    ]
}

fn le_words(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()
}

#[test]
fn rule_steps_allocate_nothing() {
    let mut r = Recorder::new();
    let one = TensorEntry {
        param: 0x10_0000,
        grad: 0x20_0000,
        state0: 0x30_0000,
        state1: 0x40_0000,
        n: 40_000,
        sr_index_offset: 5,
        clip_coef: 0x5000,
        chunk_start: 0,
    };
    let table = Tensors::Table {
        addr: 0x9000,
        count: 7,
        total_chunks: 19,
    };
    let adam = AdamHyper::from_config(&AdamConfig::adamw());
    let sgd = SgdHyper::from_config(&SgdConfig {
        momentum: 0.9,
        nesterov: true,
        ..SgdConfig::new(0.1)
    });
    let lion = LionHyper::from_config(&LionConfig::default());
    let (bf, f) = (Dtype::Bf16, Dtype::F32);
    let n = allocations(|| {
        ops::adam_step(
            &mut r,
            (bf, bf, f),
            &Tensors::One(one),
            &refs(0x3000),
            &adam,
            true,
        )
        .unwrap();
        ops::sgd_step(&mut r, (f, Dtype::F16, bf), &table, &refs(0), &sgd, false).unwrap();
        ops::lion_step(&mut r, (f, f, f), &table, &refs(0), &lion, true).unwrap();
        ops::step(
            &mut r,
            Rule::Adam,
            (f, f, f),
            &table,
            &refs(0),
            &adam.to_bytes(),
            false,
        )
        .unwrap();
        ops::update(
            &mut r,
            Rule::Sgd,
            (bf, f, f),
            &table,
            &refs(0),
            &sgd.to_bytes(),
        )
        .unwrap();
        ops::nonfinite_scan(&mut r, Dtype::F16, &table, 0x4000).unwrap();
        ops::commit(&mut r, &refs(0)).unwrap();
    });
    assert_eq!(n, 0, "allocations while queueing rule steps");
    assert_eq!(
        r.entries(),
        [
            "adamant_nonfinite_bf16",
            "adamant_adam_bf16_bf16_f32",
            "adamant_step_commit",
            "adamant_sgd_f32_f16_bf16",
            "adamant_step_commit",
            "adamant_nonfinite_f32",
            "adamant_lion_f32_f32_f32",
            "adamant_step_commit",
            "adamant_adam_f32_f32_f32",
            "adamant_step_commit",
            "adamant_sgd_bf16_f32_f32",
            "adamant_nonfinite_f16",
            "adamant_step_commit",
        ]
    );
    // The update launch's words, field by field (args.rs table): table 0, the entry by value,
    // count 1, chunks ceil(40000 / 16384) = 3, lr, step, grad_scale, found_inf, hyper.
    let mut want = vec![0u64];
    want.extend(entry_words(&one));
    want.extend([1, 3, 0x1000, 0x2000, 0x3000, 0x4000]);
    want.extend(le_words(&adam.to_bytes()));
    assert_eq!(r.words(1), want);
    assert_eq!(r.launches[1].params, 9);
    assert_eq!(r.launches[1].shape, ops::shape_for(3));
    // A table launch: address, an all-zero entry, count, total chunks, then as above.
    let mut want = vec![0x9000u64];
    want.extend([0; 8]);
    want.extend([7, 19, 0x1000, 0x2000, 0, 0x4000]);
    want.extend(le_words(&sgd.to_bytes()));
    assert_eq!(r.words(3), want);
    assert_eq!(r.words(4), [0x2000, 0x4000], "commit: step, found_inf");
    r.clear();
}

#[test]
fn reductions_allocate_nothing() {
    let mut r = Recorder::new();
    let one = ReduceEntry {
        x: 0x100,
        n: 10_000,
        out: 0x200,
        tile_start: 0,
    };
    let table = ReduceInputs::Table {
        addr: 0x8000,
        count: 3,
        total_tiles: 12,
    };
    let m = 3 * TILE * TILE + 5; // three combine levels
    let mut result = 0;
    let n = allocations(|| {
        for kind in [Reduction::Sum, Reduction::SumSq, Reduction::MaxAbs] {
            ops::partials(&mut r, kind, Dtype::Bf16, &ReduceInputs::One(one)).unwrap();
            ops::partials(&mut r, kind, Dtype::F16, &table).unwrap();
        }
        result = ops::combine(&mut r, Reduction::SumSq, 0x1_0000, m, 0x9_0000).unwrap();
    });
    assert_eq!(n, 0, "allocations while queueing reductions");
    let e = r.entries();
    assert_eq!(
        e[..2],
        ["adamant_reduce_sum_bf16", "adamant_reduce_sum_f16"]
    );
    assert_eq!(
        e[4..6],
        ["adamant_reduce_maxabs_bf16", "adamant_reduce_maxabs_f16"]
    );
    assert_eq!(e[6..], ["adamant_reduce_sum_f32"; 3]);
    assert_eq!(r.words(0), [0, 0x100, 10_000, 0x200, 0, 1, 3]);
    assert_eq!(r.words(1), [0x8000, 0, 0, 0, 0, 3, 12]);
    // Level sizes m -> ceil(m / 4096) -> ... -> 1, written one after the other in scratch.
    let l1 = m.div_ceil(TILE);
    let l2 = l1.div_ceil(TILE);
    assert_eq!(r.words(6), [0, 0x1_0000, m, 0x9_0000, 0, 1, l1]);
    assert_eq!(r.words(7), [0, 0x9_0000, l1, 0x9_0000 + 4 * l1, 0, 1, l2]);
    assert_eq!(result, 0x9_0000 + 4 * (l1 + l2));
    assert_eq!(ops::combine_scratch_len(m), l1 + l2 + 1);
}

const SEGS: [Segment; 2] = [
    Segment::Element { len: 8 },
    Segment::Blocks {
        len: 2 * 5000,
        block_len: 5000,
    },
];

#[test]
fn mini_and_clip_steps_allocate_nothing() {
    let tensors = [
        MiniTensor {
            param: 0x10_0000,
            grad: 0x20_0000,
            exp_avg: 0x30_0000,
            exp_avg_sq: 0x40_0000,
            numel: 10_008,
            layout: BlockLayout::Segments(&SEGS),
            weight_decay: true,
            sr_index_offset: 0,
            clip_coef: 0x9000,
        },
        MiniTensor {
            param: 0x50_0000,
            grad: 0x60_0000,
            exp_avg: 0x70_0000,
            exp_avg_sq: 0x80_0000,
            numel: 10_008,
            layout: BlockLayout::Segments(&SEGS),
            weight_decay: false,
            sr_index_offset: 10_008,
            clip_coef: 0x9004,
        },
    ];
    let plan = MiniPlan::build(&tensors, (4, 2, 4), 0xA0_0000).unwrap();
    let launch = MiniLaunch::from_plan(&plan, 0xB000, 0, 0, 0xC000);
    assert!(launch.elements_decay.is_some() && launch.elements_plain.is_some());
    let mini = MiniHyper::from_config(&AdamMiniConfig::default());
    let inputs = ReduceInputs::Table {
        addr: 0x8000,
        count: 2,
        total_tiles: 6,
    };
    let buffers = ClipBuffers {
        sums: 0x1_0000,
        count: 2,
        scratch: 0x2_0000,
        coefs: 0x3_0000,
        gamma: 0x4_0000,
        gamma_next: 0x5_0000,
        clip_step: 0x6_0000,
        record: 0x7_0000,
    };
    let adagc = ClipHyper::adagc(&AdaGcConfig::default());
    let global = ClipHyper::global_norm(&GlobalNormClip::new(1.0).unwrap());
    let one = ReduceInputs::One(ReduceEntry {
        x: 0x100,
        n: 5000,
        out: 0x200,
        tile_start: 0,
    });
    let one_buffers = ClipBuffers {
        count: 1,
        ..buffers
    };
    let mut r = Recorder::new();
    let n = allocations(|| {
        let d = (Dtype::F32, Dtype::Bf16, Dtype::F32);
        ops::mini_step(&mut r, d, &launch, &refs(0x3000), &mini, true).unwrap();
        ops::clip_coefficients(&mut r, Dtype::Bf16, &inputs, 0x3000, &buffers, &adagc).unwrap();
        ops::clip_commit(&mut r, &buffers, 0x4000, &adagc).unwrap();
        ops::clip_coefficients(&mut r, Dtype::F32, &one, 0, &one_buffers, &global).unwrap();
        ops::clip_commit(&mut r, &one_buffers, 0x4000, &global).unwrap();
    });
    assert_eq!(n, 0, "allocations while queueing Adam-mini and clipping");
    assert_eq!(
        r.entries(),
        [
            "adamant_nonfinite_bf16",
            "adamant_mini_sumsq_bf16",
            "adamant_mini_block_f32",
            "adamant_mini_f32_bf16_f32",
            "adamant_adam_f32_bf16_f32",
            "adamant_adam_f32_bf16_f32",
            "adamant_step_commit",
            "adamant_clip_sumsq_bf16",
            "adamant_clip_tensor_sums",
            "adamant_clip_coefs",
            "adamant_clip_commit",
            "adamant_clip_sumsq_f32",
            "adamant_clip_tensor_sums",
            "adamant_clip_coefs",
        ]
    );
    // The element runs carry Adam-mini's element hyper-parameters, with and without decay.
    let tail = |i: usize| r.words(i)[15..].to_vec();
    assert_eq!(tail(4), le_words(&mini.element_hyper(true).to_bytes()));
    assert_eq!(tail(5), le_words(&mini.element_hyper(false).to_bytes()));
    // Mini launches: segment table, the first segment by value, count, units, the refs, hyper.
    let mut want = vec![0xB000u64];
    want.extend(le_words(&plan.segments[0].to_bytes()));
    want.extend([2, plan.total_tiles, 0x1000, 0x2000, 0x3000, 0x4000]);
    want.extend(le_words(&mini.to_bytes()));
    assert_eq!(r.words(1), want);
    let mut want = le_words(&buffers.to_bytes());
    want.push(0x4000);
    want.extend(le_words(&adagc.to_bytes()));
    assert_eq!(r.words(10), want, "clip commit: buffers, found_inf, hyper");
    assert_eq!(r.launches[7].params, 5);
}

#[test]
fn quantizer_ops_allocate_nothing() {
    const STATUS: u64 = 0xF000;
    let q = QuantLayout::new(1000, 33, Bits::Four).unwrap();
    let q8 = QuantLayout::new(70, 64, Bits::Eight).unwrap();
    let loco = LocoLayout::new(8 * 100, 8, 2, 16, Bits::Four).unwrap();
    let c = LocoConfig {
        error_storage: ErrorStorage::Int8,
        ..LocoConfig::deepspeed()
    };
    let plan = LocoPlan {
        step: 7,
        reset: false,
        rule: c.rule(),
        error_storage: ErrorStorage::Int8,
    };
    let shards = ShardLayout::new(60, 3, 8, Bits::Four).unwrap();
    let worker = QuantLayout::new(50, 8, Bits::Four).unwrap();
    let mut r = Recorder::new();
    let n = allocations(|| {
        ops::quantize(&mut r, Dtype::Bf16, &q, 0x1002, 0x2000, STATUS).unwrap();
        ops::dequantize(&mut r, &q8, 0x1000, 0x2000, STATUS).unwrap();
        let (g, e, p) = (0x10, 0x100, 0x200);
        ops::loco_compress(&mut r, &plan, &loco, Dtype::F16, g, e, p, STATUS).unwrap();
        ops::loco_reduce_hop(&mut r, &plan, &loco, 0x1000, 0x100, 0x200, STATUS).unwrap();
        ops::loco_decompress(&mut r, &loco, 0x1000, 0x2000, true, STATUS).unwrap();
        let (x, s) = (0x1000, ErrorStorage::F32);
        ops::ef_worker_compress(&mut r, &shards, Dtype::F32, x, 0x3000, s, 0x2000, STATUS).unwrap();
        let b8 = Bits::Eight;
        ops::ef_server_compress(&mut r, &worker, b8, 0x1000, 4, 0x3000, s, 0x2000, STATUS).unwrap();
        ops::ef_decompress(&mut r, &shards, 0x1000, 0x2000, STATUS).unwrap();
    });
    assert_eq!(n, 0, "allocations while queueing quantizer launches");
    let e = r.entries();
    assert_eq!(e.len(), 16);
    assert_eq!(
        e[..2],
        ["adamant_quant_check_bf16", "adamant_quant_compress_bf16"]
    );
    assert_eq!(
        e[2..4],
        ["adamant_quant_decompress_check", "adamant_quant_decompress"]
    );
    assert_eq!(
        e[4..6],
        ["adamant_quant_check_f16", "adamant_quant_compress_f16"]
    );
    assert_eq!(
        e[6..8],
        [
            "adamant_quant_check_packed",
            "adamant_quant_compress_packed"
        ]
    );
    assert_eq!(
        e[10..12],
        ["adamant_quant_check_f32", "adamant_quant_compress_f32"]
    );
    for i in (0..16).step_by(2) {
        assert_eq!(r.names()[i].0, args::QUANT_MODULE);
        assert_eq!(r.launches[i].params, 1);
        assert_eq!(
            r.words(i),
            r.words(i + 1),
            "pre-scan and main launch, same args"
        );
        assert_eq!(r.words(i).len(), args::QuantArgs::SIZE / 8);
    }
    assert_eq!(r.words(0)[..2], [0x1002, 0], "src, err");
}

/// The packing the driver hands to `cuLaunchKernel` allocates nothing, at the limits too, and
/// refuses more parameters (or words) than its arrays hold.
#[test]
fn parameter_packing_allocates_nothing_at_the_limits() {
    let big = ParamValue::from_struct(8, [0xA5u8; MAX_PARAM_BYTES]);
    let mut params: Vec<ParamValue> = (0..MAX_PARAMS as u64).map(ParamValue::U64).collect();
    params[3] = big.clone();
    params[5] = ParamValue::F32(-0.0);
    let mut len = 0;
    let n = allocations(|| {
        let p = PackedParams::pack(&params).unwrap();
        len = p.len();
        assert_eq!(p.words(3), [0xA5A5_A5A5_A5A5_A5A5; MAX_PARAM_BYTES / 8]);
        assert_eq!(p.words(5), [0x8000_0000]);
        assert_eq!(p.words(15), [15]);
    });
    assert_eq!((n, len), (0, MAX_PARAMS));
    params.push(ParamValue::U32(1));
    assert!(
        PackedParams::pack(&params).is_err(),
        "one parameter too many"
    );
    let too_wide: Vec<ParamValue> = vec![big; MAX_PARAM_WORDS / (MAX_PARAM_BYTES / 8) + 1];
    assert!(too_wide.len() <= MAX_PARAMS);
    assert!(
        PackedParams::pack(&too_wide).is_err(),
        "more words than the buffer"
    );
}
