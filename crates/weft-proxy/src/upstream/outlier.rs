//! Outlier detection at run time: per-endpoint consecutive-error counters updated by every
//! attempt, and an interval task that brings ejected hosts back and runs success-rate and
//! failure-percentage detection over the last interval's requests.
//!
//! An ejected (or health-check-failed) endpoint is left out when the cluster's immutable
//! [`EndpointSet`](super::lb::EndpointSet) is rebuilt, so picking stays lock-free; the panic
//! threshold then applies as it does to any unhealthy host.

use crate::config::outlier::OutlierConfig;
use crate::config::util::Fraction;
use crate::upstream::{Cluster, Endpoint};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one attempt told us about an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Response headers with this status.
    Http(u16),
    /// The connection failed or was reset before headers (`timeout`: the attempt timed out).
    LocalFailure { timeout: bool },
}

/// Health facts about one endpoint beyond what EDS says.
#[derive(Debug, Default)]
pub struct HostHealth {
    /// Ejected by outlier detection.
    pub(crate) ejected: AtomicBool,
    /// Failing active health checks (or not yet checked).
    pub(crate) hc_failed: AtomicBool,
    state: Mutex<HostState>,
}

#[derive(Debug, Default)]
struct HostState {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    consecutive_local: u32,
    /// Ejections in a row: the next ejection lasts `base_ejection_time` × this.
    ejections: u32,
    ejected_until: Option<Instant>,
    /// This interval's requests: (successes, total), external and local origin.
    external: (u32, u32),
    local: (u32, u32),
    /// Active health checking: consecutive results.
    hc_successes: u32,
    hc_failures: u32,
    hc_checked: bool,
}

impl HostHealth {
    /// Whether outlier detection has ejected the endpoint.
    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Acquire)
    }

    /// Whether active health checking holds the endpoint out.
    pub fn is_hc_failed(&self) -> bool {
        self.hc_failed.load(Ordering::Acquire)
    }
}

fn enforced(percent: u32) -> bool {
    Fraction {
        numerator: percent,
        denominator: 100,
    }
    .roll()
}

impl Cluster {
    /// Records an attempt's outcome for outlier detection (no-op without it).
    pub fn report(&self, ep: &Endpoint, outcome: Outcome) {
        let Some(cfg) = &self.config.outlier else {
            return;
        };
        let mut st = ep.health.state.lock().unwrap_or_else(|e| e.into_inner());
        // Without the split, local failures count as the 503/504 a client would see.
        let outcome = match outcome {
            Outcome::LocalFailure { timeout } if !cfg.split_external_local_origin_errors => {
                Outcome::Http(if timeout { 504 } else { 503 })
            }
            o => o,
        };
        // Each detector trips on its own (a threshold of 0 never trips, as in Envoy) and
        // restarts its count when it does.
        let mut enforce = false;
        let mut trip = |count: &mut u32, threshold: u32, enforcing: u32| {
            if threshold > 0 && *count >= threshold {
                *count = 0;
                enforce |= enforced(enforcing);
            }
        };
        match outcome {
            Outcome::Http(code) => {
                st.external.1 += 1;
                if cfg.split_external_local_origin_errors {
                    // Headers arrived: the connection itself worked.
                    st.local.0 += 1;
                    st.local.1 += 1;
                    st.consecutive_local = 0;
                }
                if code >= 500 {
                    st.consecutive_5xx += 1;
                    if (502..=504).contains(&code) {
                        st.consecutive_gateway += 1;
                    } else {
                        st.consecutive_gateway = 0;
                    }
                } else {
                    st.external.0 += 1;
                    st.consecutive_5xx = 0;
                    st.consecutive_gateway = 0;
                }
                let HostState {
                    consecutive_5xx,
                    consecutive_gateway,
                    ..
                } = &mut *st;
                trip(
                    consecutive_5xx,
                    cfg.consecutive_5xx,
                    cfg.enforcing_consecutive_5xx,
                );
                trip(
                    consecutive_gateway,
                    cfg.consecutive_gateway_failure,
                    cfg.enforcing_consecutive_gateway_failure,
                );
            }
            Outcome::LocalFailure { .. } => {
                st.local.1 += 1;
                st.consecutive_local += 1;
                trip(
                    &mut st.consecutive_local,
                    cfg.consecutive_local_origin_failure,
                    cfg.enforcing_consecutive_local_origin_failure,
                );
            }
        }
        drop(st);
        if enforce {
            self.eject(ep, cfg);
        }
    }

