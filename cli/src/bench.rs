//! `adamant bench`: how fast the CPU driver runs each rule, judged against the machine.
//!
//! For each rule, storage type, size and thread count, the row's yardstick is a *ceiling*
//! kernel measured in the same run on the same buffers: it reads every buffer the rule reads
//! and writes in place every buffer the rule writes, with no arithmetic (AdamW: 4 streams read,
//! 3 written; Lion and SGD with momentum: 3 read, 2 written). Adam-mini runs on a 4096-wide
//! weight matrix with per-row blocks. Its memory traffic is Lion's (read `p, g, m`, write
//! `p, m`; the one `exp_avg_sq` per row is 1/4096 of a stream), but a row's statistic must be
//! complete before any element of the row is updated, so the gradient is read twice: the
//! driver reads row `j+1`'s gradient from memory for its statistic while it updates row `j`
//! with row `j`'s gradient back from cache. Its ceiling, rw3x2+rr, has that access pattern
//! with no arithmetic; the row also reports its ratio to rw3x2, the traffic alone
//! (`traffic_ratio` in JSON). `adam-mini-heads` runs per-head blocks of 524288 elements
//! (Llama-2-7B's query and key heads), too large for cache: the driver reads a head's
//! gradient for its statistic, then reads it again with `p, m` for the update, so its ceiling
//! is read1 then rw3x2 per head, whole heads per thread (24 bytes per f32 parameter).
//! After a warm-up that has faulted every page in, rule and ceiling calls are timed as
//! tightly interleaved pairs (ABBA order). `ratio` is the median over pairs of ceiling time /
//! rule time, which cancels most of the drift a shared machine adds; `ratio_of_medians`
//! (JSON) divides the two medians. A STREAM triad row (STREAM's 12
//! bytes per element) is reported per thread count for reference.

use adamant_core::store::{Element, StateElement};
use adamant_core::{
    bf16, Adam, AdamConfig, AdamMini, AdamMiniConfig, BlockLayout, Lion, LionConfig, Sgd,
    SgdConfig, StepOptions,
};
use adamant_cpu::{ceiling, default_threads, Driver};
use std::hint::black_box;
use std::time::Instant;

const USAGE: &str = "\
usage: adamant bench [--json] [--quick] [--sizes 16M,64M] [--threads 1,all]
                     [--rules adamw,adam,sgd,lion,adam-mini,adam-mini-heads]
                     [--dtypes f32,bf16,bf16-states]
                     [--rounds N] [--from-step N]

  --json     one JSON object per line instead of a table
  --quick    small size (1M) and few rounds: a smoke test that takes seconds
  --sizes    parameter counts; K/M/G suffixes are powers of 2 (16M = 16*2^20)
  --threads  thread counts; `all` is every core (default: 1 and all)
  --rules    adamw (decoupled decay), adam (L2 decay), sgd (momentum 0.9), lion,
             adam-mini (per-row blocks of 4096: a 4096-wide weight matrix),
             adam-mini-heads (per-head blocks of 524288: Llama-2-7B's q and k heads;
             too large for cache, so the gradient is read twice from memory)
  --dtypes   f32: everything f32; bf16: bf16 params and grads, f32 states;
             bf16-states: bf16 params, grads and states
  --rounds   rounds of interleaved rule/ceiling pairs per row (default 5, quick 2)
  --from-step  step counter the optimizers start from (default 100000: the steady state
             of a long run, where AdamW's bias_correction2 has rounded to 1 and its divide
             is skipped; 0 measures the first steps of a run)
  ADAMANT_CPU_ISA=sse2|avx2|avx512 caps the instruction set of the rule kernels.
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    AdamW,
    Adam,
    Sgd,
    Lion,
    AdamMini,
    AdamMiniHeads,
}

