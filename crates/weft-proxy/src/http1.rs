//! HTTP/1.1 wire pieces shared by the downstream server (`http::h1server`) and the upstream
//! client (`upstream::h1`): body framing, the chunked decoder, header-field encoding.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http_body::Frame;
use std::io::Write as _;

/// A chunk-size line longer than this (extensions included) is a protocol error.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;
/// Body frames up to this size are copied behind what the write buffer holds (a head and a
/// small body leave in one write); a larger one is written from its own buffer.
pub(crate) const COALESCE: usize = 16 * 1024;

/// What a connection's write buffer reserves before its first head: a head and a small body
/// fit without the buffer growing step by step from empty (6 reallocations per new
/// connection before, ~4k instructions).
pub(crate) const FIRST_WRITE: usize = 2048;

/// How a message body is delimited (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Ended (or never had a body).
    Done,
    Length(u64),
    Chunked(Chunk),
    /// Until the peer closes the connection (responses only).
    Eof,
    /// Ended with an error (not a complete body: `is_end_stream` stays false).
    Failed,
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
}

/// Takes up to `max` buffered body bytes (no copy: the frame shares the read buffer).
pub(crate) fn cut(rbuf: &mut BytesMut, max: u64) -> Bytes {
    let n = (rbuf.len() as u64).min(max) as usize;
    rbuf.split_to(n).freeze()
}

/// Steps the chunked decoder through what `rbuf` holds. `Ok(Some)` is a frame to return;
/// `Ok(None)` means more bytes are needed, or the body ended (`framing` is then `Done`).
/// Trailers (at most `max_trailers` bytes) end the body too.
pub(crate) fn decode_chunked(
    rbuf: &mut BytesMut,
    framing: &mut Framing,
    max_trailers: usize,
) -> Result<Option<Frame<Bytes>>, &'static str> {
    loop {
        let Framing::Chunked(state) = *framing else {
            return Ok(None);
        };
        match state {
            Chunk::Size => match strict_size_line(rbuf)
                .and_then(|()| httparse::parse_chunk_size(rbuf).map_err(|_| "invalid chunk size"))
            {
                Ok(httparse::Status::Complete((used, size))) => {
                    rbuf.advance(used);
                    *framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    });
                }
                Ok(httparse::Status::Partial) if rbuf.len() > MAX_CHUNK_LINE => {
                    return Err("chunk size line too long");
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(e),
            },
            Chunk::Data(left) => {
                if rbuf.is_empty() {
                    return Ok(None);
                }
                let data = cut(rbuf, left);
                let left = left - data.len() as u64;
                *framing = Framing::Chunked(if left == 0 {
                    Chunk::DataEnd
                } else {
                    Chunk::Data(left)
                });
                return Ok(Some(Frame::data(data)));
            }
            Chunk::DataEnd => {
                if rbuf.len() < 2 {
                    return Ok(None);
                }
                if &rbuf[..2] != b"\r\n" {
                    return Err("chunk data not followed by CRLF");
                }
                rbuf.advance(2);
                *framing = Framing::Chunked(Chunk::Size);
            }
            Chunk::Trailers => {
                let mut fields = [httparse::EMPTY_HEADER; 32];
                let (used, fields) = match httparse::parse_headers(rbuf, &mut fields) {
                    Ok(httparse::Status::Complete(done)) => done,
                    Ok(httparse::Status::Partial) if rbuf.len() > max_trailers => {
                        return Err("trailers too large");
                    }
                    Ok(httparse::Status::Partial) => return Ok(None),
                    Err(_) => return Err("malformed trailers"),
                };
                let mut trailers = HeaderMap::with_capacity(fields.len());
                for f in fields.iter() {
                    let name =
                        HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| "trailer name")?;
                    let value = HeaderValue::from_bytes(f.value).map_err(|_| "trailer value")?;
                    trailers.append(name, value);
                }
                rbuf.advance(used);
                *framing = Framing::Done;
                return Ok((!trailers.is_empty()).then(|| Frame::trailers(trailers)));
            }
        }
    }
}

