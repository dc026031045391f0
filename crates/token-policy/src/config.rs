//! Configuration from a TOML file, with keys referenced by file or environment
//! variable (never inline: secrets do not belong in configuration files).
//!
//! ```toml
//! issuer = "https://auth.example"
//! audience = "api"
//!
//! [access]
//! key = "file:keys/access/secret.paserk"  # k4.secret / k3.secret PASERK, or an ES256/EdDSA private JWK
//! ttl = "15m"
//!
//! [payment]                               # optional: payment tokens
//! key = "env:TESSERA_PAYMENT_KEY"         # k4.local / k3.local PASERK
//! ttl = "5m"
//!
//! [service]                               # optional: service-to-service tokens
//! name = "auth"
//! key = "file:keys/service/secret.jwk"    # ES256 private JWK
//!
//! [service.peers]                         # the services allowed to call this one, each
//! billing = "file:keys/billing.jwks.json" # with its own JWKS: a key verifies only tokens
//!                                         # whose `iss` is the name it is listed under
//!                                         # (absent: this service trusts only itself)
//!
//! [storage]
//! database = "sqlite://tessera.db"        # or sqlite::memory: or postgres://…
//!                                         # (sqlite://PATH?synchronous=full: commits
//!                                         # wait for the disk; see token-opaque)
//! redis = "redis://127.0.0.1:6379/"       # optional: a blocklist shared by a fleet
//! # redis_cluster = ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]
//!                                         # or on a Redis Cluster, by its seed nodes
//!                                         # (not both)
//!
//! [dangerous]                             # limits raised past their defaults
//! access_ttl = "1h"
//! ```
//!
//! File paths are relative to the configuration file's directory. Durations are a whole
//! number and a unit (`90s`, `15m`, `2h`, `7d`), or several from the largest unit down
//! (`1h30m`).
//!
//! `[dangerous]` raises a limit before the lifetimes are checked: with `access_ttl =
//! "1h"` there, `[access] ttl` may be anything up to an hour (without it, the access
//! lifetime is the raised value). Every error names the TOML key it is about (`[access]
//! ttl = "1h"`), never a Rust method.
//!
//! What a file may name follows the crate's features: a JWK access key and a
//! `[service]` section need `jwt`, a `redis` URL or `redis_cluster` needs `redis`, a `sqlite:` or
//! `postgres://` database needs `sqlite` or `postgres`. A file naming something the
//! build lacks is refused with a [`Error::Config`] that names the feature.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
#[cfg(feature = "jwt")]
use token_jwt::{Algorithm, JwtVerifier, SigningKey, SigningKeySet};
#[cfg(feature = "postgres")]
use token_opaque::PgStore;
#[cfg(feature = "sqlite")]
use token_opaque::{Durability, SqliteOptions, SqliteStore};
use token_opaque::{OpaqueStore, OpaqueTokens};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, SecretKey, V3, V4};

#[cfg(feature = "redis")]
use crate::blocklist::RedisBlocklist;
use crate::blocklist::{Blocklist, MemoryBlocklist};
use crate::error::{Error, Result};
use crate::keys::{AccessKey, PaymentKey};
use crate::policy::Policy;
use crate::service::TokenService;
#[cfg(feature = "jwt")]
use crate::services::{ServiceAuth, ServicePeers};

