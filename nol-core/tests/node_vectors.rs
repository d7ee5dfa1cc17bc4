//! Signatures made at test time by Node itself (`tests/node/sign_vectors.js`: `JSON.parse`,
//! `Object.keys().sort()`, `JSON.stringify`, `crypto.sign`): libnol must accept every body Node
//! signed, in any wire form, and refuse every tampered or ill-formed one with the right error.

use std::process::Command;

use nol_core::signature::{self, SignatureError};
use nol_core::TrustedKeys;

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    body: String,
    valid: bool,
    error: Option<String>,
}

fn error_name(e: &SignatureError) -> &'static str {
    match e {
        SignatureError::Unparseable => "unparseable",
        SignatureError::DuplicateKey => "duplicate_key",
        SignatureError::Missing => "missing",
        SignatureError::Malformed => "malformed",
        SignatureError::WrongPrefix => "wrong_prefix",
        SignatureError::Mismatch => "mismatch",
    }
}

#[test]
fn node_signed_vectors() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/sign_vectors.js");
    let out = Command::new("node")
        .arg(script)
        .output()
        .expect("node is on every machine");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().expect("pem line")).unwrap();
    let keys = TrustedKeys::from_pem(header["pem"].as_str().expect("pem")).expect("Node's key");

    let (mut valid, mut invalid) = (0, 0);
    for line in lines {
        let v: Vector = serde_json::from_str(line).expect("vector");
        let got = signature::verify(v.body.as_bytes(), &keys);
        if v.valid {
            valid += 1;
            assert!(got.is_ok(), "{}: {:?}\n{}", v.name, got.err(), v.body);
        } else {
            invalid += 1;
            let err = got
                .err()
                .unwrap_or_else(|| panic!("{} verified:\n{}", v.name, v.body));
            assert_eq!(Some(error_name(&err)), v.error.as_deref(), "{}", v.name);
        }
    }
    assert!(
        valid >= 40 && invalid >= 15,
        "{valid} valid, {invalid} invalid vectors"
    );
}
