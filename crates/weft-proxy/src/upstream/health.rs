//! Active health checking: each configured check runs every `interval` against every
//! endpoint of its cluster (HTTP `GET` or TCP connect/send/receive), each bounded by
//! `timeout`; thresholds decide when a host goes out of or back into rotation.

use crate::config::health::{CheckKind, HealthCheckConfig};
use crate::upstream::{Cluster, Endpoint};
use std::sync::{Arc, Weak};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One check against one endpoint: true when healthy.
async fn check(ep: &Endpoint, cfg: &HealthCheckConfig, cluster_name: &str) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(ep.addr).await.ok()?;
        match &cfg.kind {
            CheckKind::Http {
                host,
                path,
                expected,
            } => {
                let host = if host.is_empty() { cluster_name } else { host };
                let req = format!(
                    "GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: Envoy/HC\r\nconnection: close\r\n\r\n"
                );
                s.write_all(req.as_bytes()).await.ok()?;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                // The status line is all we need.
                while !buf.contains(&b'\n') {
                    let n = s.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let line = String::from_utf8_lossy(&buf);
                let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(expected.iter().any(|(lo, hi)| (*lo..*hi).contains(&status)))
            }
            CheckKind::Tcp { send, receive } => {
                if !send.is_empty() {
                    s.write_all(send).await.ok()?;
                }
                let want: Vec<u8> = receive.concat();
                let mut got = Vec::new();
                let mut chunk = [0u8; 1024];
                while !contains_in_order(&got, receive) {
                    let n = s.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return Some(false);
                    }
                    got.extend_from_slice(&chunk[..n]);
                    if got.len() > want.len() * 16 + 4096 {
                        return Some(false);
                    }
                }
                Some(true)
            }
        }
    };
    matches!(
        tokio::time::timeout(cfg.timeout, attempt).await,
        Ok(Some(true))
    )
}

/// Whether each payload appears in `got`, one after another.
fn contains_in_order(got: &[u8], payloads: &[Vec<u8>]) -> bool {
    let mut at = 0;
    for p in payloads {
        if p.is_empty() {
            continue;
        }
        match got[at..].windows(p.len()).position(|w| w == p.as_slice()) {
            Some(i) => at += i + p.len(),
            None => return false,
        }
    }
    true
}

impl Cluster {
    /// Runs check `index` once against every endpoint, concurrently; rebuilds the endpoint
    /// set when some host's health flipped.
    pub(crate) async fn health_round(self: &Arc<Self>, index: usize) {
        let Some(cfg) = self.config.health_checks.get(index) else {
            return;
        };
        let set = self.endpoints();
        let results = futures::future::join_all(
            set.all
                .iter()
                .map(|ep| async move { (ep, check(ep, cfg, &self.config.name).await) }),
        )
        .await;
        let mut changed = false;
        for (ep, ok) in results {
            changed |=
                self.record_health_check(ep, ok, cfg.healthy_threshold, cfg.unhealthy_threshold);
        }
        if changed {
            self.rebuild();
        }
    }
}

/// Runs health check `index` of a cluster every interval until the cluster is dropped.
pub(crate) async fn run(cluster: Weak<Cluster>, index: usize) {
    let Some(interval) = cluster
        .upgrade()
        .and_then(|c| c.config.health_checks.get(index).map(|h| h.interval))
    else {
        return;
    };
    loop {
        tokio::time::sleep(interval).await;
        let Some(c) = cluster.upgrade() else { return };
        c.health_round(index).await;
    }
}

#[cfg(test)]
mod tests {
    use super::contains_in_order;

    #[test]
    fn receive_payloads_match_in_order() {
        let got = b"hello pong and more";
        assert!(contains_in_order(got, &[b"pong".to_vec()]));
        assert!(contains_in_order(
            got,
            &[b"hello".to_vec(), b"more".to_vec()]
        ));
        assert!(!contains_in_order(
            got,
            &[b"more".to_vec(), b"hello".to_vec()]
        ));
        assert!(!contains_in_order(got, &[b"ping".to_vec()]));
    }
}
