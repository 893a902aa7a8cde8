//! Upstream connections per endpoint: HTTP/1.1 keep-alive pooling and one multiplexed
//! HTTP/2 connection.
//!
//! HTTP/1.1 runs inline in the requesting task ([`super::h1`]): a connection goes back to
//! the idle list only when its response body ended cleanly and the request was written
//! whole. A pooled connection the upstream closed while idle is noticed at checkout (from
//! tokio's cached readiness), and a request whose reused connection dies before any
//! response byte is sent again on a fresh one when no body frame was taken yet. HTTP/1.1
//! borrows the caller's request head (it is only encoded), so a retry needs no copy of it.
//! HTTP/2 and upgrades go through hyper's client, its connection in a task of its own, and
//! take an owned request.

use crate::http::body::{BoxError, RequestBody};
use crate::stats::ClusterStats;
use crate::upstream::Endpoint;
use crate::upstream::breaker::{Breaker, Slot};
use crate::upstream::h1::{self, Conn, H1Body, H1Error, Home};
use http::request::Parts;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// Idle HTTP/1.1 connections kept per endpoint; more are closed when returned.
const MAX_IDLE_H1: usize = 128;

/// Why an upstream exchange failed, in Envoy's terms.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TCP connect did not finish within the cluster's `connect_timeout` (`UF`).
    #[error("connection timeout")]
    ConnectTimeout,
    /// The TCP connect failed (`UF`).
    #[error("connection failure: {0}")]
    Connect(std::io::Error),
    /// The HTTP handshake failed (`UF`).
    #[error("connection failure: {0}")]
    Handshake(hyper::Error),
    /// The connection closed or reset before response headers (`UC`/`UR`).
    #[error("connection termination: {0}")]
    Reset(BoxError),
    /// The upstream's response head was not valid HTTP/1.1 or broke a limit (`UPE`).
    #[error("protocol error: {0}")]
    Protocol(H1Error),
    /// A circuit breaker is open (`max_connections` + `max_pending_requests`): `UO`.
    #[error("overflow")]
    Overflow,
}

impl UpstreamError {
    /// Whether the endpoint was never reached (Envoy's `UF`).
    pub fn is_connect_failure(&self) -> bool {
        !matches!(
            self,
            UpstreamError::Reset(_) | UpstreamError::Overflow | UpstreamError::Protocol(_)
        )
    }

    /// Whether a circuit breaker refused the request (never retried, as in Envoy).
    pub fn is_overflow(&self) -> bool {
        matches!(self, UpstreamError::Overflow)
    }

    /// Whether the exchange failed because the downstream request body did (a malformed
    /// chunked body, a client gone mid-body): the client's fault, not the endpoint's, so
    /// it is answered 400 and neither retried nor counted against the endpoint (else a
    /// client could get healthy endpoints ejected by sending broken bodies).
    pub fn is_downstream_body_error(&self) -> bool {
        matches!(self, UpstreamError::Reset(e)
            if matches!(e.downcast_ref::<H1Error>(), Some(H1Error::Body(_))))
    }

    /// Envoy's `reset reason` wording for local replies (a refused connect is the remote
    /// end's doing; other connect errors are local).
    pub fn reset_reason(&self) -> &'static str {
        use std::io::ErrorKind::{ConnectionRefused, ConnectionReset};
        match self {
            UpstreamError::ConnectTimeout => "connection timeout",
            UpstreamError::Connect(e)
                if matches!(e.kind(), ConnectionRefused | ConnectionReset) =>
            {
                "remote connection failure"
            }
            UpstreamError::Connect(_) => "local connection failure",
            UpstreamError::Handshake(_) => "remote connection failure",
            UpstreamError::Reset(_) => "connection termination",
            UpstreamError::Protocol(_) => "protocol error",
            UpstreamError::Overflow => "overflow",
        }
    }

    /// Envoy's `%UPSTREAM_TRANSPORT_FAILURE_REASON%` for a failed connect: the socket
    /// error, spaces as underscores (`delayed_connect_error:_Connection_refused`).
    pub fn transport_failure(&self) -> Option<String> {
        let UpstreamError::Connect(e) = self else {
            return None;
        };
        let text = std::io::Error::from_raw_os_error(e.raw_os_error()?).to_string();
        // std appends " (os error N)"; Envoy prints strerror alone.
        let text = text.split(" (os error").next().unwrap_or(&text);
        Some(format!("delayed_connect_error:_{}", text.replace(' ', "_")))
    }

    /// Envoy's `%RESPONSE_CODE_DETAILS%` for this failure.
    pub fn details(&self) -> &'static str {
        if let UpstreamError::Connect(e) = self
            && e.kind() == std::io::ErrorKind::ConnectionRefused
        {
            // Envoy appends the transport failure to the reset reason.
            return "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}";
        }
        match self.reset_reason() {
            "connection timeout" => "upstream_reset_before_response_started{connection_timeout}",
            "remote connection failure" => {
                "upstream_reset_before_response_started{remote_connection_failure}"
            }
            "local connection failure" => {
                "upstream_reset_before_response_started{local_connection_failure}"
            }
            "overflow" => "upstream_reset_before_response_started{overflow}",
            "protocol error" => "upstream_reset_before_response_started{protocol_error}",
            _ => "upstream_reset_before_response_started{connection_termination}",
        }
    }
}

