//! The revocation replica: the conformance suite on it, propagation between two
//! replicas within the bound (1 000 revocations, p50/p99 reported), and a private
//! `redis-server` stopped, paused (`SIGSTOP`) and restarted under it: every replica
//! fails closed past its bound and resumes without a restart, losing nothing. The
//! same on a Redis Cluster: the suite and the propagation on the services' cluster
//! (`TESSERA_TEST_REDIS_CLUSTER_URL`), and a private cluster of three masters whose
//! node serving the feed is paused, stopped and restarted.
#![cfg(feature = "redis")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use token_core::test_support::{REDIS_CLUSTER_URL, REDIS_URL, REQUIRE_SERVICES, service_url};
use token_core::{Clock, SystemClock, Timestamp};
use token_policy::{
    Blocklist, Error, RedisBlocklist, ReplicaOptions, ReplicatedBlocklist, TokenRef,
};

fn unique(name: &str) -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    format!("{name}-{:016x}:", u64::from_le_bytes(b))
}

fn in_a_minute() -> Timestamp {
    SystemClock
        .now()
        .checked_add(Duration::from_secs(60))
        .unwrap()
}

/// Where a replica's source lives.
enum Server {
    Node(String),
    /// The seed nodes.
    Cluster(Vec<String>),
}

impl Server {
    fn node(test: &str) -> Option<Self> {
        service_url(REDIS_URL, test).map(Self::Node)
    }

    fn cluster(test: &str) -> Option<Self> {
        let urls = service_url(REDIS_CLUSTER_URL, test)?;
        Some(Self::Cluster(
            urls.split(',').map(|u| u.trim().to_owned()).collect(),
        ))
    }

    async fn blocklist(&self) -> RedisBlocklist {
        match self {
            Self::Node(url) => RedisBlocklist::connect(url).await.unwrap(),
            Self::Cluster(nodes) => {
                let list = RedisBlocklist::connect_cluster(nodes).await.unwrap();
                assert!(list.is_cluster());
                list
            }
        }
    }
}

async fn replica(server: &Server, prefix: &str, options: ReplicaOptions) -> ReplicatedBlocklist {
    let source = server.blocklist().await.with_prefix(prefix);
    ReplicatedBlocklist::start(source, options).await.unwrap()
}

#[tokio::test]
async fn a_replica_answers_like_the_source() {
    let Some(server) = Server::node("revocation replica") else {
        return;
    };
    answers_like_the_source(&server).await;
}

#[tokio::test]
async fn a_replica_on_a_cluster_answers_like_the_source() {
    let Some(server) = Server::cluster("revocation replica on a cluster") else {
        return;
    };
    answers_like_the_source(&server).await;
}

