//! Encoding, parsing, key checks and primitives shared by [`super::pie`], [`super::pw`]
//! and [`super::seal`].

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use blake2::digest::generic_array::{ArrayLength, GenericArray};
use blake2::digest::typenum::{IsLessOrEqual, LeEq, NonZero, U48, U64};
use blake2::digest::{Digest, Mac};
use blake2::{Blake2b, Blake2bMac};
use chacha20::XChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use curve25519_dalek::EdwardsPoint;
use curve25519_dalek::edwards::CompressedEdwardsY;
use hmac::Hmac;
use sha2::{Sha384, Sha512};
use token_core::SecretBytes;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::paserk::PaserkVersion;

/// The kind of key being protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProtectedKind {
    /// A 32-byte symmetric key for `local` tokens.
    Local,
    /// A secret key for `public` tokens: k4 Ed25519 seed ‖ public key (64 bytes),
    /// k3 P-384 scalar (48 bytes).
    Secret,
}

impl ProtectedKind {
    /// The exact length of a key of this kind.
    pub(crate) const fn key_len(self, version: PaserkVersion) -> usize {
        match (self, version) {
            (Self::Local, _) => 32,
            (Self::Secret, PaserkVersion::K3) => 48,
            (Self::Secret, PaserkVersion::K4) => 64,
        }
    }

    /// Checks the length, and for secret keys the validity, of `key`.
    ///
    /// k4 secret keys must carry the public key that belongs to their seed; k3 secret
    /// keys must be a scalar in `[1, n)`.
    pub(crate) fn check_key(self, version: PaserkVersion, key: &[u8]) -> Result<()> {
        match (self, version) {
            (Self::Local, _) => {
                if key.len() == self.key_len(version) {
                    Ok(())
                } else {
                    Err(Error::InvalidKey("a local key is 32 bytes"))
                }
            }
            (Self::Secret, PaserkVersion::K4) => {
                let (seed, public) = key
                    .split_first_chunk::<32>()
                    .filter(|(_, public)| public.len() == 32)
                    .ok_or(Error::InvalidKey(
                        "a k4 secret key is 64 bytes: Ed25519 seed and public key",
                    ))?;
                if ct_eq(&ed25519_public_key(seed), public) {
                    Ok(())
                } else {
                    Err(Error::InvalidKey(
                        "the k4 secret key's public half does not match its seed",
                    ))
                }
            }
            (Self::Secret, PaserkVersion::K3) => {
                if key.len() != self.key_len(version) {
                    return Err(Error::InvalidKey(
                        "a k3 secret key is a 48-byte P-384 scalar",
                    ));
                }
                p384::SecretKey::from_slice(key)
                    .map(|_| ())
                    .map_err(|_| Error::InvalidKey("the k3 secret key is not a P-384 scalar"))
            }
        }
    }
}

/// The Ed25519 secret scalar bytes (before clamping) of a seed: `SHA-512(seed)[0..32]`.
/// Clamped, it is also the X25519 secret key that libsodium's
/// `crypto_sign_ed25519_sk_to_curve25519` derives.
pub(crate) fn ed25519_scalar_bytes(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut digest = Sha512::digest(seed);
    let mut scalar = Zeroizing::new([0u8; 32]);
    for (out, byte) in scalar.iter_mut().zip(digest.iter()) {
        *out = *byte;
    }
    zeroize::Zeroize::zeroize(digest.as_mut_slice());
    scalar
}

/// An Ed25519 public key as every k4 operation takes it (a `k4.public` key, the
/// recipient of a `k4.seal`): the canonical encoding of a point of prime order. A
/// non-canonical encoding would give one key two PASERKs and two ids; a small-order
/// point (the identity among them) verifies forged signatures under some verifiers, and
/// a mixed-order one leaks through key agreement.
///
/// # Errors
/// [`Error::InvalidKey`] saying which of the three it is not.
pub(crate) fn ed25519_public_point(bytes: &[u8; 32]) -> Result<EdwardsPoint> {
    let point = CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or(Error::InvalidKey("not an Ed25519 public key"))?;
    if point.compress().to_bytes() != *bytes {
        return Err(Error::InvalidKey("non-canonical Ed25519 public key"));
    }
    if point.is_small_order() || !point.is_torsion_free() {
        return Err(Error::InvalidKey("Ed25519 public key not of prime order"));
    }
    Ok(point)
}

