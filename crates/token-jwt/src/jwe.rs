//! Encrypted JWTs (JWE compact serialization): `ECDH-ES+A256KW` and `dir`, both with
//! `A256GCM` content encryption, and the nested signed-then-encrypted form.
//!
//! Refused before any key is used: every other `alg` (`RSA1_5` among them, whose
//! padding is a decryption oracle), every other `enc`, compression (`zip`), any `crit`.
//!
//! Authenticity: anyone holding an [`EncryptingKey`] (a public key) can make a token
//! that its [`DecryptingKey`] opens, so an `ECDH-ES` token proves nothing about who made
//! it. Claims under `ECDH-ES+A256KW` are therefore only reachable through the nested
//! form ([`DecryptingKey::decrypt_signed`]), which verifies the inner signature. A
//! [`DirectKey`] is a shared secret: its tokens are authentic among its holders, so it
//! also opens plain encrypted JWTs ([`DirectKey::decrypt`]).
//!
//! These keys do not implement [`TokenEncrypter`](token_core::TokenEncrypter): a
//! compact JWE has no additional authenticated data to bind an implicit assertion to.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock};

use josekit::JoseError;
use josekit::jwe::alg::ecdh_es::{EcdhEsJweDecrypter, EcdhEsJweEncrypter};
use josekit::jwe::{
    JweAlgorithm, JweContentEncryption, JweContext, JweDecrypter, JweEncrypter, JweHeader,
};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use token_core::{
    Claims, KeyId, MAX_TOKEN_LEN, NumericDate, SecretBytes, TokenFormat, TokenSigner,
    TokenVerifier, Validation, Verified,
};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::{Error, Result, invalid_token};
use crate::header::{Header, split};
use crate::jwk::{Curve, JwkIn, PublicKey, public_jwk, push_member};
use crate::jwks::Jwks;
use crate::key::pem_label;

/// The only content encryption accepted.
pub const CONTENT_ENCRYPTION: &str = "A256GCM";
const ECDH_ES_A256KW: &str = "ECDH-ES+A256KW";
const DIR: &str = "dir";
/// AES-256 key length (the `dir` key and the CEK).
const KEY_LEN: usize = 32;
/// AES-GCM IV and tag lengths, and the AES key wrap output for a 32-byte CEK.
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const WRAPPED_KEY_LEN: usize = 40;

/// josekit's JWE context with every content encryption but `A256GCM` and every
/// compression removed: a second wall behind the header checks.
static CONTEXT: LazyLock<JweContext> = LazyLock::new(|| {
    let mut ctx = JweContext::new();
    ctx.remove_compression("DEF");
    for enc in [
        "A128CBC-HS256",
        "A192CBC-HS384",
        "A256CBC-HS512",
        "A128GCM",
        "A192GCM",
    ] {
        ctx.remove_content_encryption(enc);
    }
    ctx
});

/// The curve of an `ECDH-ES+A256KW` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcdhCurve {
    /// NIST P-256.
    P256,
    /// X25519 (RFC 8037).
    X25519,
}

impl EcdhCurve {
    fn from_curve(curve: Curve) -> Result<Self> {
        match curve {
            Curve::P256 => Ok(Self::P256),
            Curve::X25519 => Ok(Self::X25519),
            Curve::P384 => Err(Error::UnsupportedKey(
                "ECDH-ES+A256KW keys are P-256 or X25519; P-384 is not supported",
            )),
            Curve::P521 => Err(Error::UnsupportedKey(
                "ECDH-ES+A256KW keys are P-256 or X25519; P-521 is not supported",
            )),
            Curve::Ed25519 => Err(Error::KeyAlgorithmMismatch {
                expected: ECDH_ES_A256KW,
                reason: "an Ed25519 key signs; X25519 is its key-agreement counterpart".into(),
            }),
        }
    }
}

