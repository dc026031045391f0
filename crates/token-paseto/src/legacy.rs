//! PASETO `v2`, verify and decrypt only, for migrating away from it (feature
//! `legacy-v2`). New tokens are never issued in v2: use v4.
//!
//! v2 has no implicit assertions. The same rules as for v3/v4 apply otherwise: version
//! and purpose checked first, bounded footer, opaque authenticity failure, claims
//! validated after authentication.

use pasetors::keys::{AsymmetricPublicKey, SymmetricKey};
use pasetors::token::UntrustedToken;
use pasetors::version2::{LocalToken, PublicToken, V2};
use pasetors::{Local, Public};
use serde::de::DeserializeOwned;
use token_core::{
    Claims, MAX_TOKEN_LEN, PasetoPurpose, PasetoVersion, Rfc3339, TokenFormat, Validation, Verified,
};

use crate::error::{Error, Result};

fn check(token: &str, purpose: PasetoPurpose) -> Result<()> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(token_core::Error::TokenTooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        }
        .into());
    }
    match TokenFormat::detect(token) {
        Ok(TokenFormat::Paseto {
            version: PasetoVersion::V2,
            purpose: found,
            ..
        }) if found == purpose => Ok(()),
        Ok(TokenFormat::Paseto {
            version: PasetoVersion::V2,
            purpose: found,
            ..
        }) => Err(Error::WrongPurpose {
            expected: purpose,
            found,
        }),
        Ok(TokenFormat::Paseto { version, .. }) => Err(Error::WrongVersion {
            expected: PasetoVersion::V2,
            found: version,
        }),
        Ok(_) => Err(Error::Malformed("not a PASETO token")),
        Err(token_core::Error::UnrecognizedFormat(why)) => Err(Error::Malformed(why)),
        Err(e) => Err(e.into()),
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(map)`
fn map(e: pasetors::errors::Error) -> Error {
    use pasetors::errors::Error as P;
    match e {
        P::TokenFormat | P::Base64 => Error::Malformed("not a well-formed v2 token"),
        P::PayloadInvalidUtf8 => Error::Malformed("payload is not UTF-8"),
        _ => Error::invalid(),
    }
}

fn footer_matches(footer: Option<&[u8]>, actual: &[u8]) -> Result<()> {
    if actual.len() > crate::MAX_FOOTER_LEN {
        return Err(Error::InvalidFooter("longer than 2048 bytes"));
    }
    match footer {
        Some(f) if f != actual => Err(Error::FooterMismatch),
        _ => Ok(()),
    }
}

fn finish<T: DeserializeOwned>(
    payload: &str,
    purpose: PasetoPurpose,
    has_footer: bool,
    validation: &Validation,
) -> Result<Verified<T>> {
    let claims = Claims::<T>::from_json::<Rfc3339>(payload.as_bytes())?;
    validation.validate(&claims)?;
    Ok(Verified::dangerous_assume_verified(
        claims,
        None,
        TokenFormat::Paseto {
            version: PasetoVersion::V2,
            purpose,
            has_footer,
        },
    ))
}

/// Verifies `v2.public` tokens (Ed25519).
#[derive(Debug, Clone)]
pub struct V2PublicVerifier {
    key: AsymmetricPublicKey<V2>,
}

impl V2PublicVerifier {
    /// A verifier for the 32-byte Ed25519 public key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for another length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let key = AsymmetricPublicKey::from(bytes)
            .map_err(|_| Error::InvalidKey("a v2 public key is 32 bytes"))?;
        Ok(Self { key })
    }

    /// Verifies `token`; `footer`, when given, must match exactly. Returns the payload.
    ///
    /// # Errors
    /// Typed format errors; an opaque invalid-token error for a bad signature.
    pub fn verify_raw(&self, token: &str, footer: Option<&[u8]>) -> Result<String> {
        check(token, PasetoPurpose::Public)?;
        let untrusted = UntrustedToken::<Public, V2>::try_from(token).map_err(map)?;
        footer_matches(footer, untrusted.untrusted_footer())?;
        let trusted = PublicToken::verify(&self.key, &untrusted, None).map_err(map)?;
        Ok(trusted.payload().to_owned())
    }

    /// Verifies `token` and validates its claims. The footer is read first, with the
    /// rules of every other verifier ([`footer_kid`](crate::footer_kid)).
    ///
    /// # Errors
    /// As [`V2PublicVerifier::verify_raw`], [`Error::InvalidFooter`], then claim errors.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        footer: Option<&[u8]>,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        check(token, PasetoPurpose::Public)?;
        let untrusted = UntrustedToken::<Public, V2>::try_from(token).map_err(map)?;
        crate::footer_kid(
            untrusted.untrusted_footer(),
            PasetoVersion::V2,
            PasetoPurpose::Public,
        )?;
        let payload = self.verify_raw(token, footer)?;
        finish(
            &payload,
            PasetoPurpose::Public,
            token.matches('.').count() == 3,
            validation,
        )
    }
}

/// Decrypts `v2.local` tokens (XChaCha20-Poly1305).
pub struct V2LocalDecrypter {
    key: SymmetricKey<V2>,
}

impl std::fmt::Debug for V2LocalDecrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("V2LocalDecrypter([REDACTED])")
    }
}

impl V2LocalDecrypter {
    /// A decrypter for the 32-byte symmetric key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for another length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let key = SymmetricKey::from(bytes)
            .map_err(|_| Error::InvalidKey("a v2 local key is 32 bytes"))?;
        Ok(Self { key })
    }

    /// Decrypts `token`; `footer`, when given, must match exactly. Returns the payload.
    ///
    /// # Errors
    /// Typed format errors; an opaque invalid-token error for a bad tag or key.
    pub fn decrypt_raw(&self, token: &str, footer: Option<&[u8]>) -> Result<String> {
        check(token, PasetoPurpose::Local)?;
        let untrusted = UntrustedToken::<Local, V2>::try_from(token).map_err(map)?;
        footer_matches(footer, untrusted.untrusted_footer())?;
        let trusted = LocalToken::decrypt(&self.key, &untrusted, None).map_err(map)?;
        Ok(trusted.payload().to_owned())
    }

    /// Decrypts `token` and validates its claims. The footer is read first, with the
    /// rules of every other verifier ([`footer_kid`](crate::footer_kid)).
    ///
    /// # Errors
    /// As [`V2LocalDecrypter::decrypt_raw`], [`Error::InvalidFooter`], then claim errors.
    pub fn decrypt<T: DeserializeOwned>(
        &self,
        token: &str,
        footer: Option<&[u8]>,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        check(token, PasetoPurpose::Local)?;
        let untrusted = UntrustedToken::<Local, V2>::try_from(token).map_err(map)?;
        crate::footer_kid(
            untrusted.untrusted_footer(),
            PasetoVersion::V2,
            PasetoPurpose::Local,
        )?;
        let payload = self.decrypt_raw(token, footer)?;
        finish(
            &payload,
            PasetoPurpose::Local,
            token.matches('.').count() == 3,
            validation,
        )
    }
}
