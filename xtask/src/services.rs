//! `cargo xtask services up|down|status`: PostgreSQL and Redis on loopback, on free
//! ports, with their data under `target/services/`, for the integration tests.
//!
//! `up` writes `target/services/env` with `TESSERA_TEST_DATABASE_URL`,
//! `TESSERA_TEST_REDIS_URL` and `TESSERA_TEST_REDIS_CLUSTER_URL` (one `KEY=value` per
//! line; `set -a; . target/services/env` exports them in a shell). PostgreSQL refuses
//! to run as root, so as root it is initialised and started as the `postgres` user.
//!
//! The Redis Cluster is three masters (`redis-server --cluster-enabled yes`, each with
//! its cluster bus on a free port of its own), joined by `redis-cli --cluster create`;
//! its variable holds the three node URLs, comma-separated.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::util::{Result, output, root, step};

/// The environment variable naming the PostgreSQL URL for tests.
pub(crate) const DATABASE_URL: &str = "TESSERA_TEST_DATABASE_URL";
/// The environment variable naming the Redis URL for tests.
pub(crate) const REDIS_URL: &str = "TESSERA_TEST_REDIS_URL";
/// The environment variable naming the Redis Cluster's node URLs (comma-separated).
pub(crate) const REDIS_CLUSTER_URL: &str = "TESSERA_TEST_REDIS_CLUSTER_URL";
/// How many masters the test cluster has.
const CLUSTER_MASTERS: usize = 3;
/// When `1`, a missing service is an error rather than a skip.
pub(crate) const REQUIRE: &str = "TESSERA_REQUIRE_SERVICES";

/// `cargo xtask services …`
#[derive(clap::Subcommand)]
pub(crate) enum Action {
    /// Start PostgreSQL, Redis and a 3-master Redis Cluster (whichever are installed)
    /// and write target/services/env.
    Up,
    /// Stop them and remove their data.
    Down,
    /// Show what is running.
    Status,
}

pub(crate) fn run(action: &Action) -> Result {
    match action {
        Action::Up => up().map(drop),
        Action::Down => down(),
        Action::Status => {
            status();
            Ok(())
        }
    }
}

fn dir() -> PathBuf {
    root().join("target").join("services")
}

fn env_file() -> PathBuf {
    dir().join("env")
}

/// Services are required when `TESSERA_REQUIRE_SERVICES=1`.
pub(crate) fn required() -> bool {
    std::env::var(REQUIRE).is_ok_and(|v| v == "1")
}

pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

pub(crate) fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|s| s.trim() == "0")
}

