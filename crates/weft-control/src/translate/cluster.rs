//! CDS and EDS: `outbound|PORT|SUBSET|HOST` clusters with their endpoints and the
//! DestinationRule traffic policy, `inbound|PORT||` clusters, and Istio's fixed clusters.

use super::{Ctx, ProxyResources, ads_config_source, any, duration, socket_address};
use crate::registry::{Endpoint, Protocol, Resolution, Service, ServicePort};
use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster, OutlierDetection as EnvoyOutlier, circuit_breakers, cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    Http2ProtocolOptions, HttpProtocolOptions as CoreHttpOptions, Locality,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions, http_protocol_options,
};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::UInt32Value;
use std::collections::BTreeMap;
use std::time::Duration;
use weft_model::common::selector_matches;
use weft_model::istio::networking::{
    ConnectionPoolSettings, DestinationRule, LoadBalancerSettings, OutlierDetection, SimpleLb,
    TrafficPolicy,
};
use weft_xds::naming::{
    BLACKHOLE_CLUSTER, ClusterName, INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER,
};

/// Istio's default connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The traffic policy in force for one cluster: DestinationRule top level, overridden by
/// the port-level settings for its port, overridden by the subset's own policy (each
/// level replaces whole sections, as Istio merges them).
#[derive(Debug, Default, Clone)]
pub(crate) struct Policy {
    pub load_balancer: Option<LoadBalancerSettings>,
    pub connection_pool: Option<ConnectionPoolSettings>,
    pub outlier_detection: Option<OutlierDetection>,
}

impl Policy {
    fn apply(&mut self, tp: &TrafficPolicy, port: u16) {
        self.overlay(
            tp.load_balancer.as_ref(),
            tp.connection_pool.as_ref(),
            tp.outlier_detection.as_ref(),
        );
        for pl in &tp.port_level_settings {
            if pl
                .port
                .as_ref()
                .is_some_and(|p| p.number == u32::from(port))
            {
                self.overlay(
                    pl.load_balancer.as_ref(),
                    pl.connection_pool.as_ref(),
                    pl.outlier_detection.as_ref(),
                );
            }
        }
    }

    fn overlay(
        &mut self,
        lb: Option<&LoadBalancerSettings>,
        pool: Option<&ConnectionPoolSettings>,
        outlier: Option<&OutlierDetection>,
    ) {
        if let Some(lb) = lb {
            self.load_balancer = Some(lb.clone());
        }
        if let Some(p) = pool {
            self.connection_pool = Some(p.clone());
        }
        if let Some(o) = outlier {
            self.outlier_detection = Some(o.clone());
        }
    }

    /// The policy for `port` (and `subset`, if any) of a DestinationRule.
    pub fn of(dr: Option<&DestinationRule>, port: u16, subset: Option<&str>) -> Policy {
        let mut p = Policy::default();
        let Some(dr) = dr else { return p };
        if let Some(tp) = &dr.traffic_policy {
            p.apply(tp, port);
        }
        if let Some(tp) = subset
            .and_then(|name| dr.subsets.iter().find(|s| s.name == name))
            .and_then(|s| s.traffic_policy.as_ref())
        {
            p.apply(tp, port);
        }
        p
    }
}

/// Outbound clusters (and their endpoints) for every visible service port and subset.
pub(super) fn outbound(ctx: &Ctx, out: &mut ProxyResources) {
    for svc in &ctx.services {
        let found =
            ctx.snap
                .destination_rule_for(&svc.hostname, &ctx.proxy.namespace, &svc.namespace);
        let dr = found.map(|(_, dr)| dr);
        for port in &svc.ports {
            let eps = ctx.snap.registry.endpoints(&svc.hostname, port.number);
            add_cluster(out, svc, port, dr, None, eps);
            for subset in dr.map(|d| d.subsets.as_slice()).unwrap_or_default() {
                let eps: Vec<Endpoint> = eps
                    .iter()
                    .filter(|e| selector_matches(&subset.labels, &e.labels))
                    .cloned()
                    .collect();
                add_cluster(out, svc, port, dr, Some(&subset.name), &eps);
            }
        }
        if let Some((r, _)) = found {
            // The DestinationRule these clusters follow, as Istio records it.
            let meta = super::config_metadata(r);
            let names: Vec<String> = svc
                .ports
                .iter()
                .flat_map(|p| {
                    std::iter::once(String::new())
                        .chain(
                            dr.into_iter()
                                .flat_map(|d| d.subsets.iter().map(|s| s.name.clone())),
                        )
                        .map(move |s| {
                            ClusterName::outbound(p.number, &s, &svc.hostname).to_string()
                        })
                })
                .collect();
            for n in names {
                if let Some(c) = out.clusters.get_mut(&n) {
                    c.metadata = Some(meta.clone());
                }
            }
        }
    }
    for c in [
        passthrough(PASSTHROUGH_CLUSTER),
        blackhole(),
        passthrough(INBOUND_PASSTHROUGH_CLUSTER),
    ] {
        out.clusters.insert(c.name.clone(), c);
    }
}

