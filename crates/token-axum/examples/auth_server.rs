//! The reference auth service: login, refresh rotation, logout, payment tokens, API
//! keys, password reset and the key-set endpoints, on tessera's policy.
//!
//! ```text
//! cargo run -p token-axum --example auth_server -- --addr 127.0.0.1:8080 \
//!     --demo-users-file users.txt \
//!     [--database-url postgres://…] [--redis-url redis://…] [--insecure-cookies] [--mail-dir DIR] \
//!     [--header-read-timeout 10s] [--body-read-timeout 30s] [--idle-timeout 60s] \
//!     [--write-timeout 30s] [--max-connections 10000]
//! ```
//!
//! `users.txt` holds one `name:password` a line (`#` comments and blank lines
//! allowed). `--demo-users alice:PASSWORD,bob:PASSWORD` works too, but puts the
//! passwords in the process list, and says so on stderr.
//!
//! The embedded default is SQLite (in memory unless `--database-url sqlite://PATH`) and
//! an in-process revocation list; `--database-url postgres://…` and `--redis-url
//! redis://…` share both across a fleet. Passwords are kept as Argon2id hashes, and
//! there are no built-in credentials. Signing keys are generated at start; a
//! deployment loads them with `token_policy::config`.
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
use axum::extract::rejection::{ExtensionRejection, JsonRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use token_axum::limit::{ConcurrencyBound, FailureLimiter, address_key};
use token_axum::serve::ServeLimits;
use token_axum::{Access, AuthLayer, AuthState, Credential, Principal, bearer_token, well_known};
use token_opaque::{Environment, NewApiKey, OneTimeKind, OpaqueTokens, SameSite, SessionCookie};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, SecretKey, V4};
use token_policy::{LoginTokens, Policy, RedisBlocklist, TokenService};

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
/// The largest `--demo-users-file` read.
const MAX_USERS_FILE: u64 = 1024 * 1024;

/// Command line.
#[derive(Parser)]
#[command(name = "auth_server", about = "tessera's reference auth service")]
pub(crate) struct Args {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
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
}

/// A message the service sends.
#[allow(dead_code)] // read by the end-to-end tests
pub(crate) struct Mail {
    pub(crate) to: String,
    pub(crate) token: SecretString,
}

/// Where mail goes.
#[derive(Clone)]
pub(crate) enum Mailer {
    /// Nowhere (no transport configured).
    Discard,
    /// One file per message, readable by the owner only.
    Dir(PathBuf),
    /// A list in memory (tests).
    #[allow(dead_code)] // built by the end-to-end tests
    Memory(Arc<Mutex<Vec<Mail>>>),
}

impl Mailer {
    fn send(&self, to: &str, token: SecretString) -> anyhow::Result<()> {
        match self {
            Self::Discard => {
                eprintln!(
                    "password reset for {to:?}: no mail transport (--mail-dir); nothing sent"
                );
            }
            Self::Dir(dir) => {
                let stamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                let path = dir.join(format!("{stamp}-reset.txt"));
                let text = format!(
                    "To: {to}\nSubject: Password reset\n\nYour password-reset token (valid one hour, once):\n{}\n",
                    token.expose_secret()
                );
                write_private(&path, text.as_bytes())?;
            }
            Self::Memory(outbox) => {
                outbox
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Mail {
                        to: to.to_owned(),
                        token,
                    });
            }
        }
        Ok(())
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// Everything `build` needs.
pub(crate) struct Options {
    pub(crate) database_url: String,
    pub(crate) redis_url: Option<String>,
    pub(crate) users: Vec<(String, SecretString)>,
    pub(crate) insecure_cookies: bool,
    pub(crate) mailer: Mailer,
    pub(crate) max_api_keys: u32,
}

impl Options {
    /// The options of a command line.
    pub(crate) fn from_args(args: Args) -> anyhow::Result<Self> {
        let users = match (&args.demo_users, &args.demo_users_file) {
            (Some(list), _) => parse_users(list)?,
            (None, Some(path)) => read_users_file(path)?,
            (None, None) => Vec::new(),
        };
        let mailer = match args.mail_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir).context("cannot create the mail directory")?;
                Mailer::Dir(dir)
            }
            None => Mailer::Discard,
        };
        Ok(Self {
            database_url: args.database_url,
            redis_url: args.redis_url,
            users,
            insecure_cookies: args.insecure_cookies,
            mailer,
            max_api_keys: args.max_api_keys,
        })
    }
}

