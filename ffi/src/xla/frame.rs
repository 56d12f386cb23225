//! Reading an `XLA_FFI_CallFrame`: the metadata query, the stage, buffers checked by count,
//! kind, dtype and shape, scalar attributes by name (unknown names rejected), and errors
//! returned through `XLA_FFI_Error_Create` with a message naming the argument.
//!
//! Nothing here reads the contents of a buffer: only the `XLA_FFI_Buffer` descriptors, which
//! live in host memory on every platform.

use super::api::{self, dtype, Api, Args, Array, Attrs, Buffer, ByteSpan, CallFrame, Scalar};
use core::ffi::c_void;
use std::ffi::CString;

/// A failed check: an error code and a message for the user.
#[derive(Debug)]
pub struct Fail {
    /// `XLA_FFI_Error_Code`.
    pub code: i32,
    /// The message (names the handler and the argument).
    pub message: String,
}

impl Fail {
    /// An `INVALID_ARGUMENT` failure.
    pub fn invalid(message: String) -> Fail {
        Fail {
            code: api::ERROR_INVALID_ARGUMENT,
            message,
        }
    }
}

/// What the frame asks of the handler.
pub enum Stage<'a> {
    /// The metadata query was answered; return null.
    Answered,
    /// A stage other than EXECUTE: nothing to do.
    Other,
    /// Run the step.
    Execute(Frame<'a>),
}

/// A call frame that passed the size check, in the EXECUTE stage.
pub struct Frame<'a> {
    frame: &'a CallFrame,
    /// The custom-call target name, for messages.
    pub target: &'static str,
}

/// One buffer descriptor (argument or result), with its element count.
#[derive(Clone, Copy)]
pub struct BufView {
    /// The argument's name (for messages).
    pub name: &'static str,
    /// `XLA_FFI_DataType`.
    pub dtype: i32,
    /// Address of the first element.
    pub data: *mut c_void,
    /// Product of the dimensions.
    pub len: usize,
    /// Rank.
    pub rank: usize,
    dims: *const i64,
}

impl BufView {
    /// The dimensions.
    pub fn dims(&self) -> &[i64] {
        if self.rank == 0 {
            return &[];
        }
        // SAFETY: XLA gives `rank` dimension sizes at `dims` for the duration of the call;
        // `rank > 0` here and the pointer was checked non-null in `read_buffer`.
        unsafe { core::slice::from_raw_parts(self.dims, self.rank) }
    }
}

/// Handle the metadata query and the stage. `frame` is the pointer XLA passed.
///
/// # Safety
/// `frame` must be null or point to a call frame XLA passed to a handler.
pub unsafe fn enter<'a>(frame: *mut CallFrame, target: &'static str) -> Result<Stage<'a>, Fail> {
    if frame.is_null() {
        return Err(Fail::invalid(format!("{target}: null call frame")));
    }
    // SAFETY: non-null and provided by XLA; `struct_size` is the first field of every version.
    let size = unsafe { (*frame).struct_size };
    // The extension chain comes first: the metadata query must be answered without touching
    // the arguments.
    // SAFETY: `extension_start` is at offset 8 in every layout since API 0.1.
    let mut ext = unsafe { (*frame).extension_start };
    while !ext.is_null() {
        // SAFETY: XLA's extension chain links valid `XLA_FFI_Extension_Base` values.
        let base = unsafe { &*ext };
        if base.ty == api::EXTENSION_METADATA
            && base.struct_size >= api::METADATA_EXTENSION_STRUCT_SIZE
        {
            let md_ext = ext as *mut api::MetadataExtension;
            // SAFETY: type and size identify an `XLA_FFI_Metadata_Extension`.
            let md = unsafe { (*md_ext).metadata };
            if !md.is_null() {
                // SAFETY: XLA owns `metadata` for the query; its size is checked before writing.
                let md = unsafe { &mut *md };
                if md.struct_size < api::METADATA_STRUCT_SIZE {
                    return Err(Fail::invalid(format!(
                        "{target}: metadata struct too small ({} bytes)",
                        md.struct_size
                    )));
                }
                md.api_version.struct_size = api::API_VERSION_STRUCT_SIZE;
                md.api_version.major_version = api::API_MAJOR;
                md.api_version.minor_version = api::API_MINOR;
                md.traits = 0;
            }
            return Ok(Stage::Answered);
        }
        ext = base.next;
    }
    if size < api::CALL_FRAME_STRUCT_SIZE {
        return Err(Fail::invalid(format!(
            "{target}: call frame of {size} bytes is older than XLA FFI API 0.1"
        )));
    }
    // SAFETY: the size check above covers every field read through this reference.
    let frame = unsafe { &*frame };
    if frame.stage != api::STAGE_EXECUTE {
        return Ok(Stage::Other);
    }
    Ok(Stage::Execute(Frame { frame, target }))
}

