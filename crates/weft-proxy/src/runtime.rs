//! The tokio runtime the proxy runs on.

/// A runtime with `workers` worker threads (Envoy's `--concurrency`; 0 counts as 1).
///
/// One worker gets a current-thread runtime: listeners, connections and the admin server
/// all run on the thread that calls `block_on`, one thread fewer than a one-worker
/// multi-thread runtime (per-request instructions measured the same; see
/// `docs/performance.md`). Blocking-pool threads (DNS lookups, the xDS support walk) start
/// only when needed, as in the multi-thread runtime.
pub fn build(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if workers <= 1 {
        // One arena for every thread: the blocking pool's threads (xDS decoding) otherwise
        // each keep their own, ~4.8 MB apiece in an xDS sidecar (measured: anonymous 6.0
        // -> 1.3 MB at idle). Only here: with several workers, one arena would make them
        // contend on malloc.
        crate::memory::limit_arenas(1);
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
