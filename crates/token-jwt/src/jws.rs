//! Signing and verifying JWTs (JWS compact serialization), single keys and key sets.
//!
//! Verification runs in this order, and stops at the first failure:
//! 1. the token length ([`MAX_TOKEN_LEN`](token_core::MAX_TOKEN_LEN)), the JSON
//!    serialization, the format by shape (a JWE or a PASETO is refused by name);
//! 2. the protected header, bounded ([`MAX_HEADER_LEN`](crate::MAX_HEADER_LEN),
//!    [`MAX_HEADER_DEPTH`](crate::MAX_HEADER_DEPTH)), strictly typed and without JWE
//!    members (`enc`, `zip`): `alg: none` in any case, then any `crit`;
//! 3. the key: by `kid` in a key set (an unknown `kid` fails fast), then `alg` must be
//!    the key's algorithm; `typ` and `cty` against the verifier's policy;
//! 4. the signature (any failure is the opaque [`token_core::Error::InvalidToken`]);
//! 5. only then the claims (`Claims::from_json::<NumericDate>`, strict) and the
//!    [`Validation`].

use std::fmt;

use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use token_core::{
    AsymmetricSigner, Claims, KeyId, KeyRing, KeyStatus, MAX_TOKEN_LEN, NumericDate, TokenFormat,
    TokenSigner, TokenVerifier, Validation, Verified,
};

use crate::algorithm::TokenType;
use crate::b64;
use crate::error::{Error, Result, invalid_token};
use crate::header::{Header, split};
use crate::hmac::HmacKey;
use crate::jwks::Jwks;
use crate::key::{SigningKey, VerifyingKey};

mod sealed {
    /// The crate-internal face of a JWS key.
    #[allow(unreachable_pub)]
    pub trait Sealed {
        fn alg_name(&self) -> &'static str;
        fn own_key_id(&self) -> &token_core::KeyId;
        fn signature_len(&self) -> usize;
        fn jws_verifier(&self) -> &dyn josekit::jws::JwsVerifier;
    }

    #[allow(unreachable_pub)]
    pub trait SealedSigner {
        fn alg_name(&self) -> &'static str;
        fn own_key_id(&self) -> &token_core::KeyId;
        fn jws_signer(&self) -> &dyn josekit::jws::JwsSigner;
    }
}

/// A key that verifies JWS signatures: [`VerifyingKey`] or [`HmacKey`]. Sealed.
pub trait VerificationKey: sealed::Sealed {}

impl sealed::Sealed for VerifyingKey {
    fn alg_name(&self) -> &'static str {
        self.algorithm().name()
    }
    fn own_key_id(&self) -> &KeyId {
        self.key_id()
    }
    fn signature_len(&self) -> usize {
        VerifyingKey::signature_len(self)
    }
    fn jws_verifier(&self) -> &dyn josekit::jws::JwsVerifier {
        self.verifier()
    }
}
impl VerificationKey for VerifyingKey {}

impl sealed::Sealed for HmacKey {
    fn alg_name(&self) -> &'static str {
        self.algorithm().name()
    }
    fn own_key_id(&self) -> &KeyId {
        self.key_id()
    }
    fn signature_len(&self) -> usize {
        self.algorithm().output_len()
    }
    fn jws_verifier(&self) -> &dyn josekit::jws::JwsVerifier {
        self.verifier()
    }
}
impl VerificationKey for HmacKey {}

/// A key that signs JWS: [`SigningKey`] or [`HmacKey`]. Sealed.
pub trait JwsSigningKey: sealed::SealedSigner {}

impl sealed::SealedSigner for SigningKey {
    fn alg_name(&self) -> &'static str {
        self.algorithm().name()
    }
    fn own_key_id(&self) -> &KeyId {
        self.key_id()
    }
    fn jws_signer(&self) -> &dyn josekit::jws::JwsSigner {
        self.signer()
    }
}
impl JwsSigningKey for SigningKey {}

impl sealed::SealedSigner for HmacKey {
    fn alg_name(&self) -> &'static str {
        self.algorithm().name()
    }
    fn own_key_id(&self) -> &KeyId {
        self.key_id()
    }
    fn jws_signer(&self) -> &dyn josekit::jws::JwsSigner {
        self.signer()
    }
}
impl JwsSigningKey for HmacKey {}

