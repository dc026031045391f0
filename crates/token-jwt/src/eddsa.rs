//! EdDSA (Ed25519) behind josekit's `JwsSigner`/`JwsVerifier` traits, on `ed25519-dalek`.
//!
//! josekit stays the JOSE layer; only the primitive changes. `ed25519-dalek` verifies
//! several times faster than OpenSSL 3's Ed25519, and its `verify_strict` refuses
//! non-canonical and small-order encodings (RFC 8032 section 5.1.7 plus the checks
//! that make signatures non-malleable).

use std::fmt;

use ed25519_dalek::{Signature, Signer as _};
use josekit::JoseError;
use josekit::jws::{JwsAlgorithm, JwsSigner, JwsVerifier};

/// Ed25519 signature length.
pub(crate) const SIGNATURE_LEN: usize = 64;

/// josekit's EdDSA algorithm object, for `algorithm()`.
const EDDSA: &josekit::jws::alg::eddsa::EddsaJwsAlgorithm = &josekit::jws::EdDSA;

/// An Ed25519 signer. The secret key is zeroized on drop (by `ed25519-dalek`).
#[derive(Clone)]
pub(crate) struct Ed25519Signer {
    key: ed25519_dalek::SigningKey,
}

impl Ed25519Signer {
    pub(crate) fn new(key: ed25519_dalek::SigningKey) -> Self {
        Self { key }
    }

    #[cfg(test)]
    pub(crate) fn key(&self) -> &ed25519_dalek::SigningKey {
        &self.key
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519Signer([REDACTED])")
    }
}

impl JwsSigner for Ed25519Signer {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        EDDSA
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        Ok(self.key.sign(message).to_bytes().to_vec())
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

/// An Ed25519 verifier using `verify_strict`.
#[derive(Clone, Debug)]
pub(crate) struct Ed25519Verifier {
    key: ed25519_dalek::VerifyingKey,
}

impl Ed25519Verifier {
    pub(crate) fn new(key: ed25519_dalek::VerifyingKey) -> Self {
        Self { key }
    }
}

impl JwsVerifier for Ed25519Verifier {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        EDDSA
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let bad = || JoseError::InvalidSignature(anyhow::Error::msg("invalid Ed25519 signature"));
        let signature = Signature::from_slice(signature).map_err(|_| bad())?;
        self.key
            .verify_strict(message, &signature)
            .map_err(|_| bad())
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTOR: &str = include_str!("../tests/vectors/jose/curve25519/jws.json");

    fn field<'a>(v: &'a Value, path: &[&str]) -> &'a str {
        path.iter().fold(v, |v, k| &v[*k]).as_str().unwrap()
    }

    fn key32(s: &str) -> [u8; 32] {
        crate::b64::decode(s).unwrap().try_into().unwrap()
    }

    /// RFC 8037 appendix A.4/A.5 through the cookbook file: the signature is
    /// deterministic, so the dalek signer must reproduce it byte for byte, and the
    /// dalek verifier must accept it.
    #[test]
    fn rfc8037_vector_signs_and_verifies() {
        let v: Value = serde_json::from_str(VECTOR).unwrap();
        let d = key32(field(&v, &["input", "key", "d"]));
        let x = key32(field(&v, &["input", "key", "x"]));
        let signer = Ed25519Signer::new(ed25519_dalek::SigningKey::from_bytes(&d));
        assert_eq!(signer.key().verifying_key().to_bytes(), x);
        let input = field(&v, &["signing", "sig-input"]);
        let sig = signer.sign(input.as_bytes()).unwrap();
        assert_eq!(crate::b64::encode(&sig), field(&v, &["signing", "sig"]));
        assert_eq!(signer.signature_len(), 64);
        assert_eq!(signer.algorithm().name(), "EdDSA");

        let verifier = Ed25519Verifier::new(ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap());
        verifier.verify(input.as_bytes(), &sig).unwrap();
        assert!(verifier.verify(b"other message", &sig).is_err());
        assert!(verifier.verify(input.as_bytes(), &sig[..63]).is_err());
        assert!(verifier.verify(input.as_bytes(), &[]).is_err());
        assert!(!format!("{signer:?}").contains(&format!("{d:?}")));
    }

    /// The dalek verifier agrees with josekit's own (OpenSSL) EdDSA verifier.
    #[test]
    fn agrees_with_openssl() {
        let v: Value = serde_json::from_str(VECTOR).unwrap();
        let jwk =
            josekit::jwk::Jwk::from_bytes(serde_json::to_vec(&v["input"]["key"]).unwrap()).unwrap();
        let openssl = josekit::jws::EdDSA
            .verifier_from_jwk(&jwk.to_public_key().unwrap())
            .unwrap();
        let d = key32(field(&v, &["input", "key", "d"]));
        let signer = Ed25519Signer::new(ed25519_dalek::SigningKey::from_bytes(&d));
        for msg in [&b""[..], b"a", b"eyJhbGciOiJFZERTQSJ9.e30"] {
            let sig = signer.sign(msg).unwrap();
            openssl.verify(msg, &sig).unwrap();
        }
    }
}
