//! The outbound HTTP client the services use to call each other.
//!
//! One connection per call, so there is no pool to reason about: the calls go
//! to a sidecar on loopback, and a demo application's latency does not matter.

use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::proxy::ProxyConfig;

/// Bodies larger than this are not what Bookinfo's services return.
const MAX_BODY: usize = 1024 * 1024;

/// An HTTP/1.1 client that honours an optional [`ProxyConfig`].
#[derive(Clone, Debug, Default)]
pub struct HttpClient {
    proxy: Option<ProxyConfig>,
}

/// A response read in full.
#[derive(Debug)]
pub struct UpstreamResponse {
    /// The response status.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
}

/// Why an outbound call produced no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No response within the call's timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The TCP connection to the upstream (or the proxy) failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The `host:port` dialled.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed (reset, malformed response, ...).
    #[error("HTTP exchange with {addr}: {source}")]
    Http {
        /// The `host:port` dialled.
        addr: String,
        /// The protocol error.
        source: hyper::Error,
    },
    /// Reading the response body failed or it was too large.
    #[error("reading the response body from {addr}: {reason}")]
    Body {
        /// The `host:port` dialled.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The URL has no host to call.
    #[error("URL {0} has no host")]
    NoHost(Uri),
}

impl HttpClient {
    /// A client that sends requests through `proxy` when it applies, else
    /// straight to the upstream.
    pub fn new(proxy: Option<ProxyConfig>) -> Self {
        HttpClient { proxy }
    }

    /// `GET url` with `headers` (plus `Host`), reading the whole response
    /// within `timeout` (connect, send, and body together).
    pub async fn get(
        &self,
        url: &Uri,
        headers: HeaderMap,
        timeout: Duration,
    ) -> Result<UpstreamResponse, ClientError> {
        tokio::time::timeout(timeout, self.get_unbounded(url, headers))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    async fn get_unbounded(
        &self,
        url: &Uri,
        headers: HeaderMap,
    ) -> Result<UpstreamResponse, ClientError> {
        let authority = url
            .authority()
            .ok_or_else(|| ClientError::NoHost(url.clone()))?;
        let proxy = self
            .proxy
            .as_ref()
            .filter(|p| p.applies_to(authority.host()));
        // Through a proxy the request line carries the whole URL (absolute
        // form); straight to the upstream it carries only the path.
        let (addr, target) = match proxy {
            Some(proxy) => (proxy.authority().to_string(), url.clone()),
            None => {
                let port = authority.port_u16().unwrap_or(80);
                let path = url.path_and_query().map_or("/", |p| p.as_str());
                let target = path.parse().expect("a path of a valid URI is a valid URI");
                (format!("{}:{port}", authority.host()), target)
            }
        };

        let stream = connect(&addr).await?;
        let http_error = |source| ClientError::Http {
            addr: addr.clone(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_error)?;
        // Dropping the guard (on return or on timeout) closes the connection,
        // so an upstream that holds the response sees the caller give up.
        let _connection = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));

        let mut request = Request::get(target)
            .body(Empty::<Bytes>::new())
            .expect("a GET with a valid URI is a valid request");
        *request.headers_mut() = headers;
        let host = HeaderValue::from_str(authority.as_str())
            .expect("an authority is a valid header value");
        request.headers_mut().insert(HOST, host);

        let response = sender.send_request(request).await.map_err(http_error)?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| ClientError::Body {
                addr: addr.clone(),
                reason: e.to_string(),
            })?
            .to_bytes();
        Ok(UpstreamResponse { status, body })
    }
}

async fn connect(addr: &str) -> Result<TcpStream, ClientError> {
    // `[::1]:80` is how an authority writes an IPv6 literal; the resolver
    // wants it bare.
    let (host, port) = addr.rsplit_once(':').expect("addr is host:port");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().expect("addr has a numeric port");
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
