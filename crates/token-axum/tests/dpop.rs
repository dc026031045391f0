//! DPoP (RFC 9449) over HTTP, through the reference service: `POST /login` and
//! `POST /refresh` with a proof issue bound tokens (`"token_type": "DPoP"`), the
//! protected routes take `Authorization: DPoP` with a proof by the bound key, and every
//! refusal answers as RFC 9449 section 7.1 says — one test per check of section 4.3,
//! server nonces (`use_dpop_nonce` with `DPoP-Nonce`), a stolen bound access or
//! refresh token without the key, a replay across two instances sharing Redis.
//!
//! The service is configured with the public origin `https://auth.example` (as behind
//! a reverse proxy): proofs name it, whatever address the test reaches it at.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

#[allow(dead_code, unused_imports)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use josekit::jws::{ES256, HS256, JwsHeader};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use token_core::test_support::{REDIS_URL, service_url};
use token_core::{Clock, SecretBytes, SystemClock, Timestamp};
use token_jwt::dpop::access_token_hash;

use auth_server::{App, Options};
use common::{TestServer, http, set_cookie, unique};

const PW: &str = "correct horse battery";
const ORIGIN: &str = "https://auth.example";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn now() -> i64 {
    SystemClock.now().unix_seconds()
}

/// A client's key pair, and the proofs it makes (with josekit: not this project's
/// code).
struct Key {
    signer: josekit::jws::alg::ecdsa::EcdsaJwsSigner,
    public: josekit::jwk::Jwk,
    private: josekit::jwk::Jwk,
}

impl Key {
    fn new() -> Self {
        let pair = ES256.generate_key_pair().unwrap();
        Self {
            signer: ES256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap(),
            public: pair.to_jwk_public_key(),
            private: pair.to_jwk_private_key(),
        }
    }

    /// A proof for `htm` on `path` at the public origin.
    fn proof(&self, htm: &str, path: &str, token: Option<&str>, nonce: Option<&str>) -> String {
        let mut c = claims(htm, &format!("{ORIGIN}{path}"), token);
        if let Some(n) = nonce {
            c["nonce"] = json!(n);
        }
        self.sign(&c, |_| {})
    }

    /// `claims` signed, with the header `edit` changes.
    fn sign(&self, claims: &Value, edit: impl FnOnce(&mut JwsHeader)) -> String {
        let mut h = JwsHeader::new();
        h.set_token_type("dpop+jwt");
        h.set_jwk(self.public.clone());
        edit(&mut h);
        josekit::jws::serialize_compact(&serde_json::to_vec(claims).unwrap(), &h, &self.signer)
            .unwrap()
    }
}

