//! TCP proxying, half-close, and protocol detection that never stalls server-first protocols.

use crate::{address, any_host, bootstrap, start, static_cluster};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weft_testkit::{EchoServer, HttpClient, TcpBanner, TcpEcho};

fn tcp_proxy(spec: Value) -> Value {
    let mut cfg = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "stat_prefix": "tcp",
    });
    if let (Some(c), Some(s)) = (cfg.as_object_mut(), spec.as_object()) {
        c.extend(s.clone());
    }
    json!({ "name": "envoy.filters.network.tcp_proxy", "typed_config": cfg })
}

fn tcp_listener(name: &str, spec: Value) -> Value {
    json!({
        "name": name,
        "address": address("127.0.0.1:0".parse().expect("addr")),
        "filter_chains": [{ "filters": [tcp_proxy(spec)] }]
    })
}

#[tokio::test]
async fn tcp_proxy_passes_bytes_and_half_close() {
    let echo = TcpEcho::start("t1").await;
    let proxy = start(&bootstrap(
        vec![tcp_listener("tcp", json!({"cluster": "t1"}))],
        vec![static_cluster("t1", &[echo.addr])],
    ))
    .await;
    let mut s = TcpStream::connect(proxy.listener_addr("tcp").expect("bound"))
        .await
        .expect("connect");
    s.write_all(b"ping\n").await.expect("write");
    let mut buf = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("echo")
        .expect("read");
    assert_eq!(&buf, b"ping\n");
    // Half-close: our FIN reaches the backend, which still gets to answer.
    s.shutdown().await.expect("shutdown write");
    assert_eq!(crate::read_to_close(&mut s).await, "bye from t1\n");
}

#[tokio::test]
async fn tcp_weighted_clusters_and_idle_timeout() {
    let a = TcpEcho::start("a").await;
    let b = TcpEcho::start("b").await;
    let spec = json!({"weighted_clusters": {"clusters": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]}, "idle_timeout": "0.2s"});
    let proxy = start(&bootstrap(
        vec![tcp_listener("tcp", spec)],
        vec![
            static_cluster("a", &[a.addr]),
            static_cluster("b", &[b.addr]),
        ],
    ))
    .await;
    let addr = proxy.listener_addr("tcp").expect("bound");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.shutdown().await.expect("shutdown");
        seen.insert(crate::read_to_close(&mut s).await);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    // Idle: nothing moves, so the proxy closes the connection after 0.2 s.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(crate::read_to_close(&mut s).await, "");
}

#[tokio::test]
async fn sniffing_routes_http_and_never_stalls_server_first_protocols() {
    let web = EchoServer::start("web").await;
    let banner = TcpBanner::start("220 smtp.example ready").await;
    let hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "http",
        "route_config": any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "web"}}])),
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
    });
    let listener = json!({
        "name": "mixed",
        "address": address("127.0.0.1:0".parse().expect("addr")),
        // Generous for loaded CI machines: an HTTP client's first bytes must arrive within
        // it; a silent (server-first) client waits this long and no longer.
        "listener_filters_timeout": "0.5s",
        "listener_filters": [
            {"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}},
            {"name": "envoy.filters.listener.http_inspector", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"}},
        ],
        "filter_chains": [
            {"filter_chain_match": {"application_protocols": ["http/1.1", "h2c"]}, "filters": [{"name": "hcm", "typed_config": hcm}]},
            {"filters": [tcp_proxy(json!({"cluster": "banner"}))]},
        ]
    });
    let proxy = start(&bootstrap(
        vec![listener],
        vec![
            static_cluster("web", &[web.addr]),
            static_cluster("banner", &[banner.addr]),
        ],
    ))
    .await;
    let addr = proxy.listener_addr("mixed").expect("bound");

    // A server-first client sends nothing; the banner must still arrive promptly.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut buf = vec![0u8; 64];
    let asked = std::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("banner not stalled")
        .expect("read");
    assert!(
        asked.elapsed() >= Duration::from_millis(400),
        "waited for the client first"
    );
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        "220 smtp.example ready\n"
    );

    for h2 in [false, true] {
        let mut c = if h2 {
            HttpClient::h2c(addr).await
        } else {
            HttpClient::h1(addr).await
        }
        .expect("connect");
        let r = c.get("h", "/", &[]).await.expect("reply");
        assert_eq!(r.backend(), "web", "h2={h2}");
    }
}

#[tokio::test]
async fn tcp_access_log_records_bytes_and_upstream() {
    let echo = TcpEcho::start("t").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tcp.log");
    let spec = json!({"cluster": "t", "access_log": [{"name": "file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": path,
        "log_format": {"text_format_source": {"inline_string": "%UPSTREAM_CLUSTER% %UPSTREAM_HOST% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_FLAGS%\n"}}
    }}]});
    let proxy = start(&bootstrap(
        vec![tcp_listener("tcp", spec)],
        vec![static_cluster("t", &[echo.addr])],
    ))
    .await;
    let mut s = TcpStream::connect(proxy.listener_addr("tcp").expect("bound"))
        .await
        .expect("connect");
    s.write_all(b"12345").await.expect("write");
    s.shutdown().await.expect("shutdown");
    assert_eq!(crate::read_to_close(&mut s).await, "12345bye from t\n");
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    weft_testkit::assert_eventually!(!read().is_empty(), "tcp log line");
    assert_eq!(read(), format!("t {} 5 16 -\n", echo.addr));
}
