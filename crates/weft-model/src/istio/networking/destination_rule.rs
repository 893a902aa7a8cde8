//! `DestinationRule` (networking.istio.io v1, v1beta1, v1alpha3): what happens to traffic
//! after routing — subsets (versions) of a service, load balancing, connection pools,
//! outlier detection and TLS to the upstream.
//!
//! The traffic-policy pieces ([`TrafficPolicy`], [`ConnectionPoolSettings`],
//! [`LoadBalancerSettings`], [`OutlierDetection`], [`ClientTlsSettings`],
//! [`LocalityLoadBalancerSetting`]) are shared with other kinds (Sidecar's inbound
//! connection pool, ServiceEntry/egress TLS origination).
//!
//! Validation follows Istio's own rules (`pkg/config/validation` in istio/istio).

use super::virtual_service::{
    check_export_to, check_subset_name, fqdn_reason, is_header_name, is_ip_address,
    wildcard_host_reason,
};
use crate::common::{Duration, WorkloadSelector};
use crate::validate::{Ctx, Validate, check_duration_min, check_labels, check_percent, check_port};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// =======================================================================================
// Types
// =======================================================================================

/// Policies for traffic to one service, after routing has chosen it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationRule {
    /// The service (registry host) the rule applies to; short names, FQDNs or `*.` wildcards.
    #[serde(default)]
    pub host: String,
    /// Policies for all traffic to the host (subsets and ports can override them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    /// Named versions of the service, chosen by endpoint labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subsets: Vec<Subset>,
    /// Namespaces that can see this rule: `.`, `*` or namespace names (default all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// Apply the rule only to client workloads with these labels (in this namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<WorkloadSelector>,
}

impl DestinationRule {
    /// The subset with this name, if defined.
    pub fn subset(&self, name: &str) -> Option<&Subset> {
        self.subsets.iter().find(|s| s.name == name)
    }
}

/// A named version of a service: the endpoints with these labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subset {
    /// Subset name, referenced from `VirtualService` destinations; required.
    #[serde(default)]
    pub name: String,
    /// Endpoint labels that select the subset's members.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Policies for this subset, overriding the rule's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
}

/// Load balancing, connection pool, outlier detection and TLS for upstream traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicy {
    /// How endpoints are picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection and request limits (circuit breaking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Ejecting failing endpoints from the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS to the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
    /// Overrides for individual ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_level_settings: Vec<PortTrafficPolicy>,
    /// Tunnel TCP traffic through HTTP CONNECT or POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelSettings>,
    /// Send the PROXY protocol header upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Limit concurrent retries relative to active requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RetryBudget>,
}

/// Policy overrides for one port of the service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortTrafficPolicy {
    /// The port; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<super::virtual_service::PortSelector>,
    /// How endpoints are picked on this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerSettings>,
    /// Connection limits on this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_pool: Option<ConnectionPoolSettings>,
    /// Outlier detection on this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS on this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
}

/// Load balancing: a simple algorithm or consistent hashing, plus locality and warmup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSettings {
    /// A simple algorithm (`ROUND_ROBIN`, `LEAST_REQUEST`, `RANDOM`, `PASSTHROUGH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple: Option<SimpleLb>,
    /// Sticky sessions by consistent hashing (instead of `simple`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_hash: Option<ConsistentHashLb>,
    /// Locality-aware distribution and failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality_lb_setting: Option<LocalityLoadBalancerSetting>,
    /// Deprecated: slow-start window for new endpoints; use `warmup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_duration_secs: Option<Duration>,
    /// Slow start: ramp traffic to new endpoints up over a period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<WarmupConfiguration>,
}

/// Simple load-balancing algorithms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SimpleLb {
    /// The proxy's default (`LEAST_REQUEST`).
    #[default]
    Unspecified,
    /// Deprecated name of `LEAST_REQUEST`.
    LeastConn,
    /// A random healthy endpoint.
    Random,
    /// Forward to the address the client asked for, without load balancing.
    Passthrough,
    /// Each healthy endpoint in turn.
    RoundRobin,
    /// The endpoint with fewer active requests of two picked at random.
    LeastRequest,
}

