//! Key files, loaded once into a typed [`Key`].
//!
//! The format is detected from the file's content, never from a token:
//!
//! | content | key |
//! |---|---|
//! | `k3.` / `k4.` `local` / `secret` / `public` | a PASERK key |
//! | `k3.` / `k4.` `local-wrap.pie` / `secret-wrap.pie` / `seal` / `local-pw` / `secret-pw` | a protected PASERK |
//! | a JSON object with `kty` | a JWK (public or private) |
//! | a JSON object with `keys` whose entries have `kty` | a JWKS |
//! | a JSON object with `keys` whose entries have `paserk` | a PASETO key set (`tokenctl keyset`) |
//! | `-----BEGIN …-----` | a PEM key (public or private) |
//!
//! What a JOSE key is for (signing, `ECDH-ES+A256KW`, `dir`) follows from its `alg`,
//! `use`, key type and curve; an RSA key without `alg` needs `--alg`. An `oct` JWK whose
//! `alg` is `HS256`/`HS384`/`HS512` is an HMAC secret, used only by
//! `tokenctl verify --allow-shared-secret`. Signing and encryption keys stay apart: a
//! key whose `alg` names a signature algorithm is never a JWE recipient, and an EC P-256
//! PEM key (which cannot say) is a signing key.
//!
//! A password-protected PASERK (`local-pw`, `secret-pw`) is recovered on loading when
//! the command was given `--password-file`.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use token_core::{KeyId, PasetoPurpose, PasetoVersion, SecretBytes};
use token_jwt::{
    Algorithm, DecryptingKey, DirectKey, EncryptingKey, HmacAlgorithm, HmacKey, Jwks, SigningKey,
    VerifyingKey,
};
use token_paseto::paserk::{PaserkVersion, ProtectedType};
use token_paseto::{LocalKey, PublicKey, PublicKeySet, SecretKey, V3, V4};

use crate::error::{Failure, Result};
use crate::util::{b64url_decode, read_text};

/// What to say about an RSA key that does not name its algorithm.
const RSA_ALG_HINT: &str = "pass --alg RS256 or --alg PS256 (verify also takes RS384, RS512, \
                            PS384 and PS512)";

/// A PASETO `local` key.
pub(crate) enum Local {
    /// `k3.local`.
    V3(LocalKey<V3>),
    /// `k4.local`.
    V4(LocalKey<V4>),
}

impl Local {
    /// The key's `lid`.
    pub(crate) fn id(&self) -> &KeyId {
        match self {
            Self::V3(k) => k.id(),
            Self::V4(k) => k.id(),
        }
    }

    /// The PASETO version.
    pub(crate) fn version(&self) -> PasetoVersion {
        match self {
            Self::V3(_) => PasetoVersion::V3,
            Self::V4(_) => PasetoVersion::V4,
        }
    }
}

/// A PASETO `public` signing key.
pub(crate) enum Secret {
    /// `k3.secret`.
    V3(Box<SecretKey<V3>>),
    /// `k4.secret`.
    V4(Box<SecretKey<V4>>),
}

impl Secret {
    /// The key's `sid`.
    pub(crate) fn id(&self) -> &KeyId {
        match self {
            Self::V3(k) => k.id(),
            Self::V4(k) => k.id(),
        }
    }

    /// The public half.
    pub(crate) fn public(&self) -> Public {
        match self {
            Self::V3(k) => Public::V3(k.public_key().clone()),
            Self::V4(k) => Public::V4(k.public_key().clone()),
        }
    }

    /// The PASETO version.
    pub(crate) fn version(&self) -> PasetoVersion {
        match self {
            Self::V3(_) => PasetoVersion::V3,
            Self::V4(_) => PasetoVersion::V4,
        }
    }
}

/// A PASETO `public` verifying key.
#[derive(Clone)]
pub(crate) enum Public {
    /// `k3.public`.
    V3(PublicKey<V3>),
    /// `k4.public`.
    V4(PublicKey<V4>),
}

impl Public {
    /// The key's `pid`.
    pub(crate) fn id(&self) -> &KeyId {
        match self {
            Self::V3(k) => k.id(),
            Self::V4(k) => k.id(),
        }
    }

    /// The PASETO version.
    pub(crate) fn version(&self) -> PasetoVersion {
        match self {
            Self::V3(_) => PasetoVersion::V3,
            Self::V4(_) => PasetoVersion::V4,
        }
    }
}

/// The kind of a protected PASERK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProtectedKind {
    /// `local-wrap.pie`.
    LocalWrap,
    /// `secret-wrap.pie`.
    SecretWrap,
    /// `seal`.
    Seal,
    /// `local-pw`.
    LocalPw,
    /// `secret-pw`.
    SecretPw,
}

impl ProtectedKind {
    /// Whether a password protects it (`local-pw`, `secret-pw`).
    pub(crate) const fn is_password(self) -> bool {
        matches!(self, Self::LocalPw | Self::SecretPw)
    }

