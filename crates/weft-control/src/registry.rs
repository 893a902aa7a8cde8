//! The service registry: which services exist (hosts, ports, protocol, resolution) and which
//! workload instances serve them.
//!
//! Several [`RegistrySource`]s feed one immutable [`Registry`]: the config store
//! (`ServiceEntry`, `WorkloadEntry`) and the proxies connected right now, which announce
//! their own workload in their node metadata. Kubernetes Services and EndpointSlices are a
//! later source behind the same trait.
//!
//! Endpoints are computed once per [`Registry`] (when a snapshot is built), so translation
//! only looks them up.

use crate::proxy::{ProxyIdentity, ProxyRole};
use std::collections::{BTreeMap, HashMap};
use weft_model::analyze::resolve_host;
use weft_model::common::selector_matches;
use weft_model::istio::networking::{
    ServiceEntry, ServiceEntryLocation, ServiceEntryResolution, WorkloadEntry,
};
use weft_model::{Resource, Spec};

/// The application protocol of a service port, as Istio infers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    Https,
    Tls,
    Tcp,
}

impl Protocol {
    /// Istio's rule: the `protocol` field, else the port name's prefix (`http-web`,
    /// `grpc`), else TCP. Unknown protocols (MONGO, MYSQL, ...) are opaque TCP.
    pub fn infer(protocol: Option<&str>, name: Option<&str>) -> Protocol {
        let from = |s: &str| match s.to_ascii_uppercase().as_str() {
            "HTTP" => Some(Protocol::Http),
            "HTTP2" => Some(Protocol::Http2),
            "GRPC" | "GRPC-WEB" => Some(Protocol::Grpc),
            "HTTPS" => Some(Protocol::Https),
            "TLS" => Some(Protocol::Tls),
            "TCP" => Some(Protocol::Tcp),
            _ => None,
        };
        if let Some(p) = protocol.filter(|p| !p.is_empty()) {
            return from(p).unwrap_or(Protocol::Tcp);
        }
        name.and_then(|n| from(n.split('-').next().unwrap_or(n)))
            .unwrap_or(Protocol::Tcp)
    }

    /// True for protocols the sidecar routes with the HTTP connection manager.
    pub fn is_http(self) -> bool {
        matches!(self, Protocol::Http | Protocol::Http2 | Protocol::Grpc)
    }
}

/// One port of a service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServicePort {
    pub number: u16,
    pub name: String,
    pub protocol: Protocol,
    /// Port on the workloads when no per-workload port is named (default: `number`).
    pub target_port: Option<u16>,
}

/// How the proxy finds a service's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Resolution {
    /// Endpoints are listed (EDS).
    Static,
    /// Endpoint addresses are DNS names the proxy resolves.
    Dns,
    /// No endpoints: forward to the address the application dialled.
    Passthrough,
}

/// A service: one host (a `ServiceEntry` with several hosts is several services).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Service {
    /// Fully qualified host (`reviews.default.svc.cluster.local`, `api.example.com`).
    pub hostname: String,
    /// Namespace of the resource that defined it.
    pub namespace: String,
    /// `ServiceEntry default/reviews`, for messages and debugging.
    pub source: String,
    /// Virtual IPs (`ServiceEntry.addresses`).
    pub addresses: Vec<String>,
    pub ports: Vec<ServicePort>,
    pub mesh_internal: bool,
    pub resolution: Resolution,
    /// Labels that select the workloads serving it (none: only its listed endpoints).
    pub selector: Option<BTreeMap<String, String>>,
    /// Endpoints the definition lists itself (`ServiceEntry.endpoints`).
    pub inline_endpoints: Vec<Workload>,
    /// Namespaces that see the service: `*` (all, the default), `.` (its own) or names.
    pub export_to: Vec<String>,
}

impl Service {
    /// The port with this number.
    pub fn port(&self, number: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.number == number)
    }

    /// True when a proxy in `namespace` may see this service (`exportTo`).
    pub fn visible_from(&self, namespace: &str) -> bool {
        exported_to(&self.export_to, &self.namespace, namespace)
    }
}

