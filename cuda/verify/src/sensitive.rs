//! Planted inputs that expose a changed kernel. For each rule, a model of the formula's
//! mutants (one multiply-add pair contracted into `fma`, one op flushing subnormal inputs
//! and results to zero as `.ftz` does) is evaluated on random inputs until one gives stored
//! bits different from the exact formula; those inputs are planted in the tensors of the
//! sensitivity cases at every residue mod 8 (the 128-bit path is unrolled 8 times, each lane
//! with its own instructions) and in the scalar path. Random data alone rarely separates
//! them when parameters and states are stored as bf16/f16 (a 1-ulp f32 difference changes the
//! stored value only near a rounding boundary).

use crate::cases::RuleConfig;
use crate::values::{self, Family, Rng};
use adamant_core::rules::adam::AdamScalars;
use adamant_core::rules::lion::{sign, LionScalars};
use adamant_core::rules::sgd::SgdScalars;
use adamant_core::step::GradPrep;
use adamant_core::store::Element;
use adamant_core::Dtype;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Which change the model applies: none, contraction at add site `fma`, or `.ftz` on op `ftz`.
#[derive(Clone, Copy)]
struct Variant {
    fma: u8,
    ftz: u8,
}

impl Variant {
    fn flush(&self, k: u8, x: f32) -> f32 {
        if self.ftz == k && x != 0.0 && x.is_subnormal() {
            f32::from_bits(x.to_bits() & 0x8000_0000)
        } else {
            x
        }
    }
    fn op(&self, k: u8, a: f32, b: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
        self.flush(k, f(self.flush(k, a), self.flush(k, b)))
    }
    fn mul(&self, k: u8, a: f32, b: f32) -> f32 {
        self.op(k, a, b, |x, y| x * y)
    }
    fn add(&self, k: u8, a: f32, b: f32) -> f32 {
        self.op(k, a, b, |x, y| x + y)
    }
    fn sub(&self, k: u8, a: f32, b: f32) -> f32 {
        self.op(k, a, b, |x, y| x - y)
    }
    fn div(&self, k: u8, a: f32, b: f32) -> f32 {
        self.op(k, a, b, |x, y| x / y)
    }
    /// `a*b + c` with the product rounded (ops `km`, `ka`), or fused when `fma == site`.
    fn mul_add(&self, site: u8, km: u8, ka: u8, a: f32, b: f32, c: f32) -> f32 {
        if self.fma == site {
            a.mul_add(b, c)
        } else {
            self.add(ka, self.mul(km, a, b), c)
        }
    }
}

/// Random inputs tried per variant before it is taken as inseparable (an equivalent
/// mutant, e.g. `.ftz` on an op that never sees a subnormal for these storage types, or a gap
/// of the search). Contractions at a bf16 state update are aimed at a rounding boundary
/// (a mantissa sweep), which finds one within a few hundred tries.
const FMA_TRIES: usize = 30_000;
const FTZ_TRIES: usize = 30_000;

fn prep(v: &Variant, p: &GradPrep, g: f32) -> f32 {
    let mut g = g;
    if p.grad_scale != 1.0 {
        g = v.div(1, g, p.grad_scale);
    }
    if p.clip_coef != 1.0 {
        g = v.mul(2, g, p.clip_coef);
    }
    g
}

fn adam(v: &Variant, k: &AdamScalars, p: f32, g: f32, m: f32, s: f32) -> [f32; 3] {
    let mut g = g;
    if k.weight_decay != 0.0 {
        // g + wd*p
        g = v.mul_add(1, 3, 4, k.weight_decay, p, g);
    }
    let q = v.mul(5, p, k.decay);
    let b1m = v.mul(6, k.beta1, m);
    let ob1g = v.mul(7, k.one_minus_beta1, g);
    let m = if v.fma == 2 {
        k.beta1.mul_add(m, ob1g)
    } else if v.fma == 3 {
        k.one_minus_beta1.mul_add(g, b1m)
    } else {
        v.add(8, b1m, ob1g)
    };
    let gg = v.mul(9, g, g);
    let b2v = v.mul(10, k.beta2, s);
    let ob2gg = v.mul(11, k.one_minus_beta2, gg);
    let s = if v.fma == 4 {
        k.beta2.mul_add(s, ob2gg)
    } else if v.fma == 5 {
        k.one_minus_beta2.mul_add(gg, b2v)
    } else {
        v.add(12, b2v, ob2gg)
    };
    let r = v.flush(13, v.flush(13, s).sqrt());
    let d = v.add(15, v.div(14, r, k.bias_correction2_sqrt), k.eps);
    let u = v.mul(17, k.step_size, v.div(16, m, d));
    [v.sub(18, q, u), m, s]
}

