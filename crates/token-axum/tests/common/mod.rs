//! Test harness: servers on loopback ports, a clock moved by hand, unique names and
//! PostgreSQL schemas of their own.
#![allow(dead_code, unreachable_pub)]

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::Router;
use token_axum::serve::ServeLimits;
use token_core::{Clock, SystemClock, Timestamp};
use tokio::sync::oneshot;

/// A clock the test moves by hand, starting now.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(SystemClock.now().unix_seconds())))
    }

    pub fn advance(&self, d: Duration) {
        self.0
            .fetch_add(i64::try_from(d.as_secs()).unwrap(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

pub fn unique() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{:016x}", u64::from_le_bytes(b))
}

/// A server on a loopback port, served by `token_axum::serve` (with each request's
/// `ConnectInfo<SocketAddr>`), stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// With the default limits.
    pub async fn start(router: Router) -> Self {
        Self::start_with_limits(router, ServeLimits::default()).await
    }

    pub async fn start_with_limits(router: Router, limits: ServeLimits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, router, limits)
    }

    /// On loopback port `port` (for a service that must know its origin first).
    pub async fn start_on(router: Router, port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        Self::serve(listener, router, ServeLimits::default())
    }

    fn serve(listener: tokio::net::TcpListener, router: Router, limits: ServeLimits) -> Self {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = token_axum::serve::serve(listener, router)
            .with_limits(limits)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            });
        let task = tokio::spawn(server.into_future());
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP client for loopback servers: no proxy, no redirects, no cookie store.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A PostgreSQL schema of the test's own, dropped by [`PgSchema::drop_now`].
pub struct PgSchema {
    admin: sqlx::PgPool,
    pub name: String,
    /// The server URL with the schema as the search path.
    pub url: String,
}

impl PgSchema {
    pub async fn create(server_url: &str) -> Self {
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(server_url)
            .await
            .unwrap();
        let name = format!("tax_{}", unique());
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if server_url.contains('?') { '&' } else { '?' };
        let url = format!("{server_url}{sep}options%5Bsearch_path%5D={name}");
        Self { admin, name, url }
    }

    pub async fn drop_now(self) {
        let _ = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&self.admin)
            .await;
        self.admin.close().await;
    }
}

/// The value of a `Set-Cookie` header's `name=value` pair, and the whole header.
pub fn set_cookie<'a>(response: &'a reqwest::Response, name: &str) -> Option<(&'a str, &'a str)> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?;
            let (n, value) = pair.split_once('=')?;
            (n == name).then_some((value, v))
        })
}

/// The reference service's binary (`examples/auth_server`), built beside the test's
/// directory: `target/<profile>/deps/<test>-…` → `target/<profile>/examples/auth_server`.
pub fn example_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|d| {
            d.join("examples")
                .join(format!("auth_server{}", std::env::consts::EXE_SUFFIX))
        })
        .unwrap();
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build -p token-axum --example auth_server` first \
         (`cargo test -p token-axum` builds it)",
        bin.display()
    );
    bin
}

/// The reference service in a process of its own, listening on a loopback port it
/// picks, killed when dropped. Its stdout and stderr are read all along, so a chatty
/// service never blocks on a full pipe.
pub struct Spawned {
    pub child: tokio::process::Child,
    pub base: String,
    stderr: Arc<std::sync::Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Spawned {
    /// Starts the binary with `--addr 127.0.0.1:0` and `args`, and waits (at most a
    /// minute) for its "listening" line; a start that fails panics with its stderr.
    pub async fn start<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        use tokio::io::AsyncBufReadExt as _;
        let mut child = tokio::process::Command::new(example_binary())
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let reader = {
            let stderr = stderr.clone();
            let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            })
        };
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the service did not start within a minute")
            .unwrap();
        let Some(base) = line
            .as_deref()
            .and_then(|l| l.strip_prefix("auth_server listening on "))
            .map(str::to_owned)
        else {
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
            panic!(
                "the service did not start: {line:?}\n{}",
                stderr.lock().unwrap()
            );
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            base,
            stderr,
            reader,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// What the service wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Kills the service; everything it wrote on stderr.
    pub async fn stop(mut self) -> String {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.reader).await;
        self.stderr()
    }
}
