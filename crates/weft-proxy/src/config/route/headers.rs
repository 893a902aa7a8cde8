//! Header mutations at every route level, with Envoy's append actions and header value
//! format strings (`%DOWNSTREAM_REMOTE_ADDRESS%`).

use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::core::v3::{
    HeaderValueOption, header_value_option::HeaderAppendAction,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::net::SocketAddr;

/// Header edits at one level (route, virtual host, route table, weighted cluster).
#[derive(Debug, Default, Clone)]
pub struct HeaderMutation {
    pub add: Vec<HeaderAdd>,
    pub remove: Vec<HeaderName>,
}

/// One header to add, with Envoy's `append_action`.
#[derive(Debug, Clone)]
pub struct HeaderAdd {
    pub name: HeaderName,
    pub value: HeaderTemplate,
    pub action: AppendAction,
    /// Add the header even when its value renders empty (`keep_empty_value`).
    pub keep_empty: bool,
}

/// A header value: literal, or an Envoy format string (`%DOWNSTREAM_REMOTE_ADDRESS%`)
/// rendered per request.
#[derive(Debug, Clone)]
pub enum HeaderTemplate {
    Literal(HeaderValue),
    Format(Vec<Piece>),
}

/// Part of a header value format string.
#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Op(HeaderOp),
}

/// The command operators header values may use.
#[derive(Debug, Clone)]
pub enum HeaderOp {
    DownstreamRemoteAddress,
    DownstreamRemoteAddressWithoutPort,
    DownstreamLocalAddress,
    DownstreamLocalAddressWithoutPort,
    DownstreamLocalPort,
    UpstreamRemoteAddress,
    Protocol,
    Hostname,
    StartTime,
    Req(HeaderName),
    Environment(String),
}

/// What header value operators can read about the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderContext<'a> {
    pub downstream_remote: Option<SocketAddr>,
    pub downstream_local: Option<SocketAddr>,
    pub upstream_host: Option<SocketAddr>,
    /// `HTTP/1.1`, `HTTP/2`.
    pub protocol: Option<&'a str>,
    /// The request's headers when rendering for the response.
    pub request_headers: Option<&'a HeaderMap>,
}

impl HeaderTemplate {
    fn parse(raw: &[u8]) -> Result<HeaderTemplate, ConfigError> {
        let literal = || {
            HeaderValue::from_bytes(raw)
                .map(HeaderTemplate::Literal)
                .map_err(|_| ConfigError::new("invalid header value"))
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            return literal();
        };
        if !text.contains('%') {
            return literal();
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('%') {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 1..];
            if let Some(stripped) = after.strip_prefix('%') {
                pieces.push(Piece::Text("%".to_owned()));
                rest = stripped;
                continue;
            }
            let end = after
                .find('%')
                .ok_or_else(|| ConfigError::new(format!("unterminated operator in {text:?}")))?;
            pieces.push(Piece::Op(HeaderOp::parse(&after[..end])?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(HeaderTemplate::Format(pieces))
    }

    /// The value for one request; `None` when it does not form a valid header value.
    pub fn render(&self, cx: &HeaderContext<'_>, request: &HeaderMap) -> Option<HeaderValue> {
        let pieces = match self {
            HeaderTemplate::Literal(v) => return Some(v.clone()),
            HeaderTemplate::Format(p) => p,
        };
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Op(op) => out.push_str(&op.render(cx, request)),
            }
        }
        HeaderValue::from_str(&out).ok()
    }
}

impl HeaderOp {
    fn parse(spec: &str) -> Result<HeaderOp, ConfigError> {
        let (name, arg) = match spec.split_once('(') {
            Some((n, a)) => (n, a.strip_suffix(')').unwrap_or(a)),
            None => (spec, ""),
        };
        Ok(match name {
            "DOWNSTREAM_REMOTE_ADDRESS" | "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => {
                HeaderOp::DownstreamRemoteAddress
            }
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT"
            | "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => {
                HeaderOp::DownstreamRemoteAddressWithoutPort
            }
            "DOWNSTREAM_LOCAL_ADDRESS" => HeaderOp::DownstreamLocalAddress,
            "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT" => HeaderOp::DownstreamLocalAddressWithoutPort,
            "DOWNSTREAM_LOCAL_PORT" => HeaderOp::DownstreamLocalPort,
            "UPSTREAM_REMOTE_ADDRESS" => HeaderOp::UpstreamRemoteAddress,
            "PROTOCOL" => HeaderOp::Protocol,
            "HOSTNAME" => HeaderOp::Hostname,
            "START_TIME" => HeaderOp::StartTime,
            "REQ" => HeaderOp::Req(header_name(arg)?),
            "ENVIRONMENT" => HeaderOp::Environment(arg.to_owned()),
            other => {
                return Err(ConfigError::new(format!(
                    "header value operator %{other}% is not supported"
                )));
            }
        })
    }

    fn render(&self, cx: &HeaderContext<'_>, request: &HeaderMap) -> String {
        let addr = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        let ip = |a: Option<SocketAddr>| a.map(|a| a.ip().to_string()).unwrap_or_default();
        match self {
            HeaderOp::DownstreamRemoteAddress => addr(cx.downstream_remote),
            HeaderOp::DownstreamRemoteAddressWithoutPort => ip(cx.downstream_remote),
            HeaderOp::DownstreamLocalAddress => addr(cx.downstream_local),
            HeaderOp::DownstreamLocalAddressWithoutPort => ip(cx.downstream_local),
            HeaderOp::DownstreamLocalPort => cx
                .downstream_local
                .map(|a| a.port().to_string())
                .unwrap_or_default(),
            HeaderOp::UpstreamRemoteAddress => addr(cx.upstream_host),
            HeaderOp::Protocol => cx.protocol.unwrap_or_default().to_owned(),
            HeaderOp::Hostname => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
            HeaderOp::StartTime => crate::access_log::rfc3339_millis(std::time::SystemTime::now()),
            HeaderOp::Req(name) => cx
                .request_headers
                .unwrap_or(request)
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            HeaderOp::Environment(var) => std::env::var(var).unwrap_or_default(),
        }
    }
}

