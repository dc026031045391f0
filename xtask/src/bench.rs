//! `cargo xtask bench`: every criterion benchmark, then `target/bench/summary.json`
//! and the generated part of `docs/PERFORMANCE.md` (a table and an SVG bar chart of
//! tessera against the raw primitive measured in the same run).
//!
//! Benchmark groups name their functions `tessera`, `baseline-<what>` and
//! `peer-<what>`; criterion's `target/criterion/**/new/{benchmark,estimates}.json`
//! are read back.
//!
//! Two benches are not criterion's: the end-to-end `GET /me` load test
//! (`token-bench/benches/e2e.rs`, against the reference service this task builds
//! first) and the replica at a million revocations (`token-bench/benches/replica.rs`).
//! They write `target/bench/e2e.json` and `target/bench/replica.json`, which the
//! summary and the report take in.

// serde_json::Value indexing returns Null when absent; it cannot panic.
#![allow(
    clippy::indexing_slicing,
    clippy::needless_raw_string_hashes,
    clippy::cast_precision_loss
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::services;
use crate::util::{Result, cargo, exec, output, root, step};

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Short warm-up and measurement times (the whole set in a few minutes).
    #[arg(long)]
    quick: bool,
    /// Only summarise the results already in target/criterion.
    #[arg(long)]
    report_only: bool,
}

/// Goals: the largest acceptable ratio against the baseline, by group.
const GOALS: &[(&str, f64)] = &[
    ("v4.public verify+validate", 1.15),
    ("TokenService::verify_access (in-process blocklist)", 1.20),
    ("v4.local decrypt+validate (implicit assertion)", 1.10),
    ("v3.public sign", 1.15),
    ("v3.public verify+validate", 1.15),
    ("v3.local decrypt+validate", 1.5),
    ("JWT ES256 verify+validate", 1.10),
    ("JWT EdDSA verify+validate", 1.20),
    ("TokenService::verify_access (Redis revocation)", 1.25),
    ("API-key verify, SQLite WAL, 1M keys", 2.0),
    ("API-key verify, PostgreSQL, warm", 2.0),
    ("refresh rotation, SQLite WAL", 1.5),
    ("refresh rotation, PostgreSQL", 1.5),
    ("v4.public sign", 1.15),
    ("v4.local encrypt (implicit assertion)", 1.15),
    ("JWT ES256 sign", 1.15),
    ("JWT EdDSA sign", 1.15),
];

/// The end-to-end goal: the reference service's `GET /me` throughput at least this
/// share of the bare handler's (the bench writes it with its results too).
const E2E_GOAL: f64 = 0.85;

const START: &str = "<!-- xtask bench: start -->";
const END: &str = "<!-- xtask bench: end -->";

pub(crate) fn run(args: &Args) -> Result {
    if !args.report_only {
        step("cargo bench (all bench targets)");
        // The summary must come from this run only: drop earlier results (criterion
        // keeps every group it ever measured).
        let previous = root().join("target").join("criterion");
        if previous.is_dir() {
            fs::remove_dir_all(&previous)?;
        }
        let out = root().join("target").join("bench");
        for extra in ["e2e.json", "replica.json"] {
            if out.join(extra).is_file() {
                fs::remove_file(out.join(extra))?;
            }
        }
        step(
            "cargo build --release -p token-axum --example auth_server (for the end-to-end bench)",
        );
        exec(
            "build the reference service",
            cargo().args([
                "build",
                "--release",
                "-p",
                "token-axum",
                "--example",
                "auth_server",
            ]),
        )?;
        let auth_server = target_dir()?
            .join("release")
            .join("examples")
            .join("auth_server");
        let env = services::up()?;
        let mut cmd = cargo();
        cmd.args(["bench", "--workspace", "--bench", "*"])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // Criterion writes where the summary reads, whatever the target directory.
            .env("CRITERION_HOME", &previous)
            .env("TESSERA_BENCH_OUT", &out)
            .env("TESSERA_AUTH_SERVER", &auth_server);
        if args.quick {
            cmd.args(["--", "--warm-up-time", "0.5", "--measurement-time", "1.5"]);
        }
        let ran = exec("cargo bench", &mut cmd);
        let stopped = services::down();
        ran?;
        stopped?;
    }
    step("summary");
    let results = collect(&root().join("target").join("criterion"))?;
    let out = root().join("target").join("bench");
    let extra = |name: &str| -> Result<Value> {
        let path = out.join(name);
        if path.is_file() {
            Ok(serde_json::from_str(&fs::read_to_string(path)?)?)
        } else {
            Ok(Value::Null)
        }
    };
    let (e2e, replica) = (extra("e2e.json")?, extra("replica.json")?);
    let summary = json!({
        "rows": summarise(&results),
        "e2e": e2e,
        "replica": replica,
    });
    fs::create_dir_all(&out)?;
    fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!("wrote {}", out.join("summary.json").display());
    write_report(&summary)?;
    Ok(())
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or the workspace's `target/`).
fn target_dir() -> Result<std::path::PathBuf> {
    let meta: Value = serde_json::from_str(&output(cargo().args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
    ]))?)?;
    meta["target_directory"]
        .as_str()
        .map(std::path::PathBuf::from)
        .ok_or_else(|| "cargo metadata names no target directory".into())
}

