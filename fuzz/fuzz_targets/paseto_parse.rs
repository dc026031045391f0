//! Arbitrary strings through the full PASETO verify and decrypt paths (v4 and v3,
//! local and public, with key rings): must never panic, and nothing forged verifies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use token_core::Validation;
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, PublicVerifier, SecretKey, V3, V4};

struct Keys {
    v4_public: PublicVerifier<V4>,
    v3_public: PublicVerifier<V3>,
    v4_local: LocalCipher<V4>,
    v3_local: LocalCipher<V3>,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        v4_public: PublicIssuer::new(SecretKey::<V4>::generate().unwrap()).public_verifier(),
        v3_public: PublicIssuer::new(SecretKey::<V3>::generate().unwrap()).public_verifier(),
        v4_local: LocalCipher::new(LocalKey::<V4>::generate().unwrap()),
        v3_local: LocalCipher::new(LocalKey::<V3>::generate().unwrap()),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let k = keys();
    let v = Validation::new().dangerous_skip_audience_check().allow_non_expiring_tokens();
    let opts = token_paseto::VerifyOptions::default();
    // Random keys: no input can be authentic, so every call must be an error.
    assert!(k.v4_public.verify_with::<serde_json::Value>(token, &opts, &v).is_err());
    assert!(k.v3_public.verify_with::<serde_json::Value>(token, &opts, &v).is_err());
    assert!(k.v4_local.decrypt_with::<serde_json::Value>(token, &opts, &v).is_err());
    assert!(k.v3_local.decrypt_with::<serde_json::Value>(token, &opts, &v).is_err());
});
