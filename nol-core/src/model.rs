//! The inbound lookup response (`schema_version` 2026-05-31) as typed values.
//!
//! Unknown values of the open enumerations are kept as `Other`, unknown fields are kept as they
//! came; a known field of the wrong type, or a `risk_score` outside 0..=100, makes the whole
//! response unusable, and the call fails open.
//!
//! The service's strings are cleaned here, once, as they are read: text to show (the label)
//! loses control characters and bidi overrides, values hosts put in headers and variables
//! (risk level, receipt, unknown enumeration values) become tokens, and `ttl_seconds` is capped
//! at [`MAX_TTL_SECONDS`]. Nothing downstream sees the raw text.

use std::fmt;

use crate::canonical::{to_serde, JsValue};
use crate::sanitize::{sanitize, sanitize_token};
use crate::signature::{Verified, SIGNATURE_FIELD};

macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version of libnol does not know, kept as the service wrote it.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            /// An unknown value is kept, cleaned to a token (see `sanitize_token`).
            fn from(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Other(crate::sanitize::sanitize_token(other)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum!(
    /// `result`.
    LookupResult {
        Found => "found",
        NoRecord => "no_record",
    }
);

open_enum!(
    /// `identity_type`. The contract names `verified_business`; the verified individual's value
    /// is defined by the sandbox (**assumed**: `verified_individual`).
    IdentityType {
        VerifiedBusiness => "verified_business",
        VerifiedIndividual => "verified_individual",
    }
);

impl IdentityType {
    /// A verified identity (business or individual), shown with a check mark.
    pub fn is_verified(&self) -> bool {
        matches!(
            self,
            IdentityType::VerifiedBusiness | IdentityType::VerifiedIndividual
        )
    }
}

open_enum!(
    /// `recommended_action`.
    RecommendedAction {
        Allow => "allow",
        Label => "label",
        ChallengeOrRoute => "challenge_or_route",
        BlockCandidate => "block_candidate",
        AllowWithDefaultPolicy => "allow_with_default_policy",
    }
);

/// The longest an answer may be cached, whatever `ttl_seconds` says (CONTRACT.md: 60–600).
pub const MAX_TTL_SECONDS: u32 = 600;

/// A verified inbound lookup response.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupResponse {
    pub schema_version: Option<String>,
    pub result: LookupResult,
    pub number: Option<String>,
    pub identity_type: Option<IdentityType>,
    pub display_label: Option<String>,
    pub profile_url: Option<String>,
    pub personal_details_exposed: Option<bool>,
    /// 0–100, higher is worse; `None` when the service has no record.
    pub risk_score: Option<u8>,
    pub risk_level: Option<String>,
    pub signals: Vec<String>,
    pub recommended_action: RecommendedAction,
    /// How long the answer may be cached, in seconds (at most [`MAX_TTL_SECONDS`]).
    pub ttl_seconds: Option<u32>,
    pub receipt_id: Option<String>,
    /// Fields this version of libnol does not know, in wire order.
    pub extra: Vec<(String, serde_json::Value)>,
}

/// Why a verified body is still not a usable response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// A required field (`result`, `recommended_action`) is absent.
    MissingField(&'static str),
    /// A known field has the wrong JSON type.
    WrongType(&'static str),
    /// `risk_score` outside 0..=100 or not an integer; `ttl_seconds` negative or fractional.
    OutOfRange(&'static str),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::MissingField(k) => write!(f, "missing field {k}"),
            ModelError::WrongType(k) => write!(f, "field {k} has the wrong type"),
            ModelError::OutOfRange(k) => write!(f, "field {k} is out of range"),
        }
    }
}

impl std::error::Error for ModelError {}

fn opt_string(v: &JsValue, key: &'static str) -> Result<Option<String>, ModelError> {
    match v {
        JsValue::Null => Ok(None),
        JsValue::String(s) => Ok(Some(s.clone())),
        _ => Err(ModelError::WrongType(key)),
    }
}

fn opt_uint(v: &JsValue, key: &'static str, max: f64) -> Result<Option<f64>, ModelError> {
    match v {
        JsValue::Null => Ok(None),
        JsValue::Number(n) if n.fract() == 0.0 && (0.0..=max).contains(n) => Ok(Some(*n)),
        JsValue::Number(_) => Err(ModelError::OutOfRange(key)),
        _ => Err(ModelError::WrongType(key)),
    }
}

impl LookupResponse {
    /// Reads a verified body.
    pub fn from_verified(verified: &Verified) -> Result<LookupResponse, ModelError> {
        LookupResponse::from_members(&verified.members)
    }

    /// Reads top-level members (the signature member is skipped).
    pub fn from_members(members: &[(String, JsValue)]) -> Result<LookupResponse, ModelError> {
        let mut r = LookupResponse {
            schema_version: None,
            result: LookupResult::Other(String::new()),
            number: None,
            identity_type: None,
            display_label: None,
            profile_url: None,
            personal_details_exposed: None,
            risk_score: None,
            risk_level: None,
            signals: Vec::new(),
            recommended_action: RecommendedAction::Other(String::new()),
            ttl_seconds: None,
            receipt_id: None,
            extra: Vec::new(),
        };
        let (mut has_result, mut has_action) = (false, false);
        for (key, value) in members {
            match key.as_str() {
                "schema_version" => r.schema_version = opt_string(value, "schema_version")?,
                "result" => {
                    let s = opt_string(value, "result")?.ok_or(ModelError::WrongType("result"))?;
                    r.result = LookupResult::from(s.as_str());
                    has_result = true;
                }
                "number" => r.number = opt_string(value, "number")?,
                "identity_type" => {
                    r.identity_type =
                        opt_string(value, "identity_type")?.map(|s| IdentityType::from(s.as_str()))
                }
                "display_label" => {
                    r.display_label = opt_string(value, "display_label")?.map(|l| sanitize(&l))
                }
                "profile_url" => {
                    r.profile_url = opt_string(value, "profile_url")?.map(|u| sanitize(&u))
                }
                "personal_details_exposed" => {
                    r.personal_details_exposed = match value {
                        JsValue::Null => None,
                        JsValue::Bool(b) => Some(*b),
                        _ => return Err(ModelError::WrongType("personal_details_exposed")),
                    }
                }
                "risk_score" => {
                    r.risk_score = opt_uint(value, "risk_score", 100.0)?.map(|n| n as u8)
                }
                "risk_level" => {
                    r.risk_level = opt_string(value, "risk_level")?.map(|l| sanitize_token(&l))
                }
                "signals" => {
                    r.signals = match value {
                        JsValue::Null => Vec::new(),
                        JsValue::Array(items) => items
                            .iter()
                            .map(|i| match i {
                                JsValue::String(s) => Ok(sanitize(s)),
                                _ => Err(ModelError::WrongType("signals")),
                            })
                            .collect::<Result<_, _>>()?,
                        _ => return Err(ModelError::WrongType("signals")),
                    }
                }
                "recommended_action" => {
                    let s = opt_string(value, "recommended_action")?
                        .ok_or(ModelError::WrongType("recommended_action"))?;
                    r.recommended_action = RecommendedAction::from(s.as_str());
                    has_action = true;
                }
                "ttl_seconds" => {
                    r.ttl_seconds = opt_uint(value, "ttl_seconds", f64::from(u32::MAX))?
                        .map(|n| (n as u32).min(MAX_TTL_SECONDS))
                }
                "receipt_id" => {
                    r.receipt_id = opt_string(value, "receipt_id")?.map(|id| sanitize_token(&id))
                }
                SIGNATURE_FIELD => {}
                _ => r.extra.push((key.clone(), to_serde(value))),
            }
        }
        if !has_result {
            return Err(ModelError::MissingField("result"));
        }
        if !has_action {
            return Err(ModelError::MissingField("recommended_action"));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::parse_object;

    fn read(body: &str) -> Result<LookupResponse, ModelError> {
        LookupResponse::from_members(&parse_object(body.as_bytes()).unwrap())
    }

    #[test]
    fn reads_the_seed_example() {
        let r = read(
            r#"{"schema_version":"2026-05-31","result":"found","number":"+14155551212",
            "identity_type":"verified_business","display_label":"Acme Support",
            "profile_url":"https://numbers.online/business/acme-support-1a2b",
            "personal_details_exposed":false,"risk_score":8,"risk_level":"low",
            "signals":["verified listing","0 in last 30 days"],"recommended_action":"allow",
            "ttl_seconds":600,"receipt_id":"nol_rec_1","response_signature":"ed25519:x"}"#,
        )
        .unwrap();
        assert_eq!(r.result, LookupResult::Found);
        assert_eq!(r.identity_type, Some(IdentityType::VerifiedBusiness));
        assert_eq!(r.risk_score, Some(8));
        assert_eq!(r.recommended_action, RecommendedAction::Allow);
        assert_eq!(r.ttl_seconds, Some(600));
        assert_eq!(r.signals.len(), 2);
        assert!(r.extra.is_empty());
    }

    #[test]
    fn keeps_unknown_values_and_fields() {
        let r = read(
            r#"{"result":"maybe","identity_type":"verified_robot","recommended_action":"ring_twice",
            "risk_score":null,"new_field":{"x":[1,2.5]}}"#,
        )
        .unwrap();
        assert_eq!(r.result, LookupResult::Other("maybe".into()));
        assert_eq!(
            r.identity_type,
            Some(IdentityType::Other("verified_robot".into()))
        );
        assert_eq!(r.recommended_action.as_str(), "ring_twice");
        assert_eq!(r.risk_score, None);
        assert_eq!(r.extra[0].0, "new_field");
        assert_eq!(r.extra[0].1, serde_json::json!({"x":[1,2.5]}));
    }

    #[test]
    fn service_strings_are_cleaned_once_as_they_are_read() {
        let r = read(
            "{\"result\":\"found\\r\\nX\",\"identity_type\":\"robot\\u0000\",\"recommended_action\":\"ring twice\",\"display_label\":\"Acme\\r\\nX-Evil: 1\",\"risk_level\":\"low\\n\",\"receipt_id\":\"r 1\",\"ttl_seconds\":86400}",
        )
        .unwrap();
        assert_eq!(r.result.as_str(), "found__X");
        assert_eq!(r.identity_type.unwrap().as_str(), "robot_");
        assert_eq!(r.recommended_action.as_str(), "ring_twice");
        assert_eq!(r.display_label.as_deref(), Some("Acme X-Evil: 1"));
        assert_eq!(r.risk_level.as_deref(), Some("low_"));
        assert_eq!(r.receipt_id.as_deref(), Some("r_1"));
        assert_eq!(r.ttl_seconds, Some(600));
    }

    #[test]
    fn wrong_types_and_ranges_are_unusable() {
        let base = r#""result":"found","recommended_action":"allow""#;
        for (extra, err) in [
            (r#""risk_score":"8""#, ModelError::WrongType("risk_score")),
            (r#""risk_score":101"#, ModelError::OutOfRange("risk_score")),
            (r#""risk_score":-1"#, ModelError::OutOfRange("risk_score")),
            (r#""risk_score":8.5"#, ModelError::OutOfRange("risk_score")),
            (
                r#""display_label":7"#,
                ModelError::WrongType("display_label"),
            ),
            (r#""signals":"x""#, ModelError::WrongType("signals")),
            (r#""signals":[1]"#, ModelError::WrongType("signals")),
            (r#""ttl_seconds":-5"#, ModelError::OutOfRange("ttl_seconds")),
            (
                r#""personal_details_exposed":"no""#,
                ModelError::WrongType("personal_details_exposed"),
            ),
        ] {
            assert_eq!(read(&format!("{{{base},{extra}}}")), Err(err), "{extra}");
        }
        assert_eq!(
            read(r#"{"recommended_action":"allow"}"#),
            Err(ModelError::MissingField("result"))
        );
        assert_eq!(
            read(r#"{"result":"found"}"#),
            Err(ModelError::MissingField("recommended_action"))
        );
        assert_eq!(
            read(r#"{"result":null,"recommended_action":"allow"}"#),
            Err(ModelError::WrongType("result"))
        );
        // 8.0 is the integer 8 in JavaScript.
        assert_eq!(
            read(&format!("{{{base},\"risk_score\":8.0}}"))
                .unwrap()
                .risk_score,
            Some(8)
        );
    }
}