/// Istio's `exportTo` rule: empty or `*` is everyone, `.` is the defining namespace.
pub fn exported_to(export_to: &[String], own: &str, viewer: &str) -> bool {
    export_to.is_empty()
        || export_to
            .iter()
            .any(|e| e == "*" || (e == "." && own == viewer) || e == viewer)
}

/// Where a workload was learned from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkloadSource {
    WorkloadEntry { name: String },
    ServiceEntryEndpoint { service_entry: String },
    Proxy { node_id: String },
}

/// A workload instance: an address with labels, serving any service that selects it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Workload {
    pub namespace: String,
    /// IP or DNS name, without port.
    pub address: String,
    pub labels: BTreeMap<String, String>,
    /// Service port name to port number on this workload.
    pub ports: BTreeMap<String, u32>,
    pub weight: Option<u32>,
    pub locality: Option<String>,
    pub service_account: Option<String>,
    pub source: WorkloadSource,
}

impl Workload {
    fn from_entry(we: &WorkloadEntry, namespace: &str, source: WorkloadSource) -> Workload {
        Workload {
            namespace: namespace.to_owned(),
            address: we.address.clone().unwrap_or_default(),
            labels: we.labels.clone(),
            ports: we.ports.clone(),
            weight: we.weight,
            locality: we.locality.clone(),
            service_account: we.service_account.clone(),
            source,
        }
    }

    /// The port this workload serves `port` on: its named port, else the service's target.
    fn port_for(&self, port: &ServicePort) -> u16 {
        self.ports
            .get(&port.name)
            .and_then(|p| u16::try_from(*p).ok())
            .or(port.target_port)
            .unwrap_or(port.number)
    }
}

/// One address serving one port of a service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub weight: Option<u32>,
    pub locality: Option<String>,
    pub service_account: Option<String>,
}

/// Something that knows services and workloads. Sources are merged into one [`Registry`].
pub trait RegistrySource {
    /// A short name for debugging (`config`, `proxies`).
    fn name(&self) -> &'static str;
    fn services(&self) -> Vec<Service>;
    fn workloads(&self) -> Vec<Workload>;
}

/// Services and workloads from Istio resources: `ServiceEntry` (one service per host) and
/// `WorkloadEntry`.
pub struct ConfigSource<'a>(pub &'a [Resource]);

impl RegistrySource for ConfigSource<'_> {
    fn name(&self) -> &'static str {
        "config"
    }

    fn services(&self) -> Vec<Service> {
        let mut out = Vec::new();
        for r in self.0 {
            if let Spec::ServiceEntry(se) = &r.spec {
                out.extend(services_of(se, r.namespace(), &r.display_name()));
            }
        }
        out
    }

    fn workloads(&self) -> Vec<Workload> {
        self.0
            .iter()
            .filter_map(|r| match &r.spec {
                Spec::WorkloadEntry(we) => Some(Workload::from_entry(
                    we,
                    r.namespace(),
                    WorkloadSource::WorkloadEntry {
                        name: r.name().to_owned(),
                    },
                )),
                _ => None,
            })
            .collect()
    }
}

fn services_of(se: &ServiceEntry, namespace: &str, source: &str) -> Vec<Service> {
    let resolution = match se.resolution.unwrap_or_default() {
        ServiceEntryResolution::Static => Resolution::Static,
        ServiceEntryResolution::None => Resolution::Passthrough,
        ServiceEntryResolution::Dns
        | ServiceEntryResolution::DnsRoundRobin
        | ServiceEntryResolution::DynamicDns => Resolution::Dns,
    };
    let ports: Vec<ServicePort> = se
        .ports
        .iter()
        .filter_map(|p| {
            Some(ServicePort {
                number: u16::try_from(p.number?).ok()?,
                name: p.name.clone().unwrap_or_default(),
                protocol: Protocol::infer(p.protocol.as_deref(), p.name.as_deref()),
                target_port: p.target_port.and_then(|t| u16::try_from(t).ok()),
            })
        })
        .collect();
    let inline: Vec<Workload> = se
        .endpoints
        .iter()
        .map(|e| {
            Workload::from_entry(
                e,
                namespace,
                WorkloadSource::ServiceEntryEndpoint {
                    service_entry: source.to_owned(),
                },
            )
        })
        .collect();
    se.hosts
        .iter()
        .map(|h| Service {
            hostname: resolve_host(h, namespace),
            namespace: namespace.to_owned(),
            source: source.to_owned(),
            addresses: se.addresses.clone(),
            ports: ports.clone(),
            mesh_internal: se.location == Some(ServiceEntryLocation::MeshInternal),
            resolution,
            selector: se.workload_selector.as_ref().map(|s| s.labels.clone()),
            inline_endpoints: inline.clone(),
            export_to: se.export_to.clone(),
        })
        .collect()
}

