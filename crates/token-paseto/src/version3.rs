//! PASETO v3 (NIST): ECDSA P-384 with SHA-384 for `public`; AES-256-CTR with
//! HMAC-SHA384, keys split by HKDF-SHA384, for `local`. Built on the RustCrypto crates,
//! with keys parsed once and kept parsed (no per-token key derivation).

use aes::Aes256;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::Sha384;
use zeroize::Zeroizing;

use crate::encoding::{b64_decode, b64_encode, pae, utf8};
use crate::error::{Error, Result};
use crate::paserk::PaserkVersion;
use crate::token::Parsed;
use crate::version::{V3, Version, finish_token};

const NONCE_LEN: usize = 32;
const TAG_LEN: usize = 48;
const SIG_LEN: usize = 96;
const COMPRESSED_LEN: usize = 49;

/// A P-384 public key with its compressed SEC1 form (which v3 signatures cover).
#[derive(Clone, Debug)]
pub struct P384Public {
    key: VerifyingKey,
    compressed: [u8; COMPRESSED_LEN],
}

impl P384Public {
    fn new(key: VerifyingKey) -> Result<Self> {
        let point = key.to_encoded_point(true);
        let compressed = point
            .as_bytes()
            .try_into()
            .map_err(|_| Error::InvalidKey("P-384 point did not compress to 49 bytes"))?;
        Ok(Self { key, compressed })
    }
}

/// A P-384 signing key with its public half, both parsed once.
pub struct P384Secret {
    key: SigningKey,
    public: P384Public,
}

/// 48 bytes of derived key material, zeroized on drop.
type Derived = Zeroizing<[u8; 48]>;

/// HKDF-SHA384 key split: (encryption key ‖ CTR nonce, authentication key).
fn split_keys(key: &[u8], nonce: &[u8]) -> Result<(Derived, Derived)> {
    let hk = Hkdf::<Sha384>::new(None, key);
    let mut enc = Zeroizing::new([0u8; 48]);
    let mut auth = Zeroizing::new([0u8; 48]);
    hk.expand_multi_info(&[b"paseto-encryption-key", nonce], enc.as_mut_slice())
        .map_err(|_| Error::invalid())?;
    hk.expand_multi_info(&[b"paseto-auth-key-for-aead", nonce], auth.as_mut_slice())
        .map_err(|_| Error::invalid())?;
    Ok((enc, auth))
}

fn keystream(enc: &[u8; 48], data: &mut [u8]) -> Result<()> {
    let (key, iv) = enc.split_at(32);
    let mut cipher = Ctr128BE::<Aes256>::new_from_slices(key, iv).map_err(|_| Error::invalid())?;
    cipher.apply_keystream(data);
    Ok(())
}

/// Feeds PAE(`pieces`) to `mac` without building it in memory.
fn pae_into(mac: &mut Hmac<Sha384>, pieces: &[&[u8]]) {
    let le64 = |n: usize| (u64::try_from(n).unwrap_or(u64::MAX) & (u64::MAX >> 1)).to_le_bytes();
    mac.update(&le64(pieces.len()));
    for p in pieces {
        mac.update(&le64(p.len()));
        mac.update(p);
    }
}

fn mac(auth: &[u8; 48]) -> Result<Hmac<Sha384>> {
    <Hmac<Sha384> as Mac>::new_from_slice(auth).map_err(|_| Error::invalid())
}

