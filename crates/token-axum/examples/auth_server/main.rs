//! The reference auth service: login, refresh rotation, logout, payment tokens, API
//! keys, password reset and the key-set endpoints, on tessera's policy.
//!
//! ```text
//! cargo run -p token-axum --example auth_server -- --addr 127.0.0.1:8080 \
//!     --demo-users-file users.txt [--public-url https://auth.example.com] \
//!     [--database-url postgres://…] [--redis-url redis://…] [--insecure-cookies] [--mail-dir DIR] \
//!     [--header-read-timeout 10s] [--body-read-timeout 30s] [--idle-timeout 60s] \
//!     [--write-timeout 30s] [--max-connections 10000] [--refresh-grace 10s] \
//!     [--cors-origin https://app.example.com]... [--no-request-log] \
//!     [--public-origin https://auth.example.com] \
//!     [--kek-file PATH [--key-rotation-every 30d] [--key-publish-ahead 1h] \
//!      [--key-refresh-every 30s]] [--revocation-max-staleness 2s] \
//!     [--dpop-nonce [--dpop-nonce-secret-file PATH]] [--fingerprint-cookie] \
//!     [--context-check [--context-secret-file PATH]]
//! ```
//!
//! `users.txt` holds one `name:password` a line (`#` comments and blank lines
//! allowed). `--demo-users alice:PASSWORD,bob:PASSWORD` works too, but puts the
//! passwords in the process list, and says so on stderr.
//!
//! The embedded default is SQLite (in memory unless `--database-url sqlite://PATH`) and
//! an in-process revocation list; `--database-url postgres://…` and `--redis-url
//! redis://…` share both across a fleet. Passwords are kept as Argon2id hashes, and
//! there are no built-in credentials.
//!
//! Keys: with `--kek-file PATH` (a `k4.local` key-encryption key, made by `tokenctl
//! keys init`), every key — access, payment, the API-key pepper — is kept wrapped in
//! the database (`token_policy::keystore`), created at the first start, shared by every
//! instance on that database and rotated on a schedule (`--key-rotation-every`,
//! `--key-publish-ahead`, `--key-refresh-every`; durations like `30d`, `20s`, `500ms`):
//! tokens survive restarts and verify on every instance. Without it, keys are generated
//! at start, live in this process only, and no token survives a restart (said on
//! stderr).
//!
//! Revocation: with `--redis-url`, each instance keeps the revocation state in memory,
//! fed by Redis (`token_policy::ReplicatedBlocklist`): no network on the verify path,
//! and past `--revocation-max-staleness` (default 2 s) without a confirmed sync,
//! verification answers `503` with `Retry-After` until it is back. Verified API keys are
//! cached in process and dropped on every instance when revoked. Each user's id is kept in the
//! database (table `auth_server_users`), so a file or server database keeps it across
//! restarts; a user no longer in the users file loses its credentials at the next start.
//!
//! Refresh rotation forgives a repeat of the previous refresh token for
//! `--refresh-grace` (two tabs refreshing at once both succeed, with the same new
//! token); an older token, or a repeat after the window, revokes the family.
//! `--cors-origin ORIGIN` (repeatable) lets the pages of those origins call the service
//! with credentials; without it no CORS header is sent. Each request is logged on
//! stderr (method, route, status, latency; never a token, password, cookie or header)
//! unless `--no-request-log`, with tessera's own events at `INFO` and above (logins,
//! refresh rotations, reuse detections, revocations, key rotations: identifiers and
//! reasons, never a credential or a key).
//!
//! DPoP (RFC 9449): `POST /login` and `POST /refresh` with a `DPoP` proof header issue
//! tokens bound to the proof's key (`"token_type": "DPoP"`; the refresh family is
//! bound too), and the protected routes take `Authorization: DPoP <token>` with a
//! proof by that key; a bound token under `Bearer`, or without its key, is refused.
//! Proofs name `--public-origin` (default: `http://` and the address listened on) and
//! the path. `--dpop-nonce` requires server nonces,
//! derived from `--dpop-nonce-secret-file` (shared by a fleet). The accepted proof
//! algorithms are published at `/.well-known/oauth-protected-resource`
//! (`dpop_signing_alg_values_supported`).
//!
//! `--fingerprint-cookie` binds bearer access tokens to a `__Host-fingerprint` cookie
//! set at login and refresh (the token holds its SHA-256): a token lifted without the
//! `HttpOnly` cookie is refused. `--context-check` records the client's `User-Agent`
//! and network at login (keyed-hashed, in the access token) and compares them on
//! `POST /payments/token`, `POST /api-keys` and `POST /password`: a change answers
//! `401 {"error": "reauthentication_required"}`.
//!
//! Pages (see `pages.rs`): `GET /login` (a form posting to `POST /login`, which takes a
//! form or JSON), `GET /account` (the signed-in browsers and the API keys, with
//! `POST /account/sessions/{handle}/end`, `/account/sign-out-others`, `/account/api-keys`,
//! `/account/api-keys/{id}/roll` and `/revoke`), `GET /reset` and `GET /reset/confirm`.
//! A browser signed in there holds a `__Host-session` cookie only; every form is checked
//! for its origin (`--public-origin`, or the request's `Host`) and the session's CSRF
//! token.
//!
//! OAuth endpoints (`token_axum::oauth`): `POST /oauth/introspect` (RFC 7662) for
//! gateways, with an API key holding the scope `introspect` — `tokenctl api-key create
//! --db URL --name NAME --scopes introspect` on this service's database (with
//! `--kek-file` when the service keeps its keys there); `POST /oauth/revoke` (RFC 7009)
//! for refresh tokens, access tokens and sessions; and `GET
//! /.well-known/oauth-authorization-server` (RFC 8414), whose URLs start with
//! `--public-url` (by default `--public-origin`, else `http://` and `--addr`).
//!
//! `GET /metrics` answers the Prometheus text format (`token_axum::metrics`): verify
//! outcomes by reason (`tessera_verify_total`, `tessera_http_auth_total`), tokens
//! issued, refresh rotations and reuse detections, revocations, and, read at each
//! scrape, the revocation replica's lag (with `--redis-url`) and the key table's ages
//! (with `--kek-file`). It takes no credential: keep it where only the scraper reaches
//! it.
//!
//! `POST /login` is bounded (see [`LoginLimits`]): one password check per core at once
//! (a login that waits more than a second for one gets `503` with `Retry-After`), and
//! failed logins are limited per account name and per client address (`429` with
//! `Retry-After`). The client address is the TCP peer's, which `token_axum::serve` gives
//! each request as `ConnectInfo<SocketAddr>`; behind a reverse proxy every client would
//! share the proxy's address, and the proxy should limit by the real one.
//!
//! Connections are served by `token_axum::serve`, which closes slow and idle ones
//! (headers not complete within `--header-read-timeout`, a body that makes no progress
//! for `--body-read-timeout`, no next request within `--idle-timeout`, a response not
//! read for `--write-timeout`) and holds at most `--max-connections` open.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::extract::rejection::ExtensionRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef, FromRequest, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use token_axum::context::ContextCheck;
use token_axum::dpop::{DpopNonces, DpopSettings};
use token_axum::limit::{ConcurrencyBound, FailureLimiter, address_key};
use token_axum::metrics::{MetricsRoute, Prometheus};
use token_axum::serve::ServeLimits;
use token_axum::{
    Access, AuthLayer, AuthState, Credential, Principal, bearer_token, dpop_token, well_known,
};
use token_core::{Reason, SecretBytes};
use token_jwt::dpop::VerifiedProof;
use token_opaque::{
    Environment, GracePolicy, NewApiKey, OneTimeKind, OpaqueTokens, SameSite, SessionCookie,
};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, SecretKey, V4};
use token_policy::keystore::{Kek, KeyPlan, KeyStore};
use token_policy::{
    LoginTokens, Policy, RedisBlocklist, ReplicaOptions, ReplicatedBlocklist, TokenService,
};

