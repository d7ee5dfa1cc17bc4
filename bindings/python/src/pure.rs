//! The pure functions: nol-core's `e164`, `stir` and `signature` modules, converted.

use std::sync::Mutex;

use nol_core::signature;
use nol_core::{Caller, Stir as CoreStir, TrustedKeys as CoreKeys, E164};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::arg;
use crate::error::{Kind, ToPyResult};
use crate::types::Stir;

/// Normalizes a calling number to E.164 (`+` and digits).
///
/// Accepts what a switch has: E.164, national form (with `country`, an ISO 3166 code such as
/// `"US"`), a SIP or tel URI, a From header value. Raises `nol.InvalidNumber` (a `ValueError`)
/// for an impossible number and `nol.Anonymous` (also a `ValueError`) when the caller withheld
/// the number; an unknown `country` raises `nol.InvalidArgument`.
#[pyfunction]
#[pyo3(signature = (number, country=None))]
pub fn normalize(
    #[pyo3(from_py_with = arg::text)] number: String,
    #[pyo3(from_py_with = arg::opt_text)] country: Option<String>,
) -> PyResult<String> {
    match E164::parse(&number, country.as_deref()).to_py()? {
        Caller::Number(n) => Ok(n.as_str().to_string()),
        Caller::Anonymous => Err(Kind::Anonymous.err("the caller withheld the number")),
    }
}

/// Reads a verstat from a bare token (`TN-Validation-Passed`), a `verstat=` parameter, or a
/// whole From / P-Asserted-Identity header value. Never raises: what cannot be read has
/// `verstat=None`. Carrier variants such as `TN-Validation-Passed-A` also give the attestation.
#[pyfunction]
pub fn parse_verstat(#[pyo3(from_py_with = arg::text)] value: String) -> Stir {
    Stir {
        inner: CoreStir::parse_verstat(&value),
    }
}

/// The service's trusted Ed25519 public keys, read once from PEM (every `PUBLIC KEY` block;
/// several may be trusted during a key rotation). Pass it to `verify_response` to skip reading
/// the PEM on each call. Raises `nol.InvalidPublicKey` for a PEM without an Ed25519 key.
#[pyclass(module = "nol", frozen)]
pub struct TrustedKeys {
    pub(crate) inner: CoreKeys,
}

#[pymethods]
impl TrustedKeys {
    #[new]
    fn new(pem: &Bound<'_, PyAny>) -> PyResult<TrustedKeys> {
        let text = text_of(pem, "public_key_pem")?;
        Ok(TrustedKeys {
            inner: CoreKeys::from_pem(&text).to_py()?,
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("TrustedKeys(count={})", self.inner.len())
    }
}

/// `str` or UTF-8 `bytes` as text; anything else is a `nol.ArgumentTypeError`.
pub(crate) fn text_of(value: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return String::from_utf8(b.as_bytes().to_vec())
            .map_err(|_| Kind::InvalidArgument.err(format!("{what} is not UTF-8")));
    }
    Err(arg::wrong_type(&format!("str or bytes for {what}"), value))
}

/// The last PEM text read by `verify_response`, so that passing the same PEM string on every
/// call does not pay for reading it again.
static LAST_PEM: Mutex<Option<(String, CoreKeys)>> = Mutex::new(None);

fn keys_for_pem(pem: String) -> PyResult<CoreKeys> {
    let mut last = LAST_PEM.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((text, keys)) = last.as_ref() {
        if *text == pem {
            return Ok(keys.clone());
        }
    }
    let keys = CoreKeys::from_pem(&pem).to_py()?;
    *last = Some((pem, keys.clone()));
    Ok(keys)
}

/// Verifies a numbers.online response body's `response_signature` exactly as the service (Node)
/// makes it: `True` only if a trusted key signed these bytes' canonical form.
///
/// `body` is the raw response (`bytes` or `str`); never raises for a bad body (garbage,
/// duplicate keys, no or a malformed signature: `False`). `public_key` is the PEM (`str` or
/// `bytes`) or a `nol.TrustedKeys`; a PEM without an Ed25519 key raises
/// `nol.InvalidPublicKey`.
#[pyfunction]
pub fn verify_response(
    body: &Bound<'_, PyAny>,
    public_key_pem: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let (parsed, owned);
    let keys: &CoreKeys = if let Ok(k) = public_key_pem.cast::<TrustedKeys>() {
        parsed = k;
        &parsed.get().inner
    } else {
        owned = keys_for_pem(text_of(public_key_pem, "public_key_pem")?)?;
        &owned
    };
    let ok = if let Ok(b) = body.cast::<PyBytes>() {
        signature::verify(b.as_bytes(), keys).is_ok()
    } else if let Ok(s) = body.cast::<PyString>() {
        signature::verify(s.to_cow()?.as_bytes(), keys).is_ok()
    } else {
        return Err(arg::wrong_type("bytes or str for body", body));
    };
    Ok(ok)
}
