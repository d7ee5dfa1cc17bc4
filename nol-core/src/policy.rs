//! The operator's policy, and the [`Decision`] it makes for a call from a verified answer or
//! from the reason there is none.
//!
//! Everything the service says is advisory. The operator opts in to risk wording (a tag and a
//! threshold) and to blocking; without those opt-ins no answer changes more than the caller
//! name, and no failure changes anything. Every value is checked against
//! [`crate::settings::SETTINGS`], here and nowhere else.

use std::time::Duration;

use crate::client::fail_open::FailOpen;
use crate::decision::{Decision, Outcome, SipReply};
use crate::e164::E164;
use crate::model::{LookupResponse, LookupResult, RecommendedAction};
use crate::sanitize::{sanitize, truncate_quoted};
use crate::settings::{self, check_int, ConfigError};
use crate::stir::Stir;

/// What the operator decided about how answers may change a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Risk wording put before the caller name when the risk score is strictly above
    /// `risk_threshold`: opt-in, off by default.
    pub risk_tag: Option<String>,
    /// 0..=100.
    pub risk_threshold: u8,
    /// Answer `block_candidate` with 603: opt-in, off by default.
    pub block: bool,
    /// Where to send elevated-risk calls with a 302 (a `sip:`/`sips:`/`tel:` URI); without it
    /// they route on.
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
            risk_threshold: 70,
            block: false,
            screening_contact: None,
            max_name_len: 64,
            route_advance_code: 503,
        }
    }
}

impl Policy {
    /// Risk wording (non-empty, at most 256 bytes, no control characters), or `None` for none.
    pub fn set_risk_tag(&mut self, text: Option<&str>) -> Result<(), ConfigError> {
        self.risk_tag = match text {
            None => None,
            Some(t) => Some(settings::check_text("risk_tag", t)?),
        };
        Ok(())
    }

    pub fn set_risk_threshold(&mut self, threshold: u64) -> Result<(), ConfigError> {
        self.risk_threshold =
            check_int("risk_threshold", settings::RISK_THRESHOLD, threshold)? as u8;
        Ok(())
    }

    pub fn set_block(&mut self, block: bool) {
        self.block = block;
    }

    /// A `sip:`, `sips:` or `tel:` URI, or `None` to let elevated-risk calls route on. An empty
    /// Contact is refused: a 302 must say where to go.
    pub fn set_screening_contact(&mut self, contact: Option<&str>) -> Result<(), ConfigError> {
        self.screening_contact = match contact {
            None => None,
            Some(c) => Some(settings::check_contact("screening_contact", c)?),
        };
        Ok(())
    }

    pub fn set_max_name_len(&mut self, len: u64) -> Result<(), ConfigError> {
        self.max_name_len = check_int("max_name_len", settings::MAX_NAME_LEN, len)? as usize;
        Ok(())
    }

    pub fn set_route_advance_code(&mut self, code: u64) -> Result<(), ConfigError> {
        self.route_advance_code =
            check_int("route_advance_code", settings::ROUTE_ADVANCE_CODE, code)? as u16;
        Ok(())
    }

    /// Sets one policy setting by its name from text (see `ClientConfig::set`).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let int = |setting: &'static str, range| settings::parse_int(setting, range, value);
        match name {
            "risk_tag" => self.set_risk_tag(Some(value)),
            "risk_threshold" => {
                self.set_risk_threshold(int("risk_threshold", settings::RISK_THRESHOLD)?)
            }
            "block" => {
                self.set_block(settings::parse_flag("block", value)?);
                Ok(())
            }
            "screening_contact" => self.set_screening_contact(Some(value)),
            "max_name_len" => self.set_max_name_len(int("max_name_len", settings::MAX_NAME_LEN)?),
            "route_advance_code" => self
                .set_route_advance_code(int("route_advance_code", settings::ROUTE_ADVANCE_CODE)?),
            other => Err(ConfigError::UnknownSetting(
                other.chars().take(64).collect(),
            )),
        }
    }

    /// Checks every value (for a policy built field by field).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(t) = &self.risk_tag {
            if settings::check_text("risk_tag", t)? != *t {
                return Err(ConfigError::InvalidValue {
                    setting: "risk_tag",
                    reason: "has surrounding whitespace",
                });
            }
        }
        check_int(
            "risk_threshold",
            settings::RISK_THRESHOLD,
            self.risk_threshold.into(),
        )?;
        if let Some(c) = &self.screening_contact {
            settings::check_contact("screening_contact", c)?;
        }
        check_int(
            "max_name_len",
            settings::MAX_NAME_LEN,
            self.max_name_len as u64,
        )?;
        check_int(
            "route_advance_code",
            settings::ROUTE_ADVANCE_CODE,
            self.route_advance_code.into(),
        )?;
        Ok(())
    }

    /// The decision for a verified response (whose strings `model` has already cleaned).
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
            .clone()
            .filter(|l| found && !l.is_empty());
        let tag = self
            .risk_tag
            .as_deref()
            .filter(|_| response.risk_score.is_some_and(|r| r > self.risk_threshold))
            .map(sanitize)
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
            risk_level: response.risk_level.clone(),
            identity_type: response.identity_type.clone(),
            result: Some(response.result.clone()),
            receipt_id: response.receipt_id.clone(),
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
    fn finish_name(&self, decision: &mut Decision, local_contact: Option<&str>) {
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
            RecommendedAction::BlockCandidate if self.block => SipReply::new(603, None),
            RecommendedAction::BlockCandidate | RecommendedAction::ChallengeOrRoute => {
                match &self.screening_contact {
                    Some(contact) => SipReply::new(302, Some(sanitize(contact))),
                    None => SipReply::route_advance(self.route_advance_code),
                }
            }
            _ => SipReply::route_advance(self.route_advance_code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e164::Caller;
    use crate::model::IdentityType;

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
            display_label: label.map(crate::sanitize::sanitize),
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
    fn risk_tag_only_above_threshold() {
        let policy = Policy {
            risk_tag: Some("SPAM?".into()),
            risk_threshold: 70,
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
    fn an_empty_screening_contact_is_refused_not_sent() {
        let mut p = Policy::default();
        assert!(p.set_screening_contact(Some("")).is_err());
        assert!(p.set_screening_contact(Some("  ")).is_err());
        assert_eq!(p.screening_contact, None);
        assert!(p.set("screening_contact", "").is_err());
        let built = Policy {
            screening_contact: Some(String::new()),
            ..Policy::default()
        };
        assert!(built.validate().is_err());
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
    }

    #[test]
    fn named_policy_settings() {
        let mut p = Policy::default();
        p.set("risk_threshold", "101").unwrap_err();
        p.set("risk_threshold", "0").unwrap();
        p.set("risk_tag", "[SPAM]").unwrap();
        p.set("block", "yes").unwrap();
        p.set("max_name_len", "0").unwrap_err();
        p.set("route_advance_code", "600").unwrap_err();
        assert_eq!(p.risk_threshold, 0);
        assert_eq!(p.risk_tag.as_deref(), Some("[SPAM]"));
        assert!(p.block);
        p.validate().unwrap();
    }
}
