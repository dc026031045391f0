//! Serving a [`Router`] over HTTP/1.1 with bounds on slow and idle connections.
//!
//! `axum::serve` keeps a connection open for as long as its client likes: request
//! headers that never finish, a body that stops after one byte, an idle keep-alive
//! connection. A few thousand such connections use up the file descriptors and memory
//! of a service. [`serve`] bounds each:
//!
//! | limit | default | the connection is closed when |
//! |---|---|---|
//! | [`ServeLimits::header_read_timeout`] | 10 s | a request's headers are not complete this long after the connection was accepted (first request) or after the request's first byte (later requests) |
//! | [`ServeLimits::body_read_timeout`] | 30 s | a handler waits this long for the next piece of the request body, with nothing arriving: the request is answered `408 Request Timeout` and the connection closed |
//! | [`ServeLimits::idle_timeout`] | 60 s | a kept-alive connection sends no byte of a next request this long after the last response |
//! | [`ServeLimits::write_timeout`] | 30 s | a response write makes no progress this long (a client that does not read) |
//! | [`ServeLimits::max_connections`] | 10 000 | (a cap, not a timeout) this many are open: further connections wait in the listen backlog, not accepted, until one closes |
//!
//! A handler that takes long to answer is not cut: while a request is being served,
//! only the body read (time without progress, while the handler waits for the body) and
//! the response write (time without progress) are bounded. A new connection that sends
//! nothing counts as one whose headers have not arrived.
//!
//! Over [`ServeLimits::max_connections`] the server stops calling `accept` until a
//! connection closes: new connections wait in the kernel's listen backlog (a client sees
//! a slow answer, never a refusal from the server). When the backlog is full too, the
//! kernel drops further connection attempts (Linux; clients retry the handshake). An
//! accept error such as `EMFILE` (no file descriptor left) never ends the server: it
//! pauses accepting for 100 ms and tries again, while the open connections go on being
//! served and timed out. Keep the cap below the process's file-descriptor limit, with room
//! for the descriptors the service needs otherwise (database, files).
//!
//! Each request carries the peer's address as [`ConnectInfo<SocketAddr>`] (for limits per
//! client address). Only HTTP/1.1 (and 1.0) is served.
//!
//! ```no_run
//! # async fn run(router: axum::Router) -> std::io::Result<()> {
//! use std::time::Duration;
//! use token_axum::serve::{ServeLimits, serve};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let mut limits = ServeLimits::default();
//! limits.idle_timeout = Duration::from_secs(30);
//! serve(listener, router)
//!     .with_limits(limits)
//!     .with_graceful_shutdown(async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await;
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, IntoFuture, Pending, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::{BoxError, Router};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::Service as _;

/// [`ServeLimits::header_read_timeout`] by default.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// [`ServeLimits::body_read_timeout`] by default.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// [`ServeLimits::idle_timeout`] by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// [`ServeLimits::write_timeout`] by default.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// [`ServeLimits::max_connections`] by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How long the accept loop pauses after an accept error other than a connection
/// failing on its own (`EMFILE`, `ENFILE`, `ENOBUFS`, …).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The bounds [`serve`] puts on connections. The defaults suit a public service;
/// change a field to taste:
///
/// ```
/// use std::time::Duration;
/// use token_axum::serve::ServeLimits;
///
/// let mut limits = ServeLimits::default();
/// limits.header_read_timeout = Duration::from_secs(5);
/// limits.max_connections = 2_000;
/// assert_eq!(limits.idle_timeout, Duration::from_secs(60));
/// ```
///
/// A duration too long to add to the current time means no bound; a zero duration
/// closes every connection it applies to at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeLimits {
    /// The longest a client may take to send a request's headers: from the
    /// connection's accept for its first request, from the request's first byte for a
    /// later one on a kept-alive connection. Past it the connection is closed, without
    /// an answer. Default 10 seconds.
    pub header_read_timeout: Duration,
    /// The longest a handler waits for the next piece of a request body with nothing
    /// arriving: time without progress, not the whole body's. Past it the body read
    /// fails, the request is answered `408 Request Timeout` with `Connection: close`,
    /// and the connection is closed. It runs only while a handler waits for the body, so
    /// it never cuts a handler that is working on its answer. Default 30 seconds.
    pub body_read_timeout: Duration,
    /// The longest a kept-alive connection may stay open after a response without a
    /// byte of the next request. Default 60 seconds.
    pub idle_timeout: Duration,
    /// The longest a response write may make no progress (the client does not read).
    /// Past it the connection is closed. Default 30 seconds.
    pub write_timeout: Duration,
    /// The most connections open at once (at least one). Over it, new connections are
    /// not accepted: they wait in the listen backlog until one closes. Default 10 000.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `router` on `listener` with the default [`ServeLimits`], until the future is
