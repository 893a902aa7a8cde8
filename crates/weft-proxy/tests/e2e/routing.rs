//! Routing, local replies, header manipulation and rewrites, over HTTP/1.1 and h2c.

use crate::{any_host, bootstrap, http_listener, start, static_cluster};
use bytes::Bytes;
use serde_json::json;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_testkit::{EchoServer, HttpClient, request};

async fn backends(names: &[&str]) -> Vec<EchoServer> {
    let mut out = Vec::new();
    for n in names {
        out.push(EchoServer::start(n).await);
    }
    out
}

fn route(m: serde_json::Value, cluster: &str) -> serde_json::Value {
    json!({ "match": m, "route": { "cluster": cluster } })
}

/// One routing case: method, host, path, request headers, expected outcome.
pub(crate) type Case = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Want,
);

pub(crate) enum Want {
    Backend(&'static str),
    Status(u16),
}

/// The routing table both the routing test and the Envoy differential test use.
pub(crate) fn routing_table_config() -> serde_json::Value {
    json!({
        "name": "table",
        "virtual_hosts": [
            { "name": "exact", "domains": ["exact.com"], "routes": [route(json!({"prefix": "/"}), "a")] },
            { "name": "suffix", "domains": ["*.suffix.com"], "routes": [route(json!({"prefix": "/"}), "b")] },
            { "name": "prefix", "domains": ["prefix.*"], "routes": [route(json!({"prefix": "/"}), "c")] },
            { "name": "ported", "domains": ["ported.com:8080"], "routes": [route(json!({"prefix": "/"}), "d")] },
            { "name": "matchers", "domains": ["m.com"], "routes": [
                route(json!({"path": "/exact"}), "a"),
                route(json!({"prefix": "/CaseLess", "case_sensitive": false}), "b"),
                route(json!({"safe_regex": {"regex": "/regex/[0-9]+"}}), "c"),
                route(json!({"path_separated_prefix": "/sep"}), "d"),
                route(json!({"prefix": "/hdr-suffix", "headers": [{"name": "x-s", "string_match": {"suffix": "-END", "ignore_case": true}}]}), "b"),
                route(json!({"prefix": "/hdr", "headers": [{"name": "x-exact", "string_match": {"exact": "yes"}}]}), "a"),
                route(json!({"prefix": "/hdr", "headers": [{"name": "x-present", "present_match": true}]}), "b"),
                route(json!({"prefix": "/hdr", "headers": [{"name": "x-range", "range_match": {"start": 10, "end": 20}}]}), "c"),
                route(json!({"prefix": "/hdr", "headers": [{"name": "x-inv", "string_match": {"exact": "no"}, "invert_match": true}]}), "d"),
                route(json!({"prefix": "/q", "query_parameters": [{"name": "v", "string_match": {"exact": "2"}}]}), "a"),
                route(json!({"prefix": "/q", "query_parameters": [{"name": "debug", "present_match": true}]}), "b"),
                route(json!({"prefix": "/grpc", "grpc": {}}), "c"),
                route(json!({"prefix": "/first"}), "a"),
                route(json!({"prefix": "/first"}), "b"),
                route(json!({"prefix": "/method", "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]}), "d"),
            ]},
            { "name": "default", "domains": ["*"], "routes": [route(json!({"prefix": "/only"}), "a")] },
        ]
    })
}

/// Requests against [`routing_table_config`] and what each must reach.
pub(crate) fn routing_cases() -> Vec<Case> {
    use Want::*;
    vec![
        ("GET", "exact.com", "/", vec![], Backend("a")),
        ("GET", "EXACT.com", "/x", vec![], Backend("a")),
        ("GET", "x.suffix.com", "/", vec![], Backend("b")),
        ("GET", "suffix.com", "/", vec![], Status(404)),
        ("GET", "prefix.anything", "/", vec![], Backend("c")),
        ("GET", "ported.com:8080", "/", vec![], Backend("d")),
        ("GET", "ported.com", "/", vec![], Status(404)),
        ("GET", "m.com", "/exact", vec![], Backend("a")),
        ("GET", "m.com", "/exact?x=1", vec![], Backend("a")),
        ("GET", "m.com", "/exact/more", vec![], Status(404)),
        ("GET", "m.com", "/caseless/x", vec![], Backend("b")),
        ("GET", "m.com", "/regex/123", vec![], Backend("c")),
        ("GET", "m.com", "/regex/12a", vec![], Status(404)),
        ("GET", "m.com", "/sep", vec![], Backend("d")),
        ("GET", "m.com", "/sep/x", vec![], Backend("d")),
        ("GET", "m.com", "/separate", vec![], Status(404)),
        (
            "GET",
            "m.com",
            "/hdr-suffix",
            vec![("x-s", "a-end")],
            Backend("b"),
        ),
        (
            "GET",
            "m.com",
            "/hdr",
            vec![("x-exact", "yes")],
            Backend("a"),
        ),
        (
            "GET",
            "m.com",
            "/hdr",
            vec![("x-exact", "no"), ("x-present", "")],
            Backend("b"),
        ),
        (
            "GET",
            "m.com",
            "/hdr",
            vec![("x-range", "15")],
            Backend("c"),
        ),
        ("GET", "m.com", "/hdr", vec![("x-range", "20")], Status(404)),
        ("GET", "m.com", "/hdr", vec![("x-inv", "yes")], Backend("d")),
        ("GET", "m.com", "/hdr", vec![("x-inv", "no")], Status(404)),
        ("GET", "m.com", "/hdr", vec![], Status(404)),
        ("GET", "m.com", "/q?v=2", vec![], Backend("a")),
        ("GET", "m.com", "/q?v=3&debug", vec![], Backend("b")),
        ("GET", "m.com", "/q?v=3", vec![], Status(404)),
        (
            "POST",
            "m.com",
            "/grpc",
            vec![("content-type", "application/grpc")],
            Backend("c"),
        ),
        ("GET", "m.com", "/first", vec![], Backend("a")),
        ("POST", "m.com", "/method", vec![], Backend("d")),
        ("GET", "m.com", "/method", vec![], Status(404)),
        ("GET", "other.org", "/only", vec![], Backend("a")),
        ("GET", "other.org", "/nothing", vec![], Status(404)),
    ]
}

#[tokio::test]
async fn routing_table_matches_like_envoy_over_h1_and_h2c() {
    let b = backends(&["a", "b", "c", "d"]).await;
    let clusters = b
        .iter()
        .map(|s| static_cluster(&s.name, &[s.addr]))
        .collect();
    let route_config = routing_table_config();
    let proxy = start(&bootstrap(
        vec![http_listener("in", route_config, json!({}))],
        clusters,
    ))
    .await;
    let addr = proxy.listener_addr("in").expect("bound");
    use Want::*;
    let cases = routing_cases();
    for h2 in [false, true] {
        let mut client = if h2 {
            HttpClient::h2c(addr).await
        } else {
            HttpClient::h1(addr).await
        }
        .expect("connect");
        for (method, host, path, headers, want) in &cases {
            let req = request(method, host, path, headers, Bytes::new(), h2).expect("request");
            let reply = client.send(req).await.expect("reply");
            let case = format!("h2={h2} {method} {host}{path} {headers:?}");
            match want {
                Backend(name) => {
                    assert_eq!(reply.status, 200, "{case}");
                    assert_eq!(reply.backend(), *name, "{case}");
                }
                Status(code) => {
                    assert_eq!(reply.status, *code, "{case}");
                    assert_eq!(reply.backend(), "", "{case}");
                }
            }
            assert_eq!(reply.header("server"), "weft", "{case}");
        }
    }
}

#[tokio::test]
async fn no_route_is_404_nr_and_grpc_gets_grpc_status() {
    let b = backends(&["a"]).await;
    let routes = json!([route(json!({"prefix": "/a"}), "a")]);
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), json!({}))],
        vec![static_cluster("a", &[b[0].addr])],
    ))
    .await;
    let addr = proxy.listener_addr("in").expect("bound");
    let mut c = HttpClient::h1(addr).await.expect("connect");
    let r = c.get("x", "/nope", &[]).await.expect("reply");
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    let req = request(
        "POST",
        "x",
        "/svc/Method",
        &[("content-type", "application/grpc")],
        Bytes::new(),
        false,
    )
    .expect("req");
    let r = c.send(req).await.expect("reply");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("grpc-status"), "12");
}