/// The Ed25519 public key of a seed.
pub(crate) fn ed25519_public_key(seed: &[u8; 32]) -> [u8; 32] {
    EdwardsPoint::mul_base_clamped(*ed25519_scalar_bytes(seed))
        .compress()
        .to_bytes()
}

/// Returns the body of `paserk` after `header` (which ends with `.`), telling a wrong
/// version from a wrong type.
pub(crate) fn body<'a>(paserk: &'a str, header: &'static str) -> Result<&'a str> {
    if let Some(body) = paserk.strip_prefix(header) {
        return Ok(body);
    }
    let expected_version = header.split_once('.').map(|(version, _)| version);
    match paserk.split_once('.') {
        Some((version, _)) if Some(version) == expected_version => {
            Err(Error::InvalidPaserk("wrong PASERK type"))
        }
        Some((version, _)) if version == "k3" || version == "k4" => {
            Err(Error::InvalidPaserk("wrong PASERK version"))
        }
        _ => Err(Error::InvalidPaserk("not a PASERK of a supported version")),
    }
}

/// Strips `header` and decodes a body of exactly `len` bytes (canonical base64url,
/// no padding). The encoded length is checked first, so huge inputs are not decoded.
pub(crate) fn parse(paserk: &str, header: &'static str, len: usize) -> Result<Vec<u8>> {
    let encoded = body(paserk, header)?;
    if base64::encoded_len(len, false) != Some(encoded.len()) {
        return Err(Error::InvalidPaserk("wrong PASERK length"));
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| Error::InvalidPaserk("PASERK body is not canonical base64url"))?;
    if decoded.len() == len {
        Ok(decoded)
    } else {
        Err(Error::InvalidPaserk("wrong PASERK length"))
    }
}

/// `header ‖ base64url(body)`.
pub(crate) fn encode(header: &str, body: &[u8]) -> String {
    let mut out = String::with_capacity(header.len() + body.len().div_ceil(3) * 4);
    out.push_str(header);
    URL_SAFE_NO_PAD.encode_string(body, &mut out);
    out
}

/// `N` bytes from the operating system's generator.
pub(crate) fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>> {
    let mut out = Zeroizing::new([0u8; N]);
    getrandom::fill(out.as_mut_slice()).map_err(|_| Error::RandomnessUnavailable)?;
    Ok(out)
}

/// Moves recovered key bytes into a [`SecretBytes`] without leaving a copy behind.
pub(crate) fn into_secret(mut bytes: Zeroizing<Vec<u8>>) -> SecretBytes {
    // `SecretBytes::new` boxes the vector; shrinking first makes that a no-op move
    // rather than a reallocation that would leave the old buffer unwiped.
    let taken = std::mem::take(&mut *bytes);
    if taken.len() == taken.capacity() {
        SecretBytes::new(taken)
    } else {
        let secret = SecretBytes::from_slice(&taken);
        drop(Zeroizing::new(taken));
        secret
    }
}

/// Constant-time equality (lengths are public).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    token_core::secret::constant_time_eq(a, b)
}

/// XChaCha20 keystream (block counter starting at 0, as libsodium's
/// `crypto_stream_xchacha20_xor`).
pub(crate) fn xchacha20(key: &[u8; 32], nonce: &[u8; 24], buf: &mut [u8]) {
    let mut cipher = XChaCha20::new(key.into(), nonce.into());
    cipher.apply_keystream(buf);
}

/// AES-256-CTR with a 128-bit big-endian counter block (as OpenSSL's `aes-256-ctr`).
pub(crate) fn aes256_ctr(key: &[u8; 32], iv: &[u8; 16], buf: &mut [u8]) {
    let mut cipher = ctr::Ctr128BE::<Aes256>::new(key.into(), iv.into());
    cipher.apply_keystream(buf);
}

