//! [`KeyStore`]: every key a deployment uses — access signing keys, service keys,
//! payment keys, the API-key pepper — kept **wrapped** in the database the opaque jobs
//! already use, rotated on a schedule, and shared by every instance on that database.
//!
//! ## The table
//! One row per key (`tessera_keys`, created by the store's migrations). The secret
//! material is never stored in the clear: each row has its own data key, stored as a
//! PASERK `k4.local-wrap.pie` under the key-encryption key ([`Kek`], a `k4.local` key
//! read from a file or the environment), and the key itself sealed under that data key
//! as a `v4.local` payload whose implicit assertion is the row's identity (id, job,
//! kind, generation). A wrong key-encryption key is [`Error::WrongKeyEncryptionKey`]
//! at start; a damaged row, or one whose wrapped columns were moved from another row,
//! is [`Error::KeyTable`] naming the row: nothing is ever decrypted under the wrong
//! identity, and the id of every opened key is checked against the key itself.
//!
//! ## States and schedule
//! `pending` (published, not yet signing) → `active` (signs) → `retiring` (verifies
//! only) → `retired` (gone); `revoked` (gone at once, kept as a record). The states
//! are read from timestamps in the row ([`KeyState`]), so every instance switches at
//! the same instant. Each job has a [`Schedule`]: a new key is added `publish_ahead`
//! before it starts signing, and its predecessor retires `retire_after` (the job's
//! longest token lifetime plus the leeway) after the switch. Any instance holding the
//! key-encryption key adds keys that fall due; the database lets one generation per
//! job exist, so instances rotating at the same instant still add one key.
//!
//! ## In a service
//! [`KeyStore::open`] creates the first keys of an empty table and returns a
//! [`KeySnapshot`]; [`crate::TokenService::builder_with_keys`] builds the service from
//! it, and [`KeyStore::keep_installed`] re-reads the table every
//! [`KeyPlan::refresh_every`] and installs what changed — new signing keys, published
//! pending keys, retired and revoked keys removed — including in the key-set documents
//! the service publishes.

mod kek;
mod material;
mod schedule;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde::Serialize;
use token_core::{Clock, KeyId, KeyRing, SecretBytes, SystemClock, Timestamp};
use token_opaque::{KeyRecord, KeyTable, OpaqueStore, Retire, Rewrapped, TokenHasher};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, V4, VerifyOptions};

pub use kek::{KEK_ENV, Kek};
pub use schedule::{KeyState, Schedule};

use self::material::Material;
use crate::error::{Error, Result};
use crate::keys::{AccessKey, PaymentKey};
use crate::policy::{AccessFormat, PaymentFormat, Policy};
use crate::service::TokenService;
use crate::telemetry::{self, Trigger};

/// How often instances re-read the key table by default.
pub const DEFAULT_REFRESH_EVERY: Duration = Duration::from_secs(30);
/// How often access keys rotate by default.
pub const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(30 * 86_400);
/// How long before it signs a new key is published by default: well over twice the
/// key-set `Cache-Control: max-age` verifiers cache for (five minutes in token-axum).
pub const DEFAULT_PUBLISH_AHEAD: Duration = Duration::from_secs(3600);

/// The job a key serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyJob {
    /// Access tokens (signing keys, published in the key sets).
    Access,
    /// Service-to-service tokens (signing keys).
    Service,
    /// Payment tokens (`local` encryption keys).
    Payment,
    /// The pepper opaque tokens are hashed with.
    ApiKeyPepper,
}

impl KeyJob {
    /// Every job, in table order.
    pub const ALL: [Self; 4] = [
        Self::Access,
        Self::Service,
        Self::Payment,
        Self::ApiKeyPepper,
    ];

    /// `access`, `service`, `payment` or `api-key-pepper`: as stored and as the CLI
    /// names it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Service => "service",
            Self::Payment => "payment",
            Self::ApiKeyPepper => "api-key-pepper",
        }
    }

    /// The job named `name` ([`KeyJob::as_str`]).
    ///
    /// # Errors
    /// [`Error::Config`] listing the names.
    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|j| j.as_str() == name)
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown key job `{name}`: expected access, service, payment or api-key-pepper"
                ))
            })
    }
}

impl fmt::Display for KeyJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum KeyKind {
    /// PASETO `v4.public` (Ed25519).
    PasetoV4Public,
    /// PASETO `v3.public` (ECDSA P-384).
    PasetoV3Public,
    /// JWT ES256.
    #[cfg(feature = "jwt")]
    JwtEs256,
    /// JWT EdDSA (Ed25519).
    #[cfg(feature = "jwt")]
    JwtEdDsa,
    /// PASETO `v4.local`.
    PasetoV4Local,
    /// PASETO `v3.local`.
    PasetoV3Local,
    /// A 32-byte HMAC pepper.
    Pepper,
}

