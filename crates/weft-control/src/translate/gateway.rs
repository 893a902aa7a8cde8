//! LDS and RDS for gateways: each Istio `Gateway` selecting the proxy contributes its HTTP
//! servers; listener `0.0.0.0_PORT` routes with RDS `http.PORT`, whose virtual hosts are
//! the server hosts served by the VirtualServices bound to the gateway.

use super::listener::{hcm_filter, hcm_rds};
use super::route::{RouteCtx, route_config, virtual_service_routes};
use super::{Ctx, ProxyResources, socket_address};
use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};
use envoy_types::pb::envoy::config::route::v3::VirtualHost;
use std::collections::BTreeMap;
use weft_model::analyze::{host_matches, resolve_host};
use weft_model::common::selector_matches;

/// One HTTP port of the gateway: its bind address and `(gateway, server host)` pairs.
#[derive(Default)]
struct PortServers {
    bind: Option<String>,
    /// `namespace/name` of the gateway and the host as written (`*`, `ns/host`).
    hosts: Vec<(String, String)>,
}

pub(super) fn listeners(ctx: &Ctx, out: &mut ProxyResources) {
    let mut ports: BTreeMap<u16, PortServers> = BTreeMap::new();
    for (r, gw) in ctx.snap.gateways() {
        if gw.selector.is_empty() || !selector_matches(&gw.selector, &ctx.proxy.labels) {
            continue;
        }
        let gw_name = format!("{}/{}", r.namespace(), r.name());
        for server in &gw.servers {
            let Some(port) = server.port.as_ref() else {
                continue;
            };
            let proto = port.protocol.as_deref().unwrap_or("").to_ascii_uppercase();
            // TLS termination needs certificates (SDS), which come with the identity work.
            if !matches!(proto.as_str(), "HTTP" | "HTTP2" | "GRPC") {
                continue;
            }
            let Some(number) = port.number.and_then(|n| u16::try_from(n).ok()) else {
                continue;
            };
            let entry = ports.entry(number).or_default();
            if entry.bind.is_none() {
                entry.bind.clone_from(&server.bind);
            }
            for h in &server.hosts {
                entry.hosts.push((gw_name.clone(), h.clone()));
            }
        }
    }
    for (port, servers) in ports {
        let route_name = format!("http.{port}");
        let ip = servers.bind.clone().unwrap_or_else(|| "0.0.0.0".to_owned());
        let listener_name = format!("{ip}_{port}");
        // Local mode: the address a Kubernetes Service would map to this container port.
        let (bind_ip, bind_port) = ctx
            .proxy
            .gateway_bind
            .get(&port)
            .cloned()
            .unwrap_or_else(|| (ip.clone(), port));
        let hosts = virtual_hosts(ctx, port, &servers);
        out.routes
            .insert(route_name.clone(), route_config(&route_name, hosts, false));
        out.listeners.insert(
            listener_name.clone(),
            Listener {
                name: listener_name,
                address: Some(socket_address(&bind_ip, bind_port)),
                filter_chains: vec![FilterChain {
                    filters: vec![hcm_filter(hcm_rds(
                        ctx,
                        &format!("outbound_{ip}_{port}"),
                        &route_name,
                    ))],
                    ..Default::default()
                }],
                traffic_direction: TrafficDirection::Outbound as i32,
                ..Default::default()
            },
        );
    }
}

/// One virtual host per VirtualService host that a server of this port exposes, with the
/// routes of every VirtualService bound to that server's gateway for that host.
fn virtual_hosts(ctx: &Ctx, port: u16, servers: &PortServers) -> Vec<VirtualHost> {
    let mut by_host: BTreeMap<String, Vec<envoy_types::pb::envoy::config::route::v3::Route>> =
        BTreeMap::new();
    for (r, vs) in ctx.snap.virtual_services() {
        let bound: Vec<String> = vs
            .gateways
            .iter()
            .filter(|g| *g != "mesh")
            .map(|g| {
                if g.contains('/') {
                    g.clone()
                } else {
                    format!("{}/{g}", r.namespace())
                }
            })
            .collect();
        let rc = RouteCtx {
            ctx,
            port,
            gateways: Some(&bound),
        };
        for vs_host in &vs.hosts {
            let exposed = servers.hosts.iter().any(|(gw, server_host)| {
                let (ns, h) = server_host.split_once('/').unwrap_or(("*", server_host));
                let ns_ok = ns == "*"
                    || ns == r.namespace()
                    || (ns == "." && gw.starts_with(&format!("{}/", r.namespace())));
                bound.contains(gw)
                    && ns_ok
                    && (host_matches(h, vs_host) || host_matches(vs_host, h))
            });
            if !exposed {
                continue;
            }
            let routes = virtual_service_routes(&rc, r, vs);
            // Gateways take hosts as written: `reviews` would mean nothing to a browser.
            let host = if vs_host.contains('.') || vs_host.contains('*') {
                vs_host.clone()
            } else {
                resolve_host(vs_host, r.namespace())
            };
            by_host.entry(host).or_default().extend(routes);
        }
    }
    by_host
        .into_iter()
        .map(|(host, routes)| {
            let domains = if host == "*" {
                vec!["*".to_owned()]
            } else {
                vec![host.clone(), format!("{host}:{port}")]
            };
            VirtualHost {
                name: format!("{host}:{port}"),
                domains,
                routes,
                include_request_attempt_count: true,
                ..Default::default()
            }
        })
        .collect()
}