#[tokio::test]
async fn weighted_clusters_split_within_tolerance() {
    let b = backends(&["a", "b"]).await;
    let routes = json!([{ "match": {"prefix": "/"}, "route": { "weighted_clusters": { "clusters": [
        {"name": "a", "weight": 75}, {"name": "b", "weight": 25}
    ]}}}]);
    let clusters = b
        .iter()
        .map(|s| static_cluster(&s.name, &[s.addr]))
        .collect();
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), json!({}))],
        clusters,
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let n = 400;
    let mut a = 0;
    for _ in 0..n {
        if c.get("x", "/", &[]).await.expect("reply").backend() == "a" {
            a += 1;
        }
    }
    // 75% of 400 = 300, sigma ~ 8.7: five sigma either side.
    assert!((256..=344).contains(&a), "a got {a} of {n}");
}

#[tokio::test]
async fn redirects_build_envoy_locations() {
    let routes = json!([
        { "match": {"prefix": "/https"}, "redirect": {"https_redirect": true} },
        { "match": {"prefix": "/move/"}, "redirect": {"host_redirect": "new.example", "port_redirect": 8443, "prefix_rewrite": "/moved/", "response_code": "FOUND"} },
        { "match": {"path": "/strip"}, "redirect": {"path_redirect": "/stripped", "strip_query": true, "response_code": "TEMPORARY_REDIRECT"} },
        { "match": {"prefix": "/re/"}, "redirect": {"regex_rewrite": {"pattern": {"regex": "^/re/([a-z]+)/(.*)$"}, "substitution": "/\\2/\\1"}, "response_code": "PERMANENT_REDIRECT"} },
        { "match": {"prefix": "/scheme"}, "redirect": {"scheme_redirect": "https", "response_code": "SEE_OTHER"} },
    ]);
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), json!({}))],
        vec![],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let cases = [
        ("h.com", "/https/x?q=1", 301, "https://h.com/https/x?q=1"),
        ("h.com:80", "/https", 301, "https://h.com/https"),
        (
            "h.com",
            "/move/a/b?k=v",
            302,
            "http://new.example:8443/moved/a/b?k=v",
        ),
        ("h.com", "/strip?x=1", 307, "http://h.com/stripped"),
        ("h.com", "/re/abc/def", 308, "http://h.com/def/abc"),
        ("h.com:8080", "/scheme", 303, "https://h.com:8080/scheme"),
    ];
    for (host, path, status, location) in cases {
        let r = c.get(host, path, &[]).await.expect("reply");
        assert_eq!(
            (r.status.as_u16(), r.header("location")),
            (status, location),
            "{host}{path}"
        );
    }
}

