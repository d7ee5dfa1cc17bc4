//! `nol_result`: a lookup's decision, read through accessors.

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

use nol_core::{Decision, Outcome, RecommendedAction};

use crate::arg;
use crate::error::{boundary, boundary_void, nol_status, Fail, FfiResult};

/// A lookup's decision (a Rust `nol_core::Decision`). Made by `nol_lookup`, freed by
/// `nol_result_free`. Immutable: read it from any thread, at once if you like; free it once.
/// It does not refer to its client: it may outlive it.
///
/// Every accessor writes its output only on success; a string output (`char **`) is a copy that
/// belongs to the caller, to free with `nol_string_free`, or NULL where the accessor says so.
/// The one exception is `nol_result_json` (a `const char **` output): a view borrowed from the
/// result, valid until `nol_result_free`, never to be freed by the caller.
pub struct nol_result {
    pub(crate) decision: Decision,
    /// The JSON view, made on the first `nol_result_json` and kept until the result is freed.
    json: OnceLock<CString>,
    /// The header block, made on the first `nol_result_header_block`.
    header_block: OnceLock<CString>,
}

impl nol_result {
    pub(crate) fn new(decision: Decision) -> nol_result {
        nol_result {
            decision,
            json: OnceLock::new(),
            header_block: OnceLock::new(),
        }
    }
}

/// The recommended action of a decision.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nol_action {
    /// No answer (failed open) or no record: the switch's local default; imply nothing.
    AllowWithDefaultPolicy = 0,
    /// Verified and low risk: ring normally, show the verified name.
    Allow = 1,
    /// Show the identity or risk; don't interrupt.
    Label = 2,
    /// Elevated risk: IVR challenge, voicemail or a queue (a 302 to the screening Contact).
    ChallengeOrRoute = 3,
    /// Very high risk: a 603 only if the operator opted in (`nol_config_set_block`).
    BlockCandidate = 4,
    /// An action this version of libnol does not know: `nol_result_action_name` has it.
    Other = 5,
}

/// How a decision was reached.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nol_outcome {
    /// From a response signed by a trusted key, fetched for this call.
    Verified = 0,
    /// From a verified response fetched earlier and cached (within its `ttl_seconds`).
    Cached = 1,
    /// Without an answer: `allow_with_default_policy`; `nol_result_fail_open_reason` says why.
    FailOpen = 2,
}

unsafe fn result<'a>(ptr: *const nol_result) -> FfiResult<&'a Decision> {
    unsafe { arg::reference(ptr, "result") }.map(|r| &r.decision)
}

/// Reads a string out of a decision into `*out` (NULL where the value is absent).
unsafe fn string_out(
    r: *const nol_result,
    out: *mut *mut c_char,
    get: impl FnOnce(&Decision) -> Option<String>,
) -> nol_status {
    boundary(|| {
        let d = unsafe { result(r) }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = arg::c_opt_string(get(d).as_deref());
        Ok(())
    })
}

/// Frees a result. NULL is fine. Never blocks; call it once per result. Thread-safe for distinct
/// results (any thread may free a result another made); no other call may be using this one.
#[no_mangle]
pub unsafe extern "C" fn nol_result_free(result: *mut nol_result) {
    boundary_void(|| {
        if !result.is_null() {
            // SAFETY: made by `nol_lookup` and not freed before (header contract).
            drop(unsafe { Box::from_raw(result) });
        }
    })
}

/// Writes the recommended action to `*out`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_action(
    result: *const nol_result,
    out: *mut nol_action,
) -> nol_status {
    boundary(|| {
        let d = unsafe { self::result(result) }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = match d.action {
            RecommendedAction::AllowWithDefaultPolicy => nol_action::AllowWithDefaultPolicy,
            RecommendedAction::Allow => nol_action::Allow,
            RecommendedAction::Label => nol_action::Label,
            RecommendedAction::ChallengeOrRoute => nol_action::ChallengeOrRoute,
            RecommendedAction::BlockCandidate => nol_action::BlockCandidate,
            RecommendedAction::Other(_) => nol_action::Other,
        };
        Ok(())
    })
}

