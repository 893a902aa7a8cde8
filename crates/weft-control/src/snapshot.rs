//! The immutable input of translation: the config resources in force, the registry built
//! from them and from the connected proxies, and a version.
//!
//! A new snapshot is built (debounced) whenever config or the set of connected proxies
//! changes; readers hold an `Arc<Snapshot>` and never see it change under them.

use crate::proxy::ProxyIdentity;
use crate::registry::{ConfigSource, ProxySource, Registry, exported_to};
use std::collections::BTreeMap;
use weft_model::istio::networking::{DestinationRule, Gateway, Sidecar, VirtualService};
use weft_model::{Resource, Spec};

/// `(kind, namespace, name)`: how resources are keyed, as in Kubernetes.
pub type ResourceKey = (String, String, String);

/// The key of a resource (`kind` is `Kind.group`, so Istio's and Gateway API's `Gateway`
/// differ).
pub fn key_of(r: &Resource) -> ResourceKey {
    (
        format!("{}.{}", r.kind.kind, r.kind.group),
        r.namespace().to_owned(),
        r.name().to_owned(),
    )
}

/// One snapshot of everything translation reads.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Increases with every snapshot built by one control plane.
    pub version: u64,
    /// Resources in force, one per key, in key order.
    pub resources: Vec<Resource>,
    pub registry: Registry,
    /// Proxies connected when the snapshot was built (their workloads are in `registry`).
    pub proxies: Vec<ProxyIdentity>,
}

impl Snapshot {
    /// Builds a snapshot. When several resources share a key the later one wins (as
    /// `kubectl apply -f DIR`).
    pub fn build(version: u64, resources: Vec<Resource>, proxies: Vec<ProxyIdentity>) -> Self {
        let mut by_key: BTreeMap<ResourceKey, Resource> = BTreeMap::new();
        for r in resources {
            by_key.insert(key_of(&r), r);
        }
        let resources: Vec<Resource> = by_key.into_values().collect();
        let registry = Registry::build(&[&ConfigSource(&resources), &ProxySource(&proxies)]);
        Snapshot {
            version,
            resources,
            registry,
            proxies,
        }
    }

    /// VirtualServices with their namespace.
    pub fn virtual_services(&self) -> impl Iterator<Item = (&Resource, &VirtualService)> {
        self.resources.iter().filter_map(|r| match &r.spec {
            Spec::VirtualService(vs) => Some((r, vs)),
            _ => None,
        })
    }

    /// DestinationRules with their namespace.
    pub fn destination_rules(&self) -> impl Iterator<Item = (&Resource, &DestinationRule)> {
        self.resources.iter().filter_map(|r| match &r.spec {
            Spec::DestinationRule(dr) => Some((r, dr)),
            _ => None,
        })
    }

    /// Istio Gateways.
    pub fn gateways(&self) -> impl Iterator<Item = (&Resource, &Gateway)> {
        self.resources.iter().filter_map(|r| match &r.spec {
            Spec::Gateway(g) => Some((r, g)),
            _ => None,
        })
    }

    /// Sidecars.
    pub fn sidecars(&self) -> impl Iterator<Item = (&Resource, &Sidecar)> {
        self.resources.iter().filter_map(|r| match &r.spec {
            Spec::Sidecar(s) => Some((r, s)),
            _ => None,
        })
    }

    /// The DestinationRule that applies to `hostname` for a proxy in `namespace`: Istio
    /// prefers one in the proxy's namespace, then the service's, then any exported one;
    /// an exact host beats a wildcard.
    pub fn destination_rule_for(
        &self,
        hostname: &str,
        proxy_namespace: &str,
        service_namespace: &str,
    ) -> Option<(&Resource, &DestinationRule)> {
        let candidates: Vec<(&Resource, &DestinationRule, String)> = self
            .destination_rules()
            .filter(|(r, dr)| {
                dr.workload_selector.is_none()
                    && exported_to(&dr.export_to, r.namespace(), proxy_namespace)
            })
            .map(|(r, dr)| {
                let host = weft_model::analyze::resolve_host(&dr.host, r.namespace());
                (r, dr, host)
            })
            .filter(|(_, _, h)| weft_model::analyze::host_matches(h, hostname))
            .collect();
        let rank = |r: &Resource, h: &str| {
            let ns_rank = if r.namespace() == proxy_namespace {
                0
            } else if r.namespace() == service_namespace {
                1
            } else {
                2
            };
            (ns_rank, usize::from(h != hostname), usize::MAX - h.len())
        };
        candidates
            .into_iter()
            .min_by_key(|(r, _, h)| rank(r, h))
            .map(|(r, dr, _)| (r, dr))
    }
}
