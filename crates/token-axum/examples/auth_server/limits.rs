//! The bounds of `POST /login`.

use super::{Arc, Argon2Memory, ConcurrencyBound, Duration, FailureLimiter, IpAddr, Mutex};

/// The bounds of `POST /login`.
///
/// Every login attempt is counted as a failure for its account name and for its client
/// address (IPv4, or IPv6 `/64`) *before* its password is checked, so concurrent
/// guesses cannot overtake the limits; a successful login takes back its own attempts,
/// and only those. A name or an address with `per_account` / `per_address` failures in
/// the `window` that began with its first failure gets `429` (with `Retry-After`) for
/// the rest of that window, without a password check — whatever the password, so a
/// `429` tells nothing about it.
///
/// Only the per-account limit can refuse a login from another address: a locked
/// account refuses its owner too until the window ends (the price of bounding guesses
/// spread over many addresses). One address's failures never refuse another address.
/// A success never resets a count: an attacker who owns an account could otherwise
/// clear the count of the address it guesses from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoginLimits {
    /// Password checks at once (default: one per core).
    pub(crate) concurrent_checks: usize,
    /// How long a login waits for a password check before `503` (default one second).
    pub(crate) max_wait: Duration,
    /// Failed logins per account name within a window (default 10).
    pub(crate) per_account: u32,
    /// Failed logins per client address within a window (default 100: many users
    /// may share one address).
    pub(crate) per_address: u32,
    /// The window (default 15 minutes).
    pub(crate) window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            concurrent_checks: ConcurrencyBound::per_core().permits(),
            max_wait: Duration::from_secs(1),
            per_account: 10,
            per_address: 100,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// The state of [`LoginLimits`].
pub(crate) struct LoginGuard {
    pub(crate) checks: ConcurrencyBound,
    pub(crate) memory: Arc<Argon2Memory>,
    pub(crate) per_account: FailureLimiter<String>,
    pub(crate) per_address: FailureLimiter<IpAddr>,
}

impl LoginGuard {
    pub(crate) fn new(limits: LoginLimits) -> Self {
        let checks = ConcurrencyBound::new(limits.concurrent_checks).max_wait(limits.max_wait);
        Self {
            memory: Arc::new(Argon2Memory {
                free: Mutex::new(Vec::new()),
                max: checks.permits(),
            }),
            checks,
            per_account: FailureLimiter::new(limits.per_account, limits.window),
            per_address: FailureLimiter::new(limits.per_address, limits.window),
        }
    }
}
