//! The reference service (`examples/auth_server.rs`) on a loopback port, driven with
//! reqwest through every flow and every failure: once on SQLite with the in-process
//! revocation list, once on PostgreSQL + Redis (mandatory in CI).
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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, COOKIE, WWW_AUTHENTICATE};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use token_core::test_support::{DATABASE_URL, REDIS_URL, service_url};
use token_core::{Claims, Clock, FixedClock, SystemClock, TokenSigner};
use token_policy::AccessClaims;

use auth_server::{App, Mail, Mailer, Options, UserClaims};
use common::{PgSchema, TestServer, http, set_cookie, unique};

const ALICE_PW: &str = "correct horse battery";
const BOB_PW: &str = "hunter2-but-longer";

struct Running {
    server: TestServer,
    app: Arc<App>,
    outbox: Arc<Mutex<Vec<Mail>>>,
    http: reqwest::Client,
}

impl Running {
    async fn start(
        database_url: String,
        redis_url: Option<String>,
        insecure_cookies: bool,
    ) -> Self {
        let outbox = Arc::new(Mutex::new(Vec::new()));
        let users = auth_server::parse_users(&format!("alice:{ALICE_PW},bob:{BOB_PW}")).unwrap();
        let (router, app) = auth_server::build(Options {
            database_url,
            redis_url,
            users,
            insecure_cookies,
            mailer: Mailer::Memory(outbox.clone()),
            max_api_keys: 5,
            ..Options::default()
        })
        .await
        .unwrap();
        Self {
            server: TestServer::start(router).await,
            app,
            outbox,
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

    async fn get(&self, path: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        request.send().await.unwrap()
    }

    /// Logs in; the access token and the refresh cookie.
    async fn login(&self, user: &str, password: &str) -> (String, String) {
        let response = self
            .post(
                "/login",
                &json!({ "username": user, "password": password }),
                None,
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let refresh = set_cookie(&response, self.cookie_name())
            .unwrap()
            .0
            .to_owned();
        let body: Value = response.json().await.unwrap();
        (body["access_token"].as_str().unwrap().to_owned(), refresh)
    }

    fn user_id(&self, name: &str) -> String {
        self.app.user(name).unwrap().id.clone()
    }
}

/// Checks an error response: status, JSON `error` (and description), the RFC 6750
/// challenge, and that no `leak` string appears in it.
async fn expect_error(
    response: reqwest::Response,
    status: StatusCode,
    error: &str,
    description: Option<&str>,
    leaks: &[&str],
) {
    assert_eq!(response.status(), status, "{}", response.url());
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(response.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    let text = response.text().await.unwrap();
    for leak in leaks {
        assert!(!text.contains(leak), "the body repeats a secret: {text}");
        if let Some(c) = &challenge {
            assert!(!c.contains(leak), "the challenge repeats a secret: {c}");
        }
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"], error, "{text}");
    assert_eq!(body["error_description"].as_str(), description, "{text}");
    // Only a refusal of the caller's credential is `401`.
    assert_eq!(
        status == StatusCode::UNAUTHORIZED,
        matches!(
            error,
            "invalid_token" | "unauthorized" | "invalid_credentials"
        ),
        "{status} {error}"
    );
    // Authentication errors carry an RFC 6750 challenge; a malformed body does not,
    // nor does a refused token of the body (it is not the caller's credential).
    if !matches!(
        error,
        "invalid_token" | "insufficient_scope" | "unauthorized" | "invalid_credentials"
    ) {
        assert!(
            challenge.is_none() || error == "invalid_request",
            "{error} answered with a challenge: {challenge:?}"
        );
    }
    let challenge = if matches!(error, "invalid_token" | "insufficient_scope") {
        Some(challenge.expect("a WWW-Authenticate challenge"))
    } else {
        challenge.filter(|_| error == "invalid_request")
    };
    if let Some(c) = challenge {
        assert!(c.starts_with("Bearer "), "{c}");
        assert!(c.contains(&format!("error=\"{error}\"")), "{c}");
        if let Some(d) = description {
            assert!(c.contains(&format!("error_description=\"{d}\"")), "{c}");
        }
    }
}

/// An access token signed with the service's own key, with claims the test picks.
fn forged_access(app: &App, subject: &str, audience: &str, issued_ago: Duration) -> String {
    let now = SystemClock.now().unix_seconds();
    let issued = token_core::Timestamp::from_unix_seconds(
        now - i64::try_from(issued_ago.as_secs()).unwrap(),
    )
    .unwrap();
    let claims = Claims::new(AccessClaims {
        sid: "forged".to_owned(),
        cnf: None,
        session: UserClaims {
            role: "user".into(),
            scope: "profile".into(),
        },
    })
    .issuer(auth_server::ISSUER)
    .subject(subject)
    .audience(audience)
    .random_token_id()
    .unwrap()
    .valid_for(&FixedClock(issued), Duration::from_secs(600))
    .unwrap();
    app.service
        .access_keys()
        .sign(&claims)
        .unwrap()
        .expose_secret()
        .to_owned()
}

async fn key_sets_and_login(s: &Running) -> (String, String) {
    // The key sets: PASETO access keys, so the JWKS is empty.
    let jwks = s.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status(), StatusCode::OK);
    assert_eq!(jwks.headers()["content-type"], "application/jwk-set+json");
    assert_eq!(jwks.headers()[CACHE_CONTROL], "public, max-age=300");
    assert_eq!(jwks.json::<Value>().await.unwrap(), json!({ "keys": [] }));
    let paserk = s.get("/.well-known/paseto-keys.json", None).await;
    assert_eq!(paserk.status(), StatusCode::OK);
    assert_eq!(paserk.headers()[CACHE_CONTROL], "public, max-age=300");
    let set: Value = paserk.json().await.unwrap();
    assert_eq!(set["keys"].as_array().unwrap().len(), 1);
    assert!(
        set["keys"][0]["kid"]
            .as_str()
            .unwrap()
            .starts_with("k4.pid.")
    );
    assert!(!set.to_string().contains("secret"));

    // Login failures look alike.
    for (user, password) in [("alice", "wrong password"), ("mallory", ALICE_PW)] {
        let r = s
            .post(
                "/login",
                &json!({ "username": user, "password": password }),
                None,
                None,
            )
            .await;
        assert!(set_cookie(&r, s.cookie_name()).is_none());
        expect_error(
            r,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            None,
            &[password],
        )
        .await;
    }
    let r = s
        .post("/login", &json!({ "username": "alice" }), None, None)
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("missing field `password`"),
        &[],
    )
    .await;

    // Login.
    let r = s
        .post(
            "/login",
            &json!({ "username": "alice", "password": ALICE_PW }),
            None,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    let (refresh, header) = set_cookie(&r, s.cookie_name()).unwrap();
    let refresh = refresh.to_owned();
    assert!(refresh.starts_with("rt_"));
    for attr in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age="] {
        assert!(header.contains(attr), "{header}");
    }
    assert_eq!(
        header.contains("Secure"),
        s.cookie_name().starts_with("__Host-"),
        "{header}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert!(access.starts_with("v4.public."));
    assert!(
        !body.to_string().contains("rt_"),
        "the refresh token stays in the cookie"
    );

    // The published key set verifies the token, fetched by the client a verifier uses.
    #[cfg(feature = "client")]
    {
        use token_axum::KeySetClient;
        use token_core::{RegisteredClaim, Validation};

        let client = KeySetClient::builder(
            &s.url("/.well-known/paseto-keys.json"),
            token_axum::KeySetFormat::Paseto,
        )
        .unwrap()
        .use_system_proxy(false)
        .build()
        .unwrap();
        let validation = Validation::new()
            .issuer(auth_server::ISSUER)
            .audience(auth_server::AUDIENCE)
            .require(RegisteredClaim::Sub);
        let verified = client.verify::<Value>(&access, &validation).await.unwrap();
        assert_eq!(
            verified.claims().sub.as_deref(),
            Some(s.user_id("alice").as_str())
        );
    }
    (access, refresh)
}

async fn me_and_bearer_failures(s: &Running, access: &str, refresh: &str) {
    let r = s.get("/me", Some(access)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["user_id"], s.user_id("alice"));
    assert_eq!(me["credential"], "access_token");
    assert_eq!(me["scopes"], json!(["profile", "payments", "api-keys"]));

    // No credentials: a bare challenge.
    let r = s.get("/me", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()[WWW_AUTHENTICATE],
        "Bearer realm=\"tessera-reference-auth\""
    );
    let r = s
        .http
        .get(s.url("/me"))
        .header(AUTHORIZATION, "Basic YWxpY2U6cHc=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Bad tokens, each with its reason and nothing else.
    let mut tampered = access.to_owned();
    let i = "v4.public.".len() + 20;
    let flipped = if &tampered[i..=i] == "A" { "B" } else { "A" };
    tampered.replace_range(i..=i, flipped);
    let other_key = {
        let issuer = token_paseto::PublicIssuer::new(
            token_paseto::SecretKey::<token_paseto::V4>::generate().unwrap(),
        );
        let claims = Claims::new(json!({ "sid": "x" }))
            .issuer(auth_server::ISSUER)
            .subject(s.user_id("alice"))
            .audience(auth_server::AUDIENCE)
            .random_token_id()
            .unwrap()
            .valid_for(&SystemClock, Duration::from_secs(60))
            .unwrap();
        issuer.sign(&claims).unwrap().expose_secret().to_owned()
    };
    let expired = forged_access(
        &s.app,
        &s.user_id("alice"),
        auth_server::AUDIENCE,
        Duration::from_secs(3600),
    );
    let wrong_aud = forged_access(&s.app, &s.user_id("alice"), "billing", Duration::ZERO);
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "not-a-token".into(), "malformed token"),
        ("tampered", tampered, "invalid token"),
        ("foreign key", other_key, "unknown key"),
        ("expired", expired, "expired"),
        ("wrong audience", wrong_aud, "wrong audience"),
        (
            "refresh token as access token",
            refresh.to_owned(),
            "wrong token type",
        ),
    ];
    for (what, token, reason) in &cases {
        let r = s.get("/me", Some(token)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        expect_error(
            r,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            Some(reason),
            &[token.as_str()],
        )
        .await;
    }
    // Two credentials, and an empty bearer, are malformed requests.
    let r = s
        .http
        .get(s.url("/me"))
        .header(AUTHORIZATION, format!("Bearer {access}"))
        .header("x-api-key", "sk_test_whatever")
        .send()
        .await
        .unwrap();
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("more than one credential"),
        &[access],
    )
    .await;
    let r = s
        .http
        .get(s.url("/me"))
        .header(AUTHORIZATION, "Bearer ")
        .send()
        .await
        .unwrap();
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("empty bearer token"),
        &[],
    )
    .await;
}

async fn refresh_rotation_and_replay(s: &Running, refresh: &str) {
    let r = s.post("/refresh", &json!({}), None, None).await;
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized", None, &[]).await;

    let r = s.post("/refresh", &json!({}), None, Some(refresh)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let next = set_cookie(&r, s.cookie_name()).unwrap().0.to_owned();
    assert_ne!(next, refresh);
    let body: Value = r.json().await.unwrap();
    let new_access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get("/me", Some(&new_access)).await.status(),
        StatusCode::OK
    );

    // Presented again at once (two tabs, a lost response): the grace window answers
    // with the same successor, and mints nothing.
    let r = s.post("/refresh", &json!({}), None, Some(refresh)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(set_cookie(&r, s.cookie_name()).unwrap().0, next);
    // The successor rotates on; the first token, two rotations old, is a replay: 401,
    // and the family is revoked.
    let r = s.post("/refresh", &json!({}), None, Some(&next)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let next = set_cookie(&r, s.cookie_name()).unwrap().0.to_owned();
    let r = s.post("/refresh", &json!({}), None, Some(refresh)).await;
    let (cleared, _) = set_cookie(&r, s.cookie_name()).unwrap();
    assert_eq!(cleared, "");
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("reuse detected: session revoked"),
        &[refresh],
    )
    .await;
    let r = s.post("/refresh", &json!({}), None, Some(&next)).await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("revoked"),
        &[&next],
    )
    .await;
    let r = s
        .post("/refresh", &json!({}), None, Some("rt_garbage"))
        .await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("malformed token"),
        &[],
    )
    .await;
}

async fn logout_revokes_both(s: &Running) {
    let (access, refresh) = s.login("alice", ALICE_PW).await;
    let r = s.post("/logout", &json!({}), None, None).await;
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized", None, &[]).await;
    // The wrong kind of credential is a client error that revokes nothing: a refresh
    // token or an API key as the bearer, an access token as the cookie.
    let r = s
        .post(
            "/api-keys",
            &json!({ "name": "logout-probe", "scopes": ["profile"] }),
            Some(&access),
            None,
        )
        .await;
    let key: Value = r.json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    for (bearer, cookie) in [
        (Some(refresh.as_str()), None),
        (Some(key.as_str()), None),
        (None, Some(access.as_str())),
    ] {
        let r = s.post("/logout", &json!({}), bearer, cookie).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bearer:?} {cookie:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
    assert_eq!(s.get("/me", Some(&access)).await.status(), StatusCode::OK);
    let r = s.post("/refresh", &json!({}), None, Some(&refresh)).await;
    assert_eq!(r.status(), StatusCode::OK, "the refresh token still works");
    let refresh = set_cookie(&r, s.cookie_name()).unwrap().0.to_owned();
    let access: String = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .post("/logout", &json!({}), Some(&access), Some(&refresh))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(set_cookie(&r, s.cookie_name()).unwrap().0, "");
    let r = s.get("/me", Some(&access)).await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("revoked"),
        &[&access],
    )
    .await;
    let r = s.post("/refresh", &json!({}), None, Some(&refresh)).await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("revoked"),
        &[&refresh],
    )
    .await;
    // Logging out again is harmless.
    let r = s
        .post("/logout", &json!({}), Some(&access), Some(&refresh))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

async fn payments(s: &Running) {
    let (alice, _) = s.login("alice", ALICE_PW).await;
    let (bob, _) = s.login("bob", BOB_PW).await;
    let order = json!({
        "order_id": "o-17",
        "amount": 4200,
        "currency": "EUR",
        "psp_card_token": "tok_visa_4242",
        "idempotency_key": format!("idem-{}", unique()),
    });
    let r = s.post("/payments/token", &order, None, None).await;
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized", None, &[]).await;
    let mut bad = order.clone();
    bad["currency"] = json!("eur");
    let r = s.post("/payments/token", &bad, Some(&alice), None).await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("currency must be an ISO 4217 code"),
        &[],
    )
    .await;
    let mut extra = order.clone();
    extra["surprise"] = json!(1);
    let r = s.post("/payments/token", &extra, Some(&alice), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = s.post("/payments/token", &order, Some(&alice), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    let token = r.json::<Value>().await.unwrap()["payment_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("v4.local."));
    assert!(!token.contains("o-17") && !token.contains("tok_visa"));

    // Another user: the implicit assertion differs, so decryption fails. Bob's own
    // access token is fine: 403, not 401.
    let consume = json!({ "payment_token": token });
    let r = s
        .post("/payments/consume", &consume, Some(&bob), None)
        .await;
    expect_error(
        r,
        StatusCode::FORBIDDEN,
        "payment_token_not_yours",
        Some("invalid token"),
        &[&token, "tok_visa"],
    )
    .await;
    assert_eq!(s.get("/me", Some(&bob)).await.status(), StatusCode::OK);
    // Not a payment token at all: 400.
    for (bad, reason) in [
        ("v4.local.garbage", "malformed token"),
        (alice.as_str(), "wrong token type"),
    ] {
        let r = s
            .post(
                "/payments/consume",
                &json!({ "payment_token": bad }),
                Some(&alice),
                None,
            )
            .await;
        expect_error(
            r,
            StatusCode::BAD_REQUEST,
            "invalid_payment_token",
            Some(reason),
            &[bad],
        )
        .await;
    }
    // A payment token is no access token.
    let r = s.get("/me", Some(&token)).await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("wrong token type"),
        &[&token],
    )
    .await;

    let r = s
        .post("/payments/consume", &consume, Some(&alice), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), order);
    let r = s
        .post("/payments/consume", &consume, Some(&alice), None)
        .await;
    expect_error(
        r,
        StatusCode::CONFLICT,
        "payment_token_used",
        Some("already used"),
        &[&token],
    )
    .await;
}

/// Body and routing errors: `413` over the limit, `415` for another content type, and
/// every error JSON, extractor rejections and `405` included.
async fn body_and_routing_errors(s: &Running) {
    let (alice, _) = s.login("alice", ALICE_PW).await;
    let big = json!({ "name": "x".repeat(20 * 1024) });
    let r = s.post("/api-keys", &big, Some(&alice), None).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    let r = s
        .http
        .post(s.url("/login"))
        .header("content-type", "text/plain")
        .body(r#"{"username":"alice","password":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");
    let r = s
        .http
        .delete(s.url("/api-keys/%ff"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(
        r.headers()["content-type"],
        "application/json",
        "{:?}",
        r.headers()
    );
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    let r = s.get("/login", None).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers().contains_key("allow"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
}

/// A user holds at most `max_api_keys` live keys (5 here); a revoked key frees a place.
async fn api_keys_are_bounded(s: &Running) {
    let (alice, _) = s.login("alice", ALICE_PW).await;
    let mut created = Vec::new();
    let mut refused = None;
    for i in 0..10 {
        let r = s
            .post(
                "/api-keys",
                &json!({ "name": format!("bulk-{i}"), "scopes": ["profile"] }),
                Some(&alice),
                None,
            )
            .await;
        if r.status() == StatusCode::CREATED {
            created.push(
                r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        } else {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the sixth live key is refused");
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "limit_reached");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("5 live API keys"), "{description}");
    let r = s
        .http
        .delete(s.url(&format!("/api-keys/{}", created[0])))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .post("/api-keys", &json!({ "name": "freed" }), Some(&alice), None)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

async fn api_keys(s: &Running) {
    let (alice, _) = s.login("alice", ALICE_PW).await;
    let (bob, _) = s.login("bob", BOB_PW).await;
    let r = s
        .post(
            "/api-keys",
            &json!({ "name": "ci", "scopes": ["profile"] }),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_test_"));
    assert_eq!(created["scopes"], json!(["profile"]));
    assert_eq!(created["environment"], "test");

    // The key works in Authorization and in X-Api-Key.
    let r = s.get("/me", Some(&key)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(
        (me["credential"].as_str(), me["username"].as_str()),
        (Some("api_key"), Some("alice"))
    );
    let r = s
        .http
        .get(s.url("/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A key without the route's scope: 403 insufficient_scope.
    let r = s
        .post(
            "/api-keys",
            &json!({ "name": "no-profile", "scopes": ["payments"], "environment": "live" }),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let narrow: Value = r.json().await.unwrap();
    assert!(narrow["key"].as_str().unwrap().starts_with("sk_live_"));
    let r = s.get("/me", narrow["key"].as_str()).await;
    let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.contains("scope=\"profile\""), "{challenge}");
    expect_error(
        r,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        Some("the token lacks a required scope"),
        &[],
    )
    .await;
    // Nor does an API key reach the access-token-only routes.
    let r = s
        .post("/payments/token", &json!({}), narrow["key"].as_str(), None)
        .await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("wrong token type"),
        &[],
    )
    .await;
    let r = s
        .post("/api-keys", &json!({ "name": "x" }), Some(&key), None)
        .await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("wrong token type"),
        &[&key],
    )
    .await;

    // Scopes a key may not have, and bad names.
    let r = s
        .post(
            "/api-keys",
            &json!({ "name": "mint", "scopes": ["api-keys"] }),
            Some(&alice),
            None,
        )
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("a requested scope cannot be granted to an API key"),
        &[],
    )
    .await;
    let r = s
        .post("/api-keys", &json!({ "name": "" }), Some(&alice), None)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A typo is refused by its checksum.
    let mut typo = key.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    let r = s.get("/me", Some(&typo)).await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("checksum mismatch"),
        &[&typo],
    )
    .await;

    // Revocation: only by the owner.
    let r = s
        .http
        .delete(s.url(&format!("/api-keys/{id}")))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(s.get("/me", Some(&key)).await.status(), StatusCode::OK);
    let r = s
        .http
        .delete(s.url(&format!("/api-keys/{id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.get("/me", Some(&key)).await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("revoked"),
        &[&key],
    )
    .await;
    let r = s
        .http
        .delete(s.url("/api-keys/nope"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .http
        .delete(s.url(&format!("/api-keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

fn take_mail(s: &Running) -> Vec<(String, SecretString)> {
    s.outbox
        .lock()
        .unwrap()
        .drain(..)
        .map(|m| (m.to, m.token))
        .collect()
}

/// Waits (a bounded time) until `n` messages have been delivered, and takes them.
async fn wait_for_mail(s: &Running, n: usize) -> Vec<(String, SecretString)> {
    for _ in 0..100 {
        if s.outbox.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    take_mail(s)
}

async fn password_reset(s: &Running) {
    let (old_access, old_refresh) = s.login("bob", BOB_PW).await;
    let (other_access, _) = s.login("alice", ALICE_PW).await;
    take_mail(s);
    // A key made while someone else held the account does not survive the reset.
    let r = s
        .post(
            "/api-keys",
            &json!({ "name": "left-behind", "scopes": ["profile"] }),
            Some(&old_access),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let planted: Value = r.json().await.unwrap();
    let planted = planted["key"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/me", Some(&planted)).await.status(), StatusCode::OK);

    let r = s
        .post("/password-reset", &json!({ "username": "bob" }), None, None)
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let accepted: Value = r.json().await.unwrap();
    assert!(
        !accepted.to_string().contains("prt_"),
        "the token goes by mail only"
    );
    let mails = wait_for_mail(s, 1).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, "bob");
    let token = mails[0].1.expose_secret().to_owned();
    assert!(token.starts_with("prt_"));

    // No answer tells an account from a stranger: a repeat for bob (rate-limited by
    // the store, so no second mail) and two requests for an unknown name all get the
    // same status, headers and body.
    let nobody = format!("nobody-{}", unique());
    let mut answers = Vec::new();
    for name in ["bob", nobody.as_str(), nobody.as_str(), "bob"] {
        let r = s
            .post("/password-reset", &json!({ "username": name }), None, None)
            .await;
        let mut headers: Vec<String> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date" && *k != "content-length")
            .map(|(k, v)| format!("{k}: {v:?}"))
            .collect();
        headers.sort();
        answers.push((r.status(), headers, r.text().await.unwrap()));
    }
    assert_eq!(answers[0].0, StatusCode::ACCEPTED);
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    // The worker has had the time to send what it would send.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(take_mail(s).is_empty());

    // Confirmation failures.
    let new_pw = "a much better password";
    let r = s
        .post(
            "/password-reset/confirm",
            &json!({ "token": token, "new_password": "short" }),
            None,
            None,
        )
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("a password is 8 to 1024 bytes"),
        &[&token],
    )
    .await;
    let r = s
        .post(
            "/password-reset/confirm",
            &json!({ "token": "prt_nope", "new_password": new_pw }),
            None,
            None,
        )
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_reset_token",
        Some("malformed token"),
        &[new_pw],
    )
    .await;
    let r = s
        .post(
            "/password-reset/confirm",
            &json!({ "token": old_refresh, "new_password": new_pw }),
            None,
            None,
        )
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_reset_token",
        Some("wrong token type"),
        &[&old_refresh],
    )
    .await;

    let r = s
        .post(
            "/password-reset/confirm",
            &json!({ "token": token, "new_password": new_pw }),
            None,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Single use.
    let r = s
        .post(
            "/password-reset/confirm",
            &json!({ "token": token, "new_password": new_pw }),
            None,
            None,
        )
        .await;
    expect_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_reset_token",
        Some("unknown token"),
        &[&token],
    )
    .await;

    // Every credential of bob ended, API keys included; alice's did not.
    let r = s.get("/me", Some(&planted)).await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("revoked"),
        &[&planted],
    )
    .await;
    let r = s.get("/me", Some(&old_access)).await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("revoked"),
        &[&old_access],
    )
    .await;
    let r = s
        .post("/refresh", &json!({}), None, Some(&old_refresh))
        .await;
    expect_error(
        r,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        Some("revoked"),
        &[&old_refresh],
    )
    .await;
    assert_eq!(
        s.get("/me", Some(&other_access)).await.status(),
        StatusCode::OK
    );
    // The old password is gone; the new one works at once.
    let r = s
        .post(
            "/login",
            &json!({ "username": "bob", "password": BOB_PW }),
            None,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (fresh, _) = s.login("bob", new_pw).await;
    assert_eq!(s.get("/me", Some(&fresh)).await.status(), StatusCode::OK);
}

async fn every_flow(s: &Running) {
    let (access, refresh) = key_sets_and_login(s).await;
    me_and_bearer_failures(s, &access, &refresh).await;
    refresh_rotation_and_replay(s, &refresh).await;
    logout_revokes_both(s).await;
    payments(s).await;
    api_keys(s).await;
    api_keys_are_bounded(s).await;
    body_and_routing_errors(s).await;
    password_reset(s).await;
    let r = s.get("/nowhere", None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_on_sqlite() {
    let path = std::env::temp_dir().join(format!("token-axum-e2e-{}.db", unique()));
    let s = Running::start(format!("sqlite://{}", path.display()), None, false).await;
    assert_eq!(s.cookie_name(), "__Host-refresh");
    every_flow(&s).await;
    s.server.stop().await;
    remove_sqlite(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_on_postgres_and_redis() {
    let (Some(db), Some(redis)) = (
        service_url(DATABASE_URL, "token-axum end to end on PostgreSQL"),
        service_url(REDIS_URL, "token-axum end to end on Redis"),
    ) else {
        return;
    };
    let schema = PgSchema::create(&db).await;
    // Plain-HTTP cookies here, `__Host-` ones on SQLite: both modes are covered.
    let s = Running::start(schema.url.clone(), Some(redis), true).await;
    assert_eq!(s.cookie_name(), "refresh");
    every_flow(&s).await;
    s.server.stop().await;
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_database_is_the_default() {
    let args = <auth_server::Args as clap::Parser>::try_parse_from([
        "auth_server",
        "--addr",
        "127.0.0.1:0",
        "--demo-users",
        "alice:PASSWORD1,bob:PASSWORD2",
    ])
    .unwrap();
    assert_eq!(args.database_url, "sqlite::memory:");
    let options = Options::from_args(args).unwrap();
    assert_eq!(options.users.len(), 2);
    assert!(!options.insecure_cookies);
    // Bad user lists are refused without echoing a password.
    for bad in [
        "alice",
        "alice:short",
        "al ice:long-enough",
        "a:long-enough,a:long-enough2",
    ] {
        let err = auth_server::parse_users(bad).unwrap_err().to_string();
        assert!(
            !err.contains("short") && !err.contains("long-enough"),
            "{err}"
        );
    }
}

/// The example binary itself, started with the documented command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_binary_serves_the_documented_command_line() {
    use tokio::io::AsyncBufReadExt;
    // target/<profile>/deps/e2e-… → target/<profile>/examples/auth_server
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|d| {
            d.join("examples")
                .join(format!("auth_server{}", std::env::consts::EXE_SUFFIX))
        })
        .unwrap();
    if !bin.exists() {
        eprintln!(
            "!!! SKIPPED example binary test: {} is not built (run `cargo test -p token-axum`)",
            bin.display()
        );
        return;
    }
    let mail_dir = std::env::temp_dir().join(format!("token-axum-mail-{}", unique()));
    let mut child = tokio::process::Command::new(&bin)
        .args([
            "--addr",
            "127.0.0.1:0",
            "--demo-users",
            &format!("alice:{ALICE_PW},bob:{BOB_PW}"),
        ])
        .arg("--insecure-cookies")
        .arg("--mail-dir")
        .arg(&mail_dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = line
        .strip_prefix("auth_server listening on ")
        .unwrap()
        .to_owned();
    let client = http();
    let r = client
        .post(format!("{base}/login"))
        .json(&json!({ "username": "alice", "password": ALICE_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(&r, "refresh").unwrap().1.contains("HttpOnly"));
    let access = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = client
        .get(format!("{base}/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Password-reset mail lands in the mail directory, readable by its owner only.
    let r = client
        .post(format!("{base}/password-reset"))
        .json(&json!({ "username": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // The mail is written off the request path: wait for it, a bounded time.
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails = std::fs::read_dir(&mail_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let written = mails
            .iter()
            .all(|m| std::fs::read_to_string(m).is_ok_and(|t| t.contains("prt_")));
        if !mails.is_empty() && written {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(mails.len(), 1);
    assert!(std::fs::read_to_string(&mails[0]).unwrap().contains("prt_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&mails[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&mail_dir);
}

#[test]
fn the_connection_limits_are_flags_with_the_serving_defaults() {
    let parse = |extra: &[&str]| {
        let mut line = vec!["auth_server"];
        line.extend_from_slice(extra);
        <auth_server::Args as clap::Parser>::try_parse_from(line)
    };
    let defaults = parse(&[]).unwrap();
    assert_eq!(
        defaults.serve_limits(),
        token_axum::serve::ServeLimits::default()
    );
    let set = parse(&[
        "--header-read-timeout",
        "2s",
        "--body-read-timeout",
        "1500ms",
        "--idle-timeout",
        "2m",
        "--write-timeout",
        "1h",
        "--max-connections",
        "50",
    ])
    .unwrap()
    .serve_limits();
    assert_eq!(set.header_read_timeout, Duration::from_secs(2));
    assert_eq!(set.body_read_timeout, Duration::from_millis(1500));
    assert_eq!(set.idle_timeout, Duration::from_secs(120));
    assert_eq!(set.write_timeout, Duration::from_secs(3600));
    assert_eq!(set.max_connections, 50);
    for bad in [
        ["--header-read-timeout", "10"],
        ["--header-read-timeout", "0s"],
        ["--header-read-timeout", "1.5s"],
        ["--header-read-timeout", "-1s"],
        ["--header-read-timeout", "5w"],
        ["--idle-timeout", "99999999999999999999h"],
        ["--idle-timeout", "18446744073709551615h"],
        ["--max-connections", "0"],
        ["--max-connections", "-3"],
    ] {
        assert!(parse(&bad).is_err(), "{bad:?}");
    }
}
