//! The key-set endpoints verifiers fetch: `GET /.well-known/jwks.json` and
//! `GET /.well-known/paseto-keys.json`.
//!
//! Each publishes the public halves of the access keys, current and retired, so
//! tokens signed before a rotation keep verifying while they live. `Cache-Control:
//! public, max-age=N` (see [`crate::AuthState::key_set_max_age`]) bounds how long a
//! client keeps an old set; a client meeting an unknown `kid` refetches sooner (see
//! [`crate::KeySetClient`]). The set matching the policy's access format is full and
//! the other one is empty, so both can be mounted as they are.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AuthState;

/// The path of the JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// The path of the PASERK key set.
pub const PASETO_KEYS_PATH: &str = "/.well-known/paseto-keys.json";
/// The path of the protected-resource metadata (RFC 9728).
pub const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource";
/// The metadata member naming the DPoP proof algorithms accepted (RFC 9449 section
/// 5.1; RFC 9728 section 2).
pub const DPOP_SIGNING_ALG_VALUES_SUPPORTED: &str = "dpop_signing_alg_values_supported";

/// The metadata members about DPoP, to merge into any metadata document the service
/// publishes (authorization-server or protected-resource metadata):
/// `dpop_signing_alg_values_supported`, the allow-list of the verifier in force.
#[cfg(feature = "jwt")]
pub fn dpop_metadata(state: &AuthState) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    out.insert(
        DPOP_SIGNING_ALG_VALUES_SUPPORTED.to_owned(),
        state.dpop_signing_alg_values_supported().into(),
    );
    out
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728): how to present tokens
/// here — in the `Authorization` header, DPoP-bound ones with a proof signed with one
/// of `dpop_signing_alg_values_supported`.
#[cfg(feature = "jwt")]
pub async fn protected_resource(State(state): State<AuthState>) -> Response {
    let mut doc = serde_json::Map::new();
    if let Some(origin) = state.dpop_settings().map(crate::dpop::DpopSettings::origin) {
        doc.insert("resource".into(), origin.into());
    }
    doc.insert("bearer_methods_supported".into(), vec!["header"].into());
    doc.extend(dpop_metadata(&state));
    document(
        &state,
        &serde_json::Value::Object(doc).to_string(),
        "application/json",
    )
}

fn document(state: &AuthState, body: &str, content_type: &'static str) -> Response {
    let mut response = body.to_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&state.key_set_cache_control()) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

/// `GET /.well-known/jwks.json`: the JWKS of the JWT access keys (RFC 7517, served as
/// `application/jwk-set+json`); `{"keys":[]}` when access tokens are PASETO.
pub async fn jwks(State(state): State<AuthState>) -> Response {
    document(&state, &state.jwks_json(), "application/jwk-set+json")
}

/// `GET /.well-known/paseto-keys.json`: the PASERK public-key set of the PASETO access
/// keys (see [`token_paseto::PublicKeySet`]); `{"keys":[]}` when access tokens are
/// JWTs.
pub async fn paseto_keys(State(state): State<AuthState>) -> Response {
    document(&state, &state.paseto_keys_json(), "application/json")
}

/// A router serving both key sets at their well-known paths (and, with the `jwt`
/// feature, the protected-resource metadata), to merge into an application's router.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AuthState: FromRef<S>,
{
    let router = Router::new()
        .route(JWKS_PATH, get(jwks))
        .route(PASETO_KEYS_PATH, get(paseto_keys));
    #[cfg(feature = "jwt")]
    let router = router.route(PROTECTED_RESOURCE_PATH, get(protected_resource));
    router
}
