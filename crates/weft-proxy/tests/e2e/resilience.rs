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
    // The delay outlasts the route timeout, which still leaves the backend a full second.
    let routes = any_host(json!([
        {"match": {"prefix": "/"}, "route": {"cluster": "b", "timeout": "1s"},
         "typed_per_filter_config": route_fault(json!({"delay": {"fixed_delay": "1.2s", "percentage": per_million(100.0)}}))},
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
    assert!(t.elapsed() >= Duration::from_millis(1200), "delayed");
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

/// A keep-alive connection reuses one timer for its requests' limits: each request still
/// gets its own route timeout, whether it is later or earlier than the one before.
#[tokio::test]
async fn route_timeouts_fire_on_later_requests_of_a_keep_alive_connection() {
    let b = EchoServer::start("b").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let routes = any_host(json!([
        {"match": {"prefix": "/fast"}, "route": {"cluster": "b", "timeout": "0.3s"}},
        {"match": {"prefix": "/slow"}, "route": {"cluster": "b", "timeout": "0.3s", "prefix_rewrite": "/delay/3000"}},
        // Envoy's default route timeout (15 s).
        {"match": {"prefix": "/default"}, "route": {"cluster": "b"}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, with_log(json!({}), &log))],
        vec![static_cluster("b", &[b.addr])],
    ))
    .await;
    // One connection throughout: a reply that closed it would fail the next request.
    let mut c = client(&proxy).await;
    // A quick answer, then a request whose limit falls after the one armed for it.
    let r = c.get("h", "/fast", &[]).await.expect("fast");
    assert_eq!((r.status.as_u16(), r.backend()), (200, "b"));
    let r = c.get("h", "/slow", &[]).await.expect("slow");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (504, "upstream request timeout")
    );
    // A quick answer under the 15 s default, then a limit that falls before it.
    let r = c.get("h", "/default", &[]).await.expect("default");
    assert_eq!((r.status.as_u16(), r.backend()), (200, "b"));
    let r = c.get("h", "/slow", &[]).await.expect("slow again");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (504, "upstream request timeout")
    );
    assert_eventually!(read_log(&log).len() == 4, "log lines: {:?}", read_log(&log));
    assert_eq!(
        read_log(&log),
        [
            "200 - via_upstream",
            "504 UT upstream_response_timeout",
            "200 - via_upstream",
            "504 UT upstream_response_timeout",
        ]
    );
}

#[tokio::test]
async fn per_try_timeouts_retry_on_another_host() {
    let hang = FaultyServer::start(Misbehaviour::NeverAnswer).await;
    let good = EchoServer::start("good").await;
    let routes = any_host(json!([
        {"match": {"prefix": "/"}, "route": {"cluster": "c", "timeout": "5s", "retry_policy": {
            "retry_on": "5xx", "num_retries": 2, "per_try_timeout": "0.5s",
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
        assert_eq!(r.json()["headers"]["x-envoy-expected-rq-timeout-ms"], "500");
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

/// A route to `cluster` with a retry policy (merged over `num_retries: 2`, no back-off to
/// speak of) on a virtual host that reports attempt counts both ways.
fn retry_routes(cluster: &str, policy: Value) -> Value {
    let mut p = json!({"num_retries": 2, "retry_back_off": {"base_interval": "0.001s", "max_interval": "0.002s"}});
    if let (Some(p), Some(extra)) = (p.as_object_mut(), policy.as_object()) {
        p.extend(extra.clone());
    }
    json!({"name": "local", "virtual_hosts": [{
        "name": "all", "domains": ["*"],
        "include_request_attempt_count": true,
        "include_attempt_count_in_response": true,
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster, "retry_policy": p}}],
    }]})
}

#[tokio::test]
async fn retry_conditions_count_attempts_like_envoy() {
    // (retry_on + extras, what the backend answers on the path, attempts, final status)
    let cases: Vec<(Value, &str, u16, usize, u16)> = vec![
        (json!({"retry_on": "5xx"}), "/", 503, 3, 503),
        (json!({"retry_on": "5xx"}), "/", 404, 1, 404),
        (json!({"retry_on": "gateway-error"}), "/", 500, 1, 500),
        (json!({"retry_on": "gateway-error"}), "/", 502, 3, 502),
        (json!({"retry_on": "retriable-4xx"}), "/", 409, 3, 409),
        (json!({"retry_on": "retriable-4xx"}), "/", 404, 1, 404),
        (
            json!({"retry_on": "retriable-status-codes", "retriable_status_codes": [418]}),
            "/",
            418,
            3,
            418,
        ),
        (
            json!({"retry_on": "retriable-headers", "retriable_headers": [{"name": "x-backend", "string_match": {"exact": "b"}}]}),
            "/",
            200,
            3,
            200,
        ),
        (
            json!({"retry_on": "unavailable"}),
            "/grpc-status/14",
            200,
            3,
            200,
        ),
        (
            json!({"retry_on": "cancelled,deadline-exceeded,internal,resource-exhausted"}),
            "/grpc-status/13",
            200,
            3,
            200,
        ),
        (
            json!({"retry_on": "unavailable"}),
            "/grpc-status/13",
            200,
            1,
            200,
        ),
        (
            json!({"retry_on": "5xx", "retriable_request_headers": [{"name": "x-retry-me", "present_match": true}]}),
            "/",
            503,
            1,
            503,
        ),
    ];
    for (policy, path, status, attempts, final_status) in cases {
        let b = EchoServer::start("b").await;
        if status != 200 {
            b.fail_next(usize::MAX, status);
        }
        let proxy = start(&bootstrap(
            vec![http_listener(
                "in",
                retry_routes("b", policy.clone()),
                json!({}),
            )],
            vec![static_cluster("b", &[b.addr])],
        ))
        .await;
        let mut c = client(&proxy).await;
        let r = c.get("h", path, &[]).await.expect("reply");
        assert_eq!(
            (
                r.status.as_u16(),
                b.requests(),
                r.header("x-envoy-attempt-count")
            ),
            (final_status, attempts, attempts.to_string().as_str()),
            "{policy} on {path} answering {status}"
        );
        assert_eq!(
            r.json()["headers"]["x-envoy-attempt-count"],
            json!(attempts.to_string()),
            "the upstream saw the attempt number"
        );
    }
}

#[tokio::test]
async fn retries_to_an_http2_upstream_send_the_whole_request_each_time() {
    // HTTP/2 attempts get their own copy of the head (hyper's client takes it); the last one
    // must still carry everything the first did, with its own attempt number.
    let b = EchoServer::start("b").await;
    b.fail_next(2, 503);
    let mut cluster = static_cluster("b", &[b.addr]);
    cluster["typed_extension_protocol_options"] = json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }});
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            retry_routes("b", json!({"retry_on": "5xx"})),
            json!({}),
        )],
        vec![cluster],
    ))
    .await;
    let mut c = client(&proxy).await;
    let r = c
        .get("h", "/some/path?q=1", &[("x-keep", "me")])
        .await
        .expect("reply");
    assert_eq!(
        (
            r.status.as_u16(),
            b.requests(),
            r.header("x-envoy-attempt-count")
        ),
        (200, 3, "3")
    );
    let seen = r.json();
    assert_eq!(seen["version"], json!("HTTP/2.0"));
    assert_eq!(seen["path"], json!("/some/path?q=1"));
    assert_eq!(seen["headers"][":authority"], json!("h"));
    assert_eq!(seen["headers"]["x-keep"], json!("me"));
    assert_eq!(seen["headers"]["x-envoy-attempt-count"], json!("3"));
}