/// Finds PostgreSQL's server binaries: `pg_ctl` on PATH, else the newest
/// `/usr/lib/postgresql/<N>/bin`.
pub(crate) fn pg_bin_dir() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("pg_ctl").is_file() && d.join("initdb").is_file() {
                return Some(d);
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// `program` on PATH.
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").ok()?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

pub(crate) fn redis_bin() -> Option<PathBuf> {
    on_path("redis-server")
}

/// A command that runs as `postgres` when we are root.
pub(crate) fn as_pg_user(program: &Path, root_user: bool) -> Command {
    if root_user {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// What `up` started, so `down` can stop it.
struct State {
    pg_data: Option<PathBuf>,
    pg_bin: Option<PathBuf>,
    pg_sockets: Option<PathBuf>,
    redis_port: Option<u16>,
    cluster_ports: Vec<u16>,
}

impl State {
    fn path() -> PathBuf {
        dir().join("state")
    }

    fn save(&self) -> Result {
        let mut s = String::new();
        if let (Some(data), Some(bin)) = (&self.pg_data, &self.pg_bin) {
            writeln!(s, "pg_data={}\npg_bin={}", data.display(), bin.display())?;
        }
        if let Some(sockets) = &self.pg_sockets {
            writeln!(s, "pg_sockets={}", sockets.display())?;
        }
        if let Some(p) = self.redis_port {
            writeln!(s, "redis_port={p}")?;
        }
        if !self.cluster_ports.is_empty() {
            let ports: Vec<String> = self.cluster_ports.iter().map(u16::to_string).collect();
            writeln!(s, "cluster_ports={}", ports.join(","))?;
        }
        fs::write(Self::path(), s)?;
        Ok(())
    }

    fn load() -> Self {
        let text = fs::read_to_string(Self::path()).unwrap_or_default();
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Self {
            pg_data: get("pg_data").map(PathBuf::from),
            pg_bin: get("pg_bin").map(PathBuf::from),
            pg_sockets: get("pg_sockets").map(PathBuf::from),
            redis_port: get("redis_port").and_then(|p| p.parse().ok()),
            cluster_ports: get("cluster_ports")
                .map(|p| p.split(',').filter_map(|p| p.parse().ok()).collect())
                .unwrap_or_default(),
        }
    }
}

/// Starts what is installed; returns the `(name, value)` pairs written to the env file.
pub(crate) fn up() -> Result<Vec<(String, String)>> {
    down()?;
    fs::create_dir_all(dir())?;
    let mut state = State {
        pg_data: None,
        pg_bin: None,
        pg_sockets: None,
        redis_port: None,
        cluster_ports: Vec::new(),
    };
    let mut env = Vec::new();
    let mut missing = Vec::new();

    match pg_bin_dir() {
        Some(bin) => {
            step("services: PostgreSQL");
            let (data, sockets, port) = start_postgres(&bin)?;
            state.pg_data = Some(data);
            state.pg_sockets = Some(sockets);
            state.pg_bin = Some(bin);
            state.save()?;
            env.push((
                DATABASE_URL.to_owned(),
                format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            ));
        }
        None => missing.push("PostgreSQL (pg_ctl, initdb)"),
    }
    match redis_bin() {
        Some(bin) => {
            step("services: Redis");
            let port = start_redis(&bin)?;
            state.redis_port = Some(port);
            state.save()?;
            env.push((REDIS_URL.to_owned(), format!("redis://127.0.0.1:{port}/")));
        }
        None => missing.push("Redis (redis-server)"),
    }
    match (redis_bin(), on_path("redis-cli")) {
        (Some(server), Some(cli)) => {
            step("services: Redis Cluster (3 masters)");
            match start_cluster(&server, &cli, &mut state) {
                Ok(ports) => env.push((REDIS_CLUSTER_URL.to_owned(), cluster_url(&ports))),
                Err(e) if required() => {
                    down()?;
                    return Err(
                        format!("{REQUIRE}=1 but the Redis Cluster did not start: {e}").into(),
                    );
                }
                Err(e) => {
                    stop_cluster(&state.cluster_ports);
                    state.cluster_ports.clear();
                    state.save()?;
                    println!("!!! services: Redis Cluster NOT STARTED, its tests will skip: {e}");
                }
            }
        }
        (None, _) => missing.push("Redis Cluster (redis-server)"),
        (Some(_), None) => missing.push("Redis Cluster (redis-cli, in Debian's redis-tools)"),
    }
    if !missing.is_empty() {
        let list = missing.join(", ");
        if required() {
            down()?;
            return Err(format!("{REQUIRE}=1 but not installed: {list}").into());
        }
        println!("!!! services: NOT INSTALLED, their tests will skip: {list}");
    }
    let mut text = String::new();
    for (k, v) in &env {
        writeln!(text, "{k}={v}")?;
    }
    fs::write(env_file(), text)?;
    for (k, v) in &env {
        println!("{k}={v}");
    }
    println!("wrote {}", env_file().display());
    Ok(env)
}

fn start_postgres(bin: &Path) -> Result<(PathBuf, PathBuf, u16)> {
    let root_user = is_root();
    let port = free_port()?;
    let mut data = dir().join("postgres");
    let sockets = std::env::temp_dir().join(format!("tessera-pg-{port}"));
    fs::create_dir_all(&sockets)?;
    fs::create_dir_all(&data)?;
    if root_user {
        chown_postgres(&sockets)?;
        chown_postgres(&data)?;
        // The postgres user must reach the data directory; a checkout under a private
        // home directory does not allow it, so fall back to a temporary directory.
        if !postgres_can_write(&data) {
            fs::remove_dir_all(&data)?;
            data = std::env::temp_dir().join(format!("tessera-pgdata-{port}"));
            fs::create_dir_all(&data)?;
            chown_postgres(&data)?;
            println!(
                "(data in {} because postgres cannot reach target/)",
                data.display()
            );
        }
    }
    let log = sockets.join("postgres.log");
    let mut initdb = as_pg_user(&bin.join("initdb"), root_user);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
    output(&mut initdb).map_err(|e| format!("initdb: {e}"))?;
    let options = format!(
        "-h 127.0.0.1 -p {port} -k {} -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=200",
        sockets.display()
    );
    let mut start = as_pg_user(&bin.join("pg_ctl"), root_user);
    start
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-o", &options, "-w", "-t", "60", "start"]);
    if let Err(e) = output(&mut start) {
        let log = fs::read_to_string(&log).unwrap_or_default();
        return Err(format!("pg_ctl start: {e}\n{log}").into());
    }
    wait_for_port(port, "PostgreSQL")?;
    println!("PostgreSQL on 127.0.0.1:{port}, data {}", data.display());
    Ok((data, sockets, port))
}

pub(crate) fn chown_postgres(path: &Path) -> Result {
    output(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path),
    )?;
    Ok(())
}

pub(crate) fn postgres_can_write(path: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-w"])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

fn start_redis(bin: &Path) -> Result<u16> {
    let port = free_port()?;
    let data = dir().join("redis");
    fs::create_dir_all(&data)?;
    let mut cmd = Command::new(bin);
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--daemonize", "yes", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&data)
        .arg("--logfile")
        .arg(data.join("redis.log"))
        .arg("--pidfile")
        .arg(data.join("redis.pid"));
    output(&mut cmd).map_err(|e| format!("redis-server: {e}"))?;
    wait_for_ping(port)?;
    println!("Redis on 127.0.0.1:{port}");
    Ok(port)
}

/// The cluster's variable: every node's URL, comma-separated.
fn cluster_url(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}/"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `n` distinct free loopback ports (each held until all are found).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Starts three cluster-enabled `redis-server`s (recording them in `state` as they
/// start, so a failure stops what did start), joins them into one cluster of three
/// masters and waits until every node reports `cluster_state:ok`; their ports.
fn start_cluster(server: &Path, cli: &Path, state: &mut State) -> Result<Vec<u16>> {
    let ports = free_ports(2 * CLUSTER_MASTERS)?;
    let (ports, buses) = ports.split_at(CLUSTER_MASTERS);
    for (port, bus) in ports.iter().zip(buses) {
        let data = dir().join("redis-cluster").join(port.to_string());
        fs::create_dir_all(&data)?;
        let mut cmd = Command::new(server);
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
            ])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--daemonize", "yes", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&data)
            .arg("--logfile")
            .arg(data.join("redis.log"))
            .arg("--pidfile")
            .arg(data.join("redis.pid"));
        state.cluster_ports.push(*port);
        state.save()?;
        output(&mut cmd).map_err(|e| {
            format!("redis-server (cluster node; --cluster-port needs Redis 7 or later): {e}")
        })?;
        wait_for_ping(*port)?;
    }
    let mut create = Command::new(cli);
    create.args(["--cluster", "create"]);
    for port in ports {
        create.arg(format!("127.0.0.1:{port}"));
    }
    create.args(["--cluster-replicas", "0", "--cluster-yes"]);
    output_within(&mut create, Duration::from_secs(60))
        .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in ports {
        loop {
            let info = output(
                Command::new(cli)
                    .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                    .args(["CLUSTER", "INFO"]),
            )
            .unwrap_or_default();
            if cluster_ok(&info) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node 127.0.0.1:{port} did not report cluster_state:ok within 30 s"
                )
                .into());
            }
            sleep(Duration::from_millis(100));
        }
    }
    let list: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    println!("Redis Cluster on {} (3 masters)", list.join(", "));
    Ok(ports.to_vec())
}

