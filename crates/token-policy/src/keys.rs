//! The keys each job accepts. Only asymmetric signers can become an [`AccessKey`] and
//! only `local` PASETO ciphers a [`PaymentKey`]: an HMAC JWT key for access tokens, or
//! a signed (readable) format for payments, does not type-check.
//!
//! The JWT variants exist with the `jwt` feature; the access enums are
//! `#[non_exhaustive]`, so code that matches on them builds whichever features the
//! dependency graph turns on.

use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use token_core::{
    AsymmetricSigner, Claims, KeyId, TokenDecrypter, TokenEncrypter, TokenFormat, TokenSigner,
    TokenVerifier, Validation, Verified,
};
#[cfg(feature = "jwt")]
use token_jwt::{Algorithm, JwtVerifier, SigningKeySet, VerifyingKey};
use token_paseto::{LocalCipher, PublicIssuer, PublicKeySet, PublicVerifier, V3, V4};

use crate::error::{Error, Result};
#[cfg(feature = "jwt")]
use crate::policy::Job;
use crate::policy::{AccessFormat, PaymentFormat};

/// The signing keys of the access job.
#[derive(Debug)]
#[non_exhaustive]
pub enum AccessKey {
    /// PASETO `v4.public` (the default).
    PasetoV4(PublicIssuer<V4>),
    /// PASETO `v3.public` (NIST).
    PasetoV3(PublicIssuer<V3>),
    /// JWT, ES256 or EdDSA only (OAuth/OIDC interop).
    #[cfg(feature = "jwt")]
    Jwt(SigningKeySet),
}

impl From<PublicIssuer<V4>> for AccessKey {
    fn from(k: PublicIssuer<V4>) -> Self {
        Self::PasetoV4(k)
    }
}

impl From<PublicIssuer<V3>> for AccessKey {
    fn from(k: PublicIssuer<V3>) -> Self {
        Self::PasetoV3(k)
    }
}

impl AccessKey {
    /// A JWT access key set. Only ES256 and EdDSA are accepted: RSA keys are large and
    /// slow, and HMAC keys cannot reach this type at all.
    ///
    /// # Errors
    /// [`Error::KeyNotAllowed`] for another algorithm.
    #[cfg(feature = "jwt")]
    pub fn jwt(keys: SigningKeySet) -> Result<Self> {
        match keys.algorithm() {
            Algorithm::Es256 | Algorithm::EdDsa => Ok(Self::Jwt(keys)),
            _ => Err(Error::KeyNotAllowed {
                job: Job::Access,
                reason: "JWT access tokens are ES256 or EdDSA",
            }),
        }
    }

    /// The format this key issues.
    pub fn format(&self) -> AccessFormat {
        match self {
            Self::PasetoV4(_) => AccessFormat::PasetoV4Public,
            Self::PasetoV3(_) => AccessFormat::PasetoV3Public,
            #[cfg(feature = "jwt")]
            Self::Jwt(k) if k.algorithm() == Algorithm::EdDsa => AccessFormat::JwtEdDsa,
            #[cfg(feature = "jwt")]
            Self::Jwt(_) => AccessFormat::JwtEs256,
        }
    }

    /// Ids of every key in the ring (current first is not guaranteed).
    pub fn key_ids(&self) -> Vec<String> {
        match self {
            Self::PasetoV4(k) => k.keys().iter().map(|(id, _, _)| id.to_string()).collect(),
            Self::PasetoV3(k) => k.keys().iter().map(|(id, _, _)| id.to_string()).collect(),
            #[cfg(feature = "jwt")]
            Self::Jwt(k) => k.keys().iter().map(|(id, _, _)| id.to_string()).collect(),
        }
    }
}

impl TokenSigner for AccessKey {
    type Error = Error;

    fn key_id(&self) -> &KeyId {
        match self {
            Self::PasetoV4(k) => k.key_id(),
            Self::PasetoV3(k) => k.key_id(),
            #[cfg(feature = "jwt")]
            Self::Jwt(k) => k.key_id(),
        }
    }

    fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<SecretString> {
        Ok(match self {
            Self::PasetoV4(k) => k.sign(claims)?,
            Self::PasetoV3(k) => k.sign(claims)?,
            #[cfg(feature = "jwt")]
            Self::Jwt(k) => k.sign_as(&token_jwt::TokenType::AccessToken, claims)?,
        })
    }
}

impl AsymmetricSigner for AccessKey {
    type Verifier = AccessVerifier;

    fn verifier(&self) -> AccessVerifier {
        match self {
            Self::PasetoV4(k) => AccessVerifier::PasetoV4(k.verifier()),
            Self::PasetoV3(k) => AccessVerifier::PasetoV3(k.verifier()),
            #[cfg(feature = "jwt")]
            Self::Jwt(k) => AccessVerifier::Jwt(k.verifier()),
        }
    }
}

