//! Tokens carrying claims: issuers, verifiers and ciphers over key rings, implementing
//! the `token-core` capability traits.
//!
//! Issuers write the current key's PASERK id into the footer as `{"kid": "…"}`
//! (`k4.pid.…` for `public`, `k4.lid.…` for `local`); verifiers look the key up by
//! that id in their ring, so rotation needs no coordination: issue with the new key,
//! keep the old one verify-only until its tokens have expired, then remove it.
//!
//! A PASERK id that names no key of the ring fails fast
//! ([`token_core::Error::UnknownKeyId`]). Any other `kid` is the issuer's own name for
//! its key (the official test vectors, and other implementations, write their own
//! strings): the ring's key registered under that alias is used, or else each key of
//! the ring is tried, and the token verifies only if one of them authenticates it.

use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use token_core::{
    AsymmetricSigner, Claims, KeyId, KeyRing, PasetoPurpose, Rfc3339, TokenDecrypter,
    TokenEncrypter, TokenFormat, TokenSigner, TokenVerifier, Validation, Verified,
};

use crate::error::{Error, Result};
use crate::keys::{LocalKey, PublicKey, SecretKey};
use crate::token::{VerifyOptions, kid_footer, parse, select_key};
use crate::version::Version;

fn format<V: Version>(purpose: PasetoPurpose) -> TokenFormat {
    TokenFormat::Paseto {
        version: V::ID,
        purpose,
        has_footer: true,
    }
}

fn finish<T: DeserializeOwned, V: Version>(
    payload: &[u8],
    key_id: Option<KeyId>,
    purpose: PasetoPurpose,
    validation: &Validation,
) -> Result<Verified<T>> {
    let claims = Claims::<T>::from_json::<Rfc3339>(payload)?;
    validation.validate(&claims)?;
    let mut format = format::<V>(purpose);
    if let TokenFormat::Paseto { has_footer, .. } = &mut format {
        *has_footer = key_id.is_some();
    }
    Ok(Verified::dangerous_assume_verified(claims, key_id, format))
}

/// Issues `public` tokens with the current key of a ring of signing keys.
#[derive(Debug)]
pub struct PublicIssuer<V: Version> {
    ring: KeyRing<SecretKey<V>>,
    current: KeyId,
}

impl<V: Version> PublicIssuer<V> {
    /// An issuer whose only (and current) key is `key`.
    pub fn new(key: SecretKey<V>) -> Self {
        let id = key.public_key().id().clone();
        Self {
            ring: KeyRing::new(id.clone(), key),
            current: id,
        }
    }

    /// Makes `key` current; the previous key stays in the ring (its public half keeps
    /// verifying through [`PublicIssuer::verifier`]) until [`PublicIssuer::retire`]d.
    ///
    /// # Errors
    /// A duplicate key id.
    pub fn rotate_to(&mut self, key: SecretKey<V>) -> Result<()> {
        let id = key.public_key().id().clone();
        self.ring.rotate_to(id.clone(), key)?;
        self.current = id;
        Ok(())
    }

    /// Removes a non-current key by its public id (`k4.pid.…`) once every token it
    /// signed has expired: its tokens stop verifying.
    ///
    /// # Errors
    /// An unknown id, or the current key.
    pub fn retire(&mut self, pid: &str) -> Result<SecretKey<V>> {
        Ok(self.ring.remove(pid)?)
    }

    /// The ring of signing keys: the current one and the verify-only ones, in the
    /// order they were added.
    pub fn keys(&self) -> &KeyRing<SecretKey<V>> {
        &self.ring
    }

    /// The id of the current key (`k4.pid.…`), which new tokens name in their footer.
    pub fn key_id(&self) -> &KeyId {
        &self.current
    }

    /// Signs `claims`, binding the token to `implicit_assertion` (empty for none).
    ///
    /// # Errors
    /// Claims that do not serialize; the ring's lack of a current key.
    pub fn sign_with<T: Serialize>(
        &self,
        claims: &Claims<T>,
        implicit_assertion: &[u8],
    ) -> Result<SecretString> {
        let (id, key) = self.ring.current()?;
        let message = claims.to_json::<Rfc3339>()?;
        key.sign_raw(&message, &kid_footer(id), implicit_assertion)
    }
}

impl<V: Version> TokenSigner for PublicIssuer<V> {
    type Error = Error;

    fn key_id(&self) -> &KeyId {
        &self.current
    }

    fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<SecretString> {
        self.sign_with(claims, b"")
    }
}

impl<V: Version> AsymmetricSigner for PublicIssuer<V> {
    type Verifier = PublicVerifier<V>;

    fn verifier(&self) -> PublicVerifier<V> {
        PublicIssuer::verifier(self)
    }
}

/// Verifies `public` tokens against a ring of public keys, picked by the footer `kid`.
#[derive(Debug)]
pub struct PublicVerifier<V: Version> {
    ring: KeyRing<PublicKey<V>>,
}

