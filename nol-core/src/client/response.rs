//! What the service answered, read: a 200 body verified and mapped to a [`LookupResponse`]
//! about the number asked for, or the reason the call fails open.

use super::http::Answer;
use super::FailOpen;
use crate::e164::E164;
use crate::model::LookupResponse;
use crate::signature::{self, SignatureError, TrustedKeys};

/// Why a non-200 answer fails open.
pub(crate) fn status_reason(code: u16) -> FailOpen {
    if code == 429 {
        FailOpen::RateLimited
    } else {
        FailOpen::HttpStatus(code)
    }
}

/// Why a body that does not verify fails open.
fn signature_reason(e: SignatureError) -> FailOpen {
    match e {
        SignatureError::Unparseable | SignatureError::DuplicateKey => FailOpen::Unparseable,
        SignatureError::Missing => FailOpen::Unsigned,
        SignatureError::Malformed | SignatureError::WrongPrefix | SignatureError::Mismatch => {
            FailOpen::BadSignature
        }
    }
}

/// The verified inbound-lookup answer in `body`, about `number`.
pub(crate) fn inbound(
    body: &[u8],
    keys: &TrustedKeys,
    number: &E164,
) -> Result<LookupResponse, FailOpen> {
    let verified = signature::verify(body, keys).map_err(signature_reason)?;
    let response = LookupResponse::from_verified(&verified).map_err(|_| FailOpen::Unusable)?;
    // A genuine answer about another number (a replay) must not label this call.
    if response
        .number
        .as_deref()
        .is_some_and(|n| n != number.as_str())
    {
        return Err(FailOpen::Unusable);
    }
    Ok(response)
}

/// A pre-call endpoint's JSON answer (not signed: advisory compliance data).
pub(crate) fn json(answer: Answer) -> Result<serde_json::Value, FailOpen> {
    match answer {
        Answer::Body(bytes) => serde_json::from_slice(&bytes).map_err(|_| FailOpen::Unparseable),
        Answer::Status { code, .. } => Err(status_reason(code)),
    }
}