/// Fresh proof claims: a unique `jti`, `iat` now, `ath` for `token`.
fn claims(htm: &str, htu: &str, token: Option<&str>) -> Value {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut c = json!({"jti": format!("{}-{n}", unique()), "htm": htm, "htu": htu, "iat": now()});
    if let Some(t) = token {
        c["ath"] = json!(access_token_hash(t));
    }
    c
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct Svc {
    server: TestServer,
    app: Arc<App>,
    http: reqwest::Client,
}

async fn start(edit: impl FnOnce(&mut Options)) -> Svc {
    let mut options = Options {
        users: auth_server::parse_users(&format!("alice:{PW}")).unwrap(),
        public_origin: Some(ORIGIN.to_owned()),
        ..Options::default()
    };
    edit(&mut options);
    let (router, app) = auth_server::build(options).await.unwrap();
    Svc {
        server: TestServer::start(router).await,
        app,
        http: http(),
    }
}

impl Svc {
    async fn login(&self, proof: Option<&str>) -> reqwest::Response {
        let mut r = self
            .http
            .post(self.server.url("/login"))
            .json(&json!({"username": "alice", "password": PW}));
        if let Some(p) = proof {
            r = r.header("DPoP", p);
        }
        r.send().await.unwrap()
    }

    /// A bound login with `key`: the access token and the refresh cookie.
    async fn bound_login(&self, key: &Key) -> (String, String) {
        let r = self
            .login(Some(&key.proof("POST", "/login", None, None)))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        tokens(r).await
    }

    async fn me(&self, authorization: &str, proof: Option<&str>) -> reqwest::Response {
        let mut r = self
            .http
            .get(self.server.url("/me"))
            .header(AUTHORIZATION, authorization);
        if let Some(p) = proof {
            r = r.header("DPoP", p);
        }
        r.send().await.unwrap()
    }

    async fn refresh(&self, cookie: &str, proof: Option<&str>) -> reqwest::Response {
        let mut r = self
            .http
            .post(self.server.url("/refresh"))
            .header(COOKIE, cookie);
        if let Some(p) = proof {
            r = r.header("DPoP", p);
        }
        r.send().await.unwrap()
    }
}

/// The access token of a token response, and its refresh cookie as a `Cookie` value.
async fn tokens(r: reqwest::Response) -> (String, String) {
    let (name, value) = {
        let (value, _) = set_cookie(&r, "__Host-refresh").expect("a refresh cookie");
        ("__Host-refresh", value.to_owned())
    };
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        format!("{name}={value}"),
    )
}

