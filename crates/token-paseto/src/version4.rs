//! PASETO v4 on `pasetors`: Ed25519 for `public`, XChaCha20 + BLAKE2b for `local`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pasetors::Local;
use pasetors::keys::{
    AsymmetricKeyPair, AsymmetricPublicKey, AsymmetricSecretKey, Generate, SymmetricKey,
};
use pasetors::token::UntrustedToken;
use pasetors::version4::LocalToken;
use zeroize::Zeroizing;

use crate::encoding::{b64_decode, pae, utf8};
use crate::error::{Error, Result};
use crate::paserk::PaserkVersion;
use crate::token::Parsed;
use crate::version::{V4, Version, finish_token};

/// An Ed25519 signature's length.
const SIGNATURE_LEN: usize = 64;

/// Maps a `pasetors` error to ours. Authenticity failures stay opaque.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(map)`
fn map(e: pasetors::errors::Error) -> Error {
    use pasetors::errors::Error as P;
    match e {
        P::TokenFormat | P::Base64 => Error::Malformed("not a well-formed v4 token"),
        P::EmptyPayload => Error::Malformed("empty payload"),
        P::PayloadInvalidUtf8 => Error::Malformed("payload is not UTF-8"),
        P::Key | P::PublicKeyConversion => Error::InvalidKey("not a valid v4 key"),
        P::Csprng | P::KeyGeneration => Error::RandomnessUnavailable,
        _ => Error::invalid(),
    }
}

impl Version for V4 {
    const ID: token_core::PasetoVersion = token_core::PasetoVersion::V4;
    const PASERK: PaserkVersion = PaserkVersion::K4;
    const LOCAL_HEADER: &'static str = "v4.local.";
    const PUBLIC_HEADER: &'static str = "v4.public.";

    type LocalInner = SymmetricKey<pasetors::version4::V4>;
    type SecretInner = AsymmetricSecretKey<pasetors::version4::V4>;
    type PublicInner = AsymmetricPublicKey<pasetors::version4::V4>;

    fn local_from_bytes(bytes: &[u8]) -> Result<Self::LocalInner> {
        SymmetricKey::from(bytes).map_err(|_| Error::InvalidKey("a v4 local key is 32 bytes"))
    }

    fn local_bytes(key: &Self::LocalInner) -> &[u8] {
        key.as_bytes()
    }

    fn secret_from_bytes(bytes: &[u8]) -> Result<Self::SecretInner> {
        // ed25519-compact (under pasetors) panics on an all-zero seed: refuse it first.
        // (Found by the `paserk_parse` fuzz body on the official k4.secret-1 vector.)
        if bytes
            .get(..32)
            .is_some_and(|seed| seed.iter().all(|&b| b == 0))
        {
            return Err(Error::InvalidKey("an all-zero Ed25519 seed is not a key"));
        }
        // pasetors checks that the second half is the seed's public key.
        AsymmetricSecretKey::from(bytes).map_err(|_| {
            Error::InvalidKey("a v4 secret key is a 32-byte seed and its 32-byte public key")
        })
    }

