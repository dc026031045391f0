//! `TokenFormat::detect` on arbitrary input: must never panic, and whatever it
//! classifies must fit the shape it claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_core::{TokenFormat, MAX_TOKEN_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(format) = TokenFormat::detect(s) {
        assert!(s.len() <= MAX_TOKEN_LEN);
        let dots = s.bytes().filter(|&b| b == b'.').count();
        match format {
            TokenFormat::Jws => assert_eq!(dots, 2),
            TokenFormat::Jwe => assert_eq!(dots, 4),
            TokenFormat::Paseto { has_footer, .. } => {
                assert_eq!(dots, if has_footer { 3 } else { 2 });
            }
            TokenFormat::Opaque(_) => assert_eq!(dots, 0),
            _ => {}
        }
    }
});
