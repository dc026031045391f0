//! A bounded load on the reference service that checks, as it goes, what must survive a
//! fault: logins, refresh rotations (some raced), API keys made, used and revoked,
//! logouts, and the revoked credentials tried again.
//!
//! Control lines on standard input mark the fault (`fault`) and its end (`healed`), so
//! the recovery time is measured from the moment the backend is back. Every loop is
//! bounded by the duration and a request budget.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::Mutex;

use crate::row::Row;

/// The cookie the reference service keeps the refresh token in (`--insecure-cookies`).
const REFRESH_COOKIE: &str = "refresh";
/// The header API keys travel in.
const API_KEY_HEADER: &str = "x-api-key";
/// At most this many requests per worker, whatever the duration.
const MAX_REQUESTS_PER_WORKER: u64 = 200_000;
/// Revoked credentials kept to try again.
const MAX_REVOKED: usize = 2_000;
/// At most this many of them tried in the final check.
const FINAL_REVOKED_CHECKS: usize = 400;

/// The load's settings.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// The service's base URL (`http://127.0.0.1:PORT`).
    pub(crate) url: String,
    /// `name:password` of the users, each worker taking one in turn.
    pub(crate) users: Vec<(String, String)>,
    /// Concurrent clients.
    pub(crate) workers: usize,
    /// How long the load runs (the final checks come after).
    pub(crate) duration: Duration,
    /// The longest any request may take: past it, it is a hang.
    pub(crate) request_timeout: Duration,
    /// The revocation bound: a revoked credential may still be accepted this long.
    pub(crate) revocation_bound: Duration,
    /// The refresh grace window: a refresh whose answer was lost may be retried within it.
    pub(crate) refresh_grace: Duration,
    /// The longest the final checks wait for the service to answer again.
    pub(crate) settle: Duration,
}

/// What a fault's control lines said, and what the load saw after.
#[derive(Default)]
struct Marks {
    healed_at: Option<Instant>,
    first_refresh_ok: Option<Instant>,
    first_me_ok: Option<Instant>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    failed_closed: AtomicU64,
    errors_5xx: AtomicU64,
    lost_rotations: AtomicU64,
    double_rotations: AtomicU64,
    revoked_accepted: AtomicU64,
    unanswered: AtomicU64,
    hangs: AtomicU64,
    unexpected: AtomicU64,
    ended_past_grace: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A revoked credential and when its revocation was confirmed.
#[derive(Clone)]
enum Revoked {
    Access(String),
    Refresh(String),
    ApiKey(String),
}

struct Shared {
    settings: Settings,
    http: reqwest::Client,
    counters: Counters,
    marks: std::sync::Mutex<Marks>,
    revoked: Mutex<VecDeque<(Instant, Revoked)>>,
}

/// How a request ended.
enum Outcome {
    Answer(StatusCode, Option<String>, Value),
    /// Connection refused, reset, closed before an answer.
    Unanswered,
    Hang,
}

impl Shared {
    async fn send(&self, request: reqwest::RequestBuilder) -> Outcome {
        bump(&self.counters.requests);
        let started = Instant::now();
        let sent = tokio::time::timeout(self.settings.request_timeout, async {
            let response = request.send().await?;
            let status = response.status();
            let cookie = refresh_cookie(&response);
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, cookie, bytes))
        })
        .await;
        match sent {
            Err(_) => {
                bump(&self.counters.hangs);
                eprintln!(
                    "hang: a request took over {:?}",
                    self.settings.request_timeout
                );
                Outcome::Hang
            }
            Ok(Err(e)) if e.is_timeout() || started.elapsed() >= self.settings.request_timeout => {
                bump(&self.counters.hangs);
                eprintln!("hang: {e}");
                Outcome::Hang
            }
            Ok(Err(_)) => {
                bump(&self.counters.unanswered);
                Outcome::Unanswered
            }
            Ok(Ok((status, cookie, bytes))) => {
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    bump(&self.counters.failed_closed);
                } else if status.is_server_error() {
                    bump(&self.counters.errors_5xx);
                    eprintln!("5xx: {status} {body}");
                }
                Outcome::Answer(status, cookie, body)
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.url)
    }

    fn unexpected(&self, what: &str, status: StatusCode, body: &Value) {
        bump(&self.counters.unexpected);
        eprintln!("unexpected: {what}: {status} {body}");
    }

    /// Marks the first success of a kind after the fault ended.
    fn mark_ok(&self, refresh: bool) {
        let mut marks = self
            .marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if marks.healed_at.is_none() {
            return;
        }
        let slot = if refresh {
            &mut marks.first_refresh_ok
        } else {
            &mut marks.first_me_ok
        };
        if slot.is_none() {
            *slot = Some(Instant::now());
        }
    }

    async fn remember(&self, credential: Revoked) {
        let mut revoked = self.revoked.lock().await;
        if revoked.len() >= MAX_REVOKED {
            revoked.pop_front();
        }
        revoked.push_back((Instant::now(), credential));
    }

    /// Tries a revoked credential again; `true` when it got an answer.
    async fn try_revoked(&self, credential: &Revoked) -> bool {
        let request = match credential {
            Revoked::Access(token) => self.http.get(self.url("/me")).bearer_auth(token),
            Revoked::ApiKey(key) => self.http.get(self.url("/me")).header(API_KEY_HEADER, key),
            Revoked::Refresh(token) => self
                .http
                .post(self.url("/refresh"))
                .header(COOKIE, format!("{REFRESH_COOKIE}={token}")),
        };
        match self.send(request).await {
            Outcome::Answer(status, _, body) => {
                if status.is_success() {
                    bump(&self.counters.revoked_accepted);
                    eprintln!("revoked credential accepted: {status} {body}");
                } else if status != StatusCode::UNAUTHORIZED
                    && status != StatusCode::SERVICE_UNAVAILABLE
                {
                    self.unexpected("a revoked credential", status, &body);
                }
                status != StatusCode::SERVICE_UNAVAILABLE
            }
            Outcome::Unanswered | Outcome::Hang => false,
        }
    }

    /// One revoked credential whose revocation is older than the bound, if any.
    async fn due_revoked(&self, pick: usize) -> Option<Revoked> {
        let revoked = self.revoked.lock().await;
        let bound = self.settings.revocation_bound + Duration::from_millis(500);
        let due: Vec<&Revoked> = revoked
            .iter()
            .filter(|(at, _)| at.elapsed() > bound)
            .map(|(_, c)| c)
            .collect();
        if due.is_empty() {
            return None;
        }
        due.get(pick % due.len()).map(|c| (*c).clone())
    }
}

