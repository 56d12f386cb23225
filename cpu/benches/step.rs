//! Criterion benches of the driver: one step of each rule, f32 and bf16 parameters, on one
//! thread and on all cores, at 4M parameters (64 MiB of f32 state: past most caches).
//! `adamant bench` is the full report against ceiling kernels; this is for quick A/B work.

use adamant_core::store::{Element, StateElement};
use adamant_core::{bf16, Adam, AdamConfig, Lion, LionConfig, Sgd, SgdConfig, StepOptions};
use adamant_cpu::{default_threads, Driver};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const N: usize = 4 << 20;

fn filled<T: Element>(f: impl Fn(usize) -> f32) -> Vec<T> {
    (0..N).map(|i| T::narrow(f(i))).collect()
}

fn rules<P: Element, G: Element, S: StateElement>(c: &mut Criterion, dtype: &str) {
    let mut p: Vec<P> = filled(|i| 0.5 + (i % 997) as f32 * 1e-3);
    let g: Vec<G> = filled(|i| ((i % 113) as f32 - 56.0) * 1e-3);
    let mut m: Vec<S> = filled(|_| 0.0);
    let mut v: Vec<S> = filled(|_| 0.0);
    let opts = StepOptions::new(1e-4);
    let (ps, gs, ss) = (P::DTYPE.size(), G::DTYPE.size(), S::DTYPE.size());
    let mut threads = vec![1];
    if default_threads() > 1 {
        threads.push(default_threads());
    }
    let mut group = c.benchmark_group(format!("step/{dtype}"));
    group.sample_size(20);
    for &t in &threads {
        let d = Driver::new().with_threads(t);
        let isa = d.isa();
        group.throughput(Throughput::Bytes((N * (2 * ps + gs + 4 * ss)) as u64));
        let mut adam = Adam::new(AdamConfig::adamw()).unwrap();
        group.bench_function(format!("adamw/{isa}/{t}t"), |b| {
            b.iter(|| d.adam_step(&mut adam, &mut p, &g, &mut m, &mut v, &opts))
        });
        group.throughput(Throughput::Bytes((N * (2 * ps + gs + 2 * ss)) as u64));
        let mut lion = Lion::new(LionConfig::official()).unwrap();
        group.bench_function(format!("lion/{isa}/{t}t"), |b| {
            b.iter(|| d.lion_step(&mut lion, &mut p, &g, &mut m, &opts))
        });
        let mut sgd = Sgd::new(SgdConfig {
            momentum: 0.9,
            ..SgdConfig::new(1e-3)
        })
        .unwrap();
        group.bench_function(format!("sgd/{isa}/{t}t"), |b| {
            b.iter(|| d.sgd_step(&mut sgd, &mut p, &g, &mut m, &opts))
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    rules::<f32, f32, f32>(c, "f32");
    rules::<bf16, bf16, f32>(c, "bf16");
}

criterion_group!(step, benches);
criterion_main!(step);
