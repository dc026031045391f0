//! Embedded schema migrations, run by the library.
//!
//! The library keeps its own bookkeeping table, [`MIGRATIONS_TABLE`], instead of
//! sqlx's `_sqlx_migrations`: an application that runs its own sqlx migrations on the
//! same database would otherwise see this library's versions as unknown (and versions
//! could collide). Each migration runs in a transaction with its bookkeeping row,
//! serialised against concurrent starts (a transaction-scoped advisory lock on
//! PostgreSQL, `BEGIN IMMEDIATE` on SQLite); an applied migration whose text changed
//! is an error.

/// The table that records applied migrations.
pub const MIGRATIONS_TABLE: &str = "tessera_opaque_migrations";

/// The schema version this library writes and expects.
pub const SCHEMA_VERSION: i64 = 1;

/// One migration.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

impl Migration {
    pub(crate) fn checksum(&self) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

pub(crate) const SQLITE: &[Migration] = &[Migration {
    version: 1,
    description: "initial schema",
    sql: include_str!("../../migrations/sqlite/0001_initial.sql"),
}];

pub(crate) const POSTGRES: &[Migration] = &[Migration {
    version: 1,
    description: "initial schema",
    sql: include_str!("../../migrations/postgres/0001_initial.sql"),
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_every_version_in_order() {
        for set in [SQLITE, POSTGRES] {
            let versions: Vec<i64> = set.iter().map(|m| m.version).collect();
            assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
            assert!(set.iter().all(|m| !m.description.is_empty()));
        }
        assert_ne!(SQLITE[0].checksum(), POSTGRES[0].checksum());
    }
}
