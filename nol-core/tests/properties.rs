//! Properties that hold for every input, checked with proptest.

use nol_core::FailOpen;
use nol_core::{Caller, LookupResponse, Policy, RecommendedAction, Stir, E164};
use proptest::prelude::*;

const REGIONS: &[Option<&str>] = &[
    None,
    Some("US"),
    Some("GB"),
    Some("DE"),
    Some("RU"),
    Some("IT"),
    Some("AR"),
    Some("JP"),
    Some("BR"),
    Some("IN"),
];

fn number() -> E164 {
    match E164::parse("+14155551212", None) {
        Ok(Caller::Number(n)) => n,
        other => panic!("{other:?}"),
    }
}

fn phone_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[+]?[0-9 ()./-]{0,20}",
        "(00|011|\\+)[1-9][0-9]{6,14}",
        "(sip|tel):[+]?[0-9-]{3,16}(@host)?(;user=phone)?",
        ".{0,24}",
    ]
}

fn action() -> impl Strategy<Value = RecommendedAction> {
    prop_oneof![
        Just(RecommendedAction::Allow),
        Just(RecommendedAction::Label),
        Just(RecommendedAction::ChallengeOrRoute),
        Just(RecommendedAction::BlockCandidate),
        Just(RecommendedAction::AllowWithDefaultPolicy),
        "[a-z_]{0,12}".prop_map(|s| RecommendedAction::from(s.as_str())),
    ]
}

/// A response as the client has it: read from the service's JSON (which cleans its strings).
fn response(
    label: String,
    risk: Option<u8>,
    action: RecommendedAction,
    receipt: String,
) -> LookupResponse {
    let body = serde_json::json!({
        "result": "found",
        "identity_type": "verified_business",
        "display_label": label,
        "risk_score": risk,
        "risk_level": "low\r\n",
        "recommended_action": action.as_str(),
        "ttl_seconds": 60,
        "receipt_id": receipt,
    });
    let members = nol_core::canonical::parse_object(body.to_string().as_bytes()).unwrap();
    LookupResponse::from_members(&members).unwrap()
}

fn fail_open_reason() -> impl Strategy<Value = FailOpen> {
    prop_oneof![
        Just(FailOpen::Timeout),
        Just(FailOpen::Connect),
        Just(FailOpen::Tls),
        any::<u16>().prop_map(FailOpen::HttpStatus),
        Just(FailOpen::RateLimited),
        Just(FailOpen::BodyTooLarge),
        Just(FailOpen::Unparseable),
        Just(FailOpen::Unsigned),
        Just(FailOpen::BadSignature),
        Just(FailOpen::Unusable),
        Just(FailOpen::CircuitOpen),
        Just(FailOpen::Busy),
        Just(FailOpen::InvalidNumber),
        Just(FailOpen::Anonymous),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn normalize_is_idempotent(input in phone_like(), region in prop::sample::select(REGIONS)) {
        if let Ok(Caller::Number(n)) = E164::parse(&input, region) {
            prop_assert!(n.as_str().starts_with('+'));
            prop_assert!(n.as_str()[1..].bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(E164::parse(n.as_str(), None), Ok(Caller::Number(n.clone())));
            prop_assert_eq!(E164::parse(n.as_str(), region), Ok(Caller::Number(n.clone())));
        }
    }

    #[test]
    fn risk_tag_never_at_or_below_threshold(risk in 0u8..=100, threshold in 0u8..=100, label in "[A-Za-z ]{1,20}") {
        let policy = Policy { risk_tag: Some("[RISK]".into()), risk_threshold: threshold, max_name_len: 200, ..Policy::default() };
        let d = policy.decide(&response(label, Some(risk), RecommendedAction::Label, "r".into()), number(), Stir::default(), None);
        let tagged = d.caller_name.as_deref().is_some_and(|n| n.starts_with("[RISK]"));
        prop_assert_eq!(tagged, risk > threshold);
    }

    #[test]
    fn a_failure_never_yields_603(reason in fail_open_reason(), block in any::<bool>(), contact in proptest::option::of("sip:[a-z]{1,8}@[a-z]{1,8}")) {
        let policy = Policy { block, screening_contact: contact, ..Policy::default() };
        let d = policy.fail_open(reason, Some(number()), Stir::default(), None);
        prop_assert_ne!(d.sip.code, 603);
        prop_assert_ne!(d.sip.code, 302);
        prop_assert_eq!(d.action, RecommendedAction::AllowWithDefaultPolicy);
        prop_assert!(d.caller_name.is_none());
    }

    #[test]
    fn decline_only_with_block_opt_in(act in action(), risk in proptest::option::of(0u8..=100)) {
        let d = Policy::default().decide(&response("x".into(), risk, act, "r".into()), number(), Stir::default(), None);
        prop_assert_ne!(d.sip.code, 603);
    }

    #[test]
    fn rendered_values_carry_no_control_characters(
        label in any::<String>(),
        contact in proptest::option::of(any::<String>()),
        tag in any::<String>(),
        receipt in any::<String>(),
        act in action(),
        max in 0usize..100,
    ) {
        let policy = Policy {
            risk_tag: Some(tag), risk_threshold: 0,
            max_name_len: max,
            ..Policy::default()
        };
        let d = policy.decide(&response(label.clone(), Some(50), act, receipt), number(), Stir::default(), contact.as_deref());
        let bad = |s: &str| s.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}');
        if let Some(name) = &d.caller_name {
            prop_assert!(!bad(name), "name {:?}", name);
            let quoted = d.sip_display_name().unwrap_or_default();
            prop_assert!(quoted.len() <= max);
            prop_assert!(!quoted.ends_with('\\') || quoted.ends_with("\\\\"));
        }
        for (_, v) in d.headers().iter().chain(d.agi_variables().iter()) {
            prop_assert!(!bad(v), "value {:?}", v);
        }
        if let Some(c) = &d.sip.contact {
            prop_assert!(!bad(c));
        }
        prop_assert!(!bad(&d.display_line()));
    }
}
