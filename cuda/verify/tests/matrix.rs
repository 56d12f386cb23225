//! The whole verification matrix on the PTX simulator: every entry of every embedded module,
//! bit-identical to core; and every `.entry` of `cuda/ptx/*.ptx` has registered coverage.

use adamant_verify::{embedded, plan, run_cases, simulator, summarise, Level};
use std::time::Instant;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(2))
}

#[test]
fn every_entry_of_cuda_ptx_has_coverage() {
    // The files on disk, not only the embedded list: a new module must be embedded and
    // registered before this passes.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ptx");
    let mut modules = Vec::new();
    for f in std::fs::read_dir(&dir).expect("cuda/ptx") {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|e| e == "ptx") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            modules.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    modules.sort();
    assert!(modules.len() >= 5, "{modules:?}");
    for (name, _) in &modules {
        assert!(
            adamant_cuda::ptx::module(name).is_some(),
            "cuda/ptx/{name}.ptx is not embedded in adamant_cuda::ptx::MODULES"
        );
    }
    for level in [Level::Full, Level::Quick] {
        let p = plan(&modules, level);
        assert!(
            p.uncovered.is_empty(),
            "entries without registered verification cases ({level:?}): {:?}",
            p.uncovered
        );
        assert!(p.entries.len() >= 67);
    }
}

#[test]
fn the_matrix_is_bit_identical_on_the_simulator() {
    let modules = embedded();
    let level = if cfg!(debug_assertions) && std::env::var_os("ADAMANT_VERIFY_FULL").is_none() {
        // Debug test builds run the quick matrix; CI runs `cargo test --release` for the
        // full one (or sets ADAMANT_VERIFY_FULL).
        Level::Quick
    } else {
        Level::Full
    };
    let p = plan(&modules, level);
    assert!(p.uncovered.is_empty(), "{:?}", p.uncovered);
    let base = simulator(&modules).expect("embedded PTX parses");
    let t = Instant::now();
    let out = run_cases(|| Ok(base.fresh()), &p.cases, threads(), false).unwrap();
    let dt = t.elapsed().as_secs_f64();
    let reps = summarise(&p, &out);
    let values: u64 = reps.iter().map(|r| r.values).sum();
    eprintln!(
        "{level:?} matrix: {} cases over {} entries, {values} values compared, {dt:.1} s on {} threads",
        p.cases.len(),
        reps.len(),
        threads()
    );
    let mut bad = Vec::new();
    for r in &reps {
        eprintln!("  {:32} {:4} / {:4}", r.kernel, r.identical, r.cases);
        if r.cases == 0 || r.identical != r.cases {
            bad.push(format!(
                "{}: {}/{} {:?}",
                r.kernel, r.identical, r.cases, r.failures
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
