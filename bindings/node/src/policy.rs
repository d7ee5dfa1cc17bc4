//! `nol_core::policy`: the operator's policy in, the call's decision out.

use std::collections::BTreeMap;

use napi_derive::napi;
use nol_core::policy::{Decision as CoreDecision, FailOpen, Outcome, Policy, RiskTag};

use crate::error::{invalid_arg, Result};

/// Risk wording the operator opts in to: `text` is prefixed to the caller name when the risk
/// score is strictly above `threshold` (0–100).
#[napi(object)]
pub struct RiskTagOptions {
    pub text: String,
    pub threshold: u32,
}

/// What answers may change about a call. Everything is off by default: without opt-ins an
/// answer changes only the caller name, and a failure changes nothing.
#[napi(object)]
pub struct PolicyOptions {
    pub risk_tag: Option<RiskTagOptions>,
    /// Answer `block_candidate` with SIP 603 (default `false`).
    pub block: Option<bool>,
    /// SIP URI elevated-risk calls are redirected to (302); without it they route on.
    pub screening_contact: Option<String>,
    /// The longest caller name, in bytes of its quoted-string form (default 64).
    pub max_name_len: Option<u32>,
    /// The route-advance reply: 503 (default) or 404.
    pub route_advance_code: Option<u32>,
}

impl PolicyOptions {
    pub fn into_policy(self) -> Result<Policy> {
        let mut policy = Policy::default();
        if let Some(tag) = self.risk_tag {
            if tag.threshold > 100 {
                return Err(invalid_arg("policy.riskTag.threshold must be 0–100"));
            }
            policy.risk_tag = Some(RiskTag {
                text: tag.text,
                threshold: tag.threshold as u8,
            });
        }
        policy.block = self.block.unwrap_or(false);
        policy.screening_contact = self.screening_contact.filter(|c| !c.trim().is_empty());
        if let Some(len) = self.max_name_len {
            if !(1..=1024).contains(&len) {
                return Err(invalid_arg("policy.maxNameLen must be 1–1024"));
            }
            policy.max_name_len = len as usize;
        }
        if let Some(code) = self.route_advance_code {
            if code != 503 && code != 404 {
                return Err(invalid_arg("policy.routeAdvanceCode must be 503 or 404"));
            }
            policy.route_advance_code = code as u16;
        }
        Ok(policy)
    }
}

/// What a call should do, and everything a host needs to do it. Every field is present;
/// unknown values are `null`.
#[napi(object, use_nullable = true)]
pub struct Decision {
    /// `allow`, `label`, `challenge_or_route`, `block_candidate`, or
    /// `allow_with_default_policy` (always, when the lookup failed open).
    pub action: String,
    /// The caller name to show (safe plain text), or `null` to show the raw number.
    pub caller_name: Option<String>,
    /// The caller name escaped for a SIP quoted-string display name.
    pub sip_display_name: Option<String>,
    /// 0–100, higher is worse.
    pub risk_score: Option<u32>,
    pub risk_level: Option<String>,
    /// e.g. `verified_business`, `verified_individual`.
    pub identity_type: Option<String>,
    /// `found` or `no_record` (others may appear).
    pub result: Option<String>,
    /// `nol_rec_…`: evidence that can be retrieved later.
    pub receipt_id: Option<String>,
    /// The calling number in E.164, when it was a possible number.
    pub number: Option<String>,
    pub verstat: Option<String>,
    pub attestation: Option<String>,
    /// From a response signed by a trusted key (now or, when `fromCache`, earlier).
    pub verified: bool,
    /// The caller's identity is verified (a verified business or individual) in a verified
    /// answer; `verified` alone says only that numbers.online signed it.
    pub identity_verified: bool,
    pub from_cache: bool,
    /// How old the cached answer is, when `fromCache`.
    pub cache_age_ms: Option<f64>,
    /// Why the call went on without an answer (`timeout`, `connect`, `http_status`,
    /// `bad_signature`, `busy`, `invalid_number`, ...), or `null`.
    pub fail_open: Option<String>,
    /// The service's HTTP status, when `failOpen` is `http_status`.
    pub http_status: Option<u32>,
    /// The reply for a SIP redirect server: 503/404 route advance, 302, or 603.
    pub sip_code: u32,
    pub sip_reason: String,
    /// The Contact of a 302.
    pub sip_contact: Option<String>,
    /// Asterisk channel variables `NOL_ACTION`, `NOL_RISK`, `NOL_LABEL`, `NOL_RECEIPT`.
    pub agi_variables: BTreeMap<String, String>,
    /// `X-NumbersOnline-*` headers for a trusted network.
    pub headers: BTreeMap<String, String>,
    /// `Caller: Acme Support ✓   STIR/SHAKEN: A, verified   numbers.online: verified_business, risk=low`
    pub display_line: String,
}

impl From<&CoreDecision> for Decision {
    fn from(d: &CoreDecision) -> Decision {
        let (fail_open, http_status) = match d.fail_open() {
            Some(FailOpen::HttpStatus(code)) => (Some("http_status".into()), Some(*code as u32)),
            Some(reason) => (Some(reason.as_str().to_string()), None),
            None => (None, None),
        };
        let pairs = |v: Vec<(&'static str, String)>| {
            v.into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>()
        };
        Decision {
            action: d.action.as_str().to_string(),
            caller_name: d.caller_name.clone(),
            sip_display_name: d.sip_display_name(),
            risk_score: d.risk_score.map(u32::from),
            risk_level: d.risk_level.clone(),
            identity_type: d.identity_type.as_ref().map(|t| t.as_str().to_string()),
            result: d.result.as_ref().map(|r| r.as_str().to_string()),
            receipt_id: d.receipt_id.clone(),
            number: d.number.as_ref().map(|n| n.to_string()),
            verstat: d.stir.verstat.as_token().map(str::to_string),
            attestation: d.stir.attestation.as_str().map(str::to_string),
            verified: d.verified(),
            identity_verified: d.identity_verified(),
            from_cache: d.from_cache(),
            cache_age_ms: match &d.outcome {
                Outcome::Cached { age } => Some(age.as_secs_f64() * 1000.0),
                _ => None,
            },
            fail_open,
            http_status,
            sip_code: d.sip.code.into(),
            sip_reason: d.sip.reason.to_string(),
            sip_contact: d.sip.contact.clone(),
            agi_variables: pairs(d.agi_variables()),
            headers: pairs(d.headers()),
            display_line: d.display_line(),
        }
    }
}