    fn secret_bytes(key: &Self::SecretInner) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(key.as_bytes().to_vec())
    }

    fn generate_secret() -> Result<Self::SecretInner> {
        AsymmetricKeyPair::<pasetors::version4::V4>::generate()
            .map(|kp| kp.secret)
            .map_err(|_| Error::RandomnessUnavailable)
    }

    fn public_of(key: &Self::SecretInner) -> Result<Self::PublicInner> {
        AsymmetricPublicKey::try_from(key).map_err(map)
    }

    fn public_from_bytes(bytes: &[u8]) -> Result<Self::PublicInner> {
        let encoded: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::InvalidKey("a v4 public key is 32 bytes"))?;
        // The one rule for Ed25519 public keys: canonical, of prime order.
        crate::paserk::common::ed25519_public_point(encoded)?;
        AsymmetricPublicKey::from(bytes)
            .map_err(|_| Error::InvalidKey("a v4 public key is 32 bytes"))
    }

    fn public_bytes(key: &Self::PublicInner) -> Vec<u8> {
        key.as_bytes().to_vec()
    }

    fn encrypt(
        key: &Self::LocalInner,
        message: &[u8],
        footer: &[u8],
        implicit_assertion: &[u8],
    ) -> Result<String> {
        LocalToken::encrypt(key, message, Some(footer), Some(implicit_assertion)).map_err(map)
    }

    fn decrypt(
        key: &Self::LocalInner,
        token: &Parsed<'_>,
        implicit_assertion: &[u8],
    ) -> Result<Vec<u8>> {
        let untrusted =
            UntrustedToken::<Local, pasetors::version4::V4>::try_from(token.raw).map_err(map)?;
        let trusted =
            LocalToken::decrypt(key, &untrusted, None, Some(implicit_assertion)).map_err(map)?;
        Ok(trusted.payload().as_bytes().to_vec())
    }

    /// PASETO v4.public sign (the specification's algorithm, as `pasetors` runs it, on
    /// the same Ed25519 implementation): the signature over
    /// `PAE("v4.public.", message, footer, implicit_assertion)`, then the token written
    /// with the same base64url as the v3 and JWT paths (the token is public
    /// content; no key is encoded here). Deterministic: the official vectors are
    /// reproduced byte for byte (`tests/vectors.rs`).
    fn sign(
        key: &Self::SecretInner,
        message: &[u8],
        footer: &[u8],
        implicit_assertion: &[u8],
    ) -> Result<String> {
        if message.is_empty() {
            return Err(Error::Malformed("empty payload"));
        }
        let sk = ed25519_compact::SecretKey::from_slice(key.as_bytes())
            .map_err(|_| Error::InvalidKey("not a valid v4 key"))?;
        let m2 = pae(&[
            Self::PUBLIC_HEADER.as_bytes(),
            message,
            footer,
            implicit_assertion,
        ]);
        let sig = sk.sign(&m2, None);
        let mut body = Vec::with_capacity(message.len() + sig.len());
        body.extend_from_slice(message);
        body.extend_from_slice(sig.as_ref());
        let mut token = String::with_capacity(
            Self::PUBLIC_HEADER.len() + (body.len() + footer.len()) * 4 / 3 + 8,
        );
        token.push_str(Self::PUBLIC_HEADER);
        URL_SAFE_NO_PAD.encode_string(&body, &mut token);
        Ok(finish_token(token, footer))
    }

    /// PASETO v4.public verify on the parts [`crate::token::parse`] split (the footer
    /// already decoded and bounded): the body decoded once, strictly, the Ed25519
    /// signature checked over `PAE("v4.public.", message, footer, implicit_assertion)` by
    /// the implementation `pasetors` uses (strict: canonical, no small-order points),
    /// then the message refused unless it is UTF-8.
    fn verify(
        key: &Self::PublicInner,
        token: &Parsed<'_>,
        implicit_assertion: &[u8],
    ) -> Result<Vec<u8>> {
        let mut body = b64_decode(token.body, "payload is not base64url")?;
        let Some(len) = body.len().checked_sub(SIGNATURE_LEN).filter(|len| *len > 0) else {
            return Err(Error::Malformed(
                "v4.public payload shorter than a signature",
            ));
        };
        let (message, sig) = body.split_at(len);
        let sig = ed25519_compact::Signature::from_slice(sig).map_err(|_| Error::invalid())?;
        let pk = ed25519_compact::PublicKey::from_slice(key.as_bytes())
            .map_err(|_| Error::InvalidKey("not a valid v4 key"))?;
        let m2 = pae(&[
            Self::PUBLIC_HEADER.as_bytes(),
            message,
            &token.footer,
            implicit_assertion,
        ]);
        pk.verify(&m2, &sig).map_err(|_| Error::invalid())?;
        body.truncate(len);
        utf8(body)
    }
}
