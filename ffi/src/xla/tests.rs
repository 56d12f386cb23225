//! Handler tests without XLA: call frames built by hand (the same structs XLA passes), a fake
//! API table that records error messages, and core's reference paths as the oracle.

// Boxes inside Vecs keep each pointed-at struct at a fixed address while the Vec grows.
#![allow(clippy::vec_box)]

use super::api::{self, *};
use super::handlers::{adamant_xla_adam, adamant_xla_combine, adamant_xla_sum_sq_partials};
use adamant_core::reduce;
use adamant_core::rules::adam::{adam_reference, AdamState};
use adamant_core::{AdamConfig, Begin, StepOptions};
use core::ffi::{c_char, c_void};
use std::cell::RefCell;
use std::ffi::CStr;

thread_local! {
    static LAST_ERROR: RefCell<Option<(i32, String)>> = const { RefCell::new(None) };
}

unsafe extern "C" fn fake_error_create(args: *mut ErrorCreateArgs) -> *mut Error {
    // SAFETY: the handler passes a valid args struct with a NUL-terminated message.
    let (code, msg) = unsafe {
        let a = &*args;
        assert!(a.struct_size >= ERROR_CREATE_ARGS_STRUCT_SIZE);
        (
            a.errc,
            CStr::from_ptr(a.message).to_string_lossy().into_owned(),
        )
    };
    LAST_ERROR.with(|e| *e.borrow_mut() = Some((code, msg)));
    core::ptr::NonNull::<u8>::dangling().as_ptr() as *mut Error
}

fn fake_api() -> Api {
    Api {
        struct_size: 192,
        extension_start: core::ptr::null_mut(),
        api_version: ApiVersion {
            struct_size: API_VERSION_STRUCT_SIZE,
            extension_start: core::ptr::null_mut(),
            major_version: 0,
            minor_version: 3,
        },
        internal_api: core::ptr::null(),
        error_create: Some(fake_error_create),
        error_get_message: None,
        error_destroy: None,
        handler_register: None,
        stream_get: None,
    }
}

/// One buffer: its descriptor plus the storage it points at.
struct Buf {
    desc: Buffer,
    dims: Vec<i64>,
}

fn buf(dtype: i32, data: *mut c_void, dims: &[i64]) -> Box<Buf> {
    let mut b = Box::new(Buf {
        desc: Buffer {
            struct_size: BUFFER_STRUCT_SIZE,
            extension_start: core::ptr::null_mut(),
            dtype,
            data,
            rank: dims.len() as i64,
            dims: core::ptr::null(),
        },
        dims: dims.to_vec(),
    });
    b.desc.dims = b.dims.as_ptr();
    b
}

