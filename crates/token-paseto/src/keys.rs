//! Keys tagged with their version and purpose, and their PASERK forms.
//!
//! [`LocalKey<V>`] (symmetric), [`SecretKey<V>`] (signing) and [`PublicKey<V>`]
//! (verifying) are distinct types for each version: a local key cannot reach a public
//! verifier and a v3 key cannot reach a v4 operation — those are compile errors. Secret
//! keys are not `Clone`, print only their PASERK id, and are zeroized on drop.

use std::fmt;
use std::marker::PhantomData;

use secrecy::SecretString;
use token_core::{KeyId, PasetoPurpose};

use crate::error::Result;
use crate::paserk::pw::{PwLimits, PwParams};
use crate::paserk::{KeyKind, pie, pw, raw, seal};
use crate::token::{VerifyOptions, check_issued_footer, parse};
use crate::version::Version;

fn id_for(version: crate::paserk::PaserkVersion, kind: KeyKind, bytes: &[u8]) -> Result<KeyId> {
    Ok(KeyId::new(raw::id_of_bytes(version, kind, bytes)?)?)
}

/// A symmetric key for `local` tokens of version `V`.
pub struct LocalKey<V: Version> {
    inner: V::LocalInner,
    id: KeyId,
}

impl<V: Version> LocalKey<V> {
    /// A fresh key from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`crate::Error::RandomnessUnavailable`].
    pub fn generate() -> Result<Self> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|_| crate::Error::RandomnessUnavailable)?;
        Self::from_bytes(bytes.as_slice())
    }

    /// The key from its 32 raw bytes.
    ///
    /// # Errors
    /// [`crate::Error::InvalidKey`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let inner = V::local_from_bytes(bytes)?;
        let id = id_for(V::PASERK, KeyKind::Local, bytes)?;
        Ok(Self { inner, id })
    }

    /// The key from its PASERK (`k4.local.…` / `k3.local.…`).
    ///
    /// # Errors
    /// [`crate::Error::InvalidPaserk`] for another version or type, or a malformed string.
    pub fn from_paserk(paserk: &str) -> Result<Self> {
        Self::from_bytes(&raw::decode(V::PASERK, KeyKind::Local, paserk)?)
    }

    /// The key's PASERK. It is the key itself: keep it secret.
    pub fn to_paserk(&self) -> SecretString {
        let s =
            raw::encode(V::PASERK, KeyKind::Local, V::local_bytes(&self.inner)).unwrap_or_default();
        SecretString::from(s)
    }

    /// The key's PASERK id (`k4.lid.…`), safe to publish and log.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The raw key bytes, for key wrapping and sealing.
    pub fn expose_secret_bytes(&self) -> &[u8] {
        V::local_bytes(&self.inner)
    }

    /// Checks that `footer` is one a token of this key may carry: every verifier reads
    /// it as [`footer_kid`](crate::footer_kid) does, and a PASERK id in its `kid` must be
    /// this key's own (`k4.lid.…`). Run it before [`LocalKey::encrypt_raw`] on a footer
    /// that a caller chose; [`crate::LocalCipher`] writes a valid footer itself.
    ///
    /// # Errors
    /// [`crate::Error::InvalidFooter`] saying which rule the footer breaks.
    pub fn check_footer(&self, footer: &[u8]) -> Result<()> {
        check_issued_footer(footer, V::ID, PasetoPurpose::Local, &self.id)
    }

    /// Encrypts `message` as a `local` token with `footer` (authenticated, readable) and
    /// `implicit_assertion` (authenticated, not in the token). No claims are involved,
    /// and the footer is written as given: check one a caller chose with
    /// [`LocalKey::check_footer`].
    ///
    /// # Errors
    /// [`crate::Error::RandomnessUnavailable`] if no nonce can be drawn.
    pub fn encrypt_raw(
        &self,
        message: &[u8],
        footer: &[u8],
        implicit_assertion: &[u8],
    ) -> Result<SecretString> {
        V::encrypt(&self.inner, message, footer, implicit_assertion).map(SecretString::from)
    }

    /// Decrypts a `local` token made by this key; returns the payload. No claims are
    /// checked: use [`crate::LocalCipher`] for tokens carrying claims.
    ///
    /// # Errors
    /// Typed errors for the wrong version or purpose, a malformed token or a footer
    /// mismatch; an opaque invalid-token error for a wrong key, tag or assertion.
    pub fn decrypt_raw(&self, token: &str, options: &VerifyOptions<'_>) -> Result<Vec<u8>> {
        let parsed = parse::<V>(token, PasetoPurpose::Local)?;
        if options
            .footer
            .is_some_and(|f| f != parsed.footer.as_slice())
        {
            return Err(crate::Error::FooterMismatch);
        }
        V::decrypt(&self.inner, &parsed, options.implicit_assertion)
    }

    pub(crate) fn inner(&self) -> &V::LocalInner {
        &self.inner
    }

    /// Wraps this key under `wrapping_key` (`k4.local-wrap.pie.…`), for distribution to
    /// holders of the wrapping key.
    ///
    /// # Errors
    /// [`crate::Error::RandomnessUnavailable`].
    pub fn wrap_with(&self, wrapping_key: &LocalKey<V>) -> Result<SecretString> {
        pie::wrap_local(
            V::PASERK,
            wrapping_key.expose_secret_bytes(),
            self.expose_secret_bytes(),
        )
        .map(SecretString::from)
    }

    /// Unwraps a `local-wrap.pie` PASERK made with `wrapping_key`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidPaserk`] for a malformed string or another version;
    /// [`crate::Error::KeyRecoveryFailed`] for the wrong wrapping key or tampered data.
    pub fn unwrap_with(paserk: &str, wrapping_key: &LocalKey<V>) -> Result<Self> {
        let bytes = pie::unwrap_local(V::PASERK, wrapping_key.expose_secret_bytes(), paserk)?;
        Self::from_bytes(bytes.expose_secret())
    }

    /// Seals this key to `recipient` (`k4.seal.…`): only the holder of the matching
    /// secret key can open it, and no shared channel is needed.
    ///
    /// # Errors
    /// [`crate::Error::RandomnessUnavailable`], or an unusable recipient key.
    pub fn seal_to(&self, recipient: &PublicKey<V>) -> Result<SecretString> {
        seal::seal(V::PASERK, &recipient.to_bytes(), self.expose_secret_bytes())
            .map(SecretString::from)
    }

    /// Opens a `seal` PASERK addressed to `recipient`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidPaserk`]; [`crate::Error::KeyRecoveryFailed`] when it was
    /// sealed to another key or tampered with.
    pub fn unseal(paserk: &str, recipient: &SecretKey<V>) -> Result<Self> {
        let bytes = seal::unseal(V::PASERK, &recipient.expose_secret_bytes(), paserk)?;
        Self::from_bytes(bytes.expose_secret())
    }

    /// Protects this key with a password (`k4.local-pw.…`: Argon2id; `k3`: PBKDF2-SHA384).
    ///
    /// # Errors
    /// [`crate::Error::WeakPasswordParams`] below the minimum cost, an empty password, or
    /// parameters of the other version.
    pub fn protect(&self, password: &[u8], params: &PwParams) -> Result<SecretString> {
        check_params::<V>(params)?;
        pw::protect_local(password, self.expose_secret_bytes(), params).map(SecretString::from)
    }

    /// Recovers a key from a `local-pw` PASERK, within [`PwLimits::DEFAULT`].
    ///
    /// # Errors
    /// [`crate::Error::KeyRecoveryFailed`] for a wrong password or tampered data;
    /// [`crate::Error::PasswordCostTooHigh`] for a cost over a limit and
    /// [`crate::Error::WeakPasswordParams`] for one below the minimum (both checked
    /// before hashing).
    pub fn unprotect(paserk: &str, password: &[u8]) -> Result<Self> {
        Self::unprotect_with_limits(paserk, password, &PwLimits::DEFAULT)
    }

    /// As [`LocalKey::unprotect`], within `limits`.
    ///
    /// # Errors
    /// As [`LocalKey::unprotect`].
    pub fn unprotect_with_limits(paserk: &str, password: &[u8], limits: &PwLimits) -> Result<Self> {
        let bytes = pw::unprotect_local_with_limits(V::PASERK, password, paserk, limits)?;
        Self::from_bytes(bytes.expose_secret())
    }
}