mod app;
mod body;
mod cookie;
mod errors;
mod handlers;
mod http;
mod limits;
mod mail;
mod oauth;
mod pages;
mod passwords;
mod user_table;
mod users;

pub(crate) use app::{App, AppState, Payment, User, UserClaims, build};
pub(crate) use body::JsonBody;
pub(crate) use cookie::RefreshCookie;
pub(crate) use errors::{ApiError, json_errors, no_store};
pub(crate) use handlers::{
    authenticate, change_password, create_api_key, list_api_keys, login_any, logout_any,
    logout_everywhere, me, password_reset, password_reset_confirm, payment_consume, payment_token,
    refresh, reset_password, revoke_api_key,
};
pub(crate) use http::{cors_layer, parse_origin, request_log_layer};
pub(crate) use limits::{LoginGuard, LoginLimits};
pub(crate) use mail::{Mailer, RESET_QUEUE, reset_worker};
pub(crate) use passwords::{Argon2Memory, hash_password, password_matches, random_hex};
pub(crate) use user_table::UserTable;
pub(crate) use users::{Options, Secret, valid_username, warnings};
// Names only the tests reach, as `auth_server::…`.
#[allow(unused_imports)]
pub(crate) use {
    app::build_with_limits,
    mail::Mail,
    users::{KeyOptions, parse_users, parse_users_file},
};

