//! The migration verifier's legacy HMAC route: admitted only through its `dangerous_`
//! method, counted, and cut off with every other JWT route.
#![cfg(feature = "jwt")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use token_core::{Claims, Clock, KeyId, ManualClock, SecretBytes, TokenSigner, Validation};
use token_jwt::{
    Algorithm, HmacAlgorithm, HmacKey, JwtVerifier, SigningKey, SigningKeySet, TokenType,
};
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::{Counts, DualVerifier, Error};

fn hmac(alg: HmacAlgorithm, byte: u8) -> HmacKey {
    HmacKey::dangerous_shared_secret(alg, SecretBytes::new(vec![byte; alg.output_len()]))
        .unwrap()
        .with_key_id(KeyId::new(format!("legacy-{alg}-{byte}")).unwrap())
}

#[test]
fn legacy_hmac_jwts_need_the_dangerous_route_and_are_counted_and_cut_off() {
    let clock = Arc::new(ManualClock::at_system_now());
    let claims = Claims::new(())
        .issuer("https://auth.example")
        .audience("api")
        .valid_for(clock.as_ref(), Duration::from_secs(600))
        .unwrap();
    let validation = Validation::new()
        .issuer("https://auth.example")
        .audience("api")
        .shared_clock(clock.clone());
    let paseto = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let es256 = SigningKeySet::new(SigningKey::generate(Algorithm::Es256).unwrap());
    let legacy = hmac(HmacAlgorithm::Hs256, 1);
    let hs256 = legacy.sign(&claims).unwrap();
    let hs384 = hmac(HmacAlgorithm::Hs384, 1)
        .sign_as(&TokenType::Jwt, &claims)
        .unwrap();
    // Another secret under the same key id.
    let forged = hmac(HmacAlgorithm::Hs256, 2)
        .with_key_id(KeyId::new("legacy-HS256-1").unwrap())
        .sign(&claims)
        .unwrap();
    let p_token = paseto.sign(&claims).unwrap();
    let e_token = es256.sign(&claims).unwrap();

    // Without the dangerous route, an HMAC JWT is off the list, even beside an
    // ES256 route.
    let plain = DualVerifier::new()
        .allow_paseto_v4_public(paseto.verifier())
        .allow_jwt(es256.verifier(), &[Algorithm::Es256])
        .clock(clock.clone());
    assert!(matches!(
        plain.verify::<()>(hs256.expose_secret(), &validation),
        Err(Error::NotAllowed(why)) if why.contains("HS256")
    ));
    assert_eq!(plain.counts().refused, 1);

    // With it: HS256 verifies beside PASETO and ES256, each on its own route.
    let cutoff = clock.now().checked_add(Duration::from_secs(3600)).unwrap();
    let dual = DualVerifier::new()
        .stop_accepting_jwt_after(cutoff)
        .allow_paseto_v4_public(paseto.verifier())
        .allow_jwt(es256.verifier(), &[Algorithm::Es256])
        .dangerous_allow_legacy_hmac_jwt(JwtVerifier::new(legacy), &[HmacAlgorithm::Hs256])
        .clock(clock.clone());
    let ok = dual
        .verify::<()>(hs256.expose_secret(), &validation)
        .unwrap();
    assert_eq!(ok.key_id().map(KeyId::as_str), Some("legacy-HS256-1"));
    dual.verify::<()>(p_token.expose_secret(), &validation)
        .unwrap();
    dual.verify::<()>(e_token.expose_secret(), &validation)
        .unwrap();
    // Claims rules apply as on every route.
    assert!(
        dual.verify::<()>(
            hs256.expose_secret(),
            &validation.clone().audience("billing")
        )
        .is_err()
    );
    // Another secret is an invalid token; an HMAC algorithm off the list is refused.
    assert!(matches!(
        dual.verify::<()>(forged.expose_secret(), &validation),
        Err(Error::Jwt(token_jwt::Error::Core(
            token_core::Error::InvalidToken
        )))
    ));
    assert!(matches!(
        dual.verify::<()>(hs384.expose_secret(), &validation),
        Err(Error::NotAllowed(_))
    ));
    assert_eq!(
        dual.counts(),
        Counts {
            paseto: 1,
            jwt: 4,
            legacy_hmac: 3,
            refused: 1,
        }
    );

    // The cut-off retires the HMAC route with the other JWT routes.
    clock.advance(Duration::from_secs(3600));
    for token in [&hs256, &e_token] {
        assert!(matches!(
            dual.verify::<()>(token.expose_secret(), &validation),
            Err(Error::JwtRetired)
        ));
    }
    assert_eq!(dual.counts().legacy_hmac, 3);
}

/// An HMAC route alone, without any public-key JWT route, still fails closed for
/// every other algorithm.
#[test]
fn the_legacy_hmac_route_alone_fails_closed() {
    let claims = Claims::new(()).audience("api");
    let validation = Validation::new()
        .audience("api")
        .allow_non_expiring_tokens();
    let legacy = hmac(HmacAlgorithm::Hs512, 7);
    let token = legacy.sign(&claims).unwrap();
    let dual = DualVerifier::new()
        .dangerous_allow_legacy_hmac_jwt(JwtVerifier::new(legacy), &[HmacAlgorithm::Hs512]);
    dual.verify::<()>(token.expose_secret(), &validation)
        .unwrap();
    let es256 = SigningKey::generate(Algorithm::Es256).unwrap();
    let e_token = es256.sign(&claims).unwrap();
    assert!(matches!(
        dual.verify::<()>(e_token.expose_secret(), &validation),
        Err(Error::NotAllowed(_))
    ));
    assert_eq!(dual.counts().legacy_hmac, 1);
}
