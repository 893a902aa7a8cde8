//! weft's runtime configuration, converted from Envoy's v3 bootstrap at the edge.
//!
//! Protobuf stops here: every type in this module is plain Rust, validated once, and shared
//! by `Arc` with the hot path. Fields weft does not implement are collected into
//! [`ProxyConfig::unsupported`] (reported once at start); invalid values are rejected with
//! a [`ConfigError`] that names the field.

// Envoy still accepts its deprecated fields (exact_match, append, http2_protocol_options...),
// and so do we: bootstraps in the wild use them.
#![allow(deprecated)]

pub mod cluster;
pub mod fault;
pub mod health;
pub mod listener;
pub mod matcher;
pub mod outlier;
pub mod ratelimit;
pub mod route;
mod support;
pub(crate) mod util;

pub use cluster::ClusterConfig;
pub use listener::{ListenerConfig, NetworkFilter};
pub use route::RouteTable;
pub use support::SUPPORT;
pub use util::HostPort;

use crate::error::{At, ConfigError, ProxyError};
use route::{ClusterSelect, RouteAction};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use weft_xds::{Format, LoadedBootstrap};

/// A validated configuration, ready to run.
#[derive(Debug)]
pub struct ProxyConfig {
    /// Admin server address (`admin.address`), if any.
    pub admin: Option<SocketAddr>,
    pub listeners: Vec<Arc<ListenerConfig>>,
    pub clusters: Vec<Arc<ClusterConfig>>,
    /// Set fields weft ignores, with their paths, plus notes on partly implemented values.
    pub unsupported: Vec<String>,
    /// The bootstrap as understood, for `/config_dump`.
    pub dump: Arc<serde_json::Value>,
    /// `dynamic_resources.ads_config`: where the xDS client connects.
    pub ads: Option<AdsBootstrap>,
    /// The bootstrap's `node` (who the proxy says it is to the control plane).
    pub node: Option<envoy_types::pb::envoy::config::core::v3::Node>,
}

/// The ADS server a bootstrap points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdsBootstrap {
    /// The static cluster holding the control plane's address.
    pub cluster: String,
    /// `api_type: DELTA_GRPC`.
    pub delta: bool,
    /// `HOST:PORT` of the cluster's first endpoint.
    pub address: String,
}

impl ProxyConfig {
    /// A configuration with nothing but an admin address (the xDS client fills the rest).
    pub fn empty(admin: Option<SocketAddr>) -> ProxyConfig {
        ProxyConfig {
            admin,
            listeners: Vec::new(),
            clusters: Vec::new(),
            unsupported: Vec::new(),
            dump: Arc::new(serde_json::json!({})),
            ads: None,
            node: None,
        }
    }
}

fn ads_bootstrap(
    b: &envoy_types::pb::envoy::config::bootstrap::v3::Bootstrap,
    clusters: &[Arc<ClusterConfig>],
) -> Result<Option<AdsBootstrap>, ConfigError> {
    use envoy_types::pb::envoy::config::core::v3::api_config_source::ApiType;
    use envoy_types::pb::envoy::config::core::v3::grpc_service::TargetSpecifier;
    let Some(ads) = b
        .dynamic_resources
        .as_ref()
        .and_then(|d| d.ads_config.as_ref())
    else {
        return Ok(None);
    };
    let at = "dynamic_resources.ads_config";
    let delta = match ApiType::try_from(ads.api_type) {
        Ok(ApiType::Grpc | ApiType::AggregatedGrpc) => false,
        Ok(ApiType::DeltaGrpc | ApiType::AggregatedDeltaGrpc) => true,
        _ => {
            return Err(ConfigError::new("only GRPC and DELTA_GRPC are supported")
                .at("api_type")
                .at(at));
        }
    };
    let cluster = match ads
        .grpc_services
        .first()
        .and_then(|g| g.target_specifier.as_ref())
    {
        Some(TargetSpecifier::EnvoyGrpc(e)) => e.cluster_name.clone(),
        _ => {
            return Err(ConfigError::new("an envoy_grpc cluster_name is required")
                .at("grpc_services[0]")
                .at(at));
        }
    };
    let Some(c) = clusters.iter().find(|c| *c.name == *cluster) else {
        return Err(
            ConfigError::new(format!("{cluster:?} is not a static cluster"))
                .at("grpc_services[0].envoy_grpc.cluster_name")
                .at(at),
        );
    };
    let address = match c.localities.first().and_then(|l| l.endpoints.first()) {
        Some(e) => match &e.address {
            HostPort::Ip(a) => a.to_string(),
            HostPort::Dns { host, port } => format!("{host}:{port}"),
        },
        None => {
            return Err(ConfigError::new(format!(
                "cluster {cluster:?} has no endpoint to connect to"
            ))
            .at("grpc_services[0].envoy_grpc.cluster_name")
            .at(at));
        }
    };
    Ok(Some(AdsBootstrap {
        cluster,
        delta,
        address,
    }))
}

impl ProxyConfig {
    /// Loads an Envoy bootstrap file (YAML, or JSON by extension).
    pub fn load_file(path: &Path) -> Result<ProxyConfig, ProxyError> {
        let loaded = weft_xds::bootstrap::load_file(path, Some(&SUPPORT))?;
        Ok(ProxyConfig::from_loaded(loaded)?)
    }

