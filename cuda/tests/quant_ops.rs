//! Launch sequence and argument marshalling of the quantizer ops (`ops::quantize`,
//! `loco_*`, `ef_*`) with a recording launcher: a pre-scan then the main kernel, both with the
//! same `QuantArgs` bytes; the fields each core layout maps to; argument errors launch nothing;
//! and the C-shaped entry points report "no CUDA device" without a driver.

use adamant_core::feedback::{ErrorStorage, ShardLayout};
use adamant_core::loco::{LocoConfig, LocoLayout, LocoPlan};
use adamant_core::quant::{Bits, QuantLayout};
use adamant_core::Dtype;
use adamant_cuda::args::{QuantArgs, QUANT_MODULE};
use adamant_cuda::backend::{BackendError, LaunchShape, ParamValue};
use adamant_cuda::capi;
use adamant_cuda::ops::{self, Launcher, OpError};

#[derive(Default)]
struct Recorder {
    launches: Vec<(String, String, LaunchShape, Vec<ParamValue>)>,
}

impl Launcher for Recorder {
    fn launch_kernel(
        &mut self,
        module: &str,
        entry: &str,
        shape: LaunchShape,
        params: &[ParamValue],
    ) -> Result<(), BackendError> {
        self.launches
            .push((module.into(), entry.into(), shape, params.to_vec()));
        Ok(())
    }
}

impl Recorder {
    /// The two launches' entries, checking both carry the same single by-value argument.
    fn pair(&self) -> ([&str; 2], Vec<u8>, u32) {
        assert_eq!(self.launches.len(), 2, "{:?}", self.launches);
        for l in &self.launches {
            assert_eq!(l.0, QUANT_MODULE);
            assert_eq!(l.2.block, (256, 1, 1));
            assert_eq!(l.3.len(), 1);
        }
        assert_eq!(self.launches[0].3, self.launches[1].3);
        assert_eq!(self.launches[0].2, self.launches[1].2);
        let ParamValue::Bytes { align, bytes } = &self.launches[0].3[0] else {
            panic!("by-value QuantArgs expected")
        };
        assert_eq!(*align, 8);
        (
            [&self.launches[0].1, &self.launches[1].1],
            bytes.to_vec(),
            self.launches[0].2.grid.0,
        )
    }
}

const STATUS: u64 = 0x9000;

#[test]
fn spec_quantize_is_check_then_compress() {
    let mut r = Recorder::default();
    let layout = QuantLayout::new(1000, 33, Bits::Four).unwrap();
    ops::quantize(&mut r, Dtype::Bf16, &layout, 0x1002, 0x2000, STATUS).unwrap();
    let (names, bytes, grid) = r.pair();
    assert_eq!(
        names,
        ["adamant_quant_check_bf16", "adamant_quant_compress_bf16"]
    );
    assert_eq!(grid, 31); // ceil(1000 / 33) groups, one block each
    let want = QuantArgs {
        src: 0x1002,
        out: 0x2000,
        status: STATUS,
        len: 1000,
        chunks: 1,
        group_len: 33,
        bits: 4,
        src_bits: 4,
        ..QuantArgs::default()
    };
    assert_eq!(bytes, want.to_bytes());
}

#[test]
fn spec_dequantize_is_a_one_peer_fold() {
    let mut r = Recorder::default();
    let layout = QuantLayout::new(70, 64, Bits::Eight).unwrap();
    ops::dequantize(&mut r, &layout, 0x1000, 0x2000, STATUS).unwrap();
    let (names, bytes, grid) = r.pair();
    assert_eq!(
        names,
        ["adamant_quant_decompress_check", "adamant_quant_decompress"]
    );
    assert_eq!(grid, 2);
    let want = QuantArgs {
        src: 0x1000,
        out: 0x2000,
        status: STATUS,
        len: 70,
        chunks: 1,
        peers: 1,
        group_len: 64,
        bits: 8,
        src_bits: 8,
        ..QuantArgs::default()
    };
    assert_eq!(bytes, want.to_bytes());
}

fn plan(storage: ErrorStorage, reset: bool) -> LocoPlan {
    let c = LocoConfig {
        error_storage: storage,
        ..LocoConfig::deepspeed()
    };
    LocoPlan {
        step: 7,
        reset,
        rule: c.rule(),
        error_storage: storage,
    }
}