fn check_params<V: Version>(params: &PwParams) -> Result<()> {
    if params.version() == V::PASERK {
        Ok(())
    } else {
        Err(crate::Error::WeakPasswordParams(
            "parameters are for the other PASERK version",
        ))
    }
}

impl<V: Version> fmt::Debug for LocalKey<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalKey({}, [REDACTED])", self.id)
    }
}

/// A signing key for `public` tokens of version `V`.
pub struct SecretKey<V: Version> {
    inner: V::SecretInner,
    public: PublicKey<V>,
    id: KeyId,
}

impl<V: Version> SecretKey<V> {
    /// A fresh key pair from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`crate::Error::RandomnessUnavailable`].
    pub fn generate() -> Result<Self> {
        Self::from_inner(V::generate_secret()?)
    }

    fn from_inner(inner: V::SecretInner) -> Result<Self> {
        let public = PublicKey::from_inner(V::public_of(&inner)?)?;
        let id = id_for(V::PASERK, KeyKind::Secret, &V::secret_bytes(&inner))?;
        Ok(Self { inner, public, id })
    }

    /// The key from raw bytes: v4, the 32-byte seed followed by the 32-byte public key;
    /// v3, the 48-byte P-384 scalar.
    ///
    /// # Errors
    /// [`crate::Error::InvalidKey`] for a wrong length or an invalid key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_inner(V::secret_from_bytes(bytes)?)
    }

    /// The key from its PASERK (`k4.secret.…` / `k3.secret.…`).
    ///
    /// # Errors
    /// [`crate::Error::InvalidPaserk`] or [`crate::Error::InvalidKey`].
    pub fn from_paserk(paserk: &str) -> Result<Self> {
        Self::from_bytes(&raw::decode(V::PASERK, KeyKind::Secret, paserk)?)
    }

    /// The key's PASERK. It is the key itself: keep it secret.
    pub fn to_paserk(&self) -> SecretString {
        let bytes = V::secret_bytes(&self.inner);
        SecretString::from(raw::encode(V::PASERK, KeyKind::Secret, &bytes).unwrap_or_default())
    }

    /// The key's PASERK id (`k4.sid.…`).
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey<V> {
        &self.public
    }

    /// The raw secret key bytes, for key wrapping.
    pub fn expose_secret_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        V::secret_bytes(&self.inner)
    }

    /// Wraps this key under `wrapping_key` (`k4.secret-wrap.pie.…`).
    ///
    /// # Errors
    /// [`crate::Error::RandomnessUnavailable`].
    pub fn wrap_with(&self, wrapping_key: &LocalKey<V>) -> Result<SecretString> {
        pie::wrap_secret(
            V::PASERK,
            wrapping_key.expose_secret_bytes(),
            &self.expose_secret_bytes(),
        )
        .map(SecretString::from)
    }

    /// Unwraps a `secret-wrap.pie` PASERK made with `wrapping_key`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidPaserk`]; [`crate::Error::KeyRecoveryFailed`].
    pub fn unwrap_with(paserk: &str, wrapping_key: &LocalKey<V>) -> Result<Self> {
        let bytes = pie::unwrap_secret(V::PASERK, wrapping_key.expose_secret_bytes(), paserk)?;
        Self::from_bytes(bytes.expose_secret())
    }

    /// Protects this key with a password (`k4.secret-pw.…`).
    ///
    /// # Errors
    /// [`crate::Error::WeakPasswordParams`].
    pub fn protect(&self, password: &[u8], params: &PwParams) -> Result<SecretString> {
        check_params::<V>(params)?;
        pw::protect_secret(password, &self.expose_secret_bytes(), params).map(SecretString::from)
    }

    /// Recovers a key from a `secret-pw` PASERK, within [`PwLimits::DEFAULT`].
    ///
    /// # Errors
    /// As [`LocalKey::unprotect`].
    pub fn unprotect(paserk: &str, password: &[u8]) -> Result<Self> {
        Self::unprotect_with_limits(paserk, password, &PwLimits::DEFAULT)
    }

    /// As [`SecretKey::unprotect`], within `limits`.
    ///
    /// # Errors
    /// As [`LocalKey::unprotect`].
    pub fn unprotect_with_limits(paserk: &str, password: &[u8], limits: &PwLimits) -> Result<Self> {
        let bytes = pw::unprotect_secret_with_limits(V::PASERK, password, paserk, limits)?;
        Self::from_bytes(bytes.expose_secret())
    }

    /// Checks that `footer` is one a token of this key may carry: every verifier reads
    /// it as [`footer_kid`](crate::footer_kid) does, and a PASERK id in its `kid` must be
    /// this key's public id (`k4.pid.…`). Run it before [`SecretKey::sign_raw`] on a
    /// footer that a caller chose; [`crate::PublicIssuer`] writes a valid footer itself.
    ///
    /// # Errors
    /// [`crate::Error::InvalidFooter`] saying which rule the footer breaks.
    pub fn check_footer(&self, footer: &[u8]) -> Result<()> {
        check_issued_footer(footer, V::ID, PasetoPurpose::Public, self.public.id())
    }

    /// Signs `message` as a `public` token with `footer` and `implicit_assertion`. No
    /// claims are involved, and the footer is written as given: check one a caller
    /// chose with [`SecretKey::check_footer`].
    ///
    /// # Errors
    /// [`crate::Error::Malformed`] for an empty message (v4).
    pub fn sign_raw(
        &self,
        message: &[u8],
        footer: &[u8],
        implicit_assertion: &[u8],
    ) -> Result<SecretString> {
        V::sign(&self.inner, message, footer, implicit_assertion).map(SecretString::from)
    }
}

