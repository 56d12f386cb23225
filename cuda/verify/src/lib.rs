//! # adamant-verify
//!
//! The verification matrix: every kernel entry of every PTX module, run on a
//! [`Backend`] (the PTX simulator, or a GPU) and compared with `adamant-core` bit for bit,
//! over storage types, sizes {0, 1, 3, 4095, 4096, 4097, 100003}, value families
//! ([`values::Family`]: random bit patterns with NaN payloads, +-0, subnormals, +-inf, huge
//! and tiny, all-equal, wide-range), unaligned buffers, single and multi-tensor launches and
//! several grid shapes. `adamant verify` and the tests of this crate run it.
//!
//! ## Registering a new PTX module
//! Coverage is a registry, [`SUITES`]: module name (the file stem in `cuda/ptx/`) -> a
//! generator `fn(entry, Level) -> Option<Vec<Case>>` returning the cases of one kernel entry
//! (`None` for an entry it does not cover). Every `.visible .entry` of every module must get
//! at least one case: [`plan`] reports uncovered entries and the `coverage` test fails on
//! them. To add `cuda/ptx/foo.ptx`:
//! 1. add it to `adamant_cuda::ptx::MODULES` (embedding);
//! 2. write `fn foo(entry: &str, level: Level) -> Option<Vec<Case>>` in [`suites`] (or its
//!    own file): build each case with [`Case::new`] from a closure that allocates and uploads
//!    through the `&mut dyn Backend` it gets, launches `("foo", entry)`, computes the same
//!    result with `adamant-core` and returns `Err(CaseError::Mismatch)` on the first
//!    differing bit (see [`cases`] for the helpers used by the existing suites). Put cheap,
//!    sensitive cases first (wide-range and subnormal values on every code path): the
//!    negative controls stop at the first failing case;
//! 3. add `Suite { module: "foo", cases: suites::foo }` to [`SUITES`];
//! 4. add the module to `tests/negative.rs` (`MODULES_UNDER_MUTATION`).

pub mod cases;
pub mod mutants;
pub mod sensitive;
pub mod suites;
pub mod values;

use adamant_cuda::backend::Backend;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How a case failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseError {
    /// The kernel ran and its result differs from core's (or it wrote outside its buffers).
    Mismatch(String),
    /// The backend refused the module or the launch (for the simulator: PTX outside the
    /// audited subset, e.g. `.ftz`), or a device call failed.
    Backend(String),
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Mismatch(m) => write!(f, "mismatch: {m}"),
            CaseError::Backend(m) => write!(f, "refused/failed: {m}"),
        }
    }
}

type Body = dyn Fn(&mut dyn Backend) -> Result<u64, CaseError> + Send + Sync;

/// One launch of one kernel entry, compared with core.
#[derive(Clone)]
pub struct Case {
    /// PTX module (file stem).
    pub module: String,
    /// Kernel entry.
    pub entry: String,
    /// What the case runs (configuration, sizes, families, grid).
    pub label: String,
    /// Values compared, a scheduling hint.
    pub cost: u64,
    body: Arc<Body>,
    /// For a module-level matrix ([`MODULE_MATRICES`]): the entries its last run launched,
    /// each of which the run's result is attributed to.
    launched: Option<Arc<Mutex<Vec<String>>>>,
}

impl Case {
    /// A case of `entry` in `module` running `body`.
    pub fn new(
        module: &str,
        entry: &str,
        label: String,
        cost: u64,
        body: impl Fn(&mut dyn Backend) -> Result<u64, CaseError> + Send + Sync + 'static,
    ) -> Case {
        Case {
            module: module.to_string(),
            entry: entry.to_string(),
            label,
            cost,
            body: Arc::new(body),
            launched: None,
        }
    }

