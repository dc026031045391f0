//! The decision matrix: which token each job gets, for how long, under which rules.
//!
//! Limits are defaults that can be *lowered* freely. Raising one past its default needs
//! a method whose name starts with `dangerous_`, and every such override is listed by
//! [`Policy::explain`]. A raised limit stays raised: a lifetime set after it (with
//! `with_*_ttl`) is checked against it, whatever order the two are set in.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use token_core::SensitiveClaims;

use crate::error::{Error, Result};

/// The jobs tokens are issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Job {
    /// Access / authentication: short-lived, asymmetrically signed.
    Access,
    /// Refresh: opaque, stored hashed, rotated on every use.
    Refresh,
    /// Payment: encrypted, bound to the user by the implicit assertion.
    Payment,
    /// API keys: opaque, prefixed, scoped, revocable.
    ApiKey,
    /// Email verification: opaque, single use.
    EmailVerification,
    /// Password reset: opaque, single use.
    PasswordReset,
    /// Server-side sessions: opaque id in a cookie.
    Session,
    /// Service-to-service: JWT with one audience per target.
    ServiceToService,
}

impl Job {
    /// Every job, in the order of the decision matrix.
    pub const ALL: [Self; 8] = [
        Self::Access,
        Self::Refresh,
        Self::Payment,
        Self::ApiKey,
        Self::EmailVerification,
        Self::PasswordReset,
        Self::Session,
        Self::ServiceToService,
    ];

    /// The job's name in explanations and configuration.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
            Self::Payment => "payment",
            Self::ApiKey => "api-key",
            Self::EmailVerification => "email-verification",
            Self::PasswordReset => "password-reset",
            Self::Session => "session",
            Self::ServiceToService => "service-to-service",
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The default (and, without an override, maximum) access-token lifetime.
pub const MAX_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// The default (and, without an override, maximum) payment-token lifetime.
pub const MAX_PAYMENT_TTL: Duration = Duration::from_secs(5 * 60);
/// The default (and, without an override, maximum) service-token lifetime.
pub const MAX_SERVICE_TTL: Duration = Duration::from_secs(5 * 60);

/// Which format the access job uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum AccessFormat {
    /// PASETO `v4.public` (Ed25519): the default.
    PasetoV4Public,
    /// PASETO `v3.public` (ECDSA P-384): NIST.
    PasetoV3Public,
    /// JWT ES256: OAuth/OIDC interop.
    #[cfg(feature = "jwt")]
    JwtEs256,
    /// JWT EdDSA (Ed25519).
    #[cfg(feature = "jwt")]
    JwtEdDsa,
}

impl AccessFormat {
    /// Whether access tokens are JWTs (RFC 9068 profile: `typ: at+jwt`, `client_id`).
    pub const fn is_jwt(self) -> bool {
        match self {
            Self::PasetoV4Public | Self::PasetoV3Public => false,
            #[cfg(feature = "jwt")]
            Self::JwtEs256 | Self::JwtEdDsa => true,
        }
    }

    /// A short description.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::PasetoV4Public => "PASETO v4.public (Ed25519)",
            Self::PasetoV3Public => "PASETO v3.public (ECDSA P-384)",
            #[cfg(feature = "jwt")]
            Self::JwtEs256 => "JWT ES256",
            #[cfg(feature = "jwt")]
            Self::JwtEdDsa => "JWT EdDSA (Ed25519)",
        }
    }
}

/// Which format the payment job uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PaymentFormat {
    /// PASETO `v4.local` (XChaCha20 + BLAKE2b): the default.
    PasetoV4Local,
    /// PASETO `v3.local` (AES-256-CTR + HMAC-SHA384): NIST.
    PasetoV3Local,
}

impl PaymentFormat {
    /// A short description.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::PasetoV4Local => "PASETO v4.local (XChaCha20-BLAKE2b)",
            Self::PasetoV3Local => "PASETO v3.local (AES-256-CTR + HMAC-SHA384)",
        }
    }
}

/// A limit raised past its default, as recorded for [`Policy::explain`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Override {
    /// The job.
    pub job: Job,
    /// What was raised.
    pub what: &'static str,
    /// The default limit, in seconds.
    pub default_secs: u64,
    /// The value in force, in seconds.
    pub value_secs: u64,
}

/// The decision matrix of an application: issuer, audiences, lifetimes, rules.
#[derive(Clone, Debug)]
pub struct Policy {
    issuer: String,
    audience: String,
    client_id: Option<String>,
    access_format: AccessFormat,
    payment_format: PaymentFormat,
    access_ttl: Duration,
    payment_ttl: Duration,
    service_ttl: Duration,
    /// The most each lifetime may be: its default, or what a `dangerous_raise_*` set.
    access_limit: Duration,
    payment_limit: Duration,
    service_limit: Duration,
    sensitive_claims: SensitiveClaims,
    overrides: Vec<Override>,
    fingerprint_cookie: bool,
}

