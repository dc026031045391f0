//! The embedded migrations, applied in one write transaction.

use crate::error::db;
use rusqlite::{Connection, params};

use crate::error::{Error, Result};
use crate::store::migrate::{MIGRATIONS_TABLE, Migration, SQLITE};

const MIGRATIONS_DDL: &str = "CREATE TABLE IF NOT EXISTS tessera_opaque_migrations (\
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, checksum BLOB NOT NULL, \
    applied_at INTEGER NOT NULL)";

/// Creates the bookkeeping table if needed, refuses a newer schema and applies the
/// migrations this database lacks (inside the caller's write transaction).
pub(super) fn run(conn: &Connection) -> Result<()> {
    conn.execute_batch(MIGRATIONS_DDL).map_err(db)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT version, checksum FROM {MIGRATIONS_TABLE} ORDER BY version"
        ))
        .map_err(db)?;
    let applied = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    check_not_newer(&applied).map_err(db)?;
    for m in SQLITE {
        apply_migration(conn, m, &applied).map_err(db)?;
    }
    Ok(())
}

/// Refuses a database migrated by a newer version of this library: its schema may
/// hold data this version would mishandle.
fn check_not_newer(applied: &[(i64, Vec<u8>)]) -> Result<()> {
    match applied.iter().map(|(v, _)| *v).max() {
        Some(newest) if newest > crate::store::SCHEMA_VERSION => Err(Error::Migration(format!(
            "the database is at schema version {newest}, newer than this library's {}",
            crate::store::SCHEMA_VERSION
        ))),
        _ => Ok(()),
    }
}

fn apply_migration(conn: &Connection, m: &Migration, applied: &[(i64, Vec<u8>)]) -> Result<()> {
    match applied.iter().find(|(v, _)| *v == m.version) {
        Some((_, checksum)) if *checksum == m.checksum() => Ok(()),
        Some(_) => Err(Error::Migration(format!(
            "applied migration {} ({}) differs from the one this library embeds",
            m.version, m.description
        ))),
        None => {
            conn.execute_batch(m.sql).map_err(db)?;
            conn.execute(
                &format!(
                    "INSERT INTO {MIGRATIONS_TABLE} (version, description, checksum, applied_at) \
                     VALUES (?1, ?2, ?3, ?4)"
                ),
                params![
                    m.version,
                    m.description,
                    m.checksum(),
                    token_core::Clock::now(&token_core::SystemClock).unix_seconds()
                ],
            )
            .map_err(db)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bookkeeping_table_is_the_documented_one() {
        assert!(MIGRATIONS_DDL.contains(&format!("EXISTS {MIGRATIONS_TABLE} (")));
        assert!(check_not_newer(&[(crate::store::SCHEMA_VERSION, Vec::new())]).is_ok());
        assert!(matches!(
            check_not_newer(&[(crate::store::SCHEMA_VERSION + 1, Vec::new())]),
            Err(Error::Migration(_))
        ));
    }
}
