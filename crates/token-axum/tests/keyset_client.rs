//! `KeySetClient` against key sets served on loopback ports: caching, refetch on an
//! unknown key at most once per interval (counted), single flight, `Cache-Control`,
//! failures, the maximum staleness of a cached set, and no fetch of any URL named in
//! a token.
#![cfg(all(feature = "client", feature = "jwt"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use token_axum::{Error, KeySetClient, KeySetFormat};
use token_core::{Claims, SystemClock, Validation};
use token_jwt::{Algorithm, SigningKey, SigningKeySet};
use token_paseto::{PublicIssuer, PublicKeySet, SecretKey, V4};

use common::TestServer;

/// Serves one document at `/keys` and counts every request.
struct KeyServer {
    body: Mutex<String>,
    cache_control: Mutex<Option<String>>,
    status: AtomicU16,
    redirect: Mutex<Option<String>>,
    /// Stops answering: each request hangs (longer than any client timeout here).
    silent: AtomicBool,
    hits: AtomicUsize,
}

impl KeyServer {
    fn new(body: String) -> Arc<Self> {
        Arc::new(Self {
            body: Mutex::new(body),
            cache_control: Mutex::new(None),
            status: AtomicU16::new(200),
            redirect: Mutex::new(None),
            silent: AtomicBool::new(false),
            hits: AtomicUsize::new(0),
        })
    }

    fn set(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    async fn start(self: &Arc<Self>) -> TestServer {
        async fn keys(State(s): State<Arc<KeyServer>>) -> Response {
            s.hits.fetch_add(1, Ordering::SeqCst);
            // A little latency, so concurrent callers overlap with a fetch.
            tokio::time::sleep(Duration::from_millis(20)).await;
            if s.silent.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            if let Some(location) = s.redirect.lock().unwrap().clone() {
                return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
            }
            let status = StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap();
            let mut response = (status, s.body.lock().unwrap().clone()).into_response();
            if let Some(cc) = s.cache_control.lock().unwrap().clone() {
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, cc.parse().unwrap());
            }
            response
        }
        TestServer::start(
            Router::new()
                .route("/keys", get(keys))
                .with_state(self.clone()),
        )
        .await
    }
}

/// Counts every request to any path: what must never be fetched.
async fn trap() -> (TestServer, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let router = Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            r#"{"keys":[]}"#
        }
    });
    (TestServer::start(router).await, hits)
}

fn claims() -> Claims<serde_json::Value> {
    Claims::new(serde_json::json!({ "role": "reader" }))
        .issuer("https://auth.example")
        .subject("alice")
        .audience("api")
        .random_token_id()
        .unwrap()
        .valid_for(&SystemClock, Duration::from_secs(600))
        .unwrap()
}

fn validation() -> Validation {
    Validation::new()
        .issuer("https://auth.example")
        .audience("api")
}