/// Whether `CLUSTER INFO` says the cluster serves every slot with three nodes.
fn cluster_ok(info: &str) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::to_owned)
    };
    field("cluster_state").as_deref() == Some("ok")
        && field("cluster_slots_assigned").as_deref() == Some("16384")
        && field("cluster_known_nodes").and_then(|n| n.parse::<usize>().ok())
            == Some(CLUSTER_MASTERS)
}

/// Like [`output`], killing the command if it runs longer than `limit`.
fn output_within(cmd: &mut Command, limit: Duration) -> Result<String> {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let deadline = Instant::now() + limit;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no result within {} s", limit.as_secs()).into());
        }
        sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "failed ({}): {} {}",
            out.status,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into())
    }
}

fn wait_for_ping(port: u16) -> Result {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if redis_command(port, "PING").is_ok_and(|r| r.starts_with("+PONG")) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("Redis did not answer PING on port {port}").into());
        }
        sleep(Duration::from_millis(50));
    }
}

fn stop_cluster(ports: &[u16]) {
    for port in ports {
        // The connection drops as the server exits; an error here is expected.
        let _ = redis_command(*port, "SHUTDOWN NOSAVE");
    }
}

pub(crate) fn redis_command(port: u16, command: &str) -> Result<String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(format!("{command}\r\n").as_bytes())?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned())
}

