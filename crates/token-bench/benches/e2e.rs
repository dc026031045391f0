//! End to end: `GET /me` on the reference service (`crates/token-axum/examples/
//! auth_server`, authenticated by its access token) against a bare axum handler doing
//! only the raw Ed25519 verification of the same token, driven by the same load
//! generator, in the same run, on loopback.
//!
//! - Each server is a process of its own on a default multi-thread tokio runtime (one
//!   worker per core): the reference service as built by `cargo build --release -p
//!   token-axum --example auth_server` (its path in `TESSERA_AUTH_SERVER`; `cargo xtask
//!   bench` builds it), the bare handler as this binary started again in server mode.
//! - The load generator is this process: `CONNECTIONS` HTTP/1.1 keep-alive connections
//!   (hyper's client connection, no pool), each sending the next request when the last
//!   answer is read, on a current-thread runtime. Every answer must be `200`, or the run
//!   fails. Runs alternate between the servers, `ROUNDS` times; each run warms up, then
//!   measures for a fixed time. Requests per second and latency percentiles are over
//!   all measured requests of a server. A server's ratio is the median, over the
//!   rounds, of its requests per second over the bare handler's in the same round
//!   (runs next to each other in time, so a slow spell of the machine counts against
//!   both sides of a ratio, not one); the CPU time each server process spent per
//!   request (user and kernel, from `/proc/<pid>/stat`, warm-ups included) is reported
//!   beside them, as the figure least disturbed by other load on the machine.
//! - The reference service runs on SQLite (in memory) with the in-process revocation
//!   list; with `TESSERA_TEST_DATABASE_URL` and `TESSERA_TEST_REDIS_URL` set it runs a
//!   second time on PostgreSQL with the revocation state replicated from Redis.
//!
//! `--measurement-time S` and `--warm-up-time S` (criterion's options, which `cargo
//! xtask bench [--quick]` passes to every bench) set each run's times (default 5 s and
//! 1 s). Results are printed, and written to `$TESSERA_BENCH_OUT/e2e.json` when that
//! is set. Without `TESSERA_AUTH_SERVER` the bench is skipped, saying so on stderr.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::too_many_lines,
    missing_docs
)]

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::body::Body as _;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// Keep-alive connections of the load generator.
const CONNECTIONS: usize = 16;
/// Runs per server, alternating.
const ROUNDS: usize = 5;
/// The smallest acceptable ratio of the reference service's throughput to the bare
/// handler's.
const GOAL: f64 = 0.85;
/// Set in the environment of this binary started as the bare server: the public key.
const BARE_KEY: &str = "TESSERA_E2E_BARE_KEY";

