//! Base64url (unpadded, canonical) and PASETO's pre-authentication encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

/// Unpadded base64url.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Unpadded, canonical base64url: padding and non-zero trailing bits are refused.
pub(crate) fn b64_decode(s: &str, what: &'static str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .map_err(|_| Error::Malformed(what))
}

/// PAE (PASETO spec, "Authentication Padding"): the piece count, then each piece's
/// length, as little-endian 64-bit integers with the top bit clear, before its bytes.
pub(crate) fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let len = 8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&le64(pieces.len()));
    for p in pieces {
        out.extend_from_slice(&le64(p.len()));
        out.extend_from_slice(p);
    }
    out
}

/// An authenticated payload, refused unless it is UTF-8 (as the specification requires).
pub(crate) fn utf8(payload: Vec<u8>) -> Result<Vec<u8>> {
    if std::str::from_utf8(&payload).is_ok() {
        Ok(payload)
    } else {
        Err(Error::Malformed("payload is not UTF-8"))
    }
}

fn le64(n: usize) -> [u8; 8] {
    // usize fits in u64 on every supported target; clear the top bit as the spec says.
    (u64::try_from(n).unwrap_or(u64::MAX) & (u64::MAX >> 1)).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The examples of the PASETO specification, "PAE Definition".
    #[test]
    fn pae_matches_the_specification() {
        assert_eq!(pae(&[]), b"\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(
            pae(&[b""]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(
            pae(&[b"test"]),
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"
        );
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(b64_decode("AAAA", "x").unwrap(), vec![0, 0, 0]);
        assert!(b64_decode("AAA=", "x").is_err());
        assert!(b64_decode("AB", "x").is_err(), "non-zero trailing bits");
        assert!(b64_decode("A+/A", "x").is_err(), "standard alphabet");
        assert_eq!(b64_encode(&[0xfb, 0xff]), "-_8");
    }
}
