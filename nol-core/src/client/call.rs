//! What a host hands the client about a call, and what the pre-call endpoints answer.

use super::FailOpen;

/// The channel the call came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Context {
    #[default]
    InboundVoice,
    InboundSms,
    InboundWaba,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::InboundVoice => "inbound_voice",
            Context::InboundSms => "inbound_sms",
            Context::InboundWaba => "inbound_waba",
        }
    }

    pub fn parse(s: &str) -> Option<Context> {
        match s.trim() {
            "inbound_voice" | "voice" => Some(Context::InboundVoice),
            "inbound_sms" | "sms" => Some(Context::InboundSms),
            "inbound_waba" | "waba" => Some(Context::InboundWaba),
            _ => None,
        }
    }
}

/// What the host knows about an inbound call.
#[derive(Clone, Debug, Default)]
pub struct Call<'a> {
    /// The calling number as the switch has it (E.164, national, a SIP or tel URI, a header).
    pub number: &'a str,
    pub context: Context,
    /// The receiver's own number.
    pub to: Option<&'a str>,
    /// A verstat token, parameter or header value.
    pub verstat: Option<&'a str>,
    /// `A`/`B`/`C` or an `Identity` header value.
    pub attestation: Option<&'a str>,
    /// A name the host already knows for this number: it always wins.
    pub local_contact: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn new(number: &'a str) -> Call<'a> {
        Call {
            number,
            ..Call::default()
        }
    }
}

/// The do-not-call scrub of a pre-call check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dnc {
    Suppress,
    /// Not on a list: this is not a consent grant.
    NoMatch,
    Unknown,
}

impl Dnc {
    pub fn as_str(&self) -> &'static str {
        match self {
            Dnc::Suppress => "SUPPRESS",
            Dnc::NoMatch => "NO_MATCH",
            Dnc::Unknown => "UNKNOWN",
        }
    }

    pub(crate) fn parse(s: Option<&str>) -> Dnc {
        match s {
            Some("SUPPRESS") => Dnc::Suppress,
            Some("NO_MATCH") => Dnc::NoMatch,
            _ => Dnc::Unknown,
        }
    }
}

/// A pre-call check's answer; `UNKNOWN` with a reason when it failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Precall {
    pub dnc: Dnc,
    pub compliance_signal: Option<serde_json::Value>,
    pub receipt_id: Option<String>,
    pub fail_open: Option<FailOpen>,
}

impl Precall {
    /// `UNKNOWN`, because of `reason`.
    pub fn failed(reason: FailOpen) -> Precall {
        Precall {
            dnc: Dnc::Unknown,
            compliance_signal: None,
            receipt_id: None,
            fail_open: Some(reason),
        }
    }
}

/// An enrolment's answer; `enrolled: false` with a reason when it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    pub enrolled: bool,
    pub number: Option<String>,
    pub fail_open: Option<FailOpen>,
}

impl Enrollment {
    /// Not enrolled, because of `reason`.
    pub fn failed(number: Option<String>, reason: FailOpen) -> Enrollment {
        Enrollment {
            enrolled: false,
            number,
            fail_open: Some(reason),
        }
    }
}