/// The header this crate writes, in this member order.
#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// Signs `payload` into a compact JWS with header `{"alg","typ","kid"}`.
pub(crate) fn sign_compact<K: JwsSigningKey>(key: &K, typ: &str, payload: &[u8]) -> Result<String> {
    let header = serde_json::to_vec(&HeaderOut {
        alg: key.alg_name(),
        typ,
        kid: key.own_key_id().as_str(),
    })
    .map_err(|_| Error::SigningFailed)?;
    let signer = key.jws_signer();
    let capacity = 2 + (header.len() + payload.len() + signer.signature_len()) * 4 / 3 + 6;
    let mut token = String::with_capacity(capacity);
    b64::encode_into(&header, &mut token);
    token.push('.');
    b64::encode_into(payload, &mut token);
    let signature = signer
        .sign(token.as_bytes())
        .map_err(|_| Error::SigningFailed)?;
    token.push('.');
    b64::encode_into(&signature, &mut token);
    if token.len() > MAX_TOKEN_LEN {
        return Err(token_core::Error::TokenTooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        }
        .into());
    }
    Ok(token)
}

/// Signs `claims` as a JWT.
fn sign_claims<K: JwsSigningKey, T: Serialize>(
    key: &K,
    typ: &TokenType,
    claims: &Claims<T>,
) -> Result<SecretString> {
    let payload = claims.to_json::<NumericDate>()?;
    sign_compact(key, typ.as_str(), &payload).map(SecretString::from)
}

/// Which key a token's `kid` selects.
pub(crate) enum KeyChoice<'a, K> {
    /// One key: `kid` is not consulted.
    Single(&'a K),
    /// A key set: `kid` is a lookup key; without `kid`, only a set of one key answers.
    Ring(&'a KeyRing<K>),
}

impl<'a, K> KeyChoice<'a, K> {
    fn select(&self, kid: Option<&KeyId>) -> Result<(&'a K, Option<&'a KeyId>)> {
        match self {
            Self::Single(k) => Ok((*k, None)),
            Self::Ring(ring) => {
                if let Some(kid) = kid {
                    let (id, key, _) = ring
                        .iter()
                        .find(|(id, _, _)| *id == kid)
                        .ok_or(token_core::Error::UnknownKeyId)?;
                    return Ok((key, Some(id)));
                }
                let mut keys = ring.iter();
                match (keys.next(), keys.next()) {
                    (Some((id, key, _)), None) => Ok((key, Some(id))),
                    (Some(_), Some(_)) => Err(Error::MissingKeyId),
                    (None, _) => Err(Error::EmptyKeySet),
                }
            }
        }
    }
}

/// A JWS whose signature verified, with its header and raw payload.
pub(crate) struct Authentic<'a> {
    pub(crate) header: Header,
    pub(crate) payload: Vec<u8>,
    pub(crate) key_id: &'a KeyId,
}

/// Steps 1 to 4 of verification. `claims` selects the JWT checks: `cty` must not name
/// a nested JWT and the payload must not be empty.
pub(crate) fn verify_signature<'a, K: VerificationKey>(
    token: &str,
    keys: &KeyChoice<'a, K>,
    typ: Option<&TokenType>,
    claims: bool,
) -> Result<Authentic<'a>> {
    let [header_b64, payload_b64, signature_b64] = split::<3>(token, TokenFormat::Jws)?;
    let header = Header::parse(header_b64, TokenFormat::Jws)?;
    header.check_common()?;
    let (key, ring_id) = keys.select(header.kid())?;
    header.check_alg(key.alg_name())?;
    if claims {
        header.check_typ(typ)?;
        header.check_cty(None)?;
    }
    if payload_b64.is_empty() {
        return Err(Error::MalformedToken(
            "empty payload (detached content is not supported)",
        ));
    }
    let signature = b64::decode(signature_b64).ok_or_else(invalid_token)?;
    if signature.len() != key.signature_len() {
        return Err(invalid_token());
    }
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(Error::MalformedToken("wrong number of segments"))?;
    key.jws_verifier()
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| invalid_token())?;
    let payload =
        b64::decode(payload_b64).ok_or(Error::MalformedToken("payload is not base64url"))?;
    Ok(Authentic {
        header,
        payload,
        key_id: ring_id.unwrap_or_else(|| key.own_key_id()),
    })
}

