//! Slow and hostile clients against a running reference service: many idle
//! connections, slowloris headers (a byte at a time, never finished) and oversized
//! bodies, while a well-behaved client keeps calling `GET /me`. The service must keep
//! answering it, close the slow and idle connections within its header timeout, refuse
//! the oversized bodies, and keep its memory bounded.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::row::Row;

/// The hostile scenario's settings.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The service's base URL (`http://127.0.0.1:PORT`).
    #[arg(long)]
    url: String,
    /// The service's process id (its memory is read from `/proc`).
    #[arg(long)]
    pid: u32,
    /// A users file; its first user logs in for the probe.
    #[arg(long)]
    users_file: std::path::PathBuf,
    /// Idle connections (connect, send nothing).
    #[arg(long, default_value_t = 2000)]
    idle: usize,
    /// Slowloris connections (headers a byte a second, never finished).
    #[arg(long, default_value_t = 200)]
    slowloris: usize,
    /// Requests with an oversized body.
    #[arg(long, default_value_t = 50)]
    oversized: usize,
    /// The service's `--header-read-timeout`, in seconds.
    #[arg(long, default_value_t = 2)]
    header_timeout: u64,
    /// The most the service's resident memory may grow, in MiB.
    #[arg(long, default_value_t = 128)]
    max_growth_mib: u64,
}

/// The resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read the memory of process {pid}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

/// Whether the server has closed `stream` (end of file or an error), waiting at most
/// `wait`.
async fn closed(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            // An error answer (408) before the close: keep reading.
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// An oversized body: headers announcing `MiB` mebibytes, then chunks until the server
/// answers or closes. The status it answered, if any.
async fn oversized(addr: &str, mib: usize) -> anyhow::Result<Option<u16>> {
    let mut s = TcpStream::connect(addr).await?;
    let len = mib * 1024 * 1024;
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..(len / chunk.len()) {
        if s.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    Ok(text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok()))
}

/// Runs the scenario.
#[allow(clippy::too_many_lines)]
pub(crate) async fn run(args: Args) -> anyhow::Result<Row> {
    let mut row = Row::new(
        &format!(
            "hostile clients ({} idle, {} slowloris, {} oversized)",
            args.idle, args.slowloris, args.oversized
        ),
        "reference service",
    );
    let addr = args
        .url
        .strip_prefix("http://")
        .context("the URL is http://HOST:PORT")?
        .trim_end_matches('/')
        .to_owned();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let (name, password) = std::fs::read_to_string(&args.users_file)?
        .lines()
        .find_map(|l| l.split_once(':').map(|(n, p)| (n.to_owned(), p.to_owned())))
        .context("no user")?;
    let login: Value = http
        .post(format!("{}/login", args.url))
        .json(&json!({ "username": name, "password": password }))
        .send()
        .await?
        .json()
        .await?;
    let access = login
        .get("access_token")
        .and_then(Value::as_str)
        .context("the probe's login failed")?
        .to_owned();
    let rss_before = rss_kib(args.pid)?;

    // The probe: a well-behaved client, every 50 ms, for the whole scenario.
    let probe = {
        let (http, url, access) = (http.clone(), format!("{}/me", args.url), access.clone());
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let (mut ok, mut bad, mut worst) = (0u64, 0u64, Duration::ZERO);
            for _ in 0..100_000 {
                let t = Instant::now();
                let status = http
                    .get(&url)
                    .bearer_auth(&access)
                    .send()
                    .await
                    .map(|r| r.status());
                worst = worst.max(t.elapsed());
                if matches!(status, Ok(StatusCode::OK)) {
                    ok += 1;
                } else {
                    bad += 1;
                    eprintln!("hostile: the probe got {status:?}");
                }
                tokio::select! {
                    _ = &mut stop_rx => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
            (ok, bad, worst)
        });
        (stop_tx, task)
    };

    // Idle connections.
    let started = Instant::now();
    let mut idle = Vec::with_capacity(args.idle);
    for _ in 0..args.idle {
        row.requests += 1;
        match TcpStream::connect(&addr).await {
            Ok(s) => idle.push(s),
            Err(e) => {
                row.unexpected += 1;
                eprintln!("hostile: an idle connection was not accepted: {e}");
                break;
            }
        }
    }
    // Slowloris: headers started, then a byte a second.
    let mut slow = Vec::with_capacity(args.slowloris);
    for _ in 0..args.slowloris {
        row.requests += 1;
        let mut s = TcpStream::connect(&addr).await?;
        s.write_all(format!("GET /me HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
            .await?;
        slow.push(s);
    }
    let rss_loaded = rss_kib(args.pid)?;
    // Oversized bodies, a few at a time, during the rest.
    let mut refused = 0;
    for _ in 0..args.oversized {
        row.requests += 1;
        match oversized(&addr, 8).await {
            Ok(Some(413)) => refused += 1,
            Ok(other) => {
                row.unexpected += 1;
                eprintln!("hostile: an oversized body was answered {other:?}");
            }
            Err(e) => {
                row.unexpected += 1;
                eprintln!("hostile: an oversized body: {e}");
            }
        }
    }
    // Keep trickling slowloris bytes until past the header timeout.
    let limit = Duration::from_secs(args.header_timeout);
    let trickle_until = started + limit + Duration::from_secs(1);
    while Instant::now() < trickle_until {
        for s in &mut slow {
            let _ = s.write_all(b"X").await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rss_peak = rss_kib(args.pid)?.max(rss_loaded);
    // Every slow and idle connection is closed by now, or very soon.
    let mut still_open = 0;
    for s in slow.iter_mut().chain(idle.iter_mut()) {
        if !closed(s, Duration::from_secs(2)).await {
            still_open += 1;
        }
    }
    if still_open > 0 {
        row.unexpected += 1;
        eprintln!("hostile: {still_open} slow or idle connections outlived the header timeout");
    }
    drop(slow);
    drop(idle);
    let (stop, task) = probe;
    let _ = stop.send(());
    let (ok, bad, worst) = task.await.context("the probe stopped")?;
    row.requests += ok + bad;
    row.unexpected += bad;
    if worst > Duration::from_secs(2) {
        row.unexpected += 1;
        eprintln!("hostile: the probe waited {worst:?} for an answer");
    }
    let growth_mib = rss_peak.saturating_sub(rss_before) / 1024;
    if growth_mib > args.max_growth_mib {
        row.unexpected += 1;
    }
    eprintln!(
        "hostile: probe {ok} ok / {bad} not, slowest {worst:?}; {refused}/{} oversized bodies \
         refused with 413; memory {} KiB -> {} KiB peak (+{growth_mib} MiB, bound {} MiB)",
        args.oversized, rss_before, rss_peak, args.max_growth_mib
    );
    Ok(row)
}
