//! SQLite on a full disk: the library on a database in a directory of a small file
//! system (a size-limited tmpfs that xtask mounts). Logins fill it; while it is full
//! every write fails with a typed error (`token_opaque::Error::Database`, kind `Io`)
//! and nothing panics; the database still opens and passes `PRAGMA integrity_check`
//! with every family intact; once space is freed (a filler file removed), every
//! session rotates again.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use serde_json::json;
use token_opaque::{DbErrorKind, OpaqueTokens, SqliteStore};
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::{Policy, TokenService};

use crate::check;
use crate::row::Row;

/// Logins tried before the disk must be full.
const MAX_LOGINS: usize = 200_000;
/// Operations tried while it is full.
const WHILE_FULL: usize = 200;
/// The space the filler file holds back, freed to heal.
const FILLER_BYTES: usize = 256 * 1024;

async fn service(db: &Path) -> anyhow::Result<TokenService> {
    let store = SqliteStore::open(db)
        .await
        .context("the database does not open")?;
    let opaque = OpaqueTokens::builder(store).build()?;
    Ok(TokenService::builder(
        Policy::new("faults", "api"),
        PublicIssuer::new(SecretKey::<V4>::generate()?),
    )
    .opaque(opaque)
    .build())
}

/// A store error that says the disk is full (or the file too large), typed.
fn is_full(e: &token_policy::Error) -> bool {
    matches!(e, token_policy::Error::Opaque(token_opaque::Error::Database(db)) if db.kind() == DbErrorKind::Io)
}

/// Fills the file system under `dir`, checks the behaviour while full, heals it.
pub(crate) async fn run(dir: &Path) -> anyhow::Result<Row> {
    let mut row = Row::new("disk full (SQLite on a 2 MiB tmpfs)", "library, SQLite");
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![0u8; FILLER_BYTES]).context("cannot write the filler file")?;
    let db = dir.join("auth.db");
    let claims = json!({ "role": "user" });
    let svc = service(&db).await?;

    // Fill: logins until the first write fails.
    let mut sessions: Vec<String> = Vec::new();
    let mut full = false;
    for i in 0..MAX_LOGINS {
        row.requests += 1;
        match svc.login(&format!("user-{}", i % 50), &claims).await {
            Ok(t) => {
                if sessions.len() < 100 {
                    sessions.push(t.refresh.expose_secret().to_owned());
                }
            }
            Err(e) if is_full(&e) => {
                row.failed_closed += 1;
                full = true;
                break;
            }
            Err(e) => {
                row.unexpected += 1;
                eprintln!("disk full: a login failed with an untyped error: {e}");
                break;
            }
        }
    }
    anyhow::ensure!(full, "the file system under {} never filled", dir.display());

    // Full: rotations and logins fail, typed; a rotation that succeeds is kept.
    for i in 0..WHILE_FULL {
        row.requests += 1;
        let n = i % sessions.len().max(1);
        let result = match sessions.get(n) {
            Some(refresh) if i % 2 == 0 => svc
                .refresh(refresh, |_| claims.clone())
                .await
                .map(|t| Some(t.refresh.expose_secret().to_owned())),
            _ => svc.login("user-full", &claims).await.map(|_| None),
        };
        match result {
            Ok(Some(next)) => {
                if let Some(s) = sessions.get_mut(n) {
                    *s = next;
                }
            }
            Ok(None) => {}
            Err(e) if is_full(&e) => row.failed_closed += 1,
            Err(e) => {
                row.unexpected += 1;
                eprintln!("disk full: untyped or wrong error: {e}");
            }
        }
    }
    drop(svc);

    // Still full: the database opens and is intact.
    let found = check::sqlite(&db)?;
    row.lost_rotations += found.lost;
    row.double_rotations += found.double;
    if found.corrupt {
        row.unexpected += 1;
    }

    // Healed: every session rotates again.
    std::fs::remove_file(&filler)?;
    let healed = Instant::now();
    let svc = service(&db).await?;
    for refresh in &sessions {
        row.requests += 1;
        if let Err(e) = svc.refresh(refresh, |_| claims.clone()).await {
            if is_full(&e) {
                row.failed_closed += 1;
            } else {
                row.lost_rotations += 1;
                eprintln!("disk full, healed: a session no longer rotates: {e}");
            }
        }
    }
    row.recovery_ms = Some(u64::try_from(healed.elapsed().as_millis()).unwrap_or(u64::MAX));
    drop(svc);
    let found = check::sqlite(&db)?;
    row.lost_rotations += found.lost;
    row.double_rotations += found.double;
    if found.corrupt {
        row.unexpected += 1;
    }
    Ok(row)
}
