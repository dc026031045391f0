//! The one error type of `token-axum`, and how it answers over HTTP.
//!
//! Every authentication failure becomes an RFC 6750 response: `401` with
//! `WWW-Authenticate: Bearer error="invalid_token", error_description="expired"` (or
//! `revoked`, `wrong audience`, …), `400` with `error="invalid_request"`, `403` with
//! `error="insufficient_scope"`. The description comes from a fixed vocabulary; no token,
//! claim value, key, database message or other internal detail reaches a response body
//! or header. Backend failures answer `503` and the rest `500`, with a generic body.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use token_core::Reason;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `token-axum`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request carries no credentials this route accepts (`401`, a bare
    /// `WWW-Authenticate: Bearer` challenge, as RFC 6750 section 3.1 asks).
    #[error("no credentials")]
    MissingCredentials,
    /// The request is malformed: two credentials, a header that is not a single
    /// `Bearer` token, … (`400`, `error="invalid_request"`).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The credential is not valid: the description is its [`Reason`] (`expired`,
    /// `revoked`, `wrong audience`, `invalid token`, …) (`401`, `error="invalid_token"`).
    #[error("invalid token: {0}")]
    InvalidToken(Reason),
    /// A DPoP proof (RFC 9449) failed a check: the text says which (`401`,
    /// `WWW-Authenticate: DPoP error="invalid_dpop_proof"`; `400` at a token endpoint).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),
    /// The server requires a DPoP nonce and the proof lacks the current one: the
    /// client retries with this nonce (`401`, `WWW-Authenticate: DPoP
    /// error="use_dpop_nonce"` and a `DPoP-Nonce` header; `400` at a token endpoint).
    #[error("a DPoP nonce is required")]
    UseDpopNonce(String),
    /// A sensitive action saw another client context than the session started in
    /// ([`crate::context::ContextCheck`]): the user must sign in again (`401`,
    /// `error="reauthentication_required"`).
    #[error("reauthentication required")]
    ReauthenticationRequired,
    /// The credential is valid but lacks a scope the route requires (`403`,
    /// `error="insufficient_scope"`).
    #[error("insufficient scope: `{0}` is required")]
    InsufficientScope(String),
    /// Too many requests of this kind; retry after `retry_after` (`429`).
    #[error("rate limited; retry after {}s", retry_secs(*.retry_after))]
    RateLimited {
        /// How long until the next attempt is allowed.
        retry_after: Duration,
    },
    /// A backend (database, revocation list, key-set URL) failed or is unreachable
    /// (`503`). The message names the class of failure, never a value or a secret;
    /// it goes to logs, not to responses.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// A key set could not be fetched or read (`503`).
    #[error("key set: {0}")]
    KeySet(String),
    /// The cached key set is older than the client's maximum staleness and no fetch
    /// has succeeded since: verification fails closed until one does (`503`, with
    /// `Retry-After`).
    #[error("key set too stale; retry after {}s", retry_secs(*.retry_after))]
    StaleKeySet {
        /// When the next fetch may be tried.
        retry_after: Duration,
    },
    /// Too many costly operations (password checks, …) are already running and this
    /// one waited as long as it may (`503`, with `Retry-After`).
    #[error("busy; retry after {}s", retry_secs(*.retry_after))]
    Busy {
        /// How long the client should wait before trying again.
        retry_after: Duration,
    },
    /// This process's revocation state is older than its bound: verification fails
    /// closed until it is back in sync (`503`, with `Retry-After`).
    #[error("revocation state stale; retry after {}s", retry_secs(*.retry_after))]
    RevocationStale {
        /// How long the client should wait before trying again.
        retry_after: Duration,
    },
    /// A configuration that cannot work: an unusable URL, an invalid header name, …
    /// (`500`).
    #[error("configuration: {0}")]
    Config(String),
    /// Anything else (`500`). The message is for logs only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials
            | Self::InvalidToken(_)
            | Self::InvalidDpopProof(_)
            | Self::UseDpopNonce(_)
            | Self::ReauthenticationRequired => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_)
            | Self::KeySet(_)
            | Self::StaleKeySet { .. }
            | Self::RevocationStale { .. }
            | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Config(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The OAuth error code of the response body (`invalid_token`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "unauthorized",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidToken(_) => "invalid_token",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce(_) => "use_dpop_nonce",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_)
            | Self::KeySet(_)
            | Self::StaleKeySet { .. }
            | Self::RevocationStale { .. }
            | Self::Busy { .. } => "temporarily_unavailable",
            Self::Config(_) | Self::Internal(_) => "server_error",
        }
    }

    /// Why, in the closed set of phrases every tessera crate shares.
    pub fn reason(&self) -> Reason {
        match self {
            Self::MissingCredentials => Reason::MissingCredentials,
            Self::InvalidRequest(_) => Reason::InvalidRequest,
            Self::InvalidToken(reason) => *reason,
            Self::InvalidDpopProof(_) => Reason::InvalidDpopProof,
            Self::UseDpopNonce(_) => Reason::UseDpopNonce,
            Self::ReauthenticationRequired => Reason::ReauthenticationRequired,
            Self::InsufficientScope(_) => Reason::InsufficientScope,
            Self::RateLimited { .. } => Reason::RateLimited,
            Self::Unavailable(_) => Reason::StorageUnavailable,
            Self::RevocationStale { .. } => Reason::RevocationUnavailable,
            Self::KeySet(_) | Self::StaleKeySet { .. } => Reason::KeySetUnavailable,
            Self::Busy { .. } => Reason::Busy,
            Self::Config(_) | Self::Internal(_) => Reason::Internal,
        }
    }

    /// The text safe to show a client: the fixed description of a token or request
    /// error, nothing for the others.
    pub fn description(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(d) | Self::InvalidDpopProof(d) => Some(d),
            Self::InvalidToken(reason) => Some(reason.as_str()),
            Self::UseDpopNonce(_) => Some("a DPoP nonce is required"),
            Self::ReauthenticationRequired => {
                Some("the client context changed: sign in again for this action")
            }
            Self::InsufficientScope(_) => Some("the token lacks a required scope"),
            _ => None,
        }
    }

    /// Whether this error is about DPoP by nature, so its challenge is a `DPoP` one
    /// whatever the request's scheme: a refused proof, a missing nonce, a bound token
    /// presented as a bearer token.
    pub fn is_dpop(&self) -> bool {
        matches!(
            self,
            Self::InvalidDpopProof(_)
                | Self::UseDpopNonce(_)
                | Self::InvalidToken(Reason::SenderConstrained)
        )
    }

    #[cfg(test)]
    fn challenge(&self, realm: Option<&str>) -> Option<String> {
        self.challenge_with(realm, None)
    }

    /// The `WWW-Authenticate` value: a `Bearer` challenge, or a `DPoP` one (with
    /// `algs`) when `dpop_algs` is given or the error is about DPoP.
    fn challenge_with(&self, realm: Option<&str>, dpop_algs: Option<&str>) -> Option<String> {
        let dpop_algs = dpop_algs.or(self.is_dpop().then_some(DEFAULT_DPOP_ALGS));
        let mut params = Vec::new();
        if let Some(realm) = realm {
            params.push(format!("realm=\"{}\"", quote(realm)));
        }
        match self {
            Self::MissingCredentials => {}
            Self::InvalidRequest(_)
            | Self::InvalidToken(_)
            | Self::InsufficientScope(_)
            | Self::InvalidDpopProof(_)
            | Self::UseDpopNonce(_)
            | Self::ReauthenticationRequired => {
                params.push(format!("error=\"{}\"", self.code()));
                if let Some(d) = self.description() {
                    params.push(format!("error_description=\"{}\"", quote(d)));
                }
                if let Self::InsufficientScope(scope) = self {
                    params.push(format!("scope=\"{}\"", quote(scope)));
                }
            }
            _ => return None,
        }
        let scheme = match dpop_algs {
            Some(algs) => {
                params.push(format!("algs=\"{}\"", quote(algs)));
                "DPoP"
            }
            None => "Bearer",
        };
        Some(if params.is_empty() {
            scheme.to_owned()
        } else {
            format!("{scheme} {}", params.join(", "))
        })
    }

    /// How long the client should wait before retrying, for the errors that say so
    /// (`429` and the `503`s of [`Error::StaleKeySet`] and [`Error::Busy`]); it is
    /// sent as `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after }
            | Self::StaleKeySet { retry_after }
            | Self::RevocationStale { retry_after }
            | Self::Busy { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The response, with a `realm` in the challenge.
    pub fn into_response_with_realm(self, realm: Option<&str>) -> Response {
        self.into_response_with(realm, None)
    }

    /// The response to a request that used DPoP (or to a route taking DPoP-bound
    /// tokens): a `DPoP` challenge naming the algorithms `algs` (`"ES256 EdDSA"`).
    pub fn into_dpop_response(self, realm: Option<&str>, algs: &str) -> Response {
        self.into_response_with(realm, Some(algs))
    }

    /// The response of a token endpoint (login, refresh), where RFC 9449 sections 5
    /// and 8 answer a refused proof `400` with `{"error":"invalid_dpop_proof"}` or
    /// `{"error":"use_dpop_nonce"}` and a `DPoP-Nonce` header; every other error
    /// answers as [`Error::into_response_with_realm`].
    pub fn into_token_endpoint_response(self, realm: Option<&str>) -> Response {
        if !matches!(self, Self::InvalidDpopProof(_) | Self::UseDpopNonce(_)) {
            return self.into_response_with_realm(realm);
        }
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code().into());
        if let Some(d) = self.description() {
            body.insert("error_description".into(), d.into());
        }
        let mut response = (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::Value::Object(body)),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Self::UseDpopNonce(nonce) = &self {
            set_nonce_header(headers, nonce);
        }
        response
    }

    fn into_response_with(self, realm: Option<&str>, dpop_algs: Option<&str>) -> Response {
        let status = self.status();
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.code().into());
        if let Some(d) = self.description() {
            body.insert("error_description".into(), d.into());
        }
        if let Self::InsufficientScope(scope) = &self {
            body.insert("scope".into(), scope.clone().into());
        }
        let mut response = (status, axum::Json(serde_json::Value::Object(body))).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge_with(realm, dpop_algs) {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Self::UseDpopNonce(nonce) = &self {
            set_nonce_header(headers, nonce);
        }
        if let Some(retry_after) = self.retry_after() {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_secs(retry_after)),
            );
        }
        response
    }
}

