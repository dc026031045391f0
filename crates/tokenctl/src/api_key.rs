//! `tokenctl api-key create|verify|revoke|roll|list --db URL`: API keys from a
//! terminal, on SQLite (`sqlite://PATH`) or PostgreSQL (`postgres://…`).
//!
//! Keys belong to an owner (an account id). Keys created here belong to `--owner`
//! (default `tokenctl`); `revoke`, `roll` and `list` act on the keys of `--owner`.
//! `verify` needs no owner. The raw key is printed once, by `create` and `roll`; no
//! other command prints a secret. Keys are `test` keys (`sk_test_…`) unless `--env
//! live` says otherwise, as in the reference service.
//!
//! A database whose key table keeps an API-key pepper (a service started with a
//! key-encryption key, or `tokenctl keys init`) hashes its keys with that pepper: pass
//! the same `--kek-file` (and `--namespace`, if not `default`) as the service, and the
//! keys made here are the ones it accepts. Without `--kek-file` such a database is
//! refused, rather than given keys the service would never find.
//!
//! A SQLite file that does not exist is created by `create` (which says so on stderr)
//! and is an error for `verify`, `revoke`, `roll` and `list`, which only use existing
//! keys: a misspelt path must not answer "unknown key" from a fresh, empty database.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use token_core::{Clock, SystemClock, Timestamp};
use token_opaque::{ApiKeyInfo, Environment, NewApiKey, OpaqueStore, OpaqueTokens};
use token_policy::Policy;
use token_policy::keystore::{self, Kek, KeyJob, KeyPlan, KeyStore};

use crate::error::{Failure, Result};
use crate::runtime;
use crate::util::{
    database_is_new, note, out, out_json, parse_duration, read_token, require_existing_database,
    sqlite_file,
};

/// The owner of keys created without `--owner`.
pub(crate) const DEFAULT_OWNER: &str = "tokenctl";

/// Arguments of `api-key`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The database: `sqlite://PATH` or `postgres://…`.
    #[arg(long, global = true, value_name = "URL")]
    db: Option<String>,
    /// The account the keys belong to.
    #[arg(long, global = true, value_name = "ID", default_value = DEFAULT_OWNER)]
    owner: String,
    /// The key-encryption key of the database's key table: keys are hashed with the
    /// table's API-key pepper, as the service that shares the database does.
    #[arg(long, global = true, value_name = "FILE")]
    kek_file: Option<PathBuf>,
    /// The key table's deployment (as `tokenctl keys --namespace`).
    #[arg(long, global = true, value_name = "NAME", default_value = keystore::DEFAULT_NAMESPACE)]
    namespace: String,
    #[command(subcommand)]
    op: Op,
}

/// Live or test keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Env {
    /// `sk_live_…`.
    Live,
    /// `sk_test_…`.
    Test,
}

#[derive(Debug, clap::Subcommand)]
enum Op {
    /// Create a key and print it (once).
    Create {
        /// A name for the key.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes.
        #[arg(long, value_delimiter = ',', value_name = "A,B")]
        scopes: Vec<String>,
        /// Live or test key (`sk_live_…` / `sk_test_…`).
        #[arg(long, value_enum, default_value = "test")]
        env: Env,
        /// Expire the key after this long (e.g. `90d`).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires: Option<Duration>,
    },
    /// Verify a key and print its metadata.
    Verify {
        /// The key; `-` or nothing reads it from standard input.
        #[arg(value_name = "KEY|-")]
        key: Option<String>,
    },
    /// Revoke a key by id.
    Revoke {
        /// The key's id.
        id: String,
    },
    /// Replace a key by a new one; the old one keeps working for `--overlap`.
    Roll {
        /// The key's id.
        id: String,
        /// How long the old key keeps working (`0s` ends it now).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        overlap: Duration,
    },
    /// List the keys' metadata (never the keys).
    List,
}

fn db_error(e: &token_policy::Error) -> Failure {
    Failure::usage(format!("cannot open the database: {e}"))
}

fn opaque_error(e: &token_opaque::Error) -> Failure {
    use token_opaque::Error as E;
    match e {
        E::Malformed(_) | E::BadChecksum | E::NotFound | E::Revoked | E::Expired => {
            Failure::refused(e)
        }
        E::WrongKind { found, .. } => Failure::rejected(
            token_core::Reason::WrongTokenType,
            format!("a {found}, not an API key"),
        ),
        E::AlreadyRolled => Failure::failed("the key was already rolled; roll its replacement"),
        E::InvalidInput(why) => Failure::usage(*why),
        other => Failure::usage(other.to_string()),
    }
}

/// The environment prefix of a key (`sk_live_` / `sk_test_`).
fn prefix(env: Environment) -> &'static str {
    env.kind().default_prefix()
}

