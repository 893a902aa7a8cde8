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
struct ListenerCodeLabel {
    listener: String,
    response_code_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct XdsLabel {
    r#type: String,
    result: String,
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
    upstream_rq_retry: Family<ClusterLabel, Counter>,
    upstream_rq_active: Family<ClusterLabel, Gauge>,
    upstream_cx_total: Family<ClusterLabel, Counter>,
    upstream_cx_connect_fail: Family<ClusterLabel, Counter>,
    upstream_cx_active: Family<ClusterLabel, Gauge>,
    no_healthy_upstream: Family<ClusterLabel, Counter>,
    downstream_cx_total: Family<ListenerLabel, Counter>,
    downstream_cx_active: Family<ListenerLabel, Gauge>,
    downstream_rq_total: Family<ListenerLabel, Counter>,
    downstream_rq: Family<ListenerCodeLabel, Counter>,
    listener_counters: Vec<(&'static str, Family<ListenerLabel, Counter>)>,
    fault_active: Family<ListenerLabel, Gauge>,
    cluster_counters: Vec<(&'static str, Family<ClusterLabel, Counter>)>,
    xds_updates: Family<XdsLabel, Counter>,
}

/// Listener (HTTP connection manager) counters beyond the basics: name and help.
const LISTENER_COUNTERS: [(&str, &str); 10] = [
    (
        "http_fault_delays_injected",
        "Requests delayed by the fault filter",
    ),
    (
        "http_fault_aborts_injected",
        "Requests aborted by the fault filter",
    ),
    (
        "http_fault_overflow",
        "Faults not injected because max_active_faults was reached",
    ),
    (
        "downstream_rq_timeout",
        "Requests not received in full within request_timeout",
    ),
    (
        "downstream_rq_idle_timeout",
        "Streams ended by stream_idle_timeout",
    ),
    (
        "downstream_rq_max_duration_reached",
        "Streams ended by their maximum duration",
    ),
    (
        "http_local_rate_limited",
        "Requests over the HTTP local rate limit",
    ),
    (
        "downstream_cx_rate_limited",
        "Connections closed by the network local rate limit",
    ),
    (
        "http_mirror_dropped",
        "Mirror copies not sent (too many in flight, or no healthy host)",
    ),
    (
        "downstream_cx_protocol_error",
        "Downstream connections ended by a protocol error (a refused HTTP/1 head, an HTTP/2 connection error)",
    ),
];

/// Cluster counters beyond the basics: name and help.
const CLUSTER_COUNTERS: [(&str, &str); 10] = [
    (
        "upstream_rq_per_try_timeout",
        "Attempts that hit the per-try (or per-try idle) timeout",
    ),
    (
        "upstream_rq_retry_limit_exceeded",
        "Requests that ended still retriable with no retries left",
    ),
    (
        "upstream_rq_retry_success",
        "Requests that succeeded after a retry",
    ),
    (
        "upstream_rq_retry_overflow",
        "Retries not made because of the circuit breaker or budget",
    ),
    (
        "upstream_rq_pending_overflow",
        "Requests answered 503 UO (max_pending_requests / max_requests)",
    ),
    ("upstream_cx_overflow", "Times max_connections was reached"),
    (
        "upstream_rq_body_too_large_for_retry",
        "Requests not retried because their body exceeded the replay buffer",
    ),
    (
        "outlier_detection_ejections_enforced",
        "Endpoints ejected by outlier detection",
    ),
    ("health_check_failure", "Failed active health checks"),
    ("health_check_success", "Successful active health checks"),
];

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
    pub rq_retry: Counter,
    pub rq_active: Gauge,
    pub cx_total: Counter,
    pub cx_connect_fail: Counter,
    pub cx_active: Gauge,
    pub no_healthy_upstream: Counter,
    pub per_try_timeout: Counter,
    pub retry_limit_exceeded: Counter,
    pub retry_success: Counter,
    pub retry_overflow: Counter,
    pub pending_overflow: Counter,
    pub cx_overflow: Counter,
    pub body_too_large_for_retry: Counter,
    pub ejections_enforced: Counter,
    pub hc_failure: Counter,
    pub hc_success: Counter,
}

/// Counts a response in its status class (`1xx`..`5xx`; other codes are not counted).
fn count_class(classes: &[Counter; 5], status: u16) {
    if let Some(c) = classes.get(usize::from(status / 100).wrapping_sub(1)) {
        c.inc();
    }
}

impl ClusterStats {
    /// Counts a response by status class.
    pub fn record_status(&self, status: u16) {
        count_class(&self.rq_class, status);
    }
}

/// Handles for one listener.
#[derive(Debug, Clone)]
pub struct ListenerStats {
    pub cx_total: Counter,
    pub cx_active: Gauge,
    pub rq_total: Counter,
    /// Responses sent downstream by status class (`downstream_rq_1xx` ... `5xx`).
    pub rq_class: [Counter; 5],
    pub fault_delays: Counter,
    pub fault_aborts: Counter,
    pub fault_overflow: Counter,
    pub fault_active: Gauge,
    pub rq_timeout: Counter,
    pub rq_idle_timeout: Counter,
    pub rq_max_duration: Counter,
    pub rate_limited: Counter,
    pub cx_rate_limited: Counter,
    pub mirror_dropped: Counter,
    /// Connections ended by a codec error (Envoy's `downstream_cx_protocol_error`).
    pub cx_protocol_error: Counter,
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
            upstream_rq_retry: Family::default(),
            upstream_rq_active: Family::default(),
            upstream_cx_total: Family::default(),
            upstream_cx_connect_fail: Family::default(),
            upstream_cx_active: Family::default(),
            no_healthy_upstream: Family::default(),
            downstream_cx_total: Family::default(),
            downstream_cx_active: Family::default(),
            downstream_rq_total: Family::default(),
            downstream_rq: Family::default(),
            listener_counters: LISTENER_COUNTERS
                .iter()
                .map(|(n, _)| (*n, Family::default()))
                .collect(),
            fault_active: Family::default(),
            cluster_counters: CLUSTER_COUNTERS
                .iter()
                .map(|(n, _)| (*n, Family::default()))
                .collect(),
            xds_updates: Family::default(),
        };
        for ((name, help), (_, family)) in LISTENER_COUNTERS.iter().zip(&s.listener_counters) {
            registry.register(*name, *help, family.clone());
        }
        for ((name, help), (_, family)) in CLUSTER_COUNTERS.iter().zip(&s.cluster_counters) {
            registry.register(*name, *help, family.clone());
        }
        registry.register(
            "http_fault_active",
            "Faults (delays) in effect now",
            s.fault_active.clone(),
        );
        registry.register(
            "xds_updates",
            "xDS responses applied (ack) or rejected (nack), by resource type",
            s.xds_updates.clone(),
        );
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
            "upstream_rq_retry",
            "Upstream request retries",
            s.upstream_rq_retry.clone(),
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
        registry.register(
            "downstream_rq_by_class",
            "Downstream responses by status class",
            s.downstream_rq.clone(),
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
            rq_retry: self.upstream_rq_retry.get_or_create_owned(&l),
            rq_active: self.upstream_rq_active.get_or_create_owned(&l),
            cx_total: self.upstream_cx_total.get_or_create_owned(&l),
            cx_connect_fail: self.upstream_cx_connect_fail.get_or_create_owned(&l),
            cx_active: self.upstream_cx_active.get_or_create_owned(&l),
            no_healthy_upstream: self.no_healthy_upstream.get_or_create_owned(&l),
            per_try_timeout: self.cluster_counter(0, &l),
            retry_limit_exceeded: self.cluster_counter(1, &l),
            retry_success: self.cluster_counter(2, &l),
            retry_overflow: self.cluster_counter(3, &l),
            pending_overflow: self.cluster_counter(4, &l),
            cx_overflow: self.cluster_counter(5, &l),
            body_too_large_for_retry: self.cluster_counter(6, &l),
            ejections_enforced: self.cluster_counter(7, &l),
            hc_failure: self.cluster_counter(8, &l),
            hc_success: self.cluster_counter(9, &l),
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
            rq_class: ["1xx", "2xx", "3xx", "4xx", "5xx"].map(|c| {
                self.downstream_rq.get_or_create_owned(&ListenerCodeLabel {
                    listener: listener.to_owned(),
                    response_code_class: c.to_owned(),
                })
            }),
            fault_delays: self.listener_counter(0, &l),
            fault_aborts: self.listener_counter(1, &l),
            fault_overflow: self.listener_counter(2, &l),
            fault_active: self.fault_active.get_or_create_owned(&l),
            rq_timeout: self.listener_counter(3, &l),
            rq_idle_timeout: self.listener_counter(4, &l),
            rq_max_duration: self.listener_counter(5, &l),
            rate_limited: self.listener_counter(6, &l),
            cx_rate_limited: self.listener_counter(7, &l),
            mirror_dropped: self.listener_counter(8, &l),
            cx_protocol_error: self.listener_counter(9, &l),
        }
    }