#[tokio::test]
async fn direct_responses_with_bodies_and_headers() {
    let routes = json!([
        { "match": {"prefix": "/tea"}, "direct_response": {"status": 418, "body": {"inline_string": "I'm a teapot"}},
          "response_headers_to_add": [{"header": {"key": "x-kind", "value": "tea"}}] },
        { "match": {"prefix": "/empty"}, "direct_response": {"status": 204} },
    ]);
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), json!({}))],
        vec![],
    ))
    .await;
    let mut c = HttpClient::h2c(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let r = c.get("h", "/tea", &[]).await.expect("reply");
    assert_eq!(r.status, 418);
    assert_eq!(r.text(), "I'm a teapot");
    assert_eq!(r.header("x-kind"), "tea");
    assert_eq!(r.header("content-type"), "text/plain");
    let r = c.get("h", "/empty", &[]).await.expect("reply");
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn header_mutations_apply_at_every_level_and_forwarding_headers_are_set() {
    let b = backends(&["a", "b"]).await;
    let add = |k: &str, v: &str, action: &str| json!({"header": {"key": k, "value": v}, "append_action": action});
    let route_config = json!({
        "name": "rc",
        "request_headers_to_add": [add("x-level", "table", "APPEND_IF_EXISTS_OR_ADD"), add("x-table", "1", "OVERWRITE_IF_EXISTS_OR_ADD")],
        "response_headers_to_add": [add("x-resp-table", "t", "OVERWRITE_IF_EXISTS_OR_ADD")],
        "response_headers_to_remove": ["x-backend-secret"],
        "virtual_hosts": [{
            "name": "vh", "domains": ["*"],
            "request_headers_to_add": [add("x-level", "vhost", "APPEND_IF_EXISTS_OR_ADD")],
            "request_headers_to_remove": ["x-drop-me"],
            "routes": [
                { "match": {"prefix": "/w"}, "route": {"weighted_clusters": {"clusters": [
                    {"name": "b", "weight": 1, "request_headers_to_add": [add("x-level", "weighted", "APPEND_IF_EXISTS_OR_ADD")],
                     "response_headers_to_add": [add("x-resp-weighted", "w", "APPEND_IF_EXISTS_OR_ADD")]}]}}},
                { "match": {"prefix": "/"}, "route": {"cluster": "a"},
                  "request_headers_to_add": [add("x-level", "route", "APPEND_IF_EXISTS_OR_ADD"), add("x-if-absent", "added", "ADD_IF_ABSENT"), add("x-overwrite", "new", "OVERWRITE_IF_EXISTS"), add("x-fmt", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%|%PROTOCOL%|100%%|%REQ(x-drop-me)%", "APPEND_IF_EXISTS_OR_ADD")],
                  "response_headers_to_add": [add("x-resp-route", "r", "APPEND_IF_EXISTS_OR_ADD")] },
            ]
        }]
    });
    let clusters = b
        .iter()
        .map(|s| static_cluster(&s.name, &[s.addr]))
        .collect();
    let hcm = json!({"use_remote_address": true});
    let proxy = start(&bootstrap(
        vec![http_listener("in", route_config, hcm)],
        clusters,
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");

    let r = c
        .get(
            "h",
            "/",
            &[
                ("x-drop-me", "1"),
                ("x-if-absent", "mine"),
                ("x-overwrite", "old"),
                ("x-request-id", "given-id"),
                ("connection", "keep-alive, x-hop"),
                ("x-hop", "1"),
            ],
        )
        .await
        .expect("reply");
    let seen = r.json();
    let h = &seen["headers"];
    assert_eq!(h["x-level"], "route,vhost,table");
    assert_eq!(h["x-table"], "1");
    assert_eq!(h["x-if-absent"], "mine");
    assert_eq!(h["x-overwrite"], "new");
    // Format strings render per request (x-drop-me was removed at the vhost level, but the
    // route level runs first, as in Envoy).
    assert_eq!(h["x-fmt"], "127.0.0.1|HTTP/1.1|100%|1");
    assert_eq!(h["x-drop-me"], serde_json::Value::Null);
    assert_eq!(
        h["x-hop"],
        serde_json::Value::Null,
        "headers named in Connection are hop-by-hop"
    );
    assert_eq!(h["x-request-id"], "given-id");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(r.header("x-resp-route"), "r");
    assert_eq!(r.header("x-resp-table"), "t");
    assert_eq!(r.header("server"), "weft");
    assert!(
        r.header("x-envoy-upstream-service-time")
            .parse::<u64>()
            .is_ok()
    );

    let r = c.get("h", "/w", &[]).await.expect("reply");
    assert_eq!(r.backend(), "b");
    assert_eq!(r.json()["headers"]["x-level"], "weighted,vhost,table");
    assert_eq!(r.header("x-resp-weighted"), "w");
    let id = r.json()["headers"]["x-request-id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert_eq!(id.len(), 36, "generated x-request-id: {id:?}");
}

#[tokio::test]
async fn rewrites_paths_and_hosts() {
    let b = backends(&["a"]).await;
    let a = b[0].addr;
    let routes = json!([
        { "match": {"prefix": "/api/"}, "route": {"cluster": "a", "prefix_rewrite": "/v2/"} },
        { "match": {"prefix": "/re/"}, "route": {"cluster": "a", "regex_rewrite": {"pattern": {"regex": "^/re/(\\d+)$"}, "substitution": "/items/\\1"}} },
        { "match": {"prefix": "/lit"}, "route": {"cluster": "a", "host_rewrite_literal": "literal.example"} },
        { "match": {"prefix": "/auto"}, "route": {"cluster": "dns", "auto_host_rewrite": true} },
    ]);
    let dns = json!({
        "name": "dns", "type": "STRICT_DNS", "dns_lookup_family": "V4_ONLY", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "dns", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "localhost", "port_value": a.port()}}}}]}]}
    });
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), json!({}))],
        vec![static_cluster("a", &[a]), dns],
    ))
    .await;
    let mut c = HttpClient::h1(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let r = c
        .get("h", "/api/users?x=1", &[])
        .await
        .expect("reply")
        .json();
    assert_eq!(r["path"], "/v2/users?x=1");
    assert_eq!(r["headers"]["x-envoy-original-path"], "/api/users?x=1");
    let r = c.get("h", "/re/42", &[]).await.expect("reply").json();
    assert_eq!(r["path"], "/items/42");
    let r = c.get("h", "/lit", &[]).await.expect("reply").json();
    assert_eq!(r["headers"]["host"], "literal.example");
    let r = c.get("h", "/auto", &[]).await.expect("reply").json();
    assert_eq!(r["headers"]["host"], "localhost");
}

