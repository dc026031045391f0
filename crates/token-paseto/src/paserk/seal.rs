//! PASERK `seal`: a 32-byte `local` key encrypted to a recipient's public key
//! (`k3.seal.`, `k4.seal.`), as specified in
//! [operations/PKE.md](https://github.com/paseto-standard/paserk/blob/master/operations/PKE.md).
//!
//! The header `h` used in the key derivations and the tag is the PASERK header itself,
//! `k4.seal.` / `k3.seal.` (as in the reference implementation that produced the official
//! vectors; the prose of PKE.md names `k4.local.`, which the vectors contradict).
//!
//! * **k4** (X25519, XChaCha20, BLAKE2b): the recipient's Ed25519 public key `pk` is
//!   mapped to its birationally equivalent X25519 key `xpk`; with an ephemeral X25519
//!   pair (`esk`, `epk`) and `xk = X25519(esk, xpk)`:
//!   `Ek = BLAKE2b-256(0x01 ‖ h ‖ xk ‖ epk ‖ xpk)`, `Ak = BLAKE2b-256(0x02 ‖ h ‖ xk ‖ epk ‖ xpk)`,
//!   `n = BLAKE2b-192(epk ‖ xpk)`, `edk = XChaCha20(Ek, n, key)`,
//!   `t = BLAKE2b-256(key = Ak, h ‖ epk ‖ edk)`. Body: `t (32) ‖ epk (32) ‖ edk (32)`.
//!   The recipient's secret key is the 64-byte Ed25519 `seed ‖ pk`; its X25519 secret is
//!   `clamp(SHA-512(seed)[0..32])` (libsodium's `crypto_sign_ed25519_sk_to_curve25519`).
//! * **k3** (P-384 ECDH, SHA-384, AES-256-CTR, HMAC-SHA384): points are SEC1-compressed
//!   (49 bytes); `xk` is the 48-byte x-coordinate of the ECDH point;
//!   `Ek ‖ n = SHA-384(0x01 ‖ h ‖ xk ‖ epk ‖ pk)` (32 + 16 bytes),
//!   `Ak = SHA-384(0x02 ‖ h ‖ xk ‖ epk ‖ pk)`, `edk = AES-256-CTR(Ek, n, key)`,
//!   `t = HMAC-SHA384(Ak, h ‖ epk ‖ edk)`. Body: `t (48) ‖ epk (49) ‖ edk (32)`.
//!
//! Unsealing checks the header, the exact length and the tag (in constant time) before
//! decrypting. A wrong recipient key, a tampered tag, and an ephemeral key that is not a
//! valid point (or gives an all-zero X25519 secret) are all [`Error::KeyRecoveryFailed`].

use blake2::digest::generic_array::GenericArray;
use blake2::digest::generic_array::sequence::Split;
use blake2::digest::typenum::{U16, U24, U32};
use curve25519_dalek::{EdwardsPoint, MontgomeryPoint};
use p384::elliptic_curve::sec1::ToEncodedPoint;
use token_core::SecretBytes;
use zeroize::Zeroizing;

use super::PaserkVersion;
use super::common::{self, ProtectedKind};
use crate::error::{Error, Result};

/// Length of a sealed key: always a 32-byte `local` key.
const LOCAL_KEY_LEN: usize = 32;
const K4_TAG_LEN: usize = 32;
const K4_EPK_LEN: usize = 32;
const K3_TAG_LEN: usize = 48;
const K3_EPK_LEN: usize = 49;
/// A P-384 secret scalar.
const K3_SCALAR_LEN: usize = 48;

