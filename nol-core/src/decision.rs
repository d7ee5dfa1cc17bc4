//! What a call should do: the [`Decision`] the policy makes, read by every host through the
//! renderers in [`crate::render`].

use std::time::Duration;

use crate::client::fail_open::FailOpen;
use crate::e164::E164;
use crate::model::{IdentityType, LookupResult, RecommendedAction};
use crate::stir::Stir;

/// How a decision was reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// From a response signed by a trusted key, fetched for this call.
    Verified,
    /// From a verified response fetched earlier, this long ago.
    Cached { age: Duration },
    /// Without an answer: `allow_with_default_policy`.
    FailOpen(FailOpen),
}

/// The SIP reply a redirect server sends for a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipReply {
    pub code: u16,
    pub reason: &'static str,
    /// The Contact of a 302.
    pub contact: Option<String>,
}

impl SipReply {
    pub(crate) fn new(code: u16, contact: Option<String>) -> SipReply {
        SipReply {
            code,
            reason: reason_phrase(code),
            contact,
        }
    }

    pub(crate) fn route_advance(code: u16) -> SipReply {
        SipReply::new(code, None)
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        302 => "Moved Temporarily",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Route Advance",
    }
}

/// What a call should do, and everything a host needs to do it. Every string in it is clean:
/// the service's when the response was read, the host's when the policy took it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The service's recommended action, or `allow_with_default_policy` without an answer.
    pub action: RecommendedAction,
    /// The caller name to show (plain text, safe: no control characters, cut to the policy's
    /// length on a character boundary), or `None` to show the raw number.
    pub caller_name: Option<String>,
    pub risk_score: Option<u8>,
    pub risk_level: Option<String>,
    pub identity_type: Option<IdentityType>,
    pub result: Option<LookupResult>,
    pub receipt_id: Option<String>,
    /// The calling number, when it was a possible number.
    pub number: Option<E164>,
    pub stir: Stir,
    pub outcome: Outcome,
    /// The reply for a SIP redirect server.
    pub sip: SipReply,
    /// How long the answer may be cached (verified answers only; at most 600 s).
    pub ttl: Option<Duration>,
}

impl Decision {
    /// Verified for this call, or served from a verified answer in the cache.
    pub fn verified(&self) -> bool {
        matches!(self.outcome, Outcome::Verified | Outcome::Cached { .. })
    }

    pub fn from_cache(&self) -> bool {
        matches!(self.outcome, Outcome::Cached { .. })
    }

    /// The caller's identity is verified (a verified business or individual) in a verified
    /// answer. A signed answer alone is not a verified caller: a listed business is a name,
    /// not a check.
    pub fn identity_verified(&self) -> bool {
        self.verified() && self.identity_type.as_ref().is_some_and(|t| t.is_verified())
    }

    /// The fail-open reason, if the call went on without an answer.
    pub fn fail_open(&self) -> Option<&FailOpen> {
        match &self.outcome {
            Outcome::FailOpen(reason) => Some(reason),
            _ => None,
        }
    }
}