    /// One case running a whole module's conformance matrix through a backend that records
    /// which entries it launches; the result counts for each of them.
    pub fn module_matrix(m: &'static ModuleMatrix, level: Level) -> Case {
        let launched = Arc::new(Mutex::new(Vec::new()));
        let seen = launched.clone();
        let run = m.run;
        let module = m.module;
        Case {
            module: module.to_string(),
            entry: "*".to_string(),
            label: format!("{module} conformance matrix ({level:?})"),
            cost: m.cost,
            body: Arc::new(move |b: &mut dyn Backend| {
                let mut rec = Recording {
                    inner: b,
                    module,
                    seen: Vec::new(),
                };
                let r = run(&mut rec, level);
                let mut names = rec.seen;
                names.sort();
                names.dedup();
                *seen.lock().unwrap() = names;
                r
            }),
            launched: Some(launched),
        }
    }

    /// The entries a result counts for: its own, or those a module matrix launched.
    pub fn entries_covered(&self) -> Vec<String> {
        match &self.launched {
            None => vec![self.entry.clone()],
            Some(l) => l.lock().unwrap().clone(),
        }
    }

    /// Run on `b`; the values compared, or the first difference.
    pub fn run(&self, b: &mut dyn Backend) -> Result<u64, CaseError> {
        (self.body)(b)
    }
}

/// How much of the matrix to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Every dimension of the matrix.
    Full,
    /// The sensitivity cases and a few more (seconds).
    Quick,
}

/// A module's case generator.
#[derive(Clone, Copy)]
pub struct Suite {
    /// Module name (file stem in `cuda/ptx/`).
    pub module: &'static str,
    /// The cases of one entry, or `None` if the suite does not cover it.
    pub cases: fn(&str, Level) -> Option<Vec<Case>>,
}

/// The registry: one suite per PTX module.
pub const SUITES: &[Suite] = &[
    Suite {
        module: "adam",
        cases: suites::adam,
    },
    Suite {
        module: "sgd",
        cases: suites::sgd,
    },
    Suite {
        module: "lion",
        cases: suites::lion,
    },
    Suite {
        module: "reduce",
        cases: suites::reduce,
    },
    Suite {
        module: "step",
        cases: suites::step,
    },
];

/// A module verified by one conformance matrix over all its entries (written with the
/// kernels, in `adamant_cuda::conformance`), rather than by per-entry cases.
pub struct ModuleMatrix {
    /// Module name (file stem in `cuda/ptx/`).
    pub module: &'static str,
    /// Runs the matrix; the values compared, or the first difference.
    pub run: fn(&mut dyn Backend, Level) -> Result<u64, CaseError>,
    /// Scheduling hint (values compared).
    pub cost: u64,
}

fn mismatch(e: String) -> CaseError {
    CaseError::Mismatch(e)
}

fn adam_mini_matrix(b: &mut dyn Backend, level: Level) -> Result<u64, CaseError> {
    // Always the whole matrix: its quick form skips dtype combinations, which would leave
    // entries of the module without a case (a coverage failure of `--quick`).
    let _ = level;
    adamant_cuda::conformance::adam_mini_matrix(b, false)
        .map(|(_, values)| values as u64)
        .map_err(mismatch)
}

fn clip_matrix(b: &mut dyn Backend, _level: Level) -> Result<u64, CaseError> {
    adamant_cuda::conformance::clip_matrix(b)
        .map(|(_, values)| values as u64)
        .map_err(mismatch)
}

fn quant_matrix(b: &mut dyn Backend, level: Level) -> Result<u64, CaseError> {
    adamant_cuda::conformance::quant::quant_matrix(b, level == Level::Quick)
        .map(|c| c.cases as u64)
        .map_err(mismatch)
}

/// Modules covered by a whole-module matrix (Adam-mini, clipping, quantizers).
pub const MODULE_MATRICES: &[ModuleMatrix] = &[
    ModuleMatrix {
        module: "adam_mini",
        run: adam_mini_matrix,
        cost: 600_000,
    },
    ModuleMatrix {
        module: "clip",
        run: clip_matrix,
        cost: 340_000,
    },
    ModuleMatrix {
        module: "quant",
        run: quant_matrix,
        cost: 550_000,
    },
];

