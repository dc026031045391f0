//! `cargo xtask faults [--quick]`: the fault-injection suite.
//!
//! xtask owns the processes: a PostgreSQL and a Redis of the suite's own (under
//! `target/faults/`, on free loopback ports), and the reference service
//! (`token-axum`'s `auth_server` example), which it starts, kills, restarts, and whose
//! backends it stops, pauses and restarts. `token-faults` (crates/token-faults) puts the
//! load on and checks the invariants. Every scenario writes one row; the rows go to
//! `target/faults/summary.json`, and any broken invariant fails the run.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::services::{
    as_pg_user, chown_postgres, free_port, is_root, pg_bin_dir, postgres_can_write, redis_bin,
    redis_command, wait_for_port,
};
use crate::util::{Result, cargo, output, root, step};

/// `cargo xtask faults` options.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The CI cut: shorter loads, fewer kills and connections (under five minutes).
    #[arg(long)]
    pub(crate) quick: bool,
}

/// The sizes of a run.
struct Plan {
    /// Seconds of load around a backend outage.
    load_seconds: u64,
    /// Seconds a backend stays down.
    outage_seconds: u64,
    /// Kills of the service in the kill loops.
    kills: u32,
    /// Clock steps.
    clock_steps: u32,
    /// Idle connections, slowloris connections, oversized bodies.
    hostile: (usize, usize, usize),
    /// Concurrent clients of the load.
    workers: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                load_seconds: 10,
                outage_seconds: 3,
                kills: 4,
                clock_steps: 100,
                hostile: (1000, 100, 20),
                workers: 6,
            }
        } else {
            Self {
                load_seconds: 30,
                outage_seconds: 6,
                kills: 15,
                clock_steps: 500,
                hostile: (5000, 500, 100),
                workers: 8,
            }
        }
    }
}

/// The revocation bound the service runs with.
const REVOCATION_BOUND: &str = "2s";
const REVOCATION_BOUND_MS: u64 = 2000;
/// A request that takes longer is a hang: above the service's 10 s wait for a
/// database connection, so an outage answers `503` before it.
const REQUEST_TIMEOUT_SECONDS: u64 = 15;
/// The longest a scenario may take to recover once its fault has ended.
const MAX_RECOVERY_MS: u64 = 20_000;
/// The counters that must stay at zero.
const MUST_BE_ZERO: [&str; 6] = [
    "errors_5xx",
    "lost_rotations",
    "double_rotations",
    "revoked_accepted",
    "hangs",
    "unexpected",
];

fn dir() -> PathBuf {
    root().join("target").join("faults")
}

/// The built binaries.
struct Bins {
    service: PathBuf,
    faults: PathBuf,
}

/// Builds the service and the checker; their paths from cargo's own report.
fn build() -> Result<Bins> {
    let json = output(cargo().args([
        "build",
        "--locked",
        "-p",
        "token-axum",
        "--example",
        "auth_server",
        "-p",
        "token-faults",
        "--bin",
        "token-faults",
        "--message-format=json",
    ]))?;
    let mut service = None;
    let mut faults = None;
    for line in json.lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(exe) = msg.get("executable").and_then(Value::as_str) else {
            continue;
        };
        match msg.pointer("/target/name").and_then(Value::as_str) {
            Some("auth_server") => service = Some(PathBuf::from(exe)),
            Some("token-faults") => faults = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    Ok(Bins {
        service: service.ok_or("cargo built no auth_server example")?,
        faults: faults.ok_or("cargo built no token-faults binary")?,
    })
}

/// Sends `signal` (`-STOP`, `-CONT`, `-TERM`, `-INT`) to `pid`.
fn signal(pid: u32, signal: &str) -> Result {
    output(Command::new("kill").arg(signal).arg(pid.to_string()))?;
    Ok(())
}

/// The suite's PostgreSQL, stopped and started with `pg_ctl`.
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    options: String,
    port: u16,
    root_user: bool,
}