/// `401` with a `DPoP` challenge: `error`, the description, `algs`.
async fn assert_dpop_refusal(r: reqwest::Response, error: &str, description: &str) {
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{description}");
    let challenge = r
        .headers()
        .get(WWW_AUTHENTICATE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    assert!(
        challenge.contains("algs=\"ES256 EdDSA Ed25519\""),
        "{challenge}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], error);
    assert_eq!(body["error_description"], description, "{challenge}");
}

/// A bound login, then `/me` with a proof made by `make` from the token: refused
/// with `description`.
async fn refused_on_me(description: &str, make: impl FnOnce(&Key, &str) -> String) {
    let svc = start(|_| {}).await;
    let key = Key::new();
    let (access, _) = svc.bound_login(&key).await;
    let proof = make(&key, &access);
    let r = svc.me(&format!("DPoP {access}"), Some(&proof)).await;
    assert_dpop_refusal(r, "invalid_dpop_proof", description).await;
    // The same token with a good proof is fine: only the proof was wrong.
    let good = key.proof("GET", "/me", Some(&access), None);
    assert_eq!(
        svc.me(&format!("DPoP {access}"), Some(&good))
            .await
            .status(),
        StatusCode::OK
    );
    svc.server.stop().await;
}

#[tokio::test]
async fn a_bound_login_gives_dpop_tokens_that_work_with_a_proof() {
    let svc = start(|_| {}).await;
    let key = Key::new();
    let (access, cookie) = svc.bound_login(&key).await;
    let r = svc
        .me(
            &format!("DPoP {access}"),
            Some(&key.proof("GET", "/me", Some(&access), None)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    // The refresh with a proof by the same key: bound tokens again.
    let r = svc
        .refresh(&cookie, Some(&key.proof("POST", "/refresh", None, None)))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (access2, _) = tokens(r).await;
    let r = svc
        .me(
            &format!("DPoP {access2}"),
            Some(&key.proof("GET", "/me", Some(&access2), None)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Without a proof, login answers bearer tokens as before.
    let r = svc.login(None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    // The metadata names the proof algorithms.
    let r = svc
        .http
        .get(svc.server.url("/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let meta: Value = r.json().await.unwrap();
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "Ed25519"])
    );
    assert_eq!(meta["resource"], ORIGIN);
    svc.server.stop().await;
}

#[tokio::test]
async fn a_bound_session_logs_out_with_a_proof_only() {
    let svc = start(|o| o.fingerprint_cookie = true).await;
    let key = Key::new();
    let r = svc
        .login(Some(&key.proof("POST", "/login", None, None)))
        .await;
    // A bound token needs no fingerprint cookie: the key is the binding.
    assert!(set_cookie(&r, "__Host-fingerprint").is_none());
    let (access, cookie) = tokens(r).await;
    let auth = format!("DPoP {access}");
    let logout = |proof: Option<String>| {
        let mut r = svc
            .http
            .post(svc.server.url("/logout"))
            .header(AUTHORIZATION, &auth)
            .header(COOKIE, &cookie);
        if let Some(p) = proof {
            r = r.header("DPoP", p);
        }
        r.send()
    };
    // Without a proof (a stolen token): refused, and the session lives on.
    let r = logout(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = svc
        .me(&auth, Some(&key.proof("GET", "/me", Some(&access), None)))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // With the key's proof: the session ends.
    let r = logout(Some(key.proof("POST", "/logout", Some(&access), None)))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = svc
        .me(&auth, Some(&key.proof("GET", "/me", Some(&access), None)))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_description"], "revoked");
    svc.server.stop().await;
}

#[tokio::test]
async fn a_bound_token_under_bearer_is_refused_with_a_dpop_challenge() {
    let svc = start(|_| {}).await;
    let key = Key::new();
    let (access, _) = svc.bound_login(&key).await;
    let r = svc.me(&format!("Bearer {access}"), None).await;
    assert_dpop_refusal(
        r,
        "invalid_token",
        "bound to a key: a DPoP proof is required",
    )
    .await;
    // With a proof, but under Bearer: still refused.
    let proof = key.proof("GET", "/me", Some(&access), None);
    let r = svc.me(&format!("Bearer {access}"), Some(&proof)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    svc.server.stop().await;
}

#[tokio::test]
async fn a_proof_with_another_typ_is_refused() {
    refused_on_me("typ is not dpop+jwt", |key, access| {
        key.sign(&claims("GET", &format!("{ORIGIN}/me"), Some(access)), |h| {
            h.set_token_type("JWT");
        })
    })
    .await;
}

#[tokio::test]
async fn a_proof_with_alg_none_is_refused() {
    refused_on_me("algorithm not allowed", |key, access| {
        let header = json!({"typ": "dpop+jwt", "alg": "none", "jwk": serde_json::to_value(&key.public).unwrap()});
        let c = claims("GET", &format!("{ORIGIN}/me"), Some(access));
        format!(
            "{}.{}.",
            b64(&serde_json::to_vec(&header).unwrap()),
            b64(&serde_json::to_vec(&c).unwrap())
        )
    })
    .await;
}

#[tokio::test]
async fn a_proof_with_an_hmac_alg_is_refused() {
    refused_on_me("algorithm not allowed", |key, access| {
        let signer = HS256.signer_from_bytes([7u8; 32]).unwrap();
        let mut h = JwsHeader::new();
        h.set_token_type("dpop+jwt");
        h.set_jwk(key.public.clone());
        let c = claims("GET", &format!("{ORIGIN}/me"), Some(access));
        josekit::jws::serialize_compact(&serde_json::to_vec(&c).unwrap(), &h, &signer).unwrap()
    })
    .await;
}

#[tokio::test]
async fn a_proof_whose_jwk_holds_the_private_key_is_refused() {
    refused_on_me("jwk holds a private key", |key, access| {
        key.sign(&claims("GET", &format!("{ORIGIN}/me"), Some(access)), |h| {
            h.set_jwk(key.private.clone());
        })
    })
    .await;
}

#[tokio::test]
async fn a_proof_with_a_bad_signature_is_refused() {
    refused_on_me("bad signature", |key, access| {
        let proof = key.proof("GET", "/me", Some(access), None);
        let mut bytes = proof.into_bytes();
        let i = bytes.len() - 20;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    })
    .await;
}

#[tokio::test]
async fn a_proof_signed_by_another_key_than_its_jwk_is_refused() {
    refused_on_me("bad signature", |key, access| {
        let other = Key::new();
        other.sign(&claims("GET", &format!("{ORIGIN}/me"), Some(access)), |h| {
            h.set_jwk(key.public.clone());
        })
    })
    .await;
}

#[tokio::test]
async fn a_proof_for_another_method_is_refused() {
    refused_on_me("htm is not the request method", |key, access| {
        key.proof("POST", "/me", Some(access), None)
    })
    .await;
}

#[tokio::test]
async fn a_proof_for_another_uri_is_refused() {
    refused_on_me("htu is not the request URI", |key, access| {
        key.proof("GET", "/api-keys", Some(access), None)
    })
    .await;
}

#[tokio::test]
async fn the_host_header_is_not_trusted_for_the_request_uri() {
    // A proof naming the Host the request carries (not the configured origin).
    let svc = start(|_| {}).await;
    let key = Key::new();
    let (access, _) = svc.bound_login(&key).await;
    let proof = key.sign(
        &claims(
            "GET",
            &format!("http://{}/me", svc.server.addr),
            Some(&access),
        ),
        |_| {},
    );
    let r = svc.me(&format!("DPoP {access}"), Some(&proof)).await;
    assert_dpop_refusal(r, "invalid_dpop_proof", "htu is not the request URI").await;
    let proof = key.sign(
        &claims("GET", "https://evil.example/me", Some(&access)),
        |_| {},
    );
    let r = svc
        .http
        .get(svc.server.url("/me"))
        .header(AUTHORIZATION, format!("DPoP {access}"))
        .header("DPoP", proof)
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_dpop_refusal(r, "invalid_dpop_proof", "htu is not the request URI").await;
    svc.server.stop().await;
}

#[tokio::test]
async fn a_proof_made_too_long_ago_is_refused() {
    refused_on_me("iat outside the accepted window", |key, access| {
        let mut c = claims("GET", &format!("{ORIGIN}/me"), Some(access));
        c["iat"] = json!(now() - 3600);
        key.sign(&c, |_| {})
    })
    .await;
}

#[tokio::test]
async fn a_proof_made_in_the_future_is_refused() {
    refused_on_me("iat outside the accepted window", |key, access| {
        let mut c = claims("GET", &format!("{ORIGIN}/me"), Some(access));
        c["iat"] = json!(now() + 600);
        key.sign(&c, |_| {})
    })
    .await;
}

#[tokio::test]
async fn a_proof_for_another_access_token_is_refused() {
    refused_on_me("ath is not the access token hash", |key, _| {
        key.proof("GET", "/me", Some("another-token"), None)
    })
    .await;
}

#[tokio::test]
async fn a_proof_without_ath_is_refused() {
    refused_on_me("ath is not the access token hash", |key, _| {
        key.proof("GET", "/me", None, None)
    })
    .await;
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let svc = start(|_| {}).await;
    let key = Key::new();
    let (access, _) = svc.bound_login(&key).await;
    let proof = key.proof("GET", "/me", Some(&access), None);
    let auth = format!("DPoP {access}");
    assert_eq!(svc.me(&auth, Some(&proof)).await.status(), StatusCode::OK);
    let r = svc.me(&auth, Some(&proof)).await;
    assert_dpop_refusal(r, "invalid_dpop_proof", "proof already used").await;
    // At the token endpoint too.
    let proof = key.proof("POST", "/login", None, None);
    assert_eq!(svc.login(Some(&proof)).await.status(), StatusCode::OK);
    let r = svc.login(Some(&proof)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    svc.server.stop().await;
}

#[tokio::test]
async fn a_proof_replayed_after_the_window_is_refused() {
    let svc = start(|_| {}).await;
    let key = Key::new();
    let (access, _) = svc.bound_login(&key).await;
    let auth = format!("DPoP {access}");
    // Made 57 s ago: accepted once, inside the 60-second window.
    let mut c = claims("GET", &format!("{ORIGIN}/me"), Some(&access));
    c["iat"] = json!(now() - 57);
    let proof = key.sign(&c, |_| {});
    assert_eq!(svc.me(&auth, Some(&proof)).await.status(), StatusCode::OK);
    // Replayed once the window is over: refused for its age, whatever the replay
    // cache still holds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let r = svc.me(&auth, Some(&proof)).await;
    assert_dpop_refusal(r, "invalid_dpop_proof", "iat outside the accepted window").await;
    svc.server.stop().await;
}

#[tokio::test]
async fn a_missing_or_old_nonce_is_answered_use_dpop_nonce_with_a_nonce() {
    let secret = || SecretBytes::new(vec![42u8; 32]);
    let svc = start(|o| o.dpop_nonce = Some(auth_server::Secret::Shared(secret()))).await;
    let key = Key::new();
    // The token endpoint: 400 use_dpop_nonce and a DPoP-Nonce header.
    let r = svc
        .login(Some(&key.proof("POST", "/login", None, None)))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    // The retry with the nonce is accepted.
    let r = svc
        .login(Some(&key.proof("POST", "/login", None, Some(&nonce))))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (access, _) = tokens(r).await;
    let auth = format!("DPoP {access}");
    // A resource: 401 use_dpop_nonce, with the nonce to use.
    let r = svc
        .me(&auth, Some(&key.proof("GET", "/me", Some(&access), None)))
        .await;
    let header = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_dpop_refusal(r, "use_dpop_nonce", "a DPoP nonce is required").await;
    // An old nonce (two windows ago), made with the same secret: refused the same way.
    let nonces = token_axum::dpop::DpopNonces::new(secret()).unwrap();
    let then = Timestamp::from_unix_seconds(now() - 2 * 300 - 1).unwrap();
    let old = nonces.nonce_at(then);
    let r = svc
        .me(
            &auth,
            Some(&key.proof("GET", "/me", Some(&access), Some(&old))),
        )
        .await;
    assert!(r.headers().contains_key("dpop-nonce"));
    assert_dpop_refusal(r, "use_dpop_nonce", "a DPoP nonce is required").await;
    // The nonce of another secret (another fleet): refused too.
    let other = token_axum::dpop::DpopNonces::new(SecretBytes::new(vec![1u8; 32]))
        .unwrap()
        .nonce_at(SystemClock.now());
    let r = svc
        .me(
            &auth,
            Some(&key.proof("GET", "/me", Some(&access), Some(&other))),
        )
        .await;
    assert_dpop_refusal(r, "use_dpop_nonce", "a DPoP nonce is required").await;
    // The nonce given: accepted.
    let r = svc
        .me(
            &auth,
            Some(&key.proof("GET", "/me", Some(&access), Some(&header))),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    svc.server.stop().await;
}

#[tokio::test]
async fn two_instances_sharing_a_nonce_secret_accept_each_others_nonces() {
    let secret = || SecretBytes::new(vec![9u8; 32]);
    let a = start(|o| o.dpop_nonce = Some(auth_server::Secret::Shared(secret()))).await;
    let b = start(|o| o.dpop_nonce = Some(auth_server::Secret::Shared(secret()))).await;
    let key = Key::new();
    let r = a
        .login(Some(&key.proof("POST", "/login", None, None)))
        .await;
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    // B accepts A's nonce.
    let r = b
        .login(Some(&key.proof("POST", "/login", None, Some(&nonce))))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    a.server.stop().await;
    b.server.stop().await;
}

#[tokio::test]
async fn a_stolen_bound_access_token_is_useless_without_the_key() {
    let svc = start(|_| {}).await;
    let owner = Key::new();
    let thief = Key::new();
    let (access, _) = svc.bound_login(&owner).await;
    let auth = format!("DPoP {access}");
    // No proof at all.
    let r = svc.me(&auth, None).await;
    assert_dpop_refusal(r, "invalid_dpop_proof", "a DPoP proof header is required").await;
    // A valid proof by the thief's own key.
    let r = svc
        .me(&auth, Some(&thief.proof("GET", "/me", Some(&access), None)))
        .await;
    assert_dpop_refusal(
        r,
        "invalid_token",
        "bound to a key: a DPoP proof is required",
    )
    .await;
    // As a bearer token.
    let r = svc.me(&format!("Bearer {access}"), None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // On a route that spends: no payment token either.
    let r = svc
        .http
        .post(svc.server.url("/payments/token"))
        .header(AUTHORIZATION, &auth)
        .header(
            "DPoP",
            thief.proof("POST", "/payments/token", Some(&access), None),
        )
        .json(&json!({"order_id": "o", "amount": 1, "currency": "EUR",
                      "psp_card_token": "t", "idempotency_key": "k"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    svc.server.stop().await;
}

#[tokio::test]
async fn a_stolen_bound_refresh_token_is_useless_without_the_key() {
    let svc = start(|_| {}).await;
    let owner = Key::new();
    let thief = Key::new();
    let (_, cookie) = svc.bound_login(&owner).await;
    // Without a proof: refused, and nothing rotated.
    let r = svc.refresh(&cookie, None).await;
    assert_dpop_refusal(
        r,
        "invalid_token",
        "bound to a key: a DPoP proof is required",
    )
    .await;
    // With the thief's proof: refused.
    let r = svc
        .refresh(&cookie, Some(&thief.proof("POST", "/refresh", None, None)))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The owner's key still refreshes (the family was not revoked nor rotated).
    let r = svc
        .refresh(&cookie, Some(&owner.proof("POST", "/refresh", None, None)))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let _ = &svc.app;
    svc.server.stop().await;
}

#[tokio::test]
async fn a_proof_replayed_at_another_instance_sharing_redis_is_refused() {
    let Some(redis) = service_url(
        REDIS_URL,
        "a_proof_replayed_at_another_instance_sharing_redis_is_refused",
    ) else {
        return;
    };
    // One database file and one key-encryption key: both instances verify each
    // other's tokens; one Redis: they share the replay marks.
    let dir = std::env::temp_dir().join(format!("tessera-dpop-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let kek = dir.join("kek");
    std::fs::write(
        &kek,
        secrecy::ExposeSecret::expose_secret(
            &token_policy::keystore::Kek::generate().unwrap().to_paserk(),
        ),
    )
    .unwrap();
    let url = format!("sqlite://{}", dir.join("auth.db").display());
    let options = |o: &mut Options| {
        o.database_url = url.clone();
        o.redis_url = Some(redis.clone());
        o.keys = Some(auth_server::KeyOptions {
            kek: kek.clone(),
            rotate_every: None,
            publish_ahead: None,
            refresh_every: None,
        });
    };
    let a = start(options).await;
    let b = start(options).await;
    let key = Key::new();
    let (access, _) = a.bound_login(&key).await;
    let auth = format!("DPoP {access}");
    let proof = key.proof("GET", "/me", Some(&access), None);
    assert_eq!(a.me(&auth, Some(&proof)).await.status(), StatusCode::OK);
    // The same proof at the other instance.
    let r = b.me(&auth, Some(&proof)).await;
    assert_dpop_refusal(r, "invalid_dpop_proof", "proof already used").await;
    // A fresh proof works at B: the token is good there.
    let fresh = key.proof("GET", "/me", Some(&access), None);
    assert_eq!(b.me(&auth, Some(&fresh)).await.status(), StatusCode::OK);
    // A login proof used at A is refused at B.
    let login = key.proof("POST", "/login", None, None);
    assert_eq!(a.login(Some(&login)).await.status(), StatusCode::OK);
    assert_eq!(
        b.login(Some(&login)).await.status(),
        StatusCode::BAD_REQUEST
    );
    a.server.stop().await;
    b.server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