fn sgd(v: &Variant, k: &SgdScalars, p: f32, g: f32, b: f32) -> [f32; 3] {
    let mut g = g;
    if k.weight_decay != 0.0 {
        g = v.mul_add(1, 3, 4, k.weight_decay, p, g);
    }
    let mut buf = b;
    if k.momentum != 0.0 {
        buf = if k.first_step != 0 {
            g
        } else {
            let mb = v.mul(5, k.momentum, buf);
            let dg = v.mul(6, k.one_minus_dampening, g);
            if v.fma == 2 {
                k.momentum.mul_add(buf, dg)
            } else if v.fma == 3 {
                k.one_minus_dampening.mul_add(g, mb)
            } else {
                v.add(7, mb, dg)
            }
        };
        g = if k.nesterov != 0 {
            v.mul_add(4, 8, 9, k.momentum, buf, g)
        } else {
            buf
        };
    }
    [v.sub(11, p, v.mul(10, k.lr, g)), buf, 0.0]
}

fn lion(v: &Variant, k: &LionScalars, p: f32, g: f32, m: f32) -> [f32; 3] {
    let q = v.mul(3, p, k.decay);
    let b1m = v.mul(4, k.beta1, m);
    let o1g = v.mul(5, k.one_minus_beta1, g);
    let c = if v.fma == 1 {
        k.beta1.mul_add(m, o1g)
    } else if v.fma == 2 {
        k.one_minus_beta1.mul_add(g, b1m)
    } else {
        v.add(6, b1m, o1g)
    };
    let p = v.sub(8, q, v.mul(7, k.lr, sign(c)));
    let b2m = v.mul(9, k.beta2, m);
    let o2g = v.mul(10, k.one_minus_beta2, g);
    let m = if v.fma == 3 {
        k.beta2.mul_add(m, o2g)
    } else if v.fma == 4 {
        k.one_minus_beta2.mul_add(g, b2m)
    } else {
        v.add(11, b2m, o2g)
    };
    [p, m, 0.0]
}

/// Stored bits of `x` as type `dt` (nearest even, canonical NaN).
fn narrow(dt: Dtype, x: f32) -> u32 {
    match dt {
        Dtype::F32 => f32::narrow(x).to_bits(),
        Dtype::Bf16 => adamant_core::bf16::narrow(x).to_bits_u32(),
        Dtype::F16 => adamant_core::f16::narrow(x).to_bits_u32(),
    }
}

fn widen(dt: Dtype, b: u32) -> f32 {
    match dt {
        Dtype::F32 => f32::from_bits(b),
        Dtype::Bf16 => adamant_core::bf16::from_bits_u32(b).widen(),
        Dtype::F16 => adamant_core::f16::from_bits_u32(b).widen(),
    }
}

/// Inputs (raw bits p, g, s0, s1) separating variants from the exact formula.
type Found = Vec<[u32; 4]>;

fn cache() -> &'static Mutex<HashMap<String, Found>> {
    static C: OnceLock<Mutex<HashMap<String, Found>>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Inputs that separate each variant of the formula (one per separable variant), for rule
