//! Listeners, filter chains and their network filters (HTTP connection manager, TCP proxy).

use crate::access_log::AccessLogs;
use crate::config::fault::FaultConfig;
use crate::config::ratelimit::{
    ConnectionRateLimit, HTTP_LOCAL_RATELIMIT, HttpRateLimit, NETWORK_LOCAL_RATELIMIT,
};
use crate::config::route::RouteTable;
use crate::config::route::filters::HTTP_FAULT;
use crate::config::util::{decode_any, duration, ip_socket_addr};
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::listener::v3::{self as pb, filter, listener_filter};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use weft_xds::type_url;

/// Envoy's default TCP proxy idle timeout.
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// How long protocol detection waits for a client's first bytes when some filter chain needs
/// them (`listener_filters_timeout` overrides it). Short, so server-first protocols that
/// land on a chain without such needs are not stalled long; see `listener::sniff`.
pub const DEFAULT_SNIFF_TIMEOUT: Duration = Duration::from_millis(100);

/// A converted `Listener`.
#[derive(Debug)]
pub struct ListenerConfig {
    pub name: Arc<str>,
    pub address: SocketAddr,
    pub filter_chains: Vec<FilterChainConfig>,
    pub default_chain: Option<FilterChainConfig>,
    /// `use_original_dst`: hand connections to the listener owning their original destination.
    pub use_original_dst: bool,
    /// Whether to peek at the first bytes (TLS ClientHello / HTTP) to match filter chains.
    pub inspect_tls: bool,
    pub inspect_http: bool,
    pub sniff_timeout: Duration,
    /// `bind_to_port: false` listeners only receive connections handed over by another.
    pub bind_to_port: bool,
}

/// One filter chain: when it applies and the filter that serves it.
#[derive(Debug)]
pub struct FilterChainConfig {
    pub name: String,
    pub matcher: FilterChainMatch,
    pub filter: NetworkFilter,
    /// A network local rate limit before the terminal filter.
    pub conn_limit: Option<Arc<ConnectionRateLimit>>,
}

/// Envoy's `FilterChainMatch` for the criteria weft implements.
#[derive(Debug, Clone, Default)]
pub struct FilterChainMatch {
    pub destination_port: Option<u16>,
    /// Lowercase SNI names; `*.example.com` wildcards allowed.
    pub server_names: Vec<String>,
    /// `raw_buffer` or `tls`.
    pub transport_protocol: Option<String>,
    /// `http/1.1`, `h2c`, `h2`...
    pub application_protocols: Vec<String>,
}

/// The terminal network filter of a chain.
#[derive(Debug, Clone)]
pub enum NetworkFilter {
    Http(Arc<HttpConnectionManagerConfig>),
    Tcp(Arc<TcpProxyConfig>),
}

/// Downstream codec selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Auto,
    Http1,
    Http2,
}

/// What the `server` response header becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHeader {
    Overwrite,
    AppendIfAbsent,
    PassThrough,
}

