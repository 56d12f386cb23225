//! Multi-tensor launch: a `__grid_constant__` table of 8 tensors passed by value and indexed at
//! run time (ld.param through a register address), against Rust, for several grid shapes.

mod common;
use adamant_core::store::canonicalize_f32;
use adamant_cuda::backend::{Backend, LaunchShape, ParamValue};
use common::*;
use ptx_sim::Simulator;

const MULTI: &str = include_str!("kernels/multi.ptx");

#[test]
fn multi_tensor_table_matches_rust() {
    let mut base = Simulator::new();
    base.register_module("multi", MULTI).unwrap();
    let sizes = [0usize, 1, 3, 4095, 4096, 4097, 10003, 5];
    for &(gx, gy) in &[(1u32, 1u32), (3, 2), (8, 8), (2, 16)] {
        for count in [1u32, 3, 8] {
            let mut s = base.fresh();
            let mut rng = Rng(gx as u64 * 31 + gy as u64 + count as u64);
            let alpha = 0.37f32;
            let mut table = vec![0u8; 192];
            let mut tensors = Vec::new();
            for k in 0..count as usize {
                let n = sizes[k];
                let fam = FAMILIES[k % FAMILIES.len()];
                let p = values(n, fam, &mut rng);
                let g = values(n, fam, &mut rng);
                let b: &mut dyn Backend = &mut s;
                let pd = put(b, &to_bytes_f32(&p), 4 * (k % 3));
                let gd = put(b, &to_bytes_f32(&g), 4 * ((k + 1) % 3));
                table[8 * k..8 * k + 8].copy_from_slice(&pd.to_le_bytes());
                table[64 + 8 * k..72 + 8 * k].copy_from_slice(&gd.to_le_bytes());
                table[128 + 8 * k..136 + 8 * k].copy_from_slice(&(n as u64).to_le_bytes());
                tensors.push((pd, p, g));
            }
            let params = [
                ParamValue::from_slice(8, &table).unwrap(),
                ParamValue::U32(count),
                ParamValue::F32(alpha),
            ];
            let shape = LaunchShape {
                grid: (gx, gy, 1),
                block: (128, 1, 1),
                shared_bytes: 0,
            };
            s.launch("multi", "multi_axpy", shape, &params).unwrap();
            for (k, (pd, p, g)) in tensors.iter().enumerate() {
                let b: &mut dyn Backend = &mut s;
                let got = from_bytes_u32(&get(b, *pd, 4 * p.len()));
                for i in 0..p.len() {
                    let want = canonicalize_f32(p[i] - alpha * g[i]).to_bits();
                    assert_eq!(
                        got[i], want,
                        "grid ({gx},{gy}) count {count} tensor {k} i {i}"
                    );
                }
            }
        }
    }
}

#[test]
fn parameter_table_reads_past_the_table_are_refused() {
    let mut s = Simulator::new();
    s.register_module("multi", MULTI).unwrap();
    // count = 9 makes block y = 8 read t.n[8], past the 192-byte table.
    let params = [
        ParamValue::from_struct(8, [0u8; 192]),
        ParamValue::U32(9),
        ParamValue::F32(1.0),
    ];
    let shape = LaunchShape {
        grid: (1, 9, 1),
        block: (32, 1, 1),
        shared_bytes: 0,
    };
    let e = s
        .launch_sim("multi", "multi_axpy", shape, &params)
        .unwrap_err();
    assert!(e.msg.contains("parameter load"), "{e}");
    assert!(e.text.starts_with("ld.param"), "{e}");
}
