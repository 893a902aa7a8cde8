//! HTTP/1.1 to upstreams, run inline in the downstream connection's task.
//!
//! hyper's client runs each connection in a task of its own and hands requests and response
//! bodies across channels; for a proxy that is a third of the work per request. Here the
//! task that serves the downstream request writes the request head straight onto the pooled
//! `TcpStream`, parses the response head with `httparse`, and cuts response body frames out
//! of the connection's read buffer without copying them (`BytesMut::split_to().freeze()`).
//!
//! Framing follows RFC 9112 §6: no body for `HEAD`, 1xx, 204 and 304; `Transfer-Encoding:
//! chunked`; `Content-Length`; otherwise the body runs until the upstream closes. A
//! connection goes back to its endpoint's idle list only when the response ended cleanly,
//! the request was written whole, and nothing unexpected followed the response.

use crate::http::body::{BoxError, RequestBody};
use crate::http1::{
    BodyEncoder, COALESCE, Chunk, Framing, HeadFields, content_length, is_keep_alive, put_fields,
    read_connection,
};
use crate::upstream::Endpoint;
use crate::upstream::breaker::Slot;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::request::Parts;
use http::{Method, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::metrics::gauge::Gauge;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

/// The longest response head Envoy 1.40 reads by default (80 KiB, measured against it: a
/// longer head is a protocol error, `502`).
const MAX_HEAD: usize = 80 * 1024;
/// Envoy's default `max_headers_count`.
const MAX_HEADERS: usize = 100;
/// First read size; a read that fills the buffer doubles the next, up to [`MAX_READ`].
const MIN_READ: usize = 8 * 1024;
const MAX_READ: usize = 256 * 1024;

/// A request header map up to this capacity is kept for a later response head.
const SPARE_HEADERS_MAX: usize = 32;

thread_local! {
    /// A request head's header map, emptied, for the next response head parsed on this
    /// thread that cannot reuse its own request's (a retry policy keeps that for a retry):
    /// without it every such response allocated a map (2 allocations, ~300 instructions).
    static SPARE_HEADERS: std::cell::Cell<Option<HeaderMap>> = const { std::cell::Cell::new(None) };
}

/// Keeps `map` (emptied) for a later response head on this thread (one at most; a large
/// map is dropped).
pub(crate) fn recycle_headers(mut map: HeaderMap) {
    if map.capacity() == 0 || map.capacity() > SPARE_HEADERS_MAX {
        return;
    }
    map.clear();
    SPARE_HEADERS.set(Some(map));
}

/// The kept map, or a new one. Out of line: inlined, it changed how the response path
/// around it was inlined (+120 instructions per request without a retry policy).
#[inline(never)]
fn spare_headers() -> HeaderMap {
    SPARE_HEADERS.take().unwrap_or_default()
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// The upstream closed the connection before the message ended.
    #[error("connection closed before message completed")]
    Closed,
    #[error("upstream i/o: {0}")]
    Io(#[from] io::Error),
    /// The upstream's bytes are not valid HTTP/1.1 (or exceed our limits).
    #[error("upstream protocol error: {0}")]
    Protocol(&'static str),
    /// The downstream request body failed while it was being sent.
    #[error("request body: {0}")]
    Body(BoxError),
}

/// Counts an open connection in `upstream_cx_active` until dropped.
#[derive(Debug)]
struct ActiveCx(Gauge);

impl Drop for ActiveCx {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// An open HTTP/1.1 connection to an endpoint, with its read buffer and its circuit-breaker
/// connection slot (freed when the connection closes).
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    rbuf: BytesMut,
    read_size: usize,
    /// The request head and small body frames waiting to be written (kept for reuse).
    wbuf: Vec<u8>,
    wpos: usize,
    /// Response header names and value ranges while a head is being parsed (kept for reuse).
    scratch: HeadFields,
    /// Requests this connection has carried.
    pub(super) served: u32,
    /// Our end of it (`%UPSTREAM_LOCAL_ADDRESS%`), read once at connect.
    local: Option<SocketAddr>,
    slot: Slot,
    _active: ActiveCx,
}

impl Conn {
    /// Wraps a freshly connected stream; counts it in `active` until dropped.
    pub(super) fn new(io: TcpStream, slot: Slot, active: &Gauge) -> Box<Conn> {
        active.inc();
        let local = io.local_addr().ok();
        Box::new(Conn {
            local,
            io,
            rbuf: BytesMut::new(),
            read_size: MIN_READ,
            wbuf: Vec::new(),
            wpos: 0,
            scratch: HeadFields::default(),
            served: 0,
            slot,
            _active: ActiveCx(active.clone()),
        })
    }

    /// Whether an idle connection can carry another request: not if the upstream closed it
    /// or sent bytes nobody asked for. Asks tokio's cached readiness first (no waker, no
    /// syscall), so a quiet connection costs nothing; only a readable one is read.
    pub(super) fn idle_usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Reads more bytes into `rbuf` (`Ok(0)` at end of stream). Goes through `poll_read`,
    /// which clears tokio's readiness on a short read: the next checkout's
    /// [`Conn::idle_usable`] then needs no syscall.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.rbuf.reserve(self.read_size);
        let room = self.rbuf.capacity() - self.rbuf.len();
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            &mut self.rbuf
        ))?;
        if n == room && self.read_size < MAX_READ {
            self.read_size *= 2;
        }
        Poll::Ready(Ok(n))
    }

    /// Writes what `wbuf` holds from `wpos`.
    fn poll_flush_wbuf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        self.wbuf.clear();
        self.wpos = 0;
        Poll::Ready(Ok(()))
    }
}