/// A failed send: the error, and the request body when the request was never written (the
/// head stays with the caller, or is a copy of the caller's).
#[derive(Debug)]
pub struct SendError {
    pub error: UpstreamError,
    pub body: Option<RequestBody>,
}

impl SendError {
    fn unsent(error: UpstreamError, body: RequestBody) -> SendError {
        SendError {
            error,
            body: Some(body),
        }
    }

    fn lost(error: UpstreamError) -> SendError {
        SendError { error, body: None }
    }
}

/// The connections of one endpoint.
#[derive(Debug, Default)]
pub struct Pool {
    /// Idle HTTP/1.1 connections and when each became idle.
    idle_h1: Mutex<Vec<(Box<Conn>, std::time::Instant)>>,
    /// The shared HTTP/2 connection and the streams it has carried.
    h2: tokio::sync::Mutex<Option<(http2::SendRequest<RequestBody>, u32)>>,
}

impl Pool {
    fn pop_idle_h1(&self) -> Option<(Box<Conn>, std::time::Instant)> {
        self.idle_h1.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Keeps `conn` for reuse (closes it when [`MAX_IDLE_H1`] are idle already).
    pub(super) fn put_idle_h1(&self, conn: Box<Conn>) {
        let mut idle = self.idle_h1.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_H1 {
            idle.push((conn, std::time::Instant::now()));
        }
    }

    fn has_idle_h1(&self) -> bool {
        !self
            .idle_h1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Closes idle HTTP/1.1 connections that have been idle for `timeout` or longer.
    pub fn expire_idle(&self, timeout: Duration) {
        self.idle_h1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain_mut(|(c, since)| since.elapsed() < timeout && c.idle_usable());
    }
}

/// How to reach an endpoint.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions<'a> {
    pub http2: bool,
    pub connect_timeout: Duration,
    /// The cluster's circuit breaker (connections and pending requests).
    pub breaker: &'a Arc<Breaker>,
    pub max_requests_per_connection: Option<u32>,
    /// The cluster's `common_http_protocol_options.idle_timeout` for pooled connections.
    pub idle_timeout: Option<Duration>,
}

async fn connect(
    ep: &Endpoint,
    opts: ConnectOptions<'_>,
    stats: &ClusterStats,
) -> Result<TcpStream, UpstreamError> {
    stats.cx_total.inc();
    let stream = match tokio::time::timeout(opts.connect_timeout, TcpStream::connect(ep.addr)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            stats.cx_connect_fail.inc();
            return Err(UpstreamError::Connect(e));
        }
        Err(_) => {
            stats.cx_connect_fail.inc();
            return Err(UpstreamError::ConnectTimeout);
        }
    };
    // Latency matters more than packet count for proxied request/response traffic.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Tracks an open upstream connection in `cx_active` (and its circuit-breaker slot) for as
/// long as its task runs.
fn spawn_connection<F>(conn: F, stats: &ClusterStats, slot: Slot)
where
    F: std::future::Future + Send + 'static,
{
    let active = stats.cx_active.clone();
    active.inc();
    tokio::spawn(async move {
        let _ = conn.await;
        active.dec();
        drop(slot);
    });
}

impl Endpoint {
    /// Sends `req` to this endpoint (HTTP/2 when `opts.http2`, else HTTP/1.1) and returns the
    /// response head. When the request was never written, its body comes back with the
    /// error. For callers that keep no head of their own (mirrors); see [`Endpoint::send_h1`].
    pub async fn send(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        opts: ConnectOptions<'_>,
        stats: &ClusterStats,
    ) -> Result<Response<UpstreamBody>, SendError> {
        if opts.http2 {
            return self
                .send_h2(req, opts, stats)
                .await
                .map(|r| r.map(UpstreamBody::Hyper));
        }
        let (mut head, body) = req.into_parts();
        self.send_h1(&mut head, body, true, opts, stats).await
    }

