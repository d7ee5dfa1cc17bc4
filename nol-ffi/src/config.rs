//! `nol_config`: what a client is made from, set option by option (libcurl's habit), so that
//! options can be added without breaking the ABI.

use std::ffi::c_char;
use std::time::Duration;

use nol_core::{ApiKey, ClientConfig, RiskTag, TrustedKeys, E164};

use crate::arg;
use crate::error::{boundary, boundary_void, nol_status, Fail};

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
/// 10000 cached answers, 32 requests in flight at most, no risk wording, no blocking, 64-byte
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

/// The API key (required, here or in `NUMBERS_ONLINE_API_KEY`). Copied. libnol never prints
/// it, nor puts it in any error message.
///
/// `NOL_STATUS_MISSING_API_KEY` if it is blank, `NOL_STATUS_INVALID_API_KEY` if it has
/// whitespace or control characters inside.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_api_key(
    config: *mut nol_config,
    api_key: *const c_char,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        let key = unsafe { arg::string(api_key, "api_key") }?;
        config.inner.api_key = Some(ApiKey::new(key)?);
        Ok(())
    })
}

/// The service's base URL: `https://host[:port]`, or `http://` to a loopback address only
/// (the sandbox). Checked when the client is made.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_base_url(
    config: *mut nol_config,
    base_url: *const c_char,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        let url = unsafe { arg::string(base_url, "base_url") }?;
        config.inner.base_url = url.to_string();
        Ok(())
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
        let config = unsafe { config_mut(config) }?;
        let pem = unsafe { arg::string(pem, "pem") }?;
        config.inner.public_keys = TrustedKeys::from_pem(pem)?;
        Ok(())
    })
}

/// The whole time one lookup may take, in milliseconds, counted from the call to
/// `nol_lookup` (default 400; Kamailio's call path wants well under 500). Must be 1..=60000.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_budget_ms(
    config: *mut nol_config,
    budget_ms: u32,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        if !(1..=60_000).contains(&budget_ms) {
            return Err(Fail::new(
                nol_status::InvalidArgument,
                format!("budget_ms {budget_ms} is not within 1..=60000"),
            ));
        }
        config.inner.budget = Duration::from_millis(budget_ms.into());
        Ok(())
    })
}

/// How many answers to cache (each for its `ttl_seconds`); 0 turns the cache off.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_cache_size(
    config: *mut nol_config,
    entries: u64,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        config.inner.cache_size = entries;
        Ok(())
    })
}

/// The most requests in flight at once (worker threads, connections); 1..=1024, default 32.
/// A lookup that finds every worker busy fails open at once with reason `busy`.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_max_in_flight(
    config: *mut nol_config,
    max_in_flight: u32,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        if !(1..=1024).contains(&max_in_flight) {
            return Err(Fail::new(
                nol_status::InvalidArgument,
                format!("max_in_flight {max_in_flight} is not within 1..=1024"),
            ));
        }
        config.inner.max_in_flight = max_in_flight as usize;
        Ok(())
    })
}

/// The country (ISO 3166, e.g. `"US"`) that national-form calling numbers are read in; NULL
/// accepts only international forms (the default).
///
/// `NOL_STATUS_UNKNOWN_COUNTRY` if libnol does not know the country.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_default_country(
    config: *mut nol_config,
    country: *const c_char,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        let country = unsafe { arg::opt_string(country, "country") }?;
        if let Some(c) = country {
            if let Err(e @ nol_core::E164Error::UnknownRegion(_)) =
                E164::parse("+14155551212", Some(c))
            {
                return Err(e.into());
            }
        }
        config.inner.default_country = country.map(str::to_string);
        Ok(())
    })
}

/// Opt-in risk wording: `text` is put before the caller name when the risk score is strictly
/// above `threshold` (0..=100). NULL `text` turns the wording off (the default).
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_risk_tag(
    config: *mut nol_config,
    text: *const c_char,
    threshold: u32,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        let text = unsafe { arg::opt_string(text, "text") }?;
        let Some(text) = text else {
            config.inner.policy.risk_tag = None;
            return Ok(());
        };
        let threshold = u8::try_from(threshold)
            .ok()
            .filter(|t| *t <= 100)
            .ok_or_else(|| {
                Fail::new(
                    nol_status::InvalidArgument,
                    format!("threshold {threshold} is not within 0..=100"),
                )
            })?;
        if text.trim().is_empty() {
            return Err(Fail::new(nol_status::InvalidArgument, "text is empty"));
        }
        config.inner.policy.risk_tag = Some(RiskTag {
            text: text.to_string(),
            threshold,
        });
        Ok(())
    })
}

/// Opt-in blocking: answer `block_candidate` with a SIP 603. Off by default: without it no
/// answer ever declines a call.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_block(config: *mut nol_config, block: bool) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        config.inner.policy.block = block;
        Ok(())
    })
}

/// Where to redirect elevated-risk calls with a SIP 302 (a SIP URI such as
/// `"sip:screening@pbx.example"`); NULL (the default) lets them route on.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_screening_contact(
    config: *mut nol_config,
    contact: *const c_char,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        let contact = unsafe { arg::opt_string(contact, "contact") }?;
        if contact.is_some_and(|c| c.trim().is_empty()) {
            return Err(Fail::new(nol_status::InvalidArgument, "contact is empty"));
        }
        config.inner.policy.screening_contact = contact.map(|c| c.trim().to_string());
        Ok(())
    })
}

/// The longest caller name to show, in bytes of its SIP quoted-string form; 1..=1024,
/// default 64.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_max_name_len(
    config: *mut nol_config,
    max_name_len: u32,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        if !(1..=1024).contains(&max_name_len) {
            return Err(Fail::new(
                nol_status::InvalidArgument,
                format!("max_name_len {max_name_len} is not within 1..=1024"),
            ));
        }
        config.inner.policy.max_name_len = max_name_len as usize;
        Ok(())
    })
}

/// The SIP reply that tells the SBC to advance to its next route: 503 (the default) or 404.
///
/// Never blocks. Not thread-safe for the same `config`. `NOL_STATUS_NULL_ARGUMENT` if `config`
/// (or a required string) is NULL; the configuration is unchanged on any failure.
#[no_mangle]
pub unsafe extern "C" fn nol_config_set_route_advance_code(
    config: *mut nol_config,
    code: u32,
) -> nol_status {
    boundary(|| {
        let config = unsafe { config_mut(config) }?;
        if code != 503 && code != 404 {
            return Err(Fail::new(
                nol_status::InvalidArgument,
                format!("route advance code {code} is neither 503 nor 404"),
            ));
        }
        config.inner.policy.route_advance_code = code as u16;
        Ok(())
    })
}
