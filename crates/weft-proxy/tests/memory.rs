//! `weft_proxy::memory` returns memory to the kernel: freed heap after a burst of
//! allocations, and the start-up code's pages. Its own test binary, so no other test
//! allocates or runs code while the figures are read.

/// `(RssAnon, RssFile)` of this process, in kB.
fn rss_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect(key)
    };
    (kb("RssAnon:"), kb("RssFile:"))
}

#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trimming_returns_a_bursts_freed_heap_and_release_unmaps_code_pages() {
    // A burst's worth of connection-sized buffers (16 KiB each, below glibc's mmap
    // threshold, so they live in the heap), 32 MiB in all, then freed; a small allocation
    // made last keeps the heap's top in use, as a long-lived one does in the proxy.
    let mut buffers: Vec<Vec<u8>> = (0..2048).map(|_| vec![1u8; 16 * 1024]).collect();
    let pin = vec![1u8; 64];
    let (anon_full, _) = rss_kb();
    buffers.clear();
    buffers.shrink_to_fit();
    let (anon_freed, _) = rss_kb();
    assert!(
        anon_freed + 16 * 1024 > anon_full,
        "glibc kept the freed heap ({anon_full} kB -> {anon_freed} kB), as the proxy saw"
    );
    assert!(weft_proxy::memory::trim_heap(), "something to trim");
    let (anon_trimmed, _) = rss_kb();
    assert!(
        anon_trimmed + 16 * 1024 < anon_freed,
        "trim returned the burst: {anon_freed} kB -> {anon_trimmed} kB"
    );
    drop(pin);

    let (_, file_before) = rss_kb();
    assert!(weft_proxy::memory::release_code_pages() > 0);
    let (_, file_after) = rss_kb();
    assert!(
        file_after < file_before,
        "file-backed pages unmapped: {file_before} kB -> {file_after} kB"
    );
}
