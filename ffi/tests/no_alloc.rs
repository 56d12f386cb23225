//! The step, reduction and clipping entry points never allocate: a counting global
//! allocator sees zero allocations on this thread across single- and multi-tensor calls of
//! every rule (and on error paths).
//!
//! Scope of the guarantee (see `ffi/src/threads.rs`): after the process's first call (which
//! reads `ADAMANT_NUM_THREADS`, the CPU features and the core count once), a step allocates
//! nothing when it runs on the calling thread: one thread configured, or tensors shorter than
//! two grains (131072 elements). A longer tensor on several threads starts scoped threads,
//! which allocates their stacks; `spec_threads_allocate_only_when_splitting` pins both sides.

mod common;
use adamant::*;
use common::{cview, view};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(|c| c.get())
}

#[test]
fn spec_no_allocation_on_step_paths() {
    // The once-per-process reads (environment, CPU features, core count).
    assert!(adamant_num_threads() >= 1);
    let n = 10_000;
    let (mut p, g, mut m, mut v) = (
        vec![0.5f32; n],
        vec![0.25f32; n],
        vec![0.0f32; n],
        vec![0.0f32; n],
    );
    let (mut p2, g2, mut m2, mut v2) = (
        vec![0.5f32; 77],
        vec![0.25f32; 77],
        vec![0.0f32; 77],
        vec![0.0f32; 77],
    );
    let mut parts = vec![0.0f32; adamant_reduce_tile_count(n) + adamant_reduce_tile_count(77)];
    let adam = adamant_adamw_config_default();
    let lion = adamant_lion_config_default();
    let mut sgd = adamant_sgd_config_default();
    sgd.momentum = 0.9;
    let mut opt = adamant_step_options_default();
    opt.check_finite = 1;
    opt.has_clip_coef = 1;
    opt.clip_coef = 0.5;
    let k = allocations(|| {
        let mut out = 0u64;
        let ps = [view(&mut p), view(&mut p2)];
        let gs = [cview(&g), cview(&g2)];
        let ms = [view(&mut m), view(&mut m2)];
        let vs = [view(&mut v), view(&mut v2)];
        // SAFETY: views over live vectors; arrays of two views.
        unsafe {
            assert_eq!(
                adamant_adamw_step(&adam, &opt, 0, ps[0], gs[0], ms[0], vs[0], &mut out),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_adamw_step_multi(
                    &adam,
                    &opt,
                    1,
                    ps.as_ptr(),
                    gs.as_ptr(),
                    ms.as_ptr(),
                    vs.as_ptr(),
                    2,
                    &mut out
                ),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_adam_step_multi(
                    &adam,
                    &opt,
                    2,
                    ps.as_ptr(),
                    gs.as_ptr(),
                    ms.as_ptr(),
                    vs.as_ptr(),
                    2,
                    &mut out
                ),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_lion_step_multi(
                    &lion,
                    &opt,
                    0,
                    ps.as_ptr(),
                    gs.as_ptr(),
                    ms.as_ptr(),
                    2,
                    &mut out
                ),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_sgd_step_multi(
                    &sgd,
                    &opt,
                    0,
                    ps.as_ptr(),
                    gs.as_ptr(),
                    vs.as_ptr(),
                    2,
                    &mut out
                ),
                adamant_status::Ok
            );
            // Error paths too.
            assert_eq!(
                adamant_adamw_step(&adam, &opt, 0, ps[0], gs[1], ms[0], vs[0], &mut out),
                adamant_status::LengthMismatch
            );
            assert_eq!(
                adamant_adamw_step(&adam, &opt, u64::MAX, ps[0], gs[0], ms[0], vs[0], &mut out),
                adamant_status::StepOverflow
            );
            let len = parts.len();
            assert_eq!(
                adamant_reduce_partials_multi(gs.as_ptr(), 2, 1, parts.as_mut_ptr(), len),
                adamant_status::Ok
            );
            let (mut s, mut c, mut nn) = (0.0f32, 0.0f32, 0.0f32);
            assert_eq!(
                adamant_reduce_combine(parts.as_ptr(), len, &mut s),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_clip_coef_global_norm(s, 1.0, 1e-6, &mut c, &mut nn),
                adamant_status::Ok
            );
            let mut f = 0u32;
            assert_eq!(
                adamant_all_finite(gs.as_ptr(), 2, &mut f),
                adamant_status::Ok
            );
        }
    });
    assert_eq!(k, 0, "allocations on the step path");
    // The counter works: a Vec allocates.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
}

