//! The host-side encoders of the CUDA tables (`adamant_cuda_adam_mini_*`,
//! `adamant_cuda_clip_*`: size queries and encodes) never allocate: a counting global
//! allocator sees zero allocations on this thread across valid and failing calls.

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
fn spec_table_encoders_do_not_allocate() {
    // Rows over 40000 elements (several tiles per block), a bias, merged block segments.
    let lens = [40000usize, 9, 96];
    let mut p: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.5; n]).collect();
    let g: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.25; n]).collect();
    let mut m: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
    let mut v: Vec<Vec<f32>> = [8usize, 9, 3].iter().map(|&n| vec![0.0; n]).collect();
    let segs = [
        adamant_block_segment {
            len: 32,
            block_len: 32,
        },
        adamant_block_segment {
            len: 64,
            block_len: 32,
        },
    ];
    let l = |kind, block_len, wd| adamant_block_layout {
        kind,
        block_len,
        segments: segs.as_ptr(),
        segment_count: 2,
        weight_decay: wd,
    };
    let layouts = [l(1, 5000, 1), l(0, 0, 0), l(4, 0, 1)];
    let pv: Vec<adamant_tensor> = p.iter_mut().map(|x| view(x)).collect();
    let gv: Vec<adamant_const_tensor> = g.iter().map(|x| cview(x)).collect();
    let mv: Vec<adamant_tensor> = m.iter_mut().map(|x| view(x)).collect();
    let vv: Vec<adamant_tensor> = v.iter_mut().map(|x| view(x)).collect();
    let mut table = vec![0u64; 4096];
    let mut scratch = vec![0.0f32; 4096];
    let mut desc = adamant_cuda_adam_mini_table::default();
    let (mut tb, mut sl) = (0usize, 0usize);
    let (mut cb, mut cl) = (0usize, 0usize);
    let mut cdesc = core::mem::MaybeUninit::<adamant_cuda_clip_table>::uninit();
    let mut statuses = [adamant_status::Panic; 10];
    let n = allocations(|| {
        // SAFETY: live host arrays and buffers of the declared lengths (the views' data are
        // never dereferenced by the encoders).
        unsafe {
            let lp = layouts.as_ptr();
            let tp: *mut u8 = table.as_mut_ptr().cast();
            statuses[0] = adamant_cuda_adam_mini_table_bytes(lp, pv.as_ptr(), 3, &mut tb);
            statuses[1] = adamant_cuda_adam_mini_scratch_len(lp, pv.as_ptr(), 3, &mut sl);
            let enc = |sl: usize, out: *mut adamant_cuda_adam_mini_table| {
                adamant_cuda_adam_mini_table_encode(
                    lp,
                    pv.as_ptr(),
                    gv.as_ptr(),
                    mv.as_ptr(),
                    vv.as_ptr(),
                    core::ptr::null(),
                    3,
                    scratch.as_ptr().cast_mut(),
                    sl,
                    tp,
                    tb,
                    out,
                )
            };
            statuses[2] = enc(sl, &mut desc);
            statuses[3] = enc(sl + 1, &mut desc);
            statuses[4] = adamant_cuda_clip_table_bytes(3, &mut cb);
            statuses[5] = adamant_cuda_clip_scratch_len(gv.as_ptr(), 3, &mut cl);
            statuses[6] = adamant_cuda_clip_table_encode(
                gv.as_ptr(),
                3,
                scratch.as_mut_ptr(),
                cl,
                table.as_mut_ptr().cast(),
                cb,
                cdesc.as_mut_ptr(),
            );
            statuses[7] = adamant_cuda_clip_table_encode(
                gv.as_ptr(),
                3,
                scratch.as_mut_ptr(),
                cl + 1,
                table.as_mut_ptr().cast(),
                cb,
                cdesc.as_mut_ptr(),
            );
            statuses[8] =
                adamant_cuda_adam_mini_table_bytes(core::ptr::null(), pv.as_ptr(), 3, &mut tb);
            statuses[9] = adamant_cuda_clip_scratch_len(gv.as_ptr(), 0, &mut cl);
        }
    });
    use adamant_status as S;
    assert_eq!(
        statuses,
        [
            S::Ok,
            S::Ok,
            S::Ok,
            S::LengthMismatch,
            S::Ok,
            S::Ok,
            S::Ok,
            S::LengthMismatch,
            S::NullPointer,
            S::LengthMismatch
        ]
    );
    assert_eq!(n, 0, "the encoders allocated");
    // The calls did real work: rows of 5000 (2 tiles each) merged into one segment, one
    // bias run, the block segments merged into one.
    assert_eq!(
        (desc.segment_count, desc.plain_count, desc.scan_count),
        (2, 1, 3)
    );
    assert_eq!(desc.total_blocks, 8 + 3);
    assert_eq!(desc.total_tiles, 8 * 2 + 3);
    assert_eq!(sl, 11 + 19);
    assert_eq!((cb, cl), (96, 9 + 10 + 1 + 1));
}