/// Seals a 32-byte `local` key to a recipient: k4 takes a 32-byte Ed25519 public key,
/// k3 a 49-byte compressed P-384 point. Returns `kN.seal.…`.
///
/// Errors: [`Error::InvalidKey`] if `local_key` is not 32 bytes or the public key is
/// malformed, not canonical, or (k4) of small or mixed order;
/// [`Error::RandomnessUnavailable`].
pub fn seal(
    version: PaserkVersion,
    recipient_public_key: &[u8],
    local_key: &[u8],
) -> Result<String> {
    match version {
        PaserkVersion::K4 => {
            let esk = common::random::<32>()?;
            seal_with_ephemeral(version, recipient_public_key, local_key, &*esk)
        }
        PaserkVersion::K3 => {
            // A uniformly random 48-byte string is a valid scalar except with probability
            // about 2^-190; a few attempts only guard against a broken generator.
            for _ in 0..8 {
                let esk = common::random::<K3_SCALAR_LEN>()?;
                if p384::SecretKey::from_slice(&*esk).is_ok() {
                    return seal_with_ephemeral(version, recipient_public_key, local_key, &*esk);
                }
            }
            Err(Error::RandomnessUnavailable)
        }
    }
}

/// Recovers the `local` key of a `kN.seal.` PASERK with the recipient's secret key:
/// k4 the 64-byte Ed25519 `seed ‖ public key`, k3 the 48-byte P-384 scalar.
///
/// Errors: [`Error::InvalidPaserk`] for a malformed string or another version or type;
/// [`Error::InvalidKey`] for a malformed secret key; [`Error::KeyRecoveryFailed`] for a
/// wrong recipient or tampered data.
pub fn unseal(
    version: PaserkVersion,
    recipient_secret_key: &[u8],
    paserk: &str,
) -> Result<SecretBytes> {
    let body = parse_body(version, paserk)?;
    match version {
        PaserkVersion::K4 => k4_unseal(recipient_secret_key, &body),
        PaserkVersion::K3 => k3_unseal(recipient_secret_key, &body),
    }
}

/// The decoded body `t ‖ epk ‖ edk` of a `kN.seal.` PASERK: its header, canonical
/// base64url and exact length, checked before any key is used (by [`unseal`] and
/// [`super::check_protected`]).
pub(crate) fn parse_body(version: PaserkVersion, paserk: &str) -> Result<Vec<u8>> {
    let len = match version {
        PaserkVersion::K4 => K4_TAG_LEN + K4_EPK_LEN + LOCAL_KEY_LEN,
        PaserkVersion::K3 => K3_TAG_LEN + K3_EPK_LEN + LOCAL_KEY_LEN,
    };
    common::parse(paserk, header(version), len)
}

/// [`seal`] with the ephemeral secret supplied by the caller (k4: 32 bytes, k3: a 48-byte
/// P-384 scalar), for deterministic tests. Production code uses a fresh random one.
pub(crate) fn seal_with_ephemeral(
    version: PaserkVersion,
    recipient_public_key: &[u8],
    local_key: &[u8],
    ephemeral_secret: &[u8],
) -> Result<String> {
    ProtectedKind::Local.check_key(version, local_key)?;
    match version {
        PaserkVersion::K4 => {
            let xpk = k4_recipient(recipient_public_key)?;
            let esk: Zeroizing<[u8; 32]> = Zeroizing::new(
                ephemeral_secret
                    .try_into()
                    .map_err(|_| Error::InvalidKey("an X25519 secret is 32 bytes"))?,
            );
            k4_seal(&xpk, &esk, local_key)
        }
        PaserkVersion::K3 => {
            let pk = k3_recipient(recipient_public_key)?;
            let esk = k3_secret(ephemeral_secret)?;
            k3_seal(&pk, &esk, local_key)
        }
    }
}

/// The PASERK header `h`, also bound into the derived keys and the tag.
const fn header(version: PaserkVersion) -> &'static str {
    match version {
        PaserkVersion::K3 => "k3.seal.",
        PaserkVersion::K4 => "k4.seal.",
    }
}

/// The X25519 public key of a recipient's Ed25519 public key, refusing encodings
/// libsodium's `crypto_sign_ed25519_pk_to_curve25519` refuses (not on the curve, small
/// order, not in the prime-order subgroup) and non-canonical ones.
fn k4_recipient(public_key: &[u8]) -> Result<MontgomeryPoint> {
    let bytes: [u8; 32] = public_key
        .try_into()
        .map_err(|_| Error::InvalidKey("a k4 sealing public key is a 32-byte Ed25519 key"))?;
    Ok(common::ed25519_public_point(&bytes)?.to_montgomery())
}

