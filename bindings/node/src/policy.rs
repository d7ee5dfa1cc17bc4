//! `nol_core::policy`: the operator's policy in, the call's decision out. Values are checked by
//! nol-core's setters; the decision is nol-core's JSON view, converted.

use std::collections::BTreeMap;

use napi_derive::napi;
use nol_core::settings::{check_number, MAX_NAME_LEN, RISK_THRESHOLD, ROUTE_ADVANCE_CODE};
use nol_core::{ConfigError, Policy};
use serde::Deserialize;

/// What answers may change about a call. Everything is off by default: without opt-ins an
/// answer changes only the caller name, and a failure changes nothing. Ranges are in
/// `SETTINGS`; a value outside them throws `ERR_NOL_INVALID_ARG`.
#[napi(object)]
pub struct PolicyOptions {
    /// Opt-in risk wording put before the caller name when the risk score is strictly above
    /// `riskThreshold` (non-empty, at most 256 bytes, no control characters).
    pub risk_tag: Option<String>,
    /// The risk score above which `riskTag` is shown.
    pub risk_threshold: Option<f64>,
    /// Answer `block_candidate` with SIP 603 (default `false`).
    pub block: Option<bool>,
    /// A `sip:`, `sips:` or `tel:` URI elevated-risk calls are redirected to (302); without it
    /// they route on. An empty string is refused.
    pub screening_contact: Option<String>,
    /// The longest caller name, in bytes of its quoted-string form.
    pub max_name_len: Option<f64>,
    /// The reply that tells an SBC to advance to its next route (`route_advance_code` in
    /// `SETTINGS`: 503 by default).
    pub route_advance_code: Option<f64>,
}

impl PolicyOptions {
    /// The options, given to nol-core's setters: every check is nol-core's.
    pub fn into_policy(self) -> Result<Policy, ConfigError> {
        let mut policy = Policy::default();
        policy.set_risk_tag(self.risk_tag.as_deref())?;
        if let Some(t) = self.risk_threshold {
            policy.set_risk_threshold(check_number("risk_threshold", RISK_THRESHOLD, t)?)?;
        }
        if let Some(block) = self.block {
            policy.set_block(block);
        }
        policy.set_screening_contact(self.screening_contact.as_deref())?;
        if let Some(len) = self.max_name_len {
            policy.set_max_name_len(check_number("max_name_len", MAX_NAME_LEN, len)?)?;
        }
        if let Some(code) = self.route_advance_code {
            let code = check_number("route_advance_code", ROUTE_ADVANCE_CODE, code)?;
            policy.set_route_advance_code(code)?;
        }
        Ok(policy)
    }
}

/// What a call should do, and everything a host needs to do it: nol-core's JSON view of the
/// decision, in camelCase, plus that JSON itself. Every field is present; unknown values are
/// `null`.
#[napi(object, use_nullable = true, object_from_js = false)]
#[derive(Default, Deserialize)]
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
    /// How old the cached answer is, in whole milliseconds, when `fromCache`.
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
    /// How long the answer may be cached, in seconds (at most 600).
    pub ttl_seconds: Option<f64>,
    /// `X-NumbersOnline-*` headers for a trusted network.
    pub headers: BTreeMap<String, String>,
    /// Asterisk channel variables `NOL_ACTION`, `NOL_RISK`, `NOL_LABEL`, `NOL_RECEIPT`.
    pub agi_variables: BTreeMap<String, String>,
    /// `Caller: Acme Support ✓   STIR/SHAKEN: A, verified   numbers.online: verified_business, risk=low`
    pub display_line: String,
    /// This decision as nol-core's JSON (snake_case keys, stable order): byte for byte what
    /// every binding and `nol lookup --json` give.
    #[serde(skip)]
    pub json: String,
}

impl From<&nol_core::Decision> for Decision {
    fn from(d: &nol_core::Decision) -> Decision {
        let json = d.to_json();
        // The view is strings, numbers, booleans and string maps of the types above: it always
        // reads back (test/decision.test.mjs holds every property equal to the JSON). This runs
        // on a libnol thread, so it must not panic.
        let mut decision: Decision = serde_json::from_str(&json).unwrap_or_default();
        decision.json = json;
        decision
    }
}