impl KeyKind {
    /// As stored: `v4.public`, `v3.public`, `jwt-es256`, `jwt-eddsa`, `v4.local`,
    /// `v3.local`, `pepper`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PasetoV4Public => "v4.public",
            Self::PasetoV3Public => "v3.public",
            #[cfg(feature = "jwt")]
            Self::JwtEs256 => "jwt-es256",
            #[cfg(feature = "jwt")]
            Self::JwtEdDsa => "jwt-eddsa",
            Self::PasetoV4Local => "v4.local",
            Self::PasetoV3Local => "v3.local",
            Self::Pepper => "pepper",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "v4.public" => Self::PasetoV4Public,
            "v3.public" => Self::PasetoV3Public,
            #[cfg(feature = "jwt")]
            "jwt-es256" => Self::JwtEs256,
            #[cfg(feature = "jwt")]
            "jwt-eddsa" => Self::JwtEdDsa,
            "v4.local" => Self::PasetoV4Local,
            "v3.local" => Self::PasetoV3Local,
            "pepper" => Self::Pepper,
            _ => return None,
        })
    }

    /// The access-token kind for `format`.
    pub const fn for_access(format: AccessFormat) -> Self {
        match format {
            AccessFormat::PasetoV4Public => Self::PasetoV4Public,
            AccessFormat::PasetoV3Public => Self::PasetoV3Public,
            #[cfg(feature = "jwt")]
            AccessFormat::JwtEs256 => Self::JwtEs256,
            #[cfg(feature = "jwt")]
            AccessFormat::JwtEdDsa => Self::JwtEdDsa,
        }
    }

    /// The payment kind for `format`.
    pub const fn for_payment(format: PaymentFormat) -> Self {
        match format {
            PaymentFormat::PasetoV4Local => Self::PasetoV4Local,
            PaymentFormat::PasetoV3Local => Self::PasetoV3Local,
        }
    }

    fn fits(self, job: KeyJob) -> bool {
        match job {
            KeyJob::Access => {
                matches!(self, Self::PasetoV4Public | Self::PasetoV3Public) || {
                    #[cfg(feature = "jwt")]
                    {
                        matches!(self, Self::JwtEs256 | Self::JwtEdDsa)
                    }
                    #[cfg(not(feature = "jwt"))]
                    {
                        false
                    }
                }
            }
            KeyJob::Service => {
                #[cfg(feature = "jwt")]
                {
                    self == Self::JwtEs256
                }
                #[cfg(not(feature = "jwt"))]
                {
                    false
                }
            }
            KeyJob::Payment => matches!(self, Self::PasetoV4Local | Self::PasetoV3Local),
            KeyJob::ApiKeyPepper => self == Self::Pepper,
        }
    }
}

/// Which jobs keep keys in the table, of which kind, on which schedule, and how often
/// instances re-read it.
#[derive(Clone, Debug)]
pub struct KeyPlan {
    namespace: String,
    jobs: BTreeMap<KeyJob, (KeyKind, Schedule)>,
    refresh_every: Duration,
}

/// The namespace of a plan that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

