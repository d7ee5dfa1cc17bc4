//! `nol_core::e164`: E.164 normalization of a calling number.

use napi_derive::napi;
use nol_core::{Caller, E164};

use crate::error::{self, Result};

/// Normalizes a calling number as a switch or an agent platform hands it over (E.164, a
/// national number with `country`, a `tel:` or `sip:` URI, a From header value) to E.164.
///
/// Returns `null` when the caller withheld the number (`anonymous`, `restricted`, ...).
/// Throws `ERR_NOL_INVALID_NUMBER` when the input is not a possible number and
/// `ERR_NOL_INVALID_COUNTRY` for an unknown country. Synchronous: microseconds.
#[napi(catch_unwind)]
pub fn normalize(number: String, country: Option<String>) -> Result<Option<String>> {
    match E164::parse(&number, country.as_deref()).map_err(error::from_e164)? {
        Caller::Number(n) => Ok(Some(n.to_string())),
        Caller::Anonymous => Ok(None),
    }
}
