//! Fuzz target `jwt_parse`: the body is `token_fuzz::jwt_parse` (crates/token-fuzz), which the
//! workspace tests also run on this target's corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| token_fuzz::jwt_parse(data));
