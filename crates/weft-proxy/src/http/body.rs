//! Body types of the proxy. Bodies stream frame by frame; nothing here buffers a whole body.

use super::h1server::DownstreamBody;
use crate::flags::ResponseFlags;
use crate::upstream::pool::UpstreamBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Request bodies kept for a retry are buffered up to this many bytes (Envoy's default
/// `per_request_buffer_limit_bytes`); a longer body is never replayed, not even in part.
pub const RETRY_BUFFER_LIMIT: usize = 1 << 20;

/// Set once the downstream request body has ended (for `request_timeout`).
#[derive(Debug)]
pub struct BodyDone {
    done: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
    /// When the body ended (the route timeout counts from here, as in Envoy); for a flag
    /// made set, `base` is that time and this stays empty (setting a `OnceLock`, even at
    /// construction, runs its one-time initialisation: ~80 instructions per request).
    at: std::sync::OnceLock<tokio::time::Instant>,
    /// Made set ([`BodyDone::ended`]): the body ended at `base`.
    born_done: bool,
    /// When the last frame arrived, in ms after `base` (stream idle timers reset on it).
    last_ms: std::sync::atomic::AtomicU64,
    base: tokio::time::Instant,
}

impl BodyDone {
    /// A flag for a body still arriving at `now`.
    pub fn new(now: tokio::time::Instant) -> BodyDone {
        BodyDone {
            done: Default::default(),
            notify: Default::default(),
            at: Default::default(),
            born_done: false,
            last_ms: Default::default(),
            base: now,
        }
    }

    /// A flag that is already set (bodyless requests), the body having ended at `now`.
    pub fn ended(now: tokio::time::Instant) -> BodyDone {
        BodyDone {
            done: std::sync::atomic::AtomicBool::new(true),
            notify: Default::default(),
            at: std::sync::OnceLock::new(),
            born_done: true,
            last_ms: Default::default(),
            base: now,
        }
    }

    fn set(&self) {
        let _ = self.at.set(tokio::time::Instant::now());
        self.done.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Notes that a frame arrived.
    fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When the last request-body frame arrived (creation time before any did).
    pub fn last_activity(&self) -> tokio::time::Instant {
        self.base + std::time::Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// When the body ended, if it has.
    pub fn ended_at(&self) -> Option<tokio::time::Instant> {
        if self.born_done {
            return Some(self.base);
        }
        self.at.get().copied()
    }

    /// Resolves when the body has ended.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_done() {
                return;
            }
            notified.await;
        }
    }
}

fn unreachable_shared() -> Arc<SharedBody> {
    unreachable!("into_shared is only called on downstream bodies")
}

/// A frame kept for replay.
#[derive(Debug, Clone)]
enum Kept {
    Data(Bytes),
    Trailers(http::HeaderMap),
}

impl Kept {
    fn frame(&self) -> Frame<Bytes> {
        match self {
            Kept::Data(d) => Frame::data(d.clone()),
            Kept::Trailers(t) => Frame::trailers(t.clone()),
        }
    }
}

#[derive(Debug)]
struct SourceState {
    inner: DownstreamBody,
    kept: Vec<Kept>,
    kept_bytes: usize,
    /// Frames pulled from the downstream so far.
    pulled: usize,
    /// The body outgrew the buffer: kept frames were dropped and nothing can be replayed.
    overflowed: bool,
    ended: bool,
    /// Followers (mirrors) waiting for the leader to pull the next frame.
    waiters: Vec<std::task::Waker>,
    /// Leases that can pull from the client: attempt bodies, and retry owners that can
    /// start another attempt ([`SharedBody::owner`]).
    leaders: usize,
    /// The last leader went before the body ended: nobody will pull again, so followers
    /// fail instead of waiting, and the client's body has been let go.
    abandoned: bool,
}

/// A downstream body shared by the attempts of one request: frames are read from the client
/// once and kept (up to [`RETRY_BUFFER_LIMIT`]) so a retry can send them again.
#[derive(Debug)]
pub struct SharedBody {
    state: std::sync::Mutex<SourceState>,
    counter: Option<Arc<AtomicU64>>,
    done: Arc<BodyDone>,
    hint: SizeHint,
    limit: usize,
    /// Told when the body is abandoned, for followers not polling it (a mirror whose
    /// upstream is not reading).
    gone: tokio::sync::Notify,
}

