//! The OAuth endpoints (`token_axum::oauth`): introspection (RFC 7662) of every kind of
//! token, active and not; who may call it; its rate limit; revocation (RFC 7009) of
//! refresh tokens, access tokens and sessions; the metadata (RFC 8414); and the
//! reference service mounting them.
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
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use token_axum::oauth::{INTROSPECTION_PATH, METADATA_PATH, REVOCATION_PATH};
use token_axum::{AuthState, OAuthEndpoints};
use token_core::{Claims, ManualClock, TokenSigner};
use token_opaque::{Environment, NewApiKey, OneTimeKind, OpaqueTokens};
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::{AccessClaims, Confirmation, Policy, TokenService};

use common::{TestServer, http, unique};

const ISSUER: &str = "https://auth.example";
const BASE: &str = "https://auth.example/base";

struct Fixture {
    server: TestServer,
    service: Arc<TokenService>,
    clock: Arc<ManualClock>,
    /// An API key with the scope `introspect`.
    introspector: String,
    /// An API key with the scope `revoke`.
    revoker: String,
    /// An API key with neither.
    plain: String,
}

async fn api_key(service: &TokenService, owner: &str, scopes: &[&str]) -> String {
    service
        .issue_api_key(
            NewApiKey::new(owner, format!("key-{}", unique()), Environment::Test)
                .scopes(scopes.iter().copied()),
        )
        .await
        .unwrap()
        .key
        .expose_secret()
        .to_owned()
}

async fn opaque(clock: &Arc<ManualClock>) -> OpaqueTokens {
    let store = token_policy::config::open_store("sqlite::memory:")
        .await
        .unwrap();
    OpaqueTokens::builder(store)
        .clock(clock.clone())
        .build()
        .unwrap()
}

async fn paseto_service(clock: &Arc<ManualClock>) -> Arc<TokenService> {
    Arc::new(
        TokenService::builder(
            Policy::new(ISSUER, "api"),
            PublicIssuer::new(SecretKey::<V4>::generate().unwrap()),
        )
        .opaque(opaque(clock).await)
        .clock(clock.clone())
        .build(),
    )
}

async fn start_with(
    service: Arc<TokenService>,
    clock: Arc<ManualClock>,
    limit: Option<u32>,
) -> Fixture {
    let auth = AuthState::new(service.clone()).realm("test-realm");
    let mut endpoints = OAuthEndpoints::new(auth, BASE).unwrap();
    if let Some(limit) = limit {
        endpoints = endpoints.introspection_limit(limit, Duration::from_secs(60));
    }
    let server = TestServer::start(endpoints.router()).await;
    Fixture {
        introspector: api_key(&service, "gateway", &["introspect"]).await,
        revoker: api_key(&service, "admin", &["revoke"]).await,
        plain: api_key(&service, "someone", &["profile"]).await,
        server,
        service,
        clock,
    }
}

async fn start() -> Fixture {
    let clock = Arc::new(ManualClock::at_system_now());
    start_with(paseto_service(&clock).await, clock, None).await
}

