//! The service's error answers: every one JSON.

use super::{
    HeaderValue, ISSUER, IntoResponse, Json, MAX_BODY, Reason, Response, StatusCode, header, json,
};

/// Every error answer is JSON (or a page's HTML): what the handlers and the auth layer answer already is,
/// and the rest — extractor rejections (a path that is not UTF-8), `405` — is rewritten
/// here as `{"error": …}` with its status and headers kept.
pub(crate) fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let error = match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "server_error",
        _ => "invalid_request",
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let body = serde_json::to_vec(&json!({ "error": error })).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Errors of this service's own handlers.
///
/// `401` is kept for the caller's own credential (the `Authorization` header, the
/// refresh cookie, a login's name and password): a frontend that answers `401` by
/// refreshing once and then logging out never logs out a user whose credential is
/// fine. A bad token in a request *body* is [`ApiError::BodyToken`]: `400`, `403` or
/// `409` with an error code of its own.
pub(crate) enum ApiError {
    Auth(token_axum::Error),
    BadRequest(&'static str),
    /// A body that is not what the route takes; the text names the field.
    InvalidBody(String),
    /// A token carried in the request body (a payment token, a password-reset token)
    /// is refused: `status`, `error`, and the reason as the description.
    BodyToken {
        status: StatusCode,
        error: &'static str,
        reason: Reason,
    },
    InvalidCredentials,
    /// `POST /password` with a current password that is not the account's.
    WrongPassword,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// A per-account bound is reached (API keys).
    LimitReached(String),
    /// A cookie-authenticated call from another origin.
    CrossSite(token_axum::csrf::CrossSite),
}

impl From<token_axum::Error> for ApiError {
    fn from(e: token_axum::Error) -> Self {
        Self::Auth(e)
    }
}

impl From<token_policy::Error> for ApiError {
    fn from(e: token_policy::Error) -> Self {
        match e {
            token_policy::Error::Opaque(token_opaque::Error::InvalidInput(reason)) => {
                Self::BadRequest(reason)
            }
            token_policy::Error::Opaque(e @ token_opaque::Error::TooManyApiKeys { .. }) => {
                Self::LimitReached(e.to_string())
            }
            other => Self::Auth(other.into()),
        }
    }
}

impl ApiError {
    /// The error of a token the request body carried: a token failure becomes a
    /// [`ApiError::BodyToken`] with the status and code `classify` gives its reason;
    /// anything else (a backend down, a rate limit) answers as it always does.
    pub(crate) fn body_token(
        e: token_policy::Error,
        classify: impl FnOnce(Reason) -> (StatusCode, &'static str),
    ) -> Self {
        match token_axum::Error::from(e) {
            token_axum::Error::InvalidToken(reason) => {
                let (status, error) = classify(reason);
                Self::BodyToken {
                    status,
                    error,
                    reason,
                }
            }
            other => Self::Auth(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            Self::Auth(e) => return e.into_response_with_realm(Some(ISSUER)),
            Self::BadRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", Some(d.into())),
            Self::InvalidBody(d) => (StatusCode::BAD_REQUEST, "invalid_request", Some(d)),
            Self::BodyToken {
                status,
                error,
                reason,
            } => (status, error, Some(reason.as_str().into())),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials", None),
            Self::WrongPassword => (
                StatusCode::FORBIDDEN,
                "wrong_password",
                Some("the current password is not right".into()),
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", None),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                Some(format!("a request body is at most {MAX_BODY} bytes")),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                Some("the body must be JSON (Content-Type: application/json)".into()),
            ),
            Self::LimitReached(d) => (StatusCode::CONFLICT, "limit_reached", Some(d)),
            Self::CrossSite(why) => (
                StatusCode::FORBIDDEN,
                "cross_site_request",
                Some(why.to_string()),
            ),
        };
        let mut body = serde_json::Map::new();
        body.insert("error".into(), error.into());
        if let Some(d) = description {
            body.insert("error_description".into(), d.into());
        }
        let mut response = (status, Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera-reference-auth\""),
            );
        }
        response
    }
}

pub(crate) fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
