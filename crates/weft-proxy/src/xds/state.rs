//! What the xDS client has accepted, and how an update reaches the running proxy.
//!
//! Protocol-independent: the SotW and delta streams both call [`XdsState::apply`] with the
//! resources of one response. Each resource is converted alone (`TryFrom`); a resource that
//! does not convert is reported in the NACK and keeps its last good version, the others
//! apply. Envoy's warming order: a cluster using EDS becomes active once its endpoints are
//! known, a listener once every RDS route config it names is known (or after the initial
//! fetch timeout, as Envoy does).

use super::{TypeKind, XdsOptions};
use crate::config::cluster::{Discovery, load_assignment};
use crate::config::listener::NetworkFilter;
use crate::config::{ClusterConfig, ListenerConfig, RouteTable};
use crate::listener_manager::ListenerManager;
use crate::stats::Stats;
use crate::upstream::{ClusterManager, static_endpoints};
use envoy_types::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener as PbListener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use tokio::sync::watch;

/// One accepted resource as received (for `/config_dump` and reconnects).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub version: String,
    pub any: Any,
    pub updated: SystemTime,
}

#[derive(Debug)]
struct WarmingCluster {
    config: Arc<ClusterConfig>,
    service: String,
    stored: Stored,
    since: Instant,
}

#[derive(Debug)]
struct WarmingListener {
    config: Arc<ListenerConfig>,
    routes: BTreeSet<String>,
    stored: Stored,
    since: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    /// Active resources by type and name.
    active: [BTreeMap<String, Stored>; 4],
    /// The version of the last fully accepted SotW response per type.
    sotw_version: [String; 4],
    /// Whether a response of the type was seen (readiness needs CDS and LDS).
    received: [bool; 4],
    /// EDS service name of each active EDS cluster.
    cluster_service: BTreeMap<String, String>,
    warming_clusters: BTreeMap<String, WarmingCluster>,
    /// Endpoints by EDS service name.
    endpoints: BTreeMap<String, Vec<crate::config::cluster::LocalityEndpoints>>,
    /// RDS names of each active listener.
    listener_routes: BTreeMap<String, BTreeSet<String>>,
    warming_listeners: BTreeMap<String, WarmingListener>,
}

/// The xDS client's state: accepted resources, warming ones, readiness.
pub struct XdsState {
    pub(crate) options: XdsOptions,
    clusters: Arc<ClusterManager>,
    listeners: Arc<ListenerManager>,
    pub(crate) stats: Arc<Stats>,
    ready: watch::Sender<bool>,
    inner: tokio::sync::Mutex<Inner>,
    /// Field paths (indices stripped) already warned about: each is reported once.
    reported: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for XdsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdsState")
            .field("options", &self.options)
            .finish()
    }
}

/// One resource of a response: its name when the protocol says it (delta), the packed
/// message, and its version.
pub(crate) struct Incoming {
    pub name: Option<String>,
    pub any: Any,
    pub version: String,
}

fn decode<M: Message + Default>(any: &Any, want: &str) -> Result<M, String> {
    if any.type_url != want {
        return Err(format!("expected {want}, got {}", any.type_url));
    }
    M::decode(any.value.as_slice()).map_err(|e| format!("decoding: {e}"))
}

/// Replaces `[3]`, `["key"]` with `[]` so a report names a field path, not an instance.
fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    out.push_str("[]");
                }
                depth += 1;
            }
            ']' => depth -= 1,
            _ if depth > 0 => {}
            c => out.push(c),
        }
    }
    out
}

impl XdsState {
    pub(crate) fn new(
        options: XdsOptions,
        clusters: Arc<ClusterManager>,
        listeners: Arc<ListenerManager>,
        stats: Arc<Stats>,
        ready: watch::Sender<bool>,
    ) -> Arc<XdsState> {
        Arc::new(XdsState {
            options,
            clusters,
            listeners,
            stats,
            ready,
            inner: Default::default(),
            reported: Default::default(),
        })
    }