fn refresh_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            (name == REFRESH_COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
}

/// A client's login session, as the client knows it.
struct Session {
    access: String,
    refresh: String,
    /// When a presentation of `refresh` got no answer (the rotation may have committed).
    ambiguous_at: Option<Instant>,
}

struct Worker {
    shared: Arc<Shared>,
    user: (String, String),
    session: Option<Session>,
    step: u64,
}

impl Worker {
    async fn login(&mut self) {
        let (name, password) = &self.user;
        let request = self
            .shared
            .http
            .post(self.shared.url("/login"))
            .json(&json!({ "username": name, "password": password }));
        match self.shared.send(request).await {
            Outcome::Answer(StatusCode::OK, Some(refresh), body) => {
                match body.get("access_token").and_then(Value::as_str) {
                    Some(access) => {
                        self.session = Some(Session {
                            access: access.to_owned(),
                            refresh,
                            ambiguous_at: None,
                        });
                    }
                    None => self.shared.unexpected("login", StatusCode::OK, &body),
                }
            }
            Outcome::Answer(status, _, body) => {
                // 503: the backend is down (or every password check busy).
                if status != StatusCode::SERVICE_UNAVAILABLE && !status.is_server_error() {
                    self.shared.unexpected("login", status, &body);
                }
                pause().await;
            }
            Outcome::Unanswered | Outcome::Hang => pause().await,
        }
    }