/// `(group, function) -> mean ns per iteration`.
fn collect(dir: &Path) -> Result<BTreeMap<(String, String), f64>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Err("no criterion results: run `cargo xtask bench` first".into());
    }
    visit(dir, &mut out)?;
    Ok(out)
}

fn visit(dir: &Path, out: &mut BTreeMap<(String, String), f64>) -> Result {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let new = path.join("new");
        if new.join("benchmark.json").is_file() && new.join("estimates.json").is_file() {
            let bench: Value =
                serde_json::from_str(&fs::read_to_string(new.join("benchmark.json"))?)?;
            let est: Value =
                serde_json::from_str(&fs::read_to_string(new.join("estimates.json"))?)?;
            let group = bench["group_id"].as_str().unwrap_or_default().to_owned();
            let function = bench["function_id"].as_str().unwrap_or_default().to_owned();
            if let Some(mean) = est["mean"]["point_estimate"].as_f64() {
                out.insert((group, function), mean);
            }
        } else if path.file_name().is_some_and(|n| n != "report") {
            visit(&path, out)?;
        }
    }
    Ok(())
}

fn summarise(results: &BTreeMap<(String, String), f64>) -> Value {
    let mut groups: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for ((g, f), ns) in results {
        groups.entry(g).or_default().push((f, *ns));
    }
    let mut rows = Vec::new();
    for (group, functions) in &groups {
        let baseline = functions.iter().find(|(f, _)| f.starts_with("baseline-"));
        for (f, ns) in functions {
            if !(*f == "tessera" || f.starts_with("peer-")) {
                continue;
            }
            let name = if *f == "tessera" {
                (*group).to_owned()
            } else {
                format!("{group} [{}]", f.trim_start_matches("peer-"))
            };
            let goal = GOALS.iter().find(|(g, _)| g == group).map(|(_, r)| *r);
            rows.push(json!({
                "name": name,
                "ns_per_op": ns.round(),
                "baseline": baseline.map(|(b, _)| b.trim_start_matches("baseline-")),
                "baseline_ns_per_op": baseline.map(|(_, b)| b.round()),
                "ratio": baseline.map(|(_, b)| (ns / b * 1000.0).round() / 1000.0),
                "goal": if *f == "tessera" { goal } else { None },
            }));
        }
        if baseline.is_none()
            && functions
                .iter()
                .all(|(f, _)| !f.starts_with("peer-") && *f != "tessera")
        {
            // Groups without the tessera/baseline convention (e.g. storage benches).
            for (f, ns) in functions {
                let name = if f.is_empty() {
                    (*group).to_owned()
                } else {
                    format!("{group} / {f}")
                };
                rows.push(json!({
                    "name": name,
                    "ns_per_op": ns.round(),
                    "baseline": Value::Null,
                    "baseline_ns_per_op": Value::Null,
                    "ratio": Value::Null,
                    "goal": Value::Null,
                }));
            }
        }
    }
    Value::Array(rows)
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn write_report(summary: &Value) -> Result {
    let rows = summary["rows"].as_array().cloned().unwrap_or_default();
    let mut md = String::new();
    writeln!(md, "{START}")?;
    writeln!(
        md,
        "Generated by `cargo xtask bench` (criterion means; ratio = tessera ÷ baseline, measured in the same run).\n"
    )?;
    writeln!(
        md,
        "| operation | tessera | baseline | baseline time | ratio | goal |"
    )?;
    writeln!(md, "|---|---:|---|---:|---:|---|")?;
    for r in &rows {
        let ratio = r["ratio"].as_f64();
        let goal = r["goal"].as_f64();
        let verdict = match (ratio, goal) {
            (Some(x), Some(g)) if x <= g => format!("≤ {g} ✓"),
            (Some(_), Some(g)) => format!("≤ {g} ✗"),
            _ => String::new(),
        };
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r["name"].as_str().unwrap_or_default(),
            r["ns_per_op"].as_f64().map(fmt_ns).unwrap_or_default(),
            r["baseline"].as_str().unwrap_or("—"),
            r["baseline_ns_per_op"]
                .as_f64()
                .map(fmt_ns)
                .unwrap_or_default(),
            ratio.map(|x| format!("{x:.2}")).unwrap_or_default(),
            verdict,
        )?;
    }
    write_e2e(&mut md, &summary["e2e"])?;
    write_replica(&mut md, &summary["replica"])?;
    let svg = chart(&rows);
    let docs = root().join("docs");
    fs::create_dir_all(&docs)?;
    fs::write(docs.join("performance.svg"), svg)?;
    writeln!(
        md,
        "\n![tessera against the raw primitive, per operation](performance.svg)"
    )?;
    writeln!(md, "{END}")?;

    let path = docs.join("PERFORMANCE.md");
    let existing = fs::read_to_string(&path).unwrap_or_else(|_| "# Performance\n\n".to_owned());
    let updated = match (existing.find(START), existing.find(END)) {
        (Some(a), Some(b)) if a < b => {
            format!(
                "{}{}{}",
                &existing[..a],
                md.trim_end(),
                &existing[b + END.len()..]
            )
        }
        _ => format!(
            "{}\n## tessera against the libraries underneath\n\n{md}",
            existing.trim_end()
        ),
    };
    fs::write(&path, updated)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The end-to-end table: each server's requests per second and latency, and the
/// reference service's ratio to the bare handler against [`E2E_GOAL`].
fn write_e2e(md: &mut String, e2e: &Value) -> Result {
    let Some(rows) = e2e["rows"].as_array() else {
        writeln!(
            md,
            "\nEnd to end `GET /me`: not measured in this run (the reference service was not built)."
        )?;
        return Ok(());
    };
    writeln!(
        md,
        "\nEnd to end `GET /me` (`token-bench/benches/e2e.rs`): {} keep-alive connections from one \
         load generator on loopback, {} runs per server alternating, each {} s after {} s of \
         warm-up; load average {} before, {} after. A server's ratio is the median, over \
         the runs, of its requests/s over the bare handler's in the same round (the \
         rounds' lowest and highest in brackets); requests/s and latencies are over all \
         runs.\n",
        e2e["connections"],
        e2e["rounds"],
        e2e["measure_seconds"],
        e2e["warm_up_seconds"],
        e2e["load_average_before"].as_str().unwrap_or("?"),
        e2e["load_average_after"].as_str().unwrap_or("?"),
    )?;
    writeln!(
        md,
        "| server | requests/s | p50 | p99 | server CPU per request | ratio | goal |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---|")?;
    for (i, r) in rows.iter().enumerate() {
        let ratio = r["ratio"].as_f64();
        let verdict = match ratio {
            _ if i == 0 => "baseline".to_owned(),
            Some(x) if x >= E2E_GOAL => format!("≥ {E2E_GOAL} ✓"),
            Some(_) => format!("≥ {E2E_GOAL} ✗"),
            None => String::new(),
        };
        writeln!(
            md,
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {:.1} µs ({:.1} user, {:.1} kernel) | {} | {} |",
            r["name"].as_str().unwrap_or_default(),
            r["rps"].as_f64().unwrap_or_default(),
            r["p50_ms"].as_f64().unwrap_or_default(),
            r["p99_ms"].as_f64().unwrap_or_default(),
            r["server_cpu_us_per_request"].as_f64().unwrap_or_default(),
            r["server_user_cpu_us_per_request"]
                .as_f64()
                .unwrap_or_default(),
            r["server_kernel_cpu_us_per_request"]
                .as_f64()
                .unwrap_or_default(),
            ratio
                .map(|x| format!("{x:.2}{}", round_range(&r["round_ratios"])))
                .unwrap_or_default(),
            verdict,
        )?;
    }
    Ok(())
}

/// ` (lowest–highest)` of a row's per-round ratios; nothing for the bare handler's
/// (all 1), a single round, or a result file from before they were recorded.
fn round_range(rounds: &Value) -> String {
    let values: Vec<f64> = rounds
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.len() < 2 || high - low < 0.005 {
        return String::new();
    }
    format!(" ({low:.2}–{high:.2})")
}

/// The replica's memory and full-resync time at a million revocations.
fn write_replica(md: &mut String, replica: &Value) -> Result {
    let m = &replica["measured"];
    if m.is_null() {
        writeln!(
            md,
            "\nRevocation replica at a million entries: not measured in this run (no Redis)."
        )?;
        return Ok(());
    }
    let mib = |v: &Value| v.as_f64().unwrap_or_default() / (1024.0 * 1024.0);
    writeln!(
        md,
        "\nRevocation replica at a million entries (`token-bench/benches/replica.rs`): {} \
         revocations written through `RedisBlocklist::revoke` in {} s; in a fresh process, \
         the first full load took {} ms, a full resync {} ms (mean of {}, {} failed), the \
         index query alone {} ms (the feed's request timeout is {} ms); resident memory \
         +{:.0} MiB after the first load, +{:.0} MiB after the resyncs, peak +{:.0} MiB \
         (load average {} before, {} after).",
        m["entries"],
        replica["fill_seconds"],
        m["first_load_ms"],
        m["resync_ms"],
        replica["resyncs_timed"],
        m["failed_loads"],
        m["index_query_ms"],
        m["feed_request_timeout_ms"],
        mib(&m["rss_after_first_load_bytes"]),
        mib(&m["rss_after_resyncs_bytes"]),
        mib(&m["peak_bytes"]),
        replica["load_average_before"].as_str().unwrap_or("?"),
        replica["load_average_after"].as_str().unwrap_or("?"),
    )?;
    let t = &replica["redis_time"];
    if !t.is_null() {
        writeln!(
            md,
            "Redis's own time (`INFO commandstats`): {} µs per revocation script, {:.0} ms \
             per index query of a million entries.",
            t["revoke_script"]["usec_per_call"],
            t["zrange"]["usec_per_call"].as_f64().unwrap_or_default() / 1000.0,
        )?;
    }
    Ok(())
}

/// Horizontal bars: per operation, the baseline and tessera, scaled to the slower of
/// the two, labelled with their times.
fn chart(rows: &[Value]) -> String {
    let pairs: Vec<(&str, f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r["name"].as_str()?,
                r["ns_per_op"].as_f64()?,
                r["baseline_ns_per_op"].as_f64()?,
            ))
        })
        .collect();
    let (label_w, bar_w, row_h) = (430.0, 300.0, 44.0);
    let height = 30.0 + row_h * pairs.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"##,
        label_w + bar_w + 110.0
    );
    let _ = writeln!(
        s,
        r##"<rect x="{label_w}" y="6" width="12" height="10" fill="#9aa5b1"/><text x="{}" y="15">baseline</text><rect x="{}" y="6" width="12" height="10" fill="#2f6fdf"/><text x="{}" y="15">tessera</text><rect x="{}" y="6" width="12" height="10" fill="#e08a2c"/><text x="{}" y="15">peer library</text>"##,
        label_w + 16.0,
        label_w + 90.0,
        label_w + 106.0,
        label_w + 170.0,
        label_w + 186.0
    );
    for (i, (name, ours, base)) in pairs.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let max = ours.max(*base);
        let wb = bar_w * base / max;
        let wo = bar_w * ours / max;
        let name = name.replace('&', "&amp;").replace('<', "&lt;");
        // Peers (another library's high-level call) are named `group [peer]`.
        let colour = if name.contains('[') {
            "#e08a2c"
        } else {
            "#2f6fdf"
        };
        let _ = writeln!(s, r##"<text x="4" y="{}">{name}</text>"##, y + 20.0);
        let _ = writeln!(
            s,
            r##"<rect x="{label_w}" y="{y}" width="{wb:.1}" height="16" fill="#9aa5b1"/><text x="{}" y="{}">{}</text>"##,
            label_w + wb + 4.0,
            y + 12.0,
            fmt_ns(*base)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{label_w}" y="{}" width="{wo:.1}" height="16" fill="{colour}"/><text x="{}" y="{}">{} ({:.2}×)</text>"##,
            y + 18.0,
            label_w + wo + 4.0,
            y + 30.0,
            fmt_ns(*ours),
            ours / base
        );
    }
    s.push_str("</svg>\n");
    s
}