/// Turn a failure into an `XLA_FFI_Error*` through the frame's API table, or null if the
/// table cannot create one.
///
/// # Safety
/// `frame` must be null or a call frame XLA passed to a handler.
pub unsafe fn error(frame: *mut CallFrame, fail: Fail) -> *mut api::Error {
    if frame.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `api` is at offset 16 in every layout since 0.1; XLA keeps the table alive.
    let api: *const Api = unsafe { (*frame).api };
    if api.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: checked non-null; `error_create` is the fifth field of every 0.x table.
    let Some(create) = (unsafe { (*api).error_create }) else {
        return core::ptr::null_mut();
    };
    let msg = CString::new(fail.message.replace('\0', " ")).unwrap_or_default();
    let mut args = api::ErrorCreateArgs {
        struct_size: api::ERROR_CREATE_ARGS_STRUCT_SIZE,
        extension_start: core::ptr::null_mut(),
        message: msg.as_ptr(),
        errc: fail.code,
    };
    // SAFETY: `args` is fully initialised; XLA copies the message before returning.
    unsafe { create(&mut args) }
}

unsafe fn read_buffer(
    list: &Args,
    i: usize,
    name: &'static str,
    what: &str,
    target: &str,
) -> Result<BufView, Fail> {
    // SAFETY: the caller checked `i < list.size`; `types` and `args` hold `size` entries.
    let ty = unsafe { *list.types.add(i) };
    if ty != api::BUFFER {
        return Err(Fail::invalid(format!(
            "{target}: {what} `{name}` must be a buffer (got kind {ty})"
        )));
    }
    // SAFETY: as above; a BUFFER entry points to an `XLA_FFI_Buffer`.
    let b = unsafe { &*(*list.args.add(i) as *const Buffer) };
    if b.rank < 0 || (b.rank > 0 && b.dims.is_null()) {
        return Err(Fail::invalid(format!(
            "{target}: {what} `{name}` has a malformed shape"
        )));
    }
    let mut v = BufView {
        name,
        dtype: b.dtype,
        data: b.data,
        len: 1,
        rank: b.rank as usize,
        dims: b.dims,
    };
    let mut len: usize = 1;
    for &d in v.dims() {
        if d < 0 {
            return Err(Fail::invalid(format!(
                "{target}: {what} `{name}` has a negative dimension"
            )));
        }
        len = len
            .checked_mul(d as usize)
            .ok_or_else(|| Fail::invalid(format!("{target}: {what} `{name}` is too large")))?;
    }
    v.len = len;
    Ok(v)
}

