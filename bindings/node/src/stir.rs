//! `nol_core::stir`: the STIR/SHAKEN verstat and attestation a switch saw.

use napi_derive::napi;
use nol_core::Stir as CoreStir;

/// What a verstat value says. Fields are `null` when absent or unreadable.
#[napi(object, use_nullable = true)]
pub struct Stir {
    /// `TN-Validation-Passed`, `TN-Validation-Failed` or `No-TN-Validation`.
    pub verstat: Option<String>,
    /// `A`, `B` or `C` (carriers append it: `TN-Validation-Passed-A`).
    pub attestation: Option<String>,
}

impl From<CoreStir> for Stir {
    fn from(s: CoreStir) -> Stir {
        Stir {
            verstat: s.verstat.as_token().map(str::to_string),
            attestation: s.attestation.as_str().map(str::to_string),
        }
    }
}

/// Reads a verstat from a bare token, a `verstat=` parameter, or a whole From /
/// P-Asserted-Identity header value. Never throws for a string: what cannot be read is `null`.
#[napi(catch_unwind)]
pub fn parse_verstat(value: String) -> Stir {
    CoreStir::parse_verstat(&value).into()
}
