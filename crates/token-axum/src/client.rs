//! [`KeySetClient`]: the verifying side of key discovery. Fetches a JWKS or a PASERK
//! key set from one configured URL, caches it, and refetches when a token names a key
//! it does not hold — at most once per interval, whoever asks and however often.
//!
//! The only URL ever fetched is the one given to the builder. Nothing in a token (a
//! JWT's `jku`, `x5u` or `kid`, a PASETO footer) is ever used as an address: a token
//! names a key by id, and an unknown id only allows a refetch of the configured URL.
//!
//! Behind the `client` feature (reqwest); JWK Sets also need `jwt`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::http::header;
use serde::de::DeserializeOwned;
use token_core::{PasetoPurpose, PasetoVersion, Reason, TokenFormat, Validation, Verified};
#[cfg(feature = "jwt")]
use token_jwt::{JwtVerifier, VerifyingKey};
use token_paseto::{PublicKeySet, PublicVerifier, V3, V4};
use tokio::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// The default shortest interval between two fetches.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How long a key set is used before a routine refetch, when the response names no
/// `Cache-Control: max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The longest a key set is used before a routine refetch, whatever the server says.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The default timeout of one fetch.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long past its `max-age` a key set is still used while refetches fail, by
/// default.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(3600);

/// Which document the URL serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySetFormat {
    /// A JWK Set (RFC 7517): JWT access tokens.
    #[cfg(feature = "jwt")]
    Jwks,
    /// A PASERK public-key set (`token_paseto::PublicKeySet`): PASETO `public` tokens.
    Paseto,
}

impl KeySetFormat {
    /// Every format this build reads.
    const ALL: &'static [Self] = &[
        #[cfg(feature = "jwt")]
        Self::Jwks,
        Self::Paseto,
    ];

    /// The format of a JWK Set, when this build reads them (the `jwt` feature).
    #[cfg(feature = "jwt")]
    const JWKS: Option<Self> = Some(Self::Jwks);
    #[cfg(not(feature = "jwt"))]
    const JWKS: Option<Self> = None;

    /// The kind of key-set `document`: a PASERK key set when its keys carry `paserk`,
    /// a JWKS when they carry `kty` (with the `jwt` feature); `None` for anything else,
    /// or a set with no key (which says nothing about its kind).
    pub fn of_document(document: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(document).ok()?;
        let keys = value.get("keys")?.as_array()?;
        let has = |member: &str| !keys.is_empty() && keys.iter().all(|k| k.get(member).is_some());
        if has("paserk") {
            Some(Self::Paseto)
        } else if has("kty") {
            Self::JWKS
        } else {
            None
        }
    }

    fn max_len(self) -> usize {
        match self {
            #[cfg(feature = "jwt")]
            Self::Jwks => token_jwt::MAX_JWKS_LEN,
            Self::Paseto => token_paseto::keyset::MAX_KEYSET_LEN,
        }
    }
}

enum Keys {
    #[cfg(feature = "jwt")]
    Jwt(Option<JwtVerifier<VerifyingKey>>),
    Paseto {
        v4: Option<PublicVerifier<V4>>,
        v3: Option<PublicVerifier<V3>>,
    },
}

struct Snapshot {
    keys: Keys,
    /// When a routine refetch is due.
    stale_at: Instant,
    /// When the set stops being used, refetched or not; `None` for never.
    unusable_at: Option<Instant>,
    generation: u64,
}

impl Snapshot {
    fn usable(&self, now: Instant) -> bool {
        self.unusable_at.is_none_or(|t| now < t)
    }

    fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        format: TokenFormat,
        validation: &Validation,
    ) -> token_policy::Result<Verified<T>> {
        match (&self.keys, format) {
            #[cfg(feature = "jwt")]
            (Keys::Jwt(Some(v)), TokenFormat::Jws) => Ok(v
                .verify(token, validation)
                .map_err(token_policy::Error::from)?),
            (
                Keys::Paseto { v4: Some(v), .. },
                TokenFormat::Paseto {
                    version: PasetoVersion::V4,
                    purpose: PasetoPurpose::Public,
                    ..
                },
            ) => Ok(v
                .verify(token, validation)
                .map_err(token_policy::Error::from)?),
            (
                Keys::Paseto { v3: Some(v), .. },
                TokenFormat::Paseto {
                    version: PasetoVersion::V3,
                    purpose: PasetoPurpose::Public,
                    ..
                },
            ) => Ok(v
                .verify(token, validation)
                .map_err(token_policy::Error::from)?),
            // The set holds no key of the token's kind (yet).
            _ => Err(token_core::Error::UnknownKeyId.into()),
        }
    }
}