impl<V: Version> Clone for PublicVerifier<V> {
    fn clone(&self) -> Self {
        Self {
            ring: self.ring.clone(),
        }
    }
}

impl<V: Version> PublicVerifier<V> {
    /// A verifier trusting only `key`.
    pub fn new(key: PublicKey<V>) -> Self {
        let id = key.id().clone();
        let mut ring = KeyRing::verify_only();
        let _ = ring.insert_verify_only(id, key);
        Self { ring }
    }

    /// A verifier trusting every key in `keys`.
    ///
    /// # Errors
    /// The same key given twice.
    pub fn from_keys(keys: impl IntoIterator<Item = PublicKey<V>>) -> Result<Self> {
        let mut ring = KeyRing::verify_only();
        for key in keys {
            ring.insert_verify_only(key.id().clone(), key)?;
        }
        Ok(Self { ring })
    }

    /// Trusts one more key.
    ///
    /// # Errors
    /// A key already trusted.
    pub fn insert(&mut self, key: PublicKey<V>) -> Result<()> {
        Ok(self.ring.insert_verify_only(key.id().clone(), key)?)
    }

    /// Trusts `key` under `alias` too: an issuer's own name for its key, written in the
    /// footer `kid` by implementations that do not use PASERK ids. (A token whose `kid`
    /// is neither a PASERK id nor an alias is tried with every trusted key.) Remove the
    /// alias with [`PublicVerifier::remove`] as well when the key is retired.
    ///
    /// # Errors
    /// [`token_core::Error::InvalidKeyId`] for an alias of the PASERK id form
    /// (`k4.pid.…`), which only ever names the key it is computed from;
    /// [`token_core::Error::DuplicateKeyId`] for an id already in use.
    pub fn insert_alias(&mut self, alias: KeyId, key: PublicKey<V>) -> Result<()> {
        if crate::token::is_paserk_id(alias.as_str()) {
            return Err(token_core::Error::InvalidKeyId(
                "a PASERK id names only the key it is computed from, so it cannot be an alias",
            )
            .into());
        }
        Ok(self.ring.insert_verify_only(alias, key)?)
    }

    /// Stops trusting the key with this id (`k4.pid.…`): its tokens no longer verify.
    ///
    /// # Errors
    /// An unknown id.
    pub fn remove(&mut self, pid: &str) -> Result<PublicKey<V>> {
        Ok(self.ring.remove(pid)?)
    }

    /// The trusted keys.
    pub fn keys(&self) -> &KeyRing<PublicKey<V>> {
        &self.ring
    }

    /// Verifies `token` (with the implicit assertion and footer rule in `options`), then
    /// checks its claims with `validation`.
    ///
    /// # Errors
    /// Typed format errors before any crypto (version, purpose, footer, unknown `kid`);
    /// an opaque invalid-token error for a bad signature; claim errors afterwards.
    pub fn verify_with<T: DeserializeOwned>(
        &self,
        token: &str,
        options: &VerifyOptions<'_>,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        let parsed = parse::<V>(token, PasetoPurpose::Public)?;
        let (payload, key_id) =
            select_key(&self.ring, &parsed, options, V::ID, PasetoPurpose::Public)?
                .authenticate(|key| V::verify(key.inner(), &parsed, options.implicit_assertion))?;
        finish::<T, V>(&payload, Some(key_id), PasetoPurpose::Public, validation)
    }
}

impl<V: Version> TokenVerifier for PublicVerifier<V> {
    type Error = Error;

    fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        self.verify_with(token, &VerifyOptions::default(), validation)
    }
}

/// Encrypts and decrypts `local` tokens with a ring of symmetric keys: the current key
/// encrypts, every key in the ring decrypts (picked by the footer `kid`).
#[derive(Debug)]
pub struct LocalCipher<V: Version> {
    ring: KeyRing<LocalKey<V>>,
    current: KeyId,
}

impl<V: Version> LocalCipher<V> {
    /// A cipher whose only (and current) key is `key`.
    pub fn new(key: LocalKey<V>) -> Self {
        let id = key.id().clone();
        Self {
            ring: KeyRing::new(id.clone(), key),
            current: id,
        }
    }

    /// Makes `key` current; older keys keep decrypting until retired.
    ///
    /// # Errors
    /// A duplicate key id.
    pub fn rotate_to(&mut self, key: LocalKey<V>) -> Result<()> {
        let id = key.id().clone();
        self.ring.rotate_to(id.clone(), key)?;
        self.current = id;
        Ok(())
    }

    /// Removes a non-current key by id (`k4.lid.…`).
    ///
    /// # Errors
    /// An unknown id, or the current key.
    pub fn retire(&mut self, lid: &str) -> Result<LocalKey<V>> {
        Ok(self.ring.remove(lid)?)
    }

    /// The ring of keys: the current one and the decrypt-only ones, in the order they
    /// were added.
    pub fn keys(&self) -> &KeyRing<LocalKey<V>> {
        &self.ring
    }