impl Postgres {
    fn start(base: &Path) -> Result<Option<Self>> {
        let Some(bin) = pg_bin_dir() else {
            println!("!!! faults: PostgreSQL is not installed: its scenarios are skipped");
            return Ok(None);
        };
        let root_user = is_root();
        let port = free_port()?;
        let mut data = base.join("pg");
        let sockets = std::env::temp_dir().join(format!("tessera-faults-pg-{port}"));
        fs::create_dir_all(&sockets)?;
        fs::create_dir_all(&data)?;
        if root_user {
            chown_postgres(&sockets)?;
            chown_postgres(&data)?;
            if !postgres_can_write(&data) {
                fs::remove_dir_all(&data)?;
                data = std::env::temp_dir().join(format!("tessera-faults-pgdata-{port}"));
                fs::create_dir_all(&data)?;
                chown_postgres(&data)?;
            }
        }
        let mut initdb = as_pg_user(&bin.join("initdb"), root_user);
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        output(&mut initdb).map_err(|e| format!("initdb: {e}"))?;
        let pg = Self {
            log: sockets.join("postgres.log"),
            options: format!(
                "-h 127.0.0.1 -p {port} -k {} -c fsync=off -c full_page_writes=off \
                 -c max_connections=200",
                sockets.display()
            ),
            bin,
            data,
            port,
            root_user,
        };
        pg.ctl_start()?;
        Ok(Some(pg))
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn ctl_start(&self) -> Result {
        let mut start = as_pg_user(&self.bin.join("pg_ctl"), self.root_user);
        start
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-o", &self.options, "-w", "-t", "60", "start"]);
        output(&mut start).map_err(|e| format!("pg_ctl start: {e}"))?;
        wait_for_port(self.port, "PostgreSQL")
    }

    /// `pg_ctl stop -m MODE` (`fast`: connections closed, a clean checkpoint;
    /// `immediate`: every process killed, crash recovery at the next start).
    fn ctl_stop(&self, mode: &str) -> Result {
        let mut stop = as_pg_user(&self.bin.join("pg_ctl"), self.root_user);
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "-t", "60", "stop"]);
        output(&mut stop).map_err(|e| format!("pg_ctl stop -m {mode}: {e}"))?;
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = self.ctl_stop("immediate");
        }
        let _ = fs::remove_dir_all(&self.data);
    }
}

/// The suite's Redis: a child process (not a daemon, so it can be paused and killed),
/// with an append-only file synced on every write, so a restart keeps every
/// revocation, as a production Redis holding them must.
struct Redis {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start(base: &Path) -> Result<Option<Self>> {
        let Some(bin) = redis_bin() else {
            println!("!!! faults: Redis is not installed: its scenarios are skipped");
            return Ok(None);
        };
        let dir = base.join("redis");
        fs::create_dir_all(&dir)?;
        let mut redis = Self {
            bin,
            dir,
            port: free_port()?,
            child: None,
        };
        redis.spawn()?;
        Ok(Some(redis))
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) -> Result {
        let log = fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))?;
        let child = Command::new(&self.bin)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !redis_command(self.port, "PING").is_ok_and(|r| r.starts_with("+PONG")) {
            if Instant::now() > deadline {
                return Err(format!("Redis did not answer on port {}", self.port).into());
            }
            sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn pid(&self) -> Result<u32> {
        Ok(self.child.as_ref().ok_or("Redis is not running")?.id())
    }

    /// Stops it: `SIGTERM` (a clean shutdown) or `SIGKILL`.
    fn stop(&mut self, kill: bool) -> Result {
        if let Some(mut child) = self.child.take() {
            if kill {
                child.kill()?;
            } else {
                signal(child.id(), "-TERM")?;
            }
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = signal(child.id(), "-CONT");
        }
        let _ = self.stop(true);
    }
}

/// A running reference service.
struct Service {
    child: Child,
    url: String,
}