/// `(Ek, n, Ak)` for k4.
fn k4_keys(
    xk: &MontgomeryPoint,
    epk: &MontgomeryPoint,
    xpk: &MontgomeryPoint,
) -> (Zeroizing<[u8; 32]>, [u8; 24], Zeroizing<[u8; 32]>) {
    let h = header(PaserkVersion::K4).as_bytes();
    let shared: [&[u8]; 3] = [xk.as_bytes(), epk.as_bytes(), xpk.as_bytes()];
    let ek = common::blake2b::<U32>(&[&[0x01], h, shared[0], shared[1], shared[2]]);
    let ak = common::blake2b::<U32>(&[&[0x02], h, shared[0], shared[1], shared[2]]);
    let n = common::blake2b::<U24>(&[epk.as_bytes(), xpk.as_bytes()]);
    (
        Zeroizing::new(ek.into()),
        n.into(),
        Zeroizing::new(ak.into()),
    )
}

fn k4_seal(xpk: &MontgomeryPoint, esk: &Zeroizing<[u8; 32]>, local_key: &[u8]) -> Result<String> {
    let epk = MontgomeryPoint::mul_base_clamped(**esk);
    let xk = Zeroizing::new(xpk.mul_clamped(**esk));
    if xk.as_bytes() == &[0; 32] {
        // Unreachable for a prime-order recipient key; checked as libsodium does.
        return Err(Error::InvalidKey(
            "X25519 produced an all-zero shared secret",
        ));
    }
    let (ek, n, ak) = k4_keys(&xk, &epk, xpk);
    let mut edk = local_key.to_vec();
    common::xchacha20(&ek, &n, &mut edk);
    let h = header(PaserkVersion::K4);
    let tag = common::blake2b_mac::<U32>(&*ak, &[h.as_bytes(), epk.as_bytes(), &edk])?;
    let body = [tag.as_slice(), epk.as_bytes(), &edk].concat();
    Ok(common::encode(h, &body))
}

fn k4_unseal(secret_key: &[u8], body: &[u8]) -> Result<SecretBytes> {
    ProtectedKind::Secret.check_key(PaserkVersion::K4, secret_key)?;
    let (seed, _) = secret_key
        .split_first_chunk::<32>()
        .ok_or(Error::InvalidKey("a k4 secret key is 64 bytes"))?;
    let scalar = common::ed25519_scalar_bytes(seed);
    // Same point as the Edwards-to-Montgomery map of the (checked) public half.
    let xpk = EdwardsPoint::mul_base_clamped(*scalar).to_montgomery();

    let mut reader = common::Reader::new(body);
    let tag = reader.take::<K4_TAG_LEN>()?;
    let epk = MontgomeryPoint(*reader.take::<K4_EPK_LEN>()?);
    let edk = reader.rest();

    let xk = Zeroizing::new(epk.mul_clamped(*scalar));
    if xk.as_bytes() == &[0; 32] {
        return Err(Error::KeyRecoveryFailed);
    }
    let (ek, n, ak) = k4_keys(&xk, &epk, &xpk);
    let h = header(PaserkVersion::K4);
    let expected = common::blake2b_mac::<U32>(&*ak, &[h.as_bytes(), epk.as_bytes(), edk])?;
    if !common::ct_eq(&expected, tag) {
        return Err(Error::KeyRecoveryFailed);
    }
    let mut key = Zeroizing::new(edk.to_vec());
    common::xchacha20(&ek, &n, &mut key);
    Ok(common::into_secret(key))
}

/// A recipient's P-384 public key: exactly a 49-byte SEC1-compressed point.
fn k3_recipient(public_key: &[u8]) -> Result<p384::PublicKey> {
    let bad = Error::InvalidKey("a k3 sealing public key is a 49-byte compressed P-384 point");
    if public_key.len() != K3_EPK_LEN || !matches!(public_key.first(), Some(0x02 | 0x03)) {
        return Err(bad);
    }
    p384::PublicKey::from_sec1_bytes(public_key).map_err(|_| bad)
}