/// What the command line should be warned about, on stderr.
pub(crate) fn warnings(args: &Args) -> Vec<String> {
    let mut warnings = Vec::new();
    if args.demo_users.is_some() {
        warnings.push(
            "--demo-users puts passwords in the process list, where every local user can \
             read them; use --demo-users-file PATH (one NAME:PASSWORD a line) instead"
                .to_owned(),
        );
    }
    #[cfg(unix)]
    if let Some(path) = &args.demo_users_file {
        use std::os::unix::fs::PermissionsExt as _;
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            warnings.push(format!(
                "--demo-users-file {} is readable by other users (chmod 600 it)",
                path.display()
            ));
        }
    }
    warnings
}

/// Parses `alice:PASSWORD,bob:PASSWORD`. Error messages never quote a password.
pub(crate) fn parse_users(list: &str) -> anyhow::Result<Vec<(String, SecretString)>> {
    let mut users = Vec::new();
    for (i, entry) in list.split(',').enumerate() {
        add_user(&mut users, &format!("--demo-users entry {}", i + 1), entry)?;
    }
    Ok(users)
}

/// Parses a users file: one `NAME:PASSWORD` a line, the password being the rest of the
/// line as is (spaces, `:` and `,` included); blank lines and lines whose first
/// non-blank character is `#` are skipped. Error messages name the line, never quote a
/// password.
pub(crate) fn parse_users_file(text: &str) -> anyhow::Result<Vec<(String, SecretString)>> {
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        add_user(
            &mut users,
            &format!("--demo-users-file line {}", i + 1),
            line,
        )?;
    }
    Ok(users)
}

fn read_users_file(path: &std::path::Path) -> anyhow::Result<Vec<(String, SecretString)>> {
    let cannot = || format!("cannot read --demo-users-file {}", path.display());
    let file = std::fs::File::open(path).with_context(cannot)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_USERS_FILE + 1),
        &mut bytes,
    )
    .with_context(cannot)?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > MAX_USERS_FILE) {
        bail!(
            "--demo-users-file {} is larger than {MAX_USERS_FILE} bytes",
            path.display()
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("--demo-users-file {} is not UTF-8", path.display()))?;
    parse_users_file(&text)
}

/// Checks and adds one `NAME:PASSWORD` entry; `at` names it in errors.
fn add_user(users: &mut Vec<(String, SecretString)>, at: &str, entry: &str) -> anyhow::Result<()> {
    let Some((name, password)) = entry.split_once(':') else {
        bail!("{at} is not NAME:PASSWORD");
    };
    if !valid_username(name) {
        bail!("{at}: a name is 1-64 characters of a-z, A-Z, 0-9, '.', '_', '-'");
    }
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.len()) {
        bail!("{at} ({name}): a password is {MIN_PASSWORD} to {MAX_PASSWORD} bytes");
    }
    if users.iter().any(|(n, _)| n == name) {
        bail!("{at}: {name} is named twice");
    }
    users.push((name.to_owned(), SecretString::from(password.to_owned())));
    Ok(())
}

fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A user account. The id (random per start) is the tokens' subject; the name stays
/// out of tokens.
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) name: String,
    password_hash: RwLock<String>,
}

/// The claims in this service's access tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserClaims {
    pub(crate) role: String,
    /// Space-separated scopes.
    pub(crate) scope: String,
}

/// A payment, as the payment token carries it (encrypted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Payment {
    pub(crate) order_id: String,
    /// In minor units (cents).
    pub(crate) amount: u64,
    /// ISO 4217, three capital letters.
    pub(crate) currency: String,
    /// The payment provider's card token.
    pub(crate) psp_card_token: String,
    pub(crate) idempotency_key: String,
}

impl Payment {
    fn check(&self) -> Result<(), ApiError> {
        let field = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
        };
        if !field(&self.order_id, 128) {
            return Err(ApiError::BadRequest("order_id must be 1-128 characters"));
        }
        if self.amount == 0 {
            return Err(ApiError::BadRequest(
                "amount must be a positive number of minor units",
            ));
        }
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(ApiError::BadRequest("currency must be an ISO 4217 code"));
        }
        if !field(&self.psp_card_token, 256) {
            return Err(ApiError::BadRequest(
                "psp_card_token must be 1-256 characters",
            ));
        }
        if !field(&self.idempotency_key, 128) {
            return Err(ApiError::BadRequest(
                "idempotency_key must be 1-128 characters",
            ));
        }
        Ok(())
    }
}

