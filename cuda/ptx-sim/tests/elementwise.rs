//! AdamW-like elementwise kernels (scalar f32, bf16 parameters, float4 with scalar tail) run in
//! the simulator and compared bit for bit with the same formula in plain Rust (core's bf16 store).

mod common;
use adamant_core::store::{bf16_bits_to_f32_bits, canonicalize_f32, f32_bits_to_bf16_bits};
use adamant_cuda::backend::{Backend, ParamValue};
use common::*;

#[derive(Clone, Copy)]
struct Args {
    lr_wd: f32,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    step_size: f32,
    bc2_sqrt: f32,
    eps: f32,
}

impl Args {
    fn param(&self) -> ParamValue {
        let f = [
            self.lr_wd,
            self.beta1,
            self.one_minus_beta1,
            self.beta2,
            self.one_minus_beta2,
            self.step_size,
            self.bc2_sqrt,
            self.eps,
        ];
        let mut bytes = to_bytes_f32(&f);
        bytes.extend_from_slice(&0u32.to_le_bytes());
        ParamValue::from_slice(4, &bytes).unwrap()
    }
}

/// The kernels' formula, in the same operation order.
fn elem(a: Args, p: f32, g: f32, m: f32, v: f32) -> (f32, f32, f32) {
    let p = p - a.lr_wd * p;
    let mm = a.beta1 * m + a.one_minus_beta1 * g;
    let vv = a.beta2 * v + a.one_minus_beta2 * (g * g);
    let denom = vv.sqrt() / a.bc2_sqrt + a.eps;
    let p = p - a.step_size * (mm / denom);
    (
        canonicalize_f32(p),
        canonicalize_f32(mm),
        canonicalize_f32(vv),
    )
}

const ARGS: [Args; 2] = [
    Args {
        lr_wd: 1e-3 * 0.01,
        beta1: 0.9,
        one_minus_beta1: 0.1,
        beta2: 0.999,
        one_minus_beta2: 0.001,
        step_size: 1e-3 / 0.1,
        bc2_sqrt: 0.031622775,
        eps: 1e-8,
    },
    Args {
        lr_wd: 0.5,
        beta1: 0.0,
        one_minus_beta1: 1.0,
        beta2: 0.5,
        one_minus_beta2: 0.5,
        step_size: 3.0e38,
        bc2_sqrt: 1e-30,
        eps: 1e-45,
    },
];

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs one case; returns the number of mismatching elements (0 = bit-identical).
#[allow(clippy::too_many_arguments)]
fn case(
    kernel: &str,
    n: usize,
    fam: Family,
    grid: u32,
    block: u32,
    offset: usize,
    args: Args,
    seed: u64,
) -> usize {
    let mut rng = Rng(seed | 1);
    let p = values(n, fam, &mut rng);
    let g = values(n, fam, &mut rng);
    let m = values(n, fam, &mut rng);
    let v: Vec<f32> = values(n, fam, &mut rng).iter().map(|x| x.abs()).collect();
    let bf16 = kernel == "adamw_bf16";
    let p_bf: Vec<u16> = p
        .iter()
        .map(|x| f32_bits_to_bf16_bits(x.to_bits()))
        .collect();
    let mut s = sim();
    let b: &mut dyn Backend = &mut s;
    let pd = if bf16 {
        put(b, &to_bytes_u16(&p_bf), 2 * offset)
    } else {
        put(b, &to_bytes_f32(&p), 4 * offset)
    };
    let gd = put(b, &to_bytes_f32(&g), 4 * offset);
    let md = put(b, &to_bytes_f32(&m), 4 * offset);
    let vd = put(b, &to_bytes_f32(&v), 4 * offset);
    let params = [
        args.param(),
        ParamValue::U64(pd),
        ParamValue::U64(gd),
        ParamValue::U64(md),
        ParamValue::U64(vd),
        ParamValue::U64(n as u64),
    ];
    b.launch("elementwise", kernel, shape(grid, block), &params)
        .unwrap_or_else(|e| panic!("{kernel} n={n}: {e}"));
    let (mut ep, mut em, mut ev) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let p_in = if bf16 {
            f32::from_bits(bf16_bits_to_f32_bits(p_bf[i]))
        } else {
            p[i]
        };
        let (a, bb, c) = elem(args, p_in, g[i], m[i], v[i]);
        ep.push(a);
        em.push(bb);
        ev.push(c);
    }
    let gm = from_bytes_u32(&get(b, md, 4 * n));
    let gv = from_bytes_u32(&get(b, vd, 4 * n));
    let mut bad = (0..n)
        .filter(|&i| gm[i] != em[i].to_bits() || gv[i] != ev[i].to_bits())
        .count();
    if bf16 {
        let gp = from_bytes_u16(&get(b, pd, 2 * n));
        bad += (0..n)
            .filter(|&i| gp[i] != f32_bits_to_bf16_bits(ep[i].to_bits()))
            .count();
    } else {
        let gp = from_bytes_u32(&get(b, pd, 4 * n));
        let ep = bits(&ep);
        bad += (0..n).filter(|&i| gp[i] != ep[i]).count();
    }
    bad
}

const SIZES: [usize; 7] = [0, 1, 3, 4095, 4096, 4097, 100003];
const SHAPES: [(u32, u32); 3] = [(1, 32), (3, 96), (40, 256)];