impl SharedBody {
    /// Wraps a downstream body for replay.
    pub fn new(
        inner: DownstreamBody,
        counter: Option<Arc<AtomicU64>>,
        done: Arc<BodyDone>,
        limit: usize,
    ) -> Arc<SharedBody> {
        Arc::new(SharedBody {
            hint: inner.size_hint(),
            state: std::sync::Mutex::new(SourceState {
                inner,
                kept: Vec::new(),
                kept_bytes: 0,
                pulled: 0,
                overflowed: false,
                ended: false,
                waiters: Vec::new(),
                leaders: 0,
                abandoned: false,
            }),
            counter,
            done,
            limit,
            gone: tokio::sync::Notify::new(),
        })
    }

    /// Resolves once the body is abandoned (never, if it ends or a retry reads it).
    pub async fn abandoned(&self) {
        loop {
            // Registered before the check: `notify_waiters` reaches futures created earlier.
            let notified = self.gone.notified();
            if self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .abandoned
            {
                return;
            }
            notified.await;
        }
    }

    /// Whether a new attempt could send the whole body again.
    pub fn replayable(&self) -> bool {
        !self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overflowed
    }

    /// A body for one attempt, starting from the first byte.
    pub fn attempt(self: &Arc<Self>) -> RequestBody {
        RequestBody {
            kind: Kind::Shared {
                lease: Arc::new(self.lease(true)),
                pos: 0,
            },
        }
    }

    /// A copy that only reads what attempts have already read (a mirror): it never pulls
    /// from the client itself, so it can neither delay nor starve the original request.
    /// Once no attempt and no [`owner`](Self::owner) is left to pull the rest, it fails
    /// (its upstream request is reset, never ended short).
    pub fn follower(self: &Arc<Self>) -> RequestBody {
        RequestBody {
            kind: Kind::Shared {
                lease: Arc::new(self.lease(false)),
                pos: 0,
            },
        }
    }

    /// A lease for whoever may start another attempt (a retry): while it lives, the body
    /// is not abandoned between one attempt and the next.
    pub fn owner(self: &Arc<Self>) -> BodyLease {
        self.lease(true)
    }

    fn lease(self: &Arc<Self>, leader: bool) -> BodyLease {
        if leader {
            self.state.lock().unwrap_or_else(|e| e.into_inner()).leaders += 1;
        }
        BodyLease {
            source: self.clone(),
            leader,
        }
    }

    /// A leader went. If it was the last and the body has not ended, nobody will read the
    /// client any more: the client's body is dropped now (the HTTP/1.1 connection gets its
    /// read side back and can close, rather than waiting for a mirror's timeout) and
    /// waiting followers are woken to fail.
    fn release(&self) {
        let (inner, waiters) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.leaders -= 1;
            if st.leaders > 0 || st.ended || st.abandoned {
                return;
            }
            st.abandoned = true;
            (
                std::mem::replace(&mut st.inner, DownstreamBody::Empty),
                std::mem::take(&mut st.waiters),
            )
        };
        // Outside the lock: dropping an HTTP/1.1 body hands its reader back.
        drop(inner);
        for w in waiters {
            w.wake();
        }
        self.gone.notify_waiters();
    }

    fn poll_at(
        &self,
        pos: &mut usize,
        follower: bool,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.abandoned {
            // Only followers are left: the rest will never come, and what was kept is of no
            // use to an upstream that must not see the body end.
            return Poll::Ready(Some(Err(BodyAbandoned.into())));
        }
        if !st.overflowed && *pos < st.kept.len() {
            let f = st.kept[*pos].frame();
            *pos += 1;
            return Poll::Ready(Some(Ok(f)));
        }
        if *pos < st.pulled {
            // Another attempt read frames that were not kept: never send a partial body.
            return Poll::Ready(Some(Err("request body exceeded the retry buffer".into())));
        }
        if st.ended {
            return Poll::Ready(None);
        }
        if follower {
            st.waiters.push(cx.waker().clone());
            return Poll::Pending;
        }
        let frame = ready!(Pin::new(&mut st.inner).poll_frame(cx));
        for w in st.waiters.drain(..) {
            w.wake();
        }
        match frame {
            None => {
                st.ended = true;
                self.done.set();
                Poll::Ready(None)
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            Some(Ok(f)) => {
                st.pulled += 1;
                *pos += 1;
                let len = f.data_ref().map_or(0, |d| d.len());
                if let Some(c) = &self.counter {
                    c.fetch_add(len as u64, Ordering::Relaxed);
                }
                self.done.touch();
                if !st.overflowed {
                    st.kept_bytes += len;
                    if st.kept_bytes > self.limit {
                        st.overflowed = true;
                        st.kept = Vec::new();
                    } else if let Some(d) = f.data_ref() {
                        st.kept.push(Kept::Data(d.clone()));
                    } else if let Some(t) = f.trailers_ref() {
                        st.kept.push(Kept::Trailers(t.clone()));
                    }
                }
                if st.inner.is_end_stream() {
                    st.ended = true;
                    self.done.set();
                }
                Poll::Ready(Some(Ok(f)))
            }
        }
    }
}