/// Envoy's `HeaderValueOption.append_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendAction {
    AppendIfExistsOrAdd,
    AddIfAbsent,
    OverwriteIfExistsOrAdd,
    OverwriteIfExists,
}

impl HeaderMutation {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies removals, then additions, as Envoy does; format strings render against
    /// `cx` (and the headers being edited, for `%REQ()%` on the request side).
    pub fn apply(&self, headers: &mut HeaderMap, cx: &HeaderContext<'_>) {
        for name in &self.remove {
            headers.remove(name);
        }
        for h in &self.add {
            let Some(value) = h.value.render(cx, headers) else {
                continue;
            };
            if value.is_empty() && !h.keep_empty {
                continue;
            }
            match h.action {
                AppendAction::AppendIfExistsOrAdd => {
                    headers.append(h.name.clone(), value);
                }
                AppendAction::AddIfAbsent => {
                    if !headers.contains_key(&h.name) {
                        headers.insert(h.name.clone(), value);
                    }
                }
                AppendAction::OverwriteIfExistsOrAdd => {
                    headers.insert(h.name.clone(), value);
                }
                AppendAction::OverwriteIfExists => {
                    if headers.contains_key(&h.name) {
                        headers.insert(h.name.clone(), value);
                    }
                }
            }
        }
    }

    pub(crate) fn convert(
        add: &[HeaderValueOption],
        remove: &[String],
        prefix: &str,
    ) -> Result<HeaderMutation, ConfigError> {
        let add = add
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                header_add(o)
                    .at(format!("{prefix}_headers_to_add[{i}]"))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let remove = remove
            .iter()
            .enumerate()
            .map(|(i, name)| header_name(name).at(format!("{prefix}_headers_to_remove[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HeaderMutation { add, remove })
    }
}

pub(super) fn header_name(name: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| ConfigError::new(format!("invalid header name {name:?}")))
}

/// `None` for an empty value without `keep_empty_value` (Envoy skips those).
fn header_add(o: &HeaderValueOption) -> Result<Option<HeaderAdd>, ConfigError> {
    let h = o
        .header
        .as_ref()
        .ok_or_else(|| ConfigError::new("header is required"))?;
    let name = header_name(&h.key).at("header.key")?;
    let raw: &[u8] = if h.raw_value.is_empty() {
        h.value.as_bytes()
    } else {
        &h.raw_value
    };
    if raw.is_empty() && !o.keep_empty_value {
        return Ok(None);
    }
    let value = HeaderTemplate::parse(raw).at("header.value")?;
    let action = match (o.append.as_ref().map(|b| b.value), o.append_action) {
        (Some(true), _) => AppendAction::AppendIfExistsOrAdd,
        (Some(false), _) => AppendAction::OverwriteIfExistsOrAdd,
        (None, a) => match HeaderAppendAction::try_from(a) {
            Ok(HeaderAppendAction::AppendIfExistsOrAdd) => AppendAction::AppendIfExistsOrAdd,
            Ok(HeaderAppendAction::AddIfAbsent) => AppendAction::AddIfAbsent,
            Ok(HeaderAppendAction::OverwriteIfExistsOrAdd) => AppendAction::OverwriteIfExistsOrAdd,
            Ok(HeaderAppendAction::OverwriteIfExists) => AppendAction::OverwriteIfExists,
            Err(_) => return Err(ConfigError::new(format!("unknown append_action {a}"))),
        },
    };
    Ok(Some(HeaderAdd {
        name,
        value,
        action,
        keep_empty: o.keep_empty_value,
    }))
}