    /// Ejects `ep` unless that would take more than `max_ejection_percent` of the cluster
    /// out (counted before this ejection, so one host can always go, as in Envoy).
    fn eject(&self, ep: &Endpoint, cfg: &OutlierConfig) {
        let set = self.endpoints();
        let total = set.all.len().max(1);
        let ejected = set.all.iter().filter(|e| e.health.is_ejected()).count();
        if ep.health.is_ejected() || ejected * 100 / total >= cfg.max_ejection_percent as usize {
            return;
        }
        {
            let mut st = ep.health.state.lock().unwrap_or_else(|e| e.into_inner());
            st.ejections += 1;
            let time = cfg
                .base_ejection_time
                .saturating_mul(st.ejections)
                .min(cfg.max_ejection_time);
            st.ejected_until = Some(Instant::now() + time);
        }
        ep.health.ejected.store(true, Ordering::Release);
        self.stats.ejections_enforced.inc();
        tracing::info!(cluster = %self.config.name, host = %ep.addr, "outlier detection ejected a host");
        self.rebuild();
    }

    /// One outlier-detection interval: uneject hosts whose time is up, decay the ejection
    /// multiplier of healthy hosts, run success-rate and failure-percentage detection on the
    /// interval's requests, and start a new window.
    pub fn outlier_tick(&self) {
        let Some(cfg) = &self.config.outlier else {
            return;
        };
        let set = self.endpoints();
        let now = Instant::now();
        let mut changed = false;
        let mut windows = Vec::with_capacity(set.all.len());
        for ep in &set.all {
            let mut st = ep.health.state.lock().unwrap_or_else(|e| e.into_inner());
            if ep.health.is_ejected() {
                if st.ejected_until.is_some_and(|t| now >= t) {
                    st.ejected_until = None;
                    ep.health.ejected.store(false, Ordering::Release);
                    tracing::info!(cluster = %self.config.name, host = %ep.addr, "outlier detection returned a host");
                    changed = true;
                }
            } else if st.ejections > 0 {
                st.ejections -= 1;
            }
            windows.push((ep.clone(), st.external, st.local));
            st.external = (0, 0);
            st.local = (0, 0);
        }
        if changed {
            self.rebuild();
        }
        let candidates = |local: bool, volume: u32| -> Vec<(std::sync::Arc<Endpoint>, f64, u32)> {
            windows
                .iter()
                .filter(|(ep, ..)| !ep.health.is_ejected())
                .map(|(ep, ext, loc)| (ep, if local { loc } else { ext }))
                .filter(|(_, w)| w.1 >= volume && w.1 > 0)
                .map(|(ep, w)| (ep.clone(), f64::from(w.0) * 100.0 / f64::from(w.1), w.1))
                .collect()
        };
        let mut origins = vec![(
            false,
            cfg.enforcing_success_rate,
            cfg.enforcing_failure_percentage,
        )];
        if cfg.split_external_local_origin_errors {
            origins.push((
                true,
                cfg.enforcing_local_origin_success_rate,
                cfg.enforcing_failure_percentage_local_origin,
            ));
        }
        for (local, enforcing_sr, enforcing_fp) in origins {
            let sr = candidates(local, cfg.success_rate_request_volume);
            if sr.len() >= cfg.success_rate_minimum_hosts as usize && !sr.is_empty() {
                let n = sr.len() as f64;
                let mean = sr.iter().map(|c| c.1).sum::<f64>() / n;
                let var = sr.iter().map(|c| (c.1 - mean).powi(2)).sum::<f64>() / n;
                let threshold =
                    mean - f64::from(cfg.success_rate_stdev_factor) / 1000.0 * var.sqrt();
                for (ep, rate, _) in &sr {
                    if *rate < threshold && enforced(enforcing_sr) {
                        self.eject(ep, cfg);
                    }
                }
            }
            let fp = candidates(local, cfg.failure_percentage_request_volume);
            if fp.len() >= cfg.failure_percentage_minimum_hosts as usize {
                for (ep, rate, _) in &fp {
                    let failure = 100.0 - rate;
                    if failure >= f64::from(cfg.failure_percentage_threshold)
                        && enforced(enforcing_fp)
                    {
                        self.eject(ep, cfg);
                    }
                }
            }
        }
    }

    /// Records one active health check result; returns whether the endpoint's health flipped.
    pub(crate) fn record_health_check(
        &self,
        ep: &Endpoint,
        ok: bool,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> bool {
        let mut st = ep.health.state.lock().unwrap_or_else(|e| e.into_inner());
        let failed = ep.health.is_hc_failed();
        let first = !st.hc_checked;
        st.hc_checked = true;
        if ok {
            st.hc_successes += 1;
            st.hc_failures = 0;
            // A host not yet checked needs one success (as in Envoy at start-up).
            if failed && (first || st.hc_successes >= healthy_threshold) {
                ep.health.hc_failed.store(false, Ordering::Release);
                self.stats.hc_success.inc();
                return true;
            }
            self.stats.hc_success.inc();
        } else {
            st.hc_failures += 1;
            st.hc_successes = 0;
            self.stats.hc_failure.inc();
            if !failed && st.hc_failures >= unhealthy_threshold {
                ep.health.hc_failed.store(true, Ordering::Release);
                return true;
            }
        }
        false
    }
}

/// Runs outlier detection for a cluster every `interval` until the cluster is dropped.
pub(crate) async fn run(cluster: std::sync::Weak<Cluster>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(c) = cluster.upgrade() else { return };
        c.outlier_tick();
    }
}
