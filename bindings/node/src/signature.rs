//! `nol_core::signature`: verification of a response body's `response_signature`.

use std::cell::RefCell;

use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;
use nol_core::signature::{self, TrustedKeys};

use crate::error::{self, Result};

thread_local! {
    /// The last PEM text parsed on this thread and its keys: a server verifies against one key.
    static LAST_KEYS: RefCell<Option<(String, TrustedKeys)>> = const { RefCell::new(None) };
}

fn with_keys<T>(pem: &str, f: impl FnOnce(&TrustedKeys) -> T) -> Result<T> {
    LAST_KEYS.with(|cell| {
        let mut last = cell.borrow_mut();
        if let Some((text, keys)) = last.as_ref() {
            if text == pem {
                return Ok(f(keys));
            }
        }
        let keys = TrustedKeys::from_pem(pem).map_err(error::from_key)?;
        let out = f(&keys);
        *last = Some((pem.to_string(), keys));
        Ok(out)
    })
}

/// Whether a numbers.online response body carries a valid `response_signature` made by a key
/// of `publicKeyPem` (one or more `PUBLIC KEY` blocks). `false` for anything unverifiable:
/// not JSON, a duplicate key, no or a malformed signature, a signature no key made.
/// Throws `ERR_NOL_INVALID_PUBLIC_KEY` when the PEM holds no Ed25519 public key.
/// Synchronous: microseconds.
#[napi(catch_unwind)]
pub fn verify_response(body: Either<String, Buffer>, public_key_pem: String) -> Result<bool> {
    let bytes: &[u8] = match &body {
        Either::A(text) => text.as_bytes(),
        Either::B(buffer) => buffer.as_ref(),
    };
    with_keys(&public_key_pem, |keys| {
        signature::verify(bytes, keys).is_ok()
    })
}
