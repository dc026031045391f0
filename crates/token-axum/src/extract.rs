//! The extractors: [`Access<C>`], [`VerifiedApiKey`], [`VerifiedSession`] and [`Principal`].
//!
//! Each takes the [`AuthState`] from the router state (`AuthState: FromRef<S>`). On a
//! route behind [`crate::AuthLayer`] they reuse what the layer verified; elsewhere they
//! verify the request themselves. Rejections are [`Error`]s, answered as RFC 6750
//! responses.

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::layer::Credential;
use crate::principal::{Access, Principal, VerifiedApiKey, VerifiedSession};
use crate::state::AuthState;

/// An extractor's rejection: an [`Error`] answered with the state's realm (and a
/// `DPoP` challenge when the request used DPoP).
#[derive(Debug)]
pub struct Rejection {
    error: Error,
    response: Box<Response>,
}

impl Rejection {
    fn new(error: Error, state: &AuthState, parts: &Parts) -> Self {
        Self {
            response: Box::new(state.error_response(error.clone(), parts)),
            error,
        }
    }

    /// The error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error, by value.
    pub fn into_error(self) -> Error {
        self.error
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        *self.response
    }
}

/// The principal the layer already put in the request, or a fresh authentication.
async fn principal(
    parts: &Parts,
    state: &AuthState,
    accept: &[Credential],
) -> Result<Principal, Rejection> {
    if let Some(p) = parts.extensions.get::<Principal>() {
        if accept.contains(&p.credential()) {
            return Ok(p.clone());
        }
    }
    let result = state.authenticate(parts, accept).await;
    crate::layer::record(&result);
    result.map_err(|e| Rejection::new(e, state, parts))
}

/// An optional extractor's answer: `None` when the request carries no credential; an
/// invalid credential is still refused.
fn none_if_absent<T>(extracted: Result<T, Rejection>) -> Result<Option<T>, Rejection> {
    match extracted {
        Ok(v) => Ok(Some(v)),
        Err(e) if matches!(e.error, Error::MissingCredentials) => Ok(None),
        Err(e) => Err(e),
    }
}

impl<S, C> FromRequestParts<S> for Access<C>
where
    S: Send + Sync,
    AuthState: FromRef<S>,
    C: DeserializeOwned + Send + 'static,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        match principal(parts, &auth, &[Credential::AccessToken]).await? {
            Principal::AccessToken(access) => {
                access.typed().map_err(|e| Rejection::new(e, &auth, parts))
            }
            _ => Err(Rejection::new(
                Error::InvalidToken(token_core::Reason::WrongTokenType),
                &auth,
                parts,
            )),
        }
    }
}

impl<S, C> OptionalFromRequestParts<S> for Access<C>
where
    S: Send + Sync,
    AuthState: FromRef<S>,
    C: DeserializeOwned + Send + 'static,
{
    type Rejection = Rejection;

    /// `None` when the request carries no credential; an invalid one is still refused.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        none_if_absent(<Self as FromRequestParts<S>>::from_request_parts(parts, state).await)
    }
}

impl<S> FromRequestParts<S> for VerifiedApiKey
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        match principal(parts, &auth, &[Credential::ApiKey]).await? {
            Principal::ApiKey(key) => Ok(key),
            _ => Err(Rejection::new(
                Error::InvalidToken(token_core::Reason::WrongTokenType),
                &auth,
                parts,
            )),
        }
    }
}

impl<S> FromRequestParts<S> for VerifiedSession
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        if let Some(Principal::Session(s)) = parts.extensions.get::<Principal>() {
            return Ok(s.clone());
        }
        // Only the cookie: an `Authorization` header is not a session.
        auth.session_from_cookie(parts)
            .await
            .map_err(|e| Rejection::new(e, &auth, parts))
    }
}

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let auth = AuthState::from_ref(state);
        principal(parts, &auth, &[Credential::AccessToken, Credential::ApiKey]).await
    }
}

impl<S> OptionalFromRequestParts<S> for Principal
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = Rejection;

    /// `None` when the request carries no credential; an invalid one is still refused.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        none_if_absent(<Self as FromRequestParts<S>>::from_request_parts(parts, state).await)
    }
}

/// Whether the request's body is a form (`Content-Type:
/// application/x-www-form-urlencoded`, parameters such as `charset` allowed).
pub fn is_form_urlencoded(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}
