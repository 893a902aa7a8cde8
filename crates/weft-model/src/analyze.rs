//! Analysis across resources, like `istioctl analyze`: references that point nowhere,
//! resources that conflict, selectors that select nothing.
//!
//! Input is a set of resources that each passed validation. The mesh's registry is what the
//! files describe: Kubernetes Services and Istio ServiceEntries give services (hosts and
//! ports); Pods, Deployments, WorkloadEntries and ServiceEntry endpoints give workloads
//! (labels). When the files hold no services (or no workloads), checks that need them are
//! skipped with one Info note instead of flagging every reference.

use crate::common::selector_matches;
use crate::diag::{Diagnostic, Severity};
use crate::istio::networking::{Destination, DestinationRule, VirtualService};
use crate::resource::{Resource, Spec};
use std::collections::BTreeMap;

/// Istio's analyzer message codes used here.
pub mod codes {
    /// A resource being referenced does not exist.
    pub const REFERENCED_RESOURCE_NOT_FOUND: &str = "IST0101";
    /// Conflicting hosts on VirtualServices associated with the mesh gateway.
    pub const CONFLICTING_MESH_GATEWAY_VS_HOSTS: &str = "IST0109";
    /// A Sidecar selects the same workloads as another Sidecar.
    pub const CONFLICTING_SIDECAR_WORKLOAD_SELECTORS: &str = "IST0110";
    /// More than one Sidecar in a namespace has no workload selector.
    pub const MULTIPLE_SIDECARS_WITHOUT_SELECTORS: &str = "IST0111";
    /// A policy's selector matches no workload.
    pub const NO_MATCHING_WORKLOADS_FOUND: &str = "IST0127";
    /// A VirtualService match can never be reached.
    pub const VIRTUAL_SERVICE_INEFFECTIVE_MATCH: &str = "IST0131";
    /// A VirtualService host is not exposed by the gateway it is bound to.
    pub const VS_HOST_NOT_FOUND_IN_GATEWAY: &str = "IST0132";
    /// A DestinationRule subset selects no workload.
    pub const DESTINATION_RULE_SUBSET_NOT_SELECT_PODS: &str = "IST0173";
    /// A DestinationRule host matches no service.
    pub const UNKNOWN_DESTINATION_RULE_HOST: &str = "IST0174";
}

/// The Kubernetes DNS suffix weft's registry uses for short names.
pub const DOMAIN_SUFFIX: &str = "svc.cluster.local";

/// Expands a host as Istio does: a name without dots is relative to the namespace of the
/// resource that wrote it (`reviews` in `default` is `reviews.default.svc.cluster.local`);
/// anything with a dot is taken as written.
pub fn resolve_host(host: &str, namespace: &str) -> String {
    if host.contains('.') || host.contains('*') || namespace.is_empty() {
        host.to_string()
    } else {
        format!("{host}.{namespace}.{DOMAIN_SUFFIX}")
    }
}

/// True when `pattern` (possibly `*` or `*.suffix`) covers `host`.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" || pattern == host {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
        None => false,
    }
}

/// A service known to the files: its fully qualified hosts and its ports.
#[derive(Debug, Clone)]
pub struct KnownService {
    pub hosts: Vec<String>,
    pub ports: Vec<u32>,
    pub namespace: String,
    /// Labels that select the service's workloads (empty: none known).
    pub selector: BTreeMap<String, String>,
}

/// A workload known to the files: where it runs and its labels.
#[derive(Debug, Clone)]
pub struct KnownWorkload {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// `Deployment default/reviews-v1`, for messages.
    pub source: String,
}

/// The registry the files describe.
#[derive(Debug, Default)]
pub struct Registry {
    pub services: Vec<KnownService>,
    pub workloads: Vec<KnownWorkload>,
}