enum Attr {
    F64(f64),
    Bool(bool),
    Str(&'static str),
}

/// Owns everything a call frame points at.
struct Call {
    api: Box<Api>,
    args: Vec<Box<Buf>>,
    rets: Vec<Box<Buf>>,
    arg_types: Vec<i32>,
    ret_types: Vec<i32>,
    arg_ptrs: Vec<*mut c_void>,
    ret_ptrs: Vec<*mut c_void>,
    names: Vec<Box<ByteSpan>>,
    name_ptrs: Vec<*const ByteSpan>,
    attr_types: Vec<i32>,
    values: Vec<Box<[u8; 8]>>,
    strings: Vec<Box<ByteSpan>>,
    scalars: Vec<Box<Scalar>>,
    attr_ptrs: Vec<*const c_void>,
    frame: CallFrame,
}

impl Call {
    fn new(
        args: Vec<Box<Buf>>,
        rets: Vec<Box<Buf>>,
        mut attrs: Vec<(&'static str, Attr)>,
    ) -> Box<Call> {
        attrs.sort_by_key(|a| a.0); // XLA sorts attributes by name
        let empty = || Args {
            struct_size: 40,
            extension_start: core::ptr::null_mut(),
            size: 0,
            types: core::ptr::null(),
            args: core::ptr::null(),
        };
        let mut c = Box::new(Call {
            api: Box::new(fake_api()),
            arg_types: vec![api::BUFFER; args.len()],
            ret_types: vec![api::BUFFER; rets.len()],
            args,
            rets,
            arg_ptrs: vec![],
            ret_ptrs: vec![],
            names: vec![],
            name_ptrs: vec![],
            attr_types: vec![],
            values: vec![],
            strings: vec![],
            scalars: vec![],
            attr_ptrs: vec![],
            frame: CallFrame {
                struct_size: 176,
                extension_start: core::ptr::null_mut(),
                api: core::ptr::null(),
                ctx: core::ptr::null_mut(),
                stage: api::STAGE_EXECUTE,
                args: empty(),
                rets: empty(),
                attrs: Attrs {
                    struct_size: 48,
                    extension_start: core::ptr::null_mut(),
                    size: 0,
                    types: core::ptr::null(),
                    names: core::ptr::null(),
                    attrs: core::ptr::null(),
                },
                future: core::ptr::null_mut(),
            },
        });
        c.arg_ptrs = c
            .args
            .iter_mut()
            .map(|b| &mut b.desc as *mut Buffer as *mut c_void)
            .collect();
        c.ret_ptrs = c
            .rets
            .iter_mut()
            .map(|b| &mut b.desc as *mut Buffer as *mut c_void)
            .collect();
        for (name, a) in attrs {
            c.names.push(Box::new(ByteSpan {
                ptr: name.as_ptr() as *const c_char,
                len: name.len(),
            }));
            match a {
                Attr::F64(x) => {
                    c.values.push(Box::new(x.to_ne_bytes()));
                    let v = c.values.last().unwrap().as_ptr() as *const c_void;
                    c.scalars.push(Box::new(Scalar {
                        dtype: dtype::F64,
                        value: v,
                    }));
                    c.attr_types.push(ATTR_SCALAR);
                    c.attr_ptrs
                        .push(&**c.scalars.last().unwrap() as *const Scalar as *const c_void);
                }
                Attr::Bool(b) => {
                    c.values.push(Box::new([b as u8, 0, 0, 0, 0, 0, 0, 0]));
                    let v = c.values.last().unwrap().as_ptr() as *const c_void;
                    c.scalars.push(Box::new(Scalar {
                        dtype: dtype::PRED,
                        value: v,
                    }));
                    c.attr_types.push(ATTR_SCALAR);
                    c.attr_ptrs
                        .push(&**c.scalars.last().unwrap() as *const Scalar as *const c_void);
                }
                Attr::Str(s) => {
                    c.strings.push(Box::new(ByteSpan {
                        ptr: s.as_ptr() as *const c_char,
                        len: s.len(),
                    }));
                    c.attr_types.push(ATTR_STRING);
                    c.attr_ptrs
                        .push(&**c.strings.last().unwrap() as *const ByteSpan as *const c_void);
                }
            }
        }
        c.name_ptrs = c.names.iter().map(|n| &**n as *const ByteSpan).collect();
        c.frame.api = &*c.api;
        c.frame.args.size = c.args.len() as i64;
        c.frame.args.types = c.arg_types.as_ptr();
        c.frame.args.args = c.arg_ptrs.as_ptr();
        c.frame.rets.size = c.rets.len() as i64;
        c.frame.rets.types = c.ret_types.as_ptr();
        c.frame.rets.args = c.ret_ptrs.as_ptr();
        c.frame.attrs.size = c.attr_types.len() as i64;
        c.frame.attrs.types = c.attr_types.as_ptr();
        c.frame.attrs.names = c.name_ptrs.as_ptr();
        c.frame.attrs.attrs = c.attr_ptrs.as_ptr();
        c
    }

    fn call(
        &mut self,
        h: unsafe extern "C" fn(*mut CallFrame) -> *mut Error,
    ) -> Result<(), (i32, String)> {
        LAST_ERROR.with(|e| *e.borrow_mut() = None);
        // SAFETY: the frame and everything it points at live in `self`.
        let r = unsafe { h(&mut self.frame) };
        if r.is_null() {
            return Ok(());
        }
        Err(LAST_ERROR
            .with(|e| e.borrow_mut().take())
            .expect("error without message"))
    }
}

pub(super) fn adversarial(n: usize, seed: u32) -> Vec<f32> {
    const SPECIAL: [u32; 12] = [
        0,
        0x8000_0000,
        1,
        0x807F_FFFF,
        0x0080_0000,
        0x7F7F_FFFF,
        0x7F80_0000,
        0xFF80_0000,
        0x7FC0_0001,
        0xFFA0_0000,
        0x3F80_0000,
        0x1E3C_E508,
    ];
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            if i % 7 == 3 {
                f32::from_bits(SPECIAL[(s as usize) % SPECIAL.len()])
            } else {
                let mant = (s >> 9) as f32 / (1u32 << 23) as f32 - 0.5;
                mant * f32::from_bits(((100 + (s % 40)) << 23) & 0x7F80_0000)
            }
        })
        .collect()
}