impl Service {
    fn start(bins: &Bins, port: u16, database_url: &str, extra: &[&str]) -> Result<Self> {
        let base = dir();
        let log = fs::File::options()
            .create(true)
            .append(true)
            .open(base.join("auth_server.log"))?;
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(&bins.service);
        cmd.args(["--addr", &addr, "--database-url", database_url])
            .arg("--demo-users-file")
            .arg(base.join("users.txt"))
            .arg("--kek-file")
            .arg(base.join("kek"))
            .args(["--insecure-cookies", "--no-request-log"])
            .args(extra)
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut child = cmd.spawn().map_err(|e| format!("auth_server: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Some(status) = child.try_wait()? {
                return Err(format!(
                    "auth_server exited ({status}) before listening: see {}",
                    base.join("auth_server.log").display()
                )
                .into());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("auth_server did not listen within 60 s".into());
            }
            sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            url: format!("http://{addr}"),
        })
    }

    /// `SIGKILL`: no shutdown, no flush, mid-request.
    fn kill(mut self) -> Result {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// `SIGINT`: the service's graceful shutdown.
    fn stop(mut self) -> Result {
        signal(self.child.id(), "-INT")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                break;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running `token-faults load`.
struct Load {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Load {
    fn start(
        bins: &Bins,
        url: &str,
        name: &str,
        backend: &str,
        seconds: u64,
        workers: usize,
    ) -> Result<Self> {
        let mut child = Command::new(&bins.faults)
            .args(["load", "--url", url, "--name", name, "--backend", backend])
            .arg("--users-file")
            .arg(dir().join("users.txt"))
            .args(["--workers", &workers.to_string()])
            .args(["--seconds", &seconds.to_string()])
            .args(["--request-timeout", &REQUEST_TIMEOUT_SECONDS.to_string()])
            .args(["--revocation-bound-ms", &REVOCATION_BOUND_MS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("token-faults load: {e}"))?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    /// Tells the load the fault began (`fault`) or ended (`healed`).
    fn mark(&mut self, line: &str) -> Result {
        if let Some(stdin) = &mut self.stdin {
            writeln!(stdin, "{line}")?;
            stdin.flush()?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Value> {
        drop(self.stdin.take());
        let out = self.child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!("token-faults load failed ({})", out.status).into());
        }
        last_json(&out.stdout)
    }
}

/// The last line of `stdout` that is JSON.
fn last_json(stdout: &[u8]) -> Result<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| "token-faults printed no row".into())
}

/// Runs `token-faults ARGS` to completion; its row.
fn faults(bins: &Bins, args: &[&str]) -> Result<Value> {
    let out = Command::new(&bins.faults)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("token-faults: {e}"))?;
    if !out.status.success() {
        return Err(format!("token-faults {} failed ({})", args.join(" "), out.status).into());
    }
    last_json(&out.stdout)
}

/// Adds a database check (`token-faults check-db`) to `row`.
fn check_db(bins: &Bins, database_url: &str, row: &mut Value) -> Result {
    let found = faults(bins, &["check-db", "--database-url", database_url])?;
    let get = |k: &str| found.get(k).and_then(Value::as_u64).unwrap_or(0);
    add(row, "lost_rotations", get("lost"));
    add(row, "double_rotations", get("double"));
    if found.get("corrupt").and_then(Value::as_bool) == Some(true) {
        add(row, "unexpected", 1);
    }
    Ok(())
}

fn add(row: &mut Value, field: &str, n: u64) {
    if let Some(obj) = row.as_object_mut() {
        let now = obj.get(field).and_then(Value::as_u64).unwrap_or(0);
        obj.insert(field.to_owned(), Value::from(now + n));
    }
}

/// The broken invariants of `rows`, in words.
fn violations(rows: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for row in rows {
        let name = row.get("name").and_then(Value::as_str).unwrap_or("?");
        for field in MUST_BE_ZERO {
            let n = row.get(field).and_then(Value::as_u64).unwrap_or(0);
            if n > 0 {
                out.push(format!("{name}: {field} = {n}"));
            }
        }
        if row.get("requests").and_then(Value::as_u64).unwrap_or(0) == 0 {
            out.push(format!("{name}: no request was made"));
        }
        if let Some(ms) = row.get("recovery_ms").and_then(Value::as_u64) {
            if ms > MAX_RECOVERY_MS {
                out.push(format!(
                    "{name}: recovered after {ms} ms (bound {MAX_RECOVERY_MS})"
                ));
            }
        }
    }
    out
}

/// The summary's columns, in order; the rows' other counters follow.
const COLUMNS: [&str; 9] = [
    "name",
    "backend",
    "requests",
    "failed_closed",
    "errors_5xx",
    "lost_rotations",
    "double_rotations",
    "revoked_accepted",
    "recovery_ms",
];

/// `summary.json`: an array of rows, each with the columns first, in order.
fn summary(rows: &[Value]) -> String {
    let mut s = String::from("[\n");
    for (i, row) in rows.iter().enumerate() {
        let mut fields: Vec<String> = COLUMNS
            .iter()
            .map(|k| {
                format!(
                    "{}: {}",
                    Value::from(*k),
                    row.get(*k).unwrap_or(&Value::Null)
                )
            })
            .collect();
        if let Some(obj) = row.as_object() {
            for (k, v) in obj.iter().filter(|(k, _)| !COLUMNS.contains(&k.as_str())) {
                fields.push(format!("{}: {v}", Value::from(k.as_str())));
            }
        }
        let comma = if i + 1 < rows.len() { "," } else { "" };
        let _ = writeln!(s, "  {{{}}}{comma}", fields.join(", "));
    }
    s.push_str("]\n");
    s
}

/// The rows as a Markdown table (the columns of the summary).
fn table(rows: &[Value]) -> String {
    let mut s = String::from(
        "| scenario | backend | requests | failed_closed | errors_5xx | lost_rotations | \
         double_rotations | revoked_accepted | recovery_ms |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let text = |k: &str| match row.get(k) {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Null) | None => "–".to_owned(),
            Some(v) => v.to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            text("name"),
            text("backend"),
            text("requests"),
            text("failed_closed"),
            text("errors_5xx"),
            text("lost_rotations"),
            text("double_rotations"),
            text("revoked_accepted"),
            text("recovery_ms"),
        );
    }
    s
}

/// Everything a scenario needs.
struct Env<'a> {
    bins: &'a Bins,
    plan: &'a Plan,
    pg: Option<&'a Postgres>,
    redis: Option<&'a mut Redis>,
}

