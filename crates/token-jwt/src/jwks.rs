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
    /// P-384 → ES384, EC P-521 → ES512, OKP Ed25519 → EdDSA), and an RSA entry without
    /// `alg` gets RS256, the algorithm OpenID Connect requires. Entries of other types,
    /// curves or algorithms (secp256k1, Ed448, RSA-OAEP encryption keys, …) are skipped;
    /// [`Jwks::skipped_verifying_keys`] says which, and why. An entry without `kid` is
    /// named by its RFC 7638 thumbprint.
    ///
    /// # Errors
    /// [`Error::EmptyKeySet`] when no entry is usable; an entry of a supported kind that
    /// is malformed or weak fails the whole set ([`Error::InvalidKey`],
    /// [`Error::WeakKey`], [`Error::KeyAlgorithmMismatch`]); so does a repeated `kid`
    /// ([`token_core::Error::DuplicateKeyId`]) or an invalid one.
    pub fn verifying_keys(&self) -> Result<KeyRing<VerifyingKey>> {
        let mut ring = KeyRing::verify_only();
        for jwk in &self.keys {
            let Ok((alg, public)) = signature_key(jwk)? else {
                continue;
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

    /// The entries [`Jwks::verifying_keys`] skips, in order, each with why: not a
    /// signature key, an algorithm or a key type this crate does not verify. (An entry
    /// that is malformed fails `verifying_keys` instead, and is not listed here.)
    pub fn skipped_verifying_keys(&self) -> Vec<SkippedKey> {
        self.keys
            .iter()
            .enumerate()
            .filter_map(|(index, jwk)| match signature_key(jwk) {
                Ok(Err(reason)) => Some(SkippedKey {
                    index,
                    kid: jwk.kid.as_deref().map(crate::error::echo),
                    reason,
                }),
                Ok(Ok(_)) | Err(_) => None,
            })
            .collect()
    }
}

/// A JWKS entry that is not used to verify signatures, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedKey {
    /// The entry's position in `keys`.
    pub index: usize,
    /// Its `kid`, if any, cut to something safe to echo (as error messages do).
    pub kid: Option<String>,
    /// Why it is skipped.
    pub reason: SkipReason,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}", self.index)?;
        if let Some(kid) = &self.kid {
            write!(f, " (kid {kid})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Why a JWKS entry is not a signature verification key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Its `use` or `key_ops` do not allow verifying signatures (an encryption key).
    NotForSignatures,
    /// Its `alg` names an algorithm this crate does not verify (`RSA-OAEP`,
    /// `ECDH-ES`, `HS256`, …), echoed safely.
    UnsupportedAlgorithm(String),
    /// It has no `alg`, and its key type or curve fits no supported algorithm (an
    /// X25519 key, an `oct` key).
    NoAlgorithm,
    /// Its key type or curve is not supported (secp256k1, Ed448, …).
    UnsupportedKey(&'static str),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotForSignatures => {
                f.write_str("not a signature key (its `use` or `key_ops` say otherwise)")
            }
            Self::UnsupportedAlgorithm(alg) => write!(f, "algorithm `{alg}` is not verified"),
            Self::NoAlgorithm => {
                f.write_str("no `alg`, and its key type implies no signature algorithm")
            }
            Self::UnsupportedKey(why) => write!(f, "unsupported key: {why}"),
        }
    }
}

/// What an entry is for: `Ok(Ok(..))` a signature key and its algorithm, `Ok(Err(..))`
/// skipped, and why; `Err(..)` malformed.
fn signature_key(jwk: &JwkIn) -> Result<std::result::Result<(Algorithm, PublicKey), SkipReason>> {
    if !jwk.allows("sig", "verify") {
        return Ok(Err(SkipReason::NotForSignatures));
    }
    let alg = match jwk.alg.as_deref() {
        Some(name) => match Algorithm::from_name(name) {
            Some(alg) => alg,
            None => {
                return Ok(Err(SkipReason::UnsupportedAlgorithm(crate::error::echo(
                    name,
                ))));
            }
        },
        None => match inferred_algorithm(jwk) {
            Some(alg) => alg,
            // An unsupported curve says more than the missing `alg` it implies.
            None => {
                return Ok(Err(match PublicKey::from_jwk(jwk) {
                    Err(Error::UnsupportedKey(why)) => SkipReason::UnsupportedKey(why),
                    _ => SkipReason::NoAlgorithm,
                }));
            }
        },
    };
    match PublicKey::from_jwk(jwk) {
        Ok(public) => Ok(Ok((alg, public))),
        Err(Error::UnsupportedKey(why)) => Ok(Err(SkipReason::UnsupportedKey(why))),
        Err(e) => Err(e),
    }
}

/// The one signature algorithm a key without `alg` fits.
fn inferred_algorithm(jwk: &JwkIn) -> Option<Algorithm> {
    match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("EC", Some("P-256")) => Some(Algorithm::Es256),
        ("EC", Some("P-384")) => Some(Algorithm::Es384),
        ("EC", Some("P-521")) => Some(Algorithm::Es512),
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
