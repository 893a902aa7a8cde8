//! The inline HTTP/1.1 upstream client: response framing, connection reuse and its limits,
//! against raw upstreams whose every byte the test chooses.

use crate::{any_host, bootstrap, http_listener, start, static_cluster};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weft_proxy::ProxyHandle;
use weft_testkit::{EchoServer, HttpClient, request};

/// What a [`RawUpstream`] does after writing its answer to a request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Waits for the next request on the same connection.
    KeepOpen,
    /// Closes the connection (without having said so in the response).
    Close,
}

/// A raw HTTP/1.1 upstream: answers each request head with the bytes `answer` returns for
/// it (given the request head and how many requests the connection carried before), and
/// counts accepted connections.
pub(crate) struct RawUpstream {
    pub(crate) addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
}

pub(crate) type Answer = fn(&str, usize) -> (Vec<u8>, After);

impl RawUpstream {
    pub(crate) async fn start(answer: Answer) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepts = Arc::new(AtomicUsize::new(0));
        let count = accepts.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(s, answer));
            }
        });
        RawUpstream { addr, accepts }
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

async fn serve(mut s: TcpStream, answer: Answer) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut served = 0;
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
        buf.drain(..end + 4);
        let (bytes, after) = answer(&head, served);
        served += 1;
        if s.write_all(&bytes).await.is_err() {
            return;
        }
        if after == After::Close {
            let _ = s.shutdown().await;
            return;
        }
    }
}

pub(crate) fn path_of(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("/")
}

async fn proxy_to(addr: SocketAddr) -> ProxyHandle {
    let routes =
        any_host(json!([{ "match": {"prefix": "/"}, "route": {"cluster": "c", "timeout": "5s"} }]));
    start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![static_cluster("c", &[addr])],
    ))
    .await
}

async fn h1(proxy: &ProxyHandle) -> HttpClient {
    HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect")
}

fn framing_answers(head: &str, _: usize) -> (Vec<u8>, After) {
    let keep = After::KeepOpen;
    match path_of(head) {
        "/chunked" => (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
              5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-checksum: abc\r\nx-more: 1\r\n\r\n"
                .to_vec(),
            keep,
        ),
        "/until-close" => (
            b"HTTP/1.1 200 OK\r\nx-framing: none\r\n\r\nread me until the end".to_vec(),
            After::Close,
        ),
        "/head" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n".to_vec(),
            keep,
        ),
        "/204" => (
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n".to_vec(),
            keep,
        ),
        "/304" => (
            b"HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n".to_vec(),
            keep,
        ),
        "/continue" => (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
              HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal"
                .to_vec(),
            keep,
        ),
        // Envoy's limit for a response head is 80 KiB: ~71 KB pass, ~91 KB do not.
        "/big-head" | "/huge-head" => {
            let lines = if path_of(head) == "/big-head" { 70 } else { 90 };
            let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..lines {
                r.extend_from_slice(format!("x-filler-{i}: {}\r\n", "v".repeat(1000)).as_bytes());
            }
            r.extend_from_slice(b"content-length: 0\r\n\r\n");
            (r, keep)
        }
        // Runs of spaces in the status line, which Envoy reads as one.
        "/spaced-status" => (
            b"HTTP/1.1  200  OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            keep,
        ),
        _ => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            keep,
        ),
    }
}

#[tokio::test]
async fn response_framings_arrive_intact() {
    let up = RawUpstream::start(framing_answers).await;
    let proxy = proxy_to(up.addr).await;
    // Trailers need a downstream that carries them: h2c.
    let mut c = HttpClient::h2c(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("h2c");
    let r = c.get("h", "/chunked", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "hello, world")
    );
    let trailers = r.trailers.expect("trailers");
    assert_eq!(trailers.get("x-checksum").expect("x-checksum"), "abc");
    assert_eq!(trailers.get("x-more").expect("x-more"), "1");

    let mut c = h1(&proxy).await;
    let r = c.get("h", "/until-close", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "read me until the end")
    );
    let r = c
        .send(request("HEAD", "h", "/head", &[], Bytes::new(), false).expect("req"))
        .await
        .expect("reply");
    assert_eq!((r.status.as_u16(), r.body.len()), (200, 0));
    assert_eq!(r.header("content-length"), "1234");
    for (path, status) in [("/204", 204), ("/304", 304)] {
        let r = c.get("h", path, &[]).await.expect("reply");
        assert_eq!((r.status.as_u16(), r.body.len()), (status, 0), "{path}");
    }
    let r = c.get("h", "/continue", &[]).await.expect("reply");
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "final"));
    // Everything above but the read-until-close response reused connections.
    let r = c.get("h", "/", &[]).await.expect("reply");
    assert_eq!(r.text(), "ok");
    assert_eq!(
        up.accepts(),
        2,
        "one connection closed by its response, one reused"
    );

    let r = c.get("h", "/spaced-status", &[]).await.expect("reply");
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok"));
    let r = c.get("h", "/big-head", &[]).await.expect("reply");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-filler-69").len(), 1000);
    // A response head past Envoy's 80 KiB limit is an upstream protocol error.
    let r = c.get("h", "/huge-head", &[]).await.expect("reply");
    assert_eq!(r.status, 502);
    assert_eq!(
        r.text(),
        "upstream connect error or disconnect/reset before headers. reset reason: protocol error"
    );
}