/// The public key of a JWE recipient, for `ECDH-ES+A256KW` with `A256GCM`. Holds no
/// secret, so it is `Clone`. Its key id defaults to the RFC 7638 thumbprint.
#[derive(Clone)]
pub struct EncryptingKey {
    curve: EcdhCurve,
    kid: KeyId,
    public: PublicKey,
    encrypter: EcdhEsJweEncrypter,
}

impl fmt::Debug for EncryptingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptingKey")
            .field("curve", &self.curve)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl EncryptingKey {
    fn from_public(public: PublicKey, kid: Option<KeyId>) -> Result<Self> {
        let curve = match &public {
            PublicKey::Ec { curve, .. } | PublicKey::Okp { curve, .. } => {
                EcdhCurve::from_curve(*curve)?
            }
            PublicKey::Rsa { .. } => {
                return Err(Error::KeyAlgorithmMismatch {
                    expected: ECDH_ES_A256KW,
                    reason: public.describe(),
                });
            }
        };
        let encrypter = josekit::jwe::ECDH_ES_A256KW
            .encrypter_from_jwk(&public.to_josekit()?)
            .map_err(|_| Error::InvalidKey("josekit refused the key"))?;
        let kid = match kid {
            Some(kid) => kid,
            None => KeyId::new(public.thumbprint())?,
        };
        Ok(Self {
            curve,
            kid,
            public,
            encrypter,
        })
    }

    /// Reads a public key in PEM (`PUBLIC KEY`): EC P-256 or X25519.
    ///
    /// # Errors
    /// [`Error::InvalidKey`], [`Error::UnsupportedKey`], [`Error::KeyAlgorithmMismatch`].
    pub fn from_pem(pem: &str) -> Result<Self> {
        if pem_label(pem)? != "PUBLIC KEY" {
            return Err(Error::InvalidKey("not a public key PEM"));
        }
        let pkey = PKey::public_key_from_pem(pem.as_bytes())
            .map_err(|_| Error::InvalidKey("unreadable PEM"))?;
        Self::from_public(PublicKey::from_openssl(&pkey)?, None)
    }

    /// Reads a DER SubjectPublicKeyInfo: EC P-256 or X25519.
    ///
    /// # Errors
    /// As [`EncryptingKey::from_pem`].
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let pkey = PKey::public_key_from_der(der)
            .map_err(|_| Error::InvalidKey("unreadable DER public key"))?;
        Self::from_public(PublicKey::from_openssl(&pkey)?, None)
    }

    /// Reads a public JWK (EC P-256 or OKP X25519). Its `alg`, when present, must be
    /// `ECDH-ES+A256KW`; its `use`, when present, `enc`.
    ///
    /// # Errors
    /// As [`EncryptingKey::from_pem`]; [`Error::InvalidKey`] for a private JWK.
    pub fn from_jwk(jwk: &str) -> Result<Self> {
        let jwk = JwkIn::parse(jwk)?;
        if jwk.has_private_parts() {
            return Err(Error::InvalidKey(
                "a private JWK; import it as a DecryptingKey",
            ));
        }
        Self::from_jwk_in(&jwk)
    }

    fn from_jwk_in(jwk: &JwkIn) -> Result<Self> {
        check_enc_jwk(jwk, "deriveKey")?;
        let kid = jwk.kid.as_deref().map(KeyId::new).transpose()?;
        Self::from_public(PublicKey::from_jwk(jwk)?, kid)
    }

    /// The entry `kid` of a JWKS the caller fetched.
    ///
    /// # Errors
    /// [`token_core::Error::UnknownKeyId`] if the set has no such entry; otherwise as
    /// [`EncryptingKey::from_jwk`].
    pub fn from_jwks(jwks: &Jwks, kid: &str) -> Result<Self> {
        let jwk = jwks
            .entries()
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or(token_core::Error::UnknownKeyId)?;
        Self::from_jwk_in(jwk)
    }

    /// Replaces the key id.
    #[must_use]
    pub fn with_key_id(mut self, kid: KeyId) -> Self {
        self.kid = kid;
        self
    }

    /// The curve.
    pub fn curve(&self) -> EcdhCurve {
        self.curve
    }

    /// The key id written into each token's header.
    pub fn key_id(&self) -> &KeyId {
        &self.kid
    }

    /// The RFC 7638 JWK thumbprint of the key.
    pub fn thumbprint(&self) -> String {
        self.public.thumbprint()
    }

    /// The public JWK, with `kid`, `alg: "ECDH-ES+A256KW"` and `use: "enc"`.
    pub fn to_jwk(&self) -> String {
        serde_json::Value::Object(self.jwk_members()).to_string()
    }

    fn jwk_members(&self) -> serde_json::Map<String, serde_json::Value> {
        public_jwk(&self.public, self.kid.as_str(), ECDH_ES_A256KW, "enc")
    }

    /// Signs `claims` with `signer`, then encrypts the signed JWT to this key
    /// (`cty: "JWT"`, RFC 7519 section 5.2): the nested form, private and authentic.
    ///
    /// # Errors
    /// The signer's errors; [`Error::EncryptionFailed`];
    /// [`token_core::Error::TokenTooLong`] for a token over the limit.
    pub fn encrypt_signed<T: Serialize, S: TokenSigner<Error = Error>>(
        &self,
        signer: &S,
        claims: &Claims<T>,
    ) -> Result<SecretString> {
        encrypt_signed(&self.encrypter, &self.kid, signer, claims)
    }
}

