//! AdaGC and global-norm clipping: norms from the canonical reduction (sharded = unsharded at
//! tile boundaries, equal on every rank otherwise), coefficient arithmetic pinned, the clip
//! applied inside every rule's own pass (bits of pre-multiplied gradients, gradients never
//! written), state encoding, typed errors that write nothing.

use adamant_core::clip::adagc::{adagc_tensor, decode, encode, encoded_len};
use adamant_core::clip::{
    self, global_sum_sq, norm, tensor_sum_sq, tensor_sum_sq_partials, threshold_coef, AdaGc,
    AdaGcConfig, AdaGcMode, GlobalNormClip,
};
use adamant_core::reduce::{combine, sum_sq, tile_count, TILE};
use adamant_core::rules::adam_mini::BlockLayout;
use adamant_core::rules::sgd::SgdConfig;
use adamant_core::{
    Adam, AdamConfig, AdamMini, AdamMiniConfig, ConfigError, LayoutError, Lion, LionConfig, Sgd,
    StepError, StepOptions,
};
use proptest::prelude::*;

fn lcg(s: &mut u64) -> f32 {
    *s = s
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let e = ((*s >> 20) % 20) as i32 - 10;
    (((*s >> 40) as f32 / (1u64 << 24) as f32) - 0.5) * 2f32.powi(e)
}

fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n).map(|_| lcg(&mut s)).collect()
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(debug_assertions) { 32 } else { 128 }, ..ProptestConfig::default() })]

    /// Tensor-parallel / thread split of one tensor's norm: pieces cut at tile boundaries
    /// reproduce the whole-tensor bits; any cut gives one value on every rank.
    #[test]
    fn prop_sharded_tensor_norm(n in 1usize..(4 * TILE + 50), seed in any::<u64>(), c1 in 0usize..5, c2 in 0usize..5, scale_pow in 0i32..12) {
        let g = vals(n, seed);
        let scale = 2f32.powi(scale_pow) * 3.0;
        let whole = tensor_sum_sq(&g, scale);
        let (a, b) = ((c1 * TILE).min(n), (c2 * TILE).min(n));
        let (lo, hi) = (a.min(b), a.max(b));
        let mut gathered = Vec::new();
        for (s, e) in [(0, lo), (lo, hi), (hi, n)] {
            let mut part = vec![0.0f32; tile_count(e - s)];
            tensor_sum_sq_partials(&g[s..e], scale, &mut part).unwrap();
            gathered.extend(part);
        }
        prop_assert_eq!(combine(&gathered).to_bits(), whole.to_bits());
        // Arbitrary cut: every rank combines the same gathered list to the same bits.
        let cut = (seed as usize) % (n + 1);
        let mut g2 = Vec::new();
        for (s, e) in [(0, cut), (cut, n)] {
            let mut part = vec![0.0f32; tile_count(e - s)];
            tensor_sum_sq_partials(&g[s..e], scale, &mut part).unwrap();
            g2.extend(part);
        }
        let r0 = combine(&g2.clone()).to_bits();
        prop_assert_eq!(combine(&g2).to_bits(), r0);
    }

    /// AdaGC over several steps: the whole-tensor path and a sharded/threaded path (norms from
    /// tile-aligned partials) give the same coefficients, gammas and encoded state.
    #[test]
    fn prop_adagc_sharded_equals_unsharded(seed in any::<u64>(), t_start in 0u64..4, global in any::<bool>()) {
        let sizes = [TILE + 3, 2 * TILE, 17];
        let cfg = AdaGcConfig { t_start, mode: if global { AdaGcMode::Global } else { AdaGcMode::PerTensor }, ..AdaGcConfig::default() };
        let (mut a, mut b) = (AdaGc::new(cfg).unwrap(), AdaGc::new(cfg).unwrap());
        let n = a.gamma_len(3);
        let (mut ga, mut gb) = (vec![0.0f32; n], vec![0.0f32; n]);
        for step in 0..6u64 {
            let grads: Vec<Vec<f32>> = sizes.iter().enumerate().map(|(i, &s)| vals(s, seed ^ (step * 31 + i as u64))).collect();
            let sa: Vec<f32> = grads.iter().map(|g| tensor_sum_sq(g, 1.0)).collect();
            let sb: Vec<f32> = grads.iter().map(|g| {
                let cut = (g.len() / TILE / 2) * TILE;
                let mut p = vec![0.0; tile_count(cut) + tile_count(g.len() - cut)];
                let (x, y) = p.split_at_mut(tile_count(cut));
                tensor_sum_sq_partials(&g[..cut], 1.0, x).unwrap();
                tensor_sum_sq_partials(&g[cut..], 1.0, y).unwrap();
                combine(&p)
            }).collect();
            let (mut ca, mut cb) = (vec![0.0f32; 3], vec![0.0f32; 3]);
            let pa = a.plan(&sa, &ga, &mut ca).unwrap();
            let pb = b.plan(&sb, &gb, &mut cb).unwrap();
            prop_assert_eq!(bits(&ca), bits(&cb));
            a.commit(&sa, &mut ga, &pa).unwrap();
            b.commit(&sb, &mut gb, &pb).unwrap();
            let (mut ea, mut eb) = (vec![0u8; encoded_len(n)], vec![0u8; encoded_len(n)]);
            encode(&a.state, &ga, &mut ea).unwrap();
            encode(&b.state, &gb, &mut eb).unwrap();
            prop_assert_eq!(ea, eb);
        }
    }
}