#[tokio::test]
async fn response_bodies_stream_without_buffering() {
    let b = backends(&["a"]).await;
    let routes = json!([route(json!({"prefix": "/"}), "a")]);
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), json!({}))],
        vec![static_cluster("a", &[b[0].addr])],
    ))
    .await;
    let addr = proxy.listener_addr("in").expect("bound");
    for h2 in [false, true] {
        let mut c = if h2 {
            HttpClient::h2c(addr).await
        } else {
            HttpClient::h1(addr).await
        }
        .expect("connect");
        let resp = c
            .send_streaming(request("GET", "h", "/hold", &[], Bytes::new(), h2).expect("req"))
            .await
            .expect("head");
        let mut body = resp.into_body();
        use http_body_util::BodyExt;
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
            .await
            .expect("first chunk arrives while the backend still holds the rest")
            .expect("frame")
            .expect("ok");
        assert_eq!(first.into_data().expect("data"), "first\n");
        b[0].release();
        let rest = body.collect().await.expect("rest").to_bytes();
        assert_eq!(rest, "second\n");
    }
}

#[tokio::test]
async fn request_bodies_stream_without_buffering() {
    let b = backends(&["a"]).await;
    let routes = json!([route(json!({"prefix": "/"}), "a")]);
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), json!({}))],
        vec![static_cluster("a", &[b[0].addr])],
    ))
    .await;
    let addr: SocketAddr = proxy.listener_addr("in").expect("bound");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"POST /echo-body HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello\n\r\n").await.expect("write");
    // The echo backend streams the body back as it arrives: seeing "hello" before the
    // request body has ended proves neither direction was buffered whole.
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !String::from_utf8_lossy(&got).contains("hello") {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("echo before end of request")
            .expect("read");
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"6\r\nworld\n\r\n0\r\n\r\n")
        .await
        .expect("write");
    while !String::from_utf8_lossy(&got).contains("world") {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("rest")
            .expect("read");
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn host_ports_strip_as_configured_and_unvalidated_clusters_503() {
    let b = backends(&["a"]).await;
    let route_config = |validate: bool| {
        json!({
            "name": "rc",
            "validate_clusters": validate,
            "virtual_hosts": [{ "name": "vh", "domains": ["h.com"], "routes": [
                route(json!({"prefix": "/missing"}), "missing"),
                route(json!({"prefix": "/"}), "a"),
            ]}]
        })
    };
    let any = start(&bootstrap(
        vec![http_listener(
            "in",
            route_config(false),
            json!({"strip_any_host_port": true}),
        )],
        vec![static_cluster("a", &[b[0].addr])],
    ))
    .await;
    let mut c = HttpClient::h1(any.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let r = c.get("h.com:1234", "/", &[]).await.expect("reply");
    assert_eq!(r.backend(), "a");
    assert_eq!(r.json()["headers"]["host"], "h.com");
    let r = c.get("h.com", "/missing", &[]).await.expect("reply");
    assert_eq!(r.status, 503, "unknown cluster at request time is 503 NC");

    let matching = start(&bootstrap(
        vec![http_listener(
            "in",
            route_config(true),
            json!({"strip_matching_host_port": true}),
        )],
        vec![
            static_cluster("a", &[b[0].addr]),
            static_cluster("missing", &[b[0].addr]),
        ],
    ))
    .await;
    let addr = matching.listener_addr("in").expect("bound");
    let mut c = HttpClient::h1(addr).await.expect("connect");
    let r = c
        .get(&format!("h.com:{}", addr.port()), "/", &[])
        .await
        .expect("reply");
    assert_eq!(r.backend(), "a", "the listener's own port is stripped");
    let r = c.get("h.com:1234", "/", &[]).await.expect("reply");
    assert_eq!(
        r.status, 404,
        "other ports are kept, so the domain does not match"
    );
}

/// Sends a raw HTTP/1.1 upgrade request and returns the response head and the stream.
async fn upgrade(addr: SocketAddr, path: &str) -> (String, tokio::net::TcpStream) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut byte))
            .await
            .expect("head in time")
            .expect("read");
        assert!(
            n > 0,
            "closed before the response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    (String::from_utf8_lossy(&head).to_lowercase(), s)
}

