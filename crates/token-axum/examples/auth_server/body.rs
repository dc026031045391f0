//! JSON request bodies, with errors that say what is wrong (and never repeat a value).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::{ApiError, HeaderMap, StatusCode, header};

/// A JSON body of type `T`. Its refusals:
///
/// - `415 unsupported_media_type` unless `Content-Type` is `application/json` (or
///   `application/*+json`);
/// - `413 payload_too_large` over the body limit;
/// - `400 invalid_request` naming the problem: ``missing field `password` ``,
///   ``unknown field `surprise`, expected one of …``, `` `amount`: expected u64 ``,
///   `the body is not valid JSON (line 1, column 9)`. A value the client sent is never
///   repeated (it may be a password); a field name it sent is, cut to 64 characters.
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
                    _ => ApiError::BadRequest("the body could not be read"),
                })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Whether the request says its body is JSON.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// Parses a body as `T`: one JSON object, nothing after it. (serde would also take an
/// array of the fields' values, in order, as a struct: that is refused.)
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(ApiError::BadRequest("the body must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| ApiError::InvalidBody(describe(&e)))?;
    deserializer.end().map_err(|e| {
        ApiError::InvalidBody(format!(
            "the body has more after its JSON value (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    Ok(value)
}

/// The most characters of a client's field name repeated in an error.
const MAX_NAME: usize = 64;

/// What is wrong with a body, in words that name fields and never repeat a value.
pub(crate) fn describe(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    use serde_json::error::Category;
    let inner = error.inner();
    match inner.classify() {
        Category::Syntax | Category::Eof => format!(
            "the body is not valid JSON (line {}, column {})",
            inner.line(),
            inner.column()
        ),
        Category::Io => "the body could not be read".to_owned(),
        Category::Data => describe_data(&error.path().to_string(), &message_of(inner)),
    }
}

/// serde_json's message without its " at line L column C".
fn message_of(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&position) {
        Some(message) => message.to_owned(),
        None => full,
    }
}

/// A data error (the JSON is well formed, the shape is not the route's), from serde's
/// message: field names are kept, values dropped.
fn describe_data(path: &str, message: &str) -> String {
    let at_root = path == "." || path.is_empty();
    for kind in ["missing field `", "duplicate field `"] {
        if let Some(rest) = message.strip_prefix(kind) {
            let name = rest.split('`').next().unwrap_or_default();
            let what = kind.trim_end_matches(" `");
            return if at_root {
                format!("{what} `{}`", clean(name))
            } else {
                format!("{what} `{}` in `{}`", clean(name), clean(path))
            };
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // "unknown field `x`, expected one of `a`, `b`" / "…, there are no fields":
        // the expected names are the route's own.
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        return format!("unknown field `{}`{tail}", clean(name));
    }
    if at_root {
        return "the body must be a JSON object".to_owned();
    }
    // "invalid type: string \"…\", expected u64": the value goes, the expectation stays.
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!("`{}`: expected {expected}", clean(path)),
        None => format!("`{}` has an invalid value", clean(path)),
    }
}

/// A client's name, as printable ASCII of at most [`MAX_NAME`] characters.
fn clean(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(MAX_NAME)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    if name.chars().count() > MAX_NAME {
        out.push('…');
    }
    out
}
