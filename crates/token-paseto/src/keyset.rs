//! Public-key discovery for PASETO: a JSON set of PASERK public keys, the counterpart
//! of a JWKS, which the PASETO ecosystem lacks.
//!
//! ```text
//! {
//!   "keys": [
//!     { "kid": "k4.pid.…", "paserk": "k4.public.…", "version": "v4", "purpose": "public" }
//!   ]
//! }
//! ```
//!
//! `kid` is the PASERK id of `paserk` — what issuers write in the footer `kid`. A reader
//! recomputes it and refuses an entry where they differ, refuses any `local` or
//! `secret` key (a key set is public by construction), and bounds the document's size
//! and number of keys before parsing a key. The publisher fetches nothing and neither
//! does this type: callers fetch the document themselves, from a configured URL.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::tokens::PublicVerifier;
use crate::version::{V3, V4, Version};

/// The largest key-set document accepted, in bytes.
pub const MAX_KEYSET_LEN: usize = 64 * 1024;
/// The most keys accepted in one set.
pub const MAX_KEYSET_KEYS: usize = 100;

#[derive(Serialize, Deserialize)]
struct Document {
    keys: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    kid: String,
    paserk: String,
    version: String,
    purpose: String,
}

/// A set of PASETO public keys, v4 and v3.
#[derive(Debug, Clone, Default)]
pub struct PublicKeySet {
    v4: Vec<PublicKey<V4>>,
    v3: Vec<PublicKey<V3>>,
}

fn entry<V: Version>(key: &PublicKey<V>) -> Entry {
    Entry {
        kid: key.id().to_string(),
        paserk: key.to_paserk(),
        version: format!("v{}", &V::PASERK.prefix()[1..]),
        purpose: "public".into(),
    }
}

fn parse_key<V: Version>(e: &Entry) -> Result<PublicKey<V>> {
    let key = PublicKey::<V>::from_paserk(&e.paserk)?;
    if key.id().as_str() != e.kid {
        return Err(Error::InvalidPaserk(
            "key set entry whose kid is not its key's id",
        ));
    }
    Ok(key)
}

impl PublicKeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a v4 key (ignored if already present).
    pub fn push_v4(&mut self, key: PublicKey<V4>) {
        if !self.v4.iter().any(|k| k.id() == key.id()) {
            self.v4.push(key);
        }
    }

    /// Adds a v3 key (ignored if already present).
    pub fn push_v3(&mut self, key: PublicKey<V3>) {
        if !self.v3.iter().any(|k| k.id() == key.id()) {
            self.v3.push(key);
        }
    }

    /// The v4 keys.
    pub fn v4(&self) -> &[PublicKey<V4>] {
        &self.v4
    }

    /// The v3 keys.
    pub fn v3(&self) -> &[PublicKey<V3>] {
        &self.v3
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        let keys = self
            .v4
            .iter()
            .map(entry)
            .chain(self.v3.iter().map(entry))
            .collect();
        serde_json::to_string(&Document { keys }).unwrap_or_default()
    }

    /// Parses a key-set document, with the checks a JWKS gets
    /// (`token_jwt::Jwks`): bounded, read strictly ([`token_core::json`]: a member
    /// named twice is refused), and each key once.
    ///
    /// # Errors
    /// [`Error::InvalidPaserk`] for an oversized document, too many keys, an unknown
    /// version or purpose, a non-public key, or a `kid` that is not the key's id;
    /// [`token_core::Error::DuplicateKeyId`] for a key listed twice, and
    /// [`token_core::Error::DuplicateMember`] for a member named twice.
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > MAX_KEYSET_LEN {
            return Err(Error::InvalidPaserk("key set larger than 64 KiB"));
        }
        let doc: Document = token_core::json::from_slice(json.as_bytes()).map_err(|e| match e {
            token_core::Error::DuplicateMember(_) => Error::Core(e),
            _ => Error::InvalidPaserk("not a key-set document {\"keys\": [...]}"),
        })?;
        if doc.keys.len() > MAX_KEYSET_KEYS {
            return Err(Error::InvalidPaserk("key set with more than 100 keys"));
        }
        let mut set = Self::new();
        let mut seen = std::collections::BTreeSet::new();
        for e in &doc.keys {
            if e.purpose != "public" {
                return Err(Error::InvalidPaserk("key sets hold public keys only"));
            }
            // The `kid` is checked to be the key's id below, so a repeated `kid` is a
            // repeated key: refused, as a JWKS refuses a repeated `kid`, rather than
            // silently dropped.
            if !seen.insert(e.kid.as_str()) {
                return Err(token_core::Error::DuplicateKeyId(e.kid.clone()).into());
            }
            match e.version.as_str() {
                "v4" => set.push_v4(parse_key::<V4>(e)?),
                "v3" => set.push_v3(parse_key::<V3>(e)?),
                _ => {
                    return Err(Error::InvalidPaserk(
                        "key set entry of an unsupported version",
                    ));
                }
            }
        }
        Ok(set)
    }

    /// A verifier trusting every v4 key of the set.
    ///
    /// # Errors
    /// Never in practice (ids are unique in a set); typed for future rules.
    pub fn verifier_v4(&self) -> Result<PublicVerifier<V4>> {
        PublicVerifier::from_keys(self.v4.iter().cloned())
    }

    /// A verifier trusting every v3 key of the set.
    ///
    /// # Errors
    /// As [`PublicKeySet::verifier_v4`].
    pub fn verifier_v3(&self) -> Result<PublicVerifier<V3>> {
        PublicVerifier::from_keys(self.v3.iter().cloned())
    }
}

