//! The schedule, as pure functions of the rows and the time: which key of a job signs,
//! which are published, and which rotation is due. Every process computes the same
//! answers from the same rows, so they switch keys at the same instant without
//! talking to each other.

use std::time::Duration;

use serde::Serialize;
use token_core::Timestamp;
use token_opaque::KeyRecord;

/// Where a key is in its life, at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyState {
    /// Published in the key sets; not yet signing (or encrypting, or hashing).
    Pending,
    /// Signs (encrypts, hashes) new tokens; published.
    Active,
    /// Verifies (decrypts, matches) only; published until it retires.
    Retiring,
    /// Gone: nothing it signed is still alive.
    Retired,
    /// Revoked: gone at once, kept as a record.
    Revoked,
}

impl KeyState {
    /// `pending`, `active`, `retiring`, `retired` or `revoked`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
            Self::Revoked => "revoked",
        }
    }

    /// Whether the key is in the key sets and the verifying rings.
    pub const fn is_published(self) -> bool {
        matches!(self, Self::Pending | Self::Active | Self::Retiring)
    }
}

/// When a job's keys rotate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Schedule {
    /// How long each key signs before its successor takes over (`None`: only on
    /// demand, as for the API-key pepper).
    pub rotate_every: Option<Duration>,
    /// How long before it signs a new key is published.
    pub publish_ahead: Duration,
    /// How long a key keeps verifying after its successor took over: the job's longest
    /// token lifetime plus the clock leeway (`None`: until revoked, as for the pepper,
    /// which long-lived API keys were hashed with).
    pub retire_after: Option<Duration>,
}

impl Schedule {
    /// A schedule.
    pub const fn new(
        rotate_every: Option<Duration>,
        publish_ahead: Duration,
        retire_after: Option<Duration>,
    ) -> Self {
        Self {
            rotate_every,
            publish_ahead,
            retire_after,
        }
    }
}

fn at_or_before(t: Timestamp, now: Timestamp) -> bool {
    t.unix_seconds() <= now.unix_seconds()
}

/// The key of `rows` (one job's) that signs at `now`: the newest generation that has
/// activated and is neither revoked nor retired.
pub(super) fn signing<'a>(rows: &[&'a KeyRecord], now: Timestamp) -> Option<&'a KeyRecord> {
    rows.iter()
        .copied()
        .filter(|r| {
            r.revoked_at.is_none()
                && at_or_before(r.activates_at, now)
                && !r.retires_at.is_some_and(|t| at_or_before(t, now))
        })
        .max_by_key(|r| r.generation)
}

/// The state of `row` at `now`, given the job's signing key.
pub(super) fn state(row: &KeyRecord, signer: Option<&KeyRecord>, now: Timestamp) -> KeyState {
    if row.revoked_at.is_some() {
        KeyState::Revoked
    } else if !at_or_before(row.activates_at, now) {
        KeyState::Pending
    } else if signer.is_some_and(|s| s.kid == row.kid) {
        KeyState::Active
    } else if row.retires_at.is_some_and(|t| at_or_before(t, now)) {
        KeyState::Retired
    } else {
        KeyState::Retiring
    }
}