/// Bit equality of two f32 slices (NaN payloads and signed zeros included).
pub(super) fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

pub(super) fn ptr<T>(v: &mut [T]) -> *mut c_void {
    v.as_mut_ptr() as *mut c_void
}

fn adam_attrs() -> Vec<(&'static str, Attr)> {
    vec![
        ("beta1", Attr::F64(0.9)),
        ("beta2", Attr::F64(0.999)),
        ("eps", Attr::F64(1e-8)),
        ("weight_decay", Attr::F64(0.01)),
        ("decoupled", Attr::Bool(true)),
    ]
}

struct AdamBufs {
    p: Vec<f32>,
    g: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    lr: f32,
    count: i32,
}

fn adam_inputs(n: usize) -> AdamBufs {
    AdamBufs {
        p: adversarial(n, 1),
        g: adversarial(n, 2),
        m: adversarial(n, 3),
        v: adversarial(n, 4).iter().map(|x| x.abs()).collect(),
        lr: 1e-3,
        count: 6,
    }
}

/// The handler's results equal core's reference path (software sqrt) bit for bit, with the
/// results aliased to the inputs (donation) and with separate result buffers.
#[test]
fn conformance_adam_handler_matches_core_reference() {
    for &n in &[1usize, 5, 4097] {
        for aliased in [true, false] {
            let mut b = adam_inputs(n);
            let mut want = adam_inputs(n);
            let opt = adamant_core::Adam {
                state: AdamState { step: 6 },
                ..adamant_core::Adam::new(AdamConfig {
                    weight_decay: 0.01,
                    ..AdamConfig::adamw()
                })
                .unwrap()
            };
            let Begin::Apply(plan) = opt
                .begin::<f32, _>(&StepOptions::new(b.lr as f64), [])
                .unwrap()
            else {
                panic!()
            };
            adam_reference(&mut want.p, &want.g, &mut want.m, &mut want.v, &plan);

            let (mut po, mut mo, mut vo) = (vec![7.0f32; n], vec![7.0f32; n], vec![7.0f32; n]);
            let d = [n as i64];
            let args = vec![
                buf(dtype::F32, ptr(&mut b.p), &d),
                buf(dtype::F32, ptr(&mut b.g), &d),
                buf(dtype::F32, ptr(&mut b.m), &d),
                buf(dtype::F32, ptr(&mut b.v), &d),
                buf(dtype::F32, &mut b.lr as *mut f32 as *mut c_void, &[]),
                buf(dtype::S32, &mut b.count as *mut i32 as *mut c_void, &[]),
            ];
            let rets = if aliased {
                vec![
                    buf(dtype::F32, args[0].desc.data, &d),
                    buf(dtype::F32, args[2].desc.data, &d),
                    buf(dtype::F32, args[3].desc.data, &d),
                ]
            } else {
                vec![
                    buf(dtype::F32, ptr(&mut po), &d),
                    buf(dtype::F32, ptr(&mut mo), &d),
                    buf(dtype::F32, ptr(&mut vo), &d),
                ]
            };
            let mut c = Call::new(args, rets, adam_attrs());
            c.call(adamant_xla_adam).unwrap();
            let (gp, gm, gv) = if aliased {
                (&b.p, &b.m, &b.v)
            } else {
                (&po, &mo, &vo)
            };
            for (name, got, want) in [
                ("param", gp, &want.p),
                ("exp_avg", gm, &want.m),
                ("exp_avg_sq", gv, &want.v),
            ] {
                for i in 0..n {
                    assert_eq!(
                        got[i].to_bits(),
                        want[i].to_bits(),
                        "{name}[{i}] n={n} aliased={aliased}"
                    );
                }
            }
            if !aliased {
                // Separate results: the inputs are read, not written.
                assert_untouched(&b, n);
            }
        }
    }
}