fn main() {
    if let Ok(key) = std::env::var(BARE_KEY) {
        bare_server(&key);
        return;
    }
    let Some(server) = std::env::var_os("TESSERA_AUTH_SERVER").filter(|s| !s.is_empty()) else {
        eprintln!(
            "!!! SKIPPED end to end GET /me: TESSERA_AUTH_SERVER (the path of the built \
             auth_server example) is not set; `cargo xtask bench` builds and sets it"
        );
        return;
    };
    let (warm_up, measure) = times();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let load_before = load_average();

    let users = std::env::temp_dir().join(format!("tessera-e2e-users-{}", std::process::id()));
    let password = hex(&random::<16>());
    std::fs::write(&users, format!("bench:{password}\n")).unwrap();

    let mut configs = vec![(
        "reference service, SQLite + in-process revocation list",
        Vec::<String>::new(),
    )];
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("TESSERA_TEST_DATABASE_URL"),
        var("TESSERA_TEST_REDIS_URL"),
    ) {
        (Some(db), Some(redis)) => configs.push((
            "reference service, PostgreSQL + Redis revocation replica",
            vec!["--database-url".into(), db, "--redis-url".into(), redis],
        )),
        _ => eprintln!(
            "!!! SKIPPED end to end GET /me on PostgreSQL + Redis: TESSERA_TEST_DATABASE_URL \
             and TESSERA_TEST_REDIS_URL must both be set (`cargo xtask services up`)"
        ),
    }

    // Start every reference service, log in once on each.
    let mut targets: Vec<Target> = Vec::new();
    for (name, extra) in configs {
        let mut cmd = Command::new(&server);
        cmd.args([
            "--addr",
            "127.0.0.1:0",
            "--no-request-log",
            "--insecure-cookies",
        ])
        .arg("--demo-users-file")
        .arg(&users)
        .args(extra);
        let (child, addr) = spawn(cmd, "auth_server listening on http://");
        let token = rt.block_on(login(addr, &password));
        targets.push(Target {
            name: name.to_owned(),
            addr,
            bearer: format!("Bearer {token}"),
            process: Process(child),
            latencies: Vec::new(),
            round_rps: Vec::new(),
            seconds: 0.0,
            server_cpu: Cpu::default(),
            client_cpu: Cpu::default(),
            cpu_requests: 0.0,
        });
    }
    std::fs::remove_file(&users).unwrap();

    // The bare handler verifies the first service's tokens with its public key.
    let first = &targets[0];
    let token = first.bearer.trim_start_matches("Bearer ").to_owned();
    let key = rt.block_on(public_key(first.addr, &token));
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(BARE_KEY, hex(&key));
    let (child, addr) = spawn(cmd, "bare listening on http://");
    let bearer = first.bearer.clone();
    targets.insert(
        0,
        Target {
            name: "bare axum handler, raw Ed25519 verify only".into(),
            addr,
            bearer,
            process: Process(child),
            latencies: Vec::new(),
            round_rps: Vec::new(),
            seconds: 0.0,
            server_cpu: Cpu::default(),
            client_cpu: Cpu::default(),
            cpu_requests: 0.0,
        },
    );

    println!(
        "end to end GET /me: {CONNECTIONS} connections, {ROUNDS} runs per server of \
         {warm_up:?} warm-up + {measure:?}"
    );
    for _ in 0..ROUNDS {
        for target in &mut targets {
            let pid = target.process.0.id();
            let (server_before, client_before) =
                (cpu_seconds(pid), cpu_seconds(std::process::id()));
            let latencies = rt.block_on(run(target.addr, &target.bearer, warm_up, measure));
            target.server_cpu += cpu_seconds(pid) - server_before;
            target.client_cpu += cpu_seconds(std::process::id()) - client_before;
            // CPU time covers the warm-up too: count its requests by the same rate.
            target.cpu_requests +=
                latencies.len() as f64 * (warm_up + measure).as_secs_f64() / measure.as_secs_f64();
            target
                .round_rps
                .push(latencies.len() as f64 / measure.as_secs_f64());
            target.latencies.extend(latencies);
            target.seconds += measure.as_secs_f64();
        }
    }
    let load_after = load_average();

    let bare_rounds = targets[0].round_rps.clone();
    let mut rows = Vec::new();
    for t in &mut targets {
        t.latencies.sort_unstable();
        let rps = t.latencies.len() as f64 / t.seconds;
        let ms = |q: f64| {
            let i = ((t.latencies.len() as f64 - 1.0) * q).round() as usize;
            t.latencies[i].as_secs_f64() * 1000.0
        };
        let round_ratios: Vec<f64> = t
            .round_rps
            .iter()
            .zip(&bare_rounds)
            .map(|(own, bare)| own / bare)
            .collect();
        let ratio = median(&round_ratios);
        let per_request = |s: f64| s / t.cpu_requests * 1e6;
        let server_us = per_request(t.server_cpu.user + t.server_cpu.system);
        let (server_user_us, server_system_us) = (
            per_request(t.server_cpu.user),
            per_request(t.server_cpu.system),
        );
        let client_us = per_request(t.client_cpu.user + t.client_cpu.system);
        println!(
            "{:<60} {:>9} requests {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  ratio {ratio:.3}  \
             server CPU {server_us:.1} µs/request ({server_user_us:.1} user, \
             {server_system_us:.1} kernel), load generator {client_us:.1} µs/request",
            t.name,
            t.latencies.len(),
            rps,
            ms(0.5),
            ms(0.99)
        );
        rows.push(json!({
            "name": t.name,
            "requests": t.latencies.len(),
            "seconds": t.seconds,
            "rps": rps.round(),
            "p50_ms": (ms(0.5) * 1000.0).round() / 1000.0,
            "p99_ms": (ms(0.99) * 1000.0).round() / 1000.0,
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "round_ratios": round_ratios.iter().map(|r| (r * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            "server_cpu_us_per_request": (server_us * 10.0).round() / 10.0,
            "server_user_cpu_us_per_request": (server_user_us * 10.0).round() / 10.0,
            "server_kernel_cpu_us_per_request": (server_system_us * 10.0).round() / 10.0,
            "client_cpu_us_per_request": (client_us * 10.0).round() / 10.0,
        }));
    }
    let summary = json!({
        "connections": CONNECTIONS,
        "rounds": ROUNDS,
        "warm_up_seconds": warm_up.as_secs_f64(),
        "measure_seconds": measure.as_secs_f64(),
        "goal": GOAL,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rows": rows,
    });
    if let Some(dir) = std::env::var_os("TESSERA_BENCH_OUT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("e2e.json"),
            serde_json::to_string_pretty(&summary).unwrap(),
        )
        .unwrap();
    }
}