impl<V: Version> fmt::Debug for SecretKey<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, [REDACTED])", self.public.id)
    }
}

/// A verifying key for `public` tokens of version `V`. Public: `Clone` and printable.
pub struct PublicKey<V: Version> {
    inner: V::PublicInner,
    id: KeyId,
    version: PhantomData<V>,
}

impl<V: Version> Clone for PublicKey<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            id: self.id.clone(),
            version: PhantomData,
        }
    }
}

impl<V: Version> PublicKey<V> {
    fn from_inner(inner: V::PublicInner) -> Result<Self> {
        let id = id_for(V::PASERK, KeyKind::Public, &V::public_bytes(&inner))?;
        Ok(Self {
            inner,
            id,
            version: PhantomData,
        })
    }

    /// The key from raw bytes: v4, 32 bytes; v3, a 49-byte compressed P-384 point.
    ///
    /// # Errors
    /// [`crate::Error::InvalidKey`] for a wrong length or a point not on the curve.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_inner(V::public_from_bytes(bytes)?)
    }

    /// The key from its PASERK (`k4.public.…` / `k3.public.…`).
    ///
    /// # Errors
    /// [`crate::Error::InvalidPaserk`] or [`crate::Error::InvalidKey`].
    pub fn from_paserk(paserk: &str) -> Result<Self> {
        Self::from_bytes(&raw::decode(V::PASERK, KeyKind::Public, paserk)?)
    }

    /// The key's PASERK (`k4.public.…`).
    pub fn to_paserk(&self) -> String {
        raw::encode(V::PASERK, KeyKind::Public, &V::public_bytes(&self.inner)).unwrap_or_default()
    }

    /// The key's raw bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        V::public_bytes(&self.inner)
    }

    /// The key's PASERK id (`k4.pid.…`): what issuers put in the footer `kid`.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Verifies a `public` token signed by this key; returns the payload. No claims are
    /// checked: use [`crate::PublicVerifier`] for tokens carrying claims.
    ///
    /// # Errors
    /// Typed errors for the wrong version or purpose, a malformed token or a footer
    /// mismatch; an opaque invalid-token error for a bad signature or assertion.
    pub fn verify_raw(&self, token: &str, options: &VerifyOptions<'_>) -> Result<Vec<u8>> {
        let parsed = parse::<V>(token, PasetoPurpose::Public)?;
        if options
            .footer
            .is_some_and(|f| f != parsed.footer.as_slice())
        {
            return Err(crate::Error::FooterMismatch);
        }
        V::verify(&self.inner, &parsed, options.implicit_assertion)
    }

    pub(crate) fn inner(&self) -> &V::PublicInner {
        &self.inner
    }
}

impl<V: Version> fmt::Debug for PublicKey<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}
