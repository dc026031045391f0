//! What tessera tells operators: `tracing` spans and events (feature `tracing`) and
//! counters and gauges through the [`metrics`](https://docs.rs/metrics) facade
//! (feature `metrics`), recorded where the work happens — issue, verify, refresh
//! rotation and reuse detection, revocation, key rotation. Install any `metrics`
//! recorder (token-axum's `metrics::Prometheus` renders the Prometheus text format
//! at `GET /metrics`); without one, recording costs a check of the global recorder.
//!
//! **No secret is ever a field or a label.** Spans and events carry identifiers only
//! — the subject, the login session (`sid`, the refresh family id), a token's `jti`,
//! an API key's public id, a key's `kid` and job — and reasons (the fixed phrases of
//! [`token_core::Reason`]); never an access token, a refresh token, an API key, a
//! session cookie, a password, key material or the application's claims. Metric labels
//! are fixed `&'static str`s (reasons, jobs, states), so nothing a client sends can
//! become a label.
//!
//! The verify path records one counter increment under a key built once per
//! (credential, reason): no allocation and no formatting per call.
//!
//! ## Metrics
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `tessera_verify_total` | counter | `credential`, `outcome`, `reason` | verifications: `credential` is `access_token`, `api_key` or `session`; `outcome` is `accepted`, `refused` (the credential) or `unavailable` (this side: a backend down, stale revocation state); `reason` is `none` or the [`token_core::Reason`] phrase |
//! | `tessera_tokens_issued_total` | counter | `kind` | tokens issued: `access`, `refresh`, `api_key` |
//! | `tessera_refresh_total` | counter | `outcome` | refresh rotations: `rotated`, or the reason phrase of a refusal |
//! | `tessera_refresh_reuse_detected_total` | counter | | a rotated refresh token presented again: its family and access tokens revoked |
//! | `tessera_revocations_total` | counter | `kind` | revocations written: `token` (a `jti`), `session`, `subject` (log out everywhere), `api_key` |
//! | `tessera_revocation_lag_seconds` | gauge | | time since the revocation replica's last confirmed sync (`+Inf` before the first) |
//! | `tessera_revocation_max_staleness_seconds` | gauge | | the bound past which verification fails closed |
//! | `tessera_revocation_entries` | gauge | | live revocation entries the replica holds |
//! | `tessera_revocation_resyncs_total` | counter | | full loads of the revocation state |
//! | `tessera_revocation_feed_applied_total` | counter | | revocation feed entries applied |
//! | `tessera_keys` | gauge | `job`, `state` | keys in the key table, by job and state |
//! | `tessera_key_age_seconds` | gauge | `job`, `state` | time since the oldest key of that job and state was created (`0` when there is none) |
//! | `tessera_key_signing_age_seconds` | gauge | `job`, `state` | time since that key started (or starts, negative) signing |
//! | `tessera_key_rotations_total` | counter | `job`, `trigger` | keys added: `trigger` is `schedule` or `manual` |
//! | `tessera_key_refreshes_total` | counter | `outcome` | re-reads of the key table: `ok` or `failed` |
//!
//! The replica's and the key table's gauges are set by
//! `ReplicatedBlocklist::record_metrics` and [`crate::keystore::KeyStore::record_metrics`]
//! (call them before each scrape; token-axum's `/metrics` route does), and by the key
//! store at each re-read.