    /// The PASERK type name.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::LocalWrap => "local-wrap.pie",
            Self::SecretWrap => "secret-wrap.pie",
            Self::Seal => "seal",
            Self::LocalPw => "local-pw",
            Self::SecretPw => "secret-pw",
        }
    }
}

/// A key protected for storage or distribution: wrapped, sealed or password-protected.
pub(crate) struct Protected {
    /// `k3` or `k4`.
    pub(crate) version: PaserkVersion,
    /// Which protection.
    pub(crate) kind: ProtectedKind,
    /// The PASERK text.
    pub(crate) text: SecretString,
}

/// A JWK, read but not yet turned into a key (what it is for depends on the command).
pub(crate) struct Jwk {
    text: SecretString,
    /// `kty`.
    pub(crate) kty: String,
    /// `crv`, if any.
    pub(crate) crv: Option<String>,
    /// `alg`, if any.
    pub(crate) alg: Option<String>,
    /// `use`, if any.
    pub(crate) use_: Option<String>,
    /// `kid`, if any.
    pub(crate) kid: Option<String>,
    /// Whether private or secret members are present.
    pub(crate) private: bool,
}

/// A PEM key, read but not yet parsed.
pub(crate) struct Pem {
    text: SecretString,
    /// The label (`PUBLIC KEY`, `PRIVATE KEY`, …).
    pub(crate) label: String,
    /// Whether it is a private key.
    pub(crate) private: bool,
}

/// What a JOSE key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoseRole {
    /// Signatures with this algorithm.
    Sign(Algorithm),
    /// `ECDH-ES+A256KW` key agreement (JWE).
    Ecdh,
    /// `dir` shared-key encryption (JWE).
    Direct,
    /// Legacy HMAC signatures with a shared secret (verified only on request).
    Hmac(HmacAlgorithm),
}

impl fmt::Display for JoseRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sign(alg) => write!(f, "JWS {alg}"),
            Self::Hmac(alg) => write!(f, "JWS {alg} (shared secret)"),
            Self::Ecdh => f.write_str("JWE ECDH-ES+A256KW"),
            Self::Direct => f.write_str("JWE dir"),
        }
    }
}

/// A key that opens a JWE.
pub(crate) enum Decrypter {
    /// `ECDH-ES+A256KW`.
    Ecdh(DecryptingKey),
    /// `dir`.
    Direct(DirectKey),
}

impl Decrypter {
    /// The key id tokens name it by.
    pub(crate) fn key_id(&self) -> &KeyId {
        match self {
            Self::Ecdh(k) => k.key_id(),
            Self::Direct(k) => k.key_id(),
        }
    }

    /// The same key under another id (`verify --kid`).
    pub(crate) fn with_key_id(self, kid: KeyId) -> Self {
        match self {
            Self::Ecdh(k) => Self::Ecdh(k.with_key_id(kid)),
            Self::Direct(k) => Self::Direct(k.with_key_id(kid)),
        }
    }
}

/// A key a JWE is made for.
pub(crate) enum Recipient {
    /// `ECDH-ES+A256KW` to a public key.
    Ecdh(EncryptingKey),
    /// `dir` with a shared key.
    Direct(DirectKey),
}

/// A key file's content, typed.
pub(crate) enum Key {
    /// `k3.local` / `k4.local`.
    Local(Local),
    /// `k3.secret` / `k4.secret`.
    Secret(Secret),
    /// `k3.public` / `k4.public`.
    Public(Public),
    /// A wrapped, sealed or password-protected PASERK.
    Protected(Protected),
    /// A JWK.
    Jwk(Jwk),
    /// A JWKS (public keys only).
    Jwks(Jwks),
    /// A PASETO key set: PASERK public keys by id.
    Keyset(Vec<Public>),
    /// A PEM key.
    Pem(Pem),
}

/// A key file: where it came from and what it holds.
pub(crate) struct KeyFile {
    /// The path it was read from.
    pub(crate) path: PathBuf,
    /// The key.
    pub(crate) key: Key,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .field("key", &self.describe())
            .finish()
    }
}

/// `v3` / `v4`.
pub(crate) const fn version_name(v: PasetoVersion) -> &'static str {
    match v {
        PasetoVersion::V1 => "v1",
        PasetoVersion::V2 => "v2",
        PasetoVersion::V3 => "v3",
        PasetoVersion::V4 => "v4",
    }
}

/// `k3` / `k4`: the PASERK prefix of keys for a PASETO version.
const fn paserk_prefix(v: PasetoVersion) -> &'static str {
    match v {
        PasetoVersion::V1 => "k1",
        PasetoVersion::V2 => "k2",
        PasetoVersion::V3 => "k3",
        PasetoVersion::V4 => "k4",
    }
}

/// `local` / `public`.
pub(crate) const fn purpose_name(p: PasetoPurpose) -> &'static str {
    match p {
        PasetoPurpose::Local => "local",
        PasetoPurpose::Public => "public",
    }
}

