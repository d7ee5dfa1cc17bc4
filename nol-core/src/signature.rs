//! Verification of `response_signature`: `ed25519:<base64>` over the canonical bytes of the
//! body exactly as the Node service makes them (see [`crate::canonical`]).

use std::fmt;

use base64::Engine;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::canonical::{self, CanonicalError, JsValue};

/// The name of the signature member.
pub const SIGNATURE_FIELD: &str = "response_signature";
/// The prefix of its value.
pub const SIGNATURE_PREFIX: &str = "ed25519:";

/// The service's public keys libnol trusts. Several may be trusted at once, so that a key
/// rotation needs no flag day: a response verifies if any of them signed it.
#[derive(Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<VerifyingKey>,
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKeys")
            .field("count", &self.keys.len())
            .finish()
    }
}

/// Why a PEM document gave no key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// No `-----BEGIN PUBLIC KEY-----` block.
    NoKey,
    /// A block that is not an Ed25519 SubjectPublicKeyInfo.
    Invalid,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::NoKey => "no PUBLIC KEY block in the PEM text",
            KeyError::Invalid => "a PUBLIC KEY block is not a usable Ed25519 public key",
        })
    }
}

impl std::error::Error for KeyError {}

impl TrustedKeys {
    /// Loads every `PUBLIC KEY` (SPKI) block of a PEM document.
    pub fn from_pem(pem: &str) -> Result<TrustedKeys, KeyError> {
        let mut keys = TrustedKeys::default();
        keys.add_pem(pem)?;
        Ok(keys)
    }

    /// Adds every `PUBLIC KEY` block of a PEM document; nothing is added if one is bad.
    pub fn add_pem(&mut self, pem: &str) -> Result<(), KeyError> {
        const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
        const END: &str = "-----END PUBLIC KEY-----";
        let mut found = Vec::new();
        let mut rest = pem;
        while let Some(start) = rest.find(BEGIN) {
            let after = &rest[start..];
            let end = after.find(END).ok_or(KeyError::Invalid)? + END.len();
            let key =
                VerifyingKey::from_public_key_pem(&after[..end]).map_err(|_| KeyError::Invalid)?;
            // A small-order key would accept forged signatures; refuse it here, once, so that
            // verification can be the plain RFC 8032 check Node's OpenSSL does.
            if key.is_weak() {
                return Err(KeyError::Invalid);
            }
            found.push(key);
            rest = &after[end..];
        }
        if found.is_empty() {
            return Err(KeyError::NoKey);
        }
        self.keys.extend(found);
        Ok(())
    }

    /// Trusts an Ed25519 public key (a small-order, weak key is refused).
    pub fn add_key(&mut self, key: VerifyingKey) -> Result<(), KeyError> {
        if key.is_weak() {
            return Err(KeyError::Invalid);
        }
        self.keys.push(key);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Why a body's signature does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// Not JSON, or not an object.
    Unparseable,
    /// A key appears twice in one object: the body has no single meaning.
    DuplicateKey,
    /// No `response_signature` member.
    Missing,
    /// `response_signature` is not a string, or its base64 is not 64 bytes.
    Malformed,
    /// `response_signature` does not start with `ed25519:`.
    WrongPrefix,
    /// No trusted key signed these values.
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureError::Unparseable => "unparseable body",
            SignatureError::DuplicateKey => "duplicate key",
            SignatureError::Missing => "missing signature",
            SignatureError::Malformed => "malformed signature",
            SignatureError::WrongPrefix => "wrong signature prefix",
            SignatureError::Mismatch => "signature mismatch",
        })
    }
}

impl std::error::Error for SignatureError {}

impl From<CanonicalError> for SignatureError {
    fn from(e: CanonicalError) -> SignatureError {
        match e {
            CanonicalError::DuplicateKey => SignatureError::DuplicateKey,
            CanonicalError::Unparseable | CanonicalError::NotAnObject => {
                SignatureError::Unparseable
            }
        }
    }
}

/// A body whose signature a trusted key made: its top-level members, in wire order.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub members: Vec<(String, JsValue)>,
}