/// One server under test.
struct Target {
    name: String,
    addr: SocketAddr,
    bearer: String,
    process: Process,
    latencies: Vec<Duration>,
    /// Requests per second in each round.
    round_rps: Vec<f64>,
    seconds: f64,
    /// CPU seconds (user + system) the server and this process spent in the runs.
    server_cpu: Cpu,
    client_cpu: Cpu,
    /// Requests answered in the runs, warm-ups included (estimated at the measured rate).
    cpu_requests: f64,
}

/// The median of `values`; the mean of the middle two for an even count.
fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

/// A child process, killed when dropped (also when the bench fails).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--warm-up-time` and `--measurement-time` from the command line.
fn times() -> (Duration, Duration) {
    let args: Vec<String> = std::env::args().collect();
    let seconds = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0 && *v < 600.0)
            .unwrap_or(default)
    };
    (
        Duration::from_secs_f64(seconds("--warm-up-time", 1.0)),
        Duration::from_secs_f64(seconds("--measurement-time", 5.0)),
    )
}

/// The CPU time of process `pid` so far (`/proc/<pid>/stat`, in clock
/// ticks of 1/100 s, the Linux value of `_SC_CLK_TCK`).
fn cpu_seconds(pid: u32) -> Cpu {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: the fields start after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| fields[i].parse::<f64>().unwrap();
    Cpu {
        user: ticks(11) / 100.0,
        system: ticks(12) / 100.0,
    }
}

/// CPU seconds in user space and in the kernel.
#[derive(Clone, Copy, Default)]
struct Cpu {
    user: f64,
    system: f64,
}

impl std::ops::Sub for Cpu {
    type Output = Self;
    fn sub(self, earlier: Self) -> Self {
        Self {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

impl std::ops::AddAssign for Cpu {
    fn add_assign(&mut self, more: Self) {
        self.user += more.user;
        self.system += more.system;
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).unwrap();
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Starts `cmd`, waits (at most 60 s) for the line `<prefix><address>` on its stdout.
fn spawn(mut cmd: Command, prefix: &str) -> (Child, SocketAddr) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        // Read every line, so the child never blocks on a full pipe.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(addr) = line.strip_prefix(&prefix) {
                    let _ = tx.send(addr.trim().parse::<SocketAddr>());
                    sent = true;
                }
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(addr)) => (child, addr),
        other => {
            let _ = child.kill();
            let status = child.wait();
            panic!("the server did not start ({other:?}, {status:?})");
        }
    }
}

/// One request on a fresh connection; the status and the body.
async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Vec<u8>) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, addr.to_string());
    let body = match body {
        Some(v) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            v.to_string()
        }
        None => String::new(),
    };
    let response = sender
        .send_request(builder.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.unwrap().into_data() {
            out.extend_from_slice(&data);
        }
    }
    (status, out)
}

