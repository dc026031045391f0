//! `token_axum::serve`: slow, idle and excess connections are closed within their
//! bounds while other clients are served. Loopback only, with bounds of a second or two;
//! each test prints how long after its bound each held connection was closed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    clippy::too_many_lines
)]

mod common;

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::routing::{get, post};
use common::{TestServer, http};
use token_axum::serve::{ServeLimits, serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How much earlier than its bound a close may be seen: the client starts its clock a
/// little after the server starts its own (at the accept, at the end of a response),
/// more so on a busy machine. The deadlines themselves are exact: see the unit tests of
/// `token_axum::serve`.
const EARLY: Duration = Duration::from_millis(200);
/// How much later than its bound a close may come, on a busy machine.
const LATE: Duration = Duration::from_secs(1);

/// Every bound `bound`, and the default connection cap.
fn limits(bound: Duration) -> ServeLimits {
    let mut limits = ServeLimits::default();
    limits.header_read_timeout = bound;
    limits.body_read_timeout = bound;
    limits.idle_timeout = bound;
    limits.write_timeout = bound;
    limits
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Milliseconds from the bound to the close (negative: before it).
fn after_bound(elapsed: Duration, bound: Duration) -> f64 {
    (elapsed.as_secs_f64() - bound.as_secs_f64()) * 1000.0
}

/// Asserts the close came within `[bound - EARLY, bound + LATE]`, prints how long after
/// the bound, and returns it in milliseconds.
fn check_close(kind: &str, elapsed: Duration, bound: Duration) -> f64 {
    let late = after_bound(elapsed, bound);
    eprintln!(
        "{kind}: closed {late:.1} ms after the {:.1} s bound",
        bound.as_secs_f64()
    );
    assert!(
        elapsed + EARLY >= bound && elapsed <= bound + LATE,
        "{kind}: closed after {elapsed:?}, bound {bound:?}"
    );
    late
}

/// The routes the tests use.
fn router(slow: Duration, endless: Arc<Mutex<EndlessLog>>) -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/slow",
            get(move || async move {
                tokio::time::sleep(slow).await;
                "slow"
            }),
        )
        // Works first, reads the body after.
        .route(
            "/slow-echo",
            post(move |body: Body| async move {
                tokio::time::sleep(slow).await;
                axum::body::to_bytes(body, 1 << 20)
                    .await
                    .map_or_else(|_| "failed".to_owned(), |b| b.len().to_string())
            }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/endless",
            get(|State(log): State<Arc<Mutex<EndlessLog>>>| async move {
                Response::new(Body::new(Endless { log }))
            }),
        )
        .with_state(endless)
}

async fn start(limits: ServeLimits, slow: Duration) -> TestServer {
    TestServer::start_with_limits(router(slow, Arc::default()), limits).await
}

/// When the server dropped an endless response body.
#[derive(Default)]
struct EndlessLog {
    dropped: Option<Instant>,
}

/// A response body that never ends: 64 KiB frames for as long as they are taken.
struct Endless {
    log: Arc<Mutex<EndlessLog>>,
}

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            b'x';
            64 * 1024
        ])))))
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.log.lock().unwrap().dropped = Some(Instant::now());
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one response (with a `Content-Length`): its status and body.
async fn read_response(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap();
            let status = head[9..12].parse().unwrap();
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed in the middle of a response");
                buf.extend_from_slice(&chunk[..n]);
            }
            return (status, buf[end + 4..end + 4 + length].to_vec());
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads until the server closes the connection (end of stream or reset), for at most
/// `within`; what was read.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(within, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server did not close the connection in time");
    got
}

/// True while the connection is open and has nothing to read.
async fn still_open(stream: &mut TcpStream, for_at_least: Duration) -> bool {
    let mut chunk = [0u8; 1];
    tokio::time::timeout(for_at_least, stream.read(&mut chunk))
        .await
        .is_err()
}

