//! `tokenctl keys init|list|rotate|revoke|rewrap --db URL`: the key table a fleet of
//! services shares (every key wrapped under a key-encryption key), on SQLite
//! (`sqlite://PATH`) or PostgreSQL (`postgres://…`).
//!
//! `list` and `revoke` need no key-encryption key; `init`, `rotate` and `rewrap` do.
//! No command prints a secret.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use token_core::{Clock, SystemClock};
use token_opaque::OpaqueStore;
use token_policy::Policy;
use token_policy::keystore::{self, Kek, KeyInfo, KeyJob, KeyKind, KeyPlan, KeyStore};

use crate::error::{Failure, Result};
use crate::runtime;
use crate::util::{note, out, out_json, write_file};

/// Arguments of `keys`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The database: `sqlite://PATH` or `postgres://…`.
    #[arg(long, global = true, value_name = "URL")]
    db: Option<String>,
    /// The deployment whose keys these are (several may share a database).
    #[arg(long, global = true, value_name = "NAME", default_value = keystore::DEFAULT_NAMESPACE)]
    namespace: String,
    #[command(subcommand)]
    op: Op,
}

/// The access-token key kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum AccessKind {
    /// PASETO `v4.public` (Ed25519).
    #[value(name = "v4.public")]
    V4Public,
    /// PASETO `v3.public` (ECDSA P-384).
    #[value(name = "v3.public")]
    V3Public,
    /// JWT ES256.
    #[value(name = "jwt-es256")]
    JwtEs256,
    /// JWT EdDSA.
    #[value(name = "jwt-eddsa")]
    JwtEdDsa,
}