impl Rule {
    const ALL: [Rule; 6] = [
        Rule::AdamW,
        Rule::Adam,
        Rule::Sgd,
        Rule::Lion,
        Rule::AdamMini,
        Rule::AdamMiniHeads,
    ];
    fn name(self) -> &'static str {
        match self {
            Rule::AdamW => "adamw",
            Rule::Adam => "adam",
            Rule::Sgd => "sgd",
            Rule::Lion => "lion",
            Rule::AdamMini => "adam-mini",
            Rule::AdamMiniHeads => "adam-mini-heads",
        }
    }
    /// Whether the rule touches the second state buffer (4 read / 3 written).
    fn two_states(self) -> bool {
        matches!(self, Rule::AdamW | Rule::Adam)
    }
    /// The name of the rule's ceiling kernel (see the module docs).
    fn ceiling_kernel(self) -> &'static str {
        match self {
            Rule::AdamW | Rule::Adam => "rw4x3",
            Rule::Sgd | Rule::Lion => "rw3x2",
            Rule::AdamMini => "rw3x2+rr",
            Rule::AdamMiniHeads => "r1,rw3x2",
        }
    }
    /// How many times the gradient is read from memory (Adam-mini's large blocks read it
    /// once for the statistic and once more for the update).
    fn grad_reads(self) -> usize {
        match self {
            Rule::AdamMiniHeads => 2,
            _ => 1,
        }
    }
    /// The kernel that moves the rule's memory traffic once, with no re-read.
    fn traffic_kernel(self) -> &'static str {
        if self.two_states() {
            "rw4x3"
        } else {
            "rw3x2"
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dtypes {
    F32,
    Bf16,
    Bf16States,
}

impl Dtypes {
    const ALL: [Dtypes; 3] = [Dtypes::F32, Dtypes::Bf16, Dtypes::Bf16States];
    fn name(self) -> &'static str {
        match self {
            Dtypes::F32 => "f32",
            Dtypes::Bf16 => "bf16",
            Dtypes::Bf16States => "bf16-states",
        }
    }
}

struct Config {
    json: bool,
    sizes: Vec<usize>,
    threads: Vec<usize>,
    rules: Vec<Rule>,
    dtypes: Vec<Dtypes>,
    rounds: usize,
    quick: bool,
    from_step: u64,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1usize << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let v: usize = num.parse().map_err(|_| format!("bad size `{s}`"))?;
    match v.checked_mul(mult) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!("bad size `{s}`")),
    }
}

fn list<T>(s: &str, f: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    s.split(',').filter(|x| !x.is_empty()).map(f).collect()
}

fn parse_args(args: &[String]) -> Result<Config, String> {
    let all = default_threads();
    let mut c = Config {
        json: false,
        sizes: vec![16 << 20, 64 << 20],
        threads: if all > 1 { vec![1, all] } else { vec![1] },
        rules: Rule::ALL.to_vec(),
        dtypes: Dtypes::ALL.to_vec(),
        rounds: 5,
        quick: false,
        from_step: 100_000,
    };
    let mut sizes_given = false;
    let mut rounds_given = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--json" => c.json = true,
            "--quick" => c.quick = true,
            "--sizes" => {
                c.sizes = list(&value("--sizes")?, parse_size)?;
                sizes_given = true;
            }
            "--threads" => {
                c.threads = list(&value("--threads")?, |t| match t {
                    "all" => Ok(all),
                    _ => t
                        .parse::<usize>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("bad thread count `{t}`")),
                })?
            }
            "--rules" => {
                c.rules = list(&value("--rules")?, |r| {
                    Rule::ALL
                        .into_iter()
                        .find(|x| x.name() == r)
                        .ok_or_else(|| format!("unknown rule `{r}`"))
                })?
            }
            "--dtypes" => {
                c.dtypes = list(&value("--dtypes")?, |d| {
                    Dtypes::ALL
                        .into_iter()
                        .find(|x| x.name() == d)
                        .ok_or_else(|| format!("unknown dtype set `{d}`"))
                })?
            }
            "--rounds" => {
                c.rounds = value("--rounds")?
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("bad --rounds")?;
                rounds_given = true;
            }
            "--from-step" => {
                c.from_step = value("--from-step")?
                    .parse::<u64>()
                    .map_err(|_| "bad --from-step".to_string())?;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    if c.quick {
        if !sizes_given {
            c.sizes = vec![1 << 20];
        }
        if !rounds_given {
            c.rounds = 2;
        }
    }
    Ok(c)
}

/// One measured row.
struct Row {
    rule: &'static str,
    dtype: &'static str,
    n: usize,
    threads: usize,
    isa: &'static str,
    bytes_per_param: usize,
    seconds: f64,
    ceiling_kernel: &'static str,
    ceiling_seconds: f64,
    /// Median over interleaved pairs of ceiling time / rule time.
    paired_ratio: f64,
    /// The kernel that moves the rule's traffic once (the ceiling kernel itself unless the
    /// rule must re-read a buffer), its median time and its paired ratio to the rule.
    traffic_kernel: &'static str,
    traffic_seconds: f64,
    traffic_ratio: f64,
    triad_bytes_per_s: Option<f64>,
    samples: usize,
    from_step: u64,
}