/// `tessera_verify_total`.
pub const VERIFY_TOTAL: &str = "tessera_verify_total";
/// `tessera_tokens_issued_total`.
pub const TOKENS_ISSUED_TOTAL: &str = "tessera_tokens_issued_total";
/// `tessera_refresh_total`.
pub const REFRESH_TOTAL: &str = "tessera_refresh_total";
/// `tessera_refresh_reuse_detected_total`.
pub const REUSE_DETECTED_TOTAL: &str = "tessera_refresh_reuse_detected_total";
/// `tessera_revocations_total`.
pub const REVOCATIONS_TOTAL: &str = "tessera_revocations_total";
/// `tessera_revocation_lag_seconds`.
pub const REVOCATION_LAG_SECONDS: &str = "tessera_revocation_lag_seconds";
/// `tessera_revocation_max_staleness_seconds`.
pub const REVOCATION_MAX_STALENESS_SECONDS: &str = "tessera_revocation_max_staleness_seconds";
/// `tessera_revocation_entries`.
pub const REVOCATION_ENTRIES: &str = "tessera_revocation_entries";
/// `tessera_revocation_resyncs_total`.
pub const REVOCATION_RESYNCS_TOTAL: &str = "tessera_revocation_resyncs_total";
/// `tessera_revocation_feed_applied_total`.
pub const REVOCATION_FEED_APPLIED_TOTAL: &str = "tessera_revocation_feed_applied_total";
/// `tessera_keys`.
pub const KEYS: &str = "tessera_keys";
/// `tessera_key_age_seconds`.
pub const KEY_AGE_SECONDS: &str = "tessera_key_age_seconds";
/// `tessera_key_signing_age_seconds`.
pub const KEY_SIGNING_AGE_SECONDS: &str = "tessera_key_signing_age_seconds";
/// `tessera_key_rotations_total`.
pub const KEY_ROTATIONS_TOTAL: &str = "tessera_key_rotations_total";
/// `tessera_key_refreshes_total`.
pub const KEY_REFRESHES_TOTAL: &str = "tessera_key_refreshes_total";

/// The kind of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// Only goes up (or is set to a larger total).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// Every metric this crate records: its name, kind and help text (see [`describe`]).
pub const METRICS: [(&str, MetricKind, &str); 15] = [
    (
        VERIFY_TOTAL,
        MetricKind::Counter,
        "Credential verifications by credential, outcome and reason.",
    ),
    (
        TOKENS_ISSUED_TOTAL,
        MetricKind::Counter,
        "Tokens issued, by kind.",
    ),
    (
        REFRESH_TOTAL,
        MetricKind::Counter,
        "Refresh-token rotations: rotated, or the reason of the refusal.",
    ),
    (
        REUSE_DETECTED_TOTAL,
        MetricKind::Counter,
        "Rotated refresh tokens presented again (the family is revoked).",
    ),
    (
        REVOCATIONS_TOTAL,
        MetricKind::Counter,
        "Revocations written, by kind.",
    ),
    (
        REVOCATION_LAG_SECONDS,
        MetricKind::Gauge,
        "Seconds since the revocation replica's last confirmed sync (+Inf before the first).",
    ),
    (
        REVOCATION_MAX_STALENESS_SECONDS,
        MetricKind::Gauge,
        "The revocation replica's bound: past it, verification fails closed.",
    ),
    (
        REVOCATION_ENTRIES,
        MetricKind::Gauge,
        "Live revocation entries held by the replica.",
    ),
    (
        REVOCATION_RESYNCS_TOTAL,
        MetricKind::Counter,
        "Full loads of the revocation state by the replica.",
    ),
    (
        REVOCATION_FEED_APPLIED_TOTAL,
        MetricKind::Counter,
        "Revocation feed entries applied by the replica.",
    ),
    (
        KEYS,
        MetricKind::Gauge,
        "Keys in the key table, by job and state.",
    ),
    (
        KEY_AGE_SECONDS,
        MetricKind::Gauge,
        "Seconds since the oldest key of the job and state was created (0: none).",
    ),
    (
        KEY_SIGNING_AGE_SECONDS,
        MetricKind::Gauge,
        "Seconds since that key started signing (negative: until it does).",
    ),
    (
        KEY_ROTATIONS_TOTAL,
        MetricKind::Counter,
        "Keys added to the key table, by job and trigger.",
    ),
    (
        KEY_REFRESHES_TOTAL,
        MetricKind::Counter,
        "Re-reads of the key table, by outcome.",
    ),
];

/// Gives the installed `metrics` recorder the help text of every metric this crate
/// records ([`METRICS`]). Call it once, after installing the recorder.
#[cfg(feature = "metrics")]
pub fn describe() {
    metrics::with_recorder(|r| {
        for (name, kind, help) in METRICS {
            match kind {
                MetricKind::Counter => r.describe_counter(name.into(), None, help.into()),
                MetricKind::Gauge => r.describe_gauge(name.into(), None, help.into()),
            }
        }
    });
}