/// A backend that forwards everything and records the entries launched in `module`.
struct Recording<'a> {
    inner: &'a mut dyn Backend,
    module: &'static str,
    seen: Vec<String>,
}

impl Backend for Recording<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn alloc(&mut self, bytes: usize) -> Result<u64, adamant_cuda::backend::BackendError> {
        self.inner.alloc(bytes)
    }
    fn upload(&mut self, dst: u64, src: &[u8]) -> Result<(), adamant_cuda::backend::BackendError> {
        self.inner.upload(dst, src)
    }
    fn download(
        &mut self,
        src: u64,
        dst: &mut [u8],
    ) -> Result<(), adamant_cuda::backend::BackendError> {
        self.inner.download(src, dst)
    }
    fn launch(
        &mut self,
        module: &str,
        entry: &str,
        shape: adamant_cuda::backend::LaunchShape,
        params: &[adamant_cuda::backend::ParamValue],
    ) -> Result<(), adamant_cuda::backend::BackendError> {
        if module == self.module && !self.seen.iter().any(|e| e == entry) {
            self.seen.push(entry.to_string());
        }
        self.inner.launch(module, entry, shape, params)
    }
    fn load_module(
        &mut self,
        name: &str,
        ptx: &str,
    ) -> Result<(), adamant_cuda::backend::BackendError> {
        self.inner.load_module(name, ptx)
    }
    fn free_all(&mut self) -> Result<(), adamant_cuda::backend::BackendError> {
        self.inner.free_all()
    }
}

/// The suite of `module`.
pub fn suite(module: &str) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.module == module)
}

/// The cases of one entry (`None`: no coverage).
pub fn entry_cases(module: &str, entry: &str, level: Level) -> Option<Vec<Case>> {
    let c = (suite(module)?.cases)(entry, level)?;
    (!c.is_empty()).then_some(c)
}

/// The matrix for a set of modules (name, PTX text).
pub struct Plan {
    /// Every case, grouped by entry in module order.
    pub cases: Vec<Case>,
    /// (module, entry) pairs of the PTX without registered coverage.
    pub uncovered: Vec<(String, String)>,
    /// Every (module, entry) of the PTX, in order.
    pub entries: Vec<(String, String)>,
}

/// The `.visible .entry` names of a PTX text.
pub fn entries(ptx: &str) -> Vec<String> {
    adamant_cuda::ptx::entries(ptx)
        .map(str::to_string)
        .collect()
}

/// Build the matrix for `modules`.
pub fn plan(modules: &[(String, String)], level: Level) -> Plan {
    let mut p = Plan {
        cases: Vec::new(),
        uncovered: Vec::new(),
        entries: Vec::new(),
    };
    for (name, ptx) in modules {
        if let Some(m) = MODULE_MATRICES.iter().find(|m| m.module == name) {
            // Covered when the run shows the matrix launched each entry (an entry it never
            // launches is reported with 0 cases).
            p.cases.push(Case::module_matrix(m, level));
            for e in entries(ptx) {
                p.entries.push((name.clone(), e));
            }
            continue;
        }
        for e in entries(ptx) {
            p.entries.push((name.clone(), e.clone()));
            match entry_cases(name, &e, level) {
                Some(c) => p.cases.extend(c),
                None => p.uncovered.push((name.clone(), e)),
            }
        }
    }
    p
}

/// The embedded modules as (name, text).
pub fn embedded() -> Vec<(String, String)> {
    adamant_cuda::ptx::MODULES
        .iter()
        .map(|m| (m.name.to_string(), m.ptx.to_string()))
        .collect()
}