impl Registry {
    /// Builds the registry from Kubernetes objects and Istio service/workload entries.
    pub fn from_resources(resources: &[Resource]) -> Registry {
        let mut reg = Registry::default();
        for r in resources {
            let ns = r.namespace().to_string();
            match &r.spec {
                Spec::Service(s) => {
                    let ports = s
                        .spec
                        .as_ref()
                        .and_then(|s| s.ports.as_ref())
                        .map(|p| p.iter().map(|p| p.port.max(0) as u32).collect())
                        .unwrap_or_default();
                    let selector = s
                        .spec
                        .as_ref()
                        .and_then(|s| s.selector.clone())
                        .unwrap_or_default();
                    reg.services.push(KnownService {
                        hosts: vec![format!("{}.{ns}.{DOMAIN_SUFFIX}", r.name())],
                        ports,
                        namespace: ns,
                        selector,
                    });
                }
                Spec::Pod(_) => reg.workloads.push(KnownWorkload {
                    namespace: ns,
                    labels: r.meta.labels.clone(),
                    source: r.display_name(),
                }),
                Spec::Deployment(d) => {
                    let labels = d
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.metadata.as_ref())
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    reg.workloads.push(KnownWorkload {
                        namespace: ns,
                        labels,
                        source: r.display_name(),
                    });
                }
                _ => istio_registry_entries(r, &mut reg),
            }
        }
        reg
    }

    /// The service that owns `fqdn`, if any (wildcard service hosts included).
    pub fn service(&self, fqdn: &str) -> Option<&KnownService> {
        self.services
            .iter()
            .find(|s| s.hosts.iter().any(|h| host_matches(h, fqdn)))
    }

    /// Workloads in `namespace` (or anywhere when `None`) whose labels match `selector`.
    pub fn selected<'a>(
        &'a self,
        namespace: Option<&'a str>,
        selector: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a KnownWorkload> + 'a {
        self.workloads.iter().filter(move |w| {
            namespace.is_none_or(|ns| w.namespace == ns) && selector_matches(selector, &w.labels)
        })
    }
}

/// Renders a label selector as `app=reviews,version=v1`.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Collects findings; each check appends to it.
struct Findings {
    out: Vec<Diagnostic>,
}

impl Findings {
    fn push(&mut self, r: &Resource, sev: Severity, code: &'static str, path: &str, msg: String) {
        self.out.push(r.diagnostic(sev, path, msg).with_code(code));
    }
}

/// Every cross-resource finding for a set of valid resources.
///
/// Resources are keyed by kind, namespace and name, as in Kubernetes: when several files
/// define the same resource, the later one replaces the earlier (as `kubectl apply -f DIR`
/// does) and an Info note says so.
pub fn analyze(resources: &[Resource]) -> Vec<Diagnostic> {
    let mut f = Findings { out: Vec::new() };
    let effective = latest_definitions(resources, &mut f);
    let resources: &[Resource] = &effective;
    let reg = Registry::from_resources(resources);
    if reg.services.is_empty() && has_references(resources) {
        f.out.push(Diagnostic::info(
            "no Service or ServiceEntry in the given files: destination hosts were not checked (add the files that define your services)",
        ));
    }
    virtual_service_checks(resources, &reg, &mut f);
    destination_rule_checks(resources, &reg, &mut f);
    istio_checks(resources, &reg, &mut f);
    gateway_api_checks(resources, &reg, &mut f);
    f.out
}

fn latest_definitions(resources: &[Resource], f: &mut Findings) -> Vec<Resource> {
    let key = |r: &Resource| {
        (
            r.kind as *const _ as usize,
            r.namespace().to_string(),
            r.name().to_string(),
        )
    };
    let mut last: BTreeMap<(usize, String, String), usize> = BTreeMap::new();
    for (i, r) in resources.iter().enumerate() {
        last.insert(key(r), i);
    }
    let mut out = Vec::with_capacity(last.len());
    for (i, r) in resources.iter().enumerate() {
        let winner = last[&key(r)];
        if winner == i {
            out.push(r.clone());
        } else {
            let w = &resources[winner];
            f.out.push(r.diagnostic(Severity::Info, "metadata.name", format!(
                "{} is defined again in {}:{}; as with kubectl apply, the later definition replaces this one",
                r.display_name(), w.origin.file, w.origin.pos.line
            )));
        }
    }
    out
}

