//! LDS for sidecars: `virtualOutbound`, per-port outbound listeners, `virtualInbound`.

use super::cluster::inbound_ports;
use super::route::{HTTP_PROXY_ROUTE, mesh_virtual_service, route_config, sidecar_route_configs};
use super::{Ctx, ProxyResources, ads_config_source, any, duration, socket_address};
use crate::registry::Protocol;
use envoy_types::pb::envoy::config::core::v3::{Http1ProtocolOptions, TrafficDirection};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter, filter, listener_filter,
};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, route, route_action,
    route_match,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager, http_filter,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{TcpProxy, tcp_proxy};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};
use std::collections::BTreeMap;
use weft_xds::naming::{ClusterName, INBOUND_PASSTHROUGH_CLUSTER, PASSTHROUGH_CLUSTER};

/// Istio's outbound capture port.
pub const OUTBOUND_PORT: u16 = 15001;
/// Istio's inbound capture port.
pub const INBOUND_PORT: u16 = 15006;
/// Name of the outbound capture listener.
pub const VIRTUAL_OUTBOUND: &str = "virtualOutbound";
/// Name of the inbound capture listener.
pub const VIRTUAL_INBOUND: &str = "virtualInbound";

/// Every listener and route config of a sidecar.
pub(super) fn sidecar(ctx: &Ctx, out: &mut ProxyResources) {
    sidecar_route_configs(ctx, out);
    let (out_ip, out_port) = ctx
        .proxy
        .outbound_addr
        .clone()
        .unwrap_or(("0.0.0.0".to_owned(), OUTBOUND_PORT));
    // Connected to directly (no traffic capture: local mode), the original destination is
    // the listener itself; that chain serves the application as an explicit HTTP proxy.
    let explicit = FilterChain {
        name: "explicit_http_proxy".to_owned(),
        filter_chain_match: Some(FilterChainMatch {
            destination_port: Some(UInt32Value {
                value: u32::from(out_port),
            }),
            ..Default::default()
        }),
        filters: vec![hcm_filter(hcm_rds(
            ctx,
            &format!("outbound_{out_ip}_{out_port}"),
            HTTP_PROXY_ROUTE,
        ))],
        ..Default::default()
    };
    let outbound = Listener {
        name: VIRTUAL_OUTBOUND.to_owned(),
        address: Some(socket_address(&out_ip, out_port)),
        use_original_dst: Some(BoolValue { value: true }),
        listener_filters: vec![original_dst()],
        filter_chains: vec![explicit],
        default_filter_chain: Some(tcp_chain("PassthroughCluster", PASSTHROUGH_CLUSTER)),
        traffic_direction: TrafficDirection::Outbound as i32,
        ..Default::default()
    };
    out.listeners.insert(outbound.name.clone(), outbound);

    let http_ports: Vec<u16> = out.routes.keys().filter_map(|k| k.parse().ok()).collect();
    for port in &http_ports {
        let name = format!("0.0.0.0_{port}");
        let l = port_listener(
            &name,
            "0.0.0.0",
            *port,
            hcm_filter(hcm_rds(
                ctx,
                &format!("outbound_0.0.0.0_{port}"),
                &port.to_string(),
            )),
        );
        out.listeners.insert(name, l);
    }
    tcp_listeners(ctx, out, &http_ports);
    inbound(ctx, out);
}

/// A per-port outbound listener: not bound (traffic arrives through `virtualOutbound`'s
/// original-destination hand-off).
fn port_listener(name: &str, ip: &str, port: u16, filter: Filter) -> Listener {
    Listener {
        name: name.to_owned(),
        address: Some(socket_address(ip, port)),
        bind_to_port: Some(BoolValue { value: false }),
        filter_chains: vec![FilterChain {
            filters: vec![filter],
            ..Default::default()
        }],
        traffic_direction: TrafficDirection::Outbound as i32,
        ..Default::default()
    }
}