pub(crate) fn wait_for_port(port: u16, what: &str) -> Result {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{what} is not listening on port {port}").into());
        }
        sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Stops whatever `up` started and removes the data.
pub(crate) fn down() -> Result {
    let state = State::load();
    if let (Some(data), Some(bin)) = (&state.pg_data, &state.pg_bin) {
        if data.join("postmaster.pid").exists() {
            let mut stop = as_pg_user(&bin.join("pg_ctl"), is_root());
            stop.arg("-D")
                .arg(data)
                .args(["-m", "immediate", "-w", "stop"]);
            if let Err(e) = output(&mut stop) {
                println!("!!! services: stopping PostgreSQL: {e}");
            }
        }
        if data.exists() {
            fs::remove_dir_all(data)?;
        }
    }
    if let Some(sockets) = state.pg_sockets.filter(|s| s.exists()) {
        fs::remove_dir_all(sockets)?;
    }
    if let Some(port) = state.redis_port {
        // The connection drops as the server exits; an error here is expected.
        let _ = redis_command(port, "SHUTDOWN NOSAVE");
    }
    stop_cluster(&state.cluster_ports);
    if dir().exists() {
        fs::remove_dir_all(dir())?;
    }
    Ok(())
}

fn status() {
    let state = State::load();
    match (&state.pg_data, state.pg_bin) {
        (Some(data), Some(_)) if data.join("postmaster.pid").exists() => {
            println!("PostgreSQL: running, data {}", data.display());
        }
        _ => println!("PostgreSQL: not running"),
    }
    match state.redis_port {
        Some(p) if redis_command(p, "PING").is_ok() => println!("Redis: running on port {p}"),
        _ => println!("Redis: not running"),
    }
    let up = state
        .cluster_ports
        .iter()
        .filter(|p| redis_command(**p, "PING").is_ok())
        .count();
    if state.cluster_ports.is_empty() {
        println!("Redis Cluster: not running");
    } else {
        println!(
            "Redis Cluster: {up} of {} nodes running ({})",
            state.cluster_ports.len(),
            cluster_url(&state.cluster_ports)
        );
    }
    if let Ok(env) = fs::read_to_string(env_file()) {
        print!("{env}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_is_ready_only_with_every_slot_on_three_nodes() {
        let info = |state: &str, slots: u32, nodes: usize| {
            format!(
                "cluster_enabled:1\r\ncluster_state:{state}\r\ncluster_slots_assigned:{slots}\r\n\
                 cluster_slots_ok:{slots}\r\ncluster_known_nodes:{nodes}\r\ncluster_size:{nodes}\r\n"
            )
        };
        assert!(cluster_ok(&info("ok", 16384, 3)));
        assert!(!cluster_ok(&info("fail", 16384, 3)));
        assert!(!cluster_ok(&info("ok", 10923, 3)));
        assert!(!cluster_ok(&info("ok", 16384, 2)));
        assert!(!cluster_ok(""));
        assert!(!cluster_ok(
            "ERR This instance has cluster support disabled"
        ));
    }

    #[test]
    fn the_cluster_variable_lists_every_node() {
        assert_eq!(
            cluster_url(&[7000, 7001, 7002]),
            "redis://127.0.0.1:7000/,redis://127.0.0.1:7001/,redis://127.0.0.1:7002/"
        );
        let ports = free_ports(6).unwrap();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 6, "{ports:?}");
    }

    /// The tests read the variables through token-core's `test_support`: the names
    /// written here are the names read there.
    #[test]
    fn variable_names_match_the_tests_helper() {
        let helper =
            fs::read_to_string(root().join("crates/token-core/src/test_support.rs")).unwrap();
        for name in [DATABASE_URL, REDIS_URL, REDIS_CLUSTER_URL, REQUIRE] {
            assert!(helper.contains(&format!("\"{name}\"")), "{name}");
        }
    }
}
