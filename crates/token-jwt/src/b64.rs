//! Strict base64url without padding (RFC 7515 section 2): `=` and non-canonical
//! trailing bits are refused, so each byte string has exactly one encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Decodes strict base64url, or `None`.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Encodes as base64url without padding.
pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the base64url encoding of `bytes` to `out`.
pub(crate) fn encode_into(bytes: impl AsRef<[u8]>, out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_and_canonical() {
        assert_eq!(decode("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(decode("eyJhIjoxfQ"), Some(br#"{"a":1}"#.to_vec()));
        assert_eq!(decode("eyJhIjoxfQ=="), None);
        assert_eq!(decode("eyJhIjoxfR"), None, "non-zero trailing bits");
        assert_eq!(decode("a+b/"), None, "standard alphabet");
        assert_eq!(decode("A"), None);
        assert_eq!(encode([0xfb, 0xff]), "-_8");
        let mut s = String::from("x.");
        encode_into(b"ab", &mut s);
        assert_eq!(s, "x.YWI");
    }
}
