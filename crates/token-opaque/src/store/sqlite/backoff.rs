//! Waiting out another connection's lock.

use std::time::{Duration, Instant};

use super::BUSY_TIMEOUT;
use crate::error::{DbErrorKind, Error, Result};

/// Waits between attempts on a locked database, off the runtime's worker threads.
pub(super) struct Backoff {
    deadline: Instant,
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_millis(25);

    pub(super) fn new() -> Self {
        Self {
            deadline: Instant::now() + BUSY_TIMEOUT,
            next: Self::FIRST,
        }
    }

    /// Sleeps before the next attempt, or fails once [`BUSY_TIMEOUT`] has passed.
    pub(super) async fn wait(&mut self) -> Result<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(Error::Database(crate::error::DbError::new(
                DbErrorKind::Busy,
                None,
                format!(
                    "the database stayed locked by another connection for {} s",
                    BUSY_TIMEOUT.as_secs()
                ),
            )));
        }
        let pause = self.next.min(self.deadline - now);
        self.next = (self.next * 2).min(Self::MAX);
        // A blocking-pool sleep needs no timer driver in the caller's runtime.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                if rt
                    .spawn_blocking(move || std::thread::sleep(pause))
                    .await
                    .is_err()
                {
                    // The blocking pool is gone (the runtime is shutting down): pause
                    // here rather than retry without pausing.
                    std::thread::sleep(pause);
                }
            }
            Err(_) => std::thread::sleep(pause),
        }
        Ok(())
    }
}