/// Answers with hop-by-hop lines of its own and the request head it saw as the body: the
/// first answer's `Connection` names another header, the second's only says `keep-alive`.
fn hop_by_hop_answers(head: &str, served: usize) -> (Vec<u8>, After) {
    let connection = if served == 0 {
        "keep-alive, X-Up-Secret"
    } else {
        "keep-alive"
    };
    let answer = format!(
        "HTTP/1.1 200 OK\r\nConnection: {connection}\r\nKeep-Alive: timeout=5\r\n\
         X-Up-Secret: s\r\nX-Up-Kept: k\r\ncontent-length: {}\r\n\r\n{head}",
        head.len()
    );
    (answer.into_bytes(), After::KeepOpen)
}

/// Hop-by-hop lines go no further than their hop, in both directions, and so do the
/// headers a `Connection` line names; a `Connection` that only says `keep-alive` strips
/// nothing else. (The parsers leave such lines out of the message at once.)
#[tokio::test]
async fn hop_by_hop_lines_and_the_headers_they_name_stop_at_the_proxy() {
    let up = RawUpstream::start(hop_by_hop_answers).await;
    let proxy = proxy_to(up.addr).await;
    let mut c = h1(&proxy).await;
    let asks = [
        [
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
        ],
        [("connection", "keep-alive"), ("keep-alive", "timeout=7")],
    ];
    for (i, ask) in asks.iter().enumerate() {
        let mut fields = ask.to_vec();
        fields.extend([("x-secret", "1"), ("x-kept", "1")]);
        let r = c.get("h", "/", &fields).await.expect("reply");
        assert_eq!(r.status.as_u16(), 200);
        let seen = r.text().to_ascii_lowercase();
        assert!(!seen.contains("\r\nconnection:"), "request {i}: {seen}");
        assert!(!seen.contains("\r\nkeep-alive:"), "request {i}: {seen}");
        assert!(seen.contains("\r\nx-kept: 1\r\n"), "request {i}: {seen}");
        assert_eq!(
            seen.contains("\r\nx-secret:"),
            i == 1,
            "request {i}: {seen}"
        );
        assert_eq!(r.header("x-up-kept"), "k");
        assert_eq!(r.header("keep-alive"), "");
        assert_eq!(r.header("x-up-secret"), if i == 0 { "" } else { "s" });
    }
    assert_eq!(up.accepts(), 1, "both on one upstream connection");
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_replaced() {
    // Each answer is followed by a close the response never announced: the pooled connection
    // dies while idle, and the next request must still succeed on a new one.
    let up = RawUpstream::start(|_, _| {
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            After::Close,
        )
    })
    .await;
    let proxy = proxy_to(up.addr).await;
    let mut c = h1(&proxy).await;
    for _ in 0..10 {
        let r = c.get("h", "/", &[]).await.expect("reply");
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok"));
    }
    assert_eq!(up.accepts(), 10);
}

#[tokio::test]
async fn a_request_on_a_pooled_connection_that_dies_unanswered_is_sent_again() {
    // The second request on each connection is read and then the connection closes with no
    // answer: the pooled connection looked alive at checkout, so only re-sending the
    // (bodyless, never started) request on a fresh connection saves it.
    let up = RawUpstream::start(|_, served| match served {
        0 => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            After::KeepOpen,
        ),
        _ => (Vec::new(), After::Close),
    })
    .await;
    let proxy = proxy_to(up.addr).await;
    let mut c = h1(&proxy).await;
    for i in 1..=3 {
        let r = c.get("h", "/", &[]).await.expect("reply");
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok"));
        assert_eq!(up.accepts(), i);
    }
}