/// Opaque TCP ports: `VIP_PORT` per service address, else `0.0.0.0_PORT` when no HTTP
/// service and no other TCP service without address uses the port (first one wins).
fn tcp_listeners(ctx: &Ctx, out: &mut ProxyResources, http_ports: &[u16]) {
    for svc in &ctx.services {
        for port in svc.ports.iter().filter(|p| !p.protocol.is_http()) {
            let cluster = tcp_destination(ctx, &svc.hostname, port.number);
            let ips: Vec<String> = if svc.addresses.is_empty() {
                vec!["0.0.0.0".to_owned()]
            } else {
                svc.addresses
                    .iter()
                    .filter(|a| !a.contains('/'))
                    .cloned()
                    .collect()
            };
            for ip in ips {
                let name = format!("{ip}_{}", port.number);
                if out.listeners.contains_key(&name)
                    || (ip == "0.0.0.0" && http_ports.contains(&port.number))
                {
                    continue;
                }
                let stat = format!("outbound|{}||{}", port.number, svc.hostname);
                let l = port_listener(&name, &ip, port.number, tcp_filter(&stat, cluster.clone()));
                out.listeners.insert(name, l);
            }
        }
    }
}

/// Where a TCP port's traffic goes: the mesh VirtualService's first `tcp` rule, else the
/// service's own cluster.
fn tcp_destination(ctx: &Ctx, hostname: &str, port: u16) -> tcp_proxy::ClusterSpecifier {
    let default = ClusterName::outbound(port, "", hostname).to_string();
    let Some((r, vs)) = mesh_virtual_service(ctx, hostname) else {
        return tcp_proxy::ClusterSpecifier::Cluster(default);
    };
    let rc = super::route::RouteCtx {
        ctx,
        port,
        gateways: None,
    };
    let rule = vs.tcp.iter().find(|t| {
        t.r#match.is_empty()
            || t.r#match
                .iter()
                .any(|m| m.port.is_none_or(|p| p == u32::from(port)))
    });
    let dests: Vec<(String, u32)> = rule
        .map(|t| {
            t.route
                .iter()
                .filter_map(|d| {
                    let dest = d.destination.as_ref()?;
                    let w = u32::try_from(d.weight.unwrap_or(0)).unwrap_or(0);
                    Some((
                        super::route::destination_cluster(&rc, r.namespace(), dest),
                        w,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    match dests.as_slice() {
        [] => tcp_proxy::ClusterSpecifier::Cluster(default),
        [(only, _)] => tcp_proxy::ClusterSpecifier::Cluster(only.clone()),
        many => tcp_proxy::ClusterSpecifier::WeightedClusters(tcp_proxy::WeightedCluster {
            clusters: many
                .iter()
                .filter(|(_, w)| *w > 0)
                .map(
                    |(name, weight)| tcp_proxy::weighted_cluster::ClusterWeight {
                        name: name.clone(),
                        weight: *weight,
                        ..Default::default()
                    },
                )
                .collect(),
        }),
    }
}

/// `virtualInbound`: one chain per port the workload serves, to `inbound|PORT||`.
fn inbound(ctx: &Ctx, out: &mut ProxyResources) {
    let (ip, port) = ctx
        .proxy
        .inbound_addr
        .clone()
        .unwrap_or(("0.0.0.0".to_owned(), INBOUND_PORT));
    let protocols: BTreeMap<u16, Protocol> = ctx
        .snap
        .registry
        .services_of_workload(&ctx.proxy.namespace, &ctx.proxy.labels)
        .flat_map(|s| s.ports.iter())
        .map(|p| (p.number, p.protocol))
        .collect();
    let chains = inbound_ports(ctx)
        .into_keys()
        .map(|p| {
            let cluster = ClusterName::inbound(p, "", "").to_string();
            let stat = format!("inbound_0.0.0.0_{p}");
            let filter = if protocols.get(&p).is_some_and(|pr| pr.is_http()) {
                hcm_filter(hcm_inline(ctx, &stat, inbound_route(&cluster)))
            } else {
                tcp_filter(
                    &cluster,
                    tcp_proxy::ClusterSpecifier::Cluster(cluster.clone()),
                )
            };
            FilterChain {
                name: cluster.clone(),
                filter_chain_match: Some(FilterChainMatch {
                    destination_port: Some(UInt32Value {
                        value: u32::from(p),
                    }),
                    ..Default::default()
                }),
                filters: vec![filter],
                ..Default::default()
            }
        })
        .collect();
    let l = Listener {
        name: VIRTUAL_INBOUND.to_owned(),
        address: Some(socket_address(&ip, port)),
        listener_filters: vec![original_dst()],
        filter_chains: chains,
        default_filter_chain: Some(tcp_chain(
            INBOUND_PASSTHROUGH_CLUSTER,
            INBOUND_PASSTHROUGH_CLUSTER,
        )),
        traffic_direction: TrafficDirection::Inbound as i32,
        ..Default::default()
    };
    out.listeners.insert(l.name.clone(), l);
}

fn inbound_route(cluster: &str) -> RouteConfiguration {
    let vh = VirtualHost {
        name: format!("{cluster}:*"),
        domains: vec!["*".to_owned()],
        routes: vec![Route {
            name: "default".to_owned(),
            r#match: Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::Prefix("/".to_owned())),
                ..Default::default()
            }),
            action: Some(route::Action::Route(RouteAction {
                cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                    cluster.to_owned(),
                )),
                timeout: Some(duration(std::time::Duration::ZERO)),
                ..Default::default()
            })),
            ..Default::default()
        }],
        ..Default::default()
    };
    route_config(cluster, vec![vh], false)
}

fn original_dst() -> ListenerFilter {
    ListenerFilter {
        name: "envoy.filters.listener.original_dst".to_owned(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(any(
            &OriginalDst::default(),
        ))),
        ..Default::default()
    }
}

fn tcp_chain(name: &str, cluster: &str) -> FilterChain {
    FilterChain {
        name: name.to_owned(),
        filters: vec![tcp_filter(
            cluster,
            tcp_proxy::ClusterSpecifier::Cluster(cluster.to_owned()),
        )],
        ..Default::default()
    }
}

fn tcp_filter(stat_prefix: &str, cluster: tcp_proxy::ClusterSpecifier) -> Filter {
    Filter {
        name: "envoy.filters.network.tcp_proxy".to_owned(),
        config_type: Some(filter::ConfigType::TypedConfig(any(&TcpProxy {
            stat_prefix: stat_prefix.to_owned(),
            cluster_specifier: Some(cluster),
            ..Default::default()
        }))),
    }
}

/// An HTTP connection manager whose routes come over RDS.
pub(crate) fn hcm_rds(
    ctx: &Ctx,
    stat_prefix: &str,
    route_config_name: &str,
) -> HttpConnectionManager {
    HttpConnectionManager {
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: route_config_name.to_owned(),
        })),
        ..hcm_base(ctx, stat_prefix)
    }
}