/// A key to add to a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Addition {
    pub(super) generation: i64,
    pub(super) activates_at: Timestamp,
    /// The key whose retirement the addition sets, and when.
    pub(super) retire: Option<(usize, Timestamp)>,
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// What a process holding the key-encryption key adds to one job at `now`: the first
/// key, a replacement for a revoked current key (active at once), or the next key of
/// the schedule once it is due (`publish_ahead` before its predecessor's time is up).
/// `rows` are the job's rows by generation; indexes in the answer point into them.
pub(super) fn due(rows: &[&KeyRecord], schedule: &Schedule, now: Timestamp) -> Option<Addition> {
    let signer = signing(rows, now);
    let retire_signer = |at: Timestamp| {
        signer.and_then(|s| {
            let i = rows.iter().position(|r| r.kid == s.kid)?;
            Some((i, plus(at, schedule.retire_after?)))
        })
    };
    let Some(newest) = rows.iter().max_by_key(|r| r.generation) else {
        return Some(Addition {
            generation: 1,
            activates_at: now,
            retire: None,
        });
    };
    let next = newest.generation.saturating_add(1);
    let has_pending = rows
        .iter()
        .any(|r| r.revoked_at.is_none() && !at_or_before(r.activates_at, now));
    if newest.revoked_at.is_some() || (signer.is_none() && !has_pending) {
        // The current key was revoked (or nothing can sign): a replacement, at once.
        return Some(Addition {
            generation: next,
            activates_at: now,
            retire: retire_signer(now),
        });
    }
    let every = schedule.rotate_every?;
    let scheduled = plus(newest.activates_at, every);
    if !at_or_before(scheduled.saturating_sub(schedule.publish_ahead), now) {
        return None;
    }
    // Late (every process was down when it fell due): still published ahead.
    let earliest = plus(now, schedule.publish_ahead);
    let activates_at = if scheduled.unix_seconds() < earliest.unix_seconds() {
        earliest
    } else {
        scheduled
    };
    let i = rows.iter().position(|r| r.kid == newest.kid)?;
    Some(Addition {
        generation: next,
        activates_at,
        retire: schedule.retire_after.map(|d| (i, plus(activates_at, d))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn row(generation: i64, activates: i64) -> KeyRecord {
        KeyRecord::new(
            format!("k{generation}"),
            "default".into(),
            "access".into(),
            "v4.public".into(),
            generation,
            "kek".into(),
            String::new(),
            String::new(),
            None,
            ts(activates),
            ts(activates),
        )
    }

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_unix_seconds(s).unwrap()
    }

    fn schedule() -> Schedule {
        Schedule::new(Some(24 * HOUR), HOUR, Some(HOUR / 4))
    }

    #[test]
    fn the_first_key_signs_at_once() {
        let a = due(&[], &schedule(), ts(1000)).unwrap();
        assert_eq!(
            (a.generation, a.activates_at, a.retire),
            (1, ts(1000), None)
        );
    }

    #[test]
    fn the_next_key_is_added_publish_ahead_before_it_signs() {
        let r1 = row(1, 0);
        let rows = [&r1];
        let day = 86_400;
        assert_eq!(due(&rows, &schedule(), ts(day - 3601)), None);
        let a = due(&rows, &schedule(), ts(day - 3600)).unwrap();
        assert_eq!(a.generation, 2);
        assert_eq!(a.activates_at, ts(day));
        assert_eq!(a.retire, Some((0, ts(day + 900))));
    }

    #[test]
    fn a_late_rotation_still_publishes_ahead() {
        let r1 = row(1, 0);
        let a = due(&[&r1], &schedule(), ts(10 * 86_400)).unwrap();
        assert_eq!(a.activates_at, ts(10 * 86_400 + 3600));
    }

    #[test]
    fn nothing_is_due_while_the_next_key_is_pending() {
        let r1 = row(1, 0);
        let r2 = row(2, 86_400);
        assert_eq!(due(&[&r1, &r2], &schedule(), ts(86_000)), None);
    }

    #[test]
    fn a_revoked_current_key_is_replaced_at_once() {
        let r1 = row(1, 0);
        let mut r2 = row(2, 100);
        r2.revoked_at = Some(ts(200));
        let a = due(&[&r1, &r2], &schedule(), ts(300)).unwrap();
        assert_eq!((a.generation, a.activates_at), (3, ts(300)));
        // The key that signs meanwhile (the older one) retires after the replacement.
        assert_eq!(a.retire, Some((0, ts(300 + 900))));
    }

    #[test]
    fn states_follow_the_timestamps() {
        use KeyState::{Active, Pending, Retired, Retiring};
        let mut r1 = row(1, 0);
        r1.retires_at = Some(ts(1000));
        let r2 = row(2, 500);
        let r3 = row(3, 2000);
        let rows = [&r1, &r2, &r3];
        let at = |now: i64| {
            let now = ts(now);
            let s = signing(&rows, now);
            rows.iter().map(|r| state(r, s, now)).collect::<Vec<_>>()
        };
        assert_eq!(at(100), [Active, Pending, Pending]);
        assert_eq!(at(600), [Retiring, Active, Pending]);
        assert_eq!(at(1000), [Retired, Active, Pending]);
        assert_eq!(at(2000), [Retired, Retiring, Active]);
    }

    #[test]
    fn a_retired_key_never_signs_again() {
        let mut r1 = row(1, 0);
        r1.retires_at = Some(ts(1000));
        let mut r2 = row(2, 500);
        r2.revoked_at = Some(ts(1500));
        assert!(signing(&[&r1, &r2], ts(2000)).is_none());
        // Before it retired, the older key takes over from a revoked successor.
        assert_eq!(signing(&[&r1, &r2], ts(900)).map(|r| r.generation), Some(1));
    }
}
