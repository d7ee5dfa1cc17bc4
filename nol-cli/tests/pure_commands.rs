//! `nol normalize`, `nol verstat` and `nol verify` as a user runs them.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::SigningKey;
use nol_core::canonical::{self, JsValue};
use nol_core::signature;

fn nol(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nol"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nol runs");
    // A command that does not read stdin (or not all of it) may exit first: what it printed
    // and its exit status are what the tests judge, not whether the pipe took every byte.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn normalize_arguments() {
    let o = nol(
        &[
            "normalize",
            "--country",
            "GB",
            "020 7183 8750",
            "+1 (415) 555-1212",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o), "+442071838750\n+14155551212\n");
}

#[test]
fn normalize_single_bad_argument_exits_2() {
    let o = nol(&["normalize", "not a number"], b"");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a telephone number"));
    let o = nol(&["normalize", "--country", "ZZ", "123"], b"");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn normalize_stdin_one_line_per_input() {
    let o = nol(
        &["normalize", "--country", "US"],
        b"415 555 1212\nanonymous\nbogus\n\nsip:+442071838750@h;user=phone\r\n",
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        text(&o),
        "+14155551212\nanonymous\nerror: not a telephone number\nanonymous\n+442071838750\n"
    );
}

#[test]
fn normalize_stdin_a_line_that_is_not_utf8_is_an_error_line_not_the_end() {
    let o = nol(
        &["normalize"],
        b"+14155551212\n\xff\xfe+1415\n+442071838750\n+33 1 23 45 67 89",
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        text(&o),
        "+14155551212\nerror: not UTF-8 text\n+442071838750\n+33123456789\n"
    );
}

#[test]
fn verstat_command() {
    let o = nol(
        &[
            "verstat",
            "<sip:+14155551212;verstat=TN-Validation-Passed-A@h>",
        ],
        b"",
    );
    assert_eq!(text(&o), "verstat: TN-Validation-Passed\nattestation: A\n");
    let o = nol(&["verstat", "junk"], b"");
    assert_eq!(text(&o), "verstat: unknown\nattestation: unknown\n");
}

#[test]
fn verify_command() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("inbound_public.pem");
    std::fs::write(
        &pem,
        key.verifying_key()
            .to_public_key_pem(Default::default())
            .unwrap(),
    )
    .unwrap();
    let mut members = canonical::parse_object(br#"{"result":"found","risk_score":8}"#).unwrap();
    let sig = signature::sign(&members, &key);
    members.push(("response_signature".into(), JsValue::String(sig)));
    let body = canonical::stringify(&JsValue::Object(members));
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &body).unwrap();
    let pem = pem.to_str().unwrap();

    let o = nol(
        &["verify", "--public-key", pem, body_file.to_str().unwrap()],
        b"",
    );
    assert_eq!(
        (o.status.code(), text(&o)),
        (Some(0), "valid\n".to_string())
    );
    let o = nol(&["verify", "--public-key", pem], body.as_bytes());
    assert_eq!(
        (o.status.code(), text(&o)),
        (Some(0), "valid\n".to_string())
    );
    let tampered = body.replace(":8", ":9");
    let o = nol(&["verify", "--public-key", pem], tampered.as_bytes());
    assert_eq!(
        (o.status.code(), text(&o)),
        (Some(1), "invalid: signature mismatch\n".to_string())
    );
    let o = nol(&["verify", "--public-key", pem], b"{}");
    assert_eq!(text(&o), "invalid: missing signature\n");
    let o = nol(&["verify", "--public-key", "/nonexistent.pem"], b"{}");
    assert_eq!(o.status.code(), Some(2));
    let o = nol(
        &["verify", "--public-key", body_file.to_str().unwrap()],
        b"{}",
    );
    assert_eq!(o.status.code(), Some(2));
    let o = nol(&["verify"], b"{}");
    assert_eq!(o.status.code(), Some(2));
}