/// How many password-reset requests may wait for the mailer before new ones are
/// refused with `503` (the same answer for every name).
const RESET_QUEUE: usize = 1024;

/// Sends the reset mail off the request path: the handler only queues the name, so a
/// known and an unknown name cost the same and answer the same; the account lookup, the
/// rate limit (the store's, per account), the token and the mail happen here.
async fn reset_worker(app: std::sync::Weak<App>, mut names: tokio::sync::mpsc::Receiver<String>) {
    while let Some(name) = names.recv().await {
        let Some(app) = app.upgrade() else { break };
        let Some(user) = app.user(&name).cloned() else {
            continue;
        };
        let issued = match app
            .service
            .issue_one_time(OneTimeKind::PasswordReset, &user.id)
            .await
        {
            Ok(issued) => issued,
            // Asked again within the interval: the first mail stands.
            Err(token_policy::Error::Opaque(token_opaque::Error::RateLimited { .. })) => continue,
            Err(e) => {
                eprintln!("password reset: {}", e.reason());
                continue;
            }
        };
        if let Err(e) = app.mailer.send(&user.name, issued.token) {
            eprintln!("password reset: mail: {e}");
        }
    }
}

/// The refresh-token cookie, from the library: `__Host-refresh` (`Secure`, `Path=/`,
/// no `Domain`, `HttpOnly`, `SameSite=Strict`), or `refresh` without `Secure` under
/// `--insecure-cookies` (browsers refuse `__Host-` cookies that are not `Secure`),
/// kept as long as a refresh family lives.
pub(crate) struct RefreshCookie {
    cookie: SessionCookie,
    max_age: Duration,
}

impl RefreshCookie {
    fn new(secure: bool, max_age: Duration) -> anyhow::Result<Self> {
        let cookie = if secure {
            SessionCookie::with_name("refresh")?
        } else {
            SessionCookie::dangerous_insecure("refresh")?
        };
        Ok(Self {
            cookie: cookie.same_site(SameSite::Strict),
            max_age,
        })
    }

    #[allow(dead_code)] // read by the end-to-end tests
    pub(crate) fn name(&self) -> &str {
        self.cookie.name()
    }

    fn set(&self, token: &SecretString) -> Option<HeaderValue> {
        let value = self.cookie.set_cookie(token, Some(self.max_age));
        let mut header = HeaderValue::from_str(value.expose_secret()).ok()?;
        header.set_sensitive(true);
        Some(header)
    }

    fn clear(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.cookie.clear_cookie()).ok()
    }

    fn read<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        self.cookie.read_all(
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
    }
}

/// The bounds of `POST /login`.
///
/// Every login attempt is counted as a failure for its account name and for its client
/// address (IPv4, or IPv6 `/64`) *before* its password is checked, so concurrent
/// guesses cannot overtake the limits; a successful login takes back its own attempts,
/// and only those. A name or an address with `per_account` / `per_address` failures in
/// the `window` that began with its first failure gets `429` (with `Retry-After`) for
/// the rest of that window, without a password check — whatever the password, so a
/// `429` tells nothing about it.
///
/// Only the per-account limit can refuse a login from another address: a locked
/// account refuses its owner too until the window ends (the price of bounding guesses
/// spread over many addresses). One address's failures never refuse another address.
/// A success never resets a count: an attacker who owns an account could otherwise
/// clear the count of the address it guesses from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoginLimits {
    /// Password checks at once (default: one per core).
    pub(crate) concurrent_checks: usize,
    /// How long a login waits for a password check before `503` (default one second).
    pub(crate) max_wait: Duration,
    /// Failed logins per account name within a window (default 10).
    pub(crate) per_account: u32,
    /// Failed logins per client address within a window (default 100: many users
    /// may share one address).
    pub(crate) per_address: u32,
    /// The window (default 15 minutes).
    pub(crate) window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            concurrent_checks: ConcurrencyBound::per_core().permits(),
            max_wait: Duration::from_secs(1),
            per_account: 10,
            per_address: 100,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// The state of [`LoginLimits`].
pub(crate) struct LoginGuard {
    pub(crate) checks: ConcurrencyBound,
    memory: Arc<Argon2Memory>,
    per_account: FailureLimiter<String>,
    per_address: FailureLimiter<IpAddr>,
}

