//! `nol_config`: what a client is made from, set option by option (libcurl's habit), so that
//! options can be added without breaking the ABI.

use std::ffi::c_char;

use nol_core::ClientConfig;

use crate::arg;
use crate::error::{boundary, boundary_void, nol_status, Fail, FfiResult};

/// The configuration a client is made from (a Rust `ClientConfig`). Made by `nol_config_new`,
/// freed by `nol_config_free`; `nol_client_new` copies it, so it may be freed or reused right
/// after.
///
/// Not thread-safe: set options from one thread at a time (reading it in `nol_client_new` from
/// several threads at once is fine).
///
/// Whatever is left unset is read from the environment when the client is made:
/// `NUMBERS_ONLINE_API_KEY` (the API key), `NOL_BASE_URL` (the service),
/// `NOL_PUBLIC_KEY` (the path of the trusted public key's PEM file).
pub struct nol_config {
    pub(crate) inner: ClientConfig,
}

/// Makes a configuration with the defaults: base URL `https://numbers.online`, a 400 ms budget,
/// 10000 cached answers, 32 requests in flight at most, no default country, the circuit breaker
/// on (5 failures, 5000 ms cool-down), no rate limit, no risk wording, no blocking, 64-byte
/// caller names, route advance with 503. Write it to `*out`; free it with `nol_config_free`.
///
/// Never blocks; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn nol_config_new(out: *mut *mut nol_config) -> nol_status {
    boundary(|| {
        let out = unsafe { arg::out(out, "out") }?;
        *out = Box::into_raw(Box::new(nol_config {
            inner: ClientConfig::default(),
        }));
        Ok(())
    })
}

/// Frees a configuration. NULL is fine (nothing happens). Never blocks. Thread-safe for distinct
/// configurations; no other call may be using this one.
#[no_mangle]
pub unsafe extern "C" fn nol_config_free(config: *mut nol_config) {
    boundary_void(|| {
        if !config.is_null() {
            // SAFETY: made by `nol_config_new` and not freed before (header contract).
            drop(unsafe { Box::from_raw(config) });
        }
    })
}

unsafe fn config_mut<'a>(config: *mut nol_config) -> Result<&'a mut nol_config, Fail> {
    unsafe { arg::out(config, "config") }
}

/// Applies one change through nol-core's setter, which holds the setting's one range and rule:
/// the configuration is unchanged when the setter refuses the value.
unsafe fn update(
    config: *mut nol_config,
    change: impl FnOnce(&mut ClientConfig) -> Result<(), nol_core::ConfigError>,
) -> FfiResult {
    let config = unsafe { config_mut(config) }?;
    let mut next = config.inner.clone();
    change(&mut next)?;
    config.inner = next;
    Ok(())
}

/// Sets one setting by its name from text, with the same checks as the typed setters: how a
/// host with a configuration file (Kamailio module parameters, Asterisk `nol.conf`) passes its
/// values through. The names: `api_key`, `base_url`, `public_key_pem`, `budget_ms`,
/// `cache_size`, `max_in_flight`, `default_country`, `circuit_breaker`, `breaker_failures`,
/// `breaker_cool_down_ms`, `rate_limit_per_minute`, `risk_tag`, `risk_threshold`, `block`,
/// `screening_contact`, `max_name_len`, `route_advance_code` (the README's settings table gives
/// each one's range and default). Numbers are decimal text; flags are `1`/`0`, `yes`/`no`,
/// `on`/`off` or `true`/`false`.
///
/// `value` may be NULL only for `default_country`, `risk_tag` and `screening_contact`: it
/// clears them. An empty value is never a way to clear a setting: it is refused.
///
/// `NOL_STATUS_UNKNOWN_SETTING` for a name that is not one of these;
/// `NOL_STATUS_INVALID_ARGUMENT` for a number outside the setting's range or a value it does
/// not take; otherwise the status the typed setter gives (`NOL_STATUS_INVALID_API_KEY`,
/// `NOL_STATUS_INVALID_BASE_URL`, `NOL_STATUS_UNKNOWN_COUNTRY`, ...). `nol_last_error` names
/// the setting and its range (never the API key).
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// or `name` (or a `value` that may not be NULL) is NULL; the configuration is unchanged on any
/// failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set(
    config: *mut nol_config,
    name: *const c_char,
    value: *const c_char,
) -> nol_status {
    boundary(|| {
        let name = unsafe { arg::string(name, "name") }?;
        let value = unsafe { arg::opt_string(value, "value") }?;
        let clearable = matches!(name, "default_country" | "risk_tag" | "screening_contact");
        if value.is_none() && !clearable {
            if nol_core::settings::setting(name).is_none() {
                return Err(
                    nol_core::ConfigError::UnknownSetting(name.chars().take(64).collect()).into(),
                );
            }
            return Err(arg::null("value"));
        }
        unsafe {
            update(config, |c| match (name, value) {
                (_, Some(v)) => c.set(name, v),
                ("default_country", None) => c.set_default_country(None),
                ("risk_tag", None) => c.policy.set_risk_tag(None),
                (_, None) => c.policy.set_screening_contact(None),
            })
        }
    })
}

