//! Translation: a pure function of a [`Snapshot`] and a [`ProxyIdentity`] to the Envoy v3
//! resources that proxy needs, named as Istio names them so users' knowledge and tooling
//! carry over.
//!
//! | xDS | sidecar | gateway |
//! |---|---|---|
//! | CDS | `outbound\|PORT\|SUBSET\|HOST` per visible service port and subset, `inbound\|PORT\|\|` per port the workload serves, `PassthroughCluster`, `BlackHoleCluster`, `InboundPassthroughCluster` | the outbound clusters |
//! | EDS | one `ClusterLoadAssignment` per EDS cluster | same |
//! | LDS | `virtualOutbound` (15001), `0.0.0.0_PORT` per HTTP port (RDS `"PORT"`), `ADDR_PORT`/`0.0.0.0_PORT` per TCP port, `virtualInbound` (15006) | `0.0.0.0_PORT` per Gateway server port (RDS `http.PORT`) |
//! | RDS | `"PORT"` per HTTP port, `http_proxy` (explicit-proxy use of 15001) | `http.PORT` |
//!
//! Nothing here caches or reads anything but its two arguments: Istio's CVEs from caches
//! keyed on less than all their inputs are the reason.

mod cluster;
mod gateway;
mod gateway_api;
mod listener;
mod route;

use crate::proxy::{ProxyIdentity, ProxyRole};
use crate::registry::Service;
use crate::snapshot::Snapshot;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, SocketAddress, address, config_source,
    socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::{Any, Duration};
use prost::{Message, Name};
use std::collections::BTreeMap;
use weft_model::analyze::{ROOT_NAMESPACE, host_matches};
use weft_model::common::selector_matches;

/// Everything one proxy is sent, by xDS type and resource name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyResources {
    pub clusters: BTreeMap<String, Cluster>,
    pub endpoints: BTreeMap<String, ClusterLoadAssignment>,
    pub listeners: BTreeMap<String, Listener>,
    pub routes: BTreeMap<String, RouteConfiguration>,
}

impl ProxyResources {
    /// The resources of one xDS type as `(name, Any)`, for the ADS server.
    pub fn of_type(&self, type_url: &str) -> BTreeMap<String, Any> {
        fn pack<M: Message + Name>(m: &BTreeMap<String, M>) -> BTreeMap<String, Any> {
            m.iter().map(|(k, v)| (k.clone(), any(v))).collect()
        }
        match type_url {
            weft_xds::type_url::CLUSTER => pack(&self.clusters),
            weft_xds::type_url::CLUSTER_LOAD_ASSIGNMENT => pack(&self.endpoints),
            weft_xds::type_url::LISTENER => pack(&self.listeners),
            weft_xds::type_url::ROUTE_CONFIGURATION => pack(&self.routes),
            _ => BTreeMap::new(),
        }
    }
}

/// Generates every resource `proxy` needs from `snapshot`.
pub fn generate(snapshot: &Snapshot, proxy: &ProxyIdentity) -> ProxyResources {
    let ctx = Ctx::new(snapshot, proxy);
    let mut out = ProxyResources::default();
    cluster::outbound(&ctx, &mut out);
    match proxy.role {
        ProxyRole::Sidecar => {
            cluster::inbound(&ctx, &mut out);
            listener::sidecar(&ctx, &mut out);
        }
        ProxyRole::Gateway => {
            gateway::listeners(&ctx, &mut out);
            gateway_api::gateway_listeners(&ctx, &mut out);
        }
    }
    out
}

/// The EDS part of [`generate`] alone: `generate(snapshot, proxy).endpoints`, for a
/// stream whose CDS, LDS and RDS are known not to have changed (same
/// [`Snapshot::epoch`]).
pub fn generate_endpoints(
    snapshot: &Snapshot,
    proxy: &ProxyIdentity,
) -> BTreeMap<String, ClusterLoadAssignment> {
    let ctx = Ctx::new(snapshot, proxy);
    let mut out = ProxyResources::default();
    cluster::outbound(&ctx, &mut out);
    out.endpoints
}

/// What every generator reads: the snapshot, the proxy and the services it may reach.
pub(crate) struct Ctx<'a> {
    pub snap: &'a Snapshot,
    pub proxy: &'a ProxyIdentity,
    /// Services visible to the proxy (`exportTo`, `Sidecar` egress), by hostname.
    pub services: Vec<&'a Service>,
}

impl<'a> Ctx<'a> {
    fn new(snap: &'a Snapshot, proxy: &'a ProxyIdentity) -> Ctx<'a> {
        let egress = sidecar_egress_hosts(snap, proxy);
        let services = snap
            .registry
            .services
            .values()
            .filter(|s| s.visible_from(&proxy.namespace))
            .filter(|s| {
                egress
                    .as_ref()
                    .is_none_or(|hosts| egress_allows(hosts, &proxy.namespace, s))
            })
            .collect();
        Ctx {
            snap,
            proxy,
            services,
        }
    }
}