/// The public verifying keys of the access job.
#[derive(Debug)]
#[non_exhaustive]
pub enum AccessVerifier {
    /// PASETO `v4.public`.
    PasetoV4(PublicVerifier<V4>),
    /// PASETO `v3.public`.
    PasetoV3(PublicVerifier<V3>),
    /// JWT (the algorithm is pinned by each key).
    #[cfg(feature = "jwt")]
    Jwt(JwtVerifier<VerifyingKey>),
}

impl AccessVerifier {
    /// The JWK Set (RFC 7517) that publishes these keys, current and retired, for
    /// `/.well-known/jwks.json`: `Some` for JWT keys, `None` for PASETO keys.
    #[cfg_attr(not(feature = "jwt"), allow(clippy::unused_self))]
    pub fn jwks_json(&self) -> Option<String> {
        #[cfg(feature = "jwt")]
        if let Self::Jwt(v) = self {
            return Some(v.to_jwks().to_json());
        }
        None
    }

    /// The PASERK public-key set that publishes these keys, current and retired, for
    /// `/.well-known/paseto-keys.json`: `Some` for PASETO keys, `None` for JWT keys.
    pub fn paseto_key_set_json(&self) -> Option<String> {
        match self {
            Self::PasetoV4(v) => Some(PublicKeySet::from(v).to_json()),
            Self::PasetoV3(v) => Some(PublicKeySet::from(v).to_json()),
            #[cfg(feature = "jwt")]
            Self::Jwt(_) => None,
        }
    }

    /// Whether a token of `format` can be for this verifier at all.
    pub fn accepts(&self, format: &TokenFormat) -> bool {
        use token_core::{PasetoPurpose, PasetoVersion};
        match self {
            Self::PasetoV4(_) => matches!(
                format,
                TokenFormat::Paseto {
                    version: PasetoVersion::V4,
                    purpose: PasetoPurpose::Public,
                    ..
                }
            ),
            Self::PasetoV3(_) => matches!(
                format,
                TokenFormat::Paseto {
                    version: PasetoVersion::V3,
                    purpose: PasetoPurpose::Public,
                    ..
                }
            ),
            #[cfg(feature = "jwt")]
            Self::Jwt(_) => matches!(format, TokenFormat::Jws),
        }
    }
}

impl TokenVerifier for AccessVerifier {
    type Error = Error;

    fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        Ok(match self {
            Self::PasetoV4(v) => v.verify(token, validation)?,
            Self::PasetoV3(v) => v.verify(token, validation)?,
            #[cfg(feature = "jwt")]
            Self::Jwt(v) => v.verify(token, validation)?,
        })
    }
}

/// The keys of the payment job: `local` (encrypted) PASETO only.
#[derive(Debug)]
pub enum PaymentKey {
    /// PASETO `v4.local` (the default).
    PasetoV4(LocalCipher<V4>),
    /// PASETO `v3.local` (NIST).
    PasetoV3(LocalCipher<V3>),
}

impl From<LocalCipher<V4>> for PaymentKey {
    fn from(k: LocalCipher<V4>) -> Self {
        Self::PasetoV4(k)
    }
}

impl From<LocalCipher<V3>> for PaymentKey {
    fn from(k: LocalCipher<V3>) -> Self {
        Self::PasetoV3(k)
    }
}

impl PaymentKey {
    /// The format this key issues.
    pub fn format(&self) -> PaymentFormat {
        match self {
            Self::PasetoV4(_) => PaymentFormat::PasetoV4Local,
            Self::PasetoV3(_) => PaymentFormat::PasetoV3Local,
        }
    }

    /// Ids of every key in the ring.
    pub fn key_ids(&self) -> Vec<String> {
        match self {
            Self::PasetoV4(k) => k.keys().iter().map(|(id, _, _)| id.to_string()).collect(),
            Self::PasetoV3(k) => k.keys().iter().map(|(id, _, _)| id.to_string()).collect(),
        }
    }
}

impl TokenEncrypter for PaymentKey {
    type Error = Error;

    fn key_id(&self) -> &KeyId {
        match self {
            Self::PasetoV4(k) => k.key_id(),
            Self::PasetoV3(k) => k.key_id(),
        }
    }

    fn encrypt<T: Serialize>(
        &self,
        claims: &Claims<T>,
        implicit_assertion: &[u8],
    ) -> Result<SecretString> {
        Ok(match self {
            Self::PasetoV4(k) => k.encrypt(claims, implicit_assertion)?,
            Self::PasetoV3(k) => k.encrypt(claims, implicit_assertion)?,
        })
    }
}

impl TokenDecrypter for PaymentKey {
    type Error = Error;

    fn decrypt<T: DeserializeOwned>(
        &self,
        token: &str,
        implicit_assertion: &[u8],
        validation: &Validation,
    ) -> Result<Verified<T>> {
        Ok(match self {
            Self::PasetoV4(k) => k.decrypt(token, implicit_assertion, validation)?,
            Self::PasetoV3(k) => k.decrypt(token, implicit_assertion, validation)?,
        })
    }
}