fn has_references(resources: &[Resource]) -> bool {
    resources.iter().any(|r| {
        matches!(
            r.spec,
            Spec::VirtualService(_) | Spec::DestinationRule(_) | Spec::HttpRoute(_)
        )
    })
}

/// Services and workloads that Istio's own resources describe.
fn istio_registry_entries(r: &Resource, reg: &mut Registry) {
    let ns = r.namespace().to_string();
    match &r.spec {
        Spec::ServiceEntry(se) => {
            let selector = se
                .workload_selector
                .as_ref()
                .map(|s| s.labels.clone())
                .unwrap_or_default();
            reg.services.push(KnownService {
                hosts: se.hosts.iter().map(|h| resolve_host(h, &ns)).collect(),
                ports: se.ports.iter().filter_map(|p| p.number).collect(),
                namespace: ns.clone(),
                selector,
            });
            for e in &se.endpoints {
                reg.workloads.push(KnownWorkload {
                    namespace: ns.clone(),
                    labels: e.labels.clone(),
                    source: r.display_name(),
                });
            }
        }
        Spec::WorkloadEntry(we) => reg.workloads.push(KnownWorkload {
            namespace: ns,
            labels: we.labels.clone(),
            source: r.display_name(),
        }),
        _ => {}
    }
}

/// Istio's root namespace: policies there apply to the whole mesh.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The ingress gateway weft itself runs (`weft demo`, and the Kubernetes install), which
/// no user file describes: gateways selecting it are not dangling.
pub fn builtin_ingress_gateway() -> KnownWorkload {
    KnownWorkload {
        namespace: ROOT_NAMESPACE.to_string(),
        labels: [("istio", "ingressgateway"), ("app", "istio-ingressgateway")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        source: "weft ingress gateway".to_string(),
    }
}

fn sel(s: &Option<crate::common::WorkloadSelector>) -> Option<&BTreeMap<String, String>> {
    s.as_ref().map(|s| &s.match_labels)
}

/// The label selector of a workload-scoped resource and the field that holds it.
fn policy_selector(spec: &Spec) -> Option<(&BTreeMap<String, String>, &'static str)> {
    match spec {
        Spec::PeerAuthentication(p) => sel(&p.selector).map(|s| (s, "spec.selector")),
        Spec::AuthorizationPolicy(p) => sel(&p.selector).map(|s| (s, "spec.selector")),
        Spec::RequestAuthentication(p) => sel(&p.selector).map(|s| (s, "spec.selector")),
        Spec::Telemetry(p) => sel(&p.selector).map(|s| (s, "spec.selector")),
        Spec::Sidecar(p) => p
            .workload_selector
            .as_ref()
            .map(|s| (&s.labels, "spec.workloadSelector")),
        _ => None,
    }
}

fn istio_checks(resources: &[Resource], reg: &Registry, f: &mut Findings) {
    let workloads_known = !reg.workloads.is_empty();
    let mut skipped_selectors = false;
    let mut gateway_workloads = reg.workloads.clone();
    gateway_workloads.push(builtin_ingress_gateway());
    for r in resources {
        let ns = r.namespace();
        // Gateways select the workloads that serve them, in any namespace.
        if let Spec::Gateway(gw) = &r.spec
            && !gw.selector.is_empty()
        {
            if !workloads_known {
                skipped_selectors = true;
            } else if !gateway_workloads
                .iter()
                .any(|w| selector_matches(&gw.selector, &w.labels))
            {
                f.push(
                    r,
                    Severity::Error,
                    codes::REFERENCED_RESOURCE_NOT_FOUND,
                    "spec.selector",
                    format!(
                        "Referenced selector not found: \"{}\"",
                        selector_string(&gw.selector)
                    ),
                );
            }
        }
        // Policies select workloads of their own namespace (all of them in the root namespace).
        if let Some((selector, path)) = policy_selector(&r.spec)
            && !selector.is_empty()
        {
            if !workloads_known {
                skipped_selectors = true;
                continue;
            }
            let scope = (ns != ROOT_NAMESPACE).then_some(ns);
            if reg.selected(scope, selector).next().is_none() {
                f.push(
                    r,
                    Severity::Warning,
                    codes::NO_MATCHING_WORKLOADS_FOUND,
                    path,
                    format!(
                        "No matching workloads for this resource with the following labels: {}",
                        selector_string(selector)
                    ),
                );
            }
        }
    }
    sidecar_checks(resources, reg, f);
    if skipped_selectors {
        f.out.push(Diagnostic::info(
            "no Pod, Deployment or WorkloadEntry in the given files: workload selectors were not checked",
        ));
    }
}

/// IST0111 (several Sidecars without selector in one namespace) and IST0110 (two Sidecars
/// selecting the same workload).
fn sidecar_checks(resources: &[Resource], reg: &Registry, f: &mut Findings) {
    let sidecars: Vec<(&Resource, &crate::istio::networking::Sidecar)> = resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::Sidecar(s) => Some((r, s)),
            _ => None,
        })
        .collect();
    let mut by_ns: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for (r, s) in &sidecars {
        if s.workload_selector
            .as_ref()
            .is_none_or(|w| w.labels.is_empty())
        {
            by_ns.entry(r.namespace()).or_default().push(r);
        }
    }
    for (ns, rs) in by_ns {
        if rs.len() < 2 {
            continue;
        }
        let names: Vec<&str> = rs.iter().map(|r| r.name()).collect();
        for r in rs {
            f.push(r, Severity::Error, codes::MULTIPLE_SIDECARS_WITHOUT_SELECTORS, "spec", format!(
                "The Sidecars [{}] in namespace {ns} have no workload selector; only one such Sidecar per namespace is allowed.",
                names.join(", ")
            ));
        }
    }
    for w in &reg.workloads {
        let selecting: Vec<&Resource> = sidecars
            .iter()
            .filter(|(r, s)| {
                r.namespace() == w.namespace
                    && s.workload_selector.as_ref().is_some_and(|sel| {
                        !sel.labels.is_empty() && selector_matches(&sel.labels, &w.labels)
                    })
            })
            .map(|(r, _)| *r)
            .collect();
        if selecting.len() > 1 {
            let names: Vec<&str> = selecting.iter().map(|r| r.name()).collect();
            for r in selecting {
                f.push(
                    r,
                    Severity::Error,
                    codes::CONFLICTING_SIDECAR_WORKLOAD_SELECTORS,
                    "spec.workloadSelector",
                    format!(
                        "The Sidecars [{}] in namespace {} select the same workload ({}).",
                        names.join(", "),
                        w.namespace,
                        w.source
                    ),
                );
            }
        }
    }
}

