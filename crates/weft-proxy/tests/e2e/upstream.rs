//! Clusters, load balancing, pooling and upstream failures.

use crate::{address, any_host, bootstrap, http_listener, start, static_cluster};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use weft_testkit::{EchoServer, HttpClient, assert_eventually, request};

fn to(cluster: &str) -> Value {
    any_host(
        json!([{ "match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "0.5s"} }]),
    )
}

async fn counts(
    c: &mut HttpClient,
    n: usize,
    headers: impl Fn(usize) -> Vec<(String, String)>,
) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for i in 0..n {
        let h = headers(i);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = c.get("h", "/", &h).await.expect("reply");
        assert_eq!(r.status, 200, "{}", r.text());
        *out.entry(r.backend().to_owned()).or_default() += 1;
    }
    out
}

async fn three() -> (Vec<EchoServer>, Vec<SocketAddr>) {
    let mut b = Vec::new();
    for n in ["e1", "e2", "e3"] {
        b.push(EchoServer::start(n).await);
    }
    let addrs = b.iter().map(|s| s.addr).collect();
    (b, addrs)
}

#[tokio::test]
async fn round_robin_alternates_evenly() {
    let (_b, addrs) = three().await;
    let proxy = start(&bootstrap(
        vec![http_listener("in", to("c"), json!({}))],
        vec![static_cluster("c", &addrs)],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let got = counts(&mut c, 30, |_| vec![]).await;
    assert_eq!(
        got.values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10],
        "{got:?}"
    );
}

#[tokio::test]
async fn other_policies_reach_every_endpoint() {
    for policy in ["LEAST_REQUEST", "RANDOM"] {
        let (_b, addrs) = three().await;
        let mut cluster = static_cluster("c", &addrs);
        cluster["lb_policy"] = json!(policy);
        let proxy = start(&bootstrap(
            vec![http_listener("in", to("c"), json!({}))],
            vec![cluster],
        ))
        .await;
        let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
            .await
            .expect("connect");
        let got = counts(&mut c, 90, |_| vec![]).await;
        assert_eq!(got.len(), 3, "{policy}: {got:?}");
    }
}

#[tokio::test]
async fn consistent_hashing_sticks_per_key() {
    for policy in ["RING_HASH", "MAGLEV"] {
        let (_b, addrs) = three().await;
        let mut cluster = static_cluster("c", &addrs);
        cluster["lb_policy"] = json!(policy);
        let routes = any_host(json!([
            { "match": {"prefix": "/"}, "route": {"cluster": "c", "hash_policy": [
                {"header": {"header_name": "x-user"}, "terminal": true},
                {"cookie": {"name": "session"}},
                {"query_parameter": {"name": "u"}},
            ]}}
        ]));
        let proxy = start(&bootstrap(
            vec![http_listener("in", routes, json!({}))],
            vec![cluster],
        ))
        .await;
        let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
            .await
            .expect("connect");
        for key in ["alice", "bob", "carol"] {
            let got = counts(&mut c, 10, |_| vec![("x-user".into(), key.into())]).await;
            assert_eq!(got.len(), 1, "{policy} {key}: {got:?}");
            let got = counts(&mut c, 10, |_| {
                vec![("cookie".into(), format!("a=1; session={key}"))]
            })
            .await;
            assert_eq!(got.len(), 1, "{policy} cookie {key}: {got:?}");
        }
        let spread = counts(&mut c, 60, |i| vec![("x-user".into(), format!("user-{i}"))]).await;
        assert_eq!(spread.len(), 3, "{policy}: {spread:?}");
        let r = c
            .get("h", "/?u=dave", &[])
            .await
            .expect("reply")
            .backend()
            .to_owned();
        for _ in 0..5 {
            assert_eq!(
                c.get("h", "/?u=dave", &[]).await.expect("reply").backend(),
                r
            );
        }
    }
}

#[tokio::test]
async fn weighted_endpoints_and_priorities() {
    let (_b, addrs) = three().await;
    let ep = |a: SocketAddr, w: u32| json!({"endpoint": {"address": address(a)}, "load_balancing_weight": w});
    let cluster = json!({
        "name": "c", "type": "EDS", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "c", "endpoints": [
            {"priority": 0, "lb_endpoints": [ep(addrs[0], 1), ep(addrs[1], 3)]},
            {"priority": 1, "lb_endpoints": [ep(addrs[2], 1)]},
        ]}
    });
    let proxy = start(&bootstrap(
        vec![http_listener("in", to("c"), json!({}))],
        vec![cluster],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let got = counts(&mut c, 40, |_| vec![]).await;
    assert_eq!(
        (got.get("e1"), got.get("e2"), got.get("e3")),
        (Some(&10), Some(&30), None),
        "{got:?}"
    );
}

#[tokio::test]
async fn http1_upstream_connections_are_reused() {
    let b = EchoServer::start("a").await;
    let proxy = start(&bootstrap(
        vec![http_listener("in", to("c"), json!({}))],
        vec![static_cluster("c", &[b.addr])],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    for _ in 0..20 {
        let r = c.get("h", "/", &[]).await.expect("reply");
        assert_eq!(r.json()["version"], "HTTP/1.1");
    }
    assert_eq!(b.requests(), 20);
    assert_eq!(b.connections(), 1, "one keep-alive upstream connection");
    // A bodyless response (204) must also give its connection back.
    for _ in 0..5 {
        assert_eq!(
            c.get("h", "/status/204", &[]).await.expect("reply").status,
            204
        );
    }
    assert_eq!(b.connections(), 1);
}

#[tokio::test]
async fn http2_upstreams_multiplex_one_connection() {
    let b = EchoServer::start("a").await;
    let mut explicit = static_cluster("explicit", &[b.addr]);
    explicit["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}
        }
    });
    let proxy = start(&bootstrap(
        vec![http_listener("in", to("explicit"), json!({}))],
        vec![explicit],
    ))
    .await;
    let addr = proxy.listener_addr("in").expect("bound");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(tokio::spawn(async move {
            let mut c = HttpClient::h1(addr).await.expect("connect");
            c.get("h", "/", &[]).await.expect("reply").json()
        }));
    }
    for t in tasks {
        let seen = t.await.expect("task");
        assert_eq!(seen["version"], "HTTP/2.0");
        assert_eq!(seen["headers"][":authority"], "h");
    }
    assert_eq!(b.connections(), 1, "one multiplexed HTTP/2 connection");

    let legacy = EchoServer::start("legacy").await;
    let mut cluster = static_cluster("legacy", &[legacy.addr]);
    cluster["http2_protocol_options"] = json!({});
    let proxy = start(&bootstrap(
        vec![http_listener("in", to("legacy"), json!({}))],
        vec![cluster],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    assert_eq!(
        c.get("h", "/", &[]).await.expect("reply").json()["version"],
        "HTTP/2.0"
    );
}

#[tokio::test]
async fn failures_map_to_envoy_statuses_and_flags() {
    let slow = EchoServer::start("slow").await;
    // A port that nothing listens on: bind, note it, close.
    let closed: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let empty = json!({"name": "empty", "type": "STATIC", "connect_timeout": "1s", "load_assignment": {"cluster_name": "empty", "endpoints": []}});
    let routes = any_host(json!([
        {"match": {"prefix": "/uh"}, "route": {"cluster": "empty"}},
        {"match": {"prefix": "/uf"}, "route": {"cluster": "closed"}},
        {"match": {"prefix": "/ut"}, "route": {"cluster": "slow", "timeout": "0.1s", "prefix_rewrite": "/delay/3000"}},
        {"match": {"prefix": "/nc"}, "route": {"cluster_header": "x-cluster"}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![
            empty,
            static_cluster("closed", &[closed]),
            static_cluster("slow", &[slow.addr]),
        ],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let r = c.get("h", "/uh", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (503, "no healthy upstream")
    );
    let r = c.get("h", "/uf", &[]).await.expect("reply");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.text(),
        "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
    );
    let r = c.get("h", "/ut", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (504, "upstream request timeout")
    );
    let r = c
        .get("h", "/nc", &[("x-cluster", "nope")])
        .await
        .expect("reply");
    assert_eq!(r.status, 503);
    let r = c
        .get("h", "/nc", &[("x-cluster", "slow")])
        .await
        .expect("reply");
    assert_eq!(r.backend(), "slow");
    // gRPC callers get grpc-status instead of an HTTP error.
    let req = request(
        "POST",
        "h",
        "/uh",
        &[("content-type", "application/grpc")],
        Bytes::new(),
        false,
    )
    .expect("req");
    let r = c.send(req).await.expect("reply");
    assert_eq!((r.status.as_u16(), r.header("grpc-status")), (200, "14"));
}

#[tokio::test]
async fn dns_and_original_dst_clusters() {
    let b = EchoServer::start("a").await;
    let other = EchoServer::start("other").await;
    let dns = |name: &str, kind: &str| {
        json!({
            "name": name, "type": kind, "dns_lookup_family": "V4_ONLY", "connect_timeout": "1s", "dns_refresh_rate": "0.1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "localhost", "port_value": b.addr.port()}}}}]}]}
        })
    };
    let original = json!({
        "name": "orig", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED", "connect_timeout": "1s",
        "original_dst_lb_config": {"use_http_header": true}
    });
    let routes = any_host(json!([
        {"match": {"prefix": "/strict"}, "route": {"cluster": "strict"}},
        {"match": {"prefix": "/logical"}, "route": {"cluster": "logical"}},
        {"match": {"prefix": "/orig"}, "route": {"cluster": "orig"}},
    ]));
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![
            dns("strict", "STRICT_DNS"),
            dns("logical", "LOGICAL_DNS"),
            original,
        ],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    assert_eq!(
        c.get("h", "/strict", &[]).await.expect("reply").backend(),
        "a"
    );
    assert_eq!(
        c.get("h", "/logical", &[]).await.expect("reply").backend(),
        "a"
    );
    let dst = other.addr.to_string();
    assert_eq!(
        c.get("h", "/orig", &[("x-envoy-original-dst-host", &dst)])
            .await
            .expect("reply")
            .backend(),
        "other"
    );
}

#[tokio::test]
async fn endpoint_updates_swap_atomically() {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let proxy = start(&bootstrap(
        vec![http_listener("in", to("c"), json!({}))],
        vec![static_cluster("c", &[a.addr])],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    assert_eq!(c.get("h", "/", &[]).await.expect("reply").backend(), "a");
    let cluster = proxy.clusters().get("c").expect("cluster");
    cluster.set_endpoints(vec![weft_proxy::upstream::Endpoint::new(
        b.addr, None, 1, 0, true, false,
    )]);
    assert_eventually!(
        c.get("h", "/", &[]).await.expect("reply").backend() == "b",
        "traffic moves to b"
    );
}

#[tokio::test]
async fn trailers_pass_end_to_end_over_http2() {
    let b = EchoServer::start("grpc").await;
    let mut cluster = static_cluster("c", &[b.addr]);
    cluster["http2_protocol_options"] = json!({});
    let proxy = start(&bootstrap(
        vec![http_listener("in", to("c"), json!({}))],
        vec![cluster],
    ))
    .await;
    let mut c = HttpClient::h2c(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let req = request(
        "POST",
        "h",
        "/trailers",
        &[("content-type", "application/grpc"), ("te", "trailers")],
        Bytes::new(),
        true,
    )
    .expect("req");
    let r = c.send(req).await.expect("reply");
    assert_eq!(r.text(), "payload");
    let trailers = r.trailers.expect("trailers kept");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-trailer-from"], "grpc");
}

#[tokio::test]
async fn grpc_style_bidirectional_streaming_over_h2() {
    use http_body_util::BodyExt;
    use hyper::body::Frame;
    let b = EchoServer::start("grpc").await;
    let mut cluster = static_cluster("c", &[b.addr]);
    cluster["http2_protocol_options"] = json!({});
    let routes = any_host(
        json!([{ "match": {"prefix": "/", "grpc": {}}, "route": {"cluster": "c", "timeout": "0s"} }]),
    );
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        vec![cluster],
    ))
    .await;
    let stream = tokio::net::TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2c");
    tokio::spawn(conn);
    let (tx, body) = weft_testkit::channel_body();
    let req = http::Request::post("http://svc/echo-body")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .expect("req");
    tx.send(Frame::data(Bytes::from_static(b"msg-1")))
        .await
        .expect("send");
    let resp = sender.send_request(req).await.expect("response head");
    assert_eq!(resp.status(), 200);
    let mut down = resp.into_body();
    // Each message comes back while the request stream is still open.
    for (i, msg) in ["msg-1", "msg-2"].into_iter().enumerate() {
        if i > 0 {
            tx.send(Frame::data(Bytes::from(msg))).await.expect("send");
        }
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), down.frame())
            .await
            .expect("frame in time")
            .expect("frame")
            .expect("ok");
        assert_eq!(frame.into_data().expect("data"), msg);
    }
    drop(tx);
    let rest = down.collect().await.expect("end").to_bytes();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn retries_move_to_other_hosts_on_failures() {
    let good = EchoServer::start("good").await;
    let failing = EchoServer::start_failing("failing", 503).await;
    let closed: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let policy = |on: &str| {
        json!({"retry_on": on, "num_retries": 2, "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
            "host_selection_retry_max_attempts": 5, "retry_back_off": {"base_interval": "0.001s"}})
    };
    let routes = any_host(json!([
        {"match": {"prefix": "/uf"}, "route": {"cluster": "with-closed", "retry_policy": policy("connect-failure")}},
        {"match": {"prefix": "/5xx"}, "route": {"cluster": "with-failing", "retry_policy": policy("5xx")}},
        {"match": {"prefix": "/codes"}, "route": {"cluster": "with-failing", "retry_policy": {"retry_on": "retriable-status-codes", "retriable_status_codes": [503], "num_retries": 3, "retry_back_off": {"base_interval": "0.001s"}}}},
        {"match": {"prefix": "/none"}, "route": {"cluster": "with-failing"}},
        {"match": {"prefix": "/exhausted"}, "route": {"cluster": "only-failing", "retry_policy": policy("5xx")}},
    ]));
    let clusters = vec![
        static_cluster("with-closed", &[closed, good.addr]),
        static_cluster("with-failing", &[failing.addr, good.addr]),
        static_cluster("only-failing", &[failing.addr]),
    ];
    let proxy = start(&bootstrap(
        vec![http_listener("in", routes, json!({}))],
        clusters,
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    for path in ["/uf", "/5xx", "/codes"] {
        for _ in 0..10 {
            let r = c.get("h", path, &[]).await.expect("reply");
            assert_eq!((r.status.as_u16(), r.backend()), (200, "good"), "{path}");
        }
    }
    // A request with a body is retried when it was never sent (connect failure).
    for _ in 0..10 {
        let req = request(
            "POST",
            "h",
            "/uf",
            &[],
            Bytes::from_static(b"payload"),
            false,
        )
        .expect("req");
        let r = c.send(req).await.expect("reply");
        assert_eq!(
            (r.status.as_u16(), r.json()["body_len"].as_u64()),
            (200, Some(7))
        );
    }
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..10 {
            v.push(
                c.get("h", "/none", &[])
                    .await
                    .expect("reply")
                    .status
                    .as_u16(),
            );
        }
        v
    };
    assert!(
        statuses.contains(&503),
        "without a retry policy failures reach the client"
    );
    let r = c.get("h", "/exhausted", &[]).await.expect("reply");
    assert_eq!(
        (r.status.as_u16(), r.backend()),
        (503, "failing"),
        "the last attempt's response is returned"
    );
    let stats = crate::stats_text(&proxy).await;
    assert!(
        stats.contains("cluster.only-failing.upstream_rq_retry: 2"),
        "{stats}"
    );
}

#[tokio::test]
async fn routes_and_clusters_swap_atomically_under_open_connections() {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let proxy = start(&bootstrap(
        vec![http_listener("in", to("a"), json!({}))],
        vec![static_cluster("a", &[a.addr])],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    assert_eq!(c.get("h", "/", &[]).await.expect("reply").backend(), "a");

    // What xDS will do: convert new resources with the same TryFroms, then swap them in.
    let next = weft_proxy::ProxyConfig::parse(
        &bootstrap(
            vec![http_listener("in", to("b"), json!({}))],
            vec![static_cluster("b", &[b.addr])],
        )
        .to_string(),
        weft_xds::Format::Json,
    )
    .expect("valid");
    proxy
        .clusters()
        .upsert(next.clusters[0].clone(), proxy.stats())
        .await;
    let weft_proxy::config::NetworkFilter::Http(hcm) = &next.listeners[0].filter_chains[0].filter
    else {
        panic!("http listener")
    };
    let manager = proxy.listeners()[0]
        .http_managers()
        .next()
        .expect("hcm")
        .clone();
    manager.routes.store(hcm.routes.clone());

    // The same keep-alive connection now routes with the new table.
    assert_eq!(c.get("h", "/", &[]).await.expect("reply").backend(), "b");
    proxy.clusters().remove("b");
    assert_eq!(c.get("h", "/", &[]).await.expect("reply").status, 503);
}
