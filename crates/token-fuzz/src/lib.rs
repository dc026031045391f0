//! The bodies of the fuzz targets in `fuzz/fuzz_targets/`, one function per parser.
//!
//! Each body takes arbitrary bytes, drives one parser, and panics only when an
//! invariant breaks (a panic inside a parser, a forged token that verifies, a decoded
//! value that does not re-encode). The cargo-fuzz targets are one line each, calling
//! these; `tests/corpus.rs` runs every body on its committed corpus, so CI exercises
//! them even where libFuzzer is unavailable.
//!
//! ```
//! // A body returns for any input, malformed or not; it panics only on a broken invariant.
//! token_fuzz::detect(b"v4.public.eyJzdWIiOiJ1c2VyLTQyIn0");
//! token_fuzz::opaque_parse(b"sk_live_not-a-key");
//! token_fuzz::jwt_parse(&[0xff, b'.', b'.']);
//! ```
#![forbid(unsafe_code)]
// A fuzz body reports a broken invariant by panicking: that is its whole purpose.
#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::missing_panics_doc
)]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use token_core::format::OPAQUE_BODY_LEN;
use token_core::{
    Claims, MAX_TOKEN_LEN, NumericDate, Rfc3339, SecretBytes, TokenFormat, TokenVerifier,
    Validation,
};
use token_jwt::{
    Algorithm, DecryptingKey, DirectKey, EcdhCurve, HmacAlgorithm, HmacKey, Jwks, JwtVerifier,
    SigningKey, VerifyingKey, dangerous_decode_header, dangerous_decode_unverified, hazmat,
};
use token_opaque::Prefixes;
use token_paseto::{
    LocalCipher, LocalKey, PublicIssuer, PublicKey, PublicVerifier, SecretKey, V3, V4,
    VerifyOptions,
};

/// A fuzz body: arbitrary bytes in, a panic only on a broken invariant.
pub type Body = fn(&[u8]);

/// Every target: its name (the file in `fuzz/fuzz_targets/` and the corpus folder) and
/// its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("detect", detect),
    ("claims_json", claims_json),
    ("paseto_parse", paseto_parse),
    ("paserk_parse", paserk_parse),
    ("footer_json", footer_json),
    ("jwt_parse", jwt_parse),
    ("jwk_parse", jwk_parse),
    ("opaque_parse", opaque_parse),
    ("verify_access", verify_access),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

fn any_validation() -> Validation {
    Validation::new()
        .dangerous_skip_audience_check()
        .allow_non_expiring_tokens()
}

/// `TokenFormat::detect`: never panics; whatever it classifies fits the shape claimed.
pub fn detect(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(format) = TokenFormat::detect(s) {
        assert!(s.len() <= MAX_TOKEN_LEN);
        let dots = s.bytes().filter(|&b| b == b'.').count();
        match format {
            TokenFormat::Jws => assert_eq!(dots, 2),
            TokenFormat::Jwe => assert_eq!(dots, 4),
            TokenFormat::Paseto { has_footer, .. } => {
                assert_eq!(dots, if has_footer { 3 } else { 2 });
            }
            TokenFormat::Opaque(_) => assert_eq!(dots, 0),
            _ => {}
        }
    }
}

/// Claims JSON in both time encodings: whatever decodes re-encodes to the same claims.
pub fn claims_json(data: &[u8]) {
    if let Ok(c) = Claims::<Map<String, Value>>::from_json::<NumericDate>(data) {
        let again = c
            .to_json::<NumericDate>()
            .expect("decoded claims re-encode");
        let back =
            Claims::<Map<String, Value>>::from_json::<NumericDate>(&again).expect("round trip");
        assert_eq!(back, c);
    }
    if let Ok(c) = Claims::<Map<String, Value>>::from_json::<Rfc3339>(data) {
        let again = c.to_json::<Rfc3339>().expect("decoded claims re-encode");
        let back = Claims::<Map<String, Value>>::from_json::<Rfc3339>(&again).expect("round trip");
        assert_eq!(back, c);
    }
}

struct PasetoKeys {
    v4_public: PublicVerifier<V4>,
    v3_public: PublicVerifier<V3>,
    v4_local: LocalCipher<V4>,
    v3_local: LocalCipher<V3>,
    signer: SecretKey<V4>,
    wrapping: LocalKey<V4>,
    recipient: SecretKey<V4>,
}

static PASETO: LazyLock<PasetoKeys> = LazyLock::new(|| {
    let signer = SecretKey::<V4>::generate().expect("key");
    PasetoKeys {
        v4_public: PublicVerifier::new(signer.public_key().clone()),
        v3_public: PublicIssuer::new(SecretKey::<V3>::generate().expect("key")).verifier(),
        v4_local: LocalCipher::new(LocalKey::<V4>::generate().expect("key")),
        v3_local: LocalCipher::new(LocalKey::<V3>::generate().expect("key")),
        signer,
        wrapping: LocalKey::<V4>::generate().expect("key"),
        recipient: SecretKey::<V4>::generate().expect("key"),
    }
});

