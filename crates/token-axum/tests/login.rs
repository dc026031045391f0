//! `POST /login` of the reference service under guessing and flooding: failed logins
//! limited per account and per client address (`429`), password checks bounded in
//! number (`503`), the users file, and a flood of wrong passwords against the real
//! `auth_server` binary with its peak memory measured.
//!
//! The flood test runs the example binary beside this test's directory
//! (`target/<profile>/examples/auth_server`). `cargo test -p token-axum` builds it; for
//! this file alone, build it first:
//!
//! ```text
//! cargo build -p token-axum --example auth_server && cargo test -p token-axum --test login -- --nocapture
//! ```
//!
//! Clients on other addresses bind `127.0.0.2` and up, which is loopback on Linux; the
//! tests that need them, and the `/proc` measurement, are Linux only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::too_many_lines
)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/auth_server/main.rs"]
mod auth_server;
mod common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use auth_server::{App, LoginLimits, Mailer, Options};
use common::{Spawned, TestServer, example_binary, unique};

const ALICE_PW: &str = "correct horse battery";
const BOB_PW: &str = "hunter2-but-longer";

async fn start(limits: LoginLimits) -> (TestServer, Arc<App>) {
    let (router, app) = auth_server::build_with_limits(
        Options {
            database_url: "sqlite::memory:".into(),
            redis_url: None,
            users: auth_server::parse_users(&format!("alice:{ALICE_PW},bob:{BOB_PW}")).unwrap(),
            insecure_cookies: true,
            mailer: Mailer::Memory(Arc::new(Mutex::new(Vec::new()))),
            max_api_keys: 100,
            ..Options::default()
        },
        limits,
    )
    .await
    .unwrap();
    (TestServer::start(router).await, app)
}

/// An HTTP client whose connections come from `ip` (a loopback address).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn login(
    client: &reqwest::Client,
    server: &TestServer,
    user: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(server.url("/login"))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await
        .unwrap()
}

