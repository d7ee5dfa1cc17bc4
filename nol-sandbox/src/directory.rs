//! The sandbox's fixed directory and the service behaviour it stands in for. Everything the
//! contract leaves open (**assumed** in CONTRACT.md) is decided here, in one place.

use nol_core::canonical::JsValue;
use nol_core::{Stir, Verstat};

use crate::Fault;

/// API key tiers: the free tier never returns `block_candidate` and is held to 60/min.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Free,
    Standard,
}

/// What the directory knows of a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub number: &'static str,
    /// What kind of answer this entry demonstrates.
    pub kind: &'static str,
    pub identity_type: Option<&'static str>,
    pub display_label: Option<&'static str>,
    pub profile_url: Option<&'static str>,
    pub risk_score: u8,
    pub signals: &'static [&'static str],
    pub ttl_seconds: u32,
}

/// The directory: one number for each kind of answer. Any other possible number has no record;
/// [`INVALID_NUMBER`] is a possible number the service calls invalid.
pub const DIRECTORY: &[Entry] = &[
    Entry {
        number: "+14155551212",
        kind: "verified business",
        identity_type: Some("verified_business"),
        display_label: Some("Acme Support"),
        profile_url: Some("https://numbers.online/business/acme-support-1a2b"),
        risk_score: 8,
        signals: &["verified listing", "0 in last 30 days"],
        ttl_seconds: 600,
    },
    Entry {
        number: "+14155550100",
        kind: "verified individual",
        identity_type: Some("verified_individual"),
        // A verified individual is always shown this way, never by name.
        display_label: Some("Verified & online"),
        profile_url: None,
        risk_score: 5,
        signals: &["verified individual"],
        ttl_seconds: 600,
    },
    Entry {
        number: "+14155550111",
        kind: "labelled",
        identity_type: Some("listed_business"),
        display_label: Some("Café Zürich — Bäckerei"),
        profile_url: Some("https://numbers.online/business/cafe-zurich-77"),
        risk_score: 30,
        signals: &["community listing"],
        ttl_seconds: 300,
    },
    Entry {
        number: "+14155550122",
        kind: "elevated risk",
        identity_type: None,
        display_label: None,
        profile_url: None,
        risk_score: 72,
        signals: &["12 reports in last 30 days", "high call volume"],
        ttl_seconds: 120,
    },
    Entry {
        number: "+14155550133",
        kind: "block candidate",
        identity_type: None,
        display_label: None,
        profile_url: None,
        risk_score: 96,
        signals: &["robocall campaign", "148 reports in last 30 days"],
        ttl_seconds: 60,
    },
];

/// A possible number the service answers `result: "invalid_number"` for (**assumed**).
pub const INVALID_NUMBER: &str = "+15555550100";
/// What a number with no record lives in caches for.
pub const NO_RECORD_TTL: u32 = 60;
/// A failed STIR/SHAKEN validation is a possibly spoofed origin: this much more risk
/// (**assumed**).
pub const FAILED_VERSTAT_RISK: u8 = 40;
/// The destination the sandbox's pre-call check says is on a do-not-call list.
pub const SUPPRESSED_NUMBER: &str = "+14155550199";

/// Numbers whose lookup misbehaves, so that a fault can be had per call without a header:
/// `+141555509NN` for the NNth (01–16) fault of [`Fault::ALL`].
pub fn fault_for_number(number: &str) -> Option<Fault> {
    let n: usize = number.strip_prefix("+141555509")?.parse().ok()?;
    Fault::ALL.get(n.checked_sub(1)?).copied()
}

/// The number that triggers `fault`.
pub fn number_for_fault(fault: Fault) -> String {
    let i = Fault::ALL.iter().position(|f| *f == fault).unwrap_or(0) + 1;
    format!("+141555509{i:02}")
}

pub fn lookup(number: &str) -> Option<&'static Entry> {
    DIRECTORY.iter().find(|e| e.number == number)
}

fn risk_level(score: u8) -> &'static str {
    match score {
        0..=24 => "low",
        25..=59 => "medium",
        60..=89 => "high",
        _ => "very_high",
    }
}

fn action(score: u8, verified: bool, tier: Tier) -> &'static str {
    match score {
        90.. if tier == Tier::Standard => "block_candidate",
        60.. => "challenge_or_route",
        0..=24 if verified => "allow",
        _ => "label",
    }
}

fn s(v: &str) -> JsValue {
    JsValue::String(v.to_string())
}

