//! Giving memory the proxy no longer uses back to the kernel (issue 3: ≤ 10 MB resident at
//! idle and under load).
//!
//! Two kinds of pages stay resident without being needed:
//!
//! - **File-backed pages** of the binary and its shared libraries. Start-up (argument
//!   parsing, bootstrap decoding, listener and cluster set-up) runs code the request path
//!   never runs again, and the kernel maps 64 KiB around every page fault (fault-around),
//!   so ~9 MB of weft's ~18 MB of code stayed mapped. [`release_startup_pages`] unmaps
//!   them once the proxy is serving; the request path faults its own pages back in.
//! - **Freed heap** that glibc keeps after a burst of connections (5.5 MB after 64
//!   connections, measured). [`spawn_heap_trimmer`] returns it with `malloc_trim`.
//!
//! Both need `libc` calls that have no safe wrapper, hence the `unsafe` below; each call
//! only changes which pages are resident, never their contents (see the SAFETY notes).
//! Elsewhere (other platforms) these do nothing.
#![allow(unsafe_code)] // measured need: see the module docs and docs/performance.md "Memory".

use std::time::Duration;

/// How often the heap trimmer looks for freed memory to return. Trimming costs a walk of
/// the allocator's free lists (microseconds for this proxy's heap); once a second is
/// invisible in per-request costs yet returns a burst's memory before anyone reads RSS.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Unmaps the pages of read-only, file-backed mappings (code and constants of this binary
/// and its libraries) that start-up touched, so what stays resident is what the proxy keeps
/// running. Call once the proxy is serving. Returns the bytes of mappings released.
///
/// `MADV_RANDOM` was tried too (to stop fault-around mapping neighbouring pages): this
/// kernel (6.18) still faults around in such mappings, so it changed nothing.
pub fn release_startup_pages() -> usize {
    imp::release_startup_pages()
}

/// Spawns a task on the current runtime that returns freed heap memory to the kernel every
/// [`TRIM_INTERVAL`] (glibc keeps it otherwise). The task ends with the runtime.
pub fn spawn_heap_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            trim_heap();
        }
    });
}

/// Returns the heap's free memory to the kernel now. True if any was returned.
pub fn trim_heap() -> bool {
    imp::trim_heap()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    /// The read-only private file mappings in `/proc/self/smaps` that hold no anonymous
    /// (copy-on-write) pages: `(start, len)`.
    fn readonly_file_mappings() -> Vec<(usize, usize)> {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut current: Option<(usize, usize)> = None;
        for line in smaps.lines() {
            let mut fields = line.split_ascii_whitespace();
            let first = fields.next().unwrap_or_default();
            if first == "Anonymous:" {
                // `Anonymous: 0 kB`: no page was written (relocated data is), so unmapping
                // loses nothing.
                if let (Some(range), Some("0")) = (current.take(), fields.next()) {
                    out.push(range);
                }
                continue;
            }
            let Some((start, end)) = first.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            let perms = fields.next().unwrap_or_default();
            let path = fields.nth(3).unwrap_or_default();
            current = (matches!(perms, "r-xp" | "r--p") && path.starts_with('/'))
                .then_some((start, end - start));
        }
        out
    }

    pub(super) fn release_startup_pages() -> usize {
        let mut released = 0;
        for (start, len) in readonly_file_mappings() {
            // SAFETY: `start..start+len` is a whole mapping from /proc/self/smaps: private,
            // not writable, file-backed, without anonymous pages. Its contents are the
            // file's, so dropping its page-table entries only makes the next access fault
            // the same bytes back in from the page cache; no other memory is touched.
            if unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) } == 0 {
                released += len;
            }
        }
        released
    }

    pub(super) fn trim_heap() -> bool {
        // SAFETY: malloc_trim only releases free memory of the allocator that serves this
        // process (glibc's; weft installs no other global allocator).
        unsafe { libc::malloc_trim(0) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn release_startup_pages() -> usize {
        0
    }

    pub(super) fn trim_heap() -> bool {
        false
    }
}
