//! `nol_precall` and `nol_enroll`: the pre-call endpoints (a do-not-call scrub of a destination
//! before dialing out, and enrolling one's own numbers), failing open like `nol_lookup`.

use std::ffi::c_char;

use nol_core::client::{Enrollment, Precall};

use crate::arg;
use crate::client::nol_client;
use crate::error::{boundary, boundary_void, nol_status, FfiResult};

/// A pre-call check's answer (a Rust `nol_core::client::Precall`). Made by `nol_precall`, freed
/// by `nol_precall_result_free`. Immutable: read it from any thread; free it once. It may
/// outlive its client. Every string accessor writes a copy (free it with `nol_string_free`) or
/// NULL.
pub struct nol_precall_result {
    inner: Precall,
}

/// An enrolment's answer (a Rust `nol_core::client::Enrollment`). Made by `nol_enroll`, freed
/// by `nol_enroll_result_free`. Immutable: read it from any thread; free it once. It may
/// outlive its client. Every string accessor writes a copy (free it with `nol_string_free`) or
/// NULL.
pub struct nol_enroll_result {
    inner: Enrollment,
}

/// A wire string: one that is not UTF-8 is no number, and fails open as `invalid_number`.
unsafe fn number<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a str> {
    let bytes = unsafe { arg::bytes(ptr, name) }?;
    Ok(std::str::from_utf8(bytes).unwrap_or("\u{FFFD}"))
}

/// Asks whether a call from `from` (one of your numbers) to `to` may be placed: a do-not-call
/// scrub and a compliance signal, with a receipt. Writes the answer to `*out` (free it with
/// `nol_precall_result_free`). Both numbers are read as `nol_lookup` reads a calling number
/// (E.164, or national with the client's default country).
///
/// Fails open: whatever the network or the service does (a timeout, a refused connection, an
/// error status, a number that is not a possible number, a full worker pool, an open circuit
/// breaker), this returns `NOL_STATUS_OK` and a result whose DNC is `"UNKNOWN"`, with the
/// reason (`nol_precall_result_fail_open_reason`). `"UNKNOWN"` is not a permission to call:
/// apply your own policy.
///
/// BLOCKS the calling thread for at most the client's budget (`nol_config_set_budget_ms`),
/// counted from this call. Thread-safe; safe in a forked child (see `nol_client`).
///
/// `NOL_STATUS_NULL_ARGUMENT` (client, from, to or out is NULL) is a programming error;
/// `NOL_STATUS_PANIC` a bug. On either `*out` is left unchanged.
#[no_mangle]
pub unsafe extern "C" fn nol_precall(
    client: *const nol_client,
    from: *const c_char,
    to: *const c_char,
    out: *mut *mut nol_precall_result,
) -> nol_status {
    boundary(|| {
        let client = unsafe { arg::reference(client, "client") }?;
        let from = unsafe { number(from, "from") }?;
        let to = unsafe { number(to, "to") }?;
        let out = unsafe { arg::out(out, "out") }?;
        let inner = client.precall(from, to);
        *out = Box::into_raw(Box::new(nol_precall_result { inner }));
        Ok(())
    })
}

/// Frees a pre-call result. NULL is fine. Never blocks; call it once per result. Thread-safe
/// for distinct results; no other call may be using this one.
#[no_mangle]
pub unsafe extern "C" fn nol_precall_result_free(result: *mut nol_precall_result) {
    boundary_void(|| {
        if !result.is_null() {
            // SAFETY: made by `nol_precall` and not freed before (header contract).
            drop(unsafe { Box::from_raw(result) });
        }
    })
}

unsafe fn precall_string(
    result: *const nol_precall_result,
    out: *mut *mut c_char,
    get: impl FnOnce(&Precall) -> Option<String>,
) -> nol_status {
    boundary(|| {
        let r = unsafe { arg::reference(result, "result") }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = arg::c_opt_string(get(&r.inner).as_deref());
        Ok(())
    })
}

/// Writes the do-not-call scrub to `*out`: `"SUPPRESS"` (on a list: do not call),
/// `"NO_MATCH"` (on no list; not a consent grant) or `"UNKNOWN"` (no answer: failed open, or
/// the service could not tell). More values may come. A copy: free it with `nol_string_free`.
/// Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_precall_result_dnc(
    result: *const nol_precall_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { precall_string(result, out, |p| Some(p.dnc.as_str().to_string())) }
}