struct Inner {
    url: reqwest::Url,
    format: KeySetFormat,
    http: reqwest::Client,
    min_refresh_interval: Duration,
    default_max_age: Duration,
    max_staleness: Duration,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Held while fetching; holds the time of the last fetch attempt.
    refresh: Mutex<Option<Instant>>,
    fetches: AtomicU64,
}

/// Verifies tokens against a key set fetched from a configured URL.
///
/// - The set is fetched on first use and cached; it is refetched when older than the
///   response's `Cache-Control: max-age` (clamped to between the refresh interval and
///   a day; five minutes without one), and when a token names a key it does not hold.
/// - Fetches are single-flight (concurrent callers wait for one fetch and share it)
///   and at most one per [`KeySetClientBuilder::min_refresh_interval`], however many
///   tokens with unknown key ids arrive: forged `kid`s cannot drive a refetch storm.
/// - A failed routine refetch keeps the cached set, for at most
///   [`KeySetClientBuilder::max_staleness`] (one hour by default) past its `max-age`.
///   After that, verification fails closed with [`Error::StaleKeySet`] (`503` with
///   `Retry-After`) until a fetch succeeds: a key the issuer has withdrawn is not
///   trusted forever because its key-set URL went away.
/// - A fetch is bounded in time and size, follows no redirect, and only the
///   configured URL is ever fetched.
///
/// Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct KeySetClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for KeySetClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySetClient")
            .field("url", &self.inner.url.as_str())
            .field("format", &self.inner.format)
            .field("min_refresh_interval", &self.inner.min_refresh_interval)
            .field("max_staleness", &self.inner.max_staleness)
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

/// Builds a [`KeySetClient`].
#[derive(Debug, Clone)]
pub struct KeySetClientBuilder {
    url: reqwest::Url,
    format: KeySetFormat,
    min_refresh_interval: Duration,
    default_max_age: Duration,
    max_staleness: Duration,
    timeout: Duration,
    use_system_proxy: bool,
}

impl KeySetClientBuilder {
    /// The shortest interval between two fetches (default one minute). A token naming
    /// an unknown key within this interval of the last fetch is refused without a
    /// fetch.
    #[must_use]
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// How long a set is used when the response names no `max-age` (default five
    /// minutes).
    #[must_use]
    pub fn default_max_age(mut self, max_age: Duration) -> Self {
        self.default_max_age = max_age;
        self
    }

    /// How long past its `max-age` a set is still used while refetches fail (default
    /// one hour). Past that, [`KeySetClient::verify`] fails with
    /// [`Error::StaleKeySet`] (`503`, `Retry-After`) until a fetch succeeds.
    /// `Duration::ZERO` uses no stale set at all.
    #[must_use]
    pub fn max_staleness(mut self, max_staleness: Duration) -> Self {
        self.max_staleness = max_staleness;
        self
    }

    /// The timeout of one fetch, connection included (default ten seconds).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether to honour the `HTTP_PROXY`/`HTTPS_PROXY` environment (default: yes).
    #[must_use]
    pub fn use_system_proxy(mut self, yes: bool) -> Self {
        self.use_system_proxy = yes;
        self
    }

    /// Fetches the URL once and builds the client for the kind of document it serves
    /// ([`KeySetFormat::of_document`]), whatever format the builder was given; the
    /// set is then cached as by a first verification.
    ///
    /// # Errors
    /// [`Error::KeySet`] when the fetch fails or the document is neither kind (or
    /// holds no key); as [`KeySetClientBuilder::build`].
    pub async fn discover(mut self) -> Result<KeySetClient> {
        let probe = self.clone().build()?;
        let largest = KeySetFormat::ALL.iter().map(|f| f.max_len()).max();
        let (text, _) = probe.fetch_text(largest.unwrap_or_default()).await?;
        self.format = KeySetFormat::of_document(&text).ok_or_else(|| {
            Error::KeySet(
                "the document is neither a JWKS nor a PASERK key set, or it holds no key".into(),
            )
        })?;
        let client = self.build()?;
        client.refresh().await?;
        Ok(client)
    }