#[test]
fn spec_loco_fields() {
    let layout = LocoLayout::new(8 * 100, 8, 2, 16, Bits::Four).unwrap();
    let cl = layout.chunk_len() as u64;
    // compress: one chunk per rank, the two-hop shard permutation, LoCo's rule.
    let mut r = Recorder::default();
    let p = plan(ErrorStorage::Int8, true);
    ops::loco_compress(&mut r, &p, &layout, Dtype::F16, 0x10, 0x100, 0x200, STATUS).unwrap();
    let (names, bytes, grid) = r.pair();
    assert_eq!(
        names,
        ["adamant_quant_check_f16", "adamant_quant_compress_f16"]
    );
    assert_eq!(grid, 8 * 7);
    let want = QuantArgs {
        src: 0x10,
        err: 0x100,
        out: 0x200,
        status: STATUS,
        len: 100,
        chunks: 8,
        nodes: 2,
        group_len: 16,
        bits: 4,
        src_bits: 4,
        err_storage: 2,
        reset: 1,
        rule: 1,
        err_beta: 0.8f32,
        one_minus_err_beta: (1.0f64 - 0.8) as f32,
        ..QuantArgs::default()
    };
    assert_eq!(bytes, want.to_bytes());
    assert_ne!(
        want.one_minus_err_beta,
        1.0f32 - 0.8f32,
        "the f64 recipe differs"
    );

    // Second hop: node n folds the local ranks' chunk n (stride nodes chunks).
    let mut r = Recorder::default();
    let p = plan(ErrorStorage::F32, false);
    ops::loco_reduce_hop(&mut r, &p, &layout, 0x1000, 0x100, 0x200, STATUS).unwrap();
    let (names, bytes, _) = r.pair();
    assert_eq!(
        names,
        [
            "adamant_quant_check_packed",
            "adamant_quant_compress_packed"
        ]
    );
    let want = QuantArgs {
        src: 0x1000,
        err: 0x100,
        out: 0x200,
        status: STATUS,
        len: 100,
        peer_stride: 2 * cl,
        src_chunk_stride: cl,
        chunks: 2,
        peers: 4,
        group_len: 16,
        bits: 4,
        src_bits: 4,
        err_storage: 1,
        rule: 1,
        err_beta: 0.8f32,
        one_minus_err_beta: (1.0f64 - 0.8) as f32,
        ..QuantArgs::default()
    };
    assert_eq!(bytes, want.to_bytes());

    // Final reduction: nodes chunks, divided by the world size (or not, for the sum).
    for (average, divisor) in [(true, 8.0f32), (false, 0.0)] {
        let mut r = Recorder::default();
        ops::loco_decompress(&mut r, &layout, 0x1000, 0x2000, average, STATUS).unwrap();
        let (names, bytes, _) = r.pair();
        assert_eq!(names[1], "adamant_quant_decompress");
        let want = QuantArgs {
            src: 0x1000,
            out: 0x2000,
            status: STATUS,
            len: 100,
            peer_stride: cl,
            chunks: 1,
            peers: 2,
            group_len: 16,
            bits: 4,
            src_bits: 4,
            divisor,
            ..QuantArgs::default()
        };
        assert_eq!(bytes, want.to_bytes());
    }
}

#[test]
fn spec_ef_fields() {
    let worker = QuantLayout::new(50, 8, Bits::Four).unwrap();
    let mut r = Recorder::default();
    ops::ef_server_compress(
        &mut r,
        &worker,
        Bits::Eight,
        0x1000,
        3,
        0x100,
        ErrorStorage::Int8,
        0x200,
        STATUS,
    )
    .unwrap();
    let (names, bytes, grid) = r.pair();
    assert_eq!(names[0], "adamant_quant_check_packed");
    assert_eq!(grid, 7);
    let want = QuantArgs {
        src: 0x1000,
        err: 0x100,
        out: 0x200,
        status: STATUS,
        len: 50,
        peer_stride: worker.packed_len() as u64,
        chunks: 1,
        peers: 3,
        group_len: 8,
        bits: 8,
        src_bits: 4,
        err_storage: 2,
        divisor: 3.0,
        ..QuantArgs::default()
    };
    assert_eq!(bytes, want.to_bytes());

    let layout = ShardLayout::new(60, 3, 8, Bits::Four).unwrap();
    let mut r = Recorder::default();
    ops::ef_worker_compress(
        &mut r,
        &layout,
        Dtype::F32,
        0x1000,
        0x100,
        ErrorStorage::F32,
        0x200,
        STATUS,
    )
    .unwrap();
    let (names, bytes, _) = r.pair();
    assert_eq!(names[1], "adamant_quant_compress_f32");
    let a = QuantArgs {
        src: 0x1000,
        err: 0x100,
        out: 0x200,
        status: STATUS,
        len: 20,
        chunks: 3,
        group_len: 8,
        bits: 4,
        src_bits: 4,
        err_storage: 1,
        ..QuantArgs::default()
    };
    assert_eq!(bytes, a.to_bytes());

    let mut r = Recorder::default();
    ops::ef_decompress(&mut r, &layout, 0x1000, 0x2000, STATUS).unwrap();
    let (_, bytes, _) = r.pair();
    let want = QuantArgs {
        src: 0x1000,
        out: 0x2000,
        status: STATUS,
        len: 20,
        src_chunk_stride: layout.chunk_len() as u64,
        chunks: 3,
        peers: 1,
        group_len: 8,
        bits: 4,
        src_bits: 4,
        ..QuantArgs::default()
    };
    assert_eq!(bytes, want.to_bytes());
}

