//! [`TokenService`]: the flows applications write by hand today, each with the right
//! token type for its job.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use token_core::{
    AsymmetricSigner, Claims, Clock, RegisteredClaim, SystemClock, TokenDecrypter, TokenEncrypter,
    TokenFormat, TokenSigner, Validation, Verified,
};
use token_opaque::{
    ApiKeyInfo, CreatedApiKey, CreatedSession, IssuedOneTime, NewApiKey, OneTimeKind, OpaqueTokens,
    RedeemedOneTime, Session,
};

use crate::api_key_cache::ApiKeyCache;
use crate::blocklist::{Blocklist, MemoryBlocklist};
use crate::error::{Error, Result};
use crate::keys::{AccessKey, AccessVerifier, PaymentKey};
use crate::policy::{Explanation, Job, Policy};
use crate::resource::{JsonObject, ResourceVerifier};
#[cfg(feature = "jwt")]
use crate::services::ServiceAuth;
use crate::shared::Shared;
use crate::telemetry::{self, Credential, Issued, Revoked};

/// How long API-key changes are recorded when the service caches no keys (other
/// processes sharing the blocklist may).
const DEFAULT_API_KEY_CHANGE_HORIZON: Duration = Duration::from_secs(600);

/// The custom claims of an access token: the session (refresh family) id plus the
/// application's own claims, flattened beside the registered ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims<T> {
    /// The login session (refresh-token family) the token belongs to.
    pub sid: String,
    /// The client key the token is bound to (DPoP, RFC 9449; RFC 7800 `cnf`): present
    /// only with a proof by that key. `None`: a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The application's claims (role, tenant, …): readable, so nothing secret.
    #[serde(flatten)]
    pub session: T,
}

/// The key confirmation of a bound token (RFC 7800 `cnf`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 thumbprint of the client's public key (RFC 9449 `jkt`).
    pub jkt: String,
}

/// What a login or a refresh returns.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoginTokens {
    /// The access token (`Authorization: Bearer …`).
    pub access: SecretString,
    /// The refresh token (an `__Host-` HttpOnly cookie, never JavaScript-readable storage).
    pub refresh: SecretString,
    /// The access token's lifetime.
    pub expires_in: Duration,
    /// The login session (refresh family) id.
    pub session_id: String,
    /// The user.
    pub subject: String,
}

/// The implicit assertion binding a payment token to its user.
fn payment_assertion(user: &str) -> Vec<u8> {
    [b"tessera:payment:user:".as_slice(), user.as_bytes()].concat()
}

/// Issues and verifies every job's tokens under one [`Policy`].
///
/// Only the access key is required. A deployment that does not use a job leaves its
/// part out of the builder (the payment key, the opaque store, service tokens), and a
/// call to that job is [`Error::NotConfigured`] naming it: no dummy keys, no panics.
pub struct TokenService {
    policy: Policy,
    /// The signing keys, replaced whole by [`TokenService::install_keys`].
    access: Shared<AccessKey>,
    /// Their public halves, shared with `resource` and replaced with them.
    access_verifier: Arc<Shared<AccessVerifier>>,
    /// The key-set documents of `access_verifier`, built when the keys change.
    documents: Shared<KeySetDocuments>,
    /// The verify side: the same public keys, this service's issuer and audience, and
    /// the blocklist.
    resource: ResourceVerifier,
    payment: Option<Shared<PaymentKey>>,
    opaque: Option<OpaqueTokens>,
    blocklist: Arc<dyn Blocklist>,
    #[cfg(feature = "jwt")]
    services: Option<Shared<ServiceAuth>>,
    clock: Arc<dyn Clock>,
    api_key_cache: Option<ApiKeyCache>,
    /// The latest `iat` this service has signed (Unix seconds): a clock stepped back
    /// reads earlier than tokens already out, and revocations must cover those too.
    issued_up_to: std::sync::atomic::AtomicI64,
}

/// The documents that publish the access keys: the JWK Set (JWT keys) or the PASERK
/// key set (PASETO keys), as served at `/.well-known/jwks.json` and
/// `/.well-known/paseto-keys.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySetDocuments {
    /// The JWK Set, for JWT access keys.
    pub jwks: Option<Arc<str>>,
    /// The PASERK public-key set, for PASETO access keys.
    pub paseto: Option<Arc<str>>,
}