#[tokio::test]
async fn websocket_upgrades_tunnel_when_enabled() {
    let b = backends(&["ws"]).await;
    let routes = json!([
        { "match": {"prefix": "/off"}, "route": {"cluster": "ws", "upgrade_configs": [{"upgrade_type": "websocket", "enabled": false}]} },
        { "match": {"prefix": "/"}, "route": {"cluster": "ws", "timeout": "0s"} },
    ]);
    let hcm = json!({"upgrade_configs": [{"upgrade_type": "websocket"}]});
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes.clone()), hcm)],
        vec![static_cluster("ws", &[b[0].addr])],
    ))
    .await;
    let addr = proxy.listener_addr("in").expect("bound");
    let (head, mut s) = upgrade(addr, "/chat").await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("upgrade: websocket") && head.contains("x-backend: ws"),
        "{head}"
    );
    for msg in [&b"hello"[..], b"again"] {
        s.write_all(msg).await.expect("write");
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut buf))
            .await
            .expect("echo")
            .expect("read");
        assert_eq!(buf, msg);
    }
    let (head, _) = upgrade(addr, "/off").await;
    assert!(head.starts_with("http/1.1 403"), "route disables: {head}");

    let plain = start(&bootstrap(
        vec![http_listener("in", any_host(routes), json!({}))],
        vec![static_cluster("ws", &[b[0].addr])],
    ))
    .await;
    let (head, _) = upgrade(plain.listener_addr("in").expect("bound"), "/chat").await;
    assert!(
        head.starts_with("http/1.1 403"),
        "not enabled on the HCM: {head}"
    );
}

