//! End-to-end tests: a real proxy on 127.0.0.1:0, real backends that report who they are,
//! real clients. One test binary (modules below) keeps link time down.

mod admin;
mod bootstrap;
mod differential;
mod differential_framing;
mod differential_resilience;
mod downstream_h1;
mod resilience;
mod routing;
mod tcp;
mod upstream;
mod upstream_h1;

use serde_json::{Value, json};
use std::net::SocketAddr;
use weft_proxy::{ProxyConfig, ProxyHandle};
use weft_xds::Format;

/// `{ socket_address: { address, port_value } }`.
pub fn address(a: SocketAddr) -> Value {
    json!({ "socket_address": { "address": a.ip().to_string(), "port_value": a.port() } })
}

/// A STATIC cluster over `addrs`.
pub fn static_cluster(name: &str, addrs: &[SocketAddr]) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": addrs.iter().map(|a| json!({ "endpoint": { "address": address(*a) } })).collect::<Vec<_>>() }]
        }
    })
}

/// An HCM listener named `name` on 127.0.0.1:0 with an inline route config and extra HCM
/// fields merged in.
pub fn http_listener(name: &str, route_config: Value, hcm_extra: Value) -> Value {
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "route_config": route_config,
        "http_filters": [{
            "name": "envoy.filters.http.router",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
        }]
    });
    if let (Some(h), Some(extra)) = (hcm.as_object_mut(), hcm_extra.as_object()) {
        h.extend(extra.clone());
    }
    json!({
        "name": name,
        "address": address("127.0.0.1:0".parse().expect("addr")),
        "filter_chains": [{ "filters": [{ "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm }] }]
    })
}

/// A route config with one virtual host matching every domain.
pub fn any_host(routes: Value) -> Value {
    json!({ "name": "local", "virtual_hosts": [{ "name": "all", "domains": ["*"], "routes": routes }] })
}

/// A bootstrap with an admin server on 127.0.0.1:0.
pub fn bootstrap(listeners: Vec<Value>, clusters: Vec<Value>) -> Value {
    json!({
        "admin": { "address": address("127.0.0.1:0".parse().expect("addr")) },
        "static_resources": { "listeners": listeners, "clusters": clusters }
    })
}

/// The proxy's admin `/stats` text.
pub async fn stats_text(proxy: &ProxyHandle) -> String {
    weft_testkit::HttpClient::h1(proxy.admin_addr().expect("admin"))
        .await
        .expect("admin connect")
        .get("admin", "/stats", &[])
        .await
        .expect("stats")
        .text()
}

/// Reads until the peer closes the connection (bounded by 5 s).
pub async fn read_to_close(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the peer closes the connection")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses and starts a proxy.
pub async fn start(bootstrap: &Value) -> ProxyHandle {
    let config = ProxyConfig::parse(&bootstrap.to_string(), Format::Json).expect("valid bootstrap");
    weft_proxy::start(config).await.expect("proxy starts")
}