/// The egress hosts of the `Sidecar` that applies to the proxy, if any: one in its
/// namespace selecting it, else one in its namespace without selector, else the root
/// namespace's default. `None` means no Sidecar: everything visible is reachable.
fn sidecar_egress_hosts(snap: &Snapshot, proxy: &ProxyIdentity) -> Option<Vec<String>> {
    if proxy.role != ProxyRole::Sidecar {
        return None;
    }
    let in_ns = |ns: &str, selected: bool| {
        snap.sidecars().find(|(r, sc)| {
            r.namespace() == ns
                && match (&sc.workload_selector, selected) {
                    (Some(sel), true) => selector_matches(&sel.labels, &proxy.labels),
                    (None, false) => true,
                    _ => false,
                }
        })
    };
    let (r, sc) = in_ns(&proxy.namespace, true)
        .or_else(|| in_ns(&proxy.namespace, false))
        .or_else(|| in_ns(ROOT_NAMESPACE, false))?;
    if sc.egress.is_empty() {
        return None;
    }
    Some(
        sc.egress
            .iter()
            .flat_map(|e| e.hosts.iter())
            .map(|h| {
                // `./host` means the Sidecar's own namespace.
                match h.strip_prefix("./") {
                    Some(rest) => format!("{}/{rest}", r.namespace()),
                    None => h.clone(),
                }
            })
            .collect(),
    )
}

/// Istio's egress host rule: `NAMESPACE/HOST`, with `*` for any namespace, `~` for none,
/// and `*`-prefixed host wildcards.
fn egress_allows(hosts: &[String], proxy_ns: &str, svc: &Service) -> bool {
    hosts.iter().any(|h| {
        let (ns, host) = h.split_once('/').unwrap_or(("*", h));
        let ns_ok = match ns {
            "*" => true,
            "~" => false,
            "." => svc.namespace == proxy_ns,
            other => svc.namespace == other,
        };
        ns_ok && host_matches(host, &svc.hostname)
    })
}

// ---- small builders shared by the generators ----

/// Packs a message into `Any`.
pub fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