/// A raw upgrade backend: answers `101` to a head with `Upgrade` (then echoes every byte
/// after the head) and an empty `200` to any other; reports each head it got.
pub(crate) async fn raw_upgrade_backend()
-> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (heads, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let end = loop {
                    if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                let upgrade = head.contains("\r\nupgrade:");
                let _ = heads.send(head);
                if !upgrade {
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let answer = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n";
                if s.write_all(answer).await.is_err() || s.write_all(&got[end..]).await.is_err() {
                    return;
                }
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Reads exactly `n` bytes (bounded by 5 s).
pub(crate) async fn read_n(s: &mut tokio::net::TcpStream, n: usize) -> String {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("bytes in time")
        .expect("read");
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads a response head byte by byte, so what follows it stays unread.
async fn read_head(s: &mut tokio::net::TcpStream) -> String {
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        head.push_str(&read_n(s, 1).await);
    }
    head
}

#[tokio::test]
async fn an_upgrade_request_body_leads_the_tunnel() {
    let (backend, mut heads) = raw_upgrade_backend().await;
    let routes = json!([
        { "match": {"prefix": "/off"}, "route": {"cluster": "ws", "upgrade_configs": [{"upgrade_type": "websocket", "enabled": false}]} },
        { "match": {"prefix": "/"}, "route": {"cluster": "ws"} },
    ]);
    let hcm = json!({"upgrade_configs": [{"upgrade_type": "websocket"}]});
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), hcm)],
        vec![static_cluster("ws", &[backend])],
    ))
    .await;
    let addr = proxy.listener_addr("in").expect("bound");
    let head_of = |s: &str| s.split("\r\n\r\n").next().unwrap_or("").to_lowercase();

    // As in Envoy, the bytes after the head go upstream unparsed, in the tunnel: here a
    // Content-Length body whose second half is still unsent when the `101` comes back.
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 10\r\n\r\nhello")
        .await
        .expect("write");
    let head = read_head(&mut s).await;
    assert!(head_of(&head).starts_with("http/1.1 101"), "{head}");
    let upstream_head = heads.recv().await.expect("upstream head");
    assert!(
        upstream_head.contains("content-length: 10\r\n"),
        "{upstream_head}"
    );
    assert_eq!(read_n(&mut s, 5).await, "hello");
    for msg in ["world", "again"] {
        s.write_all(msg.as_bytes()).await.expect("write");
        assert_eq!(read_n(&mut s, msg.len()).await, msg);
    }

    // A chunked body too goes through as its raw bytes, the upstream head unframed.
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let chunked = "5\r\nhello\r\n0\r\n\r\n";
    s.write_all(format!("POST /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}").as_bytes())
        .await
        .expect("write");
    let head = read_head(&mut s).await;
    assert!(head_of(&head).starts_with("http/1.1 101"), "{head}");
    let upstream_head = heads.recv().await.expect("upstream head");
    assert!(
        !upstream_head.contains("transfer-encoding") && !upstream_head.contains("content-length"),
        "{upstream_head}"
    );
    assert_eq!(read_n(&mut s, chunked.len()).await, chunked);

    // Not upgraded, the connection cannot find the next request after such a head: the
    // answer says `connection: close` and the connection ends.
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /off HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhelloGET /off HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .expect("write");
    let out = crate::read_to_close(&mut s).await.to_lowercase();
    assert!(out.starts_with("http/1.1 403"), "{out}");
    assert!(out.contains("connection: close"), "{out}");
    assert_eq!(out.matches("http/1.1").count(), 1, "one answer: {out}");
}

