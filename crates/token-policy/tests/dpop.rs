//! DPoP-bound tokens (RFC 9449) through `TokenService`: a bound access token is
//! refused as a bearer token and with a proof by another key, a bound refresh family
//! rotates only with a proof by its key, a proof is used once (across instances
//! sharing Redis too), and a proof past the window is refused.
#![cfg(all(feature = "jwt", feature = "sqlite"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use josekit::jws::{ES256, JwsHeader};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use token_core::{Clock, ManualClock};
use token_jwt::dpop::{DpopError, access_token_hash};
use token_opaque::OpaqueTokens;
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::config::open_store;
use token_policy::{Blocklist, DpopRequestLine, Error, Policy, TokenService};

const TOKEN_URI: &str = "https://auth.example/login";
const ME: &str = "https://api.example/me";

struct Client {
    signer: josekit::jws::alg::ecdsa::EcdsaJwsSigner,
    jwk: josekit::jwk::Jwk,
    n: std::sync::atomic::AtomicU32,
}

impl Client {
    fn new() -> Self {
        let pair = ES256.generate_key_pair().unwrap();
        Self {
            signer: ES256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap(),
            jwk: pair.to_jwk_public_key(),
            n: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// A fresh proof for `method uri` at `now`, bound to `token` when given.
    fn proof(&self, method: &str, uri: &str, token: Option<&str>, now: i64) -> String {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut claims =
            json!({"jti": format!("p-{n}-{now}"), "htm": method, "htu": uri, "iat": now});
        if let Some(t) = token {
            claims["ath"] = json!(access_token_hash(t));
        }
        let mut h = JwsHeader::new();
        h.set_token_type("dpop+jwt");
        h.set_jwk(self.jwk.clone());
        josekit::jws::serialize_compact(&serde_json::to_vec(&claims).unwrap(), &h, &self.signer)
            .unwrap()
    }
}

fn line<'a>(method: &'a str, uri: &'a str) -> DpopRequestLine<'a> {
    DpopRequestLine {
        method,
        uri,
        nonce: None,
    }
}

async fn service(clock: Arc<ManualClock>, blocklist: Option<Arc<dyn Blocklist>>) -> TokenService {
    let store = open_store("sqlite::memory:").await.unwrap();
    let mut b = TokenService::builder(
        Policy::new("https://auth.example", "api"),
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
    )
    .opaque(
        OpaqueTokens::builder(store)
            .clock(clock.clone())
            .build()
            .unwrap(),
    )
    .clock(clock);
    if let Some(list) = blocklist {
        b = b.blocklist(list);
    }
    b.build()
}

fn role() -> Value {
    json!({"role": "user"})
}

/// `client`'s proof at the token endpoint, accepted, and the bound login it makes for
/// `usr_1`.
async fn bound_login(
    svc: &TokenService,
    client: &Client,
    now: i64,
) -> (token_jwt::dpop::VerifiedProof, token_policy::LoginTokens) {
    let proof = svc
        .accept_dpop_proof(
            &client.proof("POST", TOKEN_URI, None, now),
            &line("POST", TOKEN_URI),
        )
        .await
        .unwrap();
    let tokens = svc.login_dpop("usr_1", &role(), &proof).await.unwrap();
    (proof, tokens)
}

#[tokio::test]
async fn a_bound_access_token_needs_a_proof_by_its_key() {
    let clock = Arc::new(ManualClock::at_system_now());
    let now = clock.now().unix_seconds();
    let svc = service(clock.clone(), None).await;
    let alice = Client::new();
    let thief = Client::new();

    let (proof, tokens) = bound_login(&svc, &alice, now).await;
    let access = tokens.access.expose_secret();

    // With a proof by its key: accepted, and the claims say which key.
    let p = alice.proof("GET", ME, Some(access), now);
    let v = svc
        .verify_access_dpop::<Value>(access, &p, &line("GET", ME))
        .await
        .unwrap();
    assert_eq!(v.claims().custom.cnf.as_ref().unwrap().jkt, proof.jkt);
    // The same proof again: a replay.
    let err = svc
        .verify_access_dpop::<Value>(access, &p, &line("GET", ME))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Dpop(DpopError::Replayed)), "{err:?}");
    // Stolen: as a bearer token, or with the thief's own proof.
    let err = svc.verify_access::<Value>(access).await.unwrap_err();
    assert!(matches!(err, Error::SenderConstrained), "{err:?}");
    assert_eq!(
        err.reason().as_str(),
        "bound to a key: a DPoP proof is required"
    );
    let err = svc
        .verify_access_dpop::<Value>(
            access,
            &thief.proof("GET", ME, Some(access), now),
            &line("GET", ME),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SenderConstrained), "{err:?}");
    // A proof made for another token (ath), another route, or too long ago.
    let other = svc.login("usr_2", &role()).await.unwrap();
    let err = svc
        .verify_access_dpop::<Value>(
            access,
            &alice.proof("GET", ME, Some(other.access.expose_secret()), now),
            &line("GET", ME),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Dpop(DpopError::AccessTokenHash)),
        "{err:?}"
    );
    let late = alice.proof("GET", ME, Some(access), now);
    clock.advance(Duration::from_secs(61));
    let err = svc
        .verify_access_dpop::<Value>(access, &late, &line("GET", ME))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Dpop(DpopError::Stale)), "{err:?}");
    // An unbound token presented with a proof is refused too: the scheme promises a binding.
    let err = svc
        .verify_access_dpop::<Value>(
            other.access.expose_secret(),
            &alice.proof(
                "GET",
                ME,
                Some(other.access.expose_secret()),
                clock.now().unix_seconds(),
            ),
            &line("GET", ME),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SenderConstrained), "{err:?}");
    // A bearer token stays a bearer token.
    svc.verify_access::<Value>(other.access.expose_secret())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bound_refresh_token_rotates_only_with_its_key() {
    let clock = Arc::new(ManualClock::at_system_now());
    let now = clock.now().unix_seconds();
    let svc = service(clock.clone(), None).await;
    let alice = Client::new();
    let thief = Client::new();
    let (proof, tokens) = bound_login(&svc, &alice, now).await;
    let refresh = tokens.refresh.expose_secret();

    // Stolen refresh token: without a proof, with the thief's proof. The family
    // survives both attempts (nothing was rotated).
    let err = svc.refresh(refresh, |_| role()).await.unwrap_err();
    assert!(matches!(err, Error::SenderConstrained), "{err:?}");
    let thief_proof = svc
        .accept_dpop_proof(
            &thief.proof("POST", TOKEN_URI, None, now),
            &line("POST", TOKEN_URI),
        )
        .await
        .unwrap();
    let err = svc
        .refresh_dpop(refresh, &thief_proof, |_| async { role() })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SenderConstrained), "{err:?}");
    // Alice's own proof rotates it, and the new access token is bound too.
    let p = svc
        .accept_dpop_proof(
            &alice.proof("POST", TOKEN_URI, None, now),
            &line("POST", TOKEN_URI),
        )
        .await
        .unwrap();
    let next = svc
        .refresh_dpop(refresh, &p, |_| async { role() })
        .await
        .unwrap();
    let err = svc
        .verify_access::<Value>(next.access.expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::SenderConstrained));
    let family = svc
        .opaque()
        .unwrap()
        .refresh()
        .family_of(next.refresh.expose_secret())
        .await
        .unwrap();
    assert_eq!(family.jkt.as_deref(), Some(proof.jkt.as_str()));
}

