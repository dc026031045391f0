//! The service the telemetry tests drive: a key table on a SQLite file, the opaque
//! jobs on it, a clock moved by hand.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::ExposeSecret as _;
use serde_json::json;
use token_core::ManualClock;
use token_opaque::{OpaqueStore, OpaqueTokens};
use token_policy::config::open_store;
use token_policy::keystore::{Kek, KeyPlan, KeyStore};
use token_policy::{Policy, TokenService};

pub fn unique(name: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{name}-{:016x}", u64::from_le_bytes(b))
}

pub struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("{}.db", unique("tessera-telemetry"))))
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

pub struct Instance {
    pub store: Arc<dyn OpaqueStore>,
    pub keys: Arc<KeyStore>,
    pub svc: Arc<TokenService>,
    pub clock: Arc<ManualClock>,
    pub kek: String,
    _db: TempDb,
}

pub async fn instance() -> Instance {
    let db = TempDb::new();
    let clock = Arc::new(ManualClock::at_system_now());
    let kek = Kek::generate()
        .unwrap()
        .to_paserk()
        .expose_secret()
        .to_owned();
    let store = open_store(&db.url()).await.unwrap();
    let policy = Policy::new("https://auth.example", "api");
    let keys = KeyStore::new(
        store.clone(),
        Kek::from_paserk(&kek).unwrap(),
        KeyPlan::for_policy(&policy),
    )
    .unwrap()
    .clock(clock.clone());
    let snapshot = keys.open().await.unwrap();
    let opaque = OpaqueTokens::builder(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let svc = TokenService::builder_with_keys(policy, snapshot)
        .unwrap()
        .opaque(opaque)
        .clock(clock.clone())
        .build();
    Instance {
        store,
        keys: Arc::new(keys),
        svc: Arc::new(svc),
        clock,
        kek,
        _db: db,
    }
}

/// `token` with one character of its signed part changed: a bad signature.
pub fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let body = &mut parts[2];
    let middle = body.len() / 2;
    let c = if &body[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    body.replace_range(middle..=middle, c);
    parts.join(".")
}

pub fn role() -> serde_json::Value {
    json!({"role": "admin"})
}
