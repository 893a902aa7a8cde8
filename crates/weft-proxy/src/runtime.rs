//! The tokio runtime the proxy runs on.

/// A runtime with `workers` worker threads (Envoy's `--concurrency`; 0 counts as 1).
///
/// One worker gets a current-thread runtime: listeners, connections and the admin server
/// all run on the thread that calls `block_on`, so a request never crosses threads and the
/// scheduler skips the work-stealing machinery (a multi-thread runtime with one worker
/// still hands every wake-up through shared queues, and adds a thread). Blocking-pool
/// threads (DNS lookups) start only when needed, as in the multi-thread runtime.
pub fn build(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if workers <= 1 {
        return tokio::runtime::Builder::new_current_thread()
            .thread_name("weft-worker")
            .enable_all()
            .build();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("weft-worker")
        .enable_all()
        .build()
}