fn paserk_error(e: &token_paseto::Error) -> String {
    match e {
        token_paseto::Error::InvalidPaserk(why) => format!("invalid PASERK: {why}"),
        token_paseto::Error::InvalidKey(why) => format!("invalid key: {why}"),
        other => other.to_string(),
    }
}

fn parse_paserk(text: &str) -> Result<Key, String> {
    let (version, rest) = match text.split_once('.') {
        Some(("k3", rest)) => (PaserkVersion::K3, rest),
        Some(("k4", rest)) => (PaserkVersion::K4, rest),
        _ => return Err("unknown PASERK version".into()),
    };
    let ty = rest.split('.').next().unwrap_or_default();
    let e = |e: token_paseto::Error| paserk_error(&e);
    // A protected PASERK is checked as far as it can be without its key or password,
    // by the parse that unwrapping, unsealing and unprotecting run first.
    let protected = || {
        let (version, ty) = token_paseto::paserk::check_protected(text).map_err(e)?;
        let kind = match ty {
            ProtectedType::LocalWrapPie => ProtectedKind::LocalWrap,
            ProtectedType::SecretWrapPie => ProtectedKind::SecretWrap,
            ProtectedType::Seal => ProtectedKind::Seal,
            ProtectedType::LocalPw => ProtectedKind::LocalPw,
            ProtectedType::SecretPw => ProtectedKind::SecretPw,
            _ => return Err("unknown protected PASERK type".to_owned()),
        };
        Ok(Key::Protected(Protected {
            version,
            kind,
            text: SecretString::from(text.to_owned()),
        }))
    };
    match (ty, version) {
        ("local", PaserkVersion::K3) => Ok(Key::Local(Local::V3(
            LocalKey::from_paserk(text).map_err(e)?,
        ))),
        ("local", PaserkVersion::K4) => Ok(Key::Local(Local::V4(
            LocalKey::from_paserk(text).map_err(e)?,
        ))),
        ("secret", PaserkVersion::K3) => Ok(Key::Secret(Secret::V3(Box::new(
            SecretKey::from_paserk(text).map_err(e)?,
        )))),
        ("secret", PaserkVersion::K4) => Ok(Key::Secret(Secret::V4(Box::new(
            SecretKey::from_paserk(text).map_err(e)?,
        )))),
        ("public", _) => parse_public(text).map(Key::Public),
        ("local-wrap" | "secret-wrap" | "seal" | "local-pw" | "secret-pw", _) => protected(),
        ("lid" | "pid" | "sid", _) => Err("a PASERK key id, not a key".into()),
        _ => Err("unknown PASERK type".into()),
    }
}

fn parse_public(text: &str) -> Result<Public, String> {
    let e = |e: token_paseto::Error| paserk_error(&e);
    if text.starts_with("k3.public.") {
        Ok(Public::V3(PublicKey::from_paserk(text).map_err(e)?))
    } else if text.starts_with("k4.public.") {
        Ok(Public::V4(PublicKey::from_paserk(text).map_err(e)?))
    } else {
        Err("not a k3.public / k4.public PASERK".into())
    }
}

fn string(map: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("JWK member `{name}` is not a string")),
    }
}

fn parse_jwk(text: &str, map: &Map<String, Value>) -> Result<Key, String> {
    let kty = string(map, "kty")?.ok_or("JWK without `kty`")?;
    let private = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
        .iter()
        .any(|m| map.contains_key(*m));
    Ok(Key::Jwk(Jwk {
        text: SecretString::from(text.to_owned()),
        kty,
        crv: string(map, "crv")?,
        alg: string(map, "alg")?,
        use_: string(map, "use")?,
        kid: string(map, "kid")?,
        private,
    }))
}

fn parse_keyset(text: &str) -> Result<Key, String> {
    let set = PublicKeySet::from_json(text).map_err(|e| match e {
        token_paseto::Error::Core(token_core::Error::DuplicateKeyId(kid)) => {
            format!("the key set lists `{kid}` more than once")
        }
        e => paserk_error(&e),
    })?;
    let keys: Vec<Public> = set
        .v4()
        .iter()
        .cloned()
        .map(Public::V4)
        .chain(set.v3().iter().cloned().map(Public::V3))
        .collect();
    if keys.is_empty() {
        return Err("the key set holds no key".into());
    }
    Ok(Key::Keyset(keys))
}

fn parse_json(text: &str) -> Result<Key, String> {
    // Read strictly, like every key document the libraries read.
    let value: Value = token_core::json::from_slice(text.as_bytes()).map_err(|e| match e {
        token_core::Error::DuplicateMember(name) => format!("`{name}` is named more than once"),
        other => format!("not valid JSON ({other})"),
    })?;
    let Value::Object(map) = &value else {
        return Err("JSON that is not an object".into());
    };
    if let Some(keys) = map.get("keys") {
        let entries = keys.as_array().ok_or("`keys` is not an array")?;
        if !entries.is_empty() && entries.iter().all(|e| e.get("paserk").is_some()) {
            return parse_keyset(text);
        }
        let jwks = Jwks::from_json(text).map_err(|e| format!("invalid JWKS: {e}"))?;
        return Ok(Key::Jwks(jwks));
    }
    if map.contains_key("kty") {
        return parse_jwk(text, map);
    }
    Err("a JSON object that is neither a JWK (`kty`) nor a key set (`keys`)".into())
}

