//! Clock faults, through the injected clock: the library's clock steps back and forward
//! by minutes while sessions refresh, log out and verify. An access token is accepted
//! only within its validity (give or take the leeway); a valid one is not refused; no
//! family is revoked or ended by the steps alone; a logged-out token stays refused.

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use std::sync::Arc;
use token_core::{Clock, DEFAULT_LEEWAY, ManualClock, Timestamp};
use token_opaque::OpaqueTokens;
use token_paseto::{PublicIssuer, SecretKey, V4};
use token_policy::{Policy, TokenService};

use crate::row::Row;

/// Concurrent login sessions.
const SESSIONS: usize = 8;
/// The clock stays within this much of where it started.
const MAX_DRIFT: i64 = 40 * 60;

/// An access token and its validity, as the issuer's clock read it.
struct Issued {
    token: String,
    iat: i64,
    exp: i64,
    /// The login session (index, login number) it belongs to.
    session: (usize, u32),
}

/// A step of the clock in seconds: back or forward by 1 to 12 minutes, from a fixed
/// sequence (the same every run), kept within [`MAX_DRIFT`] of the start.
fn step(i: u32, offset: i64) -> i64 {
    let x = u64::from(i)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let minutes = i64::try_from((x >> 33) % 12 + 1).unwrap_or(1);
    let back = (x >> 20) & 1 == 1;
    let s = if back { -minutes * 60 } else { minutes * 60 };
    if (offset + s).abs() > MAX_DRIFT {
        -s
    } else {
        s
    }
}

/// Runs `steps` clock steps.
#[allow(clippy::too_many_lines)]
pub(crate) async fn run(steps: u32) -> anyhow::Result<Row> {
    let clock = Arc::new(ManualClock::at_system_now());
    let start = clock.now().unix_seconds();
    let store = token_opaque::SqliteStore::memory().await?;
    let opaque = OpaqueTokens::builder(store).clock(clock.clone()).build()?;
    let service = TokenService::builder(
        Policy::new("faults", "api"),
        PublicIssuer::new(SecretKey::<V4>::generate()?),
    )
    .opaque(opaque)
    .clock(clock.clone())
    .build();
    let ttl = i64::try_from(service.policy().access_ttl().as_secs()).unwrap_or(0);
    let leeway = i64::try_from(DEFAULT_LEEWAY.as_secs()).unwrap_or(0);
    let claims = json!({ "role": "user" });
    let mut row = Row::new("clock steps (+/- minutes)", "library, SQLite");

    // Each session: its refresh token and how many times it logged in.
    let mut sessions: Vec<(String, u32)> = Vec::new();
    for i in 0..SESSIONS {
        let t = service.login(&format!("user-{i}"), &claims).await?;
        row.requests += 1;
        sessions.push((t.refresh.expose_secret().to_owned(), 0));
    }
    let mut issued: Vec<Issued> = Vec::new();
    // The login sessions logged out.
    let mut logged_out: Vec<(usize, u32)> = Vec::new();
    let mut offset = 0i64;
    for i in 0..steps {
        let s = step(i, offset);
        offset += s;
        clock.set(
            Timestamp::from_unix_seconds(start + offset).context("the clock left the calendar")?,
        );
        let now = clock.now().unix_seconds();
        for (n, (refresh, login)) in sessions.iter_mut().enumerate() {
            row.requests += 1;
            match service.refresh(refresh, |_| claims.clone()).await {
                Ok(t) => {
                    t.refresh.expose_secret().clone_into(refresh);
                    issued.push(Issued {
                        token: t.access.expose_secret().to_owned(),
                        iat: now,
                        exp: now + ttl,
                        session: (n, *login),
                    });
                }
                Err(token_policy::Error::Opaque(
                    token_opaque::Error::Revoked | token_opaque::Error::ReuseDetected,
                )) => {
                    row.lost_rotations += 1;
                    eprintln!("clock step {i}: session {n}'s family was revoked by a clock step");
                }
                Err(e) => {
                    row.unexpected += 1;
                    eprintln!("clock step {i}: session {n} did not rotate: {e}");
                }
            }
        }
        // Every fourth step, a session logs out with its newest access token, and
        // starts again.
        if i % 4 == 0 {
            let n = usize::try_from(i).unwrap_or(0) / 4 % SESSIONS;
            let newest = sessions
                .get(n)
                .and_then(|(_, login)| issued.iter().rev().find(|t| t.session == (n, *login)));
            if let (Some((refresh, login)), Some(last)) = (sessions.get_mut(n), newest) {
                row.requests += 1;
                match service.logout(&last.token, refresh).await {
                    Ok(()) => logged_out.push((n, *login)),
                    Err(e) => {
                        row.unexpected += 1;
                        eprintln!("clock step {i}: logout failed: {e}");
                    }
                }
                let t = service.login(&format!("user-{n}"), &claims).await?;
                row.requests += 1;
                t.refresh.expose_secret().clone_into(refresh);
                *login += 1;
            }
        }
        // Every token issued so far (bounded), against the clock now.
        let keep = issued.len().saturating_sub(400);
        issued.drain(..keep);
        for t in issued.iter().rev().take(64) {
            row.requests += 1;
            let accepted = service.verify_access::<Value>(&t.token).await.is_ok();
            let logged_out = logged_out.contains(&t.session);
            if accepted && (now > t.exp + leeway || now + leeway < t.iat || logged_out) {
                row.revoked_accepted += 1;
                eprintln!(
                    "clock step {i}: a token accepted {}s past its expiry (iat {}, logged out: {logged_out})",
                    now - t.exp,
                    t.iat - now
                );
            }
            if !accepted && !logged_out && t.iat <= now && now <= t.exp {
                row.unexpected += 1;
                eprintln!("clock step {i}: a valid token was refused");
            }
        }
    }
    // A last check at the end of every session: each still rotates once.
    for (refresh, _) in &sessions {
        row.requests += 1;
        if let Err(e) = service.refresh(refresh, |_| claims.clone()).await {
            row.lost_rotations += 1;
            eprintln!("after the clock steps: a family no longer rotates: {e}");
        }
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::{MAX_DRIFT, step};

    #[test]
    fn the_steps_go_both_ways_by_minutes_and_stay_bounded() {
        let mut offset = 0;
        let (mut back, mut forward) = (0, 0);
        for i in 0..1000 {
            let s = step(i, offset);
            assert!((60..=720).contains(&s.abs()) && s % 60 == 0, "{s}");
            offset += s;
            assert!(offset.abs() <= MAX_DRIFT);
            if s < 0 {
                back += 1;
            } else {
                forward += 1;
            }
        }
        assert!(back > 100 && forward > 100);
    }
}
