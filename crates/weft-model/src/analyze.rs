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
use crate::resource::{Resource, Spec};
use std::collections::{BTreeMap, BTreeSet};

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
                    reg.services.push(KnownService {
                        hosts: vec![format!("{}.{ns}.{DOMAIN_SUFFIX}", r.name())],
                        ports,
                        namespace: ns,
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
pub fn analyze(resources: &[Resource]) -> Vec<Diagnostic> {
    let reg = Registry::from_resources(resources);
    let mut f = Findings { out: Vec::new() };
    if reg.services.is_empty() && has_references(resources) {
        f.out.push(Diagnostic::info(
            "no Service or ServiceEntry in the given files: destination hosts were not checked (add the files that define your services)",
        ));
    }
    istio_checks(resources, &reg, &mut f);
    let _ = BTreeSet::<()>::new();
    f.out
}

fn has_references(resources: &[Resource]) -> bool {
    resources.iter().any(|r| {
        matches!(
            r.spec,
            Spec::VirtualService(_) | Spec::DestinationRule(_) | Spec::HttpRoute(_)
        )
    })
}

fn istio_registry_entries(_r: &Resource, _reg: &mut Registry) {}

fn istio_checks(_resources: &[Resource], _reg: &Registry, _f: &mut Findings) {}

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
