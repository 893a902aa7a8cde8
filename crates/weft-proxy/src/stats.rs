//! Counters and histograms, exposed as Prometheus text (`/stats/prometheus`) and in Envoy's
//! `name: value` form (`/stats`).
//!
//! Per-cluster and per-listener handles are resolved once when the cluster or listener is
//! built; the hot path only touches atomics (and a histogram's lock when observing).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabel {
    cluster_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterCodeLabel {
    cluster_name: String,
    response_code_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.5, 2.0, 16))
}

/// The proxy's metric families.
#[derive(Debug)]
pub struct Stats {
    registry: Mutex<Registry>,
    upstream_rq_total: Family<ClusterLabel, Counter>,
    upstream_rq: Family<ClusterCodeLabel, Counter>,
    upstream_rq_time: Family<ClusterLabel, Histogram, fn() -> Histogram>,
    upstream_rq_timeout: Family<ClusterLabel, Counter>,
    upstream_rq_active: Family<ClusterLabel, Gauge>,
    upstream_cx_total: Family<ClusterLabel, Counter>,
    upstream_cx_connect_fail: Family<ClusterLabel, Counter>,
    upstream_cx_active: Family<ClusterLabel, Gauge>,
    no_healthy_upstream: Family<ClusterLabel, Counter>,
    downstream_cx_total: Family<ListenerLabel, Counter>,
    downstream_cx_active: Family<ListenerLabel, Gauge>,
    downstream_rq_total: Family<ListenerLabel, Counter>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

/// Handles for one cluster.
#[derive(Debug, Clone)]
pub struct ClusterStats {
    pub rq_total: Counter,
    /// 1xx..5xx.
    pub rq_class: [Counter; 5],
    pub rq_time: Histogram,
    pub rq_timeout: Counter,
    pub rq_active: Gauge,
    pub cx_total: Counter,
    pub cx_connect_fail: Counter,
    pub cx_active: Gauge,
    pub no_healthy_upstream: Counter,
}

impl ClusterStats {
    /// Counts a response by status class.
    pub fn record_status(&self, status: u16) {
        if let Some(c) = self.rq_class.get(usize::from(status / 100).wrapping_sub(1)) {
            c.inc();
        }
    }
}

/// Handles for one listener.
#[derive(Debug, Clone)]
pub struct ListenerStats {
    pub cx_total: Counter,
    pub cx_active: Gauge,
    pub rq_total: Counter,
}

impl Stats {
    /// Registers every family.
    pub fn new() -> Stats {
        let mut registry = Registry::with_prefix("weft");
        let s = Stats {
            registry: Mutex::new(Registry::default()),
            upstream_rq_total: Family::default(),
            upstream_rq: Family::default(),
            upstream_rq_time: Family::new_with_constructor(latency_histogram),
            upstream_rq_timeout: Family::default(),
            upstream_rq_active: Family::default(),
            upstream_cx_total: Family::default(),
            upstream_cx_connect_fail: Family::default(),
            upstream_cx_active: Family::default(),
            no_healthy_upstream: Family::default(),
            downstream_cx_total: Family::default(),
            downstream_cx_active: Family::default(),
            downstream_rq_total: Family::default(),
        };
        registry.register(
            "upstream_rq",
            "Upstream requests",
            s.upstream_rq_total.clone(),
        );
        registry.register(
            "upstream_rq_by_class",
            "Upstream responses by status class",
            s.upstream_rq.clone(),
        );
        registry.register(
            "upstream_rq_time_ms",
            "Upstream request time to response headers, ms",
            s.upstream_rq_time.clone(),
        );
        registry.register(
            "upstream_rq_timeout",
            "Upstream requests that timed out",
            s.upstream_rq_timeout.clone(),
        );
        registry.register(
            "upstream_rq_active",
            "Upstream requests in flight",
            s.upstream_rq_active.clone(),
        );
        registry.register(
            "upstream_cx",
            "Upstream connections opened",
            s.upstream_cx_total.clone(),
        );
        registry.register(
            "upstream_cx_connect_fail",
            "Upstream connection failures",
            s.upstream_cx_connect_fail.clone(),
        );
        registry.register(
            "upstream_cx_active",
            "Upstream connections open",
            s.upstream_cx_active.clone(),
        );
        registry.register(
            "upstream_cx_none_healthy",
            "Requests with no healthy upstream",
            s.no_healthy_upstream.clone(),
        );
        registry.register(
            "downstream_cx",
            "Downstream connections accepted",
            s.downstream_cx_total.clone(),
        );
        registry.register(
            "downstream_cx_active",
            "Downstream connections open",
            s.downstream_cx_active.clone(),
        );
        registry.register(
            "downstream_rq",
            "Downstream requests",
            s.downstream_rq_total.clone(),
        );
        *s.registry.lock().unwrap_or_else(|e| e.into_inner()) = registry;
        s
    }

