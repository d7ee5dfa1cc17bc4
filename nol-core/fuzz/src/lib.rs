//! The checks behind libnol's fuzz targets, one function per target.
//!
//! Each `fuzz_targets/<name>.rs` is a one-line `fuzz_target!` that calls the function of the
//! same name here, and `tests/replay.rs` runs every file of `corpus/<name>/` (and
//! `regressions/<name>/`) through that same function on stable Rust, without cargo-fuzz: what
//! the fuzzer learnt is replayed by `cargo test` in CI. Every function takes any bytes, and
//! panics only when an invariant of nol-core is broken.

use std::sync::OnceLock;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use nol_core::canonical::{self, JsValue};
use nol_core::decision::Outcome;
use nol_core::model::{LookupResult, RecommendedAction};
use nol_core::render::{HEADER_ACTION, HEADER_RECEIPT, HEADER_RISK};
use nol_core::signature::{self, SIGNATURE_FIELD};
use nol_core::{
    agents, Attestation, Caller, Decision, FailOpen, LookupResponse, Policy, Stir, TrustedKeys,
    E164,
};

/// A target's check: takes any bytes, panics only on a broken invariant.
pub type Check = fn(&[u8]);

/// Every fuzz target, by the name of its `fuzz_targets/` file and its corpus folder.
pub const TARGETS: &[(&str, Check)] = &[
    ("e164", e164),
    ("verstat", verstat),
    ("verify", verify),
    ("response", response),
];

const REGIONS: &[Option<&str>] = &[
    None,
    Some("US"),
    Some("GB"),
    Some("DE"),
    Some("BR"),
    Some("RU"),
    Some("AR"),
    Some("IT"),
];

/// E.164 parsing never panics, and what it accepts is `+` and digits that parse back to itself.
/// The first byte picks the default region, the rest (UTF-8) is the input.
pub fn e164(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(input) = std::str::from_utf8(rest) else {
        return;
    };
    let region = REGIONS[selector as usize % REGIONS.len()];
    if let Ok(Caller::Number(n)) = E164::parse(input, region) {
        let text = n.as_str();
        assert!(text.starts_with('+') && text[1..].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(E164::parse(text, None), Ok(Caller::Number(n.clone())));
    }
}

/// verstat and attestation parsing never panics and is total.
pub fn verstat(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Stir::parse_verstat(&text);
    let _ = Attestation::parse(&text);
    let half = text.len() / 2;
    if text.is_char_boundary(half) {
        let _ = Stir::from_parts(Some(&text[..half]), Some(&text[half..]));
    }
}

/// The fuzzers' own signing key (never a real one) and the trusted keys holding it.
fn key() -> &'static (SigningKey, TrustedKeys) {
    static KEY: OnceLock<(SigningKey, TrustedKeys)> = OnceLock::new();
    KEY.get_or_init(|| {
        let sk = SigningKey::from_bytes(&[42; 32]);
        let mut keys = TrustedKeys::default();
        keys.add_key(sk.verifying_key()).expect("a strong key");
        (sk, keys)
    })
}

/// The members of a JSON object with its signature replaced by one the test key makes, and the
/// body as the service would send it.
fn resign(mut members: Vec<(String, JsValue)>) -> String {
    let (sk, _) = key();
    members.retain(|(k, _)| k != SIGNATURE_FIELD);
    let sig = signature::sign(&members, sk);
    members.push((SIGNATURE_FIELD.to_string(), JsValue::String(sig)));
    canonical::stringify(&JsValue::Object(members))
}

/// Verification never panics on any body; the canonical bytes of any parseable object can be
/// signed and then verify.
pub fn verify(data: &[u8]) {
    let (_, keys) = key();
    let _ = signature::verify(data, keys);
    if let Ok(members) = canonical::parse_object(data) {
        let body = resign(members);
        assert!(signature::verify(body.as_bytes(), keys).is_ok());
    }
}

const RISK_TAG: &str = "[Likely spam]";
const SCREENING: &str = "sip:screening@pbx.example.net";
const HOSTILE_CONTACT: &str = "Front\r\nDesk \"Ann\" \\ \u{202E}x\u{0}";