/// Keyed BLAKE2b with an `N`-byte output (libsodium `crypto_generichash(msg, key, N)`).
pub(crate) fn blake2b_mac<N>(key: &[u8], parts: &[&[u8]]) -> Result<GenericArray<u8, N>>
where
    N: ArrayLength<u8> + IsLessOrEqual<U64>,
    LeEq<N, U64>: NonZero,
{
    let mut mac = <Blake2bMac<N> as Mac>::new_from_slice(key)
        .map_err(|_| Error::InvalidKey("a BLAKE2b key is at most 64 bytes"))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes())
}

/// Unkeyed BLAKE2b with an `N`-byte output.
pub(crate) fn blake2b<N>(parts: &[&[u8]]) -> GenericArray<u8, N>
where
    N: ArrayLength<u8> + IsLessOrEqual<U64>,
    LeEq<N, U64>: NonZero,
{
    let mut hash = Blake2b::<N>::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize()
}

/// HMAC-SHA384.
pub(crate) fn hmac_sha384(key: &[u8], parts: &[&[u8]]) -> Result<GenericArray<u8, U48>> {
    let mut mac = <Hmac<Sha384> as Mac>::new_from_slice(key)
        .map_err(|_| Error::InvalidKey("HMAC key rejected"))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes())
}

/// SHA-384.
pub(crate) fn sha384(parts: &[&[u8]]) -> GenericArray<u8, U48> {
    let mut hash = Sha384::new();
    for part in parts {
        hash.update(part);
    }
    hash.finalize()
}

/// Splits a decoded body into fixed-size fields without indexing.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The next `N` bytes.
    pub(crate) fn take<const N: usize>(&mut self) -> Result<&'a [u8; N]> {
        let (head, tail) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(Error::InvalidPaserk("truncated PASERK"))?;
        self.0 = tail;
        Ok(head)
    }

    /// The next `len` bytes.
    pub(crate) fn take_slice(&mut self, len: usize) -> Result<&'a [u8]> {
        let (head, tail) = self
            .0
            .split_at_checked(len)
            .ok_or(Error::InvalidPaserk("truncated PASERK"))?;
        self.0 = tail;
        Ok(head)
    }

    /// Everything not taken yet.
    pub(crate) const fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Helpers for the vector tests of the three PASERK operations.
#[cfg(test)]
pub(crate) mod test_support {
    use base64::Engine as _;
    use base64::alphabet::URL_SAFE;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
    use token_core::SecretBytes;

    use crate::error::{Error, Result};

    /// Some official fail vectors were made by editing base64 characters of a valid
    /// PASERK, which can leave non-zero trailing bits in the last character. Returns
    /// the canonical spelling of the same bytes when it differs from `paserk`.
    pub(crate) fn canonical_form(paserk: &str) -> Option<String> {
        let (header, body) = paserk.rsplit_once('.')?;
        let lenient = GeneralPurpose::new(
            &URL_SAFE,
            GeneralPurposeConfig::new()
                .with_encode_padding(false)
                .with_decode_padding_mode(DecodePaddingMode::RequireNone)
                .with_decode_allow_trailing_bits(true),
        );
        let canonical = URL_SAFE_NO_PAD.encode(lenient.decode(body).ok()?);
        (canonical != body).then(|| format!("{header}.{canonical}"))
    }

    /// A vector whose tag (or password) is wrong must fail with `KeyRecoveryFailed`;
    /// if its base64 is not canonical it is refused earlier as `InvalidPaserk`, and
    /// its canonical spelling must then fail the tag check. Returns whether the
    /// vector was non-canonical.
    pub(crate) fn assert_tag_failure(
        name: &str,
        paserk: &str,
        result: &Result<SecretBytes>,
        retry: impl Fn(&str) -> Result<SecretBytes>,
    ) -> bool {
        match canonical_form(paserk) {
            None => {
                assert!(
                    matches!(result, Err(Error::KeyRecoveryFailed)),
                    "{name}: {result:?}"
                );
                false
            }
            Some(canonical) => {
                assert!(
                    matches!(
                        result,
                        Err(Error::InvalidPaserk(
                            "PASERK body is not canonical base64url"
                        ))
                    ),
                    "{name}: {result:?}"
                );
                let retried = retry(&canonical);
                assert!(
                    matches!(retried, Err(Error::KeyRecoveryFailed)),
                    "{name} (canonical): {retried:?}"
                );
                true
            }
        }
    }
}
