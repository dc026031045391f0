//! The verify side: a resource server holding public keys only (given as a PASERK, a
//! PASETO key set or a JWKS, or found by a key source) accepts exactly what the issuer's
//! own `verify_access` accepts, revocation included when it shares the blocklist.
#![cfg(feature = "sqlite")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use token_core::{ManualClock, Validation, Verified};
#[cfg(feature = "jwt")]
use token_jwt::{Algorithm, SigningKey, SigningKeySet};
use token_opaque::{Environment, NewApiKey, OpaqueTokens};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, PublicKeySet, SecretKey, V4};
use token_policy::config::open_store;
use token_policy::{
    AccessClaims, AccessKey, AccessKeySource, AccessVerifier, Blocklist, Error, JsonObject,
    MemoryBlocklist, Policy, ResourceVerifier, TokenService,
};

const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "api";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    role: String,
}

fn session() -> Session {
    Session {
        role: "reader".into(),
    }
}

struct Issuer {
    svc: TokenService,
    blocklist: Arc<dyn Blocklist>,
    clock: Arc<ManualClock>,
}

async fn issuer(access: AccessKey) -> Issuer {
    let clock = Arc::new(ManualClock::at_system_now());
    let blocklist: Arc<dyn Blocklist> =
        Arc::new(MemoryBlocklist::with_capacity(1000, clock.clone()));
    let opaque = OpaqueTokens::builder(open_store("sqlite::memory:").await.unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    let svc = TokenService::builder(Policy::new(ISSUER, AUDIENCE), access)
        .payment(LocalCipher::new(LocalKey::<V4>::generate().unwrap()))
        .opaque(opaque)
        .blocklist(blocklist.clone())
        .clock(clock.clone())
        .build();
    Issuer {
        svc,
        blocklist,
        clock,
    }
}

fn paseto_key() -> AccessKey {
    PublicIssuer::new(SecretKey::<V4>::generate().unwrap()).into()
}

/// The issuer's published PASETO key set (what `/.well-known/paseto-keys.json` serves).
fn published_paseto(svc: &TokenService) -> String {
    match &*svc.access_verifier() {
        AccessVerifier::PasetoV4(v) => PublicKeySet::from(v).to_json(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn public_keys_alone_verify_what_the_issuer_issues() {
    let i = issuer(paseto_key()).await;
    let set = published_paseto(&i.svc);
    let from_set = ResourceVerifier::from_paseto_key_set(ISSUER, AUDIENCE, &set)
        .unwrap()
        .clock(i.clock.clone());
    let paserk = PublicKeySet::from_json(&set).unwrap().v4()[0].to_paserk();
    let from_paserk = ResourceVerifier::from_public_paserk(ISSUER, AUDIENCE, &paserk)
        .unwrap()
        .clock(i.clock.clone());

    let login = i.svc.login("alice", &session()).await.unwrap();
    for api in [&from_set, &from_paserk] {
        let v = api
            .verify_access::<Session>(login.access.expose_secret())
            .await
            .unwrap();
        assert_eq!(v.claims().sub.as_deref(), Some("alice"));
        assert_eq!(v.claims().custom.session, session());
        assert_eq!(v.claims().custom.sid, login.session_id);
    }

    // What the issuer refuses, the resource server refuses, for the same reasons.
    let payment = i.svc.issue_payment(session(), "alice").unwrap();
    let key = i
        .svc
        .issue_api_key(NewApiKey::new("alice", "ci", Environment::Test))
        .await
        .unwrap();
    for wrong in [
        payment.expose_secret(),
        key.key.expose_secret(),
        login.refresh.expose_secret(),
    ] {
        let err = from_set.verify_access::<Session>(wrong).await.unwrap_err();
        assert!(matches!(err, Error::WrongTokenType { .. }), "{err:?}");
    }
    let other_audience = ResourceVerifier::from_paseto_key_set(ISSUER, "billing", &set).unwrap();
    let err = other_audience
        .verify_access::<Session>(login.access.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "wrong audience");
    let other_issuer =
        ResourceVerifier::from_paseto_key_set("https://evil", AUDIENCE, &set).unwrap();
    let err = other_issuer
        .verify_access::<Session>(login.access.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "wrong issuer");
    let stranger = issuer(paseto_key()).await;
    let forged = stranger.svc.login("alice", &session()).await.unwrap();
    let err = from_set
        .verify_access::<Session>(forged.access.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "unknown key", "{err:?}");
    i.clock.advance(Duration::from_secs(15 * 60 + 61));
    let err = from_set
        .verify_access::<Session>(login.access.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "expired");

    // Not a public key.
    let local = LocalKey::<V4>::generate().unwrap();
    let err =
        ResourceVerifier::from_public_paserk(ISSUER, AUDIENCE, local.to_paserk().expose_secret())
            .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn a_jwt_issuer_is_verified_from_its_jwks() {
    let jwt = AccessKey::jwt(SigningKeySet::new(
        SigningKey::generate(Algorithm::Es256).unwrap(),
    ))
    .unwrap();
    let i = issuer(jwt).await;
    let jwks = match &*i.svc.access_verifier() {
        AccessVerifier::Jwt(v) => v.to_jwks().to_json(),
        other => panic!("{other:?}"),
    };
    let api = ResourceVerifier::from_jwks(ISSUER, AUDIENCE, &jwks)
        .unwrap()
        .clock(i.clock.clone());
    let login = i.svc.login("bob", &session()).await.unwrap();
    let v = api
        .verify_access::<Session>(login.access.expose_secret())
        .await
        .unwrap();
    assert_eq!(v.claims().sub.as_deref(), Some("bob"));
}

#[tokio::test]
async fn sharing_the_blocklist_shares_revocation() {
    let i = issuer(paseto_key()).await;
    let set = published_paseto(&i.svc);
    let with_revocation = ResourceVerifier::from_paseto_key_set(ISSUER, AUDIENCE, &set)
        .unwrap()
        .blocklist(i.blocklist.clone())
        .clock(i.clock.clone());
    let without = ResourceVerifier::from_paseto_key_set(ISSUER, AUDIENCE, &set)
        .unwrap()
        .clock(i.clock.clone());
    let a = i.svc.login("carol", &session()).await.unwrap();
    let b = i.svc.login("carol", &session()).await.unwrap();
    i.svc
        .logout(a.access.expose_secret(), a.refresh.expose_secret())
        .await
        .unwrap();
    let err = with_revocation
        .verify_access::<Session>(a.access.expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err:?}");
    with_revocation
        .verify_access::<Session>(b.access.expose_secret())
        .await
        .unwrap();
    // Without the list, a revoked token is accepted until it expires: the documented
    // trade-off of a resource server that does not share revocation.
    without
        .verify_access::<Session>(a.access.expose_secret())
        .await
        .unwrap();
    i.svc.logout_everywhere("carol").await.unwrap();
    let err = with_revocation
        .verify_access::<Session>(b.access.expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Revoked), "{err:?}");
}

/// Custom claims the issuer's tokens do not have.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Strict {
    tenant: u64,
}

/// A key source that counts its calls and can be out of keys.
#[derive(Debug)]
struct Counting {
    keys: Option<AccessVerifier>,
    calls: AtomicUsize,
}

#[async_trait]
impl AccessKeySource for Counting {
    async fn verify(
        &self,
        token: &str,
        validation: &Validation,
    ) -> token_policy::Result<Verified<AccessClaims<JsonObject>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match &self.keys {
            Some(keys) => keys.verify(token, validation).await,
            None => Err(Error::KeySetUnavailable {
                detail: "the issuer's key set could not be fetched".into(),
                retry_after: Some(Duration::from_secs(5)),
            }),
        }
    }
}

#[tokio::test]
async fn a_key_source_finds_the_keys_and_its_outage_is_typed() {
    let i = issuer(paseto_key()).await;
    let set = published_paseto(&i.svc);
    let keys = AccessVerifier::PasetoV4(
        PublicKeySet::from_json(&set)
            .unwrap()
            .verifier_v4()
            .unwrap(),
    );
    let source = Arc::new(Counting {
        keys: Some(keys),
        calls: AtomicUsize::new(0),
    });
    let api = ResourceVerifier::with_source(ISSUER, AUDIENCE, source.clone())
        .clock(i.clock.clone())
        .blocklist(i.blocklist.clone());
    let login = i.svc.login("dave", &session()).await.unwrap();
    let v = api
        .verify_access::<Session>(login.access.expose_secret())
        .await
        .unwrap();
    assert_eq!(v.claims().custom.session, session());
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    // Custom claims of another shape are a typed claims error, not a panic.
    let err = api
        .verify_access::<Strict>(login.access.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "invalid claims", "{err:?}");

    let empty = ResourceVerifier::with_source(
        ISSUER,
        AUDIENCE,
        Arc::new(Counting {
            keys: None,
            calls: AtomicUsize::new(0),
        }),
    );
    let err = empty
        .verify_access::<Session>(login.access.expose_secret())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeySetUnavailable {
                retry_after: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.reason(), "key set unavailable");
}
