//! HMAC JWS keys, behind a loudly named opt-in constructor.
//!
//! An HMAC key is a shared secret: whoever verifies can also forge. It implements
//! [`TokenSigner`](token_core::TokenSigner) and [`TokenVerifier`](token_core::TokenVerifier)
//! but never [`AsymmetricSigner`](token_core::AsymmetricSigner), so a job that requires a
//! public-key signature cannot be given one.

use std::fmt;

use josekit::JoseError;
use josekit::jws::alg::hmac::HmacJwsSigner;
use josekit::jws::{JwsAlgorithm, JwsSigner, JwsVerifier};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use token_core::{KeyId, SecretBytes, constant_time_eq};
use zeroize::Zeroizing;

use crate::algorithm::HmacAlgorithm;
use crate::b64;
use crate::error::{Error, Result};
use crate::jwk::{JwkIn, push_member};

/// A shared HMAC secret for exactly one [`HmacAlgorithm`].
///
/// Not `Clone`; `Debug` shows only the algorithm and key id. Its key id defaults to the
/// RFC 7638 thumbprint of the `oct` JWK.
pub struct HmacKey {
    alg: HmacAlgorithm,
    kid: KeyId,
    secret: SecretBytes,
    verifier: ConstantTimeHmacVerifier,
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl HmacKey {
    /// Opts in to HMAC with a shared `secret`: anyone who can verify these tokens can
    /// also mint them. Prefer a [`SigningKey`](crate::SigningKey).
    ///
    /// The secret must be at least as long as the hash output (32, 48 or 64 bytes) and
    /// should be random. Text that looks like a PEM or JWK key is refused, so a public
    /// key can never become an HMAC secret by mistake.
    ///
    /// # Errors
    /// [`Error::WeakKey`] for a short secret; [`Error::InvalidKey`] for a secret that
    /// looks like a PEM or JSON key.
    pub fn dangerous_shared_secret(alg: HmacAlgorithm, secret: SecretBytes) -> Result<Self> {
        let bytes = secret.expose_secret();
        if bytes.len() < alg.output_len() {
            return Err(Error::WeakKey(match alg {
                HmacAlgorithm::Hs256 => "HS256 secret shorter than 32 bytes",
                HmacAlgorithm::Hs384 => "HS384 secret shorter than 48 bytes",
                HmacAlgorithm::Hs512 => "HS512 secret shorter than 64 bytes",
            }));
        }
        if looks_like_a_key(bytes) {
            return Err(Error::InvalidKey(
                "an HMAC secret must be random bytes, not a PEM, DER or JWK key",
            ));
        }
        let signer = alg
            .josekit()
            .signer_from_bytes(bytes)
            .map_err(|_| Error::InvalidKey("josekit refused the HMAC secret"))?;
        let kid = KeyId::new(b64::encode(Sha256::digest(
            thumbprint_input(bytes).as_bytes(),
        )))?;
        Ok(Self {
            alg,
            kid,
            secret,
            verifier: ConstantTimeHmacVerifier { signer },
        })
    }

    /// Opts in to HMAC with the secret of an `oct` JWK (`k`). Its `kid`, when present,
    /// becomes the key id; its `alg`, when present, must be `alg`.
    ///
    /// # Errors
    /// As [`HmacKey::dangerous_shared_secret`], and [`Error::InvalidKey`] for a JWK that
    /// is not `oct` or whose `use`/`key_ops` forbid signing.
    pub fn dangerous_from_jwk(alg: HmacAlgorithm, jwk: &str) -> Result<Self> {
        let jwk = JwkIn::parse(jwk)?;
        if jwk.kty != "oct" {
            return Err(Error::InvalidKey("an HMAC key must be an `oct` JWK"));
        }
        if let Some(own) = jwk.alg.as_deref() {
            if own != alg.name() {
                return Err(Error::KeyAlgorithmMismatch {
                    expected: alg.name(),
                    reason: format!("the JWK says `alg: {}`", crate::error::echo(own)),
                });
            }
        }
        if !jwk.allows("sig", "sign") {
            return Err(Error::InvalidKey(
                "the JWK's `use` or `key_ops` forbid signing",
            ));
        }
        let k = jwk.secret("k")?;
        let key = Self::dangerous_shared_secret(alg, SecretBytes::from_slice(&k))?;
        match jwk.kid.as_deref() {
            Some(kid) => Ok(key.with_key_id(KeyId::new(kid)?)),
            None => Ok(key),
        }
    }

    /// Replaces the key id.
    #[must_use]
    pub fn with_key_id(mut self, kid: KeyId) -> Self {
        self.kid = kid;
        self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> HmacAlgorithm {
        self.alg
    }

    /// The key id.
    pub fn key_id(&self) -> &KeyId {
        &self.kid
    }

    /// The secret as an `oct` JWK with `kid`, `alg` and `use: "sig"`, in a
    /// [`SecretString`]. For moving the key into a secret store; never publish it.
    pub fn dangerous_to_secret_jwk(&self) -> SecretString {
        let mut out = Zeroizing::new(String::with_capacity(1024));
        out.push('{');
        push_member(&mut out, "kty", "oct");
        push_member(&mut out, "kid", self.kid.as_str());
        push_member(&mut out, "alg", self.alg.name());
        push_member(&mut out, "use", "sig");
        push_member(
            &mut out,
            "k",
            &Zeroizing::new(b64::encode(self.secret.expose_secret())),
        );
        out.push('}');
        crate::jwk::into_secret(&out)
    }

    pub(crate) fn signer(&self) -> &dyn JwsSigner {
        &self.verifier.signer
    }

    pub(crate) fn verifier(&self) -> &dyn JwsVerifier {
        &self.verifier
    }
}

/// Whether `secret` is really a key in a standard encoding: a PEM block, a DER
/// SubjectPublicKeyInfo, or a JWK. (Random bytes are none of these, except with
/// negligible probability.)
fn looks_like_a_key(secret: &[u8]) -> bool {
    secret.trim_ascii_start().starts_with(b"-----BEGIN")
        || openssl::pkey::PKey::public_key_from_der(secret).is_ok()
        || serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(secret)
            .is_ok_and(|jwk| jwk.contains_key("kty"))
}

/// The RFC 7638 thumbprint input of an `oct` key.
fn thumbprint_input(secret: &[u8]) -> Zeroizing<String> {
    let k = Zeroizing::new(b64::encode(secret));
    let mut s = Zeroizing::new(String::with_capacity(k.len() + 24));
    s.push_str(r#"{"k":""#);
    s.push_str(&k);
    s.push_str(r#"","kty":"oct"}"#);
    s
}

/// josekit's HMAC verifier compares tags with `!=`, which returns early at the first
/// differing byte. This one recomputes the tag with josekit's signer and compares in
/// constant time.
#[derive(Clone)]
struct ConstantTimeHmacVerifier {
    signer: HmacJwsSigner,
}

impl fmt::Debug for ConstantTimeHmacVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConstantTimeHmacVerifier([REDACTED])")
    }
}

impl JwsVerifier for ConstantTimeHmacVerifier {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        self.signer.algorithm()
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let tag = self.signer.sign(message)?;
        if constant_time_eq(&tag, signature) {
            Ok(())
        } else {
            Err(JoseError::InvalidSignature(anyhow::Error::msg(
                "HMAC tag mismatch",
            )))
        }
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_and_keys_are_refused() {
        for alg in HmacAlgorithm::ALL {
            let short = SecretBytes::new(vec![7; alg.output_len() - 1]);
            assert!(matches!(
                HmacKey::dangerous_shared_secret(alg, short),
                Err(Error::WeakKey(_))
            ));
            let ok = SecretBytes::new(vec![7; alg.output_len()]);
            assert!(HmacKey::dangerous_shared_secret(alg, ok).is_ok());
        }
        let pem = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
        assert!(matches!(
            HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::from_slice(pem)),
            Err(Error::InvalidKey(_))
        ));
        let jwk =
            br#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"}"#;
        assert!(matches!(
            HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::from_slice(jwk)),
            Err(Error::InvalidKey(_))
        ));
    }