/// Writes the recommended action's name (`"allow"`, `"allow_with_default_policy"`, ...; an
/// unknown action as the service wrote it, made safe) to `*out`: free it with
/// `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_action_name(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe {
        string_out(result, out, |d| {
            d.agi_variables()
                .into_iter()
                .find(|(k, _)| *k == "NOL_ACTION")
                .map(|(_, v)| v)
        })
    }
}

/// Writes the caller name to show (plain UTF-8 without control characters, cut to the
/// configured length) to `*out`, or NULL when there is none: then show the raw number. Nothing
/// is invented: only a verified hit, a risk tag the operator opted in to, or the switch's own
/// `local_contact` gives a name. Free it with `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_caller_name(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { string_out(result, out, |d| d.caller_name.clone()) }
}

/// Writes the caller name escaped for the inside of a SIP quoted-string display name (`"` and
/// `\` escaped) to `*out`, or NULL when there is none. Free it with `nol_string_free`. Never
/// blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_sip_display_name(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { string_out(result, out, |d| d.sip_display_name()) }
}

/// Writes the calling number in E.164 (`"+14155551212"`) to `*out`, or NULL when it was not a
/// possible number or withheld. Free it with `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_number(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { string_out(result, out, |d| d.number.as_ref().map(|n| n.to_string())) }
}

/// Writes the risk score (0..=100, higher is worse) to `*out`, or -1 when there is none (no
/// record, or failed open). Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_risk_score(
    result: *const nol_result,
    out: *mut i32,
) -> nol_status {
    boundary(|| {
        let d = unsafe { self::result(result) }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = d.risk_score.map_or(-1, i32::from);
        Ok(())
    })
}

/// Writes the risk level (`"low"`, ...) to `*out`, or NULL when unknown. Free it with
/// `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_risk_level(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { string_out(result, out, |d| d.risk_level.clone()) }
}

/// Writes the identity type (`"verified_business"`, ...) to `*out`, or NULL when unknown. Free
/// it with `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_identity_type(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe {
        string_out(result, out, |d| {
            d.identity_type.as_ref().map(|t| {
                t.as_str()
                    .chars()
                    .map(|c| if c.is_control() { '_' } else { c })
                    .collect()
            })
        })
    }
}

/// Writes the receipt id (`"nol_rec_..."`, evidence that can be retrieved later) to `*out`, or
/// NULL when there is none. Free it with `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_receipt_id(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { string_out(result, out, |d| d.receipt_id.clone()) }
}

/// Writes the SIP reply code a redirect server sends (302 to the screening Contact, 603 only
/// with `nol_config_set_block`, otherwise the route-advance code, 503 or 404) to `*out`. Never
/// blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_sip_code(
    result: *const nol_result,
    out: *mut u16,
) -> nol_status {
    boundary(|| {
        let d = unsafe { self::result(result) }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = d.sip.code;
        Ok(())
    })
}

/// Writes the SIP reason phrase (`"Moved Temporarily"`, ...) to `*out`. Free it with
/// `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_sip_reason(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { string_out(result, out, |d| Some(d.sip.reason.to_string())) }
}

/// Writes the Contact of a 302 (the screening Contact) to `*out`, or NULL for any other code.
/// Free it with `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_sip_contact(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { string_out(result, out, |d| d.sip.contact.clone()) }
}

/// Writes how the decision was reached to `*out`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_outcome(
    result: *const nol_result,
    out: *mut nol_outcome,
) -> nol_status {
    boundary(|| {
        let d = unsafe { self::result(result) }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = match d.outcome {
            Outcome::Verified => nol_outcome::Verified,
            Outcome::Cached { .. } => nol_outcome::Cached,
            Outcome::FailOpen(_) => nol_outcome::FailOpen,
        };
        Ok(())
    })
}

/// Writes why the call went on without an answer to `*out`, or NULL when it did not fail open.
/// One of `"timeout"`, `"connect"`, `"tls"`, `"http_status"`, `"rate_limited"`,
/// `"body_too_large"`, `"unparseable"`, `"unsigned"`, `"bad_signature"`, `"unusable"`,
/// `"circuit_open"`, `"busy"`, `"invalid_number"`, `"anonymous"`, `"not_configured"` (more
/// may come). Free it with `nol_string_free`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_fail_open_reason(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe {
        string_out(result, out, |d| {
            d.fail_open().map(|r| r.as_str().to_string())
        })
    }
}