impl KeyPlan {
    /// The plan for `policy`: access keys of its access format rotating every 30 days,
    /// published an hour ahead and retired the access lifetime plus the leeway after;
    /// `v4.local` payment keys on the same rhythm retired after the payment lifetime;
    /// the API-key pepper, rotated on demand only and kept until revoked (long-lived
    /// API keys were hashed with it). Service keys are added with
    /// [`KeyPlan::service`].
    pub fn for_policy(policy: &Policy) -> Self {
        let leeway = token_core::DEFAULT_LEEWAY;
        let mut jobs = BTreeMap::new();
        jobs.insert(
            KeyJob::Access,
            (
                KeyKind::for_access(policy.access_format()),
                Schedule::new(
                    Some(DEFAULT_ROTATE_EVERY),
                    DEFAULT_PUBLISH_AHEAD,
                    Some(policy.access_ttl() + leeway),
                ),
            ),
        );
        jobs.insert(
            KeyJob::Payment,
            (
                KeyKind::for_payment(policy.payment_format()),
                Schedule::new(
                    Some(DEFAULT_ROTATE_EVERY),
                    DEFAULT_PUBLISH_AHEAD,
                    Some(policy.payment_ttl() + leeway),
                ),
            ),
        );
        jobs.insert(
            KeyJob::ApiKeyPepper,
            (
                KeyKind::Pepper,
                Schedule::new(None, DEFAULT_PUBLISH_AHEAD, None),
            ),
        );
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            jobs,
            refresh_every: DEFAULT_REFRESH_EVERY,
        }
    }

    /// Access keys of `kind`.
    ///
    /// # Errors
    /// [`Error::KeyNotAllowed`]-like [`Error::Config`] for a kind that cannot sign
    /// access tokens.
    pub fn access_kind(mut self, kind: KeyKind) -> Result<Self> {
        self.set_kind(KeyJob::Access, kind)?;
        Ok(self)
    }

    /// Payment keys of `kind` (`v4.local` or `v3.local`).
    ///
    /// # Errors
    /// [`Error::Config`] for another kind.
    pub fn payment_kind(mut self, kind: KeyKind) -> Result<Self> {
        self.set_kind(KeyJob::Payment, kind)?;
        Ok(self)
    }

    /// Adds ES256 service keys, on the access schedule with the service-token
    /// lifetime `service_ttl`.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn service(mut self, service_ttl: Duration) -> Self {
        let access = self.schedule(KeyJob::Access);
        self.jobs.insert(
            KeyJob::Service,
            (
                KeyKind::JwtEs256,
                Schedule::new(
                    access.and_then(|s| s.rotate_every),
                    access.map_or(DEFAULT_PUBLISH_AHEAD, |s| s.publish_ahead),
                    Some(service_ttl + token_core::DEFAULT_LEEWAY),
                ),
            ),
        );
        self
    }

    /// Keeps the keys under `namespace` (default [`DEFAULT_NAMESPACE`]): deployments
    /// sharing a database each keep their own keys.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The namespace the keys are kept under.
    pub fn namespace_name(&self) -> &str {
        &self.namespace
    }

    /// Leaves `job` out of the table.
    #[must_use]
    pub fn without(mut self, job: KeyJob) -> Self {
        self.jobs.remove(&job);
        self
    }

    /// Sets how often every rotating job rotates.
    #[must_use]
    pub fn rotate_every(mut self, every: Duration) -> Self {
        for (_, s) in self.jobs.values_mut() {
            if s.rotate_every.is_some() {
                s.rotate_every = Some(every);
            }
        }
        self
    }

    /// Sets how long before it signs every new key is published.
    #[must_use]
    pub fn publish_ahead(mut self, ahead: Duration) -> Self {
        for (_, s) in self.jobs.values_mut() {
            s.publish_ahead = ahead;
        }
        self
    }

    /// Replaces `job`'s schedule (the job must be in the plan).
    ///
    /// # Errors
    /// [`Error::Config`] when the job is not in the plan.
    pub fn schedule_for(mut self, job: KeyJob, schedule: Schedule) -> Result<Self> {
        let entry = self
            .jobs
            .get_mut(&job)
            .ok_or_else(|| Error::Config(format!("the key plan has no {job} keys")))?;
        entry.1 = schedule;
        Ok(self)
    }

    /// Sets how often instances re-read the table.
    #[must_use]
    pub fn refresh_every(mut self, every: Duration) -> Self {
        self.refresh_every = every;
        self
    }

    /// How often instances re-read the table.
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_every
    }

    /// `job`'s schedule, if the job is in the plan.
    pub fn schedule(&self, job: KeyJob) -> Option<Schedule> {
        self.jobs.get(&job).map(|(_, s)| *s)
    }

    /// `job`'s key kind, if the job is in the plan.
    pub fn kind(&self, job: KeyJob) -> Option<KeyKind> {
        self.jobs.get(&job).map(|(k, _)| *k)
    }

    /// Checks the plan against the `max-age` verifiers cache the key sets for: a new
    /// key must be published at least twice that long before it signs, so every
    /// verifier has fetched it by then; a key must rotate more slowly than it is
    /// published ahead; the table must be re-read more often than keys are published
    /// ahead.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn check(&self, key_set_max_age: Duration) -> Result<()> {
        if self.refresh_every.is_zero() {
            return Err(Error::Config("key refresh-every must be above zero".into()));
        }
        for (job, (_, s)) in &self.jobs {
            if matches!(job, KeyJob::Access | KeyJob::Service)
                && s.publish_ahead < key_set_max_age.saturating_mul(2)
            {
                return Err(Error::Config(format!(
                    "{job} keys: publish-ahead {}s is less than twice the key-set max-age ({}s)",
                    s.publish_ahead.as_secs(),
                    key_set_max_age.as_secs()
                )));
            }
            if s.rotate_every.is_some_and(|every| every <= s.publish_ahead) {
                return Err(Error::Config(format!(
                    "{job} keys: rotate-every must be longer than publish-ahead ({}s)",
                    s.publish_ahead.as_secs()
                )));
            }
            if s.rotate_every.is_some() && self.refresh_every >= s.publish_ahead {
                return Err(Error::Config(format!(
                    "{job} keys: refresh-every ({}ms) must be shorter than publish-ahead ({}s), \
                     or instances could miss a key before it signs",
                    self.refresh_every.as_millis(),
                    s.publish_ahead.as_secs()
                )));
            }
        }
        Ok(())
    }

    fn set_kind(&mut self, job: KeyJob, kind: KeyKind) -> Result<()> {
        if !kind.fits(job) {
            return Err(Error::Config(format!(
                "a {} key cannot serve the {job} job",
                kind.as_str()
            )));
        }
        if let Some(entry) = self.jobs.get_mut(&job) {
            entry.0 = kind;
        }
        Ok(())
    }
}

