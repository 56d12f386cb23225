//! `#[repr(C)]` mirrors of the stable part of XLA's typed-FFI C API (`xla/ffi/api/c_api.h`),
//! written by hand for API version 0.1 and pinned by `offset_of!` checks against the layouts
//! of the jaxlib 0.8.0 and 0.10.2 headers (identical on the handler path).
//!
//! Every C enum is a plain `i32`/`u32` field, never a Rust `enum`: a newer jaxlib may send
//! discriminants this code does not know, and a Rust `enum` holding one would be undefined
//! behaviour. Only the handler path is mirrored; the stateful and type-registry APIs changed
//! between 0.1 and 0.3 and are not used.
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_void};

/// The API version this library reports in the metadata query. jaxlib 0.6–0.8 accept exactly
/// 0.1; jaxlib 0.9 and later accept any version from 0.1 to their own.
pub const API_MAJOR: i32 = 0;
/// See [`API_MAJOR`].
pub const API_MINOR: i32 = 1;

/// `XLA_FFI_Extension_Metadata`.
pub const EXTENSION_METADATA: i32 = 1;
/// `XLA_FFI_ArgType_BUFFER` / `XLA_FFI_RetType_BUFFER`.
pub const BUFFER: i32 = 1;
/// `XLA_FFI_AttrType_ARRAY`.
pub const ATTR_ARRAY: i32 = 1;
/// `XLA_FFI_AttrType_SCALAR`.
pub const ATTR_SCALAR: i32 = 3;
/// `XLA_FFI_AttrType_STRING`.
pub const ATTR_STRING: i32 = 4;
/// `XLA_FFI_ExecutionStage_EXECUTE`.
pub const STAGE_EXECUTE: i32 = 3;
/// `XLA_FFI_Error_Code_INVALID_ARGUMENT`.
pub const ERROR_INVALID_ARGUMENT: i32 = 3;
/// `XLA_FFI_Error_Code_INTERNAL`.
pub const ERROR_INTERNAL: i32 = 13;

/// `XLA_FFI_DataType` values (from `xla_data.proto`) that adamant reads.
pub mod dtype {
    /// `PRED` (bool, one byte).
    pub const PRED: i32 = 1;
    /// `S8`.
    pub const S8: i32 = 2;
    /// `S16`.
    pub const S16: i32 = 3;
    /// `S32`.
    pub const S32: i32 = 4;
    /// `S64`.
    pub const S64: i32 = 5;
    /// `U8`.
    pub const U8: i32 = 6;
    /// `U32`.
    pub const U32: i32 = 8;
    /// `U64`.
    pub const U64: i32 = 9;
    /// `F16`.
    pub const F16: i32 = 10;
    /// `F32`.
    pub const F32: i32 = 11;
    /// `F64`.
    pub const F64: i32 = 12;
    /// `BF16`.
    pub const BF16: i32 = 16;

    /// A short name for messages (`dtype 23` for values adamant does not know).
    pub fn name(d: i32) -> &'static str {
        match d {
            PRED => "bool",
            S8 => "int8",
            S16 => "int16",
            S32 => "int32",
            S64 => "int64",
            U8 => "uint8",
            U32 => "uint32",
            U64 => "uint64",
            F16 => "float16",
            F32 => "float32",
            F64 => "float64",
            BF16 => "bfloat16",
            _ => "an unsupported dtype",
        }
    }
}

/// `XLA_FFI_Extension_Base`.
#[repr(C)]
pub struct ExtensionBase {
    /// `struct_size`.
    pub struct_size: usize,
    /// `XLA_FFI_Extension_Type` (int enum).
    pub ty: i32,
    /// Next extension in the chain, or null.
    pub next: *mut ExtensionBase,
}

/// `XLA_FFI_Api_Version`.
#[repr(C)]
pub struct ApiVersion {
    /// `struct_size`.
    pub struct_size: usize,
    /// `extension_start`.
    pub extension_start: *mut ExtensionBase,
    /// `major_version`.
    pub major_version: i32,
    /// `minor_version`.
    pub minor_version: i32,
}
/// `XLA_FFI_Api_Version_STRUCT_SIZE` (runs up to `minor_version`).
pub const API_VERSION_STRUCT_SIZE: usize = 24;