/// The `algs` of a `DPoP` challenge when the verifier's own are not at hand: the
/// default allow-list (`token_jwt::dpop::DEFAULT_ALGORITHMS`, and `Ed25519`, RFC 9864's
/// name of EdDSA on Ed25519).
pub const DEFAULT_DPOP_ALGS: &str = "ES256 EdDSA Ed25519";

/// `DPoP-Nonce: nonce`, readable by a browser client's script (CORS).
fn set_nonce_header(headers: &mut axum::http::HeaderMap, nonce: &str) {
    if nonce.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(nonce) {
        headers.insert("dpop-nonce", value);
        headers.append(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("DPoP-Nonce"),
        );
    }
}

/// Whole seconds for `Retry-After`: rounded up, at least one (a client told `0` would
/// retry at once).
fn retry_secs(d: Duration) -> u64 {
    d.as_secs()
        .saturating_add(u64::from(d.subsec_nanos() > 0))
        .max(1)
}

/// Makes `s` safe inside an RFC 9110 quoted string: visible ASCII and spaces only, with
/// `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.into_response_with_realm(None)
    }
}

impl From<token_policy::Error> for Error {
    /// A token failure answers `401` with its [`Reason`] as the description; a scope,
    /// a rate limit and a backend get their own statuses; the rest is `500`. The
    /// phrase is the one every crate's `reason()` gives: there is no second table.
    fn from(e: token_policy::Error) -> Self {
        use token_opaque::Error as O;
        use token_policy::Error as P;
        match &e {
            P::Opaque(O::MissingScope(scope)) => return Self::InsufficientScope(scope.clone()),
            P::Opaque(O::RateLimited { retry_after }) => {
                return Self::RateLimited {
                    retry_after: *retry_after,
                };
            }
            // A subject's live single-use marks expire with the tokens (minutes).
            P::SingleUseLimit => {
                return Self::RateLimited {
                    retry_after: Duration::from_secs(60),
                };
            }
            P::KeySetUnavailable {
                retry_after: Some(retry_after),
                ..
            } => {
                return Self::StaleKeySet {
                    retry_after: *retry_after,
                };
            }
            P::KeySetUnavailable {
                detail,
                retry_after: None,
            } => return Self::KeySet(detail.clone()),
            #[cfg(feature = "jwt")]
            P::Dpop(d) => {
                return match d {
                    token_jwt::dpop::DpopError::NonceRequired
                    | token_jwt::dpop::DpopError::NonceMismatch => {
                        Self::UseDpopNonce(String::new())
                    }
                    other => Self::InvalidDpopProof(crate::dpop::description(other)),
                };
            }
            // The feed answers within its poll once Redis is back.
            P::RevocationStale { .. } => {
                return Self::RevocationStale {
                    retry_after: Duration::from_secs(1),
                };
            }
            _ => {}
        }
        match e.reason() {
            Reason::StorageUnavailable | Reason::RevocationUnavailable => {
                Self::Unavailable(e.to_string())
            }
            Reason::KeySetUnavailable => Self::KeySet(e.to_string()),
            Reason::Internal
            | Reason::PolicyViolation
            | Reason::SensitiveClaim
            | Reason::RateLimited
            | Reason::InsufficientScope => Self::Internal(e.to_string()),
            reason => Self::InvalidToken(reason),
        }
    }
}