impl Row {
    fn params_per_s(&self) -> f64 {
        self.n as f64 / self.seconds
    }
    fn bytes_per_s(&self) -> f64 {
        (self.n * self.bytes_per_param) as f64 / self.seconds
    }
    fn ceiling_bytes_per_s(&self) -> f64 {
        (self.n * self.bytes_per_param) as f64 / self.ceiling_seconds
    }
    /// The headline ratio: the median of paired ratios (see [`interleaved`]).
    fn ratio(&self) -> f64 {
        self.paired_ratio
    }
    fn ratio_of_medians(&self) -> f64 {
        self.bytes_per_s() / self.ceiling_bytes_per_s()
    }

    fn json(&self) -> String {
        let triad = match self.triad_bytes_per_s {
            Some(t) => format!("{t:.6e}"),
            None => "null".into(),
        };
        format!(
            "{{\"rule\":\"{}\",\"dtype\":\"{}\",\"n\":{},\"threads\":{},\"isa\":\"{}\",\
             \"bytes_per_param\":{},\"seconds_per_step\":{:.6e},\"params_per_s\":{:.6e},\
             \"bytes_per_s\":{:.6e},\"ceiling_kernel\":\"{}\",\"ceiling_bytes_per_s\":{:.6e},\
             \"ratio\":{:.4},\"ratio_of_medians\":{:.4},\"traffic_kernel\":\"{}\",\
             \"traffic_bytes_per_s\":{:.6e},\"traffic_ratio\":{:.4},\"triad_bytes_per_s\":{},\
             \"samples\":{},\"from_step\":{}}}",
            self.rule,
            self.dtype,
            self.n,
            self.threads,
            self.isa,
            self.bytes_per_param,
            self.seconds,
            self.params_per_s(),
            self.bytes_per_s(),
            self.ceiling_kernel,
            self.ceiling_bytes_per_s(),
            self.ratio(),
            self.ratio_of_medians(),
            self.traffic_kernel,
            (self.n * self.bytes_per_param) as f64 / self.traffic_seconds,
            self.traffic_ratio,
            triad,
            self.samples,
            self.from_step
        )
    }

    fn table_line(&self) -> String {
        let traffic = if self.traffic_kernel == self.ceiling_kernel {
            String::new()
        } else {
            format!("  ({} {:.3})", self.traffic_kernel, self.traffic_ratio)
        };
        format!(
            "{:<15} {:<12} {:>5} {:>3} {:<7} {:>4} {:>9.3} {:>9.3} {:>8.1} {:<8} {:>8.1} {:>6.3}{}",
            self.rule,
            self.dtype,
            human(self.n),
            self.threads,
            self.isa,
            self.bytes_per_param,
            self.seconds * 1e3,
            self.params_per_s() / 1e9,
            self.bytes_per_s() / 1e9,
            self.ceiling_kernel,
            self.ceiling_bytes_per_s() / 1e9,
            self.ratio(),
            traffic
        )
    }
}

const TABLE_HEADER: &str = "rule            dtype            n thr isa     B/p   ms/step   Gparam/s     GB/s ceil.    ceil GB/s  ratio";

fn human(n: usize) -> String {
    if n % (1 << 20) == 0 {
        format!("{}M", n >> 20)
    } else if n % (1 << 10) == 0 {
        format!("{}K", n >> 10)
    } else {
        n.to_string()
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let k = v.len();
    if k % 2 == 1 {
        v[k / 2]
    } else {
        0.5 * (v[k / 2 - 1] + v[k / 2])
    }
}

/// Adam-mini's row length in the bench: a 4096-wide weight matrix (one row if `n` is not a
/// multiple of it).
const MINI_ROW: usize = 4096;
/// Adam-mini's head size in the `adam-mini-heads` rows: Llama-2-7B's query and key heads,
/// `dim*dim/n_heads = 4096*4096/32` (one block if `n` is not a multiple of it).
const MINI_HEAD: usize = 4096 * 4096 / 32;

/// Steps timed per round: about 1 GiB of f32 elements touched, between 3 and 10 steps.
fn steps_per_round(n: usize, quick: bool) -> usize {
    if quick {
        3
    } else {
        ((256usize << 20) / n.max(1)).clamp(3, 10)
    }
}

/// What one timed call of [`interleaved`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Rule,
    Ceiling,
    /// The traffic-only kernel, for rules whose ceiling re-reads a buffer.
    Traffic,
}

