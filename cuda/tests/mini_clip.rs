//! Adam-mini and clipping on the host side: how `MiniPlan` cuts tensors into segments and
//! per-element runs, the launch sequence of a step, and that argument errors launch nothing.

use adamant_core::clip::{AdaGcConfig, GlobalNormClip};
use adamant_core::{AdamMiniConfig, BlockLayout, Dtype, Segment};
use adamant_cuda::args::{
    self, ClipBuffers, ClipHyper, MiniHyper, MiniPlan, MiniTensor, ReduceEntry, CHUNK, TILE,
};
use adamant_cuda::backend::{BackendError, LaunchShape, ParamValue};
use adamant_cuda::ops::{self, Launcher, MiniLaunch, OpError, ReduceInputs, StepRefs};

#[derive(Default)]
struct Recorder {
    launches: Vec<(String, String, LaunchShape, Vec<ParamValue>)>,
}

impl Launcher for Recorder {
    fn launch_kernel(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError> {
        self.launches
            .push((module.into(), entry.into(), shape, params.to_vec()));
        Ok(())
    }
}

fn refs() -> StepRefs {
    StepRefs {
        lr: 0x1000,
        step: 0x2000,
        grad_scale: 0,
        found_inf: 0x4000,
    }
}

const SEGS: [Segment; 3] = [
    Segment::Element { len: 8 },
    Segment::Blocks {
        len: 48,
        block_len: 16,
    },
    Segment::Blocks {
        len: 2 * 5000,
        block_len: 5000,
    },
];

fn model() -> Vec<MiniTensor<'static>> {
    vec![
        MiniTensor {
            param: 0x10_0000,
            grad: 0x20_0000,
            exp_avg: 0x30_0000,
            exp_avg_sq: 0x40_0000,
            numel: 4 * 37,
            layout: BlockLayout::Rows { row_len: 37 },
            weight_decay: true,
            sr_index_offset: 0,
            clip_coef: 0,
        },
        MiniTensor {
            param: 0x50_0000,
            grad: 0x60_0000,
            exp_avg: 0x70_0000,
            exp_avg_sq: 0x80_0000,
            numel: 8 + 48 + 10_000,
            layout: BlockLayout::Segments(&SEGS),
            weight_decay: false,
            sr_index_offset: 1000,
            clip_coef: 0x9000,
        },
    ]
}

#[test]
fn spec_plan_cuts_layouts_into_segments_and_element_runs() {
    // (param f32, grad bf16, state bf16)
    let plan = MiniPlan::build(&model(), (4, 2, 2), 0xA0_0000).unwrap();
    assert_eq!(plan.segments.len(), 3, "rows merge into one segment");
    let rows = plan.segments[0];
    assert_eq!((rows.n, rows.block_len, rows.blocks()), (148, 37, 4));
    assert_eq!(rows.weight_decay, 1);
    let s16 = plan.segments[1];
    // The 16-element blocks start after the 8-element run: addresses move by 8 elements,
    // the state by 8 entries, the SR index by 8.
    assert_eq!(s16.param, 0x50_0000 + 8 * 4);
    assert_eq!(s16.grad, 0x60_0000 + 8 * 2);
    assert_eq!(s16.exp_avg, 0x70_0000 + 8 * 2);
    assert_eq!(s16.exp_avg_sq, 0x80_0000 + 8 * 2);
    assert_eq!(s16.sr_index_offset, 1008);
    assert_eq!((s16.clip_coef, s16.weight_decay), (0x9000, 0));
    let s5000 = plan.segments[2];
    assert_eq!(s5000.exp_avg_sq, 0x80_0000 + (8 + 3) * 2);
    assert_eq!(s5000.tiles_per_block(), 2);
    // Units: blocks 4 + 3 + 2, tiles 4 + 3 + 2*2, chunks 1 + 1 + 1.
    assert_eq!(plan.total_blocks, 9);
    assert_eq!(plan.total_tiles, 11);
    assert_eq!(plan.total_chunks, 3);
    let starts: Vec<(u64, u64, u64)> = plan
        .segments
        .iter()
        .map(|s| (s.chunk_start, s.tile_start, s.block_start))
        .collect();
    assert_eq!(starts, [(0, 0, 0), (1, 4, 4), (2, 7, 7)]);
    // Scratch: 9 block scales, then 11 partials.
    assert_eq!(plan.scratch_bytes, 4 * (9 + 11));
    assert_eq!(s16.scale, 0xA0_0000 + 4 * 4);
    assert_eq!(s5000.partials, 0xA0_0000 + 4 * 9 + 4 * 7);
    // The 8-element run goes to the Adam kernels without weight decay.
    assert!(plan.elements_decay.is_empty());
    assert_eq!(plan.elements_plain.len(), 1);
    let e = plan.elements_plain[0];
    assert_eq!(
        (e.param, e.state1, e.n, e.sr_index_offset),
        (0x50_0000, 0x80_0000, 8, 1000)
    );
    assert_eq!(plan.scan.len(), 2);
    assert_eq!(plan.scan[1].n, 10_056);
    const { assert!(TILE < 5000 && CHUNK > 10_000) };
}

