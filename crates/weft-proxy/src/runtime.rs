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

/// `Box::pin(make())` for a future a task will hold, built in its box.
///
/// tokio moves a spawned task's future several times while spawning, polling and finishing
/// it (into the spawn call, into the task cell, between stages); for a large future those
/// moves are the cost: a downstream connection's future is ~10 KB, and callgrind counted
/// ~100k instructions of copying per accepted connection. Boxed, the task holds a pointer.
/// Allocating before `make` runs lets the compiler build the future in the box rather than
/// on the stack and copy it there (`Box::pin(fut)` copied the ~7 KB handler future once more).
pub(crate) fn boxed_in_place<F: Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}
