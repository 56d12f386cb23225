//! Conformance bit tables for the element functions and the per-step scalars.
//!
//! Every expected value was derived by hand from the documented operation order: each f32
//! operation computed exactly (in f64, or by hand for the first table) and rounded once to
//! f32, nearest even, no fused multiply-add. Rows marked "FMA-sensitive" are points where
//! contracting the last `a - b*c` into one fused operation gives a different last bit, so
//! an implementation that fuses fails them.

use adamant_core::rules::adam::{adam_elem, AdamScalars};
use adamant_core::rules::lion::{lion_elem, sign, LionScalars};
use adamant_core::rules::sgd::{sgd_elem, SgdScalars};
use adamant_core::scalars::LibmSqrt;
use adamant_core::{AdamConfig, LionConfig, SgdConfig};

fn f(b: u32) -> f32 {
    f32::from_bits(b)
}

fn bits3((a, b, c): (f32, f32, f32)) -> [u32; 3] {
    [a.to_bits(), b.to_bits(), c.to_bits()]
}

/// Small exact scalars so each operation can be followed by hand:
/// `m = 0.5*0 + 0.5*2 = 1`; `v = 0.75*0 + 0.25*(2*2) = 1`; `denom = sqrt(1)/1 + 0.25 = 1.25`;
/// `m/denom = 0.8 -> 13421773 * 2^-24` (0x3F4CCCCD); `0.5 * that = 13421773 * 2^-25`, exact;
/// `1 - 13421773 * 2^-25 = 20132659 * 2^-25`, exactly halfway between the f32 neighbours
/// `10066329 * 2^-24` and `10066330 * 2^-24`: ties to even gives 10066330 * 2^-24 = 0x3F19999A.
#[test]
fn adam_elem_hand_derived_tie() {
    let k = AdamScalars {
        decay: 1.0,
        weight_decay: 0.0,
        beta1: 0.5,
        one_minus_beta1: 0.5,
        beta2: 0.75,
        one_minus_beta2: 0.25,
        step_size: 0.5,
        bias_correction2_sqrt: 1.0,
        eps: 0.25,
    };
    let out = adam_elem::<LibmSqrt>(1.0, 2.0, 0.0, 0.0, &k);
    assert_eq!(bits3(out), [0x3F19_999A, 0x3F80_0000, 0x3F80_0000]);
}

/// `AdamConfig::adamw().scalars(1e-3, t)` (PyTorch AdamW defaults) by the f64 recipe.
#[test]
fn adamw_scalars_bits() {
    let c = AdamConfig::adamw();
    // decay, weight_decay, beta1, 1-beta1, beta2, 1-beta2, step_size, sqrt(bc2), eps
    let table: [(u64, [u32; 9]); 2] = [
        (
            1,
            [
                0x3F7FFF58, 0, 0x3F666666, 0x3DCCCCCD, 0x3F7FBE77, 0x3A83126F, 0x3C23D70A,
                0x3D0186E2, 0x322BCC77,
            ],
        ),
        (
            10,
            [
                0x3F7FFF58, 0, 0x3F666666, 0x3DCCCCCD, 0x3F7FBE77, 0x3A83126F, 0x3AC93D76,
                0x3DCC5704, 0x322BCC77,
            ],
        ),
    ];
    for (t, want) in table {
        let k = c.scalars(1e-3, t);
        let got = [
            k.decay,
            k.weight_decay,
            k.beta1,
            k.one_minus_beta1,
            k.beta2,
            k.one_minus_beta2,
            k.step_size,
            k.bias_correction2_sqrt,
            k.eps,
        ]
        .map(f32::to_bits);
        assert_eq!(got, want, "t = {t}");
    }
}

