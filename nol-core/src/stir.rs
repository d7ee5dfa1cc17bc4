//! STIR/SHAKEN as a switch sees it: the verstat a verifier put on the From or
//! P-Asserted-Identity URI, and the attestation level of the caller's PASSporT.
//!
//! Nothing here fails: what cannot be read is [`Verstat::Unknown`] / [`Attestation::Unknown`],
//! and the call goes on.

use std::fmt;

use base64::Engine;

/// The verification status a STIR/SHAKEN verifier reported (RFC 8224 / ATIS-1000074 `verstat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Verstat {
    /// `TN-Validation-Passed` (and carrier variants such as `TN-Validation-Passed-A`).
    Passed,
    /// `TN-Validation-Failed`: a possibly spoofed origin.
    Failed,
    /// `No-TN-Validation`.
    NoValidation,
    /// Absent or unreadable.
    #[default]
    Unknown,
}

impl Verstat {
    /// The token as the service's `verstat` field expects it, or `None` when unknown.
    pub fn as_token(self) -> Option<&'static str> {
        match self {
            Verstat::Passed => Some("TN-Validation-Passed"),
            Verstat::Failed => Some("TN-Validation-Failed"),
            Verstat::NoValidation => Some("No-TN-Validation"),
            Verstat::Unknown => None,
        }
    }

    /// Short human wording for display lines.
    pub fn describe(self) -> &'static str {
        match self {
            Verstat::Passed => "verified",
            Verstat::Failed => "failed",
            Verstat::NoValidation => "not validated",
            Verstat::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verstat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_token().unwrap_or("unknown"))
    }
}

/// SHAKEN attestation level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Attestation {
    A,
    B,
    C,
    /// Absent or unreadable.
    #[default]
    Unknown,
}

impl Attestation {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Attestation::A => Some("A"),
            Attestation::B => Some("B"),
            Attestation::C => Some("C"),
            Attestation::Unknown => None,
        }
    }

    fn from_letter(s: &str) -> Attestation {
        match s.trim() {
            "A" | "a" => Attestation::A,
            "B" | "b" => Attestation::B,
            "C" | "c" => Attestation::C,
            _ => Attestation::Unknown,
        }
    }

    /// Reads `A`, `B` or `C`, or the `attest` claim of a SHAKEN PASSporT given as an `Identity`
    /// header value (or the bare JWS). The PASSporT is decoded, not verified: verifying it is
    /// the STIR/SHAKEN verifier's job, and this level is only a supplementary signal.
    pub fn parse(value: &str) -> Attestation {
        let v = value.trim();
        let letter = Attestation::from_letter(v);
        if letter != Attestation::Unknown {
            return letter;
        }
        passport_attest(v).unwrap_or(Attestation::Unknown)
    }
}

impl fmt::Display for Attestation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str().unwrap_or("unknown"))
    }
}

/// What the switch knows of a call's STIR/SHAKEN outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Stir {
    pub verstat: Verstat,
    pub attestation: Attestation,
}

impl Stir {
    /// Reads a verstat from a bare token, a `verstat=` parameter, or a whole From /
    /// P-Asserted-Identity header value. Carrier variants that append the attestation
    /// (`TN-Validation-Passed-A`) also give the attestation level.
    pub fn parse_verstat(value: &str) -> Stir {
        let token = verstat_token(value);
        let lower = token.to_ascii_lowercase();
        let (verstat, rest) = if let Some(rest) = lower.strip_prefix("tn-validation-passed") {
            (Verstat::Passed, rest)
        } else if let Some(rest) = lower.strip_prefix("tn-validation-failed") {
            (Verstat::Failed, rest)
        } else if let Some(rest) = lower.strip_prefix("no-tn-validation") {
            (Verstat::NoValidation, rest)
        } else {
            return Stir::default();
        };
        // Only an exact token or a `-X` carrier suffix: `TN-Validation-Passedfoo` is junk.
        let attestation = match rest {
            "" => Attestation::Unknown,
            suffix => match suffix.strip_prefix('-') {
                Some(level) => Attestation::from_letter(level),
                None => return Stir::default(),
            },
        };
        Stir {
            verstat,
            attestation,
        }
    }

    /// Combines a verstat value and an attestation value as a host hands them over; an explicit
    /// attestation wins over one implied by a carrier's verstat suffix.
    pub fn from_parts(verstat: Option<&str>, attestation: Option<&str>) -> Stir {
        let mut stir = verstat.map(Stir::parse_verstat).unwrap_or_default();
        if let Some(a) = attestation.map(Attestation::parse) {
            if a != Attestation::Unknown {
                stir.attestation = a;
            }
        }
        stir
    }
}