/// All five steps: an authentic JWS whose claims pass `validation`.
pub(crate) fn verify_claims<K: VerificationKey, T: DeserializeOwned>(
    token: &str,
    keys: &KeyChoice<'_, K>,
    typ: Option<&TokenType>,
    validation: &Validation,
) -> Result<Verified<T>> {
    // A type demanded by the validation applies when the verifier names none.
    let from_validation = validation.expected_token_type().map(TokenType::from_name);
    let typ = typ.or(from_validation.as_ref());
    let authentic = verify_signature(token, keys, typ, true)?;
    let claims = Claims::<T>::from_json::<NumericDate>(&authentic.payload)?;
    validation.validate(&claims)?;
    Ok(Verified::dangerous_assume_verified(
        claims,
        Some(authentic.key_id.clone()),
        TokenFormat::Jws,
    ))
}

impl SigningKey {
    /// Signs `claims` with header `typ` set to `typ` (such as [`TokenType::AccessToken`]
    /// for RFC 9068 access tokens). [`TokenSigner::sign`] writes `typ: JWT`.
    ///
    /// # Errors
    /// Claim serialization errors (in [`Error::Core`]), [`Error::SigningFailed`], or
    /// [`token_core::Error::TokenTooLong`] for a token over the limit.
    pub fn sign_as<T: Serialize>(
        &self,
        typ: &TokenType,
        claims: &Claims<T>,
    ) -> Result<SecretString> {
        sign_claims(self, typ, claims)
    }
}

impl HmacKey {
    /// Signs `claims` with header `typ` set to `typ`. [`TokenSigner::sign`] writes
    /// `typ: JWT`.
    ///
    /// # Errors
    /// As [`SigningKey::sign_as`].
    pub fn sign_as<T: Serialize>(
        &self,
        typ: &TokenType,
        claims: &Claims<T>,
    ) -> Result<SecretString> {
        sign_claims(self, typ, claims)
    }
}

impl TokenSigner for SigningKey {
    type Error = Error;

    fn key_id(&self) -> &KeyId {
        SigningKey::key_id(self)
    }

    fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<SecretString> {
        sign_claims(self, &TokenType::Jwt, claims)
    }
}

impl AsymmetricSigner for SigningKey {
    type Verifier = VerifyingKey;

    fn verifier(&self) -> VerifyingKey {
        self.verifying_key().clone()
    }
}

impl TokenSigner for HmacKey {
    type Error = Error;

    fn key_id(&self) -> &KeyId {
        HmacKey::key_id(self)
    }

    fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<SecretString> {
        sign_claims(self, &TokenType::Jwt, claims)
    }
}

/// A single key verifies any token whose `alg` is its algorithm; the token's `kid`, if
/// any, is not consulted (use a [`JwtVerifier`] for key sets). `typ` must be absent or
/// `JWT`.
impl TokenVerifier for VerifyingKey {
    type Error = Error;

    fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        verify_claims(token, &KeyChoice::Single(self), None, validation)
    }
}

/// As for [`VerifyingKey`].
impl TokenVerifier for HmacKey {
    type Error = Error;

    fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        verify_claims(token, &KeyChoice::Single(self), None, validation)
    }
}

/// Verifies JWTs against a key set, looked up by `kid`, with an optional demanded
/// `typ`.
///
/// Every key is verify-only here; the ring's ids are the lookup keys. A token whose
/// `kid` the set does not hold fails fast with [`token_core::Error::UnknownKeyId`]; a
/// token without `kid` is accepted only when the set holds exactly one key.
pub struct JwtVerifier<K = VerifyingKey> {
    keys: KeyRing<K>,
    typ: Option<TokenType>,
}

impl<K> fmt::Debug for JwtVerifier<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys)
            .field("typ", &self.typ)
            .finish()
    }
}

impl<K: VerificationKey> JwtVerifier<K> {
    /// A verifier holding one key, under the key's own id.
    pub fn new(key: K) -> Self {
        let mut keys = KeyRing::verify_only();
        // A fresh ring holds no id yet, so the insertion cannot collide.
        let _ = keys.insert_verify_only(key.own_key_id().clone(), key);
        Self { keys, typ: None }
    }

    /// A verifier trusting every key in `keys`, each under its own id.
    ///
    /// # Errors
    /// [`token_core::Error::DuplicateKeyId`] for the same id given twice;
    /// [`Error::EmptyKeySet`] for no key.
    pub fn from_keys(keys: impl IntoIterator<Item = K>) -> Result<Self> {
        let mut ring = KeyRing::verify_only();
        for key in keys {
            ring.insert_verify_only(key.own_key_id().clone(), key)?;
        }
        Self::from_key_ring(ring)
    }

