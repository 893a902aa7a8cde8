//! Protocol detection on a freshly accepted connection, by peeking (the bytes stay in the
//! socket for whoever serves the connection): TLS ClientHello (SNI, ALPN) as Envoy's
//! `tls_inspector`, HTTP/1.x and the HTTP/2 preface as its `http_inspector`.
//!
//! A client that sends nothing within the window is treated as raw TCP at once, so
//! server-first protocols (MySQL, SMTP...) are never stalled longer than the window.

use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// What the first bytes told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    /// `tls` or `raw_buffer`.
    pub transport: &'static str,
    pub server_name: Option<String>,
    /// From ALPN (TLS) or detection (`http/1.1`, `http/1.0`, `h2c`).
    pub application_protocols: Vec<String>,
}

impl Default for Sniffed {
    fn default() -> Self {
        Sniffed {
            transport: "raw_buffer",
            server_name: None,
            application_protocols: Vec::new(),
        }
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const PEEK_BYTES: usize = 4096;

enum Verdict {
    Done(Sniffed),
    NeedMore,
}

/// Peeks at the connection's first bytes for up to `window`.
pub async fn sniff(stream: &TcpStream, tls: bool, http: bool, window: Duration) -> Sniffed {
    let deadline = Instant::now() + window;
    let mut buf = vec![0u8; PEEK_BYTES];
    let mut last_len = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(remaining, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            // Nothing (or EOF/error) within the window: plain TCP.
            _ => return Sniffed::default(),
        };
        match classify(&buf[..n], tls, http) {
            Verdict::Done(s) => return s,
            Verdict::NeedMore if n == PEEK_BYTES || remaining.is_zero() => {
                return Sniffed::default();
            }
            Verdict::NeedMore => {
                // peek returns at once while any bytes are queued; wait a little for more.
                if n == last_len {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                last_len = n;
            }
        }
    }
}

fn classify(b: &[u8], tls: bool, http: bool) -> Verdict {
    if tls && b[0] == 0x16 {
        return match client_hello(b) {
            Some(Some(s)) => Verdict::Done(s),
            Some(None) => Verdict::Done(Sniffed {
                transport: "tls",
                ..Sniffed::default()
            }),
            None => Verdict::NeedMore,
        };
    }
    if !http {
        return Verdict::Done(Sniffed::default());
    }
    let raw = |proto: &str| {
        Verdict::Done(Sniffed {
            application_protocols: vec![proto.to_owned()],
            ..Sniffed::default()
        })
    };
    let n = b.len().min(H2_PREFACE.len());
    if b[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            raw("h2c")
        } else {
            Verdict::NeedMore
        };
    }
    // Request line: METHOD SP target SP HTTP/1.x CRLF
    let method_len = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if method_len == b.len() {
        return Verdict::NeedMore;
    }
    if method_len == 0 || b[method_len] != b' ' {
        return Verdict::Done(Sniffed::default());
    }
    let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
        return Verdict::NeedMore;
    };
    let line = &b[..eol];
    if line.ends_with(b" HTTP/1.1") {
        raw("http/1.1")
    } else if line.ends_with(b" HTTP/1.0") {
        raw("http/1.0")
    } else {
        Verdict::Done(Sniffed::default())
    }
}

/// Parses a ClientHello: `None` when more bytes are needed, `Some(None)` when it is TLS but
/// malformed, else SNI and ALPN.
fn client_hello(b: &[u8]) -> Option<Option<Sniffed>> {
    if b.len() < 5 {
        return None;
    }
    let record_len = usize::from(u16::from_be_bytes([b[3], b[4]]));
    let Some(record) = b.get(5..5 + record_len) else {
        return None;
    };
    Some(parse_hello(record))
}

fn parse_hello(h: &[u8]) -> Option<Sniffed> {
    let mut r = Reader(h);
    if r.u8()? != 1 {
        return None;
    }
    r.skip(3 + 2 + 32)?; // length, client_version, random
    let sid = usize::from(r.u8()?);
    r.skip(sid)?;
    let suites = usize::from(r.u16()?);
    r.skip(suites)?;
    let comp = usize::from(r.u8()?);
    r.skip(comp)?;
    let mut out = Sniffed {
        transport: "tls",
        ..Sniffed::default()
    };
    if r.0.is_empty() {
        return Some(out);
    }
    let ext_len = usize::from(r.u16()?);
    let mut exts = Reader(r.take(ext_len)?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let len = usize::from(exts.u16()?);
        let mut data = Reader(exts.take(len)?);
        match kind {
            0x0000 => {
                let list = usize::from(data.u16()?);
                let mut names = Reader(data.take(list)?);
                while !names.0.is_empty() {
                    let name_type = names.u8()?;
                    let n = usize::from(names.u16()?);
                    let name = names.take(n)?;
                    if name_type == 0 {
                        out.server_name = Some(String::from_utf8_lossy(name).to_ascii_lowercase());
                    }
                }
            }
            0x0010 => {
                let list = usize::from(data.u16()?);
                let mut protos = Reader(data.take(list)?);
                while !protos.0.is_empty() {
                    let n = usize::from(protos.u8()?);
                    out.application_protocols
                        .push(String::from_utf8_lossy(protos.take(n)?).into_owned());
                }
            }
            _ => {}
        }
    }
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ClientHello with SNI and ALPN, for tests.
    pub fn client_hello_bytes(sni: &str, alpn: &[&str]) -> Vec<u8> {
        let mut ext = Vec::new();
        let name = sni.as_bytes();
        let mut sni_data = Vec::new();
        sni_data.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        sni_data.push(0);
        sni_data.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni_data.extend_from_slice(name);
        ext.extend_from_slice(&0u16.to_be_bytes());
        ext.extend_from_slice(&(sni_data.len() as u16).to_be_bytes());
        ext.extend_from_slice(&sni_data);
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        let mut alpn_data = (list.len() as u16).to_be_bytes().to_vec();
        alpn_data.extend_from_slice(&list);
        ext.extend_from_slice(&0x10u16.to_be_bytes());
        ext.extend_from_slice(&(alpn_data.len() as u16).to_be_bytes());
        ext.extend_from_slice(&alpn_data);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 0x03, 0x01];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    fn done(b: &[u8]) -> Sniffed {
        match classify(b, true, true) {
            Verdict::Done(s) => s,
            Verdict::NeedMore => panic!("needs more: {b:?}"),
        }
    }

    #[test]
    fn detects_protocols() {
        let hello = client_hello_bytes("Api.Example.com", &["h2", "http/1.1"]);
        let s = done(&hello);
        assert_eq!(s.transport, "tls");
        assert_eq!(s.server_name.as_deref(), Some("api.example.com"));
        assert_eq!(s.application_protocols, ["h2", "http/1.1"]);
        assert!(matches!(
            classify(&hello[..20], true, true),
            Verdict::NeedMore
        ));
        assert_eq!(
            done(b"GET / HTTP/1.1\r\nHost: x\r\n").application_protocols,
            ["http/1.1"]
        );
        assert_eq!(done(H2_PREFACE).application_protocols, ["h2c"]);
        assert!(matches!(
            classify(b"GET /long", true, true),
            Verdict::NeedMore
        ));
        assert!(matches!(
            classify(b"PRI * HT", true, true),
            Verdict::NeedMore
        ));
        assert_eq!(done(b"\x00\x01binary"), Sniffed::default());
        assert_eq!(done(b"SSH-2.0-OpenSSH\r\n"), Sniffed::default());
    }
}
