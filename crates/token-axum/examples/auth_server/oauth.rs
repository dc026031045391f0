//! The OAuth endpoints (`token_axum::oauth`): introspection for gateways, revocation
//! for OAuth clients, and the server metadata.

use super::*;

/// `POST /oauth/introspect`, `POST /oauth/revoke` and `GET
/// /.well-known/oauth-authorization-server`, their URLs under `public_url`. Errors
/// answer as every other route's do (JSON, `no-store`).
pub(crate) fn routes(app: &Arc<App>, public_url: &str) -> anyhow::Result<Router<AppState>> {
    let endpoints =
        token_axum::OAuthEndpoints::new(app.auth.clone(), public_url).context("--public-url")?;
    Ok(endpoints.router())
}