    /// The id of the current key (`k4.lid.…`), which new tokens name in their footer.
    pub fn key_id(&self) -> &KeyId {
        &self.current
    }

    /// Encrypts `claims` with the current key, bound to `implicit_assertion`.
    ///
    /// # Errors
    /// Claims that do not serialize; no randomness for the nonce.
    pub fn encrypt_with<T: Serialize>(
        &self,
        claims: &Claims<T>,
        implicit_assertion: &[u8],
    ) -> Result<SecretString> {
        let (id, key) = self.ring.current()?;
        let message = claims.to_json::<Rfc3339>()?;
        key.encrypt_raw(&message, &kid_footer(id), implicit_assertion)
    }

    /// Decrypts `token` under `options` and checks its claims with `validation`.
    ///
    /// # Errors
    /// Typed format errors before any crypto; an opaque invalid-token error for a wrong
    /// key, tag or implicit assertion; claim errors afterwards.
    pub fn decrypt_with<T: DeserializeOwned>(
        &self,
        token: &str,
        options: &VerifyOptions<'_>,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        let parsed = parse::<V>(token, PasetoPurpose::Local)?;
        let (payload, key_id) =
            select_key(&self.ring, &parsed, options, V::ID, PasetoPurpose::Local)?.authenticate(
                |key| {
                    V::decrypt(key.inner(), &parsed, options.implicit_assertion)
                        .map(zeroize::Zeroizing::new)
                },
            )?;
        finish::<T, V>(&payload, Some(key_id), PasetoPurpose::Local, validation)
    }
}

impl<V: Version> TokenEncrypter for LocalCipher<V> {
    type Error = Error;

    fn key_id(&self) -> &KeyId {
        &self.current
    }

    fn encrypt<T: Serialize>(
        &self,
        claims: &Claims<T>,
        implicit_assertion: &[u8],
    ) -> Result<SecretString> {
        self.encrypt_with(claims, implicit_assertion)
    }
}

impl<V: Version> TokenDecrypter for LocalCipher<V> {
    type Error = Error;

    fn decrypt<T: DeserializeOwned>(
        &self,
        token: &str,
        implicit_assertion: &[u8],
        validation: &Validation,
    ) -> Result<Verified<T>> {
        self.decrypt_with(
            token,
            &VerifyOptions::with_implicit_assertion(implicit_assertion),
            validation,
        )
    }
}

// The common path without trait imports: each method below is the capability trait's,
// callable on the type itself.

impl<V: Version> PublicIssuer<V> {
    /// An issuer holding one freshly generated key.
    ///
    /// # Errors
    /// [`Error::RandomnessUnavailable`].
    pub fn generate() -> Result<Self> {
        Ok(Self::new(SecretKey::generate()?))
    }

    /// Signs `claims` with the current key ([`TokenSigner::sign`]).
    ///
    /// # Errors
    /// Claims that do not serialize.
    pub fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<SecretString> {
        self.sign_with(claims, b"")
    }

    /// The verifier of this issuer's tokens: the public half of every key in the ring
    /// ([`AsymmetricSigner::verifier`]).
    pub fn verifier(&self) -> PublicVerifier<V> {
        let mut ring = KeyRing::verify_only();
        for (id, key, _) in self.ring.iter() {
            // Ids are unique in the source ring, so insertion cannot fail.
            let _ = ring.insert_verify_only(id.clone(), key.public_key().clone());
        }
        PublicVerifier { ring }
    }
}

impl<V: Version> PublicVerifier<V> {
    /// Authenticates `token`, then applies `validation` ([`TokenVerifier::verify`]).
    ///
    /// # Errors
    /// Format, key, authenticity and claim errors.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        self.verify_with(token, &VerifyOptions::default(), validation)
    }
}

impl<V: Version> LocalCipher<V> {
    /// A cipher holding one freshly generated key.
    ///
    /// # Errors
    /// [`Error::RandomnessUnavailable`].
    pub fn generate() -> Result<Self> {
        Ok(Self::new(LocalKey::generate()?))
    }

    /// Encrypts `claims` bound to `implicit_assertion` ([`TokenEncrypter::encrypt`]).
    ///
    /// # Errors
    /// Claims that do not serialize; [`Error::RandomnessUnavailable`].
    pub fn encrypt<T: Serialize>(
        &self,
        claims: &Claims<T>,
        implicit_assertion: &[u8],
    ) -> Result<SecretString> {
        self.encrypt_with(claims, implicit_assertion)
    }

    /// Decrypts `token` under `implicit_assertion`, then applies `validation`
    /// ([`TokenDecrypter::decrypt`]).
    ///
    /// # Errors
    /// Format, key, authenticity and claim errors.
    pub fn decrypt<T: DeserializeOwned>(
        &self,
        token: &str,
        implicit_assertion: &[u8],
        validation: &Validation,
    ) -> Result<Verified<T>> {
        self.decrypt_with(
            token,
            &VerifyOptions::with_implicit_assertion(implicit_assertion),
            validation,
        )
    }
}
