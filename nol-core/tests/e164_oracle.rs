//! libnol's E.164 normalization against Google's libphonenumber (its Python port,
//! `phonenumbers`, pinned in `tests/oracle/requirements.txt`), on every region's example
//! numbers in every written form. The expectations are generated at test time by
//! `tests/oracle/e164_cases.py`; `NOL_ORACLE_PYTHON` names the interpreter (default `python3`).

use std::process::Command;

use nol_core::{Caller, E164};

#[derive(serde::Deserialize)]
struct Case {
    input: String,
    region: Option<String>,
    expect: Option<String>,
    valid: bool,
}

fn cases() -> Vec<Case> {
    let python = std::env::var("NOL_ORACLE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/e164_cases.py");
    let out = Command::new(&python)
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("running {python} {script}: {e}"));
    assert!(
        out.status.success(),
        "the oracle failed (pip install -r nol-core/tests/oracle/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("oracle output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("oracle line is a case"))
        .collect()
}

#[test]
fn agrees_with_libphonenumber_on_every_regions_examples() {
    let cases = cases();
    assert!(cases.len() > 10_000, "too few cases: {}", cases.len());
    let mut mismatches = Vec::new();
    for case in &cases {
        let got = match E164::parse(&case.input, case.region.as_deref()) {
            Ok(Caller::Number(n)) => Some(n.to_string()),
            Ok(Caller::Anonymous) => Some("anonymous".to_string()),
            Err(_) => None,
        };
        if got != case.expect {
            mismatches.push(format!(
                "{:?} in {:?}: libphonenumber {:?}, libnol {:?}",
                case.input, case.region, case.expect, got
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases disagree:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches[..mismatches.len().min(60)].join("\n")
    );
}

#[test]
fn never_changes_the_digits_of_a_valid_e164_input() {
    let mut checked = 0;
    for case in cases() {
        let digits_only =
            case.input.starts_with('+') && case.input[1..].bytes().all(|b| b.is_ascii_digit());
        // A valid number of an impossible length (libphonenumber has a few) is rejected instead.
        if !(case.valid && digits_only && case.region.is_none() && case.expect.is_some()) {
            continue;
        }
        checked += 1;
        match E164::parse(&case.input, None) {
            Ok(Caller::Number(n)) => assert_eq!(n.as_str(), case.input),
            other => panic!("{}: {other:?}", case.input),
        }
    }
    assert!(checked > 1000, "only {checked} valid E.164 inputs");
}

#[test]
fn normalizing_twice_changes_nothing() {
    for case in cases() {
        if let Ok(Caller::Number(n)) = E164::parse(&case.input, case.region.as_deref()) {
            assert_eq!(
                E164::parse(n.as_str(), None),
                Ok(Caller::Number(n.clone())),
                "{:?}",
                case.input
            );
        }
    }
}
