//! Fuzz target `verify_access`: the body is `token_fuzz::verify_access` (crates/token-fuzz), which the
//! workspace tests also run on this target's corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| token_fuzz::verify_access(data));
