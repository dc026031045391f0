//! PASETO versions as types: keys are tagged with their version, so a v3 key cannot
//! reach a v4 operation. Sealed: [`V3`] and [`V4`] only.

use token_core::PasetoVersion;
use zeroize::Zeroizing;

use crate::error::Result;
use crate::paserk::PaserkVersion;
use crate::token::Parsed;

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// PASETO version 4: Ed25519 (`public`), XChaCha20 + BLAKE2b (`local`).
#[derive(Debug)]
pub enum V4 {}

/// PASETO version 3 (NIST): ECDSA P-384 (`public`), AES-256-CTR + HMAC-SHA384 (`local`).
#[derive(Debug)]
pub enum V3 {}

impl sealed::Sealed for V4 {}
impl sealed::Sealed for V3 {}

/// A PASETO version. The hidden items are the version's primitives.
pub trait Version: sealed::Sealed + Sized + Send + Sync + 'static {
    /// The version in token prefixes.
    const ID: PasetoVersion;
    /// The PASERK version of its keys.
    const PASERK: PaserkVersion;
    /// `vN.local.`
    const LOCAL_HEADER: &'static str;
    /// `vN.public.`
    const PUBLIC_HEADER: &'static str;

    #[doc(hidden)]
    type LocalInner: Send + Sync;
    #[doc(hidden)]
    type SecretInner: Send + Sync;
    #[doc(hidden)]
    type PublicInner: Send + Sync + Clone;

    #[doc(hidden)]
    fn local_from_bytes(bytes: &[u8]) -> Result<Self::LocalInner>;
    #[doc(hidden)]
    fn local_bytes(key: &Self::LocalInner) -> &[u8];
    #[doc(hidden)]
    fn secret_from_bytes(bytes: &[u8]) -> Result<Self::SecretInner>;
    #[doc(hidden)]
    fn secret_bytes(key: &Self::SecretInner) -> Zeroizing<Vec<u8>>;
    #[doc(hidden)]
    fn generate_secret() -> Result<Self::SecretInner>;
    #[doc(hidden)]
    fn public_of(key: &Self::SecretInner) -> Result<Self::PublicInner>;
    #[doc(hidden)]
    fn public_from_bytes(bytes: &[u8]) -> Result<Self::PublicInner>;
    #[doc(hidden)]
    fn public_bytes(key: &Self::PublicInner) -> Vec<u8>;

    #[doc(hidden)]
    fn encrypt(
        key: &Self::LocalInner,
        message: &[u8],
        footer: &[u8],
        implicit_assertion: &[u8],
    ) -> Result<String>;
    #[doc(hidden)]
    fn decrypt(
        key: &Self::LocalInner,
        token: &Parsed<'_>,
        implicit_assertion: &[u8],
    ) -> Result<Vec<u8>>;
    #[doc(hidden)]
    fn sign(
        key: &Self::SecretInner,
        message: &[u8],
        footer: &[u8],
        implicit_assertion: &[u8],
    ) -> Result<String>;
    #[doc(hidden)]
    fn verify(
        key: &Self::PublicInner,
        token: &Parsed<'_>,
        implicit_assertion: &[u8],
    ) -> Result<Vec<u8>>;
}

/// Appends `.<base64url(footer)>` when the footer is not empty.
pub(crate) fn finish_token(mut token: String, footer: &[u8]) -> String {
    if !footer.is_empty() {
        token.push('.');
        token.push_str(&crate::encoding::b64_encode(footer));
    }
    token
}