/// PostgreSQL stopped (`mode`) and started again during the load.
fn pg_restart(env: &mut Env<'_>, mode: &str) -> Result<Option<Value>> {
    let (Some(pg), Some(redis)) = (env.pg, env.redis.as_deref()) else {
        return Ok(None);
    };
    let name = format!("PostgreSQL restarted (pg_ctl stop -m {mode})");
    let port = free_port()?;
    let service = Service::start(
        env.bins,
        port,
        &pg.url(),
        &[
            "--redis-url",
            &redis.url(),
            "--revocation-max-staleness",
            REVOCATION_BOUND,
        ],
    )?;
    let plan = env.plan;
    let mut load = Load::start(
        env.bins,
        &service.url,
        &name,
        "PostgreSQL + Redis",
        plan.load_seconds,
        plan.workers,
    )?;
    sleep(Duration::from_secs(plan.load_seconds / 4));
    load.mark("fault")?;
    pg.ctl_stop(mode)?;
    sleep(Duration::from_secs(plan.outage_seconds));
    pg.ctl_start()?;
    load.mark("healed")?;
    let mut row = load.finish()?;
    service.stop()?;
    check_db(env.bins, &pg.url(), &mut row)?;
    Ok(Some(row))
}

/// Redis stopped (`SIGTERM`), paused (`SIGSTOP`) or killed and restarted at once.
fn redis_fault(env: &mut Env<'_>, fault: &str) -> Result<Option<Value>> {
    let pg_url = env.pg.map(Postgres::url);
    let Some(redis) = env.redis.as_deref_mut() else {
        return Ok(None);
    };
    let (database_url, backend) = match &pg_url {
        Some(url) => (url.clone(), "PostgreSQL + Redis"),
        None => (
            format!("sqlite://{}", dir().join("redis-fault.db").display()),
            "SQLite + Redis",
        ),
    };
    let name = match fault {
        "stop" => "Redis stopped (SIGTERM), started again",
        "pause" => "Redis paused (SIGSTOP), resumed (SIGCONT)",
        _ => "Redis killed (SIGKILL), restarted at once",
    };
    let port = free_port()?;
    let service = Service::start(
        env.bins,
        port,
        &database_url,
        &[
            "--redis-url",
            &redis.url(),
            "--revocation-max-staleness",
            REVOCATION_BOUND,
        ],
    )?;
    let plan = env.plan;
    let mut load = Load::start(
        env.bins,
        &service.url,
        name,
        backend,
        plan.load_seconds,
        plan.workers,
    )?;
    sleep(Duration::from_secs(plan.load_seconds / 4));
    load.mark("fault")?;
    match fault {
        "stop" => {
            redis.stop(false)?;
            sleep(Duration::from_secs(plan.outage_seconds));
            redis.spawn()?;
        }
        "pause" => {
            let pid = redis.pid()?;
            signal(pid, "-STOP")?;
            sleep(Duration::from_secs(plan.outage_seconds));
            signal(pid, "-CONT")?;
        }
        _ => {
            redis.stop(true)?;
            redis.spawn()?;
        }
    }
    load.mark("healed")?;
    let mut row = load.finish()?;
    service.stop()?;
    check_db(env.bins, &database_url, &mut row)?;
    Ok(Some(row))
}