/// Istio's `filter_metadata.istio.config`: the config resource a generated cluster or
/// route came from (`/apis/networking.istio.io/v1/namespaces/NS/destination-rule/NAME`),
/// which `proxy-config` shows as its DESTINATION RULE / VIRTUAL SERVICE column.
pub(crate) fn config_metadata(
    r: &weft_model::Resource,
) -> envoy_types::pb::envoy::config::core::v3::Metadata {
    use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
    // Istio's path segment: the kind in kebab case (`DestinationRule` → `destination-rule`).
    let chars: Vec<char> = r.kind.kind.chars().collect();
    let mut kind = String::new();
    for (i, ch) in chars.iter().enumerate() {
        let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
        let acronym_end = i > 0
            && chars[i - 1].is_ascii_uppercase()
            && chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
        if ch.is_ascii_uppercase() && (prev_lower || acronym_end) {
            kind.push('-');
        }
        kind.push(ch.to_ascii_lowercase());
    }
    let path = format!(
        "/apis/{}/v1/namespaces/{}/{kind}/{}",
        r.kind.group,
        r.namespace(),
        r.name()
    );
    let fields = [(
        "config".to_owned(),
        Value {
            kind: Some(Kind::StringValue(path)),
        },
    )];
    envoy_types::pb::envoy::config::core::v3::Metadata {
        filter_metadata: [(
            "istio".to_owned(),
            Struct {
                fields: fields.into_iter().collect(),
            },
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

/// A protobuf duration from a std one.
pub(crate) fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// `ads: {}` with the v3 API: every dynamic resource comes over the same ADS stream.
pub(crate) fn ads_config_source() -> ConfigSource {
    ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: ApiVersion::V3 as i32,
        ..Default::default()
    }
}

/// A TCP socket address.
pub(crate) fn socket_address(
    ip: &str,
    port: u16,
) -> envoy_types::pb::envoy::config::core::v3::Address {
    envoy_types::pb::envoy::config::core::v3::Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_owned(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(yaml: &str) -> Snapshot {
        let out = weft_model::load_str("t.yaml", yaml);
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        Snapshot::build(1, out.resources, Vec::new())
    }

    const TWO_NAMESPACES: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: ns1}
spec: {hosts: [a.ns1.svc.cluster.local], ports: [{number: 80, name: http}], resolution: STATIC}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b, namespace: ns2}
spec: {hosts: [b.ns2.svc.cluster.local], ports: [{number: 80, name: http}], resolution: STATIC, exportTo: ["."]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: c, namespace: ns2}
spec: {hosts: [c.ns2.svc.cluster.local], ports: [{number: 80, name: http}], resolution: STATIC}
"#;

    fn visible(snap: &Snapshot, ns: &str) -> Vec<String> {
        let p = ProxyIdentity::sidecar("x", ns, "127.0.0.5", &[("app", "x")]);
        Ctx::new(snap, &p)
            .services
            .iter()
            .map(|s| s.hostname.clone())
            .collect()
    }

    const WITH_WORKLOADS: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: ns1}
spec: {hosts: [a.ns1.svc.cluster.local], ports: [{number: 80, name: http}], resolution: STATIC, workloadSelector: {labels: {app: a}}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: d, namespace: ns1}
spec: {hosts: [d.example.com], ports: [{number: 80, name: http}], resolution: DNS, workloadSelector: {labels: {app: d}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: a, namespace: ns1}
spec: {host: a.ns1.svc.cluster.local, subsets: [{name: v1, labels: {version: v1}}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a1, namespace: ns1}
spec: {address: 10.0.0.1, labels: {app: a, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: d1, namespace: ns1}
spec: {address: 10.0.1.1, labels: {app: d}}
"#;

    fn build_after(prev: &Snapshot, yaml: &str) -> Snapshot {
        let out = weft_model::load_str("t.yaml", yaml);
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        Snapshot::build_after(prev, prev.version + 1, out.resources, Vec::new())
    }

    fn sidecar() -> ProxyIdentity {
        ProxyIdentity::sidecar("x", "ns1", "127.0.0.5", &[("app", "x")])
    }

    #[test]
    fn a_static_endpoint_change_keeps_the_epoch_and_only_eds_changes() {
        let old = snapshot(WITH_WORKLOADS);
        let moved = WITH_WORKLOADS.replace("10.0.0.1", "10.0.0.2");
        let new = build_after(&old, &moved);
        assert_eq!(new.version, 2);
        assert_eq!(new.epoch, old.epoch, "only STATIC endpoints changed");
        let p = sidecar();
        let (before, after) = (generate(&old, &p), generate(&new, &p));
        assert_ne!(before.endpoints, after.endpoints);
        assert_eq!(before.clusters, after.clusters);
        assert_eq!(before.listeners, after.listeners);
        assert_eq!(before.routes, after.routes);
        assert_eq!(generate_endpoints(&new, &p), after.endpoints);
        // A new workload for the subset too.
        let added = format!(
            "{moved}---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: a2, namespace: ns1}}\nspec: {{address: 10.0.0.3, labels: {{app: a, version: v1}}}}\n"
        );
        let newer = build_after(&new, &added);
        assert_eq!(newer.epoch, old.epoch);
        assert_eq!(
            generate_endpoints(&newer, &p),
            generate(&newer, &p).endpoints
        );
        assert_eq!(generate(&newer, &p).clusters, before.clusters);
    }

    #[test]
    fn anything_but_static_endpoints_starts_a_new_epoch() {
        let old = snapshot(WITH_WORKLOADS);
        // A DNS cluster carries its endpoints inline (CDS).
        let dns = build_after(&old, &WITH_WORKLOADS.replace("10.0.1.1", "10.0.1.2"));
        assert_ne!(dns.epoch, old.epoch);
        assert_eq!(dns.epoch, dns.version);
        // Config other than WorkloadEntries.
        let subset = build_after(&old, &WITH_WORKLOADS.replace("name: v1,", "name: v2,"));
        assert_ne!(subset.epoch, old.epoch);
        // A service's definition.
        let port = build_after(
            &old,
            &WITH_WORKLOADS.replacen("number: 80", "number: 81", 1),
        );
        assert_ne!(port.epoch, old.epoch);
        // A workload's labels moving it from one service to another changes EDS only.
        let relabelled = build_after(
            &old,
            &WITH_WORKLOADS.replace("{app: a, version: v1}", "{app: a, version: v2}"),
        );
        assert_eq!(relabelled.epoch, old.epoch);
        let p = sidecar();
        assert_eq!(
            generate(&relabelled, &p).clusters,
            generate(&old, &p).clusters
        );
    }

    #[test]
    fn export_to_dot_hides_a_service_from_other_namespaces() {
        let snap = snapshot(TWO_NAMESPACES);
        assert_eq!(
            visible(&snap, "ns1"),
            ["a.ns1.svc.cluster.local", "c.ns2.svc.cluster.local"]
        );
        assert_eq!(visible(&snap, "ns2").len(), 3);
    }

    #[test]
    fn sidecar_egress_limits_what_a_proxy_sees() {
        let yaml = format!(
            "{TWO_NAMESPACES}---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {{name: default, namespace: ns2}}\nspec: {{egress: [{{hosts: [\"./*\"]}}]}}\n"
        );
        let snap = snapshot(&yaml);
        assert_eq!(
            visible(&snap, "ns2"),
            ["b.ns2.svc.cluster.local", "c.ns2.svc.cluster.local"]
        );
        assert_eq!(visible(&snap, "ns1").len(), 2, "ns1 has no Sidecar");
    }
}
