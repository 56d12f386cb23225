//! Golden hashes: every rule x storage combination runs a fixed trajectory and the bits of
//! all final buffers are hashed (FNV-1a 64) and compared with `golden/hashes.txt`, which also
//! records `NUMERIC_CONTRACT_VERSION`.
//!
//! A mismatch means some formula, scalar recipe, rounding or reduction changed its bits: that
//! is a numeric contract change. Bump `NUMERIC_CONTRACT_VERSION` in `core/src/lib.rs`, then
//! regenerate with `ADAMANT_BLESS=1 cargo test -p adamant-core --test golden` and commit the
//! file with the version bump.

mod common;

use adamant_core::schedule::Schedule;
use adamant_core::{
    bf16, f16, Adam, AdamConfig, Element, Lion, LionConfig, Sgd, SgdConfig, StateElement,
    StepOptions, StepOutcome, NUMERIC_CONTRACT_VERSION,
};
use common::{fnv1a, mixed, Rng, FNV_OFFSET};
use std::fmt::Write as _;

const N: usize = 1031;
const STEPS: u64 = 20;
const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/hashes.txt");

#[derive(Clone, Copy)]
enum Rule {
    Adam(AdamConfig),
    Sgd(SgdConfig),
    Lion(LionConfig),
}

fn rules() -> Vec<(&'static str, Rule)> {
    let sgd = |momentum, dampening, weight_decay, nesterov| SgdConfig {
        momentum,
        dampening,
        weight_decay,
        nesterov,
        ..SgdConfig::new(0.05)
    };
    vec![
        ("adamw", Rule::Adam(AdamConfig::adamw())),
        (
            "adam_l2",
            Rule::Adam(AdamConfig {
                weight_decay: 1e-2,
                ..AdamConfig::adam()
            }),
        ),
        (
            "adamw_sr",
            Rule::Adam(AdamConfig {
                stochastic_rounding_seed: Some(0xADA),
                ..AdamConfig::adamw()
            }),
        ),
        ("sgd", Rule::Sgd(sgd(0.0, 0.0, 0.0, false))),
        ("sgd_momentum_wd", Rule::Sgd(sgd(0.9, 0.1, 1e-4, false))),
        ("sgd_nesterov", Rule::Sgd(sgd(0.9, 0.0, 1e-4, true))),
        (
            "sgd_sr",
            Rule::Sgd(SgdConfig {
                stochastic_rounding_seed: Some(7),
                ..sgd(0.9, 0.0, 0.0, false)
            }),
        ),
        (
            "lion",
            Rule::Lion(LionConfig {
                weight_decay: 0.1,
                ..LionConfig::official()
            }),
        ),
        (
            "lion_sr",
            Rule::Lion(LionConfig {
                weight_decay: 0.1,
                stochastic_rounding_seed: Some(99),
                ..LionConfig::official()
            }),
        ),
    ]
}

/// Per-step options of the fixed trajectory: warm-up cosine lr; every 5th step carries a loss
/// scale (gradients scaled to match); every 3rd a clip coefficient; step 13 is a `found_inf`
/// skip and step 17 has a non-finite gradient under a loss scale (skipped too).
fn options(k: u64, peak: f64) -> StepOptions {
    let lr = Schedule::warmup_cosine(0.0, peak, 4, STEPS, peak * 0.1).lr_at(k);
    let mut o = StepOptions::new(lr);
    if k % 5 == 4 || k == 17 {
        o.grad_scale = Some(1024.0);
    }
    if k % 3 == 2 {
        o.clip_coef = Some(0.75);
    }
    o.found_inf = k == 13;
    o
}

/// Gradient of step `k`: ordinary values with adversarial elements (only where no check
/// runs, so NaN/inf reach the arithmetic on some steps), scaled when a loss scale is set.
fn grads<G: Element>(k: u64, o: &StepOptions) -> Vec<G> {
    let mut r = Rng(0x6AD0 + k);
    let adversarial = if o.grad_scale.is_some() || k > 2 {
        0
    } else {
        50
    };
    let scale = o.grad_scale.unwrap_or(1.0) as f64;
    let mut g: Vec<G> = (0..N)
        .map(|_| mixed::<G>(&mut r, 0.1 * scale, adversarial))
        .collect();
    if k == 17 {
        g[N / 3] = G::narrow(f32::INFINITY);
    }
    g
}

fn run<P: Element, G: Element, S: StateElement>(rule: Rule) -> u64 {
    let mut r = Rng(0x5EED);
    // Initial buffers hold adversarial patterns (NaN payloads, subnormals, +-inf, extremes)
    // at one element in 40, ordinary values elsewhere.
    let mut p: Vec<P> = (0..N).map(|_| mixed(&mut r, 1.0, 40)).collect();
    let mut m: Vec<S> = (0..N).map(|_| mixed(&mut r, 0.01, 40)).collect();
    let mut v: Vec<S> = (0..N)
        .map(|_| S::narrow(mixed::<S>(&mut r, 1e-3, 40).widen().abs()))
        .collect();
    let mut applied = 0;
    let mut adam = Adam::new(AdamConfig::adamw()).unwrap();
    let mut sgd = Sgd::new(SgdConfig::new(0.0)).unwrap();
    let mut lion = Lion::new(LionConfig::official()).unwrap();
    match rule {
        Rule::Adam(c) => adam = Adam::new(c).unwrap(),
        Rule::Sgd(c) => sgd = Sgd::new(c).unwrap(),
        Rule::Lion(c) => lion = Lion::new(c).unwrap(),
    }
    for k in 0..STEPS {
        let out: StepOutcome = match rule {
            Rule::Adam(_) => {
                let o = options(k, 1e-2);
                let g = grads::<G>(k, &o);
                adam.step(&mut p, &g, &mut m, &mut v, &o).unwrap()
            }
            Rule::Sgd(c) => {
                let o = options(k, c.lr);
                let g = grads::<G>(k, &o);
                let buf = if c.momentum != 0.0 {
                    &mut m[..]
                } else {
                    &mut [][..]
                };
                sgd.step(&mut p, &g, buf, &o).unwrap()
            }
            Rule::Lion(_) => {
                let o = options(k, 1e-3);
                let g = grads::<G>(k, &o);
                lion.step(&mut p, &g, &mut m, &o).unwrap()
            }
        };
        if out.applied() {
            applied += 1;
        }
        assert_eq!(out.applied(), k != 13 && k != 17, "step {k}: {out:?}");
    }
    assert_eq!(applied, STEPS - 2);
    let mut h = fnv1a(FNV_OFFSET, &p);
    h = fnv1a(h, &m);
    fnv1a(h, &v)
}