/// A service body's way to the host, for any body: the fuzzer's bytes, if they are a JSON
/// object, are signed with the test key (as the service signs), verified, read as a
/// `LookupResponse`, decided on by three policies (none of the opt-ins; a risk tag, a
/// screening contact and blocking, with a `max_name_len` the body picks; the same with a host's
/// hostile local contact), and every host output is rendered and checked:
///
/// - nothing panics; the re-signed body verifies;
/// - header values are tokens, and the header block is exactly `Name: value\r\n` lines;
/// - the caller name, the SIP display name, the AGI and Asterisk variables, the display line,
///   Retell's variables and the LLM sentence carry no control character (CR, LF, NUL, C1),
///   line separator or bidi override;
/// - the caller name is non-empty, its quoted-string form fits `max_name_len`, and it is never
///   invented: a prefix of the label of a `found` answer, or of the risk tag's wording, or of
///   the host's contact;
/// - the SIP reply follows the policy (no opt-in: the route-advance code, never a 302/603);
/// - the JSON view and the agents' JSON parse, and agree with the decision;
/// - a fail-open decision for the same call shows nothing but the host's contact.
pub fn response(data: &[u8]) {
    let Ok(members) = canonical::parse_object(data) else {
        return;
    };
    let (_, keys) = key();
    let body = resign(members);
    let verified = match signature::verify(body.as_bytes(), keys) {
        Ok(v) => v,
        Err(e) => panic!("a body signed by a trusted key does not verify: {e}"),
    };
    let Ok(r) = LookupResponse::from_verified(&verified) else {
        return;
    };
    check_response(&r);

    let text = |name: &str| {
        verified.members.iter().find_map(|(k, v)| match v {
            JsValue::String(s) if k == name => Some(s.as_str()),
            _ => None,
        })
    };
    // The calling number: the body's own, when possible, else a fixed one.
    let number = match r.number.as_deref().map(|n| E164::parse(n, None)) {
        Some(Ok(Caller::Number(n))) => n,
        _ => match E164::parse("+14155550100", None) {
            Ok(Caller::Number(n)) => n,
            other => panic!("{other:?}"),
        },
    };
    // What the switch knows of STIR/SHAKEN: taken from the body's extra fields, if any.
    let stir = Stir::from_parts(text("verstat"), text("attestation"));
    // A length limit the body picks (1..=1024), so truncation meets every kind of character.
    let sum = data.iter().fold(0usize, |a, &b| a.wrapping_add(b as usize));
    let max_name_len = 1 + sum % 96;

    let plain = Policy::default();
    let mut opted = Policy::default();
    opted.set_risk_tag(Some(RISK_TAG)).expect("a valid tag");
    opted
        .set_risk_threshold((sum % 101) as u64)
        .expect("0..=100");
    opted
        .set_screening_contact(Some(SCREENING))
        .expect("a valid contact");
    opted.set_block(sum % 2 == 0);
    opted
        .set_max_name_len(max_name_len as u64)
        .expect("1..=1024");
    if sum % 3 == 0 {
        opted.set_route_advance_code(404).expect("404");
    }

    for (policy, contact) in [
        (&plain, None),
        (&opted, None),
        (&opted, Some(HOSTILE_CONTACT)),
    ] {
        let d = policy.decide(&r, number.clone(), stir, contact);
        check_decision(&d, policy, Some(&r), contact);
        let mut cached = d.clone();
        cached.outcome = Outcome::Cached {
            age: Duration::from_millis(sum as u64),
        };
        check_decision(&cached, policy, Some(&r), contact);
        let failed = policy.fail_open(FailOpen::BadSignature, Some(number.clone()), stir, contact);
        check_decision(&failed, policy, None, contact);
    }
}

/// The characters `nol_core::sanitize` removes from text: none may reach a host.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        )
}

fn assert_clean(what: &str, value: &str) {
    assert!(
        !value.chars().any(is_unsafe),
        "{what} carries a control character: {value:?}"
    );
}

/// A header or variable token (`sanitize_token`'s alphabet), or a number.
fn assert_token(what: &str, value: &str) {
    assert!(
        value.len() <= 128
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:-+".contains(&b)),
        "{what} is not a token: {value:?}"
    );
}

/// What the model promises of every response it reads.
fn check_response(r: &LookupResponse) {
    if let Some(l) = &r.display_label {
        assert_clean("display_label", l);
        assert_eq!(l.trim(), l, "display_label has surrounding whitespace");
    }
    for (what, v) in [
        ("result", Some(r.result.as_str())),
        ("recommended_action", Some(r.recommended_action.as_str())),
        (
            "identity_type",
            r.identity_type.as_ref().map(|t| t.as_str()),
        ),
        ("risk_level", r.risk_level.as_deref()),
        ("receipt_id", r.receipt_id.as_deref()),
    ] {
        if let Some(v) = v {
            assert_token(what, v);
        }
    }
    for s in &r.signals {
        assert_clean("signal", s);
    }
    if let Some(p) = &r.profile_url {
        assert_clean("profile_url", p);
    }
    assert!(r.risk_score.is_none_or(|s| s <= 100));
    assert!(r
        .ttl_seconds
        .is_none_or(|t| t <= nol_core::model::MAX_TTL_SECONDS));
}