#[tokio::test]
async fn retries_after_resets_refusals_and_then_success() {
    let reset = FaultyServer::start(Misbehaviour::ResetBeforeHeaders).await;
    let refused = weft_testkit::refused_addr().await;
    let flaky = EchoServer::start("flaky").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let mut routes = retry_routes("reset", json!({"retry_on": "reset"}));
    let vh = routes["virtual_hosts"][0].clone();
    let mut refused_vh = vh.clone();
    refused_vh["name"] = json!("refused");
    refused_vh["domains"] = json!(["refused"]);
    refused_vh["routes"][0]["route"]["cluster"] = json!("refused");
    refused_vh["routes"][0]["route"]["retry_policy"]["retry_on"] = json!("connect-failure");
    let mut flaky_vh = vh.clone();
    flaky_vh["name"] = json!("flaky");
    flaky_vh["domains"] = json!(["flaky"]);
    flaky_vh["routes"][0]["route"]["cluster"] = json!("flaky");
    flaky_vh["routes"][0]["route"]["retry_policy"]["retry_on"] = json!("5xx");
    routes["virtual_hosts"] = json!([flaky_vh, refused_vh, vh]);
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, with_log(json!({}), &log))],
        vec![
            static_cluster("reset", &[reset.addr]),
            static_cluster("refused", &[refused]),
            static_cluster("flaky", &[flaky.addr]),
        ],
    ))
    .await;
    let mut c = client(&proxy).await;
    let r = c.get("h", "/", &[]).await.expect("reply");
    assert_eq!(r.status, 503);
    assert_eq!(reset.requests(), 3, "reset 3 times");
    let r = c.get("refused", "/", &[]).await.expect("reply");
    assert_eq!(r.status, 503);
    assert_eq!(
        metric(
            &proxy,
            "weft_upstream_rq_retry_total{cluster_name=\"refused\"}"
        )
        .await,
        2.0
    );
    flaky.fail_next(2, 503);
    let r = c.get("flaky", "/", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.header("x-envoy-attempt-count")),
        (200, "3")
    );
    assert_eventually!(read_log(&log).len() == 3, "three lines");
    let lines = read_log(&log);
    assert!(lines[0].starts_with("503 UC,URX"), "{}", lines[0]);
    assert!(lines[1].starts_with("503 UF,URX"), "{}", lines[1]);
    assert_eq!(lines[2], "200 - via_upstream");
    assert_eq!(
        metric(
            &proxy,
            "weft_upstream_rq_retry_success_total{cluster_name=\"flaky\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn request_bodies_are_replayed_only_within_the_buffer() {
    let b = EchoServer::start("b").await;
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            retry_routes("b", json!({"retry_on": "5xx"})),
            json!({}),
        )],
        vec![static_cluster("b", &[b.addr])],
    ))
    .await;
    let mut c = client(&proxy).await;
    let small = Bytes::from(vec![b'a'; 64 * 1024]);
    b.fail_next(1, 503);
    let r = c
        .send(request("POST", "h", "/", &[], small, false).expect("req"))
        .await
        .expect("reply");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body_len"], 64 * 1024, "the whole body, replayed");
    assert_eq!(r.header("x-envoy-attempt-count"), "2");
    // Past 1 MiB the body is not kept: no retry, and the client sees the upstream's 503.
    let big = Bytes::from(vec![b'a'; 2 * 1024 * 1024]);
    b.fail_next(1, 503);
    let before = b.requests();
    let r = c
        .send(request("POST", "h", "/", &[], big, false).expect("req"))
        .await
        .expect("reply");
    assert_eq!(r.status, 503);
    assert_eq!(
        b.requests() - before,
        1,
        "never retried, never partially replayed"
    );
    assert_eq!(
        metric(
            &proxy,
            "weft_upstream_rq_body_too_large_for_retry_total{cluster_name=\"b\"}"
        )
        .await,
        1.0
    );
}

/// A STATIC cluster with circuit-breaker thresholds.
fn breaker_cluster(name: &str, addrs: &[std::net::SocketAddr], thresholds: Value) -> Value {
    let mut c = static_cluster(name, addrs);
    c["circuit_breakers"] = json!({"thresholds": [thresholds]});
    c
}