async fn answers_like_the_source(server: &Server) {
    let prefix = unique("replica");
    let a = replica(server, &prefix, ReplicaOptions::default()).await;
    let until = in_a_minute();
    let now = SystemClock.now();
    // Written before the replica below starts: loaded from the index.
    assert!(a.revoke("j-1", until).await.unwrap());
    assert!(!a.revoke("j-1", until).await.unwrap(), "once only");
    a.revoke_session("sid-1", until).await.unwrap();
    a.revoke_subject_before("alice", now, until).await.unwrap();
    a.revoke_subject_before(
        "alice",
        now.checked_add(Duration::from_secs(5)).unwrap(),
        until,
    )
    .await
    .unwrap();
    a.revoke_subject_before("alice", now, until).await.unwrap();
    let b = replica(server, &prefix, ReplicaOptions::default()).await;
    for list in [&a, &b] {
        assert!(list.is_revoked("j-1").await.unwrap());
        assert!(!list.is_revoked("j-2").await.unwrap());
        assert!(list.is_session_revoked("sid-1").await.unwrap());
        assert_eq!(
            list.subject_cutoff("alice").await.unwrap(),
            Some(now.checked_add(Duration::from_secs(5)).unwrap()),
            "the later cut-off wins"
        );
        let r = list
            .lookup(TokenRef {
                jti: Some("j-2"),
                sid: Some("sid-1"),
                subject: Some("bob"),
            })
            .await
            .unwrap();
        assert!(!r.jti && r.session && r.subject_cutoff.is_none());
        // Expired entries are not revocations, and bad ids are refused.
        assert!(!list.revoke("j-old", now).await.unwrap());
        assert!(matches!(
            list.is_revoked("").await,
            Err(Error::InvalidRevocationId)
        ));
    }
    // Single use stays atomic across the fleet.
    assert!(a.consume("alice", "pay-1", until).await.unwrap());
    assert!(!b.consume("alice", "pay-1", until).await.unwrap());
    assert_eq!(b.status().last_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_another_replica_within_the_bound() {
    let Some(server) = Server::node("revocation propagation") else {
        return;
    };
    propagation(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_another_replica_on_a_cluster_within_the_bound() {
    let Some(server) = Server::cluster("revocation propagation on a cluster") else {
        return;
    };
    propagation(&server).await;
}

async fn propagation(server: &Server) {
    let prefix = unique("propagation");
    let a = replica(server, &prefix, ReplicaOptions::default()).await;
    let b = replica(server, &prefix, ReplicaOptions::default()).await;
    let until = in_a_minute();
    let mut latencies = Vec::with_capacity(1000);
    let started = Instant::now();
    for i in 0..1000 {
        let jti = format!("p-{i}");
        let t = Instant::now();
        assert!(a.revoke(&jti, until).await.unwrap());
        while !b.is_revoked(&jti).await.unwrap() {
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{jti} not seen in 2 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        latencies.push(t.elapsed());
        assert!(started.elapsed() < Duration::from_secs(60), "bounded run");
    }
    latencies.sort();
    // The q-th per-mille.
    let p = |q: usize| latencies[(latencies.len() - 1) * q / 1000];
    eprintln!(
        "revoke on A -> refused on B over {} revocations: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        p(500),
        p(990),
        latencies[latencies.len() - 1]
    );
    assert!(p(990) < Duration::from_secs(1), "p99 {:?}", p(990));
    assert_eq!(b.status().entries, 1000);
}

/// A private `redis-server` whose data survives a restart (append-only file, fsync on
/// every write), killed when dropped.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// Arguments beyond the defaults (a cluster node's).
    extra: Vec<String>,
}

/// A stopped [`Redis`], to start again on the same port and data.
struct Stopped {
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl Stopped {
    fn start(self) -> Redis {
        Redis::start_with(self.port, self.dir, self.extra)
    }
}

impl Redis {
    fn start(port: u16, dir: PathBuf) -> Self {
        Self::start_with(port, dir, Vec::new())
    }

    fn start_with(port: u16, dir: PathBuf, extra: Vec<String>) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&dir)
            .args(&extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start (options {extra:?}; a cluster node needs Redis 7 or later)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            dir,
            extra,
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn stop(mut self) -> Stopped {
        let _ = self.child.kill();
        let _ = self.child.wait();
        Stopped {
            port: self.port,
            dir: self.dir.clone(),
            extra: self.extra.clone(),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_installed() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var(REQUIRE_SERVICES).as_deref() != Ok("1"),
            "redis-server is not installed but {REQUIRE_SERVICES}=1"
        );
        eprintln!("!!! SKIPPED replica outage test: redis-server is not installed");
    }
    found
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits until `f` holds, checking every 20 ms for at most `within`; the time taken.
async fn until<F, Fut>(within: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    while !f().await {
        assert!(t.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

fn stale(r: &Result<bool, Error>) -> bool {
    matches!(r, Err(Error::RevocationStale { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_paused_or_restarted_redis_fails_closed_then_resumes() {
    if !redis_installed() {
        return;
    }
    let dir = std::env::temp_dir().join(unique("replica-outage").trim_end_matches(':'));
    let redis = Redis::start(free_port(), dir.clone());
    let _ = &dir;
    let url = Server::Node(format!("redis://127.0.0.1:{}/", redis.port));
    let bound = Duration::from_millis(500);
    let options = ReplicaOptions::default().max_staleness(bound);
    let a = replica(&url, "outage:", options).await;
    let b = replica(&url, "outage:", options).await;
    let until_t = in_a_minute();
    assert!(a.revoke("before", until_t).await.unwrap());
    until(Duration::from_secs(2), "seen on b", || async {
        b.is_revoked("before").await.unwrap()
    })
    .await;

    // Paused: no reset, just silence. Noticed by the feed's timeout.
    redis.signal("-STOP");
    let noticed = until(
        Duration::from_secs(3),
        "paused redis fails closed",
        || async { stale(&b.is_revoked("before").await) },
    )
    .await;
    assert!(noticed <= bound + Duration::from_millis(600), "{noticed:?}");
    let r = a.is_revoked("before").await;
    assert!(stale(&r), "{r:?}");
    redis.signal("-CONT");
    let resumed = until(Duration::from_secs(5), "resumes after SIGCONT", || async {
        b.is_revoked("before").await.is_ok()
    })
    .await;
    eprintln!("paused redis: failed closed after {noticed:?}, resumed {resumed:?} after SIGCONT");

    // Stopped: the same, then a restart on the same data.
    let stopped = redis.stop();
    let noticed = until(
        Duration::from_secs(3),
        "stopped redis fails closed",
        || async { stale(&b.is_revoked("before").await) },
    )
    .await;
    // A write that cannot be made durable is an error, never a silent success.
    assert!(a.revoke("during", until_t).await.is_err());
    let redis = stopped.start();
    let resumed = until(Duration::from_secs(5), "resumes after restart", || async {
        b.is_revoked("before").await.is_ok()
    })
    .await;
    eprintln!("stopped redis: failed closed after {noticed:?}, resumed {resumed:?} after restart");
    for list in [&a, &b] {
        until(Duration::from_secs(5), "a back", || async {
            list.is_revoked("before").await.is_ok()
        })
        .await;
        assert!(list.is_revoked("before").await.unwrap(), "nothing lost");
        assert!(
            !list.is_revoked("during").await.unwrap(),
            "the failed write stored nothing"
        );
    }
    // And the feed works again.
    assert!(a.revoke("after", until_t).await.unwrap());
    until(Duration::from_secs(2), "after seen on b", || async {
        b.is_revoked("after").await.unwrap_or(false)
    })
    .await;
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The slot ranges of a private cluster's three masters.
const RANGES: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// A private Redis Cluster of three masters (each with its data, its cluster bus on a
/// free port, a node timeout longer than the outages below), its slots assigned and
/// its nodes met directly: no `redis-cli` needed. The nodes and their ports.
async fn private_cluster(dir: &std::path::Path) -> (Vec<Redis>, Vec<u16>) {
    let listeners: Vec<_> = (0..6)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    drop(listeners);
    let (ports, buses) = ports.split_at(3);
    let nodes: Vec<Redis> = ports
        .iter()
        .zip(buses)
        .map(|(port, bus)| {
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
                "--cluster-node-timeout",
                "5000",
                "--cluster-config-file",
                "nodes.conf",
            ];
            Redis::start_with(
                *port,
                dir.join(port.to_string()),
                extra.iter().map(|a| (*a).to_owned()).collect(),
            )
        })
        .collect();
    let mut conns = Vec::new();
    for port in ports {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        conns.push(client.get_multiplexed_async_connection().await.unwrap());
    }
    for (conn, (lo, hi)) in conns.iter_mut().zip(RANGES) {
        let () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(lo)
            .arg(hi)
            .query_async(conn)
            .await
            .unwrap();
    }
    for (port, bus) in ports.iter().zip(buses).skip(1) {
        let () = redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(port)
            .arg(bus)
            .query_async(&mut conns[0])
            .await
            .unwrap();
    }
    let started = Instant::now();
    for conn in &mut conns {
        loop {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(conn)
                .await
                .unwrap();
            if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the private cluster did not form: {info}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (nodes, ports.to_vec())
}

/// Which of the private cluster's masters serves `prefix`'s keys.
async fn serving(port: u16, prefix: &str) -> usize {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(format!("{{{prefix}}}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    RANGES
        .iter()
        .position(|(lo, hi)| (*lo..=*hi).contains(&slot))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_serving_the_feed_paused_or_restarted_fails_closed_then_resumes() {
    if !redis_installed() {
        return;
    }
    let dir = std::env::temp_dir().join(unique("replica-cluster").trim_end_matches(':'));
    let (nodes, ports) = private_cluster(&dir).await;
    let mut nodes: Vec<Option<Redis>> = nodes.into_iter().map(Some).collect();
    let seeds = Server::Cluster(
        ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect(),
    );
    let prefix = unique("cluster-outage");
    let owner = serving(ports[0], &prefix).await;
    let other = (owner + 1) % 3;
    let bound = Duration::from_millis(500);
    let options = ReplicaOptions::default().max_staleness(bound);
    let a = replica(&seeds, &prefix, options).await;
    let b = replica(&seeds, &prefix, options).await;
    let until_t = in_a_minute();
    assert!(a.revoke("before", until_t).await.unwrap());
    until(Duration::from_secs(2), "seen on b", || async {
        b.is_revoked("before").await.unwrap()
    })
    .await;

    // A node serving none of the prefix's slots paused: the feed never notices.
    nodes[other].as_ref().unwrap().signal("-STOP");
    let t = Instant::now();
    let mut worst = Duration::ZERO;
    while t.elapsed() < bound * 3 {
        assert!(b.is_revoked("before").await.unwrap(), "{:?}", b.status());
        worst = worst.max(b.status().lag.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("another node paused: the feed's lag stayed under {worst:?}");
    nodes[other].as_ref().unwrap().signal("-CONT");

    // The node serving the feed paused: fails closed past the bound, then resumes.
    nodes[owner].as_ref().unwrap().signal("-STOP");
    let noticed = until(
        Duration::from_secs(3),
        "paused cluster node fails closed",
        || async { stale(&b.is_revoked("before").await) },
    )
    .await;
    assert!(noticed <= bound + Duration::from_millis(600), "{noticed:?}");
    // `a` follows its own feed, started a moment apart from `b`'s: it fails closed by
    // the same bound, counted from the pause, not necessarily at the same instant.
    let noticed_a = until(
        Duration::from_secs(3),
        "paused cluster node fails closed on a",
        || async { stale(&a.is_revoked("before").await) },
    )
    .await;
    assert!(
        noticed + noticed_a <= bound + Duration::from_millis(600),
        "{noticed:?} + {noticed_a:?}"
    );
    nodes[owner].as_ref().unwrap().signal("-CONT");
    let resumed = until(Duration::from_secs(5), "resumes after SIGCONT", || async {
        b.is_revoked("before").await.is_ok()
    })
    .await;
    eprintln!(
        "paused cluster node: failed closed after {noticed:?}, resumed {resumed:?} after SIGCONT"
    );

    // Stopped, a write refused meanwhile, restarted on its data: nothing lost.
    let stopped = nodes[owner].take().unwrap().stop();
    let noticed = until(
        Duration::from_secs(3),
        "stopped cluster node fails closed",
        || async { stale(&b.is_revoked("before").await) },
    )
    .await;
    assert!(a.revoke("during", until_t).await.is_err());
    nodes[owner] = Some(stopped.start());
    let resumed = until(Duration::from_secs(10), "resumes after restart", || async {
        b.is_revoked("before").await.is_ok()
    })
    .await;
    eprintln!(
        "stopped cluster node: failed closed after {noticed:?}, resumed {resumed:?} after restart"
    );
    for list in [&a, &b] {
        until(Duration::from_secs(10), "back", || async {
            list.is_revoked("before").await.is_ok()
        })
        .await;
        assert!(list.is_revoked("before").await.unwrap(), "nothing lost");
        assert!(
            !list.is_revoked("during").await.unwrap(),
            "the failed write stored nothing"
        );
    }
    let revoked_after = until(Duration::from_secs(10), "writes again", || async {
        a.revoke("after", until_t).await.is_ok()
    })
    .await;
    until(Duration::from_secs(2), "after seen on b", || async {
        b.is_revoked("after").await.unwrap_or(false)
    })
    .await;
    eprintln!("stopped cluster node: writes accepted {revoked_after:?} after the feed resumed");
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_replica_needs_its_own_connection() {
    let Some(url) = service_url(REDIS_URL, "replica construction") else {
        return;
    };
    let client = redis::Client::open(url.as_str()).unwrap();
    let manager = redis::aio::ConnectionManager::new(client).await.unwrap();
    let err = ReplicatedBlocklist::start(
        RedisBlocklist::from_manager(manager),
        ReplicaOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}
