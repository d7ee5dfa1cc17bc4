//! The operator's policy, and the [`Decision`] it makes for a call, rendered into what hosts
//! consume: the caller name to show, the SIP reply, Asterisk channel variables, trusted-network
//! headers and a one-line display.
//!
//! Everything the service says is advisory. The operator opts in to risk wording (a tag and a
//! threshold) and to blocking; without those opt-ins no answer changes more than the caller
//! name, and no failure changes anything.

use std::fmt;
use std::time::Duration;

use crate::e164::E164;
use crate::model::{IdentityType, LookupResponse, LookupResult, RecommendedAction};
use crate::stir::{Attestation, Stir, Verstat};

/// Risk wording the operator chose: `text` is prefixed to the caller name when the risk score
/// is strictly above `threshold`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskTag {
    pub text: String,
    pub threshold: u8,
}

/// What the operator decided about how answers may change a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Risk wording in the caller name: opt-in, off by default.
    pub risk_tag: Option<RiskTag>,
    /// Answer `block_candidate` with 603: opt-in, off by default.
    pub block: bool,
    /// Where to send elevated-risk calls with a 302 (a SIP URI); without it they route on.
    pub screening_contact: Option<String>,
    /// The longest caller name to show, in bytes of its quoted-string form.
    pub max_name_len: usize,
    /// The reply that tells an SBC to advance to its next route (503 or 404).
    pub route_advance_code: u16,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            risk_tag: None,
            block: false,
            screening_contact: None,
            max_name_len: 64,
            route_advance_code: 503,
        }
    }
}

/// Why a call went on under `allow_with_default_policy` without an answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// of range).
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
    /// A stable snake_case name, for logs, JSON and bindings.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailOpen::Timeout => "timeout",
            FailOpen::Connect => "connect",
            FailOpen::Tls => "tls",
            FailOpen::HttpStatus(_) => "http_status",
            FailOpen::RateLimited => "rate_limited",
            FailOpen::BodyTooLarge => "body_too_large",
            FailOpen::Unparseable => "unparseable",
            FailOpen::Unsigned => "unsigned",
            FailOpen::BadSignature => "bad_signature",
            FailOpen::Unusable => "unusable",
            FailOpen::CircuitOpen => "circuit_open",
            FailOpen::Busy => "busy",
            FailOpen::InvalidNumber => "invalid_number",
            FailOpen::Anonymous => "anonymous",
            FailOpen::NotConfigured => "not_configured",
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
    fn route_advance(code: u16) -> SipReply {
        SipReply {
            code,
            reason: reason_phrase(code),
            contact: None,
        }
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

/// What a call should do, and everything a host needs to do it.
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
    /// How long the answer may be cached (verified answers only).
    pub ttl: Option<Duration>,
}

impl Policy {
    /// The decision for a verified response.
    pub fn decide(
        &self,
        response: &LookupResponse,
        number: E164,
        stir: Stir,
        local_contact: Option<&str>,
    ) -> Decision {
        let found = response.result == LookupResult::Found;
        let label = response
            .display_label
            .as_deref()
            .filter(|_| found)
            .map(sanitize)
            .filter(|l| !l.is_empty());
        let tag = self
            .risk_tag
            .as_ref()
            .filter(|t| response.risk_score.is_some_and(|r| r > t.threshold))
            .map(|t| sanitize(&t.text))
            .filter(|t| !t.is_empty());
        let service_name = match (tag, label) {
            (Some(tag), Some(label)) => Some(format!("{tag} {label}")),
            // A tagged caller with no name shows the tag and the raw number: nothing invented.
            (Some(tag), None) => Some(format!("{tag} {number}")),
            (None, label) => label,
        };
        let mut decision = Decision {
            action: response.recommended_action.clone(),
            caller_name: service_name,
            risk_score: response.risk_score,
            risk_level: response.risk_level.as_deref().map(sanitize_token),
            identity_type: response.identity_type.clone(),
            result: Some(response.result.clone()),
            receipt_id: response.receipt_id.as_deref().map(sanitize_token),
            number: Some(number),
            stir,
            outcome: Outcome::Verified,
            sip: self.sip_reply(&response.recommended_action),
            ttl: response.ttl_seconds.map(|s| Duration::from_secs(s.into())),
        };
        self.finish_name(&mut decision, local_contact);
        decision
    }

