//! The committed header, read by bindgen, against adamant-ffi's Rust definitions: every
//! struct's size, alignment and field offsets (and that both sides list the same fields with
//! the same types), every enum value, every exported function, the version macros.

use adamant as ffi;
use adamant_abi_layout::c;
use std::mem::{align_of, offset_of, size_of};

const HEADER: &str = include_str!("../../../include/adamant.h");

/// Size, alignment and each field's offset agree; the two struct literals fail to compile
/// unless both definitions have exactly these fields with the same types.
macro_rules! same_struct {
    ($name:ident { $($f:ident),* $(,)? }) => {{
        assert_eq!(size_of::<c::$name>(), size_of::<ffi::$name>(), "size of {}", stringify!($name));
        assert_eq!(align_of::<c::$name>(), align_of::<ffi::$name>(), "align of {}", stringify!($name));
        $(
            assert_eq!(
                offset_of!(c::$name, $f),
                offset_of!(ffi::$name, $f),
                "offset of {}.{}", stringify!($name), stringify!($f)
            );
        )*
        #[allow(dead_code)]
        fn c_to_rust(x: c::$name) -> ffi::$name { ffi::$name { $($f: x.$f),* } }
        #[allow(dead_code)]
        fn rust_to_c(x: ffi::$name) -> c::$name { c::$name { $($f: x.$f),* } }
    }};
}

#[test]
fn structs_match() {
    same_struct!(adamant_tensor { data, dtype, len });
    same_struct!(adamant_const_tensor { data, dtype, len });
    same_struct!(adamant_cuda_step_args {
        lr,
        step,
        grad_scale,
        clip_coef,
        found_inf,
        check_finite
    });
    same_struct!(adamant_cuda_tensor_table {
        count,
        total_chunks,
        clip_coef,
        rule,
        param_dtype,
        grad_dtype,
        state_dtype,
        state_count
    });
    same_struct!(adamant_cuda_clip_table {
        count,
        total_tiles,
        scratch,
        scratch_len,
        grad_dtype
    });
    same_struct!(adamant_cuda_adam_mini_table {
        table_bytes,
        segment_count,
        decay_count,
        plain_count,
        scan_count,
        total_chunks,
        total_tiles,
        total_blocks,
        decay_chunks,
        plain_chunks,
        scan_chunks,
        param_dtype,
        grad_dtype,
        state_dtype
    });
    same_struct!(adamant_step_options {
        lr,
        grad_scale,
        clip_coef,
        has_grad_scale,
        has_clip_coef,
        found_inf,
        check_finite
    });
    same_struct!(adamant_adam_config {
        beta1,
        beta2,
        eps,
        weight_decay,
        stochastic_rounding_seed,
        stochastic_rounding
    });
    same_struct!(adamant_sgd_config {
        momentum,
        dampening,
        weight_decay,
        stochastic_rounding_seed,
        nesterov,
        stochastic_rounding
    });
    same_struct!(adamant_lion_config {
        beta1,
        beta2,
        weight_decay,
        stochastic_rounding_seed,
        stochastic_rounding
    });
    same_struct!(adamant_adam_scalars {
        decay,
        weight_decay,
        beta1,
        one_minus_beta1,
        beta2,
        one_minus_beta2,
        step_size,
        bias_correction2_sqrt,
        eps
    });
    same_struct!(adamant_sgd_scalars {
        lr,
        weight_decay,
        momentum,
        one_minus_dampening,
        first_step,
        nesterov
    });
    same_struct!(adamant_lion_scalars {
        decay,
        lr,
        beta1,
        one_minus_beta1,
        beta2,
        one_minus_beta2
    });
    same_struct!(adamant_schedule {
        init_lr,
        peak_lr,
        final_lr,
        warmup_steps,
        total_steps,
        decay_steps,
        decay
    });
    same_struct!(adamant_adam_mini_config {
        beta1,
        beta2,
        eps,
        weight_decay,
        stochastic_rounding_seed,
        stochastic_rounding
    });
    same_struct!(adamant_block_segment { len, block_len });
    // The segments pointer's pointee is bindgen's own struct type, so this one is spelled out.
    assert_eq!(
        size_of::<c::adamant_block_layout>(),
        size_of::<ffi::adamant_block_layout>()
    );
    assert_eq!(
        align_of::<c::adamant_block_layout>(),
        align_of::<ffi::adamant_block_layout>()
    );
    macro_rules! same_offsets {
        ($($f:ident),*) => {$(
            assert_eq!(
                offset_of!(c::adamant_block_layout, $f),
                offset_of!(ffi::adamant_block_layout, $f),
                stringify!($f)
            );
        )*};
    }
    same_offsets!(kind, block_len, segments, segment_count, weight_decay);
    #[allow(dead_code)]
    fn c_to_rust(x: c::adamant_block_layout) -> ffi::adamant_block_layout {
        ffi::adamant_block_layout {
            kind: x.kind,
            block_len: x.block_len,
            segments: x.segments.cast(),
            segment_count: x.segment_count,
            weight_decay: x.weight_decay,
        }
    }
    same_struct!(adamant_loco_config {
        err_beta,
        group_len,
        reset_every,
        bits,
        error_int8
    });
    same_struct!(adamant_loco_sizes {
        shard_len,
        chunk_len,
        compress_len,
        hop_len,
        received_len,
        error_len,
        inter_error_len
    });
    same_struct!(adamant_adagc_config {
        lambda_rel,
        beta,
        eps,
        max_norm,
        t_start,
        mode
    });
}

