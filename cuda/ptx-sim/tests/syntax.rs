//! Hand-written PTX covering syntax nvcc emits in other configurations: inline-asm scopes with
//! local registers that shadow outer ones, `.file`/`.loc` lines, `bra.uni`, `@!p` guards,
//! `.extern .shared` dynamic shared memory, 3-D blocks and special registers, `.v2` access.

mod common;
use adamant_cuda::backend::{Backend, LaunchShape, ParamValue};
use common::*;
use ptx_sim::Simulator;

const PTX: &str = r#"
//
// hand-written
//
.version 7.8
.target sm_70
.address_size 64

.extern .shared .align 16 .b8 dyn_smem[];

.visible .entry probe(
	.param .u64 probe_param_0,
	.param .align 8 .b8 probe_param_1[16]
)
{
	.reg .pred 	%p<3>;
	.reg .b32 	%r<16>;
	.reg .b64 	%rd<8>;
	.file	1 "probe.cu"

	.loc	1 10 3
	ld.param.u64 	%rd1, [probe_param_0];
	ld.param.u64 	%rd2, [probe_param_1+8];
	ld.param.u32 	%r1, [probe_param_1];
	cvta.to.global.u64 	%rd3, %rd1;
	mov.u32 	%r2, %tid.x;
	mov.u32 	%r3, %tid.y;
	mov.u32 	%r4, %tid.z;
	mov.u32 	%r5, %ntid.x;
	mov.u32 	%r6, %ntid.y;
	mad.lo.s32 	%r7, %r4, %r6, %r3;
	mad.lo.s32 	%r7, %r7, %r5, %r2;
	// begin inline asm
	{
	.reg .b32 %r2, hi;
	mov.b64 	{%r2, hi}, %rd2;
	add.s32 	%r8, %r2, hi;
	}
	// end inline asm
	add.s32 	%r8, %r8, %r2;
	mov.u32 	%r9, %laneid;
	mov.u32 	%r10, %warpid;
	shl.b32 	%r11, %r10, 8;
	or.b32  	%r11, %r11, %r9;
	mov.u32 	%r12, dyn_smem;
	shl.b32 	%r13, %r7, 3;
	add.s32 	%r12, %r12, %r13;
	st.shared.v2.u32 	[%r12], {%r8, %r11};
	bar.sync 	0;
	setp.eq.s32 	%p1, %r7, 0;
	@!%p1 bra.uni 	$L__skip;
	add.s32 	%r8, %r8, %r1;
$L__skip:
	ld.shared.v2.u32 	{%r14, %r15}, [%r12];
	mul.wide.u32 	%rd4, %r7, 12;
	add.s64 	%rd5, %rd3, %rd4;
	st.global.u32 	[%rd5], %r8;
	st.global.u32 	[%rd5+4], %r14;
	st.global.u32 	[%rd5+8], %r15;
	ret;
}
"#;

#[test]
fn scopes_specials_dynamic_shared_and_guards() {
    let mut s = Simulator::new();
    s.register_module("probe", PTX).unwrap();
    let block = (4u32, 3u32, 3u32);
    let n = (block.0 * block.1 * block.2) as usize;
    let b: &mut dyn Backend = &mut s;
    let out = b.alloc(12 * n).unwrap();
    let (lo, hi) = (0x1111_0000u32, 0x0000_2222u32);
    let mut st = 77u32.to_le_bytes().to_vec();
    st.extend_from_slice(&[0; 4]);
    st.extend_from_slice(&(((hi as u64) << 32) | lo as u64).to_le_bytes());
    let params = [
        ParamValue::U64(out),
        ParamValue::from_slice(8, &st).unwrap(),
    ];
    let shape = LaunchShape {
        grid: (1, 1, 1),
        block,
        shared_bytes: 8 * n as u32,
    };
    b.launch("probe", "probe", shape, &params).unwrap();
    let got = from_bytes_u32(&get(b, out, 12 * n));
    for t in 0..n {
        let x = (t % 4) as u32;
        // Inside the scope %r2 is the local register (lo), outside it is %tid.x again.
        let v = lo + hi + x + if t == 0 { 77 } else { 0 };
        let ident = (((t / 32) as u32) << 8) | (t % 32) as u32;
        assert_eq!(
            got[3 * t..3 * t + 3],
            [v, v - if t == 0 { 77 } else { 0 }, ident],
            "thread {t}"
        );
    }
    // Too little dynamic shared memory: the store past the end is refused with its line.
    let params2 = [ParamValue::U64(out), ParamValue::from_struct(8, [0u8; 16])];
    let e = s
        .launch_sim(
            "probe",
            "probe",
            LaunchShape {
                shared_bytes: 8,
                ..shape
            },
            &params2,
        )
        .unwrap_err();
    assert!(e.msg.contains("shared store"), "{e}");
    assert_eq!(
        PTX.lines().nth(e.line as usize - 1).unwrap().trim(),
        "st.shared.v2.u32 \t[%r12], {%r8, %r11};"
    );
}

#[test]
fn launch_bounds_are_enforced() {
    let bounded = PTX.replacen(
        "\t.param .align 8 .b8 probe_param_1[16]\n)",
        "\t.param .align 8 .b8 probe_param_1[16]\n)\n.maxntid 64, 1, 1\n.minnctapersm 2",
        1,
    );
    assert_ne!(bounded, PTX);
    let mut s = Simulator::new();
    s.register_module("b", &bounded).unwrap();
    let out = s.alloc(12 * 128).unwrap();
    let params = [ParamValue::U64(out), ParamValue::from_struct(8, [0u8; 16])];
    let ok = LaunchShape {
        grid: (1, 1, 1),
        block: (64, 1, 1),
        shared_bytes: 8 * 64,
    };
    s.launch_sim("b", "probe", ok, &params).unwrap();
    let too_big = LaunchShape {
        block: (128, 1, 1),
        shared_bytes: 8 * 128,
        ..ok
    };
    let e = s.launch_sim("b", "probe", too_big, &params).unwrap_err();
    assert!(e.msg.contains(".maxntid"), "{e}");
}
