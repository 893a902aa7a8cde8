//! Where access-log lines go: an in-memory buffer per destination, written by that
//! destination's own flusher thread, so the request path never makes a write syscall nor
//! waits on a slow reader.
//!
//! Writing each line from the worker thread cost a `write` per request and, worse, stalled
//! every connection of that worker when the destination stopped reading (a full stdout pipe
//! behind a busy container log driver). Envoy batches the same way (its access-log flush
//! thread). A line waits at most [`FLUSH_INTERVAL`] (less once [`FLUSH_SIZE`] bytes are
//! waiting); [`flush_all`] writes everything now (the proxy calls it when it has drained).
//! One thread per destination, so a stuck one (stdout nobody reads) delays no other. Past
//! [`MAX_BUFFERED`] bytes waiting, lines are dropped and counted, and the count is reported
//! when the destination accepts writes again: memory stays bounded.

use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// How long a line may wait before the flusher writes it.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Bytes waiting that make the flusher write at once.
pub const FLUSH_SIZE: usize = 64 * 1024;

/// Bytes that may wait per destination; lines past it are dropped (and counted).
pub const MAX_BUFFERED: usize = 4 * 1024 * 1024;

/// A buffer kept for reuse after a flush when no larger than this (a burst's larger one is
/// freed).
const KEEP_CAPACITY: usize = 256 * 1024;

/// A destination as loggers hold it. Dropping the last one lets its flusher write what is
/// left and end.
#[derive(Debug)]
pub struct Sink {
    shared: Arc<Shared>,
}

/// What a destination's loggers and its flusher thread share.
#[derive(Debug)]
struct Shared {
    name: String,
    out: Output,
    state: Mutex<State>,
    wake: Condvar,
    /// Held while a chunk is taken and written, so chunks reach the destination in order.
    io: Mutex<()>,
    max_buffered: usize,
}

#[derive(Debug)]
enum Output {
    Stdout,
    Stderr,
    File(std::fs::File),
}

#[derive(Debug, Default)]
struct State {
    bytes: Vec<u8>,
    dropped: u64,
    /// Lines are waiting: write them within [`FLUSH_INTERVAL`].
    pending: bool,
    /// [`FLUSH_SIZE`] is reached: write now.
    urgent: bool,
    /// No logger is left: write what is left and end.
    closed: bool,
}

/// A destination as the registry knows it.
#[derive(Debug)]
struct Entry {
    path: String,
    /// Loggers open the same path through this while any holds it.
    sink: Weak<Sink>,
    /// [`flush_all`] writes through this until the flusher has ended, also after the last
    /// logger is gone: the process may be about to exit before that flusher gets to run.
    shared: Weak<Shared>,
}