/// The hosts a Gateway exposes (namespace prefixes dropped), or None when it is not an
/// Istio Gateway.
fn gateway_hosts(gw: &Resource) -> Option<Vec<String>> {
    let Spec::Gateway(g) = &gw.spec else {
        return None;
    };
    Some(
        g.servers
            .iter()
            .flat_map(|s| s.hosts.iter())
            .map(|h| h.split_once('/').map_or(h.as_str(), |(_, h)| h).to_string())
            .collect(),
    )
}

/// A destination some route sends traffic to, with the path of its `destination` field.
struct DestinationRef<'a> {
    path: String,
    dest: &'a Destination,
}

/// Every destination a VirtualService names: routes, mirrors, TLS and TCP routes.
fn destinations(vs: &VirtualService) -> Vec<DestinationRef<'_>> {
    let mut out = Vec::new();
    for (i, h) in vs.http.iter().enumerate() {
        for (j, rd) in h.route.iter().enumerate() {
            if let Some(d) = &rd.destination {
                out.push(DestinationRef {
                    path: format!("spec.http[{i}].route[{j}].destination"),
                    dest: d,
                });
            }
        }
        if let Some(d) = &h.mirror {
            out.push(DestinationRef {
                path: format!("spec.http[{i}].mirror"),
                dest: d,
            });
        }
        for (j, m) in h.mirrors.iter().enumerate() {
            if let Some(d) = &m.destination {
                out.push(DestinationRef {
                    path: format!("spec.http[{i}].mirrors[{j}].destination"),
                    dest: d,
                });
            }
        }
    }
    for (kind, routes) in [
        ("tls", vs.tls.iter().map(|t| &t.route).collect::<Vec<_>>()),
        ("tcp", vs.tcp.iter().map(|t| &t.route).collect()),
    ] {
        for (i, route) in routes.into_iter().enumerate() {
            for (j, rd) in route.iter().enumerate() {
                if let Some(d) = &rd.destination {
                    out.push(DestinationRef {
                        path: format!("spec.{kind}[{i}].route[{j}].destination"),
                        dest: d,
                    });
                }
            }
        }
    }
    out
}