fn add_cluster(
    out: &mut ProxyResources,
    svc: &Service,
    port: &ServicePort,
    dr: Option<&DestinationRule>,
    subset: Option<&str>,
    eps: &[Endpoint],
) {
    let name = ClusterName::outbound(port.number, subset.unwrap_or(""), &svc.hostname);
    let policy = Policy::of(dr, port.number, subset);
    let mut c = base_cluster(&name, &policy);
    if matches!(port.protocol, Protocol::Http2 | Protocol::Grpc) {
        set_http2(&mut c);
    }
    let cla = load_assignment(&name.to_string(), eps);
    match svc.resolution {
        Resolution::Static => {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::Eds as i32,
            ));
            c.eds_cluster_config = Some(cluster::EdsClusterConfig {
                eds_config: Some(ads_config_source()),
                service_name: name.to_string(),
            });
            out.endpoints.insert(name.to_string(), cla);
        }
        Resolution::Dns => {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::StrictDns as i32,
            ));
            c.dns_lookup_family = cluster::DnsLookupFamily::V4Only as i32;
            // A DNS service without endpoints resolves its own host name.
            c.load_assignment = Some(if eps.is_empty() {
                load_assignment(
                    &name.to_string(),
                    &[Endpoint {
                        address: svc.hostname.clone(),
                        port: port.target_port.unwrap_or(port.number),
                        labels: BTreeMap::new(),
                        weight: None,
                        locality: None,
                        service_account: None,
                    }],
                )
            } else {
                cla
            });
        }
        Resolution::Passthrough => {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::OriginalDst as i32,
            ));
            c.lb_policy = cluster::LbPolicy::ClusterProvided as i32;
        }
    }
    out.clusters.insert(name.to_string(), c);
}

