//! Reading arguments from C and writing outputs back: NULL checks, UTF-8 checks, and the only
//! allocator of strings handed to C.

use std::ffi::{c_char, CStr, CString};

use crate::error::{nol_status, Fail, FfiResult};

/// A required reference.
pub(crate) unsafe fn reference<'a, T>(ptr: *const T, name: &str) -> FfiResult<&'a T> {
    // SAFETY: the caller promises a non-NULL `ptr` points to a live `T` (header contract).
    unsafe { ptr.as_ref() }.ok_or_else(|| null(name))
}

/// A required out-pointer.
pub(crate) unsafe fn out<'a, T>(ptr: *mut T, name: &str) -> FfiResult<&'a mut T> {
    // SAFETY: as above, for a writable `T`.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(name))
}

pub(crate) fn null(name: &str) -> Fail {
    Fail::new(nol_status::NullArgument, format!("{name} is NULL"))
}

/// The bytes of a required C string.
pub(crate) unsafe fn bytes<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a [u8]> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-NULL and, by the header contract, NUL-terminated and live for the call.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// A required UTF-8 C string.
pub(crate) unsafe fn string<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a str> {
    let b = unsafe { bytes(ptr, name) }?;
    std::str::from_utf8(b).map_err(|_| {
        Fail::new(
            nol_status::InvalidUtf8,
            format!("{name} is not valid UTF-8"),
        )
    })
}

/// An optional UTF-8 C string: NULL is `None`.
pub(crate) unsafe fn opt_string<'a>(ptr: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        unsafe { string(ptr, name) }.map(Some)
    }
}

/// An optional C string from the wire: NULL, or bytes that are not UTF-8, are `None`.
pub(crate) unsafe fn wire_string<'a>(ptr: *const c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated by the header contract.
    std::str::from_utf8(unsafe { CStr::from_ptr(ptr) }.to_bytes()).ok()
}

/// A string for C, owned by the caller and freed with `nol_string_free`. An interior NUL (which
/// no libnol output should hold) is dropped rather than cutting the string short.
pub(crate) fn c_string(s: &str) -> *mut c_char {
    let c = match CString::new(s) {
        Ok(c) => c,
        Err(_) => CString::new(s.replace('\0', "")).unwrap_or_default(),
    };
    c.into_raw()
}

/// An optional string for C: `None` is NULL.
pub(crate) fn c_opt_string(s: Option<&str>) -> *mut c_char {
    s.map_or(std::ptr::null_mut(), c_string)
}
