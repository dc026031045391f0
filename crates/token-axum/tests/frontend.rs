//! The reference service's HTTP as a browser frontend sees it: which failures are
//! `401` (only the caller's own credential), two tabs refreshing at once, the routes a
//! settings page needs, CORS, body errors that say what is wrong, request logs without
//! secrets, and users that keep their ids across restarts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines
)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, WWW_AUTHENTICATE};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use token_core::test_support::{DATABASE_URL, service_url};
use token_opaque::GracePolicy;

use auth_server::{App, Options};
use common::{PgSchema, Spawned, TestServer, http, set_cookie, unique};

const ALICE_PW: &str = "correct horse battery";
const BOB_PW: &str = "hunter2-but-longer";

struct Service {
    server: TestServer,
    app: Arc<App>,
    http: reqwest::Client,
}

impl Service {
    /// alice and bob, on `options` (its users replaced), with plain-HTTP cookies.
    async fn start(options: Options) -> Self {
        Self::start_with_users(options, &format!("alice:{ALICE_PW},bob:{BOB_PW}")).await
    }

    async fn start_with_users(options: Options, users: &str) -> Self {
        let (router, app) = auth_server::build(Options {
            users: auth_server::parse_users(users).unwrap(),
            insecure_cookies: true,
            ..options
        })
        .await
        .unwrap();
        Self {
            server: TestServer::start(router).await,
            app,
            http: http(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn cookie_name(&self) -> &str {
        self.app.cookie.name()
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
        bearer: Option<&str>,
        refresh: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(cookie) = refresh {
            request = request.header(COOKIE, format!("{}={cookie}", self.cookie_name()));
        }
        request.send().await.unwrap()
    }

    async fn get(&self, path: &str, bearer: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    async fn refresh(&self, cookie: &str) -> reqwest::Response {
        self.post("/refresh", &json!({}), None, Some(cookie)).await
    }

    /// Logs in: the access token and the refresh cookie.
    async fn login(&self, user: &str, password: &str) -> (String, String) {
        let r = self
            .post(
                "/login",
                &json!({ "username": user, "password": password }),
                None,
                None,
            )
            .await;
        tokens(r, self.cookie_name()).await
    }

    fn user_id(&self, name: &str) -> String {
        self.app.user(name).unwrap().id.clone()
    }

    async fn new_api_key(&self, access: &str, name: &str) -> (String, String) {
        let r = self
            .post(
                "/api-keys",
                &json!({ "name": name, "scopes": ["profile"] }),
                Some(access),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["key"].as_str().unwrap().to_owned(),
        )
    }
}

/// The access token and refresh cookie of a `200` token response.
async fn tokens(r: reqwest::Response, cookie_name: &str) -> (String, String) {
    assert_eq!(r.status(), StatusCode::OK, "{}", r.url());
    let refresh = set_cookie(&r, cookie_name).unwrap().0.to_owned();
    assert!(refresh.starts_with("rt_"), "{refresh}");
    let body: Value = r.json().await.unwrap();
    (body["access_token"].as_str().unwrap().to_owned(), refresh)
}

/// An error answer: status, `error`, `error_description`; whether it challenges
/// (`WWW-Authenticate`), and that it repeats none of `leaks`.
async fn expect(
    r: reqwest::Response,
    status: StatusCode,
    error: &str,
    description: &str,
    leaks: &[&str],
) -> reqwest::header::HeaderMap {
    assert_eq!(r.status(), status, "{}", r.url());
    let headers = r.headers().clone();
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    let text = r.text().await.unwrap();
    for leak in leaks {
        assert!(!text.contains(leak), "the answer repeats {leak:?}: {text}");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], error, "{text}");
    assert_eq!(body["error_description"], description, "{text}");
    headers
}

// ---- 11: 401 is for the caller's own credential ----------------------------------

/// A bad token in a request body is no authentication failure of the caller: Bob
/// consuming Alice's payment token, a reused payment token and a bad reset token
/// answer 403, 409 and 400 with codes of their own, without a challenge, and the
/// caller's access token goes on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_in_the_body_is_not_a_401() {
    let s = Service::start(Options::default()).await;
    let (alice, alice_cookie) = s.login("alice", ALICE_PW).await;
    let (bob, _) = s.login("bob", BOB_PW).await;
    let order = json!({
        "order_id": "o-1",
        "amount": 990,
        "currency": "EUR",
        "psp_card_token": "tok_mastercard_4444",
        "idempotency_key": format!("idem-{}", unique()),
    });
    let r = s.post("/payments/token", &order, Some(&alice), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["payment_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let consume = json!({ "payment_token": token });

    let r = s
        .post("/payments/consume", &consume, Some(&bob), None)
        .await;
    let headers = expect(
        r,
        StatusCode::FORBIDDEN,
        "payment_token_not_yours",
        "invalid token",
        &[&token, "tok_mastercard"],
    )
    .await;
    assert!(!headers.contains_key(WWW_AUTHENTICATE), "{headers:?}");
    assert_eq!(s.get("/me", &bob).await.status(), StatusCode::OK);

    let r = s
        .post("/payments/consume", &consume, Some(&alice), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = s
        .post("/payments/consume", &consume, Some(&alice), None)
        .await;
    let headers = expect(
        r,
        StatusCode::CONFLICT,
        "payment_token_used",
        "already used",
        &[&token],
    )
    .await;
    assert!(!headers.contains_key(WWW_AUTHENTICATE));

    for (bad, reason) in [
        ("prt_nope", "malformed token"),
        (alice.as_str(), "malformed token"),
        (alice_cookie.as_str(), "wrong token type"),
    ] {
        let r = s
            .post(
                "/password-reset/confirm",
                &json!({ "token": bad, "new_password": "a new password" }),
                None,
                None,
            )
            .await;
        let headers = expect(
            r,
            StatusCode::BAD_REQUEST,
            "invalid_reset_token",
            reason,
            &[bad, "a new password"],
        )
        .await;
        assert!(!headers.contains_key(WWW_AUTHENTICATE));
    }
    assert_eq!(s.get("/me", &alice).await.status(), StatusCode::OK);

    // The caller's own credential still answers 401, with its challenge.
    let r = s
        .post(
            "/payments/consume",
            &consume,
            Some("v4.public.bm9wZQ"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(WWW_AUTHENTICATE));
    s.server.stop().await;
}

// ---- 12: two tabs refreshing at once ---------------------------------------------

/// Two tabs send `POST /refresh` with the same cookie at once: both succeed, with the
/// same new refresh token, and the session lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_refreshing_at_once_both_succeed_and_the_session_lives() {
    let s = Service::start(Options::default()).await;
    let (_, cookie) = s.login("alice", ALICE_PW).await;
    let (a, b) = tokio::join!(s.refresh(&cookie), s.refresh(&cookie));
    let (access_a, next_a) = tokens(a, s.cookie_name()).await;
    let (access_b, next_b) = tokens(b, s.cookie_name()).await;
    assert_eq!(next_a, next_b, "one successor, whichever tab asked");
    assert_ne!(next_a, cookie);
    for access in [&access_a, &access_b] {
        assert_eq!(s.get("/me", access).await.status(), StatusCode::OK);
    }
    // The family is alive: the successor rotates on.
    let (access, _) = tokens(s.refresh(&next_a).await, s.cookie_name()).await;
    assert_eq!(s.get("/me", &access).await.status(), StatusCode::OK);
    s.server.stop().await;
}

/// A repeat of the previous refresh token after the grace window is a replay: the
/// family is revoked, its current token with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_the_grace_window_revokes_the_family() {
    let s = Service::start(Options {
        refresh_grace: GracePolicy::new(Duration::from_secs(1), 3),
        ..Options::default()
    })
    .await;
    let (_, cookie) = s.login("alice", ALICE_PW).await;
    let (_, next) = tokens(s.refresh(&cookie).await, s.cookie_name()).await;
    // Times are whole seconds: two of them are past a one-second window.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = s.refresh(&cookie).await;
    assert_eq!(set_cookie(&r, s.cookie_name()).unwrap().0, "", "cleared");
    expect(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "reuse detected: session revoked",
        &[&cookie],
    )
    .await;
    expect(
        s.refresh(&next).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "revoked",
        &[&next],
    )
    .await;
    s.server.stop().await;
}

/// The grace window is on unless the command line turns it off.
#[test]
fn the_refresh_grace_window_is_on_by_default() {
    let parse = |extra: &[&str]| {
        let mut line = vec!["auth_server"];
        line.extend_from_slice(extra);
        <auth_server::Args as clap::Parser>::try_parse_from(line)
    };
    let defaults = Options::from_args(parse(&[]).unwrap()).unwrap();
    assert!(defaults.refresh_grace.is_enabled());
    assert_eq!(
        defaults.refresh_grace,
        GracePolicy::new(
            auth_server::DEFAULT_REFRESH_GRACE,
            auth_server::REFRESH_GRACE_REUSES
        )
    );
    assert_eq!(Options::default().refresh_grace, defaults.refresh_grace);
    let set = Options::from_args(parse(&["--refresh-grace", "3s"]).unwrap()).unwrap();
    assert_eq!(set.refresh_grace.window, Duration::from_secs(3));
    let off = Options::from_args(parse(&["--refresh-grace", "0s"]).unwrap()).unwrap();
    assert!(!off.refresh_grace.is_enabled());
    assert!(parse(&["--refresh-grace", "soon"]).is_err());
}

// ---- 13: what a frontend needs ---------------------------------------------------

/// `GET /api-keys` lists the caller's keys, revoked ones marked, never a key itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_listed_without_their_secrets() {
    let s = Service::start(Options::default()).await;
    let (alice, _) = s.login("alice", ALICE_PW).await;
    let (bob, _) = s.login("bob", BOB_PW).await;
    let (ci_id, ci_key) = s.new_api_key(&alice, "ci").await;
    let (old_id, old_key) = s.new_api_key(&alice, "old").await;
    let (_, bob_key) = s.new_api_key(&bob, "bob's").await;
    let r = s
        .http
        .delete(s.url(&format!("/api-keys/{old_id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let r = s.get("/api-keys", &alice).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    let text = r.text().await.unwrap();
    for secret in [&ci_key, &old_key, &bob_key] {
        assert!(!text.contains(secret.as_str()), "{text}");
    }
    assert!(!text.contains("sk_"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let keys = body["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{body}");
    let ci = keys.iter().find(|k| k["id"] == ci_id.as_str()).unwrap();
    assert_eq!(ci["name"], "ci");
    assert_eq!(ci["scopes"], json!(["profile"]));
    assert_eq!(ci["environment"], "test");
    assert_eq!(ci["active"], true);
    assert!(ci["created_at"].as_i64().unwrap() > 1_700_000_000);
    assert!(ci["revoked_at"].is_null());
    let old = keys.iter().find(|k| k["id"] == old_id.as_str()).unwrap();
    assert_eq!(old["active"], false);
    assert!(old["revoked_at"].is_i64());

    // Bob sees his own only; a key cannot list keys; no credential: 401.
    let body: Value = s.get("/api-keys", &bob).await.json().await.unwrap();
    assert_eq!(body["api_keys"].as_array().unwrap().len(), 1);
    assert_eq!(body["api_keys"][0]["name"], "bob's");
    assert_eq!(
        s.get("/api-keys", &ci_key).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = s.http.get(s.url("/api-keys")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.server.stop().await;
}

/// `POST /password` checks the current password (a wrong one is `403`, and changes
/// nothing), then ends every credential of the user — other devices, this session's
/// old tokens, API keys — and answers with a fresh session, as a login does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_ends_every_other_credential() {
    let s = Service::start(Options::default()).await;
    let (tab, tab_cookie) = s.login("alice", ALICE_PW).await;
    let (phone, phone_cookie) = s.login("alice", ALICE_PW).await;
    let (bob, _) = s.login("bob", BOB_PW).await;
    let (_, key) = s.new_api_key(&tab, "script").await;
    let new_pw = "an even better passphrase";

    let r = s
        .post(
            "/password",
            &json!({ "current_password": "not the password", "new_password": new_pw }),
            Some(&tab),
            None,
        )
        .await;
    let headers = expect(
        r,
        StatusCode::FORBIDDEN,
        "wrong_password",
        "the current password is not right",
        &["not the password", new_pw],
    )
    .await;
    assert!(!headers.contains_key(WWW_AUTHENTICATE));
    let r = s
        .post(
            "/password",
            &json!({ "current_password": ALICE_PW, "new_password": "short" }),
            Some(&tab),
            None,
        )
        .await;
    expect(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "a password is 8 to 1024 bytes",
        &[ALICE_PW],
    )
    .await;
    let r = s
        .post(
            "/password",
            &json!({ "new_password": new_pw }),
            Some(&tab),
            None,
        )
        .await;
    expect(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "missing field `current_password`",
        &[new_pw],
    )
    .await;
    // Nothing changed so far.
    for credential in [&tab, &phone, &key] {
        assert_eq!(s.get("/me", credential).await.status(), StatusCode::OK);
    }
    // An API key cannot change the password.
    let r = s
        .post(
            "/password",
            &json!({ "current_password": ALICE_PW, "new_password": new_pw }),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = s
        .post(
            "/password",
            &json!({ "current_password": ALICE_PW, "new_password": new_pw }),
            Some(&tab),
            Some(&tab_cookie),
        )
        .await;
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    let (fresh, fresh_cookie) = tokens(r, s.cookie_name()).await;
    assert_eq!(s.get("/me", &fresh).await.status(), StatusCode::OK);
    for old in [&tab, &phone, &key] {
        expect(
            s.get("/me", old).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "revoked",
            &[old],
        )
        .await;
    }
    for old in [&tab_cookie, &phone_cookie] {
        assert_eq!(s.refresh(old).await.status(), StatusCode::UNAUTHORIZED);
    }
    let (_, _) = tokens(s.refresh(&fresh_cookie).await, s.cookie_name()).await;
    assert_eq!(s.get("/me", &bob).await.status(), StatusCode::OK);
    let r = s
        .post(
            "/login",
            &json!({ "username": "alice", "password": ALICE_PW }),
            None,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.login("alice", new_pw).await;
    s.server.stop().await;
}

/// A wrong current password on `POST /password` is a failed login of the account:
/// past the per-account limit the change is refused (`429`) whatever the password, and
/// so is a login, so a stolen access token cannot be used to guess the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_current_password_counts_as_a_failed_login() {
    let (router, app) = auth_server::build_with_limits(
        Options {
            users: auth_server::parse_users(&format!("alice:{ALICE_PW},bob:{BOB_PW}")).unwrap(),
            insecure_cookies: true,
            ..Options::default()
        },
        auth_server::LoginLimits {
            per_account: 2,
            ..auth_server::LoginLimits::default()
        },
    )
    .await
    .unwrap();
    let s = Service {
        server: TestServer::start(router).await,
        app,
        http: http(),
    };
    let (alice, _) = s.login("alice", ALICE_PW).await;
    let (service, alice) = (&s, &alice);
    let change = |current: &'static str| async move {
        let body = json!({ "current_password": current, "new_password": "a new passphrase" });
        service.post("/password", &body, Some(alice), None).await
    };
    for _ in 0..2 {
        assert_eq!(change("guess, guess").await.status(), StatusCode::FORBIDDEN);
    }
    let r = change(ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let r = s
        .post(
            "/login",
            &json!({ "username": "alice", "password": ALICE_PW }),
            None,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Nothing was changed or revoked; bob is another account.
    assert_eq!(s.get("/me", alice).await.status(), StatusCode::OK);
    s.login("bob", BOB_PW).await;
    s.server.stop().await;
}

/// `POST /logout-everywhere` ends every session of the user on every device, and
/// clears this browser's cookie; API keys are no sessions and stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_everywhere_ends_every_session_and_keeps_api_keys() {
    let s = Service::start(Options::default()).await;
    let (tab, tab_cookie) = s.login("alice", ALICE_PW).await;
    let (phone, phone_cookie) = s.login("alice", ALICE_PW).await;
    let (bob, _) = s.login("bob", BOB_PW).await;
    let (_, key) = s.new_api_key(&tab, "script").await;

    let r = s.post("/logout-everywhere", &json!({}), None, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .post(
            "/logout-everywhere",
            &json!({}),
            Some(&tab),
            Some(&tab_cookie),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(set_cookie(&r, s.cookie_name()).unwrap().0, "");
    for access in [&tab, &phone] {
        expect(
            s.get("/me", access).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "revoked",
            &[access],
        )
        .await;
    }
    for cookie in [&tab_cookie, &phone_cookie] {
        assert_eq!(s.refresh(cookie).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(s.get("/me", &key).await.status(), StatusCode::OK);
    assert_eq!(s.get("/me", &bob).await.status(), StatusCode::OK);
    // A new login works at once.
    let (again, _) = s.login("alice", ALICE_PW).await;
    assert_eq!(s.get("/me", &again).await.status(), StatusCode::OK);
    s.server.stop().await;
}

/// `--cors-origin`: a listed origin's preflight is answered with the methods and
/// headers allowed, and its requests may carry credentials; any other origin gets no
/// CORS header at all; without the flag there is no CORS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_credentials_for_the_listed_origins_only() {
    let app_origin = "https://app.example.com";
    let s = Service::start(Options {
        cors_origins: vec![
            auth_server::parse_origin(app_origin).unwrap(),
            auth_server::parse_origin("http://localhost:3000").unwrap(),
        ],
        ..Options::default()
    })
    .await;
    let preflight = |origin: &str| {
        s.http
            .request(reqwest::Method::OPTIONS, s.url("/refresh"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let r = preflight(app_origin).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], app_origin);
    assert_eq!(h["access-control-allow-credentials"], "true");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert!(h.contains_key("access-control-max-age"));
    let r = preflight("http://localhost:3000").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    for stranger in [
        "https://evil.example",
        "https://app.example.com.evil.example",
    ] {
        let r = preflight(stranger).await.unwrap();
        assert!(!r.headers().contains_key("access-control-allow-origin"));
        assert!(!r.headers().contains_key("access-control-allow-credentials"));
    }

    // The request itself: a login from the app's page, and from a stranger's.
    let login = |origin: &str| {
        s.http
            .post(s.url("/login"))
            .header("origin", origin)
            .json(&json!({ "username": "alice", "password": ALICE_PW }))
            .send()
    };
    let r = login(app_origin).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], app_origin);
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    assert!(
        r.headers().get_all("vary").iter().any(|v| v
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin"))
    );
    let r = login("https://evil.example").await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    assert!(!r.headers().contains_key("access-control-allow-credentials"));
    s.server.stop().await;

    // Opt-in: without the flag, a preflight gets no CORS header.
    let s = Service::start(Options::default()).await;
    let r = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/refresh"))
        .header("origin", app_origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    assert!(!r.headers().contains_key("access-control-allow-credentials"));
    s.server.stop().await;
}

#[test]
fn cors_origins_are_checked_on_the_command_line() {
    for good in [
        "https://app.example.com",
        "http://localhost:3000",
        "http://127.0.0.1:8080",
        "http://[::1]:5173",
        "HTTPS://App.Example.com",
    ] {
        let origin = auth_server::parse_origin(good).unwrap();
        assert_eq!(origin.to_str().unwrap(), good.to_ascii_lowercase());
    }
    for bad in [
        "*",
        "null",
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "ftp://app.example.com",
        "https://",
        "https://a b",
        "https://app.example.com:port",
        "https://app.example.com:99999",
        "https://user@app.example.com",
        "http://[::1",
    ] {
        assert!(auth_server::parse_origin(bad).is_err(), "{bad}");
    }
    let args = <auth_server::Args as clap::Parser>::try_parse_from([
        "auth_server",
        "--cors-origin",
        "https://a.example",
        "--cors-origin",
        "https://b.example",
    ])
    .unwrap();
    assert_eq!(Options::from_args(args).unwrap().cors_origins.len(), 2);
    assert!(
        <auth_server::Args as clap::Parser>::try_parse_from(["auth_server", "--cors-origin", "*"])
            .is_err()
    );
}

// ---- 14: body errors, and request logs --------------------------------------------

/// Body errors name the field (and never repeat a value), `413` over the limit
/// (announced or chunked), `415` for another content type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_errors_say_what_is_wrong() {
    let s = Service::start(Options::default()).await;
    let (alice, _) = s.login("alice", ALICE_PW).await;
    let send = |path: &'static str, body: &'static str, content_type: Option<&'static str>| {
        let mut request = s.http.post(s.url(path)).bearer_auth(&alice).body(body);
        if let Some(ct) = content_type {
            request = request.header(CONTENT_TYPE, ct);
        }
        request.send()
    };
    let json = Some("application/json");
    let cases: [(&str, &str, &str); 9] = [
        (
            "/login",
            r#"{"username":"alice"}"#,
            "missing field `password`",
        ),
        (
            "/login",
            r#"{"username":"alice","password":"p4ssw0rd-secret","remember":true}"#,
            "unknown field `remember`, expected `username` or `password`",
        ),
        (
            "/login",
            r#"{"username":"alice","password":31415926535}"#,
            "`password`: expected a string",
        ),
        (
            "/payments/token",
            r#"{"order_id":"o","amount":"12","currency":"EUR","psp_card_token":"t","idempotency_key":"k"}"#,
            "`amount`: expected u64",
        ),
        (
            "/api-keys",
            r#"{"name":"x","scopes":["profile",7]}"#,
            "`scopes[1]`: expected a string",
        ),
        (
            "/login",
            r#"{"username":"alice","password":"p4ssw0rd-secret""#,
            "the body is not valid JSON (line 1, column 48)",
        ),
        (
            "/login",
            r#"["alice","p4ssw0rd-secret"]"#,
            "the body must be a JSON object",
        ),
        (
            "/login",
            r#"{"username":"alice","password":"p4ssw0rd-secret"} {}"#,
            "the body has more after its JSON value (line 1, column 51)",
        ),
        (
            "/login",
            r#"{"username":"alice","username":"bob","password":"p4ssw0rd-secret"}"#,
            "duplicate field `username`",
        ),
    ];
    for (path, body, description) in cases {
        let r = send(path, body, json).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path} {body}");
        expect(
            r,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            description,
            &["p4ssw0rd-secret", "31415926535", "\"12\""],
        )
        .await;
    }
    // An unknown field's name is repeated, cut short and printable.
    let long = format!(
        r#"{{"username":"a","password":"b","{}":1}}"#,
        "x".repeat(500)
    );
    let r = s
        .http
        .post(s.url("/login"))
        .header(CONTENT_TYPE, "application/json")
        .body(long)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    let description = body["error_description"].as_str().unwrap();
    assert!(description.len() < 200, "{description}");

    // 415: another content type, or none. (A form is the sign-in page's: see
    // tests/pages.rs.)
    for content_type in [Some("text/plain"), Some("application/xml"), None] {
        let r = send(
            "/login",
            r#"{"username":"alice","password":"x"}"#,
            content_type,
        )
        .await
        .unwrap();
        expect(
            r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON (Content-Type: application/json)",
            &[],
        )
        .await;
    }
    let r = send(
        "/login",
        r#"{"username":"alice","password":"wrong password!"}"#,
        Some("application/json; charset=utf-8"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "charset is fine");

    // 413: a body over the limit, with its length announced or chunked.
    let big = format!(
        r#"{{"username":"alice","password":"{}"}}"#,
        "x".repeat(20 * 1024)
    );
    let r = s
        .http
        .post(s.url("/login"))
        .header(CONTENT_TYPE, "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    expect(
        r,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "a request body is at most 16384 bytes",
        &[],
    )
    .await;
    // Chunked, no length announced: refused once the limit is passed.
    let status = chunked_post(&s, "/login", big.as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 413 "), "{status}");
    s.server.stop().await;
}

/// POSTs `body` as a chunked JSON body over a raw connection; the status line.
async fn chunked_post(s: &Service, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(s.server.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        s.server.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(4096) {
        let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
        piece.extend_from_slice(chunk);
        piece.extend_from_slice(b"\r\n");
        // The server may answer and close before the last chunk: that is the point.
        if stream.write_all(&piece).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The binary with alice and bob (from `users`), plain-HTTP cookies and `args`.
async fn spawn_binary(users: &std::path::Path, args: &[&str]) -> Spawned {
    let mut all: Vec<&std::ffi::OsStr> = vec![
        "--insecure-cookies".as_ref(),
        "--demo-users-file".as_ref(),
        users.as_os_str(),
    ];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    Spawned::start(all).await
}

/// A users file readable by its owner only, removed when dropped.
struct UsersFile(std::path::PathBuf);

impl UsersFile {
    fn new() -> Self {
        use std::io::Write as _;
        let path = std::env::temp_dir().join(format!("token-axum-users-{}.txt", unique()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&path)
            .unwrap()
            .write_all(format!("alice:{ALICE_PW}\nbob:{BOB_PW}\n").as_bytes())
            .unwrap();
        Self(path)
    }
}

impl Drop for UsersFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Every request is logged on stderr — method, route, status — through the trace
/// layer, and no password, token, cookie or `Authorization` header ever is, whatever
/// the request carried (in its body, its headers, its query).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_logged_without_secrets() {
    let users = UsersFile::new();
    let service = spawn_binary(&users.0, &[]).await;
    let base = service.base.clone();
    let client = http();
    let url = |path: &str| format!("{base}{path}");
    let r = client
        .post(url("/login"))
        .json(&json!({ "username": "alice", "password": ALICE_PW }))
        .send()
        .await
        .unwrap();
    let (access, cookie) = tokens(r, "refresh").await;
    let r = client
        .post(url("/login"))
        .json(&json!({ "username": "bob", "password": "a wrong password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client
        .post(url("/refresh"))
        .header(COOKIE, format!("refresh={cookie}"))
        .send()
        .await
        .unwrap();
    let (access2, cookie2) = tokens(r, "refresh").await;
    let r = client
        .post(url("/api-keys"))
        .bearer_auth(&access2)
        .json(&json!({ "name": "logged?", "scopes": ["profile"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let (key, key_id) = (
        body["key"].as_str().unwrap().to_owned(),
        body["id"].as_str().unwrap().to_owned(),
    );
    // A token where none belongs: in the query and the path.
    let r = client
        .get(url(&format!("/me?access_token={access2}")))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client.get(url(&format!("/{access}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = client
        .delete(url(&format!("/api-keys/{key_id}")))
        .bearer_auth(&access2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let new_pw = "the next password!";
    let r = client
        .post(url("/password"))
        .bearer_auth(&access2)
        .header(COOKIE, format!("refresh={cookie2}"))
        .json(&json!({ "current_password": ALICE_PW, "new_password": new_pw }))
        .send()
        .await
        .unwrap();
    let (access3, cookie3) = tokens(r, "refresh").await;

    // The lines are written as the answers go out; give the last one a moment.
    let mut log = String::new();
    for _ in 0..100 {
        log = service.stderr();
        if log.contains("route=/password ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.stop().await;
    for (method, route, status) in [
        ("POST", "/login", 200),
        ("POST", "/login", 401),
        ("POST", "/refresh", 200),
        ("POST", "/api-keys", 201),
        ("GET", "/me", 200),
        ("GET", "-", 404),
        ("DELETE", "/api-keys/{id}", 204),
        ("POST", "/password", 200),
    ] {
        let found = log.lines().any(|line| {
            line.contains(" INFO ")
                && line.contains(&format!("method={method} "))
                && line.contains(&format!("route={route} "))
                && line.contains(&format!("status={status} "))
                && line.contains("latency_ms=")
        });
        assert!(found, "no log line for {method} {route} {status}:\n{log}");
    }
    for secret in [
        ALICE_PW,
        "a wrong password",
        new_pw,
        &access,
        &access2,
        &access3,
        &cookie,
        &cookie2,
        &cookie3,
        &key,
    ] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
    let lower = log.to_ascii_lowercase();
    for word in [
        "authorization",
        "cookie",
        "bearer",
        "x-api-key",
        "access_token",
    ] {
        assert!(!lower.contains(word), "the log names {word:?}:\n{log}");
    }

    // --no-request-log: nothing per request.
    let service = spawn_binary(&users.0, &["--no-request-log"]).await;
    let base = service.base.clone();
    let r = client
        .post(format!("{base}/login"))
        .json(&json!({ "username": "alice", "password": ALICE_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = service.stop().await;
    assert!(!log.contains("route="), "{log}");
}

// ---- 15: users across restarts ------------------------------------------------------

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// On a file database, users keep their ids across restarts, and with them their
/// sessions and API keys; a user removed from the configuration loses every
/// credential at the next start (its refresh token answers `401`, never `200` with an
/// empty scope), and comes back, if added again, as a new account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_keep_their_ids_across_restarts_on_a_file_database() {
    let path = std::env::temp_dir().join(format!("token-axum-restart-{}.db", unique()));
    restarts_keep_user_ids(format!("sqlite://{}", path.display())).await;
    remove_sqlite(&path);
}

/// The same on PostgreSQL (when `TESSERA_TEST_DATABASE_URL` is set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_keep_their_ids_across_restarts_on_postgres() {
    let Some(db) = service_url(DATABASE_URL, "token-axum user ids on PostgreSQL") else {
        return;
    };
    let schema = PgSchema::create(&db).await;
    restarts_keep_user_ids(schema.url.clone()).await;
    schema.drop_now().await;
}

async fn restarts_keep_user_ids(database_url: String) {
    let on_file = || Options {
        database_url: database_url.clone(),
        ..Options::default()
    };

    let s = Service::start(on_file()).await;
    let (alice_id, bob_id) = (s.user_id("alice"), s.user_id("bob"));
    assert_ne!(alice_id, bob_id);
    let (_, alice_cookie) = s.login("alice", ALICE_PW).await;
    let (bob_access, bob_cookie) = s.login("bob", BOB_PW).await;
    let (_, bob_key) = s.new_api_key(&bob_access, "bob's script").await;
    s.server.stop().await;

    // Restarted on the same file: the same ids, and the sessions go on with full scope.
    let s = Service::start(on_file()).await;
    assert_eq!(s.user_id("alice"), alice_id);
    assert_eq!(s.user_id("bob"), bob_id);
    let (access, alice_cookie) = tokens(s.refresh(&alice_cookie).await, s.cookie_name()).await;
    let me: Value = s.get("/me", &access).await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["user_id"], alice_id.as_str());
    assert_eq!(me["scopes"], json!(["profile", "payments", "api-keys"]));
    let me: Value = s.get("/me", &bob_key).await.json().await.unwrap();
    assert_eq!(me["username"], "bob");
    s.server.stop().await;

    // Bob is removed: his refresh token and his key end.
    let s = Service::start_with_users(on_file(), &format!("alice:{ALICE_PW}")).await;
    assert_eq!(s.user_id("alice"), alice_id);
    assert!(s.app.user("bob").is_none());
    let r = s.refresh(&bob_cookie).await;
    assert_eq!(set_cookie(&r, s.cookie_name()).unwrap().0, "", "cleared");
    expect(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "revoked",
        &[&bob_cookie],
    )
    .await;
    expect(
        s.get("/me", &bob_key).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "revoked",
        &[&bob_key],
    )
    .await;
    tokens(s.refresh(&alice_cookie).await, s.cookie_name()).await;
    s.server.stop().await;

    // Bob added again is a new account.
    let s = Service::start(on_file()).await;
    assert_eq!(s.user_id("alice"), alice_id);
    assert_ne!(s.user_id("bob"), bob_id);
    s.server.stop().await;
}

/// A refresh token whose user no longer exists (here: a family started for an id that
/// is no user) revokes its family and answers `401`, never `200` with an empty scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_of_a_user_that_is_gone_revokes_its_family() {
    let s = Service::start(Options::default()).await;
    let refresh = s.app.service.opaque().unwrap().refresh();
    let issued = refresh.issue("usr_gone").await.unwrap();
    let cookie = issued.token.expose_secret().to_owned();
    let r = s.refresh(&cookie).await;
    assert_eq!(set_cookie(&r, s.cookie_name()).unwrap().0, "", "cleared");
    expect(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "revoked",
        &[&cookie],
    )
    .await;
    let family = refresh.family_of(&cookie).await.unwrap();
    assert!(family.revoked_at.is_some(), "the family is revoked");
    // Still refused the next time.
    assert_eq!(s.refresh(&cookie).await.status(), StatusCode::UNAUTHORIZED);
    s.server.stop().await;
}