    /// Handles for `cluster` (created on first use, shared afterwards).
    pub fn cluster(&self, cluster: &str) -> ClusterStats {
        let l = ClusterLabel {
            cluster_name: cluster.to_owned(),
        };
        let class = |c: &str| {
            self.upstream_rq.get_or_create_owned(&ClusterCodeLabel {
                cluster_name: cluster.to_owned(),
                response_code_class: c.to_owned(),
            })
        };
        ClusterStats {
            rq_total: self.upstream_rq_total.get_or_create_owned(&l),
            rq_class: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            rq_time: self.upstream_rq_time.get_or_create_owned(&l),
            rq_timeout: self.upstream_rq_timeout.get_or_create_owned(&l),
            rq_active: self.upstream_rq_active.get_or_create_owned(&l),
            cx_total: self.upstream_cx_total.get_or_create_owned(&l),
            cx_connect_fail: self.upstream_cx_connect_fail.get_or_create_owned(&l),
            cx_active: self.upstream_cx_active.get_or_create_owned(&l),
            no_healthy_upstream: self.no_healthy_upstream.get_or_create_owned(&l),
        }
    }

    /// Handles for `listener`.
    pub fn listener(&self, listener: &str) -> ListenerStats {
        let l = ListenerLabel {
            listener: listener.to_owned(),
        };
        ListenerStats {
            cx_total: self.downstream_cx_total.get_or_create_owned(&l),
            cx_active: self.downstream_cx_active.get_or_create_owned(&l),
            rq_total: self.downstream_rq_total.get_or_create_owned(&l),
        }
    }

    /// Prometheus text exposition.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

impl ClusterStats {
    /// Envoy-style `cluster.<name>.<stat>: value` lines.
    pub fn envoy_lines(&self, cluster: &str, out: &mut String) {
        use std::fmt::Write as _;
        let p = format!("cluster.{cluster}");
        let _ = writeln!(out, "{p}.upstream_cx_active: {}", self.cx_active.get());
        let _ = writeln!(
            out,
            "{p}.upstream_cx_connect_fail: {}",
            self.cx_connect_fail.get()
        );
        let _ = writeln!(
            out,
            "{p}.upstream_cx_none_healthy: {}",
            self.no_healthy_upstream.get()
        );
        let _ = writeln!(out, "{p}.upstream_cx_total: {}", self.cx_total.get());
        for (i, c) in self.rq_class.iter().enumerate() {
            let _ = writeln!(out, "{p}.upstream_rq_{}xx: {}", i + 1, c.get());
        }
        let _ = writeln!(out, "{p}.upstream_rq_active: {}", self.rq_active.get());
        let _ = writeln!(out, "{p}.upstream_rq_timeout: {}", self.rq_timeout.get());
        let _ = writeln!(out, "{p}.upstream_rq_total: {}", self.rq_total.get());
    }
}

impl ListenerStats {
    /// Envoy-style `listener.<name>.<stat>: value` lines.
    pub fn envoy_lines(&self, listener: &str, out: &mut String) {
        use std::fmt::Write as _;
        let p = format!("listener.{listener}");
        let _ = writeln!(out, "{p}.downstream_cx_active: {}", self.cx_active.get());
        let _ = writeln!(out, "{p}.downstream_cx_total: {}", self.cx_total.get());
        let _ = writeln!(out, "{p}.downstream_rq_total: {}", self.rq_total.get());
    }
}
