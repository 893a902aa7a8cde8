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
    /// The version of the first snapshot of the run of snapshots that differ from one
    /// another only in the endpoints of EDS (`STATIC`) services. Everything translation
    /// reads except those endpoints is equal in two snapshots with the same epoch, so
    /// their CDS, LDS and RDS for one proxy are equal too (see [`Snapshot::build_after`]).
    pub epoch: u64,
    /// Resources in force, one per key, in key order.
    pub resources: Vec<Resource>,
    pub registry: Registry,
    /// Proxies connected when the snapshot was built (their workloads are in `registry`).
    pub proxies: Vec<ProxyIdentity>,
    /// Positions in `resources` of the kinds translation looks up per service (routing
    /// resources, see [`is_routing`]), so a lookup does not scan every WorkloadEntry.
    routing: Vec<usize>,
}

/// VirtualServices, DestinationRules, Gateways, Sidecars, HTTPRoutes and GRPCRoutes.
fn is_routing(r: &Resource) -> bool {
    matches!(
        r.spec,
        Spec::VirtualService(_)
            | Spec::DestinationRule(_)
            | Spec::Gateway(_)
            | Spec::Sidecar(_)
            | Spec::HttpRoute(_)
            | Spec::GrpcRoute(_)
    )
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
        let routing = (0..resources.len())
            .filter(|&i| is_routing(&resources[i]))
            .collect();
        Snapshot {
            version,
            epoch: version,
            resources,
            registry,
            proxies,
            routing,
        }
    }

    /// Builds the snapshot that follows `prev`: it keeps `prev`'s epoch when the only
    /// difference is in endpoints of `STATIC` services (a WorkloadEntry or a connected
    /// proxy came, went or moved), which only EDS reads.
    ///
    /// What translation reads: every resource but WorkloadEntries (those only feed the
    /// registry's workloads), the registry's services, and endpoints (EDS load assignments
    /// for `STATIC` services; a `DNS` cluster carries its endpoints inline). Proxies and
    /// workloads are read only through endpoints. All of it but `STATIC` endpoints must
    /// compare equal to keep the epoch.
    pub fn build_after(
        prev: &Snapshot,
        version: u64,
        resources: Vec<Resource>,
        proxies: Vec<ProxyIdentity>,
    ) -> Self {
        let mut snap = Snapshot::build(version, resources, proxies);
        let not_workload = |r: &&Resource| !matches!(r.spec, Spec::WorkloadEntry(_));
        let same_config = snap
            .resources
            .iter()
            .filter(not_workload)
            .eq(prev.resources.iter().filter(not_workload));
        if same_config && snap.registry.same_but_static_endpoints(&prev.registry) {
            snap.epoch = prev.epoch;
        }
        snap
    }

    /// The routing resources (see [`is_routing`]), in `resources` order.
    pub(crate) fn routing_resources(&self) -> impl Iterator<Item = &Resource> {
        self.routing.iter().map(|&i| &self.resources[i])
    }

    /// VirtualServices with their namespace.
    pub fn virtual_services(&self) -> impl Iterator<Item = (&Resource, &VirtualService)> {
        self.routing_resources().filter_map(|r| match &r.spec {
            Spec::VirtualService(vs) => Some((r, vs)),
            _ => None,
        })
    }

    /// DestinationRules with their namespace.
    pub fn destination_rules(&self) -> impl Iterator<Item = (&Resource, &DestinationRule)> {
        self.routing_resources().filter_map(|r| match &r.spec {
            Spec::DestinationRule(dr) => Some((r, dr)),
            _ => None,
        })
    }

    /// Istio Gateways.
    pub fn gateways(&self) -> impl Iterator<Item = (&Resource, &Gateway)> {
        self.routing_resources().filter_map(|r| match &r.spec {
            Spec::Gateway(g) => Some((r, g)),
            _ => None,
        })
    }

    /// Sidecars.
    pub fn sidecars(&self) -> impl Iterator<Item = (&Resource, &Sidecar)> {
        self.routing_resources().filter_map(|r| match &r.spec {
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
