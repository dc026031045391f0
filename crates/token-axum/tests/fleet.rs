//! The reference service as a fleet: two instances on one database and one
//! key-encryption key share every key (a token from either works at both, a restart
//! keeps every token valid), and with Redis a revocation on one instance — logout, log
//! out everywhere, reuse detection, an API key revoked — is refused on the other
//! within the revocation bound.
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use token_core::test_support::{DATABASE_URL, REDIS_URL, service_url};
use token_opaque::GracePolicy;
use token_policy::keystore::Kek;

use auth_server::{App, KeyOptions, Options};
use common::{PgSchema, TestServer, http, set_cookie, unique};

const PW: &str = "correct horse battery";

struct Instance {
    server: TestServer,
    app: Arc<App>,
    http: reqwest::Client,
}

impl Instance {
    async fn start(options: Options) -> Self {
        let (router, app) = auth_server::build(Options {
            users: auth_server::parse_users(&format!("alice:{PW},bob:{PW}")).unwrap(),
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

    async fn post(
        &self,
        path: &str,
        body: Value,
        bearer: Option<&str>,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.server.url(path)).json(&body);
        if let Some(token) = bearer {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("{}={cookie}", self.app.cookie.name()));
        }
        request.send().await.unwrap()
    }

    async fn me(&self, bearer: &str) -> StatusCode {
        self.http
            .get(self.server.url("/me"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// The access token and refresh cookie of a login or refresh answer.
    async fn tokens(&self, r: reqwest::Response) -> (String, String) {
        assert_eq!(r.status(), StatusCode::OK, "{}", r.url());
        let cookie = set_cookie(&r, self.app.cookie.name()).unwrap().0.to_owned();
        let body: Value = r.json().await.unwrap();
        (body["access_token"].as_str().unwrap().to_owned(), cookie)
    }

    async fn login(&self, user: &str) -> (String, String) {
        let r = self
            .post(
                "/login",
                json!({"username": user, "password": PW}),
                None,
                None,
            )
            .await;
        self.tokens(r).await
    }

    async fn api_key(&self, access: &str) -> (String, String) {
        let r = self
            .post(
                "/api-keys",
                json!({"name": "ci", "scopes": ["profile"]}),
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

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-fleet-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A key-encryption key file in the directory.
    fn kek(&self) -> PathBuf {
        let path = self.0.join("kek");
        std::fs::write(&path, Kek::generate().unwrap().to_paserk().expose_secret()).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn keyed(database_url: &str, kek: &Path) -> Options {
    Options {
        database_url: database_url.to_owned(),
        keys: Some(KeyOptions {
            kek: kek.to_path_buf(),
            rotate_every: None,
            publish_ahead: None,
            refresh_every: None,
        }),
        ..Options::default()
    }
}

async fn shared_keys_and_restarts(database_url: &str, kek: &Path) {
    let a = Instance::start(keyed(database_url, kek)).await;
    let b = Instance::start(keyed(database_url, kek)).await;
    let (access_a, cookie_a) = a.login("alice").await;
    let (access_b, _) = b.login("bob").await;
    for i in [&a, &b] {
        assert_eq!(i.me(&access_a).await, StatusCode::OK);
        assert_eq!(i.me(&access_b).await, StatusCode::OK);
    }
    // A payment token issued by A is consumed at B.
    let r = a
        .post(
            "/payments/token",
            json!({"order_id": "o-1", "amount": 1200, "currency": "EUR",
                   "psp_card_token": "tok_visa", "idempotency_key": "k-1"}),
            Some(&access_a),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let payment: Value = r.json().await.unwrap();
    let r = b
        .post(
            "/payments/consume",
            json!({"payment_token": payment["payment_token"]}),
            Some(&access_a),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // An API key made at A works at B (the same pepper).
    let (_, key) = a.api_key(&access_a).await;
    assert_eq!(b.me(&key).await, StatusCode::OK);
    // B rotates A's refresh token.
    let (access_b2, cookie_b2) = b
        .tokens(b.post("/refresh", json!({}), None, Some(&cookie_a)).await)
        .await;

    // A restart: every token issued before it still works.
    a.server.stop().await;
    let a = Instance::start(keyed(database_url, kek)).await;
    for token in [&access_a, &access_b, &access_b2, &key] {
        assert_eq!(a.me(token).await, StatusCode::OK);
    }
    a.tokens(a.post("/refresh", json!({}), None, Some(&cookie_b2)).await)
        .await;
    b.server.stop().await;
    a.server.stop().await;
}

#[tokio::test]
async fn two_services_on_one_sqlite_file_share_keys_and_survive_restarts() {
    let dir = TempDir::new();
    let kek = dir.kek();
    let url = format!("sqlite://{}", dir.0.join("auth.db").display());
    shared_keys_and_restarts(&url, &kek).await;
}

#[tokio::test]
async fn two_services_on_postgres_share_keys_and_survive_restarts() {
    let Some(db) = service_url(DATABASE_URL, "token-axum fleet keys on PostgreSQL") else {
        return;
    };
    let dir = TempDir::new();
    let kek = dir.kek();
    let schema = PgSchema::create(&db).await;
    shared_keys_and_restarts(&schema.url, &kek).await;
    schema.drop_now().await;
}

#[tokio::test]
async fn without_a_kek_a_restart_ends_every_token() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("auth.db").display());
    let options = || Options {
        database_url: url.clone(),
        ..Options::default()
    };
    let a = Instance::start(options()).await;
    let (access, _) = a.login("alice").await;
    a.server.stop().await;
    let a = Instance::start(options()).await;
    assert_eq!(a.me(&access).await, StatusCode::UNAUTHORIZED);
    a.server.stop().await;
}

#[tokio::test]
async fn a_wrong_kek_stops_the_start_with_a_clear_error() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("auth.db").display());
    let kek = dir.kek();
    Instance::start(keyed(&url, &kek)).await.server.stop().await;
    let other = dir.0.join("other-kek");
    std::fs::write(&other, Kek::generate().unwrap().to_paserk().expose_secret()).unwrap();
    let err = auth_server::build(keyed(&url, &other)).await.err().unwrap();
    let text = format!("{err:#}");
    assert!(text.contains("wrong key-encryption key"), "{text}");
}

/// Waits until `f` holds, for at most `bound`; the time taken.
async fn within<F, Fut>(bound: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !f().await {
        assert!(t.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_service_is_refused_on_the_other_within_the_bound() {
    let (Some(db), Some(redis)) = (
        service_url(DATABASE_URL, "token-axum fleet revocation on PostgreSQL"),
        service_url(REDIS_URL, "token-axum fleet revocation on Redis"),
    ) else {
        return;
    };
    let dir = TempDir::new();
    let kek = dir.kek();
    let schema = PgSchema::create(&db).await;
    let bound = Duration::from_secs(2);
    let options = || Options {
        redis_url: Some(redis.clone()),
        revocation_max_staleness: Some(bound),
        // Every repeat of a rotated refresh token is reuse.
        refresh_grace: GracePolicy::disabled(),
        ..keyed(&schema.url, &kek)
    };
    let a = Instance::start(options()).await;
    let b = Instance::start(options()).await;

    // Logout on A.
    let (access, cookie) = a.login("alice").await;
    assert_eq!(b.me(&access).await, StatusCode::OK);
    let r = a
        .post("/logout", json!({}), Some(&access), Some(&cookie))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let t = within(bound, "logout reaches b", || async {
        b.me(&access).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("logout on A refused on B after {t:?}");

    // Log out everywhere on A.
    let (access, _) = a.login("alice").await;
    let (other, _) = b.login("alice").await;
    assert_eq!(b.me(&access).await, StatusCode::OK);
    let r = a
        .post("/logout-everywhere", json!({}), Some(&access), None)
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    within(bound, "logout-everywhere reaches b", || async {
        b.me(&other).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // Reuse detection on A: the family's access tokens are refused on B.
    let (access, cookie) = a.login("bob").await;
    a.tokens(a.post("/refresh", json!({}), None, Some(&cookie)).await)
        .await;
    let r = a.post("/refresh", json!({}), None, Some(&cookie)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    within(bound, "reuse detection reaches b", || async {
        b.me(&access).await == StatusCode::UNAUTHORIZED
    })
    .await;

    // An API key revoked on A, after B verified (and cached) it.
    let (access, _) = a.login("bob").await;
    let (id, key) = a.api_key(&access).await;
    assert_eq!(b.me(&key).await, StatusCode::OK);
    assert_eq!(b.me(&key).await, StatusCode::OK);
    let r = a
        .http
        .delete(a.server.url(&format!("/api-keys/{id}")))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let t = within(bound, "API-key revocation reaches b", || async {
        b.me(&key).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("API key revoked on A refused on B after {t:?}");

    a.server.stop().await;
    b.server.stop().await;
    schema.drop_now().await;
}
