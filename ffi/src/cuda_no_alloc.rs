//! The CUDA entry points allocate nothing on the host on their success paths either (DESIGN.md,
//! C ABI: "they never allocate, synchronize, or read device memory on the host"). Each entry
//! point's body after its pointer reads (`checked_step`, `table_step`, `checked_mini_step`,
//! the clip and quantizer bodies) takes its launcher as a closure; here that closure hands
//! over a recording launcher that allocates nothing (entries checked against the committed
//! PTX's lists made before counting, parameters packed with the driver's own stack packing
//! into reserved memory), and a counting global allocator (this test binary's; it counts on
//! the calling thread only) sees zero allocations across whole steps. The "device" buffers are
//! host buffers: their addresses are checked, never read, as on a GPU.

use crate::cuda::{adam_lens, checked_step, same_lens, ADAM_SPECS, THREE_SPECS};
use crate::cuda_clip::{checked_adagc_coefs, checked_adagc_commit, checked_global_norm};
use crate::cuda_loco::{checked_dequantize, checked_quantize};
use crate::cuda_mini::checked_mini_step;
use crate::cuda_table::table_step;
use crate::multi::Raw;
use crate::*;
use adamant_cuda::args::{AdamHyper, LionHyper, Rule, SgdHyper};
use adamant_cuda::backend::{BackendError, LaunchShape, ParamValue};
use adamant_cuda::driver::{PackedParams, MAX_PARAM_WORDS};
use adamant_cuda::ops::Launcher;
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

/// Entries of the committed PTX, and a log with room reserved before counting.
struct Log {
    entries: Vec<&'static str>,
    launched: Vec<usize>,
    words: Vec<u64>,
}

impl Log {
    fn new() -> Log {
        Log {
            entries: adamant_cuda::ptx::MODULES
                .iter()
                .flat_map(|m| adamant_cuda::ptx::entries(m.ptx))
                .collect(),
            launched: Vec::with_capacity(128),
            words: Vec::with_capacity(128 * MAX_PARAM_WORDS),
        }
    }

    fn names(&self) -> Vec<&'static str> {
        self.launched.iter().map(|&i| self.entries[i]).collect()
    }
}

/// The launcher each entry point's closure hands over: records into a borrowed [`Log`].
struct Recorder<'a>(&'a mut Log);

impl Launcher for Recorder<'_> {
    fn launch_kernel(
        &mut self,
        _module: &str,
        entry: &str,
        _shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError> {
        let log = &mut *self.0;
        let Some(i) = log.entries.iter().position(|e| *e == entry) else {
            return Err(BackendError::Failed(format!("no entry {entry}")));
        };
        let packed = PackedParams::pack(params)?;
        for p in 0..packed.len() {
            let w = packed.words(p);
            if log.words.len() + w.len() > log.words.capacity()
                || log.launched.len() == log.launched.capacity()
            {
                return Err(BackendError::Failed("log full".into()));
            }
            log.words.extend_from_slice(w);
        }
        log.launched.push(i);
        Ok(())
    }
}

fn view<T>(v: &mut [T], dtype: u32) -> adamant_tensor {
    adamant_tensor {
        data: v.as_mut_ptr().cast(),
        dtype,
        len: v.len(),
    }
}

fn cview<T>(v: &[T], dtype: u32) -> adamant_const_tensor {
    adamant_const_tensor {
        data: v.as_ptr().cast(),
        dtype,
        len: v.len(),
    }
}

