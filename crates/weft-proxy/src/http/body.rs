//! Body types of the proxy. Bodies stream frame by frame; nothing here buffers a whole body.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

pin_project! {
    /// A downstream request body on its way upstream, optionally counting its bytes.
    pub struct RequestBody {
        #[pin]
        inner: Incoming,
        counter: Option<Arc<AtomicU64>>,
    }
}

impl RequestBody {
    /// Wraps `inner`; bytes are added to `counter` when given.
    pub fn new(inner: Incoming, counter: Option<Arc<AtomicU64>>) -> RequestBody {
        RequestBody { inner, counter }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let (Some(counter), Some(Ok(f))) = (this.counter.as_ref(), frame.as_ref()) {
            if let Some(data) = f.data_ref() {
                counter.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Called once when a response body ends: `complete` is false when it was dropped early
/// (client gone, upstream reset).
pub trait OnEnd: Send + Sync {
    fn on_end(self: Box<Self>, bytes: u64, complete: bool);
}

pin_project! {
    #[project = InnerProj]
    enum Inner {
        Empty,
        Full { data: Option<Bytes> },
        Upstream { #[pin] body: Incoming },
    }
}

pin_project! {
    /// A response body sent downstream: local (empty or a fixed payload) or streamed from
    /// upstream, with an end-of-stream hook that returns pooled connections and writes
    /// access logs.
    pub struct ResponseBody {
        #[pin]
        inner: Inner,
        bytes: u64,
        on_end: Option<Box<dyn OnEnd>>,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // hyper never polls a body that says it has ended (a 204, `content-length: 0`):
            // such a body still ended cleanly.
            let complete = match &*this.inner {
                Inner::Empty => true,
                Inner::Full { data } => data.is_none(),
                Inner::Upstream { body } => body.is_end_stream(),
            };
            if let Some(hook) = this.on_end.take() {
                hook.on_end(*this.bytes, complete);
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
        }
    }

    /// A body streamed from upstream.
    pub fn upstream(body: Incoming) -> ResponseBody {
        ResponseBody {
            inner: Inner::Upstream { body },
            bytes: 0,
            on_end: None,
        }
    }

    /// Sets the end-of-stream hook. An empty body runs it at the first poll or at drop.
    pub fn with_on_end(mut self, hook: Box<dyn OnEnd>) -> ResponseBody {
        self.on_end = Some(hook);
        self
    }

    fn finish(on_end: &mut Option<Box<dyn OnEnd>>, bytes: u64) {
        if let Some(hook) = on_end.take() {
            hook.on_end(bytes, true);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let frame = match this.inner.project() {
            InnerProj::Empty => None,
            InnerProj::Full { data } => data.take().map(|d| Ok(Frame::data(d))),
            InnerProj::Upstream { mut body } => {
                let frame = ready!(body.as_mut().poll_frame(cx));
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
            Inner::Upstream { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Inner::Upstream { body } => body.size_hint(),
        }
    }
}