    /// The client.
    ///
    /// # Errors
    /// [`Error::Config`] if the HTTP client cannot be built (no TLS backend).
    pub fn build(self) -> Result<KeySetClient> {
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!("tessera-token-axum/", env!("CARGO_PKG_VERSION")));
        if !self.use_system_proxy {
            http = http.no_proxy();
        }
        let http = http
            .build()
            .map_err(|_| Error::Config("cannot build the HTTP client".into()))?;
        Ok(KeySetClient {
            inner: Arc::new(Inner {
                url: self.url,
                format: self.format,
                http,
                min_refresh_interval: self.min_refresh_interval,
                default_max_age: self.default_max_age,
                max_staleness: self.max_staleness,
                current: RwLock::new(None),
                refresh: Mutex::new(None),
                fetches: AtomicU64::new(0),
            }),
        })
    }
}

impl KeySetClient {
    /// A builder for a client of the key set at `url` (`https://…`, or `http://` for a
    /// service on the same host or network).
    ///
    /// # Errors
    /// [`Error::Config`] for a URL that does not parse, is not HTTP(S), or carries
    /// credentials or a fragment.
    pub fn builder(url: &str, format: KeySetFormat) -> Result<KeySetClientBuilder> {
        let url =
            reqwest::Url::parse(url).map_err(|_| Error::Config("invalid key-set URL".into()))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(Error::Config(
                "key-set URL must be https:// or http://".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(Error::Config(
                "key-set URL must not carry credentials or a fragment".into(),
            ));
        }
        Ok(KeySetClientBuilder {
            url,
            format,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            default_max_age: DEFAULT_MAX_AGE,
            max_staleness: DEFAULT_MAX_STALENESS,
            timeout: DEFAULT_TIMEOUT,
            use_system_proxy: true,
        })
    }

    /// A client of the JWKS at `url`, with the defaults.
    ///
    /// # Errors
    /// As [`KeySetClient::builder`] and [`KeySetClientBuilder::build`].
    #[cfg(feature = "jwt")]
    pub fn jwks(url: &str) -> Result<Self> {
        Self::builder(url, KeySetFormat::Jwks)?.build()
    }

    /// A client of the PASERK key set at `url`, with the defaults.
    ///
    /// # Errors
    /// As [`KeySetClient::builder`] and [`KeySetClientBuilder::build`].
    pub fn paseto(url: &str) -> Result<Self> {
        Self::builder(url, KeySetFormat::Paseto)?.build()
    }

    /// A client of the key set at `url`, whichever kind it is: fetched once to tell
    /// ([`KeySetClientBuilder::discover`]), with the defaults.
    ///
    /// # Errors
    /// As [`KeySetClient::builder`] and [`KeySetClientBuilder::discover`].
    pub async fn discover(url: &str) -> Result<Self> {
        // The format is the document's, found by the discovery.
        Self::builder(url, KeySetFormat::Paseto)?.discover().await
    }

    /// The kind of document this client reads.
    pub fn format(&self) -> KeySetFormat {
        self.inner.format
    }

    /// The configured URL: the only one this client fetches.
    pub fn url(&self) -> &str {
        self.inner.url.as_str()
    }

    /// How many fetches were started so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::SeqCst)
    }