#[tokio::test]
async fn connection_close_and_trailing_bytes_prevent_reuse() {
    let up = RawUpstream::start(|head, _| match path_of(head) {
        // The socket stays open: only the header says not to reuse it.
        "/close" => (
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            After::KeepOpen,
        ),
        "/extra" => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokGARBAGE".to_vec(),
            After::KeepOpen,
        ),
        "/http10" => (
            b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            After::KeepOpen,
        ),
        // `close` on one line wins over `keep-alive` on another.
        "/both" => (
            b"HTTP/1.1 200 OK\r\nconnection: close\r\nconnection: keep-alive\r\n\
              content-length: 2\r\n\r\nok"
                .to_vec(),
            After::KeepOpen,
        ),
        _ => (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            After::KeepOpen,
        ),
    })
    .await;
    let proxy = proxy_to(up.addr).await;
    let mut c = h1(&proxy).await;
    let paths = [
        "/close", "/close", "/extra", "/extra", "/http10", "/http10", "/both", "/both",
    ];
    for (i, path) in paths.into_iter().enumerate() {
        let r = c.get("h", path, &[]).await.expect("reply");
        assert_eq!(
            (r.status.as_u16(), r.text().as_str()),
            (200, "ok"),
            "{path}"
        );
        assert_eq!(up.accepts(), i + 1, "{path}: a new connection each time");
    }
    // A clean keep-alive exchange is reused.
    for _ in 0..3 {
        assert_eq!(c.get("h", "/", &[]).await.expect("reply").text(), "ok");
    }
    assert_eq!(up.accepts(), 9);
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let b = EchoServer::start("e").await;
    let proxy = proxy_to(b.addr).await;
    // A multi-MiB body of unknown length goes upstream chunked and streams back.
    let payload: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (tx, body) = weft_testkit::channel_body();
    let req = http::Request::builder()
        .method("POST")
        .uri("/echo-body")
        .header("host", "h")
        .body(body)
        .expect("req");
    let stream = TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let chunks: Vec<Bytes> = payload
        .chunks(100_000)
        .map(Bytes::copy_from_slice)
        .collect();
    let feed = tokio::spawn(async move {
        for c in chunks {
            tx.send(hyper::body::Frame::data(c)).await.expect("feed");
        }
    });
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    let got = resp.into_body().collect().await.expect("body").to_bytes();
    feed.await.expect("fed");
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "the echoed body matches");
}

#[tokio::test]
async fn chunked_request_body_of_unknown_length_reaches_the_upstream() {
    let b = EchoServer::start("e").await;
    let proxy = proxy_to(b.addr).await;
    let mut s = TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    s.write_all(
        b"POST /echo-body HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n",
    )
    .await
    .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The echo answers chunked; its last chunk ends the response.
    while !got.ends_with(b"0\r\n\r\n") {
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = text.split_once("\r\n\r\n").expect("head").1;
    let mut decoded = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size, 16).expect("chunk size");
        if n == 0 {
            break;
        }
        decoded.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    assert_eq!(decoded, "hello world");
}

/// Responses whose framing two parsers could read differently, or that carry bytes beyond
/// their end (`INJECT`: what a desynchronised connection would hand the next request).
fn smuggling_answers(head: &str, _: usize) -> (Vec<u8>, After) {
    let keep = After::KeepOpen;
    let bytes: &[u8] = match path_of(head) {
        "/cl-te" => {
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n\
              2\r\nok\r\n0\r\n\r\n"
        }
        "/two-lengths" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok!",
        "/equal-lengths" => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok",
        "/length-list" => b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\nok",
        "/signed-length" => b"HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\nok",
        "/identity" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: identity\r\n\r\nok",
        "/gzip-chunked" => {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        }
        "/204-with-length" => b"HTTP/1.1 204 No Content\r\ncontent-length: 6\r\n\r\nINJECT",
        // Bytes beyond the end of a response: a whole second response.
        "/longer" => {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok\
              HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nINJECT"
        }
        "/204-then-more" => {
            b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nINJECT"
        }
        "/304-then-more" => b"HTTP/1.1 304 Not Modified\r\ncontent-length: 6\r\n\r\nINJECT",
        "/head" => b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nINJECT",
        "/bad-chunk" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n",
        "/chunks-then-more" => {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n\
              HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nINJECT"
        }
        _ => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nclean",
    };
    (bytes.to_vec(), keep)
}