    fn listener_counter(&self, i: usize, l: &ListenerLabel) -> Counter {
        self.listener_counters[i].1.get_or_create_owned(l)
    }

    fn cluster_counter(&self, i: usize, l: &ClusterLabel) -> Counter {
        self.cluster_counters[i].1.get_or_create_owned(l)
    }

    /// Counts one xDS response of `type_name` (`cds`, `eds`, `lds`, `rds`), ACKed or not.
    pub fn xds_update(&self, type_name: &str, ack: bool) {
        self.xds_updates
            .get_or_create(&XdsLabel {
                r#type: type_name.to_owned(),
                result: if ack { "ack" } else { "nack" }.to_owned(),
            })
            .inc();
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
        let _ = writeln!(out, "{p}.upstream_rq_retry: {}", self.rq_retry.get());
        let _ = writeln!(out, "{p}.upstream_rq_timeout: {}", self.rq_timeout.get());
        let _ = writeln!(out, "{p}.upstream_rq_total: {}", self.rq_total.get());
        for (name, c) in [
            ("upstream_rq_per_try_timeout", &self.per_try_timeout),
            (
                "upstream_rq_retry_limit_exceeded",
                &self.retry_limit_exceeded,
            ),
            ("upstream_rq_retry_success", &self.retry_success),
            ("upstream_rq_retry_overflow", &self.retry_overflow),
            ("upstream_rq_pending_overflow", &self.pending_overflow),
            ("upstream_cx_overflow", &self.cx_overflow),
            (
                "outlier_detection.ejections_enforced_total",
                &self.ejections_enforced,
            ),
            ("health_check.failure", &self.hc_failure),
            ("health_check.success", &self.hc_success),
        ] {
            let _ = writeln!(out, "{p}.{name}: {}", c.get());
        }
    }
}