/// Where a connection goes back to once its response has ended.
#[derive(Debug)]
pub(super) struct Home {
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) max_requests: Option<u32>,
}

impl Home {
    /// Puts `conn` on the idle list (or closes it once it has served
    /// `max_requests_per_connection`) and wakes requests waiting for a connection.
    fn give_back(&self, mut conn: Box<Conn>) {
        if self.max_requests.is_some_and(|m| conn.served >= m) {
            return;
        }
        // A large response grew the read buffer: an idle connection keeps a small one.
        if conn.read_size > MIN_READ {
            conn.read_size = MIN_READ;
            conn.rbuf = BytesMut::new();
        }
        let freed = conn.slot.breaker().clone();
        self.endpoint.pool.put_idle_h1(conn);
        freed.freed.notify_waiters();
    }
}

/// Streams the request body after the head, framed by `Content-Length` or chunked.
#[derive(Debug)]
struct Writer {
    body: RequestBody,
    enc: BodyEncoder,
    /// A frame was taken from the body: the request can no longer be sent again.
    polled: bool,
}

impl Writer {
    /// Writes the head and body; `Ready(Ok)` once all of it is on the wire.
    fn poll_write(&mut self, conn: &mut Conn, cx: &mut Context<'_>) -> Poll<Result<(), H1Error>> {
        loop {
            // Pull body frames while they are ready, so the head and a small body leave in
            // one write.
            if !self.enc.ended
                && self.enc.data.is_empty()
                && conn.wbuf.len() < COALESCE
                && let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx)
            {
                let frame = match frame {
                    None => None,
                    Some(Err(e)) => {
                        // The body is spent too: sent again, what is left of it (nothing)
                        // would reach the upstream as a complete, empty body.
                        self.polled = true;
                        return Poll::Ready(Err(H1Error::Body(e)));
                    }
                    Some(Ok(f)) => {
                        self.polled = true;
                        Some(f)
                    }
                };
                let at_end = self.body.is_end_stream();
                self.enc
                    .take(frame, at_end, &mut conn.wbuf)
                    .map_err(proto)?;
                continue;
            }
            if conn.wpos < conn.wbuf.len() {
                ready!(conn.poll_flush_wbuf(cx))?;
                continue;
            }
            if !self.enc.data.is_empty() {
                let n = ready!(Pin::new(&mut conn.io).poll_write(cx, &self.enc.data))?;
                if n == 0 {
                    return Poll::Ready(Err(H1Error::Io(io::ErrorKind::WriteZero.into())));
                }
                self.enc.data.advance(n);
                if self.enc.data.is_empty() {
                    self.enc.data_written(&mut conn.wbuf);
                }
                continue;
            }
            if self.enc.ended {
                return Poll::Ready(Ok(()));
            }
            // The body had nothing ready and everything taken so far is written.
            return Poll::Pending;
        }
    }
}