/// Adam (one tensor and a list), Lion and SGD lists, and the Adam table step: whole steps
/// (scan, updates, commit) with zero allocations.
#[test]
fn cuda_rule_steps_allocate_nothing() {
    let lens = [5000usize, 0, 37];
    let mut p: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.5; n]).collect();
    let g: Vec<Vec<u16>> = lens.iter().map(|&n| vec![0; n]).collect();
    let mut m: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
    let mut v: Vec<Vec<f32>> = lens.iter().map(|&n| vec![0.0; n]).collect();
    let pv: Vec<adamant_tensor> = p.iter_mut().map(|x| view(x, 0)).collect();
    let gv: Vec<adamant_const_tensor> = g.iter().map(|x| cview(x, 1)).collect();
    let mv: Vec<adamant_tensor> = m.iter_mut().map(|x| view(x, 0)).collect();
    let vv: Vec<adamant_tensor> = v.iter_mut().map(|x| view(x, 0)).collect();
    let (lr, mut step, mut found, scale) = (0.01f32, 0u64, 0.0f32, 256.0f32);
    let args = adamant_cuda_step_args {
        lr: &lr,
        step: &mut step,
        grad_scale: &scale,
        clip_coef: core::ptr::null(),
        found_inf: &mut found,
        check_finite: 1,
    };
    let adam = AdamHyper::from_config(&adamant_adamw_config_default().to_core(true, 0.0).unwrap())
        .to_bytes();
    let lion =
        LionHyper::from_config(&adamant_lion_config_default().to_core(0.0).unwrap()).to_bytes();
    let mut sgd_cfg = adamant_sgd_config_default();
    sgd_cfg.momentum = 0.9;
    let sgd = SgdHyper::from_config(&sgd_cfg.to_core(0.0).unwrap()).to_bytes();
    let adam_raw =
        |i: usize| -> [Raw; 4] { [pv[i].into(), gv[i].into(), mv[i].into(), vv[i].into()] };
    let three_raw = |i: usize| -> [Raw; 3] { [pv[i].into(), gv[i].into(), mv[i].into()] };
    // The Adam table, encoded before counting (the encoder's own test is elsewhere).
    let mut table = vec![0u64; 3 * 8];
    let mut desc = core::mem::MaybeUninit::<adamant_cuda_tensor_table>::uninit();
    // SAFETY: arrays of three views over live buffers; `table` holds 3 * 64 bytes.
    let st = unsafe {
        adamant_cuda_tensor_table_encode(
            adamant_cuda_rule::Adam as u32,
            core::ptr::null(),
            pv.as_ptr(),
            gv.as_ptr(),
            mv.as_ptr(),
            vv.as_ptr(),
            3,
            table.as_mut_ptr().cast(),
            3 * 64,
            desc.as_mut_ptr(),
        )
    };
    assert_eq!(st, adamant_status::Ok);
    // SAFETY: written by the successful encode.
    let desc = unsafe { desc.assume_init() };
    let mut log = Log::new();
    let mut r = [Err(adamant_status::Panic); 6];
    let n = allocations(|| {
        let l = &mut log;
        r[0] = checked_step(
            Rule::Adam,
            &adam,
            &args,
            1,
            &ADAM_SPECS,
            adam_raw,
            adam_lens,
            || Ok(Recorder(&mut *l)),
        );
        r[1] = checked_step(
            Rule::Adam,
            &adam,
            &args,
            3,
            &ADAM_SPECS,
            adam_raw,
            adam_lens,
            || Ok(Recorder(&mut *l)),
        );
        r[2] = checked_step(
            Rule::Lion,
            &lion,
            &args,
            3,
            &THREE_SPECS,
            three_raw,
            same_lens,
            || Ok(Recorder(&mut *l)),
        );
        r[3] = checked_step(
            Rule::Sgd,
            &sgd,
            &args,
            3,
            &THREE_SPECS,
            three_raw,
            same_lens,
            || Ok(Recorder(&mut *l)),
        );
        let tp: *const core::ffi::c_void = table.as_ptr().cast();
        r[4] = table_step(
            adamant_cuda_rule::Adam,
            || adam,
            &args,
            &desc,
            2,
            tp,
            || Ok(Recorder(&mut *l)),
        );
        // A queued step with the scan off and no loss scale: update and commit only.
        let plain = adamant_cuda_step_args {
            grad_scale: core::ptr::null(),
            check_finite: 0,
            ..args
        };
        r[5] = table_step(
            adamant_cuda_rule::Adam,
            || adam,
            &plain,
            &desc,
            2,
            tp,
            || Ok(Recorder(&mut *l)),
        );
    });
    assert_eq!(r, [Ok(()); 6]);
    assert_eq!(n, 0, "the CUDA step bodies allocated");
    let names = log.names();
    let (scan, commit) = ("adamant_nonfinite_bf16", "adamant_step_commit");
    let adam_e = "adamant_adam_f32_bf16_f32";
    let mut want = vec![scan, adam_e, commit];
    // Lists: one scan and one update per non-empty tensor (the empty one launches nothing).
    want.extend([scan, scan, adam_e, adam_e, commit]);
    let lion_e = "adamant_lion_f32_bf16_f32";
    want.extend([scan, scan, lion_e, lion_e, commit]);
    let sgd_e = "adamant_sgd_f32_bf16_f32";
    want.extend([scan, scan, sgd_e, sgd_e, commit]);
    // The table: one scan, ONE update, one commit; then without the scan.
    want.extend([scan, adam_e, commit, adam_e, commit]);
    assert_eq!(names, want);
}