#[tokio::test]
async fn circuit_breakers_overflow_with_503_uo() {
    let b = EchoServer::start("b").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let routes = any_host(json!([
        {"match": {"prefix": "/rq"}, "route": {"cluster": "rq", "prefix_rewrite": "/delay/400"}},
        {"match": {"prefix": "/cx"}, "route": {"cluster": "cx", "prefix_rewrite": "/delay/400"}},
        {"match": {"prefix": "/retry"}, "route": {"cluster": "retry", "retry_policy": {"retry_on": "5xx", "num_retries": 3}}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, with_log(json!({}), &log))],
        vec![
            breaker_cluster(
                "rq",
                &[b.addr],
                json!({"max_requests": 1, "track_remaining": true}),
            ),
            breaker_cluster(
                "cx",
                &[b.addr],
                json!({"max_connections": 1, "max_pending_requests": 1}),
            ),
            breaker_cluster("retry", &[b.addr], json!({"max_retries": 0})),
        ],
    ))
    .await;
    let addr = proxy.listener_addr("in").expect("bound");
    let get = |path: &'static str| async move {
        let mut c = HttpClient::h1(addr).await.expect("connect");
        c.get("h", path, &[]).await.expect("reply")
    };
    // max_requests 1: a second concurrent request overflows at once.
    let first = tokio::spawn(get("/rq"));
    assert_eventually!(
        metric(&proxy, "weft_upstream_rq_active{cluster_name=\"rq\"}").await == 1.0,
        "first in flight"
    );
    let mut admin = HttpClient::h1(proxy.admin_addr().expect("admin"))
        .await
        .expect("admin");
    let stats = admin
        .get("admin", "/stats", &[])
        .await
        .expect("stats")
        .text();
    assert!(
        stats.contains("cluster.rq.circuit_breakers.default.remaining_rq: 0"),
        "{stats}"
    );
    let clusters = admin
        .get("admin", "/clusters", &[])
        .await
        .expect("clusters")
        .text();
    assert!(
        clusters.contains("rq::default_priority::max_requests::1"),
        "{clusters}"
    );
    let r = get("/rq").await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (
            503,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow"
        )
    );
    assert_eq!(first.await.expect("first").status, 200);
    // max_connections 1 + max_pending_requests 1: one waits for the connection, a third
    // overflows.
    let first = tokio::spawn(get("/cx"));
    assert_eventually!(
        metric(&proxy, "weft_upstream_rq_active{cluster_name=\"cx\"}").await == 1.0,
        "first in flight"
    );
    let second = tokio::spawn(get("/cx"));
    assert_eventually!(
        metric(
            &proxy,
            "weft_upstream_cx_overflow_total{cluster_name=\"cx\"}"
        )
        .await
            >= 1.0,
        "second pending"
    );
    let third = get("/cx").await;
    assert_eq!(third.status, 503);
    assert_eq!(first.await.expect("first").status, 200);
    assert_eq!(
        second.await.expect("second").status,
        200,
        "the pending one got the connection"
    );
    // max_retries 0: no retry is ever made.
    b.fail_next(1, 503);
    let before = b.requests();
    let r = get("/retry").await;
    assert_eq!(r.status, 503);
    assert_eq!(b.requests() - before, 1);
    assert_eq!(
        metric(
            &proxy,
            "weft_upstream_rq_retry_overflow_total{cluster_name=\"retry\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &proxy,
            "weft_upstream_rq_pending_overflow_total{cluster_name=\"rq\"}"
        )
        .await
            + metric(
                &proxy,
                "weft_upstream_rq_pending_overflow_total{cluster_name=\"cx\"}"
            )
            .await,
        2.0
    );
    assert_eventually!(read_log(&log).len() == 6, "six lines: {:?}", read_log(&log));
    let uo = read_log(&log)
        .iter()
        .filter(|l| l.starts_with("503 UO upstream_reset_before_response_started{overflow}"))
        .count();
    assert_eq!(uo, 2);
}

#[tokio::test]
async fn max_requests_per_connection_recycles_upstream_connections() {
    let b = EchoServer::start("b").await;
    let mut cluster = static_cluster("b", &[b.addr]);
    cluster["typed_extension_protocol_options"] = json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "common_http_protocol_options": {"max_requests_per_connection": 2},
        "explicit_http_config": {"http_protocol_options": {}},
    }});
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "b"}}])),
            json!({}),
        )],
        vec![cluster],
    ))
    .await;
    let mut c = client(&proxy).await;
    for _ in 0..6 {
        assert_eq!(c.get("h", "/", &[]).await.expect("reply").status, 200);
    }
    assert_eq!(b.connections(), 3, "two requests per upstream connection");
}

/// `/clusters` health flags of `addr` in `cluster`.
async fn health_flags(proxy: &ProxyHandle, cluster: &str, addr: std::net::SocketAddr) -> String {
    let mut admin = HttpClient::h1(proxy.admin_addr().expect("admin"))
        .await
        .expect("admin connect");
    let text = admin
        .get("admin", "/clusters", &[])
        .await
        .expect("clusters")
        .text();
    let prefix = format!("{cluster}::{addr}::health_flags::");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or("")
        .to_owned()
}

fn previous_hosts_retry(retry_on: &str) -> Value {
    json!({
        "retry_on": retry_on, "num_retries": 3,
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
        "host_selection_retry_max_attempts": 5,
        "retry_back_off": {"base_interval": "0.001s", "max_interval": "0.002s"},
    })
}