/// Writes the HTTP status the service answered with when the reason is `"http_status"` to
/// `*out`, otherwise 0. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_fail_open_http_status(
    result: *const nol_result,
    out: *mut u16,
) -> nol_status {
    boundary(|| {
        let d = unsafe { self::result(result) }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = match d.fail_open() {
            Some(nol_core::FailOpen::HttpStatus(code)) => *code,
            _ => 0,
        };
        Ok(())
    })
}

/// Writes the age of a cached answer in milliseconds to `*out` (0 unless the outcome is
/// `NOL_OUTCOME_CACHED`). Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_cache_age_ms(
    result: *const nol_result,
    out: *mut u64,
) -> nol_status {
    boundary(|| {
        let d = unsafe { self::result(result) }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = match d.outcome {
            Outcome::Cached { age } => u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            _ => 0,
        };
        Ok(())
    })
}

/// Writes the one-line display (`Caller: Acme Support ✓   STIR/SHAKEN: A, verified
/// numbers.online: verified_business, risk=low`) to `*out`. Free it with `nol_string_free`.
/// Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_display_line(
    result: *const nol_result,
    out: *mut *mut c_char,
) -> nol_status {
    unsafe { string_out(result, out, |d| Some(d.display_line())) }
}

/// Writes one name/value pair of a list to `*name` and `*value`.
unsafe fn pair_out(
    r: *const nol_result,
    index: usize,
    name: *mut *mut c_char,
    value: *mut *mut c_char,
    list: impl FnOnce(&Decision) -> Vec<(&'static str, String)>,
) -> nol_status {
    boundary(|| {
        let d = unsafe { result(r) }?;
        let name = unsafe { arg::out(name, "name") }?;
        let value = unsafe { arg::out(value, "value") }?;
        let list = list(d);
        let (n, v) = list.get(index).ok_or_else(|| {
            Fail::new(
                nol_status::OutOfRange,
                format!("index {index} is past the last of {}", list.len()),
            )
        })?;
        *name = arg::c_string(n);
        *value = arg::c_string(v);
        Ok(())
    })
}

/// How many pairs `list` gives, written to `*out` (the `_count` twin of [`pair_out`]).
unsafe fn count_out(
    r: *const nol_result,
    out: *mut usize,
    list: impl FnOnce(&Decision) -> Vec<(&'static str, String)>,
) -> nol_status {
    boundary(|| {
        let d = unsafe { result(r) }?;
        let out = unsafe { arg::out(out, "out") }?;
        *out = list(d).len();
        Ok(())
    })
}

/// Writes how many Asterisk channel variables there are (always 4: `NOL_ACTION`, `NOL_RISK`,
/// `NOL_LABEL`, `NOL_RECEIPT`) to `*out`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_agi_count(
    result: *const nol_result,
    out: *mut usize,
) -> nol_status {
    unsafe { count_out(result, out, Decision::agi_variables) }
}

/// Writes the `index`th Asterisk channel variable's name and value (empty when unknown; never a
/// control character) to `*name` and `*value`: free both with `nol_string_free`. On a failing
/// lookup `NOL_ACTION` is `allow_with_default_policy`. `NOL_STATUS_OUT_OF_RANGE` past the
/// last. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_agi_variable(
    result: *const nol_result,
    index: usize,
    name: *mut *mut c_char,
    value: *mut *mut c_char,
) -> nol_status {
    unsafe { pair_out(result, index, name, value, Decision::agi_variables) }
}

/// Writes how many of the Asterisk module's channel variables there are (always 8: the four
/// of `nol_result_agi_variable`, then `NOL_VERIFIED`, `NOL_FAIL_OPEN`, `NOL_SIP_CODE`,
/// `NOL_SIP_CONTACT`) to `*out`. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_asterisk_variable_count(
    result: *const nol_result,
    out: *mut usize,
) -> nol_status {
    unsafe { count_out(result, out, Decision::asterisk_variables) }
}

