//! `weft control`: binds the xDS and API listeners, loads the config dir, and serves until
//! told to stop.

use crate::ControlError;
use crate::ads::AdsServer;
use crate::hub::Hub;
use crate::store::ConfigStore;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What `weft control` is given.
#[derive(Debug, Clone)]
pub struct ControlOptions {
    pub config_dir: PathBuf,
    /// xDS (gRPC ADS), Istio's 15010.
    pub xds_addr: SocketAddr,
    /// REST API and debug views, Istio's 15014.
    pub api_addr: SocketAddr,
    /// Every proxy's HTTP listeners accept HTTP/1.0 (Istio's `PILOT_HTTP10`); otherwise
    /// only those of proxies with `HTTP10` metadata `"1"`.
    pub http10: bool,
}

/// A running control plane (listeners bound, config loaded).
pub struct Running {
    pub xds_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub hub: Arc<Hub>,
    pub store: Arc<ConfigStore>,
}

/// Binds both listeners first (so a port conflict fails fast and port 0 works), loads the
/// config dir, then serves until `shutdown` completes.
pub async fn run(
    opts: ControlOptions,
    ready: impl FnOnce(&Running),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ControlError> {
    let xds = TcpListener::bind(opts.xds_addr)
        .await
        .map_err(|source| ControlError::Serve {
            what: "xDS",
            addr: opts.xds_addr.to_string(),
            source,
        })?;
    let api = TcpListener::bind(opts.api_addr)
        .await
        .map_err(|source| ControlError::Serve {
            what: "API",
            addr: opts.api_addr.to_string(),
            source,
        })?;
    let local = |l: &TcpListener, what, addr: SocketAddr| {
        l.local_addr().map_err(|source| ControlError::Serve {
            what,
            addr: addr.to_string(),
            source,
        })
    };
    let hub = Hub::new(Vec::new());
    let store = ConfigStore::open(&opts.config_dir, hub.clone())?;
    hub.rebuild();
    let running = Running {
        xds_addr: local(&xds, "xDS", opts.xds_addr)?,
        api_addr: local(&api, "API", opts.api_addr)?,
        hub: hub.clone(),
        store: store.clone(),
    };
    tokio::spawn(hub.clone().run_builder());
    let watcher = tokio::spawn(store.clone().watch());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let api_server = {
        let mut rx = stop_rx.clone();
        let app = crate::api::router(hub.clone(), store.clone());
        tokio::spawn(async move {
            axum::serve(api, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        })
    };
    let xds_server = {
        let mut rx = stop_rx.clone();
        let svc = AdsServer::new(hub.clone())
            .accept_http10(opts.http10)
            .into_service();
        tokio::spawn(
            tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
                .add_service(svc)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(xds),
                    async move {
                        let _ = rx.wait_for(|s| *s).await;
                    },
                ),
        )
    };
    tracing::info!(xds = %running.xds_addr, api = %running.api_addr, dir = %opts.config_dir.display(), "weft control serving");
    ready(&running);
    shutdown.await;
    let _ = stop_tx.send(true);
    watcher.abort();
    // Open xDS streams never end by themselves: give them a moment, then stop.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let _ = api_server.await;
        let _ = xds_server.await;
    })
    .await;
    Ok(())
}