impl LoginGuard {
    fn new(limits: LoginLimits) -> Self {
        let checks = ConcurrencyBound::new(limits.concurrent_checks).max_wait(limits.max_wait);
        Self {
            memory: Arc::new(Argon2Memory {
                free: Mutex::new(Vec::new()),
                max: checks.permits(),
            }),
            checks,
            per_account: FailureLimiter::new(limits.per_account, limits.window),
            per_address: FailureLimiter::new(limits.per_address, limits.window),
        }
    }
}

/// The running service.
pub(crate) struct App {
    pub(crate) service: Arc<TokenService>,
    pub(crate) auth: AuthState,
    pub(crate) cookie: RefreshCookie,
    users_by_name: HashMap<String, Arc<User>>,
    users_by_id: HashMap<String, Arc<User>>,
    /// Verified against when the name is unknown, so both cases cost the same.
    dummy_hash: String,
    mailer: Mailer,
    resets: tokio::sync::mpsc::Sender<String>,
    pub(crate) login: LoginGuard,
}

impl App {
    pub(crate) fn user(&self, name: &str) -> Option<&Arc<User>> {
        self.users_by_name.get(name)
    }

    fn claims_for(&self, user_id: &str) -> UserClaims {
        // A user that no longer exists keeps a session of no scope until it expires.
        let scope = if self.users_by_id.contains_key(user_id) {
            USER_SCOPES.join(" ")
        } else {
            String::new()
        };
        UserClaims {
            role: "user".into(),
            scope,
        }
    }
}

/// The router state.
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<App>);

impl FromRef<AppState> for AuthState {
    fn from_ref(state: &AppState) -> Self {
        state.0.auth.clone()
    }
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    }))
}

fn hash_password(password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    // Argon2id, version 0x13, the crate's defaults (19 MiB, 2 passes, 1 lane).
    Ok(Argon2::default()
        .hash_password(password, &salt)
        .map_err(|e| anyhow::anyhow!("password hash: {e}"))?
        .to_string())
}

/// Whether `password` matches the PHC string `hash`, computed in `memory` (grown to what
/// the hash's parameters need) and compared in constant time.
fn password_matches(hash: &str, password: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (&parsed.hash, &parsed.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let mut out = [0u8; 64];
    let (Ok(salt), Some(out)) = (
        salt.decode_b64(&mut salt_bytes),
        out.get_mut(..expected.len()),
    ) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::new());
    }
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, memory.as_mut_slice())
        .is_ok()
        && Output::new(out).is_ok_and(|computed| computed == *expected)
}

/// Argon2id working memory (19 MiB a check), kept for the next check: at most one
/// per concurrent check. Allocating it afresh for every login makes the allocator,
/// once such blocks come from its heap, keep more and more of them resident between
/// smaller allocations — the resident set then grows with the number of logins,
/// however few run at once.
struct Argon2Memory {
    free: Mutex<Vec<Vec<Block>>>,
    max: usize,
}