#[test]
fn spec_errors_launch_nothing() {
    let good = QuantLayout::new(10, 4, Bits::Four).unwrap();
    type Case = Box<dyn Fn(&mut Recorder) -> Result<(), OpError>>;
    let cases: Vec<(&str, Case)> = vec![
        (
            "group_len 0",
            Box::new(|r| {
                let l = QuantLayout {
                    len: 10,
                    group_len: 0,
                    bits: Bits::Four,
                };
                ops::quantize(r, Dtype::F32, &l, 0x1000, 0x2000, STATUS)
            }),
        ),
        (
            "null status",
            Box::new(move |r| ops::quantize(r, Dtype::F32, &good, 0x1000, 0x2000, 0)),
        ),
        (
            "misaligned f32 source",
            Box::new(move |r| ops::quantize(r, Dtype::F32, &good, 0x1002, 0x2000, STATUS)),
        ),
        (
            "misaligned packed output",
            Box::new(move |r| ops::quantize(r, Dtype::Bf16, &good, 0x1002, 0x2001, STATUS)),
        ),
        (
            "null packed input",
            Box::new(move |r| ops::dequantize(r, &good, 0, 0x2000, STATUS)),
        ),
        (
            "no workers",
            Box::new(move |r| {
                ops::ef_server_compress(
                    r,
                    &good,
                    Bits::Four,
                    0x1000,
                    0,
                    0x100,
                    ErrorStorage::F32,
                    0x200,
                    STATUS,
                )
            }),
        ),
        (
            "world does not divide len",
            Box::new(|r| {
                let l = LocoLayout {
                    len: 10,
                    world: 3,
                    nodes: 1,
                    group_len: 4,
                    bits: Bits::Four,
                };
                ops::loco_decompress(r, &l, 0x1000, 0x2000, true, STATUS)
            }),
        ),
        (
            "null error buffer",
            Box::new(|r| {
                let l = LocoLayout::new(12, 3, 1, 4, Bits::Four).unwrap();
                let p = plan(ErrorStorage::F32, false);
                ops::loco_compress(r, &p, &l, Dtype::F32, 0x1000, 0, 0x2000, STATUS)
            }),
        ),
        (
            "raw args: 5-bit codes",
            Box::new(|r| {
                let a = QuantArgs {
                    src: 0x1000,
                    out: 0x2000,
                    status: STATUS,
                    len: 8,
                    chunks: 1,
                    group_len: 4,
                    bits: 5,
                    ..QuantArgs::default()
                };
                ops::quant_compress(r, adamant_cuda::args::QuantSource::Grad(Dtype::F32), &a)
            }),
        ),
        (
            "raw args: negative divisor",
            Box::new(|r| {
                let a = QuantArgs {
                    src: 0x1000,
                    out: 0x2000,
                    status: STATUS,
                    len: 8,
                    chunks: 1,
                    peers: 1,
                    group_len: 4,
                    divisor: -1.0,
                    ..QuantArgs::default()
                };
                ops::quant_decompress(r, &a)
            }),
        ),
    ];
    for (what, f) in cases {
        let mut r = Recorder::default();
        let e = f(&mut r);
        assert!(
            matches!(e, Err(OpError::InvalidArgument(_))),
            "{what}: {e:?}"
        );
        assert!(r.launches.is_empty(), "{what} launched {:?}", r.launches);
    }
    // An empty tensor launches nothing and succeeds.
    let mut r = Recorder::default();
    let empty = QuantLayout::new(0, 4, Bits::Eight).unwrap();
    ops::quantize(&mut r, Dtype::F16, &empty, 0, 0, STATUS).unwrap();
    assert!(r.launches.is_empty());
}

#[test]
fn spec_quant_entry_points_report_no_device_without_a_driver() {
    if capi::probe().is_ok() {
        eprintln!("a CUDA device is present: the no-device path is not exercised here");
        return;
    }
    let s = std::ptr::null_mut();
    let loco = LocoLayout::new(12, 3, 1, 4, Bits::Four).unwrap();
    let p = plan(ErrorStorage::F32, true);
    let shards = ShardLayout::new(12, 3, 4, Bits::Four).unwrap();
    let q = QuantLayout::new(12, 4, Bits::Four).unwrap();
    // SAFETY: without a driver nothing is dereferenced or launched.
    let results = unsafe {
        [
            capi::quantize_on_stream(s, 0, 12, 4, 4, 256, 512, 1024),
            capi::dequantize_on_stream(s, 12, 4, 4, 256, 512, 1024),
            capi::loco_compress_on_stream(s, &p, &loco, 0, 256, 512, 768, 1024),
            capi::loco_reduce_hop_on_stream(s, &p, &loco, 256, 512, 768, 1024),
            capi::loco_decompress_on_stream(s, &loco, 256, 512, true, 1024),
            capi::ef_worker_compress_on_stream(s, &shards, 0, 256, 512, 0, 768, 1024),
            capi::ef_server_compress_on_stream(s, &q, 8, 256, 2, 512, 1, 768, 1024),
            capi::ef_decompress_on_stream(s, &shards, 256, 512, 1024),
        ]
    };
    for (k, r) in results.iter().enumerate() {
        assert!(matches!(r, Err(OpError::NoDevice(_))), "entry {k}: {r:?}");
    }
}
