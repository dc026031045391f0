//! The extractors, the layer and the key-set handlers, in process (no sockets): every
//! rejection answers as RFC 6750 says and leaks nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use token_axum::{
    Access, AuthLayer, AuthState, Credential, Principal, VerifiedApiKey, VerifiedSession,
    well_known,
};
#[cfg(feature = "jwt")]
use token_core::Clock;
use token_core::Timestamp;
#[cfg(feature = "jwt")]
use token_jwt::{Algorithm, SigningKey, SigningKeySet, TokenType};
use token_opaque::{Environment, NewApiKey, OpaqueTokens, SessionCookie};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, SecretKey, V4};
use token_policy::{AccessKey, Blocklist, MemoryBlocklist, Policy, TokenService};
use tower::ServiceExt;

use common::ManualClock;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Claims {
    role: String,
    scope: String,
}

fn claims(scope: &str) -> Claims {
    Claims {
        role: "admin".into(),
        scope: scope.into(),
    }
}

/// Counts revocation checks, and fails them on demand with a message that must not
/// reach a client.
struct Probe {
    inner: MemoryBlocklist,
    checks: AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Blocklist for Probe {
    async fn revoke(&self, jti: &str, expires_at: Timestamp) -> token_policy::Result<bool> {
        self.inner.revoke(jti, expires_at).await
    }
    async fn is_revoked(&self, jti: &str) -> token_policy::Result<bool> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(token_policy::Error::Backend(
                "redis://:hunter2@10.1.2.3 refused".into(),
            ));
        }
        self.inner.is_revoked(jti).await
    }
    async fn revoke_subject_before(
        &self,
        subject: &str,
        cutoff: Timestamp,
        keep_until: Timestamp,
    ) -> token_policy::Result<()> {
        self.inner
            .revoke_subject_before(subject, cutoff, keep_until)
            .await
    }
    async fn subject_cutoff(&self, subject: &str) -> token_policy::Result<Option<Timestamp>> {
        self.inner.subject_cutoff(subject).await
    }
    async fn revoke_session(&self, sid: &str, keep_until: Timestamp) -> token_policy::Result<()> {
        self.inner.revoke_session(sid, keep_until).await
    }
    async fn is_session_revoked(&self, sid: &str) -> token_policy::Result<bool> {
        self.inner.is_session_revoked(sid).await
    }
    async fn consume(
        &self,
        subject: &str,
        jti: &str,
        expires_at: Timestamp,
    ) -> token_policy::Result<bool> {
        self.inner.consume(subject, jti, expires_at).await
    }
}

struct Fixture {
    service: Arc<TokenService>,
    clock: Arc<ManualClock>,
    probe: Arc<Probe>,
    app: Router,
}