/// A 48-byte P-384 scalar in `[1, n)`.
fn k3_secret(bytes: &[u8]) -> Result<p384::SecretKey> {
    if bytes.len() != K3_SCALAR_LEN {
        return Err(Error::InvalidKey(
            "a k3 secret key is a 48-byte P-384 scalar",
        ));
    }
    p384::SecretKey::from_slice(bytes)
        .map_err(|_| Error::InvalidKey("the k3 secret key is not a P-384 scalar"))
}

fn compressed(public_key: &p384::PublicKey) -> p384::EncodedPoint {
    public_key.to_encoded_point(true)
}

/// `(Ek, n, Ak)` for k3; `xk` is the x-coordinate of the ECDH point.
fn k3_keys(
    xk: &[u8],
    epk: &[u8],
    pk: &[u8],
) -> (Zeroizing<[u8; 32]>, [u8; 16], Zeroizing<Vec<u8>>) {
    let h = header(PaserkVersion::K3).as_bytes();
    let (ek, n): (GenericArray<u8, U32>, GenericArray<u8, U16>) =
        common::sha384(&[&[0x01], h, xk, epk, pk]).split();
    let ak = common::sha384(&[&[0x02], h, xk, epk, pk]);
    (
        Zeroizing::new(ek.into()),
        n.into(),
        Zeroizing::new(ak.to_vec()),
    )
}

fn k3_seal(pk: &p384::PublicKey, esk: &p384::SecretKey, local_key: &[u8]) -> Result<String> {
    let epk = compressed(&esk.public_key());
    let pk_bytes = compressed(pk);
    let shared = p384::ecdh::diffie_hellman(esk.to_nonzero_scalar(), pk.as_affine());
    let (ek, n, ak) = k3_keys(
        shared.raw_secret_bytes(),
        epk.as_bytes(),
        pk_bytes.as_bytes(),
    );
    let mut edk = local_key.to_vec();
    common::aes256_ctr(&ek, &n, &mut edk);
    let h = header(PaserkVersion::K3);
    let tag = common::hmac_sha384(&ak, &[h.as_bytes(), epk.as_bytes(), &edk])?;
    let body = [tag.as_slice(), epk.as_bytes(), &edk].concat();
    Ok(common::encode(h, &body))
}