impl AccessKind {
    const fn kind(self) -> KeyKind {
        match self {
            Self::V4Public => KeyKind::PasetoV4Public,
            Self::V3Public => KeyKind::PasetoV3Public,
            Self::JwtEs256 => KeyKind::JwtEs256,
            Self::JwtEdDsa => KeyKind::JwtEdDsa,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Op {
    /// Create the first keys (and the key-encryption key file, if it does not exist).
    Init {
        /// The key-encryption key (`k4.local…`); created, mode 0600, if missing.
        #[arg(long, value_name = "FILE")]
        kek_file: PathBuf,
        /// The kind of the access signing keys.
        #[arg(long, value_enum, default_value = "v4.public")]
        access: AccessKind,
        /// Also keep service-to-service signing keys (ES256).
        #[arg(long)]
        service: bool,
    },
    /// List the keys and their states (no secret material).
    List,
    /// Make a job's next key sign now: its pending key, or a new one.
    Rotate {
        /// The key-encryption key.
        #[arg(long, value_name = "FILE")]
        kek_file: PathBuf,
        /// The job: access, service, payment or api-key-pepper.
        #[arg(long, default_value = "access", value_parser = parse_job)]
        job: KeyJob,
    },
    /// Revoke a key at once (compromise): gone from every instance at its next re-read.
    Revoke {
        /// The key id, as `list` shows it.
        kid: String,
    },
    /// Wrap every row under a new key-encryption key (rotating the KEK itself).
    Rewrap {
        /// The key-encryption key the table is wrapped under now.
        #[arg(long, value_name = "FILE")]
        kek_file: PathBuf,
        /// The new key-encryption key (`k4.local…`); created, mode 0600, if missing.
        #[arg(long, value_name = "FILE")]
        new_kek_file: PathBuf,
    },
}

fn parse_job(s: &str) -> std::result::Result<KeyJob, String> {
    KeyJob::parse(s).map_err(|e| e.to_string())
}

fn failed(e: &token_policy::Error) -> Failure {
    match e {
        token_policy::Error::Config(m) => Failure::usage(m.clone()),
        token_policy::Error::KeyEncryptionKey(_) => Failure::usage(e.to_string()),
        other => Failure::failed(other.to_string()),
    }
}

/// Reads the KEK at `path`, or creates it there when `create` and the file is missing.
fn kek(path: &Path, create: bool) -> Result<Kek> {
    if create && !path.exists() {
        let kek = Kek::generate().map_err(|e| failed(&e))?;
        write_file(
            path,
            kek.to_paserk().expose_secret().as_bytes(),
            true,
            false,
        )?;
        note(&format!(
            "created the key-encryption key {} at {} (mode 0600): keep it out of the database \
             and its backups",
            kek.id(),
            path.display()
        ));
        return Ok(kek);
    }
    Kek::from_file(path).map_err(|e| failed(&e))
}

/// The path of a `sqlite://PATH` URL.
fn sqlite_path(url: &str) -> Option<&Path> {
    url.strip_prefix("sqlite://")
        .map(|rest| Path::new(rest.split('?').next().unwrap_or(rest)))
}

async fn open(url: &str, create: bool) -> Result<Arc<dyn OpaqueStore>> {
    if url == "sqlite::memory:" {
        return Err(Failure::usage(
            "an in-memory database is gone when tokenctl exits: use sqlite://PATH",
        ));
    }
    if let Some(path) = sqlite_path(url) {
        if !path.exists() {
            if !create {
                return Err(Failure::usage(format!(
                    "{} does not exist (create the keys with `tokenctl keys init`)",
                    path.display()
                )));
            }
            note(&format!("creating the database {}", path.display()));
        }
    }
    token_policy::config::open_store(url)
        .await
        .map_err(|e| failed(&e))
}

/// The plan that matches the table: each job's kind as its newest row has it.
fn plan_for(namespace: &str, listed: &[KeyInfo]) -> Result<KeyPlan> {
    let newest = |job: KeyJob| {
        listed
            .iter()
            .filter(|k| k.job == job.as_str())
            .max_by_key(|k| k.generation)
            .map(|k| k.kind.clone())
    };
    let kind_named = |name: &str| {
        [
            KeyKind::PasetoV4Public,
            KeyKind::PasetoV3Public,
            KeyKind::JwtEs256,
            KeyKind::JwtEdDsa,
            KeyKind::PasetoV4Local,
            KeyKind::PasetoV3Local,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    };
    let policy = Policy::new("tokenctl", "tokenctl");
    let mut plan = KeyPlan::for_policy(&policy).namespace(namespace);
    if let Some(kind) = newest(KeyJob::Access).as_deref().and_then(kind_named) {
        plan = plan.access_kind(kind).map_err(|e| failed(&e))?;
    }
    if let Some(kind) = newest(KeyJob::Payment).as_deref().and_then(kind_named) {
        plan = plan.payment_kind(kind).map_err(|e| failed(&e))?;
    }
    if newest(KeyJob::Service).is_some() {
        plan = plan.service(policy.service_ttl());
    }
    Ok(plan)
}

fn print(listed: &[KeyInfo], json: bool) -> Result<()> {
    if json {
        let rows: Vec<Value> = listed
            .iter()
            .map(|k| {
                json!({
                    "kid": k.kid,
                    "job": k.job,
                    "kind": k.kind,
                    "generation": k.generation,
                    "state": k.state.as_str(),
                    "created_at": k.created_at,
                    "activates_at": k.activates_at,
                    "retires_at": k.retires_at,
                    "revoked_at": k.revoked_at,
                })
            })
            .collect();
        return out_json(&Value::Array(rows), false);
    }
    if listed.is_empty() {
        return out("no keys (create them with `tokenctl keys init`)");
    }
    let mut lines = vec![format!(
        "{:<15} {:<9} {:<4} {:<9} {:<21} {:<21} {}",
        "job", "kind", "gen", "state", "activates", "retires", "kid"
    )];
    for k in listed {
        lines.push(format!(
            "{:<15} {:<9} {:<4} {:<9} {:<21} {:<21} {}",
            k.job,
            k.kind,
            k.generation,
            k.state.as_str(),
            k.activates_at,
            k.retires_at.as_deref().unwrap_or("-"),
            k.kid
        ));
    }
    out(&lines.join("\n"))
}

/// `keys init`: the KEK file if missing, the database if missing, the first keys.
async fn init(
    url: &str,
    ns: &str,
    kek_file: &Path,
    access: AccessKind,
    service: bool,
    json: bool,
) -> Result<()> {
    let now = || SystemClock.now();
    let kek = kek(kek_file, true)?;
    let store = open(url, true).await?;
    let existing = keystore::list(store.as_ref(), ns, now())
        .await
        .map_err(|e| failed(&e))?;
    let mut plan = if existing.is_empty() {
        let policy = Policy::new("tokenctl", "tokenctl");
        let plan = KeyPlan::for_policy(&policy)
            .namespace(ns)
            .access_kind(access.kind())
            .map_err(|e| failed(&e))?;
        if service {
            plan.service(policy.service_ttl())
        } else {
            plan
        }
    } else {
        note("the key table already has keys: adding only what is due");
        plan_for(ns, &existing)?
    };
    if service && plan.kind(KeyJob::Service).is_none() {
        plan = plan.service(Policy::new("tokenctl", "tokenctl").service_ttl());
    }
    let keys = KeyStore::new(store.clone(), kek, plan).map_err(|e| failed(&e))?;
    keys.open().await.map_err(|e| failed(&e))?;
    let listed = keystore::list(store.as_ref(), ns, now())
        .await
        .map_err(|e| failed(&e))?;
    print(&listed, json)
}

/// Runs `keys`.
pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    let url = args
        .db
        .as_deref()
        .ok_or_else(|| Failure::usage("--db URL is required (sqlite://PATH or postgres://…)"))?;
    let ns = args.namespace.as_str();
    let rt = runtime()?;
    rt.block_on(async {
        let now = || SystemClock.now();
        match &args.op {
            Op::Init {
                kek_file,
                access,
                service,
            } => init(url, ns, kek_file, *access, *service, json).await,
            Op::List => {
                let store = open(url, false).await?;
                let listed = keystore::list(store.as_ref(), ns, now())
                    .await
                    .map_err(|e| failed(&e))?;
                print(&listed, json)
            }
            Op::Rotate { kek_file, job } => {
                let kek = kek(kek_file, false)?;
                let store = open(url, false).await?;
                let existing = keystore::list(store.as_ref(), ns, now())
                    .await
                    .map_err(|e| failed(&e))?;
                let plan = plan_for(ns, &existing)?;
                let keys = KeyStore::new(store, kek, plan).map_err(|e| failed(&e))?;
                // Opening first checks the KEK against the table.
                keys.snapshot().await.map_err(|e| failed(&e))?;
                let kid = keys.rotate_now(*job).await.map_err(|e| failed(&e))?;
                if json {
                    out_json(&json!({"job": job.as_str(), "active": kid}), false)
                } else {
                    out(&format!("{job}: {kid} signs from now on"))
                }
            }
            Op::Revoke { kid } => {
                let store = open(url, false).await?;
                if keystore::revoke(store.as_ref(), kid, now())
                    .await
                    .map_err(|e| failed(&e))?
                {
                    if json {
                        out_json(&json!({"revoked": kid}), false)
                    } else {
                        out(&format!(
                            "revoked {kid}: instances drop it at their next key refresh"
                        ))
                    }
                } else {
                    Err(Failure::failed(format!(
                        "no key {kid} to revoke (unknown, or already revoked)"
                    )))
                }
            }
            Op::Rewrap {
                kek_file,
                new_kek_file,
            } => {
                let old = kek(kek_file, false)?;
                let new = kek(new_kek_file, true)?;
                let store = open(url, false).await?;
                let existing = keystore::list(store.as_ref(), ns, now())
                    .await
                    .map_err(|e| failed(&e))?;
                let keys =
                    KeyStore::new(store, old, plan_for(ns, &existing)?).map_err(|e| failed(&e))?;
                let n = keys.rewrap(&new).await.map_err(|e| failed(&e))?;
                if json {
                    out_json(&json!({"rewrapped": n, "kek": new.id()}), false)
                } else {
                    out(&format!(
                        "{n} keys now wrapped under {}: restart the services with the new key, \
                         then destroy the old one",
                        new.id()
                    ))
                }
            }
        }
    })
}
