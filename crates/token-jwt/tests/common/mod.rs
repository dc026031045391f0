//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde_json::Value;
use token_core::{Claims, FixedClock, Timestamp, Validation};
use token_jwt::{Algorithm, SigningKey};

/// 2023-11-14T22:13:20Z.
pub(crate) const NOW: i64 = 1_700_000_000;
pub(crate) const ISSUER: &str = "https://auth.example";
pub(crate) const AUDIENCE: &str = "api";

pub(crate) fn now() -> FixedClock {
    FixedClock(Timestamp::from_unix_seconds(NOW).unwrap())
}

pub(crate) fn at(seconds: i64) -> FixedClock {
    FixedClock(Timestamp::from_unix_seconds(seconds).unwrap())
}

/// Claims from `ISSUER` for `AUDIENCE`, valid for five minutes from `NOW`.
pub(crate) fn claims() -> Claims<()> {
    Claims::new(())
        .issuer(ISSUER)
        .subject("user-1")
        .audience(AUDIENCE)
        .valid_for(&now(), Duration::from_secs(300))
        .unwrap()
}

/// The validation matching [`claims`], at `NOW`.
pub(crate) fn validation() -> Validation {
    Validation::new()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .clock(now())
}

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// The registered claims of [`claims`] as JSON text.
pub(crate) fn claims_json() -> String {
    String::from_utf8(claims().to_json::<token_core::NumericDate>().unwrap()).unwrap()
}

/// A compact JWS with any header and payload, signed by `sign` over the signing input.
pub(crate) fn forge(header: &str, payload: &str, sign: &dyn Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

/// A signing function for `key`'s private key, through josekit directly (so that any
/// header can be signed).
pub(crate) type RawSigner = Box<dyn Fn(&[u8]) -> Vec<u8>>;

pub(crate) fn raw_signer(key: &SigningKey) -> RawSigner {
    let pem = key.dangerous_to_pkcs8_pem().unwrap();
    let pem = pem.expose_secret().as_bytes();
    let signer: Box<dyn josekit::jws::JwsSigner> = match key.algorithm() {
        Algorithm::Es256 => Box::new(josekit::jws::ES256.signer_from_pem(pem).unwrap()),
        Algorithm::Es384 => Box::new(josekit::jws::ES384.signer_from_pem(pem).unwrap()),
        Algorithm::EdDsa => Box::new(josekit::jws::EdDSA.signer_from_pem(pem).unwrap()),
        Algorithm::Ps256 => Box::new(josekit::jws::PS256.signer_from_pem(pem).unwrap()),
        Algorithm::Rs256 => Box::new(josekit::jws::RS256.signer_from_pem(pem).unwrap()),
        other => panic!("no raw signer for {other}"),
    };
    Box::new(move |input: &[u8]| signer.sign(input).unwrap())
}

/// Reads a vector file (a copy under `tests/vectors/`).
pub(crate) fn vector(path: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/jose")
        .join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A JSON value as text.
pub(crate) fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

/// A JWK object without its private members.
pub(crate) fn public_part(jwk: &Value) -> Value {
    let mut jwk = jwk.as_object().unwrap().clone();
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        jwk.remove(member);
    }
    Value::Object(jwk)
}