/// Arbitrary strings through the full PASETO verify and decrypt paths: never panics,
/// and nothing verifies (the keys are random, so nothing the fuzzer makes is authentic).
pub fn paseto_parse(data: &[u8]) {
    let Some(token) = text(data) else { return };
    let k = &*PASETO;
    let v = any_validation();
    let o = VerifyOptions::default();
    assert!(k.v4_public.verify_with::<Value>(token, &o, &v).is_err());
    assert!(k.v3_public.verify_with::<Value>(token, &o, &v).is_err());
    assert!(k.v4_local.decrypt_with::<Value>(token, &o, &v).is_err());
    assert!(k.v3_local.decrypt_with::<Value>(token, &o, &v).is_err());
}

/// PASERK strings: plain keys of every type and version, wrapped and sealed keys.
/// Never panics; a key that parses re-exports to the same string. (Password-protected
/// PASERKs are not fuzzed: each attempt would run Argon2id or PBKDF2 at full cost.)
pub fn paserk_parse(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(k) = LocalKey::<V4>::from_paserk(s) {
        assert_eq!(k.to_paserk().expose_secret(), s);
    }
    if let Ok(k) = LocalKey::<V3>::from_paserk(s) {
        assert_eq!(k.to_paserk().expose_secret(), s);
    }
    if let Ok(k) = SecretKey::<V4>::from_paserk(s) {
        assert_eq!(k.to_paserk().expose_secret(), s);
    }
    if let Ok(k) = SecretKey::<V3>::from_paserk(s) {
        assert_eq!(k.to_paserk().expose_secret(), s);
    }
    if let Ok(k) = PublicKey::<V4>::from_paserk(s) {
        assert_eq!(k.to_paserk(), s);
    }
    if let Ok(k) = PublicKey::<V3>::from_paserk(s) {
        assert_eq!(k.to_paserk(), s);
    }
    let k = &*PASETO;
    // Random wrapping and recipient keys: nothing the fuzzer makes opens.
    assert!(LocalKey::<V4>::unwrap_with(s, &k.wrapping).is_err());
    assert!(SecretKey::<V4>::unwrap_with(s, &k.wrapping).is_err());
    assert!(LocalKey::<V4>::unseal(s, &k.recipient).is_err());
    let _ = token_paseto::PublicKeySet::from_json(s);
}

/// Footers: authentic `v4.public` tokens whose footer is the fuzzer's bytes, through
/// the bounded footer parse and the key lookup. A footer naming no trusted key, or not
/// parsing, is refused; one that parses verifies.
pub fn footer_json(data: &[u8]) {
    let k = &*PASETO;
    let Ok(token) = k.signer.sign_raw(b"{}", data, b"") else {
        return;
    };
    let result = k.v4_public.verify_with::<Value>(
        token.expose_secret(),
        &VerifyOptions::default(),
        &any_validation(),
    );
    if let Ok(verified) = result {
        assert_eq!(verified.key_id(), Some(k.signer.public_key().id()));
    }
}

struct JwtKeys {
    es256: VerifyingKey,
    eddsa: VerifyingKey,
    hmac: HmacKey,
    set: JwtVerifier,
    recipient: DecryptingKey,
    direct: DirectKey,
}

static JWT: LazyLock<JwtKeys> = LazyLock::new(|| {
    let es256 = SigningKey::generate(Algorithm::Es256).expect("key");
    let eddsa = SigningKey::generate(Algorithm::EdDsa).expect("key");
    let mut jwks = Jwks::new();
    jwks.push_verifying_key(es256.verifying_key());
    jwks.push_verifying_key(eddsa.verifying_key());
    JwtKeys {
        set: JwtVerifier::from_jwks(&jwks.to_json()).expect("jwks"),
        es256: es256.verifying_key().clone(),
        eddsa: eddsa.verifying_key().clone(),
        hmac: HmacKey::dangerous_shared_secret(HmacAlgorithm::Hs256, SecretBytes::new(vec![7; 32]))
            .expect("key"),
        recipient: DecryptingKey::generate(EcdhCurve::P256).expect("key"),
        direct: DirectKey::generate().expect("key"),
    }
});

