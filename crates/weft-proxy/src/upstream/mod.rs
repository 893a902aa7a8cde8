//! Upstream clusters at run time: endpoints (static, DNS-resolved, original destination),
//! load balancing and connection pools, behind an atomically swapped snapshot.

pub mod breaker;
pub mod h1;
pub mod health;
pub mod lb;
pub mod outlier;
pub mod pool;

use crate::config::ClusterConfig;
use crate::config::HostPort;
use crate::config::cluster::{Discovery, DnsFamily, EndpointHealth, LocalityEndpoints};
use crate::stats::{ClusterStats, Stats};
use arc_swap::ArcSwap;
use lb::EndpointSet;
use pool::Pool;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

/// One upstream host: its address, LB attributes and connection pool.
#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// What `auto_host_rewrite` sends (the DNS name or `endpoint.hostname`).
    pub hostname: Option<Arc<str>>,
    pub weight: u32,
    pub priority: u32,
    pub healthy: bool,
    pub degraded: bool,
    /// Index of the endpoint's `LocalityLbEndpoints` in the cluster (0 when unknown).
    pub locality: u32,
    /// That locality's `load_balancing_weight` (locality-weighted LB; 0 = unweighted).
    pub locality_weight: u32,
    active: AtomicU32,
    pub(crate) pool: Pool,
    /// Outlier ejection and active health-check state.
    pub health: outlier::HostHealth,
}

impl Endpoint {
    /// A new endpoint with an empty pool.
    pub fn new(
        addr: SocketAddr,
        hostname: Option<Arc<str>>,
        weight: u32,
        priority: u32,
        healthy: bool,
        degraded: bool,
    ) -> Endpoint {
        Endpoint {
            addr,
            hostname,
            weight,
            priority,
            healthy,
            degraded,
            locality: 0,
            locality_weight: 0,
            active: AtomicU32::new(0),
            pool: Pool::default(),
            health: outlier::HostHealth::default(),
        }
    }

    /// Healthy for load balancing: EDS says so, outlier detection has not ejected it and
    /// active health checking has not failed it.
    pub fn is_healthy(&self) -> bool {
        self.healthy && !self.health.is_ejected() && !self.health.is_hc_failed()
    }

    /// Places the endpoint in locality `index` with that locality's weight.
    pub fn in_locality(mut self, index: u32, weight: u32) -> Endpoint {
        self.locality = index;
        self.locality_weight = weight;
        self
    }