/// One key as listed: no secret material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key id.
    pub kid: String,
    /// The job (`access`, `service`, `payment`, `api-key-pepper`).
    pub job: String,
    /// The kind (`v4.public`, …).
    pub kind: String,
    /// Its generation within the job.
    pub generation: i64,
    /// Its state at the time of listing.
    pub state: KeyState,
    /// When it was added (RFC 3339).
    pub created_at: String,
    /// When it starts (or started) signing.
    pub activates_at: String,
    /// When it stops verifying, once known.
    pub retires_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

/// The keys in force at one time, opened: what a [`TokenService`] installs.
pub struct KeySnapshot {
    access: Option<AccessKey>,
    payment: Option<PaymentKey>,
    #[cfg(feature = "jwt")]
    service: Option<token_jwt::SigningKeySet>,
    hasher: Option<TokenHasher>,
    keys: Vec<KeyInfo>,
    at: Timestamp,
}

impl fmt::Debug for KeySnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySnapshot")
            .field("keys", &self.keys)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl KeySnapshot {
    /// Every key of the table, with its state at the snapshot's time.
    pub fn keys(&self) -> &[KeyInfo] {
        &self.keys
    }

    /// When the snapshot was taken.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// The access keys (the active one signs; pending and retiring ones verify).
    ///
    /// # Errors
    /// [`Error::NotConfigured`] when the plan has no access keys or it was taken.
    pub fn take_access(&mut self) -> Result<AccessKey> {
        self.access.take().ok_or(Error::NotConfigured {
            job: crate::Job::Access,
            missing: "access key in the key table",
        })
    }

    /// The payment keys, if the plan has them.
    pub fn take_payment(&mut self) -> Option<PaymentKey> {
        self.payment.take()
    }

    /// The service signing keys, if the plan has them.
    #[cfg(feature = "jwt")]
    pub fn take_service(&mut self) -> Option<token_jwt::SigningKeySet> {
        self.service.take()
    }

    /// The opaque-token hasher with the pepper ring, if the plan has a pepper.
    pub fn take_hasher(&mut self) -> Option<TokenHasher> {
        self.hasher.take()
    }
}

/// How the last re-read of the table went, for health checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshStatus {
    /// Re-reads that succeeded.
    pub refreshes: u64,
    /// Re-reads that failed (the keys in force stay until one succeeds).
    pub failures: u64,
    /// Why the last failure failed, if the last re-read failed.
    pub last_error: Option<String>,
    /// When the keys in force were read.
    pub last_success: Option<Timestamp>,
}

/// The keys of a deployment, in its database, under a key-encryption key.
pub struct KeyStore {
    store: Arc<dyn OpaqueStore>,
    kek: Kek,
    plan: KeyPlan,
    clock: Arc<dyn Clock>,
    status: Mutex<RefreshStatus>,
    /// The rows of the last read, their wrapped columns blanked: the key gauges'
    /// source between reads.
    #[cfg(feature = "metrics")]
    last_read: Mutex<Vec<KeyRecord>>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("store", &self.store.backend())
            .field("kek", &self.kek)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

fn table(store: &dyn OpaqueStore) -> Result<&dyn KeyTable> {
    store.key_table().ok_or_else(|| {
        Error::Config(format!(
            "the {} store keeps no key table (SQLite and PostgreSQL do)",
            store.backend()
        ))
    })
}

fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// The implicit assertion that binds a sealed key to its row.
fn row_assertion(r: &KeyRecord) -> Vec<u8> {
    format!(
        "tessera:keystore:v1\0{}\0{}\0{}\0{}\0{}",
        r.kid, r.namespace, r.job, r.kind, r.generation
    )
    .into_bytes()
}

/// Lists every key of `namespace` with its state at `now`. Needs no key-encryption
/// key.
///
/// # Errors
/// [`Error::Config`] for a store without a key table; [`Error::Opaque`] for the
/// database.
pub async fn list(
    store: &dyn OpaqueStore,
    namespace: &str,
    now: Timestamp,
) -> Result<Vec<KeyInfo>> {
    let rows = table(store)?.key_records(namespace).await?;
    Ok(infos(&rows, now))
}

/// Revokes `kid` at `now`: it leaves the key sets and the verifying rings of every
/// instance at its next re-read, and a revoked current key is replaced by the next
/// instance that holds the key-encryption key. Needs no key-encryption key. `false`
/// if there is no such key or it was already revoked.
///
/// # Errors
/// As [`list`].
pub async fn revoke(store: &dyn OpaqueStore, kid: &str, now: Timestamp) -> Result<bool> {
    Ok(table(store)?.revoke_key(kid, now).await?)
}

fn by_job(rows: &[KeyRecord]) -> BTreeMap<&str, Vec<&KeyRecord>> {
    let mut jobs: BTreeMap<&str, Vec<&KeyRecord>> = BTreeMap::new();
    for r in rows {
        jobs.entry(r.job.as_str()).or_default().push(r);
    }
    for rows in jobs.values_mut() {
        rows.sort_by_key(|r| r.generation);
    }
    jobs
}

fn infos(rows: &[KeyRecord], now: Timestamp) -> Vec<KeyInfo> {
    let mut out = Vec::with_capacity(rows.len());
    for rows in by_job(rows).values() {
        let signer = schedule::signing(rows, now);
        for r in rows {
            out.push(KeyInfo {
                kid: r.kid.clone(),
                job: r.job.clone(),
                kind: r.kind.clone(),
                generation: r.generation,
                state: schedule::state(r, signer, now),
                created_at: rfc3339(r.created_at),
                activates_at: rfc3339(r.activates_at),
                retires_at: r.retires_at.map(rfc3339),
                revoked_at: r.revoked_at.map(rfc3339),
            });
        }
    }
    out
}

/// An opened key and its state.
struct Opened {
    material: Material,
    state: KeyState,
}

impl KeyStore {
    /// The keys of `plan` in `store`'s database, wrapped under `kek`.
    ///
    /// # Errors
    /// [`Error::Config`] for a store without a key table.
    pub fn new(store: Arc<dyn OpaqueStore>, kek: Kek, plan: KeyPlan) -> Result<Self> {
        table(store.as_ref())?;
        Ok(Self {
            store,
            kek,
            plan,
            clock: Arc::new(SystemClock),
            status: Mutex::new(RefreshStatus::default()),
            #[cfg(feature = "metrics")]
            last_read: Mutex::new(Vec::new()),
        })
    }