fn check_jwt(token: &str) {
    let keys = &*JWT;
    let any = Validation::new().dangerous_skip_audience_check();
    // Nothing the fuzzer makes is signed or encrypted under these keys.
    assert!(
        keys.es256
            .verify::<Map<String, Value>>(token, &any)
            .is_err()
    );
    assert!(
        keys.eddsa
            .verify::<Map<String, Value>>(token, &any)
            .is_err()
    );
    assert!(keys.hmac.verify::<Map<String, Value>>(token, &any).is_err());
    assert!(keys.set.verify::<Map<String, Value>>(token, &any).is_err());
    assert!(hazmat::verify_jws(&keys.es256, token).is_err());
    assert!(
        keys.direct
            .decrypt::<Map<String, Value>>(token, &any)
            .is_err()
    );
    assert!(
        keys.recipient
            .decrypt_signed::<(), _>(token, &keys.set, &any)
            .is_err()
    );
    if let Ok(untrusted) = dangerous_decode_unverified::<Map<String, Value>>(token) {
        assert!(untrusted.claims().to_json::<NumericDate>().is_ok());
    }
    let _ = dangerous_decode_header(token);
}

/// JWS and JWE compact tokens. The first byte picks the mode: the rest as a whole
/// token, or as header / payload / signature (split at NUL bytes) base64url-encoded
/// into JWS and JWE shapes, so the fuzzer reaches the header and claims parsers.
pub fn jwt_parse(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Some(s) = text(rest) {
            check_jwt(s);
        }
        return;
    }
    let mut parts = rest.splitn(3, |&b| b == 0);
    let b64 = |p: Option<&[u8]>| URL_SAFE_NO_PAD.encode(p.unwrap_or_default());
    let (h, p, s) = (b64(parts.next()), b64(parts.next()), b64(parts.next()));
    check_jwt(&format!("{h}.{p}.{s}"));
    check_jwt(&format!("{h}.{p}."));
    check_jwt(&format!("{h}..{p}.{s}.{s}"));
}

/// JWK and JWKS JSON: every import path; a JWKS that reads, republished, reads back.
pub fn jwk_parse(data: &[u8]) {
    let Some(s) = text(data) else { return };
    if let Ok(jwks) = Jwks::from_json(s) {
        let _ = jwks.verifying_keys();
        assert!(
            Jwks::from_json(&jwks.to_json()).is_ok(),
            "a published JWKS reads back"
        );
    }
    let _ = JwtVerifier::from_jwks(s);
    for alg in Algorithm::ALL {
        let _ = VerifyingKey::from_jwk(alg, s);
        let _ = SigningKey::from_jwk(alg, s);
    }
    let _ = VerifyingKey::from_der(Algorithm::Es256, data);
    let _ = DecryptingKey::from_jwk(s);
    let _ = DirectKey::from_jwk(s);
    let _ = HmacKey::dangerous_from_jwk(HmacAlgorithm::Hs256, s);
}

/// Opaque tokens: whatever the strict parser accepts has the documented shape and is
/// classified the same way by `TokenFormat::detect`.
pub fn opaque_parse(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let prefixes = Prefixes::default();
    match prefixes.parse(s) {
        Ok(parsed) => {
            let prefix = prefixes
                .get(parsed.kind())
                .expect("a parsed kind has a prefix");
            assert!(s.starts_with(prefix));
            assert_eq!(s.len(), prefix.len() + OPAQUE_BODY_LEN);
            assert!(
                s.bytes()
                    .skip(prefix.len())
                    .all(|b| b.is_ascii_alphanumeric())
            );
            assert_eq!(
                TokenFormat::detect(s),
                Ok(TokenFormat::Opaque(parsed.kind()))
            );
        }
        Err(token_opaque::Error::Malformed(_) | token_opaque::Error::BadChecksum) => {}
        Err(other) => panic!("unexpected error kind from the parser: {other:?}"),
    }
}

struct Service {
    runtime: tokio::runtime::Runtime,
    service: token_policy::TokenService,
}

static SERVICE: LazyLock<Service> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let service = runtime.block_on(async {
        let store = token_policy::config::open_store("sqlite::memory:")
            .await
            .expect("store");
        token_policy::TokenService::builder(
            token_policy::Policy::new("https://auth.example", "api"),
            PublicIssuer::new(SecretKey::<V4>::generate().expect("key")),
        )
        .payment(LocalCipher::new(LocalKey::<V4>::generate().expect("key")))
        .opaque(token_opaque::OpaqueTokens::new(store))
        .build()
    });
    Service { runtime, service }
});

/// `TokenService::verify_access` on arbitrary input (format check, crypto, claims,
/// revocation): never panics, never accepts.
pub fn verify_access(data: &[u8]) {
    let Some(s) = text(data) else { return };
    let svc = &*SERVICE;
    let result = svc.runtime.block_on(svc.service.verify_access::<Value>(s));
    assert!(result.is_err(), "a token the fuzzer made was accepted");
}