const HALF_HEAD: &[u8] = b"GET /hello HTTP/1.1\r\nHost: test\r\nAccept: */";
const HELLO: &[u8] = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n";
const ONE_BODY_BYTE: &[u8] =
    b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\nx";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_are_cut_at_the_header_bound() {
    let bound = secs(1.0);
    let server = start(limits(bound), bound).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let start = Instant::now();
    stream.write_all(HALF_HEAD).await.unwrap();
    let got = until_closed(&mut stream, bound + LATE * 2).await;
    check_close("half-sent headers", start.elapsed(), bound);
    assert!(got.is_empty(), "no answer to a request never received");
    // A connection that sends nothing at all is held no longer.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let start = Instant::now();
    until_closed(&mut silent, bound + LATE * 2).await;
    check_close("silent new connection", start.elapsed(), bound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_bound_of_a_later_request_starts_with_its_first_byte() {
    // Idle longer than the header bound: a stall inside the next request's headers is
    // cut at the header bound, not the idle one.
    let header = secs(1.0);
    let mut limits = limits(header);
    limits.idle_timeout = secs(3.0);
    let server = start(limits, header).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HELLO).await.unwrap();
    assert_eq!(read_response(&mut stream).await, (200, b"hello".to_vec()));
    // Idle past the header bound: still open.
    assert!(still_open(&mut stream, secs(1.5)).await);
    stream.write_all(HALF_HEAD).await.unwrap();
    let start = Instant::now();
    until_closed(&mut stream, header + LATE * 2).await;
    check_close(
        "half-sent headers of a second request",
        start.elapsed(),
        header,
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_at_the_body_bound() {
    let body = secs(1.0);
    let mut limits = limits(secs(5.0));
    limits.body_read_timeout = body;
    let server = start(limits, body).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(ONE_BODY_BYTE).await.unwrap();
    let start = Instant::now();
    let got = until_closed(&mut stream, body + LATE * 2).await;
    check_close("body stalled after one byte", start.elapsed(), body);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    // A body that keeps coming, a byte at a time, each well inside the bound, is read
    // in full though it takes longer than the bound in all.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..4 {
        tokio::time::sleep(secs(0.4)).await;
        stream.write_all(b"x").await.unwrap();
    }
    assert_eq!(read_response(&mut stream).await, (200, b"4".to_vec()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_at_the_idle_bound() {
    let header = secs(1.0);
    let idle = secs(2.0);
    let mut limits = limits(header);
    limits.idle_timeout = idle;
    let server = start(limits, header).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HELLO).await.unwrap();
    assert_eq!(read_response(&mut stream).await, (200, b"hello".to_vec()));
    let start = Instant::now();
    // Kept alive: a second request on the same connection is answered.
    stream.write_all(HELLO).await.unwrap();
    assert_eq!(read_response(&mut stream).await, (200, b"hello".to_vec()));
    let start_after_second = Instant::now();
    assert!(start_after_second - start < header);
    let got = until_closed(&mut stream, idle + LATE * 2).await;
    assert!(got.is_empty());
    check_close(
        "idle kept-alive connection",
        start_after_second.elapsed(),
        idle,
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_every_bound_still_answers() {
    let bound = secs(1.0);
    let slow = bound * 2;
    let server = start(limits(bound), slow).await;
    let client = http();
    let start = Instant::now();
    let r = client.get(server.url("/slow")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "slow");
    assert!(start.elapsed() >= slow);
    // The body arrived at once; the handler reads it only after working longer than
    // the body bound: the bound runs only while a read waits.
    let r = client
        .post(server.url("/slow-echo"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "1000");
    // On a raw connection too, which then stays usable.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await, (200, b"slow".to_vec()));
    stream.write_all(HELLO).await.unwrap();
    assert_eq!(read_response(&mut stream).await, (200, b"hello".to_vec()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_the_client_does_not_read_is_cut_at_the_write_bound() {
    let write = secs(1.0);
    let mut limits = limits(secs(5.0));
    limits.write_timeout = write;
    let log = Arc::new(Mutex::new(EndlessLog::default()));
    let server = TestServer::start_with_limits(router(write, Arc::clone(&log)), limits).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let asked = Instant::now();
    // Read nothing: once the socket buffers are full, writes stop making progress.
    let deadline = Instant::now() + secs(15.0);
    let dropped = loop {
        if let Some(dropped) = log.lock().unwrap().dropped {
            break dropped;
        }
        assert!(Instant::now() < deadline, "the response was never cut");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Filling the loopback socket buffers takes milliseconds: counted in.
    check_close(
        "response not read (counted from the request)",
        dropped - asked,
        write,
    );
    // The client then finds the connection closed.
    until_closed(&mut stream, secs(10.0)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_cap_clients_wait_and_are_served_once_slow_ones_are_cut() {
    const CAP: usize = 4;
    const WAITING: usize = 3;
    let bound = secs(1.0);
    let mut limits = limits(bound);
    limits.max_connections = CAP;
    let server = start(limits, bound).await;
    let start = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..CAP {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(HALF_HEAD).await.unwrap();
        slow.push(stream);
    }
    // Let the server accept them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    // More clients: the kernel completes their handshakes (the backlog), the server does
    // not accept them while at the cap.
    let mut waiting = Vec::new();
    for _ in 0..WAITING {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(HELLO).await.unwrap();
        waiting.push(stream);
    }
    for stream in &mut waiting {
        assert!(
            still_open(stream, Duration::from_millis(100)).await,
            "answered while at the cap"
        );
    }
    assert!(start.elapsed() + EARLY < bound, "the test ran too slowly");
    // Once the slow ones are cut, the waiting ones are accepted and served.
    let mut answered = Vec::new();
    for stream in &mut waiting {
        assert_eq!(
            tokio::time::timeout(bound + LATE * 2, read_response(stream))
                .await
                .expect("a waiting client was never served"),
            (200, b"hello".to_vec())
        );
        answered.push(start.elapsed());
    }
    for stream in &mut slow {
        until_closed(stream, LATE).await;
    }
    for elapsed in &answered {
        eprintln!(
            "over the cap: served {:.1} ms after the slow connections' {:.1} s bound",
            after_bound(*elapsed, bound),
            bound.as_secs_f64()
        );
        assert!(*elapsed + EARLY >= bound && *elapsed <= bound + LATE);
    }
    server.stop().await;
}

/// One held connection of each kind, stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    Headers,
    Body,
    Idle,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_held_connections_do_not_stop_other_clients() {
    const HELD: usize = 200;
    let bound = secs(2.0);
    let server = start(limits(bound), bound).await;
    let addr = server.addr;
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(HELD);
    for i in 0..HELD {
        let kind = [Held::Headers, Held::Body, Held::Idle][i % 3];
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            match kind {
                Held::Headers => stream.write_all(HALF_HEAD).await.unwrap(),
                Held::Body => stream.write_all(ONE_BODY_BYTE).await.unwrap(),
                Held::Idle => {
                    stream.write_all(HELLO).await.unwrap();
                    read_response(&mut stream).await;
                }
            }
            let start = Instant::now();
            ready.send(()).await.unwrap();
            until_closed(&mut stream, bound + LATE * 3).await;
            (kind, start.elapsed())
        }));
    }
    drop(ready_tx);
    for _ in 0..HELD {
        ready_rx.recv().await.unwrap();
    }
    let held_since = Instant::now();
    // Every one is held; another client is answered at once, and more than once.
    let client = http();
    for _ in 0..5 {
        let asked = Instant::now();
        let r = client.get(server.url("/hello")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "hello");
        eprintln!(
            "with {HELD} held connections, a request was answered in {:.1} ms",
            asked.elapsed().as_secs_f64() * 1000.0
        );
    }
    assert!(
        held_since.elapsed() + EARLY < bound,
        "answered only once the held connections were cut"
    );
    let mut closes: Vec<(Held, f64)> = Vec::new();
    for task in tasks {
        let (kind, elapsed) = task.await.unwrap();
        // Each connection's clock started once it was held, the server's a little
        // earlier for the headers (at its accept): none closed before its bound less
        // the time to set the 200 up.
        assert!(elapsed <= bound + LATE, "{kind:?} closed after {elapsed:?}");
        closes.push((kind, after_bound(elapsed, bound)));
    }
    for kind in [Held::Headers, Held::Body, Held::Idle] {
        let mut late: Vec<f64> = closes
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, l)| *l)
            .collect();
        late.sort_by(f64::total_cmp);
        eprintln!(
            "{kind:?} held ({}): closed {:.1} / {:.1} / {:.1} ms (min / median / max) after the {:.1} s bound",
            late.len(),
            late[0],
            late[late.len() / 2],
            late[late.len() - 1],
            bound.as_secs_f64()
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_peer_address() {
    let server = start(ServeLimits::default(), secs(1.0)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    stream
        .write_all(b"GET /peer HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = read_response(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(body).unwrap(), local.to_string());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_closes_idle_connections_and_answers_requests_in_flight() {
    let slow = secs(1.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        serve(listener, router(slow, Arc::default()))
            .with_limits(limits(secs(10.0)))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(HELLO).await.unwrap();
    assert_eq!(read_response(&mut idle).await, (200, b"hello".to_vec()));
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = Instant::now();
    stop.send(()).unwrap();
    // The idle connection is closed at once, not at its 10 s bound.
    until_closed(&mut idle, secs(1.0)).await;
    // The request in flight is answered, and its connection then closed.
    assert_eq!(read_response(&mut busy).await, (200, b"slow".to_vec()));
    until_closed(&mut busy, secs(1.0)).await;
    tokio::time::timeout(secs(5.0), server)
        .await
        .expect("the server did not stop")
        .unwrap();
    assert!(stopping.elapsed() < secs(5.0));
    // Nothing listens any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

/// The reference service's binary, started with 64 file descriptors: more stalled
/// connections than it has descriptors make `accept` fail (`EMFILE`); the server pauses,
/// goes on, cuts the stalled connections at the header bound, accepts the waiting ones,
/// and answers a normal client.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_service_survives_running_out_of_file_descriptors() {
    use tokio::io::AsyncBufReadExt as _;
    const STALLED: usize = 150;
    // target/<profile>/deps/serve-… → target/<profile>/examples/auth_server
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|d| d.join("examples").join("auth_server"))
        .unwrap();
    if !bin.exists() {
        eprintln!(
            "!!! SKIPPED file-descriptor test: {} is not built (run `cargo test -p token-axum`)",
            bin.display()
        );
        return;
    }
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" "$@""#)
        .arg(&bin)
        .args(["--addr", "127.0.0.1:0", "--header-read-timeout", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(secs(30.0), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = line
        .strip_prefix("auth_server listening on ")
        .unwrap()
        .to_owned();
    let addr: SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let warning = tokio::time::timeout(secs(5.0), stderr.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(warning.contains("open-file limit (64"), "{warning}");

    // The peak of the server's open descriptors, sampled while the flood runs (the
    // first stalled connections may already be cut by the time the last one is made,
    // on a loaded machine).
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(std::sync::atomic::Ordering::SeqCst) {
                let n = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
                peak.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let start = Instant::now();
    let mut held = Vec::new();
    for _ in 0..STALLED {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(HALF_HEAD).await.unwrap();
        held.push(tokio::spawn(async move {
            until_closed(&mut stream, secs(20.0)).await;
            start.elapsed()
        }));
    }

    // A normal client waits in the backlog behind the stalled ones, and is answered.
    let r = http()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answered = start.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    sampler.await.unwrap();
    let at_the_limit = peak.load(std::sync::atomic::Ordering::SeqCst);
    let mut last_close = Duration::ZERO;
    for task in held {
        last_close = last_close.max(task.await.unwrap());
    }
    eprintln!(
        "{STALLED} stalled connections on 64 descriptors ({at_the_limit} open at the peak): \
         a normal client answered after {:.2} s, the last stalled one closed after {:.2} s",
        answered.as_secs_f64(),
        last_close.as_secs_f64()
    );
    assert!(at_the_limit >= 60, "the flood did not reach the limit");
    // Still serving.
    let r = http()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    child.kill().await.unwrap();
}
