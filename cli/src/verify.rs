//! `adamant verify [--json] [--ptx-dir DIR] [--quick] [--threads N]`: the verification
//! matrix (`adamant-verify`) on the PTX simulator, and on GPU 0 when one is present. Prints,
//! per kernel entry, the cases bit-identical to core out of the cases run; fails (exit status
//! 1) on any mismatch, refusal or entry without coverage.
//!
//! `--ptx-dir DIR` runs the matrix on the `.ptx` files of DIR (one per module, named as in
//! `cuda/ptx/`: `adam.ptx`, `reduce.ptx`, ...) instead of the embedded PTX, so a user can audit
//! a PTX build of their own. The simulator refuses PTX outside the audited subset (f32 ops
//! without `.rn`, `.ftz`, `.approx`, ...); a refused module fails all its kernels.

use adamant_cuda::backend::{Backend, BackendError};
use adamant_cuda::driver::CudaBackend;
use adamant_verify::{
    plan, run_cases, run_cases_on, summarise, Case, EntryReport, Level, Outcome, Plan,
};
use std::time::Instant;

struct Opts {
    json: bool,
    quick: bool,
    ptx_dir: Option<String>,
    threads: usize,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        json: false,
        quick: false,
        ptx_dir: None,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "--quick" => o.quick = true,
            "--ptx-dir" => {
                o.ptx_dir = Some(it.next().ok_or("--ptx-dir needs a directory")?.clone())
            }
            "--threads" => {
                o.threads = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--threads needs a positive number")?
            }
            other => {
                return Err(format!(
                    "verify: unknown option `{other}` (usage: adamant verify [--json] \
                     [--ptx-dir DIR] [--quick] [--threads N])"
                ))
            }
        }
    }
    Ok(o)
}

/// The modules to verify: the embedded ones, or every embedded module's file from `dir`.
fn modules(dir: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let known: Vec<&str> = adamant_cuda::ptx::MODULES.iter().map(|m| m.name).collect();
    let Some(dir) = dir else {
        return Ok(adamant_verify::embedded());
    };
    let mut found = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| format!("--ptx-dir {dir}: {e}"))?;
    for f in rd {
        let path = f.map_err(|e| format!("--ptx-dir {dir}: {e}"))?.path();
        if path.extension().is_none_or(|e| e != "ptx") {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !known.contains(&name.as_str()) {
            return Err(format!(
                "--ptx-dir: unknown module {} (known modules: {})",
                path.display(),
                known.join(", ")
            ));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("--ptx-dir: {}: {e}", path.display()))?;
        found.push((name, text));
    }
    let missing: Vec<&str> = known
        .iter()
        .copied()
        .filter(|k| !found.iter().any(|(n, _)| n == k))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "--ptx-dir {dir}: missing {} (every module must be present)",
            missing
                .iter()
                .map(|m| format!("{m}.ptx"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // The embedded order, so reports read the same with and without --ptx-dir.
    found.sort_by_key(|(n, _)| known.iter().position(|k| k == n));
    Ok(found)
}

/// Reports of one backend; modules it refused count every planned case as failed.
fn run_on(
    runner: impl FnOnce(&[Case]) -> Result<Vec<Outcome>, String>,
    p: &Plan,
    refused: &[(String, String)],
) -> Result<Vec<EntryReport>, String> {
    let cases: Vec<_> = p
        .cases
        .iter()
        .filter(|c| !refused.iter().any(|(m, _)| *m == c.module))
        .cloned()
        .collect();
    let sub = Plan {
        cases,
        uncovered: p.uncovered.clone(),
        entries: p.entries.clone(),
    };
    let out = runner(&sub.cases)?;
    let mut reps = summarise(&sub, &out);
    for r in reps.iter_mut() {
        if let Some((_, why)) = refused.iter().find(|(m, _)| *m == r.module) {
            r.cases = p
                .cases
                .iter()
                .filter(|c| c.module == r.module && c.entry == r.kernel)
                .count();
            r.identical = 0;
            r.failures = vec![format!("module refused: {why}")];
        }
    }
    Ok(reps)
}

fn print(reps: &[EntryReport], backend: &str, json: bool) {
    for r in reps {
        if json {
            println!(
                "{{\"kernel\":\"{}\",\"backend\":\"{}\",\"cases\":{},\"identical\":{}}}",
                r.kernel,
                backend.replace('"', "'"),
                r.cases,
                r.identical
            );
        } else {
            let mark = if r.cases > 0 && r.identical == r.cases {
                "ok"
            } else {
                "FAIL"
            };
            println!(
                "{:34} {:10} {:>5} / {:<5} identical {}",
                r.kernel, backend, r.identical, r.cases, mark
            );
        }
        if r.cases == 0 {
            eprintln!("  {}: no verification cases registered", r.kernel);
        }
        for f in &r.failures {
            eprintln!("  {}: {f}", r.kernel);
        }
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let modules = modules(o.ptx_dir.as_deref())?;
    let level = if o.quick { Level::Quick } else { Level::Full };
    let p = plan(&modules, level);
    let mut failed = 0usize;
    let count = |reps: &[EntryReport]| {
        reps.iter()
            .filter(|r| r.cases == 0 || r.identical != r.cases)
            .count()
    };

    // The simulator: modules it refuses fail their kernels.
    let mut sim = ptx_sim::Simulator::new();
    let mut refused = Vec::new();
    for (name, ptx) in &modules {
        if let Err(e) = sim.register_module(name, ptx) {
            refused.push((name.clone(), e.to_string()));
        }
    }
    let t = Instant::now();
    let reps = run_on(
        |cases| run_cases(|| Ok(sim.fresh()), cases, o.threads, false),
        &p,
        &refused,
    )?;
    let secs = t.elapsed().as_secs_f64();
    print(&reps, "ptx-sim", o.json);
    failed += count(&reps);
    if !o.json {
        let cases: usize = reps.iter().map(|r| r.cases).sum();
        let values: u64 = reps.iter().map(|r| r.values).sum();
        println!(
            "ptx-sim: {} kernels, {cases} cases, {values} values compared in {secs:.1} s",
            reps.len()
        );
    }

    // A GPU, when present: the same cases, one thread.
    match CudaBackend::new(0) {
        Ok(mut gpu) => {
            let name = gpu.name();
            let mut refused = Vec::new();
            if o.ptx_dir.is_some() {
                for (m, ptx) in &modules {
                    if let Err(e) = gpu.load_module(m, ptx) {
                        refused.push((m.clone(), e.to_string()));
                    }
                }
            }
            let reps = run_on(|cases| Ok(run_cases_on(&mut gpu, cases)), &p, &refused)?;
            let short = name.split(' ').next().unwrap_or("cuda").to_string();
            print(&reps, &short, o.json);
            failed += count(&reps);
        }
        Err(BackendError::NoDevice(why)) => {
            eprintln!("no GPU: simulator only ({why})");
        }
        Err(e) => return Err(format!("CUDA is present but unusable: {e}")),
    }
    if failed > 0 {
        return Err(format!(
            "verify: {failed} kernel reports with mismatches, refusals or no coverage"
        ));
    }
    Ok(())
}