impl KeySetDocuments {
    fn of(verifier: &AccessVerifier) -> Self {
        Self {
            jwks: verifier.jwks_json().map(Arc::from),
            paseto: verifier.paseto_key_set_json().map(Arc::from),
        }
    }
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("policy", &self.policy)
            .field("access", &self.access)
            .field("payment", &self.payment)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenService`].
pub struct TokenServiceBuilder {
    policy: Policy,
    access: AccessKey,
    payment: Option<PaymentKey>,
    opaque: Option<OpaqueTokens>,
    blocklist: Option<Arc<dyn Blocklist>>,
    #[cfg(feature = "jwt")]
    services: Option<ServiceAuth>,
    clock: Arc<dyn Clock>,
    /// The pepper ring of a key snapshot, installed into the opaque tokens at build.
    hasher: Option<token_opaque::TokenHasher>,
    api_key_cache: Option<Duration>,
}

impl TokenServiceBuilder {
    /// Enables payment tokens, encrypted with `key`.
    #[must_use]
    pub fn payment(mut self, key: impl Into<PaymentKey>) -> Self {
        self.payment = Some(key.into());
        self
    }

    /// Enables the opaque jobs — refresh tokens (and so login), API keys, one-time
    /// tokens, sessions — on `tokens`.
    #[must_use]
    pub fn opaque(mut self, tokens: OpaqueTokens) -> Self {
        self.opaque = Some(tokens);
        self
    }

    /// Uses `blocklist` (default: an in-process [`MemoryBlocklist`]).
    #[must_use]
    pub fn blocklist(mut self, blocklist: Arc<dyn Blocklist>) -> Self {
        self.blocklist = Some(blocklist);
        self
    }

    /// Enables service-to-service tokens.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn services(mut self, services: ServiceAuth) -> Self {
        self.services = Some(services);
        self
    }

    /// Reads time from `clock` (default: the system clock). Give the same clock to
    /// the opaque store and the blocklist.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps verified API keys in this process for up to `ttl`, so a warm
    /// verification costs no database read. A key revoked or rolled through this
    /// service ([`TokenService::revoke_api_key`], [`TokenService::roll_api_key`],
    /// [`TokenService::logout_everywhere`]) is dropped here at once and, through the
    /// blocklist, by every process sharing it: at once with a
    /// [`crate::ReplicatedBlocklist`] (within its staleness bound), or at the next
    /// verification with a [`crate::RedisBlocklist`]. Revoke keys through the
    /// service, not through the opaque store directly, or caches keep them for `ttl`.
    #[must_use]
    pub fn cache_api_keys(mut self, ttl: Duration) -> Self {
        self.api_key_cache = Some(ttl);
        self
    }

    /// The service. (An API-key cache whose random salt cannot be drawn is left out:
    /// keys are then read from the store every time.)
    pub fn build(self) -> TokenService {
        let mut policy = self.policy;
        policy.set_formats(
            self.access.format(),
            self.payment.as_ref().map(PaymentKey::format),
        );
        let access_verifier = Arc::new(Shared::new(self.access.verifier()));
        let documents = Shared::new(KeySetDocuments::of(&access_verifier.load()));
        let clock = self.clock;
        let blocklist = self.blocklist.unwrap_or_else(|| {
            Arc::new(MemoryBlocklist::with_capacity(
                crate::blocklist::DEFAULT_CAPACITY,
                clock.clone(),
            ))
        });
        let resource =
            ResourceVerifier::shared(policy.issuer(), policy.audience(), access_verifier.clone())
                .max_lifetime(policy.access_ttl())
                .blocklist(blocklist.clone())
                .clock(clock.clone());
        if let (Some(hasher), Some(opaque)) = (self.hasher, &self.opaque) {
            opaque.replace_hasher(hasher);
        }
        TokenService {
            policy,
            access: Shared::new(self.access),
            access_verifier,
            documents,
            resource,
            payment: self.payment.map(Shared::new),
            opaque: self.opaque,
            blocklist,
            #[cfg(feature = "jwt")]
            services: self.services.map(Shared::new),
            clock,
            api_key_cache: self
                .api_key_cache
                .and_then(|ttl| ApiKeyCache::new(ttl).ok()),
            issued_up_to: std::sync::atomic::AtomicI64::new(0),
        }
    }
}

impl TokenService {
    /// Starts a service from its policy and access signing keys; add the other jobs'
    /// parts on the builder ([`TokenServiceBuilder::payment`],
    /// [`TokenServiceBuilder::opaque`], [`TokenServiceBuilder::services`]).
    pub fn builder(policy: Policy, access: impl Into<AccessKey>) -> TokenServiceBuilder {
        TokenServiceBuilder {
            policy,
            access: access.into(),
            payment: None,
            opaque: None,
            blocklist: None,
            #[cfg(feature = "jwt")]
            services: None,
            clock: Arc::new(SystemClock),
            hasher: None,
            api_key_cache: None,
        }
    }

    /// Starts a service from the keys of a key table: its access keys, its payment
    /// keys (when the plan has them) and its pepper ring (installed into the opaque
    /// tokens given to [`TokenServiceBuilder::opaque`]). Keep them current with
    /// [`crate::keystore::KeyStore::keep_installed`].
    ///
    /// # Errors
    /// [`Error::NotConfigured`] when the snapshot has no access keys.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn builder_with_keys(
        policy: Policy,
        mut keys: crate::keystore::KeySnapshot,
    ) -> Result<TokenServiceBuilder> {
        let mut builder = Self::builder(policy, keys.take_access()?);
        builder.payment = keys.take_payment();
        builder.hasher = keys.take_hasher();
        Ok(builder)
    }

    /// Installs the keys of a newer snapshot of the key table: the access keys (and
    /// with them the verifier and the key-set documents), the payment keys and the
    /// service signing keys when this service has those jobs, and the pepper ring.
    /// Calls in flight finish with the keys they started with.
    ///
    /// # Errors
    /// [`Error::Config`] when the snapshot's access or payment format differs from the
    /// one this service issues; nothing is installed then.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub fn install_keys(&self, mut keys: crate::keystore::KeySnapshot) -> Result<()> {
        let access = keys.take_access()?;
        if access.format() != self.policy.access_format() {
            return Err(Error::Config(format!(
                "the key table's access keys are {}, this service issues {}",
                access.format().describe(),
                self.policy.access_format().describe()
            )));
        }
        let payment = match (&self.payment, keys.take_payment()) {
            (Some(_), Some(p)) if p.format() != self.policy.payment_format() => {
                return Err(Error::Config(format!(
                    "the key table's payment keys are {}, this service issues {}",
                    p.format().describe(),
                    self.policy.payment_format().describe()
                )));
            }
            (Some(slot), Some(p)) => Some((slot, p)),
            _ => None,
        };
        #[cfg(feature = "jwt")]
        let services = match (&self.services, keys.take_service()) {
            (Some(slot), Some(signer)) => Some((slot, slot.load().with_signer(signer)?)),
            _ => None,
        };
        let verifier = access.verifier();
        self.documents.store(KeySetDocuments::of(&verifier));
        self.access_verifier.store(verifier);
        self.access.store(access);
        if let Some((slot, p)) = payment {
            slot.store(p);
        }
        #[cfg(feature = "jwt")]
        if let Some((slot, s)) = services {
            slot.store(s);
        }
        if let (Some(hasher), Some(opaque)) = (keys.take_hasher(), &self.opaque) {
            opaque.replace_hasher(hasher);
        }
        Ok(())
    }

    /// The documents that publish the access keys in force (rebuilt when keys are
    /// installed).
    pub fn key_set_documents(&self) -> Arc<KeySetDocuments> {
        self.documents.load()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The decision matrix with the key ids in use.
    pub fn explain(&self) -> Explanation {
        let mut e = self.policy.explain();
        for row in &mut e.rows {
            row.key_ids = match row.job {
                Job::Access => self.access.load().key_ids(),
                Job::Payment => self
                    .payment
                    .as_ref()
                    .map(|p| p.load().key_ids())
                    .unwrap_or_default(),
                #[cfg(feature = "jwt")]
                Job::ServiceToService => self
                    .services
                    .as_ref()
                    .map(|s| s.load().key_ids())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
        }
        e
    }

    /// The public verifier of access tokens in force (for services that only verify).
    pub fn access_verifier(&self) -> Arc<AccessVerifier> {
        self.access_verifier.load()
    }

    /// The access signing keys in force.
    pub fn access_keys(&self) -> Arc<AccessKey> {
        self.access.load()
    }

    /// The opaque token stores (refresh, API keys, one-time tokens, sessions).
    ///
    /// # Errors
    /// [`Error::NotConfigured`] when the service was built without them.
    pub fn opaque(&self) -> Result<&OpaqueTokens> {
        self.opaque_for(Job::Refresh)
    }

    fn opaque_for(&self, job: Job) -> Result<&OpaqueTokens> {
        self.opaque.as_ref().ok_or(Error::NotConfigured {
            job,
            missing: "an opaque token store (TokenServiceBuilder::opaque)",
        })
    }

    fn payment_key(&self) -> Result<Arc<PaymentKey>> {
        self.payment
            .as_ref()
            .map(Shared::load)
            .ok_or(Error::NotConfigured {
                job: Job::Payment,
                missing: "a payment key (TokenServiceBuilder::payment)",
            })
    }

    /// The blocklist.
    pub fn blocklist(&self) -> &Arc<dyn Blocklist> {
        &self.blocklist
    }

    /// Service-to-service tokens, when enabled.
    #[cfg(feature = "jwt")]
    pub fn services(&self) -> Option<Arc<ServiceAuth>> {
        self.services.as_ref().map(Shared::load)
    }

    /// Signs an access token for `subject` in login session `sid`.
    ///
    /// # Errors
    /// [`Error::SensitiveClaim`] if `session` carries a sensitive-looking claim name;
    /// signing errors.
    pub fn issue_access<T: Serialize>(
        &self,
        subject: &str,
        sid: &str,
        session: &T,
    ) -> Result<SecretString> {
        let token = self.sign_access(subject, sid, session, self.clock.now(), None)?;
        telemetry::issued(Issued::Access);
        event!(debug, subject, sid, "access token issued");
        Ok(token)
    }

    /// When a new access token of `subject` may be stamped as issued: now, or just
    /// after the subject's revocation cut-off when that is this very second (a login
    /// right after "log out everywhere" must not be born revoked).
    async fn issue_time(&self, subject: &str) -> Result<token_core::Timestamp> {
        let now = self.clock.now();
        match self.blocklist.subject_cutoff(subject).await? {
            Some(cutoff) if cutoff >= now => Ok(cutoff.checked_add(Duration::from_secs(1))?),
            _ => Ok(now),
        }
    }

    fn sign_access<T: Serialize>(
        &self,
        subject: &str,
        sid: &str,
        session: &T,
        issued_at: token_core::Timestamp,
        jkt: Option<&str>,
    ) -> Result<SecretString> {
        self.check_readable(session)?;
        let claims = Claims::new(AccessClaims {
            sid: sid.to_owned(),
            cnf: jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
            session,
        })
        .issuer(self.policy.issuer())
        .subject(subject)
        .audience(self.policy.audience())
        .random_token_id()?
        .valid_for(&token_core::FixedClock(issued_at), self.policy.access_ttl())?;
        let token = self.access.load().sign(&claims)?;
        self.issued_up_to.fetch_max(
            issued_at.unix_seconds(),
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(token)
    }

    fn check_readable<T: Serialize>(&self, session: &T) -> Result<()> {
        let value = serde_json::to_value(session)
            .map_err(|e| token_core::Error::InvalidCustomClaims(e.to_string()))?;
        // Every hit, not the first: fixing one should not reveal the next.
        let hits = self.policy.sensitive_claims().find(&value);
        if hits.is_empty() {
            Ok(())
        } else {
            Err(Error::SensitiveClaim(hits))
        }
    }

    /// Login: a new refresh family for `subject` and an access token carrying
    /// `session` (the application's claims, e.g. the role).
    ///
    /// # Errors
    /// [`Error::SensitiveClaim`]; store errors.
    pub async fn login<T: Serialize>(&self, subject: &str, session: &T) -> Result<LoginTokens> {
        telemetry::in_span(
            span!("login", subject),
            self.login_bound(subject, session, None),
        )
        .await
    }

    /// [`TokenService::login`] with a DPoP proof (RFC 9449) verified by
    /// [`TokenService::accept_dpop_proof`]: the access token carries `cnf.jkt`, the
    /// refresh family records the key, and both are useless without it.
    ///
    /// # Errors
    /// As [`TokenService::login`].
    #[cfg(feature = "jwt")]
    pub async fn login_dpop<T: Serialize>(
        &self,
        subject: &str,
        session: &T,
        proof: &token_jwt::dpop::VerifiedProof,
    ) -> Result<LoginTokens> {
        telemetry::in_span(
            span!("login", subject),
            self.login_bound(subject, session, Some(&proof.jkt)),
        )
        .await
    }

    async fn login_bound<T: Serialize>(
        &self,
        subject: &str,
        session: &T,
        jkt: Option<&str>,
    ) -> Result<LoginTokens> {
        self.check_readable(session)?;
        let refresh = self.opaque_for(Job::Refresh)?.refresh();
        let refresh = match jkt {
            Some(jkt) => refresh.issue_bound(subject, jkt).await?,
            None => refresh.issue(subject).await?,
        };
        telemetry::issued(Issued::Refresh);
        let issued_at = self.issue_time(subject).await?;
        let access = self.sign_access(subject, &refresh.family_id, session, issued_at, jkt)?;
        telemetry::issued(Issued::Access);
        event!(
            info,
            subject,
            sid = refresh.family_id.as_str(),
            "login: session started"
        );
        Ok(LoginTokens {
            access,
            refresh: refresh.token,
            expires_in: self.policy.access_ttl(),
            session_id: refresh.family_id,
            subject: subject.to_owned(),
        })
    }

    /// Verifies a bearer access token: format → signature → claims → revocation (its
    /// `jti`, its login session, its subject's cut-off). The same check a
    /// [`ResourceVerifier`] holding this service's public keys and blocklist makes.
    ///
    /// # Errors
    /// [`Error::WrongTokenType`] for another kind of token (an API key, a payment
    /// token, a JWT where PASETO is configured); the format crates' errors; claim errors;
    /// [`Error::Revoked`]; [`Error::Backend`] when revocation cannot be checked.
    pub async fn verify_access<T: DeserializeOwned>(
        &self,
        bearer: &str,
    ) -> Result<Verified<AccessClaims<T>>> {
        self.resource.verify_access(bearer).await
    }

    /// The verify side of this service's access tokens.
    pub fn resource_verifier(&self) -> &ResourceVerifier {
        &self.resource
    }

    /// The later of now and the latest `iat` this service signed: every access token
    /// it minted was issued at or before it, even after the clock stepped back.
    fn issued_before(&self) -> Result<token_core::Timestamp> {
        let now = self.clock.now();
        let latest = self.issued_up_to.load(std::sync::atomic::Ordering::SeqCst);
        Ok(if latest > now.unix_seconds() {
            token_core::Timestamp::from_unix_seconds(latest)?
        } else {
            now
        })
    }

    /// Until when a session revocation must last: every access token minted so far
    /// is refused by then as expired — its expiry plus the leeway verification allows
    /// (a revocation that ended at the bare expiry would let the token through again
    /// for the leeway), counted from [`TokenService::issued_before`] so a clock stepped
    /// back does not cut it short.
    fn access_horizon(&self) -> Result<token_core::Timestamp> {
        Ok(self
            .issued_before()?
            .checked_add(self.policy.access_ttl())?
            .checked_add(token_core::DEFAULT_LEEWAY)?)
    }

    /// Refresh: rotates `refresh_token` (a replay revokes the whole family, and every
    /// access token minted from it) and signs a new access token with the claims
    /// `session` gives for the user.
    ///
    /// Every fallible step runs before the rotation commits: the access token is signed
    /// first, so a failure leaves the presented token unused and the client's retry
    /// works instead of tripping reuse detection.
    ///
    /// # Errors
    /// The opaque crate's `ReuseDetected`, `NotFound`, expiry errors; signing errors;
    /// [`Error::Backend`].
    pub async fn refresh<T: Serialize>(
        &self,
        refresh_token: &str,
        session: impl FnOnce(&str) -> T,
    ) -> Result<LoginTokens> {
        self.refresh_with(refresh_token, |user: String| {
            std::future::ready(session(&user))
        })
        .await
    }

    /// [`TokenService::refresh`] whose claims come from an asynchronous lookup (the
    /// user's current role in a database, say), given the user id. The lookup runs
    /// before the rotation commits, like every other fallible step.
    ///
    /// # Errors
    /// As [`TokenService::refresh`].
    pub async fn refresh_with<T, F, Fut>(
        &self,
        refresh_token: &str,
        session: F,
    ) -> Result<LoginTokens>
    where
        T: Serialize,
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.refresh_counted(refresh_token, session, None).await
    }

    /// [`TokenService::refresh_with`] with a DPoP proof verified by
    /// [`TokenService::accept_dpop_proof`]: a bound family rotates only with a proof by
    /// its key, and the new access token is bound to the proof's key.
    ///
    /// # Errors
    /// As [`TokenService::refresh_with`]; [`Error::SenderConstrained`] when the family
    /// is bound to another key.
    #[cfg(feature = "jwt")]
    pub async fn refresh_dpop<T, F, Fut>(
        &self,
        refresh_token: &str,
        proof: &token_jwt::dpop::VerifiedProof,
        session: F,
    ) -> Result<LoginTokens>
    where
        T: Serialize,
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.refresh_counted(refresh_token, session, Some(&proof.jkt))
            .await
    }

    async fn refresh_counted<T, F, Fut>(
        &self,
        refresh_token: &str,
        session: F,
        jkt: Option<&str>,
    ) -> Result<LoginTokens>
    where
        T: Serialize,
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let result = telemetry::in_span(
            span!("refresh"),
            self.refresh_bound(refresh_token, session, jkt),
        )
        .await;
        match &result {
            Ok(_) => telemetry::refreshed(None),
            Err(e) => {
                let reason = e.reason();
                telemetry::refreshed(Some(reason));
                event!(debug, reason = reason.as_str(), "refresh refused");
            }
        }
        result
    }

    async fn refresh_bound<T, F, Fut>(
        &self,
        refresh_token: &str,
        session: F,
        jkt: Option<&str>,
    ) -> Result<LoginTokens>
    where
        T: Serialize,
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let refresh = self.opaque_for(Job::Refresh)?.refresh();
        let family = refresh.family_of(refresh_token).await?;
        // A bound family rotates only with a proof by its key: a stolen refresh
        // token is useless alone. Checked before anything is signed or rotated.
        if let Some(bound) = &family.jkt {
            if jkt != Some(bound.as_str()) {
                return Err(Error::SenderConstrained);
            }
        }
        let claims = session(family.user_id.clone()).await;
        let issued_at = self.issue_time(&family.user_id).await?;
        let access = self.sign_access(&family.user_id, &family.id, &claims, issued_at, jkt)?;
        let rotated = match refresh.rotate(refresh_token).await {
            Ok(rotated) => rotated,
            Err(token_opaque::Error::ReuseDetected) => {
                // The store revoked the family; the access tokens it minted (the
                // thief's included) end with it.
                telemetry::reuse_detected();
                event!(
                    warn,
                    subject = family.user_id.as_str(),
                    sid = family.id.as_str(),
                    "refresh token reuse detected: session revoked"
                );
                self.blocklist
                    .revoke_session(&family.id, self.access_horizon()?)
                    .await?;
                telemetry::revoked(Revoked::Session);
                return Err(token_opaque::Error::ReuseDetected.into());
            }
            Err(e) => return Err(e.into()),
        };
        if rotated.family_id != family.id || rotated.user_id != family.user_id {
            return Err(token_opaque::Error::Integrity("a rotation changed families").into());
        }
        telemetry::issued(Issued::Refresh);
        telemetry::issued(Issued::Access);
        event!(
            info,
            subject = rotated.user_id.as_str(),
            sid = rotated.family_id.as_str(),
            "refresh token rotated"
        );
        Ok(LoginTokens {
            access,
            refresh: rotated.token,
            expires_in: self.policy.access_ttl(),
            session_id: rotated.family_id,
            subject: rotated.user_id,
        })
    }

    /// Checks a DPoP proof at the token endpoint (login, refresh) and remembers its
    /// `jti` (see [`ResourceVerifier::accept_dpop_proof`]); give the result to
    /// [`TokenService::login_dpop`] or [`TokenService::refresh_dpop`].
    ///
    /// # Errors
    /// [`Error::Dpop`]; revocation-list errors.
    #[cfg(feature = "jwt")]
    pub async fn accept_dpop_proof(
        &self,
        proof: &str,
        request: &crate::DpopRequestLine<'_>,
    ) -> Result<token_jwt::dpop::VerifiedProof> {
        self.resource
            .accept_dpop_proof(
                proof,
                &token_jwt::dpop::DpopRequest {
                    method: request.method,
                    uri: request.uri,
                    access_token: None,
                    nonce: request.nonce,
                },
            )
            .await
    }

    /// Verifies a DPoP-bound access token with its proof (see
    /// [`ResourceVerifier::verify_access_dpop`]).
    ///
    /// # Errors
    /// As [`ResourceVerifier::verify_access_dpop`].
    #[cfg(feature = "jwt")]
    pub async fn verify_access_dpop<T: DeserializeOwned>(
        &self,
        token: &str,
        proof: &str,
        request: &crate::DpopRequestLine<'_>,
    ) -> Result<Verified<AccessClaims<T>>> {
        Ok(self
            .resource
            .verify_access_dpop(token, proof, request)
            .await?
            .0)
    }

    /// Logout: ends the login session of `access` and the refresh family of `refresh`
    /// (either may be empty). Each session's access tokens are revoked first, then its
    /// refresh family, so a failure is reported before anything claims success and
    /// never leaves an access token live behind a revoked refresh token. A credential
    /// that no longer verifies (expired, malformed, unknown) needs no revocation.
    ///
    /// # Errors
    /// [`Error::WrongTokenType`] (or the opaque crate's `WrongKind`) when a credential
    /// is another kind of token, such as a refresh token or an API key given as the
    /// access token: nothing is revoked. Store and blocklist errors
    /// ([`Error::Backend`], [`Error::BlocklistFull`], the opaque crate's `Database`):
    /// the logout did not happen and may be retried.
    pub async fn logout(&self, access: &str, refresh: &str) -> Result<()> {
        telemetry::in_span(span!("logout"), self.end_sessions(access, refresh)).await
    }

    async fn end_sessions(&self, access: &str, refresh: &str) -> Result<()> {
        let mut sessions: Vec<(String, String)> = Vec::with_capacity(2);
        if !access.is_empty() {
            match self.resource.authenticate::<JsonObject>(access) {
                Ok(verified) => {
                    let claims = verified.into_claims();
                    if let Some(sub) = claims.sub {
                        sessions.push((sub, claims.custom.sid));
                    }
                }
                // Another kind of credential (a refresh token, an API key) is a
                // mistake to report, not an expired token to shrug off.
                Err(e @ Error::WrongTokenType { .. }) => return Err(e),
                Err(_) => {}
            }
        }
        if !refresh.is_empty() {
            // A signed or encrypted token where the refresh token belongs is a mistake
            // too (an opaque token of another kind is the opaque crate's WrongKind).
            if let Ok(found @ (TokenFormat::Paseto { .. } | TokenFormat::Jws | TokenFormat::Jwe)) =
                TokenFormat::detect(refresh)
            {
                return Err(Error::WrongTokenType {
                    job: Job::Refresh,
                    found,
                });
            }
            match self
                .opaque_for(Job::Refresh)?
                .refresh()
                .family_of(refresh)
                .await
            {
                Ok(family) => {
                    if !sessions.iter().any(|(_, sid)| *sid == family.id) {
                        sessions.push((family.user_id, family.id));
                    }
                }
                Err(e @ token_opaque::Error::WrongKind { .. }) => return Err(e.into()),
                Err(e) if is_unusable(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for (subject, sid) in &sessions {
            self.revoke_session(subject, sid).await?;
        }
        Ok(())
    }

    /// Ends login session `sid` of `subject` ("log out that device"): every access
    /// token minted from it is refused at once, then its refresh family is revoked.
    /// Returns whether a live refresh family was revoked.
    ///
    /// # Errors
    /// Blocklist and store errors.
    pub async fn revoke_session(&self, subject: &str, sid: &str) -> Result<bool> {
        self.blocklist
            .revoke_session(sid, self.access_horizon()?)
            .await?;
        telemetry::revoked(Revoked::Session);
        event!(info, subject, sid, "session revoked");
        match &self.opaque {
            Some(opaque) => Ok(opaque.refresh().revoke_family(subject, sid).await?),
            None => Ok(false),
        }
    }

    /// Revokes one access token by id until `expires_at` (its expiry) and the leeway
    /// verification allows past it.
    ///
    /// # Errors
    /// Blocklist errors.
    pub async fn revoke_access(&self, jti: &str, expires_at: token_core::Timestamp) -> Result<()> {
        // Kept through the leeway verification allows past the expiry.
        let until = expires_at.checked_add(token_core::DEFAULT_LEEWAY)?;
        self.blocklist.revoke(jti, until).await?;
        telemetry::revoked(Revoked::Token);
        event!(info, jti, "access token revoked");
        Ok(())
    }

    /// Log out everywhere, for a credential change (password reset, compromise): every
    /// access token issued until now is refused, then every refresh family, session,
    /// one-time token **and API key** of `subject` ends. An attacker who briefly held
    /// the account keeps nothing. Applications whose API keys must survive a password
    /// change say so with [`TokenService::logout_everywhere_keeping_api_keys`].
    ///
    /// # Errors
    /// Store and blocklist errors: some credentials may remain; retrying is safe.
    pub async fn logout_everywhere(&self, subject: &str) -> Result<()> {
        self.revoke_credentials(subject, true).await
    }

    /// [`TokenService::logout_everywhere`] that leaves the subject's API keys alive:
    /// the explicit opt-out for applications whose keys belong to an organisation
    /// rather than to the person whose password changed.
    ///
    /// # Errors
    /// Store and blocklist errors.
    pub async fn logout_everywhere_keeping_api_keys(&self, subject: &str) -> Result<()> {
        self.revoke_credentials(subject, false).await
    }

    async fn revoke_credentials(&self, subject: &str, api_keys: bool) -> Result<()> {
        telemetry::in_span(
            span!("logout_everywhere", subject, api_keys),
            self.revoke_subject(subject, api_keys),
        )
        .await
    }

    async fn revoke_subject(&self, subject: &str, api_keys: bool) -> Result<()> {
        // Every token issued so far, even one stamped later than a clock stepped back.
        let now = self.issued_before()?;
        self.blocklist
            .revoke_subject_before(subject, now, self.access_horizon()?)
            .await?;
        telemetry::revoked(Revoked::Subject);
        event!(info, subject, "every access token of the subject revoked");
        if let Some(opaque) = &self.opaque {
            opaque.revoke_user(subject).await?;
            if api_keys {
                opaque.api_keys().revoke_all(subject).await?;
                self.api_key_changed(subject, None).await?;
            }
        }
        Ok(())
    }

    /// A payment token for `user`: encrypted, bound to the user, short-lived.
    ///
    /// # Errors
    /// Encryption errors.
    pub fn issue_payment<T: Serialize>(&self, payload: T, user: &str) -> Result<SecretString> {
        let claims = Claims::new(payload)
            .issuer(self.policy.issuer())
            .subject(user)
            .random_token_id()?
            .valid_for(self.clock.as_ref(), self.policy.payment_ttl())?;
        self.payment_key()?
            .encrypt(&claims, &payment_assertion(user))
    }

    /// Consumes a payment token in `user`'s session: decrypts it under `user`'s
    /// implicit assertion (another user's session gets an opaque cryptographic
    /// failure), checks its lifetime, and marks it used (a single-use mark, apart from
    /// revocations and bounded per user) so it is used once.
    ///
    /// # Errors
    /// [`Error::WrongTokenType`]; an invalid-token error for another user;
    /// claim errors; [`Error::AlreadyUsed`]; [`Error::SingleUseLimit`].
    pub async fn consume_payment<T: DeserializeOwned>(&self, token: &str, user: &str) -> Result<T> {
        let format = TokenFormat::detect(token)?;
        if !matches!(
            format,
            TokenFormat::Paseto {
                purpose: token_core::PasetoPurpose::Local,
                ..
            }
        ) {
            return Err(Error::WrongTokenType {
                job: Job::Payment,
                found: format,
            });
        }
        let validation = Validation::new()
            .issuer(self.policy.issuer())
            .subject(user)
            .max_lifetime(self.policy.payment_ttl())
            .require(RegisteredClaim::Jti)
            .shared_clock(self.clock.clone());
        let verified =
            self.payment_key()?
                .decrypt::<T>(token, &payment_assertion(user), &validation)?;
        let claims = verified.into_claims();
        if let (Some(jti), Some(exp)) = (&claims.jti, claims.exp) {
            if !self.blocklist.consume(user, jti, exp).await? {
                return Err(Error::AlreadyUsed);
            }
        }
        Ok(claims.custom)
    }

    /// Creates an API key (the raw key is in the result, shown once).
    ///
    /// # Errors
    /// Store errors.
    pub async fn issue_api_key(&self, new: NewApiKey) -> Result<CreatedApiKey> {
        let created = self.opaque_for(Job::ApiKey)?.api_keys().create(new).await?;
        telemetry::issued(Issued::ApiKey);
        event!(
            info,
            owner = created.info.owner_id.as_str(),
            api_key_id = created.info.id.as_str(),
            "API key issued"
        );
        Ok(created)
    }

    /// Verifies an API key.
    ///
    /// # Errors
    /// [`Error::WrongTokenType`] for a token that is not an API key; the opaque crate's
    /// errors (malformed, checksum, unknown, revoked, expired).
    pub async fn verify_api_key(&self, raw: &str) -> Result<ApiKeyInfo> {
        let result = self.check_api_key(raw).await;
        telemetry::verified(Credential::ApiKey, result.as_ref().err().map(Error::reason));
        result
    }

    async fn check_api_key(&self, raw: &str) -> Result<ApiKeyInfo> {
        let opaque = self.opaque_for(Job::ApiKey)?;
        let Some(cache) = &self.api_key_cache else {
            return Ok(opaque.api_keys().verify(raw).await?);
        };
        let key = cache.key(raw);
        if let Some((info, loaded_at)) = cache.get(&key) {
            let now = self.clock.now();
            if info.expires_at.is_some_and(|e| e <= now) {
                cache.forget(&key);
                return Err(token_opaque::Error::Expired.into());
            }
            if !self.changed_since(&info, loaded_at).await? {
                return Ok(info);
            }
            cache.forget(&key);
        }
        let loaded_at = self.clock.now();
        let info = opaque.api_keys().verify(raw).await?;
        if !self.changed_since(&info, loaded_at).await? {
            cache.put(key, info.clone(), loaded_at);
        }
        Ok(info)
    }

    /// Whether the key, or its owner's keys, changed at or after `loaded_at`.
    async fn changed_since(
        &self,
        info: &ApiKeyInfo,
        loaded_at: token_core::Timestamp,
    ) -> Result<bool> {
        Ok(self
            .blocklist
            .api_key_changed_at(&info.owner_id, &info.id)
            .await?
            .is_some_and(|t| t >= loaded_at))
    }

    /// Records that key `id` of `owner` (every key of `owner` for `None`) changed now:
    /// dropped from this process's cache, and from every other's through the
    /// blocklist.
    async fn api_key_changed(&self, owner: &str, id: Option<&str>) -> Result<()> {
        let ttl = self
            .api_key_cache
            .as_ref()
            .map_or(DEFAULT_API_KEY_CHANGE_HORIZON, ApiKeyCache::ttl);
        if let Some(cache) = &self.api_key_cache {
            cache.forget_changed(owner, id);
        }
        let now = self.clock.now();
        let keep_until = now.checked_add(ttl + token_core::DEFAULT_LEEWAY)?;
        self.blocklist
            .api_key_changed(owner, id, now, keep_until)
            .await
    }

    /// Revokes API key `id` of `owner` (in the store first, then in every process's
    /// cache). `false` if there was no such live key.
    ///
    /// # Errors
    /// Store errors; blocklist errors after the store revoked the key (the key is
    /// revoked; caches may keep it until their time to live: retry).
    pub async fn revoke_api_key(&self, owner: &str, id: &str) -> Result<bool> {
        let revoked = self
            .opaque_for(Job::ApiKey)?
            .api_keys()
            .revoke(owner, id)
            .await?;
        self.api_key_changed(owner, Some(id)).await?;
        if revoked {
            telemetry::revoked(Revoked::ApiKey);
            event!(info, owner, api_key_id = id, "API key revoked");
        }
        Ok(revoked)
    }

    /// Rolls API key `id` of `owner`: a new key, the old one valid for `overlap` more
    /// (then dropped from every cache as from the store).
    ///
    /// # Errors
    /// As [`TokenService::revoke_api_key`].
    pub async fn roll_api_key(
        &self,
        owner: &str,
        id: &str,
        overlap: Duration,
    ) -> Result<token_opaque::RolledApiKey> {
        let rolled = self
            .opaque_for(Job::ApiKey)?
            .api_keys()
            .roll(owner, id, overlap)
            .await?;
        self.api_key_changed(owner, Some(id)).await?;
        telemetry::issued(Issued::ApiKey);
        event!(
            info,
            owner,
            api_key_id = id,
            replaced_by = rolled.info.id.as_str(),
            "API key rolled"
        );
        Ok(rolled)
    }

    /// Issues a one-time token (email verification or password reset), rate-limited.
    ///
    /// # Errors
    /// The opaque crate's `RateLimited`, store errors.
    pub async fn issue_one_time(&self, kind: OneTimeKind, user: &str) -> Result<IssuedOneTime> {
        Ok(self
            .opaque_for(one_time_job(kind))?
            .one_time()
            .issue(kind, user, None)
            .await?)
    }

    /// Redeems a one-time token: single use, even under concurrent use.
    ///
    /// # Errors
    /// The opaque crate's errors.
    pub async fn redeem_one_time(&self, kind: OneTimeKind, raw: &str) -> Result<RedeemedOneTime> {
        Ok(self
            .opaque_for(one_time_job(kind))?
            .one_time()
            .redeem(kind, raw)
            .await?)
    }

    /// Starts a server-side session for `user` with `data`; the raw session id goes in
    /// an `__Host-` HttpOnly Secure cookie (see [`token_opaque::SessionCookie`]).
    ///
    /// # Errors
    /// Store errors.
    pub async fn create_session(
        &self,
        user: &str,
        data: serde_json::Value,
    ) -> Result<CreatedSession> {
        Ok(self
            .opaque_for(Job::Session)?
            .sessions()
            .create(user, data)
            .await?)
    }

    /// Loads the session a cookie names (sliding its idle expiry).
    ///
    /// # Errors
    /// The opaque crate's errors (malformed, unknown, expired, revoked).
    pub async fn load_session(&self, raw: &str) -> Result<Session> {
        let result = match self.opaque_for(Job::Session) {
            Ok(opaque) => opaque.sessions().load(raw).await.map_err(Error::from),
            Err(e) => Err(e),
        };
        telemetry::verified(
            Credential::Session,
            result.as_ref().err().map(Error::reason),
        );
        result
    }

    /// A service token for `target` (its own `aud`).
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] when service tokens are not configured; signing errors.
    #[cfg(feature = "jwt")]
    pub fn service_token(&self, target: &str) -> Result<SecretString> {
        self.services()
            .ok_or_else(|| {
                Error::InvalidPolicy("service-to-service tokens are not configured".into())
            })?
            .issue(target, self.policy.service_ttl(), self.clock.as_ref())
    }

    /// Verifies a service token addressed to this service.
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] when not configured; JWT and claim errors.
    #[cfg(feature = "jwt")]
    pub fn verify_service_token(&self, token: &str) -> Result<Verified<()>> {
        self.services()
            .ok_or_else(|| {
                Error::InvalidPolicy("service-to-service tokens are not configured".into())
            })?
            .verify(token, self.policy.service_ttl(), self.clock.clone())
    }
}

fn one_time_job(kind: OneTimeKind) -> Job {
    match kind {
        OneTimeKind::PasswordReset => Job::PasswordReset,
        OneTimeKind::EmailVerification => Job::EmailVerification,
    }
}

/// Whether an opaque-store error says the token itself is unusable (nothing to revoke),
/// rather than that the store failed.
fn is_unusable(e: &token_opaque::Error) -> bool {
    use token_opaque::Error as O;
    matches!(
        e,
        O::Malformed(_)
            | O::BadChecksum
            | O::WrongKind { .. }
            | O::NotFound
            | O::Expired
            | O::Revoked
            | O::InvalidInput(_)
    )
}
