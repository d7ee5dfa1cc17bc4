//! The pure pipeline's costs, each beside what it is measured against in the same run:
//! verifying a typical signed response (parse, canonicalize, Ed25519) next to a bare
//! ed25519-dalek `verify` of the same canonical bytes; normalizing; deciding.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ed25519_dalek::{Signature, SigningKey};
use nol_core::canonical::{self, JsValue};
use nol_core::signature::{self, SIGNATURE_FIELD};
use nol_core::{Caller, LookupResponse, Policy, Stir, TrustedKeys, E164};

const TYPICAL: &str = r#"{"schema_version":"2026-05-31","result":"found","number":"+14155551212","identity_type":"verified_business","display_label":"Acme Support","profile_url":"https://numbers.online/business/acme-support-1a2b","personal_details_exposed":false,"risk_score":8,"risk_level":"low","signals":["verified listing","0 in last 30 days"],"recommended_action":"allow","ttl_seconds":600,"receipt_id":"nol_rec_7Qm2Xk9"}"#;

fn signed() -> (String, TrustedKeys, SigningKey) {
    let sk = SigningKey::from_bytes(&[9; 32]);
    let mut members = canonical::parse_object(TYPICAL.as_bytes()).expect("typical body");
    let sig = signature::sign(&members, &sk);
    members.push((SIGNATURE_FIELD.into(), JsValue::String(sig)));
    let mut keys = TrustedKeys::default();
    keys.add_key(sk.verifying_key()).expect("a strong key");
    (canonical::stringify(&JsValue::Object(members)), keys, sk)
}

fn verify(c: &mut Criterion) {
    let (body, keys, sk) = signed();
    let message = canonical::signing_bytes(
        &canonical::parse_object(body.as_bytes()).expect("body"),
        SIGNATURE_FIELD,
    );
    let vk = sk.verifying_key();
    let sig: Signature = ed25519_dalek::Signer::sign(&sk, &message);
    let mut g = c.benchmark_group("verify");
    g.bench_function("libnol verify_response (parse+canonicalize+ed25519)", |b| {
        b.iter(|| signature::verify(black_box(body.as_bytes()), &keys).is_ok())
    });
    g.bench_function("bare ed25519-dalek verify (same bytes)", |b| {
        b.iter(|| ed25519_dalek::Verifier::verify(&vk, black_box(&message), &sig).is_ok())
    });
    g.finish();
}

fn normalize(c: &mut Criterion) {
    nol_core::e164::warm_up();
    let mut g = c.benchmark_group("normalize");
    for (name, input, region) in [
        ("e164", "+14155551212", None),
        ("national US", "(415) 555-1212", Some("US")),
        (
            "sip uri",
            "sip:+442071838750@sbc.example.net;user=phone",
            None,
        ),
    ] {
        g.bench_function(format!("libnol {name}"), |b| {
            b.iter(|| E164::parse(black_box(input), region))
        });
        // What a Rust user would reach for: the phonenumber crate's parse + E.164 format (which
        // changes the digits of some valid numbers; see the e164 module).
        let country = region.and_then(|r| r.parse::<phonenumber::country::Id>().ok());
        let _ = phonenumber::parse(country, "+14155551212");
        g.bench_function(format!("phonenumber crate {name}"), |b| {
            b.iter(|| {
                phonenumber::parse(country, black_box(input))
                    .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
            })
        });
    }
    g.finish();
}

fn decide(c: &mut Criterion) {
    let (body, keys, _) = signed();
    let verified = signature::verify(body.as_bytes(), &keys).expect("verifies");
    let response = LookupResponse::from_verified(&verified).expect("usable");
    let Ok(Caller::Number(number)) = E164::parse("+14155551212", None) else {
        panic!("number")
    };
    let policy = Policy {
        risk_tag: Some("SPAM?".into()),
        risk_threshold: 70,
        ..Policy::default()
    };
    let stir = Stir::from_parts(Some("TN-Validation-Passed"), Some("A"));
    c.bench_function("decide", |b| {
        b.iter(|| policy.decide(black_box(&response), number.clone(), stir, None))
    });
}

criterion_group!(benches, verify, normalize, decide);
criterion_main!(benches);
