//! Admin endpoints, access logs, drain, and configuration reporting.

use crate::{any_host, bootstrap, http_listener, start, static_cluster};
use serde_json::json;
use std::time::Duration;
use weft_proxy::ProxyConfig;
use weft_testkit::{EchoServer, HttpClient, assert_eventually};
use weft_xds::Format;

#[tokio::test]
async fn admin_endpoints_report_state_and_quit() {
    let b = EchoServer::start("a").await;
    let routes = any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![static_cluster("a", &[b.addr])],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    for _ in 0..3 {
        c.get("h", "/", &[]).await.expect("reply");
    }
    let mut admin = HttpClient::h1(proxy.admin_addr().expect("admin"))
        .await
        .expect("admin");
    let r = admin.get("admin", "/ready", &[]).await.expect("ready");
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "LIVE\n"));
    let dump = admin
        .get("admin", "/config_dump", &[])
        .await
        .expect("dump")
        .json();
    assert_eq!(
        dump["configs"][0]["bootstrap"]["static_resources"]["clusters"][0]["name"],
        "a"
    );
    let clusters = admin
        .get("admin", "/clusters", &[])
        .await
        .expect("clusters")
        .text();
    assert!(
        clusters.contains(&format!("a::{}::health_flags::healthy", b.addr)),
        "{clusters}"
    );
    let stats = admin
        .get("admin", "/stats", &[])
        .await
        .expect("stats")
        .text();
    assert!(stats.contains("cluster.a.upstream_rq_total: 3"), "{stats}");
    assert!(stats.contains("cluster.a.upstream_rq_2xx: 3"), "{stats}");
    assert!(
        stats.contains("listener.in.downstream_rq_total: 3"),
        "{stats}"
    );
    let prom = admin
        .get("admin", "/stats/prometheus", &[])
        .await
        .expect("prom")
        .text();
    assert!(
        prom.contains("weft_upstream_rq_total{cluster_name=\"a\"} 3"),
        "{prom}"
    );
    assert!(prom.contains("weft_upstream_rq_time_ms_bucket"), "{prom}");
    let quit = weft_testkit::request(
        "POST",
        "admin",
        "/quitquitquit",
        &[],
        bytes::Bytes::new(),
        false,
    )
    .expect("req");
    let wait = proxy.quit_requested();
    tokio::pin!(wait);
    // Register interest before sending, then expect the notification.
    tokio::select! { _ = &mut wait => panic!("quit before request"), _ = tokio::time::sleep(Duration::from_millis(1)) => {} }
    assert_eq!(admin.send(quit).await.expect("quit").status, 200);
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("quit requested");
}

#[tokio::test]
async fn drain_finishes_in_flight_requests_and_stops_accepting() {
    let b = EchoServer::start("a").await;
    let routes =
        any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "a", "timeout": "0s"}}]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![static_cluster("a", &[b.addr])],
    ))
    .await;
    let addr = proxy.listener_addr("in").expect("bound");
    let mut c = HttpClient::h1(addr).await.expect("connect");
    let resp = c
        .send_streaming(
            weft_testkit::request("GET", "h", "/hold", &[], bytes::Bytes::new(), false)
                .expect("req"),
        )
        .await
        .expect("head");
    let drained = tokio::spawn(proxy.drain(Duration::from_secs(5)));
    assert_eventually!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed during drain"
    );
    assert!(
        !drained.is_finished(),
        "drain waits for the in-flight response"
    );
    b.release();
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(body, "first\nsecond\n");
    tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("drain completes")
        .expect("task");
}

