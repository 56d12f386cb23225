//! Negative controls: mutated copies of the test PTX must fail a bit-exact comparison, either by
//! being refused or by running and producing other bits.

mod common;
use adamant_core::reduce::{partials_by, tile_count};
use adamant_core::store::canonicalize_f32;
use adamant_cuda::backend::{Backend, ParamValue};
use common::*;
use ptx_sim::{mutate, ParseOptions, Simulator};

/// Runs `adamw_f32` from `ptx` on `fam` values; Ok(true) if every output equals the
/// unmutated kernel's, Ok(false) on a mismatch, Err on a refusal.
fn adamw_same_as_original(ptx: &str, opts: ParseOptions, fam: Family) -> Result<bool, String> {
    let n = 4097;
    let run = |text: &str| -> Result<Vec<u8>, String> {
        let mut s = Simulator::with_options(opts);
        s.register_module("m", text).map_err(|e| e.to_string())?;
        let mut rng = Rng(99);
        let b: &mut dyn Backend = &mut s;
        let bufs: Vec<u64> = (0..4)
            .map(|k| {
                let v: Vec<f32> = values(n, fam, &mut rng)
                    .into_iter()
                    .map(|x| if k == 3 { x.abs() } else { x })
                    .collect();
                put(b, &to_bytes_f32(&v), 0)
            })
            .collect();
        let mut args = to_bytes_f32(&[1e-5, 0.9, 0.1, 0.999, 0.001, 0.01, 0.03, 1e-8]);
        args.extend_from_slice(&[0; 4]);
        let mut params = vec![ParamValue::from_slice(4, &args).unwrap()];
        params.extend(bufs.iter().map(|&d| ParamValue::U64(d)));
        params.push(ParamValue::U64(n as u64));
        s.launch_sim("m", "adamw_f32", shape(5, 128), &params)
            .map_err(|e| e.to_string())?;
        let b: &mut dyn Backend = &mut s;
        Ok(bufs
            .iter()
            .take(4)
            .flat_map(|&d| get(b, d, 4 * n))
            .collect())
    };
    let original = run(ELEMENTWISE)?;
    Ok(run(ptx)? == original)
}

#[test]
fn contracting_a_mul_add_pair_into_fma_changes_the_bits() {
    let mutated = mutate::fuse_mul_add(ELEMENTWISE, 0).expect("a mul/add pair in elementwise.ptx");
    assert!(mutated.contains("fma.rn.f32"));
    // fma is executed (it is a valid .rn op), so the control fails by mismatching.
    assert_eq!(
        adamw_same_as_original(&mutated, ParseOptions::default(), Family::Ordinary),
        Ok(false)
    );
    // The first site is in adamw_f32 (the m update); later sites are in the other kernels.
    let sites = (0..)
        .take_while(|&k| mutate::fuse_mul_add(ELEMENTWISE, k).is_some())
        .count();
    assert!(
        sites >= 6,
        "expected the m and v updates of three kernels, found {sites} sites"
    );
}

#[test]
fn ftz_is_refused_by_default_and_mismatches_when_permitted() {
    let mutated = mutate::add_ftz(ELEMENTWISE, 0).expect("an f32 op");
    let e =
        adamw_same_as_original(&mutated, ParseOptions::default(), Family::Subnormals).unwrap_err();
    assert!(e.contains(".ftz is refused"), "{e}");
    let line = mutated
        .lines()
        .position(|l| l.contains(".rn.ftz.f32"))
        .unwrap()
        + 1;
    assert!(e.starts_with(&format!("PTX line {line}:")), "{e}");
    let permissive = ParseOptions { allow_ftz: true };
    assert_eq!(
        adamw_same_as_original(&mutated, permissive, Family::Subnormals),
        Ok(false)
    );
}

/// Values spread over many binades, so any change of summation order shows in the bits.
fn wide(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|_| f32::from_bits((rng.u32() & 0x807F_FFFF) | ((110 + rng.below(30)) << 23)))
        .collect()
}

/// Ok(true) if the kernel's tile partials equal core's for several inputs.
fn reduce_matches_core(ptx: &str) -> Result<bool, String> {
    let mut s = Simulator::new();
    s.register_module("r", ptx).map_err(|e| e.to_string())?;
    let mut all = true;
    for seed in 1..4u64 {
        let mut rng = Rng(seed);
        let n = 8 * 4096 + 17;
        let x = if seed == 1 {
            values(n, Family::Ordinary, &mut rng)
        } else {
            wide(n, &mut rng)
        };
        let mut want = vec![0f32; tile_count(n)];
        partials_by(&x, |v| v * v, &mut want).unwrap();
        let b: &mut dyn Backend = &mut s;
        let xd = put(b, &to_bytes_f32(&x), 0);
        let out = b.alloc(4 * want.len()).unwrap();
        let params = [
            ParamValue::U64(xd),
            ParamValue::U64(n as u64),
            ParamValue::U64(out),
        ];
        s.launch_sim("r", "sumsq_tiles", shape(2, 256), &params)
            .map_err(|e| e.to_string())?;
        let b: &mut dyn Backend = &mut s;
        let got = from_bytes_u32(&get(b, out, 4 * want.len()));
        all &= got
            .iter()
            .zip(&want)
            .all(|(g, w)| *g == canonicalize_f32(*w).to_bits());
    }
    Ok(all)
}

#[test]
fn unmutated_reduction_matches_core() {
    assert_eq!(reduce_matches_core(REDUCE), Ok(true));
}

#[test]
fn reassociating_a_reduction_changes_the_bits() {
    let mut k = 0;
    while let Some(m) = mutate::swap_reduction_operands(REDUCE, k) {
        assert_eq!(reduce_matches_core(&m), Ok(false), "site {k}:\n{m}");
        k += 1;
    }
    assert!(
        k >= 3,
        "expected several reassociation sites in reduce.ptx, found {k}"
    );
}

#[test]
fn swapping_shuffle_offsets_changes_the_bits() {
    for k in 0..4 {
        let m = mutate::swap_shfl_offsets(REDUCE, k).expect("consecutive shuffles");
        assert_eq!(reduce_matches_core(&m), Ok(false), "pair {k}");
    }
}