/// The issuer and audience of the service's tokens.
pub(crate) const ISSUER: &str = "tessera-reference-auth";
pub(crate) const AUDIENCE: &str = "api";
/// Every scope a user's access token carries.
pub(crate) const USER_SCOPES: [&str; 3] = ["profile", "payments", "api-keys"];
/// The header API keys may also travel in.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;
const MAX_BODY: usize = 16 * 1024;
/// How many times, within `--refresh-grace`, the previous refresh token may be
/// presented again (tabs refreshing at once, a retry after a lost response).
pub(crate) const REFRESH_GRACE_REUSES: u32 = 3;
/// `--refresh-grace`'s default.
pub(crate) const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(10);
/// How long a verified API key is kept in process (with Redis, which carries the
/// revocations that drop it everywhere).
pub(crate) const API_KEY_CACHE_TTL: Duration = Duration::from_secs(300);
/// The largest `--demo-users-file` read.
const MAX_USERS_FILE: u64 = 1024 * 1024;

/// Command line.
#[derive(Parser)]
#[allow(clippy::struct_excessive_bools)] // on/off flags
#[command(name = "auth_server", about = "tessera's reference auth service")]
pub(crate) struct Args {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// The service's public URL, as the OAuth metadata
    /// (`/.well-known/oauth-authorization-server`) names its endpoints and key sets
    /// (default `--public-origin`, else `http://` and `--addr`).
    #[arg(long, value_name = "URL")]
    pub(crate) public_url: Option<String>,
    /// Users, as `name:password` pairs separated by commas. There are none by default.
    /// Every local user can read them in the process list: prefer `--demo-users-file`.
    #[arg(
        long,
        value_name = "NAME:PASSWORD,...",
        conflicts_with = "demo_users_file"
    )]
    pub(crate) demo_users: Option<String>,
    /// Users from a file: one `name:password` a line (the password is the rest of the
    /// line, as is); blank lines and lines starting with `#` are skipped.
    #[arg(long, value_name = "PATH")]
    pub(crate) demo_users_file: Option<PathBuf>,
    /// `sqlite://PATH`, `sqlite::memory:` (the default) or `postgres://…`.
    #[arg(long, default_value = "sqlite::memory:")]
    pub(crate) database_url: String,
    /// A Redis URL for a revocation list shared by a fleet (default: in process).
    #[arg(long)]
    pub(crate) redis_url: Option<String>,
    /// Drops `Secure` from the refresh cookie, for plain-HTTP local testing.
    #[arg(long)]
    pub(crate) insecure_cookies: bool,
    /// Delivers mail (password-reset tokens) as files in this directory. Without it,
    /// no mail is sent.
    #[arg(long, value_name = "DIR")]
    pub(crate) mail_dir: Option<PathBuf>,
    /// The most live API keys one user may hold.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_api_keys: u32,
    /// The longest a client may take to send a request's headers (from the accept for a
    /// connection's first request, from the first byte for a later one).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) header_read_timeout: Duration,
    /// The longest a request body may make no progress while it is read (`408`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub(crate) body_read_timeout: Duration,
    /// The longest a kept-alive connection may wait for its next request.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub(crate) idle_timeout: Duration,
    /// The longest a response write may make no progress (a client that does not read).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub(crate) write_timeout: Duration,
    /// The most connections open at once; more wait in the listen backlog. Keep it
    /// below the file-descriptor limit (`ulimit -n`).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) max_connections: usize,
    /// How long after a refresh the previous refresh token is still answered (with the
    /// same new token, at most 3 times) instead of revoking the session: two tabs
    /// refreshing at once both succeed. `0s` makes every repeat revoke the session.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_grace)]
    pub(crate) refresh_grace: Duration,
    /// An origin (`https://app.example.com`) whose pages may call this service with
    /// credentials (CORS). Repeat it for several; without it, no CORS header is sent.
    #[arg(long = "cors-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    pub(crate) cors_origins: Vec<HeaderValue>,
    /// Logs no request on stderr.
    #[arg(long)]
    pub(crate) no_request_log: bool,
    /// The key-encryption key (`k4.local…` PASERK, e.g. from `tokenctl keys init`): keeps
    /// every key wrapped in the database, shared by every instance on it. Without it,
    /// keys are generated at start and tokens do not survive a restart.
    #[arg(long, value_name = "PATH")]
    pub(crate) kek_file: Option<PathBuf>,
    /// How long each access and payment key signs before the next one takes over
    /// (with --kek-file; default 30d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "kek_file")]
    pub(crate) key_rotation_every: Option<Duration>,
    /// How long before it signs a new key is published (with --kek-file; default 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "kek_file")]
    pub(crate) key_publish_ahead: Option<Duration>,
    /// How often the key table is re-read (with --kek-file; default 30s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "kek_file")]
    pub(crate) key_refresh_every: Option<Duration>,
    /// Requires DPoP server nonces (RFC 9449 section 8): a proof without a current
    /// nonce is answered `use_dpop_nonce` with a `DPoP-Nonce` header.
    #[arg(long)]
    pub(crate) dpop_nonce: bool,
    /// A file holding the secret DPoP nonces are derived from (at least 32 bytes;
    /// the same file on every instance of a fleet, so each accepts the others'
    /// nonces). Also read from the `TESSERA_DPOP_NONCE_SECRET_FILE` environment
    /// variable. Without it, a random secret of this process only.
    #[arg(long, value_name = "PATH", requires = "dpop_nonce")]
    pub(crate) dpop_nonce_secret_file: Option<PathBuf>,
    /// Binds bearer access tokens to a fingerprint cookie (OWASP token sidejacking):
    /// login and refresh set `__Host-fingerprint` (`HttpOnly`, `Secure`,
    /// `SameSite=Strict`, `Path=/`) and put its SHA-256 in the access token, which is
    /// then refused without that cookie. For browser clients that hold no DPoP key.
    #[arg(long)]
    pub(crate) fingerprint_cookie: bool,
    /// Checks the client context (User-Agent, IPv4 /24 or IPv6 /56 network) recorded
    /// at login on the sensitive routes (`POST /payments/token`, `POST /api-keys`,
    /// `POST /password`): a change answers `401 reauthentication_required`. Mobile
    /// networks, proxies and browser updates trip it: see docs/SECURITY.md.
    #[arg(long)]
    pub(crate) context_check: bool,
    /// A file holding the secret contexts are hashed under (at least 32 bytes; the
    /// same on every instance). Also read from `TESSERA_CONTEXT_SECRET_FILE`. Without
    /// it, a random secret of this process only.
    #[arg(long, value_name = "PATH", requires = "context_check")]
    pub(crate) context_secret_file: Option<PathBuf>,
    /// How long an instance may go without a confirmed sync of the revocation state
    /// before verification fails closed (with --redis-url; default 2s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "redis_url")]
    pub(crate) revocation_max_staleness: Option<Duration>,
    /// The origin clients reach this service at (`https://auth.example.com`), behind a
    /// reverse proxy: the pages' forms must come from it, and DPoP proofs name it and
    /// the request's path. Without it, the pages take the origin the request's `Host`
    /// header names (`https://` unless `--insecure-cookies`), and DPoP proofs name
    /// `http://` and the address listened on (never `Host` or `X-Forwarded-*`).
    #[arg(long, value_name = "ORIGIN", value_parser = parse_origin_text)]
    pub(crate) public_origin: Option<String>,
}