/// The API key (required, here or in `NUMBERS_ONLINE_API_KEY`). Copied. libnol never prints
/// it, nor puts it in any error message.
///
/// `NOL_STATUS_MISSING_API_KEY` if it is blank, `NOL_STATUS_INVALID_API_KEY` if it is not
/// visible ASCII (whitespace, control characters or any non-ASCII character inside: it must
/// survive an HTTP header).
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_api_key(
    config: *mut nol_config,
    api_key: *const c_char,
) -> nol_status {
    boundary(|| {
        let key = unsafe { arg::string(api_key, "api_key") }?;
        unsafe { update(config, |c| c.set_api_key(key)) }
    })
}

/// The service's base URL: `https://host[:port]`, or `http://` to a loopback address only
/// (the sandbox); no path, credentials, query or fragment. Checked at once:
/// `NOL_STATUS_INVALID_BASE_URL` (the message never repeats the URL).
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_base_url(
    config: *mut nol_config,
    base_url: *const c_char,
) -> nol_status {
    boundary(|| {
        let url = unsafe { arg::string(base_url, "base_url") }?;
        unsafe { update(config, |c| c.set_base_url(url)) }
    })
}

/// The service's public key(s) to trust, as PEM text: every `-----BEGIN PUBLIC KEY-----` block
/// (Ed25519) is trusted, so a key rotation needs no flag day. Replaces earlier keys.
///
/// `NOL_STATUS_INVALID_PUBLIC_KEY` if there is no block, or a block is not an Ed25519 key.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_public_key_pem(
    config: *mut nol_config,
    pem: *const c_char,
) -> nol_status {
    boundary(|| {
        let pem = unsafe { arg::string(pem, "pem") }?;
        unsafe { update(config, |c| c.set_public_key_pem(pem)) }
    })
}

/// The whole time one lookup (or `nol_precall`, `nol_enroll`) may take, in milliseconds,
/// counted from the call (default 400; Kamailio's call path wants well under 500). Setting
/// `budget_ms`: `NOL_STATUS_INVALID_ARGUMENT` outside its range (the README's settings table).
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_budget_ms(
    config: *mut nol_config,
    budget_ms: u32,
) -> nol_status {
    boundary(|| unsafe { update(config, |c| c.set_budget_ms(budget_ms.into())) })
}

/// How many verified answers to cache (each for its `ttl_seconds`, at most 600 s); 0 turns the
/// cache off (default 10000). The cache key is the calling number, the context and the call's
/// STIR/SHAKEN values (verstat and attestation): the same number with another attestation is
/// asked again. Setting `cache_size`: `NOL_STATUS_INVALID_ARGUMENT` outside its range.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_cache_size(
    config: *mut nol_config,
    entries: u64,
) -> nol_status {
    boundary(|| unsafe { update(config, |c| c.set_cache_size(entries)) })
}

/// The most requests in flight at once (worker threads, connections); default 32. A lookup
/// that finds every worker busy fails open at once with reason `busy`. Setting
/// `max_in_flight`: `NOL_STATUS_INVALID_ARGUMENT` outside its range.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_max_in_flight(
    config: *mut nol_config,
    max_in_flight: u32,
) -> nol_status {
    boundary(|| unsafe { update(config, |c| c.set_max_in_flight(max_in_flight.into())) })
}

/// The country (ISO 3166 alpha-2, e.g. `"US"`) that national-form calling numbers are read in;
/// NULL clears it: only international forms are accepted (the default). An empty string `""`
/// is refused (it does not clear the setting).
///
/// `NOL_STATUS_UNKNOWN_COUNTRY` if libnol does not know the country, or it is `""`.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_default_country(
    config: *mut nol_config,
    country: *const c_char,
) -> nol_status {
    boundary(|| {
        let country = unsafe { arg::opt_string(country, "country") }?;
        unsafe { update(config, |c| c.set_default_country(country)) }
    })
}

