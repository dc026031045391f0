//! The service's error answers: every one JSON.

use super::{
    HeaderValue, ISSUER, IntoResponse, Json, JsonRejection, MAX_BODY, Response, StatusCode, header,
    json,
};

/// Every error answer is JSON: what the handlers and the auth layer answer already is,
/// and the rest — extractor rejections (a path that is not UTF-8), `405` — is rewritten
/// here as `{"error": …}` with its status and headers kept.
pub(crate) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
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
pub(crate) enum ApiError {
    Auth(token_axum::Error),
    BadRequest(&'static str),
    InvalidCredentials,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// A per-account bound is reached (API keys).
    LimitReached(String),
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

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            _ => Self::BadRequest("the body must be the JSON object this route takes"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            Self::Auth(e) => return e.into_response_with_realm(Some(ISSUER)),
            Self::BadRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", Some(d.into())),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials", None),
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

pub(crate) type Body<T> = Result<Json<T>, JsonRejection>;

pub(crate) fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