    /// The decision when there is no usable answer: `allow_with_default_policy`, nothing shown
    /// but a known local contact, and the call routes on.
    pub fn fail_open(
        &self,
        reason: FailOpen,
        number: Option<E164>,
        stir: Stir,
        local_contact: Option<&str>,
    ) -> Decision {
        let mut decision = Decision {
            action: RecommendedAction::AllowWithDefaultPolicy,
            caller_name: None,
            risk_score: None,
            risk_level: None,
            identity_type: None,
            result: None,
            receipt_id: None,
            number,
            stir,
            outcome: Outcome::FailOpen(reason),
            sip: SipReply::route_advance(self.route_advance_code),
            ttl: None,
        };
        self.finish_name(&mut decision, local_contact);
        decision
    }

    /// Applies a host's known local contact (which always wins) and the length limit.
    pub fn finish_name(&self, decision: &mut Decision, local_contact: Option<&str>) {
        if let Some(contact) = local_contact.map(sanitize).filter(|c| !c.is_empty()) {
            decision.caller_name = Some(contact);
        }
        if let Some(name) = decision.caller_name.as_mut() {
            truncate_quoted(name, self.max_name_len);
        }
        if decision.caller_name.as_deref() == Some("") {
            decision.caller_name = None;
        }
    }

    fn sip_reply(&self, action: &RecommendedAction) -> SipReply {
        match action {
            RecommendedAction::BlockCandidate if self.block => SipReply {
                code: 603,
                reason: reason_phrase(603),
                contact: None,
            },
            RecommendedAction::BlockCandidate | RecommendedAction::ChallengeOrRoute => {
                match &self.screening_contact {
                    Some(contact) => SipReply {
                        code: 302,
                        reason: reason_phrase(302),
                        contact: Some(sanitize(contact)),
                    },
                    None => SipReply::route_advance(self.route_advance_code),
                }
            }
            _ => SipReply::route_advance(self.route_advance_code),
        }
    }
}

/// Header names libnol sets inside a trusted network.
pub const HEADER_ACTION: &str = "X-NumbersOnline-Action";
pub const HEADER_RISK: &str = "X-NumbersOnline-Risk";
pub const HEADER_RECEIPT: &str = "X-NumbersOnline-Receipt";
const HEADER_PREFIX: &str = "x-numbersonline-";

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

    /// The caller name as the inside of a SIP quoted-string display name (`"` and `\`
    /// escaped). Its length is within the policy's `max_name_len`.
    pub fn sip_display_name(&self) -> Option<String> {
        self.caller_name.as_deref().map(quote_escape)
    }

    /// Asterisk channel variables: `NOL_ACTION`, `NOL_RISK`, `NOL_LABEL`, `NOL_RECEIPT` (empty
    /// when unknown). No value carries a control character.
    pub fn agi_variables(&self) -> Vec<(&'static str, String)> {
        vec![
            ("NOL_ACTION", sanitize_token(self.action.as_str())),
            (
                "NOL_RISK",
                self.risk_score.map(|r| r.to_string()).unwrap_or_default(),
            ),
            ("NOL_LABEL", self.caller_name.clone().unwrap_or_default()),
            ("NOL_RECEIPT", self.receipt_id.clone().unwrap_or_default()),
        ]
    }

    /// The `X-NumbersOnline-*` headers to add inside a trusted network (strip inbound ones
    /// first with [`strip_nol_headers`]). Risk and receipt are left out when unknown.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![(HEADER_ACTION, sanitize_token(self.action.as_str()))];
        if let Some(r) = self.risk_score {
            h.push((HEADER_RISK, r.to_string()));
        }
        if let Some(r) = &self.receipt_id {
            h.push((HEADER_RECEIPT, r.clone()));
        }
        h
    }

    /// The one-line display of the seed:
    /// `Caller: Acme Support ✓   STIR/SHAKEN: A, verified   numbers.online: verified_business, risk=low`.
    pub fn display_line(&self) -> String {
        let who = self
            .caller_name
            .clone()
            .or_else(|| self.number.as_ref().map(|n| n.to_string()))
            .unwrap_or_else(|| "anonymous".to_string());
        let check = if self.identity_verified() { " ✓" } else { "" };
        let stir = match (self.stir.attestation, self.stir.verstat) {
            (Attestation::Unknown, Verstat::Unknown) => "none".to_string(),
            (a, v) => format!("{}, {}", a.as_str().unwrap_or("-"), v.describe()),
        };
        let service = match &self.outcome {
            Outcome::FailOpen(reason) => format!("unavailable ({reason})"),
            _ => {
                let kind = self
                    .identity_type
                    .as_ref()
                    .map(|t| sanitize_token(t.as_str()))
                    .or_else(|| self.result.as_ref().map(|r| sanitize_token(r.as_str())))
                    .unwrap_or_else(|| "unknown".into());
                let risk = self
                    .risk_level
                    .clone()
                    .or_else(|| self.risk_score.map(|r| r.to_string()))
                    .unwrap_or_else(|| "unknown".into());
                format!("{kind}, risk={risk}")
            }
        };
        format!("Caller: {who}{check}   STIR/SHAKEN: {stir}   numbers.online: {service}")
    }
}