    /// A verifier over `keys` (current and verify-only keys alike verify).
    ///
    /// # Errors
    /// [`Error::EmptyKeySet`] for an empty ring.
    pub fn from_key_ring(keys: KeyRing<K>) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::EmptyKeySet);
        }
        Ok(Self { keys, typ: None })
    }

    /// Demands header `typ` be `typ` (for example [`TokenType::AccessToken`] on an RFC
    /// 9068 resource server). Without this, `typ` must be absent or `JWT`.
    #[must_use]
    pub fn expect_type(mut self, typ: TokenType) -> Self {
        self.typ = Some(typ);
        self
    }

    /// Trusts one more key, under its own id (rotation on the verifying side).
    ///
    /// # Errors
    /// [`token_core::Error::DuplicateKeyId`] if the set already holds that id.
    pub fn insert(&mut self, key: K) -> Result<()> {
        self.keys
            .insert_verify_only(key.own_key_id().clone(), key)
            .map_err(Into::into)
    }

    /// Stops trusting the key `kid`: tokens it signed no longer verify.
    ///
    /// # Errors
    /// [`token_core::Error::UnknownKeyId`] if absent.
    pub fn remove(&mut self, kid: &str) -> Result<K> {
        self.keys.remove(kid).map_err(Into::into)
    }

    /// The trusted keys.
    pub fn keys(&self) -> &KeyRing<K> {
        &self.keys
    }

    /// Verifies the signature only, for non-JWT payloads; see
    /// [`hazmat::verify_jws`](crate::hazmat::verify_jws).
    pub(crate) fn verify_signature_only(&self, token: &str) -> Result<(Header, Vec<u8>)> {
        let authentic = verify_signature(token, &KeyChoice::Ring(&self.keys), None, false)?;
        Ok((authentic.header, authentic.payload))
    }
}

impl JwtVerifier<VerifyingKey> {
    /// A verifier over the signature keys of a JWKS the caller fetched (this crate does
    /// no network I/O). See [`Jwks::verifying_keys`] for which entries are used.
    ///
    /// # Errors
    /// As [`Jwks::from_json`] and [`Jwks::verifying_keys`].
    pub fn from_jwks(json: &str) -> Result<Self> {
        Self::from_key_ring(Jwks::from_json(json)?.verifying_keys()?)
    }

    /// The public keys as a JWKS.
    pub fn to_jwks(&self) -> Jwks {
        let mut jwks = Jwks::new();
        for (id, key, _) in self.keys.iter() {
            jwks.push_verifying_key(&key.clone().with_key_id(id.clone()));
        }
        jwks
    }
}

impl<K: VerificationKey> TokenVerifier for JwtVerifier<K> {
    type Error = Error;

    fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        verify_claims(
            token,
            &KeyChoice::Ring(&self.keys),
            self.typ.as_ref(),
            validation,
        )
    }
}

/// The issuing side of key rotation: a ring of signing keys whose current key signs,
/// while the previous keys stay in the ring, verify-only, their public halves published
/// until their tokens expire.
///
/// The vocabulary is that of token-paseto's `PublicIssuer`:
/// [`SigningKeySet::rotate_to`] a new key, [`SigningKeySet::retire`] an old one,
/// [`SigningKeySet::keys`] for the ring, [`SigningKeySet::verifier`] for the
/// verifying side ([`JwtVerifier::insert`] and [`JwtVerifier::remove`] there).
pub struct SigningKeySet {
    ring: KeyRing<SigningKey>,
    current: KeyId,
    algorithm: crate::Algorithm,
}

impl fmt::Debug for SigningKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.ring.iter().map(|(id, _, status)| (id, status)))
            .finish()
    }
}

impl SigningKeySet {
    /// A set whose only (and current) key is `key`.
    pub fn new(key: SigningKey) -> Self {
        let id = key.key_id().clone();
        let algorithm = key.algorithm();
        Self {
            ring: KeyRing::new(id.clone(), key),
            current: id,
            algorithm,
        }
    }