    /// Presents the session's refresh token (twice at once when `race`).
    async fn refresh(&mut self, race: bool) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let presented = session.refresh.clone();
        let request = || {
            self.shared
                .http
                .post(self.shared.url("/refresh"))
                .header(COOKIE, format!("{REFRESH_COOKIE}={presented}"))
        };
        let outcomes = if race {
            let (a, b) = tokio::join!(self.shared.send(request()), self.shared.send(request()));
            vec![a, b]
        } else {
            vec![self.shared.send(request()).await]
        };
        let mut successors: Vec<(String, String)> = Vec::new();
        let mut refused = None;
        let mut ambiguous = false;
        for outcome in outcomes {
            match outcome {
                Outcome::Answer(StatusCode::OK, Some(next), body) => {
                    match body.get("access_token").and_then(Value::as_str) {
                        Some(access) => successors.push((next, access.to_owned())),
                        None => self.shared.unexpected("refresh", StatusCode::OK, &body),
                    }
                }
                Outcome::Answer(StatusCode::UNAUTHORIZED, _, body) => refused = Some(body),
                Outcome::Answer(status, _, body) => {
                    if !status.is_server_error() {
                        self.shared.unexpected("refresh", status, &body);
                    }
                    ambiguous = true;
                }
                Outcome::Unanswered | Outcome::Hang => ambiguous = true,
            }
        }
        if successors
            .iter()
            .any(|(next, _)| successors.first().is_some_and(|(first, _)| first != next))
        {
            bump(&self.shared.counters.double_rotations);
            eprintln!("double rotation: one refresh token answered with two successors");
        }
        if let Some(body) = refused {
            let past_grace = session
                .ambiguous_at
                .is_some_and(|at| at.elapsed() > self.shared.settings.refresh_grace);
            if past_grace {
                // A lost answer retried after the grace window: the family ends, as
                // documented (a replay cannot be told from a theft). Not a loss.
                bump(&self.shared.counters.ended_past_grace);
            } else {
                bump(&self.shared.counters.lost_rotations);
                eprintln!("lost rotation: a refresh token answered with 200 was refused: {body}");
            }
            self.session = None;
            return;
        }
        if let Some((next, access)) = successors.into_iter().next() {
            session.refresh = next;
            session.access = access;
            session.ambiguous_at = None;
            self.shared.mark_ok(true);
        } else if ambiguous {
            session.ambiguous_at.get_or_insert_with(Instant::now);
            pause().await;
        }
    }

    /// `GET /me` with the session's access token, which must be accepted.
    async fn me(&mut self) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let request = self
            .shared
            .http
            .get(self.shared.url("/me"))
            .bearer_auth(&session.access);
        match self.shared.send(request).await {
            Outcome::Answer(StatusCode::OK, _, _) => self.shared.mark_ok(false),
            Outcome::Answer(status, _, body) => {
                if !status.is_server_error() {
                    self.shared
                        .unexpected("a valid access token", status, &body);
                }
                pause().await;
            }
            Outcome::Unanswered | Outcome::Hang => pause().await,
        }
    }

    /// Makes an API key, uses it, revokes it.
    async fn api_key(&mut self) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let access = session.access.clone();
        let request = self
            .shared
            .http
            .post(self.shared.url("/api-keys"))
            .bearer_auth(&access)
            .json(&json!({ "name": "faults", "scopes": ["profile"] }));
        let (id, key) = match self.shared.send(request).await {
            Outcome::Answer(StatusCode::CREATED, _, body) => {
                let (Some(id), Some(key)) = (
                    body.get("id").and_then(Value::as_str),
                    body.get("key").and_then(Value::as_str),
                ) else {
                    self.shared
                        .unexpected("API key made", StatusCode::CREATED, &body);
                    return;
                };
                (id.to_owned(), key.to_owned())
            }
            Outcome::Answer(status, _, body) => {
                if !status.is_server_error() {
                    self.shared.unexpected("API key made", status, &body);
                }
                return;
            }
            Outcome::Unanswered | Outcome::Hang => return,
        };
        let request = self
            .shared
            .http
            .get(self.shared.url("/me"))
            .header(API_KEY_HEADER, &key);
        if let Outcome::Answer(status, _, body) = self.shared.send(request).await {
            if status != StatusCode::OK && !status.is_server_error() {
                self.shared.unexpected("a new API key", status, &body);
            }
        }
        // Revoked until it is confirmed (a retry of a revocation is harmless).
        for _ in 0..20 {
            let request = self
                .shared
                .http
                .delete(self.shared.url(&format!("/api-keys/{id}")))
                .bearer_auth(&access);
            match self.shared.send(request).await {
                Outcome::Answer(StatusCode::NO_CONTENT, _, _) => {
                    self.shared.remember(Revoked::ApiKey(key)).await;
                    return;
                }
                // A retry after a revocation whose answer was lost.
                Outcome::Answer(StatusCode::NOT_FOUND, _, _) => return,
                Outcome::Answer(status, _, body) if !status.is_server_error() => {
                    self.shared.unexpected("API key revoked", status, &body);
                    return;
                }
                _ => pause().await,
            }
        }
    }

    /// Logs out; on `204` both tokens are revoked.
    async fn logout(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let request = self
            .shared
            .http
            .post(self.shared.url("/logout"))
            .bearer_auth(&session.access)
            .header(COOKIE, format!("{REFRESH_COOKIE}={}", session.refresh));
        match self.shared.send(request).await {
            Outcome::Answer(StatusCode::NO_CONTENT, _, _) => {
                self.shared
                    .remember(Revoked::Access(session.access.clone()))
                    .await;
                if session.ambiguous_at.is_none() {
                    self.shared
                        .remember(Revoked::Refresh(session.refresh))
                        .await;
                }
            }
            Outcome::Answer(status, _, body) => {
                if !status.is_server_error() {
                    self.shared.unexpected("logout", status, &body);
                }
                // The outcome is unknown (the revocation may have been written before
                // the failure): the session is given up, never counted as revoked.
                pause().await;
            }
            Outcome::Unanswered | Outcome::Hang => pause().await,
        }
    }

    async fn run(mut self, deadline: Instant) -> Self {
        let budget = MAX_REQUESTS_PER_WORKER;
        while Instant::now() < deadline && self.step < budget {
            self.step += 1;
            if self.session.is_none() {
                self.login().await;
                continue;
            }
            match self.step % 40 {
                0 => self.logout().await,
                13 => self.api_key().await,
                7 | 27 => self.refresh(true).await,
                s if s % 3 == 0 => self.me().await,
                s if s % 5 == 0 => {
                    if let Some(credential) = self
                        .shared
                        .due_revoked(usize::try_from(self.step).unwrap_or(0))
                        .await
                    {
                        self.shared.try_revoked(&credential).await;
                    }
                }
                _ => self.refresh(false).await,
            }
        }
        self
    }

    /// After the load: the session's refresh token must still rotate.
    async fn final_check(&mut self, until: Instant) {
        while self.session.is_some() && Instant::now() < until {
            let before = self.session.as_ref().map(|s| s.refresh.clone());
            self.refresh(false).await;
            let after = self.session.as_ref().map(|s| s.refresh.clone());
            if before != after {
                return;
            }
        }
    }
}