/// Destinations by path, so loggers naming the same one share it.
static SINKS: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn sinks() -> MutexGuard<'static, Vec<Entry>> {
    SINKS.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sink {
    /// The destination for `path` (`/dev/stdout` and `/dev/stderr` are the process's own),
    /// shared with loggers already writing there; a file is created if missing and appended to.
    pub fn open(path: &str) -> std::io::Result<Arc<Sink>> {
        Self::shared(path, || {
            Ok(match path {
                "/dev/stdout" => Output::Stdout,
                "/dev/stderr" => Output::Stderr,
                _ => Output::File(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)?,
                ),
            })
        })
    }

    /// The process's stdout.
    pub fn stdout() -> Arc<Sink> {
        let Ok(s) = Self::shared::<std::convert::Infallible>("/dev/stdout", || Ok(Output::Stdout));
        s
    }

    fn shared<E>(path: &str, make: impl FnOnce() -> Result<Output, E>) -> Result<Arc<Sink>, E> {
        let mut all = sinks();
        all.retain(|e| e.shared.strong_count() > 0);
        if let Some(s) = all
            .iter()
            .filter(|e| e.path == path)
            .find_map(|e| e.sink.upgrade())
        {
            return Ok(s);
        }
        let sink = Arc::new(Sink::new(path, make()?, MAX_BUFFERED));
        let shared = sink.shared.clone();
        // A plain thread: it blocks in writes, which must not hold a runtime worker. It
        // sleeps until a line is waiting.
        if let Err(e) = std::thread::Builder::new()
            .name("weft-accesslog".into())
            .spawn(move || shared.run())
        {
            tracing::warn!(
                destination = path,
                error = %e,
                "access log flusher did not start; lines are written when the proxy drains"
            );
        }
        all.push(Entry {
            path: path.to_owned(),
            sink: Arc::downgrade(&sink),
            shared: Arc::downgrade(&sink.shared),
        });
        Ok(sink)
    }

    /// A destination without a flusher thread (tests flush it by hand).
    fn new(name: &str, out: Output, max_buffered: usize) -> Sink {
        Sink {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                out,
                state: Mutex::default(),
                wake: Condvar::new(),
                io: Mutex::new(()),
                max_buffered,
            }),
        }
    }

    /// Queues one line (with its newline) for writing.
    pub fn append(&self, line: &[u8]) {
        let s = &self.shared;
        let mut st = s.lock();
        if st.bytes.len() + line.len() > s.max_buffered {
            st.dropped += 1;
            return;
        }
        st.bytes.extend_from_slice(line);
        let urgent = st.bytes.len() >= FLUSH_SIZE;
        // Wake the flusher for the first line of a batch, and when the batch is big.
        let wake = !st.pending || (urgent && !st.urgent);
        st.pending = true;
        st.urgent |= urgent;
        drop(st);
        if wake {
            s.wake.notify_one();
        }
    }

    /// Writes what is waiting now ([`flush_all`] is what the proxy calls).
    #[cfg(test)]
    fn flush(&self) {
        self.shared.flush();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The flusher: batches lines for up to [`FLUSH_INTERVAL`], writes them, and ends once
    /// the last logger is gone and everything is written.
    fn run(&self) {
        let mut st = self.lock();
        loop {
            while !st.pending && !st.closed {
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            // Lines arriving in the next interval go out in the same write.
            let deadline = Instant::now() + FLUSH_INTERVAL;
            while !st.urgent && !st.closed {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st = self
                    .wake
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            st.pending = false;
            st.urgent = false;
            let closed = st.closed;
            drop(st);
            self.flush();
            if closed {
                return;
            }
            st = self.lock();
        }
    }

    /// Writes what is waiting. Errors are dropped: logging never fails a request.
    fn flush(&self) {
        let _io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let (mut chunk, dropped) = {
            let mut st = self.lock();
            (
                std::mem::take(&mut st.bytes),
                std::mem::take(&mut st.dropped),
            )
        };
        if dropped > 0 {
            tracing::warn!(
                destination = %self.name,
                dropped,
                "access log lines dropped: the destination did not keep up"
            );
        }
        if chunk.is_empty() {
            return;
        }
        let _ = match &self.out {
            Output::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(&chunk).and_then(|()| o.flush())
            }
            Output::Stderr => std::io::stderr().lock().write_all(&chunk),
            Output::File(f) => (&*f).write_all(&chunk),
        };
        if chunk.capacity() <= KEEP_CAPACITY {
            chunk.clear();
            let mut st = self.lock();
            if st.bytes.is_empty() {
                st.bytes = chunk;
            }
        }
    }
}

/// Writes every destination's waiting lines now, including those of a destination whose
/// last logger is gone and whose flusher has not finished yet (their lines were logged as
/// the runtime shut down, cutting the connections still open).
pub fn flush_all() {
    let all: Vec<Arc<Shared>> = sinks().iter().filter_map(|e| e.shared.upgrade()).collect();
    for s in all {
        s.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &std::path::Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "not within 10 s: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn lines_wait_then_arrive_in_order_and_one_path_is_one_destination() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.log");
        let p = path.to_str().expect("utf-8 path");
        let a = Sink::open(p).expect("open");
        let b = Sink::open(p).expect("open again");
        assert!(Arc::ptr_eq(&a, &b), "the same path shares one destination");
        a.append(b"one\n");
        b.append(b"two\n");
        // Written by the flusher within its interval, not by `append`.
        eventually("first batch", || read(&path) == "one\ntwo\n");
        a.append(b"three\n");
        flush_all();
        assert_eq!(read(&path), "one\ntwo\nthree\n");
        // Dropping the last logger still writes what is left.
        b.append(b"four\n");
        drop((a, b));
        eventually("last line", || read(&path) == "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn flush_all_writes_a_closed_destination_its_flusher_has_not_written_yet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.log");
        let file = std::fs::File::create(&path).expect("create");
        let s = Arc::new(Sink::new("c.log", Output::File(file), MAX_BUFFERED));
        // What the flusher thread holds; this one has not been scheduled since it was woken.
        let flusher = s.shared.clone();
        sinks().push(Entry {
            path: "c.log".to_owned(),
            sink: Arc::downgrade(&s),
            shared: Arc::downgrade(&s.shared),
        });
        s.append(b"cut at exit\n");
        drop(s);
        assert!(flusher.lock().closed);
        // The process is exiting: what it calls last must write the line.
        flush_all();
        assert_eq!(read(&path), "cut at exit\n");
    }

    #[test]
    fn past_the_bound_lines_are_dropped_not_buffered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("b.log");
        let file = std::fs::File::create(&path).expect("create");
        let s = Sink::new("b.log", Output::File(file), 10);
        s.append(b"12345\n");
        s.append(b"67890\n"); // 12 bytes waiting would pass 10: dropped
        s.append(b"abc\n");
        assert_eq!(s.shared.lock().dropped, 1);
        s.flush();
        assert_eq!(read(&path), "12345\nabc\n");
    }
}
