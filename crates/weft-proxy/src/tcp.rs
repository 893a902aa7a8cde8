//! The TCP proxy filter: pick a cluster and endpoint, connect, and copy bytes both ways
//! with half-close passed through and an idle timeout over both directions.

use crate::access_log::LogRecord;
use crate::config::listener::{TcpClusters, TcpProxyConfig};
use crate::flags::ResponseFlags;
use crate::http::Downstream;
use crate::upstream::{ClusterManager, PickContext};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const BUF: usize = 16 * 1024;

/// Proxies one downstream connection to completion.
pub async fn proxy(
    downstream: TcpStream,
    cfg: Arc<TcpProxyConfig>,
    clusters: Arc<ClusterManager>,
    ds: Downstream,
) {
    let started = Instant::now();
    let mut log = (!cfg.access_logs.is_empty()).then(|| LogRecord {
        start: Some(SystemTime::now()),
        downstream_local: Some(ds.local),
        downstream_remote: Some(ds.remote),
        server_name: ds.server_name.clone(),
        ..Default::default()
    });
    let outcome = run(downstream, &cfg, &clusters, &ds, log.as_mut()).await;
    if let Some(mut log) = log {
        if let Err(flag) = outcome {
            log.flags.insert(flag);
        }
        log.duration_ms = started.elapsed().as_millis() as u64;
        cfg.access_logs.log(&log);
    }
}

async fn run(
    downstream: TcpStream,
    cfg: &TcpProxyConfig,
    clusters: &ClusterManager,
    ds: &Downstream,
    mut log: Option<&mut LogRecord>,
) -> Result<(), ResponseFlags> {
    let name = match &cfg.clusters {
        TcpClusters::Single(name) => name.clone(),
        TcpClusters::Weighted { targets, total } => {
            let mut r = fastrand::u64(..*total);
            let mut chosen = targets[targets.len() - 1].0.clone();
            for (name, w) in targets {
                if r < u64::from(*w) {
                    chosen = name.clone();
                    break;
                }
                r -= u64::from(*w);
            }
            chosen
        }
    };
    if let Some(log) = log.as_deref_mut() {
        log.upstream_cluster = Some(name.clone());
    }
    let cluster = clusters.get(&name).ok_or(ResponseFlags::NO_CLUSTER_FOUND)?;
    let pick = PickContext {
        original_dst: Some(ds.original_dst),
        ..Default::default()
    };
    let Some(endpoint) = cluster.pick(&pick) else {
        cluster.stats.no_healthy_upstream.inc();
        return Err(ResponseFlags::NO_HEALTHY_UPSTREAM);
    };
    if let Some(log) = log.as_deref_mut() {
        log.upstream_host = Some(endpoint.addr);
    }
    let stats = &cluster.stats;
    stats.cx_total.inc();
    let upstream = match tokio::time::timeout(
        cluster.config.connect_timeout,
        TcpStream::connect(endpoint.addr),
    )
    .await
    {
        Ok(Ok(s)) => s,
        _ => {
            stats.cx_connect_fail.inc();
            return Err(ResponseFlags::UPSTREAM_CONNECTION_FAILURE);
        }
    };
    let _ = upstream.set_nodelay(true);
    let _ = downstream.set_nodelay(true);
    if let Some(log) = log.as_deref_mut() {
        log.upstream_local = upstream.local_addr().ok();
    }
    stats.cx_active.inc();
    endpoint.begin_request();
    let activity = Activity::new();
    let (dr, dw) = downstream.into_split();
    let (ur, uw) = upstream.into_split();
    let received = AtomicU64::new(0);
    let sent = AtomicU64::new(0);
    let copy = async {
        tokio::try_join!(
            pipe(dr, uw, &activity, &received),
            pipe(ur, dw, &activity, &sent)
        )
    };
    let result = match cfg.idle_timeout {
        Some(idle) => tokio::select! {
            r = copy => r.map(|_| ()).map_err(|_| ResponseFlags::UPSTREAM_CONNECTION_TERMINATION),
            _ = activity.idle_for(idle) => Err(ResponseFlags::STREAM_IDLE_TIMEOUT),
        },
        None => copy
            .await
            .map(|_| ())
            .map_err(|_| ResponseFlags::UPSTREAM_CONNECTION_TERMINATION),
    };
    endpoint.end_request();
    stats.cx_active.dec();
    if let Some(log) = log {
        log.bytes_received = received.load(Ordering::Relaxed);
        log.bytes_sent = sent.load(Ordering::Relaxed);
    }
    result
}

/// Copies until EOF, then half-closes the other side's write direction.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    activity: &Activity,
    count: &AtomicU64,
) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            // Pass the FIN on; the other direction keeps flowing until it ends too.
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
}

/// Last time bytes moved in either direction.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}
