//! What runs when a response body ends: counters, access logs.

use crate::access_log::LogRecord;
use crate::config::listener::HttpConnectionManagerConfig;
use crate::flags::ResponseFlags;
use crate::http::body::OnEnd;
use crate::stats::ListenerStats;
use crate::upstream::breaker::Slot;
use crate::upstream::{Cluster, Endpoint};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Finishes an access-log record when the response body ends.
pub(super) struct LogTail {
    pub(super) record: Box<LogRecord>,
    pub(super) manager: Arc<HttpConnectionManagerConfig>,
    pub(super) started: Instant,
    pub(super) request_bytes: Option<Arc<AtomicU64>>,
}

impl LogTail {
    pub(super) fn write(
        mut self,
        bytes: u64,
        complete: bool,
        upstream: bool,
        flags: ResponseFlags,
    ) {
        self.record.bytes_sent = bytes;
        self.record.flags.insert(flags);
        self.record.duration_ms = self.started.elapsed().as_millis() as u64;
        if let Some(c) = &self.request_bytes {
            self.record.bytes_received = c.load(Ordering::Relaxed);
        }
        if !complete && upstream && flags.is_empty() {
            self.record
                .flags
                .insert(ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);
        }
        self.manager.access_logs.log(&self.record);
    }
}

impl OnEnd for LogTail {
    fn on_end(self: Box<Self>, bytes: u64, complete: bool, flags: ResponseFlags) {
        self.write(bytes, complete, false, flags);
    }
}

/// Runs when a proxied response body ends: updates counters, logs. (The upstream body
/// returns its pooled connection itself.)
pub(super) struct UpstreamEnd {
    pub(super) in_flight: InFlight,
    pub(super) listener: Arc<ListenerStats>,
    pub(super) log: Option<LogTail>,
}

impl OnEnd for UpstreamEnd {
    fn on_end(self: Box<Self>, bytes: u64, complete: bool, flags: ResponseFlags) {
        let this = *self;
        let stats = &this.in_flight.cluster().stats;
        if flags.contains(ResponseFlags::UPSTREAM_REQUEST_TIMEOUT) {
            stats.rq_timeout.inc();
        }
        if flags.contains(ResponseFlags::STREAM_IDLE_TIMEOUT) {
            this.listener.rq_idle_timeout.inc();
        }
        if flags.contains(ResponseFlags::DURATION_TIMEOUT) {
            this.listener.rq_max_duration.inc();
        }
        if let Some(log) = this.log {
            log.write(bytes, complete, true, flags);
        }
        drop(this.in_flight);
    }
}

/// One request in flight to an endpoint: counted in the endpoint's active requests (least
/// request LB) and the cluster's `upstream_rq_active` until dropped, so a client that goes
/// away mid-request (the handler future is dropped) cannot leak the counts.
#[derive(Debug)]
pub(super) struct InFlight {
    endpoint: Arc<Endpoint>,
    cluster: Arc<Cluster>,
    /// The request's `max_requests` circuit-breaker slot.
    _slot: Slot,
}

impl InFlight {
    pub(super) fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub(super) fn begin(endpoint: Arc<Endpoint>, cluster: Arc<Cluster>, slot: Slot) -> InFlight {
        endpoint.begin_request();
        cluster.stats.rq_active.inc();
        InFlight {
            endpoint,
            cluster,
            _slot: slot,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.end_request();
        self.cluster.stats.rq_active.dec();
    }
}
