//! Fingerprint binding (OWASP token sidejacking) for clients that hold no key: with
//! the policy's opt-in, each login and refresh draws a random fingerprint for a
//! hardened cookie and puts its SHA-256 in the access token (PASETO and JWT alike);
//! the token verifies only with that cookie, compared in constant time.
#![cfg(all(feature = "jwt", feature = "sqlite"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use token_jwt::{Algorithm, SigningKey, SigningKeySet};
use token_opaque::OpaqueTokens;
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::config::open_store;
use token_policy::{AccessKey, Error, Policy, ResourceVerifier, TokenService};

async fn service(access: AccessKey, fingerprint: bool) -> TokenService {
    let store = open_store("sqlite::memory:").await.unwrap();
    TokenService::builder(
        Policy::new("https://auth.example", "api").fingerprint_cookie(fingerprint),
        access,
    )
    .opaque(OpaqueTokens::builder(store).build().unwrap())
    .build()
}

fn paseto() -> AccessKey {
    PublicIssuer::new(SecretKey::<V4>::generate().unwrap()).into()
}

fn jwt() -> AccessKey {
    AccessKey::jwt(SigningKeySet::new(
        SigningKey::generate(Algorithm::Es256).unwrap(),
    ))
    .unwrap()
}

async fn bound_tokens_need_their_cookie(access: AccessKey) {
    let svc = service(access, true).await;
    let role = json!({"role": "user"});
    let login = svc.login("usr_1", &role).await.unwrap();
    let token = login.access.expose_secret();
    let cookie = login
        .fingerprint
        .as_ref()
        .expect("a fingerprint")
        .expose_secret();
    assert_eq!(cookie.len(), 64);
    // With its cookie: accepted, and the claim is the cookie's SHA-256.
    let v = svc
        .verify_access_with_fingerprint::<Value>(token, Some(cookie))
        .await
        .unwrap();
    let fgp = v.claims().custom.fgp.clone().unwrap();
    assert_eq!(fgp, token_policy::fingerprint_hash(cookie));
    assert_ne!(fgp, cookie);
    // Without the cookie, with another one, as a plain bearer token: refused.
    for presented in [None, Some("0".repeat(64).as_str()), Some(fgp.as_str())] {
        let err = svc
            .verify_access_with_fingerprint::<Value>(token, presented)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::FingerprintMismatch), "{err:?}");
        assert_eq!(err.reason(), token_core::Reason::FingerprintMismatch);
    }
    let err = svc.verify_access::<Value>(token).await.unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch), "{err:?}");
    // A resource server holding the public keys only checks it the same way.
    let docs = svc.key_set_documents();
    let api = match (&docs.jwks, &docs.paseto) {
        (Some(jwks), _) => ResourceVerifier::from_jwks("https://auth.example", "api", jwks),
        (None, Some(set)) => {
            ResourceVerifier::from_paseto_key_set("https://auth.example", "api", set)
        }
        (None, None) => panic!("no key set"),
    }
    .unwrap();
    assert!(api.verify_access::<Value>(token).await.is_err());
    api.verify_access_with_fingerprint::<Value>(token, Some(cookie))
        .await
        .unwrap();
    // A refresh draws a new fingerprint; the old cookie does not fit the new token.
    let refreshed = svc
        .refresh(login.refresh.expose_secret(), |_| role.clone())
        .await
        .unwrap();
    let new_cookie = refreshed.fingerprint.as_ref().unwrap().expose_secret();
    assert_ne!(new_cookie, cookie);
    let new_token = refreshed.access.expose_secret();
    assert!(
        svc.verify_access_with_fingerprint::<Value>(new_token, Some(cookie))
            .await
            .is_err()
    );
    svc.verify_access_with_fingerprint::<Value>(new_token, Some(new_cookie))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_paseto_token_bound_to_a_fingerprint_needs_its_cookie() {
    bound_tokens_need_their_cookie(paseto()).await;
}

#[tokio::test]
async fn a_jwt_bound_to_a_fingerprint_needs_its_cookie() {
    bound_tokens_need_their_cookie(jwt()).await;
}

#[tokio::test]
async fn without_the_opt_in_tokens_carry_no_fingerprint() {
    let svc = service(paseto(), false).await;
    let login = svc.login("usr_1", &json!({})).await.unwrap();
    assert!(login.fingerprint.is_none());
    let v = svc
        .verify_access::<Value>(login.access.expose_secret())
        .await
        .unwrap();
    assert!(v.claims().custom.fgp.is_none());
    // A cookie sent anyway changes nothing.
    svc.verify_access_with_fingerprint::<Value>(login.access.expose_secret(), Some("x"))
        .await
        .unwrap();
}
