//! Giving memory the proxy no longer uses back to the kernel (issue 3: ≤ 10 MB resident at
//! idle and under load).
//!
//! Three things kept pages resident without need (measured; docs/performance.md "Memory"):
//!
//! - **File-backed pages** of the binary and its shared libraries. Start-up (argument
//!   parsing, bootstrap decoding, listener and cluster set-up) and later xDS updates run
//!   code the request path never runs, and the kernel maps 64 KiB around every page fault
//!   (fault-around), so ~9 MB of weft's ~18 MB of code stayed mapped.
//!   [`release_code_pages`] unmaps them once the proxy is serving, and [`spawn_trimmer`]
//!   again whenever they have grown by [`CODE_GROWTH`]; the request path faults its own
//!   pages back in.
//! - **Freed heap** that glibc keeps after a burst of connections (5.5 MB after 64
//!   connections). [`spawn_trimmer`] returns it with `malloc_trim` once a second.
//! - **One malloc arena per thread** that ever allocated: with one worker, the blocking
//!   pool's threads (xDS decoding) each kept an arena of ~4.8 MB (20 MB of an xDS sidecar's
//!   anonymous memory). [`limit_arenas`] makes them share.
//!
//! These need `libc` calls that have no safe wrapper, hence the `unsafe` below; each call
//! only changes which pages are resident or how the allocator groups them, never memory
//! contents (see the SAFETY notes). Elsewhere (other platforms) these do nothing.
#![allow(unsafe_code)] // measured need: see the module docs and docs/performance.md "Memory".

use std::time::Duration;

/// How often the trimmer looks for memory to return. Trimming costs a walk of the
/// allocator's free lists (microseconds for this proxy's heap); once a second is invisible
/// in per-request costs (+0.1% Ir) yet returns a burst's memory before anyone reads RSS.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// How far file-backed pages may grow past where they settled before the trimmer unmaps
/// them again: more than the request path's own jitter, less than an xDS update's code.
pub const CODE_GROWTH: u64 = 1024 * 1024;

/// Unmaps the pages of read-only, file-backed mappings (code and constants of this binary
/// and its libraries), so what stays resident is what the proxy runs from now on. Call once
/// the proxy is serving (and, to keep the start-up peak down, between start-up phases that
/// run different code). Returns the bytes of mappings released. The trimmer
/// ([`spawn_trimmer`]) releases once more when the process next goes quiet: work that
/// follows readiness at once (an xDS sidecar's first routes and endpoints) maps code too.
///
/// `MADV_RANDOM` was tried too (to stop fault-around mapping neighbouring pages): this
/// kernel (6.18) still faults around in such mappings, so it changed nothing.
pub fn release_code_pages() -> usize {
    RELEASE_WHEN_QUIET.store(true, std::sync::atomic::Ordering::Relaxed);
    imp::release_code_pages()
}

/// Set by [`release_code_pages`]: the trimmer releases again on its next quiet tick.
static RELEASE_WHEN_QUIET: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Makes glibc use at most `arenas` malloc arenas. Call before starting threads: a thread
/// that already has its own arena keeps it.
pub fn limit_arenas(arenas: usize) {
    imp::limit_arenas(arenas)
}

/// Spawns a task on the current runtime that, every [`TRIM_INTERVAL`], returns freed heap
/// memory to the kernel (glibc keeps it otherwise) and unmaps code pages again once they
/// have grown by [`CODE_GROWTH`] past where they settled and stopped growing. The task
/// ends with the runtime.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // File-backed bytes the running code settled at (measured the tick after a
        // release), whether they have grown past that since, and last tick's figure.
        let mut steady: Option<u64> = None;
        let mut grown = false;
        let mut previous = 0;
        loop {
            tick.tick().await;
            trim_heap();
            let Some(file) = file_resident_bytes() else {
                continue;
            };
            match steady {
                None => steady = Some(file),
                Some(s) if file > s + CODE_GROWTH => grown = true,
                Some(_) => {}
            }
            grown |= RELEASE_WHEN_QUIET.swap(false, std::sync::atomic::Ordering::Relaxed);
            // Unmap once the growth has stopped (no new pages for a tick), so an xDS update
            // or admin request is done with its code; the steady request path faults its
            // own pages back in and is measured anew.
            if grown && file <= previous {
                imp::release_code_pages();
                grown = false;
                steady = None;
            }
            previous = file;
        }
    });
}

/// Returns the heap's free memory to the kernel now. True if any was returned.
pub fn trim_heap() -> bool {
    imp::trim_heap()
}

/// This process's resident file-backed bytes (`RssFile`), if /proc says.
fn file_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("RssFile:"))?;
    Some(kb.split_whitespace().next()?.parse::<u64>().ok()? * 1024)
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

    pub(super) fn release_code_pages() -> usize {
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

    pub(super) fn limit_arenas(arenas: usize) {
        let arenas = libc::c_int::try_from(arenas.max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX bounds how many
        // arenas new threads may create and is valid at any time.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }

    pub(super) fn trim_heap() -> bool {
        // SAFETY: malloc_trim only releases free memory of the allocator that serves this
        // process (glibc's; weft installs no other global allocator).
        unsafe { libc::malloc_trim(0) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn release_code_pages() -> usize {
        0
    }

    pub(super) fn limit_arenas(_arenas: usize) {}

    pub(super) fn trim_heap() -> bool {
        false
    }
}
