//! Golden files of translation: the Envoy resources generated for realistic configs, as
//! protobuf JSON a person can review. `WEFT_BLESS=1 cargo test -p weft-control --test
//! golden` rewrites them; review the diff before committing.

use std::path::{Path, PathBuf};
use weft_control::translate::{ProxyResources, generate};
use weft_control::{ProxyIdentity, Snapshot};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bookinfo(file: &str) -> PathBuf {
    root().join("samples/bookinfo").join(file)
}

fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file)
}

/// Bookinfo's sidecars, connected: their workloads are the services' endpoints.
fn bookinfo_proxies() -> Vec<ProxyIdentity> {
    [
        ("productpage-v1", "127.0.0.10", "productpage", "v1"),
        ("details-v1", "127.0.0.11", "details", "v1"),
        ("reviews-v1", "127.0.0.21", "reviews", "v1"),
        ("reviews-v2", "127.0.0.22", "reviews", "v2"),
        ("reviews-v3", "127.0.0.23", "reviews", "v3"),
        ("ratings-v1", "127.0.0.31", "ratings", "v1"),
    ]
    .into_iter()
    .map(|(name, ip, app, v)| {
        ProxyIdentity::sidecar(name, "default", ip, &[("app", app), ("version", v)])
    })
    .collect()
}

fn productpage() -> ProxyIdentity {
    bookinfo_proxies().remove(0)
}

fn ingress() -> ProxyIdentity {
    ProxyIdentity::gateway(
        "istio-ingressgateway",
        "istio-system",
        "127.0.0.2",
        &[("istio", "ingressgateway"), ("app", "istio-ingressgateway")],
    )
}