#[test]
fn adam_elem_table() {
    let c = AdamConfig::adamw();
    // (t, [p, g, m, v] in, [p, m, v] out)
    let table: &[(u64, [u32; 4], [u32; 3])] = &[
        (
            1,
            [0x3F000000, 0x3DCCCCCD, 0, 0],
            [0x3EFF7C46, 0x3C23D70B, 0x3727C5AE],
        ),
        (
            1,
            [0xBFA00000, 0x3B449BA6, 0xB951B717, 0x368637BD],
            [0xBFA00036, 0x38FBA886, 0x368662B0],
        ),
        (
            1,
            [0x3E99999A, 0xBF333333, 0x3D4CCCCD, 0x3E4CCCCD],
            [0x3E999B86, 0xBCCCCCCE, 0x3E4D18D2],
        ),
        (
            10,
            [0x3F000000, 0x3DCCCCCD, 0, 0],
            [0x3EFFBFD9, 0x3C23D70B, 0x3727C5AE],
        ),
        (
            10,
            [0xBFA00000, 0x3B449BA6, 0xB951B717, 0x368637BD],
            [0xBF9FFFE4, 0x38FBA886, 0x368662B0],
        ),
        (
            10,
            [0x3E99999A, 0xBF333333, 0x3D4CCCCD, 0x3E4CCCCD],
            [0x3E999A54, 0xBCCCCCCE, 0x3E4D18D2],
        ),
        // FMA-sensitive: a fused last step gives p = 0x3B2F88FF.
        (
            10,
            [0x3B3320F7, 0x3F7A768A, 0xBBE26E9F, 0x3D8478B6],
            [0x3B2F88FE, 0x3DBBA236, 0x3D864CA7],
        ),
    ];
    for &(t, i, want) in table {
        let k = c.scalars(1e-3, t);
        let out = adam_elem::<LibmSqrt>(f(i[0]), f(i[1]), f(i[2]), f(i[3]), &k);
        assert_eq!(bits3(out), want, "t = {t}, in {i:08X?}");
    }
    // Adam with L2 (torch.optim.Adam weight_decay 1e-2), t = 3: g = g + wd*p first, no decay.
    let k = AdamConfig {
        weight_decay: 1e-2,
        ..AdamConfig::adam()
    }
    .scalars(1e-3, 3);
    assert_eq!((k.decay, k.weight_decay.to_bits()), (1.0, 0x3C23D70A));
    let out = adam_elem::<LibmSqrt>(2.0, -0.5, f(0x3C23D70A), f(0x3B449BA6), &k);
    assert_eq!(bits3(out), [0x40000246, 0xBD1FBE77, 0x3B5382CA]);
}

#[test]
fn lion_elem_table() {
    let c = LionConfig {
        weight_decay: 0.1,
        ..LionConfig::official()
    };
    let k: LionScalars = c.scalars(1e-4);
    assert_eq!(
        [
            k.decay,
            k.lr,
            k.beta1,
            k.one_minus_beta1,
            k.beta2,
            k.one_minus_beta2
        ]
        .map(f32::to_bits),
        [0x3F7FFF58, 0x38D1B717, 0x3F666666, 0x3DCCCCCD, 0x3F7D70A4, 0x3C23D70A]
    );
    // (p, g, m) -> (p, m)
    let table: &[([u32; 3], [u32; 2])] = &[
        // c = 0.9*(-0.1) + 0.1*0.2 < 0: p moves up by lr.
        (
            [0x3F000000, 0x3E4CCCCD, 0xBDCCCCCD],
            [0x3F00063A, 0xBDC6A7F0],
        ),
        (
            [0x3F000000, 0xBE4CCCCD, 0x3DCCCCCD],
            [0x3EFFF23D, 0x3DC6A7F0],
        ),
        (
            [0xBFC00000, 0x3F666666, 0xBDCCCCCD],
            [0xBFBFFF82, 0xBDB851EC],
        ),
    ];
    for &(i, want) in table {
        let (p, m) = lion_elem(f(i[0]), f(i[1]), f(i[2]), &k);
        assert_eq!([p.to_bits(), m.to_bits()], want, "in {i:08X?}");
    }
    // Zero interpolation leaves p unchanged (sign(0) = 0): m = -0, g = +0 gives c = +0, and
    // p - lr*0 keeps p's bits, including -0.
    let k0 = LionConfig::official().scalars(1e-4);
    for p in [0.75f32, -0.0, 0.0, f(1)] {
        let (np, nm) = lion_elem(p, 0.0, -0.0, &k0);
        assert_eq!(np.to_bits(), p.to_bits());
        assert_eq!(nm.to_bits(), 0);
    }
    // A NaN interpolation makes p NaN (stored canonical by the paths).
    assert!(lion_elem(1.0, f32::NAN, 0.0, &k0).0.is_nan());
    // An infinite gradient: c = -inf, p moves by +lr only, m becomes -inf.
    let (np, nm) = lion_elem(1.0, f32::NEG_INFINITY, 0.0, &k0);
    assert_eq!((np, nm), (1.0 + f(0x38D1B717), f32::NEG_INFINITY));
}

