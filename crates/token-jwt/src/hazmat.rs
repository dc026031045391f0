//! Low-level JOSE operations, for interoperability beyond JWTs.
//!
//! **Hazardous.** These return a payload after checking only the signature or the
//! AEAD tag: the header policy still applies (`alg` pinned by the key, no `none`, no
//! `crit`, no `zip`, `A256GCM` only), but there are no claims, no [`Validation`] and no
//! `typ` or `cty` checks. A JWT must go through [`TokenVerifier`] instead.
//!
//! [`Validation`]: token_core::Validation
//! [`TokenVerifier`]: token_core::TokenVerifier

use token_core::SecretBytes;

use crate::error::Result;
use crate::header::Header;
use crate::jwe::{DecryptingKey, DirectKey};
use crate::jws::{JwtVerifier, KeyChoice, VerificationKey, verify_signature};

/// Verifies a compact JWS under `key` and returns its header and raw payload. The
/// token's `kid` is not consulted.
///
/// # Errors
/// As [`TokenVerifier::verify`](token_core::TokenVerifier::verify), up to and
/// including the signature.
pub fn verify_jws<K: VerificationKey>(key: &K, token: &str) -> Result<(Header, Vec<u8>)> {
    let authentic = verify_signature(token, &KeyChoice::Single(key), None, false)?;
    Ok((authentic.header, authentic.payload))
}

/// Verifies a compact JWS under the key its `kid` names in `verifier`'s key set and
/// returns its header and raw payload.
///
/// # Errors
/// As [`verify_jws`], and [`token_core::Error::UnknownKeyId`].
pub fn verify_jws_with_set<K: VerificationKey>(
    verifier: &JwtVerifier<K>,
    token: &str,
) -> Result<(Header, Vec<u8>)> {
    verifier.verify_signature_only(token)
}

/// Decrypts a compact `ECDH-ES+A256KW`/`A256GCM` JWE and returns its header and
/// plaintext, whatever its `cty`.
///
/// # Errors
/// As [`DecryptingKey::decrypt_signed`], up to and including decryption.
pub fn decrypt_jwe(key: &DecryptingKey, token: &str) -> Result<(Header, SecretBytes)> {
    let (header, plaintext) = key.decrypt_raw(token)?;
    Ok((header, SecretBytes::from_slice(&plaintext)))
}

/// Decrypts a compact `dir`/`A256GCM` JWE and returns its header and plaintext,
/// whatever its `cty`.
///
/// # Errors
/// As [`decrypt_jwe`].
pub fn decrypt_jwe_direct(key: &DirectKey, token: &str) -> Result<(Header, SecretBytes)> {
    let (header, plaintext) = key.decrypt_raw(token)?;
    Ok((header, SecretBytes::from_slice(&plaintext)))
}
