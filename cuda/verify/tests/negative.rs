//! Negative controls: mutated copies of the embedded PTX must make the matrix fail (a
//! mismatch, or a refusal). For every module and every mutation kind of `ptx_sim::mutate`
//! (a `.rn` multiply-add pair contracted into `fma`, one op given `.ftz`, two reduction
//! operands swapped, two shuffle offsets swapped), sites are sampled in every kernel; every
//! sampled mutant must be caught. Each test prints its kill rate.

use adamant_verify::mutants::{isolate, judge};
use adamant_verify::{embedded, entries, Level};
use ptx_sim::{mutate, ParseOptions};

type Mutator = fn(&str, usize) -> Option<String>;

/// Modules whose kernels are mutated (every embedded module with floating-point work).
const MODULES_UNDER_MUTATION: &[&str] = &["adam", "sgd", "lion", "reduce", "step"];

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(2))
}

/// Number of sites of `m` in `text` (sites are numbered 0..count).
fn count(m: Mutator, text: &str) -> usize {
    let (mut lo, mut hi) = (0usize, 1usize);
    while m(text, hi - 1).is_some() {
        lo = hi;
        hi *= 2;
    }
    // m(lo - 1) is Some (or lo == 0), m(hi - 1) is None.
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if m(text, mid - 1).is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// `k` sites spread evenly over `0..n` (all of them when `n <= k`).
fn spread(n: usize, k: usize) -> Vec<usize> {
    if n <= k {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..k).map(|i| i * n / k + (n / k) / 2).collect();
    v.dedup();
    v
}

struct Tally {
    sites: usize,
    killed: usize,
    equivalent: Vec<String>,
    survivors: Vec<String>,
}

/// Mutants no input can expose (the mutated kernel computes the same bits for every input),
/// recognised structurally so that everything else must be caught:
///
/// `.ftz` on `p * decay` (Adam, Lion) in a kernel with f16 parameters: a widened f16 is 0 or
/// at least 2^-24 in magnitude, and `decay = f32(1 - lr*wd)` (f64 arithmetic) is 0 or at least
/// 2^-53, so the product is 0 or at least 2^-77: never an f32 subnormal, `.ftz` never fires.
///
/// `.ftz` anywhere in a reduction of f16 values: widened f16 values are multiples of 2^-24,
/// their squares multiples of 2^-48, and so is every partial sum: never an f32 subnormal.
fn equivalent(module: &str, entry: &str, kernel: &str, mutated_line: &str) -> bool {
    if module == "reduce" && entry.ends_with("_f16") && mutated_line.contains(".ftz") {
        return true;
    }
    let f16_param = entry
        .strip_prefix(&format!("adamant_{module}_"))
        .is_some_and(|r| r.starts_with("f16_"));
    if !(f16_param && (module == "adam" || module == "lion")) {
        return false;
    }
    let Some(ops) = mutated_line.trim().strip_prefix("mul.rn.ftz.f32") else {
        return false;
    };
    let ops: Vec<&str> = ops
        .trim()
        .trim_end_matches(';')
        .split(',')
        .map(str::trim)
        .collect();
    // The register holding `decay`, the first field of the per-step scalars in shared memory.
    let decay = kernel.lines().find_map(|l| {
        let l = l.trim();
        let r = l.strip_prefix("ld.shared.f32")?;
        l.contains("shared_k_$_0]")
            .then(|| r.trim().split(',').next().unwrap().trim().to_string())
    });
    decay.is_some_and(|d| ops.len() == 3 && (ops[1] == d || ops[2] == d))
}

/// Mutate `per_kernel` sites of every kernel of `module` with `m`; `filter` picks kernels.
fn control(
    module: &str,
    m: Mutator,
    per_kernel: usize,
    opts: ParseOptions,
    filter: &dyn Fn(&str) -> bool,
) -> Tally {
    let all = embedded();
    let ptx = &all.iter().find(|(n, _)| n == module).unwrap().1;
    let mut t = Tally {
        sites: 0,
        killed: 0,
        equivalent: Vec::new(),
        survivors: Vec::new(),
    };
    for e in entries(ptx).iter().filter(|e| filter(e)) {
        let text = isolate(ptx, e).unwrap();
        let n = count(m, &text);
        for k in spread(n, per_kernel) {
            let mutated = m(&text, k).unwrap();
            let v = judge(module, &text, &mutated, opts, Level::Full, threads())
                .unwrap_or_else(|err| panic!("{e} site {k}: {err}"));
            t.sites += 1;
            if v.killed {
                t.killed += 1;
            } else {
                let line = mutated
                    .lines()
                    .zip(text.lines())
                    .find(|(a, b)| a != b)
                    .map(|(a, _)| a.trim().to_string())
                    .unwrap_or_default();
                let what = format!("{e} site {k}/{n}: {line}");
                if equivalent(module, e, &text, &line) {
                    t.equivalent.push(what);
                } else {
                    t.survivors.push(what);
                }
            }
        }
    }
    t
}

/// Kill rate required per module: every sampled mutant that is not equivalent. (SGD and Lion
/// needed targeted inputs: contractions hidden by bf16/f16 parameter stores and by Lion's
/// `sign(c)`, found by the mantissa sweep of `sensitive.rs`; `.ftz` on `lr*sign(c)` and on
/// `g*clip_coef`, exposed by the subnormal-`lr` and tiny-clip sensitivity cases.) With the
/// default options the simulator refuses every `.ftz`, so `adamant verify --ptx-dir` fails
/// on all `.ftz` mutants regardless.
fn required(_what: &str) -> f64 {
    1.0
}

fn check(what: &str, t: Tally, min_sites: usize) {
    let live = t.sites - t.equivalent.len();
    eprintln!(
        "{what}: {}/{} mutants killed ({:.0}%), {} equivalent (not counted)",
        t.killed,
        live,
        100.0 * t.killed as f64 / live.max(1) as f64,
        t.equivalent.len()
    );
    for s in &t.equivalent {
        eprintln!("  equivalent: {s}");
    }
    for s in &t.survivors {
        eprintln!("  survivor: {s}");
    }
    assert!(t.sites >= min_sites, "{what}: only {} sites", t.sites);
    let rate = t.killed as f64 / live.max(1) as f64;
    assert!(
        rate >= required(what),
        "{what}: {} survivors, kill rate {rate:.2} < {}",
        t.survivors.len(),
        required(what)
    );
}

const PERMIT_FTZ: ParseOptions = ParseOptions { allow_ftz: true };

#[test]
fn contracted_multiply_adds_are_caught() {
    for module in ["adam", "sgd", "lion"] {
        let t = control(
            module,
            mutate::fuse_mul_add,
            2,
            ParseOptions::default(),
            &|_| true,
        );
        check(&format!("{module} fuse_mul_add"), t, 10);
    }
}

#[test]
fn every_multiply_add_pair_of_one_adam_kernel_is_caught() {
    let t = control(
        "adam",
        mutate::fuse_mul_add,
        usize::MAX,
        ParseOptions::default(),
        &|e| e == "adamant_adam_f32_f32_f32",
    );
    check("adam f32 every fuse_mul_add site", t, 10);
}

#[test]
fn ftz_is_caught() {
    for module in MODULES_UNDER_MUTATION {
        if *module == "step" {
            continue; // no f32 arithmetic
        }
        let t = control(module, mutate::add_ftz, 2, PERMIT_FTZ, &|_| true);
        check(&format!("{module} add_ftz (permitted)"), t, 10);
    }
}

#[test]
fn ftz_is_refused_by_default() {
    for module in ["adam", "reduce"] {
        let t = control(module, mutate::add_ftz, 1, ParseOptions::default(), &|_| {
            true
        });
        check(&format!("{module} add_ftz (default options)"), t, 6);
    }
}

#[test]
fn reassociated_sums_are_caught() {
    for module in MODULES_UNDER_MUTATION {
        let t = control(
            module,
            mutate::swap_reduction_operands,
            3,
            ParseOptions::default(),
            &|_| true,
        );
        eprintln!("{module}: {} reassociation sites sampled", t.sites);
        if t.sites > 0 {
            check(&format!("{module} swap_reduction_operands"), t, 1);
        }
    }
}

#[test]
fn swapped_shuffle_offsets_are_caught() {
    // Max-abs trees are order-free: swapping their shuffle offsets is an equivalent program.
    let t = control(
        "reduce",
        mutate::swap_shfl_offsets,
        4,
        ParseOptions::default(),
        &|e| !e.contains("maxabs"),
    );
    check("reduce swap_shfl_offsets", t, 10);
}
