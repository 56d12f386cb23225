//! The quantizer and LoCo through the C ABI give the same bytes and bits as the Rust API
//! (`adamant_core::quant`, `adamant_core::loco`) on the same inputs: every gradient dtype,
//! 4- and 8-bit codes, f32 and 8-bit error storage, one and two hops, reset steps, odd group
//! lengths; and their errors write nothing.

mod common;
use adamant::*;
use adamant_core::feedback::{ErrorBuf, ErrorStorage};
use adamant_core::loco::{self, Loco, LocoConfig};
use adamant_core::quant::{self, Bits, QuantLayout};
use adamant_core::{bf16, f16, Element};
use common::*;

fn quant_case<G: Element>() -> usize {
    let mut n = 0;
    for (len, group_len) in [(0usize, 4usize), (1, 1), (37, 8), (1000, 33), (4099, 512)] {
        for bits in [4u32, 8] {
            let mut rng = Rng((len * 3 + group_len + bits as usize) as u64);
            let x: Vec<G> = buffer(&mut rng, len, 3.0, false, true);
            let layout = QuantLayout::new(len, group_len, Bits::from_u32(bits).unwrap()).unwrap();
            let mut plen = 0;
            // SAFETY: valid out pointer.
            assert_eq!(
                unsafe { adamant_quant_packed_len(len, group_len, bits, &mut plen) },
                adamant_status::Ok
            );
            assert_eq!(plen, layout.packed_len());
            let mut want = vec![0xAAu8; plen];
            quant::quantize(&x, &layout, &mut want).unwrap();
            let mut got = vec![0x55u8; plen];
            // SAFETY: valid view and buffer.
            let st =
                unsafe { adamant_quantize(cview(&x), group_len, bits, got.as_mut_ptr(), plen) };
            assert_eq!(st, adamant_status::Ok);
            assert_eq!(got, want);
            let mut want_x = vec![0.0f32; len];
            quant::dequantize(&want, &layout, &mut want_x).unwrap();
            let mut got_x = vec![1.0f32; len];
            // SAFETY: valid buffers.
            let st = unsafe {
                adamant_dequantize(got.as_ptr(), plen, group_len, bits, got_x.as_mut_ptr(), len)
            };
            assert_eq!(st, adamant_status::Ok);
            assert_eq!(bits_of(&got_x), bits_of(&want_x));
            n += 1;
        }
    }
    n
}

