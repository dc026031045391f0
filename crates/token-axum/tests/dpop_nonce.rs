//! Server nonces over HTTP as they rotate (RFC 9449 section 8): behind the auth layer,
//! a successful answer carries the next window's nonce in `DPoP-Nonce` during the last
//! quarter of a window; a nonce is accepted through the next window and refused after,
//! with `use_dpop_nonce` and the nonce to use.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use secrecy::ExposeSecret as _;
use serde_json::json;
use token_axum::dpop::{DpopNonces, DpopSettings};
use token_axum::{AuthLayer, AuthState};
use token_core::{Clock, ManualClock, SecretBytes, SystemClock, Timestamp};
use token_jwt::dpop::{ProofRequest, make_proof};
use token_jwt::{Algorithm, SigningKey};
use token_opaque::OpaqueTokens;
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::config::open_store;
use token_policy::{DpopRequestLine, Policy, TokenService};
use tower::ServiceExt as _;

const ORIGIN: &str = "https://api.example";
const WINDOW: u64 = 60;

fn proof(key: &SigningKey, token: &str, nonce: &str) -> String {
    make_proof(
        key,
        &ProofRequest {
            method: "GET",
            uri: &format!("{ORIGIN}/me"),
            access_token: Some(token),
            nonce: Some(nonce),
        },
        SystemClock.now(),
    )
    .unwrap()
}

async fn get_me(app: &Router, token: &str, proof: &str) -> axum::response::Response {
    app.clone()
        .oneshot(
            Request::get("/me")
                .header(header::AUTHORIZATION, format!("DPoP {token}"))
                .header("DPoP", proof)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
}

fn nonce_header(r: &axum::response::Response) -> Option<String> {
    r.headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn nonces_rotate_and_answers_carry_the_next_one_before_they_do() {
    let store = open_store("sqlite::memory:").await.unwrap();
    let service = Arc::new(
        TokenService::builder(
            Policy::new("https://auth.example", "api"),
            PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
        )
        .opaque(OpaqueTokens::builder(store).build().unwrap())
        .build(),
    );
    // The nonces' clock, moved by hand: the start of a window.
    let start =
        Timestamp::from_unix_seconds(i64::try_from((1_900_000_000 / WINDOW) * WINDOW).unwrap())
            .unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let nonces = DpopNonces::new(SecretBytes::new(vec![4u8; 32]))
        .unwrap()
        .window(Duration::from_secs(WINDOW));
    let settings = DpopSettings::public_origin(ORIGIN)
        .unwrap()
        .require_nonces(nonces.clone())
        .clock(clock.clone());
    let state = AuthState::new(service.clone()).dpop(settings);
    let app = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(AuthLayer::new(state));

    // A bound token.
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let login_proof = make_proof(
        &key,
        &ProofRequest {
            method: "POST",
            uri: "https://auth.example/login",
            access_token: None,
            nonce: None,
        },
        SystemClock.now(),
    )
    .unwrap();
    let verified = service
        .accept_dpop_proof(
            &login_proof,
            &DpopRequestLine {
                method: "POST",
                uri: "https://auth.example/login",
                nonce: None,
            },
        )
        .await
        .unwrap();
    let tokens = service
        .login_dpop("usr_1", &json!({}), &verified)
        .await
        .unwrap();
    let token = tokens.access.expose_secret();

    let first = nonces.nonce_at(start);
    // Early in the window: the current nonce is accepted, and no new one is sent.
    let r = get_me(&app, token, &proof(&key, token, &first)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(nonce_header(&r), None);
    // In the last quarter: still accepted, and the answer carries the next nonce.
    clock.advance(Duration::from_secs(WINDOW * 3 / 4 + 1));
    let r = get_me(&app, token, &proof(&key, token, &first)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let next = nonce_header(&r).expect("the next nonce");
    assert_ne!(next, first);
    assert_eq!(
        next,
        nonces.nonce_at(start.checked_add(Duration::from_secs(WINDOW)).unwrap())
    );
    // The next nonce works at once, and the first through the next window.
    let r = get_me(&app, token, &proof(&key, token, &next)).await;
    assert_eq!(r.status(), StatusCode::OK);
    clock.advance(Duration::from_secs(WINDOW / 2));
    let r = get_me(&app, token, &proof(&key, token, &first)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(nonce_header(&r).as_deref(), Some(next.as_str()));
    // Two windows on, the first nonce is refused with the one to use.
    clock.advance(Duration::from_secs(WINDOW));
    let r = get_me(&app, token, &proof(&key, token, &first)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let current = nonce_header(&r).expect("a nonce to use");
    assert_eq!(current, nonces.to_send(clock.now()));
    let r = get_me(&app, token, &proof(&key, token, &current)).await;
    assert_eq!(r.status(), StatusCode::OK);
}
