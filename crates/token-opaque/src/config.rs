//! Lifetimes and limits. Every field has a default; change what you need:
//!
//! ```
//! use std::time::Duration;
//! use token_opaque::{Config, GracePolicy};
//!
//! let mut config = Config::default();
//! config.refresh.grace = GracePolicy::new(Duration::from_secs(30), 2);
//! config.sessions.idle_timeout = Duration::from_secs(15 * 60);
//! ```

use std::time::Duration;

use crate::format::Prefixes;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Everything [`crate::OpaqueTokens`] can be told.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Config {
    /// The prefix of each token kind.
    pub prefixes: Prefixes,
    /// Refresh-token families.
    pub refresh: RefreshPolicy,
    /// API keys.
    pub api_keys: ApiKeyPolicy,
    /// Email-verification and password-reset tokens.
    pub one_time: OneTimePolicy,
    /// Server-side sessions.
    pub sessions: SessionPolicy,
}

/// Refresh-token families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// A family ends this long after login, however active (default 30 days).
    pub absolute_lifetime: Duration,
    /// A family ends when not rotated for this long (default 7 days).
    pub idle_timeout: Duration,
    /// The reuse grace window (default: none, strict reuse detection).
    pub grace: GracePolicy,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            absolute_lifetime: Duration::from_secs(30 * DAY),
            idle_timeout: Duration::from_secs(7 * DAY),
            grace: GracePolicy::disabled(),
        }
    }
}

/// The opt-in grace window of refresh rotation.
///
/// Within `window` after a token was rotated, presenting that *previous* token again
/// returns the family's current token (the successor it was rotated into) instead of
/// revoking the family, at most `max_reuses` times. Nothing new is minted and the
/// family does not fork. Outside the window, after `max_reuses`, or for any older
/// token, reuse revokes the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GracePolicy {
    /// How long after a rotation the previous token is still answered (zero: never).
    pub window: Duration,
    /// How many times the previous token may be presented again within the window.
    pub max_reuses: u32,
}

impl GracePolicy {
    /// No grace: any reuse revokes the family (the default).
    pub const fn disabled() -> Self {
        Self {
            window: Duration::ZERO,
            max_reuses: 0,
        }
    }

    /// A grace window of `window`, answering at most `max_reuses` repeats.
    pub const fn new(window: Duration, max_reuses: u32) -> Self {
        Self { window, max_reuses }
    }

    /// Whether any reuse can be forgiven.
    pub fn is_enabled(&self) -> bool {
        !self.window.is_zero() && self.max_reuses > 0
    }
}

impl Default for GracePolicy {
    fn default() -> Self {
        Self::disabled()
    }
}

/// API keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKeyPolicy {
    /// `last_used_at` is written at most once per this interval per key (default one
    /// minute), so verification does not write on every request.
    pub last_used_resolution: Duration,
    /// The most live keys (neither revoked nor expired) one owner may hold (default
    /// 100); creating one more fails with [`crate::Error::TooManyApiKeys`].
    pub max_live_per_owner: u32,
}

impl Default for ApiKeyPolicy {
    fn default() -> Self {
        Self {
            last_used_resolution: Duration::from_secs(MINUTE),
            max_live_per_owner: 100,
        }
    }
}

/// Email-verification and password-reset tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OneTimePolicy {
    /// Lifetime of an email-verification token (default 24 hours).
    pub email_verification_ttl: Duration,
    /// Lifetime of a password-reset token (default 1 hour).
    pub password_reset_ttl: Duration,
    /// At most one token per user and kind per this interval (default 5 minutes; zero
    /// disables the limit).
    pub min_issue_interval: Duration,
}

impl Default for OneTimePolicy {
    fn default() -> Self {
        Self {
            email_verification_ttl: Duration::from_secs(DAY),
            password_reset_ttl: Duration::from_secs(HOUR),
            min_issue_interval: Duration::from_secs(5 * MINUTE),
        }
    }
}

/// Server-side sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionPolicy {
    /// A session ends when unused for this long (default 30 minutes). Sliding: each use
    /// pushes it back, up to the absolute expiry.
    pub idle_timeout: Duration,
    /// A session ends this long after it began, however active (default 12 hours).
    pub absolute_lifetime: Duration,
    /// The idle expiry is pushed back at most once per this interval (default one
    /// minute), so loading a session does not write on every request. The idle timeout
    /// is therefore exact to within this interval.
    pub touch_resolution: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * MINUTE),
            absolute_lifetime: Duration::from_secs(12 * HOUR),
            touch_resolution: Duration::from_secs(MINUTE),
        }
    }
}