/// `XLA_FFI_Metadata`.
#[repr(C)]
pub struct Metadata {
    /// `struct_size`.
    pub struct_size: usize,
    /// The handler's API version (written by the handler).
    pub api_version: ApiVersion,
    /// `XLA_FFI_Handler_Traits` (u32 bit set).
    pub traits: u32,
    /// `XLA_FFI_TypeId state_type_id` (one `int64_t`); not read or written.
    pub state_type_id: i64,
}
/// `XLA_FFI_Metadata_STRUCT_SIZE` (runs up to `traits`).
pub const METADATA_STRUCT_SIZE: usize = 36;

/// `XLA_FFI_Metadata_Extension`.
#[repr(C)]
pub struct MetadataExtension {
    /// `extension_base`.
    pub extension_base: ExtensionBase,
    /// The metadata the handler fills in.
    pub metadata: *mut Metadata,
}
/// `XLA_FFI_Metadata_Extension_STRUCT_SIZE`.
pub const METADATA_EXTENSION_STRUCT_SIZE: usize = 32;

/// `XLA_FFI_Buffer`.
#[repr(C)]
pub struct Buffer {
    /// `struct_size`.
    pub struct_size: usize,
    /// `extension_start`.
    pub extension_start: *mut ExtensionBase,
    /// `XLA_FFI_DataType` (int enum).
    pub dtype: i32,
    /// Device (on CPU: host) address of the first element.
    pub data: *mut c_void,
    /// Number of dimensions.
    pub rank: i64,
    /// `rank` dimension sizes.
    pub dims: *const i64,
}

/// `XLA_FFI_Args` (`XLA_FFI_Rets` has the same layout).
#[repr(C)]
pub struct Args {
    /// `struct_size`.
    pub struct_size: usize,
    /// `extension_start`.
    pub extension_start: *mut ExtensionBase,
    /// Number of arguments.
    pub size: i64,
    /// `XLA_FFI_ArgType[size]` (int enums).
    pub types: *const i32,
    /// `void*[size]`, each an `XLA_FFI_Buffer*` for buffer arguments.
    pub args: *const *mut c_void,
}