/// Name, timeouts, load balancer, circuit breakers and outlier detection.
fn base_cluster(name: &ClusterName, policy: &Policy) -> Cluster {
    let tcp = policy.connection_pool.as_ref().and_then(|p| p.tcp.as_ref());
    let http = policy
        .connection_pool
        .as_ref()
        .and_then(|p| p.http.as_ref());
    let connect_timeout = tcp
        .and_then(|t| t.connect_timeout)
        .map_or(CONNECT_TIMEOUT, |d| d.as_std());
    let max = |v: Option<i32>| {
        Some(UInt32Value {
            value: v
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(u32::MAX),
        })
    };
    let mut c = Cluster {
        name: name.to_string(),
        alt_stat_name: name.stat_name(),
        connect_timeout: Some(duration(connect_timeout)),
        lb_policy: cluster::LbPolicy::LeastRequest as i32,
        // Istio's defaults are "unlimited": limits are opt-in through connectionPool.
        circuit_breakers: Some(CircuitBreakers {
            thresholds: vec![circuit_breakers::Thresholds {
                max_connections: max(tcp.and_then(|t| t.max_connections)),
                max_pending_requests: max(http.and_then(|h| h.http1_max_pending_requests)),
                max_requests: max(http.and_then(|h| h.http2_max_requests)),
                max_retries: max(http.and_then(|h| h.max_retries)),
                track_remaining: true,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Some(lb) = &policy.load_balancer {
        apply_load_balancer(&mut c, lb);
    }
    if let Some(o) = &policy.outlier_detection {
        apply_outlier(&mut c, o);
    }
    let per_conn = http
        .and_then(|h| h.max_requests_per_connection)
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0);
    let idle = http.and_then(|h| h.idle_timeout);
    if per_conn.is_some() || idle.is_some() {
        let mut opts = protocol_options(&c);
        opts.common_http_protocol_options = Some(CoreHttpOptions {
            idle_timeout: idle.map(|d| duration(d.as_std())),
            max_requests_per_connection: per_conn.map(|value| UInt32Value { value }),
            ..Default::default()
        });
        set_protocol_options(&mut c, &opts);
    }
    c
}

fn apply_load_balancer(c: &mut Cluster, lb: &LoadBalancerSettings) {
    if let Some(ch) = &lb.consistent_hash {
        // The hash key itself goes on the route (`hash_policy`); the cluster picks the ring.
        if ch.maglev.is_some() {
            c.lb_policy = cluster::LbPolicy::Maglev as i32;
        } else {
            c.lb_policy = cluster::LbPolicy::RingHash as i32;
            let min = ch
                .ring_hash
                .as_ref()
                .and_then(|r| r.minimum_ring_size)
                .or(ch.minimum_ring_size);
            if let Some(min) = min {
                c.lb_config = Some(cluster::LbConfig::RingHashLbConfig(
                    cluster::RingHashLbConfig {
                        minimum_ring_size: Some(envoy_types::pb::google::protobuf::UInt64Value {
                            value: min,
                        }),
                        ..Default::default()
                    },
                ));
            }
        }
        return;
    }
    c.lb_policy = match lb.simple.unwrap_or_default() {
        SimpleLb::RoundRobin => cluster::LbPolicy::RoundRobin,
        SimpleLb::Random => cluster::LbPolicy::Random,
        SimpleLb::Passthrough => {
            c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
                cluster::DiscoveryType::OriginalDst as i32,
            ));
            cluster::LbPolicy::ClusterProvided
        }
        SimpleLb::Unspecified | SimpleLb::LeastConn | SimpleLb::LeastRequest => {
            cluster::LbPolicy::LeastRequest
        }
    } as i32;
}

/// Istio's mapping: consecutive error counts enforce at 100%, success-rate ejection off,
/// `minHealthPercent` becomes the panic threshold.
fn apply_outlier(c: &mut Cluster, o: &OutlierDetection) {
    let u = |value: u32| Some(UInt32Value { value });
    let enforce = |v: u32| u(if v > 0 { 100 } else { 0 });
    let mut out = EnvoyOutlier {
        enforcing_success_rate: u(0),
        ..Default::default()
    };
    let five = o
        .consecutive_5xx_errors
        .or_else(|| o.consecutive_errors.and_then(|v| u32::try_from(v).ok()));
    if let Some(v) = five {
        out.consecutive_5xx = u(v);
        out.enforcing_consecutive_5xx = enforce(v);
    }
    if let Some(v) = o.consecutive_gateway_errors {
        out.consecutive_gateway_failure = u(v);
        out.enforcing_consecutive_gateway_failure = enforce(v);
    }
    if o.split_external_local_origin_errors == Some(true) {
        out.split_external_local_origin_errors = true;
        if let Some(v) = o.consecutive_local_origin_failures.filter(|v| *v > 0) {
            out.consecutive_local_origin_failure = u(v);
            out.enforcing_consecutive_local_origin_failure = u(100);
        }
    }
    out.interval = o.interval.map(|d| duration(d.as_std()));
    out.base_ejection_time = o.base_ejection_time.map(|d| duration(d.as_std()));
    if let Some(p) = o.max_ejection_percent.and_then(|v| u32::try_from(v).ok()) {
        out.max_ejection_percent = u(p);
    }
    if let Some(p) = o.min_health_percent.filter(|p| *p >= 0) {
        c.common_lb_config = Some(cluster::CommonLbConfig {
            healthy_panic_threshold: Some(Percent {
                value: f64::from(p),
            }),
            ..Default::default()
        });
    }
    c.outlier_detection = Some(out);
}

/// The cluster's upstream HTTP options; HTTP/1.1 unless already set (Envoy requires an
/// upstream protocol whenever the options are present).
fn protocol_options(c: &Cluster) -> HttpProtocolOptions {
    use prost::Message;
    c.typed_extension_protocol_options
        .get(HTTP_PROTOCOL_OPTIONS)
        .and_then(|a| HttpProtocolOptions::decode(a.value.as_slice()).ok())
        .unwrap_or_else(|| HttpProtocolOptions {
            upstream_protocol_options: Some(
                http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                    http_protocol_options::ExplicitHttpConfig {
                        protocol_config: Some(
                            http_protocol_options::explicit_http_config::ProtocolConfig::HttpProtocolOptions(
                                Default::default(),
                            ),
                        ),
                    },
                ),
            ),
            ..Default::default()
        })
}

fn set_protocol_options(c: &mut Cluster, opts: &HttpProtocolOptions) {
    c.typed_extension_protocol_options
        .insert(HTTP_PROTOCOL_OPTIONS.to_owned(), any(opts));
}

const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// HTTP/2 to the upstream (gRPC and HTTP2 ports).
fn set_http2(c: &mut Cluster) {
    let mut opts = protocol_options(c);
    opts.upstream_protocol_options = Some(
        http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
            http_protocol_options::ExplicitHttpConfig {
                protocol_config: Some(
                    http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                        Http2ProtocolOptions::default(),
                    ),
                ),
            },
        ),
    );
    set_protocol_options(c, &opts);
}