impl Jwks {
    /// Adds a JWE recipient key (with `kid`, `alg: "ECDH-ES+A256KW"` and `use: "enc"`).
    pub fn push_encrypting_key(&mut self, key: &EncryptingKey) {
        self.push_members(key.jwk_members());
    }
}

/// The private key of a JWE recipient, for `ECDH-ES+A256KW` with `A256GCM`.
///
/// Not `Clone`; `Debug` shows only the curve and key id. A single key: the token's
/// `kid` is not consulted (a wrong key fails as `InvalidToken`).
pub struct DecryptingKey {
    private: PKey<Private>,
    decrypter: EcdhEsJweDecrypter,
    encrypting: EncryptingKey,
}

impl fmt::Debug for DecryptingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptingKey")
            .field("curve", &self.encrypting.curve)
            .field("kid", &self.encrypting.kid)
            .finish_non_exhaustive()
    }
}

impl DecryptingKey {
    /// Generates a fresh key on `curve`.
    ///
    /// # Errors
    /// [`Error::EncryptionFailed`] if OpenSSL cannot generate the key.
    pub fn generate(curve: EcdhCurve) -> Result<Self> {
        let failed = |_| Error::EncryptionFailed;
        let pkey = match curve {
            EcdhCurve::P256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(failed)?;
                PKey::from_ec_key(EcKey::generate(&group).map_err(failed)?).map_err(failed)?
            }
            EcdhCurve::X25519 => PKey::generate_x25519().map_err(failed)?,
        };
        Self::from_openssl(pkey, None)
    }

    /// Reads a private key in PEM (`PRIVATE KEY` or `EC PRIVATE KEY`): EC P-256 or
    /// X25519. Encrypted PEM is refused.
    ///
    /// # Errors
    /// [`Error::InvalidKey`], [`Error::UnsupportedKey`], [`Error::KeyAlgorithmMismatch`].
    pub fn from_pem(pem: &str) -> Result<Self> {
        match pem_label(pem)? {
            "PRIVATE KEY" | "EC PRIVATE KEY" if !pem.contains("ENCRYPTED") => {}
            "ENCRYPTED PRIVATE KEY" | "EC PRIVATE KEY" => {
                return Err(Error::UnsupportedKey("encrypted PEM; decrypt it first"));
            }
            _ => return Err(Error::InvalidKey("not a private key PEM")),
        }
        let pkey = PKey::private_key_from_pem_passphrase(pem.as_bytes(), b"")
            .map_err(|_| Error::InvalidKey("unreadable private key PEM"))?;
        Self::from_openssl(pkey, None)
    }

    /// Reads a DER private key (PKCS#8 or SEC 1): EC P-256 or X25519.
    ///
    /// # Errors
    /// As [`DecryptingKey::from_pem`].
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let pkey = PKey::private_key_from_der(der)
            .map_err(|_| Error::InvalidKey("unreadable DER private key"))?;
        Self::from_openssl(pkey, None)
    }

    /// Reads a private JWK (EC P-256 or OKP X25519, with `d`); the public members must
    /// belong to `d`.
    ///
    /// # Errors
    /// As [`DecryptingKey::from_pem`].
    pub fn from_jwk(jwk: &str) -> Result<Self> {
        let jwk = JwkIn::parse(jwk)?;
        check_enc_jwk(&jwk, "deriveKey")?;
        let kid = jwk.kid.as_deref().map(KeyId::new).transpose()?;
        let public = PublicKey::from_jwk(&jwk)?;
        let d = jwk.secret("d")?;
        let bad = |_| Error::InvalidKey("private key");
        let pkey = match &public {
            PublicKey::Ec {
                curve: Curve::P256,
                x,
                y,
            } => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(bad)?;
                let mut ctx = openssl::bn::BigNumContext::new().map_err(bad)?;
                let mut sec1 = vec![0x04];
                sec1.extend_from_slice(x);
                sec1.extend_from_slice(y);
                let point =
                    openssl::ec::EcPoint::from_bytes(&group, &sec1, &mut ctx).map_err(bad)?;
                if d.len() != KEY_LEN {
                    return Err(Error::InvalidKey("EC `d` of the wrong length"));
                }
                let d = openssl::bn::BigNum::from_slice(&d).map_err(bad)?;
                let key = EcKey::from_private_components(&group, &d, &point).map_err(bad)?;
                key.check_key()
                    .map_err(|_| Error::InvalidKey("`x`/`y` are not the public key of `d`"))?;
                PKey::from_ec_key(key).map_err(bad)?
            }
            PublicKey::Okp {
                curve: Curve::X25519,
                ..
            } => PKey::private_key_from_raw_bytes(&d, Id::X25519).map_err(bad)?,
            _ => return Self::from_public_only(public, kid),
        };
        let key = Self::from_openssl(pkey, kid)?;
        if key.encrypting.public != public {
            return Err(Error::InvalidKey("`x` is not the public key of `d`"));
        }
        Ok(key)
    }

    /// The error for a key of the wrong kind.
    fn from_public_only(public: PublicKey, kid: Option<KeyId>) -> Result<Self> {
        EncryptingKey::from_public(public, kid)?;
        Err(Error::InvalidKey("private key"))
    }

    fn from_openssl(pkey: PKey<Private>, kid: Option<KeyId>) -> Result<Self> {
        let public = PublicKey::from_openssl(&pkey)?;
        let encrypting = EncryptingKey::from_public(public, kid)?;
        let der = Zeroizing::new(
            pkey.private_key_to_pkcs8()
                .map_err(|_| Error::InvalidKey("OpenSSL could not encode the private key"))?,
        );
        let decrypter = josekit::jwe::ECDH_ES_A256KW
            .decrypter_from_der(der.as_slice())
            .map_err(|_| Error::InvalidKey("josekit refused the private key"))?;
        Ok(Self {
            private: pkey,
            decrypter,
            encrypting,
        })
    }

    /// Replaces the key id.
    #[must_use]
    pub fn with_key_id(mut self, kid: KeyId) -> Self {
        self.encrypting = self.encrypting.with_key_id(kid);
        self
    }

    /// The key id.
    pub fn key_id(&self) -> &KeyId {
        &self.encrypting.kid
    }

    /// The public half, for senders and key sets.
    pub fn encrypting_key(&self) -> &EncryptingKey {
        &self.encrypting
    }

    /// The private JWK, in a [`SecretString`]. For moving the key into a secret store.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if OpenSSL cannot export the key.
    pub fn dangerous_to_private_jwk(&self) -> Result<SecretString> {
        let bad = |_| Error::InvalidKey("OpenSSL could not export the private key");
        let d = Zeroizing::new(match self.encrypting.curve {
            EcdhCurve::P256 => {
                let len = i32::try_from(KEY_LEN).map_err(|_| Error::InvalidKey("length"))?;
                self.private
                    .ec_key()
                    .map_err(bad)?
                    .private_key()
                    .to_vec_padded(len)
                    .map_err(bad)?
            }
            EcdhCurve::X25519 => self.private.raw_private_key().map_err(bad)?,
        });
        let mut out = Zeroizing::new(String::with_capacity(1024));
        out.push('{');
        for (name, value) in self.encrypting.jwk_members() {
            if let serde_json::Value::String(v) = value {
                push_member(&mut out, &name, &v);
            }
        }
        push_member(&mut out, "d", &Zeroizing::new(b64::encode(d.as_slice())));
        out.push('}');
        Ok(crate::jwk::into_secret(&out))
    }

    /// Decrypts a nested JWT (`cty: "JWT"`), then verifies the inner signed JWT with
    /// `verifier` and `validation`. The [`Verified`] carries the signer's key id.
    ///
    /// # Errors
    /// Header errors before any key is used ([`Error::AlgorithmNotAllowed`] for
    /// `RSA1_5` and every other `alg`, [`Error::EncryptionNotAllowed`],
    /// [`Error::CompressionNotAllowed`], [`Error::ContentTypeMismatch`], …); the opaque
    /// [`token_core::Error::InvalidToken`] when decryption fails; then the inner
    /// verification's errors.
    pub fn decrypt_signed<T: DeserializeOwned, V: TokenVerifier<Error = Error>>(
        &self,
        token: &str,
        verifier: &V,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        let (_, inner) = decrypt(token, ECDH_ES_A256KW, &self.decrypter, Cty::Nested)?;
        verify_inner(&inner, verifier, validation)
    }

    pub(crate) fn decrypt_raw(&self, token: &str) -> Result<(Header, Zeroizing<Vec<u8>>)> {
        decrypt(token, ECDH_ES_A256KW, &self.decrypter, Cty::Any)
    }
}