async fn fixture_with(access: AccessKey) -> Fixture {
    let clock = ManualClock::new();
    let store = token_policy::config::open_store("sqlite::memory:")
        .await
        .unwrap();
    let opaque = OpaqueTokens::builder(store)
        .clock(clock.clone())
        .build()
        .unwrap();
    let probe = Arc::new(Probe {
        inner: MemoryBlocklist::with_capacity(1000, clock.clone()),
        checks: AtomicUsize::new(0),
        fail: false.into(),
    });
    let service = Arc::new(
        TokenService::builder(Policy::new("https://auth.example", "api"), access)
            .payment(LocalCipher::new(LocalKey::<V4>::generate().unwrap()))
            .opaque(opaque)
            .blocklist(probe.clone())
            .clock(clock.clone())
            .build(),
    );
    let state = AuthState::new(service.clone())
        .api_key_header(header::HeaderName::from_static("x-api-key"))
        .realm("api");
    let all = [
        Credential::AccessToken,
        Credential::ApiKey,
        Credential::Session,
    ];
    let admin = Router::new()
        .route(
            "/admin/a",
            get(|p: Principal| async move { format!("a {}", p.subject()) }),
        )
        .route(
            "/admin/b",
            get(|a: Access<Claims>| async move { format!("b {}", a.claims().role) }),
        )
        .layer(AuthLayer::new(state.clone()).require_scope("admin"));
    let app = Router::new()
        .route(
            "/access",
            get(|a: Access<Claims>| async move {
                format!(
                    "{} {} {}",
                    a.subject(),
                    a.claims().role,
                    a.session_id().len()
                )
            }),
        )
        .route(
            "/optional",
            get(|a: Option<Access<Claims>>| async move {
                a.map_or_else(|| "anonymous".to_owned(), |a| a.subject().to_owned())
            }),
        )
        .route(
            "/key",
            get(|k: VerifiedApiKey| async move { format!("{} {}", k.owner(), k.scopes().join(",")) }),
        )
        .route(
            "/session",
            get(|s: VerifiedSession| async move { format!("{} {}", s.user(), s.data()["cart"]) }),
        )
        .route(
            "/any",
            get(|p: Principal| async move { format!("{:?} {}", p.credential(), p.subject()) }),
        )
        .route(
            "/reports",
            get(|p: Principal| async move { format!("{:?}", p.credential()) })
                .route_layer(AuthLayer::accepting(state.clone(), all).require_scope("reports")),
        )
        .route(
            "/layered",
            get(|a: Access<Claims>| async move { a.subject().to_owned() })
                .route_layer(AuthLayer::new(state.clone())),
        )
        .merge(admin)
        .merge(well_known::routes())
        .with_state(state);
    Fixture {
        service,
        clock,
        probe,
        app,
    }
}

async fn fixture() -> Fixture {
    fixture_with(PublicIssuer::new(SecretKey::<V4>::generate().unwrap()).into()).await
}

fn request(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

async fn call(app: &Router, path: &str, headers: &[(&str, &str)]) -> Response {
    app.clone().oneshot(request(path, headers)).await.unwrap()
}

async fn text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Asserts an RFC 6750 rejection and returns its body.
async fn rejected(response: Response, status: StatusCode, challenge: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], challenge);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    serde_json::from_str(&text(response).await).unwrap()
}