    /// Requests in flight to this endpoint (LEAST_REQUEST reads it).
    pub fn active_requests(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Marks a request started; pair with [`Endpoint::end_request`].
    pub fn begin_request(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks a request finished.
    pub fn end_request(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    fn same_as(&self, other: &Endpoint) -> bool {
        self.addr == other.addr
            && self.hostname == other.hostname
            && self.weight == other.weight
            && self.priority == other.priority
            && self.healthy == other.healthy
            && self.degraded == other.degraded
            && self.locality == other.locality
            && self.locality_weight == other.locality_weight
    }
}

/// A running cluster.
#[derive(Debug)]
pub struct Cluster {
    pub config: Arc<ClusterConfig>,
    endpoints: ArcSwap<EndpointSet>,
    pub stats: ClusterStats,
    original_dst: Mutex<HashMap<SocketAddr, Arc<Endpoint>>>,
    /// Circuit breakers for the DEFAULT and HIGH routing priorities.
    pub breakers: [Arc<breaker::Breaker>; 2],
}

/// Request facts that endpoint selection may need.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickContext {
    /// Consistent-hash key from the route's hash policy.
    pub hash: Option<u64>,
    /// The downstream connection's original destination (ORIGINAL_DST clusters).
    pub original_dst: Option<SocketAddr>,
    /// From the ORIGINAL_DST cluster's header, when configured and present.
    pub original_dst_header: Option<SocketAddr>,
}

/// ORIGINAL_DST endpoints are kept for reuse up to this many; beyond, the map is reset
/// (connections in use keep their endpoint alive through their `Arc`).
const MAX_ORIGINAL_DST_HOSTS: usize = 1024;

impl Cluster {
    fn new(config: Arc<ClusterConfig>, stats: &Stats) -> Cluster {
        let stats = stats.cluster(&config.stat_name);
        Cluster {
            breakers: [
                breaker::Breaker::new(config.thresholds[0]),
                breaker::Breaker::new(config.thresholds[1]),
            ],
            config,
            endpoints: ArcSwap::from_pointee(EndpointSet::empty()),
            stats,
            original_dst: Mutex::default(),
        }
    }

    /// The current endpoint snapshot.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        self.endpoints.load_full()
    }

    /// Picks an endpoint for a request, `None` when no healthy endpoint exists.
    pub fn pick(&self, cx: &PickContext) -> Option<Arc<Endpoint>> {
        if self.config.discovery == Discovery::OriginalDst {
            return self.original_dst_endpoint(cx);
        }
        self.endpoints.load().pick(cx.hash).cloned()
    }

    fn original_dst_endpoint(&self, cx: &PickContext) -> Option<Arc<Endpoint>> {
        let mut addr = cx.original_dst_header.or(cx.original_dst)?;
        if let Some(port) = self.config.original_dst.port_override {
            addr.set_port(port);
        }
        let mut hosts = self.original_dst.lock().unwrap_or_else(|e| e.into_inner());
        if hosts.len() >= MAX_ORIGINAL_DST_HOSTS && !hosts.contains_key(&addr) {
            hosts.clear();
        }
        Some(
            hosts
                .entry(addr)
                .or_insert_with(|| Arc::new(Endpoint::new(addr, None, 1, 0, true, false)))
                .clone(),
        )
    }

    fn lb_settings(&self) -> lb::LbSettings {
        lb::LbSettings {
            policy: self.config.lb,
            overprovisioning: self.config.overprovisioning,
            panic_threshold: self.config.panic_threshold,
            locality_weighted: self.config.locality_weighted,
        }
    }

    /// Rebuilds the endpoint set from the same endpoints (their health changed).
    pub fn rebuild(&self) {
        let all = self.endpoints.load().all.clone();
        self.endpoints
            .store(Arc::new(EndpointSet::build(all, self.lb_settings())));
    }

    /// Replaces the endpoints (EDS, DNS); endpoints unchanged keep their pools (and their
    /// outlier and health-check state). New endpoints of a health-checked cluster start
    /// out of rotation until their first check passes, as in Envoy.
    pub fn set_endpoints(&self, resolved: Vec<Endpoint>) {
        let old = self.endpoints.load();
        let checked = !self.config.health_checks.is_empty();
        let all = resolved
            .into_iter()
            .map(|new| match old.all.iter().find(|e| e.same_as(&new)) {
                Some(existing) => existing.clone(),
                None => {
                    if checked {
                        new.health
                            .hc_failed
                            .store(true, std::sync::atomic::Ordering::Release);
                    }
                    Arc::new(new)
                }
            })
            .collect();
        self.endpoints
            .store(Arc::new(EndpointSet::build(all, self.lb_settings())));
    }
}

/// Clusters by name. Looked up once per request: foldhash rather than SipHash (179 -> ~40
/// instructions for a short name); names come from config, and a lookup inserts nothing,
/// so a request-chosen name (`cluster_header`) cannot build up collisions.
type ClusterMap = HashMap<Arc<str>, Arc<Cluster>, foldhash::fast::RandomState>;

/// All clusters by name, swapped as a whole when CDS changes them.
#[derive(Debug)]
pub struct ClusterManager {
    clusters: ArcSwap<ClusterMap>,
    dns_tasks: Mutex<Vec<AbortHandle>>,
}

impl Drop for ClusterManager {
    fn drop(&mut self) {
        for t in self
            .dns_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// How often pooled connections past their cluster's idle timeout are closed.
const IDLE_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl ClusterManager {
    /// Keeps a background task's handle (aborted when the manager drops), forgetting the
    /// ones that already finished (tasks of replaced clusters end on their own).
    fn track(&self, handle: AbortHandle) {
        let mut tasks = self.dns_tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// Builds every cluster; DNS clusters are resolved once before this returns (as Envoy
    /// warms clusters before listeners take traffic) and refreshed in the background.
    pub async fn start(configs: &[Arc<ClusterConfig>], stats: &Stats) -> Arc<ClusterManager> {
        let manager = Arc::new(ClusterManager {
            clusters: ArcSwap::from_pointee(ClusterMap::default()),
            dns_tasks: Mutex::default(),
        });
        // One sweeper for every cluster's idle pooled connections (a task per cluster
        // would pile up across CDS updates).
        let weak = Arc::downgrade(&manager);
        let sweeper = tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE_SWEEP_EVERY).await;
                let Some(m) = weak.upgrade() else { return };
                for c in m.clusters.load().values() {
                    if let Some(idle) = c.config.idle_timeout {
                        for ep in &c.endpoints().all {
                            ep.pool.expire_idle(idle);
                        }
                    }
                }
            }
        });
        manager.track(sweeper.abort_handle());
        for c in configs {
            manager.upsert(c.clone(), stats).await;
        }
        manager
    }

    /// Adds or replaces a cluster (CDS will call this): endpoints are resolved first, then
    /// the cluster map is swapped; requests already holding the old cluster finish on it.
    pub async fn upsert(&self, config: Arc<ClusterConfig>, stats: &Stats) {
        self.upsert_with(config, stats, None).await
    }