fn bits_of(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn spec_quantize_dequantize_match_core_bytes() {
    let n = quant_case::<f32>() + quant_case::<bf16>() + quant_case::<f16>();
    assert_eq!(n, 30);
}

fn loco_case<G: Element>(world: usize, nodes: usize, int8: bool, bits: u32) {
    let len = world * 100;
    let mut cfg = adamant_loco_config_default();
    cfg.group_len = 24;
    cfg.reset_every = 3;
    cfg.bits = bits;
    cfg.error_int8 = int8 as u32;
    let core_cfg = LocoConfig {
        err_beta: cfg.err_beta,
        group_len: 24,
        bits: Bits::from_u32(bits).unwrap(),
        error_storage: if int8 {
            ErrorStorage::Int8
        } else {
            ErrorStorage::F32
        },
        reset_every: 3,
    };
    let mut lc = Loco::new(core_cfg).unwrap();
    let layout = lc.layout(len, world, nodes).unwrap();
    let mut sizes = adamant_loco_sizes::default();
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { adamant_loco_layout_sizes(&cfg, len, world, nodes, &mut sizes) },
        adamant_status::Ok
    );
    assert_eq!(sizes.compress_len, layout.compress_len());
    assert_eq!(sizes.received_len, layout.received_len());
    assert_eq!(sizes.shard_len, layout.shard_len());
    let elen = sizes.error_len;
    let mut rng = Rng((world * 10 + nodes + int8 as usize * 100 + bits as usize) as u64);
    // Error buffers start with garbage: step 1 resets (reads them as zero).
    let mut err_f: Vec<f32> = (0..elen).map(|_| rng.float(1.0)).collect();
    let mut err_b: Vec<u8> = (0..elen).map(|_| rng.next() as u8).collect();
    let (mut err_f2, mut err_b2) = (err_f.clone(), err_b.clone());
    // The second hop's error buffers (two hops only), persistent across steps like the first.
    let ilen = sizes.inter_error_len;
    let (mut ie_f, mut ie_b) = (vec![0.0f32; ilen], vec![0u8; ilen]);
    let (mut ie_f2, mut ie_b2) = (ie_f.clone(), ie_b.clone());
    let mut step = 0;
    for _ in 0..5 {
        let g: Vec<G> = buffer(&mut rng, len, 2.0, false, true);
        let plan = lc.begin().unwrap();
        let mut want = vec![0u8; sizes.compress_len];
        let e = if int8 {
            ErrorBuf::Int8(&mut err_b2)
        } else {
            ErrorBuf::F32(&mut err_f2)
        };
        loco::compress(&plan, &layout, &g, e, &mut want).unwrap();
        let mut got = vec![0u8; sizes.compress_len];
        let mut out = 0;
        let ep: *mut core::ffi::c_void = if int8 {
            err_b.as_mut_ptr().cast()
        } else {
            err_f.as_mut_ptr().cast()
        };
        // SAFETY: valid buffers of the sizes reported above.
        let st = unsafe {
            adamant_loco_compress(
                &cfg,
                step,
                world,
                nodes,
                cview(&g),
                ep,
                elen,
                got.as_mut_ptr(),
                got.len(),
                &mut out,
            )
        };
        assert_eq!(st, adamant_status::Ok);
        assert_eq!(got, want);
        assert_eq!(bits_of(&err_f), bits_of(&err_f2));
        assert_eq!(err_b, err_b2);
        step = out;
        // Pretend every rank sent the same bytes: the received chunks are this rank's output
        // in the final layout's order (enough to compare the two paths bit for bit).
        let received: Vec<u8> = if nodes == 1 {
            got.clone()
        } else {
            // Two hops: run the hop on the compress output, then decompress that.
            let mut hop_want = vec![0u8; sizes.hop_len];
            let ie = if int8 {
                ErrorBuf::Int8(&mut ie_b2)
            } else {
                ErrorBuf::F32(&mut ie_f2)
            };
            loco::reduce_hop(&plan, &layout, &got, ie, &mut hop_want).unwrap();
            let mut hop = vec![0u8; sizes.hop_len];
            let iep: *mut core::ffi::c_void = if int8 {
                ie_b.as_mut_ptr().cast()
            } else {
                ie_f.as_mut_ptr().cast()
            };
            // SAFETY: valid buffers.
            let st = unsafe {
                adamant_loco_reduce_hop(
                    &cfg,
                    out - 1,
                    len,
                    world,
                    nodes,
                    got.as_ptr(),
                    got.len(),
                    iep,
                    sizes.inter_error_len,
                    hop.as_mut_ptr(),
                    hop.len(),
                )
            };
            assert_eq!(st, adamant_status::Ok);
            assert_eq!(hop, hop_want);
            assert_eq!(bits_of(&ie_f), bits_of(&ie_f2));
            assert_eq!(ie_b, ie_b2);
            hop
        };
        let received = &received[..sizes.received_len.min(received.len())];
        assert_eq!(received.len(), sizes.received_len);
        let mut want_avg = vec![0.0f32; sizes.shard_len];
        loco::decompress_reduce(&layout, received, &mut want_avg).unwrap();
        let mut avg = vec![7.0f32; sizes.shard_len];
        // SAFETY: valid buffers.
        let st = unsafe {
            adamant_loco_decompress_reduce(
                &cfg,
                len,
                world,
                nodes,
                received.as_ptr(),
                received.len(),
                avg.as_mut_ptr(),
                avg.len(),
            )
        };
        assert_eq!(st, adamant_status::Ok);
        assert_eq!(bits_of(&avg), bits_of(&want_avg));
        lc.commit(&plan);
        assert_eq!(step, lc.state.step);
    }
}

#[test]
fn spec_loco_matches_core_bits() {
    for (world, nodes) in [(1, 1), (4, 1), (4, 2)] {
        for int8 in [false, true] {
            for bits in [4, 8] {
                loco_case::<f32>(world, nodes, int8, bits);
                loco_case::<bf16>(world, nodes, int8, bits);
            }
        }
        loco_case::<f16>(world, nodes, true, 4);
    }
}

