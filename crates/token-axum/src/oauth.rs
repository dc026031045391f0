//! The standard OAuth endpoints a gateway or an OAuth client library talks to:
//! token introspection (RFC 7662), token revocation (RFC 7009) and the authorization
//! server metadata (RFC 8414).
//!
//! ```text
//! POST /oauth/introspect                      token=…[&token_type_hint=…]
//! POST /oauth/revoke                          token=…[&token_type_hint=…]
//! GET  /.well-known/oauth-authorization-server
//! ```
//!
//! Mount them with [`OAuthEndpoints::router`] (any router state: they carry their
//! own). They need the issuing side ([`AuthState::new`] over a
//! [`token_policy::TokenService`] with its opaque store).
//!
//! # Introspection
//!
//! The caller authenticates with an API key holding the scope `introspect`
//! (`Authorization: Bearer sk_…`, or the API-key header of the [`AuthState`]). Without
//! one, or with a key lacking the scope, the answer is `401` with a `WWW-Authenticate:
//! Bearer` challenge. Each caller (API key id) may make at most
//! [`OAuthEndpoints::introspection_limit`] requests per window (default 600 a minute);
//! past it, `429` with `Retry-After`.
//!
//! A valid access token (PASETO or JWT, whichever the policy issues), API key or
//! server-side session answers `{"active": true, …}` with `sub`, `scope`
//! (space-separated), `exp`, `iat`, `iss`, `aud` and `token_type`, plus `client_id`
//! (JWT access tokens), `jti` and `cnf` (DPoP-bound access tokens: the caller checks
//! the request's proof against `cnf.jkt`, RFC 9449 section 6.2) when they apply.
//! `token_type` is `Bearer` or `DPoP` for access tokens, `api_key` for API keys and
//! `session` for sessions. Anything else — expired, revoked, unknown, malformed, for
//! another audience, a refresh or one-time token — answers exactly `{"active": false}`:
//! no hint why. `token_type_hint` is accepted and ignored (the token's own format says
//! what it is, as RFC 7662 section 2.1 allows). When the revocation state or the store
//! cannot be read, the answer is `503`, never a guess. Every answer is
//! `Cache-Control: no-store`.
//!
//! # Revocation
//!
//! - A refresh token proves itself (as for a public client, RFC 7009 section 5): its
//!   whole family ends, with every access token minted from it.
//! - An access token (its `jti`, until it expires) or a session needs the caller's
//!   authority: either the token is the request's own bearer credential (a token
//!   revoking itself), or the caller presents an API key with the scope `revoke`.
//!   Otherwise `401`, checked before the token is looked at, so a refusal tells
//!   nothing about it.
//! - Unknown, expired, already revoked and malformed tokens answer `200`, as RFC 7009
//!   section 2.2 asks: the client cannot tell, and has nothing left to do.
//! - API keys and one-time tokens are not revoked here (API keys have their own
//!   management: [`token_policy::TokenService::revoke_api_key`]): presenting one, or a
//!   `token_type_hint` other than `access_token`, `refresh_token` or `session`,
//!   answers `400 {"error":"unsupported_token_type"}` (RFC 7009 section 2.2.1).
//!
//! # Metadata
//!
//! `GET /.well-known/oauth-authorization-server` publishes `issuer` (the policy's
//! issuer, as in the tokens' `iss`), `jwks_uri`, `paseto_keys_uri` (this project's
//! member: the PASERK key set of [`crate::well_known::PASETO_KEYS_PATH`], the one
//! verifiers of PASETO access tokens fetch), `introspection_endpoint`,
//! `revocation_endpoint`, `token_endpoint_auth_methods_supported` (`none`: logins and
//! refreshes take no client credential), `introspection_endpoint_auth_methods_supported`
//! (`bearer`: an API key as a bearer credential; no registered method name says that),
//! `revocation_endpoint_auth_methods_supported` (`none` and `bearer`) and
//! `dpop_signing_alg_values_supported` (the service's DPoP allow-list: by default
//! `token_jwt::dpop::DEFAULT_ALGORITHMS`, EdDSA also under RFC 9864's name `Ed25519`;
//! with the `jwt` feature). URLs are built
//! from the public base URL given to [`OAuthEndpoints::new`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use token_core::{OpaqueKind, Reason, Timestamp};
use token_policy::{JsonObject, TokenService};

