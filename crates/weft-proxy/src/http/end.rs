//! What runs when a response body ends: pooled-connection return, counters, access logs.

use crate::access_log::LogRecord;
use crate::config::listener::HttpConnectionManagerConfig;
use crate::flags::ResponseFlags;
use crate::http::body::OnEnd;
use crate::upstream::Endpoint;
use crate::upstream::pool::Returner;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Finishes an access-log record when the response body ends.
pub(super) struct LogTail {
    pub(super) record: LogRecord,
    pub(super) manager: Arc<HttpConnectionManagerConfig>,
    pub(super) started: Instant,
    pub(super) request_bytes: Option<Arc<AtomicU64>>,
}

impl LogTail {
    pub(super) fn write(mut self, bytes: u64, complete: bool, upstream: bool) {
        self.record.bytes_sent = bytes;
        self.record.duration_ms = self.started.elapsed().as_millis() as u64;
        if let Some(c) = &self.request_bytes {
            self.record.bytes_received = c.load(Ordering::Relaxed);
        }
        if !complete && upstream {
            self.record
                .flags
                .insert(ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);
        }
        self.manager.access_logs.log(&self.record);
    }
}

impl OnEnd for LogTail {
    fn on_end(self: Box<Self>, bytes: u64, complete: bool) {
        self.write(bytes, complete, false);
    }
}

/// Runs when a proxied response body ends: returns the connection, updates counters, logs.
pub(super) struct UpstreamEnd {
    pub(super) returner: Option<Returner>,
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) rq_active: prometheus_client::metrics::gauge::Gauge,
    pub(super) log: Option<LogTail>,
}

impl OnEnd for UpstreamEnd {
    fn on_end(self: Box<Self>, bytes: u64, complete: bool) {
        let this = *self;
        if let (Some(r), true) = (this.returner, complete) {
            r.give_back();
        }
        this.endpoint.end_request();
        this.rq_active.dec();
        if let Some(log) = this.log {
            log.write(bytes, complete, true);
        }
    }
}
