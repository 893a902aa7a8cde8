//! The exact bootstrap shape the benchmark harness feeds weft (shared/bench/weft-proxy.sh).

use weft_proxy::ProxyConfig;
use weft_testkit::{EchoServer, HttpClient};
use weft_xds::Format;

const BENCH_BOOTSTRAP: &str = r#"
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: $LISTEN_PORT } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: AUTO
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: upstream }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    lb_policy: ROUND_ROBIN
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: $UPSTREAM_HOST, port_value: $UPSTREAM_PORT } } }
"#;

#[tokio::test]
async fn benchmark_bootstrap_runs_with_nothing_unsupported() {
    let upstream = EchoServer::start("upstream").await;
    let yaml = BENCH_BOOTSTRAP
        .replace("$LISTEN_PORT", "0")
        .replace("$UPSTREAM_HOST", &upstream.addr.ip().to_string())
        .replace("$UPSTREAM_PORT", &upstream.addr.port().to_string());
    let config = ProxyConfig::parse(&yaml, Format::Yaml).expect("bench bootstrap is valid");
    assert_eq!(config.unsupported, Vec::<String>::new());
    let proxy = weft_proxy::start(config).await.expect("starts");
    let addr = proxy.listener_addr("bench").expect("bound");
    for h2 in [false, true] {
        let mut c = if h2 {
            HttpClient::h2c(addr).await
        } else {
            HttpClient::h1(addr).await
        }
        .expect("connect");
        for _ in 0..10 {
            let r = c.get("bench", "/", &[]).await.expect("reply");
            assert_eq!((r.status.as_u16(), r.backend()), (200, "upstream"));
        }
    }
}