/// Undoes a SIP quoted-string's escapes, refusing a lone `\` or an unescaped `"`.
fn unquote(quoted: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn check_decision(
    d: &Decision,
    policy: &Policy,
    r: Option<&LookupResponse>,
    contact: Option<&str>,
) {
    // The caller name: clean, within the limit, never empty, never invented.
    if let Some(name) = &d.caller_name {
        assert_clean("caller name", name);
        assert!(!name.is_empty(), "an empty caller name is not None");
        let quoted = d.sip_display_name().expect("a display name for a name");
        assert!(
            quoted.len() <= policy.max_name_len,
            "display name {quoted:?} over max_name_len {}",
            policy.max_name_len
        );
        assert_eq!(
            unquote(&quoted).as_deref(),
            Some(name.as_str()),
            "{quoted:?}"
        );
        let sanitized_contact = contact.map(nol_core::sanitize::sanitize);
        let mut sources: Vec<String> = sanitized_contact.into_iter().collect();
        if let Some(r) = r {
            let label = r
                .display_label
                .clone()
                .filter(|l| r.result == LookupResult::Found && !l.is_empty());
            if let Some(l) = &label {
                sources.push(l.clone());
                sources.push(format!("{RISK_TAG} {l}"));
            }
            if let Some(n) = &d.number {
                sources.push(format!("{RISK_TAG} {n}"));
            }
        }
        assert!(
            sources.iter().any(|s| s.starts_with(name.as_str())),
            "caller name {name:?} invented: none of {sources:?} starts with it"
        );
    } else {
        assert!(d.sip_display_name().is_none());
    }
    if contact.is_none() && policy.risk_tag.is_none() {
        let label = r.and_then(|r| {
            r.display_label
                .clone()
                .filter(|l| r.result == LookupResult::Found && !l.is_empty())
        });
        if label.is_none() {
            assert_eq!(d.caller_name, None, "a name without a label");
        }
    }

    // What the call does.
    match r {
        None => {
            assert_eq!(d.action, RecommendedAction::AllowWithDefaultPolicy);
            assert_eq!(d.sip.code, policy.route_advance_code);
            assert!(d.risk_score.is_none() && d.receipt_id.is_none() && d.ttl.is_none());
            assert!(!d.verified() && !d.identity_verified());
        }
        Some(r) => {
            assert_eq!(d.action, r.recommended_action);
            let expected = match &d.action {
                RecommendedAction::BlockCandidate if policy.block => 603,
                RecommendedAction::BlockCandidate | RecommendedAction::ChallengeOrRoute
                    if policy.screening_contact.is_some() =>
                {
                    302
                }
                _ => policy.route_advance_code,
            };
            assert_eq!(d.sip.code, expected, "{:?} under {policy:?}", d.action);
            assert!(d.verified());
            assert!(d.ttl.is_none_or(|t| t.as_secs() <= 600));
        }
    }
    assert_eq!(d.sip.code == 302, d.sip.contact.is_some());
    if let Some(c) = &d.sip.contact {
        assert_eq!(Some(c.as_str()), policy.screening_contact.as_deref());
    }
    if d.identity_verified() {
        assert!(d.identity_type.as_ref().is_some_and(|t| t.is_verified()));
    }

    // Headers.
    let headers = d.headers();
    for (name, value) in &headers {
        assert!([HEADER_ACTION, HEADER_RISK, HEADER_RECEIPT].contains(name));
        assert_token(name, value);
    }
    let block = d.header_block();
    let lines: Vec<&str> = block.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), headers.len(), "{block:?}");
    for (line, (name, value)) in lines.iter().zip(&headers) {
        assert_eq!(*line, format!("{name}: {value}"));
        assert!(!line.contains(['\r', '\n']));
    }

    // Asterisk and AGI variables.
    let agi = d.agi_variables();
    let asterisk = d.asterisk_variables();
    assert_eq!(asterisk[..agi.len()], agi[..]);
    for (name, value) in &asterisk {
        assert_clean(name, value);
    }

    // The one-line display.
    assert_clean("display line", &d.display_line());

    // The JSON view.
    let json = d.to_json();
    let view: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("to_json is not JSON ({e}): {json}"));
    assert_eq!(view.len(), 24, "{json}");
    assert_eq!(
        view.get("caller_name").and_then(|v| v.as_str()),
        d.caller_name.as_deref()
    );
    assert_eq!(
        view.get("action").and_then(|v| v.as_str()),
        Some(d.action.as_str())
    );
    assert_eq!(
        view.get("sip_code").and_then(|v| v.as_u64()),
        Some(u64::from(d.sip.code))
    );

    // The agents' forms.
    for (name, value) in agents::retell_dynamic_variables(d) {
        assert_clean(name, &value);
    }
    let retell = agents::retell_response(d, &agents::RetellOptions::default()).to_string();
    assert!(serde_json::from_str::<serde_json::Value>(&retell).is_ok());
    assert_clean("llm message", &agents::llm_message(d));
    let tool = agents::tool_result(d);
    assert_eq!(
        tool.get("caller_name").and_then(|v| v.as_str()),
        d.caller_name.as_deref()
    );
    let vapi = agents::vapi_response("call_1", &tool).to_string();
    assert!(serde_json::from_str::<serde_json::Value>(&vapi).is_ok());
}