/// `(namespace, name)` of a gateway reference as Istio resolves it: `ns/name`, the legacy
/// `name.namespace`, or a bare name in the referring resource's namespace.
fn gateway_ref(name: &str, namespace: &str) -> (String, String) {
    if let Some((ns, n)) = name.split_once('/') {
        (ns.to_string(), n.to_string())
    } else if let Some((n, ns)) = name.split_once('.') {
        (ns.to_string(), n.to_string())
    } else {
        (namespace.to_string(), name.to_string())
    }
}

fn is_mesh_bound(vs: &VirtualService) -> bool {
    vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == "mesh")
}

/// DestinationRules by the host they apply to (resolved in their own namespace).
fn destination_rules(resources: &[Resource]) -> Vec<(&Resource, &DestinationRule, String)> {
    resources
        .iter()
        .filter_map(|r| match &r.spec {
            Spec::DestinationRule(dr) => Some((r, dr, resolve_host(&dr.host, r.namespace()))),
            _ => None,
        })
        .collect()
}

fn virtual_service_checks(resources: &[Resource], reg: &Registry, f: &mut Findings) {
    let gateways: BTreeMap<(String, String), &Resource> = resources
        .iter()
        .filter(|r| matches!(r.spec, Spec::Gateway(_)))
        .map(|r| ((r.namespace().to_string(), r.name().to_string()), r))
        .collect();
    let drs = destination_rules(resources);
    // Mesh-bound VirtualServices by resolved host, to find conflicts (IST0109).
    let mut mesh_hosts: BTreeMap<String, Vec<&Resource>> = BTreeMap::new();
    for r in resources {
        let Spec::VirtualService(vs) = &r.spec else {
            continue;
        };
        let ns = r.namespace();
        // Gateways named at the top and in matches must exist.
        let mut gw_refs: Vec<(String, &str)> = vs
            .gateways
            .iter()
            .enumerate()
            .map(|(i, g)| (format!("spec.gateways[{i}]"), g.as_str()))
            .collect();
        for (i, h) in vs.http.iter().enumerate() {
            for (j, m) in h.r#match.iter().enumerate() {
                for (k, g) in m.gateways.iter().enumerate() {
                    gw_refs.push((
                        format!("spec.http[{i}].match[{j}].gateways[{k}]"),
                        g.as_str(),
                    ));
                }
            }
        }
        for (path, g) in gw_refs {
            if g == "mesh" {
                continue;
            }
            match gateways.get(&gateway_ref(g, ns)) {
                Some(gw) => gateway_host_check(r, vs, &path, gw, f),
                None => f.push(
                    r,
                    Severity::Error,
                    codes::REFERENCED_RESOURCE_NOT_FOUND,
                    &path,
                    format!("Referenced gateway not found: \"{g}\""),
                ),
            }
        }
        // Destinations: the host must exist (when the files describe services) and a
        // named subset must be defined by a DestinationRule for that host.
        for d in destinations(vs) {
            let host = resolve_host(&d.dest.host, ns);
            if !reg.services.is_empty() && !host.contains('*') && reg.service(&host).is_none() {
                f.push(
                    r,
                    Severity::Error,
                    codes::REFERENCED_RESOURCE_NOT_FOUND,
                    &format!("{}.host", d.path),
                    format!("Referenced host not found: \"{}\"", d.dest.host),
                );
            }
            if let Some(subset) = &d.dest.subset {
                let defined = drs.iter().any(|(_, dr, dr_host)| {
                    host_matches(dr_host, &host) && dr.subsets.iter().any(|s| &s.name == subset)
                });
                if !defined {
                    f.push(
                        r,
                        Severity::Error,
                        codes::REFERENCED_RESOURCE_NOT_FOUND,
                        &format!("{}.subset", d.path),
                        format!(
                            "Referenced host+subset in destinationrule not found: \"{}+{subset}\"",
                            d.dest.host
                        ),
                    );
                }
            }
        }
        if is_mesh_bound(vs) {
            for h in &vs.hosts {
                mesh_hosts.entry(resolve_host(h, ns)).or_default().push(r);
            }
        }
    }
    for (host, vss) in mesh_hosts {
        if vss.len() < 2 {
            continue;
        }
        let names: Vec<String> = vss
            .iter()
            .map(|r| format!("{}/{}", r.namespace(), r.name()))
            .collect();
        for r in vss {
            f.push(r, Severity::Error, codes::CONFLICTING_MESH_GATEWAY_VS_HOSTS, "spec.hosts", format!(
                "The VirtualServices {} associated with mesh gateway define the same host {host} which can lead to undefined behavior. Merge the conflicting VirtualServices into a single resource.",
                names.join(",")
            ));
        }
    }
}

