//! E.164 parsing never panics, and what it accepts is `+` and digits that parse back to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nol_core::{Caller, E164};

const REGIONS: &[Option<&str>] = &[None, Some("US"), Some("GB"), Some("DE"), Some("BR"), Some("RU"), Some("AR"), Some("IT")];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(input) = std::str::from_utf8(rest) else { return };
    let region = REGIONS[selector as usize % REGIONS.len()];
    if let Ok(Caller::Number(n)) = E164::parse(input, region) {
        let text = n.as_str();
        assert!(text.starts_with('+') && text[1..].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(E164::parse(text, None), Ok(Caller::Number(n.clone())));
    }
});