/// The service killed (`SIGKILL`) again and again during the load, the database
/// checked after each kill, the service restarted on the same port.
fn kill_loop(env: &mut Env<'_>, on_postgres: bool) -> Result<Option<Value>> {
    let Some(redis) = env.redis.as_deref() else {
        return Ok(None);
    };
    let (database_url, backend) = if on_postgres {
        let Some(pg) = env.pg else {
            return Ok(None);
        };
        (pg.url(), "PostgreSQL + Redis")
    } else {
        (
            format!("sqlite://{}", dir().join("kill-loop.db").display()),
            "SQLite + Redis",
        )
    };
    let plan = env.plan;
    let name = format!("service killed (SIGKILL) x{} mid-request", plan.kills);
    let redis_url = redis.url();
    let extra = [
        "--redis-url",
        redis_url.as_str(),
        "--revocation-max-staleness",
        REVOCATION_BOUND,
    ];
    let port = free_port()?;
    let mut service = Service::start(env.bins, port, &database_url, &extra)?;
    // Long enough for every kill, a restart after each, and a calm end.
    let seconds = u64::from(plan.kills) * 3 + 6;
    let mut load = Load::start(
        env.bins,
        &service.url,
        &name,
        backend,
        seconds,
        plan.workers,
    )?;
    let mut checks = Vec::new();
    for i in 0..plan.kills {
        // 0.6 to 1.6 s of load between kills: rotations are always in flight.
        sleep(Duration::from_millis(600 + u64::from(i * 379 % 1000)));
        load.mark("fault")?;
        service.kill()?;
        let mut check = serde_json::json!({});
        check_db(env.bins, &database_url, &mut check)?;
        checks.push(check);
        service = Service::start(env.bins, port, &database_url, &extra)?;
        load.mark("healed")?;
    }
    let mut row = load.finish()?;
    service.stop()?;
    for check in &checks {
        for field in ["lost_rotations", "double_rotations", "unexpected"] {
            add(
                &mut row,
                field,
                check.get(field).and_then(Value::as_u64).unwrap_or(0),
            );
        }
    }
    check_db(env.bins, &database_url, &mut row)?;
    Ok(Some(row))
}

/// Slow and hostile clients against a service on SQLite.
fn hostile(env: &mut Env<'_>) -> Result<Value> {
    let port = free_port()?;
    let database_url = format!("sqlite://{}", dir().join("hostile.db").display());
    let service = Service::start(
        env.bins,
        port,
        &database_url,
        &["--header-read-timeout", "2s", "--body-read-timeout", "2s"],
    )?;
    let (idle, slow, big) = env.plan.hostile;
    let row = faults(
        env.bins,
        &[
            "hostile",
            "--url",
            &service.url,
            "--pid",
            &service.child.id().to_string(),
            "--users-file",
            &dir().join("users.txt").display().to_string(),
            "--idle",
            &idle.to_string(),
            "--slowloris",
            &slow.to_string(),
            "--oversized",
            &big.to_string(),
            "--header-timeout",
            "2",
        ],
    )?;
    service.stop()?;
    Ok(row)
}

/// SQLite on a full file system: a 2 MiB tmpfs mounted for the scenario (root only).
fn disk_full(env: &mut Env<'_>) -> Result<Option<Value>> {
    let mount = dir().join("disk");
    fs::create_dir_all(&mount)?;
    let mounted = is_root()
        && Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs"])
            .arg(&mount)
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        println!("!!! SKIPPED disk full: mounting a 2 MiB tmpfs needs root (and mount rights)");
        return Ok(None);
    }
    let row = faults(
        env.bins,
        &["disk-full", "--dir", &mount.display().to_string()],
    );
    let unmounted = Command::new("umount").arg(&mount).status();
    let row = row?;
    if !unmounted.is_ok_and(|s| s.success()) {
        return Err(format!("cannot unmount {}", mount.display()).into());
    }
    Ok(Some(row))
}