    /// Reads time from `clock` (default: the system clock); give it the service's.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The plan.
    pub fn plan(&self) -> &KeyPlan {
        &self.plan
    }

    /// How the re-reads of [`KeyStore::keep_installed`] went.
    pub fn status(&self) -> RefreshStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn table(&self) -> Result<&dyn KeyTable> {
        table(self.store.as_ref())
    }

    /// Adds the keys that are due (the first keys of an empty table, scheduled
    /// rotations, replacements of revoked keys), then opens the table: the snapshot to
    /// build a service from.
    ///
    /// # Errors
    /// [`Error::WrongKeyEncryptionKey`], [`Error::KeyTable`] for a damaged or altered
    /// row, [`Error::Opaque`] for the database.
    pub async fn open(&self) -> Result<KeySnapshot> {
        self.add_due().await?;
        self.snapshot().await
    }

    /// Adds the keys that are due, for every job of the plan; the number added.
    ///
    /// # Errors
    /// As [`KeyStore::open`].
    pub async fn add_due(&self) -> Result<usize> {
        let now = self.clock.now();
        let rows = self.table()?.key_records(&self.plan.namespace).await?;
        let jobs = by_job(&rows);
        let mut added = 0;
        for (&job, &(kind, schedule)) in &self.plan.jobs {
            let empty = Vec::new();
            let rows = jobs.get(job.as_str()).unwrap_or(&empty);
            if let Some(addition) = schedule::due(rows, &schedule, now) {
                let retire = addition
                    .retire
                    .and_then(|(i, at)| rows.get(i).map(|r| (r.kid.clone(), at)));
                if let Some(kid) = self
                    .seal_and_insert(
                        job,
                        kind,
                        addition.generation,
                        addition.activates_at,
                        retire,
                    )
                    .await?
                {
                    added += 1;
                    telemetry::key_added(job, Trigger::Schedule);
                    event!(
                        info,
                        job = job.as_str(),
                        kid = kid.as_str(),
                        generation = addition.generation,
                        activates_at = addition.activates_at.unix_seconds(),
                        "key added"
                    );
                    #[cfg(not(feature = "tracing"))]
                    let _ = kid;
                }
            }
        }
        Ok(added)
    }

    /// Makes `job`'s next key sign now: its pending key if it has one, else a new one.
    /// The key that signed until now retires after the job's `retire_after`. Returns
    /// the id of the key that now signs.
    ///
    /// # Errors
    /// [`Error::Config`] when the plan has no such job; as [`KeyStore::open`].
    pub async fn rotate_now(&self, job: KeyJob) -> Result<String> {
        let kid =
            telemetry::in_span(span!("rotate_key", job = job.as_str()), self.rotate(job)).await?;
        telemetry::key_added(job, Trigger::Manual);
        event!(
            info,
            job = job.as_str(),
            kid = kid.as_str(),
            "key rotated: now signing"
        );
        Ok(kid)
    }

