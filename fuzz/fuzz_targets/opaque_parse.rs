//! `token_opaque::Prefixes::parse` on arbitrary input: must never panic, and whatever it
//! accepts must have the documented shape (a known prefix, 49 base62 characters, a
//! valid checksum) and be classified the same way by `TokenFormat::detect`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_core::format::OPAQUE_BODY_LEN;
use token_core::TokenFormat;
use token_opaque::{Error, Prefixes, MAX_OPAQUE_TOKEN_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let prefixes = Prefixes::default();
    match prefixes.parse(s) {
        Ok(parsed) => {
            let prefix = prefixes.get(parsed.kind()).expect("a parsed kind has a prefix");
            assert!(s.len() <= MAX_OPAQUE_TOKEN_LEN);
            assert!(s.starts_with(prefix));
            assert_eq!(s.len(), prefix.len() + OPAQUE_BODY_LEN);
            assert!(s[prefix.len()..].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(TokenFormat::detect(s), Ok(TokenFormat::Opaque(parsed.kind())));
        }
        Err(Error::Malformed(_) | Error::BadChecksum) => {}
        Err(other) => panic!("unexpected error kind from the parser: {other:?}"),
    }
});