/// dropped or the signal of [`Serve::with_graceful_shutdown`] completes. Await the
/// returned [`Serve`] to run it.
pub fn serve(listener: TcpListener, router: Router) -> Serve {
    Serve {
        listener,
        router,
        limits: ServeLimits::default(),
        signal: std::future::pending(),
    }
}

/// A server about to run: see [`serve`]. Awaiting it runs it; it ends only after a
/// graceful shutdown.
#[must_use = "a server does nothing until awaited"]
pub struct Serve<F = Pending<()>> {
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    signal: F,
}

impl<F> fmt::Debug for Serve<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<F> Serve<F> {
    /// These limits instead of the defaults.
    pub fn with_limits(mut self, limits: ServeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Stops when `signal` completes: no new connection is accepted (the listener is
    /// closed), idle connections are closed at once, and the server's future completes
    /// once every request in flight has been answered and its connection closed (each
    /// still bounded by the limits).
    pub fn with_graceful_shutdown<G>(self, signal: G) -> Serve<G>
    where
        G: Future<Output = ()> + Send + 'static,
    {
        Serve {
            listener: self.listener,
            router: self.router,
            limits: self.limits,
            signal,
        }
    }

    /// The limits the server runs with.
    pub fn limits(&self) -> ServeLimits {
        self.limits
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl<F> IntoFuture for Serve<F>
where
    F: Future<Output = ()> + Send + 'static,
{
    type Output = ();
    type IntoFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self))
    }
}

async fn run<F>(server: Serve<F>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let Serve {
        listener,
        router,
        limits,
        signal,
    } = server;
    let permits = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    // `true` once shutting down; every connection holds a receiver, so the sender's
    // `closed` is when the last connection has ended.
    let (stop, stopped) = watch::channel(false);
    let mut signal = pin!(signal);
    loop {
        // Not accepting while at the cap: new connections wait in the backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // closed: never happens, the semaphore is ours
            },
            () = &mut signal => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut signal => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Small responses go out at once; failing to set it is harmless.
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(
                    stream,
                    peer,
                    router.clone(),
                    limits,
                    stopped.clone(),
                    permit,
                ));
            }
            // That connection failed before it was accepted: the next one may be fine.
            Err(e) if is_connection_error(&e) => {}
            // Out of descriptors or memory: retrying at once would spin. The waiting
            // connection stays in the backlog; open ones are served and timed out.
            Err(_) => tokio::select! {
                () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                () = &mut signal => break,
            },
        }
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopped);
    stop.closed().await;
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, a limit closes it, or the server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ServeLimits,
    mut stopped: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let watch = Arc::new(Mutex::new(Watch::new(limits, Instant::now())));
    let io = TokioIo::new(WatchedIo {
        stream,
        watch: Arc::clone(&watch),
    });
    let service = ConnectionService {
        router,
        peer,
        watch: Arc::clone(&watch),
        body_read_timeout: limits.body_read_timeout,
    };
    // hyper's own header-read timeout stays off (it needs a timer, and none is set): it
    // also runs while a kept-alive connection waits for its next request, so it would
    // cut idle connections at the header bound. `Watch` keeps the two apart.
    let mut conn = pin!(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
    let mut stop = pin!(stopped.wait_for(|stop| *stop));
    let mut stopping = false;
    let mut alarm = pin!(tokio::time::sleep_until(Instant::now()));
    poll_fn(|cx| {
        if !stopping && stop.as_mut().poll(cx).is_ready() {
            // Shutting down (or the server was dropped).
            stopping = true;
            if lock(&watch).is_idle() {
                return Poll::Ready(());
            }
            conn.as_mut().graceful_shutdown();
        }
        if conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        // The deadline may have moved while hyper ran (bytes read, a request begun or
        // answered, a write blocked): follow it.
        if let Some(deadline) = lock(&watch).deadline() {
            if alarm.deadline() != deadline {
                alarm.as_mut().reset(deadline);
            }
            if alarm.as_mut().poll(cx).is_ready() {
                // Dropping the connection closes the socket.
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
}

fn lock(watch: &Mutex<Watch>) -> MutexGuard<'_, Watch> {
    watch.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a connection is, and so which deadline applies to it.
#[derive(Debug)]
struct Watch {
    limits: ServeLimits,
    phase: Phase,
    /// Since when a write has been waiting for the client to read.
    write_blocked_since: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for the first byte of a request, until `until`. On a new connection
    /// (`first`) the headers' deadline is `until` too; later, it starts with the first
    /// byte.
    Idle { until: Option<Instant>, first: bool },
    /// Reading a request's headers, until `until`.
    Head { until: Option<Instant> },
    /// A request is being served: no deadline for the handler; its body reads carry
    /// their own ([`TimedBody`]).
    Request,
}

impl Watch {
    fn new(limits: ServeLimits, now: Instant) -> Self {
        Self {
            limits,
            phase: Phase::Idle {
                until: now.checked_add(limits.header_read_timeout),
                first: true,
            },
            write_blocked_since: None,
        }
    }

    /// Bytes arrived from the client.
    fn on_read(&mut self, now: Instant) {
        if let Phase::Idle { until, first } = self.phase {
            let until = if first {
                until
            } else {
                now.checked_add(self.limits.header_read_timeout)
            };
            self.phase = Phase::Head { until };
        }
    }

    /// A request's headers are complete, and its handler called.
    fn on_request(&mut self) {
        self.phase = Phase::Request;
    }

    /// The response has been handed to the connection in full (or abandoned).
    fn on_response_done(&mut self, now: Instant) {
        self.phase = Phase::Idle {
            until: now.checked_add(self.limits.idle_timeout),
            first: false,
        };
    }

    /// A write went through (`true`) or has to wait for the client (`false`).
    fn on_write(&mut self, progressed: bool, now: Instant) {
        if progressed {
            self.write_blocked_since = None;
        } else if self.write_blocked_since.is_none() {
            self.write_blocked_since = Some(now);
        }
    }

    fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Idle { .. })
    }

    /// When the connection is to be closed, if nothing happens before.
    fn deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Idle { until, .. } | Phase::Head { until } => until,
            Phase::Request => None,
        };
        let write = self
            .write_blocked_since
            .and_then(|since| since.checked_add(self.limits.write_timeout));
        match (phase, write) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The socket, telling the connection's [`Watch`] about reads and blocked writes.
struct WatchedIo {
    stream: TcpStream,
    watch: Arc<Mutex<Watch>>,
}

impl WatchedIo {
    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        match result {
            Poll::Ready(Ok(n)) if *n > 0 => lock(&self.watch).on_write(true, Instant::now()),
            Poll::Pending => lock(&self.watch).on_write(false, Instant::now()),
            Poll::Ready(_) => {}
        }
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            lock(&this.watch).on_read(Instant::now());
        }
        result
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The router, for one connection: adds the peer address, times body reads, and
/// tells the [`Watch`] when a request begins and its response ends.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    watch: Arc<Mutex<Watch>>,
    body_read_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        lock(&self.watch).on_request();
        let timed_out = Arc::new(AtomicBool::new(false));
        let timeout = self.body_read_timeout;
        let flag = Arc::clone(&timed_out);
        let mut request = request.map(|body| TimedBody::new(body, timeout, flag));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        // A `Router` is always ready: no `poll_ready` needed.
        let mut router = self.router.clone();
        let watch = Arc::clone(&self.watch);
        Box::pin(async move {
            let Ok(mut response) = router.call(request).await;
            if timed_out.load(Ordering::SeqCst) {
                // Whatever the handler made of the failed read, the request was not
                // received in time.
                response = request_timeout();
            }
            Ok(response.map(|body| TrackedBody {
                inner: body,
                watch: Some(watch),
            }))
        })
    }
}

