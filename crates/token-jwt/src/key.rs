//! Public-key JWS keys: [`SigningKey`] and [`VerifyingKey`], each created for exactly one
//! [`Algorithm`], parsed once into its josekit signer or verifier.

use std::fmt;

use josekit::jws::JwsVerifier;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::X509;
use secrecy::SecretString;
use token_core::KeyId;
use zeroize::Zeroizing;

use crate::algorithm::Algorithm;
use crate::b64;
use crate::eddsa::{Ed25519Signer, Ed25519Verifier};
use crate::error::{Error, Result};
use crate::jwk::{Curve, JwkIn, PublicKey, public_jwk, push_member};

/// RSA modulus size of generated keys, in bits.
pub const GENERATED_RSA_BITS: u32 = 3072;

/// A public key that verifies JWS signatures of exactly one [`Algorithm`].
///
/// Holds no secret, so it is `Clone`. Its key id defaults to the RFC 7638 thumbprint.
#[derive(Clone)]
pub struct VerifyingKey {
    alg: Algorithm,
    kid: KeyId,
    public: PublicKey,
    verifier: Box<dyn JwsVerifier>,
    signature_len: usize,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Reads a public key in PEM: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1), or a
    /// `CERTIFICATE`, of which only the public key is taken (the certificate itself is
    /// not validated).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for unreadable input or a private key;
    /// [`Error::KeyAlgorithmMismatch`] when the key does not fit `alg`;
    /// [`Error::WeakKey`] / [`Error::UnsupportedKey`] as their names say.
    pub fn from_pem(alg: Algorithm, pem: &str) -> Result<Self> {
        let bad = |_| Error::InvalidKey("unreadable PEM");
        let pkey = match pem_label(pem)? {
            "PUBLIC KEY" => PKey::public_key_from_pem(pem.as_bytes()).map_err(bad)?,
            "RSA PUBLIC KEY" => {
                let rsa = Rsa::public_key_from_pem_pkcs1(pem.as_bytes()).map_err(bad)?;
                PKey::from_rsa(rsa).map_err(bad)?
            }
            "CERTIFICATE" => X509::from_pem(pem.as_bytes())
                .and_then(|c| c.public_key())
                .map_err(bad)?,
            label if label.contains("PRIVATE KEY") => {
                return Err(Error::InvalidKey(
                    "a private key PEM; build a SigningKey and take its verifying_key()",
                ));
            }
            _ => return Err(Error::InvalidKey("not a public key PEM")),
        };
        Self::from_public(alg, PublicKey::from_openssl(&pkey)?, None)
    }

    /// Reads a DER public key: SubjectPublicKeyInfo, or PKCS#1 `RSAPublicKey`.
    ///
    /// # Errors
    /// As [`VerifyingKey::from_pem`].
    pub fn from_der(alg: Algorithm, der: &[u8]) -> Result<Self> {
        let pkey = match PKey::public_key_from_der(der) {
            Ok(pkey) => pkey,
            Err(_) => Rsa::public_key_from_der_pkcs1(der)
                .and_then(PKey::from_rsa)
                .map_err(|_| Error::InvalidKey("unreadable DER public key"))?,
        };
        Self::from_public(alg, PublicKey::from_openssl(&pkey)?, None)
    }

    /// Reads a public JWK. Its `kid`, when present, becomes the key id; its `alg`, when
    /// present, must be `alg`; its `use`/`key_ops`, when present, must allow verifying.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for a malformed JWK or one with private members (import the
    /// private JWK as a [`SigningKey`] instead); otherwise as [`VerifyingKey::from_pem`].
    pub fn from_jwk(alg: Algorithm, jwk: &str) -> Result<Self> {
        let jwk = JwkIn::parse(jwk)?;
        if jwk.has_private_parts() {
            return Err(Error::InvalidKey(
                "a private JWK; import it as a SigningKey and take its verifying_key()",
            ));
        }
        check_jwk_use(&jwk, alg, "sig", "verify")?;
        let kid = jwk.kid.as_deref().map(KeyId::new).transpose()?;
        Self::from_public(alg, PublicKey::from_jwk(&jwk)?, kid)
    }

    /// Builds the verifier for `alg` from checked public components.
    pub(crate) fn from_public(
        alg: Algorithm,
        public: PublicKey,
        kid: Option<KeyId>,
    ) -> Result<Self> {
        let mismatch = || Error::KeyAlgorithmMismatch {
            expected: alg.name(),
            reason: public.describe(),
        };
        let invalid = |_| Error::InvalidKey("josekit refused the key");
        let verifier: Box<dyn JwsVerifier> = match (alg, &public) {
            (
                Algorithm::Es256,
                PublicKey::Ec {
                    curve: Curve::P256, ..
                },
            ) => Box::new(
                josekit::jws::ES256
                    .verifier_from_jwk(&public.to_josekit()?)
                    .map_err(invalid)?,
            ),
            (
                Algorithm::Es384,
                PublicKey::Ec {
                    curve: Curve::P384, ..
                },
            ) => Box::new(
                josekit::jws::ES384
                    .verifier_from_jwk(&public.to_josekit()?)
                    .map_err(invalid)?,
            ),
            (
                Algorithm::Es512,
                PublicKey::Ec {
                    curve: Curve::P521, ..
                },
            ) => Box::new(
                josekit::jws::ES512
                    .verifier_from_jwk(&public.to_josekit()?)
                    .map_err(invalid)?,
            ),
            (Algorithm::Rs256, PublicKey::Rsa { .. }) => Box::new(
                josekit::jws::RS256
                    .verifier_from_jwk(&public.to_josekit()?)
                    .map_err(invalid)?,
            ),
            (Algorithm::Rs384, PublicKey::Rsa { .. }) => Box::new(
                josekit::jws::RS384
                    .verifier_from_jwk(&public.to_josekit()?)
                    .map_err(invalid)?,
            ),
            (Algorithm::Rs512, PublicKey::Rsa { .. }) => Box::new(
                josekit::jws::RS512
                    .verifier_from_jwk(&public.to_josekit()?)
                    .map_err(invalid)?,
            ),
            (Algorithm::Ps256, PublicKey::Rsa { .. }) => Box::new(
                josekit::jws::PS256
                    .verifier_from_jwk(&public.to_josekit()?)
                    .map_err(invalid)?,
            ),
            (Algorithm::Ps384, PublicKey::Rsa { .. }) => Box::new(
                josekit::jws::PS384
                    .verifier_from_jwk(&public.to_josekit()?)
                    .map_err(invalid)?,
            ),
            (Algorithm::Ps512, PublicKey::Rsa { .. }) => Box::new(
                josekit::jws::PS512
                    .verifier_from_jwk(&public.to_josekit()?)
                    .map_err(invalid)?,
            ),
            (
                Algorithm::EdDsa,
                PublicKey::Okp {
                    curve: Curve::Ed25519,
                    x,
                },
            ) => {
                let bytes: [u8; 32] = x
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::InvalidKey("Ed25519 key length"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| Error::InvalidKey("Ed25519 public key is not a curve point"))?;
                Box::new(Ed25519Verifier::new(key))
            }
            _ => return Err(mismatch()),
        };
        let signature_len = alg
            .fixed_signature_len()
            .or_else(|| public.rsa_len())
            .ok_or_else(mismatch)?;
        let kid = match kid {
            Some(kid) => kid,
            None => KeyId::new(public.thumbprint())?,
        };
        Ok(Self {
            alg,
            kid,
            public,
            verifier,
            signature_len,
        })
    }

    /// Replaces the key id (by default the RFC 7638 thumbprint, or the JWK's `kid`).
    #[must_use]
    pub fn with_key_id(mut self, kid: KeyId) -> Self {
        self.kid = kid;
        self
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id tokens name this key by.
    pub fn key_id(&self) -> &KeyId {
        &self.kid
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key.
    pub fn thumbprint(&self) -> String {
        self.public.thumbprint()
    }

    /// The public JWK, with `kid`, `alg` and `use: "sig"`.
    pub fn to_jwk(&self) -> String {
        serde_json::Value::Object(self.jwk_members()).to_string()
    }

    pub(crate) fn jwk_members(&self) -> serde_json::Map<String, serde_json::Value> {
        public_jwk(&self.public, self.kid.as_str(), self.alg.name(), "sig")
    }

    pub(crate) fn verifier(&self) -> &dyn JwsVerifier {
        self.verifier.as_ref()
    }

    pub(crate) fn signature_len(&self) -> usize {
        self.signature_len
    }

    pub(crate) fn public(&self) -> &PublicKey {
        &self.public
    }
}

/// The private half of a [`SigningKey`].
enum PrivateKey {
    /// EC and RSA keys, held by OpenSSL (which clears them when freed).
    OpenSsl(PKey<Private>),
    /// Ed25519, held by `ed25519-dalek` (zeroized on drop).
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// A private key that signs JWS with exactly one [`Algorithm`].
///
/// Not `Clone`; `Debug` shows only the algorithm and key id. Its key id defaults to the
/// RFC 7638 thumbprint of the public key.
pub struct SigningKey {
    alg: Algorithm,
    signer: Box<dyn josekit::jws::JwsSigner>,
    private: PrivateKey,
    verifying: VerifyingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", self.key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key for `alg` from the operating system's CSPRNG (RSA keys are
    /// 3072 bits).
    ///
    /// # Errors
    /// [`token_core::Error::RandomnessUnavailable`] (in [`Error::Core`]) if the OS
    /// generator fails; [`Error::SigningFailed`] if OpenSSL cannot generate the key.
    pub fn generate(alg: Algorithm) -> Result<Self> {
        check_can_sign(alg)?;
        let failed = |_| Error::SigningFailed;
        let pkey = match alg {
            Algorithm::EdDsa => {
                let mut seed = Zeroizing::new([0u8; 32]);
                getrandom::fill(seed.as_mut())
                    .map_err(|_| token_core::Error::RandomnessUnavailable)?;
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                return Self::from_ed25519(key, None);
            }
            Algorithm::Es256 | Algorithm::Es384 => {
                let nid = if alg == Algorithm::Es256 {
                    Nid::X9_62_PRIME256V1
                } else {
                    Nid::SECP384R1
                };
                let group = EcGroup::from_curve_name(nid).map_err(failed)?;
                PKey::from_ec_key(EcKey::generate(&group).map_err(failed)?).map_err(failed)?
            }
            Algorithm::Ps256 | Algorithm::Rs256 => {
                PKey::from_rsa(Rsa::generate(GENERATED_RSA_BITS).map_err(failed)?)
                    .map_err(failed)?
            }
            other => return Err(Error::VerifyOnlyAlgorithm(other.name())),
        };
        Self::from_openssl(alg, pkey, None)
    }

    /// Reads a private key in PEM: `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC 1) or
    /// `RSA PRIVATE KEY` (PKCS#1). Encrypted PEM is refused: decrypt it first.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for unreadable input or a public key;
    /// [`Error::KeyAlgorithmMismatch`] when the key does not fit `alg`;
    /// [`Error::WeakKey`] / [`Error::UnsupportedKey`] as their names say.
    pub fn from_pem(alg: Algorithm, pem: &str) -> Result<Self> {
        check_can_sign(alg)?;
        match pem_label(pem)? {
            "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" if !pem.contains("ENCRYPTED") => {}
            "ENCRYPTED PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
                return Err(Error::UnsupportedKey("encrypted PEM; decrypt it first"));
            }
            _ => return Err(Error::InvalidKey("not a private key PEM")),
        }
        // An empty passphrase: OpenSSL never prompts on a terminal.
        let pkey = PKey::private_key_from_pem_passphrase(pem.as_bytes(), b"")
            .map_err(|_| Error::InvalidKey("unreadable private key PEM"))?;
        Self::from_openssl(alg, pkey, None)
    }

    /// Reads a DER private key: PKCS#8 (unencrypted), SEC 1 or PKCS#1.
    ///
    /// # Errors
    /// As [`SigningKey::from_pem`].
    pub fn from_der(alg: Algorithm, der: &[u8]) -> Result<Self> {
        check_can_sign(alg)?;
        let pkey = PKey::private_key_from_der(der)
            .map_err(|_| Error::InvalidKey("unreadable DER private key"))?;
        Self::from_openssl(alg, pkey, None)
    }

    /// Reads a private JWK (EC with `d`; RSA with `d`, `p`, `q`, `dp`, `dq`, `qi`; OKP
    /// Ed25519 with `d`). The private and public parts must belong together. Its `kid`,
    /// when present, becomes the key id; its `alg`, when present, must be `alg`.
    ///
    /// # Errors
    /// As [`SigningKey::from_pem`]; [`Error::InvalidKey`] when the public members do not
    /// match the private ones.
    pub fn from_jwk(alg: Algorithm, jwk: &str) -> Result<Self> {
        check_can_sign(alg)?;
        let jwk = JwkIn::parse(jwk)?;
        check_jwk_use(&jwk, alg, "sig", "sign")?;
        let kid = jwk.kid.as_deref().map(KeyId::new).transpose()?;
        let public = PublicKey::from_jwk(&jwk)?;
        match &public {
            PublicKey::Okp {
                curve: Curve::Ed25519,
                x,
            } => {
                let d = jwk.secret("d")?;
                let seed: &[u8; 32] = d
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::InvalidKey("Ed25519 `d` must be 32 bytes"))?;
                let key = ed25519_dalek::SigningKey::from_bytes(seed);
                if key.verifying_key().as_bytes().as_slice() != x.as_slice() {
                    return Err(Error::InvalidKey("`x` is not the public key of `d`"));
                }
                Self::from_ed25519(key, kid).and_then(|k| k.check_alg(alg))
            }
            PublicKey::Ec { curve, x, y } => {
                let pkey = ec_private_from_components(*curve, x, y, &jwk.secret("d")?)?;
                Self::from_openssl(alg, pkey, kid)
            }
            PublicKey::Rsa { n, e } => {
                if jwk.oth.is_some() {
                    return Err(Error::UnsupportedKey("multi-prime RSA (`oth`)"));
                }
                let num = |b: &[u8]| {
                    BigNum::from_slice(b).map_err(|_| Error::InvalidKey("RSA component"))
                };
                let rsa = Rsa::from_private_components(
                    num(n)?,
                    num(e)?,
                    num(&jwk.secret("d")?)?,
                    num(&jwk.secret("p")?)?,
                    num(&jwk.secret("q")?)?,
                    num(&jwk.secret("dp")?)?,
                    num(&jwk.secret("dq")?)?,
                    num(&jwk.secret("qi")?)?,
                )
                .map_err(|_| Error::InvalidKey("RSA components"))?;
                if !rsa.check_key().unwrap_or(false) {
                    return Err(Error::InvalidKey(
                        "the RSA private components do not belong together",
                    ));
                }
                let pkey = PKey::from_rsa(rsa).map_err(|_| Error::InvalidKey("RSA key"))?;
                Self::from_openssl(alg, pkey, kid)
            }
            PublicKey::Okp { .. } => Err(Error::KeyAlgorithmMismatch {
                expected: alg.name(),
                reason: public.describe(),
            }),
        }
    }

    fn check_alg(self, alg: Algorithm) -> Result<Self> {
        if self.alg == alg {
            Ok(self)
        } else {
            Err(Error::KeyAlgorithmMismatch {
                expected: alg.name(),
                reason: self.verifying.public().describe(),
            })
        }
    }

    fn from_ed25519(key: ed25519_dalek::SigningKey, kid: Option<KeyId>) -> Result<Self> {
        let public = PublicKey::okp(Curve::Ed25519, key.verifying_key().as_bytes())?;
        let verifying = VerifyingKey::from_public(Algorithm::EdDsa, public, kid)?;
        Ok(Self {
            alg: Algorithm::EdDsa,
            signer: Box::new(Ed25519Signer::new(key.clone())),
            private: PrivateKey::Ed25519(Box::new(key)),
            verifying,
        })
    }

    fn from_openssl(alg: Algorithm, pkey: PKey<Private>, kid: Option<KeyId>) -> Result<Self> {
        let public = PublicKey::from_openssl(&pkey)?;
        if pkey.id() == Id::ED25519 {
            let raw = Zeroizing::new(
                pkey.raw_private_key()
                    .map_err(|_| Error::InvalidKey("Ed25519 private key"))?,
            );
            let seed: &[u8; 32] = raw
                .as_slice()
                .try_into()
                .map_err(|_| Error::InvalidKey("Ed25519 private key length"))?;
            return Self::from_ed25519(ed25519_dalek::SigningKey::from_bytes(seed), kid)
                .and_then(|k| k.check_alg(alg));
        }
        // Checks that the key fits `alg` and builds the public half.
        let verifying = VerifyingKey::from_public(alg, public, kid)?;
        let der = Zeroizing::new(
            pkey.private_key_to_pkcs8()
                .map_err(|_| Error::InvalidKey("OpenSSL could not encode the private key"))?,
        );
        let invalid = |_| Error::InvalidKey("josekit refused the private key");
        let signer: Box<dyn josekit::jws::JwsSigner> = match alg {
            Algorithm::Es256 => Box::new(
                josekit::jws::ES256
                    .signer_from_der(der.as_slice())
                    .map_err(invalid)?,
            ),
            Algorithm::Es384 => Box::new(
                josekit::jws::ES384
                    .signer_from_der(der.as_slice())
                    .map_err(invalid)?,
            ),
            Algorithm::Rs256 => Box::new(
                josekit::jws::RS256
                    .signer_from_der(der.as_slice())
                    .map_err(invalid)?,
            ),
            Algorithm::Ps256 => Box::new(
                josekit::jws::PS256
                    .signer_from_der(der.as_slice())
                    .map_err(invalid)?,
            ),
            Algorithm::EdDsa => {
                return Err(Error::KeyAlgorithmMismatch {
                    expected: alg.name(),
                    reason: verifying.public().describe(),
                });
            }
            other => return Err(Error::VerifyOnlyAlgorithm(other.name())),
        };
        Ok(Self {
            alg,
            signer,
            private: PrivateKey::OpenSsl(pkey),
            verifying,
        })
    }

    /// Replaces the key id (by default the RFC 7638 thumbprint, or the JWK's `kid`).
    #[must_use]
    pub fn with_key_id(mut self, kid: KeyId) -> Self {
        self.verifying = self.verifying.with_key_id(kid);
        self
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id written into each token's header.
    pub fn key_id(&self) -> &KeyId {
        self.verifying.key_id()
    }

    /// The public half, for verifiers and key sets.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The public JWK, with `kid`, `alg` and `use: "sig"`.
    pub fn to_jwk(&self) -> String {
        self.verifying.to_jwk()
    }

    /// The private JWK, with `kid`, `alg` and `use: "sig"`: the key itself, in a
    /// [`SecretString`]. For moving a key into a secret store; never publish it.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if OpenSSL cannot export the key.
    pub fn dangerous_to_private_jwk(&self) -> Result<SecretString> {
        let mut out = Zeroizing::new(String::with_capacity(16 * 1024));
        out.push('{');
        for (name, value) in self.verifying.jwk_members() {
            if let serde_json::Value::String(v) = value {
                push_member(&mut out, &name, &v);
            }
        }
        let bad = |_| Error::InvalidKey("OpenSSL could not export the private key");
        match &self.private {
            PrivateKey::Ed25519(key) => {
                push_member(&mut out, "d", &Zeroizing::new(b64::encode(key.to_bytes())));
            }
            PrivateKey::OpenSsl(pkey) if pkey.id() == Id::EC => {
                let ec = pkey.ec_key().map_err(bad)?;
                let len = match self.alg {
                    Algorithm::Es384 => 48,
                    _ => 32,
                };
                let d = Zeroizing::new(ec.private_key().to_vec_padded(len).map_err(bad)?);
                push_member(&mut out, "d", &Zeroizing::new(b64::encode(d.as_slice())));
            }
            PrivateKey::OpenSsl(pkey) => {
                let rsa = pkey.rsa().map_err(bad)?;
                let parts = [
                    ("d", Some(rsa.d())),
                    ("p", rsa.p()),
                    ("q", rsa.q()),
                    ("dp", rsa.dmp1()),
                    ("dq", rsa.dmq1()),
                    ("qi", rsa.iqmp()),
                ];
                for (name, part) in parts {
                    let part = part.ok_or(Error::InvalidKey("RSA key without CRT parameters"))?;
                    let bytes = Zeroizing::new(part.to_vec());
                    push_member(
                        &mut out,
                        name,
                        &Zeroizing::new(b64::encode(bytes.as_slice())),
                    );
                }
            }
        }
        out.push('}');
        Ok(crate::jwk::into_secret(&out))
    }

    /// The private key as PKCS#8 PEM (`PRIVATE KEY`), in a [`SecretString`].
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if OpenSSL cannot export the key.
    pub fn dangerous_to_pkcs8_pem(&self) -> Result<SecretString> {
        let bad = |_| Error::InvalidKey("OpenSSL could not export the private key");
        let pem = match &self.private {
            PrivateKey::OpenSsl(pkey) => {
                Zeroizing::new(pkey.private_key_to_pem_pkcs8().map_err(bad)?)
            }
            PrivateKey::Ed25519(key) => {
                let pkey =
                    PKey::private_key_from_raw_bytes(&key.to_bytes(), Id::ED25519).map_err(bad)?;
                Zeroizing::new(pkey.private_key_to_pem_pkcs8().map_err(bad)?)
            }
        };
        let text = std::str::from_utf8(&pem).map_err(|_| Error::InvalidKey("PEM is not UTF-8"))?;
        Ok(crate::jwk::into_secret(&Zeroizing::new(text.to_owned())))
    }

    pub(crate) fn signer(&self) -> &dyn josekit::jws::JwsSigner {
        self.signer.as_ref()
    }
}

/// Refuses an algorithm that is verified only (RS384, RS512, PS384, PS512, ES512).
fn check_can_sign(alg: Algorithm) -> Result<()> {
    if alg.can_sign() {
        Ok(())
    } else {
        Err(Error::VerifyOnlyAlgorithm(alg.name()))
    }
}

/// An EC private key from its components, checked: `d·G` must be the public point.
fn ec_private_from_components(curve: Curve, x: &[u8], y: &[u8], d: &[u8]) -> Result<PKey<Private>> {
    let bad = |_| Error::InvalidKey("EC private key");
    let nid = match curve {
        Curve::P256 => Nid::X9_62_PRIME256V1,
        Curve::P384 => Nid::SECP384R1,
        Curve::P521 => Nid::SECP521R1,
        _ => return Err(Error::InvalidKey("EC curve")),
    };
    if d.len() != curve.len() {
        return Err(Error::InvalidKey("EC `d` of the wrong length"));
    }
    let group = EcGroup::from_curve_name(nid).map_err(bad)?;
    let mut ctx = BigNumContext::new().map_err(bad)?;
    let mut sec1 = Vec::with_capacity(1 + 2 * curve.len());
    sec1.push(0x04);
    sec1.extend_from_slice(x);
    sec1.extend_from_slice(y);
    let point = EcPoint::from_bytes(&group, &sec1, &mut ctx).map_err(bad)?;
    let d = BigNum::from_slice(d).map_err(bad)?;
    let key = EcKey::from_private_components(&group, &d, &point).map_err(bad)?;
    key.check_key()
        .map_err(|_| Error::InvalidKey("`x`/`y` are not the public key of `d`"))?;
    PKey::from_ec_key(key).map_err(bad)
}

/// A JWK's own `alg`, `use` and `key_ops` must allow what it is imported for.
pub(crate) fn check_jwk_use(jwk: &JwkIn, alg: Algorithm, use_: &str, op: &str) -> Result<()> {
    if let Some(own) = jwk.alg.as_deref() {
        if own != alg.name() {
            return Err(Error::KeyAlgorithmMismatch {
                expected: alg.name(),
                reason: format!("the JWK says `alg: {}`", crate::error::echo(own)),
            });
        }
    }
    if !jwk.allows(use_, op) {
        return Err(Error::InvalidKey(
            "the JWK's `use` or `key_ops` forbid this use",
        ));
    }
    Ok(())
}

/// The label of the one PEM block in `pem` (`-----BEGIN <label>-----`): `PUBLIC KEY`,
/// `PRIVATE KEY`, `CERTIFICATE`, … Every PEM reader of this crate starts here, so a
/// text holding a second block (a second key, `EC PARAMETERS` before a key, a chain of
/// certificates) is refused rather than read up to its first block with the rest
/// ignored. Text before the block (RFC 7468 explanatory text) is allowed.
///
/// # Errors
/// [`Error::InvalidKey`] for text without a PEM block, or with more than one.
pub fn pem_label(pem: &str) -> Result<&str> {
    const BEGIN: &str = "-----BEGIN ";
    let label = pem
        .find(BEGIN)
        .and_then(|start| pem.get(start + BEGIN.len()..))
        .and_then(|rest| rest.find("-----").and_then(|end| rest.get(..end)))
        .ok_or(Error::InvalidKey(
            "not PEM (no `-----BEGIN <label>-----` line)",
        ))?;
    if pem.matches(BEGIN).count() > 1 {
        return Err(Error::InvalidKey(
            "more than one PEM block: give one key per PEM text",
        ));
    }
    Ok(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_labels() {
        assert_eq!(
            pem_label("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            Ok("PUBLIC KEY")
        );
        assert_eq!(
            pem_label("junk -----BEGIN EC PRIVATE KEY-----"),
            Ok("EC PRIVATE KEY")
        );
        assert!(matches!(
            pem_label("no pem here"),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            pem_label("-----BEGIN unterminated"),
            Err(Error::InvalidKey(_))
        ));
    }

    /// A PEM text holding two keys used to be read up to its first block, the second
    /// silently ignored: every PEM reader now refuses it.
    #[test]
    fn a_pem_text_holds_one_key() {
        let pems = || {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            let pkey = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
            (
                String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap(),
                String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap(),
            )
        };
        let ((a_pem, a_private), (b_pem, b_private)) = (pems(), pems());
        assert!(VerifyingKey::from_pem(Algorithm::Es256, &a_pem).is_ok());
        assert!(SigningKey::from_pem(Algorithm::Es256, &a_private).is_ok());
        let two = format!("{a_pem}{b_pem}");
        let want = Err(Error::InvalidKey(
            "more than one PEM block: give one key per PEM text",
        ));
        assert_eq!(pem_label(&two).map(drop), want);
        assert_eq!(
            VerifyingKey::from_pem(Algorithm::Es256, &two).map(drop),
            want
        );
        let private = format!("{a_private}{b_private}");
        assert_eq!(
            SigningKey::from_pem(Algorithm::Es256, &private).map(drop),
            want
        );
        assert_eq!(crate::EncryptingKey::from_pem(&two).map(drop), want);
        assert_eq!(crate::DecryptingKey::from_pem(&private).map(drop), want);
    }

    /// RFC 7520 section 4.1: RS256 is deterministic, so the key imported from the
    /// cookbook's private JWK reproduces the signature byte for byte.
    #[test]
    fn rfc7520_4_1_signature_is_reproduced() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/vectors/jose/jws/4_1.rsa_v15_signature.json"
        ))
        .unwrap();
        let key = SigningKey::from_jwk(Algorithm::Rs256, &v["input"]["key"].to_string()).unwrap();
        let input = v["signing"]["sig-input"].as_str().unwrap();
        let sig = key.signer().sign(input.as_bytes()).unwrap();
        assert_eq!(b64::encode(sig), v["signing"]["sig"].as_str().unwrap());
        assert_eq!(key.key_id().as_str(), "bilbo.baggins@hobbiton.example");
    }

    #[test]
    fn generated_keys_round_trip_through_every_format() {
        for alg in Algorithm::SIGNING {
            let key = SigningKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.key_id().as_str(), key.verifying_key().thumbprint());
            let pem = key.dangerous_to_pkcs8_pem().unwrap();
            let again =
                SigningKey::from_pem(alg, secrecy::ExposeSecret::expose_secret(&pem)).unwrap();
            assert_eq!(again.key_id(), key.key_id(), "{alg}");
            let jwk = key.dangerous_to_private_jwk().unwrap();
            let again =
                SigningKey::from_jwk(alg, secrecy::ExposeSecret::expose_secret(&jwk)).unwrap();
            assert_eq!(again.key_id(), key.key_id(), "{alg}");
            let public = VerifyingKey::from_jwk(alg, &key.to_jwk()).unwrap();
            assert_eq!(public.key_id(), key.key_id());
            assert!(!format!("{key:?}").contains(secrecy::ExposeSecret::expose_secret(&jwk)));
        }
    }
}