    async fn rotate(&self, job: KeyJob) -> Result<String> {
        let (kind, schedule) = *self
            .plan
            .jobs
            .get(&job)
            .ok_or_else(|| Error::Config(format!("the key plan has no {job} keys")))?;
        let now = self.clock.now();
        let rows = self.table()?.key_records(&self.plan.namespace).await?;
        let jobs = by_job(&rows);
        let empty = Vec::new();
        let rows = jobs.get(job.as_str()).unwrap_or(&empty);
        let signer = schedule::signing(rows, now);
        let retire_at = |s: &KeyRecord| {
            schedule
                .retire_after
                .map(|d| (s.kid.clone(), now.checked_add(d).unwrap_or(Timestamp::MAX)))
        };
        let retire = signer.and_then(retire_at);
        if let Some(pending) = rows
            .iter()
            .filter(|r| r.revoked_at.is_none() && r.activates_at > now)
            .min_by_key(|r| r.generation)
        {
            let moved = self
                .table()?
                .activate_key(
                    &pending.kid,
                    now,
                    retire.as_ref().map(|(kid, at)| Retire { kid, at: *at }),
                )
                .await?;
            if moved {
                return Ok(pending.kid.clone());
            }
        }
        let generation = rows.iter().map(|r| r.generation).max().unwrap_or(0) + 1;
        let kid = self
            .seal_and_insert(job, kind, generation, now, retire)
            .await?;
        kid.ok_or_else(|| {
            Error::Config(format!(
                "another instance added {job} key generation {generation} at the same time; \
                 list the keys and retry"
            ))
        })
    }

    /// Wraps every row's data key under `new` instead of this store's key-encryption
    /// key, in one transaction (the key material is not re-encrypted). Afterwards only
    /// `new` opens the table. The number of rows rewrapped.
    ///
    /// # Errors
    /// As [`KeyStore::open`] for a row this store's key cannot open.
    pub async fn rewrap(&self, new: &Kek) -> Result<u64> {
        let rows = self.table()?.key_records(&self.plan.namespace).await?;
        let mut rewrapped = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.kek_id == new.id() {
                continue;
            }
            self.check_kek(r)?;
            let dek =
                LocalKey::<V4>::unwrap_with(&r.wrapped_dek, self.kek.key()).map_err(|_| {
                    corrupt(&r.kid, "its data key does not unwrap (damaged or replaced)")
                })?;
            rewrapped.push(Rewrapped {
                kid: r.kid.clone(),
                old_kek_id: r.kek_id.clone(),
                new_kek_id: new.id().to_owned(),
                wrapped_dek: secrecy::ExposeSecret::expose_secret(&dek.wrap_with(new.key())?)
                    .to_owned(),
            });
        }
        Ok(self.table()?.rewrap_keys(&rewrapped).await?)
    }

    async fn seal_and_insert(
        &self,
        job: KeyJob,
        kind: KeyKind,
        generation: i64,
        activates_at: Timestamp,
        retire: Option<(String, Timestamp)>,
    ) -> Result<Option<String>> {
        let material = Material::generate(kind)?;
        let kid = material.kid()?;
        let dek = LocalKey::<V4>::generate()?;
        let wrapped_dek =
            secrecy::ExposeSecret::expose_secret(&dek.wrap_with(self.kek.key())?).to_owned();
        let mut record = KeyRecord::new(
            kid.clone(),
            self.plan.namespace.clone(),
            job.as_str().to_owned(),
            kind.as_str().to_owned(),
            generation,
            self.kek.id().to_owned(),
            wrapped_dek,
            String::new(),
            material.public_key(),
            self.clock.now(),
            activates_at,
        );
        // PASETO payloads are text: the key is sealed hex-encoded.
        let hex = hex_encode(&material.secret_bytes()?);
        let sealed = dek.encrypt_raw(hex.as_bytes(), b"", &row_assertion(&record))?;
        secrecy::ExposeSecret::expose_secret(&sealed).clone_into(&mut record.sealed);
        let inserted = self
            .table()?
            .insert_key(
                &record,
                retire.as_ref().map(|(kid, at)| Retire { kid, at: *at }),
            )
            .await?;
        Ok(inserted.then_some(kid))
    }

    fn check_kek(&self, r: &KeyRecord) -> Result<()> {
        if r.kek_id == self.kek.id() {
            Ok(())
        } else {
            Err(Error::WrongKeyEncryptionKey {
                table: r.kek_id.clone(),
                given: self.kek.id().to_owned(),
            })
        }
    }

    /// Opens one row: its data key under the key-encryption key, the key under the
    /// data key and the row's identity, and the key's id against the row's.
    fn open_row(&self, r: &KeyRecord, kind: KeyKind) -> Result<Material> {
        self.check_kek(r)?;
        let dek = LocalKey::<V4>::unwrap_with(&r.wrapped_dek, self.kek.key()).map_err(|_| {
            corrupt(
                &r.kid,
                "its data key does not unwrap under the key-encryption key (damaged or replaced)",
            )
        })?;
        let assertion = row_assertion(r);
        let bytes = zeroize::Zeroizing::new(
            dek.decrypt_raw(
                &r.sealed,
                &VerifyOptions {
                    implicit_assertion: &assertion,
                    footer: Some(b""),
                },
            )
            .map_err(|_| {
                corrupt(
                    &r.kid,
                    "its sealed key does not open for this row (damaged, or moved from another row)",
                )
            })?,
        );
        let bytes = hex_decode(&bytes)
            .ok_or_else(|| corrupt(&r.kid, "its sealed key is not a valid key of its kind"))?;
        let material = Material::from_secret_bytes(kind, &bytes)
            .map_err(|_| corrupt(&r.kid, "its sealed key is not a valid key of its kind"))?;
        if material.kid()? != r.kid {
            return Err(corrupt(&r.kid, "the key it holds has another id"));
        }
        Ok(material)
    }

