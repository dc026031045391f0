//! The database after a fault: every refresh family that is not revoked has exactly one
//! live token, and it is the family's current one; no token has two successors; on
//! SQLite, `PRAGMA integrity_check` answers `ok`.

use anyhow::Context as _;
use serde::Serialize;

/// What a check of the refresh tables found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct DbCheck {
    /// Families looked at (revoked ones included).
    pub(crate) families: u64,
    /// Live families with no live token, or whose live token is not the current one.
    pub(crate) lost: u64,
    /// Live families with more than one live token, plus tokens with two successors.
    pub(crate) double: u64,
    /// `PRAGMA integrity_check` did not answer `ok` (SQLite only).
    pub(crate) corrupt: bool,
}

/// Per live family: its live tokens, and whether the current one is among them.
const FAMILIES: &str = "SELECT \
    (SELECT COUNT(*) FROM opaque_refresh_tokens t \
        WHERE t.family_id = f.id AND t.used_at IS NULL) AS live, \
    (SELECT COUNT(*) FROM opaque_refresh_tokens t \
        WHERE t.id = f.current_token_id AND t.used_at IS NULL) AS current_live \
    FROM opaque_refresh_families f WHERE f.revoked_at IS NULL";
const ALL_FAMILIES: &str = "SELECT COUNT(*) FROM opaque_refresh_families";
/// Tokens rotated into more than one successor.
const FORKS: &str = "SELECT COUNT(*) FROM (SELECT parent_id FROM opaque_refresh_tokens \
    WHERE parent_id IS NOT NULL GROUP BY parent_id HAVING COUNT(*) > 1) AS forks";

impl DbCheck {
    fn count(&mut self, live: i64, current_live: i64) {
        if live > 1 {
            self.double += 1;
        } else if live == 0 || current_live != 1 {
            self.lost += 1;
        }
    }
}

/// Checks the SQLite database at `path` (opening it recovers its write-ahead log, as the
/// service's next start would).
pub(crate) fn sqlite(path: &std::path::Path) -> anyhow::Result<DbCheck> {
    let conn = rusqlite::Connection::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut check = DbCheck {
        corrupt: integrity != ["ok"],
        ..DbCheck::default()
    };
    if check.corrupt {
        eprintln!("integrity_check: {integrity:?}");
    }
    let has_tables: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'opaque_refresh_families'",
        [],
        |r| r.get(0),
    )?;
    if has_tables == 0 {
        return Ok(check);
    }
    let all: i64 = conn.query_row(ALL_FAMILIES, [], |r| r.get(0))?;
    check.families = u64::try_from(all).unwrap_or(0);
    let rows: Vec<(i64, i64)> = conn
        .prepare(FAMILIES)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (live, current) in rows {
        check.count(live, current);
    }
    let forks: i64 = conn.query_row(FORKS, [], |r| r.get(0))?;
    check.double += u64::try_from(forks).unwrap_or(0);
    Ok(check)
}

/// Checks the PostgreSQL database at `url` (the tables in its search path).
pub(crate) async fn postgres(url: &str) -> anyhow::Result<DbCheck> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("cannot connect to PostgreSQL")?;
    let mut check = DbCheck::default();
    let (all,): (i64,) = sqlx::query_as(ALL_FAMILIES).fetch_one(&mut conn).await?;
    check.families = u64::try_from(all).unwrap_or(0);
    let rows: Vec<(i64, i64)> = sqlx::query_as(FAMILIES).fetch_all(&mut conn).await?;
    for (live, current) in rows {
        check.count(live, current);
    }
    let (forks,): (i64,) = sqlx::query_as(FORKS).fetch_one(&mut conn).await?;
    check.double += u64::try_from(forks).unwrap_or(0);
    conn.close().await?;
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::env::temp_dir().join(format!("token-faults-{name}-{}-{n}.db", std::process::id()))
    }

    const SCHEMA: &str = "
        CREATE TABLE opaque_refresh_families (id TEXT PRIMARY KEY, current_token_id TEXT,
            revoked_at INTEGER);
        CREATE TABLE opaque_refresh_tokens (id TEXT PRIMARY KEY, family_id TEXT,
            parent_id TEXT, used_at INTEGER);";

    #[test]
    fn finds_lost_and_double_rotations_and_passes_a_clean_database() {
        let path = temp("check");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        // f1: clean (t1 used, t2 live and current). f2: revoked, no live token: fine.
        conn.execute_batch(
            "INSERT INTO opaque_refresh_families VALUES ('f1','t2',NULL),('f2','t3',5);
             INSERT INTO opaque_refresh_tokens VALUES ('t1','f1',NULL,1),('t2','f1','t1',NULL),
                 ('t3','f2',NULL,4);",
        )
        .unwrap();
        assert_eq!(
            sqlite(&path).unwrap(),
            DbCheck {
                families: 2,
                ..DbCheck::default()
            }
        );
        // f3: its only token used (lost); f4: two live tokens and a fork (double).
        conn.execute_batch(
            "INSERT INTO opaque_refresh_families VALUES ('f3','t4',NULL),('f4','t6',NULL);
             INSERT INTO opaque_refresh_tokens VALUES ('t4','f3',NULL,1),('t5','f4',NULL,1),
                 ('t6','f4','t5',NULL),('t7','f4','t5',NULL);",
        )
        .unwrap();
        let found = sqlite(&path).unwrap();
        assert_eq!((found.families, found.lost, found.double), (4, 1, 2));
        assert!(!found.corrupt);
        drop(conn);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_damaged_file_fails_the_integrity_check_or_does_not_open() {
        let path = temp("corrupt");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        for i in 0..200 {
            conn.execute(
                "INSERT INTO opaque_refresh_tokens VALUES (?1, 'f', NULL, NULL)",
                [format!("token-{i:0>200}")],
            )
            .unwrap();
        }
        drop(conn);
        // Overwrite the middle pages with garbage.
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        for b in &mut bytes[len / 3..len / 3 * 2] {
            *b = 0x5a;
        }
        std::fs::write(&path, bytes).unwrap();
        let found = sqlite(&path);
        assert!(found.map_or(true, |c| c.corrupt));
        let _ = std::fs::remove_file(&path);
    }
}