impl Policy {
    /// The default policy for tokens issued by `issuer` for the API `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            client_id: None,
            access_format: AccessFormat::PasetoV4Public,
            payment_format: PaymentFormat::PasetoV4Local,
            access_ttl: MAX_ACCESS_TTL,
            payment_ttl: MAX_PAYMENT_TTL,
            service_ttl: MAX_SERVICE_TTL,
            access_limit: MAX_ACCESS_TTL,
            payment_limit: MAX_PAYMENT_TTL,
            service_limit: MAX_SERVICE_TTL,
            sensitive_claims: SensitiveClaims::default(),
            overrides: Vec::new(),
            fingerprint_cookie: false,
        }
    }

    /// The issuer (`iss`) of access and service tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience (`aud`) of access tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The OAuth client id JWT access tokens carry (RFC 9068 `client_id`): the one
    /// set with [`Policy::with_client_id`], else the issuer (the issuer's own login is
    /// the client of a first-party deployment).
    pub fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or(&self.issuer)
    }

    /// Names the OAuth client of this deployment's logins (RFC 9068 `client_id`).
    #[must_use]
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The access-token format (set by the service from its signer).
    pub fn access_format(&self) -> AccessFormat {
        self.access_format
    }

    /// The payment-token format (set by the service from its cipher).
    pub fn payment_format(&self) -> PaymentFormat {
        self.payment_format
    }

    pub(crate) fn set_formats(&mut self, access: AccessFormat, payment: Option<PaymentFormat>) {
        self.access_format = access;
        if let Some(payment) = payment {
            self.payment_format = payment;
        }
    }

    /// The access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// The payment-token lifetime.
    pub fn payment_ttl(&self) -> Duration {
        self.payment_ttl
    }

    /// The service-token lifetime.
    pub fn service_ttl(&self) -> Duration {
        self.service_ttl
    }

    /// Claim names refused in readable payloads, and the rule that matches them
    /// ([`SensitiveClaims`], shared with inspection tools).
    pub fn sensitive_claims(&self) -> &SensitiveClaims {
        &self.sensitive_claims
    }

    /// Overrides in force.
    pub fn overrides(&self) -> &[Override] {
        &self.overrides
    }

    fn bounded(job: Job, requested: Duration, limit: Duration) -> Result<Duration> {
        if requested.is_zero() {
            return Err(Error::InvalidPolicy(format!(
                "{job} lifetime must be positive"
            )));
        }
        if requested > limit {
            return Err(Error::LimitExceeded {
                job,
                requested,
                limit,
            });
        }
        Ok(requested)
    }

    fn raise(&mut self, job: Job, what: &'static str, default: Duration, value: Duration) {
        self.overrides.retain(|o| !(o.job == job && o.what == what));
        if value > default {
            self.overrides.push(Override {
                job,
                what,
                default_secs: default.as_secs(),
                value_secs: value.as_secs(),
            });
        }
    }

    /// Sets the access-token lifetime, at most 15 minutes (or the limit a
    /// [`Policy::dangerous_raise_access_ttl`] set).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] above the limit.
    pub fn with_access_ttl(mut self, ttl: Duration) -> Result<Self> {
        self.access_ttl = Self::bounded(Job::Access, ttl, self.access_limit)?;
        self.raise(Job::Access, "ttl", MAX_ACCESS_TTL, ttl);
        Ok(self)
    }

    /// Sets the payment-token lifetime, at most 5 minutes (or the limit a
    /// [`Policy::dangerous_raise_payment_ttl`] set).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] above the limit.
    pub fn with_payment_ttl(mut self, ttl: Duration) -> Result<Self> {
        self.payment_ttl = Self::bounded(Job::Payment, ttl, self.payment_limit)?;
        self.raise(Job::Payment, "ttl", MAX_PAYMENT_TTL, ttl);
        Ok(self)
    }

    /// Sets the service-token lifetime, at most 5 minutes (or the limit a
    /// [`Policy::dangerous_raise_service_ttl`] set).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] above the limit.
    pub fn with_service_ttl(mut self, ttl: Duration) -> Result<Self> {
        self.service_ttl = Self::bounded(Job::ServiceToService, ttl, self.service_limit)?;
        self.raise(Job::ServiceToService, "ttl", MAX_SERVICE_TTL, ttl);
        Ok(self)
    }

    /// Raises the access-token lifetime, and its limit, past 15 minutes. A stolen
    /// access token replays until it expires; this widens that window. Reported by
    /// [`Policy::explain`].
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] for a zero lifetime.
    pub fn dangerous_raise_access_ttl(mut self, ttl: Duration) -> Result<Self> {
        self.access_ttl = Self::bounded(Job::Access, ttl, Duration::MAX)?;
        self.access_limit = self.access_limit.max(ttl);
        self.raise(Job::Access, "ttl", MAX_ACCESS_TTL, ttl);
        Ok(self)
    }

    /// Raises the payment-token lifetime, and its limit, past 5 minutes. Reported by
    /// [`Policy::explain`].
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] for a zero lifetime.
    pub fn dangerous_raise_payment_ttl(mut self, ttl: Duration) -> Result<Self> {
        self.payment_ttl = Self::bounded(Job::Payment, ttl, Duration::MAX)?;
        self.payment_limit = self.payment_limit.max(ttl);
        self.raise(Job::Payment, "ttl", MAX_PAYMENT_TTL, ttl);
        Ok(self)
    }

    /// Raises the service-token lifetime, and its limit, past 5 minutes. Reported by
    /// [`Policy::explain`].
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] for a zero lifetime.
    pub fn dangerous_raise_service_ttl(mut self, ttl: Duration) -> Result<Self> {
        self.service_ttl = Self::bounded(Job::ServiceToService, ttl, Duration::MAX)?;
        self.service_limit = self.service_limit.max(ttl);
        self.raise(Job::ServiceToService, "ttl", MAX_SERVICE_TTL, ttl);
        Ok(self)
    }

    /// Replaces the list of claim names refused in readable payloads (default
    /// [`token_core::DEFAULT_SENSITIVE_CLAIMS`]). Names match in any spelling and as a
    /// word of a longer name: `email` matches `user_email` and `userEmail`
    /// ([`SensitiveClaims`]).
    #[must_use]
    pub fn sensitive_claim_names<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        names: I,
    ) -> Self {
        self.sensitive_claims = SensitiveClaims::new(names);
        self
    }

    /// Binds bearer access tokens to a fingerprint cookie (off by default): at each
    /// login and refresh a random fingerprint is drawn
    /// ([`crate::LoginTokens::fingerprint`], for a hardened `__Host-` `HttpOnly`
    /// `Secure` `SameSite=Strict` cookie) and its SHA-256 goes into the access token
    /// (claim `fgp`, hex), PASETO or JWT alike. Such a token verifies only with
    /// the cookie ([`crate::TokenService::verify_access_with_fingerprint`]): one lifted
    /// from a log or by a script, without the `HttpOnly` cookie, is refused. This is
    /// OWASP's token-sidejacking defence for clients that hold no key; DPoP-bound
    /// tokens carry no fingerprint (the key is the stronger binding).
    #[must_use]
    pub fn fingerprint_cookie(mut self, on: bool) -> Self {
        self.fingerprint_cookie = on;
        self
    }

    /// Whether bearer access tokens are bound to a fingerprint cookie.
    pub fn fingerprint_binding(&self) -> bool {
        self.fingerprint_cookie
    }

    /// The effective decision matrix.
    #[allow(clippy::too_many_lines)] // one table, row by row
    pub fn explain(&self) -> Explanation {
        let mins = |d: Duration| humanize(d);
        let o = |job: Job| {
            self.overrides
                .iter()
                .filter(move |o| o.job == job)
                .map(|o| {
                    format!(
                        "OVERRIDE: {} raised from {}s to {}s",
                        o.what, o.default_secs, o.value_secs
                    )
                })
        };
        let mut rows = vec![
            Row {
                job: Job::Access,
                token: self.access_format.describe().to_owned(),
                lifetime: mins(self.access_ttl),
                rules: [
                    "asymmetric signature only: verifiers hold no secret".to_owned(),
                    format!(
                        "iss = {:?}, aud = {:?}, sub and jti required",
                        self.issuer, self.audience
                    ),
                    // What the service's own verification enforces (`max_lifetime`).
                    format!("lifetime at most {}", mins(self.access_ttl)),
                    format!(
                        "readable payload: refuses claim names like {}",
                        self.sensitive_claims
                            .names()
                            .iter()
                            .take(6)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    "revocable by jti and by subject cut-off (blocklist, TTL = remaining lifetime)"
                        .to_owned(),
                ]
                .into_iter()
                .chain(o(Job::Access))
                .collect(),
                key_ids: Vec::new(),
            },
            Row {
                job: Job::Refresh,
                token: "opaque random string, stored hashed (SHA-256)".to_owned(),
                lifetime: "family lifetime and idle timeout (token-opaque)".to_owned(),
                rules: vec![
                    "never a JWT or PASETO: there is no API for it".to_owned(),
                    "rotated on every use; a rotated token seen again revokes its whole family"
                        .to_owned(),
                ],
                key_ids: Vec::new(),
            },
            Row {
                job: Job::Payment,
                token: self.payment_format.describe().to_owned(),
                lifetime: mins(self.payment_ttl),
                rules: [
                    "encrypted only: the payload is not readable".to_owned(),
                    "implicit assertion = authenticated user id, on issue and on consume"
                        .to_owned(),
                    format!("lifetime at most {}", mins(self.payment_ttl)),
                    "single use: consumed tokens are blocklisted".to_owned(),
                ]
                .into_iter()
                .chain(o(Job::Payment))
                .collect(),
                key_ids: Vec::new(),
            },
            Row {
                job: Job::ApiKey,
                token: "opaque prefixed key (sk_live_/sk_test_), stored hashed".to_owned(),
                lifetime: "until revoked, rolled or expired".to_owned(),
                rules: vec![
                    "shown once; scoped; revocation effective on the next verify".to_owned(),
                    "checksum rejects typos before any database query".to_owned(),
                ],
                key_ids: Vec::new(),
            },
            Row {
                job: Job::EmailVerification,
                token: "opaque one-time token (evt_), stored hashed".to_owned(),
                lifetime: "expiry in the database row".to_owned(),
                rules: vec![
                    "single use; deleted on use; issuance rate-limited per user".to_owned(),
                ],
                key_ids: Vec::new(),
            },
            Row {
                job: Job::PasswordReset,
                token: "opaque one-time token (prt_), stored hashed".to_owned(),
                lifetime: "expiry in the database row".to_owned(),
                rules: vec![
                    "single use; deleted on use; issuance rate-limited per user".to_owned(),
                    "a password change invalidates every outstanding token of the user".to_owned(),
                ],
                key_ids: Vec::new(),
            },
            Row {
                job: Job::Session,
                token: "opaque session id (ses_) in a __Host- HttpOnly Secure SameSite cookie"
                    .to_owned(),
                lifetime: "sliding idle expiry plus absolute expiry".to_owned(),
                rules: vec![
                    "server-side state; revocable one by one or all of a user's".to_owned(),
                ],
                key_ids: Vec::new(),
            },
            Row {
                job: Job::ServiceToService,
                token: "JWT ES256".to_owned(),
                lifetime: mins(self.service_ttl),
                rules: [
                    "explicit aud per target service; verifiers accept only their own name"
                        .to_owned(),
                    format!("lifetime at most {}", mins(self.service_ttl)),
                    "keys published as JWKS; no key is ever fetched from a URL in a token"
                        .to_owned(),
                ]
                .into_iter()
                .chain(o(Job::ServiceToService))
                .collect(),
                key_ids: Vec::new(),
            },
        ];
        rows.shrink_to_fit();
        Explanation {
            rows,
            overrides: self.overrides.clone(),
        }
    }
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// One row of the decision matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The job.
    pub job: Job,
    /// The token type.
    pub token: String,
    /// Its lifetime.
    pub lifetime: String,
    /// The rules enforced.
    pub rules: Vec<String>,
    /// Key ids in use (filled by a configured service).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_ids: Vec<String>,
}

