//! Without an NVIDIA driver or GPU, every entry point returns the distinct "no CUDA device"
//! error (never a panic, never a crash). On a machine with a GPU this test says so and only
//! checks that the probe succeeds.

use adamant_cuda::args::{AdamHyper, Reduction, TensorEntry};
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
    let b = adamant_cuda::driver::CudaBackend::new(0);
    assert!(matches!(
        b,
        Err(adamant_cuda::backend::BackendError::NoDevice(_))
    ));
}