/// Writes the `index`th of the Asterisk module's channel variables (see
/// `nol_result_asterisk_variable_count`; `NOL_VERIFIED` is `1` or `0`, `NOL_FAIL_OPEN` the
/// reason or empty, `NOL_SIP_CODE` the redirect server's code, `NOL_SIP_CONTACT` the 302's
/// Contact or empty; never a control character) to `*name` and `*value`: free both with
/// `nol_string_free`. `NOL_STATUS_OUT_OF_RANGE` past the last. Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_asterisk_variable(
    result: *const nol_result,
    index: usize,
    name: *mut *mut c_char,
    value: *mut *mut c_char,
) -> nol_status {
    unsafe { pair_out(result, index, name, value, Decision::asterisk_variables) }
}

/// Writes how many trusted-network headers there are (1 to 3) to `*out`. Never blocks;
/// thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_header_count(
    result: *const nol_result,
    out: *mut usize,
) -> nol_status {
    unsafe { count_out(result, out, Decision::headers) }
}

/// Writes the `index`th `X-NumbersOnline-*` header to add inside a trusted network
/// (`X-NumbersOnline-Action`, then `-Risk` and `-Receipt` when known) to `*name` and `*value`:
/// free both with `nol_string_free`. Strip every inbound `X-NumbersOnline-*` header at the edge
/// first: anyone upstream can forge them. `NOL_STATUS_OUT_OF_RANGE` past the last. Never
/// blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_header(
    result: *const nol_result,
    index: usize,
    name: *mut *mut c_char,
    value: *mut *mut c_char,
) -> nol_status {
    unsafe { pair_out(result, index, name, value, Decision::headers) }
}

/// Writes the `X-NumbersOnline-*` headers as one block to `*block`: `Name: value\r\n` for each
/// header `nol_result_header` lists, in that order, ready to append to a SIP message as it is.
/// Every name is an `X-NumbersOnline-` token and no value holds a CR, LF or other control
/// character. UTF-8, NUL-terminated; never empty (the action is always there).
///
/// BORROWED, like `nol_result_json`: valid, unchanged, until `nol_result_free(result)`; do not
/// free it. Calling this again gives the same pointer.
///
/// Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_result_header_block(
    result: *const nol_result,
    block: *mut *const c_char,
) -> nol_status {
    boundary(|| {
        let r = unsafe { arg::reference(result, "result") }?;
        let block = unsafe { arg::out(block, "block") }?;
        let text = r.header_block.get_or_init(|| {
            CString::new(r.decision.header_block().replace('\0', "")).unwrap_or_default()
        });
        *block = text.as_ptr();
        Ok(())
    })
}

/// Writes the decision as one JSON object to `*json`: the same compact text, with the same
/// stable keys, that every libnol binding and `nol lookup --json` give (`action`,
/// `caller_name`, `sip_display_name`, `risk_score`, `risk_level`, `identity_type`, `result`,
/// `receipt_id`, `number`, `verstat`, `attestation`, `verified`, `identity_verified`,
/// `from_cache`, `cache_age_ms`, `fail_open`, `http_status`, `sip_code`, `sip_reason`,
/// `sip_contact`, `ttl_seconds`, `headers`, `agi_variables`, `display_line`; new keys may be
/// added at the end; absent values are `null`). UTF-8, NUL-terminated.
///
/// BORROWED, unlike every other string accessor: the text belongs to the result and stays
/// valid, unchanged, until `nol_result_free(result)`. Do not free it, and do not read it after
/// freeing the result; copy it if it must outlive the result. Calling this again gives the same
/// pointer.
///
/// Never blocks; thread-safe (several threads may ask at once: the text is made once).
#[no_mangle]
pub unsafe extern "C" fn nol_result_json(
    result: *const nol_result,
    json: *mut *const c_char,
) -> nol_status {
    boundary(|| {
        let r = unsafe { arg::reference(result, "result") }?;
        let json = unsafe { arg::out(json, "json") }?;
        let text = r.json.get_or_init(|| {
            let text = r.decision.to_json();
            CString::new(text.replace('\0', "")).unwrap_or_default()
        });
        *json = text.as_ptr();
        Ok(())
    })
}