#[test]
fn spec_loss_scale_is_divided_out_before_the_norm() {
    let g = vals(9000, 1);
    let scaled: Vec<f32> = g.iter().map(|x| x * 65536.0).collect();
    assert_eq!(
        tensor_sum_sq(&scaled, 65536.0).to_bits(),
        tensor_sum_sq(&g, 1.0).to_bits()
    );
    assert_eq!(tensor_sum_sq(&g, 1.0).to_bits(), sum_sq(&g).to_bits());
}

#[test]
fn spec_global_sum_is_combine_in_tensor_order() {
    let sums: Vec<f32> = (0..5000).map(|i| vals(1, i)[0].abs()).collect();
    assert_eq!(global_sum_sq(&sums).to_bits(), combine(&sums).to_bits());
    let seq = sums.iter().fold(0.0f32, |a, b| a + b);
    assert_ne!(
        global_sum_sq(&sums).to_bits(),
        seq.to_bits(),
        "order is pinned"
    );
}

#[test]
fn spec_coefficient_arithmetic_is_pinned() {
    // threshold_coef: d = norm + eps; c = max_norm / d; clamp.
    for (n, mx) in [(3.7f32, 1.0f32), (0.5, 1.0), (1.0, 1.0), (123456.0, 0.25)] {
        let d = n + 1e-6f32;
        let c = mx / d;
        let want = if c < 1.0 { c } else { 1.0 };
        assert_eq!(threshold_coef(n, mx, 1e-6).to_bits(), want.to_bits());
    }
    assert_eq!(threshold_coef(f32::NAN, 1.0, 1e-6), 1.0);
    assert_eq!(threshold_coef(f32::INFINITY, 1.0, 1e-6), 1.0);
    let k = AdaGcConfig::default().scalars();
    // After warm-up, spike: coef = (lambda_rel*gamma)/(n + eps), EMA fed lambda_rel*gamma.
    let (gamma, n) = (0.8f32, 5.0f32);
    let thr = k.lambda_rel * gamma;
    let (c, g) = adagc_tensor(gamma, n, false, false, 1.0, &k);
    assert_eq!(c.to_bits(), (thr / (n + k.eps)).to_bits());
    assert_eq!(
        g.to_bits(),
        (k.beta * gamma + k.one_minus_beta * thr).to_bits()
    );
    // No spike: coef 1, EMA fed the norm.
    let (c, g) = adagc_tensor(gamma, 0.81, false, false, 1.0, &k);
    assert_eq!(c, 1.0);
    assert_eq!(
        g.to_bits(),
        (k.beta * gamma + k.one_minus_beta * 0.81f32).to_bits()
    );
    // Warm-up: running minimum of the clipped norm.
    let (c, g) = adagc_tensor(0.3, 2.0, false, true, 0.25, &k);
    assert_eq!((c, g), (0.25, 0.3));
    let (_, g) = adagc_tensor(0.6, 2.0, false, true, 0.25, &k);
    assert_eq!(g, 0.5);
    let (_, g) = adagc_tensor(0.1, 2.0, true, true, 0.25, &k);
    assert_eq!(g, 0.5, "step 1 sets gamma");
}