/// Consistent hashing: the same key goes to the same endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistentHashLb {
    /// Hash on this request header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_header_name: Option<String>,
    /// Hash on this cookie (generated if missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_cookie: Option<HttpCookie>,
    /// Hash on the client's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_source_ip: Option<bool>,
    /// Hash on this query parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_query_parameter_name: Option<String>,
    /// Ring hash algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_hash: Option<RingHash>,
    /// Maglev algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maglev: Option<MagLev>,
    /// Deprecated: ring size; use `ringHash.minimumRingSize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_ring_size: Option<u64>,
}

/// The cookie consistent hashing uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCookie {
    /// Cookie name; required.
    #[serde(default)]
    pub name: String,
    /// Cookie path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Cookie lifetime; a cookie is generated when the request has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Extra attributes of the generated cookie (`SameSite`, `Secure`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<CookieAttribute>,
}

/// One attribute of a generated cookie.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CookieAttribute {
    /// Attribute name; required.
    #[serde(default)]
    pub name: String,
    /// Attribute value (empty for flags such as `Secure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Ring hash settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RingHash {
    /// Minimum number of virtual nodes on the ring (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_ring_size: Option<u64>,
}

/// Maglev settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MagLev {
    /// Lookup table size: a prime below 5000011.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_size: Option<u64>,
}

/// Locality-aware load balancing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityLoadBalancerSetting {
    /// Explicit traffic shares from each client locality to endpoint localities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distribute: Vec<LocalityDistribute>,
    /// Which region takes over when a region's endpoints are unhealthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover: Vec<LocalityFailover>,
    /// Labels, in order, that rank endpoints for failover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_priority: Vec<String>,
    /// Turn locality load balancing on or off (default: the mesh setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Traffic shares from one client locality.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityDistribute {
    /// Client locality, `region/zone/subzone`, `*` allowed at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Endpoint localities and their weights (adding up to 100).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub to: BTreeMap<String, u32>,
}

/// A failover pair of regions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalityFailover {
    /// Region whose traffic fails over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Region it fails over to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// Slow start for new endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarmupConfiguration {
    /// How long the ramp-up lasts; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// Share of traffic a new endpoint gets at the start (0-100, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_percent: Option<f64>,
    /// Curve of the ramp: 1 is linear, above 1 is slower at first (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggression: Option<f64>,
}

/// Connection pool limits for HTTP and TCP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionPoolSettings {
    /// Settings for all connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSettings>,
    /// Settings for HTTP requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSettings>,
}

/// TCP connection limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSettings {
    /// Maximum connections to each destination host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<i32>,
    /// Connection timeout (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// TCP keepalive probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Close connections older than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_duration: Option<Duration>,
    /// Close connections idle for this long (0s: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
}

/// TCP keepalive settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpKeepalive {
    /// Probes without answer before the connection is dead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<u32>,
    /// Idle time before probes start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Duration>,
    /// Time between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// HTTP request limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSettings {
    /// Maximum requests queued waiting for a connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http1_max_pending_requests: Option<i32>,
    /// Maximum active requests to a destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_max_requests: Option<i32>,
    /// Maximum requests per connection (1 disables keep-alive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<i32>,
    /// Maximum outstanding retries to all hosts of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i32>,
    /// Close pooled connections idle for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// Whether HTTP/1.1 connections are upgraded to HTTP/2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h2_upgrade_policy: Option<H2UpgradePolicy>,
    /// Keep the client's HTTP version to the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_client_protocol: Option<bool>,
    /// Maximum concurrent streams per HTTP/2 connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<i32>,
}

/// Upgrading HTTP/1.1 connections to HTTP/2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum H2UpgradePolicy {
    /// The mesh-wide default.
    #[default]
    Default,
    /// Never upgrade.
    DoNotUpgrade,
    /// Always upgrade.
    Upgrade,
}