#[tokio::test]
async fn failing_endpoint_is_ejected_and_no_request_fails_while_retries_allow() {
    let good = EchoServer::start("good").await;
    let bad = EchoServer::start_failing("bad", 503).await;
    let refused = weft_testkit::refused_addr().await;
    let mut c5xx = static_cluster("c", &[good.addr, bad.addr]);
    c5xx["outlier_detection"] = json!({
        "consecutive_5xx": 3, "interval": "0.05s", "base_ejection_time": "0.5s",
        "max_ejection_percent": 100,
    });
    let mut local = static_cluster("local", &[good.addr, refused]);
    local["outlier_detection"] = json!({
        "split_external_local_origin_errors": true, "consecutive_local_origin_failure": 2,
        "interval": "0.05s", "base_ejection_time": "30s", "max_ejection_percent": 50,
    });
    let routes = json!({"name": "local", "virtual_hosts": [
        {"name": "c", "domains": ["c"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "c", "retry_policy": previous_hosts_retry("5xx")}}]},
        {"name": "local", "domains": ["local"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "local", "retry_policy": previous_hosts_retry("connect-failure")}}]},
    ]});
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![c5xx, local],
    ))
    .await;
    let mut c = client(&proxy).await;
    let mut get = async |host: &str| {
        let r = c.get(host, "/", &[]).await.expect("reply");
        assert_eq!(
            (r.status.as_u16(), r.backend()),
            (200, "good"),
            "no request fails while a healthy endpoint exists"
        );
    };
    // Three 503s in a row eject the bad host; retries hide every one of them.
    let ejected = "/failed_outlier_check";
    let deadline = Instant::now() + Duration::from_secs(5);
    while health_flags(&proxy, "c", bad.addr).await != ejected {
        assert!(Instant::now() < deadline, "bad host never ejected");
        get("c").await;
    }
    assert_eq!(health_flags(&proxy, "c", good.addr).await, "healthy");
    assert_eq!(
        bad.requests(),
        3,
        "ejected after exactly three consecutive 5xx"
    );
    // While ejected it gets nothing.
    for _ in 0..10 {
        get("c").await;
    }
    if health_flags(&proxy, "c", bad.addr).await == ejected {
        assert_eq!(bad.requests(), 3, "no traffic while ejected");
    }
    // base_ejection_time later it comes back, fails three more times and is ejected again
    // (for twice as long).
    assert_eventually!(
        health_flags(&proxy, "c", bad.addr).await == "healthy",
        "the bad host came back"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(
        &proxy,
        "weft_outlier_detection_ejections_enforced_total{cluster_name=\"c\"}",
    )
    .await
        < 2.0
    {
        assert!(Instant::now() < deadline, "never ejected a second time");
        get("c").await;
    }
    assert_eq!(bad.requests(), 6);
    // Local-origin errors on their own counter: two refused connects eject that host.
    for _ in 0..6 {
        get("local").await;
    }
    assert_eventually!(
        health_flags(&proxy, "local", refused).await == ejected,
        "refused host ejected"
    );
}

#[tokio::test]
async fn success_rate_and_failure_percentage_detection_eject_outliers() {
    let (a, b, bad) = (
        EchoServer::start("a").await,
        EchoServer::start("b").await,
        EchoServer::start_failing("bad", 500).await,
    );
    for (name, detector) in [
        (
            "sr",
            json!({"success_rate_minimum_hosts": 3, "success_rate_request_volume": 10, "success_rate_stdev_factor": 1000}),
        ),
        (
            "fp",
            json!({"enforcing_success_rate": 0, "failure_percentage_threshold": 50, "enforcing_failure_percentage": 100,
                      "failure_percentage_minimum_hosts": 3, "failure_percentage_request_volume": 10}),
        ),
    ] {
        let mut cluster = static_cluster(name, &[a.addr, b.addr, bad.addr]);
        let mut od = json!({"consecutive_5xx": 1000, "interval": "0.5s", "base_ejection_time": "30s", "max_ejection_percent": 50});
        if let (Some(o), Some(d)) = (od.as_object_mut(), detector.as_object()) {
            o.extend(d.clone());
        }
        cluster["outlier_detection"] = od;
        let proxy = start(&bootstrap(
            vec![http_listener(
                "in",
                any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": name}}])),
                json!({}),
            )],
            vec![cluster],
        ))
        .await;
        let mut c = client(&proxy).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while health_flags(&proxy, name, bad.addr).await != "/failed_outlier_check" {
            assert!(
                Instant::now() < deadline,
                "{name}: the failing host was never ejected"
            );
            for _ in 0..30 {
                c.get("h", "/", &[]).await.expect("reply");
            }
        }
        assert_eq!(
            health_flags(&proxy, name, a.addr).await,
            "healthy",
            "{name}"
        );
        assert_eq!(
            health_flags(&proxy, name, b.addr).await,
            "healthy",
            "{name}"
        );
    }
}

#[tokio::test]
async fn active_health_checks_take_hosts_out_and_bring_them_back() {
    let good = EchoServer::start("good").await;
    let flaky = EchoServer::start("flaky").await;
    flaky.fail_next(usize::MAX, 503);
    let tcp = weft_testkit::TcpEcho::start("tcp").await;
    let refused = weft_testkit::refused_addr().await;
    let mut http = static_cluster("http", &[good.addr, flaky.addr]);
    http["health_checks"] = json!([{
        "timeout": "1s", "interval": "0.05s", "unhealthy_threshold": 2, "healthy_threshold": 2,
        "http_health_check": {"path": "/healthz"},
    }]);
    let mut raw = static_cluster("tcp", &[tcp.addr, refused]);
    raw["health_checks"] = json!([{
        "timeout": "1s", "interval": "0.05s", "unhealthy_threshold": 1, "healthy_threshold": 1,
        "tcp_health_check": {"send": {"text": "70696e67"}, "receive": [{"text": "70696e67"}]},
    }]);
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "http"}}])),
            json!({}),
        )],
        vec![http, raw],
    ))
    .await;
    // The first round ran before the cluster took traffic.
    assert_eq!(
        health_flags(&proxy, "http", flaky.addr).await,
        "/failed_active_hc"
    );
    assert_eq!(
        health_flags(&proxy, "tcp", refused).await,
        "/failed_active_hc"
    );
    assert_eq!(health_flags(&proxy, "tcp", tcp.addr).await, "healthy");
    let mut c = client(&proxy).await;
    for _ in 0..10 {
        let r = c.get("h", "/", &[]).await.expect("reply");
        assert_eq!((r.status.as_u16(), r.backend()), (200, "good"));
    }
    flaky.fail_next(0, 503);
    assert_eventually!(
        health_flags(&proxy, "http", flaky.addr).await == "healthy",
        "back after healthy_threshold passing checks"
    );
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        seen.insert(
            c.get("h", "/", &[])
                .await
                .expect("reply")
                .backend()
                .to_owned(),
        );
    }
    assert!(seen.contains("flaky"), "{seen:?}");
    flaky.fail_next(usize::MAX, 503);
    assert_eventually!(
        health_flags(&proxy, "http", flaky.addr).await == "/failed_active_hc",
        "out again after unhealthy_threshold failures"
    );
    assert!(
        metric(
            &proxy,
            "weft_health_check_failure_total{cluster_name=\"http\"}"
        )
        .await
            >= 3.0
    );
}

