//! Starting, running and draining a proxy.

use crate::admin::{self, AdminState};
use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::listener::{ListenerRuntime, accept_loop};
use crate::stats::Stats;
use crate::upstream::ClusterManager;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_util::task::TaskTracker;

/// Resolves when a drain starts. Cheap to clone; one per connection task.
#[derive(Debug, Clone)]
pub struct Drain(watch::Receiver<bool>);

impl Drain {
    /// Waits for the drain signal (also when the proxy handle is gone).
    pub async fn signaled(&mut self) {
        let _ = self.0.wait_for(|draining| *draining).await;
    }
}

/// A running proxy. Dropping it drains immediately (no grace).
#[derive(Debug)]
pub struct ProxyHandle {
    listeners: Vec<(Arc<str>, SocketAddr)>,
    admin: Option<SocketAddr>,
    drain_tx: watch::Sender<bool>,
    tracker: TaskTracker,
    draining: Arc<AtomicBool>,
    quit: Arc<Notify>,
    clusters: Arc<ClusterManager>,
    runtimes: Arc<Vec<Arc<ListenerRuntime>>>,
    stats: Arc<Stats>,
}

/// Starts every listener and the admin server; DNS clusters are resolved first.
pub async fn start(config: ProxyConfig) -> Result<ProxyHandle, ProxyError> {
    for note in &config.unsupported {
        tracing::warn!("{note}");
    }
    let stats = Arc::new(Stats::new());
    let clusters = ClusterManager::start(&config.clusters, &stats).await;
    let runtimes: Arc<Vec<Arc<ListenerRuntime>>> = Arc::new(
        config
            .listeners
            .iter()
            .map(|l| Arc::new(ListenerRuntime::new(l.clone(), clusters.clone(), &stats)))
            .collect(),
    );
    let (drain_tx, drain_rx) = watch::channel(false);
    let tracker = TaskTracker::new();
    // Bind everything before serving anything, so a bad address fails start-up cleanly.
    let mut bound = Vec::new();
    for rt in runtimes.iter().filter(|rt| rt.config.bind_to_port) {
        let addr = rt.config.address;
        let listener = bind(addr).map_err(|source| ProxyError::Bind {
            what: format!("listener {:?}", rt.config.name),
            addr,
            source,
        })?;
        bound.push((rt.clone(), listener));
    }
    let admin_listener = match config.admin {
        Some(addr) => Some(bind(addr).map_err(|source| ProxyError::Bind {
            what: "admin".into(),
            addr,
            source,
        })?),
        None => None,
    };
    let mut listeners = Vec::new();
    for (rt, listener) in bound {
        listeners.push((rt.config.name.clone(), listener.local_addr()?));
        tokio::spawn(accept_loop(
            listener,
            rt,
            runtimes.clone(),
            Drain(drain_rx.clone()),
            tracker.clone(),
        ));
    }
    let draining = Arc::new(AtomicBool::new(false));
    let quit = Arc::new(Notify::new());
    let admin = match admin_listener {
        Some(l) => {
            let addr = l.local_addr()?;
            let state = Arc::new(AdminState {
                config_dump: config.dump.clone(),
                clusters: clusters.clone(),
                stats: stats.clone(),
                listeners: runtimes.clone(),
                draining: draining.clone(),
                quit: quit.clone(),
            });
            tokio::spawn(admin::serve(l, state, Drain(drain_rx.clone())));
            Some(addr)
        }
        None => None,
    };
    Ok(ProxyHandle {
        listeners,
        admin,
        drain_tx,
        tracker,
        draining,
        quit,
        clusters,
        runtimes,
        stats,
    })
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // Restarts must not wait out TIME_WAIT on the listening port.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl ProxyHandle {
    /// The bound address of a listener (useful with port 0).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, a)| *a)
    }

    /// The admin server's bound address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The cluster manager (for EDS-style endpoint updates).
    pub fn clusters(&self) -> &Arc<ClusterManager> {
        &self.clusters
    }

    /// Listener run-time state (route tables can be swapped through its HTTP managers).
    pub fn listeners(&self) -> &[Arc<ListenerRuntime>] {
        &self.runtimes
    }

    /// The metrics.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Resolves when `POST /quitquitquit` is received.
    pub async fn quit_requested(&self) {
        self.quit.notified().await
    }

    /// Stops accepting, asks open connections to finish (HTTP/1.1 closes after the current
    /// response, HTTP/2 sends GOAWAY), and waits for them up to `grace`.
    pub async fn drain(self, grace: Duration) {
        self.draining.store(true, Ordering::Relaxed);
        let _ = self.drain_tx.send(true);
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("drain time elapsed with connections still open");
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        let _ = self.drain_tx.send(true);
    }
}
