//! What a verifier demands of a token's claims once the token is authentic.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::claims::{Claims, RegisteredClaim};
use crate::error::{Error, Result};
use crate::time::{Clock, SystemClock, Timestamp};

/// The default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The largest leeway a [`Validation`] takes: one day. Clocks that disagree by more are
/// broken; a larger leeway would keep expired tokens valid (and `u64::MAX` seconds
/// would disable the expiry check altogether).
pub const MAX_LEEWAY: Duration = Duration::from_secs(86_400);

/// What to do with `aud`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AudienceRule {
    /// The default: no audience is expected, so a token that names one is refused
    /// (it was minted for someone else).
    NoneExpected,
    /// At least one of the token's audiences must be in the set.
    OneOf(BTreeSet<String>),
    /// `aud` is not looked at.
    Skip,
}

/// The checks applied to verified claims.
///
/// Defaults: `exp` required, 60 s leeway (at most [`MAX_LEEWAY`]), any issuer and subject, and no audience
/// expected (a token that names an audience is then refused: set [`Validation::audience`]).
/// Issuers, audiences and subjects are sets: a token passes when it matches any member.
///
/// ```
/// use std::time::Duration;
/// use token_core::{Claims, FixedClock, Timestamp, Validation, Error};
///
/// let now = Timestamp::from_unix_seconds(1_700_000_000)?;
/// let claims = Claims::new(())
///     .issuer("https://auth.example")
///     .audience("billing")
///     .valid_for(&FixedClock(now), Duration::from_secs(600))?;
///
/// let validation = Validation::new()
///     .issuers(["https://auth.example", "https://auth-eu.example"])
///     .audience("billing")
///     .max_lifetime(Duration::from_secs(900))
///     .clock(FixedClock(now));
/// validation.validate(&claims)?;
///
/// let later = validation.clone().clock(FixedClock(Timestamp::from_unix_seconds(1_700_000_700)?));
/// assert!(matches!(later.validate(&claims), Err(Error::Expired { .. })));
/// # Ok::<(), token_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Validation {
    issuers: Option<BTreeSet<String>>,
    audience: AudienceRule,
    subjects: Option<BTreeSet<String>>,
    required: BTreeSet<RegisteredClaim>,
    leeway: Duration,
    max_lifetime: Option<Duration>,
    allow_non_expiring: bool,
    issued_not_before: Option<Timestamp>,
    token_type: Option<String>,
    clock: Arc<dyn Clock>,
}

impl Default for Validation {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validation")
            .field("issuers", &self.issuers)
            .field("audience", &self.audience)
            .field("subjects", &self.subjects)
            .field("required", &self.required)
            .field("leeway", &self.leeway)
            .field("max_lifetime", &self.max_lifetime)
            .field("allow_non_expiring", &self.allow_non_expiring)
            .field("issued_not_before", &self.issued_not_before)
            .field("token_type", &self.token_type)
            .finish_non_exhaustive()
    }
}