    /// Parses an Envoy bootstrap document.
    pub fn parse(text: &str, format: Format) -> Result<ProxyConfig, ProxyError> {
        let loaded = weft_xds::bootstrap::parse(text, format, Some(&SUPPORT))?;
        Ok(ProxyConfig::from_loaded(loaded)?)
    }

    /// Converts a parsed bootstrap.
    pub fn from_loaded(loaded: LoadedBootstrap) -> Result<ProxyConfig, ConfigError> {
        let b = &loaded.bootstrap;
        let mut notes = Vec::new();
        let admin = b
            .admin
            .as_ref()
            .and_then(|a| a.address.as_ref())
            .map(|a| util::ip_socket_addr(Some(a)))
            .transpose()
            .at("admin.address")?;
        let empty = Default::default();
        let sr = b.static_resources.as_ref().unwrap_or(&empty);
        let clusters = sr
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                ClusterConfig::try_from(c)
                    .map(Arc::new)
                    .at(format!("static_resources.clusters[{i}]"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = HashSet::new();
        for (i, c) in clusters.iter().enumerate() {
            if !names.insert(c.name.clone()) {
                return Err(
                    ConfigError::new(format!("duplicate cluster name {:?}", c.name))
                        .at(format!("static_resources.clusters[{i}].name")),
                );
            }
        }
        let listeners = sr
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| {
                ListenerConfig::from_pb(l, &mut notes)
                    .map(Arc::new)
                    .at(format!("static_resources.listeners[{i}]"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut listener_names = HashSet::new();
        for (i, l) in listeners.iter().enumerate() {
            if !listener_names.insert(l.name.clone()) {
                return Err(
                    ConfigError::new(format!("duplicate listener name {:?}", l.name))
                        .at(format!("static_resources.listeners[{i}].name")),
                );
            }
            check_cluster_refs(l, &names).at(format!("static_resources.listeners[{i}]"))?;
        }
        let mut unsupported: Vec<String> = loaded
            .unsupported
            .iter()
            .map(|u| format!("{u}: not implemented by weft, ignored"))
            .collect();
        unsupported.extend(notes);
        let ads = ads_bootstrap(b, &clusters)?;
        Ok(ProxyConfig {
            admin,
            listeners,
            clusters,
            unsupported,
            dump: Arc::new(loaded.json),
            ads,
            node: b.node.clone(),
        })
    }
}

/// Static route tables and TCP proxies must name defined clusters (Envoy validates static
/// route configs the same way).
fn check_cluster_refs(l: &ListenerConfig, names: &HashSet<Arc<str>>) -> Result<(), ConfigError> {
    let chains = l
        .filter_chains
        .iter()
        .map(Some)
        .chain(std::iter::once(l.default_chain.as_ref()));
    for (i, chain) in chains.enumerate() {
        let Some(chain) = chain else { continue };
        let chain_at = if i < l.filter_chains.len() {
            format!("filter_chains[{i}]")
        } else {
            "default_filter_chain".to_owned()
        };
        let filter_at = format!("{chain_at}.filters[0].typed_config");
        let unknown = |name: &str, at: String| {
            Err(ConfigError::new(format!("unknown cluster {name:?}"))
                .at(at)
                .at(&filter_at))
        };
        match &chain.filter {
            NetworkFilter::Tcp(t) => match &t.clusters {
                listener::TcpClusters::Single(c) if !names.contains(c) => {
                    return unknown(c, "cluster".into());
                }
                listener::TcpClusters::Weighted { targets, .. } => {
                    if let Some((j, (c, _))) = targets
                        .iter()
                        .enumerate()
                        .find(|(_, (c, _))| !names.contains(c))
                    {
                        return unknown(c, format!("weighted_clusters.clusters[{j}].name"));
                    }
                }
                _ => {}
            },
            NetworkFilter::Http(h) if h.routes.validate_clusters => {
                for (v, vh) in h.routes.virtual_hosts.iter().enumerate() {
                    for (r, route) in vh.routes.iter().enumerate() {
                        let RouteAction::Forward(f) = &route.action else {
                            continue;
                        };
                        let at = format!("route_config.virtual_hosts[{v}].routes[{r}].route");
                        if let Some((j, m)) = f
                            .mirrors
                            .iter()
                            .enumerate()
                            .find(|(_, m)| !names.contains(&m.cluster))
                        {
                            return unknown(
                                &m.cluster,
                                format!("{at}.request_mirror_policies[{j}].cluster"),
                            );
                        }
                        match &f.clusters {
                            ClusterSelect::Single(c) if !names.contains(c) => {
                                return unknown(c, format!("{at}.cluster"));
                            }
                            ClusterSelect::Weighted { targets, .. } => {
                                if let Some((j, t)) = targets
                                    .iter()
                                    .enumerate()
                                    .find(|(_, t)| !names.contains(&t.name))
                                {
                                    return unknown(
                                        &t.name,
                                        format!("{at}.weighted_clusters.clusters[{j}].name"),
                                    );
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            NetworkFilter::Http(_) => {}
        }
    }
    Ok(())
}