/// Finds the verstat token in whatever the host passed.
fn verstat_token(value: &str) -> &str {
    const KEY: &str = "verstat=";
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    match lower.find(KEY) {
        Some(at) => {
            let start = at + KEY.len();
            let rest = &v[start..];
            let end = rest
                .find(|c: char| {
                    matches!(c, ';' | '>' | '@' | ',' | '&' | '?' | '"') || c.is_whitespace()
                })
                .unwrap_or(rest.len());
            &rest[..end]
        }
        None => v.trim_matches('"'),
    }
}

/// The `attest` claim of a PASSporT: `header.payload.signature[;params]`.
fn passport_attest(identity: &str) -> Option<Attestation> {
    let jws = identity.split(';').next()?.trim().trim_matches(['<', '>']);
    let mut parts = jws.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 8192 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let attest = claims.get("attest")?.as_str()?;
    match Attestation::from_letter(attest) {
        Attestation::Unknown => None,
        a => Some(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Verstat {
        Stir::parse_verstat(s).verstat
    }

    #[test]
    fn bare_tokens_any_case() {
        assert_eq!(v("TN-Validation-Passed"), Verstat::Passed);
        assert_eq!(v("tn-validation-passed"), Verstat::Passed);
        assert_eq!(v("TN-Validation-Failed"), Verstat::Failed);
        assert_eq!(v("No-TN-Validation"), Verstat::NoValidation);
        assert_eq!(v(" \"TN-VALIDATION-PASSED\" "), Verstat::Passed);
    }

    #[test]
    fn carrier_variants_carry_the_attestation() {
        let s = Stir::parse_verstat("TN-Validation-Passed-A");
        assert_eq!(
            (s.verstat, s.attestation),
            (Verstat::Passed, Attestation::A)
        );
        let s = Stir::parse_verstat("TN-Validation-Failed-C");
        assert_eq!(
            (s.verstat, s.attestation),
            (Verstat::Failed, Attestation::C)
        );
        let s = Stir::parse_verstat("TN-Validation-Passed-Q");
        assert_eq!(
            (s.verstat, s.attestation),
            (Verstat::Passed, Attestation::Unknown)
        );
    }

    #[test]
    fn parameters_and_header_values() {
        assert_eq!(v("verstat=TN-Validation-Passed"), Verstat::Passed);
        assert_eq!(
            v("<sip:+14155551212;verstat=TN-Validation-Passed@sbc.example.net;user=phone>;tag=abc"),
            Verstat::Passed
        );
        assert_eq!(
            v("\"Acme\" <tel:+14155551212;VERSTAT=tn-validation-failed>"),
            Verstat::Failed
        );
        assert_eq!(
            v("P-Asserted-Identity: <sip:+1415@h;verstat=No-TN-Validation>"),
            Verstat::NoValidation
        );
    }

    #[test]
    fn junk_is_unknown() {
        for s in [
            "",
            "passed",
            "TN-Validation-Passedfoo",
            "verstat=",
            "verstat=garbage",
            "\u{0}\u{ff}",
            "😀",
        ] {
            assert_eq!(Stir::parse_verstat(s), Stir::default(), "{s:?}");
        }
    }

    fn passport(claims: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.c2ln;info=<https://cert.example.org/p.cer>;alg=ES256;ppt=shaken",
            e(
                r#"{"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://cert.example.org/p.cer"}"#
            ),
            e(claims)
        )
    }

    #[test]
    fn attestation_letters_and_passports() {
        assert_eq!(Attestation::parse("A"), Attestation::A);
        assert_eq!(Attestation::parse(" b "), Attestation::B);
        assert_eq!(Attestation::parse("c"), Attestation::C);
        assert_eq!(
            Attestation::parse(&passport(
                r#"{"attest":"B","dest":{"tn":["12125551213"]},"iat":1443208345,"orig":{"tn":"12155551212"},"origid":"x"}"#
            )),
            Attestation::B
        );
        assert_eq!(
            Attestation::parse(&passport(r#"{"attest":"Z"}"#)),
            Attestation::Unknown
        );
        assert_eq!(
            Attestation::parse(&passport(r#"{"orig":{}}"#)),
            Attestation::Unknown
        );
        for junk in ["", "D", "a.b.c", "....", "eyJ.!!!.x", "AA"] {
            assert_eq!(Attestation::parse(junk), Attestation::Unknown, "{junk:?}");
        }
    }

    #[test]
    fn explicit_attestation_wins() {
        let s = Stir::from_parts(Some("TN-Validation-Passed-A"), Some("B"));
        assert_eq!(
            (s.verstat, s.attestation),
            (Verstat::Passed, Attestation::B)
        );
        let s = Stir::from_parts(Some("TN-Validation-Passed-A"), Some("junk"));
        assert_eq!(s.attestation, Attestation::A);
        assert_eq!(Stir::from_parts(None, None), Stir::default());
    }
}