/// IST0132: every host of a gateway-bound VirtualService must be exposed by the gateway.
fn gateway_host_check(
    r: &Resource,
    vs: &VirtualService,
    path: &str,
    gw: &Resource,
    f: &mut Findings,
) {
    let gw_hosts = gateway_hosts(gw);
    let Some(gw_hosts) = gw_hosts else { return };
    let missing: Vec<&str> = vs
        .hosts
        .iter()
        .filter(|h| {
            !gw_hosts
                .iter()
                .any(|g| host_matches(g, h) || host_matches(h, g))
        })
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        f.push(
            r,
            Severity::Warning,
            codes::VS_HOST_NOT_FOUND_IN_GATEWAY,
            path,
            format!(
                "one or more host [{}] defined in VirtualService {}/{} not found in Gateway {}/{}.",
                missing.join(","),
                r.namespace(),
                r.name(),
                gw.namespace(),
                gw.name()
            ),
        );
    }
}

fn destination_rule_checks(resources: &[Resource], reg: &Registry, f: &mut Findings) {
    let drs = destination_rules(resources);
    for (i, (r, dr, host)) in drs.iter().enumerate() {
        let svc = reg.service(host);
        if !reg.services.is_empty() && svc.is_none() && !host.contains('*') {
            f.push(r, Severity::Warning, codes::UNKNOWN_DESTINATION_RULE_HOST, "spec.host", format!(
                "The host {} defined in the DestinationRule does not match any services in the mesh.",
                dr.host
            ));
        }
        // Two rules for one host in one namespace: Istio merges them, and only the first
        // trafficPolicy is used. Report on the later one.
        if dr.workload_selector.is_none()
            && let Some((first, _, _)) = drs[..i].iter().find(|(o, odr, ohost)| {
                ohost == host && o.namespace() == r.namespace() && odr.workload_selector.is_none()
            })
        {
            f.out.push(r.diagnostic(Severity::Warning, "spec.host", format!(
                "DestinationRule {}/{} also applies to host {host}; Istio merges the two, keeps the first one's trafficPolicy and ignores a repeated subset name. Put the subsets and policy in one DestinationRule.",
                first.namespace(), first.name()
            )));
        }
        // IST0173: a subset that selects no workload of the service.
        if let Some(svc) = svc
            && !svc.selector.is_empty()
            && reg.workloads.iter().any(|w| w.namespace == svc.namespace)
        {
            for (j, subset) in dr.subsets.iter().enumerate() {
                let mut selector = svc.selector.clone();
                selector.extend(subset.labels.clone());
                if reg
                    .selected(Some(&svc.namespace), &selector)
                    .next()
                    .is_none()
                {
                    f.push(r, Severity::Warning, codes::DESTINATION_RULE_SUBSET_NOT_SELECT_PODS, &format!("spec.subsets[{j}]"), format!(
                        "The Subset {} defined in the DestinationRule does not select any pods (labels {}).",
                        subset.name, selector_string(&selector)
                    ));
                }
            }
        }
    }
}

