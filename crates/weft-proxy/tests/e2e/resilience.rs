//! Resilience: fault injection, timeouts, retries, circuit breaking, outlier detection,
//! health checks, rate limiting and mirroring, against backends that misbehave on purpose.
//! Every assertion is about what a client (or the access log / stats) sees.

use crate::{any_host, bootstrap, http_listener, start, static_cluster};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weft_proxy::ProxyHandle;
use weft_testkit::{
    EchoServer, FaultyServer, HttpClient, Misbehaviour, assert_eventually, request,
};

pub const FAULT_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";

/// The HCM's HTTP filters: the fault filter (with `fault` as its config) before the router.
pub fn fault_filters(fault: Value) -> Value {
    let mut cfg = fault;
    cfg["@type"] = json!(FAULT_TYPE);
    json!({"http_filters": [
        {"name": "envoy.filters.http.fault", "typed_config": cfg},
        {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
    ]})
}

/// A per-route fault override, as Istio's translation emits it.
pub fn route_fault(fault: Value) -> Value {
    let mut cfg = fault;
    cfg["@type"] = json!(FAULT_TYPE);
    json!({"envoy.filters.http.fault": cfg})
}

/// A fractional percentage out of a million, as Istio writes them.
pub fn per_million(percent: f64) -> Value {
    json!({"numerator": (percent * 10_000.0) as u32, "denominator": "MILLION"})
}

/// An HCM merged with an access log at `path` whose lines are `CODE FLAGS DETAILS`.
fn with_log(mut hcm: Value, path: &std::path::Path) -> Value {
    hcm["access_log"] = json!([{"name": "log", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": path,
        "log_format": {"text_format_source": {"inline_string": "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\n"}}
    }}]);
    hcm
}

