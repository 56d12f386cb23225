//! The launch sequence and argument marshalling of `ops`, with a launcher that records
//! launches instead of running them: order (scan, update, commit), parameter values, launch
//! shapes, and that every argument error is reported before anything is launched.

use adamant_core::{AdamConfig, Dtype};
use adamant_cuda::args::{self, AdamHyper, Reduction, TensorEntry, CHUNK};
use adamant_cuda::backend::{BackendError, LaunchShape, ParamValue};
use adamant_cuda::ops::{self, Launcher, OpError, ReduceInputs, StepRefs, Tensors};

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
        grad_scale: 0x3000,
        found_inf: 0x4000,
    }
}

#[test]
fn spec_a_step_is_scan_then_update_then_commit() {
    let mut r = Recorder::default();
    let one = TensorEntry {
        param: 0x10000,
        grad: 0x20000,
        state0: 0x30000,
        state1: 0x40000,
        n: 3 * CHUNK + 1,
        ..TensorEntry::default()
    };
    let hyper = AdamHyper::from_config(&AdamConfig::adamw());
    ops::adam_step(
        &mut r,
        (Dtype::Bf16, Dtype::F16, Dtype::F32),
        &Tensors::One(one),
        &refs(),
        &hyper,
        false,
    )
    .unwrap();
    let names: Vec<&str> = r.launches.iter().map(|l| l.1.as_str()).collect();
    // A loss scale turns the scan on, as in core.
    assert_eq!(
        names,
        [
            "adamant_nonfinite_f16",
            "adamant_adam_bf16_f16_f32",
            "adamant_step_commit"
        ]
    );
    let (module, _, shape, params) = &r.launches[1];
    assert_eq!(module, "adam");
    assert_eq!(shape.grid, (4, 1, 1));
    assert_eq!(shape.block, (256, 1, 1));
    assert_eq!(params[0], ParamValue::U64(0));
    assert_eq!(params[1], ParamValue::from_struct(8, one.to_bytes()));
    assert_eq!(params[2], ParamValue::U32(1));
    assert_eq!(params[3], ParamValue::U64(4));
    assert_eq!(
        &params[4..8],
        &[0x1000, 0x2000, 0x3000, 0x4000].map(ParamValue::U64)
    );
    assert_eq!(params[8], ParamValue::from_struct(8, hyper.to_bytes()));
    assert_eq!(
        r.launches[2].3,
        vec![ParamValue::U64(0x2000), ParamValue::U64(0x4000)]
    );
}

#[test]
fn spec_no_scan_without_checking_or_loss_scale() {
    let mut r = Recorder::default();
    let rf = StepRefs {
        grad_scale: 0,
        found_inf: 0,
        ..refs()
    };
    let t = Tensors::Table {
        addr: 0x8000,
        count: 3,
        total_chunks: 100_000,
    };
    let hyper = args::LionHyper::from_config(&adamant_core::LionConfig::official());
    ops::lion_step(
        &mut r,
        (Dtype::F32, Dtype::F32, Dtype::Bf16),
        &t,
        &rf,
        &hyper,
        false,
    )
    .unwrap();
    let names: Vec<&str> = r.launches.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(names, ["adamant_lion_f32_f32_bf16", "adamant_step_commit"]);
    assert_eq!(r.launches[0].2.grid.0 as u64, args::MAX_GRID);
}

#[test]
fn spec_errors_launch_nothing() {
    let hyper = AdamHyper::from_config(&AdamConfig::adamw());
    let one = Tensors::One(TensorEntry {
        n: 10,
        ..TensorEntry::default()
    });
    type Case = (Tensors, StepRefs, (Dtype, Dtype, Dtype), bool);
    let cases: Vec<Case> = vec![
        (one, refs(), (Dtype::F32, Dtype::F32, Dtype::F16), false),
        (
            one,
            StepRefs { lr: 0, ..refs() },
            (Dtype::F32, Dtype::F32, Dtype::F32),
            false,
        ),
        (
            one,
            StepRefs { step: 0, ..refs() },
            (Dtype::F32, Dtype::F32, Dtype::F32),
            false,
        ),
        (
            one,
            StepRefs {
                found_inf: 0,
                grad_scale: 0,
                ..refs()
            },
            (Dtype::F32, Dtype::F32, Dtype::F32),
            true,
        ),
        (
            Tensors::Table {
                addr: 0x8004,
                count: 1,
                total_chunks: 1,
            },
            refs(),
            (Dtype::F32, Dtype::F32, Dtype::F32),
            false,
        ),
        (
            Tensors::Table {
                addr: 0x8000,
                count: 0,
                total_chunks: 1,
            },
            refs(),
            (Dtype::F32, Dtype::F32, Dtype::F32),
            false,
        ),
        (
            Tensors::One(TensorEntry {
                n: 10,
                chunk_start: 1,
                ..TensorEntry::default()
            }),
            refs(),
            (Dtype::F32, Dtype::F32, Dtype::F32),
            false,
        ),
    ];
    for (k, (t, rf, dt, check)) in cases.into_iter().enumerate() {
        let mut r = Recorder::default();
        let e = ops::adam_step(&mut r, dt, &t, &rf, &hyper, check).unwrap_err();
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

#[test]
fn spec_chunk_and_tile_assignment() {
    let mut es: Vec<TensorEntry> = [5u64, 0, CHUNK, CHUNK + 1]
        .iter()
        .map(|&n| TensorEntry {
            n,
            ..TensorEntry::default()
        })
        .collect();
    assert_eq!(args::assign_chunks(&mut es), 4); // 1 + 0 + 1 + 2 chunks
    let starts: Vec<u64> = es.iter().map(|e| e.chunk_start).collect();
    assert_eq!(starts, [0, 1, 1, 2]);
    assert_eq!(ops::combine_scratch_len(1), 0);
    assert_eq!(ops::combine_scratch_len(4096), 1);
    assert_eq!(ops::combine_scratch_len(4097), 2 + 1);
}

#[test]
fn spec_combine_runs_one_level_per_4096() {
    let mut r = Recorder::default();
    let at = ops::combine(&mut r, Reduction::SumSq, 0x1000, 5000, 0x9000).unwrap();
    // 5000 -> 2 -> 1: two launches of the f32 sum (partials are already squared).
    let names: Vec<&str> = r.launches.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(names, ["adamant_reduce_sum_f32", "adamant_reduce_sum_f32"]);
    assert_eq!(at, 0x9000 + 8);
    let mut r = Recorder::default();
    assert_eq!(
        ops::combine(&mut r, Reduction::MaxAbs, 0x1000, 1, 0).unwrap(),
        0x1000
    );
    assert!(r.launches.is_empty());
    assert!(ops::partials(
        &mut r,
        Reduction::Sum,
        Dtype::F32,
        &ReduceInputs::Table {
            addr: 0,
            count: 1,
            total_tiles: 1
        }
    )
    .is_err());
}