/// The error a mirror's body ends with when the original request stopped reading the
/// client's body before its end.
#[derive(Debug, thiserror::Error)]
#[error("request body abandoned: the original request stopped reading it")]
pub struct BodyAbandoned;

/// A reference to a [`SharedBody`]. A leader's lease (an attempt's, or a retry owner's)
/// keeps the body readable for followers; the last one to go abandons an unfinished body.
#[derive(Debug)]
pub struct BodyLease {
    source: Arc<SharedBody>,
    leader: bool,
}

impl BodyLease {
    /// The shared body.
    pub fn body(&self) -> &Arc<SharedBody> {
        &self.source
    }
}

impl Drop for BodyLease {
    fn drop(&mut self) {
        if self.leader {
            self.source.release();
        }
    }
}

#[derive(Debug)]
enum Kind {
    Empty,
    Direct {
        inner: DownstreamBody,
        counter: Option<Arc<AtomicU64>>,
        done: Option<Arc<BodyDone>>,
    },
    Shared {
        // Behind an `Arc` of its own (one allocation per attempt or mirror): the drop glue
        // of every `RequestBody` stays one reference-count decrement, as when this was the
        // `Arc<SharedBody>` itself. Inline, the lease's `Drop` grew the request path's
        // functions past LLVM's inlining thresholds (+50–60 Ir per request, with no
        // shared body at all).
        lease: Arc<BodyLease>,
        pos: usize,
    },
}

/// A downstream request body on its way upstream: streamed straight through (optionally
/// counting its bytes), read through a [`SharedBody`] that keeps it for retries, or empty
/// (replayed bodyless requests).
#[derive(Debug)]
pub struct RequestBody {
    kind: Kind,
}

impl RequestBody {
    /// Wraps `inner`; bytes are added to `counter` when given, `done` is set at its end.
    pub fn new(
        inner: DownstreamBody,
        counter: Option<Arc<AtomicU64>>,
        done: Option<Arc<BodyDone>>,
    ) -> RequestBody {
        RequestBody {
            kind: Kind::Direct {
                inner,
                counter,
                done,
            },
        }
    }

    /// No body.
    pub fn empty() -> RequestBody {
        RequestBody { kind: Kind::Empty }
    }

    /// Sets `done` when this (downstream) body ends.
    pub fn with_done(mut self, flag: Arc<BodyDone>) -> RequestBody {
        if let Kind::Direct { done, .. } = &mut self.kind {
            *done = Some(flag);
        }
        self
    }