/// Number of enumerators `PREFIX...` the header declares (lines `  PREFIX... = n,`).
fn enumerators(prefix: &str) -> usize {
    HEADER
        .lines()
        .filter(|l| l.trim_start().starts_with(prefix) && l.contains(" = "))
        .count()
}

#[test]
fn enum_values_match() {
    use ffi::adamant_status as S;
    let status = [
        (c::adamant_status_ADAMANT_STATUS_OK, S::Ok),
        (
            c::adamant_status_ADAMANT_STATUS_NULL_POINTER,
            S::NullPointer,
        ),
        (
            c::adamant_status_ADAMANT_STATUS_LENGTH_MISMATCH,
            S::LengthMismatch,
        ),
        (c::adamant_status_ADAMANT_STATUS_MISALIGNED, S::Misaligned),
        (c::adamant_status_ADAMANT_STATUS_OVERLAP, S::Overlap),
        (
            c::adamant_status_ADAMANT_STATUS_INVALID_ENUM,
            S::InvalidEnum,
        ),
        (
            c::adamant_status_ADAMANT_STATUS_INVALID_CONFIG,
            S::InvalidConfig,
        ),
        (
            c::adamant_status_ADAMANT_STATUS_UNSUPPORTED_DTYPE,
            S::UnsupportedDtype,
        ),
        (
            c::adamant_status_ADAMANT_STATUS_SKIPPED_FOUND_INF,
            S::SkippedFoundInf,
        ),
        (
            c::adamant_status_ADAMANT_STATUS_SKIPPED_NON_FINITE,
            S::SkippedNonFinite,
        ),
        (
            c::adamant_status_ADAMANT_STATUS_STEP_OVERFLOW,
            S::StepOverflow,
        ),
        (
            c::adamant_status_ADAMANT_STATUS_LENGTH_TOO_LARGE,
            S::LengthTooLarge,
        ),
        (c::adamant_status_ADAMANT_STATUS_PANIC, S::Panic),
        (c::adamant_status_ADAMANT_STATUS_CUDA_ERROR, S::CudaError),
        (
            c::adamant_status_ADAMANT_STATUS_NO_CUDA_DRIVER,
            S::NoCudaDriver,
        ),
    ];
    for (cv, rv) in status {
        assert_eq!(cv, rv as u32, "{rv:?}");
    }
    assert_eq!(status.len(), S::ALL.len());
    assert_eq!(enumerators("ADAMANT_STATUS_"), S::ALL.len());
    // Codes are dense from 0: ALL[i] has value i (so none was renumbered or skipped).
    for (i, s) in S::ALL.iter().enumerate() {
        assert_eq!(*s as usize, i);
    }

    use ffi::adamant_dtype as D;
    let dtype = [
        (c::adamant_dtype_ADAMANT_DTYPE_F32, D::F32),
        (c::adamant_dtype_ADAMANT_DTYPE_BF16, D::Bf16),
        (c::adamant_dtype_ADAMANT_DTYPE_F16, D::F16),
    ];
    for (cv, rv) in dtype {
        assert_eq!(cv, rv as u32, "{rv:?}");
    }
    assert_eq!(enumerators("ADAMANT_DTYPE_"), 3);
    assert_eq!(dtype.len(), adamant_ffi_dtype_count());

    use ffi::adamant_reduce_op as R;
    assert_eq!(c::adamant_reduce_op_ADAMANT_REDUCE_OP_SUM, R::Sum as u32);
    assert_eq!(
        c::adamant_reduce_op_ADAMANT_REDUCE_OP_SUM_SQ,
        R::SumSq as u32
    );
    assert_eq!(enumerators("ADAMANT_REDUCE_OP_"), 2);

    use ffi::adamant_cuda_rule as U;
    assert_eq!(c::adamant_cuda_rule_ADAMANT_CUDA_RULE_ADAM, U::Adam as u32);
    assert_eq!(c::adamant_cuda_rule_ADAMANT_CUDA_RULE_SGD, U::Sgd as u32);
    assert_eq!(c::adamant_cuda_rule_ADAMANT_CUDA_RULE_LION, U::Lion as u32);
    assert_eq!(enumerators("ADAMANT_CUDA_RULE_"), 3);

    use ffi::adamant_decay as Y;
    assert_eq!(c::adamant_decay_ADAMANT_DECAY_CONSTANT, Y::Constant as u32);
    assert_eq!(c::adamant_decay_ADAMANT_DECAY_LINEAR, Y::Linear as u32);
    assert_eq!(c::adamant_decay_ADAMANT_DECAY_COSINE, Y::Cosine as u32);
    assert_eq!(
        c::adamant_decay_ADAMANT_DECAY_WARMUP_STABLE_DECAY,
        Y::WarmupStableDecay as u32
    );
    assert_eq!(enumerators("ADAMANT_DECAY_"), 4);

    use ffi::adamant_block_kind as K;
    let kinds = [
        (c::adamant_block_kind_ADAMANT_BLOCK_KIND_ELEMENT, K::Element),
        (c::adamant_block_kind_ADAMANT_BLOCK_KIND_ROWS, K::Rows),
        (c::adamant_block_kind_ADAMANT_BLOCK_KIND_HEADS, K::Heads),
        (c::adamant_block_kind_ADAMANT_BLOCK_KIND_TENSOR, K::Tensor),
        (
            c::adamant_block_kind_ADAMANT_BLOCK_KIND_SEGMENTS,
            K::Segments,
        ),
    ];
    for (cv, rv) in kinds {
        assert_eq!(cv, rv as u32, "{rv:?}");
    }
    assert_eq!(enumerators("ADAMANT_BLOCK_KIND_"), kinds.len());

    use ffi::adamant_adagc_mode as A;
    assert_eq!(
        c::adamant_adagc_mode_ADAMANT_ADAGC_MODE_PER_TENSOR,
        A::PerTensor as u32
    );
    assert_eq!(
        c::adamant_adagc_mode_ADAMANT_ADAGC_MODE_GLOBAL,
        A::Global as u32
    );
    assert_eq!(enumerators("ADAMANT_ADAGC_MODE_"), 2);

    assert_eq!(c::ADAMANT_REDUCE_TILE as usize, ffi::ADAMANT_REDUCE_TILE);
}