use crate::error::{Error, Result};
use crate::layer::Credential;
use crate::limit::FailureLimiter;
use crate::principal::{Access, Principal, scopes_of};
use crate::state::{AuthState, bearer_token};
use crate::well_known::{JWKS_PATH, PASETO_KEYS_PATH};

/// The path of the introspection endpoint (RFC 7662).
pub const INTROSPECTION_PATH: &str = "/oauth/introspect";
/// The path of the revocation endpoint (RFC 7009).
pub const REVOCATION_PATH: &str = "/oauth/revoke";
/// The path of the authorization server metadata (RFC 8414).
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// The API-key scope the introspection endpoint requires.
pub const INTROSPECT_SCOPE: &str = "introspect";
/// The API-key scope that lets a caller revoke access tokens and sessions it does not
/// hold.
pub const REVOKE_SCOPE: &str = "revoke";
/// The largest request body the endpoints read, in bytes.
pub const MAX_FORM_LEN: usize = 16 * 1024;
/// Introspection requests a caller may make per window, by default.
pub const DEFAULT_INTROSPECTION_LIMIT: u32 = 600;
/// The window of the introspection limit, by default.
pub const DEFAULT_INTROSPECTION_WINDOW: Duration = Duration::from_secs(60);

/// The introspection, revocation and metadata endpoints of one issuing service.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct OAuthEndpoints {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    auth: AuthState,
    service: Arc<TokenService>,
    base_url: String,
    limiter: FailureLimiter<String>,
}