#[tokio::test]
async fn ambiguous_response_framing_is_a_protocol_error() {
    let up = RawUpstream::start(smuggling_answers).await;
    let proxy = proxy_to(up.addr).await;
    let mut c = h1(&proxy).await;
    // As Envoy 1.40: 502, the connection closed.
    for path in [
        "/cl-te",
        "/two-lengths",
        "/equal-lengths",
        "/length-list",
        "/signed-length",
        // Envoy takes no coding but chunked: `gzip` would reach the client undeclared.
        "/identity",
        "/gzip-chunked",
        // A 204 that declares a body.
        "/204-with-length",
    ] {
        let r = c.get("h", path, &[]).await.expect("reply");
        assert_eq!(r.status, 502, "{path}");
        assert_eq!(
            r.text(),
            "upstream connect error or disconnect/reset before headers. reset reason: protocol error",
            "{path}"
        );
        // The connection that carried it is gone: the next request opens another.
        next_is_clean_on_a_new_connection(&up, &mut c, path).await;
    }
}

/// The next request is answered `clean` over a connection the upstream has just accepted.
async fn next_is_clean_on_a_new_connection(up: &RawUpstream, c: &mut HttpClient, path: &str) {
    let accepts = up.accepts();
    let r = c.get("h", "/", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "clean"),
        "{path}"
    );
    assert_eq!(up.accepts(), accepts + 1, "{path}: not reused");
}

#[tokio::test]
async fn bytes_beyond_a_response_never_reach_the_next_request() {
    let up = RawUpstream::start(smuggling_answers).await;
    let proxy = proxy_to(up.addr).await;
    let mut c = h1(&proxy).await;
    for (method, path, status, body) in [
        ("GET", "/longer", 200, "ok"),
        ("GET", "/204-then-more", 204, ""),
        ("GET", "/304-then-more", 304, ""),
        // A HEAD response is its head alone, whatever follows it.
        ("HEAD", "/head", 200, ""),
        ("GET", "/chunks-then-more", 200, "ok"),
    ] {
        let r = c
            .send(request(method, "h", path, &[], Bytes::new(), false).expect("req"))
            .await
            .expect("reply");
        assert_eq!(
            (r.status.as_u16(), r.text().as_str()),
            (status, body),
            "{path}"
        );
        // Had the connection been pooled, this request would be answered INJECT.
        next_is_clean_on_a_new_connection(&up, &mut c, path).await;
    }
}

#[tokio::test]
async fn a_bad_chunk_in_a_response_ends_it_unfinished_and_the_connection_with_it() {
    let up = RawUpstream::start(smuggling_answers).await;
    let proxy = proxy_to(up.addr).await;
    let mut s = TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    s.write_all(b"GET /bad-chunk HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .expect("write");
    let out = crate::read_to_close(&mut s).await;
    // The connection closes with the response unfinished: its head (as Envoy has sent it
    // by then) and what chunks came whole, never a body that looks complete.
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(!out.ends_with("0\r\n\r\n"), "{out}");
    let mut c = h1(&proxy).await;
    let r = c.get("h", "/", &[]).await.expect("reply");
    assert_eq!(r.text(), "clean");
    assert_eq!(up.accepts(), 2, "the broken connection was not reused");
}

#[tokio::test]
async fn bytes_that_arrive_on_an_idle_pooled_connection_get_it_discarded() {
    // The upstream answers, then, once the client has its response, writes a whole
    // unrequested response on the now idle connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (answered_tx, answered_rx) = tokio::sync::oneshot::channel::<()>();
    let (injected_tx, injected_rx) = tokio::sync::oneshot::channel::<()>();
    let accepts = Arc::new(AtomicUsize::new(0));
    let count = accepts.clone();
    tokio::spawn(async move {
        let mut signals = Some((answered_rx, injected_tx));
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let signals = signals.take();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                let mut signals = signals;
                loop {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    head.clear();
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nclean")
                        .await;
                    if let Some((answered, injected)) = signals.take() {
                        let _ = answered.await;
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nINJECT")
                            .await;
                        let _ = injected.send(());
                    }
                }
            });
        }
    });
    let proxy = proxy_to(addr).await;
    let mut c = h1(&proxy).await;
    assert_eq!(c.get("h", "/", &[]).await.expect("reply").text(), "clean");
    answered_tx.send(()).expect("upstream waits");
    injected_rx.await.expect("injected");
    let r = c.get("h", "/", &[]).await.expect("reply");
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "clean"));
    assert_eq!(
        accepts.load(Ordering::SeqCst),
        2,
        "the idle connection was dropped"
    );
}