use token_core::Reason;

/// `tracing` event, when the feature is on (the arguments are not evaluated when it is
/// off).
#[cfg(feature = "tracing")]
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {
        ::tracing::$level!($($arg)+)
    };
}
#[cfg(not(feature = "tracing"))]
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {
        ()
    };
}

/// An `INFO` span for an operation, when the feature is on.
#[cfg(feature = "tracing")]
macro_rules! span {
    ($($arg:tt)+) => {
        ::tracing::info_span!($($arg)+)
    };
}
#[cfg(not(feature = "tracing"))]
macro_rules! span {
    ($($arg:tt)+) => {
        $crate::telemetry::Span
    };
}

/// A span (nothing without the `tracing` feature).
#[cfg(feature = "tracing")]
pub(crate) type Span = tracing::Span;
/// A span (nothing without the `tracing` feature).
#[cfg(not(feature = "tracing"))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span;

/// Runs `future` inside `span`.
pub(crate) async fn in_span<F: std::future::Future>(span: Span, future: F) -> F::Output {
    #[cfg(feature = "tracing")]
    {
        tracing::Instrument::instrument(future, span).await
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = span;
        future.await
    }
}

/// The credential a verification checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Credential {
    AccessToken,
    ApiKey,
    Session,
}

#[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
impl Credential {
    #[cfg(feature = "metrics")]
    const ALL: [Self; 3] = [Self::AccessToken, Self::ApiKey, Self::Session];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::ApiKey => "api_key",
            Self::Session => "session",
        }
    }
}

/// `accepted`, `refused` or `unavailable`, and the reason label (`none` when
/// accepted).
#[cfg(feature = "metrics")]
fn outcome(refused: Option<Reason>) -> (&'static str, &'static str) {
    match refused {
        None => ("accepted", "none"),
        Some(r) if r.is_unavailable() => ("unavailable", r.as_str()),
        Some(r) => ("refused", r.as_str()),
    }
}

/// Records one verification of `credential`: `None` accepted, else the reason.
pub(crate) fn verified(credential: Credential, refused: Option<Reason>) {
    #[cfg(feature = "metrics")]
    recorder::verified(credential, refused);
    #[cfg(feature = "tracing")]
    match refused {
        None => event!(
            trace,
            credential = credential.as_str(),
            "credential accepted"
        ),
        Some(reason) if reason.is_unavailable() => event!(
            warn,
            credential = credential.as_str(),
            reason = reason.as_str(),
            "credential not verified: backend unavailable"
        ),
        Some(reason) => event!(
            debug,
            credential = credential.as_str(),
            reason = reason.as_str(),
            "credential refused"
        ),
    }
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = (credential, refused);
}

/// A kind of token issued.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Issued {
    Access,
    Refresh,
    ApiKey,
}

