//! Clusters: discovery type, load-balancing policy, upstream protocol and endpoints,
//! converted from Envoy's `Cluster` (with an inline `ClusterLoadAssignment`).

use crate::config::util::{HostPort, decode_any, duration, host_port};
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::cluster::v3::{self as pb, cluster};
use envoy_types::pb::envoy::config::core::v3::HealthStatus;
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    HttpProtocolOptions,
    http_protocol_options::{UpstreamProtocolOptions, explicit_http_config::ProtocolConfig},
};
use std::sync::Arc;
use std::time::Duration;
use weft_xds::type_url;

/// Envoy's default `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Envoy's default `dns_refresh_rate`.
pub const DEFAULT_DNS_REFRESH: Duration = Duration::from_secs(5);

/// A converted `Cluster`.
#[derive(Debug)]
pub struct ClusterConfig {
    pub name: Arc<str>,
    /// The name stats are reported under (`alt_stat_name`, else `name`).
    pub stat_name: String,
    pub discovery: Discovery,
    pub lb: LbPolicy,
    pub connect_timeout: Duration,
    pub protocol: UpstreamProtocol,
    /// Endpoints grouped by locality and priority, as configured.
    pub localities: Vec<LocalityEndpoints>,
    pub dns_refresh: Duration,
    pub dns_family: DnsFamily,
    pub original_dst: OriginalDstOptions,
    /// `load_assignment.policy.overprovisioning_factor` (percent, default 140).
    pub overprovisioning: u32,
    /// `common_lb_config.healthy_panic_threshold` (percent, default 50).
    pub panic_threshold: f64,
    /// `common_lb_config.locality_weighted_lb_config` is set.
    pub locality_weighted: bool,
    /// `circuit_breakers.thresholds` for the DEFAULT and HIGH priorities.
    pub thresholds: [Thresholds; 2],
    /// Close an upstream connection after this many requests
    /// (`common_http_protocol_options.max_requests_per_connection`).
    pub max_requests_per_connection: Option<u32>,
    /// Pooled upstream connections idle this long are closed
    /// (`common_http_protocol_options.idle_timeout`, Envoy's default 1 h; `0s` disables).
    pub idle_timeout: Option<Duration>,
    /// `outlier_detection`, when set.
    pub outlier: Option<crate::config::outlier::OutlierConfig>,
    /// `health_checks` (active health checking).
    pub health_checks: Vec<crate::config::health::HealthCheckConfig>,
}

/// Envoy's circuit-breaker thresholds for one priority (defaults 1024/1024/1024/3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub max_connections: u32,
    pub max_pending_requests: u32,
    pub max_requests: u32,
    pub max_retries: u32,
    /// `retry_budget`: (budget percent, min retry concurrency), replacing `max_retries`.
    pub retry_budget: Option<(f64, u32)>,
    /// `track_remaining`: `/stats` shows what each limit still allows.
    pub track_remaining: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            retry_budget: None,
            track_remaining: false,
        }
    }
}

fn thresholds(c: &pb::Cluster) -> Result<[Thresholds; 2], ConfigError> {
    use envoy_types::pb::envoy::config::core::v3::RoutingPriority;
    let mut out = [Thresholds::default(); 2];
    let Some(cb) = &c.circuit_breakers else {
        return Ok(out);
    };
    if !cb.per_host_thresholds.is_empty() {
        return Err(ConfigError::new("per_host_thresholds are not supported")
            .at("circuit_breakers.per_host_thresholds"));
    }
    for (i, t) in cb.thresholds.iter().enumerate() {
        let at = format!("circuit_breakers.thresholds[{i}]");
        let slot = match RoutingPriority::try_from(t.priority) {
            Ok(RoutingPriority::Default) => 0,
            Ok(RoutingPriority::High) => 1,
            Err(_) => return Err(ConfigError::new("unknown priority").at(format!("{at}.priority"))),
        };
        let d = Thresholds::default();
        let v = |x: &Option<envoy_types::pb::google::protobuf::UInt32Value>, d: u32| {
            x.as_ref().map_or(d, |v| v.value)
        };
        out[slot] = Thresholds {
            max_connections: v(&t.max_connections, d.max_connections),
            max_pending_requests: v(&t.max_pending_requests, d.max_pending_requests),
            max_requests: v(&t.max_requests, d.max_requests),
            max_retries: v(&t.max_retries, d.max_retries),
            track_remaining: t.track_remaining,
            retry_budget: t.retry_budget.as_ref().map(|b| {
                (
                    b.budget_percent.as_ref().map_or(20.0, |p| p.value),
                    b.min_retry_concurrency.as_ref().map_or(3, |m| m.value),
                )
            }),
        };
    }
    Ok(out)
}

