//! Listeners at run time: added, updated and removed while the proxy serves (LDS), and the
//! route tables HTTP connection managers share by RDS name.
//!
//! - An **update** that keeps the address builds a new [`ListenerRuntime`] and swaps it into
//!   the listener's slot: new connections get the new filter chains, open connections keep
//!   the runtime they were accepted with. The socket stays bound, so nothing is refused.
//! - An update that moves the address (or `bind_to_port`) is a remove plus an add.
//! - A **removal** stops the accept loop and signals that listener's connections to drain
//!   (HTTP/1.1 closes after the current response, HTTP/2 sends GOAWAY).
//! - `use_original_dst` hand-off looks the target up among the *current* runtimes, so a
//!   listener added later (a new `0.0.0.0_PORT`) receives connections from `virtualOutbound`.

use crate::config::{ListenerConfig, RouteTable};
use crate::error::ProxyError;
use crate::listener::{ListenerRuntime, accept_loop};
use crate::proxy::{Drain, bind};
use crate::stats::Stats;
use crate::upstream::ClusterManager;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// One named listener: its current runtime, and the switch that drains it.
struct Entry {
    slot: Arc<ArcSwap<ListenerRuntime>>,
    /// `true` stops the accept loop and drains this listener's connections.
    stop: watch::Sender<bool>,
    bound: Option<SocketAddr>,
}

/// Every listener of a running proxy, by name.
pub struct ListenerManager {
    clusters: Arc<ClusterManager>,
    stats: Arc<Stats>,
    drain: Drain,
    tracker: TaskTracker,
    entries: Mutex<BTreeMap<Arc<str>, Entry>>,
    /// Current runtimes, for original-destination hand-off and admin views.
    active: Arc<ArcSwap<Vec<Arc<ListenerRuntime>>>>,
    /// RDS route tables by route config name; HTTP managers hold the slot, so a store is
    /// seen by every listener naming it at once.
    routes: Mutex<HashMap<Arc<str>, Arc<ArcSwap<RouteTable>>>>,
}

impl std::fmt::Debug for ListenerManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerManager")
            .field("listeners", &self.bound())
            .finish()
    }
}

impl ListenerManager {
    pub(crate) fn new(
        clusters: Arc<ClusterManager>,
        stats: Arc<Stats>,
        drain: Drain,
        tracker: TaskTracker,
    ) -> ListenerManager {
        ListenerManager {
            clusters,
            stats,
            drain,
            tracker,
            entries: Mutex::default(),
            active: Arc::new(ArcSwap::from_pointee(Vec::new())),
            routes: Mutex::default(),
        }
    }

    /// The shared slot for RDS route config `name` (an empty table until it arrives).
    pub fn route_slot(&self, name: &str) -> Arc<ArcSwap<RouteTable>> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes
            .entry(Arc::from(name))
            .or_insert_with(|| {
                let empty = RouteTable::try_from(&Default::default())
                    .expect("an empty route configuration converts");
                Arc::new(ArcSwap::from_pointee(empty))
            })
            .clone()
    }

    /// Stores RDS route config `name`; every HTTP manager naming it routes with it from its
    /// next request on.
    pub fn set_routes(&self, name: &str, table: Arc<RouteTable>) {
        self.route_slot(name).store(table);
    }

    /// Forgets RDS route config `name` (listeners still naming it keep the last table).
    pub fn remove_routes(&self, name: &str) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    fn runtime(&self, config: Arc<ListenerConfig>) -> ListenerRuntime {
        ListenerRuntime::build(config, self.clusters.clone(), &self.stats, &|name| {
            Some(self.route_slot(name))
        })
    }

    /// Adds a listener, or updates the one of the same name. Binding happens here, so a
    /// listener whose address is taken is refused with the bind error.
    pub fn add_or_update(&self, config: Arc<ListenerConfig>) -> Result<(), ProxyError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let rt = Arc::new(self.runtime(config.clone()));
        if let Some(e) = entries.get(&config.name) {
            let old = e.slot.load();
            if old.config.address == config.address
                && old.config.bind_to_port == config.bind_to_port
            {
                e.slot.store(rt);
                drop(entries);
                self.refresh();
                return Ok(());
            }
        }
        let listener = if config.bind_to_port {
            Some(bind(config.address).map_err(|source| ProxyError::Bind {
                what: format!("listener {:?}", config.name),
                addr: config.address,
                source,
            })?)
        } else {
            None
        };
        if let Some(old) = entries.remove(&config.name) {
            let _ = old.stop.send(true);
        }
        let (stop, stop_rx) = watch::channel(false);
        let slot = Arc::new(ArcSwap::new(rt));
        let bound = match listener {
            Some(l) => {
                let addr = l.local_addr()?;
                tokio::spawn(accept_loop(
                    l,
                    slot.clone(),
                    self.active.clone(),
                    self.drain.with_listener(stop_rx),
                    self.tracker.clone(),
                ));
                Some(addr)
            }
            None => None,
        };
        entries.insert(config.name.clone(), Entry { slot, stop, bound });
        drop(entries);
        self.refresh();
        Ok(())
    }

    /// Removes a listener: it stops accepting and its connections drain.
    pub fn remove(&self, name: &str) -> bool {
        let removed = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        match removed {
            Some(e) => {
                let _ = e.stop.send(true);
                self.refresh();
                true
            }
            None => false,
        }
    }

    fn refresh(&self) {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let all: Vec<Arc<ListenerRuntime>> = entries.values().map(|e| e.slot.load_full()).collect();
        self.active.store(Arc::new(all));
    }

    /// The current runtime of every listener, by name.
    pub fn all(&self) -> Vec<Arc<ListenerRuntime>> {
        self.active.load().iter().cloned().collect()
    }

    /// The current runtime of listener `name`.
    pub fn get(&self, name: &str) -> Option<Arc<ListenerRuntime>> {
        self.active
            .load()
            .iter()
            .find(|l| &*l.config.name == name)
            .cloned()
    }

    /// Bound addresses by listener name (listeners with `bind_to_port: false` are absent).
    pub fn bound(&self) -> Vec<(Arc<str>, SocketAddr)> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|(n, e)| e.bound.map(|a| (n.clone(), a)))
            .collect()
    }
}