/// What httparse's chunk-size parser lets through and hyper and Envoy refuse: a size line
/// that does not start with a hex digit (an empty line read as 0), or a bare LF or a
/// control byte before its CRLF (two parsers would disagree on where the line ends).
fn strict_size_line(rbuf: &[u8]) -> Result<(), &'static str> {
    if rbuf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
        return Err("chunk size missing");
    }
    for (i, &b) in rbuf.iter().enumerate() {
        match b {
            b'\r' => {
                return match rbuf.get(i + 1) {
                    Some(b'\n') | None => Ok(()),
                    Some(_) => Err("chunk size line: CR without LF"),
                };
            }
            b'\t' => {}
            b if b < 0x20 || b == 0x7f => return Err("chunk size line: control byte"),
            _ => {}
        }
    }
    Ok(())
}

/// After a data frame: if the rest of a chunked body (the chunk's CRLF, the last chunk and
/// no trailers) is already buffered, consume it and end now, so `is_end_stream` says so at
/// once. Returns whether it did.
pub(crate) fn settle_chunked(rbuf: &mut BytesMut, framing: &mut Framing) -> bool {
    if *framing == Framing::Chunked(Chunk::DataEnd)
        && rbuf.len() >= 7
        && rbuf[..7] == *b"\r\n0\r\n\r\n"
    {
        rbuf.advance(7);
        *framing = Framing::Done;
        return true;
    }
    false
}

/// Frames a body's frames into a write buffer, for either direction: chunked (trailers
/// written only when `send_trailers`), or as they come (after a `Content-Length` head,
/// checked when `length` is given, or until the connection closes). A frame up to
/// [`COALESCE`] bytes is copied into `wbuf`; a larger one waits in `data`, to be written
/// after `wbuf`, and then [`BodyEncoder::data_written`] adds its chunk's CRLF.
#[derive(Debug)]
pub(crate) struct BodyEncoder {
    chunked: bool,
    send_trailers: bool,
    /// What the head's `Content-Length` still allows, when it is checked here.
    left: Option<u64>,
    /// A large frame to write after `wbuf`.
    pub(crate) data: Bytes,
    /// The body has ended (its last chunk and trailers are in `wbuf`).
    pub(crate) ended: bool,
}

impl BodyEncoder {
    pub(crate) fn new(chunked: bool, send_trailers: bool, length: Option<u64>) -> BodyEncoder {
        BodyEncoder {
            chunked,
            send_trailers,
            left: length,
            data: Bytes::new(),
            ended: false,
        }
    }

    /// Takes one frame (`None`: the body ended). `at_end`: the body says nothing more will
    /// come, so it is finished now rather than at the next poll (though not ahead of a
    /// large frame still to be written: the last chunk must follow it). An error: the body
    /// is longer or shorter than its `Content-Length` (only closing can tell the peer).
    pub(crate) fn take(
        &mut self,
        frame: Option<Frame<Bytes>>,
        at_end: bool,
        wbuf: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let Some(frame) = frame else {
            return self.finish(wbuf);
        };
        match frame.into_data() {
            Ok(d) if d.is_empty() => {}
            Ok(d) => {
                if let Some(left) = self.left.as_mut() {
                    *left = left
                        .checked_sub(d.len() as u64)
                        .ok_or("body longer than its content-length")?;
                }
                if self.chunked {
                    let _ = write!(wbuf, "{:x}\r\n", d.len());
                }
                if d.len() <= COALESCE {
                    wbuf.extend_from_slice(&d);
                    if self.chunked {
                        wbuf.extend_from_slice(b"\r\n");
                    }
                } else {
                    self.data = d;
                }
            }
            Err(frame) => {
                // Trailers exist only in chunked framing; otherwise they are dropped.
                if let (Ok(trailers), true) = (frame.into_trailers(), self.chunked) {
                    wbuf.extend_from_slice(b"0\r\n");
                    if self.send_trailers {
                        put_fields(wbuf, &trailers);
                    }
                    wbuf.extend_from_slice(b"\r\n");
                    self.ended = true;
                }
            }
        }
        if at_end && !self.ended && self.data.is_empty() {
            return self.finish(wbuf);
        }
        Ok(())
    }