/// A converted `HttpConnectionManager`.
#[derive(Debug)]
pub struct HttpConnectionManagerConfig {
    pub stat_prefix: String,
    pub codec: Codec,
    /// The inline `route_config` (an empty table when routes come from RDS).
    pub routes: Arc<RouteTable>,
    /// `rds.route_config_name`: the route table arrives over ADS under this name.
    pub rds: Option<Arc<str>>,
    pub access_logs: AccessLogs,
    pub use_remote_address: bool,
    pub skip_xff_append: bool,
    pub generate_request_id: bool,
    pub preserve_external_request_id: bool,
    pub always_set_request_id_in_response: bool,
    pub server_name: http::HeaderValue,
    pub server_header: ServerHeader,
    pub strip_any_host_port: bool,
    pub strip_matching_host_port: bool,
    pub max_request_headers_kb: u32,
    pub via: Option<http::HeaderValue>,
    /// Upgrade types (`websocket`, lowercase) allowed unless a route says otherwise.
    pub upgrades: Vec<String>,
    /// The router's `suppress_envoy_headers`: no `x-envoy-*` headers added.
    pub suppress_envoy_headers: bool,
    /// `normalize_path`: remove dot segments before routing (and upstream).
    pub normalize_path: bool,
    /// `merge_slashes`: collapse runs of `/` before routing.
    pub merge_slashes: bool,
    /// Close a downstream connection with no request for this long
    /// (`common_http_protocol_options.idle_timeout`, Envoy's default 1 h; `0s` disables).
    pub idle_timeout: Option<Duration>,
    /// The fault filter, when the HTTP filter chain has one (its filter-level config; routes
    /// may override it). `None`: per-route fault configs have no filter to act on.
    pub fault: Option<Arc<FaultConfig>>,
    /// The local rate limit filter, when the chain has one (routes may override it).
    pub ratelimit: Option<Arc<HttpRateLimit>>,
    /// The rate limit filter comes before the fault filter in `http_filters`.
    pub ratelimit_first: bool,
    /// `stream_idle_timeout` (Envoy's default 5 min; `0s` disables): no bytes either way for
    /// this long ends the stream (`408` before the response started, flag `SI`).
    pub stream_idle_timeout: Option<Duration>,
    /// `request_timeout`: the whole request must arrive within this (`408`).
    pub request_timeout: Option<Duration>,
    /// `common_http_protocol_options.max_stream_duration`, used when the route sets none.
    pub max_stream_duration: Option<Duration>,
    /// `http_protocol_options` (HTTP/1.1 downstream).
    pub http1: Http1Options,
}

/// The downstream HTTP/1 codec's `http_protocol_options` weft honours.
#[derive(Debug, Clone, Default)]
pub struct Http1Options {
    /// `accept_http_10`: serve HTTP/1.0 requests (Envoy's default answers them
    /// `426 Upgrade Required`, as Istio does unless `PILOT_HTTP10` is set).
    pub accept_http_10: bool,
    /// `default_host_for_http_10`: the `Host` given to an HTTP/1.0 request without one.
    pub default_host_for_http_10: Option<http::HeaderValue>,
    /// `allow_custom_methods`: any method token, not only those Envoy's codec knows.
    pub allow_custom_methods: bool,
}

/// A converted `TcpProxy`.
#[derive(Debug)]
pub struct TcpProxyConfig {
    pub stat_prefix: String,
    pub clusters: TcpClusters,
    /// `None` when disabled (`idle_timeout: 0s`).
    pub idle_timeout: Option<Duration>,
    pub access_logs: AccessLogs,
}

/// The TCP proxy's upstream cluster(s).
#[derive(Debug)]
pub enum TcpClusters {
    Single(Arc<str>),
    Weighted {
        targets: Vec<(Arc<str>, u32)>,
        total: u64,
    },
}