/// How a cluster learns its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    Static,
    /// Resolve every endpoint's hostname periodically; every address is an endpoint.
    StrictDns,
    /// Resolve the single endpoint's hostname; use the first address.
    LogicalDns,
    /// Endpoints from EDS (for now the inline `load_assignment`).
    Eds,
    /// The downstream connection's original destination.
    OriginalDst,
}

/// Endpoint choice within a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    /// Weighted round robin.
    RoundRobin,
    /// Power of `choice_count` choices on outstanding requests (weighted by endpoint weight).
    LeastRequest {
        choice_count: u32,
    },
    Random,
    RingHash {
        min_ring_size: u64,
        max_ring_size: u64,
    },
    Maglev {
        table_size: u64,
    },
    /// The discovery type decides (ORIGINAL_DST).
    ClusterProvided,
}

/// The protocol spoken to upstream endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    /// h2c with prior knowledge (TLS and ALPN arrive with the mTLS issue).
    Http2,
    /// The same protocol as the downstream request.
    UseDownstream,
}

/// DNS address family preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsFamily {
    /// Envoy's AUTO: IPv6 if any, else IPv4.
    Auto,
    V4Only,
    V6Only,
    V4Preferred,
    All,
}

/// `original_dst_lb_config`.
#[derive(Debug, Clone, Default)]
pub struct OriginalDstOptions {
    /// Take the destination from this header (`x-envoy-original-dst-host` by default).
    pub http_header: Option<http::HeaderName>,
    pub port_override: Option<u16>,
}

/// One `LocalityLbEndpoints`.
#[derive(Debug, Clone)]
pub struct LocalityEndpoints {
    pub locality: Locality,
    pub weight: Option<u32>,
    pub priority: u32,
    pub endpoints: Vec<EndpointConfig>,
}

/// Region/zone/subzone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub sub_zone: String,
}

/// One configured endpoint (a DNS name expands to addresses at run time).
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub address: HostPort,
    /// `endpoint.hostname`, or the DNS name: what `auto_host_rewrite` uses.
    pub hostname: Option<String>,
    pub weight: u32,
    pub health: EndpointHealth,
}

/// Health as EDS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointHealth {
    Healthy,
    Degraded,
    Unhealthy,
}

impl TryFrom<&pb::Cluster> for ClusterConfig {
    type Error = ConfigError;

