//! Starting, running and draining a proxy.

use crate::admin::{self, AdminState};
use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::listener::ListenerRuntime;
use crate::listener_manager::ListenerManager;
use crate::stats::Stats;
use crate::upstream::ClusterManager;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_util::task::TaskTracker;

/// Resolves when a drain starts: the whole proxy's, or (for connections of a dynamic
/// listener) that listener's when it is removed. Cheap to clone; one per connection task.
#[derive(Debug, Clone)]
pub struct Drain {
    proxy: watch::Receiver<bool>,
    listener: Option<watch::Receiver<bool>>,
}

impl Drain {
    pub(crate) fn new(proxy: watch::Receiver<bool>) -> Drain {
        Drain {
            proxy,
            listener: None,
        }
    }

    /// This drain, also signalled when `listener` says so (or its sender is gone).
    pub(crate) fn with_listener(&self, listener: watch::Receiver<bool>) -> Drain {
        Drain {
            proxy: self.proxy.clone(),
            listener: Some(listener),
        }
    }

    /// Waits for the drain signal (also when the proxy handle is gone).
    pub async fn signaled(&mut self) {
        let proxy = self.proxy.wait_for(|draining| *draining);
        match &mut self.listener {
            Some(l) => {
                tokio::select! {
                    _ = proxy => {}
                    _ = l.wait_for(|draining| *draining) => {}
                }
            }
            None => {
                let _ = proxy.await;
            }
        }
    }
}

/// A running proxy. Dropping it drains immediately (no grace).
#[derive(Debug)]
pub struct ProxyHandle {
    admin: Option<SocketAddr>,
    status: Option<SocketAddr>,
    drain_tx: watch::Sender<bool>,
    tracker: TaskTracker,
    draining: Arc<AtomicBool>,
    quit: Arc<Notify>,
    clusters: Arc<ClusterManager>,
    listeners: Arc<ListenerManager>,
    stats: Arc<Stats>,
    ready: watch::Receiver<bool>,
    xds: Option<Arc<crate::xds::XdsState>>,
}

/// Changes (with `Some(filter)`) or reports (`None`) the log filter; backs `/logging`.
/// The binary owns the logger, so it provides this.
pub type LogControl = Arc<dyn Fn(Option<&str>) -> Result<String, String> + Send + Sync>;

/// Options for [`start_with`].
#[derive(Default, Clone)]
pub struct StartOptions {
    /// Enables `/logging` on the admin server.
    pub log_control: Option<LogControl>,
    /// Dynamic configuration over ADS; the proxy is ready once the first full config is
    /// applied (without it, ready at once).
    pub xds: Option<crate::xds::XdsOptions>,
    /// Serve `/healthz/ready` here (Istio's 15021).
    pub status_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("log_control", &self.log_control.is_some())
            .field("xds", &self.xds)
            .field("status_addr", &self.status_addr)
            .finish()
    }
}

/// Starts every listener and the admin server; DNS clusters are resolved first.
pub async fn start(config: ProxyConfig) -> Result<ProxyHandle, ProxyError> {
    start_with(config, StartOptions::default()).await
}

/// [`start`] with options.
pub async fn start_with(
    config: ProxyConfig,
    options: StartOptions,
) -> Result<ProxyHandle, ProxyError> {
    for note in &config.unsupported {
        tracing::warn!("{note}");
    }
    let stats = Arc::new(Stats::new());
    let clusters = ClusterManager::start(&config.clusters, &stats).await;
    let (drain_tx, drain_rx) = watch::channel(false);
    let tracker = TaskTracker::new();
    let listeners = Arc::new(ListenerManager::new(
        clusters.clone(),
        stats.clone(),
        Drain::new(drain_rx.clone()),
        tracker.clone(),
    ));
    // Bind everything before serving anything, so a bad address fails start-up cleanly.
    let admin_listener = match config.admin {
        Some(addr) => Some(bind(addr).map_err(|source| ProxyError::Bind {
            what: "admin".into(),
            addr,
            source,
        })?),
        None => None,
    };
    let status_listener = match options.status_addr {
        Some(addr) => Some(bind(addr).map_err(|source| ProxyError::Bind {
            what: "status".into(),
            addr,
            source,
        })?),
        None => None,
    };
    for l in &config.listeners {
        listeners.add_or_update(l.clone())?;
    }
    let (ready_tx, ready) = watch::channel(options.xds.is_none());
    let xds = options.xds.clone().map(|opts| {
        crate::xds::XdsState::new(
            opts,
            clusters.clone(),
            listeners.clone(),
            stats.clone(),
            ready_tx,
        )
    });
    let draining = Arc::new(AtomicBool::new(false));
    let quit = Arc::new(Notify::new());
    let state = Arc::new(AdminState {
        config_dump: config.dump.clone(),
        clusters: clusters.clone(),
        stats: stats.clone(),
        listeners: listeners.clone(),
        draining: draining.clone(),
        quit: quit.clone(),
        log_control: options.log_control.clone(),
        ready: ready.clone(),
        xds: xds.clone(),
    });
    let admin = match admin_listener {
        Some(l) => {
            let addr = l.local_addr()?;
            tokio::spawn(admin::serve(l, state.clone(), Drain::new(drain_rx.clone())));
            Some(addr)
        }
        None => None,
    };
    let status = match status_listener {
        Some(l) => {
            let addr = l.local_addr()?;
            tokio::spawn(admin::serve_status(l, state, Drain::new(drain_rx.clone())));
            Some(addr)
        }
        None => None,
    };
    if let Some(x) = &xds {
        tokio::spawn(crate::xds::run(x.clone(), Drain::new(drain_rx.clone())));
    }
    Ok(ProxyHandle {
        admin,
        status,
        drain_tx,
        tracker,
        draining,
        quit,
        clusters,
        listeners,
        stats,
        ready,
        xds,
    })
}

pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
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
            .bound()
            .into_iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, a)| a)
    }

    /// The admin server's bound address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The status server's bound address (`/healthz/ready`).
    pub fn status_addr(&self) -> Option<SocketAddr> {
        self.status
    }

    /// Whether the first full configuration is applied (always, without xDS).
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Resolves once the first full configuration is applied.
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The xDS client's state, when the proxy runs with one.
    pub fn xds(&self) -> Option<&Arc<crate::xds::XdsState>> {
        self.xds.as_ref()
    }

    /// The listener manager (add, update, remove listeners; RDS route slots).
    pub fn listener_manager(&self) -> &Arc<ListenerManager> {
        &self.listeners
    }

    /// The cluster manager (for EDS-style endpoint updates).
    pub fn clusters(&self) -> &Arc<ClusterManager> {
        &self.clusters
    }

    /// Listener run-time state (route tables can be swapped through its HTTP managers).
    pub fn listeners(&self) -> Vec<Arc<ListenerRuntime>> {
        self.listeners.all()
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
        // Access-log lines wait in memory for their flusher; write them before exiting.
        crate::access_log::flush_all();
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        let _ = self.drain_tx.send(true);
    }
}