/// `408 Request Timeout`, closing the connection (the rest of the body is not read).
fn request_timeout() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The body read took longer than [`ServeLimits::body_read_timeout`] without progress.
#[derive(Debug)]
struct BodyReadTimeout;

impl fmt::Display for BodyReadTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request body read timed out")
    }
}

impl std::error::Error for BodyReadTimeout {}

/// A request body whose reads fail once one has waited `timeout` with nothing
/// arriving.
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    /// Armed when a read has to wait, disarmed when a frame arrives.
    alarm: Option<Pin<Box<Sleep>>>,
    armed: bool,
    timed_out: Arc<AtomicBool>,
}

impl TimedBody {
    fn new(inner: Incoming, timeout: Duration, timed_out: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            timeout,
            alarm: None,
            armed: false,
            timed_out,
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timed_out.load(Ordering::SeqCst) {
            return Poll::Ready(Some(Err(BodyReadTimeout.into())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if !this.armed {
            let Some(deadline) = Instant::now().checked_add(this.timeout) else {
                return Poll::Pending; // no bound
            };
            this.armed = true;
            match &mut this.alarm {
                Some(alarm) => alarm.as_mut().reset(deadline),
                None => this.alarm = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        let rang = this
            .alarm
            .as_mut()
            .is_some_and(|alarm| alarm.as_mut().poll(cx).is_ready());
        if rang {
            this.timed_out.store(true, Ordering::SeqCst);
            return Poll::Ready(Some(Err(BodyReadTimeout.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that tells the [`Watch`] when the connection is done with it.
struct TrackedBody {
    inner: Body,
    watch: Option<Arc<Mutex<Watch>>>,
}

impl TrackedBody {
    fn done(&mut self) {
        if let Some(watch) = self.watch.take() {
            lock(&watch).on_response_done(Instant::now());
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.done();
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            this.done();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ServeLimits {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(20),
            max_connections: 1,
        }
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn the_deadline_follows_the_phase() {
        let t0 = Instant::now();
        let mut watch = Watch::new(limits(), t0);
        assert_eq!(watch.deadline(), Some(t0 + secs(10)));
        // The first request's headers are due 10 s after the accept, however late its
        // first byte.
        watch.on_read(t0 + secs(5));
        assert_eq!(watch.deadline(), Some(t0 + secs(10)));
        // No bound on the handler.
        watch.on_request();
        assert_eq!(watch.deadline(), None);
        // A blocked write is bounded from when it first blocked.
        watch.on_write(false, t0 + secs(6));
        watch.on_write(false, t0 + secs(7));
        assert_eq!(watch.deadline(), Some(t0 + secs(26)));
        watch.on_write(true, t0 + secs(8));
        assert_eq!(watch.deadline(), None);
        // Idle after the response; a fresh header bound from the next first byte.
        watch.on_response_done(t0 + secs(9));
        assert!(watch.is_idle());
        assert_eq!(watch.deadline(), Some(t0 + secs(69)));
        watch.on_read(t0 + secs(50));
        assert!(!watch.is_idle());
        assert_eq!(watch.deadline(), Some(t0 + secs(60)));
        // More bytes of the same head do not move it.
        watch.on_read(t0 + secs(55));
        assert_eq!(watch.deadline(), Some(t0 + secs(60)));
        // Whichever comes first.
        watch.on_write(false, t0 + secs(30));
        assert_eq!(watch.deadline(), Some(t0 + secs(50)));
    }

    #[test]
    fn durations_too_long_to_add_mean_no_bound() {
        let mut forever = limits();
        forever.header_read_timeout = Duration::MAX;
        forever.write_timeout = Duration::MAX;
        let now = Instant::now();
        let mut watch = Watch::new(forever, now);
        assert_eq!(watch.deadline(), None);
        watch.on_write(false, now);
        assert_eq!(watch.deadline(), None);
    }

    #[test]
    fn accept_errors_of_one_connection_are_told_apart() {
        assert!(is_connection_error(
            &io::ErrorKind::ConnectionAborted.into()
        ));
        // EMFILE and the like pause the loop instead.
        assert!(!is_connection_error(&io::Error::other(
            "too many open files"
        )));
    }
}
