//! [`ResourceVerifier`]: the verify side of access tokens, for services that only
//! verify (resource servers). It holds public keys only — given once (a PASERK public
//! key, a PASETO key set, a JWKS) or fetched from the issuer (any [`AccessKeySource`],
//! such as token-axum's `KeySetClient`) — and, optionally, the revocation list the
//! issuer writes to. No signing key, no payment key, no store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use token_core::{
    Clock, RegisteredClaim, SystemClock, TokenFormat, TokenVerifier, Validation, Verified,
};
#[cfg(feature = "jwt")]
use token_jwt::JwtVerifier;
use token_paseto::{PublicKey, PublicKeySet, PublicVerifier, V3, V4};

use crate::blocklist::{Blocklist, TokenRef};
use crate::error::{Error, Result};
use crate::keys::AccessVerifier;
use crate::policy::{Job, MAX_ACCESS_TTL};
use crate::service::AccessClaims;
use crate::shared::Shared;
use crate::telemetry;

/// The request a DPoP proof must match, as the server saw it: the method and the
/// absolute URI the client addressed (behind a proxy, built from the configured public
/// origin), and the nonce the server expects when it requires one.
#[derive(Clone, Copy, Debug)]
pub struct DpopRequestLine<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The absolute request URI.
    pub uri: &'a str,
    /// The nonce the server expects, when it requires one.
    pub nonce: Option<&'a str>,
}

/// How many proofs' `jti`s an in-process replay set holds per client key.
#[cfg(feature = "jwt")]
const DPOP_REPLAY_CAPACITY: usize = 100_000;

/// The in-process set of proofs' `jti`s, bounded in total and per client key.
#[cfg(feature = "jwt")]
fn dpop_replay(clock: Arc<dyn Clock>) -> Arc<dyn Blocklist> {
    Arc::new(
        crate::blocklist::MemoryBlocklist::with_capacity(DPOP_REPLAY_CAPACITY, clock)
            .single_use_per_subject(DPOP_REPLAY_CAPACITY),
    )
}

#[cfg(feature = "jwt")]
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A JSON object: the claims of a token whose shape the verifier does not know.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Where a verify-only service finds the public keys of access tokens when they are
/// not given once: a key set fetched from the issuer and refetched as it rotates.
///
/// Asynchronous because finding the keys may take a fetch; the signature check itself
/// is synchronous in every implementation.
#[async_trait]
pub trait AccessKeySource: Send + Sync + fmt::Debug {
    /// Authenticates `token` under the source's keys, then applies `validation`.
    ///
    /// # Errors
    /// The format crates' errors (unknown key, bad signature, …), claim errors, and
    /// [`Error::KeySetUnavailable`] when no usable key set can be had.
    async fn verify(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<AccessClaims<JsonObject>>>;
}

#[async_trait]
impl AccessKeySource for AccessVerifier {
    async fn verify(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<Verified<AccessClaims<JsonObject>>> {
        check_format(self, token)?;
        TokenVerifier::verify(self, token, validation)
    }
}

fn check_format(keys: &AccessVerifier, token: &str) -> Result<()> {
    let format = TokenFormat::detect(token)?;
    if keys.accepts(&format) {
        Ok(())
    } else {
        Err(Error::WrongTokenType {
            job: Job::Access,
            found: format,
        })
    }
}

enum Keys {
    /// Given once, or installed by the issuing service as its keys change.
    Given(Arc<Shared<AccessVerifier>>),
    Source(Arc<dyn AccessKeySource>),
}

/// Verifies access tokens holding public keys only: format → signature → claims
/// (issuer, audience, lifetime at most the access limit, `sub` and `jti` required,
/// `typ: at+jwt` for JWTs) → revocation (its `jti`, its login session, its subject's
/// cut-off) when a revocation list is given.
///
/// ```
/// use token_paseto::{PublicIssuer, SecretKey, V4};
/// use token_policy::ResourceVerifier;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The issuer publishes its public key (or key set); the resource server holds only that.
/// let issuer = PublicIssuer::new(SecretKey::<V4>::generate()?);
/// let public = issuer.verifier();
/// let api = ResourceVerifier::new("https://auth.example", "api", public);
/// # let _ = api;
/// # Ok(())
/// # }
/// ```
pub struct ResourceVerifier {
    keys: Keys,
    /// DPoP proof rules.
    #[cfg(feature = "jwt")]
    dpop: token_jwt::dpop::DpopVerifier,
    /// Proofs' `jti`s, when no revocation list is given to hold them.
    #[cfg(feature = "jwt")]
    dpop_replay: Arc<dyn Blocklist>,
    issuer: String,
    audience: String,
    max_lifetime: Duration,
    blocklist: Option<Arc<dyn Blocklist>>,
    clock: Arc<dyn Clock>,
    /// Built from the fields above whenever one changes, not on every verification.
    validation: Validation,
}

impl fmt::Debug for ResourceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: &dyn fmt::Debug = match &self.keys {
            Keys::Given(k) => k,
            Keys::Source(s) => s,
        };
        f.debug_struct("ResourceVerifier")
            .field("keys", keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("max_lifetime", &self.max_lifetime)
            .field("revocation", &self.blocklist.is_some())
            .finish_non_exhaustive()
    }
}

impl ResourceVerifier {
    /// Verifies tokens of `issuer` for `audience` with `keys`, given once.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: impl Into<AccessVerifier>,
    ) -> Self {
        Self::with_keys(
            issuer.into(),
            audience.into(),
            Keys::Given(Arc::new(Shared::new(keys.into()))),
        )
    }