/// Writes the receipt id (evidence of the check, to retrieve later) to `*out`, or NULL when
/// there is none (failed open). A copy: free it with `nol_string_free`. Never blocks;
/// thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_precall_result_receipt_id(
    result: *const nol_precall_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { precall_string(result, out, |p| p.receipt_id.clone()) }
}

/// Writes the service's compliance signal as compact JSON text to `*out`, or NULL when there is
/// none. A copy: free it with `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_precall_result_compliance_signal_json(
    result: *const nol_precall_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe {
        precall_string(result, out, |p| {
            p.compliance_signal.as_ref().map(|v| v.to_string())
        })
    }
}

/// Writes why the check went without an answer to `*out` (the same names as
/// `nol_result_fail_open_reason`: `"timeout"`, `"connect"`, `"invalid_number"`, ...), or NULL
/// when it did not fail open. A copy: free it with `nol_string_free`. Never blocks;
/// thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_precall_result_fail_open_reason(
    result: *const nol_precall_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe {
        precall_string(result, out, |p| {
            p.fail_open.as_ref().map(|r| r.as_str().to_string())
        })
    }
}

/// Enrols one of your own numbers (for call-provenance edges) and writes the answer to `*out`
/// (free it with `nol_enroll_result_free`).
///
/// Fails open: whatever the network or the service does, this returns `NOL_STATUS_OK` and a
/// result that is not enrolled, with the reason (`nol_enroll_result_fail_open_reason`).
///
/// BLOCKS the calling thread for at most the client's budget (`nol_config_set_budget_ms`),
/// counted from this call. Thread-safe; safe in a forked child (see `nol_client`).
///
/// `NOL_STATUS_NULL_ARGUMENT` (client, number or out is NULL) is a programming error;
/// `NOL_STATUS_PANIC` a bug. On either `*out` is left unchanged.
#[no_mangle]
pub unsafe extern "C" fn nol_enroll(
    client: *const nol_client,
    number: *const c_char,
    out: *mut *mut nol_enroll_result,
) -> nol_status {
    boundary(|| {
        let client = unsafe { arg::reference(client, "client") }?;
        let number = unsafe { self::number(number, "number") }?;
        let out = unsafe { arg::out(out, "out") }?;
        let inner = client.enroll(number);
        *out = Box::into_raw(Box::new(nol_enroll_result { inner }));
        Ok(())
    })
}

/// Frees an enrolment result. NULL is fine. Never blocks; call it once per result. Thread-safe
/// for distinct results; no other call may be using this one.
#[no_mangle]
pub unsafe extern "C" fn nol_enroll_result_free(result: *mut nol_enroll_result) {
    boundary_void(|| {
        if !result.is_null() {
            // SAFETY: made by `nol_enroll` and not freed before (header contract).
            drop(unsafe { Box::from_raw(result) });
        }
    })
}

/// Writes whether the service enrolled the number to `*out` (false when it failed open).
/// Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_enroll_result_enrolled(
    result: *const nol_enroll_result,
    out: *mut bool,
) -> nol_status {
    boundary(|| {
        let r = unsafe { arg::reference(result, "result") }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = r.inner.enrolled;
        Ok(())
    })
}

unsafe fn enroll_string(
    result: *const nol_enroll_result,
    out: *mut *mut c_char,
    get: impl FnOnce(&Enrollment) -> Option<String>,
) -> nol_status {
    boundary(|| {
        let r = unsafe { arg::reference(result, "result") }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = arg::c_opt_string(get(&r.inner).as_deref());
        Ok(())
    })
}

/// Writes the number in E.164 as enrolled (or as it was to be enrolled, when it failed open) to
/// `*out`, or NULL when it was not a possible number. A copy: free it with `nol_string_free`.
/// Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_enroll_result_number(
    result: *const nol_enroll_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { enroll_string(result, out, |e| e.number.clone()) }
}

/// Writes why the enrolment went without an answer to `*out` (the same names as
/// `nol_result_fail_open_reason`), or NULL when it did not fail open. A copy: free it with
/// `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_enroll_result_fail_open_reason(
    result: *const nol_enroll_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe {
        enroll_string(result, out, |e| {
            e.fail_open.as_ref().map(|r| r.as_str().to_string())
        })
    }
}