/// A Gateway API reference: group, kind, namespace (if written), name, and where it sits.
struct ApiRef<'a> {
    path: String,
    group: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    section: Option<&'a str>,
}

const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// GatewayClasses weft provides itself.
pub const BUILTIN_GATEWAY_CLASSES: &[&str] = &["weft", "istio"];

fn parent_refs(refs: &[crate::gateway_api::ParentReference]) -> Vec<ApiRef<'_>> {
    refs.iter()
        .enumerate()
        .map(|(i, p)| ApiRef {
            path: format!("spec.parentRefs[{i}]"),
            group: p.group.as_deref().unwrap_or(GATEWAY_API_GROUP),
            kind: p.kind.as_deref().unwrap_or("Gateway"),
            namespace: p.namespace.as_deref(),
            name: &p.name,
            section: p.section_name.as_deref(),
        })
        .collect()
}

/// Parent and backend references of a Gateway API route.
fn route_refs(spec: &Spec) -> (Vec<ApiRef<'_>>, Vec<ApiRef<'_>>) {
    macro_rules! backends {
        ($rules:expr) => {{
            let mut out = Vec::new();
            for (i, rule) in $rules.iter().enumerate() {
                for (j, b) in rule.backend_refs.iter().enumerate() {
                    out.push(ApiRef {
                        path: format!("spec.rules[{i}].backendRefs[{j}]"),
                        group: b.group.as_deref().unwrap_or(""),
                        kind: b.kind.as_deref().unwrap_or("Service"),
                        namespace: b.namespace.as_deref(),
                        name: &b.name,
                        section: None,
                    });
                }
            }
            out
        }};
    }
    match spec {
        Spec::HttpRoute(r) => (parent_refs(&r.parent_refs), backends!(r.rules)),
        Spec::GrpcRoute(r) => (parent_refs(&r.parent_refs), backends!(r.rules)),
        Spec::TcpRoute(r) => (parent_refs(&r.parent_refs), backends!(r.rules)),
        Spec::TlsRoute(r) => (parent_refs(&r.parent_refs), backends!(r.rules)),
        _ => (Vec::new(), Vec::new()),
    }
}

/// True when a ReferenceGrant in `to_ns` lets `from_kind` routes of `from_ns` refer to
/// the Service `name`.
fn reference_granted(
    resources: &[Resource],
    from_kind: &str,
    from_ns: &str,
    to_ns: &str,
    to_kind: &str,
    name: &str,
) -> bool {
    resources.iter().any(|r| {
        let Spec::ReferenceGrant(g) = &r.spec else {
            return false;
        };
        r.namespace() == to_ns
            && g.from.iter().any(|f| {
                f.group.as_deref().unwrap_or("") == GATEWAY_API_GROUP
                    && f.kind == from_kind
                    && f.namespace == from_ns
            })
            && g.to.iter().any(|t| {
                t.group.as_deref().unwrap_or("").is_empty()
                    && t.kind == to_kind
                    && t.name.as_deref().is_none_or(|n| n == name)
            })
    })
}