/// A shared 256-bit key for `dir` with `A256GCM`: it encrypts and decrypts.
///
/// Not `Clone`; `Debug` shows only the key id. Its key id defaults to the RFC 7638
/// thumbprint of the `oct` JWK; the token's `kid` is not consulted when decrypting.
pub struct DirectKey {
    kid: KeyId,
    cek: DirectCek,
}

impl fmt::Debug for DirectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DirectKey {
    /// Generates a fresh key from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`token_core::Error::RandomnessUnavailable`] if the OS generator fails.
    pub fn generate() -> Result<Self> {
        let mut bytes = vec![0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|_| token_core::Error::RandomnessUnavailable)?;
        Self::from_secret(SecretBytes::new(bytes))
    }

    /// Takes a 32-byte secret key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] unless the secret is exactly 32 bytes.
    pub fn from_secret(secret: SecretBytes) -> Result<Self> {
        if secret.len() != KEY_LEN {
            return Err(Error::InvalidKey("a `dir` A256GCM key is exactly 32 bytes"));
        }
        let k = Zeroizing::new(b64::encode(secret.expose_secret()));
        let thumbprint_input = Zeroizing::new(format!(r#"{{"k":"{}","kty":"oct"}}"#, k.as_str()));
        let kid = KeyId::new(b64::encode(<sha2::Sha256 as sha2::Digest>::digest(
            thumbprint_input.as_bytes(),
        )))?;
        Ok(Self {
            kid,
            cek: DirectCek {
                key: Arc::new(secret),
            },
        })
    }

    /// Reads an `oct` JWK of 32 bytes. Its `alg`, when present, must be `dir`.
    ///
    /// # Errors
    /// As [`DirectKey::from_secret`], and [`Error::InvalidKey`] for another key type.
    pub fn from_jwk(jwk: &str) -> Result<Self> {
        let jwk = JwkIn::parse(jwk)?;
        if jwk.kty != "oct" {
            return Err(Error::InvalidKey("a `dir` key must be an `oct` JWK"));
        }
        if let Some(own) = jwk.alg.as_deref() {
            if own != DIR {
                return Err(Error::KeyAlgorithmMismatch {
                    expected: DIR,
                    reason: format!("the JWK says `alg: {}`", crate::error::echo(own)),
                });
            }
        }
        if !jwk.allows("enc", "encrypt") {
            return Err(Error::InvalidKey(
                "the JWK's `use` or `key_ops` forbid encryption",
            ));
        }
        let key = Self::from_secret(SecretBytes::from_slice(&jwk.secret("k")?))?;
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

    /// The key id written into each token's header.
    pub fn key_id(&self) -> &KeyId {
        &self.kid
    }

    /// The key as an `oct` JWK with `kid`, `alg: "dir"` and `use: "enc"`, in a
    /// [`SecretString`]. Never publish it.
    pub fn dangerous_to_secret_jwk(&self) -> SecretString {
        let mut out = Zeroizing::new(String::with_capacity(1024));
        out.push('{');
        push_member(&mut out, "kty", "oct");
        push_member(&mut out, "kid", self.kid.as_str());
        push_member(&mut out, "alg", DIR);
        push_member(&mut out, "use", "enc");
        push_member(
            &mut out,
            "k",
            &Zeroizing::new(b64::encode(self.cek.key.expose_secret())),
        );
        out.push('}');
        crate::jwk::into_secret(&out)
    }

    /// Encrypts `claims` directly (`typ: "JWT"`, no inner signature): authentic among
    /// the holders of this key.
    ///
    /// # Errors
    /// Claim serialization errors; [`Error::EncryptionFailed`];
    /// [`token_core::Error::TokenTooLong`].
    pub fn encrypt<T: Serialize>(&self, claims: &Claims<T>) -> Result<SecretString> {
        let payload = Zeroizing::new(claims.to_json::<NumericDate>()?);
        encrypt(&self.cek, &self.kid, &payload, Some("JWT"), None)
    }

    /// Decrypts a directly encrypted JWT (no `cty`) and applies `validation`.
    ///
    /// # Errors
    /// As [`DecryptingKey::decrypt_signed`]; [`Error::ContentTypeMismatch`] for a nested
    /// JWT (open it with [`DirectKey::decrypt_signed`]); then claim errors.
    pub fn decrypt<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        let (_, payload) = decrypt(token, DIR, &self.cek, Cty::Claims)?;
        let claims = Claims::<T>::from_json::<NumericDate>(&payload)?;
        validation.validate(&claims)?;
        Ok(Verified::dangerous_assume_verified(
            claims,
            Some(self.kid.clone()),
            TokenFormat::Jwe,
        ))
    }

    /// Signs `claims` with `signer`, then encrypts the signed JWT (`cty: "JWT"`).
    ///
    /// # Errors
    /// As [`EncryptingKey::encrypt_signed`].
    pub fn encrypt_signed<T: Serialize, S: TokenSigner<Error = Error>>(
        &self,
        signer: &S,
        claims: &Claims<T>,
    ) -> Result<SecretString> {
        encrypt_signed(&self.cek, &self.kid, signer, claims)
    }

    /// Decrypts a nested JWT (`cty: "JWT"`), then verifies the inner signed JWT.
    ///
    /// # Errors
    /// As [`DecryptingKey::decrypt_signed`].
    pub fn decrypt_signed<T: DeserializeOwned, V: TokenVerifier<Error = Error>>(
        &self,
        token: &str,
        verifier: &V,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        let (_, inner) = decrypt(token, DIR, &self.cek, Cty::Nested)?;
        verify_inner(&inner, verifier, validation)
    }

    pub(crate) fn decrypt_raw(&self, token: &str) -> Result<(Header, Zeroizing<Vec<u8>>)> {
        decrypt(token, DIR, &self.cek, Cty::Any)
    }
}

/// `dir` over a zeroizing key. josekit's own `dir` objects keep the key in a plain
/// `Vec` (not cleared when dropped) and print it in their derived `Debug`.
#[derive(Clone)]
struct DirectCek {
    key: Arc<SecretBytes>,
}

impl fmt::Debug for DirectCek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DirectCek([REDACTED])")
    }
}

