//! The capabilities the format crates implement.
//!
//! They speak in *capabilities*, not formats: the access-token job needs an
//! [`AsymmetricSigner`] (anyone may verify, only the issuer can sign), the payment job
//! needs a [`TokenEncrypter`] bound to an implicit assertion. A format crate implements
//! exactly the capabilities its keys have, so the wrong kind of token for a job does
//! not type-check. Crypto is synchronous: no `async` here.

use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::claims::Claims;
use crate::error::Error;
use crate::format::TokenFormat;
use crate::key::KeyId;
use crate::validation::Validation;

/// Claims from a token that was authentic under a trusted key and passed a
/// [`Validation`]. Only verifiers build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    claims: Claims<T>,
    key_id: Option<KeyId>,
    format: TokenFormat,
}

impl<T> Verified<T> {
    /// Wraps claims that the caller has authenticated *and* validated.
    ///
    /// **Dangerous**: an escape hatch for verifier implementations (the format crates
    /// and their peers). Nothing is checked here; the name is the promise the caller
    /// makes. Application code receives a `Verified` from a verifier and never builds
    /// one.
    pub fn dangerous_assume_verified(
        claims: Claims<T>,
        key_id: Option<KeyId>,
        format: TokenFormat,
    ) -> Self {
        Self {
            claims,
            key_id,
            format,
        }
    }

    /// The verified claims.
    pub fn claims(&self) -> &Claims<T> {
        &self.claims
    }

    /// The verified claims, by value.
    pub fn into_claims(self) -> Claims<T> {
        self.claims
    }

    /// The id of the key that verified the token, when the key had one.
    pub fn key_id(&self) -> Option<&KeyId> {
        self.key_id.as_ref()
    }

    /// The format of the token.
    pub fn format(&self) -> TokenFormat {
        self.format
    }

    /// The same verified token with its custom claims converted by `f` (for example
    /// from a JSON object into the application's type). The registered claims, the key
    /// id and the format are kept: nothing here can make an unverified token verified.
    ///
    /// # Errors
    /// What `f` returns.
    pub fn try_map_custom<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Verified<U>, E> {
        let Claims {
            iss,
            sub,
            aud,
            exp,
            nbf,
            iat,
            jti,
            custom,
        } = self.claims;
        Ok(Verified {
            claims: Claims {
                iss,
                sub,
                aud,
                exp,
                nbf,
                iat,
                jti,
                custom: f(custom)?,
            },
            key_id: self.key_id,
            format: self.format,
        })
    }
}

/// Read the verified claims directly: `verified.sub`, `verified.custom`, …
impl<T> std::ops::Deref for Verified<T> {
    type Target = Claims<T>;

    fn deref(&self) -> &Claims<T> {
        &self.claims
    }
}

/// Issues tokens anyone holding the matching verifier can check.
pub trait TokenSigner {
    /// The implementation's error; it carries every `token-core` error.
    type Error: std::error::Error + From<Error> + Send + Sync + 'static;

    /// The id of the key that signs.
    fn key_id(&self) -> &KeyId;

    /// Signs `claims` into a token. The raw token is a bearer credential, so it comes
    /// back as a [`SecretString`].
    fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<SecretString, Self::Error>;
}

/// A signer whose verifier holds no secret: a public-key signature (PASETO `public`,
/// JWS with ES256/ES384/EdDSA/PS256/RS256). HMAC signers never implement this.
pub trait AsymmetricSigner: TokenSigner {
    /// The public verifier for this signer's key.
    type Verifier: TokenVerifier;

    /// Builds the verifier for this key (public material only).
    fn verifier(&self) -> Self::Verifier;
}

/// Checks signed tokens and their claims.
pub trait TokenVerifier {
    /// The implementation's error; it carries every `token-core` error.
    type Error: std::error::Error + From<Error> + Send + Sync + 'static;

    /// Authenticates `token`, then applies `validation` to its claims. The claims are
    /// not reachable unless both succeed.
    fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>, Self::Error>;
}

/// Issues encrypted tokens bound to an implicit assertion: data that is authenticated
/// but not carried in the token, such as the id of the user the token belongs to.
pub trait TokenEncrypter {
    /// The implementation's error; it carries every `token-core` error.
    type Error: std::error::Error + From<Error> + Send + Sync + 'static;

    /// The id of the key that encrypts.
    fn key_id(&self) -> &KeyId;

    /// Encrypts `claims`, binding the token to `implicit_assertion`.
    fn encrypt<T: Serialize>(
        &self,
        claims: &Claims<T>,
        implicit_assertion: &[u8],
    ) -> Result<SecretString, Self::Error>;
}

/// Decrypts tokens from a [`TokenEncrypter`] and checks their claims.
pub trait TokenDecrypter {
    /// The implementation's error; it carries every `token-core` error.
    type Error: std::error::Error + From<Error> + Send + Sync + 'static;

    /// Decrypts `token` under `implicit_assertion` (a different assertion is an
    /// authenticity failure), then applies `validation`.
    fn decrypt<T: DeserializeOwned>(
        &self,
        token: &str,
        implicit_assertion: &[u8],
        validation: &Validation,
    ) -> Result<Verified<T>, Self::Error>;
}