/// Ejecting endpoints that keep failing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// Count local-origin failures (resets, timeouts) separately from upstream errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_external_local_origin_errors: Option<bool>,
    /// Local-origin failures before ejection (needs `splitExternalLocalOriginErrors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_local_origin_failures: Option<u32>,
    /// 502, 503 and 504 responses (and connection failures) before ejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<u32>,
    /// 5xx responses (and connection failures) before ejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_5xx_errors: Option<u32>,
    /// Deprecated: use `consecutiveGatewayErrors` or `consecutive5xxErrors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_errors: Option<i32>,
    /// Time between ejection sweeps (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Minimum ejection time, multiplied by the number of ejections (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_time: Option<Duration>,
    /// Maximum share of endpoints ejected at once (default 10%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<i32>,
    /// Ejection stops when fewer than this share of endpoints is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_health_percent: Option<i32>,
}

/// TLS from the proxy to the upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTlsSettings {
    /// Whether and how to use TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ClientTlsMode>,
    /// Client certificate file (MUTUAL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// Client private key file (MUTUAL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// CA certificates file to verify the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<String>,
    /// Secret holding the client certificate, key and CA (instead of files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_name: Option<String>,
    /// Names the server certificate must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// SNI to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Skip verifying the server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// Certificate revocation list file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_crl: Option<String>,
}

/// Upstream TLS modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClientTlsMode {
    /// Plain text.
    #[default]
    Disable,
    /// TLS, verifying the server.
    Simple,
    /// Mutual TLS with the given client certificate.
    Mutual,
    /// Mutual TLS with the mesh's workload certificates.
    IstioMutual,
}

/// Tunnelling TCP over HTTP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TunnelSettings {
    /// `CONNECT` (default) or `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Host the tunnel leads to; required.
    #[serde(default)]
    pub target_host: String,
    /// Port the tunnel leads to; required.
    #[serde(default)]
    pub target_port: u32,
}

/// The PROXY protocol header sent upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyProtocol {
    /// Protocol version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ProxyProtocolVersion>,
}

/// PROXY protocol versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProxyProtocolVersion {
    /// Text format.
    #[default]
    V1,
    /// Binary format.
    V2,
}

/// Limit on concurrent retries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    /// Concurrent retries as a share of active and pending requests (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Retries always allowed regardless of `percent` (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_retry_concurrency: Option<u32>,
}

// =======================================================================================
// Validation
// =======================================================================================

impl Validate for DestinationRule {
    fn validate(&self, cx: &mut Ctx) {
        if self.host.is_empty() {
            cx.error_at(
                "host",
                "`host` is required: name the service this rule applies to",
            );
        } else if let Some(r) = wildcard_host_reason(&self.host) {
            cx.error_at(
                "host",
                format!("host `{}` is not a valid host name: {r}", self.host),
            );
        }
        cx.opt("trafficPolicy", &self.traffic_policy);
        cx.each("subsets", &self.subsets, |cx, i, s| {
            if let Some(first) = self.subsets[..i].iter().position(|o| !s.name.is_empty() && o.name == s.name) {
                cx.error_at(
                    "name",
                    format!("subset `{}` is defined twice (first at subsets[{first}]): subset names must be unique", s.name),
                );
            }
            s.validate(cx);
        });
        check_export_to(cx, &self.export_to, self.workload_selector.is_some());
        if let Some(ws) = &self.workload_selector {
            if ws.match_labels.is_empty() {
                cx.warn_at(
                    "workloadSelector",
                    "`workloadSelector` has no labels: the rule applies to every workload in the namespace",
                );
            }
            cx.field("workloadSelector", |cx| ws.validate(cx));
        }
    }
}

impl Validate for Subset {
    fn validate(&self, cx: &mut Ctx) {
        if self.name.is_empty() {
            cx.error_at(
                "name",
                "`name` is required: VirtualService destinations refer to the subset by name",
            );
        } else {
            cx.field("name", |cx| check_subset_name(cx, &self.name));
        }
        cx.field("labels", |cx| check_labels(cx, &self.labels));
        cx.opt("trafficPolicy", &self.traffic_policy);
    }
}