/// Dtypes the library accepts: sizes are nonzero exactly for them.
fn adamant_ffi_dtype_count() -> usize {
    (0..16).filter(|&d| ffi::adamant_dtype_size(d) != 0).count()
}

#[test]
fn version_macros_match_cargo_and_contract() {
    assert_eq!(c::ADAMANT_VERSION_MAJOR, ffi::VERSION_MAJOR);
    assert_eq!(c::ADAMANT_VERSION_MINOR, ffi::VERSION_MINOR);
    assert_eq!(c::ADAMANT_VERSION_PATCH, ffi::VERSION_PATCH);
    let s = std::ffi::CStr::from_bytes_with_nul(c::ADAMANT_VERSION_STRING).unwrap();
    assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    // SAFETY: adamant_version returns a static NUL-terminated string.
    let lib = unsafe { std::ffi::CStr::from_ptr(ffi::adamant_version()) };
    assert_eq!(lib, s);
    assert_eq!(
        c::ADAMANT_NUMERIC_CONTRACT_VERSION,
        ffi::adamant_numeric_contract_version()
    );
}

/// Every function the header declares resolves to the library's symbol: taking the
/// address of bindgen's declaration links against the Rust definition.
macro_rules! same_fn {
    ($($f:ident),* $(,)?) => {{
        let mut n = 0;
        $(
            assert_eq!(c::$f as *const () as usize, ffi::$f as *const () as usize, stringify!($f));
            n += 1;
        )*
        n
    }};
}