impl ListenerStats {
    /// Counts a response sent downstream by status class.
    pub fn record_status(&self, status: u16) {
        count_class(&self.rq_class, status);
    }

    /// Envoy-style `listener.<name>.<stat>: value` lines.
    pub fn envoy_lines(&self, listener: &str, out: &mut String) {
        use std::fmt::Write as _;
        let p = format!("listener.{listener}");
        let _ = writeln!(out, "{p}.downstream_cx_active: {}", self.cx_active.get());
        let _ = writeln!(
            out,
            "{p}.downstream_cx_protocol_error: {}",
            self.cx_protocol_error.get()
        );
        let _ = writeln!(out, "{p}.downstream_cx_total: {}", self.cx_total.get());
        let _ = writeln!(out, "{p}.downstream_rq_total: {}", self.rq_total.get());
        for (i, c) in self.rq_class.iter().enumerate() {
            let _ = writeln!(out, "{p}.downstream_rq_{}xx: {}", i + 1, c.get());
        }
        for (name, c) in [
            ("fault.delays_injected", &self.fault_delays),
            ("fault.aborts_injected", &self.fault_aborts),
            ("fault.faults_overflow", &self.fault_overflow),
            ("downstream_rq_timeout", &self.rq_timeout),
            ("downstream_rq_idle_timeout", &self.rq_idle_timeout),
            ("downstream_rq_max_duration_reached", &self.rq_max_duration),
            ("local_rate_limit.rate_limited", &self.rate_limited),
            (
                "network_local_rate_limit.rate_limited",
                &self.cx_rate_limited,
            ),
        ] {
            let _ = writeln!(out, "{p}.{name}: {}", c.get());
        }
        let _ = writeln!(out, "{p}.fault.active_faults: {}", self.fault_active.get());
    }
}