impl OAuthEndpoints {
    /// The endpoints of the service behind `auth`, published under `base_url` (the
    /// service's public URL: `https://auth.example.com`, or with a path prefix; a
    /// trailing `/` is dropped).
    ///
    /// # Errors
    /// [`Error::Config`] for a verify-only [`AuthState`] (introspection and revocation
    /// need the issuing side) or a base URL that is not `http(s)://…`.
    pub fn new(auth: AuthState, base_url: &str) -> Result<Self> {
        let service = auth
            .service()
            .cloned()
            .ok_or_else(|| Error::Config("the OAuth endpoints need the issuing side".into()))?;
        let base_url = base_url.trim_end_matches('/');
        let rest = base_url
            .strip_prefix("https://")
            .or_else(|| base_url.strip_prefix("http://"));
        if rest.is_none_or(|r| {
            r.is_empty()
                || r.starts_with('/')
                || r.contains(['?', '#'])
                || r.contains(|c: char| c.is_whitespace() || c.is_control())
        }) {
            return Err(Error::Config(
                "the public base URL must be http(s)://host[:port][/path]".into(),
            ));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                auth,
                service,
                base_url: base_url.to_owned(),
                limiter: FailureLimiter::new(
                    DEFAULT_INTROSPECTION_LIMIT,
                    DEFAULT_INTROSPECTION_WINDOW,
                ),
            }),
        })
    }

    /// At most `requests` introspection requests per caller (API key) per `window`
    /// (default 600 a minute); past it, `429` with `Retry-After`.
    #[must_use]
    pub fn introspection_limit(self, requests: u32, window: Duration) -> Self {
        let inner = Inner {
            auth: self.inner.auth.clone(),
            service: self.inner.service.clone(),
            base_url: self.inner.base_url.clone(),
            limiter: FailureLimiter::new(requests, window),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The public URL of `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base_url)
    }

    /// The metadata document (RFC 8414).
    pub fn metadata(&self) -> Value {
        let doc = json!({
            "issuer": self.inner.service.policy().issuer(),
            "jwks_uri": self.url(JWKS_PATH),
            "paseto_keys_uri": self.url(PASETO_KEYS_PATH),
            "introspection_endpoint": self.url(INTROSPECTION_PATH),
            "revocation_endpoint": self.url(REVOCATION_PATH),
            "token_endpoint_auth_methods_supported": ["none"],
            "introspection_endpoint_auth_methods_supported": ["bearer"],
            "revocation_endpoint_auth_methods_supported": ["none", "bearer"],
        });
        #[cfg(feature = "jwt")]
        let doc = {
            let mut doc = doc;
            if let Value::Object(map) = &mut doc {
                let algorithms = self
                    .inner
                    .service
                    .resource_verifier()
                    .dpop_verifier()
                    .signing_alg_values_supported();
                map.insert(
                    "dpop_signing_alg_values_supported".into(),
                    json!(algorithms),
                );
            }
            doc
        };
        doc
    }

    /// A router serving the three endpoints, to merge into an application's router
    /// (whatever its state). Bodies are limited to [`MAX_FORM_LEN`] bytes.
    pub fn router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route(INTROSPECTION_PATH, post(introspect))
            .route(REVOCATION_PATH, post(revoke))
            .route(METADATA_PATH, get(metadata))
            .layer(DefaultBodyLimit::max(MAX_FORM_LEN))
            .with_state(self)
    }

    fn error(&self, e: Error) -> Response {
        e.into_response_with_realm(self.inner.auth.challenge_realm())
    }

    /// The caller's API key, which must hold `scope`: `401` otherwise (RFC 7662
    /// section 2.3 and RFC 7009 section 2.1 answer unauthorised callers with `401`).
    async fn api_key_with(&self, parts: &Parts, scope: &str) -> Result<String> {
        match self
            .inner
            .auth
            .authenticate(parts, &[Credential::ApiKey])
            .await?
        {
            Principal::ApiKey(key) if key.info().has_scope(scope) => Ok(key.info().id.clone()),
            Principal::ApiKey(_) => Err(Error::InvalidToken(Reason::InsufficientScope)),
            _ => Err(Error::InvalidToken(Reason::WrongTokenType)),
        }
    }

    fn opaque_kind(&self, raw: &str) -> Option<OpaqueKind> {
        let opaque = self.inner.service.opaque().ok()?;
        let prefixes = &opaque.config().prefixes;
        OpaqueKind::ALL
            .into_iter()
            .filter_map(|k| prefixes.get(k).map(|p| (k, p)))
            .filter(|(_, p)| raw.starts_with(p))
            .max_by_key(|(_, p)| p.len())
            .map(|(k, _)| k)
    }

    /// The introspection answer for `raw`: `None` for an inactive token.
    async fn introspection(&self, raw: &str) -> Result<Option<Map<String, Value>>> {
        let policy = self.inner.service.policy();
        let common = |sub: &str, scope: &[String], iat: Timestamp, exp: Option<Timestamp>| {
            let mut m = Map::new();
            m.insert("active".into(), Value::Bool(true));
            m.insert("sub".into(), sub.into());
            m.insert("scope".into(), scope.join(" ").into());
            m.insert("iat".into(), iat.unix_seconds().into());
            if let Some(exp) = exp {
                m.insert("exp".into(), exp.unix_seconds().into());
            }
            m.insert("iss".into(), policy.issuer().into());
            m.insert("aud".into(), policy.audience().into());
            m
        };
        match self.opaque_kind(raw) {
            Some(OpaqueKind::ApiKeyLive | OpaqueKind::ApiKeyTest) => {
                let verified = self.inner.auth.verify_api_key(raw).await;
                let Some(key) = inactive_unless_backend(verified)? else {
                    return Ok(None);
                };
                let info = key.info();
                let mut m = common(
                    &info.owner_id,
                    &info.scopes,
                    info.created_at,
                    info.expires_at,
                );
                m.insert("token_type".into(), "api_key".into());
                Ok(Some(m))
            }
            Some(OpaqueKind::Session) => {
                let loaded = self.inner.auth.load_session(raw).await;
                let Some(session) = inactive_unless_backend(loaded)? else {
                    return Ok(None);
                };
                let s = &session.0;
                let exp = s.idle_expires_at.min(s.absolute_expires_at);
                let mut m = common(&s.user_id, &session.scopes(), s.created_at, Some(exp));
                m.insert("token_type".into(), "session".into());
                Ok(Some(m))
            }
            // Refresh and one-time tokens are nothing a resource server accepts.
            Some(_) => Ok(None),
            None => {
                let Some(access) = inactive_unless_backend(self.access(raw).await)? else {
                    return Ok(None);
                };
                Ok(Some(access_answer(&access)))
            }
        }
    }
}

impl OAuthEndpoints {
    /// An access token as introspection sees it: verified (signature, claims,
    /// revocation), bound (DPoP) or not.
    async fn access(&self, raw: &str) -> Result<Access<JsonObject>> {
        let verified = self
            .inner
            .service
            .introspect_access::<JsonObject>(raw)
            .await?;
        let claims = verified.into_claims();
        let scopes = scopes_of(&claims.custom.session);
        Ok(Access::new(claims, scopes))
    }
}

/// The introspection answer of a verified access token: its own claims.
fn access_answer(access: &Access<serde_json::Map<String, Value>>) -> Map<String, Value> {
    let c = access.all_claims();
    let mut m = Map::new();
    m.insert("active".into(), Value::Bool(true));
    m.insert("sub".into(), access.subject().into());
    m.insert("scope".into(), access.scopes().join(" ").into());
    if let Some(exp) = c.exp {
        m.insert("exp".into(), exp.unix_seconds().into());
    }
    if let Some(iat) = c.iat {
        m.insert("iat".into(), iat.unix_seconds().into());
    }
    if let Some(iss) = &c.iss {
        m.insert("iss".into(), iss.clone().into());
    }
    if let Some(aud) = &c.aud {
        m.insert(
            "aud".into(),
            serde_json::to_value(aud).unwrap_or(Value::Null),
        );
    }
    if let Some(jti) = &c.jti {
        m.insert("jti".into(), jti.clone().into());
    }
    if let Some(client_id) = &c.custom.client_id {
        m.insert("client_id".into(), client_id.clone().into());
    }
    match &c.custom.cnf {
        Some(cnf) => {
            m.insert("token_type".into(), "DPoP".into());
            m.insert("cnf".into(), json!({ "jkt": cnf.jkt }));
        }
        None => {
            m.insert("token_type".into(), "Bearer".into());
        }
    }
    m
}

/// A token error means "inactive"; a backend failure stays an error (`503`): the
/// answer is never a guess.
fn inactive_unless_backend<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(
            e @ (Error::Unavailable(_)
            | Error::RevocationStale { .. }
            | Error::KeySet(_)
            | Error::StaleKeySet { .. }
            | Error::Internal(_)
            | Error::Config(_)),
        ) => Err(e),
        Err(_) => Ok(None),
    }
}

/// The parameters of an `application/x-www-form-urlencoded` body: `token` and an
/// optional `token_type_hint`, each at most once (RFC 6749 section 3.2).
struct TokenForm {
    token: String,
    hint: Option<String>,
}

fn read_form(parts: &Parts, body: &Bytes) -> Result<TokenForm> {
    if !crate::extract::is_form_urlencoded(&parts.headers) {
        return Err(Error::InvalidRequest(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut token = None;
    let mut hint = None;
    for (name, value) in form_urlencoded::parse(body) {
        let slot = match &*name {
            "token" => &mut token,
            "token_type_hint" => &mut hint,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(Error::InvalidRequest("a parameter is repeated"));
        }
    }
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(Error::InvalidRequest("the token parameter is missing"))?;
    if token.len() > token_core::MAX_TOKEN_LEN {
        return Err(Error::InvalidRequest("the token is too long"));
    }
    Ok(TokenForm { token, hint })
}

async fn read_request(request: Request) -> Result<(Parts, TokenForm)> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_LEN)
        .await
        .map_err(|_| Error::InvalidRequest("the body is too large or unreadable"))?;
    let form = read_form(&parts, &bytes)?;
    Ok((parts, form))
}

fn no_store(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /oauth/introspect` (RFC 7662).
pub async fn introspect(State(endpoints): State<OAuthEndpoints>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // The caller first: an unauthorised caller learns nothing, not even whether its
    // form was well made.
    let caller = match endpoints.api_key_with(&parts, INTROSPECT_SCOPE).await {
        Ok(id) => id,
        Err(e) => return endpoints.error(e),
    };
    if let Err(e) = endpoints.inner.limiter.begin(caller) {
        return endpoints.error(e);
    }
    let form = match axum::body::to_bytes(body, MAX_FORM_LEN).await {
        Ok(bytes) => read_form(&parts, &bytes),
        Err(_) => Err(Error::InvalidRequest("the body is too large or unreadable")),
    };
    let form = match form {
        Ok(form) => form,
        Err(e) => return endpoints.error(e),
    };
    match endpoints.introspection(&form.token).await {
        Ok(Some(answer)) => no_store(StatusCode::OK, Value::Object(answer)),
        Ok(None) => no_store(StatusCode::OK, json!({ "active": false })),
        Err(e) => endpoints.error(e),
    }
}

fn unsupported_token_type() -> Response {
    no_store(
        StatusCode::BAD_REQUEST,
        json!({
            "error": "unsupported_token_type",
            "error_description": "this server revokes refresh tokens, access tokens and sessions",
        }),
    )
}

/// `POST /oauth/revoke` (RFC 7009).
pub async fn revoke(State(endpoints): State<OAuthEndpoints>, request: Request) -> Response {
    let (parts, form) = match read_request(request).await {
        Ok(read) => read,
        Err(e) => return endpoints.error(e),
    };
    if form
        .hint
        .as_deref()
        .is_some_and(|h| !matches!(h, "access_token" | "refresh_token" | "session"))
    {
        return unsupported_token_type();
    }
    match endpoints.revocation(&parts, &form.token).await {
        Ok(Revocation::Done) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(Revocation::Unsupported) => unsupported_token_type(),
        Err(e) => endpoints.error(e),
    }
}

enum Revocation {
    /// Revoked, or nothing to revoke (unknown, expired, already revoked).
    Done,
    /// A kind of token this endpoint does not revoke.
    Unsupported,
}

impl OAuthEndpoints {
    async fn revocation(&self, parts: &Parts, raw: &str) -> Result<Revocation> {
        let service = &self.inner.service;
        match self.opaque_kind(raw) {
            Some(OpaqueKind::Refresh) => {
                // The refresh token proves itself.
                let family = service.opaque()?.refresh().family_of(raw).await;
                match family {
                    // Revoked before (with its access tokens): nothing to write again.
                    Ok(family) if family.revoked_at.is_some() => Ok(Revocation::Done),
                    Ok(family) => {
                        service.revoke_session(&family.user_id, &family.id).await?;
                        Ok(Revocation::Done)
                    }
                    Err(e) if is_unusable(&e) => Ok(Revocation::Done),
                    Err(e) => Err(e.into()),
                }
            }
            Some(OpaqueKind::Session) => {
                self.authorise_revocation(parts, raw).await?;
                match service.opaque()?.sessions().end(raw).await {
                    Ok(()) => Ok(Revocation::Done),
                    Err(e) if is_unusable(&e) => Ok(Revocation::Done),
                    Err(e) => Err(e.into()),
                }
            }
            Some(_) => Ok(Revocation::Unsupported),
            None => {
                self.authorise_revocation(parts, raw).await?;
                // Bound (DPoP) tokens too: revoking needs no proof of the key.
                let Some(access) = inactive_unless_backend(self.access(raw).await)? else {
                    return Ok(Revocation::Done);
                };
                if let Some(exp) = access.expires_at() {
                    service.revoke_access(access.token_id(), exp).await?;
                }
                Ok(Revocation::Done)
            }
        }
    }

    /// Whether the caller may revoke `raw`: it is the request's own bearer token, its
    /// session cookie, or the caller holds an API key with the `revoke` scope.
    async fn authorise_revocation(&self, parts: &Parts, raw: &str) -> Result<()> {
        let own =
            |presented: &str| token_core::constant_time_eq(presented.as_bytes(), raw.as_bytes());
        if bearer_token(parts)?.is_some_and(own) {
            return Ok(());
        }
        if self.inner.auth.session_in_cookie(parts)?.is_some_and(own) {
            return Ok(());
        }
        self.api_key_with(parts, REVOKE_SCOPE).await.map(|_| ())
    }
}

/// Whether an opaque-store error says the token is unusable (nothing to revoke)
/// rather than that the store failed.
fn is_unusable(e: &token_opaque::Error) -> bool {
    use token_opaque::Error as O;
    matches!(
        e,
        O::Malformed(_)
            | O::BadChecksum
            | O::WrongKind { .. }
            | O::NotFound
            | O::Expired
            | O::Revoked
            | O::InvalidInput(_)
    )
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub async fn metadata(State(endpoints): State<OAuthEndpoints>) -> Response {
    let mut response = axum::Json(endpoints.metadata()).into_response();
    if let Ok(value) = HeaderValue::from_str(&endpoints.inner.auth.key_set_cache_control()) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