impl ListenerConfig {
    /// Converts a listener; notes about partly implemented features go to `notes`.
    pub fn from_pb(
        l: &pb::Listener,
        notes: &mut Vec<String>,
    ) -> Result<ListenerConfig, ConfigError> {
        if l.name.is_empty() {
            return Err(ConfigError::new("name is required").at("name"));
        }
        let address = ip_socket_addr(l.address.as_ref()).at("address")?;
        let mut inspect_tls = false;
        let mut inspect_http = false;
        for (i, f) in l.listener_filters.iter().enumerate() {
            let url = match &f.config_type {
                Some(listener_filter::ConfigType::TypedConfig(any)) => any.type_url.as_str(),
                _ => "",
            };
            match (f.name.as_str(), url) {
                (_, type_url::TLS_INSPECTOR) | ("envoy.filters.listener.tls_inspector", "") => {
                    inspect_tls = true
                }
                (_, type_url::HTTP_INSPECTOR) | ("envoy.filters.listener.http_inspector", "") => {
                    inspect_http = true
                }
                // Original destination is always recovered when the socket has one.
                (_, type_url::ORIGINAL_DST) | ("envoy.filters.listener.original_dst", "") => {}
                (name, url) => {
                    return Err(ConfigError::new(format!(
                        "listener filter {name:?} ({url}) is not supported"
                    ))
                    .at(format!("listener_filters[{i}]")));
                }
            }
        }
        let filter_chains = l
            .filter_chains
            .iter()
            .enumerate()
            .map(|(i, c)| filter_chain(c, notes).at(format!("filter_chains[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let default_chain = l
            .default_filter_chain
            .as_ref()
            .map(|c| filter_chain(c, notes))
            .transpose()
            .at("default_filter_chain")?;
        if filter_chains.is_empty() && default_chain.is_none() {
            return Err(
                ConfigError::new("at least one filter chain is required").at("filter_chains")
            );
        }
        Ok(ListenerConfig {
            name: Arc::from(l.name.as_str()),
            address,
            filter_chains,
            default_chain,
            use_original_dst: l.use_original_dst.as_ref().is_some_and(|b| b.value),
            inspect_tls,
            inspect_http,
            sniff_timeout: duration(l.listener_filters_timeout.as_ref())
                .at("listener_filters_timeout")?
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_SNIFF_TIMEOUT),
            bind_to_port: l.bind_to_port.as_ref().is_none_or(|b| b.value),
        })
    }
}

fn filter_chain(
    c: &pb::FilterChain,
    notes: &mut Vec<String>,
) -> Result<FilterChainConfig, ConfigError> {
    let matcher = match &c.filter_chain_match {
        None => FilterChainMatch::default(),
        Some(m) => FilterChainMatch {
            destination_port: m
                .destination_port
                .as_ref()
                .map(|p| u16::try_from(p.value))
                .transpose()
                .map_err(|_| {
                    ConfigError::new("port out of range").at("filter_chain_match.destination_port")
                })?,
            server_names: m
                .server_names
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            transport_protocol: (!m.transport_protocol.is_empty())
                .then(|| m.transport_protocol.clone()),
            application_protocols: m.application_protocols.clone(),
        },
    };
    let Some((last, rest)) = c.filters.split_last() else {
        return Err(ConfigError::new("at least one filter is required").at("filters"));
    };
    let mut conn_limit = None;
    for (i, f) in rest.iter().enumerate() {
        match &f.config_type {
            Some(filter::ConfigType::TypedConfig(any))
                if any.type_url == NETWORK_LOCAL_RATELIMIT =>
            {
                let pb = decode_any(any, NETWORK_LOCAL_RATELIMIT)
                    .at("typed_config")
                    .at(format!("filters[{i}]"))?;
                conn_limit = Some(Arc::new(
                    ConnectionRateLimit::try_from(&pb)
                        .at("typed_config")
                        .at(format!("filters[{i}]"))?,
                ));
            }
            _ => {
                return Err(ConfigError::new(format!(
                    "network filter {:?} before the terminal filter is not supported",
                    f.name
                ))
                .at(format!("filters[{i}]")));
            }
        }
    }
    let at = format!("filters[{}]", c.filters.len() - 1);
    let Some(filter::ConfigType::TypedConfig(any)) = &last.config_type else {
        return Err(ConfigError::new("typed_config is required").at(at));
    };
    let filter = match any.type_url.as_str() {
        type_url::HTTP_CONNECTION_MANAGER => {
            let hcm: HttpConnectionManager =
                decode_any(any, type_url::HTTP_CONNECTION_MANAGER).at(&at)?;
            NetworkFilter::Http(Arc::new(
                hcm_config(&hcm, notes).at("typed_config").at(&at)?,
            ))
        }
        type_url::TCP_PROXY => {
            let tcp: TcpProxy = decode_any(any, type_url::TCP_PROXY).at(&at)?;
            NetworkFilter::Tcp(Arc::new(
                tcp_config(&tcp, notes).at("typed_config").at(&at)?,
            ))
        }
        other => {
            return Err(
                ConfigError::new(format!("network filter {other} is not supported")).at(at),
            );
        }
    };
    Ok(FilterChainConfig {
        conn_limit,
        name: c.name.clone(),
        matcher,
        filter,
    })
}

fn hcm_config(
    h: &HttpConnectionManager,
    notes: &mut Vec<String>,
) -> Result<HttpConnectionManagerConfig, ConfigError> {
    use http_connection_manager::{
        CodecType, RouteSpecifier, ServerHeaderTransformation, StripPortMode,
    };
    let codec = match CodecType::try_from(h.codec_type) {
        Ok(CodecType::Auto) => Codec::Auto,
        Ok(CodecType::Http1) => Codec::Http1,
        Ok(CodecType::Http2) => Codec::Http2,
        _ => {
            return Err(
                ConfigError::new("only AUTO, HTTP1 and HTTP2 codecs are supported")
                    .at("codec_type"),
            );
        }
    };
    let mut rds = None;
    let routes = match &h.route_specifier {
        Some(RouteSpecifier::RouteConfig(rc)) => RouteTable::try_from(rc).at("route_config")?,
        Some(RouteSpecifier::Rds(r)) => {
            rds_source(r.config_source.as_ref()).at("rds.config_source")?;
            if r.route_config_name.is_empty() {
                return Err(
                    ConfigError::new("route_config_name is required").at("rds.route_config_name")
                );
            }
            rds = Some(Arc::from(r.route_config_name.as_str()));
            RouteTable::try_from(&Default::default()).at("rds")?
        }
        Some(RouteSpecifier::ScopedRoutes(_)) => {
            return Err(ConfigError::new("scoped routes are not supported").at("scoped_routes"));
        }
        None => return Err(ConfigError::new("route_config is required")),
    };
    let filters = http_filters(h, notes).at("http_filters")?;
    let server_header = match ServerHeaderTransformation::try_from(h.server_header_transformation) {
        Ok(ServerHeaderTransformation::Overwrite) => ServerHeader::Overwrite,
        Ok(ServerHeaderTransformation::AppendIfAbsent) => ServerHeader::AppendIfAbsent,
        Ok(ServerHeaderTransformation::PassThrough) => ServerHeader::PassThrough,
        Err(_) => return Err(ConfigError::new("unknown value").at("server_header_transformation")),
    };
    let server_name = if h.server_name.is_empty() {
        "weft"
    } else {
        h.server_name.as_str()
    };
    let mut upgrades = Vec::new();
    for (i, u) in h.upgrade_configs.iter().enumerate() {
        if !u.filters.is_empty() {
            return Err(
                ConfigError::new("per-upgrade filter chains are not supported")
                    .at(format!("upgrade_configs[{i}].filters")),
            );
        }
        if u.enabled.as_ref().is_none_or(|b| b.value) {
            upgrades.push(u.upgrade_type.to_ascii_lowercase());
        }
    }
    let idle = h
        .common_http_protocol_options
        .as_ref()
        .and_then(|o| o.idle_timeout.as_ref());
    let idle_timeout = match duration(idle).at("common_http_protocol_options.idle_timeout")? {
        None => Some(Duration::from_secs(3600)),
        Some(d) if d.is_zero() => None,
        d => d,
    };
    let opts = h.common_http_protocol_options.as_ref();
    let http1 = match &h.http_protocol_options {
        None => Http1Options::default(),
        Some(o) => Http1Options {
            accept_http_10: o.accept_http_10,
            default_host_for_http_10: (!o.default_host_for_http_10.is_empty())
                .then(|| http::HeaderValue::from_str(&o.default_host_for_http_10))
                .transpose()
                .map_err(|_| {
                    ConfigError::new("invalid header value")
                        .at("http_protocol_options.default_host_for_http_10")
                })?,
            allow_custom_methods: o.allow_custom_methods,
        },
    };
    Ok(HttpConnectionManagerConfig {
        http1,
        fault: filters.fault,
        ratelimit: filters.ratelimit,
        ratelimit_first: filters.ratelimit_first,
        stream_idle_timeout: match duration(h.stream_idle_timeout.as_ref())
            .at("stream_idle_timeout")?
        {
            None => Some(DEFAULT_STREAM_IDLE_TIMEOUT),
            Some(d) if d.is_zero() => None,
            d => d,
        },
        request_timeout: duration(h.request_timeout.as_ref())
            .at("request_timeout")?
            .filter(|d| !d.is_zero()),
        max_stream_duration: duration(opts.and_then(|o| o.max_stream_duration.as_ref()))
            .at("common_http_protocol_options.max_stream_duration")?
            .filter(|d| !d.is_zero()),
        suppress_envoy_headers: filters.suppress_envoy_headers,
        normalize_path: h.normalize_path.as_ref().is_some_and(|b| b.value),
        merge_slashes: h.merge_slashes,
        idle_timeout,
        upgrades,
        stat_prefix: h.stat_prefix.clone(),
        codec,
        routes: Arc::new(routes),
        rds,
        access_logs: AccessLogs::from_pb(&h.access_log, notes)?,
        use_remote_address: h.use_remote_address.as_ref().is_some_and(|b| b.value),
        skip_xff_append: h.skip_xff_append,
        generate_request_id: h.generate_request_id.as_ref().is_none_or(|b| b.value),
        preserve_external_request_id: h.preserve_external_request_id,
        always_set_request_id_in_response: h.always_set_request_id_in_response,
        server_name: http::HeaderValue::from_str(server_name)
            .map_err(|_| ConfigError::new("invalid header value").at("server_name"))?,
        server_header,
        strip_any_host_port: matches!(
            h.strip_port_mode,
            Some(StripPortMode::StripAnyHostPort(true))
        ),
        strip_matching_host_port: h.strip_matching_host_port,
        max_request_headers_kb: h.max_request_headers_kb.as_ref().map_or(60, |v| v.value),
        via: (!h.via.is_empty())
            .then(|| http::HeaderValue::from_str(&h.via))
            .transpose()
            .map_err(|_| ConfigError::new("invalid header value").at("via"))?,
    })
}

/// What the HTTP filter chain configures.
struct HttpFilters {
    fault: Option<Arc<FaultConfig>>,
    ratelimit: Option<Arc<HttpRateLimit>>,
    ratelimit_first: bool,
    suppress_envoy_headers: bool,
}

/// The HTTP filters weft implements, in order, ending with the router. A filter weft does
/// not know is an error unless marked `is_optional` (then it is skipped, as Envoy skips an
/// optional filter it lacks, and noted).
fn http_filters(
    h: &HttpConnectionManager,
    notes: &mut Vec<String>,
) -> Result<HttpFilters, ConfigError> {
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType;
    let Some((router, rest)) = h.http_filters.split_last() else {
        return Err(ConfigError::new(
            "the last HTTP filter must be envoy.filters.http.router",
        ));
    };
    if !(router.name == "envoy.filters.http.router" || is_router(router)) {
        return Err(
            ConfigError::new("the last HTTP filter must be envoy.filters.http.router")
                .at(format!("[{}]", h.http_filters.len() - 1)),
        );
    }
    let mut out = HttpFilters {
        fault: None,
        ratelimit: None,
        ratelimit_first: false,
        suppress_envoy_headers: router_config(router)
            .at(format!("[{}]", h.http_filters.len() - 1))?
            .suppress_envoy_headers,
    };
    for (i, f) in rest.iter().enumerate() {
        let at = format!("[{i}]");
        let any = match &f.config_type {
            Some(ConfigType::TypedConfig(any)) => Some(any),
            _ => None,
        };
        let url = any.map_or("", |a| a.type_url.as_str());
        match (f.name.as_str(), url) {
            (_, HTTP_FAULT) | ("envoy.filters.http.fault", "") => {
                let cfg = match any {
                    Some(any) => FaultConfig::try_from(
                        &decode_any::<envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault>(any, HTTP_FAULT)
                            .at("typed_config")
                            .at(&at)?,
                    )
                    .at("typed_config")
                    .at(&at)?,
                    None => FaultConfig::default(),
                };
                out.fault = Some(Arc::new(cfg));
            }
            (_, HTTP_LOCAL_RATELIMIT) | ("envoy.filters.http.local_ratelimit", "") => {
                let Some(any) = any else {
                    return Err(ConfigError::new("typed_config is required").at(&at));
                };
                let pb = decode_any(any, HTTP_LOCAL_RATELIMIT)
                    .at("typed_config")
                    .at(&at)?;
                out.ratelimit = Some(Arc::new(
                    HttpRateLimit::try_from(&pb).at("typed_config").at(&at)?,
                ));
                out.ratelimit_first = out.fault.is_none();
            }
            // Istio installs CORS everywhere; with no policy on any route it does nothing,
            // and per-route CORS policies are rejected where they appear.
            (_, CORS) | ("envoy.filters.http.cors", "") => {}
            (name, url) if f.is_optional => notes.push(format!(
                "http_filters{at}: optional HTTP filter {name:?} ({url}) is not implemented, skipped"
            )),
            (name, url) => {
                return Err(ConfigError::new(format!(
                    "HTTP filter {name:?} ({url}) is not supported"
                ))
                .at(at));
            }
        }
    }
    Ok(out)
}

/// `envoy.extensions.filters.http.cors.v3.Cors`.
const CORS: &str = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";

/// Envoy's default `stream_idle_timeout`.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// RDS is served over the ADS stream only (as Istio configures it).
fn rds_source(
    source: Option<&envoy_types::pb::envoy::config::core::v3::ConfigSource>,
) -> Result<(), ConfigError> {
    use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
    match source.and_then(|s| s.config_source_specifier.as_ref()) {
        Some(ConfigSourceSpecifier::Ads(_)) => Ok(()),
        None => Err(ConfigError::new("a config_source is required (ads: {})")),
        Some(_) => Err(ConfigError::new(
            "only `ads: {}` is supported as an RDS config_source",
        )),
    }
}

fn router_config(
    f: &envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter,
) -> Result<envoy_types::pb::envoy::extensions::filters::http::router::v3::Router, ConfigError> {
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType;
    match &f.config_type {
        Some(ConfigType::TypedConfig(any)) => decode_any(any, type_url::ROUTER).at("typed_config"),
        _ => Ok(Default::default()),
    }
}

fn is_router(
    f: &envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter,
) -> bool {
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_filter::ConfigType;
    matches!(&f.config_type, Some(ConfigType::TypedConfig(any)) if any.type_url == type_url::ROUTER)
}

fn tcp_config(t: &TcpProxy, notes: &mut Vec<String>) -> Result<TcpProxyConfig, ConfigError> {
    let clusters = match &t.cluster_specifier {
        Some(tcp_proxy::ClusterSpecifier::Cluster(c)) if !c.is_empty() => {
            TcpClusters::Single(Arc::from(c.as_str()))
        }
        Some(tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => {
            let targets: Vec<(Arc<str>, u32)> = w
                .clusters
                .iter()
                .map(|c| (Arc::from(c.name.as_str()), c.weight))
                .collect();
            let total = targets.iter().map(|(_, w)| u64::from(*w)).sum();
            if total == 0 {
                return Err(
                    ConfigError::new("weights must add up to more than 0").at("weighted_clusters")
                );
            }
            TcpClusters::Weighted { targets, total }
        }
        _ => return Err(ConfigError::new("cluster or weighted_clusters is required").at("cluster")),
    };
    let idle_timeout = match duration(t.idle_timeout.as_ref()).at("idle_timeout")? {
        None => Some(DEFAULT_TCP_IDLE_TIMEOUT),
        Some(d) if d.is_zero() => None,
        d => d,
    };
    Ok(TcpProxyConfig {
        stat_prefix: t.stat_prefix.clone(),
        clusters,
        idle_timeout,
        access_logs: AccessLogs::from_pb(&t.access_log, notes)?,
    })
}
