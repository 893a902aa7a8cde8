//! Route matching and endpoint picking at the sizes the issue asks about: 1000 routes,
//! 1000 virtual hosts, 1000 endpoints. Run with `cargo bench -p weft-bench`.

use criterion::{Criterion, criterion_group, criterion_main};
use envoy_types::pb::envoy::config::route::v3::{
    self as pb, route, route_action::ClusterSpecifier, route_match::PathSpecifier,
};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use weft_proxy::config::RouteTable;
use weft_proxy::config::cluster::LbPolicy;
use weft_proxy::config::route::RequestView;
use weft_proxy::upstream::Endpoint;
use weft_proxy::upstream::lb::{EndpointSet, LbSettings, hash64};

fn prefix_route(prefix: String) -> pb::Route {
    pb::Route {
        r#match: Some(pb::RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix(prefix)),
            ..Default::default()
        }),
        action: Some(route::Action::Route(pb::RouteAction {
            cluster_specifier: Some(ClusterSpecifier::Cluster("c".into())),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn table(vhosts: usize, routes: usize) -> RouteTable {
    let rc = pb::RouteConfiguration {
        virtual_hosts: (0..vhosts)
            .map(|v| pb::VirtualHost {
                name: format!("vh{v}"),
                domains: vec![if vhosts == 1 {
                    "*".into()
                } else {
                    format!("svc{v}.ns.svc.cluster.local")
                }],
                routes: (0..routes)
                    .map(|r| prefix_route(format!("/api{r}/")))
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    RouteTable::try_from(&rc).expect("valid table")
}

fn routing(c: &mut Criterion) {
    let many_routes = table(1, 1000);
    let many_hosts = table(1000, 1);
    let headers = http::HeaderMap::new();
    let view = |authority: &'static str, path: &'static str| RequestView {
        method: &http::Method::GET,
        authority,
        path_and_query: path,
        scheme: "http",
        headers: &headers,
    };
    c.bench_function("route 1000 prefixes, first", |b| {
        let v = view("h", "/api0/x");
        b.iter(|| black_box(many_routes.route(black_box(&v)).is_some()))
    });
    c.bench_function("route 1000 prefixes, last", |b| {
        let v = view("h", "/api999/x");
        b.iter(|| black_box(many_routes.route(black_box(&v)).is_some()))
    });
    c.bench_function("route 1000 virtual hosts, exact domain", |b| {
        let v = view("svc999.ns.svc.cluster.local", "/api0/x");
        b.iter(|| black_box(many_hosts.route(black_box(&v)).is_some()))
    });
}

fn endpoints(n: usize) -> Vec<Arc<Endpoint>> {
    (0..n)
        .map(|i| {
            let addr = SocketAddr::from(([10, (i / 250) as u8, (i % 250) as u8, 1], 8080));
            Arc::new(Endpoint::new(
                addr,
                None,
                1 + (i % 3) as u32,
                0,
                true,
                false,
            ))
        })
        .collect()
}

fn picking(c: &mut Criterion) {
    let policies = [
        ("round robin", LbPolicy::RoundRobin),
        ("least request", LbPolicy::LeastRequest { choice_count: 2 }),
        ("random", LbPolicy::Random),
        (
            "ring hash",
            LbPolicy::RingHash {
                min_ring_size: 1024,
                max_ring_size: 8 << 20,
            },
        ),
        ("maglev", LbPolicy::Maglev { table_size: 65537 }),
    ];
    for (name, policy) in policies {
        let set = EndpointSet::build(endpoints(1000), LbSettings::new(policy));
        let key = hash64(b"user-42");
        c.bench_function(&format!("pick of 1000 endpoints, {name}"), |b| {
            b.iter(|| black_box(set.pick(black_box(Some(key))).is_some()))
        });
    }
}

criterion_group!(benches, routing, picking);
criterion_main!(benches);
