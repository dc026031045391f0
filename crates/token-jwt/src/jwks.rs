//! JWK Sets (RFC 7517 section 5): publishing public keys and reading a fetched set.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use token_core::{KeyId, KeyRing};

use crate::algorithm::Algorithm;
use crate::error::{Error, Result};
use crate::jwk::{JwkIn, PublicKey};
use crate::key::VerifyingKey;

/// Longest JWKS text read, in bytes.
pub const MAX_JWKS_LEN: usize = 256 * 1024;
/// Most keys read from one JWKS.
pub const MAX_JWKS_KEYS: usize = 100;

/// A JWK Set holding public keys only.
///
/// Built from this crate's keys (each entry with `kid`, `alg` and `use`) to publish,
/// or read from JSON the caller fetched: this crate does no network I/O. A set that
/// carries any private or secret member (`d`, `p`, `k`, …) is refused whole.
#[derive(Default)]
pub struct Jwks {
    keys: Vec<JwkIn>,
}

#[derive(Deserialize)]
struct JwksIn {
    keys: Vec<JwkIn>,
}

#[derive(Serialize)]
struct JwksOut<'a> {
    keys: &'a [JwkIn],
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.keys
                    .iter()
                    .map(|k| (k.kid.as_deref(), k.alg.as_deref())),
            )
            .finish()
    }
}

impl Jwks {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a JWKS (`{"keys":[...]}`), bounded to [`MAX_JWKS_LEN`] bytes and
    /// [`MAX_JWKS_KEYS`] keys. Members this crate does not know (`x5c`, `x5t`, …) are
    /// dropped.
    ///
    /// # Errors
    /// [`Error::JwksTooLarge`]; [`Error::InvalidKey`] for malformed JSON;
    /// [`token_core::Error::DuplicateMember`] for a member named twice;
    /// [`Error::PrivateKeyInJwks`] for an entry with private or secret members.
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > MAX_JWKS_LEN {
            return Err(Error::JwksTooLarge("over 256 KiB"));
        }
        let not_a_set = || {
            Error::InvalidKey("not a JWK Set (a JSON object with a `keys` array of JWK objects)")
        };
        // A derived `Deserialize` also takes JSON arrays; a set and its keys are objects.
        // Read strictly, as tokens are: a member named twice (`keys` itself, or one
        // inside an entry) is refused rather than "the last one wins".
        let value: serde_json::Value =
            token_core::json::from_slice(json.as_bytes()).map_err(|e| match e {
                token_core::Error::DuplicateMember(_) => Error::Core(e),
                _ => not_a_set(),
            })?;
        let objects = value
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|keys| keys.iter().all(serde_json::Value::is_object));
        if !value.is_object() || !objects {
            return Err(not_a_set());
        }
        let set: JwksIn = serde_json::from_value(value).map_err(|_| not_a_set())?;
        if set.keys.len() > MAX_JWKS_KEYS {
            return Err(Error::JwksTooLarge("over 100 keys"));
        }
        if let Some(index) = set.keys.iter().position(JwkIn::has_private_parts) {
            return Err(Error::PrivateKeyInJwks { index });
        }
        Ok(Self { keys: set.keys })
    }

    /// The set as JSON, public members only.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&JwksOut { keys: &self.keys })
            .unwrap_or_else(|_| r#"{"keys":[]}"#.to_owned())
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `kid` of each entry, in order (`None` where an entry has none).
    pub fn key_ids(&self) -> impl Iterator<Item = Option<&str>> {
        self.keys.iter().map(|k| k.kid.as_deref())
    }

    /// Adds a signature verification key (with `kid`, `alg` and `use: "sig"`).
    pub fn push_verifying_key(&mut self, key: &VerifyingKey) {
        self.push_members(key.jwk_members());
    }

    pub(crate) fn push_members(&mut self, members: Map<String, Value>) {
        if let Ok(jwk) = serde_json::from_value::<JwkIn>(Value::Object(members)) {
            self.keys.push(jwk);
        }
    }

    pub(crate) fn entries(&self) -> &[JwkIn] {
        &self.keys
    }

    /// The signature verification keys, by `kid`.
    ///
    /// An entry is used when its `use` (if any) is `sig`, its `key_ops` (if any) allow
    /// `verify`, and its algorithm is supported. The algorithm is the entry's `alg`; an
    /// entry without `alg` gets the only algorithm its key fits (EC P-256 → ES256, EC
    /// P-384 → ES384, OKP Ed25519 → EdDSA), and an RSA entry without `alg` gets RS256,
    /// the algorithm OpenID Connect requires. Entries of other types, curves or
    /// algorithms (P-521, RS384, RSA-OAEP encryption keys, …) are skipped. An entry
    /// without `kid` is named by its RFC 7638 thumbprint.
    ///
    /// # Errors
    /// [`Error::EmptyKeySet`] when no entry is usable; an entry of a supported kind that
    /// is malformed or weak fails the whole set ([`Error::InvalidKey`],
    /// [`Error::WeakKey`], [`Error::KeyAlgorithmMismatch`]); so does a repeated `kid`
    /// ([`token_core::Error::DuplicateKeyId`]) or an invalid one.
    pub fn verifying_keys(&self) -> Result<KeyRing<VerifyingKey>> {
        let mut ring = KeyRing::verify_only();
        for jwk in &self.keys {
            if !jwk.allows("sig", "verify") {
                continue;
            }
            let alg = match jwk.alg.as_deref() {
                Some(name) => Algorithm::from_name(name),
                None => inferred_algorithm(jwk),
            };
            let Some(alg) = alg else { continue };
            let public = match PublicKey::from_jwk(jwk) {
                Ok(public) => public,
                Err(Error::UnsupportedKey(_)) => continue,
                Err(e) => return Err(e),
            };
            let kid = jwk.kid.as_deref().map(KeyId::new).transpose()?;
            let key = VerifyingKey::from_public(alg, public, kid)?;
            ring.insert_verify_only(key.key_id().clone(), key)?;
        }
        if ring.is_empty() {
            return Err(Error::EmptyKeySet);
        }
        Ok(ring)
    }
}

/// The one signature algorithm a key without `alg` fits.
fn inferred_algorithm(jwk: &JwkIn) -> Option<Algorithm> {
    match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("EC", Some("P-256")) => Some(Algorithm::Es256),
        ("EC", Some("P-384")) => Some(Algorithm::Es384),
        ("OKP", Some("Ed25519")) => Some(Algorithm::EdDsa),
        ("RSA", _) => Some(Algorithm::Rs256),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set naming `keys` twice was read with the last one winning (another reader
    /// may keep the first): refused, as a repeated `kid` is.
    #[test]
    fn a_member_named_twice_is_refused() {
        assert_eq!(
            Jwks::from_json(r#"{"keys":[],"keys":[{"kty":"OKP"}]}"#).map(drop),
            Err(Error::Core(token_core::Error::DuplicateMember(
                "keys".into()
            )))
        );
        assert_eq!(
            Jwks::from_json(r#"{"keys":[{"kty":"OKP","crv":"Ed25519","crv":"X25519"}]}"#).map(drop),
            Err(Error::Core(token_core::Error::DuplicateMember(
                "crv".into()
            )))
        );
        assert!(Jwks::from_json(r#"{"keys":[]}"#).is_ok());
    }
}