    fn try_from(c: &pb::Cluster) -> Result<Self, ConfigError> {
        if c.name.is_empty() {
            return Err(ConfigError::new("name is required").at("name"));
        }
        let discovery = match &c.cluster_discovery_type {
            None => Discovery::Static,
            Some(cluster::ClusterDiscoveryType::Type(t)) => {
                match cluster::DiscoveryType::try_from(*t) {
                    Ok(cluster::DiscoveryType::Static) => Discovery::Static,
                    Ok(cluster::DiscoveryType::StrictDns) => Discovery::StrictDns,
                    Ok(cluster::DiscoveryType::LogicalDns) => Discovery::LogicalDns,
                    Ok(cluster::DiscoveryType::Eds) => Discovery::Eds,
                    Ok(cluster::DiscoveryType::OriginalDst) => Discovery::OriginalDst,
                    Err(_) => return Err(ConfigError::new(format!("unknown type {t}")).at("type")),
                }
            }
            Some(cluster::ClusterDiscoveryType::ClusterType(t)) => {
                return Err(ConfigError::new(format!(
                    "custom cluster type {:?} is not supported",
                    t.name
                ))
                .at("cluster_type"));
            }
        };
        let lb = lb_policy(c, discovery)?;
        let localities = match &c.load_assignment {
            Some(la) => load_assignment(la, discovery).at("load_assignment")?,
            None => Vec::new(),
        };
        let endpoint_count: usize = localities.iter().map(|l| l.endpoints.len()).sum();
        match discovery {
            Discovery::LogicalDns if endpoint_count != 1 => {
                return Err(
                    ConfigError::new("LOGICAL_DNS clusters need exactly one endpoint")
                        .at("load_assignment"),
                );
            }
            Discovery::OriginalDst if endpoint_count != 0 => {
                return Err(ConfigError::new("ORIGINAL_DST clusters take no endpoints")
                    .at("load_assignment"));
            }
            _ => {}
        }
        let dns_family = match cluster::DnsLookupFamily::try_from(c.dns_lookup_family) {
            Ok(cluster::DnsLookupFamily::Auto) => DnsFamily::Auto,
            Ok(cluster::DnsLookupFamily::V4Only) => DnsFamily::V4Only,
            Ok(cluster::DnsLookupFamily::V6Only) => DnsFamily::V6Only,
            Ok(cluster::DnsLookupFamily::V4Preferred) => DnsFamily::V4Preferred,
            Ok(cluster::DnsLookupFamily::All) => DnsFamily::All,
            Err(_) => {
                return Err(ConfigError::new("unknown dns_lookup_family").at("dns_lookup_family"));
            }
        };
        let original_dst = match &c.lb_config {
            Some(cluster::LbConfig::OriginalDstLbConfig(o)) => OriginalDstOptions {
                http_header: o
                    .use_http_header
                    .then(|| {
                        let name = if o.http_header_name.is_empty() {
                            "x-envoy-original-dst-host"
                        } else {
                            o.http_header_name.as_str()
                        };
                        http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                    })
                    .transpose()
                    .map_err(|_| {
                        ConfigError::new("invalid header name")
                            .at("original_dst_lb_config.http_header_name")
                    })?,
                port_override: o
                    .upstream_port_override
                    .as_ref()
                    .map(|p| u16::try_from(p.value))
                    .transpose()
                    .map_err(|_| {
                        ConfigError::new("port out of range")
                            .at("original_dst_lb_config.upstream_port_override")
                    })?,
            },
            _ => OriginalDstOptions::default(),
        };
        Ok(ClusterConfig {
            name: Arc::from(c.name.as_str()),
            stat_name: if c.alt_stat_name.is_empty() {
                c.name.clone()
            } else {
                c.alt_stat_name.clone()
            },
            discovery,
            lb,
            connect_timeout: duration(c.connect_timeout.as_ref())
                .at("connect_timeout")?
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            protocol: upstream_protocol(c)?,
            localities,
            dns_refresh: duration(c.dns_refresh_rate.as_ref())
                .at("dns_refresh_rate")?
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_DNS_REFRESH),
            dns_family,
            original_dst,
            overprovisioning: c
                .load_assignment
                .as_ref()
                .and_then(|la| la.policy.as_ref())
                .and_then(|p| p.overprovisioning_factor.as_ref())
                .map_or(140, |f| f.value),
            panic_threshold: c
                .common_lb_config
                .as_ref()
                .and_then(|l| l.healthy_panic_threshold.as_ref())
                .map_or(50.0, |p| p.value.clamp(0.0, 100.0)),
            thresholds: thresholds(c)?,
            outlier: c
                .outlier_detection
                .as_ref()
                .map(crate::config::outlier::OutlierConfig::try_from)
                .transpose()
                .at("outlier_detection")?,
            health_checks: c
                .health_checks
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    crate::config::health::HealthCheckConfig::try_from(h)
                        .at(format!("health_checks[{i}]"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            max_requests_per_connection: max_requests_per_connection(c)?,
            idle_timeout: upstream_idle_timeout(c)?,
            locality_weighted: matches!(
                c.common_lb_config
                    .as_ref()
                    .and_then(|l| l.locality_config_specifier.as_ref()),
                Some(
                    cluster::common_lb_config::LocalityConfigSpecifier::LocalityWeightedLbConfig(_)
                )
            ),
        })
    }
}

fn lb_policy(c: &pb::Cluster, discovery: Discovery) -> Result<LbPolicy, ConfigError> {
    use cluster::LbPolicy as P;
    let policy = P::try_from(c.lb_policy).map_err(|_| {
        ConfigError::new(format!("unknown lb_policy {}", c.lb_policy)).at("lb_policy")
    })?;
    let lb = match policy {
        P::RoundRobin => LbPolicy::RoundRobin,
        P::LeastRequest => {
            let choice_count = match &c.lb_config {
                Some(cluster::LbConfig::LeastRequestLbConfig(l)) => {
                    l.choice_count.as_ref().map_or(2, |c| c.value.max(2))
                }
                _ => 2,
            };
            LbPolicy::LeastRequest { choice_count }
        }
        P::Random => LbPolicy::Random,
        P::RingHash => {
            let (min, max) = match &c.lb_config {
                Some(cluster::LbConfig::RingHashLbConfig(r)) => (
                    r.minimum_ring_size.as_ref().map_or(1024, |v| v.value),
                    r.maximum_ring_size
                        .as_ref()
                        .map_or(8 * 1024 * 1024, |v| v.value),
                ),
                _ => (1024, 8 * 1024 * 1024),
            };
            if min > max || max > 8 * 1024 * 1024 {
                return Err(ConfigError::new("ring sizes must satisfy min <= max <= 8M")
                    .at("ring_hash_lb_config"));
            }
            LbPolicy::RingHash {
                min_ring_size: min,
                max_ring_size: max,
            }
        }
        P::Maglev => {
            let table_size = match &c.lb_config {
                Some(cluster::LbConfig::MaglevLbConfig(m)) => {
                    m.table_size.as_ref().map_or(65537, |v| v.value)
                }
                _ => 65537,
            };
            if !is_prime(table_size) || table_size > 5_000_011 {
                return Err(ConfigError::new("table_size must be a prime up to 5000011")
                    .at("maglev_lb_config.table_size"));
            }
            LbPolicy::Maglev { table_size }
        }
        P::ClusterProvided => LbPolicy::ClusterProvided,
        P::LoadBalancingPolicyConfig => {
            return Err(ConfigError::new(
                "LOAD_BALANCING_POLICY_CONFIG is not supported; use lb_policy",
            )
            .at("lb_policy"));
        }
    };
    match (discovery, lb) {
        (Discovery::OriginalDst, LbPolicy::ClusterProvided | LbPolicy::RoundRobin) => {
            Ok(LbPolicy::ClusterProvided)
        }
        (Discovery::OriginalDst, _) => Err(ConfigError::new(
            "ORIGINAL_DST clusters need lb_policy CLUSTER_PROVIDED",
        )
        .at("lb_policy")),
        (_, LbPolicy::ClusterProvided) => Err(ConfigError::new(
            "CLUSTER_PROVIDED is only valid with ORIGINAL_DST",
        )
        .at("lb_policy")),
        (_, lb) => Ok(lb),
    }
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn upstream_idle_timeout(c: &pb::Cluster) -> Result<Option<Duration>, ConfigError> {
    const KEY: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    let at = format!("typed_extension_protocol_options[{KEY:?}]");
    let configured = match c.typed_extension_protocol_options.get(KEY) {
        Some(any) => {
            let opts: HttpProtocolOptions =
                decode_any(any, type_url::HTTP_PROTOCOL_OPTIONS).at(&at)?;
            duration(
                opts.common_http_protocol_options
                    .as_ref()
                    .and_then(|o| o.idle_timeout.as_ref()),
            )
            .at("common_http_protocol_options.idle_timeout")
            .at(&at)?
        }
        None => duration(
            c.common_http_protocol_options
                .as_ref()
                .and_then(|o| o.idle_timeout.as_ref()),
        )
        .at("common_http_protocol_options.idle_timeout")?,
    };
    Ok(match configured {
        None => Some(Duration::from_secs(3600)),
        Some(d) if d.is_zero() => None,
        d => d,
    })
}

fn max_requests_per_connection(c: &pb::Cluster) -> Result<Option<u32>, ConfigError> {
    const KEY: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    if let Some(any) = c.typed_extension_protocol_options.get(KEY) {
        let opts: HttpProtocolOptions = decode_any(any, type_url::HTTP_PROTOCOL_OPTIONS)
            .at(format!("typed_extension_protocol_options[{KEY:?}]"))?;
        if let Some(v) = opts
            .common_http_protocol_options
            .and_then(|o| o.max_requests_per_connection)
        {
            return Ok(Some(v.value).filter(|v| *v > 0));
        }
    }
    Ok(c.max_requests_per_connection
        .as_ref()
        .map(|v| v.value)
        .filter(|v| *v > 0))
}

fn upstream_protocol(c: &pb::Cluster) -> Result<UpstreamProtocol, ConfigError> {
    const KEY: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    if let Some(any) = c.typed_extension_protocol_options.get(KEY) {
        let at = format!("typed_extension_protocol_options[{KEY:?}]");
        let opts: HttpProtocolOptions = decode_any(any, type_url::HTTP_PROTOCOL_OPTIONS).at(&at)?;
        return Ok(match opts.upstream_protocol_options {
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) => match e.protocol_config {
                Some(ProtocolConfig::Http2ProtocolOptions(_)) => UpstreamProtocol::Http2,
                Some(ProtocolConfig::HttpProtocolOptions(_)) | None => UpstreamProtocol::Http1,
                Some(ProtocolConfig::Http3ProtocolOptions(_)) => {
                    return Err(ConfigError::new("HTTP/3 upstreams are not supported").at(at));
                }
            },
            Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(_)) => {
                UpstreamProtocol::UseDownstream
            }
            // AUTO picks by ALPN, which needs TLS; without it Envoy speaks HTTP/1.1.
            Some(UpstreamProtocolOptions::AutoConfig(_)) | None => UpstreamProtocol::Http1,
        });
    }
    if c.http2_protocol_options.is_some() {
        return Ok(UpstreamProtocol::Http2);
    }
    if cluster::ClusterProtocolSelection::try_from(c.protocol_selection)
        == Ok(cluster::ClusterProtocolSelection::UseDownstreamProtocol)
    {
        return Ok(UpstreamProtocol::UseDownstream);
    }
    Ok(UpstreamProtocol::Http1)
}

