//! verstat and attestation parsing never panics and is total.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nol_core::{Attestation, Stir};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Stir::parse_verstat(&text);
    let _ = Attestation::parse(&text);
    let half = text.len() / 2;
    if text.is_char_boundary(half) {
        let _ = Stir::from_parts(Some(&text[..half]), Some(&text[half..]));
    }
});