pub(crate) fn issued(kind: Issued) {
    #[cfg(feature = "metrics")]
    {
        let counter = match kind {
            Issued::Access => metrics::counter!(TOKENS_ISSUED_TOTAL, "kind" => "access"),
            Issued::Refresh => metrics::counter!(TOKENS_ISSUED_TOTAL, "kind" => "refresh"),
            Issued::ApiKey => metrics::counter!(TOKENS_ISSUED_TOTAL, "kind" => "api_key"),
        };
        counter.increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

/// A refresh rotation: `None` rotated, else the reason it was refused.
pub(crate) fn refreshed(refused: Option<Reason>) {
    #[cfg(feature = "metrics")]
    match refused {
        None => metrics::counter!(REFRESH_TOTAL, "outcome" => "rotated").increment(1),
        Some(r) => metrics::counter!(REFRESH_TOTAL, "outcome" => r.as_str()).increment(1),
    }
    #[cfg(not(feature = "metrics"))]
    let _ = refused;
}

pub(crate) fn reuse_detected() {
    #[cfg(feature = "metrics")]
    metrics::counter!(REUSE_DETECTED_TOTAL).increment(1);
}

/// A kind of revocation written.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Revoked {
    Token,
    Session,
    Subject,
    ApiKey,
}

pub(crate) fn revoked(kind: Revoked) {
    #[cfg(feature = "metrics")]
    {
        let counter = match kind {
            Revoked::Token => metrics::counter!(REVOCATIONS_TOTAL, "kind" => "token"),
            Revoked::Session => metrics::counter!(REVOCATIONS_TOTAL, "kind" => "session"),
            Revoked::Subject => metrics::counter!(REVOCATIONS_TOTAL, "kind" => "subject"),
            Revoked::ApiKey => metrics::counter!(REVOCATIONS_TOTAL, "kind" => "api_key"),
        };
        counter.increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

/// A counter with one series per outcome — `accepted`, or refused for a
/// [`Reason`] — under fixed labels: the keys are built once, so recording allocates
/// nothing and formats nothing. Each series has the labels given, then `outcome`
/// (`accepted`, `refused`, or `unavailable` for a reason about this side, see
/// [`Reason::is_unavailable`]) and `reason` (`none`, or the reason's phrase).
///
/// ```
/// use token_core::Reason;
/// use token_policy::telemetry::ReasonCounter;
///
/// let counter = ReasonCounter::new("myapp_checks_total", &[("check", "signature")]);
/// counter.record(None);
/// counter.record(Some(Reason::Expired));
/// ```
#[cfg(feature = "metrics")]
pub struct ReasonCounter {
    /// One key per reason of [`Reason::ALL`], then `accepted`.
    keys: Vec<metrics::Key>,
    name: &'static str,
    labels: Vec<metrics::Label>,
}

#[cfg(feature = "metrics")]
impl std::fmt::Debug for ReasonCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReasonCounter")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "metrics")]
static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

#[cfg(feature = "metrics")]
impl ReasonCounter {
    /// The counter `name` with `labels` on every series.
    pub fn new(name: &'static str, labels: &[(&'static str, &'static str)]) -> Self {
        let labels: Vec<metrics::Label> = labels
            .iter()
            .map(|(k, v)| metrics::Label::from_static_parts(k, v))
            .collect();
        let key = |refused: Option<Reason>| {
            let (outcome, reason) = outcome(refused);
            let mut all = labels.clone();
            all.push(metrics::Label::from_static_parts("outcome", outcome));
            all.push(metrics::Label::from_static_parts("reason", reason));
            metrics::Key::from_parts(name, all)
        };
        let keys = Reason::ALL
            .into_iter()
            .map(Some)
            .chain([None])
            .map(key)
            .collect();
        Self { keys, name, labels }
    }

    /// Adds one to the series of `refused` (`None`: accepted), in the recorder in force.
    pub fn record(&self, refused: Option<Reason>) {
        let slot = match refused {
            None => Some(Reason::ALL.len()),
            Some(reason) => Reason::ALL.iter().position(|r| *r == reason),
        };
        if let Some(key) = slot.and_then(|s| self.keys.get(s)) {
            metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(1));
        } else {
            // A reason this build's table does not know.
            let (outcome, reason) = outcome(refused);
            let mut labels = self.labels.clone();
            labels.push(metrics::Label::from_static_parts("outcome", outcome));
            labels.push(metrics::Label::from_static_parts("reason", reason));
            metrics::counter!(self.name, labels).increment(1);
        }
    }
}

#[cfg(feature = "metrics")]
mod recorder {
    use std::sync::OnceLock;

    use token_core::Reason;

    use super::{Credential, ReasonCounter, VERIFY_TOTAL};

    /// `tessera_verify_total`'s series, per credential.
    fn counters() -> &'static [ReasonCounter; 3] {
        static COUNTERS: OnceLock<[ReasonCounter; 3]> = OnceLock::new();
        COUNTERS.get_or_init(|| {
            Credential::ALL.map(|c| ReasonCounter::new(VERIFY_TOTAL, &[("credential", c.as_str())]))
        })
    }

    pub(super) fn verified(credential: Credential, refused: Option<Reason>) {
        let [access, api_key, session] = counters();
        match credential {
            Credential::AccessToken => access,
            Credential::ApiKey => api_key,
            Credential::Session => session,
        }
        .record(refused);
    }
}

/// What added a key to the key table.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Trigger {
    /// The schedule (or an empty table, or a revoked current key).
    Schedule,
    /// `KeyStore::rotate_now`.
    Manual,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn key_added(job: crate::keystore::KeyJob, trigger: Trigger) {
    #[cfg(feature = "metrics")]
    {
        let trigger = match trigger {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        };
        metrics::counter!(KEY_ROTATIONS_TOTAL, "job" => job.as_str(), "trigger" => trigger)
            .increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (job, trigger);
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn key_refresh(ok: bool) {
    #[cfg(feature = "metrics")]
    if ok {
        metrics::counter!(KEY_REFRESHES_TOTAL, "outcome" => "ok").increment(1);
    } else {
        metrics::counter!(KEY_REFRESHES_TOTAL, "outcome" => "failed").increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = ok;
}

/// One key as the key-table gauges see it.
#[cfg(all(feature = "metrics", any(feature = "sqlite", feature = "postgres")))]
pub(crate) struct KeyAge {
    pub(crate) job: crate::keystore::KeyJob,
    pub(crate) state: crate::keystore::KeyState,
    pub(crate) created_at: token_core::Timestamp,
    pub(crate) activates_at: token_core::Timestamp,
}

/// Sets the key-table gauges for every job of `jobs` and every state, at `now`.
#[cfg(all(feature = "metrics", any(feature = "sqlite", feature = "postgres")))]
pub(crate) fn key_table(
    jobs: impl Iterator<Item = crate::keystore::KeyJob>,
    keys: &[KeyAge],
    now: token_core::Timestamp,
) {
    use crate::keystore::KeyState;
    // Seconds fit an f64 exactly far beyond any clock this runs under.
    #[allow(clippy::cast_precision_loss)]
    let seconds = |from: token_core::Timestamp| (now.unix_seconds() - from.unix_seconds()) as f64;
    for job in jobs {
        for state in [
            KeyState::Pending,
            KeyState::Active,
            KeyState::Retiring,
            KeyState::Retired,
            KeyState::Revoked,
        ] {
            let of_state = keys.iter().filter(|k| k.job == job && k.state == state);
            let count = of_state.clone().count();
            let oldest = of_state.min_by_key(|k| k.created_at);
            let labels = [("job", job.as_str()), ("state", state.as_str())];
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(KEYS, &labels).set(count as f64);
            metrics::gauge!(KEY_AGE_SECONDS, &labels)
                .set(oldest.map_or(0.0, |k| seconds(k.created_at)));
            metrics::gauge!(KEY_SIGNING_AGE_SECONDS, &labels)
                .set(oldest.map_or(0.0, |k| seconds(k.activates_at)));
        }
    }
}

#[cfg(all(feature = "metrics", feature = "redis"))]
impl crate::blocklist::ReplicatedBlocklist {
    /// Sets the revocation replica's gauges from [`Self::status`]: its lag
    /// (`tessera_revocation_lag_seconds`, `+Inf` before the first sync), its bound,
    /// the entries it holds, its full loads and the feed entries applied. Call it
    /// before each scrape (token-axum's `/metrics` route takes it as a collector).
    pub fn record_metrics(&self) {
        let status = self.status();
        metrics::gauge!(REVOCATION_LAG_SECONDS)
            .set(status.lag.map_or(f64::INFINITY, |lag| lag.as_secs_f64()));
        metrics::gauge!(REVOCATION_MAX_STALENESS_SECONDS).set(self.max_staleness().as_secs_f64());
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(REVOCATION_ENTRIES).set(status.entries as f64);
        metrics::counter!(REVOCATION_RESYNCS_TOTAL).absolute(status.resyncs);
        metrics::counter!(REVOCATION_FEED_APPLIED_TOTAL).absolute(status.applied);
    }
}
