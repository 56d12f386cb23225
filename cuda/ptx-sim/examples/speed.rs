//! Measures the simulator's speed (instructions per second) on the AdamW test kernel.
//! `cargo run --release -p adamant-ptx-sim --example speed`
use adamant_cuda::backend::{Backend, LaunchShape, ParamValue};
use ptx_sim::Simulator;
use std::time::Instant;

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
            ParamValue::Bytes {
                align: 4,
                bytes: args.clone(),
            },
            ParamValue::U64(bufs[0]),
            ParamValue::U64(bufs[1]),
            ParamValue::U64(bufs[2]),
            ParamValue::U64(bufs[3]),
            ParamValue::U64(if kernel == "adamw_bf16" {
                n as u64 * 2 / 2 / 2
            } else {
                n as u64
            }),
        ];
        let before = s.instructions_executed();
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
        println!(
            "{kernel:12} {k:>10} instructions in {dt:.3} s = {:.0} M instructions/s",
            k as f64 / dt / 1e6
        );
    }
    let out = s.alloc(4 * 1024).unwrap();
    let params = [
        ParamValue::U64(bufs[0]),
        ParamValue::U64(n as u64),
        ParamValue::U64(out),
    ];
    let before = s.instructions_executed();
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
    println!(
        "sumsq_tiles  {k:>10} instructions in {dt:.3} s = {:.0} M instructions/s",
        k as f64 / dt / 1e6
    );
}