    fn finish(&mut self, wbuf: &mut Vec<u8>) -> Result<(), &'static str> {
        self.ended = true;
        if self.chunked {
            wbuf.extend_from_slice(b"0\r\n\r\n");
        } else if self.left.is_some_and(|l| l != 0) {
            return Err("body shorter than its content-length");
        }
        Ok(())
    }

    /// `data` has been written whole: its chunk ends.
    pub(crate) fn data_written(&mut self, wbuf: &mut Vec<u8>) {
        if self.chunked {
            wbuf.extend_from_slice(b"\r\n");
        }
    }
}

/// Names of a parsed head's fields with their value ranges in the read buffer, collected
/// while the framing headers are read, and the previous head's names (kept per connection
/// for reuse).
#[derive(Debug, Default)]
pub(crate) struct HeadFields {
    ranges: Vec<(HeaderName, usize, usize)>,
    /// The previous head's names by position, each with its spelling on the wire (the end
    /// of its bytes in `spelled`). A keep-alive peer sends the same names in the same order
    /// on every message, so a name is usually one comparison of a few bytes instead of
    /// `HeaderName::from_bytes` (a lowercasing copy and a standard-name search, ~140
    /// instructions each).
    seen: Vec<(HeaderName, usize)>,
    spelled: Vec<u8>,
    /// The position on the wire of the next name (fields left out of the map count too).
    next: usize,
}

/// Names remembered per connection: at most this many, of at most `SPELLED_MAX` bytes in
/// all (a peer sending odd heads gets no cache, never unbounded memory).
const SEEN_MAX: usize = 32;
const SPELLED_MAX: usize = 512;

impl HeadFields {
    /// Starts a new head.
    pub(crate) fn clear(&mut self) {
        self.ranges.clear();
        self.next = 0;
    }

    /// The name of the head's next field (`raw` as received), validated and lowercased.
    #[inline(always)]
    pub(crate) fn name(
        &mut self,
        raw: &[u8],
    ) -> Result<HeaderName, http::header::InvalidHeaderName> {
        let i = self.next;
        self.next += 1;
        if let Some((name, end)) = self.seen.get(i) {
            let start = if i == 0 { 0 } else { self.seen[i - 1].1 };
            if self.spelled[start..*end] == *raw {
                return Ok(name.clone());
            }
        }
        self.learn(i, raw)
    }

    /// A name not seen at position `i` of the previous head: parsed, and remembered in
    /// place of what was there (what followed is forgotten: later positions are known only
    /// by their ends).
    #[inline(never)]
    fn learn(
        &mut self,
        i: usize,
        raw: &[u8],
    ) -> Result<HeaderName, http::header::InvalidHeaderName> {
        let name = HeaderName::from_bytes(raw)?;
        if i <= self.seen.len() && i < SEEN_MAX {
            self.seen.truncate(i);
            let start = self.seen.last().map_or(0, |(_, end)| *end);
            if start + raw.len() <= SPELLED_MAX {
                self.spelled.truncate(start);
                self.spelled.extend_from_slice(raw);
                self.seen.push((name.clone(), self.spelled.len()));
            }
        }
        Ok(name)
    }

    /// Records the next field: its name (from [`HeadFields::name`]) and value range.
    pub(crate) fn push(&mut self, name: HeaderName, start: usize, end: usize) {
        self.ranges.push((name, start, end));
    }
}

