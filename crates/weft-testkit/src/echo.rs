use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

type Body = BoxBody<Bytes, Infallible>;

/// An HTTP backend on `127.0.0.1:0` (HTTP/1.1 and h2c) that reports who it is.
///
/// Every response carries `x-backend: <name>`. Paths:
/// - anything: `200` with JSON `{name, method, path, version, headers, body_len}`;
/// - `/status/<code>`: the same JSON with that status;
/// - `/grpc-status/<code>`: the same JSON with `grpc-status: <code>` in the headers;
/// - after [`EchoServer::fail_next`]`(n, status)`: the next `n` requests get `status`;
/// - `/delay/<ms>`: waits before answering;
/// - `/echo-body`: streams the request body back as it arrives;
/// - `/hold`: sends `first\n`, waits for [`EchoServer::release`], then sends `second\n`;
/// - any request with `Upgrade`: `101`, then the connection echoes raw bytes;
/// - `/trailers`: sends `payload` then trailers `grpc-status: 0`, `x-trailer-from: <name>`.
#[derive(Debug, Clone)]
pub struct EchoServer {
    pub name: String,
    pub addr: SocketAddr,
    release: Arc<Notify>,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    /// Answer every request with this status (a failing backend).
    fixed_status: Option<StatusCode>,
    /// The next this-many requests get `fail_status` (see [`EchoServer::fail_next`]).
    fail_next: Arc<AtomicUsize>,
    fail_status: Arc<std::sync::atomic::AtomicU16>,
    /// The JSON description of the last request served.
    last: Arc<std::sync::Mutex<Option<serde_json::Value>>>,
}

impl EchoServer {
    /// Starts a backend named `name`.
    pub async fn start(name: &str) -> EchoServer {
        EchoServer::start_inner(name, None).await
    }

    /// Starts a backend that answers every request with `status` (still echoing JSON).
    pub async fn start_failing(name: &str, status: u16) -> EchoServer {
        EchoServer::start_inner(name, StatusCode::from_u16(status).ok()).await
    }

    async fn start_inner(name: &str, fixed_status: Option<StatusCode>) -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let server = EchoServer {
            name: name.to_owned(),
            addr: listener.local_addr().expect("local addr"),
            release: Arc::new(Notify::new()),
            requests: Arc::new(AtomicUsize::new(0)),
            connections: Arc::new(AtomicUsize::new(0)),
            fixed_status,
            fail_next: Arc::new(AtomicUsize::new(0)),
            fail_status: Arc::new(std::sync::atomic::AtomicU16::new(503)),
            last: Arc::default(),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                s.connections.fetch_add(1, Ordering::Relaxed);
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { Ok::<_, Infallible>(s.handle(req).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        server
    }

    /// Lets a `/hold` response finish.
    pub fn release(&self) {
        self.release.notify_one();
    }

    /// Answers the next `n` requests with `status` (then behaves normally again).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.fail_status.store(status, Ordering::Relaxed);
        self.fail_next.store(n, Ordering::Relaxed);
    }

    /// What the last request looked like (the JSON body it was answered with).
    pub fn last_request(&self) -> Option<serde_json::Value> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests served so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    async fn handle(&self, mut req: Request<Incoming>) -> Response<Body> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(proto) = req.headers().get(http::header::UPGRADE).cloned() {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
            let mut resp = self.response(
                StatusCode::SWITCHING_PROTOCOLS,
                Full::new(Bytes::new()).boxed(),
            );
            resp.headers_mut().insert(http::header::UPGRADE, proto);
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("upgrade"),
            );
            return resp;
        }
        let path = req.uri().path().to_owned();
        if path == "/echo-body" {
            return self.response(
                StatusCode::OK,
                req.into_body()
                    .map_err(|_| unreachable_infallible())
                    .boxed(),
            );
        }
        if path == "/hold" {
            let (tx, rx) = mpsc::channel(2);
            let release = self.release.clone();
            tokio::spawn(async move {
                let _ = tx.send(Frame::data(Bytes::from_static(b"first\n"))).await;
                release.notified().await;
                let _ = tx.send(Frame::data(Bytes::from_static(b"second\n"))).await;
            });
            return self.response(StatusCode::OK, ChannelBody(rx).boxed());
        }
        if path == "/trailers" {
            let (tx, rx) = mpsc::channel(2);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            if let Ok(v) = http::HeaderValue::from_str(&self.name) {
                trailers.insert("x-trailer-from", v);
            }
            let _ = tx.try_send(Frame::data(Bytes::from_static(b"payload")));
            let _ = tx.try_send(Frame::trailers(trailers));
            return self.response(StatusCode::OK, ChannelBody(rx).boxed());
        }
        if let Some(ms) = path.strip_prefix("/delay/").and_then(|m| m.parse().ok()) {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        let failing = self
            .fail_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        let status = path
            .strip_prefix("/status/")
            .and_then(|c| c.parse().ok())
            .and_then(|c| StatusCode::from_u16(c).ok())
            .or(self.fixed_status)
            .or_else(|| {
                failing
                    .then(|| StatusCode::from_u16(self.fail_status.load(Ordering::Relaxed)).ok())
                    .flatten()
            })
            .unwrap_or(StatusCode::OK);
        let grpc_status = path
            .strip_prefix("/grpc-status/")
            .and_then(|c| http::HeaderValue::from_str(c).ok());
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in req.headers() {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            headers
                .entry(k.as_str().to_owned())
                .and_modify(|e| {
                    e.push(',');
                    e.push_str(&v);
                })
                .or_insert(v);
        }
        if let Some(a) = req.uri().authority() {
            headers.insert(":authority".into(), a.to_string());
        }
        let info = serde_json::json!({
            "name": self.name,
            "method": req.method().as_str(),
            "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"),
            "version": format!("{:?}", req.version()),
            "headers": headers,
        });
        let (_, body) = req.into_parts();
        let body_len = body
            .collect()
            .await
            .map(|b| b.to_bytes().len())
            .unwrap_or(0);
        let mut info = info;
        info["body_len"] = body_len.into();
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.clone());
        let mut resp = self.response(status, Full::new(Bytes::from(info.to_string())).boxed());
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        if let Some(g) = grpc_status {
            resp.headers_mut().insert("grpc-status", g);
        }
        resp
    }

    fn response(&self, status: StatusCode, body: Body) -> Response<Body> {
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        if let Ok(v) = http::HeaderValue::from_str(&self.name) {
            resp.headers_mut().insert("x-backend", v);
        }
        resp
    }
}

fn unreachable_infallible() -> Infallible {
    unreachable!("echo bodies only fail when the client goes away")
}

/// A body fed frame by frame from a channel (so tests control when bytes flow).
#[derive(Debug)]
pub struct ChannelBody(mpsc::Receiver<Frame<Bytes>>);

/// A streaming body and the sender that feeds it (data and trailers frames).
pub fn channel_body() -> (mpsc::Sender<Frame<Bytes>>, ChannelBody) {
    let (tx, rx) = mpsc::channel(8);
    (tx, ChannelBody(rx))
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut().0.poll_recv(cx).map(|f| f.map(Ok))
    }
}