/// Time `run(Call::Rule)` and `run(Call::Ceiling)` (and `run(Call::Traffic)` when `traffic`)
/// as tightly interleaved groups, `rounds * k` groups in mirrored order (rule first in even
/// groups, last in odd ones), after one warm-up call of each. Returns the median times
/// (seconds), the medians of the paired ratios `kernel time / rule time` within a group, and
/// the number of groups. Pairing each rule call with the kernel calls next to it cancels most
/// of the drift a shared machine adds.
fn interleaved(rounds: usize, k: usize, traffic: bool, run: &mut dyn FnMut(Call)) -> Timing {
    let order: &[Call] = if traffic {
        &[Call::Rule, Call::Ceiling, Call::Traffic]
    } else {
        &[Call::Rule, Call::Ceiling]
    };
    for &call in order {
        run(call);
    }
    let groups = rounds * k;
    let (mut tr, mut tc, mut tt) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ratios, mut traffic_ratios) = (Vec::new(), Vec::new());
    for i in 0..groups {
        let mut t = [0.0f64; 3];
        let mut time = |call: Call| {
            let t0 = Instant::now();
            run(call);
            t[call as usize] = t0.elapsed().as_secs_f64();
        };
        if i % 2 == 0 {
            order.iter().for_each(|&c| time(c));
        } else {
            order.iter().rev().for_each(|&c| time(c));
        }
        tr.push(t[0]);
        tc.push(t[1]);
        ratios.push(t[1] / t[0]);
        if traffic {
            tt.push(t[2]);
            traffic_ratios.push(t[2] / t[0]);
        }
    }
    let ceiling = median(&mut tc);
    let ratio = median(&mut ratios);
    Timing {
        rule: median(&mut tr),
        ceiling,
        ratio,
        traffic: if traffic { median(&mut tt) } else { ceiling },
        traffic_ratio: if traffic {
            median(&mut traffic_ratios)
        } else {
            ratio
        },
        samples: groups,
    }
}

struct Timing {
    rule: f64,
    ceiling: f64,
    ratio: f64,
    /// The traffic-only kernel's median time and paired ratio (the ceiling's own when the
    /// ceiling is the traffic-only kernel).
    traffic: f64,
    traffic_ratio: f64,
    samples: usize,
}

fn filled<T: Element>(n: usize, f: impl Fn(usize) -> f32) -> Vec<T> {
    // Writing every element faults every page in before anything is timed.
    (0..n).map(|i| T::narrow(f(i))).collect()
}