#[test]
fn spec_global_norm_clip_matches_pytorch_semantics() {
    let clip = GlobalNormClip::new(1.0).unwrap();
    let grads = [vals(5000, 3), vals(100, 4)];
    let sums: Vec<f32> = grads.iter().map(|g| tensor_sum_sq(g, 1.0)).collect();
    let (total, c) = clip.coefficient(&sums);
    let t64: f64 = grads
        .iter()
        .flatten()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    assert!(((total as f64) - t64).abs() <= 1e-6 * t64);
    let c64 = (1.0 / (t64 + 1e-6)).min(1.0);
    assert!(((c as f64) - c64).abs() <= 1e-6 * c64, "{c} vs {c64}");
    assert!(c < 1.0);
    let (_, c) = GlobalNormClip::new(1e9).unwrap().coefficient(&sums);
    assert_eq!(c, 1.0);
    assert!(matches!(
        GlobalNormClip::new(0.0),
        Err(ConfigError::OutOfRange { .. })
    ));
    assert!(matches!(
        GlobalNormClip::new(f64::NAN),
        Err(ConfigError::NonFinite { .. })
    ));
}

/// The clip coefficient travels in `StepOptions::clip_coef` and is applied in the rule's pass:
/// every rule gives the bits of a step on gradients pre-multiplied in f32, and the gradient
/// buffer is only borrowed immutably (never written).
#[test]
fn spec_clip_composes_with_every_rule() {
    let n = 5000;
    let g = vals(n, 11);
    let p0 = vals(n, 12);
    let c = {
        let mut ada = AdaGc::new(AdaGcConfig::default()).unwrap();
        let sums = [tensor_sum_sq(&g, 1.0)];
        let mut gamma = [0.0f32];
        let mut coefs = [0.0f32];
        let plan = ada.plan(&sums, &gamma, &mut coefs).unwrap();
        ada.commit(&sums, &mut gamma, &plan).unwrap();
        coefs[0]
    };
    assert!(c < 1.0, "the test needs an active clip");
    let pre: Vec<f32> = g.iter().map(|x| x * c).collect();
    let mut o = StepOptions::new(1e-3);
    o.clip_coef = Some(c);
    let plain = StepOptions::new(1e-3);
    // Adam
    {
        let (mut a, mut b) = (
            Adam::new(AdamConfig::adamw()).unwrap(),
            Adam::new(AdamConfig::adamw()).unwrap(),
        );
        let (mut pa, mut ma, mut va) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        let (mut pb, mut mb, mut vb) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        a.step(&mut pa, &g, &mut ma, &mut va, &o).unwrap();
        b.step(&mut pb, &pre, &mut mb, &mut vb, &plain).unwrap();
        assert_eq!(bits(&pa), bits(&pb));
        assert_eq!(bits(&va), bits(&vb));
    }
    // Lion
    {
        let (mut a, mut b) = (
            Lion::new(LionConfig::official()).unwrap(),
            Lion::new(LionConfig::official()).unwrap(),
        );
        let (mut pa, mut ma) = (p0.clone(), vals(n, 13));
        let (mut pb, mut mb) = (p0.clone(), ma.clone());
        a.step(&mut pa, &g, &mut ma, &o).unwrap();
        b.step(&mut pb, &pre, &mut mb, &plain).unwrap();
        assert_eq!(bits(&pa), bits(&pb));
        assert_eq!(bits(&ma), bits(&mb));
    }
    // SGD with momentum
    {
        let cfg = SgdConfig {
            momentum: 0.9,
            ..SgdConfig::new(0.1)
        };
        let (mut a, mut b) = (Sgd::new(cfg).unwrap(), Sgd::new(cfg).unwrap());
        let (mut pa, mut ma) = (p0.clone(), vec![0.0f32; n]);
        let (mut pb, mut mb) = (p0.clone(), vec![0.0f32; n]);
        a.step(&mut pa, &g, &mut ma, &o).unwrap();
        b.step(&mut pb, &pre, &mut mb, &plain).unwrap();
        assert_eq!(bits(&pa), bits(&pb));
    }
    // Adam-mini (its block statistic sees the clipped gradient too)
    for layout in [
        BlockLayout::Tensor,
        BlockLayout::Rows { row_len: 100 },
        BlockLayout::Element,
    ] {
        let (mut a, mut b) = (
            AdamMini::new(AdamMiniConfig::default()).unwrap(),
            AdamMini::new(AdamMiniConfig::default()).unwrap(),
        );
        let sl = layout.state_len(n).unwrap();
        let (mut pa, mut ma, mut va) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; sl]);
        let (mut pb, mut mb, mut vb) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; sl]);
        a.step_tensor(&mut pa, &g, &mut ma, &mut va, &layout, true, &o)
            .unwrap();
        b.step_tensor(&mut pb, &pre, &mut mb, &mut vb, &layout, true, &plain)
            .unwrap();
        assert_eq!(bits(&pa), bits(&pb), "{layout:?}");
        assert_eq!(bits(&va), bits(&vb));
    }
}

