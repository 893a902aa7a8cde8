use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// One client connection, HTTP/1.1 or h2c (prior knowledge), reused across requests.
#[derive(Debug)]
pub enum HttpClient {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// A collected response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    /// The body as JSON (what [`crate::EchoServer`] sends).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A response header as text, `""` when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The echo backend's name (`x-backend`), `""` for local replies.
    pub fn backend(&self) -> &str {
        self.header("x-backend")
    }
}

impl HttpClient {
    /// Opens an HTTP/1.1 connection.
    pub async fn h1(addr: SocketAddr) -> anyhow::Result<HttpClient> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(HttpClient::H1(sender))
    }

    /// Opens an h2c connection (HTTP/2 with prior knowledge).
    pub async fn h2c(addr: SocketAddr) -> anyhow::Result<HttpClient> {
        let stream = TcpStream::connect(addr).await?;
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(HttpClient::H2(sender))
    }

    /// Sends a request and returns the response head with its streaming body.
    pub async fn send_streaming(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> anyhow::Result<Response<Incoming>> {
        Ok(match self {
            HttpClient::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            HttpClient::H2(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
        })
    }

    /// Sends a request and collects the response.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        let resp = self.send_streaming(req).await?;
        let (parts, body) = resp.into_parts();
        let collected = body.collect().await?;
        let trailers = collected.trailers().cloned();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: collected.to_bytes(),
            trailers,
        })
    }

    /// `GET http://<host><path>` with extra headers.
    pub async fn get(
        &mut self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        self.send(request(
            "GET",
            host,
            path,
            headers,
            Bytes::new(),
            matches!(self, HttpClient::H2(_)),
        )?)
        .await
    }
}

/// Builds a request; h2 requests carry the host as `:authority`, h1 requests as `Host`.
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    h2: bool,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut b = Request::builder().method(method);
    b = if h2 {
        b.uri(format!("http://{host}{path}"))
            .version(http::Version::HTTP_2)
    } else {
        b.uri(path).header(http::header::HOST, host)
    };
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    Ok(b.body(Full::new(body))?)
}