#[tokio::test]
async fn a_proof_is_used_once_across_instances_sharing_redis() {
    use token_core::test_support::{REDIS_URL, service_url};
    let Some(url) = service_url(REDIS_URL, "DPoP replay across instances") else {
        return;
    };
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    let prefix = format!("dpop-{:016x}:", u64::from_le_bytes(b));
    let clock = Arc::new(ManualClock::at_system_now());
    let now = clock.now().unix_seconds();
    let mut instances = Vec::new();
    for _ in 0..2 {
        let list = token_policy::RedisBlocklist::connect(&url)
            .await
            .unwrap()
            .with_prefix(prefix.clone())
            .with_clock(clock.clone());
        instances.push(service(clock.clone(), Some(Arc::new(list))).await);
    }
    let alice = Client::new();
    let proof = alice.proof("POST", TOKEN_URI, None, now);
    instances[0]
        .accept_dpop_proof(&proof, &line("POST", TOKEN_URI))
        .await
        .unwrap();
    let err = instances[1]
        .accept_dpop_proof(&proof, &line("POST", TOKEN_URI))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Dpop(DpopError::Replayed)), "{err:?}");
}

/// Introspection (RFC 7662) sees a bound token with its key, for the caller to check
/// the proof against; the token stays refused as a bearer token, and revocation and
/// expiry end it for introspection too.
#[tokio::test]
async fn introspection_sees_a_bound_token_with_its_key() {
    let clock = Arc::new(ManualClock::at_system_now());
    let now = clock.now().unix_seconds();
    let svc = service(clock.clone(), None).await;
    let alice = Client::new();
    let (proof, tokens) = bound_login(&svc, &alice, now).await;
    let access = tokens.access.expose_secret();
    let seen = svc.introspect_access::<Value>(access).await.unwrap();
    assert_eq!(seen.claims().custom.cnf.as_ref().unwrap().jkt, proof.jkt);
    assert!(matches!(
        svc.verify_access::<Value>(access).await,
        Err(Error::SenderConstrained)
    ));
    // A bearer token introspects as itself.
    let bearer = svc.login("usr_2", &role()).await.unwrap();
    let seen = svc
        .introspect_access::<Value>(bearer.access.expose_secret())
        .await
        .unwrap();
    assert!(seen.claims().custom.cnf.is_none());
    // Revoked, then expired: refused.
    let claims = svc
        .introspect_access::<Value>(access)
        .await
        .unwrap()
        .into_claims();
    svc.revoke_access(claims.jti.as_deref().unwrap(), claims.exp.unwrap())
        .await
        .unwrap();
    assert!(matches!(
        svc.introspect_access::<Value>(access).await,
        Err(Error::Revoked)
    ));
    clock.advance(Duration::from_secs(16 * 60 + 60));
    let err = svc
        .introspect_access::<Value>(bearer.access.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.reason().as_str(), "expired", "{err:?}");
}