const RL_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

/// A local rate limit config: `max` tokens, refilled by `max` every `fill`, enabled and
/// enforced for every request.
fn rate_limit(max: u32, fill: &str, enforced: f64) -> Value {
    json!({
        "@type": RL_TYPE, "stat_prefix": "rl",
        "token_bucket": {"max_tokens": max, "tokens_per_fill": max, "fill_interval": fill},
        "filter_enabled": {"default_value": {"numerator": 100}, "runtime_key": "rl_enabled"},
        "filter_enforced": {"default_value": per_million(enforced), "runtime_key": "rl_enforced"},
        "response_headers_to_add": [{"header": {"key": "x-rl", "value": "limited"}}],
        "request_headers_to_add_when_not_enforced": [{"header": {"key": "x-rl-shadow", "value": "over"}}],
    })
}

#[tokio::test]
async fn local_rate_limits_answer_429_rl_per_route_and_per_connection() {
    let b = EchoServer::start("b").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let per_route = |cfg: Value| json!({"envoy.filters.http.local_ratelimit": cfg});
    let routes = any_host(json!([
        {"match": {"prefix": "/limited"}, "route": {"cluster": "b"},
         "typed_per_filter_config": per_route(rate_limit(2, "60s", 100.0))},
        {"match": {"prefix": "/shadow"}, "route": {"cluster": "b"},
         "typed_per_filter_config": per_route(rate_limit(1, "60s", 0.0))},
        {"match": {"prefix": "/refill"}, "route": {"cluster": "b"},
         "typed_per_filter_config": per_route(rate_limit(1, "0.2s", 100.0))},
        {"match": {"prefix": "/free"}, "route": {"cluster": "b"},
         "typed_per_filter_config": {"envoy.filters.http.local_ratelimit": {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": true}}},
        {"match": {"prefix": "/"}, "route": {"cluster": "b"}},
    ]));
    let hcm = with_log(
        json!({"http_filters": [
            {"name": "envoy.filters.http.local_ratelimit", "typed_config": rate_limit(3, "60s", 100.0)},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ]}),
        &log,
    );
    let net_limit = json!({"name": "envoy.filters.network.local_ratelimit", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": "tcp_rl", "token_bucket": {"max_tokens": 2, "fill_interval": "60s"},
    }});
    let tcp_echo = weft_testkit::TcpEcho::start("t").await;
    let tcp = json!({
        "name": "tcp", "address": crate::address("127.0.0.1:0".parse().expect("addr")),
        "filter_chains": [{"filters": [net_limit, {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "tcp", "cluster": "t"}}]}],
    });
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, hcm), tcp],
        vec![
            static_cluster("b", &[b.addr]),
            static_cluster("t", &[tcp_echo.addr]),
        ],
    ))
    .await;
    let mut c = client(&proxy).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = c.get("h", "/", &[]).await.expect("reply");
        if r.status == 429 {
            assert_eq!(
                (r.text().as_str(), r.header("x-rl")),
                ("local_rate_limited", "limited")
            );
        }
        statuses.push(r.status.as_u16());
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429],
        "the listener's bucket of 3"
    );
    let limited: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(
                c.get("h", "/limited", &[])
                    .await
                    .expect("reply")
                    .status
                    .as_u16(),
            );
        }
        v
    };
    assert_eq!(limited, [200, 200, 429], "the route's own bucket of 2");
    for _ in 0..5 {
        assert_eq!(c.get("h", "/free", &[]).await.expect("reply").status, 200);
    }
    // Enabled but not enforced: requests pass, marked.
    let r = c.get("h", "/shadow", &[]).await.expect("reply");
    assert_eq!(r.json()["headers"]["x-rl-shadow"], Value::Null);
    let r = c.get("h", "/shadow", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), &r.json()["headers"]["x-rl-shadow"]),
        (200, &json!("over"))
    );
    // The bucket refills.
    assert_eq!(c.get("h", "/refill", &[]).await.expect("reply").status, 200);
    assert_eq!(c.get("h", "/refill", &[]).await.expect("reply").status, 429);
    assert_eventually!(
        c.get("h", "/refill", &[]).await.expect("reply").status == 200,
        "refilled after fill_interval"
    );
    assert_eventually!(
        read_log(&log)
            .iter()
            .any(|l| l == "429 RL local_rate_limited"),
        "RL in the access log"
    );
    assert!(
        metric(
            &proxy,
            "weft_http_local_rate_limited_total{listener=\"in\"}"
        )
        .await
            >= 4.0
    );

    // TCP: two connections get through, the third is closed at once.
    let tcp_addr = proxy.listener_addr("tcp").expect("bound");
    for i in 0..3 {
        let mut s = tokio::net::TcpStream::connect(tcp_addr)
            .await
            .expect("connect");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = s.write_all(b"ping").await;
        let mut buf = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("answered or closed in time");
        if i < 2 {
            assert_eq!(
                (read.expect("read"), &buf),
                (4, b"ping"),
                "connection {i} proxied"
            );
        } else {
            assert!(
                matches!(read, Ok(0) | Err(_)),
                "connection {i} closed: {read:?}"
            );
        }
    }
    assert_eq!(
        metric(
            &proxy,
            "weft_downstream_cx_rate_limited_total{listener=\"tcp\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn mirrors_copy_requests_without_delaying_or_failing_the_original() {
    let main = EchoServer::start("main").await;
    let shadow = EchoServer::start("shadow").await;
    let hang = FaultyServer::start(Misbehaviour::NeverAnswer).await;
    let refused = weft_testkit::refused_addr().await;
    let mirror = |cluster: &str, pct: f64| json!({"cluster": cluster, "runtime_fraction": {"default_value": per_million(pct)}});
    let routes = any_host(json!([
        {"match": {"prefix": "/all"}, "route": {"cluster": "main", "request_mirror_policies": [mirror("shadow", 100.0)]}},
        {"match": {"prefix": "/half"}, "route": {"cluster": "main", "request_mirror_policies": [mirror("shadow", 50.0)]}},
        {"match": {"prefix": "/bad"}, "route": {"cluster": "main", "timeout": "10s", "request_mirror_policies": [mirror("hang", 100.0), mirror("refused", 100.0)]}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![
            static_cluster("main", &[main.addr]),
            static_cluster("shadow", &[shadow.addr]),
            static_cluster("hang", &[hang.addr]),
            static_cluster("refused", &[refused]),
        ],
    ))
    .await;
    let mut c = client(&proxy).await;
    for _ in 0..5 {
        let r = c.get("h.example:8080", "/all", &[]).await.expect("reply");
        assert_eq!((r.status.as_u16(), r.backend()), (200, "main"));
    }
    let body = Bytes::from(vec![b'x'; 10 * 1024]);
    let r = c
        .send(request("POST", "h.example", "/all", &[], body, false).expect("req"))
        .await
        .expect("reply");
    assert_eq!(r.json()["body_len"], 10 * 1024);
    assert_eventually!(
        shadow.requests() == 6,
        "every copy arrived: {}",
        shadow.requests()
    );
    assert_eq!(main.requests(), 6);

    // 50% over 400 requests (σ = 10): 200 ± 60.
    let before = shadow.requests();
    for _ in 0..400 {
        c.get("h", "/half", &[]).await.expect("reply");
    }
    let settled = || shadow.requests() - before;
    let mut last = usize::MAX;
    // Wait until copies stop arriving (bounded), then check the share.
    assert_eventually!(
        {
            let now = settled();
            let stable = now == last;
            last = now;
            stable
        },
        "mirrors settle"
    );
    assert!(
        (140..=260).contains(&settled()),
        "{} of 400 mirrored",
        settled()
    );

    // A shadow that never answers (or refuses) neither delays nor fails the original, and
    // copies in flight are bounded.
    let t = Instant::now();
    for _ in 0..300 {
        let r = c.get("h", "/bad", &[]).await.expect("reply");
        assert_eq!((r.status.as_u16(), r.backend()), (200, "main"));
    }
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "originals were not held by the shadow"
    );
    assert_eventually!(hang.requests() > 0, "copies reached the hanging shadow");
    assert!(
        hang.requests() <= 256,
        "at most 256 copies in flight: {}",
        hang.requests()
    );
    assert!(metric(&proxy, "weft_http_mirror_dropped_total{listener=\"in\"}").await > 0.0);
}

#[tokio::test]
async fn idle_upstream_connections_close_after_the_cluster_idle_timeout() {
    let b = EchoServer::start("b").await;
    let mut cluster = static_cluster("b", &[b.addr]);
    cluster["typed_extension_protocol_options"] = json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "common_http_protocol_options": {"idle_timeout": "0.3s"},
        "explicit_http_config": {"http_protocol_options": {}},
    }});
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "b"}}])),
            json!({}),
        )],
        vec![cluster],
    ))
    .await;
    let mut c = client(&proxy).await;
    assert_eq!(c.get("h", "/", &[]).await.expect("reply").status, 200);
    assert_eq!(c.get("h", "/", &[]).await.expect("reply").status, 200);
    assert_eq!(b.connections(), 1, "reused while fresh");
    assert_eventually!(
        metric(&proxy, "weft_upstream_cx_active{cluster_name=\"b\"}").await == 0.0,
        "the idle connection was closed"
    );
    assert_eq!(c.get("h", "/", &[]).await.expect("reply").status, 200);
    assert_eq!(
        b.connections(),
        2,
        "a new connection after the idle timeout"
    );
}

