//! The plain PASERK encodings of key bytes (`k3/k4 .local/.public/.secret`) and the key
//! ids (`lid`, `pid`, `sid`). These check lengths only; the typed keys in
//! [`crate::keys`] also check that the bytes are a valid key.

use blake2::Blake2bVar;
use blake2::digest::{Update, VariableOutput};
use sha2::{Digest, Sha384};
use zeroize::Zeroizing;

use super::PaserkVersion;
use crate::encoding::{b64_decode, b64_encode};
use crate::error::{Error, Result};

/// The three kinds of plain key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A symmetric key (`local`).
    Local,
    /// A public key (`public`).
    Public,
    /// A secret signing key (`secret`).
    Secret,
}

impl KeyKind {
    const fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Public => "public",
            Self::Secret => "secret",
        }
    }

    const fn id_name(self) -> &'static str {
        match self {
            Self::Local => "lid",
            Self::Public => "pid",
            Self::Secret => "sid",
        }
    }
}

/// The length in bytes of a `kind` key of `version`.
pub const fn key_len(version: PaserkVersion, kind: KeyKind) -> usize {
    match (version, kind) {
        (_, KeyKind::Local) | (PaserkVersion::K4, KeyKind::Public) => 32,
        (PaserkVersion::K3, KeyKind::Public) => 49,
        (PaserkVersion::K3, KeyKind::Secret) => 48,
        (PaserkVersion::K4, KeyKind::Secret) => 64,
    }
}

/// The PASERK header, e.g. `k4.local.`.
pub fn header(version: PaserkVersion, kind: KeyKind) -> String {
    format!("{}.{}.", version.prefix(), kind.name())
}

/// `k4.local.<base64url>` and the like.
///
/// # Errors
/// [`Error::InvalidKey`] if `bytes` is not the key length of `version` and `kind`.
pub fn encode(version: PaserkVersion, kind: KeyKind, bytes: &[u8]) -> Result<String> {
    if bytes.len() != key_len(version, kind) {
        return Err(Error::InvalidKey("wrong key length for this PASERK type"));
    }
    Ok(format!("{}{}", header(version, kind), b64_encode(bytes)))
}

/// The key bytes of a plain PASERK, which must be of exactly `version` and `kind`.
///
/// # Errors
/// [`Error::InvalidPaserk`] for another version or kind, bad base64url or a wrong length.
pub fn decode(version: PaserkVersion, kind: KeyKind, paserk: &str) -> Result<Zeroizing<Vec<u8>>> {
    let body = paserk
        .strip_prefix(&header(version, kind))
        .ok_or(Error::InvalidPaserk(
            "not a PASERK of the expected version and type",
        ))?;
    let bytes = Zeroizing::new(
        b64_decode(body, "base64url").map_err(|_| Error::InvalidPaserk("not base64url"))?,
    );
    if bytes.len() != key_len(version, kind) {
        return Err(Error::InvalidPaserk("wrong key length"));
    }
    Ok(bytes)
}

/// The key id (`k4.lid.…`, `k3.pid.…`, …) of a key given as its plain PASERK.
///
/// k4: BLAKE2b-264 over the id header and the PASERK; k3: SHA-384 over the same,
/// truncated to 264 bits (PASERK, "ID" operation).
pub fn id_of_paserk(version: PaserkVersion, kind: KeyKind, paserk: &str) -> String {
    let h = format!("{}.{}.", version.prefix(), kind.id_name());
    let mut digest = [0u8; 33];
    match version {
        PaserkVersion::K4 => {
            // 33 is a valid BLAKE2b output length, so neither call can fail.
            if let Ok(mut hasher) = Blake2bVar::new(33) {
                hasher.update(h.as_bytes());
                hasher.update(paserk.as_bytes());
                let _ = hasher.finalize_variable(&mut digest);
            }
        }
        PaserkVersion::K3 => {
            let full = Sha384::new()
                .chain_update(h.as_bytes())
                .chain_update(paserk.as_bytes())
                .finalize();
            for (d, f) in digest.iter_mut().zip(full.iter()) {
                *d = *f;
            }
        }
    }
    format!("{h}{}", b64_encode(&digest))
}

/// The key id of `kind` key bytes.
///
/// # Errors
/// [`Error::InvalidKey`] for a wrong length.
pub fn id_of_bytes(version: PaserkVersion, kind: KeyKind, bytes: &[u8]) -> Result<String> {
    let paserk = Zeroizing::new(encode(version, kind, bytes)?);
    Ok(id_of_paserk(version, kind, &paserk))
}