/// josekit's `dir` algorithm object, for `algorithm()`.
const DIR_ALGORITHM: &josekit::jwe::alg::direct::DirectJweAlgorithm = &josekit::jwe::Dir;

impl JweEncrypter for DirectCek {
    fn algorithm(&self) -> &dyn JweAlgorithm {
        DIR_ALGORITHM
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn compute_content_encryption_key(
        &self,
        cencryption: &dyn JweContentEncryption,
        _in_header: &JweHeader,
        _out_header: &mut JweHeader,
    ) -> Result<Option<Cow<'_, [u8]>>, JoseError> {
        if cencryption.key_len() == self.key.len() {
            Ok(Some(Cow::Borrowed(self.key.expose_secret())))
        } else {
            Err(JoseError::InvalidKeyFormat(anyhow::Error::msg(
                "the `dir` key does not fit the content encryption",
            )))
        }
    }

    fn encrypt(
        &self,
        _key: &[u8],
        _in_header: &JweHeader,
        _out_header: &mut JweHeader,
    ) -> Result<Option<Vec<u8>>, JoseError> {
        Ok(None)
    }

    fn box_clone(&self) -> Box<dyn JweEncrypter> {
        Box::new(self.clone())
    }
}

impl JweDecrypter for DirectCek {
    fn algorithm(&self) -> &dyn JweAlgorithm {
        DIR_ALGORITHM
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn decrypt(
        &self,
        encrypted_key: Option<&[u8]>,
        _cencryption: &dyn JweContentEncryption,
        _header: &JweHeader,
    ) -> Result<Cow<'_, [u8]>, JoseError> {
        if encrypted_key.is_some() {
            return Err(JoseError::InvalidJweFormat(anyhow::Error::msg(
                "`dir` takes no encrypted key",
            )));
        }
        Ok(Cow::Borrowed(self.key.expose_secret()))
    }