/// Which resources a golden file shows: everything, or `(type, name)` pairs (`*` = all
/// of the type).
enum Show {
    All,
    Only(&'static [(&'static str, &'static str)]),
}

fn render(res: &ProxyResources, show: &Show) -> serde_json::Value {
    use weft_control::json::to_json;
    let keep = |ty: &str, name: &str| match show {
        Show::All => true,
        Show::Only(list) => list
            .iter()
            .any(|(t, n)| *t == ty && (*n == "*" || *n == name)),
    };
    let mut doc = serde_json::Map::new();
    let mut section = |ty: &str, items: Vec<serde_json::Value>| {
        if !items.is_empty() {
            doc.insert(ty.to_owned(), serde_json::Value::Array(items));
        }
    };
    section(
        "clusters",
        res.clusters
            .iter()
            .filter(|(n, _)| keep("clusters", n))
            .map(|(_, c)| to_json(c))
            .collect(),
    );
    section(
        "endpoints",
        res.endpoints
            .iter()
            .filter(|(n, _)| keep("endpoints", n))
            .map(|(_, c)| to_json(c))
            .collect(),
    );
    section(
        "listeners",
        res.listeners
            .iter()
            .filter(|(n, _)| keep("listeners", n))
            .map(|(_, c)| to_json(c))
            .collect(),
    );
    section(
        "routes",
        res.routes
            .iter()
            .filter(|(n, _)| keep("routes", n))
            .map(|(_, c)| to_json(c))
            .collect(),
    );
    serde_json::Value::Object(doc)
}

fn check(
    name: &str,
    files: &[PathBuf],
    proxies: Vec<ProxyIdentity>,
    proxy: &ProxyIdentity,
    show: Show,
) {
    let out = weft_model::load_paths(files);
    assert!(
        !out.has_errors(),
        "{name}: fixtures invalid: {:#?}",
        out.diagnostics
    );
    let snap = Snapshot::build(1, out.resources, proxies);
    let res = generate(&snap, proxy);
    let got = serde_json::to_string_pretty(&render(&res, &show)).expect("json") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var_os("WEFT_BLESS").is_some() || !path.exists() {
        std::fs::write(&path, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("read golden");
    if want != got {
        let first = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "{name}: generated config differs from {} at line {} (WEFT_BLESS=1 to accept)\nwant: {:?}\ngot:  {:?}",
            path.display(),
            first + 1,
            want.lines().nth(first),
            got.lines().nth(first)
        );
    }
}

const SERVICES: &str = "platform/local/bookinfo-services.yaml";

#[test]
fn bookinfo_productpage_all_v1_full() {
    check(
        "bookinfo-productpage-all-v1",
        &[
            bookinfo(SERVICES),
            bookinfo("networking/destination-rule-all.yaml"),
            bookinfo("networking/virtual-service-all-v1.yaml"),
        ],
        bookinfo_proxies(),
        &productpage(),
        Show::All,
    );
}

#[test]
fn bookinfo_without_virtual_services_uses_default_routes() {
    check(
        "bookinfo-default-routes",
        &[bookinfo(SERVICES)],
        bookinfo_proxies(),
        &productpage(),
        Show::Only(&[("routes", "9080"), ("endpoints", "*")]),
    );
}

#[test]
fn bookinfo_reviews_header_match() {
    check(
        "bookinfo-reviews-test-v2",
        &[
            bookinfo(SERVICES),
            bookinfo("networking/destination-rule-all.yaml"),
            bookinfo("networking/virtual-service-reviews-test-v2.yaml"),
        ],
        bookinfo_proxies(),
        &productpage(),
        Show::Only(&[("routes", "9080")]),
    );
}

#[test]
fn bookinfo_reviews_weighted() {
    check(
        "bookinfo-reviews-50-v3",
        &[
            bookinfo(SERVICES),
            bookinfo("networking/destination-rule-all.yaml"),
            bookinfo("networking/virtual-service-reviews-50-v3.yaml"),
        ],
        bookinfo_proxies(),
        &productpage(),
        Show::Only(&[("routes", "http_proxy")]),
    );
}

#[test]
fn bookinfo_ratings_fault_delay_from_reviews() {
    let reviews = bookinfo_proxies().remove(3);
    check(
        "bookinfo-ratings-test-delay",
        &[
            bookinfo(SERVICES),
            bookinfo("networking/destination-rule-all.yaml"),
            bookinfo("networking/virtual-service-ratings-test-delay.yaml"),
        ],
        bookinfo_proxies(),
        &reviews,
        Show::Only(&[("routes", "9080")]),
    );
}

#[test]
fn bookinfo_ratings_fault_abort() {
    check(
        "bookinfo-ratings-test-abort",
        &[
            bookinfo(SERVICES),
            bookinfo("networking/destination-rule-all.yaml"),
            bookinfo("networking/virtual-service-ratings-test-abort.yaml"),
        ],
        bookinfo_proxies(),
        &productpage(),
        Show::Only(&[("routes", "9080")]),
    );
}

#[test]
fn bookinfo_ingress_gateway() {
    check(
        "bookinfo-gateway",
        &[
            bookinfo(SERVICES),
            bookinfo("networking/bookinfo-gateway.yaml"),
        ],
        bookinfo_proxies(),
        &ingress(),
        Show::Only(&[("listeners", "*"), ("routes", "*")]),
    );
}

#[test]
fn bookinfo_reviews_inbound_side() {
    let reviews = bookinfo_proxies().remove(2);
    check(
        "bookinfo-reviews-v1-inbound",
        &[bookinfo(SERVICES)],
        bookinfo_proxies(),
        &reviews,
        Show::Only(&[
            ("listeners", "virtualInbound"),
            ("clusters", "inbound|9080||"),
        ]),
    );
}

/// `weft demo`'s local-mode keys: the gateway's Gateway port 8080 bound where `--ingress`
/// says, and (transparent capture) inbound clusters sent to 127.0.0.1, not the pod IP.
#[test]
fn local_mode_gateway_bind_and_app_ip() {
    let mut gw = ingress();
    gw.gateway_bind
        .insert(8080, ("127.0.0.1".to_owned(), 18080));
    let mut reviews = bookinfo_proxies().remove(2);
    reviews.app_ip = Some("127.0.0.1".to_owned());
    let out = weft_model::load_paths(&[
        bookinfo(SERVICES),
        bookinfo("networking/bookinfo-gateway.yaml"),
    ]);
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    let snap = Snapshot::build(1, out.resources, bookinfo_proxies());
    let gw_res = generate(&snap, &gw);
    let listener = &gw_res.listeners["0.0.0.0_8080"];
    let json = weft_control::json::to_json(listener);
    assert_eq!(
        json["address"]["socket_address"],
        serde_json::json!({"address": "127.0.0.1", "port_value": 18080}),
        "{json:#}"
    );
    check(
        "local-mode-inbound-app-ip",
        &[bookinfo(SERVICES)],
        bookinfo_proxies(),
        &reviews,
        Show::Only(&[("clusters", "inbound|9080||")]),
    );
}

/// The `http_protocol_options` of every HTTP connection manager in `res`'s listeners.
fn hcm_http1_options(res: &ProxyResources) -> Vec<serde_json::Value> {
    fn walk(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("@type").and_then(|t| t.as_str()).is_some_and(|t| {
                    t.ends_with("http_connection_manager.v3.HttpConnectionManager")
                }) {
                    out.push(m.get("http_protocol_options").cloned().unwrap_or_default());
                }
                m.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for l in res.listeners.values() {
        walk(&weft_control::json::to_json(l), &mut out);
    }
    out
}

/// Istio's `HTTP10` metadata: every HTTP listener of that proxy (outbound, the explicit
/// proxy chain, inbound; a gateway's server ports) accepts HTTP/1.0; other proxies keep
/// Envoy's default (426).
#[test]
fn http10_metadata_sets_accept_http_10_on_every_http_listener() {
    let out = weft_model::load_paths(&[
        bookinfo(SERVICES),
        bookinfo("networking/bookinfo-gateway.yaml"),
    ]);
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    let snap = Snapshot::build(1, out.resources, bookinfo_proxies());
    let accept = serde_json::json!({"accept_http_10": true});
    for mut proxy in [productpage(), ingress()] {
        let plain = hcm_http1_options(&generate(&snap, &proxy));
        assert!(!plain.is_empty(), "{} has HTTP listeners", proxy.id);
        assert!(plain.iter().all(|o| o.is_null()), "{plain:?}");
        proxy.http10 = true;
        let legacy = hcm_http1_options(&generate(&snap, &proxy));
        assert_eq!(legacy.len(), plain.len());
        assert!(legacy.iter().all(|o| *o == accept), "{legacy:?}");
    }
}

#[test]
fn destination_rule_traffic_policy() {
    check(
        "traffic-policy",
        &[bookinfo(SERVICES), fixture("traffic-policy.yaml")],
        bookinfo_proxies(),
        &productpage(),
        Show::Only(&[
            (
                "clusters",
                "outbound|9080||reviews.default.svc.cluster.local",
            ),
            (
                "clusters",
                "outbound|9080|v2|reviews.default.svc.cluster.local",
            ),
            ("routes", "9080"),
        ]),
    );
}

#[test]
fn virtual_service_route_features() {
    check(
        "route-features",
        &[
            bookinfo(SERVICES),
            bookinfo("networking/destination-rule-all.yaml"),
            fixture("route-features.yaml"),
        ],
        bookinfo_proxies(),
        &productpage(),
        Show::Only(&[("routes", "9080")]),
    );
}

#[test]
fn external_services_dns_passthrough_and_tcp() {
    let client = ProxyIdentity::sidecar("client", "data", "127.0.0.40", &[("app", "client")]);
    check(
        "external-services",
        &[fixture("external.yaml")],
        Vec::new(),
        &client,
        Show::Only(&[
            ("clusters", "*"),
            ("endpoints", "*"),
            ("listeners", "240.0.0.10_5432"),
        ]),
    );
}

#[test]
fn sidecar_egress_scope() {
    check(
        "sidecar-scope",
        &[bookinfo(SERVICES), fixture("sidecar-scope.yaml")],
        bookinfo_proxies(),
        &productpage(),
        Show::Only(&[("routes", "9080")]),
    );
}

#[test]
fn workload_entries_with_named_ports_and_weights() {
    check(
        "workload-entries",
        &[
            bookinfo(SERVICES),
            bookinfo("networking/destination-rule-all.yaml"),
            fixture("workload-entries.yaml"),
        ],
        Vec::new(),
        &productpage(),
        Show::Only(&[("endpoints", "*")]),
    );
}

#[test]
fn gateway_api_mesh_routes_attached_to_services() {
    // Routes 9080 (reviews: precedence re-ordered, filters, weights, mirror, cross-namespace
    // backend granted) and 50051 (GRPCRoute; its ungranted backend answers 500).
    check(
        "gateway-api-mesh",
        &[bookinfo(SERVICES), fixture("gateway-api-mesh.yaml")],
        bookinfo_proxies(),
        &productpage(),
        Show::Only(&[("routes", "9080"), ("routes", "50051")]),
    );
}

#[test]
fn gateway_api_gateway_listeners_and_routes() {
    let gateway = ProxyIdentity::gateway(
        "bookinfo-gateway-istio",
        "istio-system",
        "127.0.0.2",
        &[("gateway.networking.k8s.io/gateway-name", "bookinfo-gateway")],
    );
    check(
        "gateway-api-gateway",
        &[bookinfo(SERVICES), fixture("gateway-api-gateway.yaml")],
        bookinfo_proxies(),
        &gateway,
        Show::Only(&[("listeners", "*"), ("routes", "*")]),
    );
}