    /// Opens the table at the current time, without adding anything.
    ///
    /// # Errors
    /// As [`KeyStore::open`].
    pub async fn snapshot(&self) -> Result<KeySnapshot> {
        let now = self.clock.now();
        let rows = self.table()?.key_records(&self.plan.namespace).await?;
        #[cfg(feature = "metrics")]
        self.remember(&rows, now);
        let jobs = by_job(&rows);
        let mut snapshot = KeySnapshot {
            access: None,
            payment: None,
            #[cfg(feature = "jwt")]
            service: None,
            hasher: None,
            keys: infos(&rows, now),
            at: now,
        };
        for (&job, &(kind, _)) in &self.plan.jobs {
            let empty = Vec::new();
            let rows = jobs.get(job.as_str()).unwrap_or(&empty);
            let signer = schedule::signing(rows, now);
            let mut opened = Vec::new();
            for r in rows {
                let state = schedule::state(r, signer, now);
                if !state.is_published() {
                    continue;
                }
                let row_kind = KeyKind::parse(&r.kind)
                    .ok_or_else(|| corrupt(&r.kid, "its kind is unknown to this build"))?;
                if row_kind != kind {
                    return Err(Error::Config(format!(
                        "the key table's {job} key {} is {}, this service is configured for {}",
                        r.kid,
                        r.kind,
                        kind.as_str()
                    )));
                }
                opened.push(Opened {
                    material: self.open_row(r, kind)?,
                    state,
                });
            }
            match job {
                KeyJob::Access => snapshot.access = Some(access_key(job, opened)?),
                KeyJob::Payment => snapshot.payment = Some(payment_key(job, opened)?),
                #[cfg(feature = "jwt")]
                KeyJob::Service => snapshot.service = Some(jwt_set(job, opened)?),
                KeyJob::ApiKeyPepper => snapshot.hasher = Some(hasher(job, opened)?),
                #[cfg(not(feature = "jwt"))]
                KeyJob::Service => {}
            }
        }
        Ok(snapshot)
    }

    /// Adds the keys that fall due and installs the table's current keys into
    /// `service` every [`KeyPlan::refresh_every`], until `service` is dropped. A failed
    /// re-read keeps the keys in force and is recorded in [`KeyStore::status`]; the
    /// next period tries again.
    pub async fn keep_installed(self: Arc<Self>, service: Weak<TokenService>) {
        let mut tick = tokio::time::interval(self.plan.refresh_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(service) = service.upgrade() else {
                return;
            };
            let outcome = telemetry::in_span(
                span!("refresh_keys", namespace = self.plan.namespace.as_str()),
                self.refresh_into(&service),
            )
            .await;
            telemetry::key_refresh(outcome.is_ok());
            let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
            match outcome {
                Ok(at) => {
                    status.refreshes += 1;
                    status.last_error = None;
                    status.last_success = Some(at);
                }
                Err(e) => {
                    event!(
                        warn,
                        error = %e,
                        "the key table could not be re-read: the keys in force stay"
                    );
                    status.failures += 1;
                    status.last_error = Some(e.to_string());
                }
            }
        }
    }

    /// One re-read: adds what is due, opens the table and installs it into `service`.
    ///
    /// # Errors
    /// As [`KeyStore::open`] and [`TokenService::install_keys`].
    pub async fn refresh_into(&self, service: &TokenService) -> Result<Timestamp> {
        self.add_due().await?;
        let snapshot = self.snapshot().await?;
        let at = snapshot.at;
        service.install_keys(snapshot)?;
        Ok(at)
    }

    /// Keeps the rows of a read, without their wrapped material, and sets the key
    /// gauges from them.
    #[cfg(feature = "metrics")]
    fn remember(&self, rows: &[KeyRecord], now: Timestamp) {
        let kept = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.wrapped_dek.clear();
                r.sealed.clear();
                r
            })
            .collect();
        *self
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = kept;
        self.record_at(now);
    }

    /// Sets the key gauges (`tessera_keys`, `tessera_key_age_seconds`,
    /// `tessera_key_signing_age_seconds`, by job and state) from the last read of the
    /// table, at the current time: states and ages move on between reads. Call it
    /// before each scrape (token-axum's `/metrics` route takes it as a collector); each
    /// read of the table sets them too.
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self) {
        self.record_at(self.clock.now());
    }

    #[cfg(feature = "metrics")]
    fn record_at(&self, now: Timestamp) {
        let rows = self
            .last_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut keys = Vec::with_capacity(rows.len());
        for (job, rows) in by_job(&rows) {
            let Ok(job) = KeyJob::parse(job) else {
                continue;
            };
            let signer = schedule::signing(&rows, now);
            keys.extend(rows.iter().map(|r| telemetry::KeyAge {
                job,
                state: schedule::state(r, signer, now),
                created_at: r.created_at,
                activates_at: r.activates_at,
            }));
        }
        telemetry::key_table(self.plan.jobs.keys().copied(), &keys, now);
    }
}