#[test]
fn spec_plan_rejects_bad_layouts_before_building() {
    let mut m = model();
    m[0].layout = BlockLayout::Rows { row_len: 5 }; // 148 is not a multiple of 5
    assert!(MiniPlan::build(&m, (4, 2, 2), 0).is_err());
    m[0].layout = BlockLayout::Rows { row_len: 0 };
    assert!(MiniPlan::build(&m, (4, 2, 2), 0).is_err());
}

#[test]
fn spec_a_mini_step_is_scan_statistics_blocks_elements_adam_commit() {
    let plan = MiniPlan::build(&model(), (4, 2, 2), 0xA0_0000).unwrap();
    let launch = MiniLaunch::from_plan(&plan, 0xB000, 0, 0, 0xC000);
    let mut r = Recorder::default();
    let hyper = MiniHyper::from_config(&AdamMiniConfig::default());
    ops::mini_step(
        &mut r,
        (Dtype::F32, Dtype::Bf16, Dtype::Bf16),
        &launch,
        &refs(),
        &hyper,
        true,
    )
    .unwrap();
    let names: Vec<&str> = r.launches.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(
        names,
        [
            "adamant_nonfinite_bf16",
            "adamant_mini_sumsq_bf16",
            "adamant_mini_block_bf16",
            "adamant_mini_f32_bf16_bf16",
            "adamant_adam_f32_bf16_bf16",
            "adamant_step_commit"
        ]
    );
    let grids: Vec<u32> = r.launches.iter().map(|l| l.2.grid.0).collect();
    assert_eq!(&grids[1..4], [11, 9, 3]);
    // The element run is AdamW with weight decay 0 (the tensor has none).
    let ParamValue::Bytes { bytes, .. } = &r.launches[4].3[8] else {
        panic!()
    };
    assert_eq!(bytes, &hyper.element_hyper(false).to_bytes());
    assert_eq!(f64::from_le_bytes(bytes[24..32].try_into().unwrap()), 0.0);
    assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 1);
    // Statistics, blocks and elements pass the segment table and their own unit counts.
    for (k, total) in [(1, 11u64), (2, 9), (3, 3)] {
        assert_eq!(r.launches[k].0, "adam_mini");
        assert_eq!(r.launches[k].3[0], ParamValue::U64(0xB000));
        assert_eq!(r.launches[k].3[2], ParamValue::U32(3));
        assert_eq!(r.launches[k].3[3], ParamValue::U64(total));
    }
}