fn assert_untouched(b: &AdamBufs, n: usize) {
    let fresh = adam_inputs(n);
    for (x, y) in
        b.p.iter()
            .zip(&fresh.p)
            .chain(b.m.iter().zip(&fresh.m))
            .chain(b.v.iter().zip(&fresh.v))
    {
        assert_eq!(x.to_bits(), y.to_bits(), "a buffer was written on error");
    }
}

fn adam_call(
    b: &mut AdamBufs,
    grad_dims: &[i64],
    grad_dtype: i32,
    attrs: Vec<(&'static str, Attr)>,
) -> Result<(), (i32, String)> {
    let n = b.p.len() as i64;
    let d = [n];
    let args = vec![
        buf(dtype::F32, ptr(&mut b.p), &d),
        buf(grad_dtype, ptr(&mut b.g), grad_dims),
        buf(dtype::F32, ptr(&mut b.m), &d),
        buf(dtype::F32, ptr(&mut b.v), &d),
        buf(dtype::F32, &mut b.lr as *mut f32 as *mut c_void, &[]),
        buf(dtype::S32, &mut b.count as *mut i32 as *mut c_void, &[]),
    ];
    let rets = vec![
        buf(dtype::F32, args[0].desc.data, &d),
        buf(dtype::F32, args[2].desc.data, &d),
        buf(dtype::F32, args[3].desc.data, &d),
    ];
    Call::new(args, rets, attrs).call(adamant_xla_adam)
}

#[test]
fn spec_errors_name_the_argument_and_write_nothing() {
    let n = 12usize;
    type Case = (Vec<i64>, i32, Vec<(&'static str, Attr)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            vec![12],
            dtype::S32,
            adam_attrs(),
            "`grad` has dtype int32; accepted: float32, bfloat16, float16",
        ),
        (
            vec![3, 4],
            dtype::F32,
            adam_attrs(),
            "argument `grad` has shape [3, 4], expected [12]",
        ),
        (
            vec![12],
            99,
            adam_attrs(),
            "`grad` has dtype an unsupported dtype",
        ),
        (
            vec![12],
            dtype::F32,
            adam_attrs()
                .into_iter()
                .chain([("zeta", Attr::F64(1.0))])
                .collect(),
            "unknown attribute `zeta`; accepted: beta1, beta2, eps, weight_decay, decoupled",
        ),
        (
            vec![12],
            dtype::F32,
            adam_attrs()
                .into_iter()
                .filter(|a| a.0 != "beta2")
                .collect(),
            "missing attribute `beta2`",
        ),
        (
            vec![12],
            dtype::F32,
            adam_attrs()
                .into_iter()
                .map(|a| {
                    if a.0 == "eps" {
                        ("eps", Attr::Str("tiny"))
                    } else {
                        a
                    }
                })
                .collect(),
            "attribute `eps` must be a scalar",
        ),
        (
            vec![12],
            dtype::F32,
            adam_attrs()
                .into_iter()
                .map(|a| {
                    if a.0 == "eps" {
                        ("eps", Attr::F64(0.0))
                    } else {
                        a
                    }
                })
                .collect(),
            "invalid hyper-parameter",
        ),
    ];
    for (dims, gdt, attrs, want) in cases {
        let mut b = adam_inputs(n);
        let (code, msg) = adam_call(&mut b, &dims, gdt, attrs).unwrap_err();
        assert_eq!(code, ERROR_INVALID_ARGUMENT);
        assert!(msg.contains(want), "{msg:?} should contain {want:?}");
        assert!(msg.starts_with("adamant_adam: "), "{msg}");
        assert_untouched(&b, n);
    }
    let mut b = adam_inputs(n);
    b.count = -1;
    let (_, msg) = adam_call(&mut b, &[12], dtype::F32, adam_attrs()).unwrap_err();
    assert!(msg.contains("`count` is -1"), "{msg}");
    assert_untouched(&b, n);
}

#[test]
fn spec_metadata_query_reports_api_0_1_without_touching_args() {
    let mut md = Metadata {
        struct_size: METADATA_STRUCT_SIZE,
        api_version: ApiVersion {
            struct_size: 0,
            extension_start: core::ptr::null_mut(),
            major_version: 9,
            minor_version: 9,
        },
        traits: 77,
        state_type_id: 0,
    };
    // An unrelated extension first: the handler must walk the chain.
    let mut ext = MetadataExtension {
        extension_base: ExtensionBase {
            struct_size: METADATA_EXTENSION_STRUCT_SIZE,
            ty: EXTENSION_METADATA,
            next: core::ptr::null_mut(),
        },
        metadata: &mut md,
    };
    let mut other = ExtensionBase {
        struct_size: 24,
        ty: 42,
        next: &mut ext.extension_base,
    };
    let api = fake_api();
    let bogus = || Args {
        struct_size: 40,
        extension_start: core::ptr::null_mut(),
        size: 3,
        types: core::ptr::dangling::<i32>(), // would crash if read
        args: core::ptr::dangling::<*mut c_void>(),
    };
    let mut frame = CallFrame {
        struct_size: 176,
        extension_start: &mut other,
        api: &api,
        ctx: core::ptr::null_mut(),
        stage: STAGE_EXECUTE,
        args: bogus(),
        rets: bogus(),
        attrs: Attrs {
            struct_size: 48,
            extension_start: core::ptr::null_mut(),
            size: 1,
            types: core::ptr::dangling::<i32>(),
            names: core::ptr::dangling::<*const ByteSpan>(),
            attrs: core::ptr::dangling::<*const c_void>(),
        },
        future: core::ptr::null_mut(),
    };
    for h in [
        adamant_xla_adam,
        adamant_xla_combine,
        adamant_xla_sum_sq_partials,
    ] {
        md.api_version.major_version = 9;
        // SAFETY: a well-formed frame whose args would fault if touched.
        let r = unsafe { h(&mut frame) };
        assert!(r.is_null());
        assert_eq!(
            (md.api_version.major_version, md.api_version.minor_version),
            (0, 1)
        );
        assert_eq!(md.api_version.struct_size, API_VERSION_STRUCT_SIZE);
        assert_eq!(md.traits, 0);
    }
}

#[test]
fn spec_non_execute_stages_do_nothing() {
    let n = 8;
    for stage in [0, 1, 2] {
        let mut b = adam_inputs(n);
        let d = [n as i64];
        let args = vec![
            buf(dtype::F32, ptr(&mut b.p), &d),
            buf(dtype::F32, ptr(&mut b.g), &d),
            buf(dtype::F32, ptr(&mut b.m), &d),
            buf(dtype::F32, ptr(&mut b.v), &d),
            buf(dtype::F32, &mut b.lr as *mut f32 as *mut c_void, &[]),
            buf(dtype::S32, &mut b.count as *mut i32 as *mut c_void, &[]),
        ];
        let rets = vec![
            buf(dtype::F32, args[0].desc.data, &d),
            buf(dtype::F32, args[2].desc.data, &d),
            buf(dtype::F32, args[3].desc.data, &d),
        ];
        let mut c = Call::new(args, rets, adam_attrs());
        c.frame.stage = stage;
        c.call(adamant_xla_adam).unwrap();
        assert_untouched(&b, n);
    }
}

#[test]
fn conformance_partials_and_combine_match_core() {
    for &n in &[1usize, 4096, 4097, 3 * 4096 + 11] {
        let mut x: Vec<f32> = adversarial(n, 9)
            .iter()
            .map(|v| {
                if v.is_finite() {
                    v.clamp(-1e10, 1e10)
                } else {
                    0.5
                }
            })
            .collect();
        let tiles = reduce::tile_count(n);
        let mut parts = vec![0f32; tiles];
        let mut c = Call::new(
            vec![buf(dtype::F32, ptr(&mut x), &[n as i64])],
            vec![buf(dtype::F32, ptr(&mut parts), &[tiles as i64])],
            vec![],
        );
        c.call(adamant_xla_sum_sq_partials).unwrap();
        let mut want = vec![0f32; tiles];
        reduce::partials_by(&x, |v| v * v, &mut want).unwrap();
        assert_eq!(
            parts.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        let mut total = 0f32;
        let mut c = Call::new(
            vec![buf(dtype::F32, ptr(&mut parts), &[tiles as i64])],
            vec![buf(dtype::F32, &mut total as *mut f32 as *mut c_void, &[])],
            vec![],
        );
        c.call(adamant_xla_combine).unwrap();
        assert_eq!(total.to_bits(), reduce::sum_sq(&x).to_bits(), "n={n}");
    }
    // A partials buffer of the wrong length is named.
    let mut x = vec![1f32; 5000];
    let mut parts = vec![0f32; 1];
    let mut c = Call::new(
        vec![buf(dtype::F32, ptr(&mut x), &[5000])],
        vec![buf(dtype::F32, ptr(&mut parts), &[1])],
        vec![("extra", Attr::F64(1.0))],
    );
    assert!(c
        .call(adamant_xla_sum_sq_partials)
        .unwrap_err()
        .1
        .contains("unknown attribute `extra`"));
    let mut c = Call::new(
        vec![buf(dtype::F32, ptr(&mut x), &[5000])],
        vec![buf(dtype::F32, ptr(&mut parts), &[1])],
        vec![],
    );
    assert!(c
        .call(adamant_xla_sum_sq_partials)
        .unwrap_err()
        .1
        .contains("`partials` has 1 elements, expected 2"));
}

#[test]
fn conformance_host_lion_and_sgd_match_core_step() {
    use super::host::{adamant_host_lion, adamant_host_sgd};
    use adamant_core::{Lion, LionConfig, Sgd, SgdConfig};
    let n = 4099;
    let g = adversarial(n, 21);
    let mut msg = [0 as c_char; 256];

    // Lion: three steps through the host entry against `Lion::step`.
    let (mut p, mut m) = (adversarial(n, 22), adversarial(n, 23));
    let (mut wp, mut wm) = (p.clone(), m.clone());
    let mut lion = Lion::new(LionConfig {
        lr: 0.01,
        weight_decay: 0.1,
        ..LionConfig::official()
    })
    .unwrap();
    for count in 0..3 {
        // SAFETY: n f32 elements each; msg has its length.
        let rc = unsafe {
            adamant_host_lion(
                ptr(&mut p),
                11,
                g.as_ptr() as *const c_void,
                11,
                ptr(&mut m),
                11,
                n,
                0.01,
                count,
                0.9,
                0.99,
                0.1,
                1.0,
                msg.as_mut_ptr(),
                msg.len(),
            )
        };
        assert_eq!(rc, 0);
        lion.step(&mut wp, &g, &mut wm, &StepOptions::new(0.01))
            .unwrap();
        assert!(same(&p, &wp), "lion param, count {count}");
        assert!(same(&m, &wm), "lion exp_avg, count {count}");
    }

    // SGD with Nesterov momentum: the first step initialises the buffer.
    let (mut p, mut buf) = (adversarial(n, 24), vec![0f32; n]);
    let (mut wp, mut wb) = (p.clone(), buf.clone());
    let cfg = SgdConfig {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-4,
        ..SgdConfig::new(0.05)
    };
    let mut sgd = Sgd::new(cfg).unwrap();
    for count in 0..3 {
        // SAFETY: as above.
        let rc = unsafe {
            adamant_host_sgd(
                ptr(&mut p),
                11,
                g.as_ptr() as *const c_void,
                11,
                ptr(&mut buf),
                11,
                n,
                0.05,
                count,
                0.9,
                0.0,
                1e-4,
                1,
                1.0,
                msg.as_mut_ptr(),
                msg.len(),
            )
        };
        assert_eq!(rc, 0);
        sgd.step(&mut wp, &g, &mut wb, &StepOptions::new(0.05))
            .unwrap();
        assert!(same(&p, &wp), "sgd param, count {count}");
        assert!(same(&buf, &wb), "sgd buffer, count {count}");
    }

    // An error names the argument in the caller's message buffer.
    // SAFETY: as above; the state pointer is shorter than claimed but is never touched.
    let rc = unsafe {
        adamant_host_sgd(
            ptr(&mut p),
            11,
            g.as_ptr() as *const c_void,
            4,
            ptr(&mut buf),
            11,
            n,
            0.05,
            0,
            0.9,
            0.0,
            0.0,
            0,
            1.0,
            msg.as_mut_ptr(),
            msg.len(),
        )
    };
    assert_eq!(rc, 1);
    // SAFETY: the entry point NUL-terminates within the buffer.
    let text = unsafe { CStr::from_ptr(msg.as_ptr()) }.to_string_lossy();
    assert!(text.contains("`grad` has dtype int32"), "{text}");
}