/// Cuts a parsed head (`len` bytes) off `rbuf` and appends the fields `fields` recorded to
/// `map`, each value a slice of the head (no copy), with room for `extra` more headers (the
/// proxy adds some: no grow-and-rehash later). Returns the head, for other slices of it.
pub(crate) fn fields_into_map(
    rbuf: &mut BytesMut,
    len: usize,
    fields: &mut HeadFields,
    map: &mut HeaderMap,
    extra: usize,
) -> Result<Bytes, http::header::InvalidHeaderValue> {
    let head = rbuf.split_to(len).freeze();
    map.reserve(fields.ranges.len() + extra);
    for (name, start, end) in fields.ranges.drain(..) {
        map.append(
            name,
            HeaderValue::from_maybe_shared(head.slice(start..end))?,
        );
    }
    Ok(head)
}

/// Reads a `Connection` line into `keep_alive` / `close` (`close` on any line wins over
/// `keep-alive` on another, as the callers combine them). Returns whether the line only
/// said `keep-alive` or `close`: such a line has then been read whole and need not enter the
/// message's map. It, and `Keep-Alive` lines ([`is_keep_alive`]), would be stripped as
/// hop-by-hop before the message goes on (as Envoy strips them before routing); a
/// `Connection` naming other headers stays, so that those are stripped too.
#[inline]
pub(crate) fn read_connection(value: &[u8], keep_alive: &mut bool, close: &mut bool) -> bool {
    let v = value.trim_ascii();
    let only = if v.eq_ignore_ascii_case(b"keep-alive") {
        Some(true)
    } else if v.eq_ignore_ascii_case(b"close") {
        Some(false)
    } else {
        None
    };
    match only.or_else(|| connection_keep_alive(value)) {
        Some(false) => *close = true,
        Some(true) => *keep_alive = true,
        None => {}
    }
    only.is_some()
}

/// Whether a raw field name is `Keep-Alive` (a length check first: cheap for the rest).
#[inline]
pub(crate) fn is_keep_alive(raw: &[u8]) -> bool {
    raw.len() == 10 && raw.eq_ignore_ascii_case(b"keep-alive")
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub(crate) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Appends `name: value` lines (a head's headers or a last chunk's trailers) to `wbuf`.
pub(crate) fn put_fields(wbuf: &mut Vec<u8>, fields: &HeaderMap) {
    for (name, value) in fields {
        put_field(wbuf, name, value);
    }
}

/// Appends one `name: value` line.
pub(crate) fn put_field(wbuf: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    let (name, value) = (name.as_str().as_bytes(), value.as_bytes());
    // One capacity check for the line.
    wbuf.reserve(name.len() + value.len() + 4);
    wbuf.extend_from_slice(name);
    wbuf.extend_from_slice(b": ");
    wbuf.extend_from_slice(value);
    wbuf.extend_from_slice(b"\r\n");
}

/// Appends a `content-length` line (itoa: `write!` costs several hundred instructions).
pub(crate) fn put_content_length(wbuf: &mut Vec<u8>, n: u64) {
    wbuf.extend_from_slice(b"content-length: ");
    wbuf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    wbuf.extend_from_slice(b"\r\n");
}

/// Parses a `Content-Length` value into `length`. Only one plain number is accepted: a
/// second `Content-Length` line or a list (even of equal numbers, which RFC 9110 §8.6 lets a
/// recipient accept) is an error, as Envoy refuses both; two parsers that disagree on which
/// of several lengths counts are how requests get smuggled.
pub(crate) fn content_length(value: &[u8], length: &mut Option<u64>) -> Result<(), &'static str> {
    if length.is_some() {
        return Err("multiple content-length");
    }
    let value = value.trim_ascii();
    // At most 18 digits: no overflow, and more is no real length.
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return Err("invalid content-length");
    }
    *length = Some(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')));
    Ok(())
}