fn invalid(reason: &str) -> String {
    format!("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{reason}\"")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn access_extractor_accepts_and_refuses() {
    let f = fixture().await;
    let login = f.service.login("alice", &claims("profile")).await.unwrap();
    let token = login.access.expose_secret().to_owned();
    let auth = bearer(&token);

    let ok = call(&f.app, "/access", &[("authorization", &auth)]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        text(ok).await,
        format!("alice admin {}", login.session_id.len())
    );
    assert_eq!(
        text(call(&f.app, "/optional", &[("authorization", &auth)]).await).await,
        "alice"
    );
    assert_eq!(
        text(call(&f.app, "/optional", &[]).await).await,
        "anonymous"
    );

    // No credential: the bare challenge, with the realm.
    let body = rejected(
        call(&f.app, "/access", &[]).await,
        StatusCode::UNAUTHORIZED,
        "Bearer realm=\"api\"",
    )
    .await;
    assert_eq!(body, json!({ "error": "unauthorized" }));
    // Another scheme is no bearer credential.
    rejected(
        call(&f.app, "/access", &[("authorization", "Basic YTpi")]).await,
        StatusCode::UNAUTHORIZED,
        "Bearer realm=\"api\"",
    )
    .await;
    // An invalid token is refused even where a credential is optional.
    rejected(
        call(
            &f.app,
            "/optional",
            &[("authorization", "Bearer v4.public.AAAA")],
        )
        .await,
        StatusCode::UNAUTHORIZED,
        &invalid("malformed token"),
    )
    .await;
    // Several Authorization headers.
    let mut twice = request("/access", &[("authorization", &auth)]);
    twice
        .headers_mut()
        .append(header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
    let body = rejected(
        f.app.clone().oneshot(twice).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"more than one Authorization header\"",
    )
    .await;
    assert!(!body.to_string().contains(&token));

    // Expired.
    f.clock.advance(Duration::from_secs(15 * 60 + 61));
    let body = rejected(
        call(&f.app, "/access", &[("authorization", &auth)]).await,
        StatusCode::UNAUTHORIZED,
        &invalid("expired"),
    )
    .await;
    assert_eq!(
        body,
        json!({ "error": "invalid_token", "error_description": "expired" })
    );

    // Revoked at logout.
    let again = f.service.login("alice", &claims("profile")).await.unwrap();
    let auth = bearer(again.access.expose_secret());
    assert_eq!(
        call(&f.app, "/access", &[("authorization", &auth)])
            .await
            .status(),
        StatusCode::OK
    );
    f.service
        .logout(again.access.expose_secret(), again.refresh.expose_secret())
        .await
        .unwrap();
    rejected(
        call(&f.app, "/access", &[("authorization", &auth)]).await,
        StatusCode::UNAUTHORIZED,
        &invalid("revoked"),
    )
    .await;

    // Claims that do not fit the handler's type.
    let odd = f
        .service
        .login("carol", &json!({ "level": 3 }))
        .await
        .unwrap();
    rejected(
        call(
            &f.app,
            "/access",
            &[("authorization", &bearer(odd.access.expose_secret()))],
        )
        .await,
        StatusCode::UNAUTHORIZED,
        &invalid("invalid claims"),
    )
    .await;
}

#[tokio::test]
async fn api_key_extractor_reads_both_headers() {
    let f = fixture().await;
    let created = f
        .service
        .issue_api_key(
            NewApiKey::new("acct-1", "ci", Environment::Live).scopes(["reports", "read"]),
        )
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    for headers in [
        [("authorization", bearer(&key))],
        [("x-api-key", key.clone())],
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = call(&f.app, "/key", &h).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(text(r).await, "acct-1 reports,read");
        assert_eq!(text(call(&f.app, "/any", &h).await).await, "ApiKey acct-1");
    }
    // Both at once.
    rejected(
        call(&f.app, "/key", &[("authorization", &bearer(&key)), ("x-api-key", &key)]).await,
        StatusCode::BAD_REQUEST,
        "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"more than one credential\"",
    )
    .await;
    // An access token where a key is expected, and the reverse.
    let login = f.service.login("alice", &claims("")).await.unwrap();
    rejected(
        call(
            &f.app,
            "/key",
            &[("authorization", &bearer(login.access.expose_secret()))],
        )
        .await,
        StatusCode::UNAUTHORIZED,
        &invalid("wrong token type"),
    )
    .await;
    rejected(
        call(&f.app, "/access", &[("x-api-key", &key)]).await,
        StatusCode::UNAUTHORIZED,
        &invalid("wrong token type"),
    )
    .await;
    // Unknown, malformed, revoked.
    let unknown = f
        .service
        .issue_api_key(NewApiKey::new("acct-2", "gone", Environment::Test))
        .await
        .unwrap();
    f.service
        .opaque()
        .unwrap()
        .api_keys()
        .revoke("acct-2", &unknown.info.id)
        .await
        .unwrap();
    let gone = unknown.key.expose_secret();
    let body = rejected(
        call(&f.app, "/key", &[("x-api-key", gone)]).await,
        StatusCode::UNAUTHORIZED,
        &invalid("revoked"),
    )
    .await;
    assert!(!body.to_string().contains(gone));
    rejected(
        call(&f.app, "/key", &[("x-api-key", "sk_live_123")]).await,
        StatusCode::UNAUTHORIZED,
        &invalid("malformed token"),
    )
    .await;
    rejected(
        call(&f.app, "/key", &[("x-api-key", "has space")]).await,
        StatusCode::UNAUTHORIZED,
        &invalid("malformed token"),
    )
    .await;
}

#[tokio::test]
async fn session_extractor_reads_the_host_cookie_only() {
    let f = fixture().await;
    let created = f
        .service
        .create_session("gina", json!({ "cart": 3, "scope": "reports" }))
        .await
        .unwrap();
    let set = SessionCookie::default().set_cookie(&created.session_id, None);
    let cookie = set.expose_secret().split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-session=ses_"));

    let r = call(
        &f.app,
        "/session",
        &[("cookie", &format!("theme=dark; {cookie}"))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text(r).await, "gina 3");
    // A session satisfies a layer that accepts sessions, scope from its data …
    assert_eq!(
        text(call(&f.app, "/reports", &[("cookie", &cookie)]).await).await,
        "Session"
    );
    // … and nothing else: cookies are not bearer credentials.
    rejected(
        call(&f.app, "/any", &[("cookie", &cookie)]).await,
        StatusCode::UNAUTHORIZED,
        "Bearer realm=\"api\"",
    )
    .await;
    rejected(
        call(&f.app, "/session", &[]).await,
        StatusCode::UNAUTHORIZED,
        "Bearer realm=\"api\"",
    )
    .await;
    rejected(
        call(&f.app, "/session", &[("cookie", "session=ses_x")]).await,
        StatusCode::UNAUTHORIZED,
        "Bearer realm=\"api\"",
    )
    .await;
    rejected(
        call(&f.app, "/session", &[("cookie", "__Host-session=ses_nope")]).await,
        StatusCode::UNAUTHORIZED,
        &invalid("malformed token"),
    )
    .await;
    // Ended everywhere.
    f.service.logout_everywhere("gina").await.unwrap();
    let body = rejected(
        call(&f.app, "/session", &[("cookie", &cookie)]).await,
        StatusCode::UNAUTHORIZED,
        &invalid("unknown token"),
    )
    .await;
    assert!(
        !body
            .to_string()
            .contains(created.session_id.expose_secret())
    );
}

#[tokio::test]
async fn layer_checks_scopes_per_route_and_per_router() {
    let f = fixture().await;
    let profile = f.service.login("alice", &claims("profile")).await.unwrap();
    let reports = f
        .service
        .login("bob", &claims("profile reports admin"))
        .await
        .unwrap();
    let p = bearer(profile.access.expose_secret());
    let r = bearer(reports.access.expose_secret());

    let body = rejected(
        call(&f.app, "/reports", &[("authorization", &p)]).await,
        StatusCode::FORBIDDEN,
        "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"the token lacks a required scope\", scope=\"reports\"",
    )
    .await;
    assert_eq!(body["scope"], "reports");
    assert_eq!(
        text(call(&f.app, "/reports", &[("authorization", &r)]).await).await,
        "AccessToken"
    );
    rejected(
        call(&f.app, "/reports", &[]).await,
        StatusCode::UNAUTHORIZED,
        "Bearer realm=\"api\"",
    )
    .await;

    // API keys carry their own scopes.
    let with = f
        .service
        .issue_api_key(NewApiKey::new("acct", "r", Environment::Test).scopes(["reports"]))
        .await
        .unwrap();
    let without = f
        .service
        .issue_api_key(NewApiKey::new("acct", "n", Environment::Test))
        .await
        .unwrap();
    assert_eq!(
        text(
            call(
                &f.app,
                "/reports",
                &[("x-api-key", with.key.expose_secret())]
            )
            .await
        )
        .await,
        "ApiKey"
    );
    assert_eq!(
        call(
            &f.app,
            "/reports",
            &[("x-api-key", without.key.expose_secret())]
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );

    // A layer over a whole router, handlers reading what it verified.
    for path in ["/admin/a", "/admin/b"] {
        assert_eq!(
            call(&f.app, path, &[("authorization", &p)]).await.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call(&f.app, path, &[]).await.status(),
            StatusCode::UNAUTHORIZED
        );
        // The access-token-only layer refuses API keys by type.
        rejected(
            call(&f.app, path, &[("x-api-key", with.key.expose_secret())]).await,
            StatusCode::UNAUTHORIZED,
            &invalid("wrong token type"),
        )
        .await;
    }
    assert_eq!(
        text(call(&f.app, "/admin/a", &[("authorization", &r)]).await).await,
        "a bob"
    );
    assert_eq!(
        text(call(&f.app, "/admin/b", &[("authorization", &r)]).await).await,
        "b admin"
    );
}

#[tokio::test]
async fn behind_the_layer_a_request_is_verified_once() {
    let f = fixture().await;
    let login = f.service.login("alice", &claims("")).await.unwrap();
    let auth = bearer(login.access.expose_secret());
    let before = f.probe.checks.load(Ordering::SeqCst);
    assert_eq!(
        text(call(&f.app, "/layered", &[("authorization", &auth)]).await).await,
        "alice"
    );
    assert_eq!(f.probe.checks.load(Ordering::SeqCst) - before, 1);
}

#[tokio::test]
async fn a_failing_backend_is_a_503_that_names_nothing() {
    let f = fixture().await;
    let login = f.service.login("alice", &claims("")).await.unwrap();
    f.probe.fail.store(true, Ordering::SeqCst);
    let r = call(
        &f.app,
        "/access",
        &[("authorization", &bearer(login.access.expose_secret()))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    let body = text(r).await;
    assert_eq!(body, r#"{"error":"temporarily_unavailable"}"#);
}

#[tokio::test]
async fn paseto_key_set_publishes_current_and_retired_keys() {
    let mut issuer = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let old = issuer.key_id().to_string();
    issuer
        .rotate_to(SecretKey::<V4>::generate().unwrap())
        .unwrap();
    let current = issuer.key_id().to_string();
    let f = fixture_with(issuer.into()).await;

    let r = call(&f.app, "/.well-known/paseto-keys.json", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "public, max-age=300");
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    let set = token_paseto::PublicKeySet::from_json(&text(r).await).unwrap();
    let ids: Vec<String> = set.v4().iter().map(|k| k.id().to_string()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&old) && ids.contains(&current));
    let r = call(&f.app, "/.well-known/jwks.json", &[]).await;
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "application/jwk-set+json"
    );
    assert_eq!(text(r).await, r#"{"keys":[]}"#);
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn jwt_access_tokens_and_their_jwks() {
    let clock = ManualClock::new();
    let first = SigningKey::generate(Algorithm::Es256).unwrap();
    let old_kid = first.key_id().to_string();
    let mut keys = SigningKeySet::new(first);
    // A token signed before the rotation keeps verifying while its key is published.
    let early = token_core::Claims::new(token_policy::AccessClaims {
        sid: "s".to_owned(),
        cnf: None,
        session: claims("profile"),
    })
    .issuer("https://auth.example")
    .subject("early")
    .audience("api")
    .random_token_id()
    .unwrap()
    .valid_for(clock.as_ref(), Duration::from_secs(600))
    .unwrap();
    let early = keys.sign_as(&TokenType::AccessToken, &early).unwrap();
    keys.rotate_to(SigningKey::generate(Algorithm::Es256).unwrap())
        .unwrap();
    let new_kid = keys.key_id().to_string();
    let f = fixture_with(AccessKey::jwt(keys).unwrap()).await;

    let r = call(&f.app, "/.well-known/jwks.json", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let jwks: Value = serde_json::from_str(&text(r).await).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()));
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("d").is_none())
    );
    assert_eq!(
        text(call(&f.app, "/.well-known/paseto-keys.json", &[]).await).await,
        r#"{"keys":[]}"#
    );

    let login = f.service.login("alice", &claims("profile")).await.unwrap();
    assert_eq!(login.access.expose_secret().matches('.').count(), 2);
    let r = call(
        &f.app,
        "/access",
        &[("authorization", &bearer(login.access.expose_secret()))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = call(
        &f.app,
        "/access",
        &[("authorization", &bearer(early.expose_secret()))],
    )
    .await;
    assert_eq!(text(r).await, "early admin 1");
    // A PASETO is not what this service takes.
    let paseto = PublicIssuer::new(SecretKey::<V4>::generate().unwrap());
    let foreign = paseto
        .sign(
            &token_core::Claims::new(())
                .valid_for(&token_core::SystemClock, Duration::from_secs(60))
                .unwrap(),
        )
        .unwrap();
    rejected(
        call(
            &f.app,
            "/access",
            &[("authorization", &bearer(foreign.expose_secret()))],
        )
        .await,
        StatusCode::UNAUTHORIZED,
        &invalid("wrong token type"),
    )
    .await;
    let _ = f.clock.now();
}