/// Workloads announced by connected sidecars (gateways serve no service).
pub struct ProxySource<'a>(pub &'a [ProxyIdentity]);

impl RegistrySource for ProxySource<'_> {
    fn name(&self) -> &'static str {
        "proxies"
    }

    fn services(&self) -> Vec<Service> {
        Vec::new()
    }

    fn workloads(&self) -> Vec<Workload> {
        self.0
            .iter()
            .filter(|p| p.role == ProxyRole::Sidecar)
            .filter_map(|p| {
                Some(Workload {
                    namespace: p.namespace.clone(),
                    address: p.ip()?.to_owned(),
                    labels: p.labels.clone(),
                    ports: BTreeMap::new(),
                    weight: None,
                    locality: None,
                    service_account: Some(p.service_account.clone()),
                    source: WorkloadSource::Proxy {
                        node_id: p.id.clone(),
                    },
                })
            })
            .collect()
    }
}

/// The merged, immutable registry of one snapshot.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Registry {
    /// Services by hostname. When two resources define one host, the first (in resource
    /// order) wins, as the oldest does in Istio.
    pub services: BTreeMap<String, Service>,
    pub workloads: Vec<Workload>,
    /// Endpoints of each `(hostname, port)`.
    #[serde(skip)]
    endpoints: BTreeMap<(String, u16), Vec<Endpoint>>,
}

impl Registry {
    /// Merges sources and computes every service's endpoints.
    pub fn build(sources: &[&dyn RegistrySource]) -> Registry {
        let mut reg = Registry::default();
        for s in sources {
            for svc in s.services() {
                reg.services.entry(svc.hostname.clone()).or_insert(svc);
            }
            reg.workloads.extend(s.workloads());
        }
        // Workloads by (namespace, label, value), in registry order: a selector's first
        // label narrows the workloads to match to those carrying it (instead of every
        // service scanning every workload).
        let mut by_label: HashMap<(&str, &str, &str), Vec<&Workload>> = HashMap::new();
        for w in &reg.workloads {
            for (k, v) in &w.labels {
                by_label
                    .entry((w.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(w);
            }
        }
        let mut endpoints = BTreeMap::new();
        for svc in reg.services.values() {
            let candidates: &[&Workload] = svc
                .selector
                .as_ref()
                .and_then(|sel| sel.iter().next())
                .and_then(|(k, v)| by_label.get(&(svc.namespace.as_str(), k.as_str(), v.as_str())))
                .map_or(&[], Vec::as_slice);
            for port in &svc.ports {
                let eps = endpoints_of(svc, port, candidates);
                endpoints.insert((svc.hostname.clone(), port.number), eps);
            }
        }
        reg.endpoints = endpoints;
        reg
    }

    /// True when `other` has the same services and differs at most in the endpoints of
    /// `STATIC` services (the endpoints only EDS carries).
    pub fn same_but_static_endpoints(&self, other: &Registry) -> bool {
        self.services == other.services
            && self.endpoints.len() == other.endpoints.len()
            && self.endpoints.iter().zip(&other.endpoints).all(
                |((key, eps), (other_key, other_eps))| {
                    key == other_key
                        && (eps == other_eps
                            || self
                                .services
                                .get(&key.0)
                                .is_some_and(|s| s.resolution == Resolution::Static))
                },
            )
    }

    /// The service for this exact hostname.
    pub fn service(&self, hostname: &str) -> Option<&Service> {
        self.services.get(hostname)
    }

    /// Endpoints serving `port` of `hostname`, sorted by address and port.
    pub fn endpoints(&self, hostname: &str, port: u16) -> &[Endpoint] {
        self.endpoints
            .get(&(hostname.to_owned(), port))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Services whose selector picks a workload with these labels in `namespace`: the
    /// services a sidecar's own workload serves (its inbound side).
    pub fn services_of_workload<'a>(
        &'a self,
        namespace: &'a str,
        labels: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a Service> + 'a {
        self.services.values().filter(move |s| {
            s.namespace == namespace
                && s.selector
                    .as_ref()
                    .is_some_and(|sel| !sel.is_empty() && selector_matches(sel, labels))
        })
    }
}

/// The endpoints of one port of `svc`: its inline endpoints and the `workloads` its
/// selector picks (`workloads` may hold more than those, in registry order).
fn endpoints_of(svc: &Service, port: &ServicePort, workloads: &[&Workload]) -> Vec<Endpoint> {
    let selected = svc.selector.as_ref().filter(|s| !s.is_empty()).map(|sel| {
        workloads
            .iter()
            .copied()
            .filter(move |w| w.namespace == svc.namespace && selector_matches(sel, &w.labels))
    });
    let mut out: Vec<Endpoint> = svc
        .inline_endpoints
        .iter()
        .chain(selected.into_iter().flatten())
        .filter(|w| !w.address.is_empty())
        .map(|w| Endpoint {
            address: w.address.clone(),
            port: w.port_for(port),
            labels: w.labels.clone(),
            weight: w.weight,
            locality: w.locality.clone(),
            service_account: w.service_account.clone(),
        })
        .collect();
    out.sort_by(|a, b| (&a.address, a.port).cmp(&(&b.address, b.port)));
    out.dedup_by(|a, b| a.address == b.address && a.port == b.port);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http-web}]
  resolution: DNS
  endpoints: [{address: api.example.com}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.11, labels: {app: reviews, version: v1}, ports: {http: 19080}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-other-ns, namespace: other}
spec: {address: 127.0.0.99, labels: {app: reviews, version: v1}}
"#;

