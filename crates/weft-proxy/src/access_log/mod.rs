//! Access logs: Envoy's command-operator format strings (`%REQ(X-REQUEST-ID)%`), text and
//! JSON, written to stdout, stderr or a file.
//!
//! A format is parsed once at load. Request and response headers a format names are copied
//! into the [`LogRecord`] as cheap `HeaderValue` clones, so a record outlives the request.
//! Lines are rendered straight into a reused per-thread buffer and queued; a flusher thread
//! writes them ([`sink`]), so logging costs the request path no syscall.

use crate::config::util::{data_source, decode_any};
use crate::error::{At, ConfigError};
use crate::flags::ResponseFlags;
use envoy_types::pb::envoy::config::accesslog::v3::{AccessLog as PbAccessLog, access_log};
use envoy_types::pb::envoy::config::core::v3::{
    SubstitutionFormatString, substitution_format_string,
};
use envoy_types::pb::envoy::extensions::access_loggers::{file::v3 as file, stream::v3 as stream};
use envoy_types::pb::google::protobuf::{Struct, value::Kind};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;
use weft_xds::type_url;

mod sink;
use sink::Sink;
pub use sink::flush_all;

/// Istio's default text format (what `meshConfig.accessLogFile` produces); weft uses it when
/// a logger names no format.
pub const ISTIO_TEXT_FORMAT: &str = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/// Istio's JSON access-log keys (`meshConfig.accessLogEncoding: JSON`).
pub const ISTIO_JSON_FORMAT: &[(&str, &str)] = &[
    ("authority", "%REQ(:AUTHORITY)%"),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    (
        "connection_termination_details",
        "%CONNECTION_TERMINATION_DETAILS%",
    ),
    ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
    ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
    ("duration", "%DURATION%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("route_name", "%ROUTE_NAME%"),
    ("start_time", "%START_TIME%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"),
    (
        "upstream_service_time",
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    ),
    (
        "upstream_transport_failure_reason",
        "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    ),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
];

/// Everything a log line can show about one request or TCP connection.
#[derive(Debug, Clone, Default)]
pub struct LogRecord {
    pub start: Option<SystemTime>,
    pub method: Option<http::Method>,
    /// Path with query as received.
    /// Shares the request's bytes (no copy per request).
    pub path: Option<http::uri::PathAndQuery>,
    pub authority: Option<String>,
    pub scheme: Option<&'static str>,
    /// `HTTP/1.1`, `HTTP/2`; `None` for TCP.
    pub protocol: Option<&'static str>,
    /// 0 when no response was sent (TCP, or a reset before headers).
    pub response_code: u16,
    pub flags: ResponseFlags,
    pub details: &'static str,
    pub termination_details: Option<String>,
    pub transport_failure: Option<String>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub duration_ms: u64,
    pub upstream_host: Option<SocketAddr>,
    pub upstream_cluster: Option<Arc<str>>,
    pub upstream_local: Option<SocketAddr>,
    pub downstream_local: Option<SocketAddr>,
    /// The peer (`%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`).
    pub downstream_remote: Option<SocketAddr>,
    /// The client as `x-forwarded-for` names it, when the connection manager trusts that
    /// header over the peer (`use_remote_address: false`, as Envoy): then
    /// `%DOWNSTREAM_REMOTE_ADDRESS%` is this address with port 0.
    pub downstream_xff: Option<std::net::IpAddr>,
    pub server_name: Option<String>,
    pub route_name: Option<Arc<str>>,
    /// Values of the headers the plan names, in plan order: the request's, then from
    /// `resp_at` on the response's (one allocation for both).
    pub captured: Vec<Option<HeaderValue>>,
    pub resp_at: usize,
}

impl LogRecord {
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`: the client `x-forwarded-for` names (port 0, as
    /// Envoy prints it) when trusted, else the peer.
    fn client(&self) -> Option<SocketAddr> {
        match self.downstream_xff {
            Some(ip) => Some(SocketAddr::new(ip, 0)),
            None => self.downstream_remote,
        }
    }

    fn req_header(&self, i: usize) -> Option<&HeaderValue> {
        self.captured[..self.resp_at].get(i)?.as_ref()
    }

    fn resp_header(&self, i: usize) -> Option<&HeaderValue> {
        self.captured.get(self.resp_at + i)?.as_ref()
    }
}

/// The loggers of one HCM or TCP proxy, plus the headers they need captured.
#[derive(Debug, Default)]
pub struct AccessLogs {
    loggers: Vec<Logger>,
    req_headers: Vec<HeaderName>,
    resp_headers: Vec<HeaderName>,
}

#[derive(Debug)]
struct Logger {
    sink: Arc<Sink>,
    format: Format,
}

#[derive(Debug)]
enum Format {
    Text(Vec<Token>),
    /// Fields in key order, each key already JSON-encoded with its colon (`"code":`).
    Json(Vec<(String, Vec<Token>)>),
}

#[derive(Debug, Clone)]
enum Token {
    Literal(String),
    Op { op: Op, max_len: Option<usize> },
}

#[derive(Debug, Clone)]
enum Op {
    StartTime,
    Method,
    Protocol,
    ResponseCode,
    ResponseFlags,
    ResponseCodeDetails,
    ConnectionTerminationDetails,
    UpstreamTransportFailureReason,
    BytesReceived,
    BytesSent,
    Duration,
    UpstreamHost,
    UpstreamCluster,
    UpstreamLocalAddress,
    DownstreamLocalAddress,
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    DownstreamDirectRemoteAddress,
    DownstreamDirectRemoteAddressWithoutPort,
    DownstreamLocalAddressWithoutPort,
    RequestedServerName,
    RouteName,
    /// A request header (by plan index), with an optional fallback.
    Req(HeaderRef, Option<HeaderRef>),
    Resp(usize),
    /// An operator weft does not implement yet: rendered as `-`.
    Unknown,
}

#[derive(Debug, Clone, Copy)]
enum HeaderRef {
    Method,
    Path,
    Authority,
    Scheme,
    Index(usize),
}

impl AccessLogs {
    /// Whether any logger is configured (the hot path skips record building otherwise).
    pub fn is_empty(&self) -> bool {
        self.loggers.is_empty()
    }

    /// Converts Envoy `AccessLog`s; unimplemented operators are added to `notes`.
    pub fn from_pb(
        logs: &[PbAccessLog],
        notes: &mut Vec<String>,
    ) -> Result<AccessLogs, ConfigError> {
        let mut out = AccessLogs::default();
        for (i, log) in logs.iter().enumerate() {
            let logger = out.logger(log, notes).at(format!("access_log[{i}]"))?;
            out.loggers.push(logger);
        }
        Ok(out)
    }

    /// A plan with one stdout logger in `format` (Istio's text format when `None`); for tests
    /// and the CLI.
    pub fn stdout_text(format: Option<&str>) -> AccessLogs {
        let mut out = AccessLogs::default();
        let mut notes = Vec::new();
        let tokens = out.parse(format.unwrap_or(ISTIO_TEXT_FORMAT), &mut notes);
        out.loggers.push(Logger {
            sink: Sink::stdout(),
            format: Format::Text(tokens),
        });
        out
    }

    fn logger(
        &mut self,
        log: &PbAccessLog,
        notes: &mut Vec<String>,
    ) -> Result<Logger, ConfigError> {
        let Some(access_log::ConfigType::TypedConfig(any)) = &log.config_type else {
            return Err(ConfigError::new("typed_config is required"));
        };
        let (sink, fmt) = match any.type_url.as_str() {
            type_url::STDOUT_ACCESS_LOG => {
                let l: stream::StdoutAccessLog =
                    decode_any(any, type_url::STDOUT_ACCESS_LOG).at("typed_config")?;
                (
                    Sink::stdout(),
                    l.access_log_format
                        .map(|stream::stdout_access_log::AccessLogFormat::LogFormat(f)| f),
                )
            }
            type_url::STDERR_ACCESS_LOG => {
                let l: stream::StderrAccessLog =
                    decode_any(any, type_url::STDERR_ACCESS_LOG).at("typed_config")?;
                (
                    open_sink("/dev/stderr")?,
                    l.access_log_format
                        .map(|stream::stderr_access_log::AccessLogFormat::LogFormat(f)| f),
                )
            }
            type_url::FILE_ACCESS_LOG => {
                let l: file::FileAccessLog =
                    decode_any(any, type_url::FILE_ACCESS_LOG).at("typed_config")?;
                let sink = open_sink(&l.path).map_err(|e| e.at("typed_config.path"))?;
                #[allow(deprecated)]
                let fmt = match l.access_log_format {
                    None => None,
                    Some(file::file_access_log::AccessLogFormat::LogFormat(f)) => Some(f),
                    Some(file::file_access_log::AccessLogFormat::Format(s)) => {
                        Some(SubstitutionFormatString {
                            format: Some(substitution_format_string::Format::TextFormat(s)),
                            ..Default::default()
                        })
                    }
                    Some(
                        file::file_access_log::AccessLogFormat::JsonFormat(s)
                        | file::file_access_log::AccessLogFormat::TypedJsonFormat(s),
                    ) => Some(SubstitutionFormatString {
                        format: Some(substitution_format_string::Format::JsonFormat(s)),
                        ..Default::default()
                    }),
                };
                (sink, fmt)
            }
            other => {
                return Err(
                    ConfigError::new(format!("access logger {other} is not supported"))
                        .at("typed_config"),
                );
            }
        };
        let format = self
            .format(fmt.as_ref(), notes)
            .at("typed_config.log_format")?;
        Ok(Logger { sink, format })
    }

    fn format(
        &mut self,
        f: Option<&SubstitutionFormatString>,
        notes: &mut Vec<String>,
    ) -> Result<Format, ConfigError> {
        #[allow(deprecated)]
        let format = match f.and_then(|f| f.format.as_ref()) {
            None => Format::Text(self.parse(ISTIO_TEXT_FORMAT, notes)),
            Some(substitution_format_string::Format::TextFormat(s)) => {
                Format::Text(self.parse(s, notes))
            }
            Some(substitution_format_string::Format::TextFormatSource(d)) => {
                let text = data_source(d).at("text_format_source")?;
                Format::Text(self.parse(&String::from_utf8_lossy(&text), notes))
            }
            Some(substitution_format_string::Format::JsonFormat(s)) => {
                Format::Json(self.json(s, notes)?)
            }
        };
        Ok(format)
    }

    fn json(
        &mut self,
        s: &Struct,
        notes: &mut Vec<String>,
    ) -> Result<Vec<(String, Vec<Token>)>, ConfigError> {
        let mut keys: Vec<_> = s.fields.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        keys.into_iter()
            .map(|(k, v)| match &v.kind {
                Some(Kind::StringValue(t)) => Ok((json_key(k), self.parse(t, notes))),
                _ => Err(ConfigError::new("only string values are supported")
                    .at(format!("json_format.{k}"))),
            })
            .collect()
    }

    fn header_index(list: &mut Vec<HeaderName>, name: &str) -> Option<usize> {
        let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok()?;
        Some(match list.iter().position(|h| *h == name) {
            Some(i) => i,
            None => {
                list.push(name);
                list.len() - 1
            }
        })
    }

    fn req_ref(&mut self, name: &str) -> Option<HeaderRef> {
        Some(match name.to_ascii_lowercase().as_str() {
            ":method" => HeaderRef::Method,
            ":path" => HeaderRef::Path,
            ":authority" | "host" => HeaderRef::Authority,
            ":scheme" => HeaderRef::Scheme,
            n => HeaderRef::Index(Self::header_index(&mut self.req_headers, n)?),
        })
    }

    fn parse(&mut self, format: &str, notes: &mut Vec<String>) -> Vec<Token> {
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut rest = format;
        while let Some(start) = rest.find('%') {
            literal.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            if let Some(stripped) = after.strip_prefix('%') {
                // `%%` is a literal percent.
                literal.push('%');
                rest = stripped;
                continue;
            }
            let Some(end) = after.find('%') else {
                literal.push_str(&rest[start..]);
                rest = "";
                break;
            };
            let spec = &after[..end];
            rest = &after[end + 1..];
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(self.op(spec, notes));
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        tokens
    }

    fn op(&mut self, spec: &str, notes: &mut Vec<String>) -> Token {
        // NAME, NAME(ARG) or NAME(ARG):LEN
        let (head, max_len) = match spec.rsplit_once("):") {
            Some((h, len)) if len.bytes().all(|b| b.is_ascii_digit()) => {
                (format!("{h})"), len.parse().ok())
            }
            _ => (spec.to_owned(), None),
        };
        let (name, arg) = match head.split_once('(') {
            Some((n, a)) => (n, a.strip_suffix(')').unwrap_or(a)),
            None => (head.as_str(), ""),
        };
        let op = match name {
            "START_TIME" => Op::StartTime,
            "PROTOCOL" => Op::Protocol,
            "RESPONSE_CODE" => Op::ResponseCode,
            "RESPONSE_FLAGS" => Op::ResponseFlags,
            "RESPONSE_CODE_DETAILS" => Op::ResponseCodeDetails,
            "CONNECTION_TERMINATION_DETAILS" => Op::ConnectionTerminationDetails,
            "UPSTREAM_TRANSPORT_FAILURE_REASON" => Op::UpstreamTransportFailureReason,
            "BYTES_RECEIVED" => Op::BytesReceived,
            "BYTES_SENT" => Op::BytesSent,
            "DURATION" => Op::Duration,
            "UPSTREAM_HOST" => Op::UpstreamHost,
            "UPSTREAM_CLUSTER" | "UPSTREAM_CLUSTER_RAW" => Op::UpstreamCluster,
            "UPSTREAM_LOCAL_ADDRESS" => Op::UpstreamLocalAddress,
            "DOWNSTREAM_LOCAL_ADDRESS" => Op::DownstreamLocalAddress,
            "DOWNSTREAM_REMOTE_ADDRESS" => Op::DownstreamRemoteAddress,
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => Op::DownstreamRemoteAddressWithoutPort,
            "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => Op::DownstreamDirectRemoteAddress,
            "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => {
                Op::DownstreamDirectRemoteAddressWithoutPort
            }
            "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => Op::DownstreamLocalAddressWithoutPort,
            "REQUESTED_SERVER_NAME" => Op::RequestedServerName,
            "ROUTE_NAME" => Op::RouteName,
            "METHOD" => Op::Method,
            "REQ" => {
                let (primary, alt) = match arg.split_once('?') {
                    Some((p, a)) => (p, Some(a)),
                    None => (arg, None),
                };
                match (self.req_ref(primary), alt.map(|a| self.req_ref(a))) {
                    (Some(p), None) => Op::Req(p, None),
                    (Some(p), Some(Some(a))) => Op::Req(p, Some(a)),
                    _ => Op::Unknown,
                }
            }
            "RESP" => match Self::header_index(&mut self.resp_headers, arg) {
                Some(i) => Op::Resp(i),
                None => Op::Unknown,
            },
            _ => Op::Unknown,
        };
        if matches!(op, Op::Unknown) {
            notes.push(format!(
                "access log operator %{spec}% is not implemented; it logs \"-\""
            ));
        }
        Token::Op { op, max_len }
    }

    /// Copies the request headers the formats name into `record`.
    pub fn capture_request(&self, record: &mut LogRecord, headers: &HeaderMap) {
        let c = &mut record.captured;
        c.clear();
        // Room for the response's too: they come later, into the same vector.
        c.reserve_exact(self.req_headers.len() + self.resp_headers.len());
        c.extend(self.req_headers.iter().map(|h| headers.get(h).cloned()));
        record.resp_at = c.len();
    }

    /// Copies the response headers the formats name into `record`.
    pub fn capture_response(&self, record: &mut LogRecord, headers: &HeaderMap) {
        record.captured.truncate(record.resp_at);
        record
            .captured
            .extend(self.resp_headers.iter().map(|h| headers.get(h).cloned()));
    }

    /// Queues one line per logger. Logging never fails a request (see [`sink`]).
    pub fn log(&self, record: &LogRecord) {
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        LINE.with_borrow_mut(|line| {
            for logger in &self.loggers {
                line.clear();
                logger.format.render(record, line);
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                logger.sink.append(line);
            }
            // A rare huge line (a long header) does not keep its buffer.
            if line.capacity() > 64 * 1024 {
                *line = Vec::new();
            }
        });
    }

    /// Renders the first logger's line (for tests and `weft proxy` diagnostics).
    pub fn render_first(&self, record: &LogRecord) -> Option<String> {
        self.loggers.first().map(|l| {
            let mut line = Vec::new();
            l.format.render(record, &mut line);
            String::from_utf8_lossy(&line).into_owned()
        })
    }
}

/// Opens (or shares) the destination at `path` for a logger.
fn open_sink(path: &str) -> Result<Arc<Sink>, ConfigError> {
    Sink::open(path).map_err(|e| ConfigError::new(format!("opening {path}: {e}")))
}

/// A JSON object key with its colon, encoded once at load.
fn json_key(k: &str) -> String {
    let mut key = serde_json::to_string(k).unwrap_or_else(|_| "\"\"".to_owned());
    key.push(':');
    key
}

/// The type an operator's value has in JSON.
enum ValueType {
    Str,
    Num,
}

impl Format {
    fn render(&self, r: &LogRecord, out: &mut Vec<u8>) {
        match self {
            Format::Text(tokens) => render_text_into(tokens, r, out),
            Format::Json(fields) => render_json_into(fields, r, out),
        }
    }
}

/// Appends the operator's value to `out`, written directly (no `String` per operator);
/// `None`, with nothing written, when it has no value.
fn put_op(op: &Op, r: &LogRecord, out: &mut Vec<u8>) -> Option<ValueType> {
    let str_ = |out: &mut Vec<u8>, s: Option<&str>| {
        s.map(|s| {
            out.extend_from_slice(s.as_bytes());
            ValueType::Str
        })
    };
    let num = |out: &mut Vec<u8>, n: u64| {
        put_num(out, n);
        Some(ValueType::Num)
    };
    let addr = |out: &mut Vec<u8>, a: Option<SocketAddr>, port: bool| {
        a.map(|a| {
            put_addr(out, a, port);
            ValueType::Str
        })
    };
    let header = |out: &mut Vec<u8>, h: &HeaderRef| match h {
        HeaderRef::Method => str_(out, r.method.as_ref().map(|m| m.as_str())),
        HeaderRef::Path => str_(out, r.path.as_ref().map(|p| p.as_str())),
        HeaderRef::Authority => str_(out, r.authority.as_deref()),
        HeaderRef::Scheme => str_(out, r.scheme),
        HeaderRef::Index(i) => r.req_header(*i).map(|v| {
            put_value(out, v);
            ValueType::Str
        }),
    };
    match op {
        Op::StartTime => r.start.map(|t| {
            put_rfc3339_millis(out, t);
            ValueType::Str
        }),
        Op::Method => header(out, &HeaderRef::Method),
        Op::Protocol => str_(out, r.protocol),
        Op::ResponseCode => num(out, u64::from(r.response_code)),
        Op::ResponseFlags => {
            if r.flags.is_empty() {
                out.push(b'-');
            } else {
                let _ = write!(out, "{}", r.flags);
            }
            Some(ValueType::Str)
        }
        Op::ResponseCodeDetails => str_(out, (!r.details.is_empty()).then_some(r.details)),
        Op::ConnectionTerminationDetails => str_(out, r.termination_details.as_deref()),
        Op::UpstreamTransportFailureReason => str_(out, r.transport_failure.as_deref()),
        Op::BytesReceived => num(out, r.bytes_received),
        Op::BytesSent => num(out, r.bytes_sent),
        Op::Duration => num(out, r.duration_ms),
        Op::UpstreamHost => addr(out, r.upstream_host, true),
        Op::UpstreamCluster => str_(out, r.upstream_cluster.as_deref()),
        Op::UpstreamLocalAddress => addr(out, r.upstream_local, true),
        Op::DownstreamLocalAddress => addr(out, r.downstream_local, true),
        Op::DownstreamRemoteAddress => addr(out, r.client(), true),
        Op::DownstreamRemoteAddressWithoutPort => addr(out, r.client(), false),
        Op::DownstreamDirectRemoteAddress => addr(out, r.downstream_remote, true),
        Op::DownstreamDirectRemoteAddressWithoutPort => addr(out, r.downstream_remote, false),
        Op::DownstreamLocalAddressWithoutPort => addr(out, r.downstream_local, false),
        Op::RequestedServerName => str_(out, r.server_name.as_deref()),
        Op::RouteName => str_(out, r.route_name.as_deref()),
        Op::Req(primary, alt) => match (header(out, primary), alt) {
            (None, Some(alt)) => header(out, alt),
            (v, _) => v,
        },
        Op::Resp(i) => r.resp_header(*i).map(|v| {
            put_value(out, v);
            ValueType::Str
        }),
        Op::Unknown => None,
    }
}

fn put_num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A header value as text (bytes that are not UTF-8 become U+FFFD, so a line stays UTF-8).
fn put_value(out: &mut Vec<u8>, v: &HeaderValue) {
    match std::str::from_utf8(v.as_bytes()) {
        Ok(s) => out.extend_from_slice(s.as_bytes()),
        Err(_) => out.extend_from_slice(String::from_utf8_lossy(v.as_bytes()).as_bytes()),
    }
}

/// `1.2.3.4:80` / `[::1]:80` (or the address alone), as `Display` writes them; IPv4 without
/// the formatting machinery, which cost ~1.2k instructions per address.
fn put_addr(out: &mut Vec<u8>, a: SocketAddr, port: bool) {
    match a {
        SocketAddr::V4(v4) => {
            put_ipv4(out, *v4.ip());
            if port {
                out.push(b':');
                put_num(out, v4.port());
            }
        }
        SocketAddr::V6(_) if port => {
            let _ = write!(out, "{a}");
        }
        SocketAddr::V6(v6) => {
            let _ = write!(out, "{}", v6.ip());
        }
    }
}

/// Every octet value's decimal digits, `[length, d0, d1, d2]` (zero-padded on the right):
/// an IPv4 address is four table lookups instead of four number formattings (Istio's
/// default log line holds three or four addresses).
static OCTETS: [[u8; 4]; 256] = octet_digits();

const fn octet_digits() -> [[u8; 4]; 256] {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let n = i as u8;
        t[i] = if n >= 100 {
            [3, b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10]
        } else if n >= 10 {
            [2, b'0' + n / 10, b'0' + n % 10, 0]
        } else {
            [1, b'0' + n, 0, 0]
        };
        i += 1;
    }
    t
}

fn put_ipv4(out: &mut Vec<u8>, ip: Ipv4Addr) {
    // Assembled on the stack (at most 15 bytes) and appended once: each octet copies its
    // three digit slots and advances by its length.
    let mut buf = [0u8; 16];
    let mut n = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        let d = &OCTETS[usize::from(octet)];
        buf[n..n + 3].copy_from_slice(&d[1..]);
        n += usize::from(d[0]);
    }
    out.extend_from_slice(&buf[..n]);
}

/// Cuts what was appended since `start` to at most `max_len` bytes, at a character boundary.
fn truncate_from(out: &mut Vec<u8>, start: usize, max_len: Option<usize>) {
    if let Some(max) = max_len
        && out.len() - start > max
    {
        let mut end = start + max;
        // UTF-8 continuation bytes are 0b10xxxxxx: back up to a character's first byte.
        while end > start && out[end] & 0xC0 == 0x80 {
            end -= 1;
        }
        out.truncate(end);
    }
}

fn render_text_into(tokens: &[Token], r: &LogRecord, out: &mut Vec<u8>) {
    for t in tokens {
        match t {
            Token::Literal(s) => out.extend_from_slice(s.as_bytes()),
            Token::Op { op, max_len } => {
                let start = out.len();
                match put_op(op, r, out) {
                    Some(_) => truncate_from(out, start, *max_len),
                    None => out.push(b'-'),
                }
            }
        }
    }
}

#[cfg(test)]
fn render_text(tokens: &[Token], r: &LogRecord) -> String {
    let mut out = Vec::new();
    render_text_into(tokens, r, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn render_json_into(fields: &[(String, Vec<Token>)], r: &LogRecord, out: &mut Vec<u8>) {
    thread_local! {
        static VALUE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    out.push(b'{');
    VALUE.with_borrow_mut(|value| {
        for (i, (key, tokens)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            value.clear();
            let kind = match tokens.as_slice() {
                // A lone operator keeps its type, as Envoy's typed JSON does.
                [Token::Op { op, max_len }] => {
                    let kind = put_op(op, r, value);
                    truncate_from(value, 0, *max_len);
                    kind
                }
                _ => {
                    render_text_into(tokens, r, value);
                    Some(ValueType::Str)
                }
            };
            match kind {
                None => out.extend_from_slice(b"null"),
                Some(ValueType::Num) => out.extend_from_slice(value),
                // Everything rendered is UTF-8 (header values are converted lossily).
                Some(ValueType::Str) => {
                    let s = String::from_utf8_lossy(value);
                    let _ = serde_json::to_writer(&mut *out, s.as_ref());
                }
            }
        }
    });
    out.push(b'}');
}

impl AccessLogs {
    /// A plan with one stdout logger in Istio's JSON format.
    pub fn stdout_istio_json() -> AccessLogs {
        let mut out = AccessLogs::default();
        let mut notes = Vec::new();
        let mut fields: Vec<_> = ISTIO_JSON_FORMAT
            .iter()
            .map(|(k, f)| (json_key(k), out.parse(f, &mut notes)))
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        out.loggers.push(Logger {
            sink: Sink::stdout(),
            format: Format::Json(fields),
        });
        out
    }
}

/// `2023-10-31T14:52:14.279Z`, Envoy's default `%START_TIME%`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let mut out = Vec::with_capacity(24);
    put_rfc3339_millis(&mut out, t);
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends `t` as [`rfc3339_millis`] does. The part up to the second is formatted once per
/// second per thread (the formatting machinery cost ~3k instructions per line).
fn put_rfc3339_millis(out: &mut Vec<u8>, t: SystemTime) {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        let mut w = &mut text[..];
        // Years past 9999 do not fit and are cut; Envoy's clock will not get there first.
        let _ = write!(
            w,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
        SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
    let ms = since.subsec_millis();
    out.extend_from_slice(&[
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
        b'Z',
    ]);
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, UTC).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ipv4_addresses_render_as_display_does() {
        let mut out = Vec::new();
        for a in 0..=255u8 {
            for ip in [
                Ipv4Addr::new(a, 0, 9, 255),
                Ipv4Addr::new(10, a, 100, 1),
                Ipv4Addr::new(255, 255, a, a),
            ] {
                out.clear();
                put_ipv4(&mut out, ip);
                assert_eq!(String::from_utf8_lossy(&out), ip.to_string());
            }
        }
    }

    #[test]
    fn timestamps_format_like_envoy() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_698_763_934_279);
        assert_eq!(rfc3339_millis(t), "2023-10-31T14:52:14.279Z");
        assert_eq!(
            rfc3339_millis(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&rfc3339_millis(leap)[..10], "2000-02-29");
    }

    fn record(logs: &AccessLogs) -> LogRecord {
        let mut req = HeaderMap::new();
        req.insert("user-agent", HeaderValue::from_static("grpc-go/1.58.3"));
        req.insert(
            "x-request-id",
            HeaderValue::from_static("6d293d32-af96-9f87-a8e4-6665632f7236"),
        );
        let mut resp = HeaderMap::new();
        resp.insert(
            "x-envoy-upstream-service-time",
            HeaderValue::from_static("9"),
        );
        let mut r = LogRecord {
            start: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_698_763_934_279)),
            method: Some(http::Method::POST),
            path: Some(http::uri::PathAndQuery::from_static(
                "/helloworld.Greeter/SayHello",
            )),
            authority: Some("k8s-combat-service:50051".into()),
            scheme: Some("http"),
            protocol: Some("HTTP/2"),
            response_code: 200,
            flags: ResponseFlags::default(),
            details: "via_upstream",
            bytes_received: 12,
            bytes_sent: 61,
            duration_ms: 14,
            upstream_host: Some("172.17.0.9:50051".parse().expect("addr")),
            upstream_cluster: Some(Arc::from("inbound|50051||")),
            upstream_local: Some("127.0.0.6:42051".parse().expect("addr")),
            downstream_local: Some("172.17.0.9:50051".parse().expect("addr")),
            downstream_remote: Some("172.17.0.9:40804".parse().expect("addr")),
            server_name: Some(
                "outbound_.50051_._.k8s-combat-service.default.svc.cluster.local".into(),
            ),
            route_name: Some(Arc::from("default")),
            ..Default::default()
        };
        logs.capture_request(&mut r, &req);
        logs.capture_response(&mut r, &resp);
        r
    }

    #[test]
    fn istio_text_format_matches_a_real_istio_line() {
        let logs = AccessLogs::stdout_text(None);
        let line = logs.render_first(&record(&logs)).expect("line");
        assert_eq!(
            line,
            "[2023-10-31T14:52:14.279Z] \"POST /helloworld.Greeter/SayHello HTTP/2\" 200 - via_upstream - \"-\" 12 61 14 9 \"-\" \"grpc-go/1.58.3\" \"6d293d32-af96-9f87-a8e4-6665632f7236\" \"k8s-combat-service:50051\" \"172.17.0.9:50051\" inbound|50051|| 127.0.0.6:42051 172.17.0.9:50051 172.17.0.9:40804 outbound_.50051_._.k8s-combat-service.default.svc.cluster.local default\n"
        );
    }

    #[test]
    fn istio_json_format_is_typed() {
        let logs = AccessLogs::stdout_istio_json();
        let line = logs.render_first(&record(&logs)).expect("line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["response_code"], 200);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["upstream_service_time"], "9");
        assert_eq!(v["x_forwarded_for"], serde_json::Value::Null);
        assert_eq!(v["response_flags"], "-");
    }

    #[test]
    fn json_escapes_and_keeps_types_and_addresses_print_as_display_does() {
        let mut logs = AccessLogs::default();
        let mut notes = Vec::new();
        let fields = vec![
            (json_key("ua"), logs.parse("%REQ(USER-AGENT)%", &mut notes)),
            (json_key("code"), logs.parse("%RESPONSE_CODE%", &mut notes)),
            (
                json_key("mixed"),
                logs.parse("%RESPONSE_CODE% at %DOWNSTREAM_REMOTE_ADDRESS%", &mut notes),
            ),
            (
                json_key("peer"),
                logs.parse("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", &mut notes),
            ),
            (json_key("up"), logs.parse("%UPSTREAM_HOST%", &mut notes)),
            (json_key("none"), logs.parse("%ROUTE_NAME%", &mut notes)),
        ];
        let mut h = HeaderMap::new();
        h.insert(
            "user-agent",
            HeaderValue::from_bytes(b"say \"hi\" \\ \xff").expect("value"),
        );
        let mut r = LogRecord {
            response_code: 503,
            downstream_remote: Some("[2001:db8::1%3]:40804".parse().expect("addr")),
            upstream_host: Some("10.0.0.255:9080".parse().expect("addr")),
            ..Default::default()
        };
        logs.capture_request(&mut r, &h);
        let mut line = Vec::new();
        Format::Json(fields).render(&r, &mut line);
        let v: serde_json::Value = serde_json::from_slice(&line).expect("valid JSON");
        assert_eq!(
            v,
            serde_json::json!({
                "ua": "say \"hi\" \\ \u{fffd}",
                "code": 503,
                "mixed": "503 at [2001:db8::1%3]:40804",
                "peer": "2001:db8::1",
                "up": "10.0.0.255:9080",
                "none": null,
            })
        );
        let a: SocketAddr = "10.0.0.255:9080".parse().expect("addr");
        let mut out = Vec::new();
        put_addr(&mut out, a, true);
        assert_eq!(out, a.to_string().as_bytes());
    }

    #[test]
    fn operators_parse_with_lengths_and_fallbacks() {
        let mut logs = AccessLogs::default();
        let mut notes = Vec::new();
        let tokens = logs.parse("%REQ(X-A?X-B):2% 100%% %NOPE%", &mut notes);
        let mut r = LogRecord::default();
        let mut h = HeaderMap::new();
        h.insert("x-b", HeaderValue::from_static("hello"));
        logs.capture_request(&mut r, &h);
        assert_eq!(render_text(&tokens, &r), "he 100% -");
        assert_eq!(notes.len(), 1);
    }
}