/// Encodes the request head into `wbuf`; returns whether the body goes chunked.
fn encode_head(wbuf: &mut Vec<u8>, head: &Parts, body: &RequestBody) -> bool {
    wbuf.reserve(crate::http1::FIRST_WRITE);
    wbuf.extend_from_slice(head.method.as_str().as_bytes());
    wbuf.push(b' ');
    let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
    wbuf.extend_from_slice(target.as_bytes());
    wbuf.extend_from_slice(b" HTTP/1.1\r\n");
    put_fields(wbuf, &head.headers);
    // Framing as hyper's client chose it: the client's Content-Length when it sent one (the
    // downstream codec has checked it), the body's exact size when known, else chunked.
    let chunked = if body.is_end_stream() || head.headers.contains_key(header::CONTENT_LENGTH) {
        false
    } else if let Some(n) = body.size_hint().exact() {
        crate::http1::put_content_length(wbuf, n);
        false
    } else {
        wbuf.extend_from_slice(b"transfer-encoding: chunked\r\n");
        true
    };
    wbuf.extend_from_slice(b"\r\n");
    chunked
}

/// A failed exchange before response headers.
pub(super) struct Failed {
    pub(super) error: H1Error,
    /// The body, when the connection died before answering and no body frame was taken
    /// (safe to send again on another connection; the head never left the caller).
    pub(super) body: Option<RequestBody>,
}

