//! The key-encryption key (KEK): a PASETO `k4.local` key that wraps the data key of
//! every row of the key table. It lives outside the database (a file, or the
//! environment), so a copy of the database alone opens nothing.

use std::fmt;
use std::path::Path;

use secrecy::{ExposeSecret as _, SecretString};
use token_paseto::{LocalKey, V4};

use crate::error::{Error, Result};

/// The environment variable [`Kek::from_env`] reads by default.
pub const KEK_ENV: &str = "TESSERA_KEK";

/// A key-encryption key: `k4.local.…`, identified by its PASERK id (`k4.lid.…`, safe
/// to log and stored beside every row it wraps). `Debug` shows the id only.
pub struct Kek {
    key: LocalKey<V4>,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek").field("id", &self.id()).finish()
    }
}

impl Kek {
    /// A fresh key from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Paseto`] if no randomness is available.
    pub fn generate() -> Result<Self> {
        Ok(Self {
            key: LocalKey::generate()?,
        })
    }

    /// Reads a `k4.local.…` PASERK (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`Error::KeyEncryptionKey`] for anything else; the message never quotes the input.
    pub fn from_paserk(paserk: &str) -> Result<Self> {
        LocalKey::<V4>::from_paserk(paserk.trim())
            .map(|key| Self { key })
            .map_err(|_| {
                Error::KeyEncryptionKey(
                    "not a k4.local PASERK (expected `k4.local.` and 32 bytes)".into(),
                )
            })
    }

    /// Reads the key from `path` (a file holding the `k4.local.…` PASERK).
    ///
    /// # Errors
    /// [`Error::KeyEncryptionKey`] naming the file when it cannot be read or does not hold
    /// a key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map(SecretString::from)
            .map_err(|e| {
                Error::KeyEncryptionKey(format!("cannot read {}: {}", path.display(), e.kind()))
            })?;
        Self::from_paserk(text.expose_secret()).map_err(|e| match e {
            Error::KeyEncryptionKey(why) => {
                Error::KeyEncryptionKey(format!("{}: {why}", path.display()))
            }
            other => other,
        })
    }

    /// Reads the key from the environment variable `var` ([`KEK_ENV`] by convention).
    ///
    /// # Errors
    /// [`Error::KeyEncryptionKey`] when it is unset or does not hold a key.
    pub fn from_env(var: &str) -> Result<Self> {
        let value = std::env::var(var)
            .map(SecretString::from)
            .map_err(|_| Error::KeyEncryptionKey(format!("{var} is not set")))?;
        Self::from_paserk(value.expose_secret()).map_err(|e| match e {
            Error::KeyEncryptionKey(why) => Error::KeyEncryptionKey(format!("{var}: {why}")),
            other => other,
        })
    }

    /// The key as a `k4.local.…` PASERK, to write to a file readable only by its owner.
    pub fn to_paserk(&self) -> SecretString {
        self.key.to_paserk()
    }

    /// The key's id (`k4.lid.…`).
    pub fn id(&self) -> &str {
        self.key.id().as_str()
    }

    pub(super) fn key(&self) -> &LocalKey<V4> {
        &self.key
    }
}