    /// Warns once per field path (instances folded together) about something weft ignores.
    pub(crate) fn warn_once(&self, kind: TypeKind, path: &str, what: &str) {
        warn_once(&self.reported, kind, path, what)
    }

    /// The version of the last fully accepted SotW response of `kind` (`""` before any).
    pub(crate) async fn sotw_version(&self, kind: TypeKind) -> String {
        self.inner.lock().await.sotw_version[kind as usize].clone()
    }

    /// Versions of the accepted resources of `kind`, for delta's `initial_resource_versions`.
    pub(crate) async fn versions(&self, kind: TypeKind) -> HashMap<String, String> {
        self.inner.lock().await.active[kind as usize]
            .iter()
            .map(|(n, s)| (n.clone(), s.version.clone()))
            .collect()
    }

    /// The names the proxy needs of a named type: EDS services of EDS clusters, RDS route
    /// configs of HTTP listeners (active and warming). Empty for wildcard types.
    pub(crate) async fn wanted(&self, kind: TypeKind) -> BTreeSet<String> {
        let inner = self.inner.lock().await;
        match kind {
            TypeKind::Endpoint => inner
                .cluster_service
                .values()
                .cloned()
                .chain(inner.warming_clusters.values().map(|w| w.service.clone()))
                .collect(),
            TypeKind::Route => inner
                .listener_routes
                .values()
                .flatten()
                .cloned()
                .chain(
                    inner
                        .warming_listeners
                        .values()
                        .flat_map(|w| w.routes.iter().cloned()),
                )
                .collect(),
            _ => BTreeSet::new(),
        }
    }

    /// Forgets endpoints and route configs no longer wanted (Envoy drops them with the
    /// subscription).
    pub(crate) async fn prune(&self, kind: TypeKind, wanted: &BTreeSet<String>) {
        let mut inner = self.inner.lock().await;
        let gone: Vec<String> = inner.active[kind as usize]
            .keys()
            .filter(|n| !wanted.contains(*n))
            .cloned()
            .collect();
        for n in gone {
            inner.active[kind as usize].remove(&n);
            match kind {
                TypeKind::Endpoint => {
                    inner.endpoints.remove(&n);
                }
                TypeKind::Route => self.listeners.remove_routes(&n),
                _ => {}
            }
        }
    }

