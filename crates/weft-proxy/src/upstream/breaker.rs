//! Circuit breaking (Envoy's `circuit_breakers.thresholds`): per cluster and priority,
//! limits on open connections, requests waiting for a connection, requests in flight and
//! retries in flight. Past a limit a request is answered at once with `503 UO`.

use crate::config::cluster::Thresholds;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::Notify;

/// The counters of one cluster and priority.
#[derive(Debug)]
pub struct Breaker {
    pub limits: Thresholds,
    connections: AtomicU32,
    pending: AtomicU32,
    requests: AtomicU32,
    retries: AtomicU32,
    /// Woken when a connection is returned to a pool or closes (pending requests retry).
    pub(crate) freed: Notify,
}

/// A slot held until dropped.
#[derive(Debug)]
pub struct Slot {
    breaker: Arc<Breaker>,
    which: Which,
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Connection,
    Pending,
    Request,
    Retry,
}

impl Slot {
    /// The circuit breaker this slot counts against.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let b = &self.breaker;
        match self.which {
            Which::Connection => {
                b.connections.fetch_sub(1, Ordering::AcqRel);
                b.freed.notify_waiters();
            }
            Which::Pending => {
                b.pending.fetch_sub(1, Ordering::AcqRel);
            }
            Which::Request => {
                b.requests.fetch_sub(1, Ordering::AcqRel);
            }
            Which::Retry => {
                b.retries.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

fn acquire(counter: &AtomicU32, max: u32) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

impl Breaker {
    /// Counters at zero under `limits`.
    pub fn new(limits: Thresholds) -> Arc<Breaker> {
        Arc::new(Breaker {
            limits,
            connections: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            requests: AtomicU32::new(0),
            retries: AtomicU32::new(0),
            freed: Notify::new(),
        })
    }

    fn slot(self: &Arc<Self>, which: Which) -> Slot {
        Slot {
            breaker: self.clone(),
            which,
        }
    }

    /// A new connection, if under `max_connections`.
    pub fn connection(self: &Arc<Self>) -> Option<Slot> {
        acquire(&self.connections, self.limits.max_connections)
            .then(|| self.slot(Which::Connection))
    }

    /// Waiting for a connection, if under `max_pending_requests`.
    pub fn pending(self: &Arc<Self>) -> Option<Slot> {
        acquire(&self.pending, self.limits.max_pending_requests).then(|| self.slot(Which::Pending))
    }

    /// A request in flight, if under `max_requests`.
    pub fn request(self: &Arc<Self>) -> Option<Slot> {
        acquire(&self.requests, self.limits.max_requests).then(|| self.slot(Which::Request))
    }

    /// A retry, if under `max_retries` (or, with a retry budget, under the budget's share
    /// of requests in flight, never below its minimum concurrency).
    pub fn retry(self: &Arc<Self>) -> Option<Slot> {
        let max = match self.limits.retry_budget {
            Some((percent, min)) => {
                let active =
                    self.requests.load(Ordering::Acquire) + self.pending.load(Ordering::Acquire);
                ((f64::from(active) * percent / 100.0) as u32).max(min)
            }
            None => self.limits.max_retries,
        };
        acquire(&self.retries, max).then(|| self.slot(Which::Retry))
    }

    /// Envoy's `remaining_cx`, `remaining_pending`, `remaining_rq`, `remaining_retries`.
    pub fn remaining(&self) -> [(&'static str, u32); 4] {
        let left = |max: u32, used: &AtomicU32| max.saturating_sub(used.load(Ordering::Acquire));
        [
            (
                "remaining_cx",
                left(self.limits.max_connections, &self.connections),
            ),
            (
                "remaining_pending",
                left(self.limits.max_pending_requests, &self.pending),
            ),
            (
                "remaining_rq",
                left(self.limits.max_requests, &self.requests),
            ),
            (
                "remaining_retries",
                left(self.limits.max_retries, &self.retries),
            ),
        ]
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
    }

    /// Requests in flight now.
    pub fn open_requests(&self) -> u32 {
        self.requests.load(Ordering::Acquire)
    }
}