/// A tensor long enough to split: no allocation with one thread, thread stacks with several.
#[test]
fn spec_threads_allocate_only_when_splitting() {
    let n = 300_000;
    let (mut p, g, mut m, mut v) = (
        vec![0.5f32; n],
        vec![0.25f32; n],
        vec![0.0f32; n],
        vec![0.0f32; n],
    );
    let adam = adamant_adamw_config_default();
    let opt = adamant_step_options_default();
    let step = |p: &mut [f32], m: &mut [f32], v: &mut [f32]| {
        let mut out = 0u64;
        // SAFETY: views over live vectors.
        let s = unsafe {
            adamant_adamw_step(
                &adam,
                &opt,
                0,
                view(p),
                cview(&g),
                view(m),
                view(v),
                &mut out,
            )
        };
        assert_eq!(s, adamant_status::Ok);
    };
    // Only this test changes the thread count, and the other test's tensors never split.
    assert_eq!(adamant_set_num_threads(1), adamant_status::Ok);
    assert_eq!(adamant_num_threads(), 1);
    assert_eq!(allocations(|| step(&mut p, &mut m, &mut v)), 0);
    assert_eq!(adamant_set_num_threads(2), adamant_status::Ok);
    assert_eq!(adamant_num_threads(), 2);
    assert!(allocations(|| step(&mut p, &mut m, &mut v)) > 0);
    assert_eq!(adamant_set_num_threads(0), adamant_status::Ok);
}

/// Encoding a CUDA tensor table (success and errors) and every argument error of a table
/// step allocate nothing: the table goes into the caller's buffer, the descriptor into the
/// caller's struct, and the kernel argument bytes are built only once the arguments passed.
#[test]
fn spec_no_allocation_encoding_cuda_tensor_tables() {
    use core::ptr::{null, null_mut};
    let n = 1000;
    let (mut p, g, mut m, mut v) = (
        vec![0.5f32; n],
        vec![0.25f32; n],
        vec![0.0f32; n],
        vec![0.0f32; n],
    );
    let (mut p2, g2, mut m2, mut v2) = (
        vec![0.5f32; 7],
        vec![0.25f32; 7],
        vec![0.0f32; 7],
        vec![0.0f32; 7],
    );
    let ps = [view(&mut p), view(&mut p2)];
    let gs = [cview(&g), cview(&g2)];
    let ms = [view(&mut m), view(&mut m2)];
    let vs = [view(&mut v), view(&mut v2)];
    let mut table = [0u8; 128];
    let blank = adamant_cuda_tensor_table {
        count: 0,
        total_chunks: 0,
        clip_coef: null(),
        rule: 0,
        param_dtype: 0,
        grad_dtype: 0,
        state_dtype: 0,
        state_count: 0,
    };
    let mut desc = blank;
    let (lr, mut step, mut found) = (1e-3f32, 0u64, 0.0f32);
    let args = adamant_cuda_step_args {
        lr: &lr,
        step: &mut step,
        grad_scale: null(),
        clip_coef: null(),
        found_inf: &mut found,
        check_finite: 1,
    };
    let cfg = adamant_adamw_config_default();
    let lion = adamant_lion_config_default();
    let dev = [0u64; 16];
    let mut statuses = [adamant_status::Ok; 6];
    let count = allocations(|| {
        // SAFETY: arrays of two views, a 128-byte table, host structs; the "device" table is
        // never dereferenced (every step call below fails its checks).
        unsafe {
            statuses[0] = adamant_cuda_tensor_table_encode(
                0,
                null(),
                ps.as_ptr(),
                gs.as_ptr(),
                ms.as_ptr(),
                vs.as_ptr(),
                2,
                table.as_mut_ptr(),
                table.len(),
                &mut desc,
            );
            statuses[1] = adamant_cuda_tensor_table_encode(
                0,
                null(),
                ps.as_ptr(),
                gs.as_ptr(),
                ms.as_ptr(),
                vs.as_ptr(),
                2,
                table.as_mut_ptr(),
                table.len() - 1,
                &mut desc,
            );
            let t = dev.as_ptr().cast();
            statuses[2] = adamant_cuda_lion_step_table(&lion, &args, &desc, t, null_mut());
            statuses[3] = adamant_cuda_adamw_step_table(
                &cfg,
                &args,
                &desc,
                t.wrapping_byte_add(4),
                null_mut(),
            );
            statuses[4] = adamant_cuda_adamw_step_table(&cfg, &args, &desc, null(), null_mut());
            statuses[5] = adamant_cuda_adamw_step_table(&cfg, &args, &blank, t, null_mut());
        }
    });
    use adamant_status as S;
    assert_eq!(
        statuses,
        [
            S::Ok,
            S::LengthMismatch,
            S::InvalidConfig,
            S::Misaligned,
            S::NullPointer,
            S::InvalidConfig
        ]
    );
    assert_eq!(
        count, 0,
        "allocations while encoding or checking a tensor table"
    );
    assert_eq!((desc.count, desc.total_chunks), (2, 2));
}
