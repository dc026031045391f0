//! What is stored instead of the token: `SHA-256(token)`, or `HMAC-SHA256(pepper,
//! token)` with a rotatable server pepper.
//!
//! A token carries 256 bits of entropy, so an unsalted fast hash is enough to make a
//! stolen table useless (nothing to brute-force); the pepper adds that a stolen table
//! cannot even be checked against a candidate token without the server's secret.
//!
//! Pepper rotation: the hasher holds a [`KeyRing`] of peppers. New rows are hashed with
//! the current pepper and record its id; lookups try the current pepper first, then the
//! verify-only ones. Long-lived API keys found under an old pepper are re-hashed under
//! the current one on use, so an old pepper can be removed once no row names it.

use std::fmt::{self, Write as _};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use token_core::{KeyId, KeyRing, SecretBytes, constant_time_eq};

use crate::error::{Error, Result};

/// Length of a stored hash.
pub const HASH_LEN: usize = 32;

/// The shortest pepper accepted, in bytes.
pub const MIN_PEPPER_LEN: usize = 32;

/// A stored token hash, with the id of the pepper it was made with (`None` for plain
/// SHA-256).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash {
    digest: [u8; HASH_LEN],
    pepper_id: Option<KeyId>,
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut head = String::new();
        for b in self.digest.iter().take(4) {
            let _ = write!(head, "{b:02x}");
        }
        f.debug_struct("TokenHash")
            .field("digest", &format_args!("{head}…"))
            .field("pepper_id", &self.pepper_id)
            .finish()
    }
}

impl TokenHash {
    /// A hash read back from storage.
    ///
    /// # Errors
    /// [`Error::Integrity`] if `digest` is not 32 bytes; [`Error::InvalidInput`] if
    /// `pepper_id` is not a valid key id.
    pub fn from_stored(digest: &[u8], pepper_id: Option<&str>) -> Result<Self> {
        let digest: [u8; HASH_LEN] = digest
            .try_into()
            .map_err(|_| Error::Integrity("stored hash is not 32 bytes"))?;
        let pepper_id = pepper_id.map(KeyId::new).transpose()?;
        Ok(Self { digest, pepper_id })
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8; HASH_LEN] {
        &self.digest
    }

    /// The id of the pepper, or `None` for plain SHA-256.
    pub fn pepper_id(&self) -> Option<&KeyId> {
        self.pepper_id.as_ref()
    }

    /// The pepper id as stored (`NULL` for plain SHA-256).
    pub fn pepper_str(&self) -> Option<&str> {
        self.pepper_id.as_ref().map(KeyId::as_str)
    }

    /// Whether `other` is the same hash, compared in constant time.
    pub fn ct_matches(&self, other: &Self) -> bool {
        // The pepper id is not secret; the digest comparison is constant-time.
        let same_digest = constant_time_eq(&self.digest, &other.digest);
        let same_pepper = self.pepper_id == other.pepper_id;
        same_digest && same_pepper
    }
}

/// Hashes tokens for storage and lookup.
pub struct TokenHasher {
    peppers: Option<KeyRing<SecretBytes>>,
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.peppers {
            None => f.write_str("TokenHasher(SHA-256)"),
            // KeyRing's Debug shows ids and statuses, never the peppers.
            Some(ring) => write!(f, "TokenHasher(HMAC-SHA256, peppers {ring:?})"),
        }
    }
}

impl Default for TokenHasher {
    fn default() -> Self {
        Self::sha256()
    }
}

impl TokenHasher {
    /// Plain `SHA-256(token)` (the default).
    pub fn sha256() -> Self {
        Self { peppers: None }
    }

    /// `HMAC-SHA256(pepper, token)` with the ring's current pepper; lookups also try the
    /// ring's verify-only peppers.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the ring has no current pepper or a pepper is shorter
    /// than [`MIN_PEPPER_LEN`] bytes.
    pub fn hmac(peppers: KeyRing<SecretBytes>) -> Result<Self> {
        if peppers.current().is_err() {
            return Err(Error::InvalidInput("the pepper ring has no current pepper"));
        }
        if peppers.iter().any(|(_, p, _)| p.len() < MIN_PEPPER_LEN) {
            return Err(Error::InvalidInput("a pepper is shorter than 32 bytes"));
        }
        Ok(Self {
            peppers: Some(peppers),
        })
    }