impl Argon2Memory {
    fn take(&self) -> Vec<Block> {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn give_back(&self, memory: Vec<Block>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.max {
            free.push(memory);
        }
    }
}

/// Builds the service and its router, with the default [`LoginLimits`]. Serve it with
/// [`serve`] (or anything that gives requests their `ConnectInfo<SocketAddr>`): a
/// login needs the client's address.
pub(crate) async fn build(options: Options) -> anyhow::Result<(Router, Arc<App>)> {
    build_with_limits(options, LoginLimits::default()).await
}

/// [`build`], with these login limits.
pub(crate) async fn build_with_limits(
    options: Options,
    limits: LoginLimits,
) -> anyhow::Result<(Router, Arc<App>)> {
    let store = token_policy::config::open_store(&options.database_url)
        .await
        .context("cannot open the database")?;
    let mut config = token_opaque::Config::default();
    config.api_keys.max_live_per_owner = options.max_api_keys;
    let opaque = OpaqueTokens::builder(store).config(config).build()?;
    let refresh_lifetime = opaque.config().refresh.absolute_lifetime;
    let mut builder = TokenService::builder(
        Policy::new(ISSUER, AUDIENCE),
        PublicIssuer::new(SecretKey::<V4>::generate()?),
    )
    .payment(LocalCipher::new(LocalKey::<V4>::generate()?))
    .opaque(opaque);
    if let Some(url) = &options.redis_url {
        builder = builder.blocklist(Arc::new(
            RedisBlocklist::connect(url)
                .await
                .context("cannot connect to Redis")?,
        ));
    }
    let service = Arc::new(builder.build());
    let auth = AuthState::new(service.clone())
        .api_key_header(HeaderName::from_static(API_KEY_HEADER))
        .realm(ISSUER);

    let mut users_by_name = HashMap::new();
    let mut users_by_id = HashMap::new();
    for (name, password) in options.users {
        let hash =
            tokio::task::spawn_blocking(move || hash_password(password.expose_secret().as_bytes()))
                .await??;
        let user = Arc::new(User {
            id: format!("usr_{}", random_hex(12)?),
            name: name.clone(),
            password_hash: RwLock::new(hash),
        });
        users_by_id.insert(user.id.clone(), user.clone());
        users_by_name.insert(name, user);
    }
    let (resets, reset_names) = tokio::sync::mpsc::channel(RESET_QUEUE);
    let dummy = random_hex(16)?;
    let dummy_hash = tokio::task::spawn_blocking(move || hash_password(dummy.as_bytes())).await??;

    let app = Arc::new(App {
        service,
        auth: auth.clone(),
        cookie: RefreshCookie::new(!options.insecure_cookies, refresh_lifetime)?,
        users_by_name,
        users_by_id,
        dummy_hash,
        mailer: options.mailer,
        resets,
        login: LoginGuard::new(limits),
    });
    tokio::spawn(reset_worker(Arc::downgrade(&app), reset_names));

    let access = |scope: &str| AuthLayer::new(auth.clone()).require_scope(scope);
    let router = Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .route(
            "/payments/token",
            post(payment_token).route_layer(access("payments")),
        )
        .route(
            "/payments/consume",
            post(payment_consume).route_layer(access("payments")),
        )
        .route(
            "/api-keys",
            post(create_api_key).route_layer(access("api-keys")),
        )
        .route(
            "/api-keys/{id}",
            delete(revoke_api_key).route_layer(access("api-keys")),
        )
        .route(
            "/me",
            get(me).route_layer(
                AuthLayer::accepting(auth.clone(), [Credential::AccessToken, Credential::ApiKey])
                    .require_scope("profile"),
            ),
        )
        .route("/password-reset", post(password_reset))
        .route("/password-reset/confirm", post(password_reset_confirm))
        .merge(well_known::routes())
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState(app.clone()));
    Ok((router, app))
}

/// Every error answer is JSON: what the handlers and the auth layer answer already is,
/// and the rest — extractor rejections (a path that is not UTF-8), `405` — is rewritten
/// here as `{"error": …}` with its status and headers kept.
async fn json_errors(response: Response) -> Response {
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

type Body<T> = Result<Json<T>, JsonRejection>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: SecretString,
}