#[allow(clippy::too_many_lines)]
pub(crate) fn run(args: &Args) -> Result {
    let started = Instant::now();
    let plan = Plan::new(args.quick);
    step("faults: build the service and the checker");
    let bins = build()?;
    let base = dir();
    if base.exists() {
        fs::remove_dir_all(&base)?;
    }
    fs::create_dir_all(&base)?;
    fs::write(
        base.join("users.txt"),
        "# the fault suite's users\n\
         ada:fault-suite-password-1\n\
         bea:fault-suite-password-2\n\
         cyd:fault-suite-password-3\n\
         dov:fault-suite-password-4\n",
    )?;
    faults(
        &bins,
        &["kek", "--out", &base.join("kek").display().to_string()],
    )?;

    step("faults: PostgreSQL and Redis of the suite's own");
    let pg = Postgres::start(&base)?;
    let mut redis = Redis::start(&base)?;
    let mut env = Env {
        bins: &bins,
        plan: &plan,
        pg: pg.as_ref(),
        redis: redis.as_mut(),
    };
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut record = |name: &str, row: Option<Value>| match row {
        Some(row) => {
            println!("{}", serde_json::to_string(&row).unwrap_or_default());
            rows.push(row);
        }
        None => skipped.push(name.to_owned()),
    };

    step("faults: PostgreSQL restarted (fast)");
    record("PostgreSQL fast", pg_restart(&mut env, "fast")?);
    step("faults: PostgreSQL restarted (immediate)");
    record("PostgreSQL immediate", pg_restart(&mut env, "immediate")?);
    step("faults: Redis stopped");
    record("Redis stopped", redis_fault(&mut env, "stop")?);
    step("faults: Redis paused");
    record("Redis paused", redis_fault(&mut env, "pause")?);
    if !args.quick {
        step("faults: Redis killed and restarted");
        record("Redis killed", redis_fault(&mut env, "kill")?);
    }
    step("faults: service killed in a loop, SQLite");
    record("kill loop SQLite", kill_loop(&mut env, false)?);
    step("faults: disk full, SQLite");
    record("disk full", disk_full(&mut env)?);
    step("faults: service killed in a loop, PostgreSQL");
    record("kill loop PostgreSQL", kill_loop(&mut env, true)?);
    step("faults: clock steps");
    record(
        "clock",
        Some(faults(
            &bins,
            &["clock", "--steps", &plan.clock_steps.to_string()],
        )?),
    );
    step("faults: slow and hostile clients");
    record("hostile", Some(hostile(&mut env)?));
    drop(redis);
    drop(pg);

    fs::write(base.join("summary.json"), summary(&rows))?;
    let elapsed = started.elapsed().as_secs();
    println!(
        "\n{}\n{} scenarios in {}:{:02} ({}); wrote {}",
        table(&rows),
        rows.len(),
        elapsed / 60,
        elapsed % 60,
        if args.quick { "--quick" } else { "full run" },
        base.join("summary.json").display()
    );
    if !skipped.is_empty() {
        println!(
            "!!! SKIPPED (a backend is not installed): {}",
            skipped.join(", ")
        );
        if crate::services::required() {
            return Err(format!(
                "{} but skipped: {}",
                crate::services::REQUIRE,
                skipped.join(", ")
            )
            .into());
        }
    }
    let broken = violations(&rows);
    if broken.is_empty() {
        println!("faults: every invariant held");
        Ok(())
    } else {
        Err(format!("faults: invariants broken:\n  {}", broken.join("\n  ")).into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{add, summary, table, violations};

    fn clean() -> serde_json::Value {
        json!({
            "name": "pg", "backend": "PostgreSQL", "requests": 10, "failed_closed": 4,
            "errors_5xx": 0, "lost_rotations": 0, "double_rotations": 0,
            "revoked_accepted": 0, "recovery_ms": 120, "unanswered": 3, "hangs": 0,
            "unexpected": 0
        })
    }

    #[test]
    fn a_clean_row_holds_and_each_broken_invariant_fails_the_run() {
        assert!(violations(&[clean()]).is_empty());
        for field in [
            "errors_5xx",
            "lost_rotations",
            "double_rotations",
            "revoked_accepted",
            "hangs",
            "unexpected",
        ] {
            let mut row = clean();
            add(&mut row, field, 1);
            assert_eq!(violations(&[row]).len(), 1, "{field}");
        }
        let mut slow = clean();
        slow["recovery_ms"] = json!(60_000);
        assert_eq!(violations(&[slow]).len(), 1);
        let mut idle = clean();
        idle["requests"] = json!(0);
        assert_eq!(violations(&[idle]).len(), 1);
    }

    #[test]
    fn the_summary_is_json_with_the_columns_first() {
        let text = summary(&[clean(), clean()]);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, json!([clean(), clean()]));
        let first = text.lines().nth(1).unwrap();
        assert!(first.starts_with(r#"  {"name": "pg", "backend": "PostgreSQL", "requests": 10, "failed_closed": 4, "errors_5xx": 0"#), "{first}");
        assert!(first.contains(r#""recovery_ms": 120, "#));
    }

    #[test]
    fn the_table_has_the_summary_columns() {
        let t = table(&[clean()]);
        assert!(t.starts_with("| scenario | backend | requests | failed_closed | errors_5xx"));
        assert!(t.contains("| pg | PostgreSQL | 10 | 4 | 0 | 0 | 0 | 0 | 120 |"));
    }
}