#[tokio::test]
async fn gateway_failures_eject_on_their_own_counter() {
    let good = EchoServer::start("good").await;
    let bad = EchoServer::start_failing("bad", 503).await;
    let mut cluster = static_cluster("c", &[good.addr, bad.addr]);
    // consecutive_5xx 0 never trips (Envoy); the gateway detector is enforced here.
    cluster["outlier_detection"] = json!({
        "consecutive_5xx": 0, "consecutive_gateway_failure": 2,
        "enforcing_consecutive_gateway_failure": 100,
        "interval": "1s", "base_ejection_time": "30s", "max_ejection_percent": 50,
    });
    let routes = any_host(
        json!([{"match": {"prefix": "/"}, "route": {"cluster": "c", "retry_policy": previous_hosts_retry("5xx")}}]),
    );
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![cluster],
    ))
    .await;
    let mut c = client(&proxy).await;
    for _ in 0..10 {
        let r = c.get("h", "/", &[]).await.expect("reply");
        assert_eq!((r.status.as_u16(), r.backend()), (200, "good"));
    }
    assert_eq!(bad.requests(), 2, "ejected after two gateway failures");
    assert_eq!(
        health_flags(&proxy, "c", bad.addr).await,
        "/failed_outlier_check"
    );
}

/// POSTs 5 bytes, one every 150 ms, and returns the status and the body length the
/// backend reports.
async fn slow_upload(proxy: &ProxyHandle) -> (u16, Value) {
    let (tx, body) = weft_testkit::channel_body();
    let req = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "h")
        .header("content-length", "5")
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
    let feed = tokio::spawn(async move {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let _ = tx
                .send(hyper::body::Frame::data(Bytes::from_static(b"x")))
                .await;
        }
    });
    let resp = h1.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    feed.await.expect("feed");
    (
        status,
        serde_json::from_slice::<Value>(&body).unwrap_or_default()["body_len"].clone(),
    )
}

