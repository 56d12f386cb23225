//! Property test of `adamant_adam_mini_step`: random layouts (every kind, explicit segments),
//! lengths, dtypes, options, and at most one injected fault per case. Every case asserts the
//! exact status; on error, that nothing changed; on success, the Rust API's bits
//! (`AdamMini::step_tensor`). Cases: `ADAMANT_MINI_FUZZ_CASES` (default 60000).

mod common;
use adamant::*;
use adamant_core::{
    bf16, f16, AdamMini, AdamMiniConfig, BlockLayout, Element, Segment, StateElement, StepOptions,
    StepOutcome,
};
use common::*;

const FAULTS: usize = 13;

fn run_case<P: Element, G: Element, S: StateElement>(rng: &mut Rng) -> adamant_status {
    let kind = rng.below(5) as u32;
    let block = 1 + rng.below(12) as usize;
    let blocks = rng.below(6) as usize;
    let segs_c = [
        adamant_block_segment {
            len: block * 2,
            block_len: block,
        },
        adamant_block_segment {
            len: 1 + rng.below(5) as usize,
            block_len: 0,
        },
    ];
    let segs_r = [
        Segment::Blocks {
            len: block * 2,
            block_len: block,
        },
        Segment::Element { len: segs_c[1].len },
    ];
    let n = match kind {
        0 | 3 => rng.below(70) as usize,
        1 | 2 => block * blocks,
        _ => segs_c[0].len + segs_c[1].len,
    };
    let core_layout = match kind {
        0 => BlockLayout::Element,
        1 => BlockLayout::Rows { row_len: block },
        2 => BlockLayout::Heads { head_numel: block },
        3 => BlockLayout::Tensor,
        _ => BlockLayout::Segments(&segs_r),
    };
    let state = core_layout.state_len(n).unwrap();
    let wd = rng.chance(1, 2);
    let mut layout = adamant_block_layout {
        kind,
        block_len: block,
        segments: segs_c.as_ptr(),
        segment_count: 2,
        weight_decay: wd as u32,
    };
    let mut cfg = adamant_adam_mini_config_default();
    cfg.weight_decay = 0.05;
    let sr = P::DTYPE == adamant_core::Dtype::Bf16 && rng.chance(1, 2);
    cfg.stochastic_rounding = sr as u32;
    cfg.stochastic_rounding_seed = rng.next();
    let mut opt = adamant_step_options_default();
    opt.lr = 1e-2;
    let mut ropt = StepOptions::new(1e-2);
    if rng.chance(1, 3) {
        opt.has_clip_coef = 1;
        opt.clip_coef = 0.5;
        ropt.clip_coef = Some(0.5);
    }
    let mut step = rng.below(4);
    let fault = rng.below(FAULTS as u64) as usize;
    let mut p: Vec<P> = buffer(rng, n, 1.0, false, true);
    let mut g: Vec<G> = buffer(rng, n, 1.0, true, true);
    let mut m: Vec<S> = buffer(rng, n, 0.1, false, true);
    let mut v: Vec<S> = (0..state)
        .map(|_| S::narrow(rng.float(0.01).abs()))
        .collect();
    let (mut gt, mut mt, mut vt) = (cview(&g), view(&mut m), view(&mut v));
    let mut pt = view(&mut p);
    let mut want = adamant_status::Ok;
    match fault {
        1 => {
            layout.kind = 5 + rng.below(100) as u32;
            want = adamant_status::InvalidEnum;
        }
        2 => {
            layout.weight_decay = 2;
            want = adamant_status::InvalidEnum;
        }
        3 => {
            cfg.beta2 = 1.0;
            want = adamant_status::InvalidConfig;
        }
        4 => {
            mt.dtype = adamant_dtype::F16 as u32;
            want = adamant_status::UnsupportedDtype;
        }
        5 if n > 0 => {
            gt.len = n - 1;
            want = adamant_status::LengthMismatch;
        }
        6 => {} // below, once `v` can be regrown
        7 if (kind == 1 || kind == 2) && n > 0 && block > 1 => {
            layout.block_len = block + 1;
            want = if n % (block + 1) == 0 {
                // Still tiles: only the state length can be wrong.
                if n / (block + 1) == state {
                    adamant_status::Ok
                } else {
                    adamant_status::LengthMismatch
                }
            } else {
                adamant_status::LengthMismatch
            };
        }
        8 => {
            opt.found_inf = 1;
            want = adamant_status::SkippedFoundInf;
        }
        9 => {
            step = u64::MAX;
            want = adamant_status::StepOverflow;
        }
        10 if n > 0 => {
            mt.data = pt.data;
            mt.dtype = pt.dtype;
            // f16 is no state dtype; a parameter dtype unlike `exp_avg_sq`'s breaks the pairing.
            want = if P::DTYPE == adamant_core::Dtype::F16 || P::DTYPE != S::DTYPE {
                adamant_status::UnsupportedDtype
            } else {
                adamant_status::Overlap
            };
        }
        11 if n > 0 => {
            g[0] = G::narrow(f32::NAN);
            gt = cview(&g);
            opt.check_finite = 1;
            ropt.check_finite = true;
            want = adamant_status::SkippedNonFinite;
        }
        12 if n > 0 => {
            pt.data = pt.data.wrapping_byte_add(1);
            want = adamant_status::Misaligned;
        }
        _ => {}
    }
    if fault == 6 {
        // A state view one element too long: the layout's state length no longer matches.
        // Back it by a longer buffer so the view itself is valid.
        v.push(S::narrow(0.0));
        vt = view(&mut v);
        vt.len = state + 1;
        want = adamant_status::LengthMismatch;
    }
    let before = (bits(&p), bits(&m), bits(&v));
    let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
    let mut out = 12345u64;
    // SAFETY: every view is backed by a live vector (or deliberately bad, rejected first).
    let got =
        unsafe { adamant_adam_mini_step(&cfg, &opt, step, &layout, pt, gt, mt, vt, &mut out) };
    assert_eq!(got, want, "fault {fault} kind {kind} n {n} block {block}");
    if got != adamant_status::Ok {
        assert_eq!((bits(&p), bits(&m), bits(&v)), before, "wrote on {got:?}");
        assert_eq!(out, 12345);
        return got;
    }
    let mut mini = AdamMini::new(AdamMiniConfig {
        lr: 1e-2,
        weight_decay: 0.05,
        stochastic_rounding_seed: sr.then_some(cfg.stochastic_rounding_seed),
        ..AdamMiniConfig::default()
    })
    .unwrap();
    mini.state.step = step;
    let core_l = if layout.block_len != block {
        match kind {
            1 => BlockLayout::Rows {
                row_len: layout.block_len,
            },
            _ => BlockLayout::Heads {
                head_numel: layout.block_len,
            },
        }
    } else {
        core_layout
    };
    let r = mini.step_tensor(&mut p2, &g, &mut m2, &mut v2, &core_l, wd, &ropt);
    assert!(matches!(r, Ok(StepOutcome::Applied { .. })));
    assert_eq!(out, step + 1);
    assert_eq!(bits(&p), bits(&p2));
    assert_eq!(bits(&m), bits(&m2));
    assert_eq!(bits(&v), bits(&v2));
    got
}

#[test]
fn fuzz_adam_mini_statuses_bits_and_no_write_on_error() {
    let cases: usize = std::env::var("ADAMANT_MINI_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60_000);
    let mut rng = Rng(0xADA3_0001);
    let mut ok = 0;
    let mut seen = std::collections::HashSet::new();
    for i in 0..cases {
        let s = match i % 6 {
            0 => run_case::<f32, f32, f32>(&mut rng),
            1 => run_case::<bf16, f32, f32>(&mut rng),
            2 => run_case::<bf16, bf16, bf16>(&mut rng),
            3 => run_case::<f16, f16, f32>(&mut rng),
            4 => run_case::<f32, bf16, bf16>(&mut rng),
            _ => run_case::<f16, f32, bf16>(&mut rng),
        };
        ok += (s == adamant_status::Ok) as usize;
        seen.insert(s as u32);
    }
    // Both outcomes, and every injected status, actually occurred.
    assert!(ok > cases / 10, "{ok} successes");
    assert!(seen.len() >= 10, "statuses seen: {seen:?}");
}
