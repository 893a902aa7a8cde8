//! The xDS client against a fake ADS server (tonic, in this test, serving hand-built
//! envoy-types resources): listeners, routes, clusters and endpoints added, updated and
//! removed at run time; a NACK that names the field while the rest applies; a control
//! plane that goes away and comes back; delta xDS. The proxy runs in-process on 127.0.0.1
//! with echo backends that say who they are.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ConfigSource, SocketAddress, address,
    config_source::ConfigSourceSpecifier, socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse, Resource,
};
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};
use weft_proxy::xds::{NodeSpec, XdsOptions};
use weft_testkit::{EchoServer, HttpClient, assert_eventually};

const CDS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const EDS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
const LDS: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
const RDS: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

fn socket(a: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: a.ip().to_string(),
            port_specifier: Some(PortSpecifier::PortValue(u32::from(a.port()))),
            ..Default::default()
        })),
    }
}

fn ads() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        resource_api_version: 2,
        ..Default::default()
    }
}

fn eds_cluster(name: &str) -> Cluster {
    Cluster {
        name: name.to_owned(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: format!("{name}-svc"),
        }),
        ..Default::default()
    }
}

fn endpoints(cluster: &str, addrs: &[SocketAddr]) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: format!("{cluster}-svc"),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: addrs
                .iter()
                .map(|a| LbEndpoint {
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket(*a)),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Route config `name`: every host, prefix `/` to `cluster`.
fn routes(name: &str, cluster: &str) -> RouteConfiguration {
    RouteConfiguration {
        name: name.to_owned(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                        cluster.to_owned(),
                    )),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// An HTTP listener on `addr` whose routes come from RDS `route_name`.
fn listener(name: &str, addr: SocketAddr, route_name: &str, stat_prefix: &str) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: stat_prefix.to_owned(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: route_name.to_owned(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(
                any(&Router::default()),
            )),
            ..Default::default()
        }],
        ..Default::default()
    };
    Listener {
        name: name.to_owned(),
        address: Some(socket(addr)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(any(&hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A port free right now on 127.0.0.1 (listeners the proxy binds from pushed config).
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// What the fake control plane serves and what it was told.
#[derive(Default)]
struct World {
    /// Resources by type URL and name.
    resources: BTreeMap<&'static str, BTreeMap<String, Any>>,
    version: u64,
    /// Every SotW request and delta request received, in order.
    requests: Vec<DiscoveryRequest>,
    delta_requests: Vec<DeltaDiscoveryRequest>,
}

#[derive(Clone)]
struct FakeAds {
    world: Arc<Mutex<World>>,
    changed: watch::Sender<u64>,
    /// `true` ends every open stream (the control plane "dies").
    killed: watch::Sender<bool>,
}

impl FakeAds {
    fn new() -> FakeAds {
        FakeAds {
            world: Arc::default(),
            changed: watch::channel(0).0,
            killed: watch::channel(false).0,
        }
    }

    /// Ends every open stream, as a control plane that exits does.
    fn kill(&self) {
        self.killed.send_replace(true);
    }

    /// Replaces resources of a type (by name) and pushes; `None` removes.
    fn set(&self, type_url: &'static str, items: Vec<(&str, Option<Any>)>) {
        let mut w = self.world.lock().expect("lock");
        let map = w.resources.entry(type_url).or_default();
        for (name, item) in items {
            match item {
                Some(a) => map.insert(name.to_owned(), a),
                None => map.remove(name),
            };
        }
        w.version += 1;
        let v = w.version;
        drop(w);
        self.changed.send_replace(v);
    }

    fn requests(&self) -> Vec<DiscoveryRequest> {
        self.world.lock().expect("lock").requests.clone()
    }

    fn delta_requests(&self) -> Vec<DeltaDiscoveryRequest> {
        self.world.lock().expect("lock").delta_requests.clone()
    }

    /// Serves on `addr` until the returned handle is aborted.
    async fn serve(&self, addr: SocketAddr) -> tokio::task::JoinHandle<()> {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind ADS");
        let svc = AggregatedDiscoveryServiceServer::new(self.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        })
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn is_named(t: &str) -> bool {
    t == EDS || t == RDS
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for FakeAds {
    type StreamAggregatedResourcesStream = BoxStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = BoxStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        let mut inbound = request.into_inner();
        tokio::spawn(async move {
            // Subscribed names per type (empty set = wildcard for CDS/LDS).
            let mut subs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut changed = this.changed.subscribe();
            let mut killed = this.killed.subscribe();
            let mut nonce = 0u64;
            loop {
                let send: Vec<String> = tokio::select! {
                    m = inbound.message() => match m {
                        Ok(Some(req)) => {
                            this.world.lock().expect("lock").requests.push(req.clone());
                            let names: BTreeSet<String> = req.resource_names.iter().cloned().collect();
                            let is_new = subs.get(&req.type_url) != Some(&names);
                            subs.insert(req.type_url.clone(), names);
                            if is_new || req.response_nonce.is_empty() { vec![req.type_url] } else { vec![] }
                        }
                        _ => return,
                    },
                    c = changed.changed() => {
                        if c.is_err() { return; }
                        subs.keys().cloned().collect()
                    }
                    _ = killed.wait_for(|k| *k) => return,
                };
                for t in send {
                    let (all, version) = {
                        let w = this.world.lock().expect("lock");
                        (
                            w.resources.get(t.as_str()).cloned().unwrap_or_default(),
                            w.version,
                        )
                    };
                    let names = &subs[&t];
                    let resources: Vec<Any> = all
                        .into_iter()
                        .filter(|(n, _)| !is_named(&t) || names.contains(n))
                        .map(|(_, a)| a)
                        .collect();
                    nonce += 1;
                    let resp = DiscoveryResponse {
                        version_info: version.to_string(),
                        resources,
                        type_url: t.clone(),
                        nonce: nonce.to_string(),
                        ..Default::default()
                    };
                    if tx.send(Ok(resp)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let this = self.clone();
        let mut inbound = request.into_inner();
        tokio::spawn(async move {
            let mut subs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            // What this stream has sent: type → name → content.
            let mut sent: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
            let mut changed = this.changed.subscribe();
            let mut killed = this.killed.subscribe();
            let mut nonce = 0u64;
            loop {
                let send: Vec<String> = tokio::select! {
                    m = inbound.message() => match m {
                        Ok(Some(req)) => {
                            this.world.lock().expect("lock").delta_requests.push(req.clone());
                            let s = subs.entry(req.type_url.clone()).or_default();
                            let before = s.clone();
                            s.extend(req.resource_names_subscribe.iter().cloned());
                            for n in &req.resource_names_unsubscribe { s.remove(n); }
                            let first = !sent.contains_key(&req.type_url);
                            if first {
                                sent.insert(req.type_url.clone(), BTreeMap::new());
                            }
                            if first || before != *s { vec![req.type_url] } else { vec![] }
                        }
                        _ => return,
                    },
                    c = changed.changed() => {
                        if c.is_err() { return; }
                        subs.keys().cloned().collect()
                    }
                    _ = killed.wait_for(|k| *k) => return,
                };
                for t in send {
                    let all = {
                        let w = this.world.lock().expect("lock");
                        w.resources.get(t.as_str()).cloned().unwrap_or_default()
                    };
                    let names = &subs[&t];
                    let wanted: BTreeMap<String, Any> = all
                        .into_iter()
                        .filter(|(n, _)| !is_named(&t) || names.contains(n))
                        .collect();
                    let had = sent.entry(t.clone()).or_default();
                    let resources: Vec<Resource> = wanted
                        .iter()
                        .filter(|(n, a)| had.get(*n) != Some(&a.value))
                        .map(|(n, a)| Resource {
                            name: n.clone(),
                            version: format!(
                                "{:x}",
                                a.value.len() * 31
                                    + a.value.iter().map(|b| *b as usize).sum::<usize>()
                            ),
                            resource: Some(a.clone()),
                            ..Default::default()
                        })
                        .collect();
                    let removed: Vec<String> = had
                        .keys()
                        .filter(|n| !wanted.contains_key(*n))
                        .cloned()
                        .collect();
                    *had = wanted
                        .iter()
                        .map(|(n, a)| (n.clone(), a.value.clone()))
                        .collect();
                    nonce += 1;
                    let resp = DeltaDiscoveryResponse {
                        resources,
                        removed_resources: removed,
                        type_url: t.clone(),
                        nonce: nonce.to_string(),
                        ..Default::default()
                    };
                    if tx.send(Ok(resp)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

async fn start_proxy(xds: SocketAddr, delta: bool) -> weft_proxy::ProxyHandle {
    let node = NodeSpec {
        name: "test-proxy".into(),
        ..Default::default()
    }
    .node();
    let mut opts = XdsOptions::new(&xds.to_string(), node);
    opts.delta = delta;
    let config = weft_proxy::ProxyConfig::empty(Some("127.0.0.1:0".parse().expect("addr")));
    weft_proxy::start_with(
        config,
        weft_proxy::StartOptions {
            xds: Some(opts),
            status_addr: Some("127.0.0.1:0".parse().expect("addr")),
            ..Default::default()
        },
    )
    .await
    .expect("proxy starts")
}

/// GET `/` on a new connection; the backend's name, or the status when not 200.
async fn who(addr: SocketAddr) -> String {
    let Ok(mut c) = HttpClient::h1(addr).await else {
        return "refused".into();
    };
    match c.get("example", "/", &[]).await {
        Ok(r) if r.status == 200 => r.backend().to_owned(),
        Ok(r) => r.status.as_u16().to_string(),
        Err(_) => "error".into(),
    }
}

async fn status_of(addr: SocketAddr, path: &str) -> u16 {
    let Ok(mut c) = HttpClient::h1(addr).await else {
        return 0;
    };
    c.get("admin", path, &[])
        .await
        .map_or(0, |r| r.status.as_u16())
}

async fn admin_text(addr: SocketAddr, path: &str) -> String {
    let mut c = HttpClient::h1(addr).await.expect("admin");
    c.get("admin", path, &[]).await.expect("admin reply").text()
}

/// One cluster `c` (EDS → `a`), listener `l` on `addr` with RDS `r` → `c`.
fn base_config(fake: &FakeAds, addr: SocketAddr, backend: SocketAddr) {
    fake.set(CDS, vec![("c", Some(any(&eds_cluster("c"))))]);
    fake.set(EDS, vec![("c-svc", Some(any(&endpoints("c", &[backend]))))]);
    fake.set(RDS, vec![("r", Some(any(&routes("r", "c"))))]);
    fake.set(LDS, vec![("l", Some(any(&listener("l", addr, "r", "v1"))))]);
}

async fn add_update_remove(delta: bool) {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let fake = FakeAds::new();
    let xds = free_port();
    let _server = fake.serve(xds).await;
    let addr = free_port();
    base_config(&fake, addr, a.addr);
    let proxy = start_proxy(xds, delta).await;
    let status = proxy.status_addr().expect("status");
    tokio::time::timeout(Duration::from_secs(10), proxy.ready())
        .await
        .expect("ready within 10 s");
    assert_eq!(status_of(status, "/healthz/ready").await, 200);
    assert_eq!(who(addr).await, "a");

    // A keep-alive connection opened now must survive every update below.
    let mut kept = HttpClient::h1(addr).await.expect("connect");
    assert_eq!(kept.get("h", "/", &[]).await.expect("reply").backend(), "a");

    // EDS: endpoints move to b.
    fake.set(EDS, vec![("c-svc", Some(any(&endpoints("c", &[b.addr]))))]);
    assert_eventually!(who(addr).await == "b", "EDS update routes to b");

    // CDS: cluster c changes (connect timeout); b is still its endpoint, so the pooled
    // upstream connection to b is reused, not reopened.
    assert_eq!(kept.get("h", "/", &[]).await.expect("reply").backend(), "b");
    let upstream_connections = b.connections();
    let mut changed = eds_cluster("c");
    changed.connect_timeout = Some(envoy_types::pb::google::protobuf::Duration {
        seconds: 3,
        nanos: 0,
    });
    fake.set(CDS, vec![("c", Some(any(&changed)))]);
    let admin = proxy.admin_addr().expect("admin");
    assert_eventually!(
        admin_text(admin, "/config_dump")
            .await
            .contains("\"connect_timeout\": \"3s\""),
        "cluster update applied"
    );
    for _ in 0..3 {
        assert_eq!(kept.get("h", "/", &[]).await.expect("reply").backend(), "b");
    }
    assert_eq!(
        b.connections(),
        upstream_connections,
        "the updated cluster reuses the pooled connection to an endpoint that still exists"
    );

    // CDS + EDS + RDS: a new cluster c2 (→ a), and the route switches to it.
    fake.set(CDS, vec![("c2", Some(any(&eds_cluster("c2"))))]);
    fake.set(
        EDS,
        vec![("c2-svc", Some(any(&endpoints("c2", &[a.addr]))))],
    );
    fake.set(RDS, vec![("r", Some(any(&routes("r", "c2"))))]);
    assert_eventually!(who(addr).await == "a", "RDS update routes to cluster c2");
    assert_eq!(
        kept.get("h", "/", &[]).await.expect("reply").backend(),
        "a",
        "the open connection follows the new routes"
    );

    // LDS: the listener is updated in place (a new route name, same address).
    fake.set(RDS, vec![("r2", Some(any(&routes("r2", "c"))))]);
    fake.set(
        LDS,
        vec![("l", Some(any(&listener("l", addr, "r2", "v2"))))],
    );
    assert_eventually!(
        who(addr).await == "b",
        "listener update takes route r2 (→ c → b)"
    );
    let reply = kept
        .get("h", "/", &[])
        .await
        .expect("open connection still served");
    assert_eq!(reply.status, 200);

    // LDS: a second listener appears, then the first is removed.
    let addr2 = free_port();
    fake.set(
        LDS,
        vec![("l2", Some(any(&listener("l2", addr2, "r", "v1"))))],
    );
    assert_eventually!(who(addr2).await == "a", "added listener l2 serves");
    fake.set(LDS, vec![("l", None)]);
    assert_eventually!(
        who(addr).await == "refused",
        "removed listener stops accepting"
    );
    assert_eq!(who(addr2).await, "a");

    // CDS: removing c2 leaves route r without a cluster: 503.
    fake.set(CDS, vec![("c2", None)]);
    assert_eventually!(who(addr2).await == "503", "removed cluster answers 503");

    let dump = admin_text(proxy.admin_addr().expect("admin"), "/config_dump").await;
    let dump: serde_json::Value = serde_json::from_str(&dump).expect("json");
    let configs = dump["configs"].as_array().expect("configs");
    let of = |t: &str| {
        configs
            .iter()
            .find(|c| c["@type"].as_str().is_some_and(|s| s.ends_with(t)))
            .cloned()
            .unwrap_or_default()
    };
    let listeners = of("ListenersConfigDump")["dynamic_listeners"].clone();
    let names: Vec<&str> = listeners
        .as_array()
        .expect("dynamic_listeners")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, ["l2"]);
    assert_eq!(listeners[0]["active_state"]["listener"]["name"], "l2");
    assert!(
        !listeners[0]["active_state"]["version_info"]
            .as_str()
            .unwrap_or("")
            .is_empty()
    );
    let clusters = of("ClustersConfigDump")["dynamic_active_clusters"].clone();
    assert_eq!(clusters.as_array().map(Vec::len), Some(1), "{clusters}");
    assert_eq!(clusters[0]["cluster"]["name"], "c");
    let routes = of("RoutesConfigDump")["dynamic_route_configs"].clone();
    assert!(
        routes
            .as_array()
            .expect("routes")
            .iter()
            .any(|r| r["route_config"]["name"] == "r"),
        "{routes}"
    );
    let metrics = admin_text(proxy.admin_addr().expect("admin"), "/stats/prometheus").await;
    assert!(
        metrics.contains("weft_xds_updates_total{type=\"lds\",result=\"ack\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_adds_updates_and_removes_listeners_routes_clusters_endpoints() {
    add_update_remove(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_adds_updates_and_removes_listeners_routes_clusters_endpoints() {
    add_update_remove(true).await;
}

/// A bad cluster is NACKed with its name and field; the other changes of the same push
/// apply, and the bad cluster's last good version keeps serving.
async fn nack_keeps_last_good(delta: bool) {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let fake = FakeAds::new();
    let xds = free_port();
    let _server = fake.serve(xds).await;
    let addr = free_port();
    base_config(&fake, addr, a.addr);
    let proxy = start_proxy(xds, delta).await;
    tokio::time::timeout(Duration::from_secs(10), proxy.ready())
        .await
        .expect("ready");
    let addr2 = free_port();
    fake.set(CDS, vec![("d", Some(any(&eds_cluster("d"))))]);
    fake.set(EDS, vec![("d-svc", Some(any(&endpoints("d", &[b.addr]))))]);
    fake.set(RDS, vec![("rd", Some(any(&routes("rd", "d"))))]);
    fake.set(
        LDS,
        vec![("ld", Some(any(&listener("ld", addr2, "rd", "d"))))],
    );
    assert_eventually!(who(addr2).await == "b", "second listener serves");

    // One push: cluster c turns invalid (Maglev table size not prime), cluster d's
    // connect timeout changes (valid).
    let mut bad = eds_cluster("c");
    bad.lb_policy = cluster::LbPolicy::Maglev as i32;
    bad.lb_config = Some(cluster::LbConfig::MaglevLbConfig(cluster::MaglevLbConfig {
        table_size: Some(envoy_types::pb::google::protobuf::UInt64Value { value: 100 }),
    }));
    let mut good = eds_cluster("d");
    good.connect_timeout = Some(envoy_types::pb::google::protobuf::Duration {
        seconds: 2,
        nanos: 0,
    });
    fake.set(CDS, vec![("c", Some(any(&bad))), ("d", Some(any(&good)))]);
    let nack = || {
        let sotw = fake
            .requests()
            .into_iter()
            .filter_map(|r| r.error_detail.map(|e| e.message));
        let delta = fake
            .delta_requests()
            .into_iter()
            .filter_map(|r| r.error_detail.map(|e| e.message));
        sotw.chain(delta).next()
    };
    assert_eventually!(nack().is_some(), "a NACK arrives");
    let msg = nack().unwrap_or_default();
    assert!(
        msg.contains("Cluster \"c\"") && msg.contains("maglev_lb_config.table_size"),
        "NACK names resource and field: {msg}"
    );
    assert!(
        !msg.contains("\"d\""),
        "the good cluster is not blamed: {msg}"
    );
    // The old c keeps serving; d's new version was applied.
    assert_eq!(who(addr).await, "a");
    let dump = admin_text(proxy.admin_addr().expect("admin"), "/config_dump").await;
    assert!(
        dump.contains("\"connect_timeout\": \"2s\""),
        "d updated: {dump}"
    );
    let metrics = admin_text(proxy.admin_addr().expect("admin"), "/stats/prometheus").await;
    assert!(
        metrics.contains("weft_xds_updates_total{type=\"cds\",result=\"nack\"} 1"),
        "{metrics}"
    );
    // A SotW NACK carries the last accepted version, not the rejected one.
    if !delta {
        let last = fake
            .requests()
            .into_iter()
            .rfind(|r| r.type_url == CDS && r.error_detail.is_some())
            .expect("nack request");
        assert_ne!(
            last.version_info,
            fake.world.lock().expect("lock").version.to_string()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_nack_names_the_field_and_the_rest_applies() {
    nack_keeps_last_good(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_nack_names_the_field_and_the_rest_applies() {
    nack_keeps_last_good(true).await;
}

/// Not ready before the control plane answers; keeps serving while it is away; reconnects
/// and re-subscribes with the versions it holds.
async fn control_plane_restart(delta: bool) {
    let a = EchoServer::start("a").await;
    let b = EchoServer::start("b").await;
    let xds = free_port();
    // Nothing listens on the xDS port yet: the proxy retries and is not ready.
    let proxy = start_proxy(xds, delta).await;
    let status = proxy.status_addr().expect("status");
    assert_eq!(status_of(status, "/healthz/ready").await, 503);
    assert!(!proxy.is_ready());

    let fake = FakeAds::new();
    let addr = free_port();
    base_config(&fake, addr, a.addr);
    let server = fake.serve(xds).await;
    tokio::time::timeout(Duration::from_secs(10), proxy.ready())
        .await
        .expect("ready once the control plane is up");
    assert_eq!(who(addr).await, "a");

    // The control plane goes away: requests keep being served.
    server.abort();
    let _ = server.await;
    fake.kill();
    for _ in 0..20 {
        assert_eq!(
            who(addr).await,
            "a",
            "served while the control plane is away"
        );
    }
    assert_eq!(status_of(status, "/healthz/ready").await, 200);

    // A new control plane on the same address, with a change.
    let fake2 = FakeAds::new();
    base_config(&fake2, addr, b.addr);
    let _server2 = fake2.serve(xds).await;
    assert_eventually!(@timeout Duration::from_secs(10), who(addr).await == "b", "change from the new control plane");
    if delta {
        let first = fake2
            .delta_requests()
            .into_iter()
            .find(|r| r.type_url == CDS)
            .expect("cds");
        assert!(
            first.initial_resource_versions.contains_key("c"),
            "delta re-subscribes with what it holds: {first:?}"
        );
    } else {
        let first = fake2
            .requests()
            .into_iter()
            .find(|r| r.type_url == CDS)
            .expect("cds");
        assert!(
            !first.version_info.is_empty(),
            "SotW re-subscribes with its version"
        );
        let eds = fake2
            .requests()
            .into_iter()
            .find(|r| r.type_url == EDS)
            .expect("eds");
        assert_eq!(eds.resource_names, ["c-svc"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_survives_control_plane_restart() {
    control_plane_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_survives_control_plane_restart() {
    control_plane_restart(true).await;
}

/// A listener waits for its route config (warming); `virtualOutbound`-style hand-off
/// reaches a listener added later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_warms_until_routes_arrive_and_original_dst_handoff_follows_lds() {
    let a = EchoServer::start("a").await;
    let fake = FakeAds::new();
    let xds = free_port();
    let _server = fake.serve(xds).await;
    let addr = free_port();
    base_config(&fake, addr, a.addr);
    let proxy = start_proxy(xds, false).await;
    tokio::time::timeout(Duration::from_secs(10), proxy.ready())
        .await
        .expect("ready");

    // A listener naming a route config the server does not have: not started.
    let warm = free_port();
    fake.set(
        LDS,
        vec![("w", Some(any(&listener("w", warm, "later", "w"))))],
    );
    assert_eventually!(
        fake.requests()
            .iter()
            .any(|r| r.type_url == RDS && r.resource_names.contains(&"later".to_owned())),
        "the client subscribes to the listener's routes"
    );
    assert_eq!(
        who(warm).await,
        "refused",
        "warming listener does not accept yet"
    );
    fake.set(RDS, vec![("later", Some(any(&routes("later", "c"))))]);
    assert_eventually!(
        who(warm).await == "a",
        "listener active once its routes arrived"
    );

    // use_original_dst: a capture listener hands a connection to the listener owning its
    // original destination (here: its own address, so the bind_to_port=false listener for
    // that port added later must win over the capture listener's own chain).
    let capture = free_port();
    let mut outbound = listener("virtualOutbound", capture, "r", "capture");
    outbound.use_original_dst = Some(envoy_types::pb::google::protobuf::BoolValue { value: true });
    fake.set(LDS, vec![("virtualOutbound", Some(any(&outbound)))]);
    assert_eventually!(
        who(capture).await == "a",
        "capture listener serves its own chain"
    );
    let b = EchoServer::start("b").await;
    fake.set(CDS, vec![("cb", Some(any(&eds_cluster("cb"))))]);
    fake.set(
        EDS,
        vec![("cb-svc", Some(any(&endpoints("cb", &[b.addr]))))],
    );
    fake.set(RDS, vec![("rb", Some(any(&routes("rb", "cb"))))]);
    let mut port_listener = listener("0.0.0.0_port", capture, "rb", "port");
    port_listener.address = Some(socket(SocketAddr::new(
        "0.0.0.0".parse().expect("ip"),
        capture.port(),
    )));
    port_listener.bind_to_port =
        Some(envoy_types::pb::google::protobuf::BoolValue { value: false });
    fake.set(LDS, vec![("0.0.0.0_port", Some(any(&port_listener)))]);
    assert_eventually!(
        who(capture).await == "b",
        "hand-off to the listener added by LDS"
    );
}
