//! Without an NVIDIA driver or GPU, every entry point returns the distinct "no CUDA device"
//! error (never a panic, never a crash). On a machine with a GPU this test says so and only
//! checks that the probe succeeds.

use adamant_cuda::args::{AdamHyper, ClipBuffers, ClipHyper, MiniHyper, Reduction, TensorEntry};
use adamant_cuda::capi;
use adamant_cuda::ops::{OpError, ReduceInputs, StepRefs, Tensors};

#[test]
fn spec_every_entry_point_reports_no_device_without_a_driver() {
    match capi::probe() {
        Ok(()) => {
            eprintln!("a CUDA device is present: the no-device path is not exercised here");
            return;
        }
        Err(OpError::NoDevice(why)) => eprintln!("no CUDA device ({why})"),
        Err(e) => panic!("probe must report NoDevice, got {e:?}"),
    }
    let tensors = Tensors::One(TensorEntry {
        n: 10,
        ..TensorEntry::default()
    });
    let refs = StepRefs {
        lr: 256,
        step: 512,
        grad_scale: 0,
        found_inf: 0,
    };
    let hyper = AdamHyper::from_config(&adamant_core::AdamConfig::adamw());
    let stream = std::ptr::null_mut();
    // SAFETY: without a driver nothing is dereferenced or launched.
    let r = unsafe { capi::adam_step_on_stream(stream, [0, 0, 0], &tensors, &refs, &hyper, false) };
    assert!(matches!(r, Err(OpError::NoDevice(_))), "{r:?}");
    // SAFETY: as above.
    let r = unsafe {
        capi::partials_on_stream(
            stream,
            Reduction::Sum,
            0,
            &ReduceInputs::One(Default::default()),
        )
    };
    assert!(matches!(r, Err(OpError::NoDevice(_))), "{r:?}");
    // SAFETY: as above.
    let r = unsafe { capi::combine_on_stream(stream, Reduction::Sum, 256, 3, 512) };
    assert!(matches!(r, Err(OpError::NoDevice(_))), "{r:?}");
    let plan = adamant_cuda::args::MiniPlan::build(
        &[adamant_cuda::args::MiniTensor {
            param: 256,
            grad: 512,
            exp_avg: 768,
            exp_avg_sq: 1024,
            numel: 8,
            layout: adamant_core::BlockLayout::Rows { row_len: 4 },
            weight_decay: true,
            sr_index_offset: 0,
            clip_coef: 0,
        }],
        (4, 4, 4),
        2048,
    )
    .unwrap();
    let launch = adamant_cuda::ops::MiniLaunch::from_plan(&plan, 0, 0, 0, 0);
    let mini = MiniHyper::from_config(&adamant_core::AdamMiniConfig::default());
    // SAFETY: as above.
    let r = unsafe { capi::mini_step_on_stream(stream, [0, 0, 0], &launch, &refs, &mini, false) };
    assert!(matches!(r, Err(OpError::NoDevice(_))), "{r:?}");
    let bufs = ClipBuffers {
        sums: 256,
        count: 1,
        scratch: 512,
        coefs: 768,
        record: 1024,
        ..ClipBuffers::default()
    };
    let global = ClipHyper::global_norm(&adamant_core::clip::GlobalNormClip::new(1.0).unwrap());
    // SAFETY: as above.
    let r = unsafe {
        capi::clip_coefficients_on_stream(
            stream,
            0,
            &ReduceInputs::One(Default::default()),
            0,
            &bufs,
            &global,
        )
    };
    assert!(matches!(r, Err(OpError::NoDevice(_))), "{r:?}");
    let adagc = ClipHyper::adagc(&adamant_core::clip::AdaGcConfig::default());
    // SAFETY: as above.
    let r = unsafe { capi::clip_commit_on_stream(stream, &bufs, 0, &adagc) };
    assert!(matches!(r, Err(OpError::NoDevice(_))), "{r:?}");
    let b = adamant_cuda::driver::CudaBackend::new(0);
    assert!(matches!(
        b,
        Err(adamant_cuda::backend::BackendError::NoDevice(_))
    ));
}