#[test]
fn loco_errors_write_nothing() {
    use adamant_status as S;
    let cfg = adamant_loco_config_default();
    let (len, world) = (1024usize, 2usize);
    let mut sizes = adamant_loco_sizes::default();
    // SAFETY: valid pointers.
    assert_eq!(
        unsafe { adamant_loco_layout_sizes(&cfg, len, world, 1, &mut sizes) },
        S::Ok
    );
    let mut g = vec![0.5f32; len];
    let mut err = vec![3u8; sizes.error_len];
    let mut packed = vec![9u8; sizes.compress_len];
    let mut out = 77u64;
    let snap =
        |g: &Vec<f32>, e: &Vec<u8>, p: &Vec<u8>, o: u64| (bits_of(g), e.clone(), p.clone(), o);
    let before = snap(&g, &err, &packed, out);
    let run = |cfg: &adamant_loco_config,
               step: u64,
               world: usize,
               g: &[f32],
               e: &mut [u8],
               elen: usize,
               p: &mut [u8],
               plen: usize,
               o: &mut u64| {
        // SAFETY: valid buffers (lengths may be deliberately wrong but never exceed them).
        unsafe {
            adamant_loco_compress(
                cfg,
                step,
                world,
                1,
                cview(g),
                e.as_mut_ptr().cast(),
                elen,
                p.as_mut_ptr(),
                plen,
                o,
            )
        }
    };
    let mut bad = cfg;
    bad.bits = 5;
    assert_eq!(
        run(
            &bad,
            0,
            world,
            &g,
            &mut err,
            sizes.error_len,
            &mut packed,
            sizes.compress_len,
            &mut out
        ),
        S::InvalidEnum
    );
    let mut bad = cfg;
    bad.error_int8 = 2;
    assert_eq!(
        run(
            &bad,
            0,
            world,
            &g,
            &mut err,
            sizes.error_len,
            &mut packed,
            sizes.compress_len,
            &mut out
        ),
        S::InvalidEnum
    );
    let mut bad = cfg;
    bad.err_beta = 1.0;
    assert_eq!(
        run(
            &bad,
            0,
            world,
            &g,
            &mut err,
            sizes.error_len,
            &mut packed,
            sizes.compress_len,
            &mut out
        ),
        S::InvalidConfig
    );
    let mut bad = cfg;
    bad.group_len = 0;
    assert_eq!(
        run(
            &bad,
            0,
            world,
            &g,
            &mut err,
            sizes.error_len,
            &mut packed,
            sizes.compress_len,
            &mut out
        ),
        S::InvalidConfig
    );
    assert_eq!(
        run(
            &cfg,
            0,
            3,
            &g,
            &mut err,
            sizes.error_len,
            &mut packed,
            sizes.compress_len,
            &mut out
        ),
        S::LengthMismatch
    );
    assert_eq!(
        run(
            &cfg,
            0,
            world,
            &g,
            &mut err,
            sizes.error_len - 1,
            &mut packed,
            sizes.compress_len,
            &mut out
        ),
        S::LengthMismatch
    );
    assert_eq!(
        run(
            &cfg,
            0,
            world,
            &g,
            &mut err,
            sizes.error_len,
            &mut packed,
            sizes.compress_len - 1,
            &mut out
        ),
        S::LengthMismatch
    );
    assert_eq!(
        run(
            &cfg,
            u64::MAX,
            world,
            &g,
            &mut err,
            sizes.error_len,
            &mut packed,
            sizes.compress_len,
            &mut out
        ),
        S::StepOverflow
    );
    g[5] = f32::NAN;
    let before_nan = snap(&g, &err, &packed, out);
    assert_eq!(
        run(
            &cfg,
            0,
            world,
            &g,
            &mut err,
            sizes.error_len,
            &mut packed,
            sizes.compress_len,
            &mut out
        ),
        S::SkippedNonFinite
    );
    assert_eq!(snap(&g, &err, &packed, out), before_nan);
    g[5] = 0.5;
    assert_eq!(snap(&g, &err, &packed, out), before);
    // SAFETY: deliberately NULL / overlapping pointers, rejected before use.
    unsafe {
        assert_eq!(
            adamant_loco_compress(
                core::ptr::null(),
                0,
                world,
                1,
                cview(&g),
                err.as_mut_ptr().cast(),
                sizes.error_len,
                packed.as_mut_ptr(),
                sizes.compress_len,
                &mut out
            ),
            S::NullPointer
        );
        assert_eq!(
            adamant_loco_compress(
                &cfg,
                0,
                world,
                1,
                cview(&g),
                err.as_mut_ptr().cast(),
                sizes.error_len,
                err.as_mut_ptr(),
                sizes.compress_len.min(sizes.error_len),
                &mut out
            ),
            S::Overlap
        );
        assert_eq!(
            adamant_loco_compress(
                &cfg,
                0,
                world,
                1,
                cview(&g),
                err.as_mut_ptr().cast(),
                sizes.error_len,
                packed.as_mut_ptr(),
                sizes.compress_len,
                core::ptr::null_mut()
            ),
            S::NullPointer
        );
    }
    assert_eq!(snap(&g, &err, &packed, out), before);
    // A valid compress, then corrupt one scale: the reduce refuses and writes nothing.
    assert_eq!(
        run(
            &cfg,
            0,
            world,
            &g,
            &mut err,
            sizes.error_len,
            &mut packed,
            sizes.compress_len,
            &mut out
        ),
        S::Ok
    );
    let mut rec = packed.clone();
    let last = rec.len() - 4;
    rec[last..].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut avg = vec![1.0f32; sizes.shard_len];
    // SAFETY: valid buffers.
    unsafe {
        assert_eq!(
            adamant_loco_decompress_reduce(
                &cfg,
                len,
                world,
                1,
                rec.as_ptr(),
                rec.len(),
                avg.as_mut_ptr(),
                avg.len()
            ),
            S::InvalidConfig
        );
        assert_eq!(
            adamant_loco_decompress_reduce(
                &cfg,
                len,
                world,
                1,
                packed.as_ptr(),
                packed.len(),
                avg.as_mut_ptr(),
                avg.len() - 1
            ),
            S::LengthMismatch
        );
        assert_eq!(
            adamant_dequantize(rec.as_ptr(), 8, 0, 4, avg.as_mut_ptr(), 4),
            S::InvalidConfig
        );
        assert_eq!(
            adamant_dequantize(rec.as_ptr(), 8, 4, 3, avg.as_mut_ptr(), 4),
            S::InvalidEnum
        );
        assert_eq!(
            adamant_quantize(cview(&g), 64, 4, packed.as_mut_ptr(), 3),
            S::LengthMismatch
        );
    }
    assert!(avg.iter().all(|&x| x == 1.0));
}