/// Parses `90s`, `15m`, `2h`, `7d`, `1h30m` ([`token_core::parse_duration`]).
///
/// # Errors
/// [`Error::Config`] for anything else.
pub fn parse_duration(s: &str) -> Result<Duration> {
    token_core::parse_duration(s)
        .map_err(|e| Error::Config(format!("duration {:?}: {e}", s.trim())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    issuer: String,
    audience: String,
    access: Option<KeySection>,
    payment: Option<KeySection>,
    service: Option<ServiceSection>,
    storage: Option<StorageSection>,
    dangerous: Option<DangerousSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySection {
    key: Option<String>,
    ttl: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
// Read only with `jwt`; parsed always, so that a build without it can say why it
// refuses the section.
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
struct ServiceSection {
    name: String,
    key: String,
    peers: Option<std::collections::BTreeMap<String, String>>,
    ttl: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StorageSection {
    database: Option<String>,
    redis: Option<String>,
    redis_cluster: Option<Vec<String>>,
}

/// Where the shared blocklist lives, as `[storage]` names it.
// Read only with `redis`; parsed always, so that a build without it can say why it
// refuses the section.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
enum RedisTarget<'a> {
    Node(&'a str),
    Cluster(&'a [String]),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_field_names)] // the field names are the file's keys
struct DangerousSection {
    access_ttl: Option<String>,
    payment_ttl: Option<String>,
    service_ttl: Option<String>,
}

/// A parsed configuration file.
pub struct Config {
    file: File,
    base: PathBuf,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.file.issuer)
            .field("audience", &self.file.audience)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Parses TOML text; relative paths resolve against `base`.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid TOML or unknown fields.
    pub fn from_toml(text: &str, base: impl Into<PathBuf>) -> Result<Self> {
        let file: File = toml::from_str(text).map_err(|e| {
            let key = e.span().and_then(|span| toml_key_at(text, span.start));
            Error::Config(match key {
                Some(key) => format!("{key}: {}", e.message()),
                None => e.message().to_owned(),
            })
        })?;
        Ok(Self {
            file,
            base: base.into(),
        })
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    /// [`Error::Config`] when it cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_toml(&text, base)
    }

    /// The policy the file describes (no key is loaded). `[dangerous]` applies first,
    /// so a lifetime is checked against the limit in force.
    ///
    /// # Errors
    /// [`Error::Config`] naming the TOML key: a malformed duration, a zero lifetime, a
    /// lifetime above its limit (and the `[dangerous]` key that would raise it).
    pub fn policy(&self) -> Result<Policy> {
        let f = &self.file;
        let mut p = Policy::new(f.issuer.clone(), f.audience.clone());
        if let Some(d) = &f.dangerous {
            if let Some(ttl) = &d.access_ttl {
                let at = "[dangerous] access_ttl";
                p = p
                    .dangerous_raise_access_ttl(duration(at, ttl)?)
                    .map_err(|e| config_error(at, ttl, e))?;
            }
            if let Some(ttl) = &d.payment_ttl {
                let at = "[dangerous] payment_ttl";
                p = p
                    .dangerous_raise_payment_ttl(duration(at, ttl)?)
                    .map_err(|e| config_error(at, ttl, e))?;
            }
            if let Some(ttl) = &d.service_ttl {
                let at = "[dangerous] service_ttl";
                p = p
                    .dangerous_raise_service_ttl(duration(at, ttl)?)
                    .map_err(|e| config_error(at, ttl, e))?;
            }
        }
        if let Some(ttl) = f.access.as_ref().and_then(|s| s.ttl.as_deref()) {
            let at = "[access] ttl";
            p = p
                .with_access_ttl(duration(at, ttl)?)
                .map_err(|e| config_error(at, ttl, e))?;
        }
        if let Some(ttl) = f.payment.as_ref().and_then(|s| s.ttl.as_deref()) {
            let at = "[payment] ttl";
            p = p
                .with_payment_ttl(duration(at, ttl)?)
                .map_err(|e| config_error(at, ttl, e))?;
        }
        if let Some(ttl) = f.service.as_ref().and_then(|s| s.ttl.as_deref()) {
            let at = "[service] ttl";
            p = p
                .with_service_ttl(duration(at, ttl)?)
                .map_err(|e| config_error(at, ttl, e))?;
        }
        Ok(p)
    }

    /// Reads the key reference at TOML key `at`: `file:PATH` or `env:VAR`.
    fn secret(&self, at: &str, reference: &str) -> Result<SecretString> {
        if let Some(path) = reference.strip_prefix("file:") {
            let path = self.base.join(path);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::Config(format!("{at}: key file {}: {e}", path.display())))?;
            Ok(SecretString::from(text.trim().to_owned()))
        } else if let Some(var) = reference.strip_prefix("env:") {
            let value = std::env::var(var).map_err(|_| {
                Error::Config(format!("{at}: environment variable {var} is not set"))
            })?;
            Ok(SecretString::from(value.trim().to_owned()))
        } else {
            Err(Error::Config(format!(
                "{at}: a key reference is file:PATH or env:VAR (keys are never inline)"
            )))
        }
    }

    fn access_key(&self) -> Result<AccessKey> {
        let reference = self
            .file
            .access
            .as_ref()
            .and_then(|s| s.key.as_deref())
            .ok_or_else(|| Error::Config("[access] key is required".into()))?;
        let key = self.secret("[access] key", reference)?;
        let text = key.expose_secret();
        if text.starts_with("k4.secret.") {
            Ok(PublicIssuer::new(SecretKey::<V4>::from_paserk(text)?).into())
        } else if text.starts_with("k3.secret.") {
            Ok(PublicIssuer::new(SecretKey::<V3>::from_paserk(text)?).into())
        } else if text.starts_with('{') {
            jwt_access_key(text)
        } else {
            Err(Error::Config(
                "[access] key must be a k4.secret / k3.secret PASERK or a private JWK".into(),
            ))
        }
    }

    /// The payment key, when the file has a `[payment]` section (without one, the
    /// service issues no payment tokens).
    fn payment_key(&self) -> Result<Option<PaymentKey>> {
        let Some(section) = &self.file.payment else {
            return Ok(None);
        };
        let reference = section.key.as_deref().ok_or_else(|| {
            Error::Config("[payment] key is required when [payment] is present".into())
        })?;
        let key = self.secret("[payment] key", reference)?;
        let text = key.expose_secret();
        if text.starts_with("k4.local.") {
            Ok(Some(
                LocalCipher::new(LocalKey::<V4>::from_paserk(text)?).into(),
            ))
        } else if text.starts_with("k3.local.") {
            Ok(Some(
                LocalCipher::new(LocalKey::<V3>::from_paserk(text)?).into(),
            ))
        } else {
            Err(Error::Config(
                "[payment] key must be a k4.local or k3.local PASERK (payment tokens are encrypted)".into(),
            ))
        }
    }

    #[cfg(feature = "jwt")]
    fn service_auth(&self) -> Result<Option<ServiceAuth>> {
        let Some(s) = &self.file.service else {
            return Ok(None);
        };
        let key = self.secret("[service] key", &s.key)?;
        let signer = SigningKeySet::new(signing_jwk(key.expose_secret())?);
        let peers = if let Some(peers) = &s.peers {
            let mut trusted = ServicePeers::new();
            for (name, reference) in peers {
                let jwks = self.secret(&format!("[service.peers] {name}"), reference)?;
                trusted = trusted.trust(name, JwtVerifier::from_jwks(jwks.expose_secret())?)?;
            }
            trusted
        } else {
            ServicePeers::new().trust(s.name.clone(), signer.verifier())?
        };
        Ok(Some(ServiceAuth::new(s.name.clone(), signer, peers)?))
    }

    /// The database URL (default: `sqlite://tessera.db`).
    pub fn database_url(&self) -> &str {
        self.file
            .storage
            .as_ref()
            .and_then(|s| s.database.as_deref())
            .unwrap_or("sqlite://tessera.db")
    }

    /// The shared blocklist's server: `redis` (one Redis) or `redis_cluster` (the seed
    /// nodes of a Redis Cluster), never both.
    fn redis_target(&self) -> Result<Option<RedisTarget<'_>>> {
        let Some(storage) = &self.file.storage else {
            return Ok(None);
        };
        match (storage.redis.as_deref(), storage.redis_cluster.as_deref()) {
            (Some(_), Some(_)) => Err(Error::Config(
                "[storage] names both redis and redis_cluster: one Redis or one Redis Cluster"
                    .into(),
            )),
            (Some(url), None) => Ok(Some(RedisTarget::Node(url))),
            (None, Some([])) => Err(Error::Config(
                "[storage] redis_cluster needs at least one seed node URL".into(),
            )),
            (None, Some(nodes)) => Ok(Some(RedisTarget::Cluster(nodes))),
            (None, None) => Ok(None),
        }
    }

    /// Builds the whole service: keys, store (migrated), blocklist.
    ///
    /// # Errors
    /// Configuration, key, database and Redis errors.
    pub async fn build(&self) -> Result<TokenService> {
        let policy = self.policy()?;
        let access = self.access_key()?;
        let payment = self.payment_key()?;
        #[cfg(feature = "jwt")]
        let services = self.service_auth()?;
        #[cfg(not(feature = "jwt"))]
        if self.file.service.is_some() {
            return Err(missing_feature(
                "[service] configures service-to-service tokens (JWT)",
                "jwt",
            ));
        }
        let store = open_store(self.database_url()).await?;
        let opaque = OpaqueTokens::new(store);
        let blocklist: Arc<dyn Blocklist> = match self.redis_target()? {
            #[cfg(feature = "redis")]
            Some(RedisTarget::Node(url)) => Arc::new(RedisBlocklist::connect(url).await?),
            #[cfg(feature = "redis")]
            Some(RedisTarget::Cluster(nodes)) => {
                Arc::new(RedisBlocklist::connect_cluster(nodes).await?)
            }
            #[cfg(not(feature = "redis"))]
            Some(_) => {
                return Err(missing_feature(
                    "[storage] redis or redis_cluster names a Redis blocklist",
                    "redis",
                ));
            }
            None => Arc::new(MemoryBlocklist::new()),
        };
        let mut builder = TokenService::builder(policy, access)
            .opaque(opaque)
            .blocklist(blocklist);
        if let Some(payment) = payment {
            builder = builder.payment(payment);
        }
        #[cfg(feature = "jwt")]
        if let Some(services) = services {
            builder = builder.services(services);
        }
        Ok(builder.build())
    }
}

/// A duration at TOML key `at`.
fn duration(at: &str, value: &str) -> Result<Duration> {
    token_core::parse_duration(value)
        .map_err(|e| Error::Config(format!("{at} = {:?}: {e}", value.trim())))
}

/// A policy error about the value at TOML key `at`, said in the file's terms.
fn config_error(at: &str, value: &str, e: Error) -> Error {
    match e {
        Error::LimitExceeded { job, limit, .. } => {
            let raise = match job {
                crate::policy::Job::Payment => "payment_ttl",
                crate::policy::Job::ServiceToService => "service_ttl",
                _ => "access_ttl",
            };
            Error::Config(format!(
                "{at} = {value:?} exceeds the {job} limit of {}s; raising it needs [dangerous] {raise} = {value:?}",
                limit.as_secs()
            ))
        }
        Error::InvalidPolicy(why) => Error::Config(format!("{at} = {value:?}: {why}")),
        other => other,
    }
}

/// The TOML key at byte `offset` of `text`, as `[table] key` (or `key` at the top
/// level), for an error the TOML reader found there.
fn toml_key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(line_start..)?.lines().next()?.trim();
    let line_number = before.matches('\n').count() + 1;
    let table = before
        .get(..line_start)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim().to_owned());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let place = match (table, key) {
        // The error is about a table header itself (`[acess]`).
        _ if line.starts_with('[') => line.split('#').next().unwrap_or(line).trim().to_owned(),
        (Some(table), Some(key)) => format!("{table} {key}"),
        (None, Some(key)) => key.to_owned(),
        (Some(table), None) => table,
        (None, None) => return Some(format!("line {line_number}")),
    };
    Some(format!("{place} (line {line_number})"))
}

/// The error for a configuration that names what this build left out.
#[cfg(not(all(
    feature = "jwt",
    feature = "redis",
    feature = "postgres",
    feature = "sqlite"
)))]
fn missing_feature(what: &str, feature: &str) -> Error {
    Error::Config(format!(
        "{what}, but token-policy was built without its `{feature}` feature"
    ))
}