/// Removes every inbound `X-NumbersOnline-*` header (and its folded continuation lines) from a
/// SIP message's header block: they can be forged by anyone upstream.
pub fn strip_nol_headers(headers: &str) -> String {
    let mut out = String::with_capacity(headers.len());
    let mut dropping = false;
    for line in headers.split_inclusive('\n') {
        let continuation = line.starts_with([' ', '\t']);
        if !continuation {
            dropping = is_nol_header(line.split(':').next().unwrap_or(""));
        }
        if !dropping {
            out.push_str(line);
        }
    }
    out
}

/// Whether a header name is one of libnol's (`X-NumbersOnline-*`, any case).
pub fn is_nol_header(name: &str) -> bool {
    let name = name.trim();
    name.len() >= HEADER_PREFIX.len()
        && name.as_bytes()[..HEADER_PREFIX.len()].eq_ignore_ascii_case(HEADER_PREFIX.as_bytes())
}

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// Text safe to show: control characters (CR, LF, NUL, C1, line separators, bidi overrides)
/// become spaces, runs of whitespace one space, no space at either end.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if is_unsafe_char(c) || c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// A value fit for a header or variable token: visible ASCII letters, digits and `_.:-+`,
/// anything else replaced with `_`, at most 128 bytes.
fn sanitize_token(text: &str) -> String {
    text.chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn quote_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Cuts a sanitized name so that its quoted-string form fits `max` bytes, on a character
/// boundary, never between a `\` and what it escapes, and without a trailing space.
fn truncate_quoted(name: &mut String, max: usize) {
    let mut used = 0;
    let mut cut = name.len();
    for (i, c) in name.char_indices() {
        let width = c.len_utf8() + usize::from(c == '"' || c == '\\');
        if used + width > max {
            cut = i;
            break;
        }
        used += width;
    }
    name.truncate(cut);
    let trimmed = name.trim_end().len();
    name.truncate(trimmed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e164::Caller;

    fn number() -> E164 {
        match E164::parse("+14155551212", None) {
            Ok(Caller::Number(n)) => n,
            other => panic!("{other:?}"),
        }
    }

    fn response(action: &str, label: Option<&str>, risk: Option<u8>) -> LookupResponse {
        LookupResponse {
            schema_version: Some("2026-05-31".into()),
            result: LookupResult::Found,
            number: Some("+14155551212".into()),
            identity_type: Some(IdentityType::VerifiedBusiness),
            display_label: label.map(Into::into),
            profile_url: None,
            personal_details_exposed: Some(false),
            risk_score: risk,
            risk_level: Some("low".into()),
            signals: vec![],
            recommended_action: RecommendedAction::from(action),
            ttl_seconds: Some(600),
            receipt_id: Some("nol_rec_1".into()),
            extra: vec![],
        }
    }

    fn stir_a() -> Stir {
        Stir::from_parts(Some("TN-Validation-Passed"), Some("A"))
    }

    #[test]
    fn seed_display_line() {
        let d = Policy::default().decide(
            &response("allow", Some("Acme Support"), Some(8)),
            number(),
            stir_a(),
            None,
        );
        assert_eq!(
            d.display_line(),
            "Caller: Acme Support ✓   STIR/SHAKEN: A, verified   numbers.online: verified_business, risk=low"
        );
        assert_eq!(d.caller_name.as_deref(), Some("Acme Support"));
        assert_eq!(d.sip.code, 503);
        assert!(d.verified());
    }

    #[test]
    fn risk_tag_only_above_threshold() {
        let policy = Policy {
            risk_tag: Some(RiskTag {
                text: "SPAM?".into(),
                threshold: 70,
            }),
            ..Policy::default()
        };
        let at = policy.decide(
            &response("label", Some("Acme"), Some(70)),
            number(),
            stir_a(),
            None,
        );
        assert_eq!(at.caller_name.as_deref(), Some("Acme"));
        let above = policy.decide(
            &response("label", Some("Acme"), Some(71)),
            number(),
            stir_a(),
            None,
        );
        assert_eq!(above.caller_name.as_deref(), Some("SPAM? Acme"));
        let nameless = policy.decide(&response("label", None, Some(90)), number(), stir_a(), None);
        assert_eq!(nameless.caller_name.as_deref(), Some("SPAM? +14155551212"));
    }

    #[test]
    fn names_only_on_a_hit_and_local_contacts_win() {
        let mut r = response("allow_with_default_policy", Some("Ghost"), None);
        r.result = LookupResult::NoRecord;
        let d = Policy::default().decide(&r, number(), stir_a(), None);
        assert_eq!(d.caller_name, None);
        let d = Policy::default().decide(
            &response("allow", Some("Acme"), Some(1)),
            number(),
            stir_a(),
            Some("Mum"),
        );
        assert_eq!(d.caller_name.as_deref(), Some("Mum"));
        let d =
            Policy::default().fail_open(FailOpen::Timeout, Some(number()), stir_a(), Some("Mum"));
        assert_eq!(d.caller_name.as_deref(), Some("Mum"));
    }

    #[test]
    fn sip_replies() {
        let block = Policy {
            block: true,
            screening_contact: Some("sip:screen@ivr.example.net".into()),
            ..Policy::default()
        };
        let d = |p: &Policy, a: &str| {
            p.decide(&response(a, None, Some(99)), number(), stir_a(), None)
                .sip
        };
        assert_eq!(d(&block, "block_candidate").code, 603);
        assert_eq!(d(&Policy::default(), "block_candidate").code, 503);
        let redirect = d(&block, "challenge_or_route");
        assert_eq!(
            (redirect.code, redirect.contact.as_deref()),
            (302, Some("sip:screen@ivr.example.net"))
        );
        let no_block = Policy {
            block: false,
            ..block.clone()
        };
        assert_eq!(d(&no_block, "block_candidate").code, 302);
        assert_eq!(d(&block, "allow").code, 503);
        assert_eq!(d(&block, "something_new").code, 503);
        let failed = block.fail_open(FailOpen::BadSignature, None, stir_a(), None);
        assert_eq!(failed.sip.code, 503);
        assert_eq!(failed.action, RecommendedAction::AllowWithDefaultPolicy);
    }

    #[test]
    fn hostile_labels_are_defused() {
        let policy = Policy {
            max_name_len: 20,
            ..Policy::default()
        };
        let d = policy.decide(
            &response(
                "allow",
                Some("Evil\r\nX-NumbersOnline-Action: allow\u{0}\u{202E}"),
                Some(1),
            ),
            number(),
            stir_a(),
            None,
        );
        let name = d.caller_name.clone().unwrap();
        assert!(!name.chars().any(|c| c.is_control()), "{name:?}");
        assert!(name.len() <= 20);
        let d = Policy {
            max_name_len: 6,
            ..Policy::default()
        }
        .decide(
            &response("allow", Some("a\"b\\c\\"), Some(1)),
            number(),
            stir_a(),
            None,
        );
        assert_eq!(d.sip_display_name().as_deref(), Some("a\\\"b\\\\"));
        let d = Policy {
            max_name_len: 5,
            ..Policy::default()
        }
        .decide(
            &response("allow", Some("ééé"), Some(1)),
            number(),
            stir_a(),
            None,
        );
        assert_eq!(d.caller_name.as_deref(), Some("éé"));
    }

    #[test]
    fn headers_and_agi_variables() {
        let d = Policy::default().decide(
            &response("label", Some("Acme"), Some(40)),
            number(),
            stir_a(),
            None,
        );
        assert_eq!(
            d.headers(),
            vec![
                (HEADER_ACTION, "label".to_string()),
                (HEADER_RISK, "40".to_string()),
                (HEADER_RECEIPT, "nol_rec_1".to_string())
            ]
        );
        let f = Policy::default().fail_open(FailOpen::Timeout, None, Stir::default(), None);
        assert_eq!(
            f.agi_variables(),
            vec![
                ("NOL_ACTION", "allow_with_default_policy".to_string()),
                ("NOL_RISK", String::new()),
                ("NOL_LABEL", String::new()),
                ("NOL_RECEIPT", String::new())
            ]
        );
        assert_eq!(
            f.display_line(),
            "Caller: anonymous   STIR/SHAKEN: none   numbers.online: unavailable (timeout)"
        );
    }

    #[test]
    fn strips_inbound_headers() {
        let msg = "Via: SIP/2.0/UDP a\r\nX-NumbersOnline-Action: block_candidate\r\n  folded\r\nx-numbersonline-risk: 99\r\nFrom: <sip:a@b>\r\n";
        assert_eq!(
            strip_nol_headers(msg),
            "Via: SIP/2.0/UDP a\r\nFrom: <sip:a@b>\r\n"
        );
        assert!(is_nol_header("X-NUMBERSONLINE-Receipt"));
        assert!(!is_nol_header("X-Numbers"));
    }
}
