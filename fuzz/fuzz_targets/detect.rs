//! Fuzz target `detect`: the body is `token_fuzz::detect` (crates/token-fuzz), which the
//! workspace tests also run on this target's corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| token_fuzz::detect(data));
