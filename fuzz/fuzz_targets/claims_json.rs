//! Claims decoding on arbitrary bytes, in both time encodings: never panics, and
//! whatever decodes re-encodes and decodes to the same claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use token_core::{Claims, NumericDate, Rfc3339};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Claims::<Map<String, Value>>::from_json::<NumericDate>(data) {
        let again = c.to_json::<NumericDate>().expect("decoded claims re-encode");
        let back = Claims::<Map<String, Value>>::from_json::<NumericDate>(&again).expect("round trip");
        assert_eq!(back, c);
    }
    if let Ok(c) = Claims::<Map<String, Value>>::from_json::<Rfc3339>(data) {
        let again = c.to_json::<Rfc3339>().expect("decoded claims re-encode");
        let back = Claims::<Map<String, Value>>::from_json::<Rfc3339>(&again).expect("round trip");
        assert_eq!(back, c);
    }
});