async fn pause() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Reads control lines from standard input until it closes.
async fn control(shared: Arc<Shared>) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut marks = shared
            .marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match line.trim() {
            "fault" => {
                marks.healed_at = None;
                marks.first_me_ok = None;
                marks.first_refresh_ok = None;
            }
            "healed" => marks.healed_at = Some(Instant::now()),
            _ => {}
        }
    }
}

/// Runs the load and the final checks; the row of what was counted.
pub(crate) async fn run(settings: Settings, name: &str, backend: &str) -> anyhow::Result<Row> {
    anyhow::ensure!(!settings.users.is_empty(), "no users");
    anyhow::ensure!((1..=256).contains(&settings.workers), "workers: 1 to 256");
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.request_timeout)
        .pool_max_idle_per_host(settings.workers * 2)
        .build()
        .context("HTTP client")?;
    let shared = Arc::new(Shared {
        settings: settings.clone(),
        http,
        counters: Counters::default(),
        marks: std::sync::Mutex::new(Marks::default()),
        revoked: Mutex::new(VecDeque::new()),
    });
    let control = tokio::spawn(control(shared.clone()));
    let deadline = Instant::now() + settings.duration;
    let workers: Vec<_> = (0..settings.workers)
        .map(|i| {
            let user = settings
                .users
                .get(i % settings.users.len())
                .cloned()
                .unwrap_or_default();
            let worker = Worker {
                shared: shared.clone(),
                user,
                session: None,
                step: u64::try_from(i).unwrap_or(0) * 11,
            };
            tokio::spawn(worker.run(deadline))
        })
        .collect();
    let mut finished = Vec::new();
    for w in workers {
        finished.push(w.await.context("a load worker stopped")?);
    }

    // The final checks: every session's refresh token still rotates, and every revoked
    // credential is refused once past the bound.
    let until = Instant::now() + settings.settle;
    for worker in &mut finished {
        worker.final_check(until).await;
    }
    tokio::time::sleep(settings.revocation_bound + Duration::from_millis(500)).await;
    let revoked: Vec<Revoked> = shared
        .revoked
        .lock()
        .await
        .iter()
        .rev()
        .take(FINAL_REVOKED_CHECKS)
        .map(|(_, c)| c.clone())
        .collect();
    for credential in &revoked {
        while !shared.try_revoked(credential).await && Instant::now() < until {
            pause().await;
        }
    }
    control.abort();

    let c = &shared.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let marks = shared
        .marks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let recovery_ms = marks.healed_at.map(|healed| {
        let last = [marks.first_refresh_ok, marks.first_me_ok]
            .into_iter()
            .map(|t| t.unwrap_or_else(Instant::now))
            .max()
            .unwrap_or(healed);
        u64::try_from(last.saturating_duration_since(healed).as_millis()).unwrap_or(u64::MAX)
    });
    let ended = get(&c.ended_past_grace);
    if ended > 0 {
        eprintln!("{ended} famil(ies) ended by a retry past the grace window after a lost answer");
    }
    Ok(Row {
        name: name.to_owned(),
        backend: backend.to_owned(),
        requests: get(&c.requests),
        failed_closed: get(&c.failed_closed),
        errors_5xx: get(&c.errors_5xx),
        lost_rotations: get(&c.lost_rotations),
        double_rotations: get(&c.double_rotations),
        revoked_accepted: get(&c.revoked_accepted),
        recovery_ms,
        unanswered: get(&c.unanswered),
        hangs: get(&c.hangs),
        unexpected: get(&c.unexpected),
    })
}