/// Endpoints grouped by locality, in address order.
pub(super) fn load_assignment(cluster: &str, eps: &[Endpoint]) -> ClusterLoadAssignment {
    let mut by_locality: BTreeMap<String, Vec<LbEndpoint>> = BTreeMap::new();
    for e in eps {
        by_locality
            .entry(e.locality.clone().unwrap_or_default())
            .or_default()
            .push(LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(EnvoyEndpoint {
                    address: Some(socket_address(&e.address, e.port)),
                    ..Default::default()
                })),
                load_balancing_weight: e
                    .weight
                    .filter(|w| *w > 0)
                    .map(|value| UInt32Value { value }),
                ..Default::default()
            });
    }
    ClusterLoadAssignment {
        cluster_name: cluster.to_owned(),
        endpoints: by_locality
            .into_iter()
            .map(|(loc, lb_endpoints)| {
                let mut parts = loc.splitn(3, '/');
                let locality = (!loc.is_empty()).then(|| Locality {
                    region: parts.next().unwrap_or_default().to_owned(),
                    zone: parts.next().unwrap_or_default().to_owned(),
                    sub_zone: parts.next().unwrap_or_default().to_owned(),
                });
                LocalityLbEndpoints {
                    locality,
                    lb_endpoints,
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}

/// `inbound|PORT||` for each port of each service the proxy's own workload serves: a
/// static cluster to the application on the workload's address.
pub(super) fn inbound(ctx: &Ctx, out: &mut ProxyResources) {
    for (port, target) in inbound_ports(ctx) {
        let name = ClusterName::inbound(port, "", "");
        let mut c = base_cluster(&name, &Policy::default());
        c.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        ));
        let ip = ctx
            .proxy
            .app_ip
            .as_deref()
            .or(ctx.proxy.ip())
            .unwrap_or("127.0.0.1");
        c.load_assignment = Some(load_assignment(
            &name.to_string(),
            &[Endpoint {
                address: ip.to_owned(),
                port: target,
                labels: BTreeMap::new(),
                weight: None,
                locality: None,
                service_account: None,
            }],
        ));
        out.clusters.insert(name.to_string(), c);
    }
}

/// `(service port, application port)` of every service the proxy's workload serves.
pub(super) fn inbound_ports(ctx: &Ctx) -> BTreeMap<u16, u16> {
    ctx.snap
        .registry
        .services_of_workload(&ctx.proxy.namespace, &ctx.proxy.labels)
        .flat_map(|s| s.ports.iter())
        .map(|p| (p.number, p.target_port.unwrap_or(p.number)))
        .collect()
}

/// Istio's `PassthroughCluster`/`InboundPassthroughCluster`: to the original destination.
fn passthrough(name: &str) -> Cluster {
    Cluster {
        name: name.to_owned(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32,
        )),
        connect_timeout: Some(duration(CONNECT_TIMEOUT)),
        lb_policy: cluster::LbPolicy::ClusterProvided as i32,
        ..Default::default()
    }
}

/// Istio's `BlackHoleCluster`: no endpoints, so every request fails fast.
fn blackhole() -> Cluster {
    Cluster {
        name: BLACKHOLE_CLUSTER.to_owned(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        connect_timeout: Some(duration(CONNECT_TIMEOUT)),
        ..Default::default()
    }
}