fn env_name(env: Environment) -> &'static str {
    match env {
        Environment::Live => "live",
        Environment::Test => "test",
    }
}

fn ts(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

fn status(info: &ApiKeyInfo, now: Timestamp) -> &'static str {
    if info.revoked_at.is_some() {
        "revoked"
    } else if info.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else if info.replaced_by.is_some() {
        "rolled"
    } else {
        "active"
    }
}

fn metadata(info: &ApiKeyInfo, now: Timestamp) -> Value {
    json!({
        "id": info.id,
        "owner": info.owner_id,
        "name": info.name,
        "env": env_name(info.environment),
        "prefix": prefix(info.environment),
        "scopes": info.scopes,
        "created_at": ts(Some(info.created_at)),
        "expires_at": ts(info.expires_at),
        "last_used_at": ts(info.last_used_at),
        "revoked_at": ts(info.revoked_at),
        "replaced_by": info.replaced_by,
        "status": status(info, now),
    })
}

fn human(info: &ApiKeyInfo, now: Timestamp) -> String {
    let t = |t: Option<Timestamp>| t.map_or_else(|| "never".to_owned(), Timestamp::to_rfc3339);
    [
        format!("id:        {}", info.id),
        format!("owner:     {}", info.owner_id),
        format!("name:      {}", info.name),
        format!(
            "env:       {} ({})",
            env_name(info.environment),
            prefix(info.environment)
        ),
        format!("scopes:    {}", info.scopes.join(",")),
        format!("created:   {}", info.created_at.to_rfc3339()),
        format!("expires:   {}", t(info.expires_at)),
        format!("last used: {}", t(info.last_used_at)),
        format!("status:    {}", status(info, now)),
    ]
    .join("\n")
}

async fn open(url: &str) -> Result<Arc<dyn OpaqueStore>> {
    token_policy::config::open_store(url)
        .await
        .map_err(|e| db_error(&e))
}

/// The opaque tokens of `store`, hashed as the service sharing it hashes them: with
/// the key table's API-key pepper when it keeps one (which takes `--kek-file`), plain
/// SHA-256 otherwise.
async fn tokens(store: Arc<dyn OpaqueStore>, args: &Args) -> Result<OpaqueTokens> {
    let ns = args.namespace.as_str();
    // A store without a key table has no pepper either.
    let listed = keystore::list(store.as_ref(), ns, SystemClock.now())
        .await
        .unwrap_or_default();
    let has_pepper = listed
        .iter()
        .any(|k| k.job == KeyJob::ApiKeyPepper.as_str() && k.revoked_at.is_none());
    let Some(kek_file) = &args.kek_file else {
        if has_pepper {
            return Err(Failure::usage(format!(
                "the database keeps an API-key pepper in its key table (namespace {ns}): pass \
                 --kek-file FILE, the key-encryption key the service uses, or the service \
                 will not find these keys"
            )));
        }
        return Ok(OpaqueTokens::new(store));
    };
    if !has_pepper {
        return Err(Failure::usage(format!(
            "the key table has no API-key pepper in namespace {ns}: start the service with \
             its --kek-file once (or run `tokenctl keys init`), or leave out --kek-file"
        )));
    }
    let kek = Kek::from_file(kek_file).map_err(|e| Failure::usage(e.to_string()))?;
    // The pepper only: the other jobs' keys are the service's business.
    let plan = KeyPlan::for_policy(&Policy::new("tokenctl", "tokenctl"))
        .namespace(ns)
        .without(KeyJob::Access)
        .without(KeyJob::Payment);
    let keys = KeyStore::new(store.clone(), kek, plan).map_err(|e| db_error(&e))?;
    let mut snapshot = keys
        .snapshot()
        .await
        .map_err(|e| Failure::usage(format!("cannot open the key table: {e}")))?;
    let hasher = snapshot
        .take_hasher()
        .ok_or_else(|| Failure::usage("the key table has no usable API-key pepper"))?;
    OpaqueTokens::builder(store)
        .hasher(hasher)
        .build()
        .map_err(|e| opaque_error(&e))
}

/// Runs `api-key`.
pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    let url = args
        .db
        .as_deref()
        .ok_or_else(|| Failure::usage("--db URL is required (sqlite://PATH or postgres://…)"))?;
    if url == "sqlite::memory:" {
        return Err(Failure::usage(
            "an in-memory database is gone when tokenctl exits: use sqlite://PATH",
        ));
    }
    // Read the key before touching the database, so a missing key fails fast.
    let raw = match &args.op {
        Op::Verify { key } => Some(read_token(key.as_deref())?),
        _ => None,
    };
    let creates = matches!(args.op, Op::Create { .. });
    if !creates {
        require_existing_database(url)?;
    }
    let new = creates && database_is_new(url);
    let rt = runtime()?;
    rt.block_on(async {
        let store = open(url).await?;
        if new {
            if let Some(path) = sqlite_file(url) {
                note(&format!("created the database {}", path.display()));
            }
        }
        let tokens = tokens(store, args).await?;
        execute(&tokens, args, raw.as_deref(), json).await
    })
}