    fn hmac_digest(pepper: &SecretBytes, token: &str) -> [u8; HASH_LEN] {
        // HMAC accepts keys of any length; the error branch is unreachable.
        match Hmac::<Sha256>::new_from_slice(pepper.expose_secret()) {
            Ok(mut mac) => {
                mac.update(token.as_bytes());
                mac.finalize().into_bytes().into()
            }
            Err(_) => [0; HASH_LEN],
        }
    }

    /// The hash a new row stores.
    pub fn hash(&self, token: &str) -> TokenHash {
        match self.peppers.as_ref().and_then(|r| r.current().ok()) {
            Some((id, pepper)) => TokenHash {
                digest: Self::hmac_digest(pepper, token),
                pepper_id: Some(id.clone()),
            },
            None => TokenHash {
                digest: Sha256::digest(token.as_bytes()).into(),
                pepper_id: None,
            },
        }
    }

    /// Every hash a stored row for `token` may have: the current pepper's first.
    pub fn candidates(&self, token: &str) -> Vec<TokenHash> {
        let current = self.hash(token);
        let mut out = vec![current];
        if let Some(ring) = &self.peppers {
            for (id, pepper, status) in ring.iter() {
                if status == token_core::KeyStatus::VerifyOnly {
                    out.push(TokenHash {
                        digest: Self::hmac_digest(pepper, token),
                        pepper_id: Some(id.clone()),
                    });
                }
            }
        }
        out
    }

    /// Whether `hash` was made with the current pepper (or plain SHA-256 when the
    /// hasher has no pepper).
    pub fn is_current(&self, hash: &TokenHash) -> bool {
        let current = self
            .peppers
            .as_ref()
            .and_then(|r| r.current().ok())
            .map(|(id, _)| id);
        hash.pepper_id.as_ref() == current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper(b: u8) -> SecretBytes {
        SecretBytes::new(vec![b; 32])
    }

    #[test]
    fn sha256_is_the_plain_digest() {
        let h = TokenHasher::sha256().hash("abc");
        assert_eq!(
            h.digest()[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts with ba7816bf"
        );
        assert!(h.pepper_id().is_none());
        assert_eq!(TokenHasher::sha256().candidates("abc").len(), 1);
    }

    #[test]
    fn peppers_rotate() {
        let mut ring = KeyRing::new(KeyId::new("p1").unwrap(), pepper(1));
        let old = TokenHasher::hmac(KeyRing::new(KeyId::new("p1").unwrap(), pepper(1)))
            .unwrap()
            .hash("tok");
        ring.rotate_to(KeyId::new("p2").unwrap(), pepper(2))
            .unwrap();
        let h = TokenHasher::hmac(ring).unwrap();
        let c = h.candidates("tok");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].pepper_str(), Some("p2"));
        assert!(c[1].ct_matches(&old));
        assert!(!c[0].ct_matches(&old));
        assert!(h.is_current(&c[0]));
        assert!(!h.is_current(&old));
        assert_ne!(c[0].digest(), TokenHasher::sha256().hash("tok").digest());
        let dbg = format!("{h:?}");
        assert!(dbg.contains("p2") && !dbg.contains("[2, 2"));
    }

    #[test]
    fn weak_rings_are_refused() {
        let short = KeyRing::new(KeyId::new("p").unwrap(), SecretBytes::new(vec![1; 8]));
        assert!(TokenHasher::hmac(short).is_err());
        assert!(TokenHasher::hmac(KeyRing::verify_only()).is_err());
        assert!(TokenHash::from_stored(&[0; 31], None).is_err());
        assert!(TokenHash::from_stored(&[0; 32], Some("p1")).is_ok());
    }
}