/// Checks a refusal: status, error code, `Retry-After` within `1..=max`, no cookie.
async fn expect_retry(response: reqwest::Response, status: StatusCode, code: &str, max: u64) {
    assert_eq!(response.status(), status);
    assert!(response.headers().get("set-cookie").is_none());
    let retry: u64 = response.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=max).contains(&retry), "Retry-After: {retry}");
    assert_eq!(response.json::<Value>().await.unwrap()["error"], code);
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_account_and_per_address() {
    let (server, _app) = start(LoginLimits {
        per_account: 3,
        per_address: 5,
        ..LoginLimits::default()
    })
    .await;
    let window = 15 * 60;
    let a = client_from("127.0.0.2");
    let b = client_from("127.0.0.3");

    // Three wrong passwords for alice from A.
    for _ in 0..3 {
        let r = login(&a, &server, "alice", "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The account is locked, for the right password too: a 429 tells nothing about
    // the password, which is not even checked.
    for password in ["wrong again", ALICE_PW] {
        let r = login(&a, &server, "alice", password).await;
        expect_retry(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited", window).await;
    }
    // The per-account limit holds from any address (documented in `LoginLimits`)…
    let r = login(&b, &server, "alice", ALICE_PW).await;
    expect_retry(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited", window).await;
    // …and only it: A's failures do not refuse B.
    assert_eq!(
        login(&b, &server, "bob", BOB_PW).await.status(),
        StatusCode::OK
    );

    // Two more failures from A (unknown names count as any other) reach A's limit of
    // five: A is refused, even bob with his right password; refusals by the account
    // limit did not count for the address.
    for user in ["nobody", "al ice"] {
        let r = login(&a, &server, user, "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login(&a, &server, "bob", BOB_PW).await;
    expect_retry(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited", window).await;

    // B is not: its successes never count as failures, however many.
    for _ in 0..8 {
        assert_eq!(
            login(&b, &server, "bob", BOB_PW).await.status(),
            StatusCode::OK
        );
    }
    // Nor does a success erase a failure: B's four failures, then a success, then
    // one more failure, and B's fifth failure reaches the limit.
    for user in ["carol", "dave", "erin", "frank"] {
        let r = login(&b, &server, user, "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(&b, &server, "bob", BOB_PW).await.status(),
        StatusCode::OK
    );
    let r = login(&b, &server, "grace", "wrong password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = login(&b, &server, "bob", BOB_PW).await;
    expect_retry(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited", window).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_waits_too_long_for_a_password_check_gets_503() {
    let (server, app) = start(LoginLimits {
        concurrent_checks: 1,
        max_wait: Duration::from_millis(300),
        per_account: 1,
        ..LoginLimits::default()
    })
    .await;
    let client = common::http();
    // Every password check is taken.
    let held = app.login.checks.acquire().await.unwrap();
    let r = login(&client, &server, "alice", ALICE_PW).await;
    expect_retry(
        r,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        1,
    )
    .await;
    drop(held);
    // The 503 checked no password, so it did not count as a failure: with an
    // allowance of one, the right password still gets in.
    let r = login(&client, &server, "alice", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn the_users_file_takes_lines_comments_and_reports_bad_lines_by_number() {
    let text = "# demo accounts\n\nalice:correct horse battery\n   # indented comment\n\
                bob:pa:ss, word\r\n\t\n";
    let users = auth_server::parse_users_file(text).unwrap();
    let users: Vec<(&str, &str)> = users
        .iter()
        .map(|(n, p)| (n.as_str(), secrecy::ExposeSecret::expose_secret(p)))
        .collect();
    assert_eq!(
        users,
        [("alice", "correct horse battery"), ("bob", "pa:ss, word")]
    );
    assert!(
        auth_server::parse_users_file("# nobody\n")
            .unwrap()
            .is_empty()
    );

    for (text, expected) in [
        (
            "alice:long-enough-1\nsecret-no-colon\n",
            "line 2 is not NAME:PASSWORD",
        ),
        ("\n\nal ice:long-enough-1\n", "line 3: a name is"),
        (
            "#\nalice:tiny\n",
            "line 2 (alice): a password is 8 to 1024 bytes",
        ),
        (
            "alice:long-enough-1\n# x\nalice:long-enough-2\n",
            "line 3: alice is named twice",
        ),
    ] {
        let err = auth_server::parse_users_file(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        for secret in ["secret-no-colon", "long-enough", "tiny"] {
            assert!(!err.contains(secret), "{err:?} quotes a password");
        }
    }

    // On the command line: read from the file, never together with --demo-users.
    let dir = std::env::temp_dir().join(format!("token-axum-users-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.txt");
    std::fs::write(&path, text).unwrap();
    let parse = |args: &[&str]| {
        <auth_server::Args as clap::Parser>::try_parse_from(
            ["auth_server"].iter().chain(args).copied(),
        )
    };
    let file = path.to_str().unwrap();
    let args = parse(&["--demo-users-file", file]).unwrap();
    assert!(
        auth_server::warnings(&args)
            .iter()
            .all(|w| !w.contains("process list"))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            auth_server::warnings(&args)
                .iter()
                .any(|w| w.contains("readable by other users"))
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(auth_server::warnings(&args).is_empty());
    }
    assert_eq!(Options::from_args(args).unwrap().users.len(), 2);
    assert!(
        parse(&[
            "--demo-users",
            "alice:long-enough-1",
            "--demo-users-file",
            file
        ])
        .is_err()
    );
    let missing = dir.join("missing.txt");
    let args = parse(&["--demo-users-file", missing.to_str().unwrap()]).unwrap();
    let err = Options::from_args(args).err().unwrap().to_string();
    assert!(err.contains("cannot read --demo-users-file"), "{err}");
    // --demo-users still works, with a warning.
    let args = parse(&["--demo-users", "alice:long-enough-1"]).unwrap();
    assert!(
        auth_server::warnings(&args)
            .iter()
            .any(|w| w.contains("--demo-users puts passwords in the process list"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_users_flag_warns_on_stderr_and_a_bad_users_file_stops_the_start() {
    let service = Spawned::start(["--demo-users", &format!("alice:{ALICE_PW}")]).await;
    let stderr = service.stop().await;
    assert!(
        stderr.contains("warning: --demo-users puts passwords in the process list"),
        "{stderr}"
    );

    let dir = std::env::temp_dir().join(format!("token-axum-users-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.txt");
    std::fs::write(&path, format!("alice:{ALICE_PW}\n\nbob-{BOB_PW}\n")).unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(example_binary())
            .args(["--addr", "127.0.0.1:0", "--demo-users-file"])
            .arg(&path)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--demo-users-file line 3 is not NAME:PASSWORD"),
        "{stderr}"
    );
    assert!(!stderr.contains(BOB_PW) && !stderr.contains(ALICE_PW));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Concurrent wrong-password logins in the flood.
const FLOOD: usize = 500;
/// The peak resident memory the server may reach under the flood.
const MAX_RSS: u64 = 512 * 1024 * 1024;

/// `VmHWM` (peak) and `VmRSS` (now) of process `pid`, in bytes.
#[cfg(target_os = "linux")]
fn memory_of(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// `FLOOD` concurrent wrong-password logins, spread over `clients`: the count of each
/// answer. Every answer must be `401`, `429` or `503` (never a `500` nor a hang), and
/// every refusal carries `Retry-After`.
#[cfg(target_os = "linux")]
async fn flood(clients: &[reqwest::Client], base: &str) -> std::collections::BTreeMap<u16, usize> {
    let start = Arc::new(tokio::sync::Barrier::new(FLOOD));
    let tasks: Vec<_> = (0..FLOOD)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            let (url, start) = (format!("{base}/login"), start.clone());
            // Some against an account, most against names that are none.
            let user = if i % 10 == 0 {
                "alice".to_owned()
            } else {
                format!("nobody{i}")
            };
            tokio::spawn(async move {
                start.wait().await;
                let r = client
                    .post(url)
                    .json(&json!({ "username": user, "password": "wrong password" }))
                    .send()
                    .await
                    .expect("a login failed or hung (30 s)");
                let retry_after = r.headers().contains_key(RETRY_AFTER);
                (r.status(), retry_after)
            })
        })
        .collect();
    let mut answers = std::collections::BTreeMap::new();
    for task in tasks {
        let (status, retry_after) = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("the flood did not end within two minutes")
            .unwrap();
        assert!(
            [
                StatusCode::UNAUTHORIZED,
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::SERVICE_UNAVAILABLE
            ]
            .contains(&status),
            "a wrong-password login answered {status}"
        );
        if status != StatusCode::UNAUTHORIZED {
            assert!(retry_after, "{status} without Retry-After");
        }
        *answers.entry(status.as_u16()).or_default() += 1;
    }
    assert!(
        answers.get(&401).copied().unwrap_or(0) > 0,
        "no password was checked"
    );
    answers
}

/// The real binary under `FLOOD` concurrent wrong-password logins from five client
/// addresses (so that the per-address limit lets most of them reach a password
/// check), twice. The server's peak resident memory stays under `MAX_RSS`; it grows
/// from the start by at most one Argon2id working memory per password check that may
/// run at once (one per core), plus `SLACK`; and the second flood adds less than
/// `SLACK`: memory is bounded by the checks that may run at once, not by how many
/// logins came. Without a bound, each concurrent check holds its own 19 MiB.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_passwords_keeps_the_servers_peak_memory_bounded() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const SLACK: u64 = 64 * 1024 * 1024;
    /// Argon2id with m = 19 MiB, and some.
    const PER_CHECK: u64 = 20 * 1024 * 1024;
    let checks = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);

    let dir = std::env::temp_dir().join(format!("token-axum-flood-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users.txt");
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&users)
            .unwrap()
            .write_all(format!("# flood test\nalice:{ALICE_PW}\nbob:{BOB_PW}\n").as_bytes())
            .unwrap();
    }
    let service = Spawned::start([
        "--demo-users-file",
        users.to_str().unwrap(),
        "--insecure-cookies",
    ])
    .await;
    let (pid, base) = (service.pid(), service.base.clone());
    let before = memory_of(pid).unwrap();

    // Samples the server's memory until the floods are over (VmHWM is the peak since
    // the start; the samples of VmRSS are a second opinion).
    let done = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(before.1));
    let sampler = tokio::spawn({
        let (done, peak_rss) = (done.clone(), peak_rss.clone());
        async move {
            while !done.load(Ordering::SeqCst) {
                if let Some((_, rss)) = memory_of(pid) {
                    peak_rss.fetch_max(rss, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    let peak = || {
        memory_of(pid)
            .unwrap()
            .0
            .max(peak_rss.load(Ordering::SeqCst))
    };

    let clients: Vec<reqwest::Client> = (1..=5)
        .map(|i| client_from(&format!("127.0.0.{i}")))
        .collect();
    let first = flood(&clients, &base).await;
    let peak_first = peak();
    let second = flood(&clients, &base).await;
    done.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    let peak_second = peak();

    // The service still serves a right password, from an address of its own.
    let r = client_from("127.0.0.9")
        .post(format!("{base}/login"))
        .json(&json!({ "username": "bob", "password": BOB_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let mib = |b: u64| b / (1024 * 1024);
    println!(
        "login flood: {FLOOD} concurrent wrong-password logins, twice; answers {first:?}, \
         then {second:?}; server peak RSS (VmHWM) {} MiB after the first, {} MiB after \
         the second (at start {} MiB)",
        mib(peak_first),
        mib(peak_second),
        mib(before.0)
    );
    assert!(
        peak_second < MAX_RSS,
        "peak RSS {} MiB is over {} MiB",
        mib(peak_second),
        mib(MAX_RSS)
    );
    let allowed = PER_CHECK * u64::try_from(checks).unwrap() + SLACK;
    assert!(
        peak_second.saturating_sub(before.0) < allowed,
        "the floods grew the peak RSS by {} MiB, more than {} MiB for {checks} concurrent checks",
        mib(peak_second.saturating_sub(before.0)),
        mib(allowed)
    );
    assert!(
        peak_second - peak_first < SLACK,
        "the second flood grew the peak RSS by {} MiB",
        mib(peak_second - peak_first)
    );
    let stderr = service.stop().await;
    // No warning but the one every start without --kek-file prints.
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains("warning"))
            .all(|l| l.starts_with("warning: no --kek-file")),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_busy_password_reset_leaves_its_token_for_the_retry() {
    let (server, app) = start(LoginLimits {
        concurrent_checks: 1,
        max_wait: Duration::from_millis(300),
        ..LoginLimits::default()
    })
    .await;
    let client = common::http();
    let alice = app.user("alice").unwrap().id.clone();
    let issued = app
        .service
        .issue_one_time(token_opaque::OneTimeKind::PasswordReset, &alice)
        .await
        .unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&issued.token).to_owned();
    let confirm = || {
        client
            .post(server.url("/password-reset/confirm"))
            .json(&json!({ "token": token, "new_password": "a brand new password" }))
            .send()
    };
    // Every password check is taken: the reset waits its bounded turn, then 503…
    let held = app.login.checks.acquire().await.unwrap();
    let r = confirm().await.unwrap();
    expect_retry(
        r,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        1,
    )
    .await;
    drop(held);
    // …without spending the single-use token, so the retry succeeds.
    assert_eq!(confirm().await.unwrap().status(), StatusCode::NO_CONTENT);
    let r = login(&client, &server, "alice", "a brand new password").await;
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;
}
