//! See `nol_core_fuzz::verify` (src/lib.rs) for what this target checks; tests/replay.rs replays
//! its corpus on stable.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| nol_core_fuzz::verify(data));