/// An access key from a private JWK.
#[cfg(feature = "jwt")]
fn jwt_access_key(jwk: &str) -> Result<AccessKey> {
    AccessKey::jwt(SigningKeySet::new(signing_jwk(jwk)?))
}

#[cfg(not(feature = "jwt"))]
fn jwt_access_key(_jwk: &str) -> Result<AccessKey> {
    Err(missing_feature(
        "[access] key is a JWK (a JWT access key)",
        "jwt",
    ))
}

/// A private JWK whose algorithm follows from its `alg` member or its curve.
///
/// # Errors
/// [`Error::Config`] when the algorithm cannot be told; JWT key errors.
#[cfg(feature = "jwt")]
pub fn signing_jwk(jwk: &str) -> Result<SigningKey> {
    Ok(SigningKey::from_jwk(jwk_algorithm(jwk)?, jwk)?)
}

/// The algorithm a JWK is for: its `alg`, else its curve (`P-256` → ES256, `P-384` →
/// ES384, `Ed25519` → EdDSA). RSA keys must name their `alg`.
///
/// # Errors
/// [`Error::Config`] when it cannot be told.
#[cfg(feature = "jwt")]
pub fn jwk_algorithm(jwk: &str) -> Result<Algorithm> {
    let v: serde_json::Value = serde_json::from_str(jwk)
        .map_err(|_| Error::Config("a JWK must be a JSON object".into()))?;
    if let Some(alg) = v.get("alg").and_then(serde_json::Value::as_str) {
        return Algorithm::from_name(alg)
            .ok_or_else(|| Error::Config(format!("JWK algorithm {alg:?} is not supported")));
    }
    match (
        v.get("kty").and_then(serde_json::Value::as_str),
        v.get("crv").and_then(serde_json::Value::as_str),
    ) {
        (Some("EC"), Some("P-256")) => Ok(Algorithm::Es256),
        (Some("EC"), Some("P-384")) => Ok(Algorithm::Es384),
        (Some("OKP"), Some("Ed25519")) => Ok(Algorithm::EdDsa),
        _ => Err(Error::Config(
            "the JWK has no `alg` and its key type does not imply one".into(),
        )),
    }
}

