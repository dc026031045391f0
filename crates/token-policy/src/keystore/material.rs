//! Key material by kind: generating it, its id, and the bytes that are sealed into the
//! table and read back.

#[cfg(feature = "jwt")]
use secrecy::ExposeSecret as _;
use token_core::SecretBytes;
#[cfg(feature = "jwt")]
use token_jwt::{Algorithm, SigningKey};
use token_paseto::{LocalKey, SecretKey, V3, V4};
use zeroize::Zeroizing;

use super::KeyKind;
use crate::error::{Error, Result};

/// Length of an API-key pepper.
const PEPPER_LEN: usize = 32;

/// One key, of one kind. Short-lived (opened, put in a ring, dropped): the size of
/// the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Material {
    PasetoV4Public(SecretKey<V4>),
    PasetoV3Public(SecretKey<V3>),
    #[cfg(feature = "jwt")]
    Jwt(SigningKey),
    PasetoV4Local(LocalKey<V4>),
    PasetoV3Local(LocalKey<V3>),
    Pepper(SecretBytes),
}

impl Material {
    /// A fresh key of `kind`.
    pub(super) fn generate(kind: KeyKind) -> Result<Self> {
        Ok(match kind {
            KeyKind::PasetoV4Public => Self::PasetoV4Public(SecretKey::generate()?),
            KeyKind::PasetoV3Public => Self::PasetoV3Public(SecretKey::generate()?),
            #[cfg(feature = "jwt")]
            KeyKind::JwtEs256 => Self::Jwt(SigningKey::generate(Algorithm::Es256)?),
            #[cfg(feature = "jwt")]
            KeyKind::JwtEdDsa => Self::Jwt(SigningKey::generate(Algorithm::EdDsa)?),
            KeyKind::PasetoV4Local => Self::PasetoV4Local(LocalKey::generate()?),
            KeyKind::PasetoV3Local => Self::PasetoV3Local(LocalKey::generate()?),
            KeyKind::Pepper => {
                let mut bytes = Zeroizing::new(vec![0u8; PEPPER_LEN]);
                getrandom::fill(bytes.as_mut_slice())
                    .map_err(|_| token_core::Error::RandomnessUnavailable)?;
                Self::Pepper(SecretBytes::from_slice(&bytes))
            }
        })
    }

    /// The id tokens (or hashed rows) name the key by: the PASERK id of PASETO keys
    /// (`k4.pid.…` for public keys, `k4.lid.…` for local ones), the JWK thumbprint of
    /// JWT keys, and the `k4.lid.…` of the pepper's bytes. Derived from the key, so a
    /// row whose key was swapped for another's does not match its id.
    pub(super) fn kid(&self) -> Result<String> {
        Ok(match self {
            Self::PasetoV4Public(k) => k.public_key().id().to_string(),
            Self::PasetoV3Public(k) => k.public_key().id().to_string(),
            #[cfg(feature = "jwt")]
            Self::Jwt(k) => k.key_id().to_string(),
            Self::PasetoV4Local(k) => k.id().to_string(),
            Self::PasetoV3Local(k) => k.id().to_string(),
            Self::Pepper(p) => LocalKey::<V4>::from_bytes(p.expose_secret())?
                .id()
                .to_string(),
        })
    }

    /// The public key (PASERK `k4.public.…` or a JWK), for the asymmetric kinds.
    pub(super) fn public_key(&self) -> Option<String> {
        match self {
            Self::PasetoV4Public(k) => Some(k.public_key().to_paserk()),
            Self::PasetoV3Public(k) => Some(k.public_key().to_paserk()),
            #[cfg(feature = "jwt")]
            Self::Jwt(k) => Some(k.to_jwk()),
            Self::PasetoV4Local(_) | Self::PasetoV3Local(_) | Self::Pepper(_) => None,
        }
    }

    /// The bytes that are sealed into the row.
    #[cfg_attr(not(feature = "jwt"), allow(clippy::unnecessary_wraps))]
    pub(super) fn secret_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(match self {
            Self::PasetoV4Public(k) => k.expose_secret_bytes(),
            Self::PasetoV3Public(k) => k.expose_secret_bytes(),
            #[cfg(feature = "jwt")]
            Self::Jwt(k) => Zeroizing::new(
                k.dangerous_to_pkcs8_pem()?
                    .expose_secret()
                    .as_bytes()
                    .to_vec(),
            ),
            Self::PasetoV4Local(k) => Zeroizing::new(k.expose_secret_bytes().to_vec()),
            Self::PasetoV3Local(k) => Zeroizing::new(k.expose_secret_bytes().to_vec()),
            Self::Pepper(p) => Zeroizing::new(p.expose_secret().to_vec()),
        })
    }

    /// Reads back what [`Material::secret_bytes`] wrote for `kind`.
    pub(super) fn from_secret_bytes(kind: KeyKind, bytes: &[u8]) -> Result<Self> {
        Ok(match kind {
            KeyKind::PasetoV4Public => Self::PasetoV4Public(SecretKey::from_bytes(bytes)?),
            KeyKind::PasetoV3Public => Self::PasetoV3Public(SecretKey::from_bytes(bytes)?),
            #[cfg(feature = "jwt")]
            KeyKind::JwtEs256 | KeyKind::JwtEdDsa => {
                let alg = if kind == KeyKind::JwtEs256 {
                    Algorithm::Es256
                } else {
                    Algorithm::EdDsa
                };
                let pem = std::str::from_utf8(bytes)
                    .map_err(|_| Error::Config("a JWT key row does not hold PEM".into()))?;
                Self::Jwt(SigningKey::from_pem(alg, pem)?)
            }
            KeyKind::PasetoV4Local => Self::PasetoV4Local(LocalKey::from_bytes(bytes)?),
            KeyKind::PasetoV3Local => Self::PasetoV3Local(LocalKey::from_bytes(bytes)?),
            KeyKind::Pepper => {
                if bytes.len() != PEPPER_LEN {
                    return Err(Error::Config("a pepper is 32 bytes".into()));
                }
                Self::Pepper(SecretBytes::from_slice(bytes))
            }
        })
    }
}