fn hcm_inline(ctx: &Ctx, stat_prefix: &str, rc: RouteConfiguration) -> HttpConnectionManager {
    HttpConnectionManager {
        route_specifier: Some(http_connection_manager::RouteSpecifier::RouteConfig(rc)),
        ..hcm_base(ctx, stat_prefix)
    }
}

/// Fault (VirtualService `fault`), CORS, then the router: the filters Istio's routes use.
/// HTTP/1.0 is refused (426) unless the proxy asked for it (`HTTP10` metadata, or
/// `PILOT_HTTP10`), as Istio sets `accept_http_10` on all of that proxy's listeners.
fn hcm_base(ctx: &Ctx, stat_prefix: &str) -> HttpConnectionManager {
    let http_filter = |name: &str, config| HttpFilter {
        name: name.to_owned(),
        config_type: Some(http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    };
    HttpConnectionManager {
        stat_prefix: stat_prefix.to_owned(),
        codec_type: http_connection_manager::CodecType::Auto as i32,
        use_remote_address: Some(BoolValue { value: false }),
        http_protocol_options: ctx.proxy.http10.then(|| Http1ProtocolOptions {
            accept_http_10: true,
            ..Default::default()
        }),
        http_filters: vec![
            http_filter(super::route::FAULT_FILTER, any(&HttpFault::default())),
            http_filter("envoy.filters.http.cors", any(&Cors::default())),
            http_filter("envoy.filters.http.router", any(&Router::default())),
        ],
        ..Default::default()
    }
}

pub(crate) fn hcm_filter(hcm: HttpConnectionManager) -> Filter {
    Filter {
        name: "envoy.filters.network.http_connection_manager".to_owned(),
        config_type: Some(filter::ConfigType::TypedConfig(any(&hcm))),
    }
}