/// `XLA_FFI_ByteSpan` (not NUL-terminated).
#[repr(C)]
pub struct ByteSpan {
    /// First byte.
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

/// `XLA_FFI_Scalar`.
#[repr(C)]
pub struct Scalar {
    /// `XLA_FFI_DataType` (int enum).
    pub dtype: i32,
    /// Address of the value.
    pub value: *const c_void,
}

/// `XLA_FFI_Array` (a dense array attribute).
#[repr(C)]
pub struct Array {
    /// `XLA_FFI_DataType` of the elements (int enum).
    pub dtype: i32,
    /// Element count.
    pub size: usize,
    /// First element.
    pub data: *const c_void,
}

/// `XLA_FFI_Attrs` (sorted by name).
#[repr(C)]
pub struct Attrs {
    /// `struct_size`.
    pub struct_size: usize,
    /// `extension_start`.
    pub extension_start: *mut ExtensionBase,
    /// Number of attributes.
    pub size: i64,
    /// `XLA_FFI_AttrType[size]` (int enums).
    pub types: *const i32,
    /// `XLA_FFI_ByteSpan*[size]`.
    pub names: *const *const ByteSpan,
    /// `void*[size]`: `XLA_FFI_Scalar*`, `XLA_FFI_ByteSpan*`, ...
    pub attrs: *const *const c_void,
}

/// Opaque `XLA_FFI_Error`.
#[repr(C)]
pub struct Error {
    _private: [u8; 0],
}

/// Opaque `XLA_FFI_ExecutionContext`.
#[repr(C)]
pub struct ExecutionContext {
    _private: [u8; 0],
}

/// `XLA_FFI_Error_Create_Args`.
#[repr(C)]
pub struct ErrorCreateArgs {
    /// `struct_size` ([`ERROR_CREATE_ARGS_STRUCT_SIZE`]).
    pub struct_size: usize,
    /// `extension_start`.
    pub extension_start: *mut ExtensionBase,
    /// NUL-terminated message (XLA copies it).
    pub message: *const c_char,
    /// `XLA_FFI_Error_Code` (int enum).
    pub errc: i32,
}
/// `XLA_FFI_Error_Create_Args_STRUCT_SIZE`.
pub const ERROR_CREATE_ARGS_STRUCT_SIZE: usize = 28;

/// `XLA_FFI_Stream_Get_Args`.
#[repr(C)]
pub struct StreamGetArgs {
    /// `struct_size` ([`STREAM_GET_ARGS_STRUCT_SIZE`]).
    pub struct_size: usize,
    /// `extension_start`.
    pub extension_start: *mut ExtensionBase,
    /// The call's execution context.
    pub ctx: *mut ExecutionContext,
    /// Out: the platform stream (`CUstream` on CUDA).
    pub stream: *mut c_void,
}
/// `XLA_FFI_Stream_Get_Args_STRUCT_SIZE`.
pub const STREAM_GET_ARGS_STRUCT_SIZE: usize = 32;

/// `XLA_FFI_Error_Create`.
pub type ErrorCreateFn = unsafe extern "C" fn(*mut ErrorCreateArgs) -> *mut Error;
/// `XLA_FFI_Stream_Get`.
pub type StreamGetFn = unsafe extern "C" fn(*mut StreamGetArgs) -> *mut Error;
/// A function pointer adamant does not call.
pub type OpaqueFn = Option<unsafe extern "C" fn()>;

/// `XLA_FFI_Api`, up to the fields adamant uses (the table is only ever read through a
/// pointer XLA owns, so the tail need not be mirrored).
#[repr(C)]
pub struct Api {
    /// `struct_size`.
    pub struct_size: usize,
    /// `extension_start`.
    pub extension_start: *mut ExtensionBase,
    /// The framework's API version.
    pub api_version: ApiVersion,
    /// `internal_api`.
    pub internal_api: *const c_void,
    /// `XLA_FFI_Error_Create`.
    pub error_create: Option<ErrorCreateFn>,
    /// `XLA_FFI_Error_GetMessage`.
    pub error_get_message: OpaqueFn,
    /// `XLA_FFI_Error_Destroy`.
    pub error_destroy: OpaqueFn,
    /// `XLA_FFI_Handler_Register`.
    pub handler_register: OpaqueFn,
    /// `XLA_FFI_Stream_Get`.
    pub stream_get: Option<StreamGetFn>,
}

/// `XLA_FFI_CallFrame`.
#[repr(C)]
pub struct CallFrame {
    /// `struct_size`.
    pub struct_size: usize,
    /// `extension_start` (the metadata query arrives here).
    pub extension_start: *mut ExtensionBase,
    /// The API table.
    pub api: *const Api,
    /// `ctx`.
    pub ctx: *mut ExecutionContext,
    /// `XLA_FFI_ExecutionStage` (int enum).
    pub stage: i32,
    /// Arguments.
    pub args: Args,
    /// Results (`XLA_FFI_Rets`).
    pub rets: Args,
    /// Attributes.
    pub attrs: Attrs,
    /// `future` (out; adamant's handlers are synchronous and leave it alone).
    pub future: *mut c_void,
}
/// `XLA_FFI_CallFrame_STRUCT_SIZE` (runs up to `attrs`).
pub const CALL_FRAME_STRUCT_SIZE: usize = 168;
/// `XLA_FFI_Buffer_STRUCT_SIZE`.
pub const BUFFER_STRUCT_SIZE: usize = 48;

// Layout pins (x86-64 / aarch64 LP64), from compiling the 0.8.0 and 0.10.2 headers.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<ExtensionBase>() == 24);
    assert!(size_of::<ApiVersion>() == 24);
    assert!(offset_of!(Buffer, dtype) == 16);
    assert!(offset_of!(Buffer, data) == 24);
    assert!(offset_of!(Buffer, rank) == 32);
    assert!(offset_of!(Buffer, dims) == 40);
    assert!(size_of::<Buffer>() == BUFFER_STRUCT_SIZE);
    assert!(offset_of!(Args, size) == 16);
    assert!(offset_of!(Args, types) == 24);
    assert!(offset_of!(Args, args) == 32);
    assert!(size_of::<Args>() == 40);
    assert!(offset_of!(Attrs, size) == 16);
    assert!(offset_of!(Attrs, types) == 24);
    assert!(offset_of!(Attrs, names) == 32);
    assert!(offset_of!(Attrs, attrs) == 40);
    assert!(size_of::<Attrs>() == 48);
    assert!(offset_of!(CallFrame, api) == 16);
    assert!(offset_of!(CallFrame, ctx) == 24);
    assert!(offset_of!(CallFrame, stage) == 32);
    assert!(offset_of!(CallFrame, args) == 40);
    assert!(offset_of!(CallFrame, rets) == 80);
    assert!(offset_of!(CallFrame, attrs) == 120);
    assert!(offset_of!(CallFrame, future) == CALL_FRAME_STRUCT_SIZE);
    assert!(size_of::<CallFrame>() == 176);
    assert!(offset_of!(Api, api_version) == 16);
    assert!(offset_of!(Api, internal_api) == 40);
    assert!(offset_of!(Api, error_create) == 48);
    assert!(offset_of!(Api, error_get_message) == 56);
    assert!(offset_of!(Api, error_destroy) == 64);
    assert!(offset_of!(Api, handler_register) == 72);
    assert!(offset_of!(Api, stream_get) == 80);
    assert!(offset_of!(Metadata, api_version) == 8);
    assert!(offset_of!(Metadata, traits) == 32);
    assert!(offset_of!(Metadata, state_type_id) == 40);
    assert!(size_of::<Metadata>() == 48);
    assert!(offset_of!(MetadataExtension, metadata) == 24);
    assert!(size_of::<MetadataExtension>() == METADATA_EXTENSION_STRUCT_SIZE);
    assert!(offset_of!(ErrorCreateArgs, message) == 16);
    assert!(offset_of!(ErrorCreateArgs, errc) == 24);
    assert!(offset_of!(StreamGetArgs, ctx) == 16);
    assert!(offset_of!(StreamGetArgs, stream) == 24);
    assert!(size_of::<StreamGetArgs>() == STREAM_GET_ARGS_STRUCT_SIZE);
    assert!(size_of::<ByteSpan>() == 16);
    assert!(offset_of!(Scalar, value) == 8);
    assert!(size_of::<Scalar>() == 16);
    assert!(offset_of!(Array, size) == 8);
    assert!(offset_of!(Array, data) == 16);
    assert!(size_of::<Array>() == 24);
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn spec_handler_path_offsets_match_the_c_header() {
        // The same pins as the compile-time block, as a test that names each field on failure.
        let pins: &[(&str, usize, usize)] = &[
            ("Buffer.dtype", offset_of!(Buffer, dtype), 16),
            ("Buffer.data", offset_of!(Buffer, data), 24),
            ("Buffer.dims", offset_of!(Buffer, dims), 40),
            ("CallFrame.stage", offset_of!(CallFrame, stage), 32),
            ("CallFrame.args", offset_of!(CallFrame, args), 40),
            ("CallFrame.rets", offset_of!(CallFrame, rets), 80),
            ("CallFrame.attrs", offset_of!(CallFrame, attrs), 120),
            ("Api.error_create", offset_of!(Api, error_create), 48),
            ("Api.stream_get", offset_of!(Api, stream_get), 80),
            ("Metadata.traits", offset_of!(Metadata, traits), 32),
            (
                "ErrorCreateArgs.errc",
                offset_of!(ErrorCreateArgs, errc),
                24,
            ),
            ("sizeof Buffer", size_of::<Buffer>(), 48),
            ("sizeof CallFrame", size_of::<CallFrame>(), 176),
        ];
        for &(name, got, want) in pins {
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn spec_reported_version_is_accepted_by_every_supported_jaxlib() {
        // jaxlib <= 0.8 demands exactly 0.1; 0.9+ accept [0.1, own]. Only 0.1 satisfies both.
        assert_eq!((API_MAJOR, API_MINOR), (0, 1));
    }
}
