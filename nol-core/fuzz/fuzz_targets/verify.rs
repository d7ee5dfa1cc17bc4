//! Verification never panics on any body; a body it accepts canonicalizes stably, and the
//! canonical bytes of any parseable object can be signed and then verify.
#![no_main]
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use nol_core::canonical::{self, JsValue};
use nol_core::signature::{self, SIGNATURE_FIELD};
use nol_core::TrustedKeys;

fn key() -> &'static (SigningKey, TrustedKeys) {
    static KEY: OnceLock<(SigningKey, TrustedKeys)> = OnceLock::new();
    KEY.get_or_init(|| {
        let sk = SigningKey::from_bytes(&[42; 32]);
        let mut keys = TrustedKeys::default();
        keys.add_key(sk.verifying_key()).expect("a strong key");
        (sk, keys)
    })
}

fuzz_target!(|data: &[u8]| {
    let (sk, keys) = key();
    let _ = signature::verify(data, keys);
    if let Ok(mut members) = canonical::parse_object(data) {
        members.retain(|(k, _)| k != SIGNATURE_FIELD);
        let sig = signature::sign(&members, sk);
        members.push((SIGNATURE_FIELD.to_string(), JsValue::String(sig)));
        let body = canonical::stringify(&JsValue::Object(members));
        assert!(signature::verify(body.as_bytes(), keys).is_ok());
    }
});
