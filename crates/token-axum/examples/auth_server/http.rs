//! What a browser frontend needs around the routes: CORS for the origins allowed, and
//! request logging.

use std::sync::Arc;

use axum::extract::MatchedPath;
use axum::http::Request;
use axum::response::Response;
use tower::layer::util::{Identity, Stack};
use tower::util::MapResponseLayer;
use tower_http::classify::{
    NeverClassifyEos, ServerErrorsAsFailures, ServerErrorsFailureClass, SharedClassifier,
};
use tower_http::cors::{AllowCredentials, AllowOrigin, CorsLayer};
use tower_http::trace::{ResponseBody, TraceLayer};

use super::header;
use super::{API_KEY_HEADER, ConnectInfo, Duration, HeaderName, HeaderValue, Method, SocketAddr};

/// How long a browser may keep a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Parses `--cors-origin`: `https://host[:port]` or `http://host[:port]`, as a browser
/// sends it in `Origin` (no path, no trailing `/`, no `*`: credentials are never
/// allowed to every origin). The scheme and host are lowercased.
pub(crate) fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let lower = text.trim().to_ascii_lowercase();
    let explain = || {
        format!(
            "{text:?} is not an origin: give the scheme and host (and port) a browser sends, \
             such as https://app.example.com or http://localhost:3000"
        )
    };
    let authority = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(explain)?;
    let port = if let Some(literal) = authority.strip_prefix('[') {
        // An IPv6 literal: [::1]:3000.
        let (address, after) = literal.split_once(']').ok_or_else(explain)?;
        let address_ok = !address.is_empty()
            && address
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b));
        if !address_ok {
            return Err(explain());
        }
        match after {
            "" => None,
            port => Some(port.strip_prefix(':').ok_or_else(explain)?),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b));
        if !host_ok {
            return Err(explain());
        }
        port
    };
    if !port.is_none_or(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    }) {
        return Err(explain());
    }
    HeaderValue::from_str(&lower).map_err(|_| explain())
}

/// CORS for `origins` only: a listed origin gets `Access-Control-Allow-Origin` (itself)
/// and `Access-Control-Allow-Credentials: true`, so its pages may send the refresh
/// cookie and an `Authorization` header and read the answers; any other origin gets
/// neither header, and its browser keeps the answer from its page. Preflights
/// (`OPTIONS` with `Access-Control-Request-Method`) are answered here, before routing.
pub(crate) fn cors_layer(origins: Vec<HeaderValue>) -> CorsLayer {
    let listed: Arc<[HeaderValue]> = origins.clone().into();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(AllowCredentials::predicate(move |origin, _| {
            listed.contains(origin)
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(API_KEY_HEADER),
        ])
        .expose_headers([header::RETRY_AFTER, header::WWW_AUTHENTICATE])
        .max_age(PREFLIGHT_MAX_AGE)
}

/// The request log's layer: `tower-http`'s trace layer with this file's span and
/// response line, its responses' body turned back into axum's (so the stack has one
/// response type with the log and without it).
pub(crate) type RequestLog = Stack<
    TraceLayer<
        SharedClassifier<ServerErrorsAsFailures>,
        fn(&Request<axum::body::Body>) -> tracing::Span,
        (),
        fn(&Response, Duration, &tracing::Span),
        (),
        (),
        (),
    >,
    Stack<MapResponseLayer<fn(Response<LoggedBody>) -> Response>, Identity>,
>;

/// The body of a response through the trace layer.
type LoggedBody =
    ResponseBody<axum::body::Body, NeverClassifyEos<ServerErrorsFailureClass>, (), (), ()>;

/// The request log: one line per answered request at `INFO` (`WARN` for a `5xx`)
/// through `tower-http`'s trace layer: the method, the route *template*
/// (`/api-keys/{id}`, never the path as sent, nor its query), the client address, the
/// status and the latency. No header (so no `Authorization`, no cookie), no body (so no
/// password, no token) is ever logged; a request no route matches logs `route=-`.
/// Applied with `Router::layer`, after routing, so it sees the route.
pub(crate) fn request_log_layer() -> RequestLog {
    tower::ServiceBuilder::new()
        .map_response(axum_body as fn(Response<LoggedBody>) -> Response)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span as fn(&Request<axum::body::Body>) -> tracing::Span)
                .on_request(())
                .on_response(log_response as fn(&Response, Duration, &tracing::Span))
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .into_inner()
}

fn axum_body(response: Response<LoggedBody>) -> Response {
    response.map(axum::body::Body::new)
}

fn request_span(request: &Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("-", MatchedPath::as_str);
    // Formatted only when the span is recorded: with `--no-request-log` nothing is.
    let peer = Peer(
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip()),
    );
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        peer = %peer,
    )
}

/// The client's address in the log, `-` when unknown.
struct Peer(Option<std::net::IpAddr>);

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

fn log_response(response: &Response, latency: Duration, _: &tracing::Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_millis();
    if response.status().is_server_error() {
        tracing::warn!(status, latency_ms, "answered");
    } else {
        tracing::info!(status, latency_ms, "answered");
    }
}