/// Sends the request (`head` and `body`) on `conn` and returns the response head with a body
/// that streams the rest. The head is only encoded, so it stays with the caller for a retry;
/// `lend_headers`: no retry can follow, so once the response head arrives the request's
/// header map is emptied and reused for the response's (no allocation). `reused`: the
/// connection has served before (a failure before any response byte may just mean the
/// upstream closed it while idle).
pub(super) async fn exchange(
    mut conn: Box<Conn>,
    head: &mut Parts,
    body: RequestBody,
    lend_headers: bool,
    home: Home,
    reused: bool,
) -> Result<Response<H1Body>, Failed> {
    conn.served += 1;
    conn.wbuf.clear();
    conn.wpos = 0;
    let chunked = encode_head(&mut conn.wbuf, head, &body);
    let head_only = head.method == Method::HEAD;
    let is_connect = head.method == Method::CONNECT;
    let mut enc = BodyEncoder::new(chunked, true, None);
    enc.ended = body.is_end_stream();
    let mut writer = Some(Writer {
        body,
        enc,
        polled: false,
    });
    // Whether writing failed (the response may still arrive; the connection is not reused).
    let mut write_failed = false;
    let mut got_bytes = false;
    let fail = |error: H1Error, writer: Option<Writer>, got_bytes: bool| {
        let body = match writer {
            Some(w) if reused && !got_bytes && !w.polled => Some(w.body),
            _ => None,
        };
        Failed { error, body }
    };
    let head = std::future::poll_fn(|cx| {
        loop {
            if let Some(w) = writer.as_mut().filter(|_| !write_failed) {
                match w.poll_write(&mut conn, cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(H1Error::Io(_))) => write_failed = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if !conn.rbuf.is_empty() {
                // Once a response head is here the request can no longer be sent again on
                // another connection.
                let spare = lend_headers.then_some(&mut head.headers);
                match parse_head(&mut conn, head_only, spare)? {
                    Some(Parsed::Informational) => continue,
                    Some(Parsed::Final(resp)) => return Poll::Ready(Ok(resp)),
                    None => {}
                }
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => return Poll::Ready(Err(H1Error::Closed)),
                Ok(_) => got_bytes = true,
                Err(e) => return Poll::Ready(Err(H1Error::Io(e))),
            }
        }
    })
    .await;
    let (parts, framing, keep_alive) = match head {
        Ok(h) => h,
        Err(e) => return Err(fail(e, writer, got_bytes)),
    };
    let written = writer.as_ref().is_some_and(|w| {
        w.enc.ended && w.enc.data.is_empty() && conn.wpos >= conn.wbuf.len() && !write_failed
    });
    let mut body = H1Body {
        local: conn.local,
        conn: Some(conn),
        framing,
        writer: if written || write_failed {
            None
        } else {
            writer.map(Box::new)
        },
        // After a 2xx to CONNECT the upstream may treat the connection as a tunnel
        // (RFC 9112 §6.3): what it sends next is no response to a later request.
        reusable: keep_alive && !write_failed && !is_connect,
        home,
    };
    if body.framing == Framing::Done {
        body.finish();
    }
    Ok(Response::from_parts(parts, body))
}

enum Parsed {
    /// A 1xx was read and dropped.
    Informational,
    Final((http::response::Parts, Framing, bool)),
}

fn proto(what: &'static str) -> H1Error {
    H1Error::Protocol(what)
}

/// Parses a response head from `conn.rbuf` if it is all there; returns the head, the body
/// framing and whether the connection may be kept alive.
fn parse_head(
    conn: &mut Conn,
    head_request: bool,
    spare: Option<&mut HeaderMap>,
) -> Result<Option<Parsed>, H1Error> {
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    // Runs of spaces in the status line are read as one, as Envoy's codec does.
    let status = match httparse::ParserConfig::default()
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .parse_response_with_uninit_headers(&mut res, &conn.rbuf, &mut headers)
    {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(proto("too many headers")),
        Err(_) => return Err(proto("malformed response head")),
    };
    let len = match status {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if conn.rbuf.len() > MAX_HEAD => {
            return Err(proto("response head too large"));
        }
        httparse::Status::Partial => return Ok(None),
    };
    if len > MAX_HEAD {
        return Err(proto("response head too large"));
    }
    let code = res.code.unwrap_or(0);
    let version = if res.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    if (100..200).contains(&code) {
        if code == 101 {
            return Err(proto("unexpected 101 Switching Protocols"));
        }
        conn.rbuf.advance(len);
        return Ok(Some(Parsed::Informational));
    }
    let status = StatusCode::from_u16(code).map_err(|_| proto("invalid status code"))?;
    // The headers that decide framing and reuse are read here, from httparse's slices, so
    // the map needs no lookups afterwards.
    let mut keep_alive = version == Version::HTTP_11;
    let mut close = false;
    let mut length: Option<u64> = None;
    // Transfer-Encoding lines seen, and whether the last one is exactly `chunked`.
    let (mut te_lines, mut te_chunked) = (0, false);
    let base = conn.rbuf.as_ptr() as usize;
    conn.scratch.clear();
    for h in res.headers.iter() {
        let name = conn
            .scratch
            .name(h.name.as_bytes())
            .map_err(|_| proto("header name"))?;
        if name == header::CONTENT_LENGTH {
            content_length(h.value, &mut length).map_err(proto)?;
        } else if name == header::TRANSFER_ENCODING {
            te_lines += 1;
            te_chunked = h.value.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name == header::CONNECTION {
            // The usual line (only `keep-alive` or `close`) is read here and left out.
            if read_connection(h.value, &mut keep_alive, &mut close) {
                continue;
            }
        } else if is_keep_alive(h.name.as_bytes()) {
            continue;
        }
        let start = h.value.as_ptr() as usize - base;
        conn.scratch.push(name, start, start + h.value.len());
    }
    // A 204 that declares a body (Envoy refuses it too): its bytes, arriving later, would
    // be read as the next request's response.
    if status == StatusCode::NO_CONTENT && (te_lines > 0 || length.is_some_and(|n| n > 0)) {
        return Err(proto("204 with a body"));
    }
    let framing =
        if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            Framing::Done
        } else if te_lines > 0 {
            if length.is_some() {
                return Err(proto("both transfer-encoding and content-length"));
            }
            // Only plain chunked, as Envoy: with another coding (`gzip, chunked`) the body
            // would reach the client still encoded and undeclared (Transfer-Encoding is
            // hop-by-hop), and a list is where parsers disagree.
            if te_lines > 1 || !te_chunked {
                return Err(proto("unsupported transfer-encoding"));
            }
            Framing::Chunked(Chunk::Size)
        } else {
            match length {
                Some(0) => Framing::Done,
                Some(n) => Framing::Length(n),
                None => {
                    keep_alive = false;
                    Framing::Eof
                }
            }
        };
    let mut map = spare.map_or_else(spare_headers, std::mem::take);
    map.clear();
    // Room for what the proxy adds downstream (server, x-envoy-upstream-service-time, ...).
    crate::http1::fields_into_map(&mut conn.rbuf, len, &mut conn.scratch, &mut map, 4)
        .map_err(|_| proto("header value"))?;
    let mut resp = Response::new(());
    *resp.status_mut() = status;
    *resp.version_mut() = version;
    *resp.headers_mut() = map;
    let (parts, ()) = resp.into_parts();
    Ok(Some(Parsed::Final((parts, framing, keep_alive && !close))))
}

/// A response body read from an inline HTTP/1.1 connection. While it streams it also
/// finishes sending the request body (an upstream may answer early and keep reading); at a
/// clean end the connection goes back to the pool.
#[derive(Debug)]
pub struct H1Body {
    conn: Option<Box<Conn>>,
    /// The connection's local address (kept: a bodyless response gives the connection
    /// back at once).
    local: Option<SocketAddr>,
    framing: Framing,
    writer: Option<Box<Writer>>,
    reusable: bool,
    home: Home,
}

impl H1Body {
    /// Whether the rest of the body is in the read buffer: a length-framed body is then
    /// cut from it in one frame, without waiting.
    pub(super) fn arrived_whole(&self) -> bool {
        match self.framing {
            Framing::Done => true,
            Framing::Length(left) => self
                .conn
                .as_ref()
                .is_some_and(|c| c.rbuf.len() as u64 >= left),
            _ => false,
        }
    }

    /// Our end of the connection that carried the response.
    pub(super) fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The response ended: the connection goes back to the pool if nothing is amiss (the
    /// request written whole, no bytes beyond the response), else it closes.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        let Some(conn) = self.conn.take() else { return };
        if self.reusable && self.writer.is_none() && conn.rbuf.is_empty() {
            self.home.give_back(conn);
        }
        self.writer = None;
    }

    fn fail(&mut self, e: H1Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.framing = Framing::Failed;
        self.conn = None;
        self.writer = None;
        Poll::Ready(Some(Err(Box::new(e))))
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            if let Some(w) = this.writer.as_mut() {
                match w.poll_write(conn, cx) {
                    Poll::Ready(Ok(())) => this.writer = None,
                    // The upstream stopped reading: its response may still be whole.
                    Poll::Ready(Err(H1Error::Io(_))) => {
                        this.writer = None;
                        this.reusable = false;
                    }
                    Poll::Ready(Err(e)) => return this.fail(e),
                    Poll::Pending => {}
                }
            }
            match this.framing {
                Framing::Done | Framing::Failed => return Poll::Ready(None),
                Framing::Length(left) if !conn.rbuf.is_empty() => {
                    let data = crate::http1::cut(&mut conn.rbuf, left);
                    let left = left - data.len() as u64;
                    this.framing = Framing::Length(left);
                    if left == 0 {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Eof if !conn.rbuf.is_empty() => {
                    let data = conn.rbuf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked(_) => {
                    match crate::http1::decode_chunked(&mut conn.rbuf, &mut this.framing, MAX_HEAD)
                    {
                        Ok(Some(frame)) => {
                            if frame.is_data() {
                                crate::http1::settle_chunked(&mut conn.rbuf, &mut this.framing);
                            }
                            if this.framing == Framing::Done {
                                this.finish();
                            }
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Ok(None) if this.framing == Framing::Done => {
                            this.finish();
                            return Poll::Ready(None);
                        }
                        Ok(None) => {}
                        Err(e) => return this.fail(proto(e)),
                    }
                }
                _ => {}
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if this.framing == Framing::Eof => {
                    this.reusable = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(H1Error::Closed),
                Ok(_) => {}
                Err(e) => return this.fail(H1Error::Io(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Done => SizeHint::with_exact(0),
            Framing::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
