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
pub const SCHEMA_VERSION: i64 = 3;

/// One migration.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Migration {
    pub(crate) fn checksum(&self) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "initial schema",
        sql: include_str!("../../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        description: "key table",
        sql: include_str!("../../migrations/sqlite/0002_keys.sql"),
    },
    Migration {
        version: 3,
        description: "refresh family binding",
        sql: include_str!("../../migrations/sqlite/0003_refresh_binding.sql"),
    },
];

#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "initial schema",
        sql: include_str!("../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        description: "key table",
        sql: include_str!("../../migrations/postgres/0002_keys.sql"),
    },
    Migration {
        version: 3,
        description: "refresh family binding",
        sql: include_str!("../../migrations/postgres/0003_refresh_binding.sql"),
    },
];

#[cfg(all(test, any(feature = "sqlite", feature = "postgres")))]
mod tests {
    use super::*;

    #[test]
    fn every_backend_has_every_version_in_order() {
        let mut sets: Vec<&[Migration]> = Vec::new();
        #[cfg(feature = "sqlite")]
        sets.push(SQLITE);
        #[cfg(feature = "postgres")]
        sets.push(POSTGRES);
        for set in sets {
            let versions: Vec<i64> = set.iter().map(|m| m.version).collect();
            assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
            assert!(set.iter().all(|m| !m.description.is_empty()));
        }
    }

    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn the_backends_have_their_own_dialects() {
        assert_ne!(SQLITE[0].checksum(), POSTGRES[0].checksum());
    }
}