/// The response members, in the order the service builds them (not sorted: signing sorts).
pub fn response(number: &str, stir: Stir, tier: Tier, receipt: &str) -> Vec<(String, JsValue)> {
    let mut m: Vec<(String, JsValue)> = vec![("schema_version".into(), s("2026-05-31"))];
    let entry = lookup(number);
    if number == INVALID_NUMBER {
        m.push(("result".into(), s("invalid_number")));
        m.push(("number".into(), s(number)));
        m.push(("risk_score".into(), JsValue::Null));
        m.push(("recommended_action".into(), s("allow_with_default_policy")));
        m.push(("ttl_seconds".into(), JsValue::Number(NO_RECORD_TTL.into())));
        m.push(("receipt_id".into(), s(receipt)));
        return m;
    }
    let Some(e) = entry else {
        m.push(("result".into(), s("no_record")));
        m.push(("number".into(), s(number)));
        m.push(("risk_score".into(), JsValue::Null));
        m.push(("signals".into(), JsValue::Array(stir_signals(stir))));
        m.push(("recommended_action".into(), s("allow_with_default_policy")));
        m.push(("ttl_seconds".into(), JsValue::Number(NO_RECORD_TTL.into())));
        m.push(("receipt_id".into(), s(receipt)));
        return m;
    };
    let verified = e.identity_type.is_some_and(|t| t.starts_with("verified_"));
    let mut score = e.risk_score;
    if stir.verstat == Verstat::Failed {
        score = score.saturating_add(FAILED_VERSTAT_RISK).min(100);
    }
    let mut signals: Vec<JsValue> = e.signals.iter().map(|v| s(v)).collect();
    signals.extend(stir_signals(stir));
    m.push(("result".into(), s("found")));
    m.push(("number".into(), s(number)));
    if let Some(t) = e.identity_type {
        m.push(("identity_type".into(), s(t)));
    }
    if let Some(l) = e.display_label {
        m.push(("display_label".into(), s(l)));
    }
    if let Some(u) = e.profile_url {
        m.push(("profile_url".into(), s(u)));
    }
    m.push(("personal_details_exposed".into(), JsValue::Bool(false)));
    m.push(("risk_score".into(), JsValue::Number(score.into())));
    m.push(("risk_level".into(), s(risk_level(score))));
    m.push(("signals".into(), JsValue::Array(signals)));
    m.push((
        "recommended_action".into(),
        s(action(score, verified, tier)),
    ));
    m.push(("ttl_seconds".into(), JsValue::Number(e.ttl_seconds.into())));
    m.push(("receipt_id".into(), s(receipt)));
    m
}

fn stir_signals(stir: Stir) -> Vec<JsValue> {
    match stir.verstat {
        Verstat::Passed => vec![s("stir_shaken_passed")],
        Verstat::Failed => vec![s("stir_shaken_failed: possibly spoofed origin")],
        _ => vec![],
    }
}

/// The plain-text caller name of `/v1/cid`: a name only on a hit, never invented.
pub fn cid_name(number: &str) -> &'static str {
    lookup(number).and_then(|e| e.display_label).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_numbers_round_trip() {
        for f in Fault::ALL {
            assert_eq!(fault_for_number(&number_for_fault(*f)), Some(*f));
        }
        assert_eq!(fault_for_number("+14155550900"), None);
        assert_eq!(fault_for_number("+14155551212"), None);
    }

    #[test]
    fn free_tier_never_blocks_and_failed_verstat_raises_risk() {
        let failed = Stir::parse_verstat("TN-Validation-Failed");
        let get = |n, stir, tier| {
            response(n, stir, tier, "r")
                .into_iter()
                .find(|(k, _)| k == "recommended_action")
                .map(|(_, v)| v)
        };
        assert_eq!(
            get("+14155550133", Stir::default(), Tier::Standard),
            Some(s("block_candidate"))
        );
        assert_eq!(
            get("+14155550133", Stir::default(), Tier::Free),
            Some(s("challenge_or_route"))
        );
        assert_eq!(
            get("+14155551212", Stir::default(), Tier::Standard),
            Some(s("allow"))
        );
        assert_eq!(
            get("+14155551212", failed, Tier::Standard),
            Some(s("label"))
        );
        let risk = response("+14155551212", failed, Tier::Standard, "r")
            .into_iter()
            .find(|(k, _)| k == "risk_score")
            .map(|(_, v)| v);
        assert_eq!(risk, Some(JsValue::Number(48.0)));
    }
}