#[test]
fn spec_adagc_state_encoding_round_trips() {
    let mut ada = AdaGc::new(AdaGcConfig::default()).unwrap();
    let sums = [1.5f32, 0.25, 9.0];
    let mut gamma = [0.0f32; 3];
    let mut coefs = [0.0f32; 3];
    for _ in 0..3 {
        let p = ada.plan(&sums, &gamma, &mut coefs).unwrap();
        assert!(ada.commit(&sums, &mut gamma, &p).unwrap());
    }
    let mut bytes = [0u8; 20];
    encode(&ada.state, &gamma, &mut bytes).unwrap();
    assert_eq!(&bytes[..8], &3u64.to_le_bytes());
    assert_eq!(&bytes[8..12], &gamma[0].to_bits().to_le_bytes());
    let mut back = [0.0f32; 3];
    let st = decode(&bytes, &mut back).unwrap();
    assert_eq!(st, ada.state);
    assert_eq!(bits(&back), bits(&gamma));
    let mut short = [7u8; 19];
    assert!(encode(&ada.state, &gamma, &mut short).is_err());
    assert_eq!(short, [7u8; 19]);
}

#[test]
fn spec_adagc_errors_and_nonfinite_write_nothing() {
    let mut ada = AdaGc::new(AdaGcConfig::default()).unwrap();
    let mut gamma = [0.5f32; 2];
    let mut coefs = [9.0f32; 3];
    // gamma too short for three tensors.
    let r = ada.plan(&[1.0, 2.0, 3.0], &gamma, &mut coefs);
    assert!(matches!(
        r,
        Err(StepError::Layout(LayoutError::LenMismatch { .. }))
    ));
    assert_eq!(coefs, [9.0; 3]);
    // A non-finite norm: coefficients 1, plan not finite, commit writes nothing.
    let sums = [f32::INFINITY, 2.0];
    let mut c2 = [9.0f32; 2];
    let p = ada.plan(&sums, &gamma, &mut c2).unwrap();
    assert!(!p.finite);
    assert_eq!(c2, [1.0, 1.0]);
    assert!(!ada.commit(&sums, &mut gamma, &p).unwrap());
    assert_eq!(gamma, [0.5; 2]);
    assert_eq!(ada.state.step, 0);
    // A stale plan is refused.
    let ok = ada.plan(&[1.0, 2.0], &gamma, &mut c2).unwrap();
    assert!(ada.commit(&[1.0, 2.0], &mut gamma, &ok).unwrap());
    let g_after = gamma;
    assert!(!ada.commit(&[1.0, 2.0], &mut gamma, &ok).unwrap());
    assert_eq!(gamma, g_after);
    // Bad configs.
    for cfg in [
        AdaGcConfig {
            lambda_rel: 0.0,
            ..AdaGcConfig::default()
        },
        AdaGcConfig {
            beta: 1.0,
            ..AdaGcConfig::default()
        },
        AdaGcConfig {
            eps: -1.0,
            ..AdaGcConfig::default()
        },
        AdaGcConfig {
            max_norm: f64::INFINITY,
            ..AdaGcConfig::default()
        },
    ] {
        assert!(AdaGc::new(cfg).is_err(), "{cfg:?}");
    }
    let e = AdaGc::new(AdaGcConfig {
        beta: 1.0,
        ..AdaGcConfig::default()
    })
    .unwrap_err();
    assert_eq!(e.to_string(), "clip_beta = 1 is outside [0, 1)");
    {}
}

