//! A resource server: an API that only verifies the access tokens an auth service
//! issued. It holds no signing key, no payment key and no store — only the issuer's
//! public keys, fetched from its key-set URL (a PASERK key set or a JWKS, told apart by
//! the document), and optionally the issuer's revocation list, kept in memory and fed
//! by Redis (`ReplicatedBlocklist`: no network on the verify path; past two seconds
//! without a confirmed sync, verification answers `503` until it is back).
//!
//! ```text
//! cargo run -p tessera --example resource_server -- --addr 127.0.0.1:PORT \
//!     --key-set-url URL --issuer ISS --audience AUD [--redis-url URL]
//! ```
//!
//! `GET /whoami` answers `200 {"sub": …, "scopes": […]}` for a valid access token, and
//! the RFC 6750 `401` otherwise. `GET /metrics` answers the Prometheus text format:
//! verifications by reason (`tessera_verify_total`, `tessera_http_auth_total`) and,
//! with `--redis-url`, the revocation replica's lag. It stops (exit 0) on Ctrl-C or
//! SIGTERM.
#![allow(clippy::print_stdout)] // an example program reports on stdout
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde_json::{Value, json};
use tessera::axum::metrics::{MetricsRoute, Prometheus};
use tessera::policy::{JsonObject, RedisBlocklist, ReplicaOptions, ReplicatedBlocklist};
use tessera::prelude::*;

#[derive(Parser)]
#[command(
    name = "resource_server",
    about = "An API that only verifies access tokens"
)]
struct Args {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long)]
    addr: SocketAddr,
    /// The issuer's key set: its `/.well-known/paseto-keys.json` or `/.well-known/jwks.json`.
    #[arg(long)]
    key_set_url: String,
    /// The `iss` tokens must carry.
    #[arg(long)]
    issuer: String,
    /// The `aud` tokens must name.
    #[arg(long)]
    audience: String,
    /// The issuer's Redis revocation list, so logouts reach this service too (followed
    /// in memory).
    #[arg(long)]
    redis_url: Option<String>,
}

async fn whoami(access: Access<JsonObject>) -> Json<Value> {
    Json(json!({ "sub": access.subject(), "scopes": access.scopes() }))
}

#[tokio::main]
async fn main() -> Result<(), tessera::Error> {
    let args = Args::parse();
    let keys = KeySetClient::discover(&args.key_set_url).await?;
    let mut verifier = ResourceVerifier::with_source(args.issuer, args.audience, Arc::new(keys));
    let mut metrics = MetricsRoute::new(Prometheus::install()?);
    if let Some(url) = &args.redis_url {
        let source = RedisBlocklist::connect(url).await?;
        let replica =
            Arc::new(ReplicatedBlocklist::start(source, ReplicaOptions::default()).await?);
        verifier = verifier.blocklist(replica.clone());
        metrics = metrics.collect_with(move || replica.record_metrics());
    }
    let app = Router::new()
        .route("/whoami", get(whoami))
        .with_state(AuthState::verify_only(verifier))
        .merge(metrics.router());
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| {
            tessera::axum::Error::Config(format!("cannot listen on {}: {e}", args.addr))
        })?;
    println!(
        "resource_server listening on http://{}",
        listener
            .local_addr()
            .map_err(|e| tessera::axum::Error::Internal(e.to_string()))?
    );
    tessera::axum::serve::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
