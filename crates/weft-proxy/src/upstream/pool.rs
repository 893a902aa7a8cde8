//! Upstream connections per endpoint: HTTP/1.1 keep-alive pooling and one multiplexed
//! HTTP/2 connection.
//!
//! An HTTP/1.1 connection goes back to the idle list only when its response body ended
//! cleanly (see [`Returner`]); a reused connection that turns out closed before the request
//! was written is retried once on a fresh connection (hyper hands the request back).

use crate::http::body::RequestBody;
use crate::stats::ClusterStats;
use crate::upstream::Endpoint;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::{Arc, Mutex};
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
    Reset(hyper::Error),
}

impl UpstreamError {
    /// Whether the endpoint was never reached (Envoy's `UF`).
    pub fn is_connect_failure(&self) -> bool {
        !matches!(self, UpstreamError::Reset(_))
    }

    /// Envoy's `reset reason` wording for local replies.
    pub fn reset_reason(&self) -> &'static str {
        match self {
            UpstreamError::ConnectTimeout => "connection timeout",
            UpstreamError::Connect(_) | UpstreamError::Handshake(_) => "connection failure",
            UpstreamError::Reset(_) => "connection termination",
        }
    }
}

/// The connections of one endpoint.
#[derive(Debug, Default)]
pub struct Pool {
    idle_h1: Mutex<Vec<http1::SendRequest<RequestBody>>>,
    h2: tokio::sync::Mutex<Option<http2::SendRequest<RequestBody>>>,
}

/// Gives an HTTP/1.1 connection back to its pool once its response has ended.
#[derive(Debug)]
pub struct Returner {
    endpoint: Arc<Endpoint>,
    sender: http1::SendRequest<RequestBody>,
}

impl Returner {
    /// Puts the connection back on the idle list.
    pub fn give_back(self) {
        if self.sender.is_closed() {
            return;
        }
        let mut idle = self
            .endpoint
            .pool
            .idle_h1
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_H1 {
            idle.push(self.sender);
        }
    }
}

/// How to reach an endpoint.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    pub http2: bool,
    pub connect_timeout: Duration,
}

async fn connect(
    ep: &Endpoint,
    opts: ConnectOptions,
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

/// Tracks an open upstream connection in `cx_active` for as long as its task runs.
fn spawn_connection<F>(conn: F, stats: &ClusterStats)
where
    F: std::future::Future + Send + 'static,
{
    let active = stats.cx_active.clone();
    active.inc();
    tokio::spawn(async move {
        let _ = conn.await;
        active.dec();
    });
}

impl Endpoint {
    /// Sends `req` to this endpoint on a pooled or new connection and returns the response
    /// head. For HTTP/1.1 the [`Returner`] must be used once the response body has ended.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<RequestBody>,
        opts: ConnectOptions,
        stats: &ClusterStats,
    ) -> Result<(Response<Incoming>, Option<Returner>), UpstreamError> {
        if opts.http2 {
            return self.send_h2(req, opts, stats).await.map(|r| (r, None));
        }
        loop {
            let idle = self
                .pool
                .idle_h1
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            let Some(mut sender) = idle else { break };
            if sender.is_closed() {
                continue;
            }
            // Returned at end of body, it becomes ready as soon as its task notices.
            match tokio::time::timeout(opts.connect_timeout, sender.ready()).await {
                Ok(Ok(())) => {}
                _ => continue,
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    return Ok((
                        resp,
                        Some(Returner {
                            endpoint: self.clone(),
                            sender,
                        }),
                    ));
                }
                Err(mut e) => match e.take_message() {
                    // Never written: safe to try another connection.
                    Some(back) => req = back,
                    None => return Err(UpstreamError::Reset(e.into_error())),
                },
            }
        }
        let stream = connect(self, opts, stats).await?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(UpstreamError::Handshake)?;
        spawn_connection(conn, stats);
        let resp = sender
            .send_request(req)
            .await
            .map_err(UpstreamError::Reset)?;
        Ok((
            resp,
            Some(Returner {
                endpoint: self.clone(),
                sender,
            }),
        ))
    }

    async fn send_h2(
        self: &Arc<Self>,
        req: Request<RequestBody>,
        opts: ConnectOptions,
        stats: &ClusterStats,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut sender = {
            // Held across the connect so concurrent first requests share one connection.
            let mut slot = self.pool.h2.lock().await;
            match slot.as_ref() {
                Some(s) if !s.is_closed() => s.clone(),
                _ => {
                    let stream = connect(self, opts, stats).await?;
                    let (sender, conn) =
                        http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                            .await
                            .map_err(UpstreamError::Handshake)?;
                    spawn_connection(conn, stats);
                    *slot = Some(sender.clone());
                    sender
                }
            }
        };
        sender.ready().await.map_err(UpstreamError::Reset)?;
        sender.send_request(req).await.map_err(UpstreamError::Reset)
    }
}