    /// Sends a request over HTTP/1.1 on a pooled or new connection and returns the response
    /// head; the connection returns to the pool by itself when the body has ended cleanly.
    /// `head` is only encoded: it stays with the caller for a retry (`lend_headers`: none
    /// can follow, so its header map may be emptied and reused for the response's). When the
    /// request was never written (the connection could not be made), the body comes back
    /// with the error so a retry can send it elsewhere.
    pub async fn send_h1(
        self: &Arc<Self>,
        head: &mut Parts,
        mut body: RequestBody,
        lend_headers: bool,
        opts: ConnectOptions<'_>,
        stats: &ClusterStats,
    ) -> Result<Response<UpstreamBody>, SendError> {
        // Set while this request waits for a connection (`max_pending_requests`).
        let mut pending = None;
        let slot = loop {
            if let Some((mut conn, since)) = self.pool.pop_idle_h1() {
                // Past the cluster's idle_timeout a pooled connection is closed, not reused;
                // so is one the upstream closed while it sat idle.
                // (Compared as instants: an addition is cheaper than `elapsed`'s subtraction.)
                let expired = opts.idle_timeout.is_some_and(|t| {
                    since
                        .checked_add(t)
                        .is_some_and(|end| std::time::Instant::now() >= end)
                });
                if expired || !conn.idle_usable() {
                    continue;
                }
                match h1::exchange(conn, head, body, lend_headers, self.home(opts), true).await {
                    Ok(resp) => return Ok(resp.map(UpstreamBody::H1)),
                    // It died before answering and nothing of the body was taken: safe to
                    // send on another connection.
                    Err(h1::Failed {
                        body: Some(back), ..
                    }) => {
                        body = back;
                        continue;
                    }
                    Err(f) => return Err(SendError::lost(f.error.into())),
                }
            }
            if let Some(slot) = opts.breaker.connection() {
                break slot;
            }
            stats.cx_overflow.inc();
            if pending.is_none() {
                match opts.breaker.pending() {
                    Some(p) => pending = Some(p),
                    None => return Err(SendError::unsent(UpstreamError::Overflow, body)),
                }
            }
            // Registered before looking again, so a connection freed meanwhile still wakes
            // us; requests that find a connection never register (a lock each way).
            let freed = opts.breaker.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.pool.has_idle_h1() {
                continue;
            }
            if let Some(slot) = opts.breaker.connection() {
                break slot;
            }
            freed.await;
        };
        drop(pending);
        // Boxed: connecting is the rare case, and its state would otherwise enlarge every
        // request's future.
        Box::pin(self.send_on_new_h1(head, body, lend_headers, opts, stats, slot)).await
    }

    fn home(self: &Arc<Self>, opts: ConnectOptions<'_>) -> Home {
        Home {
            endpoint: self.clone(),
            max_requests: opts.max_requests_per_connection,
        }
    }

    /// Opens a new HTTP/1.1 connection (its circuit-breaker `slot` taken) and sends the
    /// request.
    async fn send_on_new_h1(
        self: &Arc<Self>,
        head: &mut Parts,
        body: RequestBody,
        lend_headers: bool,
        opts: ConnectOptions<'_>,
        stats: &ClusterStats,
        slot: Slot,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let stream = match connect(self, opts, stats).await {
            Ok(s) => s,
            Err(e) => return Err(SendError::unsent(e, body)),
        };
        let conn = Conn::new(stream, slot, &stats.cx_active);
        match h1::exchange(conn, head, body, lend_headers, self.home(opts), false).await {
            Ok(resp) => Ok(resp.map(UpstreamBody::H1)),
            Err(f) => Err(SendError::lost(f.error.into())),
        }
    }