/// The decision matrix: [`fmt::Display`] renders text, [`Explanation::to_json`] JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// One row per job.
    pub rows: Vec<Row>,
    /// Limits raised past their defaults.
    pub overrides: Vec<Override>,
}

impl Explanation {
    /// The rows as a JSON array of `{"job", "token", "lifetime", "rules"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.rows).unwrap_or_default()
    }

    /// The row for `job`.
    pub fn row(&self, job: Job) -> Option<&Row> {
        self.rows.iter().find(|r| r.job == job)
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in &self.rows {
            writeln!(
                f,
                "{:<20} {}  [{}]",
                row.job.name(),
                row.token,
                row.lifetime
            )?;
            for rule in &row.rules {
                writeln!(f, "{:<20}   - {rule}", "")?;
            }
            if !row.key_ids.is_empty() {
                writeln!(f, "{:<20}   keys: {}", "", row.key_ids.join(", "))?;
            }
        }
        if self.overrides.is_empty() {
            writeln!(f, "no limit is raised past its default")?;
        } else {
            for o in &self.overrides {
                writeln!(
                    f,
                    "WARNING: {} {} raised from {}s to {}s",
                    o.job, o.what, o.default_secs, o.value_secs
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_limits_and_raising_needs_an_override() {
        let p = Policy::new("https://auth.example", "api");
        assert_eq!(p.access_ttl(), MAX_ACCESS_TTL);
        assert!(matches!(
            p.clone().with_access_ttl(Duration::from_secs(16 * 60)),
            Err(Error::LimitExceeded {
                job: Job::Access,
                ..
            })
        ));
        assert!(matches!(
            p.clone().with_payment_ttl(Duration::from_secs(301)),
            Err(Error::LimitExceeded {
                job: Job::Payment,
                ..
            })
        ));
        assert!(matches!(
            p.clone().with_service_ttl(Duration::from_secs(301)),
            Err(Error::LimitExceeded {
                job: Job::ServiceToService,
                ..
            })
        ));
        assert!(matches!(
            p.clone().with_access_ttl(Duration::ZERO),
            Err(Error::InvalidPolicy(_))
        ));
        let lowered = p.clone().with_access_ttl(Duration::from_secs(300)).unwrap();
        assert!(lowered.overrides().is_empty());
        let raised = p
            .dangerous_raise_access_ttl(Duration::from_secs(3600))
            .unwrap();
        assert_eq!(raised.access_ttl(), Duration::from_secs(3600));
        assert_eq!(raised.overrides().len(), 1);
        let text = raised.explain().to_string();
        assert!(
            text.contains("WARNING: access ttl raised from 900s to 3600s"),
            "{text}"
        );
        // Lowering again clears the override.
        let back = raised.with_access_ttl(Duration::from_secs(600)).unwrap();
        assert!(back.overrides().is_empty());
    }

    /// A lifetime set after a `dangerous_raise_*` used to be checked against the
    /// default limit, and `explain` printed the default limit whatever was in force.
    #[test]
    fn a_raised_limit_holds_for_later_lifetimes_and_explain_prints_the_limit_in_force() {
        let hour = Duration::from_secs(3600);
        let p = Policy::new("iss", "api")
            .dangerous_raise_access_ttl(hour)
            .unwrap()
            .with_access_ttl(hour)
            .unwrap();
        assert_eq!(p.access_ttl(), hour);
        assert_eq!(p.overrides().len(), 1);
        let access = p.explain().row(Job::Access).unwrap().clone();
        assert_eq!(access.lifetime, "1 h");
        assert!(
            access.rules.iter().any(|r| r == "lifetime at most 1 h"),
            "{:?}",
            access.rules
        );
        // Within the raised limit, lower again: fine; past it: refused, naming it.
        let p = p.with_access_ttl(Duration::from_secs(1800)).unwrap();
        assert!(matches!(
            p.with_access_ttl(2 * hour),
            Err(Error::LimitExceeded { limit, .. }) if limit == hour
        ));
        // A lowered lifetime is the limit verification enforces.
        let lowered = Policy::new("iss", "api")
            .with_payment_ttl(Duration::from_secs(120))
            .unwrap();
        let payment = lowered.explain().row(Job::Payment).unwrap().clone();
        assert!(
            payment.rules.iter().any(|r| r == "lifetime at most 2 min"),
            "{:?}",
            payment.rules
        );
    }

    #[test]
    fn explain_lists_every_job_as_json() {
        let e = Policy::new("iss", "api").explain();
        let json = e.to_json();
        let rows = json.as_array().unwrap();
        assert_eq!(rows.len(), Job::ALL.len());
        for (row, job) in rows.iter().zip(Job::ALL) {
            assert_eq!(row["job"], job.name());
            assert!(
                row["token"].is_string() && row["lifetime"].is_string() && row["rules"].is_array()
            );
        }
        assert_eq!(e.row(Job::Payment).unwrap().lifetime, "5 min");
        assert!(e.to_string().contains("no limit is raised"));
    }

    #[test]
    fn sensitive_names_are_token_cores_list_and_rule() {
        let p = Policy::new("iss", "api");
        assert_eq!(p.sensitive_claims(), &SensitiveClaims::default());
        let s = p.sensitive_claims();
        assert!(!s.matches("role") && !s.matches("sid"));
        for name in ["Email", "user_email", "userEmail", "card-number", "apiKey"] {
            assert!(s.matches(name), "{name}");
        }
        assert!(!s.matches("emailed_at_count"));
        let custom = p.sensitive_claim_names(["tenant_secret_hint"]);
        assert!(!custom.sensitive_claims().matches("email"));
        assert!(custom.sensitive_claims().matches("tenantSecretHint"));
    }
}
