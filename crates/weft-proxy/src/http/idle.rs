//! Downstream connection idleness, for the HCM's `idle_timeout`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When a downstream connection last had a request in flight (for `idle_timeout`).
/// A request counts as active until its response has been sent (as in Envoy, a response
/// streaming longer than the idle timeout is not cut short).
pub(super) struct ConnActivity {
    start: Instant,
    active: AtomicU32,
    last_ms: AtomicU64,
}

impl ConnActivity {
    pub(super) fn new() -> ConnActivity {
        ConnActivity {
            start: Instant::now(),
            active: AtomicU32::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn begin(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn end(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Resolves once no request has been active for `idle`.
    pub(super) async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if self.active.load(Ordering::Relaxed) == 0 && Instant::now() >= deadline {
                return;
            }
            let wake = if Instant::now() >= deadline {
                Instant::now() + idle
            } else {
                deadline
            };
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}