/// The result of one case.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Index into the case list.
    pub index: usize,
    /// Values compared, or the failure.
    pub result: Result<u64, CaseError>,
}

/// Run `cases` on `threads` backends made by `make` (each thread makes one and frees its
/// memory after every case). With `stop_at_first_failure`, cases not yet started are
/// skipped once one fails (for negative controls). Outcomes are in case order.
pub fn run_cases<B: Backend, F: Fn() -> Result<B, String> + Sync>(
    make: F,
    cases: &[Case],
    threads: usize,
    stop_at_first_failure: bool,
) -> Result<Vec<Outcome>, String> {
    // Largest first, so the two threads finish together.
    let mut order: Vec<usize> = (0..cases.len()).collect();
    if !stop_at_first_failure {
        order.sort_by_key(|&i| std::cmp::Reverse(cases[i].cost));
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let out: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let err: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut b = match make() {
                    Ok(b) => b,
                    Err(e) => {
                        *err.lock().unwrap() = Some(e);
                        return;
                    }
                };
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = order.get(k) else { return };
                    let result = cases[index].run(&mut b);
                    if result.is_err() && stop_at_first_failure {
                        stop.store(true, Ordering::Relaxed);
                    }
                    let _ = b.free_all();
                    out.lock().unwrap().push(Outcome { index, result });
                }
            });
        }
    });
    if let Some(e) = err.into_inner().unwrap() {
        return Err(e);
    }
    let mut v = out.into_inner().unwrap();
    v.sort_by_key(|o| o.index);
    Ok(v)
}

/// Run `cases` one after another on `b` (a backend that cannot move between threads, such
/// as a GPU context), freeing its memory after every case.
pub fn run_cases_on(b: &mut dyn Backend, cases: &[Case]) -> Vec<Outcome> {
    cases
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let result = c.run(b);
            let _ = b.free_all();
            Outcome { index, result }
        })
        .collect()
}

/// Per-entry summary of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryReport {
    /// Module.
    pub module: String,
    /// Kernel entry.
    pub kernel: String,
    /// Cases run.
    pub cases: usize,
    /// Cases bit-identical to core.
    pub identical: usize,
    /// Values compared in identical cases.
    pub values: u64,
    /// The first failures (label: error), at most 3.
    pub failures: Vec<String>,
}

/// Summarise outcomes per entry, in the order of `p.entries`; uncovered entries get 0 cases.
pub fn summarise(p: &Plan, outcomes: &[Outcome]) -> Vec<EntryReport> {
    let mut reps: Vec<EntryReport> = p
        .entries
        .iter()
        .map(|(m, e)| EntryReport {
            module: m.clone(),
            kernel: e.clone(),
            cases: 0,
            identical: 0,
            values: 0,
            failures: Vec::new(),
        })
        .collect();
    for o in outcomes {
        let c = &p.cases[o.index];
        let covered = c.entries_covered();
        // A failed module matrix may stop before launching anything: charge it to every
        // entry of the module so the failure is never lost.
        let all_of_module = c.launched.is_some() && (o.result.is_err() || covered.is_empty());
        for r in reps
            .iter_mut()
            .filter(|r| r.module == c.module && (all_of_module || covered.contains(&r.kernel)))
        {
            r.cases += 1;
            match &o.result {
                Ok(v) => {
                    r.identical += 1;
                    r.values += v;
                }
                Err(e) => {
                    if r.failures.len() < 3 {
                        r.failures.push(format!("{}: {e}", c.label));
                    }
                }
            }
        }
    }
    reps
}

/// A simulator with `modules` registered (refusing everything outside the audited subset).
pub fn simulator(modules: &[(String, String)]) -> Result<ptx_sim::Simulator, String> {
    let mut s = ptx_sim::Simulator::new();
    for (name, ptx) in modules {
        s.register_module(name, ptx)
            .map_err(|e| format!("module {name}: {e}"))?;
    }
    Ok(s)
}