/// Opens an opaque-token store by URL: `sqlite://PATH`, `sqlite::memory:`, or
/// `postgres://…`. Migrations run on open.
///
/// `sqlite://PATH?synchronous=full` makes every SQLite commit wait for the disk, so a
/// revocation or redemption survives a power loss ([`Durability::Full`]);
/// `?synchronous=normal` is the default.
///
/// Each scheme needs its feature (`sqlite`, `postgres`); without it, its URLs are a
/// [`Error::Config`] naming the feature.
///
/// # Errors
/// [`Error::Config`] for another scheme or SQLite option; database errors.
pub async fn open_store(url: &str) -> Result<Arc<dyn OpaqueStore>> {
    if url == "sqlite::memory:" || url.starts_with("sqlite://") {
        open_sqlite(url).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        open_postgres(url).await
    } else {
        Err(Error::Config(
            "database URL must be sqlite://PATH, sqlite::memory: or postgres://…".into(),
        ))
    }
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str) -> Result<Arc<dyn OpaqueStore>> {
    if url == "sqlite::memory:" {
        Ok(Arc::new(SqliteStore::memory().await?))
    } else if let Some(rest) = url.strip_prefix("sqlite://") {
        let (path, option) = match rest.split_once('?') {
            Some((path, option)) => (path, Some(option)),
            None => (rest, None),
        };
        let durability = match option {
            None | Some("synchronous=normal") => Durability::Normal,
            Some("synchronous=full") => Durability::Full,
            Some(_) => {
                return Err(Error::Config(
                    "the only sqlite:// option is synchronous=normal or synchronous=full".into(),
                ));
            }
        };
        let options = SqliteOptions::default().durability(durability);
        Ok(Arc::new(SqliteStore::open_with(path, options).await?))
    } else {
        Err(Error::Config("not a sqlite: URL".into()))
    }
}