fn set<I, S>(items: I) -> BTreeSet<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl Validation {
    /// The defaults described on [`Validation`], reading the system clock.
    pub fn new() -> Self {
        Self {
            issuers: None,
            audience: AudienceRule::NoneExpected,
            subjects: None,
            required: BTreeSet::new(),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: None,
            allow_non_expiring: false,
            issued_not_before: None,
            token_type: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Requires `iss` to be `issuer`.
    #[must_use]
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        self.issuers([issuer])
    }

    /// Requires `iss` to be one of `issuers`.
    #[must_use]
    pub fn issuers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, issuers: I) -> Self {
        self.issuers = Some(set(issuers));
        self
    }

    /// Requires `aud` to name `audience`.
    #[must_use]
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.audiences([audience])
    }

    /// Requires `aud` to name at least one of `audiences`.
    #[must_use]
    pub fn audiences<I: IntoIterator<Item = S>, S: Into<String>>(mut self, audiences: I) -> Self {
        self.audience = AudienceRule::OneOf(set(audiences));
        self
    }

    /// Does not look at `aud` at all. Tokens minted for another service then pass too;
    /// prefer [`Validation::audience`].
    #[must_use]
    pub fn dangerous_skip_audience_check(mut self) -> Self {
        self.audience = AudienceRule::Skip;
        self
    }

    /// Requires `sub` to be `subject`.
    #[must_use]
    pub fn subject(self, subject: impl Into<String>) -> Self {
        self.subjects([subject])
    }

    /// Requires `sub` to be one of `subjects`.
    #[must_use]
    pub fn subjects<I: IntoIterator<Item = S>, S: Into<String>>(mut self, subjects: I) -> Self {
        self.subjects = Some(set(subjects));
        self
    }

    /// Requires `claim` to be present.
    #[must_use]
    pub fn require(mut self, claim: RegisteredClaim) -> Self {
        self.required.insert(claim);
        self
    }

    /// Sets the clock-skew allowance for `exp`, `nbf` and `iat` (default 60 s, at most
    /// [`MAX_LEEWAY`], one day).
    ///
    /// # Errors
    /// [`Error::LeewayTooLarge`] over [`MAX_LEEWAY`].
    pub fn leeway(mut self, leeway: Duration) -> Result<Self> {
        if leeway > MAX_LEEWAY {
            return Err(Error::LeewayTooLarge {
                leeway,
                max: MAX_LEEWAY,
            });
        }
        self.leeway = leeway;
        Ok(self)
    }

    /// Refuses tokens whose `exp - iat` exceeds `max` (and so requires both).
    #[must_use]
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(max);
        self
    }

    /// Accepts tokens without `exp`. Such a token is valid until its key is retired:
    /// use only for tokens revoked by other means.
    #[must_use]
    pub fn allow_non_expiring_tokens(mut self) -> Self {
        self.allow_non_expiring = true;
        self
    }

    /// Refuses tokens issued (`iat`) before `t` (and so requires `iat`): "log out
    /// everywhere" without listing token ids.
    #[must_use]
    pub fn issued_not_before(mut self, t: Timestamp) -> Self {
        self.issued_not_before = Some(t);
        self
    }

    /// Requires the token's declared type, for formats that declare one (the JOSE
    /// `typ` header: `JWT`, or `at+jwt` for RFC 9068 access tokens). Formats without a
    /// type field (PASETO) tell token kinds apart by version and purpose instead.
    #[must_use]
    pub fn token_type(mut self, typ: impl Into<String>) -> Self {
        self.token_type = Some(typ.into());
        self
    }

    /// The token type required by [`Validation::token_type`], if any.
    pub fn expected_token_type(&self) -> Option<&str> {
        self.token_type.as_deref()
    }

    /// Reads "now" from `clock` instead of the system clock.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Reads "now" from a shared clock.
    #[must_use]
    pub fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock this validation reads.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The leeway in force.
    pub fn current_leeway(&self) -> Duration {
        self.leeway
    }

    fn requires(&self, claim: RegisteredClaim) -> bool {
        self.required.contains(&claim)
            || match claim {
                RegisteredClaim::Exp => !self.allow_non_expiring || self.max_lifetime.is_some(),
                RegisteredClaim::Iss => self.issuers.is_some(),
                RegisteredClaim::Aud => matches!(self.audience, AudienceRule::OneOf(_)),
                RegisteredClaim::Sub => self.subjects.is_some(),
                RegisteredClaim::Iat => {
                    self.max_lifetime.is_some() || self.issued_not_before.is_some()
                }
                RegisteredClaim::Nbf | RegisteredClaim::Jti => false,
            }
    }

    /// Checks `claims`, in this order: required claims present, `exp`, `nbf`, `iat`,
    /// issued-not-before, lifetime, `iss`, `aud`, `sub`. The first failure is returned.
    ///
    /// # Errors
    /// [`Error::MissingClaim`], [`Error::Expired`], [`Error::NotYetValid`],
    /// [`Error::IssuedInFuture`], [`Error::IssuedTooEarly`], [`Error::LifetimeTooLong`],
    /// [`Error::WrongIssuer`], [`Error::WrongAudience`] or [`Error::WrongSubject`].
    pub fn validate<T>(&self, claims: &Claims<T>) -> Result<()> {
        if let Some(missing) = RegisteredClaim::ALL
            .into_iter()
            .find(|&c| self.requires(c) && !claims.has(c))
        {
            return Err(Error::MissingClaim(missing));
        }
        let now = self.clock.now();
        let late = now.saturating_sub(self.leeway);
        // `now + leeway`, saturating at the largest instant.
        let early = now.checked_add(self.leeway).unwrap_or(Timestamp::MAX);
        if let Some(exp) = claims.exp {
            if late >= exp {
                return Err(Error::Expired { exp });
            }
        }
        if let Some(nbf) = claims.nbf {
            if nbf > early {
                return Err(Error::NotYetValid { nbf });
            }
        }
        if let Some(iat) = claims.iat {
            if iat > early {
                return Err(Error::IssuedInFuture { iat });
            }
            if let Some(not_before) = self.issued_not_before {
                if iat < not_before {
                    return Err(Error::IssuedTooEarly { iat, not_before });
                }
            }
        }
        if let (Some(max), Some(exp), Some(iat)) = (self.max_lifetime, claims.exp, claims.iat) {
            let lifetime = exp.duration_since(iat);
            if lifetime > max {
                return Err(Error::LifetimeTooLong { lifetime, max });
            }
        }
        if let (Some(issuers), Some(iss)) = (&self.issuers, &claims.iss) {
            if !issuers.contains(iss) {
                return Err(Error::WrongIssuer);
            }
        }
        match (&self.audience, &claims.aud) {
            (AudienceRule::OneOf(expected), Some(aud))
                if !aud.iter().any(|a| expected.contains(a)) =>
            {
                return Err(Error::WrongAudience);
            }
            (AudienceRule::NoneExpected, Some(_)) => return Err(Error::WrongAudience),
            _ => {}
        }
        if let (Some(subjects), Some(sub)) = (&self.subjects, &claims.sub) {
            if !subjects.contains(sub) {
                return Err(Error::WrongSubject);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Audience;
    use crate::time::FixedClock;

    const NOW: i64 = 1_700_000_000;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_unix_seconds(s).unwrap()
    }

    fn at(now: i64) -> Validation {
        Validation::new().clock(FixedClock(ts(now)))
    }

    fn good() -> Claims<()> {
        Claims::new(())
            .issuer("iss-a")
            .subject("alice")
            .audience("api")
            .token_id("j1")
            .valid_for(&FixedClock(ts(NOW)), Duration::from_secs(600))
            .unwrap()
    }

    fn strict() -> Validation {
        at(NOW)
            .issuers(["iss-a", "iss-b"])
            .audiences(["api", "web"])
            .subject("alice")
            .max_lifetime(Duration::from_secs(900))
    }

    #[test]
    fn accepts_a_good_token() {
        strict().validate(&good()).unwrap();
    }

    #[test]
    fn exp_is_required_unless_allowed() {
        let mut c = good();
        c.exp = None;
        let v = at(NOW).audience("api");
        assert_eq!(
            v.validate(&c),
            Err(Error::MissingClaim(RegisteredClaim::Exp))
        );
        v.clone().allow_non_expiring_tokens().validate(&c).unwrap();
        // A lifetime bound cannot be met without an expiry.
        assert_eq!(
            v.allow_non_expiring_tokens()
                .max_lifetime(Duration::from_secs(60))
                .validate(&c),
            Err(Error::MissingClaim(RegisteredClaim::Exp))
        );
    }

    #[test]
    fn expiry_honours_leeway_exactly() {
        let c = good();
        let exp = NOW + 600;
        // Valid until exp + leeway (exclusive).
        strict()
            .clock(FixedClock(ts(exp + 59)))
            .validate(&c)
            .unwrap();
        assert_eq!(
            strict().clock(FixedClock(ts(exp + 60))).validate(&c),
            Err(Error::Expired { exp: ts(exp) })
        );
        let no_leeway = strict().leeway(Duration::ZERO).unwrap();
        no_leeway
            .clone()
            .clock(FixedClock(ts(exp - 1)))
            .validate(&c)
            .unwrap();
        assert_eq!(
            no_leeway.clock(FixedClock(ts(exp))).validate(&c),
            Err(Error::Expired { exp: ts(exp) })
        );
    }

    /// `leeway(u64::MAX seconds)` used to be accepted, and `now - leeway` saturating at
    /// the epoch kept every expired token valid.
    #[test]
    fn leeway_is_bounded_to_a_day() {
        for leeway in [
            MAX_LEEWAY + Duration::from_secs(1),
            Duration::from_secs(u64::MAX),
            Duration::MAX,
        ] {
            assert_eq!(
                strict().leeway(leeway).map(drop),
                Err(Error::LeewayTooLarge {
                    leeway,
                    max: MAX_LEEWAY
                })
            );
        }
        assert_eq!(
            Error::LeewayTooLarge {
                leeway: Duration::from_secs(86_401),
                max: MAX_LEEWAY
            }
            .to_string(),
            "leeway of 86401s is too large: at most 86400s"
        );
        // The largest leeway still lets a token expire, a day late.
        let c = good();
        let exp = NOW + 600;
        let day = strict().leeway(MAX_LEEWAY).unwrap();
        day.clone()
            .clock(FixedClock(ts(exp + 86_399)))
            .validate(&c)
            .unwrap();
        assert_eq!(
            day.clock(FixedClock(ts(exp + 86_400))).validate(&c),
            Err(Error::Expired { exp: ts(exp) })
        );
    }

    #[test]
    fn not_yet_valid() {
        let mut c = good();
        c.nbf = Some(ts(NOW + 61));
        assert_eq!(
            strict().validate(&c),
            Err(Error::NotYetValid { nbf: ts(NOW + 61) })
        );
        c.nbf = Some(ts(NOW + 60));
        strict().validate(&c).unwrap();
    }

    #[test]
    fn issued_in_future() {
        let mut c = good();
        c.iat = Some(ts(NOW + 120));
        assert_eq!(
            strict().validate(&c),
            Err(Error::IssuedInFuture { iat: ts(NOW + 120) })
        );
    }

    #[test]
    fn issued_too_early() {
        let v = strict().issued_not_before(ts(NOW + 1));
        assert_eq!(
            v.validate(&good()),
            Err(Error::IssuedTooEarly {
                iat: ts(NOW),
                not_before: ts(NOW + 1)
            })
        );
        let mut c = good();
        c.iat = None;
        assert_eq!(
            at(NOW)
                .audience("api")
                .issued_not_before(ts(NOW))
                .validate(&c),
            Err(Error::MissingClaim(RegisteredClaim::Iat))
        );
    }

    #[test]
    fn lifetime_too_long() {
        let v = strict().max_lifetime(Duration::from_secs(599));
        assert_eq!(
            v.validate(&good()),
            Err(Error::LifetimeTooLong {
                lifetime: Duration::from_secs(600),
                max: Duration::from_secs(599)
            })
        );
        strict()
            .max_lifetime(Duration::from_secs(600))
            .validate(&good())
            .unwrap();
        let mut c = good();
        c.iat = None;
        assert_eq!(
            strict().validate(&c),
            Err(Error::MissingClaim(RegisteredClaim::Iat))
        );
    }

    #[test]
    fn issuer_set() {
        let mut c = good();
        c.iss = Some("iss-b".into());
        strict().validate(&c).unwrap();
        c.iss = Some("iss-c".into());
        assert_eq!(strict().validate(&c), Err(Error::WrongIssuer));
        c.iss = None;
        assert_eq!(
            strict().validate(&c),
            Err(Error::MissingClaim(RegisteredClaim::Iss))
        );
    }

    #[test]
    fn audience_set() {
        let mut c = good();
        c.aud = Some(["other", "web"].into_iter().collect());
        strict().validate(&c).unwrap();
        c.aud = Some(Audience::Many(vec!["other".into()]));
        assert_eq!(strict().validate(&c), Err(Error::WrongAudience));
        c.aud = Some(Audience::Many(vec![]));
        assert_eq!(strict().validate(&c), Err(Error::WrongAudience));
        c.aud = None;
        assert_eq!(
            strict().validate(&c),
            Err(Error::MissingClaim(RegisteredClaim::Aud))
        );
    }

    #[test]
    fn a_token_for_someone_else_is_refused_when_no_audience_is_expected() {
        let v = at(NOW);
        assert_eq!(v.validate(&good()), Err(Error::WrongAudience));
        v.clone()
            .dangerous_skip_audience_check()
            .validate(&good())
            .unwrap();
        let mut c = good();
        c.aud = None;
        v.validate(&c).unwrap();
    }

    #[test]
    fn subject_checks() {
        let mut c = good();
        c.sub = Some("mallory".into());
        assert_eq!(strict().validate(&c), Err(Error::WrongSubject));
        c.sub = None;
        assert_eq!(
            strict().validate(&c),
            Err(Error::MissingClaim(RegisteredClaim::Sub))
        );
        at(NOW)
            .audience("api")
            .require(RegisteredClaim::Sub)
            .validate(&good())
            .unwrap();
    }

    #[test]
    fn explicitly_required_claims() {
        let mut c = good();
        c.jti = None;
        let v = at(NOW).audience("api").require(RegisteredClaim::Jti);
        assert_eq!(
            v.validate(&c),
            Err(Error::MissingClaim(RegisteredClaim::Jti))
        );
        c.nbf = None;
        let v = v.require(RegisteredClaim::Nbf);
        // Reported in registered-claim order.
        assert_eq!(
            v.validate(&c),
            Err(Error::MissingClaim(RegisteredClaim::Nbf))
        );
    }

    #[test]
    fn errors_read_clearly() {
        assert_eq!(
            Error::Expired { exp: ts(NOW) }.to_string(),
            "token expired at 2023-11-14T22:13:20Z"
        );
        assert_eq!(
            Error::MissingClaim(RegisteredClaim::Aud).to_string(),
            "missing required claim `aud`"
        );
        assert_eq!(
            Error::LifetimeTooLong {
                lifetime: Duration::from_secs(3600),
                max: Duration::from_secs(900)
            }
            .to_string(),
            "token lifetime 3600s exceeds the maximum of 900s"
        );
    }
}