/// `config` at step `t`, learning rate `lr`, gradient preparation `gp`, storage `dtypes`.
/// Stochastic rounding of parameters is modelled as nearest (callers plant only without it).
pub fn separating_inputs(
    config: &RuleConfig,
    t: u64,
    lr: f64,
    gp: GradPrep,
    dtypes: (Dtype, Dtype, Dtype),
) -> Found {
    let key = format!("{config:?} {t} {lr} {gp:?} {dtypes:?}");
    if let Some(f) = cache().lock().unwrap().get(&key) {
        return f.clone();
    }
    let (pt, gt, st) = dtypes;
    enum K {
        A(AdamScalars),
        S(SgdScalars),
        L(LionScalars),
    }
    let k = match config {
        RuleConfig::Adam(c) => K::A(c.scalars(lr, t)),
        RuleConfig::Sgd(c) => K::S(c.scalars(lr, t)),
        RuleConfig::Lion(c) => K::L(c.scalars(lr)),
    };
    let eval = |v: &Variant, x: &[u32; 4]| -> [u32; 3] {
        let (p, g, m, s) = (
            widen(pt, x[0]),
            widen(gt, x[1]),
            widen(st, x[2]),
            widen(st, x[3]),
        );
        let g = prep(v, &gp, g);
        let r = match &k {
            K::A(k) => adam(v, k, p, g, m, s),
            K::S(k) => sgd(v, k, p, g, m),
            K::L(k) => lion(v, k, p, g, m),
        };
        [narrow(pt, r[0]), narrow(st, r[1]), narrow(st, r[2])]
    };
    let exact = Variant { fma: 0, ftz: 0 };
    let exact_f32 = |x: &[u32; 4]| -> [f32; 3] {
        let (p, g, m, s) = (
            widen(pt, x[0]),
            widen(gt, x[1]),
            widen(st, x[2]),
            widen(st, x[3]),
        );
        let g = prep(&exact, &gp, g);
        match &k {
            K::A(k) => adam(&exact, k, p, g, m, s),
            K::S(k) => sgd(&exact, k, p, g, m),
            K::L(k) => lion(&exact, k, p, g, m),
        }
    };
    // (state input, state output) of an add site that updates a state.
    let aim = |site: u8| -> Option<(usize, usize)> {
        match (&k, site) {
            (K::A(_), 2 | 3) => Some((2, 1)),
            (K::A(_), 4 | 5) => Some((3, 2)),
            (K::S(_), 2 | 3) => Some((2, 1)),
            (K::L(_), 3 | 4) => Some((2, 1)),
            _ => None,
        }
    };
    let (sites, ops) = match config {
        RuleConfig::Adam(_) => (5, 18),
        RuleConfig::Sgd(_) => (4, 11),
        RuleConfig::Lion(_) => (4, 11),
    };
    let mut variants = Vec::new();
    for f in 1..=sites {
        variants.push(Variant { fma: f, ftz: 0 });
    }
    for z in 1..=ops {
        variants.push(Variant { fma: 0, ftz: z });
    }
    // A gradient that cancels the other term of add site `site` (then the rounding error of
    // the product is the whole result, and a contraction shows in any storage type).
    let cancel = |site: u8, p: f32, m: f32| -> Option<f32> {
        let g = match &k {
            K::A(k) => match site {
                1 => -(k.weight_decay * p),
                2 | 3 => -(k.beta1 * m) / k.one_minus_beta1,
                _ => return None,
            },
            K::S(k) => match site {
                1 => -(k.weight_decay * p),
                2 | 3 => -(k.momentum * m) / k.one_minus_dampening,
                // Nesterov: g + momentum*(momentum*buf + (1-dampening)*g) = 0.
                4 => -(k.momentum * k.momentum * m) / (1.0 + k.momentum * k.one_minus_dampening),
                _ => return None,
            },
            K::L(k) => match site {
                1 | 2 => -(k.beta1 * m) / k.one_minus_beta1,
                3 | 4 => -(k.beta2 * m) / k.one_minus_beta2,
                _ => return None,
            },
        };
        Some(g * gp.grad_scale / gp.clip_coef)
    };
    let fams = [
        Family::Wide,
        Family::Subnormal,
        Family::Zeros,
        Family::Extreme,
    ];
    let mut rng = Rng(0xC0FFEE ^ t);
    let mut found = Vec::new();
    for v in &variants {
        let tries = if v.fma != 0 { FMA_TRIES } else { FTZ_TRIES };
        let mut hit = false;
        for _ in 0..tries {
            let f = |rng: &mut Rng| fams[rng.below(4) as usize];
            let (fp, fg, fm, fs) = (f(&mut rng), f(&mut rng), f(&mut rng), f(&mut rng));
            let mut x = [
                values::one(&mut rng, pt, fp, false),
                values::one(&mut rng, gt, fg, false),
                values::one(&mut rng, st, fm, false),
                values::one(&mut rng, st, fs, true),
            ];
            let l2 = matches!(&k, K::A(_) | K::S(_)) && v.fma == 1;
            if l2 && rng.below(3) == 0 {
                // The L2 site the other way round: a parameter cancelling the gradient (for
                // parameter types finer than the gradient type).
                let wd = match &k {
                    K::A(k) => k.weight_decay,
                    K::S(k) => k.weight_decay,
                    K::L(_) => 0.0,
                };
                let g = prep(&exact, &gp, widen(gt, x[1]));
                x[0] = narrow(pt, -g / wd);
            } else if v.fma != 0 && rng.below(2) == 0 {
                if let Some(g) = cancel(v.fma, widen(pt, x[0]), widen(st, x[2])) {
                    x[1] = narrow(gt, g);
                }
            } else if v.fma != 0 && st == Dtype::Bf16 {
                // Aim a bf16 state at a rounding boundary: sweep the mantissa of its input
                // until the exact f32 result sits next to a bf16 tie, where a 1-ulp change
                // of the f32 result changes the stored bits.
                if let Some((input, output)) = aim(v.fma) {
                    for mant in 0..128u32 {
                        let mut y = x;
                        y[input] = (x[input] & !0x7F) | mant;
                        let r = exact_f32(&y)[output].to_bits() & 0xFFFF;
                        if (0x7FFF..=0x8001).contains(&r) {
                            x = y;
                            break;
                        }
                    }
                }
            }
            if eval(v, &x) != eval(&exact, &x) {
                found.push(x);
                hit = true;
                break;
            }
        }
        // Sites the configuration does not use (their variant equals the formula) are not
        // swept; Adam's random search already separates every site.
        let used = match &k {
            K::A(_) => false,
            K::S(k) => match v.fma {
                1 => k.weight_decay != 0.0,
                2 | 3 => k.momentum != 0.0 && k.first_step == 0,
                _ => k.momentum != 0.0 && k.nesterov != 0,
            },
            K::L(_) => true,
        };
        if !hit && v.fma != 0 && used {
            if let Some(x) = sweep(v, &mut rng, &eval, &cancel, (pt, gt, st)) {
                found.push(x);
            }
        }
    }
    cache().lock().unwrap().insert(key, found.clone());
    found
}

