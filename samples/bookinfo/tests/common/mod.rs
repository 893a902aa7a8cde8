//! Test harness: the services in-process on 127.0.0.1:0, recording fake
//! upstreams, a recording HTTP proxy, and a real HTTP client.

#![allow(dead_code)] // each test binary uses a different part

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use weft_bookinfo::BaseUrl;
use weft_bookinfo::details::{self, DetailsConfig};
use weft_bookinfo::productpage::{self, ProductPageConfig};
use weft_bookinfo::proxy::ProxyConfig;
use weft_bookinfo::ratings::{self, RatingsConfig};
use weft_bookinfo::reviews::{self, ReviewsConfig, ReviewsVersion};

/// No single HTTP exchange in these tests may take longer than this.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Bind 127.0.0.1:0 and run `serve` on it in the background.
pub async fn spawn<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(serve(listener));
    addr
}

/// `http://ADDR` as an upstream base URL.
pub fn base(addr: SocketAddr) -> BaseUrl {
    format!("http://{addr}").parse().expect("valid base URL")
}

/// A loopback port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

pub async fn start_details() -> SocketAddr {
    spawn(|l| details::serve(l, DetailsConfig::default())).await
}

pub async fn start_ratings() -> SocketAddr {
    spawn(|l| ratings::serve(l, RatingsConfig::default())).await
}

pub async fn start_reviews(version: ReviewsVersion, ratings: BaseUrl) -> SocketAddr {
    let mut config = ReviewsConfig::new(version);
    config.ratings_url = ratings;
    spawn(|l| reviews::serve(l, config)).await
}

pub async fn start_productpage(details: BaseUrl, reviews: BaseUrl) -> SocketAddr {
    let config = ProductPageConfig {
        details_url: details,
        reviews_url: reviews,
        ..ProductPageConfig::default()
    };
    spawn(|l| productpage::serve(l, config)).await
}

/// The whole application with one reviews version; returns productpage's address.
pub async fn start_bookinfo(version: ReviewsVersion) -> SocketAddr {
    let ratings = start_ratings().await;
    let reviews = start_reviews(version, base(ratings)).await;
    let details = start_details().await;
    start_productpage(base(details), base(reviews)).await
}

/// Serve `handler` on 127.0.0.1:0 (HTTP/1.1 and h2c).
pub async fn serve_fn<H, Fut>(handler: H) -> SocketAddr
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    spawn(|listener| async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
    .await
}

/// What a fake upstream answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// This status and JSON body.
    Json(StatusCode, String),
    /// Never answer (the caller must time out).
    Hold,
}

/// A request a fake upstream or proxy received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

/// A fake upstream that records every request.
#[derive(Clone)]
pub struct Recorder {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    pub async fn start(reply: Reply) -> Recorder {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let addr = serve_fn(move |req: Request<Incoming>| {
            let log = log.clone();
            let reply = reply.clone();
            async move {
                log.lock().unwrap().push(Recorded {
                    method: req.method().clone(),
                    uri: req.uri().clone(),
                    headers: req.headers().clone(),
                });
                match reply {
                    Reply::Json(status, body) => json_response(status, body),
                    Reply::Hold => std::future::pending().await,
                }
            }
        })
        .await;
        Recorder { addr, requests }
    }

    pub fn url(&self) -> BaseUrl {
        base(self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// An HTTP proxy, like a sidecar's outbound listener in local mode: it records
/// each request line (`GET http://reviews:9080/reviews/0`) and forwards the
/// request to the address the URL's `host:port` maps to.
#[derive(Clone)]
pub struct TestProxy {
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl TestProxy {
    pub async fn start(routes: Vec<(&'static str, SocketAddr)>) -> TestProxy {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = lines.clone();
        let routes = Arc::new(routes);
        let addr = serve_fn(move |req: Request<Incoming>| {
            let log = log.clone();
            let routes = routes.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push(format!("{} {}", req.method(), req.uri()));
                let authority = req
                    .uri()
                    .authority()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                match routes.iter().find(|(name, _)| *name == authority) {
                    Some((_, backend)) => forward(*backend, req).await,
                    None => {
                        json_response(StatusCode::BAD_GATEWAY, "{\"error\":\"no route\"}".into())
                    }
                }
            }
        })
        .await;
        TestProxy { addr, lines }
    }

    pub fn config(&self) -> ProxyConfig {
        ProxyConfig::new(&format!("http://{}", self.addr)).expect("valid proxy URL")
    }

    pub fn request_lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

async fn forward(backend: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.expect("request body").to_bytes();
    let stream = TcpStream::connect(backend).await.expect("connect backend");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .expect("forwarded request");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Response::from_parts(parts, Full::new(body))
}

/// A response read in full by the test client.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// How many times `needle` occurs in the body.
    pub fn count(&self, needle: &str) -> usize {
        self.body.matches(needle).count()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Send a request with a real HTTP client, bounded by [`PATIENCE`].
pub async fn request(method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> Page {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    let exchange = async {
        let response = client.request(req).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Page {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    };
    tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("response within the test's patience")
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Page {
    request(Method::GET, url, headers, "").await
}

/// A reviews answer like reviews v1's, for fake reviews upstreams.
pub fn reviews_v1_json() -> String {
    serde_json::json!({
        "id": "0",
        "podname": "reviews-v1",
        "clustername": "null",
        "reviews": [
            { "reviewer": "Reviewer1", "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!" },
            { "reviewer": "Reviewer2", "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare." }
        ]
    })
    .to_string()
}
