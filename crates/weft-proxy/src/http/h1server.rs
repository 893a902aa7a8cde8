//! HTTP/1.1 downstream, served inline in the connection's task.
//!
//! hyper's server runs a dispatcher state machine around each request (its service future,
//! a body channel, an encoder) that cost about a third of the proxy's instructions per
//! request. Here the connection's task reads and parses request heads with `httparse`
//! (header values are slices of the read buffer, not copies), runs the handler, and writes
//! the response head together with the first body frames in one write.
//!
//! A request body borrows the connection's read side (socket and buffer) while it streams
//! and hands it back when it ends, so only one party reads at any time; a body that is
//! dropped unfinished leaves the connection to be closed after the response. While a
//! bodyless request is in flight the connection watches the socket, as hyper did: a client
//! that goes away cancels its request.
//!
//! h2c (prior knowledge) and `Codec::Http2` listeners still go to hyper's HTTP/2 server; an
//! `Auto` listener hands a connection over when its first bytes are the HTTP/2 preface.

use super::body::BoxError;
use super::gate::WakeGate;
use super::idle::ConnActivity;
use super::{Downstream, HttpManager};
use crate::access_log::LogRecord;
use crate::config::listener::{Codec, Http1Options};
use crate::flags::ResponseFlags;
use crate::http1::{
    BodyEncoder, COALESCE, Framing, HeadFields, connection_keep_alive, content_length,
    decode_chunked, ends_chunked, fields_into_map, has_token, is_keep_alive, put_content_length,
    put_field, read_connection, settle_chunked,
};
use crate::proxy::Drain;
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, Request, StatusCode, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice, Write as _};
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Envoy's default `max_headers_count`: more request headers get 431.
const MAX_HEADERS: usize = 100;
/// First read size; a read that fills the buffer doubles the next, up to [`MAX_READ`].
const MIN_READ: usize = 8 * 1024;
const MAX_READ: usize = 256 * 1024;
/// Edge-triggered readiness (epoll): a short read means the socket is drained, so tokio's
/// readiness may be cleared then (its own `poll_read` does so only on these platforms).
const CLEAR_ON_SHORT_READ: bool = cfg!(any(target_os = "linux", target_os = "android"));
/// A read goes into the buffer's spare room when at least this much is left.
const MIN_SPARE: usize = 2048;
/// Headers the connection manager typically adds to a request before it goes upstream.
const ADDED_HEADERS: usize = 8;
/// How long, and for how many bytes, a closing connection drains what the client still
/// sends (see `Conn::linger_close`).
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;
/// A response header map up to this capacity is kept for the connection's next request.
const SPARE_MAP_MAX: usize = 32;
/// Request trailers (after a chunked body) are limited like heads.
const MAX_TRAILERS: usize = 60 * 1024;
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A downstream request body: HTTP/1.1 (this module), HTTP/2 (hyper), or none.
#[derive(Debug)]
pub enum DownstreamBody {
    Empty,
    H1(H1RequestBody),
    Hyper(Incoming),
}

impl Body for DownstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            DownstreamBody::Empty => Poll::Ready(None),
            DownstreamBody::H1(b) => Pin::new(b).poll_frame(cx),
            DownstreamBody::Hyper(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BoxError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            DownstreamBody::Empty => true,
            DownstreamBody::H1(b) => b.is_end_stream(),
            DownstreamBody::Hyper(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            DownstreamBody::Empty => SizeHint::with_exact(0),
            DownstreamBody::H1(b) => b.size_hint(),
            DownstreamBody::Hyper(b) => b.size_hint(),
        }
    }
}