fn read_log(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The value of one Prometheus sample (`name{labels}`), 0 when absent.
pub async fn metric(proxy: &ProxyHandle, sample: &str) -> f64 {
    let mut admin = HttpClient::h1(proxy.admin_addr().expect("admin"))
        .await
        .expect("admin connect");
    let text = admin
        .get("admin", "/stats/prometheus", &[])
        .await
        .expect("prometheus")
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn client(proxy: &ProxyHandle) -> HttpClient {
    HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect")
}

fn grpc_post(path: &str, extra: &[(&str, &str)]) -> http::Request<http_body_util::Full<Bytes>> {
    let mut headers = vec![("content-type", "application/grpc")];
    headers.extend_from_slice(extra);
    request("POST", "h", path, &headers, Bytes::new(), false).expect("request")
}

#[tokio::test]
async fn fault_abort_applies_per_route_with_header_match_and_percentages() {
    let ratings = EchoServer::start("ratings").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    // What weft's control plane emits for Istio's "abort for end-user: jason" rule: a route
    // matching the header with a per-route fault, then the plain route.
    let routes = any_host(json!([
        {"match": {"prefix": "/", "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}]},
         "route": {"cluster": "ratings"},
         "typed_per_filter_config": route_fault(json!({"abort": {"http_status": 500, "percentage": per_million(100.0)}}))},
        {"match": {"prefix": "/half"}, "route": {"cluster": "ratings"},
         "typed_per_filter_config": route_fault(json!({"abort": {"http_status": 503, "percentage": per_million(50.0)}}))},
        {"match": {"prefix": "/"}, "route": {"cluster": "ratings"}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            routes,
            with_log(fault_filters(json!({})), &log),
        )],
        vec![static_cluster("ratings", &[ratings.addr])],
    ))
    .await;
    let mut c = client(&proxy).await;
    let r = c
        .get("h", "/ratings/0", &[("end-user", "jason")])
        .await
        .expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str(), r.backend()),
        (500, "fault filter abort", "")
    );
    let r = c
        .get("h", "/ratings/0", &[("end-user", "alice")])
        .await
        .expect("reply");
    assert_eq!((r.status.as_u16(), r.backend()), (200, "ratings"));
    assert_eq!(
        ratings.requests(),
        1,
        "the aborted request never reached the backend"
    );

    // 50% over 400 requests: the binomial's standard deviation is 10, so 200 ± 60 is 6σ.
    let mut aborted = 0;
    for _ in 0..400 {
        let r = c.get("h", "/half", &[]).await.expect("reply");
        match r.status.as_u16() {
            503 => aborted += 1,
            200 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert!((140..=260).contains(&aborted), "aborted {aborted} of 400");
    assert_eventually!(
        read_log(&log).len() == 402,
        "402 log lines, got {}",
        read_log(&log).len()
    );
    let lines = read_log(&log);
    assert_eq!(lines[0], "500 FI fault_filter_abort");
    assert_eq!(lines[1], "200 - via_upstream");
    assert_eq!(
        lines.iter().filter(|l| l.contains(" FI ")).count(),
        aborted + 1
    );
    assert_eq!(
        metric(
            &proxy,
            "weft_http_fault_aborts_injected_total{listener=\"in\"}"
        )
        .await,
        (aborted + 1) as f64
    );
}

#[tokio::test]
async fn fault_delay_does_not_count_against_the_route_timeout() {
    let b = EchoServer::start("b").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let routes = any_host(json!([
        {"match": {"prefix": "/"}, "route": {"cluster": "b", "timeout": "0.2s"},
         "typed_per_filter_config": route_fault(json!({"delay": {"fixed_delay": "0.4s", "percentage": per_million(100.0)}}))},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            routes,
            with_log(fault_filters(json!({})), &log),
        )],
        vec![static_cluster("b", &[b.addr])],
    ))
    .await;
    let mut c = client(&proxy).await;
    let t = Instant::now();
    let r = c.get("h", "/", &[]).await.expect("reply");
    assert_eq!((r.status.as_u16(), r.backend()), (200, "b"));
    assert!(t.elapsed() >= Duration::from_millis(400), "delayed");
    assert_eventually!(read_log(&log).len() == 1, "one log line");
    assert_eq!(read_log(&log)[0], "200 DI via_upstream");
    assert_eq!(
        metric(
            &proxy,
            "weft_http_fault_delays_injected_total{listener=\"in\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn header_controlled_faults_and_grpc_aborts() {
    let b = EchoServer::start("b").await;
    // Filter-level config: faults come from x-envoy-fault-* headers.
    let filter = json!({
        "delay": {"header_delay": {}, "percentage": {"numerator": 100}},
        "abort": {"header_abort": {}, "percentage": {"numerator": 100}},
    });
    let routes = any_host(json!([
        {"match": {"prefix": "/grpc-abort"}, "route": {"cluster": "b"},
         "typed_per_filter_config": route_fault(json!({"abort": {"grpc_status": 14, "percentage": per_million(100.0)}}))},
        {"match": {"prefix": "/off"}, "route": {"cluster": "b"},
         "typed_per_filter_config": {"envoy.filters.http.fault": {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": true}}},
        {"match": {"prefix": "/"}, "route": {"cluster": "b"}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, fault_filters(filter))],
        vec![static_cluster("b", &[b.addr])],
    ))
    .await;
    let mut c = client(&proxy).await;
    let r = c.get("h", "/", &[]).await.expect("reply");
    assert_eq!(r.status, 200, "no header, no fault");
    let r = c
        .get("h", "/", &[("x-envoy-fault-abort-request", "429")])
        .await
        .expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (429, "fault filter abort")
    );
    let r = c
        .get("h", "/off", &[("x-envoy-fault-abort-request", "429")])
        .await
        .expect("reply");
    assert_eq!(r.status, 200, "disabled on this route");
    let r = c
        .get(
            "h",
            "/",
            &[
                ("x-envoy-fault-abort-request", "503"),
                ("x-envoy-fault-abort-request-percentage", "0"),
            ],
        )
        .await
        .expect("reply");
    assert_eq!(r.status, 200, "header percentage 0");
    let t = Instant::now();
    let r = c
        .get("h", "/", &[("x-envoy-fault-delay-request", "300")])
        .await
        .expect("reply");
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    let r = c
        .send(grpc_post("/", &[("x-envoy-fault-abort-grpc-request", "8")]))
        .await
        .expect("reply");
    assert_eq!((r.status.as_u16(), r.header("grpc-status")), (200, "8"));
    let r = c.send(grpc_post("/grpc-abort", &[])).await.expect("reply");
    assert_eq!(
        (
            r.status.as_u16(),
            r.header("grpc-status"),
            r.header("grpc-message")
        ),
        (200, "14", "fault filter abort")
    );
    // An HTTP abort of a gRPC request maps to a gRPC status as every local reply does.
    let r = c
        .send(grpc_post("/", &[("x-envoy-fault-abort-request", "503")]))
        .await
        .expect("reply");
    assert_eq!((r.status.as_u16(), r.header("grpc-status")), (200, "14"));
}

#[tokio::test]
async fn invalid_fault_config_names_the_field() {
    let routes = any_host(json!([
        {"match": {"prefix": "/"}, "route": {"cluster": "b"},
         "typed_per_filter_config": route_fault(json!({"abort": {"http_status": 700, "percentage": per_million(1.0)}}))},
    ]));
    let b = bootstrap(
        vec![http_listener("in", routes, fault_filters(json!({})))],
        vec![static_cluster("b", &["127.0.0.1:1".parse().expect("addr")])],
    );
    let err = weft_proxy::ProxyConfig::parse(&b.to_string(), weft_xds::Format::Json)
        .expect_err("rejected");
    let msg = err.to_string();
    assert!(
        msg.contains(
            "routes[0].typed_per_filter_config[\"envoy.filters.http.fault\"].abort.http_status"
        ),
        "{msg}"
    );
    // An HTTP filter weft does not implement is rejected unless optional.
    let mut hcm = fault_filters(json!({}));
    hcm["http_filters"][0] = json!({"name": "envoy.filters.http.lua", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"}});
    let b = bootstrap(vec![http_listener("in", any_host(json!([])), hcm)], vec![]);
    let err = weft_proxy::ProxyConfig::parse(&b.to_string(), weft_xds::Format::Json)
        .expect_err("rejected");
    assert!(err.to_string().contains("http_filters[0]"), "{err}");
}

#[tokio::test]
async fn route_timeouts_end_in_504_ut_and_cover_the_response_body() {
    let slow = EchoServer::start("slow").await;
    let stall = FaultyServer::start(Misbehaviour::StallMidBody).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let routes = any_host(json!([
        {"match": {"prefix": "/slow"}, "route": {"cluster": "slow", "timeout": "0.2s", "prefix_rewrite": "/delay/3000"}},
        {"match": {"prefix": "/stall"}, "route": {"cluster": "stall", "timeout": "0.3s"}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, with_log(json!({}), &log))],
        vec![
            static_cluster("slow", &[slow.addr]),
            static_cluster("stall", &[stall.addr]),
        ],
    ))
    .await;
    let mut c = client(&proxy).await;
    let r = c.get("h", "/slow", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (504, "upstream request timeout")
    );
    // Headers arrive, then the body stalls: the route timeout still ends the stream.
    let mut c = client(&proxy).await;
    let resp = c
        .send_streaming(request("GET", "h", "/stall", &[], Bytes::new(), false).expect("req"))
        .await
        .expect("headers");
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect()).await;
    assert!(
        matches!(body, Ok(Err(_))),
        "the body is cut, not completed: {body:?}"
    );
    assert_eventually!(read_log(&log).len() == 2, "two log lines");
    let lines = read_log(&log);
    assert_eq!(lines[0], "504 UT upstream_response_timeout");
    assert!(lines[1].starts_with("200 UT"), "{}", lines[1]);
    assert_eq!(
        metric(
            &proxy,
            "weft_upstream_rq_timeout_total{cluster_name=\"stall\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn per_try_timeouts_retry_on_another_host() {
    let hang = FaultyServer::start(Misbehaviour::NeverAnswer).await;
    let good = EchoServer::start("good").await;
    let routes = any_host(json!([
        {"match": {"prefix": "/"}, "route": {"cluster": "c", "timeout": "5s", "retry_policy": {
            "retry_on": "5xx", "num_retries": 2, "per_try_timeout": "0.2s",
            "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
            "host_selection_retry_max_attempts": 5,
        }}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![static_cluster("c", &[hang.addr, good.addr])],
    ))
    .await;
    let mut c = client(&proxy).await;
    for _ in 0..6 {
        let r = c.get("h", "/", &[]).await.expect("reply");
        assert_eq!((r.status.as_u16(), r.backend()), (200, "good"));
        // Each attempt tells the upstream its per-try budget.
        assert_eq!(r.json()["headers"]["x-envoy-expected-rq-timeout-ms"], "200");
    }
    assert!(hang.requests() >= 1, "the hanging host was tried");
    assert_eq!(
        metric(
            &proxy,
            "weft_upstream_rq_per_try_timeout_total{cluster_name=\"c\"}"
        )
        .await,
        hang.requests() as f64
    );
}

#[tokio::test]
async fn stream_idle_request_and_duration_timeouts() {
    let hang = FaultyServer::start(Misbehaviour::NeverAnswer).await;
    let stall = FaultyServer::start(Misbehaviour::StallMidBody).await;
    let b = EchoServer::start("b").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let routes = any_host(json!([
        {"match": {"prefix": "/hang"}, "route": {"cluster": "hang", "timeout": "0s"}},
        {"match": {"prefix": "/stall"}, "route": {"cluster": "stall", "timeout": "0s"}},
        {"match": {"prefix": "/grpc"}, "route": {"cluster": "hang", "timeout": "0s",
            "max_stream_duration": {"grpc_timeout_header_max": "0s"}}},
        {"match": {"prefix": "/upload"}, "route": {"cluster": "b", "timeout": "0s"}},
    ]));
    let hcm = with_log(
        json!({"stream_idle_timeout": "0.3s", "request_timeout": "0.2s"}),
        &log,
    );
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, hcm)],
        vec![
            static_cluster("hang", &[hang.addr]),
            static_cluster("stall", &[stall.addr]),
            static_cluster("b", &[b.addr]),
        ],
    ))
    .await;
    let mut c = client(&proxy).await;
    // A complete request whose upstream never answers: 504 from the stream idle timer.
    let r = c.get("h", "/hang", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (504, "stream timeout")
    );
    // A response body that stops flowing is cut by the same timer.
    let mut c = client(&proxy).await;
    let resp = c
        .send_streaming(request("GET", "h", "/stall", &[], Bytes::new(), false).expect("req"))
        .await
        .expect("headers");
    let body = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect()).await;
    assert!(
        matches!(body, Ok(Err(_))),
        "cut by the idle timer: {body:?}"
    );
    // grpc-timeout becomes the stream's maximum duration: DEADLINE_EXCEEDED.
    let mut c = client(&proxy).await;
    let r = c
        .send(grpc_post("/grpc", &[("grpc-timeout", "100m")]))
        .await
        .expect("reply");
    assert_eq!((r.status.as_u16(), r.header("grpc-status")), (200, "4"));
    // A request body that is still arriving when request_timeout (0.2 s) passes: 408.
    let (tx, body) = weft_testkit::channel_body();
    let req = http::Request::builder()
        .method("POST")
        .uri("/upload")
        .header("host", "h")
        .header("content-length", "1000")
        .body(body)
        .expect("req");
    let stream = tokio::net::TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let (mut h1, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    tx.send(hyper::body::Frame::data(Bytes::from_static(b"x")))
        .await
        .expect("first byte");
    let resp = h1.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 408);
    drop(tx);
    assert_eventually!(read_log(&log).len() >= 4, "log lines: {:?}", read_log(&log));
    let lines = read_log(&log);
    assert_eq!(lines[0], "504 SI stream_idle_timeout");
    assert!(lines[1].starts_with("200 SI"), "{}", lines[1]);
    assert_eq!(lines[2], "200 DT max_duration_timeout");
    assert_eq!(lines[3], "408 - request_overall_timeout");
}

#[tokio::test]
async fn client_disconnects_release_active_request_counts() {
    let hang = FaultyServer::start(Misbehaviour::NeverAnswer).await;
    let routes = any_host(json!([
        {"match": {"prefix": "/"}, "route": {"cluster": "hang", "timeout": "0s"}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![static_cluster("hang", &[hang.addr])],
    ))
    .await;
    let active = "weft_upstream_rq_active{cluster_name=\"hang\"}";
    for _ in 0..3 {
        let mut c = client(&proxy).await;
        let pending = tokio::spawn(async move { c.get("h", "/", &[]).await });
        assert_eventually!(metric(&proxy, active).await == 1.0, "request in flight");
        pending.abort();
        assert_eventually!(
            metric(&proxy, active).await == 0.0,
            "released when the client went away"
        );
    }
    let cluster = proxy.clusters().get("hang").expect("cluster");
    assert!(
        cluster
            .endpoints()
            .all
            .iter()
            .all(|e| e.active_requests() == 0)
    );
}
