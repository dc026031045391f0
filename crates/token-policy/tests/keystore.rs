//! The key store: keys wrapped in the database, shared by instances, surviving
//! restarts, rotated on a schedule, revoked at once, and refused when the table or the
//! key-encryption key is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "sqlite")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
#[cfg(feature = "postgres")]
use token_core::test_support::{DATABASE_URL, service_url};
use token_core::{Clock, ManualClock, Timestamp};
use token_opaque::format::Environment;
use token_opaque::{NewApiKey, OpaqueStore, OpaqueTokens};
use token_paseto::{PublicKeySet, dangerous_decode_parts};
use token_policy::config::open_store;
use token_policy::keystore::{self, Kek, KeyJob, KeyPlan, KeyState, KeyStore, Schedule};
use token_policy::{Error, Policy, ResourceVerifier, TokenService};

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Role {
    role: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Payment {
    order: String,
}

fn unique(name: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{name}-{:016x}", u64::from_le_bytes(b))
}

fn policy() -> Policy {
    Policy::new("https://auth.example", "api")
}

/// A SQLite file that is removed when the test ends.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("{}.db", unique("tessera-keys"))))
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

fn role() -> Role {
    Role {
        role: "admin".into(),
    }
}

/// One instance: a store on `url`, the key store under `kek`, a service built from
/// its snapshot.
struct Instance {
    store: Arc<dyn OpaqueStore>,
    keys: Arc<KeyStore>,
    svc: Arc<TokenService>,
}

async fn instance(url: &str, kek: &str, plan: KeyPlan, clock: Arc<ManualClock>) -> Instance {
    let store = open_store(url).await.unwrap();
    let keys = KeyStore::new(store.clone(), Kek::from_paserk(kek).unwrap(), plan)
        .unwrap()
        .clock(clock.clone());
    let snapshot = keys.open().await.unwrap();
    let opaque = OpaqueTokens::builder(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let svc = TokenService::builder_with_keys(policy(), snapshot)
        .unwrap()
        .opaque(opaque)
        .clock(clock)
        .build();
    Instance {
        store,
        keys: Arc::new(keys),
        svc: Arc::new(svc),
    }
}

fn kek() -> String {
    Kek::generate()
        .unwrap()
        .to_paserk()
        .expose_secret()
        .to_owned()
}

fn plan(namespace: &str) -> KeyPlan {
    KeyPlan::for_policy(&policy()).namespace(namespace)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at_system_now())
}

fn footer_kid(token: &str) -> String {
    dangerous_decode_parts(token)
        .unwrap()
        .footer_kid()
        .unwrap()
        .unwrap()
        .to_string()
}

/// Two instances on one database and one key-encryption key: a token from either
/// verifies at both (access, payment, API key), the table holds one key per job, and
/// an instance started again on the same database keeps every token valid.
async fn fleet_shares_keys_and_survives_restarts(url: &str) {
    let namespace = unique("fleet");
    let kek = kek();
    let clock = clock();
    let a = instance(url, &kek, plan(&namespace), clock.clone()).await;
    let b = instance(url, &kek, plan(&namespace), clock.clone()).await;

    let listed = keystore::list(a.store.as_ref(), &namespace, clock.now())
        .await
        .unwrap();
    let jobs: Vec<&str> = listed.iter().map(|k| k.job.as_str()).collect();
    assert_eq!(jobs, ["access", "api-key-pepper", "payment"], "{listed:?}");
    assert!(listed.iter().all(|k| k.state == KeyState::Active));

    let from_a = a.svc.login("usr_1", &role()).await.unwrap();
    let from_b = b.svc.login("usr_2", &role()).await.unwrap();
    for svc in [&a.svc, &b.svc] {
        for t in [&from_a, &from_b] {
            let v = svc
                .verify_access::<Role>(t.access.expose_secret())
                .await
                .unwrap();
            assert_eq!(v.claims().custom.session, role());
        }
    }
    let pay = a
        .svc
        .issue_payment(
            Payment {
                order: "o-1".into(),
            },
            "usr_1",
        )
        .unwrap();
    let paid: Payment = b
        .svc
        .consume_payment(pay.expose_secret(), "usr_1")
        .await
        .unwrap();
    assert_eq!(paid.order, "o-1");
    let api_key = a
        .svc
        .issue_api_key(NewApiKey::new("usr_1", "ci", Environment::Live).scopes(["read"]))
        .await
        .unwrap();
    let info = b
        .svc
        .verify_api_key(api_key.key.expose_secret())
        .await
        .unwrap();
    assert_eq!(info.owner_id, "usr_1");

    // A restart: the instance is dropped and started again on the same database.
    drop(a);
    let a2 = instance(url, &kek, plan(&namespace), clock.clone()).await;
    a2.svc
        .verify_access::<Role>(from_a.access.expose_secret())
        .await
        .unwrap();
    a2.svc
        .verify_api_key(api_key.key.expose_secret())
        .await
        .unwrap();
    let refreshed = a2
        .svc
        .refresh(from_a.refresh.expose_secret(), |_| role())
        .await
        .unwrap();
    b.svc
        .verify_access::<Role>(refreshed.access.expose_secret())
        .await
        .unwrap();
    assert_eq!(
        keystore::list(a2.store.as_ref(), &namespace, clock.now())
            .await
            .unwrap()
            .len(),
        3,
        "a restart adds no key"
    );
}

#[tokio::test]
async fn a_fleet_on_one_sqlite_file_shares_keys_and_survives_restarts() {
    let db = TempDb::new();
    fleet_shares_keys_and_survives_restarts(&db.url()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_fleet_on_postgres_shares_keys_and_survives_restarts() {
    let Some(url) = service_url(DATABASE_URL, "key store on PostgreSQL") else {
        return;
    };
    fleet_shares_keys_and_survives_restarts(&url).await;
}

/// The access job's published key set, as a verifier fetching it would hold it.
fn published(svc: &TokenService, clock: Arc<ManualClock>) -> ResourceVerifier {
    let doc = svc.key_set_documents();
    let set = PublicKeySet::from_json(doc.paseto.as_deref().unwrap()).unwrap();
    ResourceVerifier::new("https://auth.example", "api", set.verifier_v4().unwrap()).clock(clock)
}

fn published_kids(svc: &TokenService) -> Vec<String> {
    let doc = svc.key_set_documents();
    PublicKeySet::from_json(doc.paseto.as_deref().unwrap())
        .unwrap()
        .v4()
        .iter()
        .map(|k| k.id().to_string())
        .collect()
}

#[tokio::test]
async fn the_schedule_publishes_ahead_switches_and_retires() {
    let db = TempDb::new();
    let clock = Arc::new(ManualClock::new(
        Timestamp::from_unix_seconds(1_800_000_000).unwrap(),
    ));
    let start = clock.now();
    // Rotate daily, publish an hour ahead, retire two minutes after the switch
    // (shorter than the access lifetime, to see a live token refused by retirement).
    let plan = plan("schedule")
        .schedule_for(
            KeyJob::Access,
            Schedule::new(Some(DAY), HOUR, Some(Duration::from_secs(120))),
        )
        .unwrap();
    let i = instance(&db.url(), &kek(), plan, clock.clone()).await;
    let first = i.svc.access_keys().key_ids();
    assert_eq!(first.len(), 1);

    // Just before the next key is due: nothing new.
    clock.set(
        start
            .checked_add(Duration::from_secs(86_400 - 3600 - 1))
            .unwrap(),
    );
    i.keys.refresh_into(&i.svc).await.unwrap();
    assert_eq!(published_kids(&i.svc), first);

    // Due: the next key is published, an hour before it signs.
    clock.set(
        start
            .checked_add(Duration::from_secs(86_400 - 3600))
            .unwrap(),
    );
    i.keys.refresh_into(&i.svc).await.unwrap();
    let kids = published_kids(&i.svc);
    assert_eq!(kids.len(), 2, "the next key is published ahead");
    let next = kids.iter().find(|k| **k != first[0]).unwrap().clone();
    // A verifier that fetched the set now already holds the key that will sign.
    let verifier = published(&i.svc, clock.clone());
    clock.set(start.checked_add(Duration::from_secs(86_400 - 1)).unwrap());
    i.keys.refresh_into(&i.svc).await.unwrap();
    let old_token = i.svc.login("usr_1", &role()).await.unwrap().access;
    assert_eq!(
        footer_kid(old_token.expose_secret()),
        first[0],
        "the old key still signs"
    );

    // The switch.
    clock.set(start.checked_add(DAY).unwrap());
    i.keys.refresh_into(&i.svc).await.unwrap();
    let new_token = i.svc.login("usr_1", &role()).await.unwrap().access;
    assert_eq!(
        footer_kid(new_token.expose_secret()),
        next,
        "the new key signs at its time"
    );
    verifier
        .verify_access::<Role>(new_token.expose_secret())
        .await
        .unwrap();
    // The old key's tokens verify while it is retiring…
    clock.set(start.checked_add(DAY + Duration::from_secs(119)).unwrap());
    i.keys.refresh_into(&i.svc).await.unwrap();
    i.svc
        .verify_access::<Role>(old_token.expose_secret())
        .await
        .unwrap();
    let states: Vec<KeyState> = i
        .keys
        .snapshot()
        .await
        .unwrap()
        .keys()
        .iter()
        .map(|k| k.state)
        .collect();
    assert_eq!(
        states.iter().filter(|s| **s == KeyState::Retiring).count(),
        1
    );
    // …and are refused once it retired (the token itself has not expired).
    clock.set(start.checked_add(DAY + Duration::from_secs(120)).unwrap());
    i.keys.refresh_into(&i.svc).await.unwrap();
    let err = i
        .svc
        .verify_access::<Role>(old_token.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.reason().as_str(), "unknown key", "{err}");
    assert_eq!(published_kids(&i.svc), [next]);
}

#[tokio::test]
async fn instances_rotating_at_the_same_instant_add_one_key() {
    let db = TempDb::new();
    let kek = kek();
    let clock = clock();
    let a = instance(
        &db.url(),
        &kek,
        plan("race").rotate_every(DAY),
        clock.clone(),
    )
    .await;
    let b = instance(
        &db.url(),
        &kek,
        plan("race").rotate_every(DAY),
        clock.clone(),
    )
    .await;
    for round in 1..=5u32 {
        clock.advance(DAY);
        let (x, y) = tokio::join!(a.keys.add_due(), b.keys.add_due());
        let added = x.unwrap() + y.unwrap();
        // Access and payment rotate; the pepper does not.
        assert_eq!(added, 2, "round {round}");
    }
    let listed = keystore::list(a.store.as_ref(), "race", clock.now())
        .await
        .unwrap();
    let access: Vec<i64> = listed
        .iter()
        .filter(|k| k.job == "access")
        .map(|k| k.generation)
        .collect();
    assert_eq!(access, [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn a_revoked_key_is_gone_at_the_next_refresh_and_replaced() {
    let db = TempDb::new();
    let kek = kek();
    let clock = clock();
    let a = instance(&db.url(), &kek, plan("revoke"), clock.clone()).await;
    let b = instance(&db.url(), &kek, plan("revoke"), clock.clone()).await;
    let token = a.svc.login("usr_1", &role()).await.unwrap().access;
    let compromised = footer_kid(token.expose_secret());
    assert!(
        keystore::revoke(a.store.as_ref(), &compromised, clock.now())
            .await
            .unwrap()
    );
    assert!(
        !keystore::revoke(a.store.as_ref(), &compromised, clock.now())
            .await
            .unwrap()
    );

    // Until it re-reads the table an instance still accepts it; after, never.
    b.svc
        .verify_access::<Role>(token.expose_secret())
        .await
        .unwrap();
    for i in [&a, &b] {
        i.keys.refresh_into(&i.svc).await.unwrap();
        let err = i
            .svc
            .verify_access::<Role>(token.expose_secret())
            .await
            .unwrap_err();
        assert_eq!(err.reason().as_str(), "unknown key");
        assert!(!published_kids(&i.svc).contains(&compromised));
    }
    // A replacement signs at once, on both.
    let fresh = b.svc.login("usr_1", &role()).await.unwrap().access;
    assert_ne!(footer_kid(fresh.expose_secret()), compromised);
    a.svc
        .verify_access::<Role>(fresh.expose_secret())
        .await
        .unwrap();
    let listed = keystore::list(a.store.as_ref(), "revoke", clock.now())
        .await
        .unwrap();
    let revoked: Vec<&str> = listed
        .iter()
        .filter(|k| k.state == KeyState::Revoked)
        .map(|k| k.kid.as_str())
        .collect();
    assert_eq!(revoked, [compromised.as_str()], "kept as a record");
}

#[tokio::test]
async fn rotate_now_activates_the_pending_key() {
    let db = TempDb::new();
    let clock = clock();
    let i = instance(&db.url(), &kek(), plan("now"), clock.clone()).await;
    clock.advance(Duration::from_secs(30 * 86_400 - 3600));
    assert_eq!(i.keys.add_due().await.unwrap(), 2);
    let listed = i.keys.snapshot().await.unwrap();
    let pending = listed
        .keys()
        .iter()
        .find(|k| k.job == "access" && k.state == KeyState::Pending)
        .unwrap()
        .kid
        .clone();
    assert_eq!(i.keys.rotate_now(KeyJob::Access).await.unwrap(), pending);
    i.keys.refresh_into(&i.svc).await.unwrap();
    let t = i.svc.login("usr_1", &role()).await.unwrap().access;
    assert_eq!(footer_kid(t.expose_secret()), pending);
    // With nothing pending, a rotation adds a key that signs at once.
    let next = i.keys.rotate_now(KeyJob::Access).await.unwrap();
    assert_ne!(next, pending);
    i.keys.refresh_into(&i.svc).await.unwrap();
    let t = i.svc.login("usr_1", &role()).await.unwrap().access;
    assert_eq!(footer_kid(t.expose_secret()), next);
}

fn sql(db: &TempDb, statement: &str) {
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    conn.execute_batch(statement).unwrap();
}

async fn open_err(url: &str, kek: &str, namespace: &str) -> Error {
    let store = open_store(url).await.unwrap();
    KeyStore::new(store, Kek::from_paserk(kek).unwrap(), plan(namespace))
        .unwrap()
        .open()
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_wrong_key_encryption_key_is_a_clear_error() {
    let db = TempDb::new();
    let kek = kek();
    let _ = instance(&db.url(), &kek, plan("kek"), clock()).await;
    let other = Kek::generate().unwrap();
    let err = open_err(&db.url(), other.to_paserk().expose_secret(), "kek").await;
    match &err {
        Error::WrongKeyEncryptionKey { table, given } => {
            assert_eq!(given, other.id());
            assert_eq!(table, Kek::from_paserk(&kek).unwrap().id());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !err.to_string().contains(&kek[9..]),
        "the key is never quoted"
    );
    // Malformed keys never reach the table.
    for bad in ["", "k4.local.short", "k3.local.AAAA", "hunter2"] {
        assert!(matches!(
            Kek::from_paserk(bad),
            Err(Error::KeyEncryptionKey(_))
        ));
    }
}

#[tokio::test]
async fn a_truncated_wrapped_key_is_a_clear_error() {
    let db = TempDb::new();
    let kek = kek();
    let _ = instance(&db.url(), &kek, plan("trunc"), clock()).await;
    sql(
        &db,
        "UPDATE tessera_keys SET wrapped_dek = substr(wrapped_dek, 1, 40) WHERE job = 'payment'",
    );
    let err = open_err(&db.url(), &kek, "trunc").await;
    assert!(matches!(err, Error::KeyTable { .. }), "{err:?}");
    assert!(
        err.to_string().contains("data key does not unwrap"),
        "{err}"
    );
    // The sealed key cut short: the same.
    let db = TempDb::new();
    let _ = instance(&db.url(), &kek, plan("trunc"), clock()).await;
    sql(
        &db,
        "UPDATE tessera_keys SET sealed = substr(sealed, 1, length(sealed) - 3) WHERE job = 'access'",
    );
    let err = open_err(&db.url(), &kek, "trunc").await;
    assert!(
        err.to_string().contains("sealed key does not open"),
        "{err}"
    );
}

#[tokio::test]
async fn keys_swapped_between_rows_are_refused() {
    let kek = kek();
    // The sealed key alone, and the whole wrapped pair, moved between two rows.
    for columns in [&["sealed"][..], &["sealed", "wrapped_dek"]] {
        let db = TempDb::new();
        let _ = instance(&db.url(), &kek, plan("swap"), clock()).await;
        let set = columns
            .iter()
            .map(|c| {
                format!(
                    "{c} = CASE job WHEN 'access' THEN (SELECT {c} FROM tessera_keys WHERE job = 'payment') \
                     ELSE (SELECT {c} FROM tessera_keys WHERE job = 'access') END"
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        sql(
            &db,
            &format!("UPDATE tessera_keys SET {set} WHERE job IN ('access', 'payment')"),
        );
        let err = open_err(&db.url(), &kek, "swap").await;
        assert!(
            matches!(err, Error::KeyTable { .. }),
            "{columns:?}: {err:?}"
        );
    }
    // Two rows' whole identities exchanged (ids swapped): the key's own id says no.
    let db = TempDb::new();
    let _ = instance(&db.url(), &kek, plan("swap"), clock()).await;
    let i = instance(&db.url(), &kek, plan("swap2"), clock()).await;
    let _ = i;
    sql(
        &db,
        "UPDATE tessera_keys SET kid = 'x' || kid WHERE namespace = 'swap' AND job = 'access'",
    );
    let err = open_err(&db.url(), &kek, "swap").await;
    assert!(matches!(err, Error::KeyTable { .. }), "{err:?}");
}

#[tokio::test]
async fn the_key_encryption_key_can_be_rotated() {
    let db = TempDb::new();
    let old = kek();
    let clock = clock();
    let i = instance(&db.url(), &old, plan("rewrap"), clock.clone()).await;
    let token = i.svc.login("usr_1", &role()).await.unwrap().access;
    let new = Kek::generate().unwrap();
    assert_eq!(i.keys.rewrap(&new).await.unwrap(), 3);
    assert!(matches!(
        open_err(&db.url(), &old, "rewrap").await,
        Error::WrongKeyEncryptionKey { .. }
    ));
    let again = instance(
        &db.url(),
        new.to_paserk().expose_secret(),
        plan("rewrap"),
        clock,
    )
    .await;
    again
        .svc
        .verify_access::<Role>(token.expose_secret())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_plan_keeps_keys_published_long_enough() {
    let max_age = Duration::from_secs(300);
    plan("ok").check(max_age).unwrap();
    let short = plan("short").publish_ahead(Duration::from_secs(500));
    assert!(
        short
            .check(max_age)
            .unwrap_err()
            .to_string()
            .contains("publish-ahead")
    );
    let fast = plan("fast")
        .rotate_every(Duration::from_secs(600))
        .publish_ahead(Duration::from_secs(600));
    assert!(
        fast.check(max_age)
            .unwrap_err()
            .to_string()
            .contains("rotate-every")
    );
    let slow = plan("slow").refresh_every(HOUR * 2);
    assert!(
        slow.check(max_age)
            .unwrap_err()
            .to_string()
            .contains("refresh-every")
    );
}