#[tokio::test]
async fn an_h2c_upgrade_request_is_served_as_http1() {
    let b = backends(&["a"]).await;
    let proxy = start(&bootstrap(
        vec![http_listener(
            "in",
            any_host(json!([route(json!({"prefix": "/"}), "a")])),
            json!({}),
        )],
        vec![static_cluster("a", &[b[0].addr])],
    ))
    .await;
    // What `curl --http2 -d hello http://...` sends: Envoy ignores the upgrade.
    let mut s = tokio::net::TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    let h2c = "POST /form HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello";
    for _ in 0..2 {
        s.write_all(h2c.as_bytes()).await.expect("write");
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            head.push_str(&read_n(&mut s, 1).await);
        }
        let head = head.to_lowercase();
        let len = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a content-length: {head}"));
        let got = head + &read_n(&mut s, len).await;
        assert!(got.starts_with("http/1.1 200"), "{got}");
        assert!(got.contains("\"body_len\":5"), "{got}");
        assert!(
            !got.contains("\"upgrade\"") && !got.contains("http2-settings"),
            "hop-by-hop upgrade headers stripped: {got}"
        );
    }
}

#[tokio::test]
async fn expect_100_continue_is_answered_and_the_body_forwarded() {
    let b = backends(&["a"]).await;
    let routes = json!([route(json!({"prefix": "/"}), "a")]);
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), json!({}))],
        vec![static_cluster("a", &[b[0].addr])],
    ))
    .await;
    let mut s = tokio::net::TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    s.write_all(
        b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .expect("write");
    let mut buf = vec![0u8; 25];
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("100 in time")
        .expect("read");
    assert_eq!(
        String::from_utf8_lossy(&buf),
        "HTTP/1.1 100 Continue\r\n\r\n"
    );
    s.write_all(b"hello").await.expect("body");
    let mut rest = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&rest).contains("\"body_len\":5") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("reply")
            .expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&rest));
        rest.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        !text.to_lowercase().contains("\"expect\""),
        "expect not forwarded: {text}"
    );
}