fn bench_dtype<P: Element, G: Element, S: StateElement>(
    c: &Config,
    dtypes: Dtypes,
    n: usize,
    triad: &[(usize, f64)],
    emit: &mut dyn FnMut(Row),
) {
    let mut param: Vec<P> = filled(n, |i| 0.5 + (i % 997) as f32 * 1e-3);
    let grad: Vec<G> = filled(n, |i| ((i % 113) as f32 - 56.0) * 1e-3);
    let mut exp_avg: Vec<S> = filled(n, |i| (i % 7) as f32 * 1e-4);
    let mut exp_avg_sq: Vec<S> = filled(n, |i| (i % 5) as f32 * 1e-6);
    let opts = StepOptions::new(1e-4);
    for &rule in &c.rules {
        let states = if rule.two_states() { 2 } else { 1 };
        let bytes_per_param = 2 * P::DTYPE.size()
            + rule.grad_reads() * G::DTYPE.size()
            + 2 * states * S::DTYPE.size();
        for &threads in &c.threads {
            let driver = Driver::new().with_threads(threads);
            let k = steps_per_round(n, c.quick);
            // Ceiling kernels xor with `grad & mask`; the mask is 0 but hidden from the compiler,
            // so the values never change and no load or store can be left out.
            let mask = black_box(0u32);
            let (p, g, m, v) = (&mut param, &grad, &mut exp_avg, &mut exp_avg_sq);
            let timing = match rule {
                Rule::AdamW | Rule::Adam => {
                    let config = AdamConfig {
                        weight_decay: 1e-2,
                        decoupled: rule == Rule::AdamW,
                        ..AdamConfig::adamw()
                    };
                    let mut opt = Adam::new(config).expect("valid config");
                    opt.state.step = c.from_step;
                    interleaved(c.rounds, k, false, &mut |call| {
                        if call == Call::Rule {
                            driver
                                .adam_step(&mut opt, p, g, m, v, &opts)
                                .expect("valid step");
                        } else {
                            ceiling::rw4x3(&driver, p, g, m, v, mask);
                        }
                    })
                }
                Rule::Sgd => {
                    let config = SgdConfig {
                        momentum: 0.9,
                        ..SgdConfig::new(1e-3)
                    };
                    let mut opt = Sgd::new(config).expect("valid config");
                    opt.state.step = c.from_step;
                    interleaved(c.rounds, k, false, &mut |call| {
                        if call == Call::Rule {
                            driver
                                .sgd_step(&mut opt, p, g, m, &opts)
                                .expect("valid step");
                        } else {
                            ceiling::rw3x2(&driver, p, g, m, mask);
                        }
                    })
                }
                Rule::AdamMini | Rule::AdamMiniHeads => {
                    let heads = rule == Rule::AdamMiniHeads;
                    let size = if heads { MINI_HEAD } else { MINI_ROW };
                    let block_len = if n % size == 0 { size } else { n };
                    let layout = if heads {
                        BlockLayout::Heads {
                            head_numel: block_len,
                        }
                    } else {
                        BlockLayout::Rows { row_len: block_len }
                    };
                    let mut mini_v: Vec<S> = filled(n / block_len, |i| (i % 5) as f32 * 1e-6);
                    let config = AdamMiniConfig {
                        weight_decay: 1e-2,
                        ..AdamMiniConfig::default()
                    };
                    let mut opt = AdamMini::new(config).expect("valid config");
                    opt.state.step = c.from_step;
                    interleaved(c.rounds, k, true, &mut |call| match call {
                        Call::Rule => {
                            driver
                                .adam_mini_step(
                                    &mut opt,
                                    p,
                                    g,
                                    m,
                                    &mut mini_v,
                                    &layout,
                                    true,
                                    &opts,
                                )
                                .expect("valid step");
                        }
                        Call::Ceiling => {
                            black_box(if heads {
                                ceiling::read1_rw3x2_blocks(&driver, p, g, m, block_len, mask)
                            } else {
                                ceiling::rw3x2_reread(&driver, p, g, m, block_len, mask)
                            });
                        }
                        Call::Traffic => ceiling::rw3x2(&driver, p, g, m, mask),
                    })
                }
                Rule::Lion => {
                    let mut opt = Lion::new(LionConfig::official()).expect("valid config");
                    opt.state.step = c.from_step;
                    interleaved(c.rounds, k, false, &mut |call| {
                        if call == Call::Rule {
                            driver
                                .lion_step(&mut opt, p, g, m, &opts)
                                .expect("valid step");
                        } else {
                            ceiling::rw3x2(&driver, p, g, m, mask);
                        }
                    })
                }
            };
            emit(Row {
                rule: rule.name(),
                dtype: dtypes.name(),
                n,
                threads,
                isa: driver.isa().name(),
                bytes_per_param,
                seconds: timing.rule,
                ceiling_kernel: rule.ceiling_kernel(),
                ceiling_seconds: timing.ceiling,
                paired_ratio: timing.ratio,
                traffic_kernel: rule.traffic_kernel(),
                traffic_seconds: timing.traffic,
                traffic_ratio: timing.traffic_ratio,
                triad_bytes_per_s: triad.iter().find(|t| t.0 == threads).map(|t| t.1),
                samples: timing.samples,
                from_step: c.from_step,
            });
        }
    }
}

/// STREAM triad over `n` f32 elements per array at each thread count: one row each
/// (12 bytes per element, STREAM's counting). Returns (threads, bytes/s).
fn bench_triad(c: &Config, n: usize, emit: &mut dyn FnMut(Row)) -> Vec<(usize, f64)> {
    let mut a: Vec<f32> = filled(n, |_| 1.0);
    let b: Vec<f32> = filled(n, |i| (i % 3) as f32);
    let cc: Vec<f32> = filled(n, |i| (i % 5) as f32);
    let mut out = Vec::new();
    for &threads in &c.threads {
        let driver = Driver::new().with_threads(threads);
        let k = steps_per_round(n, c.quick);
        let scalar = black_box(3.0f32);
        let mut times = Vec::new();
        ceiling::triad(&driver, &mut a, &b, &cc, scalar);
        for _ in 0..c.rounds * k {
            let t0 = Instant::now();
            ceiling::triad(&driver, &mut a, &b, &cc, scalar);
            times.push(t0.elapsed().as_secs_f64());
        }
        let samples = times.len();
        let t = median(&mut times);
        let row = Row {
            rule: "triad",
            dtype: "f32",
            n,
            threads,
            isa: adamant_cpu::detected_isa().name(),
            bytes_per_param: 12,
            seconds: t,
            ceiling_kernel: "triad",
            ceiling_seconds: t,
            paired_ratio: 1.0,
            traffic_kernel: "triad",
            traffic_seconds: t,
            traffic_ratio: 1.0,
            triad_bytes_per_s: None,
            samples,
            from_step: c.from_step,
        };
        out.push((threads, row.bytes_per_s()));
        emit(row);
    }
    out
}