fn hex_encode(bytes: &[u8]) -> zeroize::Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = zeroize::Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

fn hex_decode(text: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    fn value(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if text.len() % 2 != 0 {
        return None;
    }
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for pair in text.chunks_exact(2) {
        let (hi, lo) = (value(*pair.first()?)?, value(*pair.get(1)?)?);
        out.push(hi << 4 | lo);
    }
    Some(out)
}

fn corrupt(kid: &str, problem: &'static str) -> Error {
    Error::KeyTable {
        kid: kid.to_owned(),
        problem,
    }
}

fn no_signer(job: KeyJob) -> Error {
    Error::Config(format!(
        "the key table has no active {job} key: add one (`tokenctl keys rotate --job {job}`) \
         or start an instance with the key-encryption key"
    ))
}

/// The active key last, so it is the ring's current one; the others verify only.
fn ordered(opened: Vec<Opened>, job: KeyJob) -> Result<(Vec<Material>, Material)> {
    let mut others = Vec::with_capacity(opened.len());
    let mut active = None;
    for o in opened {
        if o.state == KeyState::Active {
            active = Some(o.material);
        } else {
            others.push(o.material);
        }
    }
    Ok((others, active.ok_or_else(|| no_signer(job))?))
}

/// A ring of `job`'s keys with the active one current: built from the first key, the
/// others added, the active one last.
fn build<K, R>(
    opened: Vec<Opened>,
    job: KeyJob,
    pick: impl Fn(Material) -> Option<K>,
    start: impl FnOnce(K) -> R,
    rotate: impl Fn(&mut R, K) -> Result<()>,
) -> Result<R> {
    let (others, active) = ordered(opened, job)?;
    let wrong = || Error::Config(format!("a {job} key of another kind"));
    let mut keys = others.into_iter().chain(std::iter::once(active));
    let first = keys.next().and_then(&pick).ok_or_else(wrong)?;
    let mut ring = start(first);
    for m in keys {
        rotate(&mut ring, pick(m).ok_or_else(wrong)?)?;
    }
    Ok(ring)
}

fn access_key(job: KeyJob, opened: Vec<Opened>) -> Result<AccessKey> {
    let Some(first) = opened.first() else {
        return Err(no_signer(job));
    };
    Ok(match &first.material {
        Material::PasetoV3Public(_) => AccessKey::PasetoV3(build(
            opened,
            job,
            |m| match m {
                Material::PasetoV3Public(k) => Some(k),
                _ => None,
            },
            PublicIssuer::new,
            |r, k| Ok(r.rotate_to(k)?),
        )?),
        #[cfg(feature = "jwt")]
        Material::Jwt(_) => AccessKey::jwt(jwt_set(job, opened)?)?,
        _ => AccessKey::PasetoV4(build(
            opened,
            job,
            |m| match m {
                Material::PasetoV4Public(k) => Some(k),
                _ => None,
            },
            PublicIssuer::new,
            |r, k| Ok(r.rotate_to(k)?),
        )?),
    })
}

fn payment_key(job: KeyJob, opened: Vec<Opened>) -> Result<PaymentKey> {
    let Some(first) = opened.first() else {
        return Err(no_signer(job));
    };
    Ok(match &first.material {
        Material::PasetoV3Local(_) => PaymentKey::PasetoV3(build(
            opened,
            job,
            |m| match m {
                Material::PasetoV3Local(k) => Some(k),
                _ => None,
            },
            LocalCipher::new,
            |r, k| Ok(r.rotate_to(k)?),
        )?),
        _ => PaymentKey::PasetoV4(build(
            opened,
            job,
            |m| match m {
                Material::PasetoV4Local(k) => Some(k),
                _ => None,
            },
            LocalCipher::new,
            |r, k| Ok(r.rotate_to(k)?),
        )?),
    })
}

#[cfg(feature = "jwt")]
fn jwt_set(job: KeyJob, opened: Vec<Opened>) -> Result<token_jwt::SigningKeySet> {
    build(
        opened,
        job,
        |m| match m {
            Material::Jwt(k) => Some(k),
            _ => None,
        },
        token_jwt::SigningKeySet::new,
        |r, k| Ok(r.rotate_to(k)?),
    )
}

fn hasher(job: KeyJob, opened: Vec<Opened>) -> Result<TokenHasher> {
    let ring = build(
        opened,
        job,
        |m| match m {
            Material::Pepper(p) => {
                let id = LocalKey::<V4>::from_bytes(p.expose_secret())
                    .ok()
                    .map(|k| k.id().clone())?;
                Some((id, p))
            }
            _ => None,
        },
        |(id, p): (KeyId, SecretBytes)| KeyRing::new(id, p),
        |r, (id, p)| Ok(r.rotate_to(id, p)?),
    )?;
    Ok(TokenHasher::hmac(ring)?)
}