/// Two-way error feedback (worker compress, server compress, decompress) through the ABI
/// equals `adamant_core::feedback` byte for byte, f32 and 8-bit error storage, 3 steps.
#[test]
fn spec_two_way_error_feedback_matches_core() {
    use adamant_core::feedback::{
        ef_decompress, ef_server_compress, ef_worker_compress, ShardLayout,
    };
    for int8 in [false, true] {
        let (len, shards, group_len) = (4 * 90usize, 4usize, 16usize);
        let layout = ShardLayout::new(len, shards, group_len, Bits::Four).unwrap();
        let storage = if int8 {
            ErrorStorage::Int8
        } else {
            ErrorStorage::F32
        };
        let elen = layout.error_len(storage);
        let shard = layout.shard_len();
        let server_chunk = QuantLayout::new(shard, group_len, Bits::Eight).unwrap();
        let selen = match storage {
            ErrorStorage::F32 => shard,
            ErrorStorage::Int8 => quant::packed_len(shard, group_len, Bits::Eight),
        };
        // Zero-initialised f32 errors are valid; 8-bit ones need valid scales, so start from a
        // quantized zero buffer.
        let zero_err = |n_el: usize, chunks: usize| -> Vec<u8> {
            let ql = QuantLayout::new(n_el, group_len, Bits::Eight).unwrap();
            let mut one = vec![0u8; ql.packed_len()];
            quant::quantize(&vec![0.0f32; n_el], &ql, &mut one).unwrap();
            one.repeat(chunks)
        };
        let (mut ef, mut eb) = (vec![0.0f32; elen], zero_err(shard, shards));
        let (mut sf, mut sb) = (vec![0.0f32; selen], zero_err(shard, 1));
        if !int8 {
            eb.clear();
            sb.clear();
        } else {
            ef.clear();
            sf.clear();
        }
        let (mut ef2, mut eb2, mut sf2, mut sb2) = (ef.clone(), eb.clone(), sf.clone(), sb.clone());
        let mut rng = Rng(77 + int8 as u64);
        for _ in 0..3 {
            let x: Vec<f32> = buffer(&mut rng, len, 1.0, false, true);
            let mut want = vec![0u8; layout.packed_len()];
            let e = if int8 {
                ErrorBuf::Int8(&mut eb2)
            } else {
                ErrorBuf::F32(&mut ef2)
            };
            ef_worker_compress(&layout, &x, e, &mut want).unwrap();
            let mut got = vec![0u8; layout.packed_len()];
            let ep: *mut core::ffi::c_void = if int8 {
                eb.as_mut_ptr().cast()
            } else {
                ef.as_mut_ptr().cast()
            };
            let el = if int8 { eb.len() } else { ef.len() };
            // SAFETY: valid buffers.
            let st = unsafe {
                adamant_ef_worker_compress(
                    cview(&x),
                    shards,
                    group_len,
                    4,
                    int8 as u32,
                    ep,
                    el,
                    got.as_mut_ptr(),
                    got.len(),
                )
            };
            assert_eq!(st, adamant_status::Ok);
            assert_eq!(got, want);
            assert_eq!(bits_of(&ef), bits_of(&ef2));
            assert_eq!(eb, eb2);
            // The server of shard 0 receives every worker's chunk 0 (here: 3 copies of ours).
            let c0 = &got[..layout.chunk_len()];
            let received = c0.repeat(3);
            let mut swant = vec![0u8; server_chunk.packed_len()];
            let se = if int8 {
                ErrorBuf::Int8(&mut sb2)
            } else {
                ErrorBuf::F32(&mut sf2)
            };
            ef_server_compress(&layout.chunk(), Bits::Eight, &received, 3, se, &mut swant).unwrap();
            let mut sgot = vec![0u8; server_chunk.packed_len()];
            let sp: *mut core::ffi::c_void = if int8 {
                sb.as_mut_ptr().cast()
            } else {
                sf.as_mut_ptr().cast()
            };
            let sl = if int8 { sb.len() } else { sf.len() };
            // SAFETY: valid buffers.
            let st = unsafe {
                adamant_ef_server_compress(
                    shard,
                    group_len,
                    4,
                    8,
                    3,
                    received.as_ptr(),
                    received.len(),
                    int8 as u32,
                    sp,
                    sl,
                    sgot.as_mut_ptr(),
                    sgot.len(),
                )
            };
            assert_eq!(st, adamant_status::Ok);
            assert_eq!(sgot, swant);
            assert_eq!(bits_of(&sf), bits_of(&sf2));
            assert_eq!(sb, sb2);
            // All-gather: every shard's server chunk (here the same one).
            let all = sgot.repeat(shards);
            let dl = ShardLayout::new(len, shards, group_len, Bits::Eight).unwrap();
            let mut dwant = vec![0.0f32; len];
            ef_decompress(&dl, &all, &mut dwant).unwrap();
            let mut dgot = vec![1.0f32; len];
            // SAFETY: valid buffers.
            let st = unsafe {
                adamant_ef_decompress(
                    all.as_ptr(),
                    all.len(),
                    shards,
                    group_len,
                    8,
                    dgot.as_mut_ptr(),
                    len,
                )
            };
            assert_eq!(st, adamant_status::Ok);
            assert_eq!(bits_of(&dgot), bits_of(&dwant));
        }
        // Errors write nothing: wrong packed length, bad flag, NaN input.
        let x = vec![f32::NAN; len];
        let mut got = vec![5u8; layout.packed_len()];
        let before = (bits_of(&ef), eb.clone(), got.clone());
        let ep: *mut core::ffi::c_void = if int8 {
            eb.as_mut_ptr().cast()
        } else {
            ef.as_mut_ptr().cast()
        };
        let el = if int8 { eb.len() } else { ef.len() };
        // SAFETY: valid buffers.
        unsafe {
            assert_eq!(
                adamant_ef_worker_compress(
                    cview(&x),
                    shards,
                    group_len,
                    4,
                    int8 as u32,
                    ep,
                    el,
                    got.as_mut_ptr(),
                    got.len()
                ),
                adamant_status::SkippedNonFinite
            );
            assert_eq!(
                adamant_ef_worker_compress(
                    cview(&x),
                    shards,
                    group_len,
                    4,
                    2,
                    ep,
                    el,
                    got.as_mut_ptr(),
                    got.len()
                ),
                adamant_status::InvalidEnum
            );
            assert_eq!(
                adamant_ef_worker_compress(
                    cview(&x),
                    shards,
                    group_len,
                    4,
                    int8 as u32,
                    ep,
                    el,
                    got.as_mut_ptr(),
                    got.len() - 1
                ),
                adamant_status::LengthMismatch
            );
            assert_eq!(
                adamant_ef_worker_compress(
                    cview(&x),
                    7,
                    group_len,
                    4,
                    int8 as u32,
                    ep,
                    el,
                    got.as_mut_ptr(),
                    got.len()
                ),
                adamant_status::LengthMismatch
            );
        }
        assert_eq!((bits_of(&ef), eb.clone(), got.clone()), before);
    }
}
