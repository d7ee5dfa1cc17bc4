//! Why a lookup went on without an answer: made by the client's layers (HTTP, guard, pool,
//! signature, model), counted by its stats, and turned into `allow_with_default_policy` by the
//! policy.

use std::fmt;

/// Why a call went on under `allow_with_default_policy` without an answer. New reasons may be
/// added in a minor release.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailOpen {
    /// The budget ran out (DNS, connect, TLS, request, headers or body).
    Timeout,
    /// No connection could be made.
    Connect,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The service answered with this HTTP status.
    HttpStatus(u16),
    /// The service said 429, or libnol holds back until its `Retry-After`, or the client-side
    /// rate limit is spent.
    RateLimited,
    /// The body was over the size cap and was abandoned unread.
    BodyTooLarge,
    /// The body was not one JSON object.
    Unparseable,
    /// The body carried no signature.
    Unsigned,
    /// The signature was malformed, of the wrong kind, or made by no trusted key.
    BadSignature,
    /// Verified, but not a usable response (a known field of the wrong type, a risk score out
    /// of range, an answer about another number).
    Unusable,
    /// The circuit breaker is open after repeated failures.
    CircuitOpen,
    /// Every worker is busy: the lookup was not queued.
    Busy,
    /// The calling number is not a possible number.
    InvalidNumber,
    /// The caller withheld the number: there was nothing to look up.
    Anonymous,
    /// The client is not configured to look up (no API key or no trusted public key).
    NotConfigured,
}

impl FailOpen {
    /// Every reason's name, in [`FailOpen::index`] order.
    pub const NAMES: [&'static str; 15] = [
        "timeout",
        "connect",
        "tls",
        "http_status",
        "rate_limited",
        "body_too_large",
        "unparseable",
        "unsigned",
        "bad_signature",
        "unusable",
        "circuit_open",
        "busy",
        "invalid_number",
        "anonymous",
        "not_configured",
    ];

    /// The reason's position in [`FailOpen::NAMES`]: an exhaustive match, so a new reason
    /// cannot be counted as another.
    pub fn index(&self) -> usize {
        match self {
            FailOpen::Timeout => 0,
            FailOpen::Connect => 1,
            FailOpen::Tls => 2,
            FailOpen::HttpStatus(_) => 3,
            FailOpen::RateLimited => 4,
            FailOpen::BodyTooLarge => 5,
            FailOpen::Unparseable => 6,
            FailOpen::Unsigned => 7,
            FailOpen::BadSignature => 8,
            FailOpen::Unusable => 9,
            FailOpen::CircuitOpen => 10,
            FailOpen::Busy => 11,
            FailOpen::InvalidNumber => 12,
            FailOpen::Anonymous => 13,
            FailOpen::NotConfigured => 14,
        }
    }

    /// A stable snake_case name, for logs, JSON and bindings.
    pub fn as_str(&self) -> &'static str {
        FailOpen::NAMES[self.index()]
    }

    /// The service's HTTP status, for `HttpStatus`.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            FailOpen::HttpStatus(code) => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for FailOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailOpen::HttpStatus(code) => write!(f, "http_status {code}"),
            other => f.write_str(other.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_name() {
        let all = [
            FailOpen::Timeout,
            FailOpen::Connect,
            FailOpen::Tls,
            FailOpen::HttpStatus(500),
            FailOpen::RateLimited,
            FailOpen::BodyTooLarge,
            FailOpen::Unparseable,
            FailOpen::Unsigned,
            FailOpen::BadSignature,
            FailOpen::Unusable,
            FailOpen::CircuitOpen,
            FailOpen::Busy,
            FailOpen::InvalidNumber,
            FailOpen::Anonymous,
            FailOpen::NotConfigured,
        ];
        assert_eq!(all.len(), FailOpen::NAMES.len());
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names = FailOpen::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FailOpen::NAMES.len());
    }
}