    /// Applies one response. `full_state`: the response lists every resource of the type
    /// (SotW LDS/CDS), so accepted resources it does not name are removed. Returns the
    /// NACK message (every rejected resource with its field path) when any was rejected.
    pub(crate) async fn apply(
        &self,
        kind: TypeKind,
        resources: Vec<Incoming>,
        removed: Vec<String>,
        full_state: bool,
        response_version: &str,
    ) -> Result<(), String> {
        let mut inner = self.inner.lock().await;
        let mut errors = Vec::new();
        let mut present = BTreeSet::new();
        let mut complete = true;
        let mut changed = Vec::new();
        for r in resources {
            let any = r.any.clone();
            match self.apply_one(&mut inner, kind, r).await {
                Ok((name, fresh)) => {
                    if fresh {
                        changed.push((name.clone(), any));
                    }
                    present.insert(name);
                }
                Err((Some(name), e)) => {
                    present.insert(name.clone());
                    errors.push(format!("{} {name:?}: {e}", kind.resource_name()));
                }
                Err((None, e)) => {
                    complete = false;
                    errors.push(format!("{}: {e}", kind.resource_name()));
                }
            }
        }
        let mut gone = removed;
        if full_state && complete {
            gone.extend(
                inner.active[kind as usize]
                    .keys()
                    .chain(match kind {
                        TypeKind::Cluster => inner.warming_clusters.keys().collect::<Vec<_>>(),
                        TypeKind::Listener => inner.warming_listeners.keys().collect(),
                        _ => Vec::new(),
                    })
                    .filter(|n| !present.contains(*n))
                    .cloned(),
            );
        }
        for name in gone {
            self.remove_one(&mut inner, kind, &name);
        }
        inner.received[kind as usize] = true;
        self.promote(&mut inner).await;
        if errors.is_empty() {
            inner.sotw_version[kind as usize] = response_version.to_owned();
        }
        self.check_ready(&inner);
        drop(inner);
        self.report_unsupported(kind, changed);
        self.stats.xds_update(kind.short(), errors.is_empty());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Warns (once per field path) about set fields of newly accepted resources that weft
    /// does not implement. The descriptors this needs live only for the walk.
    /// Runs on a blocking thread: building descriptors takes a while and must not stall
    /// the workers serving traffic.
    fn report_unsupported(&self, kind: TypeKind, changed: Vec<(String, Any)>) {
        if changed.is_empty() {
            return;
        }
        let reported = self.reported.clone();
        tokio::task::spawn_blocking(move || {
            // One walk at a time: each builds its own descriptor pool (~4.5 MB of heap),
            // and four at once (CDS, EDS, LDS, RDS arrive together) left ~20 MB resident
            // per proxy after they were freed. In sequence they reuse the same memory.
            static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
            let walker = weft_xds::json::Renderer::new();
            for (name, any) in &changed {
                for u in walker.unsupported(any, &crate::config::SUPPORT) {
                    warn_once(
                        &reported,
                        kind,
                        &u.path,
                        &format!(
                            "{} {name:?}: {u}: not implemented by weft, ignored",
                            kind.resource_name()
                        ),
                    );
                }
            }
        });
    }

    /// Converts and applies one resource; `Ok((name, false))` when it is unchanged.
    async fn apply_one(
        &self,
        inner: &mut Inner,
        kind: TypeKind,
        r: Incoming,
    ) -> Result<(String, bool), (Option<String>, String)> {
        let stored = Stored {
            version: r.version,
            any: r.any,
            updated: SystemTime::now(),
        };
        let unchanged = |inner: &Inner, name: &str| {
            inner.active[kind as usize]
                .get(name)
                .is_some_and(|s| s.any.value == stored.any.value)
        };
        match kind {
            TypeKind::Cluster => {
                let pb: PbCluster =
                    decode(&stored.any, kind.type_url()).map_err(|e| (r.name.clone(), e))?;
                let name = pb.name.clone();
                if unchanged(inner, &name) {
                    return Ok((name, false));
                }
                let config = ClusterConfig::try_from(&pb)
                    .map_err(|e| (Some(name.clone()), e.to_string()))?;
                let service = eds_service(&pb).map_err(|e| (Some(name.clone()), e))?;
                let config = Arc::new(config);
                inner.warming_clusters.remove(&name);
                match service {
                    Some(service) if !inner.endpoints.contains_key(&service) => {
                        // Warming: the old version (if any) serves until endpoints arrive.
                        inner.warming_clusters.insert(
                            name.clone(),
                            WarmingCluster {
                                config,
                                service,
                                stored,
                                since: Instant::now(),
                            },
                        );
                    }
                    service => {
                        let endpoints = service
                            .as_ref()
                            .and_then(|s| inner.endpoints.get(s))
                            .map(|l| static_endpoints(l));
                        self.clusters
                            .upsert_with(config, &self.stats, endpoints)
                            .await;
                        match service {
                            Some(s) => inner.cluster_service.insert(name.clone(), s),
                            None => inner.cluster_service.remove(&name),
                        };
                        inner.active[kind as usize].insert(name.clone(), stored);
                    }
                }
                Ok((name, true))
            }
            TypeKind::Endpoint => {
                let pb: ClusterLoadAssignment =
                    decode(&stored.any, kind.type_url()).map_err(|e| (r.name.clone(), e))?;
                let name = pb.cluster_name.clone();
                if unchanged(inner, &name) {
                    return Ok((name, false));
                }
                let localities = load_assignment(&pb, Discovery::Eds)
                    .map_err(|e| (Some(name.clone()), e.to_string()))?;
                for (cluster, service) in &inner.cluster_service {
                    if *service == name
                        && let Some(c) = self.clusters.get(cluster)
                    {
                        c.set_endpoints(static_endpoints(&localities));
                    }
                }
                inner.endpoints.insert(name.clone(), localities);
                inner.active[kind as usize].insert(name.clone(), stored);
                Ok((name, true))
            }
            TypeKind::Listener => {
                let pb: PbListener =
                    decode(&stored.any, kind.type_url()).map_err(|e| (r.name.clone(), e))?;
                let name = pb.name.clone();
                if unchanged(inner, &name) {
                    return Ok((name, false));
                }
                let mut notes = Vec::new();
                let config = ListenerConfig::from_pb(&pb, &mut notes)
                    .map_err(|e| (Some(name.clone()), e.to_string()))?;
                for n in notes {
                    self.warn_once(kind, &n, "partly implemented");
                }
                let config = Arc::new(config);
                let routes = rds_names(&config);
                inner.warming_listeners.remove(&name);
                if routes
                    .iter()
                    .all(|r| inner.active[TypeKind::Route as usize].contains_key(r))
                {
                    self.listeners
                        .add_or_update(config)
                        .map_err(|e| (Some(name.clone()), error_chain(&e)))?;
                    inner.listener_routes.insert(name.clone(), routes);
                    inner.active[kind as usize].insert(name.clone(), stored);
                } else {
                    inner.warming_listeners.insert(
                        name.clone(),
                        WarmingListener {
                            config,
                            routes,
                            stored,
                            since: Instant::now(),
                        },
                    );
                }
                Ok((name, true))
            }
            TypeKind::Route => {
                let pb: RouteConfiguration =
                    decode(&stored.any, kind.type_url()).map_err(|e| (r.name.clone(), e))?;
                let name = pb.name.clone();
                if unchanged(inner, &name) {
                    return Ok((name, false));
                }
                let table =
                    RouteTable::try_from(&pb).map_err(|e| (Some(name.clone()), e.to_string()))?;
                self.listeners.set_routes(&name, Arc::new(table));
                inner.active[kind as usize].insert(name.clone(), stored);
                Ok((name, true))
            }
        }
    }

    /// Removes a resource this client accepted (static bootstrap resources of the same
    /// name are never touched).
    fn remove_one(&self, inner: &mut Inner, kind: TypeKind, name: &str) {
        let was_active = inner.active[kind as usize].remove(name).is_some();
        match kind {
            TypeKind::Cluster => {
                inner.warming_clusters.remove(name);
                inner.cluster_service.remove(name);
                if was_active {
                    self.clusters.remove(name);
                }
            }
            TypeKind::Endpoint => {
                inner.endpoints.remove(name);
                for (cluster, service) in &inner.cluster_service {
                    if service == name
                        && let Some(c) = self.clusters.get(cluster)
                    {
                        c.set_endpoints(Vec::new());
                    }
                }
            }
            TypeKind::Listener => {
                inner.warming_listeners.remove(name);
                inner.listener_routes.remove(name);
                if was_active {
                    self.listeners.remove(name);
                }
            }
            TypeKind::Route => {
                if was_active {
                    self.listeners.remove_routes(name);
                }
            }
        }
    }

    /// Activates warming clusters whose endpoints and listeners whose routes have arrived.
    async fn promote(&self, inner: &mut Inner) {
        self.promote_if(inner, |_| false).await
    }

    /// Also activates warming resources older than `timeout` (Envoy's initial fetch timeout:
    /// a cluster without endpoints, a listener with empty route tables).
    pub(crate) async fn expire_warming(&self, timeout: std::time::Duration) {
        let mut inner = self.inner.lock().await;
        if inner.warming_clusters.is_empty() && inner.warming_listeners.is_empty() {
            return;
        }
        self.promote_if(&mut inner, |since| since.elapsed() >= timeout)
            .await;
        self.check_ready(&inner);
    }

    async fn promote_if(&self, inner: &mut Inner, expired: impl Fn(Instant) -> bool) {
        let ready: Vec<String> = inner
            .warming_clusters
            .iter()
            .filter(|(_, w)| inner.endpoints.contains_key(&w.service) || expired(w.since))
            .map(|(n, _)| n.clone())
            .collect();
        for name in ready {
            let Some(w) = inner.warming_clusters.remove(&name) else {
                continue;
            };
            if !inner.endpoints.contains_key(&w.service) {
                tracing::warn!(cluster = %name, service = %w.service,
                    "no endpoints arrived in time; activating the cluster without them");
            }
            let endpoints = static_endpoints(
                inner
                    .endpoints
                    .get(&w.service)
                    .map_or(&[][..], Vec::as_slice),
            );
            self.clusters
                .upsert_with(w.config, &self.stats, Some(endpoints))
                .await;
            inner.cluster_service.insert(name.clone(), w.service);
            inner.active[TypeKind::Cluster as usize].insert(name, w.stored);
        }
        let ready: Vec<String> = inner
            .warming_listeners
            .iter()
            .filter(|(_, w)| {
                expired(w.since)
                    || w.routes
                        .iter()
                        .all(|r| inner.active[TypeKind::Route as usize].contains_key(r))
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in ready {
            let Some(w) = inner.warming_listeners.remove(&name) else {
                continue;
            };
            match self.listeners.add_or_update(w.config) {
                Ok(()) => {
                    inner.listener_routes.insert(name.clone(), w.routes);
                    inner.active[TypeKind::Listener as usize].insert(name, w.stored);
                }
                Err(e) => {
                    tracing::warn!(listener = %name, error = %error_chain(&e), "listener not started")
                }
            }
        }
    }

    fn check_ready(&self, inner: &Inner) {
        let configured = inner.received[TypeKind::Cluster as usize]
            && inner.received[TypeKind::Listener as usize]
            && inner.warming_clusters.is_empty()
            && inner.warming_listeners.is_empty();
        if configured && !*self.ready.borrow() {
            tracing::info!("first configuration applied: ready");
            let _ = self.ready.send(true);
        }
    }

    /// The dynamic sections of `/config_dump`, in Envoy's shape. Waits for an update in
    /// progress, copies what it needs, and renders without holding the state.
    pub async fn config_dump(&self) -> Vec<serde_json::Value> {
        let inner = {
            let inner = self.inner.lock().await;
            DumpView {
                active: inner.active.clone(),
                sotw_version: inner.sotw_version.clone(),
                warming_listeners: inner
                    .warming_listeners
                    .iter()
                    .map(|(n, w)| (n.clone(), w.stored.clone()))
                    .collect(),
                warming_clusters: inner
                    .warming_clusters
                    .values()
                    .map(|w| w.stored.clone())
                    .collect(),
            }
        };
        let render = weft_xds::json::Renderer::new();
        let ts = |t: SystemTime| {
            let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
        };
        let entry = |key: &str, s: &Stored| {
            serde_json::json!({
                "version_info": s.version,
                key: render.any_to_json(&s.any),
                "last_updated": ts(s.updated),
            })
        };
        let listeners: Vec<serde_json::Value> = inner.active[TypeKind::Listener as usize]
            .iter()
            .map(|(n, s)| {
                let mut v = serde_json::json!({"name": n, "active_state": entry("listener", s)});
                if let Some(w) = inner.warming_listeners.get(n) {
                    v["warming_state"] = entry("listener", w);
                }
                v
            })
            .chain(
                inner
                    .warming_listeners
                    .iter()
                    .filter(|(n, _)| !inner.active[TypeKind::Listener as usize].contains_key(*n))
                    .map(|(n, w)| {
                        serde_json::json!({"name": n, "warming_state": entry("listener", w)})
                    }),
            )
            .collect();
        let routes: Vec<serde_json::Value> = inner.active[TypeKind::Route as usize]
            .values()
            .map(|s| entry("route_config", s))
            .collect();
        let clusters: Vec<serde_json::Value> = inner.active[TypeKind::Cluster as usize]
            .values()
            .map(|s| entry("cluster", s))
            .collect();
        let warming: Vec<serde_json::Value> = inner
            .warming_clusters
            .iter()
            .map(|w| entry("cluster", w))
            .collect();
        let endpoints: Vec<serde_json::Value> = inner.active[TypeKind::Endpoint as usize]
            .values()
            .map(|s| entry("endpoint_config", s))
            .collect();
        let version = |k: TypeKind| inner.sotw_version[k as usize].clone();
        vec![
            serde_json::json!({
                "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
                "version_info": version(TypeKind::Cluster),
                "dynamic_active_clusters": clusters,
                "dynamic_warming_clusters": warming,
            }),
            serde_json::json!({
                "@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
                "dynamic_endpoint_configs": endpoints,
            }),
            serde_json::json!({
                "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                "version_info": version(TypeKind::Listener),
                "dynamic_listeners": listeners,
            }),
            serde_json::json!({
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "dynamic_route_configs": routes,
            }),
        ]
    }
}

fn warn_once(reported: &Mutex<HashSet<String>>, kind: TypeKind, path: &str, what: &str) {
    let key = format!("{}:{}", kind.short(), strip_indices(path));
    let mut seen = reported.lock().unwrap_or_else(|e| e.into_inner());
    // Bounded: a control plane inventing endless field paths cannot grow this forever.
    if seen.len() < 4096 && seen.insert(key) {
        tracing::warn!(type_url = kind.short(), field = %path, "{what}");
    }
}

/// What `/config_dump` renders, copied out of the state.
struct DumpView {
    active: [BTreeMap<String, Stored>; 4],
    sotw_version: [String; 4],
    warming_listeners: BTreeMap<String, Stored>,
    warming_clusters: Vec<Stored>,
}

/// The EDS service name of an EDS cluster (`eds_cluster_config.service_name`, else its
/// name); EDS must come over ADS.
fn eds_service(c: &PbCluster) -> Result<Option<String>, String> {
    use envoy_types::pb::envoy::config::cluster::v3::cluster::{
        ClusterDiscoveryType, DiscoveryType,
    };
    use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
    if c.cluster_discovery_type != Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)) {
        return Ok(None);
    }
    let eds = c.eds_cluster_config.as_ref();
    match eds
        .and_then(|e| e.eds_config.as_ref())
        .and_then(|s| s.config_source_specifier.as_ref())
    {
        Some(ConfigSourceSpecifier::Ads(_)) => {}
        // An inline load_assignment without eds_config: endpoints are already here.
        None if c.load_assignment.is_some() => return Ok(None),
        _ => {
            return Err(
                "eds_cluster_config.eds_config: only `ads: {}` is supported as an EDS source"
                    .into(),
            );
        }
    }
    Ok(Some(
        eds.map(|e| e.service_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| c.name.clone()),
    ))
}

fn rds_names(l: &ListenerConfig) -> BTreeSet<String> {
    l.filter_chains
        .iter()
        .chain(l.default_chain.as_ref())
        .filter_map(|c| match &c.filter {
            NetworkFilter::Http(h) => h.rds.as_deref().map(str::to_owned),
            NetworkFilter::Tcp(_) => None,
        })
        .collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_fold_instances() {
        assert_eq!(
            strip_indices("filter_chains[0].filters[1].typed_config.x[\"a[b]\"]"),
            "filter_chains[].filters[].typed_config.x[]"
        );
    }
}