/// Converts a `ClusterLoadAssignment` (inline, or from EDS) for a cluster of `discovery`.
pub fn load_assignment(
    la: &ClusterLoadAssignment,
    discovery: Discovery,
) -> Result<Vec<LocalityEndpoints>, ConfigError> {
    la.endpoints
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let endpoints = l
                .lb_endpoints
                .iter()
                .enumerate()
                .map(|(j, e)| endpoint(e, discovery).at(format!("lb_endpoints[{j}]")))
                .collect::<Result<Vec<_>, _>>()
                .at(format!("endpoints[{i}]"))?;
            let loc = l.locality.as_ref();
            Ok(LocalityEndpoints {
                locality: Locality {
                    region: loc.map(|l| l.region.clone()).unwrap_or_default(),
                    zone: loc.map(|l| l.zone.clone()).unwrap_or_default(),
                    sub_zone: loc.map(|l| l.sub_zone.clone()).unwrap_or_default(),
                },
                weight: l.load_balancing_weight.as_ref().map(|w| w.value),
                priority: l.priority,
                endpoints,
            })
        })
        .collect()
}

fn endpoint(
    e: &envoy_types::pb::envoy::config::endpoint::v3::LbEndpoint,
    discovery: Discovery,
) -> Result<EndpointConfig, ConfigError> {
    let ep = match &e.host_identifier {
        Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => ep,
        Some(lb_endpoint::HostIdentifier::EndpointName(_)) => {
            return Err(ConfigError::new("named endpoints are not supported").at("endpoint_name"));
        }
        None => return Err(ConfigError::new("endpoint is required").at("endpoint")),
    };
    let address = host_port(ep.address.as_ref())
        .at("socket_address")
        .at("address")
        .at("endpoint")?;
    let dns = matches!(discovery, Discovery::StrictDns | Discovery::LogicalDns);
    let hostname = match &address {
        HostPort::Dns { host, .. } if !dns => {
            return Err(ConfigError::new(format!(
                "{host:?} is not an IP address (use STRICT_DNS or LOGICAL_DNS for names)"
            ))
            .at("endpoint.address.socket_address.address"));
        }
        HostPort::Dns { host, .. } if ep.hostname.is_empty() => Some(host.clone()),
        _ => (!ep.hostname.is_empty()).then(|| ep.hostname.clone()),
    };
    let health = match HealthStatus::try_from(e.health_status) {
        Ok(HealthStatus::Unknown | HealthStatus::Healthy) => EndpointHealth::Healthy,
        Ok(HealthStatus::Degraded) => EndpointHealth::Degraded,
        _ => EndpointHealth::Unhealthy,
    };
    let weight = match &e.load_balancing_weight {
        None => 1,
        Some(w) if w.value == 0 => {
            return Err(ConfigError::new("weight must be at least 1").at("load_balancing_weight"));
        }
        Some(w) => w.value,
    };
    Ok(EndpointConfig {
        address,
        hostname,
        weight,
        health,
    })
}