impl From<&PublicVerifier<V4>> for PublicKeySet {
    fn from(v: &PublicVerifier<V4>) -> Self {
        let mut set = Self::new();
        for (_, key, _) in v.keys().iter() {
            set.push_v4(key.clone());
        }
        set
    }
}

impl From<&PublicVerifier<V3>> for PublicKeySet {
    fn from(v: &PublicVerifier<V3>) -> Self {
        let mut set = Self::new();
        for (_, key, _) in v.keys().iter() {
            set.push_v3(key.clone());
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{LocalKey, SecretKey};
    use crate::tokens::PublicIssuer;
    use secrecy::ExposeSecret;
    use token_core::{Claims, Validation};

    #[test]
    fn round_trip_and_verify_through_a_published_set() {
        let mut issuer = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
        let old = issuer.sign(&Claims::new(()).token_id("a")).unwrap();
        issuer
            .rotate_to(SecretKey::<V4>::generate().unwrap())
            .unwrap();
        let mut set = PublicKeySet::from(&issuer.verifier());
        set.push_v3(SecretKey::<V3>::generate().unwrap().public_key().clone());
        let json = set.to_json();
        let back = PublicKeySet::from_json(&json).unwrap();
        assert_eq!(back.v4().len(), 2);
        assert_eq!(back.v3().len(), 1);
        let v = Validation::new().allow_non_expiring_tokens();
        back.verifier_v4()
            .unwrap()
            .verify::<()>(old.expose_secret(), &v)
            .unwrap();
    }

    #[test]
    fn refuses_lies_and_secrets() {
        let key = SecretKey::<V4>::generate().unwrap();
        let other = SecretKey::<V4>::generate().unwrap();
        let lie = format!(
            r#"{{"keys":[{{"kid":"{}","paserk":"{}","version":"v4","purpose":"public"}}]}}"#,
            other.public_key().id(),
            key.public_key().to_paserk()
        );
        assert!(matches!(
            PublicKeySet::from_json(&lie),
            Err(Error::InvalidPaserk(_))
        ));
        let local = LocalKey::<V4>::generate().unwrap();
        let secret = format!(
            r#"{{"keys":[{{"kid":"{}","paserk":"{}","version":"v4","purpose":"local"}}]}}"#,
            local.id(),
            local.to_paserk().expose_secret()
        );
        assert!(matches!(
            PublicKeySet::from_json(&secret),
            Err(Error::InvalidPaserk(_))
        ));
        let mislabelled = secret.replace("\"local\"", "\"public\"");
        assert!(PublicKeySet::from_json(&mislabelled).is_err());
        assert!(PublicKeySet::from_json("[]").is_err());
        assert!(PublicKeySet::from_json(&"x".repeat(MAX_KEYSET_LEN + 1)).is_err());
        let many = format!(
            r#"{{"keys":[{}]}}"#,
            vec![r#"{"kid":"a","paserk":"b","version":"v4","purpose":"public"}"#; 101].join(",")
        );
        assert!(matches!(
            PublicKeySet::from_json(&many),
            Err(Error::InvalidPaserk(_))
        ));
    }

    /// A set listing one key twice used to be accepted, the copy silently dropped,
    /// while a JWKS with a repeated `kid` is refused. Refused here too, and so is a
    /// member named twice anywhere in the document.
    #[test]
    fn a_key_listed_twice_is_refused_like_a_repeated_jwks_kid() {
        let key = SecretKey::<V4>::generate().unwrap();
        let mut set = PublicKeySet::new();
        set.push_v4(key.public_key().clone());
        let one: serde_json::Value = serde_json::from_str(&set.to_json()).unwrap();
        let entry = one["keys"][0].clone();
        let twice = serde_json::json!({ "keys": [entry.clone(), entry.clone()] }).to_string();
        assert!(matches!(
            PublicKeySet::from_json(&twice),
            Err(Error::Core(token_core::Error::DuplicateKeyId(kid))) if kid == key.public_key().id().as_str()
        ));
        let member = format!(r#"{{"keys":[{entry}],"keys":[]}}"#);
        assert!(matches!(
            PublicKeySet::from_json(&member),
            Err(Error::Core(token_core::Error::DuplicateMember(name))) if name == "keys"
        ));
        assert_eq!(
            PublicKeySet::from_json(&set.to_json()).unwrap().v4().len(),
            1
        );
    }
}
