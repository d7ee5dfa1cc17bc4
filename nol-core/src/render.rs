//! A [`Decision`] in the forms hosts consume: the SIP display name, trusted-network headers,
//! Asterisk channel variables, the one-line display and one JSON object with stable keys
//! (every binding and the `nol` command print this same JSON). The agent platforms' forms are
//! in [`crate::agents`].

use std::collections::BTreeMap;

use serde::Serialize;

use crate::client::fail_open::FailOpen;
use crate::decision::{Decision, Outcome};
use crate::sanitize::quote_escape;
use crate::stir::{Attestation, Verstat};

/// Header names libnol sets inside a trusted network.
pub const HEADER_ACTION: &str = "X-NumbersOnline-Action";
pub const HEADER_RISK: &str = "X-NumbersOnline-Risk";
pub const HEADER_RECEIPT: &str = "X-NumbersOnline-Receipt";
const HEADER_PREFIX: &str = "x-numbersonline-";

/// A decision as one JSON object. The keys, in this order, are stable (new keys may be added
/// at the end); absent values are `null`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecisionView {
    /// `allow`, `label`, `challenge_or_route`, `block_candidate`, `allow_with_default_policy`
    /// (always, when the lookup failed open), or a newer value of the service's, cleaned.
    pub action: String,
    /// The caller name to show, or `null` to show the raw number. Never invented.
    pub caller_name: Option<String>,
    /// `caller_name` escaped for a SIP quoted-string display name.
    pub sip_display_name: Option<String>,
    pub risk_score: Option<u8>,
    pub risk_level: Option<String>,
    pub identity_type: Option<String>,
    pub result: Option<String>,
    pub receipt_id: Option<String>,
    /// The calling number in E.164, when it was a possible number.
    pub number: Option<String>,
    pub verstat: Option<String>,
    pub attestation: Option<String>,
    /// From a response signed by a trusted key (now, or earlier when `from_cache`).
    pub verified: bool,
    /// A verified business or individual, in a verified answer.
    pub identity_verified: bool,
    pub from_cache: bool,
    /// How old the cached answer is, in whole milliseconds, when `from_cache`.
    pub cache_age_ms: Option<u64>,
    /// Why the call went on without an answer, or `null`.
    pub fail_open: Option<&'static str>,
    /// The service's HTTP status, when `fail_open` is `http_status`.
    pub http_status: Option<u16>,
    pub sip_code: u16,
    pub sip_reason: &'static str,
    /// The Contact of a 302.
    pub sip_contact: Option<String>,
    /// How long the answer may be cached (at most 600).
    pub ttl_seconds: Option<u64>,
    /// `X-NumbersOnline-*` headers for a trusted network.
    pub headers: BTreeMap<&'static str, String>,
    /// Asterisk channel variables.
    pub agi_variables: BTreeMap<&'static str, String>,
    pub display_line: String,
}