impl Validate for TrafficPolicy {
    fn validate(&self, cx: &mut Ctx) {
        if self.load_balancer.is_none()
            && self.connection_pool.is_none()
            && self.outlier_detection.is_none()
            && self.tls.is_none()
            && self.port_level_settings.is_empty()
            && self.tunnel.is_none()
            && self.proxy_protocol.is_none()
            && self.retry_budget.is_none()
        {
            cx.error(
                "`trafficPolicy` is empty: set at least one of loadBalancer, connectionPool, outlierDetection, tls, portLevelSettings, tunnel, proxyProtocol or retryBudget",
            );
            return;
        }
        if self.tunnel.is_some() && self.proxy_protocol.is_some() {
            cx.error("`tunnel` and `proxyProtocol` cannot both be set");
        }
        check_policy_parts(
            cx,
            &self.load_balancer,
            &self.connection_pool,
            &self.outlier_detection,
            &self.tls,
        );
        let mut ports: Vec<(u32, usize)> = Vec::new();
        cx.each("portLevelSettings", &self.port_level_settings, |cx, i, p| {
            p.validate(cx);
            if let Some(n) = p.port.as_ref().map(|p| p.number).filter(|n| *n != 0) {
                if let Some((_, first)) = ports.iter().find(|(m, _)| *m == n) {
                    let first = *first;
                    cx.field("port", |cx| {
                        cx.error_at(
                            "number",
                            format!("port {n} already has settings at portLevelSettings[{first}]: merge them into one entry"),
                        )
                    });
                } else {
                    ports.push((n, i));
                }
            }
        });
        cx.opt("tunnel", &self.tunnel);
        cx.opt("retryBudget", &self.retry_budget);
    }
}

fn check_policy_parts(
    cx: &mut Ctx,
    lb: &Option<LoadBalancerSettings>,
    pool: &Option<ConnectionPoolSettings>,
    outlier: &Option<OutlierDetection>,
    tls: &Option<ClientTlsSettings>,
) {
    cx.opt("outlierDetection", outlier);
    cx.opt("connectionPool", pool);
    if let Some(lb) = lb {
        cx.field("loadBalancer", |cx| lb.check(cx, outlier.is_some()));
    }
    cx.opt("tls", tls);
}

impl Validate for PortTrafficPolicy {
    fn validate(&self, cx: &mut Ctx) {
        match &self.port {
            None => cx.error_at(
                "port",
                "`port` is required: name the port these settings apply to",
            ),
            Some(p) => cx.field("port", |cx| p.validate(cx)),
        }
        if self.load_balancer.is_none()
            && self.connection_pool.is_none()
            && self.outlier_detection.is_none()
            && self.tls.is_none()
        {
            cx.error("port-level settings need at least one of loadBalancer, connectionPool, outlierDetection or tls");
        } else {
            check_policy_parts(
                cx,
                &self.load_balancer,
                &self.connection_pool,
                &self.outlier_detection,
                &self.tls,
            );
        }
    }
}

/// Istio's primality test for Maglev table sizes (the same as Envoy's).
fn is_prime(x: u64) -> bool {
    if x != 0 && x < 4 {
        return true;
    }
    if x & 1 == 0 {
        return false;
    }
    let mut f = 3;
    while f * f <= x {
        if x.is_multiple_of(f) {
            return false;
        }
        f += 2;
    }
    true
}

impl LoadBalancerSettings {
    /// Checks at the current path; `has_outlier` tells whether the same policy sets
    /// outlier detection (locality failover needs it).
    pub fn check(&self, cx: &mut Ctx, has_outlier: bool) {
        cx.at_most_one(&[
            ("simple", self.simple.is_some()),
            ("consistentHash", self.consistent_hash.is_some()),
        ]);
        if self.simple == Some(SimpleLb::LeastConn) {
            cx.warn_at("simple", "`LEAST_CONN` is deprecated: use `LEAST_REQUEST`");
        }
        cx.opt("consistentHash", &self.consistent_hash);
        if let Some(l) = &self.locality_lb_setting {
            cx.field("localityLbSetting", |cx| l.check(cx, has_outlier));
        }
        if let Some(d) = &self.warmup_duration_secs {
            cx.field("warmupDurationSecs", |cx| {
                check_duration_min(cx, d, 1);
                cx.warn(format!(
                    "`warmupDurationSecs` is deprecated: use `warmup: {{duration: {d}}}`"
                ));
            });
        }
        if let Some(w) = &self.warmup {
            cx.field("warmup", |cx| {
                match &w.duration {
                    None => cx.error_at("duration", "`duration` is required: how long new endpoints ramp up"),
                    Some(d) => cx.field("duration", |cx| check_duration_min(cx, d, 1)),
                }
                if let Some(p) = w.minimum_percent {
                    cx.field("minimumPercent", |cx| check_percent(cx, p));
                }
                if let Some(a) = w.aggression
                    && (a.is_nan() || a < 1.0)
                {
                    cx.error_at("aggression", format!("aggression {a} is too small: it must be 1 or more (1 ramps up linearly)"));
                }
            });
        }
    }
}

