//! `cargo xtask services up|down|status`: PostgreSQL and Redis on loopback, on free
//! ports, with their data under `target/services/`, for the integration tests.
//!
//! `up` writes `target/services/env` with `TESSERA_TEST_DATABASE_URL` and
//! `TESSERA_TEST_REDIS_URL` (one `KEY=value` per line; `set -a; . target/services/env`
//! exports them in a shell). PostgreSQL refuses to run as root, so as root it is
//! initialised and started as the `postgres` user.

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
/// When `1`, a missing service is an error rather than a skip.
pub(crate) const REQUIRE: &str = "TESSERA_REQUIRE_SERVICES";

/// `cargo xtask services …`
#[derive(clap::Subcommand)]
pub(crate) enum Action {
    /// Start PostgreSQL and Redis (whichever are installed) and write target/services/env.
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

pub(crate) fn redis_bin() -> Option<PathBuf> {
    let path = std::env::var("PATH").ok()?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
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
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if redis_command(port, "PING").is_ok_and(|r| r.starts_with("+PONG")) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("Redis did not answer PING on port {port}").into());
        }
        sleep(Duration::from_millis(50));
    }
    println!("Redis on 127.0.0.1:{port}");
    Ok(port)
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
    if let Ok(env) = fs::read_to_string(env_file()) {
        print!("{env}");
    }
}
