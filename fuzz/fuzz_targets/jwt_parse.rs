//! token-jwt's parsers on arbitrary input: verification, decryption, unverified
//! decoding, JWK and JWKS reading. Nothing may panic, nothing forged may verify, and
//! whatever decodes unverified must re-encode.
//!
//! The first byte picks how the rest is used: as a whole token, or as the header,
//! payload and signature of a compact JWS (base64url-encoded here, so the fuzzer
//! reaches the header and claims parsers without having to learn base64).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use token_core::{NumericDate, SecretBytes, TokenVerifier, Validation};
use token_jwt::{
    Algorithm, DecryptingKey, DirectKey, EcdhCurve, HmacAlgorithm, HmacKey, Jwks, JwtVerifier,
    SigningKey, VerifyingKey, dangerous_decode_header, dangerous_decode_unverified, hazmat,
};

struct Keys {
    es256: VerifyingKey,
    eddsa: VerifyingKey,
    hmac: HmacKey,
    set: JwtVerifier,
    recipient: DecryptingKey,
    direct: DirectKey,
}

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    let es256 = SigningKey::generate(Algorithm::Es256).expect("key");
    let eddsa = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let mut jwks = Jwks::new();
    jwks.push_verifying_key(es256.verifying_key());
    jwks.push_verifying_key(eddsa.verifying_key());
    Keys {
        set: JwtVerifier::from_jwks(&jwks.to_json()).expect("jwks"),
        es256: es256.verifying_key().clone(),
        eddsa: eddsa.verifying_key().clone(),
        hmac: HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::new(vec![7; 32]))
            .expect("key"),
        recipient: DecryptingKey::generate(EcdhCurve::P256).expect("key"),
        direct: DirectKey::generate().expect("key"),
    }
});

/// Base64url without padding (kept local so the fuzz crate needs no extra dependency).
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn check(token: &str) {
    let keys = &*KEYS;
    let any = Validation::new().dangerous_skip_audience_check();
    // Nothing the fuzzer makes is signed or encrypted under these keys.
    assert!(keys.es256.verify::<Map<String, Value>>(token, &any).is_err());
    assert!(keys.eddsa.verify::<Map<String, Value>>(token, &any).is_err());
    assert!(keys.hmac.verify::<Map<String, Value>>(token, &any).is_err());
    assert!(keys.set.verify::<Map<String, Value>>(token, &any).is_err());
    assert!(hazmat::verify_jws(&keys.es256, token).is_err());
    assert!(keys.direct.decrypt::<Map<String, Value>>(token, &any).is_err());
    assert!(keys.recipient.decrypt_signed::<(), _>(token, &keys.set, &any).is_err());

    if let Ok(untrusted) = dangerous_decode_unverified::<Map<String, Value>>(token) {
        // Whatever decodes re-encodes (the claims_json target checks the round trip).
        assert!(untrusted.claims().to_json::<NumericDate>().is_ok());
    }
    let _ = dangerous_decode_header(token);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 4 {
        0 => {
            let Ok(s) = std::str::from_utf8(rest) else { return };
            check(s);
        }
        1 => {
            // header \0 payload \0 signature, each base64url-encoded into a JWS.
            let mut parts = rest.splitn(3, |&b| b == 0);
            let header = parts.next().unwrap_or_default();
            let payload = parts.next().unwrap_or_default();
            let signature = parts.next().unwrap_or_default();
            check(&format!("{}.{}.{}", b64(header), b64(payload), b64(signature)));
            check(&format!("{}.{}.", b64(header), b64(payload)));
            check(&format!("{}..{}.{}.{}", b64(header), b64(payload), b64(signature), b64(signature)));
        }
        2 => {
            let Ok(s) = std::str::from_utf8(rest) else { return };
            if let Ok(jwks) = Jwks::from_json(s) {
                let _ = jwks.verifying_keys();
                let republished = jwks.to_json();
                assert!(Jwks::from_json(&republished).is_ok(), "a published JWKS reads back");
            }
        }
        _ => {
            let Ok(s) = std::str::from_utf8(rest) else { return };
            for alg in Algorithm::ALL {
                let _ = VerifyingKey::from_jwk(alg, s);
                let _ = SigningKey::from_jwk(alg, s);
            }
            let _ = VerifyingKey::from_der(Algorithm::Es256, rest);
            let _ = SigningKey::from_der(Algorithm::Rs256, rest);
            let _ = DecryptingKey::from_jwk(s);
            let _ = DirectKey::from_jwk(s);
            let _ = HmacKey::dangerous_from_jwk(HmacAlgorithm::Hs256, s);
        }
    }
});