impl Decision {
    /// The JSON view of this decision.
    pub fn view(&self) -> DecisionView {
        DecisionView {
            action: self.action.as_str().to_string(),
            caller_name: self.caller_name.clone(),
            sip_display_name: self.sip_display_name(),
            risk_score: self.risk_score,
            risk_level: self.risk_level.clone(),
            identity_type: self.identity_type.as_ref().map(|t| t.as_str().to_string()),
            result: self.result.as_ref().map(|r| r.as_str().to_string()),
            receipt_id: self.receipt_id.clone(),
            number: self.number.as_ref().map(|n| n.as_str().to_string()),
            verstat: self.stir.verstat.as_token().map(str::to_string),
            attestation: self.stir.attestation.as_str().map(str::to_string),
            verified: self.verified(),
            identity_verified: self.identity_verified(),
            from_cache: self.from_cache(),
            cache_age_ms: match &self.outcome {
                Outcome::Cached { age } => Some(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
                _ => None,
            },
            fail_open: self.fail_open().map(|r| r.as_str()),
            http_status: self.fail_open().and_then(|r| r.http_status()),
            sip_code: self.sip.code,
            sip_reason: self.sip.reason,
            sip_contact: self.sip.contact.clone(),
            ttl_seconds: self.ttl.map(|t| t.as_secs()),
            headers: self.headers().into_iter().collect(),
            agi_variables: self.agi_variables().into_iter().collect(),
            display_line: self.display_line(),
        }
    }

    /// The JSON view as compact text: byte for byte what every binding and `nol lookup
    /// --json` give for this decision.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers, booleans and string maps always serializes.
        serde_json::to_string(&self.view()).unwrap_or_else(|_| "{}".to_string())
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
            ("NOL_ACTION", self.action.as_str().to_string()),
            (
                "NOL_RISK",
                self.risk_score.map(|r| r.to_string()).unwrap_or_default(),
            ),
            ("NOL_LABEL", self.caller_name.clone().unwrap_or_default()),
            ("NOL_RECEIPT", self.receipt_id.clone().unwrap_or_default()),
        ]
    }

    /// The channel variables an Asterisk host sets (the module `res_nol`, `nol agi` and the
    /// FastAGI server): [`Decision::agi_variables`] followed by `NOL_VERIFIED` (`1` for an answer
    /// signed by a trusted key, now or cached, else `0`), `NOL_FAIL_OPEN` (why the call went on
    /// without an answer, empty otherwise), `NOL_SIP_CODE` (the redirect server's reply code)
    /// and `NOL_SIP_CONTACT` (the 302's Contact, or empty). No value carries a control
    /// character. A host without a decision at all takes them from
    /// [`crate::Policy::fail_open`]'s decision.
    pub fn asterisk_variables(&self) -> Vec<(&'static str, String)> {
        let mut v = self.agi_variables();
        v.push((
            "NOL_VERIFIED",
            if self.verified() { "1" } else { "0" }.to_string(),
        ));
        v.push((
            "NOL_FAIL_OPEN",
            self.fail_open()
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
        ));
        v.push(("NOL_SIP_CODE", self.sip.code.to_string()));
        v.push((
            "NOL_SIP_CONTACT",
            self.sip.contact.clone().unwrap_or_default(),
        ));
        v
    }

    /// The `X-NumbersOnline-*` headers to add inside a trusted network (strip inbound ones
    /// first with [`strip_nol_headers`]). Risk and receipt are left out when unknown.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![(HEADER_ACTION, self.action.as_str().to_string())];
        if let Some(r) = self.risk_score {
            h.push((HEADER_RISK, r.to_string()));
        }
        if let Some(r) = &self.receipt_id {
            h.push((HEADER_RECEIPT, r.clone()));
        }
        h
    }

    /// [`Decision::headers`] as one header block, `Name: value\r\n` each, for a switch to
    /// append to its reply or request as it is (Kamailio's `append_to_reply`, OpenSIPS's
    /// `append_to_reply`). Every name is an `X-NumbersOnline-` token; every value was cleaned
    /// when the response was read, so no CR, LF or control character can end up in it.
    pub fn header_block(&self) -> String {
        let mut block = String::new();
        for (name, value) in self.headers() {
            let value: String = value.chars().filter(|c| !c.is_control()).collect();
            block.push_str(name);
            block.push_str(": ");
            block.push_str(&value);
            block.push_str("\r\n");
        }
        block
    }

    /// The one-line display of the seed:
    /// `Caller: Acme Support ✓   STIR/SHAKEN: A, verified   numbers.online: verified_business, risk=low`.
    pub fn display_line(&self) -> String {
        let who = self
            .caller_name
            .clone()
            .or_else(|| self.number.as_ref().map(|n| n.to_string()))
            .unwrap_or_else(|| match self.fail_open() {
                Some(FailOpen::InvalidNumber) => "invalid number".to_string(),
                _ => "anonymous".to_string(),
            });
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
                    .map(|t| t.as_str().to_string())
                    .or_else(|| self.result.as_ref().map(|r| r.as_str().to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::fail_open::FailOpen;
    use crate::e164::{Caller, E164};
    use crate::model::{IdentityType, LookupResponse, LookupResult, RecommendedAction};
    use crate::policy::Policy;
    use crate::stir::Stir;

    fn number() -> E164 {
        match E164::parse("+14155551212", None) {
            Ok(Caller::Number(n)) => n,
            other => panic!("{other:?}"),
        }
    }

    fn found(label: &str) -> Decision {
        let r = LookupResponse {
            schema_version: Some("2026-05-31".into()),
            result: LookupResult::Found,
            number: Some("+14155551212".into()),
            identity_type: Some(IdentityType::VerifiedBusiness),
            display_label: Some(label.into()),
            profile_url: None,
            personal_details_exposed: Some(false),
            risk_score: Some(40),
            risk_level: Some("low".into()),
            signals: vec![],
            recommended_action: RecommendedAction::Label,
            ttl_seconds: Some(600),
            receipt_id: Some("nol_rec_1".into()),
            extra: vec![],
        };
        Policy::default().decide(
            &r,
            number(),
            Stir::from_parts(Some("TN-Validation-Passed"), Some("A")),
            None,
        )
    }

    #[test]
    fn asterisk_variables_extend_the_agi_variables() {
        let d = found("Acme Support");
        let v = d.asterisk_variables();
        assert_eq!(v[..4], d.agi_variables()[..]);
        let names: Vec<_> = v.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names[4..],
            [
                "NOL_VERIFIED",
                "NOL_FAIL_OPEN",
                "NOL_SIP_CODE",
                "NOL_SIP_CONTACT"
            ]
        );
        assert_eq!(v[4].1, "1");
        assert_eq!(v[5].1, "");
        for (_, value) in &v {
            assert!(!value.chars().any(char::is_control), "{value:?}");
        }
        let failed = Policy::default().fail_open(FailOpen::Timeout, None, Stir::default(), None);
        let v = failed.asterisk_variables();
        assert_eq!(v[0].1, "allow_with_default_policy");
        assert_eq!(v[4].1, "0");
        assert_eq!(v[5].1, "timeout");
        assert_eq!(v[6].1, "503");
    }

    #[test]
    fn seed_display_line_headers_and_variables() {
        let d = found("Acme Support");
        assert_eq!(
            d.display_line(),
            "Caller: Acme Support ✓   STIR/SHAKEN: A, verified   numbers.online: verified_business, risk=low"
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
        let invalid =
            Policy::default().fail_open(FailOpen::InvalidNumber, None, Stir::default(), None);
        assert!(invalid
            .display_line()
            .starts_with("Caller: invalid number "));
    }

    #[test]
    fn the_json_view_has_stable_keys_in_order() {
        let json = found("Acme \"Support\"").to_json();
        let keys: Vec<String> =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&json)
                .unwrap()
                .keys()
                .cloned()
                .collect();
        assert_eq!(
            keys.len(),
            24,
            "a key was added or removed: document it in the README"
        );
        assert!(json.starts_with(r#"{"action":"label","caller_name":"Acme \"Support\"","sip_display_name":"Acme \\\"Support\\\"","risk_score":40,"#), "{json}");
        let failed = Policy::default()
            .fail_open(
                FailOpen::HttpStatus(502),
                Some(number()),
                Stir::default(),
                None,
            )
            .view();
        assert_eq!(failed.fail_open, Some("http_status"));
        assert_eq!(failed.http_status, Some(502));
        assert_eq!(failed.sip_code, 503);
    }

    #[test]
    fn the_header_block_is_the_headers_line_by_line() {
        let d = found("Acme");
        assert_eq!(
            d.header_block(),
            "X-NumbersOnline-Action: label\r\nX-NumbersOnline-Risk: 40\r\nX-NumbersOnline-Receipt: nol_rec_1\r\n"
        );
        let f = Policy::default().fail_open(FailOpen::Timeout, None, Stir::default(), None);
        assert_eq!(
            f.header_block(),
            "X-NumbersOnline-Action: allow_with_default_policy\r\n"
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