#[test]
fn spec_global_mode_has_one_gamma_and_one_coefficient() {
    let cfg = AdaGcConfig {
        mode: AdaGcMode::Global,
        t_start: 1,
        ..AdaGcConfig::default()
    };
    let mut ada = AdaGc::new(cfg).unwrap();
    assert_eq!(ada.gamma_len(7), 1);
    let mut gamma = [0.0f32];
    let mut coefs = [0.0f32; 3];
    let s1 = [0.1f32, 0.2, 0.3];
    let p = ada.plan(&s1, &gamma, &mut coefs).unwrap();
    ada.commit(&s1, &mut gamma, &p).unwrap();
    assert_eq!(gamma[0].to_bits(), norm(clip::global_sum_sq(&s1)).to_bits());
    let spike = [10.0f32, 0.2, 0.3];
    let p = ada.plan(&spike, &gamma, &mut coefs).unwrap();
    assert!(coefs[0] < 1.0 && coefs.iter().all(|c| c.to_bits() == coefs[0].to_bits()));
    assert_eq!(p.global_coef, 1.0);
}

/// The contract's tree written out independently: tiles of 4096, 256 lanes adding
/// `tile_start + 256*i + l` in increasing `i`, then the halving tree; tile results reduced the
/// same way, recursively.
fn spec_tree(x: &[f32]) -> f32 {
    fn tile(t: &[f32]) -> f32 {
        let mut acc = [0.0f32; 256];
        for i in 0..16 {
            for (l, a) in acc.iter_mut().enumerate() {
                if let Some(v) = t.get(256 * i + l) {
                    *a += *v;
                }
            }
        }
        let mut s = 128;
        while s >= 1 {
            for l in 0..s {
                acc[l] += acc[l + s];
            }
            s /= 2;
        }
        acc[0]
    }
    let mut v = x.to_vec();
    if v.is_empty() {
        return 0.0;
    }
    loop {
        let t: Vec<f32> = v.chunks(4096).map(tile).collect();
        if t.len() == 1 {
            return t[0];
        }
        v = t;
    }
}

#[test]
fn conformance_tensor_norm_is_the_contract_tree_of_unscaled_squares() {
    for (n, scale) in [
        (1usize, 1.0f32),
        (4097, 1024.0),
        (3 * TILE + 11, 3.0),
        (TILE * TILE / 512 + 9, 0.5),
    ] {
        let g = vals(n, n as u64);
        let sq: Vec<f32> = g
            .iter()
            .map(|v| {
                let u = v / scale;
                u * u
            })
            .collect();
        assert_eq!(
            tensor_sum_sq(&g, scale).to_bits(),
            spec_tree(&sq).to_bits(),
            "n {n}"
        );
    }
    let sums: Vec<f32> = (0..9000).map(|i| vals(1, i)[0].abs()).collect();
    assert_eq!(global_sum_sq(&sums).to_bits(), spec_tree(&sums).to_bits());
}