#[cfg(not(feature = "sqlite"))]
#[allow(clippy::unused_async)] // the signature of the one it stands in for
async fn open_sqlite(_url: &str) -> Result<Arc<dyn OpaqueStore>> {
    Err(missing_feature("the database URL is sqlite:", "sqlite"))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Arc<dyn OpaqueStore>> {
    Ok(Arc::new(PgStore::open(connect_postgres(url).await?).await?))
}

#[cfg(not(feature = "postgres"))]
#[allow(clippy::unused_async)] // the signature of the one it stands in for
async fn open_postgres(_url: &str) -> Result<Arc<dyn OpaqueStore>> {
    Err(missing_feature("the database URL is postgres:", "postgres"))
}

/// How long opening a backend waits for its server before giving up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool on `url`, after one direct connection that tells a refusal (at once) from
/// silence ([`CONNECT_TIMEOUT`]) from a refused login, naming the server's address
/// and never the URL's password.
#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str) -> Result<sqlx::PgPool> {
    use sqlx::Connection as _;
    let options: sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|_| Error::Config("invalid PostgreSQL URL".into()))?;
    let address = format!("{}:{}", options.get_host(), options.get_port());
    let failed = |reason: String| Error::Connect {
        backend: "PostgreSQL",
        address: address.clone(),
        reason,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(&options)).await {
        Err(_) => return Err(failed(timed_out())),
        Ok(Err(e)) => return Err(failed(connect_failure(&e))),
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
    }
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| failed(connect_failure(&e)))
}

#[cfg(any(feature = "redis", feature = "postgres"))]
fn timed_out() -> String {
    format!(
        "no answer within {} s (timed out)",
        CONNECT_TIMEOUT.as_secs()
    )
}

/// Why a connection failed, in words that quote nothing from the URL or the server.
#[cfg(feature = "postgres")]
fn connect_failure(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io_failure(io.kind()),
        sqlx::Error::Tls(_) => "TLS handshake failed".into(),
        sqlx::Error::PoolTimedOut => timed_out(),
        sqlx::Error::Database(db) => format!(
            "the server refused the login (SQLSTATE {}: check the user, password and database)",
            db.code().as_deref().unwrap_or("?")
        ),
        sqlx::Error::Configuration(_) => "invalid connection options".into(),
        _ => "connection failed".into(),
    }
}