impl From<token_opaque::Error> for Error {
    fn from(e: token_opaque::Error) -> Self {
        token_policy::Error::Opaque(e).into()
    }
}

impl From<token_core::Error> for Error {
    fn from(e: token_core::Error) -> Self {
        token_policy::Error::Core(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_fixed_and_quoted() {
        let e = Error::InvalidToken(token_core::Reason::Expired);
        assert_eq!(
            e.challenge(None).as_deref(),
            Some(r#"Bearer error="invalid_token", error_description="expired""#)
        );
        assert_eq!(
            Error::MissingCredentials.challenge(Some("api")).as_deref(),
            Some(r#"Bearer realm="api""#)
        );
        let scope = Error::InsufficientScope("a\"b".into());
        assert!(
            scope
                .challenge(None)
                .unwrap_or_default()
                .contains(r#"scope="a\"b""#)
        );
        assert_eq!(Error::Internal("x".into()).challenge(None), None);
        assert_eq!(quote("é\n"), "??");
    }

    #[test]
    fn backend_messages_stay_out_of_bodies() {
        let e: Error = token_policy::Error::Backend("redis (IoError) at 10.0.0.1".into()).into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.description(), None);
        let e: Error = token_policy::Error::Revoked.into();
        assert_eq!(e, Error::InvalidToken(token_core::Reason::Revoked));
        let e: Error = token_policy::Error::Core(token_core::Error::Expired {
            exp: token_core::Timestamp::UNIX_EPOCH,
        })
        .into();
        assert_eq!(e, Error::InvalidToken(token_core::Reason::Expired));
        // A claim error quoting the token's content is replaced by a fixed phrase.
        let e: Error = token_core::Error::MalformedClaims("expected `hunter2`".into()).into();
        assert_eq!(e, Error::InvalidToken(token_core::Reason::InvalidClaims));
        let e: Error = token_opaque::Error::ReuseDetected.into();
        assert_eq!(e, Error::InvalidToken(token_core::Reason::ReuseDetected));
        let e: Error = token_opaque::Error::RateLimited {
            retry_after: Duration::from_secs(7),
        }
        .into();
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn retry_after_is_sent_rounded_up_on_429_and_the_retryable_503s() {
        let header = |e: Error| {
            let response = e.into_response();
            (
                response.status(),
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .map(|v| v.to_str().unwrap_or_default().to_owned()),
            )
        };
        let d = Duration::from_millis(1500);
        assert_eq!(
            header(Error::RateLimited { retry_after: d }),
            (StatusCode::TOO_MANY_REQUESTS, Some("2".into()))
        );
        assert_eq!(
            header(Error::StaleKeySet { retry_after: d }),
            (StatusCode::SERVICE_UNAVAILABLE, Some("2".into()))
        );
        assert_eq!(
            header(Error::Busy {
                retry_after: Duration::ZERO
            }),
            (StatusCode::SERVICE_UNAVAILABLE, Some("1".into()))
        );
        assert_eq!(
            header(Error::KeySet("cannot connect".into())),
            (StatusCode::SERVICE_UNAVAILABLE, None)
        );
        assert_eq!(
            Error::Busy {
                retry_after: Duration::from_secs(3)
            }
            .code(),
            "temporarily_unavailable"
        );
    }
}
