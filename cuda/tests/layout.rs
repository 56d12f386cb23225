//! The Rust argument structures match the kernels' PTX parameter lists: count, sizes and
//! alignment of every `.param`, for every entry.

use adamant_cuda::args::{AdamHyper, LionHyper, QuantArgs, ReduceEntry, SgdHyper, TensorEntry};
use adamant_cuda::ptx::MODULES;

/// (size, align) of each parameter of `entry` in `ptx`.
fn params(ptx: &str, entry: &str) -> Vec<(usize, usize)> {
    let start = ptx.find(&format!(".entry {entry}(")).expect("entry");
    let body = &ptx[start..];
    let end = body.find(')').unwrap();
    body[..end]
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_end_matches(',');
            let rest = l.strip_prefix(".param ")?;
            if let Some(r) = rest.strip_prefix(".align ") {
                let (align, r) = r.split_once(' ').unwrap();
                let size = r.split('[').nth(1)?.trim_end_matches(']').parse().ok()?;
                Some((size, align.parse().unwrap()))
            } else {
                let ty = rest.split_whitespace().next()?;
                let size = match &ty[2..] {
                    "8" => 1,
                    "16" => 2,
                    "32" => 4,
                    "64" => 8,
                    _ => return None,
                };
                Some((size, size))
            }
        })
        .collect()
}

#[test]
fn spec_struct_sizes() {
    assert_eq!(std::mem::size_of::<TensorEntry>(), TensorEntry::SIZE);
    assert_eq!(std::mem::size_of::<ReduceEntry>(), ReduceEntry::SIZE);
    assert_eq!(std::mem::size_of::<AdamHyper>(), AdamHyper::SIZE);
    assert_eq!(std::mem::size_of::<SgdHyper>(), SgdHyper::SIZE);
    assert_eq!(std::mem::size_of::<LionHyper>(), LionHyper::SIZE);
    assert_eq!(std::mem::size_of::<QuantArgs>(), QuantArgs::SIZE);
    assert_eq!(QuantArgs::default().to_bytes().len(), QuantArgs::SIZE);
    let e = TensorEntry {
        param: 1,
        grad: 2,
        state0: 3,
        state1: 4,
        n: 5,
        sr_index_offset: 6,
        clip_coef: 7,
        chunk_start: 8,
    };
    let b = e.to_bytes();
    for k in 0..8 {
        assert_eq!(
            u64::from_le_bytes(b[8 * k..8 * k + 8].try_into().unwrap()),
            k as u64 + 1
        );
    }
}

#[test]
fn spec_ptx_parameter_lists_match_the_rust_layouts() {
    let mut checked = 0;
    for m in MODULES {
        for entry in adamant_cuda::ptx::entries(m.ptx) {
            let got = params(m.ptx, entry);
            let want: Vec<(usize, usize)> = match m.name {
                "adam" | "sgd" | "lion" => {
                    let hyper = match m.name {
                        "adam" => AdamHyper::SIZE,
                        "sgd" => SgdHyper::SIZE,
                        _ => LionHyper::SIZE,
                    };
                    vec![
                        (8, 8),
                        (64, 8),
                        (4, 4),
                        (8, 8),
                        (8, 8),
                        (8, 8),
                        (8, 8),
                        (8, 8),
                        (hyper, 8),
                    ]
                }
                "reduce" => vec![(8, 8), (32, 8), (4, 4), (8, 8)],
                "step" if entry == "adamant_step_commit" => vec![(8, 8), (8, 8)],
                "step" => vec![(8, 8), (64, 8), (4, 4), (8, 8), (8, 8)],
                "quant" => vec![(QuantArgs::SIZE, 8)],
                other => panic!("unknown module {other}"),
            };
            assert_eq!(got, want, "{}::{entry}", m.name);
            checked += 1;
        }
    }
    assert_eq!(checked, 54 + 9 + 4 + 10);
}

#[test]
fn spec_quant_args_byte_offsets() {
    let a = QuantArgs {
        src: 1,
        err: 2,
        out: 3,
        status: 4,
        len: 5,
        peer_stride: 6,
        src_chunk_stride: 7,
        chunks: 8,
        nodes: 9,
        peers: 10,
        group_len: 11,
        bits: 12,
        src_bits: 13,
        err_storage: 14,
        reset: 15,
        rule: 16,
        err_beta: 0.8,
        one_minus_err_beta: 0.2,
        divisor: 3.0,
    };
    let b = a.to_bytes();
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    for k in 0..7 {
        assert_eq!(u64_at(8 * k), k as u64 + 1);
    }
    for k in 0..9 {
        assert_eq!(u32_at(56 + 4 * k), k as u32 + 8);
    }
    assert_eq!(u32_at(92), 0.8f32.to_bits());
    assert_eq!(u32_at(96), 0.2f32.to_bits());
    assert_eq!(u32_at(100), 3.0f32.to_bits());
    // The .cu struct's field comments carry the same offsets.
    let cu = include_str!("../kernels/quant.cu");
    for (name, off) in [
        ("src;", 0),
        ("err;", 8),
        ("status;", 24),
        ("src_chunk_stride;", 48),
        ("chunks;", 56),
        ("rule;", 88),
        ("divisor;", 100),
    ] {
        let line = cu
            .lines()
            .find(|l| l.contains(name) && l.contains("//"))
            .unwrap();
        let comment = line.split("//").nth(1).unwrap().trim_start();
        assert!(comment.starts_with(&format!("{off}:")), "{line}");
    }
}