/// Adam-mini over an encoded table, global-norm and AdaGC clip coefficients and the AdaGC
/// commit, quantize and dequantize: zero allocations.
#[test]
fn cuda_mini_clip_and_quant_bodies_allocate_nothing() {
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
    let pv: Vec<adamant_tensor> = p.iter_mut().map(|x| view(x, 0)).collect();
    let gv: Vec<adamant_const_tensor> = g.iter().map(|x| cview(x, 0)).collect();
    let mv: Vec<adamant_tensor> = m.iter_mut().map(|x| view(x, 0)).collect();
    let vv: Vec<adamant_tensor> = v.iter_mut().map(|x| view(x, 0)).collect();
    let mut mini_table = vec![0u64; 4096];
    let mut mini_scratch = vec![0.0f32; 4096];
    let mut clip_table = vec![0u64; 4096];
    let mut clip_scratch = vec![0.0f32; 4096];
    let mut mdesc = adamant_cuda_adam_mini_table::default();
    let mut cdesc = core::mem::MaybeUninit::<adamant_cuda_clip_table>::uninit();
    let (mut tb, mut sl, mut cb, mut cl) = (0usize, 0usize, 0usize, 0usize);
    // SAFETY: live host arrays and buffers of the declared lengths (the views' data are never
    // dereferenced).
    let st = unsafe {
        let lp = layouts.as_ptr();
        [
            adamant_cuda_adam_mini_table_bytes(lp, pv.as_ptr(), 3, &mut tb),
            adamant_cuda_adam_mini_scratch_len(lp, pv.as_ptr(), 3, &mut sl),
            adamant_cuda_adam_mini_table_encode(
                lp,
                pv.as_ptr(),
                gv.as_ptr(),
                mv.as_ptr(),
                vv.as_ptr(),
                core::ptr::null(),
                3,
                mini_scratch.as_mut_ptr(),
                sl,
                mini_table.as_mut_ptr().cast(),
                tb,
                &mut mdesc,
            ),
            adamant_cuda_clip_table_bytes(3, &mut cb),
            adamant_cuda_clip_scratch_len(gv.as_ptr(), 3, &mut cl),
            adamant_cuda_clip_table_encode(
                gv.as_ptr(),
                3,
                clip_scratch.as_mut_ptr(),
                cl,
                clip_table.as_mut_ptr().cast(),
                cb,
                cdesc.as_mut_ptr(),
            ),
        ]
    };
    assert_eq!(st, [adamant_status::Ok; 6]);
    // SAFETY: written by the successful encode.
    let cdesc = unsafe { cdesc.assume_init() };
    let (lr, mut step, mut found) = (0.01f32, 0u64, 0.0f32);
    let args = adamant_cuda_step_args {
        lr: &lr,
        step: &mut step,
        grad_scale: core::ptr::null(),
        clip_coef: core::ptr::null(),
        found_inf: &mut found,
        check_finite: 1,
    };
    let mini = adamant_adam_mini_config_default();
    let adagc = adamant_adagc_config_default();
    let gamma_len = adagc.to_core().unwrap().gamma_len(3);
    let mut gamma = vec![0.0f32; gamma_len];
    let mut clip_step = 0u64;
    let mut coefs = [0.0f32; 3];
    let mut record = [0.0f32; 4];
    let eps = adamant_core::clip::global_norm::CLIP_EPS;
    let packed_len =
        adamant_core::quant::QuantLayout::new(1000, 64, adamant_core::quant::Bits::Four)
            .unwrap()
            .packed_len();
    let mut packed = vec![0u32; 4096];
    let mut out = vec![0.0f32; 1000];
    let mut status = 0.0f32;
    let mut log = Log::new();
    let mut r = [Err(adamant_status::Panic); 6];
    let n = allocations(|| {
        let l = &mut log;
        let mt: *const core::ffi::c_void = mini_table.as_ptr().cast();
        let ct: *const core::ffi::c_void = clip_table.as_ptr().cast();
        r[0] = checked_mini_step(&mini, &args, &mdesc, mt, || Ok(Recorder(&mut *l)));
        let (co, re) = (coefs.as_mut_ptr(), record.as_mut_ptr());
        r[1] = checked_global_norm(1.0, eps, &cdesc, ct, core::ptr::null(), co, re, || {
            Ok(Recorder(&mut *l))
        });
        let (ga, cs) = (gamma.as_mut_ptr(), &mut clip_step as *mut u64);
        r[2] = checked_adagc_coefs(
            &adagc,
            &cdesc,
            ct,
            core::ptr::null(),
            ga,
            gamma_len,
            cs,
            co,
            re,
            || Ok(Recorder(&mut *l)),
        );
        r[3] = checked_adagc_commit(
            &adagc,
            &cdesc,
            ga,
            gamma_len,
            cs,
            re.cast_const(),
            &found,
            || Ok(Recorder(&mut *l)),
        );
        let x = cview(&g[0][..1000], 0);
        let pk: *mut u8 = packed.as_mut_ptr().cast();
        r[4] = checked_quantize(x, 64, 4, pk, packed_len, &mut status, || {
            Ok(Recorder(&mut *l))
        });
        let o = out.as_mut_ptr();
        r[5] = checked_dequantize(pk, packed_len, 64, 4, o, 1000, &mut status, || {
            Ok(Recorder(&mut *l))
        });
    });
    assert_eq!(r, [Ok(()); 6]);
    assert_eq!(n, 0, "the CUDA mini, clip and quantizer bodies allocated");
    let names = log.names();
    assert_eq!(names[0], "adamant_nonfinite_f32");
    assert_eq!(names[1], "adamant_mini_sumsq_f32");
    assert!(names.contains(&"adamant_clip_coefs") && names.contains(&"adamant_clip_commit"));
    assert_eq!(
        names[names.len() - 4..],
        [
            "adamant_quant_check_f32",
            "adamant_quant_compress_f32",
            "adamant_quant_decompress_check",
            "adamant_quant_decompress"
        ]
    );
}