impl Validate for ConsistentHashLb {
    fn validate(&self, cx: &mut Ctx) {
        cx.exactly_one(&[
            ("httpHeaderName", self.http_header_name.is_some()),
            ("httpCookie", self.http_cookie.is_some()),
            ("useSourceIp", self.use_source_ip.is_some()),
            (
                "httpQueryParameterName",
                self.http_query_parameter_name.is_some(),
            ),
        ]);
        if let Some(h) = &self.http_header_name {
            if h.is_empty() {
                cx.error_at("httpHeaderName", "the header name must not be empty");
            } else if !is_header_name(h) {
                cx.error_at(
                    "httpHeaderName",
                    format!(
                        "`{h}` is not a valid header name: use letters, digits and !#$%&'*+-.^_`|~"
                    ),
                );
            }
        }
        if self.http_query_parameter_name.as_deref() == Some("") {
            cx.error_at(
                "httpQueryParameterName",
                "the query parameter name must not be empty",
            );
        }
        if let Some(c) = &self.http_cookie {
            cx.field("httpCookie", |cx| {
                if c.name.is_empty() {
                    cx.error_at("name", "`name` is required: the cookie to hash on");
                }
                cx.each("attributes", &c.attributes, |cx, _, a| {
                    if a.name.is_empty() {
                        cx.error_at("name", "`name` is required: the cookie attribute to set");
                    }
                });
            });
        }
        cx.at_most_one(&[
            ("ringHash", self.ring_hash.is_some()),
            ("maglev", self.maglev.is_some()),
        ]);
        if let Some(n) = self.minimum_ring_size {
            if n != 0 {
                cx.warn_at(
                    "minimumRingSize",
                    format!(
                        "`minimumRingSize` is deprecated: use `ringHash: {{minimumRingSize: {n}}}`"
                    ),
                );
            }
            if n != 0 && (self.ring_hash.is_some() || self.maglev.is_some()) {
                cx.error_at(
                    "minimumRingSize",
                    "`minimumRingSize` cannot be combined with `ringHash` or `maglev`: set the size inside `ringHash`",
                );
            }
        }
        if let Some(m) = &self.maglev {
            cx.field("maglev", |cx| match m.table_size {
                None | Some(0) => cx.error_at(
                    "tableSize",
                    "`tableSize` is required for maglev: use a prime such as 65537",
                ),
                Some(t) if t >= 5_000_011 => cx.error_at(
                    "tableSize",
                    format!("tableSize {t} is too large: it must be below 5000011"),
                ),
                Some(t) if !is_prime(t) => cx.error_at(
                    "tableSize",
                    format!(
                        "tableSize {t} is not a prime number: maglev needs a prime such as 65537"
                    ),
                ),
                Some(_) => {}
            });
        }
    }
}

const TOPOLOGY_LABELS: &[&str] = &[
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.istio.io/subzone",
];

