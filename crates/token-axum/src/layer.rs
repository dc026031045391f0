//! [`AuthLayer`]: authentication and scope checks for whole routers or single routes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use tower::{Layer, Service};

use crate::error::Error;
use crate::principal::Principal;
use crate::state::AuthState;

/// A kind of credential a route accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Credential {
    /// An access token in `Authorization: Bearer …` (PASETO or JWT, per the policy).
    AccessToken,
    /// An API key in `Authorization: Bearer sk_…` or the configured API-key header.
    ApiKey,
    /// The server-side session cookie. Browsers send cookies on their own: a route
    /// taking sessions for state-changing requests needs CSRF protection
    /// (`SameSite=Strict` cookies, or a token the page echoes).
    Session,
}

impl Credential {
    /// `access_token`, `api_key` or `session`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::ApiKey => "api_key",
            Self::Session => "session",
        }
    }
}

/// Records the authentication of one request: `tessera_http_auth_total` (feature
/// `metrics`) and an event (feature `tracing`: `DEBUG` for a refusal, `WARN` when this
/// side failed). The reason and the credential's kind only: never the credential.
pub(crate) fn record(result: &Result<Principal, Error>) {
    #[cfg(feature = "metrics")]
    crate::metrics::record_auth(result.as_ref().err().map(Error::reason));
    #[cfg(feature = "tracing")]
    match result {
        Ok(principal) => tracing::trace!(
            credential = principal.credential().as_str(),
            "request authenticated"
        ),
        Err(e) if e.reason().is_unavailable() => tracing::warn!(
            reason = e.reason().as_str(),
            error = %e,
            "request not authenticated: this side failed"
        ),
        Err(e) => tracing::debug!(reason = e.reason().as_str(), "request refused"),
    }
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = result;
}

/// A tower [`Layer`] that authenticates every request before the inner service sees
/// it, checks the required scopes, and puts the [`Principal`] into the request
/// extensions (where the extractors find it).
///
/// Failures answer as RFC 6750 says: `401` with a `WWW-Authenticate: Bearer` challenge
/// (`error="invalid_token"` and a short `error_description` for a bad credential),
/// `400` for a malformed request, `403` (`error="insufficient_scope"`) for a missing
/// scope.
///
/// Per-route scopes: add a layer to each route with `route_layer` (or
/// `MethodRouter::layer`), each with its own [`AuthLayer::require_scope`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    state: AuthState,
    accept: Arc<[Credential]>,
    scopes: Arc<[String]>,
}

impl AuthLayer {
    /// A layer accepting access tokens only.
    pub fn new(state: AuthState) -> Self {
        Self::accepting(state, [Credential::AccessToken])
    }

    /// A layer accepting the given kinds of credential.
    pub fn accepting(state: AuthState, accept: impl IntoIterator<Item = Credential>) -> Self {
        Self {
            state,
            accept: accept.into_iter().collect(),
            scopes: Arc::from(Vec::new()),
        }
    }

    /// Requires `scope` as well (every required scope must be granted).
    #[must_use]
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        let mut scopes = self.scopes.to_vec();
        scopes.push(scope.into());
        self.scopes = scopes.into();
        self
    }

    /// Authenticates a request head and checks the scopes, as the layer does.
    ///
    /// # Errors
    /// As [`AuthState::authenticate`]; [`Error::InsufficientScope`].
    /// Each call is counted in `tessera_http_auth_total` (feature `metrics`).
    pub async fn check(&self, parts: &axum::http::request::Parts) -> Result<Principal, Error> {
        let result = self.authorize(parts).await;
        record(&result);
        result
    }

    async fn authorize(&self, parts: &axum::http::request::Parts) -> Result<Principal, Error> {
        let principal = self.state.authenticate(parts, &self.accept).await?;
        for scope in self.scopes.iter() {
            principal.require_scope(scope)?;
        }
        Ok(principal)
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the inner one.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> Service<Request> for AuthService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match layer.check(&parts).await {
                Ok(principal) => {
                    parts.extensions.insert(principal);
                    inner.call(Request::from_parts(parts, body)).await
                }
                Err(e) => Ok(e.into_response_with_realm(layer.state.challenge_realm())),
            }
        })
    }
}