/// `adamant bench`.
pub fn run(args: &[String]) -> Result<(), String> {
    let c = parse_args(args)?;
    let json = c.json;
    let mut emit = |row: Row| {
        if json {
            println!("{}", row.json());
        } else {
            println!("{}", row.table_line());
        }
    };
    if !json {
        println!(
            "adamant bench: rule ISA {} (detected {}), {} core(s); {} rounds of interleaved pairs",
            adamant_cpu::isa(),
            adamant_cpu::detected_isa(),
            default_threads(),
            c.rounds
        );
        println!(
            "ratio = ceiling time / rule time, median over tightly interleaved pairs \
             (same buffers, same threads, same run)"
        );
        println!("{TABLE_HEADER}");
    }
    let triad_n = *c.sizes.iter().max().unwrap_or(&(1 << 20));
    let triad = bench_triad(&c, triad_n, &mut emit);
    for &n in &c.sizes {
        for &d in &c.dtypes {
            match d {
                Dtypes::F32 => bench_dtype::<f32, f32, f32>(&c, d, n, &triad, &mut emit),
                Dtypes::Bf16 => bench_dtype::<bf16, bf16, f32>(&c, d, n, &triad, &mut emit),
                Dtypes::Bf16States => bench_dtype::<bf16, bf16, bf16>(&c, d, n, &triad, &mut emit),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanity_sizes_and_median() {
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("3k"), Ok(3072));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err() && parse_size("x").is_err());
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn spec_quick_bench_emits_every_row_with_the_required_fields() {
        let args: Vec<String> = [
            "--quick",
            "--sizes",
            "64K",
            "--threads",
            "1,2",
            "--rounds",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = parse_args(&args).unwrap();
        let mut rows = Vec::new();
        let triad = bench_triad(&c, 1 << 16, &mut |r| rows.push(r));
        bench_dtype::<f32, f32, f32>(&c, Dtypes::F32, 1 << 16, &triad, &mut |r| rows.push(r));
        bench_dtype::<bf16, bf16, f32>(&c, Dtypes::Bf16, 1 << 16, &triad, &mut |r| rows.push(r));
        assert_eq!(rows.len(), 2 + 2 * 6 * 2);
        for r in &rows {
            let j = r.json();
            for field in [
                "\"rule\"",
                "\"dtype\"",
                "\"n\"",
                "\"threads\"",
                "\"params_per_s\"",
                "\"bytes_per_s\"",
                "\"ceiling_bytes_per_s\"",
                "\"ratio\"",
                "\"isa\"",
                "\"bytes_per_param\"",
            ] {
                assert!(j.contains(field), "{j}");
            }
            assert!(r.seconds > 0.0 && r.ceiling_seconds > 0.0 && r.ratio().is_finite());
        }
        let adamw_f32 = rows
            .iter()
            .find(|r| r.rule == "adamw" && r.dtype == "f32")
            .unwrap();
        assert_eq!(adamw_f32.bytes_per_param, 28);
        let lion_bf16 = rows
            .iter()
            .find(|r| r.rule == "lion" && r.dtype == "bf16")
            .unwrap();
        assert_eq!(lion_bf16.bytes_per_param, 14);
        assert_eq!(lion_bf16.ceiling_kernel, "rw3x2");
        let mini = rows
            .iter()
            .find(|r| r.rule == "adam-mini" && r.dtype == "f32")
            .unwrap();
        assert_eq!(
            (mini.bytes_per_param, mini.ceiling_kernel),
            (20, "rw3x2+rr")
        );
        assert_eq!(mini.traffic_kernel, "rw3x2");
        assert!(mini.traffic_seconds > 0.0 && mini.traffic_ratio.is_finite());
        assert!(mini.json().contains("\"traffic_ratio\""));
        let heads = rows
            .iter()
            .find(|r| r.rule == "adam-mini-heads" && r.dtype == "f32")
            .unwrap();
        assert_eq!(
            (heads.bytes_per_param, heads.ceiling_kernel),
            (24, "r1,rw3x2")
        );
    }
}