#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn io_failure(kind: std::io::ErrorKind) -> String {
    use std::io::ErrorKind as K;
    match kind {
        K::ConnectionRefused => "connection refused (is the server running on that port?)".into(),
        K::TimedOut => timed_out(),
        K::ConnectionReset | K::ConnectionAborted => "connection reset by the server".into(),
        K::NotFound => "host not found".into(),
        other => format!("network error ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_urls_take_only_the_synchronous_option() {
        let dir = std::env::temp_dir().join(format!("tessera-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (option, ok) in [
            ("", true),
            ("?synchronous=full", true),
            ("?synchronous=normal", true),
            ("?synchronous=off", false),
            ("?mode=ro", false),
        ] {
            let url = format!("sqlite://{}{option}", dir.join("t.db").display());
            match open_store(&url).await {
                Ok(store) => {
                    assert!(ok, "{option} was accepted");
                    assert_eq!(store.backend(), "sqlite");
                }
                Err(e) => {
                    assert!(!ok, "{option}: {e}");
                    assert!(matches!(e, Error::Config(_)), "{option}: {e:?}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file naming what the build left out is refused, naming the feature.
    #[cfg(not(all(
        feature = "jwt",
        feature = "redis",
        feature = "postgres",
        feature = "sqlite"
    )))]
    mod missing_features {
        use super::*;

        fn feature_error(result: Result<impl std::fmt::Debug>, feature: &str) {
            match result {
                Err(Error::Config(m)) => {
                    assert!(m.contains(&format!("`{feature}` feature")), "{m}");
                }
                other => panic!("expected a configuration error naming {feature}: {other:?}"),
            }
        }

        /// A configuration in a directory of its own, with a v4 access key beside it.
        #[allow(dead_code)] // its tests depend on which features the build lacks
        fn config(extra: &str) -> (Config, std::path::PathBuf) {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).unwrap();
            let dir =
                std::env::temp_dir().join(format!("tessera-features-{}", u64::from_le_bytes(b)));
            std::fs::create_dir_all(&dir).unwrap();
            let key = SecretKey::<V4>::generate().unwrap().to_paserk();
            std::fs::write(dir.join("access.paserk"), key.expose_secret()).unwrap();
            std::fs::write(dir.join("access.jwk"), r#"{"kty":"EC","crv":"P-256"}"#).unwrap();
            let text = format!(
                "issuer = \"a\"\naudience = \"b\"\n[access]\nkey = \"file:access.paserk\"\n{extra}"
            );
            (Config::from_toml(&text, &dir).unwrap(), dir)
        }

        #[cfg(not(feature = "postgres"))]
        #[tokio::test]
        async fn postgres_urls() {
            feature_error(open_store("postgres://u@127.0.0.1:1/db").await, "postgres");
        }

        #[cfg(not(feature = "sqlite"))]
        #[tokio::test]
        async fn sqlite_urls() {
            feature_error(open_store("sqlite::memory:").await, "sqlite");
            feature_error(open_store("sqlite://tessera.db").await, "sqlite");
        }

        #[cfg(not(feature = "jwt"))]
        #[test]
        fn jwk_access_keys() {
            let (c, dir) = config("");
            let jwk = Config::from_toml(
                "issuer = \"a\"\naudience = \"b\"\n[access]\nkey = \"file:access.jwk\"\n",
                &dir,
            )
            .unwrap();
            assert!(c.access_key().is_ok());
            feature_error(jwk.access_key(), "jwt");
            let _ = std::fs::remove_dir_all(dir);
        }

        #[cfg(all(not(feature = "jwt"), feature = "sqlite"))]
        #[tokio::test]
        async fn service_sections() {
            let (c, dir) = config(
                "[service]\nname = \"auth\"\nkey = \"file:s.jwk\"\n[storage]\ndatabase = \"sqlite::memory:\"\n",
            );
            feature_error(c.build().await, "jwt");
            let _ = std::fs::remove_dir_all(dir);
        }

        #[cfg(all(not(feature = "redis"), feature = "sqlite"))]
        #[tokio::test]
        async fn redis_urls() {
            let (c, dir) = config(
                "[storage]\ndatabase = \"sqlite::memory:\"\nredis = \"redis://127.0.0.1:1/\"\n",
            );
            feature_error(c.build().await, "redis");
            let _ = std::fs::remove_dir_all(dir);
            let (c, dir) = config(
                "[storage]\ndatabase = \"sqlite::memory:\"\nredis_cluster = [\"redis://127.0.0.1:1/\"]\n",
            );
            feature_error(c.build().await, "redis");
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// `redis_cluster` reaches `RedisBlocklist::connect_cluster`: its seeds refused,
    /// the build fails naming the cluster, not one Redis.
    #[cfg(all(feature = "redis", feature = "sqlite"))]
    #[tokio::test]
    async fn redis_cluster_builds_a_cluster_blocklist() {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        let dir = std::env::temp_dir().join(format!("tessera-cluster-{}", u64::from_le_bytes(b)));
        std::fs::create_dir_all(&dir).unwrap();
        let key = SecretKey::<V4>::generate().unwrap().to_paserk();
        std::fs::write(dir.join("access.paserk"), key.expose_secret()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Config::from_toml(
            &format!(
                "issuer = \"a\"\naudience = \"b\"\n[access]\nkey = \"file:access.paserk\"\n\
                 [storage]\ndatabase = \"sqlite::memory:\"\n\
                 redis_cluster = [\"redis://127.0.0.1:{port}\"]\n"
            ),
            &dir,
        )
        .unwrap();
        let err = c.build().await.err().unwrap();
        assert!(
            matches!(&err, Error::Connect { backend: "Redis Cluster", address, .. } if *address == format!("127.0.0.1:{port}")),
            "{err:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn redis_or_redis_cluster_never_both() {
        let storage = |text: &str| {
            Config::from_toml(
                &format!("issuer = \"a\"\naudience = \"b\"\n[storage]\n{text}"),
                ".",
            )
            .unwrap()
        };
        let node = storage("redis = \"redis://127.0.0.1:6379/\"\n");
        assert!(matches!(
            node.redis_target(),
            Ok(Some(RedisTarget::Node("redis://127.0.0.1:6379/")))
        ));
        let cluster =
            storage("redis_cluster = [\"redis://127.0.0.1:7000\", \"redis://127.0.0.1:7001\"]\n");
        assert!(matches!(
            cluster.redis_target(),
            Ok(Some(RedisTarget::Cluster([a, b]))) if a == "redis://127.0.0.1:7000" && b == "redis://127.0.0.1:7001"
        ));
        assert!(matches!(storage("").redis_target(), Ok(None)));
        for bad in [
            "redis = \"redis://a/\"\nredis_cluster = [\"redis://b/\"]\n",
            "redis_cluster = []\n",
        ] {
            assert!(
                matches!(storage(bad).redis_target(), Err(Error::Config(_))),
                "{bad}"
            );
        }
        assert!(
            Config::from_toml(
                "issuer = \"a\"\naudience = \"b\"\n[storage]\nredis_cluster = \"redis://a/\"\n",
                "."
            )
            .is_err(),
            "a list of seed nodes, not one string"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        for bad in [
            "",
            "15",
            "m",
            "1.5m",
            "15 m",
            "15min",
            "-1s",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policy_from_toml() {
        let c = Config::from_toml(
            "issuer = \"https://a\"\naudience = \"api\"\n[access]\nttl = \"10m\"\n[payment]\nttl = \"2m\"\n",
            ".",
        )
        .unwrap();
        let p = c.policy().unwrap();
        assert_eq!(p.access_ttl(), Duration::from_secs(600));
        assert_eq!(p.payment_ttl(), Duration::from_secs(120));
        assert!(p.overrides().is_empty());

        let over = Config::from_toml(
            "issuer = \"a\"\naudience = \"b\"\n[access]\nttl = \"1h\"\n",
            ".",
        )
        .unwrap();
        assert!(matches!(over.policy(), Err(Error::Config(m)) if m.contains("[access] ttl")));
        let raised = Config::from_toml(
            "issuer = \"a\"\naudience = \"b\"\n[dangerous]\naccess_ttl = \"1h\"\n",
            ".",
        )
        .unwrap();
        assert_eq!(raised.policy().unwrap().overrides().len(), 1);
        assert!(matches!(
            Config::from_toml("issuer = \"a\"\naudience = \"b\"\nsurprise = 1\n", "."),
            Err(Error::Config(_))
        ));
    }

    /// `[access] ttl = "1h"` beside `[dangerous] access_ttl = "1h"` used to be refused
    /// (the lifetime was checked before the override applied), with an error naming
    /// the Rust method `dangerous_raise_*` rather than the TOML key.
    #[test]
    fn dangerous_applies_before_the_limits_and_errors_name_the_toml_key() {
        let policy = |toml: &str| {
            Config::from_toml(&format!("issuer = \"a\"\naudience = \"b\"\n{toml}"), ".")
                .and_then(|c| c.policy())
        };
        let p = policy("[access]\nttl = \"1h\"\n[dangerous]\naccess_ttl = \"1h\"\n").unwrap();
        assert_eq!(p.access_ttl(), Duration::from_secs(3600));
        let p = policy("[access]\nttl = \"30m\"\n[dangerous]\naccess_ttl = \"1h\"\n").unwrap();
        assert_eq!(p.access_ttl(), Duration::from_secs(1800));
        let p = policy("[dangerous]\npayment_ttl = \"10m\"\n[payment]\nttl = \"7m\"\n").unwrap();
        assert_eq!(p.payment_ttl(), Duration::from_secs(420));
        let p = policy("[access]\nttl = \"1h30m\"\n[dangerous]\naccess_ttl = \"2h\"\n").unwrap();
        assert_eq!(p.access_ttl(), Duration::from_secs(5400));
        let message = |toml: &str| match policy(toml) {
            Err(Error::Config(m)) => m,
            other => panic!("{toml}: {other:?}"),
        };
        for (toml, want) in [
            (
                "[access]\nttl = \"1h\"\n",
                "[access] ttl = \"1h\" exceeds the access limit of 900s; raising it needs [dangerous] access_ttl = \"1h\"",
            ),
            (
                "[access]\nttl = \"2h\"\n[dangerous]\naccess_ttl = \"1h\"\n",
                "[access] ttl = \"2h\" exceeds the access limit of 3600s; raising it needs [dangerous] access_ttl = \"2h\"",
            ),
            (
                "[payment]\nttl = \"6m\"\n",
                "[payment] ttl = \"6m\" exceeds the payment limit of 300s; raising it needs [dangerous] payment_ttl = \"6m\"",
            ),
            (
                "[access]\nttl = \"0s\"\n",
                "[access] ttl = \"0s\": access lifetime must be positive",
            ),
            (
                "[access]\nttl = \"1x\"\n",
                "[access] ttl = \"1x\": malformed duration: the unit must be s, m, h or d",
            ),
            (
                "[dangerous]\nservice_ttl = \"soon\"\n",
                "[dangerous] service_ttl = \"soon\": malformed duration: must start with a whole number",
            ),
        ] {
            assert_eq!(message(toml), want, "{toml}");
            assert!(!message(toml).contains("dangerous_raise"), "{toml}");
        }
        // The TOML reader's own errors name the key too.
        let m = message("[access]\nttl = 15\n");
        assert!(m.starts_with("[access] ttl (line 4): "), "{m}");
        let m = message("[acess]\nttl = \"1m\"\n");
        assert!(
            m.starts_with("[acess] (line 3): unknown field `acess`"),
            "{m}"
        );
        let m = message("[dangerous]\naccess = \"1h\"\n");
        assert!(
            m.starts_with("[dangerous] access (line 4): unknown field `access`"),
            "{m}"
        );
    }

    #[test]
    fn keys_are_never_inline() {
        let c = Config::from_toml(
            "issuer = \"a\"\naudience = \"b\"\n[access]\nkey = \"k4.secret.AAAA\"\n",
            ".",
        )
        .unwrap();
        assert!(
            matches!(c.access_key(), Err(Error::Config(m)) if m.starts_with("[access] key: ") && m.contains("file:PATH"))
        );
    }

    #[cfg(feature = "jwt")]
    #[test]
    fn jwk_algorithms() {
        assert_eq!(
            jwk_algorithm(r#"{"kty":"EC","crv":"P-256"}"#).unwrap(),
            Algorithm::Es256
        );
        assert_eq!(
            jwk_algorithm(r#"{"kty":"OKP","crv":"Ed25519"}"#).unwrap(),
            Algorithm::EdDsa
        );
        assert_eq!(
            jwk_algorithm(r#"{"kty":"RSA","alg":"PS256"}"#).unwrap(),
            Algorithm::Ps256
        );
        assert!(jwk_algorithm(r#"{"kty":"RSA"}"#).is_err());
        assert!(jwk_algorithm(r#"{"kty":"oct","alg":"HS256"}"#).is_err());
        assert!(jwk_algorithm("nope").is_err());
    }
}