#[test]
fn spec_mini_errors_launch_nothing() {
    let plan = MiniPlan::build(&model(), (4, 2, 2), 0xA0_0000).unwrap();
    let hyper = MiniHyper::from_config(&AdamMiniConfig::default());
    let good = MiniLaunch::from_plan(&plan, 0xB000, 0, 0, 0xC000);
    type Case = (MiniLaunch, StepRefs, (Dtype, Dtype, Dtype), bool);
    let cases: Vec<Case> = vec![
        (good, refs(), (Dtype::F32, Dtype::F32, Dtype::F16), false),
        (
            MiniLaunch {
                segments: 0,
                ..good
            },
            refs(),
            (Dtype::F32, Dtype::F32, Dtype::F32),
            false,
        ),
        (
            MiniLaunch {
                segments: 0xB004,
                ..good
            },
            refs(),
            (Dtype::F32, Dtype::F32, Dtype::F32),
            false,
        ),
        (
            good,
            StepRefs { lr: 0, ..refs() },
            (Dtype::F32, Dtype::F32, Dtype::F32),
            false,
        ),
        (
            good,
            StepRefs {
                found_inf: 0,
                ..refs()
            },
            (Dtype::F32, Dtype::F32, Dtype::F32),
            true,
        ),
    ];
    for (k, (l, rf, dt, check)) in cases.into_iter().enumerate() {
        let mut r = Recorder::default();
        let e = ops::mini_step(&mut r, dt, &l, &rf, &hyper, check).unwrap_err();
        assert!(
            matches!(
                e,
                OpError::InvalidArgument(_) | OpError::UnsupportedDtype(_)
            ),
            "case {k}: {e:?}"
        );
        assert!(r.launches.is_empty(), "case {k} launched {:?}", r.launches);
    }
}

fn clip_buffers(count: u64) -> ClipBuffers {
    ClipBuffers {
        sums: 0x1_0000,
        count,
        scratch: 0x2_0000,
        coefs: 0x3_0000,
        gamma: 0x4_0000,
        gamma_next: 0x5_0000,
        clip_step: 0x6_0000,
        record: 0x7_0000,
    }
}

#[test]
fn spec_clip_sequence_and_errors() {
    let mut entries = vec![
        ReduceEntry {
            x: 0x100,
            n: 5000,
            out: 0x200,
            tile_start: 0,
        },
        ReduceEntry {
            x: 0x300,
            n: 10,
            out: 0x400,
            tile_start: 0,
        },
    ];
    let tiles = args::assign_tiles(&mut entries);
    assert_eq!(tiles, 3);
    let inputs = ReduceInputs::Table {
        addr: 0x8000,
        count: 2,
        total_tiles: tiles,
    };
    let hyper = ClipHyper::adagc(&AdaGcConfig::default());
    let mut r = Recorder::default();
    ops::clip_coefficients(
        &mut r,
        Dtype::F16,
        &inputs,
        0x9000,
        &clip_buffers(2),
        &hyper,
    )
    .unwrap();
    ops::clip_commit(&mut r, &clip_buffers(2), 0x4000, &hyper).unwrap();
    let names: Vec<&str> = r.launches.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(
        names,
        [
            "adamant_clip_sumsq_f16",
            "adamant_clip_tensor_sums",
            "adamant_clip_coefs",
            "adamant_clip_commit"
        ]
    );
    assert_eq!(r.launches[0].2.grid.0, 3);
    assert_eq!(r.launches[1].2.grid.0, 2);
    assert_eq!(r.launches[2].2.grid.0, 1);
    assert_eq!(r.launches[0].3[4], ParamValue::U64(0x9000));
    // Global-norm clipping needs no gamma and commits nothing.
    let global = ClipHyper::global_norm(&GlobalNormClip::new(1.0).unwrap());
    let no_gamma = ClipBuffers {
        gamma: 0,
        gamma_next: 0,
        clip_step: 0,
        ..clip_buffers(2)
    };
    let mut r = Recorder::default();
    ops::clip_coefficients(&mut r, Dtype::F32, &inputs, 0, &no_gamma, &global).unwrap();
    ops::clip_commit(&mut r, &no_gamma, 0x4000, &global).unwrap();
    assert_eq!(r.launches.len(), 3);
    // Errors launch nothing: count mismatch, AdaGC without gamma, unknown mode.
    let bad_mode = ClipHyper { mode: 3, ..hyper };
    for (bufs, h) in [
        (clip_buffers(3), hyper),
        (no_gamma, hyper),
        (clip_buffers(2), bad_mode),
    ] {
        let mut r = Recorder::default();
        assert!(matches!(
            ops::clip_coefficients(&mut r, Dtype::F32, &inputs, 0, &bufs, &h),
            Err(OpError::InvalidArgument(_))
        ));
        assert!(r.launches.is_empty());
    }
    let mut r = Recorder::default();
    assert!(ops::clip_commit(&mut r, &no_gamma, 0, &hyper).is_err());
    assert!(r.launches.is_empty());
}