#[tokio::test]
async fn access_logs_write_istio_text_and_json() {
    let b = EchoServer::start("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text_path = dir.path().join("text.log");
    let json_path = dir.path().join("json.log");
    let hcm = json!({"access_log": [
        {"name": "text", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": text_path}},
        {"name": "json", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": json_path,
            "log_format": {"json_format": {"code": "%RESPONSE_CODE%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", "flags": "%RESPONSE_FLAGS%", "cluster": "%UPSTREAM_CLUSTER%", "id": "%REQ(X-REQUEST-ID)%",
                "remote": "%DOWNSTREAM_REMOTE_ADDRESS%", "direct": "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%"}}}},
    ]});
    let routes = any_host(
        json!([{"match": {"prefix": "/ok"}, "route": {"cluster": "a"}, "name": "ok-route"}]),
    );
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, hcm)],
        vec![static_cluster("a", &[b.addr])],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    c.get(
        "h.example",
        "/ok?x=1",
        &[("user-agent", "curl/8"), ("x-request-id", "rid-1")],
    )
    .await
    .expect("reply");
    // Without use_remote_address Envoy trusts x-forwarded-for: its last entry is the
    // client (`%DOWNSTREAM_REMOTE_ADDRESS%`, port 0); the peer stays the direct one.
    c.get(
        "h.example",
        "/missing",
        &[
            ("x-request-id", "rid-2"),
            ("x-forwarded-for", "10.1.2.3, 9.9.9.9"),
        ],
    )
    .await
    .expect("reply");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert_eventually!(
        read(&text_path).lines().count() == 2,
        "two text lines: {:?}",
        read(&text_path)
    );
    let text = read(&text_path);
    let first = text.lines().next().unwrap_or("");
    assert!(first.starts_with('['), "{first}");
    let expected = "\"GET /ok?x=1 HTTP/1.1\" 200 - via_upstream - \"-\" 0 ".to_string();
    assert!(first.contains(&expected), "{first}");
    assert!(
        first.contains(&format!(
            "\"curl/8\" \"rid-1\" \"h.example\" \"{}\" a ",
            b.addr
        )),
        "{first}"
    );
    assert!(first.ends_with(" ok-route"), "{first}");
    // %UPSTREAM_LOCAL_ADDRESS%: our end of the upstream connection.
    let upstream_local = first
        .split(&format!("\"{}\" a ", b.addr))
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or("");
    assert!(upstream_local.starts_with("127.0.0.1:"), "{first}");
    let second = text.lines().nth(1).unwrap_or("");
    assert!(
        second.contains("\"GET /missing HTTP/1.1\" 404 NR route_not_found"),
        "{second}"
    );
    assert!(second.contains(" 9.9.9.9:0 "), "{second}");
    assert_eventually!(read(&json_path).lines().count() == 2, "two json lines");
    let mut lines: Vec<serde_json::Value> = read(&json_path)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines[1]["remote"], "9.9.9.9:0");
    let direct = lines[1]["direct"].as_str().unwrap_or("").to_owned();
    assert!(direct.starts_with("127.0.0.1:"), "{direct}");
    assert_eq!(lines[0]["remote"], lines[0]["direct"]);
    for l in &mut lines {
        l.as_object_mut()
            .map(|o| (o.remove("remote"), o.remove("direct")));
    }
    assert_eq!(
        lines[0],
        json!({"code": 200, "path": "/ok?x=1", "flags": "-", "cluster": "a", "id": "rid-1"})
    );
    assert_eq!(lines[1]["flags"], "NR");
    assert_eq!(lines[1]["cluster"], serde_json::Value::Null);
}

/// A destination that stops reading (a stdout pipe behind a stalled log collector) must not
/// stall requests: lines wait in memory for the flusher, and all arrive once it reads again.
/// Two runtime threads, so a proxy thread blocked in a write cannot stop the test's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_access_log_reader_does_not_stall_requests() {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let b = EchoServer::start("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("log.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo");
    // A reader that reads nothing yet: the pipe (64 KiB) fills and writes to it block.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open fifo for reading");
    let hcm = json!({"access_log": [{"name": "fifo", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": fifo}}]});
    let routes = any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "a"}}]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, hcm)],
        vec![static_cluster("a", &[b.addr])],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    // ~500 bytes per line: 600 lines are ~300 KB, several times what the pipe holds.
    let agent = "x".repeat(300);
    let requests = 600;
    let sent = tokio::time::timeout(Duration::from_secs(30), async {
        for _ in 0..requests {
            let r = c
                .get("h", "/", &[("user-agent", &agent)])
                .await
                .expect("reply");
            assert_eq!(r.status, 200);
        }
    })
    .await;
    assert!(sent.is_ok(), "requests stalled behind the access log");
    // Reading again: every line arrives, whole and in order of completion.
    let mut text = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while text.iter().filter(|&&b| b == b'\n').count() < requests {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {requests} lines arrived",
            text.iter().filter(|&&b| b == b'\n').count()
        );
        let mut buf = [0u8; 64 * 1024];
        match reader.read(&mut buf) {
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("reading the fifo: {e}"),
        }
    }
    let text = String::from_utf8(text).expect("utf-8 lines");
    assert_eq!(text.lines().count(), requests);
    assert!(
        text.lines()
            .all(|l| l.contains("\"GET / HTTP/1.1\" 200 ") && l.contains(&agent)),
        "every line is a whole Istio line"
    );
}

#[test]
fn unsupported_fields_are_reported_and_invalid_config_names_the_field() {
    let b = json!({"static_resources": {"clusters": [{
        "name": "c", "connect_timeout": "1s",
        "circuit_breakers": {"thresholds": [{"max_connections": 1, "max_connection_pools": 2}]},
        "outlier_detection": {"consecutive_5xx": 3, "max_ejection_time_jitter": "1s"},
    }]}});
    let cfg = ProxyConfig::parse(&b.to_string(), Format::Json).expect("valid");
    assert_eq!(
        cfg.unsupported,
        [
            "static_resources.clusters[0].circuit_breakers.thresholds[0].max_connection_pools (google.protobuf.UInt32Value): not implemented by weft, ignored",
            "static_resources.clusters[0].outlier_detection.max_ejection_time_jitter (google.protobuf.Duration): not implemented by weft, ignored",
        ]
    );
    let bad = bootstrap(
        vec![http_listener(
            "in",
            any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "missing"}}])),
            json!({}),
        )],
        vec![],
    );
    let err = ProxyConfig::parse(&bad.to_string(), Format::Json)
        .expect_err("unknown cluster")
        .to_string();
    assert!(
        err.contains("static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: unknown cluster \"missing\""),
        "{err}"
    );
    let bad = json!({"static_resources": {"clusters": [{"name": "c", "lb_policy": "MAGLEV", "maglev_lb_config": {"table_size": 100}}]}});
    let err = ProxyConfig::parse(&bad.to_string(), Format::Json)
        .expect_err("bad table")
        .to_string();
    assert!(
        err.contains("static_resources.clusters[0].maglev_lb_config.table_size"),
        "{err}"
    );
}
