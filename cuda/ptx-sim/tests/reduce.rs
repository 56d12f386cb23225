//! The canonical-tree reduction (shared memory for strides >= 32, `shfl.sync.down` below,
//! `bar.sync` between levels) against `adamant_core::reduce::partials_by`, bit for bit.

mod common;
use adamant_core::reduce::{partials_by, tile_count};
use adamant_core::store::canonicalize_f32;
use adamant_cuda::backend::{Backend, ParamValue};
use common::*;

fn run(x: &[f32], grid: u32, offset: usize) -> Vec<u32> {
    let mut s = sim();
    let b: &mut dyn Backend = &mut s;
    let xd = put(b, &to_bytes_f32(x), 4 * offset);
    let tiles = tile_count(x.len());
    let out = b.alloc(4 * tiles.max(1)).unwrap();
    let params = [
        ParamValue::U64(xd),
        ParamValue::U64(x.len() as u64),
        ParamValue::U64(out),
    ];
    b.launch("reduce", "sumsq_tiles", shape(grid, 256), &params)
        .unwrap();
    from_bytes_u32(&get(b, out, 4 * tiles))
}

#[test]
fn tile_partials_match_core_bit_for_bit() {
    for (si, &n) in [0usize, 1, 3, 4095, 4096, 4097, 100003].iter().enumerate() {
        for (fi, &fam) in FAMILIES.iter().enumerate() {
            let mut rng = Rng(0x9E37_79B9 + (si * 10 + fi) as u64);
            let x = values(n, fam, &mut rng);
            let mut want = vec![0f32; tile_count(n)];
            partials_by(&x, |v| v * v, &mut want).unwrap();
            let want: Vec<u32> = want
                .iter()
                .map(|v| canonicalize_f32(*v).to_bits())
                .collect();
            for grid in [1, 3, 25] {
                let got = run(&x, grid, (si + fi) % 3);
                assert_eq!(got, want, "n={n} {fam:?} grid={grid}");
            }
        }
    }
}

#[test]
fn another_tree_order_gives_other_bits() {
    // The comparison is sharp: summing the same values in plain sequential order differs.
    let mut rng = Rng(7);
    let x = values(4096, Family::Ordinary, &mut rng);
    let got = run(&x, 1, 0);
    let seq = x.iter().fold(0f32, |a, v| a + v * v);
    assert_ne!(got[0], seq.to_bits());
}
