//! Fuzz target `footer_json`: the body is `token_fuzz::footer_json` (crates/token-fuzz), which the
//! workspace tests also run on this target's corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| token_fuzz::footer_json(data));
