//! Device results against core, bit for bit, on a real GPU. The bodies live in
//! `adamant_cuda::conformance` and are shared with the PTX simulator's tests; without a CUDA
//! driver or device each test prints that it skipped (and why) and passes.

use adamant_cuda::backend::{Backend, BackendError};
use adamant_cuda::conformance;
use adamant_cuda::driver::CudaBackend;

fn gpu() -> Option<CudaBackend> {
    match CudaBackend::new(0) {
        Ok(b) => Some(b),
        Err(BackendError::NoDevice(why)) => {
            eprintln!("skipping GPU test: no CUDA device ({why})");
            None
        }
        Err(e) => panic!("CUDA is present but unusable: {e}"),
    }
}

#[test]
fn gpu_updates_match_core_bit_for_bit() {
    let Some(mut b) = gpu() else { return };
    let (cases, elems) = conformance::update_matrix(&mut b, false).expect("update matrix");
    eprintln!(
        "{}: {cases} update launches, {elems} elements identical to core",
        b.name()
    );
    assert!(cases > 100);
}

#[test]
fn gpu_reductions_match_core_bit_for_bit() {
    let Some(mut b) = gpu() else { return };
    let elems = conformance::reduce_matrix(&mut b).expect("reductions");
    eprintln!("reductions: {elems} elements identical to core");
}

#[test]
fn gpu_quantizers_match_core_bit_for_bit() {
    let Some(mut b) = gpu() else { return };
    let c = conformance::quant::quant_matrix(&mut b, false).expect("quant matrix");
    eprintln!("{}: quantizers {c:?}", b.name());
    assert!(c.cases > 200 && c.refused > 20);
}

#[test]
fn gpu_adam_mini_matches_core_bit_for_bit() {
    let Some(mut b) = gpu() else { return };
    let (cases, elems) = conformance::adam_mini_matrix(&mut b, false).expect("adam-mini matrix");
    eprintln!("adam-mini: {cases} steps, {elems} values identical to core");
    assert!(cases > 40);
}

#[test]
fn gpu_clipping_matches_core_bit_for_bit() {
    let Some(mut b) = gpu() else { return };
    let (cases, n) = conformance::clip_matrix(&mut b).expect("clip matrix");
    eprintln!("clipping: {cases} cases, {n} values identical to core");
}
