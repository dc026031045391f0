//! The revocation replica at a million entries: memory and full-resync time.
//!
//! 1. Fill: `ENTRIES` revoked `jti`s (32 hex digits, as `Claims::random_token_id`
//!    draws them) are written through `RedisBlocklist::revoke` — the same script a
//!    service runs, so the index and the feed hold exactly what production writes —
//!    `WRITERS` at a time on one multiplexed connection, under a key prefix of this
//!    run's own, each expiring in 15 minutes.
//! 2. Measure, in a fresh process (this binary started again), so that nothing of the
//!    fill is in its heap: the resident set (`VmRSS`) before `ReplicatedBlocklist::start`,
//!    after it (the first full load), and after `RESYNCS` more full loads back to back
//!    (`resync_every` zero), plus the peak (`VmHWM`); the time of the first load
//!    (connection included) and the mean time of the later ones; then the index query
//!    alone, against the feed's one-request timeout (a load whose query takes longer
//!    fails, and the replica cannot start).
//! 3. Clean up: the run's index, feed and revocation keys are deleted.
//!
//! A full load is one `ZRANGE … BYSCORE WITHSCORES` of the index, parsed into the
//! in-memory maps; it runs at start, after any feed error, and every
//! `ReplicaOptions::resync_every` (default one minute). The new state is built before
//! the old one is dropped, so a process that resyncs holds two states for a moment:
//! the resident set after several resyncs is the figure to plan memory with.
//!
//! Needs `TESSERA_TEST_REDIS_URL` (skipped, saying so on stderr, without it). Results
//! are printed, and written to `$TESSERA_BENCH_OUT/replica.json` when that is set.
//! `--quick` figures are not different: the fill and the loads are the measurement.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    clippy::indexing_slicing,
    missing_docs
)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use token_core::{Clock as _, SystemClock};
use token_policy::{Blocklist as _, RedisBlocklist, ReplicaOptions, ReplicatedBlocklist};

/// Revoked tokens loaded.
const ENTRIES: u64 = 1_000_000;
/// Concurrent writers during the fill.
const WRITERS: u64 = 64;
/// Full loads timed after the first.
const RESYNCS: u64 = 4;
/// Set in the environment of this binary started as the measuring process: the prefix.
const CHILD: &str = "TESSERA_REPLICA_BENCH_PREFIX";
const REDIS_URL: &str = "TESSERA_TEST_REDIS_URL";