fn parse_pem(text: &str) -> Result<Key, String> {
    // The library's reading: one PEM block (a second key is refused, not ignored).
    let label = token_jwt::pem_label(text)
        .map_err(|e| match e {
            token_jwt::Error::InvalidKey(why) => why.to_owned(),
            other => other.to_string(),
        })?
        .to_owned();
    if !text.contains(&format!("-----END {label}-----")) {
        return Err(format!("PEM `{label}` without its END line"));
    }
    let private = label.contains("PRIVATE KEY");
    if !private && label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" && label != "CERTIFICATE" {
        return Err(format!("PEM `{label}` is not a key"));
    }
    Ok(Key::Pem(Pem {
        text: SecretString::from(text.to_owned()),
        label,
        private,
    }))
}

impl KeyFile {
    /// Reads and parses a key file. Every failure is a usage error (exit 2).
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = read_text(path, "key file")?;
        Self::parse(path, &text).map_err(Failure::usage)
    }

    /// [`KeyFile::load`], recovering a password-protected PASERK with the password in
    /// `password_file` when one is given. A wrong password exits 1, as `key unprotect`.
    pub(crate) fn load_with(path: &Path, password_file: Option<&Path>) -> Result<Self> {
        let file = Self::load(path)?;
        match (password_file, &file.key) {
            (Some(password_file), Key::Protected(p)) if p.kind.is_password() => {
                let password = read_password(password_file)?;
                file.unprotect(&password)
            }
            _ => Ok(file),
        }
    }

    /// The key a `local-pw` / `secret-pw` PASERK protects.
    fn unprotect(self, password: &SecretString) -> Result<Self> {
        let Key::Protected(p) = &self.key else {
            return Ok(self);
        };
        let text = p.text.expose_secret();
        let pw = password.expose_secret().as_bytes();
        let wrong = |e: token_paseto::Error| match e {
            token_paseto::Error::KeyRecoveryFailed => Failure::failed(format!(
                "{}: cannot recover the key: wrong password, or tampered data",
                self.path.display()
            )),
            other => Failure::usage(format!("{}: {other}", self.path.display())),
        };
        let key = match (p.version, p.kind) {
            (PaserkVersion::K4, ProtectedKind::LocalPw) => Key::Local(Local::V4(
                LocalKey::<V4>::unprotect(text, pw).map_err(wrong)?,
            )),
            (PaserkVersion::K3, ProtectedKind::LocalPw) => Key::Local(Local::V3(
                LocalKey::<V3>::unprotect(text, pw).map_err(wrong)?,
            )),
            (PaserkVersion::K4, ProtectedKind::SecretPw) => Key::Secret(Secret::V4(Box::new(
                SecretKey::<V4>::unprotect(text, pw).map_err(wrong)?,
            ))),
            (PaserkVersion::K3, ProtectedKind::SecretPw) => Key::Secret(Secret::V3(Box::new(
                SecretKey::<V3>::unprotect(text, pw).map_err(wrong)?,
            ))),
            _ => return Ok(self),
        };
        Ok(Self {
            path: self.path,
            key,
        })
    }

    /// Parses the content of a key file; the error says what is malformed.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let key = if trimmed.starts_with("k3.") || trimmed.starts_with("k4.") {
            parse_paserk(trimmed)
        } else if trimmed.starts_with('{') {
            parse_json(trimmed)
        } else if trimmed.contains("-----BEGIN ") {
            parse_pem(trimmed)
        } else {
            Err("not a key (expected a PASERK, a JWK, a JWKS or a PEM key)".into())
        };
        key.map(|key| Self {
            path: path.to_path_buf(),
            key,
        })
        .map_err(|e| format!("malformed key in {}: {e}", path.display()))
    }

    /// A short description: `k4.local`, `JWK EC P-256 private`, `PEM PUBLIC KEY`, …
    pub(crate) fn describe(&self) -> String {
        match &self.key {
            Key::Local(k) => format!("{}.local", paserk_prefix(k.version())),
            Key::Secret(k) => format!("{}.secret", paserk_prefix(k.version())),
            Key::Public(k) => format!("{}.public", paserk_prefix(k.version())),
            Key::Protected(p) => format!("{}.{}", p.version.prefix(), p.kind.name()),
            Key::Jwk(j) => format!(
                "JWK {}{} {}",
                j.kty,
                j.crv
                    .as_deref()
                    .map(|c| format!(" {c}"))
                    .unwrap_or_default(),
                if j.private { "private" } else { "public" }
            ),
            Key::Jwks(j) => format!("JWKS of {} keys", j.len()),
            Key::Keyset(k) => format!("PASETO key set of {} keys", k.len()),
            Key::Pem(p) => format!("PEM {}", p.label),
        }
    }

    fn usage(&self, message: impl fmt::Display) -> Failure {
        Failure::usage(format!("{}: {message}", self.path.display()))
    }

    fn jwt_error(&self, e: &token_jwt::Error) -> Failure {
        self.usage(e)
    }

    /// What this JOSE key is for. `alg` (from `--alg`) decides for keys that do not say
    /// (RSA keys without `alg`, PEM keys). `None` for PASETO keys.
    pub(crate) fn jose_role(&self, alg: Option<Algorithm>) -> Result<Option<JoseRole>> {
        match &self.key {
            Key::Jwk(jwk) => self.jwk_role(jwk, alg).map(Some),
            Key::Pem(pem) => self.pem_role(pem, alg).map(Some),
            _ => Ok(None),
        }
    }

    fn jwk_role(&self, jwk: &Jwk, alg: Option<Algorithm>) -> Result<JoseRole> {
        if let Some(own) = jwk.alg.as_deref() {
            let role = match own {
                "ECDH-ES+A256KW" => JoseRole::Ecdh,
                "dir" => JoseRole::Direct,
                name if name.starts_with("HS") => {
                    JoseRole::Hmac(HmacAlgorithm::from_name(name).ok_or_else(|| {
                        self.usage(format!("the JWK's algorithm `{name}` is not supported"))
                    })?)
                }
                name => JoseRole::Sign(Algorithm::from_name(name).ok_or_else(|| {
                    self.usage(format!("the JWK's algorithm `{name}` is not supported"))
                })?),
            };
            if let (Some(want), JoseRole::Sign(have)) = (alg, role) {
                if want != have {
                    return Err(
                        self.usage(format!("the JWK says `alg: {have}` but --alg says {want}"))
                    );
                }
            }
            return Ok(role);
        }
        let enc = jwk.use_.as_deref() == Some("enc");
        match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("oct", _) => Ok(JoseRole::Direct),
            ("OKP", Some("X25519")) => Ok(JoseRole::Ecdh),
            ("EC", Some("P-256")) if enc => Ok(JoseRole::Ecdh),
            ("EC", Some("P-256")) => Ok(JoseRole::Sign(alg.unwrap_or(Algorithm::Es256))),
            ("EC", Some("P-384")) => Ok(JoseRole::Sign(alg.unwrap_or(Algorithm::Es384))),
            ("EC", Some("P-521")) => Ok(JoseRole::Sign(alg.unwrap_or(Algorithm::Es512))),
            ("OKP", Some("Ed25519")) => Ok(JoseRole::Sign(alg.unwrap_or(Algorithm::EdDsa))),
            ("RSA", _) => alg
                .map(JoseRole::Sign)
                .ok_or_else(|| self.usage(format!("an RSA JWK without `alg`: {RSA_ALG_HINT}"))),
            (kty, crv) => Err(self.usage(format!(
                "unsupported JWK key type {kty}{}",
                crv.map(|c| format!(" {c}")).unwrap_or_default()
            ))),
        }
    }

    fn pem_role(&self, pem: &Pem, alg: Option<Algorithm>) -> Result<JoseRole> {
        let text = pem.text.expose_secret();
        let try_alg = |a: Algorithm| -> std::result::Result<(), token_jwt::Error> {
            if pem.private {
                SigningKey::from_pem(a, text).map(drop)
            } else {
                VerifyingKey::from_pem(a, text).map(drop)
            }
        };
        if let Some(a) = alg {
            return match try_alg(a) {
                Ok(()) => Ok(JoseRole::Sign(a)),
                Err(e) => Err(self.jwt_error(&e)),
            };
        }
        let mut last = None;
        // ES512 only verifies: a private P-521 key has nothing to sign with here.
        let candidates: &[Algorithm] = if pem.private {
            &[Algorithm::Es256, Algorithm::Es384, Algorithm::EdDsa]
        } else {
            &[
                Algorithm::Es256,
                Algorithm::Es384,
                Algorithm::EdDsa,
                Algorithm::Es512,
            ]
        };
        for &a in candidates {
            match try_alg(a) {
                Ok(()) => return Ok(JoseRole::Sign(a)),
                Err(token_jwt::Error::KeyAlgorithmMismatch { .. }) => {}
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        if last.is_none() {
            if try_alg(Algorithm::Rs256).is_ok() {
                return Err(self.usage(format!("an RSA PEM key: {RSA_ALG_HINT}")));
            }
            let ecdh = if pem.private {
                DecryptingKey::from_pem(text).map(drop)
            } else {
                EncryptingKey::from_pem(text).map(drop)
            };
            match ecdh {
                Ok(()) => return Ok(JoseRole::Ecdh),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(|| self.usage("unsupported PEM key"), |e| self.jwt_error(&e)))
    }

    /// The signature verification keys this file holds (the public half of a private
    /// key included). Empty for PASETO keys and JWE keys.
    pub(crate) fn verifying_keys(&self, alg: Option<Algorithm>) -> Result<Vec<VerifyingKey>> {
        match &self.key {
            Key::Jwks(jwks) => match jwks.verifying_keys() {
                Ok(ring) => Ok(ring
                    .iter()
                    .map(|(id, key, _)| key.clone().with_key_id(id.clone()))
                    .collect()),
                Err(token_jwt::Error::EmptyKeySet) => Ok(Vec::new()),
                Err(e) => Err(self.jwt_error(&e)),
            },
            Key::Jwk(jwk) => match self.jwk_role(jwk, alg)? {
                JoseRole::Sign(a) => {
                    let text = jwk.text.expose_secret();
                    let key = if jwk.private {
                        SigningKey::from_jwk(a, text).map(|k| k.verifying_key().clone())
                    } else {
                        VerifyingKey::from_jwk(a, text)
                    };
                    key.map(|k| vec![k]).map_err(|e| self.jwt_error(&e))
                }
                JoseRole::Ecdh | JoseRole::Direct | JoseRole::Hmac(_) => Ok(Vec::new()),
            },
            Key::Pem(pem) => match self.pem_role(pem, alg)? {
                JoseRole::Sign(a) => {
                    let text = pem.text.expose_secret();
                    let key = if pem.private {
                        SigningKey::from_pem(a, text).map(|k| k.verifying_key().clone())
                    } else {
                        VerifyingKey::from_pem(a, text)
                    };
                    key.map(|k| vec![k]).map_err(|e| self.jwt_error(&e))
                }
                JoseRole::Ecdh | JoseRole::Direct | JoseRole::Hmac(_) => Ok(Vec::new()),
            },
            _ => Ok(Vec::new()),
        }
    }

    /// The JWS signing key this file holds.
    pub(crate) fn signing_key(&self, alg: Option<Algorithm>) -> Result<SigningKey> {
        let (text, role) = match &self.key {
            Key::Jwk(jwk) if jwk.private => (jwk.text.expose_secret(), self.jwk_role(jwk, alg)?),
            Key::Pem(pem) if pem.private => (pem.text.expose_secret(), self.pem_role(pem, alg)?),
            _ => return Err(self.usage(format!("{} cannot sign", self.describe()))),
        };
        let a = match role {
            JoseRole::Sign(a) => a,
            JoseRole::Hmac(a) => {
                return Err(self.usage(format!(
                    "the JWK is an HMAC key (`alg: {a}`), a shared secret: tokenctl does not \
                     issue with one (every verifier could forge tokens); it only checks legacy \
                     HMAC JWTs (tokenctl verify --allow-shared-secret)"
                )));
            }
            JoseRole::Ecdh | JoseRole::Direct => {
                return Err(self.usage("an encryption key cannot sign"));
            }
        };
        let key = match &self.key {
            Key::Pem(_) => SigningKey::from_pem(a, text),
            _ => SigningKey::from_jwk(a, text),
        };
        key.map_err(|e| self.jwt_error(&e))
    }

    /// The JWE decryption key this file holds, if it holds one: a private `ECDH-ES`
    /// key (EC P-256 or X25519) or an `oct` key for `dir`.
    pub(crate) fn decrypter(&self) -> Result<Option<Decrypter>> {
        match &self.key {
            Key::Jwk(jwk) if jwk.private => {
                let text = jwk.text.expose_secret();
                let p256 = jwk.kty == "EC" && jwk.crv.as_deref() == Some("P-256");
                match self.jwk_role(jwk, None) {
                    Ok(JoseRole::Direct) => DirectKey::from_jwk(text)
                        .map(|k| Some(Decrypter::Direct(k)))
                        .map_err(|e| self.jwt_error(&e)),
                    Ok(JoseRole::Ecdh) => DecryptingKey::from_jwk(text)
                        .map(|k| Some(Decrypter::Ecdh(k)))
                        .map_err(|e| self.jwt_error(&e)),
                    // An EC P-256 key that does not say what it is for may be either.
                    Ok(JoseRole::Sign(_)) if p256 && jwk.alg.is_none() => {
                        Ok(DecryptingKey::from_jwk(text).ok().map(Decrypter::Ecdh))
                    }
                    Ok(JoseRole::Sign(_) | JoseRole::Hmac(_)) | Err(_) => Ok(None),
                }
            }
            Key::Pem(pem) if pem.private => Ok(DecryptingKey::from_pem(pem.text.expose_secret())
                .ok()
                .map(Decrypter::Ecdh)),
            _ => Ok(None),
        }
    }

    /// The JWE recipient key this file holds: a public (or private) `ECDH-ES` key, or
    /// an `oct` key for `dir`. Anything else is refused saying what the key is for
    /// instead: a signing key never receives encrypted tokens.
    pub(crate) fn recipient(&self) -> Result<Recipient> {
        const WANTED: &str = "a JWE recipient is an encryption key: an EC P-256 or X25519 \
                              JWK with `alg: ECDH-ES+A256KW` (tokenctl keygen ecdh-es-p256 or \
                              ecdh-es-x25519), or an `oct` JWK for `dir`";
        match &self.key {
            Key::Jwk(jwk) => {
                let text = jwk.text.expose_secret();
                match self.jwk_role(jwk, None)? {
                    JoseRole::Direct => DirectKey::from_jwk(text)
                        .map(Recipient::Direct)
                        .map_err(|e| self.jwt_error(&e)),
                    JoseRole::Ecdh if jwk.private => DecryptingKey::from_jwk(text)
                        .map(|k| Recipient::Ecdh(k.encrypting_key().clone()))
                        .map_err(|e| self.jwt_error(&e)),
                    JoseRole::Ecdh => EncryptingKey::from_jwk(text)
                        .map(Recipient::Ecdh)
                        .map_err(|e| self.jwt_error(&e)),
                    JoseRole::Sign(alg) => Err(self.usage(match &jwk.alg {
                        Some(own) => format!(
                            "a signing key (`alg: {}`), not an encryption key: {WANTED}",
                            crate::util::echo(own)
                        ),
                        None => format!(
                            "an {} {} JWK without `alg` or `use: enc` is taken for a signing \
                             key ({alg}): {WANTED}",
                            jwk.kty,
                            jwk.crv.as_deref().unwrap_or_default()
                        ),
                    })),
                    JoseRole::Hmac(alg) => Err(self.usage(format!(
                        "an HMAC key (`alg: {alg}`) is a shared signing secret, not an \
                         encryption key: {WANTED}"
                    ))),
                }
            }
            Key::Pem(pem) => match self.pem_role(pem, None) {
                Ok(JoseRole::Ecdh) => {
                    let text = pem.text.expose_secret();
                    if pem.private {
                        DecryptingKey::from_pem(text).map(|k| k.encrypting_key().clone())
                    } else {
                        EncryptingKey::from_pem(text)
                    }
                    .map(Recipient::Ecdh)
                    .map_err(|e| self.jwt_error(&e))
                }
                Ok(JoseRole::Sign(alg)) => Err(self.usage(format!(
                    "a PEM key cannot say what it is for, and this one is taken for a signing \
                     key ({alg}): {WANTED}"
                ))),
                Ok(JoseRole::Direct | JoseRole::Hmac(_)) => Err(self.usage(WANTED)),
                Err(e) => Err(e),
            },
            _ => Err(self.usage(format!("{} is no JOSE key: {WANTED}", self.describe()))),
        }
    }

    /// The public JWE keys (`ECDH-ES`) this file holds, for a published JWKS.
    pub(crate) fn encrypting_keys(&self) -> Result<Vec<EncryptingKey>> {
        match &self.key {
            Key::Jwks(jwks) => {
                let signing: Vec<String> = match jwks.verifying_keys() {
                    Ok(ring) => ring.iter().map(|(id, _, _)| id.to_string()).collect(),
                    Err(_) => Vec::new(),
                };
                Ok(jwks
                    .key_ids()
                    .flatten()
                    .filter(|kid| !signing.iter().any(|s| s == kid))
                    .filter_map(|kid| EncryptingKey::from_jwks(jwks, kid).ok())
                    .collect())
            }
            _ => match self.jose_role(None).ok().flatten() {
                Some(JoseRole::Ecdh) => match self.recipient()? {
                    Recipient::Ecdh(k) => Ok(vec![k]),
                    Recipient::Direct(_) => Ok(Vec::new()),
                },
                Some(JoseRole::Direct) => {
                    Err(self.usage("an `oct` key is a shared secret and is never published"))
                }
                _ => Ok(Vec::new()),
            },
        }
    }

    /// The PASETO keys that verify or decrypt tokens of `version` and `purpose`.
    pub(crate) fn paseto_keys(
        &self,
        version: PasetoVersion,
        purpose: PasetoPurpose,
    ) -> Vec<PasetoKey<'_>> {
        let fits = |v: PasetoVersion, p: PasetoPurpose| v == version && p == purpose;
        match &self.key {
            Key::Local(k) if fits(k.version(), PasetoPurpose::Local) => vec![PasetoKey::Local(k)],
            Key::Secret(k) if fits(k.version(), PasetoPurpose::Public) => {
                vec![PasetoKey::Public(k.public())]
            }
            Key::Public(k) if fits(k.version(), PasetoPurpose::Public) => {
                vec![PasetoKey::Public(k.clone())]
            }
            Key::Keyset(keys) => keys
                .iter()
                .filter(|k| fits(k.version(), purpose))
                .map(|k| PasetoKey::Public(k.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The RFC 7638 thumbprints (JOSE keys) or PASERK ids (PASETO keys) this file holds.
    pub(crate) fn ids(&self) -> Result<Vec<String>> {
        match &self.key {
            Key::Local(k) => Ok(vec![k.id().to_string()]),
            Key::Secret(k) => Ok(vec![k.id().to_string()]),
            Key::Public(k) => Ok(vec![k.id().to_string()]),
            Key::Keyset(keys) => Ok(keys.iter().map(|k| k.id().to_string()).collect()),
            Key::Protected(p) => Err(self.usage(format!(
                "a {}.{} PASERK has no id until it is recovered",
                p.version.prefix(),
                p.kind.name()
            ))),
            Key::Jwks(_) => {
                let mut ids: Vec<String> = self
                    .verifying_keys(None)?
                    .iter()
                    .map(VerifyingKey::thumbprint)
                    .collect();
                ids.extend(
                    self.encrypting_keys()?
                        .iter()
                        .map(EncryptingKey::thumbprint),
                );
                Ok(ids)
            }
            Key::Jwk(_) | Key::Pem(_) => self.thumbprint().map(|t| vec![t]),
        }
    }

    /// The RFC 7638 thumbprint of a JWK or PEM key (which does not depend on the
    /// algorithm, so RSA keys need no `--alg` here).
    pub(crate) fn thumbprint(&self) -> Result<String> {
        let role = match self.jose_role(None) {
            Ok(Some(role)) => role,
            Ok(None) => return Err(self.usage("not a JOSE key")),
            // An RSA key that does not name its algorithm: any RSA algorithm will do.
            Err(_) => self
                .jose_role(Some(Algorithm::Rs256))?
                .ok_or_else(|| self.usage("not a JOSE key"))?,
        };
        match role {
            JoseRole::Sign(a) => self
                .verifying_keys(Some(a))?
                .first()
                .map(VerifyingKey::thumbprint)
                .ok_or_else(|| self.usage("no key")),
            JoseRole::Ecdh => match self.recipient()? {
                Recipient::Ecdh(k) => Ok(k.thumbprint()),
                Recipient::Direct(_) => Err(self.usage("unreadable ECDH-ES key")),
            },
            JoseRole::Direct | JoseRole::Hmac(_) => self.oct_thumbprint(),
        }
    }

    /// Whether this is an `oct` JWK that may be an HMAC secret: its `alg` is an HMAC
    /// algorithm, or it names none.
    pub(crate) fn is_hmac_candidate(&self) -> bool {
        match &self.key {
            Key::Jwk(jwk) => {
                jwk.kty == "oct"
                    && jwk
                        .alg
                        .as_deref()
                        .is_none_or(|a| HmacAlgorithm::from_name(a).is_some())
            }
            _ => false,
        }
    }

    /// The legacy HMAC verification key this file holds, if it is an `oct` JWK for
    /// HMAC: its own `alg`, or `alg` (from `--alg`) when it names none. The algorithm
    /// always comes from the key or the command line, never from a token.
    pub(crate) fn hmac_key(&self, alg: Option<HmacAlgorithm>) -> Result<Option<HmacKey>> {
        if !self.is_hmac_candidate() {
            return Ok(None);
        }
        let Key::Jwk(jwk) = &self.key else {
            return Ok(None);
        };
        let own = jwk.alg.as_deref().and_then(HmacAlgorithm::from_name);
        let alg = match (own, alg) {
            (Some(own), Some(want)) if own != want => {
                return Err(self.usage(format!("the JWK says `alg: {own}` but --alg says {want}")));
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => {
                return Err(self.usage(
                    "an `oct` JWK without `alg`: pass --alg HS256, HS384 or HS512 (the \
                     algorithm comes from the key or the command line, never from the token)",
                ));
            }
        };
        HmacKey::dangerous_from_jwk(alg, jwk.text.expose_secret())
            .map(Some)
            .map_err(|e| self.jwt_error(&e))
    }

    fn oct_thumbprint(&self) -> Result<String> {
        let Key::Jwk(jwk) = &self.key else {
            return Err(self.usage("not an `oct` JWK"));
        };
        let value: Value =
            serde_json::from_str(jwk.text.expose_secret()).map_err(|_| self.usage("not a JWK"))?;
        let k = value
            .get("k")
            .and_then(Value::as_str)
            .and_then(b64url_decode)
            .ok_or_else(|| self.usage("`oct` JWK without a base64url `k`"))?;
        DirectKey::from_secret(SecretBytes::new(k))
            .map(|key| key.key_id().to_string())
            .map_err(|e| self.jwt_error(&e))
    }
}

/// A PASETO key that verifies or decrypts tokens.
pub(crate) enum PasetoKey<'a> {
    /// A `local` key.
    Local(&'a Local),
    /// A `public` verifying key.
    Public(Public),
}

/// Loads every key file given, recovering password-protected PASERKs with the password
/// in `password_file` when one is given.
pub(crate) fn load_all(paths: &[PathBuf], password_file: Option<&Path>) -> Result<Vec<KeyFile>> {
    paths
        .iter()
        .map(|p| KeyFile::load_with(p, password_file))
        .collect()
}

/// Reads a password file: its content without one trailing newline, never empty.
pub(crate) fn read_password(path: &Path) -> Result<SecretString> {
    let text = read_text(path, "password file")?;
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if password.is_empty() {
        return Err(Failure::usage(format!(
            "{}: the password is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(password.to_owned()))
}