#[tokio::test]
async fn response_bodies_outlast_the_idle_timeout_while_bytes_flow() {
    // An upstream that sends its chunked body in 8 pieces 80 ms apart (~640 ms in all):
    // each frame resets the 0.4 s stream idle timer, so the body arrives whole even though
    // it takes longer than the timer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.expect("read");
            assert!(n > 0, "client closed before its request head");
            head.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .expect("write head");
        for i in 0..8 {
            tokio::time::sleep(Duration::from_millis(80)).await;
            s.write_all(format!("1\r\n{i}\r\n").as_bytes())
                .await
                .expect("write chunk");
        }
        s.write_all(b"0\r\n\r\n").await.expect("write end");
        // Keep the connection open until the proxy is done with it.
        let _ = s.read(&mut buf).await;
    });
    let routes = any_host(
        json!([{"match": {"prefix": "/"}, "route": {"cluster": "drip", "timeout": "0s"}}]),
    );
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            routes,
            json!({"stream_idle_timeout": "0.4s"}),
        )],
        vec![static_cluster("drip", &[addr])],
    ))
    .await;
    let mut c = client(&proxy).await;
    let r = c.get("h", "/", &[]).await.expect("reply");
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "01234567"));
}

#[tokio::test]
async fn uploads_outlast_route_and_idle_timeouts_while_bytes_flow() {
    let b = EchoServer::start("b").await;
    // The route timer starts when the request has arrived; each body byte resets the
    // stream idle timer. The upload (~750 ms) is longer than both.
    let routes =
        any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "b", "timeout": "0.3s"}}]));
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            routes,
            json!({"stream_idle_timeout": "0.4s"}),
        )],
        vec![static_cluster("b", &[b.addr])],
    ))
    .await;
    assert_eq!(slow_upload(&proxy).await, (200, json!(5)));
}

/// Reads from `s` until a request head has arrived (or the peer goes).
async fn read_request_head(s: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Backends for an upload the original request stops reading: a primary that answers 413
/// to the head alone, never reads the body and keeps its socket, and a shadow that reads
/// slowly and reports everything it got once its connection ends.
pub(crate) struct AbandonedUpload {
    pub primary: std::net::SocketAddr,
    pub shadow: std::net::SocketAddr,
    seen: tokio::sync::oneshot::Receiver<Vec<u8>>,
}

/// What a client and the shadow saw of an abandoned upload.
#[derive(Debug)]
pub(crate) struct UploadSeen {
    pub response: String,
    /// The client's upload ended early with an error: the proxy closed the connection.
    pub upload_cut: bool,
    /// Everything the shadow got.
    pub shadow: Vec<u8>,
}

impl AbandonedUpload {
    pub(crate) async fn start() -> AbandonedUpload {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpListener;
        let primary = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let primary_addr = primary.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut s, _)) = primary.accept().await {
                read_request_head(&mut s).await;
                let _ = s
                    .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n")
                    .await;
                held.push(s);
            }
        });
        let shadow = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let shadow_addr = shadow.local_addr().expect("addr");
        let (seen_tx, seen) = tokio::sync::oneshot::channel::<Vec<u8>>();
        tokio::spawn(async move {
            let Ok((mut s, _)) = shadow.accept().await else {
                return;
            };
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                tokio::time::sleep(Duration::from_millis(2)).await;
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = seen_tx.send(got);
        });
        AbandonedUpload {
            primary: primary_addr,
            shadow: shadow_addr,
            seen,
        }
    }

    /// A bootstrap routing everything to the primary, mirrored to the shadow, with a route
    /// timeout (120 s) far beyond the tests' guards: a copy that waited for the rest of the
    /// body would only give up then.
    pub(crate) fn bootstrap(&self) -> Value {
        let routes = any_host(json!([{"match": {"prefix": "/"}, "route": {
            "cluster": "primary", "timeout": "120s",
            "request_mirror_policies": [{"cluster": "shadow"}]}}]));
        bootstrap(
            vec![http_listener("in", routes, json!({}))],
            vec![
                static_cluster("primary", &[self.primary]),
                static_cluster("shadow", &[self.shadow]),
            ],
        )
    }

    /// Sends a large chunked upload (bounded at 64 MiB, paced at about 8 MB/s so the
    /// client has read the answer before a proxy closing on unread bytes resets the
    /// connection) to `proxy`; each wait is bounded by a 30 s guard (far below the route
    /// timeout).
    pub(crate) async fn run(self, proxy: std::net::SocketAddr) -> UploadSeen {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let guard = Duration::from_secs(30);
        let client = tokio::net::TcpStream::connect(proxy)
            .await
            .expect("connect");
        let (mut rd, mut wr) = client.into_split();
        let upload = tokio::spawn(async move {
            wr.write_all(b"POST /upload HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n")
                .await?;
            let chunk = [b"4000\r\n".as_slice(), &[b'x'; 0x4000], b"\r\n"].concat();
            for _ in 0..4096 {
                wr.write_all(&chunk).await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            wr.write_all(b"0\r\n\r\n").await
        });
        // Up to the end of the connection: EOF, or a reset (Envoy resets it).
        let mut response = Vec::new();
        let _ = tokio::time::timeout(guard, rd.read_to_end(&mut response))
            .await
            .expect("the client is answered and sees the connection end");
        let written = tokio::time::timeout(guard, upload)
            .await
            .expect("the upload stops: the proxy closed the connection")
            .expect("upload task");
        let shadow = tokio::time::timeout(guard, self.seen)
            .await
            .expect("the shadow's connection is closed")
            .expect("shadow report");
        UploadSeen {
            response: String::from_utf8_lossy(&response).into_owned(),
            upload_cut: written.is_err(),
            shadow,
        }
    }
}

/// Whether `bytes` hold the end of a chunked body.
pub(crate) fn has_last_chunk(bytes: &[u8]) -> bool {
    bytes.windows(5).any(|w| w == b"0\r\n\r\n")
}