impl<'a> Frame<'a> {
    /// The arguments, checked to be exactly `names.len()` buffers.
    pub fn args<const N: usize>(&self, names: [&'static str; N]) -> Result<[BufView; N], Fail> {
        self.list(&self.frame.args, names, "argument")
    }

    /// The arguments `names`, optionally followed by one more buffer `optional` (a trailing
    /// argument added later, so frames built for the earlier signature keep working).
    pub fn args_opt<const N: usize>(
        &self,
        names: [&'static str; N],
        optional: &'static str,
    ) -> Result<([BufView; N], Option<BufView>), Fail> {
        let list = &self.frame.args;
        if list.size != N as i64 + 1 {
            return Ok((self.args(names)?, None));
        }
        let head = self.args_prefix(list, names)?;
        // SAFETY: `N < list.size`; the list is XLA's for this call.
        let last = unsafe { read_buffer(list, N, optional, "argument", self.target)? };
        Ok((head, Some(last)))
    }

    fn args_prefix<const N: usize>(
        &self,
        list: &Args,
        names: [&'static str; N],
    ) -> Result<[BufView; N], Fail> {
        let mut out = [BufView {
            name: "",
            dtype: 0,
            data: core::ptr::null_mut(),
            len: 0,
            rank: 0,
            dims: core::ptr::null(),
        }; N];
        for (i, o) in out.iter_mut().enumerate() {
            // SAFETY: the caller checked `N <= list.size`; the list is XLA's for this call.
            *o = unsafe { read_buffer(list, i, names[i], "argument", self.target)? };
        }
        Ok(out)
    }

    /// The results, checked to be exactly `names.len()` buffers.
    pub fn rets<const N: usize>(&self, names: [&'static str; N]) -> Result<[BufView; N], Fail> {
        self.list(&self.frame.rets, names, "result")
    }

    fn list<const N: usize>(
        &self,
        list: &Args,
        names: [&'static str; N],
        what: &str,
    ) -> Result<[BufView; N], Fail> {
        if list.size != N as i64 {
            return Err(Fail::invalid(format!(
                "{}: expected {N} {what}s ({}), got {}",
                self.target,
                names.join(", "),
                list.size
            )));
        }
        let mut out = [BufView {
            name: "",
            dtype: 0,
            data: core::ptr::null_mut(),
            len: 0,
            rank: 0,
            dims: core::ptr::null(),
        }; N];
        for (i, o) in out.iter_mut().enumerate() {
            // SAFETY: `i < N == list.size`; the list is XLA's for this call.
            *o = unsafe { read_buffer(list, i, names[i], what, self.target)? };
        }
        Ok(out)
    }

    /// Number of arguments XLA passed (for handlers with an optional trailing argument).
    pub fn arg_count(&self) -> usize {
        self.frame.args.size.max(0) as usize
    }

    /// Read the scalar attributes: every name in `accepted` must be present and no other name
    /// may appear. Values are returned in the order of `accepted`.
    pub fn attrs<const N: usize>(
        &self,
        accepted: [&'static str; N],
    ) -> Result<[AttrValue; N], Fail> {
        let out = self.attrs_opt(accepted)?;
        let mut vals = [AttrValue::Int(0); N];
        for k in 0..N {
            vals[k] = out[k].ok_or_else(|| {
                Fail::invalid(format!(
                    "{}: missing attribute `{}`",
                    self.target, accepted[k]
                ))
            })?;
        }
        Ok(vals)
    }

    /// Read the attributes, each optional: no name outside `accepted` may appear. Scalars
    /// and one-dimensional integer arrays are accepted.
    pub fn attrs_opt<const N: usize>(
        &self,
        accepted: [&'static str; N],
    ) -> Result<[Option<AttrValue>; N], Fail> {
        let attrs: &Attrs = &self.frame.attrs;
        let mut out: [Option<AttrValue>; N] = [None; N];
        for i in 0..attrs.size.max(0) as usize {
            // SAFETY: `i < size`; `names`, `types` and `attrs` hold `size` entries.
            let (ty, name_span, value) = unsafe {
                (
                    *attrs.types.add(i),
                    &**attrs.names.add(i),
                    *attrs.attrs.add(i),
                )
            };
            let name = span_str(name_span);
            let Some(k) = accepted.iter().position(|a| *a == name) else {
                return Err(Fail::invalid(format!(
                    "{}: unknown attribute `{name}`; accepted: {}",
                    self.target,
                    accepted.join(", ")
                )));
            };
            if ty == api::ATTR_ARRAY {
                // SAFETY: an ARRAY attribute points to an `XLA_FFI_Array`.
                let a = unsafe { &*(value as *const Array) };
                if !matches!(a.dtype, dtype::S64 | dtype::S32) || (a.size > 0 && a.data.is_null()) {
                    return Err(Fail::invalid(format!(
                        "{}: attribute `{name}` must be an int64 or int32 array (got {})",
                        self.target,
                        dtype::name(a.dtype)
                    )));
                }
                out[k] = Some(AttrValue::Ints {
                    dtype: a.dtype,
                    data: a.data,
                    len: a.size,
                });
                continue;
            }
            if ty != api::ATTR_SCALAR {
                return Err(Fail::invalid(format!(
                    "{}: attribute `{name}` must be a scalar (got attribute kind {ty})",
                    self.target
                )));
            }
            // SAFETY: a SCALAR attribute points to an `XLA_FFI_Scalar`.
            let s = unsafe { &*(value as *const Scalar) };
            // SAFETY: the scalar's value has the size its dtype says.
            out[k] = Some(unsafe { read_scalar(s) }.ok_or_else(|| {
                Fail::invalid(format!(
                    "{}: attribute `{name}` has {}; expected a float or an integer",
                    self.target,
                    dtype::name(s.dtype)
                ))
            })?);
        }
        Ok(out)
    }
}

fn span_str(s: &ByteSpan) -> String {
    if s.ptr.is_null() {
        return String::new();
    }
    // SAFETY: XLA's byte span covers `len` bytes at `ptr`.
    let bytes = unsafe { core::slice::from_raw_parts(s.ptr as *const u8, s.len) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scalar attribute's value.
#[derive(Clone, Copy, Debug)]
pub enum AttrValue {
    /// A floating-point attribute, widened exactly to f64.
    Float(f64),
    /// An integer or boolean attribute.
    Int(i64),
    /// A one-dimensional integer array attribute (`XLA_FFI_Array`, int64 or int32), valid
    /// for the duration of the call.
    Ints {
        /// `S64` or `S32`.
        dtype: i32,
        /// First element.
        data: *const c_void,
        /// Element count.
        len: usize,
    },
}

impl AttrValue {
    /// As a float (integers convert).
    pub fn f64(self) -> f64 {
        match self {
            AttrValue::Float(x) => x,
            AttrValue::Int(i) => i as f64,
            AttrValue::Ints { .. } => f64::NAN,
        }
    }
    /// As a flag: nonzero is true.
    pub fn flag(self) -> bool {
        match self {
            AttrValue::Float(x) => x != 0.0,
            AttrValue::Int(i) => i != 0,
            AttrValue::Ints { len, .. } => len != 0,
        }
    }
    /// As an integer: integers as they are, floats only when integral.
    pub fn int(self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(i),
            AttrValue::Float(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Some(x as i64),
            _ => None,
        }
    }
    /// As a list of integers: an array attribute, or a scalar integer as one element.
    pub fn ints(self) -> Option<Vec<i64>> {
        match self {
            AttrValue::Ints {
                dtype: d,
                data,
                len,
            } => {
                let mut v = Vec::with_capacity(len);
                for i in 0..len {
                    // SAFETY: XLA keeps `len` elements of dtype `d` at `data` for the call;
                    // unaligned reads keep this independent of attribute storage packing.
                    v.push(unsafe {
                        if d == dtype::S64 {
                            (data as *const i64).add(i).read_unaligned()
                        } else {
                            (data as *const i32).add(i).read_unaligned() as i64
                        }
                    });
                }
                Some(v)
            }
            AttrValue::Int(i) => Some(vec![i]),
            AttrValue::Float(_) => None,
        }
    }
}

unsafe fn read_scalar(s: &Scalar) -> Option<AttrValue> {
    if s.value.is_null() {
        return None;
    }
    let p = s.value;
    // SAFETY (all arms): XLA stores a value of the named dtype at `value`; unaligned reads
    // keep this independent of how XLA packs attribute storage.
    unsafe {
        Some(match s.dtype {
            dtype::F64 => AttrValue::Float((p as *const f64).read_unaligned()),
            dtype::F32 => AttrValue::Float((p as *const f32).read_unaligned() as f64),
            dtype::PRED | dtype::U8 => AttrValue::Int((p as *const u8).read_unaligned() as i64),
            dtype::S8 => AttrValue::Int((p as *const i8).read_unaligned() as i64),
            dtype::S16 => AttrValue::Int((p as *const i16).read_unaligned() as i64),
            dtype::S32 => AttrValue::Int((p as *const i32).read_unaligned() as i64),
            dtype::S64 => AttrValue::Int((p as *const i64).read_unaligned()),
            dtype::U32 => AttrValue::Int((p as *const u32).read_unaligned() as i64),
            dtype::U64 => AttrValue::Int((p as *const u64).read_unaligned() as i64),
            _ => return None,
        })
    }
}