/// Why a downstream HTTP/1.1 request body failed.
#[derive(Debug, thiserror::Error)]
enum RequestBodyError {
    #[error("client closed the connection before the request body ended")]
    Closed,
    #[error("downstream i/o: {0}")]
    Io(#[from] io::Error),
    #[error("downstream protocol error: {0}")]
    Protocol(&'static str),
}

/// The connection's read side while a request body holds it.
#[derive(Debug)]
struct Reader {
    io: Arc<TcpStream>,
    rbuf: BytesMut,
    read_size: usize,
}

impl Reader {
    /// Reads more bytes into `rbuf` (`Ok(0)` at end of stream).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // The spare room left after a head was cut off is used before a new buffer is
        // taken (the head's bytes still share the old one): not an allocation per request.
        if self.rbuf.capacity() - self.rbuf.len() < MIN_SPARE {
            self.rbuf.reserve(self.read_size);
        }
        let room = self.rbuf.capacity() - self.rbuf.len();
        loop {
            ready!(self.io.poll_read_ready(cx))?;
            // A read that did not fill the room drained the socket (edge-triggered epoll):
            // readiness is cleared then, as tokio's own `poll_read` does, by reporting
            // `WouldBlock` from inside `try_io`. Otherwise the next wait for the client
            // (the connection watches it while a request is in flight) would cost a
            // `recv` returning EAGAIN per request.
            let mut got = None;
            let read = self.io.try_io(Interest::READABLE, || {
                let n = self.io.try_read_buf(&mut self.rbuf)?;
                got = Some(n);
                if CLEAR_ON_SHORT_READ && n > 0 && n < room {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match (read, got) {
                (_, Some(n)) => {
                    if n == room && room >= self.read_size && self.read_size < MAX_READ {
                        self.read_size *= 2;
                    }
                    return Poll::Ready(Ok(n));
                }
                (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
                (Err(e), None) => return Poll::Ready(Err(e)),
                (Ok(_), None) => continue,
            }
        }
    }
}

/// Accounts `n` bytes written from `wbuf[wpos..]` followed by `data`.
fn advance_written(n: usize, wbuf: &[u8], wpos: &mut usize, data: &mut Bytes) {
    let from_wbuf = n.min(wbuf.len() - *wpos);
    *wpos += from_wbuf;
    data.advance(n - from_wbuf);
}

/// Writes some of `buf` to `io`.
fn poll_write(
    io: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(io.poll_write_ready(cx))?;
        // Usually all of it is one buffer: a plain send, not a writev with empty slices.
        let written = match bufs {
            [one] => io.try_write(one),
            [one, rest] if rest.is_empty() => io.try_write(one),
            _ => io.try_write_vectored(bufs),
        };
        match written {
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Where a request body returns the read side: with `true` when the body ended cleanly
/// (the connection can read the next request), `false` when it was dropped or failed.
#[derive(Debug, Default)]
struct ReaderHome {
    back: Mutex<Option<(Reader, bool)>>,
    /// `100 Continue` against the final response head: the body writes the 100 only
    /// while no head has started, under this lock; the connection marks the head started
    /// under it too, and finishes a 100 the body left half written. (With an HTTP/2
    /// upstream the body is polled from hyper's task, concurrently with the connection.)
    interim: Mutex<Interim>,
    /// The body failed on malformed framing (a bad chunk): the connection counts a
    /// protocol error when it takes the read side back.
    malformed: AtomicBool,
}

#[derive(Debug, Default)]
struct Interim {
    head_started: bool,
    /// Bytes of `100 Continue` written.
    sent: usize,
    /// The body, waiting to write the rest of its 100.
    waiter: Option<std::task::Waker>,
}

impl ReaderHome {
    /// The final response head is about to be written: returns the part of a `100
    /// Continue` that must go first (the body began it), and lets a waiting body go on.
    fn start_head(&self) -> &'static [u8] {
        let mut i = self.interim.lock().unwrap_or_else(|e| e.into_inner());
        i.head_started = true;
        if let Some(w) = i.waiter.take() {
            w.wake();
        }
        if i.sent > 0 { &CONTINUE[i.sent..] } else { &[] }
    }

    /// Takes the read side back if the body has returned it.
    fn take_back(&self) -> Option<(Reader, bool)> {
        self.back.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// An HTTP/1.1 request body, read from the connection as it is polled.
#[derive(Debug)]
pub struct H1RequestBody {
    reader: Option<Reader>,
    framing: Framing,
    home: Arc<ReaderHome>,
    /// The client asked for `100 Continue` and it is not settled yet.
    wants_continue: bool,
}

impl H1RequestBody {
    fn give_back(&mut self, clean: bool) {
        if let Some(r) = self.reader.take() {
            *self.home.back.lock().unwrap_or_else(|e| e.into_inner()) = Some((r, clean));
        }
    }

    fn fail(&mut self, e: RequestBodyError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.framing = Framing::Failed;
        if matches!(e, RequestBodyError::Protocol(_)) {
            self.home.malformed.store(true, Ordering::Relaxed);
        }
        self.give_back(false);
        Poll::Ready(Some(Err(Box::new(e))))
    }

    /// A frame was cut: if that ended the body, the read side goes home now, so the body
    /// reports its end and the connection can read the next request.
    fn after_frame(&mut self) {
        if self.framing == Framing::Done {
            self.give_back(true);
        }
    }
}

impl Drop for H1RequestBody {
    /// Unread, the body leaves the connection unusable, unless its rest is already
    /// buffered (a small body the handler did not need: a 404 to a POST, say): that is
    /// skipped and the connection goes on.
    fn drop(&mut self) {
        if let (Framing::Length(left), Some(r)) = (self.framing, self.reader.as_mut())
            && r.rbuf.len() as u64 >= left
        {
            r.rbuf.advance(left as usize);
            self.give_back(true);
            return;
        }
        self.give_back(false);
    }
}

impl Body for H1RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(r) = this.reader.as_mut() else {
                // A failed body stays failed: polled again, it must not look complete.
                if this.framing == Framing::Failed {
                    return Poll::Ready(Some(Err(Box::new(RequestBodyError::Protocol(
                        "request body already failed",
                    )))));
                }
                return Poll::Ready(None);
            };
            if this.wants_continue {
                // The client waits for this before sending the body (RFC 9110 §10.1.1);
                // once a final response has started, it is no longer sent.
                let mut i = this.home.interim.lock().unwrap_or_else(|e| e.into_inner());
                if i.head_started || i.sent >= CONTINUE.len() {
                    drop(i);
                    this.wants_continue = false;
                    continue;
                }
                match r.io.try_write(&CONTINUE[i.sent..]) {
                    Ok(n) => i.sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Woken by writability, or by the connection starting the head.
                        i.waiter = Some(cx.waker().clone());
                        drop(i);
                        match r.io.poll_write_ready(cx) {
                            Poll::Ready(Ok(())) => {}
                            Poll::Ready(Err(e)) => return this.fail(e.into()),
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    Err(e) => {
                        drop(i);
                        return this.fail(e.into());
                    }
                }
                continue;
            }
            match this.framing {
                Framing::Length(left) if !r.rbuf.is_empty() => {
                    let data = crate::http1::cut(&mut r.rbuf, left);
                    let left = left - data.len() as u64;
                    this.framing = if left == 0 {
                        Framing::Done
                    } else {
                        Framing::Length(left)
                    };
                    this.after_frame();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked(_) => {
                    match decode_chunked(&mut r.rbuf, &mut this.framing, MAX_TRAILERS) {
                        Ok(Some(frame)) => {
                            if frame.is_data() {
                                settle_chunked(&mut r.rbuf, &mut this.framing);
                            }
                            this.after_frame();
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Ok(None) if this.framing == Framing::Done => {
                            this.give_back(true);
                            return Poll::Ready(None);
                        }
                        Ok(None) => {}
                        Err(e) => return this.fail(RequestBodyError::Protocol(e)),
                    }
                }
                Framing::Done => {
                    this.give_back(true);
                    return Poll::Ready(None);
                }
                _ => {}
            }
            let Some(r) = this.reader.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(r.poll_fill(cx)) {
                Ok(0) => return this.fail(RequestBodyError::Closed),
                Ok(_) => {}
                Err(e) => return this.fail(e.into()),
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

/// A connection handed over after `101 Switching Protocols` (or to the HTTP/2 server): the
/// bytes already read from it come first.
#[derive(Debug)]
pub struct Upgraded {
    prefix: Bytes,
    io: TcpStream,
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Put in the extensions of an upgrade request; yields the connection once `101` is sent.
#[derive(Debug, Clone)]
pub(super) struct PendingUpgrade(Arc<Mutex<Option<oneshot::Receiver<Upgraded>>>>);

impl PendingUpgrade {
    pub(super) fn take(&self) -> Option<oneshot::Receiver<Upgraded>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A parsed request head and what the connection needs to know about it.
struct Head {
    req: Request<()>,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
    upgrade: bool,
    /// `TE: trailers`: the client accepts trailers in a chunked response.
    trailers: bool,
}

/// Why a request head was refused.
enum Refused {
    TooLarge,
    Bad,
    /// A transfer coding other than chunked.
    Unsupported,
    /// A protocol version other than HTTP/1.1 (HTTP/1.0 too unless `accept_http_10`).
    UpgradeRequired,
}

impl Refused {
    /// The status, and the body.
    fn reply(&self) -> (StatusCode, &'static str) {
        match self {
            Refused::TooLarge => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, ""),
            Refused::Bad => (StatusCode::BAD_REQUEST, ""),
            Refused::Unsupported => (StatusCode::NOT_IMPLEMENTED, ""),
            // Envoy's reply, body included: a client learns what to do.
            Refused::UpgradeRequired => (StatusCode::UPGRADE_REQUIRED, "Upgrade Required"),
        }
    }

    /// Counts the refused request and the connection's protocol error (it closes after the
    /// reply), and logs it as Envoy does a codec error: flag `DPE`, no method, path or
    /// authority (`"- - HTTP/1.1" 426 DPE`), the bytes of the reply.
    #[cold]
    fn record(&self, manager: &HttpManager, ds: &Downstream) {
        let (status, body) = self.reply();
        manager.stats.cx_protocol_error.inc();
        manager.stats.rq_total.inc();
        manager.stats.record_status(status.as_u16());
        let logs = &manager.config.access_logs;
        if logs.is_empty() {
            return;
        }
        logs.log(&LogRecord {
            start: Some(std::time::SystemTime::now()),
            scheme: Some(ds.scheme),
            protocol: Some("HTTP/1.1"),
            response_code: status.as_u16(),
            flags: ResponseFlags::DOWNSTREAM_PROTOCOL_ERROR,
            details: "http1.codec_error",
            bytes_sent: body.len() as u64,
            downstream_local: Some(ds.local),
            downstream_remote: Some(ds.remote),
            server_name: ds.server_name.clone(),
            ..Default::default()
        });
    }
}

/// The methods Envoy's HTTP/1 codec knows; others get 400 unless `allow_custom_methods`.
const KNOWN_METHODS: [&str; 34] = [
    "ACL",
    "BIND",
    "CHECKOUT",
    "CONNECT",
    "COPY",
    "DELETE",
    "GET",
    "HEAD",
    "LINK",
    "LOCK",
    "MERGE",
    "MKACTIVITY",
    "MKCALENDAR",
    "MKCOL",
    "MOVE",
    "MSEARCH",
    "NOTIFY",
    "OPTIONS",
    "PATCH",
    "POST",
    "PROPFIND",
    "PROPPATCH",
    "PURGE",
    "PUT",
    "REBIND",
    "REPORT",
    "SEARCH",
    "SOURCE",
    "SUBSCRIBE",
    "TRACE",
    "UNBIND",
    "UNLINK",
    "UNLOCK",
    "UNSUBSCRIBE",
];

/// Whether Envoy's codec takes `m` (a token, as httparse checked): a known method, or any
/// with `allow_custom_methods`.
fn method_allowed(m: &str, custom: bool) -> bool {
    custom || KNOWN_METHODS.contains(&m)
}

/// Envoy's request-target rules (RFC 9112 §3.2): origin-form, or absolute-form with an
/// `http`/`https` scheme; `*` for OPTIONS only; authority-form for CONNECT only; never a
/// fragment (RFC 9110 §4.2.4: a client does not send one).
fn target_allowed(method: &Method, target: &str) -> bool {
    if target.contains('#') {
        return false;
    }
    let absolute = |scheme: &str| {
        target
            .get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    };
    if *method == Method::CONNECT {
        !target.starts_with('/') && target != "*" && !absolute("http://") && !absolute("https://")
    } else if target == "*" {
        *method == Method::OPTIONS
    } else {
        target.starts_with('/') || absolute("http://") || absolute("https://")
    }
}

/// Why a head httparse could not read was refused: a request line that names a version
/// other than HTTP/1.x (`HTTP/2.0`, `HTTP/1.2`), or none at all (HTTP/0.9), gets Envoy's
/// `426 Upgrade Required` unless HTTP/1.0 is accepted; anything else is malformed.
#[cold]
fn refused_line(rbuf: &[u8], http1: &Http1Options) -> Refused {
    let Some(end) = rbuf.iter().position(|&b| b == b'\n') else {
        return Refused::Bad;
    };
    let words: Vec<&[u8]> = rbuf[..end]
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let other_version = match words[..] {
        [_, _] => true,
        [_, _, v] => {
            v.len() == 8
                && v.starts_with(b"HTTP/")
                && v[5].is_ascii_digit()
                && v[6] == b'.'
                && v[7].is_ascii_digit()
                && !matches!(&v[5..], b"1.1" | b"1.0")
        }
        _ => false,
    };
    if other_version && !http1.accept_http_10 {
        Refused::UpgradeRequired
    } else {
        Refused::Bad
    }
}

/// Parses a request head from `rbuf` if it is all there.
fn parse_head(
    rbuf: &mut BytesMut,
    max_head: usize,
    http1: &Http1Options,
    scratch: &mut HeadFields,
    spare: &mut HeaderMap,
) -> Result<Option<Head>, Refused> {
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    // Envoy's codec takes runs of spaces between the request line's parts (RFC 9112 §3
    // allows a recipient to).
    let status = match httparse::ParserConfig::default()
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .parse_request_with_uninit_headers(&mut parsed, rbuf, &mut headers)
    {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(Refused::TooLarge),
        Err(_) => return Err(refused_line(rbuf, http1)),
    };
    let len = match status {
        httparse::Status::Complete(len) if len > max_head => return Err(Refused::TooLarge),
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if rbuf.len() > max_head => return Err(Refused::TooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    let method = match parsed.method.unwrap_or("") {
        "GET" => Method::GET,
        "POST" => Method::POST,
        m if method_allowed(m, http1.allow_custom_methods) => {
            Method::from_bytes(m.as_bytes()).map_err(|_| Refused::Bad)?
        }
        _ => return Err(Refused::Bad),
    };
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ if http1.accept_http_10 => Version::HTTP_10,
        _ => return Err(Refused::UpgradeRequired),
    };
    let base = rbuf.as_ptr() as usize;
    let path = parsed.path.unwrap_or("");
    if !target_allowed(&method, path) {
        return Err(Refused::Bad);
    }
    let path_range = (path.as_ptr() as usize - base, path.len());
    let mut keep_alive = version == Version::HTTP_11;
    // `close` on any `Connection` line wins over `keep-alive` on another.
    let mut close = false;
    let mut length: Option<u64> = None;
    let (mut te_lines, mut te_chunked) = (0, false);
    let mut hosts = 0;
    let (mut expect_continue, mut has_upgrade, mut connection_upgrade, mut trailers) =
        (false, false, false, false);
    scratch.clear();
    for h in parsed.headers.iter() {
        let name = scratch.name(h.name.as_bytes()).map_err(|_| Refused::Bad)?;
        if name == header::HOST {
            hosts += 1;
        } else if name == header::CONTENT_LENGTH {
            content_length(h.value, &mut length).map_err(|_| Refused::Bad)?;
        } else if name == header::TRANSFER_ENCODING {
            te_lines += 1;
            te_chunked = ends_chunked(h.value);
            // Other codings would reach the upstream undeclared (the header is hop-by-hop):
            // Envoy answers 501.
            if te_chunked && !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(Refused::Unsupported);
            }
        } else if name == header::CONNECTION {
            // The usual line (only `keep-alive` or `close`) is read here and left out.
            if read_connection(h.value, &mut keep_alive, &mut close) {
                continue;
            }
            connection_upgrade |= has_token(h.value, b"upgrade");
        } else if name == header::EXPECT {
            expect_continue = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if name == header::UPGRADE {
            // Envoy ignores `h2c` (curl --http2 over http:// asks for it): an ordinary
            // request, its Upgrade headers stripped as hop-by-hop.
            has_upgrade = !h.value.trim_ascii().eq_ignore_ascii_case(b"h2c");
        } else if name == header::TE {
            trailers = has_token(h.value, b"trailers");
        } else if is_keep_alive(h.name.as_bytes()) {
            continue;
        }
        let start = h.value.as_ptr() as usize - base;
        scratch.push(name, start, start + h.value.len());
    }
    // RFC 9112 §3.2: a request with more than one Host is refused. Envoy joins them into
    // `a,b`; refusing is stricter: the route would be chosen on a value neither the client
    // nor a front proxy that took the first (or last) line meant.
    if hosts > 1 {
        return Err(Refused::Bad);
    }
    // RFC 9112 §6.3: a request with Transfer-Encoding must end in chunked; with both
    // Transfer-Encoding and Content-Length it is refused (as Envoy does by default).
    let framing = if te_lines > 0 {
        if length.is_some() || !te_chunked || te_lines > 1 || version != Version::HTTP_11 {
            return Err(Refused::Bad);
        }
        Framing::Chunked(crate::http1::Chunk::Size)
    } else {
        match length {
            None | Some(0) => Framing::Done,
            Some(n) => Framing::Length(n),
        }
    };
    // RFC 9110 §9.3.6: CONNECT has no content; bytes after its head belong to the tunnel,
    // so a declared body is refused, as Envoy does (400 for a length, 501 for a coding).
    if framing != Framing::Done && method == Method::CONNECT {
        return Err(if te_lines > 0 {
            Refused::Unsupported
        } else {
            Refused::Bad
        });
    }
    // The previous response's map, emptied: its allocation is reused.
    let mut map = std::mem::take(spare);
    let head =
        fields_into_map(rbuf, len, scratch, &mut map, ADDED_HEADERS).map_err(|_| Refused::Bad)?;
    let uri = Uri::from_maybe_shared(head.slice(path_range.0..path_range.0 + path_range.1))
        .map_err(|_| Refused::Bad)?;
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused, as Envoy does, unless its
    // target names the authority (absolute-form). HTTP/1.0 ones (when accepted) get
    // `default_host_for_http_10`, else are refused too, as in Envoy.
    if hosts == 0 && uri.authority().is_none() {
        match &http1.default_host_for_http_10 {
            Some(host) if version == Version::HTTP_10 => {
                map.insert(header::HOST, host.clone());
            }
            _ => return Err(Refused::Bad),
        }
    }
    let mut req = Request::new(());
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = version;
    *req.headers_mut() = map;
    Ok(Some(Head {
        req,
        expect_continue: expect_continue && version == Version::HTTP_11 && framing != Framing::Done,
        framing,
        keep_alive: keep_alive && !close,
        upgrade: has_upgrade && connection_upgrade && version == Version::HTTP_11,
        trailers,
    }))
}

/// `date` values, formatted once a second.
fn put_date(wbuf: &mut Vec<u8>) {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, String)> = const {
            std::cell::RefCell::new((0, String::new()))
        };
    }
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs || text.is_empty() {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        wbuf.extend_from_slice(b"date: ");
        wbuf.extend_from_slice(text.as_bytes());
        wbuf.extend_from_slice(b"\r\n");
    });
}

/// How the response body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// No body bytes (HEAD, 1xx, 204, 304, or an empty body).
    None,
    Length(u64),
    Chunked,
    /// Until the connection closes (HTTP/1.0 clients, unknown length).
    Close,
}

/// Encodes a response head; returns how its body goes and whether the connection stays.
fn encode_head(
    wbuf: &mut Vec<u8>,
    parts: &http::response::Parts,
    body: &super::body::ResponseBody,
    is_head: bool,
    version: Version,
    mut keep_alive: bool,
    upgrading: bool,
) -> (Out, bool) {
    wbuf.reserve(crate::http1::FIRST_WRITE);
    let status = parts.status;
    // An HTTP/1.0 client gets an HTTP/1.0 status line (as hyper's server wrote).
    let v = if version == Version::HTTP_10 {
        "1.0"
    } else {
        "1.1"
    };
    if status == StatusCode::OK && v == "1.1" {
        wbuf.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        let _ = write!(
            wbuf,
            "HTTP/{v} {} {}\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or("")
        );
    }
    // One pass writes the fields and notes the three that matter here (comparing standard
    // names is cheap; three map lookups hash each name again).
    let (mut length, mut has_date, mut says_close) = (None, false, false);
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH {
            // A second or unparsable length is not written: the body is framed below as if
            // there were none, and a client never sees two framings.
            if content_length(value.as_bytes(), &mut length).is_err() {
                keep_alive = false;
                continue;
            }
        } else if name == header::DATE {
            has_date = true;
        } else if name == header::CONNECTION {
            says_close |= connection_keep_alive(value.as_bytes()) == Some(false);
        }
        put_field(wbuf, name, value);
    }
    if !has_date {
        put_date(wbuf);
    }
    let bodyless = is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let out = if let Some(n) = length {
        if bodyless || n == 0 {
            Out::None
        } else {
            Out::Length(n)
        }
    } else if bodyless {
        // Only a known, non-zero size: an upstream's answer to HEAD has no body whatever
        // its GET would have, so zero says nothing.
        if is_head
            && let Some(n) = body.size_hint().exact()
            && n > 0
        {
            put_content_length(wbuf, n);
        }
        Out::None
    } else if body.is_end_stream() {
        wbuf.extend_from_slice(b"content-length: 0\r\n");
        Out::None
    } else if let Some(n) = body.size_hint().exact() {
        put_content_length(wbuf, n);
        Out::Length(n)
    } else if version == Version::HTTP_11 {
        wbuf.extend_from_slice(b"transfer-encoding: chunked\r\n");
        Out::Chunked
    } else {
        keep_alive = false;
        Out::Close
    };
    if says_close {
        keep_alive = false;
    } else if !upgrading {
        if !keep_alive {
            wbuf.extend_from_slice(b"connection: close\r\n");
        } else if version == Version::HTTP_10 {
            wbuf.extend_from_slice(b"connection: keep-alive\r\n");
        }
    }
    wbuf.extend_from_slice(b"\r\n");
    (out, keep_alive)
}

/// One downstream connection's state between requests.
struct Conn {
    rd: Reader,
    wbuf: Vec<u8>,
    scratch: HeadFields,
    /// An emptied header map kept for the next request head (one allocation saved).
    spare: HeaderMap,
    /// A request body came back malformed (see [`ReaderHome::malformed`]).
    malformed: bool,
}

impl Conn {
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.rd.poll_fill(cx)
    }

    /// Watches a connection whose request is in flight: `Ready` when the client closed it
    /// or failed. Bytes that arrive early (a pipelined request) are kept.
    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.poll_fill(cx) {
            Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(()),
            Poll::Ready(Ok(_)) | Poll::Pending => Poll::Pending,
        }
    }

    /// Writes `wbuf` and then `data`, both whole.
    async fn write_all(&mut self, data: &mut Bytes) -> io::Result<()> {
        let mut wpos = 0;
        poll_fn(|cx| {
            while wpos < self.wbuf.len() || !data.is_empty() {
                let slices = [IoSlice::new(&self.wbuf[wpos..]), IoSlice::new(data)];
                let n = ready!(poll_write(&self.rd.io, cx, &slices))?;
                advance_written(n, &self.wbuf, &mut wpos, data);
            }
            Poll::Ready(Ok::<(), io::Error>(()))
        })
        .await?;
        self.wbuf.clear();
        Ok(())
    }

    /// Answers a refused head and closes.
    async fn refuse(&mut self, why: Refused) {
        let (status, body) = why.reply();
        self.wbuf.clear();
        let _ = write!(
            self.wbuf,
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        if !body.is_empty() {
            self.wbuf.extend_from_slice(b"content-type: text/plain\r\n");
        }
        put_date(&mut self.wbuf);
        self.wbuf.extend_from_slice(b"\r\n");
        self.wbuf.extend_from_slice(body.as_bytes());
        if self.write_all(&mut Bytes::new()).await.is_ok() {
            // The rest of the refused head may still be arriving.
            self.linger_close().await;
        }
    }

    /// Closes after the response when the client may still be sending: our side is shut
    /// for writing (the client sees the end of the response), then what arrives is read
    /// and dropped until the client closes, for at most [`LINGER`] or [`LINGER_BYTES`].
    /// Closing with unread bytes would send a reset that can destroy the response in
    /// flight before the client has read it (RFC 9112 §9.6).
    async fn linger_close(&mut self) {
        if socket2::SockRef::from(&*self.rd.io)
            .shutdown(std::net::Shutdown::Write)
            .is_err()
        {
            return;
        }
        let mut dropped = 0;
        let _ = tokio::time::timeout(LINGER, async {
            while dropped < LINGER_BYTES {
                self.rd.rbuf.clear();
                match poll_fn(|cx| self.rd.poll_fill(cx)).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => dropped += n,
                }
            }
        })
        .await;
    }
}

/// What reading the next request head came to.
// Moved once per request; boxing the head would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
enum Next {
    Request(Head),
    Refused(Refused),
    /// The client closed, or the connection was told to go while idle.
    Close,
    /// The HTTP/2 preface: hand the connection to the HTTP/2 server.
    Http2,
}

/// Serves one downstream connection until it closes, a drain or the idle timeout finishes
/// it (after the response in flight), or it is upgraded.
pub(super) async fn serve(
    manager: Arc<HttpManager>,
    stream: TcpStream,
    ds: Downstream,
    mut drain: Drain,
) {
    let sniff_h2 = manager.config.codec == Codec::Auto;
    let h2_drain = sniff_h2.then(|| drain.clone());
    let activity = ConnActivity::new();
    let idle_timeout = manager.config.idle_timeout;
    // Drain and idle timeout: rare, so polled only when their own wake-up fires.
    let rare = WakeGate::new(async {
        let idle = async {
            match idle_timeout {
                Some(t) => activity.idle_for(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = drain.signaled() => {}
            _ = idle => {}
        }
    });
    let mut rare = pin!(rare);
    let mut closing = false;
    let max_head = (manager.config.max_request_headers_kb as usize * 1024).max(1024);
    let mut conn = Conn {
        rd: Reader {
            io: Arc::new(stream),
            rbuf: BytesMut::new(),
            read_size: MIN_READ,
        },
        wbuf: Vec::new(),
        scratch: HeadFields::default(),
        spare: HeaderMap::new(),
        malformed: false,
    };
    // The requests' timer (route and per-try timeouts...), kept for the connection's life:
    // requests come one at a time, and reusing it spares the timer wheel a registration
    // and a removal per request (see `send_within`).
    let mut timer = pin!(super::timeout::RequestTimer::new(
        tokio::time::Instant::now()
    ));
    let mut first = true;
    loop {
        let next = poll_fn(|cx| {
            loop {
                if !conn.rd.rbuf.is_empty() {
                    if first
                        && sniff_h2
                        && H2_PREFACE.starts_with(&conn.rd.rbuf[..conn.rd.rbuf.len().min(24)])
                    {
                        if conn.rd.rbuf.len() >= H2_PREFACE.len() {
                            return Poll::Ready(Next::Http2);
                        }
                    } else {
                        match parse_head(
                            &mut conn.rd.rbuf,
                            max_head,
                            &manager.config.http1,
                            &mut conn.scratch,
                            &mut conn.spare,
                        ) {
                            Ok(Some(head)) => return Poll::Ready(Next::Request(head)),
                            Ok(None) => {}
                            Err(why) => return Poll::Ready(Next::Refused(why)),
                        }
                    }
                }
                if !closing && rare.as_mut().poll(cx).is_ready() {
                    closing = true;
                }
                if closing {
                    return Poll::Ready(Next::Close);
                }
                match ready!(conn.poll_fill(cx)) {
                    Ok(0) | Err(_) => return Poll::Ready(Next::Close),
                    Ok(_) => {}
                }
            }
        })
        .await;
        first = false;
        let head = match next {
            Next::Request(head) => head,
            Next::Refused(why) => {
                why.record(&manager, &ds);
                return conn.refuse(why).await;
            }
            Next::Close => return,
            Next::Http2 => {
                let prefix = conn.rd.rbuf.split().freeze();
                if let (Ok(io), Some(h2_drain)) = (Arc::try_unwrap(conn.rd.io), h2_drain) {
                    manager
                        .serve_hyper(Upgraded { prefix, io }, ds, h2_drain)
                        .await;
                }
                return;
            }
        };
        let Head {
            req,
            framing,
            keep_alive,
            expect_continue,
            upgrade,
            trailers,
        } = head;
        let is_head = req.method() == Method::HEAD;
        let version = req.version();
        activity.begin();
        // The bytes after an upgrade request's head belong to the tunnel, body or not, as
        // in Envoy's codec: the head goes upstream with its Content-Length (hyper's client
        // drops a Transfer-Encoding it has no body to frame), the handler sees no body, and
        // on `101` the bytes follow, unparsed, in the tunnel. (A body read here would hold
        // the read side when the `101` goes out, and the tunnel could not start.) Not
        // upgraded, such a connection cannot tell where a next request would begin: it
        // closes after the response.
        let raw_upgrade = upgrade && framing != Framing::Done;
        // A body borrows the read side; a bodyless request leaves it with the connection.
        let home =
            (framing != Framing::Done && !raw_upgrade).then(|| Arc::new(ReaderHome::default()));
        let body = match &home {
            None => DownstreamBody::Empty,
            Some(home) => DownstreamBody::H1(H1RequestBody {
                reader: Some(Reader {
                    io: conn.rd.io.clone(),
                    rbuf: std::mem::take(&mut conn.rd.rbuf),
                    read_size: conn.rd.read_size,
                }),
                framing,
                home: home.clone(),
                wants_continue: expect_continue,
            }),
        };
        let mut req = req.map(|()| body);
        let upgrade_tx = upgrade.then(|| {
            let (tx, rx) = oneshot::channel();
            req.extensions_mut()
                .insert(PendingUpgrade(Arc::new(Mutex::new(Some(rx)))));
            tx
        });
        // Where the request body's read side is while the body holds it, and whether the
        // connection can go on reading requests (not after a body that did not end).
        let mut lent = home;
        let mut read_clean = !raw_upgrade;
        let resp = {
            let mut handler = pin!(manager.handle(req, &ds, timer.as_mut()));
            poll_fn(|cx| {
                if let Poll::Ready(resp) = handler.as_mut().poll(cx) {
                    return Poll::Ready(Some(resp));
                }
                // A client that goes away cancels its request (as with hyper: once its body
                // has been read, and only while nothing of a next request is buffered).
                reclaim(&mut conn, &mut lent, &mut read_clean);
                if lent.is_none()
                    && read_clean
                    && conn.rd.rbuf.is_empty()
                    && conn.poll_gone(cx).is_ready()
                {
                    return Poll::Ready(None);
                }
                if !closing && rare.as_mut().poll(cx).is_ready() {
                    closing = true;
                }
                Poll::Pending
            })
            .await
        };
        let Some(resp) = resp else { return };
        manager.stats.record_status(resp.status().as_u16());
        let (parts, body) = resp.into_parts();
        reclaim(&mut conn, &mut lent, &mut read_clean);
        if let Some(h) = &lent {
            // A 100 the body began goes out whole before the final head.
            conn.wbuf.extend_from_slice(h.start_head());
        }
        let upgrading = upgrade_tx.is_some() && parts.status == StatusCode::SWITCHING_PROTOCOLS;
        // A response that starts before its request has been read whole ends the
        // connection (as Envoy does): say so.
        let (out, keep_alive) = encode_head(
            &mut conn.wbuf,
            &parts,
            &body,
            is_head,
            version,
            keep_alive && !closing && lent.is_none() && read_clean,
            upgrading,
        );
        // Kept only when ordinary-sized: an idle connection holds no large map.
        let mut spare = parts.headers;
        if spare.capacity() <= SPARE_MAP_MAX {
            spare.clear();
            conn.spare = spare;
        }
        let complete = send_body(&mut conn, body, out, trailers, &mut lent, &mut read_clean).await;
        activity.end();
        // The request body went with the response; if something still holds it (a mirror
        // reading it), this connection cannot go on.
        reclaim(&mut conn, &mut lent, &mut read_clean);
        read_clean &= lent.is_none();
        if conn.malformed {
            // The connection ends here: Envoy counts a bad chunk as a codec error too.
            manager.stats.cx_protocol_error.inc();
        }
        if upgrading {
            if complete
                && let Some(tx) = upgrade_tx
                && let Ok(io) = Arc::try_unwrap(conn.rd.io)
            {
                let prefix = conn.rd.rbuf.split().freeze();
                let _ = tx.send(Upgraded { prefix, io });
            }
            return;
        }
        if !complete || !keep_alive || !read_clean || closing {
            // Unread request bytes may still be arriving: close gently so the client reads
            // the response before any reset.
            if !read_clean || !complete || !conn.rd.rbuf.is_empty() {
                conn.linger_close().await;
            }
            return;
        }
        // An idle connection keeps a small read buffer.
        if conn.rd.read_size > MIN_READ && conn.rd.rbuf.is_empty() {
            conn.rd.read_size = MIN_READ;
            conn.rd.rbuf = BytesMut::new();
        }
    }
}

/// Takes the read side back from a request body that has returned it (`lent` becomes
/// `None`); `read_clean` turns false if that body did not end cleanly.
fn reclaim(conn: &mut Conn, lent: &mut Option<Arc<ReaderHome>>, read_clean: &mut bool) {
    if let Some(h) = lent.as_ref()
        && let Some((r, clean)) = h.take_back()
    {
        conn.rd.rbuf = r.rbuf;
        conn.rd.read_size = r.read_size;
        *read_clean &= clean;
        conn.malformed |= h.malformed.load(Ordering::Relaxed);
        *lent = None;
    }
}

/// Streams a response body after its head (which is in `conn.wbuf`): small frames are
/// copied behind the head so a whole small response leaves in one write. Once the request
/// body has given the read side back, a client going away is noticed while the body waits.
/// Returns whether the response went out complete.
async fn send_body(
    conn: &mut Conn,
    body: super::body::ResponseBody,
    out: Out,
    trailers: bool,
    lent: &mut Option<Arc<ReaderHome>>,
    read_clean: &mut bool,
) -> bool {
    let mut body = pin!(body);
    let mut enc = match out {
        Out::Length(n) => BodyEncoder::new(false, trailers, Some(n)),
        Out::Chunked => BodyEncoder::new(true, trailers, None),
        Out::None | Out::Close => BodyEncoder::new(false, trailers, None),
    };
    // Bodyless responses (HEAD, 204, ...) drop their body unread, as hyper does.
    enc.ended = out == Out::None;
    let mut wpos = 0;
    // The body failed (upstream reset, malformed chunk, timer): what is buffered — the head
    // at least, as Envoy has sent it by then — still goes out, unterminated, then the
    // connection closes. The client sees a response cut short, not an empty reply.
    let mut failed = false;
    poll_fn(|cx| {
        loop {
            if !enc.ended
                && enc.data.is_empty()
                && conn.wbuf.len() - wpos < COALESCE
                && let Poll::Ready(frame) = body.as_mut().poll_frame(cx)
            {
                let frame = match frame {
                    None => None,
                    Some(Ok(f)) => Some(f),
                    Some(Err(_)) => {
                        failed = true;
                        enc.ended = true;
                        continue;
                    }
                };
                // A body that breaks its Content-Length: only closing tells the client.
                if enc
                    .take(frame, body.is_end_stream(), &mut conn.wbuf)
                    .is_err()
                {
                    return Poll::Ready(false);
                }
                continue;
            }
            if wpos < conn.wbuf.len() || !enc.data.is_empty() {
                let slices = [IoSlice::new(&conn.wbuf[wpos..]), IoSlice::new(&enc.data)];
                match poll_write(&conn.rd.io, cx, &slices) {
                    Poll::Ready(Ok(n)) => {
                        // `data` goes only once `wbuf` is out: it ends with this write.
                        let had_data = !enc.data.is_empty();
                        advance_written(n, &conn.wbuf, &mut wpos, &mut enc.data);
                        if wpos == conn.wbuf.len() {
                            conn.wbuf.clear();
                            wpos = 0;
                            if had_data && enc.data.is_empty() {
                                enc.data_written(&mut conn.wbuf);
                            }
                        }
                        continue;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(false),
                    Poll::Pending => {}
                }
            } else if enc.ended {
                return Poll::Ready(!failed);
            }
            reclaim(conn, lent, read_clean);
            if lent.is_none()
                && *read_clean
                && conn.rd.rbuf.is_empty()
                && conn.poll_gone(cx).is_ready()
            {
                return Poll::Ready(false);
            }
            return Poll::Pending;
        }
    })
    .await
}