    /// [`ClusterManager::upsert`] with the endpoints given (EDS) instead of the inline
    /// ones. Endpoints the replaced cluster already had keep their connection pools.
    pub async fn upsert_with(
        &self,
        config: Arc<ClusterConfig>,
        stats: &Stats,
        endpoints: Option<Vec<Endpoint>>,
    ) {
        let cluster = Arc::new(Cluster::new(config.clone(), stats));
        if let Some(old) = self.get(&config.name) {
            cluster.endpoints.store(old.endpoints());
        }
        match config.discovery {
            Discovery::Static | Discovery::Eds => cluster
                .set_endpoints(endpoints.unwrap_or_else(|| static_endpoints(&config.localities))),
            Discovery::StrictDns | Discovery::LogicalDns => cluster.set_endpoints(
                resolve(&config.localities, config.discovery, config.dns_family).await,
            ),
            Discovery::OriginalDst => {}
        }
        // As Envoy warms a cluster: the first health checks finish before it takes traffic.
        for i in 0..config.health_checks.len() {
            cluster.health_round(i).await;
            let task = tokio::spawn(health::run(Arc::downgrade(&cluster), i));
            self.track(task.abort_handle());
        }
        if let Some(o) = &config.outlier {
            let task = tokio::spawn(outlier::run(Arc::downgrade(&cluster), o.interval));
            self.track(task.abort_handle());
        }
        if matches!(
            config.discovery,
            Discovery::StrictDns | Discovery::LogicalDns
        ) {
            // Refreshes until the cluster is replaced or removed (the weak link breaks).
            let weak = Arc::downgrade(&cluster);
            let every = config.dns_refresh;
            let task = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let Some(cluster) = weak.upgrade() else {
                        return;
                    };
                    let c = &cluster.config;
                    cluster.set_endpoints(resolve(&c.localities, c.discovery, c.dns_family).await);
                }
            });
            self.track(task.abort_handle());
        }
        self.clusters.rcu(|map| {
            let mut map = ClusterMap::clone(map);
            map.insert(config.name.clone(), cluster.clone());
            map
        });
    }

    /// Removes a cluster; requests already holding it finish on it.
    pub fn remove(&self, name: &str) {
        self.clusters.rcu(|map| {
            let mut map = ClusterMap::clone(map);
            map.remove(name);
            map
        });
    }

    /// A cluster by name.
    pub fn get(&self, name: &str) -> Option<Arc<Cluster>> {
        self.clusters.load().get(name).cloned()
    }

    /// Every cluster, sorted by name (for admin output).
    pub fn all(&self) -> Vec<Arc<Cluster>> {
        let mut all: Vec<_> = self.clusters.load().values().cloned().collect();
        all.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        all
    }
}

fn endpoint_from(
    addr: SocketAddr,
    hostname: Option<&str>,
    (index, loc): (usize, &LocalityEndpoints),
    weight: u32,
    health: EndpointHealth,
) -> Endpoint {
    Endpoint::new(
        addr,
        hostname.map(Arc::from),
        weight,
        loc.priority,
        health != EndpointHealth::Unhealthy,
        health == EndpointHealth::Degraded,
    )
    .in_locality(index as u32, loc.weight.unwrap_or(0))
}

/// Endpoints of STATIC and inline-EDS clusters (all IP literals, checked at load).
pub fn static_endpoints(localities: &[LocalityEndpoints]) -> Vec<Endpoint> {
    localities
        .iter()
        .enumerate()
        .flat_map(|loc| {
            loc.1.endpoints.iter().filter_map(move |e| match e.address {
                HostPort::Ip(addr) => Some(endpoint_from(
                    addr,
                    e.hostname.as_deref(),
                    loc,
                    e.weight,
                    e.health,
                )),
                HostPort::Dns { .. } => None,
            })
        })
        .collect()
}

/// Resolves DNS endpoints. STRICT_DNS keeps every address; LOGICAL_DNS the first. A failed
/// lookup yields no addresses for that name (Envoy keeps the last good set; refinement TBD).
async fn resolve(
    localities: &[LocalityEndpoints],
    discovery: Discovery,
    family: DnsFamily,
) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for loc in localities.iter().enumerate() {
        for e in &loc.1.endpoints {
            let (host, port) = match &e.address {
                HostPort::Ip(addr) => {
                    out.push(endpoint_from(
                        *addr,
                        e.hostname.as_deref(),
                        loc,
                        e.weight,
                        e.health,
                    ));
                    continue;
                }
                HostPort::Dns { host, port } => (host.as_str(), *port),
            };
            let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
                Ok(addrs) => filter_family(addrs.collect(), family),
                Err(e) => {
                    tracing::warn!(host, error = %e, "DNS resolution failed");
                    Vec::new()
                }
            };
            let take = if discovery == Discovery::LogicalDns {
                1
            } else {
                usize::MAX
            };
            for addr in addrs.into_iter().take(take) {
                out.push(endpoint_from(
                    addr,
                    Some(e.hostname.as_deref().unwrap_or(host)),
                    loc,
                    e.weight,
                    e.health,
                ));
            }
        }
    }
    out
}

fn filter_family(addrs: Vec<SocketAddr>, family: DnsFamily) -> Vec<SocketAddr> {
    let (v4, v6): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| a.is_ipv4());
    match family {
        DnsFamily::V4Only => v4,
        DnsFamily::V6Only => v6,
        DnsFamily::Auto => {
            if v6.is_empty() {
                v4
            } else {
                v6
            }
        }
        DnsFamily::V4Preferred => {
            if v4.is_empty() {
                v6
            } else {
                v4
            }
        }
        DnsFamily::All => v4.into_iter().chain(v6).collect(),
    }
}