#[test]
fn sign_rule() {
    let table: &[(u32, u32)] = &[
        (0x0000_0000, 0x0000_0000), // +0 -> +0
        (0x8000_0000, 0x0000_0000), // -0 -> +0
        (0x0000_0001, 0x3F80_0000), // smallest subnormal -> 1
        (0x8000_0001, 0xBF80_0000),
        (0x7F80_0000, 0x3F80_0000), // +inf -> 1
        (0xFF80_0000, 0xBF80_0000),
        (0x7F7F_FFFF, 0x3F80_0000),
        (0x4049_0FDB, 0x3F80_0000),
        (0xC049_0FDB, 0xBF80_0000),
    ];
    for &(x, want) in table {
        assert_eq!(sign(f(x)).to_bits(), want, "sign({x:#010x})");
    }
    for nan in [0x7FC0_0000u32, 0xFFC0_0000, 0x7F80_0001, 0x7FFF_FFFF] {
        assert!(sign(f(nan)).is_nan());
    }
}

#[test]
fn sgd_elem_table() {
    // lr 0.1, momentum 0.9, weight decay 1e-2; dampening 0.1 (plain) or 0 (Nesterov).
    // (first step, nesterov) -> (p, buf) from p = 0.75, g = -0.3, buf = 0.2.
    let table: &[(u64, bool, [u32; 2])] = &[
        (1, false, [0x3F477CEE, 0xBE95C290]),
        (1, true, [0x3F4E3A2A, 0xBE95C290]),
        (2, false, [0x3F422196, 0xBDAA7EFE]),
        (2, true, [0x3F4A147B, 0xBDE6666A]),
    ];
    for &(t, nesterov, want) in table {
        let c = SgdConfig {
            momentum: 0.9,
            dampening: if nesterov { 0.0 } else { 0.1 },
            weight_decay: 1e-2,
            nesterov,
            ..SgdConfig::new(0.1)
        };
        c.validate().unwrap();
        let k: SgdScalars = c.scalars(0.1, t);
        assert_eq!(k.first_step, (t == 1) as u32);
        let (p, b) = sgd_elem(0.75, f(0xBE99999A), f(0x3E4CCCCD), &k);
        assert_eq!(
            [p.to_bits(), b.to_bits()],
            want,
            "t {t} nesterov {nesterov}"
        );
    }
    // FMA-sensitive: p - lr*buf fused gives 0xBD8F932F.
    let c = SgdConfig {
        momentum: 0.9,
        dampening: 0.1,
        weight_decay: 1e-2,
        ..SgdConfig::new(0.1)
    };
    let (p, b) = sgd_elem(
        f(0xBE0667BD),
        f(0xBF4A7CBD),
        f(0x3DE71498),
        &c.scalars(0.1, 2),
    );
    assert_eq!([p.to_bits(), b.to_bits()], [0xBD8F9330, 0xBF1C8B5D]);
    // Without momentum the buffer is returned unchanged and p = p - lr*(g + wd*p).
    let k = SgdConfig::new(0.5).scalars(0.5, 1);
    let (p, b) = sgd_elem(1.0, 0.25, f(0x7FA0_0000), &k);
    assert_eq!((p, b.to_bits()), (0.875, 0x7FA0_0000));
}