/// Logs in as the bench user; the access token.
async fn login(addr: SocketAddr, password: &str) -> String {
    let (status, body) = request(
        addr,
        Method::POST,
        "/login",
        Some(json!({ "username": "bench", "password": password })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

/// The public key (32 bytes) that signed `token`, from the service's PASERK key set.
async fn public_key(addr: SocketAddr, token: &str) -> Vec<u8> {
    // token_axum::well_known::PASETO_KEYS_PATH (token-axum sits beside this crate, so
    // it is not a dependency).
    let (status, body) = request(addr, Method::GET, "/.well-known/paseto-keys.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let footer = URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap();
    let kid = serde_json::from_slice::<Value>(&footer).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let set: Value = serde_json::from_slice(&body).unwrap();
    let entry = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kid"] == kid.as_str())
        .expect("the token's key in the key set");
    let paserk = entry["paserk"].as_str().unwrap();
    URL_SAFE_NO_PAD
        .decode(paserk.strip_prefix("k4.public.").unwrap())
        .unwrap()
}

/// Runs the load against `addr`: `CONNECTIONS` connections, `warm_up`, then `measure`.
/// The latencies of the requests answered within the measured window.
async fn run(
    addr: SocketAddr,
    bearer: &str,
    warm_up: Duration,
    measure: Duration,
) -> Vec<Duration> {
    let start = Instant::now() + warm_up;
    let end = start + measure;
    let bearer = Arc::new(bearer.to_owned());
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let bearer = bearer.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            let conn = tokio::spawn(conn);
            let host = addr.to_string();
            let mut latencies = Vec::with_capacity(1 << 16);
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let req = Request::get("/me")
                    .header(header::HOST, &host)
                    .header(header::AUTHORIZATION, bearer.as_str())
                    .body(String::new())
                    .unwrap();
                let response = sender.send_request(req).await.unwrap();
                let status = response.status();
                let mut body = response.into_body();
                while let Some(frame) =
                    std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
                {
                    frame.unwrap();
                }
                assert_eq!(status, StatusCode::OK, "GET /me on {addr}");
                let done = Instant::now();
                if sent >= start && done <= end {
                    latencies.push(done - sent);
                }
            }
            drop(sender);
            let _ = conn.await;
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// The bare server: `GET /me` verifies the bearer `v4.public` token's Ed25519
/// signature over its PAE and nothing else, on a default multi-thread runtime.
fn bare_server(key_hex: &str) {
    let key: Vec<u8> = (0..key_hex.len() / 2)
        .map(|i| u8::from_str_radix(&key_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let pk = Arc::new(ed25519_compact::PublicKey::from_slice(&key).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let app = axum::Router::new()
            .route("/me", get(bare_me))
            .with_state(pk);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!(
            "bare listening on http://{}",
            listener.local_addr().unwrap()
        );
        axum::serve(listener, app).await.unwrap();
    });
}

async fn bare_me(
    State(pk): State<Arc<ed25519_compact::PublicKey>>,
    headers: HeaderMap,
) -> StatusCode {
    if verify_bare(&pk, &headers).is_some() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// `Authorization: Bearer v4.public.<payload‖signature>.<footer>`: decode, PAE, verify.
fn verify_bare(pk: &ed25519_compact::PublicKey, headers: &HeaderMap) -> Option<()> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .strip_prefix("v4.public.")?;
    let (body, footer) = token.split_once('.')?;
    let body = URL_SAFE_NO_PAD.decode(body).ok()?;
    let footer = URL_SAFE_NO_PAD.decode(footer).ok()?;
    let (m, sig) = body.split_at_checked(body.len().checked_sub(64)?)?;
    let mut pae = Vec::with_capacity(m.len() + footer.len() + 64);
    let pieces: [&[u8]; 4] = [b"v4.public.", m, &footer, b""];
    pae.extend_from_slice(&(pieces.len() as u64).to_le_bytes());
    for p in pieces {
        pae.extend_from_slice(&(p.len() as u64).to_le_bytes());
        pae.extend_from_slice(p);
    }
    let sig = ed25519_compact::Signature::from_slice(sig).ok()?;
    pk.verify(&pae, &sig).ok()
}
