//! The inline downstream HTTP/1.1 server, driven byte by byte from raw client sockets:
//! pipelining, `Expect: 100-continue`, HTTP/1.0 keep-alive, refused framing.

use crate::{any_host, bootstrap, http_listener, start, static_cluster};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weft_proxy::ProxyHandle;
use weft_testkit::EchoServer;

async fn proxy_to(addr: SocketAddr) -> ProxyHandle {
    let routes = any_host(json!([{ "match": {"prefix": "/"}, "route": {"cluster": "c"} }]));
    start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![static_cluster("c", &[addr])],
    ))
    .await
}

/// A proxy routing only `/known*` to `addr` (anything else: 404 without reading the body).
async fn proxy_to_known(addr: SocketAddr) -> ProxyHandle {
    let routes = any_host(json!([{ "match": {"prefix": "/known"}, "route": {"cluster": "c"} }]));
    start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![static_cluster("c", &[addr])],
    ))
    .await
}

async fn connect(proxy: &ProxyHandle) -> TcpStream {
    TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect")
}

/// Reads until the peer closes (bounded by 5 s).
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the proxy closes the connection")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads until `out` contains `needle` (bounded by 5 s).
async fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(5), async {
        while !String::from_utf8_lossy(&out).contains(needle) {
            let n = s.read(&mut buf).await.expect("read");
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("answer in time");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let b = EchoServer::start("e").await;
    let proxy = proxy_to(b.addr).await;
    let mut s = connect(&proxy).await;
    // Three requests in one write: a GET, a POST with a body, a GET that closes.
    s.write_all(
        b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n\
          POST /echo-body HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nsecond-body\
          GET /third HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let out = read_to_close(&mut s).await;
    assert_eq!(out.matches("HTTP/1.1 200 OK\r\n").count(), 3, "{out}");
    let first = out.find("\"path\":\"/first\"").expect("first answered");
    let second = out.find("second-body").expect("second answered");
    let third = out.find("\"path\":\"/third\"").expect("third answered");
    assert!(first < second && second < third, "in order: {out}");
    assert_eq!(
        b.connections(),
        1,
        "one upstream connection carried all three"
    );
}

#[tokio::test]
async fn expect_continue_gets_100_before_the_client_sends_its_body() {
    let b = EchoServer::start("e").await;
    let proxy = proxy_to(b.addr).await;
    let mut s = connect(&proxy).await;
    s.write_all(
        b"POST /echo-body HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .expect("write head");
    let interim = read_until(&mut s, "\r\n\r\n").await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").await.expect("write body");
    let out = read_until(&mut s, "hello").await;
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("content-length: 5\r\n"), "{out}");
}

#[tokio::test]
async fn http10_keep_alive_carries_a_second_request() {
    let b = EchoServer::start("e").await;
    let proxy = proxy_to(b.addr).await;
    let mut s = connect(&proxy).await;
    s.write_all(b"GET /one HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
        .await
        .expect("write");
    let out = read_until(&mut s, "\"path\":\"/one\"").await;
    assert!(out.starts_with("HTTP/1.0 200 OK\r\n"), "{out}");
    assert!(out.contains("connection: keep-alive\r\n"), "{out}");
    // Without keep-alive, an HTTP/1.0 request is the connection's last.
    s.write_all(b"GET /two HTTP/1.0\r\nHost: h\r\n\r\n")
        .await
        .expect("write");
    let out = read_to_close(&mut s).await;
    assert!(out.contains("\"path\":\"/two\""), "{out}");
    assert_eq!(b.requests(), 2);
}

#[tokio::test]
async fn malformed_requests_get_400_and_never_reach_the_upstream() {
    let b = EchoServer::start("e").await;
    let proxy = proxy_to(b.addr).await;
    let addr = proxy.listener_addr("in").expect("bound");
    let cases: [&[u8]; 3] = [
        // Both framings: a request-smuggling shape, refused as Envoy does by default.
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // A transfer coding that does not end in chunked.
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"NOT A REQUEST\r\n\r\n",
    ];
    for raw in cases {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(raw).await.expect("write");
        let out = read_to_close(&mut s).await;
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("connection: close\r\n"), "{out}");
    }
    // A coding other than chunked would reach the upstream undeclared: 501, as Envoy.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
        .await
        .expect("write");
    let out = read_to_close(&mut s).await;
    assert!(out.starts_with("HTTP/1.1 501 Not Implemented\r\n"), "{out}");
    assert_eq!(b.requests(), 0);
}

#[tokio::test]
async fn chunked_upload_with_trailers_is_decoded_and_streamed_upstream() {
    let b = EchoServer::start("e").await;
    let proxy = proxy_to(b.addr).await;
    let mut s = connect(&proxy).await;
    let big = "y".repeat(40_000);
    let raw = format!(
        "POST /echo-body HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n{:x}\r\n{big}\r\n0\r\nx-checksum: 1\r\n\r\n\
         GET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        big.len()
    );
    s.write_all(raw.as_bytes()).await.expect("write");
    let out = read_to_close(&mut s).await;
    let body_start = out.find("\r\n\r\n").expect("head") + 4;
    // The echo streams back chunked: strip the framing and compare the payload.
    let echoed: String = out[body_start..]
        .split("\r\n")
        .filter(|l| l.starts_with('h') || l.starts_with('y'))
        .collect();
    assert_eq!(echoed, format!("hello{big}"));
    // The connection went on to the next request after the trailers.
    assert!(out.contains("\"path\":\"/after\""), "{out}");
}

#[tokio::test]
async fn an_unread_small_body_does_not_cost_the_connection() {
    let b = EchoServer::start("e").await;
    let proxy = proxy_to_known(b.addr).await;
    let mut s = connect(&proxy).await;
    // No route: 404 without reading the body; the connection still carries the next one.
    s.write_all(
        b"POST /unknown HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
          GET /known HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let out = read_to_close(&mut s).await;
    assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n"), "{out}");
    assert!(out.contains("\"path\":\"/known\""), "{out}");
}

#[tokio::test]
async fn a_response_before_the_whole_request_body_closes_gently() {
    let b = EchoServer::start("e").await;
    let proxy = proxy_to_known(b.addr).await;
    let mut s = connect(&proxy).await;
    // No route: 404 while most of a 1 MB body is still to come.
    s.write_all(b"POST /unknown HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .expect("write head");
    s.write_all(&[b'z'; 64 * 1024])
        .await
        .expect("write part of the body");
    let head = read_until(&mut s, "\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    // The client is told the connection ends, and the proxy keeps reading what it still
    // sends (no reset) until it closes its side.
    assert!(head.contains("connection: close\r\n"), "{head}");
    s.write_all(&[b'z'; 64 * 1024])
        .await
        .expect("the proxy still drains the body");
    s.shutdown().await.expect("shutdown");
    let rest = read_to_close(&mut s).await;
    assert!(!rest.contains("HTTP/1.1"), "nothing more: {rest}");
}