fn gateway_api_checks(resources: &[Resource], reg: &Registry, f: &mut Findings) {
    let k8s_gateway = |ns: &str, name: &str| {
        resources.iter().find_map(|r| match &r.spec {
            Spec::KubeGateway(g) if r.namespace() == ns && r.name() == name => Some(g),
            _ => None,
        })
    };
    for r in resources {
        let ns = r.namespace();
        if let Spec::KubeGateway(g) = &r.spec {
            let class_known = BUILTIN_GATEWAY_CLASSES.contains(&g.gateway_class_name.as_str())
                || resources.iter().any(|c| {
                    matches!(c.spec, Spec::GatewayClass(_)) && c.name() == g.gateway_class_name
                });
            if !class_known {
                f.push(
                    r,
                    Severity::Error,
                    codes::REFERENCED_RESOURCE_NOT_FOUND,
                    "spec.gatewayClassName",
                    format!(
                        "Referenced GatewayClass not found: \"{}\" (weft provides: {})",
                        g.gateway_class_name,
                        BUILTIN_GATEWAY_CLASSES.join(", ")
                    ),
                );
            }
        }
        let (parents, backends) = route_refs(&r.spec);
        for p in parents {
            let pns = p.namespace.unwrap_or(ns);
            if p.group == GATEWAY_API_GROUP && p.kind == "Gateway" {
                match k8s_gateway(pns, p.name) {
                    None => f.push(
                        r,
                        Severity::Error,
                        codes::REFERENCED_RESOURCE_NOT_FOUND,
                        &p.path,
                        format!("Referenced gateway not found: \"{pns}/{}\"", p.name),
                    ),
                    Some(g) => {
                        if let Some(section) = p.section
                            && !g.listeners.iter().any(|l| l.name == section)
                        {
                            f.push(r, Severity::Error, codes::REFERENCED_RESOURCE_NOT_FOUND, &format!("{}.sectionName", p.path), format!(
                                "Referenced listener not found: Gateway {pns}/{} has no listener named \"{section}\"",
                                p.name
                            ));
                        }
                    }
                }
            } else if p.group.is_empty() && p.kind == "Service" {
                let host = format!("{}.{pns}.{DOMAIN_SUFFIX}", p.name);
                if !reg.services.is_empty() && reg.service(&host).is_none() {
                    f.push(
                        r,
                        Severity::Error,
                        codes::REFERENCED_RESOURCE_NOT_FOUND,
                        &p.path,
                        format!("Referenced service not found: \"{pns}/{}\"", p.name),
                    );
                }
            }
        }
        for b in backends {
            if !(b.group.is_empty() && b.kind == "Service") {
                continue;
            }
            let bns = b.namespace.unwrap_or(ns);
            let host = format!("{}.{bns}.{DOMAIN_SUFFIX}", b.name);
            if !reg.services.is_empty() && reg.service(&host).is_none() {
                f.push(
                    r,
                    Severity::Error,
                    codes::REFERENCED_RESOURCE_NOT_FOUND,
                    &format!("{}.name", b.path),
                    format!("Referenced backend not found: Service \"{bns}/{}\"", b.name),
                );
            }
            if bns != ns && !reference_granted(resources, r.kind.kind, ns, bns, "Service", b.name) {
                f.out.push(r.diagnostic(Severity::Error, &format!("{}.namespace", b.path), format!(
                    "reference to Service {bns}/{} is not permitted (RefNotPermitted): no ReferenceGrant in namespace {bns} allows {} from namespace {ns}",
                    b.name, r.kind.kind
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_resolve_like_istio() {
        assert_eq!(
            resolve_host("reviews", "default"),
            "reviews.default.svc.cluster.local"
        );
        assert_eq!(resolve_host("reviews.prod", "default"), "reviews.prod");
        assert_eq!(resolve_host("*", "default"), "*");
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("*", "anything"));
    }
}