#[allow(clippy::too_many_lines)] // one arm per operation
async fn execute(tokens: &OpaqueTokens, args: &Args, raw: Option<&str>, json: bool) -> Result<()> {
    let keys = tokens.api_keys();
    let now = SystemClock.now();
    let owner = args.owner.as_str();
    match &args.op {
        Op::Create {
            name,
            scopes,
            env,
            expires,
        } => {
            let environment = match env {
                Env::Live => Environment::Live,
                Env::Test => Environment::Test,
            };
            let mut new = NewApiKey::new(owner, name.clone(), environment)
                .scopes(scopes.iter().filter(|s| !s.is_empty()).cloned());
            if let Some(d) = expires {
                let at = now
                    .checked_add(*d)
                    .map_err(|_| Failure::usage("--expires is too long"))?;
                new = new.expires_at(at);
            }
            let created = keys.create(new).await.map_err(|e| opaque_error(&e))?;
            let info = &created.info;
            if json {
                out_json(
                    &json!({
                        "id": info.id,
                        "key": created.key.expose_secret(),
                        "prefix": prefix(info.environment),
                        "scopes": info.scopes,
                    }),
                    true,
                )
            } else {
                note(&format!(
                    "created API key {} ({}, scopes: {}); it is shown once: store it now",
                    info.id,
                    info.name,
                    info.scopes.join(",")
                ));
                out(created.key.expose_secret())
            }
        }
        Op::Verify { .. } => {
            let raw = raw.ok_or_else(|| Failure::usage("no key given"))?;
            let info = keys.verify(raw).await.map_err(|e| opaque_error(&e))?;
            if json {
                out_json(&metadata(&info, now), true)
            } else {
                out(&human(&info, now))
            }
        }
        Op::Revoke { id } => {
            let revoked = keys.revoke(owner, id).await.map_err(|e| match e {
                token_opaque::Error::NotFound => Failure::failed(format!(
                    "no API key {id} for owner {owner} (pass --owner for keys of another account)"
                )),
                other => opaque_error(&other),
            })?;
            if json {
                out_json(
                    &json!({ "id": id, "revoked": true, "already_revoked": !revoked }),
                    true,
                )
            } else if revoked {
                out(&format!("revoked {id}"))
            } else {
                out(&format!("{id} was already revoked"))
            }
        }
        Op::Roll { id, overlap } => {
            let rolled = keys.roll(owner, id, *overlap).await.map_err(|e| match e {
                token_opaque::Error::NotFound => Failure::failed(format!(
                    "no API key {id} for owner {owner} (pass --owner for keys of another account)"
                )),
                other => opaque_error(&other),
            })?;
            let info = &rolled.info;
            if json {
                out_json(
                    &json!({
                        "id": info.id,
                        "key": rolled.key.expose_secret(),
                        "prefix": prefix(info.environment),
                        "scopes": info.scopes,
                        "previous": {
                            "id": rolled.previous.id,
                            "expires_at": ts(rolled.previous.expires_at),
                        },
                    }),
                    true,
                )
            } else {
                note(&format!(
                    "rolled {} into {}; the old key works until {}; the new key is shown once: store it now",
                    rolled.previous.id,
                    info.id,
                    rolled
                        .previous
                        .expires_at
                        .map_or_else(|| "revoked".to_owned(), Timestamp::to_rfc3339)
                ));
                out(rolled.key.expose_secret())
            }
        }
        Op::List => {
            let list = keys.list(owner).await.map_err(|e| opaque_error(&e))?;
            if json {
                out_json(
                    &Value::Array(list.iter().map(|i| metadata(i, now)).collect()),
                    true,
                )
            } else if list.is_empty() {
                out(&format!("no API keys for owner {owner}"))
            } else {
                let mut lines = vec![format!(
                    "{:<34} {:<8} {:<5} {:<20} {:<20} {}",
                    "ID", "STATUS", "ENV", "NAME", "CREATED", "SCOPES"
                )];
                for info in &list {
                    lines.push(format!(
                        "{:<34} {:<8} {:<5} {:<20} {:<20} {}",
                        info.id,
                        status(info, now),
                        env_name(info.environment),
                        info.name,
                        info.created_at.to_rfc3339(),
                        info.scopes.join(",")
                    ));
                }
                out(&lines.join("\n"))
            }
        }
    }
}