    /// Sends an HTTP/1.1 `Upgrade` request on a fresh connection of its own (an upgraded
    /// connection becomes a tunnel and never returns to the pool).
    pub async fn send_upgrade(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        opts: ConnectOptions<'_>,
        stats: &ClusterStats,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let Some(slot) = opts.breaker.connection() else {
            stats.cx_overflow.inc();
            return Err(UpstreamError::Overflow);
        };
        // Boxed: the caller's future embeds this one, and upgrades are rare.
        Box::pin(async move {
            let stream = connect(self, opts, stats).await?;
            let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(UpstreamError::Handshake)?;
            spawn_connection(conn.with_upgrades(), stats, slot);
            sender
                .send_request(req)
                .await
                .map_err(|e| UpstreamError::Reset(Box::new(e)))
        })
        .await
    }

    async fn send_h2(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        opts: ConnectOptions<'_>,
        stats: &ClusterStats,
    ) -> Result<Response<Incoming>, SendError> {
        let mut sender = {
            // Held across the connect so concurrent first requests share one connection.
            let mut guard = self.pool.h2.lock().await;
            let reusable = guard.as_ref().is_some_and(|(s, _)| !s.is_closed());
            if !reusable {
                let Some(slot) = opts.breaker.connection() else {
                    stats.cx_overflow.inc();
                    return Err(SendError::unsent(UpstreamError::Overflow, req.into_body()));
                };
                // Boxed for the same reason as `send_on_new_h1`.
                let connected = Box::pin(async {
                    let stream = connect(self, opts, stats).await?;
                    http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                        .await
                        .map_err(UpstreamError::Handshake)
                })
                .await;
                let (sender, conn) = match connected {
                    Ok(h) => h,
                    Err(e) => return Err(SendError::unsent(e, req.into_body())),
                };
                spawn_connection(conn, stats, slot);
                *guard = Some((sender, 0));
            }
            let Some((sender, streams)) = guard.as_mut() else {
                return Err(SendError::unsent(UpstreamError::Overflow, req.into_body()));
            };
            *streams += 1;
            let sender = sender.clone();
            // Past max_requests_per_connection the next request opens a new connection;
            // this one drains its streams and closes when its last sender is gone.
            if opts
                .max_requests_per_connection
                .is_some_and(|m| *streams >= m)
            {
                *guard = None;
            }
            sender
        };
        if let Err(e) = sender.ready().await {
            return Err(SendError::unsent(
                UpstreamError::Reset(Box::new(e)),
                req.into_body(),
            ));
        }
        sender
            .send_request(req)
            .await
            .map_err(|e| SendError::lost(UpstreamError::Reset(Box::new(e))))
    }
}

impl From<H1Error> for UpstreamError {
    fn from(e: H1Error) -> UpstreamError {
        match e {
            H1Error::Protocol(_) => UpstreamError::Protocol(e),
            e => UpstreamError::Reset(Box::new(e)),
        }
    }
}

/// A response body from upstream: hyper's (HTTP/2, upgrades) or an inline HTTP/1.1 one.
/// Errors mid-body end the downstream response the same way for both.
#[derive(Debug)]
pub enum UpstreamBody {
    Hyper(Incoming),
    H1(H1Body),
}

impl Body for UpstreamBody {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Hyper(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|e| Box::new(e) as BoxError))),
            UpstreamBody::H1(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Hyper(b) => b.is_end_stream(),
            UpstreamBody::H1(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Hyper(b) => b.size_hint(),
            UpstreamBody::H1(b) => b.size_hint(),
        }
    }
}

impl UpstreamBody {
    /// Whether the rest of the body has already arrived (polling it never waits).
    pub fn arrived_whole(&self) -> bool {
        match self {
            UpstreamBody::Hyper(b) => b.is_end_stream(),
            UpstreamBody::H1(b) => b.arrived_whole(),
        }
    }

    /// Our end of the upstream connection (HTTP/1.1; hyper's HTTP/2 client does not say).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            UpstreamBody::Hyper(_) => None,
            UpstreamBody::H1(b) => b.local_addr(),
        }
    }
}