/// Verifies a response body against the trusted keys.
pub fn verify(body: &[u8], keys: &TrustedKeys) -> Result<Verified, SignatureError> {
    let members = canonical::parse_object(body)?;
    let signature = decode_signature(&members)?;
    let message = canonical::signing_bytes(&members, SIGNATURE_FIELD);
    if keys
        .keys
        .iter()
        .any(|k| ed25519_dalek::Verifier::verify(k, &message, &signature).is_ok())
    {
        Ok(Verified { members })
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn decode_signature(members: &[(String, JsValue)]) -> Result<Signature, SignatureError> {
    let value = members
        .iter()
        .find(|(k, _)| k == SIGNATURE_FIELD)
        .map(|(_, v)| v)
        .ok_or(SignatureError::Missing)?;
    let JsValue::String(text) = value else {
        return Err(SignatureError::Malformed);
    };
    let b64 = text
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(SignatureError::WrongPrefix)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| SignatureError::Malformed)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| SignatureError::Malformed)?;
    Ok(Signature::from_bytes(&bytes))
}

/// The `response_signature` value for a body, as the service writes it. The sandbox signs
/// with this; a test has Node itself verify what it makes.
pub fn sign(members: &[(String, JsValue)], key: &ed25519_dalek::SigningKey) -> String {
    use ed25519_dalek::Signer;
    let message = canonical::signing_bytes(members, SIGNATURE_FIELD);
    let sig = key.sign(&message);
    format!(
        "{SIGNATURE_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::pkcs8::EncodePublicKey;
    use ed25519_dalek::SigningKey;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn pem(k: &SigningKey) -> String {
        k.verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap()
    }

    fn signed(body: &str, k: &SigningKey) -> String {
        let mut members = canonical::parse_object(body.as_bytes()).unwrap();
        let sig = sign(&members, k);
        members.push((SIGNATURE_FIELD.into(), JsValue::String(sig)));
        canonical::stringify(&JsValue::Object(members))
    }

    #[test]
    fn verifies_its_own_signatures_and_rotated_keys() {
        let body = signed(r#"{"result":"found","risk_score":8}"#, &key(1));
        let one = TrustedKeys::from_pem(&pem(&key(1))).unwrap();
        assert!(verify(body.as_bytes(), &one).is_ok());
        let other = TrustedKeys::from_pem(&pem(&key(2))).unwrap();
        assert_eq!(
            verify(body.as_bytes(), &other),
            Err(SignatureError::Mismatch)
        );
        let both = TrustedKeys::from_pem(&format!("{}\n{}", pem(&key(2)), pem(&key(1)))).unwrap();
        assert_eq!(both.len(), 2);
        assert!(verify(body.as_bytes(), &both).is_ok());
    }

    #[test]
    fn typed_errors() {
        let keys = TrustedKeys::from_pem(&pem(&key(1))).unwrap();
        let check = |b: &str| verify(b.as_bytes(), &keys).unwrap_err();
        assert_eq!(check("nope"), SignatureError::Unparseable);
        assert_eq!(check("[]"), SignatureError::Unparseable);
        assert_eq!(check(r#"{"a":1}"#), SignatureError::Missing);
        assert_eq!(
            check(r#"{"response_signature":5}"#),
            SignatureError::Malformed
        );
        assert_eq!(
            check(r#"{"response_signature":"ed25519:!!"}"#),
            SignatureError::Malformed
        );
        assert_eq!(
            check(r#"{"response_signature":"ed25519:AAAA"}"#),
            SignatureError::Malformed
        );
        assert_eq!(
            check(r#"{"response_signature":"rsa:AAAA"}"#),
            SignatureError::WrongPrefix
        );
        assert_eq!(
            check(r#"{"a":1,"a":1,"response_signature":"x"}"#),
            SignatureError::DuplicateKey
        );
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point: small order, it would "verify" forged signatures.
        let weak = VerifyingKey::from_bytes(&{
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        })
        .unwrap();
        assert!(weak.is_weak());
        assert_eq!(TrustedKeys::default().add_key(weak), Err(KeyError::Invalid));
        let pem = weak.to_public_key_pem(Default::default()).unwrap();
        assert_eq!(TrustedKeys::from_pem(&pem).unwrap_err(), KeyError::Invalid);
    }

    #[test]
    fn pem_errors() {
        assert_eq!(TrustedKeys::from_pem("").unwrap_err(), KeyError::NoKey);
        assert_eq!(
            TrustedKeys::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .unwrap_err(),
            KeyError::Invalid
        );
        assert_eq!(
            TrustedKeys::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA").unwrap_err(),
            KeyError::Invalid
        );
        assert!(format!("{:?}", TrustedKeys::default()).contains("count"));
    }
}