    /// Verifies `token` (a JWS for a JWKS, a PASETO `public` token for a PASERK set)
    /// against the key set and `validation`. A token naming an unknown key triggers
    /// one refetch, unless one happened within the refresh interval.
    ///
    /// Revocation is not checked here: a key set says nothing about revoked tokens.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] with the reason (`unknown key`, `expired`, …);
    /// [`Error::KeySet`] when no key set could be had; [`Error::StaleKeySet`] when the
    /// cached set is past its maximum staleness and no fetch succeeded.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<T>> {
        Ok(self.verify_keys(token, validation).await?)
    }

    /// [`KeySetClient::verify`], in token-policy's errors (a key set that cannot be had
    /// is [`token_policy::Error::KeySetUnavailable`]).
    async fn verify_keys<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> token_policy::Result<Verified<T>> {
        let format = TokenFormat::detect(token)?;
        let fits = match (self.inner.format, format) {
            #[cfg(feature = "jwt")]
            (KeySetFormat::Jwks, TokenFormat::Jws) => true,
            (KeySetFormat::Paseto, TokenFormat::Paseto { purpose, .. }) => {
                purpose == PasetoPurpose::Public
            }
            _ => false,
        };
        if !fits {
            return Err(token_policy::Error::WrongTokenType {
                job: token_policy::Job::Access,
                found: format,
            });
        }
        let snapshot = self.snapshot().await.map_err(unavailable)?;
        match snapshot.verify(token, format, validation) {
            Err(e) if e.reason() == Reason::UnknownKey => {
                match self
                    .refresh_after(snapshot.generation)
                    .await
                    .map_err(unavailable)?
                {
                    Some(newer) => newer.verify(token, format, validation),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// Refetches the key set now, unless a fetch happened within the refresh interval.
    /// Returns whether it fetched.
    ///
    /// # Errors
    /// [`Error::KeySet`] if the fetch failed (the cached set is kept).
    pub async fn refresh(&self) -> Result<bool> {
        let mut last_attempt = self.inner.refresh.lock().await;
        Ok(self.refresh_locked(&mut last_attempt).await?.is_some())
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn snapshot(&self) -> Result<Arc<Snapshot>> {
        let now = Instant::now();
        match self.current() {
            Some(s) if now < s.stale_at => Ok(s),
            Some(stale) if stale.usable(now) => {
                // Routine refetch by whoever gets there first; the others, and a
                // failed fetch, go on with the cached set.
                let Ok(mut last_attempt) = self.inner.refresh.try_lock() else {
                    return Ok(stale);
                };
                if let Some(s) = self.current().filter(|s| s.generation != stale.generation) {
                    return Ok(s);
                }
                Ok(self
                    .refresh_locked(&mut last_attempt)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(stale))
            }
            Some(_) => {
                // Too stale to use: only a successful fetch helps. Wait for one in
                // flight, or try one.
                let mut last_attempt = self.inner.refresh.lock().await;
                if let Some(s) = self.current().filter(|s| s.usable(Instant::now())) {
                    return Ok(s);
                }
                match self.refresh_locked(&mut last_attempt).await {
                    Ok(Some(s)) => Ok(s),
                    Ok(None) | Err(_) => Err(Error::StaleKeySet {
                        retry_after: self.next_fetch_in(*last_attempt),
                    }),
                }
            }
            None => {
                let mut last_attempt = self.inner.refresh.lock().await;
                if let Some(s) = self.current() {
                    return Ok(s);
                }
                self.refresh_locked(&mut last_attempt)
                    .await?
                    .ok_or_else(|| {
                        Error::KeySet(
                            "no key set yet; the last fetch failed within the refresh interval"
                                .into(),
                        )
                    })
            }
        }
    }

    /// How long until the refresh interval allows a fetch after `last_attempt`.
    fn next_fetch_in(&self, last_attempt: Option<Instant>) -> Duration {
        last_attempt.map_or(Duration::ZERO, |t| {
            self.inner.min_refresh_interval.saturating_sub(t.elapsed())
        })
    }

    /// A set newer than generation `seen`: one another caller fetched meanwhile, or a
    /// fresh fetch if the interval allows; `None` when neither.
    async fn refresh_after(&self, seen: u64) -> Result<Option<Arc<Snapshot>>> {
        let mut last_attempt = self.inner.refresh.lock().await;
        if let Some(s) = self.current().filter(|s| s.generation != seen) {
            return Ok(Some(s));
        }
        self.refresh_locked(&mut last_attempt).await
    }

    /// Fetches unless the last attempt was within the refresh interval (`None`).
    /// `last_attempt` is the guarded time of the last attempt.
    async fn refresh_locked(
        &self,
        last_attempt: &mut MutexGuard<'_, Option<Instant>>,
    ) -> Result<Option<Arc<Snapshot>>> {
        if last_attempt.is_some_and(|t| t.elapsed() < self.inner.min_refresh_interval) {
            return Ok(None);
        }
        **last_attempt = Some(Instant::now());
        self.inner.fetches.fetch_add(1, Ordering::SeqCst);
        let (keys, max_age) = self.fetch().await?;
        let max_age = max_age.unwrap_or(self.inner.default_max_age).clamp(
            self.inner.min_refresh_interval.min(MAX_MAX_AGE),
            MAX_MAX_AGE,
        );
        let generation = self.current().map_or(1, |s| s.generation + 1);
        let stale_at = Instant::now() + max_age;
        let snapshot = Arc::new(Snapshot {
            keys,
            stale_at,
            unusable_at: stale_at.checked_add(self.inner.max_staleness),
            generation,
        });
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(snapshot.clone());
        Ok(Some(snapshot))
    }

    /// One bounded GET of the URL: the document and its `max-age`.
    async fn fetch_text(&self, limit: usize) -> Result<(String, Option<Duration>)> {
        let inner = &self.inner;
        let mut response = inner
            .http
            .get(inner.url.clone())
            .header(header::ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|e| fetch_error(&e))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(Error::KeySet(format!("HTTP status {}", status.as_u16())));
        }
        let max_age = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        if response
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
        {
            return Err(Error::KeySet("key set larger than accepted".into()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fetch_error(&e))? {
            if body.len() + chunk.len() > limit {
                return Err(Error::KeySet("key set larger than accepted".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let text =
            String::from_utf8(body).map_err(|_| Error::KeySet("key set is not UTF-8".into()))?;
        Ok((text, max_age))
    }

    async fn fetch(&self) -> Result<(Keys, Option<Duration>)> {
        let inner = &self.inner;
        let (text, max_age) = self.fetch_text(inner.format.max_len()).await?;
        let keys = match inner.format {
            #[cfg(feature = "jwt")]
            KeySetFormat::Jwks => {
                let jwks = token_jwt::Jwks::from_json(&text)
                    .map_err(|e| Error::KeySet(format!("invalid JWKS: {e}")))?;
                if jwks.is_empty() {
                    Keys::Jwt(None)
                } else {
                    Keys::Jwt(Some(
                        JwtVerifier::from_jwks(&text)
                            .map_err(|e| Error::KeySet(format!("invalid JWKS: {e}")))?,
                    ))
                }
            }
            KeySetFormat::Paseto => {
                let set = PublicKeySet::from_json(&text)
                    .map_err(|e| Error::KeySet(format!("invalid PASERK key set: {e}")))?;
                let invalid =
                    |e: token_paseto::Error| Error::KeySet(format!("invalid PASERK key set: {e}"));
                Keys::Paseto {
                    v4: (!set.v4().is_empty())
                        .then(|| set.verifier_v4())
                        .transpose()
                        .map_err(invalid)?,
                    v3: (!set.v3().is_empty())
                        .then(|| set.verifier_v3())
                        .transpose()
                        .map_err(invalid)?,
                }
            }
        };
        Ok((keys, max_age))
    }
}

fn fetch_error(e: &reqwest::Error) -> Error {
    Error::KeySet(
        if e.is_timeout() {
            "fetch timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else if e.is_body() || e.is_decode() {
            "response body failed"
        } else {
            "request failed"
        }
        .into(),
    )
}

/// The `max-age` of a `Cache-Control` value; `no-store`/`no-cache` count as zero.
fn parse_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = arg
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

/// A key-set failure as token-policy says it: the set cannot be had.
fn unavailable(e: Error) -> token_policy::Error {
    match e {
        Error::StaleKeySet { retry_after } => token_policy::Error::KeySetUnavailable {
            detail: "the cached key set is past its maximum staleness".into(),
            retry_after: Some(retry_after),
        },
        Error::KeySet(detail) => token_policy::Error::KeySetUnavailable {
            detail,
            retry_after: None,
        },
        other => token_policy::Error::KeySetUnavailable {
            detail: other.to_string(),
            retry_after: None,
        },
    }
}

/// A resource server's keys, fetched from the issuer:
/// `ResourceVerifier::with_source(issuer, audience, Arc::new(client))`.
#[async_trait::async_trait]
impl token_policy::AccessKeySource for KeySetClient {
    async fn verify(
        &self,
        token: &str,
        validation: &Validation,
    ) -> token_policy::Result<Verified<token_policy::AccessClaims<token_policy::JsonObject>>> {
        self.verify_keys(token, validation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_max_age("max-age=\"60\""),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=-1"), None);
    }

    #[test]
    fn a_stale_set_is_trusted_for_an_hour_by_default() {
        let url = "https://auth.example/.well-known/paseto-keys.json";
        let builder = KeySetClient::builder(url, KeySetFormat::Paseto);
        assert_eq!(
            builder.map(|b| b.max_staleness).ok(),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn only_http_urls_without_credentials() {
        for bad in [
            "ftp://a/keys",
            "file:///etc/passwd",
            "https://u:p@a/keys",
            "https://a/k#x",
            "nope",
        ] {
            assert!(
                KeySetClient::builder(bad, KeySetFormat::Paseto).is_err(),
                "{bad}"
            );
        }
        assert!(
            KeySetClient::builder(
                "https://auth.example/.well-known/paseto-keys.json",
                KeySetFormat::Paseto
            )
            .is_ok()
        );
    }
}