/// Why a list of localities is invalid (bad wildcard, empty part, overlap), with the index.
fn localities_problem<'a>(localities: impl Iterator<Item = &'a str>) -> Option<(usize, String)> {
    // region -> zone -> subzones; "*" marks "all".
    let mut map: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (i, loc) in localities.enumerate() {
        let stars = loc.matches('*').count();
        if stars > 1 || (stars == 1 && !loc.ends_with('*')) {
            return Some((
                i,
                format!("locality `{loc}` may have only one `*`, at the end"),
            ));
        }
        if map.contains_key("*") {
            return Some((i, format!("locality `{loc}` overlaps `*` listed before it")));
        }
        let parts: Vec<&str> = loc.splitn(3, '/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Some((
                i,
                format!("locality `{loc}` has an empty region, zone or subzone"),
            ));
        }
        let overlap = || Some((i, format!("locality `{loc}` overlaps one listed before it")));
        let region = parts[0].to_string();
        match parts.len() {
            1 => {
                if map.contains_key(&region) {
                    return overlap();
                }
                map.insert(region, BTreeMap::from([("*".into(), vec!["*".into()])]));
            }
            2 => {
                let zones = map.entry(region).or_default();
                if zones.contains_key("*") || zones.contains_key(parts[1]) {
                    return overlap();
                }
                zones.insert(parts[1].into(), vec!["*".into()]);
            }
            _ => {
                let zones = map.entry(region).or_default();
                if zones.contains_key("*") {
                    return overlap();
                }
                let subs = zones.entry(parts[1].into()).or_default();
                if subs.iter().any(|s| s == "*" || s == parts[2]) {
                    return overlap();
                }
                subs.push(parts[2].into());
            }
        }
    }
    None
}

impl LocalityLoadBalancerSetting {
    /// Checks at the current path; failover without outlier detection only warns.
    pub fn check(&self, cx: &mut Ctx, has_outlier: bool) {
        if !self.distribute.is_empty() && !self.failover.is_empty() {
            cx.error("`distribute` and `failover` cannot both be set");
            return;
        }
        if !self.failover.is_empty() {
            for (i, l) in self.failover_priority.iter().enumerate() {
                if TOPOLOGY_LABELS.contains(&l.as_str()) {
                    cx.field("failoverPriority", |cx| {
                        cx.index(i, |cx| {
                            cx.error(format!(
                                "`{l}` cannot be in `failoverPriority` when `failover` is set: failover already decides the region order"
                            ))
                        })
                    });
                    return;
                }
            }
        }
        for (i, d) in self.distribute.iter().enumerate() {
            let mut total: u64 = 0;
            for (loc, w) in &d.to {
                if *w == 0 || *w > 100 {
                    cx.field("distribute", |cx| {
                        cx.index(i, |cx| {
                            cx.field("to", |cx| {
                                cx.error_at(loc, format!("locality weight {w} is out of range: it must be between 1 and 100"))
                            })
                        })
                    });
                    return;
                }
                total += u64::from(*w);
            }
            if total != 100 {
                cx.field("distribute", |cx| {
                    cx.index(i, |cx| {
                        cx.error_at(
                            "to",
                            format!("locality weights add up to {total}: they must add up to 100"),
                        )
                    })
                });
                return;
            }
            if let Some((_, msg)) = localities_problem(d.to.keys().map(String::as_str)) {
                cx.field("distribute", |cx| cx.index(i, |cx| cx.error_at("to", msg)));
            }
        }
        if let Some((i, msg)) = localities_problem(
            self.distribute
                .iter()
                .map(|d| d.from.as_deref().unwrap_or("")),
        ) {
            cx.field("distribute", |cx| {
                cx.index(i, |cx| cx.error_at("from", msg))
            });
        }
        if (!self.failover.is_empty() || !self.failover_priority.is_empty()) && !has_outlier {
            cx.warn(
                "locality failover needs `outlierDetection` in the same traffic policy: without it unhealthy endpoints are never detected and failover never happens",
            );
        }
        cx.each("failover", &self.failover, |cx, _, f| {
            let from = f.from.as_deref().unwrap_or("");
            let to = f.to.as_deref().unwrap_or("");
            if from == to {
                cx.error(format!(
                    "failover from `{from}` to `{to}`: the two regions must differ"
                ));
            }
            if from.contains('/') || to.contains('/') {
                cx.error("failover works on regions only: `from` and `to` must not contain '/'");
            }
            if from.contains('*') || to.contains('*') {
                cx.error("failover regions must not contain the `*` wildcard");
            }
        });
    }
}