/// Parses `--public-origin`: `scheme://host[:port]`, nothing after.
pub(crate) fn parse_origin_text(text: &str) -> Result<String, String> {
    let text = text.trim_end_matches('/');
    token_axum::csrf::SameOrigin::new([text]).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

impl Args {
    /// The connection limits of the command line.
    pub(crate) fn serve_limits(&self) -> ServeLimits {
        let mut limits = ServeLimits::default();
        limits.header_read_timeout = self.header_read_timeout;
        limits.body_read_timeout = self.body_read_timeout;
        limits.idle_timeout = self.idle_timeout;
        limits.write_timeout = self.write_timeout;
        limits.max_connections = self.max_connections;
        limits
    }
}

/// Parses a duration of the command line: a whole number and a unit, `ms`, `s`, `m`,
/// `h` or `d` (`500ms`, `10s`, `2m`, `30d`). Zero is refused: it would close every
/// connection.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number and a unit (ms, s, m, h or d)"))?;
    let seconds_per = match unit {
        "ms" => return nonzero(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is ms, s, m, h or d")),
    };
    let seconds = n
        .checked_mul(seconds_per)
        .ok_or_else(|| format!("{text:?} is too long"))?;
    nonzero(Duration::from_secs(seconds))
}

/// Parses `--refresh-grace`: a duration as [`parse_duration`] takes it, or `0s` (no
/// grace).
pub(crate) fn parse_grace(text: &str) -> Result<Duration, String> {
    if matches!(text.trim(), "0" | "0s" | "0ms") {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

fn nonzero(duration: Duration) -> Result<Duration, String> {
    if duration.is_zero() {
        Err("a duration must be more than zero".to_owned())
    } else {
        Ok(duration)
    }
}

/// A warning when `max_connections` (plus a margin for the service's own files and
/// database connections) exceeds the process's open-file limit: past that limit the
/// server stops accepting (it pauses and retries) before the connection cap is reached.
fn file_limit_warning(max_connections: usize) -> Option<String> {
    const MARGIN: u64 = 64;
    // Linux: "Max open files            1024                 4096                 files"
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let soft: u64 = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let wanted = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(MARGIN);
    (wanted > soft).then(|| {
        format!(
            "--max-connections {max_connections} is above the open-file limit ({soft}, less \
             {MARGIN} for the service's own): raise `ulimit -n` or lower --max-connections"
        )
    })
}

/// Serves `router` on `listener` until `shutdown` completes, with `limits` on slow,
/// idle and concurrent connections, and each request's peer address (which the login
/// limits need).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    token_axum::serve::serve(listener, router)
        .with_limits(limits)
        .with_graceful_shutdown(shutdown)
        .await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.no_request_log {
        // Request lines (see `request_log_layer`) and the service's notices, on stderr.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::INFO)
            .with_target(false)
            .init();
    }
    for warning in warnings(&args) {
        eprintln!("warning: {warning}");
    }
    let limits = args.serve_limits();
    if let Some(warning) = file_limit_warning(limits.max_connections) {
        eprintln!("warning: {warning}");
    }
    let addr = args.addr;
    let mut options = Options::from_args(args)?;
    let users = options.users.len();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    options.listen_origin = Some(format!("http://{}", listener.local_addr()?));
    let (router, app) = build(options).await?;
    println!("auth_server listening on http://{}", listener.local_addr()?);
    if app.keys.is_none() {
        eprintln!(
            "warning: no --kek-file: keys are generated for this process only; every token \
             it issues stops verifying when it restarts, and other instances refuse them"
        );
    }
    println!(
        "{users} user(s); access keys {:?}; JWKS at {}, PASERK key set at {}",
        app.service.access_keys().key_ids(),
        well_known::JWKS_PATH,
        well_known::PASETO_KEYS_PATH
    );
    serve(listener, router, limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