macro_rules! matrix {
    ($rule:expr, $out:expr, $name:expr; $($p:ty, $g:ty, $s:ty;)*) => {$(
        let h = run::<$p, $g, $s>($rule);
        writeln!(
            $out,
            "{} p={} g={} s={} {:016x}",
            $name,
            <$p as Element>::DTYPE,
            <$g as Element>::DTYPE,
            <$s as Element>::DTYPE,
            h
        )
        .unwrap();
    )*};
}

fn compute() -> String {
    let mut out = String::new();
    writeln!(
        out,
        "# adamant-core golden hashes: FNV-1a 64 of the final param, state1, state2 bits after \
         {STEPS} steps, n = {N} (core/tests/golden.rs).\n# A change is a numeric contract change: \
         bump NUMERIC_CONTRACT_VERSION, then ADAMANT_BLESS=1 cargo test -p adamant-core --test golden"
    )
    .unwrap();
    writeln!(out, "NUMERIC_CONTRACT_VERSION {NUMERIC_CONTRACT_VERSION}").unwrap();
    for (name, rule) in rules() {
        matrix!(rule, out, name;
            f32, f32, f32; f32, f32, bf16; f32, bf16, f32; f32, bf16, bf16; f32, f16, f32;
            f32, f16, bf16; bf16, f32, f32; bf16, f32, bf16; bf16, bf16, f32; bf16, bf16, bf16;
            bf16, f16, f32; bf16, f16, bf16; f16, f32, f32; f16, f32, bf16; f16, bf16, f32;
            f16, bf16, bf16; f16, f16, f32; f16, f16, bf16;
        );
    }
    out
}

#[test]
fn golden_hashes_match_the_pinned_contract() {
    let got = compute();
    check_stochastic_rounding_rows(&got);
    if std::env::var("ADAMANT_BLESS").as_deref() == Ok("1") {
        std::fs::write(FILE, &got).expect("write golden file");
        eprintln!("golden: wrote {FILE}");
        return;
    }
    let want = std::fs::read_to_string(FILE).unwrap_or_else(|e| {
        panic!("golden: cannot read {FILE} ({e}); create it with ADAMANT_BLESS=1 cargo test -p adamant-core --test golden")
    });
    let body = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let (want, got) = (body(&want), body(&got));
    let pinned_version = want.first().cloned().unwrap_or_default();
    let changed: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("  pinned {w}\n  now    {g}"))
        .collect();
    assert!(
        changed.is_empty() && want.len() == got.len(),
        "golden hashes differ from {FILE} (pinned `{pinned_version}`, this build `NUMERIC_CONTRACT_VERSION {NUMERIC_CONTRACT_VERSION}`):\n{}\n\
         {} of {} lines differ. If the change is intended it is a numeric contract change: bump \
         NUMERIC_CONTRACT_VERSION in core/src/lib.rs and regenerate with\n  ADAMANT_BLESS=1 cargo test -p adamant-core --test golden",
        changed.join("\n"),
        changed.len(),
        got.len()
    );
}

/// Stochastic rounding applies to bf16 parameters only: its rows equal the nearest-rounding
/// rows for f32 and f16 parameters and differ for bf16 ones.
fn check_stochastic_rounding_rows(table: &str) {
    let hash = |key: &str| -> &str {
        table
            .lines()
            .find_map(|l| l.strip_prefix(key).map(str::trim))
            .unwrap_or_else(|| panic!("no row `{key}`"))
    };
    for (plain, sr) in [("adamw", "adamw_sr"), ("lion", "lion_sr")] {
        for p in ["f32", "bf16", "f16"] {
            for g in ["f32", "bf16", "f16"] {
                for s in ["f32", "bf16"] {
                    let shape = format!(" p={p} g={g} s={s} ");
                    let (a, b) = (
                        hash(&format!("{plain}{shape}")),
                        hash(&format!("{sr}{shape}")),
                    );
                    assert_eq!(a == b, p != "bf16", "{plain} vs {sr}{shape}: {a} {b}");
                }
            }
        }
    }
}

/// The hashes see every buffer: one flipped bit in a state changes the hash.
#[test]
fn golden_hash_sees_one_bit() {
    let a = vec![1.0f32; 10];
    let mut b = a.clone();
    b[9] = f32::from_bits(b[9].to_bits() ^ 1);
    assert_ne!(fnv1a(FNV_OFFSET, &a), fnv1a(FNV_OFFSET, &b));
    let c = vec![bf16::from_f32(1.0); 10];
    let d = vec![f16::from_f32(1.0); 10];
    assert_ne!(fnv1a(FNV_OFFSET, &c), fnv1a(FNV_OFFSET, &d));
}