    fn resources() -> Vec<Resource> {
        let out = weft_model::load_str("reg.yaml", CONFIG);
        assert!(!out.has_errors(), "{:?}", out.diagnostics);
        out.resources
    }

    #[test]
    fn service_entries_become_services() {
        let res = resources();
        let reg = Registry::build(&[&ConfigSource(&res)]);
        let reviews = reg
            .service("reviews.default.svc.cluster.local")
            .expect("svc");
        assert!(reviews.mesh_internal);
        assert_eq!(reviews.resolution, Resolution::Static);
        assert_eq!(reviews.ports[0].protocol, Protocol::Http);
        let ext = reg.service("api.example.com").expect("external");
        assert!(!ext.mesh_internal);
        assert_eq!(ext.resolution, Resolution::Dns);
        assert_eq!(ext.ports[0].protocol, Protocol::Tls);
        assert_eq!(ext.ports[1].protocol, Protocol::Http, "inferred from name");
        assert_eq!(
            reg.endpoints("api.example.com", 443)[0].address,
            "api.example.com"
        );
    }

    #[test]
    fn workload_entries_and_proxies_are_endpoints_of_selecting_services() {
        let res = resources();
        let proxies = [ProxyIdentity::sidecar(
            "reviews-v2",
            "default",
            "127.0.0.12",
            &[("app", "reviews"), ("version", "v2")],
        )];
        let reg = Registry::build(&[&ConfigSource(&res), &ProxySource(&proxies)]);
        let eps = reg.endpoints("reviews.default.svc.cluster.local", 9080);
        let got: Vec<(String, u16, String)> = eps
            .iter()
            .map(|e| (e.address.clone(), e.port, e.labels["version"].clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("127.0.0.11".to_owned(), 19080, "v1".to_owned()),
                ("127.0.0.12".to_owned(), 9080, "v2".to_owned()),
            ],
            "the named port maps; the proxy serves on the service port; other namespaces are not selected"
        );
        let inbound: Vec<&str> = reg
            .services_of_workload("default", &proxies[0].labels)
            .map(|s| s.hostname.as_str())
            .collect();
        assert_eq!(inbound, ["reviews.default.svc.cluster.local"]);
    }
}