/// Writes a raw request and reads until the server closes (or 5 s pass).
async fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(raw).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("server closes");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn http1_connection_semantics_and_header_limits() {
    let b = backends(&["a"]).await;
    let routes = json!([route(json!({"prefix": "/"}), "a")]);
    let hcm = json!({
        "max_request_headers_kb": 8,
        "http_protocol_options": { "accept_http_10": true },
    });
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), hcm)],
        vec![static_cluster("a", &[b[0].addr])],
    ))
    .await;
    let addr = proxy.listener_addr("in").expect("bound");
    // Connection: close is honoured downstream (and not forwarded: it is hop-by-hop).
    let out = raw_exchange(
        addr,
        b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(!out.contains("\"connection\""), "{out}");
    // HTTP/1.0 without keep-alive: one response, then close.
    let out = raw_exchange(addr, b"GET /old HTTP/1.0\r\nHost: h\r\n\r\n").await;
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    assert!(out.contains("\"name\":\"a\""), "{out}");
    // Headers beyond max_request_headers_kb: 431.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nx-big: {}\r\n\r\n",
        "x".repeat(16 * 1024)
    );
    let out = raw_exchange(addr, big.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
}

#[tokio::test]
async fn idle_downstream_connections_are_closed() {
    let b = backends(&["a"]).await;
    let routes = json!([route(json!({"prefix": "/"}), "a")]);
    let hcm = json!({"common_http_protocol_options": {"idle_timeout": "0.2s"}});
    let proxy = start(&bootstrap(
        vec![http_listener("in", any_host(routes), hcm)],
        vec![static_cluster("a", &[b[0].addr])],
    ))
    .await;
    let mut s = tokio::net::TcpStream::connect(proxy.listener_addr("in").expect("bound"))
        .await
        .expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .await
        .expect("write");
    // The response arrives, then the idle connection is closed by the proxy (EOF).
    let mut got = Vec::new();
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut got))
        .await
        .expect("closed when idle");
    assert!(n.is_ok());
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("\"name\":\"a\""),
        "{text}"
    );
}