    fn box_clone(&self) -> Box<dyn JweDecrypter> {
        Box::new(self.clone())
    }
}

/// What `cty` a decryption demands.
#[derive(Clone, Copy)]
enum Cty {
    Nested,
    Claims,
    Any,
}

/// A JWE key's own `alg`, `use` and `key_ops` must allow encryption.
fn check_enc_jwk(jwk: &JwkIn, op: &str) -> Result<()> {
    if let Some(own) = jwk.alg.as_deref() {
        if own != ECDH_ES_A256KW {
            return Err(Error::KeyAlgorithmMismatch {
                expected: ECDH_ES_A256KW,
                reason: format!("the JWK says `alg: {}`", crate::error::echo(own)),
            });
        }
    }
    if !jwk.allows("enc", op) {
        return Err(Error::InvalidKey(
            "the JWK's `use` or `key_ops` forbid key agreement",
        ));
    }
    Ok(())
}

fn encrypt(
    encrypter: &dyn JweEncrypter,
    kid: &KeyId,
    payload: &[u8],
    typ: Option<&str>,
    cty: Option<&str>,
) -> Result<SecretString> {
    let mut header = JweHeader::new();
    header.set_content_encryption(CONTENT_ENCRYPTION);
    if let Some(typ) = typ {
        header.set_token_type(typ);
    }
    if let Some(cty) = cty {
        header.set_content_type(cty);
    }
    header.set_key_id(kid.as_str());
    let token = CONTEXT
        .serialize_compact(payload, &header, encrypter)
        .map_err(|_| Error::EncryptionFailed)?;
    if token.len() > MAX_TOKEN_LEN {
        return Err(token_core::Error::TokenTooLong {
            len: token.len(),
            max: MAX_TOKEN_LEN,
        }
        .into());
    }
    Ok(SecretString::from(token))
}

