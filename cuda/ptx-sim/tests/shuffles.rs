//! Every `shfl.sync` mode with segment widths and clamps, and `vote.sync.ballot`, against the
//! CUDA programming guide's definitions of `__shfl*_sync` (written independently of the PTX
//! pseudo-code the simulator implements).

mod common;
use adamant_cuda::backend::{Backend, ParamValue};
use common::*;

fn up(x: &[u32], lane: usize, base: usize, delta: u32, width: usize) -> u32 {
    let seg = lane / width * width;
    let src = lane as i64 - delta as i64;
    if src < seg as i64 {
        x[base + lane]
    } else {
        x[base + src as usize]
    }
}
fn down(x: &[u32], lane: usize, base: usize, delta: u32, width: usize) -> u32 {
    let seg_end = lane / width * width + width;
    let src = lane as u64 + delta as u64;
    if src >= seg_end as u64 {
        x[base + lane]
    } else {
        x[base + src as usize]
    }
}
fn xor(x: &[u32], lane: usize, base: usize, m: u32, width: usize) -> u32 {
    let seg_end = lane / width * width + width;
    let src = lane ^ m as usize;
    if src >= seg_end {
        x[base + lane]
    } else {
        x[base + src]
    }
}
fn idx(x: &[u32], lane: usize, base: usize, src: i32, width: usize) -> u32 {
    x[base + lane / width * width + (src as usize & (width - 1))]
}

fn expected(x: &[u32], t: usize, delta: i32) -> [u32; 12] {
    let (lane, base) = (t % 32, t / 32 * 32);
    let v = x[t];
    let mut ballot = 0;
    for l in 0..32 {
        if x[base + l] & 1 == 1 {
            ballot |= 1 << l;
        }
    }
    [
        up(x, lane, base, 3, 32),
        down(x, lane, base, 5, 32),
        xor(x, lane, base, 6, 32),
        idx(x, lane, base, 37, 32),
        up(x, lane, base, 2, 8),
        down(x, lane, base, 3, 16),
        xor(x, lane, base, 5, 4),
        idx(x, lane, base, (v & 31) as i32, 8),
        idx(x, lane, base, delta, 16),
        down(x, lane, base, delta as u32, 32),
        up(x, lane, base, delta as u32, 32),
        ballot,
    ]
}

#[test]
fn shuffle_modes_widths_and_clamps_match_cuda_semantics() {
    for &(grid, block) in &[(1u32, 32u32), (2, 64), (3, 96)] {
        for delta in [0i32, 1, 5, 17, 31, 32, 40, -3, i32::MIN] {
            let threads = (grid * block) as usize;
            let mut rng = Rng(0xABCD + delta as u64 + threads as u64);
            let x: Vec<u32> = (0..threads).map(|_| rng.u32()).collect();
            let mut s = sim();
            let b: &mut dyn Backend = &mut s;
            let xd = put(b, &to_bytes_u32(&x), 0);
            let out = b.alloc(48 * threads).unwrap();
            let params = [
                ParamValue::U64(xd),
                ParamValue::U64(out),
                ParamValue::U32(delta as u32),
            ];
            b.launch("shuffles", "shuffles", shape(grid, block), &params)
                .unwrap();
            let got = from_bytes_u32(&get(b, out, 48 * threads));
            for t in 0..threads {
                assert_eq!(
                    got[12 * t..12 * t + 12],
                    expected(&x, t, delta),
                    "thread {t} delta {delta} block {block}"
                );
            }
        }
    }
}

#[test]
fn partial_warp_with_full_member_mask_is_refused() {
    // 48 threads: the second warp has 16 lanes but the kernel names all 32 in the member mask.
    let mut s = sim();
    let b: &mut dyn Backend = &mut s;
    let xd = put(b, &[0u8; 4 * 48], 0);
    let out = b.alloc(48 * 48).unwrap();
    let params = [
        ParamValue::U64(xd),
        ParamValue::U64(out),
        ParamValue::U32(1),
    ];
    let e = s
        .launch_sim("shuffles", "shuffles", shape(1, 48), &params)
        .unwrap_err();
    assert!(e.msg.contains("member mask 0xffffffff"), "{e}");
    assert!(e.text.starts_with("shfl.sync.up.b32"), "{e}");
    assert!(SHUFFLES
        .lines()
        .nth(e.line as usize - 1)
        .unwrap()
        .contains("shfl.sync.up.b32"));
}

#[test]
fn divergent_shuffle_is_refused_with_its_line() {
    // Guard the first shuffle with a lane-dependent predicate: half the warp skips it.
    let ptx = SHUFFLES.replacen(
        "\tshfl.sync.up.b32 \t%r10|%p1",
        "\tsetp.lt.u32 \t%p13, %r4, 16;\n\t@%p13 shfl.sync.up.b32 \t%r10|%p1",
        1,
    );
    assert_ne!(ptx, SHUFFLES);
    let mut s = sim();
    s.register_module("div", &ptx).unwrap();
    let b: &mut dyn Backend = &mut s;
    let xd = put(b, &[0u8; 4 * 32], 0);
    let out = b.alloc(48 * 32).unwrap();
    let params = [
        ParamValue::U64(xd),
        ParamValue::U64(out),
        ParamValue::U32(1),
    ];
    let e = s
        .launch_sim("div", "shuffles", shape(1, 32), &params)
        .unwrap_err();
    assert!(e.msg.contains("divergent"), "{e}");
    assert!(
        ptx.lines()
            .nth(e.line as usize - 1)
            .unwrap()
            .contains("@%p13 shfl.sync.up.b32"),
        "{e}"
    );
}
