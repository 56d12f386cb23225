//! Measures the simulator's speed (instructions per second) on the AdamW test kernel.
//! `cargo run --release -p adamant-ptx-sim --example speed`
use adamant_cuda::backend::{Backend, LaunchShape, ParamValue};
use ptx_sim::Simulator;
use std::time::Instant;

/// This thread's CPU time in seconds (Linux `/proc`, 10 ms resolution), so the rate is not
/// skewed by other processes on a shared machine; `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn report(name: &str, k: u64, wall: f64, cpu: Option<f64>) {
    let cpu_rate = cpu.map_or(String::new(), |c| {
        format!(", {:.0} M/s per CPU second", k as f64 / c.max(0.01) / 1e6)
    });
    println!(
        "{name:12} {k:>10} instructions in {wall:.3} s wall = {:.0} M/s{cpu_rate}",
        k as f64 / wall / 1e6
    );
}

fn main() {
    let ptx = include_str!("../tests/kernels/elementwise.ptx");
    let reduce = include_str!("../tests/kernels/reduce.ptx");
    let mut s = Simulator::new();
    s.register_module("elementwise", ptx).unwrap();
    s.register_module("reduce", reduce).unwrap();
    let n = 1_000_000usize;
    let bytes: Vec<u8> = (0..n)
        .flat_map(|i| ((i as f32) * 1e-6).to_bits().to_le_bytes())
        .collect();
    let bufs: Vec<u64> = (0..4)
        .map(|_| {
            let d = s.alloc(4 * n).unwrap();
            s.upload(d, &bytes).unwrap();
            d
        })
        .collect();
    let mut args: Vec<u8> = [1e-5f32, 0.9, 0.1, 0.999, 0.001, 0.01, 0.03, 1e-8]
        .iter()
        .flat_map(|x| x.to_bits().to_le_bytes())
        .collect();
    args.extend_from_slice(&[0; 4]);
    for (kernel, grid) in [("adamw_f32", 120), ("adamw_vec4", 120), ("adamw_bf16", 120)] {
        let params = [
            ParamValue::from_slice(4, &args).unwrap(),
            ParamValue::U64(bufs[0]),
            ParamValue::U64(bufs[1]),
            ParamValue::U64(bufs[2]),
            ParamValue::U64(bufs[3]),
            ParamValue::U64(n as u64),
        ];
        let before = s.instructions_executed();
        let c0 = cpu_seconds();
        let t = Instant::now();
        s.launch(
            "elementwise",
            kernel,
            LaunchShape {
                grid: (grid, 1, 1),
                block: (256, 1, 1),
                shared_bytes: 0,
            },
            &params,
        )
        .unwrap();
        let dt = t.elapsed().as_secs_f64();
        let k = s.instructions_executed() - before;
        report(kernel, k, dt, cpu_seconds().zip(c0).map(|(a, b)| a - b));
    }
    let out = s.alloc(4 * 1024).unwrap();
    let params = [
        ParamValue::U64(bufs[0]),
        ParamValue::U64(n as u64),
        ParamValue::U64(out),
    ];
    let before = s.instructions_executed();
    let c0 = cpu_seconds();
    let t = Instant::now();
    s.launch(
        "reduce",
        "sumsq_tiles",
        LaunchShape {
            grid: (245, 1, 1),
            block: (256, 1, 1),
            shared_bytes: 0,
        },
        &params,
    )
    .unwrap();
    let dt = t.elapsed().as_secs_f64();
    let k = s.instructions_executed() - before;
    report(
        "sumsq_tiles",
        k,
        dt,
        cpu_seconds().zip(c0).map(|(a, b)| a - b),
    );
}
