//! The Adam-mini, AdaGC and LoCo entry points never allocate: a counting global allocator
//! sees zero allocations on this thread across their calls (valid and failing).

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
fn spec_no_allocation_in_adam_mini_adagc_loco() {
    let n = 8192;
    let (mut p, g, mut m) = (vec![0.5f32; n], vec![0.25f32; n], vec![0.0f32; n]);
    let mut v = vec![0.0f32; 64];
    let (mut p2, g2, mut m2, mut v2) = (
        vec![0.5f32; 100],
        vec![0.1f32; 100],
        vec![0.0f32; 100],
        vec![0.0f32; 3],
    );
    let segs = [
        adamant_block_segment {
            len: 64,
            block_len: 32,
        },
        adamant_block_segment {
            len: 36,
            block_len: 36,
        },
    ];
    let layouts = [
        adamant_block_layout {
            kind: 1,
            block_len: 128,
            segments: core::ptr::null(),
            segment_count: 0,
            weight_decay: 1,
        },
        adamant_block_layout {
            kind: 4,
            block_len: 0,
            segments: segs.as_ptr(),
            segment_count: 2,
            weight_decay: 0,
        },
    ];
    let cfg = adamant_adam_mini_config_default();
    let opts = adamant_step_options_default();
    let coefs = [0.5f32, 1.0];
    let mut parts = [0.0f32; 2];
    let mut vb = [0.0f32; 1];
    let adagc = adamant_adagc_config_default();
    let sums = [1.0f32, 4.0];
    let mut gamma = [0.0f32; 2];
    let mut cf = [0.0f32; 2];
    let loco = adamant_loco_config_default();
    let mut sizes = adamant_loco_sizes::default();
    // SAFETY: valid pointers (sizes are read before the counted region).
    unsafe { adamant_loco_layout_sizes(&loco, n, 2, 1, &mut sizes) };
    let mut err = vec![0u8; sizes.error_len];
    let mut packed = vec![0u8; sizes.compress_len];
    let mut avg = vec![0.0f32; sizes.shard_len];
    let count = allocations(|| {
        let mut out = 0u64;
        let mut norm = 0.0f32;
        // SAFETY: valid views and arrays over live vectors.
        unsafe {
            assert_eq!(
                adamant_adam_mini_step(
                    &cfg,
                    &opts,
                    0,
                    &layouts[0],
                    view(&mut p),
                    cview(&g),
                    view(&mut m),
                    view(&mut v),
                    &mut out
                ),
                adamant_status::Ok
            );
            let ps = [view(&mut p), view(&mut p2)];
            let gs = [cview(&g), cview(&g2)];
            let ms = [view(&mut m), view(&mut m2)];
            let vs = [view(&mut v), view(&mut v2)];
            assert_eq!(
                adamant_adam_mini_step_multi(
                    &cfg,
                    &opts,
                    1,
                    layouts.as_ptr(),
                    ps.as_ptr(),
                    gs.as_ptr(),
                    ms.as_ptr(),
                    vs.as_ptr(),
                    coefs.as_ptr(),
                    2,
                    &mut out
                ),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_adam_mini_step_multi(
                    &cfg,
                    &opts,
                    1,
                    layouts.as_ptr(),
                    ps.as_ptr(),
                    gs.as_ptr(),
                    vs.as_ptr(),
                    ms.as_ptr(),
                    coefs.as_ptr(),
                    2,
                    &mut out
                ),
                adamant_status::LengthMismatch
            );
            assert_eq!(
                adamant_adam_mini_partials(&opts, cview(&g[..4096]), parts.as_mut_ptr(), 1),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_adam_mini_block_step(
                    &cfg,
                    &opts,
                    2,
                    3.0,
                    8192,
                    0,
                    1,
                    view(&mut p[..4096]),
                    cview(&g[..4096]),
                    view(&mut m[..4096]),
                    view(&mut vb),
                    &mut out
                ),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_adagc_coefs(
                    &adagc,
                    0,
                    sums.as_ptr(),
                    2,
                    gamma.as_ptr(),
                    2,
                    cf.as_mut_ptr(),
                    &mut norm
                ),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_adagc_commit(&adagc, 0, sums.as_ptr(), 2, gamma.as_mut_ptr(), 2, &mut out),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_loco_compress(
                    &loco,
                    0,
                    2,
                    1,
                    cview(&g),
                    err.as_mut_ptr().cast(),
                    err.len(),
                    packed.as_mut_ptr(),
                    packed.len(),
                    &mut out
                ),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_loco_decompress_reduce(
                    &loco,
                    n,
                    2,
                    1,
                    packed.as_ptr(),
                    packed.len(),
                    avg.as_mut_ptr(),
                    avg.len()
                ),
                adamant_status::Ok
            );
            assert_eq!(
                adamant_quantize(cview(&g), 512, 8, packed.as_mut_ptr(), 1),
                adamant_status::LengthMismatch
            );
        }
    });
    assert_eq!(count, 0);
}