/// v3.local encryption with a given nonce. Only tests reproduce vectors with it; every
/// other caller draws the nonce at random.
pub(crate) fn encrypt_with_nonce(
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    message: &[u8],
    footer: &[u8],
    implicit_assertion: &[u8],
) -> Result<String> {
    let (enc, auth) = split_keys(key, nonce)?;
    let mut body = Vec::with_capacity(NONCE_LEN + message.len() + TAG_LEN);
    body.extend_from_slice(nonce);
    body.extend_from_slice(message);
    let c = body.get_mut(NONCE_LEN..).ok_or_else(Error::invalid)?;
    keystream(&enc, c)?;
    let pre_auth = pae(&[
        V3::LOCAL_HEADER.as_bytes(),
        nonce,
        body.get(NONCE_LEN..).unwrap_or_default(),
        footer,
        implicit_assertion,
    ]);
    let mut m = mac(&auth)?;
    m.update(&pre_auth);
    body.extend_from_slice(&m.finalize().into_bytes());
    Ok(finish_token(
        format!("{}{}", V3::LOCAL_HEADER, b64_encode(&body)),
        footer,
    ))
}

/// PASETO payloads are text (JSON): refuse anything else, as v4 does.
impl Version for V3 {
    const ID: token_core::PasetoVersion = token_core::PasetoVersion::V3;
    const PASERK: PaserkVersion = PaserkVersion::K3;
    const LOCAL_HEADER: &'static str = "v3.local.";
    const PUBLIC_HEADER: &'static str = "v3.public.";

    type LocalInner = Zeroizing<[u8; 32]>;
    type SecretInner = P384Secret;
    type PublicInner = P384Public;