fn main() {
    let Some(url) = std::env::var(REDIS_URL).ok().filter(|u| !u.is_empty()) else {
        eprintln!(
            "!!! SKIPPED replica memory and resync at 1M revocations: {REDIS_URL} is not set \
             (`cargo xtask services up`)"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(prefix) = std::env::var(CHILD) {
        let figures = rt.block_on(measure(&url, &prefix));
        println!("{figures}");
        return;
    }

    let mut salt = [0u8; 8];
    getrandom::fill(&mut salt).unwrap();
    let salt = u64::from_le_bytes(salt);
    let prefix = format!("bench-replica-{salt:016x}:");
    let load_before = load_average();
    let stats_before = rt.block_on(command_stats(&url));
    let fill = rt.block_on(fill(&url, &prefix, salt));
    let stats_filled = rt.block_on(command_stats(&url));
    println!(
        "replica: {ENTRIES} revocations written through RedisBlocklist::revoke in {:.1} s \
         ({:.0}/s, {WRITERS} writers)",
        fill.as_secs_f64(),
        ENTRIES as f64 / fill.as_secs_f64()
    );

    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, &prefix)
        .env(REDIS_URL, &url)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stats_measured = rt.block_on(command_stats(&url));
    let cleaned = rt.block_on(clean(&url, &prefix));
    // Redis's own time per command (`INFO commandstats`), over the fill (the revoke
    // script) and over the measuring process (the index reads).
    let per_call = |before: &Stats, after: &Stats, cmd: &str| {
        let (c0, u0) = before.get(cmd).copied().unwrap_or_default();
        let (c1, u1) = after.get(cmd).copied().unwrap_or_default();
        let calls = c1.saturating_sub(c0);
        json!({
            "calls": calls,
            "usec_per_call": if calls == 0 { 0.0 } else {
                ((u1.saturating_sub(u0)) as f64 / calls as f64 * 10.0).round() / 10.0
            },
        })
    };
    let redis_time = json!({
        "revoke_script": per_call(&stats_before, &stats_filled, "evalsha"),
        "zrange": per_call(&stats_filled, &stats_measured, "zrange"),
    });
    println!("replica: Redis's own time per command: {redis_time}");
    assert!(out.status.success(), "the measuring process failed");
    let figures: Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rev()
            .find(|l| l.starts_with(b"{"))
            .expect("the measuring process's figures"),
    )
    .unwrap();
    let mib = |v: &Value| v.as_f64().unwrap_or_default() / (1024.0 * 1024.0);
    println!(
        "replica: first full load {:.0} ms (connection included), full resync {:.0} ms \
         (mean of {RESYNCS}, {} failed), the index query alone {:.0} ms (the feed's request \
         timeout: {} ms); resident +{:.0} MiB after the first load, +{:.0} MiB after \
         {RESYNCS} resyncs, peak +{:.0} MiB ({} entries held); {cleaned} keys removed",
        figures["first_load_ms"].as_f64().unwrap_or_default(),
        figures["resync_ms"].as_f64().unwrap_or_default(),
        figures["failed_loads"],
        figures["index_query_ms"].as_f64().unwrap_or_default(),
        figures["feed_request_timeout_ms"],
        mib(&figures["rss_after_first_load_bytes"]),
        mib(&figures["rss_after_resyncs_bytes"]),
        mib(&figures["peak_bytes"]),
        figures["entries"],
    );
    let summary = json!({
        "entries_written": ENTRIES,
        "fill_seconds": (fill.as_secs_f64() * 10.0).round() / 10.0,
        "writers": WRITERS,
        "resyncs_timed": RESYNCS,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "measured": figures,
        "redis_time": redis_time,
    });
    if let Some(dir) = std::env::var_os("TESSERA_BENCH_OUT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("replica.json"),
            serde_json::to_string_pretty(&summary).unwrap(),
        )
        .unwrap();
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The `n`th revoked id of this run: 32 hex digits.
fn jti(salt: u64, n: u64) -> String {
    format!("{salt:016x}{n:016x}")
}

/// Writes `ENTRIES` revocations; the time it took.
async fn fill(url: &str, prefix: &str, salt: u64) -> Duration {
    let source = Arc::new(
        RedisBlocklist::connect(url)
            .await
            .unwrap()
            .with_prefix(prefix),
    );
    let expires = SystemClock
        .now()
        .checked_add(Duration::from_secs(900))
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let source = source.clone();
        let done = done.clone();
        writers.push(tokio::spawn(async move {
            let mut n = w;
            while n < ENTRIES {
                assert!(source.revoke(&jti(salt, n), expires).await.unwrap());
                n += WRITERS;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!(
                    "replica: {} of {ENTRIES} written",
                    done.load(Ordering::Relaxed)
                );
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    progress.abort();
    started.elapsed()
}

/// `VmRSS` and `VmHWM` of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .expect("a memory figure in /proc/self/status")
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The measuring process: loads the replica and times its full loads.
async fn measure(url: &str, prefix: &str) -> Value {
    let source = RedisBlocklist::connect(url)
        .await
        .unwrap()
        .with_prefix(prefix);
    let (rss_before, _) = memory();
    let options = ReplicaOptions::default()
        .max_staleness(Duration::from_secs(60))
        .resync_every(Duration::ZERO);
    let started = Instant::now();
    let replica = ReplicatedBlocklist::start(source, options).await.unwrap();
    let first_load = started.elapsed();
    let (rss_first, _) = memory();
    let status = replica.status();
    assert!(
        status.entries >= usize::try_from(ENTRIES).unwrap(),
        "the replica holds {} entries",
        status.entries
    );
    // The feed task now loads the index back to back: count RESYNCS more, and any
    // failed load (a failure would make the mean longer and must be told).
    let resyncs = status.resyncs;
    let timed_from = Instant::now();
    let deadline = timed_from + Duration::from_secs(600);
    let mut failures = 0;
    let mut failing = false;
    loop {
        let now = replica.status();
        if now.resyncs >= resyncs + RESYNCS {
            break;
        }
        if now.last_error.is_some() && !failing {
            failures += 1;
            eprintln!("replica: a full load failed: {:?}", now.last_error);
        }
        failing = now.last_error.is_some();
        assert!(Instant::now() < deadline, "the resyncs did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let resync = timed_from.elapsed() / u32::try_from(RESYNCS).unwrap();
    let (rss_after, peak) = memory();
    let entries = replica.status().entries;
    drop(replica);
    // The index query alone, as the feed sends it (`RedisBlocklist` keeps the index at
    // `{<prefix>}rev:index`), against the feed's default one-request timeout: how much
    // of a full load is Redis and the transfer.
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let started = Instant::now();
    let index: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(format!("{{{prefix}}}rev:index"))
        .arg(format!("({}", SystemClock.now().unix_seconds()))
        .arg("+inf")
        .arg("BYSCORE")
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap();
    let query = started.elapsed();
    assert_eq!(index.len(), usize::try_from(ENTRIES).unwrap());
    json!({
        "entries": entries,
        "first_load_ms": first_load.as_millis(),
        "resync_ms": resync.as_millis(),
        "failed_loads": failures,
        "index_query_ms": query.as_millis(),
        "feed_request_timeout_ms": ReplicaOptions::default().timeout.as_millis(),
        "rss_after_first_load_bytes": rss_first.saturating_sub(rss_before),
        "rss_after_resyncs_bytes": rss_after.saturating_sub(rss_before),
        "peak_bytes": peak.saturating_sub(rss_before),
    })
}

/// `command → (calls, microseconds)` from `INFO commandstats`.
type Stats = std::collections::HashMap<String, (u64, u64)>;

async fn command_stats(url: &str) -> Stats {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    // cmdstat_zrange:calls=4,usec=123,usec_per_call=30.75,rejected_calls=0,failed_calls=0
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            Some((name.to_owned(), (field("calls")?, field("usec")?)))
        })
        .collect()
}

/// Deletes every key of the run (index, feed, revocations); how many.
async fn clean(url: &str, prefix: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut removed = 0;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{{{prefix}}}*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
            removed += n;
        }
        if next == 0 {
            return removed;
        }
        cursor = next;
    }
}