/// Base points of [`sweep`].
const SWEEP_BASES: usize = 6;

/// Structured search for a contraction the random search missed: from a base point whose
/// gradient cancels the other term of the add site, sweep the low mantissa bits of the
/// gradient, the state and the parameter (jointly for the gradient and the state when both
/// are narrow). A contraction changes the f32 result by about an ulp; it shows in bf16/f16
/// storage only when the result sits at a narrow rounding tie, and in Lion only when `c`
/// cancels exactly (`sign(c)` is all that is kept), which a sweep through consecutive inputs
/// reaches and random inputs almost never do.
fn sweep(
    v: &Variant,
    rng: &mut Rng,
    eval: &dyn Fn(&Variant, &[u32; 4]) -> [u32; 3],
    cancel: &dyn Fn(u8, f32, f32) -> Option<f32>,
    (pt, gt, st): (Dtype, Dtype, Dtype),
) -> Option<[u32; 4]> {
    let exact = Variant { fma: 0, ftz: 0 };
    let span = |dt: Dtype| -> u32 {
        match dt {
            Dtype::F32 => 1 << 16,
            Dtype::Bf16 => 1 << 7,
            Dtype::F16 => 1 << 10,
        }
    };
    let differs = |y: &[u32; 4]| eval(v, y) != eval(&exact, y);
    for base in 0..SWEEP_BASES {
        let mut x = [
            values::one(rng, pt, Family::Wide, false),
            values::one(rng, gt, Family::Wide, false),
            values::one(rng, st, Family::Wide, false),
            values::one(rng, st, Family::Wide, true),
        ];
        if let Some(g) = cancel(v.fma, widen(pt, x[0]), widen(st, x[2])) {
            // Half the bases cancel exactly (Lion's sign), half make the two terms of the
            // sum comparable (a rounding of the product then reaches the result).
            let g = match base % 2 {
                0 => g,
                _ => g * [-1.7f32, -0.6, 0.8, 1.3][rng.below(4) as usize],
            };
            if g.is_finite() && g != 0.0 {
                x[1] = narrow(gt, g);
            }
        }
        if gt != Dtype::F32 && st != Dtype::F32 {
            for a in 0..span(gt) {
                for b in 0..span(st) {
                    let mut y = x;
                    y[1] = (x[1] & !(span(gt) - 1)) | a;
                    y[2] = (x[2] & !(span(st) - 1)) | b;
                    if differs(&y) {
                        return Some(y);
                    }
                }
            }
        }
        for (i, dt) in [(1, gt), (2, st), (0, pt)] {
            for a in 0..span(dt) {
                let mut y = x;
                y[i] = (x[i] & !(span(dt) - 1)) | a;
                if differs(&y) {
                    return Some(y);
                }
            }
        }
    }
    None
}