    fn local_from_bytes(bytes: &[u8]) -> Result<Self::LocalInner> {
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::InvalidKey("a v3 local key is 32 bytes"))?;
        Ok(Zeroizing::new(key))
    }

    fn local_bytes(key: &Self::LocalInner) -> &[u8] {
        key.as_slice()
    }

    fn secret_from_bytes(bytes: &[u8]) -> Result<Self::SecretInner> {
        if bytes.len() != 48 {
            return Err(Error::InvalidKey(
                "a v3 secret key is a 48-byte P-384 scalar",
            ));
        }
        let key = SigningKey::from_slice(bytes)
            .map_err(|_| Error::InvalidKey("not a valid P-384 scalar"))?;
        let public = P384Public::new(*key.verifying_key())?;
        Ok(P384Secret { key, public })
    }

    fn secret_bytes(key: &Self::SecretInner) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(key.key.to_bytes().to_vec())
    }

    fn generate_secret() -> Result<Self::SecretInner> {
        // Rejection sampling: a uniformly random 384-bit string is a valid scalar with
        // overwhelming probability; retry the rare zero or out-of-range value.
        for _ in 0..64 {
            let mut bytes = Zeroizing::new([0u8; 48]);
            getrandom::fill(bytes.as_mut_slice()).map_err(|_| Error::RandomnessUnavailable)?;
            if let Ok(key) = Self::secret_from_bytes(bytes.as_slice()) {
                return Ok(key);
            }
        }
        Err(Error::RandomnessUnavailable)
    }

    fn public_of(key: &Self::SecretInner) -> Result<Self::PublicInner> {
        Ok(key.public.clone())
    }

    fn public_from_bytes(bytes: &[u8]) -> Result<Self::PublicInner> {
        if bytes.len() != COMPRESSED_LEN {
            return Err(Error::InvalidKey(
                "a v3 public key is a 49-byte compressed P-384 point",
            ));
        }
        // SEC1 also defines other 49-byte forms (the `0x05` "compact" tag) that decode
        // to the same point: only the compressed form is a v3 public key, so one key
        // has one PASERK and one id.
        if !matches!(bytes.first(), Some(0x02 | 0x03)) {
            return Err(Error::InvalidKey(
                "a v3 public key is a compressed P-384 point (SEC1 prefix 0x02 or 0x03)",
            ));
        }
        let key = VerifyingKey::from_sec1_bytes(bytes)
            .map_err(|_| Error::InvalidKey("not a point on P-384"))?;
        let public = P384Public::new(key)?;
        if public.compressed.as_slice() != bytes {
            return Err(Error::InvalidKey(
                "not the canonical encoding of a P-384 point",
            ));
        }
        Ok(public)
    }

    fn public_bytes(key: &Self::PublicInner) -> Vec<u8> {
        key.compressed.to_vec()
    }

    fn encrypt(
        key: &Self::LocalInner,
        message: &[u8],
        footer: &[u8],
        implicit_assertion: &[u8],
    ) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| Error::RandomnessUnavailable)?;
        encrypt_with_nonce(key.as_slice(), &nonce, message, footer, implicit_assertion)
    }

    fn decrypt(
        key: &Self::LocalInner,
        token: &Parsed<'_>,
        implicit_assertion: &[u8],
    ) -> Result<Vec<u8>> {
        let body = b64_decode(token.body, "payload is not base64url")?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::Malformed(
                "v3.local payload shorter than nonce and tag",
            ));
        }
        let (nonce, rest) = body.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let (enc, auth) = split_keys(key.as_slice(), nonce)?;
        let mut m = mac(&auth)?;
        pae_into(
            &mut m,
            &[
                V3::LOCAL_HEADER.as_bytes(),
                nonce,
                ciphertext,
                &token.footer,
                implicit_assertion,
            ],
        );
        // Constant-time comparison, before any decryption.
        m.verify_slice(tag).map_err(|_| Error::invalid())?;
        let mut plaintext = ciphertext.to_vec();
        keystream(&enc, &mut plaintext)?;
        utf8(plaintext)
    }

    fn sign(
        key: &Self::SecretInner,
        message: &[u8],
        footer: &[u8],
        implicit_assertion: &[u8],
    ) -> Result<String> {
        let m2 = pae(&[
            &key.public.compressed,
            V3::PUBLIC_HEADER.as_bytes(),
            message,
            footer,
            implicit_assertion,
        ]);
        // RFC 6979 deterministic ECDSA over SHA-384.
        let sig: Signature = key.key.sign(&m2);
        let mut body = Vec::with_capacity(message.len() + SIG_LEN);
        body.extend_from_slice(message);
        body.extend_from_slice(&sig.to_bytes());
        Ok(finish_token(
            format!("{}{}", V3::PUBLIC_HEADER, b64_encode(&body)),
            footer,
        ))
    }

    fn verify(
        key: &Self::PublicInner,
        token: &Parsed<'_>,
        implicit_assertion: &[u8],
    ) -> Result<Vec<u8>> {
        let mut body = b64_decode(token.body, "payload is not base64url")?;
        if body.len() <= SIG_LEN {
            return Err(Error::Malformed(
                "v3.public payload shorter than a signature",
            ));
        }
        let sig_bytes = body.split_off(body.len() - SIG_LEN);
        let sig = Signature::from_slice(&sig_bytes).map_err(|_| Error::invalid())?;
        let m2 = pae(&[
            &key.compressed,
            V3::PUBLIC_HEADER.as_bytes(),
            &body,
            &token.footer,
            implicit_assertion,
        ]);
        key.key.verify(&m2, &sig).map_err(|_| Error::invalid())?;
        utf8(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// v3.local is built here from primitives, so reproduce every official encryption
    /// byte for byte from its key and nonce.
    #[test]
    fn reproduces_the_official_v3_local_tokens() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/paseto/v3.json")).unwrap();
        let mut reproduced = 0;
        for case in v["tests"].as_array().unwrap() {
            let token = case["token"].as_str().unwrap();
            if case["expect-fail"].as_bool().unwrap() || !token.starts_with("v3.local.") {
                continue;
            }
            let key = hex::decode(case["key"].as_str().unwrap()).unwrap();
            let nonce: [u8; 32] = hex::decode(case["nonce"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let made = encrypt_with_nonce(
                &key,
                &nonce,
                case["payload"].as_str().unwrap().as_bytes(),
                case["footer"].as_str().unwrap().as_bytes(),
                case["implicit-assertion"].as_str().unwrap().as_bytes(),
            )
            .unwrap();
            assert_eq!(made, token, "{}", case["name"]);
            reproduced += 1;
        }
        assert_eq!(reproduced, 9);
    }
}
