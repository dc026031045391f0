//! Bindings without a client key, through the reference service: the fingerprint
//! cookie (`--fingerprint-cookie`, OWASP token sidejacking) and the client-context
//! check of sensitive actions (`--context-check`), each off by default.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code, unused_imports)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, USER_AGENT, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use auth_server::Options;
use common::{TestServer, set_cookie};

const PW: &str = "correct horse battery";
const FINGERPRINT: &str = "__Host-fingerprint";

async fn start(edit: impl FnOnce(&mut Options)) -> TestServer {
    let mut options = Options {
        users: auth_server::parse_users(&format!("alice:{PW}")).unwrap(),
        public_origin: Some("https://auth.example".to_owned()),
        ..Options::default()
    };
    edit(&mut options);
    let (router, _) = auth_server::build(options).await.unwrap();
    TestServer::start(router).await
}

/// A client from `from` (any 127.x.y.z is loopback) sending `agent`.
fn client(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Logs alice in: the response.
async fn login(server: &TestServer, http: &reqwest::Client, agent: &str) -> reqwest::Response {
    http.post(server.url("/login"))
        .header(USER_AGENT, agent)
        .json(&json!({"username": "alice", "password": PW}))
        .send()
        .await
        .unwrap()
}

async fn access_token(r: reqwest::Response) -> String {
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn me(server: &TestServer, token: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut r = client("127.0.0.1")
        .get(server.url("/me"))
        .header(AUTHORIZATION, format!("Bearer {token}"));
    if let Some(c) = cookie {
        r = r.header(COOKIE, c);
    }
    r.send().await.unwrap()
}

async fn refused(r: reqwest::Response, error: &str, description: &str) {
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(&format!("error=\"{error}\"")),
        "{challenge}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], error);
    assert_eq!(body["error_description"], description);
}

#[tokio::test]
async fn a_bearer_token_bound_to_a_fingerprint_needs_its_hardened_cookie() {
    let server = start(|o| o.fingerprint_cookie = true).await;
    let http = client("127.0.0.1");
    let r = login(&server, &http, "agent").await;
    assert_eq!(r.status(), StatusCode::OK);
    let (value, header) = set_cookie(&r, FINGERPRINT).expect("a fingerprint cookie");
    let (value, header) = (value.to_owned(), header.to_owned());
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(attribute), "{header}");
    }
    assert!(!header.contains("Domain"), "{header}");
    let (refresh, _) = set_cookie(&r, "__Host-refresh").unwrap();
    let refresh = format!("__Host-refresh={refresh}");
    let token = access_token(r).await;
    assert!(!token.contains(&value));
    let cookie = format!("{FINGERPRINT}={value}");

    // With its cookie: accepted.
    assert_eq!(
        me(&server, &token, Some(&cookie)).await.status(),
        StatusCode::OK
    );
    // Lifted without it (a log, a script: the cookie is HttpOnly): refused.
    let description = "fingerprint cookie missing or not the token's";
    refused(
        me(&server, &token, None).await,
        "invalid_token",
        description,
    )
    .await;
    // With another fingerprint: refused.
    let other = format!("{FINGERPRINT}={}", "ab".repeat(32));
    refused(
        me(&server, &token, Some(&other)).await,
        "invalid_token",
        description,
    )
    .await;

    // A refresh sets a new fingerprint; the old one does not fit the new token.
    let r = http
        .post(server.url("/refresh"))
        .header(COOKIE, &refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (new_value, _) = set_cookie(&r, FINGERPRINT).unwrap();
    let new_cookie = format!("{FINGERPRINT}={new_value}");
    assert_ne!(new_cookie, cookie);
    let new_token = access_token(r).await;
    assert_eq!(
        me(&server, &new_token, Some(&new_cookie)).await.status(),
        StatusCode::OK
    );
    refused(
        me(&server, &new_token, Some(&cookie)).await,
        "invalid_token",
        description,
    )
    .await;

    // Logout clears it.
    let r = http
        .post(server.url("/logout"))
        .header(AUTHORIZATION, format!("Bearer {new_token}"))
        .header(COOKIE, format!("{refresh}; {new_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (cleared, _) = set_cookie(&r, FINGERPRINT).unwrap();
    assert!(cleared.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn without_the_flag_no_fingerprint_cookie_is_set_or_needed() {
    let server = start(|_| {}).await;
    let r = login(&server, &client("127.0.0.1"), "agent").await;
    assert!(set_cookie(&r, FINGERPRINT).is_none());
    let token = access_token(r).await;
    assert_eq!(me(&server, &token, None).await.status(), StatusCode::OK);
    server.stop().await;
}

async fn create_key(
    server: &TestServer,
    http: &reqwest::Client,
    token: &str,
    agent: &str,
) -> reqwest::Response {
    http.post(server.url("/api-keys"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(USER_AGENT, agent)
        .json(&json!({"name": "ci", "scopes": ["profile"]}))
        .send()
        .await
        .unwrap()
}

const STEP_UP: &str = "the client context changed: sign in again for this action";

#[tokio::test]
async fn a_sensitive_action_from_another_browser_asks_to_sign_in_again() {
    let server = start(|o| o.context_check = Some(auth_server::Secret::ProcessOnly)).await;
    let http = client("127.0.0.1");
    let token = access_token(login(&server, &http, "Firefox/130").await).await;
    // The same context: allowed.
    assert_eq!(
        create_key(&server, &http, &token, "Firefox/130")
            .await
            .status(),
        StatusCode::CREATED
    );
    // Another User-Agent: a step-up challenge on each sensitive route.
    refused(
        create_key(&server, &http, &token, "curl/8").await,
        "reauthentication_required",
        STEP_UP,
    )
    .await;
    let r = http
        .post(server.url("/payments/token"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(USER_AGENT, "curl/8")
        .json(&json!({"order_id": "o", "amount": 1, "currency": "EUR",
                      "psp_card_token": "t", "idempotency_key": "k"}))
        .send()
        .await
        .unwrap();
    refused(r, "reauthentication_required", STEP_UP).await;
    let r = http
        .post(server.url("/password"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(USER_AGENT, "curl/8")
        .json(&json!({"current_password": PW, "new_password": "another long one"}))
        .send()
        .await
        .unwrap();
    refused(r, "reauthentication_required", STEP_UP).await;
    // The password did not change: the old one still logs in.
    assert_eq!(
        login(&server, &http, "Firefox/130").await.status(),
        StatusCode::OK
    );
    // A route that is not sensitive does not look.
    let r = http
        .get(server.url("/me"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(USER_AGENT, "curl/8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Signing in again from the new context: allowed there.
    let fresh = access_token(login(&server, &http, "curl/8").await).await;
    assert_eq!(
        create_key(&server, &http, &fresh, "curl/8").await.status(),
        StatusCode::CREATED
    );
    server.stop().await;
}

#[tokio::test]
async fn a_sensitive_action_from_another_network_asks_to_sign_in_again() {
    let server = start(|o| o.context_check = Some(auth_server::Secret::ProcessOnly)).await;
    let token = access_token(login(&server, &client("127.0.0.1"), "app/1").await).await;
    // Another address in the same /24: the same network.
    assert_eq!(
        create_key(&server, &client("127.0.0.2"), &token, "app/1")
            .await
            .status(),
        StatusCode::CREATED
    );
    // Another /24: a step-up challenge.
    refused(
        create_key(&server, &client("127.0.1.1"), &token, "app/1").await,
        "reauthentication_required",
        STEP_UP,
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn the_context_check_is_off_by_default() {
    let server = start(|_| {}).await;
    let token = access_token(login(&server, &client("127.0.0.1"), "Firefox/130").await).await;
    assert_eq!(
        create_key(&server, &client("127.0.1.1"), &token, "curl/8")
            .await
            .status(),
        StatusCode::CREATED
    );
    server.stop().await;
}