    #[test]
    fn verifier_is_exact() {
        let key =
            HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::new(vec![1; 32]))
                .unwrap();
        let tag = key.signer().sign(b"msg").unwrap();
        key.verifier().verify(b"msg", &tag).unwrap();
        assert!(key.verifier().verify(b"msh", &tag).is_err());
        assert!(key.verifier().verify(b"msg", &tag[..31]).is_err());
        let mut flipped = tag.clone();
        flipped[31] ^= 1;
        assert!(key.verifier().verify(b"msg", &flipped).is_err());
        assert!(!format!("{key:?}").contains("[1, 1"));
    }

    /// RFC 7520 section 4.4: HS256 reproduces the cookbook's tag.
    #[test]
    fn rfc7520_4_4_tag_is_reproduced() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/vectors/jose/jws/4_4.hmac-sha2_integrity_protection.json"
        ))
        .unwrap();
        let key = HmacKey::dangerous_from_jwk(HmacAlgorithm::Hs256, &v["input"]["key"].to_string())
            .unwrap();
        let input = v["signing"]["sig-input"].as_str().unwrap();
        let tag = key.signer().sign(input.as_bytes()).unwrap();
        assert_eq!(b64::encode(&tag), v["signing"]["sig"].as_str().unwrap());
        key.verifier().verify(input.as_bytes(), &tag).unwrap();
    }

    #[test]
    fn jwk_round_trip() {
        let key =
            HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs384, SecretBytes::new(vec![9; 48]))
                .unwrap();
        let jwk = key.dangerous_to_secret_jwk();
        let again = HmacKey::dangerous_from_jwk(
            HmacAlgorithm::Hs384,
            secrecy::ExposeSecret::expose_secret(&jwk),
        )
        .unwrap();
        assert_eq!(again.key_id(), key.key_id());
        assert!(matches!(
            HmacKey::dangerous_from_jwk(
                HmacAlgorithm::Hs256,
                secrecy::ExposeSecret::expose_secret(&jwk)
            ),
            Err(Error::KeyAlgorithmMismatch { .. })
        ));
    }
}