fn k3_unseal(secret_key: &[u8], body: &[u8]) -> Result<SecretBytes> {
    let sk = k3_secret(secret_key)?;
    let pk_bytes = compressed(&sk.public_key());

    let mut reader = common::Reader::new(body);
    let tag = reader.take::<K3_TAG_LEN>()?;
    let epk_bytes = reader.take::<K3_EPK_LEN>()?;
    let edk = reader.rest();

    // The ephemeral key is attacker-controlled: anything but a valid compressed point is
    // tampering.
    let epk = k3_recipient(epk_bytes).map_err(|_| Error::KeyRecoveryFailed)?;
    let shared = p384::ecdh::diffie_hellman(sk.to_nonzero_scalar(), epk.as_affine());
    let (ek, n, ak) = k3_keys(shared.raw_secret_bytes(), epk_bytes, pk_bytes.as_bytes());
    let h = header(PaserkVersion::K3);
    let expected = common::hmac_sha384(&ak, &[h.as_bytes(), epk_bytes, edk])?;
    if !common::ct_eq(&expected, tag) {
        return Err(Error::KeyRecoveryFailed);
    }
    let mut key = Zeroizing::new(edk.to_vec());
    common::aes256_ctr(&ek, &n, &mut key);
    Ok(common::into_secret(key))
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support;
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use p384::pkcs8::DecodePublicKey;
    use proptest::prelude::*;
    use serde_json::Value;

    const K3: &str = include_str!("../../tests/vectors/paserk/k3.seal.json");
    const K4: &str = include_str!("../../tests/vectors/paserk/k4.seal.json");

    /// A vector key: PEM (k3) or hex (k4, and the k4 keys of the k3 wrong-version case).
    fn secret_key(text: &str) -> Vec<u8> {
        if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
            p384::SecretKey::from_sec1_pem(text)
                .unwrap()
                .to_bytes()
                .to_vec()
        } else {
            hex::decode(text).unwrap()
        }
    }

    fn public_key(text: &str) -> Vec<u8> {
        if text.starts_with("-----BEGIN PUBLIC KEY-----") {
            let pk = p384::PublicKey::from_public_key_pem(text).unwrap();
            compressed(&pk).as_bytes().to_vec()
        } else {
            hex::decode(text).unwrap()
        }
    }

    fn run_vectors(json: &str, version: PaserkVersion, expected_cases: usize) {
        let file: Value = serde_json::from_str(json).unwrap();
        let tests = file["tests"].as_array().unwrap();
        assert_eq!(tests.len(), expected_cases, "vector file changed size");
        let mut ran = 0;
        for case in tests {
            let name = case["name"].as_str().unwrap();
            let sk = secret_key(case["sealing-secret-key"].as_str().unwrap());
            let pk = public_key(case["sealing-public-key"].as_str().unwrap());
            let paserk = case["paserk"].as_str().unwrap();
            let result = unseal(version, &sk, paserk);
            if case["expect-fail"].as_bool().unwrap() {
                let comment = case["comment"].as_str().unwrap();
                if comment.contains("wrong version") {
                    assert!(
                        matches!(result, Err(Error::InvalidPaserk("wrong PASERK version"))),
                        "{name}: {result:?}"
                    );
                } else {
                    assert_eq!(
                        comment, "Invalid authentication tag on sealed key.",
                        "{name}"
                    );
                    // Both seal fail vectors are canonical base64url.
                    let noncanonical =
                        test_support::assert_tag_failure(name, paserk, &result, |s| {
                            unseal(version, &sk, s)
                        });
                    assert!(!noncanonical, "{name}");
                }
            } else {
                let expected = hex::decode(case["unsealed"].as_str().unwrap()).unwrap();
                let key = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(key.expose_secret(), expected.as_slice(), "{name}");
                // The vector's public key is the secret key's, and sealing to it again
                // (fresh ephemeral key, so a different string) opens with the secret key.
                let resealed = seal(version, &pk, &expected).unwrap();
                assert_ne!(resealed, paserk);
                let back = unseal(version, &sk, &resealed).unwrap();
                assert_eq!(back.expose_secret(), expected.as_slice(), "{name}");
            }
            ran += 1;
        }
        assert_eq!(ran, expected_cases);
    }

    #[test]
    fn k3_seal_vectors() {
        run_vectors(K3, PaserkVersion::K3, 4);
    }

    #[test]
    fn k4_seal_vectors() {
        run_vectors(K4, PaserkVersion::K4, 4);
    }

    /// A fresh recipient key pair `(secret, public)` in PASERK byte form.
    fn key_pair(version: PaserkVersion) -> (Vec<u8>, Vec<u8>) {
        match version {
            PaserkVersion::K4 => {
                let seed = common::random::<32>().unwrap();
                let public = common::ed25519_public_key(&seed);
                ([seed.as_slice(), &public].concat(), public.to_vec())
            }
            PaserkVersion::K3 => loop {
                let bytes = common::random::<48>().unwrap();
                if let Ok(sk) = p384::SecretKey::from_slice(&*bytes) {
                    break (
                        bytes.to_vec(),
                        compressed(&sk.public_key()).as_bytes().to_vec(),
                    );
                }
            },
        }
    }

    const VERSIONS: [PaserkVersion; 2] = [PaserkVersion::K3, PaserkVersion::K4];

    fn body_len(version: PaserkVersion) -> usize {
        match version {
            PaserkVersion::K3 => K3_TAG_LEN + K3_EPK_LEN + LOCAL_KEY_LEN,
            PaserkVersion::K4 => K4_TAG_LEN + K4_EPK_LEN + LOCAL_KEY_LEN,
        }
    }

    #[test]
    fn round_trip_and_wrong_recipient() {
        for version in VERSIONS {
            let (sk, pk) = key_pair(version);
            let (other_sk, _) = key_pair(version);
            let key = common::random::<32>().unwrap();
            let paserk = seal(version, &pk, &*key).unwrap();
            assert!(paserk.starts_with(header(version)));
            assert_eq!(
                unseal(version, &sk, &paserk).unwrap().expose_secret(),
                &*key
            );
            assert!(matches!(
                unseal(version, &other_sk, &paserk),
                Err(Error::KeyRecoveryFailed)
            ));
            let other_version = match version {
                PaserkVersion::K3 => PaserkVersion::K4,
                PaserkVersion::K4 => PaserkVersion::K3,
            };
            assert!(matches!(
                unseal(other_version, &sk, &paserk),
                Err(Error::InvalidPaserk("wrong PASERK version"))
            ));
        }
    }

    #[test]
    fn deterministic_with_injected_ephemeral_key() {
        let (sk, pk) = key_pair(PaserkVersion::K4);
        let a = seal_with_ephemeral(PaserkVersion::K4, &pk, &[1; 32], &[2; 32]).unwrap();
        let b = seal_with_ephemeral(PaserkVersion::K4, &pk, &[1; 32], &[2; 32]).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            unseal(PaserkVersion::K4, &sk, &a).unwrap().expose_secret(),
            &[1; 32]
        );

        let (sk, pk) = key_pair(PaserkVersion::K3);
        let a = seal_with_ephemeral(PaserkVersion::K3, &pk, &[1; 32], &[2; 48]).unwrap();
        let b = seal_with_ephemeral(PaserkVersion::K3, &pk, &[1; 32], &[2; 48]).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            unseal(PaserkVersion::K3, &sk, &a).unwrap().expose_secret(),
            &[1; 32]
        );
        assert!(matches!(
            seal_with_ephemeral(PaserkVersion::K3, &pk, &[1; 32], &[0; 48]),
            Err(Error::InvalidKey(_))
        ));
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        for version in VERSIONS {
            let (sk, pk) = key_pair(version);
            let h = header(version);
            let paserk = seal(version, &pk, &[9; 32]).unwrap();
            let body = common::parse(&paserk, h, body_len(version)).unwrap();
            let mut flips = 0;
            for byte in 0..body.len() {
                for bit in 0..8 {
                    let mut tampered = body.clone();
                    tampered[byte] ^= 1 << bit;
                    let s = common::encode(h, &tampered);
                    assert!(
                        matches!(unseal(version, &sk, &s), Err(Error::KeyRecoveryFailed)),
                        "{version:?} byte {byte} bit {bit}"
                    );
                    flips += 1;
                }
            }
            assert_eq!(flips, body_len(version) * 8);
        }
    }

    #[test]
    fn low_order_ephemeral_key_is_rejected() {
        // epk = 0 (and the other small-order u-coordinates) gives xk = 0.
        let (sk, _) = key_pair(PaserkVersion::K4);
        let h = header(PaserkVersion::K4);
        for epk in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            let body = [[0u8; 32], epk, [0u8; 32]].concat();
            assert!(matches!(
                unseal(PaserkVersion::K4, &sk, &common::encode(h, &body)),
                Err(Error::KeyRecoveryFailed)
            ));
        }
    }

    #[test]
    fn bad_keys_are_refused() {
        let key = [0u8; 32];
        // k4: wrong length, not a point, non-canonical, small order, mixed order.
        let (_, pk) = key_pair(PaserkVersion::K4);
        assert!(matches!(
            seal(PaserkVersion::K4, &pk[..31], &key),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            seal(PaserkVersion::K4, &pk, &key[..31]),
            Err(Error::InvalidKey(_))
        ));
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            seal(PaserkVersion::K4, &identity, &key),
            Err(Error::InvalidKey(_))
        ));
        // y = p + 1 encodes the identity non-canonically.
        let mut noncanonical = [0xffu8; 32];
        noncanonical[0] = 0xee;
        noncanonical[31] = 0x7f;
        assert!(matches!(
            seal(PaserkVersion::K4, &noncanonical, &key),
            Err(Error::InvalidKey(_))
        ));
        let not_on_curve = {
            let mut y = [0u8; 32];
            y[0] = 2;
            y
        };
        assert!(CompressedEdwardsY(not_on_curve).decompress().is_none());
        assert!(matches!(
            seal(PaserkVersion::K4, &not_on_curve, &key),
            Err(Error::InvalidKey(_))
        ));
        let valid = CompressedEdwardsY(pk.clone().try_into().unwrap())
            .decompress()
            .unwrap();
        let torsion = curve25519_dalek::constants::EIGHT_TORSION[1];
        let mixed = (valid + torsion).compress().to_bytes();
        assert!(matches!(
            seal(PaserkVersion::K4, &mixed, &key),
            Err(Error::InvalidKey(_))
        ));

        // k3: uncompressed or malformed points.
        let (sk3, pk3) = key_pair(PaserkVersion::K3);
        let uncompressed = p384::SecretKey::from_slice(&sk3)
            .unwrap()
            .public_key()
            .to_encoded_point(false);
        assert!(matches!(
            seal(PaserkVersion::K3, uncompressed.as_bytes(), &key),
            Err(Error::InvalidKey(_))
        ));
        let mut bad = pk3.clone();
        bad[0] = 0x04;
        assert!(matches!(
            seal(PaserkVersion::K3, &bad, &key),
            Err(Error::InvalidKey(_))
        ));

        // Unseal with malformed secret keys (after the PASERK itself parsed).
        let (sk4, pk4) = key_pair(PaserkVersion::K4);
        let sealed4 = seal(PaserkVersion::K4, &pk4, &key).unwrap();
        assert!(matches!(
            unseal(PaserkVersion::K4, &sk4[..32], &sealed4),
            Err(Error::InvalidKey(_))
        ));
        let mut mismatched = sk4.clone();
        mismatched[63] ^= 1;
        assert!(matches!(
            unseal(PaserkVersion::K4, &mismatched, &sealed4),
            Err(Error::InvalidKey(_))
        ));
        let sealed3 = seal(PaserkVersion::K3, &pk3, &key).unwrap();
        assert!(matches!(
            unseal(PaserkVersion::K3, &[0; 48], &sealed3),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            unseal(PaserkVersion::K3, &sk3[..47], &sealed3),
            Err(Error::InvalidKey(_))
        ));
    }

    #[test]
    fn malformed_strings_give_typed_errors() {
        let (sk, pk) = key_pair(PaserkVersion::K4);
        let good = seal(PaserkVersion::K4, &pk, &[3; 32]).unwrap();
        for s in [
            String::new(),
            "k4.seal".into(),
            "k4.seal.".into(),
            "k4.local.AAAA".into(),
            format!("{good}A"),
            good[..good.len() - 2].to_string(),
            format!("{good}=="),
            good.replace("k4.seal.", "k4.seal.."),
            good.replacen("k4.", "k1.", 1),
        ] {
            assert!(
                matches!(
                    unseal(PaserkVersion::K4, &sk, &s),
                    Err(Error::InvalidPaserk(_))
                ),
                "{s:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,200}") {
            for version in VERSIONS {
                let result = unseal(version, &[0; 64], &s);
                prop_assert!(matches!(result, Err(Error::InvalidPaserk(_))));
            }
        }

        #[test]
        fn random_bodies_are_rejected(
            k4 in proptest::collection::vec(any::<u8>(), 96..=96),
            k3 in proptest::collection::vec(any::<u8>(), 129..=129),
        ) {
            let (sk4, _) = key_pair(PaserkVersion::K4);
            let s4 = common::encode(header(PaserkVersion::K4), &k4);
            prop_assert!(matches!(unseal(PaserkVersion::K4, &sk4, &s4), Err(Error::KeyRecoveryFailed)));
            let (sk3, _) = key_pair(PaserkVersion::K3);
            let s3 = common::encode(header(PaserkVersion::K3), &k3);
            prop_assert!(matches!(unseal(PaserkVersion::K3, &sk3, &s3), Err(Error::KeyRecoveryFailed)));
        }
    }
}