#[tokio::test]
async fn a_mirror_lets_go_of_a_body_the_original_stopped_reading() {
    let backends = AbandonedUpload::start().await;
    let proxy = start(&backends.bootstrap()).await;
    let seen = backends
        .run(proxy.listener_addr("in").expect("bound"))
        .await;
    assert!(
        seen.response.starts_with("HTTP/1.1 413"),
        "the primary's answer: {}",
        seen.response
    );
    assert!(
        seen.response.contains("connection: close"),
        "{}",
        seen.response
    );
    // The proxy released the connection (it is closed, not just shut for writing): the
    // client's upload fails instead of stalling on a socket nobody reads.
    assert!(seen.upload_cut, "the whole upload was taken");
    // The copy was cut, never ended: no terminating chunk reached the shadow.
    assert!(
        !has_last_chunk(&seen.shadow),
        "the shadow got a complete request ({} bytes)",
        seen.shadow.len()
    );
}

#[tokio::test]
async fn a_mirror_stuck_on_an_unread_upstream_is_cut_when_the_original_stops_reading() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    let guard = Duration::from_secs(30);
    // The primary takes 256 KiB of the body, then answers 413 and reads no more.
    let primary = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let primary_addr = primary.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = primary.accept().await {
            let mut taken = 0;
            let mut buf = vec![0u8; 64 * 1024];
            while taken < 256 << 10 {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => taken += n,
                }
            }
            let _ = s
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n")
                .await;
            held.push(s);
        }
    });
    // An HTTP/2 shadow that never reads the copy's body, so never opens its flow-control
    // window past 64 KiB, and never answers: the copy stalls with its body unpolled.
    let shadow = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let shadow_addr = shadow.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = shadow.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let _unread = req;
                        std::future::pending::<
                            Result<http::Response<String>, std::convert::Infallible>,
                        >()
                        .await
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .initial_stream_window_size(65_535)
                        .initial_connection_window_size(65_535)
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
            });
        }
    });
    let mut shadow_cluster = static_cluster("shadow", &[shadow_addr]);
    shadow_cluster["typed_extension_protocol_options"] = json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }});
    let routes = any_host(json!([{"match": {"prefix": "/"}, "route": {
        "cluster": "primary", "timeout": "120s",
        "request_mirror_policies": [{"cluster": "shadow"}]}}]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![static_cluster("primary", &[primary_addr]), shadow_cluster],
    ))
    .await;
    let client = tokio::net::TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let (mut rd, mut wr) = client.into_split();
    tokio::spawn(async move {
        wr.write_all(b"POST /upload HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n")
            .await?;
        let chunk = [b"4000\r\n".as_slice(), &[b'x'; 0x4000], b"\r\n"].concat();
        for _ in 0..4096 {
            wr.write_all(&chunk).await?;
        }
        wr.write_all(b"0\r\n\r\n").await
    });
    let mut response = Vec::new();
    tokio::time::timeout(guard, rd.read_to_end(&mut response))
        .await
        .expect("the client is answered and sees the connection end")
        .expect("read");
    assert!(
        response.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    // The stalled copy is reset rather than left until the route timeout.
    assert_eventually!(@timeout guard,
        metric(&proxy, "weft_upstream_rq_active{cluster_name=\"shadow\"}").await == 0.0,
        "the copy is cut"
    );
}

#[tokio::test]
async fn a_mirror_gets_the_whole_body_of_a_retried_request() {
    use tokio::net::{TcpListener, TcpStream};
    let main = EchoServer::start("main").await;
    let shadow = EchoServer::start("shadow").await;
    // The first connection is reset once its head is read; later ones reach `main`.
    let flaky = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let flaky_addr = flaky.local_addr().expect("addr");
    let main_addr = main.addr;
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut s, _)) = flaky.accept().await {
            if std::mem::take(&mut first) {
                read_request_head(&mut s).await;
                // Closed with the body unread: the proxy sees a reset.
                drop(s);
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut up) = TcpStream::connect(main_addr).await {
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                }
            });
        }
    });
    let routes = any_host(json!([{"match": {"prefix": "/"}, "route": {
        "cluster": "flaky",
        "retry_policy": {"retry_on": "reset", "num_retries": 1},
        "request_mirror_policies": [{"cluster": "shadow"}]}}]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![
            static_cluster("flaky", &[flaky_addr]),
            static_cluster("shadow", &[shadow.addr]),
        ],
    ))
    .await;
    let len = 256 * 1024;
    let mut c = client(&proxy).await;
    let r = c
        .send(
            request(
                "POST",
                "h",
                "/upload",
                &[],
                Bytes::from(vec![b'x'; len]),
                false,
            )
            .expect("req"),
        )
        .await
        .expect("reply");
    assert_eq!((r.status.as_u16(), r.backend()), (200, "main"));
    assert_eq!(r.json()["body_len"], len, "the retry sent the whole body");
    assert_eventually!(shadow.requests() == 1, "the copy arrived");
    let copy = shadow.last_request().expect("the copy");
    assert_eq!(copy["body_len"], len, "the copy got the whole body");
}

#[tokio::test]
async fn a_refused_connect_is_logged_with_envoys_transport_failure_reason() {
    // A port nobody listens on: bound, then closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    let hcm = json!({"access_log": [{"name": "log", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": log,
        "log_format": {"text_format_source": {"inline_string":
            "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\"\n"}}
    }}]});
    let routes = any_host(json!([{"match": {"prefix": "/"}, "route": {"cluster": "dead"}}]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, hcm)],
        vec![static_cluster("dead", &[dead])],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let r = c.get("h", "/", &[]).await.expect("reply");
    assert_eq!(r.status, 503);
    assert_eventually!(read_log(&log).len() == 1, "one log line");
    assert_eq!(
        read_log(&log)[0],
        "503 UF upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused} \"delayed_connect_error:_Connection_refused\""
    );
}