fn client(url: &str, format: KeySetFormat, interval: Duration) -> KeySetClient {
    KeySetClient::builder(url, format)
        .unwrap()
        .min_refresh_interval(interval)
        .use_system_proxy(false)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn es256() -> SigningKey {
    SigningKey::generate(Algorithm::Es256).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_the_set_and_refetches_after_a_rotation() {
    let mut keys = SigningKeySet::new(es256());
    let server = KeyServer::new(keys.jwks().to_json());
    let http = server.start().await;
    let c = client(
        &http.url("/keys"),
        KeySetFormat::Jwks,
        Duration::from_millis(200),
    );
    assert_eq!(
        c.fetch_count(),
        0,
        "nothing is fetched before the first token"
    );

    let old = keys.sign(&claims()).unwrap();
    for _ in 0..20 {
        let v = c
            .verify::<serde_json::Value>(old.expose_secret(), &validation())
            .await
            .unwrap();
        assert_eq!(v.claims().sub.as_deref(), Some("alice"));
    }
    assert_eq!(
        (c.fetch_count(), server.hits()),
        (1, 1),
        "one fetch serves every token"
    );

    // The issuer rotates; the published set holds the new key and the retired one.
    keys.rotate_to(es256()).unwrap();
    server.set(keys.jwks().to_json());
    let new = keys.sign(&claims()).unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    c.verify::<serde_json::Value>(new.expose_secret(), &validation())
        .await
        .unwrap();
    assert_eq!(c.fetch_count(), 2, "an unknown kid refetched once");
    c.verify::<serde_json::Value>(old.expose_secret(), &validation())
        .await
        .unwrap();
    c.verify::<serde_json::Value>(new.expose_secret(), &validation())
        .await
        .unwrap();
    assert_eq!((c.fetch_count(), server.hits()), (2, 2));

    // Claims are still validated.
    let err = c
        .verify::<serde_json::Value>(new.expose_secret(), &validation().audience("billing"))
        .await
        .unwrap_err();
    assert_eq!(err, Error::InvalidToken(token_core::Reason::WrongAudience));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let keys = SigningKeySet::new(es256());
    let server = KeyServer::new(keys.jwks().to_json());
    let http = server.start().await;
    // Long enough that no assertion below depends on how fast this machine is.
    let interval = Duration::from_secs(2);
    let c = client(&http.url("/keys"), KeySetFormat::Jwks, interval);
    let good = keys.sign(&claims()).unwrap();
    // Tokens naming keys nobody published, as an attacker would send them.
    let forged: Vec<String> = (0..48)
        .map(|_| {
            SigningKeySet::new(es256())
                .sign(&claims())
                .unwrap()
                .expose_secret()
                .to_owned()
        })
        .collect();

    // A cold start under a crowd: one fetch, shared.
    let crowd: Vec<_> = (0..32)
        .map(|_| {
            let c = c.clone();
            let t = good.expose_secret().to_owned();
            tokio::spawn(async move { c.verify::<serde_json::Value>(&t, &validation()).await })
        })
        .collect();
    for task in crowd {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        (c.fetch_count(), server.hits()),
        (1, 1),
        "single flight on a cold cache"
    );

    let storm = |c: &KeySetClient| {
        let tasks: Vec<_> = forged
            .iter()
            .map(|t| {
                let c = c.clone();
                let t = t.clone();
                tokio::spawn(async move { c.verify::<serde_json::Value>(&t, &validation()).await })
            })
            .collect();
        async move {
            for task in tasks {
                assert_eq!(
                    task.await.unwrap().unwrap_err(),
                    Error::InvalidToken(token_core::Reason::UnknownKey)
                );
            }
        }
    };
    // Within the interval of the last fetch: no fetch at all.
    storm(&c).await;
    assert_eq!((c.fetch_count(), server.hits()), (1, 1));
    // After it: one fetch for the whole storm, then none again.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    storm(&c).await;
    assert_eq!((c.fetch_count(), server.hits()), (2, 2));
    storm(&c).await;
    assert_eq!((c.fetch_count(), server.hits()), (2, 2));
    // Known keys never wait for the interval.
    c.verify::<serde_json::Value>(good.expose_secret(), &validation())
        .await
        .unwrap();
    assert_eq!(c.fetch_count(), 2);
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_url_named_in_a_token_is_ever_fetched() {
    let (trap, trap_hits) = trap().await;
    let t = |path: &str| trap.url(path);
    let keys = SigningKeySet::new(es256());
    let server = KeyServer::new(keys.jwks().to_json());
    let http = server.start().await;
    let c = client(&http.url("/keys"), KeySetFormat::Jwks, Duration::ZERO);
    c.verify::<serde_json::Value>(keys.sign(&claims()).unwrap().expose_secret(), &validation())
        .await
        .unwrap();

    let payload = b64(serde_json::to_string(&serde_json::json!({ "sub": "mallory", "iss": "https://auth.example", "aud": "api", "exp": 4_000_000_000u64 })).unwrap().as_bytes());
    let signature = b64(&[7u8; 64]);
    let headers = [
        serde_json::json!({ "alg": "ES256", "kid": t("/kid"), "jku": t("/jku") }),
        serde_json::json!({ "alg": "ES256", "x5u": t("/x5u") }),
        serde_json::json!({ "alg": "ES256", "kid": "x", "jku": t("/jku"), "x5u": t("/x5u") }),
        serde_json::json!({ "alg": "ES256", "jwk": { "kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32]) }, "kid": t("/jwk") }),
    ];
    for h in headers {
        let token = format!("{}.{payload}.{signature}", b64(h.to_string().as_bytes()));
        let err = c
            .verify::<serde_json::Value>(&token, &validation())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidToken(_)), "{err:?}");
    }
    // A PASETO whose footer names a URL as its kid.
    let p = client(&http.url("/keys"), KeySetFormat::Paseto, Duration::ZERO);
    let footer = b64(serde_json::json!({ "kid": t("/paseto") })
        .to_string()
        .as_bytes());
    let token = format!("v4.public.{}.{footer}", b64(&[9u8; 100]));
    assert!(
        p.verify::<serde_json::Value>(&token, &validation())
            .await
            .is_err()
    );

    assert_eq!(
        trap_hits.load(Ordering::SeqCst),
        0,
        "a URL from a token was fetched"
    );
    assert!(server.hits() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paseto_sets_follow_cache_control() {
    let mut issuer = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let set = |i: &PublicIssuer<V4>| PublicKeySet::from(&i.verifier()).to_json();
    let server = KeyServer::new(set(&issuer));
    *server.cache_control.lock().unwrap() = Some("public, max-age=2".into());
    let http = server.start().await;
    let interval = Duration::from_secs(1);
    let c = client(&http.url("/keys"), KeySetFormat::Paseto, interval);

    let token = issuer.sign(&claims()).unwrap();
    c.verify::<serde_json::Value>(token.expose_secret(), &validation())
        .await
        .unwrap();
    c.verify::<serde_json::Value>(token.expose_secret(), &validation())
        .await
        .unwrap();
    assert_eq!(c.fetch_count(), 1);
    // Past max-age, the next token refetches (routinely, without an unknown key).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    c.verify::<serde_json::Value>(token.expose_secret(), &validation())
        .await
        .unwrap();
    assert_eq!(c.fetch_count(), 2);

    // Rotation right after a fetch: refused until the interval allows a refetch.
    issuer
        .rotate_to(SecretKey::<V4>::generate().unwrap())
        .unwrap();
    server.set(set(&issuer));
    let rotated = issuer.sign(&claims()).unwrap();
    assert_eq!(
        c.verify::<serde_json::Value>(rotated.expose_secret(), &validation())
            .await
            .unwrap_err(),
        Error::InvalidToken(token_core::Reason::UnknownKey)
    );
    assert_eq!(c.fetch_count(), 2);
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    c.verify::<serde_json::Value>(rotated.expose_secret(), &validation())
        .await
        .unwrap();
    assert_eq!(c.fetch_count(), 3);
    c.verify::<serde_json::Value>(token.expose_secret(), &validation())
        .await
        .unwrap();

    // A JWT or a local token is not for a PASERK set, and costs no fetch.
    let jwt = SigningKeySet::new(es256()).sign(&claims()).unwrap();
    assert_eq!(
        c.verify::<serde_json::Value>(jwt.expose_secret(), &validation())
            .await
            .unwrap_err(),
        Error::InvalidToken(token_core::Reason::WrongTokenType)
    );
    assert_eq!(c.fetch_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fetches_are_typed_and_bounded() {
    let keys = SigningKeySet::new(es256());
    let token = keys.sign(&claims()).unwrap();
    let server = KeyServer::new(keys.jwks().to_json());
    let http = server.start().await;
    let (trap, trap_hits) = trap().await;
    let c = client(&http.url("/keys"), KeySetFormat::Jwks, Duration::ZERO);
    let v = validation();
    let verify = || c.verify::<serde_json::Value>(token.expose_secret(), &v);

    server.status.store(500, Ordering::SeqCst);
    let err = verify().await.unwrap_err();
    assert_eq!(err, Error::KeySet("HTTP status 500".into()));
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    server.status.store(200, Ordering::SeqCst);

    // Redirects are not followed: the trap stays untouched.
    *server.redirect.lock().unwrap() = Some(trap.url("/elsewhere"));
    assert_eq!(
        verify().await.unwrap_err(),
        Error::KeySet("HTTP status 302".into())
    );
    *server.redirect.lock().unwrap() = None;
    assert_eq!(trap_hits.load(Ordering::SeqCst), 0);

    for bad in [
        "not json".to_owned(),
        r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}]}"#.to_owned(),
        format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(300 * 1024)),
    ] {
        server.set(bad);
        assert!(matches!(verify().await.unwrap_err(), Error::KeySet(_)));
    }
    // Unreachable.
    let gone = client(
        "http://127.0.0.1:9/keys",
        KeySetFormat::Jwks,
        Duration::ZERO,
    );
    assert_eq!(
        gone.verify::<serde_json::Value>(token.expose_secret(), &validation())
            .await
            .unwrap_err(),
        Error::KeySet("cannot connect".into())
    );

    // Recovery; then a broken server does not take the cached set away.
    server.set(keys.jwks().to_json());
    verify().await.unwrap();
    *server.cache_control.lock().unwrap() = Some("no-store".into());
    server.set(keys.jwks().to_json());
    let stale = client(
        &http.url("/keys"),
        KeySetFormat::Jwks,
        Duration::from_millis(50),
    );
    stale
        .verify::<serde_json::Value>(token.expose_secret(), &validation())
        .await
        .unwrap();
    server.status.store(503, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(80)).await;
    let before = stale.fetch_count();
    stale
        .verify::<serde_json::Value>(token.expose_secret(), &validation())
        .await
        .unwrap();
    assert_eq!(
        stale.fetch_count(),
        before + 1,
        "a routine refetch was tried and failed"
    );
}

/// The key-set server stops answering: the cached set is used for at most the
/// maximum staleness past its `max-age`, then verification fails closed (`503` with
/// `Retry-After`) until a fetch succeeds again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_key_set_fails_closed_after_the_maximum_staleness() {
    let keys = SigningKeySet::new(es256());
    let token = keys.sign(&claims()).unwrap();
    let server = KeyServer::new(keys.jwks().to_json());
    // Stale as soon as the refresh interval allows a refetch.
    *server.cache_control.lock().unwrap() = Some("max-age=0".into());
    let http = server.start().await;
    let interval = Duration::from_millis(500);
    let max_staleness = Duration::from_secs(1);
    let c = KeySetClient::builder(&http.url("/keys"), KeySetFormat::Jwks)
        .unwrap()
        .min_refresh_interval(interval)
        .max_staleness(max_staleness)
        .timeout(Duration::from_millis(200))
        .use_system_proxy(false)
        .build()
        .unwrap();
    let v = validation();
    let verify = || c.verify::<serde_json::Value>(token.expose_secret(), &v);

    verify().await.unwrap();
    // The set is stale from `fetched + interval` at the latest.
    let fetched = Instant::now();
    assert_eq!(c.fetch_count(), 1);
    server.silent.store(true, Ordering::SeqCst);

    // Stale, within the maximum staleness: a refetch is tried and times out; the
    // cached set still verifies.
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    verify().await.unwrap();
    assert_eq!(c.fetch_count(), 2);

    // Past max-age + maximum staleness: one more fetch is tried, and verification
    // fails closed with a 503 and Retry-After.
    let too_stale = fetched + interval + max_staleness + Duration::from_millis(100);
    tokio::time::sleep(too_stale.saturating_duration_since(Instant::now())).await;
    let err = verify().await.unwrap_err();
    assert_eq!(c.fetch_count(), 3);
    let Error::StaleKeySet { retry_after } = err else {
        panic!("expected StaleKeySet, got {err:?}");
    };
    assert!(retry_after <= interval, "{retry_after:?}");
    let response = err.into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let seconds: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds >= 1);
    // Within the refresh interval: refused at once, without a fetch — and every
    // token, whatever key it names.
    let other = SigningKeySet::new(es256()).sign(&claims()).unwrap();
    for t in [token.expose_secret(), other.expose_secret()] {
        assert!(matches!(
            c.verify::<serde_json::Value>(t, &v).await.unwrap_err(),
            Error::StaleKeySet { .. }
        ));
    }
    assert_eq!(c.fetch_count(), 3);

    // The server answers again: the next fetch succeeds and verification resumes.
    server.silent.store(false, Ordering::SeqCst);
    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    verify().await.unwrap();
    assert_eq!(c.fetch_count(), 4);
}

#[tokio::test]
async fn the_verifier_side_agrees_with_the_signer() {
    // Sanity: what the client builds from a published PASERK set verifies the issuer's
    // tokens, and a set that publishes nothing verifies nothing.
    let issuer = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let token = issuer.sign(&claims()).unwrap();
    let set = PublicKeySet::from(&issuer.verifier());
    let back = PublicKeySet::from_json(&set.to_json()).unwrap();
    token_core::TokenVerifier::verify::<serde_json::Value>(
        &back.verifier_v4().unwrap(),
        token.expose_secret(),
        &validation(),
    )
    .unwrap();
    let server = KeyServer::new(PublicKeySet::new().to_json());
    let http = server.start().await;
    let c = client(
        &http.url("/keys"),
        KeySetFormat::Paseto,
        Duration::from_secs(60),
    );
    assert_eq!(
        c.verify::<serde_json::Value>(token.expose_secret(), &validation())
            .await
            .unwrap_err(),
        Error::InvalidToken(token_core::Reason::UnknownKey)
    );
    assert_eq!(c.fetch_count(), 1);
}

/// The issuing side's real `/.well-known/jwks.json` (JWT access tokens, current and
/// retired keys) read by the verifying side's client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_published_jwks_verifies_the_services_access_tokens() {
    use std::sync::Arc;
    use token_opaque::OpaqueTokens;
    use token_paseto::{LocalCipher, LocalKey};
    use token_policy::{AccessKey, Policy, TokenService};

    let first = es256();
    let mut keys = SigningKeySet::new(first);
    keys.rotate_to(es256()).unwrap();
    let store = token_policy::config::open_store("sqlite::memory:")
        .await
        .unwrap();
    let service = Arc::new(
        TokenService::builder(
            Policy::new("https://auth.example", "api"),
            AccessKey::jwt(keys).unwrap(),
        )
        .payment(LocalCipher::new(LocalKey::<V4>::generate().unwrap()))
        .opaque(OpaqueTokens::new(store))
        .build(),
    );
    let state = token_axum::AuthState::new(service.clone());
    let http = TestServer::start(token_axum::well_known::routes().with_state(state)).await;
    let c = client(
        &http.url("/.well-known/jwks.json"),
        KeySetFormat::Jwks,
        Duration::from_secs(60),
    );
    let login = service
        .login("alice", &serde_json::json!({ "role": "reader" }))
        .await
        .unwrap();
    // Access JWTs are typed `at+jwt` (RFC 9068): the verifier asks for that type.
    let access = validation().token_type("at+jwt");
    let v = c
        .verify::<serde_json::Value>(login.access.expose_secret(), &access)
        .await
        .unwrap();
    assert_eq!(v.claims().sub.as_deref(), Some("alice"));
    assert_eq!(v.claims().custom["role"], "reader");
    assert!(
        c.verify::<serde_json::Value>(login.access.expose_secret(), &validation())
            .await
            .is_err()
    );
    assert_eq!(c.fetch_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reads_the_kind_from_the_document() {
    let jwt = SigningKeySet::new(es256());
    let paseto = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let paseto_set = PublicKeySet::from(&paseto.verifier()).to_json();
    for (document, expected) in [
        (jwt.jwks().to_json(), KeySetFormat::Jwks),
        (paseto_set, KeySetFormat::Paseto),
    ] {
        assert_eq!(KeySetFormat::of_document(&document), Some(expected));
        let server = KeyServer::new(document);
        let http = server.start().await;
        let c = KeySetClient::builder(&http.url("/keys"), KeySetFormat::Jwks)
            .unwrap()
            .use_system_proxy(false)
            .discover()
            .await
            .unwrap();
        assert_eq!(c.format(), expected);
        // One probe, one fetch that fills the cache.
        assert_eq!(server.hits(), 2);
    }
    // A set with no key, or another document, says nothing about its kind.
    for document in [r#"{"keys":[]}"#, r#"{"keys":[{"x":1}]}"#, "[]", "not json"] {
        assert_eq!(KeySetFormat::of_document(document), None, "{document}");
        let server = KeyServer::new(document.to_owned());
        let http = server.start().await;
        let err = KeySetClient::builder(&http.url("/keys"), KeySetFormat::Jwks)
            .unwrap()
            .use_system_proxy(false)
            .discover()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::KeySet(_)), "{err:?}");
    }
}
