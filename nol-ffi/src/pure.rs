//! Functions without a client: number normalization, STIR/SHAKEN parsing, signature
//! verification, header stripping. None of them blocks or touches the network.

use std::ffi::c_char;

use nol_core::render::strip_nol_headers;
use nol_core::signature;
use nol_core::{Attestation, Caller, Stir, TrustedKeys, Verstat, E164};

use crate::arg;
use crate::error::{boundary, nol_status, Fail};

/// A STIR/SHAKEN verification status (RFC 8224 `verstat`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nol_verstat {
    /// Absent or unreadable.
    Unknown = 0,
    /// `TN-Validation-Passed` (and carrier variants such as `TN-Validation-Passed-A`).
    Passed = 1,
    /// `TN-Validation-Failed`: a possibly spoofed origin.
    Failed = 2,
    /// `No-TN-Validation`.
    NoValidation = 3,
}

/// A SHAKEN attestation level.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nol_attestation {
    /// Absent or unreadable.
    Unknown = 0,
    A = 1,
    B = 2,
    C = 3,
}

fn verstat_out(v: Verstat) -> nol_verstat {
    match v {
        Verstat::Passed => nol_verstat::Passed,
        Verstat::Failed => nol_verstat::Failed,
        Verstat::NoValidation => nol_verstat::NoValidation,
        Verstat::Unknown => nol_verstat::Unknown,
    }
}

fn attestation_out(a: Attestation) -> nol_attestation {
    match a {
        Attestation::A => nol_attestation::A,
        Attestation::B => nol_attestation::B,
        Attestation::C => nol_attestation::C,
        Attestation::Unknown => nol_attestation::Unknown,
    }
}

/// libnol's version (`"0.1.0"`), the same as `NOL_VERSION`. Static: never free it. Never
/// blocks; thread-safe.
#[no_mangle]
pub extern "C" fn nol_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Frees a string that libnol handed out through a `char **` output. This is the one way to
/// free every such string (not `free()`: libnol's allocator is its own). NULL is fine. Never
/// pass a string libnol returned as `const char *` (`nol_version`, `nol_status_str`,
/// `nol_last_error`): those are libnol's. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_string_free(string: *mut c_char) {
    crate::error::boundary_void(|| {
        if !string.is_null() {
            // SAFETY: made by `CString::into_raw` in `arg::c_string` (header contract).
            drop(unsafe { std::ffi::CString::from_raw(string) });
        }
    })
}

/// Normalizes a calling number as a switch has it (E.164, national form, a `tel:` or `sip:`
/// URI, a whole From / P-Asserted-Identity header value) to E.164 and writes it to `*out`
/// (free it with `nol_string_free`). `default_country` (ISO 3166, e.g. `"US"`) reads
/// national-form numbers; NULL accepts only international forms. Follows libphonenumber.
///
/// `NOL_STATUS_INVALID_NUMBER` when it is not a possible number (`nol_last_error` says why:
/// too short, invalid country code, ...), `NOL_STATUS_ANONYMOUS` when the caller withheld it
/// (`anonymous`, `restricted`, an empty user part), `NOL_STATUS_UNKNOWN_COUNTRY` for an unknown
/// `default_country`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_normalize(
    input: *const c_char,
    default_country: *const c_char,
    out: *mut *mut c_char,
) -> nol_status {
    boundary(|| {
        let input = unsafe { arg::string(input, "input") }?;
        let country = unsafe { arg::opt_string(default_country, "default_country") }?;
        let out = unsafe { arg::out(out, "out") }?;
        match E164::parse(input, country)? {
            Caller::Number(n) => {
                *out = arg::c_string(n.as_str());
                Ok(())
            }
            Caller::Anonymous => Err(Fail::new(
                nol_status::Anonymous,
                "the caller withheld the number",
            )),
        }
    })
}

/// Reads a verstat from a bare token (`TN-Validation-Passed`), a `verstat=` parameter, or a
/// whole From / P-Asserted-Identity header value, and writes it to `*verstat`. Carrier variants
/// that append the attestation (`TN-Validation-Passed-A`) also give the level in
/// `*attestation` (otherwise `NOL_ATTESTATION_UNKNOWN`). What cannot be read is
/// `NOL_VERSTAT_UNKNOWN`, not an error. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_parse_verstat(
    value: *const c_char,
    verstat: *mut nol_verstat,
    attestation: *mut nol_attestation,
) -> nol_status {
    boundary(|| {
        let value = unsafe { arg::string(value, "value") }?;
        let verstat = unsafe { arg::out(verstat, "verstat") }?;
        let attestation = unsafe { arg::out(attestation, "attestation") }?;
        let stir = Stir::parse_verstat(value);
        *verstat = verstat_out(stir.verstat);
        *attestation = attestation_out(stir.attestation);
        Ok(())
    })
}

/// Reads an attestation level from `A`, `B` or `C`, or from the `attest` claim of a SHAKEN
/// PASSporT given as an `Identity` header value (decoded, not verified: that is the STIR/SHAKEN
/// verifier's job), and writes it to `*out`. What cannot be read is `NOL_ATTESTATION_UNKNOWN`,
/// not an error. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_parse_attestation(
    value: *const c_char,
    out: *mut nol_attestation,
) -> nol_status {
    boundary(|| {
        let value = unsafe { arg::string(value, "value") }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = attestation_out(Attestation::parse(value));
        Ok(())
    })
}

/// Verifies a response body (`len` bytes at `body`, need not be NUL-terminated) against the
/// trusted public key(s) in `public_key_pem`: `response_signature` must be `ed25519:<base64>`
/// over the body's canonical bytes, made by one of the keys.
///
/// `NOL_STATUS_OK` when it verifies; `NOL_STATUS_BODY_UNPARSEABLE`,
/// `NOL_STATUS_BODY_DUPLICATE_KEY`, `NOL_STATUS_SIGNATURE_MISSING`,
/// `NOL_STATUS_SIGNATURE_MALFORMED`, `NOL_STATUS_SIGNATURE_WRONG_PREFIX` or
/// `NOL_STATUS_SIGNATURE_MISMATCH` when it does not; `NOL_STATUS_INVALID_PUBLIC_KEY` for a bad
/// PEM. `body` may be NULL only when `len` is 0. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_verify_response(
    body: *const u8,
    len: usize,
    public_key_pem: *const c_char,
) -> nol_status {
    boundary(|| {
        let body: &[u8] = if len == 0 {
            &[]
        } else if body.is_null() {
            return Err(arg::null("body"));
        } else {
            // SAFETY: non-NULL and, by the header contract, `len` readable bytes.
            unsafe { std::slice::from_raw_parts(body, len) }
        };
        let pem = unsafe { arg::string(public_key_pem, "public_key_pem") }?;
        let keys = TrustedKeys::from_pem(pem)?;
        signature::verify(body, &keys)?;
        Ok(())
    })
}

/// Removes every `X-NumbersOnline-*` header (and its folded continuation lines) from a SIP
/// message's header block (lines ending in `\r\n` or `\n`) and writes the rest to `*out` (free
/// it with `nol_string_free`). Do this at the edge of the trusted network before adding
/// libnol's own: anyone upstream can forge them. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_strip_headers(
    headers: *const c_char,
    out: *mut *mut c_char,
) -> nol_status {
    boundary(|| {
        let headers = unsafe { arg::string(headers, "headers") }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = arg::c_string(&strip_nol_headers(headers));
        Ok(())
    })
}
