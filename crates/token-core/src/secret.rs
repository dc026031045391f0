//! Secret material: redacted when printed, compared in constant time, zeroized on drop.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};
use subtle::ConstantTimeEq;

/// Bytes that must stay secret: key material, a raw token, a pepper.
///
/// Not `Clone`, not `PartialEq` (use [`SecretBytes::ct_eq`]), not `Serialize`; `Debug`
/// prints `[REDACTED]`; the buffer is zeroized on drop (by `secrecy`).
pub struct SecretBytes(SecretBox<[u8]>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(bytes.into_boxed_slice()))
    }

    /// Copies `bytes` into a new secret. Zeroize the source yourself if it is yours.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The secret bytes, for the code that needs them (a cipher, a MAC).
    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.expose_secret().len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Constant-time equality (the lengths are not secret).
    pub fn ct_eq(&self, other: &Self) -> bool {
        constant_time_eq(self.expose_secret(), other.expose_secret())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes([REDACTED])")
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from_slice(b"hunter2-key-material");
        let dbg = format!("{s:?}");
        assert_eq!(dbg, "SecretBytes([REDACTED])");
        assert!(!dbg.contains("hunter2"));

        let token = SecretString::from("v4.public.SECRET-BEARER".to_owned());
        let dbg = format!("{token:?}");
        assert!(dbg.contains("[REDACTED]"), "{dbg}");
        assert!(!dbg.contains("SECRET-BEARER"));
    }

    #[test]
    fn equality_is_by_value() {
        let a = SecretBytes::from_slice(b"abc");
        assert!(a.ct_eq(&SecretBytes::from_slice(b"abc")));
        assert!(!a.ct_eq(&SecretBytes::from_slice(b"abd")));
        assert!(!a.ct_eq(&SecretBytes::from_slice(b"ab")));
        assert!(constant_time_eq(b"", b""));
        assert_eq!(a.len(), 3);
    }
}