impl Validate for ConnectionPoolSettings {
    fn validate(&self, cx: &mut Ctx) {
        if self.tcp.is_none() && self.http.is_none() {
            cx.error("`connectionPool` is empty: set `tcp`, `http` or both");
            return;
        }
        if let Some(h) = &self.http {
            cx.field("http", |cx| {
                for (field, v) in [
                    ("http1MaxPendingRequests", h.http1_max_pending_requests),
                    ("http2MaxRequests", h.http2_max_requests),
                    ("maxRequestsPerConnection", h.max_requests_per_connection),
                    ("maxRetries", h.max_retries),
                    ("maxConcurrentStreams", h.max_concurrent_streams),
                ] {
                    non_negative(cx, field, v);
                }
                if let Some(t) = &h.idle_timeout {
                    cx.field("idleTimeout", |cx| check_duration_min(cx, t, 1));
                }
                if h.h2_upgrade_policy == Some(H2UpgradePolicy::Upgrade) && h.use_client_protocol == Some(true) {
                    cx.error_at(
                        "useClientProtocol",
                        "`useClientProtocol: true` conflicts with `h2UpgradePolicy: UPGRADE`: keep the client's protocol or upgrade, not both",
                    );
                }
            });
        }
        if let Some(t) = &self.tcp {
            cx.field("tcp", |cx| {
                non_negative(cx, "maxConnections", t.max_connections);
                for (field, d) in [
                    ("connectTimeout", &t.connect_timeout),
                    ("maxConnectionDuration", &t.max_connection_duration),
                ] {
                    if let Some(d) = d {
                        cx.field(field, |cx| check_duration_min(cx, d, 1));
                    }
                }
                // 0s disables the idle timeout.
                if let Some(d) = t.idle_timeout.filter(|d| !d.0.is_zero()) {
                    cx.field("idleTimeout", |cx| check_duration_min(cx, &d, 1));
                }
                if let Some(k) = &t.tcp_keepalive {
                    cx.field("tcpKeepalive", |cx| {
                        for (field, d) in [("time", &k.time), ("interval", &k.interval)] {
                            if let Some(d) = d {
                                cx.field(field, |cx| check_duration_min(cx, d, 1));
                            }
                        }
                    });
                }
            });
        }
    }
}

fn non_negative(cx: &mut Ctx, field: &str, v: Option<i32>) {
    if let Some(v) = v
        && v < 0
    {
        cx.error_at(
            field,
            format!("{field} {v} is negative: it must be 0 or more"),
        );
    }
}

impl Validate for OutlierDetection {
    fn validate(&self, cx: &mut Ctx) {
        for (field, d) in [
            ("baseEjectionTime", &self.base_ejection_time),
            ("interval", &self.interval),
        ] {
            if let Some(d) = d {
                cx.field(field, |cx| check_duration_min(cx, d, 1));
            }
        }
        if let Some(n) = self.consecutive_errors.filter(|n| *n != 0) {
            cx.warn_at(
                "consecutiveErrors",
                format!("`consecutiveErrors` is deprecated: use `consecutiveGatewayErrors: {n}` or `consecutive5xxErrors: {n}`"),
            );
        }
        if self.split_external_local_origin_errors != Some(true)
            && self.consecutive_local_origin_failures.unwrap_or(0) > 0
        {
            cx.error_at(
                "consecutiveLocalOriginFailures",
                "`consecutiveLocalOriginFailures` only counts when `splitExternalLocalOriginErrors` is true: set it, or remove this field",
            );
        }
        for (field, v) in [
            ("maxEjectionPercent", self.max_ejection_percent),
            ("minHealthPercent", self.min_health_percent),
        ] {
            if let Some(v) = v {
                cx.field(field, |cx| check_percent(cx, f64::from(v)));
            }
        }
    }
}