    /// Verifies tokens of `issuer` for `audience` with the keys `source` finds (a key
    /// set fetched from the issuer, for example).
    pub fn with_source(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        source: Arc<dyn AccessKeySource>,
    ) -> Self {
        Self::with_keys(issuer.into(), audience.into(), Keys::Source(source))
    }

    /// Verifies with the keys in `keys`, which the issuing service replaces as they
    /// rotate.
    pub(crate) fn shared(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Arc<Shared<AccessVerifier>>,
    ) -> Self {
        Self::with_keys(issuer.into(), audience.into(), Keys::Given(keys))
    }

    fn with_keys(issuer: String, audience: String, keys: Keys) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self {
            keys,
            #[cfg(feature = "jwt")]
            dpop: token_jwt::dpop::DpopVerifier::new(),
            #[cfg(feature = "jwt")]
            dpop_replay: dpop_replay(clock.clone()),
            validation: rules(&issuer, &audience, MAX_ACCESS_TTL, clock.clone()),
            issuer,
            audience,
            max_lifetime: MAX_ACCESS_TTL,
            blocklist: None,
            clock,
        }
    }

    /// From one public key as a PASERK (`k4.public.…` or `k3.public.…`).
    ///
    /// # Errors
    /// The PASERK's errors; [`Error::Config`] for another kind of PASERK.
    pub fn from_public_paserk(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        paserk: &str,
    ) -> Result<Self> {
        let keys = if paserk.starts_with("k4.public.") {
            AccessVerifier::PasetoV4(PublicVerifier::new(PublicKey::<V4>::from_paserk(paserk)?))
        } else if paserk.starts_with("k3.public.") {
            AccessVerifier::PasetoV3(PublicVerifier::new(PublicKey::<V3>::from_paserk(paserk)?))
        } else {
            return Err(Error::Config(
                "an access-token verifying key is a k4.public or k3.public PASERK".into(),
            ));
        };
        Ok(Self::new(issuer, audience, keys))
    }

    /// From a PASETO public-key set (the issuer's `/.well-known/paseto-keys.json`): its
    /// v4 keys, or its v3 keys when it has no v4 key.
    ///
    /// # Errors
    /// The set's errors; [`Error::Config`] for a set without keys.
    pub fn from_paseto_key_set(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        json: &str,
    ) -> Result<Self> {
        let set = PublicKeySet::from_json(json)?;
        let keys = if !set.v4().is_empty() {
            AccessVerifier::PasetoV4(set.verifier_v4()?)
        } else if !set.v3().is_empty() {
            AccessVerifier::PasetoV3(set.verifier_v3()?)
        } else {
            return Err(Error::Config("the PASETO key set holds no key".into()));
        };
        Ok(Self::new(issuer, audience, keys))
    }

    /// From a JWK Set (the issuer's `/.well-known/jwks.json`); each key pins its own
    /// algorithm.
    ///
    /// # Errors
    /// The JWKS's errors.
    #[cfg(feature = "jwt")]
    pub fn from_jwks(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        json: &str,
    ) -> Result<Self> {
        Ok(Self::new(
            issuer,
            audience,
            AccessVerifier::Jwt(JwtVerifier::from_jwks(json)?),
        ))
    }

    /// Checks revocation against `blocklist` (the list the issuer writes to: the same
    /// Redis, for a fleet). Without one, revoked tokens are accepted until they expire.
    #[must_use]
    pub fn blocklist(mut self, blocklist: Arc<dyn Blocklist>) -> Self {
        self.blocklist = Some(blocklist);
        self
    }

    /// The longest lifetime accepted (default: the access limit, 15 minutes).
    #[must_use]
    pub fn max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self.rebuild()
    }

    /// Reads time from `clock` (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        #[cfg(feature = "jwt")]
        {
            self.dpop_replay = dpop_replay(clock.clone());
        }
        self.clock = clock;
        self.rebuild()
    }

    fn rebuild(mut self) -> Self {
        self.validation = rules(
            &self.issuer,
            &self.audience,
            self.max_lifetime,
            self.clock.clone(),
        );
        self
    }

    /// The issuer whose tokens are accepted.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience tokens must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The keys in force, when they were given (not for a key source).
    pub fn keys(&self) -> Option<Arc<AccessVerifier>> {
        match &self.keys {
            Keys::Given(k) => Some(k.load()),
            Keys::Source(_) => None,
        }
    }

    /// The revocation list, when one was given.
    pub fn revocation(&self) -> Option<&Arc<dyn Blocklist>> {
        self.blocklist.as_ref()
    }

    /// Verifies a bearer access token: format → signature → claims → revocation.
    ///
    /// # Errors
    /// [`Error::WrongTokenType`] for another kind of token; the format crates' errors;
    /// claim errors; [`Error::Revoked`]; [`Error::Backend`] when revocation cannot be
    /// checked; [`Error::KeySetUnavailable`] when a key source has no usable keys.
    pub async fn verify_access<T: DeserializeOwned>(
        &self,
        bearer: &str,
    ) -> Result<Verified<AccessClaims<T>>> {
        let result = async {
            let verified = self.verify_any(bearer).await?;
            // A token bound to a key is useless without a proof by that key.
            if verified.claims().custom.cnf.is_some() {
                return Err(Error::SenderConstrained);
            }
            Ok(verified)
        }
        .await;
        telemetry::verified(
            telemetry::Credential::AccessToken,
            result.as_ref().err().map(Error::reason),
        );
        result
    }

    /// Verifies a DPoP-bound access token (`Authorization: DPoP …`) with its proof
    /// (the `DPoP` header) for `request`: the proof passes every check of RFC 9449
    /// section 4.3 (its `ath` the hash of this token), its `jti` was not seen before
    /// within the window (the revocation list's single-use marks, shared by a fleet;
    /// an in-process set without one), then the token as [`ResourceVerifier::verify_access`]
    /// does, and its `cnf.jkt` must be the proof's key.
    ///
    /// # Errors
    /// [`Error::Dpop`] for the proof (a replay is [`token_jwt::dpop::DpopError::Replayed`]);
    /// [`Error::SenderConstrained`] for a token bound to another key or to none; as
    /// [`ResourceVerifier::verify_access`] for the token.
    #[cfg(feature = "jwt")]
    pub async fn verify_access_dpop<T: DeserializeOwned>(
        &self,
        token: &str,
        proof: &str,
        request: &DpopRequestLine<'_>,
    ) -> Result<(Verified<AccessClaims<T>>, token_jwt::dpop::VerifiedProof)> {
        let proof = self
            .accept_dpop_proof(
                proof,
                &token_jwt::dpop::DpopRequest {
                    method: request.method,
                    uri: request.uri,
                    access_token: Some(token),
                    nonce: request.nonce,
                },
            )
            .await?;
        let result = match self.verify_any::<T>(token).await {
            Ok(verified) => match &verified.claims().custom.cnf {
                Some(cnf) if cnf.jkt == proof.jkt => Ok((verified, proof)),
                _ => Err(Error::SenderConstrained),
            },
            Err(e) => Err(e),
        };
        telemetry::verified(
            telemetry::Credential::AccessToken,
            result.as_ref().err().map(Error::reason),
        );
        result
    }

    /// Checks a DPoP proof for `request` and remembers its `jti` for the replay
    /// window: the token endpoint's check (no access token yet), and the first half of
    /// [`ResourceVerifier::verify_access_dpop`].
    ///
    /// # Errors
    /// [`Error::Dpop`]; revocation-list errors for the replay check.
    #[cfg(feature = "jwt")]
    pub async fn accept_dpop_proof(
        &self,
        proof: &str,
        request: &token_jwt::dpop::DpopRequest<'_>,
    ) -> Result<token_jwt::dpop::VerifiedProof> {
        let now = self.clock.now();
        let verified = self.dpop.verify(proof, request, now)?;
        let until = verified
            .iat
            .checked_add(self.dpop.replay_window() + Duration::from_secs(1))?;
        let replay = self.blocklist.as_ref().unwrap_or(&self.dpop_replay);
        // A proof's jti is unique for its key: marked under both, so one client's
        // jti never burns another's, whatever its length.
        let mark = {
            use sha2::Digest as _;
            let digest = sha2::Sha256::new()
                .chain_update(verified.jkt.as_bytes())
                .chain_update([0])
                .chain_update(verified.jti.as_bytes())
                .finalize();
            format!("dpop:{}", hex(&digest))
        };
        if !replay
            .consume(&format!("dpop:{}", verified.jkt), &mark, until)
            .await?
        {
            return Err(token_jwt::dpop::DpopError::Replayed.into());
        }
        Ok(verified)
    }

    /// Uses `verifier` for DPoP proofs (default: ES256 and EdDSA, a 60-second window).
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn dpop(mut self, verifier: token_jwt::dpop::DpopVerifier) -> Self {
        self.dpop = verifier;
        self
    }

    /// The DPoP proof rules in force (for `dpop_signing_alg_values_supported`).
    #[cfg(feature = "jwt")]
    pub fn dpop_verifier(&self) -> &token_jwt::dpop::DpopVerifier {
        &self.dpop
    }

    /// Format, signature, claims and revocation, bound or not.
    async fn verify_any<T: DeserializeOwned>(
        &self,
        bearer: &str,
    ) -> Result<Verified<AccessClaims<T>>> {
        let verified = match &self.keys {
            Keys::Given(keys) => {
                let keys = keys.load();
                check_format(&keys, bearer)?;
                TokenVerifier::verify::<AccessClaims<T>>(&*keys, bearer, &self.validation)?
            }
            Keys::Source(source) => source
                .verify(bearer, &self.validation)
                .await?
                .try_map_custom(|c| {
                    let AccessClaims { sid, cnf, session } = c;
                    serde_json::from_value(serde_json::Value::Object(session))
                        .map(|session| AccessClaims { sid, cnf, session })
                        .map_err(|e| token_core::Error::InvalidCustomClaims(e.to_string()))
                })?,
        };
        self.check_revocation(&verified).await?;
        Ok(verified)
    }

    /// Format, signature and claims, without revocation: for the issuing side, which
    /// holds its keys (logout reads the token it is about to revoke).
    pub(crate) fn authenticate<T: DeserializeOwned>(
        &self,
        bearer: &str,
    ) -> Result<Verified<AccessClaims<T>>> {
        match &self.keys {
            Keys::Given(keys) => {
                let keys = keys.load();
                check_format(&keys, bearer)?;
                TokenVerifier::verify::<AccessClaims<T>>(&*keys, bearer, &self.validation)
            }
            Keys::Source(_) => Err(Error::InvalidPolicy(
                "a key source verifies asynchronously".into(),
            )),
        }
    }

    async fn check_revocation<T>(&self, verified: &Verified<AccessClaims<T>>) -> Result<()> {
        let Some(blocklist) = &self.blocklist else {
            return Ok(());
        };
        let claims = verified.claims();
        let state = blocklist
            .lookup(TokenRef {
                jti: claims.jti.as_deref(),
                sid: Some(claims.custom.sid.as_str()),
                subject: claims.sub.as_deref(),
            })
            .await?;
        if state.revokes(claims.iat) {
            return Err(Error::Revoked);
        }
        Ok(())
    }
}

/// The access job's claim rules: issuer, audience, lifetime at most `max_lifetime`,
/// `sub` and `jti` required, `typ: at+jwt` for JWTs (RFC 9068; PASETO has no type).
fn rules(
    issuer: &str,
    audience: &str,
    max_lifetime: Duration,
    clock: Arc<dyn Clock>,
) -> Validation {
    Validation::new()
        .issuer(issuer)
        .audience(audience)
        .max_lifetime(max_lifetime)
        .require(RegisteredClaim::Sub)
        .require(RegisteredClaim::Jti)
        .token_type("at+jwt")
        .shared_clock(clock)
}

impl From<PublicVerifier<V4>> for AccessVerifier {
    fn from(v: PublicVerifier<V4>) -> Self {
        Self::PasetoV4(v)
    }
}

impl From<PublicVerifier<V3>> for AccessVerifier {
    fn from(v: PublicVerifier<V3>) -> Self {
        Self::PasetoV3(v)
    }
}

#[cfg(feature = "jwt")]
impl From<JwtVerifier> for AccessVerifier {
    fn from(v: JwtVerifier) -> Self {
        Self::Jwt(v)
    }
}