fn encrypt_signed<T: Serialize, S: TokenSigner<Error = Error>>(
    encrypter: &dyn JweEncrypter,
    kid: &KeyId,
    signer: &S,
    claims: &Claims<T>,
) -> Result<SecretString> {
    let inner = signer.sign(claims)?;
    encrypt(
        encrypter,
        kid,
        secrecy::ExposeSecret::expose_secret(&inner).as_bytes(),
        None,
        Some("JWT"),
    )
}

fn verify_inner<T: DeserializeOwned, V: TokenVerifier<Error = Error>>(
    inner: &[u8],
    verifier: &V,
    validation: &Validation,
) -> Result<Verified<T>> {
    let inner = std::str::from_utf8(inner)
        .map_err(|_| Error::MalformedToken("the nested JWT is not UTF-8"))?;
    let verified = verifier.verify::<T>(inner, validation)?;
    let kid = verified.key_id().cloned();
    Ok(Verified::dangerous_assume_verified(
        verified.into_claims(),
        kid,
        TokenFormat::Jwe,
    ))
}

/// Every check before the key is used, then josekit's decryption (whose failures are
/// all the opaque `InvalidToken`).
fn decrypt(
    token: &str,
    alg: &'static str,
    decrypter: &dyn JweDecrypter,
    cty: Cty,
) -> Result<(Header, Zeroizing<Vec<u8>>)> {
    let [header_b64, key_b64, iv_b64, _ciphertext_b64, tag_b64] =
        split::<5>(token, TokenFormat::Jwe)?;
    let header = Header::parse(header_b64, TokenFormat::Jwe)?;
    header.check_common()?;
    if header.zip().is_some() {
        return Err(Error::CompressionNotAllowed);
    }
    header.check_alg(alg)?;
    match header.enc() {
        Some(CONTENT_ENCRYPTION) => {}
        Some(other) => {
            return Err(Error::EncryptionNotAllowed {
                expected: CONTENT_ENCRYPTION,
                found: crate::error::echo(other),
            });
        }
        None => {
            return Err(Error::MalformedHeader(
                "JWE header without `enc`".to_owned(),
            ));
        }
    }
    match cty {
        Cty::Nested => header.check_cty(Some("JWT"))?,
        Cty::Claims => {
            header.check_cty(None)?;
            header.check_typ(None)?;
        }
        Cty::Any => {}
    }
    let key_len = b64::decode(key_b64)
        .ok_or(Error::MalformedToken("encrypted key is not base64url"))?
        .len();
    let expected_key_len = if alg == DIR { 0 } else { WRAPPED_KEY_LEN };
    if key_len != expected_key_len {
        return Err(Error::MalformedToken(if alg == DIR {
            "`dir` takes an empty encrypted key"
        } else {
            "the wrapped key is not 40 bytes"
        }));
    }
    if b64::decode(iv_b64).map(|iv| iv.len()) != Some(IV_LEN) {
        return Err(Error::MalformedToken("the A256GCM IV is not 12 bytes"));
    }
    if b64::decode(tag_b64).map(|t| t.len()) != Some(TAG_LEN) {
        return Err(invalid_token());
    }
    let (payload, _) = CONTEXT
        .deserialize_compact(token, decrypter)
        .map_err(|_| invalid_token())?;
    Ok((header, Zeroizing::new(payload)))
}