fn set(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl Validate for ClientTlsSettings {
    fn validate(&self, cx: &mut Ctx) {
        let mode = self.mode.unwrap_or_default();
        if let Some(rest) = self
            .credential_name
            .as_deref()
            .and_then(|c| c.strip_prefix("configmap://"))
        {
            let ns = cx.namespace.clone();
            match rest.split_once('/') {
                Some((other, _)) if other != ns => cx.error_at(
                    "credentialName",
                    format!("a `configmap://` credential must be in this rule's namespace `{ns}`, not `{other}`"),
                ),
                _ if rest.is_empty() || rest.ends_with('/') => {
                    cx.error_at("credentialName", "`configmap://` must be followed by a ConfigMap name")
                }
                _ => {}
            }
        }
        if self.insecure_skip_verify == Some(true) {
            if mode == ClientTlsMode::Simple
                && (set(&self.ca_certificates)
                    || set(&self.credential_name)
                    || !self.subject_alt_names.is_empty())
            {
                cx.error_at(
                    "insecureSkipVerify",
                    "`insecureSkipVerify: true` skips server verification, so `caCertificates`, `credentialName` and `subjectAltNames` must not be set",
                );
            }
            if mode == ClientTlsMode::Mutual
                && (set(&self.ca_certificates) || !self.subject_alt_names.is_empty())
            {
                cx.error_at(
                    "insecureSkipVerify",
                    "`insecureSkipVerify: true` skips server verification, so `caCertificates` and `subjectAltNames` must not be set",
                );
            }
        }
        let files = [
            ("clientCertificate", &self.client_certificate),
            ("privateKey", &self.private_key),
            ("caCertificates", &self.ca_certificates),
            ("caCrl", &self.ca_crl),
        ];
        match mode {
            ClientTlsMode::Simple | ClientTlsMode::Mutual if set(&self.credential_name) => {
                for (field, v) in files {
                    if set(v) {
                        cx.error_at(
                            field,
                            format!("`{field}` cannot be set together with `credentialName`: the credential supplies the certificates"),
                        );
                    }
                }
            }
            ClientTlsMode::Mutual => {
                if !set(&self.client_certificate) {
                    cx.error_at(
                        "clientCertificate",
                        "MUTUAL TLS needs a client certificate: set `clientCertificate` and `privateKey`, or `credentialName`",
                    );
                }
                if !set(&self.private_key) {
                    cx.error_at(
                        "privateKey",
                        "MUTUAL TLS needs a private key: set `clientCertificate` and `privateKey`, or `credentialName`",
                    );
                }
            }
            ClientTlsMode::IstioMutual => {
                for (field, v) in files
                    .iter()
                    .chain([("credentialName", &self.credential_name)].iter())
                {
                    if set(v) {
                        cx.warn_at(
                            field,
                            format!("`{field}` is ignored with ISTIO_MUTUAL: the mesh's workload certificates are used"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

impl Validate for TunnelSettings {
    fn validate(&self, cx: &mut Ctx) {
        if let Some(p) = self.protocol.as_deref().filter(|p| !p.is_empty())
            && p != "CONNECT"
            && p != "POST"
        {
            cx.error_at(
                "protocol",
                format!("tunnel protocol `{p}` is invalid: use `CONNECT` or `POST`"),
            );
        }
        let h = &self.target_host;
        if h.is_empty() {
            cx.error_at(
                "targetHost",
                "`targetHost` is required: the host the tunnel leads to",
            );
        } else if !is_ip_address(h)
            && let Some(r) = fqdn_reason(h)
        {
            cx.error_at(
                "targetHost",
                format!("tunnel target host `{h}` is not a valid host name or IP address: {r}"),
            );
        }
        cx.field("targetPort", |cx| check_port(cx, self.target_port));
    }
}

impl Validate for RetryBudget {
    fn validate(&self, cx: &mut Ctx) {
        if let Some(p) = self.percent {
            cx.field("percent", |cx| check_percent(cx, p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        assert!(is_prime(65537));
        assert!(is_prime(2));
        assert!(!is_prime(65536));
        assert!(!is_prime(9));
    }

    #[test]
    fn localities() {
        assert_eq!(
            localities_problem(["us-east", "us-west/zone1"].into_iter()),
            None
        );
        assert!(localities_problem(["us-east", "us-east/zone1"].into_iter()).is_some());
        assert!(localities_problem(["us-east/*/x"].into_iter()).is_some());
        assert!(localities_problem(["*", "us-east"].into_iter()).is_some());
        assert!(localities_problem(["us-east//a"].into_iter()).is_some());
    }
}