/// The access token as JSON and the refresh token as a cookie.
fn token_response(app: &App, tokens: &LoginTokens) -> Response {
    let body = json!({
        "access_token": tokens.access.expose_secret(),
        "token_type": "Bearer",
        "expires_in": tokens.expires_in.as_secs(),
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = app.cookie.set(&tokens.refresh) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// After "log out everywhere", access tokens issued up to the cut-off second are
/// refused; a login in that same second waits for the next one, so its token is not
/// born revoked.
async fn wait_past_cutoff(service: &TokenService, user_id: &str) -> Result<(), ApiError> {
    let cutoff = service
        .blocklist()
        .subject_cutoff(user_id)
        .await
        .map_err(token_axum::Error::from)?;
    if let Some(cutoff) = cutoff {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let after = Duration::from_secs(u64::try_from(cutoff.unix_seconds()).unwrap_or(0) + 1);
        if let Some(wait) = after.checked_sub(now) {
            tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
        }
    }
    Ok(())
}

async fn login(
    State(AppState(app)): State<AppState>,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    body: Body<LoginRequest>,
) -> Result<Response, ApiError> {
    let Ok(ConnectInfo(peer)) = peer else {
        return Err(token_axum::Error::Config(
            "login needs the client address: serve with token_axum::serve, which gives each request ConnectInfo".into(),
        )
        .into());
    };
    let Json(request) = body?;
    // Counted as failures until the password is found right (see `LoginLimits`).
    let by_address = app.login.per_address.begin(address_key(peer.ip()))?;
    if !valid_username(&request.username) {
        // No account has such a name: nothing to check, nor to keep as a key.
        return Err(ApiError::InvalidCredentials);
    }
    let by_account = match app.login.per_account.begin(request.username.clone()) {
        Ok(attempt) => attempt,
        Err(limited) => {
            by_address.forgive();
            return Err(limited.into());
        }
    };
    let user = app.user(&request.username).cloned();
    let hash = match &user {
        Some(u) => u
            .password_hash
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        None => app.dummy_hash.clone(),
    };
    let password = request.password;
    let memory = app.login.memory.clone();
    let checked = app
        .login
        .checks
        .spawn_blocking(move || {
            let mut blocks = memory.take();
            let matches = password_matches(&hash, password.expose_secret().as_bytes(), &mut blocks);
            memory.give_back(blocks);
            matches
        })
        .await;
    let matches = match checked {
        Ok(matches) => matches,
        // Busy (503): no password was checked.
        Err(e) => {
            by_address.forgive();
            by_account.forgive();
            return Err(e.into());
        }
    };
    let Some(user) = user.filter(|_| matches) else {
        return Err(ApiError::InvalidCredentials);
    };
    by_address.forgive();
    by_account.forgive();
    wait_past_cutoff(&app.service, &user.id).await?;
    let tokens = app
        .service
        .login(&user.id, &app.claims_for(&user.id))
        .await?;
    Ok(token_response(&app, &tokens))
}

async fn refresh(State(AppState(app)): State<AppState>, headers: HeaderMap) -> Response {
    let Some(raw) = app.cookie.read(&headers) else {
        return ApiError::Auth(token_axum::Error::MissingCredentials).into_response();
    };
    match app.service.refresh(raw, |user| app.claims_for(user)).await {
        Ok(tokens) => token_response(&app, &tokens),
        Err(e) => {
            let error = ApiError::from(e);
            let forget = matches!(&error, ApiError::Auth(token_axum::Error::InvalidToken(_)));
            let mut response = error.into_response();
            if forget {
                if let Some(clear) = app.cookie.clear() {
                    response.headers_mut().insert(header::SET_COOKIE, clear);
                }
            }
            response
        }
    }
}

async fn logout(State(AppState(app)): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    let access = bearer_token(&parts)?;
    let refresh = app.cookie.read(&parts.headers);
    if access.is_none() && refresh.is_none() {
        return Err(token_axum::Error::MissingCredentials.into());
    }
    // A credential that is already unusable (expired, unknown) needs no revocation and
    // is not an error; another kind of token is a client mistake, never a success.
    match app
        .service
        .logout(access.unwrap_or_default(), refresh.unwrap_or_default())
        .await
    {
        Ok(()) => {}
        Err(
            token_policy::Error::WrongTokenType { .. }
            | token_policy::Error::Opaque(token_opaque::Error::WrongKind { .. }),
        ) => {
            return Err(ApiError::BadRequest(
                "logout takes the access token (Authorization: Bearer) and the refresh cookie; \
                 another kind of token was given",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(clear) = app.cookie.clear() {
        response.headers_mut().insert(header::SET_COOKIE, clear);
    }
    Ok(response)
}

async fn payment_token(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    body: Body<Payment>,
) -> Result<Response, ApiError> {
    let Json(payment) = body?;
    payment.check()?;
    let token = app.service.issue_payment(payment, access.subject())?;
    Ok(no_store(Json(
        json!({ "payment_token": token.expose_secret() }),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumeRequest {
    payment_token: SecretString,
}

async fn payment_consume(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    body: Body<ConsumeRequest>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    let payment: Payment = app
        .service
        .consume_payment(request.payment_token.expose_secret(), access.subject())
        .await?;
    Ok(no_store(Json(payment)))
}

fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyRequest {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    environment: Option<String>,
}

async fn create_api_key(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    body: Body<NewKeyRequest>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    let environment = match request.environment.as_deref() {
        None | Some("test") => Environment::Test,
        Some("live") => Environment::Live,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "environment must be \"live\" or \"test\"",
            ));
        }
    };
    // A key grants at most what its creator's token grants, and never makes keys.
    let grantable = |s: &String| s != "api-keys" && access.has_scope(s);
    if !request.scopes.iter().all(grantable) {
        return Err(ApiError::BadRequest(
            "a requested scope cannot be granted to an API key",
        ));
    }
    let created = app
        .service
        .issue_api_key(
            NewApiKey::new(access.subject(), request.name, environment).scopes(request.scopes),
        )
        .await?;
    let info = &created.info;
    let body = json!({
        "id": info.id,
        "key": created.key.expose_secret(),
        "name": info.name,
        "scopes": info.scopes,
        "environment": if info.environment == Environment::Live { "live" } else { "test" },
    });
    Ok((StatusCode::CREATED, no_store(Json(body))).into_response())
}

async fn revoke_api_key(
    State(AppState(app)): State<AppState>,
    access: Access<UserClaims>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let opaque = app.service.opaque()?;
    match opaque.api_keys().revoke(access.subject(), &id).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(token_opaque::Error::NotFound | token_opaque::Error::InvalidInput(_)) => {
            Err(ApiError::NotFound)
        }
        Err(e) => Err(token_axum::Error::from(e).into()),
    }
}

async fn me(State(AppState(app)): State<AppState>, principal: Principal) -> Response {
    let credential = match principal.credential() {
        Credential::ApiKey => "api_key",
        _ => "access_token",
    };
    let username = app
        .users_by_id
        .get(principal.subject())
        .map(|u| u.name.clone());
    no_store(Json(json!({
        "user_id": principal.subject(),
        "username": username,
        "credential": credential,
        "scopes": &*principal.scopes(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    username: String,
}

async fn password_reset(
    State(AppState(app)): State<AppState>,
    body: Body<ResetRequest>,
) -> Result<Response, ApiError> {
    let Json(request) = body?;
    if request.username.is_empty() || request.username.len() > 256 {
        return Err(ApiError::BadRequest("username must be 1-256 bytes"));
    }
    // The same work and the same answer whether the name is an account or not: the
    // name is queued, and the worker decides (see `reset_worker`).
    match app.resets.try_send(request.username) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "status": "if the account exists, a message is on its way" })),
        )
            .into_response()),
        Err(_) => Err(token_axum::Error::Unavailable("password-reset queue full".into()).into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetConfirm {
    token: SecretString,
    new_password: SecretString,
}

async fn password_reset_confirm(
    State(AppState(app)): State<AppState>,
    body: Body<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    let Json(request) = body?;
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&request.new_password.expose_secret().len()) {
        return Err(ApiError::BadRequest("a password is 8 to 1024 bytes"));
    }
    // The password hash takes a turn among the bounded password checks, and takes it
    // before the single-use token is spent: a busy server (503) leaves the token valid
    // for the retry.
    let permit = app.login.checks.acquire().await?;
    let redeemed = app
        .service
        .redeem_one_time(OneTimeKind::PasswordReset, request.token.expose_secret())
        .await?;
    let Some(user) = app.users_by_id.get(&redeemed.user_id).cloned() else {
        return Err(token_axum::Error::InvalidToken(token_core::Reason::InvalidToken).into());
    };
    let password = request.new_password;
    let hash = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        hash_password(password.expose_secret().as_bytes())
    })
    .await
    .map_err(|_| token_axum::Error::Internal("password hashing stopped".into()))?
    .map_err(|e| token_axum::Error::Internal(e.to_string()))?;
    *user
        .password_hash
        .write()
        .unwrap_or_else(PoisonError::into_inner) = hash;
    // Every credential ends: refresh families, sessions, one-time tokens, API keys;
    // access tokens issued until now are refused.
    app.service.logout_everywhere(&user.id).await?;
    Ok(StatusCode::NO_CONTENT)
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

/// Parses a duration of the command line: a whole number and a unit, `ms`, `s`, `m`
/// or `h` (`500ms`, `10s`, `2m`). Zero is refused: it would close every connection.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (ms, s, m or h)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number and a unit (ms, s, m or h)"))?;
    let seconds_per = match unit {
        "ms" => return nonzero(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?}: the unit is ms, s, m or h")),
    };
    let seconds = n
        .checked_mul(seconds_per)
        .ok_or_else(|| format!("{text:?} is too long"))?;
    nonzero(Duration::from_secs(seconds))
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
    for warning in warnings(&args) {
        eprintln!("warning: {warning}");
    }
    let limits = args.serve_limits();
    if let Some(warning) = file_limit_warning(limits.max_connections) {
        eprintln!("warning: {warning}");
    }
    let addr = args.addr;
    let options = Options::from_args(args)?;
    let users = options.users.len();
    let (router, app) = build(options).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    println!("auth_server listening on http://{}", listener.local_addr()?);
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