#[test]
fn scalar_kernels_match_rust_bit_for_bit() {
    let mut cases = 0;
    for kernel in ["adamw_f32", "adamw_bf16"] {
        for (si, &n) in SIZES.iter().enumerate() {
            for (fi, &fam) in FAMILIES.iter().enumerate() {
                for (hi, &(grid, block)) in SHAPES.iter().enumerate() {
                    // Keep the big size to one shape per family: it costs ~4.5M instructions.
                    if n > 5000 && hi != fi % 3 {
                        continue;
                    }
                    let offset = (si + fi + hi) % 3;
                    let args = ARGS[(si + hi) % 2];
                    let bad = case(
                        kernel,
                        n,
                        fam,
                        grid,
                        block,
                        offset,
                        args,
                        (si * 131 + fi * 17 + hi) as u64,
                    );
                    assert_eq!(
                        bad, 0,
                        "{kernel} n={n} {fam:?} grid={grid} block={block} offset={offset}"
                    );
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 200);
}

#[test]
fn vec4_kernel_with_tail_matches_rust_bit_for_bit() {
    for (si, &n) in SIZES.iter().enumerate() {
        for (fi, &fam) in FAMILIES.iter().enumerate() {
            for (hi, &(grid, block)) in SHAPES.iter().enumerate() {
                if n > 5000 && hi != fi % 3 {
                    continue;
                }
                // float4 accesses need 16-byte alignment: offsets of 0 or 4 floats only.
                let offset = 4 * ((si + hi) % 2);
                let bad = case(
                    "adamw_vec4",
                    n,
                    fam,
                    grid,
                    block,
                    offset,
                    ARGS[fi % 2],
                    (si * 7 + fi) as u64,
                );
                assert_eq!(bad, 0, "vec4 n={n} {fam:?} grid={grid} block={block}");
            }
        }
    }
}

#[test]
fn vec4_kernel_refuses_misaligned_buffers() {
    let mut s = sim();
    let n = 8;
    let b: &mut dyn Backend = &mut s;
    let bufs: Vec<u64> = (0..4)
        .map(|k| put(b, &[0u8; 64], if k == 2 { 4 } else { 0 }))
        .collect();
    let params = [
        ARGS[0].param(),
        ParamValue::U64(bufs[0]),
        ParamValue::U64(bufs[1]),
        ParamValue::U64(bufs[2]),
        ParamValue::U64(bufs[3]),
        ParamValue::U64(n),
    ];
    let e = s
        .launch_sim("elementwise", "adamw_vec4", shape(1, 32), &params)
        .unwrap_err();
    assert!(e.msg.contains("misaligned 16-byte load"), "{e}");
    assert!(e.text.starts_with("ld.global.v4.f32"), "{e}");
    let line = ELEMENTWISE.lines().nth(e.line as usize - 1).unwrap();
    assert!(
        line.contains("ld.global.v4.f32"),
        "line {} is `{line}`",
        e.line
    );
}

#[test]
fn out_of_bounds_access_is_refused_and_memory_is_restored() {
    let mut s = sim();
    let b: &mut dyn Backend = &mut s;
    let n = 64usize;
    let data = to_bytes_f32(&vec![1.0f32; n]);
    let bufs: Vec<u64> = (0..4).map(|_| put(b, &data, 0)).collect();
    // Claim one more element than the buffers hold: thread 64 faults after threads 0..63 wrote.
    let params = [
        ARGS[0].param(),
        ParamValue::U64(bufs[0]),
        ParamValue::U64(bufs[1]),
        ParamValue::U64(bufs[2]),
        ParamValue::U64(bufs[3]),
        ParamValue::U64(n as u64 + 1),
    ];
    let e = s
        .launch_sim("elementwise", "adamw_f32", shape(1, 128), &params)
        .unwrap_err();
    assert!(e.msg.contains("out of bounds"), "{e}");
    let b: &mut dyn Backend = &mut s;
    for d in bufs {
        assert_eq!(
            get(b, d, 4 * n),
            data,
            "memory must be unchanged after a failed launch"
        );
    }
}

#[test]
fn parameters_are_checked_against_the_declaration() {
    let mut s = sim();
    let bad_struct = ParamValue::from_struct(4, [0u8; 32]);
    let params = [
        bad_struct,
        ParamValue::U64(0),
        ParamValue::U64(0),
        ParamValue::U64(0),
        ParamValue::U64(0),
        ParamValue::U64(0),
    ];
    let e = s
        .launch_sim("elementwise", "adamw_f32", shape(1, 32), &params)
        .unwrap_err();
    assert!(e.msg.contains("parameter 0"), "{e}");
    let e = s
        .launch_sim("elementwise", "adamw_f32", shape(1, 32), &params[..5])
        .unwrap_err();
    assert!(e.msg.contains("takes 6 parameters"), "{e}");
}

#[test]
fn nc_input_aliasing_an_output_is_refused() {
    // g (read through ld.global.nc) and m (written) are the same buffer: undefined on hardware.
    let mut s = sim();
    let b: &mut dyn Backend = &mut s;
    let data = to_bytes_f32(&[0.5f32; 32]);
    let p = put(b, &data, 0);
    let m = put(b, &data, 0);
    let v = put(b, &data, 0);
    let params = [
        ARGS[0].param(),
        ParamValue::U64(p),
        ParamValue::U64(m),
        ParamValue::U64(m),
        ParamValue::U64(v),
        ParamValue::U64(32),
    ];
    let e = s
        .launch_sim("elementwise", "adamw_f32", shape(1, 32), &params)
        .unwrap_err();
    assert!(
        e.msg.contains("aliasing") || e.msg.contains("aliases"),
        "{e}"
    );
}