    /// Moves a downstream body behind a [`SharedBody`] so attempts can replay it.
    pub fn into_shared(self, done: Arc<BodyDone>, limit: usize) -> Arc<SharedBody> {
        match self.kind {
            Kind::Direct { inner, counter, .. } => SharedBody::new(inner, counter, done, limit),
            // Only downstream bodies are shared; anything else is already replayable.
            _ => unreachable_shared(),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Shared { lease, pos } => lease.source.poll_at(pos, !lease.leader, cx),
            Kind::Direct {
                inner,
                counter,
                done,
            } => {
                let frame = ready!(Pin::new(&mut *inner).poll_frame(cx));
                if let (Some(counter), Some(Ok(f))) = (counter.as_ref(), frame.as_ref())
                    && let Some(data) = f.data_ref()
                {
                    counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                if let Some(d) = done {
                    d.touch();
                    if frame.is_none() || inner.is_end_stream() {
                        d.set();
                    }
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Direct { inner, .. } => inner.is_end_stream(),
            Kind::Shared { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Direct { inner, .. } => inner.size_hint(),
            Kind::Shared { lease, .. } => lease.source.hint,
        }
    }
}

/// Called once when a response body ends: `complete` is false when it was dropped early
/// (client gone, upstream reset, a timeout); `flags` says which timeout ended it, if one did.
pub trait OnEnd: Send + Sync {
    fn on_end(self: Box<Self>, bytes: u64, complete: bool, flags: ResponseFlags);
}

/// Timers that keep running while a response body streams: the route timeout covers the
/// whole response (Envoy: "until the upstream response has been completely processed"),
/// and idle timeouts fire when no frame arrives for a while.
#[derive(Debug)]
pub struct BodyTimers {
    /// An absolute deadline and the flag it sets.
    deadline: Option<(Instant, ResponseFlags)>,
    /// An idle limit (counted from the last frame) and the flag it sets.
    idle: Option<(Duration, ResponseFlags)>,
    /// When the last frame arrived (creation before any did).
    last_activity: Instant,
    /// One timer at the earlier of the two limits, armed only the first time the body has
    /// to wait: most responses arrive whole with their head, and registering timers in
    /// tokio's wheel for them cost ≈900 instructions per request.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl BodyTimers {
    /// Timers from an optional deadline and an optional idle limit, the body starting `now`.
    pub fn new(
        deadline: Option<(Instant, ResponseFlags)>,
        idle: Option<(Duration, ResponseFlags)>,
        now: Instant,
    ) -> Option<BodyTimers> {
        if deadline.is_none() && idle.is_none() {
            return None;
        }
        Some(BodyTimers {
            deadline,
            idle,
            last_activity: now,
            sleep: None,
        })
    }

    /// The limit that falls first (the deadline when both fall at once).
    fn next(&self) -> Option<(Instant, ResponseFlags)> {
        let idle = self.idle.map(|(d, f)| (self.last_activity + d, f));
        match (self.deadline, idle) {
            (Some(dl), Some(il)) => Some(if dl.0 <= il.0 { dl } else { il }),
            (dl, il) => dl.or(il),
        }
    }

    fn poll_fired(&mut self, cx: &mut Context<'_>) -> Option<ResponseFlags> {
        let (at, flag) = self.next()?;
        let sleep = match self.sleep.as_mut() {
            Some(sleep) => {
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return None;
        }
        // Both may have passed by now: the deadline's flag wins, as it is checked first.
        match self.deadline {
            Some((dl, dl_flag)) if Instant::now() >= dl => Some(dl_flag),
            _ => Some(flag),
        }
    }

    fn activity(&mut self) {
        if self.idle.is_some() {
            self.last_activity = Instant::now();
        }
    }
}

/// The error a response body ends with when one of its timers fires (the downstream stream
/// is reset, as Envoy does once headers have been sent).
#[derive(Debug, thiserror::Error)]
#[error("response timed out ({0})")]
pub struct BodyTimeout(pub ResponseFlags);

/// The error type of [`ResponseBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    #[project = InnerProj]
    enum Inner {
        Empty,
        Full { data: Option<Bytes> },
        Upstream { #[pin] body: UpstreamBody, timers: Option<Box<BodyTimers>> },
    }
}

pin_project! {
    /// A response body sent downstream: local (empty or a fixed payload) or streamed from
    /// upstream, with an end-of-stream hook that updates counters and writes
    /// access logs.
    pub struct ResponseBody {
        #[pin]
        inner: Inner,
        bytes: u64,
        on_end: Option<Box<dyn OnEnd>>,
        // Set when a timer ended the body.
        timed_out: ResponseFlags,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // hyper never polls a body that says it has ended (a 204, `content-length: 0`):
            // such a body still ended cleanly.
            let complete = match &*this.inner {
                Inner::Empty => true,
                Inner::Full { data } => data.is_none(),
                Inner::Upstream { body, .. } => body.is_end_stream() && this.timed_out.is_empty(),
            };
            if let Some(hook) = this.on_end.take() {
                hook.on_end(*this.bytes, complete, *this.timed_out);
            }
        }
    }
}

impl ResponseBody {
    /// No body.
    pub fn empty() -> ResponseBody {
        ResponseBody {
            inner: Inner::Empty,
            bytes: 0,
            on_end: None,
            timed_out: ResponseFlags::default(),
        }
    }

    /// A fixed payload.
    pub fn full(data: impl Into<Bytes>) -> ResponseBody {
        let data = data.into();
        if data.is_empty() {
            return ResponseBody::empty();
        }
        ResponseBody {
            inner: Inner::Full { data: Some(data) },
            bytes: 0,
            on_end: None,
            timed_out: ResponseFlags::default(),
        }
    }

    /// A body streamed from upstream.
    pub fn upstream(body: UpstreamBody, timers: Option<BodyTimers>) -> ResponseBody {
        ResponseBody {
            inner: Inner::Upstream {
                body,
                timers: timers.map(Box::new),
            },
            bytes: 0,
            on_end: None,
            timed_out: ResponseFlags::default(),
        }
    }

    /// Sets the end-of-stream hook. An empty body runs it at the first poll or at drop.
    pub fn with_on_end(mut self, hook: Box<dyn OnEnd>) -> ResponseBody {
        self.on_end = Some(hook);
        self
    }

    fn finish(on_end: &mut Option<Box<dyn OnEnd>>, bytes: u64) {
        if let Some(hook) = on_end.take() {
            hook.on_end(bytes, true, ResponseFlags::default());
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = match this.inner.project() {
            InnerProj::Empty => None,
            InnerProj::Full { data } => data.take().map(|d| Ok(Frame::data(d))),
            InnerProj::Upstream { mut body, timers } => {
                if !this.timed_out.is_empty() {
                    return Poll::Ready(None);
                }
                let frame = match body.as_mut().poll_frame(cx) {
                    Poll::Ready(f) => {
                        // The timers matter only while more is to come: the last frame
                        // (most responses' only one) needs no clock reading.
                        if let Some(t) = timers.as_mut()
                            && f.is_some()
                            && !body.is_end_stream()
                        {
                            t.activity();
                        }
                        f
                    }
                    Poll::Pending => {
                        if let Some(flag) = timers.as_mut().and_then(|t| t.poll_fired(cx)) {
                            *this.timed_out = flag;
                            return Poll::Ready(Some(Err(Box::new(BodyTimeout(flag)))));
                        }
                        return Poll::Pending;
                    }
                };
                if let Some(Ok(f)) = &frame {
                    if let Some(d) = f.data_ref() {
                        *this.bytes += d.len() as u64;
                    }
                    // Finish as soon as the last frame is out, so a pooled connection is
                    // returned before the client asks for the next request.
                    if body.is_end_stream() {
                        ResponseBody::finish(this.on_end, *this.bytes);
                    }
                }
                if frame.is_none() {
                    ResponseBody::finish(this.on_end, *this.bytes);
                }
                return Poll::Ready(frame);
            }
        };
        if let Some(Ok(f)) = &frame {
            *this.bytes += f.data_ref().map_or(0, |d| d.len() as u64);
        }
        if frame.is_none() {
            ResponseBody::finish(this.on_end, *this.bytes);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Full { data } => data.is_none(),
            Inner::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Inner::Upstream { body, .. } => body.size_hint(),
        }
    }
}