/// A form POST with an optional bearer credential.
async fn post(
    server: &TestServer,
    path: &str,
    bearer: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = http()
        .post(server.url(path))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

async fn introspect(f: &Fixture, token: &str) -> Value {
    let r = post(
        &f.server,
        INTROSPECTION_PATH,
        Some(&f.introspector),
        &[("token", token)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    r.json().await.unwrap()
}

fn inactive() -> Value {
    json!({ "active": false })
}

async fn login(f: &Fixture, user: &str) -> token_policy::LoginTokens {
    f.service
        .login(
            user,
            &json!({ "role": "user", "scope": "profile payments" }),
        )
        .await
        .unwrap()
}

/// An access token signed with the service's own key, for `audience`.
fn signed_for(f: &Fixture, audience: &str) -> String {
    let claims = Claims::new(AccessClaims {
        sid: "s".to_owned(),
        fgp: None,
        cnf: None,
        client_id: None,
        session: json!({ "scope": "profile" }),
    })
    .issuer(ISSUER)
    .subject("alice")
    .audience(audience)
    .random_token_id()
    .unwrap()
    .valid_for(f.clock.as_ref(), Duration::from_secs(300))
    .unwrap();
    f.service
        .access_keys()
        .sign(&claims)
        .unwrap()
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn introspection_answers_each_active_kind_with_its_claims() {
    let f = start().await;
    let now = token_core::Clock::now(f.clock.as_ref()).unix_seconds();

    // An access token (PASETO here).
    let tokens = login(&f, "alice").await;
    let a = introspect(&f, tokens.access.expose_secret()).await;
    assert_eq!(a["active"], true);
    assert_eq!(a["sub"], "alice");
    assert_eq!(a["scope"], "profile payments");
    assert_eq!(a["iss"], ISSUER);
    assert_eq!(a["aud"], "api");
    assert_eq!(a["token_type"], "Bearer");
    assert_eq!(a["iat"], now);
    assert_eq!(a["exp"], now + 15 * 60);
    assert!(a["jti"].is_string());
    assert!(
        a.get("client_id").is_none(),
        "PASETO tokens have no client_id"
    );
    assert!(a.get("cnf").is_none());

    // An API key.
    let key = api_key(&f.service, "acct-7", &["read", "write"]).await;
    let k = introspect(&f, &key).await;
    assert_eq!(k["active"], true);
    assert_eq!(k["sub"], "acct-7");
    assert_eq!(k["scope"], "read write");
    assert_eq!(k["token_type"], "api_key");
    assert_eq!(k["iss"], ISSUER);
    assert_eq!(k["aud"], "api");
    assert_eq!(k["iat"], now);

    // A server-side session.
    let session = f
        .service
        .create_session("bob", json!({ "scope": "profile" }))
        .await
        .unwrap();
    let s = introspect(&f, session.session_id.expose_secret()).await;
    assert_eq!(s["active"], true);
    assert_eq!(s["sub"], "bob");
    assert_eq!(s["scope"], "profile");
    assert_eq!(s["token_type"], "session");
    assert!(s["exp"].as_i64().unwrap() > now);
}

#[tokio::test]
async fn introspection_answers_exactly_inactive_for_anything_else() {
    let f = start().await;
    let tokens = login(&f, "alice").await;

    // Another audience, signed by the right key.
    assert_eq!(
        introspect(&f, &signed_for(&f, "other-api")).await,
        inactive()
    );
    assert_eq!(introspect(&f, &signed_for(&f, "api")).await["active"], true);

    // Malformed, and well-formed but of another issuer's key.
    for junk in ["not-a-token", "v4.public.AAAA", "sk_test_nope", "a.b.c"] {
        assert_eq!(introspect(&f, junk).await, inactive(), "{junk}");
    }
    let elsewhere = paseto_service(&f.clock).await;
    let foreign = elsewhere.login("alice", &json!({})).await.unwrap();
    assert_eq!(
        introspect(&f, foreign.access.expose_secret()).await,
        inactive()
    );
    // An API key of another store: unknown here.
    let unknown = api_key(&elsewhere, "acct", &["read"]).await;
    assert_eq!(introspect(&f, &unknown).await, inactive());

    // Refresh and one-time tokens are nothing a resource server takes.
    assert_eq!(
        introspect(&f, tokens.refresh.expose_secret()).await,
        inactive()
    );
    let reset = f
        .service
        .issue_one_time(OneTimeKind::PasswordReset, "alice")
        .await
        .unwrap();
    assert_eq!(
        introspect(&f, reset.token.expose_secret()).await,
        inactive()
    );

    // Revoked: an access token by its jti, an API key, a session.
    let other = login(&f, "carol").await;
    let verified = f
        .service
        .verify_access::<Value>(other.access.expose_secret())
        .await
        .unwrap();
    let claims = verified.claims();
    f.service
        .revoke_access(claims.jti.as_deref().unwrap(), claims.exp.unwrap())
        .await
        .unwrap();
    assert_eq!(
        introspect(&f, other.access.expose_secret()).await,
        inactive()
    );
    let created = f
        .service
        .issue_api_key(NewApiKey::new("acct-9", "k", Environment::Test).scopes(["read"]))
        .await
        .unwrap();
    f.service
        .revoke_api_key("acct-9", &created.info.id)
        .await
        .unwrap();
    assert_eq!(
        introspect(&f, created.key.expose_secret()).await,
        inactive()
    );
    let session = f.service.create_session("bob", json!({})).await.unwrap();
    f.service
        .opaque()
        .unwrap()
        .sessions()
        .end(session.session_id.expose_secret())
        .await
        .unwrap();
    assert_eq!(
        introspect(&f, session.session_id.expose_secret()).await,
        inactive()
    );

    // Expired: the access token (15 minutes) and an API key with an expiry.
    let now = token_core::Clock::now(f.clock.as_ref());
    let expiring = f
        .service
        .issue_api_key(
            NewApiKey::new("acct-10", "short", Environment::Test)
                .scopes(["read"])
                .expires_at(now.checked_add(Duration::from_secs(600)).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        introspect(&f, expiring.key.expose_secret()).await["active"],
        true
    );
    f.clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(
        introspect(&f, tokens.access.expose_secret()).await,
        inactive()
    );
    assert_eq!(
        introspect(&f, expiring.key.expose_secret()).await,
        inactive()
    );
}

#[tokio::test]
async fn introspection_needs_an_api_key_with_the_introspect_scope() {
    let f = start().await;
    let tokens = login(&f, "alice").await;
    let token = tokens.access.expose_secret();

    let r = post(&f.server, INTROSPECTION_PATH, None, &[("token", token)]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(challenge.contains("realm=\"test-realm\""), "{challenge}");
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    assert!(r.json::<Value>().await.unwrap().get("active").is_none());

    // A key without the scope, a key with another one, an access token, an unknown key.
    for caller in [
        f.plain.as_str(),
        f.revoker.as_str(),
        token,
        "sk_test_unknown",
    ] {
        let r = post(
            &f.server,
            INTROSPECTION_PATH,
            Some(caller),
            &[("token", token)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            r.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }

    // The scope is what counts.
    let r = post(
        &f.server,
        INTROSPECTION_PATH,
        Some(&f.introspector),
        &[("token", token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);

    // The form: its media type, the token parameter, once.
    let r = http()
        .post(f.server.url(INTROSPECTION_PATH))
        .bearer_auth(&f.introspector)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for form in [
        &[("token_type_hint", "access_token")][..],
        &[("token", token), ("token", token)][..],
    ] {
        let r = post(&f.server, INTROSPECTION_PATH, Some(&f.introspector), form).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    }
}

#[tokio::test]
async fn introspection_is_rate_limited_per_caller() {
    let clock = Arc::new(ManualClock::at_system_now());
    let f = start_with(paseto_service(&clock).await, clock, Some(3)).await;
    let tokens = login(&f, "alice").await;
    let token = tokens.access.expose_secret();
    for _ in 0..3 {
        assert_eq!(introspect(&f, token).await["active"], true);
    }
    let r = post(
        &f.server,
        INTROSPECTION_PATH,
        Some(&f.introspector),
        &[("token", token)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "rate_limited");

    // Another caller has an allowance of its own.
    let second = api_key(&f.service, "gateway-2", &["introspect"]).await;
    let r = post(
        &f.server,
        INTROSPECTION_PATH,
        Some(&second),
        &[("token", token)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_whole_family() {
    let f = start().await;
    let tokens = login(&f, "alice").await;
    let rotated = f
        .service
        .refresh(
            tokens.refresh.expose_secret(),
            |_| json!({ "scope": "profile" }),
        )
        .await
        .unwrap();
    // The refresh token proves itself: no other credential.
    let r = post(
        &f.server,
        REVOCATION_PATH,
        None,
        &[
            ("token", rotated.refresh.expose_secret()),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    // The family is gone, and the access tokens minted from it.
    let err = f
        .service
        .refresh(rotated.refresh.expose_secret(), |_| json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.reason().as_str(), "revoked", "{err:?}");
    for access in [&tokens.access, &rotated.access] {
        assert_eq!(introspect(&f, access.expose_secret()).await, inactive());
    }
    // Again: nothing left to revoke, still 200.
    let r = post(
        &f.server,
        REVOCATION_PATH,
        None,
        &[("token", rotated.refresh.expose_secret())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_an_access_token_takes_its_own_bearer_or_the_revoke_scope() {
    let f = start().await;
    let alice = login(&f, "alice").await;
    let bob = login(&f, "bob").await;
    let alice_token = alice.access.expose_secret();

    // No credential, someone else's token, a key without the scope: 401, and the
    // token lives on.
    for caller in [
        None,
        Some(bob.access.expose_secret()),
        Some(f.plain.as_str()),
    ] {
        let r = post(
            &f.server,
            REVOCATION_PATH,
            caller,
            &[("token", alice_token)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{caller:?}");
        assert!(r.headers().contains_key(WWW_AUTHENTICATE));
    }
    assert_eq!(introspect(&f, alice_token).await["active"], true);

    // The token revokes itself: its jti only, not the session.
    let r = post(
        &f.server,
        REVOCATION_PATH,
        Some(alice_token),
        &[("token", alice_token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(introspect(&f, alice_token).await, inactive());
    let again = f
        .service
        .refresh(alice.refresh.expose_secret(), |_| json!({}))
        .await
        .unwrap();
    assert_eq!(
        introspect(&f, again.access.expose_secret()).await["active"],
        true
    );

    // A key with the scope `revoke` revokes someone else's.
    let r = post(
        &f.server,
        REVOCATION_PATH,
        Some(&f.revoker),
        &[("token", bob.access.expose_secret())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(introspect(&f, bob.access.expose_secret()).await, inactive());
}

#[tokio::test]
async fn revoking_a_session_takes_the_revoke_scope() {
    let f = start().await;
    let session = f
        .service
        .create_session("bob", json!({ "scope": "profile" }))
        .await
        .unwrap();
    let id = session.session_id.expose_secret();
    let r = post(&f.server, REVOCATION_PATH, Some(&f.plain), &[("token", id)]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(f.service.load_session(id).await.is_ok());

    let r = post(
        &f.server,
        REVOCATION_PATH,
        Some(&f.revoker),
        &[("token", id), ("token_type_hint", "session")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(f.service.load_session(id).await.is_err());
    assert_eq!(introspect(&f, id).await, inactive());
}

#[tokio::test]
async fn revoking_unknown_or_dead_tokens_answers_200() {
    let f = start().await;
    let elsewhere = paseto_service(&f.clock).await;
    let foreign = elsewhere.login("alice", &json!({})).await.unwrap();
    // An unknown refresh token needs no credential.
    let r = post(
        &f.server,
        REVOCATION_PATH,
        None,
        &[("token", foreign.refresh.expose_secret())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Unknown access tokens, garbage, an expired token: 200 for an authorised caller.
    let expired = login(&f, "alice").await;
    f.clock.advance(Duration::from_secs(20 * 60));
    for token in [
        foreign.access.expose_secret(),
        "not-a-token",
        "ses_unknown",
        expired.access.expose_secret(),
    ] {
        let r = post(
            &f.server,
            REVOCATION_PATH,
            Some(&f.revoker),
            &[("token", token)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{token}");
    }
    // The caller still has to be authorised: an unknown access token without one is
    // 401, as a known one would be.
    let r = post(
        &f.server,
        REVOCATION_PATH,
        None,
        &[("token", foreign.access.expose_secret())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_an_unsupported_token_type_answers_400() {
    let f = start().await;
    let tokens = login(&f, "alice").await;
    // API keys are revoked through their own management, not here.
    let key = api_key(&f.service, "acct", &["read"]).await;
    let reset = f
        .service
        .issue_one_time(OneTimeKind::PasswordReset, "alice")
        .await
        .unwrap();
    for form in [
        vec![("token", key.as_str())],
        vec![("token", reset.token.expose_secret())],
        vec![
            ("token", tokens.refresh.expose_secret()),
            ("token_type_hint", "api_key"),
        ],
        vec![
            ("token", tokens.access.expose_secret()),
            ("token_type_hint", "id_token"),
        ],
    ] {
        let r = post(&f.server, REVOCATION_PATH, Some(&f.revoker), &form).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "unsupported_token_type"
        );
    }
    // Nothing was revoked.
    assert_eq!(introspect(&f, &key).await["active"], true);
    assert_eq!(
        introspect(&f, tokens.access.expose_secret()).await["active"],
        true
    );
    // A form without the token is a bad request.
    let r = post(
        &f.server,
        REVOCATION_PATH,
        None,
        &[("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn the_metadata_names_the_endpoints_and_the_key_sets() {
    let f = start().await;
    let r = http()
        .get(f.server.url(METADATA_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .starts_with("public, max-age=")
    );
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["jwks_uri"], format!("{BASE}/.well-known/jwks.json"));
    assert_eq!(
        doc["paseto_keys_uri"],
        format!("{BASE}/.well-known/paseto-keys.json")
    );
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{BASE}/oauth/introspect")
    );
    assert_eq!(doc["revocation_endpoint"], format!("{BASE}/oauth/revoke"));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        json!(["bearer"])
    );
    assert_eq!(
        doc["revocation_endpoint_auth_methods_supported"],
        json!(["none", "bearer"])
    );
    // The service's DPoP allow-list, token-jwt's by default.
    #[cfg(feature = "jwt")]
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(token_jwt::dpop::DpopVerifier::new().signing_alg_values_supported())
    );
    #[cfg(feature = "jwt")]
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "Ed25519"])
    );

    // A verify-only state or a base URL that is no URL cannot make endpoints.
    let auth = AuthState::new(f.service.clone());
    for bad in [
        "auth.example",
        "ftp://auth.example",
        "https://",
        "https:///path",
        "https://a b",
        "https://a?x=1",
    ] {
        assert!(
            matches!(
                OAuthEndpoints::new(auth.clone(), bad),
                Err(token_axum::Error::Config(_))
            ),
            "{bad}"
        );
    }
    // A trailing slash is dropped.
    let endpoints = OAuthEndpoints::new(auth.clone(), "https://auth.example/").unwrap();
    assert_eq!(
        endpoints.url(REVOCATION_PATH),
        "https://auth.example/oauth/revoke"
    );
    let verifier = token_policy::ResourceVerifier::new(
        ISSUER,
        "api",
        PublicIssuer::new(SecretKey::<V4>::generate().unwrap()).verifier(),
    );
    assert!(matches!(
        OAuthEndpoints::new(AuthState::verify_only(verifier), BASE),
        Err(token_axum::Error::Config(_))
    ));
}

/// A DPoP-bound access token is active for introspection, typed `DPoP`, with the
/// `cnf.jkt` the caller checks the request's proof against; it is still refused as a
/// bearer token, and a caller with the `revoke` scope revokes it.
#[tokio::test]
async fn dpop_bound_access_tokens_introspect_with_their_key_and_revoke() {
    let f = start().await;
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let claims = Claims::new(AccessClaims {
        sid: "s".to_owned(),
        fgp: None,
        cnf: Some(Confirmation {
            jkt: jkt.to_owned(),
        }),
        client_id: None,
        session: json!({ "scope": "profile" }),
    })
    .issuer(ISSUER)
    .subject("alice")
    .audience("api")
    .random_token_id()
    .unwrap()
    .valid_for(f.clock.as_ref(), Duration::from_secs(300))
    .unwrap();
    let bound = f.service.access_keys().sign(&claims).unwrap();
    let bound = bound.expose_secret();
    let a = introspect(&f, bound).await;
    assert_eq!(a["active"], true);
    assert_eq!(a["token_type"], "DPoP");
    assert_eq!(a["cnf"], json!({ "jkt": jkt }));
    assert_eq!(a["sub"], "alice");
    // Not a bearer token for all that.
    let err = f.service.verify_access::<Value>(bound).await.unwrap_err();
    assert!(
        matches!(err, token_policy::Error::SenderConstrained),
        "{err:?}"
    );

    let r = post(
        &f.server,
        REVOCATION_PATH,
        Some(&f.revoker),
        &[("token", bound), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(introspect(&f, bound).await, inactive());
}

/// With JWT access tokens (RFC 9068), introspection passes on the `client_id`.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn jwt_access_tokens_introspect_with_their_client_id() {
    use token_jwt::{Algorithm, SigningKey, SigningKeySet};
    let clock = Arc::new(ManualClock::at_system_now());
    let access = token_policy::AccessKey::jwt(SigningKeySet::new(
        SigningKey::generate(Algorithm::Es256).unwrap(),
    ))
    .unwrap();
    let service = Arc::new(
        TokenService::builder(Policy::new(ISSUER, "api").with_client_id("web"), access)
            .opaque(opaque(&clock).await)
            .clock(clock.clone())
            .build(),
    );
    let f = start_with(service, clock, None).await;
    let tokens = login(&f, "alice").await;
    let header = token_jwt::dangerous_decode_header(tokens.access.expose_secret()).unwrap();
    assert_eq!(header.typ(), Some("at+jwt"));
    let a = introspect(&f, tokens.access.expose_secret()).await;
    assert_eq!(a["active"], true);
    assert_eq!(a["client_id"], "web");
    assert_eq!(a["scope"], "profile payments");
    assert_eq!(a["token_type"], "Bearer");
    // A PASETO where JWTs are issued is inactive.
    let elsewhere = paseto_service(&f.clock).await;
    let foreign = elsewhere.login("alice", &json!({})).await.unwrap();
    assert_eq!(
        introspect(&f, foreign.access.expose_secret()).await,
        inactive()
    );
}

const ALICE_PW: &str = "correct horse battery";

/// The reference service mounts the endpoints: metadata under `--public-url`, an
/// `introspect` key answering for a logged-in user's token, and a refresh token
/// revoked through `POST /oauth/revoke` refused by `POST /refresh` afterwards.
#[tokio::test]
async fn the_reference_service_mounts_the_oauth_endpoints() {
    let (router, app) = auth_server::build(auth_server::Options {
        users: auth_server::parse_users(&format!("alice:{ALICE_PW}")).unwrap(),
        insecure_cookies: true,
        mailer: auth_server::Mailer::Memory(Arc::new(Mutex::new(Vec::new()))),
        public_url: "https://auth.example.com".into(),
        ..auth_server::Options::default()
    })
    .await
    .unwrap();
    let server = TestServer::start(router).await;
    let doc: Value = http()
        .get(server.url(METADATA_PATH))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], auth_server::ISSUER);
    assert_eq!(
        doc["introspection_endpoint"],
        "https://auth.example.com/oauth/introspect"
    );

    let login = http()
        .post(server.url("/login"))
        .json(&json!({ "username": "alice", "password": ALICE_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie_name = app.cookie.name().to_owned();
    let refresh = common::set_cookie(&login, &cookie_name)
        .unwrap()
        .0
        .to_owned();
    let access = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let key = api_key(&app.service, "tokenctl", &["introspect"]).await;
    let answer: Value = http()
        .post(server.url(INTROSPECTION_PATH))
        .bearer_auth(&key)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={access}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["scope"], "profile payments api-keys");
    // Without a key: 401, as the service's other routes answer it.
    let r = http()
        .post(server.url(INTROSPECTION_PATH))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = http()
        .post(server.url(REVOCATION_PATH))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={refresh}&token_type_hint=refresh_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http()
        .post(server.url("/refresh"))
        .header("cookie", format!("{cookie_name}={refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}