#[test]
fn every_declared_function_is_exported() {
    let n = same_fn!(
        adamant_adamw_config_default,
        adamant_adam_config_default,
        adamant_adamw_step,
        adamant_adam_step,
        adamant_adamw_step_multi,
        adamant_adam_step_multi,
        adamant_adamw_step_scalars,
        adamant_adam_step_scalars,
        adamant_clip_coef_global_norm,
        adamant_lion_config_default,
        adamant_lion_step,
        adamant_lion_step_multi,
        adamant_lion_step_scalars,
        adamant_step_options_default,
        adamant_reduce_tile_count,
        adamant_reduce_partials,
        adamant_reduce_partials_multi,
        adamant_reduce_combine,
        adamant_reduce,
        adamant_max_abs,
        adamant_max_abs_combine,
        adamant_all_finite,
        adamant_schedule_default,
        adamant_schedule_lr,
        adamant_sgd_config_default,
        adamant_sgd_step,
        adamant_sgd_step_multi,
        adamant_sgd_step_scalars,
        adamant_version,
        adamant_numeric_contract_version,
        adamant_status_string,
        adamant_dtype_size,
        adamant_adam_mini_config_default,
        adamant_adam_mini_state_len,
        adamant_adam_mini_step,
        adamant_adam_mini_step_multi,
        adamant_adam_mini_partials,
        adamant_adam_mini_block_step,
        adamant_adagc_config_default,
        adamant_adagc_gamma_len,
        adamant_adagc_coefs,
        adamant_adagc_commit,
        adamant_loco_config_default,
        adamant_quant_packed_len,
        adamant_loco_layout_sizes,
        adamant_quantize,
        adamant_dequantize,
        adamant_loco_compress,
        adamant_loco_reduce_hop,
        adamant_loco_decompress_reduce,
        adamant_adamw_step_multi_clip,
        adamant_adam_step_multi_clip,
        adamant_sgd_step_multi_clip,
        adamant_lion_step_multi_clip,
        adamant_ef_worker_compress,
        adamant_ef_server_compress,
        adamant_ef_decompress,
        adamant_cuda_adamw_step,
        adamant_cuda_adam_step,
        adamant_cuda_adamw_step_multi,
        adamant_cuda_adam_step_multi,
        adamant_cuda_sgd_step,
        adamant_cuda_sgd_step_multi,
        adamant_cuda_lion_step,
        adamant_cuda_lion_step_multi,
        adamant_cuda_nonfinite_check,
        adamant_cuda_step_commit,
        adamant_cuda_reduce_partials,
        adamant_cuda_reduce_combine_scratch_len,
        adamant_cuda_reduce_combine,
        adamant_cuda_available,
        adamant_cuda_tensor_table_bytes,
        adamant_cuda_tensor_table_encode,
        adamant_cuda_adamw_step_table,
        adamant_cuda_adam_step_table,
        adamant_cuda_sgd_step_table,
        adamant_cuda_lion_step_table,
        adamant_cuda_quantize,
        adamant_cuda_dequantize,
        adamant_cuda_loco_compress,
        adamant_cuda_loco_reduce_hop,
        adamant_cuda_loco_decompress_reduce,
        adamant_cuda_ef_worker_compress,
        adamant_cuda_ef_server_compress,
        adamant_cuda_ef_decompress,
        adamant_cuda_clip_table_bytes,
        adamant_cuda_clip_scratch_len,
        adamant_cuda_clip_table_encode,
        adamant_cuda_adagc_coefs,
        adamant_cuda_adagc_commit,
        adamant_cuda_clip_coef_global_norm,
        adamant_cuda_adam_mini_table_bytes,
        adamant_cuda_adam_mini_scratch_len,
        adamant_cuda_adam_mini_table_encode,
        adamant_cuda_adam_mini_step_table,
        adamant_set_num_threads,
        adamant_num_threads,
    );
    // The header declares exactly these functions (a new one must be added above).
    let declared = HEADER
        .lines()
        .filter(|l| l.starts_with(|ch: char| ch.is_ascii_alphabetic()))
        .filter_map(|l| l.split_once('(').map(|(head, _)| head))
        .filter(|head| {
            let name = head.rsplit([' ', '*']).next().unwrap_or("");
            name.starts_with("adamant_")
        })
        .count();
    assert_eq!(declared, n, "functions in include/adamant.h vs listed here");
}