/// Whether the last coding of a `Transfer-Encoding` value is `chunked`.
pub(crate) fn ends_chunked(value: &[u8]) -> bool {
    let text = std::str::from_utf8(value).unwrap_or("");
    text.rsplit(',')
        .next()
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

/// Reads a `Connection` value: `Some(false)` for `close`, `Some(true)` for `keep-alive`.
pub(crate) fn connection_keep_alive(value: &[u8]) -> Option<bool> {
    // The usual values first, without splitting.
    if value.eq_ignore_ascii_case(b"keep-alive") {
        return Some(true);
    }
    if value.eq_ignore_ascii_case(b"close") {
        return Some(false);
    }
    let text = std::str::from_utf8(value).unwrap_or("");
    let mut verdict = None;
    for token in text.split(',').map(str::trim) {
        if token.eq_ignore_ascii_case("close") {
            return Some(false);
        }
        if token.eq_ignore_ascii_case("keep-alive") {
            verdict = Some(true);
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_names_follow_what_each_head_spells() {
        let heads: [&[&str]; 5] = [
            &["Host", "User-Agent", "X-A"],
            &["Host", "User-Agent", "X-A"],
            &["host", "X-B", "X-A", "Accept"],
            &["X-A", "Host"],
            &["Host", "User-Agent", "X-A"],
        ];
        let mut f = HeadFields::default();
        for head in heads {
            f.clear();
            for (i, raw) in head.iter().enumerate() {
                let name = f.name(raw.as_bytes()).expect("valid");
                assert_eq!(name.as_str(), raw.to_ascii_lowercase(), "{head:?} at {i}");
                f.push(name, 0, 0);
            }
        }
        // Invalid names are refused even at a remembered position.
        f.clear();
        assert!(f.name(b"Ho st").is_err());
        // Bounded: a head of many long names remembers at most SPELLED_MAX bytes of them.
        f.clear();
        for i in 0..200 {
            let raw = format!("x-a-rather-long-header-name-number-{i}");
            let name = f.name(raw.as_bytes()).expect("valid");
            assert_eq!(name.as_str(), raw);
            f.push(name, 0, 0);
        }
        assert!(f.spelled.len() <= SPELLED_MAX && f.seen.len() <= SEEN_MAX);
    }

    #[test]
    fn content_length_is_one_plain_number() {
        let mut n = None;
        assert!(content_length(b"1024", &mut n).is_ok());
        assert_eq!(n, Some(1024));
        // A second line, even an equal one, is refused (as Envoy does).
        assert!(content_length(b"1024", &mut n).is_err());
        for bad in [
            &b""[..],
            b"-1",
            b"+5",
            b"0x5",
            b"1e3",
            b"12 34",
            b"5, 5",
            b"5,6",
            b"99999999999999999999999",
        ] {
            assert!(content_length(bad, &mut None).is_err(), "{bad:?}");
        }
        let mut n = None;
        assert!(content_length(b" 5\t", &mut n).is_ok());
        assert_eq!(n, Some(5));
    }

    #[test]
    fn connection_tokens() {
        assert_eq!(connection_keep_alive(b"keep-alive"), Some(true));
        assert_eq!(connection_keep_alive(b"Close"), Some(false));
        assert_eq!(connection_keep_alive(b"Keep-Alive, Upgrade"), Some(true));
        assert_eq!(connection_keep_alive(b"keep-alive, close"), Some(false));
        assert_eq!(connection_keep_alive(b"upgrade"), None);
    }

    fn chunked(input: &[u8]) -> Result<Vec<Frame<Bytes>>, &'static str> {
        let mut rbuf = BytesMut::from(input);
        let mut framing = Framing::Chunked(Chunk::Size);
        let mut frames = Vec::new();
        while let Some(f) = decode_chunked(&mut rbuf, &mut framing, 1024)? {
            frames.push(f);
        }
        Ok(frames)
    }

    #[test]
    fn chunk_size_lines_are_strict() {
        let ok = chunked(b"5;ext=1\r\nhello\r\n0\r\n\r\n").expect("valid");
        assert_eq!(ok.len(), 1);
        // An empty size line is not a zero-size chunk.
        assert!(chunked(b"5\r\nhello\r\n\r\n\r\n").is_err());
        // A bare LF ends no size line (another parser would end it there).
        assert!(chunked(b"5;x\nGET /a HTTP/1.1\r\n").is_err());
        assert!(chunked(b"5\x01\r\nhello\r\n").is_err());
    }
}