    /// Makes `key` current; the previous keys stay in the ring, verify-only (their
    /// public halves keep verifying through [`SigningKeySet::verifier`] and stay in
    /// [`SigningKeySet::jwks`]) until [`SigningKeySet::retire`]d.
    ///
    /// # Errors
    /// [`token_core::Error::DuplicateKeyId`] if the set already holds that id.
    pub fn rotate_to(&mut self, key: SigningKey) -> Result<()> {
        let id = key.key_id().clone();
        let algorithm = key.algorithm();
        self.ring.rotate_to(id.clone(), key)?;
        self.current = id;
        self.algorithm = algorithm;
        Ok(())
    }

    /// Removes a non-current key by its id once every token it signed has expired:
    /// its tokens stop verifying, and it leaves the published key set.
    ///
    /// # Errors
    /// [`token_core::Error::UnknownKeyId`] if absent;
    /// [`token_core::Error::CannotRemoveCurrentKey`] for the current key.
    pub fn retire(&mut self, kid: &str) -> Result<SigningKey> {
        self.ring.remove(kid).map_err(Into::into)
    }

    /// The ring of signing keys: the current one and the verify-only ones, in the
    /// order they were added.
    pub fn keys(&self) -> &KeyRing<SigningKey> {
        &self.ring
    }

    /// The id of the current key, which new tokens name in their `kid`.
    pub fn key_id(&self) -> &KeyId {
        &self.current
    }

    /// The algorithm of the current key.
    pub fn algorithm(&self) -> crate::Algorithm {
        self.algorithm
    }

    /// The public halves of every key as a JWKS to publish: the current key first,
    /// then the verify-only ones in the order they were added.
    pub fn jwks(&self) -> Jwks {
        let mut jwks = Jwks::new();
        let (current, others): (Vec<_>, Vec<_>) = self
            .ring
            .iter()
            .partition(|(_, _, status)| *status == KeyStatus::Current);
        for (_, key, _) in current.into_iter().chain(others) {
            jwks.push_verifying_key(key.verifying_key());
        }
        jwks
    }

    /// Signs with the current key and header `typ` set to `typ`.
    ///
    /// # Errors
    /// As [`SigningKey::sign_as`].
    pub fn sign_as<T: Serialize>(
        &self,
        typ: &TokenType,
        claims: &Claims<T>,
    ) -> Result<SecretString> {
        let (_, key) = self.ring.current()?;
        key.sign_as(typ, claims)
    }
}

impl TokenSigner for SigningKeySet {
    type Error = Error;

    fn key_id(&self) -> &KeyId {
        &self.current
    }

    fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<SecretString> {
        SigningKeySet::sign(self, claims)
    }
}

impl AsymmetricSigner for SigningKeySet {
    type Verifier = JwtVerifier<VerifyingKey>;

    fn verifier(&self) -> JwtVerifier<VerifyingKey> {
        let mut keys = KeyRing::verify_only();
        for (id, key, _) in self.ring.iter() {
            // Ids are unique in the set, so no insertion collides.
            let _ = keys.insert_verify_only(id.clone(), key.verifying_key().clone());
        }
        JwtVerifier { keys, typ: None }
    }
}

// The common path without trait imports: each method below is the capability trait's,
// callable on the type itself.

impl SigningKeySet {
    /// A set holding one freshly generated key for `alg`.
    ///
    /// # Errors
    /// An algorithm that cannot be generated; randomness errors.
    pub fn generate(alg: crate::Algorithm) -> Result<Self> {
        Ok(Self::new(SigningKey::generate(alg)?))
    }

    /// Signs `claims` with the current key (`typ: JWT`) ([`TokenSigner::sign`]).
    ///
    /// # Errors
    /// Claims that do not serialize; signing errors.
    pub fn sign<T: Serialize>(&self, claims: &Claims<T>) -> Result<SecretString> {
        let (_, key) = self.ring.current()?;
        sign_claims(key, &TokenType::Jwt, claims)
    }

    /// The verifier of this set's tokens: every key's public half
    /// ([`AsymmetricSigner::verifier`]).
    pub fn verifier(&self) -> JwtVerifier<VerifyingKey> {
        AsymmetricSigner::verifier(self)
    }
}

impl<K: VerificationKey> JwtVerifier<K> {
    /// Authenticates `token` with the key its `kid` names, the algorithm pinned by that
    /// key, then applies `validation` ([`TokenVerifier::verify`]).
    ///
    /// # Errors
    /// Format, header, key, authenticity and claim errors.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        TokenVerifier::verify(self, token, validation)
    }
}