/// Turns the circuit breaker on (the default) or off: after `breaker_failures` failures in a
/// row, lookups fail open at once (reason `circuit_open`) for `breaker_cool_down_ms`, then one
/// probe goes out.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_circuit_breaker(
    config: *mut nol_config,
    on: bool,
) -> nol_status {
    boundary(|| unsafe {
        update(config, |c| {
            c.set_circuit_breaker(on);
            Ok(())
        })
    })
}

/// Failures in a row that open the circuit breaker (default 5); turns the breaker on. Setting
/// `breaker_failures`: `NOL_STATUS_INVALID_ARGUMENT` outside its range.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_breaker_failures(
    config: *mut nol_config,
    failures: u32,
) -> nol_status {
    boundary(|| unsafe { update(config, |c| c.set_breaker_failures(failures.into())) })
}

/// How long an open circuit breaker fails open before one probe goes out, in milliseconds
/// (default 5000); turns the breaker on. Setting `breaker_cool_down_ms`:
/// `NOL_STATUS_INVALID_ARGUMENT` outside its range.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_breaker_cool_down_ms(
    config: *mut nol_config,
    cool_down_ms: u32,
) -> nol_status {
    boundary(|| unsafe { update(config, |c| c.set_breaker_cool_down_ms(cool_down_ms.into())) })
}

/// A client-side limit on lookups per minute (60 on the free tier); 0 (the default) for none.
/// A lookup past the limit fails open at once (reason `rate_limited`). Setting
/// `rate_limit_per_minute`: `NOL_STATUS_INVALID_ARGUMENT` outside its range.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_rate_limit_per_minute(
    config: *mut nol_config,
    per_minute: u32,
) -> nol_status {
    boundary(|| unsafe { update(config, |c| c.set_rate_limit_per_minute(per_minute.into())) })
}

/// Opt-in risk wording: `text` is put before the caller name when the risk score is strictly
/// above `threshold` (setting `risk_threshold`, default 70). NULL `text` turns the wording off
/// (the default; `threshold` is then ignored). `NOL_STATUS_INVALID_ARGUMENT` if `text` is
/// empty, too long or has control characters, or `threshold` is outside its range.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_risk_tag(
    config: *mut nol_config,
    text: *const c_char,
    threshold: u32,
) -> nol_status {
    boundary(|| {
        let text = unsafe { arg::opt_string(text, "text") }?;
        unsafe {
            update(config, |c| {
                if text.is_some() {
                    c.policy.set_risk_threshold(threshold.into())?;
                }
                c.policy.set_risk_tag(text)
            })
        }
    })
}

/// Opt-in blocking: answer `block_candidate` with a SIP 603. Off by default: without it no
/// answer ever declines a call.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_block(config: *mut nol_config, block: bool) -> nol_status {
    boundary(|| unsafe {
        update(config, |c| {
            c.policy.set_block(block);
            Ok(())
        })
    })
}

/// Where to redirect elevated-risk calls with a SIP 302: a `sip:`, `sips:` or `tel:` URI such
/// as `"sip:screening@pbx.example"`; NULL (the default) lets them route on. An empty string
/// `""` is refused (`NOL_STATUS_INVALID_ARGUMENT`), as is a URI with spaces, quotes or angle
/// brackets.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_screening_contact(
    config: *mut nol_config,
    contact: *const c_char,
) -> nol_status {
    boundary(|| {
        let contact = unsafe { arg::opt_string(contact, "contact") }?;
        unsafe { update(config, |c| c.policy.set_screening_contact(contact)) }
    })
}

/// The longest caller name to show, in bytes of its SIP quoted-string form; default 64.
/// Setting `max_name_len`: `NOL_STATUS_INVALID_ARGUMENT` outside its range.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_max_name_len(
    config: *mut nol_config,
    max_name_len: u32,
) -> nol_status {
    boundary(|| unsafe { update(config, |c| c.policy.set_max_name_len(max_name_len.into())) })
}

/// The SIP reply that tells the SBC to advance to its next route: 503 (the default) or 404.
/// Setting `route_advance_code`: `NOL_STATUS_INVALID_ARGUMENT` for any other code.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_route_advance_code(
    config: *mut nol_config,
    code: u32,
) -> nol_status {
    boundary(|| unsafe { update(config, |c| c.policy.set_route_advance_code(code.into())) })
}
